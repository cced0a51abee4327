//! Fault injection in the HTTP front, set over HTTP as an out-of-process test would.

mod api_support;

use std::time::{Duration, Instant};

use api_support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchParams};
use serde_json::{Value, json};
use supsvc_sim::api::gvr;

async fn set_faults(client: &kube::Client, config: Value) -> Value {
    let req = http::Request::post("/_sim/faults")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&config).unwrap())
        .unwrap();
    client.request(req).await.unwrap()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nth_matching_request_fails_with_the_chosen_status() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    set_faults(
        &client,
        json!({"rules": [
            {"verb": "get", "resource": "configmaps", "name": "a", "nth": 2, "action": {"type": "status", "code": 500}},
            {"verb": "create", "resource": "configmaps", "action": {"type": "status", "code": 409}}
        ]}),
    )
    .await;
    cms.get("a").await.unwrap();
    let e = api_error(cms.get("a").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            500,
            "InternalError",
            "Internal error occurred: injected fault"
        )
    );
    cms.get("a").await.unwrap();
    let e = api_error(cms.create(&PostParams::default(), &cm("b")).await);
    assert_eq!(e.code, 409);
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    // Controllers inside the simulator are never faulted.
    set_faults(
        &client,
        json!({"rules": [{"verb": "get", "times": 0, "action": {"type": "status", "code": 500}}]}),
    )
    .await;
    sim.admin()
        .get(gvr::CONFIG_MAPS, Some("default"), "a")
        .await
        .unwrap();
    assert_eq!(api_error(cms.get("a").await).code, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_carries_retry_after_and_drops_close_the_connection() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    set_faults(
        &client,
        json!({"rules": [
            {"verb": "list", "resource": "configmaps", "action": {"type": "status", "code": 429, "retryAfterSeconds": 2}},
            {"verb": "get", "resource": "configmaps", "action": {"type": "drop"}}
        ]}),
    )
    .await;
    // kube-rs retries a 429 after the server's Retry-After: the first list is throttled, the retry passes.
    let started = Instant::now();
    let req = http::Request::get("/api/v1/namespaces/default/configmaps")
        .body(Vec::new())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the retry waited for Retry-After"
    );
    let config = set_faults(&client, json!({})).await;
    assert_eq!(config["rules"][0]["action"]["retryAfterSeconds"], 2);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    match cms.get("a").await {
        Err(kube::Error::Api(s)) => panic!("a dropped connection is not an API answer: {s:?}"),
        Err(_) => {}
        Ok(c) => panic!("expected a dropped connection, got {c:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_watches_can_be_dropped_and_latency_added() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut watch = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    set_faults(&client, json!({"dropWatches": true})).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the watch ends");
    assert!(ended.is_none(), "{ended:?}");

    set_faults(&client, json!({"latencyMs": 300})).await;
    let started = Instant::now();
    cms.list(&Default::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let config = set_faults(&client, json!({"clear": true})).await;
    assert_eq!(config["latencyMs"], 0);

    let viewer = kube_client(&sim, "viewer").await;
    let req = http::Request::post("/_sim/faults")
        .body(b"{}".to_vec())
        .unwrap();
    assert_eq!(api_error(viewer.request::<Value>(req).await).code, 403);
}
