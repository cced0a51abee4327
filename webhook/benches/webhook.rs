//! Benchmarks (`cargo bench -p supsvc-webhook`; `SUPSVC_BENCH_SECONDS` sets the length of each
//! load run, default 5; `SUPSVC_BENCH_ONLY=host` stops after the first part):
//! 1. the policy host alone: latency of one evaluation (fresh instance + `validate`);
//! 2. HTTPS keep-alive load with a ~3.4 KB Pod AdmissionReview at 8, 32 and 64 connections
//!    against the webhook binary (one policy, then both shipped policies) and against a no-op
//!    server on the same hyper + rustls stack answering a fixed allow, in the same run.
//!    Loopback only; the load generator shares the machine's cores with the server.
//! 3. the same servers under wrk (Debian's package, installed by the bench when missing and
//!    run as root): `-t2 -c32`, keep-alive HTTP/1.1, `POST /validate` of the same review, one
//!    fresh server process per run, servers alternating, `SUPSVC_BENCH_WRK_ROUNDS` rounds
//!    (default 3) of `SUPSVC_BENCH_WRK_WARMUP` s of warm-up (default 5) then
//!    `SUPSVC_BENCH_WRK_SECONDS` s measured (default 20); medians of the rounds and their ratios
//!    to the no-op server's. Besides the no-op server, the shipped policies and a Kubewarden SDK
//!    policy, two rows split a policy's cost: the webhook with no policy matching the Pod (what
//!    it pays before any evaluation) and with a WAT policy that accepts at once (what a fresh
//!    instance per request costs when the guest does no work). `SUPSVC_BENCH_ONLY=wrk` runs this
//!    part alone.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::fixtures::{UNKNOWN_UNKNOWN, fixture_policy, workspace_root};
use common::setup::admission_fixture;
use common::tls::{TestCert, self_signed, write_cert};
use common::wat_policies::{Behaviour, wasm};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use supsvc_policy_host::{HostOptions, PolicyHost, PolicySpec};

const NOOP_SERVER_ENV: &str = "SUPSVC_BENCH_NOOP_SERVER";

fn main() -> anyhow::Result<()> {
    if let Ok(listen) = std::env::var(NOOP_SERVER_ENV) {
        return noop_server(&listen);
    }
    let seconds: u64 = std::env::var("SUPSVC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // Compact, as the API server sends it.
    let pod = compact(&admission_fixture("webhook/pod-create.json"));
    let pod_request = request_of(&pod);
    let only = std::env::var("SUPSVC_BENCH_ONLY").unwrap_or_default();
    if only == "wrk" {
        return wrk::run(&pod, shipped_policies().as_ref());
    }

    println!("## Host: one evaluation (fresh Store + instance + validate), single thread\n");
    println!("| policy | request | p50 | p99 | mean |\n|---|---|---|---|---|");
    let shipped = shipped_policies();
    let pod10 = pod_with_containers(&pod, 10);
    let pvc = compact(&admission_fixture("storage-guard/pvc-grown-by-admin.json"));
    let mut cases: Vec<(&str, Vec<u8>, &str, Vec<u8>)> = vec![
        (
            "WAT accept-all",
            wasm(Behaviour::Accept),
            "Pod, 3 containers",
            pod.clone(),
        ),
        (
            "Kubewarden SDK pod-names",
            std::fs::read(fixture_policy("kubewarden-pod-names", UNKNOWN_UNKNOWN))?,
            "Pod, 3 containers",
            pod.clone(),
        ),
    ];
    if let Some((registry, storage)) = &shipped {
        cases.push((
            "registry-guard",
            std::fs::read(registry)?,
            "Pod, 3 containers",
            pod.clone(),
        ));
        cases.push((
            "registry-guard",
            std::fs::read(registry)?,
            "Pod, 10 containers",
            pod10.clone(),
        ));
        cases.push((
            "storage-guard",
            std::fs::read(storage)?,
            "PVC resize UPDATE",
            pvc.clone(),
        ));
    }
    let host = PolicyHost::new(HostOptions::default())?;
    for (name, module, label, review) in &cases {
        let policy = host.load(PolicySpec::new(*name, module.clone()))?;
        let request = request_of(review);
        let latencies = measure(20_000, || {
            let _ = policy.validate(&request);
        });
        let s = summary(latencies);
        println!(
            "| {name} | {label} | {} | {} | {} |",
            us(s.p50),
            us(s.p99),
            us(s.mean)
        );
    }
    drop(pod_request);
    // The server's own reading of a body, before any policy: AdmissionReview envelope, the
    // request's head and its bytes, the nesting check.
    let parse = summary(measure(100_000, || {
        let _ = supsvc_webhook::admission::parse_review(&pod);
    }));
    println!(
        "\nparse_review of the Pod AdmissionReview ({} bytes): p50 {}, p99 {}, mean {}",
        pod.len(),
        us(parse.p50),
        us(parse.p99),
        us(parse.mean)
    );

    if only == "host" {
        return Ok(());
    }
    println!(
        "\n## HTTPS load: {seconds} s per run, keep-alive, HTTP/1.1, Pod AdmissionReview of {} bytes\n",
        pod.len()
    );
    let dir = tempfile::tempdir()?;
    let cert = self_signed();
    write_cert(dir.path(), &cert);
    let pod_names = fixture_policy("kubewarden-pod-names", UNKNOWN_UNKNOWN);
    // The comparable of a trivial waPC policy: accepts without reading the request.
    let accept_all = dir.path().join("accept-all.wasm");
    std::fs::write(&accept_all, wasm(Behaviour::Accept))?;
    let mut servers: Vec<(&str, Server)> = vec![
        ("no-op (fixed allow)", Server::noop(dir.path())?),
        (
            "webhook, 1 trivial policy (WAT accept-all)",
            Server::webhook(dir.path(), "trivial", &[("accept-all", &accept_all, "")])?,
        ),
        (
            "webhook, 1 policy (Kubewarden SDK pod-names)",
            Server::webhook(dir.path(), "one", &[("pod-names", &pod_names, "")])?,
        ),
    ];
    if let Some((registry, storage)) = &shipped {
        servers.push((
            "webhook, both shipped policies",
            Server::webhook(
                dir.path(),
                "shipped",
                &[
                    ("registry-guard", registry, REGISTRY_RULES),
                    ("storage-guard", storage, STORAGE_RULES),
                ],
            )?,
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "| server | connections | requests/s | p50 | p99 | server CPU per request | server RSS (peak) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut noop_rps = std::collections::BTreeMap::new();
    for (name, server) in &mut servers {
        runtime.block_on(server.wait_ready(&cert))?;
        for connections in [8, 32, 64] {
            let cpu_before = server.cpu_time();
            let result = runtime.block_on(load(
                server.addr,
                &cert,
                Bytes::from(pod.clone()),
                connections,
                Duration::from_secs(seconds),
            ))?;
            let cpu = server.cpu_time().saturating_sub(cpu_before);
            let rps = result.count as f64 / result.elapsed.as_secs_f64();
            let cpu_per_request = cpu.as_secs_f64() / result.count.max(1) as f64;
            let fraction = if name.starts_with("no-op") {
                noop_rps.insert(connections, rps);
                String::new()
            } else {
                noop_rps
                    .get(&connections)
                    .map(|noop| format!(" ({:.0}% of no-op)", 100.0 * rps / noop))
                    .unwrap_or_default()
            };
            let s = summary(result.latencies);
            println!(
                "| {name} | {connections} | {rps:.0}{fraction} | {} | {} | {:.0} µs | {} |",
                us(s.p50),
                us(s.p99),
                cpu_per_request * 1e6,
                server.memory()
            );
            if result.errors > 0 {
                println!("|  ↳ {} errors | | | | | | |", result.errors);
            }
        }
    }
    for (_, mut server) in servers {
        let _ = server.child.kill();
        let _ = server.child.wait();
    }
    drop(runtime);
    wrk::run(&pod, shipped.as_ref())
}

fn compact(json: &[u8]) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_slice(json).expect("fixture is JSON");
    serde_json::to_vec(&value).expect("serialisable")
}

fn request_of(review: &[u8]) -> Arc<[u8]> {
    let value: serde_json::Value = serde_json::from_slice(review).expect("fixture is JSON");
    Arc::from(serde_json::to_vec(&value["request"]).expect("serialisable"))
}

fn pod_with_containers(review: &[u8], count: usize) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(review).expect("fixture is JSON");
    let containers = value["request"]["object"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let many: Vec<_> = (0..count)
        .map(|i| {
            let mut c = containers[i % containers.len()].clone();
            c["name"] = format!("c{i}").into();
            c
        })
        .collect();
    value["request"]["object"]["spec"]["containers"] = many.into();
    serde_json::to_vec(&value).expect("serialisable")
}

/// The shipped policies' `.wasm`, built from the workspace if they are there.
fn shipped_policies() -> Option<(PathBuf, PathBuf)> {
    let root = workspace_root();
    if !root.join("policies/registry-guard/Cargo.toml").exists()
        || !root.join("policies/storage-guard/Cargo.toml").exists()
    {
        return None;
    }
    common::fixtures::ensure_target(UNKNOWN_UNKNOWN);
    let target_dir = root.join("target/fixture-policies");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--lib",
            "-p",
            "supsvc-registry-guard",
            "-p",
            "supsvc-storage-guard",
        ])
        .args(["--target", UNKNOWN_UNKNOWN, "--profile", "wasm-release"])
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("the shipped policies do not build: skipping them");
        return None;
    }
    let out = target_dir.join(UNKNOWN_UNKNOWN).join("wasm-release");
    Some((
        out.join("supsvc_registry_guard.wasm"),
        out.join("supsvc_storage_guard.wasm"),
    ))
}

fn measure(iterations: usize, mut run: impl FnMut()) -> Vec<Duration> {
    for _ in 0..iterations / 10 {
        run();
    }
    (0..iterations)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect()
}

struct Summary {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn summary(mut latencies: Vec<Duration>) -> Summary {
    if latencies.is_empty() {
        return Summary {
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            mean: Duration::ZERO,
        };
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let total: Duration = latencies.iter().sum();
    Summary {
        p50: at(0.50),
        p99: at(0.99),
        mean: total / latencies.len() as u32,
    }
}

fn us(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.1} µs")
    }
}

/// A server process under test.
struct Server {
    child: Child,
    addr: SocketAddr,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

impl Server {
    fn noop(dir: &Path) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .env(NOOP_SERVER_ENV, addr.to_string())
            .env("SUPSVC_BENCH_TLS_DIR", dir)
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self { child, addr })
    }

    fn webhook(dir: &Path, name: &str, policies: &[(&str, &Path, &str)]) -> anyhow::Result<Self> {
        Self::webhook_logging(dir, name, policies, Some("warn"))
    }

    /// The webhook with `RUST_LOG` set to `log`, or (`None`) at its default level, `info`, as a
    /// user starts it; stdout (its log) discarded. Started as deployment.yaml's Pod starts it:
    /// `--precompile` (its init container) first, then the server, from the compiled modules.
    fn webhook_logging(
        dir: &Path,
        name: &str,
        policies: &[(&str, &Path, &str)],
        log: Option<&str>,
    ) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let yaml = config_yaml(dir, &dir.join("cache"), policies);
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, yaml)?;
        // As deployment.yaml's init container does: the server starts from compiled modules.
        let status = Command::new(env!("CARGO_BIN_EXE_supsvc-webhook"))
            .args(["--config", &config.display().to_string(), "--precompile"])
            .env("RUST_LOG", "warn")
            .status()?;
        anyhow::ensure!(
            status.success(),
            "supsvc-webhook --precompile failed for {name}"
        );
        Self::start(&config, addr, log)
    }

    /// The webhook of `config` on `addr`, with no init step: with an empty `cacheDir` it
    /// compiles its policies itself.
    fn start(config: &Path, addr: SocketAddr, log: Option<&str>) -> anyhow::Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_supsvc-webhook"));
        command
            .args([
                "--config",
                &config.display().to_string(),
                "--listen",
                &addr.to_string(),
            ])
            .stdout(Stdio::null());
        match log {
            Some(log) => command.env("RUST_LOG", log),
            None => command.env_remove("RUST_LOG"),
        };
        let child = command.spawn()?;
        Ok(Self { child, addr })
    }

    /// `VmHWM` when a webhook started with an empty module cache (no init container) first
    /// answers `/readyz`: what compiling in the serving process costs.
    fn first_start_peak_kib(
        dir: &Path,
        policies: &[(&str, &Path, &str)],
        runtime: &tokio::runtime::Runtime,
        cert: &TestCert,
    ) -> anyhow::Result<u64> {
        let cache = dir.join("cold-cache");
        let _ = std::fs::remove_dir_all(&cache);
        let config = dir.join("cold.yaml");
        std::fs::write(&config, config_yaml(dir, &cache, policies))?;
        let mut server = Self::start(&config, free_port()?, None)?;
        let peak = runtime
            .block_on(server.wait_ready(cert))
            .map(|()| server.proc_status("VmHWM:").unwrap_or(0));
        let _ = server.child.kill();
        let _ = server.child.wait();
        peak
    }

    async fn wait_ready(&self, cert: &TestCert) -> anyhow::Result<()> {
        let client = common::tls::client(&cert.der);
        let url = format!("https://localhost:{}/readyz", self.addr.port());
        for _ in 0..600 {
            if let Ok((200, _)) = common::tls::call(&client, &url, None).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("server on {} never became ready", self.addr)
    }

    fn proc_status(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn memory(&self) -> String {
        match (self.proc_status("VmRSS:"), self.proc_status("VmHWM:")) {
            (Some(rss), Some(peak)) => format!(
                "{:.1} MiB ({:.1} MiB)",
                rss as f64 / 1024.0,
                peak as f64 / 1024.0
            ),
            _ => "n/a".into(),
        }
    }

    /// User + system CPU time of the server process.
    fn cpu_time(&self) -> Duration {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return Duration::ZERO;
        };
        // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_secs_f64(ticks as f64 / 100.0)
    }
}

/// The webhook configuration the bench runs: `dir`'s certificate, `cache` as `cacheDir`.
fn config_yaml(dir: &Path, cache: &Path, policies: &[(&str, &Path, &str)]) -> String {
    let mut yaml = format!(
        "tls: {{certFile: {0}/tls.crt, keyFile: {0}/tls.key}}\ncacheDir: {1}\npolicies:\n",
        dir.display(),
        cache.display()
    );
    for (policy, module, extra) in policies {
        yaml.push_str(&format!(
            "  - name: {policy}\n    module: {}\n    timeout: 100\n    memoryLimit: 32Mi\n{extra}",
            module.display()
        ));
    }
    yaml
}

struct LoadResult {
    count: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// `connections` keep-alive HTTPS connections, each sending the review back to back.
async fn load(
    addr: SocketAddr,
    cert: &TestCert,
    review: Bytes,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let warmup = Duration::from_millis(500);
    let started = Instant::now();
    let measure_from = started + warmup;
    let until = measure_from + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (connector, review) = (connector.clone(), review.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let tls = connector
                .connect(ServerName::try_from("localhost")?, stream)
                .await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
            tokio::spawn(connection);
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let request = http::Request::post("/validate")
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(review.clone()))?;
                let sent = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        response.status() == 200 && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                if sent >= measure_from {
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    break;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut result = LoadResult {
        count: 0,
        errors: 0,
        elapsed: duration,
        latencies: Vec::new(),
    };
    for task in tasks {
        match task.await? {
            Ok((latencies, errors)) => {
                result.count += latencies.len();
                result.errors += errors;
                result.latencies.extend(latencies);
            }
            Err(e) => {
                eprintln!("connection failed: {e}");
                result.errors += 1;
            }
        }
    }
    Ok(result)
}

/// The reference: the same hyper + rustls serving code answering a fixed allow.
fn noop_server(listen: &str) -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::var("SUPSVC_BENCH_TLS_DIR")?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let files = supsvc_webhook::config::TlsFiles { cert_file: dir.join("tls.crt"), key_file: dir.join("tls.key") };
        let certificate = Arc::new(supsvc_webhook::server::tls::ReloadingCertificate::load(files)?);
        let acceptor = tokio_rustls::TlsAcceptor::from(supsvc_webhook::server::tls::server_config(certificate)?);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        const ALLOW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#;
        supsvc_webhook::server::serve_with(
            listener,
            Some(acceptor),
            |request: http::Request<hyper::body::Incoming>| async move {
                let _ = request.into_body().collect().await;
                http::Response::new(Full::new(Bytes::from_static(ALLOW.as_bytes())))
            },
            std::future::pending(),
        )
        .await;
        anyhow::Ok(())
    })
}

/// Part 3: the servers as an independent load generator sees them (issue 19).
mod wrk {
    use super::*;

    use common::fixtures::WASIP1;

    const CONNECTIONS: usize = 32;
    const THREADS: usize = 2;

    /// One measured run of one server.
    struct Run {
        requests: u64,
        errors: u64,
        rps: f64,
        p99: Duration,
        cpu_per_request: Duration,
        peak_rss_kib: u64,
    }

    fn env_secs(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|text| {
                text.split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|_| "n/a".into())
    }

    fn on_path(program: &str) -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
    }

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|line| line.starts_with("Uid:"))?;
                line.split_whitespace().nth(2).map(|euid| euid == "0")
            })
            .unwrap_or(false)
    }

    /// wrk from Debian's package: found on PATH, else installed with apt-get when running as
    /// root. `None` (with the reason printed) where neither works.
    fn ensure_wrk() -> Option<PathBuf> {
        if let Some(wrk) = on_path("wrk") {
            return Some(wrk);
        }
        if !is_root() || on_path("apt-get").is_none() {
            eprintln!(
                "error: wrk is not installed, so the wrk runs are skipped\n\
                 hint: install Debian's package (`apt-get install -y wrk` as root) and run again"
            );
            return None;
        }
        eprintln!("installing wrk: apt-get update && apt-get install -y wrk");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !(apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "wrk"])) {
            eprintln!(
                "error: `apt-get install -y wrk` failed, so the wrk runs are skipped\n\
                 hint: check the machine's apt sources and network, then run again"
            );
            return None;
        }
        on_path("wrk")
    }

    /// The Lua script wrk runs: `POST` of the review's bytes, and one machine-readable line at
    /// the end (requests, µs elapsed, p99 in µs, errors of every kind including non-2xx).
    fn script(dir: &Path, review: &[u8]) -> anyhow::Result<PathBuf> {
        let body = dir.join("wrk-body.json");
        std::fs::write(&body, review)?;
        let script = dir.join("wrk-post.lua");
        std::fs::write(
            &script,
            format!(
                r#"local f = assert(io.open("{}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SUPSVC_WRK %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"#,
                body.display()
            ),
        )?;
        Ok(script)
    }

    fn wrk(wrk: &Path, script: &Path, addr: SocketAddr, seconds: u64) -> anyhow::Result<[u64; 4]> {
        let output = Command::new(wrk)
            .args([
                &format!("-t{THREADS}"),
                &format!("-c{CONNECTIONS}"),
                &format!("-d{seconds}s"),
                "--timeout",
                "5s",
                "-s",
            ])
            .arg(script)
            .arg(format!("https://localhost:{}/validate", addr.port()))
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix("SUPSVC_WRK "))
            .ok_or_else(|| anyhow::anyhow!("wrk printed no summary: {stdout}"))?;
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        numbers
            .try_into()
            .map_err(|_| anyhow::anyhow!("unexpected wrk summary {line:?}"))
    }

    fn measure(
        wrk_bin: &Path,
        script: &Path,
        runtime: &tokio::runtime::Runtime,
        cert: &TestCert,
        mut server: Server,
        warmup: u64,
        seconds: u64,
    ) -> anyhow::Result<Run> {
        let result = (|| {
            runtime.block_on(server.wait_ready(cert))?;
            wrk(wrk_bin, script, server.addr, warmup)?;
            let before = server.cpu_time();
            let [requests, micros, p99, errors] = wrk(wrk_bin, script, server.addr, seconds)?;
            let cpu = server.cpu_time().saturating_sub(before);
            Ok(Run {
                requests,
                errors,
                rps: requests as f64 / (micros.max(1) as f64 / 1e6),
                p99: Duration::from_micros(p99),
                cpu_per_request: cpu / requests.max(1) as u32,
                peak_rss_kib: server.proc_status("VmHWM:").unwrap_or(0),
            })
        })();
        let _ = server.child.kill();
        let _ = server.child.wait();
        result
    }

    fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        values[values.len() / 2]
    }

    pub(super) fn run(pod: &[u8], shipped: Option<&(PathBuf, PathBuf)>) -> anyhow::Result<()> {
        let Some(wrk_bin) = ensure_wrk() else {
            return Ok(());
        };
        let rounds = env_secs("SUPSVC_BENCH_WRK_ROUNDS", 3).max(1);
        let warmup = env_secs("SUPSVC_BENCH_WRK_WARMUP", 5).max(1);
        let seconds = env_secs("SUPSVC_BENCH_WRK_SECONDS", 20).max(1);
        let dir = tempfile::tempdir()?;
        let cert = self_signed();
        write_cert(dir.path(), &cert);
        let script = script(dir.path(), pod)?;
        let sdk_unknown = fixture_policy("kubewarden-pod-names", UNKNOWN_UNKNOWN);
        let sdk_wasip1 = fixture_policy("kubewarden-pod-names", WASIP1);

        type Start<'a> = Box<dyn Fn() -> anyhow::Result<Server> + 'a>;
        let d = dir.path();
        let accept_all = d.join("wat-accept-all.wasm");
        std::fs::write(&accept_all, wasm(Behaviour::Accept))?;
        let mut servers: Vec<(&str, Start)> = vec![(
            "no-op HTTPS server (hyper + rustls, fixed allow)",
            Box::new(|| Server::noop(d)),
        )];
        // Two rows that split a policy's cost: what the webhook pays before any policy runs, and
        // what one evaluation in a fresh instance costs when the guest itself does nothing.
        if let Some((_, storage)) = shipped {
            servers.push((
                "webhook, no policy matching the Pod (storage-guard only)",
                Box::new(move || {
                    Server::webhook_logging(
                        d,
                        "wrk-no-match",
                        &[("storage-guard", storage, STORAGE_RULES)],
                        None,
                    )
                }),
            ));
        }
        servers.push((
            "webhook, WAT accept-all (a fresh instance, no guest work)",
            Box::new(|| {
                Server::webhook_logging(
                    d,
                    "wrk-accept-all",
                    &[("accept-all", &accept_all, REGISTRY_RULES)],
                    None,
                )
            }),
        ));
        if let Some((registry, storage)) = shipped {
            servers.push((
                "webhook, both shipped policies",
                Box::new(move || {
                    Server::webhook_logging(
                        d,
                        "wrk-shipped",
                        &[
                            ("registry-guard", registry, REGISTRY_RULES),
                            ("storage-guard", storage, STORAGE_RULES),
                        ],
                        None,
                    )
                }),
            ));
        }
        servers.push((
            "webhook, Kubewarden SDK pod-names (wasm32-wasip1)",
            Box::new(|| {
                Server::webhook_logging(
                    d,
                    "wrk-sdk-wasip1",
                    &[("pod-names", &sdk_wasip1, "")],
                    None,
                )
            }),
        ));
        servers.push((
            "webhook, Kubewarden SDK pod-names (wasm32-unknown-unknown)",
            Box::new(|| {
                Server::webhook_logging(
                    d,
                    "wrk-sdk-unknown",
                    &[("pod-names", &sdk_unknown, "")],
                    None,
                )
            }),
        ));

        println!(
            "\n## wrk: -t{THREADS} -c{CONNECTIONS}, keep-alive HTTP/1.1, POST /validate of the {}-byte Pod review; \
             {rounds} round(s), each server a fresh process per run: {warmup} s warm-up, {seconds} s measured\n",
            pod.len()
        );
        println!("load average at the start: {}", load_average());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let mut runs: Vec<Vec<Run>> = servers.iter().map(|_| Vec::new()).collect();
        for round in 1..=rounds {
            for (index, (name, start)) in servers.iter().enumerate() {
                let run = measure(
                    &wrk_bin,
                    &script,
                    &runtime,
                    &cert,
                    start()?,
                    warmup,
                    seconds,
                )?;
                eprintln!(
                    "round {round}: {name}: {:.0} req/s, p99 {}, {:.1} µs CPU/request, peak RSS {:.1} MiB, {} errors (load {})",
                    run.rps,
                    us(run.p99),
                    run.cpu_per_request.as_secs_f64() * 1e6,
                    run.peak_rss_kib as f64 / 1024.0,
                    run.errors,
                    load_average()
                );
                runs[index].push(run);
            }
        }
        println!("load average at the end: {}\n", load_average());
        println!(
            "| server | req/s | p99 | server CPU/request | peak RSS | CPU/request ÷ no-op | req/s ÷ no-op | p99 ÷ no-op | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut noop: Option<(f64, f64, f64)> = None;
        for ((name, _), runs) in servers.iter().zip(&runs) {
            let rps = median(runs.iter().map(|r| r.rps).collect());
            let p99 = median(runs.iter().map(|r| r.p99.as_secs_f64()).collect());
            let cpu = median(
                runs.iter()
                    .map(|r| r.cpu_per_request.as_secs_f64())
                    .collect(),
            );
            let rss = median(runs.iter().map(|r| r.peak_rss_kib).collect());
            let errors: u64 = runs.iter().map(|r| r.errors).sum();
            let requests: u64 = runs.iter().map(|r| r.requests).sum();
            let (cpu_ratio, rps_ratio, p99_ratio) = match noop {
                None => {
                    noop = Some((cpu, rps, p99));
                    ("1×".to_string(), "100%".to_string(), "1×".to_string())
                }
                Some((noop_cpu, noop_rps, noop_p99)) => (
                    format!("{:.2}×", cpu / noop_cpu),
                    format!("{:.0}%", 100.0 * rps / noop_rps),
                    format!("{:.2}×", p99 / noop_p99),
                ),
            };
            println!(
                "| {name} | {rps:.0} | {} | {:.1} µs | {:.1} MiB | {cpu_ratio} | {rps_ratio} | {p99_ratio} | {errors} of {requests} |",
                us(Duration::from_secs_f64(p99)),
                cpu * 1e6,
                rss as f64 / 1024.0
            );
        }
        println!(
            "\nThe webhooks above start as deployment.yaml's Pod does: `--precompile` (the init \
             container) first, so their peak RSS is the serving process's."
        );
        if let Some((registry, storage)) = shipped {
            let policies = [
                ("registry-guard", registry.as_path(), REGISTRY_RULES),
                ("storage-guard", storage.as_path(), STORAGE_RULES),
            ];
            let peaks: Vec<String> = (0..3)
                .map(|_| Server::first_start_peak_kib(d, &policies, &runtime, &cert))
                .map(|peak| peak.map(|kib| format!("{:.1} MiB", kib as f64 / 1024.0)))
                .collect::<anyhow::Result<_>>()?;
            println!(
                "Both shipped policies, started with an empty module cache and no init container \
                 (the server compiles them itself), peak RSS when first ready: {}",
                peaks.join(", ")
            );
        }
        Ok(())
    }
}

const REGISTRY_RULES: &str = "    rules: [{operations: [CREATE, UPDATE], apiGroups: [\"\", apps, batch], resources: [pods, deployments, statefulsets, daemonsets, replicasets, jobs, cronjobs]}]\n";
const STORAGE_RULES: &str = "    rules: [{operations: [UPDATE, DELETE], apiGroups: [\"\", apps], resources: [persistentvolumeclaims, statefulsets]}]\n";
