use clap::Parser;
use serde_json::Value;

use super::*;
use crate::cli::{Cli, Command};

const FLEET: &str = include_str!("../../../../core/tests/fixtures/upgrade/fleet.json");

fn args(words: &[&str]) -> std::result::Result<UpgradeCheckArgs, clap::Error> {
    let cli = Cli::try_parse_from(["kubectl-supsvc", "upgrade-check"].iter().chain(words))?;
    match cli.command {
        Command::UpgradeCheck(a) => Ok(a),
        _ => panic!("upgrade-check"),
    }
}

fn fleet(key: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(FLEET).unwrap();
    v[key].as_array().cloned().unwrap_or_default()
}

fn report(words: &[&str], tkrs: bool) -> Report {
    let opts = Options::from_args(&args(words).unwrap()).unwrap();
    build(
        &opts,
        Objects {
            tkcs: fleet("tkcs"),
            clusters: fleet("clusters"),
            machine_deployments: fleet("machineDeployments"),
            machines: fleet("machines"),
            tkrs: tkrs.then(|| fleet("tkrs")),
            coverage: Vec::new(),
            requests: 5,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn flags_become_one_trigger() {
    let t = |w: &[&str]| Options::from_args(&args(w).unwrap()).map(|o| o.trigger);
    assert_eq!(
        t(&["--tkr", "v1.29.4---x"]).unwrap(),
        Trigger::Tkr {
            name: "v1.29.4---x".into()
        }
    );
    assert_eq!(
        t(&["--set", "vmClass=best-effort-large", "--pool", "p"]).unwrap(),
        Trigger::SetVariable {
            name: "vmClass".into(),
            value: Value::String("best-effort-large".into()),
            pool: Some("p".into())
        }
    );
    assert_eq!(
        t(&["--set", "proxy={\"noProxy\":[\"a\"]}"]).unwrap(),
        Trigger::SetVariable {
            name: "proxy".into(),
            value: serde_json::json!({"noProxy": ["a"]}),
            pool: None
        },
        "JSON values are values, not strings"
    );
    assert_eq!(
        t(&[
            "--vcenter-upgrade",
            "--from",
            "8.0.0",
            "--to",
            "8.0.0c",
            "--embedded-harbor",
            "true"
        ])
        .unwrap(),
        Trigger::VcenterUpgrade {
            from: "8.0.0".into(),
            to: "8.0.0c".into(),
            embedded_harbor: Some(true),
            tkg_service_version: None
        }
    );
    assert_eq!(
        t(&["--tkg-service-upgrade"]).unwrap(),
        Trigger::TkgServiceUpgrade
    );
    let err = t(&[]).unwrap_err();
    assert!(
        err.what.contains("needs a trigger") && err.hint.contains("--tkr"),
        "{err:?}"
    );
    assert_eq!(err.exit, crate::error::Exit::Usage);
    assert!(
        t(&["--set", "=x"])
            .unwrap_err()
            .hint
            .contains("--set vmClass=")
    );
    assert!(
        t(&["--tkr", "a", "--pool", "p"])
            .unwrap_err()
            .what
            .contains("--pool applies to --set")
    );
    // Usage errors from clap: two triggers, --pool without --set, --vcenter-upgrade without --to.
    for bad in [
        &["--tkr", "a", "--tkg-service-upgrade"][..],
        &["--vcenter-upgrade", "--from", "8.0.0"],
        &["--tkr", "a", "-o", "html"],
        &["--tkr", "a", "--fail-on", "sometimes"],
    ] {
        assert_eq!(args(bad).unwrap_err().exit_code(), 2, "{bad:?}");
    }
}

#[test]
fn report_lists_every_cluster_and_skips_workload_checks_openly() {
    let r = report(&["--tkr", "v1.29.4---vmware.3-fips.1-tkg.1"], true);
    assert_eq!(r.summary.clusters, 6);
    assert_eq!((r.summary.rolls, r.summary.maybe), (5, 0));
    assert_eq!(r.summary.blockers, 1, "team-c/old skips a minor");
    assert_eq!(r.findings[0].code, "UC-TKR-MINOR-SKIP", "blockers first");
    for check in CHECKS {
        let c = r.coverage.iter().find(|c| c.item == check.code).unwrap();
        match check.scope {
            Scope::Workload => assert_eq!(c.status, "skipped", "{}", check.code),
            // Checks of another trigger say so; none passes silently.
            Scope::Supervisor if check.code.starts_with("UC-CLASS-") => {
                assert_eq!(c.status, "not-applicable", "{}", check.code)
            }
            // Their lists (OSImages, VM classes, quotas) were not given here: skipped, not passed.
            Scope::Supervisor
                if check.code.starts_with("UC-OSIMAGE-")
                    || check.code.contains("CLASS-UNAVAILABLE")
                    || check.code == "UC-QUOTA-SURGE" =>
            {
                assert_eq!(c.status, "skipped", "{}", check.code)
            }
            Scope::Supervisor => assert_eq!(c.status, "ran", "{}", check.code),
        }
    }
    // Without the TKR list, the TKR checks are skipped, not passed.
    let r = report(&["--tkr", "v1.29.4---vmware.3-fips.1-tkg.1"], false);
    let c = r
        .coverage
        .iter()
        .find(|c| c.item == "UC-TKR-NOT-FOUND")
        .unwrap();
    assert_eq!(c.status, "skipped");
    // Only the asked namespaces.
    let r = report(
        &["--tkg-service-upgrade", "--vsphere-namespace", "team-c"],
        false,
    );
    let names: Vec<&str> = r.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ledger", "old"]);
}

#[test]
fn formats_carry_the_same_report() {
    let r = report(
        &["--vcenter-upgrade", "--from", "8.0.0", "--to", "8.0.0c"],
        false,
    );
    let json: Value = serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
    assert_eq!(json["trigger"]["kind"], "vcenterUpgrade");
    assert_eq!(json["clusters"][0]["name"], "legacy");
    assert_eq!(json["clusters"][0]["rolls"], "yes");
    assert_eq!(json["clusters"][0]["rule"]["id"], "VMW-RU-80GA-80BC");
    assert_eq!(json["clusters"][3]["rolls"], "maybe", "harbor unknown");
    let yaml: Value = serde_saphyr::from_str(&render(&r, Format::Yaml).unwrap()).unwrap();
    assert_eq!(yaml, json);
    let text = render(&r, Format::Text).unwrap();
    assert!(
        text.starts_with(
            "Trigger: vCenter upgrade 8.0.0 -> 8.0.0c\n6 clusters: 1 roll, 5 may roll"
        ),
        "{text}"
    );
    assert!(text.contains("VMW-RU-80GA-80BC: From 8.0 GA"), "{text}");
    assert!(
        text.contains("skipped        UC-DRAIN-PDB-ZERO (no rolling cluster's pods"),
        "{text}"
    );
    let md = render(&r, Format::Markdown).unwrap();
    assert!(
        md.starts_with("# upgrade-check: vCenter upgrade 8.0.0 -> 8.0.0c"),
        "{md}"
    );
    assert!(md.contains("| team-a | legacy | TanzuKubernetesCluster | yes | VMW-RU-80GA-80BC | 1.control-plane > 2.workers+gpu |"), "{md}");
}

#[test]
fn gate_exit_codes() {
    let r = report(
        &[
            "--tkr",
            "v1.29.4---vmware.3-fips.1-tkg.1",
            "--fail-on",
            "blocker",
        ],
        true,
    );
    let code = |gate: Option<FailOn>| upgrade::exit_code(gate, &r.findings, &r.clusters);
    assert_eq!(code(Some(FailOn::Blocker)), upgrade::EXIT_BLOCKERS);
    assert_eq!(code(Some(FailOn::Roll)), upgrade::EXIT_ROLLS);
    assert_eq!(code(None), 0);
}

#[test]
fn an_unreadable_list_skips_its_checks() {
    let opts = Options::from_args(&args(&["--tkg-service-upgrade"]).unwrap()).unwrap();
    let objects = |coverage: Vec<Coverage>| Objects {
        tkcs: fleet("tkcs"),
        clusters: fleet("clusters"),
        coverage,
        ..Objects::default()
    };
    let status = |r: &Report| {
        r.coverage
            .iter()
            .find(|c| c.item == "UC-ROLL-PENDING")
            .map(|c| c.status.clone())
            .unwrap()
    };
    let forbidden = Coverage {
        item: "read:machinedeployments.cluster.x-k8s.io".into(),
        status: "skipped".into(),
        reason: Some("forbidden: no".into()),
    };
    let r = build(&opts, objects(vec![forbidden])).unwrap();
    assert_eq!(status(&r), "skipped");
    assert!(r.clusters.iter().all(|c| c.pending.is_empty()));
    let r = build(&opts, objects(Vec::new())).unwrap();
    assert_eq!(status(&r), "ran");
}

fn with_file(doc: Value) -> std::result::Result<Report, Failure> {
    let opts = Options::from_args(&args(&["-f", "changed.yaml"]).unwrap()).unwrap();
    build(
        &opts,
        Objects {
            tkcs: fleet("tkcs"),
            clusters: fleet("clusters"),
            machine_deployments: fleet("machineDeployments"),
            changed: Some(doc),
            ..Objects::default()
        },
    )
}

#[test]
fn a_changed_manifest_forecasts_only_its_cluster_field_by_field() {
    let mut orders = fleet("clusters")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "orders")
        .unwrap();
    orders["spec"]["topology"]["workers"]["machineDeployments"][0]["replicas"] = 7.into();
    orders["spec"]["topology"]["workers"]["machineDeployments"][2]["failureDomain"] =
        "zone-c".into();
    // No namespace in the file: the only cluster of that name is found.
    orders["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let r = with_file(orders).unwrap();
    assert_eq!(r.clusters.len(), 1);
    let f = &r.clusters[0];
    assert_eq!(
        (f.namespace.as_str(), f.name.as_str()),
        ("team-b", "orders")
    );
    assert_eq!(f.rolls, Rolls::Yes);
    assert_eq!(f.rule.id, "CAPI-MD-FAILURE-DOMAIN");
    let rolling: Vec<&str> = f
        .pools
        .iter()
        .filter(|p| p.rolls == Rolls::Yes)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(rolling, ["pool-c"]);
    assert!(!f.control_plane_rolls);
    let Trigger::Manifest { changes, .. } = &r.trigger else {
        panic!("{:?}", r.trigger)
    };
    let ids: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.rule.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            (
                "spec.topology.workers.machineDeployments[pool-a].replicas",
                "CAPI-SCALE"
            ),
            (
                "spec.topology.workers.machineDeployments[pool-c].failureDomain",
                "CAPI-MD-FAILURE-DOMAIN"
            )
        ]
    );
    let text = render(&r, Format::Text).unwrap();
    assert!(
        text.contains("machineDeployments[pool-a].replicas: 3 -> 7: rolls no (CAPI-SCALE"),
        "{text}"
    );
}

#[test]
fn a_manifest_for_a_missing_cluster_or_not_yaml_is_a_clear_error() {
    let err = with_file(serde_json::json!({
        "apiVersion": "run.tanzu.vmware.com/v1alpha3", "kind": "TanzuKubernetesCluster",
        "metadata": {"name": "nope", "namespace": "team-a"}, "spec": {}
    }))
    .unwrap_err();
    let msg = format!("{err}");
    assert!(
        msg.contains("no TanzuKubernetesCluster team-a/nope on the Supervisor"),
        "{msg}"
    );
    let err = parse_manifest("kind: [unclosed", "changed.yaml").unwrap_err();
    assert!(
        format!("{err}").contains("changed.yaml is not a YAML or JSON document"),
        "{err}"
    );
    let err = parse_manifest(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "c.yaml",
    )
    .unwrap_err();
    assert!(format!("{err}").contains("is not a TKG cluster"), "{err}");
}

#[test]
fn class_rebase_checks_the_listed_classes() {
    let opts = Options::from_args(&args(&["--class", "builtin-generic-v3.2.0"]).unwrap()).unwrap();
    let classes = vec![serde_json::json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "ClusterClass",
        "metadata": {"name": "builtin-generic-v3.2.0", "namespace": "vmware-system-vks-public"},
        "spec": {"workers": {"machineDeployments": [{"class": "other-pool"}]}}
    })];
    let r = build(
        &opts,
        Objects {
            tkcs: fleet("tkcs"),
            clusters: fleet("clusters"),
            cluster_classes: Some(classes),
            ..Objects::default()
        },
    )
    .unwrap();
    // No pool's class (node-pool) is offered: every ClusterClass cluster is refused, with a blocker.
    assert!(
        r.clusters
            .iter()
            .filter(|c| c.rule.id != "CAPI-CLASS-NONE")
            .all(|c| c.rule.id == "CAPI-CLASS-INCOMPATIBLE" && c.rolls == Rolls::No),
        "{:#?}",
        r.clusters
    );
    assert!(r.findings.iter().any(|f| f.code == "UC-CLASS-INCOMPATIBLE"));
    let cov = r
        .coverage
        .iter()
        .find(|c| c.item == "UC-CLASS-INCOMPATIBLE")
        .unwrap();
    assert_eq!(cov.status, "ran");
}

fn pod(name: &str, node: &str, labels: Value, controller: Option<&str>) -> Value {
    let mut p = serde_json::json!({
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "my-registry.example.com/c:1"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    });
    if let Some(rs) = controller {
        p["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "u", "controller": true}]);
    }
    p
}

#[test]
fn a_rolling_clusters_pods_give_drain_findings_and_an_unread_one_is_skipped_by_name() {
    let opts =
        Options::from_args(&args(&["--tkr", "v1.29.4---vmware.3-fips.1-tkg.1"]).unwrap()).unwrap();
    let pods = vec![
        pod(
            "ledger-7b6c9d-w2x5r",
            "orders-a-2",
            serde_json::json!({"app": "ledger"}),
            Some("ledger-7b6c9d"),
        ),
        pod("debug-shell", "orders-a-3", serde_json::json!({}), None),
    ];
    let pdbs = vec![serde_json::json!({
        "metadata": {"name": "ledger", "namespace": "shop"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "ledger"}}},
        "status": {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "disruptionsAllowed": 0},
    })];
    let mut workloads = BTreeMap::new();
    workloads.insert(
        "team-b/orders".to_owned(),
        WorkloadRead::Read {
            source: "Secret team-b/orders-kubeconfig".into(),
            pods,
            pdbs,
            manifests: vec![serde_json::json!({"metadata": {"name": "shop-batch", "annotations": {
                "kapp.k14s.io/original": "{\"apiVersion\":\"flowcontrol.apiserver.k8s.io/v1beta2\",\"kind\":\"FlowSchema\"}"}}})],
            metrics: Ok("apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release=\"1.29\",resource=\"prioritylevelconfigurations\",subresource=\"\",version=\"v1beta2\"} 1\n".into()),
        },
    );
    workloads.insert(
        "team-a/payments".to_owned(),
        WorkloadRead::Unread {
            reason: "may not read Secret team-a/payments-kubeconfig".into(),
        },
    );
    let r = build(
        &opts,
        Objects {
            tkcs: fleet("tkcs"),
            clusters: fleet("clusters"),
            machine_deployments: fleet("machineDeployments"),
            machines: fleet("machines"),
            tkrs: Some(fleet("tkrs")),
            workloads,
            ..Default::default()
        },
    )
    .unwrap();
    let zero = r
        .findings
        .iter()
        .find(|f| f.code == "UC-DRAIN-PDB-ZERO")
        .expect("ledger's budget allows 0");
    assert_eq!(zero.cluster, "team-b/orders");
    assert_eq!(zero.node.as_deref(), Some("orders-a-2"));
    assert_eq!(zero.pdb.as_deref(), Some("shop/ledger"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "UC-HARM-NO-CONTROLLER" && f.pods == ["shop/debug-shell"]),
        "{:#?}",
        r.findings
    );
    // The 1.28 -> 1.29 hop removes flowcontrol v1beta2: the recorded manifest and the caller.
    let removed: Vec<(&str, &str)> = r
        .findings
        .iter()
        .filter(|f| f.code.starts_with("UC-API-REMOVED"))
        .map(|f| (f.code.as_str(), f.cluster.as_str()))
        .collect();
    assert_eq!(
        removed,
        [
            ("UC-API-REMOVED-MANIFEST", "team-b/orders"),
            ("UC-API-REMOVED-CALLED", "team-b/orders")
        ]
    );
    let cov = |item: &str| {
        r.coverage
            .iter()
            .find(|c| c.item == item)
            .unwrap_or_else(|| panic!("{item}: {:#?}", r.coverage))
    };
    assert_eq!(cov("workload:team-b/orders").status, "ran");
    let payments = cov("workload:team-a/payments");
    assert_eq!(payments.status, "skipped");
    assert!(
        payments
            .reason
            .as_deref()
            .unwrap()
            .contains("payments-kubeconfig")
    );
    // Read for one rolling cluster, not for the others: partial, never "ran".
    let zero_cov = cov("UC-DRAIN-PDB-ZERO");
    assert_eq!(zero_cov.status, "partial");
    assert!(
        zero_cov
            .reason
            .as_deref()
            .unwrap()
            .contains("team-a/payments"),
        "{zero_cov:?}"
    );
}

#[test]
fn a_changed_manifest_moving_to_a_missing_release_is_a_blocker_and_unread_releases_are_skipped() {
    let mut orders = fleet("clusters")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "orders")
        .unwrap();
    let opts = Options::from_args(&args(&["-f", "changed.yaml"]).unwrap()).unwrap();
    let report = |doc: Value, tkrs: Option<Vec<Value>>| {
        build(
            &opts,
            Objects {
                tkcs: fleet("tkcs"),
                clusters: fleet("clusters"),
                machine_deployments: fleet("machineDeployments"),
                changed: Some(doc),
                tkrs,
                ..Objects::default()
            },
        )
        .unwrap()
    };
    let tkr_codes = |r: &Report| -> Vec<String> {
        r.findings
            .iter()
            .filter(|f| f.code.starts_with("UC-TKR-NOT"))
            .map(|f| f.code.clone())
            .collect()
    };
    orders["spec"]["topology"]["version"] = "v1.29.9---vmware.1-fips.1-tkg.1".into();
    let r = report(orders.clone(), Some(fleet("tkrs")));
    assert_eq!(tkr_codes(&r), ["UC-TKR-NOT-FOUND"], "{:#?}", r.findings);
    let cov = r
        .coverage
        .iter()
        .find(|c| c.item == "UC-TKR-NOT-FOUND")
        .unwrap();
    assert_eq!(cov.status, "ran");
    // Moving to a release that exists and is ready: no finding.
    orders["spec"]["topology"]["version"] = "v1.29.4---vmware.3-fips.1-tkg.1".into();
    assert!(tkr_codes(&report(orders.clone(), Some(fleet("tkrs")))).is_empty());
    // The releases could not be read: skipped, not passed.
    let r = report(orders, None);
    let cov = r
        .coverage
        .iter()
        .find(|c| c.item == "UC-TKR-NOT-FOUND")
        .unwrap();
    assert_eq!(cov.status, "skipped");
}
