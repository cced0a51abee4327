//! A Supervisor Service's lifecycle through vCenter (the lifecycle blog's update, and the values a
//! simulated vCenter adds), through the real kubectl on the simulated Supervisor joined to the
//! simulated vCenter: `upgrade` registers a missing version from its definition, prechecks it where
//! vCenter can, carries vCenter's stored values over byte for byte, writes the whole spec and follows
//! vCenter and kapp-controller to the new version; refusals (downgrade, unregistered or deactivated
//! version, INCOMPATIBLE precheck, no confirmation) write nothing; an interrupted upgrade is followed
//! by a rerun; plain `values-edit` accepts the key vCenter added to the values.

use base64::Engine;
use serde_json::Value;
use supsvc_sim::api::{Gvr, WriteOptions, gvr};
use supsvc_sim::vcenter::{Action, OtherSupervisor, Release, Trigger, VcenterOptions};
use supsvc_tests::SERVICES_NAMESPACE;
use supsvc_tests::plugin::Run;

const PKGI: &str = "svc-harbor.tanzu.vmware.com";
const ID: &str = "harbor.tanzu.vmware.com";
const FROM: &str = "2.9.1+vmware.1";
const TO: &str = "2.10.0+vmware.1";
const SERVICE_NS: &str = "svc-harbor-domain-c8";
const BASE: &str = "/api/vcenter/namespace-management";

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

async fn site_with(options: VcenterOptions) -> Site {
    Site(supsvc_tests::vcenter::Site::start_with(options).await)
}

fn definition() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vcenter/harbor-2.10.0-definition.yaml"
    )
    .to_owned()
}

impl Site {
    /// `kubectl supsvc ARGS...` with the vCenter's CA and password (env); `--vcenter` is the caller's.
    async fn supsvc(&self, args: &[&str]) -> Run {
        self.0.supsvc(args, &[]).await
    }

    /// No request but reads (and the session's own) reached vCenter.
    fn only_reads(&self) {
        let writes: Vec<String> = self
            .vc
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && !r.path.starts_with("/api/session"))
            .map(|r| r.line())
            .collect();
        assert!(writes.is_empty(), "writes reached vCenter: {writes:#?}");
    }

    async fn pkgi(&self) -> Value {
        self.sup
            .get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, PKGI)
            .await
    }

    async fn secret_text(&self) -> String {
        let s = self
            .sup
            .get(
                gvr::SECRETS,
                SERVICES_NAMESPACE,
                "svc-harbor.tanzu.vmware.com-values",
            )
            .await;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s["data"]["values.yaml"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    }
}

fn parse(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// The position of the first line equal to `want` at or after `from`.
fn find(lines: &[String], from: usize, want: &str) -> usize {
    lines[from..]
        .iter()
        .position(|l| l == want)
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {want:?} after {from} in {lines:#?}"))
}

#[tokio::test]
async fn upgrade_registers_prechecks_carries_the_values_and_follows_to_the_new_version() {
    let s = site(Release::V9_1_0).await;
    let stored_before = s.vc.stored_config(ID).unwrap();
    let secret_before = parse(&s.secret_text().await);
    let def = definition();

    // The plan first: --dry-run reads only.
    let run = s
        .supsvc(&[
            "upgrade",
            PKGI,
            "--to",
            TO,
            "--definition",
            &def,
            "--vcenter",
            &s.vc.url,
            "--dry-run",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    for want in [
        &format!("Plan: upgrade {ID} on Supervisor supervisor-1a2b3c from {FROM} to {TO}"),
        "register it from",
        "harbor-service:2.9.1 -> my-registry.example.com/vmware/harbor-service:2.10.0",
        "the platform's namespace",
        "the values fit",
        &format!("pvc {SERVICE_NS}/harbor-registry 55Gi"),
        "Dry run: nothing was written",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in:\n{}", run.stdout);
    }
    assert!(
        !run.all().contains("Harbor-Admin-1234!"),
        "a secret printed"
    );
    s.only_reads();
    assert_eq!(
        s.vc.catalog_versions(ID).unwrap(),
        [(FROM.to_owned(), true)]
    );

    // Without a terminal and without -y: refused, nothing written.
    s.vc.clear_requests();
    let run = s
        .supsvc(&[
            "upgrade",
            PKGI,
            "--to",
            TO,
            "--definition",
            &def,
            "--vcenter",
            &s.vc.url,
        ])
        .await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("-y"), "{}", run.stderr);
    assert!(s.vc.requests().is_empty(), "{:#?}", s.lines());

    // The upgrade.
    let run = s
        .supsvc(&[
            "upgrade",
            PKGI,
            "--to",
            TO,
            "--definition",
            &def,
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains(&format!(
            "Succeeded: {PKGI} runs {TO} (Reconcile succeeded)"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("precheck of"), "{}", run.stdout);
    assert!(run.stdout.contains("COMPATIBLE"), "{}", run.stdout);

    // The calls in order: validate, register, precheck as a task, re-read, PUT, follow, logout.
    let record = format!("{BASE}/supervisors/supervisor-1a2b3c/supervisor-services/{ID}");
    let lines = s.lines();
    let check = find(
        &lines,
        0,
        &format!("POST {BASE}/supervisor-services?action=checkContent"),
    );
    let register = find(
        &lines,
        check,
        &format!("POST {BASE}/supervisor-services/{ID}/versions"),
    );
    let precheck = find(&lines, register, &format!("POST {record}?action=precheck"));
    let result = find(
        &lines,
        precheck,
        &format!("GET {record}/versions/{TO}/precheck"),
    );
    assert!(
        lines[precheck..result]
            .iter()
            .any(|l| l.starts_with("GET /api/cis/tasks/")),
        "the precheck task was followed: {lines:#?}"
    );
    let put = find(&lines, result, &format!("PUT {record}"));
    assert_eq!(
        lines[put - 1],
        format!("GET {record}"),
        "re-read before the PUT"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("DELETE /api/session")
    );
    assert_eq!(
        lines
            .iter()
            .filter(
                |l| l.starts_with("PUT ") || l.starts_with("POST ") && !l.contains("/api/session")
            )
            .count(),
        4,
        "checkContent, register, precheck and one PUT: {lines:#?}"
    );
    let requests = s.vc.requests();
    assert!(requests.iter().all(|r| r.status < 300), "{lines:#?}");
    // The register body is the file, base64; the PUT the whole spec with the stored config unchanged.
    let file = std::fs::read(&def).unwrap();
    assert_eq!(
        requests[register].body.as_ref().unwrap()["carvel_spec"]["content"],
        base64::engine::general_purpose::STANDARD.encode(&file)
    );
    let body = requests[put].body.as_ref().unwrap();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["version", "yaml_service_config"]
    );
    assert_eq!(body["version"], TO);
    assert_eq!(
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body["yaml_service_config"].as_str().unwrap())
                .unwrap()
        )
        .unwrap(),
        stored_before,
        "the stored config goes back byte for byte"
    );

    // vCenter and the Supervisor agree on the new version; the values and the data are kept.
    let (desired, current, status) = s.vc.install_state(ID).await.unwrap();
    assert_eq!(
        (desired.as_str(), current.as_deref(), status),
        (TO, Some(TO), "CONFIGURED")
    );
    let pkgi = s.pkgi().await;
    assert_eq!(pkgi["status"]["version"], TO);
    assert_eq!(
        pkgi["spec"]["packageRef"]["versionSelection"]["constraints"],
        TO
    );
    let package = s
        .sup
        .get(gvr::PACKAGES, SERVICES_NAMESPACE, &format!("{ID}.{TO}"))
        .await;
    assert_eq!(package["spec"]["version"], TO);
    let core = s.sup.get(gvr::DEPLOYMENTS, SERVICE_NS, "harbor-core").await;
    assert_eq!(
        core["spec"]["template"]["spec"]["containers"][0]["image"],
        "my-registry.example.com/vmware/harbor/harbor-core:v2.10.0"
    );
    let pvc = s
        .sup
        .get(gvr::PERSISTENT_VOLUME_CLAIMS, SERVICE_NS, "harbor-registry")
        .await;
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "55Gi");
    assert_eq!(parse(&s.secret_text().await), secret_before);

    // Again: nothing to do, nothing written.
    s.vc.clear_requests();
    let run = s
        .supsvc(&["upgrade", PKGI, "--to", TO, "--vcenter", &s.vc.url, "-y"])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("already runs version"),
        "{}",
        run.stdout
    );
    s.only_reads();
}

#[tokio::test]
async fn refused_upgrades_write_nothing() {
    let s = site(Release::V9_1_0).await;
    let def = definition();
    let stored = s.vc.stored_config(ID).unwrap();
    let generation = s.pkgi().await["metadata"]["generation"].clone();

    // (args, exit code, what the error says)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["--to", "2.8.0+vmware.1"], 1, "forward only"),
        (vec!["--to", TO], 1, "--definition"),
        (
            vec!["--to", "3.0.0", "--definition", &def],
            2,
            "not --to 3.0.0",
        ),
        (
            vec![
                "--to",
                TO,
                "--set",
                "notary.enabled=true",
                "--definition",
                &def,
                "--dry-run",
            ],
            1,
            "notary",
        ),
    ];
    for (extra, code, want) in cases {
        s.vc.clear_requests();
        let mut args = vec!["upgrade", PKGI, "--vcenter", &s.vc.url, "-y"];
        args.extend(extra.iter().copied());
        let run = s.supsvc(&args).await;
        assert_eq!(run.code, code, "{extra:?}: {}", run.all());
        assert!(
            run.stderr.contains(want),
            "{extra:?}: {want:?} in {}",
            run.stderr
        );
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
        s.only_reads();
    }

    // vCenter's precheck says INCOMPATIBLE: the version is registered, the service not touched.
    s.vc.set_incompatible(
        ID,
        TO,
        "Harbor 2.10.0 needs a Supervisor with 3 control plane VMs",
    );
    s.vc.clear_requests();
    let run = s
        .supsvc(&[
            "upgrade",
            PKGI,
            "--to",
            TO,
            "--definition",
            &def,
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("INCOMPATIBLE")
            && run
                .stderr
                .contains("needs a Supervisor with 3 control plane VMs"),
        "{}",
        run.stderr
    );
    assert!(
        s.vc.requests().iter().all(|r| r.method != "PUT"),
        "{:#?}",
        s.lines()
    );
    assert_eq!(s.vc.stored_config(ID).unwrap(), stored);
    assert_eq!(s.pkgi().await["metadata"]["generation"], generation);
    let (desired, _, _) = s.vc.install_state(ID).await.unwrap();
    assert_eq!(desired, FROM);
}

#[tokio::test]
async fn on_8x_the_cluster_routes_are_used_and_an_interrupted_upgrade_is_followed() {
    let s = site(Release::V8_0_3).await;
    let def = definition();
    let upgrade = |timeout: &'static str| {
        let url = s.vc.url.clone();
        let def = def.clone();
        let s = &s;
        async move {
            s.supsvc(&[
                "upgrade",
                PKGI,
                "--to",
                TO,
                "--definition",
                &def,
                "--vcenter",
                &url,
                "-y",
                "--timeout",
                timeout,
            ])
            .await
        }
    };
    // kapp-controller held: the upgrade cannot finish; a zero timeout ends the run after its write.
    let held = s.sup.sim.hold_controllers().await;
    let run = upgrade("0s").await;
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains("run the same command again"),
        "{}",
        run.stderr
    );
    let lines = s.lines();
    let record = format!("{BASE}/clusters/domain-c8/supervisor-services/{ID}");
    assert!(lines.contains(&format!("PUT {record}")), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("precheck")),
        "8.0.3's cluster routes have no precheck: {lines:#?}"
    );
    assert_eq!(
        s.vc.install_state(ID).await.unwrap(),
        (TO.to_owned(), Some(FROM.to_owned()), "CONFIGURING")
    );

    // A rerun while it is in flight follows it; it registers and writes nothing again.
    s.vc.clear_requests();
    let run = upgrade("1s").await;
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stdout.contains("already moving to"), "{}", run.stdout);
    assert!(
        run.stdout.contains("config_status CONFIGURING"),
        "{}",
        run.stdout
    );
    s.only_reads();

    // Released, a rerun follows it to the end.
    drop(held);
    s.vc.clear_requests();
    let run = upgrade("2m").await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("Succeeded") || run.stdout.contains("already runs version"),
        "{}",
        run.stdout
    );
    s.only_reads();
    assert_eq!(s.pkgi().await["status"]["version"], TO);
}

#[tokio::test]
async fn plain_values_edit_accepts_the_key_vcenter_added_to_the_values() {
    let s = site(Release::V8_0_3).await;
    // The simulated vCenter wrote its copy, `namespace` included, which Harbor's closed schema
    // (additionalProperties: false) does not declare.
    let before = parse(&s.secret_text().await);
    assert_eq!(before["namespace"], SERVICE_NS);
    let run = s
        .supsvc(&[
            "values-edit",
            PKGI,
            "--set",
            "persistence.persistentVolumeClaim.registry.size=60Gi",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("does not persist"), "{}", run.all());
    let after = parse(&s.secret_text().await);
    let mut want = before.clone();
    want["persistence"]["persistentVolumeClaim"]["registry"]["size"] = Value::from("60Gi");
    assert_eq!(after, want, "the edit applied, vCenter's key kept");

    // A key the operator adds is still refused by the schema; vCenter's key may not be changed.
    for (set, said) in [
        ("typo=1", "typo"),
        ("namespace=mine", "set by the platform"),
    ] {
        let run = s.supsvc(&["values-edit", PKGI, "--set", set]).await;
        assert_ne!(run.code, 0, "{set}: {}", run.all());
        assert!(run.stderr.contains(said), "{set}: {}", run.stderr);
        assert_eq!(parse(&s.secret_text().await), want, "{set} wrote");
    }
}

#[tokio::test]
async fn uninstall_shows_the_data_at_stake_then_takes_the_three_steps_in_order() {
    let s = site(Release::V8_0_3).await;
    let run = s
        .supsvc(&["uninstall", PKGI, "--vcenter", &s.vc.url, "--dry-run"])
        .await;
    assert!(
        run.stdout
            .contains("the service's package installed no CustomResourceDefinitions"),
        "{}",
        run.stdout
    );
    s.vc.clear_requests();
    custom_resources(&s).await;

    // The plan: the data lost with the service's namespace and its kinds; --dry-run changes nothing.
    let run = s
        .supsvc(&[
            "uninstall",
            PKGI,
            "--unregister",
            "--vcenter",
            &s.vc.url,
            "--dry-run",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    for want in [
        &format!("Plan: uninstall {ID} from cluster domain-c8"),
        "1. deactivate the service (now ACTIVATED)",
        "2. remove it from cluster domain-c8 (now CONFIGURED)",
        &format!("3. unregister versions {FROM} and the service"),
        &format!("pvc {SERVICE_NS}/harbor-registry 55Gi (its data is deleted)"),
        "projects.goharbor.io (goharbor.io/v1beta1 Project): 2 object(s)",
        &format!("      default/team-a\n      {SERVICE_NS}/library\n"),
        "Dry run: nothing was changed",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in:\n{}", run.stdout);
    }
    // A CRD that is not the service's (no App label of its) is not listed.
    assert!(!run.stdout.contains("widgets"), "{}", run.stdout);
    s.only_reads();

    // Without a terminal and without -y: refused before vCenter is asked anything.
    s.vc.clear_requests();
    let run = s.supsvc(&["uninstall", PKGI, "--vcenter", &s.vc.url]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(s.vc.requests().is_empty(), "{:#?}", s.lines());

    // A Core service must stay installed: refused, nothing written.
    s.vc.add_service("tkg.vsphere.vmware.com", &["3.0.0"], true);
    s.vc.clear_requests();
    let run = s
        .supsvc(&[
            "uninstall",
            "tkg.vsphere.vmware.com",
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("must_be_installed"), "{}", run.stderr);
    s.only_reads();

    // The uninstall: deactivate, remove and wait, unregister the version, then the service.
    s.vc.clear_requests();
    let run = s
        .supsvc(&[
            "uninstall",
            PKGI,
            "--unregister",
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("is uninstalled from cluster domain-c8 and unregistered"),
        "{}",
        run.stdout
    );
    let writes: Vec<String> =
        s.vc.requests()
            .iter()
            .filter(|r| r.method != "GET" && !r.path.starts_with("/api/session"))
            .map(|r| format!("{} {}", r.line(), r.status))
            .collect();
    assert_eq!(
        writes,
        [
            format!("PATCH {BASE}/supervisor-services/{ID}?action=deactivate 204"),
            format!("DELETE {BASE}/clusters/domain-c8/supervisor-services/{ID} 204"),
            format!("PATCH {BASE}/supervisor-services/{ID}/versions/{FROM}?action=deactivate 204"),
            format!("DELETE {BASE}/supervisor-services/{ID}/versions/{FROM} 204"),
            format!("DELETE {BASE}/supervisor-services/{ID} 204"),
        ]
    );
    assert!(s.vc.install_state(ID).await.is_none());
    assert!(s.vc.catalog_versions(ID).is_none());
    let gone = s
        .sup
        .admin()
        .get(gvr::PACKAGE_INSTALLS, Some(SERVICES_NAMESPACE), PKGI)
        .await;
    assert!(
        matches!(gone, Err(e) if e.is_not_found()),
        "the PackageInstall is gone"
    );

    // A rerun: nothing left to do.
    s.vc.clear_requests();
    let run = s
        .supsvc(&[
            "uninstall",
            PKGI,
            "--unregister",
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("nothing left to do"), "{}", run.stdout);
    s.only_reads();
}

/// A kind the service's package installed (a CRD carrying its App's kapp label, as kapp labels what
/// it deploys) with two objects, and a kind of someone else's (no such label) with one.
async fn custom_resources(s: &Site) {
    let admin = s.sup.admin();
    let app = s.sup.get(gvr::APPS, SERVICES_NAMESPACE, PKGI).await;
    let label = app["status"]["deploy"]["kapp"]["associatedResources"]["label"]
        .as_str()
        .expect("the App reports its kapp label")
        .to_owned();
    let (key, value) = label.split_once('=').unwrap();
    let crd = |group: &str, plural: &str, kind: &str, labels: Value| {
        serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}"), "labels": labels},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "versions": [{"name": "v1beta1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        })
    };
    let crds = gvr::CUSTOM_RESOURCE_DEFINITIONS;
    let opts = WriteOptions::default();
    admin
        .create(
            crds,
            None,
            crd(
                "goharbor.io",
                "projects",
                "Project",
                serde_json::json!({key: value}),
            ),
            &opts,
        )
        .await
        .expect("CRD created");
    admin
        .create(
            crds,
            None,
            crd("example.com", "widgets", "Widget", serde_json::json!({})),
            &opts,
        )
        .await
        .expect("CRD created");
    let projects = Gvr {
        group: "goharbor.io",
        version: "v1beta1",
        resource: "projects",
    };
    for (ns, name) in [("default", "team-a"), (SERVICE_NS, "library")] {
        admin
            .create(projects, Some(ns), serde_json::json!({"apiVersion": "goharbor.io/v1beta1", "kind": "Project", "metadata": {"name": name, "namespace": ns}}), &opts)
            .await
            .expect("Project created");
    }
    let widgets = Gvr {
        group: "example.com",
        version: "v1beta1",
        resource: "widgets",
    };
    admin
        .create(widgets, Some("default"), serde_json::json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}}), &opts)
        .await
        .expect("Widget created");
}

/// A vCenter with two more Supervisors: `sup-east` has Harbor installed, `sup-west` has not.
async fn three_supervisors(release: Release) -> Site {
    site_with(VcenterOptions {
        release,
        other_supervisors: vec![
            OtherSupervisor::new("sup-east", "sup-east-id", "domain-c9", &[(ID, FROM)]),
            OtherSupervisor::new("sup-west", "sup-west-id", "domain-c10", &[]),
        ],
        ..Default::default()
    })
    .await
}

impl Site {
    /// The writes that reached vCenter (`METHOD path status`), sessions left out.
    fn writes(&self) -> Vec<String> {
        self.vc
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && !r.path.starts_with("/api/session"))
            .map(|r| format!("{} {}", r.line(), r.status))
            .collect()
    }
}

#[tokio::test]
async fn uninstall_from_every_supervisor_in_turn_then_unregister() {
    let s = three_supervisors(Release::V8_0_3).await;
    let run = s
        .supsvc(&[
            "uninstall",
            PKGI,
            "--all-supervisors",
            "--unregister",
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    for want in [
        "1. deactivate the service (now ACTIVATED)",
        "2. remove it from cluster domain-c8 (now CONFIGURED)",
        "then from cluster sup-east (domain-c9) (now CONFIGURED)",
        "vCenter reports REMOVING on cluster sup-east (domain-c9); waiting",
        "is uninstalled from cluster domain-c8 and every other Supervisor and unregistered",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in:\n{}", run.stdout);
    }
    // The writes, in the blog's order: sup-west (never had it) untouched.
    assert_eq!(
        s.writes(),
        [
            format!("PATCH {BASE}/supervisor-services/{ID}?action=deactivate 204"),
            format!("DELETE {BASE}/clusters/domain-c8/supervisor-services/{ID} 204"),
            format!("DELETE {BASE}/clusters/domain-c9/supervisor-services/{ID} 204"),
            format!("PATCH {BASE}/supervisor-services/{ID}/versions/{FROM}?action=deactivate 204"),
            format!("DELETE {BASE}/supervisor-services/{ID}/versions/{FROM} 204"),
            format!("DELETE {BASE}/supervisor-services/{ID} 204"),
        ]
    );
    // Each removal waited through REMOVING: this Supervisor's record read gone (404) before the
    // next DELETE, and sup-east's list read (REMOVING, then without it) before the versions go.
    let lines = s.lines();
    let own = find(
        &lines,
        0,
        &format!("DELETE {BASE}/clusters/domain-c8/supervisor-services/{ID}"),
    );
    let east = find(
        &lines,
        own,
        &format!("DELETE {BASE}/clusters/domain-c9/supervisor-services/{ID}"),
    );
    let requests = s.vc.requests();
    assert!(
        requests[own..east].iter().any(|r| r.line()
            == format!("GET {BASE}/clusters/domain-c8/supervisor-services/{ID}")
            && r.status == 404),
        "{lines:#?}"
    );
    let version = find(
        &lines,
        east,
        &format!("PATCH {BASE}/supervisor-services/{ID}/versions/{FROM}?action=deactivate"),
    );
    let east_reads = lines[east..version]
        .iter()
        .filter(|l| **l == format!("GET {BASE}/clusters/domain-c9/supervisor-services"))
        .count();
    assert!(east_reads >= 3, "REMOVING twice, then gone: {lines:#?}");
    assert!(s.vc.other_install("domain-c9", ID).is_none());
    assert!(s.vc.catalog_versions(ID).is_none());
    assert!(s.vc.install_state(ID).await.is_none());
}

#[tokio::test]
async fn without_all_supervisors_the_others_keep_it_and_unregister_is_refused() {
    let s = three_supervisors(Release::V8_0_3).await;

    // --unregister while sup-east keeps it: refused before any write, naming the flag and sup-east.
    let run = s
        .supsvc(&[
            "uninstall",
            PKGI,
            "--unregister",
            "--vcenter",
            &s.vc.url,
            "-y",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("sup-east (CONFIGURED)") && run.stderr.contains("--all-supervisors"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    s.only_reads();

    // The plan says who keeps it, and that the service stays ACTIVATED for them.
    let run = s
        .supsvc(&["uninstall", PKGI, "--vcenter", &s.vc.url, "--dry-run"])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    for want in [
        "1. (skipped: the service stays ACTIVATED, installed on other Supervisors too: cluster sup-east (CONFIGURED))",
        "it stays on cluster sup-east (CONFIGURED): only this Supervisor is asked",
    ] {
        assert!(run.stdout.contains(want), "{want:?} in:\n{}", run.stdout);
    }
    s.only_reads();

    // A plain uninstall removes it from this Supervisor only.
    let run = s
        .supsvc(&["uninstall", PKGI, "--vcenter", &s.vc.url, "-y"])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("it stays installed (and ACTIVATED) on cluster sup-east (CONFIGURED)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        s.writes(),
        [format!(
            "DELETE {BASE}/clusters/domain-c8/supervisor-services/{ID} 204"
        )]
    );
    assert!(s.vc.install_state(ID).await.is_none());
    assert_eq!(
        s.vc.other_install("domain-c9", ID).map(|i| i.config_status),
        Some("CONFIGURED")
    );
    assert_eq!(s.vc.service_activated(ID), Some(true));
}

#[tokio::test]
async fn an_uninstall_interrupted_between_supervisors_resumes_on_9x() {
    let s = three_supervisors(Release::V9_1_0).await;
    let east = format!("{BASE}/supervisors/sup-east-id/supervisor-services/{ID}");
    s.vc.trigger(Trigger {
        method: "DELETE".into(),
        path: east.clone(),
        skip: 0,
        times: 1,
        action: Action::Fail {
            status: 503,
            error_type: "SERVICE_UNAVAILABLE".into(),
            message: "The service is temporarily unavailable.".into(),
        },
    });
    let args = [
        "uninstall",
        PKGI,
        "--all-supervisors",
        "--unregister",
        "--vcenter",
        &s.vc.url,
        "-y",
    ];
    let run = s.supsvc(&args).await;
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("run the same command again"),
        "{}",
        run.stderr
    );
    let own = format!("{BASE}/supervisors/supervisor-1a2b3c/supervisor-services/{ID}");
    assert_eq!(
        s.writes(),
        [
            format!("PATCH {BASE}/supervisor-services/{ID}?action=deactivate 204"),
            format!("DELETE {own} 204"),
            format!("DELETE {east} 503"),
        ]
    );
    assert!(s.vc.install_state(ID).await.is_none());
    assert_eq!(
        s.vc.other_install("sup-east-id", ID)
            .map(|i| i.config_status),
        Some("CONFIGURED")
    );

    // The rerun takes up where it stopped: nothing done twice.
    s.vc.clear_requests();
    let run = s.supsvc(&args).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        s.writes(),
        [
            format!("DELETE {east} 204"),
            format!("PATCH {BASE}/supervisor-services/{ID}/versions/{FROM}?action=deactivate 204"),
            format!("DELETE {BASE}/supervisor-services/{ID}/versions/{FROM} 204"),
            format!("DELETE {BASE}/supervisor-services/{ID} 204"),
        ]
    );
    assert!(s.vc.other_install("sup-east-id", ID).is_none());
    assert!(s.vc.catalog_versions(ID).is_none());
}

#[tokio::test]
async fn status_shows_vcenters_side_beside_the_supervisors() {
    let s = site(Release::V9_1_0).await;
    let run = s.supsvc(&["status", "--vcenter", &s.vc.url]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let header = run
        .stdout
        .lines()
        .find(|l| l.starts_with("NAME"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(
        header.split_whitespace().take(7).collect::<Vec<_>>(),
        [
            "NAME",
            "PACKAGE",
            "VERSION",
            "VC-DESIRED",
            "VC-CURRENT",
            "VC-STATUS",
            "STATE"
        ],
        "{header}"
    );
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with(PKGI))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(words[2..6], [FROM, FROM, FROM, "CONFIGURED"], "{row}");
    assert!(
        run.stdout.contains("Supervisor supervisor-1a2b3c"),
        "{}",
        run.stdout
    );

    // -o json carries it too; without a vCenter the output is as before.
    let run = s
        .supsvc(&["status", "--vcenter", &s.vc.url, "-o", "json"])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows[0]["vcenter"]["configStatus"], "CONFIGURED");
    assert_eq!(rows[0]["vcenter"]["desiredVersion"], FROM);
    let run = s.supsvc(&["status", "-o", "json"]).await;
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(rows[0].get("vcenter").is_none(), "{}", run.stdout);
}
