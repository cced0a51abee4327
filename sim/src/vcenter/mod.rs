//! A simulated vCenter for Supervisor Services: the vSphere Automation API (`/api` flavour) over HTTPS,
//! joined to the simulated Supervisor the way vCenter's Workload Management service (wcpsvc) is.
//!
//! - Sessions: `POST /api/session` with HTTP Basic → 201 and the token as a bare JSON string; every
//!   other request carries it in `vmware-api-session-id`, else 401 `UNAUTHENTICATED`; `DELETE
//!   /api/session` logs out ([`Vcenter::expire_sessions`] ends them all, as an idle timeout does).
//! - `GET /api/appliance/system/version`, configured by [`VcenterOptions::release`] (7.0.3, 8.0.3, 9.0,
//!   9.1), which also decides which routes and fields exist (see [`model::Release`]).
//! - The catalog and the install records of one Supervisor ([`model`]), both route families (cluster
//!   form, list a bare array; Supervisor form from 9.0, list wrapped), `clusters` and
//!   `supervisors/summaries` to find the Supervisor of a kubeconfig. Other Supervisors known only to
//!   vCenter ([`VcenterOptions::other_supervisors`]) have install records of their own, served by the
//!   same routes: an uninstall there answers `REMOVING` for a few reads, then the record is gone.
//! - The join (a model of wcpsvc): installing or setting a service writes the PackageInstall
//!   `svc-<id>` (version constraint) and its values Secret from vCenter's copy, pausing and unpausing
//!   the PackageInstall so its generation moves; `config_status` is `CONFIGURING` until the
//!   PackageInstall reconciled that generation, then `CONFIGURED` or `ERROR` with kapp-controller's
//!   message as a record message (`Reason: ReconcileSucceeded. Message: Reconcile succeeded.`, LAB3).
//! - At start, vCenter's state is taken from the Supervisor: a catalog service per Package, an install
//!   record per `svc-*` PackageInstall whose stored config is the values Secret plus the platform key
//!   `namespace: <service namespace>` (what vCenter adds, LAB3), written back to the Secret.
//! - Re-assertion (a switch, [`VcenterOptions::reassert_every`]; [`Vcenter::reassert`] does one pass
//!   now): a values Secret that differs from vCenter's copy of a CONFIGURED service is written back
//!   from that copy, as the next configure or upgrade from vCenter does (lifecycle blog `001`) — the
//!   fate of an edit made on the Supervisor only.
//! - Every request is recorded ([`Vcenter::requests`]: method, path, body, status; never the password),
//!   and [`Trigger`]s inject what tests need mid-run: sessions expiring, a concurrent edit from the
//!   vSphere Client, an error answer.

pub mod model;

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{ApiServer, Client, ListOptions, Patch, UserInfo, WriteOptions, gvr};
use crate::tls::{self, Ca};
pub use model::Release;
use model::{Answer, CatalogService, CatalogVersion, Effect, Install, Model, b64, unb64};
pub use model::{OtherInstall, OtherSupervisor};

/// The header carrying the session token.
pub const SESSION_HEADER: &str = "vmware-api-session-id";
/// The namespace of the Supervisor Services' PackageInstalls.
pub const SERVICES_NAMESPACE: &str = "vmware-system-supervisor-services";
/// Core services: installed by the platform, refused to uninstall or deactivate (403).
pub const CORE_SERVICES: &[&str] = &["tkg.vsphere.vmware.com"];
/// The message of a record whose PackageInstall reconciled (LAB3's real 9.1 record).
pub const RECONCILE_SUCCEEDED: &str = "Reason: ReconcileSucceeded. Message: Reconcile succeeded.";

/// How to start a simulated vCenter.
#[derive(Clone, Debug)]
pub struct VcenterOptions {
    pub release: Release,
    pub username: String,
    pub password: String,
    pub listen: SocketAddr,
    /// The vSphere cluster MoID of the Supervisor; default: the `vSphereClusterID` label of a service
    /// namespace, else `domain-c8`.
    pub cluster: Option<String>,
    /// The Supervisor ID (9.x routes).
    pub supervisor: String,
    /// The Supervisor's API endpoint (host) as `clusters/{c}` and `summaries` report it.
    pub endpoint: String,
    /// Re-assert vCenter's copy of each CONFIGURED service's values onto the Supervisor this often
    /// (see [`Vcenter::reassert`]); `None` (the default): only when asked.
    pub reassert_every: Option<Duration>,
    /// Other Supervisors of this vCenter, known only to vCenter (no API server behind them), each with
    /// its own install records: listed by `clusters` and `supervisors/summaries` and served by both
    /// install route families. Default: none.
    pub other_supervisors: Vec<OtherSupervisor>,
}

impl Default for VcenterOptions {
    fn default() -> Self {
        VcenterOptions {
            release: Release::V8_0_3,
            username: "administrator@vsphere.local".into(),
            password: "VMware1!".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cluster: None,
            supervisor: "supervisor-1a2b3c".into(),
            endpoint: "127.0.0.1".into(),
            reassert_every: None,
            other_supervisors: Vec::new(),
        }
    }
}

/// One request as vCenter received it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/api/vcenter/namespace-management/supervisor-services/x?action=activate`.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
    pub status: u16,
    /// Whether it carried a valid session.
    pub authenticated: bool,
}

impl Recorded {
    /// `METHOD path`, for asserting an order of calls.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What a [`Trigger`] does when it fires.
#[derive(Clone, Debug)]
pub enum Action {
    /// Every session ends before this request is authenticated (it answers 401).
    ExpireSessions,
    /// Someone edits the service's config in the vSphere Client before this request: vCenter's copy
    /// changes (and is applied to the Supervisor).
    EditConfig { service: String, yaml: String },
    /// The request is answered with this status and vAPI error, and changes nothing.
    Fail {
        status: u16,
        error_type: String,
        message: String,
    },
}

/// Fires `action` on the requests matching `method` and a path containing `path`, after letting
/// `skip` of them through, `times` times.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub method: String,
    pub path: String,
    pub skip: usize,
    pub times: usize,
    pub action: Action,
}

struct Shared {
    options: VcenterOptions,
    cluster: String,
    model: Mutex<Model>,
    sessions: Mutex<HashSet<String>>,
    requests: Mutex<Vec<Recorded>>,
    triggers: Mutex<Vec<Trigger>>,
    admin: Client,
}

/// A running simulated vCenter.
pub struct Vcenter {
    shared: Arc<Shared>,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The CA that signed its certificate (PEM); not the Supervisor's.
    pub ca_pem: String,
    stop: watch::Sender<bool>,
}

impl Vcenter {
    /// Starts a vCenter over `api`'s Supervisor: takes the catalog and the install records from it,
    /// writes the values Secrets from vCenter's copy and waits (up to a minute) until each reconciled.
    pub async fn start(api: Arc<ApiServer>, options: VcenterOptions) -> anyhow::Result<Vcenter> {
        let admin = api.client(UserInfo::admin());
        let (mut model, cluster) = seed(&admin, &options).await?;
        model.others = options.other_supervisors.clone();
        let shared = Arc::new(Shared {
            cluster,
            options,
            model: Mutex::new(model),
            sessions: Mutex::new(HashSet::new()),
            requests: Mutex::new(Vec::new()),
            triggers: Mutex::new(Vec::new()),
            admin,
        });
        let installs: Vec<(String, String, String)> = {
            let model = shared.model.lock().expect("model lock");
            model
                .installs
                .iter()
                .map(|(id, i)| (id.clone(), i.desired_version.clone(), i.config.clone()))
                .collect()
        };
        for (service, version, config) in installs {
            apply(
                &shared,
                &Effect::Apply {
                    service,
                    version,
                    config,
                },
            )
            .await?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            refresh(&shared).await;
            let pending: Vec<String> = {
                let model = shared.model.lock().expect("model lock");
                model
                    .installs
                    .iter()
                    .filter(|(_, i)| i.config_status == "CONFIGURING")
                    .map(|(id, _)| id.clone())
                    .collect()
            };
            if pending.is_empty() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the simulated vCenter's services did not reconcile: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let listener = TcpListener::bind(shared.options.listen).await?;
        let addr = listener.local_addr()?;
        let ca = Ca::new("supsvc-sim-vcenter-ca")?;
        let ip = addr.ip().to_string();
        let cert = ca.issue(&[ip.as_str(), "127.0.0.1", "localhost"])?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&cert)?);
        let (stop, mut stopped) = watch::channel(false);
        if let Some(every) = shared.options.reassert_every {
            let shared = Arc::clone(&shared);
            let mut stopped = stop.subscribe();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(every);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = ticker.tick() => {
                            if let Err(e) = reassert(&shared).await {
                                tracing::warn!("vCenter re-assertion: {e:#}");
                            }
                        }
                    }
                }
            });
        }
        let serving = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        let shared = Arc::clone(&serving);
                        connections.spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let service = service_fn(move |req| {
                                let shared = Arc::clone(&shared);
                                async move { Ok::<_, std::convert::Infallible>(handle(&shared, req).await) }
                            });
                            let _ = auto::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(tls), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            connections.abort_all();
        });
        Ok(Vcenter {
            shared,
            url: format!("https://{addr}"),
            ca_pem: ca.pem().to_string(),
            stop,
        })
    }

    pub fn options(&self) -> &VcenterOptions {
        &self.shared.options
    }

    /// The vSphere cluster MoID of the Supervisor.
    pub fn cluster(&self) -> &str {
        &self.shared.cluster
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().expect("requests lock").clear();
    }

    /// Ends every session (the next request with an old token answers 401).
    pub fn expire_sessions(&self) {
        self.shared.sessions.lock().expect("sessions lock").clear();
    }

    /// Adds a trigger.
    pub fn trigger(&self, trigger: Trigger) {
        self.shared
            .triggers
            .lock()
            .expect("triggers lock")
            .push(trigger);
    }

    /// The install record of `service` on the other Supervisor `supervisor` (its ID or cluster MoID)
    /// as vCenter holds it now, without counting a read; `None` when not installed there.
    pub fn other_install(&self, supervisor: &str, service: &str) -> Option<OtherInstall> {
        let model = self.shared.model.lock().expect("model lock");
        model
            .others
            .iter()
            .find(|o| o.supervisor == supervisor || o.cluster == supervisor)
            .and_then(|o| o.installs.get(service).cloned())
    }

    /// vCenter's stored config of a service (YAML text), if installed.
    pub fn stored_config(&self, service: &str) -> Option<String> {
        let model = self.shared.model.lock().expect("model lock");
        model.installs.get(service).map(|i| i.config.clone())
    }

    /// The install record's `(desired_version, current_version, config_status)`, refreshed from the Supervisor.
    pub async fn install_state(
        &self,
        service: &str,
    ) -> Option<(String, Option<String>, &'static str)> {
        refresh(&self.shared).await;
        let model = self.shared.model.lock().expect("model lock");
        model.installs.get(service).map(|i| {
            (
                i.desired_version.clone(),
                i.current_version.clone(),
                i.config_status,
            )
        })
    }

    /// Edits the service's config as the vSphere Client's YAML editor does (a `PUT` of the whole spec).
    pub async fn edit_config(&self, service: &str, yaml: &str) -> anyhow::Result<()> {
        edit_config(&self.shared, service, yaml).await
    }

    /// Adds (or replaces) a catalog service with the given versions, all ACTIVATED.
    pub fn add_service(&self, id: &str, versions: &[&str], must_be_installed: bool) {
        let mut model = self.shared.model.lock().expect("model lock");
        model.services.insert(
            id.to_string(),
            CatalogService {
                display_name: id.split('.').next().unwrap_or(id).to_string(),
                description: String::new(),
                activated: true,
                must_be_installed,
                versions: versions
                    .iter()
                    .map(|v| {
                        (
                            v.to_string(),
                            CatalogVersion {
                                display_name: format!("{id} {v}"),
                                activated: true,
                                content: String::new(),
                                registered_by_default: must_be_installed,
                            },
                        )
                    })
                    .collect(),
            },
        );
    }

    /// Makes the compatibility precheck of `service` `version` (registered now or later) answer
    /// INCOMPATIBLE with `message`, and an upgrade PUT to it 500, as a version needing a newer
    /// Supervisor does.
    pub fn set_incompatible(&self, service: &str, version: &str, message: &str) {
        let mut model = self.shared.model.lock().expect("model lock");
        model.incompatible.insert(
            (service.to_string(), version.to_string()),
            message.to_string(),
        );
    }

    /// The catalog's versions of a service and whether each is ACTIVATED; `None` when unknown.
    pub fn catalog_versions(&self, service: &str) -> Option<Vec<(String, bool)>> {
        let model = self.shared.model.lock().expect("model lock");
        model.services.get(service).map(|s| {
            s.versions
                .iter()
                .map(|(v, info)| (v.clone(), info.activated))
                .collect()
        })
    }

    /// Whether the catalog holds the service, and its state.
    pub fn service_activated(&self, service: &str) -> Option<bool> {
        let model = self.shared.model.lock().expect("model lock");
        model.services.get(service).map(|s| s.activated)
    }

    /// What `supsvc-sim serve --vcenter` writes beside the kubeconfig: shell assignments of
    /// `SUPSVC_VCENTER`, `SUPSVC_VCENTER_USER`, `SUPSVC_VCENTER_PASSWORD` and
    /// `SUPSVC_VCENTER_CA_FILE` (`ca_file`, where the CA is written).
    pub fn env_file(&self, ca_file: &std::path::Path) -> String {
        format!(
            "SUPSVC_VCENTER={}\nSUPSVC_VCENTER_USER={}\nSUPSVC_VCENTER_PASSWORD='{}'\nSUPSVC_VCENTER_CA_FILE={}\n",
            self.url,
            self.shared.options.username,
            self.shared.options.password.replace('\'', "'\\''"),
            ca_file.display()
        )
    }

    /// Stops serving.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// One re-assertion pass: every CONFIGURED service whose values Secret differs from vCenter's
    /// stored config gets vCenter's copy written back (and its PackageInstall reconciled), as
    /// wcpsvc does on the next configure. Returns the service IDs it re-asserted.
    ///
    /// # Errors
    /// A read or write of the Supervisor's objects that failed.
    pub async fn reassert(&self) -> anyhow::Result<Vec<String>> {
        reassert(&self.shared).await
    }
}

async fn reassert(shared: &Arc<Shared>) -> anyhow::Result<Vec<String>> {
    refresh(shared).await;
    let configured: Vec<(String, String, String)> = {
        let model = shared.model.lock().expect("model lock");
        model
            .installs
            .iter()
            .filter(|(_, i)| i.config_status == "CONFIGURED" && i.awaiting_generation.is_none())
            .map(|(id, i)| (id.clone(), i.desired_version.clone(), i.config.clone()))
            .collect()
    };
    let mut reasserted = Vec::new();
    for (service, version, config) in configured {
        let pkgi = match shared
            .admin
            .get(
                gvr::PACKAGE_INSTALLS,
                Some(SERVICES_NAMESPACE),
                &format!("svc-{service}"),
            )
            .await
        {
            Ok(pkgi) => pkgi,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(anyhow::anyhow!("reading svc-{service}: {e}")),
        };
        let live = values_secret(&shared.admin, &pkgi)
            .await?
            .map(|(secret, key)| secret_text(&secret, &key));
        if live.as_deref() == Some(config.as_str()) {
            continue;
        }
        if let Some(install) = shared
            .model
            .lock()
            .expect("model lock")
            .installs
            .get_mut(&service)
        {
            install.config_status = "CONFIGURING";
        }
        apply(
            shared,
            &Effect::Apply {
                service: service.clone(),
                version,
                config,
            },
        )
        .await?;
        reasserted.push(service);
    }
    Ok(reasserted)
}

impl Drop for Vcenter {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn edit_config(shared: &Arc<Shared>, service: &str, yaml: &str) -> anyhow::Result<()> {
    let version = {
        let mut model = shared.model.lock().expect("model lock");
        let install = model
            .installs
            .get_mut(service)
            .with_context(|| format!("{service} is not installed"))?;
        install.config = yaml.to_string();
        install.config_status = "CONFIGURING";
        install.awaiting_generation = None;
        install.desired_version.clone()
    };
    apply(
        shared,
        &Effect::Apply {
            service: service.to_string(),
            version,
            config: yaml.to_string(),
        },
    )
    .await
}

/// vCenter's state taken from the Supervisor; returns it and the cluster MoID.
async fn seed(admin: &Client, options: &VcenterOptions) -> anyhow::Result<(Model, String)> {
    let mut model = Model::default();
    let packages = admin
        .list(
            gvr::PACKAGES,
            Some(SERVICES_NAMESPACE),
            &ListOptions::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("listing Packages: {e}"))?;
    for package in &packages.items {
        let (Some(id), Some(version)) = (
            package["spec"]["refName"].as_str(),
            package["spec"]["version"].as_str(),
        ) else {
            continue;
        };
        let core = CORE_SERVICES.contains(&id);
        let service = model
            .services
            .entry(id.to_string())
            .or_insert_with(|| CatalogService {
                display_name: id.split('.').next().unwrap_or(id).to_string(),
                description: String::new(),
                activated: true,
                must_be_installed: core,
                versions: BTreeMap::new(),
            });
        let mut document = package.clone();
        if let Some(m) = document["metadata"].as_object_mut() {
            m.retain(|k, _| k == "name" || k == "namespace");
        }
        if let Some(o) = document.as_object_mut() {
            o.remove("status");
        }
        service.versions.insert(
            version.to_string(),
            CatalogVersion {
                display_name: format!("{id} {version}"),
                activated: true,
                content: b64(&document.to_string()),
                registered_by_default: core,
            },
        );
    }

    let namespaces = admin
        .list(gvr::NAMESPACES, None, &ListOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("listing namespaces: {e}"))?;
    let mut cluster = options.cluster.clone();
    let pkgis = admin
        .list(
            gvr::PACKAGE_INSTALLS,
            Some(SERVICES_NAMESPACE),
            &ListOptions::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("listing PackageInstalls: {e}"))?;
    for pkgi in &pkgis.items {
        let name = pkgi["metadata"]["name"].as_str().unwrap_or_default();
        let Some(id) = name.strip_prefix("svc-") else {
            continue;
        };
        let Some(version) = pkgi["spec"]["packageRef"]["versionSelection"]["constraints"].as_str()
        else {
            continue;
        };
        let short = id.split('.').next().unwrap_or(id);
        let service_ns = namespaces.items.iter().find(|n| {
            n["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("svc-{short}-")))
        });
        if cluster.is_none() {
            cluster = service_ns
                .and_then(|n| n["metadata"]["labels"]["vSphereClusterID"].as_str())
                .map(String::from);
        }
        let service_ns = service_ns
            .and_then(|n| n["metadata"]["name"].as_str())
            .map(String::from)
            .unwrap_or_else(|| format!("svc-{short}"));
        let text = match values_secret(admin, pkgi).await? {
            Some((secret, key)) => secret_text(&secret, &key),
            None => String::new(),
        };
        let config = with_namespace(&text, &service_ns);
        model.installs.insert(
            id.to_string(),
            Install {
                desired_version: version.to_string(),
                current_version: Some(version.to_string()),
                config_status: "CONFIGURING",
                messages: Vec::new(),
                service_namespace: service_ns,
                config,
                awaiting_generation: None,
            },
        );
    }
    Ok((model, cluster.unwrap_or_else(|| "domain-c8".into())))
}

/// `text` with `namespace: <ns>` first, unless it has a top-level `namespace` already.
fn with_namespace(text: &str, namespace: &str) -> String {
    let parsed: Value = serde_saphyr::from_str(text).unwrap_or(Value::Null);
    if parsed.get("namespace").is_some() {
        return text.to_string();
    }
    format!("namespace: {namespace}\n{text}")
}

/// The values Secret a PackageInstall references (first `spec.values[].secretRef`) and its key.
async fn values_secret(admin: &Client, pkgi: &Value) -> anyhow::Result<Option<(Value, String)>> {
    let Some(reference) = pkgi["spec"]["values"]
        .as_array()
        .and_then(|v| v.iter().find_map(|v| v.get("secretRef")))
    else {
        return Ok(None);
    };
    let name = reference["name"].as_str().unwrap_or_default();
    let key = reference["key"]
        .as_str()
        .unwrap_or("values.yaml")
        .to_string();
    match admin
        .get(gvr::SECRETS, Some(SERVICES_NAMESPACE), name)
        .await
    {
        Ok(secret) => Ok(Some((secret, key))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading Secret {name}: {e}")),
    }
}

fn secret_text(secret: &Value, key: &str) -> String {
    if let Some(s) = secret["stringData"][key].as_str() {
        return s.to_string();
    }
    secret["data"][key]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// wcpsvc's side of a change: the values Secret from vCenter's copy, the PackageInstall pointed at the
/// version, paused and unpaused so its generation moves; the record then awaits that generation.
async fn apply(shared: &Arc<Shared>, effect: &Effect) -> anyhow::Result<()> {
    let admin = &shared.admin;
    let ns = Some(SERVICES_NAMESPACE);
    match effect {
        Effect::Apply {
            service,
            version,
            config,
        } => {
            let name = format!("svc-{service}");
            let pkgi = match admin.get(gvr::PACKAGE_INSTALLS, ns, &name).await {
                Ok(p) => p,
                Err(e) if e.is_not_found() => {
                    let pkgi = json!({
                        "apiVersion": "packaging.carvel.dev/v1alpha1", "kind": "PackageInstall",
                        "metadata": {"name": name, "namespace": SERVICES_NAMESPACE},
                        "spec": {
                            "serviceAccountName": format!("svc-{}-sa", service.split('.').next().unwrap_or(service)),
                            "paused": true,
                            "packageRef": {"refName": service, "versionSelection": {"constraints": version}},
                            "values": [{"secretRef": {"name": format!("{name}-values"), "key": "values.yaml"}}]
                        }
                    });
                    admin
                        .create(gvr::PACKAGE_INSTALLS, ns, pkgi, &WriteOptions::default())
                        .await
                        .map_err(|e| anyhow::anyhow!("creating {name}: {e}"))?
                }
                Err(e) => return Err(anyhow::anyhow!("reading {name}: {e}")),
            };
            let (secret_name, key) = pkgi["spec"]["values"]
                .as_array()
                .and_then(|v| v.iter().find_map(|v| v.get("secretRef")))
                .map(|r| {
                    (
                        r["name"].as_str().unwrap_or_default().to_string(),
                        r["key"].as_str().unwrap_or("values.yaml").to_string(),
                    )
                })
                .unwrap_or_else(|| (format!("{name}-values"), "values.yaml".into()));
            admin
                .patch(
                    gvr::PACKAGE_INSTALLS,
                    ns,
                    &name,
                    &Patch::Merge(json!({"spec": {"paused": true,
                        "packageRef": {"versionSelection": {"constraints": version}}}})),
                    &WriteOptions::default(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("pausing {name}: {e}"))?;
            let secret = json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": SERVICES_NAMESPACE},
                "type": "Opaque",
                "data": {key: base64::engine::general_purpose::STANDARD.encode(config)}
            });
            let written = match admin.get(gvr::SECRETS, ns, &secret_name).await {
                Ok(_) => {
                    admin
                        .update(gvr::SECRETS, ns, secret, &WriteOptions::default())
                        .await
                }
                Err(_) => {
                    admin
                        .create(gvr::SECRETS, ns, secret, &WriteOptions::default())
                        .await
                }
            };
            written.map_err(|e| anyhow::anyhow!("writing Secret {secret_name}: {e}"))?;
            let unpaused = admin
                .patch(
                    gvr::PACKAGE_INSTALLS,
                    ns,
                    &name,
                    &Patch::Merge(json!({"spec": {"paused": null}})),
                    &WriteOptions::default(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("unpausing {name}: {e}"))?;
            let generation = unpaused["metadata"]["generation"].as_i64().unwrap_or(0);
            let mut model = shared.model.lock().expect("model lock");
            if let Some(install) = model.installs.get_mut(service) {
                install.awaiting_generation = Some(generation);
            }
            Ok(())
        }
        Effect::Register {
            service,
            version,
            content,
        } => {
            let Some((mut package, _, _)) = model::package_of(content) else {
                anyhow::bail!("{service} {version}: the content holds no Package");
            };
            let name = format!("{service}.{version}");
            package["metadata"] = json!({"name": name, "namespace": SERVICES_NAMESPACE});
            match admin
                .create(gvr::PACKAGES, ns, package, &WriteOptions::default())
                .await
            {
                Ok(_) => Ok(()),
                // Re-registering does not rebuild an existing Package (LAB1).
                Err(e) if e.reason == "AlreadyExists" => Ok(()),
                Err(e) => Err(anyhow::anyhow!("creating Package {name}: {e}")),
            }
        }
        Effect::Unregister { service, version } => {
            let name = format!("{service}.{version}");
            match admin
                .delete(gvr::PACKAGES, ns, &name, &WriteOptions::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(anyhow::anyhow!("deleting Package {name}: {e}")),
            }
        }
        Effect::Remove { service } => {
            let name = format!("svc-{service}");
            if let Ok(pkgi) = admin.get(gvr::PACKAGE_INSTALLS, ns, &name).await
                && let Some(secret) = pkgi["spec"]["values"]
                    .as_array()
                    .and_then(|v| v.iter().find_map(|v| v["secretRef"]["name"].as_str()))
            {
                let _ = admin
                    .delete(gvr::SECRETS, ns, secret, &WriteOptions::default())
                    .await;
            }
            match admin
                .delete(gvr::PACKAGE_INSTALLS, ns, &name, &WriteOptions::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(anyhow::anyhow!("deleting {name}: {e}")),
            }
        }
    }
}

/// `config_status` follows the PackageInstall: CONFIGURED once it reconciled the awaited generation,
/// ERROR when that reconcile failed; a removed service's record goes once its PackageInstall is gone.
async fn refresh(shared: &Arc<Shared>) {
    let watched: Vec<(String, Option<i64>, &'static str)> = {
        let model = shared.model.lock().expect("model lock");
        model
            .installs
            .iter()
            .filter(|(_, i)| i.config_status != "CONFIGURED" || i.awaiting_generation.is_some())
            .map(|(id, i)| (id.clone(), i.awaiting_generation, i.config_status))
            .collect()
    };
    for (id, awaiting, status) in watched {
        let pkgi = shared
            .admin
            .get(
                gvr::PACKAGE_INSTALLS,
                Some(SERVICES_NAMESPACE),
                &format!("svc-{id}"),
            )
            .await;
        let mut model = shared.model.lock().expect("model lock");
        if status == "REMOVING" {
            if matches!(&pkgi, Err(e) if e.is_not_found()) {
                model.installs.remove(&id);
            }
            continue;
        }
        let (Some(awaiting), Ok(pkgi)) = (awaiting, pkgi) else {
            continue;
        };
        let generation = pkgi["metadata"]["generation"].as_i64().unwrap_or(0);
        let observed = pkgi["status"]["observedGeneration"].as_i64().unwrap_or(-1);
        if generation < awaiting || observed != generation {
            continue;
        }
        let condition = |kind: &str| {
            pkgi["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
        };
        let Some(install) = model.installs.get_mut(&id) else {
            continue;
        };
        if condition("ReconcileSucceeded") {
            install.config_status = "CONFIGURED";
            install.current_version = Some(install.desired_version.clone());
            install.messages = vec![("INFO".into(), RECONCILE_SUCCEEDED.into())];
            install.awaiting_generation = None;
        } else if condition("ReconcileFailed") {
            let message = pkgi["status"]["usefulErrorMessage"]
                .as_str()
                .filter(|m| !m.is_empty())
                .or(pkgi["status"]["friendlyDescription"].as_str())
                .unwrap_or_default();
            install.config_status = "ERROR";
            install.messages = vec![(
                "ERROR".into(),
                format!("Reason: ReconcileFailed. Message: {message}"),
            )];
            install.awaiting_generation = None;
        }
    }
}

fn respond(answer: &Answer) -> Response<Full<Bytes>> {
    let body = answer
        .body
        .as_ref()
        .map(|b| Bytes::from(b.to_string()))
        .unwrap_or_default();
    let mut r = Response::new(Full::new(body));
    *r.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if answer.body.is_some() {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    r
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(String::from);
    let full_path = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let token = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return respond(&model::vapi_error(
                "INVALID_ARGUMENT",
                "vapi.rest.request.body",
                "The request body could not be read.",
                &[],
            ));
        }
    };
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                let answer = model::vapi_error(
                    "INVALID_ARGUMENT",
                    "vapi.rest.request.json",
                    &format!("The request body is not JSON: {e}"),
                    &[],
                );
                record(shared, &method, &full_path, None, answer.status, false);
                return respond(&answer);
            }
        }
    };

    // Triggers fire before anything else.
    let fired = {
        let mut triggers = shared.triggers.lock().expect("triggers lock");
        let mut fired = None;
        for t in triggers.iter_mut() {
            if t.times == 0 || t.method != method || !full_path.contains(&t.path) {
                continue;
            }
            if t.skip > 0 {
                t.skip -= 1;
                continue;
            }
            t.times -= 1;
            fired = Some(t.action.clone());
            break;
        }
        fired
    };
    match fired {
        Some(Action::ExpireSessions) => shared.sessions.lock().expect("sessions lock").clear(),
        Some(Action::EditConfig { service, yaml }) => {
            if let Err(e) = edit_config(shared, &service, &yaml).await {
                tracing::warn!("vcenter trigger: {e:#}");
            }
        }
        Some(Action::Fail {
            status,
            error_type,
            message,
        }) => {
            let mut answer = model::vapi_error(&error_type, "vcenter.sim.injected", &message, &[]);
            answer.status = status;
            let authenticated = token
                .as_ref()
                .is_some_and(|t| shared.sessions.lock().expect("sessions lock").contains(t));
            record(
                shared,
                &method,
                &full_path,
                json_body,
                answer.status,
                authenticated,
            );
            return respond(&answer);
        }
        None => {}
    }

    if method == "POST" && path == "/api/session" {
        let answer = login(shared, authorization.as_deref());
        record(shared, &method, &full_path, None, answer.status, false);
        return respond(&answer);
    }
    let authenticated = token
        .as_ref()
        .is_some_and(|t| shared.sessions.lock().expect("sessions lock").contains(t));
    if !authenticated {
        let answer = model::unauthenticated();
        record(shared, &method, &full_path, json_body, answer.status, false);
        return respond(&answer);
    }
    let answer = route(
        shared,
        &method,
        &path,
        query.as_deref(),
        json_body.as_ref(),
        token.as_deref(),
    )
    .await;
    record(shared, &method, &full_path, json_body, answer.status, true);
    respond(&answer)
}

fn record(
    shared: &Shared,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
    authenticated: bool,
) {
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(Recorded {
            method: method.to_string(),
            path: path.to_string(),
            body,
            status,
            authenticated,
        });
}

fn login(shared: &Shared, authorization: Option<&str>) -> Answer {
    let credentials = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{}:{}", shared.options.username, shared.options.password);
    if credentials.as_deref() != Some(expected.as_str()) {
        return model::unauthenticated();
    }
    let token: [u8; 16] = rand::random();
    let token = hex::encode(token);
    shared
        .sessions
        .lock()
        .expect("sessions lock")
        .insert(token.clone());
    Answer {
        status: 201,
        body: Some(json!(token)),
    }
}

async fn route(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: Option<&Value>,
    token: Option<&str>,
) -> Answer {
    let release = shared.options.release;
    match (method, path) {
        ("DELETE", "/api/session") => {
            if let Some(t) = token {
                shared.sessions.lock().expect("sessions lock").remove(t);
            }
            return Answer::no_content();
        }
        ("GET", "/api/session") => {
            return Answer::ok(
                json!({"user": shared.options.username, "created_time": jiff::Timestamp::now().to_string(), "last_accessed_time": jiff::Timestamp::now().to_string()}),
            );
        }
        ("GET", "/api/appliance/system/version") => {
            return Answer::ok(json!({
                "version": release.version_string(),
                "product": "VMware vCenter Server",
                "build": "24322831",
                "type": "vCenter Server with an embedded Platform Services Controller",
                "summary": format!("vCenter Server {}.{}.{} (simulated)", release.major, release.minor, release.patch),
                "releasedate": "2024-06-25",
                "install_time": "2026-01-01T00:00:00.000Z"
            }));
        }
        _ => {}
    }
    if let ("GET", Some(task)) = (method, path.strip_prefix("/api/cis/tasks/")) {
        let model = shared.model.lock().expect("model lock");
        return model.task(&percent_decode(task));
    }
    let Some(rest) = path.strip_prefix("/api/vcenter/namespace-management/") else {
        return model::no_route(path);
    };
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let endpoint = &shared.options.endpoint;
    match (method, seg.as_slice()) {
        ("GET", ["supervisors", "summaries"]) if release >= Release::new(8, 0, 0) => {
            let mut info = json!({"name": "supervisor-1", "config_status": "RUNNING", "kubernetes_status": "READY", "stats": {}});
            if release >= Release::V9_1_0 {
                info["APIEndpoint"] = json!(endpoint);
            }
            let mut items = vec![json!({"supervisor": shared.options.supervisor, "info": info})];
            let model = shared.model.lock().expect("model lock");
            items.extend(model.others.iter().map(|o| {
                let mut info = json!({"name": o.name, "config_status": "RUNNING", "kubernetes_status": "READY", "stats": {}});
                if release >= Release::V9_1_0 {
                    info["APIEndpoint"] = json!(o.endpoint);
                }
                json!({"supervisor": o.supervisor, "info": info})
            }));
            return Answer::ok(json!({ "items": items }));
        }
        ("GET", ["clusters", c]) => {
            let other = {
                let model = shared.model.lock().expect("model lock");
                model
                    .others
                    .iter()
                    .find(|o| o.cluster == *c)
                    .map(|o| o.endpoint.clone())
            };
            if let Some(endpoint) = other {
                return Answer::ok(json!({
                    "config_status": "RUNNING", "kubernetes_status": "READY",
                    "api_server_cluster_endpoint": endpoint,
                    "api_server_management_endpoint": endpoint,
                    "api_servers": [endpoint],
                }));
            }
            if *c != shared.cluster {
                return model::vapi_error(
                    "NOT_FOUND",
                    "vcenter.wcp.cluster.notfound",
                    &format!("Cluster {c} could not be found."),
                    &[c],
                );
            }
            return Answer::ok(json!({
                "config_status": "RUNNING", "kubernetes_status": "READY",
                "api_server_cluster_endpoint": endpoint,
                "api_server_management_endpoint": "10.0.0.10",
                "api_servers": [endpoint],
            }));
        }
        _ => {}
    }
    refresh(shared).await;
    let action = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "action")
            .map(|(_, v)| v.into_owned())
    });
    let request = model::Request {
        method,
        segments,
        action,
        body,
    };
    let (answer, effects) = {
        let mut model = shared.model.lock().expect("model lock");
        model.handle(
            release,
            &shared.cluster,
            &shared.options.supervisor,
            &request,
        )
    };
    for effect in effects {
        if let Err(e) = apply(shared, &effect).await {
            tracing::warn!("vcenter: applying {effect:?}: {e:#}");
            let service = match &effect {
                Effect::Apply { service, .. }
                | Effect::Remove { service }
                | Effect::Register { service, .. }
                | Effect::Unregister { service, .. } => service.clone(),
            };
            let mut model = shared.model.lock().expect("model lock");
            if let Some(i) = model.installs.get_mut(&service) {
                i.config_status = "ERROR";
                i.messages = vec![("ERROR".into(), format!("{e:#}"))];
            }
        }
    }
    answer
}

/// The stored config of a record decoded (for tests and the audit): `yaml_service_config` of a body.
pub fn decode_config(body: &Value) -> Option<String> {
    body["yaml_service_config"].as_str().and_then(unb64)
}
