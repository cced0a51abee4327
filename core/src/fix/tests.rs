//! The state machine against a small model of kapp-controller: every path from the deadlock, killed
//! after every write and resumed, or aborted after every write, ends reconciled and never paused.

use super::*;
use serde_json::json;

const PARENT_NS: &str = "vmware-system-supervisor-services";
const PARENT: &str = "svc-tkg.vsphere.vmware.com";
const DOMAIN: &str = "svc-tkg-domain-c1234";
const CHILDREN: [&str; 6] = [
    "runtime-extension",
    "tanzu-addons-manager",
    "tanzu-cliplugins",
    "tanzu-cluster-api",
    "tkg-controller",
    "tkr-service",
];

fn run(s: &str) -> RunId {
    RunId::new(s).unwrap()
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(obj) = target.as_object_mut() else {
        return;
    };
    for (k, v) in patch {
        if v.is_null() {
            obj.remove(k);
        } else {
            merge(obj.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn status(kind: &str, og: i64) -> Value {
    let desc = match kind {
        "ReconcileSucceeded" => "Reconcile succeeded".to_owned(),
        "ReconcileFailed" => {
            "Reconcile failed: kapp: Error: waiting on reconcile packageinstall/tkg-controller"
                .to_owned()
        }
        "Paused" => DESCRIPTION_PAUSED.to_owned(),
        other => other.to_owned(),
    };
    let conditions = if kind == "Paused" {
        json!([])
    } else {
        json!([{"type": kind, "status": "True"}])
    };
    json!({"observedGeneration": og, "conditions": conditions, "friendlyDescription": desc})
}

fn object(kind: &str, ns: &str, name: &str, state: &str) -> Value {
    json!({"kind": kind, "metadata": {"name": name, "namespace": ns, "generation": 1}, "spec": {}, "status": status(state, 1)})
}

use crate::carvel::DESCRIPTION_PAUSED;

/// A model Supervisor: the parent, its App and the children, with kapp-controller reduced to the rules
/// that matter here (see the module docs of `carvel` and the notes on kapp-controller).
#[derive(Clone)]
struct World {
    parent: Value,
    app: Value,
    children: Vec<Value>,
    /// Whether kapp removes hand-added labels (drift) when the parent deploys.
    kapp_drops_labels: bool,
    writes: usize,
}

impl World {
    fn deadlocked() -> Self {
        World {
            parent: object("PackageInstall", PARENT_NS, PARENT, "ReconcileFailed"),
            app: object("App", PARENT_NS, PARENT, "ReconcileFailed"),
            children: CHILDREN
                .iter()
                .map(|c| object("PackageInstall", DOMAIN, c, "ReconcileFailed"))
                .collect(),
            kapp_drops_labels: true,
            writes: 0,
        }
    }

    fn healthy() -> Self {
        World {
            parent: object("PackageInstall", PARENT_NS, PARENT, "ReconcileSucceeded"),
            app: object("App", PARENT_NS, PARENT, "ReconcileSucceeded"),
            children: CHILDREN
                .iter()
                .map(|c| object("PackageInstall", DOMAIN, c, "ReconcileSucceeded"))
                .collect(),
            kapp_drops_labels: true,
            writes: 0,
        }
    }

    fn observe(&self) -> Observation {
        Observation {
            parent: PackageInstall::from_value(&self.parent).unwrap(),
            app: Some(App::from_value(&self.app).unwrap()),
            children: self
                .children
                .iter()
                .map(|c| PackageInstall::from_value(c).unwrap())
                .collect(),
        }
    }

    fn target(&mut self, r: &ObjectRef) -> &mut Value {
        match r.kind {
            Kind::App => &mut self.app,
            Kind::PackageInstall if r.name == PARENT => &mut self.parent,
            Kind::PackageInstall => self
                .children
                .iter_mut()
                .find(|c| c["metadata"]["name"] == r.name.as_str())
                .unwrap(),
        }
    }

    fn apply(&mut self, w: &Write) {
        let obj = self.target(&w.target);
        let before = obj["spec"].clone();
        merge(obj, &w.patch);
        if obj["spec"] != before {
            obj["metadata"]["generation"] =
                json!(obj["metadata"]["generation"].as_i64().unwrap() + 1);
        }
        // A child's label change makes it reconcile: it re-resolves its (corrected) Package.
        if w.target.kind == Kind::PackageInstall
            && w.target.name != PARENT
            && w.patch["metadata"]["labels"][TRIGGER_LABEL].is_string()
        {
            obj["status"] = status(
                "ReconcileSucceeded",
                obj["metadata"]["generation"].as_i64().unwrap(),
            );
        }
        self.writes += 1;
    }

    /// One round of the controllers.
    fn tick(&mut self) {
        // PackageInstall controller: propagates `paused` to its App (a rewrite racing any hand toggle).
        let parent_paused = self.parent["spec"]["paused"] == json!(true);
        let app_paused = self.app["spec"]["paused"] == json!(true);
        if parent_paused != app_paused {
            if parent_paused {
                self.app["spec"]["paused"] = json!(true);
            } else if let Some(spec) = self.app["spec"].as_object_mut() {
                spec.remove("paused");
            }
            self.app["metadata"]["generation"] =
                json!(self.app["metadata"]["generation"].as_i64().unwrap() + 1);
        }
        // App controller.
        let generation = self.app["metadata"]["generation"].as_i64().unwrap();
        if self.app["spec"]["paused"] == json!(true) {
            self.app["status"] = status("Paused", generation);
        } else if self.app["status"]["observedGeneration"] != json!(generation) {
            let children_ok = self
                .children
                .iter()
                .all(|c| c["status"]["conditions"][0]["type"] == "ReconcileSucceeded");
            let outcome = if children_ok {
                "ReconcileSucceeded"
            } else {
                "ReconcileFailed"
            };
            self.app["status"] = status(outcome, generation);
            if children_ok && self.kapp_drops_labels {
                for c in &mut self.children {
                    if let Some(labels) = c["metadata"]["labels"].as_object_mut() {
                        labels.remove(TRIGGER_LABEL);
                    }
                }
            }
        }
        // PackageInstall controller copies the App's status.
        let mut s = self.app["status"].clone();
        s["observedGeneration"] = self.parent["metadata"]["generation"].clone();
        self.parent["status"] = s;
    }

    fn paused_anywhere(&self) -> bool {
        self.parent["spec"]["paused"] == json!(true) || self.app["spec"]["paused"] == json!(true)
    }
}

/// Runs the loop as the plugin does. Stops after `budget` writes (a kill) or when done.
/// Returns the steps taken and whether it finished.
fn drive(world: &mut World, run_id: &RunId, budget: usize) -> (Vec<NextStep>, bool) {
    let mut decisions = Vec::new();
    for _ in 0..200 {
        let d = next_step(&world.observe(), run_id).unwrap();
        decisions.push(d.clone());
        match d.step {
            Step::Healthy => return (decisions, true),
            _ if d.step.is_wait() => world.tick(),
            _ => {
                for batch in d.writes() {
                    for w in &batch {
                        if world.writes == budget {
                            return (decisions, false);
                        }
                        world.apply(w);
                    }
                    world.tick();
                }
                if d.step == Step::Finish {
                    return (decisions, true);
                }
            }
        }
    }
    panic!("no progress after 200 steps: {:?}", decisions.last());
}

fn step_names(ds: &[NextStep]) -> Vec<&'static str> {
    ds.iter()
        .map(|d| match d.step {
            Step::Healthy => "healthy",
            Step::Pause => "pause",
            Step::WaitPaused => "wait-paused",
            Step::LabelChildren { .. } => "label",
            Step::Unpause => "unpause",
            Step::ToggleApp => "toggle",
            Step::UnpauseApp => "unpause-app",
            Step::WaitReconciled { .. } => "wait-reconciled",
            Step::RemoveTriggerLabels { .. } => "remove-labels",
            Step::Finish => "finish",
        })
        .collect()
}

#[test]
fn healthy_service_means_nothing_to_do() {
    let world = World::healthy();
    let d = next_step(&world.observe(), &run("r1")).unwrap();
    assert_eq!(d.step, Step::Healthy);
    assert!(d.writes().is_empty());
    assert_eq!(d.run, None);
    let p = plan(&world.observe(), &run("r1")).unwrap();
    assert!(p.is_empty());
}

#[test]
fn deadlock_is_resolved_in_the_kb_order() {
    let mut world = World::deadlocked();
    let (decisions, done) = drive(&mut world, &run("r1"), usize::MAX);
    assert!(done);
    // The model's App observes the pause at once; waiting is exercised in `next_step_table`.
    assert_eq!(
        step_names(&decisions),
        ["pause", "label", "unpause", "toggle", "finish"],
        "kapp dropped the labels as drift, so there is nothing to remove"
    );
    assert!(world.observe().is_healthy());
    assert!(!world.paused_anywhere());
    assert_eq!(world.writes, 1 + CHILDREN.len() + 1 + 1 + 3 + 1);
    assert!(decisions.iter().all(|d| d.resumed.is_none()));
    let after = next_step(&world.observe(), &run("r2")).unwrap();
    assert_eq!(after.step, Step::Healthy);
}

#[test]
fn labels_kapp_did_not_drop_are_removed() {
    let mut world = World::deadlocked();
    world.kapp_drops_labels = false;
    let (decisions, done) = drive(&mut world, &run("r1"), usize::MAX);
    assert!(done);
    assert_eq!(
        step_names(&decisions),
        [
            "pause",
            "label",
            "unpause",
            "toggle",
            "remove-labels",
            "finish"
        ]
    );
    assert!(world.observe().is_healthy());
}

#[test]
fn a_run_killed_after_any_write_is_resumed_by_the_next() {
    let mut full = World::deadlocked();
    full.kapp_drops_labels = false;
    let (_, _) = drive(&mut full, &run("r1"), usize::MAX);
    let total = full.writes;
    for kill_after in 0..total {
        let mut world = World::deadlocked();
        world.kapp_drops_labels = false;
        let (_, done) = drive(&mut world, &run("r1"), kill_after);
        assert!(!done, "killed after {kill_after}");
        // Controllers keep running while nobody watches.
        world.tick();
        let (decisions, done) = drive(&mut world, &run("r2"), usize::MAX);
        assert!(done, "resume after {kill_after}");
        let obs = world.observe();
        assert!(
            obs.is_healthy(),
            "after kill at {kill_after}: {:?}",
            obs.pending()
        );
        assert!(!world.paused_anywhere());
        if kill_after > 0 {
            let first = &decisions[0];
            assert_eq!(
                first.run,
                Some(run("r1")),
                "the resumed run keeps its id (kill at {kill_after})"
            );
            assert_eq!(
                first.resumed.as_ref().map(|p| p.run.clone()),
                Some(run("r1"))
            );
        } else {
            assert_eq!(decisions[0].run, Some(run("r2")));
        }
    }
}

#[test]
fn abort_after_any_write_leaves_nothing_paused_and_nothing_behind() {
    let mut full = World::deadlocked();
    full.kapp_drops_labels = false;
    drive(&mut full, &run("r1"), usize::MAX);
    for stop_after in 0..full.writes {
        let mut world = World::deadlocked();
        world.kapp_drops_labels = false;
        drive(&mut world, &run("r1"), stop_after);
        for batch in abort(&world.observe()) {
            for w in &batch {
                world.apply(w);
            }
        }
        world.tick();
        assert!(!world.paused_anywhere(), "abort after {stop_after}");
        let obs = world.observe();
        assert!(
            !obs.parent
                .metadata
                .annotations
                .contains_key(PROGRESS_ANNOTATION)
        );
        assert!(obs.trigger_labelled().is_empty());
    }
    assert!(
        abort(&World::healthy().observe()).is_empty(),
        "nothing to undo on a healthy service"
    );
}

#[test]
fn next_step_table() {
    let annotated = |step: &str| json!({PROGRESS_ANNOTATION: format!("{{\"run\":\"r1\",\"step\":\"{step}\"}}")});
    type Edit = fn(&mut World);
    let with = |edit: Edit| {
        let mut w = World::deadlocked();
        edit(&mut w);
        w
    };
    let cases: Vec<(&str, World, &str)> = vec![
        ("fresh deadlock", World::deadlocked(), "pause"),
        (
            "paused, App still deploying",
            with(|w| {
                w.parent["spec"]["paused"] = json!(true);
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"paused\"}"});
                w.app["spec"]["paused"] = json!(true);
                w.app["metadata"]["generation"] = json!(2);
            }),
            "wait-paused",
        ),
        (
            "paused and observed",
            with(|w| {
                w.parent["spec"]["paused"] = json!(true);
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"paused\"}"});
                w.app["spec"]["paused"] = json!(true);
                w.app["status"] = status("Paused", 1);
            }),
            "label",
        ),
        (
            "progress says paused but someone unpaused",
            with(|w| {
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"labelled\"}"});
            }),
            "pause",
        ),
        (
            "labelled, all children carry the run's label",
            with(|w| {
                w.parent["spec"]["paused"] = json!(true);
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"labelled\"}"});
                w.app["spec"]["paused"] = json!(true);
                w.app["status"] = status("Paused", 1);
                for c in &mut w.children {
                    c["metadata"]["labels"] = json!({TRIGGER_LABEL: "r1"});
                }
            }),
            "unpause",
        ),
        (
            "labelled, one child carries an older run's label",
            with(|w| {
                w.parent["spec"]["paused"] = json!(true);
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"labelled\"}"});
                w.app["spec"]["paused"] = json!(true);
                w.app["status"] = status("Paused", 1);
                for c in &mut w.children {
                    c["metadata"]["labels"] = json!({TRIGGER_LABEL: "r1"});
                }
                w.children[2]["metadata"]["labels"] = json!({TRIGGER_LABEL: "r0"});
            }),
            "label",
        ),
        (
            "unpaused",
            with(|w| {
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"unpaused\"}"})
            }),
            "toggle",
        ),
        (
            "toggled, App left paused",
            with(|w| {
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"toggled\"}"});
                w.app["spec"]["paused"] = json!(true);
            }),
            "unpause-app",
        ),
        (
            "toggled, still failing",
            with(|w| {
                w.parent["metadata"]["annotations"] =
                    json!({PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"toggled\"}"})
            }),
            "wait-reconciled",
        ),
        (
            "toggled, reconciled, labels left",
            {
                let mut w = World::healthy();
                w.parent["metadata"]["annotations"] = annotated("toggled");
                w.children[0]["metadata"]["labels"] = json!({TRIGGER_LABEL: "r1"});
                w
            },
            "remove-labels",
        ),
        (
            "toggled, reconciled, clean",
            {
                let mut w = World::healthy();
                w.parent["metadata"]["annotations"] = annotated("toggled");
                w
            },
            "finish",
        ),
        (
            "reconciled with an old run's label and no annotation",
            {
                let mut w = World::healthy();
                w.children[3]["metadata"]["labels"] = json!({TRIGGER_LABEL: "r0"});
                w
            },
            "remove-labels",
        ),
        (
            "reconciled but stale generation is not healthy",
            {
                let mut w = World::healthy();
                w.parent["metadata"]["generation"] = json!(2);
                w
            },
            "pause",
        ),
        (
            "paused by hand, reconciled before",
            {
                let mut w = World::healthy();
                w.parent["spec"]["paused"] = json!(true);
                w
            },
            "pause",
        ),
    ];
    for (name, world, want) in cases {
        let d = next_step(&world.observe(), &run("r1")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(step_names(&[d]), [want], "{name}");
    }
}

#[test]
fn refuses_what_it_cannot_do_safely() {
    let mut deleting = World::deadlocked();
    deleting.parent["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    assert!(matches!(
        next_step(&deleting.observe(), &run("r")),
        Err(FixError::ParentDeleting(_))
    ));

    let world = World::deadlocked();
    let mut no_app = world.observe();
    no_app.app = None;
    assert!(matches!(
        next_step(&no_app, &run("r")),
        Err(FixError::AppMissing(_))
    ));
    // ... but never strands its own pause.
    no_app.parent.spec.paused = true;
    no_app.parent.metadata.annotations.insert(
        PROGRESS_ANNOTATION.into(),
        "{\"run\":\"r1\",\"step\":\"paused\"}".into(),
    );
    assert_eq!(next_step(&no_app, &run("r")).unwrap().step, Step::Unpause);

    for bad in [
        "",
        "yes",
        "{\"run\":\"r1\"}",
        "{\"run\":\"bad value!\",\"step\":\"paused\"}",
        "{\"run\":\"r1\",\"step\":\"later\"}",
    ] {
        let mut obs = World::deadlocked().observe();
        obs.parent
            .metadata
            .annotations
            .insert(PROGRESS_ANNOTATION.into(), bad.into());
        assert!(
            matches!(
                next_step(&obs, &run("r")),
                Err(FixError::BadProgress { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn plan_lists_every_write_in_order() {
    let world = World::deadlocked();
    let p = plan(&world.observe(), &run("r1")).unwrap();
    assert_eq!(p.run, Some(run("r1")));
    assert!(p.resumed.is_none());
    let writes: Vec<&Write> = p.writes().collect();
    let n = CHILDREN.len();
    assert_eq!(writes.len(), 1 + n + 1 + 1 + 3 + n + 1);
    assert_eq!(
        p.items
            .iter()
            .filter(|i| matches!(i, PlanItem::Wait { .. }))
            .count(),
        2
    );
    assert_eq!(
        writes[0].kubectl(),
        "kubectl patch packageinstall.packaging.carvel.dev/svc-tkg.vsphere.vmware.com -n vmware-system-supervisor-services \
         --type=merge -p '{\"metadata\":{\"annotations\":{\"supsvc.io/fix-progress\":\"{\\\"run\\\":\\\"r1\\\",\\\"step\\\":\\\"paused\\\"}\"}},\"spec\":{\"paused\":true}}'"
    );
    assert_eq!(writes[1].target.name, "runtime-extension");
    assert_eq!(
        writes[1].patch,
        json!({"metadata": {"labels": {TRIGGER_LABEL: "r1"}}})
    );
    assert_eq!(
        writes[n + 2].patch,
        json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: "{\"run\":\"r1\",\"step\":\"unpaused\"}"}}, "spec": {"paused": null}})
    );
    assert_eq!(writes[n + 3].target.kind, Kind::App);
    assert_eq!(writes[n + 3].patch, json!({"spec": {"paused": true}}));
    assert_eq!(writes[n + 4].patch, json!({"spec": {"paused": null}}));
    assert_eq!(
        writes.last().unwrap().patch,
        json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: null}}})
    );
    let mut order = p.items.iter().map(|i| matches!(i, PlanItem::Wait { .. }));
    assert_eq!(order.next(), Some(false));
    assert_eq!(
        order.next(),
        Some(true),
        "wait for the pause right after pausing"
    );
}

#[test]
fn plan_of_a_resumed_run_starts_where_it_stopped() {
    let mut world = World::deadlocked();
    world.parent["metadata"]["annotations"] =
        json!({PROGRESS_ANNOTATION: "{\"run\":\"r0\",\"step\":\"unpaused\"}"});
    let p = plan(&world.observe(), &run("r1")).unwrap();
    assert_eq!(p.run, Some(run("r0")));
    assert_eq!(p.resumed.as_ref().map(|r| r.step), Some(Recorded::Unpaused));
    let first = p.writes().next().unwrap();
    assert_eq!(first.target.kind, Kind::App);
}

#[test]
fn run_id_table() {
    for ok in ["r1", "fix-20261122t050301-1a2b", "A.b_c-9", &"a".repeat(63)] {
        assert!(RunId::new(ok).is_ok(), "{ok}");
    }
    for bad in ["", "-a", "a-", "a b", "ä", &"a".repeat(64), "a/b"] {
        assert!(RunId::new(bad).is_err(), "{bad:?}");
    }
}
