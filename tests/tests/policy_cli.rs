//! `kubectl supsvc policy run|bench|new`, through the built binary and through the real `kubectl` with
//! the plugin on PATH: verdicts of the shipped policies on the admission fixtures, every kind of bad
//! input explained with its exit code, latency figures, and a scaffolded policy crate that tests,
//! builds for wasm32 and gives the verdicts it was written for.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use supsvc_tests::{ensure_wasm_target, kubectl_path, policy_wasm, workspace_binary};
use supsvc_wasm_target::WASM32_UNKNOWN_UNKNOWN;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture(path: &str) -> String {
    root()
        .join("tests/fixtures/admission")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// How the plugin is run.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `kubectl-supsvc ...`
    Binary,
    /// `kubectl supsvc ...`, the plugin's directory first on PATH.
    Kubectl,
}

fn supsvc_in(via: Via, dir: Option<&Path>, args: &[&str]) -> Output {
    let binary = workspace_binary("kubectl-supsvc");
    let mut command = match via {
        Via::Binary => Command::new(&binary),
        Via::Kubectl => {
            let mut c = Command::new(kubectl_path());
            let plugin_dir = binary.parent().expect("target dir").to_path_buf();
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(plugin_dir).chain(std::env::split_paths(&path));
            c.env("PATH", std::env::join_paths(paths).unwrap())
                .env("KUBECONFIG", "/nonexistent/kubeconfig")
                .arg("supsvc");
            c
        }
    };
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.args(args).output().expect("the plugin runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    output
}

fn supsvc(via: Via, args: &[&str]) -> Output {
    supsvc_in(via, None, args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn exit(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// stdout as JSON, after checking the command succeeded.
fn json_ok(output: &Output) -> Value {
    assert_eq!(exit(output), 0, "stderr: {}", text(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

fn wasm(package: &str) -> String {
    policy_wasm(package).to_string_lossy().into_owned()
}

/// A policy in WebAssembly text: `validate_settings` accepts any settings; `validate` runs `body`
/// (which may use the answer at offset 64 of `answer`'s length, `$answer_len`).
fn wat_policy(dir: &Path, name: &str, answer: &str, body: &str) -> String {
    let escaped = answer.replace('\\', "\\\\").replace('"', "\\\"");
    let wat = format!(
        r#"(module
  (import "wapc" "__guest_response" (func $response (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{{\"valid\":true}}")
  (data (i32.const 64) "{escaped}")
  (func (export "__guest_call") (param $op_len i32) (param $payload_len i32) (result i32)
    ;; "validate" is the only operation 8 bytes long
    (if (i32.ne (local.get $op_len) (i32.const 8))
      (then (call $response (i32.const 0) (i32.const 14)) (return (i32.const 1))))
    {body}))
"#
    );
    let wat = wat.replace("$answer_len", &answer.len().to_string());
    let path = dir.join(format!("{name}.wat"));
    std::fs::write(&path, wat).unwrap();
    path.to_string_lossy().into_owned()
}

const ANSWER: &str = "(call $response (i32.const 64) (i32.const $answer_len)) (i32.const 1)";

#[test]
fn run_prints_the_verdicts_of_the_shipped_policies() {
    let registry_guard = wasm("supsvc-registry-guard");
    let storage_guard = wasm("supsvc-storage-guard");
    let nginx = fixture("registry-guard/pod-nginx.json");

    // People: kubectl describe-style lines.
    let denied = supsvc(
        Via::Binary,
        &["policy", "run", "--request", &nginx, &registry_guard],
    );
    assert_eq!(exit(&denied), 0, "{}", text(&denied.stderr));
    let out = text(&denied.stdout);
    for line in [
        "Policy:       supsvc_registry_guard (sha256 ",
        "Request:      CREATE pods default/web by kubernetes-admin (uid b1)",
        "Verdict:      denied",
        "Code:         403",
        "\"nginx\" resolves to docker.io/library/nginx:latest, registry docker.io",
        "Time:         ",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }

    // Scripts: the AdmissionReview response the webhook sends for this policy alone.
    let review = json_ok(&supsvc(
        Via::Binary,
        &[
            "policy",
            "run",
            "-o",
            "json",
            "--request",
            &nginx,
            "--name",
            "registry-guard",
            &registry_guard,
        ],
    ));
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = &review["response"];
    assert_eq!(response["uid"], "b1");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("policy registry-guard: Pod default/web uses"),
        "{message}"
    );

    // Settings inline and from a YAML file give the same verdict: break-glass allowed, with a warning
    // and an audit annotation.
    let dir = tempfile::tempdir().unwrap();
    let settings_file = dir.path().join("settings.yaml");
    std::fs::write(&settings_file, "breakGlassGroups:\n  - sre-oncall\n").unwrap();
    let break_glass = fixture("storage-guard/pvc-break-glass-by-oncall.json");
    for settings in [
        r#"{"breakGlassGroups": ["sre-oncall"]}"#,
        settings_file.to_str().unwrap(),
    ] {
        let review = json_ok(&supsvc(
            Via::Binary,
            &[
                "policy",
                "run",
                "-o",
                "json",
                "--request",
                &break_glass,
                "--settings",
                settings,
                &storage_guard,
            ],
        ));
        let response = &review["response"];
        assert_eq!(response["allowed"], true, "{settings}: {response}");
        assert!(
            response["warnings"][0]
                .as_str()
                .unwrap()
                .contains("INC-4711 registry disk full"),
            "{response}"
        );
        assert_eq!(
            response["auditAnnotations"]["supsvc.io/break-glass"],
            "alice: INC-4711 registry disk full"
        );
    }
    // Without the settings the same request is denied.
    let review = json_ok(&supsvc(
        Via::Binary,
        &[
            "policy",
            "run",
            "-o",
            "json",
            "--request",
            &break_glass,
            &storage_guard,
        ],
    ));
    assert_eq!(review["response"]["allowed"], false);

    // A bare AdmissionRequest on stdin.
    let review_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&nginx).unwrap()).unwrap();
    let mut child = Command::new(workspace_binary("kubectl-supsvc"))
        .args([
            "policy",
            "run",
            "-o",
            "yaml",
            "--request",
            "-",
            &registry_guard,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        review_json["request"].to_string().as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(exit(&output), 0);
    let yaml: Value = serde_saphyr::from_str(&text(&output.stdout)).unwrap();
    assert_eq!(yaml["response"]["allowed"], false);
    assert_eq!(yaml["response"]["uid"], "b1");
}

#[test]
fn run_through_kubectl_and_its_exit_codes() {
    let registry_guard = wasm("supsvc-registry-guard");
    let nginx = fixture("registry-guard/pod-nginx.json");
    let private = fixture("registry-guard/pod-private.json");

    let allowed = supsvc(
        Via::Kubectl,
        &[
            "policy",
            "run",
            "--fail-on-deny",
            "--request",
            &private,
            &registry_guard,
        ],
    );
    assert_eq!(exit(&allowed), 0, "{}", text(&allowed.stderr));
    assert!(text(&allowed.stdout).contains("Verdict:      allowed"));

    // A denial is a verdict, exit 0 — unless --fail-on-deny.
    let denied = supsvc(
        Via::Kubectl,
        &["policy", "run", "--request", &nginx, &registry_guard],
    );
    assert_eq!(exit(&denied), 0);
    let failed = supsvc(
        Via::Kubectl,
        &[
            "policy",
            "run",
            "--fail-on-deny",
            "--request",
            &nginx,
            &registry_guard,
        ],
    );
    assert_eq!(exit(&failed), 1);
    assert!(text(&failed.stdout).contains("Verdict:      denied"));
    assert_eq!(
        text(&failed.stderr).lines().next(),
        Some("error: policy supsvc_registry_guard denied the request")
    );

    // The WAT example of the authoring guide runs as it is.
    let no_delete = root()
        .join("policies/examples/wat/no-delete.wat")
        .to_string_lossy()
        .into_owned();
    let review = json_ok(&supsvc(
        Via::Kubectl,
        &[
            "policy",
            "run",
            "-o",
            "json",
            "--request",
            &fixture("webhook/pod-delete.json"),
            &no_delete,
        ],
    ));
    assert_eq!(review["response"]["allowed"], false);
}

#[test]
fn bad_modules_settings_and_requests_are_explained_with_their_exit_codes() {
    let registry_guard = wasm("supsvc-registry-guard");
    let nginx = fixture("registry-guard/pod-nginx.json");
    let dir = tempfile::tempdir().unwrap();
    let loops = wat_policy(
        dir.path(),
        "loops",
        "",
        "(loop $again (br $again)) (i32.const 0)",
    );
    let traps = wat_policy(dir.path(), "traps", "", "unreachable");
    let garbage = wat_policy(dir.path(), "garbage", "not json", ANSWER);
    let not_wapc = dir.path().join("empty.wat");
    std::fs::write(&not_wapc, "(module (memory (export \"memory\") 1))").unwrap();
    let not_wapc = not_wapc.to_string_lossy().into_owned();
    let readme = root().join("README.md").to_string_lossy().into_owned();
    let truncated = fixture("webhook/bad-truncated.json");
    let no_request = fixture("webhook/bad-missing-request.json");

    // (arguments, exit code, what stderr says)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "--request",
                &nginx,
                "--settings",
                r#"{"deniedRegistries": ["bad pattern!"]}"#,
                &registry_guard,
            ],
            1,
            "error: policy supsvc_registry_guard: settings rejected: deniedRegistries: invalid registry pattern",
        ),
        (
            vec![
                "--request",
                &nginx,
                "--settings",
                "{deniedRegistries",
                &registry_guard,
            ],
            2,
            "error: --settings is not valid JSON",
        ),
        (
            vec![
                "--request",
                &nginx,
                "--settings",
                "/nonexistent/settings.yaml",
                &registry_guard,
            ],
            2,
            "error: cannot read the settings /nonexistent/settings.yaml",
        ),
        (
            vec!["--request", &truncated, &registry_guard],
            2,
            "the body is not valid JSON",
        ),
        (
            vec!["--request", &no_request, &registry_guard],
            2,
            "the AdmissionReview has no request",
        ),
        (
            vec!["--request", "/nonexistent/review.json", &registry_guard],
            2,
            "error: cannot read the request /nonexistent/review.json",
        ),
        (
            vec!["--request", &nginx, "/nonexistent/policy.wasm"],
            2,
            "error: cannot read the module /nonexistent/policy.wasm",
        ),
        (
            vec!["--request", &nginx, &readme],
            1,
            "is not a WebAssembly module",
        ),
        (
            vec!["--request", &nginx, &not_wapc],
            1,
            "not a waPC policy: the module exports no `__guest_call`",
        ),
        (
            vec!["--request", &nginx, "--timeout", "20ms", &loops],
            3,
            "error: policy loops timed out after 20 ms",
        ),
        (
            vec!["--request", &nginx, &traps],
            1,
            "error: policy traps trapped",
        ),
        (
            vec!["--request", &nginx, &garbage],
            1,
            "error: policy garbage returned invalid output",
        ),
        (
            vec![
                "--request",
                &nginx,
                "--memory-limit",
                "lots",
                &registry_guard,
            ],
            2,
            "error: --memory-limit",
        ),
        (vec!["--request", &nginx], 2, "MODULE.wasm"),
        (
            vec!["--request", &nginx, "--bogus", &registry_guard],
            2,
            "--bogus",
        ),
    ];
    for (args, code, says) in cases {
        let args: Vec<&str> = ["policy", "run"].into_iter().chain(args).collect();
        let output = supsvc(Via::Binary, &args);
        let stderr = text(&output.stderr);
        assert_eq!(exit(&output), code, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {says:?} not in {stderr}");
        // clap's own usage errors aside, every failure is `error:` and `hint:`.
        if !stderr.contains("Usage:") {
            assert!(
                stderr.starts_with("error: ") && stderr.contains("\nhint: "),
                "{args:?}: {stderr}"
            );
        }
    }

    // bench explains the same way.
    let output = supsvc(
        Via::Binary,
        &[
            "policy",
            "bench",
            "--iterations",
            "5",
            "--request",
            &nginx,
            "--timeout",
            "20ms",
            &loops,
        ],
    );
    assert_eq!(exit(&output), 3, "{}", text(&output.stderr));
    let output = supsvc(
        Via::Binary,
        &[
            "policy",
            "bench",
            "--iterations",
            "5",
            "--duration",
            "1s",
            "--request",
            &nginx,
            &registry_guard,
        ],
    );
    assert_eq!(exit(&output), 2, "{}", text(&output.stderr));
}

#[test]
fn a_mutating_policy_is_shown_with_its_patch() {
    let dir = tempfile::tempdir().unwrap();
    let answer = r#"{"accepted":true,"mutated_object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nginx","namespace":"default","labels":{"app":"web","team":"a"}},"spec":{"containers":[{"name":"nginx","image":"registry.example.com/library/nginx:1.27"}]}}}"#;
    let mutates = wat_policy(dir.path(), "adds-team", answer, ANSWER);
    let request = dir.path().join("pod.json");
    std::fs::write(
        &request,
        serde_json::json!({
            "uid": "m1", "operation": "CREATE", "name": "nginx", "namespace": "default",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "registry.example.com/library/nginx:1.27"}]}}
        })
        .to_string(),
    )
    .unwrap();
    let request = request.to_string_lossy().into_owned();

    let human = supsvc(
        Via::Binary,
        &["policy", "run", "--request", &request, &mutates],
    );
    let out = text(&human.stdout);
    assert!(out.contains("Verdict:      allowed"), "{out}");
    assert!(
        out.contains(
            "Patch:        1 operation(s) on the object; not applied: supsvc-webhook validates only"
        ),
        "{out}"
    );
    assert!(
        out.contains(r#"{"op":"add","path":"/metadata/labels/team","value":"a"}"#),
        "{out}"
    );

    let review = json_ok(&supsvc(
        Via::Binary,
        &[
            "policy",
            "run",
            "-o",
            "json",
            "--request",
            &request,
            &mutates,
        ],
    ));
    assert_eq!(review["response"]["patchType"], "JSONPatch");
    use base64::Engine;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(review["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    assert_eq!(
        patch,
        serde_json::json!([{"op": "add", "path": "/metadata/labels/team", "value": "a"}])
    );
}

#[test]
fn bench_reports_per_evaluation_latency() {
    let registry_guard = wasm("supsvc-registry-guard");
    let nginx = fixture("registry-guard/pod-nginx.json");
    let report = json_ok(&supsvc(
        Via::Binary,
        &[
            "policy",
            "bench",
            "--iterations",
            "200",
            "-o",
            "json",
            "--request",
            &nginx,
            &registry_guard,
        ],
    ));
    assert_eq!(report["policy"], "supsvc_registry_guard");
    assert_eq!(report["verdict"], "denied");
    assert_eq!(report["evaluations"], 200);
    assert!(report["evaluationsPerSecond"].as_f64().unwrap() > 0.0);
    let l = &report["latencyMicros"];
    let at = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} in {l}"));
    assert!(at("min") > 0.0, "{l}");
    assert!(at("min") <= at("p50") && at("p50") <= at("p90"), "{l}");
    assert!(at("p90") <= at("p99") && at("p99") <= at("max"), "{l}");
    assert!(at("min") <= at("mean") && at("mean") <= at("max"), "{l}");
    // The instruction count is the figure to compare builds with: the same at every run.
    let instructions = report["instructions"].as_u64().expect("instructions");
    assert!(instructions > 1_000, "{report}");
    let again = json_ok(&supsvc(
        Via::Binary,
        &[
            "policy",
            "bench",
            "--iterations",
            "10",
            "-o",
            "json",
            "--request",
            &nginx,
            &registry_guard,
        ],
    ));
    assert_eq!(again["instructions"], instructions);

    let human = supsvc(
        Via::Kubectl,
        &[
            "policy",
            "bench",
            "--duration",
            "300ms",
            "--request",
            &nginx,
            &registry_guard,
        ],
    );
    assert_eq!(exit(&human), 0, "{}", text(&human.stderr));
    let out = text(&human.stdout);
    for label in [
        "Evaluations:",
        "Latency:      p50 ",
        "   p99 ",
        "mean ",
        "Instructions: ",
        "Load:",
    ] {
        assert!(out.contains(label), "{label:?} missing from:\n{out}");
    }
}

/// Cargo for a scaffolded crate: the shared `target/fixture-policies` (as webhook/tests build the
/// fixture policies), so dependencies already built there are reused.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target/fixture-policies"))
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        text(&output.stderr)
    );
    output
}

/// Builds a scaffolded crate for the webhook's target, then checks its module's verdicts.
fn build_and_check_scaffold(dir: &Path, name: &str) {
    ensure_wasm_target(WASM32_UNKNOWN_UNKNOWN, dir);
    cargo(
        dir,
        &[
            "build",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ],
    );
    check_scaffold_verdicts(dir, &built_wasm(name));
}

fn built_wasm(name: &str) -> String {
    root()
        .join("target/fixture-policies/wasm32-unknown-unknown/wasm-release")
        .join(format!("{}.wasm", name.replace('-', "_")))
        .to_string_lossy()
        .into_owned()
}

/// Scaffolds `name` with `extra` arguments, pinning its dependencies to the lock file of the fixture
/// crate written with the same SDK: the versions already built in `target/fixture-policies`.
fn scaffold(parent: &Path, name: &str, extra: &[&str], lock_of: &str) -> PathBuf {
    let dir = parent.join(name);
    let dir_arg = dir.to_string_lossy().into_owned();
    let args: Vec<&str> = ["policy", "new", name, "--path", &dir_arg]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let created = supsvc(Via::Kubectl, &args);
    assert_eq!(exit(&created), 0, "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).starts_with(&format!("Created the policy crate {name} in ")),
        "{}",
        text(&created.stdout)
    );
    std::fs::copy(
        root()
            .join("tests/fixtures/policies")
            .join(lock_of)
            .join("Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    dir
}

/// The verdicts the scaffold's policy is written to give, through `kubectl supsvc policy run`.
fn check_scaffold_verdicts(dir: &Path, wasm: &str) {
    let denied = json_ok(&supsvc_in(
        Via::Kubectl,
        Some(dir),
        &[
            "policy",
            "run",
            "-o",
            "json",
            "--request",
            "test_data/pod-create.json",
            "--settings",
            r#"{"deniedNames": ["nginx"]}"#,
            wasm,
        ],
    ));
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    assert_eq!(denied["response"]["status"]["code"], 403);
    assert!(
        denied["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .ends_with("Pod nginx: the name is in deniedNames; choose another name"),
        "{denied}"
    );
    let warned = json_ok(&supsvc_in(
        Via::Kubectl,
        Some(dir),
        &[
            "policy",
            "run",
            "-o",
            "json",
            "--request",
            "test_data/pod-without-labels.json",
            wasm,
        ],
    ));
    assert_eq!(warned["response"]["allowed"], true, "{warned}");
    assert_eq!(
        warned["response"]["warnings"],
        serde_json::json!(["Pod debug has no labels"])
    );
    let refused = supsvc_in(
        Via::Kubectl,
        Some(dir),
        &[
            "policy",
            "run",
            "--request",
            "test_data/pod-create.json",
            "--settings",
            r#"{"deniedNames": [""]}"#,
            wasm,
        ],
    );
    assert_eq!(exit(&refused), 1);
    assert!(
        text(&refused.stderr)
            .contains("settings rejected: deniedNames must not contain an empty name"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn new_scaffolds_a_crate_that_tests_builds_for_wasm_and_runs() {
    // Inside the supsvc checkout (target/tmp): the crate must be a workspace of its own to build here.
    let parent = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let name = "policy-cli-scaffold";
    let dir = scaffold(parent.path(), name, &[], "sdk-required-labels");

    let tested = cargo(&dir, &["test"]);
    let report = text(&tested.stdout);
    assert!(report.contains("test result: ok. 4 passed"), "{report}");
    build_and_check_scaffold(&dir, name);

    // Not over an existing crate; names cargo would refuse; an SDK path that is not one.
    let again = supsvc(
        Via::Binary,
        &["policy", "new", name, "--path", dir.to_str().unwrap()],
    );
    assert_eq!(exit(&again), 1);
    assert!(text(&again.stderr).contains("already exists and is not empty"));
    let elsewhere = parent.path().join("other");
    let elsewhere = elsewhere.to_str().unwrap();
    for (args, says) in [
        (
            vec!["Bad Name", "--path", elsewhere],
            "cannot name a policy crate",
        ),
        (
            vec!["fn", "--path", elsewhere],
            "cannot name a policy crate",
        ),
        (
            vec!["p", "--path", elsewhere, "--sdk-path", "/nonexistent"],
            "--sdk-path /nonexistent: no supsvc-policy-sdk there",
        ),
        (
            vec![
                "p",
                "--path",
                elsewhere,
                "--sdk",
                "kubewarden",
                "--sdk-path",
                "/x",
            ],
            "--sdk kubewarden uses crates.io",
        ),
    ] {
        let args: Vec<&str> = ["policy", "new"].into_iter().chain(args).collect();
        let output = supsvc(Via::Binary, &args);
        assert_eq!(exit(&output), 2, "{args:?}: {}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains(says),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stderr).contains("\nhint: "));
    }
    assert!(
        !Path::new(elsewhere).exists(),
        "nothing written on a refusal"
    );

    // --sdk-path names a checkout (here, this one) as well as the SDK's directory.
    let by_checkout = parent.path().join("by-checkout");
    let output = supsvc(
        Via::Binary,
        &[
            "policy",
            "new",
            "by-checkout",
            "--path",
            by_checkout.to_str().unwrap(),
            "--sdk-path",
            root().to_str().unwrap(),
        ],
    );
    assert_eq!(exit(&output), 0, "{}", text(&output.stderr));
    let manifest = std::fs::read_to_string(by_checkout.join("Cargo.toml")).unwrap();
    let sdk = root().join("policies/sdk").canonicalize().unwrap();
    assert!(
        manifest.contains(&format!(
            "supsvc-policy-sdk = {{ path = \"{}\" }}",
            sdk.display()
        )),
        "{manifest}"
    );
}

/// The Kubewarden flavour, for wasm32 and through the host. Its native `cargo test` (the test
/// below) compiles kubewarden-policy-sdk's ~100 dependencies for the host a second time.
#[test]
fn new_with_the_kubewarden_sdk_builds_for_wasm_and_runs() {
    let parent = tempfile::tempdir().unwrap();
    let name = "policy-cli-kubewarden";
    let dir = scaffold(
        parent.path(),
        name,
        &["--sdk", "kubewarden"],
        "kubewarden-pod-names",
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("supsvc-policy-sdk"), "{manifest}");
    build_and_check_scaffold(&dir, name);
}

/// A scaffold's own tests pass as `policy new` writes them (about a minute and a half on 2 cores:
/// the SDK's dependencies compiled natively).
#[test]
fn new_with_the_kubewarden_sdk_passes_its_own_tests() {
    let parent = tempfile::tempdir().unwrap();
    let dir = scaffold(
        parent.path(),
        "policy-cli-kubewarden-native",
        &["--sdk", "kubewarden"],
        "kubewarden-pod-names",
    );
    let tested = cargo(&dir, &["test"]);
    assert!(
        text(&tested.stdout).contains("test result: ok. 4 passed"),
        "{}",
        text(&tested.stdout)
    );
}
