//! Routing a waPC operation to the policy: pure code, the same natively and in WASM.

use serde::de::DeserializeOwned;

use crate::request::ValidationRequest;
use crate::verdict::{SettingsVerdict, Verdict};

/// waPC operation names, as Kubewarden defines them.
pub mod operation {
    pub const VALIDATE: &str = "validate";
    pub const VALIDATE_SETTINGS: &str = "validate_settings";
    pub const PROTOCOL_VERSION: &str = "protocol_version";
}

/// An admission policy.
pub trait Policy {
    /// The policy's settings, from the webhook configuration. `Default` is used when the
    /// configuration gives none; use `#[serde(deny_unknown_fields)]` to refuse typos.
    type Settings: DeserializeOwned + Default;

    /// Decides on one request.
    fn validate(request: &ValidationRequest<Self::Settings>) -> Verdict;

    /// Checks settings once, when the webhook loads the policy; an error refuses the policy.
    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }
}

/// Answers one waPC operation for `P`: what `__guest_call` does, callable natively in tests.
/// `Err` is a guest error (the host reports the policy as failed), not a rejection.
pub fn dispatch<P: Policy>(operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    match operation {
        operation::VALIDATE => {
            let request: ValidationRequest<P::Settings> = serde_json::from_slice(payload)
                .map_err(|e| format!("cannot decode the validation request: {e}"))?;
            to_json(&P::validate(&request))
        }
        operation::VALIDATE_SETTINGS => {
            let verdict = match parse_settings::<P::Settings>(payload) {
                Ok(settings) => match P::validate_settings(&settings) {
                    Ok(()) => SettingsVerdict::valid(),
                    Err(message) => SettingsVerdict::invalid(message),
                },
                Err(message) => SettingsVerdict::invalid(message),
            };
            to_json(&verdict)
        }
        operation::PROTOCOL_VERSION => Ok(br#""v1""#.to_vec()),
        other => Err(format!("unknown operation {other:?}")),
    }
}

/// Settings from the payload; `null` or nothing means the defaults.
fn parse_settings<S: DeserializeOwned + Default>(payload: &[u8]) -> Result<S, String> {
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(S::default());
    }
    serde_json::from_slice(trimmed).map_err(|e| format!("invalid settings: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot encode the response: {e}"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::{accept, reject};

    #[derive(Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Settings {
        denied: Vec<String>,
    }

    struct DenyNames;

    impl Policy for DenyNames {
        type Settings = Settings;
        fn validate(request: &ValidationRequest<Settings>) -> Verdict {
            if request.settings.denied.contains(&request.request.name) {
                reject(format!("{} is denied", request.request.name), 403)
            } else {
                accept().with_warning("checked")
            }
        }
        fn validate_settings(settings: &Settings) -> Result<(), String> {
            if settings.denied.iter().any(String::is_empty) {
                Err("empty name in denied".into())
            } else {
                Ok(())
            }
        }
    }

    fn call(operation: &str, payload: &str) -> serde_json::Value {
        serde_json::from_slice(&dispatch::<DenyNames>(operation, payload.as_bytes()).unwrap())
            .unwrap()
    }

    #[test]
    fn validate_decodes_request_and_settings() {
        let payload = r#"{"request":{"uid":"1","name":"bad","operation":"CREATE"},"settings":{"denied":["bad"]}}"#;
        assert_eq!(
            call("validate", payload),
            serde_json::json!({"accepted": false, "message": "bad is denied", "code": 403})
        );
        let payload = r#"{"request":{"uid":"1","name":"good","operation":"CREATE"},"settings":{}}"#;
        assert_eq!(
            call("validate", payload),
            serde_json::json!({"accepted": true, "warnings": ["checked"]})
        );
    }

    #[test]
    fn settings_validation_table() {
        let cases = [
            ("{}", serde_json::json!({"valid": true})),
            ("null", serde_json::json!({"valid": true})),
            (r#"{"denied":["a"]}"#, serde_json::json!({"valid": true})),
            (
                r#"{"denied":[""]}"#,
                serde_json::json!({"valid": false, "message": "empty name in denied"}),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(call("validate_settings", payload), expected, "{payload}");
        }
        let unknown = call("validate_settings", r#"{"deny":["a"]}"#);
        assert_eq!(unknown["valid"], false);
        assert!(
            unknown["message"]
                .as_str()
                .unwrap()
                .contains("unknown field `deny`"),
            "{unknown}"
        );
    }

    #[test]
    fn protocol_version_and_unknown_operations() {
        assert_eq!(call("protocol_version", ""), serde_json::json!("v1"));
        assert!(
            dispatch::<DenyNames>("mutate", b"{}")
                .unwrap_err()
                .contains("unknown operation")
        );
        assert!(
            dispatch::<DenyNames>("validate", b"garbage")
                .unwrap_err()
                .contains("cannot decode")
        );
    }
}
