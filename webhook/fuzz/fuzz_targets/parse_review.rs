//! Any bytes as an AdmissionReview body: parsing never panics; what it accepts has a non-empty
//! uid, a request that is JSON no deeper than the limit and exactly the body's `request`, and
//! gets a well-formed response. Every input is also decoded with kube's admission types
//! (`kube::core::admission::AdmissionReview<DynamicObject>`): where both accept it, uid, kind,
//! resource, subresource, operation, user, dryRun, object and oldObject are the same
//! (the comparison `policy-host/tests/kube_admission.rs` runs on the fixtures and this corpus).
#![no_main]

use libfuzzer_sys::fuzz_target;
use supsvc_webhook::admission::{AdmissionResponse, parse_review, review_response};

#[path = "../../../policy-host/tests/support/kube_agreement.rs"]
mod kube_agreement;

/// The body's `request` as serde_json captures it (other fields are skipped, not checked).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    request: &'a serde_json::value::RawValue,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = parse_review(data) {
        assert!(!review.uid.is_empty());
        let request: serde_json::Value =
            serde_json::from_slice(&review.request).expect("the kept request is valid JSON");
        assert!(request.is_object());
        // The bytes handed to policies are exactly the body's own `request`.
        let body: Envelope<'_> = serde_json::from_slice(data).expect("accepted, so readable");
        assert_eq!(body.request.get().as_bytes(), &*review.request);
        let response = review_response(&review.uid, &AdmissionResponse::default());
        let response: serde_json::Value =
            serde_json::from_slice(&response).expect("the response is JSON");
        assert_eq!(response["response"]["uid"], review.uid.as_str());
    }
    let decoded = kube_agreement::decode(data);
    if let Err(difference) = kube_agreement::fields_agree(&decoded) {
        panic!("parse_review and kube's AdmissionReview disagree: {difference}");
    }
});
