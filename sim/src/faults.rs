//! Fault injection for the HTTP front: fail chosen requests, drop connections or watches, add latency.
//! Controllers inside the simulator call [`crate::api::Client`] directly and are never faulted.
//!
//! In process: `api.faults().add(FaultRule::nth("patch", "packageinstalls", 2, FaultAction::Drop))`.
//! Out of process, as the kubeconfig's admin (`system:masters`), `POST /_sim/faults` with a
//! [`FaultConfig`]; the answer (and `GET /_sim/faults`) is the configuration now in force:
//!
//! ```json
//! {"clear": true,
//!  "rules": [{"verb": "patch", "resource": "packageinstalls", "name": "tkg", "nth": 2, "times": 1,
//!             "action": {"type": "status", "code": 429, "retryAfterSeconds": 1}},
//!            {"verb": "get", "action": {"type": "drop"}}],
//!  "latencyMs": 50,
//!  "dropWatches": true}
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What happens to a faulted request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer with this HTTP status and a `Status` object (429 and 503 carry `Retry-After`).
    #[serde(rename_all = "camelCase")]
    Status {
        code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_seconds: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Close the connection without answering: over HTTP/2 every other request in flight on it fails
    /// too, as when a real connection breaks.
    Drop,
}

/// "Fail the `nth` request matching verb/resource/name, `times` times in a row."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`; absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Plural resource name (`packageinstalls`); absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The first matching request to fail, counting from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// How many consecutive matching requests fail from `nth` on (default 1; 0 = every one after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule failing the `nth` matching request once.
    pub fn nth(verb: &str, resource: &str, nth: u64, action: FaultAction) -> Self {
        FaultRule {
            verb: Some(verb.into()),
            resource: Some(resource.into()),
            name: None,
            nth: Some(nth),
            times: Some(1),
            action,
        }
    }

    fn matches(&self, verb: &str, resource: &str, name: Option<&str>) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
    }

    /// Whether the `seen`-th matching request (1-based) is faulted.
    fn fires(&self, seen: u64) -> bool {
        let first = self.nth.unwrap_or(1).max(1);
        match self.times.unwrap_or(1) {
            0 => seen >= first,
            n => seen >= first && seen < first + n,
        }
    }
}

/// The whole fault configuration, as `POST /_sim/faults` takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultConfig {
    /// Replace the current rules with none first.
    #[serde(default)]
    pub clear: bool,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Set the latency added to every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// End every open watch now.
    #[serde(default)]
    pub drop_watches: bool,
}

/// The live fault state of a server.
pub struct Faults {
    rules: Mutex<Vec<(FaultRule, u64)>>,
    latency_ms: AtomicU64,
    watch_drops: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            latency_ms: AtomicU64::new(0),
            watch_drops: watch::channel(0).0,
        }
    }
}

impl Faults {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<(FaultRule, u64)>> {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add(&self, rule: FaultRule) {
        self.rules().push((rule, 0));
    }

    pub fn clear(&self) {
        self.rules().clear();
        self.latency_ms.store(0, Ordering::Relaxed);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// Ends every watch open now.
    pub fn drop_watches(&self) {
        self.watch_drops.send_modify(|n| *n += 1);
    }

    /// Fires when [`Faults::drop_watches`] is called.
    pub fn watch_drops(&self) -> watch::Receiver<u64> {
        self.watch_drops.subscribe()
    }

    pub fn apply(&self, config: FaultConfig) {
        if config.clear {
            self.clear();
        }
        for r in config.rules {
            self.add(r);
        }
        if let Some(ms) = config.latency_ms {
            self.set_latency(Duration::from_millis(ms));
        }
        if config.drop_watches {
            self.drop_watches();
        }
    }

    pub fn config(&self) -> FaultConfig {
        FaultConfig {
            clear: false,
            rules: self.rules().iter().map(|(r, _)| r.clone()).collect(),
            latency_ms: Some(self.latency_ms.load(Ordering::Relaxed)),
            drop_watches: false,
        }
    }

    /// Counts a request against every rule; the action of the first rule that fires.
    pub fn check(&self, verb: &str, resource: &str, name: Option<&str>) -> Option<FaultAction> {
        let mut fired = None;
        for (rule, seen) in self.rules().iter_mut() {
            if rule.matches(verb, resource, name) {
                *seen += 1;
                if fired.is_none() && rule.fires(*seen) {
                    fired = Some(rule.action.clone());
                }
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_request_fails_once() {
        let f = Faults::default();
        f.add(FaultRule::nth(
            "patch",
            "packageinstalls",
            2,
            FaultAction::Drop,
        ));
        let got: Vec<bool> = (0..4)
            .map(|_| f.check("patch", "packageinstalls", Some("x")).is_some())
            .collect();
        assert_eq!(got, [false, true, false, false]);
        assert!(f.check("get", "packageinstalls", None).is_none());
    }

    #[test]
    fn rules_parse_from_json() {
        let c: FaultConfig = serde_json::from_str(
            r#"{"rules":[{"verb":"get","resource":"apps","times":0,"action":{"type":"status","code":429,"retryAfterSeconds":1}}],"latencyMs":5}"#,
        )
        .unwrap();
        let f = Faults::default();
        f.apply(c);
        assert_eq!(f.latency(), Duration::from_millis(5));
        for _ in 0..3 {
            assert_eq!(
                f.check("get", "apps", None),
                Some(FaultAction::Status {
                    code: 429,
                    retry_after_seconds: Some(1),
                    message: None
                })
            );
        }
    }
}
