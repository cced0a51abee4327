//! Strategic merge patch, as the API server applies it to built-in kinds (there is no Rust crate for it).
//!
//! Lists are merged by their Kubernetes merge key (containers by `name`, ports by `containerPort`,
//! conditions by `type`, ...); the directives `$patch: replace|delete|merge`, `$setElementOrder/<field>`,
//! `$retainKeys` and `$deleteFromPrimitiveList/<field>` are honoured. Merge keys depend only on the field
//! name here: close enough for the kinds the simulator serves.

use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListStrategy {
    /// Replace the whole list (the default for lists without a patch strategy).
    Replace,
    /// Merge objects by this key.
    ByKey(&'static str),
    /// Union of primitive values (`finalizers`).
    Primitive,
}

fn strategy_of(field: &str) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => ListStrategy::ByKey(if field == "readinessGates" {
            "conditionType"
        } else {
            "name"
        }),
        "volumeMounts" => ListStrategy::ByKey("mountPath"),
        "volumeDevices" => ListStrategy::ByKey("devicePath"),
        "ports" => ListStrategy::ByKey("containerPort"),
        "conditions" => ListStrategy::ByKey("type"),
        "ownerReferences" => ListStrategy::ByKey("uid"),
        "hostAliases" => ListStrategy::ByKey("ip"),
        "topologySpreadConstraints" => ListStrategy::ByKey("topologyKey"),
        "finalizers" => ListStrategy::Primitive,
        _ => ListStrategy::Replace,
    }
}

/// Why a strategic merge patch does not apply.
#[derive(Debug, PartialEq, Eq)]
pub struct SmpError(pub String);

/// Applies `patch` to `original`.
pub fn apply(original: &Value, patch: &Value) -> Result<Value, SmpError> {
    let Value::Object(p) = patch else {
        return Err(SmpError(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    let mut out = original.clone();
    if !out.is_object() {
        out = Value::Object(Map::new());
    }
    if let Value::Object(o) = &mut out {
        merge_map(o, p)?;
    }
    Ok(out)
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// Removes every `$...` directive from a value being inserted as is.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| directive(x).is_none())
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), SmpError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *original = strip(&Value::Object(patch.clone()))
                .as_object()
                .cloned()
                .unwrap_or_default();
            return Ok(());
        }
        Some("delete") => {
            original.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(SmpError(format!("Unknown patch type: {other}"))),
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
                let drop: Vec<&Value> = value
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    list.retain(|x| !drop.contains(&x));
                }
            }
            continue;
        }
        match value {
            Value::Null => {
                original.remove(key);
            }
            Value::Object(pm) => match directive(value) {
                Some("delete") => {
                    original.remove(key);
                }
                Some("replace") => {
                    original.insert(key.clone(), strip(value));
                }
                _ => match original.get_mut(key) {
                    Some(Value::Object(om)) => merge_map(om, pm)?,
                    _ => {
                        let mut fresh = Map::new();
                        merge_map(&mut fresh, pm)?;
                        original.insert(key.clone(), Value::Object(fresh));
                    }
                },
            },
            Value::Array(items) => {
                let merged = match (strategy_of(key), original.get(key)) {
                    (ListStrategy::ByKey(mk), Some(Value::Array(old))) => {
                        merge_keyed(old, items, mk)?
                    }
                    (ListStrategy::Primitive, Some(Value::Array(old))) => {
                        merge_primitive(old, items)
                    }
                    _ => replace_list(items),
                };
                original.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                original.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (key, order) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(list)), Some(order)) =
                (original.get_mut(field), order.as_array())
        {
            let mk = match strategy_of(field) {
                ListStrategy::ByKey(mk) => Some(mk),
                _ => None,
            };
            reorder(list, order, mk);
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn replace_list(items: &[Value]) -> Vec<Value> {
    if items.iter().any(|x| directive(x) == Some("replace")) {
        return items
            .iter()
            .filter(|x| directive(x).is_none())
            .map(strip)
            .collect();
    }
    items
        .iter()
        .filter(|x| directive(x) != Some("delete"))
        .map(strip)
        .collect()
}

fn merge_keyed(old: &[Value], items: &[Value], merge_key: &str) -> Result<Vec<Value>, SmpError> {
    if items.iter().any(|x| directive(x) == Some("replace")) {
        return Ok(items
            .iter()
            .filter(|x| directive(x).is_none())
            .map(strip)
            .collect());
    }
    let mut out: Vec<Value> = old.to_vec();
    for item in items {
        let Some(key) = item.get(merge_key) else {
            if item.is_object() {
                return Err(SmpError(format!(
                    "map: {item} does not contain declared merge key: {merge_key}"
                )));
            }
            out.push(item.clone());
            continue;
        };
        let pos = out.iter().position(|o| o.get(merge_key) == Some(key));
        match (directive(item), pos) {
            (Some("delete"), Some(i)) => {
                out.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                if let (Value::Object(om), Value::Object(pm)) = (&mut out[i], item) {
                    merge_map(om, pm)?;
                }
            }
            (_, None) => out.push(strip(item)),
        }
    }
    Ok(out)
}

fn merge_primitive(old: &[Value], items: &[Value]) -> Vec<Value> {
    let mut out = old.to_vec();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// Sorts `list` by the position of each element (or its merge key) in `order`; others keep their place after.
fn reorder(list: &mut [Value], order: &[Value], merge_key: Option<&str>) {
    let rank = |v: &Value| -> usize {
        let probe = match merge_key {
            Some(mk) => order
                .iter()
                .position(|o| o.get(mk).is_some() && o.get(mk) == v.get(mk)),
            None => order.iter().position(|o| o == v),
        };
        probe.unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table() {
        let pod = json!({
            "metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"containers": [
                {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "side", "image": "busybox"}
            ]}
        });
        let cases = [
            (
                "label added",
                json!({"metadata": {"labels": {"b": "2"}}}),
                json!({"a": "1", "b": "2"}),
                "/metadata/labels",
            ),
            (
                "label removed",
                json!({"metadata": {"labels": {"a": null}}}),
                json!({}),
                "/metadata/labels",
            ),
            (
                "container merged by name",
                json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
                json!("nginx:2"),
                "/spec/containers/0/image",
            ),
            (
                "other container kept",
                json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
                json!("busybox"),
                "/spec/containers/1/image",
            ),
            (
                "env merged",
                json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}]}}),
                json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
                "/spec/containers/0/env",
            ),
            (
                "container deleted",
                json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}),
                json!(1),
                "/spec/containers/length",
            ),
            (
                "list replaced",
                json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}),
                json!([{"name": "only", "image": "x"}]),
                "/spec/containers",
            ),
            (
                "map replaced",
                json!({"metadata": {"labels": {"$patch": "replace", "z": "9"}}}),
                json!({"z": "9"}),
                "/metadata/labels",
            ),
            (
                "finalizer union",
                json!({"metadata": {"finalizers": ["y"]}}),
                json!(["x", "y"]),
                "/metadata/finalizers",
            ),
            (
                "delete from primitive list",
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!([]),
                "/metadata/finalizers",
            ),
            (
                "element order",
                json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}}),
                json!("side"),
                "/spec/containers/0/name",
            ),
            (
                "retain keys",
                json!({"spec": {"$retainKeys": ["containers"], "other": 1}}),
                Value::Null,
                "/spec/other",
            ),
        ];
        for (name, patch, want, pointer) in cases {
            let got = apply(&pod, &patch).unwrap();
            let actual = if let Some(base) = pointer.strip_suffix("/length") {
                json!(got.pointer(base).and_then(Value::as_array).map(Vec::len))
            } else {
                got.pointer(pointer).cloned().unwrap_or(Value::Null)
            };
            assert_eq!(actual, want, "{name}");
        }
    }

    #[test]
    fn keyed_item_without_key_is_an_error() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        assert!(apply(&pod, &json!({"spec": {"containers": [{"image": "x"}]}})).is_err());
        assert!(apply(&pod, &json!([1])).is_err());
    }
}
