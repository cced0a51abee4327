//! The App's template step: data values merged from the bundle's defaults and the values Secrets,
//! then substituted into the bundle's manifests.
//!
//! Real bundles use ytt; the simulator needs only substitution, written `{{ values.a.b }}`. A string
//! that is exactly one placeholder takes the value with its type; otherwise the value is interpolated.

use serde_json::Value;

/// Why the template step failed; `Display` is the text ytt prints, which kapp-controller puts in the
/// App's `usefulErrorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A values file (one key of a values Secret) is not YAML.
    #[error("ytt: Error: Unmarshaling YAML data values file '{file}': {reason}")]
    ValuesNotYaml {
        /// The Secret's key.
        file: String,
        /// The parser's message.
        reason: String,
    },
    /// A values file's document is YAML but not a map.
    #[error("ytt: Error: Expected data values file '{0}' to contain a map")]
    ValuesNotAMap(String),
    /// A `{{` without its `}}`; holds the manifest string.
    #[error("ytt: Error: unterminated placeholder in {0:?}")]
    Unterminated(String),
    /// A placeholder that does not start with `values.`.
    #[error("ytt: Error: unknown placeholder '{0}' (expected values.<path>)")]
    UnknownPlaceholder(String),
    /// A placeholder whose path the data values do not have.
    #[error(
        "ytt: Error: Evaluating starlark template: struct has no .{key} attribute (data.values.{path})"
    )]
    MissingValue {
        /// The first key not found.
        key: String,
        /// The whole path after `values.`.
        path: String,
    },
}

/// Deep-merges `overlay` onto `base`, as ytt merges data values files: maps merge key by key,
/// anything else is replaced.
pub fn merge_values(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge_values(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// Parses every document of a values file (one key of a values Secret) and merges them onto `values`.
///
/// # Errors
/// [`TemplateError::ValuesNotYaml`] or [`TemplateError::ValuesNotAMap`].
pub fn merge_values_file(values: &mut Value, name: &str, text: &str) -> Result<(), TemplateError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| TemplateError::ValuesNotYaml {
            file: name.to_string(),
            reason: e.to_string(),
        })?;
    for document in documents.iter().filter(|d| !d.is_null()) {
        if !document.is_object() {
            return Err(TemplateError::ValuesNotAMap(name.to_string()));
        }
        merge_values(values, document);
    }
    Ok(())
}

/// Renders one manifest.
///
/// # Errors
/// [`TemplateError`] for a malformed placeholder or a value the data values do not have.
pub fn render(manifest: &Value, values: &Value) -> Result<Value, TemplateError> {
    match manifest {
        Value::String(text) => render_string(text, values),
        Value::Array(items) => items
            .iter()
            .map(|v| render(v, values))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), render(v, values)?)))
            .collect::<Result<_, TemplateError>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn render_string(text: &str, values: &Value) -> Result<Value, TemplateError> {
    let trimmed = text.trim();
    if let Some(path) = whole_placeholder(trimmed) {
        return lookup(values, path).cloned();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| TemplateError::Unterminated(text.to_string()))?;
        out.push_str(&rest[..start]);
        let path = rest[start + 2..start + end].trim();
        match lookup(values, path)? {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn whole_placeholder(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

fn lookup<'a>(values: &'a Value, path: &str) -> Result<&'a Value, TemplateError> {
    let keys = path
        .strip_prefix("values.")
        .ok_or_else(|| TemplateError::UnknownPlaceholder(path.to_string()))?;
    let mut current = values;
    for key in keys.split('.') {
        current = current
            .get(key)
            .ok_or_else(|| TemplateError::MissingValue {
                key: key.to_string(),
                path: keys.to_string(),
            })?;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_whole_placeholder_keeps_the_value_type_and_interpolation_makes_strings() {
        let values = json!({"registry": {"size": "55Gi", "replicas": 2}});
        let manifest = json!({"size": "{{ values.registry.size }}", "n": "{{values.registry.replicas}}", "label": "r-{{ values.registry.replicas }}"});
        assert_eq!(
            render(&manifest, &values).unwrap(),
            json!({"size": "55Gi", "n": 2, "label": "r-2"})
        );
    }

    #[test]
    fn a_missing_value_is_a_template_error_naming_the_path() {
        let error = render(&json!("{{ values.a.b }}"), &json!({"a": {}})).unwrap_err();
        assert!(error.to_string().contains("data.values.a.b"), "{error}");
    }

    #[test]
    fn values_files_merge_deeply_over_defaults() {
        let mut values =
            json!({"persistence": {"registry": {"size": "55Gi", "storageClass": "ftt0-r0"}}});
        merge_values_file(
            &mut values,
            "values.yaml",
            "persistence:\n  registry:\n    size: 60Gi\n",
        )
        .unwrap();
        assert_eq!(
            values,
            json!({"persistence": {"registry": {"size": "60Gi", "storageClass": "ftt0-r0"}}})
        );
    }

    #[test]
    fn a_values_file_that_is_not_a_map_is_refused() {
        let mut values = json!({});
        assert_eq!(
            merge_values_file(&mut values, "values.yaml", "- a\n- b\n"),
            Err(TemplateError::ValuesNotAMap("values.yaml".into()))
        );
        assert!(matches!(
            merge_values_file(&mut values, "values.yaml", "a: [unclosed\n"),
            Err(TemplateError::ValuesNotYaml { file, .. }) if file == "values.yaml"
        ));
        assert_eq!(values, json!({}), "nothing merged from a refused file");
    }
}
