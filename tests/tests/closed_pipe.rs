//! A closed pipe is a quiet end (ripgrep's rule): `kubectl supsvc … | head -1` must not panic.
//! The reader's end is closed before the plugin starts, so its first write to stdout fails with
//! `EPIPE` every time (a pipe with a live reader would just buffer a short output).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use supsvc_tests::{Supervisor, workspace_binary};

/// Runs the plugin with stdout a pipe whose reader has already gone.
fn with_closed_stdout(kubeconfig: Option<&std::path::Path>, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut cmd = Command::new(workspace_binary("kubectl-supsvc"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.output().expect("kubectl-supsvc runs")
}

#[test]
fn completion_into_a_closed_pipe_ends_quietly() {
    for shell in ["bash", "zsh", "fish"] {
        let out = with_closed_stdout(None, &["completion", shell]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{shell}: {err}");
        assert!(
            err.is_empty(),
            "{shell}: nothing on stderr, no panic: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_an_endless_watch_end_quietly_when_the_reader_has_gone() {
    workspace_binary("kubectl-supsvc"); // built first: the time limit below is the commands' own
    let s = Supervisor::start("airgap-deadlock", 0.001).await;
    let kubeconfig = s.kubeconfig.clone();
    let outs = tokio::task::spawn_blocking(move || {
        [
            vec!["status"],
            vec!["status", "-o", "json"],
            vec!["diagnose"],
            vec!["fix", "--dry-run=client"],
            // Would print forever on a live pipe: ends once its reader has gone.
            vec!["status", "-w"],
        ]
        .map(|args| (args.join(" "), with_closed_stdout(Some(&kubeconfig), &args)))
    });
    let outs = tokio::time::timeout(Duration::from_secs(120), outs)
        .await
        .expect("every command ends")
        .expect("joined");
    for (args, out) in outs {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args}: {err}");
        assert!(!err.contains("Broken pipe"), "{args}: {err}");
        // diagnose exits 1 for the problems it found: the closed pipe changes no exit code.
        let want = if args == "diagnose" { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "{args}: {err}");
    }
}
