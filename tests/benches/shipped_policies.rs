//! Per-evaluation latency of the shipped policies in the real host, and the size of their modules.
//!
//!     cargo bench -p supsvc-tests --bench shipped_policies
//!
//! Each evaluation is what the webhook does per request and policy: a fresh store from the pooling
//! allocator, the request handed to the guest, the verdict parsed. Figures go to BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use supsvc_policy_host::{HostOptions, PolicyHost, PolicySpec};
use supsvc_tests::policy_wasm;

const WARM_UP: usize = 200;
const SAMPLES: usize = 5_000;

fn pod_with_ten_containers() -> serde_json::Value {
    let containers: Vec<_> = (0..10)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("my-registry.example.com/team/app-{i}:1.{i}"), "resources": {"limits": {"cpu": "100m"}}}))
        .collect();
    json!({
        "uid": "b1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web", "namespace": "default", "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": containers}},
        "oldObject": null
    })
}

/// The webhook fixture's Pod (env, ports, resources, security context, volume mounts on every
/// container) grown to 10 containers: about 8 KB, as a real Pod of a Supervisor Service.
fn full_pod_with_ten_containers() -> serde_json::Value {
    let review: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/admission/webhook/pod-create.json"
    ))
    .unwrap();
    let mut request = review["request"].clone();
    let containers = request["object"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    let ten: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            let mut container = containers[i % containers.len()].clone();
            container["name"] = format!("c{i}").into();
            container
        })
        .collect();
    request["object"]["spec"]["containers"] = ten.into();
    request
}

fn pvc_update() -> serde_json::Value {
    let review: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/admission/storage-guard/pvc-grown-by-admin.json"
    ))
    .unwrap();
    review["request"].clone()
}

fn measure(
    host: &PolicyHost,
    package: &str,
    request: serde_json::Value,
) -> (Duration, Duration, Duration, bool) {
    let wasm = std::fs::read(policy_wasm(package)).unwrap();
    let policy = host.load(PolicySpec::new(package, wasm)).unwrap();
    let bytes: Arc<[u8]> = serde_json::to_vec(&request).unwrap().into();
    let mut accepted = false;
    for _ in 0..WARM_UP {
        accepted = policy.validate(&bytes).unwrap().accepted;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        policy.validate(&bytes).unwrap();
        samples.push(start.elapsed());
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / SAMPLES as u32;
    (
        samples[SAMPLES / 2],
        samples[SAMPLES * 99 / 100],
        mean,
        accepted,
    )
}

fn main() {
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    println!(
        "shipped policies, {SAMPLES} evaluations each after {WARM_UP} warm-up (fresh store per evaluation)"
    );
    for (package, what, request) in [
        (
            "supsvc-registry-guard",
            "Pod with 10 containers (admitted)",
            pod_with_ten_containers(),
        ),
        (
            "supsvc-registry-guard",
            "full Pod with 10 containers, 8 KB",
            full_pod_with_ten_containers(),
        ),
        (
            "supsvc-storage-guard",
            "PVC grown by the admin (denied)",
            pvc_update(),
        ),
    ] {
        let (p50, p99, mean, accepted) = measure(&host, package, request);
        let size = std::fs::metadata(policy_wasm(package)).unwrap().len();
        println!(
            "{package:<24} {what:<36} p50 {:>6.1} µs  p99 {:>6.1} µs  mean {:>6.1} µs  accepted={accepted}  module {:.0} KiB",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            mean.as_secs_f64() * 1e6,
            size as f64 / 1024.0
        );
    }
}
