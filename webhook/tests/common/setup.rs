//! A configuration directory with WAT policies, and requests for the router.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use supsvc_policy_host::{HostOptions, PolicyHost};
use supsvc_webhook::config::Config;
use supsvc_webhook::policy_set::PolicySet;
use supsvc_webhook::server::AppState;
use supsvc_webhook::server::router::route;

use super::fixtures::workspace_root;
use super::wat_policies::{Behaviour, wasm};

/// One policy of a test configuration: a WAT behaviour and extra YAML fields.
pub struct TestPolicy<'a> {
    pub name: &'a str,
    pub behaviour: Behaviour,
    /// YAML lines for the policy entry, e.g. `mode: monitor`.
    pub extra: &'a [&'a str],
}

pub const fn policy<'a>(
    name: &'a str,
    behaviour: Behaviour,
    extra: &'a [&'a str],
) -> TestPolicy<'a> {
    TestPolicy {
        name,
        behaviour,
        extra,
    }
}

/// Writes `<name>.wasm` files and `config.yaml` into `dir`; returns the config path.
pub fn write_config(dir: &Path, policies: &[TestPolicy<'_>], header: &str) -> PathBuf {
    let mut yaml = format!("{header}\npolicies:\n");
    for policy in policies {
        std::fs::write(
            dir.join(format!("{}.wasm", policy.name)),
            wasm(policy.behaviour),
        )
        .unwrap();
        yaml.push_str(&format!(
            "  - name: {name}\n    module: {name}.wasm\n    timeout: 50\n    memoryLimit: 16Mi\n",
            name = policy.name
        ));
        for line in policy.extra {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// An application state serving `policies`, as the router sees it.
pub fn state_with(policies: &[TestPolicy<'_>]) -> Arc<AppState> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), policies, "");
    let config = Config::load(&path).unwrap();
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let set = PolicySet::load(&host, &config, dir.path(), None).unwrap();
    Arc::new(AppState::with_policies(set))
}

pub fn admission_fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures/admission").join(name)).unwrap()
}

pub struct Answer {
    pub status: http::StatusCode,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(
    state: &Arc<AppState>,
    method: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap();
    let response = route(Arc::clone(state), request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, body }
}
