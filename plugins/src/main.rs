//! `kubectl supsvc`: repair and inspect vSphere Supervisor Services.
//!
//! Runs as a kubectl plugin (`kubectl supsvc ...`) or standalone, e.g. on a Supervisor control plane
//! VM over SSH with `/etc/kubernetes/admin.conf`.

// First, so its `out!`/`outln!`/`errln!` macros are in scope in every module below.
#[macro_use]
mod output;
mod api;
mod cli;
mod cluster;
mod cmd;
mod complete;
mod error;
mod kubeconfig;
mod observe;
mod progress;
mod transport;
mod vcenter;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::api::SupervisorApi;
use crate::cli::{Cli, Command, FixArgs, Global};
use crate::cmd::Session;
use crate::cmd::diagnose::DiagnoseOptions;
use crate::cmd::fix::FixOptions;
use crate::cmd::uninstall::UninstallOptions;
use crate::cmd::upgrade::UpgradeOptions;
use crate::cmd::values_edit::ValuesEditOptions;
use crate::error::Result;

/// `kubectl supsvc` when run as a kubectl plugin (argv[0] `kubectl-supsvc`), else the binary's name.
fn bin_name(argv0: Option<&str>) -> String {
    let base = argv0
        .map(|a| a.rsplit(['/', '\\']).next().unwrap_or(a))
        .unwrap_or("kubectl-supsvc");
    let base = base.strip_suffix(".exe").unwrap_or(base);
    match base.strip_prefix("kubectl-") {
        Some(plugin) => format!("kubectl {}", plugin.replace('_', "-")),
        None => base.to_owned(),
    }
}

fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = bin_name(args.first().and_then(|a| a.to_str()));
    let matches = Cli::command().bin_name(name.clone()).get_matches_from(args);
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let Cli { global, command } = cli;
    // One Supervisor, connected in one place (kubectl's flags and loading rules).
    let session = || Session::connect(&global);
    match command {
        #[cfg(feature = "demo")]
        Command::Demo(args) => cmd::demo::run(&args).await,
        #[cfg(not(feature = "demo"))]
        Command::Demo(_) => Err(cmd::demo_left_out()),
        Command::Policy(args) => cmd::policy::run(&args),
        Command::Webhook(args) => cmd::webhook::run(&args, || cluster::connect(&global)).await,
        Command::Completion(args) => {
            cmd::completion::run(&args);
            Ok(())
        }
        // fix may work on several Supervisors.
        Command::Fix(args) => fix(&global, &args).await,
        Command::UpgradeCheck(args) => {
            let conn = cluster::connect(&global).await?;
            let code = cmd::upgrade_check::run(&conn, &args).await?;
            if code != 0 {
                // The report is printed; the code tells scripts what it found (see --help).
                use std::io::Write;
                let _ = std::io::stdout().flush();
                std::process::exit(i32::from(code));
            }
            Ok(())
        }
        Command::OverrideImage(args) => {
            cmd::override_image::run(&session().await?, &(&args).into()).await
        }
        Command::ValuesEdit(args) => {
            let session = session().await?;
            let mut options = ValuesEditOptions::from(&args);
            options.service = session.canonical_service(&options.service).await?;
            cmd::values_edit::run(&session, &options).await
        }
        Command::Upgrade(args) => {
            let session = session().await?;
            let mut options = UpgradeOptions::from(&args);
            options.service = session.canonical_service(&options.service).await?;
            cmd::upgrade::run(&session, &options).await
        }
        Command::Uninstall(args) => {
            let session = session().await?;
            let mut options = UninstallOptions::from(&args);
            // A rerun after step 2 finds no PackageInstall: the name given is then the service's.
            if let Ok(service) = session.canonical_service(&options.service).await {
                options.service = service;
            }
            cmd::uninstall::run(&session, &options).await
        }
        Command::Status(args) => cmd::status::run(&session().await?, &(&args).into()).await,
        Command::Diagnose(args) => {
            let session = session().await?;
            let mut options = DiagnoseOptions::from(&args);
            options.service = session.canonical_service(&options.service).await?;
            cmd::diagnose::run(&session, &options).await
        }
    }
}

/// `fix` on the chosen context, or on each of several (`--all-contexts`, `--context` repeated).
async fn fix(global: &Global, args: &FixArgs) -> Result<()> {
    let loaded = cluster::load(global)?;
    let contexts = loaded.chosen_contexts(global, args.all_contexts)?;
    let mut options = FixOptions::from(args);
    if let [context] = contexts.as_slice() {
        let session = Session {
            supervisor: SupervisorApi {
                cluster: loaded.connect(context, global).await?,
            },
            namespace: global.namespace.clone(),
        };
        options.service = session.canonical_service(&options.service).await?;
        return cmd::fix::run(&session, &options).await;
    }
    let mut clusters = Vec::new();
    for context in contexts {
        let supervisor = loaded
            .connect(&context, global)
            .await
            .map(|cluster| SupervisorApi { cluster });
        clusters.push((context, supervisor));
    }
    cmd::fix::run_fleet(clusters, &global.namespace, &options).await
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(words) = complete::words(&args) {
        return complete::run(words);
    }
    let cli = parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start: {e}\nhint: check the process limits");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.is_quiet() {
                errln!("{failure}");
            }
            ExitCode::from(failure.exit as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Failure;

    #[test]
    fn usage_names_the_plugin_as_kubectl_does() {
        let cases = [
            (Some("/usr/local/bin/kubectl-supsvc"), "kubectl supsvc"),
            (Some("kubectl-supsvc"), "kubectl supsvc"),
            (Some("kubectl-supsvc.exe"), "kubectl supsvc"),
            (Some("./target/debug/supsvc"), "supsvc"),
            (None, "kubectl supsvc"),
        ];
        for (argv0, want) in cases {
            assert_eq!(bin_name(argv0), want, "{argv0:?}");
        }
        let help = Cli::command()
            .bin_name(bin_name(Some("kubectl-supsvc")))
            .render_usage()
            .to_string();
        assert!(help.contains("kubectl supsvc"), "{help}");
    }

    /// The lean build (krew's, `--no-default-features`) still parses `demo`, and answers it with
    /// what is missing and the build that has it, exit 1, instead of an unknown-command error.
    /// Runs in `cargo test -p kubectl-supsvc --no-default-features`.
    #[cfg(not(feature = "demo"))]
    #[tokio::test]
    async fn the_lean_build_says_how_to_get_the_demo() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["kubectl-supsvc", "demo"]).unwrap();
        let failure = run(cli).await.unwrap_err();
        let text = failure.to_string();
        assert!(text.contains("built without the demo"), "{text}");
        assert!(text.contains("--features demo"), "{text}");
        assert_eq!(failure.exit as u8, 1);
    }

    #[test]
    fn failures_print_error_and_hint() {
        let f = Failure::usage("bad", "do that");
        assert_eq!(f.to_string(), "error: bad\nhint: do that");
        assert_eq!(f.exit as u8, 2);
    }
}
