//! AdmissionReview `admission.k8s.io/v1` in and out.
//!
//! The `request` is kept as the raw JSON the API server sent: policies receive those bytes
//! verbatim, so a request is never re-serialised, however many policies look at it.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The parts of an AdmissionRequest that rules look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestAttributes {
    pub operation: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub sub_resource: String,
    pub namespace: String,
}

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// A request body that is not an AdmissionReview we can answer: a 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("apiVersion must be {API_VERSION}, got {0:?}")]
    ApiVersion(String),
    #[error("kind must be {KIND}, got {0:?}")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    #[error("the AdmissionRequest nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("the AdmissionRequest is invalid: {0}")]
    InvalidRequest(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewEnvelope<'a> {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    request: Option<RequestFields<'a>>,
}

/// The AdmissionRequest's fields, each as the raw JSON of its value, read in the same pass as
/// the envelope: the head is then decoded from a few small values and the request's own bytes
/// are found from where its fields lie, instead of reading the whole request a second time.
#[derive(Default)]
struct RequestFields<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The first key as it lies in the body (not unescaped): where the object starts.
    first_key: Option<&'a str>,
}

impl<'a> RequestFields<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        // The last of duplicate keys wins, as in a JSON object read into a map.
        self.fields
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, raw)| *raw)
    }

    /// The bytes of the request object within `body`, from its `{` to its `}`, or `None` if
    /// they cannot be located this way (an escaped first key, an empty object).
    fn span(&self, body: &'a [u8]) -> Option<&'a [u8]> {
        let offset = |s: &str| (s.as_ptr() as usize).checked_sub(body.as_ptr() as usize);
        // The key's opening quote, then whitespace back to the `{`.
        let key = offset(self.first_key?)?.checked_sub(1)?;
        let start = body
            .get(..key)?
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())?;
        let (_, last) = self.fields.last()?;
        let value_end = offset(last.get())? + last.get().len();
        let end = value_end
            + body
                .get(value_end..)?
                .iter()
                .position(|b| !b.is_ascii_whitespace())?;
        (body.get(start) == Some(&b'{') && body.get(end) == Some(&b'}')).then(|| &body[start..=end])
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RequestFields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestFieldsVisitor(std::marker::PhantomData))
    }
}

struct RequestFieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RequestFieldsVisitor<'a> {
    type Value = RequestFields<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionRequest (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = RequestFields::default();
        while let Some(key) = map.next_key::<BorrowedOrOwned<'de>>()? {
            let key = key.0;
            if request.fields.is_empty()
                && let Cow::Borrowed(key) = key
            {
                request.first_key = Some(key);
            }
            request.fields.push((key, map.next_value()?));
        }
        Ok(request)
    }
}

/// A key, borrowed from the body where it has no escapes. (`Cow<str>` itself always copies.)
struct BorrowedOrOwned<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for BorrowedOrOwned<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl<'de> Visitor<'de> for Key {
            type Value = BorrowedOrOwned<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwned(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwned(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(Key)
    }
}

#[derive(Deserialize)]
struct GroupVersionResource {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    resource: String,
}

/// The deepest nesting a request may have. Policies parse it again, often with serde_json's
/// recursion limit of 128, and no Kubernetes object needs anywhere near this many levels.
pub const MAX_DEPTH: usize = 100;

/// Whether arrays and objects nest more than `limit` levels deep in `json`.
fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    // Each level opens with a bracket of its own: with no more brackets than the limit (counting
    // those in strings too), the limit cannot be passed. Counting them is a vectorised search,
    // several times faster than following the structure, and settles most requests.
    if memchr::memchr2_iter(b'{', b'[', json)
        .take(limit + 1)
        .count()
        <= limit
    {
        return false;
    }
    json_depth(json) > limit
}

/// How deeply arrays and objects nest in `json` (already known to be valid JSON).
/// serde_json checks depth only where it builds values; skipped fields are not counted.
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => {
                // Strings are most of the bytes: jump from quote or backslash to the next.
                at += 1;
                loop {
                    let Some(rest) = json.get(at..) else {
                        return deepest;
                    };
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(found) if rest[found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                        None => return deepest,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

/// An AdmissionReview ready for evaluation.
#[derive(Debug, Clone)]
pub struct ParsedReview {
    pub uid: String,
    pub attributes: RequestAttributes,
    /// The `request` object exactly as received.
    pub request: Arc<[u8]>,
}

/// Parses and checks an AdmissionReview body. Never panics, whatever the bytes.
///
/// One pass over the body: the envelope, the request's fields as raw JSON, its bytes located
/// from them. Refuses, as [`ReviewError`], what kube-apiserver's Go types (k8s.io/api
/// admission/v1) refuse, and also an empty uid, another apiVersion or kind than admission/v1's
/// AdmissionReview, and requests nested deeper than [`MAX_DEPTH`]; like Go, it takes absent
/// and `null` fields as empty. Where it and kube's `kube::core::admission::AdmissionReview`
/// differ, and why, is recorded in `policy-host/tests/kube_admission.rs`.
pub fn parse_review(body: &[u8]) -> Result<ParsedReview, ReviewError> {
    let envelope: ReviewEnvelope<'_> =
        serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    let api_version = envelope.api_version.unwrap_or_default();
    if api_version != API_VERSION {
        return Err(ReviewError::ApiVersion(api_version));
    }
    let kind = envelope.kind.unwrap_or_default();
    if kind != KIND {
        return Err(ReviewError::Kind(kind));
    }
    let fields = envelope.request.ok_or(ReviewError::MissingRequest)?;
    let request = match fields.span(body) {
        Some(request) => request,
        None => raw_request(body).ok_or(ReviewError::MissingRequest)?,
    };
    if nests_deeper_than(request, MAX_DEPTH) {
        return Err(ReviewError::TooDeep(MAX_DEPTH));
    }
    let field = |name: &'static str| fields.get(name).filter(|raw| raw.get() != "null");
    let decode = |name: &'static str| -> Result<String, ReviewError> {
        let raw = field(name)
            .ok_or_else(|| ReviewError::InvalidRequest(format!("missing field `{name}`")))?;
        serde_json::from_str(raw.get())
            .map_err(|e| ReviewError::InvalidRequest(format!("{name}: {e}")))
    };
    let optional = |name: &'static str| field(name).map_or(Ok(String::new()), |_| decode(name));
    let uid = decode("uid")?;
    if uid.is_empty() {
        return Err(ReviewError::InvalidRequest("uid is empty".into()));
    }
    let operation = decode("operation")?;
    // admission/v1 defines four operations; kube's `Operation` and supsvc-admission's (what
    // policies decode it into) refuse any other.
    operation
        .parse::<supsvc_admission::Operation>()
        .map_err(|e| ReviewError::InvalidRequest(format!("operation: {e}")))?;
    check_field_types(field)?;
    let resource = field("resource")
        .ok_or_else(|| ReviewError::InvalidRequest("missing field `resource`".into()))?;
    let resource: GroupVersionResource = struct_only("resource", resource)
        .and_then(|raw| serde_json::from_str(raw.get()).map_err(|e| format!("resource: {e}")))
        .map_err(ReviewError::InvalidRequest)?;
    Ok(ParsedReview {
        uid,
        attributes: RequestAttributes {
            operation,
            group: resource.group,
            version: resource.version,
            resource: resource.resource,
            sub_resource: optional("subResource")?,
            namespace: optional("namespace")?,
        },
        request: Arc::from(request),
    })
}

/// The fields of an admission/v1 AdmissionRequest the head does not read, checked for the JSON
/// types of their Go types (k8s.io/api admission/v1 `AdmissionRequest`): what kube-apiserver's own
/// decoder refuses (`"kind": "Pod"`, `"dryRun": "yes"`, `"userInfo": 7`) is refused here, before
/// any policy sees it. As in Go, `null` and absent fields pass, nested fields too; `object`,
/// `oldObject` and `options` are `runtime.RawExtension`, any JSON.
fn check_field_types<'a>(
    field: impl Fn(&'static str) -> Option<&'a RawValue>,
) -> Result<(), ReviewError> {
    fn check<'de, T: Deserialize<'de>>(
        name: &str,
        raw: Option<&'de RawValue>,
    ) -> Result<(), ReviewError> {
        match raw {
            Some(raw) => serde_json::from_str::<T>(raw.get())
                .map(drop)
                .map_err(|e| ReviewError::InvalidRequest(format!("{name}: {e}"))),
            None => Ok(()),
        }
    }
    for name in ["kind", "requestKind", "requestResource", "userInfo"] {
        if let Some(raw) = field(name) {
            struct_only(name, raw).map_err(ReviewError::InvalidRequest)?;
        }
    }
    check::<shape::GroupVersionKind>("kind", field("kind"))?;
    check::<shape::GroupVersionKind>("requestKind", field("requestKind"))?;
    check::<shape::GroupVersionResource>("requestResource", field("requestResource"))?;
    check::<shape::Text>("requestSubResource", field("requestSubResource"))?;
    check::<shape::Text>("name", field("name"))?;
    check::<shape::UserInfo>("userInfo", field("userInfo"))?;
    check::<bool>("dryRun", field("dryRun"))
}

/// `raw` if it is a JSON object: Go decodes a struct from an object only, where serde's derived
/// structs also take an array of the fields in order (`["apps", "v1", "deployments"]`).
fn struct_only<'a>(name: &str, raw: &'a RawValue) -> Result<&'a RawValue, String> {
    if raw.get().starts_with('{') {
        Ok(raw)
    } else {
        Err(format!("{name}: expected a JSON object"))
    }
}

/// Types that check a JSON value's shape against a Go type without keeping (or allocating) it.
mod shape {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

    /// Go's `string`: a JSON string, or `null`.
    pub struct Text;

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Any;
            impl Visitor<'_> for Any {
                type Value = Text;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E>(self, _: &str) -> Result<Text, E> {
                    Ok(Text)
                }
                fn visit_unit<E>(self) -> Result<Text, E> {
                    Ok(Text)
                }
            }
            deserializer.deserialize_any(Any)
        }
    }

    /// Go's `[]string`: an array of [`Text`], or `null`.
    pub struct Texts;

    impl<'de> Deserialize<'de> for Texts {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Any;
            impl<'de> Visitor<'de> for Any {
                type Value = Texts;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an array of strings")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Texts, A::Error> {
                    while seq.next_element::<Text>()?.is_some() {}
                    Ok(Texts)
                }
                fn visit_unit<E>(self) -> Result<Texts, E> {
                    Ok(Texts)
                }
            }
            deserializer.deserialize_any(Any)
        }
    }

    /// `extra` of authentication/v1 `UserInfo`: `map[string][]string`, or `null`.
    pub struct Extra;

    impl<'de> Deserialize<'de> for Extra {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Any;
            impl<'de> Visitor<'de> for Any {
                type Value = Extra;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a map of string arrays")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Extra, A::Error> {
                    while map.next_entry::<Text, Texts>()?.is_some() {}
                    Ok(Extra)
                }
                fn visit_unit<E>(self) -> Result<Extra, E> {
                    Ok(Extra)
                }
            }
            deserializer.deserialize_any(Any)
        }
    }

    /// meta/v1 `GroupVersionKind`.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    pub struct GroupVersionKind {
        group: Option<Text>,
        version: Option<Text>,
        kind: Option<Text>,
    }

    /// meta/v1 `GroupVersionResource`.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    pub struct GroupVersionResource {
        group: Option<Text>,
        version: Option<Text>,
        resource: Option<Text>,
    }

    /// authentication/v1 `UserInfo`.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    pub struct UserInfo {
        username: Option<Text>,
        uid: Option<Text>,
        groups: Option<Texts>,
        extra: Option<Extra>,
    }
}

/// The request's bytes read the plain way, a second pass: for the requests whose bytes
/// [`RequestFields::span`] cannot locate.
fn raw_request(body: &[u8]) -> Option<&[u8]> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        request: Option<&'a RawValue>,
    }
    let raw: Raw<'_> = serde_json::from_slice(body).ok()?;
    raw.request.map(|raw| raw.get().as_bytes())
}

/// The AdmissionRequest bytes for a policy, from a file holding either a whole AdmissionReview
/// or a bare AdmissionRequest (what `kubectl supsvc policy run --request FILE` accepts).
pub fn request_from_review_or_request(json: &[u8]) -> Result<Arc<[u8]>, ReviewError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| ReviewError::Json(e.to_string()))?;
    let request = match value.get("kind").and_then(|kind| kind.as_str()) {
        Some(KIND) => value
            .get("request")
            .filter(|r| !r.is_null())
            .ok_or(ReviewError::MissingRequest)?,
        _ => &value,
    };
    if !request.is_object() {
        return Err(ReviewError::InvalidRequest("not a JSON object".into()));
    }
    let bytes = serde_json::to_vec(request).map_err(|e| ReviewError::Json(e.to_string()))?;
    Ok(Arc::from(bytes))
}

/// The webhook's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdmissionResponse {
    pub allowed: bool,
    /// Set when denied.
    pub status: Option<Status>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub code: u16,
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Status>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
}

/// The AdmissionReview response body for `uid`.
pub fn review_response(uid: &str, decision: &AdmissionResponse) -> Vec<u8> {
    let review = ReviewOut {
        api_version: API_VERSION,
        kind: KIND,
        response: ResponseOut {
            uid,
            allowed: decision.allowed,
            status: decision.status.as_ref(),
            warnings: &decision.warnings,
            audit_annotations: &decision.audit_annotations,
        },
    };
    // Serialising these plain strings, bools and maps cannot fail.
    serde_json::to_vec(&review).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","operation":"UPDATE","resource":{"group":"","version":"v1","resource":"pods"},"subResource":"status","namespace":"ns","object":{"a":1}}}"#;

    #[test]
    fn parses_the_head_and_keeps_the_raw_request() {
        let review = parse_review(POD.as_bytes()).unwrap();
        assert_eq!(review.uid, "u-1");
        assert_eq!(review.attributes.operation, "UPDATE");
        assert_eq!(review.attributes.resource, "pods");
        assert_eq!(review.attributes.sub_resource, "status");
        assert_eq!(review.attributes.namespace, "ns");
        let request: serde_json::Value = serde_json::from_slice(&review.request).unwrap();
        assert_eq!(request["object"]["a"], 1);
    }

    #[test]
    fn the_request_bytes_are_exactly_those_received_whatever_the_layout() {
        let head = r#""operation": "CREATE", "resource": {"group": "apps", "version": "v1", "resource": "deployments"}"#;
        let requests = [
            format!(r#"{{"uid": "u", {head}, "object": {{"a": [1, {{"b": "}}"}}]}}}}"#),
            format!("{{ \n\t \"uid\" :\"u\" , {head} , \"dryRun\" : false \n }}"),
            // Escaped keys, first or not, and duplicates (the last wins).
            format!(r#"{{"\u0075id": "u", {head}}}"#),
            format!(
                r#"{{"namespace": "a", "uid": "u", {head}, "namespace": "ns", "subResource": null}}"#
            ),
            format!(r#"{{{head}, "u\u0069d": "u"}}"#),
        ];
        for request in requests {
            let body = format!(
                r#"{{"request" : {request} , "apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}}"#
            );
            let review = parse_review(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(std::str::from_utf8(&review.request).unwrap(), request);
            assert_eq!(review.uid, "u", "{body}");
            assert_eq!(review.attributes.resource, "deployments");
            assert_eq!(review.attributes.group, "apps");
            assert_eq!(review.attributes.operation, "CREATE");
        }
        let duplicated = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"namespace": "a", "uid": "u", {head}, "namespace": "ns"}}}}"#
        );
        let review = parse_review(duplicated.as_bytes()).unwrap();
        assert_eq!(review.attributes.namespace, "ns");
        assert_eq!(review.attributes.sub_resource, "");
    }

    #[test]
    fn bad_reviews_are_refused_with_a_reason() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "not valid JSON"),
            ("{".into(), "not valid JSON"),
            ("[]".into(), "apiVersion"),
            ("42".into(), "not valid JSON"),
            (deep, "not valid JSON"),
            (r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#.into(), "apiVersion"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#.into(), "kind must be"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.into(), "no request"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#.into(), "no request"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"}}"#.into(), "invalid"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#.into(), "missing field `uid`"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":5}"#.into(), "expected an AdmissionRequest"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7,"operation":"CREATE","resource":{"resource":"pods"}}}"#.into(), "uid: invalid type"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{}}}"#.into(), "resource: missing field"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":"CREATE","resource":{"resource":"pods"}}}"#.into(), "uid is empty"),
            // What kube-apiserver's Go types refuse too (policy-host/tests/kube_admission.rs).
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"PATCH","resource":{"resource":"pods"}}}"#.into(), r#"operation: unknown admission operation "PATCH""#),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":["","v1","pods"]}}"#.into(), "resource: expected a JSON object"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{"resource":"pods"},"kind":"Pod"}}"#.into(), "kind: expected a JSON object"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{"resource":"pods"},"kind":{"kind":7}}}"#.into(), "kind: invalid type: integer `7`, expected a string"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{"resource":"pods"},"userInfo":{"groups":"a"}}}"#.into(), "userInfo: invalid type: string \"a\", expected an array of strings"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{"resource":"pods"},"userInfo":{"extra":{"k":[1]}}}}"#.into(), "userInfo: invalid type: integer `1`, expected a string"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{"resource":"pods"},"dryRun":"yes"}}"#.into(), "dryRun: invalid type: string"),
            (r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","resource":{"resource":"pods"},"name":5}}"#.into(), "name: invalid type"),
        ];
        for (body, expected) in cases {
            let error = parse_review(body.as_bytes()).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{}: {error}",
                &body[..body.len().min(80)]
            );
        }
    }

    #[test]
    fn fields_go_decodes_as_zero_values_are_accepted() {
        // null and absent fields, nulls inside userInfo, any JSON as object (RawExtension).
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CONNECT","resource":{"resource":"pods"},"kind":null,"requestKind":{},"userInfo":{"username":null,"groups":[null],"extra":{"k":null}},"dryRun":null,"name":null,"object":5,"options":"x"}}"#;
        let review = parse_review(body.as_bytes()).unwrap();
        assert_eq!(review.attributes.operation, "CONNECT");
    }

    #[test]
    fn deeply_nested_objects_inside_the_request_are_refused() {
        let nested = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"1","operation":"CREATE","resource":{{"resource":"pods"}},"object":{nested}}}}}"#
        );
        let error = parse_review(body.as_bytes()).unwrap_err();
        assert_eq!(error, ReviewError::TooDeep(MAX_DEPTH));
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[{{"}],"c":""{"}"#), 3);
        // Brackets inside strings, after escaped quotes and escaped backslashes, do not count.
        let cases: [(&[u8], usize); 5] = [
            (br#"{"a":"x\"[[[","b":[]}"#, 2),
            (br#"{"a":"x\\","b":[[]]}"#, 3),
            (br#"["\\\"[", {"\u005b": "]]]"}]"#, 2),
            (br#"[[[]],[[[]]]]"#, 4),
            (br#""unterminated [[["#, 0),
        ];
        for (json, depth) in cases {
            assert_eq!(json_depth(json), depth, "{}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn few_brackets_settle_the_depth_and_many_are_followed() {
        // 3 brackets: within a limit of 3 whatever their order.
        assert!(!nests_deeper_than(br#"[{"a":[]}]"#, 3));
        assert!(nests_deeper_than(br#"[{"a":[]}]"#, 2));
        // Many brackets, most in strings or siblings: followed, and shallow.
        let wide = format!("[{}\"{}\"]", "[],".repeat(200), "{[".repeat(200));
        assert!(!nests_deeper_than(wide.as_bytes(), 3));
        assert!(nests_deeper_than(wide.as_bytes(), 1));
    }

    #[test]
    fn depth_limit_is_inclusive() {
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"1","operation":"CREATE","resource":{{"resource":"pods"}},"object":{at_limit}}}}}"#
        );
        assert!(parse_review(body.as_bytes()).is_ok());
    }

    #[test]
    fn policy_input_from_a_review_or_a_bare_request() {
        let from_review = request_from_review_or_request(POD.as_bytes()).unwrap();
        let bare =
            serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(POD).unwrap()["request"])
                .unwrap();
        assert_eq!(&*from_review, &bare[..]);
        assert_eq!(&*request_from_review_or_request(&bare).unwrap(), &bare[..]);
        assert!(request_from_review_or_request(b"[1]").is_err());
        assert!(request_from_review_or_request(br#"{"kind":"AdmissionReview"}"#).is_err());
    }

    #[test]
    fn response_echoes_uid_and_status() {
        let decision = AdmissionResponse {
            allowed: false,
            status: Some(Status {
                code: 403,
                message: "no".into(),
            }),
            warnings: vec!["w".into()],
            audit_annotations: BTreeMap::from([("k".into(), "v".into())]),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&review_response("u-1", &decision)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": "u-1", "allowed": false, "status": {"code": 403, "message": "no"},
                             "warnings": ["w"], "auditAnnotations": {"k": "v"}}
            })
        );
        let allowed: serde_json::Value = serde_json::from_slice(&review_response(
            "u-2",
            &AdmissionResponse {
                allowed: true,
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(
            allowed["response"],
            serde_json::json!({"uid": "u-2", "allowed": true})
        );
    }
}
