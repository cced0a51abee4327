//! The statuses kapp-controller writes, worded exactly as it words them, and when an App is due.

use std::time::Duration;

use serde_json::{Value, json};

/// The step of a reconcile that failed, and its summary as kapp-controller writes it in the condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Fetch,
    Template,
    Deploy,
}

impl Step {
    fn summary(self) -> &'static str {
        match self {
            Step::Fetch => "Fetching resources: Error (see .status.usefulErrorMessage for details)",
            Step::Template => "Templating dir: Error (see .status.usefulErrorMessage for details)",
            Step::Deploy => "Deploying: Error (see .status.usefulErrorMessage for details)",
        }
    }
}

/// The App is reconciling: conditions replaced, counters kept.
pub fn reconciling(status: &Value, generation: i64) -> Value {
    let mut status = status.clone();
    status["observedGeneration"] = json!(generation);
    status["conditions"] = json!([{"type": "Reconciling", "status": "True"}]);
    status["friendlyDescription"] = json!("Reconciling");
    status
}

/// The App is paused or canceled: the generation is observed, conditions are kept.
pub fn paused(status: &Value, generation: i64) -> Value {
    let mut status = if status.is_object() {
        status.clone()
    } else {
        json!({})
    };
    status["observedGeneration"] = json!(generation);
    status["friendlyDescription"] = json!("Canceled/paused");
    status
}

pub fn succeeded(status: &Value) -> Value {
    let mut status = status.clone();
    status["conditions"] = json!([{"type": "ReconcileSucceeded", "status": "True"}]);
    status["friendlyDescription"] = json!("Reconcile succeeded");
    status["usefulErrorMessage"] = json!("");
    status["consecutiveReconcileSuccesses"] =
        json!(counter(&status, "consecutiveReconcileSuccesses") + 1);
    status["consecutiveReconcileFailures"] = json!(0);
    status
}

pub fn failed(status: &Value, step: Step, useful_error_message: &str) -> Value {
    let mut status = status.clone();
    status["conditions"] =
        json!([{"type": "ReconcileFailed", "status": "True", "message": step.summary()}]);
    status["friendlyDescription"] = json!(format!("Reconcile failed: {}", step.summary()));
    status["usefulErrorMessage"] = json!(useful_error_message);
    status["consecutiveReconcileFailures"] =
        json!(counter(&status, "consecutiveReconcileFailures") + 1);
    status["consecutiveReconcileSuccesses"] = json!(0);
    status
}

fn counter(status: &Value, field: &str) -> i64 {
    status[field].as_i64().unwrap_or(0)
}

/// A PackageInstall's status as kapp-controller's PackageInstall controller writes it
/// (pkg/packageinstall/packageinstall.go): `Reconciling` while the App reconciles or has not observed its
/// generation; `ReconcileSucceeded` with the App; when the App failed, the App's `usefulErrorMessage`
/// and a `ReconcileFailed` condition that only points at it (`Error (see .status.usefulErrorMessage for
/// details)`), the description that pointer's `friendlyErrMsg`; its own generation observed.
pub fn package_install(
    previous: &Value,
    app: Option<&Value>,
    generation: i64,
    version: &str,
) -> Value {
    let mut status = if previous.is_object() {
        previous.clone()
    } else {
        json!({})
    };
    status["observedGeneration"] = json!(generation);
    status["version"] = json!(version);
    status["lastAttemptedVersion"] = json!(version);
    let app_status = app.map(|a| &a["status"]).filter(|s| s.is_object());
    let app_current =
        app.is_some_and(|a| a["metadata"]["generation"] == a["status"]["observedGeneration"]);
    match app_status {
        Some(app_status) if app_current && has(app_status, "ReconcileFailed") => {
            let message = POINTER;
            status["conditions"] =
                json!([{"type": "ReconcileFailed", "status": "True", "message": message}]);
            status["friendlyDescription"] =
                json!(cut_description(&format!("Reconcile failed: {message}")));
            status["usefulErrorMessage"] = app_status["usefulErrorMessage"].clone();
        }
        Some(app_status) if app_current && has(app_status, "ReconcileSucceeded") => {
            status["conditions"] = json!([{"type": "ReconcileSucceeded", "status": "True"}]);
            status["friendlyDescription"] = json!("Reconcile succeeded");
            status["usefulErrorMessage"] = app_status["usefulErrorMessage"].clone();
        }
        Some(app_status) if app_current && !has(app_status, "Reconciling") => {
            // Paused, deleting, or not yet reconciled: the App's own words.
            status["conditions"] = app_status["conditions"].clone();
            let description = app_status["friendlyDescription"].as_str().unwrap_or("");
            status["friendlyDescription"] = json!(cut_description(description));
            status["usefulErrorMessage"] = app_status["usefulErrorMessage"].clone();
        }
        _ => {
            status["conditions"] = json!([{"type": "Reconciling", "status": "True"}]);
            status["friendlyDescription"] = json!("Reconciling");
        }
    }
    status
}

/// A PackageInstall that cannot even resolve its Package.
pub fn package_install_failed(previous: &Value, generation: i64, message: &str) -> Value {
    let mut status = if previous.is_object() {
        previous.clone()
    } else {
        json!({})
    };
    status["observedGeneration"] = json!(generation);
    status["conditions"] =
        json!([{"type": "ReconcileFailed", "status": "True", "message": message}]);
    status["friendlyDescription"] = json!(cut_description(&format!("Reconcile failed: {message}")));
    status["usefulErrorMessage"] = json!(message);
    status
}

/// What a PackageInstall says when its App failed: a pointer to `usefulErrorMessage`.
const POINTER: &str = "Error (see .status.usefulErrorMessage for details)";

fn has(status: &Value, condition: &str) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == condition && c["status"] == "True")
}

/// kapp-controller's `friendlyErrMsg`: first line, 80 bytes.
fn cut_description(description: &str) -> String {
    super::text::friendly_description(description)
}

/// When an App that is neither paused nor forced next has to reconcile, counted from its last attempt.
///
/// Due at once when its generation is not observed; after a failure, `2^failures` seconds (capped
/// at the sync period); after a success, one sync period. Every period is multiplied by `time_scale`.
pub fn due_after(
    generation: i64,
    observed: i64,
    failures: i64,
    sync_period: Duration,
    time_scale: f64,
) -> Duration {
    if generation != observed {
        return Duration::ZERO;
    }
    let period = if failures > 0 {
        let backoff = Duration::from_secs(1u64 << failures.clamp(0, 20));
        backoff.min(sync_period)
    } else {
        sync_period
    };
    period.mul_f64(time_scale)
}

/// Parses a sync period as the App spec writes it (`30s`, `10m`, `1h30m`); kapp-controller's minimum is 30s.
pub fn sync_period(spec: &Value, default: Duration) -> Duration {
    let parsed = spec["syncPeriod"].as_str().and_then(parse_duration);
    parsed.unwrap_or(default).max(Duration::from_secs(30))
}

fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += value * unit;
    }
    number.is_empty().then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_worded_as_kapp_controller_words_it() {
        let status = failed(
            &json!({"consecutiveReconcileFailures": 2}),
            Step::Deploy,
            "kapp: Error: boom",
        );
        assert_eq!(
            status["friendlyDescription"],
            "Reconcile failed: Deploying: Error (see .status.usefulErrorMessage for details)"
        );
        assert_eq!(status["usefulErrorMessage"], "kapp: Error: boom");
        assert_eq!(status["consecutiveReconcileFailures"], 3);
        let status = succeeded(&status);
        assert_eq!(status["friendlyDescription"], "Reconcile succeeded");
        assert_eq!(status["consecutiveReconcileFailures"], 0);
    }

    #[test]
    fn a_package_install_points_at_its_apps_error_and_cuts_long_descriptions() {
        let app = json!({"metadata": {"generation": 3}, "status": failed(&json!({"observedGeneration": 3}), Step::Fetch, "vendir: Error: Syncing directory '0':\n  Syncing")});
        let status = package_install(&json!({}), Some(&app), 1, "3.5.1");
        assert_eq!(
            status["friendlyDescription"],
            "Reconcile failed: Error (see .status.usefulErrorMessage for details)"
        );
        assert_eq!(
            status["conditions"][0]["message"],
            "Error (see .status.usefulErrorMessage for details)"
        );
        assert_eq!(
            status["usefulErrorMessage"],
            "vendir: Error: Syncing directory '0':\n  Syncing"
        );
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["conditions"][0]["type"], "ReconcileFailed");
        // Its own failure, cut as friendlyErrMsg cuts: first line, 80 bytes.
        let own = package_install_failed(
            &json!({}),
            1,
            &format!(
                "Expected to find at least one version, but did not: {}",
                "x".repeat(60)
            ),
        );
        let description = own["friendlyDescription"].as_str().unwrap();
        assert_eq!(description.len(), 80 + "...".len());
        assert!(description.starts_with("Reconcile failed: Expected to find"));
    }

    #[test]
    fn a_package_install_is_reconciling_until_its_app_observes_its_generation() {
        let app = json!({"metadata": {"generation": 4}, "status": succeeded(&json!({"observedGeneration": 3}))});
        let status = package_install(&json!({}), Some(&app), 2, "1.0.0");
        assert_eq!(status["friendlyDescription"], "Reconciling");
        assert_eq!(
            package_install(&json!({}), None, 1, "1.0.0")["friendlyDescription"],
            "Reconciling"
        );
    }

    #[test]
    fn apps_are_due_at_once_on_a_new_generation_then_back_off_exponentially_up_to_the_sync_period()
    {
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(due_after(2, 1, 5, ten_minutes, 1.0), Duration::ZERO);
        assert_eq!(due_after(2, 2, 1, ten_minutes, 1.0), Duration::from_secs(2));
        assert_eq!(due_after(2, 2, 3, ten_minutes, 1.0), Duration::from_secs(8));
        assert_eq!(due_after(2, 2, 12, ten_minutes, 1.0), ten_minutes);
        assert_eq!(due_after(2, 2, 0, ten_minutes, 1.0), ten_minutes);
        assert_eq!(
            due_after(2, 2, 3, ten_minutes, 0.01),
            Duration::from_millis(80)
        );
    }

    #[test]
    fn sync_periods_parse_like_go_durations_with_a_30s_floor() {
        let default = Duration::from_secs(600);
        assert_eq!(
            sync_period(&json!({"syncPeriod": "1h30m"}), default),
            Duration::from_secs(5400)
        );
        assert_eq!(
            sync_period(&json!({"syncPeriod": "5s"}), default),
            Duration::from_secs(30)
        );
        assert_eq!(sync_period(&json!({}), default), default);
        assert_eq!(
            sync_period(&json!({"syncPeriod": "bogus"}), default),
            default
        );
    }
}
