//! `kubectl supsvc values-edit --vcenter` through the real kubectl on the simulated Supervisor and the
//! simulated vCenter joined to it: the exact order and bodies of the vCenter calls, the platform's keys
//! kept, a concurrent change aborting before any write, a direct Secret edit reported as drift, a 401
//! mid-run, a 500 on PUT leaving nothing half-written, both route families, and bad input (wrong
//! password, unreachable vCenter, a certificate that does not verify, an unknown service, values that
//! are not YAML), each a clear error with nothing written.

use base64::Engine;
use serde_json::Value;
use supsvc_sim::api::gvr;
use supsvc_sim::vcenter::{Action, Release, Trigger};
use supsvc_tests::SERVICES_NAMESPACE;
use supsvc_tests::plugin::Run;

const PKGI: &str = "svc-harbor.tanzu.vmware.com";
const ID: &str = "harbor.tanzu.vmware.com";
const SECRET: &str = "svc-harbor.tanzu.vmware.com-values";
const VERSION: &str = "2.9.1+vmware.1";
const REGISTRY_SIZE: &str = "persistence.persistentVolumeClaim.registry.size";

/// The shared site, with this file's own checks beside it.
struct Site(supsvc_tests::vcenter::Site);

impl std::ops::Deref for Site {
    type Target = supsvc_tests::vcenter::Site;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

async fn site(release: Release) -> Site {
    Site(supsvc_tests::vcenter::Site::start(release).await)
}

impl Site {
    /// `kubectl supsvc values-edit ...` with the vCenter's URL, CA and password (env) unless overridden.
    async fn values_edit(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec!["values-edit"];
        all.extend_from_slice(args);
        self.0.supsvc(&all, env).await
    }

    async fn secret(&self) -> Value {
        self.sup.get(gvr::SECRETS, SERVICES_NAMESPACE, SECRET).await
    }

    async fn secret_text(&self) -> String {
        let s = self.secret().await;
        decode(s["data"]["values.yaml"].as_str().unwrap())
    }

    fn stored(&self) -> Value {
        parse(&self.vc.stored_config(ID).unwrap())
    }

    fn puts(&self) -> Vec<supsvc_sim::vcenter::Recorded> {
        self.vc
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .collect()
    }

    /// Nothing was written: no PUT answered 2xx, vCenter's copy and the Secret as they were.
    async fn nothing_written(&self, stored: &str, secret_rv: &str) {
        assert!(
            self.puts().iter().all(|p| p.status >= 300),
            "{:?}",
            self.lines()
        );
        assert_eq!(self.vc.stored_config(ID).unwrap(), stored);
        assert_eq!(
            self.secret().await["metadata"]["resourceVersion"],
            secret_rv,
            "the Secret was written"
        );
    }
}

fn decode(b64: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn parse(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

fn set_size(config: &mut Value, size: &str) {
    config["persistence"]["persistentVolumeClaim"]["registry"]["size"] = Value::from(size);
}

const BASE: &str = "/api/vcenter/namespace-management";

#[tokio::test]
async fn a_round_trip_through_vcenter_keeps_the_platform_keys_and_persists() {
    let s = site(Release::V8_0_3).await;
    let before = s.stored();
    assert_eq!(
        before["namespace"], "svc-harbor-domain-c8",
        "vCenter's own key"
    );
    let set = format!("{REGISTRY_SIZE}=60Gi");
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("Reconcile succeeded"), "{}", run.stdout);
    assert!(!run.stdout.contains("drift"), "{}", run.stdout);
    assert!(
        !run.all().contains("Harbor-Admin-1234!"),
        "a secret printed"
    );

    // The exact calls: login, version, the Supervisor by its endpoint, read, re-read, PUT, follow, logout.
    let record = format!("{BASE}/clusters/domain-c8/supervisor-services/{ID}");
    let lines = s.lines();
    let want_head = [
        "POST /api/session".to_owned(),
        "GET /api/appliance/system/version".to_owned(),
        format!("GET {BASE}/clusters"),
        format!("GET {BASE}/clusters/domain-c8"),
        format!("GET {record}"),
        format!("GET {record}"),
        format!("PUT {record}"),
    ];
    assert_eq!(lines[..want_head.len()], want_head, "{lines:#?}");
    let rest = &lines[want_head.len()..];
    assert_eq!(rest.last().map(String::as_str), Some("DELETE /api/session"));
    assert!(
        rest[..rest.len() - 1]
            .iter()
            .all(|l| *l == format!("GET {record}")),
        "only polls of the record after the PUT: {rest:#?}"
    );
    assert!(s.vc.requests().iter().all(|r| r.status < 300), "{lines:#?}");

    // The PUT carries the whole spec: the installed version and the whole config, platform key kept.
    let puts = s.puts();
    let body = puts[0].body.as_ref().unwrap();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["version", "yaml_service_config"]
    );
    assert_eq!(body["version"], VERSION);
    let mut want = before.clone();
    set_size(&mut want, "60Gi");
    assert_eq!(
        parse(&decode(body["yaml_service_config"].as_str().unwrap())),
        want
    );
    // vCenter holds it, the Supervisor's Secret is vCenter's copy, the PVC grew.
    assert_eq!(s.stored(), want);
    assert_eq!(parse(&s.secret_text().await), want);
    let pvc = s
        .sup
        .get(
            gvr::PERSISTENT_VOLUME_CLAIMS,
            "svc-harbor-domain-c8",
            "harbor-registry",
        )
        .await;
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "60Gi");
    assert_eq!(
        s.vc.install_state(ID).await.unwrap().2,
        "CONFIGURED",
        "vCenter's config_status"
    );

    // The next configure from vCenter (the vSphere Client's editor) keeps the change: it is vCenter's copy.
    s.vc.edit_config(ID, &s.vc.stored_config(ID).unwrap())
        .await
        .unwrap();
    assert_eq!(parse(&s.secret_text().await), want);

    // A -f file that changes the platform's key is refused before any write.
    let file = s.sup.dir.path().join("values.yaml");
    let mut mine = want.clone();
    mine["namespace"] = Value::from("mine");
    std::fs::write(&file, serde_json::to_string(&mine).unwrap()).unwrap();
    let stored = s.vc.stored_config(ID).unwrap();
    let rv = s.secret().await["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    s.vc.clear_requests();
    let run = s
        .values_edit(
            &[PKGI, "--vcenter", &s.vc.url, "-f", file.to_str().unwrap()],
            &[],
        )
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("changes namespace, which vCenter set"),
        "{}",
        run.stderr
    );
    s.nothing_written(&stored, &rv).await;
}

#[tokio::test]
async fn the_9x_supervisor_routes_are_chosen_from_the_version() {
    let s = site(Release::V9_1_0).await;
    let set = format!("{REGISTRY_SIZE}=60Gi");
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let record = format!("{BASE}/supervisors/supervisor-1a2b3c/supervisor-services/{ID}");
    let lines = s.lines();
    assert_eq!(
        lines[..7],
        [
            "POST /api/session".to_owned(),
            "GET /api/appliance/system/version".to_owned(),
            format!("GET {BASE}/supervisors/summaries"),
            format!("GET {record}"),
            format!("GET {record}"),
            format!("PUT {record}"),
            format!("GET {record}"),
        ],
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("/clusters/")),
        "{lines:#?}"
    );
    let mut want = parse(&s.secret_text().await);
    set_size(&mut want, "60Gi");
    assert_eq!(s.stored(), want);

    // A second change, then --rollback: the config it replaced comes back from the local undo file.
    let run = s
        .values_edit(
            &[
                PKGI,
                "--vcenter",
                &s.vc.url,
                "--set",
                "hostname=harbor.new.example.com",
            ],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("--rollback restores it"),
        "{}",
        run.stdout
    );
    assert_eq!(s.stored()["hostname"], "harbor.new.example.com");
    let undo = s.sup.dir.path().join(format!("undo/{ID}.yaml"));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&undo).unwrap().permissions())
            & 0o777,
        0o600,
        "the undo file holds passwords"
    );
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--rollback"], &[])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(s.stored(), want, "the values before the hostname change");
    assert_eq!(parse(&s.secret_text().await), want);
}

#[tokio::test]
async fn a_concurrent_change_in_vcenter_aborts_before_writing() {
    let s = site(Release::V8_0_3).await;
    let record = format!("/clusters/domain-c8/supervisor-services/{ID}");
    // Someone saves a new config in the vSphere Client between values-edit's read and its re-read.
    let mut theirs = s.stored();
    theirs["hostname"] = Value::from("harbor.other.example.com");
    let theirs_text = serde_json::to_string(&theirs).unwrap();
    s.vc.trigger(Trigger {
        method: "GET".into(),
        path: record.clone(),
        skip: 1,
        times: 1,
        action: Action::EditConfig {
            service: ID.into(),
            yaml: theirs_text.clone(),
        },
    });
    let set = format!("{REGISTRY_SIZE}=60Gi");
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("the service changed in vCenter while you edited it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("run values-edit --vcenter again"),
        "{}",
        run.stderr
    );
    assert!(s.puts().is_empty(), "{:#?}", s.lines());
    // Their change stands, not a mix.
    assert_eq!(s.vc.stored_config(ID).unwrap(), theirs_text);
    assert_eq!(s.lines().last().unwrap(), "DELETE /api/session");
}

#[tokio::test]
async fn a_direct_secret_edit_is_reported_as_drift_and_replaced_by_vcenters_copy() {
    let s = site(Release::V8_0_3).await;
    let vcenter_copy = s.stored();
    // The operator edits the Secret on the Supervisor directly.
    let mut drifted = vcenter_copy.clone();
    drifted["hostname"] = Value::from("harbor.direct-edit.example.com");
    let mut secret = s.secret().await;
    secret["data"]["values.yaml"] = Value::from(
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_string(&drifted).unwrap()),
    );
    s.sup
        .admin()
        .update(
            gvr::SECRETS,
            Some(SERVICES_NAMESPACE),
            secret,
            &Default::default(),
        )
        .await
        .unwrap();

    let set = format!("{REGISTRY_SIZE}=60Gi");
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("drift:"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "hostname: vCenter \"harbor.cpod-nsxv8.az-stc.cloud-garage.net\" / Secret \"harbor.direct-edit.example.com\""
        ),
        "{}",
        run.stdout
    );
    // vCenter's copy (with the new size) is what the Supervisor runs now: the direct edit is gone.
    let mut want = vcenter_copy;
    set_size(&mut want, "60Gi");
    assert_eq!(parse(&s.secret_text().await), want);
}

#[tokio::test]
async fn a_401_mid_run_logs_in_again_and_a_500_on_put_writes_nothing() {
    let s = site(Release::V8_0_3).await;
    let record = format!("/clusters/domain-c8/supervisor-services/{ID}");
    // The session expires right before the PUT.
    s.vc.trigger(Trigger {
        method: "PUT".into(),
        path: record.clone(),
        skip: 0,
        times: 1,
        action: Action::ExpireSessions,
    });
    let set = format!("{REGISTRY_SIZE}=60Gi");
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let calls: Vec<(String, u16)> =
        s.vc.requests()
            .iter()
            .map(|r| (r.line(), r.status))
            .collect();
    let put = calls
        .iter()
        .position(|(l, _)| l.starts_with("PUT "))
        .unwrap();
    assert_eq!(
        calls[put..put + 3]
            .iter()
            .map(|(l, st)| (
                l.split(' ').next().unwrap().to_owned() + " " + l.rsplit('/').next().unwrap(),
                *st
            ))
            .collect::<Vec<_>>(),
        [
            (format!("PUT {ID}"), 401),
            ("POST session".to_owned(), 201),
            (format!("PUT {ID}"), 204),
        ],
        "{calls:#?}"
    );
    let puts = s.puts();
    assert_eq!(puts[0].body, puts[1].body, "the same PUT, repeated once");

    // A 500 on PUT: nothing written, the error says what to do.
    let stored = s.vc.stored_config(ID).unwrap();
    let rv = s.secret().await["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    s.vc.clear_requests();
    s.vc.trigger(Trigger {
        method: "PUT".into(),
        path: record,
        skip: 0,
        times: 1,
        action: Action::Fail {
            status: 500,
            error_type: "ERROR".into(),
            message: "A general system error occurred.".into(),
        },
    });
    let set = format!("{REGISTRY_SIZE}=70Gi");
    let run = s
        .values_edit(&[PKGI, "--vcenter", &s.vc.url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("answered 500 ERROR: A general system error occurred."),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: vCenter failed"),
        "{}",
        run.stderr
    );
    s.nothing_written(&stored, &rv).await;
    assert_eq!(s.puts().len(), 1, "no retry of a refused write");
}

#[tokio::test]
async fn bad_input_is_refused_clearly_with_nothing_written() {
    let s = site(Release::V8_0_3).await;
    let stored = s.vc.stored_config(ID).unwrap();
    let rv = s.secret().await["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = format!("{REGISTRY_SIZE}=60Gi");
    let url = s.vc.url.clone();
    let sup_ca = s.sup.dir.path().join("supervisor-ca.pem");
    std::fs::write(&sup_ca, s.sup.sim.ca().pem()).unwrap();
    let not_yaml = s.sup.dir.path().join("bad.yaml");
    std::fs::write(&not_yaml, "persistence: [\n").unwrap();
    /// (what, extra arguments, extra environment, what the error says, what the hint says)
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "wrong password",
            vec![PKGI, "--vcenter", &url, "--set", &set],
            vec![("SUPSVC_VCENTER_PASSWORD", "wrong")],
            "refused the login of administrator@vsphere.local",
            "check --vcenter-user and the password",
        ),
        (
            "unreachable",
            vec![PKGI, "--vcenter", "https://127.0.0.1:1", "--set", &set],
            vec![],
            "cannot reach vCenter at https://127.0.0.1:1",
            "check --vcenter",
        ),
        (
            "certificate that does not verify",
            vec![PKGI, "--vcenter", &url, "--set", &set],
            vec![("SUPSVC_VCENTER_CA_FILE", sup_ca.to_str().unwrap())],
            "does not verify",
            "--vcenter-ca-file",
        ),
        (
            "no password and no terminal",
            vec![PKGI, "--vcenter", &url, "--set", &set],
            vec![("SUPSVC_VCENTER_PASSWORD", "")],
            "no vCenter password",
            "SUPSVC_VCENTER_PASSWORD",
        ),
        (
            "service that does not exist",
            vec!["svc-nope.example.com", "--vcenter", &url, "--set", &set],
            vec![],
            "service \"svc-nope.example.com\" not found",
            "the services in vmware-system-supervisor-services are: svc-harbor.tanzu.vmware.com",
        ),
        (
            "values that are not YAML",
            vec![PKGI, "--vcenter", &url, "-f", not_yaml.to_str().unwrap()],
            vec![],
            "invalid YAML",
            "hint:",
        ),
    ];
    for (what, args, env, error, hint) in cases {
        s.vc.clear_requests();
        let run = s.values_edit(&args, &env).await;
        assert_ne!(run.code, 0, "{what}: {}", run.all());
        assert!(run.stderr.contains("error: "), "{what}: {}", run.stderr);
        assert!(run.stderr.contains(error), "{what}: {}", run.stderr);
        assert!(run.stderr.contains(hint), "{what}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
        s.nothing_written(&stored, &rv).await;
    }

    // A vCenter that does not know the service installed on the Supervisor.
    s.vc.clear_requests();
    s.vc.trigger(Trigger {
        method: "GET".into(),
        path: format!("/supervisor-services/{ID}"),
        skip: 0,
        times: 1,
        action: Action::Fail {
            status: 404,
            error_type: "NOT_FOUND".into(),
            message: format!("Supervisor Service {ID} is not installed on domain-c8."),
        },
    });
    let run = s
        .values_edit(&[PKGI, "--vcenter", &url, "--set", &set], &[])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(
            "has no Supervisor Service harbor.tanzu.vmware.com installed on cluster domain-c8"
        ),
        "{}",
        run.stderr
    );
    s.nothing_written(&stored, &rv).await;

    // Without --vcenter, values-edit says the change does not persist and names the flag.
    let run = s.values_edit(&[PKGI, "--set", &set], &[]).await;
    assert!(
        run.stderr.contains("does not persist") && run.stderr.contains("--vcenter"),
        "{}",
        run.stderr
    );
}

/// Why `--vcenter` matters (lifecycle blog `001`): vCenter's next configure puts its copy back. When
/// the simulated vCenter re-asserts its copy (as it does periodically with `reassert_every`; one pass
/// here, so the test does not race the edit), a Supervisor-only edit (the warning said so) is undone:
/// the old size returns, the volume cannot shrink, and the service fails to reconcile. The cure goes
/// through vCenter, and stays.
#[tokio::test]
async fn vcenters_reassertion_undoes_a_supervisor_only_edit_and_keeps_one_made_through_vcenter() {
    let s = site(Release::V8_0_3).await;
    let vcenters = s.stored();
    let size = |v: &Value| v["persistence"]["persistentVolumeClaim"]["registry"]["size"].clone();
    assert_eq!(size(&vcenters), "55Gi");
    let wait = |what: &str| {
        let what = what.to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        move || {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
        }
    };

    // On the Supervisor only: written, with the warning, then vCenter's copy comes back.
    let set = format!("{REGISTRY_SIZE}=60Gi");
    let run = s.values_edit(&[PKGI, "--set", &set], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("does not persist"), "{}", run.stderr);
    let pvc = || {
        s.sup.get(
            gvr::PERSISTENT_VOLUME_CLAIMS,
            "svc-harbor-domain-c8",
            "harbor-registry",
        )
    };
    assert_eq!(
        pvc().await["spec"]["resources"]["requests"]["storage"],
        "60Gi"
    );
    assert_eq!(s.vc.reassert().await.unwrap(), [ID]);
    assert_eq!(
        parse(&s.secret_text().await),
        vcenters,
        "vCenter's copy again"
    );
    assert_eq!(s.stored(), vcenters, "vCenter's copy never had the edit");

    // The old size returns, the volume cannot shrink: vCenter reports ERROR, the PVC keeps 60Gi.
    let check = wait("vCenter reports the failed reconcile");
    while s.vc.install_state(ID).await.unwrap().2 != "ERROR" {
        check();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pkgi = s
        .sup
        .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, PKGI)
        .await;
    let message = pkgi["status"]["usefulErrorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("less than previous value"), "{pkgi:#}");
    assert_eq!(
        pvc().await["spec"]["resources"]["requests"]["storage"],
        "60Gi"
    );

    // The cure, through vCenter (--force: vCenter reports ERROR): stored there, so it stays.
    let run = s
        .values_edit(
            &[PKGI, "--vcenter", &s.vc.url, "--force", "--set", &set],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(size(&s.stored()), "60Gi");
    assert_eq!(s.vc.install_state(ID).await.unwrap().2, "CONFIGURED");
    assert_eq!(s.vc.reassert().await.unwrap(), Vec::<String>::new());
    assert_eq!(size(&parse(&s.secret_text().await)), "60Gi");
}
