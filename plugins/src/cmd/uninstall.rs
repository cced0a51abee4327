//! `uninstall SERVICE [--unregister] [--all-supervisors]`: remove a Supervisor Service through
//! vCenter, the lifecycle blog's three steps in order: (1) deactivate the service (no new installs;
//! skipped while another Supervisor keeps it), (2) uninstall it from the kubeconfig's Supervisor, and
//! with `--all-supervisors` from every other Supervisor of this vCenter that has it, one after
//! another, each waited through `REMOVING`, (3) with `--unregister`, deactivate and delete its
//! versions and delete the service from vCenter.
//!
//! Other Supervisors are found through vCenter's own listings (`clusters` on 7.0.3/8.x,
//! `supervisors/summaries` on 9.x) and each one's install list (`…/supervisor-services`). Without
//! `--all-supervisors`, the ones that keep the service are named, and `--unregister` is refused
//! before any write (vCenter refuses to delete a version installed anywhere).
//!
//! Before any write: refuses a service that must stay installed (`must_be_installed`, Core services);
//! lists the data at stake (the PersistentVolumeClaims in the service's namespace, deleted with it,
//! as the blog's Harbor reinstall shows); prints the plan; `--dry-run` stops there; otherwise asks for
//! the service's name (or `-y`). Each step is decided by [`supsvc_core::vcenter::next_uninstall_step`]
//! from what vCenter reports, so a rerun resumes.

use std::io::IsTerminal as _;

use http::Method;
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::Value;
use supsvc_core::vcenter::{
    self as core_vc, Flavour, OtherInstall, UninstallFacts, UninstallStep, UninstallTarget,
};
use tokio::time::Instant;

use crate::api::SupervisorApi;
use crate::cli::UninstallArgs;
use crate::cmd::Session;
use crate::cmd::objects;
use crate::error::{Exit, Failure, Result};
use crate::output::clock;
use crate::vcenter::VcenterOptions;
use crate::vcenter::{Target, Vcenter, http_failure_parsed, read_password};
use std::time::Duration;

fn line(text: &str) {
    outln!("{} {text}", clock());
}
/// What `uninstall` is asked to do: built from clap's [`crate::cli::UninstallArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    /// The Supervisor Service (its PackageInstall's name, or its service ID).
    pub service: String,
    /// Also unregister its versions and the service from vCenter (the blog's step 3).
    pub unregister: bool,
    /// Remove it from every Supervisor of this vCenter that has it.
    pub all_supervisors: bool,
    /// Do not ask for the service's name.
    pub yes: bool,
    /// Print the checks and the plan; change nothing.
    pub dry_run: bool,
    /// How long to wait for vCenter to remove it.
    pub timeout: Duration,
    /// How often to read the service while waiting.
    pub poll_interval: Duration,
    /// Where the service's desired state lives, and how to reach it.
    pub vcenter: VcenterOptions,
}

impl From<&UninstallArgs> for UninstallOptions {
    fn from(args: &UninstallArgs) -> Self {
        UninstallOptions {
            service: args.service.clone(),
            unregister: args.unregister,
            all_supervisors: args.all_supervisors,
            yes: args.yes,
            dry_run: args.dry_run,
            timeout: args.timeout,
            poll_interval: args.poll_interval,
            vcenter: VcenterOptions::from(&args.vcenter),
        }
    }
}

pub async fn run(session: &Session, args: &UninstallOptions) -> Result<()> {
    let supervisor = &session.supervisor;
    let Some(url) = args.vcenter.vcenter.clone() else {
        return Err(Failure::usage(
            format!(
                "uninstall goes through vCenter, where {} is installed from: no --vcenter given",
                args.service
            ),
            "give --vcenter https://<vcenter> (or set SUPSVC_VCENTER)",
        ));
    };
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "uninstall asks for the service's name to confirm and there is no terminal to ask on",
            "pass -y to uninstall without asking, or --dry-run to see the plan",
        ));
    }
    let service_id = core_vc::service_id(&args.service).to_owned();
    let password = read_password(&args.vcenter, false)?;
    let vc = Vcenter::connect(&args.vcenter, &url, password).await?;
    let result = uninstall(supervisor, args, &vc, &service_id).await;
    vc.logout().await;
    result
}

/// The other Supervisors of this vCenter: `(install-route id, name)`, from `GET …/clusters`
/// (`cluster`, `cluster_name`) on 7.0.3/8.x or `GET …/supervisors/summaries` (`supervisor`,
/// `info.name`) on 9.x, without the kubeconfig's.
async fn other_supervisors(vc: &Vcenter, place: &Target) -> Result<Vec<(String, String)>> {
    let all: Vec<(String, String)> = match place.flavour {
        Flavour::Cluster => {
            let clusters: Vec<Value> = vc
                .get(&format!("{}/clusters", core_vc::NAMESPACE_MANAGEMENT))
                .await?;
            clusters
                .iter()
                .filter_map(|c| {
                    let id = c["cluster"].as_str()?.to_owned();
                    let name = c["cluster_name"].as_str().unwrap_or(&id).to_owned();
                    Some((id, name))
                })
                .collect()
        }
        Flavour::Supervisor => {
            let summaries: Value = vc
                .get(&format!(
                    "{}/supervisors/summaries",
                    core_vc::NAMESPACE_MANAGEMENT
                ))
                .await?;
            summaries["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    let id = i["supervisor"].as_str()?.to_owned();
                    let name = i["info"]["name"].as_str().unwrap_or(&id).to_owned();
                    Some((id, name))
                })
                .collect()
        }
    };
    Ok(all.into_iter().filter(|(id, _)| *id != place.id).collect())
}

/// What the command was asked, and where: the parts of the facts that do not change while it runs.
struct Scope<'a> {
    place: &'a Target,
    others: &'a [(String, String)],
    service_id: &'a str,
    unregister: bool,
    all_supervisors: bool,
}

/// What vCenter reports now; also the install record's service namespace.
async fn facts(vc: &Vcenter, scope: &Scope<'_>) -> Result<(UninstallFacts, Option<String>)> {
    let (place, service_id) = (scope.place, scope.service_id);
    let mut f = UninstallFacts {
        unregister: scope.unregister,
        all_supervisors: scope.all_supervisors,
        ..Default::default()
    };
    for (id, name) in scope.others {
        let path = core_vc::install_path(place.flavour, id, None);
        let list: Value = vc.get(&path).await?;
        if let Some(s) = core_vc::install_summaries(&list)
            .into_iter()
            .find(|s| s.supervisor_service == service_id)
        {
            f.elsewhere.push(OtherInstall {
                id: id.clone(),
                name: name.clone(),
                status: s.config_status,
            });
        }
    }
    let path = core_vc::catalog_path(service_id, None);
    match vc.try_request(Method::GET, &path, None).await? {
        Ok(bytes) => {
            let info: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            f.service_activated = Some(info["state"] == "ACTIVATED");
            f.must_be_installed = info["must_be_installed"] == true;
            let versions: Vec<Value> = vc.get(&format!("{path}/versions")).await?;
            f.versions = versions
                .iter()
                .filter_map(|v| {
                    Some((v["version"].as_str()?.to_owned(), v["state"] == "ACTIVATED"))
                })
                .collect();
        }
        Err(e) if e.status == 404 => {}
        Err(e) => return Err(http_failure_parsed(&format!("GET {path}"), &vc.url, &e)),
    }
    let record = vc.record(place, service_id).await?;
    f.installed = record.as_ref().map(|r| r.config_status);
    Ok((f, record.and_then(|r| r.service_namespace)))
}

async fn uninstall(
    supervisor: &SupervisorApi,
    args: &UninstallOptions,
    vc: &Vcenter,
    service_id: &str,
) -> Result<()> {
    let place = vc.target(&args.vcenter, &supervisor.cluster.server).await?;
    let others = other_supervisors(vc, &place).await?;
    let scope = Scope {
        place: &place,
        others: &others,
        service_id,
        unregister: args.unregister,
        all_supervisors: args.all_supervisors,
    };
    let (mut f, service_ns) = facts(vc, &scope).await?;
    let name_of = |id: &str| {
        others
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| format!("{} {n} ({id})", kind(place.flavour)))
            .unwrap_or_else(|| id.to_owned())
    };
    let where_ = |t: &UninstallTarget| match t {
        UninstallTarget::This => place.describe(),
        UninstallTarget::Other(id) => name_of(id),
    };
    let first = core_vc::next_uninstall_step(&f);
    if let UninstallStep::Refuse(why) = &first {
        return Err(Failure::new(
            format!("{service_id}: {why}; nothing was changed"),
            if f.must_be_installed {
                "Core services are managed by vCenter's own lifecycle; nothing to do here"
                    .to_owned()
            } else if f.unregister && f.stays_elsewhere() {
                "run again with --all-supervisors --unregister to remove it everywhere, or without --unregister to remove it from this Supervisor only".to_owned()
            } else {
                "check the service ID (`kubectl supsvc status`); the ID is the PackageInstall name without svc-".to_owned()
            },
        ));
    }
    let kept = |f: &UninstallFacts| {
        f.elsewhere
            .iter()
            .map(|o| format!("{} {} ({})", kind(place.flavour), o.name, o.status))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if first == UninstallStep::Done {
        outln!(
            "{service_id}: nothing left to do on {} (not installed{}).",
            place.describe(),
            if args.unregister {
                ", not registered"
            } else {
                ""
            }
        );
        if f.stays_elsewhere() {
            outln!(
                "  still installed on: {}; --all-supervisors removes it there too",
                kept(&f)
            );
        }
        return Ok(());
    }

    // The data at stake: the PVCs of the service's namespace go with the service, and so do the
    // objects of the kinds its package installed (their CRDs go with it).
    let pvcs = match &service_ns {
        Some(ns) => supervisor.list(&objects::pvcs(), Some(ns), None).await?,
        None => Vec::new(),
    };
    let custom = custom_resources(supervisor, service_id).await?;
    outln!(
        "Plan: uninstall {service_id} from {} through vCenter {}",
        place.describe(),
        vc.url
    );
    let state = |b: bool| if b { "ACTIVATED" } else { "DEACTIVATED" };
    if f.stays_elsewhere() {
        outln!(
            "  1. (skipped: the service stays ACTIVATED, installed on other Supervisors too: {})",
            kept(&f)
        );
    } else {
        outln!(
            "  1. deactivate the service (now {}): no new installs on any Supervisor",
            f.service_activated.map(state).unwrap_or("not registered")
        );
    }
    outln!(
        "  2. remove it from {} (now {}) and wait through REMOVING",
        place.describe(),
        f.installed
            .map(|s| s.to_string())
            .unwrap_or_else(|| "not installed".into())
    );
    if f.all_supervisors {
        for o in &f.elsewhere {
            outln!(
                "     then from {} (now {}) and wait through REMOVING",
                name_of(&o.id),
                o.status
            );
        }
    } else if !f.elsewhere.is_empty() {
        outln!(
            "     it stays on {}: only this Supervisor is asked (--all-supervisors removes it everywhere)",
            kept(&f)
        );
    }
    if args.unregister {
        let versions: Vec<String> = f.versions.iter().map(|(v, _)| v.clone()).collect();
        outln!(
            "  3. unregister versions {} and the service from vCenter",
            if versions.is_empty() {
                "(none)".to_owned()
            } else {
                versions.join(", ")
            }
        );
    } else {
        outln!("  3. (skipped: without --unregister the service stays registered in vCenter)");
    }
    if let Some(ns) = &service_ns {
        outln!("  lost with the service's namespace {ns}:");
        if pvcs.is_empty() {
            outln!("    no PersistentVolumeClaims");
        }
        for p in &pvcs {
            outln!(
                "    pvc {}/{} {} (its data is deleted)",
                ns,
                p["metadata"]["name"].as_str().unwrap_or_default(),
                p["spec"]["resources"]["requests"]["storage"]
                    .as_str()
                    .unwrap_or_default()
            );
        }
    }
    match &custom {
        CustomResources::Found(found) if found.is_empty() => {
            outln!("  the service's package installed no CustomResourceDefinitions");
        }
        CustomResources::Found(found) => {
            outln!(
                "  lost with the kinds the service's package installed (their CRDs go with it):"
            );
            for (k, objects) in found {
                outln!(
                    "    {} ({}/{} {}): {} object(s)",
                    k.name,
                    k.group,
                    k.version,
                    k.kind,
                    objects.len()
                );
                for o in objects.iter().take(LISTED) {
                    outln!("      {o}");
                }
                if objects.len() > LISTED {
                    outln!("      … and {} more", objects.len() - LISTED);
                }
            }
        }
        CustomResources::Unknown(why) => {
            outln!("  custom resources of the service's kinds: not listed ({why})");
        }
    }
    outln!(
        "  objects the service's operators created elsewhere are not deleted: they are orphaned"
    );
    if args.dry_run {
        outln!("Dry run: nothing was changed in vCenter.");
        return Ok(());
    }
    if !args.yes {
        let answer = crate::output::prompt(&format!(
            "Type the service's name ({service_id}) to uninstall it: "
        ));
        if answer.trim() != service_id {
            outln!("Cancelled: nothing was changed.");
            return Ok(());
        }
    }

    let deadline = Instant::now() + args.timeout;
    let mut last = String::new();
    loop {
        let step = core_vc::next_uninstall_step(&f);
        let catalog = core_vc::catalog_path(service_id, None);
        let (method, path, said) = match &step {
            UninstallStep::Done => {
                let also = if args.all_supervisors && !others.is_empty() {
                    " and every other Supervisor".to_owned()
                } else {
                    String::new()
                };
                outln!(
                    "Succeeded: {service_id} is uninstalled from {}{also}{}.",
                    place.describe(),
                    if args.unregister {
                        " and unregistered from vCenter".to_owned()
                    } else if f.stays_elsewhere() {
                        format!(
                            "; it stays installed (and ACTIVATED) on {}; --all-supervisors removes it there too",
                            kept(&f)
                        )
                    } else {
                        "; it stays registered (DEACTIVATED) in vCenter".to_owned()
                    }
                );
                return Ok(());
            }
            UninstallStep::Refuse(why) => {
                return Err(Failure::new(
                    format!("{service_id}: {why}"),
                    "run again to resume",
                ));
            }
            UninstallStep::Deactivate => (
                Method::PATCH,
                format!("{catalog}?action=deactivate"),
                "step 1: deactivated the service".to_owned(),
            ),
            UninstallStep::Remove(target) => (
                Method::DELETE,
                match target {
                    UninstallTarget::This => place.service_path(service_id),
                    UninstallTarget::Other(id) => {
                        core_vc::install_path(place.flavour, id, Some(service_id))
                    }
                },
                format!("step 2: asked vCenter to remove it from {}", where_(target)),
            ),
            UninstallStep::DeactivateVersion(v) => (
                Method::PATCH,
                format!(
                    "{}?action=deactivate",
                    core_vc::catalog_path(service_id, Some(v))
                ),
                format!("step 3: deactivated version {v}"),
            ),
            UninstallStep::DeleteVersion(v) => (
                Method::DELETE,
                core_vc::catalog_path(service_id, Some(v)),
                format!("step 3: unregistered version {v}"),
            ),
            UninstallStep::DeleteService => (
                Method::DELETE,
                catalog.clone(),
                "step 3: unregistered the service".to_owned(),
            ),
            UninstallStep::WaitRemoving(target) => {
                let text = format!(
                    "step 2: vCenter reports REMOVING on {}; waiting",
                    where_(target)
                );
                if text != last {
                    line(&text);
                    last = text;
                }
                if Instant::now() >= deadline {
                    return Err(Failure::new(
                        format!("timed out waiting for vCenter to remove {service_id}"),
                        "run the same command again: it resumes where it stopped",
                    )
                    .with_exit(Exit::Timeout));
                }
                tokio::time::sleep(args.poll_interval).await;
                f = facts(vc, &scope).await?.0;
                continue;
            }
        };
        if let Err(e) = vc.try_request(method.clone(), &path, None).await? {
            return Err(Failure {
                hint: format!(
                    "{}; run the same command again: it resumes from what vCenter reports",
                    core_vc::explain(e.status, &e.error)
                ),
                ..http_failure_parsed(&format!("{method} {path}"), &vc.url, &e)
            });
        }
        line(&said);
        f = facts(vc, &scope).await?.0;
    }
}

/// What an install-route id names on this flavour.
fn kind(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Cluster => "cluster",
        Flavour::Supervisor => "Supervisor",
    }
}

/// How many objects of one kind the plan names before it counts the rest.
const LISTED: usize = 20;

/// The objects of the kinds a service's package installed, or why they could not be found.
enum CustomResources {
    /// Each kind with its objects (`namespace/name`, or `name` for a cluster-scoped kind).
    Found(Vec<(core_vc::ServiceKind, Vec<String>)>),
    /// The App or its kapp label is missing: what was looked for.
    Unknown(String),
}

/// The CustomResourceDefinitions kapp deployed for the service's App `svc-<id>` (those carrying the
/// App's `kapp.k14s.io/app` label, `status.deploy.kapp.associatedResources.label`) and every object
/// of their kinds, in all namespaces.
async fn custom_resources(supervisor: &SupervisorApi, service_id: &str) -> Result<CustomResources> {
    let name = format!("svc-{service_id}");
    let ns = supsvc_core::carvel::SUPERVISOR_SERVICES_NAMESPACE;
    let Some(app) = supervisor.get(&crate::api::apps(), ns, &name).await? else {
        return Ok(CustomResources::Unknown(format!(
            "the service has no App {ns}/{name}"
        )));
    };
    let selector = supsvc_core::carvel::App::from_value(&app)
        .ok()
        .as_ref()
        .and_then(supsvc_core::kapp::app_selector);
    let Some(selector) = selector else {
        return Ok(CustomResources::Unknown(format!(
            "App {ns}/{name} reports no kapp label (status.deploy.kapp.associatedResources)"
        )));
    };
    let crds = supervisor
        .list(&crds(), None, Some(&selector.to_string()))
        .await?;
    let mut found = Vec::new();
    for kind in core_vc::service_kinds(&crds) {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind),
            &kind.plural,
        );
        let mut objects: Vec<String> = supervisor
            .list(&resource, None, None)
            .await?
            .iter()
            .map(|o| {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                match o["metadata"]["namespace"].as_str() {
                    Some(ns) if kind.namespaced => format!("{ns}/{name}"),
                    _ => name.to_owned(),
                }
            })
            .collect();
        objects.sort();
        found.push((kind, objects));
    }
    Ok(CustomResources::Found(found))
}

fn crds() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    )
}
