//! Plain Kubernetes objects for `override-image` and `values-edit`: typed resources by name, writes with
//! a resourceVersion precondition (never retried: a conflict means someone else wrote), unified diffs.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

use crate::api::SupervisorApi;
use crate::error::{Failure, Result};

pub fn secrets() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Secret"), "secrets")
}

pub fn pvcs() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", "PersistentVolumeClaim"),
        "persistentvolumeclaims",
    )
}

pub fn statefulsets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "StatefulSet"),
        "statefulsets",
    )
}

fn api(supervisor: &SupervisorApi, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(supervisor.cluster.client.clone(), namespace, resource)
}

fn to_dynamic(object: &Value) -> Result<DynamicObject> {
    serde_json::from_value(object.clone()).map_err(|e| {
        Failure::new(
            format!("cannot encode the object: {e}"),
            "report this as a bug",
        )
    })
}

fn params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some("kubectl-supsvc".into()),
    }
}

/// PUT the object: its `metadata.resourceVersion` is the precondition (409 if it changed since read).
pub async fn replace(
    supervisor: &SupervisorApi,
    resource: &ApiResource,
    namespace: &str,
    object: &Value,
    dry_run: bool,
) -> Result<Value> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let body = to_dynamic(object)?;
    api(supervisor, resource, namespace)
        .replace(name, &params(dry_run), &body)
        .await
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
        .map_err(|e| {
            let mut f = Failure::from_kube(
                &e,
                &format!("update {}/{name} -n {namespace}", resource.plural),
                &supervisor.cluster.server,
            );
            if matches!(&e, kube::Error::Api(s) if s.code == 409) {
                f.hint = "it changed since supsvc read it (someone else wrote it); nothing of this write was applied: run the command again".into();
            }
            f
        })
}

/// POST a new object.
pub async fn create(
    supervisor: &SupervisorApi,
    resource: &ApiResource,
    namespace: &str,
    object: &Value,
    dry_run: bool,
) -> Result<Value> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let body = to_dynamic(object)?;
    api(supervisor, resource, namespace)
        .create(&params(dry_run), &body)
        .await
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
        .map_err(|e| {
            Failure::from_kube(
                &e,
                &format!("create {}/{name} -n {namespace}", resource.plural),
                &supervisor.cluster.server,
            )
        })
}

/// The object without what the server maintains, for diffs and rewrites.
pub fn without_server_fields(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(k);
        }
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    o
}

/// YAML as kubectl prints it (keys sorted).
pub fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// A unified diff of two texts (`---`/`+++` headers, 3 lines of context); empty when equal.
pub fn unified_diff(before: &str, after: &str, old_name: &str, new_name: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_are_unified_and_empty_when_equal() {
        assert_eq!(unified_diff("a\n", "a\n", "x", "y"), "");
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "before", "after");
        assert!(d.starts_with("--- before\n+++ after\n@@"), "{d}");
        assert!(d.contains("-b\n+B\n"), "{d}");
    }

    #[test]
    fn server_fields_are_dropped() {
        let o = json!({"metadata": {"name": "n", "resourceVersion": "5", "managedFields": [], "uid": "u", "generation": 2,
                                    "annotations": {"a": "b"}}, "spec": {"x": 1}, "status": {"y": 2}});
        assert_eq!(
            without_server_fields(&o),
            json!({"metadata": {"name": "n", "annotations": {"a": "b"}}, "spec": {"x": 1}})
        );
    }
}
