//! `kubectl supsvc demo`: the main job on the embedded simulated Supervisor, for whoever has no
//! Supervisor of their own yet. It starts a scenario in-process (by default `airgap-deadlock`, the KB's
//! stuck `svc-tkg`), and runs `diagnose`, `fix -y`, `diagnose` and `status` against it through the real
//! `kubectl`, with this binary on PATH as its plugin — exactly what an operator would type.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use supsvc_sim::{SimOptions, Simulator};

use crate::cli::DemoArgs;
use crate::error::{Failure, Result};

pub async fn run(args: &DemoArgs) -> Result<()> {
    let simulator = Simulator::start(SimOptions::new(&args.scenario).time_scale(args.time_scale))
        .await
        .map_err(|e| {
            Failure::new(
                format!("the simulated Supervisor did not start: {e:#}"),
                "run `supsvc-sim scenarios` for the scenario names, or report this as a bug",
            )
        })?;
    let dir = tempfile::tempdir().map_err(|e| {
        Failure::new(
            format!("cannot create a temporary directory: {e}"),
            "check $TMPDIR",
        )
    })?;
    let kubeconfig = dir.path().join("kubeconfig");
    simulator
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| Failure::new(format!("{e:#}"), "check $TMPDIR"))?;
    outln!(
        "A simulated Supervisor is running at {} (scenario {}: {}).",
        simulator.url(),
        args.scenario,
        simulator.scenario().description
    );
    outln!(
        "Everything below is the real kubectl, with KUBECONFIG={}\n",
        kubeconfig.display()
    );

    let path = plugin_path()?;
    let kubectl = args.kubectl.clone();
    let steps: [&[&str]; 5] = [
        &["get", "app", "-n", "vmware-system-supervisor-services"],
        &["supsvc", "diagnose"],
        &["supsvc", "fix", "-y"],
        &["supsvc", "diagnose"],
        &["supsvc", "status"],
    ];
    let mut failed = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        outln!("$ kubectl {}", step.join(" "));
        let status = Command::new(&kubectl)
            .args(step)
            .env("KUBECONFIG", &kubeconfig)
            .env("PATH", &path)
            .status()
            .map_err(|e| {
                Failure::new(
                    format!("cannot run {}: {e}", kubectl.display()),
                    "install kubectl, or point --kubectl at it",
                )
            })?;
        // diagnose exits non-zero when it finds a problem: that is the first diagnose's point. The
        // second one, after the repair, must find none.
        let finds_the_problem = i == 1;
        if !status.success() && !finds_the_problem {
            failed.push(step.join(" "));
        }
        outln!();
    }
    simulator.stop().await;
    if failed.is_empty() {
        outln!("Done: the simulated Supervisor was repaired by `kubectl supsvc fix`.");
        Ok(())
    } else {
        Err(Failure::new(
            format!("the demo's steps failed: {}", failed.join("; ")),
            "run them yourself against `supsvc-sim serve` to see more",
        ))
    }
}

/// PATH with this binary's directory first, so that `kubectl supsvc` finds this very plugin.
fn plugin_path() -> Result<OsString> {
    let exe = std::env::current_exe().map_err(|e| {
        Failure::new(
            format!("cannot locate this binary: {e}"),
            "run it by its path",
        )
    })?;
    let dir = exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut dirs = vec![dir];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs)
        .map_err(|e| Failure::new(format!("cannot build PATH: {e}"), "check $PATH"))
}
