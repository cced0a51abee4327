//! Policies built with the public Kubewarden SDK (crates.io `kubewarden-policy-sdk`) and with
//! supsvc's SDK, compiled for both wasm targets, give the verdicts their own tests expect.

mod common;

use std::sync::Arc;

use common::fixtures::{UNKNOWN_UNKNOWN, WASIP1, fixture_dir, fixture_policy};
use supsvc_policy_host::{HostOptions, PolicyHost, PolicySpec};

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    fixture: String,
    settings: serde_json::Value,
    accepted: bool,
    message: Option<String>,
    code: Option<u16>,
    warnings: Option<Vec<String>>,
}

/// A host whose compiled-module cache lives for the test: each module compiles once.
fn caching_host() -> (PolicyHost, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let host = PolicyHost::new(HostOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostOptions::default()
    })
    .unwrap();
    (host, cache)
}

fn kubewarden_cases_on(target: &str) {
    let dir = fixture_dir("kubewarden-pod-names");
    let wasm = std::fs::read(fixture_policy("kubewarden-pod-names", target)).unwrap();
    let cases: Vec<Case> =
        serde_json::from_slice(&std::fs::read(dir.join("test_data/cases.json")).unwrap()).unwrap();
    let (host, _cache) = caching_host();
    for case in cases {
        let policy = host
            .load(PolicySpec {
                settings: case.settings.clone(),
                ..PolicySpec::new("pod-names", wasm.clone())
            })
            .unwrap_or_else(|e| panic!("{target}: {}: {e}", case.name));
        let request: Arc<[u8]> = Arc::from(std::fs::read(dir.join(&case.fixture)).unwrap());
        let verdict = policy
            .validate(&request)
            .unwrap_or_else(|e| panic!("{target}: {}: {e}", case.name));
        assert_eq!(verdict.accepted, case.accepted, "{target}: {}", case.name);
        assert_eq!(verdict.message, case.message, "{target}: {}", case.name);
        assert_eq!(verdict.code, case.code, "{target}: {}", case.name);
        assert_eq!(verdict.warnings, case.warnings, "{target}: {}", case.name);
    }
}

#[test]
fn kubewarden_sdk_policy_for_wasm32_unknown_unknown() {
    kubewarden_cases_on(UNKNOWN_UNKNOWN);
}

#[test]
fn kubewarden_sdk_policy_for_wasm32_wasip1() {
    kubewarden_cases_on(WASIP1);
}

#[test]
fn kubewarden_sdk_settings_validation_refuses_bad_settings() {
    let wasm = std::fs::read(fixture_policy("kubewarden-pod-names", UNKNOWN_UNKNOWN)).unwrap();
    let (host, _cache) = caching_host();
    let cases = [
        (
            serde_json::json!({"invalidNames": [""]}),
            "invalidNames must not contain an empty name",
        ),
        (
            serde_json::json!({"invalidNamez": ["a"]}),
            "unknown field `invalidNamez`",
        ),
    ];
    for (settings, expected) in cases {
        let error = host
            .load(PolicySpec {
                settings,
                ..PolicySpec::new("pod-names", wasm.clone())
            })
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("policy pod-names: settings rejected: "),
            "{error}"
        );
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn supsvc_sdk_policy_runs_in_the_host() {
    let wasm = std::fs::read(fixture_policy("sdk-required-labels", UNKNOWN_UNKNOWN)).unwrap();
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let error = host
        .load(PolicySpec::new("labels", wasm.clone()))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "policy labels: settings rejected: requiredLabels must name at least one label"
    );
    let policy = host
        .load(PolicySpec {
            settings: serde_json::json!({"requiredLabels": ["team"]}),
            ..PolicySpec::new("labels", wasm)
        })
        .unwrap();
    let request = |labels: serde_json::Value, annotations: serde_json::Value| -> Arc<[u8]> {
        let request = serde_json::json!({
            "uid": "1", "operation": "CREATE", "name": "web", "namespace": "default",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "object": {"metadata": {"name": "web", "labels": labels, "annotations": annotations}}
        });
        Arc::from(serde_json::to_vec(&request).unwrap())
    };
    let verdict = policy
        .validate(&request(serde_json::json!({}), serde_json::json!({})))
        .unwrap();
    assert!(!verdict.accepted);
    assert_eq!(
        verdict.message.as_deref(),
        Some("Pod web is missing required labels: team")
    );
    assert_eq!(verdict.code, Some(403));
    assert!(
        policy
            .validate(&request(
                serde_json::json!({"team": "x"}),
                serde_json::json!({})
            ))
            .unwrap()
            .accepted
    );
    let glass = policy
        .validate(&request(
            serde_json::json!({}),
            serde_json::json!({"supsvc.io/break-glass": "incident 42"}),
        ))
        .unwrap();
    assert!(glass.accepted);
    assert_eq!(
        glass.audit_annotations.unwrap()["break-glass"],
        "incident 42"
    );
    assert_eq!(glass.warnings.unwrap().len(), 1);
}
