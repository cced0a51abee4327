//! `values-edit SERVICE --vcenter URL`: edit the values where they persist, vCenter's stored config.
//!
//! The protocol is [`supsvc_core::vcenter::next_step`]'s: read the install record; refuse while a
//! change is in flight; report drift between vCenter's copy and the Supervisor's Secret; edit the
//! operator's part of the config (editor, `-f`, `--set`) with the Package's schema and the pre-flight;
//! merge the platform's keys back; read the record again right before writing and abort if it changed
//! (no lost update); `PUT` the whole spec (the installed version and the config); follow vCenter's
//! `config_status` and then the PackageInstall until `Reconcile succeeded`.

use http::Method;
use supsvc_core::carvel::{self, State};
use supsvc_core::values::{self, Change};
use supsvc_core::vcenter::{self as core_vc, Snapshot, Step, Supervisor, WriteProgress};
use tokio::time::Instant;

use super::ValuesEditOptions;
use super::{Edited, Target, edit_loop, invalid, kept, non_interactive_text, yaml};
use crate::api::{self, SupervisorApi};
use crate::cli::DryRun;
use crate::error::{Exit, Failure, Result};
use crate::observe;
use crate::output::truncate;
use crate::progress::ProgressPrinter;
use crate::vcenter::{Vcenter, http_failure_parsed, read_password};

/// What `-o json` prints for a vCenter edit.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct VcenterOutcome {
    service: String,
    vcenter: String,
    vcenter_version: String,
    target: String,
    drift: Vec<super::ChangeOut>,
    changes: Vec<super::ChangeOut>,
    restored_platform_keys: Vec<String>,
    written: bool,
    config_status: Option<String>,
    reconcile: Option<String>,
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

fn encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn masked_changes(changes: &[Change], show_secrets: bool) -> Vec<super::ChangeOut> {
    changes
        .iter()
        .map(|c| super::change_out(c, show_secrets))
        .collect()
}

pub(super) async fn run(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &ValuesEditOptions,
) -> Result<()> {
    let Some(url) = args.vcenter.vcenter.clone() else {
        return Err(Failure::usage(
            "--vcenter needs a URL",
            "give https://<vcenter host>",
        ));
    };
    let stdin_values = args
        .values_file
        .as_deref()
        .is_some_and(|p| p == std::path::Path::new("-"));
    // Everything that can be refused without vCenter first: the Supervisor side, the password.
    let target = super::read_target(supervisor, namespace, args).await?;
    let password = read_password(&args.vcenter, stdin_values)?;
    let vc = Vcenter::connect(&args.vcenter, &url, password).await?;
    let result = edit(supervisor, namespace, args, &vc, target).await;
    vc.logout().await;
    result
}

async fn edit(
    supervisor: &SupervisorApi,
    namespace: &str,
    args: &ValuesEditOptions,
    vc: &Vcenter,
    mut target: Target,
) -> Result<()> {
    if !vc.caps.yaml_config {
        return Err(Failure::new(
            format!(
                "vCenter {} ({}) keeps no YAML config for services (yaml_service_config arrived in 8.0)",
                vc.url, vc.version
            ),
            "edit the service's settings in the vSphere Client (Workload Management > Services)",
        ));
    }
    let place = vc.target(&args.vcenter, &supervisor.cluster.server).await?;
    let service_id = core_vc::service_id(&target.service).to_owned();
    let path = place.service_path(&service_id);
    let progress = ProgressPrinter::lines(args.output.is_some());
    let mut plan = WriteProgress {
        allow_error: args.force,
        ..Default::default()
    };

    // 1. Read vCenter's record.
    let Some(record) = vc.record(&place, &service_id).await? else {
        return Err(Failure::new(
            format!(
                "vCenter {} has no Supervisor Service {service_id} installed on {}",
                vc.url,
                place.describe()
            ),
            "check the service name (`kubectl supsvc status`) and --vcenter-cluster/--vcenter-supervisor; nothing was written",
        ));
    };
    plan.read = Some(Snapshot::from(&record));
    if let Step::Refuse(why) = core_vc::next_step(&plan) {
        return Err(Failure::new(
            format!("{service_id}: {why}; nothing was written"),
            if record.config_status == core_vc::ConfigStatus::Error {
                "look at the messages in the vSphere Client; a values fix may be the cure: --force edits anyway"
            } else {
                "wait until the change finishes (`kubectl supsvc status`) and run values-edit --vcenter again"
            },
        ));
    }
    let stored_text = decode(record.yaml_service_config.as_deref()).map_err(|e| {
        Failure::new(
            format!("vCenter's yaml_service_config of {service_id} is not base64 YAML: {e}"),
            "fix it in the vSphere Client (Workload Management > Services > Edit); nothing was written",
        )
    })?;
    let stored = super::parse_values(&stored_text).map_err(|e| {
        Failure::new(
            format!("vCenter's stored config of {service_id} is not a YAML map: {e}"),
            "fix it in the vSphere Client (Workload Management > Services > Edit); nothing was written",
        )
    })?;
    let platform = core_vc::platform_keys(&stored, target.schema.as_ref());
    let operator = core_vc::operator_view(&stored, &platform);

    // 2. Drift: the Supervisor's Secret against vCenter's copy.
    let drift = core_vc::drift(&stored, &target.old_values);
    if !drift.is_empty() && args.output.is_none() {
        outln!(
            "drift: the Supervisor's {} differs from vCenter's stored config (edited directly; vCenter's copy replaces it at the next configure or upgrade):",
            target.describe()
        );
        for c in masked_changes(&drift, args.show_secrets) {
            outln!(
                "  {}: vCenter {} / Secret {}",
                c.path,
                c.old
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "(absent)".into()),
                c.new
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "(absent)".into())
            );
        }
    }

    // 3. The edit, against vCenter's copy (the operator's keys only).
    target.old_text = if operator.as_object().is_some_and(|m| m.is_empty()) {
        String::new()
    } else {
        yaml(&operator)
    };
    target.old_values = operator.clone();
    let mut edit_file = None;
    let given = if args.rollback {
        let path = undo_path(&service_id)?;
        Some(std::fs::read_to_string(&path).map_err(|e| {
            Failure::new(
                format!(
                    "no previous config of {service_id} to roll back to: cannot read {}: {e}",
                    path.display()
                ),
                "--rollback --vcenter restores the config a values-edit --vcenter replaced from this machine; none was made here yet",
            )
        })?)
    } else {
        non_interactive_text(supervisor, &target, args).await?
    };
    let checked = match given {
        Some(text) => {
            let edited = super::parse_values(&text).map_err(|e| invalid(&target, &[e]))?;
            // A platform key may be left out or kept, not changed.
            core_vc::merge_edit(&stored, &edited, &platform).map_err(|e| {
                Failure::new(
                    format!("{service_id}: {e}; nothing was written"),
                    format!(
                        "leave {} as vCenter has it (values-edit keeps it when you leave it out)",
                        platform.join(", ")
                    ),
                )
            })?;
            // The platform keys are not the operator's: checked without them, merged back below.
            let text = yaml(&core_vc::operator_view(&edited, &platform));
            target
                .check(&text, args.force)
                .map_err(|errors| invalid(&target, &errors))?
        }
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
    let merged = core_vc::merge_edit(&stored, &checked.values, &platform).map_err(|e| {
        keep_file(Failure::new(
            format!("{service_id}: {e}; nothing was written"),
            format!(
                "leave {} as vCenter has it (values-edit keeps it when you leave it out)",
                platform.join(", ")
            ),
        ))
    })?;
    let changes = values::changes(&stored, &merged.config);
    let mut out = VcenterOutcome {
        service: service_id.clone(),
        vcenter: vc.url.clone(),
        vcenter_version: vc.version.clone(),
        target: place.describe(),
        drift: masked_changes(&drift, args.show_secrets),
        changes: masked_changes(&changes, args.show_secrets),
        restored_platform_keys: merged.restored.clone(),
        written: false,
        config_status: None,
        reconcile: None,
    };
    let emit = |out: &VcenterOutcome| -> Result<()> {
        if let Some(format) = args.output {
            out!("{}", crate::output::render(format, out)?);
        }
        Ok(())
    };
    if changes.is_empty() {
        if args.output.is_none() {
            outln!("The new values are vCenter's stored config: nothing to change.");
        }
        return emit(&out);
    }
    if args.output.is_none() {
        super::print_diff(&target, &checked, args.show_secrets);
        super::print_preflight(&target, &checked);
        if !merged.restored.is_empty() {
            outln!(
                "kept the keys vCenter set: {} (the platform owns them)",
                merged.restored.join(", ")
            );
        }
    }
    if args.dry_run != DryRun::None {
        if args.output.is_none() {
            outln!("Dry run: nothing was written to vCenter.");
        }
        return emit(&out);
    }

    // 4. Read again right before writing: no lost update.
    let generation_before = observe::parent(supervisor, namespace, &target.service)
        .await?
        .metadata
        .generation;
    let reread = vc.record(&place, &service_id).await?.ok_or_else(|| {
        keep_file(Failure::new(
            format!(
                "{service_id} was uninstalled from {} while you edited it; nothing was written",
                place.describe()
            ),
            "install it again through vCenter first",
        ))
    })?;
    plan.reread = Some(Snapshot::from(&reread));
    let version = match core_vc::next_step(&plan) {
        Step::Put { version } => version,
        Step::Abort(why) | Step::Refuse(why) => {
            return Err(keep_file(Failure::new(
                format!("{service_id}: {why}; nothing was written"),
                "run values-edit --vcenter again to edit the config vCenter holds now",
            )));
        }
        other => {
            return Err(Failure::new(
                format!(
                    "{service_id}: unexpected step {other:?} before writing; nothing was written"
                ),
                "report it",
            ));
        }
    };

    // The config replaced, kept locally first: --rollback restores it.
    let undo = undo_path(&service_id)?;
    save_undo(&undo, &stored_text)?;
    progress.line(&format!(
        "saved vCenter's current config of {service_id} to {} (--rollback restores it)",
        undo.display()
    ));

    // 5. The whole spec: the installed version and the whole config.
    let config_text = yaml(&merged.config);
    let body = core_vc::set_spec(&version, &encode(&config_text));
    if let Err(e) = vc.try_request(Method::PUT, &path, Some(&body)).await? {
        return Err(keep_file(http_failure_parsed(
            &format!("PUT {path}"),
            &vc.url,
            &e,
        )));
    }
    plan.written = true;
    out.written = true;
    progress.line(&format!(
        "vCenter {} took the new config of {service_id} (version {version}); following config_status",
        vc.url
    ));
    if let Some(path) = &edit_file {
        let _ = std::fs::remove_file(path);
    }

    // 6. Follow vCenter, then the PackageInstall.
    let deadline = Instant::now() + args.timeout;
    let mut last_line = String::new();
    // vCenter has no watch: it is polled. The PackageInstall is watched, so its reconcile is seen
    // as it happens.
    let changes = api::Changes::watch(
        supervisor,
        &[(api::packageinstalls(), Some(namespace.to_owned()))],
    );
    loop {
        match core_vc::next_step(&plan) {
            Step::PollVcenter => {
                let record = vc.record(&place, &service_id).await?.ok_or_else(|| {
                    Failure::new(
                        format!("{service_id} disappeared from vCenter after the write"),
                        "someone uninstalled it; `kubectl supsvc status` shows the Supervisor side",
                    )
                })?;
                let line = format!("vCenter: config_status {}", record.config_status);
                if line != last_line {
                    progress.line(&line);
                    last_line = line;
                }
                out.config_status = Some(record.config_status.to_string());
                plan.after_messages = record.message_lines();
                plan.after = Some(Snapshot::from(&record));
            }
            Step::PollSupervisor => {
                let pkgi = observe::parent(supervisor, namespace, &target.service).await?;
                let current = pkgi.metadata.generation > generation_before
                    && pkgi.status.observed_generation == Some(pkgi.metadata.generation);
                let state = carvel::state(&pkgi);
                let line = format!("pkgi/{}: {state}", target.service);
                if line != last_line {
                    progress.line(&line);
                    last_line = line;
                }
                plan.supervisor = Some(match state {
                    State::ReconcileSucceeded if current && carvel::is_reconciled(&pkgi) => {
                        Supervisor::Succeeded
                    }
                    State::ReconcileFailed if current => Supervisor::Failed(
                        pkgi.status
                            .useful_error_message
                            .clone()
                            .or(pkgi.status.friendly_description.clone())
                            .unwrap_or_default(),
                    ),
                    _ => Supervisor::Pending,
                });
            }
            Step::Done => {
                out.reconcile = Some("ReconcileSucceeded".into());
                if args.output.is_none() {
                    outln!(
                        "Succeeded: {} Reconcile succeeded with the new values, stored in vCenter {} ({}: config_status CONFIGURED), where they persist.",
                        target.service,
                        vc.url,
                        place.describe()
                    );
                }
                return emit(&out);
            }
            Step::Failed(why) => {
                out.reconcile = Some("ReconcileFailed".into());
                emit(&out)?;
                return Err(Failure::new(
                    format!("{}: {}", target.service, truncate(&why, 2000)),
                    format!(
                        "vCenter holds the new values; restore the previous ones with `kubectl supsvc values-edit {} --vcenter {} -f <previous values>` (the diff above shows them), or fix them; `kubectl supsvc diagnose {}` explains the state",
                        target.service, vc.url, target.service
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
                format!("timed out waiting for {} to apply the new values", target.service),
                "vCenter holds them; `kubectl supsvc status` shows the service; allow more time with --timeout",
            )
            .with_exit(Exit::Timeout));
        }
        changes.next(args.poll_interval).await;
    }
}

/// Where the config a `values-edit --vcenter` replaced is kept: `$SUPSVC_UNDO_DIR`, else
/// `$XDG_STATE_HOME/supsvc/values-undo`, else `~/.local/state/supsvc/values-undo`; one file per service.
fn undo_path(service_id: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::var_os("SUPSVC_UNDO_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_STATE_HOME")
                .filter(|d| !d.is_empty())
                .map(|d| std::path::PathBuf::from(d).join("supsvc/values-undo"))
        })
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| std::path::PathBuf::from(h).join(".local/state/supsvc/values-undo"))
        })
        .ok_or_else(|| {
            Failure::new(
                "no place for the undo file: neither SUPSVC_UNDO_DIR, XDG_STATE_HOME nor HOME is set",
                "set SUPSVC_UNDO_DIR to a directory of your own",
            )
        })?;
    let name: String = service_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(dir.join(format!("{name}.yaml")))
}

/// Writes the undo file (mode 0600: the config may hold passwords); nothing is sent before it is kept.
fn save_undo(path: &std::path::Path, text: &str) -> Result<()> {
    let fail = |e: std::io::Error| {
        Failure::new(
            format!(
                "cannot keep the undo file {}: {e}; nothing was written",
                path.display()
            ),
            "set SUPSVC_UNDO_DIR to a writable directory",
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(fail)
}

/// The warning of a values-edit without --vcenter.
pub(super) fn not_persistent_warning(service: &str) -> String {
    format!(
        "warning: values-edit without --vcenter writes the Supervisor's values Secret of {service}; vCenter keeps its own copy of the service's config and puts it back at the next configure or upgrade from vCenter, so this change does not persist. Use --vcenter https://<vcenter> to change the values where they persist."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_decode_from_base64() {
        assert_eq!(decode(None).unwrap(), "");
        assert_eq!(decode(Some(&encode("a: 1\n"))).unwrap(), "a: 1\n");
        assert!(decode(Some("!!!")).is_err());
    }

    #[test]
    fn the_warning_names_the_flag() {
        assert!(not_persistent_warning("svc-x").contains("--vcenter"));
    }
}
