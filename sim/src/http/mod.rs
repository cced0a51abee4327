//! The HTTPS front of the simulated API server: TLS (HTTP/2 and HTTP/1.1), bearer-token authentication,
//! discovery, resource URLs, Tables and watch streams, so that `kubectl` and kube-rs cannot tell it from a
//! real kube-apiserver.

pub mod discovery;
pub mod handler;
pub mod protobuf;
pub mod route;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::api::ApiServer;
use crate::tls::{self, Ca};

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Names the serving certificate is valid for, besides the listen address.
    pub hosts: Vec<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            hosts: vec!["localhost".into()],
        }
    }
}

/// A running server. Dropping it does not stop it; call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    /// The CA that signed the serving certificate (PEM): what the kubeconfig trusts.
    pub ca_pem: String,
    /// The CA, to sign more certificates (e.g. for test webhooks) that the same `ca_pem` trusts.
    pub ca: Arc<Ca>,
    stop: watch::Sender<bool>,
}

impl ServerHandle {
    /// Stops accepting and closes every open connection (watches included).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// Starts serving `api` over HTTPS.
pub async fn serve(api: Arc<ApiServer>, options: ServeOptions) -> anyhow::Result<ServerHandle> {
    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let ca = Arc::new(Ca::new("supsvc-sim-ca")?);
    let ip = addr.ip().to_string();
    let mut hosts: Vec<&str> = vec![ip.as_str(), "127.0.0.1", "localhost"];
    hosts.extend(options.hosts.iter().map(String::as_str));
    hosts.dedup();
    let cert = ca.issue(&hosts)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&cert)?);
    let (stop, mut stopped) = watch::channel(false);
    let front = Arc::new(handler::Front {
        api,
        address: addr.to_string(),
    });
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        let mut accepted_count = 0u64;
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let _ = tcp.set_nodelay(true);
                    accepted_count += 1;
                    let id = accepted_count;
                    let acceptor = acceptor.clone();
                    let front = Arc::clone(&front);
                    connections.spawn(serve_connection(acceptor, tcp, front, id));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.abort_all();
    });
    Ok(ServerHandle {
        url: format!("https://{addr}"),
        addr,
        ca_pem: ca.pem().to_string(),
        ca,
        stop,
    })
}

/// Serves one connection (HTTP/2 or HTTP/1.1, as ALPN chose) until the client closes it. A request
/// answered with [`handler::DropConnection`] (a fault) closes the whole connection, as a network
/// failure would: over HTTP/2 every request in flight on it fails too.
async fn serve_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    front: Arc<handler::Front>,
    id: u64,
) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let dropped = Arc::new(Notify::new());
    let on_drop = Arc::clone(&dropped);
    let service = service_fn(move |req| {
        let front = Arc::clone(&front);
        let on_drop = Arc::clone(&on_drop);
        async move {
            let answer = handler::handle(front, id, req).await;
            if answer.is_err() {
                on_drop.notify_one();
            }
            answer
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::select! {
        _ = builder.serve_connection(TokioIo::new(tls), service) => {}
        () = dropped.notified() => {}
    }
}
