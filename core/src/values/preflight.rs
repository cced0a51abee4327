//! The pre-flight: which live kapp-managed field a changed value drives, and whether the API
//! server will accept the change kapp is about to make (see the parent module's mapping rule).

use serde::Serialize;
use serde_json::Value;

use crate::quantity::Quantity;

use super::*;

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

/// Whether a dotted field path (`spec.volumeClaimTemplates[0].spec.resources.requests.storage`) is a
/// quantity field of the Kubernetes API, which the API server compares by value.
pub fn is_quantity_field(field: &str) -> bool {
    let mut segments = field.rsplit('.');
    let last = segments.next().unwrap_or_default();
    let parent = segments.next().unwrap_or_default();
    last == "sizeLimit" || crate::quantity::RESOURCE_LISTS.contains(&parent)
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
