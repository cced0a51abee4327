//! One HTTP request to the simulated API server: authentication, faults, routing to the [`Client`]
//! and the answer. Content negotiation and bodies are in `negotiate`, the subresources with shapes
//! of their own (token, scale, eviction) in `subresource`, watch streams in `watch`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use super::discovery;
use super::route::{Route, Target, route};
use crate::api::table::{self, IncludeObject};
use crate::api::{
    ApiServer, Client, ListOptions, Patch, Status, UserInfo, WatchEvent, WriteOptions, Written,
};
use crate::audit::AuditEvent;
use crate::faults::{FaultAction, FaultConfig};

mod negotiate;
mod subresource;
mod watch;

use negotiate::*;
use subresource::*;
use watch::*;

/// Response bodies: whole documents or watch streams.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// The request is answered by closing the connection (a fault).
#[derive(Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for DropConnection {}

/// The limit of a request body, as on the real server.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// What the handler needs to know about the server.
pub struct Front {
    pub api: Arc<ApiServer>,
    /// `host:port`, for `/api`'s `serverAddressByClientCIDRs`.
    pub address: String,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn ok(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

fn status_response(s: &Status) -> Response<Body> {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(code, &s.to_json());
    if let Some(secs) = s
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_u64)
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = w.replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            r.headers_mut().append("warning", v);
        }
    }
    r
}

fn query_of(req: &http::request::Parts) -> HashMap<String, String> {
    req.uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn authenticate(api: &ApiServer, parts: &http::request::Parts) -> Result<UserInfo, Status> {
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    token
        .and_then(|t| api.user_for_token(t))
        .ok_or_else(Status::unauthorized)
}

/// Answers one request (logged at debug level: `RUST_LOG=supsvc_sim::http=debug`).
/// `connection` numbers the connection the request came on (for the audit).
pub async fn handle(
    front: Arc<Front>,
    connection: u64,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let started = std::time::Instant::now();
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let result = dispatch(front, connection, req).await;
    let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(%method, %uri, status, micros, "request");
    result
}

async fn dispatch(
    front: Arc<Front>,
    connection: u64,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let latency = front.api.faults().latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = req.into_parts();
    let r = route(front.api.registry(), parts.uri.path());
    match r {
        Route::Health => {
            let mut resp = Response::new(full("ok"));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return Ok(resp);
        }
        Route::Version => return Ok(ok(&discovery::version())),
        _ => {}
    }
    let user = match authenticate(&front.api, &parts) {
        Ok(u) => u,
        Err(s) => return Ok(status_response(&s)),
    };
    let aggregated = matches!(r, Route::CoreVersions | Route::Groups)
        && accepted_first(&parts, |m| {
            m.param("g") == Some("apidiscovery.k8s.io")
                && m.param("v") == Some("v2")
                && m.param("as") == Some("APIGroupDiscoveryList")
        });
    let resp = match r {
        _ if aggregated => {
            let doc = discovery::aggregated(front.api.registry(), r == Route::CoreVersions);
            let mut resp = ok(&doc);
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(discovery::AGGREGATED_V2),
            );
            resp.headers_mut()
                .insert("vary", HeaderValue::from_static("Accept"));
            resp
        }
        Route::CoreVersions => ok(&discovery::core_versions(&front.address)),
        Route::Groups => ok(&discovery::groups(front.api.registry())),
        Route::Group(g) => ok(&discovery::group_doc(front.api.registry(), &g)),
        Route::Resources { group, version } => ok(&discovery::resources(
            front.api.registry(),
            &group,
            &version,
        )),
        Route::OpenApiV3Root => ok(&discovery::openapi_v3_root(front.api.registry())),
        Route::OpenApiV3 { group, version } => ok(&discovery::openapi_v3(
            front.api.registry(),
            &group,
            &version,
        )),
        Route::Faults => faults(&front.api, &user, &parts, body).await,
        Route::Audit => audit(&front.api, &user),
        Route::Metrics => metrics(&front.api, &user),
        Route::AccessReview | Route::WhoAmI if parts.method != Method::POST => {
            status_response(&Status::new(
                405,
                "MethodNotAllowed",
                "only create is supported on reviews",
            ))
        }
        Route::AccessReview => match read_body(body).await.and_then(|b| parse_body(&parts, &b)) {
            Ok(review) => json_response(StatusCode::CREATED, &access_review(&user, review)),
            Err(s) => status_response(&s),
        },
        Route::WhoAmI => json_response(
            StatusCode::CREATED,
            &json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {}, "status": {"userInfo": user}}),
        ),
        Route::Object(target) => {
            return object(&front, connection, user, parts, body, target).await;
        }
        Route::OpenApiV2 => {
            if accepts(&parts, "protobuf") {
                let mut r = Response::new(full(discovery::openapi_v2_protobuf()));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    ),
                );
                r
            } else {
                ok(&discovery::openapi_v2())
            }
        }
        Route::NotFound | Route::Health | Route::Version => {
            status_response(&Status::path_not_found())
        }
    };
    Ok(resp)
}

/// Answers a SelfSubjectAccessReview with the simulator's authorizer.
fn access_review(user: &UserInfo, mut review: Value) -> Value {
    let verb = review
        .pointer("/spec/resourceAttributes/verb")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let allowed = crate::api::authz::allowed(user, verb);
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "allowed by the simulator's authorizer"})
    } else {
        json!({"allowed": false})
    };
    review
}

async fn read_body(body: Incoming) -> Result<Bytes, Status> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Status::too_large()),
        Err(e) => Err(Status::bad_request(format!(
            "unable to read the request body: {e}"
        ))),
    }
}

async fn faults(
    api: &ApiServer,
    user: &UserInfo,
    parts: &http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    if !user.groups.iter().any(|g| g == "system:masters") {
        return status_response(&Status::new(
            403,
            "Forbidden",
            format!("User \"{}\" cannot configure faults", user.username),
        ));
    }
    if parts.method == Method::POST {
        let bytes = match read_body(body).await {
            Ok(b) => b,
            Err(s) => return status_response(&s),
        };
        match serde_json::from_slice::<FaultConfig>(&bytes) {
            Ok(config) => api.faults().apply(config),
            Err(e) => {
                return status_response(&Status::bad_request(format!(
                    "invalid fault configuration: {e}"
                )));
            }
        }
    }
    ok(&serde_json::to_value(api.faults().config()).unwrap_or(Value::Null))
}

/// `GET /_sim/audit`: every event kept, for the admin only.
/// `GET /metrics`: kube-apiserver answers it to whoever may `get` the non-resource URL `/metrics`
/// (cluster-admin, `system:monitoring`); here the administrators.
fn metrics(api: &ApiServer, user: &UserInfo) -> Response<Body> {
    if !user
        .groups
        .iter()
        .any(|g| g == "system:masters" || g == "system:monitoring")
    {
        return status_response(&Status::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{}\" cannot get path \"/metrics\"",
                user.username
            ),
        ));
    }
    let mut resp = Response::new(full(api.metrics_text()));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

fn audit(api: &ApiServer, user: &UserInfo) -> Response<Body> {
    if !user.groups.iter().any(|g| g == "system:masters") {
        return status_response(&Status::new(
            403,
            "Forbidden",
            format!("User \"{}\" cannot read the audit", user.username),
        ));
    }
    ok(&json!({"events": api.audit().events()}))
}

fn fault_response(action: FaultAction, target: &Target) -> Result<Response<Body>, DropConnection> {
    let FaultAction::Status {
        code,
        retry_after_seconds,
        message,
    } = action
    else {
        return Err(DropConnection);
    };
    let name = target.name.as_deref().unwrap_or_default();
    let mut s = match code {
        409 if !name.is_empty() => Status::conflict(target.rt, name),
        409 => Status::new(409, "Conflict", "injected conflict"),
        429 => Status::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        503 => Status::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        500 => Status::internal("injected fault"),
        other => Status::new(other, "InternalError", "injected fault"),
    };
    if let Some(m) = message {
        s.message = m;
    }
    if let Some(secs) = retry_after_seconds.or((code == 429 || code == 503).then_some(1)) {
        let mut d = s.details.take().unwrap_or_else(|| json!({}));
        d["retryAfterSeconds"] = Value::from(secs);
        s.details = Some(d);
    }
    Ok(status_response(&s))
}

/// The verb of a resource request, as authorization and faults name it.
fn verb_of(
    method: &Method,
    target: &Target,
    query: &HashMap<String, String>,
) -> Option<&'static str> {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    Some(match (method.as_str(), target.name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", false) => "create",
        // A create on a subresource: `serviceaccounts/{name}/token`, `pods/{name}/eviction`.
        ("POST", true) if matches!(target.subresource.as_deref(), Some("token" | "eviction")) => {
            "create"
        }
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    })
}

fn write_options(
    parts: &http::request::Parts,
    query: &HashMap<String, String>,
) -> Result<WriteOptions, Status> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(Status::bad_request(format!(
                "Invalid dry run value: {other}"
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_manager: query.get("fieldManager").cloned(),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    })
}

fn list_options(query: &HashMap<String, String>) -> ListOptions {
    ListOptions {
        label_selector: query
            .get("labelSelector")
            .filter(|s| !s.is_empty())
            .cloned(),
        field_selector: query
            .get("fieldSelector")
            .filter(|s| !s.is_empty())
            .cloned(),
    }
}

async fn object(
    front: &Front,
    connection: u64,
    user: UserInfo,
    parts: http::request::Parts,
    body: Incoming,
    target: Target,
) -> Result<Response<Body>, DropConnection> {
    let query = query_of(&parts);
    let Some(verb) = verb_of(&parts.method, &target, &query) else {
        return Ok(status_response(&Status::method_not_supported(
            target.rt,
            parts.method.as_str(),
        )));
    };
    let started = std::time::Instant::now();
    let event = AuditEvent {
        verb: verb.to_owned(),
        resource: target.rt.gvr.resource.to_owned(),
        subresource: target.subresource.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        username: user.username.clone(),
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        dry_run: query.get("dryRun").is_some_and(|d| d == "All"),
        code: 0,
        micros: 0,
        connection,
        http_version: format!("{:?}", parts.version),
    };
    let result = answer(front, user, parts, body, target, verb, &query).await;
    front.api.audit().record(AuditEvent {
        code: result.as_ref().map_or(0, |r| r.status().as_u16()),
        micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        ..event
    });
    result
}

async fn answer(
    front: &Front,
    user: UserInfo,
    parts: http::request::Parts,
    body: Incoming,
    target: Target,
    verb: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, DropConnection> {
    if let Some(action) =
        front
            .api
            .faults()
            .check(verb, target.rt.gvr.resource, target.name.as_deref())
    {
        return fault_response(action, &target);
    }
    let client = front.api.client(user);
    let result = match verb {
        "watch" => return Ok(watch(front, &client, &parts, query, &target).await),
        "create" if target.subresource.as_deref() == Some("token") => {
            token(&client, &parts, &target, body).await
        }
        "create" if target.subresource.as_deref() == Some("eviction") => {
            eviction(&client, &parts, query, &target, body).await
        }
        _ if target.subresource.as_deref() == Some("scale") => {
            scale(&client, &parts, query, &target, verb, body).await
        }
        "get" | "list" => read(&client, &parts, query, &target, verb).await,
        _ => write(&client, &parts, query, &target, verb, body).await,
    };
    Ok(result.unwrap_or_else(|s| status_response(&s)))
}

async fn read(
    client: &Client,
    parts: &http::request::Parts,
    query: &HashMap<String, String>,
    target: &Target,
    verb: &str,
) -> Result<Response<Body>, Status> {
    let rt = target.rt;
    let ns = target.namespace.as_deref();
    let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
    if verb == "get" {
        let name = target.name.as_deref().unwrap_or_default();
        let object = client.get(rt.gvr, ns, name).await?;
        return Ok(if wants_table(parts) {
            ok(&table::table(rt, &[object], None, include))
        } else if wants_metadata(parts) {
            ok(&partial_metadata(&object))
        } else {
            ok(&object)
        });
    }
    let list = client.list(rt.gvr, ns, &list_options(query)).await?;
    if wants_table(parts) {
        return Ok(ok(&table::table(
            rt,
            &list.items,
            Some(list.resource_version),
            include,
        )));
    }
    if wants_metadata(parts) {
        return Ok(ok(&json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": list.resource_version.to_string()},
            "items": list.items.iter().map(partial_metadata).collect::<Vec<_>>(),
        })));
    }
    Ok(ok(&json!({
        "kind": rt.list_kind(),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": list.resource_version.to_string()},
        "items": list.items,
    })))
}

async fn write(
    client: &Client,
    parts: &http::request::Parts,
    query: &HashMap<String, String>,
    target: &Target,
    verb: &str,
    body: Incoming,
) -> Result<Response<Body>, Status> {
    let rt = target.rt;
    let ns = target.namespace.as_deref();
    let name = target.name.as_deref().unwrap_or_default();
    let sub = target.subresource.as_deref();
    let bytes = read_body(body).await?;
    let mut opts = write_options(parts, query)?;
    let written: Written = match verb {
        "create" | "update" => {
            let object = parse_body(parts, &bytes)?;
            if object
                .get("kind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(Status::bad_request(format!(
                    "Object 'Kind' is missing in '{}'",
                    String::from_utf8_lossy(&bytes)
                )));
            }
            if verb == "create" {
                let w = client.create_full(rt.gvr, ns, object, &opts).await?;
                return Ok(with_warnings(
                    json_response(StatusCode::CREATED, &w.object),
                    &w.warnings,
                ));
            }
            if object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n != name)
            {
                return Err(Status::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            client
                .update_subresource(rt.gvr, ns, object, &opts, sub)
                .await?
        }
        "patch" => {
            let force = query.get("force");
            if sub.is_none()
                && let Some(config) = apply_config(parts, &bytes)
            {
                let force = force.is_some_and(|f| f == "true");
                let (w, created) = client
                    .apply(rt.gvr, ns, name, &config?, &opts, force)
                    .await?;
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok(with_warnings(json_response(code, &w.object), &w.warnings));
            }
            if let Some(s) = crate::api::apply::patch_options_invalid(false, None, force.is_some())
            {
                return Err(s);
            }
            let p = patch_of(parts, &bytes)?;
            client
                .patch_subresource(rt.gvr, ns, name, &p, &opts, sub)
                .await?
        }
        "delete" => {
            if let Ok(options) = serde_json::from_slice::<Value>(&bytes) {
                let body_dry_run = options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|x| x == "All"));
                opts.dry_run |= body_dry_run;
            }
            client.delete_full(rt.gvr, ns, name, &opts).await?
        }
        "deletecollection" => {
            let list = client.list(rt.gvr, ns, &list_options(query)).await?;
            let mut deleted = Vec::new();
            for item in &list.items {
                let n = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str);
                match client.delete(rt.gvr, item_ns, n, &opts).await {
                    Ok(o) => deleted.push(o),
                    Err(s) if s.is_not_found() => {}
                    Err(s) => return Err(s),
                }
            }
            let out = json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": {}, "items": deleted});
            Written {
                object: out,
                warnings: Vec::new(),
            }
        }
        _ => return Err(Status::method_not_supported(rt, parts.method.as_str())),
    };
    Ok(with_warnings(ok(&written.object), &written.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_faults_carry_retry_after() {
        let rt = crate::api::registry::lookup(crate::api::gvr::CONFIG_MAPS).unwrap();
        let target = Target {
            rt,
            namespace: None,
            name: Some("x".into()),
            subresource: None,
        };
        let action = FaultAction::Status {
            code: 429,
            retry_after_seconds: Some(7),
            message: None,
        };
        let r = fault_response(action, &target).unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers().get(RETRY_AFTER).unwrap(), "7");
        let conflict = FaultAction::Status {
            code: 409,
            retry_after_seconds: None,
            message: None,
        };
        assert_eq!(fault_response(conflict, &target).unwrap().status(), 409);
        assert!(fault_response(FaultAction::Drop, &target).is_err());
    }

    #[test]
    fn verbs() {
        let rt = crate::api::registry::lookup(crate::api::gvr::CONFIG_MAPS).unwrap();
        let t = |name: Option<&str>| Target {
            rt,
            namespace: Some("n".into()),
            name: name.map(String::from),
            subresource: None,
        };
        let w: HashMap<String, String> = [("watch".to_string(), "1".to_string())].into();
        let none = HashMap::new();
        let cases = [
            (Method::GET, t(None), &none, Some("list")),
            (Method::GET, t(None), &w, Some("watch")),
            (Method::GET, t(Some("x")), &none, Some("get")),
            (Method::POST, t(None), &none, Some("create")),
            (Method::POST, t(Some("x")), &none, None),
            (Method::PUT, t(Some("x")), &none, Some("update")),
            (Method::PATCH, t(Some("x")), &none, Some("patch")),
            (Method::DELETE, t(Some("x")), &none, Some("delete")),
            (Method::DELETE, t(None), &none, Some("deletecollection")),
        ];
        for (m, target, q, want) in cases {
            assert_eq!(verb_of(&m, &target, q), want, "{m} {:?}", target.name);
        }
    }
}
