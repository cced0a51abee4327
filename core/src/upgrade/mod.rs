//! `upgrade-check`: which TKG clusters of a Supervisor will roll for a change, in what order, and what
//! will block or hurt the roll — as pure functions over the Supervisor's and workload clusters' objects.
//!
//! - [`model`]: TanzuKubernetesCluster (v1alpha2/v1alpha3), Cluster API `Cluster` with topology,
//!   MachineDeployments and Machines, parsed from JSON values.
//! - [`forecast`]: the roll forecast per trigger (`--tkr`, `--set`, TKG Service upgrade, vCenter
//!   upgrade with VMware's table kept as versioned data).
//! - [`change`]: `-f changed-cluster.yaml`, field by field against the live object.
//! - [`feasibility`]: whether the roll can start and finish (OS image, VM/storage class, quota, pod CIDR).
//! - [`drain`]: drain blockers and harms in roll order (PodDisruptionBudgets, unmanaged pods, local data).
//!
//! Every finding carries a stable check code ([`CHECKS`]), a severity, evidence and a fix. Checks that
//! need the workload cluster are listed in the report's coverage as skipped when it cannot be read —
//! never as passed.

pub mod apis;
pub mod change;
pub mod drain;
pub mod feasibility;
pub mod forecast;
pub mod model;

use serde::Serialize;
use serde_json::Value;

use forecast::{ClusterForecast, Rolls, normalize_tkr};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the roll goes on as forecast.
    Info,
    /// The roll goes on but not as the user may expect (paused, held, slowed, harmful).
    Warning,
    /// The roll will not start, or stalls.
    Blocker,
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable check code from [`CHECKS`].
    pub code: String,
    /// How bad it is (the check's default severity unless the finding says otherwise).
    pub severity: Severity,
    /// `namespace/name` of the TKG cluster.
    pub cluster: String,
    /// Step of the roll where it bites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The workload cluster's node concerned, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// PodDisruptionBudget(s) `namespace/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdb: Option<String>,
    /// The pods concerned, `namespace/name`; empty when the finding is not about pods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    /// What was found, as one sentence for the report.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// Where a check's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Objects on the Supervisor.
    Supervisor,
    /// Pods, PDBs and nodes of each workload cluster.
    Workload,
}

/// A check: stable code, default severity, data scope, what it finds, and the rule's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The stable code (`UC-DRAIN-PDB-ZERO`); a code never changes meaning.
    pub code: &'static str,
    /// The severity its findings carry by default.
    pub severity: Severity,
    /// Where its data comes from: without the workload cluster, a [`Scope::Workload`] check is
    /// reported as skipped, never as passed.
    pub scope: Scope,
    /// What it finds, as one line.
    pub title: &'static str,
    /// The source of its rule: a repository path of the real system or a VMware document URL.
    pub source: &'static str,
}

const CAPI_DRAIN: &str = "kubernetes-sigs/cluster-api internal/controllers/machine/drain/drain.go";
const K8S_EVICTION: &str = "kubernetes/kubernetes pkg/registry/core/pod/storage/eviction.go";

/// Every check `upgrade-check` runs; codes never change meaning.
pub const CHECKS: &[Check] = &[
    Check {
        code: "UC-ROLL-PAUSED",
        severity: Severity::Warning,
        scope: Scope::Supervisor,
        title: "cluster is paused: the roll waits until it is resumed",
        source: "kubernetes-sigs/cluster-api api/core/v1beta2/common_types.go",
    },
    Check {
        code: "UC-ROLL-PENDING",
        severity: Severity::Warning,
        scope: Scope::Supervisor,
        title: "a roll is already pending or under way",
        source: "kubernetes-sigs/cluster-api docs/book/src/developer/core/controllers/machine-deployment.md",
    },
    Check {
        code: "UC-ROLL-HELD",
        severity: Severity::Info,
        scope: Scope::Supervisor,
        title: "pools deferred or held: the upgrade stays incomplete until the annotations are removed",
        source: forecast::SRC_CAPI_ANNOTATIONS,
    },
    Check {
        code: "UC-TKR-MINOR-SKIP",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "target TKR skips a minor version or downgrades",
        source: forecast::SRC_CAPI_OPERATE,
    },
    Check {
        code: "UC-TKR-NOT-FOUND",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "target TKR/KR does not exist on the Supervisor",
        source: "https://docs.vmware.com/fr/VMware-vSphere/8.0/vsphere-with-tanzu-tkg/GUID-DC249425-2460-4432-A435-4BDFE1F4F5EA.html",
    },
    Check {
        code: "UC-TKR-NOT-READY",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "target TKR/KR is not Ready or not Compatible",
        source: "vmware-tanzu/tanzu-framework apis/run/v1alpha3/tanzukubernetesrelease_types.go",
    },
    Check {
        code: "UC-CLASS-NOT-FOUND",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "target ClusterClass does not exist in the cluster's namespace (or vmware-system-vks-public)",
        source: forecast::SRC_CAPI_CHANGE_CLASS,
    },
    Check {
        code: "UC-CLASS-INCOMPATIBLE",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "target ClusterClass lacks a MachineDeployment class a pool uses: the rebase is refused",
        source: forecast::SRC_CAPI_CHANGE_CLASS,
    },
    Check {
        code: "UC-OSIMAGE-NONE",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "no OS image of the target release matches the cluster's resolve-os-image selector",
        source: feasibility::SRC_OS_IMAGE,
    },
    Check {
        code: "UC-OSIMAGE-AMBIGUOUS",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "the resolve-os-image selector matches more than one OS image of the target release",
        source: feasibility::SRC_OS_IMAGE,
    },
    Check {
        code: "UC-VMCLASS-UNAVAILABLE",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "a VM class the cluster uses is no longer available to its vSphere Namespace",
        source: feasibility::SRC_VM_CLASS,
    },
    Check {
        code: "UC-STORAGECLASS-UNAVAILABLE",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "a storage class the cluster uses is not in its vSphere Namespace's ResourceQuota",
        source: feasibility::SRC_STORAGE_QUOTA,
    },
    Check {
        code: "UC-QUOTA-SURGE",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "the namespace's CPU/memory quota has no room for the surge VMs of its rolling clusters",
        source: feasibility::SRC_STORAGE_QUOTA,
    },
    Check {
        code: "UC-POD-CIDR",
        severity: Severity::Blocker,
        scope: Scope::Supervisor,
        title: "the pods CIDR has fewer /24 node blocks than nodes plus surge VMs",
        source: feasibility::SRC_POD_CIDR,
    },
    Check {
        code: "UC-DRAIN-PDB-ZERO",
        severity: Severity::Blocker,
        scope: Scope::Workload,
        title: "PodDisruptionBudget allows 0 disruptions on a rolling node",
        source: CAPI_DRAIN,
    },
    Check {
        code: "UC-DRAIN-MULTIPLE-PDBS",
        severity: Severity::Blocker,
        scope: Scope::Workload,
        title: "pod under more than one PodDisruptionBudget (eviction answers 500)",
        source: K8S_EVICTION,
    },
    Check {
        code: "UC-DRAIN-NO-RESCHEDULE",
        severity: Severity::Blocker,
        scope: Scope::Workload,
        title: "budgeted pods pinned to the draining node: the budget never recovers",
        source: CAPI_DRAIN,
    },
    Check {
        code: "UC-DRAIN-PDB-COLOCATED",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "more co-located replicas than the budget allows: drain waits for replacements",
        source: CAPI_DRAIN,
    },
    Check {
        code: "UC-HARM-NO-CONTROLLER",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "pod without a controller is evicted for good",
        source: "kubernetes-sigs/cluster-api internal/controllers/machine/drain/filters.go",
    },
    Check {
        code: "UC-HARM-EMPTYDIR",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "emptyDir data is lost",
        source: "kubernetes-sigs/cluster-api internal/controllers/machine/drain/filters.go",
    },
    Check {
        code: "UC-HARM-LOCAL-DATA",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "hostPath data is deleted with the node's VM",
        source: forecast::SRC_VMWARE,
    },
    Check {
        code: "UC-HARM-SINGLE-REPLICA",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "single replica: down while its node drains",
        source: forecast::SRC_VMWARE,
    },
    Check {
        code: "UC-HARM-NO-PDB",
        severity: Severity::Info,
        scope: Scope::Workload,
        title: "several replicas and no PodDisruptionBudget",
        source: forecast::SRC_VMWARE,
    },
    Check {
        code: "UC-HARM-ONE-NODE",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "all replicas on one node without a budget",
        source: forecast::SRC_VMWARE,
    },
    Check {
        code: "UC-HARM-ONE-POOL",
        severity: Severity::Info,
        scope: Scope::Workload,
        title: "all replicas in one pool",
        source: forecast::SRC_VMWARE,
    },
    Check {
        code: "UC-API-REMOVED-MANIFEST",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "an object was last applied (kapp, kubectl) with an API version the target release no longer serves",
        source: apis::SRC_DEPRECATION_GUIDE,
    },
    Check {
        code: "UC-API-REMOVED-CALLED",
        severity: Severity::Warning,
        scope: Scope::Workload,
        title: "clients requested an API version the target release no longer serves (apiserver_requested_deprecated_apis)",
        source: apis::SRC_DEPRECATION_GUIDE,
    },
];

/// The check with this code.
pub fn check(code: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.code == code)
}

impl Finding {
    /// A finding of check `code` on `cluster` (`namespace/name`), its severity read from [`CHECKS`]
    /// (`Info` for a code not there); no step, node, PDB or pods yet.
    pub fn new(code: &str, cluster: String, message: String, fix: &str) -> Finding {
        Finding {
            code: code.to_owned(),
            severity: check(code).map(|c| c.severity).unwrap_or(Severity::Info),
            cluster,
            step: None,
            node: None,
            pdb: None,
            pods: Vec::new(),
            message,
            fix: fix.to_owned(),
        }
    }
}

fn finding(code: &str, f: &ClusterForecast, message: String, fix: &str) -> Finding {
    Finding::new(code, format!("{}/{}", f.namespace, f.name), message, fix)
}

/// Supervisor-side findings of a forecast: paused, pending, held pools, refused version steps, and —
/// for a `--tkr` trigger with the TKR/KR objects listed — a missing or unready target release.
pub fn supervisor_findings(
    forecasts: &[ClusterForecast],
    target_tkr: Option<&str>,
    tkrs: Option<&[Value]>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for f in forecasts {
        if f.paused && f.rolls != Rolls::No {
            out.push(finding("UC-ROLL-PAUSED", f, format!("{}/{} is paused: it rolls only once resumed, possibly long after the rest of the fleet", f.namespace, f.name), "resume the cluster (remove spec.paused / the cluster.x-k8s.io/paused annotation) when you want it to roll, or leave it out of this change"));
        }
        for p in &f.pending {
            out.push(finding("UC-ROLL-PENDING", f, format!("already rolling or waiting: {p}"), "let the running roll finish (kubectl get machines -n NAMESPACE) before starting another change"));
        }
        let held: Vec<String> = f
            .pools
            .iter()
            .filter(|p| {
                p.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("defer") || n.starts_with("held"))
            })
            .map(|p| p.name.clone())
            .collect();
        if !held.is_empty() {
            out.push(finding(
                "UC-ROLL-HELD",
                f,
                format!("pools {held:?} do not roll now (defer-upgrade / hold-upgrade-sequence)"),
                "remove the annotation from the pool's topology metadata when the pool may roll",
            ));
        }
        match f.rule.id.as_str() {
            "CAPI-CLASS-NOT-FOUND" => out.push(finding(
                "UC-CLASS-NOT-FOUND",
                f,
                f.rule.text.clone(),
                "list the classes (kubectl get clusterclasses -A) and pick one in the cluster's namespace or vmware-system-vks-public",
            )),
            "CAPI-CLASS-INCOMPATIBLE" => out.push(finding(
                "UC-CLASS-INCOMPATIBLE",
                f,
                f.rule.text.clone(),
                "pick a ClusterClass that defines every MachineDeployment class the cluster's pools use, or change those pools' class first",
            )),
            _ => {}
        }
        if matches!(
            f.rule.id.as_str(),
            "CAPI-VERSION-MINOR-SKIP" | "CAPI-VERSION-DOWNGRADE"
        ) {
            out.push(finding(
                "UC-TKR-MINOR-SKIP",
                f,
                f.rule.text.clone(),
                "upgrade one minor version at a time: pick the TKR of the next minor first",
            ));
        }
    }
    if let (Some(target), Some(tkrs)) = (target_tkr, tkrs) {
        let want = normalize_tkr(target);
        let found = tkrs.iter().find(|t| {
            model::s(t, &["metadata", "name"]).map(normalize_tkr) == Some(want.clone())
                || model::s(t, &["spec", "version"]).map(normalize_tkr) == Some(want.clone())
        });
        let rolling: Vec<&ClusterForecast> =
            forecasts.iter().filter(|f| f.rolls != Rolls::No).collect();
        for f in rolling {
            match found {
                None => out.push(finding("UC-TKR-NOT-FOUND", f, format!("no TanzuKubernetesRelease/KubernetesRelease {target} on the Supervisor"), "list the releases (kubectl get tkr / kubectl get kr) and pick one that exists; sync the content library if it is missing")),
                Some(t) => {
                    let cond = |ty: &str| {
                        model::at(t, &["status", "conditions"]).and_then(Value::as_array).and_then(|cs| {
                            cs.iter().find(|c| model::s(c, &["type"]) == Some(ty)).and_then(|c| model::s(c, &["status"]).map(str::to_owned))
                        })
                    };
                    let labels = model::string_map(model::at(t, &["metadata", "labels"]));
                    let bad: Vec<String> = ["Ready", "Compatible"]
                        .iter()
                        .filter(|ty| cond(ty).as_deref() != Some("True"))
                        .map(|ty| format!("{ty}={}", cond(ty).unwrap_or_else(|| "unknown".into())))
                        .chain(labels.keys().filter(|k| {
                            let k = k.rsplit('/').next().unwrap_or(k);
                            matches!(k, "incompatible" | "deactivated" | "invalid")
                        }).map(|k| format!("label {k}")))
                        .collect();
                    if !bad.is_empty() {
                        out.push(finding("UC-TKR-NOT-READY", f, format!("target release {target} is not usable: {}", bad.join(", ")), "pick a release that is Ready and Compatible (kubectl get tkr shows READY and COMPATIBLE)"));
                    }
                }
            }
        }
    }
    out
}

/// Exit code: warnings found (`--fail-on warning`).
pub const EXIT_WARNINGS: u8 = 4;
/// Exit code: blockers found (`--fail-on blocker` or `warning`).
pub const EXIT_BLOCKERS: u8 = 5;
/// Exit code: some cluster rolls or may roll (`--fail-on roll`).
pub const EXIT_ROLLS: u8 = 6;

/// What `--fail-on` gates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Fail when any blocker is found.
    Blocker,
    /// Fail when any warning or blocker is found.
    Warning,
    /// Fail when any cluster rolls (yes or maybe).
    Roll,
}

/// Exit code for scripts (documented in the command's help): `0` nothing at or above the gate;
/// [`EXIT_WARNINGS`] (gate `warning`); [`EXIT_BLOCKERS`] (gates `blocker` and `warning`);
/// [`EXIT_ROLLS`] (gate `roll`: some cluster rolls, yes or maybe). 1, 2 and 3 stay the plugin's
/// failure, usage and timeout codes. Without `--fail-on` the exit is 0 whatever was found.
pub fn exit_code(
    fail_on: Option<FailOn>,
    findings: &[Finding],
    forecasts: &[ClusterForecast],
) -> u8 {
    let worst = findings.iter().map(|f| f.severity).max();
    let rolls = forecasts.iter().any(|f| f.rolls != Rolls::No);
    match (fail_on, worst) {
        (None, _) => 0,
        (Some(FailOn::Blocker | FailOn::Warning), Some(Severity::Blocker)) => EXIT_BLOCKERS,
        (Some(FailOn::Warning), Some(Severity::Warning)) => EXIT_WARNINGS,
        (Some(FailOn::Roll), _) if rolls => EXIT_ROLLS,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
