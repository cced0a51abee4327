//! The Supervisor's Kubernetes API through kube's dynamic API, with retries of transient failures.

use std::future::Future;
use std::time::Duration;

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::Value;
use supsvc_core::fix::{Kind, ObjectRef};
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::{Failure, Result, is_transient};

pub fn packageinstalls() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("packaging.carvel.dev", "v1alpha1", "PackageInstall"),
        "packageinstalls",
    )
}

pub fn apps() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kappctrl.k14s.io", "v1alpha1", "App"),
        "apps",
    )
}

pub fn packages() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("data.packaging.carvel.dev", "v1alpha1", "Package"),
        "packages",
    )
}

pub fn configmaps() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "ConfigMap"), "configmaps")
}

/// How many times and how long to retry a transient failure.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Retry {
    /// The delay before retry `n` (0-based): exponential, capped.
    pub fn delay(&self, n: u32) -> Duration {
        self.first_delay
            .saturating_mul(2u32.saturating_pow(n))
            .min(self.max_delay)
    }
}

/// Runs `op`, retrying transient errors (5xx, 429, 409, dropped connections) with backoff, never past
/// `deadline`. Every attempt re-sends the request, so a conflict is answered by re-reading.
pub async fn retrying<T, F, Fut>(
    deadline: Option<Instant>,
    mut op: F,
) -> std::result::Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, kube::Error>>,
{
    let policy = Retry::default();
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if is_transient(&e) && attempt + 1 < policy.attempts => {
                let delay = policy.delay(attempt);
                if deadline.is_some_and(|d| Instant::now() + delay > d) {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The Kubernetes API of one Supervisor as the commands use it: GET, LIST, patches and watches of
/// any kind (kube's dynamic API) with retries of transient failures, and errors explained for
/// an operator.
#[derive(Clone)]
pub struct SupervisorApi {
    pub cluster: Cluster,
}

impl SupervisorApi {
    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.cluster.client.clone(), ns, resource),
            None => Api::all_with(self.cluster.client.clone(), resource),
        }
    }

    fn fail(&self, err: &kube::Error, doing: String) -> Failure {
        Failure::from_kube(err, &doing, &self.cluster.server)
    }

    /// GET an object as JSON; `None` when it does not exist.
    pub async fn get(
        &self,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let api = self.api(resource, Some(namespace));
        let got = retrying(None, || api.get_opt(name)).await;
        match got {
            Ok(o) => Ok(o.map(to_value)),
            Err(e) => Err(self.fail(&e, format!("get {}/{name} -n {namespace}", resource.plural))),
        }
    }

    /// LIST objects as JSON, in a namespace or across all of them, with an optional label selector.
    pub async fn list(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>> {
        let api = self.api(resource, namespace);
        let mut params = ListParams::default();
        if let Some(s) = selector {
            params = params.labels(s);
        }
        match retrying(None, || api.list(&params)).await {
            Ok(list) => Ok(list.items.into_iter().map(to_value).collect()),
            Err(e) => {
                let scope = namespace
                    .map_or_else(|| " --all-namespaces".to_owned(), |n| format!(" -n {n}"));
                Err(self.fail(&e, format!("list {}{scope}", resource.plural)))
            }
        }
    }

    /// Sends a JSON merge patch (with `dryRun=All` when asked), retrying transient failures.
    pub async fn merge_patch(
        &self,
        target: &ObjectRef,
        patch: &Value,
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let resource = match target.kind {
            Kind::PackageInstall => packageinstalls(),
            Kind::App => apps(),
        };
        let api = self.api(&resource, Some(&target.namespace));
        let params = PatchParams {
            dry_run,
            ..PatchParams::default()
        };
        let patch = Patch::Merge(patch);
        let result = retrying(deadline, || api.patch(&target.name, &params, &patch)).await;
        result.map(|_| ()).map_err(|e| {
            self.fail(
                &e,
                format!(
                    "patch {}/{} -n {}",
                    resource.plural, target.name, target.namespace
                ),
            )
        })
    }
}

/// Follows the objects of one kind in a namespace as client-go's reflector does (LIST, then WATCH
/// from its resourceVersion, re-listing after a gap such as `410 Gone`, retried with kube's default
/// backoff): after each change it yields every object held now, as JSON. The stream never ends by
/// itself; an error item is a failed attempt that will be retried.
pub fn follow(
    supervisor: &SupervisorApi,
    resource: &ApiResource,
    namespace: &str,
) -> impl futures::Stream<Item = std::result::Result<Vec<Value>, kube::runtime::watcher::Error>>
+ Send
+ use<> {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, reflector, watcher};

    let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
    let store = writer.as_reader();
    let events = watcher(
        supervisor.api(resource, Some(namespace)),
        watcher::Config::default(),
    )
    .default_backoff();
    reflector(writer, events).filter_map(move |event| {
        let item = match event {
            // Mid-relist the store still holds the previous list: wait for its end.
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
            Ok(_) => Some(Ok(store
                .state()
                .iter()
                .map(|o| to_value(o.as_ref().clone()))
                .collect())),
            Err(e) => Some(Err(e)),
        };
        std::future::ready(item)
    })
}

/// Wakes a wait loop as soon as an object it waits on changes, as `kubectl wait` does, instead of
/// on a timer: one watch per (kind, namespace), each event a wake-up. A wait still ends after its
/// fallback period without an event, so a watch that cannot be established (a proxy that cuts long
/// requests, RBAC without `watch`) only slows the loop down to polling. Dropping it ends the
/// watches.
pub struct Changes {
    notify: std::sync::Arc<tokio::sync::Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Changes {
    /// Starts a watch of each `(kind, namespace)`; `None` watches the kind in every namespace.
    pub fn watch(supervisor: &SupervisorApi, targets: &[(ApiResource, Option<String>)]) -> Self {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};

        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let tasks = targets
            .iter()
            .map(|(resource, namespace)| {
                let events = watcher(
                    supervisor.api(resource, namespace.as_deref()),
                    watcher::Config::default(),
                )
                .default_backoff();
                let notify = notify.clone();
                tokio::spawn(async move {
                    let mut events = std::pin::pin!(events);
                    while let Some(event) = events.next().await {
                        // The initial list's objects are what the caller reads anyway; its end
                        // wakes once, for a change made between the caller's read and the list.
                        if let Ok(
                            watcher::Event::Apply(_)
                            | watcher::Event::Delete(_)
                            | watcher::Event::InitDone,
                        ) = event
                        {
                            notify.notify_one();
                        }
                    }
                })
            })
            .collect();
        Changes { notify, tasks }
    }

    /// Returns at the next change seen since the previous call (at once if one came meanwhile),
    /// or after `fallback`, whichever is first.
    pub async fn next(&self, fallback: Duration) {
        tokio::select! {
            () = self.notify.notified() => {}
            () = tokio::time::sleep(fallback) => {}
        }
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn to_value(o: DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = Retry::default();
        let delays: Vec<u128> = (0..7).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(r.delay(100), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn retries_transient_errors_only() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let api_error = |code: u16| {
            let s: kube::core::Status =
                serde_json::from_value(serde_json::json!({"code": code, "message": "m"})).unwrap();
            kube::Error::Api(Box::new(s))
        };
        let calls = AtomicU32::new(0);
        let ok: std::result::Result<u32, _> = retrying(None, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let e = api_error(if n == 0 { 500 } else { 429 });
            async move { if n < 2 { Err(e) } else { Ok(n) } }
        })
        .await;
        assert_eq!(ok.unwrap(), 2);
        let calls = AtomicU32::new(0);
        let err: std::result::Result<(), _> = retrying(None, || {
            calls.fetch_add(1, Ordering::SeqCst);
            let e = api_error(403);
            async move { Err(e) }
        })
        .await;
        assert!(err.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "403 is not retried");
    }
}
