//! Whether a roll can start and finish, from Supervisor objects only: the target release's OS image
//! resolves exactly once, the VM classes and storage classes the cluster uses are still available to
//! its vSphere Namespace, the namespace's quota has room for the surge VMs, and the pods CIDR has a
//! node block for every node plus the surge ones.
//!
//! Sources:
//! - OS image: `run.tanzu.vmware.com/resolve-os-image` is a label selector over OSImages
//!   (`run.tanzu.vmware.com/v1alpha3`, labels `os-name`, `os-version`, `os-arch`,
//!   `run.tanzu.vmware.com/tkr`); it must match exactly one image of the target release
//!   (vmware-tanzu/tanzu-framework `apis/run/v1alpha3/osimage_types.go`; papivot/vks-best-practice
//!   `README.md`).
//! - VM classes: a namespace may use a class when it has a namespace-scoped `VirtualMachineClass`
//!   of that name (VM Operator v1alpha2 and later) or a `VirtualMachineClassBinding` whose
//!   `classRef.name` names it (v1alpha1, deprecated) — vmware-tanzu/vm-operator
//!   `api/v1alpha1/virtualmachineclassbinding_types.go`, `docs/concepts/workloads/vm-class.md`.
//! - Storage classes: a storage policy assigned to a vSphere Namespace appears in the namespace's
//!   ResourceQuota as `<storage-class>.storageclass.storage.k8s.io/requests.storage`
//!   (kubernetes `pkg/quota/v1/evaluator/core/persistent_volume_claims.go`, `V1ResourceByStorageClass`).
//! - Pod CIDR: each node takes a /24 of the pods CIDR, so a /N holds 2^(24−N) nodes; a roll needs
//!   one more block per surge VM (papivot/vks-best-practice `README.md`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Finding;
use super::forecast::{ClusterForecast, Rolls, normalize_tkr};
use super::model::{Cluster, at, s, string_map};
use crate::quantity::Quantity;

/// Source of the OS image rule.
pub const SRC_OS_IMAGE: &str = "vmware-tanzu/tanzu-framework apis/run/v1alpha3/osimage_types.go";
/// The clusters that roll or may roll, each with its forecast.
fn rolling<'a>(
    clusters: &'a [Cluster],
    forecasts: &'a [ClusterForecast],
) -> impl Iterator<Item = (&'a ClusterForecast, &'a Cluster)> {
    forecasts
        .iter()
        .filter(|f| f.rolls != Rolls::No)
        .filter_map(|f| {
            clusters
                .iter()
                .find(|c| c.namespace == f.namespace && c.name == f.name)
                .map(|c| (f, c))
        })
}

/// The names of `used` that `offered` lacks, in `used`'s order.
fn not_in<'a>(used: &'a [String], offered: &BTreeSet<String>) -> Vec<&'a str> {
    used.iter()
        .filter(|v| !offered.contains(*v))
        .map(String::as_str)
        .collect()
}

/// Source of the VM class availability rule.
pub const SRC_VM_CLASS: &str =
    "vmware-tanzu/vm-operator api/v1alpha1/virtualmachineclassbinding_types.go";
/// Source of the storage class availability rule.
pub const SRC_STORAGE_QUOTA: &str =
    "kubernetes/kubernetes pkg/quota/v1/evaluator/core/persistent_volume_claims.go";
/// Source of the pod CIDR rule.
pub const SRC_POD_CIDR: &str = "papivot/vks-best-practice README.md";

/// Suffix of a ResourceQuota key that names a storage class usable in the namespace.
pub const STORAGE_QUOTA_SUFFIX: &str = ".storageclass.storage.k8s.io/requests.storage";

fn finding(code: &str, cluster: &str, message: String, fix: &str) -> Finding {
    Finding::new(code, cluster.to_owned(), message, fix)
}

/// Does an equality-based label selector (`k=v,k2==v2,k3!=v3,k4,!k5`) match these labels?
/// `None` when the selector is not of that grammar (set-based `in (...)` is not read).
pub fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> Option<bool> {
    let mut ok = true;
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if term.contains('(') || term.contains(' ') {
            return None;
        }
        let hit = if let Some((k, v)) = term.split_once("!=") {
            labels.get(k.trim()).map(String::as_str) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels.get(k.trim()).map(String::as_str) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            !labels.contains_key(k)
        } else {
            labels.contains_key(term)
        };
        ok &= hit;
    }
    Some(ok)
}

/// OS images of a release: those the TKR/KR lists in `spec.osImages[].name`, else those labelled
/// `run.tanzu.vmware.com/tkr: <release name>`.
fn images_of<'a>(target: &str, tkrs: &[Value], osimages: &'a [Value]) -> Vec<&'a Value> {
    let want = normalize_tkr(target);
    let tkr = tkrs.iter().find(|t| {
        s(t, &["metadata", "name"]).map(normalize_tkr) == Some(want.clone())
            || s(t, &["spec", "version"]).map(normalize_tkr) == Some(want.clone())
    });
    let listed: BTreeSet<&str> = tkr
        .and_then(|t| at(t, &["spec", "osImages"]))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|i| s(i, &["name"])).collect())
        .unwrap_or_default();
    osimages
        .iter()
        .filter(|img| {
            let name = s(img, &["metadata", "name"]).unwrap_or_default();
            if !listed.is_empty() {
                return listed.contains(name);
            }
            string_map(at(img, &["metadata", "labels"]))
                .get("run.tanzu.vmware.com/tkr")
                .map(|l| normalize_tkr(l))
                == Some(want.clone())
        })
        .collect()
}

/// `UC-OSIMAGE-NONE` / `UC-OSIMAGE-AMBIGUOUS`: for each cluster that rolls to `target`, the OS
/// images of the release its `resolve-os-image` selector matches must be exactly one; without a
/// selector the release must have at least one image.
pub fn os_image_findings(
    clusters: &[Cluster],
    forecasts: &[ClusterForecast],
    target: &str,
    tkrs: &[Value],
    osimages: &[Value],
) -> Vec<Finding> {
    let images = images_of(target, tkrs, osimages);
    let mut out = Vec::new();
    for (_, c) in rolling(clusters, forecasts) {
        let key = c.key();
        let selector = c.os_image_selector.as_deref().unwrap_or("");
        let matched: Vec<&str> = images
            .iter()
            .filter(|img| {
                selector_matches(selector, &string_map(at(img, &["metadata", "labels"])))
                    .unwrap_or(true)
            })
            .filter_map(|img| s(img, &["metadata", "name"]))
            .collect();
        let shown = if selector.is_empty() {
            "no resolve-os-image selector".to_owned()
        } else {
            format!("selector {selector:?}")
        };
        if matched.is_empty() {
            out.push(finding(
                "UC-OSIMAGE-NONE",
                &key,
                format!("no OSImage of release {target} matches ({shown}; the release has {} images)", images.len()),
                "sync the content library that holds the release's images, or change the run.tanzu.vmware.com/resolve-os-image annotation to an OS the release ships (kubectl get osimages -l run.tanzu.vmware.com/tkr=RELEASE --show-labels)",
            ));
        } else if matched.len() > 1 && !selector.is_empty() {
            out.push(finding(
                "UC-OSIMAGE-AMBIGUOUS",
                &key,
                format!("{shown} matches {} OSImages of release {target}: {}", matched.len(), matched.join(", ")),
                "narrow the resolve-os-image selector (add os-version=..., os-arch=...) until it matches one image",
            ));
        }
    }
    out
}

/// What a vSphere Namespace offers, read from its objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceOffer {
    /// VM classes the namespace may use; `None` when neither VirtualMachineClasses nor bindings
    /// could be read (the check is then skipped).
    pub vm_classes: Option<BTreeSet<String>>,
    /// Storage classes its ResourceQuota names; `None` when ResourceQuotas could not be read.
    pub storage_classes: Option<BTreeSet<String>>,
    /// Quota headroom (`hard − used`, smallest over the namespace's quotas) per resource, in nanos
    /// of the resource's unit; only resources some quota limits.
    pub headroom: BTreeMap<String, i128>,
}

/// Builds each namespace's offer from listed objects: namespace-scoped `VirtualMachineClass`es,
/// `VirtualMachineClassBinding`s, `ResourceQuota`s. A list given as `None` was not readable (its
/// part of every offer is then `None`); every namespace in `namespaces` gets an offer, empty when
/// nothing of it was listed (a namespace with no class and no quota offers none).
pub fn namespace_offers(
    namespaces: &[&str],
    vm_classes: Option<&[Value]>,
    bindings: Option<&[Value]>,
    quotas: Option<&[Value]>,
) -> BTreeMap<String, NamespaceOffer> {
    let mut out: BTreeMap<String, NamespaceOffer> = BTreeMap::new();
    for ns in namespaces {
        out.entry((*ns).to_owned()).or_default();
    }
    let vm_read = vm_classes.is_some() || bindings.is_some();
    let ns_of = |o: &Value| s(o, &["metadata", "namespace"]).map(str::to_owned);
    if vm_classes.is_some() || bindings.is_some() {
        for o in vm_classes.unwrap_or_default() {
            if let (Some(ns), Some(name)) = (ns_of(o), s(o, &["metadata", "name"])) {
                out.entry(ns)
                    .or_default()
                    .vm_classes
                    .get_or_insert_with(BTreeSet::new)
                    .insert(name.to_owned());
            }
        }
        for o in bindings.unwrap_or_default() {
            let name = s(o, &["classRef", "name"]).or_else(|| s(o, &["metadata", "name"]));
            if let (Some(ns), Some(name)) = (ns_of(o), name) {
                out.entry(ns)
                    .or_default()
                    .vm_classes
                    .get_or_insert_with(BTreeSet::new)
                    .insert(name.to_owned());
            }
        }
    }
    for q in quotas.unwrap_or_default() {
        let Some(ns) = ns_of(q) else { continue };
        let offer = out.entry(ns).or_default();
        let sc = offer.storage_classes.get_or_insert_with(BTreeSet::new);
        let hard = string_map(at(q, &["status", "hard"]).or_else(|| at(q, &["spec", "hard"])));
        let used = string_map(at(q, &["status", "used"]));
        for (k, v) in &hard {
            if let Some(class) = k.strip_suffix(STORAGE_QUOTA_SUFFIX) {
                sc.insert(class.to_owned());
            }
            let (Ok(h), u) = (Quantity::parse(v), used.get(k).map(|u| Quantity::parse(u))) else {
                continue;
            };
            let u = match u {
                Some(Ok(u)) => u.nanos(),
                _ => 0,
            };
            let room = h.nanos() - u;
            offer
                .headroom
                .entry(k.clone())
                .and_modify(|r| *r = (*r).min(room))
                .or_insert(room);
        }
    }
    for offer in out.values_mut() {
        if quotas.is_some() {
            offer.storage_classes.get_or_insert_with(BTreeSet::new);
        }
        if vm_read {
            offer.vm_classes.get_or_insert_with(BTreeSet::new);
        }
    }
    out
}

/// The size of a VM class: `(cpus, memory in bytes)` from `spec.hardware`, by name (any namespace,
/// or cluster-scoped).
pub fn class_sizes(vm_classes: &[Value]) -> BTreeMap<String, (i128, i128)> {
    vm_classes
        .iter()
        .filter_map(|c| {
            let name = s(c, &["metadata", "name"])?;
            let cpus = at(c, &["spec", "hardware", "cpus"]).and_then(Value::as_i64)? as i128;
            let mem = at(c, &["spec", "hardware", "memory"])
                .and_then(|m| match m {
                    Value::String(t) => Quantity::parse(t).ok(),
                    Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
                    _ => None,
                })
                .map(|q| q.nanos() / 1_000_000_000)?;
            Some((name.to_owned(), (cpus, mem)))
        })
        .collect()
}

/// `UC-VMCLASS-UNAVAILABLE`, `UC-STORAGECLASS-UNAVAILABLE`, `UC-QUOTA-SURGE`: for each cluster that
/// rolls, its VM and storage classes must be available to its namespace, and the namespace's quota
/// must hold the surge VMs of all its rolling clusters at once (CPU and memory of the class each
/// surge VM uses; `limits.cpu`/`requests.cpu` and `limits.memory`/`requests.memory` quotas).
/// Namespaces not in `offers` are not judged (their objects could not be read).
pub fn placement_findings(
    clusters: &[Cluster],
    forecasts: &[ClusterForecast],
    offers: &BTreeMap<String, NamespaceOffer>,
    sizes: &BTreeMap<String, (i128, i128)>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    // Surge demand per namespace: (cpus, bytes, clusters).
    let mut demand: BTreeMap<&str, (i128, i128, Vec<String>)> = BTreeMap::new();
    for (f, c) in rolling(clusters, forecasts) {
        let key = c.key();
        let offer = offers.get(&c.namespace);
        if let Some(avail) = offer.and_then(|o| o.vm_classes.as_ref()) {
            let missing = not_in(&c.vm_classes, avail);
            if !missing.is_empty() {
                out.push(finding(
                    "UC-VMCLASS-UNAVAILABLE",
                    &key,
                    format!(
                        "VM classes {missing:?} are not available to vSphere Namespace {} (it has {:?}): the new machines cannot be created",
                        c.namespace, avail
                    ),
                    "add the VM class to the vSphere Namespace (vSphere Client: Namespace > VM Service > Manage VM Classes), or move the cluster to a class it has",
                ));
            }
        }
        if let Some(avail) = offer.and_then(|o| o.storage_classes.as_ref()) {
            let missing = not_in(&c.storage_classes, avail);
            if !missing.is_empty() {
                out.push(finding(
                    "UC-STORAGECLASS-UNAVAILABLE",
                    &key,
                    format!(
                        "storage classes {missing:?} are not in vSphere Namespace {}'s ResourceQuota (it has {:?}): the new machines' disks cannot be placed",
                        c.namespace, avail
                    ),
                    "assign the storage policy to the vSphere Namespace (Namespace > Storage > Edit), or move the cluster to a class it has",
                ));
            }
        }
        // The biggest class the cluster uses, once per surge VM.
        let size = c
            .vm_classes
            .iter()
            .filter_map(|v| sizes.get(v))
            .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
        let d = demand.entry(&f.namespace).or_default();
        d.0 += size.0 * i128::from(f.surge_vms);
        d.1 += size.1 * i128::from(f.surge_vms);
        d.2.push(key);
    }
    for (ns, (cpus, bytes, who)) in demand {
        let Some(offer) = offers.get(ns) else {
            continue;
        };
        for (res, need, unit) in [
            ("limits.cpu", cpus * 1_000_000_000, "CPU"),
            ("requests.cpu", cpus * 1_000_000_000, "CPU"),
            ("limits.memory", bytes * 1_000_000_000, "memory"),
            ("requests.memory", bytes * 1_000_000_000, "memory"),
        ] {
            let Some(room) = offer.headroom.get(res) else {
                continue;
            };
            if need > *room {
                let show = |n: i128| {
                    if unit == "CPU" {
                        format!("{} CPU", n / 1_000_000_000)
                    } else {
                        format!("{} MiB", n / 1_000_000_000 / (1 << 20))
                    }
                };
                for key in &who {
                    out.push(finding(
                        "UC-QUOTA-SURGE",
                        key,
                        format!(
                            "vSphere Namespace {ns}'s quota {res} has {} left; the surge VMs of its rolling clusters ({}) need {}",
                            show((*room).max(0)),
                            who.join(", "),
                            show(need)
                        ),
                        "raise the namespace's CPU/memory limit (Namespace > Capacity and Usage), or roll the clusters one after another",
                    ));
                }
            }
        }
    }
    out
}

/// Node blocks a pods CIDR holds: 2^(24−prefix) per IPv4 block of prefix ≤ 24; `None` when a block
/// is not an IPv4 CIDR.
pub fn pod_cidr_blocks(cidrs: &[String]) -> Option<u64> {
    cidrs.iter().try_fold(0u64, |sum, c| {
        let (ip, prefix) = c.trim().split_once('/')?;
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            return None;
        }
        let prefix: u32 = prefix.parse().ok()?;
        (prefix <= 32).then_some(())?;
        Some(
            sum + if prefix <= 24 {
                1u64 << (24 - prefix)
            } else {
                0
            },
        )
    })
}

/// `UC-POD-CIDR`: a rolling cluster whose pods CIDR holds fewer /24 node blocks than its nodes plus
/// the surge VMs. Clusters without a pods CIDR (e.g. NSX-routed pods) are not judged.
pub fn pod_cidr_findings(clusters: &[Cluster], forecasts: &[ClusterForecast]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (f, c) in rolling(clusters, forecasts) {
        if c.pod_cidrs.is_empty() {
            continue;
        }
        let Some(blocks) = pod_cidr_blocks(&c.pod_cidrs) else {
            continue;
        };
        let nodes: u64 = u64::from(c.control_plane_replicas)
            + f.pools.iter().map(|p| u64::from(p.replicas)).sum::<u64>();
        let need = nodes + u64::from(f.surge_vms);
        if blocks < need {
            out.push(finding(
                "UC-POD-CIDR",
                &c.key(),
                format!(
                    "pods CIDR {:?} holds {blocks} node /24 blocks; {nodes} nodes plus {} surge VMs need {need}: the new node gets no pod range",
                    c.pod_cidrs, f.surge_vms
                ),
                "the pods CIDR cannot be changed on a running cluster: scale a pool down by the surge count before the roll, or rebuild the cluster with a wider CIDR",
            ));
        }
    }
    out
}
