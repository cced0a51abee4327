//! The simulated Supervisor as one value: the API server over HTTPS, the kapp-controller model and a
//! scenario played up to its ready state. The `supsvc-sim serve` command and every test start it here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use serde_json::Value;

use crate::api::{ApiServer, Client, Gvr, Patch, UserInfo, WriteOptions};
use crate::kapp::queue::resource_version;
use crate::kapp::{KappController, KappOptions};
use crate::kubeconfig::{self, KubeconfigUser};
use crate::scenario::{Expectation, HISTORY_TIMEOUT, Scenario};

/// The kubeconfig context of the cluster administrator (the current context).
pub const ADMIN_CONTEXT: &str = "supervisor-admin";
/// A user that may only read (`get`, `list`, `watch`): for "no permission" paths.
pub const VIEWER_CONTEXT: &str = "supervisor-viewer";
/// The group that makes a user read-only in the simulator's authorizer.
pub const VIEWER_GROUP: &str = "supsvc:view";

/// How to start a simulator.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// A built-in scenario name or a scenario file.
    pub scenario: String,
    /// Multiplies every controller period; `0.01` makes a 10 minute sync period 6 seconds.
    pub time_scale: f64,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
}

impl SimOptions {
    pub fn new(scenario: &str) -> Self {
        SimOptions {
            scenario: scenario.into(),
            time_scale: 1.0,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    pub fn time_scale(mut self, time_scale: f64) -> Self {
        self.time_scale = time_scale;
        self
    }
}

/// A running simulated Supervisor.
pub struct Simulator {
    api: Arc<ApiServer>,
    server: crate::http::ServerHandle,
    kapp: KappController,
    kubeconfig: String,
    scenario: Scenario,
    started: Duration,
    workload_clusters: Vec<crate::workload::WorkloadCluster>,
}

impl Simulator {
    /// Starts the API server, creates the scenario's objects, starts the controllers and plays the
    /// scenario's history until it is ready.
    pub async fn start(options: SimOptions) -> anyhow::Result<Simulator> {
        let begun = Instant::now();
        anyhow::ensure!(
            options.time_scale > 0.0 && options.time_scale.is_finite(),
            "--time-scale must be a positive number (got {})",
            options.time_scale
        );
        let scenario = Scenario::load(&options.scenario)?;
        let registry = scenario.registry()?;
        let api = ApiServer::new();

        let mut users = vec![(ADMIN_CONTEXT.to_string(), UserInfo::admin())];
        users.push((
            VIEWER_CONTEXT.to_string(),
            UserInfo {
                username: "viewer".into(),
                uid: String::new(),
                groups: vec![VIEWER_GROUP.into(), "system:authenticated".into()],
            },
        ));
        for (namespace, account) in scenario.deploy_service_accounts() {
            let user = UserInfo::service_account(&namespace, &account);
            users.push((user.username.clone(), user));
        }
        let mut kubeconfig_users = Vec::new();
        for (name, user) in users {
            let token = random_token();
            api.add_token(&token, user);
            kubeconfig_users.push(KubeconfigUser { name, token });
        }

        let serve_options = crate::http::ServeOptions {
            listen: options.listen,
            ..Default::default()
        };
        let server = crate::http::serve(Arc::clone(&api), serve_options)
            .await
            .context("starting the API server")?;
        let kubeconfig = kubeconfig::render(
            &server.url,
            &server.ca_pem,
            &kubeconfig_users,
            Some(ADMIN_CONTEXT),
        )?;

        let admin = api.client(UserInfo::admin());
        for object in &scenario.objects {
            create_object(&admin, object).await?;
        }
        let kapp = KappController::start(
            Arc::clone(&api),
            registry,
            KappOptions {
                time_scale: options.time_scale,
            },
        );
        // The rest of the control plane is held still with kapp-controller (`hold_controllers`).
        crate::workloads::start(Arc::clone(&api), kapp.gate());
        crate::serviceaccounts::start(Arc::clone(&api), kapp.gate());
        crate::disruption::start(Arc::clone(&api), kapp.gate());
        let mut workload_clusters = Vec::new();
        for spec in &scenario.workload_clusters {
            let cluster = crate::workload::WorkloadCluster::start(spec, kapp.gate()).await?;
            create_object(&admin, &cluster.kubeconfig_secret()).await?;
            workload_clusters.push(cluster);
        }

        let simulator = Simulator {
            api,
            server,
            kapp,
            kubeconfig,
            scenario,
            started: Duration::ZERO,
            workload_clusters,
        };
        let timeout = HISTORY_TIMEOUT;
        for step in &simulator.scenario.history {
            simulator
                .wait_for(&step.after, timeout)
                .await
                .with_context(|| format!("before \"{}\"", step.description))?;
            let written = apply_patch(&admin, &step.patch)
                .await
                .with_context(|| format!("applying \"{}\"", step.description))?;
            if let (Some((gvr, _)), Some(rv)) = (
                gvr_of(&admin, &step.patch.api_version, &step.patch.kind),
                resource_version(&written),
            ) {
                simulator.kapp.settled(&[(gvr, rv)]).await;
            }
        }
        simulator
            .wait_for(&simulator.scenario.ready, timeout)
            .await
            .context("waiting for the scenario to be ready")?;
        Ok(Simulator {
            started: begun.elapsed(),
            ..simulator
        })
    }

    /// Waits until every expectation holds, or says which does not and what it looks like instead.
    async fn wait_for(
        &self,
        expectations: &[Expectation],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let admin = self.admin();
        for expectation in expectations {
            let gvr = match expectation.kind.as_str() {
                "App" => crate::api::gvr::APPS,
                "PackageInstall" => crate::api::gvr::PACKAGE_INSTALLS,
                other => {
                    anyhow::bail!("expectations are about Apps or PackageInstalls, not {other}")
                }
            };
            loop {
                self.kapp.idle().await;
                let object = admin
                    .get(gvr, Some(&expectation.namespace), &expectation.name)
                    .await
                    .ok();
                if object.as_ref().is_some_and(|o| expectation.holds(o)) {
                    break;
                }
                if Instant::now() >= deadline {
                    let seen = object
                        .map(|o| o["status"].to_string())
                        .unwrap_or_else(|| "not found".into());
                    anyhow::bail!(
                        "{} {}/{} did not reach {} within {timeout:?}; status: {seen}",
                        expectation.kind,
                        expectation.namespace,
                        expectation.name,
                        expectation.condition
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// The kubeconfig (YAML) for this simulator: the admin's context current, one context per user.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Writes the kubeconfig to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, &self.kubeconfig)
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The simulator's certificate authority: it signs the API server's certificate, and can sign one
    /// for a webhook the simulator calls (its PEM is then the webhook's `caBundle`).
    pub fn ca(&self) -> &crate::tls::Ca {
        &self.server.ca
    }

    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    /// An in-process client acting as the cluster administrator.
    pub fn admin(&self) -> Client {
        self.api.client(UserInfo::admin())
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// How long the start took, history included.
    pub fn start_time(&self) -> Duration {
        self.started
    }

    /// Waits until the controllers have seen `writes` and have nothing left to do.
    pub async fn settle(&self, writes: &[(Gvr, u64)]) {
        self.kapp.settled(writes).await;
        self.kapp.idle().await;
    }

    /// Publishes an imgpkg bundle in the Supervisor's registry model, its host made reachable:
    /// what pushing a bundle to the private registry does while the Supervisor runs.
    pub fn publish_bundle(&self, bundle: crate::kapp::registry::Bundle) {
        self.kapp.publish_bundle(bundle);
    }

    /// Holds kapp-controller still (see [`KappController::hold`]) until the guard is dropped.
    pub async fn hold_controllers(&self) -> crate::kapp::Held {
        self.kapp.hold().await
    }

    /// Starts a simulated vCenter joined to this Supervisor (see [`crate::vcenter`]): its catalog and
    /// install records taken from the Supervisor, its clusters and summaries reporting this API server's
    /// host as the Supervisor's endpoint.
    pub async fn start_vcenter(
        &self,
        mut options: crate::vcenter::VcenterOptions,
    ) -> anyhow::Result<crate::vcenter::Vcenter> {
        options.endpoint = self.server.addr.ip().to_string();
        crate::vcenter::Vcenter::start(Arc::clone(&self.api), options).await
    }

    /// The scenario's workload clusters (see [`crate::workload`]).
    pub fn workload_clusters(&self) -> &[crate::workload::WorkloadCluster] {
        &self.workload_clusters
    }

    /// The workload cluster `namespace/name`, if the scenario has it.
    pub fn workload_cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&crate::workload::WorkloadCluster> {
        self.workload_clusters
            .iter()
            .find(|c| c.namespace == namespace && c.name == name)
    }

    /// Stops serving (the workload clusters' servers too).
    pub async fn stop(self) {
        for cluster in &self.workload_clusters {
            cluster.stop();
        }
        self.server.shutdown();
    }
}

pub(crate) fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}

fn gvr_of(admin: &Client, api_version: &str, kind: &str) -> Option<(Gvr, bool)> {
    crate::kapp::deploy::resource_of(
        admin.server().registry(),
        &serde_json::json!({"apiVersion": api_version, "kind": kind}),
    )
}

/// Creates one scenario object as the admin; its `status`, if any, is then written through the status subresource.
///
/// An `ownerReferences` entry without a `uid` gets the uid of the object it names in the same
/// namespace, created earlier (a scenario cannot know the uids the server will assign; the API server
/// itself requires them).
pub(crate) async fn create_object(admin: &Client, object: &Value) -> anyhow::Result<()> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let (gvr, _) = gvr_of(admin, api_version, kind).with_context(|| {
        format!("scenario object {kind} {name}: unknown kind {api_version}/{kind}")
    })?;
    let namespace = object["metadata"]["namespace"].as_str();
    let mut object = object.clone();
    // `get_mut`, not indexing: an index would add `ownerReferences: null` to every object.
    if let Some(owners) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("ownerReferences"))
        .and_then(Value::as_array_mut)
    {
        for owner in owners.iter_mut().filter(|o| o.get("uid").is_none()) {
            let owner_kind = owner["kind"].as_str().unwrap_or_default().to_owned();
            let owner_name = owner["name"].as_str().unwrap_or_default().to_owned();
            let (owner_gvr, _) = gvr_of(
                admin,
                owner["apiVersion"].as_str().unwrap_or_default(),
                &owner_kind,
            )
            .with_context(|| {
                format!("scenario object {kind} {name}: owner of unknown kind {owner_kind}")
            })?;
            let found = admin
                .get(owner_gvr, namespace, &owner_name)
                .await
                .with_context(|| {
                    format!("scenario object {kind} {name}: its owner {owner_kind} {owner_name} must be created before it")
                })?;
            owner["uid"] = found["metadata"]["uid"].clone();
        }
    }
    let object = &object;
    // A CustomResourceDefinition the simulator ships (sim/crds) is replaced by the scenario's: a
    // Supervisor of another release serves other versions of the same kinds (vSphere 7's
    // TanzuKubernetesCluster v1alpha2, TanzuKubernetesRelease v1alpha1).
    if kind == "CustomResourceDefinition"
        && let Ok(shipped) = admin.get(gvr, None, name).await
    {
        let mut replacement = object.clone();
        replacement["metadata"]["resourceVersion"] = shipped["metadata"]["resourceVersion"].clone();
        admin
            .update(gvr, None, replacement, &WriteOptions::default())
            .await
            .with_context(|| format!("replacing the shipped CustomResourceDefinition {name}"))?;
        return Ok(());
    }
    let created = admin
        .create(gvr, namespace, object.clone(), &WriteOptions::default())
        .await
        .with_context(|| format!("creating scenario object {kind} {name}"))?;
    if let Some(status) = object.get("status") {
        let mut with_status = created;
        with_status["status"] = status.clone();
        admin
            .update_status(gvr, namespace, with_status, &WriteOptions::default())
            .await?;
    }
    Ok(())
}

async fn apply_patch(
    admin: &Client,
    patch: &crate::scenario::ObjectPatch,
) -> anyhow::Result<Value> {
    let (gvr, _) = gvr_of(admin, &patch.api_version, &patch.kind)
        .with_context(|| format!("unknown kind {}/{}", patch.api_version, patch.kind))?;
    let body = match patch.patch_type.as_str() {
        "json" => Patch::Json(patch.patch.clone()),
        "merge" => Patch::Merge(patch.patch.clone()),
        other => anyhow::bail!("patch type {other:?}: expected json or merge"),
    };
    Ok(admin
        .patch(
            gvr,
            patch.namespace.as_deref(),
            &patch.name,
            &body,
            &WriteOptions::default(),
        )
        .await?)
}
