//! A model of kapp-controller: the PackageInstall and App controllers and kapp's deploy, behaving as
//! the public Carvel sources (kapp-controller v0.53, kapp) say they do.
//!
//! The controllers are clients of the simulated API server like any other: kapp-controller writes
//! PackageInstall/App objects as its own service account, and each App deploys as the App's
//! `spec.serviceAccountName`, through validation and admission.

pub mod app;
pub mod deploy;
pub mod diff;
pub mod packageinstall;
pub mod queue;
pub mod registry;
pub mod status;
pub mod template;
pub mod text;
pub mod ytt;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;

use crate::api::{ApiServer, Client, Gvr, Status, UserInfo, WriteOptions, gvr};
use queue::{Handler, Informer, Key, WorkQueue, key_of};
use registry::Registry;

/// Where kapp-controller runs on a Supervisor, and as whom.
pub const CONTROLLER_NAMESPACE: &str = "vmware-system-appplatform-operator-system";
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "kapp-controller-sa";

/// App controller workers, as kapp-controller runs them; the PackageInstall controller has one.
const APP_WORKERS: usize = 10;

/// Settings of the model.
#[derive(Clone, Debug)]
pub struct KappOptions {
    /// Multiplies every controller period (sync periods, backoff, kapp's wait timeout and poll interval).
    pub time_scale: f64,
}

impl Default for KappOptions {
    fn default() -> Self {
        KappOptions { time_scale: 1.0 }
    }
}

/// State shared by the controllers.
pub(crate) struct Shared {
    pub api: Arc<ApiServer>,
    pub controller: Client,
    pub registry: std::sync::RwLock<Registry>,
    pub options: KappOptions,
    pub package_installs: Arc<WorkQueue>,
    pub apps: Arc<WorkQueue>,
    /// Apps whose values Secrets changed since their last reconcile: due at once.
    pub forced: Mutex<HashSet<Key>>,
    /// When each App last fetched/templated/deployed (in this process).
    pub last_attempt: Mutex<HashMap<Key, Instant>>,
    pub informers: OnceLock<Informers>,
    /// Every reconcile runs under a read guard; [`KappController::hold`] takes the write guard.
    pub gate: Arc<tokio::sync::RwLock<()>>,
}

pub(crate) struct Informers {
    pub package_installs: Arc<Informer>,
    pub packages: Arc<Informer>,
    pub apps_for_package_installs: Arc<Informer>,
    pub apps: Arc<Informer>,
}

impl Shared {
    pub fn scaled(&self, period: Duration) -> Duration {
        period.mul_f64(self.options.time_scale)
    }

    /// Waits until the controllers have observed writes kapp made (their informers have read up to
    /// each resourceVersion) and the reconciles those writes caused have run.
    pub async fn settled(&self, writes: &[(Gvr, u64)]) {
        let Some(informers) = self.informers.get() else {
            return;
        };
        for (gvr, rv) in writes {
            if *gvr == gvr::PACKAGE_INSTALLS {
                informers.package_installs.seen(*rv).await;
            } else if *gvr == gvr::PACKAGES {
                informers.packages.seen(*rv).await;
            } else if *gvr == gvr::APPS {
                informers.apps.seen(*rv).await;
                informers.apps_for_package_installs.seen(*rv).await;
            }
        }
        self.package_installs.idle().await;
    }
}

/// The running model.
pub struct KappController {
    shared: Arc<Shared>,
}

impl KappController {
    /// Publishes an imgpkg bundle in the registry model (see [`Registry::publish`]).
    pub fn publish_bundle(&self, bundle: registry::Bundle) {
        self.shared
            .registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .publish(bundle);
    }

    /// Starts the informers and workers of both controllers.
    pub fn start(api: Arc<ApiServer>, registry: Registry, options: KappOptions) -> KappController {
        let controller = api.client(UserInfo::service_account(
            CONTROLLER_NAMESPACE,
            CONTROLLER_SERVICE_ACCOUNT,
        ));
        let shared = Arc::new(Shared {
            api,
            controller: controller.clone(),
            registry: std::sync::RwLock::new(registry),
            options,
            package_installs: Arc::new(WorkQueue::default()),
            apps: Arc::new(WorkQueue::default()),
            forced: Mutex::new(HashSet::new()),
            last_attempt: Mutex::new(HashMap::new()),
            informers: OnceLock::new(),
            gate: Arc::new(tokio::sync::RwLock::new(())),
        });

        let informers = Informers {
            package_installs: Informer::spawn(
                controller.clone(),
                gvr::PACKAGE_INSTALLS,
                enqueue_self(&shared.package_installs),
            ),
            packages: Informer::spawn(
                controller.clone(),
                gvr::PACKAGES,
                packageinstall::on_package_event(&shared),
            ),
            apps_for_package_installs: Informer::spawn(
                controller.clone(),
                gvr::APPS,
                packageinstall::on_app_event(&shared),
            ),
            apps: Informer::spawn(controller.clone(), gvr::APPS, enqueue_self(&shared.apps)),
        };
        // Values Secrets: a change forces the Apps that use them.
        let _secrets = Informer::spawn(controller, gvr::SECRETS, app::on_secret_event(&shared));
        let _ = shared.informers.set(informers);

        let pkgi_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let key = pkgi_shared.package_installs.next().await;
                let pass = pkgi_shared.gate.read().await;
                if let Err(error) = packageinstall::reconcile(&pkgi_shared, &key).await {
                    tracing::debug!(?key, %error, "packageinstall reconcile error; requeued");
                    pkgi_shared
                        .package_installs
                        .add_after(key.clone(), Duration::from_millis(200));
                }
                drop(pass);
                pkgi_shared.package_installs.done(&key);
            }
        });
        for _ in 0..APP_WORKERS {
            let app_shared = Arc::clone(&shared);
            tokio::spawn(async move {
                loop {
                    let key = app_shared.apps.next().await;
                    let pass = app_shared.gate.read().await;
                    if let Err(error) = app::reconcile(&app_shared, &key).await {
                        tracing::debug!(?key, %error, "app reconcile error; requeued");
                        app_shared
                            .apps
                            .add_after(key.clone(), Duration::from_millis(200));
                    }
                    drop(pass);
                    app_shared.apps.done(&key);
                }
            });
        }
        KappController { shared }
    }

    /// Waits until the controllers have observed `writes` (see [`Shared::settled`]).
    pub async fn settled(&self, writes: &[(Gvr, u64)]) {
        self.shared.settled(writes).await;
    }

    /// Stops both controllers once the reconciles running now have ended: until the guard is dropped,
    /// nothing is reconciled (what happens meanwhile is queued), so kapp-controller writes nothing.
    /// For tests that compare resourceVersions. ([`KappController::idle`] waits for the release.)
    pub async fn hold(&self) -> Held {
        Held {
            _gate: Arc::clone(&self.shared.gate).write_owned().await,
        }
    }

    /// The gate [`KappController::hold`] closes: the simulator's other controllers pass it too, so a
    /// hold stills every writer of the simulated control plane, not only kapp-controller.
    pub fn gate(&self) -> Arc<tokio::sync::RwLock<()>> {
        Arc::clone(&self.shared.gate)
    }

    /// Waits until both controllers have nothing queued or running. Timers may still be pending.
    pub async fn idle(&self) {
        loop {
            self.shared.package_installs.idle().await;
            self.shared.apps.idle().await;
            if self.shared.package_installs.is_idle() && self.shared.apps.is_idle() {
                return;
            }
        }
    }
}

/// The controllers held still; dropping it lets them go on.
#[must_use = "the controllers go on as soon as this is dropped"]
pub struct Held {
    _gate: tokio::sync::OwnedRwLockWriteGuard<()>,
}

fn enqueue_self(queue: &Arc<WorkQueue>) -> Handler {
    let queue = Arc::clone(queue);
    Arc::new(move |event| {
        if let crate::api::WatchEvent::Added(o) | crate::api::WatchEvent::Modified(o) = &event {
            queue.add(key_of(o));
        }
        async {}.boxed()
    })
}

/// Reads an object, lets `f` compute its new status, and writes it only when it changed; a conflict
/// (someone wrote meanwhile) re-reads and recomputes.
pub(crate) async fn write_status(
    client: &Client,
    gvr: Gvr,
    key: &Key,
    f: impl Fn(&Value) -> Value,
) -> Result<Option<Value>, Status> {
    for _ in 0..10 {
        let mut object = match client.get(gvr, Some(&key.0), &key.1).await {
            Ok(object) => object,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let status = f(&object);
        if object["status"] == status {
            return Ok(Some(object));
        }
        object["status"] = status;
        match client
            .update_status(gvr, Some(&key.0), object, &WriteOptions::default())
            .await
        {
            Ok(written) => return Ok(Some(written)),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Status {
        code: 409,
        reason: "Conflict".into(),
        message: format!("status of {}/{} kept changing", key.0, key.1),
        details: None,
    })
}

/// RFC 3339 time, as status timestamps are written.
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
