//! The in-process client: the one way anything inside the simulator reads or writes objects.
//!
//! CONTRACT (shared by the HTTP front and the kapp model): the signatures below are fixed; the bodies
//! are the API server's semantics (authorization, validation, admission, store).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use tokio::sync::watch;

use super::admission::{self, Attributes, Caller};
use super::registry::{Registry, ResourceType};
use super::selector::{FieldSelector, LabelSelector, labels_of};
use super::store::{Change, ChangeType, Store, key_of, rv_of};
use super::{
    Gvr, ListOptions, ObjectList, Patch, Status, UserInfo, WatchEvent, WriteOptions, authz, patch,
    strategy, validation,
};
use crate::audit::Audit;
use crate::faults::Faults;

/// Tunables of an [`ApiServer`].
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// How many changes are kept for watches that resume from a resourceVersion.
    pub watch_history: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            watch_history: 10_000,
        }
    }
}

/// The API server, shared by the HTTP front and the controllers.
pub struct ApiServer {
    store: Store,
    tokens: RwLock<HashMap<String, UserInfo>>,
    webhooks: Caller,
    faults: Faults,
    audit: Audit,
    registry: Registry,
    requested_deprecated: std::sync::Mutex<Vec<DeprecatedApi>>,
}

/// A deprecated API version some client requested, as kube-apiserver's
/// `apiserver_requested_deprecated_apis` gauge records it (labels `group`, `version`, `resource`,
/// `subresource`, `removed_release`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeprecatedApi {
    /// API group (`""` for the core group).
    pub group: String,
    pub version: String,
    pub resource: String,
    #[serde(default)]
    pub subresource: String,
    /// The release that removes it, `1.MINOR` (empty when unknown).
    #[serde(default)]
    pub removed_release: String,
}

/// A write's result with the admission warnings that came with it.
#[derive(Clone, Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

impl ApiServer {
    pub fn new() -> Arc<Self> {
        Self::with_options(ApiOptions::default())
    }

    /// A server with the built-in kinds and the shipped CRDs ([`super::crd::SHIPPED`]) in place.
    pub fn with_options(options: ApiOptions) -> Arc<Self> {
        let api = ApiServer {
            store: Store::new(options.watch_history),
            tokens: RwLock::new(HashMap::new()),
            webhooks: Caller::default(),
            faults: Faults::default(),
            audit: Audit::default(),
            registry: Registry::builtin(),
            requested_deprecated: std::sync::Mutex::new(Vec::new()),
        };
        // The shipped CRDs are data compiled in and covered by tests: a broken one is a bug of the build.
        let shipped = super::crd::shipped().unwrap_or_else(|e| panic!("shipped CRDs: {e}"));
        for crd in shipped {
            if let Err(e) = api.install_crd(crd) {
                panic!("shipped CRD: {e}");
            }
        }
        Arc::new(api)
    }

    /// Stores a CRD as the server itself (no admission), as at start-up.
    fn install_crd(&self, mut crd: Value) -> Result<(), Status> {
        let rt = registry::lookup(super::gvr::CUSTOM_RESOURCE_DEFINITIONS)
            .ok_or_else(Status::path_not_found)?;
        strategy::prepare_create(rt, &mut crd, admission::uuid_v4());
        super::crd::default_spec(&mut crd);
        let name = name_of(&crd).to_string();
        let errors = super::crd::validate(&crd);
        if !errors.is_empty() {
            return Err(Status::invalid(rt, &name, &errors));
        }
        super::crd::accept(&self.registry, &mut crd);
        let stored = self.store.create(rt, crd)?;
        self.sync_crd(&stored);
        Ok(())
    }

    /// Records that a client requested a deprecated API version (the simulator serves none of them:
    /// scenarios declare the requests a real cluster's clients made, see
    /// [`crate::scenario::WorkloadClusterSpec::requested_deprecated_apis`]).
    pub fn record_deprecated_request(&self, api: DeprecatedApi) {
        let mut seen = self
            .requested_deprecated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&api) {
            seen.push(api);
        }
    }

    /// `GET /metrics` in the Prometheus text format (version 0.0.4), as kube-apiserver writes
    /// `apiserver_requested_deprecated_apis` (`staging/src/k8s.io/apiserver/pkg/endpoints/deprecation`:
    /// a STABLE gauge set to 1 per requested deprecated group, version, resource and subresource).
    pub fn metrics_text(&self) -> String {
        let mut seen = self
            .requested_deprecated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        seen.sort_by(|a, b| {
            (&a.group, &a.version, &a.resource).cmp(&(&b.group, &b.version, &b.resource))
        });
        let mut text = String::from(
            "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.\n# TYPE apiserver_requested_deprecated_apis gauge\n",
        );
        for a in seen {
            text.push_str(&format!(
                "apiserver_requested_deprecated_apis{{group=\"{}\",removed_release=\"{}\",resource=\"{}\",subresource=\"{}\",version=\"{}\"}} 1\n",
                a.group, a.removed_release, a.resource, a.subresource, a.version
            ));
        }
        text
    }

    /// The kinds this server serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves what a stored CRD says (its kinds once it is established).
    fn sync_crd(&self, crd: &Value) {
        let name = name_of(crd);
        if super::crd::is_established(crd) {
            self.registry
                .set_crd(name, &crd["spec"], || super::crd::types_of(crd));
        }
    }

    /// A CRD is gone: its kinds are no longer served and their objects are deleted.
    fn drop_crd(&self, crd: &Value) {
        let types = self.registry.remove_crd(name_of(crd));
        if let Some(rt) = types.first() {
            self.store.delete_all(rt);
        }
    }

    /// A client that acts as `user`.
    pub fn client(self: &Arc<Self>, user: UserInfo) -> Client {
        Client {
            api: Arc::clone(self),
            user,
        }
    }

    /// Accept `token` as a bearer token for `user` (the kubeconfig's users).
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_string(), user);
    }

    /// The user a bearer token stands for.
    pub fn user_for_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    /// Fault injection of the HTTP front.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// What outside clients asked of the HTTP front (controllers in-process are not audited).
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The store's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.current_rv()
    }

    /// How many objects are stored.
    pub fn object_count(&self) -> usize {
        self.store.len()
    }
}

/// Acts on the API server as one user.
#[derive(Clone)]
pub struct Client {
    api: Arc<ApiServer>,
    user: UserInfo,
}

use super::registry;

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// What a watch delivers: its type, namespace and selectors.
struct Filter {
    rt: &'static ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| key_of(object).0 == ns)
            && self.labels.matches_object(object)
            && self.fields.matches(object)
    }

    /// A committed change as this watch sees it: an object entering the selection is ADDED, one leaving it DELETED.
    fn event(&self, change: &Change) -> Option<WatchEvent> {
        if change.gvr != self.rt.gvr.stored() {
            return None;
        }
        let now = self.matches(&change.object);
        let before = change.old.as_deref().is_some_and(|o| self.matches(o));
        let object = || convert(self.rt, &change.object);
        match (change.kind, before, now) {
            (ChangeType::Added, _, true) => Some(WatchEvent::Added(object())),
            (ChangeType::Modified, true, true) => Some(WatchEvent::Modified(object())),
            (ChangeType::Modified, false, true) => Some(WatchEvent::Added(object())),
            (ChangeType::Modified, true, false) => Some(WatchEvent::Deleted(object())),
            (ChangeType::Deleted, true, _) => Some(WatchEvent::Deleted(object())),
            _ => None,
        }
    }
}

struct WatchState {
    api: Arc<ApiServer>,
    filter: Filter,
    last: u64,
    pending: VecDeque<WatchEvent>,
    rx: watch::Receiver<u64>,
    done: bool,
}

fn too_old(requested: u64, floor: u64) -> Status {
    Status::expired(format!(
        "too old resource version: {requested} ({})",
        floor + 1
    ))
}

impl Client {
    /// `POST .../serviceaccounts/{name}/token` (TokenRequest, `kubectl create token`): a bearer token
    /// for the account, accepted by this server from now on, and the TokenRequest answered with it.
    /// `expirationSeconds` defaults to 3600 as on kube-apiserver; the token is a JWT whose claims name
    /// the account (`sub` = `system:serviceaccount:<ns>:<name>`), the audiences and the expiry.
    pub async fn create_token(
        &self,
        namespace: &str,
        name: &str,
        mut request: Value,
    ) -> Result<Value, Status> {
        use base64::Engine;
        let rt = self.resource_type(super::gvr::SERVICE_ACCOUNTS)?;
        authz::authorize(
            &self.user,
            "create",
            rt,
            Some("token"),
            Some(namespace),
            name,
        )?;
        let account = self
            .store()
            .get(rt.gvr, namespace, name)
            .ok_or_else(|| Status::not_found(rt, name))?;
        let seconds = request
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        if seconds < 600 {
            return Err(Status::invalid(
                rt,
                name,
                &[super::status::FieldError::invalid(
                    "spec.expirationSeconds",
                    &seconds.to_string(),
                    "may not specify a duration less than 10 minutes",
                )],
            ));
        }
        let audiences = request
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .cloned()
            .unwrap_or_else(|| vec![Value::from("https://kubernetes.default.svc.cluster.local")]);
        let now = jiff::Timestamp::now();
        let exp = now.as_second() + seconds;
        let user = UserInfo::service_account(namespace, name);
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let claims = serde_json::json!({
            "aud": audiences,
            "exp": exp,
            "iat": now.as_second(),
            "iss": "https://kubernetes.default.svc.cluster.local",
            "jti": admission::uuid_v4(),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]}},
            "nbf": now.as_second(),
            "sub": user.username,
        });
        let signature: [u8; 32] = rand::random();
        let token = format!(
            "{}.{}.{}",
            b64(&serde_json::json!({"alg": "RS256", "kid": "sim"})),
            b64(&claims),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        );
        self.api.add_token(&token, user);
        let expiry = jiff::Timestamp::from_second(exp)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        if !request.is_object() {
            request = serde_json::json!({});
        }
        request["kind"] = Value::from("TokenRequest");
        request["apiVersion"] = Value::from("authentication.k8s.io/v1");
        request["metadata"] =
            serde_json::json!({"name": name, "namespace": namespace, "creationTimestamp": null});
        request["spec"]["audiences"] = Value::Array(audiences);
        request["spec"]["expirationSeconds"] = Value::from(seconds);
        request["status"] = serde_json::json!({"token": token, "expirationTimestamp": expiry});
        Ok(request)
    }

    fn resource_type(&self, gvr: Gvr) -> Result<&'static ResourceType, Status> {
        self.api
            .registry
            .lookup(gvr)
            .ok_or_else(Status::path_not_found)
    }

    pub fn user(&self) -> &UserInfo {
        &self.user
    }

    /// The same server as another user.
    pub fn as_user(&self, user: UserInfo) -> Client {
        Client {
            api: Arc::clone(&self.api),
            user,
        }
    }

    pub fn server(&self) -> &Arc<ApiServer> {
        &self.api
    }

    fn store(&self) -> &Store {
        &self.api.store
    }

    /// The namespace a request acts in: `None` for cluster-scoped kinds.
    fn scope(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        object: Option<&Value>,
    ) -> Result<Option<String>, Status> {
        if !rt.namespaced {
            return Ok(None);
        }
        let in_object = object
            .and_then(|o| o.pointer("/metadata/namespace"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match (namespace, in_object) {
            (Some(a), Some(b)) if a != b => Err(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            (Some(a), _) | (None, Some(a)) => Ok(Some(a.to_string())),
            (None, None) => Err(Status::bad_request(
                "an empty namespace may not be set during creation",
            )),
        }
    }

    fn check_kind(rt: &ResourceType, object: &mut Value) -> Result<(), Status> {
        let Some(map) = object.as_object_mut() else {
            return Err(Status::bad_request(
                "the body of the request must be a JSON object",
            ));
        };
        let api_version = rt.api_version();
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if k != rt.kind => {
                return Err(Status::bad_request(format!(
                    "the kind of the provided object ({k}) does not match the kind of the resource ({})",
                    rt.kind
                )));
            }
            Some(_) => {}
            None => {
                map.insert("kind".into(), Value::from(rt.kind));
            }
        }
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v != api_version => {
                return Err(Status::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
            Some(_) => {}
            None => {
                map.insert("apiVersion".into(), Value::from(api_version));
            }
        }
        if !map.get("metadata").is_some_and(Value::is_object) {
            map.insert("metadata".into(), Value::Object(Default::default()));
        }
        Ok(())
    }

    async fn admit(&self, attrs: &Attributes<'_>) -> Result<Vec<String>, Status> {
        let (configs, _) = self
            .store()
            .list(super::gvr::VALIDATING_WEBHOOK_CONFIGURATIONS, None);
        if configs.is_empty() {
            return Ok(Vec::new());
        }
        let ns_labels = if attrs.rt.gvr == super::gvr::NAMESPACES {
            attrs.object.or(attrs.old_object).map(labels_of)
        } else {
            attrs
                .namespace
                .and_then(|ns| self.store().get(super::gvr::NAMESPACES, "", ns))
                .map(|n| labels_of(&n))
        };
        let webhooks = admission::matching_webhooks(&configs, attrs, ns_labels.as_ref());
        self.api.webhooks.admit(&webhooks, attrs).await
    }

    pub async fn get(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, Status> {
        let rt = self.resource_type(gvr)?;
        authz::authorize(&self.user, "get", rt, None, namespace, name)?;
        let ns = if rt.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        self.store()
            .get(gvr, ns, name)
            .map(|v| convert(rt, &v))
            .ok_or_else(|| Status::not_found(rt, name))
    }

    pub async fn list(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList, Status> {
        let rt = self.resource_type(gvr)?;
        authz::authorize(&self.user, "list", rt, None, namespace, "")?;
        let filter = self.filter(rt, namespace, opts)?;
        let (objects, resource_version) = self.store().list(gvr, filter.namespace.as_deref());
        let items = objects
            .iter()
            .filter(|o| filter.matches(o))
            .map(|o| convert(rt, o))
            .collect();
        Ok(ObjectList {
            items,
            resource_version,
        })
    }

    fn filter(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Filter, Status> {
        Ok(Filter {
            rt,
            namespace: if rt.namespaced {
                namespace.map(String::from)
            } else {
                None
            },
            labels: LabelSelector::parse(opts.label_selector.as_deref().unwrap_or_default())?,
            fields: FieldSelector::parse(
                opts.field_selector.as_deref().unwrap_or_default(),
                rt.kind,
            )?,
        })
    }

    /// `namespace` must match `metadata.namespace` when that is set; it is filled in when absent.
    pub async fn create(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        self.create_full(gvr, namespace, object, opts)
            .await
            .map(|w| w.object)
    }

    pub async fn create_full(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Written, Status> {
        self.create_recorded(gvr, namespace, object, opts, true)
            .await
    }

    /// A create; `record_fields`: whether `managedFields` gets the writer's Update entry (an apply that
    /// creates brings its own Apply entry).
    async fn create_recorded(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        mut object: Value,
        opts: &WriteOptions,
        record_fields: bool,
    ) -> Result<Written, Status> {
        let rt = self.resource_type(gvr)?;
        let ns = self.scope(rt, namespace, Some(&object))?;
        authz::authorize(&self.user, "create", rt, None, ns.as_deref(), "")?;
        Self::check_kind(rt, &mut object)?;
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            match &ns {
                Some(ns) => meta.insert("namespace".into(), Value::from(ns.as_str())),
                None => meta.remove("namespace"),
            };
            let has_name = meta
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if let (false, Some(prefix)) =
                (has_name, meta.get("generateName").and_then(Value::as_str))
            {
                let name = generate_name(prefix);
                meta.insert("name".into(), Value::from(name));
            }
        }
        strategy::prepare_create(rt, &mut object, admission::uuid_v4());
        strategy::canonicalize_quantities(rt, &mut object);
        let is_crd = rt.gvr == super::gvr::CUSTOM_RESOURCE_DEFINITIONS;
        if is_crd {
            super::crd::default_spec(&mut object);
        }
        let name = name_of(&object).to_string();
        let mut errors = validation::validate_create(rt, &object);
        if is_crd {
            errors.extend(super::crd::validate(&object));
        }
        if !errors.is_empty() {
            return Err(Status::invalid(rt, &name, &errors));
        }
        if let Some(ns) = &ns
            && !self.store().namespace_exists(ns)
        {
            return Err(Status::namespace_not_found(ns));
        }
        let attrs = Attributes {
            rt,
            subresource: None,
            operation: "CREATE",
            namespace: ns.as_deref(),
            name: &name,
            object: Some(&object),
            old_object: None,
            user: &self.user,
            dry_run: opts.dry_run,
            field_manager: opts.field_manager.as_deref(),
        };
        let warnings = self.admit(&attrs).await?;
        if opts.dry_run {
            if self
                .store()
                .get(gvr, ns.as_deref().unwrap_or_default(), &name)
                .is_some()
            {
                return Err(Status::already_exists(rt, &name));
            }
            return Ok(Written { object, warnings });
        }
        if is_crd {
            super::crd::accept(&self.api.registry, &mut object);
        }
        let (manager, now) = (opts.manager(), strategy::now_rfc3339());
        let writer = super::managed::Writer {
            manager: &manager,
            api_version: &rt.api_version(),
            subresource: None,
            time: &now,
        };
        if record_fields {
            super::managed::record(None, &mut object, &writer, rt.status_subresource);
        }
        let object = self.store().create(rt, object)?;
        if is_crd {
            self.api.sync_crd(&object);
        }
        Ok(Written { object, warnings })
    }

    /// A PUT: 409 when `metadata.resourceVersion` is set and stale. Ignores `status` on types with a status subresource.
    pub async fn update(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        self.update_full(gvr, namespace, object, opts, false)
            .await
            .map(|w| w.object)
    }

    /// A PUT to the status subresource: only `status` changes.
    pub async fn update_status(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        self.update_full(gvr, namespace, object, opts, true)
            .await
            .map(|w| w.object)
    }

    pub async fn update_full(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        object: Value,
        opts: &WriteOptions,
        status: bool,
    ) -> Result<Written, Status> {
        self.update_subresource(gvr, namespace, object, opts, status.then_some("status"))
            .await
    }

    /// A PUT to the main resource (`sub` = `None`) or to one of its subresources: `status`, or a Pod's
    /// `ephemeralcontainers` (what `kubectl debug` writes: only `spec.ephemeralContainers` changes).
    pub async fn update_subresource(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        mut object: Value,
        opts: &WriteOptions,
        sub: Option<&str>,
    ) -> Result<Written, Status> {
        let rt = self.resource_type(gvr)?;
        let ns = self.scope(rt, namespace, Some(&object))?;
        let name = name_of(&object).to_string();
        authz::authorize(&self.user, "update", rt, sub, ns.as_deref(), &name)?;
        if sub.is_some_and(|s| !rt.has_subresource(s)) {
            return Err(Status::path_not_found());
        }
        Self::check_kind(rt, &mut object)?;
        if name.is_empty() {
            return Err(Status::invalid(
                rt,
                "",
                &[super::status::FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        let precondition = rv_of(&object);
        let change = |_: &Value| Ok(object.clone());
        self.write(
            rt,
            ns.as_deref(),
            &name,
            sub,
            precondition,
            opts,
            true,
            change,
        )
        .await
    }

    pub async fn patch(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        self.patch_full(gvr, namespace, name, patch, opts, false)
            .await
            .map(|w| w.object)
    }

    pub async fn patch_status(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        self.patch_full(gvr, namespace, name, patch, opts, true)
            .await
            .map(|w| w.object)
    }

    pub async fn patch_full(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        p: &Patch,
        opts: &WriteOptions,
        status: bool,
    ) -> Result<Written, Status> {
        self.patch_subresource(gvr, namespace, name, p, opts, status.then_some("status"))
            .await
    }

    /// A PATCH of the main resource (`sub` = `None`) or of one of its subresources: `status`, or a
    /// Pod's `ephemeralcontainers` (`kubectl debug` sends a strategic merge patch there).
    pub async fn patch_subresource(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        p: &Patch,
        opts: &WriteOptions,
        sub: Option<&str>,
    ) -> Result<Written, Status> {
        let rt = self.resource_type(gvr)?;
        let ns = if rt.namespaced {
            namespace.map(String::from)
        } else {
            None
        };
        authz::authorize(&self.user, "patch", rt, sub, ns.as_deref(), name)?;
        if sub.is_some_and(|s| !rt.has_subresource(s)) {
            return Err(Status::path_not_found());
        }
        let change = |old: &Value| {
            let patched = patch::apply(rt, old, p)?;
            if let Some(prv) = rv_of(&patched)
                && Some(prv) != rv_of(old)
            {
                return Err(Status::conflict(rt, name));
            }
            Ok(patched)
        };
        self.write(rt, ns.as_deref(), name, sub, None, opts, true, change)
            .await
    }

    /// Server-side apply of `config` to the object `name` ([`super::apply`]): a PATCH with
    /// `application/apply-patch+yaml`. Creates the object when it does not exist (the `bool`: created).
    ///
    /// # Errors
    /// 422 without a field manager; 400 when the configuration names another apiVersion, kind or name;
    /// 409 with `FieldManagerConflict` causes when it would change fields other managers own and
    /// `force` is not set; whatever validation and admission answer.
    pub async fn apply(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        config: &Value,
        opts: &WriteOptions,
        force: bool,
    ) -> Result<(Written, bool), Status> {
        let rt = self.resource_type(gvr)?;
        let ns = if rt.namespaced {
            namespace.map(String::from)
        } else {
            None
        };
        authz::authorize(&self.user, "patch", rt, None, ns.as_deref(), name)?;
        if let Some(s) =
            super::apply::patch_options_invalid(true, opts.field_manager.as_deref(), false)
        {
            return Err(s);
        }
        let manager = opts.field_manager.clone().unwrap_or_default();
        check_applied(rt, name, config)?;
        let openapi = self.custom_schema(rt);
        let schema = super::apply::Schema {
            kind: rt.kind,
            openapi: openapi.as_ref(),
        };
        let api_version = rt.api_version();
        let now = strategy::now_rfc3339();
        let who = super::apply::Applier {
            manager: &manager,
            api_version: &api_version,
            time: &now,
            force,
            status_subresource: rt.status_subresource,
        };
        let exists = self
            .store()
            .get(rt.gvr, ns.as_deref().unwrap_or_default(), name)
            .is_some();
        if !exists {
            let mut object = super::apply::apply(None, config, &schema, &who)?;
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("name".into(), Value::from(name));
            }
            return self
                .create_recorded(gvr, ns.as_deref(), object, opts, false)
                .await
                .map(|w| (w, true));
        }
        let change = |old: &Value| super::apply::apply(Some(old), config, &schema, &who);
        self.write(rt, ns.as_deref(), name, None, None, opts, false, change)
            .await
            .map(|w| (w, false))
    }

    /// The `openAPIV3Schema` of a custom resource's version, from its CRD.
    fn custom_schema(&self, rt: &ResourceType) -> Option<Value> {
        if !rt.custom {
            return None;
        }
        let crd_name = format!("{}.{}", rt.gvr.resource, rt.gvr.group);
        let crd = self
            .store()
            .get(super::gvr::CUSTOM_RESOURCE_DEFINITIONS, "", &crd_name)?;
        crd.pointer("/spec/versions")?
            .as_array()?
            .iter()
            .find(|v| v["name"] == rt.gvr.version)?
            .pointer("/schema/openAPIV3Schema")
            .cloned()
    }

    /// Read-modify-write of one object, retried when someone else wrote in between (unless the client
    /// gave a resourceVersion precondition).
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        precondition: Option<u64>,
        opts: &WriteOptions,
        record_fields: bool,
        change: impl Fn(&Value) -> Result<Value, Status>,
    ) -> Result<Written, Status> {
        for _ in 0..16 {
            let old = self
                .store()
                .get(rt.gvr, ns.unwrap_or_default(), name)
                .ok_or_else(|| Status::not_found(rt, name))?;
            let old_rv = rv_of(&old).unwrap_or_default();
            if precondition.is_some_and(|p| p != old_rv) {
                return Err(Status::conflict(rt, name));
            }
            let old = Arc::new(convert(rt, &old));
            let requested = change(&old)?;
            let is_crd = rt.gvr == super::gvr::CUSTOM_RESOURCE_DEFINITIONS;
            let mut new = match sub {
                Some("status") => strategy::prepare_status_update(&old, &requested),
                Some("approval") => strategy::prepare_approval_update(&old, &requested),
                Some(_) => strategy::prepare_ephemeral_containers_update(&old, &requested),
                None => {
                    let mut n = requested;
                    Self::check_kind(rt, &mut n)?;
                    strategy::prepare_update(rt, &old, &mut n);
                    n
                }
            };
            strategy::canonicalize_quantities(rt, &mut new);
            let mut errors = validation::validate_update(rt, &old, &new);
            if is_crd && sub.is_none() {
                super::crd::default_spec(&mut new);
                errors.extend(super::crd::validate(&new));
                if errors.is_empty() {
                    super::crd::accept(&self.api.registry, &mut new);
                }
            }
            if !errors.is_empty() {
                return Err(Status::invalid(rt, name, &errors));
            }
            if strategy::unchanged(&old, &new)
                && (record_fields || super::apply::ownership(&old) == super::apply::ownership(&new))
            {
                return Ok(Written {
                    object: (*old).clone(),
                    warnings: Vec::new(),
                });
            }
            let (manager, now) = (opts.manager(), strategy::now_rfc3339());
            let writer = super::managed::Writer {
                manager: &manager,
                api_version: &rt.api_version(),
                subresource: sub,
                time: &now,
            };
            if record_fields {
                super::managed::record(Some(&old), &mut new, &writer, rt.status_subresource);
            }
            let attrs = Attributes {
                rt,
                subresource: sub,
                operation: "UPDATE",
                namespace: ns,
                name,
                object: Some(&new),
                old_object: Some(&old),
                user: &self.user,
                dry_run: opts.dry_run,
                field_manager: opts.field_manager.as_deref(),
            };
            let warnings = self.admit(&attrs).await?;
            if opts.dry_run {
                return Ok(Written {
                    object: new,
                    warnings,
                });
            }
            let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
                && new
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
            let result = if finalized {
                self.store()
                    .delete(rt, ns.unwrap_or_default(), name, Some(old_rv))
            } else {
                self.store().replace(rt, new, old_rv)
            };
            match result {
                Ok(object) => {
                    if is_crd {
                        if finalized {
                            self.api.drop_crd(&object);
                        } else {
                            self.api.sync_crd(&object);
                        }
                    }
                    return Ok(Written { object, warnings });
                }
                Err(e) if e.is_conflict() && precondition.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Status::conflict(rt, name))
    }

    /// Returns the object as it was deleted.
    pub async fn delete(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        self.delete_full(gvr, namespace, name, opts)
            .await
            .map(|w| w.object)
    }

    pub async fn delete_full(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        name: &str,
        opts: &WriteOptions,
    ) -> Result<Written, Status> {
        let rt = self.resource_type(gvr)?;
        let ns = if rt.namespaced {
            namespace.map(String::from)
        } else {
            None
        };
        authz::authorize(&self.user, "delete", rt, None, ns.as_deref(), name)?;
        for _ in 0..16 {
            let old = self
                .store()
                .get(gvr, ns.as_deref().unwrap_or_default(), name)
                .ok_or_else(|| Status::not_found(rt, name))?;
            let old_rv = rv_of(&old);
            let attrs = Attributes {
                rt,
                subresource: None,
                operation: "DELETE",
                namespace: ns.as_deref(),
                name,
                object: None,
                old_object: Some(&old),
                user: &self.user,
                dry_run: opts.dry_run,
                field_manager: None,
            };
            let warnings = self.admit(&attrs).await?;
            if opts.dry_run {
                return Ok(Written {
                    object: (*old).clone(),
                    warnings,
                });
            }
            let has_finalizers = old
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            let result = if has_finalizers {
                if old.pointer("/metadata/deletionTimestamp").is_some() {
                    return Ok(Written {
                        object: (*old).clone(),
                        warnings,
                    });
                }
                let mut marked = (*old).clone();
                marked["metadata"]["deletionTimestamp"] = Value::from(strategy::now_rfc3339());
                marked["metadata"]["deletionGracePeriodSeconds"] = Value::from(0);
                if rt.has_generation {
                    let g = old
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    marked["metadata"]["generation"] = Value::from(g + 1);
                }
                self.store().replace(rt, marked, old_rv.unwrap_or_default())
            } else {
                self.store()
                    .delete(rt, ns.as_deref().unwrap_or_default(), name, old_rv)
            };
            match result {
                Ok(object) => {
                    if rt.gvr == super::gvr::CUSTOM_RESOURCE_DEFINITIONS && !has_finalizers {
                        self.api.drop_crd(&object);
                    }
                    return Ok(Written {
                        object: convert(rt, &object),
                        warnings,
                    });
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Status::conflict(rt, name))
    }

    /// Every change after `resource_version` (or, with `None`, the current objects as `Added` first, then changes).
    pub async fn watch(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
        opts: &ListOptions,
        resource_version: Option<u64>,
    ) -> Result<BoxStream<'static, WatchEvent>, Status> {
        let rt = self.resource_type(gvr)?;
        authz::authorize(&self.user, "watch", rt, None, namespace, "")?;
        let filter = self.filter(rt, namespace, opts)?;
        let (pending, last, rx) = match resource_version {
            Some(rv) => {
                let rx = self.store().subscribe();
                let floor = self.store().floor();
                if rv < floor {
                    let e = WatchEvent::Error(too_old(rv, floor));
                    return Ok(futures::stream::iter([e]).boxed());
                }
                (VecDeque::new(), rv, rx)
            }
            None => {
                let (objects, rv, rx) = self
                    .store()
                    .list_for_watch(gvr, filter.namespace.as_deref());
                let added = objects
                    .iter()
                    .filter(|o| filter.matches(o))
                    .map(|o| WatchEvent::Added(convert(rt, o)))
                    .collect();
                (added, rv, rx)
            }
        };
        let state = WatchState {
            api: Arc::clone(&self.api),
            filter,
            last,
            pending,
            rx,
            done: false,
        };
        Ok(futures::stream::unfold(state, next_event).boxed())
    }
}

async fn next_event(mut st: WatchState) -> Option<(WatchEvent, WatchState)> {
    loop {
        if let Some(e) = st.pending.pop_front() {
            return Some((e, st));
        }
        if st.done {
            return None;
        }
        st.rx.borrow_and_update();
        match st.api.store.changes_since(st.last) {
            None => {
                st.done = true;
                st.pending
                    .push_back(WatchEvent::Error(too_old(st.last, st.api.store.floor())));
                continue;
            }
            Some(changes) => {
                for c in &changes {
                    st.last = c.rv;
                    if let Some(e) = st.filter.event(c) {
                        st.pending.push_back(e);
                    }
                }
                if !st.pending.is_empty() {
                    continue;
                }
            }
        }
        if st.rx.changed().await.is_err() {
            return None;
        }
    }
}

/// An object as the version `rt` serves shows it: custom resources are stored once for all their
/// versions, and a CRD's `conversion: None` changes only `apiVersion`.
fn convert(rt: &ResourceType, object: &Value) -> Value {
    let mut out = object.clone();
    if rt.custom
        && object.get("apiVersion").and_then(Value::as_str) != Some(rt.api_version().as_str())
        && let Some(map) = out.as_object_mut()
    {
        map.insert("apiVersion".into(), Value::from(rt.api_version()));
    }
    out
}

/// `generateName` + five random characters from the server's alphabet.
/// What kube-apiserver checks of an applied configuration before merging it: its apiVersion and kind
/// those of the URL, its name the URL's, no `managedFields` of its own.
fn check_applied(rt: &ResourceType, name: &str, config: &Value) -> Result<(), Status> {
    if !config.is_object() {
        return Err(Status::bad_request(
            "error decoding YAML: the applied configuration is not an object",
        ));
    }
    let api_version = config["apiVersion"].as_str().unwrap_or_default();
    if api_version != rt.api_version() {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    let kind = config["kind"].as_str().unwrap_or_default();
    if kind != rt.kind {
        return Err(Status::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    if config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(Status::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if config.pointer("/metadata/managedFields").is_some() {
        return Err(Status::bad_request("metadata.managedFields must be nil"));
    }
    Ok(())
}

fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}
