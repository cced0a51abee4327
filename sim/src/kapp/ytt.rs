//! The part of ytt the simulator's kapp-controller runs for bundles that carry real ytt templates
//! (the `config/` of an imgpkg bundle, as kapp-controller's `template: [{ytt: {paths: [config/]}}]`
//! step reads it). Real ytt (carvel.dev/ytt/docs/latest/) evaluates Starlark; this is the subset a
//! values-driven bundle needs, with ytt's own meaning for each form:
//!
//! - `#@ load("@ytt:data", "data")` and `#@ load("@ytt:yaml", "yaml")`: the two modules used;
//! - a document annotated `#@data/values-schema`: its values are the data values' defaults (other
//!   `#@schema/...` annotations only type them and are skipped);
//! - `#@ def NAME():` … `#@ end` at the start of a line: a YAML fragment function;
//! - a value annotation, `key: #@ EXPR` or `- #@ EXPR`: the node's value is EXPR's;
//! - EXPR: terms joined by `+` (string concatenation or integer sum), each term a string literal
//!   (`"…"`), an integer, `data.values.a.b`, `str(EXPR)`, `yaml.encode(EXPR)` or `NAME()`.
//!
//! Anything else annotated with `#@` is refused with an error naming the line, so a template
//! that needs more of ytt fails loudly instead of rendering wrongly.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a template did not render; `Display` starts as ytt's errors do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YttError {
    /// The text is not YAML once annotations are taken out; holds the file and the parser's message.
    #[error("ytt: Error: Unmarshaling YAML template '{0}': {1}")]
    NotYaml(String, String),
    /// An annotation or expression outside the subset; holds the file and the line.
    #[error("ytt: Error: {0}: unsupported annotation or expression (simulator's ytt subset): {1}")]
    Unsupported(String, String),
    /// `data.values.PATH` names no value; holds the key not found and the whole path.
    #[error(
        "ytt: Error: Evaluating starlark template: struct has no .{0} attribute (data.values.{1})"
    )]
    MissingValue(String, String),
    /// `+` between a string and an integer, or another type error; holds the expression.
    #[error("ytt: Error: Evaluating starlark template: unknown binary op in {0}")]
    Type(String),
    /// A plain YAML comment line, which ytt refuses (its comments are `#!`); holds the file and line.
    #[error("ytt: Error: {0}: Unrecognized comment type (expected '#@' or '#!'): {1}")]
    Comment(String, String),
    /// `NAME()` names no `#@ def`; holds the name.
    #[error("ytt: Error: Evaluating starlark template: undefined: {0}")]
    Undefined(String),
}

/// Marks a string that holds an expression to evaluate (a control character no manifest holds).
const MARK: char = '\u{1}';

/// A file of templates, split into documents and fragment functions.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// The data values' defaults, from the `#@data/values-schema` documents.
    pub defaults: Value,
    documents: Vec<(String, Value)>,
    functions: BTreeMap<String, (String, Value)>,
}

impl Templates {
    /// Parses `(file name, text)` pairs.
    ///
    /// # Errors
    /// [`YttError::NotYaml`] or [`YttError::Unsupported`].
    pub fn parse<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, YttError> {
        let mut templates = Templates {
            defaults: Value::Object(Default::default()),
            ..Default::default()
        };
        for (file, text) in files {
            templates.add(file, text)?;
        }
        Ok(templates)
    }

    fn add(&mut self, file: &str, text: &str) -> Result<(), YttError> {
        let mut main = Vec::new();
        let mut function: Option<(String, Vec<String>)> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            if let Some((name, body)) = &mut function {
                if trimmed == "#@ end" {
                    let value = parse_yaml(file, &body.join("\n"))?
                        .into_iter()
                        .next()
                        .unwrap_or(Value::Null);
                    self.functions
                        .insert(name.clone(), (file.to_owned(), value));
                    function = None;
                } else {
                    body.push(mark_line(file, line)?);
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("#@ def ") {
                let name = rest
                    .strip_suffix("():")
                    .filter(|n| is_identifier(n))
                    .ok_or_else(|| YttError::Unsupported(file.to_owned(), line.to_owned()))?;
                function = Some((name.to_owned(), Vec::new()));
                continue;
            }
            if trimmed == "#@data/values-schema" || trimmed == "#@data/values" {
                main.push("#SCHEMA".to_owned());
                continue;
            }
            main.push(mark_line(file, line)?);
        }
        if function.is_some() {
            return Err(YttError::Unsupported(
                file.to_owned(),
                "#@ def without its #@ end".into(),
            ));
        }
        // Split documents by hand to know which one a schema annotation belongs to: the document
        // after the `---` that follows it, or the one it opens.
        let mut chunk: Vec<String> = Vec::new();
        let (mut schema, mut schema_next) = (false, false);
        let mut flush = |chunk: &mut Vec<String>, schema: bool| -> Result<(), YttError> {
            for document in parse_yaml(file, &chunk.join("\n"))? {
                if schema {
                    crate::kapp::template::merge_values(&mut self.defaults, &document);
                } else if !document.is_null() {
                    self.documents.push((file.to_owned(), document));
                }
            }
            chunk.clear();
            Ok(())
        };
        for line in main {
            if line == "---" || line.starts_with("--- ") {
                flush(&mut chunk, schema)?;
                schema = std::mem::take(&mut schema_next);
            } else if line == "#SCHEMA" {
                schema_next = true;
            } else {
                let content = !line.trim().is_empty() && !line.trim_start().starts_with('#');
                if content && schema_next {
                    flush(&mut chunk, schema)?;
                    schema = std::mem::take(&mut schema_next);
                }
                chunk.push(line);
            }
        }
        flush(&mut chunk, schema)
    }

    /// Renders every document with `values` (the defaults already merged under the caller's).
    ///
    /// # Errors
    /// [`YttError`] from an expression.
    pub fn render(&self, values: &Value) -> Result<Vec<Value>, YttError> {
        self.documents
            .iter()
            .map(|(file, document)| self.eval_node(file, document, values, 0))
            .collect()
    }

    fn eval_node(
        &self,
        file: &str,
        node: &Value,
        values: &Value,
        depth: usize,
    ) -> Result<Value, YttError> {
        match node {
            Value::String(s) => match s.strip_prefix(MARK) {
                Some(expr) => self.eval(file, expr, values, depth),
                None => Ok(node.clone()),
            },
            Value::Array(items) => items
                .iter()
                .map(|v| self.eval_node(file, v, values, depth))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.eval_node(file, v, values, depth)?)))
                .collect::<Result<_, YttError>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn eval(
        &self,
        file: &str,
        expr: &str,
        values: &Value,
        depth: usize,
    ) -> Result<Value, YttError> {
        let unsupported = || YttError::Unsupported(file.to_owned(), expr.to_owned());
        if depth > 16 {
            return Err(unsupported());
        }
        let terms = split_top(expr, '+');
        let mut result: Option<Value> = None;
        for term in terms {
            let term = term.trim();
            let value = self.term(file, term, values, depth).map_err(|e| match e {
                YttError::Unsupported(..) => unsupported(),
                other => other,
            })?;
            result = Some(match (result, value) {
                (None, v) => v,
                (Some(Value::String(a)), Value::String(b)) => Value::String(a + &b),
                (Some(Value::Number(a)), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                    (Some(a), Some(b)) => Value::from(a + b),
                    _ => return Err(YttError::Type(expr.to_owned())),
                },
                _ => return Err(YttError::Type(expr.to_owned())),
            });
        }
        result.ok_or_else(unsupported)
    }

    fn term(
        &self,
        file: &str,
        term: &str,
        values: &Value,
        depth: usize,
    ) -> Result<Value, YttError> {
        let unsupported = || YttError::Unsupported(file.to_owned(), term.to_owned());
        if let Some(inner) = term.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if inner.contains('"') || inner.contains('\\') {
                return Err(unsupported());
            }
            return Ok(Value::String(inner.to_owned()));
        }
        if let Ok(n) = term.parse::<i64>() {
            return Ok(Value::from(n));
        }
        if let Some(path) = term.strip_prefix("data.values.") {
            let mut at = values;
            for key in path.split('.') {
                if !is_identifier(key) {
                    return Err(unsupported());
                }
                at = at
                    .get(key)
                    .ok_or_else(|| YttError::MissingValue(key.to_owned(), path.to_owned()))?;
            }
            return Ok(at.clone());
        }
        if let Some(inner) = call(term, "str") {
            return Ok(match self.eval(file, inner, values, depth + 1)? {
                Value::String(s) => Value::String(s),
                other => Value::String(other.to_string()),
            });
        }
        if let Some(inner) = call(term, "yaml.encode") {
            let value = self.eval(file, inner, values, depth + 1)?;
            return serde_saphyr::to_string(&value)
                .map(Value::String)
                .map_err(|_| unsupported());
        }
        if let Some(name) = term.strip_suffix("()").filter(|n| is_identifier(n)) {
            let (defined_in, body) = self
                .functions
                .get(name)
                .ok_or_else(|| YttError::Undefined(name.to_owned()))?;
            return self.eval_node(defined_in, body, values, depth + 1);
        }
        Err(unsupported())
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// `NAME(ARGS)` → ARGS.
fn call<'a>(term: &'a str, name: &str) -> Option<&'a str> {
    term.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// Splits at `sep` outside string literals and parentheses.
fn split_top(expr: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in expr.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push(&expr[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&expr[start..]);
    out
}

/// One template line with its value annotation turned into a marked string; `#@ load` lines and
/// schema type annotations are dropped; any other `#@` is refused.
fn mark_line(file: &str, line: &str) -> Result<String, YttError> {
    let trimmed = line.trim_start();
    if trimmed.starts_with("#@ load(") {
        return if trimmed == r#"#@ load("@ytt:data", "data")"#
            || trimmed == r#"#@ load("@ytt:yaml", "yaml")"# {
            Ok(String::new())
        } else {
            Err(YttError::Unsupported(file.to_owned(), line.to_owned()))
        };
    }
    if trimmed.starts_with("#@schema/") || trimmed.starts_with("#!") {
        return Ok(String::new());
    }
    if trimmed.starts_with('#') && !trimmed.starts_with("#@") {
        // ytt refuses YAML comments: its own are `#!` (ytt's "Unrecognized comment type").
        return Err(YttError::Comment(file.to_owned(), line.to_owned()));
    }
    if trimmed.starts_with("#@") {
        return Err(YttError::Unsupported(file.to_owned(), line.to_owned()));
    }
    let Some(at) = line.find(" #@ ") else {
        return Ok(line.to_owned());
    };
    let (head, expr) = (&line[..at], line[at + 4..].trim());
    let head_trimmed = head.trim_start();
    if !(head.ends_with(':') || head_trimmed == "-" || head_trimmed.ends_with(" -")) {
        return Err(YttError::Unsupported(file.to_owned(), line.to_owned()));
    }
    let marked = serde_json::to_string(&format!("{MARK}{expr}")).unwrap_or_default();
    Ok(format!("{head} {marked}"))
}

fn parse_yaml(file: &str, text: &str) -> Result<Vec<Value>, YttError> {
    serde_saphyr::from_multiple::<Value>(text)
        .map_err(|e| YttError::NotYaml(file.to_owned(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"#@data/values-schema
---
namespace: web
replicas: 2
#@schema/type any=True
settings: {}
"#;

    const DEPLOY: &str = r#"#@ load("@ytt:data", "data")
#@ load("@ytt:yaml", "yaml")

#@ def config():
mode: #@ data.values.mode
settings: #@ data.values.settings
#@ end
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: #@ data.values.namespace
spec:
  replicas: #@ data.values.replicas
  template:
    spec:
      containers:
        - name: web
          args:
            - #@ "--host=web." + data.values.namespace + ".svc"
            - #@ "--replicas=" + str(data.values.replicas)
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: #@ data.values.namespace
data:
  config.yaml: #@ yaml.encode(config())
  plain: "a # not an annotation"
"#;

    #[test]
    fn value_annotations_render_with_the_values_and_their_types() {
        let t = Templates::parse([("values.yaml", SCHEMA), ("deploy.yaml", DEPLOY)]).unwrap();
        assert_eq!(
            t.defaults,
            json!({"namespace": "web", "replicas": 2, "settings": {}})
        );
        let mut values = t.defaults.clone();
        crate::kapp::template::merge_values(
            &mut values,
            &json!({"replicas": 3, "mode": "monitor", "settings": {"exempt": ["a"]}}),
        );
        let docs = t.render(&values).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["spec"]["replicas"], 3);
        assert_eq!(docs[0]["metadata"]["namespace"], "web");
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["--host=web.web.svc", "--replicas=3"])
        );
        let config: Value =
            serde_saphyr::from_str(docs[1]["data"]["config.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(
            config,
            json!({"mode": "monitor", "settings": {"exempt": ["a"]}})
        );
        assert_eq!(docs[1]["data"]["plain"], "a # not an annotation");
    }

    #[test]
    fn what_the_subset_does_not_know_is_refused_with_the_line() {
        for (text, needle) in [
            (
                "#@ load(\"@ytt:overlay\", \"overlay\")\na: 1\n",
                "@ytt:overlay",
            ),
            ("#@ if data.values.x:\na: 1\n#@ end\n", "#@ if"),
            ("a: #@ data.values.x * 2\n", "data.values.x * 2"),
            ("#@ def f():\na: 1\n", "#@ def without its #@ end"),
        ] {
            let err = Templates::parse([("t.yaml", text)])
                .and_then(|t| t.render(&json!({"x": 1})))
                .unwrap_err();
            assert!(matches!(err, YttError::Unsupported(..)), "{text}: {err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn plain_comments_are_refused_and_ytt_comments_dropped() {
        let err = Templates::parse([("t.yaml", "# a comment\na: 1\n")]).unwrap_err();
        assert!(matches!(err, YttError::Comment(..)), "{err}");
        let t = Templates::parse([("t.yaml", "#! a ytt comment\na: 1\n")]).unwrap();
        assert_eq!(t.render(&json!({})).unwrap(), vec![json!({"a": 1})]);
    }

    #[test]
    fn a_missing_value_and_a_type_error_are_ytts_errors() {
        let t = Templates::parse([(
            "t.yaml",
            "a: #@ data.values.x.y\nb: #@ \"n\" + data.values.n\n",
        )])
        .unwrap();
        let err = t.render(&json!({"x": {}, "n": 1})).unwrap_err();
        assert_eq!(err, YttError::MissingValue("y".into(), "x.y".into()));
        let err = t.render(&json!({"x": {"y": 1}, "n": 1})).unwrap_err();
        assert!(matches!(err, YttError::Type(_)), "{err}");
        let t = Templates::parse([("t.yaml", "a: #@ nope()\n")]).unwrap();
        assert_eq!(
            t.render(&json!({})).unwrap_err(),
            YttError::Undefined("nope".into())
        );
    }
}
