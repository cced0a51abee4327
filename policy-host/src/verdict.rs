//! Combining every matching policy's answer into one admission decision.

use std::collections::BTreeMap;

use crate::admission::{AdmissionResponse, Status};
use crate::{PolicyError, ValidationResponse};

/// `enforce` denies; `monitor` only logs and counts what would have been denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

/// What a policy that cannot give a verdict (timeout, trap, ...) means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    #[default]
    Fail,
    Ignore,
}

/// One policy's answer to one request, with how its configuration says to treat it.
#[derive(Debug, Clone)]
pub struct PolicyOutcome {
    pub policy: String,
    pub mode: Mode,
    pub failure_policy: FailurePolicy,
    pub result: Result<ValidationResponse, PolicyError>,
}

/// What happened to each policy, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Accepted,
    Denied,
    /// Would have denied, but the policy only monitors.
    MonitoredDenial,
    /// Failed and failurePolicy is `fail`: the request is denied.
    FailedClosed,
    /// Failed and failurePolicy is `ignore` (or the policy only monitors): the request goes on.
    FailedOpen,
}

/// The effect of one outcome under its mode and failure policy.
pub fn effect(outcome: &PolicyOutcome) -> Effect {
    match (&outcome.result, outcome.mode, outcome.failure_policy) {
        (Ok(verdict), _, _) if verdict.accepted => Effect::Accepted,
        (Ok(_), Mode::Enforce, _) => Effect::Denied,
        (Ok(_), Mode::Monitor, _) => Effect::MonitoredDenial,
        (Err(_), Mode::Enforce, FailurePolicy::Fail) => Effect::FailedClosed,
        (Err(_), _, _) => Effect::FailedOpen,
    }
}

const DEFAULT_DENIAL_CODE: u16 = 403;
const FAILURE_CODE: u16 = 500;

/// Denied if any enforcing policy denies (or fails closed), with every such message.
/// Warnings and audit annotations of enforcing policies are passed on; monitoring policies
/// and failures that are ignored leave an audit annotation only.
pub fn decide(outcomes: &[PolicyOutcome]) -> AdmissionResponse {
    let mut denials = Vec::new();
    let mut code = None;
    let mut warnings = Vec::new();
    let mut audit_annotations = BTreeMap::new();
    for outcome in outcomes {
        let name = &outcome.policy;
        match (&outcome.result, effect(outcome)) {
            (Ok(verdict), effect @ (Effect::Accepted | Effect::Denied)) => {
                if outcome.mode == Mode::Enforce {
                    warnings.extend(verdict.warnings.iter().flatten().cloned());
                    audit_annotations.extend(verdict.audit_annotations.clone().unwrap_or_default());
                }
                if effect == Effect::Denied {
                    code = code.or(Some(verdict.code.unwrap_or(DEFAULT_DENIAL_CODE)));
                    let message = verdict.message.as_deref().unwrap_or("denied");
                    denials.push(format!("policy {name}: {message}"));
                }
            }
            (Ok(verdict), _) => {
                let message = verdict.message.as_deref().unwrap_or("denied");
                audit_annotations.insert(format!("monitor-{name}"), message.to_string());
            }
            (Err(error), Effect::FailedClosed) => {
                code = code.or(Some(FAILURE_CODE));
                denials.push(error.to_string());
            }
            (Err(error), _) => {
                audit_annotations.insert(format!("failed-{name}"), error.to_string());
            }
        }
    }
    AdmissionResponse {
        allowed: denials.is_empty(),
        status: (!denials.is_empty()).then(|| Status {
            code: code.unwrap_or(DEFAULT_DENIAL_CODE),
            message: denials.join("; "),
        }),
        warnings,
        audit_annotations,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn accept() -> Result<ValidationResponse, PolicyError> {
        Ok(ValidationResponse {
            accepted: true,
            ..Default::default()
        })
    }
    fn deny(message: &str, code: Option<u16>) -> Result<ValidationResponse, PolicyError> {
        Ok(ValidationResponse {
            accepted: false,
            message: Some(message.into()),
            code,
            warnings: Some(vec![format!("warning from {message}")]),
            ..Default::default()
        })
    }
    fn timeout(policy: &str) -> Result<ValidationResponse, PolicyError> {
        Err(PolicyError::Timeout {
            policy: policy.into(),
            timeout: Duration::from_millis(50),
        })
    }
    fn outcome(
        policy: &str,
        mode: Mode,
        failure: FailurePolicy,
        result: Result<ValidationResponse, PolicyError>,
    ) -> PolicyOutcome {
        PolicyOutcome {
            policy: policy.into(),
            mode,
            failure_policy: failure,
            result,
        }
    }
    use FailurePolicy::{Fail, Ignore};
    use Mode::{Enforce, Monitor};

    #[test]
    fn decision_table() {
        // (outcomes, allowed, status code, message)
        let cases: Vec<(Vec<PolicyOutcome>, bool, Option<u16>, &str)> = vec![
            (vec![], true, None, ""),
            (vec![outcome("a", Enforce, Fail, accept())], true, None, ""),
            (
                vec![outcome("a", Enforce, Fail, deny("no", None))],
                false,
                Some(403),
                "policy a: no",
            ),
            (
                vec![
                    outcome("a", Enforce, Fail, deny("no", Some(400))),
                    outcome("b", Enforce, Fail, deny("never", Some(422))),
                ],
                false,
                Some(400),
                "policy a: no; policy b: never",
            ),
            (
                vec![outcome("a", Monitor, Fail, deny("no", None))],
                true,
                None,
                "",
            ),
            (
                vec![outcome("a", Enforce, Fail, timeout("a"))],
                false,
                Some(500),
                "policy a timed out after 50 ms",
            ),
            (
                vec![outcome("a", Enforce, Ignore, timeout("a"))],
                true,
                None,
                "",
            ),
            (
                vec![outcome("a", Monitor, Fail, timeout("a"))],
                true,
                None,
                "",
            ),
            (
                vec![
                    outcome("a", Enforce, Ignore, timeout("a")),
                    outcome("b", Enforce, Fail, deny("no", None)),
                ],
                false,
                Some(403),
                "policy b: no",
            ),
        ];
        for (outcomes, allowed, code, message) in cases {
            let decision = decide(&outcomes);
            assert_eq!(decision.allowed, allowed, "{outcomes:?}");
            assert_eq!(
                decision.status.as_ref().map(|s| s.code),
                code,
                "{outcomes:?}"
            );
            assert_eq!(
                decision.status.map(|s| s.message).unwrap_or_default(),
                message
            );
        }
    }

    #[test]
    fn warnings_from_enforcing_policies_only_and_monitor_annotations() {
        let decision = decide(&[
            outcome("a", Enforce, Fail, deny("no", None)),
            outcome("m", Monitor, Fail, deny("would deny", None)),
            outcome("i", Enforce, Ignore, timeout("i")),
        ]);
        assert_eq!(decision.warnings, vec!["warning from no".to_string()]);
        assert_eq!(decision.audit_annotations["monitor-m"], "would deny");
        assert_eq!(
            decision.audit_annotations["failed-i"],
            "policy i timed out after 50 ms"
        );
    }
}
