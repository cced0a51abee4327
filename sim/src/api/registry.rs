//! The resource types the simulator serves: what discovery, the URL router, the store and `kubectl get`'s
//! tables need to know about each kind.
//!
//! Two sources: the built-in kinds ([`RESOURCES`]) and the kinds of the CustomResourceDefinitions stored
//! in one API server ([`Registry`], fed by [`super::crd`]), which come and go as CRDs are created and
//! deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::{Gvr, gvr};

/// A column of `kubectl get`, as the server's Table gives it.
#[derive(Debug)]
pub struct Column {
    /// As the server names it; kubectl upper-cases it for the header.
    pub name: &'static str,
    /// `string`, `integer`, `date`.
    pub kind: &'static str,
    pub description: &'static str,
    /// 0 = shown by default, 1 = only with `-o wide`.
    pub priority: u8,
    pub cell: Cell,
}

/// How a column's cell is computed from an object.
#[derive(Debug)]
pub enum Cell {
    /// `metadata.name`.
    Name,
    /// A dotted path into the object (`.status.friendlyDescription`); absent = `<none>`-less empty cell.
    Path(&'static str),
    /// A timestamp at a dotted path, shown as an age (`5m`, `2d3h`).
    Age(&'static str),
    /// Computed (READY `1/1`, DATA count, ...).
    Computed(fn(&Value) -> Value),
    /// A CRD's `additionalPrinterColumns[].jsonPath` (`.status.conditions[?(@.type=="Ready")].status`),
    /// rendered as kube-apiserver's CRD table convertor renders it by the column's type.
    JsonPath(&'static str),
}

/// Where a custom resource's `scale` subresource reads and writes (CRD `subresources.scale`), as
/// JSON paths (`.spec.replicas`).
#[derive(Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: &'static str,
    pub status_replicas: &'static str,
    /// `.status.selector`: a label selector in its string form; none = an empty selector.
    pub label_selector: Option<&'static str>,
}

/// One kind the API server serves.
#[derive(Debug)]
pub struct ResourceType {
    pub gvr: Gvr,
    pub kind: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Has a `/status` subresource: the main resource ignores `status`, the subresource changes only `status`.
    pub status_subresource: bool,
    /// Keeps `metadata.generation`.
    pub has_generation: bool,
    /// A custom resource: no strategic merge patch (415), like a CRD on a real server.
    pub custom: bool,
    /// A custom resource's `scale` subresource (built-in kinds with one answer to [`Self::has_scale`]).
    pub scale: Option<ScalePaths>,
    pub columns: &'static [Column],
}

impl PartialEq for ResourceType {
    fn eq(&self, other: &Self) -> bool {
        self.gvr == other.gvr
    }
}

impl ResourceType {
    /// `packageinstalls.packaging.carvel.dev`, or `persistentvolumeclaims` for the core group.
    pub fn group_resource(&self) -> String {
        if self.gvr.group.is_empty() {
            self.gvr.resource.to_string()
        } else {
            format!("{}.{}", self.gvr.resource, self.gvr.group)
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.gvr.group.is_empty() {
            self.gvr.version.to_string()
        } else {
            format!("{}/{}", self.gvr.group, self.gvr.version)
        }
    }

    /// Has a `/scale` subresource (`kubectl scale`).
    pub fn has_scale(&self) -> bool {
        self.gvr == gvr::STATEFUL_SETS || self.gvr == gvr::DEPLOYMENTS || self.scale.is_some()
    }

    /// Has a Pod's `/ephemeralcontainers` subresource (what `kubectl debug` writes).
    pub fn has_ephemeral_containers(&self) -> bool {
        self.gvr == gvr::PODS
    }

    /// Serves the subresource `sub` (`status`, `scale`, `ephemeralcontainers`, a Pod's `eviction`, a
    /// ServiceAccount's `token`, a CertificateSigningRequest's `approval`).
    pub fn has_subresource(&self, sub: &str) -> bool {
        match sub {
            "status" => self.status_subresource,
            "scale" => self.has_scale(),
            "ephemeralcontainers" => self.has_ephemeral_containers(),
            "token" => self.gvr == gvr::SERVICE_ACCOUNTS,
            "eviction" => self.gvr == gvr::PODS,
            "approval" => self.gvr == gvr::CERTIFICATE_SIGNING_REQUESTS,
            _ => false,
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

pub(crate) const NAME: Column = Column {
    name: "Name",
    kind: "string",
    description: "Name must be unique within a namespace.",
    priority: 0,
    cell: Cell::Name,
};
const AGE: Column = Column {
    name: "Age",
    kind: "string",
    description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
    priority: 0,
    cell: Cell::Age("metadata.creationTimestamp"),
};

const fn col(name: &'static str, kind: &'static str, priority: u8, cell: Cell) -> Column {
    Column {
        name,
        kind,
        description: "",
        priority,
        cell,
    }
}

/// The kinds, in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        gvr: gvr::NAMESPACES,
        kind: "Namespace",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status_subresource: true,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Status", "string", 0, Cell::Path("status.phase")),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::SECRETS,
        kind: "Secret",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: false,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Type", "string", 0, Cell::Path("type")),
            col("Data", "string", 0, Cell::Computed(data_count)),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::CONFIG_MAPS,
        kind: "ConfigMap",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status_subresource: false,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Data", "string", 0, Cell::Computed(data_count)),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::PODS,
        kind: "Pod",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        status_subresource: true,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Ready", "string", 0, Cell::Computed(pod_ready)),
            col("Status", "string", 0, Cell::Computed(pod_status)),
            col("Restarts", "string", 0, Cell::Computed(pod_restarts)),
            AGE,
            col("IP", "string", 1, Cell::Path("status.podIP")),
            col("Node", "string", 1, Cell::Path("spec.nodeName")),
        ],
    },
    ResourceType {
        gvr: gvr::PERSISTENT_VOLUME_CLAIMS,
        kind: "PersistentVolumeClaim",
        singular: "persistentvolumeclaim",
        namespaced: true,
        short_names: &["pvc"],
        categories: &[],
        status_subresource: true,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Status", "string", 0, Cell::Path("status.phase")),
            col("Volume", "string", 0, Cell::Path("spec.volumeName")),
            col(
                "Capacity",
                "string",
                0,
                Cell::Path("status.capacity.storage"),
            ),
            col(
                "Access Modes",
                "string",
                0,
                Cell::Computed(pvc_access_modes),
            ),
            col(
                "StorageClass",
                "string",
                0,
                Cell::Path("spec.storageClassName"),
            ),
            AGE,
            col("VolumeMode", "string", 1, Cell::Path("spec.volumeMode")),
        ],
    },
    ResourceType {
        gvr: gvr::EVENTS,
        kind: "Event",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status_subresource: false,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            col("Last Seen", "string", 0, Cell::Computed(event_last_seen)),
            col("Type", "string", 0, Cell::Path("type")),
            col("Reason", "string", 0, Cell::Path("reason")),
            col("Object", "string", 0, Cell::Computed(event_object)),
            col("Message", "string", 0, Cell::Path("message")),
            col("Name", "string", 1, Cell::Path("metadata.name")),
        ],
    },
    ResourceType {
        gvr: gvr::SERVICE_ACCOUNTS,
        kind: "ServiceAccount",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        status_subresource: false,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Secrets", "string", 0, Cell::Computed(sa_secrets)),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::SERVICES,
        kind: "Service",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        status_subresource: true,
        has_generation: false,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Type", "string", 0, Cell::Path("spec.type")),
            col("Cluster-IP", "string", 0, Cell::Path("spec.clusterIP")),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::REPLICATION_CONTROLLERS,
        kind: "ReplicationController",
        singular: "replicationcontroller",
        namespaced: true,
        short_names: &["rc"],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Desired", "integer", 0, Cell::Computed(desired_replicas)),
            col("Ready", "integer", 0, Cell::Computed(ready_replicas)),
            AGE,
            col(
                "Containers",
                "string",
                1,
                Cell::Computed(template_containers),
            ),
            col("Images", "string", 1, Cell::Computed(template_images)),
        ],
    },
    ResourceType {
        gvr: gvr::STATEFUL_SETS,
        kind: "StatefulSet",
        singular: "statefulset",
        namespaced: true,
        short_names: &["sts"],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Ready", "string", 0, Cell::Computed(ready_of_replicas)),
            AGE,
            col(
                "Containers",
                "string",
                1,
                Cell::Computed(template_containers),
            ),
            col("Images", "string", 1, Cell::Computed(template_images)),
        ],
    },
    ResourceType {
        gvr: gvr::DEPLOYMENTS,
        kind: "Deployment",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Ready", "string", 0, Cell::Computed(ready_of_replicas)),
            col("Up-to-date", "integer", 0, Cell::Computed(deploy_updated)),
            col("Available", "integer", 0, Cell::Computed(deploy_available)),
            AGE,
            col(
                "Containers",
                "string",
                1,
                Cell::Computed(template_containers),
            ),
            col("Images", "string", 1, Cell::Computed(template_images)),
        ],
    },
    ResourceType {
        gvr: gvr::DAEMON_SETS,
        kind: "DaemonSet",
        singular: "daemonset",
        namespaced: true,
        short_names: &["ds"],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col(
                "Desired",
                "integer",
                0,
                Cell::Path("status.desiredNumberScheduled"),
            ),
            col("Ready", "integer", 0, Cell::Path("status.numberReady")),
            AGE,
            col(
                "Containers",
                "string",
                1,
                Cell::Computed(template_containers),
            ),
            col("Images", "string", 1, Cell::Computed(template_images)),
        ],
    },
    ResourceType {
        gvr: gvr::REPLICA_SETS,
        kind: "ReplicaSet",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Desired", "integer", 0, Cell::Computed(desired_replicas)),
            col("Ready", "integer", 0, Cell::Computed(ready_replicas)),
            AGE,
            col(
                "Containers",
                "string",
                1,
                Cell::Computed(template_containers),
            ),
            col("Images", "string", 1, Cell::Computed(template_images)),
        ],
    },
    ResourceType {
        gvr: gvr::JOBS,
        kind: "Job",
        singular: "job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Status", "string", 0, Cell::Computed(job_status)),
            AGE,
            col(
                "Containers",
                "string",
                1,
                Cell::Computed(template_containers),
            ),
            col("Images", "string", 1, Cell::Computed(template_images)),
        ],
    },
    ResourceType {
        gvr: gvr::CRON_JOBS,
        kind: "CronJob",
        singular: "cronjob",
        namespaced: true,
        short_names: &["cj"],
        categories: &["all"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Schedule", "string", 0, Cell::Path("spec.schedule")),
            col("Suspend", "string", 0, Cell::Path("spec.suspend")),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::POD_DISRUPTION_BUDGETS,
        kind: "PodDisruptionBudget",
        singular: "poddisruptionbudget",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col(
                "Min Available",
                "string",
                0,
                Cell::Computed(pdb_min_available),
            ),
            col(
                "Max Unavailable",
                "string",
                0,
                Cell::Computed(pdb_max_unavailable),
            ),
            col(
                "Allowed Disruptions",
                "integer",
                0,
                Cell::Computed(pdb_allowed_disruptions),
            ),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::PACKAGES,
        kind: "Package",
        singular: "package",
        namespaced: true,
        short_names: &["pkg"],
        categories: &["carvel"],
        status_subresource: false,
        has_generation: true,
        custom: true,
        scale: None,
        columns: &[
            NAME,
            col(
                "PackageMetadata name",
                "string",
                0,
                Cell::Path("spec.refName"),
            ),
            col("Version", "string", 0, Cell::Path("spec.version")),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::PACKAGE_METADATAS,
        kind: "PackageMetadata",
        singular: "packagemetadata",
        namespaced: true,
        short_names: &["pkgm"],
        categories: &["carvel"],
        status_subresource: false,
        has_generation: true,
        custom: true,
        scale: None,
        columns: &[
            NAME,
            col("Display name", "string", 0, Cell::Path("spec.displayName")),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::VALIDATING_WEBHOOK_CONFIGURATIONS,
        kind: "ValidatingWebhookConfiguration",
        singular: "validatingwebhookconfiguration",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status_subresource: false,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col("Webhooks", "integer", 0, Cell::Computed(webhook_count)),
            AGE,
        ],
    },
    ResourceType {
        gvr: gvr::CUSTOM_RESOURCE_DEFINITIONS,
        kind: "CustomResourceDefinition",
        singular: "customresourcedefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[
            NAME,
            col(
                "Created At",
                "date",
                0,
                Cell::Path("metadata.creationTimestamp"),
            ),
        ],
    },
];

/// The type of a [`Gvr`] among the built-in kinds and those of the shipped CRDs (what every server
/// starts with; the kinds one server serves now: [`Registry::lookup`]).
pub fn lookup(gvr: Gvr) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.gvr == gvr).or_else(|| {
        super::crd::shipped_types()
            .iter()
            .copied()
            .find(|r| r.gvr == gvr)
    })
}

/// A group with its served versions, the preferred one first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupVersions {
    pub name: &'static str,
    pub versions: Vec<&'static str>,
}

/// The kinds one API server serves: the built-in ones and those of its established CRDs.
#[derive(Debug)]
pub struct Registry {
    /// Every served type, built-ins first, then the CRDs' by CRD name (a snapshot, replaced on change).
    served: RwLock<Arc<Vec<&'static ResourceType>>>,
    /// The types each CRD serves, by CRD name, with the CRD `spec` they were made from.
    crds: RwLock<BTreeMap<String, (Value, Vec<&'static ResourceType>)>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// Only the built-in kinds.
    pub fn builtin() -> Self {
        Registry {
            served: RwLock::new(Arc::new(super::builtin::types().to_vec())),
            crds: RwLock::new(BTreeMap::new()),
        }
    }

    /// Every served type, in discovery order.
    pub fn all(&self) -> Arc<Vec<&'static ResourceType>> {
        Arc::clone(
            &self
                .served
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub fn lookup(&self, gvr: Gvr) -> Option<&'static ResourceType> {
        self.all().iter().copied().find(|r| r.gvr == gvr)
    }

    /// The type served at `/apis/<group>/<version>/<resource>` (`group` = `""` for `/api/v1`).
    pub fn lookup_path(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<&'static ResourceType> {
        self.all().iter().copied().find(|r| {
            r.gvr.group == group && r.gvr.version == version && r.gvr.resource == resource
        })
    }

    /// The type of a manifest's `apiVersion` and `kind`.
    pub fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<&'static ResourceType> {
        self.all()
            .iter()
            .copied()
            .find(|r| r.kind == kind && r.api_version() == api_version)
    }

    /// Whether anything is served at `/apis/<group>/<version>`.
    pub fn serves_version(&self, group: &str, version: &str) -> bool {
        self.all()
            .iter()
            .any(|r| r.gvr.group == group && r.gvr.version == version)
    }

    /// The groups in discovery order, the core group excluded, each with its versions sorted as
    /// Kubernetes sorts them (GA before beta before alpha, higher first: `v1`, `v1beta2`, `v1alpha1`).
    pub fn groups(&self) -> Vec<GroupVersions> {
        let mut out: Vec<GroupVersions> = Vec::new();
        for r in self.all().iter() {
            if r.gvr.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|g| g.name == r.gvr.group) {
                Some(g) if !g.versions.contains(&r.gvr.version) => g.versions.push(r.gvr.version),
                Some(_) => {}
                None => out.push(GroupVersions {
                    name: r.gvr.group,
                    versions: vec![r.gvr.version],
                }),
            }
        }
        for g in &mut out {
            g.versions
                .sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// Serves the types of the CRD `name` made from `spec`: replaces what it served before. The types are
    /// made once per distinct spec (they live as long as the process).
    pub fn set_crd(
        &self,
        name: &str,
        spec: &Value,
        make: impl FnOnce() -> Vec<&'static ResourceType>,
    ) {
        let mut crds = self
            .crds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if crds.get(name).is_some_and(|(s, _)| s == spec) {
            return;
        }
        crds.insert(name.to_string(), (spec.clone(), make()));
        self.publish(&crds);
    }

    /// Stops serving the CRD `name`'s types; returns them.
    pub fn remove_crd(&self, name: &str) -> Vec<&'static ResourceType> {
        let mut crds = self
            .crds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let removed = crds.remove(name).map(|(_, t)| t).unwrap_or_default();
        self.publish(&crds);
        removed
    }

    /// The types the CRD `name` serves now.
    pub fn crd_types(&self, name: &str) -> Vec<&'static ResourceType> {
        self.crds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }

    fn publish(&self, crds: &BTreeMap<String, (Value, Vec<&'static ResourceType>)>) {
        let mut served: Vec<&'static ResourceType> = super::builtin::types().to_vec();
        served.extend(crds.values().flat_map(|(_, t)| t.iter().copied()));
        *self
            .served
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(served);
    }
}

/// How Kubernetes ranks API versions (`k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings`):
/// GA > beta > alpha, then by major and minor number; anything else sorts last (alphabetically, reversed).
pub fn version_priority(v: &str) -> (u8, u32, u32, std::cmp::Reverse<String>) {
    let parse = || -> Option<(u8, u32, u32)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u32 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        let (level, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (2, m)
        } else {
            (1, tail.strip_prefix("alpha")?)
        };
        Some((level, major, minor.parse().ok()?))
    };
    match parse() {
        Some((level, major, minor)) => (level, major, minor, std::cmp::Reverse(String::new())),
        None => (0, 0, 0, std::cmp::Reverse(v.to_string())),
    }
}

/// The other types that serve the same objects as `rt` under another group or version (what
/// kube-apiserver's `EquivalentResourceMapper` knows, for `matchPolicy: Equivalent`). The simulator
/// serves each kind at one version, so today there are none.
pub fn equivalents(rt: &ResourceType) -> Vec<&'static ResourceType> {
    RESOURCES
        .iter()
        .filter(|r| r.gvr != rt.gvr && r.kind == rt.kind && r.gvr.resource == rt.gvr.resource)
        .collect()
}

/// A value at a dotted path (`status.deploy.startedAt`).
pub fn at_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(object, |v, key| v.get(key))
}

fn len_of(v: Option<&Value>) -> usize {
    match v {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn data_count(o: &Value) -> Value {
    Value::from(len_of(o.get("data")) + len_of(o.get("binaryData")) + len_of(o.get("stringData")))
}

fn sa_secrets(o: &Value) -> Value {
    Value::from(len_of(o.get("secrets")))
}

fn webhook_count(o: &Value) -> Value {
    Value::from(len_of(o.get("webhooks")))
}

fn int_at(o: &Value, path: &str) -> i64 {
    at_path(o, path).and_then(Value::as_i64).unwrap_or(0)
}

/// A PDB's `minAvailable` / `maxUnavailable` as kubectl prints them: the number or percentage, `N/A`
/// when unset (kubernetes `pkg/printers/internalversion/printers.go`, `printPodDisruptionBudget`).
fn int_or_percent_cell(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Number(n)) => Value::from(n.to_string()),
        Some(Value::String(s)) => Value::from(s.clone()),
        _ => Value::from("N/A"),
    }
}

fn pdb_min_available(o: &Value) -> Value {
    int_or_percent_cell(at_path(o, "spec.minAvailable"))
}

fn pdb_max_unavailable(o: &Value) -> Value {
    int_or_percent_cell(at_path(o, "spec.maxUnavailable"))
}

fn pdb_allowed_disruptions(o: &Value) -> Value {
    Value::from(int_at(o, "status.disruptionsAllowed"))
}

fn pod_ready(o: &Value) -> Value {
    let total = len_of(at_path(o, "spec.containers"));
    let ready = at_path(o, "status.containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count()
        })
        .unwrap_or(0);
    Value::from(format!("{ready}/{total}"))
}

fn pod_status(o: &Value) -> Value {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return Value::from("Terminating");
    }
    let waiting = at_path(o, "status.containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
        });
    let reason = at_path(o, "status.reason").and_then(Value::as_str);
    let phase = at_path(o, "status.phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    Value::from(waiting.or(reason).unwrap_or(phase))
}

fn pod_restarts(o: &Value) -> Value {
    let n: i64 = at_path(o, "status.containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    Value::from(n.to_string())
}

fn pvc_access_modes(o: &Value) -> Value {
    let modes = at_path(o, "status.accessModes").and_then(Value::as_array);
    let short: Vec<&str> = modes
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    Value::from(short.join(","))
}

fn event_object(o: &Value) -> Value {
    let kind = at_path(o, "involvedObject.kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let name = at_path(o, "involvedObject.name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Value::from(format!("{kind}/{name}"))
}

fn event_last_seen(o: &Value) -> Value {
    let ts = ["lastTimestamp", "eventTime", "metadata.creationTimestamp"]
        .iter()
        .find_map(|p| at_path(o, p).and_then(Value::as_str));
    Value::from(
        ts.map(super::table::age_of)
            .unwrap_or_else(|| "<unknown>".into()),
    )
}

fn ready_of_replicas(o: &Value) -> Value {
    let want = at_path(o, "spec.replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    Value::from(format!("{}/{want}", int_at(o, "status.readyReplicas")))
}

fn desired_replicas(o: &Value) -> Value {
    Value::from(
        at_path(o, "spec.replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1),
    )
}

fn ready_replicas(o: &Value) -> Value {
    Value::from(int_at(o, "status.readyReplicas"))
}

/// A Job's STATUS column as kubectl 1.32 prints it: `Complete`, `Failed` or `Running`.
fn job_status(o: &Value) -> Value {
    let conditions = at_path(o, "status.conditions").and_then(Value::as_array);
    let has = |t: &str| {
        conditions
            .into_iter()
            .flatten()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    Value::from(if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else {
        "Running"
    })
}

fn deploy_updated(o: &Value) -> Value {
    Value::from(int_at(o, "status.updatedReplicas"))
}

fn deploy_available(o: &Value) -> Value {
    Value::from(int_at(o, "status.availableReplicas"))
}

fn template_field(o: &Value, field: &str) -> Value {
    let names: Vec<&str> = at_path(o, "spec.template.spec.containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get(field).and_then(Value::as_str))
        .collect();
    Value::from(names.join(","))
}

fn template_containers(o: &Value) -> Value {
    template_field(o, "name")
}

fn template_images(o: &Value) -> Value {
    template_field(o, "image")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gvr_constant_is_served_and_unique() {
        for r in RESOURCES {
            assert_eq!(lookup(r.gvr).map(|x| x.kind), Some(r.kind));
            assert_eq!(RESOURCES.iter().filter(|x| x.gvr == r.gvr).count(), 1);
            assert!(
                r.columns.iter().filter(|c| c.priority == 0).count() >= 2,
                "{}",
                r.kind
            );
        }
        assert_eq!(
            Registry::builtin()
                .lookup_path("", "v1", "persistentvolumeclaims")
                .map(|r| r.short_names),
            Some(&["pvc"][..])
        );
        assert_eq!(
            lookup(gvr::PACKAGE_INSTALLS).unwrap().group_resource(),
            "packageinstalls.packaging.carvel.dev"
        );
    }

    #[test]
    fn versions_sort_as_kubernetes_sorts_them() {
        let mut v = vec![
            "v1alpha1",
            "foo",
            "v1beta1",
            "v2",
            "v1",
            "v1beta2",
            "v10alpha1",
        ];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(
            v,
            [
                "v2",
                "v1",
                "v1beta2",
                "v1beta1",
                "v10alpha1",
                "v1alpha1",
                "foo"
            ]
        );
    }

    #[test]
    fn computed_cells() {
        let sts = serde_json::json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}});
        assert_eq!(ready_of_replicas(&sts), "2/3");
        let pvc = serde_json::json!({"status": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
        assert_eq!(pvc_access_modes(&pvc), "RWO,ROX");
        let cm = serde_json::json!({"data": {"a": "1", "b": "2"}});
        assert_eq!(data_count(&cm), 2);
    }
}
