//! The one-pass AdmissionReview parser ([`parse_review`]) against kube's admission types
//! (`kube::core::admission`, kube's `admission` feature; `kube::core` is the kube-core crate).
//!
//! Shared, as source, by `policy-host/tests/kube_admission.rs` and the cargo-fuzz target
//! `webhook/fuzz/fuzz_targets/parse_review.rs` (`#[path]`), so both compare the same way.
//!
//! Each side decodes a body into [`Fields`]: the fields the issue lists (uid, kind, resource,
//! subresource, operation, user, dryRun, object, oldObject).
//! - ours: uid, resource, subresource and operation as [`parse_review`] reads them; kind, user,
//!   dryRun, object and oldObject as JSON from the request bytes it hands to policies (where a
//!   policy reads them);
//! - kube's: `AdmissionReview<DynamicObject>` read from the whole body, then its `request`.

#![allow(dead_code)]

use k8s_openapi::api::authentication::v1::UserInfo;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionReview, Operation};
use serde_json::Value;
use serde_json::value::RawValue;
use supsvc_policy_host::admission::{ParsedReview, parse_review};

/// The compared fields of one AdmissionRequest. `user`, `object` and `old_object` are JSON text:
/// ours as it lies in the bytes handed to policies, kube's as kube writes what it read;
/// [`fields_agree`] reads both with kube's types, as kube reads them in a review (authentication/v1
/// `UserInfo`, `DynamicObject`), so that what kube normalises (a `null` it drops, key order,
/// duplicate keys) does not count, but any other difference in the bytes does.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    pub uid: String,
    /// `request.kind`: group, version, kind.
    pub kind: (String, String, String),
    /// `request.resource`: group, version, resource.
    pub resource: (String, String, String),
    /// `request.subResource`; `""` for none (absent, `null` or `""`).
    pub sub_resource: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// `request.userInfo`; `{}` when absent or `null`.
    pub user: String,
    pub dry_run: bool,
    /// `None` when absent or `null`.
    pub object: Option<String>,
    pub old_object: Option<String>,
    /// kube's side only: userInfo, object and oldObject as kube's types hold them.
    pub read: Option<Read>,
}

/// userInfo, object and oldObject as kube's types hold them.
pub type Read = (UserInfo, Option<DynamicObject>, Option<DynamicObject>);

/// What both sides made of one body.
#[derive(Debug)]
pub struct Decoded {
    pub ours: Result<Fields, String>,
    pub kube: Result<Fields, String>,
}

impl Decoded {
    /// `(ours accepts, kube accepts)`.
    pub fn accepts(&self) -> (bool, bool) {
        (self.ours.is_ok(), self.kube.is_ok())
    }
}

/// Both decodings of `body`.
pub fn decode(body: &[u8]) -> Decoded {
    Decoded {
        ours: ours(body),
        kube: kube(body),
    }
}

/// The body as [`parse_review`] reads it, with the rest from the bytes it keeps for policies.
pub fn ours(body: &[u8]) -> Result<Fields, String> {
    let review = parse_review(body).map_err(|e| e.to_string())?;
    ours_from(&review)
}

fn ours_from(review: &ParsedReview) -> Result<Fields, String> {
    // The kept bytes are a JSON object (parse_review's contract, checked by the fuzz target). Its
    // fields as their JSON text: an object is compared as kube reads those very bytes.
    let request: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_slice(&review.request)
            .map_err(|e| format!("the kept request is not a JSON object: {e}"))?;
    let field = |name: &str| request.get(name).copied().filter(|v| v.get() != "null");
    let value = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).unwrap_or_default();
    let kind = field("kind").map(value).unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let attributes = &review.attributes;
    Ok(Fields {
        uid: review.uid.clone(),
        kind: (
            text(&kind["group"]),
            text(&kind["version"]),
            text(&kind["kind"]),
        ),
        resource: (
            attributes.group.clone(),
            attributes.version.clone(),
            attributes.resource.clone(),
        ),
        sub_resource: attributes.sub_resource.clone(),
        operation: attributes.operation.clone(),
        user: field("userInfo").map_or_else(|| "{}".to_owned(), |raw| raw.get().to_owned()),
        dry_run: field("dryRun")
            .map(value)
            .and_then(|v| v.as_bool())
            .unwrap_or_default(),
        object: field("object").map(|raw| raw.get().to_owned()),
        old_object: field("oldObject").map(|raw| raw.get().to_owned()),
        read: None,
    })
}

/// The body as kube's `AdmissionReview<DynamicObject>`; a review without `request` is refused,
/// as there is nothing to admit.
pub fn kube(body: &[u8]) -> Result<Fields, String> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|e: kube_core::admission::ConvertAdmissionReviewError| e.to_string())?;
    Ok(Fields {
        uid: request.uid,
        kind: (request.kind.group, request.kind.version, request.kind.kind),
        resource: (
            request.resource.group,
            request.resource.version,
            request.resource.resource,
        ),
        sub_resource: request.sub_resource.unwrap_or_default(),
        operation: operation(&request.operation).to_owned(),
        user: json(&request.user_info)?,
        dry_run: request.dry_run,
        object: request.object.as_ref().map(json).transpose()?,
        old_object: request.old_object.as_ref().map(json).transpose()?,
        read: Some((request.user_info, request.object, request.old_object)),
    })
}

fn json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

fn operation(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Where both accept `body`, the fields they read must be the same: the first that differs,
/// named, otherwise `Ok`. Bodies one side refuses are not compared here (see [`Decoded::accepts`]).
pub fn fields_agree(decoded: &Decoded) -> Result<(), String> {
    let (Ok(ours), Ok(kube)) = (&decoded.ours, &decoded.kube) else {
        return Ok(());
    };
    let differs = |name: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
        Err(format!("{name} differs: ours {a:?}, kube {b:?}"))
    };
    macro_rules! same {
        ($($field:ident),*) => {$(
            if ours.$field != kube.$field {
                return differs(stringify!($field), &ours.$field, &kube.$field);
            }
        )*};
    }
    same!(uid, kind, resource, sub_resource, operation, dry_run);
    // Ours as kube reads those bytes, against what kube read from the body.
    let Some((user, object, old_object)) = &kube.read else {
        return Err("kube's side holds no read objects".into());
    };
    let read =
        |name: &str, text: &str| as_kube_reads_it(name, text).map_err(|e| format!("{name}: {e}"));
    if read("userInfo", &ours.user)?.0 != *user {
        return differs("user", &ours.user, &kube.user);
    }
    let read_object = |name: &str, text: &Option<String>| match text {
        Some(text) => read(name, text).map(|(_, object)| object),
        None => Ok(None),
    };
    if read_object("object", &ours.object)? != *object {
        return differs("object", &ours.object, &kube.object);
    }
    if read_object("oldObject", &ours.old_object)? != *old_object {
        return differs("oldObject", &ours.old_object, &kube.old_object);
    }
    Ok(())
}

/// `json`, the text of the request's field `name`, as kube reads it inside an AdmissionReview.
/// (Not with `DynamicObject` alone: kube reads the request through its flattened `TypeMeta`, and
/// so from a buffer, where for example duplicate keys end otherwise.)
fn as_kube_reads_it(name: &str, json: &str) -> Result<(UserInfo, Option<DynamicObject>), String> {
    let user = if name == "userInfo" {
        ""
    } else {
        r#""userInfo": {},"#
    };
    let request = format!(
        r#"{{"uid": "u", "operation": "CREATE", {user}
            "kind": {{"group": "", "version": "", "kind": ""}},
            "resource": {{"group": "", "version": "", "resource": ""}}, "{name}": {json}}}"#
    );
    let review = format!(
        r#"{{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {request}}}"#
    );
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_str(&review).map_err(|e| e.to_string())?;
    let request = review.request.ok_or("no request")?;
    let object = match name {
        "oldObject" => request.old_object,
        _ => request.object,
    };
    Ok((request.user_info, object))
}
