//! The public-registry guard: no Pod, pod template or Carvel fetch may pull from a public registry
//! or download from a public host. An air-gapped Supervisor cannot reach one, and a package that
//! does is the start of the KB's deadlock.
//!
//! The kind is the request's (`request.kind`, as the API server names what it sends), never the
//! object's own `apiVersion`/`kind`, which a client may leave out.

use serde::{Deserialize, Serialize};

use super::{Decision, Operation, Request, SettingsError};
use crate::carvel::{self, FetchSource};
use crate::image::{self, ImageRef, RegistryPattern, RegistryPolicy, RegistryVerdict};

/// Every field of `object` and `oldObject` [`decide`] reads (dotted paths for a policy's decoder):
/// the Pod specs of every pod-template kind and the Carvel fetches.
pub const OBJECT_FIELDS: &[&str] = &[
    // Pod
    "spec.initContainers.image",
    "spec.containers.image",
    "spec.ephemeralContainers.image",
    // PodTemplate
    "template.spec.initContainers.image",
    "template.spec.containers.image",
    "template.spec.ephemeralContainers.image",
    // the workload kinds and ReplicationController
    "spec.template.spec.initContainers.image",
    "spec.template.spec.containers.image",
    "spec.template.spec.ephemeralContainers.image",
    // CronJob
    "spec.jobTemplate.spec.template.spec.initContainers.image",
    "spec.jobTemplate.spec.template.spec.containers.image",
    "spec.jobTemplate.spec.template.spec.ephemeralContainers.image",
    // EphemeralContainers (pods/ephemeralcontainers before Kubernetes 1.23)
    "ephemeralContainers.image",
    // Package, App and PackageRepository fetches (carvel::FETCH_FIELDS)
    "spec.template.spec.fetch.imgpkgBundle.image",
    "spec.template.spec.fetch.image.url",
    "spec.template.spec.fetch.http.url",
    "spec.template.spec.fetch.git.url",
    "spec.template.spec.fetch.helmChart.name",
    "spec.template.spec.fetch.helmChart.repository.url",
    "spec.fetch.imgpkgBundle.image",
    "spec.fetch.image.url",
    "spec.fetch.http.url",
    "spec.fetch.git.url",
    "spec.fetch.helmChart.name",
    "spec.fetch.helmChart.repository.url",
];

/// Settings of the registry guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryGuardSettings {
    /// The private registries; any other is refused (recommended for air-gapped Supervisors).
    /// Patterns: `registry.example.com`, `*.example.com`, `registry.example.com:5000`,
    /// `registry.example.com/project`. Any name of Docker Hub means Docker Hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_registries: Option<Vec<String>>,
    /// The public registries, refused; any other is allowed. Default: the well-known public ones
    /// ([`crate::registries::PUBLIC_REGISTRIES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_registries: Option<Vec<String>>,
    /// The hosts `http`, `git` and Helm repository fetches may download from; any other is refused.
    /// Same patterns (`git.example.com`, `*.example.com`, `github.example.com/org`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// The public hosts such fetches may not download from. Default: the well-known public ones
    /// ([`crate::registries::PUBLIC_SOURCE_HOSTS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_hosts: Option<Vec<String>>,
    /// Namespaces the guard does not check.
    #[serde(default)]
    pub exempt_namespaces: Vec<String>,
}

fn list_policy(
    noun: &'static str,
    (allow_field, allow): (&'static str, &Option<Vec<String>>),
    (deny_field, deny): (&'static str, &Option<Vec<String>>),
    default: fn() -> RegistryPolicy,
) -> Result<RegistryPolicy, SettingsError> {
    let parse =
        |field: &'static str, patterns: &[String]| -> Result<Vec<RegistryPattern>, SettingsError> {
            patterns
                .iter()
                .map(|p| {
                    RegistryPattern::parse(p).map_err(|e| SettingsError::RegistryPattern {
                        field,
                        noun,
                        pattern: p.clone(),
                        reason: e.reason.to_string(),
                    })
                })
                .collect()
        };
    match (allow, deny) {
        (Some(_), Some(_)) => Err(SettingsError::BothLists {
            allow: allow_field,
            deny: deny_field,
        }),
        (Some(allow), None) if allow.is_empty() => {
            Err(SettingsError::EmptyAllowList { field: allow_field })
        }
        (Some(allow), None) => Ok(RegistryPolicy::AllowList(parse(allow_field, allow)?)),
        (None, Some(deny)) => Ok(RegistryPolicy::DenyList(parse(deny_field, deny)?)),
        (None, None) => Ok(default()),
    }
}

impl RegistryGuardSettings {
    /// The registry policy these settings describe (images, bundles, OCI Helm charts).
    ///
    /// # Errors
    /// Both lists set, an empty allow-list, or a pattern that does not parse.
    pub fn policy(&self) -> Result<RegistryPolicy, SettingsError> {
        list_policy(
            "registry",
            ("allowedRegistries", &self.allowed_registries),
            ("deniedRegistries", &self.denied_registries),
            RegistryPolicy::default,
        )
    }

    /// The policy for the hosts of `http`, `git` and Helm repository fetches.
    ///
    /// # Errors
    /// As [`Self::policy`], for the host lists.
    pub fn host_policy(&self) -> Result<RegistryPolicy, SettingsError> {
        list_policy(
            "host",
            ("allowedHosts", &self.allowed_hosts),
            ("deniedHosts", &self.denied_hosts),
            RegistryPolicy::default_source_hosts,
        )
    }

    /// Everything wrong with the settings, as the policy refuses them when it loads: what
    /// [`Self::policy`] and [`Self::host_policy`] refuse, and every entry that can never match
    /// (a misspelt name of Docker Hub, a port on Docker Hub, a namespace that cannot exist), each
    /// with the entry and the reason.
    ///
    /// # Errors
    /// The first refusal of [`Self::policy`] or [`Self::host_policy`], else every entry that can
    /// never match ([`SettingsError::NeverMatch`]).
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.policy()?;
        self.host_policy()?;
        let mut problems = Vec::new();
        for (field, list) in [
            ("allowedRegistries", &self.allowed_registries),
            ("deniedRegistries", &self.denied_registries),
            ("allowedHosts", &self.allowed_hosts),
            ("deniedHosts", &self.denied_hosts),
        ] {
            for entry in list.iter().flatten() {
                if let Some(reason) = RegistryPattern::parse(entry)
                    .ok()
                    .and_then(|p| p.never_matches())
                {
                    problems.push(format!("{field}: {entry:?} can never match: {reason}"));
                }
            }
        }
        for ns in &self.exempt_namespaces {
            let label_ok = !ns.is_empty()
                && ns.len() <= 63
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !ns.starts_with('-')
                && !ns.ends_with('-');
            if !label_ok {
                problems.push(format!(
                    "exemptNamespaces: {ns:?} can never match: a namespace name is a DNS label (lower-case letters, digits and '-', at most 63)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::NeverMatch(problems))
        }
    }
}

/// One reference the guard refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offense {
    path: String,
    written: String,
    what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    /// An image (or bundle) reference, normalised, refused by the registry policy.
    Image {
        normalized: String,
        registry: String,
        verdict: RegistryVerdict,
    },
    /// A Helm chart pulled from an OCI registry the registry policy refuses.
    Chart {
        reference: String,
        registry: String,
        verdict: RegistryVerdict,
    },
    /// A download from a host the host policy refuses.
    Host {
        host: String,
        verdict: RegistryVerdict,
    },
    /// Not an image reference (a runtime could not pull it either).
    BadImage(String),
    /// Not a URL.
    BadUrl,
}

impl Offense {
    /// Where it pulls from, for a warning.
    fn origin(&self) -> &str {
        match &self.what {
            What::Image { registry, .. } | What::Chart { registry, .. } => registry,
            What::Host { host, .. } => host,
            What::BadImage(_) | What::BadUrl => "an unparsable reference",
        }
    }
}

/// The references of an object the policies refuse; the kind is the request's.
fn offenses(
    group: &str,
    kind: &str,
    object: &serde_json::Value,
    policy: &RegistryPolicy,
    hosts: &mut Option<Result<RegistryPolicy, SettingsError>>,
    settings: &RegistryGuardSettings,
) -> Vec<Offense> {
    let image_offense =
        |path: String, written: String, reference: &str, chart: bool| match ImageRef::parse(
            reference,
        ) {
            Ok(image) => {
                let verdict = policy.classify(&image);
                let registry = image.registry().to_owned();
                verdict.is_refused().then(|| Offense {
                    path,
                    written,
                    what: if chart {
                        What::Chart {
                            reference: format!("{}/{}", image.registry(), image.repository()),
                            registry,
                            verdict,
                        }
                    } else {
                        What::Image {
                            normalized: image.to_string(),
                            registry,
                            verdict,
                        }
                    },
                })
            }
            Err(e) => Some(Offense {
                path,
                written,
                what: What::BadImage(e.reason),
            }),
        };
    let mut out: Vec<Offense> = image::find_images_of(group, kind, object)
        .into_iter()
        .filter_map(|o| {
            let reference = o.image.clone();
            image_offense(o.path, o.image, &reference, false)
        })
        .collect();
    for source in carvel::fetch_sources_of(group, kind, object) {
        match source {
            FetchSource::Registry {
                path,
                written,
                reference,
            } => {
                let chart = path.ends_with(".helmChart.repository.url");
                // Images and bundles were found above; only charts are new here.
                if chart && let Some(o) = image_offense(path, written, &reference, true) {
                    out.push(o);
                }
            }
            FetchSource::Url {
                path,
                written,
                authority,
                url_path,
            } => {
                let Some(authority) = authority else {
                    out.push(Offense {
                        path,
                        written,
                        what: What::BadUrl,
                    });
                    continue;
                };
                let hosts = hosts.get_or_insert_with(|| settings.host_policy());
                let verdict = match hosts {
                    Ok(hosts) => hosts.classify_location(&authority, &url_path),
                    // Settings were checked at load; misconfigured, nothing passes.
                    Err(_) => RegistryVerdict::NotAllowed,
                };
                if verdict.is_refused() {
                    out.push(Offense {
                        path,
                        written,
                        what: What::Host {
                            host: authority,
                            verdict,
                        },
                    });
                }
            }
        }
    }
    out
}

/// Whether [`decide`] looks at `request` at all: a CREATE or UPDATE of an object itself or of its
/// `ephemeralcontainers` (`kubectl debug`), outside the exempt namespaces. Anything else (a DELETE,
/// a `status` or `scale` write) cannot add a pull from a public registry and is allowed as it is,
/// so a caller can skip building the registry lists ([`RegistryGuardSettings::policy`]) for it.
pub fn checks(request: &Request<'_>, settings: &RegistryGuardSettings) -> bool {
    reads_objects(request.operation, request.sub_resource)
        && !settings
            .exempt_namespaces
            .iter()
            .any(|ns| ns == request.namespace)
}

/// Whether [`decide`] reads the objects of a request with this operation and subresource: the
/// part of [`checks`] known before the objects and the settings, so a policy can skip decoding
/// the objects of any other request (a DELETE, a `status` write).
pub fn reads_objects(operation: Operation, sub_resource: &str) -> bool {
    matches!(operation, Operation::Create | Operation::Update)
        && matches!(sub_resource, "" | "ephemeralcontainers")
}

/// The guard's decision on one request; `policy` is [`RegistryGuardSettings::policy`].
pub fn decide(
    request: &Request<'_>,
    settings: &RegistryGuardSettings,
    policy: &RegistryPolicy,
) -> Decision {
    if !checks(request, settings) {
        return Decision::Allow;
    }
    let mut hosts = None;
    let (group, kind) = (request.group, request.kind);
    let found = offenses(group, kind, request.object, policy, &mut hosts, settings);
    if found.is_empty() {
        return Decision::Allow;
    }
    // An update does not have to fix what was already there, but may not add to it.
    let existing = offenses(
        group,
        kind,
        request.old_object,
        policy,
        &mut hosts,
        settings,
    );
    let (old, new): (Vec<Offense>, Vec<Offense>) = found.into_iter().partition(|o| {
        existing
            .iter()
            .any(|e| e.path == o.path && e.written == o.written)
    });
    if new.is_empty() {
        let warnings = old
            .iter()
            .map(|o| {
                format!(
                    "{} already pulls from {} ({}); relocate it",
                    o.path,
                    o.origin(),
                    o.written
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

fn judged(verdict: &RegistryVerdict) -> String {
    match verdict {
        RegistryVerdict::Public { pattern } => format!("public: {pattern}"),
        _ => "not allowed".into(),
    }
}

fn message(request: &Request<'_>, offenses: &[Offense], policy: &RegistryPolicy) -> String {
    let which = match policy {
        RegistryPolicy::AllowList(_) => "not on the allowed registries or hosts",
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
        let detail = match &offense.what {
            What::Image {
                normalized,
                registry,
                verdict,
            } => format!(
                "resolves to {normalized}, registry {registry} ({})",
                judged(verdict)
            ),
            What::Chart {
                reference,
                registry,
                verdict,
            } => format!(
                "is the OCI Helm chart {reference}, registry {registry} ({})",
                judged(verdict)
            ),
            What::Host { host, verdict } => {
                format!("downloads from host {host} ({})", judged(verdict))
            }
            What::BadImage(error) => format!("is not a valid image reference: {error}"),
            What::BadUrl => "is not a URL (scheme://host/path or git's user@host:path)".into(),
        };
        lines.push(format!(
            "- {}: {:?} {detail}",
            offense.path, offense.written
        ));
    }
    let carvel = matches!(request.kind, "Package" | "App" | "PackageRepository");
    lines.push(if carvel {
        "Relocate the bundle with every nested image: imgpkg copy -b <bundle> --to-repo <private-registry>/<repository>; then point the package at the copy: kubectl supsvc override-image -p <package> -i <relocated-bundle> (Helm charts: helm pull, then helm push to the private registry; git and http sources: mirror them on a private host)".into()
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
        super::super::decide_checking_projection(request, OBJECT_FIELDS, |r| {
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
        operation: Operation,
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
    fn only_writes_that_can_add_a_pull_are_looked_at() {
        let settings = RegistryGuardSettings {
            exempt_namespaces: vec!["supsvc-webhook".into()],
            ..Default::default()
        };
        let object = pod(&["nginx"]);
        let cases = [
            (Operation::Create, "", "default", true),
            (Operation::Update, "", "default", true),
            (Operation::Update, "ephemeralcontainers", "default", true),
            (Operation::Delete, "", "default", false),
            (Operation::Connect, "exec", "default", false),
            (Operation::Update, "status", "default", false),
            (Operation::Update, "scale", "default", false),
            (Operation::Create, "", "supsvc-webhook", false),
        ];
        for (operation, sub_resource, namespace, looked_at) in cases {
            let request = Request {
                operation,
                group: "",
                kind: "Pod",
                sub_resource,
                namespace,
                name: "web",
                username: "alice",
                groups: &[],
                object: &object,
                old_object: &Value::Null,
            };
            assert_eq!(
                checks(&request, &settings),
                looked_at,
                "{operation} {sub_resource} in {namespace}"
            );
            // What is not looked at is allowed as it is, public image or not.
            if !looked_at {
                let policy = settings.policy().unwrap();
                assert_eq!(decide(&request, &settings, &policy), Decision::Allow);
            }
        }
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
                decide_on(Operation::Create, kind, &object, &Value::Null, &deny).is_denied(),
                denied,
                "{name}"
            );
        }
    }

    #[test]
    fn the_message_lists_every_offending_image_with_its_path_and_registry() {
        let Decision::Deny { message } = decide_on(
            Operation::Create,
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
                Operation::Create,
                ("", "Pod"),
                &pod(&["my-registry.example.com/a:1"]),
                &Value::Null,
                &allow
            )
            .is_denied()
        );
        assert!(
            decide_on(
                Operation::Create,
                ("", "Pod"),
                &pod(&["registry.internal.corp/a:1"]),
                &Value::Null,
                &allow
            )
            .is_denied()
        );
        let app = json!({"apiVersion": "kappctrl.k14s.io/v1alpha1", "kind": "App", "spec": {"fetch": [{"imgpkgBundle": {"image": "registry.internal.corp/b:1"}}]}});
        let Decision::Deny { message } = decide_on(
            Operation::Create,
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
        match decide_on(Operation::Update, ("", "Pod"), &scaled, &old, &settings) {
            Decision::AllowWithWarnings { warnings, .. } => {
                assert!(warnings[0].contains("docker.io"), "{warnings:?}")
            }
            other => panic!("an unchanged image is allowed with a warning, got {other:?}"),
        }
        assert!(
            decide_on(
                Operation::Update,
                ("", "Pod"),
                &pod(&["nginx", "quay.io/x/y:1"]),
                &old,
                &settings
            )
            .is_denied()
        );
        assert!(
            !decide_on(
                Operation::Delete,
                ("", "Pod"),
                &Value::Null,
                &old,
                &settings
            )
            .is_denied()
        );
    }

    #[test]
    fn exempt_namespaces_and_invalid_references() {
        let exempt = RegistryGuardSettings {
            exempt_namespaces: vec!["default".into()],
            ..Default::default()
        };
        assert!(
            !decide_on(
                Operation::Create,
                ("", "Pod"),
                &pod(&["nginx"]),
                &Value::Null,
                &exempt
            )
            .is_denied()
        );
        let Decision::Deny { message } = decide_on(
            Operation::Create,
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
    fn the_kind_is_the_requests_and_every_fetch_that_pulls_counts() {
        let deny = RegistryGuardSettings::default();
        // A Pod object without apiVersion and kind: judged as the Pod the request says it is.
        let bare = json!({"spec": {"containers": [{"name": "a", "image": "nginx"}]}});
        assert!(decide_on(Operation::Create, ("", "Pod"), &bare, &Value::Null, &deny).is_denied());
        // kubectl debug: the Pod with a new ephemeral container, subresource ephemeralcontainers.
        let old = pod(&["harbor.corp/app:1"]);
        let mut debugged = old.clone();
        debugged["spec"]["ephemeralContainers"] =
            json!([{"name": "debugger", "image": "busybox:1.36"}]);
        let policy = deny.policy().unwrap();
        let request = Request {
            operation: Operation::Update,
            group: "",
            kind: "Pod",
            sub_resource: "ephemeralcontainers",
            namespace: "default",
            name: "web",
            username: "alice",
            groups: &[],
            object: &debugged,
            old_object: &old,
        };
        let Decision::Deny { message } = decide(&request, &deny, &policy) else {
            panic!("a public debug image is denied")
        };
        assert!(
            message.contains("spec.ephemeralContainers[0].image: \"busybox:1.36\""),
            "{message}"
        );
        let app = |fetch: Value| json!({"spec": {"fetch": fetch}});
        let cases = [
            (
                json!([{"helmChart": {"name": "redis", "repository": {"url": "oci://registry-1.docker.io/bitnamicharts"}}}]),
                true,
            ),
            (
                json!([{"helmChart": {"name": "redis", "repository": {"url": "oci://harbor.corp/charts"}}}]),
                false,
            ),
            (
                json!([{"helmChart": {"name": "nginx", "repository": {"url": "https://charts.bitnami.com/bitnami"}}}]),
                true,
            ),
            (
                json!([{"git": {"url": "git@github.com:org/repo.git"}}]),
                true,
            ),
            (
                json!([{"http": {"url": "https://raw.githubusercontent.com/o/r/main/a.yml"}}]),
                true,
            ),
            (
                json!([{"http": {"url": "https://artifacts.corp/a.tgz"}}]),
                false,
            ),
            (json!([{"git": {"url": "not a url"}}]), true),
            (json!([{"inline": {"paths": {"a.yml": "x"}}}]), false),
        ];
        for (fetch, denied) in cases {
            assert_eq!(
                decide_on(
                    Operation::Create,
                    ("kappctrl.k14s.io", "App"),
                    &app(fetch.clone()),
                    &Value::Null,
                    &deny
                )
                .is_denied(),
                denied,
                "{fetch}"
            );
        }
        // Settings decide the hosts: an allow-list refuses every other host.
        let hosts = RegistryGuardSettings {
            allowed_hosts: Some(vec!["artifacts.corp".into()]),
            ..Default::default()
        };
        let private = app(json!([{"http": {"url": "https://artifacts.corp/a.tgz"}}]));
        let other = app(json!([{"git": {"url": "https://git.example.org/r"}}]));
        assert!(
            !decide_on(
                Operation::Create,
                ("kappctrl.k14s.io", "App"),
                &private,
                &Value::Null,
                &hosts
            )
            .is_denied()
        );
        assert!(
            decide_on(
                Operation::Create,
                ("kappctrl.k14s.io", "App"),
                &other,
                &Value::Null,
                &hosts
            )
            .is_denied()
        );
        // A PackageRepository's one fetch.
        let repo = json!({"spec": {"fetch": {"imgpkgBundle": {"image": "projects.packages.broadcom.com/vsphere/supervisor/packages:1"}}}});
        assert!(
            decide_on(
                Operation::Create,
                ("packaging.carvel.dev", "PackageRepository"),
                &repo,
                &Value::Null,
                &deny
            )
            .is_denied()
        );
    }

    #[test]
    fn entries_that_can_never_match_are_refused_with_the_entry_and_the_reason() {
        let settings: RegistryGuardSettings = serde_json::from_value(json!({
            "deniedRegistries": ["regsitry-1.docker.io", "quay.io"],
            "deniedHosts": ["github.com"],
            "exemptNamespaces": ["Kube-System"]
        }))
        .unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(
            error.contains("deniedRegistries: \"regsitry-1.docker.io\" can never match: regsitry-1.docker.io looks like a misspelling of registry-1.docker.io"),
            "{error}"
        );
        assert!(
            error.contains("exemptNamespaces: \"Kube-System\" can never match"),
            "{error}"
        );
        assert!(
            !error.contains("quay.io") && !error.contains("github.com"),
            "{error}"
        );
        let bad_host: RegistryGuardSettings =
            serde_json::from_value(json!({"allowedHosts": ["https://github.com"]})).unwrap();
        assert!(
            bad_host
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("allowedHosts: invalid host pattern"),
        );
        assert!(RegistryGuardSettings::default().validate().is_ok());
    }

    #[test]
    fn settings_errors_are_refused_at_load() {
        let both = RegistryGuardSettings {
            allowed_registries: Some(vec!["a.example.com".into()]),
            denied_registries: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(
            both.policy().unwrap_err(),
            SettingsError::BothLists {
                allow: "allowedRegistries",
                deny: "deniedRegistries"
            }
        );
        let bad = RegistryGuardSettings {
            denied_registries: Some(vec!["*.*.bad pattern".into()]),
            ..Default::default()
        };
        assert!(
            bad.policy()
                .unwrap_err()
                .to_string()
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
