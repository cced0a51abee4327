//! The shipped policies decide in `supsvc-core`; this is the thin edge between those decisions and
//! the waPC request and verdict of the policy SDK.

#[cfg(feature = "cases")]
pub mod cases;

use supsvc_core::guard::{Decision, Request};
use supsvc_policy_sdk::{AdmissionRequest, Verdict, accept, reject};

/// The HTTP code of a denial, as the API server passes it on.
pub const DENIED: u16 = 403;

/// Runs `decide` on the core view of `request`. The kind is the request's `kind` (what the API
/// server sends, after any conversion), else its `requestKind`; never the object's own
/// `apiVersion`/`kind`, which a client may leave out.
pub fn with_request<T>(request: &AdmissionRequest, decide: impl FnOnce(&Request<'_>) -> T) -> T {
    let kind = match &request.request_kind {
        Some(requested) if request.kind.kind.is_empty() => requested,
        _ => &request.kind,
    };
    let view = Request {
        operation: request.operation,
        group: &kind.group,
        kind: &kind.kind,
        sub_resource: request.sub_resource(),
        namespace: &request.namespace,
        name: &request.name,
        username: &request.user_info.username,
        groups: &request.user_info.groups,
        object: &request.object,
        old_object: &request.old_object,
    };
    decide(&view)
}

/// The verdict for a decision.
pub fn verdict(decision: Decision) -> Verdict {
    match decision {
        Decision::Allow => accept(),
        Decision::AllowWithWarnings {
            warnings,
            audit_annotations,
        } => {
            let mut verdict = accept();
            for warning in warnings {
                verdict = verdict.with_warning(warning);
            }
            for (key, value) in audit_annotations {
                verdict = verdict.with_audit_annotation(key, value);
            }
            verdict
        }
        Decision::Deny { message } => reject(message, DENIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_become_verdicts() {
        assert!(verdict(Decision::Allow).accepted);
        let denied = verdict(Decision::Deny {
            message: "no".into(),
        });
        assert!(!denied.accepted);
        assert_eq!(
            (denied.message.as_deref(), denied.code),
            (Some("no"), Some(DENIED))
        );
        let warned = verdict(Decision::AllowWithWarnings {
            warnings: vec!["careful".into()],
            audit_annotations: vec![("k".into(), "v".into())],
        });
        assert!(warned.accepted);
        assert_eq!(warned.warnings, vec!["careful".to_string()]);
        assert_eq!(
            warned.audit_annotations.get("k").map(String::as_str),
            Some("v")
        );
    }
}
