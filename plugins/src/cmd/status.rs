//! `kubectl supsvc status`: every Supervisor Service, its package, version and state.

use std::collections::BTreeMap;

use serde::Serialize;
use supsvc_core::carvel::{self, App, PackageInstall};

use supsvc_core::vcenter::{self as core_vc, InstallSummary};

use crate::api::{self, SupervisorApi};
use crate::cli::Output;
use crate::cli::StatusArgs;
use crate::cmd::Session;
use crate::error::{Failure, Result};
use crate::output::{self, age, render, seconds_since, table, truncate};
use crate::vcenter::VcenterOptions;
use crate::vcenter::{Vcenter, read_password};

/// One row of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub name: String,
    pub package: String,
    pub version: String,
    pub state: String,
    pub description: String,
    /// RFC 3339: when the last deploy started, else when the service was created.
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub useful_error_message: Option<String>,
    /// vCenter's side, when a vCenter is given: `None` there means vCenter has no record of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcenter: Option<VcenterSide>,
}

/// What vCenter holds for a service on this Supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VcenterSide {
    /// `false`: vCenter has no install record of this service on this Supervisor.
    pub installed: bool,
    pub desired_version: Option<String>,
    pub current_version: Option<String>,
    pub config_status: Option<String>,
}

/// Adds vCenter's side to each row: the record whose service ID is the PackageInstall's
/// (`svc-<id>`).
pub fn join_vcenter(rows: &mut [Row], records: &[InstallSummary]) {
    for row in rows {
        let id = core_vc::service_id(&row.name);
        let record = records.iter().find(|r| r.supervisor_service == id);
        row.vcenter = Some(VcenterSide {
            installed: record.is_some(),
            desired_version: record.map(|r| r.desired_version.clone()),
            current_version: record.and_then(|r| r.current_version.clone()),
            config_status: record.map(|r| r.config_status.to_string()),
        });
    }
}

const VCENTER_HEADER: [&str; 3] = ["VC-DESIRED", "VC-CURRENT", "VC-STATUS"];

/// Rows from the PackageInstalls and their Apps (for the deploy time).
pub fn rows(pkgis: &[PackageInstall], apps: &[App]) -> Vec<Row> {
    let apps: BTreeMap<&str, &App> = apps.iter().map(|a| (a.metadata.name.as_str(), a)).collect();
    let mut rows: Vec<Row> = pkgis
        .iter()
        .map(|p| {
            let since = apps
                .get(p.metadata.name.as_str())
                .and_then(|a| a.status.deploy.as_ref()?.started_at.clone())
                .or_else(|| carvel::since(p).map(str::to_owned));
            Row {
                name: p.metadata.name.clone(),
                package: p.spec.package_ref.ref_name.clone(),
                version: p.status.version.clone().unwrap_or_default(),
                state: carvel::state(p).to_string(),
                description: p.status.friendly_description.clone().unwrap_or_default(),
                since,
                useful_error_message: p
                    .status
                    .useful_error_message
                    .clone()
                    .filter(|m| !m.is_empty()),
                vcenter: None,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

const HEADER: [&str; 6] = [
    "NAME",
    "PACKAGE",
    "VERSION",
    "STATE",
    "DESCRIPTION",
    "SINCE",
];

fn cells(row: &Row, now: jiff::Timestamp) -> Vec<String> {
    let mut cells = vec![
        row.name.clone(),
        row.package.clone(),
        row.version.clone(),
        row.state.clone(),
        truncate(&row.description, 60),
        row.since
            .as_deref()
            .and_then(|s| seconds_since(s, now))
            .map(age)
            .unwrap_or_else(|| "-".into()),
    ];
    if let Some(vc) = &row.vcenter {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        cells.insert(3, or_dash(&vc.desired_version));
        cells.insert(4, or_dash(&vc.current_version));
        cells.insert(
            5,
            if vc.installed {
                or_dash(&vc.config_status)
            } else {
                "not in vCenter".into()
            },
        );
    }
    cells
}

/// The table; with vCenter's columns after VERSION when the rows carry vCenter's side.
pub fn render_table(rows: &[Row], now: jiff::Timestamp) -> String {
    let mut header: Vec<&str> = HEADER.to_vec();
    if rows.iter().any(|r| r.vcenter.is_some()) {
        for (i, h) in VCENTER_HEADER.iter().enumerate() {
            header.insert(3 + i, h);
        }
    }
    table(
        &header,
        &rows.iter().map(|r| cells(r, now)).collect::<Vec<_>>(),
    )
}

/// vCenter's install records of the kubeconfig's Supervisor.
async fn vcenter_records(
    supervisor: &SupervisorApi,
    args: &StatusOptions,
    url: &str,
) -> Result<(String, Vec<InstallSummary>)> {
    let password = read_password(&args.vcenter, false)?;
    let vc = Vcenter::connect(&args.vcenter, url, password).await?;
    let result = async {
        let place = vc.target(&args.vcenter, &supervisor.cluster.server).await?;
        let body: serde_json::Value = vc
            .get(&core_vc::install_path(place.flavour, &place.id, None))
            .await?;
        Ok((
            format!("vCenter {} ({}, {})", vc.url, vc.version, place.describe()),
            core_vc::install_summaries(&body),
        ))
    }
    .await;
    vc.logout().await;
    result
}

fn rows_of(pkgis: &[serde_json::Value], apps: &[serde_json::Value]) -> Vec<Row> {
    let pkgis: Vec<PackageInstall> = pkgis
        .iter()
        .filter_map(|v| PackageInstall::from_value(v).ok())
        .collect();
    let apps: Vec<App> = apps
        .iter()
        .filter_map(|v| App::from_value(v).ok())
        .collect();
    rows(&pkgis, &apps)
}

async fn read(supervisor: &SupervisorApi, namespace: &str) -> Result<Vec<Row>> {
    let (pkgi_resource, app_resource) = (api::packageinstalls(), api::apps());
    let (pkgis, apps) = futures::try_join!(
        supervisor.list(&pkgi_resource, Some(namespace), None),
        supervisor.list(&app_resource, Some(namespace), None),
    )?;
    Ok(rows_of(&pkgis, &apps))
}

/// The rows of `next` that are new or differ from `before` in what `status -w` shows.
fn changed(before: &[Row], next: &[Row]) -> Vec<Row> {
    next.iter()
        .filter(|r| {
            !before.iter().any(|o| {
                o.name == r.name
                    && o.state == r.state
                    && o.description == r.description
                    && o.version == r.version
            })
        })
        .cloned()
        .collect()
}
/// What `status` is asked to do: built from clap's [`crate::cli::StatusArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Output format.
    pub output: Option<Output>,
    /// After listing, print each change as it happens.
    pub watch: bool,
    /// Where the service's desired state lives, and how to reach it.
    pub vcenter: VcenterOptions,
}

impl From<&StatusArgs> for StatusOptions {
    fn from(args: &StatusArgs) -> Self {
        StatusOptions {
            output: args.output,
            watch: args.watch,
            vcenter: VcenterOptions::from(&args.vcenter),
        }
    }
}

pub async fn run(session: &Session, args: &StatusOptions) -> Result<()> {
    let (supervisor, namespace) = (&session.supervisor, session.namespace.as_str());
    let mut rows = read(supervisor, namespace).await?;
    if let Some(url) = &args.vcenter.vcenter {
        let (from, records) = vcenter_records(supervisor, args, url).await?;
        join_vcenter(&mut rows, &records);
        if args.output.is_none() {
            outln!("{from}: desired/current version and config_status as vCenter holds them");
        }
    }
    match args.output {
        Some(format) => out!("{}", render(format, &rows)?),
        None if rows.is_empty() => {
            errln!("No Supervisor Services (PackageInstalls) in namespace {namespace}.")
        }
        None => out!("{}", render_table(&rows, jiff::Timestamp::now())),
    }
    if args.watch {
        watch(supervisor, namespace, args, rows).await?;
    }
    Ok(())
}

/// `status -w`: a line for each row that changes, as `kubectl get -w` prints, driven by watches of
/// the PackageInstalls and Apps (no polling). Ends on Ctrl-C (exit 130, quietly, as kubectl's watch
/// does) or when stdout's reader has gone.
async fn watch(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &StatusOptions,
    mut rows: Vec<Row>,
) -> Result<()> {
    use futures::StreamExt;

    enum Update {
        PackageInstalls(Vec<serde_json::Value>),
        Apps(Vec<serde_json::Value>),
    }
    let pkgis = api::follow(supervisor, &api::packageinstalls(), namespace)
        .map(|r| r.map(Update::PackageInstalls));
    let apps = api::follow(supervisor, &api::apps(), namespace).map(|r| r.map(Update::Apps));
    let mut updates = std::pin::pin!(futures::stream::select(pkgis, apps));
    let (mut held_pkgis, mut held_apps) = (None, None);
    let mut last_error: Option<String> = None;
    let interrupted = tokio::signal::ctrl_c();
    let mut interrupted = std::pin::pin!(interrupted);
    while !output::stdout_closed() {
        let update = tokio::select! {
            _ = &mut interrupted => return Err(Failure::interrupted_quietly()),
            update = updates.next() => update,
        };
        match update {
            None => return Ok(()),
            Some(Err(e)) => {
                // Retried with backoff; said once per distinct error, not on every attempt.
                let text = crate::error::chain(&e);
                if last_error.as_deref() != Some(text.as_str()) {
                    errln!("warning: watch interrupted, retrying: {text}");
                    last_error = Some(text);
                }
                continue;
            }
            Some(Ok(Update::PackageInstalls(list))) => held_pkgis = Some(list),
            Some(Ok(Update::Apps(list))) => held_apps = Some(list),
        }
        last_error = None;
        let (Some(pkgis), Some(apps)) = (&held_pkgis, &held_apps) else {
            continue;
        };
        let next = rows_of(pkgis, apps);
        for row in changed(&rows, &next) {
            match args.output {
                Some(format) => out!("{}", render(format, &row)?),
                None => outln!(
                    "{} {}",
                    output::clock(),
                    cells(&row, jiff::Timestamp::now()).join("   ")
                ),
            }
        }
        rows = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(name: &str, state: &str, description: &str) -> Row {
        Row {
            name: name.into(),
            package: "p".into(),
            version: "1.0.0".into(),
            state: state.into(),
            description: description.into(),
            since: Some("2026-11-22T04:00:00Z".into()),
            useful_error_message: None,
            vcenter: None,
        }
    }

    #[test]
    fn a_watch_line_for_each_row_that_changed_or_appeared() {
        let before = vec![
            row("a", "Reconcile succeeded", "ok"),
            row("b", "Reconciling", "x"),
        ];
        let mut moved = before.clone();
        moved[0].since = Some("2026-11-22T05:00:00Z".into());
        assert!(
            changed(&before, &moved).is_empty(),
            "a new deploy time alone is not a change a watch line shows"
        );
        let next = vec![
            row("a", "Reconcile succeeded", "ok"),
            row("b", "Reconcile failed", "boom"),
            row("c", "Reconciling", ""),
        ];
        let lines: Vec<String> = changed(&before, &next)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(lines, ["b", "c"]);
    }

    #[test]
    fn rows_from_pkgis_and_apps() {
        let pkgi = |name: &str, status: serde_json::Value, spec: serde_json::Value| {
            PackageInstall::from_value(&json!({"metadata": {"name": name, "generation": 1, "creationTimestamp": "2026-11-22T04:00:00Z"},
                "spec": spec, "status": status})).unwrap()
        };
        let pkgis = vec![
            pkgi(
                "svc-tkg.vsphere.vmware.com",
                json!({"version": "3.5.1", "friendlyDescription": "Reconcile failed: kapp: Error: waiting on reconcile packageinstall/tkg-controller",
                "usefulErrorMessage": "boom", "observedGeneration": 1, "conditions": [{"type": "ReconcileFailed", "status": "True"}]}),
                json!({"packageRef": {"refName": "tkg.vsphere.vmware.com"}}),
            ),
            pkgi(
                "svc-harbor",
                json!({"friendlyDescription": "Canceled/paused"}),
                json!({"paused": true, "packageRef": {"refName": "harbor"}}),
            ),
        ];
        let apps = vec![
            App::from_value(&json!({"metadata": {"name": "svc-tkg.vsphere.vmware.com"},
            "status": {"deploy": {"startedAt": "2026-11-22T04:58:00Z"}}}))
            .unwrap(),
        ];
        let rows = rows(&pkgis, &apps);
        assert_eq!(rows[0].name, "svc-harbor");
        assert_eq!(rows[0].state, "Paused");
        assert_eq!(rows[0].since.as_deref(), Some("2026-11-22T04:00:00Z"));
        assert_eq!(rows[1].state, "Reconcile failed");
        assert_eq!(rows[1].since.as_deref(), Some("2026-11-22T04:58:00Z"));
        let now: jiff::Timestamp = "2026-11-22T05:00:00Z".parse().unwrap();
        let t = render_table(&rows, now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].contains("   Paused   ") && lines[1].ends_with("   1h"),
            "{t}"
        );
        assert!(
            lines[2].contains("3.5.1") && lines[2].ends_with("2m"),
            "{t}"
        );
        assert!(lines[2].contains("..."), "long descriptions are cut: {t}");
        let j = serde_json::to_value(&rows).unwrap();
        assert_eq!(j[1]["usefulErrorMessage"], "boom");
        assert!(j[0].get("usefulErrorMessage").is_none());
    }
}
