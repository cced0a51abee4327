//! Helpers shared by the end-to-end tests: a simulated Supervisor with its kubeconfig on disk, the real
//! `kubectl` pointed at it, built binaries, and polling.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Tools from the distribution's packages that tests install when missing.
pub mod tools;

use serde_json::Value;
use supsvc_sim::api::{Client, Gvr};
use supsvc_sim::{SimOptions, Simulator};

pub mod guards;
pub mod plugin;
pub mod vcenter;

/// The namespace of every Supervisor Service's PackageInstall.
pub const SERVICES_NAMESPACE: &str = "vmware-system-supervisor-services";
/// The TKG Service, the subject of the KB.
pub const TKG: &str = "svc-tkg.vsphere.vmware.com";
/// Its domain namespace in the scenarios.
pub const TKG_DOMAIN: &str = "svc-tkg-domain-c1234";
/// Its child PackageInstalls, as the KB lists them.
pub const TKG_CHILDREN: [&str; 6] = [
    "tanzu-addons-manager",
    "tkg-controller",
    "tanzu-cliplugins",
    "tanzu-cluster-api",
    "runtime-extension",
    "tkr-service",
];

/// krew's platforms (os, arch) that `krew/release.sh` builds, with the Rust target of each (the name
/// of its archive): what the manifest lists and what tests/tests/release_archives.rs builds and runs.
pub const KREW_PLATFORMS: [(&str, &str, &str); 5] = [
    ("linux", "amd64", "x86_64-unknown-linux-musl"),
    ("linux", "arm64", "aarch64-unknown-linux-musl"),
    ("darwin", "amd64", "x86_64-apple-darwin"),
    ("darwin", "arm64", "aarch64-apple-darwin"),
    ("windows", "amd64", "x86_64-pc-windows-gnu"),
];

/// A simulator started for one test, with its kubeconfig written to a temporary directory.
pub struct Supervisor {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Supervisor {
    /// Starts `scenario` with every controller period multiplied by `time_scale`.
    pub async fn start(scenario: &str, time_scale: f64) -> Supervisor {
        let sim = Simulator::start(SimOptions::new(scenario).time_scale(time_scale))
            .await
            .unwrap_or_else(|e| panic!("starting scenario {scenario}: {e:#}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        Supervisor {
            sim,
            dir,
            kubeconfig,
        }
    }

    /// Runs the real `kubectl` with this kubeconfig; returns the output whatever the exit status.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig, args)
    }

    /// Runs `kubectl` and returns its stdout; panics with stderr if it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a shell script (e.g. the KB's commands as written) with `KUBECONFIG` set.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("sh")
            .arg("-ec")
            .arg(script)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("sh runs")
    }

    pub fn admin(&self) -> Client {
        self.sim.admin()
    }

    /// Reads an object as the admin.
    pub async fn get(&self, gvr: Gvr, namespace: &str, name: &str) -> Value {
        self.admin()
            .get(gvr, Some(namespace), name)
            .await
            .unwrap_or_else(|e| panic!("get {namespace}/{name}: {e}"))
    }
}

/// The real `kubectl`: `$KUBECTL` if set, else the one on PATH.
pub fn kubectl_path() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .output()
        .expect("kubectl is installed (see README: .ci/run installs it)")
}

/// A file under `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether a Carvel object has reconciled: `ReconcileSucceeded` with its generation observed.
pub fn reconciled(object: &Value) -> bool {
    object["metadata"]["generation"] == object["status"]["observedGeneration"]
        && object["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "ReconcileSucceeded" && c["status"] == "True")
        })
}

/// The path of a workspace binary, built once per test process with every feature of its package
/// (`cargo build --bin NAME --all-features`): the tests drive `kubectl supsvc policy run|bench` and
/// `demo`, which the operator's lean build leaves out.
pub fn workspace_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "--all-features", "--bin", name])
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "cargo build --all-features --bin {name} failed"
        );
        built.push(name.to_string());
    }
    target.join("debug").join(name)
}

/// The `.wasm` of a policy crate of the workspace (e.g. `supsvc-registry-guard`), built once per test
/// process for `wasm32-unknown-unknown` with the size-optimised `wasm-release` profile.
pub fn policy_wasm(package: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == package) {
        ensure_wasm_target(supsvc_wasm_target::WASM32_UNKNOWN_UNKNOWN, &root);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "-p",
                package,
                "--target",
                "wasm32-unknown-unknown",
                "--profile",
                "wasm-release",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {package} for wasm32 failed");
        built.push(package.to_string());
    }
    target
        .join("wasm32-unknown-unknown/wasm-release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Installs `target` for the toolchain that builds in `dir` when it is missing (the tests set up what
/// they need); where it cannot, fails with the one line that says what is missing and how to install it.
pub fn ensure_wasm_target(target: &str, dir: &Path) {
    if let Err(e) = supsvc_wasm_target::ensure(target, dir, supsvc_wasm_target::Install::WithRustup)
    {
        panic!("error: {e}");
    }
}

/// A kapp text as UIs such as vCenter show it: kapp writes its errors over several indented lines
/// (go-cli-ui's MultiLineError breaks `: ` before a capital into a new line); this joins them back
/// with single spaces, so a test can look for an API server's message whole.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
