//! The field cases of issue 12, through the real `kubectl` (the plugin on its PATH) on the simulated
//! Supervisor: `diagnose` and `fix` on what real Supervisors print and do.
//!
//! - r09: kapp's text over two lines (as `kubectl get app -o yaml` shows it), and the one-line control:
//!   both the KB deadlock, and no advice to relocate the children again.
//! - r10: a colleague's deliberate pause (a reason annotation, the API server's managedFields): named in
//!   the plan, never removed by `fix -y`, taken over only with `--take-over-pause`.
//! - r11: the parent's own fetch fails on an unreachable private registry: `diagnose` names it, `fix`
//!   refuses before any write and says what to do instead.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use supsvc_sim::api::gvr;
use supsvc_sim::audit::AuditEvent;
use supsvc_tests::plugin::{Via, output, supsvc_command};
use supsvc_tests::{
    SERVICES_NAMESPACE, Supervisor, TKG, TKG_CHILDREN, TKG_DOMAIN, eventually, fixture, reconciled,
};

const TIME_SCALE: f64 = 0.001;
const REASON_KEY: &str = "supsvc.io/pause-reason";

/// `kubectl supsvc ...` through the real kubectl, the plugin's directory first on PATH.
async fn supsvc(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = supsvc_command(Via::Kubectl, kubeconfig);
    cmd.args(args).env("NO_COLOR", "1");
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

/// The writes the plugin sent (its User-Agent), from the simulator's audit.
fn plugin_writes(s: &Supervisor) -> Vec<AuditEvent> {
    s.sim
        .api()
        .audit()
        .events()
        .into_iter()
        .filter(|e| e.user_agent.starts_with("kubectl-supsvc/") && e.is_mutating())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r09_the_deadlock_is_found_whether_kapps_text_is_on_two_lines_or_one() {
    for file in ["app-status-patch.json", "app-status-patch-one-line.json"] {
        let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
        // Held still: only the texts of the field case are read, not the simulator's next ones.
        let held = s.sim.hold_controllers().await;
        let patch = fixture(&format!("r09-kapp-two-line-message/{file}"));
        let patch = patch.to_str().expect("utf-8 path");
        for resource in ["app", "pkgi"] {
            s.kubectl_ok(&[
                "patch",
                resource,
                TKG,
                "-n",
                SERVICES_NAMESPACE,
                "--subresource=status",
                "--type=merge",
                "--patch-file",
                patch,
            ]);
        }
        let app = s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
        let message = app["status"]["usefulErrorMessage"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            message.contains(":\n  Finished unsuccessfully"),
            file == "app-status-patch.json",
            "{message}"
        );

        let out = supsvc(&s.kubeconfig, &["diagnose"]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 1, "{file}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("ERROR [reconcile-deadlock]"),
            "{file}: {stdout}"
        );
        assert!(
            stdout.contains("    kubectl supsvc fix svc-tkg.vsphere.vmware.com\n"),
            "{file}: {stdout}"
        );
        assert!(
            !stdout.contains("supsvc does not recognise"),
            "{file}: {stdout}"
        );
        assert!(
            !stdout.contains("WARNING [public-registry-reference]"),
            "{file}: no advice to relocate the children again: {stdout}"
        );
        assert!(
            stdout.contains("would act (precondition held: kb-signature)"),
            "{file}: {stdout}"
        );

        let json = supsvc(&s.kubeconfig, &["diagnose", "-o", "json"]).await;
        let report: Value = serde_json::from_slice(&json.stdout).expect("JSON");
        assert_eq!(
            report["findings"][0]["code"], "reconcile-deadlock",
            "{file}"
        );
        assert_eq!(
            report["fixPreconditions"]["ground"], "kb-signature",
            "{file}"
        );
        drop(held);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r10_a_colleagues_pause_is_named_and_kept_unless_taken_over() {
    let s = Supervisor::start("healthy", TIME_SCALE).await;
    // The colleague holds a hot-fixed Deployment: a reason, then the pause, with kubectl. The API
    // server records the patch's field manager (kubectl-patch) and time in managedFields.
    s.kubectl_ok(&[
        "annotate",
        "pkgi",
        TKG,
        "-n",
        SERVICES_NAMESPACE,
        &format!("{REASON_KEY}=holding the hot-fixed tkg-controller Deployment (OPS-4711)"),
    ]);
    s.kubectl_ok(&[
        "patch",
        "pkgi",
        TKG,
        "-n",
        SERVICES_NAMESPACE,
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    eventually(
        Duration::from_secs(30),
        "the App shows the pause",
        || async {
            let app = s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
            (app["status"]["friendlyDescription"] == "Canceled/paused").then_some(())
        },
    )
    .await;
    s.sim.api().audit().clear();
    // When the simulator recorded the patch.
    let pkgi = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    let paused_at = pkgi["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == "kubectl-patch")
        .and_then(|e| e["time"].as_str())
        .expect("the patch's managedFields entry")
        .to_string();

    // The plan names the pause: who, when, why; and says fix would refuse.
    let dry = supsvc(&s.kubeconfig, &["fix", "--dry-run=client"]).await;
    let (out, err) = text(&dry);
    assert_eq!(code(&dry), 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "Existing pause, not made by fix: pkgi/{TKG} -n {SERVICES_NAMESPACE} spec.paused=true, set by kubectl-patch (Update) at {paused_at}; reason ({REASON_KEY}): \"holding the hot-fixed tkg-controller Deployment (OPS-4711)\""
        )),
        "{out}"
    );
    assert!(
        out.contains("Precondition not held: no-foreign-pause"),
        "{out}"
    );
    assert!(err.contains("--take-over-pause"), "{err}");
    let json = supsvc(&s.kubeconfig, &["fix", "--dry-run=client", "-o", "json"]).await;
    let plan: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(plan["preconditions"]["refusal"]["code"], "foreign-pause");
    assert_eq!(
        plan["preconditions"]["foreignPauses"][0]["manager"],
        "kubectl-patch"
    );

    // -y is not the flag: refused before any write, the pause kept.
    let fix = supsvc(&s.kubeconfig, &["fix", "-y", "--timeout", "2m"]).await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 1, "{out}\n{err}");
    assert!(err.contains("refusing to fix"), "{err}");
    assert!(err.contains("holding the hot-fixed"), "{err}");
    assert!(plugin_writes(&s).is_empty(), "{:#?}", plugin_writes(&s));
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    assert_eq!(parent["spec"]["paused"], true);

    // Taken over explicitly: the run completes and removes the pause.
    let fix = supsvc(
        &s.kubeconfig,
        &[
            "fix",
            "-y",
            "--take-over-pause",
            "--timeout",
            "3m",
            "--poll-interval=100ms",
        ],
    )
    .await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 0, "{out}\n{err}");
    assert!(out.contains("This run takes it over"), "{out}");
    assert!(out.contains("Succeeded:"), "{out}");
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    assert_ne!(parent["spec"]["paused"], true);
    assert!(reconciled(&parent), "{}", parent["status"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_the_parents_own_failing_fetch_is_diagnosed_and_fix_refuses_before_any_write() {
    let scenario = fixture("r11-not-the-kb/scenario.yaml");
    let s = Supervisor::start(scenario.to_str().expect("utf-8 path"), TIME_SCALE).await;

    let out = supsvc(&s.kubeconfig, &["diagnose"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("ERROR [fetch-failed]"), "{stdout}");
    assert!(stdout.contains("harbor.corp.local"), "{stdout}");
    assert!(!stdout.contains("[reconcile-deadlock]"), "{stdout}");
    assert!(stdout.contains("would refuse (not-the-kb)"), "{stdout}");
    let json = supsvc(&s.kubeconfig, &["diagnose", "-o", "json"]).await;
    let report: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(report["fixPreconditions"]["refusal"]["code"], "not-the-kb");
    let kb = report["fixPreconditions"]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "kb-signature"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(kb["held"], false, "{kb}");

    s.sim.api().audit().clear();
    let fix = supsvc(&s.kubeconfig, &["fix", "-y", "--timeout", "30s"]).await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 1, "{out}\n{err}");
    assert!(err.contains("refusing to fix"), "{err}");
    assert!(err.contains("harbor.corp.local"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(
        !err.contains("--timeout"),
        "no advice to wait longer: {err}"
    );
    assert!(plugin_writes(&s).is_empty(), "{:#?}", plugin_writes(&s));
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    assert_ne!(parent["spec"]["paused"], true);
    for c in TKG_CHILDREN {
        let child = s.get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, c).await;
        assert!(child["metadata"]["labels"]["supsvc.io/fix-trigger"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_writes_kapps_texts_as_kapp_writes_them() {
    // Every end-to-end test runs on the real layout: the wait failure over two lines.
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let app = s.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await;
    let message = app["status"]["usefulErrorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("kapp: Error: waiting on reconcile packageinstall/"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "(packaging.carvel.dev/v1alpha1) namespace: {TKG_DOMAIN}:\n  Finished unsuccessfully (Reconcile failed:  (message: Error (see .status.usefulErrorMessage for details)))"
        )),
        "{message}"
    );
    let child = s
        .get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, TKG_CHILDREN[0])
        .await;
    assert_eq!(
        child["status"]["friendlyDescription"],
        "Reconcile failed: Error (see .status.usefulErrorMessage for details)"
    );
    let child_message = child["status"]["usefulErrorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        child_message.starts_with("vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n"),
        "{child_message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kb_repair_half_done_by_hand_is_recognised_and_completed() {
    let s = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    // The KB's first two commands, as written: pause the parent, label the children.
    let mut script = String::from(
        "kubectl patch pkgi/svc-tkg.vsphere.vmware.com --namespace vmware-system-supervisor-services --type='json' --patch='[{\"op\": \"add\", \"path\": \"/spec/paused\", \"value\":true}]'\n",
    );
    for child in TKG_CHILDREN {
        script.push_str(&format!(
            "kubectl patch pkgi -n {TKG_DOMAIN} --type='merge' --patch '{{\"metadata\":{{\"labels\":{{\"fix-trigger\":\"true\"}}}}}}' {child}\n"
        ));
    }
    let out = s.sh(&script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dry = supsvc(&s.kubeconfig, &["fix", "--dry-run=client"]).await;
    let (out, err) = text(&dry);
    assert_eq!(code(&dry), 0, "{out}\n{err}");
    assert!(out.contains("Precondition held: hand-repair"), "{out}");
    assert!(
        out.contains(&format!("Existing pause, not made by fix: pkgi/{TKG}")),
        "the plan names the pause it completes: {out}"
    );

    let fix = supsvc(
        &s.kubeconfig,
        &["fix", "-y", "--timeout", "3m", "--poll-interval=100ms"],
    )
    .await;
    let (out, err) = text(&fix);
    assert_eq!(code(&fix), 0, "{out}\n{err}");
    assert!(out.contains("Succeeded:"), "{out}");
    let parent = eventually(Duration::from_secs(60), "the parent reconciled", || async {
        let p = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
        reconciled(&p).then_some(p)
    })
    .await;
    assert_ne!(parent["spec"]["paused"], true);
}
