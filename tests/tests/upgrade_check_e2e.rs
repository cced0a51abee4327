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
    // Workload checks are reported as skipped, never as passed.
    let coverage = report["coverage"].as_array().unwrap();
    let pdb = coverage
        .iter()
        .find(|c| c["item"] == "UC-DRAIN-PDB-ZERO")
        .unwrap();
    assert_eq!(pdb["status"], "skipped");

    // One LIST per kind, whatever the fleet's size: no GET per object.
    let requests: Vec<(String, String)> = s
        .sim
        .api()
        .audit()
        .events()
        .into_iter()
        .filter(|e| e.user_agent.starts_with("kubectl-supsvc/"))
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
            "tanzukubernetesclusters",
            "tanzukubernetesreleases"
        ]
    );
    assert_eq!(report["summary"]["requests"], 5);
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
