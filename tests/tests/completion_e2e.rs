//! Shell completion of `kubectl supsvc ...` as kubectl (1.26+) does it: its completion script runs
//! `kubectl __complete supsvc WORDS...`, and kubectl runs `kubectl_complete-supsvc WORDS...` from PATH.
//! Both ways of installing are covered: cargo install (the two executables side by side) and krew
//! (the plugin's link plus the `kubectl_complete-supsvc` link its caveats tell to make).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use supsvc_tests::{Supervisor, TKG, kubectl_path, workspace_binary};

const TIME_SCALE: f64 = 0.001;

/// The kubectl binaries to complete through: the one on PATH (or `$KUBECTL`), and where present the
/// oldest and newest versioned ones the dispatcher picks from.
fn kubectls() -> Vec<PathBuf> {
    let mut all = vec![kubectl_path()];
    for v in ["1.27", "1.33"] {
        let p = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{v}"));
        if p.is_file() {
            all.push(p);
        }
    }
    all
}

/// The `ln` command of the krew manifest's caveats.
fn caveat_command() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root");
    let template =
        std::fs::read_to_string(root.join("krew/supsvc.yaml.tmpl")).expect("krew template");
    template
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ln "))
        .expect("the caveats have an ln command")
        .to_owned()
}

/// `PATH` with `first` ahead of the system's.
fn path_with(first: &Path) -> std::ffi::OsString {
    let system = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(first.to_path_buf()).chain(std::env::split_paths(&system)))
        .expect("PATH")
}

/// `kubectl __complete supsvc WORDS...`: the candidate lines and the directive.
async fn complete(
    kubectl: &Path,
    path: &std::ffi::OsStr,
    kubeconfig: &Path,
    words: &[&str],
) -> (Vec<String>, String) {
    let mut cmd = Command::new(kubectl);
    cmd.arg("__complete")
        .arg("supsvc")
        .args(words)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
        .await
        .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{words:?}: {stdout}\n{stderr}");
    assert!(
        stderr.contains("kubectl_complete-supsvc"),
        "kubectl ran the completer: {stderr}"
    );
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let directive = lines.pop().unwrap_or_default();
    (lines, directive)
}

fn values(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect()
}

async fn check_completions(kubectl: &Path, path: &std::ffi::OsStr, kubeconfig: &Path) {
    let what = kubectl.display();
    let (lines, directive) = complete(kubectl, path, kubeconfig, &[""]).await;
    assert_eq!(directive, ":4", "{what}");
    let got = values(&lines);
    for sub in ["status", "diagnose", "fix", "values-edit", "override-image"] {
        assert!(got.contains(&sub), "{what}: {got:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("fix\t") && l.contains("deadlock")),
        "{what}: descriptions after a TAB: {lines:?}"
    );

    // The cluster's services, with their state.
    let (lines, directive) = complete(kubectl, path, kubeconfig, &["fix", ""]).await;
    assert_eq!(directive, ":4", "{what}");
    assert_eq!(values(&lines), [TKG], "{what}: {lines:?}");
    assert!(lines[0].contains("\tReconcil"), "{what}: {lines:?}");
    let (lines, _) = complete(kubectl, path, kubeconfig, &["values-edit", "svc-t"]).await;
    assert_eq!(values(&lines), [TKG], "{what}");
    let (lines, _) = complete(
        kubectl,
        path,
        kubeconfig,
        &["--context", "supervisor-viewer", "diagnose", ""],
    )
    .await;
    assert_eq!(values(&lines), [TKG], "{what}: as the viewer");
    let (lines, _) = complete(kubectl, path, kubeconfig, &["-n", "nowhere", "fix", ""]).await;
    assert!(lines.is_empty(), "{what}: no services there: {lines:?}");

    // Flags, their values, the kubeconfig's contexts, and files left to the shell.
    let (lines, _) = complete(kubectl, path, kubeconfig, &["fix", "--d"]).await;
    assert_eq!(
        values(&lines),
        ["--domain-namespace", "--dry-run"],
        "{what}"
    );
    let (lines, _) = complete(kubectl, path, kubeconfig, &["fix", "--dry-run="]).await;
    assert_eq!(values(&lines), ["none", "client", "server"], "{what}");
    let (lines, _) = complete(kubectl, path, kubeconfig, &["status", "-o", ""]).await;
    assert_eq!(values(&lines), ["json", "yaml"], "{what}");
    let (lines, _) = complete(kubectl, path, kubeconfig, &["--context", "supervisor-"]).await;
    assert_eq!(
        values(&lines),
        ["supervisor-admin", "supervisor-viewer"],
        "{what}"
    );
    let (lines, directive) = complete(kubectl, path, kubeconfig, &["--kubeconfig", ""]).await;
    assert_eq!((lines.len(), directive.as_str()), (0, ":0"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_the_plugin_installed_by_cargo_and_by_krew() {
    let plugin = workspace_binary("kubectl-supsvc");
    let completer = workspace_binary("kubectl_complete-supsvc");
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;

    // cargo install: both executables in one directory on PATH.
    let cargo_bin = s.dir.path().join("cargo-bin");
    std::fs::create_dir(&cargo_bin).expect("dir");
    for (from, to) in [
        (&plugin, "kubectl-supsvc"),
        (&completer, "kubectl_complete-supsvc"),
    ] {
        let to = cargo_bin.join(to);
        std::fs::hard_link(from, &to)
            .or_else(|_| std::fs::copy(from, &to).map(|_| ()))
            .expect("installed");
    }
    // krew: $KREW_ROOT/bin/kubectl-supsvc links into krew's store; the manifest's caveats tell the
    // user to link kubectl_complete-supsvc beside it, with a command run here as written.
    let krew_root = s.dir.path().join("krew");
    let krew_bin = krew_root.join("bin");
    std::fs::create_dir_all(&krew_bin).expect("dir");
    std::os::unix::fs::symlink(&plugin, krew_bin.join("kubectl-supsvc")).expect("linked");
    let caveat = caveat_command();
    let linked = Command::new("sh")
        .args(["-ec", &caveat])
        .env("KREW_ROOT", &krew_root)
        .status()
        .expect("sh runs");
    assert!(linked.success(), "{caveat}");
    assert!(
        krew_bin.join("kubectl_complete-supsvc").exists(),
        "{caveat}"
    );

    for kubectl in kubectls() {
        for dir in [&cargo_bin, &krew_bin] {
            check_completions(&kubectl, &path_with(dir), &s.kubeconfig).await;
        }
    }
}
