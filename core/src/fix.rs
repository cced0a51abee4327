//! The repair of KB 437632 as a state machine.
//!
//! [`next_step`] maps what was observed — the parent PackageInstall, its App, the child PackageInstalls
//! and the run's own progress annotation on the parent — to the next thing to do. The caller performs
//! it, observes again and repeats. A run that was killed is resumed by the same loop: the annotation
//! says which run it was and how far it got, and the objects say the rest.
//!
//! The steps, in order: pause the parent; wait until its App shows `Canceled/paused` for its current
//! generation; label every child with a value unique to the run (a change kapp-controller must
//! reconcile, so each child re-resolves its corrected Package); unpause the parent; toggle the App's
//! pause (an immediate App reconcile); wait until parent, App and children are reconciled; remove the
//! trigger labels kapp has not already dropped as drift; remove the annotation.
//!
//! Every write is a JSON merge patch: removing a field with `null` succeeds whether or not the field is
//! still there, which is what makes the App toggle safe against the PackageInstall controller rewriting
//! `spec.paused` under us (a JSON-patch `remove` would answer 422 once the field is gone).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::carvel::{App, PackageInstall, Reconcilable, is_reconciled};

pub mod preconditions;

/// Annotation on the parent PackageInstall recording a run's id and the last step it completed.
pub const PROGRESS_ANNOTATION: &str = crate::keys::FIX_PROGRESS;
/// Label put on every child; its value is the run id, so every run is a change.
pub const TRIGGER_LABEL: &str = crate::keys::FIX_TRIGGER;
/// The label the KB's commands put on the children by hand.
pub const KB_TRIGGER_LABEL: &str = "fix-trigger";

/// A run's id: a valid label value (at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

/// A string that cannot be a [`RunId`] (the string is carried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run id {0:?}: must be a label value")]
pub struct RunIdError(pub String);

impl RunId {
    /// A run id from a string.
    ///
    /// # Errors
    /// [`RunIdError`] when the string is empty or not a valid Kubernetes label value.
    ///
    /// ```rust
    /// use supsvc_core::fix::RunId;
    ///
    /// assert_eq!(RunId::new("fix-20261130-1651").unwrap().as_str(), "fix-20261130-1651");
    /// assert!(RunId::new("").is_err());
    /// assert!(RunId::new("-starts-with-a-dash").is_err());
    /// ```
    pub fn new(s: impl Into<String>) -> Result<Self, RunIdError> {
        let s = s.into();
        if is_valid_label_value(&s) && !s.is_empty() {
            Ok(RunId(s))
        } else {
            Err(RunIdError(s))
        }
    }

    /// The id as text (the value of [`TRIGGER_LABEL`]).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = RunIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RunId::new(s)
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> Self {
        r.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Kubernetes' rule for label values.
pub fn is_valid_label_value(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && alnum(s.chars().next())
        && alnum(s.chars().last())
}

/// The last step a run completed, as recorded on the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recorded {
    /// The parent was paused.
    Paused,
    /// Every child was labelled with the run's trigger label.
    Labelled,
    /// The parent was unpaused.
    Unpaused,
    /// The App's pause was toggled.
    Toggled,
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Recorded::Paused => "paused",
            Recorded::Labelled => "labelled",
            Recorded::Unpaused => "unpaused",
            Recorded::Toggled => "toggled",
        })
    }
}

/// The value of [`PROGRESS_ANNOTATION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// The run.
    pub run: RunId,
    /// The last step it completed.
    pub step: Recorded,
}

impl ProgressRecord {
    /// Parses the annotation's value: JSON `{"run": "<id>", "step": "<recorded>"}`.
    ///
    /// # Errors
    /// [`FixError::BadProgress`] when the value is not such a JSON object.
    pub fn parse(value: &str) -> Result<Self, FixError> {
        serde_json::from_str(value).map_err(|e| FixError::BadProgress {
            value: value.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The annotation's value, as JSON (see [`ProgressRecord::parse`]).
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The run's progress recorded on a PackageInstall, if any.
    ///
    /// # Errors
    /// [`FixError::BadProgress`] when the annotation is there but not one supsvc wrote.
    pub fn of(parent: &PackageInstall) -> Result<Option<Self>, FixError> {
        parent
            .metadata
            .annotations
            .get(PROGRESS_ANNOTATION)
            .map(|v| ProgressRecord::parse(v))
            .transpose()
    }
}

/// Why `fix` cannot proceed from what it observed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixError {
    /// The parent PackageInstall (its name) has a deletion timestamp.
    #[error("packageinstall/{0} is being deleted")]
    ParentDeleting(String),
    /// The parent's App (its name) does not exist.
    #[error("app/{0} does not exist: the PackageInstall controller has not created it")]
    AppMissing(String),
    /// The parent's [`PROGRESS_ANNOTATION`] cannot be read as a [`ProgressRecord`].
    #[error("annotation {PROGRESS_ANNOTATION}={value:?} is not one supsvc wrote: {reason}")]
    BadProgress {
        /// The annotation's value.
        value: String,
        /// The JSON parser's message.
        reason: String,
    },
}

/// The kinds `fix` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// `packageinstalls.packaging.carvel.dev`.
    PackageInstall,
    /// `apps.kappctrl.k14s.io`.
    App,
}

/// An object `fix` reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// The reference to a PackageInstall or App (`kind` says which) by its metadata.
    pub fn of(kind: Kind, obj: &impl Reconcilable) -> Self {
        ObjectRef {
            kind,
            namespace: obj.meta().ns().to_owned(),
            name: obj.meta().name.clone(),
        }
    }

    /// The resource as `kubectl` names it unambiguously.
    pub fn resource(&self) -> &'static str {
        match self.kind {
            Kind::PackageInstall => "packageinstall.packaging.carvel.dev",
            Kind::App => "app.kappctrl.k14s.io",
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `pkgi/<name> -n <ns>` or `app/<name> -n <ns>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = match self.kind {
            Kind::PackageInstall => "pkgi",
            Kind::App => "app",
        };
        write!(f, "{short}/{} -n {}", self.name, self.namespace)
    }
}

/// One write: a JSON merge patch on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// The object to patch.
    pub target: ObjectRef,
    /// The JSON merge patch (RFC 7386) to apply.
    pub patch: Value,
    /// What it does, in words.
    pub what: String,
}

impl Write {
    /// The same write as a `kubectl` command, for plans and for operators who want to do it by hand.
    pub fn kubectl(&self) -> String {
        format!(
            "kubectl patch {}/{} -n {} --type=merge -p '{}'",
            self.target.resource(),
            self.target.name,
            self.target.namespace,
            self.patch
        )
    }
}

/// Writes to perform: batches in order; the writes of one batch are independent and may run at once.
pub type Batches = Vec<Vec<Write>>;

/// What was observed, read fresh before every step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// The service's PackageInstall.
    pub parent: PackageInstall,
    /// The parent's App, `None` when it does not exist.
    pub app: Option<App>,
    /// The PackageInstalls the parent's App deployed.
    pub children: Vec<PackageInstall>,
}

impl Observation {
    fn parent_ref(&self) -> ObjectRef {
        ObjectRef::of(Kind::PackageInstall, &self.parent)
    }

    fn app_ref(&self) -> ObjectRef {
        // The App a PackageInstall creates has its name and namespace.
        ObjectRef {
            kind: Kind::App,
            ..self.parent_ref()
        }
    }

    fn child_refs<'a>(&'a self, keep: impl Fn(&PackageInstall) -> bool + 'a) -> Vec<ObjectRef> {
        self.children
            .iter()
            .filter(|c| keep(c))
            .map(|c| ObjectRef::of(Kind::PackageInstall, c))
            .collect()
    }

    fn trigger_labelled(&self) -> Vec<ObjectRef> {
        self.child_refs(|c| c.metadata.labels.contains_key(TRIGGER_LABEL))
    }

    /// What is not reconciled yet: parent, App, then each child.
    pub fn pending(&self) -> Vec<ObjectRef> {
        let mut pending = Vec::new();
        if !is_reconciled(&self.parent) {
            pending.push(self.parent_ref());
        }
        if !self.app.as_ref().is_some_and(is_reconciled) {
            pending.push(self.app_ref());
        }
        pending.extend(self.child_refs(|c| !is_reconciled(c)));
        pending
    }

    /// Reconciled, unpaused, and nothing of a run left behind.
    pub fn is_healthy(&self) -> bool {
        self.pending().is_empty()
            && !self
                .parent
                .metadata
                .annotations
                .contains_key(PROGRESS_ANNOTATION)
            && self.trigger_labelled().is_empty()
    }
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Reconciled and clean: nothing to do.
    Healthy,
    /// Pause the parent and record the run on it.
    Pause,
    /// Wait until the App shows `Canceled/paused` with `observedGeneration == generation`.
    WaitPaused,
    /// Label these children (those without this run's value), then record it.
    LabelChildren {
        /// The children to label.
        children: Vec<ObjectRef>,
    },
    /// Unpause the parent.
    Unpause,
    /// Pause then unpause the App: an App reconcile now rather than at the next sync period.
    ToggleApp,
    /// The App is still paused after the toggle: unpause it.
    UnpauseApp,
    /// Wait until every one of these is reconciled.
    WaitReconciled {
        /// The objects not reconciled yet.
        pending: Vec<ObjectRef>,
    },
    /// Remove the trigger label from the children that still carry it.
    RemoveTriggerLabels {
        /// The children that still carry a trigger label.
        children: Vec<ObjectRef>,
    },
    /// Remove the progress annotation: the run is over.
    Finish,
}

impl Step {
    /// Whether the step waits on the controllers rather than writing.
    pub fn is_wait(&self) -> bool {
        matches!(self, Step::WaitPaused | Step::WaitReconciled { .. })
    }
}

/// A step in the context of its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// The step.
    pub step: Step,
    /// The run this step belongs to (`None` when healthy or only cleaning up leftovers).
    pub run: Option<RunId>,
    /// The progress found on the parent when it is an earlier run's: this run resumes it.
    pub resumed: Option<ProgressRecord>,
    /// The parent PackageInstall.
    pub parent: ObjectRef,
    /// The parent's App.
    pub app: ObjectRef,
}

fn record(run: &RunId, step: Recorded) -> Value {
    Value::String(
        ProgressRecord {
            run: run.clone(),
            step,
        }
        .to_annotation(),
    )
}

impl NextStep {
    /// The writes that perform the step, in batches.
    pub fn writes(&self) -> Batches {
        let parent = &self.parent;
        let app = &self.app;
        let run = self.run.as_ref();
        let w = |target: &ObjectRef, patch: Value, what: String| Write {
            target: target.clone(),
            patch,
            what,
        };
        match (&self.step, run) {
            (Step::Healthy | Step::WaitPaused | Step::WaitReconciled { .. }, _) => Vec::new(),
            (Step::Pause, Some(run)) => vec![vec![w(
                parent,
                json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: record(run, Recorded::Paused)}},
                       "spec": {"paused": true}}),
                format!("pause {parent} and record run {run}"),
            )]],
            (Step::LabelChildren { children }, Some(run)) => vec![
                children
                    .iter()
                    .map(|c| {
                        w(
                            c,
                            json!({"metadata": {"labels": {TRIGGER_LABEL: run.as_str()}}}),
                            format!("label {c} {TRIGGER_LABEL}={run}"),
                        )
                    })
                    .collect(),
                vec![w(
                    parent,
                    json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: record(run, Recorded::Labelled)}}}),
                    format!("record on {parent} that the children are labelled"),
                )],
            ],
            (Step::Unpause, Some(run)) => vec![vec![w(
                parent,
                json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: record(run, Recorded::Unpaused)}},
                       "spec": {"paused": null}}),
                format!("unpause {parent}"),
            )]],
            (Step::ToggleApp, Some(run)) => vec![
                vec![w(
                    app,
                    json!({"spec": {"paused": true}}),
                    format!("pause {app}"),
                )],
                vec![w(
                    app,
                    json!({"spec": {"paused": null}}),
                    format!("unpause {app}"),
                )],
                vec![w(
                    parent,
                    json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: record(run, Recorded::Toggled)}}}),
                    format!("record on {parent} that the App was toggled"),
                )],
            ],
            (Step::UnpauseApp, _) => vec![vec![w(
                app,
                json!({"spec": {"paused": null}}),
                format!("unpause {app}"),
            )]],
            (Step::RemoveTriggerLabels { children }, _) => vec![
                children
                    .iter()
                    .map(|c| {
                        w(
                            c,
                            json!({"metadata": {"labels": {TRIGGER_LABEL: null}}}),
                            format!("remove label {TRIGGER_LABEL} from {c}"),
                        )
                    })
                    .collect(),
            ],
            (Step::Finish, _) => vec![vec![w(
                parent,
                json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: null}}}),
                format!("remove annotation {PROGRESS_ANNOTATION} from {parent}"),
            )]],
            // Steps that need a run always get one from `next_step`.
            (Step::Pause | Step::LabelChildren { .. } | Step::Unpause | Step::ToggleApp, None) => {
                Vec::new()
            }
        }
    }
}

/// Decides the next step from what was observed. `new_run` is used only when no run is in progress.
///
/// # Errors
/// [`FixError::ParentDeleting`], [`FixError::AppMissing`] or [`FixError::BadProgress`]: the observed
/// state is one `fix` must not act on.
pub fn next_step(obs: &Observation, new_run: &RunId) -> Result<NextStep, FixError> {
    let parent = &obs.parent;
    if parent.metadata.deletion_timestamp.is_some() {
        return Err(FixError::ParentDeleting(parent.metadata.name.clone()));
    }
    let progress = ProgressRecord::of(parent)?;
    let decide = |step: Step, run: Option<RunId>| NextStep {
        step,
        run,
        resumed: progress.clone().filter(|p| &p.run != new_run),
        parent: obs.parent_ref(),
        app: obs.app_ref(),
    };
    let Some(app) = obs.app.as_ref() else {
        // Without an App there is nothing to pause against; never start, but never strand a pause either.
        if parent.spec.paused && progress.is_some() {
            return Ok(decide(
                Step::Unpause,
                progress.as_ref().map(|p| p.run.clone()),
            ));
        }
        return Err(FixError::AppMissing(parent.metadata.name.clone()));
    };
    let Some(progress) = progress.clone() else {
        if obs.is_healthy() {
            return Ok(decide(Step::Healthy, None));
        }
        if obs.pending().is_empty() {
            // Reconciled, only leftovers of an earlier run: clean them.
            return Ok(decide(
                Step::RemoveTriggerLabels {
                    children: obs.trigger_labelled(),
                },
                None,
            ));
        }
        return Ok(decide(Step::Pause, Some(new_run.clone())));
    };
    let run = progress.run.clone();
    let step = match progress.step {
        Recorded::Paused | Recorded::Labelled => {
            let unlabelled = obs.child_refs(|c| {
                c.metadata.labels.get(TRIGGER_LABEL).map(String::as_str) != Some(run.as_str())
            });
            if !parent.spec.paused {
                Step::Pause
            } else if !app.is_pause_observed() {
                Step::WaitPaused
            } else if progress.step == Recorded::Paused || !unlabelled.is_empty() {
                Step::LabelChildren {
                    children: unlabelled,
                }
            } else {
                Step::Unpause
            }
        }
        Recorded::Unpaused => {
            if parent.spec.paused {
                Step::Unpause
            } else {
                Step::ToggleApp
            }
        }
        Recorded::Toggled => {
            let pending = obs.pending();
            if parent.spec.paused {
                Step::Unpause
            } else if app.spec.paused {
                Step::UnpauseApp
            } else if !pending.is_empty() {
                Step::WaitReconciled { pending }
            } else if !obs.trigger_labelled().is_empty() {
                Step::RemoveTriggerLabels {
                    children: obs.trigger_labelled(),
                }
            } else {
                Step::Finish
            }
        }
    };
    Ok(decide(step, Some(run)))
}

/// The writes that end a run early (error, timeout, Ctrl-C) without leaving anything paused:
/// unpause the parent and the App, remove this run's trigger labels and the annotation.
pub fn abort(obs: &Observation) -> Batches {
    let parent = obs.parent_ref();
    let app = obs.app_ref();
    let mut batches = Vec::new();
    let has_progress = obs
        .parent
        .metadata
        .annotations
        .contains_key(PROGRESS_ANNOTATION);
    if obs.parent.spec.paused || has_progress {
        batches.push(vec![Write {
            patch: json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: null}}, "spec": {"paused": null}}),
            what: format!("unpause {parent} and end the run"),
            target: parent,
        }]);
    }
    if obs.app.as_ref().is_some_and(|a| a.spec.paused) {
        batches.push(vec![Write {
            patch: json!({"spec": {"paused": null}}),
            what: format!("unpause {app}"),
            target: app,
        }]);
    }
    let labelled = obs.trigger_labelled();
    if !labelled.is_empty() {
        batches.push(
            labelled
                .into_iter()
                .map(|c| Write {
                    patch: json!({"metadata": {"labels": {TRIGGER_LABEL: null}}}),
                    what: format!("remove label {TRIGGER_LABEL} from {c}"),
                    target: c,
                })
                .collect(),
        );
    }
    batches
}

/// One line of a plan: a write, or a wait on the controllers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum PlanItem {
    /// A write.
    Write(Write),
    /// A wait on the controllers.
    Wait {
        /// What must hold before the run goes on, in words.
        until: String,
    },
}

/// Every write a run will make from here, in order, assuming the controllers do their part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The run, as in [`NextStep::run`].
    pub run: Option<RunId>,
    /// The earlier run this one resumes, as in [`NextStep::resumed`].
    pub resumed: Option<ProgressRecord>,
    /// Writes and waits, in order.
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The plan's writes, in order, without the waits.
    pub fn writes(&self) -> impl Iterator<Item = &Write> {
        self.items.iter().filter_map(|i| match i {
            PlanItem::Write(w) => Some(w),
            PlanItem::Wait { .. } => None,
        })
    }
}

/// The plan from the observed state: the next step and every step after it.
///
/// # Errors
/// As [`next_step`].
pub fn plan(obs: &Observation, new_run: &RunId) -> Result<Plan, FixError> {
    let first = next_step(obs, new_run)?;
    let all_children = || obs.child_refs(|_| true);
    // The rest of a run after each step, in order.
    let sequence = [
        Step::Pause,
        Step::WaitPaused,
        Step::LabelChildren {
            children: all_children(),
        },
        Step::Unpause,
        Step::ToggleApp,
        Step::WaitReconciled {
            pending: Vec::new(),
        },
        Step::RemoveTriggerLabels {
            children: all_children(),
        },
        Step::Finish,
    ];
    let position = |s: &Step| {
        sequence
            .iter()
            .position(|t| std::mem::discriminant(t) == std::mem::discriminant(s))
    };
    let mut steps = vec![first.step.clone()];
    match &first.step {
        Step::Healthy => steps.clear(),
        // Cleaning an earlier run's leftovers is the whole plan.
        _ if first.run.is_none() => {}
        Step::UnpauseApp => steps.extend(sequence[5..].iter().cloned()),
        s => {
            if let Some(i) = position(s) {
                steps.extend(sequence[i + 1..].iter().cloned());
            }
        }
    }
    let mut items = Vec::new();
    for step in steps {
        let until = match &step {
            Step::WaitPaused => Some(format!(
                "{} shows Canceled/paused for its current generation",
                first.app
            )),
            Step::WaitReconciled { .. } => Some(format!(
                "{}, its App and every child show ReconcileSucceeded with observedGeneration == generation",
                first.parent
            )),
            _ => None,
        };
        if let Some(until) = until {
            items.push(PlanItem::Wait { until });
            continue;
        }
        let d = NextStep {
            step,
            ..first.clone()
        };
        items.extend(d.writes().into_iter().flatten().map(PlanItem::Write));
    }
    Ok(Plan {
        run: first.run,
        resumed: first.resumed,
        items,
    })
}

#[cfg(test)]
mod tests;
