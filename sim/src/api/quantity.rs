//! Resource quantities (`10Gi`, `500M`, `1.5Ti`), compared exactly as the API server compares them, and
//! the API server's semantic equality of objects that hold them ([`semantic_eq`]).
//!
//! Quantities are the project's one [`Quantity`] (supsvc-core's: apimachinery's grammar, exact
//! arithmetic, canonical form), as the plugin, the webhook and the policies read them.

use serde_json::Value;
pub use supsvc_core::quantity::Quantity;

/// A quantity as the API server decodes one from text, or `None` where it refuses the text.
pub fn parse(s: &str) -> Option<Quantity> {
    Quantity::parse(s).ok()
}

/// A JSON leaf as a quantity: Kubernetes decodes a quantity from a string or a number.
fn leaf_quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => parse(s),
        Value::Number(n) => parse(&n.to_string()),
        _ => None,
    }
}

/// Absent, `null`, `[]` and `{}` are one value to Go: a nil or empty slice, map or pointer.
fn is_nil(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

/// `apiequality.Semantic.DeepEqual` on JSON objects of the core kinds
/// (k8s.io/apimachinery/pkg/api/equality/semantic.go): quantities are equal when their values are
/// (`a.Cmp(b) == 0`: `2Gi` and `2048Mi`), and nil and empty slices and maps are equal
/// (third_party/forked/golang/reflect/deep_equal.go). Quantities are the values of a resource list and
/// `sizeLimit`.
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    eq(a, b, false)
}

fn eq(a: &Value, b: &Value, quantity: bool) -> bool {
    if quantity && let (Some(x), Some(y)) = (leaf_quantity(a), leaf_quantity(b)) {
        return x == y;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .all(|k| match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => {
                        if supsvc_core::quantity::RESOURCE_LISTS.contains(&k.as_str()) {
                            resource_list_eq(v, w)
                        } else {
                            eq(v, w, k == "sizeLimit")
                        }
                    }
                    (v, w) => is_nil(v) && is_nil(w),
                })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| eq(v, w, false))
        }
        _ => a == b || (is_nil(Some(a)) && is_nil(Some(b))),
    }
}

fn resource_list_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .all(|k| match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => eq(v, w, true),
                    _ => false,
                })
        }
        _ => eq(a, b, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cmp::Ordering;

    #[test]
    fn semantic_equality() {
        let sts = |size: Value, extra: Value| {
            json!({"serviceName": "db", "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}],
                "extra": extra})
        };
        let cases = [
            (
                sts(json!("2Gi"), json!(null)),
                sts(json!("2048Mi"), json!(null)),
                true,
            ),
            (
                sts(json!("2Gi"), json!(null)),
                sts(json!(2147483648u64), json!(null)),
                true,
            ),
            (
                sts(json!("2Gi"), json!(null)),
                sts(json!("2G"), json!(null)),
                false,
            ),
            (
                sts(json!("2Gi"), json!(null)),
                sts(json!("2147483649"), json!(null)),
                false,
            ),
            // nil and empty are one value; absent too.
            (
                sts(json!("2Gi"), json!([])),
                sts(json!("2Gi"), json!({})),
                true,
            ),
            (
                sts(json!("2Gi"), json!("")),
                sts(json!("2Gi"), json!(null)),
                false,
            ),
            // Outside quantity fields, equal numbers in other spellings differ.
            (json!({"name": "1"}), json!({"name": "1.0"}), false),
            (
                json!({"sizeLimit": "1Gi"}),
                json!({"sizeLimit": "1024Mi"}),
                true,
            ),
            // A resource present on one side only is a difference.
            (
                json!({"limits": {"cpu": "1"}}),
                json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
                false,
            ),
            (
                json!({"limits": {"cpu": "1"}}),
                json!({"limits": {"cpu": "1000m"}}),
                true,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(semantic_eq(&a, &b), want, "{a} vs {b}");
            assert_eq!(semantic_eq(&b, &a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn compares_across_suffixes() {
        let q = |s| parse(s).unwrap();
        let cases = [
            ("10Gi", "10Gi", Ordering::Equal),
            ("10Gi", "5Gi", Ordering::Greater),
            ("1Gi", "1G", Ordering::Greater),
            ("1024Mi", "1Gi", Ordering::Equal),
            ("1Ti", "1024Gi", Ordering::Equal),
            ("1.5Gi", "1536Mi", Ordering::Equal),
            ("1000M", "1G", Ordering::Equal),
            ("1k", "1000", Ordering::Equal),
            ("500m", "1", Ordering::Less),
            ("1e3", "1k", Ordering::Equal),
            ("2Ei", "1Ei", Ordering::Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(q(a).cmp(&q(b)), want, "{a} vs {b}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "1Xi", "1.2.3", "abc", "1 Gi", "--1"] {
            assert_eq!(parse(s), None, "{s}");
        }
        // apimachinery reads a bare suffix as zero, and rounds sub-nano digits up.
        assert_eq!(parse("Gi"), parse("0"));
        assert_eq!(parse("1.0000000001"), parse("1000000001n"));
    }
}
