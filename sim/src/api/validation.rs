//! Validation of creates and updates, with the real server's field errors and wording.

use serde_json::{Map, Value};

use super::gvr;
use super::quantity::{self, Quantity, semantic_eq};
use super::registry::ResourceType;
use super::status::FieldError;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const STS_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
const STS_UPDATABLE: &[&str] = &[
    "replicas",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];
const PVC_IMMUTABLE: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain: what most object names must be.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Errors of `metadata.name` for a kind (namespaces need DNS labels; Carvel `Package` names carry `+`).
pub fn validate_name(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
    }
    if rt.gvr == gvr::PACKAGES || rt.gvr == gvr::PACKAGE_METADATAS {
        return if name.contains('/') || name == "." || name == ".." {
            vec![FieldError::invalid(
                "metadata.name",
                name,
                "may not contain '/'",
            )]
        } else {
            Vec::new()
        };
    }
    if rt.gvr == gvr::NAMESPACES {
        if name.len() > 63 {
            return vec![FieldError::invalid(
                "metadata.name",
                name,
                "must be no more than 63 characters",
            )];
        }
        return if is_label(name) {
            Vec::new()
        } else {
            vec![FieldError::invalid("metadata.name", name, LABEL_MSG)]
        };
    }
    if name.len() > 253 {
        return vec![FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 253 characters",
        )];
    }
    if is_dns_subdomain(name) {
        Vec::new()
    } else {
        vec![FieldError::invalid("metadata.name", name, SUBDOMAIN_MSG)]
    }
}

/// Errors of an object about to be created.
pub fn validate_create(rt: &ResourceType, object: &Value) -> Vec<FieldError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut errors = validate_name(rt, name);
    errors.extend(validate_labels(object));
    if rt.gvr == gvr::PERSISTENT_VOLUME_CLAIMS {
        let storage = object
            .pointer("/spec/resources/requests/storage")
            .and_then(Value::as_str);
        match storage {
            None => errors.push(FieldError::required("spec.resources[storage]", "")),
            Some(s) if quantity::parse(s).is_none() => {
                errors.push(FieldError::invalid("spec.resources.requests.storage", s, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
            }
            Some(_) => {}
        }
        if object
            .pointer("/spec/accessModes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            errors.push(FieldError::required(
                "spec.accessModes",
                "at least 1 access mode is required",
            ));
        }
    }
    errors
}

fn validate_labels(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        for (k, v) in labels {
            let value = v.as_str().unwrap_or_default();
            let ok = value.is_empty()
                || (value.len() <= 63
                    && value
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
                    && value.as_bytes()[0].is_ascii_alphanumeric()
                    && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric());
            if !v.is_string() || !ok {
                errors.push(FieldError::invalid(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ));
            }
            if k.is_empty() {
                errors.push(FieldError::invalid(
                    "metadata.labels",
                    k,
                    "name part must be non-empty",
                ));
            }
        }
    }
    errors
}

/// Errors of an update from `old` to `new` (after the server has reset what the client may not change).
pub fn validate_update(rt: &ResourceType, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors = validate_labels(new);
    if rt.gvr == gvr::STATEFUL_SETS {
        errors.extend(statefulset_update(old, new));
    } else if rt.gvr == gvr::PERSISTENT_VOLUME_CLAIMS {
        errors.extend(pvc_update(old, new));
    } else if rt.gvr == gvr::PODS {
        errors.extend(ephemeral_containers_update(old, new));
    }
    errors
}

/// Ephemeral containers may be added, never removed nor changed (kube-apiserver's
/// `ValidatePodEphemeralContainersUpdate`, pkg/apis/core/validation/validation.go).
fn ephemeral_containers_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let list = |o: &Value| -> Vec<Value> {
        o.pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let after = list(new);
    list(old)
        .iter()
        .filter_map(|c| {
            let name = c["name"].as_str().unwrap_or_default();
            match after.iter().find(|n| n["name"] == c["name"]) {
                None => Some(format!(
                    "existing ephemeral containers {name:?} may not be removed"
                )),
                Some(n) if n != c => Some(format!(
                    "existing ephemeral containers {name:?} may not be changed"
                )),
                Some(_) => None,
            }
        })
        .map(|detail| FieldError::forbidden("spec.ephemeralContainers", &detail))
        .collect()
}

fn spec_without(object: &Value, keys: &[&str]) -> Map<String, Value> {
    let mut spec = object
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in keys {
        spec.remove(*k);
    }
    spec
}

fn statefulset_update(old: &Value, new: &Value) -> Vec<FieldError> {
    // ValidateStatefulSetUpdate compares the rest of the spec with apiequality.Semantic.DeepEqual, which
    // compares quantities by value: a claim template of 2048Mi is the 2Gi one.
    if semantic_eq(
        &Value::Object(spec_without(old, STS_UPDATABLE)),
        &Value::Object(spec_without(new, STS_UPDATABLE)),
    ) {
        Vec::new()
    } else {
        vec![FieldError::forbidden("spec", STS_FORBIDDEN)]
    }
}

fn storage_of(object: &Value) -> Option<Quantity> {
    object
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(quantity::parse)
}

fn pvc_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let bound = new.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    let mut old_spec = spec_without(old, &[]);
    let mut new_spec = spec_without(new, &[]);
    // The volume binder sets volumeName once.
    if old_spec
        .get("volumeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        match new_spec.get("volumeName") {
            Some(v) => old_spec.insert("volumeName".into(), v.clone()),
            None => old_spec.remove("volumeName"),
        };
    }
    if bound {
        for spec in [&mut old_spec, &mut new_spec] {
            if let Some(Value::Object(r)) = spec.get_mut("resources")
                && let Some(Value::Object(req)) = r.get_mut("requests")
            {
                req.remove("storage");
            }
            spec.remove("volumeAttributesClassName");
        }
    }
    if !semantic_eq(&Value::Object(old_spec), &Value::Object(new_spec)) {
        errors.push(FieldError::forbidden("spec", PVC_IMMUTABLE));
    }
    if let (Some(o), Some(n)) = (storage_of(old), storage_of(new))
        && n < o
    {
        errors.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than previous value",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry;
    use serde_json::json;

    #[test]
    fn names() {
        let cm = registry::lookup(gvr::CONFIG_MAPS).unwrap();
        let ns = registry::lookup(gvr::NAMESPACES).unwrap();
        let pkg = registry::lookup(gvr::PACKAGES).unwrap();
        let cases = [
            (cm, "a.b-c", true),
            (cm, "Upper", false),
            (cm, "-a", false),
            (cm, "a..b", false),
            (cm, "", false),
            (ns, "a.b", false),
            (ns, "ok-1", true),
            (pkg, "tkg.vsphere.vmware.com.3.5.1-embedded+v1.34", true),
        ];
        for (rt, name, ok) in cases {
            assert_eq!(validate_name(rt, name).is_empty(), ok, "{} {name}", rt.kind);
        }
    }

    #[test]
    fn statefulset_updates() {
        let sts = registry::lookup(gvr::STATEFUL_SETS).unwrap();
        let old = json!({"spec": {"replicas": 1, "serviceName": "a", "volumeClaimTemplates": [{"x": 1}], "template": {}}});
        let cases = [
            (
                json!({"spec": {"replicas": 3, "serviceName": "a", "volumeClaimTemplates": [{"x": 1}], "template": {"y": 1}}}),
                true,
            ),
            (
                json!({"spec": {"replicas": 1, "serviceName": "b", "volumeClaimTemplates": [{"x": 1}], "template": {}}}),
                false,
            ),
            (
                json!({"spec": {"replicas": 1, "serviceName": "a", "volumeClaimTemplates": [{"x": 2}], "template": {}}}),
                false,
            ),
        ];
        // r12: the claim template's size in another spelling is the same quantity (Semantic.DeepEqual).
        let claim = |size: &str| {
            json!({"spec": {"replicas": 1, "serviceName": "a", "template": {}, "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}}]}})
        };
        let old_claim = claim("2Gi");
        for (size, ok) in [
            ("2048Mi", true),
            ("2147483648", true),
            ("2G", false),
            ("3Gi", false),
        ] {
            let errs = validate_update(sts, &old_claim, &claim(size));
            assert_eq!(errs.is_empty(), ok, "2Gi -> {size}: {errs:?}");
        }
        for (new, ok) in cases {
            let errs = validate_update(sts, &old, &new);
            assert_eq!(errs.is_empty(), ok, "{new}");
            if !ok {
                assert_eq!(
                    errs[0].to_string(),
                    format!("spec: Forbidden: {STS_FORBIDDEN}")
                );
            }
        }
    }

    #[test]
    fn pvc_updates() {
        let pvc = registry::lookup(gvr::PERSISTENT_VOLUME_CLAIMS).unwrap();
        let claim = |size: &str, class: &str, phase: &str| json!({"spec": {"storageClassName": class, "resources": {"requests": {"storage": size}}}, "status": {"phase": phase}});
        let old = claim("10Gi", "fast", "Bound");
        let cases: [(Value, &[&str]); 5] = [
            (claim("20Gi", "fast", "Bound"), &[]),
            (claim("10240Mi", "fast", "Bound"), &[]),
            (
                claim("5Gi", "fast", "Bound"),
                &[
                    "spec.resources.requests.storage: Forbidden: field can not be less than previous value",
                ],
            ),
            (
                claim("10Gi", "slow", "Bound"),
                &[
                    "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ],
            ),
            (
                claim("20Gi", "fast", "Pending"),
                &[
                    "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ],
            ),
        ];
        for (new, want) in cases {
            let got: Vec<String> = validate_update(pvc, &old, &new)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{new}");
        }
    }

    #[test]
    fn ephemeral_containers_are_added_never_removed_nor_changed() {
        let pods = registry::lookup(gvr::PODS).unwrap();
        let pod = |eph: Value| serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}], "ephemeralContainers": eph}});
        let one = pod(serde_json::json!([{"name": "debugger", "image": "busybox"}]));
        let two = pod(
            serde_json::json!([{"name": "debugger", "image": "busybox"}, {"name": "d2", "image": "busybox"}]),
        );
        let changed = pod(serde_json::json!([{"name": "debugger", "image": "alpine"}]));
        let none = pod(serde_json::json!([]));
        assert!(validate_update(pods, &one, &two).is_empty());
        assert!(validate_update(pods, &none, &one).is_empty());
        let details = |old: &Value, new: &Value| -> Vec<String> {
            validate_update(pods, old, new)
                .iter()
                .map(|e| format!("{e:?}"))
                .collect()
        };
        assert!(details(&one, &changed)[0].contains("may not be changed"));
        let removed = &details(&two, &one)[0];
        assert!(
            removed.contains("d2") && removed.contains("may not be removed"),
            "{removed}"
        );
    }
}
