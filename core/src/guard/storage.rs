//! The kapp-managed storage guard: no direct change to the spec of a PersistentVolumeClaim or
//! StatefulSet that kapp deploys, nor its deletion, except by the service accounts kapp deploys with.
//!
//! This is the lifecycle blog's disaster stopped before it happens: a PVC grown by hand drifts from what
//! the service's values say, and the service's next reconcile fails for good.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Decision, Operation, Request, SettingsError, user_matches, validate_patterns};
use crate::kapp;

/// The annotation that asks for a break-glass change; its value is the reason. The old key
/// (`supsvc.vmware.com/break-glass`) is still read ([`crate::keys`]).
pub const BREAK_GLASS_ANNOTATION: &str = crate::keys::BREAK_GLASS;
/// The audit annotation recorded for a break-glass change.
pub const BREAK_GLASS_AUDIT: &str = crate::keys::BREAK_GLASS;

/// Every field of `object` and `oldObject` [`decide`] reads (dotted paths for a policy's decoder).
pub const OBJECT_FIELDS: &[&str] = &[
    "metadata.labels",
    "metadata.annotations",
    "metadata.ownerReferences",
    "spec",
];

/// Settings of the storage guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageGuardSettings {
    /// Users whose writes are kapp's own: kapp-controller deploys each App as the App's
    /// `spec.serviceAccountName`. The defaults fit a Supervisor: service accounts of the Supervisor
    /// Services' namespace, of their domain namespaces (`svc-*`), and of kube-system's controllers.
    #[serde(default = "default_deployers")]
    pub deployers: Vec<String>,
    /// Further users (names or `prefix*`) allowed to change kapp-managed storage.
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Groups allowed to change kapp-managed storage.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Groups whose break-glass requests (annotation `supsvc.io/break-glass: <reason>`) are
    /// honoured. Empty: no break-glass.
    #[serde(default)]
    pub break_glass_groups: Vec<String>,
}

fn default_deployers() -> Vec<String> {
    [
        "system:serviceaccount:vmware-system-supervisor-services:*",
        "system:serviceaccount:svc-*",
        "system:serviceaccount:kube-system:*",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for StorageGuardSettings {
    fn default() -> Self {
        StorageGuardSettings {
            deployers: default_deployers(),
            allowed_users: Vec::new(),
            allowed_groups: Vec::new(),
            break_glass_groups: Vec::new(),
        }
    }
}

impl StorageGuardSettings {
    /// Checks the settings as the policy does when it loads.
    ///
    /// # Errors
    /// The first user pattern or group that cannot work ([`SettingsError::UserPattern`],
    /// [`SettingsError::Group`]).
    pub fn validate(&self) -> Result<(), SettingsError> {
        validate_patterns("deployers", &self.deployers)?;
        validate_patterns("allowedUsers", &self.allowed_users)?;
        for (field, groups) in [
            ("allowedGroups", &self.allowed_groups),
            ("breakGlassGroups", &self.break_glass_groups),
        ] {
            if let Some(bad) = groups
                .iter()
                .find(|g| g.trim().is_empty() || g.contains('*'))
            {
                return Err(SettingsError::Group {
                    field,
                    group: bad.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Whether [`decide`] may read the objects of a request with this operation and subresource
/// (an UPDATE or DELETE of the object itself or a subresource other than `status`); for any
/// other request it allows at once, so a policy can skip decoding the objects.
pub fn reads_objects(operation: Operation, sub_resource: &str) -> bool {
    matches!(operation, Operation::Update | Operation::Delete) && sub_resource != "status"
}

/// The guard's decision on one request.
pub fn decide(request: &Request<'_>, settings: &StorageGuardSettings) -> Decision {
    let guarded = matches!(
        (request.group, request.kind),
        ("", "PersistentVolumeClaim") | ("apps", "StatefulSet")
    );
    if !guarded || !reads_objects(request.operation, request.sub_resource) {
        return Decision::Allow;
    }
    // Ownership is read from the object as it is, so stripping kapp's marks in the same request
    // does not slip past the guard.
    let changes = if request.operation == Operation::Update {
        let changes = changed_paths(&request.old_object["spec"], &request.object["spec"], "spec");
        if changes.is_empty() {
            return Decision::Allow; // labels, annotations: not what breaks the next deploy
        }
        changes
    } else {
        Vec::new()
    };
    let Some(ownership) = kapp::owned_by_kapp(request.old_object) else {
        return stamped_claim_warning(request, &changes);
    };
    let allowed = settings
        .deployers
        .iter()
        .chain(&settings.allowed_users)
        .any(|p| user_matches(p, request.username))
        || request
            .groups
            .iter()
            .any(|g| settings.allowed_groups.contains(g));
    if allowed {
        return Decision::Allow;
    }

    let annotated = if request.operation == Operation::Delete {
        request.old_object
    } else {
        request.object
    };
    let reason = crate::keys::annotation(annotated, BREAK_GLASS_ANNOTATION).map(str::trim);
    let may_break_glass = request
        .groups
        .iter()
        .any(|g| settings.break_glass_groups.contains(g));
    let what = format!("{} {}/{}", request.kind, request.namespace, request.name);
    if let (Some(reason), true) = (reason, may_break_glass) {
        return Decision::AllowWithWarnings {
            warnings: vec![format!(
                "break-glass: {what} is managed by kapp; this change bypasses the service's values (reason: {reason}). Make the service's values match it, or its next reconcile will undo or refuse it."
            )],
            audit_annotations: vec![(
                BREAK_GLASS_AUDIT.to_string(),
                format!("{}: {reason}", request.username),
            )],
        };
    }

    let service = service_of(request.namespace);
    let action = if request.operation == Operation::Delete {
        "deleting it takes the storage from under the service, and kapp will recreate it empty"
            .to_string()
    } else {
        format!(
            "a direct change of its spec ({}) drifts from what the service deploys, and its next reconcile fails for good: kapp puts back what the values say, and a PVC cannot shrink nor a StatefulSet's volumeClaimTemplates change",
            describe_changes(&changes)
        )
    };
    let instead = match &service {
        Some(service) => format!("change the service's values instead: kubectl supsvc values-edit {service}"),
        None => "change the owning Supervisor Service's values instead (kubectl supsvc status lists them; then kubectl supsvc values-edit SERVICE)".to_string(),
    };
    let mut message = format!(
        "{what} is managed by kapp (kapp.k14s.io/app={}){}: {action}; {instead}",
        ownership.app_label,
        service
            .as_ref()
            .map(|s| format!(" for Supervisor Service {s}"))
            .unwrap_or_default(),
    );
    if reason.is_some() {
        message.push_str(". The break-glass annotation is honoured only for the groups in the policy's breakGlassGroups setting");
    }
    Decision::Deny { message }
}

/// A claim the StatefulSet controller stamped from a kapp-deployed `volumeClaimTemplate` carries
/// kapp's app label (copied from the template) but kapp never applies it: growing it directly is the
/// standard way to grow a StatefulSet's storage, and what `values-edit` advises. Allowed, with a
/// warning naming the StatefulSet; anything else kapp does not apply is allowed silently.
fn stamped_claim_warning(request: &Request<'_>, changes: &[String]) -> Decision {
    let claim = request.kind == "PersistentVolumeClaim";
    if !claim || kapp::ownership(request.old_object).is_none() {
        return Decision::Allow;
    }
    let statefulset = statefulset_of_claim(request.old_object, request.name);
    let what = if request.operation == Operation::Delete {
        "deleting it loses its data: the StatefulSet creates an empty claim again for the pod"
            .into()
    } else {
        format!(
            "this change ({}) is yours to keep: the StatefulSet's volumeClaimTemplates still say the old size, so claims of new replicas get that",
            describe_changes(changes)
        )
    };
    Decision::AllowWithWarnings {
        warnings: vec![format!(
            "PersistentVolumeClaim {}/{} is not applied by kapp: the StatefulSet controller created it from a volumeClaimTemplate of {statefulset} (kapp deployed that StatefulSet; the claim only copies its labels); {what}",
            request.namespace, request.name
        )],
        audit_annotations: Vec::new(),
    }
}

/// The StatefulSet a claim belongs to, for a message: its owner reference when it has one (a
/// `persistentVolumeClaimRetentionPolicy` sets it), else the candidates its name allows. The
/// controller names claims `<template>-<statefulset>-<ordinal>` (kubernetes
/// `pkg/controller/statefulset/stateful_set_utils.go`, getPersistentVolumeClaimName), and the
/// template name may itself contain `-`.
fn statefulset_of_claim(claim: &Value, name: &str) -> String {
    let owner = claim["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["kind"] == "StatefulSet")
        .and_then(|o| o["name"].as_str());
    if let Some(owner) = owner {
        return format!("StatefulSet {owner}");
    }
    let Some((stem, ordinal)) = name.rsplit_once('-') else {
        return "its StatefulSet".into();
    };
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return "its StatefulSet".into();
    }
    let candidates: Vec<&str> = stem
        .match_indices('-')
        .map(|(i, _)| &stem[i + 1..])
        .filter(|c| !c.is_empty())
        .collect();
    match candidates.as_slice() {
        [] => "its StatefulSet".into(),
        [one] => format!("StatefulSet {one}"),
        // Which split is right depends on the template's name, which the claim does not carry.
        [rest @ .., last] => format!(
            "StatefulSet {} or {last} (the one that exists; claims are named <template>-<statefulset>-<ordinal>)",
            rest.join(", ")
        ),
    }
}

/// The Supervisor Service of a domain namespace: `svc-harbor-domain-c8` belongs to `svc-harbor`.
pub fn service_of(namespace: &str) -> Option<String> {
    let (service, domain) = namespace.rsplit_once("-domain-")?;
    (service.starts_with("svc-") && service.len() > 4 && !domain.is_empty())
        .then(|| service.to_string())
}

/// Dotted paths of the leaves that differ between `old` and `new`.
pub fn changed_paths(old: &Value, new: &Value, base: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect_changes(old, new, &mut base.to_owned(), &mut out);
    out
}

/// The changed leaves under `path`. Equal subtrees are passed over whole, and the path is one
/// buffer grown and cut back, not a string per node: this runs in the guest on every update.
fn collect_changes(old: &Value, new: &Value, path: &mut String, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    let at = path.len();
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                path.push('.');
                path.push_str(key);
                collect_changes(x, y, path, out);
                path.truncate(at);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                use std::fmt::Write as _;
                let _ = write!(path, "[{i}]");
                collect_changes(x, y, path, out);
                path.truncate(at);
            }
        }
        _ => out.push(path.clone()),
    }
}

fn describe_changes(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// [`super::decide`], checked to decide the same on objects decoded with only
    /// [`OBJECT_FIELDS`], as the policy decodes them.
    fn decide(request: &Request<'_>, settings: &StorageGuardSettings) -> Decision {
        super::super::decide_checking_projection(request, OBJECT_FIELDS, |r| {
            super::decide(r, settings)
        })
    }

    const HUMAN: &str = "kubernetes-admin";
    const HARBOR_SA: &str = "system:serviceaccount:vmware-system-supervisor-services:svc-harbor-sa";

    const IDENTITY: &str = "v1;svc-harbor-domain-c8//PersistentVolumeClaim/harbor-registry;v1";

    fn pvc(storage: &str, managed: bool) -> Value {
        let (labels, annotations) = if managed {
            (
                json!({"kapp.k14s.io/app": "1234", "kapp.k14s.io/association": "v1.ab"}),
                json!({"kapp.k14s.io/identity": IDENTITY}),
            )
        } else {
            (json!({}), json!({}))
        };
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "harbor-registry", "namespace": "svc-harbor-domain-c8", "labels": labels, "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}
        })
    }

    struct Case<'a> {
        name: &'a str,
        operation: Operation,
        kind: (&'a str, &'a str),
        sub_resource: &'a str,
        user: &'a str,
        groups: &'a [&'a str],
        old: Value,
        new: Value,
        denied: bool,
    }

    fn run(case: &Case<'_>, settings: &StorageGuardSettings) -> Decision {
        let groups: Vec<String> = case.groups.iter().map(|g| g.to_string()).collect();
        let request = Request {
            operation: case.operation,
            group: case.kind.0,
            kind: case.kind.1,
            sub_resource: case.sub_resource,
            namespace: "svc-harbor-domain-c8",
            name: "harbor-registry",
            username: case.user,
            groups: &groups,
            object: &case.new,
            old_object: &case.old,
        };
        decide(&request, settings)
    }

    #[test]
    fn decisions_for_the_cases_a_supervisor_sees() {
        let pvc_kind = ("", "PersistentVolumeClaim");
        let sts_kind = ("apps", "StatefulSet");
        let mut relabelled = pvc("55Gi", true);
        relabelled["metadata"]["labels"]["team"] = json!("x");
        let mut stripped = pvc("60Gi", false);
        stripped["metadata"]["labels"] = json!({});
        let sts = |size: &str| {
            json!({"kind": "StatefulSet", "metadata": {"labels": {"kapp.k14s.io/app": "1234"},
                   "annotations": {"kapp.k14s.io/identity": "v1;svc-harbor-domain-c8/apps/StatefulSet/harbor-database;apps/v1"}},
                   "spec": {"replicas": 1, "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": size}}}}]}})
        };
        let cases = [
            Case {
                name: "admin grows a kapp-managed PVC (the blog)",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &["system:masters"],
                old: pvc("55Gi", true),
                new: pvc("60Gi", true),
                denied: true,
            },
            Case {
                name: "the App's service account grows it",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: HARBOR_SA,
                groups: &[],
                old: pvc("55Gi", true),
                new: pvc("60Gi", true),
                denied: false,
            },
            Case {
                name: "a child App's service account in a domain namespace",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: "system:serviceaccount:svc-tkg-domain-c1234:tkg-pkg-sa",
                groups: &[],
                old: pvc("55Gi", true),
                new: pvc("60Gi", true),
                denied: false,
            },
            Case {
                name: "a workload service account elsewhere",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: "system:serviceaccount:default:ci",
                groups: &[],
                old: pvc("55Gi", true),
                new: pvc("60Gi", true),
                denied: true,
            },
            Case {
                name: "the resize controller updates status",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "status",
                user: HUMAN,
                groups: &[],
                old: pvc("55Gi", true),
                new: pvc("55Gi", true),
                denied: false,
            },
            Case {
                name: "a label-only change",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: pvc("55Gi", true),
                new: relabelled,
                denied: false,
            },
            Case {
                name: "kapp's labels stripped in the same update",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: pvc("55Gi", true),
                new: stripped,
                denied: true,
            },
            Case {
                name: "a PVC kapp does not manage",
                operation: Operation::Update,
                kind: pvc_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: pvc("55Gi", false),
                new: pvc("60Gi", false),
                denied: false,
            },
            Case {
                name: "deleting a kapp-managed PVC",
                operation: Operation::Delete,
                kind: pvc_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: pvc("55Gi", true),
                new: Value::Null,
                denied: true,
            },
            Case {
                name: "creating a PVC",
                operation: Operation::Create,
                kind: pvc_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: Value::Null,
                new: pvc("55Gi", true),
                denied: false,
            },
            Case {
                name: "a StatefulSet's volumeClaimTemplates",
                operation: Operation::Update,
                kind: sts_kind,
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: sts("2Gi"),
                new: sts("5Gi"),
                denied: true,
            },
            Case {
                name: "kubectl scale on a kapp-managed StatefulSet",
                operation: Operation::Update,
                kind: sts_kind,
                sub_resource: "scale",
                user: HUMAN,
                groups: &[],
                old: sts("2Gi"),
                new: {
                    let mut s = sts("2Gi");
                    s["spec"]["replicas"] = json!(3);
                    s
                },
                denied: true,
            },
            Case {
                name: "a Deployment is not guarded",
                operation: Operation::Update,
                kind: ("apps", "Deployment"),
                sub_resource: "",
                user: HUMAN,
                groups: &[],
                old: sts("2Gi"),
                new: sts("5Gi"),
                denied: false,
            },
        ];
        let settings = StorageGuardSettings::default();
        for case in &cases {
            assert_eq!(
                run(case, &settings).is_denied(),
                case.denied,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn the_denial_names_the_change_the_service_and_the_command_to_run_instead() {
        let groups = vec!["system:masters".to_string()];
        let (old, new) = (pvc("55Gi", true), pvc("60Gi", true));
        let request = Request {
            operation: Operation::Update,
            group: "",
            kind: "PersistentVolumeClaim",
            sub_resource: "",
            namespace: "svc-harbor-domain-c8",
            name: "harbor-registry",
            username: HUMAN,
            groups: &groups,
            object: &new,
            old_object: &old,
        };
        let Decision::Deny { message } = decide(&request, &StorageGuardSettings::default()) else {
            panic!("denied")
        };
        assert!(message.starts_with("PersistentVolumeClaim svc-harbor-domain-c8/harbor-registry is managed by kapp (kapp.k14s.io/app=1234) for Supervisor Service svc-harbor"), "{message}");
        assert!(
            message.contains("spec.resources.requests.storage"),
            "{message}"
        );
        assert!(
            message.ends_with("kubectl supsvc values-edit svc-harbor"),
            "{message}"
        );
    }

    #[test]
    fn break_glass_is_honoured_only_for_the_configured_groups_and_is_audited() {
        let (old, mut new) = (pvc("55Gi", true), pvc("60Gi", true));
        new["metadata"]["annotations"] = json!({BREAK_GLASS_ANNOTATION: "INC-42 registry full"});
        let settings = StorageGuardSettings {
            break_glass_groups: vec!["sre-oncall".into()],
            ..Default::default()
        };
        let oncall = vec!["sre-oncall".to_string()];
        let request = |groups| Request {
            operation: Operation::Update,
            group: "",
            kind: "PersistentVolumeClaim",
            sub_resource: "",
            namespace: "svc-harbor-domain-c8",
            name: "harbor-registry",
            username: "alice",
            groups,
            object: &new,
            old_object: &old,
        };
        match decide(&request(&oncall), &settings) {
            Decision::AllowWithWarnings {
                warnings,
                audit_annotations,
            } => {
                assert!(warnings[0].contains("INC-42 registry full"));
                assert_eq!(
                    audit_annotations,
                    vec![(
                        BREAK_GLASS_AUDIT.to_string(),
                        "alice: INC-42 registry full".to_string()
                    )]
                );
            }
            other => panic!("expected a break-glass allowance, got {other:?}"),
        }
        let Decision::Deny { message } = decide(&request(&[]), &settings) else {
            panic!("denied without the group")
        };
        assert!(message.contains("breakGlassGroups"), "{message}");
    }

    #[test]
    fn settings_errors_are_refused_with_the_field_named() {
        let bad: Result<StorageGuardSettings, _> = serde_json::from_value(json!({"deployerz": []}));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown field `deployerz`")
        );
        let settings = StorageGuardSettings {
            allowed_users: vec!["a*b".into()],
            ..Default::default()
        };
        assert_eq!(
            settings.validate().unwrap_err(),
            SettingsError::UserPattern {
                field: "allowedUsers",
                pattern: "a*b".into()
            }
        );
        let settings = StorageGuardSettings {
            break_glass_groups: vec!["sre*".into()],
            ..Default::default()
        };
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("breakGlassGroups: invalid group \"sre*\"")
        );
        assert!(StorageGuardSettings::default().validate().is_ok());
    }

    /// r07: a claim the StatefulSet controller stamped from a kapp-deployed template: kapp's app label
    /// (copied from the template), no identity annotation.
    fn stamped_claim(storage: &str, owner: Option<&str>) -> Value {
        let mut claim = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "database-data-harbor-database-0", "namespace": "svc-harbor-domain-c8",
                         "labels": {"app": "harbor", "component": "database",
                                    "kapp.k14s.io/app": "1713170000000000001", "kapp.k14s.io/association": "v1.9b1e7a"},
                         "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}
        });
        if let Some(owner) = owner {
            claim["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": owner, "uid": "u"}]);
        }
        claim
    }

    fn claim_request<'a>(
        operation: Operation,
        old: &'a Value,
        new: &'a Value,
        groups: &'a [String],
    ) -> Request<'a> {
        Request {
            operation,
            group: "",
            kind: "PersistentVolumeClaim",
            sub_resource: "",
            namespace: "svc-harbor-domain-c8",
            name: "database-data-harbor-database-0",
            username: HUMAN,
            groups,
            object: new,
            old_object: old,
        }
    }

    #[test]
    fn a_claim_stamped_from_a_kapp_deployed_template_may_grow_with_a_warning_naming_the_statefulset()
     {
        let groups = vec!["system:masters".to_string()];
        let settings = StorageGuardSettings::default();
        for (owner, named) in [
            (None, "harbor-database"),
            (Some("harbor-database"), "StatefulSet harbor-database"),
        ] {
            let (old, new) = (stamped_claim("2Gi", owner), stamped_claim("5Gi", owner));
            match decide(
                &claim_request(Operation::Update, &old, &new, &groups),
                &settings,
            ) {
                Decision::AllowWithWarnings { warnings, .. } => {
                    assert!(warnings[0].contains("not applied by kapp"), "{warnings:?}");
                    assert!(warnings[0].contains(named), "{warnings:?}");
                    assert!(
                        warnings[0].contains("spec.resources.requests.storage"),
                        "{warnings:?}"
                    );
                }
                other => panic!("a stamped claim may grow, got {other:?}"),
            }
        }
        // Its labels only: nothing to say.
        let (old, mut new) = (stamped_claim("2Gi", None), stamped_claim("2Gi", None));
        new["metadata"]["labels"]["team"] = json!("db");
        assert_eq!(
            decide(
                &claim_request(Operation::Update, &old, &new, &groups),
                &settings
            ),
            Decision::Allow
        );
        // The same claim as kapp applies it (identity annotation): denied, as before.
        let mut applied = stamped_claim("2Gi", None);
        applied["metadata"]["annotations"]["kapp.k14s.io/identity"] = json!(
            "v1;svc-harbor-domain-c8//PersistentVolumeClaim/database-data-harbor-database-0;v1"
        );
        let mut grown = applied.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("5Gi");
        assert!(
            decide(
                &claim_request(Operation::Update, &applied, &grown, &groups),
                &settings
            )
            .is_denied()
        );
    }

    #[test]
    fn the_statefulset_of_a_claim_is_read_from_its_owner_or_its_name() {
        let claim = json!({});
        assert_eq!(
            statefulset_of_claim(&claim, "data-web-0"),
            "StatefulSet web"
        );
        let named = statefulset_of_claim(&claim, "database-data-harbor-database-0");
        assert!(
            named.starts_with("StatefulSet data-harbor-database, harbor-database or database"),
            "{named}"
        );
        assert_eq!(statefulset_of_claim(&claim, "scratch"), "its StatefulSet");
        assert_eq!(statefulset_of_claim(&claim, "a-b-x"), "its StatefulSet");
    }

    #[test]
    fn domain_namespaces_name_their_service() {
        assert_eq!(
            service_of("svc-harbor-domain-c8").as_deref(),
            Some("svc-harbor")
        );
        assert_eq!(
            service_of("svc-tkg-domain-c1234").as_deref(),
            Some("svc-tkg")
        );
        assert_eq!(service_of("default"), None);
        assert_eq!(service_of("team-domain-c8"), None);
    }

    #[test]
    fn changed_paths_name_the_leaves() {
        let old = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        let new = json!({"a": {"b": 2, "c": [1, 3]}, "e": "y"});
        assert_eq!(
            changed_paths(&old, &new, "spec"),
            vec!["spec.a.b", "spec.a.c[1]", "spec.d", "spec.e"]
        );
    }
}
