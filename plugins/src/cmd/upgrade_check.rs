//! `kubectl supsvc upgrade-check`: which TKG clusters of the Supervisor roll for a change, in what order,
//! and what stops them.
//!
//! Reads the Supervisor with one LIST per kind across all namespaces (never a GET per object), so the
//! number of requests does not grow with the fleet: TanzuKubernetesClusters, Clusters,
//! MachineDeployments, Machines, VirtualMachineClasses, VirtualMachineClassBindings, ResourceQuotas,
//! and for a version change TanzuKubernetesReleases and OSImages, for `--class` ClusterClasses. The decisions are
//! `supsvc_core::upgrade`'s.
//!
//! Drain blockers and harms need each rolling cluster's pods and PodDisruptionBudgets: the command
//! reads the cluster's admin kubeconfig where Cluster API keeps it, the Supervisor's Secret
//! `<cluster>-kubeconfig` (key `value`) in the cluster's vSphere Namespace, or the context named after
//! the cluster in `--workload-kubeconfig` (as `kubectl vsphere login --tanzu-kubernetes-cluster-name`
//! writes it), and lists both, up to [`WORKLOAD_CONCURRENCY`] clusters at a time. A cluster it cannot
//! read (Secret forbidden or missing, server unreachable) is listed under coverage as skipped, with
//! why, and its workload checks did not run for it.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 error; 2 usage; 4 warnings (`--fail-on warning`);
//! 5 blockers (`--fail-on blocker|warning`); 6 a cluster rolls or may roll (`--fail-on roll`).

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;
use serde_json::Value;
use supsvc_core::upgrade::forecast::{self, ClusterForecast, KubeVersion, Rolls, Trigger};
use supsvc_core::upgrade::model::{self, Cluster};
use supsvc_core::upgrade::{
    self, CHECKS, FailOn, Finding, Scope, Severity, apis, change, drain, feasibility,
};

use crate::api::retrying;
use crate::cluster::Cluster as Connection;
use crate::error::{Failure, Result};
use crate::output::table;

/// Output formats of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Yaml,
    Markdown,
}

/// `--fail-on` gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Gate {
    /// Exit 5 when a blocker is found.
    Blocker,
    /// Exit 4 on warnings, 5 on blockers.
    Warning,
    /// Exit 6 when any cluster rolls or may roll.
    Roll,
}

#[derive(Debug, Args)]
#[command(after_help = "Triggers (exactly one):\n  \
  --tkr v1.29.4---vmware.3-fips.1-tkg.1      move every cluster to this TKR/KR\n  \
  --set vmClass=best-effort-large [--pool P]  set a ClusterClass variable (VALUE is JSON, else a string)\n  \
  --class builtin-generic-v3.2.0              rebase ClusterClass clusters onto another ClusterClass\n  \
  -f changed-cluster.yaml                     a changed TanzuKubernetesCluster or Cluster: each field that\n  \
                                              differs from the live object, whether it rolls, rule and source\n  \
  --tkg-service-upgrade                       upgrade the TKG Service\n  \
  --vcenter-upgrade --from 8.0.1 --to 8.0u2c   upgrade vCenter (VMware's rolling-update table)\n\n\
Exit codes: 0 nothing at or above --fail-on (always 0 without it); 1 error; 2 usage;\n  \
4 warnings (--fail-on warning); 5 blockers (--fail-on blocker|warning); 6 a cluster rolls or may roll (--fail-on roll).\n\n\
Before the roll: the target release is Ready and Compatible, its OS image resolves exactly once\n  \
(resolve-os-image), the VM classes and storage classes the clusters use are still offered to their\n  \
vSphere Namespace (VirtualMachineClass / VirtualMachineClassBinding, ResourceQuota), the namespace\n  \
quota holds the surge VMs, the pods CIDR has a /24 for every node plus the surge (UC-OSIMAGE-*,\n  \
UC-VMCLASS-UNAVAILABLE, UC-STORAGECLASS-UNAVAILABLE, UC-QUOTA-SURGE, UC-POD-CIDR: blockers).\n\n\
Each rolling cluster's own API server is read (the Supervisor's <cluster>-kubeconfig Secret,\n  \
or --workload-kubeconfig): drain blockers in roll order (UC-DRAIN-*), what the roll hurts\n  \
(UC-HARM-*), removed API versions still applied or called (UC-API-REMOVED-*).\n  \
--supervisor-only reads the Supervisor alone.\n\n\
Checks that could not run are listed under coverage as skipped, never as passed.")]
pub struct UpgradeCheckArgs {
    /// Target TKR/KR name (or version) for every cluster.
    #[arg(long, value_name = "NAME", group = "trigger")]
    pub tkr: Option<String>,
    /// Set a ClusterClass variable, VAR=VALUE (VALUE as JSON when it parses, else a string).
    #[arg(long = "set", value_name = "VAR=VALUE", group = "trigger")]
    pub set: Option<String>,
    /// With --set: set the variable as an override of this pool only.
    #[arg(long, value_name = "POOL", requires = "set")]
    pub pool: Option<String>,
    /// Rebase every ClusterClass cluster onto this ClusterClass.
    #[arg(long = "class", value_name = "CLUSTERCLASS", group = "trigger")]
    pub class: Option<String>,
    /// A changed TanzuKubernetesCluster or Cluster manifest (YAML or JSON) to compare with the live object.
    #[arg(short = 'f', long = "filename", value_name = "FILE", group = "trigger")]
    pub file: Option<std::path::PathBuf>,
    /// Forecast a TKG Service upgrade.
    #[arg(long, group = "trigger")]
    pub tkg_service_upgrade: bool,
    /// Forecast a vCenter (and Supervisor) upgrade; needs --from and --to.
    #[arg(long, group = "trigger", requires_all = ["from", "to"])]
    pub vcenter_upgrade: bool,
    /// Current vCenter release, e.g. 8.0.0, 8.0.0b, 8.0u1.
    #[arg(long, value_name = "RELEASE", requires = "vcenter_upgrade")]
    pub from: Option<String>,
    /// Target vCenter release, e.g. 8.0u2c.
    #[arg(long, value_name = "RELEASE", requires = "vcenter_upgrade")]
    pub to: Option<String>,
    /// With --vcenter-upgrade: whether the embedded Harbor registry is enabled (8.0 GA -> 8.0.0b/c row).
    #[arg(long, value_name = "BOOL", requires = "vcenter_upgrade")]
    pub embedded_harbor: Option<bool>,
    /// With --vcenter-upgrade: the TKG Service version (from 3.0 on vCenter upgrades do not roll clusters).
    #[arg(long, value_name = "VERSION", requires = "vcenter_upgrade")]
    pub tkg_service_version: Option<String>,
    /// A kubeconfig with a context named after each workload cluster (as `kubectl vsphere login
    /// --tanzu-kubernetes-cluster-name NAME` writes it), used instead of the cluster's
    /// `<cluster>-kubeconfig` Secret on the Supervisor.
    #[arg(long, value_name = "FILE")]
    pub workload_kubeconfig: Option<std::path::PathBuf>,
    /// Read the Supervisor only: no workload cluster is contacted, and the workload checks (drain
    /// blockers, harms, removed APIs) are listed as skipped.
    #[arg(long)]
    pub supervisor_only: bool,
    /// Only these vSphere Namespaces (repeatable; default: all).
    #[arg(long = "vsphere-namespace", value_name = "NS")]
    pub vsphere_namespaces: Vec<String>,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    /// Exit non-zero when findings reach this level (see exit codes below).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub fail_on: Option<Gate>,
}

/// What the command does, decided from the flags before any request.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub trigger: Trigger,
    /// `-f FILE`: the changed manifest to read (the trigger's changes are filled in by [`build`]).
    pub file: Option<std::path::PathBuf>,
    pub namespaces: Vec<String>,
    pub format: Format,
    pub fail_on: Option<FailOn>,
    /// `--workload-kubeconfig`.
    pub workload_kubeconfig: Option<std::path::PathBuf>,
    /// `--supervisor-only`.
    pub supervisor_only: bool,
}

impl Options {
    /// Validates the flags into options; errors say which flag to give.
    pub fn from_args(args: &UpgradeCheckArgs) -> Result<Options> {
        if args.pool.is_some() && args.set.is_none() {
            return Err(Failure::usage(
                "--pool applies to --set only",
                "write e.g. --set vmClass=best-effort-large --pool pool-a",
            ));
        }
        let trigger = if let Some(name) = &args.tkr {
            Trigger::Tkr { name: name.clone() }
        } else if let Some(set) = &args.set {
            let Some((name, value)) = set.split_once('=').filter(|(n, _)| !n.trim().is_empty())
            else {
                return Err(Failure::usage(
                    format!("--set {set:?} is not VAR=VALUE"),
                    "write e.g. --set vmClass=best-effort-large",
                ));
            };
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            Trigger::SetVariable {
                name: name.trim().to_owned(),
                value,
                pool: args.pool.clone(),
            }
        } else if let Some(name) = &args.class {
            if name.trim().is_empty() {
                return Err(Failure::usage(
                    "--class needs a ClusterClass name",
                    "write e.g. --class builtin-generic-v3.2.0 (kubectl get clusterclasses -A)",
                ));
            }
            Trigger::Class {
                name: name.trim().to_owned(),
                offered: Vec::new(),
            }
        } else if args.file.is_some() {
            Trigger::Manifest {
                kind: String::new(),
                namespace: String::new(),
                name: String::new(),
                changes: Vec::new(),
            }
        } else if args.tkg_service_upgrade {
            Trigger::TkgServiceUpgrade
        } else if args.vcenter_upgrade {
            Trigger::VcenterUpgrade {
                from: args.from.clone().unwrap_or_default(),
                to: args.to.clone().unwrap_or_default(),
                embedded_harbor: args.embedded_harbor,
                tkg_service_version: args.tkg_service_version.clone(),
            }
        } else {
            return Err(Failure::usage(
                "upgrade-check needs a trigger",
                "give one of --tkr NAME, --set VAR=VALUE, --class CLUSTERCLASS, -f changed-cluster.yaml, --tkg-service-upgrade, --vcenter-upgrade --from X --to Y",
            ));
        };
        Ok(Options {
            trigger,
            file: args.file.clone(),
            namespaces: args.vsphere_namespaces.clone(),
            workload_kubeconfig: args.workload_kubeconfig.clone(),
            supervisor_only: args.supervisor_only,
            format: args.output,
            fail_on: args.fail_on.map(|g| match g {
                Gate::Blocker => FailOn::Blocker,
                Gate::Warning => FailOn::Warning,
                Gate::Roll => FailOn::Roll,
            }),
        })
    }
}

/// One line of the coverage section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// A check code, or `read:<resource>` for a list the report depends on.
    pub item: String,
    /// `ran`; `partial` (a workload check run for some rolling clusters, not all: the `workload:`
    /// lines say which); `skipped`; or `not-applicable`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Totals for a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub clusters: usize,
    pub rolls: usize,
    pub maybe: usize,
    pub node_replacements: u32,
    pub blockers: usize,
    pub warnings: usize,
    pub skipped_checks: usize,
    /// Requests sent to the Supervisor (LISTs).
    pub requests: usize,
}

/// The whole report (`-o json|yaml` prints exactly this).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub trigger: Trigger,
    pub summary: Summary,
    pub clusters: Vec<ClusterForecast>,
    pub findings: Vec<Finding>,
    pub coverage: Vec<Coverage>,
    /// Objects that could not be read, named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The result of listing one kind: its items, or why not.
enum Listed {
    Items(Vec<Value>),
    /// 404: the API is not served here.
    NotServed,
    /// 403: no access.
    Forbidden(String),
}

async fn list(conn: &Connection, r: &ApiResource, requests: &mut usize) -> Result<Listed> {
    let api: Api<DynamicObject> = Api::all_with(conn.client.clone(), r);
    *requests += 1;
    let params = ListParams::default();
    match retrying(None, || api.list(&params)).await {
        Ok(l) => Ok(Listed::Items(
            l.items
                .into_iter()
                .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
                .collect(),
        )),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Listed::NotServed),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(Listed::Forbidden(s.message.clone())),
        Err(e) => Err(Failure::from_kube(
            &e,
            &format!("list {}.{} --all-namespaces", r.plural, r.group),
            &conn.server,
        )),
    }
}

/// Lists the first served version of a kind; `(items, version read, problem)`.
async fn list_first(
    conn: &Connection,
    group: &str,
    versions: &[&str],
    kind: &str,
    plural: &str,
    requests: &mut usize,
    coverage: &mut Vec<Coverage>,
) -> Result<Option<Vec<Value>>> {
    for v in versions {
        match list(conn, &resource(group, v, kind, plural), requests).await? {
            Listed::Items(items) => {
                coverage.push(Coverage {
                    item: format!("read:{plural}.{group}/{v}"),
                    status: "ran".into(),
                    reason: Some(format!("{} objects", items.len())),
                });
                return Ok(Some(items));
            }
            Listed::NotServed => continue,
            Listed::Forbidden(m) => {
                coverage.push(Coverage {
                    item: format!("read:{plural}.{group}"),
                    status: "skipped".into(),
                    reason: Some(format!("forbidden: {m}")),
                });
                return Ok(None);
            }
        }
    }
    coverage.push(Coverage {
        item: format!("read:{plural}.{group}"),
        status: "not-applicable".into(),
        reason: Some(format!(
            "not served by this Supervisor (tried {})",
            versions.join(", ")
        )),
    });
    Ok(None)
}

fn in_scope(v: &Value, namespaces: &[String]) -> bool {
    namespaces.is_empty()
        || v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .is_some_and(|ns| namespaces.iter().any(|n| n == ns))
}

/// What was read from the Supervisor (one LIST per kind).
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub tkcs: Vec<Value>,
    pub clusters: Vec<Value>,
    pub machine_deployments: Vec<Value>,
    pub machines: Vec<Value>,
    /// TKRs/KRs, when listed (`--tkr`) and readable.
    pub tkrs: Option<Vec<Value>>,
    /// ClusterClasses, when listed (`--class`) and readable.
    pub cluster_classes: Option<Vec<Value>>,
    /// The changed manifest of `-f`, parsed.
    pub changed: Option<Value>,
    /// OSImages, when listed (a version change) and readable.
    pub osimages: Option<Vec<Value>>,
    /// VirtualMachineClasses (namespace-scoped from VM Operator v1alpha2), when readable.
    pub vm_classes: Option<Vec<Value>>,
    /// VirtualMachineClassBindings (VM Operator v1alpha1), when readable.
    pub vm_class_bindings: Option<Vec<Value>>,
    /// ResourceQuotas of every namespace, when readable.
    pub resource_quotas: Option<Vec<Value>>,
    /// What could and could not be read.
    pub coverage: Vec<Coverage>,
    /// Requests sent.
    pub requests: usize,
    /// What each rolling cluster's own API server gave, by `namespace/name`.
    pub workloads: BTreeMap<String, WorkloadRead>,
}

/// How many workload clusters are read at once.
pub const WORKLOAD_CONCURRENCY: usize = 8;

/// What one workload cluster gave.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadRead {
    /// Its pods and PodDisruptionBudgets, all namespaces.
    Read {
        /// Where the kubeconfig came from (the Secret, or the file's context).
        source: String,
        pods: Vec<Value>,
        pdbs: Vec<Value>,
        /// Objects of the kinds whose versions the hop removes (their recorded manifests are read).
        manifests: Vec<Value>,
        /// `GET /metrics`, or why it could not be read.
        metrics: std::result::Result<String, String>,
    },
    /// Not read, and why (with what to do).
    Unread { reason: String },
}

/// Builds the report from the objects read; pure, so it is tested without a server.
pub fn build(opts: &Options, objects: Objects) -> Result<Report> {
    let Objects {
        tkcs,
        clusters,
        machine_deployments: mds,
        machines,
        tkrs,
        cluster_classes,
        changed,
        osimages,
        vm_classes,
        vm_class_bindings,
        resource_quotas,
        mut coverage,
        requests,
        workloads,
    } = objects;
    let trigger = resolve_trigger(&opts.trigger, &tkcs, &clusters, cluster_classes, changed)?;
    let opts = &Options {
        trigger,
        ..opts.clone()
    };
    let tkrs = tkrs.as_deref();
    let keep = |vs: &[Value]| -> Vec<Value> {
        vs.iter()
            .filter(|v| in_scope(v, &opts.namespaces))
            .cloned()
            .collect()
    };
    let (mut fleet, errors): (Vec<Cluster>, _) = model::fleet(&keep(&tkcs), &keep(&clusters));
    if let Trigger::Manifest {
        namespace, name, ..
    } = &opts.trigger
    {
        // Only the cluster the file changes is forecast.
        fleet.retain(|c| &c.namespace == namespace && &c.name == name);
    }
    let mds = model::parse_machine_deployments(&keep(&mds));
    let machines = model::parse_machines(&keep(&machines), &mds);
    let mut forecasts = forecast::forecast(&fleet, &mds, &machines, &opts.trigger)
        .map_err(|e| Failure::usage(e.to_string(), "fix the trigger's flags"))?;
    forecast::sort(&mut forecasts);
    // The release moved to (--tkr, or -f changing the version) must exist and be ready.
    let version_target = opts.trigger.version_target();
    let target = version_target.as_deref();
    let mut findings = upgrade::supervisor_findings(&forecasts, target, tkrs);
    // Point 4: can the roll start and finish.
    if let (Some(t), Some(images)) = (&version_target, &osimages) {
        findings.extend(feasibility::os_image_findings(
            &fleet,
            &forecasts,
            t,
            tkrs.unwrap_or_default(),
            images,
        ));
    }
    let namespaces: Vec<&str> = fleet.iter().map(|c| c.namespace.as_str()).collect();
    let offers = feasibility::namespace_offers(
        &namespaces,
        vm_classes.as_deref(),
        vm_class_bindings.as_deref(),
        resource_quotas.as_deref(),
    );
    let sizes = feasibility::class_sizes(vm_classes.as_deref().unwrap_or_default());
    findings.extend(feasibility::placement_findings(
        &fleet, &forecasts, &offers, &sizes,
    ));
    findings.extend(feasibility::pod_cidr_findings(&fleet, &forecasts));
    // Points 2 and 3: what the drain of each rolling cluster meets, from its own API server.
    let mut unread_workloads = Vec::new();
    let mut read_workloads = 0;
    for f in forecasts
        .iter()
        .filter(|f| f.rolls != Rolls::No && !opts.supervisor_only)
    {
        let key = format!("{}/{}", f.namespace, f.name);
        let Some(cluster) = fleet.iter().find(|c| c.key() == key) else {
            continue;
        };
        match workloads.get(&key) {
            Some(WorkloadRead::Read {
                source,
                pods,
                pdbs,
                manifests,
                metrics,
            }) => {
                let pods: Vec<drain::Pod> = pods.iter().map(drain::Pod::from_value).collect();
                let pdbs: Vec<drain::Pdb> = pdbs.iter().map(drain::Pdb::from_value).collect();
                findings.extend(drain::analyse(cluster, f, &machines, &pods, &pdbs));
                let mut read = format!(
                    "{} pods, {} PodDisruptionBudgets ({source})",
                    pods.len(),
                    pdbs.len()
                );
                if let Some((from, to)) =
                    apis::hop(cluster.version.as_deref(), version_target.as_deref())
                {
                    findings.extend(apis::findings(
                        &key,
                        from,
                        to,
                        manifests,
                        metrics.as_deref().ok(),
                    ));
                    read.push_str(&format!(
                        "; {} objects of kinds 1.{}->1.{} removes a version of",
                        manifests.len(),
                        from.minor,
                        to.minor
                    ));
                    if let Err(why) = metrics {
                        read.push_str(&format!("; /metrics not read: {why}"));
                    }
                }
                read_workloads += 1;
                coverage.push(Coverage {
                    item: format!("workload:{key}"),
                    status: "ran".into(),
                    reason: Some(read),
                });
            }
            other => {
                let reason = match other {
                    Some(WorkloadRead::Unread { reason }) => reason.clone(),
                    _ => "not read".to_owned(),
                };
                unread_workloads.push(key.clone());
                coverage.push(Coverage {
                    item: format!("workload:{key}"),
                    status: "skipped".into(),
                    reason: Some(reason),
                });
            }
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.cluster.cmp(&b.cluster))
            .then(a.step.cmp(&b.step))
    });
    // A list that could not be read (forbidden, not served) leaves its checks unrun, said so.
    let mds_read = !coverage
        .iter()
        .any(|c| c.item.starts_with("read:machinedeployments.") && c.status != "ran");
    let class_read = matches!(&opts.trigger, Trigger::Class { offered, .. } if !offered.is_empty());
    for check in CHECKS {
        let (status, reason) = match check.scope {
            Scope::Workload if opts.supervisor_only => (
                "skipped",
                Some("--supervisor-only: no workload cluster was read".to_owned()),
            ),
            Scope::Workload => match (read_workloads, unread_workloads.len()) {
                (0, 0) => ("not-applicable", Some("no cluster rolls".to_owned())),
                (_, 0) => ("ran", None),
                (0, _) => (
                    "skipped",
                    Some("no rolling cluster's pods and PodDisruptionBudgets could be read (see workload:*)".to_owned()),
                ),
                (_, n) => (
                    "partial",
                    Some(format!("not run for {n} cluster(s) whose API server could not be read: {}", unread_workloads.join(", "))),
                ),
            },
            Scope::Supervisor if check.code.starts_with("UC-TKR-NOT") => match (target, tkrs) {
                (None, _) => (
                    "not-applicable",
                    Some("only for a version change (--tkr, -f with a new version)".to_owned()),
                ),
                (Some(_), None) => ("skipped", Some("the TKR/KR list could not be read".to_owned())),
                (Some(_), Some(_)) => ("ran", None),
            },
            Scope::Supervisor if check.code.starts_with("UC-CLASS-") => match (&opts.trigger, class_read) {
                (Trigger::Class { .. }, true) => ("ran", None),
                (Trigger::Class { .. }, false) => ("skipped", Some("the ClusterClasses could not be read".to_owned())),
                _ => ("not-applicable", Some("only for --class".to_owned())),
            },
            Scope::Supervisor if check.code.starts_with("UC-OSIMAGE-") => {
                match (&version_target, &osimages) {
                    (None, _) => ("not-applicable", Some("only for a version change (--tkr, -f with a new version)".to_owned())),
                    (Some(_), None) => ("skipped", Some("the OSImages could not be read".to_owned())),
                    (Some(_), Some(_)) => ("ran", None),
                }
            }
            Scope::Supervisor
                if check.code == "UC-VMCLASS-UNAVAILABLE"
                    && vm_classes.is_none()
                    && vm_class_bindings.is_none() =>
            {
                ("skipped", Some("neither VirtualMachineClasses nor VirtualMachineClassBindings could be read".to_owned()))
            }
            Scope::Supervisor
                if matches!(check.code, "UC-STORAGECLASS-UNAVAILABLE" | "UC-QUOTA-SURGE")
                    && resource_quotas.is_none() =>
            {
                ("skipped", Some("the ResourceQuotas could not be read".to_owned()))
            }
            Scope::Supervisor if check.code == "UC-ROLL-PENDING" && !mds_read => (
                "skipped",
                Some("the MachineDeployments could not be read".to_owned()),
            ),
            Scope::Supervisor => ("ran", None),
        };
        coverage.push(Coverage {
            item: check.code.to_owned(),
            status: status.to_owned(),
            reason,
        });
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary = Summary {
        clusters: forecasts.len(),
        rolls: forecasts.iter().filter(|f| f.rolls == Rolls::Yes).count(),
        maybe: forecasts.iter().filter(|f| f.rolls == Rolls::Maybe).count(),
        node_replacements: forecasts
            .iter()
            .filter(|f| f.rolls != Rolls::No)
            .map(|f| f.node_replacements)
            .sum(),
        blockers: count(Severity::Blocker),
        warnings: count(Severity::Warning),
        skipped_checks: coverage
            .iter()
            .filter(|c| {
                !c.item.starts_with("workload:")
                    && matches!(c.status.as_str(), "skipped" | "partial")
            })
            .count(),
        requests,
    };
    Ok(Report {
        trigger: opts.trigger.clone(),
        summary,
        clusters: forecasts,
        findings,
        coverage,
        unreadable: errors.iter().map(ToString::to_string).collect(),
    })
}

/// Parses the text of `-f FILE` into one object.
///
/// # Errors
/// A usage failure naming the file when it is not YAML/JSON or holds no TKC/Cluster with a name.
pub fn parse_manifest(text: &str, file: &str) -> Result<Value> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| {
        Failure::usage(
            format!("{file} is not a YAML or JSON document: {e}"),
            "give one TanzuKubernetesCluster or Cluster manifest, e.g. kubectl get tkc NAME -n NS -o yaml > changed-cluster.yaml, then edit it",
        )
    })?;
    change::identify(&doc).map_err(|e| {
        Failure::usage(
            format!("{file}: {e}"),
            "give one TanzuKubernetesCluster or Cluster manifest with metadata.name (and metadata.namespace)",
        )
    })?;
    Ok(doc)
}

/// Completes the trigger with what was read: the ClusterClasses for `--class`, the field changes of
/// `-f` against the live object (found by kind, name and, when the file gives one, namespace).
fn resolve_trigger(
    trigger: &Trigger,
    tkcs: &[Value],
    clusters: &[Value],
    cluster_classes: Option<Vec<Value>>,
    changed: Option<Value>,
) -> Result<Trigger> {
    match trigger {
        Trigger::Class { name, .. } => Ok(Trigger::Class {
            name: name.clone(),
            offered: model::parse_cluster_classes(&cluster_classes.unwrap_or_default()),
        }),
        Trigger::Manifest { .. } => {
            let Some(doc) = changed else {
                return Err(Failure::usage(
                    "-f was given but no manifest was read",
                    "give -f changed-cluster.yaml",
                ));
            };
            let (kind, ns, name) = change::identify(&doc).map_err(|e| {
                Failure::usage(
                    e.to_string(),
                    "give one TanzuKubernetesCluster or Cluster manifest",
                )
            })?;
            let live_list = if kind == "Cluster" { clusters } else { tkcs };
            let matches: Vec<&Value> = live_list
                .iter()
                .filter(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(&name))
                .filter(|o| {
                    ns.is_empty()
                        || o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&ns)
                })
                .collect();
            let live = match matches.as_slice() {
                [one] => *one,
                [] => {
                    let whom = if ns.is_empty() {
                        name.clone()
                    } else {
                        format!("{ns}/{name}")
                    };
                    return Err(Failure::new(
                        format!(
                            "no {kind} {whom} on the Supervisor: -f compares a change with an existing cluster"
                        ),
                        format!(
                            "check metadata.name and metadata.namespace in the file (kubectl get {} -A)",
                            if kind == "Cluster" {
                                "clusters.cluster.x-k8s.io"
                            } else {
                                "tkc"
                            }
                        ),
                    ));
                }
                many => {
                    return Err(Failure::usage(
                        format!(
                            "{} {kind}s are named {name} (namespaces {}): the file names no namespace",
                            many.len(),
                            many.iter()
                                .filter_map(|o| o
                                    .pointer("/metadata/namespace")
                                    .and_then(Value::as_str))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "add metadata.namespace (the vSphere Namespace) to the file",
                    ));
                }
            };
            let namespace = live
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let changes = change::manifest_changes(live, &doc).map_err(|e| {
                Failure::usage(
                    e.to_string(),
                    "give one TanzuKubernetesCluster or Cluster manifest",
                )
            })?;
            Ok(Trigger::Manifest {
                kind,
                namespace,
                name,
                changes,
            })
        }
        other => Ok(other.clone()),
    }
}

/// Reads the Supervisor and prints the report; returns the exit code for `--fail-on`.
pub async fn run(conn: &Connection, args: &UpgradeCheckArgs) -> Result<u8> {
    let opts = Options::from_args(args)?;
    // A bad file fails before any request.
    let changed = match &opts.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(
                    format!("cannot read {}: {e}", path.display()),
                    "give -f the path of a TanzuKubernetesCluster or Cluster manifest",
                )
            })?;
            Some(parse_manifest(&text, &path.display().to_string())?)
        }
        None => None,
    };
    // Fail on a bad trigger before any request.
    forecast::forecast(&[], &[], &[], &opts.trigger)
        .map_err(|e| Failure::usage(e.to_string(), "fix the trigger's flags"))?;
    let mut requests = 0;
    let mut coverage = Vec::new();
    let capi = ["v1beta1", "v1beta2"];
    let tkcs = list_first(
        conn,
        "run.tanzu.vmware.com",
        &["v1alpha3", "v1alpha2"],
        "TanzuKubernetesCluster",
        "tanzukubernetesclusters",
        &mut requests,
        &mut coverage,
    )
    .await?;
    let clusters = list_first(
        conn,
        "cluster.x-k8s.io",
        &capi,
        "Cluster",
        "clusters",
        &mut requests,
        &mut coverage,
    )
    .await?;
    let mds = list_first(
        conn,
        "cluster.x-k8s.io",
        &capi,
        "MachineDeployment",
        "machinedeployments",
        &mut requests,
        &mut coverage,
    )
    .await?;
    let machines = list_first(
        conn,
        "cluster.x-k8s.io",
        &capi,
        "Machine",
        "machines",
        &mut requests,
        &mut coverage,
    )
    .await?;
    if tkcs.is_none() && clusters.is_none() {
        return Err(Failure::new(
            format!(
                "no TanzuKubernetesClusters or Clusters could be read from {}",
                conn.server
            ),
            "check that this is a Supervisor with the TKG Service and that you may list clusters in the vSphere Namespaces (kubectl get tkc,clusters -A)",
        ));
    }
    // A version change (--tkr, or -f naming a version): the target release and its OS images are read.
    let version_change = match &opts.trigger {
        Trigger::Tkr { .. } => true,
        Trigger::Manifest { .. } => changed.as_ref().is_some_and(|d| {
            d.pointer("/spec/topology/version").is_some()
                || d.pointer("/spec/topology/controlPlane/tkr").is_some()
        }),
        _ => false,
    };
    let tkrs = if version_change {
        match list_first(
            conn,
            "run.tanzu.vmware.com",
            // vSphere 8 serves v1alpha3; vSphere 7 v1alpha1 (same spec.version and conditions).
            &["v1alpha3", "v1alpha1"],
            "TanzuKubernetesRelease",
            "tanzukubernetesreleases",
            &mut requests,
            &mut coverage,
        )
        .await?
        {
            Some(t) => Some(t),
            None => {
                list_first(
                    conn,
                    "kubernetes.vmware.com",
                    &["v1alpha1"],
                    "KubernetesRelease",
                    "kubernetesreleases",
                    &mut requests,
                    &mut coverage,
                )
                .await?
            }
        }
    } else {
        None
    };
    // Point 4's inputs: one LIST each, whatever the fleet's size.
    let osimages = if version_change {
        list_first(
            conn,
            "run.tanzu.vmware.com",
            &["v1alpha3"],
            "OSImage",
            "osimages",
            &mut requests,
            &mut coverage,
        )
        .await?
    } else {
        None
    };
    let vm_classes = list_first(
        conn,
        "vmoperator.vmware.com",
        &["v1alpha2", "v1alpha3", "v1alpha4", "v1alpha5", "v1alpha1"],
        "VirtualMachineClass",
        "virtualmachineclasses",
        &mut requests,
        &mut coverage,
    )
    .await?;
    let vm_class_bindings = list_first(
        conn,
        "vmoperator.vmware.com",
        &["v1alpha1"],
        "VirtualMachineClassBinding",
        "virtualmachineclassbindings",
        &mut requests,
        &mut coverage,
    )
    .await?;
    let resource_quotas = list_first(
        conn,
        "",
        &["v1"],
        "ResourceQuota",
        "resourcequotas",
        &mut requests,
        &mut coverage,
    )
    .await?;
    let cluster_classes = if matches!(opts.trigger, Trigger::Class { .. }) {
        list_first(
            conn,
            "cluster.x-k8s.io",
            &capi,
            "ClusterClass",
            "clusterclasses",
            &mut requests,
            &mut coverage,
        )
        .await?
    } else {
        None
    };
    let mut objects = Objects {
        cluster_classes,
        changed,
        osimages,
        vm_classes,
        vm_class_bindings,
        resource_quotas,
        tkcs: tkcs.unwrap_or_default(),
        clusters: clusters.unwrap_or_default(),
        machine_deployments: mds.unwrap_or_default(),
        machines: machines.unwrap_or_default(),
        tkrs,
        coverage,
        requests,
        workloads: BTreeMap::new(),
    };
    // The forecast says which clusters roll; only theirs are read.
    if !opts.supervisor_only {
        let first = build(&opts, objects.clone())?;
        let target = first.trigger.version_target();
        let (fleet, _) = model::fleet(&objects.tkcs, &objects.clusters);
        let rolling: Vec<WorkloadTarget> = first
            .clusters
            .iter()
            .filter(|f| f.rolls != Rolls::No)
            .map(|f| WorkloadTarget {
                namespace: f.namespace.clone(),
                name: f.name.clone(),
                hop: fleet
                    .iter()
                    .find(|c| c.namespace == f.namespace && c.name == f.name)
                    .and_then(|c| apis::hop(c.version.as_deref(), target.as_deref())),
            })
            .collect();
        objects.workloads =
            read_workloads(conn, &rolling, opts.workload_kubeconfig.as_deref()).await?;
    }
    let report = build(&opts, objects)?;
    out!("{}", render(&report, opts.format)?);
    Ok(upgrade::exit_code(
        opts.fail_on,
        &report.findings,
        &report.clusters,
    ))
}

/// Reads every rolling cluster's pods and PodDisruptionBudgets, [`WORKLOAD_CONCURRENCY`] at a time.
///
/// # Errors
/// `--workload-kubeconfig` names a file that is not a kubeconfig. A cluster that cannot be read is
/// not an error: it is [`WorkloadRead::Unread`], with why.
/// A rolling cluster to read, with the Kubernetes versions it hops between (for a version change).
struct WorkloadTarget {
    namespace: String,
    name: String,
    hop: Option<(KubeVersion, KubeVersion)>,
}

async fn read_workloads(
    conn: &Connection,
    rolling: &[WorkloadTarget],
    file: Option<&std::path::Path>,
) -> Result<BTreeMap<String, WorkloadRead>> {
    use futures::StreamExt as _;
    let file = match file {
        Some(path) => Some(kube::config::Kubeconfig::read_from(path).map_err(|e| {
            Failure::usage(
                format!("--workload-kubeconfig {}: {e}", path.display()),
                "give a kubeconfig with one context per workload cluster, named after it (kubectl vsphere login --tanzu-kubernetes-cluster-name NAME writes one)",
            )
        })?),
        None => None,
    };
    let file = file.as_ref();
    Ok(futures::stream::iter(rolling)
        .map(|t| async move {
            let read = read_workload(conn, t, file).await;
            (format!("{}/{}", t.namespace, t.name), read)
        })
        .buffer_unordered(WORKLOAD_CONCURRENCY)
        .collect()
        .await)
}

/// One workload cluster: its kubeconfig (the file's context named after it, else the Supervisor's
/// `<name>-kubeconfig` Secret), then one LIST of pods and one of PodDisruptionBudgets; for a version
/// hop, one LIST per resource whose version it removes and `GET /metrics`.
async fn read_workload(
    conn: &Connection,
    target: &WorkloadTarget,
    file: Option<&kube::config::Kubeconfig>,
) -> WorkloadRead {
    let (namespace, name) = (target.namespace.as_str(), target.name.as_str());
    use k8s_openapi::api::core::v1::{Pod, Secret};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let unread = |reason: String| WorkloadRead::Unread { reason };
    let (kubeconfig, context, source) = match file
        .filter(|k| k.contexts.iter().any(|c| c.name == name))
    {
        Some(k) => (
            k.clone(),
            Some(name.to_owned()),
            format!("context {name} of --workload-kubeconfig"),
        ),
        None => {
            let secret_name = format!("{name}-kubeconfig");
            let secrets: Api<Secret> = Api::namespaced(conn.client.clone(), namespace);
            let secret = match secrets.get(&secret_name).await {
                Ok(s) => s,
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    return unread(format!(
                        "may not read Secret {namespace}/{secret_name} (the cluster's admin kubeconfig): {}; give --workload-kubeconfig with a context named {name}",
                        e.message
                    ));
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    return unread(format!(
                        "no Secret {namespace}/{secret_name} (Cluster API writes the cluster's admin kubeconfig there once its control plane is up); give --workload-kubeconfig with a context named {name}"
                    ));
                }
                Err(e) => {
                    return unread(format!(
                        "reading Secret {namespace}/{secret_name}: {e}; check the Supervisor is reachable, or give --workload-kubeconfig"
                    ));
                }
            };
            let Some(bytes) = secret.data.as_ref().and_then(|d| d.get("value")) else {
                return unread(format!(
                    "Secret {namespace}/{secret_name} has no key value (Cluster API's kubeconfig key)"
                ));
            };
            let text = String::from_utf8_lossy(&bytes.0);
            match kube::config::Kubeconfig::from_yaml(&text) {
                Ok(k) => (k, None, format!("Secret {namespace}/{secret_name}")),
                Err(e) => {
                    return unread(format!(
                        "Secret {namespace}/{secret_name}'s value is not a kubeconfig: {e}"
                    ));
                }
            }
        }
    };
    let options = kube::config::KubeConfigOptions {
        context,
        ..Default::default()
    };
    let client = match kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| e.to_string())
        .and_then(|mut config| {
            config.connect_timeout = Some(std::time::Duration::from_secs(10));
            config.read_timeout = Some(std::time::Duration::from_secs(30));
            kube::Client::try_from(config).map_err(|e| e.to_string())
        }) {
        Ok(c) => c,
        Err(e) => {
            return unread(format!(
                "the kubeconfig from {source} gives no client: {e}; give --workload-kubeconfig with a working context named {name}"
            ));
        }
    };
    let lp = ListParams::default();
    let pods = match Api::<Pod>::all(client.clone()).list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            return unread(format!(
                "listing pods with the kubeconfig from {source}: {e}"
            ));
        }
    };
    let pdbs = match Api::<PodDisruptionBudget>::all(client.clone())
        .list(&lp)
        .await
    {
        Ok(l) => l.items,
        Err(e) => {
            return unread(format!(
                "listing PodDisruptionBudgets with the kubeconfig from {source}: {e}; check that its user may list them in all namespaces (kubectl auth can-i list poddisruptionbudgets -A)"
            ));
        }
    };
    let mut manifests = Vec::new();
    let mut metrics = Err("no version change".to_owned());
    if let Some((from, to)) = target.hop {
        let removed = apis::removed_between(from, to);
        for (group, plural, versions) in apis::resources_to_list(&removed) {
            for version in &versions {
                let kind = removed
                    .iter()
                    .find(|r| r.group == group && r.resource == plural)
                    .map(|r| r.kind.as_str())
                    .unwrap_or_default();
                let ar = resource(&group, version, kind, &plural);
                match Api::<DynamicObject>::all_with(client.clone(), &ar)
                    .list(&lp)
                    .await
                {
                    Ok(l) => {
                        manifests.extend(to_values(l.items));
                        break;
                    }
                    // Not served at this version: the next one.
                    Err(kube::Error::Api(e)) if e.code == 404 => continue,
                    // Unreadable: its manifests are not checked (the count in coverage says so).
                    Err(_) => break,
                }
            }
        }
        let request = http::Request::get("/metrics").body(Vec::new());
        metrics = match request {
            Ok(r) => client.request_text(r).await.map_err(|e| match e {
                kube::Error::Api(s) if s.code == 403 => format!(
                    "forbidden ({}): the deprecated-API gauge needs get on the non-resource URL /metrics",
                    s.message
                ),
                other => other.to_string(),
            }),
            Err(e) => Err(e.to_string()),
        };
    }
    WorkloadRead::Read {
        source,
        pods: to_values(pods),
        pdbs: to_values(pdbs),
        manifests,
        metrics,
    }
}

fn to_values<T: Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

fn render_failure(e: impl std::fmt::Display) -> Failure {
    Failure::new(
        format!("cannot render the report: {e}"),
        "report this as a bug",
    )
}

/// Renders the report in a format.
pub fn render(report: &Report, format: Format) -> Result<String> {
    match format {
        Format::Json => serde_json::to_string_pretty(report)
            .map(|s| s + "\n")
            .map_err(render_failure),
        Format::Yaml => serde_saphyr::to_string(report).map_err(render_failure),
        Format::Text => Ok(text(report)),
        Format::Markdown => Ok(markdown(report)),
    }
}

fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Tkr { name } => format!("move to TKR {name}"),
        Trigger::SetVariable { name, value, pool } => match pool {
            Some(p) => format!("set {name}={value} on pool {p}"),
            None => format!("set {name}={value}"),
        },
        Trigger::Class { name, .. } => format!("rebase onto ClusterClass {name}"),
        Trigger::Manifest {
            kind,
            namespace,
            name,
            changes,
        } => format!(
            "changed {kind} {namespace}/{name} ({} fields differ)",
            changes.len()
        ),
        Trigger::TkgServiceUpgrade => "TKG Service upgrade".into(),
        Trigger::VcenterUpgrade { from, to, .. } => format!("vCenter upgrade {from} -> {to}"),
    }
}

fn steps_text(f: &ClusterForecast) -> String {
    if f.steps.is_empty() {
        return "-".into();
    }
    f.steps
        .iter()
        .map(|s| {
            let what = if s.control_plane {
                "control-plane".to_owned()
            } else {
                s.pools.join("+")
            };
            format!("{}.{what}", s.index)
        })
        .collect::<Vec<_>>()
        .join(" > ")
}

fn cluster_rows(r: &Report) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "NAMESPACE",
        "NAME",
        "KIND",
        "ROLLS",
        "RULE",
        "ORDER",
        "NODES",
        "SURGE",
        "PAUSED",
    ];
    let rows = r
        .clusters
        .iter()
        .map(|f| {
            vec![
                f.namespace.clone(),
                f.name.clone(),
                f.api.kind().to_owned(),
                f.rolls.to_string(),
                f.rule.id.clone(),
                steps_text(f),
                f.node_replacements.to_string(),
                f.surge_vms.to_string(),
                if f.paused { "yes".into() } else { "no".into() },
            ]
        })
        .collect();
    (header, rows)
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Blocker => "blocker",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn text(r: &Report) -> String {
    let mut out = format!(
        "Trigger: {}\n{} clusters: {} roll, {} may roll, {} node replacements; {} blockers, {} warnings; {} checks skipped\n\n",
        trigger_text(&r.trigger),
        r.summary.clusters,
        r.summary.rolls,
        r.summary.maybe,
        r.summary.node_replacements,
        r.summary.blockers,
        r.summary.warnings,
        r.summary.skipped_checks
    );
    let (header, rows) = cluster_rows(r);
    out += &table(&header, &rows);
    out += "\nRules:\n";
    let mut rules: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for f in &r.clusters {
        rules
            .entry(&f.rule.id)
            .or_insert((&f.rule.text, &f.rule.source));
    }
    for (id, (t, s)) in rules {
        out += &format!("  {id}: {t}\n    source: {s}\n");
    }
    let notes: Vec<String> = r
        .clusters
        .iter()
        .flat_map(|f| {
            f.pools
                .iter()
                .filter_map(move |p| {
                    p.note
                        .as_ref()
                        .map(|n| format!("  {}/{} pool {}: {n}", f.namespace, f.name, p.name))
                })
                .chain(
                    f.notes
                        .iter()
                        .map(move |n| format!("  {}/{}: {n}", f.namespace, f.name)),
                )
        })
        .collect();
    if !notes.is_empty() {
        out += "\nNotes:\n";
        out += &notes.join("\n");
        out += "\n";
    }
    out += "\nFindings:\n";
    if r.findings.is_empty() {
        out += "  none from the checks that ran\n";
    }
    for f in &r.findings {
        out += &format!(
            "  [{}] {} {}: {}\n    fix: {}\n",
            severity(f.severity),
            f.code,
            f.cluster,
            f.message,
            f.fix
        );
    }
    out += "\nCoverage:\n";
    for c in &r.coverage {
        out += &format!(
            "  {:<14} {}{}\n",
            c.status,
            c.item,
            c.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    for u in &r.unreadable {
        out += &format!("  unreadable     {u}\n");
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(r: &Report) -> String {
    let mut out = format!(
        "# upgrade-check: {}\n\n",
        md_escape(&trigger_text(&r.trigger))
    );
    out += &format!(
        "{} clusters: {} roll, {} may roll, {} node replacements; {} blockers, {} warnings; {} checks skipped.\n\n## Clusters\n\n",
        r.summary.clusters,
        r.summary.rolls,
        r.summary.maybe,
        r.summary.node_replacements,
        r.summary.blockers,
        r.summary.warnings,
        r.summary.skipped_checks
    );
    let (header, rows) = cluster_rows(r);
    out += &format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for row in rows {
        out += &format!(
            "| {} |\n",
            row.iter()
                .map(|c| md_escape(c))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    out += "\n## Findings\n\n";
    if r.findings.is_empty() {
        out += "None from the checks that ran.\n";
    } else {
        out += "| Severity | Code | Cluster | Finding | Fix |\n| --- | --- | --- | --- | --- |\n";
        for f in &r.findings {
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                severity(f.severity),
                f.code,
                f.cluster,
                md_escape(&f.message),
                md_escape(&f.fix)
            );
        }
    }
    out += "\n## Coverage\n\n| Item | Status | Reason |\n| --- | --- | --- |\n";
    for c in &r.coverage {
        out += &format!(
            "| {} | {} | {} |\n",
            c.item,
            c.status,
            md_escape(c.reason.as_deref().unwrap_or(""))
        );
    }
    out
}

#[cfg(test)]
mod tests;
