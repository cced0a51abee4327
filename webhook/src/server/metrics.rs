//! Prometheus metrics: requests, per-policy latency, denials, timeouts, errors, reloads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::Mode;
use crate::verdict::{Effect, PolicyOutcome, effect};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    policy: String,
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    policy: String,
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs .. ~5 s
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

/// Every metric the webhook exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    request_duration: Histogram,
    policy_duration: HistogramFamily<PolicyLabels>,
    denials: Family<DenialLabels, Counter>,
    timeouts: Family<PolicyLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    reloads: Family<OutcomeLabels, Counter>,
    policies_loaded: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("supsvc_webhook");
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by outcome (allowed, denied, bad_request, too_large, unavailable)",
            requests.clone(),
        );
        let request_duration = latency_histogram();
        registry.register(
            "admission_request_duration_seconds",
            "Time to answer an admission request, policies included",
            request_duration.clone(),
        );
        let policy_duration: HistogramFamily<PolicyLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "policy_evaluation_duration_seconds",
            "Time of one policy evaluation (fresh instance + validate)",
            policy_duration.clone(),
        );
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register(
            "policy_denials",
            "Requests a policy denied (mode=monitor: would have denied)",
            denials.clone(),
        );
        let timeouts = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "policy_timeouts",
            "Evaluations that hit the policy's timeout",
            timeouts.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "policy_errors",
            "Evaluations without a verdict, by kind (timeout, memory_limit, trap, invalid_output, ...)",
            errors.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reloads",
            "Configuration and module reloads by outcome",
            reloads.clone(),
        );
        let policies_loaded = Gauge::default();
        registry.register(
            "policies_loaded",
            "Policies currently serving",
            policies_loaded.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            policy_duration,
            denials,
            timeouts,
            errors,
            reloads,
            policies_loaded,
        }
    }
}

impl Metrics {
    pub fn request(&self, outcome: &'static str, seconds: f64) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.request_duration.observe(seconds);
    }

    pub fn policy_outcome(&self, outcome: &PolicyOutcome, seconds: f64) {
        let policy = outcome.policy.clone();
        self.policy_duration
            .get_or_create(&PolicyLabels {
                policy: policy.clone(),
            })
            .observe(seconds);
        let mode = match outcome.mode {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        };
        match effect(outcome) {
            Effect::Denied | Effect::MonitoredDenial => {
                self.denials
                    .get_or_create(&DenialLabels { policy, mode })
                    .inc();
            }
            Effect::FailedClosed | Effect::FailedOpen => {
                if let Err(error) = &outcome.result {
                    if error.kind() == "timeout" {
                        self.timeouts
                            .get_or_create(&PolicyLabels {
                                policy: policy.clone(),
                            })
                            .inc();
                    }
                    self.errors
                        .get_or_create(&ErrorLabels {
                            policy,
                            kind: error.kind(),
                        })
                        .inc();
                }
            }
            Effect::Accepted => {}
        }
    }

    pub fn reload(&self, succeeded: bool) {
        let outcome = if succeeded { "success" } else { "failure" };
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn set_policies_loaded(&self, count: usize) {
        self.policies_loaded.set(count as i64);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
