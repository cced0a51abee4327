//! The waPC policy protocol's JSON documents, as Kubewarden defines them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Operation names a Kubewarden policy registers.
pub mod operation {
    pub const VALIDATE: &str = "validate";
    pub const VALIDATE_SETTINGS: &str = "validate_settings";
    pub const PROTOCOL_VERSION: &str = "protocol_version";
}

/// What a policy answers to `validate`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValidationResponse {
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Set by mutating policies. This webhook only validates: it is reported, never applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutated_object: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// What a policy answers to `validate_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsValidationResponse {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One log event a policy sends through `kubewarden/tracing/log`.
#[derive(Debug, Deserialize)]
pub(crate) struct GuestLogEvent {
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub message: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubewarden_sdk_rejection() {
        let raw = br#"{"accepted":false,"message":"no","code":403,"audit_annotations":{"a":"b"},"warnings":["w"]}"#;
        let parsed: ValidationResponse = serde_json::from_slice(raw).unwrap();
        assert!(!parsed.accepted);
        assert_eq!(parsed.code, Some(403));
        assert_eq!(parsed.warnings.as_deref(), Some(&["w".to_string()][..]));
    }

    #[test]
    fn parses_minimal_acceptance_with_nulls() {
        let raw = br#"{"accepted":true,"message":null,"code":null,"mutated_object":null}"#;
        let parsed: ValidationResponse = serde_json::from_slice(raw).unwrap();
        assert_eq!(
            parsed,
            ValidationResponse {
                accepted: true,
                ..Default::default()
            }
        );
    }
}
