//! The routes, driven in-process with AdmissionReview fixture files (as Kubewarden's
//! policy-server tests its router).

mod common;

use common::setup::{admission_fixture, policy, send, state_with};
use common::wat_policies::Behaviour::{self, *};
use http::StatusCode;

const POD: &str = "webhook/pod-create.json";
const DEPLOYMENT: &str = "webhook/deployment-create.json";
const PVC_STATUS: &str = "webhook/pvc-status-update.json";

const PODS_ONLY: &[&str] =
    &["rules: [{operations: [CREATE, UPDATE], apiGroups: [\"\"], resources: [pods]}]"];
const MONITOR: &[&str] = &["mode: monitor"];
const IGNORE: &[&str] = &["failurePolicy: ignore"];

struct Case {
    name: &'static str,
    policies: Vec<(&'static str, Behaviour, &'static [&'static str])>,
    fixture: &'static str,
    allowed: bool,
    code: Option<u64>,
    message: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no policy: allowed",
            policies: vec![],
            fixture: POD,
            allowed: true,
            code: None,
            message: "",
        },
        Case {
            name: "accepting policy",
            policies: vec![("accept", Accept, &[])],
            fixture: POD,
            allowed: true,
            code: None,
            message: "",
        },
        Case {
            name: "rejecting policy",
            policies: vec![("accept", Accept, &[]), ("reject", Reject, &[])],
            fixture: POD,
            allowed: false,
            code: Some(403),
            message: "policy reject: rejected by the wat policy",
        },
        Case {
            name: "every denial is reported",
            policies: vec![("one", Reject, &[]), ("two", Reject, &[])],
            fixture: POD,
            allowed: false,
            code: Some(403),
            message: "policy one: rejected by the wat policy; policy two: rejected by the wat policy",
        },
        Case {
            name: "rules keep a pod policy off deployments",
            policies: vec![("pods-only", Reject, PODS_ONLY)],
            fixture: DEPLOYMENT,
            allowed: true,
            code: None,
            message: "",
        },
        Case {
            name: "rules keep a pod policy off the status subresource",
            policies: vec![("pods-only", Reject, PODS_ONLY)],
            fixture: PVC_STATUS,
            allowed: true,
            code: None,
            message: "",
        },
        Case {
            name: "monitor mode allows",
            policies: vec![("watching", Reject, MONITOR)],
            fixture: POD,
            allowed: true,
            code: None,
            message: "",
        },
        Case {
            name: "a timeout fails closed",
            policies: vec![("loop", InfiniteLoop, &[]), ("accept", Accept, &[])],
            fixture: POD,
            allowed: false,
            code: Some(500),
            message: "policy loop timed out after 50 ms",
        },
        Case {
            name: "an ignored failure fails open",
            policies: vec![
                ("loop", InfiniteLoop, IGNORE),
                ("hog", UnboundedAllocation, IGNORE),
            ],
            fixture: POD,
            allowed: true,
            code: None,
            message: "",
        },
        Case {
            name: "failures and denials together",
            policies: vec![
                ("hog", UnboundedAllocation, &[]),
                ("trap", Trap, &[]),
                ("garbage", InvalidOutput, &[]),
                ("reject", Reject, &[]),
            ],
            fixture: POD,
            allowed: false,
            code: Some(500),
            message: "policy hog exceeded its memory limit of 16 MiB; policy trap trapped: wasm trap: wasm `unreachable` instruction executed; policy garbage returned invalid output: expected ident at line 1 column 2 (in \"this is not json\"); policy reject: rejected by the wat policy",
        },
    ]
}

#[tokio::test]
async fn fixture_table() {
    for case in cases() {
        let policies: Vec<_> = case
            .policies
            .iter()
            .map(|(name, behaviour, extra)| policy(name, *behaviour, extra))
            .collect();
        let state = state_with(&policies);
        let review = admission_fixture(case.fixture);
        let uid =
            serde_json::from_slice::<serde_json::Value>(&review).unwrap()["request"]["uid"].clone();
        let answer = send(&state, "POST", "/validate", review).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {}",
            case.name,
            answer.text()
        );
        let body = answer.json();
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1", "{}", case.name);
        assert_eq!(body["kind"], "AdmissionReview", "{}", case.name);
        let response = &body["response"];
        assert_eq!(response["uid"], uid, "{}", case.name);
        assert_eq!(response["allowed"], case.allowed, "{}: {body}", case.name);
        assert_eq!(
            response["status"]["code"].as_u64(),
            case.code,
            "{}: {body}",
            case.name
        );
        assert_eq!(
            response["status"]["message"].as_str().unwrap_or_default(),
            case.message,
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn warnings_and_audit_annotations_reach_the_response() {
    let state = state_with(&[
        policy("warn", AcceptWithWarning, &[]),
        policy("watching", Reject, MONITOR),
    ]);
    let body = send(&state, "POST", "/", admission_fixture(POD))
        .await
        .json();
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["warnings"], serde_json::json!(["careful"]));
    assert_eq!(body["response"]["auditAnnotations"]["wat/seen"], "yes");
    assert_eq!(
        body["response"]["auditAnnotations"]["monitor-watching"],
        "rejected by the wat policy"
    );
}

#[tokio::test]
async fn monitor_mode_and_failures_are_counted() {
    let state = state_with(&[
        policy("watching", Reject, MONITOR),
        policy("loop", InfiniteLoop, IGNORE),
    ]);
    for _ in 0..2 {
        let answer = send(&state, "POST", "/validate", admission_fixture(POD)).await;
        assert_eq!(answer.json()["response"]["allowed"], true);
    }
    let metrics = send(&state, "GET", "/metrics", "").await.text();
    for line in [
        "supsvc_webhook_policy_denials_total{policy=\"watching\",mode=\"monitor\"} 2",
        "supsvc_webhook_policy_timeouts_total{policy=\"loop\"} 2",
        "supsvc_webhook_policy_errors_total{policy=\"loop\",kind=\"timeout\"} 2",
        "supsvc_webhook_admission_requests_total{outcome=\"allowed\"} 2",
        "supsvc_webhook_policies_loaded 2",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("supsvc_webhook_policy_evaluation_duration_seconds_bucket{"));
}

#[tokio::test]
async fn one_policy_by_path() {
    let state = state_with(&[policy("accept", Accept, &[]), policy("reject", Reject, &[])]);
    let only_accept = send(&state, "POST", "/validate/accept", admission_fixture(POD)).await;
    assert_eq!(only_accept.json()["response"]["allowed"], true);
    let only_reject = send(&state, "POST", "/validate/reject", admission_fixture(POD)).await;
    assert_eq!(only_reject.json()["response"]["allowed"], false);
    let unknown = send(&state, "POST", "/validate/nope", admission_fixture(POD)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.text(), "no policy named \"nope\"\n");
}

#[tokio::test]
async fn hostile_requests_get_clear_refusals() {
    let state = state_with(&[policy("accept", Accept, &[])]);
    let deep = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"1","operation":"CREATE","resource":{{"resource":"pods"}},"object":{}1{}}}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let oversized = format!(r#"{{"padding":"{}"}}"#, "x".repeat(8 << 20));
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            admission_fixture("webhook/bad-truncated.json"),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            admission_fixture("webhook/bad-api-version.json"),
            StatusCode::BAD_REQUEST,
            "apiVersion must be admission.k8s.io/v1",
        ),
        (
            admission_fixture("webhook/bad-kind.json"),
            StatusCode::BAD_REQUEST,
            "kind must be AdmissionReview",
        ),
        (
            admission_fixture("webhook/bad-missing-request.json"),
            StatusCode::BAD_REQUEST,
            "no request",
        ),
        (
            b"\xff\xfe\x00garbage".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (Vec::new(), StatusCode::BAD_REQUEST, "not valid JSON"),
        (
            deep.into_bytes(),
            StatusCode::BAD_REQUEST,
            "nests deeper than 100 levels",
        ),
        (
            oversized.into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
    ];
    for (body, status, message) in cases {
        let answer = send(&state, "POST", "/validate", body).await;
        assert_eq!(answer.status, status, "{}", answer.text());
        assert!(answer.text().contains(message), "{}", answer.text());
    }
    // Still serving.
    let answer = send(&state, "POST", "/validate", admission_fixture(POD)).await;
    assert_eq!(answer.json()["response"]["allowed"], true);
    let metrics = send(&state, "GET", "/metrics", "").await.text();
    assert!(
        metrics.contains("supsvc_webhook_admission_requests_total{outcome=\"bad_request\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("supsvc_webhook_admission_requests_total{outcome=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_large_but_allowed_request_is_evaluated() {
    let state = state_with(&[policy("accept", Accept, &[])]);
    let mut review: serde_json::Value = serde_json::from_slice(&admission_fixture(POD)).unwrap();
    let blob = "y".repeat(3 << 20);
    review["request"]["object"]["metadata"]["annotations"]["blob"] = blob.clone().into();
    review["request"]["oldObject"] =
        serde_json::json!({"metadata": {"annotations": {"blob": blob}}});
    let answer = send(
        &state,
        "POST",
        "/validate",
        serde_json::to_vec(&review).unwrap(),
    )
    .await;
    assert_eq!(answer.json()["response"]["allowed"], true);
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let state = state_with(&[]);
    assert_eq!(
        send(&state, "GET", "/healthz", "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&state, "GET", "/readyz", "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&state, "GET", "/nope", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&state, "GET", "/validate", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let loading = std::sync::Arc::new(supsvc_webhook::server::AppState::new(1));
    assert_eq!(
        send(&loading, "GET", "/readyz", "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let answer = send(&loading, "POST", "/validate", admission_fixture(POD)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn draining_fails_readiness_but_keeps_answering() {
    let state = state_with(&[policy("accept", Accept, &[])]);
    state.start_draining();
    assert_eq!(
        send(&state, "GET", "/readyz", "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let answer = send(&state, "POST", "/validate", admission_fixture(POD)).await;
    assert_eq!(answer.json()["response"]["allowed"], true);
}
