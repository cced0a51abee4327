//! `kubectl supsvc fix [SERVICE]`: observe, ask core for the next step, perform it, repeat.
//!
//! Every decision is `supsvc_core::fix::next_step`; this module only reads, writes, waits, reports,
//! and makes sure that whatever happens after the pause (error, timeout, Ctrl-C) the service is
//! unpaused before the process exits.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::try_join_all;
use serde::Serialize;
use supsvc_core::carvel::{self, Reconcilable, State};
use supsvc_core::diagnose::diagnose;
use supsvc_core::fix::preconditions::{self, Overrides, Preconditions, Refusal};
use supsvc_core::fix::{self, FixError, NextStep, Observation, Plan, PlanItem, RunId, Step};
use supsvc_core::image::RegistryPolicy;
use tokio::time::Instant;

use crate::api::{self, SupervisorApi};
use crate::cli::{DryRun, FixArgs, Output};
use crate::cmd::Session;
use crate::error::{Exit, Failure, Result};
use crate::observe::{self, Children};
use crate::output::{render, truncate};
use crate::progress::ProgressPrinter;
use kube::api::ApiResource;

/// A run id unique enough for one Supervisor: the time and the process id.
pub fn new_run_id() -> RunId {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dt%H%M%S").to_string();
    RunId::new(format!("{stamp}-{:x}", std::process::id()))
        .or_else(|_| RunId::new("supsvc-run"))
        .expect("a constant label value")
}

fn core_failure(e: FixError, namespace: &str) -> Failure {
    let hint = match &e {
        FixError::ParentDeleting(_) => {
            "wait until the deletion finishes; there is nothing to fix".to_owned()
        }
        FixError::AppMissing(name) => format!(
            "read the PackageInstall's status: kubectl get pkgi {name} -n {namespace} -o yaml"
        ),
        FixError::BadProgress { .. } => format!(
            "if no other tool wrote it, remove it: kubectl annotate pkgi <service> -n {namespace} {}-",
            fix::PROGRESS_ANNOTATION
        ),
    };
    Failure::new(e.to_string(), hint)
}

/// The preconditions as printed with the plan: the one that held, every pause fix did not make.
pub fn render_preconditions(p: &Preconditions) -> String {
    let mut out = String::new();
    if let Some(g) = p.ground {
        let detail = p
            .checks
            .iter()
            .find(|c| c.name == g.as_str())
            .map(|c| format!(": {}", c.detail))
            .unwrap_or_default();
        out.push_str(&format!("Precondition held: {}{detail}.\n", g.as_str()));
    }
    for c in p.checks.iter().filter(|c| !c.held) {
        out.push_str(&format!(
            "Precondition not held: {}: {}.\n",
            c.name, c.detail
        ));
    }
    for pause in &p.foreign_pauses {
        out.push_str(&format!(
            "Existing pause, not made by fix: {}.{}\n",
            pause.describe(),
            if p.refusal.is_none() {
                " This run takes it over and removes it at its end."
            } else {
                ""
            }
        ));
    }
    out
}

/// The failure that refuses a run: why, what to do instead, the flag that overrides it.
pub fn refusal_failure(service: &str, target: &str, r: &Refusal) -> Failure {
    Failure::new(
        format!(
            "refusing to fix {service} on {target}, nothing was changed: {}",
            r.why
        ),
        format!(
            "{}\n  (to override: {})",
            r.instead.join("\n  "),
            r.override_flag
        ),
    )
}

/// The plan as printed before asking.
pub fn render_plan(
    plan: &Plan,
    preconditions: &Preconditions,
    service: &str,
    target: &str,
    children: usize,
) -> String {
    let mut out = format!("Plan for {service} on {target}, {children} child PackageInstall(s):\n");
    out.push_str(&render_preconditions(preconditions));
    if let Some(r) = &plan.resumed {
        out.push_str(&format!(
            "Resuming run {} of an earlier `kubectl supsvc fix`, which stopped after step \"{}\".\n",
            r.run, r.step
        ));
    }
    for (i, item) in plan.items.iter().enumerate() {
        match item {
            PlanItem::Write(w) => out.push_str(&format!(
                "{:>3}. {}\n       {}\n",
                i + 1,
                w.what,
                w.kubectl()
            )),
            PlanItem::Wait { until } => {
                out.push_str(&format!("{:>3}. wait until {until}\n", i + 1))
            }
        }
    }
    out
}

#[derive(Serialize)]
struct PlanOutput<'a> {
    service: &'a str,
    cluster: &'a str,
    context: &'a str,
    server: &'a str,
    #[serde(flatten)]
    plan: &'a Plan,
    /// Which precondition held, or why fix refuses.
    preconditions: &'a Preconditions,
}

/// The state and description of each object, to print a line only when one changes.
#[derive(Default)]
struct Tracker {
    last: BTreeMap<String, (State, String)>,
}

impl Tracker {
    fn changes(&mut self, obs: &Observation) -> Vec<String> {
        let mut lines = Vec::new();
        let mut note = |key: String, obj: &dyn Reconcilable| {
            let state = carvel::state(obj);
            let desc = obj
                .reconcile_status()
                .friendly_description
                .clone()
                .unwrap_or_default();
            let gen_note = match obj.reconcile_status().observed_generation {
                Some(og) if og != obj.meta().generation => {
                    format!(" (generation {} not yet observed)", obj.meta().generation)
                }
                _ => String::new(),
            };
            let entry = (state, desc.clone());
            if self.last.get(&key) != Some(&entry) {
                lines.push(format!(
                    "{key}: {state}{}{gen_note}",
                    if desc.is_empty() || desc == state.to_string() {
                        String::new()
                    } else {
                        format!(" — {}", truncate(&desc, 100))
                    }
                ));
                self.last.insert(key, entry);
            }
        };
        note(format!("pkgi/{}", obs.parent.metadata.name), &obs.parent);
        if let Some(app) = &obs.app {
            note(format!("app/{}", app.metadata.name), app);
        }
        for c in &obs.children {
            note(
                format!("pkgi/{} -n {}", c.metadata.name, c.metadata.ns()),
                c,
            );
        }
        lines
    }
}

/// What a run did.
struct Done {
    writes: usize,
    run: Option<RunId>,
    busy: Duration,
    waited: Duration,
    last: Observation,
}

/// How a run ended early.
enum Stop {
    Failed(Failure),
    Timeout,
    Interrupted,
}

struct Runner<'a> {
    supervisor: &'a SupervisorApi,
    namespace: &'a str,
    service: &'a str,
    children: &'a Children,
    run_id: RunId,
    /// The longest wait between two reads when no watch event wakes the loop.
    poll: Duration,
    /// Watches of the parent, its App and the children: a wait ends at their next change.
    changes: api::Changes,
    progress: &'a ProgressPrinter,
    deadline: Instant,
    /// Whether this process has written (or resumed a run that had): only then may it undo.
    touched: bool,
    writes: usize,
    last: Option<Observation>,
}

impl Runner<'_> {
    async fn observe(&mut self) -> Result<Observation> {
        let obs =
            observe::observation(self.supervisor, self.namespace, self.service, self.children)
                .await?;
        self.last = Some(obs.clone());
        Ok(obs)
    }

    async fn perform(&mut self, decision: &NextStep) -> Result<()> {
        for batch in decision.writes() {
            self.touched = true;
            let deadline = Some(self.deadline);
            try_join_all(batch.iter().map(|w| {
                self.supervisor
                    .merge_patch(&w.target, &w.patch, false, deadline)
            }))
            .await?;
            self.writes += batch.len();
            for w in &batch {
                self.progress.line(&format!("done: {}", w.what));
            }
        }
        Ok(())
    }

    async fn drive(&mut self) -> Result<Done> {
        let mut tracker = Tracker::default();
        let (mut busy, mut waited) = (Duration::ZERO, Duration::ZERO);
        let mut announced_resume = false;
        loop {
            let t = Instant::now();
            let obs = self.observe().await?;
            for line in tracker.changes(&obs) {
                self.progress.line(&line);
            }
            let decision =
                fix::next_step(&obs, &self.run_id).map_err(|e| core_failure(e, self.namespace))?;
            if let (Some(r), false) = (&decision.resumed, announced_resume) {
                self.progress.line(&format!(
                    "resuming run {} (it stopped after step \"{}\")",
                    r.run, r.step
                ));
                announced_resume = true;
                self.touched = true;
            }
            // Reading counts as waiting when all it finds is that the controllers are not done yet.
            let looked = t.elapsed();
            let finished = |busy, waited, writes, obs| Done {
                writes,
                run: decision.run.clone(),
                busy,
                waited,
                last: obs,
            };
            match &decision.step {
                Step::Healthy => {
                    return Ok(finished(busy + looked, waited, self.writes, obs));
                }
                Step::WaitPaused | Step::WaitReconciled { .. } => {
                    let what = match &decision.step {
                        Step::WaitReconciled { pending } => format!(
                            "waiting for {} to reconcile",
                            pending
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => format!("waiting for {} to show Canceled/paused", decision.app),
                    };
                    self.progress.waiting(&truncate(&what, 120));
                    let t = Instant::now();
                    self.changes.next(self.poll).await;
                    waited += looked + t.elapsed();
                }
                step => {
                    let t = Instant::now();
                    self.perform(&decision).await?;
                    busy += looked + t.elapsed();
                    if *step == Step::Finish {
                        let last = self.observe().await?;
                        return Ok(finished(busy, waited, self.writes, last));
                    }
                }
            }
        }
    }

    /// Undoes a run that stops early: unpause parent and App, remove labels and the annotation.
    async fn abort(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.touched {
            return notes;
        }
        // A fresh deadline: undoing must not be cut short by the timeout that caused it.
        self.deadline = Instant::now() + Duration::from_secs(60);
        let obs = match tokio::time::timeout(Duration::from_secs(60), self.observe()).await {
            Ok(Ok(obs)) => obs,
            _ => {
                notes.push(format!(
                    "could not read {} to undo the run; the next `kubectl supsvc fix {}` resumes and finishes it",
                    self.service, self.service
                ));
                return notes;
            }
        };
        for batch in fix::abort(&obs) {
            let results = futures::future::join_all(batch.iter().map(|w| {
                self.supervisor
                    .merge_patch(&w.target, &w.patch, false, Some(self.deadline))
            }))
            .await;
            for (w, r) in batch.iter().zip(results) {
                match r {
                    Ok(()) => notes.push(format!("undone: {}", w.what)),
                    Err(f) => notes.push(format!(
                        "could not {}: {}; run: {}",
                        w.what,
                        f.what,
                        w.kubectl()
                    )),
                }
            }
        }
        notes
    }
}

/// Why it is still not reconciled: the last errors the objects reported.
fn last_errors(obs: &Observation) -> Vec<String> {
    let mut lines = Vec::new();
    let mut add = |name: String, obj: &dyn Reconcilable| {
        if let Some(m) = obj
            .reconcile_status()
            .useful_error_message
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            && !carvel::is_reconciled(obj)
        {
            lines.push(format!("{name}: {}", truncate(m, 400)));
        }
    };
    add(format!("pkgi/{}", obs.parent.metadata.name), &obs.parent);
    for c in &obs.children {
        add(
            format!("pkgi/{} -n {}", c.metadata.name, c.metadata.ns()),
            c,
        );
    }
    lines
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A duration to the hundredth of a second (`1.07s`, `1m12.40s`): what fix itself spent, for
/// comparisons (BENCHMARKS.md).
fn precise(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:05.2}s", s / 60, d.as_secs_f64() - (s - s % 60) as f64)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// A service read and planned on one cluster.
pub struct Prepared {
    supervisor: SupervisorApi,
    children: Children,
    obs: Observation,
    plan: Plan,
    preconditions: Preconditions,
    run_id: RunId,
}

impl Prepared {
    fn healthy_line(&self, service: &str) -> String {
        format!(
            "{service} on {} is healthy: Reconcile succeeded for the current generation, with {} child PackageInstall(s); nothing paused, nothing left over. Nothing to do.",
            self.supervisor.cluster.describe(),
            self.obs.children.len()
        )
    }

    fn refusal(&self, service: &str) -> Option<Failure> {
        self.preconditions
            .refusal
            .as_ref()
            .map(|r| refusal_failure(service, &self.supervisor.cluster.describe(), r))
    }

    fn plan_text(&self, service: &str) -> String {
        render_plan(
            &self.plan,
            &self.preconditions,
            service,
            &self.supervisor.cluster.describe(),
            self.obs.children.len(),
        )
    }
}

/// What a `fix` run is asked to do: the layer between clap's [`FixArgs`] and the command, as cargo
/// keeps its options apart from its command line, so another command (`override-image --then-fix`)
/// asks for a fix with these, not with a made-up command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixOptions {
    /// The Supervisor Service (its PackageInstall's name).
    pub service: String,
    /// Domain namespaces of the children, when kapp's data cannot say (empty: from kapp's data).
    pub domain_namespaces: Vec<String>,
    /// Go ahead without asking.
    pub yes: bool,
    pub dry_run: DryRun,
    /// Give up, unpausing everything, after this long.
    pub timeout: Duration,
    /// The longest wait between two reads without a watch event.
    pub poll_interval: Duration,
    /// Format of the plan with `--dry-run=client`.
    pub output: Option<Output>,
    /// Act although none of fix's preconditions holds.
    pub force: bool,
    /// Take over (and remove at the end) a pause fix did not make.
    pub take_over_pause: bool,
}

impl FixOptions {
    /// A run for `service` with the command line's defaults: asks before acting, 10 minutes, a read
    /// after 5 s without a watch event (`FixOptions::from(&FixArgs)` of `fix SERVICE` is equal, a test keeps it so).
    pub fn new(service: &str) -> Self {
        FixOptions {
            service: service.to_owned(),
            domain_namespaces: Vec::new(),
            yes: false,
            dry_run: DryRun::None,
            timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
            output: None,
            force: false,
            take_over_pause: false,
        }
    }
}

impl From<&FixArgs> for FixOptions {
    fn from(args: &FixArgs) -> Self {
        FixOptions {
            service: args.service.clone(),
            domain_namespaces: args.discovery.domain_namespaces.clone(),
            yes: args.yes,
            dry_run: args.dry_run,
            timeout: args.timeout,
            poll_interval: args.poll_interval,
            output: args.output,
            force: args.force,
            take_over_pause: args.take_over_pause,
        }
    }
}

/// Reads the service, finds its children and plans the run.
pub async fn prepare(
    supervisor: SupervisorApi,
    namespace: &str,
    args: &FixOptions,
) -> Result<Prepared> {
    let service = args.service.as_str();
    // The same observation diagnose makes; the parent first, so that an unknown service is reported
    // with the services there are.
    let observed =
        observe::service(&supervisor, namespace, service, &args.domain_namespaces).await?;
    let obs = observed.observation();
    let run_id = new_run_id();
    let plan = fix::plan(&obs, &run_id).map_err(|e| core_failure(e, namespace))?;
    let findings = diagnose(&observed.input, &RegistryPolicy::default());
    let preconditions = preconditions::check(
        &observed.input,
        &findings,
        Overrides {
            force: args.force,
            take_over_pause: args.take_over_pause,
        },
    );
    Ok(Prepared {
        supervisor,
        children: observed.children,
        obs,
        plan,
        preconditions,
        run_id,
    })
}

/// Sends every write of the plan with `dryRun=All`.
async fn server_dry_run(p: &Prepared, progress: &ProgressPrinter) -> Result<()> {
    for w in p.plan.writes() {
        p.supervisor
            .merge_patch(&w.target, &w.patch, true, None)
            .await?;
        progress.plain(&format!("server dry run ok: {}", w.what));
    }
    Ok(())
}

/// Runs the loop until done, undoing on error, timeout or Ctrl-C. Returns the summary line.
/// What a run waits on: PackageInstalls and Apps in the services' namespace, PackageInstalls where
/// the children are (every namespace when they were not located).
fn watched(namespace: &str, children: &Children) -> Vec<(ApiResource, Option<String>)> {
    let mut targets = vec![
        (api::packageinstalls(), Some(namespace.to_owned())),
        (api::apps(), Some(namespace.to_owned())),
    ];
    if children.namespaces.is_empty() {
        targets.push((api::packageinstalls(), None));
    }
    for ns in &children.namespaces {
        if ns != namespace {
            targets.push((api::packageinstalls(), Some(ns.clone())));
        }
    }
    targets
}

async fn execute(
    p: &Prepared,
    namespace: &str,
    args: &FixOptions,
    progress: &ProgressPrinter,
) -> Result<String> {
    let service = args.service.as_str();
    let started = Instant::now();
    let mut runner = Runner {
        supervisor: &p.supervisor,
        namespace,
        service,
        children: &p.children,
        run_id: p.run_id.clone(),
        poll: args.poll_interval,
        changes: api::Changes::watch(&p.supervisor, &watched(namespace, &p.children)),
        progress,
        deadline: started + args.timeout,
        touched: p.plan.resumed.is_some(),
        writes: 0,
        last: None,
    };
    let outcome = {
        let deadline = runner.deadline;
        let drive = runner.drive();
        tokio::select! {
            r = drive => r.map_err(Stop::Failed),
            _ = tokio::time::sleep_until(deadline) => Err(Stop::Timeout),
            _ = tokio::signal::ctrl_c() => Err(Stop::Interrupted),
        }
    };
    match outcome {
        Ok(done) => {
            progress.finish();
            let reconciled = carvel::is_reconciled(&done.last.parent);
            Ok(format!(
                "Succeeded: {service} {} with {} child PackageInstall(s) in {} ({} writes{}; {} in requests, {} waiting on kapp-controller).",
                if reconciled {
                    "shows Reconcile succeeded for its current generation"
                } else {
                    "needed nothing more"
                },
                done.last.children.len(),
                human(started.elapsed()),
                done.writes,
                done.run.map(|r| format!(", run {r}")).unwrap_or_default(),
                precise(done.busy),
                precise(done.waited),
            ))
        }
        Err(stop) => {
            for note in runner.abort().await {
                progress.line(&note);
            }
            progress.finish();
            let errors = runner.last.as_ref().map(last_errors).unwrap_or_default();
            let detail = if errors.is_empty() {
                String::new()
            } else {
                format!("; last errors:\n  {}", errors.join("\n  "))
            };
            let diagnose = format!(
                "run `kubectl supsvc diagnose {service}` for what is wrong, then `kubectl supsvc fix {service}` again"
            );
            Err(match stop {
                Stop::Failed(f) => f,
                Stop::Timeout => Failure::new(
                    format!(
                        "timed out after {} waiting for {service} to reconcile{detail}",
                        human(args.timeout)
                    ),
                    format!(
                        "nothing is left paused; {diagnose}, or allow more time with --timeout"
                    ),
                )
                .with_exit(Exit::Timeout),
                Stop::Interrupted => Failure::new(
                    "interrupted; nothing is left paused".to_owned(),
                    format!("run `kubectl supsvc fix {service}` to start again"),
                )
                .with_exit(Exit::Interrupted),
            })
        }
    }
}

/// `fix` on one cluster.
pub async fn run(session: &Session, args: &FixOptions) -> Result<()> {
    let (supervisor, namespace) = (session.supervisor.clone(), session.namespace.as_str());
    let service = args.service.as_str();
    let p = prepare(supervisor, namespace, args).await?;
    if p.plan.is_empty() {
        outln!("{}", p.healthy_line(service));
        return Ok(());
    }
    if args.dry_run == DryRun::Client
        && let Some(format) = args.output
    {
        let cluster = &p.supervisor.cluster;
        let out = PlanOutput {
            service,
            cluster: &cluster.cluster,
            context: &cluster.context,
            server: &cluster.server,
            plan: &p.plan,
            preconditions: &p.preconditions,
        };
        out!("{}", render(format, &out)?);
        return p.refusal(service).map_or(Ok(()), Err);
    }
    if let Some(refusal) = p.refusal(service) {
        // Before any write: say what was found and which precondition failed.
        out!(
            "Plan for {service} on {}: none.\n{}",
            p.supervisor.cluster.describe(),
            render_preconditions(&p.preconditions)
        );
        return Err(refusal);
    }
    out!("{}", p.plan_text(service));
    if p.obs.children.is_empty() {
        errln!(
            "warning: no child PackageInstalls found from the App's kapp data; if {service} has children, name their namespace with --domain-namespace"
        );
    }
    match args.dry_run {
        DryRun::Client => {
            outln!("Dry run (client): nothing was sent.");
            return Ok(());
        }
        DryRun::Server => {
            server_dry_run(&p, &ProgressPrinter::plain_lines("")).await?;
            outln!(
                "Dry run (server): every write was accepted by the server with dryRun=All; nothing was changed."
            );
            return Ok(());
        }
        DryRun::None => {}
    }
    if !args.yes && !crate::output::confirm("Continue?") {
        return Err(Failure::new(
            "cancelled: nothing was changed",
            "answer y to go ahead, or pass -y",
        ));
    }
    let summary = execute(&p, namespace, args, &ProgressPrinter::new()).await?;
    outln!("{summary}");
    Ok(())
}

mod fleet;

pub use fleet::run_fleet;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use supsvc_core::carvel::{App, PackageInstall};

    #[test]
    fn the_options_defaults_are_the_command_lines() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let Ok(Command::Fix(args)) =
            Cli::try_parse_from(["kubectl-supsvc", "fix", "svc-x"]).map(|c| c.command)
        else {
            panic!("fix svc-x parses");
        };
        assert_eq!(FixOptions::from(&args), FixOptions::new("svc-x"));
    }

    fn obs() -> Observation {
        let pkgi = |ns: &str, name: &str, status: serde_json::Value| {
            PackageInstall::from_value(&json!({"metadata": {"name": name, "namespace": ns, "generation": 1}, "status": status})).unwrap()
        };
        let failed = json!({"observedGeneration": 1, "friendlyDescription": "Reconcile failed: x", "usefulErrorMessage": "kapp: Error: boom",
                            "conditions": [{"type": "ReconcileFailed", "status": "True"}]});
        Observation {
            parent: pkgi("ns", "svc", failed.clone()),
            app: Some(App::from_value(&json!({"metadata": {"name": "svc", "namespace": "ns", "generation": 1}, "status": failed.clone()})).unwrap()),
            children: vec![pkgi("dom", "c1", failed)],
        }
    }

    #[test]
    fn run_ids_are_label_values() {
        let r = new_run_id();
        assert!(fix::is_valid_label_value(r.as_str()), "{r}");
    }

    #[test]
    fn plan_names_target_and_every_write() {
        let o = obs();
        let plan = fix::plan(&o, &RunId::new("r1").unwrap()).unwrap();
        let held = Preconditions {
            ground: Some(preconditions::Ground::KbSignature),
            checks: Vec::new(),
            foreign_pauses: Vec::new(),
            refusal: None,
        };
        let text = render_plan(
            &plan,
            &held,
            "svc",
            "cluster \"c\" (context \"ctx\", https://h)",
            1,
        );
        assert!(text.starts_with("Plan for svc on cluster \"c\" (context \"ctx\", https://h), 1 child PackageInstall(s):\nPrecondition held: kb-signature.\n"), "{text}");
        assert!(text.contains("  1. pause pkgi/svc -n ns and record run r1\n       kubectl patch packageinstall.packaging.carvel.dev/svc -n ns --type=merge -p '"));
        assert!(text.contains("  2. wait until app/svc -n ns shows Canceled/paused"));
        assert_eq!(text.matches("kubectl patch").count(), plan.writes().count());
    }

    #[test]
    fn resumed_plans_say_so() {
        let mut o = obs();
        o.parent.metadata.annotations.insert(
            fix::PROGRESS_ANNOTATION.into(),
            "{\"run\":\"r0\",\"step\":\"unpaused\"}".into(),
        );
        let plan = fix::plan(&o, &RunId::new("r1").unwrap()).unwrap();
        let resumable = Preconditions {
            ground: Some(preconditions::Ground::ResumableRun),
            checks: Vec::new(),
            foreign_pauses: Vec::new(),
            refusal: None,
        };
        let text = render_plan(&plan, &resumable, "svc", "x", 1);
        assert!(text.contains("Resuming run r0 of an earlier `kubectl supsvc fix`, which stopped after step \"unpaused\"."), "{text}");
    }

    #[test]
    fn tracker_prints_only_changes() {
        let mut t = Tracker::default();
        let o = obs();
        let first = t.changes(&o);
        assert_eq!(first.len(), 3);
        assert_eq!(first[0], "pkgi/svc: Reconcile failed — Reconcile failed: x");
        assert!(t.changes(&o).is_empty());
        let mut o2 = o.clone();
        o2.children[0].status.friendly_description = Some("Reconciling".into());
        o2.children[0].status.conditions[0].kind = "Reconciling".into();
        assert_eq!(t.changes(&o2), ["pkgi/c1 -n dom: Reconciling"]);
    }

    #[test]
    fn last_errors_of_unreconciled_objects() {
        assert_eq!(
            last_errors(&obs()),
            [
                "pkgi/svc: kapp: Error: boom",
                "pkgi/c1 -n dom: kapp: Error: boom"
            ]
        );
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(72)), "1m12s");
        assert_eq!(precise(Duration::from_millis(1071)), "1.07s");
        assert_eq!(precise(Duration::from_millis(72_400)), "1m12.40s");
        assert_eq!(precise(Duration::from_millis(6)), "0.01s");
    }
}
