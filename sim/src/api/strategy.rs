//! What the server sets or resets on a write, before validation: uid, timestamps, generation, and the
//! status-subresource split ("strategies" in kube-apiserver's terms).

use serde_json::{Map, Value, json};

use super::gvr;
use super::registry::ResourceType;

/// RFC 3339 in seconds, as `creationTimestamp` is written.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// Fills in what the server owns on create.
pub fn prepare_create(rt: &ResourceType, object: &mut Value, uid: String) {
    if rt.gvr == gvr::SECRETS {
        fold_string_data(object);
    }
    let meta = metadata_mut(object);
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(k);
    }
    meta.insert("uid".into(), Value::from(uid));
    meta.insert("creationTimestamp".into(), Value::from(now_rfc3339()));
    if rt.has_generation {
        meta.insert("generation".into(), Value::from(1));
    } else {
        meta.remove("generation");
    }
    default_fields(rt, object);
    let meta = metadata_mut(object);
    if rt.gvr == gvr::NAMESPACES {
        let name = meta.get("name").cloned().unwrap_or(Value::Null);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Value::Object(l) = labels {
            l.insert("kubernetes.io/metadata.name".into(), name);
        }
        object["status"] = json!({"phase": "Active"});
    } else if rt.status_subresource {
        // As on the real server: the status of a new object is the server's, not the client's.
        if rt.custom {
            if let Some(o) = object.as_object_mut() {
                o.remove("status");
            }
        } else if rt.gvr == gvr::PERSISTENT_VOLUME_CLAIMS || rt.gvr == gvr::PODS {
            object["status"] = json!({"phase": "Pending"});
        } else {
            object["status"] = json!({});
        }
    }
}

/// A Secret's `stringData` is write-only: the server folds it into `data` (base64), over any same key.
pub fn fold_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(object) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = object.remove("stringData") else {
        return;
    };
    let data = object.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    for (key, value) in strings {
        let text = value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        data[key] = Value::from(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// The server's defaulting of fields a client may leave out.
fn default_fields(rt: &ResourceType, object: &mut Value) {
    if rt.gvr == gvr::SECRETS
        && object
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        object["type"] = Value::from("Opaque");
    }
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_part(object: &Value) -> Map<String, Value> {
    let mut m = object.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "status", "apiVersion", "kind"] {
        m.remove(k);
    }
    m
}

/// Resets what a client may not change through the main resource and bumps `generation` when the spec changed.
pub fn prepare_update(rt: &ResourceType, old: &Value, new: &mut Value) {
    default_fields(rt, new);
    if rt.gvr == gvr::SECRETS {
        fold_string_data(new);
    }
    if rt.status_subresource {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    keep_server_metadata(old, new);
    if rt.has_generation {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bumped = if spec_part(old) != spec_part(new) {
            generation + 1
        } else {
            generation
        };
        metadata_mut(new).insert("generation".into(), Value::from(bumped));
    }
    if rt.gvr == gvr::NAMESPACES {
        let name = old
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null);
        if let Value::Object(l) = metadata_mut(new)
            .entry("labels")
            .or_insert_with(|| json!({}))
        {
            l.insert("kubernetes.io/metadata.name".into(), name);
        }
    }
}

/// Rewrites the resource quantities of a built-in kind in the canonical form kube-apiserver stores and
/// prints (a PVC request written `2048Mi` reads back `2Gi`, `1000m` CPU reads `1`): the values of
/// `resources.requests`/`resources.limits` anywhere (containers, templates, claims) and of
/// `status.capacity`/`status.allocatable`, `spec.hard`/`status.hard`/`status.used` (quotas) and
/// `spec.capacity` (PersistentVolumes). The real server decodes them into `resource.Quantity`, whose
/// JSON form is canonical (`k8s.io/apimachinery/pkg/api/resource`, `CanonicalizeBytes`); the form is
/// supsvc-core's [`supsvc_core::quantity::Quantity::canonical`]. Values that do not parse are left for
/// validation to refuse. Custom resources keep what was written, as on the real server.
pub fn canonicalize_quantities(rt: &ResourceType, object: &mut Value) {
    if rt.custom {
        return;
    }
    fn canonical_map(m: &mut Value) {
        for v in m.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            if let Some(q) = v
                .as_str()
                .and_then(|s| supsvc_core::quantity::Quantity::parse(s).ok())
            {
                *v = Value::from(q.canonical());
            }
        }
    }
    fn walk(v: &mut Value, parent: &str) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    let quantities = matches!(
                        (parent, k.as_str()),
                        ("resources", "requests" | "limits")
                            | ("status", "capacity" | "allocatable" | "hard" | "used")
                            | ("spec", "hard" | "capacity")
                    );
                    if quantities {
                        canonical_map(child);
                    } else {
                        walk(child, k);
                    }
                }
            }
            Value::Array(a) => {
                for child in a {
                    walk(child, parent);
                }
            }
            _ => {}
        }
    }
    walk(object, "");
}

/// A write to a CertificateSigningRequest's `/approval` (`kubectl certificate approve|deny`): only
/// `status.conditions` changes (kubernetes `pkg/registry/certificates/certificates/strategy.go`,
/// `csrApprovalStrategy`).
pub fn prepare_approval_update(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    if !out.get("status").is_some_and(Value::is_object) {
        out["status"] = json!({});
    }
    match new.pointer("/status/conditions") {
        Some(c) => out["status"]["conditions"] = c.clone(),
        None => {
            if let Some(s) = out.get_mut("status").and_then(Value::as_object_mut) {
                s.remove("conditions");
            }
        }
    }
    out
}

/// A write to `/status`: only `status` changes.
pub fn prepare_status_update(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    match new.get("status") {
        Some(s) => out["status"] = s.clone(),
        None => {
            if let Some(o) = out.as_object_mut() {
                o.remove("status");
            }
        }
    }
    out
}

/// A write to a Pod's `/ephemeralcontainers`: only `spec.ephemeralContainers` changes (kube-apiserver's
/// `dropNonEphemeralContainerUpdates`, pkg/registry/core/pod/strategy.go).
pub fn prepare_ephemeral_containers_update(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    let containers = new.pointer("/spec/ephemeralContainers").cloned();
    if let Some(Value::Object(spec)) = out.get_mut("spec") {
        match containers {
            Some(c) => spec.insert("ephemeralContainers".into(), c),
            None => spec.remove("ephemeralContainers"),
        };
    }
    out
}

fn keep_server_metadata(old: &Value, new: &mut Value) {
    let old_meta = old
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let meta = metadata_mut(new);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "name",
        "namespace",
        "generateName",
    ] {
        match old_meta.get(k) {
            Some(v) => meta.insert(k.into(), v.clone()),
            None => meta.remove(k),
        };
    }
    if let Some(v) = old_meta.get("resourceVersion") {
        meta.insert("resourceVersion".into(), v.clone());
    }
}

/// Equal but for `resourceVersion` and `managedFields`: a write that changes nothing is not persisted.
pub fn unchanged(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(Value::Object(m)) = v.get_mut("metadata") {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(old) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry;

    #[test]
    fn quantities_of_built_in_kinds_read_back_canonical() {
        let pvc = registry::lookup(gvr::PERSISTENT_VOLUME_CLAIMS).unwrap();
        let mut claim = json!({"spec": {"resources": {"requests": {"storage": "2048Mi"}}},
            "status": {"capacity": {"storage": "1024Mi"}}});
        canonicalize_quantities(pvc, &mut claim);
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "2Gi");
        assert_eq!(claim["status"]["capacity"]["storage"], "1Gi");
        let sts = registry::lookup(gvr::STATEFUL_SETS).unwrap();
        let mut set = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1000m", "memory": "1.5Gi"}, "requests": {"cpu": "0.5", "memory": "bad"}}}
        ]}}, "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "10240Mi"}}}}]}});
        canonicalize_quantities(sts, &mut set);
        let c = &set["spec"]["template"]["spec"]["containers"][0]["resources"];
        assert_eq!(c["limits"]["cpu"], "1");
        assert_eq!(c["limits"]["memory"], "1536Mi");
        assert_eq!(c["requests"]["cpu"], "500m");
        assert_eq!(c["requests"]["memory"], "bad");
        assert_eq!(
            set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "10Gi"
        );
        let pkgi = registry::lookup(gvr::PACKAGE_INSTALLS).unwrap();
        let mut custom = json!({"spec": {"resources": {"requests": {"storage": "2048Mi"}}}});
        canonicalize_quantities(pkgi, &mut custom);
        assert_eq!(custom["spec"]["resources"]["requests"]["storage"], "2048Mi");
    }

    #[test]
    fn generation_rules() {
        let pkgi = registry::lookup(gvr::PACKAGE_INSTALLS).unwrap();
        let old = json!({"metadata": {"name": "a", "generation": 3, "uid": "u"}, "spec": {"paused": false}, "status": {"x": 1}});
        let cases = [
            (
                "label only",
                json!({"metadata": {"name": "a", "labels": {"l": "1"}}, "spec": {"paused": false}}),
                3,
                json!({"x": 1}),
            ),
            (
                "spec",
                json!({"metadata": {"name": "a"}, "spec": {"paused": true}}),
                4,
                json!({"x": 1}),
            ),
            (
                "status ignored",
                json!({"metadata": {"name": "a"}, "spec": {"paused": false}, "status": {"x": 2}}),
                3,
                json!({"x": 1}),
            ),
            (
                "top-level field",
                json!({"metadata": {"name": "a"}, "spec": {"paused": false}, "data": 1}),
                4,
                json!({"x": 1}),
            ),
        ];
        for (name, mut new, generation, status) in cases {
            prepare_update(pkgi, &old, &mut new);
            assert_eq!(new["metadata"]["generation"], generation, "{name}");
            assert_eq!(new["status"], status, "{name}");
            assert_eq!(new["metadata"]["uid"], "u", "{name}");
        }
        let status =
            prepare_status_update(&old, &json!({"spec": {"paused": true}, "status": {"y": 1}}));
        assert_eq!(status["spec"]["paused"], false);
        assert_eq!(status["status"], json!({"y": 1}));
    }

    #[test]
    fn create_drops_custom_status() {
        let app = registry::lookup(gvr::APPS).unwrap();
        let mut o = json!({"metadata": {"name": "a", "resourceVersion": "9"}, "status": {"x": 1}});
        prepare_create(app, &mut o, "u".into());
        assert_eq!(o.get("status"), None);
        assert_eq!(o["metadata"]["generation"], 1);
        assert_eq!(o["metadata"].get("resourceVersion"), None);
    }

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let mut secret = json!({"data": {"a": "eA=="}, "stringData": {"a": "new", "b": "two"}});
        fold_string_data(&mut secret);
        assert_eq!(secret, json!({"data": {"a": "bmV3", "b": "dHdv"}}));
    }
}
