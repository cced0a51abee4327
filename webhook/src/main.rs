//! `supsvc-webhook`: serve the policies of a configuration file as a validating admission webhook.

use std::path::PathBuf;

use clap::Parser;
use supsvc_webhook::server::{self, StartOptions};

/// A validating admission webhook running WASM policies (Kubewarden's waPC protocol).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The configuration file (YAML): listen address, TLS files, policies.
    #[arg(
        long,
        short,
        env = "SUPSVC_WEBHOOK_CONFIG",
        default_value = "/etc/supsvc-webhook/config.yaml"
    )]
    config: PathBuf,
    /// Listen on this address instead of the configuration's.
    #[arg(long, env = "SUPSVC_WEBHOOK_LISTEN")]
    listen: Option<String>,
    /// Concurrent policy evaluations (default: one per CPU).
    #[arg(long)]
    evaluation_slots: Option<usize>,
    /// On SIGTERM, keep serving (but fail /readyz) this long so the Service stops routing here
    /// before the process exits.
    #[arg(long, default_value_t = 5)]
    drain_seconds: u64,
    /// Log as JSON lines.
    #[arg(long, env = "SUPSVC_WEBHOOK_LOG_JSON")]
    log_json: bool,
    /// Load every policy of the configuration into its `cacheDir` (compiled, settings checked),
    /// then exit: 0 when all loaded. The Deployment's init container runs it, so the server
    /// starts from compiled modules and never holds the compiler in memory.
    #[arg(long)]
    precompile: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    if args.precompile {
        let policies = supsvc_webhook::reload::precompile(&args.config)?;
        tracing::info!(policies, config = %args.config.display(), "policies compiled into the cache");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let webhook = server::start(
            args.config,
            StartOptions {
                listen: args.listen,
                evaluation_slots: args.evaluation_slots,
            },
        )
        .await?;
        shutdown_signal().await;
        tracing::info!(
            drain_seconds = args.drain_seconds,
            "shutting down: draining"
        );
        webhook.state.start_draining();
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(args.drain_seconds)) => {}
            _ = shutdown_signal() => {}
        }
        webhook.stop();
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
