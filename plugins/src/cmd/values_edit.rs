//! `kubectl supsvc values-edit SERVICE`: `kubectl edit` for a Supervisor Service's data values.
//!
//! Finds the PackageInstall's values Secret, gets the new values (an editor as `kubectl edit` runs it,
//! `-f`, `--set`, or `--rollback`), validates them against the Package's `valuesSchema.openAPIv3`, shows
//! a diff with secrets masked, runs the pre-flight of `supsvc_core::values` against the live kapp-managed
//! objects, then writes as `kctrl package installed update` does: pause the PackageInstall, wait for
//! `Canceled/paused`, keep the previous values in a Secret of their own, write the values Secret with a
//! resourceVersion precondition, unpause, and follow the reconcile until `ReconcileSucceeded` for the
//! new generation (or a failure, with its `usefulErrorMessage`, and the rollback).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value, json};
use supsvc_core::carvel::{self, App, Package, State};
use supsvc_core::fix::{Kind, ObjectRef};
use supsvc_core::kapp;
use supsvc_core::values::{self, Change, FieldVerdict, Finding};
use tokio::time::Instant;

use crate::api::{self, SupervisorApi};
use crate::cli::{DryRun, ValuesEditArgs};
use crate::error::{Exit, Failure, Result};
use crate::observe;
use crate::output::{render, truncate};
use crate::progress::ProgressPrinter;

use super::objects::{self, create, replace, unified_diff, yaml};

mod vcenter;

/// The key kctrl writes values under.
pub const VALUES_KEY: &str = "values.yaml";
/// The Secret keeping the values in use before the last values-edit: `<values secret>-previous`.
pub const PREVIOUS_SUFFIX: &str = "-previous";
/// Annotation on that Secret: which values Secret it is the previous version of.
pub const PREVIOUS_OF_ANNOTATION: &str = supsvc_core::keys::PREVIOUS_VALUES_OF;

/// kubectl edit's header, verbatim.
const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit. If an error occurs while saving this file will be\n# reopened with the relevant failures.\n#\n";

/// The values Secret of a service, as read.
#[derive(Clone)]
struct Target {
    service: String,
    namespace: String,
    secret_name: String,
    key: String,
    /// The Secret as read; `None` when it must be created (the PackageInstall references none).
    secret: Option<Value>,
    data: BTreeMap<String, String>,
    old_text: String,
    old_values: Value,
    schema: Option<Value>,
    /// PersistentVolumeClaims and StatefulSets the service's App deployed.
    live: Vec<Value>,
    live_note: Option<String>,
}

/// New values, checked.
struct Checked {
    text: String,
    values: Value,
    changes: Vec<Change>,
    findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeOut {
    path: String,
    old: Option<Value>,
    new: Option<Value>,
}

/// What `-o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    service: String,
    namespace: String,
    secret: String,
    key: String,
    created_secret: bool,
    previous_secret: Option<String>,
    dry_run: Option<&'static str>,
    changes: Vec<ChangeOut>,
    preflight: Vec<Finding>,
    forced: bool,
    written: bool,
    reconcile: Option<String>,
    useful_error_message: Option<String>,
    rolled_back: bool,
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn decode_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret["data"].as_object() {
        for (k, v) in data {
            let bytes = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default();
            out.insert(k.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    out
}

/// Parses a values document: empty is an empty map; anything but a map is refused.
pub fn parse_values(text: &str) -> std::result::Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value = serde_saphyr::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    match v {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(v),
        other => Err(format!(
            "the values must be a YAML map of keys, not {}",
            match other {
                Value::Array(_) => "a list",
                _ => "a single value",
            }
        )),
    }
}

/// The lines that do not begin with `#`, as kubectl edit reads the saved file.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if !line.starts_with('#') {
            out.push_str(line);
        }
    }
    out
}

async fn read_target(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &ValuesEditArgs,
) -> Result<Target> {
    let service = args.service.as_str();
    let pkgi = observe::parent(supervisor, namespace, service).await?;
    if pkgi.spec.paused || pkgi.spec.canceled {
        return Err(Failure::new(
            format!(
                "{service} is {}: values-edit pauses and unpauses it itself, and would end what paused it",
                if pkgi.spec.canceled {
                    "canceled"
                } else {
                    "paused"
                }
            ),
            format!(
                "finish what paused it (e.g. a `kubectl supsvc fix {service}` run) or unpause it, then run values-edit again"
            ),
        ));
    }
    let refs: Vec<(String, Option<String>)> = pkgi
        .spec
        .values
        .iter()
        .filter_map(|v| v.secret_ref.as_ref())
        .filter(|r| !r.name.is_empty())
        .map(|r| (r.name.clone(), r.key.clone()))
        .collect();
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    let (secret_name, ref_key) = match (&args.secret, refs.as_slice()) {
        (Some(s), _) if names.contains(&s.as_str()) => {
            let key = refs
                .iter()
                .find(|(n, _)| n == s)
                .and_then(|(_, k)| k.clone());
            (s.clone(), key)
        }
        (Some(s), []) => (s.clone(), None),
        (Some(s), _) => {
            return Err(Failure::usage(
                format!("{service} does not take values from Secret {s}"),
                format!("its values Secrets are: {}", names.join(", ")),
            ));
        }
        (None, [(n, k)]) => (n.clone(), k.clone()),
        (None, []) => (format!("{service}-{namespace}-values"), None),
        (None, _) => {
            return Err(Failure::usage(
                format!(
                    "{service} takes its values from {} Secrets: {}",
                    names.len(),
                    names.join(", ")
                ),
                "name the one to edit with --secret NAME",
            ));
        }
    };
    let secret = supervisor
        .get(&objects::secrets(), namespace, &secret_name)
        .await?;
    if secret.is_none() && !refs.is_empty() {
        return Err(Failure::new(
            format!(
                "{service} references the values Secret {secret_name}, which does not exist in {namespace}"
            ),
            format!(
                "create it (kubectl create secret generic {secret_name} -n {namespace} --from-file={VALUES_KEY}=<file>) or fix spec.values of the PackageInstall"
            ),
        ));
    }
    let data = secret.as_ref().map(decode_data).unwrap_or_default();
    let key = match ref_key {
        Some(k) => k,
        None if data.contains_key(VALUES_KEY) || data.is_empty() => VALUES_KEY.to_owned(),
        None if data.len() == 1 => data.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(Failure::new(
                format!(
                    "Secret {secret_name} holds several keys ({}) and the PackageInstall names none",
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "set spec.values[].secretRef.key of {service} to the key holding the values"
                ),
            ));
        }
    };
    let old_text = data.get(&key).cloned().unwrap_or_default();
    let old_values = parse_values(&old_text).unwrap_or(Value::Null);

    // The Package's schema.
    let raw_packages = supervisor
        .list(&api::packages(), Some(namespace), None)
        .await?;
    let views: Vec<Package> = raw_packages
        .iter()
        .filter_map(|p| Package::from_value(p).ok())
        .collect();
    let schema = carvel::package_for(&pkgi, &views)
        .and_then(|p| {
            raw_packages
                .iter()
                .find(|r| r["metadata"]["name"].as_str() == Some(p.metadata.name.as_str()))
        })
        .and_then(|p| p.pointer("/spec/valuesSchema/openAPIv3"))
        .filter(|s| s.is_object())
        .cloned();

    // The live objects kapp deployed for the service.
    let app = observe::app(supervisor, namespace, service).await?;
    let (live, live_note) = live_objects(supervisor, app.as_ref()).await?;
    Ok(Target {
        service: service.to_owned(),
        namespace: namespace.to_owned(),
        secret_name,
        key,
        secret,
        data,
        old_text,
        old_values,
        schema,
        live,
        live_note,
    })
}

async fn live_objects(
    supervisor: &SupervisorApi,
    app: Option<&App>,
) -> Result<(Vec<Value>, Option<String>)> {
    let Some(app) = app else {
        return Ok((Vec::new(), Some("the service has no App yet".into())));
    };
    let Some(selector) = kapp::app_selector(app) else {
        return Ok((
            Vec::new(),
            Some(format!(
                "App {} reports no kapp label (status.deploy.kapp.associatedResources)",
                app.metadata.name
            )),
        ));
    };
    let selector = selector.to_string();
    let namespaces: Vec<Option<String>> = match app.associated_resources() {
        Some(a) if !a.namespaces.is_empty() => a.namespaces.iter().cloned().map(Some).collect(),
        _ => vec![None],
    };
    let mut live = Vec::new();
    for (resource, api_version, kind) in [
        (objects::pvcs(), "v1", "PersistentVolumeClaim"),
        (objects::statefulsets(), "apps/v1", "StatefulSet"),
    ] {
        for ns in &namespaces {
            for mut o in supervisor
                .list(&resource, ns.as_deref(), Some(&selector))
                .await?
            {
                // What kapp applies, not what a controller stamped from it (a StatefulSet's claims
                // carry the app label too): kapp::owned_by_kapp, as the storage guard decides.
                if kapp::owned_by_kapp(&o).is_none() {
                    continue;
                }
                o["apiVersion"] = json!(api_version);
                o["kind"] = json!(kind);
                live.push(o);
            }
        }
    }
    Ok((live, None))
}

impl Target {
    /// Checks a new values document; the errors are what the editor shows as comments.
    fn check(&self, text: &str, force: bool) -> std::result::Result<Checked, Vec<String>> {
        let values = parse_values(text).map_err(|e| vec![e])?;
        if let Some(schema) = &self.schema {
            // Keys the platform added to the values in place (vCenter's `namespace`) are not the
            // Package's: checked out of the edit, not refused by a closed schema.
            let violations =
                supsvc_core::vcenter::check_with_platform_keys(schema, &self.old_values, &values);
            if !violations.is_empty() {
                return Err(violations
                    .iter()
                    .map(|v| format!("{v} (valuesSchema of the Package)"))
                    .collect());
            }
        }
        let changes = values::changes(&self.old_values, &values);
        let findings = values::preflight(&changes, &self.live);
        if !force {
            let refused: Vec<String> = findings
                .iter()
                .filter_map(|f| match &f.verdict {
                    FieldVerdict::Refused {
                        why,
                        server,
                        instead,
                    } => Some(format!(
                        "{} drives {} {}: refused before writing: {why}.{} Instead: {instead}. (--force applies it anyway)",
                        f.values_path,
                        f.object(),
                        f.field,
                        if server.is_empty() {
                            String::new()
                        } else {
                            format!(" The API server would answer: {server}.")
                        }
                    )),
                    FieldVerdict::Allowed { .. } => None,
                })
                .collect();
            if !refused.is_empty() {
                return Err(refused);
            }
        }
        Ok(Checked {
            text: text.to_owned(),
            values,
            changes,
            findings,
        })
    }

    fn describe(&self) -> String {
        format!(
            "Secret {}/{} key {}",
            self.namespace, self.secret_name, self.key
        )
    }
}

fn editor() -> String {
    ["KUBE_EDITOR", "EDITOR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

fn run_editor(path: &Path) -> Result<()> {
    let editor = editor();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| {
            Failure::new(
                format!("cannot run the editor {editor:?}: {e}"),
                "set KUBE_EDITOR or EDITOR to an editor on PATH",
            )
        })?;
    if !status.success() {
        return Err(Failure::new(
            format!(
                "the editor {editor:?} exited with {status}; a copy of your changes is kept at {:?}",
                path.display().to_string()
            ),
            "set KUBE_EDITOR or EDITOR to an editor that exits 0 on save",
        ));
    }
    Ok(())
}

fn kept(path: &Path) -> String {
    format!(
        "A copy of your changes has been stored to {:?}",
        path.display().to_string()
    )
}

/// How an edit ended before anything was written.
enum Edited {
    Cancelled(&'static str),
    Done(Checked, PathBuf),
}

/// kubectl edit's loop: open, read back, reopen with the errors as comments until valid or unchanged.
fn edit_loop(target: &Target, force: bool) -> Result<Edited> {
    let intro = format!(
        "# Values of Supervisor Service {} ({}).\n# Sensitive values are shown in full here; the file is readable only by you and removed when done.\n#\n",
        target.service,
        target.describe()
    );
    let file = tempfile::Builder::new()
        .prefix(&format!("{}-edit-", target.service))
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| {
            Failure::new(
                format!("cannot create a temporary file: {e}"),
                "check TMPDIR",
            )
        })?;
    let (_, path) = file.keep().map_err(|e| {
        Failure::new(
            format!("cannot keep the temporary file: {e}"),
            "check TMPDIR",
        )
    })?;
    let write = |content: &str| {
        std::fs::write(&path, content).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check TMPDIR",
            )
        })
    };
    write(&format!("{HEADER}{intro}{}", target.old_text))?;
    let original = strip_comments(&target.old_text);
    let mut last_invalid: Option<String> = None;
    loop {
        run_editor(&path)?;
        let edited = std::fs::read_to_string(&path).map_err(|e| {
            Failure::new(
                format!("cannot read {}: {e}", path.display()),
                "check TMPDIR",
            )
        })?;
        let stripped = strip_comments(&edited);
        if stripped.trim().is_empty() {
            let _ = std::fs::remove_file(&path);
            return Ok(Edited::Cancelled("Edit cancelled, saved file was empty."));
        }
        if last_invalid.is_none() && stripped == original {
            let _ = std::fs::remove_file(&path);
            return Ok(Edited::Cancelled("Edit cancelled, no changes made."));
        }
        if last_invalid.as_deref() == Some(stripped.as_str()) {
            return Err(Failure::new(
                format!(
                    "Edit cancelled, no valid changes were saved.\n{}",
                    kept(&path)
                ),
                "fix the errors listed at the top of that file and run values-edit again (-f FILE takes it as it is)",
            ));
        }
        match target.check(&stripped, force) {
            Ok(c) if c.changes.is_empty() => {
                let _ = std::fs::remove_file(&path);
                return Ok(Edited::Cancelled("Edit cancelled, no changes made."));
            }
            Ok(c) => return Ok(Edited::Done(c, path)),
            Err(errors) => {
                let mut block = format!(
                    "# The values of {} were not valid and nothing was written:\n",
                    target.service
                );
                for e in &errors {
                    // Every line a comment, or the next read would take it for values.
                    for (i, line) in e.lines().enumerate() {
                        block.push_str(if i == 0 { "# * " } else { "#   " });
                        block.push_str(line.trim_end());
                        block.push('\n');
                    }
                }
                block.push_str("#\n");
                write(&format!("{HEADER}{block}{intro}{stripped}"))?;
                last_invalid = Some(stripped);
            }
        }
    }
}

fn read_file(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("cannot read the values from stdin: {e}"), ""))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(
            format!("cannot read -f {}: {e}", path.display()),
            "give a readable YAML file of values, or - for stdin",
        )
    })
}

fn invalid(target: &Target, errors: &[String]) -> Failure {
    Failure::new(
        format!(
            "the new values of {} were refused; nothing was written:\n  {}",
            target.service,
            errors.join("\n  ")
        ),
        if errors.iter().any(|e| e.contains("refused before writing")) {
            "do what `Instead` says above; --force writes the values anyway (the reconcile will then fail until they are rolled back)"
        } else {
            "correct the values (the Package's schema: `kubectl get package -n <ns> <name> -o jsonpath='{.spec.valuesSchema}'`)"
        },
    )
}

/// The new values text from -f / --set / --rollback (None: interactive).
async fn non_interactive_text(
    supervisor: &SupervisorApi,
    target: &Target,
    args: &ValuesEditArgs,
) -> Result<Option<String>> {
    if args.rollback {
        let name = format!("{}{PREVIOUS_SUFFIX}", target.secret_name);
        let prev = supervisor
            .get(&objects::secrets(), &target.namespace, &name)
            .await?
            .ok_or_else(|| {
                Failure::new(
                    format!(
                        "no previous values of {} to roll back to: Secret {}/{name} does not exist",
                        target.service, target.namespace
                    ),
                    "--rollback restores the values a values-edit replaced; none was made here yet",
                )
            })?;
        return Ok(Some(
            decode_data(&prev).remove(&target.key).unwrap_or_default(),
        ));
    }
    let base = match &args.values_file {
        Some(path) => Some(read_file(path)?),
        None => None,
    };
    if args.set.is_empty() {
        return Ok(base);
    }
    let mut values = match &base {
        Some(text) => parse_values(text).map_err(|e| invalid(target, &[e]))?,
        None => parse_values(&target.old_text).map_err(|e| {
            Failure::new(
                format!(
                    "the current values of {} do not parse ({e}); --set cannot edit them",
                    target.service
                ),
                "replace them whole with -f FILE, or edit them with values-edit (no --set)",
            )
        })?,
    };
    for arg in &args.set {
        values::set_path(&mut values, arg, target.schema.as_ref()).map_err(|e| {
            Failure::usage(
                e.to_string(),
                "--set takes path=value, e.g. persistence.persistentVolumeClaim.registry.size=60Gi",
            )
        })?;
    }
    Ok(Some(yaml(&values)))
}

fn change_out(c: &Change, show_secrets: bool) -> ChangeOut {
    let (old, new) = if show_secrets || !c.is_sensitive() {
        (c.old.clone(), c.new.clone())
    } else {
        (
            c.old.as_ref().map(|_| json!(values::MASK_BEFORE)),
            c.new.as_ref().map(|_| json!(values::MASK_AFTER)),
        )
    };
    ChangeOut {
        path: values::dotted(&c.path),
        old,
        new,
    }
}

fn print_diff(target: &Target, checked: &Checked, show_secrets: bool) {
    let (a, b) = if show_secrets {
        (target.old_values.clone(), checked.values.clone())
    } else {
        values::mask_pair(&target.old_values, &checked.values)
    };
    let d = unified_diff(
        &yaml(&a),
        &yaml(&b),
        &format!("values of {} (live)", target.service),
        &format!("values of {} (new)", target.service),
    );
    out!("{d}");
    if !show_secrets && checked.changes.iter().any(Change::is_sensitive) {
        outln!("(sensitive values are masked; --show-secrets shows them)");
    }
}

fn print_preflight(target: &Target, checked: &Checked) {
    if let Some(note) = &target.live_note {
        outln!("pre-flight: skipped: {note}");
        return;
    }
    for f in &checked.findings {
        let head = format!(
            "pre-flight: {} drives {} {} ({} -> {})",
            f.values_path,
            f.object(),
            f.field,
            f.live,
            f.new.as_deref().unwrap_or("(removed)")
        );
        match &f.verdict {
            FieldVerdict::Allowed { note } => outln!("{head}: ok, {note}"),
            FieldVerdict::Refused {
                why,
                server,
                instead,
            } => {
                outln!("{head}: the cluster will REFUSE it (applied anyway: --force)");
                outln!("  why: {why}");
                if !server.is_empty() {
                    outln!("  the API server will answer: {server}");
                }
                outln!("  instead: {instead}");
            }
        }
    }
    let unmapped: Vec<String> = checked
        .changes
        .iter()
        .filter(|c| {
            let p = values::dotted(&c.path);
            !checked.findings.iter().any(|f| f.values_path == p)
        })
        .map(|c| values::dotted(&c.path))
        .collect();
    if !unmapped.is_empty() {
        outln!(
            "pre-flight: {} changed value(s) drive no PersistentVolumeClaim or StatefulSet field supsvc can find, not checked: {}",
            unmapped.len(),
            unmapped.join(", ")
        );
    }
}

fn pkgi_ref(target: &Target) -> ObjectRef {
    ObjectRef {
        kind: Kind::PackageInstall,
        namespace: target.namespace.clone(),
        name: target.service.clone(),
    }
}

/// The values Secret with the new text under its key (other keys kept), or a new one as kctrl makes it.
fn new_secret(target: &Target, text: &str) -> Value {
    match &target.secret {
        Some(s) => {
            let mut s = s.clone();
            if !s["data"].is_object() {
                s["data"] = json!({});
            }
            s["data"][&target.key] = json!(b64(text.as_bytes()));
            if let Some(m) = s.as_object_mut() {
                m.remove("stringData");
            }
            s["apiVersion"] = json!("v1");
            s["kind"] = json!("Secret");
            s
        }
        None => json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": target.secret_name, "namespace": target.namespace,
                         "annotations": {"packaging.carvel.dev/package": format!("{}-{}", target.service, target.namespace)}},
            "type": "Opaque",
            "data": {target.key.clone(): b64(text.as_bytes())}
        }),
    }
}

/// The Secret keeping the values being replaced (every key of the values Secret as it was).
fn previous_secret(target: &Target, existing: Option<&Value>) -> Value {
    let data: Map<String, Value> = if target.data.is_empty() {
        [(target.key.clone(), json!(b64(b"")))]
            .into_iter()
            .collect()
    } else {
        target
            .data
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64(v.as_bytes()))))
            .collect()
    };
    let mut s = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}{PREVIOUS_SUFFIX}", target.secret_name), "namespace": target.namespace,
                     "annotations": {PREVIOUS_OF_ANNOTATION: target.secret_name,
                                     supsvc_core::keys::SAVED_AT: jiff::Timestamp::now().to_string()}},
        "type": "Opaque",
        "data": data
    });
    if let Some(rv) = existing.and_then(|e| e["metadata"]["resourceVersion"].as_str()) {
        s["metadata"]["resourceVersion"] = json!(rv);
    }
    s
}

/// Checks at once, then again at each change `changes` sees (or after `poll` without one), until
/// `check` answers or `deadline` passes.
async fn wait_until<T, F, Fut>(
    deadline: Instant,
    changes: &api::Changes,
    poll: Duration,
    what: &str,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                format!("timed out waiting for {what}"),
                "allow more time with --timeout; `kubectl supsvc status` shows the service",
            )
            .with_exit(Exit::Timeout));
        }
        changes
            .next(poll.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// How the reconcile after a write ended.
enum Reconciled {
    Succeeded,
    Failed(String),
}

/// Writes the values as kctrl does (pause, wait, write, unpause) and follows the reconcile.
async fn write_and_follow(
    supervisor: &SupervisorApi,
    target: &Target,
    text: &str,
    args: &ValuesEditArgs,
    progress: &ProgressPrinter,
) -> Result<Reconciled> {
    let deadline = Instant::now() + args.timeout;
    let secrets = objects::secrets();
    let ns = target.namespace.as_str();
    let prev_name = format!("{}{PREVIOUS_SUFFIX}", target.secret_name);
    let existing_prev = supervisor.get(&secrets, ns, &prev_name).await?;
    let prev = previous_secret(target, existing_prev.as_ref());
    let secret = new_secret(target, text);
    let pkgi = pkgi_ref(target);
    // The pause and the reconcile are followed on watches of the PackageInstall and its App.
    let changes = api::Changes::watch(
        supervisor,
        &[
            (api::packageinstalls(), Some(ns.to_owned())),
            (api::apps(), Some(ns.to_owned())),
        ],
    );
    // Every write checked by the server first: a refusal (403, invalid) leaves nothing changed.
    match &existing_prev {
        Some(_) => replace(supervisor, &secrets, ns, &prev, true).await?,
        None => create(supervisor, &secrets, ns, &prev, true).await?,
    };
    match &target.secret {
        Some(_) => replace(supervisor, &secrets, ns, &secret, true).await?,
        None => create(supervisor, &secrets, ns, &secret, true).await?,
    };
    supervisor
        .merge_patch(
            &pkgi,
            &json!({"spec": {"paused": true}}),
            true,
            Some(deadline),
        )
        .await?;

    progress.line(&format!("pausing pkgi/{} -n {ns}", target.service));
    let work = async {
        supervisor
            .merge_patch(
                &pkgi,
                &json!({"spec": {"paused": true}}),
                false,
                Some(deadline),
            )
            .await?;
        let paused_gen = wait_until(
            deadline,
            &changes,
            args.poll_interval,
            "the App to show Canceled/paused",
            || async {
                let app = observe::app(supervisor, ns, &target.service).await?;
                Ok(app
                    .filter(App::is_pause_observed)
                    .map(|a| a.metadata.generation))
            },
        )
        .await?;
        match &existing_prev {
            Some(_) => replace(supervisor, &secrets, ns, &prev, false).await?,
            None => create(supervisor, &secrets, ns, &prev, false).await?,
        };
        progress.line(&format!(
            "saved the values in use to Secret {ns}/{prev_name}"
        ));
        match &target.secret {
            Some(_) => {
                replace(supervisor, &secrets, ns, &secret, false).await?;
            }
            None => {
                create(supervisor, &secrets, ns, &secret, false).await?;
                supervisor
                    .merge_patch(
                        &pkgi,
                        &json!({"spec": {"values": [{"secretRef": {"name": target.secret_name, "key": target.key}}]}}),
                        false,
                        Some(deadline),
                    )
                    .await?;
            }
        };
        progress.line(&format!("wrote the new values to {}", target.describe()));
        Ok::<i64, Failure>(paused_gen)
    };
    // Ctrl-C while paused ends the work, never the unpause below.
    let written = tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Failure::new(
            format!("interrupted while pkgi/{} was paused; it has been unpaused", target.service),
            format!(
                "the values may or may not have been written: compare {} with the saved Secret {ns}/{prev_name}, or run `kubectl supsvc values-edit {} --rollback`",
                target.describe(),
                target.service
            ),
        )
        .with_exit(Exit::Interrupted)),
    };
    // Whatever happened, the service is unpaused before going on.
    let unpaused = supervisor
        .merge_patch(&pkgi, &json!({"spec": {"paused": null}}), false, None)
        .await;
    let paused_gen = written?;
    unpaused?;
    progress.line(&format!(
        "unpaused pkgi/{} -n {ns}; following the reconcile",
        target.service
    ));

    let last = std::cell::RefCell::new(String::new());
    wait_until(
        deadline,
        &changes,
        args.poll_interval,
        &format!("{} to reconcile", target.service),
        || async {
            let app = observe::app(supervisor, ns, &target.service).await?;
            let parent = observe::parent(supervisor, ns, &target.service).await?;
            let Some(app) = app else { return Ok(None) };
            let line = format!(
                "app/{}: {}{}",
                app.metadata.name,
                carvel::state(&app),
                app.status
                    .friendly_description
                    .as_deref()
                    .map(|d| format!(" — {}", truncate(d, 100)))
                    .unwrap_or_default()
            );
            if *last.borrow() != line {
                progress.line(&line);
                *last.borrow_mut() = line;
            }
            let current = !app.spec.paused
                && app.metadata.generation > paused_gen
                && app.status.observed_generation == Some(app.metadata.generation);
            if !current {
                return Ok(None);
            }
            match carvel::state(&app) {
                State::ReconcileSucceeded if carvel::is_reconciled(&parent) => {
                    Ok(Some(Reconciled::Succeeded))
                }
                State::ReconcileFailed => Ok(Some(Reconciled::Failed(
                    app.status
                        .useful_error_message
                        .clone()
                        .or(app.status.friendly_description.clone())
                        .unwrap_or_default(),
                ))),
                _ => Ok(None),
            }
        },
    )
    .await
}

/// Asks only at a terminal: without one, the answer is no.
fn ask(question: &str) -> bool {
    std::io::stdin().is_terminal() && crate::output::confirm(question)
}

pub async fn run(supervisor: &SupervisorApi, namespace: &str, args: &ValuesEditArgs) -> Result<()> {
    if args.vcenter.vcenter.is_some() {
        return vcenter::run(supervisor, namespace, args).await;
    }
    let target = read_target(supervisor, namespace, args).await?;
    // Said before any check, so it stands beside whatever the checks refuse: the values that persist
    // are vCenter's.
    if args.dry_run == DryRun::None {
        errln!("{}", vcenter::not_persistent_warning(&target.service));
    }
    let mut edit_file: Option<PathBuf> = None;
    let checked = match non_interactive_text(supervisor, &target, args).await? {
        Some(text) => target
            .check(&text, args.force)
            .map_err(|errors| invalid(&target, &errors))?,
        None => match edit_loop(&target, args.force)? {
            Edited::Cancelled(message) => {
                outln!("{message}");
                return Ok(());
            }
            Edited::Done(c, path) => {
                edit_file = Some(path);
                c
            }
        },
    };
    let keep_file = |f: Failure| match &edit_file {
        Some(path) => Failure {
            what: format!("{}\n{}", f.what, kept(path)),
            ..f
        },
        None => f,
    };
    let mut out = Outcome {
        service: target.service.clone(),
        namespace: target.namespace.clone(),
        secret: target.secret_name.clone(),
        key: target.key.clone(),
        created_secret: target.secret.is_none(),
        previous_secret: None,
        dry_run: match args.dry_run {
            DryRun::None => None,
            DryRun::Client => Some("client"),
            DryRun::Server => Some("server"),
        },
        changes: checked
            .changes
            .iter()
            .map(|c| change_out(c, args.show_secrets))
            .collect(),
        preflight: checked.findings.clone(),
        forced: args.force && checked.findings.iter().any(Finding::is_refused),
        written: false,
        reconcile: None,
        useful_error_message: None,
        rolled_back: false,
    };
    let emit = |out: &Outcome| -> Result<()> {
        if let Some(format) = args.output {
            out!("{}", render(format, out)?);
        }
        Ok(())
    };
    if checked.changes.is_empty() {
        if args.output.is_none() {
            outln!("The new values are the values in use: nothing to change.");
        }
        return emit(&out);
    }
    if args.output.is_none() {
        print_diff(&target, &checked, args.show_secrets);
        print_preflight(&target, &checked);
    }
    match args.dry_run {
        DryRun::Client => {
            if args.output.is_none() {
                outln!("Dry run: nothing was written.");
            }
            return emit(&out);
        }
        DryRun::Server => {
            let secret = new_secret(&target, &checked.text);
            let secrets = objects::secrets();
            match target.secret {
                Some(_) => replace(supervisor, &secrets, namespace, &secret, true).await,
                None => create(supervisor, &secrets, namespace, &secret, true).await,
            }
            .map_err(keep_file)?;
            if args.output.is_none() {
                outln!(
                    "Dry run (server): the server accepted the values Secret with dryRun=All; nothing was written."
                );
            }
            return emit(&out);
        }
        DryRun::None => {}
    }
    let progress = ProgressPrinter::lines(args.output.is_some());
    let result = write_and_follow(supervisor, &target, &checked.text, args, &progress).await;
    let reconciled = result.map_err(keep_file)?;
    out.written = true;
    out.previous_secret = Some(format!("{}{PREVIOUS_SUFFIX}", target.secret_name));
    if let Some(path) = &edit_file {
        let _ = std::fs::remove_file(path);
    }
    match reconciled {
        Reconciled::Succeeded => {
            out.reconcile = Some("ReconcileSucceeded".into());
            if args.output.is_none() {
                outln!(
                    "Succeeded: {} Reconcile succeeded with the new values ({}; the previous values are kept in Secret {}/{}{PREVIOUS_SUFFIX}, restored by --rollback).",
                    target.service,
                    target.describe(),
                    target.namespace,
                    target.secret_name
                );
            }
            emit(&out)
        }
        Reconciled::Failed(message) => {
            out.reconcile = Some("ReconcileFailed".into());
            out.useful_error_message = Some(message.clone());
            let rollback_cmd = format!(
                "kubectl supsvc values-edit {} -n {} --rollback",
                target.service, target.namespace
            );
            let roll_back = args.rollback_on_failure
                || (args.output.is_none()
                    && ask("The reconcile failed. Roll back to the previous values?"));
            if !roll_back {
                emit(&out)?;
                return Err(Failure::new(
                    format!(
                        "{} Reconcile failed with the new values: {}",
                        target.service,
                        truncate(&message, 2000)
                    ),
                    format!("restore the previous values with: {rollback_cmd}"),
                ));
            }
            // Roll back: the values in use before, as read at the start.
            progress.line("rolling back to the previous values");
            let reread = read_target(supervisor, namespace, args).await?;
            let back =
                write_and_follow(supervisor, &reread, &target.old_text, args, &progress).await;
            out.rolled_back = matches!(back, Ok(Reconciled::Succeeded));
            emit(&out)?;
            let rolled = match back {
                Ok(Reconciled::Succeeded) => format!(
                    "rolled back: {} Reconcile succeeded with the previous values",
                    target.service
                ),
                Ok(Reconciled::Failed(m)) => format!(
                    "the rollback was written but the reconcile still fails: {}",
                    truncate(&m, 500)
                ),
                Err(f) => format!("the rollback failed: {}", f.what),
            };
            Err(Failure::new(
                format!(
                    "{} Reconcile failed with the new values: {}\n{rolled}",
                    target.service,
                    truncate(&message, 2000)
                ),
                format!(
                    "`kubectl supsvc diagnose {}` explains the state",
                    target.service
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_as_kubectl_does() {
        assert_eq!(
            strip_comments("# a\nx: 1\n  # kept\n#b\ny: 2"),
            "x: 1\n  # kept\ny: 2"
        );
        assert_eq!(strip_comments(HEADER), "");
    }

    #[test]
    fn values_must_be_a_map() {
        assert_eq!(parse_values("").unwrap(), json!({}));
        assert_eq!(parse_values("a: 1\n").unwrap(), json!({"a": 1}));
        assert!(parse_values("- a\n").unwrap_err().contains("not a list"));
        assert!(parse_values("x").unwrap_err().contains("single value"));
        assert!(
            parse_values("a: [\n")
                .unwrap_err()
                .starts_with("invalid YAML")
        );
    }

    #[test]
    fn sensitive_changes_are_masked_in_the_json_result() {
        let c = Change {
            path: vec!["database".into(), "password".into()],
            old: Some(json!("a")),
            new: Some(json!("b")),
        };
        let o = change_out(&c, false);
        assert_eq!(
            (o.old, o.new),
            (Some(json!("*** (before)")), Some(json!("*** (after)")))
        );
        let o = change_out(&c, true);
        assert_eq!(o.new, Some(json!("b")));
    }
}
