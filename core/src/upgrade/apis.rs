//! Kubernetes API versions a version hop stops serving, and who still uses them (issue point 5).
//!
//! Objects stored in etcd are served at the new versions on their own; what breaks after the hop is
//! whatever still *names* a removed version: a manifest re-applied by kapp-controller, kubectl, a GitOps
//! tool or Helm, and a client calling the old path (the Kubernetes deprecated API migration guide).
//! Two sources, as pluto, kube-no-trouble and eksup read them:
//! - the manifest an object was last applied with: kapp's `kapp.k14s.io/original` annotation (the
//!   Carvel packages of a TKG cluster) and kubectl's `kubectl.kubernetes.io/last-applied-configuration`;
//! - the API server's `apiserver_requested_deprecated_apis` gauge (`/metrics`), set to 1 for every
//!   deprecated group/version/resource requested since the server started, with `removed_release`.
//!
//! The versions removed per release are data (`data/removed-apis.json`), not code.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::Finding;

/// The source of the removals and of what replaces them.
pub const SRC_DEPRECATION_GUIDE: &str =
    "https://kubernetes.io/docs/reference/using-api/deprecation-guide/";
use super::forecast::KubeVersion;

/// One API version no longer served from a release on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedApi {
    /// The release that stopped serving it, `1.MINOR`.
    pub removed_in: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// The removed version.
    pub version: String,
    /// Kind, e.g. `FlowSchema`.
    pub kind: String,
    /// Plural resource, e.g. `flowschemas`.
    pub resource: String,
    /// `group/version` to use instead; `None` when the kind has none (PodSecurityPolicy).
    pub replacement: Option<String>,
}

impl RemovedApi {
    /// `group/version` (`version` alone for the core group), as an `apiVersion` field names it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The minor of [`RemovedApi::removed_in`].
    pub fn removed_minor(&self) -> u32 {
        self.removed_in
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok())
            .unwrap_or(u32::MAX)
    }
}

#[derive(Deserialize)]
struct Data {
    removed: Vec<RemovedApi>,
}

/// Every removal the data file lists, in its order.
pub fn removed_apis() -> &'static [RemovedApi] {
    static DATA: OnceLock<Vec<RemovedApi>> = OnceLock::new();
    DATA.get_or_init(|| {
        serde_json::from_str::<Data>(include_str!("data/removed-apis.json"))
            .map(|d| d.removed)
            .unwrap_or_default()
    })
}

/// The Kubernetes versions a cluster hops between: its own (`current`, a TKR name or version) and
/// the target's; `None` when either is missing or not `vMAJOR.MINOR…`.
pub fn hop(current: Option<&str>, target: Option<&str>) -> Option<(KubeVersion, KubeVersion)> {
    Some((KubeVersion::parse(current?)?, KubeVersion::parse(target?)?))
}

/// The removals a hop from `from` to `to` crosses: removed in a minor above `from`'s and at most
/// `to`'s. Empty for a patch change or a downgrade.
pub fn removed_between(from: KubeVersion, to: KubeVersion) -> Vec<&'static RemovedApi> {
    if from.major != to.major || to.minor <= from.minor {
        return Vec::new();
    }
    removed_apis()
        .iter()
        .filter(|r| r.removed_minor() > from.minor && r.removed_minor() <= to.minor)
        .collect()
}

/// The resources to list to find manifests naming the hop's removed versions, as `(group, resource,
/// versions to try in order)`: the replacement first (what the server serves now), then the removed
/// version itself (still served before the hop). One entry per group and resource.
pub fn resources_to_list(removed: &[&RemovedApi]) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in removed {
        let replacement = r
            .replacement
            .as_deref()
            .and_then(|gv| gv.rsplit_once('/').or(Some(("", gv))))
            .filter(|(g, _)| *g == r.group)
            .map(|(_, v)| v.to_owned());
        let versions: Vec<String> = replacement.into_iter().chain([r.version.clone()]).collect();
        match out
            .iter_mut()
            .find(|(g, res, _)| *g == r.group && *res == r.resource)
        {
            Some((_, _, vs)) => {
                for v in versions {
                    if !vs.contains(&v) {
                        vs.push(v);
                    }
                }
            }
            None => out.push((r.group.clone(), r.resource.clone(), versions)),
        }
    }
    out
}

/// The annotations holding the manifest an object was last applied with, in the order they are read.
pub const MANIFEST_ANNOTATIONS: [&str; 2] = [
    "kapp.k14s.io/original",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// One object whose recorded manifest names a removed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestUse {
    /// `Kind namespace/name` (`Kind name` when cluster-scoped) of the live object.
    pub object: String,
    /// The annotation the manifest was read from.
    pub annotation: &'static str,
    /// The removal it names.
    pub removed: &'static RemovedApi,
}

/// The objects whose recorded manifest (see [`MANIFEST_ANNOTATIONS`]) names one of `removed`.
/// An annotation that is not a JSON object is not read (kapp and kubectl write JSON).
pub fn manifest_uses(objects: &[Value], removed: &[&'static RemovedApi]) -> Vec<ManifestUse> {
    let mut uses = Vec::new();
    for o in objects {
        let annotations = &o["metadata"]["annotations"];
        for annotation in MANIFEST_ANNOTATIONS {
            let Some(text) = annotations[annotation].as_str() else {
                continue;
            };
            let Ok(manifest) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let (Some(api_version), Some(kind)) =
                (manifest["apiVersion"].as_str(), manifest["kind"].as_str())
            else {
                continue;
            };
            if let Some(r) = removed
                .iter()
                .find(|r| r.kind == kind && r.api_version() == api_version)
            {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                let object = match o["metadata"]["namespace"].as_str() {
                    Some(ns) => format!("{kind} {ns}/{name}"),
                    None => format!("{kind} {name}"),
                };
                uses.push(ManifestUse {
                    object,
                    annotation,
                    removed: r,
                });
                break;
            }
        }
    }
    uses
}

/// One series of `apiserver_requested_deprecated_apis` with the value 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledApi {
    /// `group` label.
    pub group: String,
    /// `version` label.
    pub version: String,
    /// `resource` label.
    pub resource: String,
    /// `removed_release` label (`1.29`), empty when the server does not know it.
    pub removed_release: String,
}

/// The deprecated APIs requested since the server started, from the Prometheus text exposition of
/// `/metrics` (lines `apiserver_requested_deprecated_apis{group="…",…} 1`; comments and other
/// metrics ignored; a series at 0 is not a use).
pub fn called_apis(metrics: &str) -> Vec<CalledApi> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("apiserver_requested_deprecated_apis{")?;
            let (labels, value) = rest.rsplit_once('}')?;
            let value: f64 = value.split_whitespace().next()?.parse().ok()?;
            if value < 1.0 {
                return None;
            }
            let label = |name: &str| -> String {
                labels
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| k.trim() == name)
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                    .unwrap_or_default()
            };
            Some(CalledApi {
                group: label("group"),
                version: label("version"),
                resource: label("resource"),
                removed_release: label("removed_release"),
            })
        })
        .collect()
}

/// Findings of the hop from `from` to `to` for `cluster` (`namespace/name`): one
/// `UC-API-REMOVED-MANIFEST` per object whose recorded manifest names a removed version, one
/// `UC-API-REMOVED-CALLED` per removed version clients requested (`metrics`, when read).
pub fn findings(
    cluster: &str,
    from: KubeVersion,
    to: KubeVersion,
    objects: &[Value],
    metrics: Option<&str>,
) -> Vec<Finding> {
    let removed = removed_between(from, to);
    let instead = |r: &RemovedApi| match &r.replacement {
        Some(gv) => format!("use {gv}"),
        None => format!("{} has no replacement; remove it", r.kind),
    };
    let mut out: Vec<Finding> = manifest_uses(objects, &removed)
        .into_iter()
        .map(|u| {
            let mut f = Finding::new(
                "UC-API-REMOVED-MANIFEST",
                cluster.to_owned(),
                format!(
                    "{} was last applied as {} {} ({}), which Kubernetes 1.{} no longer serves: re-applying that manifest after the upgrade fails",
                    u.object,
                    u.removed.api_version(),
                    u.removed.kind,
                    u.annotation,
                    u.removed.removed_minor()
                ),
                &format!(
                    "update the manifest (its package, chart or repository) before the upgrade: {}",
                    instead(u.removed)
                ),
            );
            f.pods = vec![u.object.clone()];
            f
        })
        .collect();
    for c in called_apis(metrics.unwrap_or_default()) {
        if let Some(r) = removed
            .iter()
            .find(|r| r.group == c.group && r.version == c.version && r.resource == c.resource)
        {
            out.push(Finding::new(
                "UC-API-REMOVED-CALLED",
                cluster.to_owned(),
                format!(
                    "a client requested {} {} since the API server started (apiserver_requested_deprecated_apis); Kubernetes 1.{} no longer serves it",
                    r.api_version(),
                    r.resource,
                    r.removed_minor()
                ),
                &format!(
                    "find the caller (the API server's audit log: annotation k8s.io/deprecated) and move it before the upgrade: {}",
                    instead(r)
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(minor: u32) -> KubeVersion {
        KubeVersion {
            major: 1,
            minor,
            patch: 0,
        }
    }

    #[test]
    fn the_data_file_loads_and_each_release_holds_what_the_guide_lists() {
        let all = removed_apis();
        assert!(all.len() > 30);
        let in_release = |m: u32| all.iter().filter(|r| r.removed_minor() == m).count();
        for none in [23, 24, 28, 30, 31, 33] {
            assert_eq!(in_release(none), 0, "1.{none}");
        }
        assert!(all.iter().any(|r| r.kind == "PodSecurityPolicy"
            && r.removed_in == "1.25"
            && r.replacement.is_none()));
        assert!(
            all.iter().all(|r| r.removed_minor() != u32::MAX),
            "every removedIn is 1.MINOR"
        );
    }

    #[test]
    fn a_hop_crosses_the_removals_above_its_start_up_to_its_end() {
        let kinds = |from, to| -> Vec<String> {
            removed_between(v(from), v(to))
                .iter()
                .map(|r| format!("{} {}", r.api_version(), r.kind))
                .collect()
        };
        assert_eq!(
            kinds(28, 29),
            [
                "flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema",
                "flowcontrol.apiserver.k8s.io/v1beta2 PriorityLevelConfiguration"
            ]
        );
        assert!(kinds(29, 30).is_empty());
        assert!(kinds(29, 29).is_empty(), "a patch change");
        assert!(kinds(29, 28).is_empty(), "a downgrade");
        assert!(kinds(24, 25).contains(&"policy/v1beta1 PodSecurityPolicy".to_owned()));
        assert_eq!(
            kinds(21, 33).len(),
            removed_apis().len(),
            "every release crossed"
        );
    }

    #[test]
    fn a_hop_is_read_from_tkr_names() {
        assert_eq!(
            hop(
                Some("v1.28.8---vmware.1-fips.1-tkg.2"),
                Some("v1.29.4---vmware.3-fips.1-tkg.1")
            ),
            Some((
                KubeVersion {
                    major: 1,
                    minor: 28,
                    patch: 8
                },
                KubeVersion {
                    major: 1,
                    minor: 29,
                    patch: 4
                }
            ))
        );
        assert_eq!(hop(None, Some("v1.29.4")), None);
        assert_eq!(hop(Some("v1.28.8"), Some("latest")), None);
    }

    #[test]
    fn resources_are_listed_once_each_at_the_served_version_first() {
        let removed = removed_between(v(24), v(26));
        let listed = resources_to_list(&removed);
        let hpa = listed
            .iter()
            .find(|(g, r, _)| g == "autoscaling" && r == "horizontalpodautoscalers")
            .unwrap();
        assert_eq!(
            hpa.2,
            ["v2", "v2beta1", "v2beta2"],
            "one entry for both removals"
        );
        let psp = listed
            .iter()
            .find(|(_, r, _)| r == "podsecuritypolicies")
            .unwrap();
        assert_eq!(
            psp.2,
            ["v1beta1"],
            "no replacement: the removed version itself"
        );
        let events = listed
            .iter()
            .find(|(g, r, _)| g == "events.k8s.io" && r == "events")
            .unwrap();
        assert_eq!(events.2, ["v1", "v1beta1"]);
    }

    #[test]
    fn recorded_manifests_naming_a_removed_version_are_found_with_their_annotation() {
        let objects = vec![
            json!({"metadata": {"name": "tenant", "annotations": {
                "kapp.k14s.io/original": "{\"apiVersion\":\"flowcontrol.apiserver.k8s.io/v1beta2\",\"kind\":\"FlowSchema\",\"metadata\":{\"name\":\"tenant\"}}"}}}),
            json!({"metadata": {"name": "fresh", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"flowcontrol.apiserver.k8s.io/v1\",\"kind\":\"FlowSchema\"}"}}}),
            json!({"metadata": {"name": "broken", "annotations": {"kapp.k14s.io/original": "not json"}}}),
            json!({"metadata": {"name": "plain"}}),
        ];
        let removed = removed_between(v(28), v(29));
        let uses = manifest_uses(&objects, &removed);
        assert_eq!(uses.len(), 1, "{uses:?}");
        assert_eq!(uses[0].object, "FlowSchema tenant");
        assert_eq!(uses[0].annotation, "kapp.k14s.io/original");
        // The same manifest is fine for a hop that does not remove it.
        assert!(manifest_uses(&objects, &removed_between(v(29), v(30))).is_empty());
    }

    #[test]
    fn the_deprecated_api_gauge_is_read_from_the_text_exposition() {
        let text = "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.\n\
# TYPE apiserver_requested_deprecated_apis gauge\n\
apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release=\"1.29\",resource=\"prioritylevelconfigurations\",subresource=\"\",version=\"v1beta2\"} 1\n\
apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release=\"1.32\",resource=\"flowschemas\",subresource=\"\",version=\"v1beta3\"} 0\n\
apiserver_request_total{code=\"200\"} 12\n";
        let called = called_apis(text);
        assert_eq!(
            called,
            [CalledApi {
                group: "flowcontrol.apiserver.k8s.io".into(),
                version: "v1beta2".into(),
                resource: "prioritylevelconfigurations".into(),
                removed_release: "1.29".into(),
            }]
        );
        let f = findings("team-b/orders", v(28), v(29), &[], Some(text));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "UC-API-REMOVED-CALLED");
        assert!(
            f[0].fix.contains("use flowcontrol.apiserver.k8s.io/v1"),
            "{}",
            f[0].fix
        );
        assert!(findings("team-b/orders", v(29), v(30), &[], Some(text)).is_empty());
    }
}
