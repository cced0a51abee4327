//! `kubectl supsvc upgrade-check` through the real kubectl against the simulated Supervisor serving the
//! Cluster API and TKG Service kinds (scenario `tkg-fleet`).

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use supsvc_tests::{Supervisor, workspace_binary};

/// Runs `kubectl supsvc ...` through the real kubectl, the plugin's directory first on PATH.
async fn run_via_kubectl(s: &Supervisor, args: &[&str]) -> Output {
    let bin = workspace_binary("kubectl-supsvc");
    let dir = bin.parent().expect("binary dir").to_path_buf();
    let path = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let mut cmd = Command::new(supsvc_tests::kubectl_path());
    cmd.arg("supsvc")
        .args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .env("PATH", path)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
        .await
        .expect("joined")
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const TARGET: &str = "v1.29.4---vmware.3-fips.1-tkg.1";

#[tokio::test(flavor = "multi_thread")]
async fn tkr_forecast_of_the_fleet_from_lists_only() {
    let s = Supervisor::start("tkg-fleet", 0.001).await;
    s.sim.api().audit().clear();
    let o = run_via_kubectl(&s, &["upgrade-check", "--tkr", TARGET, "-o", "json"]).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "no --fail-on: exit 0\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let rows: Vec<(String, String, String, String)> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let steps = c["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    if s["controlPlane"] == true {
                        "cp".to_owned()
                    } else {
                        s["pools"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|p| p.as_str().unwrap())
                            .collect::<Vec<_>>()
                            .join("+")
                    }
                })
                .collect::<Vec<_>>()
                .join(">");
            (
                format!(
                    "{}/{}",
                    c["namespace"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                ),
                c["rolls"].as_str().unwrap().to_owned(),
                c["rule"]["id"].as_str().unwrap().to_owned(),
                steps,
            )
        })
        .collect();
    let want = [
        ("team-a/payments", "yes", "CAPI-VERSION", "cp>pool-a>pool-b"),
        ("team-b/frozen", "yes", "CAPI-VERSION", "cp>pool-a"),
        ("team-b/orders", "yes", "CAPI-VERSION", "cp>pool-a>pool-c"),
        ("team-c/ledger", "yes", "CAPI-VERSION", "cp>a+b>c"),
        ("team-c/old", "no", "CAPI-VERSION-MINOR-SKIP", ""),
    ];
    let want: Vec<(String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(rows, want);
    assert_eq!(
        report["clusters"][0]["api"], "run.tanzu.vmware.com/v1alpha3",
        "the TKC names the cluster"
    );
    assert_eq!(report["clusters"][1]["paused"], true);
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .filter(|c| c.starts_with("UC-TKR") || c.starts_with("UC-ROLL"))
        .collect();
    assert_eq!(
        codes,
        [
            "UC-TKR-MINOR-SKIP",
            "UC-ROLL-PAUSED",
            "UC-ROLL-PENDING",
            "UC-ROLL-HELD",
            "UC-ROLL-HELD"
        ]
    );
    // Only orders has an API server here: the workload checks ran for it and are said not to have run
    // for the other rolling clusters, by name, never passed.
    let coverage = report["coverage"].as_array().unwrap();
    let pdb = coverage
        .iter()
        .find(|c| c["item"] == "UC-DRAIN-PDB-ZERO")
        .unwrap();
    assert_eq!(pdb["status"], "partial");
    for cluster in ["team-a/payments", "team-b/frozen", "team-c/ledger"] {
        let c = coverage
            .iter()
            .find(|c| c["item"] == format!("workload:{cluster}"))
            .unwrap_or_else(|| panic!("{cluster}: {coverage:#?}"));
        assert_eq!(c["status"], "skipped", "{cluster}");
        let (ns, name) = cluster.split_once('/').unwrap();
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("no Secret {ns}/{name}-kubeconfig")),
            "{c}"
        );
    }
    assert!(
        pdb["reason"].as_str().unwrap().contains("team-a/payments"),
        "{pdb}"
    );

    // The forecast: one LIST per kind, whatever the fleet's size, no GET per object. The workload
    // part: one GET per rolling cluster, its kubeconfig Secret.
    let events: Vec<_> = s
        .sim
        .api()
        .audit()
        .events()
        .into_iter()
        .filter(|e| e.user_agent.starts_with("kubectl-supsvc/"))
        .collect();
    let mut secrets: Vec<String> = events
        .iter()
        .filter(|e| e.verb == "get")
        .map(|e| {
            assert_eq!(e.resource, "secrets", "{e:?}");
            format!(
                "{}/{}",
                e.namespace.clone().unwrap(),
                e.name.clone().unwrap()
            )
        })
        .collect();
    secrets.sort();
    assert_eq!(
        secrets,
        [
            "team-a/payments-kubeconfig",
            "team-b/frozen-kubeconfig",
            "team-b/orders-kubeconfig",
            "team-c/ledger-kubeconfig"
        ]
    );
    let requests: Vec<(String, String)> = events
        .into_iter()
        .filter(|e| e.verb != "get")
        .map(|e| (e.verb, e.resource))
        .collect();
    assert!(
        requests.iter().all(|(verb, _)| verb == "list"),
        "{requests:?}"
    );
    let mut kinds: Vec<&str> = requests.iter().map(|(_, r)| r.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "clusters",
            "machinedeployments",
            "machines",
            "osimages",
            "resourcequotas",
            "tanzukubernetesclusters",
            "tanzukubernetesreleases",
            "virtualmachineclassbindings",
            "virtualmachineclasses"
        ]
    );
    assert_eq!(report["summary"]["requests"], 9);
    // Point 4 ran on what the Supervisor offers: nothing is missing in this fleet.
    for code in [
        "UC-OSIMAGE-NONE",
        "UC-VMCLASS-UNAVAILABLE",
        "UC-STORAGECLASS-UNAVAILABLE",
        "UC-QUOTA-SURGE",
        "UC-POD-CIDR",
    ] {
        let c = coverage.iter().find(|c| c["item"] == code).unwrap();
        assert_eq!(c["status"], "ran", "{code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_on_gates_and_formats() {
    let s = Supervisor::start("tkg-fleet", 0.001).await;
    // A blocker (team-c/old skips a minor) -> 5 with --fail-on blocker.
    let o = run_via_kubectl(
        &s,
        &["upgrade-check", "--tkr", TARGET, "--fail-on", "blocker"],
    )
    .await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(
            "Trigger: move to TKR v1.29.4---vmware.3-fips.1-tkg.1\n5 clusters: 4 roll"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("[blocker] UC-TKR-MINOR-SKIP team-c/old"),
        "{stdout}"
    );
    // vCenter 8.0.0 -> 8.0.0c: no cluster has a noProxy list here, Harbor said disabled -> nothing rolls.
    let args = [
        "upgrade-check",
        "--vcenter-upgrade",
        "--from",
        "8.0.0",
        "--to",
        "8.0.0c",
        "--embedded-harbor",
        "false",
        "--fail-on",
        "roll",
        "-o",
        "markdown",
    ];
    let o = run_via_kubectl(&s, &args).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("# upgrade-check: vCenter upgrade 8.0.0 -> 8.0.0c"),
        "{stdout}"
    );
    // 8.0.1 -> 8.0u2: every cluster rolls -> 6 with --fail-on roll.
    let o = run_via_kubectl(
        &s,
        &[
            "upgrade-check",
            "--vcenter-upgrade",
            "--from",
            "8.0.1",
            "--to",
            "8.0u2",
            "--fail-on",
            "roll",
            "-o",
            "yaml",
        ],
    )
    .await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(6), "{stdout}\n{stderr}");
    assert!(stdout.contains("VMW-RU-8X-80U2"), "{stdout}");
    // A bad trigger is a usage error before any request.
    let o = run_via_kubectl(
        &s,
        &[
            "upgrade-check",
            "--vcenter-upgrade",
            "--from",
            "8.0.2",
            "--to",
            "8.0.1",
        ],
    )
    .await;
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be downgraded"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn class_rebase_and_changed_manifest() {
    let s = Supervisor::start("tkg-fleet", 0.001).await;
    // --class onto a class that offers node-pool: every ClusterClass cluster rolls (templates rotate).
    let o = run_via_kubectl(
        &s,
        &[
            "upgrade-check",
            "--class",
            "builtin-generic-v3.2.0",
            "-o",
            "json",
        ],
    )
    .await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let orders = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap();
    assert_eq!(orders["rolls"], "yes");
    assert_eq!(orders["rule"]["id"], "CAPI-CLASS-REBASE");
    assert!(
        orders["rule"]["source"]
            .as_str()
            .unwrap()
            .contains("change-clusterclass.md")
    );
    // --class onto a class without node-pool: refused, a blocker, exit 5 under --fail-on blocker.
    let o = run_via_kubectl(
        &s,
        &[
            "upgrade-check",
            "--class",
            "gpu-only",
            "--fail-on",
            "blocker",
        ],
    )
    .await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[blocker] UC-CLASS-INCOMPATIBLE team-b/orders"),
        "{stdout}"
    );

    // -f: the live Cluster with pool-c moved to another zone and pool-a scaled.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("changed-cluster.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: orders, namespace: team-b}
spec:
  topology:
    workers:
      machineDeployments:
      - {class: node-pool, name: pool-a, replicas: 5, nodeDrainTimeout: 30m,
         variables: {overrides: [{name: vmClass, value: best-effort-large}]}}
      - class: node-pool
        name: pool-b
        replicas: 2
        metadata: {annotations: {topology.cluster.x-k8s.io/defer-upgrade: ""}}
      - {class: node-pool, name: pool-c, replicas: 1, failureDomain: zone-b}
"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = run_via_kubectl(&s, &["upgrade-check", "-f", f, "-o", "json"]).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["clusters"].as_array().unwrap().len(), 1);
    let c = &report["clusters"][0];
    assert_eq!(
        (c["name"].as_str(), c["rolls"].as_str()),
        (Some("orders"), Some("yes"))
    );
    let pools: Vec<(&str, &str)> = c["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["rolls"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pools,
        [("pool-a", "no"), ("pool-b", "no"), ("pool-c", "yes")]
    );
    let changes: Vec<(&str, &str)> = report["trigger"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap(),
                c["rule"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "spec.topology.workers.machineDeployments[pool-a].replicas",
                "CAPI-SCALE"
            ),
            (
                "spec.topology.workers.machineDeployments[pool-c].failureDomain",
                "CAPI-MD-FAILURE-DOMAIN"
            ),
        ]
    );
    // A cluster that does not exist, and a file that is not YAML: clear errors.
    std::fs::write(&file, "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata: {name: ghost, namespace: team-b}\n").unwrap();
    let o = run_via_kubectl(&s, &["upgrade-check", "-f", f]).await;
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no Cluster team-b/ghost on the Supervisor"),
        "{stderr}"
    );
    std::fs::write(&file, "kind: [unclosed\n").unwrap();
    let o = run_via_kubectl(&s, &["upgrade-check", "-f", f]).await;
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not a YAML or JSON document"),
        "{stderr}"
    );
}

/// Runs the real kubectl against the simulated Supervisor.
async fn kubectl(s: &Supervisor, args: &[&str]) -> Output {
    let mut cmd = Command::new(supsvc_tests::kubectl_path());
    cmd.args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
        .await
        .expect("joined")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roll_that_cannot_start_is_a_blocker_with_its_evidence() {
    let s = Supervisor::start("tkg-fleet", 0.001).await;
    let check = [
        "upgrade-check",
        "--tkr",
        TARGET,
        "--vsphere-namespace",
        "team-b",
        "--fail-on",
        "blocker",
    ];
    // This test is about whether the roll can start: orders' own API server (and so its drain
    // blockers) is kept out by removing its kubeconfig Secret.
    let o = kubectl(
        &s,
        &["delete", "secret", "orders-kubeconfig", "-n", "team-b"],
    )
    .await;
    assert!(o.status.success(), "{:?}", out(&o));
    // team-b has what its clusters need: no blocker.
    let o = run_via_kubectl(&s, &check).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    // The VM class orders' control plane and pool-b use is taken away from team-b, and the target
    // release's only OS image is gone.
    for args in [
        &[
            "delete",
            "virtualmachineclasses.vmoperator.vmware.com",
            "best-effort-medium",
            "-n",
            "team-b",
        ][..],
        &[
            "delete",
            "osimages.run.tanzu.vmware.com",
            "vmi-ubuntu-v1294",
        ][..],
    ] {
        let o = kubectl(&s, args).await;
        assert!(o.status.success(), "{:?}", out(&o));
    }
    let o = run_via_kubectl(&s, &check).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[blocker] UC-VMCLASS-UNAVAILABLE team-b/orders: VM classes [\"best-effort-medium\"] are not available to vSphere Namespace team-b"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[blocker] UC-OSIMAGE-NONE team-b/orders: no OSImage of release v1.29.4---vmware.3-fips.1-tkg.1 matches"),
        "{stdout}"
    );
    // The paused cluster rolls once resumed: its class is still there, its image is not.
    assert!(
        stdout.contains("[blocker] UC-OSIMAGE-NONE team-b/frozen"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("UC-VMCLASS-UNAVAILABLE team-b/frozen"),
        "{stdout}"
    );
}

/// `(code, node, pods)` of the findings about `cluster` at or above `severity`.
fn drain_findings(
    report: &Value,
    cluster: &str,
    severity: &[&str],
) -> Vec<(String, String, Vec<String>)> {
    let mut found: Vec<(String, String, Vec<String>)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cluster"] == cluster)
        .filter(|f| f["code"].as_str().unwrap().starts_with("UC-DRAIN"))
        .filter(|f| severity.contains(&f["severity"].as_str().unwrap()))
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["node"].as_str().unwrap_or_default().to_owned(),
                f["pods"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_predicted_order_and_drain_blockers_are_the_ones_a_roll_meets() {
    let s = Supervisor::start("tkg-fleet", 0.001).await;
    let o = run_via_kubectl(&s, &["upgrade-check", "--tkr", TARGET, "-o", "json"]).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let orders = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap();
    // The forecast's pools in order (pool-b is deferred).
    let predicted_pools: Vec<Option<String>> = orders["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            if s["controlPlane"] == true {
                vec![None]
            } else {
                s["pools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| Some(p.as_str().unwrap().to_owned()))
                    .collect()
            }
        })
        .collect();
    let blockers = drain_findings(&report, "team-b/orders", &["blocker"]);
    assert_eq!(
        blockers,
        [
            (
                "UC-DRAIN-MULTIPLE-PDBS".to_owned(),
                "orders-a-3".to_owned(),
                vec!["shop/search-6f8d4b-m1n6s".to_owned()]
            ),
            (
                "UC-DRAIN-MULTIPLE-PDBS".to_owned(),
                "orders-c-1".to_owned(),
                vec!["shop/search-6f8d4b-k9t3v".to_owned()]
            ),
            (
                "UC-DRAIN-NO-RESCHEDULE".to_owned(),
                "orders-c-1".to_owned(),
                vec!["shop/report-5c6d7e-a1".to_owned()]
            ),
            (
                "UC-DRAIN-PDB-ZERO".to_owned(),
                "orders-a-2".to_owned(),
                vec!["shop/ledger-7b6c9d-w2x5r".to_owned()]
            ),
        ],
        "{stdout}"
    );
    let warnings = drain_findings(&report, "team-b/orders", &["warning"]);
    assert!(
        warnings
            .iter()
            .any(|(code, node, _)| code == "UC-DRAIN-PDB-COLOCATED" && node == "orders-a-1"),
        "checkout's two replicas share orders-a-1 under a budget allowing one: {warnings:?}"
    );
    let codes_for = |pod: &str| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["pods"]
                    .as_array()
                    .is_some_and(|pods| pods.iter().any(|p| p == pod))
            })
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let debug = codes_for("shop/debug-shell");
    for code in [
        "UC-HARM-NO-CONTROLLER",
        "UC-HARM-EMPTYDIR",
        "UC-HARM-LOCAL-DATA",
    ] {
        assert!(debug.contains(&code.to_owned()), "{code}: {debug:?}");
    }
    let cache = codes_for("shop/cache-84c7f9-b7k2d");
    for code in ["UC-HARM-NO-PDB", "UC-HARM-ONE-POOL"] {
        assert!(cache.contains(&code.to_owned()), "{code}: {cache:?}");
    }
    let sessions = codes_for("shop/sessions-9f2a1b-x1");
    assert!(
        sessions.contains(&"UC-HARM-ONE-NODE".to_owned()),
        "{sessions:?}"
    );
    let ledger = codes_for("shop/ledger-7b6c9d-w2x5r");
    assert!(
        ledger.contains(&"UC-HARM-SINGLE-REPLICA".to_owned()),
        "{ledger:?}"
    );

    // The 1.28 -> 1.29 hop: the FlowSchema kapp applied at v1beta2, and the caller /metrics reports.
    let removed: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cluster"] == "team-b/orders")
        .filter(|f| f["code"].as_str().unwrap().starts_with("UC-API-REMOVED"))
        .map(|f| {
            format!(
                "{} {}",
                f["code"].as_str().unwrap(),
                f["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(removed.len(), 2, "{removed:#?}");
    assert!(
        removed[0].starts_with("UC-API-REMOVED-MANIFEST FlowSchema shop-batch was last applied as flowcontrol.apiserver.k8s.io/v1beta2 FlowSchema (kapp.k14s.io/original)"),
        "{removed:#?}"
    );
    assert!(
        removed[1].starts_with("UC-API-REMOVED-CALLED a client requested flowcontrol.apiserver.k8s.io/v1beta2 prioritylevelconfigurations"),
        "{removed:#?}"
    );

    // --supervisor-only contacts no workload cluster and says the workload checks did not run.
    let workload = s
        .sim
        .workload_cluster("team-b", "orders")
        .expect("orders has an API server");
    workload.api().audit().clear();
    let o = run_via_kubectl(
        &s,
        &[
            "upgrade-check",
            "--tkr",
            TARGET,
            "--supervisor-only",
            "-o",
            "json",
        ],
    )
    .await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let only: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        workload.api().audit().events().is_empty(),
        "no request reached orders"
    );
    let zero = only["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "UC-DRAIN-PDB-ZERO")
        .unwrap();
    assert_eq!(zero["status"], "skipped", "{zero}");

    // Now roll it: Cluster API's order read from the Supervisor, the drains through the workload
    // cluster's pods/eviction.
    let workload = s
        .sim
        .workload_cluster("team-b", "orders")
        .expect("orders has an API server");
    let record = supsvc_sim::roll::roll(
        &s.sim.admin(),
        &workload.admin(),
        "team-b",
        "orders",
        &supsvc_sim::roll::RollOptions::default(),
    )
    .await
    .expect("the roll runs");
    let mut rolled_pools: Vec<Option<String>> =
        record.nodes.iter().map(|n| n.pool.clone()).collect();
    rolled_pools.dedup();
    assert_eq!(rolled_pools, predicted_pools, "{record:#?}");
    // Every stall the roll met was predicted as a blocker, on that node, for that pod; and every
    // predicted blocker stalled. A pinned pod (UC-DRAIN-NO-RESCHEDULE) is itself evicted; what
    // stalls is the next eviction under its budget, on the same node: matched by the budget the
    // refusal names.
    let mut stalls = record.stalls.clone();
    let mut predicted: Vec<(String, Vec<String>)> = Vec::new();
    for (code, node, pods) in blockers {
        if code == "UC-DRAIN-NO-RESCHEDULE" {
            let at = stalls
                .iter()
                .position(|st| {
                    st.node == node
                        && st.code == 429
                        && st.message.contains("The disruption budget report needs")
                })
                .unwrap_or_else(|| panic!("no stall under report's budget on {node}: {record:#?}"));
            stalls.remove(at);
            assert!(
                record.evicted.iter().any(|e| e == &pods[0]),
                "the pinned pod itself is evicted: {record:#?}"
            );
        } else {
            predicted.push((node, pods));
        }
    }
    let mut stalls: Vec<(String, Vec<String>)> = stalls
        .iter()
        .map(|st| (st.node.clone(), vec![st.pod.clone()]))
        .collect();
    stalls.sort();
    predicted.sort();
    assert_eq!(stalls, predicted, "{record:#?}");
    let ledger = record
        .stalls
        .iter()
        .find(|st| st.node == "orders-a-2")
        .unwrap();
    assert_eq!(ledger.code, 429, "{ledger:?}");
    assert!(
        ledger
            .message
            .contains("The disruption budget ledger needs 1 healthy pods"),
        "{ledger:?}"
    );
    let search = record
        .stalls
        .iter()
        .find(|st| st.pod == "shop/search-6f8d4b-k9t3v")
        .unwrap();
    assert_eq!(search.code, 500, "two budgets: {search:?}");
    // The co-located pair was a delay, not a stall: both evicted, the second once the first's
    // replacement was Ready.
    for pod in ["shop/checkout-5d9f7c-h8k2p", "shop/checkout-5d9f7c-q4m7z"] {
        assert!(
            record.evicted.iter().any(|e| e == pod),
            "{pod}: {record:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vsphere_7_v1alpha2_cluster_rolls_its_pools_at_once() {
    // vSphere 7: TKCs served at v1alpha2 only, TKRs at v1alpha1.
    let s = Supervisor::start("tkg-fleet-7", 0.001).await;
    let o = run_via_kubectl(&s, &["upgrade-check", "--tkr", TARGET, "-o", "json"]).await;
    let (stdout, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let legacy = &report["clusters"][0];
    assert_eq!(legacy["name"], "legacy", "{stdout}");
    assert_eq!(legacy["api"], "run.tanzu.vmware.com/v1alpha2");
    assert_eq!(legacy["rule"]["id"], "VMW-POOLS-SIMULTANEOUS");
    let steps: Vec<Value> = legacy["steps"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0]["controlPlane"], true);
    assert_eq!(steps[1]["pools"], serde_json::json!(["workers", "gpu"]));
    // The target release was found at v1alpha1: no UC-TKR-NOT-FOUND.
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(!codes.contains(&"UC-TKR-NOT-FOUND"), "{codes:?}");
    let tkr_read = report["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "read:tanzukubernetesreleases.run.tanzu.vmware.com/v1alpha1");
    assert!(tkr_read.is_some(), "{stdout}");
}
