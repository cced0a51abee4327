//! HTTP routes: `/validate` (and `/`, `/validate/<policy>`), `/healthz`, `/readyz`, `/metrics`.
//!
//! Generic over the body type so tests drive it in-process with fixture files.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};

use crate::admission::{self, AdmissionResponse, ParsedReview};
use crate::config::Mode;
use crate::verdict::{PolicyOutcome, decide};

use super::AppState;

pub type HttpResponse = Response<Full<Bytes>>;

/// Answers one HTTP request. Never panics on client input.
pub async fn route<B>(state: Arc<AppState>, request: Request<B>) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") => {
            if state.is_ready() {
                text(StatusCode::OK, "ready")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "policies are still loading",
                )
            }
        }
        (&Method::GET, "/metrics") => Response::builder()
            .header(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Full::new(Bytes::from(state.metrics.encode())))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "")),
        (&Method::POST, "/" | "/validate") => validate(state, request, None).await,
        (&Method::POST, path) if path.starts_with("/validate/") => {
            let policy = path.trim_start_matches("/validate/").to_owned();
            validate(state, request, Some(policy)).await
        }
        (_, "/" | "/validate" | "/healthz" | "/readyz" | "/metrics") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn validate<B>(
    state: Arc<AppState>,
    request: Request<B>,
    only: Option<String>,
) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let (outcome, response) = match answer(&state, request, only).await {
        Ok((uid, decision)) => {
            let outcome = if decision.allowed {
                "allowed"
            } else {
                "denied"
            };
            let body = admission::review_response(&uid, &decision);
            let response = Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""));
            (outcome, response)
        }
        Err((status, message)) => {
            tracing::debug!(%status, "refused admission request: {message}");
            (refusal_label(status), text(status, &message))
        }
    };
    state
        .metrics
        .request(outcome, started.elapsed().as_secs_f64());
    response
}

fn refusal_label(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "unknown_policy",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "error",
    }
}

type Refusal = (StatusCode, String);

async fn answer<B>(
    state: &AppState,
    request: Request<B>,
    only: Option<String>,
) -> Result<(String, AdmissionResponse), Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = read_body(request, state.max_body_bytes).await?;
    let review = admission::parse_review(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("invalid AdmissionReview: {e}"),
        )
    })?;
    let decision = evaluate(state, &review, only.as_deref()).await?;
    Ok((review.uid, decision))
}

async fn read_body<B>(request: Request<B>, limit: usize) -> Result<Bytes, Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err((
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {error}"),
        )),
    }
}

/// Runs every selected policy on the request, off the async runtime and behind the
/// evaluation semaphore, and combines their verdicts.
async fn evaluate(
    state: &AppState,
    review: &ParsedReview,
    only: Option<&str>,
) -> Result<AdmissionResponse, Refusal> {
    let Some(set) = state.policies.load_full() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "policies are still loading".into(),
        ));
    };
    let selected: Vec<usize> = match only {
        Some(name) => {
            let index = set
                .policies
                .iter()
                .position(|active| active.config.name == name)
                .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no policy named {name:?}")))?;
            vec![index]
        }
        None => set
            .policies
            .iter()
            .enumerate()
            .filter(|(_, active)| {
                crate::rules::any_rule_matches(&active.config.rules, &review.attributes)
            })
            .map(|(index, _)| index)
            .collect(),
    };
    if selected.is_empty() {
        return Ok(AdmissionResponse {
            allowed: true,
            ..AdmissionResponse::default()
        });
    }
    let permit = state
        .permits
        .acquire()
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()))?;
    // Evaluated here, on the runtime's worker, not handed to the blocking pool: an evaluation is
    // tens of microseconds of CPU, bounded by the policy's timeout (epoch interruption), and the
    // hand-off to another thread and back (two wake-ups, two context switches) cost more than
    // that. The permits still bound evaluations in flight (one per CPU by default); a looping
    // policy holds its worker only until its timeout.
    let evaluated: Vec<(PolicyOutcome, f64)> = selected
        .iter()
        .map(|&index| {
            let active = &set.policies[index];
            let started = Instant::now();
            let result = active.policy.validate(&review.request);
            let outcome = PolicyOutcome {
                policy: active.config.name.clone(),
                mode: active.config.mode,
                failure_policy: active.config.failure_policy,
                result,
            };
            (outcome, started.elapsed().as_secs_f64())
        })
        .collect();
    drop(permit);

    let mut outcomes = Vec::with_capacity(evaluated.len());
    for (outcome, seconds) in evaluated {
        state.metrics.policy_outcome(&outcome, seconds);
        log_outcome(&review.uid, &outcome);
        outcomes.push(outcome);
    }
    Ok(decide(&outcomes))
}

fn log_outcome(uid: &str, outcome: &PolicyOutcome) {
    let policy = &outcome.policy;
    match &outcome.result {
        Ok(verdict) if !verdict.accepted && outcome.mode == Mode::Monitor => tracing::info!(
            policy = %policy,
            uid,
            "monitor mode: would deny: {}",
            verdict.message.as_deref().unwrap_or_default()
        ),
        Ok(verdict) if !verdict.accepted => tracing::debug!(
            policy = %policy,
            uid,
            "denied: {}",
            verdict.message.as_deref().unwrap_or_default()
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(policy = %policy, uid, kind = error.kind(), "{error}"),
    }
}

fn text(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
