//! Resource quantities (`10Gi`, `500M`, `1.5Ti`), compared exactly as the API server compares them, and
//! the API server's semantic equality of objects that hold them ([`semantic_eq`]).
//!
//! The simulator keeps its own parser rather than using supsvc-core's: it is the independent oracle the
//! plugin's pre-flight is tested against, so the two must not share a mistake.

use serde_json::Value;

/// A quantity in nano-units: exact for every suffix the API accepts up to `Ei`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i128);

impl Quantity {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(split);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
            || frac_part.len() > 9
        {
            return None;
        }
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let frac: i128 = if frac_part.is_empty() {
            0
        } else {
            format!("{frac_part:0<9}").parse().ok()?
        };
        let nanos = int.checked_mul(1_000_000_000)?.checked_add(frac)?;
        let (mul, div): (i128, i128) = match suffix {
            "" => (1, 1),
            "n" => (1, 1_000_000_000),
            "u" => (1, 1_000_000),
            "m" => (1, 1_000),
            "k" => (1_000, 1),
            "M" => (1_000_000, 1),
            "G" => (1_000_000_000, 1),
            "T" => (1_000_000_000_000, 1),
            "P" => (1_000_000_000_000_000, 1),
            "E" => (1_000_000_000_000_000_000, 1),
            "Ki" => (1 << 10, 1),
            "Mi" => (1 << 20, 1),
            "Gi" => (1 << 30, 1),
            "Ti" => (1 << 40, 1),
            "Pi" => (1 << 50, 1),
            "Ei" => (1 << 60, 1),
            exp if exp.starts_with(['e', 'E']) => {
                let e: u32 = exp[1..].parse().ok()?;
                (10i128.checked_pow(e)?, 1)
            }
            _ => return None,
        };
        let value = nanos.checked_mul(mul)? / div;
        Some(Quantity(if negative { -value } else { value }))
    }
}

/// The keys of a resource list (`ResourceList`, a map of resource name to quantity) in the core API.
const RESOURCE_LISTS: [&str; 7] = [
    "requests",
    "limits",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "overhead",
];

/// A JSON leaf as a quantity: Kubernetes decodes a quantity from a string or a number.
fn leaf_quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
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
                        if RESOURCE_LISTS.contains(&k.as_str()) {
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
        let q = |s| Quantity::parse(s).unwrap();
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
        for s in ["", "Gi", "1Xi", "1.2.3", "abc", "1.0000000001"] {
            assert_eq!(Quantity::parse(s), None, "{s}");
        }
    }
}
