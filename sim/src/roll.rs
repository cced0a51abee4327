//! A roll executor: what Cluster API does to a cluster's nodes when its version changes, played
//! against the simulated Supervisor (the order) and the cluster's own API server (the drains), so a
//! test can check a forecast against what a roll actually meets.
//!
//! Order, read from the Supervisor's objects, not from any forecast: the control plane's Machines
//! first (KubeadmControlPlane rolls before the workers, cluster-api
//! `internal/controllers/topology/cluster/desired_state.go`), then the Cluster's
//! `spec.topology.workers.machineDeployments` in list order, one at a time
//! (`topology.cluster.x-k8s.io/upgrade-concurrency` 1, the default), skipping a pool annotated
//! `topology.cluster.x-k8s.io/defer-upgrade` and stopping at one annotated
//! `topology.cluster.x-k8s.io/hold-upgrade-sequence`. Within a pool the Machines go by name (Cluster
//! API's default delete policy leaves the order unspecified).
//!
//! Each node: surge one (a new Node, where the evicted pods' replacements start at once, as a scheduler
//! and a kubelet would put them), cordon the old one, evict every pod Cluster API drains (not
//! DaemonSet or mirror pods, not `cluster.x-k8s.io/drain=skip`) through `pods/eviction`, retrying a
//! refused eviction ([`RollOptions::retries`] times, Cluster API retries every 20 s); a pod still
//! refused then is a [`Stall`], and goes with its node as it would once `nodeDrainTimeout` passes. A
//! replacement pinned to the drained node (`kubernetes.io/hostname`) stays Pending.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use supsvc_core::upgrade::drain::Pod;

use crate::api::{Client, Gvr, ListOptions, Patch, Status, WriteOptions, gvr};

const CLUSTERS: Gvr = Gvr {
    group: "cluster.x-k8s.io",
    version: "v1beta1",
    resource: "clusters",
};
const MACHINE_DEPLOYMENTS: Gvr = Gvr {
    group: "cluster.x-k8s.io",
    version: "v1beta1",
    resource: "machinedeployments",
};
const MACHINES: Gvr = Gvr {
    group: "cluster.x-k8s.io",
    version: "v1beta1",
    resource: "machines",
};
const NODES: Gvr = Gvr {
    group: "",
    version: "v1",
    resource: "nodes",
};

/// How hard the executor tries.
#[derive(Debug, Clone)]
pub struct RollOptions {
    /// Evictions of one pod refused this many times make a [`Stall`].
    pub retries: u32,
    /// Wait between two attempts (Cluster API: 20 s).
    pub retry_interval: Duration,
}

impl Default for RollOptions {
    fn default() -> Self {
        RollOptions {
            retries: 50,
            retry_interval: Duration::from_millis(40),
        }
    }
}

/// A node the roll replaced, in the order it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledNode {
    /// The Machine on the Supervisor.
    pub machine: String,
    /// The node in the workload cluster.
    pub node: String,
    /// The pool's topology name; `None` for the control plane.
    pub pool: Option<String>,
}

/// A pod whose eviction was still refused after the retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// The node being drained.
    pub node: String,
    /// `namespace/name`.
    pub pod: String,
    /// The last refusal's HTTP code: 429 (a budget), 500 (two budgets).
    pub code: u16,
    /// The last refusal's message and causes, as the API server wrote them.
    pub message: String,
}

/// What the roll did.
#[derive(Debug, Clone, Default)]
pub struct RollRecord {
    /// The nodes, in the order they were drained.
    pub nodes: Vec<RolledNode>,
    /// Evicted pods (`namespace/name`), in order.
    pub evicted: Vec<String>,
    /// Pods the drain could not evict.
    pub stalls: Vec<Stall>,
}

/// Rolls every node of Cluster `namespace/name`: `supervisor` reads the order, `workload` is the
/// cluster's API server (its admin). See the module's documentation for the rules.
///
/// # Errors
/// The Cluster, its Machines or MachineDeployments cannot be read, or a write the executor itself
/// makes (surge node, cordon, replacement pod) is refused.
pub async fn roll(
    supervisor: &Client,
    workload: &Client,
    namespace: &str,
    name: &str,
    options: &RollOptions,
) -> anyhow::Result<RollRecord> {
    let order = order(supervisor, namespace, name).await?;
    let mut record = RollRecord::default();
    for node in order {
        drain_node(workload, &node, options, &mut record).await?;
        record.nodes.push(node);
    }
    Ok(record)
}

/// The nodes in roll order (see the module's documentation).
async fn order(
    supervisor: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Vec<RolledNode>> {
    let cluster = supervisor
        .get(CLUSTERS, Some(namespace), name)
        .await
        .with_context(|| format!("reading Cluster {namespace}/{name}"))?;
    let of_cluster = ListOptions {
        label_selector: Some(format!("cluster.x-k8s.io/cluster-name={name}")),
        ..ListOptions::default()
    };
    let mut machines = supervisor
        .list(MACHINES, Some(namespace), &of_cluster)
        .await
        .context("listing Machines")?
        .items;
    machines.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mds = supervisor
        .list(MACHINE_DEPLOYMENTS, Some(namespace), &of_cluster)
        .await
        .context("listing MachineDeployments")?
        .items;
    let node = |m: &Value, pool: Option<&str>| -> Option<RolledNode> {
        Some(RolledNode {
            machine: name_of(m).to_owned(),
            node: m.pointer("/status/nodeRef/name")?.as_str()?.to_owned(),
            pool: pool.map(str::to_owned),
        })
    };
    let mut order: Vec<RolledNode> = machines
        .iter()
        .filter(|m| label(m, "cluster.x-k8s.io/control-plane").is_some())
        .filter_map(|m| node(m, None))
        .collect();
    let empty = Vec::new();
    let pools = cluster
        .pointer("/spec/topology/workers/machineDeployments")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for pool in pools {
        let Some(topology_name) = pool["name"].as_str() else {
            continue;
        };
        let annotations = &pool["metadata"]["annotations"];
        if annotations
            .get("topology.cluster.x-k8s.io/hold-upgrade-sequence")
            .is_some()
        {
            break;
        }
        if annotations
            .get("topology.cluster.x-k8s.io/defer-upgrade")
            .is_some()
        {
            continue;
        }
        let md_names: Vec<&str> = mds
            .iter()
            .filter(|md| {
                label(md, "topology.cluster.x-k8s.io/deployment-name") == Some(topology_name)
            })
            .map(name_of)
            .collect();
        order.extend(
            machines
                .iter()
                .filter(|m| {
                    label(m, "cluster.x-k8s.io/deployment-name")
                        .is_some_and(|d| md_names.contains(&d))
                })
                .filter_map(|m| node(m, Some(topology_name))),
        );
    }
    Ok(order)
}

async fn drain_node(
    workload: &Client,
    node: &RolledNode,
    options: &RollOptions,
    record: &mut RollRecord,
) -> anyhow::Result<()> {
    let surge = format!("{}-surge", node.node);
    workload
        .create(
            NODES,
            None,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": surge}}),
            &WriteOptions::default(),
        )
        .await
        .with_context(|| format!("creating the surge node {surge}"))?;
    workload
        .patch(
            NODES,
            None,
            &node.node,
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
            &WriteOptions::default(),
        )
        .await
        .with_context(|| format!("cordoning {}", node.node))?;
    let on_node = workload
        .list(
            gvr::PODS,
            None,
            &ListOptions {
                field_selector: Some(format!("spec.nodeName={}", node.node)),
                ..ListOptions::default()
            },
        )
        .await
        .context("listing the node's pods")?
        .items;
    let mut pending: Vec<Value> = on_node
        .into_iter()
        .filter(|p| Pod::from_value(p).drained())
        .collect();
    pending.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mut last_refusal: Vec<Option<Status>> = vec![None; pending.len()];
    for _attempt in 0..=options.retries {
        let mut left = Vec::new();
        let mut refusals = Vec::new();
        for (pod, _) in pending.into_iter().zip(last_refusal) {
            let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let eviction = json!({
                "apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name_of(&pod), "namespace": namespace},
            });
            match crate::disruption::evict(workload, namespace, name_of(&pod), &eviction, false)
                .await
            {
                Ok(_) => {
                    record.evicted.push(key(&pod));
                    replace(workload, &pod, &node.node, &surge).await?;
                }
                Err(status) if status.is_not_found() => {}
                Err(status) => {
                    left.push(pod);
                    refusals.push(Some(status));
                }
            }
        }
        pending = left;
        last_refusal = refusals;
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(options.retry_interval).await;
    }
    // nodeDrainTimeout passed: the Machine goes, and its pods with the node.
    for (pod, refusal) in pending.iter().zip(last_refusal) {
        let refusal = refusal.unwrap_or_else(|| Status::internal("no answer"));
        let causes = refusal
            .details
            .as_ref()
            .and_then(|d| d["causes"].as_array())
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["message"].as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        record.stalls.push(Stall {
            node: node.node.clone(),
            pod: key(pod),
            code: refusal.code,
            message: format!("{} {causes}", refusal.message).trim().to_owned(),
        });
        let namespace = pod["metadata"]["namespace"].as_str();
        workload
            .delete(gvr::PODS, namespace, name_of(pod), &WriteOptions::default())
            .await
            .ok();
        replace(workload, pod, &node.node, &surge).await?;
    }
    Ok(())
}

/// The evicted pod's replacement, when a controller owns the pod (a bare pod is gone for good):
/// Running and Ready on the surge node `node`, or Pending when the pod is pinned to the node being
/// drained (`drained`; a `kubernetes.io/hostname` selector or required affinity): the scheduler has
/// nowhere to put it, so its budget does not recover.
async fn replace(workload: &Client, pod: &Value, drained: &str, node: &str) -> anyhow::Result<()> {
    let parsed = Pod::from_value(pod);
    if parsed.controller.is_none() {
        return Ok(());
    }
    let pinned = parsed.pinned_to.as_deref() == Some(drained);
    let namespace = pod["metadata"]["namespace"].as_str();
    let mut fresh = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{}-r", name_of(pod)),
            "namespace": namespace,
            "labels": pod["metadata"]["labels"],
            "ownerReferences": pod["metadata"]["ownerReferences"],
        },
        "spec": pod["spec"],
    });
    if !pinned {
        fresh["spec"]["nodeName"] = json!(node);
    } else if let Some(spec) = fresh["spec"].as_object_mut() {
        spec.remove("nodeName");
    }
    let created = workload
        .create(gvr::PODS, namespace, fresh, &WriteOptions::default())
        .await
        .with_context(|| format!("starting {}'s replacement", name_of(pod)))?;
    let mut ready = created;
    ready["status"] = if pinned {
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]})
    } else {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
    };
    workload
        .update_status(gvr::PODS, namespace, ready, &WriteOptions::default())
        .await
        .context("marking the replacement Ready")?;
    Ok(())
}

fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or_default(),
        name_of(o)
    )
}

fn label<'a>(o: &'a Value, name: &str) -> Option<&'a str> {
    o["metadata"]["labels"][name].as_str()
}
