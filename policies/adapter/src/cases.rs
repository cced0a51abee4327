//! The admission fixtures every shipped policy is tested on: AdmissionReview files under
//! `tests/fixtures/admission/` and `cases.yaml`, what each policy must answer to each. The same cases
//! run natively (through the SDK's dispatch) and through the real host on the built `.wasm`.

use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use supsvc_policy_sdk::{Policy, ValidationRequest, Verdict};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    /// `storage-guard` or `registry-guard`.
    pub policy: String,
    /// An AdmissionReview file, relative to the fixtures directory.
    pub request: String,
    #[serde(default)]
    pub settings: Value,
    pub accepted: bool,
    #[serde(default)]
    pub message_contains: Option<String>,
    #[serde(default)]
    pub warning_contains: Option<String>,
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/admission"
    ))
}

/// The cases of one policy, each with its AdmissionRequest (the `request` of the review) as JSON.
pub fn load(policy: &str) -> Vec<(Case, Value)> {
    let dir = fixtures_dir();
    let text = std::fs::read_to_string(dir.join("cases.yaml"))
        .expect("tests/fixtures/admission/cases.yaml");
    let cases: Vec<Case> = serde_saphyr::from_str(&text).expect("cases.yaml parses");
    let cases: Vec<(Case, Value)> = cases
        .into_iter()
        .filter(|c| c.policy == policy)
        .map(|case| {
            let path = dir.join(&case.request);
            let review: Value = serde_json::from_slice(
                &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(review["kind"], "AdmissionReview", "{}", case.request);
            (case, review["request"].clone())
        })
        .collect();
    assert!(!cases.is_empty(), "no cases for {policy}");
    cases
}

/// Whether a verdict is what the case expects; the error says how it is not.
pub fn check(
    case: &Case,
    accepted: bool,
    message: Option<&str>,
    warnings: &[String],
) -> Result<(), String> {
    let label = format!("{} on {}", case.policy, case.request);
    if accepted != case.accepted {
        return Err(format!(
            "{label}: expected accepted={}, got accepted={accepted} ({message:?})",
            case.accepted
        ));
    }
    if let Some(expected) = &case.message_contains
        && !message.unwrap_or_default().contains(expected.as_str())
    {
        return Err(format!(
            "{label}: message {message:?} does not contain {expected:?}"
        ));
    }
    if let Some(expected) = &case.warning_contains
        && !warnings.iter().any(|w| w.contains(expected.as_str()))
    {
        return Err(format!(
            "{label}: warnings {warnings:?} do not contain {expected:?}"
        ));
    }
    Ok(())
}

/// The settings a case runs with: the case's own, or none (`{}`).
pub fn settings_of(case: &Case) -> Value {
    if case.settings.is_null() {
        serde_json::json!({})
    } else {
        case.settings.clone()
    }
}

/// `P` decoding the whole objects, whatever its `OBJECT_FIELDS`.
struct WholeObjects<P>(PhantomData<P>);

impl<P: Policy> Policy for WholeObjects<P> {
    type Settings = P::Settings;
    const OBJECT_FIELDS: Option<&'static [&'static str]> = None;

    fn validate(request: &ValidationRequest<P::Settings>) -> Verdict {
        P::validate(request)
    }

    fn validate_settings(settings: &P::Settings) -> Result<(), String> {
        P::validate_settings(settings)
    }
}

/// Runs every case of `policy` natively, through the SDK's dispatch of `P`: the same code path the
/// `.wasm` runs, without the host. Each verdict is also checked to be the one `P` gives when it
/// decodes the whole objects: its `OBJECT_FIELDS` leave out nothing it reads.
pub fn run_natively<P: Policy>(policy: &str) {
    for (case, request) in load(policy) {
        let payload = serde_json::json!({"request": request, "settings": settings_of(&case)});
        let payload = payload.to_string();
        let output = supsvc_policy_sdk::dispatch::<P>("validate", payload.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", case.request));
        let whole = supsvc_policy_sdk::dispatch::<WholeObjects<P>>("validate", payload.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", case.request));
        assert_eq!(
            String::from_utf8_lossy(&output),
            String::from_utf8_lossy(&whole),
            "{}: the verdict on the objects decoded as far as OBJECT_FIELDS differs from the verdict on the whole objects",
            case.request
        );
        let verdict: Value = serde_json::from_slice(&output).expect("the verdict is JSON");
        let warnings: Vec<String> =
            serde_json::from_value(verdict["warnings"].clone()).unwrap_or_default();
        let accepted = verdict["accepted"].as_bool().expect("accepted is a bool");
        if let Err(e) = check(&case, accepted, verdict["message"].as_str(), &warnings) {
            panic!("{e}");
        }
    }
}

/// Asserts that `P`'s `validate_settings` refuses each of `bad` with a message, and accepts `{}`.
pub fn assert_settings_refused<P: Policy>(bad: &[&str]) {
    let answer = |settings: &str| -> Value {
        let output = supsvc_policy_sdk::dispatch::<P>("validate_settings", settings.as_bytes())
            .expect("validate_settings answers");
        serde_json::from_slice(&output).expect("the answer is JSON")
    };
    for settings in bad {
        let refused = answer(settings);
        assert_eq!(refused["valid"], false, "{settings}: {refused}");
        assert!(
            !refused["message"].as_str().unwrap_or_default().is_empty(),
            "{settings}: no message"
        );
    }
    assert_eq!(answer("{}")["valid"], true, "the defaults are valid");
}
