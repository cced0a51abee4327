//! Routing a waPC operation to the policy: pure code, the same natively and in WASM.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::decode::ObjectReading;
use crate::projection::Static;
use crate::request::{Operation, ValidationRequest};
use crate::verdict::{SettingsVerdict, Verdict};

/// waPC operation names, as Kubewarden defines them.
pub mod operation {
    /// Validate an AdmissionRequest ([`crate::Policy::validate`]).
    pub const VALIDATE: &str = "validate";
    /// Validate the policy's settings ([`crate::Policy::validate_settings`]).
    pub const VALIDATE_SETTINGS: &str = "validate_settings";
    /// The version of the Kubewarden policy protocol the policy speaks (`"v1"`).
    pub const PROTOCOL_VERSION: &str = "protocol_version";
}

/// An admission policy.
pub trait Policy {
    /// The policy's settings, from the webhook configuration. `Default` is used when the
    /// configuration gives none; use `#[serde(deny_unknown_fields)]` to refuse typos.
    type Settings: DeserializeOwned + Default;

    /// The fields of `object` and `oldObject` the policy reads, as dotted paths through maps
    /// (lists on the way are traversed): `["kind", "spec.containers.image"]`. Only these are
    /// decoded; the rest is skipped while parsing, which is most of a policy's time on a large
    /// object. `None`, the default: the whole objects.
    const OBJECT_FIELDS: Option<&'static [&'static str]> = None;

    /// Whether [`Self::validate`] reads `object` and `oldObject` of a request with this operation
    /// and subresource (`""` for the resource itself). When it says `false`, both are skipped
    /// while parsing (still checked to be JSON, never decoded, the projection never built) and
    /// `validate` sees them as `null`: a guard that allows a DELETE at once pays nothing for the
    /// object it never reads. Asked with the request's final operation and subresource, whatever
    /// the order of the fields in the payload. Default: `true` (always decoded).
    fn reads_objects(_operation: Operation, _sub_resource: &str) -> bool {
        true
    }

    /// Decides on one request.
    fn validate(request: &ValidationRequest<Self::Settings>) -> Verdict;

    /// Checks settings once, when the webhook loads the policy; an error refuses the policy.
    ///
    /// # Errors
    /// Why the settings are invalid, in words (answered as an invalid [`SettingsVerdict`]).
    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }
}

/// Answers one waPC operation for `P`: what `__guest_call` does, callable natively in tests.
/// `Err` is a guest error (the host reports the policy as failed), not a rejection.
///
/// # Errors
/// An unknown operation, a `validate` payload that cannot be decoded, or an answer that cannot be
/// serialised. Invalid settings are not an error: they are an invalid [`SettingsVerdict`].
pub fn dispatch<P: Policy>(operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    match operation {
        operation::VALIDATE => {
            let request = decode_validation_request::<P>(payload)
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

/// Decodes the `validate` payload, the objects only as far as `P::OBJECT_FIELDS` asks, and only
/// when `P::reads_objects` says they are read.
fn decode_validation_request<P: Policy>(
    payload: &[u8],
) -> Result<ValidationRequest<P::Settings>, serde_json::Error> {
    let fields: &'static Option<Static> = &Compiled::<P>::FIELDS;
    let reading = ObjectReading {
        projection: fields.as_ref().map(Static::projection),
        reads: P::reads_objects,
    };
    crate::decode::validation_request(payload, &reading)
}

/// What is known of `P` at compile time.
struct Compiled<P>(PhantomData<P>);

impl<P: Policy> Compiled<P> {
    /// The projection of `P::OBJECT_FIELDS`, built by the compiler: a guest instance lives for
    /// one evaluation, so one built at run time would be built again for every request.
    const FIELDS: Option<Static> = match P::OBJECT_FIELDS {
        Some(fields) => Some(Static::new(fields)),
        None => None,
    };
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

    /// Reads only the image of the first container: decodes only that.
    struct FirstImage;

    impl Policy for FirstImage {
        type Settings = ();
        const OBJECT_FIELDS: Option<&'static [&'static str]> = Some(&["spec.containers.image"]);
        fn validate(request: &ValidationRequest<()>) -> Verdict {
            // Everything the policy was given, to check what was decoded.
            reject(
                format!("{}|{}", request.request.object, request.request.old_object),
                400,
            )
        }
    }

    #[test]
    fn object_fields_limit_what_is_decoded_and_the_rest_must_still_be_json() {
        let payload = r#"{"request":{"uid":"1","operation":"UPDATE","name":"p",
            "object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"nginx","env":[]}]}},
            "oldObject":null}}"#;
        let verdict: serde_json::Value = serde_json::from_slice(
            &dispatch::<FirstImage>("validate", payload.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verdict["message"],
            r#"{"spec":{"containers":[{"image":"nginx"}]}}|null"#
        );
        let broken = payload.replace(r#""env":[]"#, r#""env":[,]"#);
        assert!(
            dispatch::<FirstImage>("validate", broken.as_bytes())
                .unwrap_err()
                .contains("cannot decode the validation request")
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
