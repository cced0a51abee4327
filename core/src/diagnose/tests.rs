use super::*;
use serde_json::{Value, json};

const NS: &str = "vmware-system-supervisor-services";
const DOMAIN: &str = "svc-tkg-domain-c1234";
const SVC: &str = "svc-tkg.vsphere.vmware.com";
const PUBLIC_BUNDLE: &str = "projects.registry.vmware.com/tkg/packages/tkg-controller:v3.5.1";
const PRIVATE_BUNDLE: &str = "harbor.corp.local/tkg/tkg-controller:v3.5.1";

fn reconcile(kind: &str, message: Option<&str>) -> Value {
    let desc = match kind {
        "ReconcileSucceeded" => "Reconcile succeeded".to_owned(),
        "ReconcileFailed" => format!("Reconcile failed: {}", message.unwrap_or_default()),
        other => other.to_owned(),
    };
    json!({"observedGeneration": 1, "conditions": [{"type": kind, "status": "True"}],
           "friendlyDescription": desc, "usefulErrorMessage": message, "version": "3.5.1"})
}

fn pkgi(ns: &str, name: &str, ref_name: &str, status: Value) -> PackageInstall {
    PackageInstall::from_value(&json!({
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {"packageRef": {"refName": ref_name}},
        "status": status,
    }))
    .unwrap()
}

fn app(status: Value) -> App {
    App::from_value(
        &json!({"metadata": {"name": SVC, "namespace": NS, "generation": 1}, "status": status}),
    )
    .unwrap()
}

fn package(ns: &str, ref_name: &str, image: &str) -> Package {
    Package::from_value(&json!({
        "apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
        "metadata": {"name": format!("{ref_name}.3.5.1"), "namespace": ns},
        "spec": {"refName": ref_name, "version": "3.5.1",
                 "template": {"spec": {"fetch": [{"imgpkgBundle": {"image": image}}]}}}
    }))
    .unwrap()
}

const WAIT: &str = "kapp: Error: waiting on reconcile packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234: Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details)))";
const FETCH: &str = "vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n    Fetching image: Get \"https://projects.registry.vmware.com/v2/\": dial tcp: lookup projects.registry.vmware.com: no such host";

fn deadlocked(child_bundle: &str) -> Input {
    Input {
        parent: pkgi(
            NS,
            SVC,
            "tkg.vsphere.vmware.com",
            reconcile("ReconcileFailed", Some(WAIT)),
        ),
        app: Some(app(reconcile("ReconcileFailed", Some(WAIT)))),
        children: vec![
            pkgi(
                DOMAIN,
                "tkg-controller",
                "tkg-controller.tanzu.vmware.com",
                reconcile("ReconcileFailed", Some(FETCH)),
            ),
            pkgi(
                DOMAIN,
                "tkr-service",
                "tkr-service.tanzu.vmware.com",
                reconcile("ReconcileSucceeded", None),
            ),
        ],
        packages: vec![
            package(
                NS,
                "tkg.vsphere.vmware.com",
                "harbor.corp.local/tkg/tkg-service:3.5.1",
            ),
            package(DOMAIN, "tkg-controller.tanzu.vmware.com", child_bundle),
            package(
                DOMAIN,
                "tkr-service.tanzu.vmware.com",
                "harbor.corp.local/tkg/tkr:3.5.1",
            ),
        ],
    }
}

fn healthy() -> Input {
    let mut input = deadlocked(PRIVATE_BUNDLE);
    input.parent.status = PackageInstall::default().status;
    input.parent = pkgi(
        NS,
        SVC,
        "tkg.vsphere.vmware.com",
        reconcile("ReconcileSucceeded", None),
    );
    input.app = Some(app(reconcile("ReconcileSucceeded", None)));
    input.children[0] = pkgi(
        DOMAIN,
        "tkg-controller",
        "tkg-controller.tanzu.vmware.com",
        reconcile("ReconcileSucceeded", None),
    );
    input
}

fn codes(findings: &[Finding]) -> Vec<Code> {
    findings.iter().map(|f| f.code).collect()
}

#[test]
fn the_kb_deadlock_is_recognised_with_its_evidence() {
    let findings = diagnose(&deadlocked(PRIVATE_BUNDLE), &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::ReconcileDeadlock]);
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert!(f.what.contains("tkg-controller"), "{}", f.what);
    assert_eq!(f.remedy[0], "kubectl supsvc fix svc-tkg.vsphere.vmware.com");
    let objects: Vec<&str> = f.evidence.iter().map(|e| e.object.as_str()).collect();
    assert!(
        objects.contains(&"pkgi/svc-tkg.vsphere.vmware.com -n vmware-system-supervisor-services")
    );
    assert!(objects.contains(&"pkgi/tkg-controller -n svc-tkg-domain-c1234"));
    assert!(f.evidence.iter().any(
        |e| e.field == "spec.template.spec.fetch[0].imgpkgBundle.image"
            && e.value.starts_with(PRIVATE_BUNDLE)
    ));
}

#[test]
fn uncorrected_package_data_is_a_public_registry_problem_not_a_deadlock() {
    let mut input = deadlocked(PUBLIC_BUNDLE);
    input.packages[0] = package(
        NS,
        "tkg.vsphere.vmware.com",
        "projects.registry.vmware.com/tkg/packages/tkg-service:3.5.1",
    );
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(
        codes(&findings),
        [Code::PublicRegistryReference, Code::PublicRegistryReference]
    );
    assert_eq!(
        findings[1].severity,
        Severity::Warning,
        "the parent's Package is public but not what fails"
    );
    assert!(findings[1].what.contains("tkg.vsphere.vmware.com.3.5.1"));
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error, "the fetch is failing");
    assert_eq!(
        f.evidence[0].field,
        "spec.template.spec.fetch[0].imgpkgBundle.image"
    );
    assert!(
        f.evidence[0]
            .value
            .contains("registry projects.registry.vmware.com")
    );
    assert!(f.remedy[0].starts_with(&format!("imgpkg copy -b {PUBLIC_BUNDLE} ")));
    assert!(
        f.remedy[1]
            .starts_with("kubectl supsvc override-image tkg-controller.tanzu.vmware.com.3.5.1")
    );
}

#[test]
fn a_public_reference_that_is_not_failing_is_a_warning() {
    let mut input = healthy();
    input.packages[2] = package(DOMAIN, "tkr-service.tanzu.vmware.com", "ghcr.io/x/tkr:1");
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::PublicRegistryReference]);
    assert_eq!(findings[0].severity, Severity::Warning);
    // With an allow-list that names ghcr.io, nothing is wrong.
    let allow = RegistryPolicy::allow(&["ghcr.io", "*.corp.local"]).unwrap();
    assert!(diagnose(&input, &allow).is_empty());
}

#[test]
fn healthy_is_clean() {
    assert!(diagnose(&healthy(), &RegistryPolicy::default()).is_empty());
}

#[test]
fn leftovers_are_reported() {
    let mut input = healthy();
    input.parent.spec.paused = true;
    input.parent.metadata.annotations.insert(
        PROGRESS_ANNOTATION.into(),
        "{\"run\":\"r1\",\"step\":\"labelled\"}".into(),
    );
    input.children[1]
        .metadata
        .labels
        .insert(TRIGGER_LABEL.into(), "r1".into());
    input.children[0]
        .metadata
        .labels
        .insert(KB_TRIGGER_LABEL.into(), "true".into());
    input.children[0].spec.canceled = true;
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(
        codes(&findings),
        [
            Code::StaleFixProgress,
            Code::Paused,
            Code::Paused,
            Code::LeftoverTriggerLabel,
            Code::LeftoverTriggerLabel
        ]
    );
    assert!(
        findings[0]
            .what
            .contains("run r1 stopped after step labelled")
    );
    assert!(
        findings[1].remedy[0].starts_with("kubectl supsvc fix"),
        "a run is in progress: fix resumes it"
    );
    assert_eq!(findings[2].evidence[0].field, "spec.canceled");
    assert!(!findings[3].is_problem());

    let mut by_hand = healthy();
    by_hand.app.as_mut().unwrap().spec.paused = true;
    let findings = diagnose(&by_hand, &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::Paused]);
    assert_eq!(
        findings[0].remedy,
        [
            "kubectl patch app svc-tkg.vsphere.vmware.com -n vmware-system-supervisor-services --type=merge -p '{\"spec\":{\"paused\":null}}'"
        ]
    );
}

#[test]
fn immutable_statefulset_change_is_recognised() {
    let msg = "kapp: Error: update statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8: Updating resource statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8: API server says: StatefulSet.apps \"harbor-database\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden (reason: Invalid)";
    let input = Input {
        parent: pkgi(
            NS,
            "svc-harbor.tanzu.vmware.com",
            "harbor.tanzu.vmware.com",
            reconcile("ReconcileFailed", Some(msg)),
        ),
        app: Some(app(reconcile("ReconcileFailed", Some(msg)))),
        children: vec![],
        packages: vec![],
    };
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(
        codes(&findings),
        [Code::ImmutableFieldChange],
        "reported once though two objects quote it"
    );
    assert!(
        findings[0]
            .what
            .contains("statefulset/harbor-database -n svc-harbor-domain-c8")
    );
    assert!(
        findings[0].remedy[0].starts_with("kubectl supsvc values-edit svc-harbor.tanzu.vmware.com")
    );
}

#[test]
fn unexplained_failures_and_missing_apps() {
    let input = Input {
        parent: pkgi(
            NS,
            SVC,
            "tkg.vsphere.vmware.com",
            reconcile("ReconcileFailed", Some("ytt: Error: boom")),
        ),
        app: Some(app(reconcile("ReconcileFailed", Some("ytt: Error: boom")))),
        ..Default::default()
    };
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::ReconcileFailed]);
    assert_eq!(findings[0].evidence[0].value, "ytt: Error: boom");

    let no_app = Input {
        parent: pkgi(NS, SVC, "tkg.vsphere.vmware.com", json!({})),
        ..Default::default()
    };
    assert_eq!(
        codes(&diagnose(&no_app, &RegistryPolicy::default())),
        [Code::AppMissing]
    );
}

#[test]
fn reconciling_is_information_only() {
    let mut input = healthy();
    input.parent = pkgi(
        NS,
        SVC,
        "tkg.vsphere.vmware.com",
        reconcile("Reconciling", None),
    );
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::Reconciling]);
    assert!(!findings.iter().any(Finding::is_problem));
}

#[test]
fn registries_named_in_messages() {
    let policy = RegistryPolicy::default();
    let cases: &[(&str, &[&str])] = &[
        (FETCH, &["projects.registry.vmware.com"]),
        (
            "Fetching image: GET https://index.docker.io/v2/library/nginx/manifests/latest: x",
            &["docker.io"],
        ),
        (
            "pull ghcr.io/a/b:1 and quay.io/c/d failed",
            &["ghcr.io", "quay.io"],
        ),
        ("pull harbor.corp.local/a/b:1 failed", &[]),
        ("no registry here: a/b, c.d", &[]),
        ("", &[]),
    ];
    for (message, want) in cases {
        assert_eq!(refused_registries_in(message, &policy), *want, "{message}");
    }
}

#[test]
fn findings_serialise_for_scripts() {
    let findings = diagnose(&deadlocked(PRIVATE_BUNDLE), &RegistryPolicy::default());
    let v = serde_json::to_value(&findings).unwrap();
    assert_eq!(v[0]["code"], "reconcile-deadlock");
    assert_eq!(v[0]["severity"], "error");
    assert!(v[0]["evidence"][0]["object"].is_string());
}

#[test]
fn the_deadlock_as_the_cluster_shows_it_stale_child_packages_corrected_parent_package() {
    // While deadlocked, the child Packages are still the public ones: only the parent's is corrected.
    let findings = diagnose(&deadlocked(PUBLIC_BUNDLE), &RegistryPolicy::default());
    assert_eq!(
        codes(&findings),
        [Code::ReconcileDeadlock],
        "the stale child Package is evidence, not a finding"
    );
    let f = &findings[0];
    assert!(f.evidence.iter().any(
        |e| e.value == "harbor.corp.local/tkg/tkg-service:3.5.1 (corrected: private registry)"
    ));
    assert!(
        f.evidence
            .iter()
            .any(|e| e.value.starts_with(PUBLIC_BUNDLE) && e.value.contains("stale"))
    );
}

/// The texts as kapp writes them (go-cli-ui's MultiLineError): the wait over two lines, the
/// StatefulSet refusal nested over five.
const WAIT_AS_KAPP_WRITES_IT: &str = "kapp: Error: waiting on reconcile packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234:\n  Finished unsuccessfully (Reconcile failed:  (message: Error (see .status.usefulErrorMessage for details)))";
const STS_AS_KAPP_WRITES_IT: &str = "kapp: Error: update statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8:\n  Updating resource statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8:\n    API server says:\n      StatefulSet.apps \"harbor-database\" is invalid: spec:\n        Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden (reason: Invalid)";

#[test]
fn kapps_multi_line_texts_give_the_same_findings_as_one_line() {
    // r09: the KB deadlock as `kubectl get app -o yaml` shows it, and no advice to relocate children.
    let mut input = deadlocked(PUBLIC_BUNDLE);
    for status in [
        &mut input.parent.status,
        &mut input.app.as_mut().unwrap().status,
    ] {
        status.useful_error_message = Some(WAIT_AS_KAPP_WRITES_IT.into());
    }
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::ReconcileDeadlock], "{findings:#?}");

    // The lifecycle blog's StatefulSet, nested over several lines.
    let input = Input {
        parent: pkgi(
            NS,
            "svc-harbor.tanzu.vmware.com",
            "harbor.tanzu.vmware.com",
            reconcile("ReconcileFailed", Some(STS_AS_KAPP_WRITES_IT)),
        ),
        app: Some(app(reconcile(
            "ReconcileFailed",
            Some(STS_AS_KAPP_WRITES_IT),
        ))),
        ..Default::default()
    };
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(codes(&findings), [Code::ImmutableFieldChange]);
    assert!(
        findings[0]
            .what
            .contains("statefulset/harbor-database -n svc-harbor-domain-c8")
    );
}

#[test]
fn the_parents_own_failing_fetch_is_named_not_the_kb() {
    // r11: the parent's Package points at a private registry the Supervisor cannot reach.
    let fetch = "vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n    Imgpkg: exit status 1 (stderr: imgpkg: Error: Checking if image is bundle:\n  Fetching image:\n    Get \"https://harbor.corp.local/v2/\": dial tcp: lookup harbor.corp.local: i/o timeout\n)";
    let mut input = deadlocked(PUBLIC_BUNDLE);
    input.parent.status.useful_error_message = Some(fetch.into());
    input.app.as_mut().unwrap().status.useful_error_message = Some(fetch.into());
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert_eq!(findings[0].code, Code::FetchFailed, "{findings:#?}");
    assert!(findings[0].what.contains("harbor.corp.local"));
    assert!(findings[0].what.contains("not KB 437632"));
    assert!(!codes(&findings).contains(&Code::ReconcileDeadlock));
    assert!(!codes(&findings).contains(&Code::ReconcileFailed));
    // The children's stale public references are not advice to relocate them again.
    assert!(
        findings
            .iter()
            .filter(|f| f.code == Code::PublicRegistryReference)
            .all(|f| f.severity == Severity::Info),
        "{findings:#?}"
    );
}

#[test]
fn an_unknown_text_is_quoted_and_sends_nobody_elsewhere() {
    let unknown = "kapp: Error: Ownership errors:\n- Resource 'configmap/shared (v1) namespace: x' is already associated with a different app 'other' namespace: x (label 'kapp.k14s.io/app=1')";
    let mut input = deadlocked(PUBLIC_BUNDLE);
    input.parent.status.useful_error_message = Some(unknown.into());
    input.app.as_mut().unwrap().status.useful_error_message = Some(unknown.into());
    let findings = diagnose(&input, &RegistryPolicy::default());
    let problems: Vec<&Finding> = findings.iter().filter(|f| f.is_problem()).collect();
    assert_eq!(problems.len(), 1, "{findings:#?}");
    assert_eq!(problems[0].code, Code::ReconcileFailed);
    assert!(problems[0].what.contains("does not recognise"));
    assert!(problems[0].evidence.iter().any(|e| e.value == unknown));
    assert!(problems[0].remedy.iter().any(|r| r.contains("--force")));
    // Cut by kapp-controller: said so.
    let cut = format!("[output truncated]\n{}", &unknown[40..]);
    input.parent.status.useful_error_message = Some(cut.clone());
    input.app.as_mut().unwrap().status.useful_error_message = Some(cut);
    let findings = diagnose(&input, &RegistryPolicy::default());
    assert!(
        findings[0].what.contains("kapp-controller cut it"),
        "{findings:#?}"
    );
}
