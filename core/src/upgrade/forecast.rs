//! The roll forecast: for a trigger, which clusters roll, why (the rule and its source), what rolls and
//! in what order.
//!
//! Rules (sources in each [`Rule`]):
//! - A version change (`--tkr`) rolls the control plane first, then the pools in the order of
//!   `spec.topology.workers.machineDeployments`, `upgrade-concurrency` at a time (default 1); a
//!   `defer-upgrade` pool is skipped, a `hold-upgrade-sequence` pool and every pool after it wait
//!   (cluster-api `docs/book/src/tasks/experimental-features/cluster-class/operate-cluster.md`,
//!   `api/core/v1beta2/common_types.go`). One minor version at a time.
//! - A variable change rotates templates: control plane first (VMware's doc; upstream CAPI may roll it
//!   concurrently, noted as such), then one node per pool, all pools in parallel (maxSurge 1,
//!   maxUnavailable 0 per MachineDeployment).
//! - On vSphere 7 (`TanzuKubernetesCluster` v1alpha2) pools roll simultaneously (VMware's table).
//! - A vCenter/Supervisor upgrade rolls per VMware's version table ([`VMWARE_TABLE`], versioned data);
//!   a TKG Service upgrade may roll every cluster.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::change::{Affects, FieldChange};
use super::model::{Api, ClassOffer, Cluster, Machine, MachineDeployment, VKS_PUBLIC_NAMESPACE};

/// VMware's rolling-update table for vCenter/Supervisor upgrades, as versioned data.
pub const VMWARE_TABLE: &str = include_str!("data/vmware-rolling-update-table.json");

/// Source of the CAPI topology rules used below.
pub const SRC_CAPI_OPERATE: &str = "kubernetes-sigs/cluster-api docs/book/src/tasks/experimental-features/cluster-class/operate-cluster.md";
/// Source of the topology annotations (concurrency, defer, hold).
pub const SRC_CAPI_ANNOTATIONS: &str =
    "kubernetes-sigs/cluster-api api/core/v1beta2/common_types.go";
/// Source of template rotation on variable changes.
pub const SRC_CAPI_CHANGE_CLASS: &str = "kubernetes-sigs/cluster-api docs/book/src/tasks/experimental-features/cluster-class/change-clusterclass.md";
/// VMware's rolling update model (seed document 002).
pub const SRC_VMWARE: &str = "https://docs.vmware.com/en/VMware-vSphere/8.0/vsphere-with-tanzu-tkg/GUID-3BCED5C1-9243-4949-9EC1-78B237ABBBDF.html";

/// What starts the roll.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Trigger {
    /// Move every cluster to this TKR/KR (`--tkr NAME`; `---` and `+` forms both accepted).
    Tkr {
        /// The TKR/KR name or version (`v1.29.4---vmware.3-fips.1-tkg.1`).
        name: String,
    },
    /// Set a ClusterClass variable (`--set VAR=VALUE`), on one pool's overrides with `--pool`.
    SetVariable {
        /// The variable's name (`vmClass`).
        name: String,
        /// Its new value, as JSON.
        value: Value,
        /// The pool whose `variables.overrides` get the value; `None` for the cluster's `topology.variables`.
        pool: Option<String>,
    },
    /// Rebase every ClusterClass cluster onto another ClusterClass (`--class NAME`).
    Class {
        /// The target ClusterClass's name.
        name: String,
        /// The ClusterClasses read from the Supervisor; empty when they could not be listed (then
        /// the class's existence and compatibility are not checked).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        offered: Vec<ClassOffer>,
    },
    /// A changed TanzuKubernetesCluster or Cluster (`-f FILE`), compared field by field with the live
    /// object ([`super::change::manifest_changes`]); only the cluster it names is affected.
    Manifest {
        /// `TanzuKubernetesCluster` or `Cluster`.
        #[serde(rename = "objectKind")]
        kind: String,
        /// The cluster's namespace.
        namespace: String,
        /// The cluster's name.
        name: String,
        /// The fields that differ and what each one rolls.
        changes: Vec<FieldChange>,
    },
    /// Upgrade the TKG Service (3.0 and later).
    TkgServiceUpgrade,
    /// Upgrade vCenter (and so the Supervisor) from one release to another, e.g. `8.0.1` → `8.0u2c`.
    VcenterUpgrade {
        /// The current release, as [`VcRelease::parse`] reads it (`8.0.1`).
        from: String,
        /// The target release (`8.0u2c`).
        to: String,
        /// The embedded Harbor registry is enabled on the Supervisor (`None`: unknown).
        embedded_harbor: Option<bool>,
        /// The TKG Service version, when known: from 3.0 on vCenter upgrades do not roll clusters.
        tkg_service_version: Option<String>,
    },
}

impl Trigger {
    /// The release a trigger moves clusters to (a TKR/KR name): `--tkr`'s, or the version a changed
    /// manifest (`-f`) moves to; `None` for triggers that keep the version.
    pub fn version_target(&self) -> Option<String> {
        match self {
            Trigger::Tkr { name } => Some(name.clone()),
            Trigger::Manifest { changes, .. } => changes
                .iter()
                .find(|c| c.version)
                .and_then(|c| c.to.as_ref()?.as_str().map(str::to_owned)),
            _ => None,
        }
    }
}

/// Will the cluster roll?
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rolls {
    /// It does not roll.
    No,
    /// It may roll: the rule says so (a VMware table row with "may"), or a fact it needs is unknown.
    Maybe,
    /// It rolls.
    Yes,
}

impl fmt::Display for Rolls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rolls::No => "no",
            Rolls::Maybe => "maybe",
            Rolls::Yes => "yes",
        })
    }
}

/// The rule that decided, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable id, e.g. `CAPI-VERSION`, `VMW-RU-8X-80U2`.
    pub id: String,
    /// The rule in one sentence, as the report prints it.
    pub text: String,
    /// URL or repo path of the real system's rule.
    pub source: String,
}

/// How the pools of a cluster follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum Order {
    /// Version change: pools in list order, `concurrency` pools at a time, one node at a time each.
    Sequential {
        /// Pools rolling at once: the cluster's `upgrade-concurrency` annotation (default 1).
        concurrency: u32,
    },
    /// Template/variable change: every affected pool at once, one node per pool at a time.
    ParallelPerPool,
    /// vSphere 7 v1alpha2: every pool at once.
    Simultaneous,
}

/// What a step rolls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// 1-based position in the roll.
    pub index: usize,
    /// True for the control plane step.
    pub control_plane: bool,
    /// Pools rolled in this step (empty for the control plane).
    pub pools: Vec<String>,
    /// Nodes replaced in this step.
    pub replacements: u32,
    /// New VMs that exist at once during this step (one surge per rolling MachineDeployment/KCP).
    pub surge_vms: u32,
}

/// A pool's fate in this roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolPlan {
    /// The pool's name.
    pub name: String,
    /// Whether it rolls in this roll.
    pub rolls: Rolls,
    /// Step that rolls the pool, if it rolls.
    pub step: Option<usize>,
    /// Its nodes: the pool's `replicas`, else its MachineDeployment's (autoscaled pools), else the
    /// count of its Machines.
    pub replicas: u32,
    /// Why it does not roll or waits (deferred, held, override wins, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The forecast of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterForecast {
    /// The cluster's Supervisor namespace.
    pub namespace: String,
    /// The cluster's name.
    pub name: String,
    /// The API the user manages it with.
    pub api: Api,
    /// Whether it rolls under this trigger, as its [`Rule`] decides.
    pub rolls: Rolls,
    /// The rule that decided, and its source.
    pub rule: Rule,
    /// The control plane's nodes are replaced.
    pub control_plane_rolls: bool,
    /// Every pool's fate, in the spec's order.
    pub pools: Vec<PoolPlan>,
    /// How the pools follow each other; `None` when the rule rolls nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// The roll's steps in order (control plane first when it rolls).
    pub steps: Vec<Step>,
    /// Nodes replaced in total.
    pub node_replacements: u32,
    /// Most new VMs in flight at once.
    pub surge_vms: u32,
    /// Nothing moves while paused; the roll starts when unpaused.
    pub paused: bool,
    /// Rolls already under way or waiting before this trigger (MachineDeployments not up to date).
    pub pending: Vec<String>,
    /// Caveats for the report (deferred pools, unverified orders, paused, unknown facts).
    pub notes: Vec<String>,
}

/// A trigger that cannot be evaluated, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// A `--from`/`--to` release that [`VcRelease::parse`] does not read; holds the text.
    #[error(
        "vCenter version {0:?} is not understood: write e.g. 7.0.3, 8.0.0, 8.0.0b, 8.0.1, 8.0u2c or 8.0.2c"
    )]
    BadVcenterVersion(String),
    /// `--to` is older than `--from` (releases as [`VcRelease`] orders them).
    #[error(
        "vCenter cannot be downgraded ({from} -> {to}): give --from the current release and --to the target"
    )]
    Downgrade {
        /// The current release, normalized (`8.0.2c`).
        from: String,
        /// The target release, normalized.
        to: String,
    },
    /// A `--tkr` whose name carries no `vMAJOR.MINOR[.PATCH]`; holds the text.
    #[error(
        "TKR {0:?} carries no Kubernetes version (expected e.g. v1.29.4---vmware.3-fips.1-tkg.1)"
    )]
    BadTkr(String),
    /// [`VMWARE_TABLE`] is not valid JSON of a [`Table`] (a build defect); holds serde's message.
    #[error("VMware's table does not parse: {0}")]
    Table(String),
}

// ---------------------------------------------------------------------------------------------
// Versions

/// A Kubernetes version read from a TKR/KR name or version: `v1.29.4---vmware.3-fips.1-tkg.1` and
/// `v1.29.4+vmware.3-fips.1-tkg.1` are the same release (object names write `+` as `---`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
///
/// ```
/// use supsvc_core::upgrade::forecast::KubeVersion;
///
/// let a = KubeVersion::parse("v1.29.4---vmware.3-fips.1-tkg.1").unwrap();
/// assert_eq!(Some(a), KubeVersion::parse("v1.29.4+vmware.3-fips.1-tkg.1"));
/// assert!(a > KubeVersion::parse("v1.28.8").unwrap());
/// ```
pub struct KubeVersion {
    /// The major version (`1`).
    pub major: u32,
    /// The minor version (`29`); one minor at a time is the upgrade rule.
    pub minor: u32,
    /// The patch version (`4`); `0` when absent.
    pub patch: u32,
}

impl KubeVersion {
    /// Parses the leading `vMAJOR.MINOR.PATCH` of a TKR name or version.
    pub fn parse(text: &str) -> Option<KubeVersion> {
        let t = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let core = t.split(['+', '-']).next()?;
        let mut it = core.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = it.next().unwrap_or("0").parse().ok()?;
        Some(KubeVersion {
            major,
            minor,
            patch,
        })
    }
}

/// The canonical form of a TKR/KR reference: the version form (`+`), for comparing names and versions.
pub fn normalize_tkr(text: &str) -> String {
    text.trim().replace("---", "+")
}

/// A vCenter release with VMware's letter suffix: `8.0.0b`, `8.0u2c` (= `8.0.2c`), `7.0.3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
///
/// ```
/// use supsvc_core::upgrade::forecast::VcRelease;
///
/// let u2c = VcRelease::parse("8.0u2c").unwrap();
/// assert_eq!(Some(u2c), VcRelease::parse("8.0.2c"));
/// assert_eq!(u2c.to_string(), "8.0.2c");
/// assert!(VcRelease::parse("8.0.2").unwrap() < u2c);
/// ```
pub struct VcRelease {
    /// The major release (`8`).
    pub major: u32,
    /// The minor release (`0`).
    pub minor: u32,
    /// The update (`2` of `8.0u2c`, vSphere 8.0 Update 2c); `0` for a GA release.
    pub update: u32,
    /// `'\0'` for none; letters order after the plain release.
    pub letter: char,
}

impl VcRelease {
    /// Parses `8.0`, `8.0.0`, `8.0.0b`, `8.0.2c`, `8.0u2`, `8.0 U2c`, `8.0GA`, `7.0.3`.
    pub fn parse(text: &str) -> Option<VcRelease> {
        let t: String = text
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let t = t.strip_suffix("ga").unwrap_or(&t);
        let t = t.replace("update", ".").replace('u', ".");
        let t = t.replace("..", ".");
        let mut parts = t.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        let (update, letter) = match parts.next() {
            None | Some("") => (0, '\0'),
            Some(u) => {
                let digits: String = u.chars().take_while(char::is_ascii_digit).collect();
                let rest = &u[digits.len()..];
                let letter = match rest.len() {
                    0 => '\0',
                    1 if rest.chars().all(|c| c.is_ascii_lowercase()) => rest.chars().next()?,
                    _ => return None,
                };
                (digits.parse().ok()?, letter)
            }
        };
        if parts.next().is_some() {
            return None;
        }
        Some(VcRelease {
            major,
            minor,
            update,
            letter,
        })
    }
}

impl fmt::Display for VcRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.update)?;
        if self.letter != '\0' {
            write!(f, "{}", self.letter)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// VMware's table

/// A version range of a table row.
#[derive(Debug, Clone, Default, Deserialize)]
///
/// In the table's JSON: `{"min": "8.0.0", "below": "9.0.0"}` or `{"exact": ["8.0.0b", "8.0.0c"]}`.
pub struct Range {
    /// The lowest release in the range (inclusive); `None`: no lower bound.
    #[serde(default)]
    pub min: Option<String>,
    /// The first release above the range (exclusive); `None`: no upper bound.
    #[serde(default)]
    pub below: Option<String>,
    /// When not empty, the range is exactly these releases (`min`/`below` then ignored).
    #[serde(default)]
    pub exact: Vec<String>,
}

impl Range {
    fn contains(&self, v: VcRelease) -> bool {
        if !self.exact.is_empty() {
            return self.exact.iter().any(|e| VcRelease::parse(e) == Some(v));
        }
        let ok_min = self
            .min
            .as_deref()
            .and_then(VcRelease::parse)
            .is_none_or(|m| v >= m);
        let ok_below = self
            .below
            .as_deref()
            .and_then(VcRelease::parse)
            .is_none_or(|b| v < b);
        ok_min && ok_below
    }
}

/// What a table row does to the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Rolls every cluster.
    All,
    /// May roll every cluster.
    MaybeAll,
    /// Rolls clusters with a non-empty `noProxy`, and all clusters if the embedded Harbor is enabled.
    NoProxyOrHarbor,
    /// Rolls nothing.
    None,
}

/// One row of VMware's table.
#[derive(Debug, Clone, Deserialize)]
pub struct TableRow {
    /// Stable rule id (`VMW-RU-ANY-8X`), reported as [`Rule::id`].
    pub id: String,
    /// The releases upgraded from.
    pub from: Range,
    /// The releases upgraded to.
    pub to: Range,
    /// What the upgrade does to the clusters.
    pub effect: Effect,
    /// VMware's row in our words, reported as [`Rule::text`].
    pub text: String,
}

/// VMware's table as data.
#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    /// The data's format version (`1`).
    pub version: u32,
    /// The VMware document the rows come from ([`SRC_VMWARE`]).
    pub url: String,
    /// When the table applies (TKG Service before 3.0).
    pub note: String,
    /// The rows, in the document's order.
    pub rows: Vec<TableRow>,
}

/// Parses [`VMWARE_TABLE`].
///
/// # Errors
/// [`TriggerError::Table`] when the embedded data does not parse (a defect of the build, which a
/// test guards against).
pub fn vmware_table() -> Result<Table, TriggerError> {
    serde_json::from_str(VMWARE_TABLE).map_err(|e| TriggerError::Table(e.to_string()))
}

/// The rows of the table that match an upgrade, strongest effect first (all > proxy/harbor > maybe >
/// none). An empty answer means the table does not list this upgrade.
pub fn matching_rows(table: &Table, from: VcRelease, to: VcRelease) -> Vec<&TableRow> {
    let rank = |e: Effect| match e {
        Effect::All => 0,
        Effect::NoProxyOrHarbor => 1,
        Effect::MaybeAll => 2,
        Effect::None => 3,
    };
    let mut rows: Vec<&TableRow> = table
        .rows
        .iter()
        .filter(|r| r.from.contains(from) && r.to.contains(to))
        .collect();
    rows.sort_by_key(|r| rank(r.effect));
    rows
}

// ---------------------------------------------------------------------------------------------
// Variables

/// Where a variable lands, as far as the documented ClusterClasses say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarScope {
    /// Control plane and worker templates (vmClass, storageClass, proxy, trust, ntp, ...).
    All,
    /// Worker templates only.
    Workers,
    /// Control plane only (certificate rotation, API server settings).
    ControlPlane,
}

/// Known variables of `tanzukubernetescluster` / `builtin-generic-v3.x`: `(name, scope, rolls, source)`.
/// `Maybe` where no source says a template changes; unknown variables are `Maybe` too (patches are
/// computed by the ClusterClass, on VKS by runtime extensions, and cannot be recomputed offline).
pub const VARIABLES: &[(&str, VarScope, Rolls, &str)] = &[
    ("vmClass", VarScope::All, Rolls::Yes, SRC_VMWARE),
    ("storageClass", VarScope::All, Rolls::Yes, SRC_VMWARE),
    (
        "nodePoolVolumes",
        VarScope::Workers,
        Rolls::Yes,
        "papivot/vks-best-practice README.md",
    ),
    (
        "controlPlaneVolumes",
        VarScope::ControlPlane,
        Rolls::Yes,
        "papivot/vks-best-practice README.md",
    ),
    (
        "volumes",
        VarScope::All,
        Rolls::Yes,
        "papivot/vks-best-practice README.md",
    ),
    (
        "nodePoolLabels",
        VarScope::Workers,
        Rolls::Yes,
        "papivot/vks-best-practice README.md",
    ),
    (
        "nodePoolTaints",
        VarScope::Workers,
        Rolls::Yes,
        "papivot/vks-best-practice README.md",
    ),
    ("proxy", VarScope::All, Rolls::Yes, SRC_CAPI_CHANGE_CLASS),
    ("trust", VarScope::All, Rolls::Yes, SRC_CAPI_CHANGE_CLASS),
    ("ntp", VarScope::All, Rolls::Yes, SRC_CAPI_CHANGE_CLASS),
    (
        "osConfiguration",
        VarScope::All,
        Rolls::Yes,
        "Broadcom KB 404143",
    ),
    (
        "controlPlaneCertificateRotation",
        VarScope::ControlPlane,
        Rolls::Maybe,
        "papivot/vks-best-practice README.md (unverified)",
    ),
    (
        "podSecurityStandard",
        VarScope::ControlPlane,
        Rolls::Maybe,
        "papivot/vks-best-practice README.md (unverified)",
    ),
    (
        "clusterEncryptionConfigYaml",
        VarScope::ControlPlane,
        Rolls::Maybe,
        "papivot/vks-best-practice README.md (unverified)",
    ),
];

/// The rule for a variable: where it lands, whether it rolls, and the source; an unknown variable is
/// `(All, Maybe, change-clusterclass.md)`.
pub fn variable_rule(name: &str) -> (VarScope, Rolls, &'static str) {
    VARIABLES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, scope, rolls, src)| (*scope, *rolls, *src))
        .unwrap_or((VarScope::All, Rolls::Maybe, SRC_CAPI_CHANGE_CLASS))
}

// ---------------------------------------------------------------------------------------------
// Forecast

fn rule(id: &str, text: impl Into<String>, source: &str) -> Rule {
    Rule {
        id: id.to_owned(),
        text: text.into(),
        source: source.to_owned(),
    }
}

/// Replicas of a pool: the topology's, else its MachineDeployment's, else its machines counted.
fn pool_replicas(
    cluster: &Cluster,
    pool: &str,
    mds: &[MachineDeployment],
    machines: &[Machine],
) -> u32 {
    if let Some(n) = cluster
        .pools
        .iter()
        .find(|p| p.name == pool)
        .and_then(|p| p.replicas)
    {
        return n;
    }
    if let Some(n) = mds
        .iter()
        .find(|d| d.namespace == cluster.namespace && d.cluster == cluster.name && d.pool == pool)
        .and_then(|d| d.replicas.or(d.status_replicas))
    {
        return n;
    }
    machines
        .iter()
        .filter(|m| {
            m.namespace == cluster.namespace
                && m.cluster == cluster.name
                && m.pool.as_deref() == Some(pool)
        })
        .count() as u32
}

/// MachineDeployments of the cluster that are not up to date: a roll already pending or under way.
fn pending(cluster: &Cluster, mds: &[MachineDeployment]) -> Vec<String> {
    mds.iter()
        .filter(|d| d.namespace == cluster.namespace && d.cluster == cluster.name)
        .filter_map(|d| {
            let (want, updated) = (d.status_replicas.or(d.replicas)?, d.updated_replicas?);
            (updated < want).then(|| {
                format!(
                    "pool {} (MachineDeployment {}): {updated} of {want} machines up to date",
                    d.pool, d.name
                )
            })
        })
        .collect()
}

/// The forecast of every cluster for one trigger, in the order of `clusters`. `mds` and `machines` may
/// be empty (replica counts then come from the topology only).
///
/// ```
/// use serde_json::json;
/// use supsvc_core::upgrade::forecast::{forecast, Rolls, Trigger};
/// use supsvc_core::upgrade::model::parse_cluster;
///
/// let cluster = parse_cluster(&json!({
///     "apiVersion": "cluster.x-k8s.io/v1beta1",
///     "kind": "Cluster",
///     "metadata": {"name": "tkc-1", "namespace": "ns-1"},
///     "spec": {"topology": {
///         "class": "builtin-generic-v3.1.0",
///         "version": "v1.28.8+vmware.1-fips.1-tkg.2",
///         "controlPlane": {"replicas": 3},
///         "workers": {"machineDeployments": [{"class": "node-pool", "name": "pool-a", "replicas": 2}]}
///     }}
/// }))
/// .unwrap();
/// let tkr = Trigger::Tkr { name: "v1.29.4---vmware.3-fips.1-tkg.1".into() };
/// let plan = &forecast(&[cluster], &[], &[], &tkr).unwrap()[0];
/// assert_eq!(plan.rolls, Rolls::Yes);
/// assert!(plan.steps[0].control_plane); // the control plane first, then pool-a
/// assert_eq!(plan.steps[1].pools, ["pool-a"]);
/// assert_eq!(plan.node_replacements, 5);
/// ```
///
/// # Errors
/// Before any cluster is looked at: [`TriggerError::BadTkr`] for a `--tkr` without a Kubernetes
/// version, [`TriggerError::BadVcenterVersion`] or [`TriggerError::Downgrade`] for a vCenter upgrade's
/// releases, [`TriggerError::Table`] if VMware's table does not parse.
pub fn forecast(
    clusters: &[Cluster],
    mds: &[MachineDeployment],
    machines: &[Machine],
    trigger: &Trigger,
) -> Result<Vec<ClusterForecast>, TriggerError> {
    // Validate the trigger once, before any cluster.
    let table = match trigger {
        Trigger::VcenterUpgrade { from, to, .. } => {
            let f = VcRelease::parse(from)
                .ok_or_else(|| TriggerError::BadVcenterVersion(from.clone()))?;
            let t =
                VcRelease::parse(to).ok_or_else(|| TriggerError::BadVcenterVersion(to.clone()))?;
            if t < f {
                return Err(TriggerError::Downgrade {
                    from: f.to_string(),
                    to: t.to_string(),
                });
            }
            Some((vmware_table()?, f, t))
        }
        Trigger::Tkr { name } => {
            KubeVersion::parse(name).ok_or_else(|| TriggerError::BadTkr(name.clone()))?;
            None
        }
        _ => None,
    };
    Ok(clusters
        .iter()
        .map(|c| forecast_one(c, mds, machines, trigger, table.as_ref()))
        .collect())
}

struct Decision {
    rolls: Rolls,
    rule: Rule,
    control_plane: bool,
    /// Per pool: rolls and note.
    pools: Vec<(Rolls, Option<String>)>,
    order: Option<Order>,
    notes: Vec<String>,
}

fn no(rule: Rule, pools: usize) -> Decision {
    Decision {
        rolls: Rolls::No,
        rule,
        control_plane: false,
        pools: vec![(Rolls::No, None); pools],
        order: None,
        notes: Vec::new(),
    }
}

fn template_order(c: &Cluster) -> Order {
    if c.api.pools_simultaneous() {
        Order::Simultaneous
    } else {
        Order::ParallelPerPool
    }
}

fn decide_tkr(c: &Cluster, name: &str) -> Decision {
    let target = KubeVersion::parse(name);
    let current = c.version.as_deref().and_then(KubeVersion::parse);
    let n = c.pools.len();
    if c.version.as_deref().map(normalize_tkr) == Some(normalize_tkr(name)) {
        return no(
            rule(
                "CAPI-VERSION-SAME",
                format!("the cluster already runs {name}"),
                SRC_CAPI_OPERATE,
            ),
            n,
        );
    }
    if let (Some(t), Some(cur)) = (target, current) {
        if t < cur {
            return no(
                rule(
                    "CAPI-VERSION-DOWNGRADE",
                    format!(
                        "{name} is older than the cluster's {}: Kubernetes versions cannot be downgraded; the change is refused",
                        c.version.as_deref().unwrap_or_default()
                    ),
                    SRC_CAPI_OPERATE,
                ),
                n,
            );
        }
        if t.major != cur.major || t.minor > cur.minor + 1 {
            return no(
                rule(
                    "CAPI-VERSION-MINOR-SKIP",
                    format!(
                        "{name} is more than one minor ahead of {}: upgrades go one minor at a time; the change is refused",
                        c.version.as_deref().unwrap_or_default()
                    ),
                    SRC_CAPI_OPERATE,
                ),
                n,
            );
        }
    }
    let mut notes = Vec::new();
    if current.is_none() {
        notes.push(
            "the cluster's current TKR is unknown: assumed different from the target".to_owned(),
        );
    }
    if matches!(c.api, Api::ClusterV1beta2) && !c.skip_auto_cc_rebase {
        notes.push(format!(
            "VKS may rebase the cluster to the newest ClusterClass that supports {name} (no {} annotation): templates rotate too (Broadcom KB 404143)",
            super::model::SKIP_AUTO_CC_REBASE
        ));
    }
    if c.api.pools_simultaneous() {
        return Decision {
            rolls: Rolls::Yes,
            rule: rule(
                "VMW-POOLS-SIMULTANEOUS",
                "version change: control plane first, then all node pools at the same time (vSphere 7, TKGS v1alpha2 API)",
                SRC_VMWARE,
            ),
            control_plane: true,
            pools: vec![(Rolls::Yes, None); n],
            order: Some(Order::Simultaneous),
            notes,
        };
    }
    let mut held = false;
    let pools = c
        .pools
        .iter()
        .map(|p| {
            if p.hold_upgrade_sequence {
                held = true;
            }
            if p.defer_upgrade {
                (Rolls::No, Some("defer-upgrade: skipped by version upgrades until the annotation is removed".to_owned()))
            } else if held {
                (Rolls::No, Some("held: a hold-upgrade-sequence annotation on this or an earlier pool stops the sequence here until removed".to_owned()))
            } else {
                (Rolls::Yes, None)
            }
        })
        .collect::<Vec<_>>();
    if pools.iter().any(|(r, _)| *r == Rolls::No) {
        notes.push("the upgrade is not complete until the defer/hold annotations are removed and those pools roll".to_owned());
    }
    Decision {
        rolls: Rolls::Yes,
        rule: rule(
            "CAPI-VERSION",
            format!(
                "version change: control plane first, then pools in list order, {} at a time (upgrade-concurrency)",
                c.upgrade_concurrency
            ),
            SRC_CAPI_OPERATE,
        ),
        control_plane: true,
        pools,
        order: Some(Order::Sequential {
            concurrency: c.upgrade_concurrency,
        }),
        notes,
    }
}

fn decide_variable(c: &Cluster, name: &str, value: &Value, pool: Option<&str>) -> Decision {
    let n = c.pools.len();
    if c.class.is_none() {
        return Decision {
            rolls: Rolls::Maybe,
            rule: rule(
                "VAR-NO-CLASS",
                format!(
                    "the cluster has no ClusterClass topology in view: whether setting {name} rolls it depends on how its TKC maps to templates"
                ),
                SRC_VMWARE,
            ),
            control_plane: false,
            pools: vec![(Rolls::Maybe, None); n],
            order: Some(template_order(c)),
            notes: Vec::new(),
        };
    }
    let (scope, known, source) = variable_rule(name);
    if let Some(pool_name) = pool {
        let Some(p) = c.pools.iter().find(|p| p.name == pool_name) else {
            return no(
                rule(
                    "VAR-NO-POOL",
                    format!("the cluster has no pool {pool_name}"),
                    SRC_CAPI_OPERATE,
                ),
                n,
            );
        };
        if p.overrides.get(name).or_else(|| c.variables.get(name)) == Some(value)
            || scope == VarScope::ControlPlane
        {
            let why = if scope == VarScope::ControlPlane {
                format!("{name} only feeds the control plane's templates")
            } else {
                format!("pool {pool_name} already has {name} = {value}")
            };
            return no(rule("VAR-UNCHANGED", why, source), n);
        }
        let pools = c
            .pools
            .iter()
            .map(|q| {
                if q.name == pool_name {
                    (known, None)
                } else {
                    (Rolls::No, Some("not changed".to_owned()))
                }
            })
            .collect();
        return Decision {
            rolls: known,
            rule: rule(
                "CAPI-TEMPLATE-ROTATION",
                format!(
                    "override of {name} on pool {pool_name}: its templates rotate and the pool rolls, one node at a time"
                ),
                source,
            ),
            control_plane: false,
            pools,
            order: Some(template_order(c)),
            notes: Vec::new(),
        };
    }
    let cp_changes = scope != VarScope::Workers
        && c.control_plane_overrides
            .get(name)
            .or_else(|| c.variables.get(name))
            != Some(value)
        && !c.control_plane_overrides.contains_key(name);
    let pools: Vec<(Rolls, Option<String>)> = c
        .pools
        .iter()
        .map(|p| {
            if scope == VarScope::ControlPlane {
                (Rolls::No, None)
            } else if p.overrides.contains_key(name) {
                (
                    Rolls::No,
                    Some(format!("the pool's own override of {name} wins")),
                )
            } else if c.variables.get(name) == Some(value) {
                (Rolls::No, Some(format!("{name} is already {value}")))
            } else {
                (known, None)
            }
        })
        .collect();
    let any_pool = pools.iter().any(|(r, _)| *r != Rolls::No);
    if !cp_changes && !any_pool {
        return no(
            rule(
                "VAR-UNCHANGED",
                format!("{name} is already {value} wherever it applies"),
                source,
            ),
            n,
        );
    }
    let mut notes = Vec::new();
    if cp_changes && any_pool {
        notes.push("VMware documents control plane first, then one node per pool; upstream Cluster API may roll the control plane and the pools concurrently (unverified on VKS)".to_owned());
    }
    Decision {
        rolls: known,
        rule: rule(
            if known == Rolls::Yes {
                "CAPI-TEMPLATE-ROTATION"
            } else {
                "VAR-UNKNOWN-EFFECT"
            },
            if known == Rolls::Yes {
                format!(
                    "variable {name} feeds the machine templates: they rotate; control plane first, then one node per pool in parallel"
                )
            } else {
                format!(
                    "variable {name}: whether it feeds a machine template depends on the ClusterClass's patches, which cannot be computed offline"
                )
            },
            source,
        ),
        control_plane: cp_changes,
        pools,
        order: Some(template_order(c)),
        notes,
    }
}

fn decide_system(c: &Cluster, rolls: Rolls, r: Rule) -> Decision {
    Decision {
        rolls,
        rule: r,
        control_plane: rolls != Rolls::No,
        pools: vec![(rolls, None); c.pools.len()],
        order: (rolls != Rolls::No).then(|| template_order(c)),
        notes: Vec::new(),
    }
}

fn decide_vcenter(
    c: &Cluster,
    table: &(Table, VcRelease, VcRelease),
    harbor: Option<bool>,
    tkgs: Option<&str>,
) -> Decision {
    let (table, from, to) = table;
    if let Some(v) = tkgs.and_then(|v| {
        v.trim()
            .trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    }) && v >= 3
    {
        return no(
            rule(
                "VMW-TKGS-3-INDEPENDENT",
                "from TKG Service 3.0 on, the TKG controller is independent of vCenter and the Supervisor: upgrading them does not roll clusters",
                SRC_VMWARE,
            ),
            c.pools.len(),
        );
    }
    let rows = matching_rows(table, *from, *to);
    let Some(row) = rows.first() else {
        return decide_system(
            c,
            Rolls::Maybe,
            rule(
                "VMW-RU-UNLISTED",
                format!(
                    "VMware's table does not list {from} -> {to}: a Supervisor upgrade that changes the generated templates rolls clusters; check the release notes"
                ),
                &table.url,
            ),
        );
    };
    let r = rule(&row.id, row.text.clone(), &table.url);
    match row.effect {
        Effect::All => decide_system(c, Rolls::Yes, r),
        Effect::MaybeAll => decide_system(c, Rolls::Maybe, r),
        Effect::None => no(r, c.pools.len()),
        Effect::NoProxyOrHarbor => {
            if !c.no_proxy.is_empty() {
                let mut d = decide_system(c, Rolls::Yes, r);
                d.notes
                    .push(format!("its proxy has noProxy {:?}", c.no_proxy));
                d
            } else {
                match harbor {
                    Some(true) => {
                        let mut d = decide_system(c, Rolls::Yes, r);
                        d.notes
                            .push("the embedded Harbor registry is enabled".to_owned());
                        d
                    }
                    Some(false) => no(r, c.pools.len()),
                    None => {
                        let mut d = decide_system(c, Rolls::Maybe, r);
                        d.notes.push("rolls if the embedded Harbor registry is enabled on the Supervisor (say so with --embedded-harbor=true|false)".to_owned());
                        d
                    }
                }
            }
        }
    }
}

fn decide_class(c: &Cluster, name: &str, offered: &[ClassOffer]) -> Decision {
    let n = c.pools.len();
    let Some(current) = c.class.as_deref() else {
        return no(
            rule(
                "CAPI-CLASS-NONE",
                "the cluster has no ClusterClass topology (vSphere 7 TanzuKubernetesCluster v1alpha2): it cannot be rebased",
                SRC_CAPI_CHANGE_CLASS,
            ),
            n,
        );
    };
    if current == name {
        return no(
            rule(
                "CAPI-CLASS-SAME",
                format!("the cluster already uses ClusterClass {name}"),
                SRC_CAPI_CHANGE_CLASS,
            ),
            n,
        );
    }
    if !offered.is_empty() {
        let Some(target) = offered.iter().find(|o| {
            o.name == name && (o.namespace == c.namespace || o.namespace == VKS_PUBLIC_NAMESPACE)
        }) else {
            return no(
                rule(
                    "CAPI-CLASS-NOT-FOUND",
                    format!(
                        "no ClusterClass {name} in namespace {} or {VKS_PUBLIC_NAMESPACE}: the rebase is refused",
                        c.namespace
                    ),
                    SRC_CAPI_CHANGE_CLASS,
                ),
                n,
            );
        };
        let missing: Vec<String> = c
            .pools
            .iter()
            .filter_map(|p| p.class.as_ref().map(|k| (p, k)))
            .filter(|(_, k)| !target.worker_classes.contains(k))
            .map(|(p, k)| format!("{} (class {k})", p.name))
            .collect();
        if !missing.is_empty() {
            return no(
                rule(
                    "CAPI-CLASS-INCOMPATIBLE",
                    format!(
                        "ClusterClass {name} defines no MachineDeployment class for pools {}: Cluster API's webhook refuses the rebase",
                        missing.join(", ")
                    ),
                    SRC_CAPI_CHANGE_CLASS,
                ),
                n,
            );
        }
    }
    let mut d = decide_system(
        c,
        Rolls::Yes,
        rule(
            "CAPI-CLASS-REBASE",
            format!(
                "rebase from {current} to {name}: every template is regenerated from the new class; templates whose spec differs rotate (control plane first, then one node per pool in parallel)"
            ),
            SRC_CAPI_CHANGE_CLASS,
        ),
    );
    d.notes.push(format!(
        "a pool whose template the new class generates identically does not roll; the templates' contents (ClusterClass patches{}) cannot be computed offline",
        if matches!(c.api, Api::ClusterV1beta2) {
            ", VKS runtime extensions"
        } else {
            ""
        }
    ));
    if offered.is_empty() {
        d.notes.push(format!(
            "the ClusterClasses could not be read: whether {name} exists and offers every pool's class was not checked"
        ));
    }
    d
}

fn decide_manifest(
    c: &Cluster,
    (namespace, name): (&str, &str),
    changes: &[FieldChange],
) -> Decision {
    let n = c.pools.len();
    if c.namespace != namespace || c.name != name {
        return no(
            rule(
                "MANIFEST-OTHER-CLUSTER",
                format!("the file changes {namespace}/{name}, not this cluster"),
                SRC_CAPI_CHANGE_CLASS,
            ),
            n,
        );
    }
    if changes.is_empty() {
        return no(
            rule(
                "MANIFEST-UNCHANGED",
                "the file sets every field as the live object has it",
                super::change::SRC_MERGE_PATCH,
            ),
            n,
        );
    }
    // A version change decides order, defer/hold and the one-minor rule, as --tkr does.
    let version = changes
        .iter()
        .find(|ch| ch.version && ch.affects == Affects::Cluster)
        .and_then(|ch| ch.to.as_ref()?.as_str());
    let mut d = match version {
        Some(v) => decide_tkr(c, v),
        None => Decision {
            rolls: Rolls::No,
            rule: changes[0].rule.clone(),
            control_plane: false,
            pools: vec![(Rolls::No, None); n],
            order: Some(template_order(c)),
            notes: Vec::new(),
        },
    };
    if version.is_some() && d.rolls == Rolls::No {
        // Refused (minor skip, downgrade) or unchanged: other fields are not applied either.
        return d;
    }
    let mut cp = if d.control_plane {
        Rolls::Yes
    } else {
        Rolls::No
    };
    let mut strongest: Option<&FieldChange> = None;
    for ch in changes {
        if version.is_some() && ch.version && ch.affects == Affects::Cluster {
            continue;
        }
        if ch.rolls != Rolls::No {
            if matches!(ch.affects, Affects::Cluster | Affects::ControlPlane) {
                cp = cp.max(ch.rolls);
            }
            for (i, p) in c.pools.iter().enumerate() {
                let hit = match &ch.affects {
                    Affects::Cluster | Affects::Workers => true,
                    Affects::Pool(name) => *name == p.name,
                    Affects::ControlPlane => false,
                };
                if hit && ch.rolls > d.pools[i].0 {
                    d.pools[i] = (ch.rolls, Some(format!("{}: {}", ch.path, ch.rule.id)));
                }
            }
            if strongest.is_none_or(|s| ch.rolls > s.rolls) {
                strongest = Some(ch);
            }
        }
        let show = |v: &Option<Value>| {
            v.as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "(none)".into())
        };
        d.notes.push(format!(
            "{}: {} -> {}: rolls {} ({}: {}; source {})",
            ch.path,
            show(&ch.from),
            show(&ch.to),
            ch.rolls,
            ch.rule.id,
            ch.rule.text,
            ch.rule.source
        ));
    }
    d.control_plane = cp != Rolls::No;
    let pools_max = d.pools.iter().map(|(r, _)| *r).max().unwrap_or(Rolls::No);
    d.rolls = d.rolls.max(cp).max(pools_max);
    if version.is_none() {
        if let Some(s) = strongest {
            d.rule = s.rule.clone();
        }
        if d.rolls == Rolls::No {
            d.order = None;
        }
    }
    d
}

fn forecast_one(
    c: &Cluster,
    mds: &[MachineDeployment],
    machines: &[Machine],
    trigger: &Trigger,
    table: Option<&(Table, VcRelease, VcRelease)>,
) -> ClusterForecast {
    let d = match (trigger, table) {
        (Trigger::Tkr { name }, _) => decide_tkr(c, name),
        (Trigger::SetVariable { name, value, pool }, _) => {
            decide_variable(c, name, value, pool.as_deref())
        }
        (Trigger::Class { name, offered }, _) => decide_class(c, name, offered),
        (
            Trigger::Manifest {
                namespace,
                name,
                changes,
                ..
            },
            _,
        ) => decide_manifest(c, (namespace, name), changes),
        (Trigger::TkgServiceUpgrade, _) => decide_system(
            c,
            Rolls::Maybe,
            rule(
                "VMW-TKGS-UPGRADE",
                "upgrading the TKG Service may roll TKG clusters (its ClusterClass and generated templates may change)",
                SRC_VMWARE,
            ),
        ),
        (
            Trigger::VcenterUpgrade {
                embedded_harbor,
                tkg_service_version,
                ..
            },
            Some(t),
        ) => decide_vcenter(c, t, *embedded_harbor, tkg_service_version.as_deref()),
        (Trigger::VcenterUpgrade { .. }, None) => decide_system(
            c,
            Rolls::Maybe,
            rule(
                "VMW-RU-UNLISTED",
                "vCenter versions not evaluated",
                SRC_VMWARE,
            ),
        ),
    };
    let replicas: Vec<u32> = c
        .pools
        .iter()
        .map(|p| pool_replicas(c, &p.name, mds, machines))
        .collect();
    let mut steps = Vec::new();
    if d.control_plane {
        steps.push(Step {
            index: 1,
            control_plane: true,
            pools: Vec::new(),
            replacements: c.control_plane_replicas,
            surge_vms: 1,
        });
    }
    let rolling: Vec<usize> = (0..c.pools.len())
        .filter(|i| d.pools[*i].0 != Rolls::No)
        .collect();
    let batches: Vec<Vec<usize>> = match d.order {
        Some(Order::Sequential { concurrency }) => rolling
            .chunks(concurrency.max(1) as usize)
            .map(<[usize]>::to_vec)
            .collect(),
        Some(_) if !rolling.is_empty() => vec![rolling.clone()],
        _ => Vec::new(),
    };
    let mut step_of = vec![None; c.pools.len()];
    for batch in batches {
        let index = steps.len() + 1;
        for i in &batch {
            step_of[*i] = Some(index);
        }
        steps.push(Step {
            index,
            control_plane: false,
            pools: batch.iter().map(|i| c.pools[*i].name.clone()).collect(),
            replacements: batch.iter().map(|i| replicas[*i]).sum(),
            surge_vms: batch.len() as u32,
        });
    }
    let mut notes = d.notes;
    if c.paused && d.rolls != Rolls::No {
        notes.push("paused: nothing rolls until spec.paused / the paused annotation is removed; then the roll starts".to_owned());
    }
    ClusterForecast {
        namespace: c.namespace.clone(),
        name: c.name.clone(),
        api: c.api,
        rolls: d.rolls,
        rule: d.rule,
        control_plane_rolls: d.control_plane,
        pools: c
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| PoolPlan {
                name: p.name.clone(),
                rolls: d.pools[i].0,
                step: step_of[i],
                replicas: replicas[i],
                note: d.pools[i].1.clone(),
            })
            .collect(),
        order: d.order,
        node_replacements: steps.iter().map(|s| s.replacements).sum(),
        surge_vms: steps.iter().map(|s| s.surge_vms).max().unwrap_or(0),
        steps,
        paused: c.paused,
        pending: pending(c, mds),
        notes,
    }
}

/// Orders forecasts for display: namespace, then name.
pub fn sort(forecasts: &mut [ClusterForecast]) {
    forecasts.sort_by(|a, b| match a.namespace.cmp(&b.namespace) {
        Ordering::Equal => a.name.cmp(&b.name),
        o => o,
    });
}
