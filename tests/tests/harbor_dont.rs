//! The lifecycle blog's DON'T on the Harbor Supervisor Service: editing a kapp-managed PVC by hand.
//! The API server lets an admin grow it; the next deploy of the App then fails, because kapp puts back
//! what the values say and the server refuses it. And the StatefulSet message the blog shows is what
//! any change to `harbor-database`'s volume claim templates gets.

use std::time::Duration;

use base64::Engine;
use supsvc_sim::api::{Patch, WriteOptions, gvr};
use supsvc_tests::{SERVICES_NAMESPACE, Supervisor, eventually, one_line, reconciled};

const HARBOR: &str = "svc-harbor.tanzu.vmware.com";
const DOMAIN: &str = "svc-harbor-domain-c8";
const TIME_SCALE: f64 = 0.001;

const STATEFULSET_MESSAGE: &str = "StatefulSet.apps \"harbor-database\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
const SHRINK_MESSAGE: &str =
    "spec.resources.requests.storage: Forbidden: field can not be less than previous value";

async fn failed_deploy_message(supervisor: &Supervisor) -> String {
    eventually(
        Duration::from_secs(30),
        "the Harbor App to fail its next deploy",
        || async {
            let app = supervisor.get(gvr::APPS, SERVICES_NAMESPACE, HARBOR).await;
            let failed = app["status"]["conditions"][0]["type"] == "ReconcileFailed";
            failed.then(|| {
                app["status"]["usefulErrorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harbor_is_reconciled_with_its_registry_pvc_sized_from_the_values() {
    let supervisor = Supervisor::start("harbor", TIME_SCALE).await;
    assert!(reconciled(
        &supervisor.get(gvr::APPS, SERVICES_NAMESPACE, HARBOR).await
    ));
    let pvc = supervisor.kubectl_ok(&["get", "pvc", "-n", DOMAIN, "harbor-registry"]);
    assert!(
        pvc.contains("Bound") && pvc.contains("55Gi") && pvc.contains("ftt0-r0"),
        "{pvc}"
    );
    let managed = supervisor.kubectl_ok(&[
        "get",
        "pvc",
        "-n",
        DOMAIN,
        "harbor-registry",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert!(
        managed.contains("kapp.k14s.io/app"),
        "the PVC is kapp-managed: {managed}"
    );
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_pvc_edit_succeeds_and_breaks_the_next_deploy() {
    let supervisor = Supervisor::start("harbor", TIME_SCALE).await;

    // The blog: `k -n svc-harbor-domain-c8 edit pvc harbor-registry`, storage raised by hand.
    let editor = supervisor.dir.path().join("grow.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/storage: 55Gi/storage: 60Gi/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = std::process::Command::new(supsvc_tests::kubectl_path())
        .args(["-n", DOMAIN, "edit", "pvc", "harbor-registry"])
        .env("KUBECONFIG", &supervisor.kubeconfig)
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("persistentvolumeclaim/harbor-registry edited"),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pvc = supervisor
        .get(gvr::PERSISTENT_VOLUME_CLAIMS, DOMAIN, "harbor-registry")
        .await;
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "60Gi");

    // "Of course I had to pay the bill shortly afterwards": kapp restores 55Gi, which is a shrink.
    let message = failed_deploy_message(&supervisor).await;
    assert!(
        message.contains(
            "update persistentvolumeclaim/harbor-registry (v1) namespace: svc-harbor-domain-c8"
        ),
        "{message}"
    );
    assert!(one_line(&message).contains(SHRINK_MESSAGE), "{message}");
    // kapp-controller retries on its sync period (Reconciling for a moment at this time scale): the
    // App keeps coming back to the failure, as the operator's `kubectl get app` shows.
    eventually(
        Duration::from_secs(30),
        "kubectl get app to show Reconcile failed: Deploying: Error",
        || async {
            supervisor
                .kubectl_ok(&["get", "app", HARBOR, "-n", SERVICES_NAMESPACE])
                .contains("Reconcile failed: Deploying: Error")
                .then_some(())
        },
    )
    .await;
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shrinking_a_pvc_is_refused_with_the_real_message() {
    let supervisor = Supervisor::start("harbor", TIME_SCALE).await;
    let output = supervisor.kubectl(&[
        "-n",
        DOMAIN,
        "patch",
        "pvc",
        "harbor-registry",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"50Gi"}}}}"#,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a shrink must be refused");
    assert!(
        stderr.contains("PersistentVolumeClaim \"harbor-registry\" is invalid")
            && stderr.contains(SHRINK_MESSAGE),
        "{stderr}"
    );
    let pvc = supervisor
        .get(gvr::PERSISTENT_VOLUME_CLAIMS, DOMAIN, "harbor-registry")
        .await;
    assert_eq!(
        pvc["spec"]["resources"]["requests"]["storage"], "55Gi",
        "nothing written"
    );
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_values_change_to_the_database_volume_fails_with_the_blogs_statefulset_message() {
    let supervisor = Supervisor::start("harbor", TIME_SCALE).await;
    let secret_name = format!("{HARBOR}-values");
    let secret = supervisor
        .get(gvr::SECRETS, SERVICES_NAMESPACE, &secret_name)
        .await;
    let encoded = secret["data"]["values.yaml"]
        .as_str()
        .expect("stringData is stored as data");
    let values = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let changed = values.replace("size: 2Gi", "size: 5Gi");
    assert_ne!(values, changed);
    let patch = serde_json::json!({"data": {"values.yaml": base64::engine::general_purpose::STANDARD.encode(changed)}});
    supervisor
        .admin()
        .patch(
            gvr::SECRETS,
            Some(SERVICES_NAMESPACE),
            &secret_name,
            &Patch::Merge(patch),
            &WriteOptions::default(),
        )
        .await
        .unwrap();

    let message = failed_deploy_message(&supervisor).await;
    assert!(
        message.contains(
            "update statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8"
        ),
        "{message}"
    );
    assert!(
        one_line(&message).contains(STATEFULSET_MESSAGE) && message.ends_with("(reason: Invalid)"),
        "{message}"
    );
    supervisor.sim.stop().await;
}
