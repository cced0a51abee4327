//! What a policy answers: accept, reject, with warnings and audit annotations.

use std::collections::BTreeMap;

use serde::Serialize;

/// A policy's answer to `validate`, serialised as Kubewarden's ValidationResponse.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Verdict {
    /// Whether the request is let through.
    pub accepted: bool,
    /// Why it is rejected (shown by kubectl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status code of a rejection (e.g. 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Warnings for the user (kubectl prints them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Annotations recorded in the API server's audit log.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

/// Let the request through.
pub fn accept() -> Verdict {
    Verdict {
        accepted: true,
        ..Verdict::default()
    }
}

/// Let the request through, and tell the user (kubectl prints warnings).
pub fn accept_with_warnings<W: Into<String>>(warnings: impl IntoIterator<Item = W>) -> Verdict {
    Verdict {
        accepted: true,
        warnings: warnings.into_iter().map(Into::into).collect(),
        ..Verdict::default()
    }
}

/// Deny the request with `message` (shown by kubectl) and an HTTP status `code` (e.g. 403).
pub fn reject(message: impl Into<String>, code: u16) -> Verdict {
    Verdict {
        accepted: false,
        message: Some(message.into()),
        code: Some(code),
        ..Verdict::default()
    }
}

impl Verdict {
    /// The same verdict with one more warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Recorded in the API server's audit log (keys are prefixed with the webhook's name).
    pub fn with_audit_annotation(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.audit_annotations.insert(key.into(), value.into());
        self
    }
}

/// The answer to `validate_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsVerdict {
    /// Whether the settings are valid.
    pub valid: bool,
    /// Why they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SettingsVerdict {
    /// The settings are valid.
    pub fn valid() -> Self {
        Self {
            valid: true,
            message: None,
        }
    }

    /// The settings are invalid, for `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            valid: false,
            message: Some(message.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialise_as_kubewarden_responses() {
        let cases = [
            (accept(), serde_json::json!({"accepted": true})),
            (
                reject("no", 403).with_audit_annotation("guard/reason", "x"),
                serde_json::json!({"accepted": false, "message": "no", "code": 403, "audit_annotations": {"guard/reason": "x"}}),
            ),
            (
                accept_with_warnings(["a", "b"]),
                serde_json::json!({"accepted": true, "warnings": ["a", "b"]}),
            ),
        ];
        for (verdict, expected) in cases {
            assert_eq!(serde_json::to_value(&verdict).unwrap(), expected);
        }
    }
}
