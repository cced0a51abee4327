//! `values-edit`'s decisions about a Supervisor Service's data values, as pure functions.
//!
//! - which keys are sensitive and how a diff masks them ([`mask_pair`]);
//! - what changed between two values documents ([`changes`]) and how `--set path=value` edits one ([`set_path`]);
//! - whether values satisfy a Package's `valuesSchema.openAPIv3` ([`validate`]);
//! - the pre-flight ([`preflight`]): which live kapp-managed field a changed value drives, and whether the
//!   API server will accept the change kapp is about to make.
//!
//! # The mapping rule
//! supsvc cannot run ytt, so it cannot know which manifest field a value feeds. It maps a changed value
//! to a field of a live object when both hold:
//! 1. the field's live value equals the value's **old** value (as text, or as the same quantity:
//!    `55Gi` = `59055800320`), and
//! 2. the values path **names the object**: a segment of the path other than the last one equals the
//!    object's name or one of its `-`/`.`-separated words (`persistence.persistentVolumeClaim.registry.size`
//!    names `harbor-registry`; `…database.size` names `harbor-database`).
//!
//! Only the `spec` of PersistentVolumeClaims and StatefulSets is searched: they are the objects whose
//! updates the API server restricts. A change that maps to nothing is not checked (it is reported so).
#![warn(missing_docs, clippy::missing_errors_doc)]

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::quantity::Quantity;

/// What a masked value reads as.
pub const MASK: &str = "***";
/// What a masked value that changed reads as, before and after (kubectl diff's wording for Secrets).
pub const MASK_BEFORE: &str = "*** (before)";
/// The after half of [`MASK_BEFORE`].
pub const MASK_AFTER: &str = "*** (after)";

/// Whether a key names a secret: password, passwd, secret, token, credential, or a key (`secretKey`,
/// `apiKey`, `tls.key`...).
pub fn is_sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "privatekey",
        "private_key",
        "apikey",
        "api_key",
        "accesskey",
        "access_key",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k == "key"
        || k.ends_with("key")
        || k.ends_with(".key")
        || k.ends_with("_key")
        || k.ends_with("-key")
}

/// Masks every value under a sensitive key in `old` and `new`: equal secrets read `***` on both sides,
/// changed ones `*** (before)` and `*** (after)`, so a diff shows that a secret changed, never what it is.
pub fn mask_pair(old: &Value, new: &Value) -> (Value, Value) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ma = Map::new();
            let mut mb = Map::new();
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) if is_sensitive_key(k) => {
                        if x == y {
                            ma.insert(k.clone(), masked(x, MASK));
                            mb.insert(k.clone(), masked(y, MASK));
                        } else {
                            ma.insert(k.clone(), masked(x, MASK_BEFORE));
                            mb.insert(k.clone(), masked(y, MASK_AFTER));
                        }
                    }
                    (Some(x), Some(y)) => {
                        let (p, q) = mask_pair(x, y);
                        ma.insert(k.clone(), p);
                        mb.insert(k.clone(), q);
                    }
                    (Some(x), None) => {
                        ma.insert(k.clone(), mask_all(x, is_sensitive_key(k)));
                    }
                    (None, Some(y)) => {
                        mb.insert(k.clone(), mask_all(y, is_sensitive_key(k)));
                    }
                    (None, None) => {}
                }
            }
            (Value::Object(ma), Value::Object(mb))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            let (pa, pb) = a.iter().zip(b).map(|(x, y)| mask_pair(x, y)).unzip();
            (Value::Array(pa), Value::Array(pb))
        }
        _ => (mask_all(old, false), mask_all(new, false)),
    }
}

/// Masks every sensitive value of one document.
pub fn mask(v: &Value) -> Value {
    mask_all(v, false)
}

fn mask_all(v: &Value, sensitive: bool) -> Value {
    if sensitive {
        return masked(v, MASK);
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), mask_all(x, is_sensitive_key(k))))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| mask_all(x, false)).collect()),
        other => other.clone(),
    }
}

/// A sensitive value masked: an empty string or null stays visible (nothing is hidden by showing it).
fn masked(v: &Value, mask: &str) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(s) if s.is_empty() => v.clone(),
        _ => Value::String(mask.to_owned()),
    }
}

/// A path in a values document, one key (or `[index]`) per segment.
pub type Path = Vec<String>;

/// A path as people write it: `persistence.persistentVolumeClaim.registry.size`.
pub fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.starts_with('[') {
            out.push_str(seg);
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg.replace('.', "\\."));
        }
    }
    if out.is_empty() {
        "(root)".to_owned()
    } else {
        out
    }
}

/// One changed leaf of a values document: added (`old` is `None`), removed (`new` is `None`) or changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Where the leaf is.
    pub path: Path,
    /// Its value before, as JSON; `None` when added.
    pub old: Option<Value>,
    /// Its value after, as JSON; `None` when removed.
    pub new: Option<Value>,
}

impl Change {
    /// Whether any key on its path names a secret ([`is_sensitive_key`]), so a diff must mask it.
    pub fn is_sensitive(&self) -> bool {
        self.path.iter().any(|s| is_sensitive_key(s))
    }
}

/// Every changed leaf between two values documents; maps are compared key by key, anything else whole.
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_into(&mut Vec::new(), Some(old), Some(new), &mut out);
    out
}

fn diff_into(path: &mut Path, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                path.push(k.clone());
                diff_into(path, a.get(k), b.get(k), out);
                path.pop();
            }
        }
        (Some(a), Some(b)) if a == b => {}
        (None, None) => {}
        _ => out.push(Change {
            path: path.clone(),
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

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

fn kind_name(v: &Value) -> &'static str {
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

/// A Kubernetes quantity as the API server reads it ([`Quantity`]: `55Gi`, `500M`, `1.5Ti`, `100m`, `1e3`),
/// surrounding spaces trimmed as its JSON decoder trims them; `None` for any other text, and for text
/// without a digit (`Gi`, `m`, `E`), which Go reads as zero but which in a values file is a word, not a size.
pub fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim();
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    Quantity::parse(s).ok()
}

/// The keys whose values are quantities in the Kubernetes API: the entries of a resource list
/// (`requests`, `limits`, `capacity`, `allocatable`, `hard`, `used`, `overhead`) and `sizeLimit`.
const QUANTITY_LISTS: [&str; 7] = [
    "requests",
    "limits",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "overhead",
];

/// Whether a dotted field path (`spec.volumeClaimTemplates[0].spec.resources.requests.storage`) is a
/// quantity field of the Kubernetes API, which the API server compares by value.
pub fn is_quantity_field(field: &str) -> bool {
    let mut segments = field.rsplit('.');
    let last = segments.next().unwrap_or_default();
    let parent = segments.next().unwrap_or_default();
    last == "sizeLimit" || QUANTITY_LISTS.contains(&parent)
}

/// A scalar as text, for comparing a value with a live field.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn same_scalar(a: &str, b: &str) -> bool {
    let has_unit = |s: &str| s.chars().any(|c| c.is_ascii_alphabetic());
    a == b
        || ((has_unit(a) || has_unit(b))
            && matches!((parse_quantity(a), parse_quantity(b)), (Some(x), Some(y)) if x == y))
}

/// Whether a values path names an object: a segment other than the last equals the object's name or
/// one of its `-`/`.`-separated words (case-insensitive).
pub fn names_object(path: &[String], object_name: &str) -> bool {
    let name = object_name.to_ascii_lowercase();
    let words: Vec<&str> = name.split(['-', '.']).filter(|w| !w.is_empty()).collect();
    path.iter()
        .take(path.len().saturating_sub(1))
        .filter(|s| !s.starts_with('['))
        .map(|s| s.to_ascii_lowercase())
        .any(|s| s == name || words.contains(&s.as_str()))
}

/// Every scalar leaf of a JSON value with its dotted path under `base`.
pub fn leaves<'a>(v: &'a Value, base: &str, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, &format!("{base}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{base}[{i}]"), out);
            }
        }
        other => out.push((base.to_owned(), other)),
    }
}

/// The StatefulSet spec fields the API server lets an update change.
pub const STATEFULSET_UPDATABLE: [&str; 5] = [
    "replicas",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// What the API server answers a StatefulSet update of any other field.
pub fn statefulset_message(name: &str) -> String {
    format!(
        "StatefulSet.apps \"{name}\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )
}

/// What the API server answers a PVC shrink.
pub fn pvc_shrink_message(name: &str) -> String {
    format!(
        "PersistentVolumeClaim \"{name}\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
    )
}

/// What the API server answers a change of a bound PVC's immutable spec.
pub fn pvc_immutable_message(name: &str) -> String {
    format!(
        "PersistentVolumeClaim \"{name}\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
    )
}

/// The pre-flight's answer for one mapped field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum FieldVerdict {
    /// The API server will accept kapp's update of the field.
    Allowed {
        /// Why, in words (e.g. `the same size`, `no update restriction known for ...`).
        note: String,
    },
    /// The API server will refuse kapp's update: `why` explains, `server` is its message, `instead` says what to do.
    Refused {
        /// Why the change is refused, in words.
        why: String,
        /// The message the API server will answer, e.g. [`pvc_immutable_message`].
        server: String,
        /// What to do instead.
        instead: String,
    },
}

/// A changed value mapped to a live field, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The changed value, dotted ([`dotted`]).
    pub values_path: String,
    /// The live object's kind: `PersistentVolumeClaim` or `StatefulSet`.
    pub kind: String,
    /// The live object's namespace.
    pub namespace: String,
    /// The live object's name.
    pub name: String,
    /// The field of the live object the value drives, dotted under `spec` (e.g.
    /// `spec.resources.requests.storage`).
    pub field: String,
    /// The field's live value as text.
    pub live: String,
    /// The new value as text; `None` when the value was removed.
    pub new: Option<String>,
    /// Whether the API server will accept the change (flattened into the JSON).
    #[serde(flatten)]
    pub verdict: FieldVerdict,
}

impl Finding {
    /// Whether the API server will refuse the change.
    pub fn is_refused(&self) -> bool {
        matches!(self.verdict, FieldVerdict::Refused { .. })
    }

    /// `persistentvolumeclaim/harbor-registry -n ns`.
    pub fn object(&self) -> String {
        format!(
            "{}/{} -n {}",
            self.kind.to_ascii_lowercase(),
            self.name,
            self.namespace
        )
    }
}

/// The verdict on changing `field` (a dotted path under `spec`) of a live `kind` from `live` to `new`.
pub fn judge(
    kind: &str,
    namespace: &str,
    name: &str,
    field: &str,
    live: &str,
    new: Option<&str>,
) -> FieldVerdict {
    let Some(new) = new else {
        return FieldVerdict::Refused {
            why: format!(
                "the value is removed, so the package's default applies to {field} of {} {name}; supsvc cannot know that default, and {kind} {field} changes are restricted",
                kind.to_ascii_lowercase()
            ),
            server: String::new(),
            instead: format!("keep the value (set it explicitly to {live})"),
        };
    };
    let rest = field.strip_prefix("spec.").unwrap_or(field);
    if is_quantity_field(field)
        && let (Some(l), Some(n)) = (parse_quantity(live), parse_quantity(new))
        && l == n
    {
        // apiequality.Semantic.DeepEqual compares quantities with Cmp: the update changes nothing the
        // API server restricts, and it stores the canonical form.
        return FieldVerdict::Allowed {
            note: format!(
                "{new} is the same quantity as {live}: the API server compares quantities by value, so it accepts the update and keeps {}",
                l.canonical()
            ),
        };
    }
    match kind {
        "PersistentVolumeClaim" if rest == "resources.requests.storage" => {
            match (parse_quantity(live), parse_quantity(new)) {
                (Some(l), Some(n)) if n < l => FieldVerdict::Refused {
                    why: format!(
                        "a volume can only grow: the API server refuses to shrink PersistentVolumeClaim {name} from {live} to {new}, so kapp's deploy would fail and the service would stay Reconcile failed"
                    ),
                    server: pvc_shrink_message(name),
                    instead: format!(
                        "keep the size at {live} or more; a smaller volume means backing up the data, uninstalling the service and installing it again with the smaller size"
                    ),
                },
                (Some(l), Some(n)) if n > l => FieldVerdict::Allowed {
                    note: format!(
                        "grows the volume from {live} to {new}: expanded in place (the storage class must allow volume expansion)"
                    ),
                },
                (Some(_), Some(_)) => FieldVerdict::Allowed {
                    note: "the same size".into(),
                },
                _ => FieldVerdict::Allowed {
                    note: format!("{new:?} is not a quantity the pre-flight can compare"),
                },
            }
        }
        "PersistentVolumeClaim"
            if rest.starts_with("resources.") || rest == "volumeAttributesClassName" =>
        {
            FieldVerdict::Allowed {
                note: "a bound claim may change this".into(),
            }
        }
        "PersistentVolumeClaim" => FieldVerdict::Refused {
            why: format!(
                "a bound PersistentVolumeClaim's spec is immutable except its requested size: changing {field} of {name} from {live} to {new} would be refused, so kapp's deploy would fail"
            ),
            server: pvc_immutable_message(name),
            instead: format!(
                "keep it at {live}; moving the data to another storage class or access mode means backing it up, uninstalling the service and installing it again"
            ),
        },
        "StatefulSet" => {
            let top = rest.split(['.', '[']).next().unwrap_or(rest);
            if STATEFULSET_UPDATABLE.contains(&top) {
                return FieldVerdict::Allowed {
                    note: format!("StatefulSet {top} may be updated"),
                };
            }
            let instead = if rest.starts_with("volumeClaimTemplates")
                && rest.ends_with("resources.requests.storage")
            {
                format!(
                    "a StatefulSet's volumeClaimTemplates cannot change. To grow its volumes instead: resize each claim it created (kubectl -n {namespace} patch pvc <template>-{name}-<ordinal> -p '{{\"spec\":{{\"resources\":{{\"requests\":{{\"storage\":\"{new}\"}}}}}}}}'), delete the StatefulSet but not its pods (kubectl -n {namespace} delete statefulset {name} --cascade=orphan), then run this values change again with --force so kapp recreates the StatefulSet from the new template"
                )
            } else {
                format!(
                    "keep it at {live}; changing it means deleting the StatefulSet with --cascade=orphan (its pods and claims stay) so kapp can create it again, then applying the change with --force"
                )
            };
            FieldVerdict::Refused {
                why: format!(
                    "the API server refuses updates of a StatefulSet's spec outside replicas, template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds: changing {field} of {name} from {live} to {new} would fail kapp's deploy (the blog's ReconcileFailed)"
                ),
                server: statefulset_message(name),
                instead,
            }
        }
        _ => FieldVerdict::Allowed {
            note: format!("no update restriction known for {kind}"),
        },
    }
}

/// The pre-flight: each changed value mapped (by the rule in the module docs) to the fields of the live
/// objects (PersistentVolumeClaims and StatefulSets, full JSON) it drives, with a verdict each.
pub fn preflight(changes: &[Change], live: &[Value]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for change in changes {
        let Some(old) = change.old.as_ref().and_then(scalar_text) else {
            continue;
        };
        let new = change.new.as_ref().and_then(scalar_text);
        if change.new.is_some() && new.is_none() {
            // Replaced by a map or list: compared leaf by leaf elsewhere; nothing scalar to map.
            continue;
        }
        for object in live {
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            if !matches!(kind, "PersistentVolumeClaim" | "StatefulSet")
                || !names_object(&change.path, name)
            {
                continue;
            }
            let mut fields = Vec::new();
            leaves(&object["spec"], "spec", &mut fields);
            for (field, value) in fields {
                let Some(live_text) = scalar_text(value) else {
                    continue;
                };
                if !same_scalar(&live_text, &old) {
                    continue;
                }
                let verdict = judge(kind, namespace, name, &field, &live_text, new.as_deref());
                findings.push(Finding {
                    values_path: dotted(&change.path),
                    kind: kind.to_owned(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    field,
                    live: live_text,
                    new: new.clone(),
                    verdict,
                });
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests;
