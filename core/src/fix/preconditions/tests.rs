use serde_json::{Value, json};

use super::*;
use crate::carvel::{App, Package, PackageInstall};
use crate::diagnose::diagnose;
use crate::image::RegistryPolicy;

const NS: &str = "vmware-system-supervisor-services";
const DOMAIN: &str = "svc-tkg-domain-c1234";
const SVC: &str = "svc-tkg.vsphere.vmware.com";
/// What kapp writes, over two lines (go-cli-ui's MultiLineError).
const WAIT: &str = "kapp: Error: waiting on reconcile packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234:\n  Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details)))";
const CHILD_FETCH: &str = "vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n    Imgpkg: exit status 1 (stderr: imgpkg: Error: Checking if image is bundle:\n  Fetching image:\n    Get \"https://projects.registry.vmware.com/v2/\": dial tcp: lookup projects.registry.vmware.com: no such host\n)";
const PARENT_FETCH: &str = "vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n    Imgpkg: exit status 1 (stderr: imgpkg: Error: Checking if image is bundle:\n  Fetching image:\n    Get \"https://harbor.corp.local/v2/\": dial tcp: lookup harbor.corp.local on 10.96.0.10:53: no such host\n)";

fn status(kind: &str, message: Option<&str>) -> Value {
    json!({"observedGeneration": 1, "conditions": [{"type": kind, "status": "True"}],
           "friendlyDescription": kind, "usefulErrorMessage": message})
}

fn pkgi(ns: &str, name: &str, ref_name: &str, status: Value, meta: Value) -> PackageInstall {
    let mut metadata = json!({"name": name, "namespace": ns, "generation": 1});
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), meta.as_object()) {
        m.extend(extra.clone());
    }
    PackageInstall::from_value(&json!({"metadata": metadata, "spec": {"packageRef": {"refName": ref_name}}, "status": status}))
        .unwrap()
}

fn package(ns: &str, ref_name: &str, image: &str) -> Package {
    Package::from_value(&json!({
        "metadata": {"name": format!("{ref_name}.1.0.0"), "namespace": ns},
        "spec": {"refName": ref_name, "version": "1.0.0",
                 "template": {"spec": {"fetch": [{"imgpkgBundle": {"image": image}}]}}}}))
    .unwrap()
}

/// KB 437632's state: parent and App wait on a child failing on the public registry; the parent's
/// Package corrected to the private one.
fn deadlocked() -> Input {
    Input {
        parent: pkgi(NS, SVC, "tkg.vsphere.vmware.com", status("ReconcileFailed", Some(WAIT)), json!({})),
        app: Some(App::from_value(&json!({"metadata": {"name": SVC, "namespace": NS, "generation": 1}, "status": status("ReconcileFailed", Some(WAIT))})).unwrap()),
        children: vec![pkgi(DOMAIN, "tkg-controller", "tkg-controller.tanzu.vmware.com", status("ReconcileFailed", Some(CHILD_FETCH)), json!({}))],
        packages: vec![
            package(NS, "tkg.vsphere.vmware.com", "harbor.corp.local/tkg/tkg-service:3.5.1"),
            package(DOMAIN, "tkg-controller.tanzu.vmware.com", "projects.registry.vmware.com/tkg/tkg-controller:3.5.1"),
        ],
    }
}

fn healthy() -> Input {
    let mut input = deadlocked();
    input.parent.status = pkgi(NS, SVC, "x", status("ReconcileSucceeded", None), json!({})).status;
    input.app.as_mut().unwrap().status = input.parent.status.clone();
    input.children[0].status = input.parent.status.clone();
    input
}

fn verdict(input: &Input, overrides: Overrides) -> Preconditions {
    let findings = diagnose(input, &RegistryPolicy::default());
    check(input, &findings, overrides)
}

fn held(p: &Preconditions, name: &str) -> bool {
    p.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .held
}

/// The colleague's pause of r10, as a real API server records it: the reason annotation, and the
/// managedFields entry of the `kubectl patch` that set `spec.paused`.
fn paused_with_reason(input: &mut Input) {
    input.parent = pkgi(
        NS,
        SVC,
        "tkg.vsphere.vmware.com",
        input.parent.status.clone().into_value(),
        json!({
            "annotations": {"supsvc.vmware.com/pause-reason": "holding hotfixed tkg-controller Deployment, ticket OPS-4711"},
            "managedFields": [
                {"manager": "kapp-controller", "operation": "Update", "time": "2026-11-01T08:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:packageRef": {}}}},
                {"manager": "kubectl-patch", "operation": "Update", "time": "2026-11-30T09:12:44Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {}}, "f:spec": {"f:paused": {}}}},
            ],
        }),
    );
    input.parent.spec.paused = true;
}

trait IntoValue {
    fn into_value(self) -> Value;
}

impl IntoValue for crate::carvel::ReconcileStatus {
    fn into_value(self) -> Value {
        serde_json::to_value(self).unwrap()
    }
}

#[test]
fn the_kb_signature_is_a_ground_whatever_the_layout_of_kapps_text() {
    let mut input = deadlocked();
    let p = verdict(&input, Overrides::default());
    assert_eq!(p.ground, Some(Ground::KbSignature), "{p:#?}");
    assert!(p.may_act());
    assert!(held(&p, "kb-signature") && held(&p, "no-foreign-pause"));
    // As vCenter shows it: one line.
    let one_line = kapp::flatten(WAIT);
    input.parent.status.useful_error_message = Some(one_line.clone());
    input.app.as_mut().unwrap().status.useful_error_message = Some(one_line);
    assert_eq!(
        verdict(&input, Overrides::default()).ground,
        Some(Ground::KbSignature)
    );
}

#[test]
fn the_parents_own_failing_fetch_is_refused_with_diagnoses_finding_and_the_force_flag() {
    // r11: the parent's own fetch fails on an unreachable private registry.
    let mut input = deadlocked();
    input.parent.status.useful_error_message = Some(PARENT_FETCH.into());
    input.app.as_mut().unwrap().status.useful_error_message = Some(PARENT_FETCH.into());
    let p = verdict(&input, Overrides::default());
    assert_eq!(p.ground, None);
    let refusal = p.refusal.as_ref().expect("refused");
    assert_eq!(refusal.code, RefusalCode::NotTheKb);
    assert_eq!(refusal.override_flag, "--force");
    assert!(refusal.why.contains("harbor.corp.local"), "{}", refusal.why);
    assert!(
        refusal.instead.iter().any(|i| i.contains("--force")),
        "{:?}",
        refusal.instead
    );
    assert!(!held(&p, "kb-signature"));
    // --force is an explicit override.
    let forced = verdict(
        &input,
        Overrides {
            force: true,
            ..Overrides::default()
        },
    );
    assert_eq!(forced.ground, Some(Ground::Forced));
    assert!(forced.may_act());
}

#[test]
fn a_run_of_its_own_is_resumed_even_when_nothing_else_holds() {
    let mut input = deadlocked();
    input.parent.status.useful_error_message = Some(PARENT_FETCH.into());
    input.parent.spec.paused = true;
    input.parent.metadata.annotations.insert(
        PROGRESS_ANNOTATION.into(),
        r#"{"run":"r0","step":"paused"}"#.into(),
    );
    let p = verdict(&input, Overrides::default());
    assert_eq!(p.ground, Some(Ground::ResumableRun));
    assert!(
        p.foreign_pauses.is_empty(),
        "the run's own pause is not foreign"
    );
}

#[test]
fn a_pause_with_a_reason_is_named_and_refused_unless_taken_over() {
    // r10: healthy, and a colleague paused it to hold a hotfix.
    let mut input = healthy();
    paused_with_reason(&mut input);
    let p = verdict(&input, Overrides::default());
    let refusal = p.refusal.as_ref().expect("refused");
    assert_eq!(refusal.code, RefusalCode::ForeignPause);
    assert_eq!(refusal.override_flag, "--take-over-pause");
    assert_eq!(p.foreign_pauses.len(), 1);
    let pause = &p.foreign_pauses[0];
    assert_eq!(pause.manager.as_deref(), Some("kubectl-patch"));
    assert_eq!(pause.time.as_deref(), Some("2026-11-30T09:12:44Z"));
    let line = pause.describe();
    assert!(
        line.contains("set by kubectl-patch (Update) at 2026-11-30T09:12:44Z"),
        "{line}"
    );
    assert!(
        line.contains("holding hotfixed tkg-controller Deployment"),
        "{line}"
    );
    assert!(refusal.why.contains(&line), "{}", refusal.why);
    assert!(!held(&p, "no-foreign-pause"));
    // Even on the KB's signature a deliberate pause is not taken silently.
    let mut stuck = deadlocked();
    paused_with_reason(&mut stuck);
    assert_eq!(
        verdict(&stuck, Overrides::default())
            .refusal
            .map(|r| r.code),
        Some(RefusalCode::ForeignPause)
    );
    assert_eq!(
        verdict(
            &stuck,
            Overrides {
                force: true,
                ..Overrides::default()
            }
        )
        .refusal
        .map(|r| r.code),
        Some(RefusalCode::ForeignPause),
        "--force is not the pause's flag"
    );
    // Taken over: fix acts, and the plan still names the pause.
    let taken = verdict(
        &input,
        Overrides {
            take_over_pause: true,
            ..Overrides::default()
        },
    );
    assert_eq!(taken.ground, Some(Ground::PauseTakenOver));
    assert_eq!(taken.foreign_pauses.len(), 1);
}

#[test]
fn a_reasonless_pause_of_a_healthy_service_is_still_someone_elses() {
    let mut input = healthy();
    input.parent.spec.paused = true;
    let p = verdict(&input, Overrides::default());
    assert_eq!(p.refusal.map(|r| r.code), Some(RefusalCode::ForeignPause));
    let line = p.foreign_pauses[0].describe();
    assert!(
        line.contains("not recorded") && line.contains("no reason given"),
        "{line}"
    );
}

#[test]
fn a_repair_begun_by_hand_is_completed() {
    // The KB's first command: the parent paused, no reason; its App still shows the wait.
    let mut input = deadlocked();
    input.parent.spec.paused = true;
    let p = verdict(&input, Overrides::default());
    assert_eq!(p.ground, Some(Ground::HandRepair), "{p:#?}");
    assert!(p.may_act());
    assert_eq!(p.foreign_pauses.len(), 1, "the plan still names the pause");
    // The KB's labels on the children, the parent unpaused again (kb-signature may hold too).
    let mut labelled = deadlocked();
    labelled.children[0]
        .metadata
        .labels
        .insert(KB_TRIGGER_LABEL.into(), "true".into());
    let p = verdict(&labelled, Overrides::default());
    assert!(p.may_act());
    assert!(held(&p, "hand-repair"));
    assert!(
        p.checks
            .iter()
            .any(|c| c.name == "hand-repair" && c.detail.contains("pkgi/tkg-controller"))
    );
    // The KB's labels on a service failing for another reason (r11 tried by hand): still refused.
    labelled.parent.status.useful_error_message = Some(PARENT_FETCH.into());
    labelled.app.as_mut().unwrap().status.useful_error_message = Some(PARENT_FETCH.into());
    let p = verdict(&labelled, Overrides::default());
    assert_eq!(
        p.refusal.as_ref().map(|r| r.code),
        Some(RefusalCode::NotTheKb)
    );
    assert!(!held(&p, "hand-repair"));
}

#[test]
fn a_healthy_service_needs_nothing() {
    let p = verdict(&healthy(), Overrides::default());
    assert_eq!(p.ground, Some(Ground::NothingToRepair));
    assert!(p.may_act());
}

#[test]
fn managed_fields_pick_the_latest_writer_of_the_field() {
    let mut input = healthy();
    paused_with_reason(&mut input);
    input
        .parent
        .metadata
        .managed_fields
        .push(crate::carvel::ManagedFieldsEntry {
            manager: "kubectl-edit".into(),
            operation: "Update".into(),
            time: Some("2026-11-30T10:00:00Z".into()),
            subresource: None,
            fields_v1: json!({"f:spec": {"f:paused": {}}}),
        });
    input
        .parent
        .metadata
        .managed_fields
        .push(crate::carvel::ManagedFieldsEntry {
            manager: "kapp-controller".into(),
            operation: "Update".into(),
            time: Some("2026-11-30T11:00:00Z".into()),
            subresource: Some("status".into()),
            fields_v1: json!({"f:status": {}}),
        });
    let pause = pause_of(Kind::PackageInstall, &input.parent).unwrap();
    assert_eq!(pause.manager.as_deref(), Some("kubectl-edit"));
    assert_eq!(pause.field, "spec.paused");
}
