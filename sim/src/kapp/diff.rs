//! kapp's view of one resource: the ownership it stamps on what it deploys, whether the live object
//! has drifted from the manifest, and when a Carvel resource it waits on is done.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub const APP_LABEL: &str = "kapp.k14s.io/app";
pub const ASSOCIATION_LABEL: &str = "kapp.k14s.io/association";
pub const IDENTITY_ANNOTATION: &str = "kapp.k14s.io/identity";
pub const ORIGINAL_ANNOTATION: &str = "kapp.k14s.io/original";
pub const ORIGINAL_DIFF_MD5_ANNOTATION: &str = "kapp.k14s.io/original-diff-md5";

/// What kapp will do with one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Noop,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Noop => "noop",
        }
    }
}

/// `v1;<ns>/<group>/<Kind>/<name>;<apiVersion>`: how kapp names a resource it owns.
pub fn identity(manifest: &Value) -> String {
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    format!(
        "v1;{}/{}/{}/{};{}",
        manifest["metadata"]["namespace"].as_str().unwrap_or(""),
        group,
        manifest["kind"].as_str().unwrap_or_default(),
        manifest["metadata"]["name"].as_str().unwrap_or_default(),
        api_version
    )
}

/// The manifest as kapp applies it: namespace defaulted, ownership labels and annotations added.
pub fn with_ownership(
    manifest: &Value,
    app_label_value: &str,
    default_namespace: &str,
    namespaced: bool,
) -> Value {
    let mut desired = manifest.clone();
    if !desired["metadata"].is_object() {
        desired["metadata"] = json!({});
    }
    if namespaced
        && desired["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    {
        desired["metadata"]["namespace"] = json!(default_namespace);
    }
    let original = serde_json::to_string(&desired).unwrap_or_default();
    let identity = identity(&desired);
    let metadata = desired["metadata"]
        .as_object_mut()
        .expect("metadata is an object");
    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[APP_LABEL] = json!(app_label_value);
    labels[ASSOCIATION_LABEL] = json!(format!("v1.{}", md5_hex(&identity)));
    let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[IDENTITY_ANNOTATION] = json!(identity);
    annotations[ORIGINAL_DIFF_MD5_ANNOTATION] = json!(md5_hex(&original));
    annotations[ORIGINAL_ANNOTATION] = json!(original);
    desired
}

/// kapp stores MD5 sums; any stable digest serves the simulator, so SHA-256 cut to 32 hex digits.
fn md5_hex(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Compares a live object with what kapp would apply. Labels and annotations must match exactly (a
/// hand-added label is drift kapp removes); elsewhere only the fields the manifest sets count, so the
/// server's defaults are not drift.
pub fn op(desired: &Value, live: Option<&Value>) -> Op {
    let Some(live) = live else { return Op::Create };
    let same_map = |field: &str| {
        let empty = Map::new();
        let d = desired["metadata"][field].as_object().unwrap_or(&empty);
        let l = live["metadata"][field].as_object().unwrap_or(&empty);
        d == l
    };
    if !same_map("labels") || !same_map("annotations") {
        return Op::Update;
    }
    let desired_body = desired
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"));
    for (key, value) in desired_body {
        if !is_subset(value, &live[key]) {
            return Op::Update;
        }
    }
    Op::Noop
}

/// Whether every field `desired` sets has the same value in `live`.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| is_subset(v, lv))),
        (Value::Object(d), Value::Null) => d.is_empty(),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(d, l)| is_subset(d, l))
        }
        (d, l) => d == l,
    }
}

/// The body kapp sends to update `live` to `desired`: the live object with the manifest's fields laid
/// over it (kapp's rebase keeps what the server and other controllers set), labels and annotations
/// from the manifest only, and the live resourceVersion as precondition.
pub fn update_body(desired: &Value, live: &Value) -> Value {
    let mut body = live.clone();
    overlay(&mut body, desired);
    body["metadata"]["labels"] = desired["metadata"]["labels"].clone();
    body["metadata"]["annotations"] = desired["metadata"]["annotations"].clone();
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("status");
    }
    body
}

fn overlay(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(k) {
                    Some(existing) => overlay(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(t)) if b.len() == t.len() => {
            for (b, t) in b.iter_mut().zip(t) {
                overlay(b, t);
            }
        }
        (base, top) => *base = top.clone(),
    }
}

/// How far a resource kapp waits on has got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    InProgress(String),
    Succeeded,
    /// The text kapp puts after `Finished unsuccessfully`.
    Failed(String),
}

/// kapp's wait rule for Carvel Apps and PackageInstalls; anything else is done once applied.
pub fn readiness(object: &Value) -> Readiness {
    let kind = object["kind"].as_str().unwrap_or_default();
    if !matches!(kind, "App" | "PackageInstall") {
        return Readiness::Succeeded;
    }
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = object["status"]["observedGeneration"].as_i64().unwrap_or(0);
    if generation != observed {
        return Readiness::InProgress(format!(
            "Waiting for generation {generation} to be observed"
        ));
    }
    let conditions = object["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let is_true = |c: &&Value| c["status"] == "True";
    for condition in conditions.iter().filter(is_true) {
        let reason = condition["reason"].as_str().unwrap_or("");
        let message = condition["message"].as_str().unwrap_or("");
        match condition["type"].as_str() {
            Some("Reconciling") => return Readiness::InProgress("Reconciling".into()),
            Some("ReconcileFailed") => {
                return Readiness::Failed(format!(
                    "Reconcile failed: {reason} (message: {message})"
                ));
            }
            Some("ReconcileSucceeded") => return Readiness::Succeeded,
            Some("DeleteFailed") => {
                return Readiness::Failed(format!("Delete failed: {reason} (message: {message})"));
            }
            _ => {}
        }
    }
    if object["spec"]["paused"] == true || object["spec"]["canceled"] == true {
        return Readiness::Failed("Canceled/paused".into());
    }
    Readiness::InProgress("Waiting on reconcile".into())
}

/// `packageinstall/<name> (packaging.carvel.dev/v1alpha1) namespace: <ns>`, as kapp describes a resource.
pub fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    match object["metadata"]["namespace"]
        .as_str()
        .filter(|ns| !ns.is_empty())
    {
        Some(ns) => format!("{kind}/{name} ({api_version}) namespace: {ns}"),
        None => format!("{kind}/{name} ({api_version}) cluster"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkgi(labels: Value) -> Value {
        json!({
            "apiVersion": "packaging.carvel.dev/v1alpha1", "kind": "PackageInstall",
            "metadata": {"name": "tkg-controller", "namespace": "svc-tkg-domain-c1234", "labels": labels},
            "spec": {"packageRef": {"refName": "tkg-controller.tanzu.vmware.com"}}
        })
    }

    #[test]
    fn ownership_is_stamped_with_kapps_labels_and_identity() {
        let desired = with_ownership(&pkgi(json!({})), "1234", "default", true);
        assert_eq!(desired["metadata"]["labels"][APP_LABEL], "1234");
        assert!(
            desired["metadata"]["labels"][ASSOCIATION_LABEL]
                .as_str()
                .unwrap()
                .starts_with("v1.")
        );
        assert_eq!(
            desired["metadata"]["annotations"][IDENTITY_ANNOTATION],
            "v1;svc-tkg-domain-c1234/packaging.carvel.dev/PackageInstall/tkg-controller;packaging.carvel.dev/v1alpha1"
        );
    }

    #[test]
    fn server_defaults_and_status_are_not_drift_but_a_hand_added_label_is() {
        let desired = with_ownership(&pkgi(json!({})), "1234", "default", true);
        assert_eq!(op(&desired, None), Op::Create);
        let mut live = desired.clone();
        live["metadata"]["resourceVersion"] = json!("7");
        live["spec"]["syncPeriod"] = json!("10m");
        live["status"] = json!({"observedGeneration": 1});
        assert_eq!(op(&desired, Some(&live)), Op::Noop);
        live["metadata"]["labels"]["fix-trigger"] = json!("true");
        assert_eq!(op(&desired, Some(&live)), Op::Update);
        let update = update_body(&desired, &live);
        assert!(update["metadata"]["labels"].get("fix-trigger").is_none());
        assert_eq!(update["metadata"]["resourceVersion"], "7");
        assert_eq!(
            update["spec"]["syncPeriod"], "10m",
            "fields the manifest does not set are kept"
        );
    }

    #[test]
    fn a_changed_field_the_manifest_sets_is_drift() {
        let desired = json!({"kind": "PersistentVolumeClaim", "metadata": {}, "spec": {"resources": {"requests": {"storage": "55Gi"}}}});
        let mut live = desired.clone();
        live["spec"]["resources"]["requests"]["storage"] = json!("60Gi");
        assert_eq!(op(&desired, Some(&live)), Op::Update);
        assert_eq!(
            update_body(&desired, &live)["spec"]["resources"]["requests"]["storage"],
            "55Gi"
        );
    }

    #[test]
    fn readiness_follows_kapps_wait_rule_for_carvel_resources() {
        let mut object = pkgi(json!({}));
        object["metadata"]["generation"] = json!(2);
        object["status"] = json!({"observedGeneration": 1});
        assert!(
            matches!(readiness(&object), Readiness::InProgress(m) if m == "Waiting for generation 2 to be observed")
        );
        object["status"] = json!({"observedGeneration": 2, "conditions": [{"type": "ReconcileFailed", "status": "True", "message": "Fetching resources: Error (see .status.usefulErrorMessage for details)"}]});
        assert_eq!(
            readiness(&object),
            Readiness::Failed("Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details))".into())
        );
        object["status"]["conditions"] = json!([{"type": "ReconcileSucceeded", "status": "True"}]);
        assert_eq!(readiness(&object), Readiness::Succeeded);
        assert_eq!(
            readiness(&json!({"kind": "ConfigMap"})),
            Readiness::Succeeded
        );
    }

    #[test]
    fn resources_are_described_as_kapp_describes_them() {
        assert_eq!(
            describe(&pkgi(json!({}))),
            "packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234"
        );
    }
}
