//! The validating admission chain: which ValidatingWebhookConfigurations match a request (plain functions),
//! and calling the matching webhooks over HTTPS with an `AdmissionReview` (the I/O edge).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::registry::ResourceType;
use super::selector::{LabelSelector, labels_of};
use super::{Status, UserInfo, gvr};

/// What an admission webhook is told about a request.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    pub rt: &'static ResourceType,
    pub subresource: Option<&'a str>,
    /// `CREATE`, `UPDATE`, `DELETE`.
    pub operation: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub user: &'a UserInfo,
    pub dry_run: bool,
    pub field_manager: Option<&'a str>,
}

/// One webhook of a configuration, with what is needed to call it.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub name: String,
    pub url: Option<String>,
    pub ca_bundle: Option<String>,
    pub timeout: Duration,
    pub fail_open: bool,
    /// The type the webhook is sent the request as (`request.kind`/`request.resource`): the request's
    /// own, or, under `matchPolicy: Equivalent`, the equivalent type one of its rules names.
    pub sent_as: &'static ResourceType,
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// One `resources[]` entry against a resource and subresource: `*` is every resource, `r/s` the
/// subresource `s` of `r`, `r/*` `r` and every subresource of it, `*/*` everything; a name without `/`
/// matches the main resource only (kube-apiserver's `Matcher.resource`,
/// staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/rules/rules.go).
fn resource_matches(pattern: &str, resource: &str, subresource: Option<&str>) -> bool {
    let (pr, ps) = pattern.split_once('/').unwrap_or((pattern, ""));
    (pr == "*" || pr == resource) && (ps == "*" || ps == subresource.unwrap_or_default())
}

/// Whether one `rules[]` entry matches the request as addressed through `rt` (its own type, or an
/// equivalent one). As kube-apiserver's `rules.Matcher`: scope, operation, group, version, resource
/// each exact or `*`; `scope: Namespaced` never matches a Namespace (cluster-scoped), `Cluster` does;
/// an unknown scope matches nothing.
pub fn rule_matches_as(rule: &Value, rt: &ResourceType, attrs: &Attributes<'_>) -> bool {
    let any = |list: Vec<&str>, x: &str| list.iter().any(|v| *v == "*" || *v == x);
    let is_namespace = rt.gvr == gvr::NAMESPACES;
    let namespaced_request = attrs.namespace.is_some_and(|n| !n.is_empty());
    let scope_ok = match rule.get("scope").and_then(Value::as_str) {
        None | Some("*") => true,
        Some("Namespaced") => !is_namespace && namespaced_request,
        Some("Cluster") => is_namespace || !namespaced_request,
        Some(_) => false,
    };
    scope_ok
        && any(strings(rule.get("operations")), attrs.operation)
        && any(strings(rule.get("apiGroups")), rt.gvr.group)
        && any(strings(rule.get("apiVersions")), rt.gvr.version)
        && strings(rule.get("resources"))
            .iter()
            .any(|p| resource_matches(p, rt.gvr.resource, attrs.subresource))
}

/// Whether one `rules[]` entry matches the request through its own type.
pub fn rule_matches(rule: &Value, attrs: &Attributes<'_>) -> bool {
    rule_matches_as(rule, attrs.rt, attrs)
}

/// A label selector of a webhook: absent or empty matches everything; one that does not parse
/// matches nothing (kube-apiserver answers such a request with an internal error).
fn selector_matches(
    selector: Option<&Value>,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    match selector {
        None => true,
        Some(s) => LabelSelector::from_object(s)
            .map(|sel| sel.matches(labels))
            .unwrap_or(false),
    }
}

fn selector_is_empty(selector: Option<&Value>) -> bool {
    selector.is_none_or(|s| {
        s.get("matchExpressions")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
            && s.get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(serde_json::Map::is_empty)
    })
}

/// The webhooks of `configs` that must see the request; `namespace_labels` are the labels of the
/// request's namespace (for a Namespace itself, its own labels). The types served as the same objects
/// under another group or version come from the registry ([`super::registry::equivalents`]).
pub fn matching_webhooks(
    configs: &[Arc<Value>],
    attrs: &Attributes<'_>,
    namespace_labels: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<Webhook> {
    matching_webhooks_with(
        configs,
        attrs,
        namespace_labels,
        &super::registry::equivalents(attrs.rt),
    )
}

/// [`matching_webhooks`] with the request's equivalent types given. Per webhook, as kube-apiserver's
/// `ShouldCallHook` (staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/generic/webhook.go):
/// the namespaceSelector (a cluster-scoped request other than a Namespace always passes), then the
/// objectSelector (the new or the old object's labels; empty matches all), then the rules against the
/// request's own type; failing that, under `matchPolicy: Equivalent` (the v1 default), each rule in
/// order against each equivalent type, and the webhook is sent the request as that type.
pub fn matching_webhooks_with(
    configs: &[Arc<Value>],
    attrs: &Attributes<'_>,
    namespace_labels: Option<&std::collections::BTreeMap<String, String>>,
    equivalents: &[&'static ResourceType],
) -> Vec<Webhook> {
    // Webhook configurations are never themselves subject to webhooks, as on the real server.
    if attrs.rt.gvr == gvr::VALIDATING_WEBHOOK_CONFIGURATIONS {
        return Vec::new();
    }
    let mut out = Vec::new();
    for config in configs {
        for wh in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cluster_scoped =
                attrs.namespace.is_none_or(str::is_empty) && attrs.rt.gvr != gvr::NAMESPACES;
            let ns_ok = cluster_scoped
                || selector_is_empty(wh.get("namespaceSelector"))
                || selector_matches(
                    wh.get("namespaceSelector"),
                    namespace_labels.unwrap_or(&Default::default()),
                );
            let obj_selector = wh.get("objectSelector");
            let obj_ok = selector_is_empty(obj_selector)
                || [attrs.object, attrs.old_object]
                    .iter()
                    .flatten()
                    .any(|o| selector_matches(obj_selector, &labels_of(o)));
            if !ns_ok || !obj_ok {
                continue;
            }
            let rules: Vec<&Value> = wh
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let equivalent = wh
                .get("matchPolicy")
                .and_then(Value::as_str)
                .is_none_or(|p| p == "Equivalent");
            let sent_as = if rules.iter().any(|r| rule_matches(r, attrs)) {
                Some(attrs.rt)
            } else if equivalent {
                rules.iter().find_map(|r| {
                    equivalents
                        .iter()
                        .copied()
                        .filter(|e| e.gvr != attrs.rt.gvr)
                        .find(|e| rule_matches_as(r, e, attrs))
                })
            } else {
                None
            };
            let Some(sent_as) = sent_as else {
                continue;
            };
            let cc = wh.get("clientConfig");
            out.push(Webhook {
                name: wh
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                url: cc
                    .and_then(|c| c.get("url"))
                    .and_then(Value::as_str)
                    .map(String::from),
                ca_bundle: cc
                    .and_then(|c| c.get("caBundle"))
                    .and_then(Value::as_str)
                    .filter(|b| !b.is_empty())
                    .map(String::from),
                timeout: Duration::from_secs(
                    wh.get("timeoutSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(10)
                        .clamp(1, 30),
                ),
                fail_open: wh.get("failurePolicy").and_then(Value::as_str) == Some("Ignore"),
                sent_as,
            });
        }
    }
    out
}

/// The `AdmissionReview` sent to a webhook that sees the request as `sent_as` (`kind`, `resource`);
/// `requestKind`/`requestResource` are always the type the client addressed. Built with kube's
/// admission types (`kube::core::admission`), then written as kube-apiserver writes it (see
/// [`as_sent`]).
///
/// # Errors
/// An object that is no Kubernetes object (`DynamicObject`: its `metadata` not an ObjectMeta):
/// the webhook is then not called, and the call fails as kube-apiserver's would.
pub fn review(attrs: &Attributes<'_>, sent_as: &ResourceType, uid: &str) -> Result<Value, String> {
    use kube_core::admission::{AdmissionRequest, AdmissionReview, Operation};
    use kube_core::{DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta};
    let kind_of = |rt: &ResourceType| GroupVersionKind::gvk(rt.gvr.group, rt.gvr.version, rt.kind);
    let resource_of = |rt: &ResourceType| {
        GroupVersionResource::gvr(rt.gvr.group, rt.gvr.version, rt.gvr.resource)
    };
    let rt = attrs.rt;
    let (operation, options_kind) = match attrs.operation {
        "CREATE" => (Operation::Create, "CreateOptions"),
        "UPDATE" => (Operation::Update, "UpdateOptions"),
        "DELETE" => (Operation::Delete, "DeleteOptions"),
        "CONNECT" => (Operation::Connect, "ConnectOptions"),
        other => return Err(format!("unknown admission operation {other:?}")),
    };
    let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
    if let Some(fm) = attrs.field_manager
        && attrs.operation != "DELETE"
    {
        options["fieldManager"] = Value::from(fm);
    }
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    // The objects as the webhook's version would show them (the simulator's equivalents share one
    // schema), with apiVersion and kind as kube-apiserver always writes them (kube's DynamicObject
    // keeps the two only together).
    let converted = |o: Option<&Value>| -> Result<Option<DynamicObject>, String> {
        let Some(mut o) = o.cloned() else {
            return Ok(None);
        };
        if let Some(m) = o.as_object_mut() {
            if sent_as.gvr != rt.gvr {
                m.insert("apiVersion".into(), Value::from(sent_as.api_version()));
            }
            m.entry("apiVersion")
                .or_insert_with(|| Value::from(sent_as.api_version()));
            m.entry("kind").or_insert_with(|| Value::from(sent_as.kind));
        }
        serde_json::from_value(o)
            .map(Some)
            .map_err(|e| format!("the object: {e}"))
    };
    let user = attrs.user;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let request = AdmissionRequest::<DynamicObject> {
        types: TypeMeta::default(),
        uid: uid.to_owned(),
        kind: kind_of(sent_as),
        resource: resource_of(sent_as),
        sub_resource: attrs.subresource.map(String::from),
        request_kind: Some(kind_of(rt)),
        request_resource: Some(resource_of(rt)),
        request_sub_resource: attrs.subresource.map(String::from),
        name: attrs.name.to_owned(),
        namespace: attrs.namespace.map(String::from),
        operation,
        user_info: k8s_openapi::api::authentication::v1::UserInfo {
            username: Some(user.username.clone()),
            uid: non_empty(&user.uid),
            groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
            extra: None,
        },
        object: converted(attrs.object)?,
        old_object: converted(attrs.old_object)?,
        dry_run: attrs.dry_run,
        options: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
            options,
        )),
    };
    let review = AdmissionReview {
        types: TypeMeta {
            api_version: kube_core::admission::META_API_VERSION_V1.into(),
            kind: kube_core::admission::META_KIND.into(),
        },
        request: Some(request),
        response: None,
    };
    let review = serde_json::to_value(&review).map_err(|e| e.to_string())?;
    Ok(as_sent(review))
}

/// kube's AdmissionReview as kube-apiserver writes it (k8s.io/api admission/v1 types.go): kube's
/// `GroupVersionResource` adds a field of its own, `api_version`; and kube writes `null` for the
/// optional fields Go omits when empty (`omitempty`: subResource, requestSubResource, namespace).
fn as_sent(mut review: Value) -> Value {
    if let Some(request) = review.get_mut("request").and_then(Value::as_object_mut) {
        for resource in ["resource", "requestResource"] {
            if let Some(r) = request.get_mut(resource).and_then(Value::as_object_mut) {
                r.remove("api_version");
            }
        }
        for optional in ["subResource", "requestSubResource", "namespace"] {
            if request.get(optional).is_some_and(Value::is_null) {
                request.remove(optional);
            }
        }
    }
    review
}

/// An AdmissionReview answer kube-apiserver cannot use; `Display` is its text (the API server
/// then fails the call, or ignores the webhook under `failurePolicy: Ignore`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReview {
    /// The answer has no `response`.
    #[error("response is missing")]
    NoResponse,
    /// `response.uid` is not the request's.
    #[error("expected response.uid=\"{expected}\", got \"{got}\"")]
    UidMismatch {
        /// The request's uid.
        expected: String,
        /// The answer's uid (empty when absent).
        got: String,
    },
}

/// The verdict of one webhook's answer: `Ok(warnings)` when allowed, `Err(status)` when denied.
///
/// # Errors
/// [`MalformedReview`] when the answer is no usable AdmissionReview response.
pub fn verdict(
    name: &str,
    uid: &str,
    answer: &Value,
) -> Result<Result<Vec<String>, Status>, MalformedReview> {
    let response = answer.get("response").ok_or(MalformedReview::NoResponse)?;
    let got_uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_uid != uid {
        return Err(MalformedReview::UidMismatch {
            expected: uid.to_string(),
            got: got_uid.to_string(),
        });
    }
    let warnings: Vec<String> = strings(response.get("warnings"))
        .into_iter()
        .map(String::from)
        .collect();
    if response.get("allowed").and_then(Value::as_bool) == Some(true) {
        return Ok(Ok(warnings));
    }
    let status = response.get("status").cloned().unwrap_or(Value::Null);
    let mut code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(403);
    if code < 400 {
        code = 403;
    }
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let msg = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let denied = format!("admission webhook \"{name}\" denied the request");
    let message = if !msg.is_empty() {
        format!("{denied}: {msg}")
    } else if !reason.is_empty() {
        format!("{denied}: {reason}")
    } else {
        format!("{denied} without explanation")
    };
    Ok(Err(Status {
        code,
        reason: reason.to_string(),
        message,
        details: status.get("details").cloned(),
    }))
}

type HttpsClient = HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// HTTPS clients, one per CA bundle, reused across calls.
#[derive(Default)]
pub struct Caller {
    clients: Mutex<HashMap<String, HttpsClient>>,
}

fn tls_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, String> {
    use base64::Engine;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(b64) = ca_bundle {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("invalid caBundle: {e}"))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("invalid caBundle: {e}"))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

impl Caller {
    fn client(&self, ca_bundle: Option<&str>) -> Result<HttpsClient, String> {
        let key = ca_bundle.unwrap_or_default().to_string();
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(ca_bundle)?)
            .https_only()
            .enable_http1()
            .build();
        let client = HttpClient::builder(TokioExecutor::new()).build(connector);
        clients.insert(key, client.clone());
        Ok(client)
    }

    async fn post(&self, wh: &Webhook, body: Bytes) -> Result<Value, String> {
        let url = wh.url.as_deref().ok_or_else(|| {
            "webhook has no clientConfig.url (services cannot be resolved by the simulator)"
                .to_string()
        })?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{sep}timeout={}s", wh.timeout.as_secs());
        let client = self.client(wh.ca_bundle.as_deref())?;
        let request = http::Request::post(&full)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(body))
            .map_err(|e| format!("Post \"{full}\": {e}"))?;
        let call = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("Post \"{full}\": {}", error_chain(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("Post \"{full}\": {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "Post \"{full}\": unexpected status code {}",
                    status.as_u16()
                ));
            }
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("received invalid webhook response: {e}"))
        };
        match tokio::time::timeout(wh.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(format!("Post \"{full}\": context deadline exceeded")),
        }
    }

    /// Calls every webhook; the first denial (or failure under `failurePolicy: Fail`) wins.
    pub async fn admit(
        &self,
        webhooks: &[Webhook],
        attrs: &Attributes<'_>,
    ) -> Result<Vec<String>, Status> {
        if webhooks.is_empty() {
            return Ok(Vec::new());
        }
        let uid = uuid_v4();
        let calls = webhooks.iter().map(|wh| {
            let body = review(attrs, wh.sent_as, &uid).map(|r| Bytes::from(r.to_string()));
            let uid = uid.as_str();
            async move {
                let outcome = match async { self.post(wh, body?).await }.await {
                    Ok(answer) => verdict(&wh.name, uid, &answer).map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (wh, outcome)
            }
        });
        let mut warnings = Vec::new();
        for (wh, outcome) in futures::future::join_all(calls).await {
            match outcome {
                Ok(Ok(w)) => warnings.extend(w),
                Ok(Err(denied)) => return Err(denied),
                Err(_) if wh.fail_open => {
                    tracing::warn!(webhook = %wh.name, "failed calling webhook, failing open");
                }
                Err(e) => {
                    return Err(Status::internal(format!(
                        "failed calling webhook \"{}\": failed to call webhook: {e}",
                        wh.name
                    )));
                }
            }
        }
        Ok(warnings)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A random RFC 4122 v4 UUID, as the server gives `metadata.uid` and `request.uid`.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Gvr, registry};

    fn attrs<'a>(
        rt: &'static ResourceType,
        op: &'a str,
        sub: Option<&'a str>,
        obj: &'a Value,
        user: &'a UserInfo,
    ) -> Attributes<'a> {
        Attributes {
            rt,
            subresource: sub,
            operation: op,
            namespace: Some("ns"),
            name: "x",
            object: Some(obj),
            old_object: None,
            user,
            dry_run: false,
            field_manager: None,
        }
    }

    #[test]
    fn rules() {
        let pkgi = registry::lookup(gvr::PACKAGE_INSTALLS).unwrap();
        let u = UserInfo::admin();
        let o = json!({});
        let rule = |ops: &[&str], groups: &[&str], res: &[&str], scope: &str| json!({"operations": ops, "apiGroups": groups, "apiVersions": ["*"], "resources": res, "scope": scope});
        let cases = [
            (
                rule(
                    &["CREATE"],
                    &["packaging.carvel.dev"],
                    &["packageinstalls"],
                    "*",
                ),
                "CREATE",
                None,
                true,
            ),
            (
                rule(
                    &["UPDATE"],
                    &["packaging.carvel.dev"],
                    &["packageinstalls"],
                    "*",
                ),
                "CREATE",
                None,
                false,
            ),
            (rule(&["*"], &["*"], &["*"], "*"), "DELETE", None, true),
            (
                rule(&["*"], &["*"], &["*"], "*"),
                "UPDATE",
                Some("status"),
                false,
            ),
            (
                rule(&["*"], &["*"], &["*/*"], "*"),
                "UPDATE",
                Some("status"),
                true,
            ),
            (
                rule(&["*"], &["*"], &["packageinstalls/status"], "*"),
                "UPDATE",
                Some("status"),
                true,
            ),
            (
                rule(&["*"], &["*"], &["packageinstalls/status"], "*"),
                "UPDATE",
                None,
                false,
            ),
            (rule(&["*"], &["apps"], &["*"], "*"), "CREATE", None, false),
            (
                rule(&["*"], &["*"], &["*"], "Cluster"),
                "CREATE",
                None,
                false,
            ),
            (
                rule(&["*"], &["*"], &["*"], "Namespaced"),
                "CREATE",
                None,
                true,
            ),
        ];
        for (r, op, sub, want) in cases {
            assert_eq!(
                rule_matches(&r, &attrs(pkgi, op, sub, &o, &u)),
                want,
                "{r} {op} {sub:?}"
            );
        }
    }

    #[test]
    fn selectors_and_defaults() {
        let pkgi = registry::lookup(gvr::PACKAGE_INSTALLS).unwrap();
        let u = UserInfo::admin();
        let obj = json!({"metadata": {"labels": {"team": "a"}}});
        let config = Arc::new(json!({"webhooks": [
            {"name": "ns.example.com", "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
             "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
             "clientConfig": {"url": "https://127.0.0.1:1/x"}},
            {"name": "obj.example.com", "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
             "objectSelector": {"matchLabels": {"team": "a"}}, "failurePolicy": "Ignore", "timeoutSeconds": 3}
        ]}));
        let prod: std::collections::BTreeMap<String, String> =
            [("env".to_string(), "prod".to_string())].into();
        let a = attrs(pkgi, "CREATE", None, &obj, &u);
        let names = |labels: Option<&std::collections::BTreeMap<String, String>>| -> Vec<String> {
            matching_webhooks(std::slice::from_ref(&config), &a, labels)
                .into_iter()
                .map(|w| w.name)
                .collect()
        };
        assert_eq!(names(Some(&prod)), ["ns.example.com", "obj.example.com"]);
        assert_eq!(names(Some(&Default::default())), ["obj.example.com"]);
        let whs = matching_webhooks(std::slice::from_ref(&config), &a, Some(&prod));
        assert_eq!((whs[0].timeout.as_secs(), whs[0].fail_open), (10, false));
        assert_eq!((whs[1].timeout.as_secs(), whs[1].fail_open), (3, true));
    }

    /// Deployments as kube-apiserver up to 1.15 also served them: the same objects through another
    /// group and version (what `matchPolicy: Equivalent` is for).
    static EXTENSIONS_DEPLOYMENTS: ResourceType = ResourceType {
        gvr: Gvr {
            group: "extensions",
            version: "v1beta1",
            resource: "deployments",
        },
        kind: "Deployment",
        singular: "deployment",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status_subresource: true,
        has_generation: true,
        custom: false,
        scale: None,
        columns: &[],
    };

    /// The rule matcher against kube-apiserver's rules (rules.go) and dispatcher (webhook.go): one
    /// table of (rules, matchPolicy, request type, namespace, subresource, operation) → called as.
    #[test]
    fn webhook_rules_match_as_kube_apiserver_matches_them() {
        let u = UserInfo::admin();
        let pod = json!({"metadata": {"name": "p"}});
        let t = |g: Gvr| registry::lookup(g).unwrap();
        let rule = |ops: &[&str],
                    groups: &[&str],
                    versions: &[&str],
                    res: &[&str],
                    scope: Option<&str>| {
            let mut r = json!({"operations": ops, "apiGroups": groups, "apiVersions": versions, "resources": res});
            if let Some(scope) = scope {
                r["scope"] = Value::from(scope);
            }
            r
        };
        type Case<'a> = (
            Value,
            Option<&'a str>,
            &'static ResourceType,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            Option<Gvr>,
        );
        let shipped_core = rule(
            &["CREATE", "UPDATE"],
            &[""],
            &["*"],
            &["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
            Some("Namespaced"),
        );
        let apps_v1 = rule(&["*"], &["apps"], &["v1"], &["deployments"], None);
        let cases: Vec<Case<'_>> = vec![
            // resource and subresource
            (
                shipped_core.clone(),
                None,
                t(gvr::PODS),
                Some("ns"),
                None,
                "CREATE",
                Some(gvr::PODS),
            ),
            (
                shipped_core.clone(),
                None,
                t(gvr::PODS),
                Some("ns"),
                Some("ephemeralcontainers"),
                "UPDATE",
                Some(gvr::PODS),
            ),
            (
                rule(&["*"], &[""], &["*"], &["pods"], None),
                None,
                t(gvr::PODS),
                Some("ns"),
                Some("ephemeralcontainers"),
                "UPDATE",
                None,
            ),
            (
                rule(&["*"], &[""], &["*"], &["pods/*"], None),
                None,
                t(gvr::PODS),
                Some("ns"),
                Some("ephemeralcontainers"),
                "UPDATE",
                Some(gvr::PODS),
            ),
            // `sub == "*" || sub == opSub`: `pods/*` matches the Pod itself too, as the real matcher does.
            (
                rule(&["*"], &[""], &["*"], &["pods/*"], None),
                None,
                t(gvr::PODS),
                Some("ns"),
                None,
                "UPDATE",
                Some(gvr::PODS),
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*"], None),
                None,
                t(gvr::PODS),
                Some("ns"),
                Some("status"),
                "UPDATE",
                None,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*/status"], None),
                None,
                t(gvr::PODS),
                Some("ns"),
                Some("status"),
                "UPDATE",
                Some(gvr::PODS),
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*/*"], None),
                None,
                t(gvr::PODS),
                Some("ns"),
                None,
                "UPDATE",
                Some(gvr::PODS),
            ),
            (
                shipped_core.clone(),
                None,
                t(gvr::REPLICATION_CONTROLLERS),
                Some("ns"),
                None,
                "UPDATE",
                Some(gvr::REPLICATION_CONTROLLERS),
            ),
            // operations
            (
                shipped_core.clone(),
                None,
                t(gvr::PODS),
                Some("ns"),
                None,
                "DELETE",
                None,
            ),
            // group: Packages are data.packaging.carvel.dev, not packaging.carvel.dev (r14)
            (
                rule(
                    &["*"],
                    &["packaging.carvel.dev"],
                    &["*"],
                    &["packages"],
                    None,
                ),
                None,
                t(gvr::PACKAGES),
                Some("ns"),
                None,
                "UPDATE",
                None,
            ),
            (
                rule(
                    &["*"],
                    &["data.packaging.carvel.dev"],
                    &["*"],
                    &["packages"],
                    None,
                ),
                None,
                t(gvr::PACKAGES),
                Some("ns"),
                None,
                "UPDATE",
                Some(gvr::PACKAGES),
            ),
            (
                rule(&["*"], &["batch"], &["v1"], &["jobs", "cronjobs"], None),
                None,
                t(gvr::CRON_JOBS),
                Some("ns"),
                None,
                "CREATE",
                Some(gvr::CRON_JOBS),
            ),
            // version
            (
                rule(&["*"], &["apps"], &["v1beta2"], &["deployments"], None),
                None,
                t(gvr::DEPLOYMENTS),
                Some("ns"),
                None,
                "CREATE",
                None,
            ),
            // scope: a Namespace is cluster-scoped; an unknown scope matches nothing
            (
                rule(&["*"], &[""], &["v1"], &["namespaces"], Some("Namespaced")),
                None,
                t(gvr::NAMESPACES),
                Some("ns"),
                None,
                "CREATE",
                None,
            ),
            (
                rule(&["*"], &[""], &["v1"], &["namespaces"], Some("Cluster")),
                None,
                t(gvr::NAMESPACES),
                Some("ns"),
                None,
                "CREATE",
                Some(gvr::NAMESPACES),
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*"], Some("Cluster")),
                None,
                t(gvr::PODS),
                Some("ns"),
                None,
                "CREATE",
                None,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*"], Some("Namespaced")),
                None,
                t(gvr::VALIDATING_WEBHOOK_CONFIGURATIONS),
                None,
                None,
                "CREATE",
                None,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*"], Some("Sideways")),
                None,
                t(gvr::PODS),
                Some("ns"),
                None,
                "CREATE",
                None,
            ),
            // matchPolicy: a request through an equivalent group/version is still sent (the v1
            // default), as the type the rule names; Exact does not send it.
            (
                apps_v1.clone(),
                None,
                &EXTENSIONS_DEPLOYMENTS,
                Some("ns"),
                None,
                "CREATE",
                Some(gvr::DEPLOYMENTS),
            ),
            (
                apps_v1.clone(),
                Some("Equivalent"),
                &EXTENSIONS_DEPLOYMENTS,
                Some("ns"),
                None,
                "CREATE",
                Some(gvr::DEPLOYMENTS),
            ),
            (
                apps_v1.clone(),
                Some("Exact"),
                &EXTENSIONS_DEPLOYMENTS,
                Some("ns"),
                None,
                "CREATE",
                None,
            ),
            (
                apps_v1.clone(),
                Some("Equivalent"),
                t(gvr::DEPLOYMENTS),
                Some("ns"),
                None,
                "CREATE",
                Some(gvr::DEPLOYMENTS),
            ),
        ];
        for (rule, policy, rt, ns, sub, op, want) in cases {
            let mut webhook = json!({"name": "w.example.com", "rules": [rule]});
            if let Some(p) = policy {
                webhook["matchPolicy"] = Value::from(p);
            }
            let config = Arc::new(json!({"webhooks": [webhook]}));
            let a = Attributes {
                namespace: ns,
                ..attrs(rt, op, sub, &pod, &u)
            };
            let equivalents: Vec<&'static ResourceType> = if rt.gvr.resource == "deployments" {
                vec![t(gvr::DEPLOYMENTS), &EXTENSIONS_DEPLOYMENTS]
            } else {
                Vec::new()
            };
            let got = matching_webhooks_with(std::slice::from_ref(&config), &a, None, &equivalents)
                .first()
                .map(|w| w.sent_as.gvr);
            assert_eq!(got, want, "{config} {:?} {op} {sub:?} {ns:?}", rt.gvr);
        }

        // What the webhook is told: kind/resource as it matched, requestKind/requestResource as asked.
        let config = Arc::new(json!({"webhooks": [{"name": "w", "rules": [apps_v1]}]}));
        let a = attrs(&EXTENSIONS_DEPLOYMENTS, "CREATE", None, &pod, &u);
        let equivalents = [t(gvr::DEPLOYMENTS), &EXTENSIONS_DEPLOYMENTS];
        let wh = matching_webhooks_with(std::slice::from_ref(&config), &a, None, &equivalents);
        let r = &review(&a, wh[0].sent_as, "u").unwrap()["request"];
        assert_eq!(
            r["kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(
            r["requestKind"],
            json!({"group": "extensions", "version": "v1beta1", "kind": "Deployment"})
        );
        assert_eq!(r["resource"]["group"], "apps");
        assert_eq!(r["requestResource"]["group"], "extensions");
        assert_eq!(r["object"]["apiVersion"], "apps/v1");
    }

    /// The review as kube-apiserver writes it, whole: built with kube's admission types, without
    /// what kube's serialisation adds (GroupVersionResource's `api_version`, `null` for the
    /// optional fields Go omits), and read back by them.
    #[test]
    fn the_review_is_what_kube_apiserver_sends() {
        use kube_core::DynamicObject;
        use kube_core::admission::AdmissionReview;
        let pods = registry::lookup(gvr::PODS).unwrap();
        let u = UserInfo::admin();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}, "creationTimestamp": "2026-12-01T12:00:00Z"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}});
        let a = Attributes {
            subresource: Some("status"),
            old_object: Some(&pod),
            dry_run: true,
            field_manager: Some("m"),
            ..attrs(pods, "UPDATE", None, &pod, &u)
        };
        let group_version = json!({"group": "", "version": "v1"});
        let with = |extra: Value| {
            let mut v = group_version.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let update = review(&a, pods, "u-1").unwrap();
        assert_eq!(
            update,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                "uid": "u-1",
                "kind": with(json!({"kind": "Pod"})),
                "resource": with(json!({"resource": "pods"})),
                "subResource": "status",
                "requestKind": with(json!({"kind": "Pod"})),
                "requestResource": with(json!({"resource": "pods"})),
                "requestSubResource": "status",
                "name": "x",
                "namespace": "ns",
                "operation": "UPDATE",
                "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
                "object": pod,
                "oldObject": pod,
                "dryRun": true,
                "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "m", "dryRun": ["All"]},
            }})
        );
        // A cluster-scoped DELETE: no namespace, no subresource, no object.
        let namespaces = registry::lookup(gvr::NAMESPACES).unwrap();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
        let delete = Attributes {
            namespace: None,
            object: None,
            old_object: Some(&ns),
            ..attrs(namespaces, "DELETE", None, &ns, &u)
        };
        let delete = review(&delete, namespaces, "u-2").unwrap();
        let request = delete["request"].as_object().unwrap();
        for absent in ["namespace", "subResource", "requestSubResource"] {
            assert!(!request.contains_key(absent), "{absent}: {delete}");
        }
        assert_eq!(request["object"], Value::Null);
        assert_eq!(request["oldObject"], ns);
        assert_eq!(request["resource"], with(json!({"resource": "namespaces"})));
        assert_eq!(
            request["options"],
            json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"})
        );
        for sent in [update, delete] {
            let read: AdmissionReview<DynamicObject> = serde_json::from_value(sent).unwrap();
            assert!(read.request.is_some());
        }
        // An object kube's types cannot hold is not sent.
        let bad = json!({"metadata": {"labels": {"a": 1}}});
        let e = review(&attrs(pods, "CREATE", None, &bad, &u), pods, "u-3").unwrap_err();
        assert!(e.contains("the object"), "{e}");
    }

    /// The namespaceSelector never exempts a cluster-scoped request other than a Namespace; the
    /// objectSelector is matched against the new or the old object, and an empty one matches a
    /// request with neither; failurePolicy Ignore fails open, Fail (the default) closed.
    #[test]
    fn selectors_as_kube_apiserver_applies_them() {
        let u = UserInfo::admin();
        let labelled = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}}});
        let bare = json!({"metadata": {}});
        let exempt: std::collections::BTreeMap<String, String> = [(
            "kubernetes.io/metadata.name".to_string(),
            "supsvc-webhook".to_string(),
        )]
        .into();
        let all = json!([{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]);
        let config = Arc::new(json!({"webhooks": [
            {"name": "ns", "rules": all,
             "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["supsvc-webhook", "kube-system"]}]}},
            {"name": "obj", "rules": all, "objectSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "failurePolicy": "Ignore"},
            {"name": "empty", "rules": all, "objectSelector": {}, "namespaceSelector": {}}
        ]}));
        let names = |a: &Attributes<'_>,
                     labels: Option<&std::collections::BTreeMap<String, String>>|
         -> Vec<String> {
            matching_webhooks(std::slice::from_ref(&config), a, labels)
                .into_iter()
                .map(|w| w.name)
                .collect()
        };
        let pods = registry::lookup(gvr::PODS).unwrap();
        let pod = attrs(pods, "CREATE", None, &labelled, &u);
        assert_eq!(
            names(&pod, Some(&Default::default())),
            ["ns", "obj", "empty"]
        );
        assert_eq!(names(&pod, Some(&exempt)), ["obj", "empty"]);
        // DELETE: no new object, the old one's labels count.
        let delete = Attributes {
            object: None,
            old_object: Some(&labelled),
            ..attrs(pods, "DELETE", None, &labelled, &u)
        };
        assert_eq!(names(&delete, Some(&exempt)), ["obj", "empty"]);
        let unlabelled = attrs(pods, "CREATE", None, &bare, &u);
        assert_eq!(names(&unlabelled, Some(&exempt)), ["empty"]);
        // A cluster-scoped kind is never exempted by a namespaceSelector.
        let vwc_like = registry::lookup(gvr::NAMESPACES).unwrap();
        let ns_create = Attributes {
            namespace: None,
            ..attrs(vwc_like, "CREATE", None, &bare, &u)
        };
        assert_eq!(names(&ns_create, Some(&exempt)), ["empty"]);
        let whs = matching_webhooks(std::slice::from_ref(&config), &pod, None);
        assert_eq!(
            whs.iter().map(|w| w.fail_open).collect::<Vec<_>>(),
            [false, true, false]
        );
    }

    #[test]
    fn verdicts() {
        let allowed = json!({"response": {"uid": "u", "allowed": true, "warnings": ["w"]}});
        assert_eq!(verdict("x", "u", &allowed).unwrap().unwrap(), ["w"]);
        let denied = json!({"response": {"uid": "u", "allowed": false, "status": {"message": "no public images"}}});
        let s = verdict("x", "u", &denied).unwrap().unwrap_err();
        assert_eq!(
            (s.code, s.message.as_str()),
            (
                403,
                "admission webhook \"x\" denied the request: no public images"
            )
        );
        let bare = json!({"response": {"uid": "u", "allowed": false, "status": {"code": 422}}});
        assert_eq!(
            verdict("x", "u", &bare).unwrap().unwrap_err().message,
            "admission webhook \"x\" denied the request without explanation"
        );
        assert_eq!(
            verdict(
                "x",
                "u",
                &json!({"response": {"uid": "other", "allowed": true}})
            ),
            Err(MalformedReview::UidMismatch {
                expected: "u".into(),
                got: "other".into()
            })
        );
        assert_eq!(
            verdict("x", "u", &json!({"apiVersion": "admission.k8s.io/v1"})),
            Err(MalformedReview::NoResponse)
        );
    }
}
