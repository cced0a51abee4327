//! The KB's manual repair of the air-gapped deadlock, run with the real `kubectl` against the simulated
//! Supervisor — and the two negative controls that show the simulator does not simply "get better".

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use supsvc_sim::api::gvr;
use supsvc_tests::{
    SERVICES_NAMESPACE, Supervisor, TKG, TKG_CHILDREN, TKG_DOMAIN, eventually, reconciled,
};

/// Controller periods shrunk a thousandfold: a 10 minute sync period is 0.6 s.
const TIME_SCALE: f64 = 0.001;

/// The KB's commands as written, the domain namespace filled in and every child labelled.
fn kb_commands(label_children: bool) -> String {
    let mut script = String::from(
        r#"kubectl patch pkgi/svc-tkg.vsphere.vmware.com \
--namespace vmware-system-supervisor-services \
--type='json' \
--patch='[{"op": "add", "path": "/spec/paused", "value":true}]'
"#,
    );
    if label_children {
        for child in TKG_CHILDREN {
            script.push_str(&format!(
                "kubectl patch pkgi -n {TKG_DOMAIN} --type='merge' --patch '{{\"metadata\":{{\"labels\":{{\"fix-trigger\":\"true\"}}}}}}' {child}\n"
            ));
        }
    }
    script.push_str(
        r#"kubectl patch pkgi/svc-tkg.vsphere.vmware.com \
--namespace vmware-system-supervisor-services \
--type='json' \
--patch='[{"op": "remove", "path": "/spec/paused"}]'
kubectl patch apps/svc-tkg.vsphere.vmware.com -n vmware-system-supervisor-services --type='json' -p='[{"op": "add", "path": "/spec/paused", "value":true}]'
kubectl patch apps/svc-tkg.vsphere.vmware.com -n vmware-system-supervisor-services --type='json' -p='[{"op": "remove", "path": "/spec/paused"}]' || true
"#,
    );
    script
}

fn failures(app: &serde_json::Value) -> i64 {
    app["status"]["consecutiveReconcileFailures"]
        .as_i64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kb_commands_run_with_kubectl_take_svc_tkg_from_stuck_to_reconciled() {
    let supervisor = Supervisor::start("airgap-deadlock", TIME_SCALE).await;

    // Stuck, as the operator sees it. kapp-controller retries the failing App all the time (every
    // 30 s, a thousandth of it here), so one `kubectl get` may land in a retry's `Reconciling`: as an
    // operator would, look again until the failure shows.
    eventually(
        Duration::from_secs(30),
        "the App and every child shown stuck on the public registry",
        || async {
            let table = supervisor.kubectl_ok(&["get", "app", TKG, "-n", SERVICES_NAMESPACE]);
            let app = supervisor.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
            let message = app["status"]["usefulErrorMessage"].as_str().unwrap_or("");
            let mut stuck = table.lines().next().is_some_and(|l| l.contains("DESCRIPTION"))
                && table.contains(
                    "Reconcile failed: Deploying: Error (see .status.usefulErrorMessage for details)",
                )
                && message.contains("waiting on reconcile packageinstall/")
                && message.contains("Finished unsuccessfully");
            for child in TKG_CHILDREN {
                let install = supervisor
                    .get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, child)
                    .await;
                stuck &= install["status"]["usefulErrorMessage"]
                    .as_str()
                    .is_some_and(|e| e.contains("projects.registry.vmware.com"));
            }
            stuck.then_some(())
        },
    )
    .await;

    let output = supervisor.sh(&kb_commands(true));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // "Monitor the status until the DESCRIPTION field no longer shows Reconciling" — and is a success.
    eventually(
        Duration::from_secs(60),
        "svc-tkg and every child to reconcile",
        || async {
            let parent = supervisor.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
            let mut all = reconciled(&parent)
                && reconciled(
                    &supervisor
                        .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG)
                        .await,
                );
            for child in TKG_CHILDREN {
                all &= reconciled(
                    &supervisor
                        .get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, child)
                        .await,
                );
            }
            all.then_some(())
        },
    )
    .await;
    let table = supervisor.kubectl_ok(&["get", "app", TKG, "-n", SERVICES_NAMESPACE]);
    assert!(table.contains("Reconcile succeeded"), "{table}");

    // The children now fetch from the private registry, and kapp removed the hand-added labels.
    for child in TKG_CHILDREN {
        let app = supervisor.get(gvr::APPS, TKG_DOMAIN, child).await;
        let image = app["spec"]["fetch"][0]["imgpkgBundle"]["image"]
            .as_str()
            .unwrap();
        assert!(
            image.starts_with("my-registry.example.com/"),
            "{child}: {image}"
        );
        let install = supervisor
            .get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, child)
            .await;
        assert!(
            install["metadata"]["labels"].get("fix-trigger").is_none(),
            "{child} still labelled"
        );
    }
    supervisor.sim.stop().await;
}

/// Runs the KB's commands, then waits for `cycles` more failed reconciles of the parent, asserting it
/// never reconciles meanwhile; returns the parent App as last seen.
async fn stays_stuck_for(
    supervisor: &Supervisor,
    label_children: bool,
    cycles: i64,
) -> serde_json::Value {
    let output = supervisor.sh(&kb_commands(label_children));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let before = failures(&supervisor.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await);
    let seen_success = AtomicBool::new(false);
    let what = format!("{cycles} more failed parent reconciles");
    let app = eventually(Duration::from_secs(90), &what, || async {
        let app = supervisor.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
        seen_success.fetch_or(reconciled(&app), Ordering::Relaxed);
        (failures(&app) >= before + cycles).then_some(app)
    })
    .await;
    assert!(
        !seen_success.load(Ordering::Relaxed),
        "the parent reconciled while it should have stayed stuck"
    );
    let message = app["status"]["usefulErrorMessage"].as_str().unwrap();
    assert!(
        message.contains("waiting on reconcile packageinstall/"),
        "{message}"
    );
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_labelling_the_children_the_deadlock_persists_for_twenty_parent_cycles() {
    let supervisor = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    stays_stuck_for(&supervisor, false, 20).await;
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelling_the_children_does_not_help_while_the_package_data_is_still_wrong() {
    let supervisor = Supervisor::start("airgap-uncorrected", TIME_SCALE).await;
    stays_stuck_for(&supervisor, true, 10).await;
    for child in TKG_CHILDREN {
        let install = supervisor
            .get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, child)
            .await;
        assert!(
            !reconciled(&install),
            "{child} cannot reconcile from projects.registry.vmware.com"
        );
    }
    supervisor.sim.stop().await;
}
