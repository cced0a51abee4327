//! Discovery and metadata-only answers as third-party clients ask for them: aggregated discovery
//! (`apidiscovery.k8s.io/v2`, what kubectl 1.30+ and client-go request first) and `PartialObjectMetadata`
//! (kube-rs's `get_metadata`/`list_metadata`).

mod api_support;

use api_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

async fn discovery(client: &kube::Client, path: &str, accept: &str) -> (String, Value) {
    let req = http::Request::get(path)
        .header("accept", accept)
        .body(Vec::new())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (content_type, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_lists_every_served_group() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let (content_type, apis) = discovery(&client, "/apis", AGGREGATED).await;
    assert_eq!(
        content_type,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(apis["kind"], "APIGroupDiscoveryList");
    assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2");
    let groups: Vec<&str> = apis["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["metadata"]["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "apiregistration.k8s.io",
        "apiextensions.k8s.io",
        "certificates.k8s.io",
        "packaging.carvel.dev",
        "cluster.x-k8s.io",
        "authorization.k8s.io",
    ] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }
    // The legacy list names the same groups.
    let (_, legacy) = discovery(&client, "/apis", "application/json").await;
    assert_eq!(legacy["groups"].as_array().unwrap().len(), groups.len());
    let apps = apis["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let sts = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "statefulsets")
        .unwrap();
    assert_eq!(sts["scope"], "Namespaced");
    assert_eq!(sts["responseKind"]["kind"], "StatefulSet");
    assert_eq!(sts["shortNames"], json!(["sts"]));
    let subs: Vec<&str> = sts["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["scale", "status"]);

    let (content_type, core) = discovery(&client, "/api", AGGREGATED).await;
    assert!(content_type.contains("as=APIGroupDiscoveryList"));
    let v1 = &core["items"][0]["versions"][0];
    assert_eq!(v1["version"], "v1");
    let pods = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .unwrap();
    assert!(
        pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["subresource"] == "ephemeralcontainers")
    );
    // A client that does not ask for it gets the legacy document.
    let (_, legacy_core) = discovery(&client, "/api", "application/json").await;
    assert_eq!(legacy_core["kind"], "APIVersions");
    // v2beta1 alone is not served: the legacy document, which the client understands by its type.
    let (content_type, _) = discovery(
        &client,
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
    )
    .await;
    assert_eq!(content_type, "application/json");

    // kubectl (1.32: aggregated discovery) resolves kinds from it.
    let out = ok(&sim
        .kubectl(&["api-resources", "--api-group=apps", "-o", "name"])
        .await);
    assert!(out.lines().any(|l| l == "statefulsets.apps"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_gets_and_lists() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "a", "labels": {"app": "x"}}, "data": {"big": "payload"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let meta = cms.get_metadata("a").await.unwrap();
    assert_eq!(meta.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(meta.metadata.labels.unwrap()["app"], "x");
    let list = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("a"));
    assert!(list.metadata.resource_version.is_some());
}
