//! The PackageInstall controller: resolves the Package, keeps the App it owns as the Package and the
//! PackageInstall say, and mirrors the App's status.
//!
//! It reconciles on any update of a PackageInstall (labels included: there is no event filter), on any
//! create/update/delete of a Package with a matching refName, and on any update of its App. There is
//! no periodic requeue.

use std::cmp::Ordering;
use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Value, json};

use super::queue::{Handler, Key, key_of};
use super::{Shared, status, write_status};
use crate::api::{ListOptions, Status, WatchEvent, WriteOptions, gvr};

/// PackageInstalls create Apps with this sync period unless they set their own.
pub const DEFAULT_SYNC_PERIOD: &str = "10m";

pub(crate) fn on_package_event(shared: &Arc<Shared>) -> Handler {
    let shared = Arc::clone(shared);
    Arc::new(move |event| {
        let shared = Arc::clone(&shared);
        async move {
            let package = match &event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    o.clone()
                }
                WatchEvent::Error(_) => return,
            };
            let ref_name = package["spec"]["refName"].as_str().unwrap_or_default();
            let namespace = package["metadata"]["namespace"].as_str();
            let Ok(installs) = shared
                .controller
                .list(gvr::PACKAGE_INSTALLS, namespace, &ListOptions::default())
                .await
            else {
                return;
            };
            for install in installs
                .items
                .iter()
                .filter(|i| i["spec"]["packageRef"]["refName"] == ref_name)
            {
                shared.package_installs.add(key_of(install));
            }
        }
        .boxed()
    })
}

pub(crate) fn on_app_event(shared: &Arc<Shared>) -> Handler {
    let queue = Arc::clone(&shared.package_installs);
    Arc::new(move |event| {
        if let WatchEvent::Modified(app) | WatchEvent::Deleted(app) = &event {
            let owned = app["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|owners| owners.iter().any(|o| o["kind"] == "PackageInstall"));
            if owned {
                queue.add(key_of(app));
            }
        }
        async {}.boxed()
    })
}

pub(crate) async fn reconcile(shared: &Shared, key: &Key) -> Result<(), Status> {
    let client = &shared.controller;
    let install = match client
        .get(gvr::PACKAGE_INSTALLS, Some(&key.0), &key.1)
        .await
    {
        Ok(install) => install,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    if install["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let generation = install["metadata"]["generation"].as_i64().unwrap_or(1);

    let packages = client
        .list(gvr::PACKAGES, Some(&key.0), &ListOptions::default())
        .await?
        .items;
    let package = match select_package(&install, &packages) {
        Ok(package) => package,
        Err(error) => {
            let message = error.to_string();
            write_status(client, gvr::PACKAGE_INSTALLS, key, |o| {
                status::package_install_failed(&o["status"], generation, &message)
            })
            .await?;
            return Ok(());
        }
    };
    let version = package["spec"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let desired = desired_app(&install, package);
    let app = match client.get(gvr::APPS, Some(&key.0), &key.1).await {
        Ok(live) => {
            if live["spec"] == desired["spec"] && annotations_match(&live, &desired) {
                live
            } else {
                let mut update = live.clone();
                update["spec"] = desired["spec"].clone();
                for (k, v) in desired["metadata"]["annotations"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    update["metadata"]["annotations"][k] = v.clone();
                }
                update["metadata"]["ownerReferences"] =
                    desired["metadata"]["ownerReferences"].clone();
                client
                    .update(gvr::APPS, Some(&key.0), update, &WriteOptions::default())
                    .await?
            }
        }
        Err(e) if e.is_not_found() => {
            client
                .create(gvr::APPS, Some(&key.0), desired, &WriteOptions::default())
                .await?
        }
        Err(e) => return Err(e),
    };

    write_status(client, gvr::PACKAGE_INSTALLS, key, |o| {
        status::package_install(&o["status"], Some(&app), generation, &version)
    })
    .await?;
    Ok(())
}

fn annotations_match(live: &Value, desired: &Value) -> bool {
    desired["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| &live["metadata"]["annotations"][k] == v)
}

/// No Package of the PackageInstall's `refName` satisfies its version constraints; `Display` is
/// kapp-controller's message (its version selection's filter chain with the counts at each stage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Expected to find at least one version, but did not (details: all={candidates} -> after-prereleases-filter={candidates} -> after-kapp-controller-version-check={candidates} -> after-constraints-filter=0)"
)]
pub struct NoMatchingVersion {
    /// How many Packages carry the install's `refName`.
    pub candidates: usize,
}

/// The highest version of the PackageInstall's package that its constraints allow.
///
/// # Errors
/// [`NoMatchingVersion`] when none does.
pub fn select_package<'a>(
    install: &Value,
    packages: &'a [Value],
) -> Result<&'a Value, NoMatchingVersion> {
    let ref_name = install["spec"]["packageRef"]["refName"]
        .as_str()
        .unwrap_or_default();
    let constraints = install["spec"]["packageRef"]["versionSelection"]["constraints"]
        .as_str()
        .unwrap_or("")
        .trim();
    let all: Vec<&Value> = packages
        .iter()
        .filter(|p| p["spec"]["refName"] == ref_name)
        .collect();
    let allowed: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|p| {
            let version = p["spec"]["version"].as_str().unwrap_or_default();
            constraints.is_empty()
                || constraints == version
                || constraints
                    .strip_prefix(">=")
                    .is_some_and(|min| compare_versions(version, min.trim()) != Ordering::Less)
        })
        .collect();
    allowed
        .into_iter()
        .max_by(|a, b| {
            compare_versions(
                a["spec"]["version"].as_str().unwrap_or(""),
                b["spec"]["version"].as_str().unwrap_or(""),
            )
        })
        .ok_or(NoMatchingVersion {
            candidates: all.len(),
        })
}

/// Semver order of the release part (`3.5.1` of `3.5.1-embedded+v1.34`), then the text.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let release = |v: &str| -> Vec<u64> {
        v.split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect()
    };
    release(a).cmp(&release(b)).then_with(|| a.cmp(b))
}

/// The App a PackageInstall wants: the Package's App template, with what the PackageInstall sets.
pub fn desired_app(install: &Value, package: &Value) -> Value {
    let metadata = &install["metadata"];
    let mut spec = package["spec"]["template"]["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    let install_spec = &install["spec"];
    spec["serviceAccountName"] = install_spec["serviceAccountName"].clone();
    spec["syncPeriod"] = install_spec
        .get("syncPeriod")
        .cloned()
        .unwrap_or_else(|| json!(DEFAULT_SYNC_PERIOD));
    for flag in ["paused", "canceled", "noopDelete"] {
        match install_spec.get(flag) {
            Some(Value::Bool(true)) => spec[flag] = json!(true),
            _ => {
                if let Some(object) = spec.as_object_mut() {
                    object.remove(flag);
                }
            }
        }
    }
    for field in ["cluster", "defaultNamespace"] {
        if let Some(value) = install_spec.get(field) {
            spec[field] = value.clone();
        }
    }
    let secret_refs: Vec<Value> = install_spec["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["secretRef"]["name"].as_str())
        .map(|name| json!({"secretRef": {"name": name}}))
        .collect();
    // Each values Secret becomes a `valuesFrom` of the first template step.
    let first_engine = spec["template"]
        .as_array_mut()
        .and_then(|t| t.first_mut())
        .and_then(Value::as_object_mut)
        .and_then(|first| first.values_mut().next())
        .and_then(Value::as_object_mut);
    if let Some(engine) = first_engine.filter(|_| !secret_refs.is_empty()) {
        let from = engine.entry("valuesFrom").or_insert_with(|| json!([]));
        if let Some(list) = from.as_array_mut() {
            list.extend(secret_refs);
        }
    }
    json!({
        "apiVersion": "kappctrl.k14s.io/v1alpha1",
        "kind": "App",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "annotations": {
                "packaging.carvel.dev/package-ref-name": package["spec"]["refName"],
                "packaging.carvel.dev/package-version": package["spec"]["version"],
            },
            "ownerReferences": [{
                "apiVersion": "packaging.carvel.dev/v1alpha1",
                "kind": "PackageInstall",
                "name": metadata["name"],
                "uid": metadata["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(version: &str) -> Value {
        json!({
            "metadata": {"name": format!("tkg.vsphere.vmware.com.{version}")},
            "spec": {
                "refName": "tkg.vsphere.vmware.com", "version": version,
                "template": {"spec": {
                    "fetch": [{"imgpkgBundle": {"image": "my-registry.example.com/tkg:1"}}],
                    "template": [{"ytt": {"paths": ["config/"]}}],
                    "deploy": [{"kapp": {}}]
                }}
            }
        })
    }

    fn install(spec: Value) -> Value {
        json!({"metadata": {"name": "svc-tkg.vsphere.vmware.com", "namespace": "vmware-system-supervisor-services", "uid": "u1"}, "spec": spec})
    }

    #[test]
    fn the_highest_allowed_version_is_selected() {
        let packages = vec![
            package("3.4.0"),
            package("3.5.1-embedded+v1.34"),
            json!({"spec": {"refName": "other", "version": "9.0.0"}}),
        ];
        let any = install(json!({"packageRef": {"refName": "tkg.vsphere.vmware.com"}}));
        assert_eq!(
            select_package(&any, &packages).unwrap()["spec"]["version"],
            "3.5.1-embedded+v1.34"
        );
        let pinned = install(
            json!({"packageRef": {"refName": "tkg.vsphere.vmware.com", "versionSelection": {"constraints": "3.4.0"}}}),
        );
        assert_eq!(
            select_package(&pinned, &packages).unwrap()["spec"]["version"],
            "3.4.0"
        );
        let missing = install(
            json!({"packageRef": {"refName": "tkg.vsphere.vmware.com", "versionSelection": {"constraints": "4.0.0"}}}),
        );
        let error = select_package(&missing, &packages).unwrap_err();
        assert_eq!(error, NoMatchingVersion { candidates: 2 });
        assert!(
            error.to_string().starts_with(
                "Expected to find at least one version, but did not (details: all=2 ->"
            ),
            "{error}"
        );
    }

    #[test]
    fn the_app_carries_what_the_package_install_sets() {
        let app = desired_app(
            &install(json!({
                "packageRef": {"refName": "tkg.vsphere.vmware.com"},
                "serviceAccountName": "svc-tkg-sa", "paused": true,
                "values": [{"secretRef": {"name": "svc-tkg-values", "key": "values.yaml"}}]
            })),
            &package("3.5.1"),
        );
        assert_eq!(app["spec"]["paused"], true);
        assert_eq!(app["spec"]["serviceAccountName"], "svc-tkg-sa");
        assert_eq!(app["spec"]["syncPeriod"], "10m");
        assert_eq!(
            app["spec"]["template"][0]["ytt"]["valuesFrom"],
            json!([{"secretRef": {"name": "svc-tkg-values"}}])
        );
        assert_eq!(
            app["metadata"]["ownerReferences"][0]["kind"],
            "PackageInstall"
        );
        assert_eq!(
            app["metadata"]["annotations"]["packaging.carvel.dev/package-version"],
            "3.5.1"
        );
    }

    #[test]
    fn unpausing_the_package_install_removes_paused_from_the_app() {
        let app = desired_app(
            &install(json!({"packageRef": {"refName": "tkg.vsphere.vmware.com"}, "paused": false})),
            &package("3.5.1"),
        );
        assert!(app["spec"].get("paused").is_none());
    }
}
