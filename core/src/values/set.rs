//! `--set path=value`: parsing the argument and editing a values document, typed by the schema.

use serde_json::{Map, Value};

use super::*;

/// Why a `--set` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// The argument (carried as given) is not `path=value`.
    #[error(
        "--set {0:?}: expected path=value, e.g. persistence.persistentVolumeClaim.registry.size=60Gi"
    )]
    Syntax(String),
    /// The path goes through a value that is not a map, so no key can be set under it.
    #[error("--set {arg:?}: {path} is a {found}, not a map: cannot set a key under it")]
    NotAMap {
        /// The argument as given.
        arg: String,
        /// The dotted path of the value in the way.
        path: String,
        /// What that value is (a JSON type name).
        found: &'static str,
    },
}

/// Splits `a.b\.c=value` into its path (`["a", "b.c"]`) and raw value.
///
/// # Errors
/// [`SetError::Syntax`] when there is no `=`, a segment of the path is empty, or the path ends in a
/// lone `\`.
///
/// ```rust
/// use supsvc_core::values::parse_set;
///
/// let (path, raw) = parse_set("persistence.persistentVolumeClaim.registry.size=60Gi").unwrap();
/// assert_eq!(path, ["persistence", "persistentVolumeClaim", "registry", "size"]);
/// assert_eq!(raw, "60Gi");
/// assert_eq!(parse_set("a\\.b=1").unwrap().0, ["a.b"]);
/// assert!(parse_set("no-equals-sign").is_err());
/// ```
pub fn parse_set(arg: &str) -> Result<(Path, String), SetError> {
    let bad = || SetError::Syntax(arg.to_owned());
    let (path, value) = arg.split_once('=').ok_or_else(bad)?;
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(bad()),
            },
            '.' => segs.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    segs.push(cur);
    if segs.iter().any(|s| s.trim().is_empty()) {
        return Err(bad());
    }
    Ok((segs, value.to_owned()))
}

pub(super) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// The schema of the value at `path`, following `properties` (and `additionalProperties` schemas).
pub fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut s = schema;
    for seg in path {
        s = match s.get("properties").and_then(|p| p.get(seg)) {
            Some(x) => x,
            None => s.get("additionalProperties").filter(|a| a.is_object())?,
        };
    }
    Some(s)
}

/// The value a `--set` gives: a string where the schema says string, else YAML's reading of a scalar
/// (`true`, `3`, `1.5`, `null`), else the text.
pub fn set_value(raw: &str, schema: Option<&Value>) -> Value {
    let declared = schema.and_then(|s| s.get("type")).and_then(Value::as_str);
    if declared == Some("string") {
        return Value::String(raw.to_owned());
    }
    match raw {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        "null" | "~" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = raw.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = raw.parse::<f64>()
        && f.is_finite()
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || ".-+eE".contains(c))
    {
        return Value::from(f);
    }
    Value::String(raw.to_owned())
}

/// Applies one `--set path=value`, creating intermediate maps as needed.
///
/// # Errors
/// [`SetError::Syntax`] as [`parse_set`]; [`SetError::NotAMap`] when the path goes through a value
/// that is not a map (`values` is left as it was up to that value).
pub fn set_path(values: &mut Value, arg: &str, schema: Option<&Value>) -> Result<(), SetError> {
    let (path, raw) = parse_set(arg)?;
    let value = set_value(&raw, schema.and_then(|s| schema_at(s, &path)));
    if values.is_null() {
        *values = Value::Object(Map::new());
    }
    let mut cur = values;
    for (i, seg) in path.iter().enumerate() {
        let Value::Object(map) = cur else {
            return Err(SetError::NotAMap {
                arg: arg.to_owned(),
                path: dotted(&path[..i]),
                found: kind_name(cur),
            });
        };
        if i + 1 == path.len() {
            map.insert(seg.clone(), value);
            return Ok(());
        }
        cur = map
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
    }
    Ok(())
}
