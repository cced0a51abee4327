//! Watches: the event stream kubectl and client-go read (`?watch=1`), with bookmarks, and the
//! line each event is written as.

use super::*;

pub(super) fn watch_line(
    event: &WatchEvent,
    rt: &'static crate::api::registry::ResourceType,
    table: Option<IncludeObject>,
    metadata: bool,
) -> Bytes {
    let (kind, object) = match event {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        WatchEvent::Error(s) => {
            let mut line = json!({"type": "ERROR", "object": s.to_json()}).to_string();
            line.push('\n');
            return Bytes::from(line);
        }
    };
    let object = match table {
        Some(include) => table::table(rt, std::slice::from_ref(object), None, include),
        None if metadata => partial_metadata(object),
        None => object.clone(),
    };
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

pub(super) async fn watch(
    front: &Front,
    client: &Client,
    parts: &http::request::Parts,
    query: &HashMap<String, String>,
    target: &Target,
) -> Response<Body> {
    let rt = target.rt;
    let rv = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(s) => match s.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return status_response(&Status::bad_request(format!(
                    "invalid resource version: {s:?}"
                )));
            }
        },
    };
    let mut opts = list_options(query);
    if let Some(name) = &target.name {
        // `GET .../name?watch=1`: a watch of one object.
        let sel = format!("metadata.name={name}");
        opts.field_selector = Some(match opts.field_selector.take() {
            Some(f) => format!("{f},{sel}"),
            None => sel,
        });
    }
    let stream = match client
        .watch(rt.gvr, target.namespace.as_deref(), &opts, rv)
        .await
    {
        Ok(s) => s,
        Err(s) => return status_response(&s),
    };
    let table = wants_table(parts)
        .then(|| IncludeObject::parse(query.get("includeObject").map(String::as_str)));
    let metadata = wants_metadata(parts);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let mut drops = front.api.faults().watch_drops();
    let end = async move {
        tokio::select! {
            _ = drops.changed() => {}
            _ = tokio::time::sleep(timeout) => {}
        }
    };
    let frames = stream
        .map(move |e| Ok::<_, Infallible>(Frame::data(watch_line(&e, rt, table, metadata))))
        .take_until(Box::pin(end));
    let mut r = Response::new(StreamBody::new(frames).boxed_unsync());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}
