//! What must hold before `fix` writes anything, decided from the same observation `diagnose` makes.
//!
//! `fix` runs KB 437632's procedure: pause the parent, force each child to reconcile, unpause. That
//! repairs one fault only, so it acts on one of these grounds and refuses otherwise:
//! - `kb-signature`: diagnose finds the deadlock (the parent's App waits on failed children, the
//!   corrected Package data in place);
//! - `resumable-run`: a run of its own did not finish (its progress annotation on the parent);
//! - `hand-repair`: someone began the KB's procedure by hand (its `fix-trigger` labels on the
//!   children, or the parent paused without a reason while its App waits on failed children);
//! - `nothing-to-repair`: reconciled; at most leftovers of an earlier run to clean.
//!
//! A pause `fix` did not make is someone's decision (kctrl and the KB pause to hold a service): its
//! run ends by removing it, so it is named with who set it and when (`metadata.managedFields`) and any
//! reason annotation, and `fix` refuses unless told to take it over. A pause without a reason on a
//! service showing the KB's signature is the KB's first step done by hand and is completed.
#![warn(missing_docs, clippy::missing_errors_doc)]

use serde::{Deserialize, Serialize};

use super::{KB_TRIGGER_LABEL, Kind, ObjectRef, PROGRESS_ANNOTATION, ProgressRecord};
use crate::carvel::{Meta, Reconcilable, is_reconciled};
use crate::diagnose::{Code, Finding, Input, Severity};
use crate::kapp;

/// The flag that lets `fix` act without any of its grounds.
pub const FORCE_FLAG: &str = "--force";
/// The flag that lets `fix` take over (and in the end remove) a pause it did not make.
pub const TAKE_OVER_PAUSE_FLAG: &str = "--take-over-pause";

/// A pause (or cancel) on the parent or its App that no run of `fix` recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    /// The paused object: the parent PackageInstall or its App.
    pub object: ObjectRef,
    /// `spec.paused` or `spec.canceled`.
    pub field: String,
    /// The field manager that last wrote the field (`metadata.managedFields[].manager`), when the API
    /// server recorded one.
    pub manager: Option<String>,
    /// That entry's operation (`Update`, `Apply`).
    pub operation: Option<String>,
    /// That entry's time (RFC 3339).
    pub time: Option<String>,
    /// An annotation giving a reason: its key and value.
    pub reason: Option<(String, String)>,
}

impl Pause {
    /// One line: the object and field, who set it and when, the reason.
    pub fn describe(&self) -> String {
        let who = match (&self.manager, &self.time) {
            (Some(m), Some(t)) => format!(
                "set by {m}{} at {t}",
                self.operation
                    .as_deref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default()
            ),
            (Some(m), None) => format!("set by {m}, time not recorded"),
            (None, Some(t)) => format!("last written at {t}, manager not recorded"),
            (None, None) => {
                "who set it and when not recorded (no managedFields entry owns it)".into()
            }
        };
        let why = match &self.reason {
            Some((k, v)) => format!("; reason ({k}): {v:?}"),
            None => "; no reason given".into(),
        };
        format!("{} {}=true, {who}{why}", self.object, self.field)
    }
}

/// Annotation keys read as the reason of a pause: any key with `reason` in it (e.g.
/// [`crate::keys::PAUSE_REASON`]), and kubectl's `kubernetes.io/change-cause`.
pub fn reason_annotation(meta: &Meta) -> Option<(String, String)> {
    meta.annotations
        .iter()
        .filter(|(k, _)| k.as_str() != PROGRESS_ANNOTATION)
        .find(|(k, v)| {
            !v.trim().is_empty()
                && (k.to_ascii_lowercase().contains("reason") || *k == "kubernetes.io/change-cause")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
}

/// The pause on `obj`, if any, with its setter from `managedFields` (the latest entry owning the field).
pub fn pause_of(kind: Kind, obj: &impl Reconcilable) -> Option<Pause> {
    let field = if obj.canceled() {
        "canceled"
    } else if obj.paused() {
        "paused"
    } else {
        return None;
    };
    let meta = obj.meta();
    let setter = meta
        .managed_fields
        .iter()
        .filter(|e| e.subresource.is_none() && e.owns(&["spec", field]))
        .max_by(|a, b| a.time.cmp(&b.time));
    Some(Pause {
        object: ObjectRef::of(kind, obj),
        field: format!("spec.{field}"),
        manager: setter.map(|e| e.manager.clone()).filter(|m| !m.is_empty()),
        operation: setter
            .map(|e| e.operation.clone())
            .filter(|o| !o.is_empty()),
        time: setter.and_then(|e| e.time.clone()),
        reason: reason_annotation(meta),
    })
}

/// The ground `fix` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ground {
    /// `kb-signature`: diagnose finds KB 437632's deadlock.
    KbSignature,
    /// `resumable-run`: a run of `fix` did not finish (its progress annotation on the parent).
    ResumableRun,
    /// `hand-repair`: someone began the KB's procedure by hand.
    HandRepair,
    /// `nothing-to-repair`: reconciled; at most leftovers of an earlier run to clean.
    NothingToRepair,
    /// Healthy under a pause fix did not make; `--take-over-pause` said to take it over and remove it.
    PauseTakenOver,
    /// None held; `--force` said to act anyway.
    Forced,
}

impl Ground {
    /// The ground's name as the plan and `-o json` print it, e.g. `kb-signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ground::KbSignature => "kb-signature",
            Ground::ResumableRun => "resumable-run",
            Ground::HandRepair => "hand-repair",
            Ground::NothingToRepair => "nothing-to-repair",
            Ground::PauseTakenOver => "pause-taken-over",
            Ground::Forced => "forced",
        }
    }
}

/// One precondition and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `kb-signature`, `resumable-run`, `hand-repair`, `nothing-to-repair`, `no-foreign-pause`.
    pub name: String,
    /// Whether it held.
    pub held: bool,
    /// Why, in words.
    pub detail: String,
}

/// Why `fix` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalCode {
    /// None of the grounds holds: the fault is not the one `fix` repairs.
    NotTheKb,
    /// A pause `fix` did not make would be removed.
    ForeignPause,
}

/// A refusal: why, what to do instead, and the flag that overrides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why, as a stable code.
    pub code: RefusalCode,
    /// Why, in words.
    pub why: String,
    /// What to run or do instead, in order.
    pub instead: Vec<String>,
    /// The flag that overrides the refusal ([`FORCE_FLAG`] or [`TAKE_OVER_PAUSE_FLAG`]); `override` in
    /// JSON.
    #[serde(rename = "override")]
    pub override_flag: String,
}

/// What the operator allowed beyond the grounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--force`: act although no ground holds.
    pub force: bool,
    /// `--take-over-pause`: act although a pause `fix` did not make is there, and remove it in the end.
    pub take_over_pause: bool,
}

/// The verdict on the preconditions, for the plan, `--dry-run`, `diagnose -o json` and the refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// The ground `fix` acts on; `None` when it refuses.
    pub ground: Option<Ground>,
    /// Every precondition and whether it held.
    pub checks: Vec<Check>,
    /// Pauses no run of `fix` made (named in the plan even when taken over).
    pub foreign_pauses: Vec<Pause>,
    /// Why `fix` refuses; `None` when it may act.
    pub refusal: Option<Refusal>,
}

impl Preconditions {
    /// Whether `fix` may write.
    pub fn may_act(&self) -> bool {
        self.refusal.is_none()
    }
}

/// Whether the parent's or its App's error says kapp waits on a failed child PackageInstall,
/// whatever the parent's state now (a paused parent keeps its App's last error).
fn waits_on_failed_children(input: &Input) -> bool {
    let messages = std::iter::once(input.parent.reconcile_status())
        .chain(input.app.iter().map(|a| a.reconcile_status()))
        .filter_map(|s| s.useful_error_message.as_deref());
    messages
        .flat_map(kapp::parse_failures)
        .any(|f| f.is_failed_wait() && f.kind == "packageinstall")
}

/// Decides whether `fix` may act on what diagnose observed and found.
pub fn check(input: &Input, findings: &[Finding], overrides: Overrides) -> Preconditions {
    let parent = &input.parent;
    let service = parent.metadata.name.as_str();
    let ns = parent.metadata.ns();
    let mut checks = Vec::new();
    let mut check = |name: &str, held: bool, detail: String| {
        checks.push(Check {
            name: name.into(),
            held,
            detail,
        });
        held
    };

    let progress = parent.metadata.annotations.get(PROGRESS_ANNOTATION);
    let resumable = match progress.map(|v| ProgressRecord::parse(v)) {
        Some(Ok(p)) => check(
            "resumable-run",
            true,
            format!(
                "run {} of `kubectl supsvc fix` stopped after step \"{}\"",
                p.run, p.step
            ),
        ),
        Some(Err(_)) => check(
            "resumable-run",
            false,
            format!("annotation {PROGRESS_ANNOTATION} is there but not one supsvc wrote"),
        ),
        None => check(
            "resumable-run",
            false,
            format!("no annotation {PROGRESS_ANNOTATION} on pkgi/{service}"),
        ),
    };

    let deadlock = findings.iter().any(|f| f.code == Code::ReconcileDeadlock);
    let waiting = waits_on_failed_children(input);
    // The children corrected already (e.g. by `override-image`) while the parent still waits out its
    // backoff: the same fault, nothing else found.
    let other_fault = findings.iter().any(|f| {
        f.severity == Severity::Error
            && matches!(
                f.code,
                Code::FetchFailed
                    | Code::ImmutableFieldChange
                    | Code::PublicRegistryReference
                    | Code::AppMissing
            )
    });
    let parent_failing = matches!(
        crate::carvel::state(parent),
        crate::carvel::State::ReconcileFailed | crate::carvel::State::Reconciling
    );
    let kb = check(
        "kb-signature",
        deadlock || (waiting && parent_failing && !other_fault),
        if deadlock {
            "diagnose finds KB 437632's deadlock: the App waits on failed children and the corrected package data is in place".into()
        } else if waiting && parent_failing && !other_fault {
            "the App still waits on children that failed, and diagnose finds no other fault: the children's data is corrected, the parent has not retried yet".into()
        } else {
            "diagnose does not find KB 437632's deadlock".into()
        },
    );

    // Pauses no run recorded: with a progress annotation, the parent's pause is the run's own.
    let mut pauses: Vec<Pause> = Vec::new();
    if !resumable {
        pauses.extend(pause_of(Kind::PackageInstall, parent));
        // The PackageInstall controller copies the parent's pause onto its App: only an App paused on
        // its own is a pause of its own.
        if pauses.is_empty() {
            pauses.extend(input.app.as_ref().and_then(|a| pause_of(Kind::App, a)));
        }
    }
    let labelled: Vec<String> = input
        .children
        .iter()
        .filter(|c| c.metadata.labels.contains_key(KB_TRIGGER_LABEL))
        .map(|c| format!("pkgi/{} -n {}", c.metadata.name, c.metadata.ns()))
        .collect();
    let unexplained_pause = !pauses.is_empty() && pauses.iter().all(|p| p.reason.is_none());
    // The KB's steps done by hand, on a service that shows what the KB is about (its App waiting on
    // failed children): labels or a pause on any other failure are not the KB's.
    let by_hand = !resumable && waiting && (!labelled.is_empty() || unexplained_pause);
    check(
        "hand-repair",
        by_hand,
        match (by_hand, labelled.is_empty(), unexplained_pause) {
            (true, false, _) => format!(
                "the KB's label {KB_TRIGGER_LABEL} is on {} and the App waits on failed children",
                labelled.join(", ")
            ),
            (true, true, _) => "the parent is paused without a reason while its App waits on failed children: the KB's first step, done by hand".into(),
            (false, false, _) | (false, _, true) => format!(
                "the KB's steps were begun by hand ({}), but the App does not wait on failed children: not the KB's fault",
                if labelled.is_empty() { "a pause".to_owned() } else { format!("{KB_TRIGGER_LABEL} on {}", labelled.join(", ")) }
            ),
            (false, true, false) => format!(
                "no {KB_TRIGGER_LABEL} labels, no reasonless pause of a service waiting on its children"
            ),
        },
    );

    let reconciled = is_reconciled(parent)
        && input.app.as_ref().is_some_and(is_reconciled)
        && input.children.iter().all(is_reconciled);
    // What the objects showed before they were paused: a pause keeps the conditions.
    let succeeded = |s: &crate::carvel::ReconcileStatus| {
        s.conditions
            .iter()
            .any(|c| c.kind == "ReconcileSucceeded" && c.status == "True")
    };
    let healthy_under_pause = succeeded(parent.reconcile_status())
        && input
            .app
            .as_ref()
            .is_some_and(|a| succeeded(a.reconcile_status()))
        && input.children.iter().all(is_reconciled);
    let nothing = check(
        "nothing-to-repair",
        reconciled && pauses.is_empty(),
        if reconciled {
            "parent, App and children show Reconcile succeeded for their current generation".into()
        } else {
            "not every object is reconciled".into()
        },
    );

    let begun_by_hand = by_hand && unexplained_pause;
    let foreign = !resumable && !pauses.is_empty() && !begun_by_hand;
    check(
        "no-foreign-pause",
        !foreign,
        if pauses.is_empty() {
            "nothing is paused but by fix itself".into()
        } else {
            pauses
                .iter()
                .map(Pause::describe)
                .collect::<Vec<_>>()
                .join("; ")
        },
    );

    let refuse = |code: RefusalCode, why: String, instead: Vec<String>, flag: &str| Refusal {
        code,
        why,
        instead,
        override_flag: flag.into(),
    };
    let mut refusal = None;
    let ground = if resumable {
        Some(Ground::ResumableRun)
    } else if foreign && !overrides.take_over_pause {
        let named: Vec<String> = pauses.iter().map(Pause::describe).collect();
        let object = &pauses[0].object;
        refusal = Some(refuse(
            RefusalCode::ForeignPause,
            format!(
                "{service} is paused, and not by kubectl supsvc fix: {}. fix's run ends by removing the pause, and kapp would then redeploy over whatever it holds.",
                named.join("; ")
            ),
            vec![
                "ask whoever set the pause why; when the hold is over they remove it, or you do:"
                    .into(),
                format!(
                    "kubectl patch {}/{} -n {} --type=merge -p '{{\"spec\":{{\"{}\":null}}}}'",
                    object.resource(),
                    object.name,
                    object.namespace,
                    pauses[0].field.trim_start_matches("spec.")
                ),
                format!(
                    "or let fix take the pause over and remove it at the end: kubectl supsvc fix {service} {TAKE_OVER_PAUSE_FLAG}"
                ),
            ],
            TAKE_OVER_PAUSE_FLAG,
        ));
        None
    } else if kb {
        Some(Ground::KbSignature)
    } else if by_hand {
        Some(Ground::HandRepair)
    } else if nothing {
        Some(Ground::NothingToRepair)
    } else if foreign && overrides.take_over_pause && healthy_under_pause {
        Some(Ground::PauseTakenOver)
    } else if overrides.force {
        Some(Ground::Forced)
    } else {
        let errors: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        let what = match errors.first() {
            Some(f) => format!("diagnose finds instead: {}", f.what),
            None => "diagnose finds no failure it can name".to_owned(),
        };
        let mut instead: Vec<String> = errors.first().map(|f| f.remedy.clone()).unwrap_or_default();
        instead.push(format!(
            "kubectl supsvc diagnose {service} -n {ns}   # the whole picture"
        ));
        instead.push(format!(
            "kubectl supsvc fix {service} {FORCE_FLAG}   # only if you know a forced re-reconcile of the children is what is missing"
        ));
        refusal = Some(refuse(
            RefusalCode::NotTheKb,
            format!(
                "{service} does not show the fault fix repairs (KB 437632: the App waiting on failed children, the corrected package data in place), nor a run or a hand repair to finish. {what}"
            ),
            instead,
            FORCE_FLAG,
        ));
        None
    };
    Preconditions {
        ground,
        checks,
        foreign_pauses: pauses,
        refusal,
    }
}

#[cfg(test)]
mod tests;
