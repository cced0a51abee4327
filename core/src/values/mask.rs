//! Which keys are secrets, and values masked in a diff.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

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
