//! Shell completion through kubectl: `kubectl __complete supsvc WORDS...` (what kubectl 1.26+'s
//! completion script runs) finds `kubectl_complete-supsvc` on PATH and runs it with the words after
//! `supsvc`, the last being the word under the cursor (possibly empty). The answer is cobra's
//! `__complete` format: one candidate a line (`value<TAB>description`), then `:<directive>`.
//!
//! The words are completed by clap_complete's engine against the same clap definition the plugin
//! parses with, so subcommands, flags and their values never drift from what the plugin accepts. On
//! top of it: the services of the cluster for `fix`, `diagnose` and `values-edit` (one LIST of
//! PackageInstalls, bounded by [`LOOKUP_TIMEOUT`]; nothing when the cluster does not answer), the
//! kubeconfig's contexts for `--context`, and the shell's own file completion for file flags.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate};
use supsvc_core::carvel::{self, PackageInstall};

use crate::api::{self, SupervisorApi};
use crate::cli::{Cli, Global};
use crate::cluster;

/// The name kubectl looks for on PATH to complete `kubectl supsvc`.
pub const COMPLETER: &str = "kubectl_complete-supsvc";

/// How long a completion may wait on the cluster for service names.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// cobra's `ShellCompDirectiveDefault`: no candidates of ours; the shell completes file names.
const DIRECTIVE_FILES: u8 = 0;
/// cobra's `ShellCompDirectiveNoFileComp`: only the candidates given.
const DIRECTIVE_NO_FILES: u8 = 4;

/// The words to complete when this process was started to complete: as `kubectl_complete-supsvc
/// WORDS...` (argv\[0\]) or as `kubectl-supsvc __complete WORDS...` (what the completer runs).
pub fn words(args: &[OsString]) -> Option<Vec<OsString>> {
    let argv0 = args.first()?.to_string_lossy();
    let base = argv0.rsplit(['/', '\\']).next().unwrap_or(&argv0);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    if base == COMPLETER {
        return Some(args[1..].to_vec());
    }
    (args.get(1).map(OsString::as_os_str) == Some(OsStr::new("__complete")))
        .then(|| args[2..].to_vec())
}

/// Prints the completions of `words` and the directive.
pub fn run(words: Vec<OsString>) -> ExitCode {
    let (lines, directive) = complete(words, services_from_cluster);
    for line in lines {
        outln!("{line}");
    }
    outln!(":{directive}");
    ExitCode::SUCCESS
}

/// The candidate lines for `words` (the last is the word under the cursor) and the directive.
/// `services` names the services of the cluster the words' flags point at.
pub fn complete(
    mut words: Vec<OsString>,
    services: impl Fn(&Global) -> Vec<(String, String)> + Send + Sync + 'static,
) -> (Vec<String>, u8) {
    if words.is_empty() {
        words.push(OsString::new());
    }
    let current = words.last().cloned().unwrap_or_default();
    let global = global_flags(&words[..words.len() - 1]);
    let wants_files = Arc::new(AtomicBool::new(false));
    let mut cmd = with_completers(Cli::command(), global, services, &wants_files);
    let mut args = vec![OsString::from("kubectl-supsvc")];
    args.extend(words);
    let index = args.len() - 1;
    let cwd = std::env::current_dir().ok();
    let candidates =
        clap_complete::engine::complete(&mut cmd, args, index, cwd.as_deref()).unwrap_or_default();
    if wants_files.load(Ordering::Relaxed) {
        return (Vec::new(), DIRECTIVE_FILES);
    }
    // `--flag=` is completed with the values alone, as cobra does (the shell keeps the `--flag=`).
    let current = current.to_string_lossy();
    let flag_prefix = current
        .starts_with('-')
        .then(|| current.split_once('=').map(|(flag, _)| format!("{flag}=")))
        .flatten();
    // Flags only once a `-` is typed, as cobra does: a bare TAB offers subcommands and arguments.
    let flags_wanted = current.starts_with('-');
    let lines = candidates
        .iter()
        .filter(|c| !c.is_hide_set())
        .filter(|c| flags_wanted || !c.get_value().to_string_lossy().starts_with('-'))
        .map(|c| {
            let value = c.get_value().to_string_lossy();
            let value = match &flag_prefix {
                Some(prefix) => value.strip_prefix(prefix.as_str()).unwrap_or(&value),
                None => &value,
            };
            let help = c
                .get_help()
                .map(|h| h.to_string())
                .and_then(|h| h.lines().next().map(str::to_owned))
                .unwrap_or_default();
            if help.is_empty() {
                value.to_owned()
            } else {
                format!("{value}\t{help}")
            }
        })
        .collect();
    (lines, DIRECTIVE_NO_FILES)
}

/// The connection flags among the words typed so far (what is not parsable yet is ignored; `None`
/// when nothing is, and then nothing is looked up).
fn global_flags(typed: &[OsString]) -> Option<Global> {
    let args = std::iter::once(OsString::from("kubectl-supsvc")).chain(typed.iter().cloned());
    let matches = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    Global::from_arg_matches(&matches).ok()
}

/// The plugin's command with the dynamic completers attached.
fn with_completers(
    cmd: clap::Command,
    global: Option<Global>,
    services: impl Fn(&Global) -> Vec<(String, String)> + Send + Sync + 'static,
    wants_files: &Arc<AtomicBool>,
) -> clap::Command {
    let services = Arc::new(services);
    let contexts_of = global.clone();
    let files = |flag: &Arc<AtomicBool>| {
        let flag = Arc::clone(flag);
        ArgValueCompleter::new(move |_: &OsStr| {
            flag.store(true, Ordering::Relaxed);
            Vec::new()
        })
    };
    let service_names = |cmd: clap::Command| {
        let services = Arc::clone(&services);
        let global = global.clone();
        cmd.mut_arg("service", move |a| {
            a.add(ArgValueCandidates::new(move || {
                global
                    .as_ref()
                    .map(|g| services(g))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, state)| {
                        CompletionCandidate::new(name)
                            .help((!state.is_empty()).then(|| state.into()))
                    })
                    .collect()
            }))
        })
    };
    cmd.mut_arg("kubeconfig", |a| a.add(files(wants_files)))
        .mut_arg("context", move |a| {
            a.add(ArgValueCandidates::new(move || {
                contexts_of
                    .as_ref()
                    .and_then(|g| cluster::load(g).ok())
                    .map(|l| l.contexts())
                    .unwrap_or_default()
                    .into_iter()
                    .map(CompletionCandidate::new)
                    .collect()
            }))
        })
        .mut_subcommand("fix", service_names)
        .mut_subcommand("diagnose", service_names)
        .mut_subcommand("values-edit", |c| {
            service_names(c).mut_arg("values_file", |a| a.add(files(wants_files)))
        })
        .mut_subcommand("upgrade", |c| {
            service_names(c).mut_arg("definition", |a| a.add(files(wants_files)))
        })
        .mut_subcommand("uninstall", service_names)
}

/// Looks the services up in the cluster the flags name: `(name, state)`, nothing on any failure.
fn services_from_cluster(global: &Global) -> Vec<(String, String)> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        tokio::time::timeout(LOOKUP_TIMEOUT, services(global))
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    })
}

async fn services(global: &Global) -> Option<Vec<(String, String)>> {
    let supervisor = SupervisorApi {
        cluster: cluster::connect(global).await.ok()?,
    };
    let list = supervisor
        .list(&api::packageinstalls(), Some(&global.namespace), None)
        .await
        .ok()?;
    Some(
        list.iter()
            .filter_map(|v| PackageInstall::from_value(v).ok())
            .map(|p| (p.metadata.name.clone(), carvel::state(&p).to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn complete_with(words: &[&str]) -> (Vec<String>, u8) {
        complete(os(words), |global: &Global| {
            vec![
                (
                    format!("svc-tkg.vsphere.vmware.com-in-{}", global.namespace),
                    "Reconcile failed".to_owned(),
                ),
                ("svc-harbor.tanzu.vmware.com".to_owned(), String::new()),
            ]
        })
    }

    fn values(lines: &[String]) -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.split('\t').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn started_as_the_completer_or_with_complete() {
        let args = os(&["/home/u/.krew/bin/kubectl_complete-supsvc", "fix", ""]);
        assert_eq!(words(&args), Some(os(&["fix", ""])));
        let args = os(&["kubectl-supsvc", "__complete", "fix", ""]);
        assert_eq!(words(&args), Some(os(&["fix", ""])));
        assert_eq!(words(&os(&["kubectl-supsvc", "fix", "-y"])), None);
        assert_eq!(words(&os(&["kubectl-supsvc"])), None);
    }

    #[test]
    fn subcommands_first_and_flags_once_a_dash_is_typed() {
        let (lines, directive) = complete_with(&[""]);
        assert_eq!(directive, DIRECTIVE_NO_FILES);
        let got = values(&lines);
        for sub in [
            "status",
            "diagnose",
            "fix",
            "values-edit",
            "upgrade",
            "uninstall",
            "upgrade-check",
            "webhook",
            "completion",
        ] {
            assert!(got.contains(&sub), "{got:?}");
        }
        assert!(got.iter().all(|v| !v.starts_with('-')), "{got:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("fix\tResolve")),
            "descriptions after a TAB: {lines:?}"
        );
        assert_eq!(values(&complete_with(&["dia"]).0), ["diagnose"]);
        let (lines, _) = complete_with(&["fix", "--d"]);
        assert_eq!(values(&lines), ["--domain-namespace", "--dry-run"]);
        assert!(!values(&complete_with(&["fix", "-"]).0).contains(&"--poll-interval"));
    }

    #[test]
    fn flag_values_come_without_the_flag_after_an_equals_sign() {
        let (lines, _) = complete_with(&["fix", "--dry-run="]);
        assert_eq!(values(&lines), ["none", "client", "server"]);
        let (lines, _) = complete_with(&["status", "-o", ""]);
        assert_eq!(values(&lines), ["json", "yaml"]);
    }

    #[test]
    fn services_from_the_cluster_the_typed_flags_name() {
        let (lines, directive) = complete_with(&["fix", ""]);
        assert_eq!(directive, DIRECTIVE_NO_FILES);
        assert_eq!(
            lines,
            [
                "svc-tkg.vsphere.vmware.com-in-vmware-system-supervisor-services\tReconcile failed",
                "svc-harbor.tanzu.vmware.com",
            ]
        );
        let (lines, _) = complete_with(&["-n", "other", "diagnose", "svc-t"]);
        assert_eq!(values(&lines), ["svc-tkg.vsphere.vmware.com-in-other"]);
        let (lines, _) = complete_with(&["values-edit", "--namespace=x", "svc-h"]);
        assert_eq!(values(&lines), ["svc-harbor.tanzu.vmware.com"]);
        for sub in ["upgrade", "uninstall"] {
            let (lines, _) = complete_with(&[sub, "svc-h"]);
            assert_eq!(values(&lines), ["svc-harbor.tanzu.vmware.com"], "{sub}");
        }
        // Not where a service goes.
        let (lines, _) = complete_with(&["status", ""]);
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn file_flags_leave_it_to_the_shell() {
        for words in [
            &["--kubeconfig", ""][..],
            &["fix", "--kubeconfig="],
            &["values-edit", "svc-harbor", "-f", ""],
            &[
                "upgrade",
                "svc-harbor",
                "--to",
                "2.10.0",
                "--definition",
                "",
            ],
        ] {
            assert_eq!(
                complete_with(words),
                (Vec::new(), DIRECTIVE_FILES),
                "{words:?}"
            );
        }
    }
}
