//! Drain blockers and harms: what stalls a roll and what it destroys, in roll order.
//!
//! Cluster API drains a node before deleting its Machine (cluster-api
//! `internal/controllers/machine/drain/{drain,filters}.go`, `docs/book/src/tasks/automated-machine-management/machine_deletions.md`):
//! DaemonSet and mirror pods are skipped, pods labelled `cluster.x-k8s.io/drain=skip` too; every other
//! pod is **evicted** through `policy/v1` Eviction — including pods without a controller and pods with
//! emptyDir data, which `kubectl drain` would refuse. A PodDisruptionBudget refusal (HTTP 429) is
//! retried every 20 s, for ever unless `nodeDrainTimeout` is set; after that timeout the Machine is
//! deleted anyway. A pod under two budgets cannot be evicted at all (kube-apiserver
//! `pkg/registry/core/pod/storage/eviction.go` answers 500). All pods of one node are evicted at once,
//! so a budget that allows 1 holds back the second co-located replica until the first one's
//! replacement is Ready elsewhere — a delay, or a stall when the replacement cannot schedule elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::forecast::ClusterForecast;
use super::model::{Cluster, Machine, at, s, string_map};
use super::{Finding, Severity};

/// Pod label that makes CAPI's drain skip the pod (newer CAPI).
pub const DRAIN_LABEL: &str = "cluster.x-k8s.io/drain";
/// Annotation of a mirror (static) pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A workload pod as the drain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// `metadata.namespace` (empty when absent).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The node it is bound to (`spec.nodeName`); `None` while unscheduled.
    pub node: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Controller owner `(kind, name)`.
    pub controller: Option<(String, String)>,
    /// `status.phase` (`Running`, `Succeeded`...); `Unknown` when absent.
    pub phase: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// A mirror (static) pod: it has the [`MIRROR_ANNOTATION`]; the drain skips it.
    pub mirror: bool,
    /// Names of its `emptyDir` volumes: their data is lost when the pod is evicted.
    pub empty_dirs: Vec<String>,
    /// Names of its `hostPath` volumes: their data stays on a node the roll deletes.
    pub host_paths: Vec<String>,
    /// The node this pod's replacement is pinned to (`nodeName`-style selector or required affinity
    /// on `kubernetes.io/hostname`), when it can only run there.
    pub pinned_to: Option<String>,
}

impl Pod {
    /// Reads a `v1` Pod.
    pub fn from_value(v: &Value) -> Pod {
        let volumes = at(v, &["spec", "volumes"]).and_then(Value::as_array);
        let vols = |key: &str| -> Vec<String> {
            volumes
                .map(|vs| {
                    vs.iter()
                        .filter(|vol| vol.get(key).is_some())
                        .filter_map(|vol| s(vol, &["name"]).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let controller = at(v, &["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            })
            .and_then(|r| Some((s(r, &["kind"])?.to_owned(), s(r, &["name"])?.to_owned())));
        let ready = at(v, &["status", "conditions"])
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| s(c, &["type"]) == Some("Ready") && s(c, &["status"]) == Some("True"))
            });
        let hostname_selector =
            s(v, &["spec", "nodeSelector", "kubernetes.io/hostname"]).map(str::to_owned);
        let affinity_host = at(
            v,
            &[
                "spec",
                "affinity",
                "nodeAffinity",
                "requiredDuringSchedulingIgnoredDuringExecution",
                "nodeSelectorTerms",
            ],
        )
        .and_then(Value::as_array)
        .filter(|terms| terms.len() == 1)
        .and_then(|terms| terms[0].get("matchExpressions")?.as_array().cloned())
        .and_then(|exprs| {
            exprs.iter().find_map(|e| {
                let values = e.get("values")?.as_array()?;
                (s(e, &["key"]) == Some("kubernetes.io/hostname")
                    && s(e, &["operator"]) == Some("In")
                    && values.len() == 1)
                    .then(|| values[0].as_str().map(str::to_owned))?
            })
        });
        Pod {
            namespace: s(v, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_owned(),
            name: s(v, &["metadata", "name"]).unwrap_or_default().to_owned(),
            node: s(v, &["spec", "nodeName"]).map(str::to_owned),
            labels: string_map(at(v, &["metadata", "labels"])),
            controller,
            phase: s(v, &["status", "phase"]).unwrap_or("Unknown").to_owned(),
            ready,
            mirror: at(v, &["metadata", "annotations", MIRROR_ANNOTATION]).is_some(),
            empty_dirs: vols("emptyDir"),
            host_paths: vols("hostPath"),
            pinned_to: hostname_selector.or(affinity_host),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Does CAPI's drain touch this pod? DaemonSet, mirror, completed and `drain=skip` pods: no.
    pub fn drained(&self) -> bool {
        !self.mirror
            && self
                .controller
                .as_ref()
                .is_none_or(|(k, _)| k != "DaemonSet")
            && self.labels.get(DRAIN_LABEL).map(String::as_str) != Some("skip")
            && !matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }

    /// The workload the pod belongs to: `Deployment/x` for a ReplicaSet named `x-<pod-template-hash>`,
    /// else its controller; `None` without a controller.
    pub fn workload(&self) -> Option<String> {
        let (kind, name) = self.controller.as_ref()?;
        if kind == "ReplicaSet"
            && let Some(hash) = self.labels.get("pod-template-hash")
            && let Some(deploy) = name.strip_suffix(&format!("-{hash}"))
        {
            return Some(format!("Deployment/{deploy}"));
        }
        Some(format!("{kind}/{name}"))
    }
}

/// What the disruption controller computes for one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetStatus {
    /// `status.expectedPods`.
    pub expected_pods: i64,
    /// `status.desiredHealthy`.
    pub desired_healthy: i64,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i64,
}

/// Does this budget count its expected pods from the owning controllers' scale? For
/// `maxUnavailable` (either form) and a percentage `minAvailable`; an integer `minAvailable` counts
/// the matching pods (disruption.go `getExpectedPodCount`).
pub fn needs_scale(
    min_available: Option<IntOrPercent>,
    max_unavailable: Option<IntOrPercent>,
) -> bool {
    max_unavailable.is_some() || matches!(min_available, Some(IntOrPercent::Percent(_)))
}

/// The budget's arithmetic (disruption.go `getExpectedPodCount` and `updatePdbStatus`).
///
/// `matching_pods`: the pods the selector matches; `scale`: the sum of their controllers' scale,
/// read only when [`needs_scale`]; `current_healthy`: matching pods Ready, not being deleted and not
/// just evicted. Percentages are scaled rounding up (`intstr.GetScaledValueFromIntOrPercent(.., true)`);
/// `maxUnavailable` wins over `minAvailable`; with neither, nothing is expected. No disruption is
/// allowed while nothing is expected.
pub fn budget_status(
    min_available: Option<IntOrPercent>,
    max_unavailable: Option<IntOrPercent>,
    matching_pods: i64,
    scale: i64,
    current_healthy: i64,
) -> BudgetStatus {
    let (expected_pods, desired_healthy) = match (max_unavailable, min_available) {
        (Some(max), _) => (scale, (scale - max.scaled(scale)).max(0)),
        (None, Some(IntOrPercent::Int(n))) => (matching_pods, n),
        (None, Some(min @ IntOrPercent::Percent(_))) => (scale, min.scaled(scale)),
        (None, None) => (0, 0),
    };
    let allowed = current_healthy - desired_healthy;
    BudgetStatus {
        expected_pods,
        desired_healthy,
        disruptions_allowed: if expected_pods <= 0 || allowed <= 0 {
            0
        } else {
            allowed
        },
    }
}

/// `minAvailable` / `maxUnavailable`: a number or a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A number of pods (`1`).
    Int(i64),
    /// A percentage of the expected pods (`"50%"` is `Percent(50)`).
    Percent(i64),
}

impl IntOrPercent {
    fn parse(v: Option<&Value>) -> Option<IntOrPercent> {
        match v? {
            Value::Number(n) => n.as_i64().map(IntOrPercent::Int),
            Value::String(s) => s
                .trim()
                .strip_suffix('%')?
                .parse()
                .ok()
                .map(IntOrPercent::Percent),
            _ => None,
        }
    }

    /// Scaled against `total`, rounding up as the disruption controller does for PDBs
    /// (kubernetes `pkg/controller/disruption/disruption.go`, `GetScaledValueFromIntOrPercent(.., true)`).
    pub fn scaled(self, total: i64) -> i64 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => (p * total + 99) / 100,
        }
    }
}

/// A label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    /// `matchLabels`: each key must have exactly this value.
    pub match_labels: BTreeMap<String, String>,
    /// `(key, operator, values)`.
    pub expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    fn parse(v: &Value) -> Selector {
        Selector {
            match_labels: string_map(v.get("matchLabels")),
            expressions: v
                .get("matchExpressions")
                .and_then(Value::as_array)
                .map(|es| {
                    es.iter()
                        .filter_map(|e| {
                            Some((
                                s(e, &["key"])?.to_owned(),
                                s(e, &["operator"])?.to_owned(),
                                e.get("values")
                                    .and_then(Value::as_array)
                                    .map(|vs| {
                                        vs.iter()
                                            .filter_map(|x| x.as_str().map(str::to_owned))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Does the selector match these labels? (An empty selector matches everything, as `policy/v1`.)
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .expressions
                .iter()
                .all(|(k, op, vs)| match op.as_str() {
                    "In" => labels.get(k).is_some_and(|v| vs.contains(v)),
                    "NotIn" => labels.get(k).is_none_or(|v| !vs.contains(v)),
                    "Exists" => labels.contains_key(k),
                    "DoesNotExist" => !labels.contains_key(k),
                    _ => false,
                })
    }
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdb {
    /// `metadata.namespace`; the budget covers pods of this namespace only.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `None`: a null selector, which matches no pod.
    pub selector: Option<Selector>,
    /// `spec.minAvailable`, when set.
    pub min_available: Option<IntOrPercent>,
    /// `spec.maxUnavailable`, when set.
    pub max_unavailable: Option<IntOrPercent>,
    /// `status.disruptionsAllowed`, when the disruption controller wrote it.
    pub disruptions_allowed: Option<i64>,
}

impl Pdb {
    /// Reads a `policy/v1` PodDisruptionBudget.
    pub fn from_value(v: &Value) -> Pdb {
        Pdb {
            namespace: s(v, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_owned(),
            name: s(v, &["metadata", "name"]).unwrap_or_default().to_owned(),
            selector: at(v, &["spec", "selector"])
                .filter(|s| s.is_object())
                .map(Selector::parse),
            min_available: IntOrPercent::parse(at(v, &["spec", "minAvailable"])),
            max_unavailable: IntOrPercent::parse(at(v, &["spec", "maxUnavailable"])),
            disruptions_allowed: at(v, &["status", "disruptionsAllowed"]).and_then(Value::as_i64),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Does this budget cover the pod?
    pub fn covers(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }

    /// Disruptions allowed now: the status when present, else [`budget_status`] over `pods` (the
    /// controllers' scale taken as the matching pods, healthy = those Ready), as the disruption
    /// controller computes it.
    pub fn allowed(&self, pods: &[&Pod]) -> i64 {
        if let Some(n) = self.disruptions_allowed {
            return n.max(0);
        }
        let matching = pods.len() as i64;
        let healthy = pods.iter().filter(|p| p.ready).count() as i64;
        budget_status(
            self.min_available,
            self.max_unavailable,
            matching,
            matching,
            healthy,
        )
        .disruptions_allowed
    }
}

/// Where a node stands in the roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The Machine's name (on the Supervisor) that runs the node.
    pub machine: String,
    /// `None` for the control plane.
    pub pool: Option<String>,
    /// The roll step that replaces the node ([`super::forecast::Step::index`]).
    pub step: usize,
    /// The drain timeout of the node's pool (or control plane) as written.
    pub drain_timeout: Option<String>,
}

fn timeout_set(t: Option<&str>) -> Option<&str> {
    t.filter(|t| {
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        !digits.is_empty() && digits.chars().any(|c| c != '0')
    })
}

/// Every node that rolls, with its Machine, pool, step and drain timeout, from the forecast.
pub fn placements(
    cluster: &Cluster,
    forecast: &ClusterForecast,
    machines: &[Machine],
) -> BTreeMap<String, Placement> {
    let cp_step = forecast
        .steps
        .iter()
        .find(|s| s.control_plane)
        .map(|s| s.index);
    machines
        .iter()
        .filter(|m| m.namespace == cluster.namespace && m.cluster == cluster.name)
        .filter_map(|m| {
            let node = m.node.clone()?;
            let (step, timeout) = match &m.pool {
                None => (cp_step?, cluster.control_plane_drain_timeout.clone()),
                Some(p) => {
                    let plan = forecast.pools.iter().find(|q| &q.name == p)?;
                    let pool = cluster.pools.iter().find(|q| &q.name == p);
                    (plan.step?, pool.and_then(|q| q.node_drain_timeout.clone()))
                }
            };
            Some((
                node,
                Placement {
                    machine: m.name.clone(),
                    pool: m.pool.clone(),
                    step,
                    drain_timeout: timeout,
                },
            ))
        })
        .collect()
}

fn where_(p: &Placement, node: &str) -> String {
    format!(
        "step {} ({}), node {node}, Machine {}",
        p.step,
        p.pool
            .as_deref()
            .map(|p| format!("pool {p}"))
            .unwrap_or_else(|| "control plane".into()),
        p.machine
    )
}

fn stall_text(p: &Placement) -> String {
    match timeout_set(p.drain_timeout.as_deref()) {
        None => "nodeDrainTimeout is unset: the drain retries every 20 s without end and the roll stalls (Broadcom KB 345904)".to_owned(),
        Some(t) => format!("nodeDrainTimeout is {t}: after it the Machine is deleted anyway and the budget is violated"),
    }
}

/// Drain blockers and harms of one cluster, in roll order (step, then node).
/// `pods` and `pdbs` are the workload cluster's; pods on nodes that do not roll are not evaluated.
pub fn analyse(
    cluster: &Cluster,
    forecast: &ClusterForecast,
    machines: &[Machine],
    pods: &[Pod],
    pdbs: &[Pdb],
) -> Vec<Finding> {
    let place = placements(cluster, forecast, machines);
    let key = cluster.key();
    let mut findings = Vec::new();
    let covering = |pod: &Pod| -> Vec<&Pdb> { pdbs.iter().filter(|b| b.covers(pod)).collect() };
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| !matches!(p.phase.as_str(), "Succeeded" | "Failed"))
        .collect();

    // Nodes in roll order.
    let mut nodes: Vec<(&String, &Placement)> = place.iter().collect();
    nodes.sort_by(|a, b| (a.1.step, a.0).cmp(&(b.1.step, b.0)));

    for (node, p) in &nodes {
        let on_node: Vec<&Pod> = live
            .iter()
            .copied()
            .filter(|pod| pod.node.as_deref() == Some(node.as_str()) && pod.drained())
            .collect();
        // Pods under two or more budgets: eviction answers 500 whatever the budgets allow.
        for pod in &on_node {
            let cover = covering(pod);
            if cover.len() > 1 {
                findings.push(Finding {
                    code: "UC-DRAIN-MULTIPLE-PDBS".into(),
                    severity: Severity::Blocker,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: Some(cover.iter().map(|b| b.key()).collect::<Vec<_>>().join(", ")),
                    pods: vec![pod.key()],
                    message: format!(
                        "{}: pod {} is covered by {} PodDisruptionBudgets; the eviction API refuses it (500) whatever they allow. {}",
                        where_(p, node),
                        pod.key(),
                        cover.len(),
                        stall_text(p)
                    ),
                    fix: "make the budgets' selectors disjoint so each pod has one PodDisruptionBudget".into(),
                });
            }
        }
        // Budgets, one at a time, for the pods of this node (single-budget pods only).
        for pdb in pdbs {
            let here: Vec<&Pod> = on_node
                .iter()
                .copied()
                .filter(|pod| pdb.covers(pod) && covering(pod).len() == 1)
                .collect();
            if here.is_empty() {
                continue;
            }
            let all: Vec<&Pod> = live.iter().copied().filter(|pod| pdb.covers(pod)).collect();
            let allowed = pdb.allowed(&all);
            let names: Vec<String> = here.iter().map(|p| p.key()).collect();
            let pinned: Vec<&Pod> = here
                .iter()
                .copied()
                .filter(|pod| pod.pinned_to.as_deref() == Some(node.as_str()))
                .collect();
            if allowed == 0 {
                findings.push(Finding {
                    code: "UC-DRAIN-PDB-ZERO".into(),
                    severity: Severity::Blocker,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: Some(pdb.key()),
                    pods: names,
                    message: format!(
                        "{}: PodDisruptionBudget {} allows 0 disruptions now; eviction of its pods is refused (429). {}",
                        where_(p, node),
                        pdb.key(),
                        stall_text(p)
                    ),
                    fix: format!(
                        "before the roll, scale the workload up or relax {} (minAvailable below the replicas, or maxUnavailable ≥ 1); do not delete the node by hand",
                        pdb.key()
                    ),
                });
            } else if !pinned.is_empty() && here.len() as i64 > 0 {
                findings.push(Finding {
                    code: "UC-DRAIN-NO-RESCHEDULE".into(),
                    severity: Severity::Blocker,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: Some(pdb.key()),
                    pods: pinned.iter().map(|p| p.key()).collect(),
                    message: format!(
                        "{}: the pods are pinned to node {node} (kubernetes.io/hostname); once evicted their replacements cannot schedule, so {} never recovers and the next eviction under it is refused. {}",
                        where_(p, node),
                        pdb.key(),
                        stall_text(p)
                    ),
                    fix: "remove the kubernetes.io/hostname nodeSelector/affinity (use a pool label or topology spread instead)".into(),
                });
            } else if here.len() as i64 > allowed {
                findings.push(Finding {
                    code: "UC-DRAIN-PDB-COLOCATED".into(),
                    severity: Severity::Warning,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: Some(pdb.key()),
                    pods: names,
                    message: format!(
                        "{}: {} pods under PodDisruptionBudget {} sit on this node but it allows {allowed}; the rest wait until the first replacements are Ready elsewhere (a delay; a stall if they cannot schedule)",
                        where_(p, node),
                        here.len(),
                        pdb.key()
                    ),
                    fix: "spread the replicas over nodes (topologySpreadConstraints or pod anti-affinity on kubernetes.io/hostname)".into(),
                });
            }
        }
        // Harms on this node.
        for pod in &on_node {
            if pod.controller.is_none() {
                findings.push(Finding {
                    code: "UC-HARM-NO-CONTROLLER".into(),
                    severity: Severity::Warning,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: None,
                    pods: vec![pod.key()],
                    message: format!(
                        "{}: pod {} has no controller; the drain evicts it and nothing recreates it (it is gone for good)",
                        where_(p, node),
                        pod.key()
                    ),
                    fix: "run it under a Deployment, StatefulSet or Job, or recreate it by hand after the roll".into(),
                });
            }
            if !pod.empty_dirs.is_empty() {
                findings.push(Finding {
                    code: "UC-HARM-EMPTYDIR".into(),
                    severity: Severity::Warning,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: None,
                    pods: vec![pod.key()],
                    message: format!(
                        "{}: pod {} keeps data in emptyDir {:?}; the drain evicts it anyway and the data is lost",
                        where_(p, node),
                        pod.key(),
                        pod.empty_dirs
                    ),
                    fix: "move data that must survive to a PersistentVolumeClaim".into(),
                });
            }
            if !pod.host_paths.is_empty() {
                findings.push(Finding {
                    code: "UC-HARM-LOCAL-DATA".into(),
                    severity: Severity::Warning,
                    cluster: key.clone(),
                    step: Some(p.step),
                    node: Some(node.to_string()),
                    pdb: None,
                    pods: vec![pod.key()],
                    message: format!(
                        "{}: pod {} writes to hostPath {:?}; the node's VM is deleted with the data",
                        where_(p, node),
                        pod.key(),
                        pod.host_paths
                    ),
                    fix: "move the data to a PersistentVolumeClaim".into(),
                });
            }
        }
    }

    // Workload-level harms over the rolling nodes.
    let mut workloads: BTreeMap<(String, String), Vec<&Pod>> = BTreeMap::new();
    for pod in &live {
        if !pod.drained() {
            continue;
        }
        if let Some(w) = pod.workload() {
            workloads
                .entry((pod.namespace.clone(), w))
                .or_default()
                .push(pod);
        }
    }
    for ((ns, w), members) in &workloads {
        let rolling: Vec<&&Pod> = members
            .iter()
            .filter(|p| p.node.as_ref().is_some_and(|n| place.contains_key(n)))
            .collect();
        let Some(first) = rolling
            .iter()
            .min_by_key(|p| place[p.node.as_ref().unwrap()].step)
        else {
            continue;
        };
        let fp = &place[first.node.as_ref().unwrap()];
        let names: Vec<String> = members.iter().map(|p| p.key()).collect();
        let has_pdb = members.iter().any(|p| !covering(p).is_empty());
        if members.len() == 1 {
            findings.push(Finding {
                code: "UC-HARM-SINGLE-REPLICA".into(),
                severity: Severity::Warning,
                cluster: key.clone(),
                step: Some(fp.step),
                node: first.node.clone(),
                pdb: None,
                pods: names,
                message: format!(
                    "{ns}/{w} runs one replica: it is down while step {} drains node {}",
                    fp.step,
                    first.node.as_deref().unwrap_or_default()
                ),
                fix: "run 2 or more replicas with a PodDisruptionBudget (maxUnavailable: 1)".into(),
            });
            continue;
        }
        if !has_pdb {
            findings.push(Finding {
                code: "UC-HARM-NO-PDB".into(),
                severity: Severity::Info,
                cluster: key.clone(),
                step: Some(fp.step),
                node: first.node.clone(),
                pdb: None,
                pods: names.clone(),
                message: format!("{ns}/{w} has {} replicas and no PodDisruptionBudget: nothing stops the drain from evicting them together", members.len()),
                fix: format!("add a PodDisruptionBudget for {ns}/{w} (maxUnavailable: 1)"),
            });
        }
        let nodes: BTreeSet<&str> = members.iter().filter_map(|p| p.node.as_deref()).collect();
        let pools: BTreeSet<Option<&str>> = nodes
            .iter()
            .map(|n| {
                place
                    .get(*n)
                    .map(|pl| pl.pool.as_deref())
                    .unwrap_or(Some("?"))
            })
            .collect();
        if nodes.len() == 1 && !has_pdb {
            findings.push(Finding {
                code: "UC-HARM-ONE-NODE".into(),
                severity: Severity::Warning,
                cluster: key.clone(),
                step: Some(fp.step),
                node: first.node.clone(),
                pdb: None,
                pods: names,
                message: format!("all {} replicas of {ns}/{w} run on node {} and no budget holds them: draining it stops the workload", members.len(), nodes.iter().next().unwrap_or(&"")),
                fix: "spread the replicas over nodes and add a PodDisruptionBudget".into(),
            });
        } else if pools.len() == 1 && rolling.len() == members.len() && nodes.len() > 1 {
            findings.push(Finding {
                code: "UC-HARM-ONE-POOL".into(),
                severity: Severity::Info,
                cluster: key.clone(),
                step: Some(fp.step),
                node: None,
                pdb: None,
                pods: names,
                message: format!(
                    "all replicas of {ns}/{w} run in {}: every one of them is evicted during step {}",
                    pools.iter().next().copied().flatten().map(|p| format!("pool {p}")).unwrap_or_else(|| "the control plane".into()),
                    fp.step
                ),
                fix: "spread the replicas over pools or zones (topologySpreadConstraints)".into(),
            });
        }
    }
    findings
}

#[cfg(test)]
mod budget_tests {
    use super::*;
    use IntOrPercent::{Int, Percent};

    #[test]
    fn budgets_follow_the_disruption_controllers_arithmetic() {
        // (minAvailable, maxUnavailable, matching pods, controllers' scale, healthy) =>
        // (expectedPods, desiredHealthy, disruptionsAllowed)
        type Row = (
            Option<IntOrPercent>,
            Option<IntOrPercent>,
            i64,
            i64,
            i64,
            (i64, i64, i64),
        );
        let table: &[Row] = &[
            // An integer minAvailable counts the matching pods.
            (Some(Int(2)), None, 3, 99, 3, (3, 2, 1)),
            (Some(Int(2)), None, 2, 2, 2, (2, 2, 0)),
            (Some(Int(2)), None, 3, 3, 1, (3, 2, 0)),
            // A percentage scales the controllers' replicas, rounding up: 50% of 3 is 2.
            (Some(Percent(50)), None, 3, 3, 3, (3, 2, 1)),
            (Some(Percent(100)), None, 3, 3, 3, (3, 3, 0)),
            (Some(Percent(0)), None, 3, 3, 3, (3, 0, 3)),
            // maxUnavailable is taken from the scale: 1 of 3 unavailable leaves 2 desired.
            (None, Some(Int(1)), 3, 3, 3, (3, 2, 1)),
            (None, Some(Int(0)), 3, 3, 3, (3, 3, 0)),
            // 34% of 3 rounds up to 2 unavailable.
            (None, Some(Percent(34)), 3, 3, 3, (3, 1, 2)),
            // More unavailable than expected: nobody desired.
            (None, Some(Int(5)), 3, 3, 3, (3, 0, 3)),
            // The scale counts replicas that are not (yet) pods.
            (None, Some(Int(1)), 2, 4, 2, (4, 3, 0)),
            // maxUnavailable wins when both are set.
            (Some(Int(3)), Some(Int(1)), 3, 3, 3, (3, 2, 1)),
            // Nothing expected: nothing allowed.
            (Some(Int(0)), None, 0, 0, 0, (0, 0, 0)),
            (None, None, 3, 3, 3, (0, 0, 0)),
        ];
        for (min, max, pods, scale, healthy, (expected, desired, allowed)) in table {
            assert_eq!(
                budget_status(*min, *max, *pods, *scale, *healthy),
                BudgetStatus {
                    expected_pods: *expected,
                    desired_healthy: *desired,
                    disruptions_allowed: *allowed
                },
                "min {min:?} max {max:?} pods {pods} scale {scale} healthy {healthy}"
            );
        }
    }

    #[test]
    fn only_scaled_forms_read_the_controllers() {
        assert!(!needs_scale(Some(Int(1)), None));
        assert!(needs_scale(Some(Percent(50)), None));
        assert!(needs_scale(None, Some(Int(1))));
        assert!(!needs_scale(None, None));
    }
}
