//! `kubectl drain` — the real one — against the simulator: the pods of a node evicted through
//! `pods/eviction`, a PodDisruptionBudget kept by the simulated disruption controller refusing what
//! would break it (429, retried by kubectl until its timeout), a pod under two budgets refused with
//! kube-apiserver's 500, and `--dry-run=server` evicting nothing. The rules are kube-apiserver's
//! `pkg/registry/core/pod/storage/eviction.go` and kube-controller-manager's
//! `pkg/controller/disruption/disruption.go` (see `sim/src/disruption.rs`).

use std::time::Duration;

use serde_json::{Value, json};
use supsvc_sim::api::{Client, Gvr, ListOptions, WriteOptions, gvr};
use supsvc_tests::{Supervisor, eventually};

const NS: &str = "shop";

async fn create(admin: &Client, resource: Gvr, object: Value) -> Value {
    let namespace = object["metadata"]["namespace"].as_str().map(String::from);
    admin
        .create(
            resource,
            namespace.as_deref(),
            object.clone(),
            &WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", object["metadata"]["name"]))
}

fn owner(kind: &str, api_version: &str, object: &Value) -> Value {
    json!([{
        "apiVersion": api_version, "kind": kind, "controller": true, "blockOwnerDeletion": true,
        "name": object["metadata"]["name"], "uid": object["metadata"]["uid"],
    }])
}

/// A pod bound to `node`, Running and Ready, as a kubelet would report it.
async fn running_pod(admin: &Client, name: &str, node: &str, labels: Value, owners: Value) {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "my-registry.example.com/app:1"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    });
    if owners.is_array() {
        pod["metadata"]["ownerReferences"] = owners;
    }
    let mut created = create(admin, gvr::PODS, pod).await;
    created["status"] = json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                               "image": "my-registry.example.com/app:1", "imageID": "", "started": true,
                               "state": {"running": {}}}],
    });
    admin
        .update_status(gvr::PODS, Some(NS), created, &WriteOptions::default())
        .await
        .expect("pod status written");
}

async fn pods_on(admin: &Client, node: &str) -> Vec<String> {
    let list = admin
        .list(
            gvr::PODS,
            Some(NS),
            &ListOptions {
                field_selector: Some(format!("spec.nodeName={node}")),
                ..ListOptions::default()
            },
        )
        .await
        .expect("pods listed");
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

async fn allowed(admin: &Client, pdb: &str) -> Option<i64> {
    admin
        .get(gvr::POD_DISRUPTION_BUDGETS, Some(NS), pdb)
        .await
        .ok()?
        .pointer("/status/disruptionsAllowed")
        .and_then(Value::as_i64)
}

/// Nodes `node-a` (one web replica, a DaemonSet pod), `node-b` (two web replicas), `node-c` (a
/// database pod under two budgets); the web Deployment's budget `maxUnavailable: 1`.
async fn scenario(sup: &Supervisor) {
    let admin = sup.admin();
    create(
        &admin,
        gvr::NAMESPACES,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await;
    for node in ["node-a", "node-b", "node-c"] {
        let mut created = create(
            &admin,
            Gvr {
                group: "",
                version: "v1",
                resource: "nodes",
            },
            json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}}),
        )
        .await;
        created["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let _ = admin
            .update_status(
                Gvr {
                    group: "",
                    version: "v1",
                    resource: "nodes",
                },
                None,
                created,
                &WriteOptions::default(),
            )
            .await;
    }
    let web_labels = json!({"app": "web", "pod-template-hash": "5d8f7"});
    let template = |labels: &Value| {
        json!({"metadata": {"labels": labels},
               "spec": {"containers": [{"name": "app", "image": "my-registry.example.com/app:1"}]}})
    };
    let deployment = create(
        &admin,
        gvr::DEPLOYMENTS,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": NS},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                        "template": template(&json!({"app": "web"}))}}),
    )
    .await;
    let replica_set = create(
        &admin,
        gvr::REPLICA_SETS,
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-5d8f7", "namespace": NS,
                            "ownerReferences": owner("Deployment", "apps/v1", &deployment)},
               "spec": {"replicas": 3, "selector": {"matchLabels": web_labels.clone()},
                        "template": template(&web_labels)}}),
    )
    .await;
    let daemon_set = create(
        &admin,
        gvr::DAEMON_SETS,
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "agent", "namespace": NS},
               "spec": {"selector": {"matchLabels": {"app": "agent"}},
                        "template": template(&json!({"app": "agent"}))}}),
    )
    .await;
    let web = owner("ReplicaSet", "apps/v1", &replica_set);
    running_pod(
        &admin,
        "web-5d8f7-aaaaa",
        "node-a",
        web_labels.clone(),
        web.clone(),
    )
    .await;
    running_pod(
        &admin,
        "web-5d8f7-bbbbb",
        "node-b",
        web_labels.clone(),
        web.clone(),
    )
    .await;
    running_pod(&admin, "web-5d8f7-ccccc", "node-b", web_labels.clone(), web).await;
    running_pod(
        &admin,
        "agent-xk2p9",
        "node-a",
        json!({"app": "agent"}),
        owner("DaemonSet", "apps/v1", &daemon_set),
    )
    .await;
    running_pod(&admin, "db-0", "node-c", json!({"app": "db"}), Value::Null).await;
    for (name, selector, rule) in [
        ("web", json!({"app": "web"}), json!({"maxUnavailable": 1})),
        ("db", json!({"app": "db"}), json!({"minAvailable": 0})),
        ("db-too", json!({"app": "db"}), json!({"minAvailable": 0})),
    ] {
        let mut spec = rule;
        spec["selector"] = json!({"matchLabels": selector});
        create(
            &admin,
            gvr::POD_DISRUPTION_BUDGETS,
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": name, "namespace": NS}, "spec": spec}),
        )
        .await;
    }
    eventually(
        Duration::from_secs(10),
        "the web budget allowing 1 disruption",
        || async { (allowed(&admin, "web").await == Some(1)).then_some(()) },
    )
    .await;
}

/// Runs `kubectl` off the runtime's workers (a drain waits for seconds).
async fn kubectl(sup: &Supervisor, args: &[&str]) -> std::process::Output {
    let kubeconfig = sup.kubeconfig.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        supsvc_tests::kubectl(&kubeconfig, &args)
    })
    .await
    .expect("kubectl ran")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_evicts_through_the_budgets() {
    let sup = Supervisor::start("healthy", 0.01).await;
    scenario(&sup).await;
    let admin = sup.admin();

    // The budget's status as the disruption controller computes it, in kubectl's columns.
    let table = sup.kubectl_ok(&["get", "pdb", "-n", NS]);
    let web_row = table
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no web row in:\n{table}"));
    let cells: Vec<&str> = web_row.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["N/A", "1", "1"], "{table}");
    assert!(table.contains("ALLOWED DISRUPTIONS"), "{table}");
    let pdb = sup.get(gvr::POD_DISRUPTION_BUDGETS, NS, "web").await;
    assert_eq!(pdb["status"]["expectedPods"], 3, "{pdb}");
    assert_eq!(pdb["status"]["desiredHealthy"], 2, "{pdb}");
    assert_eq!(pdb["status"]["currentHealthy"], 3, "{pdb}");
    assert_eq!(pdb["status"]["conditions"][0]["reason"], "SufficientPods");

    let drain = |node: &'static str, extra: &'static [&'static str]| {
        let mut args = vec![
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
        ];
        args.extend_from_slice(extra);
        args
    };

    // --dry-run=server: every eviction answered, nothing evicted, nothing spent, nothing cordoned.
    let dry = kubectl(
        &sup,
        &drain("node-b", &["--dry-run=server", "--timeout=20s"]),
    )
    .await;
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("evicting pod shop/web-5d8f7-bbbbb (server dry run)"),
        "{}",
        text(&dry)
    );
    assert_eq!(
        pods_on(&admin, "node-b").await,
        ["web-5d8f7-bbbbb", "web-5d8f7-ccccc"]
    );
    assert_eq!(allowed(&admin, "web").await, Some(1));

    // The budget allows one: node-a's replica is evicted, the DaemonSet pod left alone.
    let ok = kubectl(&sup, &drain("node-a", &["--timeout=30s"])).await;
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("pod/web-5d8f7-aaaaa evicted"),
        "{}",
        text(&ok)
    );
    assert_eq!(pods_on(&admin, "node-a").await, ["agent-xk2p9"]);
    let node = sup
        .get(
            Gvr {
                group: "",
                version: "v1",
                resource: "nodes",
            },
            "",
            "node-a",
        )
        .await;
    assert_eq!(node["spec"]["unschedulable"], true, "cordoned: {node}");

    // Two healthy of three expected, two desired: the budget now allows none.
    eventually(Duration::from_secs(10), "the web budget at 0", || async {
        (allowed(&admin, "web").await == Some(0)).then_some(())
    })
    .await;
    let refused = kubectl(&sup, &drain("node-b", &["--timeout=3s"])).await;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        pods_on(&admin, "node-b").await,
        ["web-5d8f7-bbbbb", "web-5d8f7-ccccc"]
    );

    // A pod under two budgets cannot be evicted at all.
    let two = kubectl(&sup, &drain("node-c", &["--force", "--timeout=20s"])).await;
    assert!(!two.status.success(), "{}", text(&two));
    assert!(
        text(&two).contains(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        ),
        "{}",
        text(&two)
    );
    assert_eq!(pods_on(&admin, "node-c").await, ["db-0"]);
}
