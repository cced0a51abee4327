//! `supsvc-sim demo`: the main job on the embedded simulated Supervisor, for a newcomer with no
//! Supervisor of their own. It starts the `airgap-deadlock` scenario, shows it stuck with the real
//! `kubectl`, repairs it with the KB's commands, and follows it until it has reconciled.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::api::gvr;
use crate::{SimOptions, Simulator};

const SERVICES: &str = "vmware-system-supervisor-services";
const TKG: &str = "svc-tkg.vsphere.vmware.com";

/// Runs the demo; `kubectl` is the client binary to drive the simulator with.
pub async fn run(kubectl: &Path, time_scale: f64) -> anyhow::Result<()> {
    println!(
        "Starting a simulated Supervisor (scenario airgap-deadlock: svc-tkg relocated with docker pull/push, then corrected)..."
    );
    let sim = Simulator::start(SimOptions::new("airgap-deadlock").time_scale(time_scale)).await?;
    let dir = std::env::temp_dir().join(format!("supsvc-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    println!(
        "Serving at {} — kubeconfig {}\n",
        sim.url(),
        kubeconfig.display()
    );

    let run = |args: &[&str]| -> anyhow::Result<()> {
        println!("$ kubectl {}", args.join(" "));
        let output = Command::new(kubectl)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .with_context(|| format!("running {} (is kubectl installed?)", kubectl.display()))?;
        print!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };

    println!("The service is stuck:");
    run(&["get", "app", TKG, "-n", SERVICES])?;
    run(&[
        "get",
        "app",
        TKG,
        "-n",
        SERVICES,
        "-o",
        "jsonpath={.status.usefulErrorMessage}{\"\\n\"}",
    ])?;

    let domain = "svc-tkg-domain-c1234";
    let children = sim
        .admin()
        .list(gvr::PACKAGE_INSTALLS, Some(domain), &Default::default())
        .await?;
    println!("\nThe KB's repair, command by command (domain namespace {domain}):");
    run(&[
        "patch",
        &format!("pkgi/{TKG}"),
        "--namespace",
        SERVICES,
        "--type=json",
        r#"--patch=[{"op": "add", "path": "/spec/paused", "value":true}]"#,
    ])?;
    for child in &children.items {
        let name = child["metadata"]["name"].as_str().unwrap_or_default();
        run(&[
            "patch",
            "pkgi",
            "-n",
            domain,
            "--type=merge",
            "--patch",
            r#"{"metadata":{"labels":{"fix-trigger":"true"}}}"#,
            name,
        ])?;
    }
    run(&[
        "patch",
        &format!("pkgi/{TKG}"),
        "--namespace",
        SERVICES,
        "--type=json",
        r#"--patch=[{"op": "remove", "path": "/spec/paused"}]"#,
    ])?;
    run(&[
        "patch",
        &format!("apps/{TKG}"),
        "-n",
        SERVICES,
        "--type=json",
        r#"-p=[{"op": "add", "path": "/spec/paused", "value":true}]"#,
    ])?;
    run(&[
        "patch",
        &format!("apps/{TKG}"),
        "-n",
        SERVICES,
        "--type=json",
        r#"-p=[{"op": "remove", "path": "/spec/paused"}]"#,
    ])?;

    println!(
        "\nWaiting until it has reconciled (ReconcileSucceeded with its generation observed)..."
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let app = sim.admin().get(gvr::APPS, Some(SERVICES), TKG).await?;
        let done = app["metadata"]["generation"] == app["status"]["observedGeneration"]
            && app["status"]["conditions"][0]["type"] == "ReconcileSucceeded";
        if done {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "svc-tkg did not reconcile within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run(&["get", "app", "-A"])?;
    println!("\nsvc-tkg.vsphere.vmware.com and every child: Reconcile succeeded.");
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
