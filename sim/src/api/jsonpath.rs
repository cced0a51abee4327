//! The JSONPath subset of Kubernetes (`k8s.io/client-go/util/jsonpath`) that CRD printer columns use:
//! `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[*]`, `.*` and filters `[?(@.type=="Ready")]`, `[?(@.x)]`, with or
//! without the template braces (`{.a.b}`) and the root `$`, as `RelaxedJSONPathExpression` accepts them.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.path OP "literal")]` (`OP` = `==` or `!=`); no operator = the field exists.
    Filter {
        path: Vec<Step>,
        test: Option<(bool, Value)>,
    },
}

/// Why a JSONPath expression (as kubectl's `-o jsonpath` and CRD printer columns write them) did not
/// parse; each variant holds the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// A `[` without its `]`.
    #[error("unterminated array notation in {0:?}")]
    Unterminated(String),
    /// A filter's right-hand side that is neither a quoted string nor a JSON literal.
    #[error("unrecognized filter literal {0:?}")]
    FilterLiteral(String),
    /// A filter whose left-hand side does not start with `@`.
    #[error("a filter must start with @: {0:?}")]
    FilterWithoutAt(String),
    /// A bracket that is no index, key, wildcard or filter.
    #[error("unrecognized array notation [{0}]")]
    ArrayNotation(String),
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `.status.conditions[?(@.type=="Ready")].status` (braces and `$` optional).
    ///
    /// # Errors
    /// [`JsonPathError`]: an unterminated bracket, a filter without `@` or with a literal that does
    /// not parse, or a bracket that is no path step.
    pub fn parse(text: &str) -> Result<JsonPath, JsonPathError> {
        let mut t = text.trim();
        if let Some(inner) = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            t = inner.trim();
        }
        t = t.strip_prefix('$').unwrap_or(t);
        parse_steps(t).map(JsonPath)
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.0, root)
    }
}

fn parse_steps(mut t: &str) -> Result<Vec<Step>, JsonPathError> {
    let mut steps = Vec::new();
    while !t.is_empty() {
        if let Some(rest) = t.strip_prefix('.') {
            if let Some(rest) = rest.strip_prefix('*') {
                steps.push(Step::All);
                t = rest;
                continue;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                if rest.is_empty() {
                    break;
                }
                t = rest;
                continue;
            }
            steps.push(Step::Field(rest[..end].to_string()));
            t = &rest[end..];
        } else if let Some(rest) = t.strip_prefix('[') {
            let (inside, after) = split_bracket(rest)?;
            steps.push(parse_bracket(inside.trim())?);
            t = after;
        } else {
            // A bare first field (`status.phase`), as the relaxed form allows.
            let end = t.find(['.', '[']).unwrap_or(t.len());
            steps.push(Step::Field(t[..end].to_string()));
            t = &t[end..];
        }
    }
    Ok(steps)
}

/// The text up to the `]` that closes the bracket just opened (quotes and nested brackets respected).
fn split_bracket(s: &str) -> Result<(&str, &str), JsonPathError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Ok((&s[..i], &s[i + 1..])),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    Err(JsonPathError::Unterminated(s.to_string()))
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
}

fn parse_bracket(inside: &str) -> Result<Step, JsonPathError> {
    if inside == "*" {
        return Ok(Step::All);
    }
    if let Some(key) = unquote(inside) {
        return Ok(Step::Field(key.to_string()));
    }
    if let Ok(i) = inside.parse::<i64>() {
        return Ok(Step::Index(i));
    }
    if let Some(expr) = inside.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
        let expr = expr.trim();
        let (lhs, test) = match expr.find("==").or_else(|| expr.find("!=")) {
            Some(at) => {
                let equal = &expr[at..at + 2] == "==";
                let literal = expr[at + 2..].trim();
                let value = match unquote(literal) {
                    Some(s) => Value::from(s),
                    None => serde_json::from_str(literal)
                        .map_err(|_| JsonPathError::FilterLiteral(literal.to_string()))?,
                };
                (expr[..at].trim(), Some((equal, value)))
            }
            None => (expr, None),
        };
        let path = lhs
            .strip_prefix('@')
            .ok_or_else(|| JsonPathError::FilterWithoutAt(expr.to_string()))?;
        return Ok(Step::Filter {
            path: parse_steps(path)?,
            test,
        });
    }
    Err(JsonPathError::ArrayNotation(inside.to_string()))
}

fn eval<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                        let at = if *i < 0 { len + i } else { *i };
                        if let Ok(at) = usize::try_from(at) {
                            next.extend(a.get(at));
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, test } => {
                    let items: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        Value::Object(m) => m.values().collect(),
                        _ => Vec::new(),
                    };
                    next.extend(items.into_iter().filter(|item| {
                        let found = eval(path, item);
                        match test {
                            None => !found.is_empty(),
                            Some((equal, want)) => {
                                found.first().is_some_and(|f| *f == want) == *equal
                            }
                        }
                    }));
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_as_printer_columns_write_them() {
        let o = json!({
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Synced", "status": "False"}
            ]}
        });
        let cases: &[(&str, Vec<Value>)] = &[
            (".spec.replicas", vec![json!(3)]),
            ("{.spec.replicas}", vec![json!(3)]),
            ("$.spec.replicas", vec![json!(3)]),
            ("spec.replicas", vec![json!(3)]),
            (".spec.ports[1].port", vec![json!(443)]),
            (".spec.ports[-1].port", vec![json!(443)]),
            (".spec.ports[*].port", vec![json!(80), json!(443)]),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                vec![json!("web")],
            ),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                vec![json!("True")],
            ),
            (
                ".status.conditions[?(@.type=='Synced')].status",
                vec![json!("False")],
            ),
            (
                ".status.conditions[?(@.type!=\"Ready\")].type",
                vec![json!("Synced")],
            ),
            (".status.missing", vec![]),
            (".spec.ports[5].port", vec![]),
        ];
        for (path, want) in cases {
            let p = JsonPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let got: Vec<Value> = p.find(&o).into_iter().cloned().collect();
            assert_eq!(&got, want, "{path}");
        }
    }

    #[test]
    fn bad_paths_are_errors() {
        let cases = [
            (".a[0", JsonPathError::Unterminated("0".into())),
            (".a[?(x==1)]", JsonPathError::FilterWithoutAt("x==1".into())),
            (".a[?(@.b==zz)]", JsonPathError::FilterLiteral("zz".into())),
            (".a[foo]", JsonPathError::ArrayNotation("foo".into())),
        ];
        for (bad, want) in cases {
            assert_eq!(JsonPath::parse(bad), Err(want), "{bad}");
        }
    }
}
