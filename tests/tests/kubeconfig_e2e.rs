//! Field case r13: `kubectl supsvc` finds its cluster as kubectl does. `KUBECONFIG` may list files that do
//! not exist (skipped), the first file to set `current-context` decides it, `--kubeconfig` names one file
//! that must exist. Each run compares the plugin with the real kubectl on the same environment.

use std::path::Path;
use std::process::{Command, Output};

use supsvc_tests::{Supervisor, kubectl_path, workspace_binary};

/// `kubectl ARGS` with `KUBECONFIG=list`, the plugin on PATH and HOME in the test's directory (so no
/// `~/.kube/config` of the machine is read).
fn kubectl_with(dir: &Path, list: &str, args: &[&str]) -> Output {
    let binary = workspace_binary("kubectl-supsvc");
    let mut paths = vec![binary.parent().unwrap().to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    Command::new(kubectl_path())
        .args(args)
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env("KUBECONFIG", list)
        .env("HOME", dir)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("kubectl runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_in_kubeconfig_is_skipped_as_kubectl_skips_it() {
    let sup = Supervisor::start("healthy", 0.01).await;
    let dir = sup.dir.path();
    let good = sup.kubeconfig.display().to_string();
    let missing = dir.join("does-not-exist").display().to_string();

    // r13 as reported: the missing file first.
    let list = format!("{missing}:{good}");
    let current = kubectl_with(dir, &list, &["config", "current-context"]);
    assert!(current.status.success(), "{}", text(&current));
    assert_eq!(
        String::from_utf8_lossy(&current.stdout).trim(),
        "supervisor-admin"
    );
    let status = kubectl_with(dir, &list, &["supsvc", "status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("svc-tkg.vsphere.vmware.com"),
        "{}",
        text(&status)
    );

    // A first file that only sets current-context decides it, for kubectl and for the plugin.
    let first = dir.join("viewer-first");
    std::fs::write(
        &first,
        "apiVersion: v1\nkind: Config\ncurrent-context: supervisor-viewer\n",
    )
    .unwrap();
    let list = format!("{missing}::{}:{good}", first.display());
    let current = kubectl_with(dir, &list, &["config", "current-context"]);
    assert_eq!(
        String::from_utf8_lossy(&current.stdout).trim(),
        "supervisor-viewer",
        "{}",
        text(&current)
    );
    let status = kubectl_with(dir, &list, &["supsvc", "status"]);
    assert!(status.status.success(), "{}", text(&status));
    // `fix` names the cluster and context it works on (the service is healthy: nothing to do).
    let fix = kubectl_with(dir, &list, &["supsvc", "fix", "--dry-run=client"]);
    assert!(
        text(&fix).contains("context \"supervisor-viewer\""),
        "{}",
        text(&fix)
    );

    // --kubeconfig names one file, which must exist: kubectl and the plugin both refuse a missing one.
    let kubectl = kubectl_with(dir, &good, &["--kubeconfig", &missing, "get", "namespaces"]);
    assert!(!kubectl.status.success());
    let plugin = kubectl_with(dir, &good, &["supsvc", "--kubeconfig", &missing, "status"]);
    assert_eq!(plugin.status.code(), Some(1), "{}", text(&plugin));
    let err = String::from_utf8_lossy(&plugin.stderr);
    assert!(
        err.contains(&missing) && err.contains("does not exist") && err.contains("hint:"),
        "{err}"
    );

    // Nothing but missing files: kubectl has no context, the plugin says where it looked.
    let list = format!("{missing}:{missing}-too");
    let current = kubectl_with(dir, &list, &["config", "current-context"]);
    assert!(!current.status.success(), "{}", text(&current));
    let plugin = kubectl_with(dir, &list, &["supsvc", "status"]);
    assert!(!plugin.status.success(), "{}", text(&plugin));
    // (On a Supervisor control plane VM the plugin would fall back to its admin.conf instead.)
    if !Path::new("/etc/kubernetes/admin.conf").exists() {
        assert!(
            String::from_utf8_lossy(&plugin.stderr).contains("no file of KUBECONFIG"),
            "{}",
            text(&plugin)
        );
    }
    sup.sim.stop().await;
}
