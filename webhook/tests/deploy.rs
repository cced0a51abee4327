//! The deployment manifests say what the issue asks of them, and the shipped ConfigMap is a
//! configuration the webhook accepts.

use std::path::Path;

use serde_json::Value;
use supsvc_webhook::config::Config;

fn manifests() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut documents = Vec::new();
    for file in [
        "namespace.yaml",
        "configmap.yaml",
        "deployment.yaml",
        "validatingwebhookconfiguration.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let parsed: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        documents.extend(parsed);
    }
    documents
}

fn find<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|doc| doc["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn deployment_is_replicated_probed_limited_and_locked_down() {
    let documents = manifests();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ValidatingWebhookConfiguration",
    ] {
        find(&documents, kind);
    }
    let deployment = find(&documents, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert!(container["resources"]["limits"]["cpu"].is_string());
    assert_eq!(
        find(&documents, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );
}

#[test]
fn webhooks_exempt_their_own_namespace_and_kube_system() {
    let documents = manifests();
    let configuration = find(&documents, "ValidatingWebhookConfiguration");
    let webhooks = configuration["webhooks"].as_array().unwrap();
    assert!(!webhooks.is_empty());
    for webhook in webhooks {
        assert_eq!(webhook["failurePolicy"], "Fail");
        assert!(webhook["timeoutSeconds"].as_u64().unwrap() <= 10);
        assert_eq!(webhook["sideEffects"], "None");
        let expression = &webhook["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(expression["operator"], "NotIn");
        let exempt = expression["values"].as_array().unwrap();
        assert!(
            exempt.contains(&"supsvc-webhook".into()) && exempt.contains(&"kube-system".into())
        );
    }
}

#[test]
fn the_shipped_configmap_is_a_valid_configuration() {
    let documents = manifests();
    let config_map = find(&documents, "ConfigMap");
    let config = Config::parse(config_map["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config.policies.len(), 2);
    let deployment = find(&documents, "Deployment");
    let port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        .as_u64()
        .unwrap();
    assert!(config.listen.ends_with(&format!(":{port}")));
}
