//! A Supervisor Service can be named by the short form its domain namespace carries (`svc-harbor` for
//! `svc-harbor.tanzu.vmware.com`), which is what the storage guard's denial tells the operator to run.

use std::process::Command;

use supsvc_tests::{Supervisor, workspace_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_short_name_finds_its_service_and_an_unknown_one_lists_the_services() {
    let supervisor = Supervisor::start("harbor", 0.01).await;
    let plugin = workspace_binary("kubectl-supsvc");
    let run = |args: &[&str]| {
        Command::new(&plugin)
            .args(args)
            .env("KUBECONFIG", &supervisor.kubeconfig)
            .output()
            .unwrap()
    };

    let output = run(&["diagnose", "svc-harbor"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("svc-harbor.tanzu.vmware.com") && stdout.contains("No problems found"),
        "{stdout}"
    );

    let output = run(&["diagnose", "svc-harbo"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("service \"svc-harbo\" not found")
            && stderr.contains("svc-harbor.tanzu.vmware.com"),
        "{stderr}"
    );
    supervisor.sim.stop().await;
}
