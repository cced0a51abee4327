//! The non-Rust example policy (`policies/examples/wat/no-delete.wat`) builds and decides.

mod common;

use std::sync::Arc;

use common::fixtures::workspace_root;
use common::setup::{admission_fixture, send};
use supsvc_policy_host::{HostOptions, PolicyHost, PolicySpec};
use supsvc_webhook::config::Config;
use supsvc_webhook::policy_set::PolicySet;
use supsvc_webhook::server::AppState;

fn no_delete() -> Vec<u8> {
    wat::parse_file(workspace_root().join("policies/examples/wat/no-delete.wat")).unwrap()
}

fn request(fixture: &str) -> Arc<[u8]> {
    let review: serde_json::Value = serde_json::from_slice(&admission_fixture(fixture)).unwrap();
    // Compact, as the API server sends it.
    Arc::from(serde_json::to_vec(&review["request"]).unwrap())
}

#[test]
fn wat_example_rejects_deletes_only() {
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let policy = host
        .load(PolicySpec::new("no-delete", no_delete()))
        .unwrap();
    let deleted = policy
        .validate(&request("webhook/pod-delete.json"))
        .unwrap();
    assert!(!deleted.accepted);
    assert_eq!(
        deleted.message.as_deref(),
        Some("deleting is not allowed here")
    );
    assert_eq!(deleted.code, Some(403));
    assert!(
        policy
            .validate(&request("webhook/pod-create.json"))
            .unwrap()
            .accepted
    );
    let version = policy
        .call(
            "protocol_version",
            supsvc_policy_host::GuestPayload::Raw(Arc::from(&b""[..])),
        )
        .unwrap();
    assert_eq!(version, br#""v1""#);
}

#[tokio::test]
async fn wat_example_through_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("no-delete.wasm"), no_delete()).unwrap();
    let config = Config::parse("policies: [{name: no-delete, module: no-delete.wasm}]").unwrap();
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let state = Arc::new(AppState::with_policies(
        PolicySet::load(&host, &config, dir.path(), None).unwrap(),
    ));
    // The fixture file is pretty-printed; send it compact, as the API server does.
    let compact = |fixture: &str| {
        let value: serde_json::Value = serde_json::from_slice(&admission_fixture(fixture)).unwrap();
        serde_json::to_vec(&value).unwrap()
    };
    let denied = send(
        &state,
        "POST",
        "/validate",
        compact("webhook/pod-delete.json"),
    )
    .await
    .json();
    assert_eq!(denied["response"]["allowed"], false);
    assert_eq!(
        denied["response"]["status"]["message"],
        "policy no-delete: deleting is not allowed here"
    );
    let allowed = send(
        &state,
        "POST",
        "/validate",
        compact("webhook/pod-create.json"),
    )
    .await
    .json();
    assert_eq!(allowed["response"]["allowed"], true);
}
