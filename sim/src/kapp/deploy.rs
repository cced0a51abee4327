//! kapp's deploy, as an App runs it: as the App's service account, with kapp's ownership, ordering and
//! waiting rules.
//!
//! What makes the air-gapped deadlock: an unchanged resource (op `noop`) that is not done-and-successful
//! is still waited on, in the first batch, before anything is applied; a child PackageInstall in
//! `ReconcileFailed` finishes that wait unsuccessfully at once; and kapp exits early on the first
//! failed wait, so the changes ordered after it (the corrected Packages) are never applied.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Shared;
use super::diff::{self, Op, Readiness};
use super::queue::resource_version;
use super::text;
use crate::api::registry::Registry;
use crate::api::{Client, Gvr, Status, UserInfo, WriteOptions, gvr};

/// kapp's default wait timeout.
const WAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How often kapp re-reads what it waits on.
const WAIT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a successful deploy leaves in `status.deploy`.
#[derive(Debug)]
pub struct Report {
    pub stdout: String,
    pub associated_resources: Value,
}

/// The resource type of a manifest, and whether it is namespaced, from the API server's registry.
pub fn resource_of(registry: &Registry, manifest: &Value) -> Option<(Gvr, bool)> {
    let api_version = manifest["apiVersion"].as_str()?;
    let kind = manifest["kind"].as_str()?;
    registry
        .lookup_kind(api_version, kind)
        .map(|r| (r.gvr, r.namespaced))
}

/// kapp's apply order: namespaces and the things pods need first, packages before their installs.
fn apply_rank(manifest: &Value) -> u8 {
    match manifest["kind"].as_str().unwrap_or_default() {
        "Namespace" => 0,
        "ServiceAccount" | "Secret" | "ConfigMap" | "PersistentVolumeClaim" => 1,
        "Package" => 2,
        "PackageInstall" | "App" => 4,
        _ => 3,
    }
}

/// The value of `kapp.k14s.io/app` for an App: stable, numeric as kapp makes it.
pub fn app_label_value(app: &Value) -> String {
    let uid = app["metadata"]["uid"]
        .as_str()
        .unwrap_or_else(|| app["metadata"]["name"].as_str().unwrap_or_default());
    let digest = Sha256::digest(uid.as_bytes());
    let number =
        u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 9_000_000_000_000_000_000;
    (number + 1_000_000_000_000_000_000).to_string()
}

struct Change {
    desired: Value,
    live: Option<Value>,
    gvr: Gvr,
    namespace: Option<String>,
    op: Op,
}

pub(crate) async fn deploy(
    shared: &Shared,
    app: &Value,
    manifests: Vec<Value>,
) -> Result<Report, String> {
    let app_namespace = app["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let app_name = app["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(service_account) = app["spec"]["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
    else {
        return Err("Expected service account or cluster to be specified".into());
    };
    // Everything kapp does, it does with the App's service account token.
    let client = shared
        .api
        .client(UserInfo::service_account(&app_namespace, service_account));
    let label_value = app_label_value(app);
    let default_namespace = app["spec"]["defaultNamespace"]
        .as_str()
        .unwrap_or(&app_namespace)
        .to_string();
    record_app(&client, &app_namespace, &app_name, &label_value).await?;

    let mut manifests: Vec<Value> = manifests.into_iter().filter(|m| m.is_object()).collect();
    manifests.sort_by_key(apply_rank);
    let mut changes = Vec::with_capacity(manifests.len());
    for manifest in &manifests {
        let (gvr, namespaced) = resource_of(shared.api.registry(), manifest).ok_or_else(|| {
            text::kapp_error(&format!(
                "Expected to find kind '{}' in API resources (apiVersion '{}')",
                manifest["kind"].as_str().unwrap_or_default(),
                manifest["apiVersion"].as_str().unwrap_or_default()
            ))
        })?;
        let desired = diff::with_ownership(manifest, &label_value, &default_namespace, namespaced);
        let namespace = desired["metadata"]["namespace"]
            .as_str()
            .map(str::to_string);
        let name = desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let live = match client.get(gvr, namespace.as_deref(), &name).await {
            Ok(live) => Some(live),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                return Err(text::kapp_error(&format!(
                    "Getting {}: {}",
                    diff::describe(&desired),
                    e.message
                )));
            }
        };
        let op = diff::op(&desired, live.as_ref());
        changes.push(Change {
            desired,
            live,
            gvr,
            namespace,
            op,
        });
    }

    let deadline = Instant::now() + shared.scaled(WAIT_TIMEOUT);
    let interval = shared
        .scaled(WAIT_CHECK_INTERVAL)
        .max(Duration::from_millis(5));

    // First batch: unchanged resources that are not done are waited on before anything is applied.
    let pending: Vec<&Change> = changes
        .iter()
        .filter(|c| {
            c.op == Op::Noop
                && c.live
                    .as_ref()
                    .is_some_and(|l| diff::readiness(l) != Readiness::Succeeded)
        })
        .collect();
    wait_all(&client, &pending, &[], shared, deadline, interval).await?;

    // Then the changes, in order.
    let mut writes = Vec::new();
    let mut stdout = String::from("Changes\n\nNamespace  Name  Kind  Op\n");
    let mut applied = Vec::new();
    for change in changes.iter().filter(|c| c.op != Op::Noop) {
        let described = diff::describe(&change.desired);
        stdout.push_str(&format!(
            "{}  {}  {}  {}\n",
            change.namespace.as_deref().unwrap_or("(cluster)"),
            change.desired["metadata"]["name"]
                .as_str()
                .unwrap_or_default(),
            change.desired["kind"].as_str().unwrap_or_default(),
            change.op.as_str()
        ));
        let result = match (&change.op, &change.live) {
            (Op::Update, Some(live)) => {
                let body = diff::update_body(&change.desired, live);
                client
                    .update(
                        change.gvr,
                        change.namespace.as_deref(),
                        body,
                        &WriteOptions::default(),
                    )
                    .await
            }
            _ => {
                client
                    .create(
                        change.gvr,
                        change.namespace.as_deref(),
                        change.desired.clone(),
                        &WriteOptions::default(),
                    )
                    .await
            }
        };
        match result {
            Ok(written) => {
                if let Some(rv) = resource_version(&written) {
                    writes.push((change.gvr, rv));
                }
                applied.push(change);
            }
            Err(e) => return Err(apply_error(change.op, &described, &e)),
        }
    }

    // Then everything applied is waited on, once its controllers have seen it.
    let waited: Vec<&Change> = applied
        .into_iter()
        .filter(|c| matches!(c.gvr, g if g == gvr::PACKAGE_INSTALLS || g == gvr::APPS))
        .collect();
    wait_all(&client, &waited, &writes, shared, deadline, interval).await?;

    stdout.push_str("\nSucceeded\n");
    let mut namespaces: Vec<String> = changes.iter().filter_map(|c| c.namespace.clone()).collect();
    namespaces.sort();
    namespaces.dedup();
    let mut group_kinds: Vec<Value> = changes
        .iter()
        .map(|c| json!({"group": c.gvr.group, "kind": c.desired["kind"]}))
        .collect();
    group_kinds.dedup();
    Ok(Report {
        stdout,
        associated_resources: json!({"label": format!("kapp.k14s.io/app={label_value}"), "namespaces": namespaces, "groupKinds": group_kinds}),
    })
}

/// `kapp: Error: update statefulset/harbor-database (apps/v1) namespace: …:` then, each on its own
/// indented line, `Updating resource …:`, `API server says:`, the API server's message (itself broken
/// before every `: ` and an upper-case letter) and `(reason: Invalid)`: go-cli-ui's MultiLineError.
fn apply_error(op: Op, described: &str, error: &Status) -> String {
    let (verb, gerund) = match op {
        Op::Update => ("update", "Updating"),
        _ => ("create", "Creating"),
    };
    text::kapp_error(&format!(
        "{verb} {described}: {gerund} resource {described}: API server says: {} (reason: {})",
        error.message, error.reason
    ))
}

/// Waits until every change is done-and-successful; the first failure ends the deploy.
async fn wait_all(
    client: &Client,
    changes: &[&Change],
    writes: &[(Gvr, u64)],
    shared: &Shared,
    deadline: Instant,
    interval: Duration,
) -> Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    shared.settled(writes).await;
    let mut remaining: Vec<&Change> = changes.to_vec();
    loop {
        let mut still = Vec::new();
        for change in remaining {
            let name = change.desired["metadata"]["name"]
                .as_str()
                .unwrap_or_default();
            let live = client
                .get(change.gvr, change.namespace.as_deref(), name)
                .await
                .map_err(|e| {
                    text::kapp_error(&format!(
                        "waiting on reconcile {}: {}",
                        diff::describe(&change.desired),
                        e.message
                    ))
                })?;
            match diff::readiness(&live) {
                Readiness::Succeeded => {}
                Readiness::Failed(message) => {
                    return Err(text::kapp_error(&format!(
                        "waiting on reconcile {}: Finished unsuccessfully ({message})",
                        diff::describe(&live)
                    )));
                }
                Readiness::InProgress(_) => still.push(change),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = still.iter().map(|c| diff::describe(&c.desired)).collect();
            return Err(text::kapp_error(&format!(
                "Timed out waiting after 15m0s for resources: [{}]",
                names.join(", ")
            )));
        }
        remaining = still;
        tokio::time::sleep(interval).await;
    }
}

/// kapp's record of the app: a ConfigMap `<app>.app` labelled `kapp.k14s.io/is-app`.
async fn record_app(
    client: &Client,
    namespace: &str,
    app: &str,
    label_value: &str,
) -> Result<(), String> {
    let name = format!("{app}.app");
    match client.get(gvr::CONFIG_MAPS, Some(namespace), &name).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            let spec = json!({"labelKey": "kapp.k14s.io/app", "labelValue": label_value});
            let record = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": {"kapp.k14s.io/is-app": ""}},
                "data": {"spec": spec.to_string()}
            });
            match client
                .create(
                    gvr::CONFIG_MAPS,
                    Some(namespace),
                    record,
                    &WriteOptions::default(),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(text::kapp_error(&format!("Creating app: {}", e.message))),
            }
        }
        Err(e) => Err(text::kapp_error(&format!("Getting app: {}", e.message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_labels_are_numeric_and_stable() {
        let app = json!({"metadata": {"uid": "6b1e"}});
        let value = app_label_value(&app);
        assert_eq!(value.len(), 19);
        assert!(value.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(value, app_label_value(&app));
        assert_ne!(
            value,
            app_label_value(&json!({"metadata": {"uid": "other"}}))
        );
    }

    #[test]
    fn packages_are_applied_before_the_installs_that_use_them() {
        let mut manifests = [
            json!({"kind": "PackageInstall"}),
            json!({"kind": "Deployment"}),
            json!({"kind": "Package"}),
            json!({"kind": "Namespace"}),
        ];
        manifests.sort_by_key(apply_rank);
        let kinds: Vec<&str> = manifests
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["Namespace", "Package", "Deployment", "PackageInstall"]
        );
    }

    #[test]
    fn an_update_refused_by_the_server_is_reported_as_kapp_reports_it() {
        let error = Status {
            code: 422,
            reason: "Invalid".into(),
            message: "StatefulSet.apps \"harbor-database\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
            details: None,
        };
        let text = apply_error(
            Op::Update,
            "statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8",
            &error,
        );
        // As kapp prints it: nested, one piece per line, each indented two more spaces.
        assert_eq!(
            text,
            "kapp: Error: update statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8:\n  \
             Updating resource statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8:\n    \
             API server says:\n      \
             StatefulSet.apps \"harbor-database\" is invalid: spec:\n        \
             Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden (reason: Invalid)"
        );
    }
}
