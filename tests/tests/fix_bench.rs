//! Benchmark of `kubectl supsvc fix` against the KB's kubectl commands, with 50 ms added to every
//! request and 6, 20 and 100 children; fix over HTTP/2 (its default) and over HTTP/1.1
//! (`SUPSVC_DISABLE_HTTP2=1`). Ignored by default (it takes minutes); run with
//! `cargo test --release -p supsvc-tests --test fix_bench -- --ignored --nocapture` (`--release` builds
//! the simulator, which runs in the test process, optimised as an API server is). Figures in
//! BENCHMARKS.md.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use supsvc_sim::api::gvr;
use supsvc_tests::{
    SERVICES_NAMESPACE, Supervisor, TKG, TKG_DOMAIN, eventually, reconciled, workspace_binary,
};

/// Controller periods a hundredfold shorter: fast, without 100 failing children spinning the CPU.
const TIME_SCALE: f64 = 0.01;
const LATENCY: Duration = Duration::from_millis(50);
const PUBLIC: &str = "projects.registry.vmware.com/tkg/packages";

/// The airgap-deadlock scenario with `n` children instead of six.
fn scenario(n: usize) -> String {
    let names: Vec<String> = (0..n).map(|i| format!("child-{i:03}")).collect();
    let mut parent_manifests = vec![json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "tkg-pkg-sa", "namespace": TKG_DOMAIN}})];
    let mut bundles = Vec::new();
    for name in &names {
        let bundle = format!("{PUBLIC}/core/{name}:v3.5.1");
        parent_manifests.push(json!({
            "apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
            "metadata": {"name": format!("{name}.tanzu.vmware.com.3.5.1"), "namespace": TKG_DOMAIN},
            "spec": {"refName": format!("{name}.tanzu.vmware.com"), "version": "3.5.1",
                "template": {"spec": {"fetch": [{"imgpkgBundle": {"image": bundle}}],
                    "template": [{"ytt": {"paths": ["config/"]}}, {"kbld": {"paths": ["-", ".imgpkg/images.yml"]}}],
                    "deploy": [{"kapp": {}}]}}}
        }));
        parent_manifests.push(json!({
            "apiVersion": "packaging.carvel.dev/v1alpha1", "kind": "PackageInstall",
            "metadata": {"name": name, "namespace": TKG_DOMAIN},
            "spec": {"serviceAccountName": "tkg-pkg-sa",
                "packageRef": {"refName": format!("{name}.tanzu.vmware.com"), "versionSelection": {"constraints": "3.5.1"}}}
        }));
        let image = format!("projects.registry.vmware.com/tkg/{name}:v3.5.1");
        bundles.push(json!({
            "image": bundle, "images": [image],
            "manifests": [{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": TKG_DOMAIN}, "data": {"image": image}}]
        }));
    }
    let nested: Vec<String> = names
        .iter()
        .map(|n| format!("{PUBLIC}/core/{n}:v3.5.1"))
        .collect();
    bundles.insert(
        0,
        json!({"image": format!("{PUBLIC}/tkg-service:3.5.1"), "images": nested, "manifests": parent_manifests}),
    );
    // YAML is a superset of JSON.
    json!({"name": format!("airgap-deadlock-{n}"), "extends": "airgap-deadlock",
           "description": format!("the deadlock with {n} children"), "bundles": bundles})
    .to_string()
}

async fn start(n: usize) -> Supervisor {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("airgap-deadlock-{n}.yaml"));
    std::fs::write(&path, scenario(n)).expect("scenario written");
    let s = Supervisor::start(path.to_str().expect("utf-8 path"), TIME_SCALE).await;
    s.sim.api().faults().set_latency(LATENCY);
    s
}

async fn resolved(s: &Supervisor) -> bool {
    let parent = s.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG).await;
    reconciled(&parent) && parent["spec"]["paused"] != Value::Bool(true)
}

fn seconds(text: &str, before: &str) -> f64 {
    // "... 0.4s in requests, 1.2s waiting ..." → the number before `before`.
    let Some(end) = text.find(before) else {
        return f64::NAN;
    };
    let start = text[..end].rfind([' ', '(']).map_or(0, |i| i + 1);
    let number = &text[start..end];
    match number.split_once('m') {
        Some((m, s)) => {
            m.parse::<f64>().unwrap_or(f64::NAN) * 60.0
                + s.trim_end_matches('s').parse::<f64>().unwrap_or(f64::NAN)
        }
        None => number.trim_end_matches('s').parse().unwrap_or(f64::NAN),
    }
}

/// How many resource requests reached the simulator over HTTPS, and over how many connections.
fn traffic(s: &Supervisor) -> (usize, usize) {
    let events = s.sim.api().audit().events();
    let connections: std::collections::BTreeSet<u64> =
        events.iter().map(|e| e.connection).collect();
    (events.len(), connections.len())
}

fn kb_script(children: &[String]) -> String {
    let mut script = format!(
        "kubectl patch pkgi/{TKG} --namespace {SERVICES_NAMESPACE} --type='json' --patch='[{{\"op\": \"add\", \"path\": \"/spec/paused\", \"value\":true}}]'\n"
    );
    for child in children {
        script.push_str(&format!(
            "kubectl patch pkgi -n {TKG_DOMAIN} --type='merge' --patch '{{\"metadata\":{{\"labels\":{{\"fix-trigger\":\"true\"}}}}}}' {child}\n"
        ));
    }
    script.push_str(&format!(
        "kubectl patch pkgi/{TKG} --namespace {SERVICES_NAMESPACE} --type='json' --patch='[{{\"op\": \"remove\", \"path\": \"/spec/paused\"}}]'\n\
         kubectl patch apps/{TKG} -n {SERVICES_NAMESPACE} --type='json' -p='[{{\"op\": \"add\", \"path\": \"/spec/paused\", \"value\":true}}]'\n\
         kubectl patch apps/{TKG} -n {SERVICES_NAMESPACE} --type='json' -p='[{{\"op\": \"remove\", \"path\": \"/spec/paused\"}}]' || true\n"
    ));
    script
}

fn run_blocking(mut cmd: Command) -> std::process::Output {
    cmd.stdin(Stdio::null()).output().expect("runs")
}

/// One `fix -y` run on a fresh simulator with `n` children.
struct FixRun {
    /// fix's own time in requests and waiting on kapp-controller (its summary line), and wall time.
    requests: f64,
    waiting: f64,
    wall: f64,
    /// Resource requests that reached the simulator, and over how many TLS connections.
    sent: usize,
    connections: usize,
    /// The simulator's own time answering them, summed (s).
    server: f64,
}

async fn fix_run(plugin: &Path, n: usize, env: &[(&str, &str)]) -> FixRun {
    let s = start(n).await;
    let mut cmd = Command::new(plugin);
    cmd.args(["fix", "-y", "--poll-interval=200ms", "--timeout=5m"])
        .env("KUBECONFIG", &s.kubeconfig);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let began = Instant::now();
    let out = tokio::task::spawn_blocking(move || run_blocking(cmd))
        .await
        .expect("joined");
    let wall = began.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(resolved(&s).await);
    let (sent, connections) = traffic(&s);
    let server = s
        .sim
        .api()
        .audit()
        .events()
        .iter()
        .map(|e| e.micros as f64 / 1e6)
        .sum();
    s.sim.stop().await;
    FixRun {
        server,
        requests: seconds(&stdout, " in requests"),
        waiting: seconds(&stdout, " waiting on kapp-controller"),
        wall,
        sent,
        connections,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes; run with --ignored --nocapture"]
async fn fix_time_does_not_grow_with_children_and_beats_the_kb_script() {
    // SUPSVC_BIN: a release build, as operators run it (debug crypto makes TLS handshakes costly).
    let plugin = std::env::var_os("SUPSVC_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_binary("kubectl-supsvc"));
    println!(
        "| children | fix: requests (s) | fix: waiting on kapp-controller (s) | fix: wall (s) | fix: requests / TLS connections | fix: server time, summed (s) | fix over HTTP/1.1: requests (s) | fix over HTTP/1.1: requests / TLS connections | KB script: its kubectl commands (s) | KB script + waiting until reconciled (s) | KB script: requests / TLS connections | ratio script / fix requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in [6usize, 20, 100] {
        // supsvc, over HTTP/2 (the default) and over HTTP/1.1 (kube's own client).
        let h2 = fix_run(&plugin, n, &[]).await;
        let h1 = fix_run(&plugin, n, &[("SUPSVC_DISABLE_HTTP2", "1")]).await;

        // The KB's commands with kubectl, one after the other, then waiting until reconciled.
        let s = start(n).await;
        let children: Vec<String> = (0..n).map(|i| format!("child-{i:03}")).collect();
        let script = kb_script(&children);
        let kubeconfig = s.kubeconfig.clone();
        let began = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new("sh");
            cmd.arg("-ec")
                .arg(script)
                .env("KUBECONFIG", Path::new(&kubeconfig));
            run_blocking(cmd)
        })
        .await
        .expect("joined");
        let script_time = began.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eventually(
            Duration::from_secs(300),
            "the KB script's result",
            || async { resolved(&s).await.then_some(()) },
        )
        .await;
        let script_total = began.elapsed().as_secs_f64();
        let (script_requests, script_connections) = traffic(&s);
        s.sim.stop().await;

        println!(
            "| {n} | {:.2} | {:.2} | {:.2} | {} / {} | {:.2} | {:.2} | {} / {} | {script_time:.2} | {script_total:.2} | {script_requests} / {script_connections} | {:.1}× |",
            h2.requests,
            h2.waiting,
            h2.wall,
            h2.sent,
            h2.connections,
            h2.server,
            h1.requests,
            h1.sent,
            h1.connections,
            script_time / h2.requests
        );
    }
}
