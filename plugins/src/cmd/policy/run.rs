//! `kubectl supsvc policy run`: one evaluation, its verdict as a person or a script wants it.

use std::fmt::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use supsvc_policy_host::ValidationResponse;
use supsvc_policy_host::admission::{AdmissionResponse, review_response};
use supsvc_policy_host::verdict::{FailurePolicy, Mode};
use supsvc_policy_host::verdict::{PolicyOutcome, decide};

use super::RunArgs;
use super::eval::{self, Loaded};
use crate::error::{Failure, Result};
use crate::output;

pub fn run(args: &RunArgs) -> Result<()> {
    eval::show_policy_logs();
    let loaded = eval::load(&args.eval)?;
    let started = Instant::now();
    let verdict = loaded
        .policy
        .validate(&loaded.request)
        .map_err(|e| eval::evaluation_failure(&e, &args.eval))?;
    let took = started.elapsed();

    let decision = decide(&[PolicyOutcome {
        policy: loaded.policy.name().to_owned(),
        mode: Mode::Enforce,
        failure_policy: FailurePolicy::Fail,
        result: Ok(verdict.clone()),
    }]);
    let patch = patch_of(&loaded, &verdict);
    let text = match args.output {
        Some(format) => output::render(format, &review(&loaded, &decision, patch.as_ref()))?,
        None => human(&loaded, &verdict, &decision, patch.as_ref(), took),
    };
    out!("{text}");
    if args.fail_on_deny && !decision.allowed {
        return Err(Failure::new(
            format!("policy {} denied the request", loaded.policy.name()),
            "--fail-on-deny makes a denial fail the command; the verdict is above",
        ));
    }
    Ok(())
}

/// The JSON patch from the request's object to the policy's `mutated_object`, if it returned one.
fn patch_of(loaded: &Loaded, verdict: &ValidationResponse) -> Option<json_patch::Patch> {
    let mutated = verdict.mutated_object.as_ref()?;
    let request: serde_json::Value = serde_json::from_slice(&loaded.request).unwrap_or_default();
    Some(json_patch::diff(&request["object"], mutated))
}

/// The AdmissionReview supsvc-webhook answers for this policy alone (`POST /validate/<name>`); a
/// mutation is shown as a mutating webhook would send it, `patchType: JSONPatch` and a base64 `patch`.
fn review(
    loaded: &Loaded,
    decision: &AdmissionResponse,
    patch: Option<&json_patch::Patch>,
) -> serde_json::Value {
    let body = review_response(&loaded.about.uid, decision);
    let mut review: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let (Some(patch), Some(response)) = (patch, review["response"].as_object_mut()) {
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        response.insert("patchType".into(), "JSONPatch".into());
        response.insert(
            "patch".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
    }
    review
}

/// `kubectl describe`-style lines: label, then the value; continuation lines aligned.
fn human(
    loaded: &Loaded,
    verdict: &ValidationResponse,
    decision: &AdmissionResponse,
    patch: Option<&json_patch::Patch>,
    took: Duration,
) -> String {
    let mut out = String::new();
    let mut field = |label: &str, lines: &[String]| {
        for (i, line) in lines.iter().flat_map(|l| l.lines()).enumerate() {
            let label = if i == 0 {
                format!("{label}:")
            } else {
                String::new()
            };
            let _ = writeln!(out, "{label:<13} {line}");
        }
    };
    let policy = &loaded.policy;
    field(
        "Policy",
        &[format!(
            "{} (sha256 {})",
            policy.name(),
            &policy.sha256()[..12]
        )],
    );
    let about = &loaded.about;
    let uid = if about.uid.is_empty() {
        String::new()
    } else {
        format!(" (uid {})", about.uid)
    };
    field("Request", &[format!("{}{uid}", about.describe())]);
    field(
        "Verdict",
        &[if decision.allowed {
            "allowed"
        } else {
            "denied"
        }
        .to_owned()],
    );
    if let Some(status) = &decision.status {
        field("Code", &[status.code.to_string()]);
    }
    if let Some(message) = verdict.message.as_deref().filter(|m| !m.is_empty()) {
        field("Message", &[message.to_owned()]);
    }
    if !decision.warnings.is_empty() {
        field("Warnings", &decision.warnings);
    }
    if !decision.audit_annotations.is_empty() {
        let annotations: Vec<String> = decision
            .audit_annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        field("Annotations", &annotations);
    }
    if let Some(patch) = patch {
        let mut lines = vec![format!(
            "{} operation(s) on the object; not applied: supsvc-webhook validates only",
            patch.0.len()
        )];
        lines.extend(
            patch
                .0
                .iter()
                .map(|op| serde_json::to_string(op).unwrap_or_default()),
        );
        field("Patch", &lines);
    }
    field(
        "Time",
        &[format!(
            "{} to evaluate, {} to compile and check the settings",
            millis(took),
            millis(loaded.load_time)
        )],
    );
    out
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}
