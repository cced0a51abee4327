//! `kubectl supsvc fix`, `diagnose` and `status` driven through the built binary (and through the real
//! `kubectl` with the plugin on PATH) against the simulated Supervisor.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use supsvc_sim::api::gvr;
use supsvc_sim::audit::AuditEvent;
use supsvc_sim::faults::{FaultAction, FaultRule};
use supsvc_tests::plugin::{Via, output, supsvc_command};
use supsvc_tests::{
    SERVICES_NAMESPACE, Supervisor, TKG, TKG_CHILDREN, TKG_DOMAIN, eventually, reconciled,
    workspace_binary,
};

/// Controller periods shrunk a thousandfold, as in the KB tests.
const TIME_SCALE: f64 = 0.001;
const PROGRESS: &str = "supsvc.io/fix-progress";
const TRIGGER: &str = "supsvc.io/fix-trigger";

fn plugin() -> std::path::PathBuf {
    workspace_binary("kubectl-supsvc")
}

fn command(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = supsvc_command(Via::Binary, kubeconfig);
    cmd.args(args).env("NO_COLOR", "1");
    cmd
}

/// Runs the binary without blocking the runtime the simulator runs on.
async fn run(kubeconfig: &Path, args: &[&str]) -> Output {
    output(command(kubeconfig, args)).await
}

/// Runs `kubectl supsvc ...` through the real kubectl, the plugin's directory first on PATH.
async fn run_via_kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = supsvc_command(Via::Kubectl, kubeconfig);
    cmd.args(args);
    output(cmd).await
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

const FIX: [&str; 5] = ["fix", "-y", "--timeout", "3m", "--poll-interval=100ms"];

/// The resourceVersion of every object `fix` may write: the parent PackageInstall, its App and the
/// children; and the store's own resourceVersion, which moves with any write to any object.
async fn resource_versions(s: &Supervisor) -> (Vec<(String, Value)>, u64) {
    let mut objects = vec![
        s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await,
        s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await,
    ];
    for c in TKG_CHILDREN {
        objects.push(s.get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, c).await);
    }
    let versions = objects
        .into_iter()
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or_default().to_owned();
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            (
                format!("{kind}/{name}"),
                o["metadata"]["resourceVersion"].clone(),
            )
        })
        .collect();
    (versions, s.sim.api().resource_version())
}

/// What the plugin asked the API server (its User-Agent), from the simulator's audit.
fn plugin_requests(s: &Supervisor) -> Vec<AuditEvent> {
    s.sim
        .api()
        .audit()
        .events()
        .into_iter()
        .filter(|e| e.user_agent.starts_with("kubectl-supsvc/"))
        .collect()
}

/// Parent, App and every child reconciled; nothing paused; nothing of a run left behind.
async fn assert_resolved(s: &Supervisor) {
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    let app = s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
    assert!(reconciled(&parent), "parent: {}", parent["status"]);
    assert!(reconciled(&app), "app: {}", app["status"]);
    assert_ne!(parent["spec"]["paused"], true, "parent left paused");
    assert_ne!(app["spec"]["paused"], true, "App left paused");
    assert!(
        parent["metadata"]["annotations"][PROGRESS].is_null(),
        "progress annotation left"
    );
    assert_eq!(
        parent["status"]["friendlyDescription"],
        "Reconcile succeeded"
    );
    for c in TKG_CHILDREN {
        let child = s.get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, c).await;
        assert!(
            child["metadata"]["labels"][TRIGGER].is_null(),
            "{c}: trigger label left"
        );
        // fix's last write to a child removes its trigger label, and a label change is itself a
        // reconcile trigger (the KB's very mechanism): the child may be `Reconciling` again for a
        // moment after fix has reported success. It must come back reconciled on its own.
        eventually(Duration::from_secs(10), "the child reconciled", || async {
            let child = s.get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, c).await;
            reconciled(&child).then_some(())
        })
        .await;
    }
}

async fn assert_not_paused(s: &Supervisor) {
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    let app = s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
    assert_ne!(parent["spec"]["paused"], true, "parent left paused");
    assert_ne!(app["spec"]["paused"], true, "App left paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_kubectl_diagnose_finds_the_deadlock_fix_resolves_it_and_diagnose_is_clean() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;

    let before = run_via_kubectl(&s.kubeconfig, &["diagnose"]).await;
    let (out, err) = text(&before);
    assert_eq!(code(&before), 1, "{out}\n{err}");
    assert!(out.contains("ERROR [reconcile-deadlock]"), "{out}");
    assert!(
        out.contains("kubectl supsvc fix svc-tkg.vsphere.vmware.com"),
        "{out}"
    );
    assert!(
        out.contains("6 child PackageInstall(s) in svc-tkg-domain-c1234"),
        "{out}"
    );

    let json = run_via_kubectl(&s.kubeconfig, &["diagnose", "-o", "json"]).await;
    let report: Value = serde_json::from_slice(&json.stdout).expect("diagnose -o json is JSON");
    assert_eq!(report["findings"][0]["code"], "reconcile-deadlock");

    s.sim.api().audit().clear();
    let fix = run_via_kubectl(&s.kubeconfig, &FIX).await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 0, "{out}\n{err}");
    assert!(
        out.contains("Plan for svc-tkg.vsphere.vmware.com on cluster"),
        "{out}"
    );
    // Every request over HTTP/2, the six children's labels at once included: one TLS connection
    // (two if the first two requests, sent together, race to open one), not one per child.
    let requests = plugin_requests(&s);
    assert!(
        requests.iter().filter(|e| e.verb == "patch").count() >= 2 * TKG_CHILDREN.len(),
        "{requests:#?}"
    );
    assert!(
        requests.iter().all(|e| e.http_version == "HTTP/2.0"),
        "{requests:#?}"
    );
    let connections: std::collections::BTreeSet<u64> =
        requests.iter().map(|e| e.connection).collect();
    assert!(connections.len() <= 2, "{connections:?}");
    assert!(out.contains("context \"supervisor-admin\""), "{out}");
    assert!(out.contains("Succeeded:"), "{out}");
    for child in TKG_CHILDREN {
        assert!(
            out.contains(&format!("label pkgi/{child} -n {TKG_DOMAIN}")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "pkgi/{child} -n {TKG_DOMAIN}: Reconcile succeeded"
            )),
            "{out}"
        );
    }
    assert!(
        out.contains("pkgi/svc-tkg.vsphere.vmware.com: Reconcile succeeded"),
        "{out}"
    );
    assert_resolved(&s).await;

    let after = run_via_kubectl(&s.kubeconfig, &["diagnose"]).await;
    let (out, err) = text(&after);
    assert_eq!(code(&after), 0, "{out}\n{err}");
    assert!(out.contains("No problems found."), "{out}");

    let status = run_via_kubectl(&s.kubeconfig, &["status"]).await;
    let (out, _) = text(&status);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("svc-tkg.vsphere.vmware.com") && out.contains("Reconcile succeeded"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_diagnose_is_clean_and_fix_writes_nothing() {
    let s = Supervisor::start("healthy", TIME_SCALE).await;
    // kapp-controller rewrites a healthy App's status on every sync: held still, nothing but `fix`
    // could move a resourceVersion. Held between two syncs, not in the middle of one (`Reconciling`).
    let held = eventually(
        Duration::from_secs(30),
        "the healthy service held still between syncs",
        || async {
            let held = s.sim.hold_controllers().await;
            let mut objects = vec![
                s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await,
                s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await,
            ];
            for c in TKG_CHILDREN {
                objects.push(s.get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, c).await);
            }
            objects.iter().all(reconciled).then_some(held)
        },
    )
    .await;
    let before = resource_versions(&s).await;
    s.sim.api().audit().clear();

    let diagnose = run(&s.kubeconfig, &["diagnose"]).await;
    let (out, err) = text(&diagnose);
    assert_eq!(code(&diagnose), 0, "{out}\n{err}");
    assert!(out.contains("No problems found."), "{out}");

    let fix = run(&s.kubeconfig, &FIX).await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 0, "{out}\n{err}");
    assert!(
        out.contains("is healthy") && out.contains("Nothing to do."),
        "{out}"
    );
    assert!(!out.contains("Plan for"), "{out}");
    assert_eq!(
        resource_versions(&s).await,
        before,
        "fix wrote to a healthy service"
    );
    let requests = plugin_requests(&s);
    assert!(
        requests.iter().any(|e| e.verb == "get"),
        "the plugin's requests are audited: {requests:#?}"
    );
    let mutating: Vec<&AuditEvent> = requests.iter().filter(|e| e.is_mutating()).collect();
    assert!(
        mutating.is_empty(),
        "not even a dry run on a healthy service: {mutating:#?}"
    );
    assert!(s.sim.api().audit().writes().is_empty());
    drop(held);

    let status = run(&s.kubeconfig, &["status", "-o", "json"]).await;
    let rows: Value = serde_json::from_slice(&status.stdout).expect("status -o json is JSON");
    assert_eq!(rows[0]["name"], TKG);
    assert_eq!(rows[0]["state"], "Reconcile succeeded");
    assert_eq!(rows[0]["version"], "3.5.1-embedded+v1.34");
    let yaml = run(&s.kubeconfig, &["status", "-o", "yaml"]).await;
    assert!(String::from_utf8_lossy(&yaml.stdout).contains("name: svc-tkg.vsphere.vmware.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_print_the_plan_and_change_nothing() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    // The failing children are retried all the time: held still, only `fix` could write.
    let held = s.sim.hold_controllers().await;
    let before = resource_versions(&s).await;
    s.sim.api().audit().clear();

    let client = run(&s.kubeconfig, &["fix", "--dry-run=client"]).await;
    let (out, err) = text(&client);
    assert_eq!(code(&client), 0, "{out}\n{err}");
    assert!(
        out.contains("1. pause pkgi/svc-tkg.vsphere.vmware.com"),
        "{out}"
    );
    assert_eq!(
        out.matches("kubectl patch").count(),
        1 + 6 + 1 + 1 + 3 + 6 + 1,
        "{out}"
    );
    assert!(out.contains("Dry run (client): nothing was sent."), "{out}");

    let json = run(&s.kubeconfig, &["fix", "--dry-run=client", "-o", "json"]).await;
    let plan: Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    assert_eq!(plan["context"], "supervisor-admin");
    assert!(plan["items"].as_array().is_some_and(|i| i.len() == 21));
    let requests = plugin_requests(&s);
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|e| !e.is_mutating()),
        "--dry-run=client sends no write, not even a dry one: {requests:#?}"
    );
    s.sim.api().audit().clear();

    let server = run(&s.kubeconfig, &["fix", "--dry-run=server"]).await;
    let (out, err) = text(&server);
    assert_eq!(code(&server), 0, "{out}\n{err}");
    assert_eq!(out.matches("server dry run ok:").count(), 19, "{out}");
    let mutating: Vec<AuditEvent> = plugin_requests(&s)
        .into_iter()
        .filter(AuditEvent::is_mutating)
        .collect();
    assert_eq!(mutating.len(), 19, "{mutating:#?}");
    assert!(
        mutating.iter().all(|e| e.dry_run && e.code == 200),
        "every write of --dry-run=server is sent with dryRun=All: {mutating:#?}"
    );
    assert!(s.sim.api().audit().writes().is_empty());
    assert_eq!(
        resource_versions(&s).await,
        before,
        "a dry run changed something"
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_of_every_kind_still_end_reconciled() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let faults = s.sim.api().faults();
    let status = |code| FaultAction::Status {
        code,
        retry_after_seconds: None,
        message: None,
    };
    for rule in [
        FaultRule::nth("patch", "packageinstalls", 1, status(500)), // the pause
        FaultRule::nth("patch", "packageinstalls", 3, FaultAction::Drop), // a child label
        FaultRule::nth("patch", "packageinstalls", 9, status(429)), // the unpause
        FaultRule::nth("patch", "apps", 1, status(503)),            // the App toggle
        FaultRule::nth("patch", "apps", 2, FaultAction::Drop),
        FaultRule::nth("patch", "packageinstalls", 10, status(409)), // a conflict
        FaultRule::nth("get", "apps", 3, status(500)),
        FaultRule::nth("list", "packageinstalls", 4, FaultAction::Drop),
    ] {
        faults.add(rule);
    }
    let fix = run(&s.kubeconfig, &FIX).await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 0, "{out}\n{err}");
    assert_resolved(&s).await;
}

/// A rule failing every `verb resource` request from the `nth` on: the run stalls in its retries
/// right after the step before, which is where the test kills it.
fn stall_from(resource: &str, nth: u64) -> FaultRule {
    FaultRule {
        times: Some(0),
        ..FaultRule::nth(
            "patch",
            resource,
            nth,
            FaultAction::Status {
                code: 500,
                retry_after_seconds: None,
                message: None,
            },
        )
    }
}

async fn spawn(kubeconfig: &Path, args: &[&str]) -> Child {
    let mut cmd = command(kubeconfig, args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("kubectl-supsvc starts")
}

async fn wait_for_step(s: &Supervisor, step: &str) {
    eventually(
        Duration::from_secs(60),
        &format!("progress step {step}"),
        || async {
            let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
            let progress = parent["metadata"]["annotations"][PROGRESS]
                .as_str()?
                .to_owned();
            progress
                .contains(&format!("\"step\":\"{step}\""))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_after_each_step_is_resumed_by_the_next() {
    // (step recorded, the write that follows it and is made to stall)
    let cases = [
        ("paused", stall_from("packageinstalls", 2)),
        ("labelled", stall_from("packageinstalls", 9)),
        ("unpaused", stall_from("apps", 1)),
        ("toggled", stall_from("packageinstalls", 11)),
    ];
    for (step, rule) in cases {
        let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
        s.sim.api().faults().add(rule);
        let mut child = spawn(&s.kubeconfig, &FIX).await;
        wait_for_step(&s, step).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.kill().expect("killed");
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        s.sim.api().faults().clear();

        let again = run(&s.kubeconfig, &FIX).await;
        let (out, err) = text(&again);
        assert_eq!(code(&again), 0, "after {step}: {out}\n{err}");
        assert!(out.contains("Resuming run"), "after {step}: {out}");
        assert!(
            out.contains(&format!("stopped after step \"{step}\"")),
            "after {step}: {out}"
        );
        assert_resolved(&s).await;
        s.sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_after_the_pause_unpauses_before_exiting() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    // Label writes fail, so the run sits in its retries just after the pause.
    s.sim.api().faults().add(stall_from("packageinstalls", 2));
    let child = spawn(&s.kubeconfig, &FIX).await;
    wait_for_step(&s, "paused").await;
    s.sim.api().faults().clear();
    let pid = child.id().to_string();
    let interrupted = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("waited"))
        .await
        .expect("joined");
    let (out, err) = text(&output);
    assert_eq!(code(&output), 130, "{out}\n{err}");
    assert!(
        err.contains("error: interrupted; nothing is left paused"),
        "{err}"
    );
    assert!(
        out.contains("undone: unpause pkgi/svc-tkg.vsphere.vmware.com"),
        "{out}"
    );
    assert_not_paused(&s).await;
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    assert!(parent["metadata"]["annotations"][PROGRESS].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_exits_3_with_the_last_error_and_leaves_nothing_paused() {
    // Package data never corrected: kicking the children cannot help.
    let s = Supervisor::start("airgap-uncorrected", TIME_SCALE).await;
    let fix = run(
        &s.kubeconfig,
        &["fix", "-y", "--timeout", "4s", "--poll-interval=100ms"],
    )
    .await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 3, "{out}\n{err}");
    assert!(
        err.starts_with("error: timed out after 4.0s waiting for svc-tkg.vsphere.vmware.com"),
        "{err}"
    );
    assert!(
        err.contains("projects.registry.vmware.com"),
        "the last error is shown: {err}"
    );
    assert!(
        err.contains("\nhint: nothing is left paused; run `kubectl supsvc diagnose"),
        "{err}"
    );
    assert_not_paused(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_error_with_a_hint_and_the_right_exit_code() {
    let s = Supervisor::start("healthy", TIME_SCALE).await;
    let dir = s.dir.path();

    let unknown = run(&s.kubeconfig, &["fix", "svc-nope", "-y"]).await;
    let (_, err) = text(&unknown);
    assert_eq!(code(&unknown), 1, "{err}");
    assert!(
        err.starts_with("error: service \"svc-nope\" not found"),
        "{err}"
    );
    assert!(err.contains("\nhint: the services in vmware-system-supervisor-services are: svc-tkg.vsphere.vmware.com"), "{err}");

    let namespace = run(&s.kubeconfig, &["diagnose", "-n", "no-such-namespace"]).await;
    let (_, err) = text(&namespace);
    assert_eq!(code(&namespace), 1, "{err}");
    assert!(
        err.contains("hint: there is no PackageInstall in namespace no-such-namespace"),
        "{err}"
    );

    let viewer = run(
        &s.kubeconfig,
        &[
            "--context",
            "supervisor-viewer",
            "fix",
            "-y",
            "--domain-namespace",
            TKG_DOMAIN,
        ],
    )
    .await;
    let (out, err) = text(&viewer);
    // Healthy: nothing to write, so a read-only user succeeds ...
    assert_eq!(code(&viewer), 0, "{out}\n{err}");
    // ... but any write is refused with the server's words and what to do.
    let pause = run(
        &s.kubeconfig,
        &["--context", "supervisor-viewer", "fix", "--dry-run=server"],
    )
    .await;
    let (out, err) = text(&pause);
    assert_eq!(
        code(&pause),
        0,
        "healthy: no plan, nothing sent: {out}\n{err}"
    );

    let unreachable = dir.join("unreachable");
    std::fs::write(
        &unreachable,
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: x, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n",
    )
    .expect("written");
    let down = run(&unreachable, &["status", "--request-timeout", "5s"]).await;
    let (_, err) = text(&down);
    assert_eq!(code(&down), 1, "{err}");
    assert!(
        err.starts_with("error: cannot reach the API server at https://127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("\nhint: "), "{err}");

    let garbage = dir.join("garbage");
    std::fs::write(&garbage, "{ this is: [not a kubeconfig").expect("written");
    let bad = run(&garbage, &["status"]).await;
    let (_, err) = text(&bad);
    assert_eq!(code(&bad), 1, "{err}");
    assert!(err.starts_with("error: cannot use the kubeconfig"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");

    let no_context = run(&s.kubeconfig, &["--context", "nope", "status"]).await;
    let (_, err) = text(&no_context);
    assert_eq!(code(&no_context), 2, "{err}");
    assert!(err.contains("hint: use one of: "), "{err}");

    let usage = run(&s.kubeconfig, &["fix", "--timeout", "soon"]).await;
    assert_eq!(code(&usage), 2);

    for o in [&unknown, &namespace, &down, &bad, &no_context] {
        let (_, err) = text(o);
        assert!(
            !err.contains("panicked") && !err.contains("Error {") && !err.contains("Status {"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_write_permission_gets_a_403_explained_and_nothing_paused() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let denied = run(
        &s.kubeconfig,
        &["--context", "supervisor-viewer", "fix", "-y"],
    )
    .await;
    let (out, err) = text(&denied);
    assert_eq!(code(&denied), 1, "{out}\n{err}");
    assert!(
        err.starts_with("error: patch packageinstalls/svc-tkg.vsphere.vmware.com"),
        "{err}"
    );
    assert!(err.contains("(403)"), "{err}");
    assert!(err.contains("hint: the system namespaces of a Supervisor are writable only with the control plane's admin credentials"), "{err}");
    assert_not_paused(&s).await;
}

/// `fix -y` on two Supervisors at once (`--context supervisor-admin --context second-admin`), the
/// second's kubeconfig merged into KUBECONFIG under other names.
async fn fix_two_supervisors(first: &Supervisor, second: &Supervisor) -> Output {
    let renamed = first.dir.path().join("second");
    let original = std::fs::read_to_string(&second.kubeconfig).expect("kubeconfig");
    std::fs::write(&renamed, original.replace("supervisor", "second")).expect("written");
    let kubeconfig = std::env::join_paths([first.kubeconfig.clone(), renamed]).expect("KUBECONFIG");
    let mut cmd = Command::new(plugin());
    cmd.args([
        "fix",
        "-y",
        "--poll-interval=100ms",
        "--timeout",
        "3m",
        "--context",
        "supervisor-admin",
        "--context",
        "second-admin",
    ])
    .env("KUBECONFIG", &kubeconfig)
    .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_supervisors_from_a_multi_file_kubeconfig_is_fixed_concurrently() {
    let stuck = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let healthy = Supervisor::start("healthy", TIME_SCALE).await;
    let output = fix_two_supervisors(&stuck, &healthy).await;
    let (out, err) = text(&output);
    assert_eq!(code(&output), 0, "{out}\n{err}");
    assert!(
        out.contains("[supervisor-admin] "),
        "progress lines name their context: {out}"
    );
    assert!(
        out.contains("Summary for svc-tkg.vsphere.vmware.com on 2 Supervisor(s):"),
        "{out}"
    );
    let summary = out.rsplit("Summary for").next().unwrap_or_default();
    assert!(
        summary.contains("second-admin") && summary.contains("healthy: nothing to do"),
        "{summary}"
    );
    assert!(
        summary.contains("supervisor-admin") && summary.contains("Succeeded:"),
        "{summary}"
    );
    assert_resolved(&stuck).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_prints_a_line_for_each_change_until_stopped() {
    let s = Supervisor::start("healthy", TIME_SCALE).await;
    let bin = plugin();
    let dir = bin.parent().expect("binary dir").to_path_buf();
    let path = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    // Through kubectl, which execs the plugin: the child is `kubectl-supsvc status -w` itself.
    let mut watch = Command::new(supsvc_tests::kubectl_path())
        .args(["supsvc", "status", "-w"])
        .env("KUBECONFIG", &s.kubeconfig)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl supsvc status -w starts");
    let stdout = watch.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().expect("lines").push(line);
            }
        })
    };
    let seen =
        |pred: &dyn Fn(&str) -> bool| lines.lock().expect("lines").iter().position(|l| pred(l));

    // The table first ...
    eventually(Duration::from_secs(30), "the table", || async {
        seen(&|l: &str| l.starts_with(TKG) && l.contains("Reconcile succeeded"))
    })
    .await;
    assert!(lines.lock().expect("lines")[0].starts_with("NAME"));

    // ... then a change in the cluster is a new line: `HH:MM:SS <row>`.
    s.admin()
        .patch(
            gvr::PACKAGE_INSTALLS,
            Some(SERVICES_NAMESPACE),
            TKG,
            &supsvc_sim::api::Patch::Merge(serde_json::json!({"spec": {"paused": true}})),
            &Default::default(),
        )
        .await
        .expect("paused");
    let at = eventually(Duration::from_secs(30), "a line for the pause", || async {
        seen(&|l: &str| {
            let (clock, row) = l.split_at(l.len().min(9));
            clock.len() == 9
                && clock.as_bytes()[2] == b':'
                && clock.as_bytes()[5] == b':'
                && row.starts_with(TKG)
                && row.contains("Paused")
        })
    })
    .await;
    assert!(
        at > 1,
        "after the table: {:?}",
        lines.lock().expect("lines")
    );

    // It follows until stopped (Ctrl-C).
    assert!(
        watch.try_wait().expect("try_wait").is_none(),
        "still watching"
    );
    let stopped = Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let mut stderr = watch.stderr.take().expect("stderr");
    let ended = tokio::task::spawn_blocking(move || watch.wait())
        .await
        .expect("joined")
        .expect("waited");
    assert_eq!(
        ended.code(),
        Some(130),
        "interrupted, as a shell reports SIGINT: {ended:?}"
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).expect("stderr");
    assert!(err.is_empty(), "Ctrl-C ends a watch quietly: {err}");
    reader.join().expect("reader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_run_reports_a_colleagues_pause_and_keeps_it_while_fixing_the_others() {
    let stuck = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let held = Supervisor::start("healthy", TIME_SCALE).await;
    // On the second Supervisor a colleague holds svc-tkg on purpose: a reason, then the pause.
    held.kubectl_ok(&[
        "annotate",
        "pkgi",
        TKG,
        "-n",
        SERVICES_NAMESPACE,
        "supsvc.io/pause-reason=holding a hot-fixed Deployment",
    ]);
    held.kubectl_ok(&[
        "patch",
        "pkgi",
        TKG,
        "-n",
        SERVICES_NAMESPACE,
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    held.sim.api().audit().clear();

    // `-y` over the fleet is no licence to take the colleague's pause over.
    let output = fix_two_supervisors(&stuck, &held).await;
    let (out, err) = text(&output);
    assert_eq!(code(&output), 1, "one Supervisor refused: {out}\n{err}");
    let summary = out.rsplit("Summary for").next().unwrap_or_default();
    let row = |context: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(context))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("supervisor-admin").contains("Succeeded:"), "{summary}");
    let second = row("second-admin");
    assert!(
        second.contains("error: refused, nothing changed: svc-tkg.vsphere.vmware.com is paused, and not by kubectl supsvc fix"),
        "the paused Supervisor is reported, not repaired: {summary}"
    );
    assert_resolved(&stuck).await;
    // Nothing was written on the held Supervisor, and the pause stands.
    let writes: Vec<_> = plugin_requests(&held)
        .into_iter()
        .filter(|e| !matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    let parent = held
        .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG)
        .await;
    assert_eq!(
        parent["spec"]["paused"], true,
        "the colleague's pause stands"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_wakes_on_watch_events_not_on_a_timer() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    // A fallback poll of an hour: only the watches can move the run along within the timeout.
    let out = run(
        &s.kubeconfig,
        &["fix", "-y", "--timeout", "3m", "--poll-interval=1h"],
    )
    .await;
    let (stdout, err) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{err}");
    assert!(stdout.contains("Succeeded:"), "{stdout}");
    let watches: Vec<_> = plugin_requests(&s)
        .into_iter()
        .filter(|e| e.verb == "watch")
        .map(|e| (e.resource, e.namespace))
        .collect();
    assert!(
        watches
            .iter()
            .any(|(r, ns)| r == "packageinstalls" && ns.as_deref() == Some(SERVICES_NAMESPACE))
            && watches.iter().any(|(r, _)| r == "apps"),
        "{watches:?}"
    );
    assert_resolved(&s).await;
}
