//! The shipped policies guarding the simulated Supervisor: `supsvc-webhook` serving the built `.wasm`
//! over HTTPS, registered with a ValidatingWebhookConfiguration, exercised with the real `kubectl`.

use std::time::Duration;

use base64::Engine;
use supsvc_sim::api::{Patch, WriteOptions, gvr};
use supsvc_tests::guards::BLOGS_PVC_EDIT;
use supsvc_tests::{SERVICES_NAMESPACE, Supervisor, eventually, reconciled};
use supsvc_webhook::server;

const HARBOR: &str = "svc-harbor.tanzu.vmware.com";
const DOMAIN: &str = "svc-harbor-domain-c8";

/// Starts the webhook with both shipped policies, the registry guard in `registry_mode` (`enforce`
/// or `monitor`), registers it with the simulator, and returns it.
async fn guard(supervisor: &Supervisor, registry_mode: &str) -> server::RunningWebhook {
    let dir = supervisor.dir.path();
    let cert = supervisor
        .sim
        .ca()
        .issue(&["127.0.0.1", "localhost"])
        .unwrap();
    std::fs::write(dir.join("tls.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &cert.key_pem).unwrap();
    let webhook = supsvc_tests::guards::start_guards(dir, "127.0.0.1:0", registry_mode).await;

    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(supsvc_sim_ca(supervisor));
    let registration = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: supsvc-guards
webhooks:
  - name: storage-guard.supsvc.io
    clientConfig: {{url: "https://127.0.0.1:{port}/validate/storage-guard", caBundle: {ca_bundle}}}
    rules:
      - {{operations: [UPDATE, DELETE], apiGroups: ["", apps], apiVersions: [v1], resources: [persistentvolumeclaims, statefulsets]}}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 5
  - name: registry-guard.supsvc.io
    clientConfig: {{url: "https://127.0.0.1:{port}/validate/registry-guard", caBundle: {ca_bundle}}}
    rules:
      - {{operations: [CREATE, UPDATE], apiGroups: ["", apps], apiVersions: [v1], resources: [pods, deployments, statefulsets]}}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 5
"#,
        port = webhook.addr.port(),
    );
    let manifest = dir.join("registration.yaml");
    std::fs::write(&manifest, registration).unwrap();
    supervisor.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);
    webhook
}

/// An image of the scenario's private registry.
const PRIVATE_IMAGE: &str = "my-registry.example.com/vmware/harbor/harbor-core:v2.9.1";

/// `kubectl run NAME --image=IMAGE` in `default`.
fn run_pod(supervisor: &Supervisor, name: &str, image: &str) -> std::process::Output {
    supervisor.kubectl(&["run", name, "-n", "default", &format!("--image={image}")])
}

fn supsvc_sim_ca(supervisor: &Supervisor) -> String {
    supervisor.sim.ca().pem().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blogs_pvc_edit_is_denied_but_the_same_change_through_the_values_goes_through() {
    let supervisor = Supervisor::start("harbor", 0.001).await;
    let webhook = guard(&supervisor, "enforce").await;

    // The admin's direct edit: denied with the policy's message, nothing written.
    let output = supervisor.kubectl(&BLOGS_PVC_EDIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the direct edit must be denied");
    assert!(
        stderr.contains("admission webhook \"storage-guard.supsvc.io\" denied the request:")
            && stderr.contains(
                "PersistentVolumeClaim svc-harbor-domain-c8/harbor-registry is managed by kapp"
            ),
        "{stderr}"
    );
    assert!(
        stderr.contains("kubectl supsvc values-edit svc-harbor"),
        "{stderr}"
    );
    let pvc = supervisor
        .get(gvr::PERSISTENT_VOLUME_CLAIMS, DOMAIN, "harbor-registry")
        .await;
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "55Gi");

    // The right way: the values change, and kapp — as the App's service account — grows the PVC.
    let secret_name = format!("{HARBOR}-values");
    let secret = supervisor
        .get(gvr::SECRETS, SERVICES_NAMESPACE, &secret_name)
        .await;
    let engine = base64::engine::general_purpose::STANDARD;
    let values = String::from_utf8(
        engine
            .decode(secret["data"]["values.yaml"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let patch = serde_json::json!({"data": {"values.yaml": engine.encode(values.replace("size: 55Gi", "size: 60Gi"))}});
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
    eventually(
        Duration::from_secs(30),
        "the PVC at 60Gi and Harbor reconciled",
        || async {
            let pvc = supervisor
                .get(gvr::PERSISTENT_VOLUME_CLAIMS, DOMAIN, "harbor-registry")
                .await;
            let app = supervisor.get(gvr::APPS, SERVICES_NAMESPACE, HARBOR).await;
            (pvc["spec"]["resources"]["requests"]["storage"] == "60Gi" && reconciled(&app))
                .then_some(())
        },
    )
    .await;
    webhook.stop();
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_from_a_public_registry_is_denied_and_one_from_the_private_registry_admitted() {
    let supervisor = Supervisor::start("harbor", 0.001).await;
    let webhook = guard(&supervisor, "enforce").await;

    let output = run_pod(&supervisor, "web", "nginx");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "nginx is docker.io, a public registry"
    );
    assert!(
        stderr.contains("admission webhook \"registry-guard.supsvc.io\" denied the request"),
        "{stderr}"
    );
    assert!(
        stderr.contains("resolves to docker.io/library/nginx:latest, registry docker.io"),
        "{stderr}"
    );

    let output = run_pod(&supervisor, "core", PRIVATE_IMAGE);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("pod/core created"));
    webhook.stop();
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_monitor_mode_the_public_pod_is_admitted_and_the_would_be_denial_counted() {
    let supervisor = Supervisor::start("harbor", 0.001).await;
    let webhook = guard(&supervisor, "monitor").await;
    let denials = |metrics: &str| -> Option<u64> {
        metrics
            .lines()
            .find(|line| {
                line.starts_with("supsvc_webhook_policy_denials_total{")
                    && line.contains(r#"policy="registry-guard""#)
                    && line.contains(r#"mode="monitor""#)
            })
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    };
    assert_eq!(
        denials(&webhook.state.metrics.encode()),
        None,
        "nothing yet"
    );

    let output = run_pod(&supervisor, "web", "nginx");
    assert!(
        output.status.success(),
        "monitor mode admits: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("pod/web created"));
    let metrics = webhook.state.metrics.encode();
    assert_eq!(denials(&metrics), Some(1), "{metrics}");

    // A private image is neither denied nor counted.
    let output = run_pod(&supervisor, "core", PRIVATE_IMAGE);
    assert!(output.status.success());
    assert_eq!(denials(&webhook.state.metrics.encode()), Some(1));
    webhook.stop();
    supervisor.sim.stop().await;
}
