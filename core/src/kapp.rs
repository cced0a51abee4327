//! kapp's ownership marks (which App deployed an object) and kapp's error texts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::carvel::{App, PackageInstall};

/// Label on every object kapp deploys: the kapp app's id.
pub const LABEL_APP: &str = "kapp.k14s.io/app";
/// Label on every object kapp deploys: `v1.<md5>` of its identity.
pub const LABEL_ASSOCIATION: &str = "kapp.k14s.io/association";
/// Annotation `v1;<ns>/<group>/<Kind>/<name>;<apiVersion>`.
pub const ANNOTATION_IDENTITY: &str = "kapp.k14s.io/identity";
/// Label on kapp's own record of an app, a ConfigMap `<app>.app`.
pub const LABEL_IS_APP: &str = "kapp.k14s.io/is-app";

/// What an object's kapp marks say about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ownership {
    /// Value of `kapp.k14s.io/app`: the kapp app that deployed it.
    pub app_label: String,
    pub association: Option<String>,
    pub identity: Option<Identity>,
}

/// The parsed `kapp.k14s.io/identity` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub namespace: String,
    pub group: String,
    pub kind: String,
    pub name: String,
    pub api_version: String,
}

impl Identity {
    /// Parses `v1;<ns>/<group>/<Kind>/<name>;<apiVersion>`; `None` for any other form.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(';');
        let (Some("v1"), Some(path), Some(api_version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let mut segs = path.splitn(4, '/');
        let (Some(namespace), Some(group), Some(kind), Some(name)) =
            (segs.next(), segs.next(), segs.next(), segs.next())
        else {
            return None;
        };
        if kind.is_empty() || name.is_empty() || api_version.is_empty() {
            return None;
        }
        Some(Identity {
            namespace: namespace.into(),
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            api_version: api_version.into(),
        })
    }
}

fn string_map<'a>(object: &'a Value, field: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    string_map(object, "labels")
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Whether kapp manages the object, and for which kapp app. An object is kapp-managed when it carries
/// the `kapp.k14s.io/app` label; kapp's own record ConfigMap is not a managed object.
pub fn ownership(object: &Value) -> Option<Ownership> {
    ownership_from_maps(
        &string_map(object, "labels").collect(),
        &string_map(object, "annotations").collect(),
    )
}

/// [`ownership`] over already-read label and annotation maps.
pub fn ownership_from_maps<K: AsRef<str> + Ord, V: AsRef<str>>(
    labels: &BTreeMap<K, V>,
    annotations: &BTreeMap<K, V>,
) -> Option<Ownership> {
    let get = |m: &BTreeMap<K, V>, key: &str| {
        m.iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref().to_owned())
    };
    if get(labels, LABEL_IS_APP).is_some() {
        return None;
    }
    let app_label = get(labels, LABEL_APP).filter(|v| !v.is_empty())?;
    Some(Ownership {
        app_label,
        association: get(labels, LABEL_ASSOCIATION),
        identity: get(annotations, ANNOTATION_IDENTITY).and_then(|s| Identity::parse(&s)),
    })
}

/// Whether kapp applies this object itself, and for which kapp app: THE answer to "does kapp own it?"
/// for the storage guard, `diagnose` and `values-edit`, so they cannot contradict each other.
///
/// kapp stamps what it applies with the `kapp.k14s.io/app` label AND the `kapp.k14s.io/identity`
/// annotation (carvel-dev/kapp `pkg/kapp/resources/identity_annotation.go`), on the object's own
/// metadata only. It also labels the templates inside (pod templates, a StatefulSet's
/// `volumeClaimTemplates`), so what a controller stamps from them (the claims
/// `<template>-<statefulset>-<ordinal>`, pods) carries the label but never the annotation: kapp never
/// applies, diffs or reverts those, and changing them directly is not drift. `None` for them, for
/// kapp's record ConfigMap, and for objects without kapp's marks.
pub fn owned_by_kapp(object: &Value) -> Option<Ownership> {
    owned_by_kapp_maps(
        &string_map(object, "labels").collect(),
        &string_map(object, "annotations").collect(),
    )
}

/// [`owned_by_kapp`] over already-read label and annotation maps.
pub fn owned_by_kapp_maps<K: AsRef<str> + Ord, V: AsRef<str>>(
    labels: &BTreeMap<K, V>,
    annotations: &BTreeMap<K, V>,
) -> Option<Ownership> {
    ownership_from_maps(labels, annotations).filter(|o| o.identity.is_some())
}

/// Whether a ConfigMap is kapp's record of an app (`<app>.app`, labelled `kapp.k14s.io/is-app`).
pub fn is_app_record(configmap: &Value) -> bool {
    label(configmap, LABEL_IS_APP).is_some()
}

/// The `kapp.k14s.io/app` value a kapp record ConfigMap assigns to its objects (`data.spec` JSON,
/// `labelValue`).
pub fn app_record_label_value(configmap: &Value) -> Option<String> {
    if !is_app_record(configmap) {
        return None;
    }
    let spec = configmap.pointer("/data/spec")?.as_str()?;
    let spec: Value = serde_json::from_str(spec).ok()?;
    let value = spec.get("labelValue")?.as_str()?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// A label selector `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelector {
    pub key: String,
    pub value: String,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Option<Self> {
        let (key, value) = s.split_once('=')?;
        let (key, value) = (key.trim(), value.trim());
        (!key.is_empty() && !value.is_empty() && !value.contains([',', '='])).then(|| {
            LabelSelector {
                key: key.into(),
                value: value.into(),
            }
        })
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// The selector of everything an App deployed, from `status.deploy.kapp.associatedResources.label`.
pub fn app_selector(app: &App) -> Option<LabelSelector> {
    LabelSelector::parse(app.associated_resources()?.label.as_deref()?)
}

/// The child PackageInstalls among `candidates`: those the parent App's kapp deployed (by its label),
/// excluding the parent itself. Sorted by namespace and name.
pub fn children<'a>(
    selector: &LabelSelector,
    parent: &PackageInstall,
    candidates: &'a [PackageInstall],
) -> Vec<&'a PackageInstall> {
    let mut found: Vec<&PackageInstall> = candidates
        .iter()
        .filter(|c| c.metadata.labels.get(&selector.key) == Some(&selector.value))
        .filter(|c| {
            !(c.metadata.name == parent.metadata.name
                && c.metadata.namespace == parent.metadata.namespace)
        })
        .collect();
    found.sort_by(|a, b| {
        (a.metadata.ns(), &a.metadata.name).cmp(&(b.metadata.ns(), &b.metadata.name))
    });
    found
}

/// The namespaces the children live in (the service's domain namespaces), sorted and distinct.
pub fn domain_namespaces(children: &[&PackageInstall]) -> Vec<String> {
    let mut ns: Vec<String> = children
        .iter()
        .map(|c| c.metadata.ns().to_owned())
        .collect();
    ns.sort();
    ns.dedup();
    ns
}

/// One failure in a kapp error text: `<op> <kind>/<name> (<apiVersion>) [namespace: <ns>]: <detail>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KappFailure {
    /// What kapp was doing: `waiting on reconcile`, `update`, `create`, `delete`, ...
    pub op: String,
    /// Lower-case resource kind as kapp prints it, e.g. `packageinstall`, `statefulset`.
    pub kind: String,
    pub name: String,
    pub api_version: String,
    pub namespace: Option<String>,
    /// The rest of the line.
    pub detail: String,
}

impl KappFailure {
    /// `Finished unsuccessfully` of a wait on a child App/PackageInstall.
    pub fn is_failed_wait(&self) -> bool {
        self.op == "waiting on reconcile" && self.detail.starts_with("Finished unsuccessfully")
    }

    /// The message a failed child reported, from `(Reconcile failed:  (message: <m>))`.
    pub fn child_message(&self) -> Option<&str> {
        let start = self.detail.find("(message: ")? + "(message: ".len();
        let rest = self.detail[start..].trim_end();
        // The two parentheses kapp opened around it: `(Reconcile failed:  (message: ...))`.
        let inner = rest
            .strip_suffix("))")
            .or_else(|| rest.strip_suffix(')'))
            .unwrap_or(rest);
        Some(inner.trim())
    }
}

/// Finds the first `<kind>/<name> (<apiVersion>)` in `line` and splits around it.
fn parse_line(line: &str) -> Option<KappFailure> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+');
    let mut search = 0;
    while let Some(rel) = line[search..].find(" (") {
        let open = search + rel;
        search = open + 2;
        let close = match line[open + 2..].find(')') {
            Some(c) => open + 2 + c,
            None => break,
        };
        let api_version = &line[open + 2..close];
        if api_version.is_empty()
            || !api_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-'))
        {
            continue;
        }
        let before = &line[..open];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(is_name_char(*c) || *c == '/'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let Some((kind, name)) = before[start..].split_once('/') else {
            continue;
        };
        if kind.is_empty() || name.is_empty() || name.contains('/') {
            continue;
        }
        let prefix = before[..start].trim_end();
        let op = prefix
            .rsplit(": ")
            .next()
            .unwrap_or_default()
            .trim_start_matches("Error:")
            .trim()
            .to_owned();
        let mut rest = &line[close + 1..];
        let mut namespace = None;
        if let Some(r) = rest.strip_prefix(" namespace: ") {
            let end = r.find(':').unwrap_or(r.len());
            namespace = Some(r[..end].trim().to_owned());
            rest = &r[end..];
        }
        let detail = rest.trim_start_matches(':').trim().to_owned();
        return Some(KappFailure {
            op,
            kind: kind.to_owned(),
            name: name.to_owned(),
            api_version: api_version.to_owned(),
            namespace,
            detail,
        });
    }
    None
}

/// The failures named in a kapp error text (`usefulErrorMessage`), one per line that names an object.
pub fn parse_failures(text: &str) -> Vec<KappFailure> {
    text.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_table() {
        let ok = Identity::parse("v1;svc-tkg-domain-c1234/packaging.carvel.dev/PackageInstall/tkg-controller;packaging.carvel.dev/v1alpha1").unwrap();
        assert_eq!(ok.namespace, "svc-tkg-domain-c1234");
        assert_eq!(ok.group, "packaging.carvel.dev");
        assert_eq!(ok.kind, "PackageInstall");
        assert_eq!(ok.name, "tkg-controller");
        assert_eq!(ok.api_version, "packaging.carvel.dev/v1alpha1");
        let cluster = Identity::parse(
            "v1;/rbac.authorization.k8s.io/ClusterRole/x;rbac.authorization.k8s.io/v1",
        )
        .unwrap();
        assert_eq!(cluster.namespace, "");
        let core = Identity::parse("v1;ns//ConfigMap/x;v1").unwrap();
        assert_eq!(core.group, "");
        for bad in [
            "",
            "v2;ns//ConfigMap/x;v1",
            "v1;ns//ConfigMap/x",
            "v1;ns/ConfigMap/x;v1",
            "v1;ns//ConfigMap/;v1",
            "v1;ns//ConfigMap/x;v1;extra",
        ] {
            assert_eq!(Identity::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ownership_table() {
        let obj = |labels: Value, annotations: Value| json!({"metadata": {"labels": labels, "annotations": annotations}});
        let cases = [
            (
                obj(json!({"kapp.k14s.io/app": "123"}), json!({})),
                Some("123"),
            ),
            (
                obj(
                    json!({"kapp.k14s.io/app": "123", "kapp.k14s.io/association": "v1.abc"}),
                    json!({}),
                ),
                Some("123"),
            ),
            (obj(json!({"kapp.k14s.io/app": ""}), json!({})), None),
            (
                obj(
                    json!({"kapp.k14s.io/app": "123", "kapp.k14s.io/is-app": ""}),
                    json!({}),
                ),
                None,
            ),
            (
                obj(
                    json!({"app": "x"}),
                    json!({"kapp.k14s.io/identity": "v1;ns//ConfigMap/x;v1"}),
                ),
                None,
            ),
            (obj(json!(null), json!(null)), None),
            (json!({}), None),
            (json!(42), None),
        ];
        for (o, want) in cases {
            assert_eq!(
                ownership(&o).map(|x| x.app_label),
                want.map(str::to_owned),
                "{o}"
            );
        }
        let full = ownership(&obj(
            json!({"kapp.k14s.io/app": "123", "kapp.k14s.io/association": "v1.abc"}),
            json!({"kapp.k14s.io/identity": "v1;ns/apps/StatefulSet/harbor-database;apps/v1"}),
        ))
        .unwrap();
        assert_eq!(full.association.as_deref(), Some("v1.abc"));
        assert_eq!(full.identity.unwrap().kind, "StatefulSet");
    }

    #[test]
    fn app_record() {
        let cm = json!({"metadata": {"name": "svc-tkg.vsphere.vmware.com-ctrl.app", "labels": {"kapp.k14s.io/is-app": ""}},
                        "data": {"spec": "{\"labelKey\":\"kapp.k14s.io/app\",\"labelValue\":\"1700000000000\"}"}});
        assert!(is_app_record(&cm));
        assert_eq!(
            app_record_label_value(&cm).as_deref(),
            Some("1700000000000")
        );
        assert_eq!(ownership(&cm), None);
        let plain = json!({"metadata": {"name": "x"}, "data": {"spec": "{\"labelValue\":\"1\"}"}});
        assert!(!is_app_record(&plain));
        assert_eq!(app_record_label_value(&plain), None);
        let broken =
            json!({"metadata": {"labels": {"kapp.k14s.io/is-app": ""}}, "data": {"spec": "{"}});
        assert_eq!(app_record_label_value(&broken), None);
    }

    fn pkgi(ns: &str, name: &str, labels: Value) -> PackageInstall {
        PackageInstall::from_value(
            &json!({"metadata": {"name": name, "namespace": ns, "labels": labels}}),
        )
        .unwrap()
    }

    #[test]
    fn children_from_the_parent_apps_label() {
        let app = App::from_value(&json!({"status": {"deploy": {"kapp": {"associatedResources": {"label": "kapp.k14s.io/app=777"}}}}})).unwrap();
        let sel = app_selector(&app).unwrap();
        assert_eq!(sel.to_string(), "kapp.k14s.io/app=777");
        let parent = pkgi(
            "vmware-system-supervisor-services",
            "svc-tkg.vsphere.vmware.com",
            json!({}),
        );
        let l = json!({"kapp.k14s.io/app": "777"});
        let candidates = vec![
            pkgi("svc-tkg-domain-c1234", "tkg-controller", l.clone()),
            pkgi("svc-tkg-domain-c1234", "tanzu-addons-manager", l.clone()),
            pkgi("svc-other", "x", json!({"kapp.k14s.io/app": "888"})),
            pkgi("svc-other", "y", json!({})),
            pkgi("svc-tkg-domain-c9", "runtime-extension", l.clone()),
            pkgi(
                "vmware-system-supervisor-services",
                "svc-tkg.vsphere.vmware.com",
                l,
            ),
        ];
        let kids = children(&sel, &parent, &candidates);
        let names: Vec<_> = kids
            .iter()
            .map(|c| format!("{}/{}", c.metadata.ns(), c.metadata.name))
            .collect();
        assert_eq!(
            names,
            [
                "svc-tkg-domain-c1234/tanzu-addons-manager",
                "svc-tkg-domain-c1234/tkg-controller",
                "svc-tkg-domain-c9/runtime-extension"
            ]
        );
        assert_eq!(
            domain_namespaces(&kids),
            ["svc-tkg-domain-c1234", "svc-tkg-domain-c9"]
        );
        assert!(app_selector(&App::default()).is_none());
    }

    #[test]
    fn label_selector_table() {
        assert_eq!(
            LabelSelector::parse("a=b").map(|s| s.value),
            Some("b".into())
        );
        for bad in ["", "a", "=b", "a=", "a=b,c=d", "a==b"] {
            assert_eq!(LabelSelector::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_the_deadlock_wait_failure() {
        let text = "kapp: Error: waiting on reconcile packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234:\n  Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details)))";
        // kapp prints the whole thing on one line; a wrapped copy is also understood as far as it goes.
        let one_line = text.replace(":\n  ", ": ");
        let f = parse_failures(&one_line);
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.op, "waiting on reconcile");
        assert_eq!(f.kind, "packageinstall");
        assert_eq!(f.name, "tkg-controller");
        assert_eq!(f.api_version, "packaging.carvel.dev/v1alpha1");
        assert_eq!(f.namespace.as_deref(), Some("svc-tkg-domain-c1234"));
        assert!(f.is_failed_wait());
        assert_eq!(
            f.child_message(),
            Some("Fetching resources: Error (see .status.usefulErrorMessage for details)")
        );
        let wrapped = parse_failures(text);
        assert_eq!(wrapped.len(), 1);
        assert!(!wrapped[0].is_failed_wait());
    }

    #[test]
    fn parses_the_statefulset_update_failure() {
        let text = "kapp: Error: update statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8: Updating resource statefulset/harbor-database (apps/v1) namespace: svc-harbor-domain-c8: API server says: StatefulSet.apps \"harbor-database\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden (reason: Invalid)";
        let f = parse_failures(text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].op, "update");
        assert_eq!(f[0].kind, "statefulset");
        assert_eq!(f[0].name, "harbor-database");
        assert_eq!(f[0].namespace.as_deref(), Some("svc-harbor-domain-c8"));
        assert!(f[0].detail.contains("is invalid: spec: Forbidden"));
        assert!(!f[0].is_failed_wait());
    }

    #[test]
    fn parse_failures_edge_cases() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("Reconcile failed", 0),
            ("something (not a kind)", 0),
            ("create configmap/x (v1) namespace: ns: boom", 1),
            (
                "delete clusterrole/x (rbac.authorization.k8s.io/v1) cluster: boom",
                1,
            ),
            ("a/b (", 0),
            ("a/ (v1)", 0),
            (
                "waiting on reconcile app/a (kappctrl.k14s.io/v1alpha1) namespace: n: Finished unsuccessfully (x)\nwaiting on reconcile app/b (kappctrl.k14s.io/v1alpha1) namespace: n: Finished unsuccessfully (y)",
                2,
            ),
            ("µ/ü (v1) ünïcode", 0),
        ];
        for (text, n) in cases {
            assert_eq!(parse_failures(text).len(), *n, "{text:?}");
        }
        let cluster =
            &parse_failures("delete clusterrole/x (rbac.authorization.k8s.io/v1) cluster: boom")[0];
        assert_eq!(cluster.namespace, None);
        assert_eq!(cluster.op, "delete");
    }
}
