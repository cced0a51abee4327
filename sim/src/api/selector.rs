//! Label and field selectors, in the API server's syntax.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Status;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Against any label lookup (e.g. straight into an object's JSON, without copying its labels).
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        }
    }
}

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// A `matchExpressions` operator that is not one of apimachinery's four; holds the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid label selector operator")]
pub struct InvalidOperator(pub String);

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|m| m.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| r.matches_with(label))
    }

    /// Parses `a=b,c!=d,e in (f,g),!h,i`.
    pub fn parse(s: &str) -> Result<Self, Status> {
        let mut out = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let (req, tail) = parse_requirement(rest)?;
            out.push(req);
            rest = tail.trim_start();
            if let Some(t) = rest.strip_prefix(',') {
                rest = t.trim_start();
                if rest.is_empty() {
                    return Err(parse_error("found '', expected: identifier"));
                }
            } else if !rest.is_empty() {
                return Err(parse_error(&format!(
                    "found '{rest}', expected: ',' or 'end of string'"
                )));
            }
        }
        Ok(LabelSelector(out))
    }

    /// From a `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`), as webhooks carry them.
    ///
    /// # Errors
    /// [`InvalidOperator`] for a `matchExpressions` operator other than `In`, `NotIn`, `Exists` and
    /// `DoesNotExist`.
    pub fn from_object(v: &Value) -> Result<Self, InvalidOperator> {
        let mut out = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                out.push(Requirement::Equals(
                    k.clone(),
                    val.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        for e in v
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            out.push(
                match e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    other => {
                        return Err(InvalidOperator(other.to_string()));
                    }
                },
            );
        }
        Ok(LabelSelector(out))
    }
}

fn parse_error(detail: &str) -> Status {
    Status::bad_request(format!("unable to parse requirement: {detail}"))
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn take_key(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_key_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

fn parse_requirement(s: &str) -> Result<(Requirement, &str), Status> {
    if let Some(t) = s.strip_prefix('!') {
        let (key, rest) = take_key(t.trim_start());
        if key.is_empty() {
            return Err(parse_error("found '!', expected: identifier"));
        }
        return Ok((Requirement::DoesNotExist(key.into()), rest));
    }
    let (key, rest) = take_key(s);
    if key.is_empty() {
        return Err(parse_error(&format!(
            "found '{s}', expected: !, identifier, or 'end of string'"
        )));
    }
    let key = key.to_string();
    let rest = rest.trim_start();
    let value_of = |t: &str| -> (String, usize) {
        let t2 = t.trim_start();
        let skipped = t.len() - t2.len();
        let (v, _) = take_key(t2);
        (v.to_string(), skipped + v.len())
    };
    for (op, ne) in [("==", false), ("!=", true), ("=", false)] {
        if let Some(t) = rest.strip_prefix(op) {
            let (v, used) = value_of(t);
            let req = if ne {
                Requirement::NotEquals(key, v)
            } else {
                Requirement::Equals(key, v)
            };
            return Ok((req, &t[used..]));
        }
    }
    for (word, not) in [("notin", true), ("in", false)] {
        if let Some(t) = rest.strip_prefix(word) {
            let t = t.trim_start();
            let Some(t) = t.strip_prefix('(') else {
                return Err(parse_error(&format!("found '{t}', expected: '('")));
            };
            let Some(close) = t.find(')') else {
                return Err(parse_error("found 'end of string', expected: ')'"));
            };
            let values: Vec<String> = t[..close]
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            let req = if not {
                Requirement::NotIn(key, values)
            } else {
                Requirement::In(key, values)
            };
            return Ok((req, &t[close + 1..]));
        }
    }
    Ok((Requirement::Exists(key), rest))
}

/// `metadata.labels` as a map.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed field selector: `metadata.name=x,type!=y`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses and checks the fields against what `kind` supports.
    pub fn parse(s: &str, kind: &str) -> Result<Self, Status> {
        let mut out = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, negate, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, false, v)
            } else {
                return Err(Status::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if !supported_field(kind, field) {
                return Err(Status::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            out.push((field.to_string(), negate, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, negate, value)| {
            let actual = field_value(object, field);
            (actual == *value) != *negate
        })
    }
}

fn supported_field(kind: &str, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace")
        || matches!(
            (kind, field),
            ("Secret", "type")
                | (
                    "Event",
                    "involvedObject.kind"
                        | "involvedObject.name"
                        | "involvedObject.namespace"
                        | "involvedObject.uid"
                        | "reason"
                        | "type"
                )
                | (
                    "Pod",
                    "spec.nodeName" | "status.phase" | "spec.serviceAccountName"
                )
                | ("Namespace", "status.phase")
        )
}

fn field_value(object: &Value, field: &str) -> String {
    super::registry::at_path(object, field)
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("kapp.k14s.io/app", "123"),
        ]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app in (web, db)", true),
            ("app in (db)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!tier", false),
            ("app=web,tier=front", true),
            ("app=web, tier=back", false),
            ("kapp.k14s.io/app", true),
            ("kapp.k14s.io/app=123,!kapp.k14s.io/is-app", true),
        ];
        let object = serde_json::json!({"metadata": {"labels": l}});
        for (sel, want) in cases {
            let parsed = LabelSelector::parse(sel).unwrap();
            assert_eq!(parsed.matches(&l), want, "{sel}");
            assert_eq!(parsed.matches_object(&object), want, "{sel} on an object");
        }
    }

    #[test]
    fn bad_label_selectors_are_400() {
        for sel in ["app in web", "app=web,", "=x", "app in (a"] {
            assert_eq!(LabelSelector::parse(sel).unwrap_err().code, 400, "{sel}");
        }
    }

    #[test]
    fn field_selectors() {
        let s = serde_json::json!({"metadata": {"name": "a", "namespace": "n"}, "type": "Opaque"});
        let cases = [
            ("metadata.name=a", true),
            ("metadata.name!=a", false),
            ("metadata.namespace==n,metadata.name=a", true),
            ("type=Opaque", true),
            ("type=kubernetes.io/tls", false),
        ];
        for (sel, want) in cases {
            assert_eq!(
                FieldSelector::parse(sel, "Secret").unwrap().matches(&s),
                want,
                "{sel}"
            );
        }
        assert_eq!(
            FieldSelector::parse("spec.foo=1", "Secret")
                .unwrap_err()
                .message,
            "field label not supported: spec.foo"
        );
    }

    #[test]
    fn selector_objects() {
        let sel = serde_json::json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]}]});
        let s = LabelSelector::from_object(&sel).unwrap();
        assert!(s.matches(&labels(&[("a", "1")])));
        assert!(!s.matches(&labels(&[("a", "1"), ("b", "x")])));
        let bad = serde_json::json!({"matchExpressions": [{"key": "b", "operator": "Equals"}]});
        assert_eq!(
            LabelSelector::from_object(&bad).unwrap_err(),
            InvalidOperator("Equals".into())
        );
    }
}
