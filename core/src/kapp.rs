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
    /// Value of `kapp.k14s.io/association` (`v1.<md5>` of the object's identity), when present.
    pub association: Option<String>,
    /// The parsed `kapp.k14s.io/identity` annotation, when present and well-formed.
    pub identity: Option<Identity>,
}

/// The parsed `kapp.k14s.io/identity` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The object's namespace; empty for a cluster-scoped object.
    pub namespace: String,
    /// The API group; empty for the core group (`ConfigMap`, `Secret`, ...).
    pub group: String,
    /// The kind, as in the object (`PackageInstall`).
    pub kind: String,
    /// The object's `metadata.name`.
    pub name: String,
    /// The object's `apiVersion`, e.g. `packaging.carvel.dev/v1alpha1` or `v1`.
    pub api_version: String,
}

impl Identity {
    /// Parses `v1;<ns>/<group>/<Kind>/<name>;<apiVersion>`; `None` for any other form.
    ///
    /// ```rust
    /// use supsvc_core::kapp::Identity;
    ///
    /// let id = Identity::parse(
    ///     "v1;svc-tkg-domain-c1234/packaging.carvel.dev/PackageInstall/tkg-controller;packaging.carvel.dev/v1alpha1",
    /// )
    /// .unwrap();
    /// assert_eq!(id.namespace, "svc-tkg-domain-c1234");
    /// assert_eq!(id.kind, "PackageInstall");
    /// assert_eq!(id.name, "tkg-controller");
    /// assert_eq!(Identity::parse("v1;/rbac.authorization.k8s.io/ClusterRole/x;rbac.authorization.k8s.io/v1").unwrap().namespace, "");
    /// assert_eq!(Identity::parse("v2;ns//ConfigMap/x;v1"), None);
    /// ```
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
    /// The label key, e.g. `kapp.k14s.io/app`.
    pub key: String,
    /// The value the label must have.
    pub value: String,
}

impl LabelSelector {
    /// Parses one equality term `key=value` (spaces around either side trimmed), as kapp-controller
    /// writes `status.deploy.kapp.associatedResources.label`; `None` for an empty side or a value with
    /// `,` or `=` (several terms, `==`, `!=`), which this type does not model.
    ///
    /// ```rust
    /// use supsvc_core::kapp::LabelSelector;
    ///
    /// let s = LabelSelector::parse("kapp.k14s.io/app=1700000000000").unwrap();
    /// assert_eq!((s.key.as_str(), s.value.as_str()), ("kapp.k14s.io/app", "1700000000000"));
    /// assert_eq!(s.to_string(), "kapp.k14s.io/app=1700000000000");
    /// assert_eq!(LabelSelector::parse("a=b,c=d"), None);
    /// ```
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

// ---------------------------------------------------------------------------------------------
// kapp's error texts
//
// How they are written (the oracle is the real tools, not the simulator):
// - kapp prints `kapp: Error: ` and its error through go-cli-ui's `MultiLineError`
//   (github.com/cppforlife/go-cli-ui, errors/multi_line_error.go): on the error's first line, every
//   `: ` followed by an upper-case letter outside brackets becomes `:` + a line break, and the n-th
//   piece is indented by 2n spaces; brackets of any kind are kept whole; a first line with unbalanced
//   brackets is printed as it is.
// - A failed wait (carvel-dev/kapp pkg/kapp/clusterapply/waiting_changes.go):
//   `waiting on reconcile <kind>/<name> (<apiVersion>) namespace: <ns>: Finished unsuccessfully (<message>)`,
//   where a failed App or PackageInstall says `Reconcile failed:  (message: <condition message>)` (kapp
//   before 0.55, the empty `reason` leaving two spaces) or `Reconcile failed: message: <usefulErrorMessage>`
//   (pkg/kapp/resourcesmisc/packaging_carvel_dev_v1alpha1_packageinstall.go since 2023).
// - A refused write nests the API server's answer (pkg/kapp/resources/resources.go):
//   `update <kind>/<name> (<apiVersion>) namespace: <ns>: Updating resource <same>: API server says: <message> (reason: <Reason>)`.
// - kapp-controller keeps the stderr as `usefulErrorMessage`, trailing spaces before line breaks removed
//   (pkg/exec/cmd_run_result.go `WithFriendlyYAMLStrings`); a PackageInstall's `friendlyDescription` is
//   the first line cut to 80 bytes plus `...` (pkg/reconciler/status.go `friendlyErrMsg`); an output over
//   1 MiB keeps its tail behind `[output truncated]` (carvel-dev/kapp-controller#1840).
// - UIs (vCenter) show the text on one line, every line break and indentation a single space.
//
// So the parser reads the text as one line (all whitespace runs are one space) and follows the
// brackets: only what is outside them is kapp's own structure.
// ---------------------------------------------------------------------------------------------

/// The marker kapp-controller puts before the tail it keeps of an output over its size limit
/// (carvel-dev/kapp-controller#1840: each status output field cut to 1 MiB, the tail kept).
pub const TRUNCATED_MARKER: &str = "[output truncated]";

/// The text as one line: every run of whitespace (line breaks and indentation included) one space,
/// and kapp-controller's truncation marker removed. This is also how vCenter shows it.
pub fn flatten(text: &str) -> String {
    let text = text.trim_start();
    let text = text.strip_prefix(TRUNCATED_MARKER).unwrap_or(text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether kapp-controller cut the text: its truncation marker in front, or `...` at the end of a
/// description cut to 80 bytes.
pub fn is_truncated(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(TRUNCATED_MARKER) || t.ends_with("...")
}

/// One failure in a kapp error text: `<op> <kind>/<name> (<apiVersion>) [namespace: <ns>]: <detail>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KappFailure {
    /// What kapp was doing: `waiting on reconcile`, `waiting on delete`, `update`, `create`, `delete`, ...
    pub op: String,
    /// Lower-case resource kind as kapp prints it, e.g. `packageinstall`, `statefulset`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The object's apiVersion as kapp prints it in brackets, e.g. `packaging.carvel.dev/v1alpha1`.
    pub api_version: String,
    /// `None` for a cluster-scoped object (`cluster`).
    pub namespace: Option<String>,
    /// The rest of the failure, on one line, up to the next failure.
    pub detail: String,
}

/// The content of the bracket opening at byte `open` of `s` (`(`), to its matching `)` or the end.
fn bracketed(s: &str, open: usize) -> &str {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &s[open + 1..i];
                }
            }
            _ => {}
        }
    }
    &s[(open + 1).min(s.len())..]
}

impl KappFailure {
    /// `Finished unsuccessfully` of a wait on a child App/PackageInstall.
    pub fn is_failed_wait(&self) -> bool {
        self.op.starts_with("waiting on") && self.detail.starts_with("Finished unsuccessfully")
    }

    /// The message a failed child reported: `(Reconcile failed:  (message: <m>))` (kapp < 0.55) or
    /// `(Reconcile failed: message: <m>)` (kapp >= 0.55, `<m>` its `usefulErrorMessage`).
    pub fn child_message(&self) -> Option<&str> {
        let rest = self
            .detail
            .strip_prefix("Finished unsuccessfully")?
            .trim_start();
        let inner = if rest.starts_with('(') {
            bracketed(rest, 0)
        } else {
            rest
        }
        .trim();
        let inner = ["Reconcile failed:", "Delete failed:"]
            .iter()
            .find_map(|p| inner.strip_prefix(p))
            .unwrap_or(inner)
            .trim_start();
        let message = if inner.starts_with("(message:") {
            bracketed(inner, 0).trim_start_matches("message:")
        } else {
            inner.strip_prefix("message:").unwrap_or(inner)
        };
        Some(message.trim())
    }

    /// The API server's answer nested in the failure: `API server says: <message> (reason: <Reason>)`.
    pub fn api_server_says(&self) -> Option<(&str, Option<&str>)> {
        const SAYS: &str = "API server says: ";
        let at = self.detail.find(SAYS)? + SAYS.len();
        let said = self.detail[at..].trim_end();
        match said.rfind(" (reason: ") {
            Some(r) if said.ends_with(')') => Some((
                said[..r].trim_end(),
                Some(&said[r + " (reason: ".len()..said.len() - 1]),
            )),
            _ => Some((said, None)),
        }
    }

    /// A change the API server forbids on an existing object (immutable fields, a StatefulSet's spec,
    /// a claim shrunk): `... is invalid: ...Forbidden...` or `field is immutable`.
    pub fn is_forbidden_change(&self) -> bool {
        self.api_server_says().is_some_and(|(m, reason)| {
            m.contains("is invalid:")
                && (m.contains("Forbidden") || m.contains("field is immutable"))
                && reason.is_none_or(|r| r == "Invalid")
        })
    }

    /// `<kind>/<name> -n <ns>` (or without `-n` when cluster-scoped).
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{} -n {ns}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// kapp's apply operations (`applyOpCodeUI`) and waits (`waiting on` + `waitOpCodeUI`), as they
/// precede an object in its errors; longest first.
const OPS: &[&str] = &[
    "waiting on reconcile",
    "waiting on delete",
    "waiting on noop",
    "waiting on ok",
    "create",
    "update",
    "delete",
    "exists",
    "noop",
];

/// An object named in the text: `<kind>/<name> (<apiVersion>)` outside any bracket.
struct Mention {
    /// Byte range of `<kind>/<name>`.
    start: usize,
    /// Byte just after the `)` closing the apiVersion.
    end: usize,
    kind: String,
    name: String,
    api_version: String,
}

fn mentions(flat: &str) -> Vec<Mention> {
    let bytes = flat.as_bytes();
    let mut found = Vec::new();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => {
                if depth == 0
                    && i > 0
                    && bytes[i - 1] == b' '
                    && let Some(m) = mention_at(flat, i)
                {
                    found.push(m);
                }
                depth += 1;
            }
            b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    found
}

/// The mention whose apiVersion bracket opens at `open` (preceded by a space), if it is one.
fn mention_at(flat: &str, open: usize) -> Option<Mention> {
    let close = open + flat[open..].find(')')?;
    let api_version = &flat[open + 1..close];
    if api_version.is_empty()
        || !api_version
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'-'))
    {
        return None;
    }
    let before = &flat[..open - 1];
    let start = before.rfind(' ').map_or(0, |i| i + 1);
    let (kind, name) = before[start..].split_once('/')?;
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | ':');
    if kind.is_empty()
        || !kind
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        || name.is_empty()
        || !name.chars().all(name_ok)
    {
        return None;
    }
    Some(Mention {
        start,
        end: close + 1,
        kind: kind.to_owned(),
        name: name.to_owned(),
        api_version: api_version.to_owned(),
    })
}

/// The operation that ends `prefix` (the text before an object), and where it starts.
fn op_before(prefix: &str) -> Option<(usize, &'static str)> {
    let p = prefix.trim_end();
    OPS.iter().find_map(|op| {
        let at = p.strip_suffix(op).map(str::len)?;
        // A whole word: at the start, or after a space or a colon.
        let ok = at == 0 || matches!(p.as_bytes()[at - 1], b' ' | b':');
        ok.then_some((at, *op))
    })
}

/// The failures kapp reports in a text (`usefulErrorMessage`, a condition message, a description),
/// in any layout: as kapp prints it over several lines, flattened to one line, or truncated. An
/// object kapp names inside another failure (`Updating resource ...`, a child's own message) is part
/// of that failure's detail, not a failure of its own.
pub fn parse_failures(text: &str) -> Vec<KappFailure> {
    let flat = flatten(text);
    let mut starts: Vec<(usize, &'static str, Mention)> = Vec::new();
    let mut last_end = 0;
    for m in mentions(&flat) {
        if let Some((at, op)) = op_before(&flat[last_end..m.start]) {
            starts.push((last_end + at, op, m));
        }
        // An object with no operation before it belongs to the failure before it.
        last_end = starts.last().map_or(0, |(_, _, s)| s.end);
    }
    let mut failures = Vec::with_capacity(starts.len());
    for (i, (_, op, m)) in starts.iter().enumerate() {
        let until = starts.get(i + 1).map_or(flat.len(), |(at, _, _)| *at);
        let mut rest = &flat[m.end.min(until)..until];
        let mut namespace = None;
        if let Some(r) = rest.strip_prefix(" namespace: ") {
            let end = r.find(':').unwrap_or(r.len());
            namespace = Some(r[..end].trim().to_owned());
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix(" cluster") {
            rest = r;
        }
        failures.push(KappFailure {
            op: (*op).to_owned(),
            kind: m.kind.clone(),
            name: m.name.clone(),
            api_version: m.api_version.clone(),
            namespace,
            detail: rest.trim_start_matches(':').trim().to_owned(),
        });
    }
    failures
}

/// What a kapp / kapp-controller text says, as far as supsvc can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reading", rename_all = "kebab-case")]
pub enum Reading {
    /// kapp waited on a child App or PackageInstall and it failed (`Finished unsuccessfully`).
    FailedWait {
        /// The wait that failed; its detail carries the child's own message.
        failure: KappFailure,
    },
    /// The API server forbids a change kapp made to an existing object (immutable field).
    ForbiddenChange {
        /// The write the API server forbade.
        failure: KappFailure,
    },
    /// The API server refused a write for another reason.
    Refused {
        /// The write the API server refused.
        failure: KappFailure,
        /// The API server's `(reason: <Reason>)`, e.g. `Forbidden`, `Invalid`, when the text gives one.
        reason: Option<String>,
    },
    /// The fetch step failed (vendir/imgpkg); `registries` are the hosts the text names.
    FetchFailed {
        /// Registry hosts the error text names (see [`registry_hosts`]), sorted, without repeats.
        registries: Vec<String>,
    },
    /// kapp's wait ran out of time.
    TimedOut,
    /// A text supsvc does not recognise.
    Unknown,
}

impl Reading {
    /// A short stable form: `failed-wait packageinstall/x -n ns`, `forbidden-change statefulset/x -n ns`,
    /// `refused <kind>/<name> -n <ns> (<reason>)`, `fetch-failed <host>,<host>`, `timed-out`, `unknown`.
    pub fn summary(&self) -> String {
        match self {
            Reading::FailedWait { failure } => format!("failed-wait {}", failure.object()),
            Reading::ForbiddenChange { failure } => {
                format!("forbidden-change {}", failure.object())
            }
            Reading::Refused { failure, reason } => format!(
                "refused {} ({})",
                failure.object(),
                reason.as_deref().unwrap_or("no reason")
            ),
            Reading::FetchFailed { registries } if registries.is_empty() => "fetch-failed".into(),
            Reading::FetchFailed { registries } => {
                format!("fetch-failed {}", registries.join(","))
            }
            Reading::TimedOut => "timed-out".into(),
            Reading::Unknown => "unknown".into(),
        }
    }
}

/// Registry hosts a fetch error names: URLs (`https://<host>/v2/...`), DNS lookups (`lookup <host>`),
/// imgpkg's `Working with <host>/<repo>`, vendir's `Fetching image '<host>/<repo>...'`. Sorted, distinct.
pub fn registry_hosts(text: &str) -> Vec<String> {
    let flat = flatten(text);
    let mut hosts: Vec<String> = Vec::new();
    let clean = |t: &str| -> Option<String> {
        let t = t.trim_matches(|c: char| matches!(c, '"' | '\'' | '(' | ')' | '[' | ']' | ','));
        let host = t.split('/').next()?.trim_end_matches([':', '.']);
        let host = host.rsplit('@').next()?;
        let valid = !host.is_empty()
            && (host.contains('.') || host.starts_with("localhost"))
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':'));
        valid.then(|| host.to_ascii_lowercase())
    };
    for scheme in ["https://", "http://"] {
        for (at, _) in flat.match_indices(scheme) {
            hosts.extend(clean(&flat[at + scheme.len()..]));
        }
    }
    let words: Vec<&str> = flat.split(' ').collect();
    for pair in words.windows(2) {
        let host_follows = matches!(pair[0], "lookup" | "with" | "image" | "bundle");
        if host_follows && pair[1].contains('/') || pair[0] == "lookup" {
            hosts.extend(clean(pair[1]));
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Reads a kapp / kapp-controller text in any layout (see the module notes). Never guesses: a text
/// whose structure is not one of kapp's known failures, or was cut before it, is [`Reading::Unknown`].
///
/// The text is what kapp-controller writes in an App's or PackageInstall's
/// `status.usefulErrorMessage` (or a condition's message).
///
/// ```rust
/// use supsvc_core::kapp::{Reading, read};
///
/// let text = "kapp: Error: waiting on reconcile packageinstall/tkg-controller \
///     (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234:\n  \
///     Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error))";
/// let reading = read(text);
/// let Reading::FailedWait { failure } = &reading else { panic!("{reading:?}") };
/// assert_eq!(failure.object(), "packageinstall/tkg-controller -n svc-tkg-domain-c1234");
/// assert_eq!(reading.summary(), "failed-wait packageinstall/tkg-controller -n svc-tkg-domain-c1234");
/// assert_eq!(read("something else"), Reading::Unknown);
/// ```
pub fn read(text: &str) -> Reading {
    let failures = parse_failures(text);
    if let Some(f) = failures.iter().find(|f| f.is_failed_wait()) {
        return Reading::FailedWait { failure: f.clone() };
    }
    if let Some(f) = failures.iter().find(|f| f.is_forbidden_change()) {
        return Reading::ForbiddenChange { failure: f.clone() };
    }
    if let Some(f) = failures.iter().find(|f| f.api_server_says().is_some()) {
        let reason = f.api_server_says().and_then(|(_, r)| r).map(str::to_owned);
        return Reading::Refused {
            failure: f.clone(),
            reason,
        };
    }
    let flat = flatten(text);
    if flat.contains("Timed out waiting after") || flat.contains("timed out waiting after") {
        return Reading::TimedOut;
    }
    // A fetch error is the text's own only when it begins the text: the same words further on are a
    // child's message quoted by kapp, and a text cut at its head no longer says whose they are.
    let fetch_heads = [
        "vendir: Error:",
        "Error: Syncing directory",
        "imgpkg: Error:",
        "Fetching resources:",
    ];
    let head_cut = text.trim_start().starts_with(TRUNCATED_MARKER);
    if failures.is_empty() && !head_cut && fetch_heads.iter().any(|m| flat.starts_with(m)) {
        return Reading::FetchFailed {
            registries: registry_hosts(&flat),
        };
    }
    Reading::Unknown
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
    fn parses_the_deadlock_wait_failure_in_every_layout() {
        // As kapp prints it (go-cli-ui's MultiLineError breaks before `Finished`), as vCenter shows it.
        let text = "kapp: Error: waiting on reconcile packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234:\n  Finished unsuccessfully (Reconcile failed:  (message: Fetching resources: Error (see .status.usefulErrorMessage for details)))";
        let one_line = text.replace(":\n  ", ": ");
        for layout in [text, one_line.as_str()] {
            let f = parse_failures(layout);
            assert_eq!(f.len(), 1, "{layout}");
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
        }
        // kapp >= 0.55 quotes the child's usefulErrorMessage, itself over several lines.
        let new = "kapp: Error: waiting on reconcile packageinstall/tkg-controller (packaging.carvel.dev/v1alpha1) namespace: svc-tkg-domain-c1234: Finished unsuccessfully (Reconcile failed: message: vendir: Error: Syncing directory '0':\n  Syncing directory '.' with imgpkgBundle contents:\n    Fetching image: Get \"https://projects.registry.vmware.com/v2/\": dial tcp: lookup projects.registry.vmware.com: no such host)";
        let f = parse_failures(new);
        assert_eq!(f.len(), 1);
        assert!(f[0].is_failed_wait());
        assert!(
            f[0].child_message()
                .unwrap()
                .starts_with("vendir: Error: Syncing directory '0': Syncing directory '.'")
        );
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
