//! `supsvc-sim`: run a simulated vSphere Supervisor on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use supsvc_sim::scenario::Scenario;
use supsvc_sim::vcenter::{Release, VcenterOptions};
use supsvc_sim::{SimOptions, Simulator};

#[derive(Parser)]
#[command(
    name = "supsvc-sim",
    version,
    about = "A simulated vSphere Supervisor: a Kubernetes API server over HTTPS with a model of kapp-controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a scenario until interrupted (SIGINT or SIGTERM).
    Serve {
        /// A built-in scenario (see `supsvc-sim scenarios`) or the path of a scenario file.
        #[arg(long, default_value = "airgap-deadlock")]
        scenario: String,
        /// Where to write the kubeconfig (CA data, server URL, a context per user).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Multiplies every controller period: 0.01 makes a 10 minute sync period 6 seconds.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Also serve a simulated vCenter of this version (7.0.3, 8.0.3, 9.0.0, 9.1.0) joined to the
        /// Supervisor; its URL and credentials go to `vcenter.env` and its CA to `vcenter-ca.pem`
        /// beside the kubeconfig (`set -a; . ./vcenter.env` sets what `values-edit --vcenter` reads).
        #[arg(long, value_name = "VERSION", num_args = 0..=1, default_missing_value = "8.0.3")]
        vcenter: Option<String>,
        /// Have the simulated vCenter write its copy of each service's values back onto the
        /// Supervisor this often (seconds), as its next configure would: an edit of the values Secret
        /// made on the Supervisor only is then undone.
        #[arg(long, value_name = "SECONDS", requires = "vcenter")]
        vcenter_reassert: Option<f64>,
    },
    /// List the built-in scenarios.
    Scenarios,
    /// Show the air-gapped deadlock and its repair end to end, with the real kubectl.
    Demo {
        /// The kubectl to drive the simulator with.
        #[arg(long, env = "KUBECTL", default_value = "kubectl")]
        kubectl: PathBuf,
        /// Multiplies every controller period.
        #[arg(long, default_value_t = 0.01)]
        time_scale: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUPSVC_SIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Scenarios => {
            for name in Scenario::builtin_names() {
                let description = Scenario::load(name)
                    .map(|s| s.description)
                    .unwrap_or_default();
                println!("{name:<20} {description}");
            }
            ExitCode::SUCCESS
        }
        Command::Serve {
            scenario,
            kubeconfig,
            time_scale,
            listen,
            vcenter,
            vcenter_reassert,
        } => block_on(serve(
            scenario,
            kubeconfig,
            time_scale,
            listen,
            vcenter,
            vcenter_reassert,
        )),
        Command::Demo {
            kubectl,
            time_scale,
        } => block_on(supsvc_sim::demo::run(&kubectl, time_scale)),
    }
}

fn block_on(job: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    scenario: String,
    kubeconfig: PathBuf,
    time_scale: f64,
    listen: SocketAddr,
    vcenter: Option<String>,
    vcenter_reassert: Option<f64>,
) -> anyhow::Result<()> {
    let reassert_every = vcenter_reassert
        .map(|secs| {
            std::time::Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--vcenter-reassert {secs}: expected a positive number of seconds"
                    )
                })
        })
        .transpose()?;
    let options = SimOptions {
        scenario: scenario.clone(),
        time_scale,
        listen,
    };
    let simulator = Simulator::start(options).await?;
    simulator.write_kubeconfig(&kubeconfig)?;
    println!(
        "supsvc-sim: scenario {scenario} ready at {} (kubeconfig {}, started in {} ms)",
        simulator.url(),
        kubeconfig.display(),
        simulator.start_time().as_millis()
    );
    let vcenter = match vcenter {
        Some(version) => {
            let release = Release::parse(&version).ok_or_else(|| {
                anyhow::anyhow!("--vcenter {version:?}: expected a version such as 8.0.3 or 9.1.0")
            })?;
            let vc = simulator
                .start_vcenter(VcenterOptions {
                    release,
                    reassert_every,
                    ..Default::default()
                })
                .await?;
            let dir = kubeconfig
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let ca_file = dir.join("vcenter-ca.pem");
            std::fs::write(&ca_file, &vc.ca_pem)?;
            let env_file = dir.join("vcenter.env");
            std::fs::write(&env_file, vc.env_file(&ca_file))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))?;
            }
            println!(
                "supsvc-sim: vCenter {version} at {} (credentials {}, CA {})",
                vc.url,
                env_file.display(),
                ca_file.display()
            );
            Some(vc)
        }
        None => None,
    };
    shutdown_signal().await;
    if let Some(vc) = vcenter {
        vc.shutdown();
    }
    simulator.stop().await;
    Ok(())
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
