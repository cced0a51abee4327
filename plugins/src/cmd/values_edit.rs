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
use crate::cli::Output;
use crate::cli::{DryRun, ValuesEditArgs};
use crate::cmd::Session;
use crate::error::{Exit, Failure, Result};
use crate::observe;
use crate::output::{render, truncate};
use crate::progress::ProgressPrinter;
use crate::vcenter::VcenterOptions;

use super::objects::{self, create, replace, unified_diff, yaml};

mod editor;
mod read;
mod vcenter;
mod write;

use editor::{Edited, edit_loop, invalid, kept, non_interactive_text, parse_values};
use read::read_target;
use write::{Reconciled, new_secret, write_and_follow};

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

/// Asks only at a terminal: without one, the answer is no.
fn ask(question: &str) -> bool {
    std::io::stdin().is_terminal() && crate::output::confirm(question)
}
/// What `values-edit` is asked to do: built from clap's [`crate::cli::ValuesEditArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct ValuesEditOptions {
    /// The Supervisor Service (its PackageInstall's name), e.g. svc-harbor.tanzu.vmware.com.
    pub service: String,
    /// The values Secret to edit, when the PackageInstall references several.
    pub secret: Option<String>,
    /// Take the new values from this file ("-" for stdin) instead of an editor.
    pub values_file: Option<PathBuf>,
    /// Set one value instead of editing, e.g. persistence.persistentVolumeClaim.registry.size=60Gi (repeatable).
    pub set: Vec<String>,
    /// Restore the values in use before the last values-edit.
    pub rollback: bool,
    /// Apply even what the pre-flight says the cluster will refuse.
    pub force: bool,
    /// If the reconcile fails, restore the previous values without asking.
    pub rollback_on_failure: bool,
    /// Show the values of sensitive keys (passwords, secrets, keys, tokens) in diffs.
    pub show_secrets: bool,
    /// Change nothing: show the diff and the pre-flight (client) or have the server check the writes too (server).
    pub dry_run: DryRun,
    /// Output format of the result.
    pub output: Option<Output>,
    /// How long to wait for the reconcile.
    pub timeout: Duration,
    /// How often to read the service while waiting.
    pub poll_interval: Duration,
    /// Where the service's desired state lives, and how to reach it.
    pub vcenter: VcenterOptions,
}

impl From<&ValuesEditArgs> for ValuesEditOptions {
    fn from(args: &ValuesEditArgs) -> Self {
        ValuesEditOptions {
            service: args.service.clone(),
            secret: args.secret.clone(),
            values_file: args.values_file.clone(),
            set: args.set.clone(),
            rollback: args.rollback,
            force: args.force,
            rollback_on_failure: args.rollback_on_failure,
            show_secrets: args.show_secrets,
            dry_run: args.dry_run,
            output: args.output,
            timeout: args.timeout,
            poll_interval: args.poll_interval,
            vcenter: VcenterOptions::from(&args.vcenter),
        }
    }
}

pub async fn run(session: &Session, args: &ValuesEditOptions) -> Result<()> {
    let (supervisor, namespace) = (&session.supervisor, session.namespace.as_str());
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
