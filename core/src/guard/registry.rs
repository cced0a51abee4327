//! The public-registry guard: no Pod, pod template or Carvel fetch may pull from a public registry.
//! An air-gapped Supervisor cannot reach one, and a package that does is the start of the KB's deadlock.

use serde::{Deserialize, Serialize};

use super::{Decision, Request};
use crate::image::{self, Offense, RegistryPattern, RegistryPolicy, Verdict};

/// Settings of the registry guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryGuardSettings {
    /// The private registries; any other is refused (recommended for air-gapped Supervisors).
    /// Patterns: `registry.example.com`, `*.example.com`, `registry.example.com:5000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_registries: Option<Vec<String>>,
    /// The public registries, refused; any other is allowed. Default: the well-known public ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_registries: Option<Vec<String>>,
    /// Namespaces the guard does not check.
    #[serde(default)]
    pub exempt_namespaces: Vec<String>,
}

impl RegistryGuardSettings {
    /// The registry policy these settings describe, or what is wrong with them.
    pub fn policy(&self) -> Result<RegistryPolicy, String> {
        let parse = |field: &str, patterns: &[String]| -> Result<Vec<RegistryPattern>, String> {
            patterns
                .iter()
                .map(|p| {
                    RegistryPattern::parse(p).map_err(|e| {
                        format!("{field}: invalid registry pattern {p:?}: {}", e.reason)
                    })
                })
                .collect()
        };
        match (&self.allowed_registries, &self.denied_registries) {
            (Some(_), Some(_)) => Err(
                "set allowedRegistries (an allow-list) or deniedRegistries (a deny-list), not both"
                    .into(),
            ),
            (Some(allow), None) if allow.is_empty() => {
                Err("allowedRegistries is empty: every image would be refused".into())
            }
            (Some(allow), None) => Ok(RegistryPolicy::AllowList(parse(
                "allowedRegistries",
                allow,
            )?)),
            (None, Some(deny)) => Ok(RegistryPolicy::DenyList(parse("deniedRegistries", deny)?)),
            (None, None) => Ok(RegistryPolicy::default()),
        }
    }
}

/// The guard's decision on one request; `policy` is [`RegistryGuardSettings::policy`].
pub fn decide(
    request: &Request<'_>,
    settings: &RegistryGuardSettings,
    policy: &RegistryPolicy,
) -> Decision {
    let checked_sub_resource = matches!(request.sub_resource, "" | "ephemeralcontainers");
    if !matches!(request.operation, "CREATE" | "UPDATE")
        || !checked_sub_resource
        || settings
            .exempt_namespaces
            .iter()
            .any(|ns| ns == request.namespace)
    {
        return Decision::Allow;
    }
    let offenses = image::offending_images(request.object, policy);
    if offenses.is_empty() {
        return Decision::Allow;
    }
    // An update does not have to fix what was already there, but may not add to it.
    let existing = image::offending_images(request.old_object, policy);
    let (old, new): (Vec<Offense>, Vec<Offense>) = offenses.into_iter().partition(|o| {
        existing
            .iter()
            .any(|e| e.path == o.path && e.image == o.image)
    });
    if new.is_empty() {
        let warnings = old
            .iter()
            .map(|o| {
                format!(
                    "{} already pulls from {} ({}); relocate it",
                    o.path,
                    registry_of(o),
                    o.image
                )
            })
            .collect();
        return Decision::AllowWithWarnings {
            warnings,
            audit_annotations: Vec::new(),
        };
    }
    Decision::Deny {
        message: message(request, &new, policy),
    }
}

fn registry_of(offense: &Offense) -> &str {
    offense
        .registry
        .as_deref()
        .unwrap_or("an unparsable reference")
}

fn message(request: &Request<'_>, offenses: &[Offense], policy: &RegistryPolicy) -> String {
    let which = match policy {
        RegistryPolicy::AllowList(_) => "not on the allowed registries",
        RegistryPolicy::DenyList(_) => "public",
    };
    let mut lines = vec![format!(
        "{} {}/{} uses {} image reference(s) {which} — an air-gapped Supervisor cannot pull them:",
        request.kind,
        request.namespace,
        request.name,
        offenses.len()
    )];
    for offense in offenses {
        let detail = match (&offense.normalized, &offense.verdict, &offense.error) {
            (Some(normalized), Some(Verdict::Public { pattern }), _) => {
                format!(
                    "resolves to {normalized}, registry {} (public: {pattern})",
                    registry_of(offense)
                )
            }
            (Some(normalized), _, _) => format!(
                "resolves to {normalized}, registry {} (not allowed)",
                registry_of(offense)
            ),
            (None, _, Some(error)) => format!("is not a valid image reference: {error}"),
            _ => "is refused".into(),
        };
        lines.push(format!("- {}: {:?} {detail}", offense.path, offense.image));
    }
    let carvel = matches!(request.kind, "Package" | "App" | "PackageRepository");
    lines.push(if carvel {
        "Relocate the bundle with every nested image: imgpkg copy -b <bundle> --to-repo <private-registry>/<repository>; then point the package at the copy: kubectl supsvc override-image -p <package> -i <relocated-bundle>".into()
    } else {
        "Relocate the image into your private registry (imgpkg copy -i <image> --to-repo <private-registry>/<repository>) and reference the copy".into()
    });
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// [`super::decide`], checked to decide the same on objects decoded with only
    /// [`image::IMAGE_FIELDS`], as the policy decodes them.
    fn decide(
        request: &Request<'_>,
        settings: &RegistryGuardSettings,
        policy: &RegistryPolicy,
    ) -> Decision {
        super::super::decide_checking_projection(request, image::IMAGE_FIELDS, |r| {
            super::decide(r, settings, policy)
        })
    }

    fn pod(images: &[&str]) -> Value {
        let containers: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": containers}})
    }

    fn decide_on(
        operation: &str,
        kind: (&str, &str),
        object: &Value,
        old: &Value,
        settings: &RegistryGuardSettings,
    ) -> Decision {
        let policy = settings.policy().unwrap();
        let request = Request {
            operation,
            group: kind.0,
            kind: kind.1,
            sub_resource: "",
            namespace: "default",
            name: "web",
            username: "alice",
            groups: &[],
            object,
            old_object: old,
        };
        decide(&request, settings, &policy)
    }

    #[test]
    fn public_images_are_refused_wherever_they_hide() {
        let deny = RegistryGuardSettings::default();
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "my-registry.example.com/init:1"}],
            "containers": [{"name": "app", "image": "quay.io/prometheus/node-exporter:v1"}]}}}});
        let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": "busybox"}]}}}}}});
        let package = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package", "spec": {"template": {"spec": {
            "fetch": [{"imgpkgBundle": {"image": "projects.registry.vmware.com/tkg/packages/core/tkg-controller:v3.5.1"}}]}}}});
        let cases: [(&str, (&str, &str), Value, bool); 7] = [
            ("nginx is docker.io", ("", "Pod"), pod(&["nginx"]), true),
            (
                "index.docker.io is docker.io",
                ("", "Pod"),
                pod(&["index.docker.io/library/nginx:1.25"]),
                true,
            ),
            (
                "a private registry",
                ("", "Pod"),
                pod(&["my-registry.example.com/vmware/harbor/harbor-core:v2.9.1"]),
                false,
            ),
            (
                "localhost with a port",
                ("", "Pod"),
                pod(&["localhost:5000/app:1"]),
                false,
            ),
            (
                "a public container beside a private init container",
                ("apps", "Deployment"),
                deployment,
                true,
            ),
            (
                "a CronJob's job template",
                ("batch", "CronJob"),
                cronjob,
                true,
            ),
            (
                "a Package's bundle on the VMware public registry",
                ("data.packaging.carvel.dev", "Package"),
                package,
                true,
            ),
        ];
        for (name, kind, object, denied) in cases {
            assert_eq!(
                decide_on("CREATE", kind, &object, &Value::Null, &deny).is_denied(),
                denied,
                "{name}"
            );
        }
    }

    #[test]
    fn the_message_lists_every_offending_image_with_its_path_and_registry() {
        let Decision::Deny { message } = decide_on(
            "CREATE",
            ("", "Pod"),
            &pod(&[
                "nginx",
                "my-registry.example.com/ok:1",
                "ghcr.io/org/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ]),
            &Value::Null,
            &RegistryGuardSettings::default(),
        ) else {
            panic!("denied")
        };
        assert!(
            message.contains("uses 2 image reference(s) public"),
            "{message}"
        );
        assert!(message.contains("- spec.containers[0].image: \"nginx\" resolves to docker.io/library/nginx:latest, registry docker.io"), "{message}");
        assert!(
            message.contains("- spec.containers[2].image:") && message.contains("registry ghcr.io"),
            "{message}"
        );
        assert!(message.contains("imgpkg copy"), "{message}");
    }

    #[test]
    fn an_allow_list_refuses_everything_else_and_carvel_denials_point_at_override_image() {
        let allow = RegistryGuardSettings {
            allowed_registries: Some(vec!["*.example.com".into()]),
            ..Default::default()
        };
        assert!(
            !decide_on(
                "CREATE",
                ("", "Pod"),
                &pod(&["my-registry.example.com/a:1"]),
                &Value::Null,
                &allow
            )
            .is_denied()
        );
        assert!(
            decide_on(
                "CREATE",
                ("", "Pod"),
                &pod(&["registry.internal.corp/a:1"]),
                &Value::Null,
                &allow
            )
            .is_denied()
        );
        let app = json!({"apiVersion": "kappctrl.k14s.io/v1alpha1", "kind": "App", "spec": {"fetch": [{"imgpkgBundle": {"image": "registry.internal.corp/b:1"}}]}});
        let Decision::Deny { message } = decide_on(
            "CREATE",
            ("kappctrl.k14s.io", "App"),
            &app,
            &Value::Null,
            &allow,
        ) else {
            panic!("denied")
        };
        assert!(
            message.contains("not on the allowed registries")
                && message.contains("kubectl supsvc override-image"),
            "{message}"
        );
    }

    #[test]
    fn an_update_may_keep_existing_public_images_but_not_add_new_ones() {
        let settings = RegistryGuardSettings::default();
        let old = pod(&["nginx"]);
        let scaled = pod(&["nginx"]);
        match decide_on("UPDATE", ("", "Pod"), &scaled, &old, &settings) {
            Decision::AllowWithWarnings { warnings, .. } => {
                assert!(warnings[0].contains("docker.io"), "{warnings:?}")
            }
            other => panic!("an unchanged image is allowed with a warning, got {other:?}"),
        }
        assert!(
            decide_on(
                "UPDATE",
                ("", "Pod"),
                &pod(&["nginx", "quay.io/x/y:1"]),
                &old,
                &settings
            )
            .is_denied()
        );
        assert!(!decide_on("DELETE", ("", "Pod"), &Value::Null, &old, &settings).is_denied());
    }

    #[test]
    fn exempt_namespaces_and_invalid_references() {
        let exempt = RegistryGuardSettings {
            exempt_namespaces: vec!["default".into()],
            ..Default::default()
        };
        assert!(
            !decide_on(
                "CREATE",
                ("", "Pod"),
                &pod(&["nginx"]),
                &Value::Null,
                &exempt
            )
            .is_denied()
        );
        let Decision::Deny { message } = decide_on(
            "CREATE",
            ("", "Pod"),
            &pod(&["Not A Valid Ref!"]),
            &Value::Null,
            &RegistryGuardSettings::default(),
        ) else {
            panic!("an unparsable reference is denied")
        };
        assert!(
            message.contains("is not a valid image reference"),
            "{message}"
        );
    }

    #[test]
    fn settings_errors_are_refused_at_load() {
        let both = RegistryGuardSettings {
            allowed_registries: Some(vec!["a.example.com".into()]),
            denied_registries: Some(vec![]),
            ..Default::default()
        };
        assert!(both.policy().unwrap_err().contains("not both"));
        let bad = RegistryGuardSettings {
            denied_registries: Some(vec!["*.*.bad pattern".into()]),
            ..Default::default()
        };
        assert!(
            bad.policy()
                .unwrap_err()
                .starts_with("deniedRegistries: invalid registry pattern")
        );
        let unknown: Result<RegistryGuardSettings, _> =
            serde_json::from_value(json!({"allowRegistries": ["x"]}));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `allowRegistries`")
        );
        assert!(
            RegistryGuardSettings {
                allowed_registries: Some(vec![]),
                ..Default::default()
            }
            .policy()
            .is_err()
        );
    }
}
