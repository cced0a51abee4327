//! `metadata.managedFields` as kube-apiserver records them, seen through the real kubectl.

mod api_support;

use api_support::*;
use serde_json::Value;

const CM: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    team: a
data:
  mode: fast
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kubectl_command_is_recorded_as_its_own_manager() {
    let sim = Sim::start().await;
    let path = sim.dir.path().join("cm.yaml");
    std::fs::write(&path, CM).unwrap();
    ok(&sim.kubectl(&["apply", "-f", path.to_str().unwrap()]).await);
    ok(&sim
        .kubectl(&[
            "patch",
            "cm",
            "settings",
            "-p",
            r#"{"data":{"mode":"slow"}}"#,
        ])
        .await);
    ok(&sim.kubectl(&["label", "cm", "settings", "tier=gold"]).await);

    // The server always returns them; kubectl strips them from -o yaml unless asked.
    let raw = sim
        .admin()
        .get(
            supsvc_sim::api::gvr::CONFIG_MAPS,
            Some("default"),
            "settings",
        )
        .await
        .unwrap();
    let entries = raw["metadata"]["managedFields"].as_array().unwrap().clone();
    let by = |m: &str| -> Value {
        entries
            .iter()
            .find(|e| e["manager"] == m)
            .cloned()
            .unwrap_or_else(|| panic!("{m} in {entries:?}"))
    };
    let apply = by("kubectl-client-side-apply");
    assert_eq!(apply["operation"], "Update");
    assert_eq!(apply["apiVersion"], "v1");
    assert_eq!(apply["fieldsType"], "FieldsV1");
    // The patch took data.mode from the creator.
    assert!(apply["fieldsV1"]["f:data"].is_null(), "{apply}");
    assert!(
        apply["fieldsV1"]["f:metadata"]["f:annotations"]
            ["f:kubectl.kubernetes.io/last-applied-configuration"]
            .is_object(),
        "{apply}"
    );
    let patch = by("kubectl-patch");
    assert_eq!(
        patch["fieldsV1"],
        serde_json::json!({"f:data": {"f:mode": {}}})
    );
    assert!(patch["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let label = by("kubectl-label");
    assert_eq!(
        label["fieldsV1"],
        serde_json::json!({"f:metadata": {"f:labels": {"f:tier": {}}}})
    );

    let yaml = ok(&sim.kubectl(&["get", "cm", "settings", "-o", "yaml"]).await);
    assert!(!yaml.contains("managedFields"), "{yaml}");
    let shown = ok(&sim
        .kubectl(&[
            "get",
            "cm",
            "settings",
            "-o",
            "yaml",
            "--show-managed-fields",
        ])
        .await);
    assert!(shown.contains("manager: kubectl-patch"), "{shown}");
}
