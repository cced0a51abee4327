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
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn resource_matches(pattern: &str, resource: &str, subresource: Option<&str>) -> bool {
    let (pr, ps) = pattern
        .split_once('/')
        .map_or((pattern, None), |(r, s)| (r, Some(s)));
    let resource_ok = pr == "*" || pr == resource;
    let sub_ok = match (ps, subresource) {
        (None, None) => true,
        (Some("*"), _) => true,
        (Some(p), Some(s)) => p == s,
        _ => false,
    };
    resource_ok && sub_ok
}

/// Whether one `rules[]` entry matches the request.
pub fn rule_matches(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let any = |list: Vec<&str>, x: &str| list.iter().any(|v| *v == "*" || *v == x);
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !attrs.rt.namespaced,
        "Namespaced" => attrs.rt.namespaced,
        _ => true,
    };
    any(strings(rule.get("operations")), attrs.operation)
        && any(strings(rule.get("apiGroups")), attrs.rt.gvr.group)
        && any(strings(rule.get("apiVersions")), attrs.rt.gvr.version)
        && strings(rule.get("resources"))
            .iter()
            .any(|p| resource_matches(p, attrs.rt.gvr.resource, attrs.subresource))
        && scope_ok
}

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

/// The webhooks of `configs` that must see the request; `namespace_labels` are the labels of the
/// request's namespace (for a Namespace itself, its own labels).
pub fn matching_webhooks(
    configs: &[Arc<Value>],
    attrs: &Attributes<'_>,
    namespace_labels: Option<&std::collections::BTreeMap<String, String>>,
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
            let rules = wh.get("rules").and_then(Value::as_array);
            if !rules.into_iter().flatten().any(|r| rule_matches(r, attrs)) {
                continue;
            }
            let ns_ok = match (
                attrs.rt.namespaced || attrs.rt.gvr == gvr::NAMESPACES,
                namespace_labels,
            ) {
                (true, Some(labels)) => selector_matches(wh.get("namespaceSelector"), labels),
                (true, None) => selector_matches(wh.get("namespaceSelector"), &Default::default()),
                (false, _) => true,
            };
            let obj_ok = [attrs.object, attrs.old_object]
                .iter()
                .flatten()
                .any(|o| selector_matches(wh.get("objectSelector"), &labels_of(o)));
            if !ns_ok || !obj_ok {
                continue;
            }
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
                    .map(String::from),
                timeout: Duration::from_secs(
                    wh.get("timeoutSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(10)
                        .clamp(1, 30),
                ),
                fail_open: wh.get("failurePolicy").and_then(Value::as_str) == Some("Ignore"),
            });
        }
    }
    out
}

/// The `AdmissionReview` sent to every matching webhook.
pub fn review(attrs: &Attributes<'_>, uid: &str) -> Value {
    let rt = attrs.rt;
    let kind = json!({"group": rt.gvr.group, "version": rt.gvr.version, "kind": rt.kind});
    let resource =
        json!({"group": rt.gvr.group, "version": rt.gvr.version, "resource": rt.gvr.resource});
    let options_kind = match attrs.operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
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
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": attrs.name,
        "operation": attrs.operation,
        "userInfo": attrs.user,
        "object": attrs.object.cloned().unwrap_or(Value::Null),
        "oldObject": attrs.old_object.cloned().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
        "options": options,
    });
    if let Some(ns) = attrs.namespace {
        request["namespace"] = Value::from(ns);
    }
    if let Some(sub) = attrs.subresource {
        request["subResource"] = Value::from(sub);
        request["requestSubResource"] = Value::from(sub);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// The verdict of one webhook's answer: `Ok(warnings)` when allowed.
pub fn verdict(
    name: &str,
    uid: &str,
    answer: &Value,
) -> Result<Result<Vec<String>, Status>, String> {
    let response = answer
        .get("response")
        .ok_or_else(|| "response is missing".to_string())?;
    let got_uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_uid != uid {
        return Err(format!(
            "expected response.uid=\"{uid}\", got \"{got_uid}\""
        ));
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
        let body = Bytes::from(review(attrs, &uid).to_string());
        let calls = webhooks.iter().map(|wh| {
            let body = body.clone();
            let uid = uid.as_str();
            async move {
                let outcome = match self.post(wh, body).await {
                    Ok(answer) => verdict(&wh.name, uid, &answer),
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
    use crate::api::registry;

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
        assert!(
            verdict(
                "x",
                "u",
                &json!({"response": {"uid": "other", "allowed": true}})
            )
            .is_err()
        );
    }
}
