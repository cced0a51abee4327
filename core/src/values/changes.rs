//! What changed between two values documents, leaf by leaf.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::*;

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
