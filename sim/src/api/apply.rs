//! Server-side apply (`PATCH` with `Content-Type: application/apply-patch+yaml`), as kube-apiserver's
//! field manager does it with structured-merge-diff (`sigs.k8s.io/structured-merge-diff/v4/merge`,
//! `k8s.io/apimachinery/pkg/util/managedfields/internal`), and documented at
//! <https://kubernetes.io/docs/reference/using-api/server-side-apply/>:
//!
//! - the applied configuration is merged into the live object: maps field by field, associative lists
//!   (`x-kubernetes-list-type: map`) item by item on their keys, sets (`x-kubernetes-list-type: set`) by
//!   value, every other list (atomic) and every scalar replaced whole;
//! - the manager's `operation: Apply` entry in `managedFields` becomes exactly the set of fields it
//!   applied (`f:<field>`, `k:{"<key>":<value>}` with `.` for the item itself, `v:<value>`);
//! - a field the configuration sets to a value different from the live one, owned by another entry (any
//!   entry but this manager's Apply entry), is a conflict: 409 `Conflict`, one cause of type
//!   `FieldManagerConflict` per field; with `force` the fields are taken from the other entries instead;
//!   equal values are not conflicts, the field is then owned by both;
//! - a field this manager applied before and no longer applies is removed from the object, unless another
//!   entry still owns it (or something under it).
//!
//! The list types come from data: a CRD's `openAPIV3Schema` (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`), and for the built-in kinds the table in [`builtin_list_type`] (the
//! `+listType`/`+listMapKey` markers and patch merge keys of `k8s.io/api`, which kube-openapi's `schemaconv`
//! turns into the same list types).
//!
//! Simplifications: no `.` entries for maps; `Update` entries (see [`super::managed`]) keep lists atomic,
//! so a field under an atomically owned list counts as owned by that entry.

use serde_json::{Map, Value, json};

use super::Status;
use super::managed;

/// A FieldsV1 set: `{"f:spec": {"f:replicas": {}}}`.
pub type FieldSet = Map<String, Value>;

/// How the items of a list merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole (the default).
    Atomic,
    /// Primitive values, merged as a union (`metadata.finalizers`).
    Set,
    /// Objects merged item by item on these key fields.
    Map(Vec<String>),
}

/// Where the list types of one kind come from.
#[derive(Clone, Copy, Debug)]
pub struct Schema<'a> {
    /// The kind (`Service`'s `spec.ports` are keyed differently from a container's).
    pub kind: &'a str,
    /// A custom resource's `openAPIV3Schema`, if any.
    pub openapi: Option<&'a Value>,
}

impl Schema<'_> {
    /// The list type of the list at `path` (field names only, list items skipped).
    pub fn list_type(&self, path: &[String]) -> ListType {
        match self.openapi {
            Some(root) if path.first().is_none_or(|f| f != "metadata") => {
                openapi_list_type(root, path)
            }
            _ => builtin_list_type(self.kind, path),
        }
    }
}

/// The list type a structural schema gives the list at `path`.
pub fn openapi_list_type(root: &Value, path: &[String]) -> ListType {
    let mut node = root;
    for seg in path {
        if node.get("type").and_then(Value::as_str) == Some("array") {
            node = &node["items"];
        }
        let next = node
            .get("properties")
            .and_then(|p| p.get(seg))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
        match next {
            Some(n) => node = n,
            None => return ListType::Atomic,
        }
    }
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            node.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        ),
        _ => ListType::Atomic,
    }
}

/// The list types of the built-in kinds the simulator serves, from `k8s.io/api` (`core/v1/types.go`,
/// `meta/v1/types.go`): `+listType=map` with its `+listMapKey`s where set, else the `patchMergeKey`
/// (kube-openapi's `schemaconv` reads `x-kubernetes-patch-merge-key` as the key of an associative list);
/// `finalizers` is `+listType=set`; every other list is atomic.
pub fn builtin_list_type(kind: &str, path: &[String]) -> ListType {
    let keys = |k: &[&str]| ListType::Map(k.iter().map(|s| (*s).to_string()).collect());
    let Some(field) = path.last() else {
        return ListType::Atomic;
    };
    let at = |p: &[&str]| path.iter().map(String::as_str).eq(p.iter().copied());
    match field.as_str() {
        "finalizers" if at(&["metadata", "finalizers"]) => ListType::Set,
        "ownerReferences" if at(&["metadata", "ownerReferences"]) => keys(&["uid"]),
        // ServiceSpec.ports: +listMapKey=port, +listMapKey=protocol.
        "ports" if kind == "Service" && at(&["spec", "ports"]) => keys(&["port", "protocol"]),
        // Container.ports: +listMapKey=containerPort, +listMapKey=protocol.
        "ports" => keys(&["containerPort", "protocol"]),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => keys(&["name"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "hostAliases" => keys(&["ip"]),
        "conditions" => keys(&["type"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        _ => ListType::Atomic,
    }
}

/// The value a key field has when an item leaves it out: `protocol` defaults to `TCP` on the server, so
/// `{containerPort: 80}` and `{containerPort: 80, protocol: TCP}` are the same item.
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| Value::from("TCP"))
}

/// The FieldsV1 key of a list item: `k:{"containerPort":80,"protocol":"TCP"}` (fields sorted by name).
pub fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut fields = Vec::new();
    for k in sorted {
        let v = obj.get(k).cloned().or_else(|| key_default(k))?;
        fields.push(format!("{}:{}", Value::from(k.as_str()), v));
    }
    Some(format!("k:{{{}}}", fields.join(",")))
}

/// The fields a configuration sets, as a FieldsV1 set (`tracked` part only: see [`managed`]).
pub fn field_set(config: &Value, schema: &Schema<'_>) -> FieldSet {
    let mut path = Vec::new();
    map_set(config, schema, &mut path)
}

fn map_set(value: &Value, schema: &Schema<'_>, path: &mut Vec<String>) -> FieldSet {
    let mut out = Map::new();
    for (k, v) in value.as_object().into_iter().flatten() {
        path.push(k.clone());
        out.insert(format!("f:{k}"), Value::Object(node_set(v, schema, path)));
        path.pop();
    }
    out
}

fn node_set(v: &Value, schema: &Schema<'_>, path: &mut Vec<String>) -> FieldSet {
    match v {
        Value::Object(m) if !m.is_empty() => map_set(v, schema, path),
        Value::Array(items) => match schema.list_type(path) {
            ListType::Map(keys) if items.iter().all(Value::is_object) => {
                let mut out = Map::new();
                for item in items {
                    let Some(key) = item_key(item, &keys) else {
                        continue;
                    };
                    let mut inner = map_set(item, schema, path);
                    inner.insert(".".into(), json!({}));
                    out.insert(key, Value::Object(inner));
                }
                out
            }
            ListType::Set => items
                .iter()
                .map(|i| (format!("v:{i}"), json!({})))
                .collect(),
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// Merges `config` into `live` (both whole objects or parts at `path`).
pub fn merge(live: &Value, config: &Value, schema: &Schema<'_>, path: &mut Vec<String>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                path.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, cv, schema, path),
                    None => cv.clone(),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match schema.list_type(path) {
            ListType::Map(keys) if l.iter().chain(c).all(Value::is_object) => {
                let mut out = l.clone();
                for ci in c {
                    let key = item_key(ci, &keys);
                    match out
                        .iter()
                        .position(|li| key.is_some() && item_key(li, &keys) == key)
                    {
                        Some(pos) => out[pos] = merge(&out[pos], ci, schema, path),
                        None => out.push(ci.clone()),
                    }
                }
                Value::Array(out)
            }
            ListType::Set => {
                let mut out = l.clone();
                for ci in c {
                    if !out.contains(ci) {
                        out.push(ci.clone());
                    }
                }
                Value::Array(out)
            }
            _ => config.clone(),
        },
        _ => config.clone(),
    }
}

/// The paths of a set's leaves (`{}`), each a list of FieldsV1 keys; an item's own entry ends in `.`.
pub fn leaves(set: &FieldSet) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    collect_leaves(set, &mut path, &mut out);
    out
}

fn collect_leaves(set: &FieldSet, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (k, v) in set {
        path.push(k.clone());
        match v.as_object() {
            Some(m) if !m.is_empty() => collect_leaves(m, path, out),
            _ => out.push(path.clone()),
        }
        path.pop();
    }
}

/// The value at a FieldsV1 path (`.` is the item itself).
pub fn value_at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = value;
    for seg in path {
        node = child(node, seg)?;
    }
    Some(node)
}

fn child<'v>(node: &'v Value, seg: &str) -> Option<&'v Value> {
    if seg == "." {
        return Some(node);
    }
    let (kind, rest) = seg.split_at_checked(2)?;
    match kind {
        "f:" => node.get(rest),
        "k:" => {
            let key: Map<String, Value> = serde_json::from_str(rest).ok()?;
            node.as_array()?
                .iter()
                .find(|item| item_matches(item, &key))
        }
        "v:" => {
            let want: Value = serde_json::from_str(rest).ok()?;
            node.as_array()?.iter().find(|i| **i == want)
        }
        _ => None,
    }
}

fn item_matches(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, v)| {
        item.get(k)
            .cloned()
            .or_else(|| key_default(k))
            .is_some_and(|iv| iv == *v)
    })
}

/// Removes the field at `path` (an item, for a path ending in `.`); whether something was removed.
/// Maps left empty by the removal go too.
pub fn remove_at(value: &mut Value, path: &[String]) -> bool {
    let path = match path.split_last() {
        Some((last, rest)) if last == "." => rest,
        _ => path,
    };
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let Some((first, rest)) = parents.split_first() else {
        return remove_child(value, last);
    };
    let Some(next) = child_mut(value, first) else {
        return false;
    };
    let removed = remove_at(next, &[rest, std::slice::from_ref(last)].concat());
    if removed && next.as_object().is_some_and(Map::is_empty) {
        remove_child(value, first);
    }
    removed
}

fn child_mut<'v>(node: &'v mut Value, seg: &str) -> Option<&'v mut Value> {
    let (kind, rest) = seg.split_at_checked(2)?;
    match kind {
        "f:" => node.get_mut(rest),
        "k:" => {
            let key: Map<String, Value> = serde_json::from_str(rest).ok()?;
            node.as_array_mut()?
                .iter_mut()
                .find(|item| item_matches(item, &key))
        }
        _ => None,
    }
}

fn remove_child(node: &mut Value, seg: &str) -> bool {
    let Some((kind, rest)) = seg.split_at_checked(2) else {
        return false;
    };
    match (kind, node) {
        ("f:", Value::Object(m)) => m.remove(rest).is_some(),
        ("k:", Value::Array(items)) => {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(rest) else {
                return false;
            };
            let before = items.len();
            items.retain(|i| !item_matches(i, &key));
            items.len() != before
        }
        ("v:", Value::Array(items)) => {
            let Ok(want) = serde_json::from_str::<Value>(rest) else {
                return false;
            };
            let before = items.len();
            items.retain(|i| *i != want);
            items.len() != before
        }
        _ => false,
    }
}

/// Whether `set` owns `path`: the field itself, a field under it, or (an atomic owner) a leaf above it.
/// Returns the path as `set` holds it (the leaf above, for an atomic owner).
pub fn owned_path(set: &FieldSet, path: &[String]) -> Option<Vec<String>> {
    let mut node = set;
    for (i, seg) in path.iter().enumerate() {
        let next = node.get(seg)?.as_object()?;
        if next.is_empty() || i + 1 == path.len() {
            return Some(path[..=i].to_vec());
        }
        node = next;
    }
    None
}

/// A path as structured-merge-diff prints it: `.spec.template.spec.containers[name="db"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg.split_at_checked(2) {
            Some(("f:", name)) => {
                out.push('.');
                out.push_str(name);
            }
            Some(("k:", key)) => {
                let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Some(("v:", value)) => out.push_str(&format!("[={value}]")),
            _ => {}
        }
    }
    out
}

/// One field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The other entry as the message names it: `"kubectl-edit" using apps/v1`.
    pub manager: String,
    /// The field, as printed: `.spec.replicas`.
    pub field: String,
    /// The index of the other entry in `managedFields` and the path its set holds.
    entry: usize,
    owned: Vec<String>,
}

/// How structured-merge-diff names a manager in a conflict (`printManager` of
/// `k8s.io/apimachinery/pkg/util/managedfields/internal/conflict.go`): its name quoted, `with
/// subresource "x"` for a subresource, `using <apiVersion>` for an Update (the identifier has no time).
pub fn manager_display(entry: &Value) -> String {
    let mut out = format!("{:?}", entry["manager"].as_str().unwrap_or_default());
    if let Some(sub) = entry["subresource"].as_str().filter(|s| !s.is_empty()) {
        out.push_str(&format!(" with subresource {sub:?}"));
    }
    if entry["operation"] == "Update" {
        out.push_str(&format!(
            " using {}",
            entry["apiVersion"].as_str().unwrap_or_default()
        ));
    }
    out
}

/// The 409 of an apply with conflicts, as `NewConflictError` writes it: one cause per field (`reason`
/// `FieldManagerConflict` — `StatusCause.Type` is `reason` on the wire), and the message `Apply failed with
/// 1 conflict: conflict with "m" using apps/v1: .spec.replicas`, or for several, grouped by manager:
/// `Apply failed with 2 conflicts: conflicts with "m":\n- .a\n- .b`.
pub fn conflict_status(conflicts: &[Conflict]) -> Status {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field}))
        .collect();
    let message = match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        ),
        many => {
            let mut managers: Vec<&str> = many.iter().map(|c| c.manager.as_str()).collect();
            managers.sort_unstable();
            managers.dedup();
            let mut lines = Vec::new();
            for m in managers {
                lines.push(format!("conflicts with {m}:"));
                lines.extend(
                    many.iter()
                        .filter(|c| c.manager == m)
                        .map(|c| format!("- {}", c.field)),
                );
            }
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                lines.join("\n")
            )
        }
    };
    Status::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

/// Who applies, and how.
#[derive(Clone, Debug)]
pub struct Applier<'a> {
    /// The `fieldManager` (required for apply).
    pub manager: &'a str,
    /// The request's apiVersion (`apps/v1`).
    pub api_version: &'a str,
    /// RFC 3339, seconds.
    pub time: &'a str,
    /// `force=true`: take conflicting fields instead of failing.
    pub force: bool,
    /// The kind has a status subresource (its `status` is not applied on the main resource).
    pub status_subresource: bool,
}

fn is_mine(e: &Value, who: &Applier<'_>) -> bool {
    e["manager"] == who.manager
        && e["operation"] == "Apply"
        && e["subresource"].as_str().is_none_or(str::is_empty)
}

/// Applies `config` to `live` (`None`: the object does not exist, the apply creates it). Returns the
/// new object with its `managedFields`.
///
/// # Errors
/// 409 [`conflict_status`] when fields other managers own would change and `force` is not set.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    schema: &Schema<'_>,
    who: &Applier<'_>,
) -> Result<Value, Status> {
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let tracked = managed::tracked(config, None, who.status_subresource);
    let set = field_set(&tracked, schema);
    let mut config = config.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let mut merged = merge(live, &config, schema, &mut Vec::new());
    let mut entries: Vec<Value> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    // Conflicts: fields whose value the apply changes and that another entry owns.
    let mut conflicts = Vec::new();
    for leaf in leaves(&set) {
        if leaf.last().is_some_and(|s| s == ".")
            || value_at(live, &leaf) == value_at(&merged, &leaf)
        {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if is_mine(e, who) {
                continue;
            }
            if let Some(owned) = e["fieldsV1"].as_object().and_then(|s| owned_path(s, &leaf)) {
                conflicts.push(Conflict {
                    manager: manager_display(e),
                    field: path_string(&leaf),
                    entry: i,
                    owned,
                });
            }
        }
    }
    conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
    if !conflicts.is_empty() && !who.force {
        return Err(conflict_status(&conflicts));
    }
    for c in &conflicts {
        let mut taken = Map::new();
        insert_path(&mut taken, &c.owned);
        if let Some(fields) = entries[c.entry]
            .get_mut("fieldsV1")
            .and_then(Value::as_object_mut)
        {
            managed::subtract(fields, &taken);
        }
    }

    // Fields this manager no longer applies, owned by no one else: removed.
    let before: FieldSet = entries
        .iter()
        .find(|e| is_mine(e, who))
        .and_then(|e| e["fieldsV1"].as_object().cloned())
        .unwrap_or_default();
    for gone in leaves(&before) {
        if owned_path(&set, &gone).is_some() {
            continue;
        }
        let field = match gone.split_last() {
            Some((last, rest)) if last == "." => rest,
            _ => &gone[..],
        };
        let kept = entries.iter().any(|e| {
            !is_mine(e, who)
                && e["fieldsV1"]
                    .as_object()
                    .and_then(|s| owned_path(s, field))
                    .is_some()
        });
        if !kept {
            remove_at(&mut merged, &gone);
        }
    }

    // This manager's Apply entry is what it applied now.
    let entry = json!({
        "manager": who.manager,
        "operation": "Apply",
        "apiVersion": who.api_version,
        "time": who.time,
        "fieldsType": "FieldsV1",
        "fieldsV1": set,
    });
    match entries.iter().position(|e| is_mine(e, who)) {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
    Ok(merged)
}

/// Adds one path (as a leaf) to a set.
fn insert_path(set: &mut FieldSet, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let node = set
        .entry(first.clone())
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(node) = node {
        insert_path(node, rest);
    }
}

/// The `managedFields` entries without their times: what an apply that only moves ownership changes.
pub fn ownership(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let mut e = e.clone();
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
            e
        })
        .collect()
}

/// The 422 kube-apiserver answers for PatchOptions it refuses (`ValidatePatchOptions` in
/// `k8s.io/apimachinery/pkg/apis/meta/v1/validation`): an apply without `fieldManager`, or `force` on a
/// patch that is not an apply.
pub fn patch_options_invalid(
    apply: bool,
    field_manager: Option<&str>,
    force_given: bool,
) -> Option<Status> {
    use super::status::FieldError;
    let error = if apply && field_manager.is_none_or(str::is_empty) {
        FieldError::required("fieldManager", "is required for apply patch")
    } else if !apply && force_given {
        FieldError::forbidden("force", "may not be specified for non-apply patch")
    } else {
        return None;
    };
    Some(Status::invalid_kind(
        "PatchOptions.meta.k8s.io",
        "meta.k8s.io",
        "PatchOptions",
        "",
        &[error],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: Schema<'static> = Schema {
        kind: "Deployment",
        openapi: None,
    };

    fn who(manager: &str, force: bool) -> Applier<'_> {
        Applier {
            manager,
            api_version: "apps/v1",
            time: "2026-12-01T00:00:00Z",
            force,
            status_subresource: true,
        }
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": image, "ports": [{"containerPort": 80}]}
            ]}}}
        })
    }

    fn entry<'v>(object: &'v Value, manager: &str, operation: &str) -> Option<&'v Value> {
        object["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
    }

    #[test]
    fn list_types_come_from_the_tables_and_from_crd_schemas() {
        let p = |s: &[&str]| s.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        let keys = |k: &[&str]| ListType::Map(p(k));
        let cases = [
            (
                "Deployment",
                p(&["spec", "template", "spec", "containers"]),
                keys(&["name"]),
            ),
            (
                "Pod",
                p(&["spec", "containers", "ports"]),
                keys(&["containerPort", "protocol"]),
            ),
            (
                "Service",
                p(&["spec", "ports"]),
                keys(&["port", "protocol"]),
            ),
            ("Pod", p(&["spec", "containers", "env"]), keys(&["name"])),
            (
                "Pod",
                p(&["spec", "containers", "volumeMounts"]),
                keys(&["mountPath"]),
            ),
            ("Pod", p(&["status", "conditions"]), keys(&["type"])),
            ("Pod", p(&["metadata", "finalizers"]), ListType::Set),
            ("Pod", p(&["spec", "containers", "args"]), ListType::Atomic),
            ("Pod", p(&["spec", "tolerations"]), ListType::Atomic),
        ];
        for (kind, path, want) in cases {
            let schema = Schema {
                kind,
                openapi: None,
            };
            assert_eq!(schema.list_type(&path), want, "{kind} {path:?}");
        }
        let openapi = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "nodes": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"],
                "items": {"type": "object", "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set"}}}},
            "args": {"type": "array", "items": {"type": "string"}}}}}});
        let crd = Schema {
            kind: "Widget",
            openapi: Some(&openapi),
        };
        assert_eq!(crd.list_type(&p(&["spec", "nodes"])), keys(&["host"]));
        assert_eq!(crd.list_type(&p(&["spec", "nodes", "tags"])), ListType::Set);
        assert_eq!(crd.list_type(&p(&["spec", "args"])), ListType::Atomic);
        assert_eq!(
            crd.list_type(&p(&["metadata", "finalizers"])),
            ListType::Set
        );
    }

    #[test]
    fn an_apply_owns_what_it_applied_with_keyed_list_items() {
        let created = apply(
            None,
            &deployment(2, "nginx:1"),
            &DEPLOY,
            &who("kubectl", false),
        )
        .unwrap();
        let e = entry(&created, "kubectl", "Apply").expect("an Apply entry");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(
            e["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:image": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
                }}}}
            })
        );
        assert_eq!(created["spec"]["replicas"], 2);
    }

    #[test]
    fn conflicts_force_and_shared_ownership() {
        let mut live = apply(
            None,
            &deployment(2, "nginx:1"),
            &DEPLOY,
            &who("kubectl", false),
        )
        .unwrap();
        // Another manager (an Update, as `kubectl scale` records it) owns spec.replicas.
        live["spec"]["replicas"] = json!(5);
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"manager": "kubectl-scale", "operation": "Update", "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}),
            );
        let err = apply(
            Some(&live),
            &deployment(2, "nginx:2"),
            &DEPLOY,
            &who("kubectl", false),
        )
        .unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            err.details.unwrap()["causes"],
            json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-scale\" using apps/v1", "field": ".spec.replicas"}])
        );
        // The same value is no conflict: both own the field.
        let shared = apply(
            Some(&live),
            &deployment(5, "nginx:2"),
            &DEPLOY,
            &who("kubectl", false),
        )
        .unwrap();
        assert_eq!(
            shared["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        assert!(entry(&shared, "kubectl-scale", "Update").is_some());
        // Force takes the field from the other manager, whose entry, now empty, goes.
        let forced = apply(
            Some(&live),
            &deployment(3, "nginx:1"),
            &DEPLOY,
            &who("kubectl", true),
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert!(entry(&forced, "kubectl-scale", "Update").is_none());
        // An atomic owner of a list owns what is in it.
        let mut edited = live.clone();
        edited["metadata"]["managedFields"][1]["fieldsV1"] =
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}});
        edited["metadata"]["managedFields"][1]["manager"] = json!("kubectl-edit");
        edited["spec"]["replicas"] = json!(2);
        let err = apply(
            Some(&edited),
            &deployment(2, "nginx:3"),
            &DEPLOY,
            &who("kubectl", false),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.template.spec.containers[name=\"app\"].image"
        );
    }

    #[test]
    fn several_conflicts_are_grouped_by_manager() {
        let c = |m: &str, f: &str| Conflict {
            manager: format!("{m:?}"),
            field: f.into(),
            entry: 0,
            owned: Vec::new(),
        };
        let s = conflict_status(&[c("a", ".spec.x"), c("a", ".spec.y"), c("b", ".data.k")]);
        assert_eq!(
            s.message,
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.x\n- .spec.y\nconflicts with \"b\":\n- .data.k"
        );
        let apply_entry = json!({"manager": "m", "operation": "Apply", "apiVersion": "v1"});
        assert_eq!(manager_display(&apply_entry), "\"m\"");
        let status_entry = json!({"manager": "c", "operation": "Update", "apiVersion": "v1", "subresource": "status"});
        assert_eq!(
            manager_display(&status_entry),
            "\"c\" with subresource \"status\" using v1"
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
        let cm = |data: Value, labels: Option<Value>| {
            let mut c = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
            if let Some(l) = labels {
                c["metadata"]["labels"] = l;
            }
            c
        };
        let schema = Schema {
            kind: "ConfigMap",
            openapi: None,
        };
        let me = Applier {
            status_subresource: false,
            ..who("mgr", false)
        };
        let live = apply(
            None,
            &cm(json!({"a": "1", "b": "2"}), Some(json!({"x": "1"}))),
            &schema,
            &me,
        )
        .unwrap();
        let other = Applier {
            manager: "other",
            ..me.clone()
        };
        let live = apply(Some(&live), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2"}}), &schema, &other).unwrap();
        let next = apply(Some(&live), &cm(json!({"c": "3"}), None), &schema, &me).unwrap();
        // a: only mgr owned it, gone; b: other owns it too, kept; the label map left empty goes.
        assert_eq!(next["data"], json!({"b": "2", "c": "3"}));
        assert!(next["metadata"].get("labels").is_none(), "{next}");
        assert_eq!(
            entry(&next, "mgr", "Apply").unwrap()["fieldsV1"],
            json!({"f:data": {"f:c": {}}})
        );
        // List items go the same way.
        let two = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let live = apply(None, &two, &DEPLOY, &who("kubectl", false)).unwrap();
        let mut one = two.clone();
        one["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .pop();
        let next = apply(Some(&live), &one, &DEPLOY, &who("kubectl", false)).unwrap();
        assert_eq!(
            next["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x"}])
        );
    }

    #[test]
    fn patch_options_as_the_real_server_checks_them() {
        let s = patch_options_invalid(true, None, false).unwrap();
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            s.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        assert_eq!(
            s.details.unwrap()["causes"],
            json!([{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}])
        );
        let s = patch_options_invalid(false, None, true).unwrap();
        assert_eq!(
            s.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
        );
        assert!(patch_options_invalid(true, Some("m"), true).is_none());
        assert!(patch_options_invalid(false, None, false).is_none());
    }
}
