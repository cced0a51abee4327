//! Content negotiation and bodies as kube-apiserver reads them: the `Accept` media ranges in
//! order (Table, PartialObjectMetadata, aggregated discovery), JSON/YAML/protobuf bodies, patch types.

use super::*;

/// One media range of an Accept header: `application/json;g=meta.k8s.io;v=v1;as=Table`.
pub(super) struct MediaRange<'a> {
    media: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> MediaRange<'a> {
    pub(super) fn parse(text: &'a str) -> Self {
        let mut parts = text.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params = parts.filter_map(|p| p.split_once('=')).collect();
        MediaRange { media, params }
    }

    pub(super) fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

/// Whether the client's first choice among JSON media ranges (in the order it listed them) is one `want`
/// accepts: what the server answers when it can serve that choice.
pub(super) fn accepted_first(
    parts: &http::request::Parts,
    want: impl Fn(&MediaRange<'_>) -> bool,
) -> bool {
    parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|a| a.split(','))
        .map(MediaRange::parse)
        .find(|m| m.media == "application/json" || m.media == "*/*" || m.media.is_empty())
        .is_some_and(|m| want(&m))
}

/// What a client asked to get instead of whole objects (`meta.k8s.io/v1` `PartialObjectMetadata` and
/// its list, as kube-rs's `get_metadata`/`list_metadata` and client-go's metadata client ask).
pub(super) fn wants_metadata(parts: &http::request::Parts) -> bool {
    accepted_first(parts, |m| {
        m.param("g") == Some("meta.k8s.io")
            && m.param("v") == Some("v1")
            && matches!(
                m.param("as"),
                Some("PartialObjectMetadata" | "PartialObjectMetadataList")
            )
    })
}

/// An object reduced to its metadata.
pub(super) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub(super) fn accepts(parts: &http::request::Parts, needle: &str) -> bool {
    parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|a| a.contains(needle))
}

/// Whether the client asked for `meta.k8s.io/v1` Tables (`kubectl get`).
pub(super) fn wants_table(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
        })
}

/// A create or update body: JSON, or YAML; anything else (protobuf) is refused with 415 as a real
/// server refuses it for custom resources, which makes client-go fall back to JSON where it can.
pub(super) fn parse_body(parts: &http::request::Parts, bytes: &[u8]) -> Result<Value, Status> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(bytes).map_err(|e| {
            Status::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| Status::bad_request(format!("invalid YAML: {e}")))?;
            serde_saphyr::from_str(text).map_err(|e| {
                Status::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            })
        }
        "application/vnd.kubernetes.protobuf" => crate::http::protobuf::decode(bytes).map_err(|e| {
            Status::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"
                ),
            )
        }),
        _ => Err(Status::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        )),
    }
}

pub(super) fn patch_of(parts: &http::request::Parts, bytes: &[u8]) -> Result<Patch, Status> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let parse = || {
        serde_json::from_slice::<Value>(bytes)
            .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))
    };
    match media {
        "application/json-patch+json" => Ok(Patch::Json(parse()?)),
        "application/merge-patch+json" => Ok(Patch::Merge(parse()?)),
        "application/strategic-merge-patch+json" => Ok(Patch::Strategic(parse()?)),
        _ => Err(Status::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {media:?}"
            ),
        )),
    }
}

/// The configuration of a server-side apply (`application/apply-patch+yaml`: YAML, or JSON as kubectl and
/// kube-rs send it); `None` for any other patch type.
pub(super) fn apply_config(
    parts: &http::request::Parts,
    bytes: &[u8],
) -> Option<Result<Value, Status>> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media != "application/apply-patch+yaml" {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Some(Ok(v));
    }
    Some(
        std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string()))
            .map_err(|e| Status::bad_request(format!("error decoding YAML: {e}"))),
    )
}
