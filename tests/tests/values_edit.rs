//! `kubectl supsvc values-edit` against the simulated Harbor Supervisor Service: the blog's DO (grow the
//! registry through the values, by editor, `--set` and `-f`), its DON'T refused before anything is
//! written, `--force` then `--rollback`, kubectl edit's cancellations and reopening, and bad input.
//! Driven through the built binary and through the real `kubectl supsvc`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use supsvc_sim::api::gvr;
use supsvc_tests::plugin::{Run, Via, supsvc_command};
use supsvc_tests::{SERVICES_NAMESPACE, Supervisor, eventually, one_line, reconciled};

const HARBOR: &str = "svc-harbor.tanzu.vmware.com";
const DOMAIN: &str = "svc-harbor-domain-c8";
const SECRET: &str = "svc-harbor.tanzu.vmware.com-values";
const PREVIOUS: &str = "svc-harbor.tanzu.vmware.com-values-previous";
const TIME_SCALE: f64 = 0.001;
const REGISTRY_SIZE: &str = "persistence.persistentVolumeClaim.registry.size";

const STATEFULSET_MESSAGE: &str = "StatefulSet.apps \"harbor-database\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
const SHRINK_MESSAGE: &str =
    "spec.resources.requests.storage: Forbidden: field can not be less than previous value";
/// The secrets of the harbor scenario's values: never printed unless --show-secrets.
const SECRETS_IN_VALUES: [&str; 3] = ["Harbor-Admin-1234!", "0123456789abcdef", "db-Secret-5678"];

/// `kubectl supsvc ARGS` (or the binary) against the scenario, with `env` added.
async fn supsvc(sup: &Supervisor, via: Via, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = supsvc_command(via, &sup.kubeconfig);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(cmd).await
}

/// An editor script (sh) written into the test's directory.
fn editor(sup: &Supervisor, name: &str, body: &str) -> PathBuf {
    let path = sup.dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

async fn secret(sup: &Supervisor, name: &str) -> Value {
    sup.get(gvr::SECRETS, SERVICES_NAMESPACE, name).await
}

async fn secret_exists(sup: &Supervisor, name: &str) -> bool {
    sup.admin()
        .get(gvr::SECRETS, Some(SERVICES_NAMESPACE), name)
        .await
        .is_ok()
}

fn decoded(secret: &Value, key: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][key].as_str().unwrap_or_default())
        .unwrap();
    String::from_utf8(b).unwrap()
}

async fn resource_version(sup: &Supervisor) -> String {
    secret(sup, SECRET).await["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn pvc_size(sup: &Supervisor) -> String {
    sup.get(gvr::PERSISTENT_VOLUME_CLAIMS, DOMAIN, "harbor-registry")
        .await["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn harbor_reconciled(sup: &Supervisor) -> bool {
    reconciled(&sup.get(gvr::APPS, SERVICES_NAMESPACE, HARBOR).await)
        && reconciled(
            &sup.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, HARBOR)
                .await,
        )
}

/// The service comes back to reconciled on its own (kapp-controller's periodic sync, fast at this time
/// scale, makes it `Reconciling` for a moment now and then: a single read could land there).
async fn settles_reconciled(sup: &Supervisor) {
    eventually(Duration::from_secs(30), "harbor reconciled", || async {
        harbor_reconciled(sup).await.then_some(())
    })
    .await;
}

/// The service as the operator checks it afterwards: the real kubectl's DESCRIPTION column.
fn description(sup: &Supervisor) -> String {
    sup.kubectl_ok(&["get", "pkgi", HARBOR, "-n", SERVICES_NAMESPACE])
}

fn assert_no_secrets(text: &str) {
    for s in SECRETS_IN_VALUES {
        assert!(!text.contains(s), "{s} printed: {text}");
    }
}

async fn grown(sup: &Supervisor, run: &Run) {
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Reconcile succeeded"), "{}", run.stdout);
    assert!(
        run.stdout.contains("-      size: 55Gi") && run.stdout.contains("+      size: 60Gi"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("grows the volume from 55Gi to 60Gi"),
        "{}",
        run.stdout
    );
    assert_no_secrets(&run.all());
    assert_eq!(pvc_size(sup).await, "60Gi");
    settles_reconciled(sup).await;
    assert!(description(sup).contains("Reconcile succeeded"));
    // The previous values are kept in a Secret of their own, and only there.
    let previous = secret(sup, PREVIOUS).await;
    assert!(decoded(&previous, "values.yaml").contains("size: 55Gi"));
    assert!(decoded(&secret(sup, SECRET).await, "values.yaml").contains("size: 60Gi"));
    let pkgi = sup
        .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, HARBOR)
        .await;
    assert!(pkgi["spec"]["paused"].is_null(), "left unpaused: {pkgi}");
    let everything = format!(
        "{}{}",
        pkgi,
        sup.get(gvr::APPS, SERVICES_NAMESPACE, HARBOR).await
    );
    assert_no_secrets(&everything);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_grows_the_registry_to_60gi_and_the_service_reconciles() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let copy = sup.dir.path().join("seen.yaml");
    let ed = editor(
        &sup,
        "grow.sh",
        &format!(
            "cp \"$1\" {}\nsed -i 's/size: 55Gi/size: 60Gi/' \"$1\"",
            copy.display()
        ),
    );
    let run = supsvc(
        &sup,
        Via::Binary,
        &["values-edit", HARBOR],
        &[("KUBE_EDITOR", ed.to_str().unwrap())],
    )
    .await;
    grown(&sup, &run).await;
    // The editor saw kubectl edit's header and the decoded values.
    let seen = std::fs::read_to_string(&copy).unwrap();
    assert!(
        seen.starts_with("# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit."),
        "{seen}"
    );
    assert!(
        seen.contains("size: 55Gi") && seen.contains("hostname: harbor.cpod-nsxv8"),
        "{seen}"
    );
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_supsvc_with_editor_and_set_grows_the_registry() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    // EDITOR is used when KUBE_EDITOR is not set.
    let ed = editor(&sup, "grow.sh", "sed -i 's/size: 55Gi/size: 60Gi/' \"$1\"");
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &["values-edit", HARBOR],
        &[("EDITOR", ed.to_str().unwrap())],
    )
    .await;
    grown(&sup, &run).await;
    sup.sim.stop().await;

    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &[
            "values-edit",
            HARBOR,
            "--set",
            &format!("{REGISTRY_SIZE}=60Gi"),
        ],
        &[],
    )
    .await;
    grown(&sup, &run).await;
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_values_file_grow_the_registry() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "values-edit",
            HARBOR,
            "--set",
            &format!("{REGISTRY_SIZE}=60Gi"),
        ],
        &[],
    )
    .await;
    grown(&sup, &run).await;
    sup.sim.stop().await;

    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let values =
        decoded(&secret(&sup, SECRET).await, "values.yaml").replace("size: 55Gi", "size: 60Gi");
    let file = sup.dir.path().join("harbor-values.yaml");
    std::fs::write(&file, &values).unwrap();
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &["values-edit", HARBOR, "-f", file.to_str().unwrap()],
        &[],
    )
    .await;
    grown(&sup, &run).await;
    // -f keeps the file as written (its layout and comments), not a re-serialisation.
    assert_eq!(decoded(&secret(&sup, SECRET).await, "values.yaml"), values);

    // -o json: the result for scripts, secrets masked. The values are now 60Gi: grow again to 61Gi.
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "values-edit",
            HARBOR,
            "--set",
            &format!("{REGISTRY_SIZE}=61Gi"),
            "--set",
            "database.password=n3w-Pass",
            "-o",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let out: Value = serde_json::from_str(&run.stdout).expect("json on stdout");
    assert_eq!(out["written"], true);
    assert_eq!(out["reconcile"], "ReconcileSucceeded");
    assert_eq!(out["previousSecret"], PREVIOUS);
    assert_eq!(out["changes"][0]["path"], "database.password");
    assert_eq!(out["changes"][0]["new"], "*** (after)");
    assert_eq!(out["changes"][1]["path"], REGISTRY_SIZE);
    assert_eq!(out["preflight"][0]["verdict"], "allowed");
    assert!(!run.all().contains("n3w-Pass"));
    assert_no_secrets(&run.all());
    assert_eq!(pvc_size(&sup).await, "61Gi");
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_the_cluster_would_refuse_are_refused_before_writing() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let rv = resource_version(&sup).await;
    let file = sup.dir.path().join("db.yaml");
    let values =
        decoded(&secret(&sup, SECRET).await, "values.yaml").replace("size: 2Gi", "size: 5Gi");
    std::fs::write(&file, values).unwrap();
    let cases: Vec<(Via, Vec<String>, &str)> = vec![
        (
            Via::Binary,
            vec!["--set".into(), format!("{REGISTRY_SIZE}=50Gi")],
            SHRINK_MESSAGE,
        ),
        (
            Via::Kubectl,
            vec!["-f".into(), file.display().to_string()],
            STATEFULSET_MESSAGE,
        ),
        (
            Via::Binary,
            vec![
                "--set".into(),
                "persistence.persistentVolumeClaim.database.storageClass=gold".into(),
            ],
            STATEFULSET_MESSAGE,
        ),
        (
            Via::Kubectl,
            vec![
                "--set".into(),
                "persistence.persistentVolumeClaim.registry.storageClass=gold".into(),
            ],
            "spec is immutable after creation",
        ),
    ];
    for (via, extra, message) in cases {
        let mut args = vec!["values-edit", HARBOR];
        args.extend(extra.iter().map(String::as_str));
        let run = supsvc(&sup, via, &args, &[]).await;
        assert_eq!(run.code, 1, "{extra:?}: {}", run.all());
        assert!(
            run.stderr.contains("refused before writing"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(message), "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("Instead:") && run.stderr.contains("--force"),
            "{}",
            run.stderr
        );
        assert_eq!(
            resource_version(&sup).await,
            rv,
            "{extra:?}: nothing written"
        );
        assert!(!secret_exists(&sup, PREVIOUS).await);
    }
    // The editor: the refusal reopens the file; saving it unchanged cancels and keeps the copy.
    let copy = sup.dir.path().join("reopened.yaml");
    let ed = editor(
        &sup,
        "shrink.sh",
        &format!(
            "cp \"$1\" {}\nsed -i 's/size: 55Gi/size: 50Gi/' \"$1\"",
            copy.display()
        ),
    );
    let run = supsvc(
        &sup,
        Via::Binary,
        &["values-edit", HARBOR],
        &[("KUBE_EDITOR", ed.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("Edit cancelled, no valid changes were saved."),
        "{}",
        run.stderr
    );
    let kept = run
        .stderr
        .split("A copy of your changes has been stored to \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the kept copy's path")
        .to_owned();
    let kept_text = std::fs::read_to_string(&kept).unwrap();
    assert!(kept_text.contains("size: 50Gi"), "{kept_text}");
    let reopened = std::fs::read_to_string(&copy).unwrap();
    assert!(reopened.contains("# * persistence.persistentVolumeClaim.registry.size drives persistentvolumeclaim/harbor-registry"), "{reopened}");
    assert!(reopened.contains(SHRINK_MESSAGE), "{reopened}");
    std::fs::remove_file(kept).unwrap();
    assert_eq!(resource_version(&sup).await, rv, "nothing written");
    assert_eq!(pvc_size(&sup).await, "55Gi");
    settles_reconciled(&sup).await;
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_changes_fail_and_rollback_restores_a_healthy_service() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    // The blog's DON'T, forced: the StatefulSet's volume claim template.
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "values-edit",
            HARBOR,
            "--set",
            "persistence.persistentVolumeClaim.database.size=5Gi",
            "--force",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("the cluster will REFUSE it"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("Reconcile failed with the new values")
            && run.stderr.contains(STATEFULSET_MESSAGE),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--rollback"), "{}", run.stderr);
    // The App keeps retrying with backoff (milliseconds at this time scale), so it flips between
    // Reconciling and the failure: what holds is that every attempt fails.
    eventually(
        Duration::from_secs(20),
        "the App to show its failed reconcile",
        || async {
            let app = sup.get(gvr::APPS, SERVICES_NAMESPACE, HARBOR).await;
            let failed = app["status"]["conditions"][0]["type"] == "ReconcileFailed"
                && one_line(
                    app["status"]["usefulErrorMessage"]
                        .as_str()
                        .unwrap_or_default(),
                )
                .contains(STATEFULSET_MESSAGE);
            failed.then_some(())
        },
    )
    .await;
    assert!(
        !harbor_reconciled(&sup).await,
        "the forced change cannot reconcile"
    );

    let run = supsvc(
        &sup,
        Via::Kubectl,
        &["values-edit", HARBOR, "--rollback"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("-      size: 5Gi") && run.stdout.contains("+      size: 2Gi"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Reconcile succeeded"), "{}", run.stdout);
    settles_reconciled(&sup).await;
    // The periodic re-reconcile (0.6 s here) may show Reconciling for a moment.
    eventually(
        Duration::from_secs(20),
        "kubectl to show Reconcile succeeded",
        || async {
            description(&sup)
                .contains("Reconcile succeeded")
                .then_some(())
        },
    )
    .await;
    assert!(decoded(&secret(&sup, SECRET).await, "values.yaml").contains("size: 2Gi"));

    // A forced shrink with --rollback-on-failure: failed, rolled back, healthy, exit 1.
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "values-edit",
            HARBOR,
            "--set",
            &format!("{REGISTRY_SIZE}=50Gi"),
            "--force",
            "--rollback-on-failure",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains(SHRINK_MESSAGE), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "rolled back: svc-harbor.tanzu.vmware.com Reconcile succeeded with the previous values"
        ),
        "{}",
        run.stderr
    );
    eventually(Duration::from_secs(10), "harbor reconciled", || async {
        harbor_reconciled(&sup).await.then_some(())
    })
    .await;
    assert!(decoded(&secret(&sup, SECRET).await, "values.yaml").contains("size: 55Gi"));
    assert_eq!(pvc_size(&sup).await, "55Gi");
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_cancels_and_reopens_as_kubectl_edit_does() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let rv = resource_version(&sup).await;
    let cases = [
        ("true", "Edit cancelled, no changes made."),
        ("unchanged.sh", "Edit cancelled, no changes made."),
        ("empty.sh", "Edit cancelled, saved file was empty."),
        ("comments.sh", "Edit cancelled, saved file was empty."),
    ];
    editor(
        &sup,
        "unchanged.sh",
        "sed -i 's/^hostname/hostname/' \"$1\"",
    );
    editor(&sup, "empty.sh", ": > \"$1\"");
    editor(&sup, "comments.sh", "sed -i 's/^/#/' \"$1\"");
    for (script, message) in cases {
        let ed = if script == "true" {
            "true".to_owned()
        } else {
            sup.dir.path().join(script).display().to_string()
        };
        let run = supsvc(
            &sup,
            Via::Binary,
            &["values-edit", HARBOR],
            &[("KUBE_EDITOR", &ed)],
        )
        .await;
        assert_eq!(run.code, 0, "{script}: {}", run.all());
        assert_eq!(run.stdout.trim(), message, "{script}");
    }
    assert_eq!(resource_version(&sup).await, rv);

    // Invalid YAML, then a schema violation, then a valid change: reopened twice with the errors on top.
    let log = sup.dir.path().join("log");
    let script = format!(
        r#"n=$(cat {log}.n 2>/dev/null || echo 0); echo $((n+1)) > {log}.n
cp "$1" {log}.$n
case $n in
0) printf 'persistence: [\n' >> "$1" ;;
1) grep -v '^persistence: \[$' "$1" > "$1.tmp"; sed 's/size: 55Gi/size: 60GB/' "$1.tmp" > "$1" ;;
*) sed -i 's/size: 60GB/size: 60Gi/' "$1" ;;
esac"#,
        log = log.display()
    );
    let ed = editor(&sup, "steps.sh", &script);
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &["values-edit", HARBOR],
        &[("KUBE_EDITOR", ed.to_str().unwrap())],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let second = std::fs::read_to_string(format!("{}.1", log.display())).unwrap();
    assert!(
        second.starts_with("# Please edit the object below."),
        "{second}"
    );
    assert!(second.contains("# * invalid YAML"), "{second}");
    let third = std::fs::read_to_string(format!("{}.2", log.display())).unwrap();
    assert!(third.contains("# * persistence.persistentVolumeClaim.registry.size: Invalid value: \"60GB\": should match '^[0-9]+(Mi|Gi|Ti)$' (valuesSchema of the Package)"), "{third}");
    assert_eq!(pvc_size(&sup).await, "60Gi");
    settles_reconciled(&sup).await;

    // A failing editor: an error, nothing written.
    let rv = resource_version(&sup).await;
    let run = supsvc(
        &sup,
        Via::Binary,
        &["values-edit", HARBOR],
        &[("KUBE_EDITOR", "false")],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("error: the editor \"false\" exited"),
        "{}",
        run.stderr
    );
    assert_eq!(resource_version(&sup).await, rv);
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_and_secrets() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let rv = resource_version(&sup).await;
    let args = [
        "values-edit",
        HARBOR,
        "--set",
        "database.password=n3w-Pass",
        "--set",
        &format!("{REGISTRY_SIZE}=60Gi"),
    ];
    for dry in ["--dry-run", "--dry-run=server"] {
        let mut a = args.to_vec();
        a.push(dry);
        let run = supsvc(&sup, Via::Binary, &a, &[]).await;
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(run.stdout.contains("nothing was written"), "{}", run.stdout);
        assert!(
            run.stdout.contains("-  password: \"*** (before)\"")
                && run.stdout.contains("+  password: \"*** (after)\""),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("--show-secrets"), "{}", run.stdout);
        assert!(!run.all().contains("n3w-Pass"));
        assert_no_secrets(&run.all());
        assert_eq!(resource_version(&sup).await, rv, "{dry}");
    }
    let mut a = args.to_vec();
    a.extend(["--dry-run", "--show-secrets"]);
    let run = supsvc(&sup, Via::Kubectl, &a, &[]).await;
    assert!(
        run.stdout.contains("db-Secret-5678") && run.stdout.contains("n3w-Pass"),
        "{}",
        run.stdout
    );
    assert_eq!(pvc_size(&sup).await, "55Gi");
    assert!(!secret_exists(&sup, PREVIOUS).await);
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_clearly_and_writes_nothing() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let rv = resource_version(&sup).await;
    let missing = sup.dir.path().join("missing.yaml");
    let list = sup.dir.path().join("list.yaml");
    std::fs::write(&list, "- a\n- b\n").unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "values-edit".into(),
                "svc-harbr.tanzu.vmware.com".into(),
                "--set".into(),
                "a=b".into(),
            ],
            1,
            "service \"svc-harbr.tanzu.vmware.com\" not found",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "--set".into(),
                "novalue".into(),
            ],
            2,
            "expected path=value",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "--set".into(),
                "hostname.x=1".into(),
            ],
            2,
            "hostname is a string, not a map",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "--set".into(),
                format!("{REGISTRY_SIZE}=60GB"),
            ],
            1,
            "should match '^[0-9]+(Mi|Gi|Ti)$'",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "--set".into(),
                "persistence.persistentVolumeClaim.registry.sise=1Gi".into(),
            ],
            1,
            "unknown field \"sise\"",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "-f".into(),
                missing.display().to_string(),
            ],
            2,
            "cannot read -f",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "-f".into(),
                list.display().to_string(),
            ],
            1,
            "must be a YAML map",
        ),
        (
            vec!["values-edit".into(), HARBOR.into(), "--rollback".into()],
            1,
            "no previous values",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "--secret".into(),
                "other".into(),
                "--set".into(),
                "a=b".into(),
            ],
            2,
            "does not take values from Secret other",
        ),
        (
            vec![
                "values-edit".into(),
                HARBOR.into(),
                "--rollback".into(),
                "--set".into(),
                "a=b".into(),
            ],
            2,
            "cannot be used with",
        ),
        (
            vec![
                "--context".into(),
                "supervisor-viewer".into(),
                "values-edit".into(),
                HARBOR.into(),
                "--set".into(),
                format!("{REGISTRY_SIZE}=60Gi"),
            ],
            1,
            "(403)",
        ),
    ];
    for (args, code, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = supsvc(&sup, Via::Binary, &args, &[]).await;
        assert_eq!(run.code, code, "{args:?}: {}", run.all());
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        // The error comes first, after at most the warning that a Supervisor-side write does not
        // persist (given once the change itself is valid).
        let first = run
            .stderr
            .lines()
            .find(|l| !l.starts_with("warning: "))
            .unwrap_or_default();
        assert!(first.starts_with("error:"), "{args:?}: {}", run.stderr);
        if code == 1 {
            assert!(run.stderr.contains("\nhint: "), "{args:?}: {}", run.stderr);
        }
        assert_eq!(
            resource_version(&sup).await,
            rv,
            "{args:?}: nothing written"
        );
        assert!(!secret_exists(&sup, PREVIOUS).await, "{args:?}");
        let pkgi = sup
            .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, HARBOR)
            .await;
        assert!(
            pkgi["spec"]["paused"].is_null(),
            "{args:?}: not left paused"
        );
    }
    settles_reconciled(&sup).await;
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_values_gets_a_secret_as_kctrl_makes_it() {
    let sup = Supervisor::start("healthy", TIME_SCALE).await;
    let tkg = supsvc_tests::TKG;
    let name = format!("{tkg}-{SERVICES_NAMESPACE}-values");
    let run = supsvc(
        &sup,
        Via::Binary,
        &["values-edit", tkg, "--set", "example.replicas=2"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Reconcile succeeded"), "{}", run.stdout);
    let created = secret(&sup, &name).await;
    assert_eq!(
        decoded(&created, "values.yaml").trim(),
        "example:\n  replicas: 2"
    );
    let pkgi = sup
        .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, tkg)
        .await;
    assert_eq!(
        pkgi["spec"]["values"][0]["secretRef"]["name"],
        name.as_str()
    );
    assert_eq!(pkgi["spec"]["values"][0]["secretRef"]["key"], "values.yaml");
    assert!(reconciled(&pkgi));
    assert!(reconciled(
        &sup.get(gvr::APPS, SERVICES_NAMESPACE, tkg).await
    ));
    sup.sim.stop().await;
}

/// Field case r12: the database volume's size in another spelling (`2048Mi` for the live template's `2Gi`)
/// is the same quantity. The API server compares quantities by value (Semantic.DeepEqual in
/// ValidateStatefulSetUpdate), so the pre-flight lets it through with a note and the simulator accepts
/// kapp's update of the StatefulSet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_size_in_another_unit_is_accepted() {
    let sup = Supervisor::start("harbor", TIME_SCALE).await;
    let template_size = |sts: &Value| {
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let before = sup.get(gvr::STATEFUL_SETS, DOMAIN, "harbor-database").await;
    assert_eq!(template_size(&before), "2Gi");
    // (The Package's schema takes Mi, Gi or Ti only: `^[0-9]+(Mi|Gi|Ti)$`.)
    for (via, size) in [(Via::Kubectl, "2048Mi"), (Via::Binary, "2Gi")] {
        let run = supsvc(
            &sup,
            via,
            &[
                "values-edit",
                "svc-harbor",
                "--set",
                &format!("persistence.persistentVolumeClaim.database.size={size}"),
            ],
            &[],
        )
        .await;
        assert_eq!(run.code, 0, "{size}: {}", run.all());
        assert!(!run.all().contains("refused"), "{}", run.all());
        assert!(
            run.stdout.contains("the same quantity as"),
            "{size}: {}",
            run.stdout
        );
        assert!(run.stdout.contains("Reconcile succeeded"), "{}", run.stdout);
        settles_reconciled(&sup).await;
        assert!(description(&sup).contains("Reconcile succeeded"));
        assert!(
            decoded(&secret(&sup, SECRET).await, "values.yaml").contains(&format!("size: {size}"))
        );
    }
    // A different size is still refused.
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "values-edit",
            "svc-harbor",
            "--set",
            "persistence.persistentVolumeClaim.database.size=3Gi",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains(STATEFULSET_MESSAGE), "{}", run.stderr);
    sup.sim.stop().await;
}
