//! vCenter's state for Supervisor Services and its rules: the catalog (services and versions with
//! `ACTIVATED`/`DEACTIVATED` states), the install records of one Supervisor (cluster form for 7.0.3 and
//! 8.x, Supervisor form for 9.x), and the vAPI error bodies vCenter answers with.
//!
//! Routes and fields: the vSphere Automation API (`/api` flavour) as the notes record it from the 9.1
//! bindings (`vmware-vcenter` 9.1.1.0, `supervisor_services_client.py`, `supervisors_client.py`) and the
//! 7.0.3 Swagger; where no source settled a detail (error message ids of these operations), the ids
//! here are written in vCenter's style and say so.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A version of vCenter as `GET /api/appliance/system/version` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Release {
    pub const V7_0_3: Release = Release::new(7, 0, 3);
    pub const V8_0_3: Release = Release::new(8, 0, 3);
    pub const V9_0_0: Release = Release::new(9, 0, 0);
    pub const V9_1_0: Release = Release::new(9, 1, 0);

    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Release {
            major,
            minor,
            patch,
        }
    }

    /// `7.0.3`, `8.0.3` or `9.1.0`, with or without a build suffix.
    pub fn parse(text: &str) -> Option<Release> {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        Some(Release::new(
            parts.next()??,
            parts.next()??,
            parts.next().flatten().unwrap_or(0),
        ))
    }

    /// The `version` field: vCenter reports a fourth, five-digit update number (`8.0.3.00400`).
    pub fn version_string(self) -> String {
        format!("{}.{}.{}.00400", self.major, self.minor, self.patch)
    }

    /// `yaml_service_config` exists from API 8.0.0.1.
    pub fn yaml_config(self) -> bool {
        self >= Release::new(8, 0, 0)
    }

    /// The `/supervisors/{s}/supervisor-services` routes exist from 9.0.0.0.
    pub fn supervisor_routes(self) -> bool {
        self >= Release::V9_0_0
    }

    /// `must_be_installed` and the precheck from 8.0.3.0.
    pub fn v803(self) -> bool {
        self >= Release::V8_0_3
    }
}

/// `ACTIVATED` or `DEACTIVATED`.
pub fn state_name(activated: bool) -> &'static str {
    if activated {
        "ACTIVATED"
    } else {
        "DEACTIVATED"
    }
}

/// One version of a catalog service.
#[derive(Clone, Debug)]
pub struct CatalogVersion {
    pub display_name: String,
    pub activated: bool,
    /// Base64 of the registered YAML.
    pub content: String,
    pub registered_by_default: bool,
}

/// A service of the catalog.
#[derive(Clone, Debug)]
pub struct CatalogService {
    pub display_name: String,
    pub description: String,
    pub activated: bool,
    /// A Core service (e.g. `tkg.vsphere.vmware.com`): 403 to activate/deactivate/delete.
    pub must_be_installed: bool,
    pub versions: BTreeMap<String, CatalogVersion>,
}

/// A service on the Supervisor (the install record).
#[derive(Clone, Debug)]
pub struct Install {
    pub desired_version: String,
    pub current_version: Option<String>,
    /// `CONFIGURING`, `REMOVING`, `CONFIGURED` or `ERROR`.
    pub config_status: &'static str,
    /// `(severity, message)`.
    pub messages: Vec<(String, String)>,
    pub service_namespace: String,
    /// The stored config, YAML text (vCenter's copy, platform keys included).
    pub config: String,
    /// The PackageInstall's generation the last write must be reconciled at, once written.
    pub awaiting_generation: Option<i64>,
}

/// A Supervisor of the same vCenter other than the simulated one: known only to vCenter (no
/// simulated API server behind it), so its install records change state in vCenter alone.
#[derive(Clone, Debug)]
pub struct OtherSupervisor {
    /// The Supervisor ID (9.x routes, `supervisors/summaries`).
    pub supervisor: String,
    /// The vSphere cluster MoID (7.0.3/8.x routes, `clusters`).
    pub cluster: String,
    /// Its name (`summaries` `info.name`, `clusters` `cluster_name`).
    pub name: String,
    /// Its API endpoint (host), as `clusters/{c}` and 9.1's `summaries` report it.
    pub endpoint: String,
    /// How many reads of its install records (list or get) a record answers `REMOVING` after a
    /// `DELETE`, before it is gone.
    pub removing_reads: u32,
    /// Its install records by service ID.
    pub installs: BTreeMap<String, OtherInstall>,
}

impl OtherSupervisor {
    /// A Supervisor `name` with IDs `supervisor`/`cluster`, the given services installed and
    /// CONFIGURED at `(service, version)`, and two reads of `REMOVING` after an uninstall.
    pub fn new(name: &str, supervisor: &str, cluster: &str, installed: &[(&str, &str)]) -> Self {
        OtherSupervisor {
            supervisor: supervisor.to_string(),
            cluster: cluster.to_string(),
            name: name.to_string(),
            endpoint: format!("{name}.example.com"),
            removing_reads: 2,
            installs: installed
                .iter()
                .map(|(id, v)| {
                    (
                        id.to_string(),
                        OtherInstall {
                            desired_version: v.to_string(),
                            current_version: Some(v.to_string()),
                            config_status: "CONFIGURED",
                            reads_left: 0,
                        },
                    )
                })
                .collect(),
        }
    }

    /// A read of its install records: a `REMOVING` record whose reads ran out is gone, the others
    /// count one read down.
    fn read(&mut self) {
        self.installs.retain(|_, i| {
            if i.config_status != "REMOVING" {
                return true;
            }
            if i.reads_left == 0 {
                return false;
            }
            i.reads_left -= 1;
            true
        });
    }
}

/// A service on an [`OtherSupervisor`] (its install record, vCenter's side only).
#[derive(Clone, Debug)]
pub struct OtherInstall {
    pub desired_version: String,
    pub current_version: Option<String>,
    /// `CONFIGURED` or `REMOVING` (nothing reconciles there: an install is CONFIGURED at once).
    pub config_status: &'static str,
    /// Reads left answering `REMOVING`.
    pub reads_left: u32,
}

/// The whole state.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub services: BTreeMap<String, CatalogService>,
    pub installs: BTreeMap<String, Install>,
    /// The other Supervisors of this vCenter ([`OtherSupervisor`]).
    pub others: Vec<OtherSupervisor>,
    /// Precheck results by `(service, target version)` (`GET …/versions/{v}/precheck`).
    pub prechecks: BTreeMap<(String, String), Value>,
    /// Tasks by id (`GET /api/cis/tasks/{task}`): `{status, ...}`.
    pub tasks: BTreeMap<String, Value>,
    /// Versions this Supervisor cannot take, by `(service, version)`: the INCOMPATIBLE message of the
    /// compatibility precheck (an upgrade PUT to one answers 500, LAB1).
    pub incompatible: BTreeMap<(String, String), String>,
}

/// An HTTP answer: status and JSON body (`None`: no body, e.g. 204).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body: Some(body),
        }
    }

    pub fn no_content() -> Answer {
        Answer {
            status: 204,
            body: None,
        }
    }
}

/// A vAPI error: `{"error_type": ..., "messages": [{"args", "default_message", "id"}]}` with the status
/// the operations document for it (400 NotAllowedInCurrentState/InvalidArgument/AlreadyExists, 401
/// Unauthenticated, 403 Unauthorized, 404 NotFound, 500 Error).
pub fn vapi_error(error_type: &str, id: &str, message: &str, args: &[&str]) -> Answer {
    let status = match error_type {
        "UNAUTHENTICATED" => 401,
        "UNAUTHORIZED" => 403,
        "NOT_FOUND" => 404,
        "ERROR" | "INTERNAL_SERVER_ERROR" => 500,
        "SERVICE_UNAVAILABLE" => 503,
        _ => 400,
    };
    Answer {
        status,
        body: Some(json!({
            "error_type": error_type,
            "messages": [{"args": args, "default_message": message, "id": id}],
        })),
    }
}

/// 401 for a request without a valid session.
pub fn unauthenticated() -> Answer {
    vapi_error(
        "UNAUTHENTICATED",
        "com.vmware.vapi.endpoint.method.authentication.required",
        "Authentication required.",
        &[],
    )
}

fn service_not_found(id: &str) -> Answer {
    vapi_error(
        "NOT_FOUND",
        "vcenter.wcp.appplatform.supervisorservice.notfound",
        &format!("Supervisor Service {id} could not be found."),
        &[id],
    )
}

fn version_not_found(id: &str, version: &str) -> Answer {
    vapi_error(
        "NOT_FOUND",
        "vcenter.wcp.appplatform.supervisorservice.version.notfound",
        &format!("Supervisor Service {id} version {version} could not be found."),
        &[id, version],
    )
}

fn not_installed(id: &str, target: &str) -> Answer {
    vapi_error(
        "NOT_FOUND",
        "vcenter.wcp.appplatform.supervisorservice.cluster.notfound",
        &format!("Supervisor Service {id} is not installed on {target}."),
        &[id, target],
    )
}

/// The 403 a Core service answers (LAB1's wording).
fn core_service() -> Answer {
    vapi_error(
        "UNAUTHORIZED",
        "vcenter.wcp.appplatform.supervisorservice.core.unauthorized",
        "Core services are managed by vCenter, it's not allowed to create, activate, deactivate, delete or update display name / description of a Core service.",
        &[],
    )
}

/// A route that does not exist on this release (or at all).
pub fn no_route(path: &str) -> Answer {
    vapi_error(
        "NOT_FOUND",
        "com.vmware.vapi.rest.httpNotFound",
        &format!("Not found: {path}"),
        &[path],
    )
}

/// What a request asks the Supervisor side to do after the model changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Write the values Secret from vCenter's copy and point the PackageInstall at the version.
    Apply {
        service: String,
        version: String,
        config: String,
    },
    /// Remove the PackageInstall and its values Secret.
    Remove { service: String },
    /// Build the Supervisor's `Package` of a registered version from its content (YAML text), unless
    /// one exists: re-registering does not rebuild it (LAB1).
    Register {
        service: String,
        version: String,
        content: String,
    },
    /// Delete the `Package` of an unregistered version.
    Unregister { service: String, version: String },
}

/// A parsed request.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path segments after `/api/vcenter/namespace-management/`, percent-decoded.
    pub segments: Vec<String>,
    /// `?action=...`.
    pub action: Option<String>,
    pub body: Option<&'a Value>,
}

impl Model {
    /// Answers a `namespace-management` request. `target` is the cluster MoID or Supervisor ID this
    /// vCenter knows; `release` decides which routes and fields exist.
    pub fn handle(
        &mut self,
        release: Release,
        cluster: &str,
        supervisor: &str,
        req: &Request<'_>,
    ) -> (Answer, Vec<Effect>) {
        let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let none = Vec::new;
        match (req.method, seg.as_slice()) {
            ("GET", ["supervisor-services"]) => (self.list_services(), none()),
            ("POST", ["supervisor-services"]) if req.action.as_deref() == Some("checkContent") => {
                (check_content(release, req.body), none())
            }
            ("POST", ["supervisor-services"]) if req.action.is_none() => {
                self.create_service(release, req.body)
            }
            ("POST", ["supervisor-services", id, "versions"]) => {
                self.register_version(release, id, req.body)
            }
            ("DELETE", ["supervisor-services", id, "versions", v]) => self.delete_version(id, v),
            ("DELETE", ["supervisor-services", id]) => (self.delete_service(id), none()),
            ("GET", ["supervisor-services", id]) => (self.get_service(release, id), none()),
            ("PATCH", ["supervisor-services", id]) => {
                (self.set_service_state(id, req.action.as_deref()), none())
            }
            ("GET", ["supervisor-services", id, "versions"]) => (self.list_versions(id), none()),
            ("GET", ["supervisor-services", id, "versions", v]) => {
                (self.get_version(release, id, v), none())
            }
            ("PATCH", ["supervisor-services", id, "versions", v]) => {
                (self.set_version_state(id, v, req.action.as_deref()), none())
            }
            ("GET", ["clusters"]) => {
                let mut clusters = vec![json!({
                    "cluster": cluster, "cluster_name": "cluster-1",
                    "config_status": "RUNNING", "kubernetes_status": "READY"
                })];
                clusters.extend(self.others.iter().map(|o| {
                    json!({
                        "cluster": o.cluster, "cluster_name": o.name,
                        "config_status": "RUNNING", "kubernetes_status": "READY"
                    })
                }));
                (Answer::ok(Value::Array(clusters)), none())
            }
            ("GET", ["supervisors", "summaries"]) if release >= Release::new(8, 0, 0) => {
                (Answer::ok(json!(null)), none()) // filled in by the server: needs the endpoint
            }
            (_, ["clusters", c, "supervisor-services", rest @ ..]) => {
                if let Some(i) = self.others.iter().position(|o| o.cluster == *c) {
                    return self.other_installs_route(i, release, false, c, rest, req);
                }
                if *c != cluster {
                    return (
                        vapi_error(
                            "NOT_FOUND",
                            "vcenter.wcp.cluster.notfound",
                            &format!("Cluster {c} could not be found."),
                            &[c],
                        ),
                        none(),
                    );
                }
                self.installs_route(release, false, c, rest, req)
            }
            (_, ["supervisors", s, "supervisor-services", rest @ ..])
                if release.supervisor_routes() =>
            {
                if let Some(i) = self.others.iter().position(|o| o.supervisor == *s) {
                    return self.other_installs_route(i, release, true, s, rest, req);
                }
                if *s != supervisor {
                    return (
                        vapi_error(
                            "NOT_FOUND",
                            "vcenter.wcp.supervisor.notfound",
                            &format!("Supervisor {s} could not be found."),
                            &[s],
                        ),
                        none(),
                    );
                }
                self.installs_route(release, true, s, rest, req)
            }
            _ => (
                no_route(&format!(
                    "/api/vcenter/namespace-management/{}",
                    req.segments.join("/")
                )),
                none(),
            ),
        }
    }

    fn list_services(&self) -> Answer {
        Answer::ok(Value::Array(
            self.services
                .iter()
                .map(|(id, s)| {
                    json!({"supervisor_service": id, "display_name": s.display_name, "state": state_name(s.activated)})
                })
                .collect(),
        ))
    }

    fn get_service(&self, release: Release, id: &str) -> Answer {
        let Some(s) = self.services.get(id) else {
            return service_not_found(id);
        };
        let mut info = json!({
            "display_name": s.display_name,
            "state": state_name(s.activated),
            "description": s.description,
        });
        if release.v803() {
            info["must_be_installed"] = json!(s.must_be_installed);
            info["has_default_versions_registered"] =
                json!(s.versions.values().any(|v| v.registered_by_default));
        }
        Answer::ok(info)
    }

    fn set_service_state(&mut self, id: &str, action: Option<&str>) -> Answer {
        let Some(s) = self.services.get_mut(id) else {
            return service_not_found(id);
        };
        let activate = match action {
            Some("activate") => true,
            Some("deactivate") => false,
            _ => {
                return vapi_error(
                    "INVALID_ARGUMENT",
                    "vapi.bindings.method.invalid.action",
                    "expected ?action=activate or ?action=deactivate",
                    &[],
                );
            }
        };
        if s.must_be_installed {
            return core_service();
        }
        if s.activated == activate {
            return vapi_error(
                "NOT_ALLOWED_IN_CURRENT_STATE",
                "vcenter.wcp.appplatform.supervisorservice.state",
                &format!(
                    "Supervisor Service {id} is already in state {}.",
                    state_name(activate)
                ),
                &[id],
            );
        }
        s.activated = activate;
        Answer::no_content()
    }

    fn list_versions(&self, id: &str) -> Answer {
        let Some(s) = self.services.get(id) else {
            return service_not_found(id);
        };
        Answer::ok(Value::Array(
            s.versions
                .iter()
                .map(|(v, info)| {
                    json!({"version": v, "display_name": info.display_name, "state": state_name(info.activated)})
                })
                .collect(),
        ))
    }

    fn get_version(&self, release: Release, id: &str, version: &str) -> Answer {
        let Some(s) = self.services.get(id) else {
            return service_not_found(id);
        };
        let Some(v) = s.versions.get(version) else {
            return version_not_found(id, version);
        };
        let mut info = json!({
            "display_name": v.display_name,
            "content_type": if release.yaml_config() { "CARVEL_APPS_YAML" } else { "VSPHERE_APPS_YAML" },
            "content": v.content,
            "trust_verified": true,
            "state": state_name(v.activated),
        });
        if release.v803() {
            info["registered_by_default"] = json!(v.registered_by_default);
        }
        Answer::ok(info)
    }

    fn set_version_state(&mut self, id: &str, version: &str, action: Option<&str>) -> Answer {
        let Some(s) = self.services.get_mut(id) else {
            return service_not_found(id);
        };
        let core = s.must_be_installed;
        let service_activated = s.activated;
        let activated_count = s.versions.values().filter(|v| v.activated).count();
        let Some(v) = s.versions.get_mut(version) else {
            return version_not_found(id, version);
        };
        let activate = match action {
            Some("activate") => true,
            Some("deactivate") => false,
            _ => {
                return vapi_error(
                    "INVALID_ARGUMENT",
                    "vapi.bindings.method.invalid.action",
                    "expected ?action=activate or ?action=deactivate",
                    &[],
                );
            }
        };
        if core && v.registered_by_default {
            return core_service();
        }
        if v.activated == activate {
            return vapi_error(
                "NOT_ALLOWED_IN_CURRENT_STATE",
                "vcenter.wcp.appplatform.supervisorservice.version.state",
                &format!(
                    "Supervisor Service {id} version {version} is already in state {}.",
                    state_name(activate)
                ),
                &[id, version],
            );
        }
        if !activate && service_activated && activated_count == 1 {
            return vapi_error(
                "NOT_ALLOWED_IN_CURRENT_STATE",
                "vcenter.wcp.appplatform.supervisorservice.version.last",
                &format!(
                    "Cannot deactivate the last activated version {version} of the activated Supervisor Service {id}."
                ),
                &[id, version],
            );
        }
        v.activated = activate;
        Answer::no_content()
    }

    /// `POST /supervisor-services/{id}/versions` `{"carvel_spec": {"content": b64}}`: registers a
    /// version (400 ALREADY_EXISTS; 400 when the service is DEACTIVATED) and builds its Package.
    fn register_version(
        &mut self,
        release: Release,
        id: &str,
        body: Option<&Value>,
    ) -> (Answer, Vec<Effect>) {
        let none = Vec::new;
        let Some(service) = self.services.get(id) else {
            return (service_not_found(id), none());
        };
        if !service.activated {
            return (
                vapi_error(
                    "NOT_ALLOWED_IN_CURRENT_STATE",
                    "vcenter.wcp.appplatform.supervisorservice.deactivated",
                    &format!("Supervisor Service {id} is DEACTIVATED."),
                    &[id],
                ),
                none(),
            );
        }
        let (content, text, ref_name, version) =
            match carvel_definition(release, body, "/carvel_spec/content") {
                Ok(definition) => definition,
                Err(answer) => return (answer, none()),
            };
        if ref_name != id {
            return (
                vapi_error(
                    "INVALID_ARGUMENT",
                    "vcenter.wcp.appplatform.supervisorservice.content.mismatch",
                    &format!("The content defines Supervisor Service {ref_name}, not {id}."),
                    &[id, &ref_name],
                ),
                none(),
            );
        }
        if service.versions.contains_key(&version) {
            return (
                vapi_error(
                    "ALREADY_EXISTS",
                    "vcenter.wcp.appplatform.supervisorservice.version.exists",
                    &format!("Supervisor Service {id} version {version} already exists."),
                    &[id, &version],
                ),
                none(),
            );
        }
        if let Some(s) = self.services.get_mut(id) {
            s.versions.insert(
                version.clone(),
                CatalogVersion {
                    display_name: format!("{id} {version}"),
                    activated: true,
                    content: content.to_string(),
                    registered_by_default: false,
                },
            );
        }
        (
            Answer::no_content(),
            vec![Effect::Register {
                service: id.to_string(),
                version,
                content: text,
            }],
        )
    }

    /// `POST /supervisor-services` `{"carvel_spec": {"version_spec": {"content": b64}}}`: registers a
    /// new service and its first version from a Carvel definition (PackageMetadata + Package; the
    /// service ID is the Package's `spec.refName`, its name the PackageMetadata's `displayName`),
    /// both ACTIVATED, and builds the version's Package (201; 400 ALREADY_EXISTS, or INVALID_ARGUMENT
    /// for content that is not a Carvel definition or before 8.0.0.1).
    fn create_service(&mut self, release: Release, body: Option<&Value>) -> (Answer, Vec<Effect>) {
        let none = Vec::new;
        let (content, text, id, version) =
            match carvel_definition(release, body, "/carvel_spec/version_spec/content") {
                Ok(definition) => definition,
                Err(answer) => return (answer, none()),
            };
        if self.services.contains_key(&id) {
            return (
                vapi_error(
                    "ALREADY_EXISTS",
                    "vcenter.wcp.appplatform.supervisorservice.exists",
                    &format!("Supervisor Service {id} already exists."),
                    &[&id],
                ),
                none(),
            );
        }
        let metadata = serde_saphyr::from_multiple::<Value>(&text)
            .ok()
            .and_then(|docs| docs.into_iter().find(|d| d["kind"] == "PackageMetadata"));
        let field = |k: &str| {
            metadata
                .as_ref()
                .and_then(|m| m["spec"][k].as_str())
                .map(str::to_owned)
        };
        self.services.insert(
            id.clone(),
            CatalogService {
                display_name: field("displayName").unwrap_or_else(|| id.clone()),
                description: field("shortDescription").unwrap_or_default(),
                activated: true,
                must_be_installed: false,
                versions: BTreeMap::from([(
                    version.clone(),
                    CatalogVersion {
                        display_name: format!("{id} {version}"),
                        activated: true,
                        content: content.to_string(),
                        registered_by_default: false,
                    },
                )]),
            },
        );
        (
            Answer {
                status: 201,
                body: Some(json!(id)),
            },
            vec![Effect::Register {
                service: id,
                version,
                content: text,
            }],
        )
    }

    /// `DELETE …/versions/{v}`: only a DEACTIVATED version installed nowhere.
    fn delete_version(&mut self, id: &str, version: &str) -> (Answer, Vec<Effect>) {
        let none = Vec::new;
        // Installed on this Supervisor or any other one (a REMOVING record still counts).
        let installed = self.installs.get(id).is_some_and(|i| {
            i.desired_version == version || i.current_version.as_deref() == Some(version)
        }) || self.others.iter().any(|o| {
            o.installs.get(id).is_some_and(|i| {
                i.desired_version == version || i.current_version.as_deref() == Some(version)
            })
        });
        let Some(s) = self.services.get_mut(id) else {
            return (service_not_found(id), none());
        };
        if s.must_be_installed {
            return (core_service(), none());
        }
        let Some(v) = s.versions.get(version) else {
            return (version_not_found(id, version), none());
        };
        if v.activated || installed {
            return (
                vapi_error(
                    "NOT_ALLOWED_IN_CURRENT_STATE",
                    "vcenter.wcp.appplatform.supervisorservice.version.delete",
                    &format!(
                        "Supervisor Service {id} version {version} must be DEACTIVATED and installed on no Supervisor to be deleted."
                    ),
                    &[id, version],
                ),
                none(),
            );
        }
        s.versions.remove(version);
        (
            Answer::no_content(),
            vec![Effect::Unregister {
                service: id.to_string(),
                version: version.to_string(),
            }],
        )
    }

    /// `DELETE /supervisor-services/{id}`: only a DEACTIVATED service without versions.
    fn delete_service(&mut self, id: &str) -> Answer {
        let Some(s) = self.services.get(id) else {
            return service_not_found(id);
        };
        if s.must_be_installed {
            return core_service();
        }
        if s.activated || !s.versions.is_empty() {
            return vapi_error(
                "NOT_ALLOWED_IN_CURRENT_STATE",
                "vcenter.wcp.appplatform.supervisorservice.delete",
                &format!(
                    "Supervisor Service {id} must be DEACTIVATED and have no versions to be deleted."
                ),
                &[id],
            );
        }
        self.services.remove(id);
        Answer::no_content()
    }

    /// `POST …/supervisors/{s}/supervisor-services/{id}?action=precheck` `{"target_version"}`: runs
    /// the compatibility check as a task (answered with its id, a JSON string); the result is then at
    /// `GET …/{id}/versions/{v}/precheck` (8.0.3.0).
    fn precheck(&mut self, id: &str, target: &str, body: Option<&Value>) -> Answer {
        let Some(version) = body.and_then(|b| b["target_version"].as_str()) else {
            return vapi_error(
                "INVALID_ARGUMENT",
                "vapi.bindings.typeconverter.missing.field",
                "target_version is required.",
                &["target_version"],
            );
        };
        let Some(install) = self.installs.get(id) else {
            return not_installed(id, target);
        };
        let original = install.current_version.clone();
        if self
            .services
            .get(id)
            .and_then(|s| s.versions.get(version))
            .is_none()
        {
            return match self.services.get(id) {
                None => service_not_found(id),
                Some(_) => version_not_found(id, version),
            };
        }
        let incompatible = self
            .incompatible
            .get(&(id.to_string(), version.to_string()));
        let now = jiff::Timestamp::now().to_string();
        let mut result = json!({
            "target_version": version,
            "status": if incompatible.is_some() { "INCOMPATIBLE" } else { "COMPATIBLE" },
            "precheck_finish_time": now,
        });
        if let Some(o) = original {
            result["original_version"] = json!(o);
        }
        if let Some(why) = incompatible {
            result["status_messages"] = json!([{
                "severity": "ERROR",
                "details": {"id": "vcenter.wcp.appplatform.supervisorservice.precheck.incompatible", "default_message": why, "args": []}
            }]);
        }
        self.prechecks
            .insert((id.to_string(), version.to_string()), result);
        let task = format!("task-{}", self.tasks.len() + 1);
        self.tasks.insert(
            task.clone(),
            json!({"status": "SUCCEEDED", "operation": "precheck", "start_time": now, "end_time": now}),
        );
        Answer::ok(json!(format!(
            "{task}:com.vmware.vcenter.namespace_management.supervisors.supervisor_services"
        )))
    }

    /// `GET /api/cis/tasks/{task}`.
    pub fn task(&self, task: &str) -> Answer {
        let id = task.split(':').next().unwrap_or(task);
        match self.tasks.get(id) {
            Some(t) => Answer::ok(t.clone()),
            None => vapi_error(
                "NOT_FOUND",
                "com.vmware.cis.tasks.notfound",
                &format!("Task {task} could not be found."),
                &[task],
            ),
        }
    }

    fn installs_route(
        &mut self,
        release: Release,
        wrapped: bool,
        target: &str,
        rest: &[&str],
        req: &Request<'_>,
    ) -> (Answer, Vec<Effect>) {
        let none = Vec::new;
        match (req.method, rest) {
            ("GET", []) => {
                let items: Vec<Value> = self
                    .installs
                    .iter()
                    .map(|(id, i)| {
                        let mut s = json!({"supervisor_service": id, "desired_version": i.desired_version, "config_status": i.config_status});
                        if let Some(c) = &i.current_version {
                            s["current_version"] = json!(c);
                        }
                        s
                    })
                    .collect();
                let body = if wrapped {
                    json!({"supervisor_services": items})
                } else {
                    Value::Array(items)
                };
                (Answer::ok(body), none())
            }
            ("GET", [id]) => (self.get_install(release, wrapped, target, id), none()),
            ("POST", [id])
                if wrapped && release.v803() && req.action.as_deref() == Some("precheck") =>
            {
                (self.precheck(id, target, req.body), none())
            }
            ("GET", [id, "versions", v, "precheck"]) if wrapped && release.v803() => {
                match self.prechecks.get(&(id.to_string(), v.to_string())) {
                    Some(result) => (Answer::ok(result.clone()), none()),
                    None => (
                        vapi_error(
                            "NOT_FOUND",
                            "vcenter.wcp.appplatform.supervisorservice.precheck.notfound",
                            &format!(
                                "No precheck result of Supervisor Service {id} version {v}: run the precheck first."
                            ),
                            &[id, v],
                        ),
                        none(),
                    ),
                }
            }
            ("POST", []) => self.create_install(release, wrapped, req.body),
            ("PUT", [id]) => self.set_install(release, wrapped, target, id, req.body),
            ("DELETE", [id]) => match self.installs.get_mut(*id) {
                None => (not_installed(id, target), none()),
                Some(i) => {
                    i.config_status = "REMOVING";
                    i.awaiting_generation = None;
                    (
                        Answer::no_content(),
                        vec![Effect::Remove {
                            service: id.to_string(),
                        }],
                    )
                }
            },
            _ => (
                no_route(&format!(
                    "/api/vcenter/namespace-management/{}",
                    req.segments.join("/")
                )),
                none(),
            ),
        }
    }

    /// The install routes of an [`OtherSupervisor`]: list, get, install (CONFIGURED at once: nothing
    /// reconciles there), set, and uninstall (`REMOVING` for its `removing_reads` reads, then gone).
    /// Every request reads its records first, so a `REMOVING` one counts down.
    fn other_installs_route(
        &mut self,
        index: usize,
        release: Release,
        wrapped: bool,
        target: &str,
        rest: &[&str],
        req: &Request<'_>,
    ) -> (Answer, Vec<Effect>) {
        let none = Vec::new;
        self.others[index].read();
        let summary = |id: &str, i: &OtherInstall| {
            let mut s = json!({"supervisor_service": id, "desired_version": i.desired_version, "config_status": i.config_status});
            if let Some(c) = &i.current_version {
                s["current_version"] = json!(c);
            }
            s
        };
        match (req.method, rest) {
            ("GET", []) => {
                let items: Vec<Value> = self.others[index]
                    .installs
                    .iter()
                    .map(|(id, i)| summary(id, i))
                    .collect();
                let body = if wrapped {
                    json!({"supervisor_services": items})
                } else {
                    Value::Array(items)
                };
                (Answer::ok(body), none())
            }
            ("GET", [id]) => match self.others[index].installs.get(*id) {
                None => (not_installed(id, target), none()),
                Some(i) => {
                    let mut info = summary(id, i);
                    if let Some(o) = info.as_object_mut() {
                        o.remove("supervisor_service");
                    }
                    info["messages"] = json!([]);
                    info["display_name"] = json!(
                        self.services
                            .get(*id)
                            .map(|s| s.display_name.clone())
                            .unwrap_or_else(|| id.to_string())
                    );
                    (Answer::ok(info), none())
                }
            },
            ("POST", []) => {
                let Some(body) = req.body else {
                    return (missing_body(), none());
                };
                let (Some(id), Some(version)) = (
                    body["supervisor_service"].as_str(),
                    body["version"].as_str(),
                ) else {
                    return (
                        vapi_error(
                            "INVALID_ARGUMENT",
                            "vapi.bindings.typeconverter.missing.field",
                            "supervisor_service and version are required.",
                            &[],
                        ),
                        none(),
                    );
                };
                if let Err(e) = self.version_usable(id, version) {
                    return (e, none());
                }
                if self.services.get(id).is_some_and(|s| !s.activated) {
                    return (
                        vapi_error(
                            "NOT_ALLOWED_IN_CURRENT_STATE",
                            "vcenter.wcp.appplatform.supervisorservice.deactivated",
                            &format!("Supervisor Service {id} is DEACTIVATED."),
                            &[id],
                        ),
                        none(),
                    );
                }
                if let Err(e) = Self::config_of(release, wrapped, body) {
                    return (e, none());
                }
                if self.others[index].installs.contains_key(id) {
                    return (
                        vapi_error(
                            "ALREADY_EXISTS",
                            "vcenter.wcp.appplatform.supervisorservice.cluster.exists",
                            &format!("Supervisor Service {id} is already installed."),
                            &[id],
                        ),
                        none(),
                    );
                }
                self.others[index].installs.insert(
                    id.to_string(),
                    OtherInstall {
                        desired_version: version.to_string(),
                        current_version: Some(version.to_string()),
                        config_status: "CONFIGURED",
                        reads_left: 0,
                    },
                );
                (Answer::no_content(), none())
            }
            ("PUT", [id]) => {
                let Some(body) = req.body else {
                    return (missing_body(), none());
                };
                let Some(version) = body["version"].as_str() else {
                    return (
                        vapi_error(
                            "INVALID_ARGUMENT",
                            "vapi.bindings.typeconverter.missing.field",
                            "version is required: SetSpec replaces the whole spec.",
                            &["version"],
                        ),
                        none(),
                    );
                };
                if let Err(e) = self.version_usable(id, version) {
                    return (e, none());
                }
                if let Err(e) = Self::config_of(release, wrapped, body) {
                    return (e, none());
                }
                match self.others[index].installs.get_mut(*id) {
                    None => (not_installed(id, target), none()),
                    Some(i) if i.config_status == "REMOVING" => (
                        vapi_error(
                            "NOT_ALLOWED_IN_CURRENT_STATE",
                            "vcenter.wcp.appplatform.supervisorservice.removing",
                            &format!("Supervisor Service {id} is being removed."),
                            &[id],
                        ),
                        none(),
                    ),
                    Some(i) => {
                        i.desired_version = version.to_string();
                        i.current_version = Some(version.to_string());
                        (Answer::no_content(), none())
                    }
                }
            }
            ("DELETE", [id]) => {
                let reads = self.others[index].removing_reads;
                match self.others[index].installs.get_mut(*id) {
                    None => (not_installed(id, target), none()),
                    Some(i) => {
                        if i.config_status != "REMOVING" {
                            i.config_status = "REMOVING";
                            i.reads_left = reads;
                        }
                        (Answer::no_content(), none())
                    }
                }
            }
            _ => (
                no_route(&format!(
                    "/api/vcenter/namespace-management/{}",
                    req.segments.join("/")
                )),
                none(),
            ),
        }
    }

    fn get_install(&self, release: Release, wrapped: bool, target: &str, id: &str) -> Answer {
        let Some(i) = self.installs.get(id) else {
            return not_installed(id, target);
        };
        let display = self
            .services
            .get(id)
            .map(|s| s.display_name.clone())
            .unwrap_or_else(|| id.to_string());
        let mut info = json!({
            "desired_version": i.desired_version,
            "config_status": i.config_status,
            "messages": i.messages.iter().map(|(severity, message)| json!({
                "severity": severity,
                "details": {"id": "vcenter.wcp.appplatform.supervisorservice.status", "default_message": message, "args": []}
            })).collect::<Vec<_>>(),
            "display_name": display,
            "service_namespace": i.service_namespace,
        });
        if let Some(c) = &i.current_version {
            info["current_version"] = json!(c);
        }
        if release.yaml_config() || wrapped {
            info["yaml_service_config"] = json!(b64(&i.config));
        }
        Answer::ok(info)
    }

    /// Checks a body's config fields; returns the YAML config text.
    fn config_of(release: Release, wrapped: bool, body: &Value) -> Result<Option<String>, Answer> {
        if body.get("service_config").is_some() && wrapped {
            return Err(vapi_error(
                "INVALID_ARGUMENT",
                "vapi.bindings.typeconverter.unexpected.field",
                "Unexpected field service_config in the Supervisor form of SetSpec.",
                &["service_config"],
            ));
        }
        if body.get("service_config").is_some() && body.get("yaml_service_config").is_some() {
            return Err(vapi_error(
                "INVALID_ARGUMENT",
                "vcenter.wcp.appplatform.supervisorservice.config.both",
                "Only one of service_config and yaml_service_config may be set.",
                &[],
            ));
        }
        let Some(yaml) = body.get("yaml_service_config") else {
            return Ok(None);
        };
        if !release.yaml_config() {
            return Err(vapi_error(
                "INVALID_ARGUMENT",
                "vapi.bindings.typeconverter.unexpected.field",
                "Unexpected field yaml_service_config (it arrived in vSphere API 8.0.0.1).",
                &["yaml_service_config"],
            ));
        }
        let text = yaml.as_str().and_then(unb64).ok_or_else(|| {
            vapi_error(
                "INVALID_ARGUMENT",
                "vcenter.wcp.appplatform.supervisorservice.config.base64",
                "yaml_service_config is not base64-encoded.",
                &[],
            )
        })?;
        if serde_saphyr::from_str::<Value>(&text).is_err() {
            return Err(vapi_error(
                "INVALID_ARGUMENT",
                "vcenter.wcp.appplatform.supervisorservice.config.yaml",
                "yaml_service_config is not valid YAML.",
                &[],
            ));
        }
        Ok(Some(text))
    }

    fn version_usable(&self, id: &str, version: &str) -> Result<(), Answer> {
        let Some(s) = self.services.get(id) else {
            return Err(service_not_found(id));
        };
        let Some(v) = s.versions.get(version) else {
            return Err(version_not_found(id, version));
        };
        if !v.activated {
            return Err(vapi_error(
                "NOT_ALLOWED_IN_CURRENT_STATE",
                "vcenter.wcp.appplatform.supervisorservice.version.deactivated",
                &format!("Supervisor Service {id} version {version} is DEACTIVATED."),
                &[id, version],
            ));
        }
        Ok(())
    }

    fn create_install(
        &mut self,
        release: Release,
        wrapped: bool,
        body: Option<&Value>,
    ) -> (Answer, Vec<Effect>) {
        let Some(body) = body else {
            return (missing_body(), Vec::new());
        };
        let (Some(id), Some(version)) = (
            body["supervisor_service"].as_str(),
            body["version"].as_str(),
        ) else {
            return (
                vapi_error(
                    "INVALID_ARGUMENT",
                    "vapi.bindings.typeconverter.missing.field",
                    "supervisor_service and version are required.",
                    &[],
                ),
                Vec::new(),
            );
        };
        if let Err(e) = self.version_usable(id, version) {
            return (e, Vec::new());
        }
        if self.services.get(id).is_some_and(|s| !s.activated) {
            return (
                vapi_error(
                    "NOT_ALLOWED_IN_CURRENT_STATE",
                    "vcenter.wcp.appplatform.supervisorservice.deactivated",
                    &format!("Supervisor Service {id} is DEACTIVATED."),
                    &[id],
                ),
                Vec::new(),
            );
        }
        if self.installs.contains_key(id) {
            return (
                vapi_error(
                    "ALREADY_EXISTS",
                    "vcenter.wcp.appplatform.supervisorservice.cluster.exists",
                    &format!("Supervisor Service {id} is already installed."),
                    &[id],
                ),
                Vec::new(),
            );
        }
        let config = match Self::config_of(release, wrapped, body) {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => return (e, Vec::new()),
        };
        let namespace = format!("svc-{}", id.split('.').next().unwrap_or(id));
        self.installs.insert(
            id.to_string(),
            Install {
                desired_version: version.to_string(),
                current_version: None,
                config_status: "CONFIGURING",
                messages: Vec::new(),
                service_namespace: namespace,
                config: config.clone(),
                awaiting_generation: None,
            },
        );
        (
            Answer::no_content(),
            vec![Effect::Apply {
                service: id.to_string(),
                version: version.to_string(),
                config,
            }],
        )
    }

    fn set_install(
        &mut self,
        release: Release,
        wrapped: bool,
        target: &str,
        id: &str,
        body: Option<&Value>,
    ) -> (Answer, Vec<Effect>) {
        let Some(body) = body else {
            return (missing_body(), Vec::new());
        };
        if !self.installs.contains_key(id) {
            return (not_installed(id, target), Vec::new());
        }
        let Some(version) = body["version"].as_str() else {
            return (
                vapi_error(
                    "INVALID_ARGUMENT",
                    "vapi.bindings.typeconverter.missing.field",
                    "version is required: SetSpec replaces the whole spec.",
                    &["version"],
                ),
                Vec::new(),
            );
        };
        if let Err(e) = self.version_usable(id, version) {
            return (e, Vec::new());
        }
        let changes_version =
            self.installs.get(id).map(|i| i.desired_version.as_str()) != Some(version);
        let incompatible = self
            .incompatible
            .contains_key(&(id.to_string(), version.to_string()));
        if changes_version && release.v803() && incompatible {
            // LAB1's real answer to an upgrade that fails the compatibility check.
            return (
                vapi_error(
                    "ERROR",
                    "vcenter.wcp.appplatform.supervisorservice.version.incompatible",
                    &format!(
                        "Supervisor Service ({id}) version ({version}) is not compatible. For more details, go to the precheck step"
                    ),
                    &[id, version],
                ),
                Vec::new(),
            );
        }
        // The whole spec is replaced: a SetSpec without a config clears it.
        let config = match Self::config_of(release, wrapped, body) {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => return (e, Vec::new()),
        };
        let Some(install) = self.installs.get_mut(id) else {
            return (not_installed(id, target), Vec::new());
        };
        if install.config_status == "REMOVING" {
            return (
                vapi_error(
                    "NOT_ALLOWED_IN_CURRENT_STATE",
                    "vcenter.wcp.appplatform.supervisorservice.removing",
                    &format!("Supervisor Service {id} is being removed."),
                    &[id],
                ),
                Vec::new(),
            );
        }
        install.desired_version = version.to_string();
        install.config = config.clone();
        install.config_status = "CONFIGURING";
        install.awaiting_generation = None;
        // A stale precheck result is purged by an upgrade (9.1 bindings, get_precheck_result).
        self.prechecks.retain(|(service, _), _| service != id);
        (
            Answer::no_content(),
            vec![Effect::Apply {
                service: id.to_string(),
                version: version.to_string(),
                config,
            }],
        )
    }
}

/// The Carvel definition at `pointer` of a request body (base64 YAML of a PackageMetadata and a
/// Package): `(content as sent, YAML text, the Package's refName, its version)`, or vCenter's 400
/// INVALID_ARGUMENT for a missing field, content that is not a definition, or a release before
/// YAML service configs (8.0.0.1).
fn carvel_definition<'a>(
    release: Release,
    body: Option<&'a Value>,
    pointer: &str,
) -> Result<(&'a str, String, String, String), Answer> {
    let Some(content) = body
        .and_then(|b| b.pointer(pointer))
        .and_then(Value::as_str)
    else {
        let field = pointer.trim_start_matches('/').replace('/', ".");
        return Err(vapi_error(
            "INVALID_ARGUMENT",
            "vapi.bindings.typeconverter.missing.field",
            &format!("{field} is required."),
            &["carvel_spec"],
        ));
    };
    let parsed = unb64(content).and_then(|t| package_of(&t).map(|p| (t, p)));
    match parsed.filter(|_| release.yaml_config()) {
        Some((text, (_, ref_name, version))) => Ok((content, text, ref_name, version)),
        None => Err(vapi_error(
            "INVALID_ARGUMENT",
            "vcenter.wcp.appplatform.supervisorservice.content.invalid",
            "The content is not a Carvel service definition (base64 YAML with a Package).",
            &[],
        )),
    }
}

/// The Carvel `Package` document of a service definition (one YAML stream with `PackageMetadata` and
/// `Package`, as the VCF services dev guide describes it): the document, its `spec.refName` (the
/// service ID) and `spec.version`.
pub fn package_of(text: &str) -> Option<(Value, String, String)> {
    let mut documents = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.push(current);
    documents.iter().find_map(|d| {
        let doc: Value = serde_saphyr::from_str(d).ok()?;
        if doc["kind"] != "Package" {
            return None;
        }
        let id = doc["spec"]["refName"].as_str()?.to_string();
        let version = doc["spec"]["version"].as_str()?.to_string();
        Some((doc, id, version))
    })
}

/// `POST /supervisor-services?action=checkContent` `{"spec": {"content": b64}}`: `VALID` with
/// `carvel_apps_check_result {supervisor_service, version}` for a Carvel definition, else `INVALID`
/// with `error_messages` (the `CheckResult` of the 9.1 bindings).
fn check_content(release: Release, body: Option<&Value>) -> Answer {
    let Some(content) = body.and_then(|b| b["spec"]["content"].as_str()) else {
        return vapi_error(
            "INVALID_ARGUMENT",
            "vapi.bindings.typeconverter.missing.field",
            "spec.content is required.",
            &["spec.content"],
        );
    };
    let invalid = |why: &str| {
        Answer::ok(json!({
            "status": "INVALID",
            "error_messages": [{"id": "vcenter.wcp.appplatform.supervisorservice.content.invalid", "default_message": why, "args": []}],
        }))
    };
    let Some(text) = unb64(content) else {
        return invalid("The content is not base64-encoded.");
    };
    if !release.yaml_config() {
        return invalid("Carvel service definitions need vSphere 8.0 or later.");
    }
    match package_of(&text) {
        Some((_, id, version)) => Answer::ok(json!({
            "status": "VALID",
            "content_type": "CARVEL_APPS_YAML",
            "carvel_apps_check_result": {"supervisor_service": id, "version": version, "display_name": id},
        })),
        None => invalid("The content holds no Carvel Package with spec.refName and spec.version."),
    }
}

fn missing_body() -> Answer {
    vapi_error(
        "INVALID_ARGUMENT",
        "vapi.bindings.typeconverter.missing.body",
        "The request needs a JSON body.",
        &[],
    )
}

/// Base64 (standard alphabet, padded), as the API carries YAML.
pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Decodes [`b64`]; `None` when it is not base64 of UTF-8.
pub fn unb64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let mut m = Model::default();
        let mut versions = BTreeMap::new();
        versions.insert(
            "1.0.0".to_string(),
            CatalogVersion {
                display_name: "x 1.0.0".into(),
                activated: true,
                content: b64("a: 1"),
                registered_by_default: false,
            },
        );
        m.services.insert(
            "x.example.com".into(),
            CatalogService {
                display_name: "x".into(),
                description: String::new(),
                activated: true,
                must_be_installed: false,
                versions,
            },
        );
        m
    }

    fn req<'a>(method: &'a str, path: &str, body: Option<&'a Value>) -> Request<'a> {
        let (path, action) = match path.split_once("?action=") {
            Some((p, a)) => (p, Some(a.to_string())),
            None => (path, None),
        };
        Request {
            method,
            segments: path.split('/').map(String::from).collect(),
            action,
            body,
        }
    }

    #[test]
    fn install_then_set_replaces_the_whole_spec() {
        let mut m = model();
        let body = json!({"supervisor_service": "x.example.com", "version": "1.0.0", "yaml_service_config": b64("a: 1\n")});
        let (a, e) = m.handle(
            Release::V8_0_3,
            "domain-c8",
            "s",
            &req(
                "POST",
                "clusters/domain-c8/supervisor-services",
                Some(&body),
            ),
        );
        assert_eq!(a.status, 204);
        assert_eq!(e.len(), 1);
        // A SetSpec without version is refused.
        let (a, _) = m.handle(
            Release::V8_0_3,
            "domain-c8",
            "s",
            &req(
                "PUT",
                "clusters/domain-c8/supervisor-services/x.example.com",
                Some(&json!({})),
            ),
        );
        assert_eq!(a.status, 400);
        // Without a config, the config is cleared.
        let (a, _) = m.handle(
            Release::V8_0_3,
            "domain-c8",
            "s",
            &req(
                "PUT",
                "clusters/domain-c8/supervisor-services/x.example.com",
                Some(&json!({"version": "1.0.0"})),
            ),
        );
        assert_eq!(a.status, 204);
        assert_eq!(m.installs["x.example.com"].config, "");
    }

    #[test]
    fn routes_follow_the_release() {
        let mut m = model();
        let (a, _) = m.handle(
            Release::V8_0_3,
            "domain-c8",
            "s",
            &req("GET", "supervisors/s/supervisor-services", None),
        );
        assert_eq!(a.status, 404);
        let (a, _) = m.handle(
            Release::V9_1_0,
            "domain-c8",
            "s",
            &req("GET", "supervisors/s/supervisor-services", None),
        );
        assert_eq!(a.body, Some(json!({"supervisor_services": []})));
        let (a, _) = m.handle(
            Release::V7_0_3,
            "domain-c8",
            "s",
            &req("GET", "clusters/domain-c8/supervisor-services", None),
        );
        assert_eq!(a.body, Some(json!([])));
        let body = json!({"supervisor_service": "x.example.com", "version": "1.0.0", "yaml_service_config": b64("a: 1")});
        let (a, _) = m.handle(
            Release::V7_0_3,
            "domain-c8",
            "s",
            &req(
                "POST",
                "clusters/domain-c8/supervisor-services",
                Some(&body),
            ),
        );
        assert_eq!(a.status, 400);
        assert_eq!(a.body.unwrap()["error_type"], "INVALID_ARGUMENT");
    }

    #[test]
    fn another_supervisor_removes_through_removing_and_holds_its_versions() {
        let mut m = model();
        m.others.push(OtherSupervisor::new(
            "sup-east",
            "sup-east-id",
            "domain-c9",
            &[("x.example.com", "1.0.0")],
        ));
        let r = |m: &mut Model, release, method: &str, path: &str| {
            m.handle(release, "domain-c8", "s", &req(method, path, None))
                .0
        };
        // Both route families list its record (bare on 8.x, wrapped on 9.x); ours is empty.
        let a = r(
            &mut m,
            Release::V8_0_3,
            "GET",
            "clusters/domain-c9/supervisor-services",
        );
        assert_eq!(a.body.unwrap()[0]["config_status"], "CONFIGURED");
        let a = r(
            &mut m,
            Release::V9_1_0,
            "GET",
            "supervisors/sup-east-id/supervisor-services",
        );
        assert_eq!(
            a.body.unwrap()["supervisor_services"][0]["supervisor_service"],
            "x.example.com"
        );
        let a = r(
            &mut m,
            Release::V8_0_3,
            "GET",
            "clusters/domain-c8/supervisor-services",
        );
        assert_eq!(a.body, Some(json!([])));
        // A version installed there cannot be deleted, even DEACTIVATED (the service first).
        r(
            &mut m,
            Release::V8_0_3,
            "PATCH",
            "supervisor-services/x.example.com?action=deactivate",
        );
        assert_eq!(
            r(
                &mut m,
                Release::V8_0_3,
                "PATCH",
                "supervisor-services/x.example.com/versions/1.0.0?action=deactivate"
            )
            .status,
            204
        );
        let a = r(
            &mut m,
            Release::V8_0_3,
            "DELETE",
            "supervisor-services/x.example.com/versions/1.0.0",
        );
        assert_eq!(a.status, 400);
        assert_eq!(
            a.body.unwrap()["error_type"],
            "NOT_ALLOWED_IN_CURRENT_STATE"
        );
        // Uninstall: REMOVING for two reads, then gone (404 NOT_FOUND); then the version goes.
        let path = "clusters/domain-c9/supervisor-services/x.example.com";
        assert_eq!(r(&mut m, Release::V8_0_3, "DELETE", path).status, 204);
        for _ in 0..2 {
            let a = r(&mut m, Release::V8_0_3, "GET", path);
            assert_eq!(a.body.unwrap()["config_status"], "REMOVING");
        }
        let a = r(&mut m, Release::V8_0_3, "GET", path);
        assert_eq!(
            (a.status, a.body.unwrap()["error_type"].clone()),
            (404, json!("NOT_FOUND"))
        );
        let a = r(
            &mut m,
            Release::V8_0_3,
            "DELETE",
            "supervisor-services/x.example.com/versions/1.0.0",
        );
        assert_eq!(a.status, 204);
    }

    #[test]
    fn a_new_service_is_registered_from_its_carvel_definition() {
        let mut m = model();
        let definition = "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata: {name: y.example.com}\nspec: {displayName: Why, shortDescription: A y}\n---\napiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata: {name: y.example.com.0.1.0}\nspec: {refName: y.example.com, version: 0.1.0}\n";
        let body = json!({"carvel_spec": {"version_spec": {"content": b64(definition)}}});
        let (a, e) = m.handle(
            Release::V8_0_3,
            "c",
            "s",
            &req("POST", "supervisor-services", Some(&body)),
        );
        assert_eq!((a.status, a.body), (201, Some(json!("y.example.com"))));
        assert_eq!(
            e,
            vec![Effect::Register {
                service: "y.example.com".into(),
                version: "0.1.0".into(),
                content: definition.into()
            }]
        );
        let service = &m.services["y.example.com"];
        assert_eq!(
            (service.display_name.as_str(), service.activated),
            ("Why", true)
        );
        assert!(service.versions["0.1.0"].activated);
        // Twice: ALREADY_EXISTS; not Carvel: INVALID_ARGUMENT; 7.0.3 has no Carvel definitions.
        let (a, e) = m.handle(
            Release::V8_0_3,
            "c",
            "s",
            &req("POST", "supervisor-services", Some(&body)),
        );
        assert_eq!(
            (a.status, a.body.unwrap()["error_type"].clone(), e),
            (400, json!("ALREADY_EXISTS"), vec![])
        );
        let junk = json!({"carvel_spec": {"version_spec": {"content": b64("a: 1")}}});
        let (a, _) = m.handle(
            Release::V8_0_3,
            "c",
            "s",
            &req("POST", "supervisor-services", Some(&junk)),
        );
        assert_eq!(a.body.unwrap()["error_type"], "INVALID_ARGUMENT");
        let (a, _) = m.handle(
            Release::new(7, 0, 3),
            "c",
            "s",
            &req("POST", "supervisor-services", Some(&body)),
        );
        assert_eq!(a.status, 400);
    }

    #[test]
    fn catalog_state_rules() {
        let mut m = model();
        let r = |m: &mut Model, method: &str, path: &str| {
            m.handle(Release::V8_0_3, "c", "s", &req(method, path, None))
                .0
        };
        // The last activated version of an activated service cannot be deactivated.
        let a = r(
            &mut m,
            "PATCH",
            "supervisor-services/x.example.com/versions/1.0.0?action=deactivate",
        );
        assert_eq!(
            (a.status, a.body.unwrap()["error_type"].clone()),
            (400, json!("NOT_ALLOWED_IN_CURRENT_STATE"))
        );
        assert_eq!(
            r(
                &mut m,
                "PATCH",
                "supervisor-services/x.example.com?action=deactivate"
            )
            .status,
            204
        );
        assert_eq!(
            r(
                &mut m,
                "PATCH",
                "supervisor-services/x.example.com?action=deactivate"
            )
            .status,
            400
        );
        m.services
            .get_mut("x.example.com")
            .unwrap()
            .must_be_installed = true;
        let a = r(
            &mut m,
            "PATCH",
            "supervisor-services/x.example.com?action=activate",
        );
        assert_eq!(a.status, 403);
        assert!(
            a.body.unwrap()["messages"][0]["default_message"]
                .as_str()
                .unwrap()
                .starts_with("Core services are managed by vCenter")
        );
        assert_eq!(r(&mut m, "GET", "supervisor-services/nope").status, 404);
    }
}
