//! `kubectl get`'s server-side printing: a `meta.k8s.io/v1` Table from a kind's printer columns.

use serde_json::{Value, json};

use super::jsonpath::JsonPath;
use super::registry::{Cell, Column, ResourceType, at_path};

/// What a Table row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// The server's `duration.HumanDuration`: `45s`, `3m20s`, `5h`, `2d3h`, `1y20d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of an RFC 3339 timestamp, now.
pub fn age_of(timestamp: &str) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<invalid>".into(),
    }
}

/// A CRD column's cell as apiextensions-apiserver's table convertor makes it
/// (`pkg/registry/customresource/tableconvertor`): the first value the path selects, none = `null`;
/// `string` columns print the value (JSON for non-strings), `date` ones an age, numbers and booleans
/// stay typed, a value of another type is `null`.
fn json_path_cell(path: &str, kind: &str, object: &Value) -> Value {
    let Ok(path) = JsonPath::parse(path) else {
        return Value::Null;
    };
    let Some(v) = path.find(object).first().copied() else {
        return Value::Null;
    };
    match kind {
        "string" => match v {
            Value::String(s) => Value::from(s.as_str()),
            other => Value::from(other.to_string()),
        },
        "date" => match v.as_str() {
            Some(ts) => Value::from(age_of(ts)),
            None => Value::Null,
        },
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        "number" => v.as_f64().map_or(Value::Null, Value::from),
        "boolean" => v.as_bool().map_or(Value::Null, Value::from),
        _ => Value::Null,
    }
}

fn cell(column: &Column, object: &Value) -> Value {
    match &column.cell {
        Cell::Name => at_path(object, "metadata.name")
            .cloned()
            .unwrap_or(Value::Null),
        Cell::Path(p) => match at_path(object, p) {
            Some(Value::Null) | None => Value::from(""),
            Some(v) => v.clone(),
        },
        Cell::Age(p) => match at_path(object, p).and_then(Value::as_str) {
            Some(ts) => Value::from(age_of(ts)),
            None => Value::from("<unknown>"),
        },
        Cell::Computed(f) => f(object),
        Cell::JsonPath(p) => json_path_cell(p, column.kind, object),
    }
}

/// The columns of a Table for `rt`.
pub fn column_definitions(rt: &ResourceType) -> Value {
    Value::Array(
        rt.columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": if c.kind == "date" { "date" } else { c.kind },
                    "format": if matches!(c.cell, Cell::Name) { "name" } else { "" },
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// One row.
pub fn row(rt: &ResourceType, object: &Value, include: IncludeObject) -> Value {
    let cells: Vec<Value> = rt.columns.iter().map(|c| cell(c, object)).collect();
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => row["object"] = object.clone(),
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        }
    }
    row
}

/// A whole Table of `objects`.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: Option<u64>,
    include: IncludeObject,
) -> Value {
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = Value::from(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(rt),
        "rows": objects.iter().map(|o| row(rt, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiServer, gvr};

    #[test]
    fn human_durations() {
        let cases = [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 600, "3h10m"),
            (10 * 3600, "10h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn app_table_has_description() {
        let api = ApiServer::new();
        let rt = api.registry().lookup(gvr::APPS).unwrap();
        let app = json!({"metadata": {"name": "a", "creationTimestamp": "2020-01-01T00:00:00Z"}, "status": {"friendlyDescription": "Reconcile succeeded"}});
        let t = table(rt, &[app], Some(7), IncludeObject::Metadata);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Description", "Since-Deploy", "Age"]);
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["cells"][1], "Reconcile succeeded");
        // No `status.deploy.startedAt`: a null cell, as for any CRD column whose path selects nothing.
        assert_eq!(t["rows"][0]["cells"][2], Value::Null);
        assert_eq!(t["columnDefinitions"][2]["type"], "date");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }
}
