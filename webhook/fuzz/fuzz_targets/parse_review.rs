//! Any bytes as an AdmissionReview body: parsing never panics; what it accepts has a non-empty
//! uid, a request that is JSON no deeper than the limit, and gets a well-formed response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supsvc_webhook::admission::{Decision, parse_review, review_response};

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = parse_review(data) {
        assert!(!review.uid.is_empty());
        let request: serde_json::Value =
            serde_json::from_slice(&review.request).expect("the kept request is valid JSON");
        assert!(request.is_object());
        let response = review_response(&review.uid, &Decision::default());
        let response: serde_json::Value =
            serde_json::from_slice(&response).expect("the response is JSON");
        assert_eq!(response["response"]["uid"], review.uid.as_str());
    }
});
