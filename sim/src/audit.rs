//! An audit of what reached the HTTP front: one event per resource request, as a real API server's
//! audit log at level `Metadata`. Controllers inside the simulator use the in-process
//! [`crate::api::Client`] and are not audited, so the log holds exactly what outside clients (kubectl,
//! kubectl-supsvc, kube-rs) asked for: a test can assert that a command wrote nothing, or over how many
//! connections and which HTTP version it spoke.
//!
//! In process: `api.audit().clear()`, run the command, then `api.audit().writes()`. Out of process, as
//! the kubeconfig's admin (`system:masters`): `GET /_sim/audit` (every event kept, oldest first).

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// How many events are kept; the oldest are forgotten first.
pub const CAPACITY: usize = 100_000;

/// One resource request and how it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// Plural resource name.
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub username: String,
    pub user_agent: String,
    /// `dryRun=All`: validated and admitted, never stored.
    pub dry_run: bool,
    /// The HTTP status answered; 0 when the connection was dropped (a fault).
    pub code: u16,
    /// How long the server took to answer (to start streaming, for a watch), in microseconds, not
    /// counting the latency added by [`crate::faults::Faults::set_latency`].
    pub micros: u64,
    /// The connection the request came on, numbered from 1 in the order they were accepted.
    pub connection: u64,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub http_version: String,
}

impl AuditEvent {
    /// Whether the verb changes objects (dry run or not, allowed or not).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// Whether this request may have changed what is stored: a mutating verb, not a dry run, and not
    /// refused (a dropped connection counts: the write may have happened before the drop).
    pub fn may_have_written(&self) -> bool {
        self.is_mutating() && !self.dry_run && !(400..600).contains(&self.code)
    }
}

/// The log.
#[derive(Default)]
pub struct Audit {
    events: Mutex<VecDeque<AuditEvent>>,
}

impl Audit {
    fn events_mut(&self) -> std::sync::MutexGuard<'_, VecDeque<AuditEvent>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn record(&self, event: AuditEvent) {
        let mut events = self.events_mut();
        if events.len() == CAPACITY {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Every event kept, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events_mut().iter().cloned().collect()
    }

    /// The requests that may have changed what is stored (see [`AuditEvent::may_have_written`]).
    pub fn writes(&self) -> Vec<AuditEvent> {
        self.events_mut()
            .iter()
            .filter(|e| e.may_have_written())
            .cloned()
            .collect()
    }

    /// Forgets every event.
    pub fn clear(&self) {
        self.events_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(verb: &str, dry_run: bool, code: u16) -> AuditEvent {
        AuditEvent {
            verb: verb.into(),
            resource: "packageinstalls".into(),
            subresource: None,
            namespace: Some("ns".into()),
            name: Some("x".into()),
            username: "admin".into(),
            user_agent: "test".into(),
            dry_run,
            code,
            micros: 10,
            connection: 1,
            http_version: "HTTP/2.0".into(),
        }
    }

    #[test]
    fn writes_are_mutating_stored_and_not_refused() {
        let audit = Audit::default();
        for e in [
            event("get", false, 200),
            event("list", false, 200),
            event("patch", true, 200),
            event("patch", false, 403),
            event("patch", false, 500),
            event("patch", false, 200),
            event("delete", false, 0),
        ] {
            audit.record(e);
        }
        assert_eq!(audit.events().len(), 7);
        let writes: Vec<(String, u16)> = audit
            .writes()
            .into_iter()
            .map(|e| (e.verb, e.code))
            .collect();
        assert_eq!(
            writes,
            [("patch".to_string(), 200), ("delete".to_string(), 0)]
        );
        assert!(event("patch", true, 200).is_mutating());
        audit.clear();
        assert!(audit.events().is_empty());
    }

    #[test]
    fn the_oldest_events_are_forgotten_first() {
        let audit = Audit::default();
        for i in 0..CAPACITY + 2 {
            audit.record(AuditEvent {
                connection: i as u64,
                ..event("get", false, 200)
            });
        }
        let events = audit.events();
        assert_eq!(events.len(), CAPACITY);
        assert_eq!(events[0].connection, 2);
    }
}
