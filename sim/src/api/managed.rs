//! `metadata.managedFields` for create, update and patch requests (operation `Update`), as
//! kube-apiserver's field manager records them (`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`,
//! `k8s.io/apimachinery/pkg/util/managedfields`):
//!
//! - the manager is the request's `fieldManager` query parameter, else the User-Agent up to its first `/`
//!   (`prefixFromUserAgent`: `kubectl/v1.32.4 (linux/amd64) …` → `kubectl`); kubectl names its own
//!   (`kubectl-patch`, `kubectl-edit`, `kubectl-client-side-apply`, `kubectl-create`, `kubectl-label` …);
//! - one entry per (manager, operation, apiVersion, subresource), its `time` the last write, `fieldsType`
//!   `FieldsV1`, `fieldsV1` the fields it set: on create every field it sent, on an update the fields whose
//!   value it changed, added to what it owned; a field one manager changes is no longer another's, and an
//!   entry left owning nothing is dropped;
//! - the fields the server owns are not tracked (`apiVersion`, `kind`, `metadata` but `labels`,
//!   `annotations`, `finalizers` and `ownerReferences`), nor `status` on the main resource of a kind with a
//!   status subresource (its reset fields), nor anything but `status` on `/status`.
//!
//! Simplification: lists are atomic here (`f:containers: {}`), where the real server keys the items of
//! associative lists (`k:{"name":"db"}`); no `"."` entries for maps.

use serde_json::{Map, Value, json};

/// kube-apiserver's manager name from a User-Agent: the part before the first `/`, at most 128 bytes.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut end = prefix.len().min(128);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    prefix[..end].to_string()
}

/// The part of an object whose fields a write on `subresource` can own.
pub(crate) fn tracked(
    object: &Value,
    subresource: Option<&str>,
    status_subresource: bool,
) -> Value {
    let Some(map) = object.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in map {
        match (k.as_str(), subresource) {
            ("status", Some("status")) => {
                out.insert(k.clone(), v.clone());
            }
            (_, Some("status")) => {}
            ("apiVersion" | "kind", _) => {}
            ("status", _) if status_subresource => {}
            ("metadata", _) => {
                let kept: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(mk, _)| {
                        matches!(
                            mk.as_str(),
                            "labels" | "annotations" | "finalizers" | "ownerReferences"
                        )
                    })
                    .map(|(mk, mv)| (mk.clone(), mv.clone()))
                    .collect();
                if !kept.is_empty() {
                    out.insert(k.clone(), Value::Object(kept));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The leaves of `new` whose value differs from `old` (all of them without `old`), as a FieldsV1 set.
fn changed(old: Option<&Value>, new: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(fields) = new.as_object() else {
        return out;
    };
    for (k, v) in fields {
        let before = old.and_then(|o| o.get(k));
        if before == Some(v) {
            continue;
        }
        let inner = match v {
            Value::Object(m) if !m.is_empty() => {
                let inner = changed(before.filter(|b| b.is_object()), v);
                if inner.is_empty() {
                    // Only removals under it: nothing set.
                    continue;
                }
                inner
            }
            _ => Map::new(),
        };
        out.insert(format!("f:{k}"), Value::Object(inner));
    }
    out
}

/// The leaves of `old` no longer in `new`.
fn removed(old: &Value, new: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(fields) = old.as_object() else {
        return out;
    };
    for (k, v) in fields {
        match new.get(k) {
            None => {
                out.insert(format!("f:{k}"), json!({}));
            }
            Some(n) if v.is_object() && n.is_object() => {
                let inner = removed(v, n);
                if !inner.is_empty() {
                    out.insert(format!("f:{k}"), Value::Object(inner));
                }
            }
            Some(_) => {}
        }
    }
    out
}

/// `a ∪ b`.
fn union(a: &mut Map<String, Value>, b: &Map<String, Value>) {
    for (k, v) in b {
        let bv = v.as_object().cloned().unwrap_or_default();
        match a.get_mut(k).and_then(Value::as_object_mut) {
            // A leaf owned whole stays a leaf; a subtree grows.
            Some(existing) if !existing.is_empty() && !bv.is_empty() => union(existing, &bv),
            Some(existing) if !existing.is_empty() => existing.clear(),
            Some(_) => {}
            None => {
                a.insert(k.clone(), Value::Object(bv));
            }
        }
    }
}

/// `a ∖ b`: a field of `b` (or under one) leaves `a`.
pub(crate) fn subtract(a: &mut Map<String, Value>, b: &Map<String, Value>) {
    for (k, v) in b {
        let bv = v.as_object().cloned().unwrap_or_default();
        let remove = match a.get_mut(k).and_then(Value::as_object_mut) {
            None => false,
            Some(_) if bv.is_empty() => true,
            Some(existing) if existing.is_empty() => false,
            Some(existing) => {
                subtract(existing, &bv);
                existing.is_empty()
            }
        };
        if remove {
            a.remove(k);
        }
    }
}

/// Who wrote and how: the identity of one managedFields entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Writer<'a> {
    /// Empty: an in-process writer without a name (its changes still take the fields from others).
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    /// RFC 3339, seconds.
    pub time: &'a str,
}

/// Records in `new.metadata.managedFields` that `writer` wrote `new` over `old` (`None` = a create).
pub fn record(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>, status_subresource: bool) {
    let before = old.map(|o| tracked(o, writer.subresource, status_subresource));
    let after = tracked(new, writer.subresource, status_subresource);
    let set = changed(before.as_ref(), &after);
    let gone = before
        .as_ref()
        .map(|b| removed(b, &after))
        .unwrap_or_default();
    // The entries the request carries, if any (a client may set them), else the live object's.
    let given = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty());
    let mut entries: Vec<Value> = given
        .or_else(|| {
            old.and_then(|o| o.pointer("/metadata/managedFields"))
                .and_then(Value::as_array)
        })
        .cloned()
        .unwrap_or_default();
    let same = |e: &Value| {
        e["manager"] == writer.manager
            && e["operation"] == "Update"
            && e["apiVersion"] == writer.api_version
            && e["subresource"].as_str() == writer.subresource
    };
    for e in entries.iter_mut().filter(|e| !same(e)) {
        if let Some(fields) = e.get_mut("fieldsV1").and_then(Value::as_object_mut) {
            subtract(fields, &set);
            subtract(fields, &gone);
        }
    }
    if !writer.manager.is_empty() && !set.is_empty() {
        let mut mine = entries
            .iter()
            .find(|e| same(e))
            .and_then(|e| e["fieldsV1"].as_object().cloned())
            .unwrap_or_default();
        subtract(&mut mine, &gone);
        union(&mut mine, &set);
        entries.retain(|e| !same(e));
        let mut entry = json!({
            "manager": writer.manager,
            "operation": "Update",
            "apiVersion": writer.api_version,
            "time": writer.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": mine,
        });
        if let Some(sub) = writer.subresource {
            entry["subresource"] = Value::from(sub);
        }
        entries.push(entry);
    } else if let Some(e) = entries.iter_mut().find(|e| same(e))
        && let Some(fields) = e.get_mut("fieldsV1").and_then(Value::as_object_mut)
    {
        subtract(fields, &gone);
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer<'a>(manager: &'a str, sub: Option<&'a str>) -> Writer<'a> {
        Writer {
            manager,
            api_version: "packaging.carvel.dev/v1alpha1",
            subresource: sub,
            time: "2026-11-30T09:12:44Z",
        }
    }

    #[test]
    fn managers_from_user_agents() {
        let cases = [
            (
                "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
                "kubectl",
            ),
            ("kube-controller-manager/v1.33.0", "kube-controller-manager"),
            ("", ""),
            ("plain", "plain"),
        ];
        for (ua, want) in cases {
            assert_eq!(manager_from_user_agent(ua), want, "{ua}");
        }
    }

    #[test]
    fn a_patch_owns_what_it_changed_and_takes_it_from_the_creator() {
        let mut created = json!({
            "apiVersion": "packaging.carvel.dev/v1alpha1", "kind": "PackageInstall",
            "metadata": {"name": "p", "uid": "u", "labels": {"a": "1"}},
            "spec": {"packageRef": {"refName": "x"}, "paused": false},
            "status": {"friendlyDescription": "ok"}
        });
        record(
            None,
            &mut created,
            &writer("kubectl-client-side-apply", None),
            true,
        );
        let entries = created["metadata"]["managedFields"].clone();
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:packageRef": {"f:refName": {}}, "f:paused": {}}})
        );
        let mut patched = created.clone();
        patched["spec"]["paused"] = json!(true);
        record(
            Some(&created),
            &mut patched,
            &writer("kubectl-patch", None),
            true,
        );
        let entries = patched["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:packageRef": {"f:refName": {}}}})
        );
        assert_eq!(entries[1]["manager"], "kubectl-patch");
        assert_eq!(entries[1]["operation"], "Update");
        assert_eq!(entries[1]["fieldsType"], "FieldsV1");
        assert_eq!(entries[1]["fieldsV1"], json!({"f:spec": {"f:paused": {}}}));

        // A status write is its own entry, with the subresource, owning only status.
        let mut with_status = patched.clone();
        with_status["status"]["friendlyDescription"] = json!("paused");
        record(
            Some(&patched),
            &mut with_status,
            &writer("kapp-controller", Some("status")),
            true,
        );
        let entries = with_status["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries[2]["subresource"], "status");
        assert_eq!(
            entries[2]["fieldsV1"],
            json!({"f:status": {"f:friendlyDescription": {}}})
        );

        // Removing the only field a manager owned drops its entry.
        let mut unpaused = with_status.clone();
        unpaused["spec"].as_object_mut().unwrap().remove("paused");
        record(
            Some(&with_status),
            &mut unpaused,
            &writer("kubectl-edit", None),
            true,
        );
        let managers: Vec<&str> = unpaused["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["kubectl-client-side-apply", "kapp-controller"]);
    }
}
