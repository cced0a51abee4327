//! The shared admission fixtures, natively: the policy's code path through the SDK's dispatch.

use supsvc_guard_adapter::cases;
use supsvc_policy_sdk::dispatch;
use supsvc_storage_guard::StorageGuard;

#[test]
fn every_fixture_case_gets_its_expected_verdict() {
    for (case, request) in cases::load("storage-guard") {
        let settings = if case.settings.is_null() {
            serde_json::json!({})
        } else {
            case.settings.clone()
        };
        let payload = serde_json::json!({"request": request, "settings": settings});
        let output = dispatch::<StorageGuard>("validate", payload.to_string().as_bytes()).unwrap();
        let verdict: serde_json::Value = serde_json::from_slice(&output).unwrap();
        let warnings: Vec<String> =
            serde_json::from_value(verdict["warnings"].clone()).unwrap_or_default();
        let accepted = verdict["accepted"].as_bool().expect("accepted is a bool");
        cases::check(&case, accepted, verdict["message"].as_str(), &warnings).unwrap();
    }
}

#[test]
fn bad_settings_are_refused_by_validate_settings() {
    for settings in [
        r#"{"deployerz": []}"#,
        r#"{"allowedUsers": ["a*b"]}"#,
        r#"{"breakGlassGroups": ["sre*"]}"#,
    ] {
        let output = dispatch::<StorageGuard>("validate_settings", settings.as_bytes()).unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&output).unwrap();
        assert_eq!(answer["valid"], false, "{settings}: {answer}");
        assert!(!answer["message"].as_str().unwrap_or_default().is_empty());
    }
    let output = dispatch::<StorageGuard>("validate_settings", b"{}").unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&output).unwrap()["valid"],
        true
    );
}
