//! kube-controller-manager's ServiceAccount controller: every namespace that is not being deleted has a
//! ServiceAccount named `default`, created when the namespace appears (scenario namespaces at start-up
//! included) and created again when someone deletes it.
//!
//! The rule is `pkg/controller/serviceaccount/serviceaccounts_controller.go` (kubernetes/kubernetes):
//! `syncNamespace` skips a namespace whose phase is not `Active` and creates each missing managed account
//! (`DefaultServiceAccountsControllerOptions`: just `default`); a deleted account is re-queued through its
//! namespace. Since Kubernetes 1.24 the account gets no token Secret.

use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Value, json};

use crate::api::{ApiServer, Client, UserInfo, WatchEvent, WriteOptions, gvr};
use crate::kapp::queue::Informer;

/// The account every namespace gets.
pub const DEFAULT: &str = "default";

/// Whether the controller keeps accounts in `namespace` (a Namespace object): not while it is being
/// deleted (a `deletionTimestamp`, or a phase other than `Active`; no phase yet counts as active).
pub fn keeps_accounts(namespace: &Value) -> bool {
    namespace["metadata"]["deletionTimestamp"].is_null()
        && matches!(namespace["status"]["phase"].as_str(), None | Some("Active"))
}

/// The `default` ServiceAccount of `namespace`, as the controller creates it.
pub fn default_account(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT, "namespace": namespace},
    })
}

/// Creates the `default` account of a namespace when it keeps accounts and has none.
async fn sync_namespace(client: &Client, namespace: &Value) {
    let Some(name) = namespace["metadata"]["name"].as_str() else {
        return;
    };
    if !keeps_accounts(namespace)
        || client
            .get(gvr::SERVICE_ACCOUNTS, Some(name), DEFAULT)
            .await
            .is_ok()
    {
        return;
    }
    // AlreadyExists (a race with a client creating it) is the wanted state too.
    if let Err(status) = client
        .create(
            gvr::SERVICE_ACCOUNTS,
            Some(name),
            default_account(name),
            &WriteOptions::default(),
        )
        .await
        && status.code != 409
    {
        tracing::warn!(namespace = name, %status, "cannot create the default ServiceAccount");
    }
}

/// Starts the controller.
///
/// Every handler first passes `gate` (read), so a hold on it (its write side) stills them.
pub fn start(api: Arc<ApiServer>, gate: Arc<tokio::sync::RwLock<()>>) {
    let client = api.client(UserInfo::service_account(
        "kube-system",
        "service-account-controller",
    ));
    let on_namespace = client.clone();
    let namespace_gate = Arc::clone(&gate);
    let _ = Informer::spawn(
        client.clone(),
        gvr::NAMESPACES,
        Arc::new(move |event| {
            let client = on_namespace.clone();
            let gate = Arc::clone(&namespace_gate);
            async move {
                let _pass = gate.read().await;
                if let WatchEvent::Added(ns) | WatchEvent::Modified(ns) = event {
                    sync_namespace(&client, &ns).await;
                }
            }
            .boxed()
        }),
    );
    let on_account = client.clone();
    let _ = Informer::spawn(
        client,
        gvr::SERVICE_ACCOUNTS,
        Arc::new(move |event| {
            let client = on_account.clone();
            let gate = Arc::clone(&gate);
            async move {
                let _pass = gate.read().await;
                if let WatchEvent::Deleted(sa) = event
                    && sa["metadata"]["name"] == DEFAULT
                    && let Some(ns) = sa["metadata"]["namespace"].as_str()
                    && let Ok(namespace) = client.get(gvr::NAMESPACES, None, ns).await
                {
                    sync_namespace(&client, &namespace).await;
                }
            }
            .boxed()
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_namespaces_keep_accounts() {
        let cases = [
            (json!({"metadata": {"name": "a"}}), true),
            (
                json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}}),
                true,
            ),
            (
                json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}),
                false,
            ),
            (
                json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
                false,
            ),
        ];
        for (ns, want) in cases {
            assert_eq!(keeps_accounts(&ns), want, "{ns}");
        }
        assert_eq!(default_account("x")["metadata"]["namespace"], "x");
    }
}
