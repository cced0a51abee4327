//! The subresources with their own shapes: `serviceaccounts/token` (TokenRequest), `scale`
//! (autoscaling/v1 Scale over each kind's replicas paths) and `pods/eviction` (policy/v1 Eviction, see
//! [`crate::disruption::evict`]).

use super::*;

/// The first value a JSON path selects.
pub(super) fn at_json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    crate::api::jsonpath::JsonPath::parse(path)
        .ok()
        .and_then(|p| p.find(object).first().copied())
}

/// `POST .../serviceaccounts/{name}/token`: a TokenRequest answered with a token (201).
pub(super) async fn token(
    client: &Client,
    parts: &http::request::Parts,
    target: &Target,
    body: Incoming,
) -> Result<Response<Body>, Status> {
    let bytes = read_body(body).await?;
    let request = if bytes.is_empty() {
        json!({})
    } else {
        parse_body(parts, &bytes)?
    };
    let answer = client
        .create_token(
            target.namespace.as_deref().unwrap_or_default(),
            target.name.as_deref().unwrap_or_default(),
            request,
        )
        .await?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// The `autoscaling/v1` Scale of a StatefulSet, a Deployment, or a custom resource with a CRD `scale`
/// subresource (its `specReplicasPath`, `statusReplicasPath`, `labelSelectorPath`).
pub(super) fn scale_of(rt: &crate::api::registry::ResourceType, object: &Value) -> Value {
    let (spec_replicas, status_replicas, labels) = match &rt.scale {
        Some(paths) => (
            at_json_path(object, paths.spec_replicas).and_then(Value::as_i64),
            at_json_path(object, paths.status_replicas).and_then(Value::as_i64),
            paths
                .label_selector
                .and_then(|p| at_json_path(object, p))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        None => (
            Some(
                object
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            ),
            object.pointer("/status/replicas").and_then(Value::as_i64),
            object
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        ),
    };
    let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let keep = [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ];
    let metadata: serde_json::Map<String, Value> = meta
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec_replicas.unwrap_or(0)},
        "status": {"replicas": status_replicas.unwrap_or(0), "selector": labels},
    })
}

/// `GET|PUT|PATCH .../{name}/scale`: read or set `spec.replicas` through a Scale object.
pub(super) async fn scale(
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
    let current = client.get(rt.gvr, ns, name).await?;
    if verb == "get" {
        return Ok(ok(&scale_of(rt, &current)));
    }
    let bytes = read_body(body).await?;
    let wanted = match verb {
        "update" => parse_body(parts, &bytes)?,
        "patch" => {
            crate::api::patch::apply(rt, &scale_of(rt, &current), &patch_of(parts, &bytes)?)?
        }
        _ => return Err(Status::method_not_supported(rt, parts.method.as_str())),
    };
    let Some(replicas) = wanted.pointer("/spec/replicas").and_then(Value::as_i64) else {
        return Err(Status::bad_request("spec.replicas is required"));
    };
    let change = Patch::Merge(replicas_patch(rt, replicas));
    let written = client
        .patch_full(
            rt.gvr,
            ns,
            name,
            &change,
            &write_options(parts, query)?,
            false,
        )
        .await?;
    Ok(with_warnings(
        ok(&scale_of(rt, &written.object)),
        &written.warnings,
    ))
}

/// A merge patch that sets the replicas at the kind's spec path (`.spec.replicas` for built-ins).
pub(super) fn replicas_patch(rt: &crate::api::registry::ResourceType, replicas: i64) -> Value {
    let path = rt
        .scale
        .as_ref()
        .map_or(".spec.replicas", |p| p.spec_replicas);
    path.trim_start_matches('.')
        .rsplit('.')
        .fold(Value::from(replicas), |inner, key| json!({ key: inner }))
}

/// `POST .../pods/{name}/eviction`: a `policy/v1` (or `v1beta1`) Eviction; the answer is a `Status`
/// whose `code` is the HTTP status (201 when the pod was evicted).
pub(super) async fn eviction(
    client: &Client,
    parts: &http::request::Parts,
    query: &HashMap<String, String>,
    target: &Target,
    body: Incoming,
) -> Result<Response<Body>, Status> {
    let bytes = read_body(body).await?;
    let request = parse_body(parts, &bytes)?;
    let dry_run = write_options(parts, query)?.dry_run;
    let answer = crate::disruption::evict(
        client,
        target.namespace.as_deref().unwrap_or_default(),
        target.name.as_deref().unwrap_or_default(),
        &request,
        dry_run,
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, &answer))
}
