//! `-f changed-cluster.yaml`: which fields of a changed TanzuKubernetesCluster or Cluster differ from
//! the live object, and for each one whether it rolls machines, which, and by which rule.
//!
//! The comparison follows what `kubectl apply` sends for a custom resource: a JSON merge patch
//! (RFC 7386; kubernetes `staging/src/k8s.io/kubectl/pkg/cmd/apply/patcher.go` falls back to it for
//! types without a strategic-merge schema): a map key the file leaves out keeps its live value, a list
//! is replaced as a whole. So a key absent from the file is *unchanged*; an entry absent from a list
//! (a node pool, a variable) is *removed*, and keys left out inside a list entry are removed too.
//! Lists of named entries (`nodePools`, `machineDeployments`, `variables`, `overrides`) are compared
//! by `name`, so reordering them is not a change of their content.
//!
//! Field rules and their sources:
//! - Cluster API rolls a Machine when its *rollout fields* differ: Kubernetes version, bootstrap and
//!   infrastructure template (rotated by the topology controller when a class, variable or override
//!   that feeds it changes), failure domain (kubernetes-sigs/cluster-api
//!   `docs/book/src/developer/core/controllers/machine-deployment.md`, `internal/controllers/
//!   machinedeployment/mdutil/util.go` `MachineTemplateUpToDate`; `controlplane/kubeadm/internal/filters.go`).
//! - Replicas scale without replacing; labels, annotations, `nodeDrainTimeout`, `nodeDeletionTimeout`,
//!   `nodeVolumeDetachTimeout`, `minReadySeconds` are propagated in place (cluster-api
//!   `docs/book/src/tasks/control-plane/kubeadm-control-plane.md`, `machine-deployment.md`).
//! - VMware: updating the TKR, the VM class or the storage class starts a rolling update (seed
//!   document 002, [`SRC_VMWARE`]); the `run.tanzu.vmware.com/resolve-os-image` annotation selects the
//!   image and so the template (papivot/vks-best-practice `README.md`).
//! - A field no rule names is reported as `maybe`, never as "does not roll".

use serde::Serialize;
use serde_json::Value;

use super::forecast::{
    Rolls, Rule, SRC_CAPI_CHANGE_CLASS, SRC_CAPI_OPERATE, SRC_VMWARE, VarScope, variable_rule,
};
use super::model::{PAUSED_ANNOTATION, RESOLVE_OS_IMAGE};

/// Rollout fields of a MachineDeployment (failure domain among them).
pub const SRC_CAPI_MD: &str =
    "kubernetes-sigs/cluster-api docs/book/src/developer/core/controllers/machine-deployment.md";
/// In-place propagation of labels, annotations and timeouts on the control plane.
pub const SRC_CAPI_KCP: &str =
    "kubernetes-sigs/cluster-api docs/book/src/tasks/control-plane/kubeadm-control-plane.md";
/// The image selector feeds the machine template.
pub const SRC_OS_IMAGE: &str = "papivot/vks-best-practice README.md";
/// `kubectl apply` of a custom resource is a JSON merge patch.
pub const SRC_MERGE_PATCH: &str =
    "RFC 7386; kubernetes staging/src/k8s.io/kubectl/pkg/cmd/apply/patcher.go";

/// Which machines a changed field concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "pool")]
pub enum Affects {
    /// The control plane and every pool.
    Cluster,
    /// The control plane only.
    ControlPlane,
    /// Every worker pool, not the control plane.
    Workers,
    /// One pool, by name.
    Pool(String),
}

/// One field that differs between the live object and the file, and what it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// The field, e.g. `spec.topology.workers.machineDeployments[pool-a].replicas`; list entries
    /// are named by their `name`.
    pub path: String,
    /// The live value; `None` when the file adds the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The file's value; `None` when the file removes the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
    /// Whether it replaces machines.
    pub rolls: Rolls,
    /// Which machines.
    pub affects: Affects,
    /// A Kubernetes version change: pools then roll in list order, not in parallel.
    pub version: bool,
    /// The rule and its source.
    pub rule: Rule,
}

/// Why a changed manifest cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The document is not a mapping (empty file, a list, a scalar).
    #[error("the file is not a Kubernetes object (a YAML mapping with apiVersion, kind, metadata)")]
    NotAnObject,
    /// A kind other than TanzuKubernetesCluster or Cluster.
    #[error(
        "kind {0:?} is not a TKG cluster: give a TanzuKubernetesCluster (run.tanzu.vmware.com) or a Cluster (cluster.x-k8s.io)"
    )]
    Kind(String),
    /// No `metadata.name`.
    #[error("the object has no metadata.name: name the cluster the file changes")]
    NoName,
}

/// The kind, namespace (may be empty) and name a changed manifest names.
///
/// # Errors
/// [`ManifestError`] when the document is not an object, not a TKC/Cluster, or has no name.
pub fn identify(doc: &Value) -> Result<(String, String, String), ManifestError> {
    if !doc.is_object() {
        return Err(ManifestError::NotAnObject);
    }
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ok = match kind {
        "TanzuKubernetesCluster" => api.is_empty() || api.starts_with("run.tanzu.vmware.com/"),
        "Cluster" => api.is_empty() || api.starts_with("cluster.x-k8s.io/"),
        _ => false,
    };
    if !ok {
        return Err(ManifestError::Kind(if api.is_empty() {
            kind.to_owned()
        } else {
            format!("{api} {kind}")
        }));
    }
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(ManifestError::NoName)?;
    let ns = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok((kind.to_owned(), ns.to_owned(), name.to_owned()))
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Named(String),
}

const NAMED_LISTS: &[&str] = &["nodePools", "machineDeployments", "variables", "overrides"];

fn named(list: &[Value]) -> Option<Vec<(&str, &Value)>> {
    list.iter()
        .map(|e| Some((e.get("name")?.as_str()?, e)))
        .collect()
}

type Diff = (Vec<Seg>, Option<Value>, Option<Value>);

/// Leaf differences, merge-patch style: `inside_list` makes absent keys removals.
fn diff(
    live: Option<&Value>,
    file: Option<&Value>,
    path: &mut Vec<Seg>,
    inside_list: bool,
    out: &mut Vec<Diff>,
) {
    let live = live.filter(|v| !v.is_null());
    let file = file.filter(|v| !v.is_null());
    // A map on one side only: compare it key by key with an empty map, so each key is judged alone.
    let empty = Value::Object(serde_json::Map::new());
    let (live, file) = match (live, file) {
        (None, Some(f)) if f.is_object() => (Some(&empty), Some(f)),
        (Some(l), None) if l.is_object() && inside_list => (Some(l), Some(&empty)),
        other => other,
    };
    match (live, file) {
        (_, None) if !inside_list => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(Seg::Key(k.clone()));
                diff(a.get(k), b.get(k), path, inside_list, out);
                path.pop();
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if matches!(path.last(), Some(Seg::Key(k)) if NAMED_LISTS.contains(&k.as_str())) => {
            if let (Some(na), Some(nb)) = (named(a), named(b)) {
                let mut names: Vec<&str> = na.iter().chain(nb.iter()).map(|(n, _)| *n).collect();
                names.dedup();
                let mut seen = Vec::new();
                for n in names {
                    if seen.contains(&n) {
                        continue;
                    }
                    seen.push(n);
                    let x = na.iter().find(|(m, _)| *m == n).map(|(_, v)| *v);
                    let y = nb.iter().find(|(m, _)| *m == n).map(|(_, v)| *v);
                    path.push(Seg::Named(n.to_owned()));
                    match (x, y) {
                        (Some(x), Some(y)) => diff(Some(x), Some(y), path, true, out),
                        _ => out.push((path.clone(), x.cloned(), y.cloned())),
                    }
                    path.pop();
                }
            } else if a != b {
                out.push((path.clone(), live.cloned(), file.cloned()));
            }
        }
        (a, b) if a != b => out.push((path.clone(), a.cloned(), b.cloned())),
        _ => {}
    }
}

fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Named(n) => {
                s.push('[');
                s.push_str(n);
                s.push(']');
            }
        }
    }
    s
}

fn r(id: &str, text: &str, source: &str) -> Rule {
    Rule {
        id: id.to_owned(),
        text: text.to_owned(),
        source: source.to_owned(),
    }
}

struct Class {
    rolls: Rolls,
    affects: Affects,
    version: bool,
    rule: Rule,
}

fn yes(affects: Affects, rule: Rule) -> Class {
    Class {
        rolls: Rolls::Yes,
        affects,
        version: false,
        rule,
    }
}

fn no(affects: Affects, rule: Rule) -> Class {
    Class {
        rolls: Rolls::No,
        affects,
        version: false,
        rule,
    }
}

fn maybe(affects: Affects, field: &str) -> Class {
    Class {
        rolls: Rolls::Maybe,
        affects,
        version: false,
        rule: r(
            "FIELD-UNKNOWN-EFFECT",
            &format!("no known rule says whether {field} rolls machines: treated as maybe"),
            SRC_CAPI_CHANGE_CLASS,
        ),
    }
}

fn version(affects: Affects) -> Class {
    Class {
        rolls: Rolls::Yes,
        affects,
        version: true,
        rule: r(
            "CAPI-VERSION",
            "Kubernetes version change: control plane first, then pools in list order (upgrade-concurrency at a time)",
            SRC_CAPI_OPERATE,
        ),
    }
}

fn in_place(affects: Affects, what: &str, source: &str) -> Class {
    no(
        affects,
        r(
            "CAPI-IN-PLACE",
            &format!("{what} is propagated to the machines in place: nothing is replaced"),
            source,
        ),
    )
}

fn scale(affects: Affects) -> Class {
    no(
        affects,
        r(
            "CAPI-SCALE",
            "replicas only scale: machines are added or removed, none is replaced",
            SRC_CAPI_MD,
        ),
    )
}

fn variable(name: &str, affects: Affects) -> Class {
    let (scope, rolls, source) = variable_rule(name);
    let affects = match (affects, scope) {
        (Affects::Cluster, VarScope::Workers) => Affects::Workers,
        (Affects::Cluster, VarScope::ControlPlane) => Affects::ControlPlane,
        (Affects::Pool(_), VarScope::ControlPlane) | (Affects::ControlPlane, VarScope::Workers) => {
            return no(
                Affects::Cluster,
                r(
                    "VAR-NOT-APPLIED",
                    &format!("variable {name} does not feed this part's templates"),
                    source,
                ),
            );
        }
        (a, _) => a,
    };
    Class {
        rolls,
        affects,
        version: false,
        rule: if rolls == Rolls::Yes {
            r(
                "CAPI-TEMPLATE-ROTATION",
                &format!(
                    "variable {name} feeds the machine templates: they rotate and the machines roll"
                ),
                source,
            )
        } else {
            r(
                "VAR-UNKNOWN-EFFECT",
                &format!(
                    "variable {name}: whether it feeds a machine template depends on the ClusterClass's patches"
                ),
                source,
            )
        },
    }
}

fn metadata(rest: &[&str], affects: Affects) -> Class {
    match rest {
        ["annotations", RESOLVE_OS_IMAGE] => yes(
            affects,
            r(
                "VMW-OS-IMAGE",
                "the resolve-os-image selector picks the machine image: the template changes and the machines roll",
                SRC_OS_IMAGE,
            ),
        ),
        ["annotations", PAUSED_ANNOTATION] => no(
            affects,
            r(
                "CAPI-PAUSED",
                "pausing or resuming replaces nothing by itself (a pending roll starts when resumed)",
                "kubernetes-sigs/cluster-api api/core/v1beta2/common_types.go",
            ),
        ),
        _ => in_place(affects, "a label or annotation", SRC_CAPI_KCP),
    }
}

const TIMEOUTS: &[&str] = &[
    "nodeDrainTimeout",
    "nodeDeletionTimeout",
    "nodeVolumeDetachTimeout",
    "minReadySeconds",
    "deletion",
];

/// A pool that appears in or disappears from the file: only its own machines change.
fn pool_added_or_removed(pool: &str) -> Class {
    no(
        Affects::Pool(pool.to_string()),
        r(
            "CAPI-POOL-ADDED-OR-REMOVED",
            &format!(
                "pool {pool} is added or removed: its machines are created or drained and deleted for good; other pools do not roll"
            ),
            SRC_CAPI_OPERATE,
        ),
    )
}

/// A path's keys, a named list item as `[]` (so a rule matches every item).
fn keys_of(p: &[Seg]) -> Vec<&str> {
    p.iter()
        .map(|s| match s {
            Seg::Key(k) => k.as_str(),
            Seg::Named(_) => "[]",
        })
        .collect()
}

/// The rule for one changed path of a Cluster.
fn classify_cluster(p: &[Seg]) -> Class {
    let keys = keys_of(p);
    let name_at = |i: usize| match p.get(i) {
        Some(Seg::Named(n)) => n.clone(),
        _ => String::new(),
    };
    let field = render(p);
    match keys.as_slice() {
        ["metadata", rest @ ..] => metadata(rest, Affects::Cluster),
        ["spec", "paused"] => no(
            Affects::Cluster,
            r(
                "CAPI-PAUSED",
                "pausing or resuming replaces nothing by itself (a pending roll starts when resumed)",
                "kubernetes-sigs/cluster-api api/core/v1beta2/common_types.go",
            ),
        ),
        ["spec", "topology", "version"] => version(Affects::Cluster),
        ["spec", "topology", "class"] | ["spec", "topology", "classRef", ..] => yes(
            Affects::Cluster,
            r(
                "CAPI-CLASS-REBASE",
                "ClusterClass rebase: every template is regenerated from the new class; templates whose spec differs rotate and their machines roll",
                SRC_CAPI_CHANGE_CLASS,
            ),
        ),
        ["spec", "topology", "variables", "[]", ..] => variable(&name_at(3), Affects::Cluster),
        ["spec", "topology", "controlPlane", "replicas"] => scale(Affects::ControlPlane),
        ["spec", "topology", "controlPlane", "metadata", rest @ ..] => {
            metadata(rest, Affects::ControlPlane)
        }
        ["spec", "topology", "controlPlane", t, ..] if TIMEOUTS.contains(t) => {
            in_place(Affects::ControlPlane, t, SRC_CAPI_KCP)
        }
        [
            "spec",
            "topology",
            "controlPlane",
            "variables",
            "overrides",
            "[]",
            ..,
        ] => variable(&name_at(5), Affects::ControlPlane),
        ["spec", "topology", "controlPlane", "machineHealthCheck", ..] => in_place(
            Affects::ControlPlane,
            "how the control plane is health-checked",
            SRC_CAPI_KCP,
        ),
        ["spec", "topology", "controlPlane", ..] => maybe(Affects::ControlPlane, &field),
        ["spec", "topology", "workers", "machineDeployments", "[]"] => {
            pool_added_or_removed(&name_at(4))
        }
        [
            "spec",
            "topology",
            "workers",
            "machineDeployments",
            "[]",
            rest @ ..,
        ] => {
            let pool = Affects::Pool(name_at(4));
            match rest {
                ["replicas"] => scale(pool),
                ["class"] => yes(
                    pool,
                    r(
                        "CAPI-MD-CLASS",
                        "the pool's MachineDeployment class changes: its templates come from another class and rotate",
                        SRC_CAPI_CHANGE_CLASS,
                    ),
                ),
                ["failureDomain"] => yes(
                    pool,
                    r(
                        "CAPI-MD-FAILURE-DOMAIN",
                        "the failure domain is a rollout field of the machine template: the pool's machines are replaced in the new zone",
                        SRC_CAPI_MD,
                    ),
                ),
                ["metadata", rest @ ..] => metadata(rest, pool),
                [t, ..] if TIMEOUTS.contains(t) => in_place(pool, t, SRC_CAPI_MD),
                ["strategy", ..] | ["rollout", ..] | ["machineHealthCheck", ..] => {
                    in_place(pool, "how the pool rolls or is health-checked", SRC_CAPI_MD)
                }
                ["variables", "overrides", "[]", ..] => {
                    let Some(Seg::Named(v)) = p.get(7) else {
                        return maybe(pool, &field);
                    };
                    variable(v, pool)
                }
                _ => maybe(pool, &field),
            }
        }
        _ => maybe(Affects::Cluster, &field),
    }
}

/// The rule for one changed path of a TanzuKubernetesCluster (v1alpha2/v1alpha3).
fn classify_tkc(p: &[Seg]) -> Class {
    let keys = keys_of(p);
    let field = render(p);
    let vm = |affects: Affects, what: &str| {
        yes(
            affects,
            r(
                "VMW-NODE-SPEC",
                &format!("changing the {what} of nodes starts a rolling update of those nodes"),
                SRC_VMWARE,
            ),
        )
    };
    match keys.as_slice() {
        ["metadata", rest @ ..] => metadata(rest, Affects::Cluster),
        ["spec", "topology", "controlPlane", "tkr", ..] | ["spec", "distribution", ..] => {
            version(Affects::Cluster)
        }
        ["spec", "topology", "controlPlane", "replicas"] => scale(Affects::ControlPlane),
        ["spec", "topology", "controlPlane", "vmClass"] => vm(Affects::ControlPlane, "VM class"),
        ["spec", "topology", "controlPlane", "storageClass"] => {
            vm(Affects::ControlPlane, "storage class")
        }
        ["spec", "topology", "controlPlane", "volumes", ..] => vm(Affects::ControlPlane, "volumes"),
        ["spec", "topology", "controlPlane", "nodeDrainTimeout"] => {
            in_place(Affects::ControlPlane, "nodeDrainTimeout", SRC_CAPI_KCP)
        }
        ["spec", "topology", "nodePools", "[]"] => {
            let Some(Seg::Named(pool)) = p.get(3) else {
                return maybe(Affects::Cluster, &field);
            };
            pool_added_or_removed(pool)
        }
        ["spec", "topology", "nodePools", "[]", rest @ ..] => {
            let Some(Seg::Named(name)) = p.get(3) else {
                return maybe(Affects::Cluster, &field);
            };
            let pool = Affects::Pool(name.clone());
            match rest {
                ["tkr", ..] => version(pool),
                ["replicas"] => scale(pool),
                ["nodeDrainTimeout"] => in_place(pool, "nodeDrainTimeout", SRC_CAPI_MD),
                ["vmClass"] => vm(pool, "VM class"),
                ["storageClass"] => vm(pool, "storage class"),
                ["volumes", ..] => vm(pool, "volumes"),
                ["failureDomain"] => yes(
                    pool,
                    r(
                        "CAPI-MD-FAILURE-DOMAIN",
                        "the failure domain is a rollout field of the machine template: the pool's machines are replaced in the new zone",
                        SRC_CAPI_MD,
                    ),
                ),
                ["labels", ..] | ["taints", ..] => yes(
                    pool,
                    r(
                        "CAPI-TEMPLATE-ROTATION",
                        "node labels and taints are written into the kubelet's bootstrap configuration: the template rotates and the pool rolls",
                        SRC_OS_IMAGE,
                    ),
                ),
                _ => maybe(pool, &field),
            }
        }
        ["spec", "settings", "network", "proxy", ..]
        | ["spec", "settings", "network", "trust", ..] => yes(
            Affects::Cluster,
            r(
                "CAPI-TEMPLATE-ROTATION",
                "proxy and trust settings are written into every node's bootstrap configuration: all templates rotate",
                SRC_CAPI_CHANGE_CLASS,
            ),
        ),
        _ => maybe(Affects::Cluster, &field),
    }
}

/// Every field that differs between the live object and the changed file, with what it rolls.
/// Only `spec` and `metadata.labels`/`metadata.annotations` are compared (status and server-set
/// metadata are not the user's to change). An empty answer means the file changes nothing.
///
/// ```
/// use serde_json::json;
/// use supsvc_core::upgrade::change::manifest_changes;
/// use supsvc_core::upgrade::forecast::Rolls;
///
/// let live = json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
///     "metadata": {"name": "c", "namespace": "ns"},
///     "spec": {"topology": {"class": "cc", "version": "v1.28.8",
///         "workers": {"machineDeployments": [{"class": "node-pool", "name": "a", "replicas": 2}]}}}});
/// let mut file = live.clone();
/// file["spec"]["topology"]["workers"]["machineDeployments"][0]["replicas"] = json!(3);
/// let changes = manifest_changes(&live, &file).unwrap();
/// assert_eq!(changes.len(), 1);
/// assert_eq!(changes[0].rolls, Rolls::No); // replicas scale, nothing is replaced
/// ```
///
/// # Errors
/// [`ManifestError`] when the file is not a TKC or Cluster object with a name.
pub fn manifest_changes(live: &Value, file: &Value) -> Result<Vec<FieldChange>, ManifestError> {
    let (kind, _, _) = identify(file)?;
    let mut out = Vec::new();
    let mut path = Vec::new();
    for top in [["metadata", "labels"], ["metadata", "annotations"]] {
        path.extend(top.iter().map(|k| Seg::Key((*k).to_owned())));
        diff(
            live.get(top[0]).and_then(|m| m.get(top[1])),
            file.get(top[0]).and_then(|m| m.get(top[1])),
            &mut path,
            false,
            &mut out,
        );
        path.clear();
    }
    path.push(Seg::Key("spec".into()));
    diff(
        live.get("spec"),
        file.get("spec"),
        &mut path,
        false,
        &mut out,
    );
    Ok(out
        .into_iter()
        .map(|(p, from, to)| {
            let c = if kind == "Cluster" {
                classify_cluster(&p)
            } else {
                classify_tkc(&p)
            };
            FieldChange {
                path: render(&p),
                from,
                to,
                rolls: c.rolls,
                affects: c.affects,
                version: c.version,
                rule: c.rule,
            }
        })
        .collect())
}
