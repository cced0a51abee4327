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
use supsvc_policy_host::admission::{ParsedReview, parse_review};

/// The compared fields of one AdmissionRequest. `user`, `object` and `old_object` are JSON as each
/// side holds them; [`fields_agree`] compares them as kube's types read them (authentication/v1
/// `UserInfo`, `DynamicObject`), so that a `null` kube drops or a key order does not count.
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
    pub user: Value,
    pub dry_run: bool,
    /// `None` when absent or `null`.
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

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
    // The kept bytes are a JSON object (parse_review's contract, checked by the fuzz target).
    let request: Value = serde_json::from_slice(&review.request)
        .map_err(|e| format!("the kept request is not JSON: {e}"))?;
    let field = |name: &str| request.get(name).filter(|v| !v.is_null()).cloned();
    let kind = field("kind").unwrap_or_default();
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
        user: field("userInfo").unwrap_or_else(|| Value::Object(Default::default())),
        dry_run: field("dryRun")
            .and_then(|v| v.as_bool())
            .unwrap_or_default(),
        object: field("object"),
        old_object: field("oldObject"),
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
    })
}

fn json(value: &impl serde::Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
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
    let user = |v: &Value| serde_json::from_value::<UserInfo>(v.clone()).map_err(|e| e.to_string());
    if user(&ours.user) != user(&kube.user) {
        return differs("user", &ours.user, &kube.user);
    }
    let object = |v: &Option<Value>| {
        v.clone()
            .map(serde_json::from_value::<DynamicObject>)
            .transpose()
            .map_err(|e| e.to_string())
    };
    if object(&ours.object) != object(&kube.object) {
        return differs("object", &ours.object, &kube.object);
    }
    if object(&ours.old_object) != object(&kube.old_object) {
        return differs("oldObject", &ours.old_object, &kube.old_object);
    }
    Ok(())
}
