//! `supsvc-webhook` in this process, serving the two shipped policies, for the end-to-end tests that
//! register it with the simulated Supervisor (guards_e2e.rs by hand, webhook_install_e2e.rs through
//! `kubectl supsvc webhook install`).

use std::path::Path;
use std::time::Duration;

use supsvc_webhook::server::{self, RunningWebhook, StartOptions};

use crate::{eventually, policy_wasm};

/// The `kubectl` arguments of the blog's direct edit of Harbor's registry PVC in the `harbor`
/// scenario (55Gi to 60Gi in `svc-harbor-domain-c8`): what storage-guard refuses.
pub const BLOGS_PVC_EDIT: [&str; 7] = [
    "-n",
    "svc-harbor-domain-c8",
    "patch",
    "pvc",
    "harbor-registry",
    "-p",
    r#"{"spec":{"resources":{"requests":{"storage":"60Gi"}}}}"#,
];

/// Starts `supsvc-webhook` on `listen` (`127.0.0.1:0` for any free port, the bound one is
/// `RunningWebhook::addr`) over HTTPS with the certificate and key the caller wrote to `dir/tls.crt`
/// and `dir/tls.key`, serving the built `supsvc-storage-guard` and `supsvc-registry-guard` under the
/// names the shipped configuration calls them by (`storage-guard`, `registry-guard`; URL paths
/// `/validate/NAME`). `registry_mode` is registry-guard's `mode` (`enforce` or `monitor`); it exempts
/// `kube-system`. The configuration is written to `dir/webhook.yaml`.
///
/// Returns once the webhook reports ready (its policies loaded).
///
/// # Panics
/// When the configuration cannot be written, the webhook does not start, or it is not ready within
/// 60 s.
pub async fn start_guards(dir: &Path, listen: &str, registry_mode: &str) -> RunningWebhook {
    let config = format!(
        r#"listen: {listen}
tls: {{certFile: {dir}/tls.crt, keyFile: {dir}/tls.key}}
policies:
  - name: storage-guard
    module: {storage}
    rules:
      - {{operations: [UPDATE, DELETE], apiGroups: ["", apps], resources: [persistentvolumeclaims, statefulsets, statefulsets/scale]}}
  - name: registry-guard
    module: {registry}
    mode: {registry_mode}
    settings: {{exemptNamespaces: [kube-system]}}
    rules:
      - {{operations: [CREATE, UPDATE], apiGroups: ["", apps, batch], resources: [pods, deployments, statefulsets, daemonsets, replicasets, jobs, cronjobs]}}
"#,
        dir = dir.display(),
        storage = policy_wasm("supsvc-storage-guard").display(),
        registry = policy_wasm("supsvc-registry-guard").display(),
    );
    let path = dir.join("webhook.yaml");
    std::fs::write(&path, config).unwrap();
    let webhook = server::start(path, StartOptions::default())
        .await
        .expect("webhook starts");
    eventually(
        Duration::from_secs(60),
        "the webhook to load its policies",
        || async { webhook.state.is_ready().then_some(()) },
    )
    .await;
    webhook
}
