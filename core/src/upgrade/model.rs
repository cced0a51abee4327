//! The Supervisor's TKG objects as the forecast needs them, parsed from JSON values.
//!
//! A TKG cluster on a vSphere 8 Supervisor is a Cluster API `Cluster` (`cluster.x-k8s.io/v1beta1`, on
//! VKS 3.x also `v1beta2`) with `spec.topology` (ClusterClass); a `TanzuKubernetesCluster`
//! (`run.tanzu.vmware.com/v1alpha3`) of the same name and namespace is a front object that produces it.
//! On vSphere 7 a `TanzuKubernetesCluster` `v1alpha2` stands alone (classless CAPI, CAPW).
//! Sources: vmware-tanzu/tanzu-framework `apis/run/v1alpha2/tanzukubernetescluster_types.go`;
//! kubernetes-sigs/cluster-api `api/core/v1beta2/common_types.go` (labels and topology annotations);
//! VMware "Using the TanzuKubernetesCluster v1alpha3 API" (TKC over Cluster, same name).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Cluster annotation: how many MachineDeployments a version upgrade rolls at once (default 1).
/// Source: cluster-api `api/core/v1beta2/common_types.go` `ClusterTopologyUpgradeConcurrencyAnnotation`.
pub const UPGRADE_CONCURRENCY: &str = "topology.cluster.x-k8s.io/upgrade-concurrency";
/// MachineDeployment topology annotation: version upgrades skip this pool until it is removed.
pub const DEFER_UPGRADE: &str = "topology.cluster.x-k8s.io/defer-upgrade";
/// MachineDeployment topology annotation: this pool and every pool after it wait until it is removed.
pub const HOLD_UPGRADE_SEQUENCE: &str = "topology.cluster.x-k8s.io/hold-upgrade-sequence";
/// Annotation that pauses reconciliation of a Cluster (as `spec.paused`).
pub const PAUSED_ANNOTATION: &str = "cluster.x-k8s.io/paused";
/// Label on every child of a Cluster.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
/// Label on a topology-owned MachineDeployment: the pool's name in `spec.topology.workers`.
pub const TOPOLOGY_DEPLOYMENT_LABEL: &str = "topology.cluster.x-k8s.io/deployment-name";
/// Label on a Machine: the name of its MachineDeployment.
pub const MACHINE_DEPLOYMENT_LABEL: &str = "cluster.x-k8s.io/deployment-name";
/// Label on a control plane Machine.
pub const CONTROL_PLANE_LABEL: &str = "cluster.x-k8s.io/control-plane";
/// Annotation whose value is a label selector over OSImages: the image the cluster's nodes boot
/// (tanzu-framework `apis/run/v1alpha3/osimage_types.go`; must match exactly one image per release).
pub const RESOLVE_OS_IMAGE: &str = "run.tanzu.vmware.com/resolve-os-image";
/// VKS 3.x: the namespace of the VMware-published ClusterClasses (`builtin-generic-v3.x.0`).
pub const VKS_PUBLIC_NAMESPACE: &str = "vmware-system-vks-public";
/// VKS: keeps a cluster on its ClusterClass when a new Kubernetes version is requested (KB 404143).
pub const SKIP_AUTO_CC_REBASE: &str = "kubernetes.vmware.com/skip-auto-cc-rebase";

/// Which API describes a cluster, which decides how its pools roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Api {
    /// `run.tanzu.vmware.com/v1alpha2` TanzuKubernetesCluster (vSphere 7): pools roll simultaneously.
    #[serde(rename = "run.tanzu.vmware.com/v1alpha2")]
    TkcV1alpha2,
    /// `run.tanzu.vmware.com/v1alpha3` TanzuKubernetesCluster over a ClusterClass Cluster.
    #[serde(rename = "run.tanzu.vmware.com/v1alpha3")]
    TkcV1alpha3,
    /// `cluster.x-k8s.io/v1beta1` Cluster with `spec.topology`.
    #[serde(rename = "cluster.x-k8s.io/v1beta1")]
    ClusterV1beta1,
    /// `cluster.x-k8s.io/v1beta2` Cluster with `spec.topology` (VKS 3.x).
    #[serde(rename = "cluster.x-k8s.io/v1beta2")]
    ClusterV1beta2,
}

impl Api {
    /// The kind the user wrote.
    pub fn kind(self) -> &'static str {
        match self {
            Api::TkcV1alpha2 | Api::TkcV1alpha3 => "TanzuKubernetesCluster",
            Api::ClusterV1beta1 | Api::ClusterV1beta2 => "Cluster",
        }
    }

    /// True for the vSphere 7 API whose pools roll all at once (VMware's table, seed document 002).
    pub fn pools_simultaneous(self) -> bool {
        self == Api::TkcV1alpha2
    }
}

/// One worker pool: a TKC `nodePools[]` entry or a Cluster `topology.workers.machineDeployments[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// The pool's name (`nodePools[].name` or `machineDeployments[].name`).
    pub name: String,
    /// The MachineDeployment class in the ClusterClass (`machineDeployments[].class`); `None` for a TKC.
    pub class: Option<String>,
    /// Desired replicas; `None` when the autoscaler owns them (then the MachineDeployment's count is used).
    pub replicas: Option<u32>,
    /// `failureDomain` (a vSphere Zone), when set.
    pub failure_domain: Option<String>,
    /// `defer-upgrade` annotation on the pool's topology metadata.
    pub defer_upgrade: bool,
    /// `hold-upgrade-sequence` annotation on the pool's topology metadata.
    pub hold_upgrade_sequence: bool,
    /// `nodeDrainTimeout` as written (`"30m"`); `None` or `"0s"` drain without end.
    pub node_drain_timeout: Option<String>,
    /// Per-pool TKR (TKC `nodePools[].tkr.reference.name`), when set.
    pub tkr: Option<String>,
    /// `variables.overrides` of the pool, by name.
    pub overrides: BTreeMap<String, Value>,
    /// Which MachineDeployment implements the pool (from its labels), if known.
    pub machine_deployment: Option<String>,
}

/// One TKG cluster as the forecast sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// The Supervisor namespace (`metadata.namespace`).
    pub namespace: String,
    /// The cluster's name (`metadata.name`).
    pub name: String,
    /// The API the user manages the cluster with (the TKC when there is one).
    pub api: Api,
    /// ClusterClass name (`topology.class` or `topology.classRef.name`), if any.
    pub class: Option<String>,
    /// The TKR/KR the cluster runs: TKC `controlPlane.tkr.reference.name` or `topology.version`.
    pub version: Option<String>,
    /// Control plane replicas (`controlPlane.replicas` or `topology.controlPlane.replicas`); 1 when absent.
    pub control_plane_replicas: u32,
    /// The control plane's `nodeDrainTimeout` as written (`"30m"`); `None` or `"0s"` drain without end.
    pub control_plane_drain_timeout: Option<String>,
    /// `controlPlane.variables.overrides`, by name.
    pub control_plane_overrides: BTreeMap<String, Value>,
    /// The worker pools, in the order the spec lists them.
    pub pools: Vec<Pool>,
    /// `topology.variables`, by name.
    pub variables: BTreeMap<String, Value>,
    /// `spec.paused` or the `cluster.x-k8s.io/paused` annotation.
    pub paused: bool,
    /// `upgrade-concurrency` annotation; 1 when absent or not a positive number.
    pub upgrade_concurrency: u32,
    /// `skip-auto-cc-rebase` annotation present (VKS).
    pub skip_auto_cc_rebase: bool,
    /// The proxy's `noProxy` list (TKC `settings.network.proxy` or the `proxy` variable).
    pub no_proxy: Vec<String>,
    /// Pods CIDR blocks.
    pub pod_cidrs: Vec<String>,
    /// The `run.tanzu.vmware.com/resolve-os-image` selector (TKC metadata, else the topology's
    /// control plane metadata), when set.
    pub os_image_selector: Option<String>,
    /// VM classes the nodes use (TKC `vmClass` fields; Cluster `vmClass` variable and overrides).
    pub vm_classes: Vec<String>,
    /// Storage classes the nodes use (TKC `storageClass` fields; Cluster `storageClass` variable
    /// and overrides).
    pub storage_classes: Vec<String>,
}

/// Sorted, deduplicated strings of these values.
fn names<'a>(vals: impl Iterator<Item = Option<&'a Value>>) -> Vec<String> {
    let mut out: Vec<String> = vals
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|v| !v.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Cluster {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Why an object could not be read; the object is named so the user can look at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {namespace}/{name}: {problem}")]
pub struct ParseError {
    /// The object's kind (`Cluster`, `TanzuKubernetesCluster`).
    pub kind: String,
    /// The object's namespace (empty when it has none).
    pub namespace: String,
    /// The object's name (empty when it has none).
    pub name: String,
    /// What is wrong with it (`no metadata.name`, `no spec.topology`...).
    pub problem: String,
}

pub(crate) fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn has_annotation(meta: Option<&Value>, key: &str) -> bool {
    meta.and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .is_some()
}

fn named_values(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some((e.get("name")?.as_str()?.to_owned(), e.get("value")?.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn u32_of(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn ident(obj: &Value) -> (String, String) {
    (
        s(obj, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_owned(),
        s(obj, &["metadata", "name"]).unwrap_or_default().to_owned(),
    )
}

fn parse_error(obj: &Value, kind: &str, problem: impl Into<String>) -> ParseError {
    let (namespace, name) = ident(obj);
    ParseError {
        kind: kind.to_owned(),
        namespace,
        name,
        problem: problem.into(),
    }
}

/// The values of an override in the control plane's and every pool's `variables.overrides`.
fn cp_and_pool_overrides(topo: &Value, name: &str) -> Vec<Value> {
    let cp = at(topo, &["controlPlane", "variables", "overrides"]);
    let pools = at(topo, &["workers", "machineDeployments"])
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|md| at(md, &["variables", "overrides"]))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(cp)
        .chain(pools)
        .filter_map(|o| named_values(o).remove(name))
        .collect()
}

/// Reads a `Cluster` (v1beta1 or v1beta2). Errors when it has no name or no `spec.topology` (a
/// classless Cluster is not a TKG Service cluster this forecast understands).
///
/// # Errors
/// A [`ParseError`] naming the Cluster when it has no `metadata.name` or no `spec.topology`.
pub fn parse_cluster(obj: &Value) -> Result<Cluster, ParseError> {
    let (namespace, name) = ident(obj);
    if name.is_empty() {
        return Err(parse_error(obj, "Cluster", "no metadata.name"));
    }
    let api = match s(obj, &["apiVersion"]) {
        Some("cluster.x-k8s.io/v1beta2") => Api::ClusterV1beta2,
        _ => Api::ClusterV1beta1,
    };
    let topo = at(obj, &["spec", "topology"])
        .filter(|t| t.is_object())
        .ok_or_else(|| {
            parse_error(
                obj,
                "Cluster",
                "no spec.topology (not a ClusterClass cluster)",
            )
        })?;
    let annotations = string_map(at(obj, &["metadata", "annotations"]));
    let cp = topo.get("controlPlane");
    let pools = at(topo, &["workers", "machineDeployments"])
        .and_then(Value::as_array)
        .map(|mds| {
            mds.iter()
                .map(|md| Pool {
                    name: s(md, &["name"]).unwrap_or_default().to_owned(),
                    class: s(md, &["class"]).map(str::to_owned),
                    replicas: u32_of(md.get("replicas")),
                    failure_domain: s(md, &["failureDomain"]).map(str::to_owned),
                    defer_upgrade: has_annotation(md.get("metadata"), DEFER_UPGRADE),
                    hold_upgrade_sequence: has_annotation(
                        md.get("metadata"),
                        HOLD_UPGRADE_SEQUENCE,
                    ),
                    node_drain_timeout: s(md, &["nodeDrainTimeout"]).map(str::to_owned).or_else(
                        || {
                            at(md, &["deletion", "nodeDrainTimeoutSeconds"])
                                .and_then(Value::as_u64)
                                .map(|n| format!("{n}s"))
                        },
                    ),
                    tkr: None,
                    overrides: named_values(at(md, &["variables", "overrides"])),
                    machine_deployment: None,
                })
                .collect()
        })
        .unwrap_or_default();
    let variables = named_values(topo.get("variables"));
    let no_proxy = variables
        .get("proxy")
        .map(|p| strings(p.get("noProxy")))
        .or_else(|| {
            variables
                .get("osConfiguration")
                .map(|o| strings(at(o, &["systemProxy", "noProxy"])))
        })
        .unwrap_or_default();
    let vm_overrides = cp_and_pool_overrides(topo, "vmClass");
    let vm_classes =
        names(std::iter::once(variables.get("vmClass")).chain(vm_overrides.iter().map(Some)));
    let sc_overrides = cp_and_pool_overrides(topo, "storageClass");
    let storage_classes =
        names(std::iter::once(variables.get("storageClass")).chain(sc_overrides.iter().map(Some)));
    Ok(Cluster {
        namespace,
        name,
        api,
        class: s(topo, &["class"])
            .or_else(|| s(topo, &["classRef", "name"]))
            .map(str::to_owned),
        version: s(topo, &["version"]).map(str::to_owned),
        control_plane_replicas: u32_of(cp.and_then(|c| c.get("replicas"))).unwrap_or(1),
        control_plane_drain_timeout: cp
            .and_then(|c| s(c, &["nodeDrainTimeout"]))
            .map(str::to_owned),
        control_plane_overrides: named_values(cp.and_then(|c| at(c, &["variables", "overrides"]))),
        pools,
        variables,
        paused: at(obj, &["spec", "paused"]).and_then(Value::as_bool) == Some(true)
            || annotations.contains_key(PAUSED_ANNOTATION),
        upgrade_concurrency: annotations
            .get(UPGRADE_CONCURRENCY)
            .and_then(|c| c.trim().parse::<u32>().ok())
            .filter(|c| *c > 0)
            .unwrap_or(1),
        skip_auto_cc_rebase: annotations.contains_key(SKIP_AUTO_CC_REBASE),
        no_proxy,
        pod_cidrs: strings(at(obj, &["spec", "clusterNetwork", "pods", "cidrBlocks"])),
        os_image_selector: cp
            .and_then(|c| at(c, &["metadata", "annotations", RESOLVE_OS_IMAGE]))
            .or_else(|| at(obj, &["metadata", "annotations", RESOLVE_OS_IMAGE]))
            .and_then(Value::as_str)
            .map(str::to_owned),
        vm_classes,
        storage_classes,
    })
}

/// Reads a `TanzuKubernetesCluster` (v1alpha2 or v1alpha3; a v1alpha1 object is refused with the
/// advice to read it at v1alpha2, which the API server converts to).
///
/// # Errors
/// A [`ParseError`] naming the object when it has no `metadata.name`, an `apiVersion` other than
/// `run.tanzu.vmware.com/v1alpha2` or `v1alpha3` (v1alpha1 included), or no `spec.topology`.
pub fn parse_tkc(obj: &Value) -> Result<Cluster, ParseError> {
    let (namespace, name) = ident(obj);
    if name.is_empty() {
        return Err(parse_error(
            obj,
            "TanzuKubernetesCluster",
            "no metadata.name",
        ));
    }
    let api = match s(obj, &["apiVersion"]) {
        Some("run.tanzu.vmware.com/v1alpha2") => Api::TkcV1alpha2,
        Some("run.tanzu.vmware.com/v1alpha3") | None => Api::TkcV1alpha3,
        Some(other) => {
            return Err(parse_error(
                obj,
                "TanzuKubernetesCluster",
                format!(
                    "apiVersion {other} is not understood: read it as run.tanzu.vmware.com/v1alpha2 or v1alpha3"
                ),
            ));
        }
    };
    let topo = at(obj, &["spec", "topology"])
        .ok_or_else(|| parse_error(obj, "TanzuKubernetesCluster", "no spec.topology"))?;
    let cp = topo.get("controlPlane");
    let annotations = string_map(at(obj, &["metadata", "annotations"]));
    let pools = topo
        .get("nodePools")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| Pool {
                    name: s(p, &["name"]).unwrap_or_default().to_owned(),
                    class: None,
                    replicas: u32_of(p.get("replicas")),
                    failure_domain: s(p, &["failureDomain"]).map(str::to_owned),
                    defer_upgrade: false,
                    hold_upgrade_sequence: false,
                    node_drain_timeout: s(p, &["nodeDrainTimeout"]).map(str::to_owned),
                    tkr: s(p, &["tkr", "reference", "name"]).map(str::to_owned),
                    overrides: BTreeMap::new(),
                    machine_deployment: None,
                })
                .collect()
        })
        .unwrap_or_default();
    let network = at(obj, &["spec", "settings", "network"]);
    Ok(Cluster {
        namespace,
        name,
        api,
        class: None,
        version: cp
            .and_then(|c| s(c, &["tkr", "reference", "name"]))
            .map(str::to_owned),
        control_plane_replicas: u32_of(cp.and_then(|c| c.get("replicas"))).unwrap_or(1),
        control_plane_drain_timeout: cp
            .and_then(|c| s(c, &["nodeDrainTimeout"]))
            .map(str::to_owned),
        control_plane_overrides: BTreeMap::new(),
        pools,
        variables: BTreeMap::new(),
        paused: annotations.contains_key(PAUSED_ANNOTATION),
        upgrade_concurrency: 1,
        skip_auto_cc_rebase: false,
        no_proxy: network
            .map(|n| strings(at(n, &["proxy", "noProxy"])))
            .unwrap_or_default(),
        pod_cidrs: network
            .map(|n| strings(at(n, &["pods", "cidrBlocks"])))
            .unwrap_or_default(),
        os_image_selector: annotations.get(RESOLVE_OS_IMAGE).cloned(),
        vm_classes: names(
            std::iter::once(cp.and_then(|c| c.get("vmClass"))).chain(
                topo.get("nodePools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| p.get("vmClass")),
            ),
        ),
        storage_classes: names(
            std::iter::once(cp.and_then(|c| c.get("storageClass"))).chain(
                topo.get("nodePools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| p.get("storageClass")),
            ),
        ),
    })
}

/// Every TKG cluster of the Supervisor, one entry per cluster: a TKC and the Cluster of the same
/// namespace/name are one cluster, shown as the TKC (the user's object) but forecast from the
/// Cluster's topology (order, annotations, variables), which is what Cluster API acts on.
/// Objects that cannot be read are returned as errors beside the clusters, never dropped silently.
pub fn fleet(tkcs: &[Value], clusters: &[Value]) -> (Vec<Cluster>, Vec<ParseError>) {
    let mut errors = Vec::new();
    let mut by_key: BTreeMap<(String, String), Cluster> = BTreeMap::new();
    for obj in clusters {
        match parse_cluster(obj) {
            Ok(c) => {
                by_key.insert((c.namespace.clone(), c.name.clone()), c);
            }
            Err(e) => errors.push(e),
        }
    }
    for obj in tkcs {
        match parse_tkc(obj) {
            Ok(tkc) => {
                let key = (tkc.namespace.clone(), tkc.name.clone());
                match by_key.get_mut(&key) {
                    // The Cluster decides; the TKC names the API the user knows and fills what the
                    // Cluster lacks (pool TKRs, a proxy written only in the TKC).
                    Some(cluster) => {
                        cluster.api = tkc.api;
                        if cluster.no_proxy.is_empty() {
                            cluster.no_proxy = tkc.no_proxy;
                        }
                        for pool in &mut cluster.pools {
                            if let Some(p) = tkc.pools.iter().find(|p| p.name == pool.name) {
                                pool.tkr = p.tkr.clone();
                                if pool.node_drain_timeout.is_none() {
                                    pool.node_drain_timeout = p.node_drain_timeout.clone();
                                }
                            }
                        }
                        cluster.paused |= tkc.paused;
                        if cluster.os_image_selector.is_none() {
                            cluster.os_image_selector = tkc.os_image_selector;
                        }
                        for (mine, theirs) in [
                            (&mut cluster.vm_classes, tkc.vm_classes),
                            (&mut cluster.storage_classes, tkc.storage_classes),
                        ] {
                            mine.extend(theirs);
                            mine.sort();
                            mine.dedup();
                        }
                    }
                    None => {
                        by_key.insert(key, tkc);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (by_key.into_values().collect(), errors)
}

/// A Machine, reduced to what places it: its cluster, pool (None for the control plane) and node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// The Supervisor namespace (`metadata.namespace`).
    pub namespace: String,
    /// The Machine's name.
    pub name: String,
    /// Its cluster's name (label `cluster.x-k8s.io/cluster-name`, else `spec.clusterName`).
    pub cluster: String,
    /// The pool's name in the topology; `None` for a control plane machine.
    pub pool: Option<String>,
    /// The workload cluster's node it runs (`status.nodeRef.name`), once it has one.
    pub node: Option<String>,
    /// The Kubernetes version it runs (`spec.version`, `v1.30.1+vmware.1-fips`).
    pub version: Option<String>,
    /// Cluster API's `status.phase` (`Running`, `Provisioning`, `Deleting`...).
    pub phase: Option<String>,
}

/// A MachineDeployment, reduced to what says which pool it implements and whether it is mid-roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineDeployment {
    /// The Supervisor namespace (`metadata.namespace`).
    pub namespace: String,
    /// The MachineDeployment's name.
    pub name: String,
    /// Its cluster's name (label `cluster.x-k8s.io/cluster-name`, else `spec.clusterName`).
    pub cluster: String,
    /// The pool it implements (label `topology.cluster.x-k8s.io/deployment-name`, else its own name).
    pub pool: String,
    /// Desired machines (`spec.replicas`).
    pub replicas: Option<u32>,
    /// The Kubernetes version of its template (`spec.template.spec.version`).
    pub version: Option<String>,
    /// Machines it has (`status.replicas`).
    pub status_replicas: Option<u32>,
    /// Machines already at the template (`status.updatedReplicas`): fewer than `status_replicas`
    /// means a roll is under way.
    pub updated_replicas: Option<u32>,
}

/// Reads MachineDeployments; the pool is the `topology.cluster.x-k8s.io/deployment-name` label (else
/// the MD's own name). Objects without a cluster label are skipped (not part of a TKG cluster).
pub fn parse_machine_deployments(objs: &[Value]) -> Vec<MachineDeployment> {
    objs.iter()
        .filter_map(|o| {
            let labels = string_map(at(o, &["metadata", "labels"]));
            let (namespace, name) = ident(o);
            let cluster = labels
                .get(CLUSTER_NAME_LABEL)
                .cloned()
                .or_else(|| s(o, &["spec", "clusterName"]).map(str::to_owned))?;
            Some(MachineDeployment {
                pool: labels
                    .get(TOPOLOGY_DEPLOYMENT_LABEL)
                    .cloned()
                    .unwrap_or_else(|| name.clone()),
                namespace,
                name,
                cluster,
                replicas: u32_of(at(o, &["spec", "replicas"])),
                version: s(o, &["spec", "template", "spec", "version"]).map(str::to_owned),
                status_replicas: u32_of(at(o, &["status", "replicas"])),
                updated_replicas: u32_of(at(o, &["status", "updatedReplicas"])),
            })
        })
        .collect()
}

/// Reads Machines and places each in its pool through its MachineDeployment label.
pub fn parse_machines(objs: &[Value], mds: &[MachineDeployment]) -> Vec<Machine> {
    objs.iter()
        .filter_map(|o| {
            let labels = string_map(at(o, &["metadata", "labels"]));
            let (namespace, name) = ident(o);
            let cluster = labels
                .get(CLUSTER_NAME_LABEL)
                .cloned()
                .or_else(|| s(o, &["spec", "clusterName"]).map(str::to_owned))?;
            let pool = if labels.contains_key(CONTROL_PLANE_LABEL) {
                None
            } else {
                let md = labels.get(MACHINE_DEPLOYMENT_LABEL)?;
                Some(
                    mds.iter()
                        .find(|d| d.namespace == namespace && &d.name == md)
                        .map(|d| d.pool.clone())
                        .unwrap_or_else(|| md.clone()),
                )
            };
            Some(Machine {
                namespace,
                name,
                cluster,
                pool,
                node: s(o, &["status", "nodeRef", "name"]).map(str::to_owned),
                version: s(o, &["spec", "version"]).map(str::to_owned),
                phase: s(o, &["status", "phase"]).map(str::to_owned),
            })
        })
        .collect()
}

/// A ClusterClass, reduced to what a rebase needs: where it is and which MachineDeployment classes it
/// offers (a Cluster's pools must each find their `class` there, else Cluster API's webhook refuses
/// the rebase: cluster-api `docs/book/src/tasks/experimental-features/cluster-class/change-clusterclass.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassOffer {
    /// The ClusterClass's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.workers.machineDeployments[].class`.
    pub worker_classes: Vec<String>,
}

/// Reads ClusterClasses (v1beta1 or v1beta2 shape: `spec.workers.machineDeployments[].class`).
pub fn parse_cluster_classes(objs: &[Value]) -> Vec<ClassOffer> {
    objs.iter()
        .filter_map(|o| {
            let (namespace, name) = ident(o);
            (!name.is_empty()).then(|| ClassOffer {
                namespace,
                name,
                worker_classes: at(o, &["spec", "workers", "machineDeployments"])
                    .and_then(Value::as_array)
                    .map(|mds| {
                        mds.iter()
                            .filter_map(|m| s(m, &["class"]).map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}
