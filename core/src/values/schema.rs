//! Values checked against a Package's `valuesSchema.openAPIv3`.

use serde::Serialize;
use serde_json::Value;

use super::set::kind_name;
use super::*;

/// A way values break the Package's `valuesSchema.openAPIv3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Where in the values, dotted (`(root)` for the document itself).
    pub path: String,
    /// What is wrong, in the API server's wording (`Invalid value: ...: must be of type ...`).
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validates values against an OpenAPI v3 schema (the subset Carvel Packages use: `type`,
/// `properties`, `additionalProperties`, `required`, `items`, `enum`, `pattern`, `nullable`,
/// `minimum`/`maximum` (and `exclusive*`), `minLength`/`maxLength`, `minItems`/`maxItems`,
/// `allOf`/`anyOf`/`oneOf`). Sensitive values are never quoted in the messages.
pub fn validate(schema: &Value, values: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, values, &mut Vec::new(), false, &mut out);
    out
}

fn quote(v: &Value, sensitive: bool) -> String {
    if sensitive {
        return MASK.to_owned();
    }
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        _ => true,
    }
}

fn check(schema: &Value, v: &Value, path: &mut Path, sensitive: bool, out: &mut Vec<Violation>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    let at = |path: &Path| dotted(path);
    if v.is_null() {
        let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
        if !nullable && let Some(ty) = s.get("type").and_then(Value::as_str) {
            out.push(Violation {
                path: at(path),
                message: format!("Invalid value: null: must be of type {ty}"),
            });
        }
        return;
    }
    if let Some(ty) = s.get("type").and_then(Value::as_str)
        && !type_ok(ty, v)
    {
        out.push(Violation {
            path: at(path),
            message: format!(
                "Invalid value: {}: must be of type {ty}, not {}",
                quote(v, sensitive),
                kind_name(v)
            ),
        });
        return;
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let list: Vec<String> = options.iter().map(|o| quote(o, false)).collect();
        out.push(Violation {
            path: at(path),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                quote(v, sensitive),
                list.join(", ")
            ),
        });
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        let Some(branches) = s.get(key).and_then(Value::as_array) else {
            continue;
        };
        let results: Vec<Vec<Violation>> = branches
            .iter()
            .map(|b| {
                let mut o = Vec::new();
                check(b, v, path, sensitive, &mut o);
                o
            })
            .collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        match key {
            "allOf" => out.extend(results.into_iter().flatten()),
            "anyOf" if passing == 0 => out.push(Violation {
                path: at(path),
                message: "Invalid value: matches none of the allowed forms (anyOf)".into(),
            }),
            "oneOf" if passing != 1 => out.push(Violation {
                path: at(path),
                message: format!(
                    "Invalid value: must match exactly one allowed form (oneOf), matches {passing}"
                ),
            }),
            _ => {}
        }
    }
    match v {
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                out.push(Violation {
                    path: at(path),
                    message: format!("Invalid value: must be at least {min} characters long"),
                });
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                out.push(Violation {
                    path: at(path),
                    message: format!("Invalid value: must be at most {max} characters long"),
                });
            }
            if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(text)
            {
                out.push(Violation {
                    path: at(path),
                    message: format!(
                        "Invalid value: {}: should match '{pattern}'",
                        quote(v, sensitive)
                    ),
                });
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                let bad = if excl("exclusiveMinimum") {
                    x <= min
                } else {
                    x < min
                };
                if bad {
                    out.push(Violation {
                        path: at(path),
                        message: format!(
                            "Invalid value: {}: must be {} {min}",
                            quote(v, sensitive),
                            if excl("exclusiveMinimum") {
                                "greater than"
                            } else {
                                "greater than or equal to"
                            }
                        ),
                    });
                }
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                let bad = if excl("exclusiveMaximum") {
                    x >= max
                } else {
                    x > max
                };
                if bad {
                    out.push(Violation {
                        path: at(path),
                        message: format!(
                            "Invalid value: {}: must be {} {max}",
                            quote(v, sensitive),
                            if excl("exclusiveMaximum") {
                                "less than"
                            } else {
                                "less than or equal to"
                            }
                        ),
                    });
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && len < min
            {
                out.push(Violation {
                    path: at(path),
                    message: format!("Invalid value: must have at least {min} items"),
                });
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && len > max
            {
                out.push(Violation {
                    path: at(path),
                    message: format!("Invalid value: must have at most {max} items"),
                });
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    check(item_schema, item, path, sensitive, out);
                    path.pop();
                }
            }
        }
        Value::Object(map) => {
            if let Some(required) = s.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        out.push(Violation {
                            path: at(path),
                            message: format!("Required value: {r:?} is required"),
                        });
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties");
            for (k, x) in map {
                let sens = sensitive || is_sensitive_key(k);
                path.push(k.clone());
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(ps), _) => check(ps, x, path, sens, out),
                    (None, Some(Value::Bool(false))) => {
                        path.pop();
                        let known: Vec<&String> =
                            props.map(|p| p.keys().collect()).unwrap_or_default();
                        out.push(Violation {
                            path: at(path),
                            message: format!(
                                "unknown field {k:?}{}",
                                if known.is_empty() {
                                    String::new()
                                } else {
                                    format!(
                                        " (known fields: {})",
                                        known
                                            .iter()
                                            .map(|s| s.as_str())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                }
                            ),
                        });
                        continue;
                    }
                    (None, Some(a @ Value::Object(_))) => check(a, x, path, sens, out),
                    _ => {}
                }
                path.pop();
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}
