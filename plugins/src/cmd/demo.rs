//! `kubectl supsvc demo`: the main job on the embedded simulated Supervisor, for whoever has no
//! Supervisor of their own yet — each seed document's job in one act, every command the real
//! `kubectl` with this binary on PATH as its plugin, exactly what an operator would type:
//!
//! 1. the KB (`000`): a scenario started in-process (by default `airgap-deadlock`, the stuck
//!    `svc-tkg`); `diagnose`, `fix -y`, `diagnose`, `status`;
//! 2. the lifecycle blog (`001`): the `harbor` scenario with a simulated vCenter joined to it; the
//!    registry volume grown the right way, `values-edit --vcenter --set …` (persisted in vCenter,
//!    pre-flight checked, followed to `Reconcile succeeded`), then `status` with vCenter's side;
//! 3. the rolling-update doc (`002`): the `tkg-fleet` scenario; `upgrade-check --tkr …`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use supsvc_sim::vcenter::VcenterOptions;
use supsvc_sim::{SimOptions, Simulator};

use crate::cli::DemoArgs;
use crate::error::{Failure, Result};

/// The lifecycle act's service and the value it changes (the blog's registry volume, grown).
const HARBOR: &str = "svc-harbor.tanzu.vmware.com";
const HARBOR_SET: &str = "persistence.persistentVolumeClaim.registry.size=60Gi";
/// The rolling-update act's target release.
const TARGET_TKR: &str = "v1.29.4---vmware.3-fips.1-tkg.1";

/// One command of an act: its arguments after `kubectl`, and whether a non-zero exit is its point
/// (the first `diagnose` finds the deadlock; `upgrade-check` reports rolls).
struct Step<'a> {
    args: Vec<&'a str>,
    may_fail: bool,
}

fn step<'a>(args: &[&'a str]) -> Step<'a> {
    Step {
        args: args.to_vec(),
        may_fail: false,
    }
}

/// A scenario running in-process with a kubeconfig for it in a temporary directory.
struct Site {
    simulator: Simulator,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Site {
    async fn start(scenario: &str, time_scale: f64) -> Result<Site> {
        let simulator = Simulator::start(SimOptions::new(scenario).time_scale(time_scale))
            .await
            .map_err(|e| {
                Failure::new(
                    format!("the simulated Supervisor (scenario {scenario}) did not start: {e:#}"),
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
            "A simulated Supervisor is running at {} (scenario {scenario}: {}).",
            simulator.url(),
            simulator.scenario().description
        );
        outln!(
            "Everything below is the real kubectl, with KUBECONFIG={}\n",
            kubeconfig.display()
        );
        Ok(Site {
            simulator,
            dir,
            kubeconfig,
        })
    }
}

/// Runs the steps through `kubectl`; returns the ones that failed when they should not have.
fn run_steps(
    kubectl: &Path,
    kubeconfig: &Path,
    path: &OsStr,
    env: &[(&str, &OsStr)],
    steps: &[Step<'_>],
) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for step in steps {
        outln!("$ kubectl {}", step.args.join(" "));
        let mut command = Command::new(kubectl);
        command
            .args(&step.args)
            .env("KUBECONFIG", kubeconfig)
            .env("PATH", path);
        for (key, value) in env {
            command.env(key, value);
        }
        let status = command.status().map_err(|e| {
            Failure::new(
                format!("cannot run {}: {e}", kubectl.display()),
                "install kubectl, or point --kubectl at it",
            )
        })?;
        if !status.success() && !step.may_fail {
            failed.push(step.args.join(" "));
        }
        outln!();
    }
    Ok(failed)
}

pub async fn run(args: &DemoArgs) -> Result<()> {
    let path = plugin_path()?;
    let kubectl = args.kubectl.as_path();
    let mut failed = Vec::new();

    outln!("== 1. The KB: svc-tkg's reconciliation deadlock in an air-gapped Supervisor\n");
    let kb = Site::start(&args.scenario, args.time_scale).await?;
    let steps = [
        step(&["get", "app", "-n", "vmware-system-supervisor-services"]),
        // diagnose exits non-zero when it finds a problem: that is the first diagnose's point. The
        // second one, after the repair, must find none.
        Step {
            may_fail: true,
            ..step(&["supsvc", "diagnose"])
        },
        step(&["supsvc", "fix", "-y"]),
        step(&["supsvc", "diagnose"]),
        step(&["supsvc", "status"]),
    ];
    failed.extend(run_steps(kubectl, &kb.kubeconfig, &path, &[], &steps)?);
    kb.simulator.stop().await;

    outln!(
        "== 2. The lifecycle blog: a Supervisor Service reconfigured where its values persist\n"
    );
    let site = Site::start("harbor", args.time_scale).await?;
    let vcenter = site
        .simulator
        .start_vcenter(VcenterOptions::default())
        .await
        .map_err(|e| {
            Failure::new(
                format!("the simulated vCenter did not start: {e:#}"),
                "report this as a bug",
            )
        })?;
    let ca = site.dir.path().join("vcenter-ca.pem");
    std::fs::write(&ca, &vcenter.ca_pem).map_err(|e| {
        Failure::new(
            format!("cannot write {}: {e}", ca.display()),
            "check $TMPDIR",
        )
    })?;
    let undo = site.dir.path().join("undo");
    outln!(
        "A simulated vCenter is running at {}, joined to this Supervisor; the commands trust its CA\n\
         from SUPSVC_VCENTER_CA_FILE={} and read the password from SUPSVC_VCENTER_PASSWORD.\n",
        vcenter.url,
        ca.display()
    );
    let options = VcenterOptions::default();
    let env: [(&str, &OsStr); 3] = [
        ("SUPSVC_VCENTER_CA_FILE", ca.as_os_str()),
        ("SUPSVC_VCENTER_PASSWORD", OsStr::new(&options.password)),
        ("SUPSVC_UNDO_DIR", undo.as_os_str()),
    ];
    let url = vcenter.url.as_str();
    let steps = [
        step(&[
            "supsvc",
            "values-edit",
            HARBOR,
            "--vcenter",
            url,
            "--set",
            HARBOR_SET,
        ]),
        step(&["supsvc", "status", "--vcenter", url]),
    ];
    failed.extend(run_steps(kubectl, &site.kubeconfig, &path, &env, &steps)?);
    vcenter.shutdown();
    site.simulator.stop().await;

    outln!(
        "== 3. The rolling-update doc: which TKG clusters roll for a new release, in what order\n"
    );
    let fleet = Site::start("tkg-fleet", args.time_scale).await?;
    let steps = [
        step(&["get", "clusters.cluster.x-k8s.io", "-A"]),
        step(&["supsvc", "upgrade-check", "--tkr", TARGET_TKR]),
    ];
    failed.extend(run_steps(kubectl, &fleet.kubeconfig, &path, &[], &steps)?);
    fleet.simulator.stop().await;

    if failed.is_empty() {
        outln!(
            "Done: svc-tkg repaired by `kubectl supsvc fix`, Harbor's registry volume grown through vCenter, \
             and the fleet's roll forecast for {TARGET_TKR}."
        );
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
