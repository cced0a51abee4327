//! Table tests of upgrade-check's rules over the fixtures in `core/tests/fixtures/upgrade/`.
#![allow(clippy::type_complexity)]

use serde_json::{Value, json};

use super::drain::{self, IntOrPercent, Pdb, Pod, Selector};
use super::forecast::{self, ClusterForecast, Order, Rolls, Trigger, TriggerError, VcRelease};
use super::model::{self, Api, Cluster, Machine, MachineDeployment};
use super::*;

const FLEET: &str = include_str!("../../tests/fixtures/upgrade/fleet.json");
const ORDERS_WORKLOAD: &str = include_str!("../../tests/fixtures/upgrade/orders-workload.json");

struct Fleet {
    clusters: Vec<Cluster>,
    mds: Vec<MachineDeployment>,
    machines: Vec<Machine>,
    tkrs: Vec<Value>,
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

fn fleet() -> Fleet {
    let v: Value = serde_json::from_str(FLEET).unwrap();
    let (clusters, errors) = model::fleet(&list(&v, "tkcs"), &list(&v, "clusters"));
    assert!(errors.is_empty(), "{errors:?}");
    let mds = model::parse_machine_deployments(&list(&v, "machineDeployments"));
    let machines = model::parse_machines(&list(&v, "machines"), &mds);
    Fleet {
        clusters,
        mds,
        machines,
        tkrs: list(&v, "tkrs"),
    }
}

fn run(f: &Fleet, trigger: &Trigger) -> Vec<forecast::ClusterForecast> {
    forecast::forecast(&f.clusters, &f.mds, &f.machines, trigger).unwrap()
}

fn tkr(name: &str) -> Trigger {
    Trigger::Tkr { name: name.into() }
}

const TARGET: &str = "v1.29.4---vmware.3-fips.1-tkg.1";

/// (cluster, rolls, rule id, steps as "cp" or pool lists, replacements, surge)
type Row = (
    &'static str,
    Rolls,
    &'static str,
    &'static [&'static str],
    u32,
    u32,
);

fn steps(f: &ClusterForecast) -> Vec<String> {
    f.steps
        .iter()
        .map(|s| {
            if s.control_plane {
                "cp".to_owned()
            } else {
                s.pools.join("+")
            }
        })
        .collect()
}

fn check_rows(got: &[ClusterForecast], want: &[Row]) {
    assert_eq!(got.len(), want.len());
    for (f, (key, rolls, rule, st, repl, surge)) in got.iter().zip(want) {
        let k = format!("{}/{}", f.namespace, f.name);
        assert_eq!(&k, key);
        assert_eq!(f.rolls, *rolls, "{k}: {:?}", f.rule);
        assert_eq!(f.rule.id, *rule, "{k}");
        assert!(
            !f.rule.source.is_empty(),
            "{k}: every rule names its source"
        );
        assert_eq!(steps(f), *st, "{k}");
        assert_eq!(f.node_replacements, *repl, "{k}");
        assert_eq!(f.surge_vms, *surge, "{k}");
    }
}

#[test]
fn fleet_joins_a_tkc_and_its_cluster_and_keeps_standalone_tkcs() {
    let f = fleet();
    let keys: Vec<(String, Api)> = f.clusters.iter().map(|c| (c.key(), c.api)).collect();
    assert_eq!(
        keys,
        [
            ("team-a/legacy".to_owned(), Api::TkcV1alpha2),
            ("team-a/payments".to_owned(), Api::TkcV1alpha3),
            ("team-b/frozen".to_owned(), Api::ClusterV1beta1),
            ("team-b/orders".to_owned(), Api::ClusterV1beta1),
            ("team-c/ledger".to_owned(), Api::ClusterV1beta2),
            ("team-c/old".to_owned(), Api::ClusterV1beta1),
        ]
    );
    let payments = &f.clusters[1];
    assert_eq!(
        payments.class.as_deref(),
        Some("tanzukubernetescluster"),
        "the Cluster's topology decides"
    );
    assert_eq!(
        payments.pools[0].node_drain_timeout.as_deref(),
        Some("15m"),
        "the TKC fills what the Cluster lacks"
    );
    let ledger = &f.clusters[4];
    assert_eq!(ledger.class.as_deref(), Some("builtin-generic-v3.6.0"));
    assert_eq!(ledger.upgrade_concurrency, 2);
    assert!(f.clusters[0].no_proxy.len() == 2 && f.clusters[3].no_proxy.is_empty());
    // Machines land in their pool through the MachineDeployment's topology label.
    let a1 = f
        .machines
        .iter()
        .find(|m| m.node.as_deref() == Some("orders-a-1"))
        .unwrap();
    assert_eq!(a1.pool.as_deref(), Some("pool-a"));
    assert!(
        f.machines
            .iter()
            .find(|m| m.name == "orders-cp-1")
            .unwrap()
            .pool
            .is_none()
    );
}

#[test]
fn bad_objects_are_named_not_dropped() {
    let (clusters, errors) = model::fleet(
        &[
            json!({"apiVersion": "run.tanzu.vmware.com/v1alpha1", "metadata": {"name": "x", "namespace": "n"}, "spec": {"topology": {}}}),
        ],
        &[
            json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "metadata": {"name": "classless", "namespace": "n"}, "spec": {}}),
        ],
    );
    assert!(clusters.is_empty());
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text[0].contains("Cluster n/classless") && text[0].contains("spec.topology"),
        "{text:?}"
    );
    assert!(
        text[1].contains("v1alpha1") && text[1].contains("v1alpha2"),
        "{text:?}"
    );
}

#[test]
fn tkr_upgrade_orders_control_plane_then_pools() {
    let f = fleet();
    let got = run(&f, &tkr(TARGET));
    check_rows(
        &got,
        &[
            // vSphere 7: all pools at once after the control plane.
            (
                "team-a/legacy",
                Rolls::Yes,
                "VMW-POOLS-SIMULTANEOUS",
                &["cp", "workers+gpu"],
                6,
                2,
            ),
            (
                "team-a/payments",
                Rolls::Yes,
                "CAPI-VERSION",
                &["cp", "pool-a", "pool-b"],
                8,
                1,
            ),
            (
                "team-b/frozen",
                Rolls::Yes,
                "CAPI-VERSION",
                &["cp", "pool-a"],
                3,
                1,
            ),
            // pool-b is deferred.
            (
                "team-b/orders",
                Rolls::Yes,
                "CAPI-VERSION",
                &["cp", "pool-a", "pool-c"],
                7,
                1,
            ),
            // concurrency 2; d holds itself and e.
            (
                "team-c/ledger",
                Rolls::Yes,
                "CAPI-VERSION",
                &["cp", "a+b", "c"],
                11,
                2,
            ),
            (
                "team-c/old",
                Rolls::No,
                "CAPI-VERSION-MINOR-SKIP",
                &[],
                0,
                0,
            ),
        ],
    );
    assert_eq!(got[3].order, Some(Order::Sequential { concurrency: 1 }));
    assert_eq!(got[0].order, Some(Order::Simultaneous));
    let orders_b = &got[3].pools[1];
    assert_eq!((orders_b.rolls, orders_b.step), (Rolls::No, None));
    assert!(orders_b.note.as_deref().unwrap().starts_with("defer"));
    let ledger: Vec<(Rolls, Option<usize>)> =
        got[4].pools.iter().map(|p| (p.rolls, p.step)).collect();
    assert_eq!(
        ledger,
        [
            (Rolls::Yes, Some(2)),
            (Rolls::Yes, Some(2)),
            (Rolls::Yes, Some(3)),
            (Rolls::No, None),
            (Rolls::No, None)
        ]
    );
    assert!(got[2].paused && got[2].notes.iter().any(|n| n.starts_with("paused")));
    assert_eq!(
        got[3].pending,
        ["pool pool-b (MachineDeployment orders-pool-b-x2v9d): 1 of 2 machines up to date"]
    );
    // The `+` form of the target is the same release.
    let plus = run(&f, &tkr("v1.29.4+vmware.3-fips.1-tkg.1"));
    assert_eq!(
        plus.iter().map(|f| f.rolls).collect::<Vec<_>>(),
        got.iter().map(|f| f.rolls).collect::<Vec<_>>()
    );
}

#[test]
fn tkr_the_cluster_already_runs_or_older_rolls_nothing() {
    let f = fleet();
    let same = run(&f, &tkr("v1.28.8+vmware.1-fips.1-tkg.2"));
    for fc in &same[..5] {
        assert_eq!(
            (fc.rolls, fc.rule.id.as_str()),
            (Rolls::No, "CAPI-VERSION-SAME"),
            "{}",
            fc.name
        );
        assert!(fc.steps.is_empty());
    }
    let older = run(&f, &tkr("v1.27.11---vmware.1-fips.1-tkg.2"));
    assert_eq!(older[1].rule.id, "CAPI-VERSION-DOWNGRADE");
    assert_eq!(older[5].rule.id, "CAPI-VERSION-SAME");
    assert_eq!(
        forecast::forecast(&f.clusters, &[], &[], &tkr("latest")).unwrap_err(),
        TriggerError::BadTkr("latest".into())
    );
}

#[test]
fn variable_change_rolls_one_node_per_pool_in_parallel() {
    let f = fleet();
    let set = |name: &str, value: Value, pool: Option<&str>| Trigger::SetVariable {
        name: name.into(),
        value,
        pool: pool.map(str::to_owned),
    };
    let got = run(&f, &set("vmClass", json!("guaranteed-large"), None));
    check_rows(
        &got,
        &[
            (
                "team-a/legacy",
                Rolls::Maybe,
                "VAR-NO-CLASS",
                &["workers+gpu"],
                5,
                2,
            ),
            (
                "team-a/payments",
                Rolls::Yes,
                "CAPI-TEMPLATE-ROTATION",
                &["cp", "pool-a+pool-b"],
                8,
                2,
            ),
            (
                "team-b/frozen",
                Rolls::Yes,
                "CAPI-TEMPLATE-ROTATION",
                &["cp", "pool-a"],
                3,
                1,
            ),
            // pool-a's own override wins; deferral is for version upgrades only.
            (
                "team-b/orders",
                Rolls::Yes,
                "CAPI-TEMPLATE-ROTATION",
                &["cp", "pool-b+pool-c"],
                6,
                2,
            ),
            // hold/defer do not apply to a variable change.
            (
                "team-c/ledger",
                Rolls::Yes,
                "CAPI-TEMPLATE-ROTATION",
                &["cp", "a+b+c+d+e"],
                15,
                5,
            ),
            (
                "team-c/old",
                Rolls::Yes,
                "CAPI-TEMPLATE-ROTATION",
                &["cp", "np"],
                2,
                1,
            ),
        ],
    );
    assert_eq!(got[1].order, Some(Order::ParallelPerPool));
    assert!(
        got[3].pools[0]
            .note
            .as_deref()
            .unwrap()
            .contains("override")
    );

    // On one pool: only that pool, no control plane; unchanged value rolls nothing.
    let one = run(
        &f,
        &set("vmClass", json!("guaranteed-large"), Some("pool-a")),
    );
    assert_eq!(steps(&one[3]), ["pool-a"]);
    assert_eq!(one[4].rule.id, "VAR-NO-POOL");
    let same = run(
        &f,
        &set("vmClass", json!("best-effort-large"), Some("pool-a")),
    );
    assert_eq!(
        (same[3].rolls, same[3].rule.id.as_str()),
        (Rolls::No, "VAR-UNCHANGED")
    );
    let same_cluster = run(&f, &set("vmClass", json!("best-effort-medium"), None));
    assert_eq!(
        same_cluster[3].rolls,
        Rolls::No,
        "orders already has best-effort-medium; pool-a overrides it"
    );

    // A variable no source ties to a template: maybe, said so.
    let unknown = run(&f, &set("myCustomThing", json!(true), None));
    assert_eq!(
        (unknown[3].rolls, unknown[3].rule.id.as_str()),
        (Rolls::Maybe, "VAR-UNKNOWN-EFFECT")
    );
    // Worker-only variable: no control plane step.
    let labels = run(
        &f,
        &set("nodePoolLabels", json!([{"key": "a", "value": "b"}]), None),
    );
    assert_eq!(steps(&labels[3]), ["pool-a+pool-b+pool-c"]);
}

#[test]
fn vcenter_releases_parse_in_vmware_spellings() {
    let cases = [
        ("8.0", Some("8.0.0")),
        ("8.0.0", Some("8.0.0")),
        ("8.0GA", Some("8.0.0")),
        ("8.0.0b", Some("8.0.0b")),
        ("8.0u2c", Some("8.0.2c")),
        ("8.0 U2", Some("8.0.2")),
        ("8.0 Update 1", Some("8.0.1")),
        ("7.0.3", Some("7.0.3")),
        ("8.0.2cc", None),
        ("eight", None),
        ("8", None),
        ("8.0.1.2", None),
    ];
    for (text, want) in cases {
        assert_eq!(
            VcRelease::parse(text).map(|v| v.to_string()).as_deref(),
            want,
            "{text:?}"
        );
    }
    let v = |s: &str| VcRelease::parse(s).unwrap();
    assert!(v("8.0.0") < v("8.0.0b") && v("8.0.0b") < v("8.0.0c") && v("8.0.0c") < v("8.0.1"));
}

#[test]
fn vcenter_upgrade_follows_vmwares_table() {
    let f = fleet();
    let up = |from: &str, to: &str, harbor: Option<bool>, tkgs: Option<&str>| {
        forecast::forecast(
            &f.clusters,
            &f.mds,
            &f.machines,
            &Trigger::VcenterUpgrade {
                from: from.into(),
                to: to.into(),
                embedded_harbor: harbor,
                tkg_service_version: tkgs.map(str::to_owned),
            },
        )
    };
    // (from, to, harbor, rule, rolls of legacy (noProxy) and orders (empty noProxy))
    let cases: &[(&str, &str, Option<bool>, &str, Rolls, Rolls)] = &[
        (
            "7.0.3",
            "8.0.0",
            None,
            "VMW-RU-ANY-8X",
            Rolls::Yes,
            Rolls::Yes,
        ),
        (
            "7.0.2",
            "7.0.3",
            None,
            "VMW-RU-7X-ANY",
            Rolls::Maybe,
            Rolls::Maybe,
        ),
        (
            "8.0.0",
            "8.0.0c",
            None,
            "VMW-RU-80GA-80BC",
            Rolls::Yes,
            Rolls::Maybe,
        ),
        (
            "8.0.0",
            "8.0.0b",
            Some(false),
            "VMW-RU-80GA-80BC",
            Rolls::Yes,
            Rolls::No,
        ),
        (
            "8.0.0",
            "8.0.0b",
            Some(true),
            "VMW-RU-80GA-80BC",
            Rolls::Yes,
            Rolls::Yes,
        ),
        (
            "8.0.0b",
            "8.0.0c",
            None,
            "VMW-RU-80B-80C",
            Rolls::No,
            Rolls::No,
        ),
        (
            "8.0.0c",
            "8.0u1",
            None,
            "VMW-RU-80C-80U1",
            Rolls::No,
            Rolls::No,
        ),
        (
            "8.0.1",
            "8.0.2",
            None,
            "VMW-RU-8X-80U2",
            Rolls::Yes,
            Rolls::Yes,
        ),
        (
            "8.0.0c",
            "8.0 U2c",
            None,
            "VMW-RU-8X-80U2C",
            Rolls::Yes,
            Rolls::Yes,
        ),
        (
            "8.0.2",
            "8.0.3",
            None,
            "VMW-RU-UNLISTED",
            Rolls::Maybe,
            Rolls::Maybe,
        ),
    ];
    for (from, to, harbor, rule, legacy, orders) in cases {
        let got = up(from, to, *harbor, None).unwrap();
        let what = format!("{from} -> {to} harbor {harbor:?}");
        assert_eq!(got[0].rule.id, *rule, "{what}");
        assert_eq!(got[0].rolls, *legacy, "{what}");
        assert_eq!(got[3].rolls, *orders, "{what}");
        if *orders == Rolls::Yes {
            // A system template change: control plane first, then one node per pool in parallel.
            assert_eq!(steps(&got[3]), ["cp", "pool-a+pool-b+pool-c"], "{what}");
            assert_eq!(steps(&got[0]), ["cp", "workers+gpu"], "{what}");
        }
    }
    let independent = up("8.0.1", "8.0.2", None, Some("3.1.0")).unwrap();
    assert!(
        independent
            .iter()
            .all(|f| f.rolls == Rolls::No && f.rule.id == "VMW-TKGS-3-INDEPENDENT")
    );
    assert_eq!(
        up("8.0.2", "8.0.1", None, None).unwrap_err(),
        TriggerError::Downgrade {
            from: "8.0.2".into(),
            to: "8.0.1".into()
        }
    );
    assert!(
        matches!(up("eight", "8.0.1", None, None).unwrap_err(), TriggerError::BadVcenterVersion(v) if v == "eight")
    );
    // Every row of the data carries an id, a text and parses.
    let table = forecast::vmware_table().unwrap();
    assert!(table.url.starts_with("https://") && table.rows.len() == 7);
    for row in &table.rows {
        for r in row
            .from
            .exact
            .iter()
            .chain(&row.to.exact)
            .chain(row.from.min.iter())
            .chain(row.to.below.iter())
        {
            assert!(VcRelease::parse(r).is_some(), "{}: {r}", row.id);
        }
    }
}

#[test]
fn tkg_service_upgrade_may_roll_everything() {
    let f = fleet();
    let got = run(&f, &Trigger::TkgServiceUpgrade);
    assert!(
        got.iter()
            .all(|f| f.rolls == Rolls::Maybe && f.rule.id == "VMW-TKGS-UPGRADE")
    );
}

#[test]
fn supervisor_findings_name_paused_pending_held_and_bad_targets() {
    let f = fleet();
    let got = run(&f, &tkr(TARGET));
    let findings = supervisor_findings(&got, Some(TARGET), Some(&f.tkrs));
    let codes: Vec<(&str, &str)> = findings
        .iter()
        .map(|x| (x.code.as_str(), x.cluster.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            ("UC-ROLL-PAUSED", "team-b/frozen"),
            ("UC-ROLL-PENDING", "team-b/orders"),
            ("UC-ROLL-HELD", "team-b/orders"),
            ("UC-ROLL-HELD", "team-c/ledger"),
            ("UC-TKR-MINOR-SKIP", "team-c/old"),
        ]
    );
    assert_eq!(findings[4].severity, Severity::Blocker);
    let incompatible = "v1.29.2---vmware.1-fips.1-tkg.1";
    let got = run(&f, &tkr(incompatible));
    let bad = supervisor_findings(&got, Some(incompatible), Some(&f.tkrs));
    let nr: Vec<&Finding> = bad
        .iter()
        .filter(|x| x.code == "UC-TKR-NOT-READY")
        .collect();
    assert_eq!(nr.len(), 5, "every cluster that would roll");
    assert!(
        nr[0].message.contains("Compatible=False") && nr[0].message.contains("incompatible"),
        "{}",
        nr[0].message
    );
    let missing = "v1.29.9---vmware.1-tkg.1";
    let got = run(&f, &tkr(missing));
    assert!(
        supervisor_findings(&got, Some(missing), Some(&f.tkrs))
            .iter()
            .any(|x| x.code == "UC-TKR-NOT-FOUND")
    );
    // Without the TKR list (no access) nothing is claimed about the target.
    assert!(
        !supervisor_findings(&got, Some(missing), None)
            .iter()
            .any(|x| x.code.starts_with("UC-TKR-NOT"))
    );
}

fn workload() -> (Vec<Pod>, Vec<Pdb>) {
    let v: Value = serde_json::from_str(ORDERS_WORKLOAD).unwrap();
    (
        list(&v, "pods").iter().map(Pod::from_value).collect(),
        list(&v, "pdbs").iter().map(Pdb::from_value).collect(),
    )
}

#[test]
fn drain_blockers_and_harms_in_roll_order() {
    let f = fleet();
    let got = run(&f, &tkr(TARGET));
    let orders = &f.clusters[3];
    let (pods, pdbs) = workload();
    let findings = drain::analyse(orders, &got[3], &f.machines, &pods, &pdbs);
    let rows: Vec<(&str, Option<usize>, Option<&str>, Option<&str>, Vec<&str>)> = findings
        .iter()
        .map(|x| {
            (
                x.code.as_str(),
                x.step,
                x.node.as_deref(),
                x.pdb.as_deref(),
                x.pods.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let want: Vec<(&str, Option<usize>, Option<&str>, Option<&str>, Vec<&str>)> = vec![
        (
            "UC-DRAIN-PDB-COLOCATED",
            Some(2),
            Some("orders-a-1"),
            Some("shop/web"),
            vec!["shop/web-5d8f7-x1", "shop/web-5d8f7-x2"],
        ),
        (
            "UC-DRAIN-PDB-ZERO",
            Some(2),
            Some("orders-a-1"),
            Some("shop/db"),
            vec!["shop/db-0"],
        ),
        (
            "UC-DRAIN-MULTIPLE-PDBS",
            Some(2),
            Some("orders-a-2"),
            Some("shop/api, shop/frontend"),
            vec!["shop/api-7c9b-p1"],
        ),
        (
            "UC-DRAIN-PDB-ZERO",
            Some(2),
            Some("orders-a-2"),
            Some("shop/db"),
            vec!["shop/db-1"],
        ),
        (
            "UC-DRAIN-MULTIPLE-PDBS",
            Some(2),
            Some("orders-a-3"),
            Some("shop/api, shop/frontend"),
            vec!["shop/api-7c9b-p2"],
        ),
        (
            "UC-DRAIN-PDB-ZERO",
            Some(2),
            Some("orders-a-3"),
            Some("shop/db"),
            vec!["shop/db-2"],
        ),
        (
            "UC-DRAIN-NO-RESCHEDULE",
            Some(2),
            Some("orders-a-3"),
            Some("shop/edge"),
            vec!["shop/edge-66f-q1"],
        ),
        (
            "UC-HARM-NO-CONTROLLER",
            Some(2),
            Some("orders-a-3"),
            None,
            vec!["shop/debug-shell"],
        ),
        (
            "UC-HARM-EMPTYDIR",
            Some(3),
            Some("orders-c-1"),
            None,
            vec!["shop/cache-9a-z1"],
        ),
        (
            "UC-HARM-ONE-POOL",
            Some(2),
            None,
            None,
            vec!["shop/api-7c9b-p1", "shop/api-7c9b-p2"],
        ),
        (
            "UC-HARM-NO-PDB",
            Some(3),
            Some("orders-c-1"),
            None,
            vec!["shop/batch-1f-b1", "shop/batch-1f-b2"],
        ),
        (
            "UC-HARM-ONE-NODE",
            Some(3),
            Some("orders-c-1"),
            None,
            vec!["shop/batch-1f-b1", "shop/batch-1f-b2"],
        ),
        (
            "UC-HARM-SINGLE-REPLICA",
            Some(3),
            Some("orders-c-1"),
            None,
            vec!["shop/cache-9a-z1"],
        ),
        (
            "UC-HARM-NO-PDB",
            Some(2),
            Some("orders-a-1"),
            None,
            vec![
                "shop/worker-4b-w0",
                "shop/worker-4b-w1",
                "shop/worker-4b-w2",
            ],
        ),
        (
            "UC-HARM-ONE-POOL",
            Some(2),
            None,
            None,
            vec![
                "shop/worker-4b-w0",
                "shop/worker-4b-w1",
                "shop/worker-4b-w2",
            ],
        ),
        (
            "UC-HARM-ONE-POOL",
            Some(2),
            None,
            None,
            vec!["shop/db-0", "shop/db-1", "shop/db-2"],
        ),
    ];
    assert_eq!(rows, want);
    // Every code is in the catalog with the severity the finding carries; every finding has a fix.
    for x in &findings {
        let c = check(&x.code).unwrap_or_else(|| panic!("{} not in CHECKS", x.code));
        assert_eq!(c.severity, x.severity, "{}", x.code);
        assert!(!x.fix.is_empty());
    }
    // nodeDrainTimeout: pool-a sets 30m (forced violation), pool-c none (stall without end).
    assert!(
        findings[1].message.contains("nodeDrainTimeout is 30m"),
        "{}",
        findings[1].message
    );
    // The deferred pool's hostPath pods are not touched by this roll; a variable change rolls pool-b.
    assert!(!findings.iter().any(|x| x.code == "UC-HARM-LOCAL-DATA"));
    let var = run(
        &f,
        &Trigger::SetVariable {
            name: "vmClass".into(),
            value: json!("x"),
            pool: None,
        },
    );
    let findings = drain::analyse(orders, &var[3], &f.machines, &pods, &pdbs);
    let local: Vec<&Finding> = findings
        .iter()
        .filter(|x| x.code == "UC-HARM-LOCAL-DATA")
        .collect();
    assert_eq!(local.len(), 2);
    assert_eq!(local[0].step, Some(2));
    // pool-a does not roll there, so its blockers vanish.
    assert!(
        !findings
            .iter()
            .any(|x| x.node.as_deref() == Some("orders-a-1"))
    );
    let edge_c = findings
        .iter()
        .find(|x| x.code == "UC-HARM-EMPTYDIR")
        .unwrap();
    assert!(edge_c.message.contains("step 2"), "{}", edge_c.message);
}

#[test]
fn stall_text_tells_unset_from_set_timeouts() {
    let f = fleet();
    let got = run(&f, &tkr(TARGET));
    let mut orders = f.clusters[3].clone();
    orders.pools[0].node_drain_timeout = Some("0s".into());
    let (pods, pdbs) = workload();
    let findings = drain::analyse(&orders, &got[3], &f.machines, &pods, &pdbs);
    let zero = findings
        .iter()
        .find(|x| x.code == "UC-DRAIN-PDB-ZERO")
        .unwrap();
    assert!(
        zero.message.contains("unset") && zero.message.contains("without end"),
        "0s is no timeout: {}",
        zero.message
    );
}

#[test]
fn pdb_allowed_disruptions_from_spec_when_status_is_missing() {
    let pod = |ready: bool| {
        Pod::from_value(
            &json!({"metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}),
        )
    };
    let (r, u) = (pod(true), pod(false));
    let pdb = |spec: Value, status: Option<i64>| {
        let mut v = json!({"metadata": {"name": "b", "namespace": "n"}, "spec": spec});
        if let Some(n) = status {
            v["status"] = json!({"disruptionsAllowed": n});
        }
        Pdb::from_value(&v)
    };
    let sel = json!({"matchLabels": {"a": "b"}});
    // (spec, status, pods, allowed)
    let cases: Vec<(Value, Option<i64>, Vec<&Pod>, i64)> = vec![
        (
            json!({"selector": sel, "minAvailable": 1}),
            None,
            vec![&r, &r],
            1,
        ),
        (
            json!({"selector": sel, "minAvailable": 2}),
            None,
            vec![&r, &r],
            0,
        ),
        (
            json!({"selector": sel, "minAvailable": "50%"}),
            None,
            vec![&r, &r, &r],
            1,
        ),
        (
            json!({"selector": sel, "minAvailable": "100%"}),
            None,
            vec![&r, &r],
            0,
        ),
        (
            json!({"selector": sel, "maxUnavailable": 1}),
            None,
            vec![&r, &r],
            1,
        ),
        (
            json!({"selector": sel, "maxUnavailable": 1}),
            None,
            vec![&r, &u],
            0,
        ),
        (
            json!({"selector": sel, "maxUnavailable": 0}),
            None,
            vec![&r, &r],
            0,
        ),
        (
            json!({"selector": sel, "maxUnavailable": "34%"}),
            None,
            vec![&r, &r, &r],
            2,
        ),
        (
            json!({"selector": sel, "minAvailable": 1}),
            Some(0),
            vec![&r, &r],
            0,
        ),
        (
            json!({"selector": sel, "minAvailable": 5}),
            Some(3),
            vec![&r],
            3,
        ),
    ];
    for (spec, status, pods, want) in cases {
        assert_eq!(
            pdb(spec.clone(), status).allowed(&pods),
            want,
            "{spec} {status:?}"
        );
    }
    assert_eq!(
        IntOrPercent::Percent(50).scaled(3),
        2,
        "percentages round up"
    );
    // A null selector covers nothing; an empty one covers the namespace.
    assert!(!pdb(json!({"maxUnavailable": 1}), None).covers(&r));
    assert!(pdb(json!({"selector": {}, "maxUnavailable": 1}), None).covers(&r));
}

#[test]
fn selectors_match_as_kubernetes_does() {
    let labels: std::collections::BTreeMap<String, String> = [("app", "db"), ("tier", "back")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sel = |e: (&str, &str, &[&str])| Selector {
        match_labels: Default::default(),
        expressions: vec![(
            e.0.into(),
            e.1.into(),
            e.2.iter().map(|s| s.to_string()).collect(),
        )],
    };
    let cases: &[((&str, &str, &[&str]), bool)] = &[
        (("app", "In", &["db", "x"]), true),
        (("app", "In", &["x"]), false),
        (("app", "NotIn", &["x"]), true),
        (("zone", "NotIn", &["x"]), true),
        (("app", "NotIn", &["db"]), false),
        (("tier", "Exists", &[]), true),
        (("zone", "Exists", &[]), false),
        (("zone", "DoesNotExist", &[]), true),
        (("app", "Bogus", &[]), false),
    ];
    for (e, want) in cases {
        assert_eq!(sel(*e).matches(&labels), *want, "{e:?}");
    }
}

#[test]
fn pods_the_drain_leaves_alone() {
    let (pods, _) = workload();
    let by = |n: &str| pods.iter().find(|p| p.name == n).unwrap();
    for (name, drained) in [
        ("logger-abc", false),
        ("kube-proxy-orders-a-1", false),
        ("report-28h-j1", false),
        ("probe-once", false),
        ("debug-shell", true),
        ("db-0", true),
    ] {
        assert_eq!(by(name).drained(), drained, "{name}");
    }
    assert_eq!(
        by("web-5d8f7-x1").workload().as_deref(),
        Some("Deployment/web")
    );
    assert_eq!(by("db-0").workload().as_deref(), Some("StatefulSet/db"));
    assert_eq!(by("edge-66f-q1").pinned_to.as_deref(), Some("orders-a-3"));
}

#[test]
fn exit_codes_for_scripts() {
    let f = fleet();
    let rolls = run(&f, &tkr(TARGET));
    let none = run(&f, &tkr("v1.28.8+vmware.1-fips.1-tkg.2"));
    let finding = |s: Severity| Finding {
        code: "X".into(),
        severity: s,
        cluster: "a/b".into(),
        step: None,
        node: None,
        pdb: None,
        pods: vec![],
        message: String::new(),
        fix: String::new(),
    };
    let (b, w, i) = (
        finding(Severity::Blocker),
        finding(Severity::Warning),
        finding(Severity::Info),
    );
    let cases: Vec<(Option<FailOn>, Vec<Finding>, &[ClusterForecast], u8)> = vec![
        (None, vec![b.clone()], &rolls, 0),
        (
            Some(FailOn::Blocker),
            vec![b.clone(), w.clone()],
            &rolls,
            EXIT_BLOCKERS,
        ),
        (Some(FailOn::Blocker), vec![w.clone(), i.clone()], &rolls, 0),
        (
            Some(FailOn::Warning),
            vec![w.clone(), i.clone()],
            &rolls,
            EXIT_WARNINGS,
        ),
        (
            Some(FailOn::Warning),
            vec![w.clone(), b.clone()],
            &rolls,
            EXIT_BLOCKERS,
        ),
        (Some(FailOn::Warning), vec![i.clone()], &rolls, 0),
        (Some(FailOn::Roll), vec![], &rolls, EXIT_ROLLS),
        (Some(FailOn::Roll), vec![b.clone()], &none[..5], 0),
    ];
    for (gate, findings, forecasts, want) in cases {
        assert_eq!(exit_code(gate, &findings, forecasts), want, "{gate:?}");
    }
}

#[test]
fn check_codes_are_unique_and_sourced() {
    let mut codes: Vec<&str> = CHECKS.iter().map(|c| c.code).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), CHECKS.len());
    assert!(
        CHECKS
            .iter()
            .all(|c| c.code.starts_with("UC-") && !c.source.is_empty())
    );
}

// ---------------------------------------------------------------------------------------------
// --class and -f

fn orders_live() -> Value {
    json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": "orders", "namespace": "team-b", "labels": {"env": "prod"}},
        "spec": {"topology": {
            "class": "builtin-generic-v3.1.0",
            "version": "v1.28.8---vmware.1-fips.1-tkg.2",
            "controlPlane": {"replicas": 3},
            "workers": {"machineDeployments": [
                {"class": "node-pool", "name": "pool-a", "replicas": 3, "failureDomain": "zone-a",
                 "nodeDrainTimeout": "30m",
                 "variables": {"overrides": [{"name": "vmClass", "value": "best-effort-large"}]}},
                {"class": "node-pool", "name": "pool-b", "replicas": 2,
                 "metadata": {"annotations": {"topology.cluster.x-k8s.io/defer-upgrade": ""}}},
                {"class": "gpu-pool", "name": "pool-c", "replicas": 1}
            ]},
            "variables": [{"name": "vmClass", "value": "best-effort-medium"},
                          {"name": "storageClass", "value": "gold"},
                          {"name": "ntp", "value": "time.corp.example"}]
        }}
    })
}

fn edit(live: &Value, pointer: &str, value: Value) -> Value {
    let mut v = live.clone();
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    v
}

fn manifest(live: &Value, file: &Value) -> ClusterForecast {
    let changes = change::manifest_changes(live, file).unwrap();
    let cluster = model::parse_cluster(live).unwrap();
    let t = Trigger::Manifest {
        kind: "Cluster".into(),
        namespace: "team-b".into(),
        name: "orders".into(),
        changes,
    };
    forecast::forecast(&[cluster], &[], &[], &t)
        .unwrap()
        .remove(0)
}

#[test]
fn manifest_fields_roll_or_not_by_rule() {
    let live = orders_live();
    let mds = "/spec/topology/workers/machineDeployments";
    // (what, edited file, rolls, rule id, steps)
    let rows: Vec<(&str, Value, Rolls, &str, Vec<&str>)> = vec![
        (
            "nothing",
            live.clone(),
            Rolls::No,
            "MANIFEST-UNCHANGED",
            vec![],
        ),
        (
            "replicas scale",
            edit(&live, &format!("{mds}/0/replicas"), json!(5)),
            Rolls::No,
            "CAPI-SCALE",
            vec![],
        ),
        (
            "cp replicas scale",
            edit(&live, "/spec/topology/controlPlane/replicas", json!(5)),
            Rolls::No,
            "CAPI-SCALE",
            vec![],
        ),
        (
            "labels in place",
            edit(&live, "/metadata/labels/env", json!("dev")),
            Rolls::No,
            "CAPI-IN-PLACE",
            vec![],
        ),
        (
            "drain timeout in place",
            edit(&live, &format!("{mds}/0/nodeDrainTimeout"), json!("1h")),
            Rolls::No,
            "CAPI-IN-PLACE",
            vec![],
        ),
        (
            "failure domain",
            edit(&live, &format!("{mds}/0/failureDomain"), json!("zone-b")),
            Rolls::Yes,
            "CAPI-MD-FAILURE-DOMAIN",
            vec!["pool-a"],
        ),
        (
            "md class",
            edit(&live, &format!("{mds}/2/class"), json!("node-pool")),
            Rolls::Yes,
            "CAPI-MD-CLASS",
            vec!["pool-c"],
        ),
        (
            "pool override",
            edit(
                &live,
                &format!("{mds}/0/variables/overrides/0/value"),
                json!("guaranteed-large"),
            ),
            Rolls::Yes,
            "CAPI-TEMPLATE-ROTATION",
            vec!["pool-a"],
        ),
        // The cluster-wide vmClass: control plane and the pools without their own override.
        (
            "vmClass variable",
            edit(
                &live,
                "/spec/topology/variables/0/value",
                json!("guaranteed-large"),
            ),
            Rolls::Yes,
            "CAPI-TEMPLATE-ROTATION",
            vec!["cp", "pool-a+pool-b+pool-c"],
        ),
        (
            "unknown variable",
            edit(&live, "/spec/topology/variables/2/value", json!("ntp2")),
            Rolls::Yes,
            "CAPI-TEMPLATE-ROTATION",
            vec!["cp", "pool-a+pool-b+pool-c"],
        ),
        (
            "class rebase",
            edit(
                &live,
                "/spec/topology/class",
                json!("builtin-generic-v3.2.0"),
            ),
            Rolls::Yes,
            "CAPI-CLASS-REBASE",
            vec!["cp", "pool-a+pool-b+pool-c"],
        ),
        // Version: sequential, pool-b deferred.
        (
            "version",
            edit(
                &live,
                "/spec/topology/version",
                json!("v1.29.4---vmware.3-fips.1-tkg.1"),
            ),
            Rolls::Yes,
            "CAPI-VERSION",
            vec!["cp", "pool-a", "pool-c"],
        ),
        (
            "version two minors",
            edit(&live, "/spec/topology/version", json!("v1.30.1---vmware.1")),
            Rolls::No,
            "CAPI-VERSION-MINOR-SKIP",
            vec![],
        ),
        (
            "unknown field",
            edit(
                &live,
                "/spec/topology/controlPlane",
                json!({"replicas": 3, "readinessGates": [{"conditionType": "X"}]}),
            ),
            Rolls::Maybe,
            "FIELD-UNKNOWN-EFFECT",
            vec!["cp"],
        ),
    ];
    for (what, file, rolls, id, want_steps) in rows {
        let f = manifest(&live, &file);
        assert_eq!((f.rolls, f.rule.id.as_str()), (rolls, id), "{what}: {f:#?}");
        assert_eq!(steps(&f), want_steps, "{what}");
    }
    // The ntp variable is not in the table of known variables: it may roll.
    let f = manifest(
        &live,
        &edit(&live, "/spec/topology/variables/2/value", json!("ntp2")),
    );
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("spec.topology.variables[ntp].value")),
        "{:?}",
        f.notes
    );
}

#[test]
fn manifest_lists_compare_by_name_and_absent_keys_keep_live_values() {
    let live = orders_live();
    // Pools reordered: no change of content.
    let mut file = live.clone();
    file["spec"]["topology"]["workers"]["machineDeployments"]
        .as_array_mut()
        .unwrap()
        .reverse();
    assert_eq!(change::manifest_changes(&live, &file).unwrap(), vec![]);
    // A file without metadata.labels and without variables keeps them (merge patch).
    let mut file = live.clone();
    file["metadata"].as_object_mut().unwrap().remove("labels");
    file["spec"]["topology"]
        .as_object_mut()
        .unwrap()
        .remove("variables");
    assert_eq!(change::manifest_changes(&live, &file).unwrap(), vec![]);
    // A pool dropped from the list is removed: no roll of the others, named.
    let mut file = live.clone();
    file["spec"]["topology"]["workers"]["machineDeployments"]
        .as_array_mut()
        .unwrap()
        .remove(2);
    let ch = change::manifest_changes(&live, &file).unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(
        ch[0].path,
        "spec.topology.workers.machineDeployments[pool-c]"
    );
    assert_eq!(
        (ch[0].rolls, ch[0].rule.id.as_str()),
        (Rolls::No, "CAPI-POOL-ADDED-OR-REMOVED")
    );
    // A key left out inside a list entry is removed (the list is replaced).
    let mut file = live.clone();
    file["spec"]["topology"]["workers"]["machineDeployments"][0]
        .as_object_mut()
        .unwrap()
        .remove("failureDomain");
    let ch = change::manifest_changes(&live, &file).unwrap();
    assert_eq!(
        ch[0].path,
        "spec.topology.workers.machineDeployments[pool-a].failureDomain"
    );
    assert_eq!(ch[0].to, None);
    assert_eq!(ch[0].rolls, Rolls::Yes);
}

#[test]
fn manifest_tkc_fields() {
    let live = json!({
        "apiVersion": "run.tanzu.vmware.com/v1alpha3", "kind": "TanzuKubernetesCluster",
        "metadata": {"name": "payments", "namespace": "team-a"},
        "spec": {"topology": {
            "controlPlane": {"replicas": 3, "vmClass": "guaranteed-medium", "storageClass": "gold",
                             "tkr": {"reference": {"name": "v1.28.8---vmware.1-fips.1-tkg.2"}}},
            "nodePools": [
                {"name": "pool-a", "replicas": 3, "vmClass": "best-effort-large", "storageClass": "gold", "nodeDrainTimeout": "15m"},
                {"name": "pool-b", "replicas": 2, "vmClass": "best-effort-large", "storageClass": "gold"}
            ]}}
    });
    let np = "/spec/topology/nodePools";
    // (what, file, change rolls, rule id, affects)
    let rows: Vec<(&str, Value, Rolls, &str, change::Affects)> = vec![
        (
            "pool vmClass",
            edit(
                &live,
                &format!("{np}/1/vmClass"),
                json!("best-effort-xlarge"),
            ),
            Rolls::Yes,
            "VMW-NODE-SPEC",
            change::Affects::Pool("pool-b".into()),
        ),
        (
            "cp storageClass",
            edit(
                &live,
                "/spec/topology/controlPlane/storageClass",
                json!("silver"),
            ),
            Rolls::Yes,
            "VMW-NODE-SPEC",
            change::Affects::ControlPlane,
        ),
        (
            "pool replicas",
            edit(&live, &format!("{np}/0/replicas"), json!(4)),
            Rolls::No,
            "CAPI-SCALE",
            change::Affects::Pool("pool-a".into()),
        ),
        (
            "pool drain timeout",
            edit(&live, &format!("{np}/0/nodeDrainTimeout"), json!("0s")),
            Rolls::No,
            "CAPI-IN-PLACE",
            change::Affects::Pool("pool-a".into()),
        ),
        (
            "tkr",
            edit(
                &live,
                "/spec/topology/controlPlane/tkr/reference/name",
                json!("v1.29.4---vmware.3-fips.1-tkg.1"),
            ),
            Rolls::Yes,
            "CAPI-VERSION",
            change::Affects::Cluster,
        ),
        (
            "os image",
            edit(
                &live,
                "/metadata",
                json!({"name": "payments", "namespace": "team-a", "annotations": {"run.tanzu.vmware.com/resolve-os-image": "os-name=ubuntu"}}),
            ),
            Rolls::Yes,
            "VMW-OS-IMAGE",
            change::Affects::Cluster,
        ),
    ];
    for (what, file, rolls, id, affects) in rows {
        let ch = change::manifest_changes(&live, &file).unwrap();
        assert_eq!(ch.len(), 1, "{what}: {ch:#?}");
        assert_eq!(
            (ch[0].rolls, ch[0].rule.id.as_str(), &ch[0].affects),
            (rolls, id, &affects),
            "{what}"
        );
        assert!(!ch[0].rule.source.is_empty());
    }
}

#[test]
fn manifest_errors_name_the_problem() {
    use change::{ManifestError, identify};
    let rows: Vec<(Value, ManifestError)> = vec![
        (json!("just text"), ManifestError::NotAnObject),
        (json!(["a"]), ManifestError::NotAnObject),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            ManifestError::Kind("v1 ConfigMap".into()),
        ),
        (
            json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster", "metadata": {}}),
            ManifestError::NoName,
        ),
    ];
    for (doc, want) in rows {
        assert_eq!(identify(&doc), Err(want));
    }
}

#[test]
fn class_rebase_rules() {
    let live = orders_live();
    let cluster = model::parse_cluster(&live).unwrap();
    let offers = model::parse_cluster_classes(&[
        json!({"metadata": {"name": "builtin-generic-v3.2.0", "namespace": "vmware-system-vks-public"},
               "spec": {"workers": {"machineDeployments": [{"class": "node-pool"}, {"class": "gpu-pool"}]}}}),
        json!({"metadata": {"name": "small", "namespace": "team-b"},
               "spec": {"workers": {"machineDeployments": [{"class": "node-pool"}]}}}),
        json!({"metadata": {"name": "elsewhere", "namespace": "team-z"}, "spec": {}}),
    ]);
    // (class, offers known, rolls, rule id)
    let rows = [
        ("builtin-generic-v3.1.0", true, Rolls::No, "CAPI-CLASS-SAME"),
        (
            "builtin-generic-v3.2.0",
            true,
            Rolls::Yes,
            "CAPI-CLASS-REBASE",
        ),
        ("small", true, Rolls::No, "CAPI-CLASS-INCOMPATIBLE"),
        ("elsewhere", true, Rolls::No, "CAPI-CLASS-NOT-FOUND"),
        ("anything", false, Rolls::Yes, "CAPI-CLASS-REBASE"),
    ];
    for (name, known, rolls, id) in rows {
        let t = Trigger::Class {
            name: name.into(),
            offered: if known { offers.clone() } else { vec![] },
        };
        let f = forecast::forecast(std::slice::from_ref(&cluster), &[], &[], &t)
            .unwrap()
            .remove(0);
        assert_eq!(
            (f.rolls, f.rule.id.as_str()),
            (rolls, id),
            "{name}: {}",
            f.rule.text
        );
        if rolls == Rolls::Yes {
            assert_eq!(steps(&f), ["cp", "pool-a+pool-b+pool-c"], "{name}");
            assert_eq!(f.rule.source, forecast::SRC_CAPI_CHANGE_CLASS);
        }
    }
    // The incompatible pool is named.
    let t = Trigger::Class {
        name: "small".into(),
        offered: offers,
    };
    let f = forecast::forecast(&[cluster], &[], &[], &t)
        .unwrap()
        .remove(0);
    assert!(
        f.rule.text.contains("pool-c (class gpu-pool)"),
        "{}",
        f.rule.text
    );
}

// ---------------------------------------------------------------------------------------------
// Roll feasibility (point 4)

fn feas_cluster(extra: Value) -> Cluster {
    let mut c = json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": "orders", "namespace": "team-b"},
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.156.0/20"]}},
            "topology": {
                "class": "builtin-generic-v3.1.0",
                "version": "v1.28.8---vmware.1-fips.1-tkg.2",
                "controlPlane": {"replicas": 3, "metadata": {"annotations": {"run.tanzu.vmware.com/resolve-os-image": "os-name=ubuntu"}}},
                "workers": {"machineDeployments": [
                    {"class": "node-pool", "name": "pool-a", "replicas": 3,
                     "variables": {"overrides": [{"name": "vmClass", "value": "best-effort-large"}]}}]},
                "variables": [{"name": "vmClass", "value": "best-effort-medium"},
                              {"name": "storageClass", "value": "gold"}]
            }
        }
    });
    json_merge(&mut c, extra);
    model::parse_cluster(&c).unwrap()
}

fn json_merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn feas_plan(c: &Cluster) -> Vec<ClusterForecast> {
    forecast::forecast(std::slice::from_ref(c), &[], &[], &tkr(TARGET)).unwrap()
}

fn osimage(name: &str, os: &str, version: &str, tkr: &str) -> Value {
    json!({"apiVersion": "run.tanzu.vmware.com/v1alpha3", "kind": "OSImage",
           "metadata": {"name": name, "labels": {"os-name": os, "os-version": version, "run.tanzu.vmware.com/tkr": tkr}}})
}

#[test]
fn os_image_resolves_exactly_once() {
    use super::feasibility::os_image_findings;
    let c = feas_cluster(json!({}));
    let plan = feas_plan(&c);
    assert_eq!(c.os_image_selector.as_deref(), Some("os-name=ubuntu"));
    let other = "v1.28.8---vmware.1-fips.1-tkg.2";
    // (images, tkr lists its images, codes)
    let rows: Vec<(Vec<Value>, bool, Vec<&str>)> = vec![
        (
            vec![
                osimage("u", "ubuntu", "22.04", TARGET),
                osimage("p", "photon", "5", TARGET),
            ],
            false,
            vec![],
        ),
        (
            vec![
                osimage("p", "photon", "5", TARGET),
                osimage("u-old", "ubuntu", "22.04", other),
            ],
            false,
            vec!["UC-OSIMAGE-NONE"],
        ),
        (
            vec![
                osimage("u1", "ubuntu", "22.04", TARGET),
                osimage("u2", "ubuntu", "24.04", TARGET),
            ],
            false,
            vec!["UC-OSIMAGE-AMBIGUOUS"],
        ),
        // The TKR's spec.osImages decides which images belong to it (label absent here).
        (
            vec![json!({"metadata": {"name": "u", "labels": {"os-name": "ubuntu"}}})],
            true,
            vec![],
        ),
        (vec![], false, vec!["UC-OSIMAGE-NONE"]),
    ];
    for (images, listed, want) in rows {
        let tkrs = if listed {
            vec![json!({"metadata": {"name": TARGET}, "spec": {"osImages": [{"name": "u"}]}})]
        } else {
            vec![]
        };
        let got = os_image_findings(std::slice::from_ref(&c), &plan, TARGET, &tkrs, &images);
        let codes: Vec<&str> = got.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, want, "{images:?}");
        for f in &got {
            assert_eq!(f.severity, Severity::Blocker);
            assert!(f.message.contains("os-name=ubuntu"), "{}", f.message);
        }
    }
}

#[test]
fn selectors_read_the_equality_grammar() {
    use super::feasibility::selector_matches;
    let labels: std::collections::BTreeMap<String, String> =
        [("os-name", "ubuntu"), ("os-version", "24.04")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let rows = [
        ("os-name=ubuntu", Some(true)),
        ("os-name==ubuntu,os-version=24.04", Some(true)),
        ("os-name=photon", Some(false)),
        ("os-name!=photon", Some(true)),
        ("os-arch", Some(false)),
        ("!os-arch", Some(true)),
        ("", Some(true)),
        ("os-name in (ubuntu)", None),
    ];
    for (sel, want) in rows {
        assert_eq!(selector_matches(sel, &labels), want, "{sel}");
    }
}

#[test]
fn vm_class_storage_class_and_quota_for_the_surge() {
    use super::feasibility::{class_sizes, namespace_offers, placement_findings};
    let c = feas_cluster(json!({}));
    assert_eq!(c.vm_classes, ["best-effort-large", "best-effort-medium"]);
    assert_eq!(c.storage_classes, ["gold"]);
    let plan = feas_plan(&c);
    let classes = vec![
        json!({"metadata": {"name": "best-effort-large", "namespace": "team-b"}, "spec": {"hardware": {"cpus": 4, "memory": "16Gi"}}}),
        json!({"metadata": {"name": "best-effort-medium", "namespace": "team-b"}, "spec": {"hardware": {"cpus": 2, "memory": "8Gi"}}}),
    ];
    let binding = |name: &str| json!({"metadata": {"name": name, "namespace": "team-b"}, "classRef": {"kind": "VirtualMachineClass", "name": name}});
    let quota = |sc: &str, cpu_left: &str| {
        json!({"metadata": {"name": "q", "namespace": "team-b"},
        "spec": {"hard": {format!("{sc}.storageclass.storage.k8s.io/requests.storage"): "1Ti", "limits.cpu": "100", "limits.memory": "1Ti"}},
        "status": {"hard": {format!("{sc}.storageclass.storage.k8s.io/requests.storage"): "1Ti", "limits.cpu": "100", "limits.memory": "1Ti"},
                   "used": {"limits.cpu": cpu_left, "limits.memory": "0"}}})
    };
    // (namespaced classes, bindings, quotas, codes)
    let rows: Vec<(Vec<Value>, Vec<Value>, Vec<Value>, Vec<&str>)> = vec![
        (classes.clone(), vec![], vec![quota("gold", "10")], vec![]),
        // 8.x with bindings only (classes cluster-scoped): a missing binding is a blocker.
        (
            vec![],
            vec![binding("best-effort-large")],
            vec![quota("gold", "10")],
            vec!["UC-VMCLASS-UNAVAILABLE"],
        ),
        (
            vec![],
            vec![binding("best-effort-large"), binding("best-effort-medium")],
            vec![quota("gold", "10")],
            vec![],
        ),
        (
            classes.clone(),
            vec![],
            vec![quota("silver", "10")],
            vec!["UC-STORAGECLASS-UNAVAILABLE"],
        ),
        // 97 of 100 CPUs used: one surge VM of the biggest class (4 CPUs) does not fit.
        (
            classes.clone(),
            vec![],
            vec![quota("gold", "97")],
            vec!["UC-QUOTA-SURGE"],
        ),
    ];
    for (vmc, binds, quotas, want) in rows {
        let offers = namespace_offers(&["team-b"], Some(&vmc), Some(&binds), Some(&quotas));
        let sizes = class_sizes(&classes);
        let got = placement_findings(std::slice::from_ref(&c), &plan, &offers, &sizes);
        let codes: Vec<&str> = got.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, want, "{vmc:?} {binds:?} {quotas:?}");
        for f in &got {
            assert_eq!(f.severity, Severity::Blocker);
        }
    }
    // Nothing listed: nothing judged (the plugin reports the checks as skipped).
    let offers = namespace_offers(&["team-b"], None, None, None);
    assert!(
        placement_findings(
            std::slice::from_ref(&c),
            &plan,
            &offers,
            &Default::default()
        )
        .is_empty()
    );
}

#[test]
fn pod_cidr_headroom() {
    use super::feasibility::{pod_cidr_blocks, pod_cidr_findings};
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(pod_cidr_blocks(&s(&["192.168.156.0/20"])), Some(16));
    assert_eq!(pod_cidr_blocks(&s(&["192.168.0.0/16"])), Some(256));
    assert_eq!(
        pod_cidr_blocks(&s(&["10.0.0.0/24", "10.0.1.0/24"])),
        Some(2)
    );
    assert_eq!(pod_cidr_blocks(&s(&["fd00::/48"])), None);
    // (pods CIDR, pool replicas, codes): 3 CP + pool + 1 surge at a time (version roll).
    let rows: Vec<(&str, u32, Vec<&str>)> = vec![
        ("192.168.156.0/20", 12, vec![]), // 3 + 12 + 1 = 16 of 16
        ("192.168.156.0/20", 13, vec!["UC-POD-CIDR"]), // 17 > 16
        ("", 500, vec![]),                // no pods CIDR (NSX-routed): not judged
    ];
    for (cidr, replicas, want) in rows {
        let cidrs: Vec<&str> = if cidr.is_empty() { vec![] } else { vec![cidr] };
        let c = feas_cluster(
            json!({"spec": {"clusterNetwork": {"pods": {"cidrBlocks": cidrs}},
            "topology": {"workers": {"machineDeployments": [{"class": "node-pool", "name": "pool-a", "replicas": replicas}]}}}}),
        );
        let plan = feas_plan(&c);
        let got = pod_cidr_findings(&[c], &plan);
        let codes: Vec<&str> = got.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, want, "{cidr} {replicas}");
    }
}
