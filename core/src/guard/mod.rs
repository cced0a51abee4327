//! The decisions of the two shipped admission policies, as plain functions: the kapp-managed storage
//! guard and the public-registry guard. The policy crates in `policies/` only translate the waPC
//! request into a [`Request`] and a [`Decision`] back into a verdict, so the same cases are tested
//! natively here and through the real host on the built `.wasm`.

pub mod registry;
pub mod storage;

use serde_json::Value;

pub use crate::admission::Operation;

/// The parts of an AdmissionRequest the guards read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: Operation,
    /// API group of the object's kind (`""` for core, `apps`, ...).
    pub group: &'a str,
    /// The kind the API server resolved for the request (`kind.kind`), never the object's own.
    pub kind: &'a str,
    /// `status`, `scale`, `ephemeralcontainers`, ... or empty.
    pub sub_resource: &'a str,
    /// The request's namespace (empty for a cluster-scoped object).
    pub namespace: &'a str,
    /// The object's name (empty on a CREATE with `generateName`).
    pub name: &'a str,
    /// `userInfo.username` of whoever sent the request.
    pub username: &'a str,
    /// `userInfo.groups` of whoever sent the request.
    pub groups: &'a [String],
    /// The object after the operation (`null` for DELETE).
    pub object: &'a Value,
    /// The object before the operation (UPDATE and DELETE).
    pub old_object: &'a Value,
}

/// What a guard decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted, nothing to say.
    Allow,
    /// Allowed, with warnings for the client and annotations for the audit log.
    AllowWithWarnings {
        /// Shown by kubectl as `Warning: ...` (AdmissionResponse `warnings`).
        warnings: Vec<String>,
        /// `(key, value)` pairs for the audit log (AdmissionResponse `auditAnnotations`).
        audit_annotations: Vec<(String, String)>,
    },
    /// Refused with a message for the user (AdmissionResponse `status.message`).
    Deny {
        /// What was refused, why, and what to do instead.
        message: String,
    },
}

impl Decision {
    /// Whether the request is refused.
    pub fn is_denied(&self) -> bool {
        matches!(self, Decision::Deny { .. })
    }
}

/// `decide` on `request`, checked to decide the same on its objects decoded with only `fields`,
/// as the policy's SDK decodes them: the guards' `OBJECT_FIELDS` must leave out nothing they read.
#[cfg(test)]
pub(crate) fn decide_checking_projection(
    request: &Request<'_>,
    fields: &[&str],
    decide: impl Fn(&Request<'_>) -> Decision,
) -> Decision {
    let decision = decide(request);
    let projection = supsvc_policy_sdk::Projection::new(fields);
    let project = |v: &Value| projection.decode(&v.to_string()).expect("JSON");
    let (object, old_object) = (project(request.object), project(request.old_object));
    let projected = Request {
        object: &object,
        old_object: &old_object,
        ..*request
    };
    assert_eq!(decide(&projected), decision, "projected objects");
    decision
}

/// A user name pattern: exact, or a prefix ending in `*` (`system:serviceaccount:ns:*`).
pub(crate) fn user_matches(pattern: &str, user: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => user.starts_with(prefix),
        None => pattern == user,
    }
}

/// A guard setting that cannot work, as the policy refuses it when it loads: which field, which
/// entry, and why. The texts are the policies' answers to `validate_settings`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A user or group pattern that is empty, padded, or has `*` anywhere but at the end.
    #[error(
        "{field}: invalid pattern {pattern:?}: write a name, or a prefix ending in '*' (e.g. \"system:serviceaccount:my-namespace:*\")"
    )]
    UserPattern {
        /// The settings field (`allowedUsers`, `deployers`).
        field: &'static str,
        /// The entry as written.
        pattern: String,
    },
    /// A registry or host pattern [`crate::image::RegistryPattern::parse`] refuses.
    #[error("{field}: invalid {noun} pattern {pattern:?}: {reason}")]
    RegistryPattern {
        /// The settings field (`allowedRegistries`, `deniedHosts`, ...).
        field: &'static str,
        /// `registry` or `host`.
        noun: &'static str,
        /// The entry as written.
        pattern: String,
        /// Why it was refused.
        reason: String,
    },
    /// A group that is empty or has a `*`: groups are matched exactly.
    #[error("{field}: invalid group {group:?}: groups are matched exactly")]
    Group {
        /// The settings field (`allowedGroups`, `breakGlassGroups`).
        field: &'static str,
        /// The entry as written.
        group: String,
    },
    /// Both an allow-list and a deny-list of the same kind.
    #[error("set {allow} (an allow-list) or {deny} (a deny-list), not both")]
    BothLists {
        /// The allow-list's field.
        allow: &'static str,
        /// The deny-list's field.
        deny: &'static str,
    },
    /// An empty allow-list, which would refuse everything.
    #[error("{field} is empty: everything would be refused")]
    EmptyAllowList {
        /// The allow-list's field.
        field: &'static str,
    },
    /// Entries that parse but can never match (a misspelt name of Docker Hub, a namespace that
    /// cannot exist), each as `field: "entry" can never match: reason`.
    #[error("{}", .0.join("; "))]
    NeverMatch(Vec<String>),
}

/// Checks user/group patterns from settings: non-empty, `*` only at the end.
pub(crate) fn validate_patterns(
    field: &'static str,
    patterns: &[String],
) -> Result<(), SettingsError> {
    for pattern in patterns {
        let body = pattern.strip_suffix('*').unwrap_or(pattern);
        if pattern.trim().is_empty() || body.contains('*') || pattern != pattern.trim() {
            return Err(SettingsError::UserPattern {
                field,
                pattern: pattern.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_patterns_are_exact_or_prefixes() {
        let cases = [
            ("alice", "alice", true),
            ("alice", "alice2", false),
            (
                "system:serviceaccount:ns:*",
                "system:serviceaccount:ns:sa",
                true,
            ),
            (
                "system:serviceaccount:ns:*",
                "system:serviceaccount:ns2:sa",
                false,
            ),
            ("*", "anyone", true),
        ];
        for (pattern, user, expected) in cases {
            assert_eq!(user_matches(pattern, user), expected, "{pattern} vs {user}");
        }
    }

    #[test]
    fn patterns_with_inner_wildcards_or_blanks_are_refused() {
        assert!(validate_patterns("allowedUsers", &["a*b".into()]).is_err());
        assert!(validate_patterns("allowedUsers", &["".into()]).is_err());
        assert!(validate_patterns("allowedUsers", &[" a".into()]).is_err());
        assert!(validate_patterns("allowedUsers", &["a".into(), "b:*".into()]).is_ok());
    }
}
