//! `kubectl supsvc upgrade-check --tkr` against a simulated fleet with 50 ms of latency on every request
//! (the set-up): 200 Clusters of 5 pools each, beside 50 to show the cost does not grow with the
//! fleet; and the workload-cluster part, whose time should follow the slowest cluster (8 at a time), not
//! the sum. The reference run, side by side: `kubectl get` of the same four kinds the forecast lists.
//!
//! Run: `cargo bench -p supsvc-tests --bench upgrade_check` (builds the release plugin first).
//! Client time is the wall time of the plugin's process (start-up included); requests are the
//! simulator's audit events by verb.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use supsvc_sim::simulator::{SimOptions, Simulator};
use supsvc_tests::kubectl_path;

const LATENCY: Duration = Duration::from_millis(50);
const POOLS: usize = 5;
const TARGET: &str = "v1.29.4---vmware.3-fips.1-tkg.1";
const NAMESPACES: usize = 10;

/// A scenario of `clusters` Clusters (3 control-plane Machines, `POOLS` pools of 2 Machines each),
/// `workloads` of them with an API server of their own holding `pods` pods under one budget.
fn scenario(clusters: usize, workloads: usize, pods: usize) -> Value {
    let mut objects = Vec::new();
    for n in 0..NAMESPACES {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("team-{n}")}}));
    }
    objects.push(json!({"apiVersion": "run.tanzu.vmware.com/v1alpha3", "kind": "TanzuKubernetesRelease",
        "metadata": {"name": TARGET}, "spec": {"version": "v1.29.4+vmware.3-fips.1-tkg.1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Compatible", "status": "True"}]}}));
    let mut workload_clusters = Vec::new();
    for c in 0..clusters {
        let ns = format!("team-{}", c % NAMESPACES);
        let name = format!("c{c:03}");
        let pools: Vec<Value> = (0..POOLS)
            .map(|p| json!({"class": "node-pool", "name": format!("p{p}"), "replicas": 2}))
            .collect();
        objects.push(json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"topology": {"class": "builtin-generic-v3.1.0", "version": "v1.28.8---vmware.1-fips.1-tkg.2",
                "controlPlane": {"replicas": 3}, "workers": {"machineDeployments": pools},
                "variables": [{"name": "vmClass", "value": "best-effort-small"}]}}}));
        let mut nodes = Vec::new();
        for m in 0..3 {
            let machine = format!("{name}-cp-{m}");
            nodes.push(machine.clone());
            objects.push(
                json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine",
                "metadata": {"name": machine, "namespace": ns, "labels": {
                    "cluster.x-k8s.io/cluster-name": name, "cluster.x-k8s.io/control-plane": ""}},
                "spec": {"clusterName": name}, "status": {"nodeRef": {"name": machine}}}),
            );
        }
        for p in 0..POOLS {
            let md = format!("{name}-p{p}-x");
            objects.push(json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineDeployment",
                "metadata": {"name": md, "namespace": ns, "labels": {
                    "cluster.x-k8s.io/cluster-name": name, "topology.cluster.x-k8s.io/deployment-name": format!("p{p}")}},
                "spec": {"clusterName": name, "replicas": 2, "template": {"spec": {"version": "v1.28.8+vmware.1-fips.1"}}},
                "status": {"replicas": 2, "updatedReplicas": 2}}));
            for m in 0..2 {
                let machine = format!("{md}-{m}");
                nodes.push(machine.clone());
                objects.push(json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine",
                    "metadata": {"name": machine, "namespace": ns, "labels": {
                        "cluster.x-k8s.io/cluster-name": name, "cluster.x-k8s.io/deployment-name": md}},
                    "spec": {"clusterName": name}, "status": {"nodeRef": {"name": machine}}}));
            }
        }
        if c < workloads {
            let mut wobjects =
                vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}})];
            wobjects.push(
                json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "app"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
            );
            for i in 0..pods {
                wobjects.push(json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("web-{i}"), "namespace": "app", "labels": {"app": "web"}},
                    "spec": {"nodeName": nodes[3 + i % (nodes.len() - 3)],
                             "containers": [{"name": "web", "image": "my-registry.example.com/web:1"}]},
                    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
            }
            workload_clusters.push(json!({"namespace": ns, "name": name, "objects": wobjects}));
        }
    }
    json!({
        "name": format!("fleet-{clusters}"),
        "description": "upgrade-check benchmark fleet",
        "extends": "tkg-fleet",
        "objects": objects,
        "history": [],
        "ready": [],
        "workloadClusters": workload_clusters,
    })
}

struct Run {
    seconds: f64,
    lists: usize,
    gets: usize,
    workload_requests: usize,
}

async fn start(dir: &Path, clusters: usize, workloads: usize, pods: usize) -> Simulator {
    let file = dir.join(format!("fleet-{clusters}-{workloads}.yaml"));
    std::fs::write(
        &file,
        serde_json::to_string(&scenario(clusters, workloads, pods)).unwrap(),
    )
    .unwrap();
    let sim = Simulator::start(SimOptions::new(file.to_str().unwrap()))
        .await
        .expect("the fleet starts");
    sim.api().faults().set_latency(LATENCY);
    for w in sim.workload_clusters() {
        w.api().faults().set_latency(LATENCY);
    }
    sim
}

async fn run(sim: &Simulator, kubeconfig: &Path, program: &Path, args: &[&str]) -> Run {
    sim.api().audit().clear();
    for w in sim.workload_clusters() {
        w.api().audit().clear();
    }
    let mut cmd = Command::new(program);
    cmd.args(args).env("KUBECONFIG", kubeconfig);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = sim.api().audit().events();
    let count = |verb: &str| events.iter().filter(|e| e.verb == verb).count();
    Run {
        seconds,
        lists: count("list"),
        gets: count("get"),
        workload_requests: sim
            .workload_clusters()
            .iter()
            .map(|w| w.api().audit().events().len())
            .sum(),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // The plugin as users run it: a release build.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["build", "--quiet", "--release", "--bin", "kubectl-supsvc"])
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo build --release --bin kubectl-supsvc"
    );
    let plugin = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/kubectl-supsvc");
    let kubectl = kubectl_path();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    println!(
        "upgrade-check --tkr with {} ms latency per request; wall time of the client process",
        LATENCY.as_millis()
    );
    println!(
        "{:<44} {:>8} {:>6} {:>5} {:>10}",
        "run", "seconds", "lists", "gets", "workload"
    );
    let show = |label: &str, r: &Run| {
        println!(
            "{label:<44} {:>8.2} {:>6} {:>5} {:>10}",
            r.seconds, r.lists, r.gets, r.workload_requests
        );
    };
    // The Supervisor-side forecast: 50 and 200 clusters, no workload cluster readable.
    for clusters in [50, 200] {
        let sim = start(dir.path(), clusters, 0, 0).await;
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let forecast = run(
            &sim,
            &kubeconfig,
            &plugin,
            &[
                "upgrade-check",
                "--tkr",
                TARGET,
                "--supervisor-only",
                "-o",
                "json",
            ],
        )
        .await;
        show(
            &format!("forecast, {clusters} clusters x {POOLS} pools"),
            &forecast,
        );
        let reference = run(&sim, &kubeconfig, &kubectl, &["get", "clusters.cluster.x-k8s.io,machinedeployments.cluster.x-k8s.io,machines.cluster.x-k8s.io,tanzukubernetesreleases", "-A", "-o", "json"]).await;
        show(
            &format!("reference: kubectl get of 4 kinds, {clusters}"),
            &reference,
        );
        println!(
            "{:<44} {:>8.2}",
            "  ratio forecast / kubectl get",
            forecast.seconds / reference.seconds
        );
        sim.stop().await;
    }
    // The workload part: 1 cluster, then 24 (8 at a time): the time follows the slowest, not the sum.
    let mut one = 0.0;
    for workloads in [1, 24] {
        let sim = start(dir.path(), 24, workloads, 40).await;
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let r = run(
            &sim,
            &kubeconfig,
            &plugin,
            &["upgrade-check", "--tkr", TARGET, "-o", "json"],
        )
        .await;
        show(
            &format!("with workload checks, {workloads} of 24 readable"),
            &r,
        );
        if workloads == 1 {
            one = r.seconds;
        } else {
            println!(
                "{:<44} {:>8.2}",
                "  ratio 24 workload clusters / 1",
                r.seconds / one
            );
        }
        sim.stop().await;
    }
}
