//! Read-only views of the Carvel objects (PackageInstall, App, Package) as kapp-controller writes them.
//!
//! Only the fields supsvc reads are modelled; every other field is ignored, and a missing or `null`
//! field reads as its default, so a view never fails on an object the API server accepted.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// API group and version of PackageInstall.
pub const PACKAGING_API_VERSION: &str = "packaging.carvel.dev/v1alpha1";
/// API group and version of App.
pub const KAPPCTRL_API_VERSION: &str = "kappctrl.k14s.io/v1alpha1";
/// API group and version of Package.
pub const DATA_PACKAGING_API_VERSION: &str = "data.packaging.carvel.dev/v1alpha1";

/// Where a Supervisor keeps the PackageInstalls of its Supervisor Services.
pub const SUPERVISOR_SERVICES_NAMESPACE: &str = "vmware-system-supervisor-services";

/// The service `kubectl supsvc fix` repairs when none is named: the one of KB 437632.
pub const DEFAULT_SERVICE: &str = "svc-tkg.vsphere.vmware.com";

/// `status.friendlyDescription` of a paused or canceled App or PackageInstall.
pub const DESCRIPTION_PAUSED: &str = "Canceled/paused";

/// Why a view could not be read from an object.
#[derive(Debug, thiserror::Error)]
#[error("not a readable {kind}: {source}")]
pub struct ViewError {
    kind: &'static str,
    #[source]
    source: serde_json::Error,
}

/// Reads a present-but-`null` field as its default, as the API server's clients do.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The metadata fields supsvc reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    /// `metadata.name`.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// `metadata.namespace`; `None` for a cluster-scoped object (see [`Meta::ns`]).
    pub namespace: Option<String>,
    /// `metadata.generation`: bumped by the API server on every change of the spec.
    #[serde(deserialize_with = "nullable")]
    pub generation: i64,
    /// `metadata.resourceVersion`: the object's version, for optimistic concurrency.
    pub resource_version: Option<String>,
    /// `metadata.creationTimestamp` (RFC 3339).
    pub creation_timestamp: Option<String>,
    /// `metadata.deletionTimestamp` (RFC 3339): set once the object is being deleted.
    pub deletion_timestamp: Option<String>,
    /// `metadata.labels`.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    /// `metadata.managedFields`: the API server's record of which manager last wrote which fields.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<ManagedFieldsEntry>,
}

/// One entry of `metadata.managedFields` (Server-Side Apply's field ownership, written by the API
/// server on every write: <https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management>).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ManagedFieldsEntry {
    /// The field manager: `kubectl-patch`, `kubectl-edit`, `kapp-controller`, ... (a client's `fieldManager`).
    #[serde(deserialize_with = "nullable")]
    pub manager: String,
    /// `Update` or `Apply`.
    #[serde(deserialize_with = "nullable")]
    pub operation: String,
    /// When the manager last wrote (RFC 3339).
    pub time: Option<String>,
    /// `status` when the write went to the status subresource.
    pub subresource: Option<String>,
    /// The fields it owns: `{"f:spec": {"f:paused": {}}}`.
    #[serde(rename = "fieldsV1")]
    pub fields_v1: Value,
}

impl ManagedFieldsEntry {
    /// Whether this manager owns the field at `path` (e.g. `["spec", "paused"]`).
    pub fn owns(&self, path: &[&str]) -> bool {
        let mut at = &self.fields_v1;
        for segment in path {
            match at.get(format!("f:{segment}")) {
                Some(next) => at = next,
                None => return false,
            }
        }
        true
    }
}

impl Meta {
    /// The namespace, or `""` for a cluster-scoped object.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
}

/// One entry of `status.conditions`. kapp-controller never sets `reason`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Condition {
    /// `type`: `Reconciling`, `ReconcileSucceeded`, `ReconcileFailed`, `Deleting`, `DeleteFailed`.
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    /// A human-readable message, when kapp-controller gives one.
    pub message: Option<String>,
}

impl Condition {
    fn is_true(&self, kind: &str) -> bool {
        self.kind == kind && self.status.eq_ignore_ascii_case("true")
    }
}

/// `status.deploy.kapp.associatedResources` of an App: how kapp labels what it deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AssociatedResources {
    /// `kapp.k14s.io/app=<id>`.
    pub label: Option<String>,
    /// The namespaces of the objects kapp deployed.
    #[serde(deserialize_with = "nullable")]
    pub namespaces: Vec<String>,
}

/// `status.deploy.kapp` of an App: what kapp recorded of its deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KappDeployStatus {
    /// How kapp labels what it deployed; present once kapp has deployed.
    pub associated_resources: Option<AssociatedResources>,
}

/// `status.deploy` of an App (and of a PackageInstall, which copies its App's status).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeployStatus {
    /// When the last deploy started (RFC 3339).
    pub started_at: Option<String>,
    /// When the deploy status was last updated (RFC 3339).
    pub updated_at: Option<String>,
    /// Whether the last deploy finished.
    pub finished: Option<bool>,
    /// kapp's exit code for the last deploy (0 on success).
    pub exit_code: Option<i64>,
    /// kapp's error for the last deploy, when it failed.
    pub error: Option<String>,
    /// `status.deploy.kapp`.
    pub kapp: Option<KappDeployStatus>,
}

/// The status block App and PackageInstall share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReconcileStatus {
    /// `status.observedGeneration`: the `metadata.generation` the controller last acted on.
    pub observed_generation: Option<i64>,
    /// `status.conditions`.
    #[serde(deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
    /// `status.friendlyDescription`, e.g. `Reconcile succeeded`, [`DESCRIPTION_PAUSED`].
    pub friendly_description: Option<String>,
    /// `status.usefulErrorMessage`: kapp's or the fetch's error text (see [`crate::kapp::read`]).
    pub useful_error_message: Option<String>,
    /// `status.deploy`.
    pub deploy: Option<DeployStatus>,
    /// PackageInstall only: the Package version in use.
    pub version: Option<String>,
    /// PackageInstall only.
    pub last_attempted_version: Option<String>,
}

/// What App and PackageInstall have in common: pause/cancel in the spec, a reconcile status.
pub trait Reconcilable {
    /// The object's metadata.
    fn meta(&self) -> &Meta;
    /// `spec.paused`.
    fn paused(&self) -> bool;
    /// `spec.canceled`.
    fn canceled(&self) -> bool;
    /// `status`.
    fn reconcile_status(&self) -> &ReconcileStatus;
}

/// `spec.packageRef.versionSelection` of a PackageInstall.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VersionSelection {
    /// A semver constraint, e.g. `>=1.0.0` or an exact version `3.3.0+vmware.1`.
    pub constraints: Option<String>,
}

/// `spec.packageRef` of a PackageInstall: which Package it installs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PackageRef {
    /// The Package's `spec.refName`, e.g. `tkg.vsphere.vmware.com`.
    #[serde(deserialize_with = "nullable")]
    pub ref_name: String,
    /// Which versions may be installed.
    pub version_selection: Option<VersionSelection>,
}

/// A reference to a Secret in the PackageInstall's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretRef {
    /// The Secret's name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// A key of the Secret (kapp-controller ignores it for values).
    pub key: Option<String>,
}

/// One entry of a PackageInstall's `spec.values`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ValuesSource {
    /// The Secret that holds the data values.
    pub secret_ref: Option<SecretRef>,
}

/// `spec` of a PackageInstall.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PackageInstallSpec {
    /// The ServiceAccount kapp-controller deploys with.
    pub service_account_name: Option<String>,
    /// Which Package it installs.
    #[serde(deserialize_with = "nullable")]
    pub package_ref: PackageRef,
    /// Where its data values come from.
    #[serde(deserialize_with = "nullable")]
    pub values: Vec<ValuesSource>,
    /// `spec.paused`: kapp-controller does not reconcile it while true.
    #[serde(deserialize_with = "nullable")]
    pub paused: bool,
    /// `spec.canceled`: kapp-controller stops any reconcile while true.
    #[serde(deserialize_with = "nullable")]
    pub canceled: bool,
}

/// A `packaging.carvel.dev/v1alpha1` PackageInstall.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PackageInstall {
    /// Its metadata.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// Its spec.
    #[serde(deserialize_with = "nullable")]
    pub spec: PackageInstallSpec,
    /// Its status (kapp-controller copies the App's into it).
    #[serde(deserialize_with = "nullable")]
    pub status: ReconcileStatus,
}

impl PackageInstall {
    /// Reads a PackageInstall as JSON (as the API server returns it).
    ///
    /// # Errors
    /// [`ViewError`] when the value is not an object or a modelled field has the wrong JSON type (a
    /// missing or `null` one reads as its default).
    ///
    /// ```rust
    /// use supsvc_core::carvel::{PackageInstall, State, is_reconciled, state};
    ///
    /// let pkgi = PackageInstall::from_value(&serde_json::json!({
    ///     "metadata": {"name": "svc-tkg.vsphere.vmware.com", "generation": 2},
    ///     "spec": {"paused": true},
    ///     "status": {"observedGeneration": 2, "conditions": [{"type": "ReconcileSucceeded", "status": "True"}]},
    /// }))
    /// .unwrap();
    /// assert_eq!(state(&pkgi), State::Paused);
    /// assert!(!is_reconciled(&pkgi)); // paused: not success, whatever the conditions say
    /// ```
    pub fn from_value(value: &Value) -> Result<Self, ViewError> {
        Self::deserialize(value).map_err(|source| ViewError {
            kind: "PackageInstall",
            source,
        })
    }

    /// The names of the Secrets its values come from (kapp-controller ignores `key`).
    pub fn values_secret_names(&self) -> Vec<&str> {
        self.spec
            .values
            .iter()
            .filter_map(|v| v.secret_ref.as_ref().map(|s| s.name.as_str()))
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The version in use, else the exact version the constraints pin.
    pub fn version(&self) -> Option<&str> {
        self.status
            .version
            .as_deref()
            .filter(|v| !v.is_empty())
            .or_else(|| {
                self.spec
                    .package_ref
                    .version_selection
                    .as_ref()
                    .and_then(|s| s.constraints.as_deref())
                    .map(str::trim)
                    .filter(|c| {
                        !c.is_empty() && !c.contains([' ', '<', '>', '=', '~', '^', '*', ','])
                    })
            })
    }
}

impl Reconcilable for PackageInstall {
    fn meta(&self) -> &Meta {
        &self.metadata
    }
    fn paused(&self) -> bool {
        self.spec.paused
    }
    fn canceled(&self) -> bool {
        self.spec.canceled
    }
    fn reconcile_status(&self) -> &ReconcileStatus {
        &self.status
    }
}

/// `spec` of an App (and `spec.template.spec` of a Package).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppSpec {
    /// The ServiceAccount kapp-controller deploys with.
    pub service_account_name: Option<String>,
    /// `spec.paused`: kapp-controller does not reconcile it while true.
    #[serde(deserialize_with = "nullable")]
    pub paused: bool,
    /// `spec.canceled`: kapp-controller stops any reconcile while true.
    #[serde(deserialize_with = "nullable")]
    pub canceled: bool,
    /// `spec.fetch[]`, as JSON: what kapp-controller fetches (see [`FetchSource`]).
    #[serde(deserialize_with = "nullable")]
    pub fetch: Vec<Value>,
}

/// A `kappctrl.k14s.io/v1alpha1` App.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct App {
    /// Its metadata.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// Its spec.
    #[serde(deserialize_with = "nullable")]
    pub spec: AppSpec,
    /// Its status.
    #[serde(deserialize_with = "nullable")]
    pub status: ReconcileStatus,
}

impl App {
    /// Reads an App as JSON (as the API server returns it).
    ///
    /// # Errors
    /// [`ViewError`] when the value is not an object or a modelled field has the wrong JSON type.
    pub fn from_value(value: &Value) -> Result<Self, ViewError> {
        Self::deserialize(value).map_err(|source| ViewError {
            kind: "App",
            source,
        })
    }

    /// `status.deploy.kapp.associatedResources`, present once kapp has deployed the App.
    pub fn associated_resources(&self) -> Option<&AssociatedResources> {
        self.status
            .deploy
            .as_ref()?
            .kapp
            .as_ref()?
            .associated_resources
            .as_ref()
    }

    /// Whether the pause has taken effect: paused in the spec, `Canceled/paused` for the current generation.
    /// A deploy already running when the pause was written is not aborted, so the spec alone proves nothing.
    pub fn is_pause_observed(&self) -> bool {
        (self.spec.paused || self.spec.canceled)
            && self.status.friendly_description.as_deref() == Some(DESCRIPTION_PAUSED)
            && self.status.observed_generation == Some(self.metadata.generation)
    }
}

impl Reconcilable for App {
    fn meta(&self) -> &Meta {
        &self.metadata
    }
    fn paused(&self) -> bool {
        self.spec.paused
    }
    fn canceled(&self) -> bool {
        self.spec.canceled
    }
    fn reconcile_status(&self) -> &ReconcileStatus {
        &self.status
    }
}

/// `spec.template` of a Package: the App it becomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PackageTemplate {
    /// The App spec.
    #[serde(deserialize_with = "nullable")]
    pub spec: AppSpec,
}

/// `spec` of a Package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PackageSpec {
    /// The package's name, which PackageInstalls refer to.
    #[serde(deserialize_with = "nullable")]
    pub ref_name: String,
    /// Its version (semver).
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    /// The App it becomes.
    #[serde(deserialize_with = "nullable")]
    pub template: PackageTemplate,
}

/// A `data.packaging.carvel.dev/v1alpha1` Package; `metadata.name` is `<refName>.<version>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Package {
    /// Its metadata.
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    /// Its spec.
    #[serde(deserialize_with = "nullable")]
    pub spec: PackageSpec,
}

impl Package {
    /// Reads a Package as JSON (as the API server returns it).
    ///
    /// # Errors
    /// [`ViewError`] when the value is not an object or a modelled field has the wrong JSON type.
    pub fn from_value(value: &Value) -> Result<Self, ViewError> {
        Self::deserialize(value).map_err(|source| ViewError {
            kind: "Package",
            source,
        })
    }

    /// The images the Package fetches (`spec.template.spec.fetch[]`), with their JSON paths.
    pub fn bundle_images(&self) -> Vec<crate::image::ImageOccurrence> {
        crate::image::fetch_images(&self.spec.template.spec.fetch, "spec.template.spec.fetch")
    }
}

/// The Package a PackageInstall uses: same refName and the version it resolved (or pins).
/// Without a known version, the only Package of that refName, if there is exactly one.
pub fn package_for<'a>(pkgi: &PackageInstall, packages: &'a [Package]) -> Option<&'a Package> {
    let ref_name = pkgi.spec.package_ref.ref_name.as_str();
    let mut same_ref = packages.iter().filter(|p| p.spec.ref_name == ref_name);
    match pkgi.version() {
        Some(version) => same_ref.find(|p| p.spec.version == version),
        None => match (same_ref.next(), same_ref.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        },
    }
}

/// The state of a service as an operator names it: the spec's pause/cancel first, then the conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Being deleted (a deletion timestamp or a true `Deleting` condition).
    Deleting,
    /// `DeleteFailed` condition true.
    DeleteFailed,
    /// `spec.canceled`.
    Canceled,
    /// `spec.paused`.
    Paused,
    /// `Reconciling` condition true.
    Reconciling,
    /// `ReconcileFailed` condition true.
    ReconcileFailed,
    /// `ReconcileSucceeded` condition true (maybe for an older generation; see [`is_reconciled`]).
    ReconcileSucceeded,
    /// No condition yet (just created).
    Pending,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Deleting => "Deleting",
            State::DeleteFailed => "Delete failed",
            State::Canceled => "Canceled",
            State::Paused => "Paused",
            State::Reconciling => "Reconciling",
            State::ReconcileFailed => "Reconcile failed",
            State::ReconcileSucceeded => "Reconcile succeeded",
            State::Pending => "Pending",
        })
    }
}

/// The state of an App or PackageInstall.
pub fn state<R: Reconcilable + ?Sized>(obj: &R) -> State {
    let conditions = &obj.reconcile_status().conditions;
    let has = |kind: &str| conditions.iter().any(|c| c.is_true(kind));
    if obj.meta().deletion_timestamp.is_some() || has("Deleting") {
        State::Deleting
    } else if has("DeleteFailed") {
        State::DeleteFailed
    } else if obj.canceled() {
        State::Canceled
    } else if obj.paused() {
        State::Paused
    } else if has("Reconciling") {
        State::Reconciling
    } else if has("ReconcileFailed") {
        State::ReconcileFailed
    } else if has("ReconcileSucceeded") {
        State::ReconcileSucceeded
    } else {
        State::Pending
    }
}

/// kctrl's stopping rule: `ReconcileSucceeded` true for the current generation. "No longer Reconciling"
/// is also true of `Canceled/paused` and `Reconcile failed`, so it is not success.
pub fn is_reconciled<R: Reconcilable + ?Sized>(obj: &R) -> bool {
    let status = obj.reconcile_status();
    !obj.paused()
        && !obj.canceled()
        && status.observed_generation == Some(obj.meta().generation)
        && status
            .conditions
            .iter()
            .any(|c| c.is_true("ReconcileSucceeded"))
}

/// When the object entered its current state, as well as the status tells: the last deploy's start,
/// else the object's creation.
pub fn since<R: Reconcilable + ?Sized>(obj: &R) -> Option<&str> {
    obj.reconcile_status()
        .deploy
        .as_ref()
        .and_then(|d| d.started_at.as_deref())
        .or(obj.meta().creation_timestamp.as_deref())
}

/// What one kapp-controller fetch pulls, and from where. The fetch kinds are kapp-controller's
/// `AppFetch` (carvel-dev/kapp-controller `pkg/apis/kappctrl/v1alpha1/types_fetch.go`): `inline`,
/// `image`, `http`, `git`, `helmChart`, `imgpkgBundle`; a PackageRepository's fetch has all but
/// `inline` and `helmChart` (`pkg/apis/packaging/v1alpha1/package_repository.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchSource {
    /// A pull from an OCI registry: `imgpkgBundle.image`, `image.url`, or a `helmChart` whose
    /// `repository.url` is `oci://host/path` (helm pulls the chart `host/path/<name>`).
    Registry {
        /// Dotted JSON path of the field, e.g. `spec.fetch[0].helmChart.repository.url`.
        path: String,
        /// The field's value as written.
        written: String,
        /// The image reference pulled: the value itself, or `host/path/<name>` for a Helm chart.
        reference: String,
    },
    /// A download from a URL: `http.url`, `git.url` (`https://`, `ssh://` or `git@host:path`), or a
    /// `helmChart` repository over HTTP(S).
    Url {
        /// Dotted JSON path of the field, e.g. `spec.fetch[0].http.url`.
        path: String,
        /// The field's value as written.
        written: String,
        /// `host` or `host:port`; `None` when the value is not a URL.
        authority: Option<String>,
        /// The URL's path without its leading `/`.
        url_path: String,
    },
}

impl FetchSource {
    /// The JSON path of the field.
    pub fn path(&self) -> &str {
        match self {
            FetchSource::Registry { path, .. } | FetchSource::Url { path, .. } => path,
        }
    }

    /// The field's value as written.
    pub fn written(&self) -> &str {
        match self {
            FetchSource::Registry { written, .. } | FetchSource::Url { written, .. } => written,
        }
    }
}

/// Every field [`fetch_sources_of`] reads, as dotted paths for a policy's decoder.
pub const FETCH_FIELDS: &[&str] = &[
    "spec.template.spec.fetch.imgpkgBundle.image",
    "spec.template.spec.fetch.image.url",
    "spec.template.spec.fetch.http.url",
    "spec.template.spec.fetch.git.url",
    "spec.template.spec.fetch.helmChart.name",
    "spec.template.spec.fetch.helmChart.repository.url",
    "spec.fetch.imgpkgBundle.image",
    "spec.fetch.image.url",
    "spec.fetch.http.url",
    "spec.fetch.git.url",
    "spec.fetch.helmChart.name",
    "spec.fetch.helmChart.repository.url",
];

/// Every source the fetches of a Carvel object pull from, for an object of the given API group and
/// kind: Package (`spec.template.spec.fetch[]`), App (`spec.fetch[]`) and PackageRepository (its one
/// `spec.fetch`). Other kinds, and fetches with nothing to pull (`inline`), have none.
pub fn fetch_sources_of(group: &str, kind: &str, object: &Value) -> Vec<FetchSource> {
    let list = |pointer: &str, base: &str| -> Vec<FetchSource> {
        object
            .pointer(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(|(i, f)| fetch_sources(f, &format!("{base}[{i}]")))
            .collect()
    };
    match (group, kind) {
        ("data.packaging.carvel.dev", "Package") => {
            list("/spec/template/spec/fetch", "spec.template.spec.fetch")
        }
        ("kappctrl.k14s.io", "App") => list("/spec/fetch", "spec.fetch"),
        ("packaging.carvel.dev", "PackageRepository") => object
            .pointer("/spec/fetch")
            .map(|f| fetch_sources(f, "spec.fetch"))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The sources of one fetch entry; `base` is its JSON path.
pub fn fetch_sources(fetch: &Value, base: &str) -> Vec<FetchSource> {
    let text = |source: &str, field: &str| fetch.get(source)?.get(field)?.as_str();
    let mut out = Vec::new();
    for (source, field) in [("imgpkgBundle", "image"), ("image", "url")] {
        if let Some(image) = text(source, field) {
            out.push(FetchSource::Registry {
                path: format!("{base}.{source}.{field}"),
                written: image.to_owned(),
                reference: image.to_owned(),
            });
        }
    }
    for source in ["http", "git"] {
        if let Some(url) = text(source, "url") {
            out.push(url_source(format!("{base}.{source}.url"), url));
        }
    }
    let chart = fetch.get("helmChart");
    if let Some(url) = chart
        .and_then(|c| c.pointer("/repository/url"))
        .and_then(Value::as_str)
    {
        let path = format!("{base}.helmChart.repository.url");
        match strip_scheme(url, "oci") {
            Some(rest) => {
                let name = chart
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let repo = rest.trim_end_matches('/');
                out.push(FetchSource::Registry {
                    path,
                    written: url.to_owned(),
                    reference: if name.is_empty() {
                        repo.to_owned()
                    } else {
                        format!("{repo}/{name}")
                    },
                });
            }
            None => out.push(url_source(path, url)),
        }
    }
    out
}

/// `rest` of `scheme://rest`, the scheme compared case-insensitively.
fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = url.split_once("://")?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn url_source(path: String, url: &str) -> FetchSource {
    let (authority, url_path) = match split_url(url) {
        Some((a, p)) => (Some(a.to_ascii_lowercase()), p.to_owned()),
        None => (None, String::new()),
    };
    FetchSource::Url {
        path,
        written: url.to_owned(),
        authority,
        url_path,
    }
}

/// The authority (`host` or `host:port`, without user info) and the path (without its leading `/`,
/// query or fragment) of `scheme://[user@]host[:port][/path]` or git's `[user@]host:path`; `None`
/// for anything else.
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let path = rest[end..].trim_start_matches('/');
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        return (!authority.is_empty()).then_some((authority, path));
    }
    // scp-like git: `git@github.com:org/repo.git`.
    let (authority, path) = url.split_once(':')?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let ok = !host.is_empty()
        && !authority.contains('/')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then_some((host, path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pkgi(spec: Value, status: Value, generation: i64) -> PackageInstall {
        PackageInstall::from_value(&json!({
            "apiVersion": PACKAGING_API_VERSION, "kind": "PackageInstall",
            "metadata": {"name": "svc", "namespace": "ns", "generation": generation},
            "spec": spec, "status": status,
        }))
        .unwrap()
    }

    fn cond(kind: &str) -> Value {
        json!({"observedGeneration": 2, "conditions": [{"type": kind, "status": "True"}]})
    }

    #[test]
    fn state_table() {
        let cases = [
            (json!({}), json!({}), State::Pending),
            (json!({}), cond("Reconciling"), State::Reconciling),
            (
                json!({}),
                cond("ReconcileSucceeded"),
                State::ReconcileSucceeded,
            ),
            (json!({}), cond("ReconcileFailed"), State::ReconcileFailed),
            (json!({}), cond("Deleting"), State::Deleting),
            (json!({}), cond("DeleteFailed"), State::DeleteFailed),
            (
                json!({"paused": true}),
                cond("ReconcileFailed"),
                State::Paused,
            ),
            (
                json!({"canceled": true}),
                cond("ReconcileSucceeded"),
                State::Canceled,
            ),
            (
                json!({"paused": true, "canceled": true}),
                json!({}),
                State::Canceled,
            ),
            (
                json!({"paused": null}),
                cond("ReconcileSucceeded"),
                State::ReconcileSucceeded,
            ),
            (json!({"paused": true}), cond("Deleting"), State::Deleting),
            (
                json!({}),
                json!({"conditions": [{"type": "ReconcileFailed", "status": "False"}]}),
                State::Pending,
            ),
            (json!(null), json!(null), State::Pending),
        ];
        for (spec, status, want) in cases {
            let p = pkgi(spec.clone(), status.clone(), 2);
            assert_eq!(state(&p), want, "spec={spec} status={status}");
        }
    }

    #[test]
    fn reconciled_needs_success_and_current_generation() {
        let succeeded = |og: i64| json!({"observedGeneration": og, "conditions": [{"type": "ReconcileSucceeded", "status": "True"}]});
        let cases = [
            (json!({}), succeeded(2), 2, true),
            (json!({}), succeeded(1), 2, false),
            (
                json!({}),
                json!({"conditions": [{"type": "ReconcileSucceeded", "status": "True"}]}),
                2,
                false,
            ),
            (json!({"paused": true}), succeeded(2), 2, false),
            (json!({"canceled": true}), succeeded(2), 2, false),
            // No longer Reconciling is not success.
            (
                json!({}),
                json!({"observedGeneration": 2, "friendlyDescription": "Canceled/paused"}),
                2,
                false,
            ),
            (json!({}), cond("ReconcileFailed"), 2, false),
            (json!({}), cond("Reconciling"), 2, false),
        ];
        for (spec, status, generation, want) in cases {
            let p = pkgi(spec.clone(), status.clone(), generation);
            assert_eq!(is_reconciled(&p), want, "spec={spec} status={status}");
        }
    }

    #[test]
    fn pause_observed_table() {
        let app = |paused: bool, desc: &str, og: i64| {
            App::from_value(&json!({
                "metadata": {"name": "a", "generation": 3},
                "spec": {"paused": paused},
                "status": {"friendlyDescription": desc, "observedGeneration": og},
            }))
            .unwrap()
        };
        assert!(app(true, "Canceled/paused", 3).is_pause_observed());
        assert!(!app(true, "Canceled/paused", 2).is_pause_observed());
        assert!(!app(true, "Reconciling", 3).is_pause_observed());
        assert!(!app(false, "Canceled/paused", 3).is_pause_observed());
    }

    #[test]
    fn reads_fields_and_tolerates_nulls() {
        let p = PackageInstall::from_value(&json!({
            "metadata": {"name": "svc-tkg.vsphere.vmware.com", "namespace": "vmware-system-supervisor-services",
                         "generation": 4, "labels": null, "annotations": {"a": "b"}},
            "spec": {"packageRef": {"refName": "tkg.vsphere.vmware.com",
                                    "versionSelection": {"constraints": "3.5.1-embedded+v1.34"}},
                     "values": [{"secretRef": {"name": "svc-tkg-values", "key": "values.yaml"}}, {"secretRef": null}]},
            "status": {"version": "", "usefulErrorMessage": "boom", "friendlyDescription": "Reconcile failed: boom",
                       "conditions": null}
        }))
        .unwrap();
        assert_eq!(p.metadata.ns(), "vmware-system-supervisor-services");
        assert_eq!(p.values_secret_names(), ["svc-tkg-values"]);
        assert_eq!(p.version(), Some("3.5.1-embedded+v1.34"));
        assert_eq!(p.status.useful_error_message.as_deref(), Some("boom"));
        assert!(p.metadata.labels.is_empty());
        assert!(PackageInstall::from_value(&json!({"metadata": {"generation": "x"}})).is_err());
        assert!(PackageInstall::from_value(&json!("nope")).is_err());
    }

    #[test]
    fn version_from_constraints_only_when_exact() {
        let with = |c: &str| {
            pkgi(
                json!({"packageRef": {"refName": "r", "versionSelection": {"constraints": c}}}),
                json!({}),
                1,
            )
        };
        assert_eq!(with("1.2.3").version(), Some("1.2.3"));
        assert_eq!(with(">=1.2.3").version(), None);
        assert_eq!(with("").version(), None);
        let p = pkgi(json!({}), json!({"version": "2.0.0"}), 1);
        assert_eq!(p.version(), Some("2.0.0"));
    }

    #[test]
    fn package_for_table() {
        let pkg = |r: &str, v: &str| Package {
            spec: PackageSpec {
                ref_name: r.into(),
                version: v.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let pkgs = vec![pkg("a", "1.0.0"), pkg("a", "2.0.0"), pkg("b", "1.0.0")];
        let with = |r: &str, v: Option<&str>| {
            pkgi(
                json!({"packageRef": {"refName": r}}),
                json!({"version": v}),
                1,
            )
        };
        assert_eq!(
            package_for(&with("a", Some("2.0.0")), &pkgs).map(|p| p.spec.version.as_str()),
            Some("2.0.0")
        );
        assert_eq!(package_for(&with("a", None), &pkgs), None);
        assert_eq!(
            package_for(&with("b", None), &pkgs).map(|p| p.spec.ref_name.as_str()),
            Some("b")
        );
        assert_eq!(package_for(&with("c", None), &pkgs), None);
        assert_eq!(package_for(&with("a", Some("3.0.0")), &pkgs), None);
    }

    #[test]
    fn app_associated_resources_and_since() {
        let app = App::from_value(&json!({
            "metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"deploy": {"startedAt": "2026-02-02T00:00:00Z",
                "kapp": {"associatedResources": {"label": "kapp.k14s.io/app=123", "namespaces": ["x", "y"]}}}}
        }))
        .unwrap();
        let ar = app.associated_resources().unwrap();
        assert_eq!(ar.label.as_deref(), Some("kapp.k14s.io/app=123"));
        assert_eq!(ar.namespaces, ["x", "y"]);
        assert_eq!(since(&app), Some("2026-02-02T00:00:00Z"));
        let bare =
            App::from_value(&json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}))
                .unwrap();
        assert_eq!(since(&bare), Some("2026-01-01T00:00:00Z"));
        assert!(bare.associated_resources().is_none());
    }

    #[test]
    fn state_display() {
        assert_eq!(State::ReconcileSucceeded.to_string(), "Reconcile succeeded");
        assert_eq!(State::Paused.to_string(), "Paused");
    }

    #[test]
    fn every_fetch_kind_that_pulls_is_a_source() {
        let fetch = json!([
            {"imgpkgBundle": {"image": "projects.registry.vmware.com/tkg/bundle:1"}},
            {"image": {"url": "harbor.corp/img:1"}},
            {"helmChart": {"name": "redis", "version": "19.6.4", "repository": {"url": "oci://registry-1.docker.io/bitnamicharts/"}}},
            {"helmChart": {"name": "nginx", "repository": {"url": "https://charts.bitnami.com/bitnami"}}},
            {"http": {"url": "https://raw.githubusercontent.com/org/repo/main/config.yaml"}},
            {"git": {"url": "git@github.com:org/repo.git", "ref": "origin/main"}},
            {"git": {"url": "ssh://git@git.corp:2222/team/repo"}},
            {"git": {"url": "not a url"}},
            {"inline": {"paths": {"a.yml": "x"}}}
        ]);
        let app = json!({"spec": {"fetch": fetch}});
        let got = fetch_sources_of("kappctrl.k14s.io", "App", &app);
        let registry = |path: &str, written: &str, reference: &str| FetchSource::Registry {
            path: path.into(),
            written: written.into(),
            reference: reference.into(),
        };
        let url =
            |path: &str, written: &str, authority: Option<&str>, url_path: &str| FetchSource::Url {
                path: path.into(),
                written: written.into(),
                authority: authority.map(Into::into),
                url_path: url_path.into(),
            };
        assert_eq!(
            got,
            vec![
                registry(
                    "spec.fetch[0].imgpkgBundle.image",
                    "projects.registry.vmware.com/tkg/bundle:1",
                    "projects.registry.vmware.com/tkg/bundle:1"
                ),
                registry(
                    "spec.fetch[1].image.url",
                    "harbor.corp/img:1",
                    "harbor.corp/img:1"
                ),
                registry(
                    "spec.fetch[2].helmChart.repository.url",
                    "oci://registry-1.docker.io/bitnamicharts/",
                    "registry-1.docker.io/bitnamicharts/redis"
                ),
                url(
                    "spec.fetch[3].helmChart.repository.url",
                    "https://charts.bitnami.com/bitnami",
                    Some("charts.bitnami.com"),
                    "bitnami"
                ),
                url(
                    "spec.fetch[4].http.url",
                    "https://raw.githubusercontent.com/org/repo/main/config.yaml",
                    Some("raw.githubusercontent.com"),
                    "org/repo/main/config.yaml"
                ),
                url(
                    "spec.fetch[5].git.url",
                    "git@github.com:org/repo.git",
                    Some("github.com"),
                    "org/repo.git"
                ),
                url(
                    "spec.fetch[6].git.url",
                    "ssh://git@git.corp:2222/team/repo",
                    Some("git.corp:2222"),
                    "team/repo"
                ),
                url("spec.fetch[7].git.url", "not a url", None, ""),
            ]
        );
        // The same fetch in a Package and (one entry) in a PackageRepository; other kinds have none.
        let package = json!({"spec": {"template": {"spec": {"fetch": fetch}}}});
        assert_eq!(
            fetch_sources_of("data.packaging.carvel.dev", "Package", &package).len(),
            8
        );
        let repo = json!({"spec": {"fetch": {"git": {"url": "https://github.com/org/repo"}}}});
        assert_eq!(
            fetch_sources_of("packaging.carvel.dev", "PackageRepository", &repo)[0].path(),
            "spec.fetch.git.url"
        );
        assert!(fetch_sources_of("packaging.carvel.dev", "Package", &package).is_empty());
        assert!(fetch_sources_of("", "ConfigMap", &app).is_empty());
    }
}
