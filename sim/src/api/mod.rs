//! The API server's semantics, in process: a registry of resource types, a versioned object store with
//! watch fan-out, validation with the real server's messages, patches, and the admission chain.
//!
//! The HTTP front ([`crate::http`]) and every controller of the simulator ([`crate::kapp`]) call the same
//! [`Client`], so a write by the kapp model goes through validation and admission exactly as a write by
//! `kubectl` does, under the identity it was made with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who makes a request, as an admission webhook sees it in `request.userInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The cluster administrator (the kubeconfig's default user).
    pub fn admin() -> Self {
        UserInfo {
            username: "kubernetes-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A service account, named as the API server names it in `userInfo`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        UserInfo {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: String::new(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// A resource type as it appears in a URL: group, version and plural name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvr {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
}

impl Gvr {
    /// The key objects are stored under: the group and resource without the version, so every served
    /// version of a custom resource reads and writes the same objects (a CRD's `conversion: None`).
    pub fn stored(self) -> Gvr {
        Gvr {
            version: "",
            ..self
        }
    }
}

/// The resource types the simulator serves, for callers inside the simulator.
pub mod gvr {
    use super::Gvr;

    use super::builtin::gvr_of;
    use k8s_openapi::api::{admissionregistration, apps, batch, certificates, core, policy};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;

    pub const NAMESPACES: Gvr = gvr_of::<core::v1::Namespace>();
    pub const SECRETS: Gvr = gvr_of::<core::v1::Secret>();
    pub const CONFIG_MAPS: Gvr = gvr_of::<core::v1::ConfigMap>();
    pub const PODS: Gvr = gvr_of::<core::v1::Pod>();
    pub const PERSISTENT_VOLUME_CLAIMS: Gvr = gvr_of::<core::v1::PersistentVolumeClaim>();
    pub const EVENTS: Gvr = gvr_of::<core::v1::Event>();
    pub const SERVICE_ACCOUNTS: Gvr = gvr_of::<core::v1::ServiceAccount>();
    pub const SERVICES: Gvr = gvr_of::<core::v1::Service>();
    pub const REPLICATION_CONTROLLERS: Gvr = gvr_of::<core::v1::ReplicationController>();
    pub const STATEFUL_SETS: Gvr = gvr_of::<apps::v1::StatefulSet>();
    pub const DEPLOYMENTS: Gvr = gvr_of::<apps::v1::Deployment>();
    pub const DAEMON_SETS: Gvr = gvr_of::<apps::v1::DaemonSet>();
    pub const REPLICA_SETS: Gvr = gvr_of::<apps::v1::ReplicaSet>();
    pub const JOBS: Gvr = gvr_of::<batch::v1::Job>();
    pub const CRON_JOBS: Gvr = gvr_of::<batch::v1::CronJob>();
    pub const POD_DISRUPTION_BUDGETS: Gvr = gvr_of::<policy::v1::PodDisruptionBudget>();
    pub const CERTIFICATE_SIGNING_REQUESTS: Gvr =
        gvr_of::<certificates::v1::CertificateSigningRequest>();
    pub const PACKAGE_REPOSITORIES: Gvr = Gvr {
        group: "packaging.carvel.dev",
        version: "v1alpha1",
        resource: "packagerepositories",
    };
    pub const PACKAGE_INSTALLS: Gvr = Gvr {
        group: "packaging.carvel.dev",
        version: "v1alpha1",
        resource: "packageinstalls",
    };
    pub const PACKAGES: Gvr = Gvr {
        group: "data.packaging.carvel.dev",
        version: "v1alpha1",
        resource: "packages",
    };
    pub const PACKAGE_METADATAS: Gvr = Gvr {
        group: "data.packaging.carvel.dev",
        version: "v1alpha1",
        resource: "packagemetadatas",
    };
    pub const APPS: Gvr = Gvr {
        group: "kappctrl.k14s.io",
        version: "v1alpha1",
        resource: "apps",
    };
    pub const CUSTOM_RESOURCE_DEFINITIONS: Gvr =
        gvr_of::<apiextensions::v1::CustomResourceDefinition>();
    pub const VALIDATING_WEBHOOK_CONFIGURATIONS: Gvr =
        gvr_of::<admissionregistration::v1::ValidatingWebhookConfiguration>();
}

/// An error as the API server returns it: a `Status` object with an HTTP code, a reason and the
/// server's own message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Status {
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Forbidden`, `BadRequest`, ...
    pub reason: String,
    pub message: String,
    /// `details` of the Status object (name, group, kind, causes), if any.
    pub details: Option<Value>,
}

impl Status {
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }
    pub fn is_conflict(&self) -> bool {
        self.code == 409 && self.reason == "Conflict"
    }
}

/// A patch, by its content type.
#[derive(Clone, Debug)]
pub enum Patch {
    /// `application/json-patch+json` (RFC 6902).
    Json(Value),
    /// `application/merge-patch+json` (RFC 7386).
    Merge(Value),
    /// `application/strategic-merge-patch+json`, as `kubectl edit`, `label` and `annotate` send it.
    Strategic(Value),
}

/// Options of a write.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and admit, persist nothing.
    pub dry_run: bool,
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The request's User-Agent: the manager of `managedFields` when no `fieldManager` is given.
    pub user_agent: Option<String>,
}

impl WriteOptions {
    /// The manager a write is recorded under ([`managed`]): `fieldManager`, else the User-Agent's program
    /// name; empty for an in-process writer that gave neither.
    pub fn manager(&self) -> String {
        match (&self.field_manager, &self.user_agent) {
            (Some(m), _) if !m.is_empty() => m.clone(),
            (_, Some(ua)) => managed::manager_from_user_agent(ua),
            _ => String::new(),
        }
    }
}

/// Options of a list or watch.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`, in the API server's syntax (`a=b,c!=d,e in (f,g),!h`).
    pub label_selector: Option<String>,
    /// `fieldSelector` (`metadata.name=x`, `metadata.namespace=y`, ...).
    pub field_selector: Option<String>,
}

/// The items of a list and the store's resourceVersion at the time of the list.
#[derive(Clone, Debug)]
pub struct ObjectList {
    pub items: Vec<Value>,
    pub resource_version: u64,
}

/// One change, as a watch delivers it.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// The watch ended with an error (e.g. `410 Gone` for a resourceVersion too old).
    Error(Status),
}
pub mod admission;
pub mod apply;
pub mod authz;
pub mod builtin;
pub mod client;
pub mod crd;
pub mod jsonpath;
pub mod managed;
pub mod patch;
pub mod quantity;
pub mod registry;
pub mod selector;
pub mod status;
pub mod store;
pub mod strategic;
pub mod strategy;
pub mod table;
pub mod validation;

pub use client::{ApiOptions, ApiServer, Client, DeprecatedApi, Written};
