//! The HTTPS server: hyper 1 on tokio with rustls, serving [`router::route`].

pub mod metrics;
pub mod router;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::policy_set::PolicySet;
use crate::reload::Reloader;
use metrics::Metrics;
use router::HttpResponse;
use supsvc_policy_host::{HostOptions, PolicyHost};
use tls::ReloadingCertificate;

/// Largest AdmissionReview body accepted: a 3 MiB object, as much again for `oldObject`, and
/// headroom for the rest of the request.
pub const MAX_BODY_BYTES: usize = 7 << 20;

/// Shared by every request.
pub struct AppState {
    /// `None` until the first configuration has loaded.
    pub policies: ArcSwapOption<PolicySet>,
    pub metrics: Metrics,
    permits: Arc<Semaphore>,
    pub max_body_bytes: usize,
    /// Set on shutdown: `/readyz` fails so endpoints drop this replica while it still serves.
    draining: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// One evaluation per CPU at a time: more would only queue inside the CPU.
pub fn default_evaluation_slots() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

impl AppState {
    pub fn new(evaluation_slots: usize) -> Self {
        Self {
            policies: ArcSwapOption::empty(),
            metrics: Metrics::default(),
            permits: Arc::new(Semaphore::new(evaluation_slots.max(1))),
            max_body_bytes: MAX_BODY_BYTES,
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A state already serving `set`.
    pub fn with_policies(set: PolicySet) -> Self {
        let state = Self::new(default_evaluation_slots());
        state.install(set);
        state
    }

    /// Ready once every configured policy has loaded, until shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.policies.load().is_some() && !self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts shutting down: not ready any more, still answering.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Swaps in a new set of policies; requests in flight finish with the set they started with.
    pub fn install(&self, set: PolicySet) {
        self.metrics.set_policies_loaded(set.policies.len());
        self.policies.store(Some(Arc::new(set)));
    }
}

/// Accepts connections until `shutdown` completes, answering each request with `handler`.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection closed: {e}");
            }
        });
    }
}

/// A webhook started by [`start`].
#[derive(Debug)]
pub struct RunningWebhook {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub reloader: Arc<Reloader>,
    pub tls: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningWebhook {
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Options for [`start`] not in the configuration file.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Overrides the configuration's `listen`.
    pub listen: Option<String>,
    pub evaluation_slots: Option<usize>,
}

/// Starts the webhook of the configuration at `config_path`: binds, serves, and loads the
/// policies in the background (ready once loaded), then polls for changes.
pub async fn start(config_path: PathBuf, options: StartOptions) -> anyhow::Result<RunningWebhook> {
    let config = Config::load(&config_path)?;
    let host = PolicyHost::new(HostOptions {
        cache_dir: config.cache_dir.clone(),
        ..HostOptions::default()
    })?;
    let state = Arc::new(AppState::new(
        options
            .evaluation_slots
            .unwrap_or_else(default_evaluation_slots),
    ));
    let listen = options.listen.unwrap_or_else(|| config.listen.clone());
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let interval = Duration::from_millis(config.reload_interval_ms.max(10));

    let certificate = match &config.tls {
        Some(files) => Some(Arc::new(ReloadingCertificate::load(files.clone())?)),
        None => None,
    };
    let acceptor = match &certificate {
        Some(certificate) => Some(TlsAcceptor::from(tls::server_config(certificate.clone())?)),
        None => None,
    };

    let mut tasks = Vec::new();
    let reloader = Arc::new(Reloader::new(host, config_path, Arc::clone(&state)));
    tasks.push(tokio::spawn(Arc::clone(&reloader).run(interval)));
    if let Some(certificate) = certificate {
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let certificate = Arc::clone(&certificate);
                let _ = tokio::task::spawn_blocking(move || certificate.reload_if_changed()).await;
            }
        }));
    }
    let serving_state = Arc::clone(&state);
    tasks.push(tokio::spawn(serve_with(
        listener,
        acceptor.clone(),
        move |request| router::route(Arc::clone(&serving_state), request),
        std::future::pending(),
    )));
    tracing::info!(%addr, tls = acceptor.is_some(), "supsvc-webhook listening");
    Ok(RunningWebhook {
        addr,
        state,
        reloader,
        tls: acceptor.is_some(),
        tasks,
    })
}
