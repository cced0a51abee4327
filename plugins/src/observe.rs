//! Reading a service: its PackageInstall, App, children (found through kapp's data) and Packages.

use futures::future::try_join_all;
use serde_json::Value;
use supsvc_core::carvel::{App, Package, PackageInstall};
use supsvc_core::fix::Observation;
use supsvc_core::kapp::{self, LABEL_APP, LabelSelector};

use crate::api::{self, SupervisorApi};
use crate::error::{Failure, Result};

/// Where a service's children are, decided once per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Children {
    /// Label selector of the parent App's objects (`kapp.k14s.io/app=<id>`); `None` means every
    /// PackageInstall of `namespaces` (from `--domain-namespace`).
    pub selector: Option<String>,
    /// Domain namespaces to read; empty means all namespaces.
    pub namespaces: Vec<String>,
}

/// Reads a view, turning a malformed object into an explained failure.
fn view<T>(
    value: &Value,
    read: fn(&Value) -> std::result::Result<T, supsvc_core::carvel::ViewError>,
) -> Result<T> {
    read(value).map_err(|e| {
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        Failure::new(
            format!("cannot read {name}: {e}"),
            "the object does not look like kapp-controller's; check it with kubectl get -o yaml",
        )
    })
}

/// The full name of a service given by the unique short form its domain namespace carries
/// (`svc-harbor` for `svc-harbor.tanzu.vmware.com`, as the storage guard's advice names it); any
/// other name is returned as it is, for [`parent`] to explain.
pub async fn canonical_service(
    supervisor: &SupervisorApi,
    namespace: &str,
    service: &str,
) -> Result<String> {
    if supervisor
        .get(&api::packageinstalls(), namespace, service)
        .await?
        .is_some()
    {
        return Ok(service.to_owned());
    }
    let prefix = format!("{service}.");
    let names = supervisor
        .list(&api::packageinstalls(), Some(namespace), None)
        .await
        .unwrap_or_default();
    let matching: Vec<&str> = names
        .iter()
        .filter_map(|v| v.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|name| name.starts_with(&prefix))
        .collect();
    Ok(match matching.as_slice() {
        [only] => (*only).to_owned(),
        _ => service.to_owned(),
    })
}

/// The service's PackageInstall, or an explained failure listing the services there are.
pub async fn parent(
    supervisor: &SupervisorApi,
    namespace: &str,
    service: &str,
) -> Result<PackageInstall> {
    if let Some(v) = supervisor
        .get(&api::packageinstalls(), namespace, service)
        .await?
    {
        return view(&v, PackageInstall::from_value);
    }
    let names: Vec<String> = supervisor
        .list(&api::packageinstalls(), Some(namespace), None)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|v| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let hint = if names.is_empty() {
        format!(
            "there is no PackageInstall in namespace {namespace}: is this a Supervisor, and is -n right?"
        )
    } else {
        format!("the services in {namespace} are: {}", names.join(", "))
    };
    Err(Failure::new(
        format!(
            "service \"{service}\" not found: no PackageInstall {service} in namespace {namespace}"
        ),
        hint,
    ))
}

pub async fn app(supervisor: &SupervisorApi, namespace: &str, name: &str) -> Result<Option<App>> {
    match supervisor.get(&api::apps(), namespace, name).await? {
        Some(v) => view(&v, App::from_value).map(Some),
        None => Ok(None),
    }
}

/// Finds where the children are: the App's `associatedResources` (label and namespaces), else kapp's
/// record ConfigMap next to the App, unless `--domain-namespace` names the namespaces.
pub async fn locate_children(
    supervisor: &SupervisorApi,
    app: Option<&App>,
    parent_ns: &str,
    domain_namespaces: &[String],
) -> Result<Children> {
    if !domain_namespaces.is_empty() {
        return Ok(Children {
            selector: None,
            namespaces: domain_namespaces.to_vec(),
        });
    }
    let Some(app) = app else {
        return Ok(Children {
            selector: None,
            namespaces: Vec::new(),
        });
    };
    if let Some(sel) = kapp::app_selector(app) {
        let namespaces = app
            .associated_resources()
            .map(|a| {
                a.namespaces
                    .iter()
                    .filter(|n| n.as_str() != parent_ns && !n.is_empty())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Children {
            selector: Some(sel.to_string()),
            namespaces,
        });
    }
    // kapp's own record of the app: a ConfigMap labelled kapp.k14s.io/is-app in the App's namespace.
    let records = supervisor
        .list(
            &api::configmaps(),
            Some(parent_ns),
            Some(kapp::LABEL_IS_APP),
        )
        .await?;
    let name = &app.metadata.name;
    let value = records
        .iter()
        .filter(|cm| {
            let n = cm
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            n == format!("{name}.app") || n == format!("{name}-ctrl.app")
        })
        .find_map(kapp::app_record_label_value);
    Ok(Children {
        selector: value.map(|v| {
            LabelSelector {
                key: LABEL_APP.into(),
                value: v,
            }
            .to_string()
        }),
        namespaces: Vec::new(),
    })
}

/// Reads the children: one LIST per domain namespace (or one across all), whatever their number.
pub async fn children(
    supervisor: &SupervisorApi,
    where_: &Children,
    parent: &PackageInstall,
) -> Result<Vec<PackageInstall>> {
    if where_.selector.is_none() && where_.namespaces.is_empty() {
        return Ok(Vec::new());
    }
    let resource = api::packageinstalls();
    let lists = if where_.namespaces.is_empty() {
        vec![
            supervisor
                .list(&resource, None, where_.selector.as_deref())
                .await?,
        ]
    } else {
        try_join_all(
            where_
                .namespaces
                .iter()
                .map(|ns| supervisor.list(&resource, Some(ns), where_.selector.as_deref())),
        )
        .await?
    };
    let all: Vec<PackageInstall> = lists
        .iter()
        .flatten()
        .map(|v| view(v, PackageInstall::from_value))
        .collect::<Result<_>>()?;
    let mut found: Vec<PackageInstall> =
        match where_.selector.as_deref().and_then(LabelSelector::parse) {
            // The children kapp applied (kapp::owned_by_kapp, the guard's own rule).
            Some(sel) => kapp::children(&sel, parent, &all)
                .into_iter()
                .filter(|c| {
                    kapp::owned_by_kapp_maps(&c.metadata.labels, &c.metadata.annotations).is_some()
                })
                .cloned()
                .collect(),
            None => all
                .into_iter()
                .filter(|c| {
                    !(c.metadata.name == parent.metadata.name
                        && c.metadata.namespace == parent.metadata.namespace)
                })
                .collect(),
        };
    found.sort_by(|a, b| {
        (a.metadata.ns(), &a.metadata.name).cmp(&(b.metadata.ns(), &b.metadata.name))
    });
    Ok(found)
}

/// One observation for `fix`: parent, App and children, read fresh.
pub async fn observation(
    supervisor: &SupervisorApi,
    namespace: &str,
    service: &str,
    where_: &Children,
) -> Result<Observation> {
    let parent_fut = parent(supervisor, namespace, service);
    let app_fut = app(supervisor, namespace, service);
    let (parent, app) = futures::try_join!(parent_fut, app_fut)?;
    let children = children(supervisor, where_, &parent).await?;
    Ok(Observation {
        parent,
        app,
        children,
    })
}

/// The Packages of the parent's and the children's namespaces.
pub async fn packages(supervisor: &SupervisorApi, namespaces: &[String]) -> Result<Vec<Package>> {
    let resource = api::packages();
    let lists = try_join_all(
        namespaces
            .iter()
            .map(|ns| supervisor.list(&resource, Some(ns), None)),
    )
    .await?;
    lists
        .iter()
        .flatten()
        .map(|v| view(v, Package::from_value))
        .collect()
}

/// What `diagnose` reads and what `fix` decides its preconditions from: one and the same observation.
pub struct Observed {
    /// Parent, App, children and the Packages of their namespaces.
    pub input: supsvc_core::diagnose::Input,
    /// Where the children are.
    pub children: Children,
    /// The children's namespaces (and any `--domain-namespace`), sorted and distinct.
    pub domain_namespaces: Vec<String>,
}

impl Observed {
    /// The part `fix`'s steps read.
    pub fn observation(&self) -> Observation {
        Observation {
            parent: self.input.parent.clone(),
            app: self.input.app.clone(),
            children: self.input.children.clone(),
        }
    }
}

/// Reads a service as `diagnose` does: parent, App, children (from kapp's data unless
/// `domain_namespaces` names them) and the Packages of the parent's and children's namespaces.
pub async fn service(
    supervisor: &SupervisorApi,
    namespace: &str,
    service: &str,
    domain_namespaces: &[String],
) -> Result<Observed> {
    let parent = parent(supervisor, namespace, service).await?;
    let app = app(supervisor, namespace, service).await?;
    let where_ = locate_children(supervisor, app.as_ref(), namespace, domain_namespaces).await?;
    let children = children(supervisor, &where_, &parent).await?;
    let mut domains: Vec<String> = children
        .iter()
        .map(|c| c.metadata.ns().to_owned())
        .collect();
    domains.extend(where_.namespaces.iter().cloned());
    domains.sort();
    domains.dedup();
    let mut package_namespaces = domains.clone();
    package_namespaces.push(namespace.to_owned());
    let packages = packages(supervisor, &package_namespaces).await?;
    Ok(Observed {
        input: supsvc_core::diagnose::Input {
            parent,
            app,
            children,
            packages,
        },
        children: where_,
        domain_namespaces: domains,
    })
}
