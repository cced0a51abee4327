//! `upgrade SERVICE --to VERSION [--definition FILE]`: move a Supervisor Service to a newer version
//! through vCenter, where its desired version lives (the lifecycle blog's "Updating a Supervisor
//! Service": add the new version, then Edit the service and pick it).
//!
//! Reads first, then a plan, then writes, each step decided by
//! [`supsvc_core::vcenter::next_upgrade_step`] from what was observed, so a rerun resumes:
//! - the catalog: the service exists and is ACTIVATED; the version is registered (else `--definition`
//!   registers it: `POST /supervisor-services?action=checkContent`, then `POST …/{id}/versions`) and
//!   ACTIVATED; no downgrade (the lifecycle is forward-only);
//! - the install record: idle (no change in flight), or already moving to VERSION (then followed);
//! - the values: vCenter's stored config carried over whole (the platform's keys included), checked
//!   against the new version's `valuesSchema` ([`supsvc_core::vcenter::carry_over`]);
//! - the compatibility precheck where vCenter has one (8.0.3+, Supervisor routes);
//! - `PUT` of the whole spec (`version` and `yaml_service_config`), then vCenter's `config_status`
//!   and the PackageInstall followed until it runs VERSION with `Reconcile succeeded`.

use std::io::IsTerminal as _;
use std::path::Path;

use http::Method;
use serde_json::{Value, json};
use supsvc_core::carvel::{self, State};
use supsvc_core::values;
use supsvc_core::vcenter::{
    self as core_vc, CarryOver, ConfigStatus, ContentCheckError, Flavour, Snapshot, UpgradeFacts,
    UpgradeStep,
};
use tokio::time::Instant;

use crate::api::{self, SupervisorApi};
use crate::cli::UpgradeArgs;
use crate::cmd::Session;
use crate::cmd::objects;
use crate::error::{Exit, Failure, Result};
use crate::observe;
use crate::output::{clock, truncate};
use crate::vcenter::VcenterOptions;
use crate::vcenter::{Target, Vcenter, http_failure_parsed, read_password};
use std::path::PathBuf;
use std::time::Duration;

/// A service definition file: the Carvel `Package` document of a YAML stream (with its
/// `PackageMetadata`), as the Supervisor Services catalog publishes it.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The file's bytes, base64-encoded for `content`.
    pub content: String,
    pub package: Value,
    pub service: String,
    pub version: String,
}

/// What is wrong with a service definition file (`--definition`, or vCenter's stored `content`).
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// A document is not YAML.
    #[error("it is not YAML: {0}")]
    NotYaml(String),
    /// The Package document lacks `spec.refName` (the service's id) or `spec.version`.
    #[error("its Package has no spec.{0}")]
    MissingField(&'static str),
    /// No document has `kind: Package`.
    #[error("it holds no Carvel Package document (kind: Package)")]
    NoPackage,
}

/// Parses a definition's text (PackageMetadata and Package documents, as the Supervisor Services
/// catalog ships them) into its Package, the service id (`spec.refName`) and the version.
///
/// # Errors
/// [`DefinitionError`], saying what is wrong with it.
pub fn parse_definition(
    text: &str,
) -> std::result::Result<(Value, String, String), DefinitionError> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(last) = documents.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    for doc in documents.iter().filter(|d| !d.trim().is_empty()) {
        let value: Value =
            serde_saphyr::from_str(doc).map_err(|e| DefinitionError::NotYaml(e.to_string()))?;
        if value["kind"] != "Package" {
            continue;
        }
        let service = value["spec"]["refName"]
            .as_str()
            .ok_or(DefinitionError::MissingField("refName"))?
            .to_owned();
        let version = value["spec"]["version"]
            .as_str()
            .ok_or(DefinitionError::MissingField("version"))?
            .to_owned();
        return Ok((value, service, version));
    }
    Err(DefinitionError::NoPackage)
}

fn read_definition(path: &Path, service: &str, to: &str) -> Result<Definition> {
    use base64::Engine as _;
    let bad = |why: String| {
        Failure::usage(
            format!(
                "--definition {}: {why}; nothing was written",
                path.display()
            ),
            "give the service definition YAML of the version (PackageMetadata and Package), as downloaded from the Supervisor Services catalog",
        )
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| bad("it is not UTF-8 text".into()))?;
    let (package, id, version) = parse_definition(&text).map_err(|e| bad(e.to_string()))?;
    if id != service {
        return Err(bad(format!("it defines the service {id}, not {service}")));
    }
    if version != to {
        return Err(bad(format!("it defines version {version}, not --to {to}")));
    }
    Ok(Definition {
        content: base64::engine::general_purpose::STANDARD.encode(&bytes),
        package,
        service: id,
        version,
    })
}

fn line(text: &str) {
    outln!("{} {text}", clock());
}

/// The bundle image a Package fetches (`spec.template.spec.fetch[0].imgpkgBundle.image`).
fn bundle_image(package: &Value) -> Option<String> {
    package["spec"]["template"]["spec"]["fetch"]
        .as_array()?
        .iter()
        .find_map(|f| f["imgpkgBundle"]["image"].as_str().map(String::from))
}

fn schema_of(package: &Value) -> Option<Value> {
    package
        .pointer("/spec/valuesSchema/openAPIv3")
        .filter(|s| s.is_object())
        .cloned()
}

fn decode(text: Option<&str>) -> std::result::Result<String, String> {
    use base64::Engine as _;
    match text {
        None => Ok(String::new()),
        Some(t) => base64::engine::general_purpose::STANDARD
            .decode(t.trim())
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string())),
    }
}

fn ask(question: &str) -> bool {
    crate::output::confirm(question)
}
/// What `upgrade` is asked to do: built from clap's [`crate::cli::UpgradeArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// The Supervisor Service (its PackageInstall's name), e.g. svc-harbor.tanzu.vmware.com.
    pub service: String,
    /// The version to upgrade to, as vCenter's catalog names it (e.g. 2.10.0+vmware.1).
    pub to: String,
    /// The version's service definition (PackageMetadata + Package YAML): registers it when vCenter lacks it.
    pub definition: Option<PathBuf>,
    /// Change one value on the way, e.g. a key the new version requires (repeatable).
    pub set: Vec<String>,
    /// Do not ask for confirmation.
    pub yes: bool,
    /// Print the checks and the plan; write nothing.
    pub dry_run: bool,
    /// How long to wait for vCenter and kapp-controller to finish.
    pub timeout: Duration,
    /// How often to read the service while waiting.
    pub poll_interval: Duration,
    /// Where the service's desired state lives, and how to reach it.
    pub vcenter: VcenterOptions,
}

impl From<&UpgradeArgs> for UpgradeOptions {
    fn from(args: &UpgradeArgs) -> Self {
        UpgradeOptions {
            service: args.service.clone(),
            to: args.to.clone(),
            definition: args.definition.clone(),
            set: args.set.clone(),
            yes: args.yes,
            dry_run: args.dry_run,
            timeout: args.timeout,
            poll_interval: args.poll_interval,
            vcenter: VcenterOptions::from(&args.vcenter),
        }
    }
}

pub async fn run(session: &Session, args: &UpgradeOptions) -> Result<()> {
    let (supervisor, namespace) = (&session.supervisor, session.namespace.as_str());
    let Some(url) = args.vcenter.vcenter.clone() else {
        return Err(Failure::usage(
            format!(
                "upgrade goes through vCenter, where {}'s desired version lives: no --vcenter given",
                args.service
            ),
            "give --vcenter https://<vcenter> (or set SUPSVC_VCENTER)",
        ));
    };
    let service_id = core_vc::service_id(&args.service).to_owned();
    // What can be refused without vCenter first: the definition file, the Supervisor side.
    let definition = args
        .definition
        .as_deref()
        .map(|p| read_definition(p, &service_id, &args.to))
        .transpose()?;
    let pkgi = observe::parent(supervisor, namespace, &args.service).await?;
    if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "upgrade asks for confirmation and there is no terminal to ask on",
            "pass -y to upgrade without asking, or --dry-run to see the plan",
        ));
    }
    let password = read_password(&args.vcenter, false)?;
    let vc = Vcenter::connect(&args.vcenter, &url, password).await?;
    let result = upgrade(
        supervisor,
        namespace,
        args,
        &vc,
        &service_id,
        pkgi,
        definition,
    )
    .await;
    vc.logout().await;
    result
}

async fn catalog_facts(
    vc: &Vcenter,
    place: &Target,
    service_id: &str,
    to: &str,
) -> Result<UpgradeFacts> {
    let mut facts = UpgradeFacts {
        to: to.to_owned(),
        precheck_supported: vc.caps.precheck && place.flavour == Flavour::Supervisor,
        ..Default::default()
    };
    let path = core_vc::catalog_path(service_id, None);
    match vc.try_request(Method::GET, &path, None).await? {
        Ok(bytes) => {
            let info: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            facts.service_activated = Some(info["state"] == "ACTIVATED");
            let versions: Vec<Value> = vc.get(&format!("{path}/versions")).await?;
            facts.versions = versions
                .iter()
                .filter_map(|v| {
                    Some((v["version"].as_str()?.to_owned(), v["state"] == "ACTIVATED"))
                })
                .collect();
        }
        Err(e) if e.status == 404 => {}
        Err(e) => return Err(http_failure_parsed(&format!("GET {path}"), &vc.url, &e)),
    }
    if let Some(record) = vc.record(place, service_id).await? {
        facts.record_messages = record.message_lines();
        facts.record = Some(Snapshot::from(&record));
    }
    Ok(facts)
}

#[allow(clippy::too_many_arguments)]
async fn upgrade(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &UpgradeOptions,
    vc: &Vcenter,
    service_id: &str,
    pkgi: carvel::PackageInstall,
    definition: Option<Definition>,
) -> Result<()> {
    let place = vc.target(&args.vcenter, &supervisor.cluster.server).await?;
    let mut facts = catalog_facts(vc, &place, service_id, &args.to).await?;
    facts.has_definition = definition.is_some();
    let nothing = "nothing was written";

    // Decide from the reads alone: refusals come before the plan.
    let first = core_vc::next_upgrade_step(&facts);
    match &first {
        UpgradeStep::Refuse(why) => {
            return Err(Failure::new(
                format!("{service_id}: {why}; {nothing}"),
                refuse_hint(why, &args.service),
            ));
        }
        UpgradeStep::AlreadyThere => {
            outln!(
                "{service_id} already runs version {} on {}: nothing to upgrade.",
                args.to,
                place.describe()
            );
            return Ok(());
        }
        UpgradeStep::Failed(why) => {
            return Err(Failure::new(
                format!("{service_id}: {why}"),
                core_vc::failure_hint(why),
            ));
        }
        UpgradeStep::Resume => {
            line(&format!(
                "{service_id} is already moving to {} in vCenter (an earlier run, or the vSphere Client): following it",
                args.to
            ));
            facts.written = true;
            return follow(supervisor, namespace, args, vc, &place, service_id, facts).await;
        }
        _ => {}
    }
    let Some(record) = vc.record(&place, service_id).await? else {
        return Err(Failure::new(
            format!(
                "{service_id} is not installed on {}; {nothing}",
                place.describe()
            ),
            "install it through vCenter first",
        ));
    };
    let read = Snapshot::from(&record);
    let from = record.current_version.clone().unwrap_or_default();

    // The new version's Package: from the definition, or vCenter's registered content.
    let new_package = match &definition {
        Some(d) => Some(d.package.clone()),
        None => {
            let info: Value = vc
                .get(&core_vc::catalog_path(service_id, Some(&args.to)))
                .await?;
            decode(info["content"].as_str())
                .ok()
                .and_then(|t| parse_definition(&t).ok())
                .map(|(p, _, _)| p)
        }
    };
    let packages = supervisor
        .list(&api::packages(), Some(namespace), None)
        .await?;
    let old_package = packages.iter().find(|p| {
        p["spec"]["refName"] == pkgi.spec.package_ref.ref_name.as_str()
            && p["spec"]["version"].as_str() == Some(from.as_str())
    });

    // The values carried over: vCenter's copy, checked without the platform's keys.
    let stored_text = decode(record.yaml_service_config.as_deref()).map_err(|e| {
        Failure::new(
            format!("vCenter's yaml_service_config of {service_id} is not base64: {e}; {nothing}"),
            "fix it in the vSphere Client (Workload Management > Services > Edit)",
        )
    })?;
    let stored: Value = if stored_text.trim().is_empty() {
        json!({})
    } else {
        serde_saphyr::from_str(&stored_text).map_err(|e| {
            Failure::new(
                format!("vCenter's stored config of {service_id} is not YAML: {e}; {nothing}"),
                "fix it in the vSphere Client (Workload Management > Services > Edit)",
            )
        })?
    };
    let old_schema = old_package.and_then(schema_of);
    let new_schema = new_package.as_ref().and_then(schema_of);
    let platform = core_vc::platform_keys(&stored, old_schema.as_ref());
    let mut operator = core_vc::operator_view(&stored, &platform);
    for set in &args.set {
        values::set_path(&mut operator, set, new_schema.as_ref()).map_err(|e| {
            Failure::usage(
                format!("--set {set}: {e}"),
                "give --set PATH=VALUE, e.g. --set hostname=harbor.example.com",
            )
        })?;
    }
    let carried = core_vc::carry_over(&operator, new_schema.as_ref());
    let config_b64 = if args.set.is_empty() {
        // Unchanged: the stored bytes go back as they are.
        record.yaml_service_config.clone().unwrap_or_default()
    } else {
        let merged = core_vc::merge_edit(&stored, &operator, &platform).map_err(|e| {
            Failure::usage(format!("--set: {e}"), "leave the platform's keys alone")
        })?;
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(objects::yaml(&merged.config))
    };

    // The persistent data at stake: kept by an upgrade (the blog), listed so the operator knows.
    let pvcs = match &record.service_namespace {
        Some(ns) => supervisor.list(&objects::pvcs(), Some(ns), None).await?,
        None => Vec::new(),
    };

    print_plan(
        args,
        &place,
        service_id,
        &from,
        &facts,
        old_package,
        new_package.as_ref(),
        &platform,
        &operator,
        &carried,
        &pvcs,
    );
    if !carried.fits() {
        return Err(Failure::new(
            format!(
                "{service_id}: the values do not fit version {}'s schema ({}); {nothing}",
                args.to,
                carry_summary(&carried)
            ),
            carry_hint(&carried, &args.service, &args.to),
        ));
    }
    if args.dry_run {
        outln!("Dry run: nothing was written to vCenter.");
        return Ok(());
    }
    if !args.yes && !ask(&format!("Upgrade {service_id} from {from} to {}?", args.to)) {
        outln!("Cancelled: nothing was written.");
        return Ok(());
    }

    // The writes, each decided from what is observed (each bounded; --timeout is for the follow).
    loop {
        match core_vc::next_upgrade_step(&facts) {
            UpgradeStep::Register => {
                let Some(d) = &definition else {
                    return Err(Failure::new("no definition to register", "report it"));
                };
                register(vc, service_id, d).await?;
                facts = {
                    let mut f = catalog_facts(vc, &place, service_id, &args.to).await?;
                    f.has_definition = true;
                    f
                };
            }
            UpgradeStep::Precheck => {
                facts.precheck = Some(precheck(vc, &place, service_id, &args.to).await?);
            }
            UpgradeStep::Put { version } => {
                // No lost update: the record must be as it was read.
                let now = vc
                    .record(&place, service_id)
                    .await?
                    .map(|r| Snapshot::from(&r));
                if now.as_ref() != Some(&read) {
                    return Err(Failure::new(
                        format!(
                            "{service_id} changed in vCenter since it was read (now {}); {nothing}",
                            now.map(|n| format!(
                                "desired {} {}",
                                n.desired_version, n.config_status
                            ))
                            .unwrap_or_else(|| "uninstalled".into())
                        ),
                        "run upgrade again to plan against what vCenter holds now",
                    ));
                }
                let path = place.service_path(service_id);
                let body = core_vc::set_spec(&version, &config_b64);
                if let Err(e) = vc.try_request(Method::PUT, &path, Some(&body)).await? {
                    let mut failure = http_failure_parsed(&format!("PUT {path}"), &vc.url, &e);
                    if e.error.text().contains("not compatible") {
                        failure.hint = format!(
                            "vCenter's compatibility check refuses {version} on this Supervisor; see the precheck in the vSphere Client; {}",
                            failure.hint
                        );
                    }
                    return Err(failure);
                }
                facts.written = true;
                line(&format!(
                    "vCenter {} took version {version} of {service_id} with the values carried over; following config_status",
                    vc.url
                ));
                return follow(supervisor, namespace, args, vc, &place, service_id, facts).await;
            }
            UpgradeStep::Refuse(why) => {
                return Err(Failure::new(
                    format!("{service_id}: {why}; the upgrade was not written"),
                    refuse_hint(&why, &args.service),
                ));
            }
            other => {
                return Err(Failure::new(
                    format!("{service_id}: unexpected step {other:?} before writing"),
                    "report it",
                ));
            }
        }
    }
}

fn refuse_hint(why: &str, service: &str) -> String {
    if why.contains("--definition") {
        "download the version's service definition from the Supervisor Services catalog and pass it with --definition FILE".into()
    } else if why.contains("activate it first") {
        "activate the version in the vSphere Client (Workload Management > Services > the service > Manage versions), then run again".into()
    } else if why.contains("DEACTIVATED") {
        "activate the service in the vSphere Client (Workload Management > Services), then run again".into()
    } else if why.contains("forward only") {
        "Supervisor Services do not downgrade; to go back, restore the service from a backup".into()
    } else if why.contains("INCOMPATIBLE") {
        "meet the precheck's requirement (the message says what), or choose a version compatible with this Supervisor".into()
    } else if why.contains("in flight") || why.contains("not finished") {
        format!(
            "wait until it finishes (`kubectl supsvc status`), then run again; `kubectl supsvc diagnose {service}` explains a stuck one"
        )
    } else {
        format!(
            "`kubectl supsvc status` lists the services; `kubectl supsvc diagnose {service}` explains the state"
        )
    }
}

fn carry_summary(c: &CarryOver) -> String {
    let mut parts = Vec::new();
    if !c.dropped.is_empty() {
        parts.push(format!("not declared any more: {}", c.dropped.join(", ")));
    }
    if !c.newly_required.is_empty() {
        parts.push(format!("newly required: {}", c.newly_required.join(", ")));
    }
    parts.extend(c.violations.iter().cloned());
    parts.join("; ")
}

fn carry_hint(c: &CarryOver, service: &str, to: &str) -> String {
    let mut hints = Vec::new();
    if !c.newly_required.is_empty() {
        hints.push(format!(
            "set what {to} requires with --set, e.g. --set {}=VALUE",
            c.newly_required[0]
        ));
    }
    if !c.dropped.is_empty() {
        hints.push(format!(
            "remove what {to} no longer knows first (`kubectl supsvc values-edit {service} --vcenter ...`)"
        ));
    }
    if !c.violations.is_empty() {
        hints.push("correct the values with --set".into());
    }
    hints.join("; ")
}

#[allow(clippy::too_many_arguments)]
fn print_plan(
    args: &UpgradeOptions,
    place: &Target,
    service_id: &str,
    from: &str,
    facts: &UpgradeFacts,
    old_package: Option<&Value>,
    new_package: Option<&Value>,
    platform: &[String],
    operator: &Value,
    carried: &CarryOver,
    pvcs: &[Value],
) {
    let registered = facts.versions.iter().any(|(v, _)| *v == args.to);
    outln!(
        "Plan: upgrade {service_id} on {} from {from} to {}",
        place.describe(),
        args.to
    );
    outln!("  checks:");
    outln!("    service ACTIVATED in vCenter: yes");
    if registered {
        outln!("    version {} registered and ACTIVATED: yes", args.to);
    } else {
        outln!(
            "    version {} not registered: register it from {} (checkContent first)",
            args.to,
            args.definition
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    outln!("    forward only: {} is newer than {from}: yes", args.to);
    outln!(
        "    compatibility precheck: {}",
        if facts.precheck_supported {
            "vCenter runs it before the write"
        } else {
            "vCenter has none on this version (8.0.3+ Supervisor routes only)"
        }
    );
    outln!("  what changes:");
    outln!(
        "    Package {service_id}: {from} -> {}; bundle {} -> {}",
        args.to,
        old_package
            .and_then(bundle_image)
            .unwrap_or_else(|| "(unknown)".into()),
        new_package
            .and_then(bundle_image)
            .unwrap_or_else(|| "(unknown)".into())
    );
    outln!("    kapp redeploys the service's resources from the new bundle (pods are replaced)");
    let keys = operator.as_object().map(|m| m.len()).unwrap_or(0);
    outln!(
        "  values: vCenter's stored config carried over whole ({keys} top-level keys{})",
        if platform.is_empty() {
            String::new()
        } else {
            format!(", and the platform's {}", platform.join(", "))
        }
    );
    for set in &args.set {
        outln!("    --set {set}");
    }
    for d in &carried.dropped {
        outln!(
            "    dropped by {}: {d} (its schema no longer declares it)",
            args.to
        );
    }
    for r in &carried.newly_required {
        outln!("    newly required by {}: {r} (not set)", args.to);
    }
    for v in &carried.violations {
        outln!("    refused by {}'s schema: {v}", args.to);
    }
    if carried.fits() {
        outln!("    the values fit {}'s schema", args.to);
    }
    if !pvcs.is_empty() {
        outln!("  persistent data kept (an upgrade redeploys, it does not delete volumes):");
        for p in pvcs {
            outln!(
                "    pvc {}/{} {}",
                p["metadata"]["namespace"].as_str().unwrap_or_default(),
                p["metadata"]["name"].as_str().unwrap_or_default(),
                p["spec"]["resources"]["requests"]["storage"]
                    .as_str()
                    .unwrap_or_default()
            );
        }
    }
}

async fn register(vc: &Vcenter, service_id: &str, d: &Definition) -> Result<()> {
    let check_path = format!(
        "{}/supervisor-services?action=checkContent",
        core_vc::NAMESPACE_MANAGEMENT
    );
    let answer = vc
        .request(
            Method::POST,
            &check_path,
            Some(&json!({"spec": {"content": d.content}})),
        )
        .await?;
    let status = match core_vc::read_check_result(&answer, service_id, &d.version) {
        Ok(status) => status,
        Err(ContentCheckError::NotValid { status, messages }) => {
            return Err(Failure::new(
                format!(
                    "vCenter's checkContent finds the definition of {} {} {}: {}; nothing was written",
                    d.service,
                    d.version,
                    status.as_deref().unwrap_or("unreadable"),
                    messages.join("; ")
                ),
                "give the service definition as the Supervisor Services catalog publishes it",
            ));
        }
        Err(other @ ContentCheckError::OtherDefinition { .. }) => {
            return Err(Failure::new(
                format!(
                    "{other}, not {service_id} {}; nothing was written",
                    d.version
                ),
                "give the definition of the version you upgrade to",
            ));
        }
    };
    line(&format!(
        "checkContent: {status} ({} {})",
        d.service, d.version
    ));
    let path = format!("{}/versions", core_vc::catalog_path(service_id, None));
    vc.request(
        Method::POST,
        &path,
        Some(&json!({"carvel_spec": {"content": d.content}})),
    )
    .await?;
    line(&format!(
        "registered {service_id} version {} in vCenter",
        d.version
    ));
    Ok(())
}

/// Runs vCenter's compatibility precheck of `to`.
async fn precheck(
    vc: &Vcenter,
    place: &Target,
    service_id: &str,
    to: &str,
) -> Result<core_vc::Precheck> {
    let path = format!("{}?action=precheck", place.service_path(service_id));
    let task: Value = serde_json::from_slice(
        &vc.request(Method::POST, &path, Some(&json!({"target_version": to})))
            .await?,
    )
    .unwrap_or(Value::Null);
    if let Some(task) = task.as_str() {
        let task_path = format!("/api/cis/tasks/{}", core_vc::segment(task));
        for _ in 0..120 {
            let info: Value = vc.get(&task_path).await?;
            match info["status"].as_str() {
                Some("SUCCEEDED") => break,
                Some("FAILED") => {
                    return Err(Failure::new(
                        format!("vCenter's precheck task {task} failed: {}", info["error"]),
                        "look at the task in the vSphere Client; nothing was written to the service",
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    let result: Value = vc
        .get(&format!(
            "{}/versions/{}/precheck",
            place.service_path(service_id),
            core_vc::segment(to)
        ))
        .await?;
    let messages: Vec<String> = result["status_messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(format!(
                "{}: {}",
                m["severity"].as_str().unwrap_or("INFO"),
                m["details"]["default_message"].as_str()?
            ))
        })
        .collect();
    let status = result["status"].as_str().unwrap_or_default();
    line(&format!("precheck of {to}: {status}"));
    for m in &messages {
        line(&format!("  {m}"));
    }
    Ok(if status == "COMPATIBLE" {
        core_vc::Precheck::Compatible
    } else {
        core_vc::Precheck::Incompatible(messages)
    })
}

async fn follow(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &UpgradeOptions,
    vc: &Vcenter,
    place: &Target,
    service_id: &str,
    mut facts: UpgradeFacts,
) -> Result<()> {
    let deadline = Instant::now() + args.timeout;
    let mut last = String::new();
    let mut say = |text: String| {
        if text != last {
            line(&text);
            last = text;
        }
    };
    loop {
        match core_vc::next_upgrade_step(&facts) {
            UpgradeStep::Poll => {
                let record = vc.record(place, service_id).await?.ok_or_else(|| {
                    Failure::new(
                        format!("{service_id} disappeared from vCenter during the upgrade"),
                        "someone uninstalled it; `kubectl supsvc status` shows the Supervisor side",
                    )
                })?;
                let pkgi = observe::parent(supervisor, namespace, &args.service).await?;
                say(format!(
                    "vCenter: config_status {} (desired {}, current {}); pkgi/{}: {} {}",
                    record.config_status,
                    record.desired_version,
                    record.current_version.as_deref().unwrap_or("none"),
                    args.service,
                    carvel::state(&pkgi),
                    pkgi.status.version.as_deref().unwrap_or("")
                ));
                facts.after_messages = record.message_lines();
                facts.after = Some(Snapshot::from(&record));
            }
            UpgradeStep::Done => {
                // The Supervisor side: the PackageInstall runs the new version, reconciled.
                let pkgi = observe::parent(supervisor, namespace, &args.service).await?;
                let runs = pkgi.status.version.as_deref() == Some(args.to.as_str())
                    && carvel::state(&pkgi) == State::ReconcileSucceeded
                    && carvel::is_reconciled(&pkgi);
                if runs {
                    outln!(
                        "Succeeded: {} runs {} (Reconcile succeeded); vCenter {} ({}): desired and current version {}, config_status {}.",
                        args.service,
                        args.to,
                        vc.url,
                        place.describe(),
                        args.to,
                        ConfigStatus::Configured
                    );
                    return Ok(());
                }
                say(format!(
                    "pkgi/{}: {} {} (waiting for {})",
                    args.service,
                    carvel::state(&pkgi),
                    pkgi.status.version.as_deref().unwrap_or(""),
                    args.to
                ));
            }
            UpgradeStep::Failed(why) => {
                return Err(Failure::new(
                    format!(
                        "{service_id}: the upgrade to {} failed: {}",
                        args.to,
                        truncate(&why, 2000)
                    ),
                    format!(
                        "{}; vCenter keeps {} as the desired version",
                        core_vc::failure_hint(&why),
                        args.to
                    ),
                ));
            }
            other => {
                return Err(Failure::new(
                    format!("{service_id}: unexpected step {other:?} after writing"),
                    "report it",
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                format!("timed out waiting for {service_id} to reach {}", args.to),
                "vCenter holds the new version; run the same command again to keep following, or allow more time with --timeout",
            )
            .with_exit(Exit::Timeout));
        }
        tokio::time::sleep(args.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_name_their_service_and_version() {
        let text = "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata: {name: x.example.com}\n---\napiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nspec: {refName: x.example.com, version: 1.2.0}\n";
        let (_, id, v) = parse_definition(text).unwrap();
        assert_eq!((id.as_str(), v.as_str()), ("x.example.com", "1.2.0"));
        assert!(matches!(
            parse_definition("kind: PackageMetadata\n"),
            Err(DefinitionError::NoPackage)
        ));
        assert!(matches!(
            parse_definition("a: [\n"),
            Err(DefinitionError::NotYaml(_))
        ));
        assert!(matches!(
            parse_definition("kind: Package\nspec: {version: 1}\n"),
            Err(DefinitionError::MissingField("refName"))
        ));
        assert!(matches!(
            parse_definition("kind: Package\nspec: {refName: x.example.com}\n"),
            Err(DefinitionError::MissingField("version"))
        ));
    }
}
