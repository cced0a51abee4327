//! Loading a policy and a request exactly as supsvc-webhook does, for `policy run` and `policy bench`:
//! the same host ([`PolicyHost`]), the same `validate_settings` at load, the same request bytes.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use supsvc_policy_host::admission::{parse_review, request_from_review_or_request};
use supsvc_policy_host::memory::parse_memory_quantity;
use supsvc_policy_host::{
    EngineOptions, HostOptions, LoadError, Policy, PolicyError, PolicyHost, PolicySpec,
};

use super::Evaluation;
use crate::error::{Exit, Failure, Result};

/// A policy loaded and a request read, ready to evaluate.
#[derive(Debug)]
pub struct Loaded {
    pub policy: Policy,
    /// The AdmissionRequest, as the webhook hands it to every policy.
    pub request: Arc<[u8]>,
    pub about: RequestSummary,
    /// Compiling the module and running `validate_settings`.
    pub load_time: Duration,
    /// What was loaded, and on which engine: to load it again on another one.
    spec: PolicySpec,
    engine: EngineOptions,
}

impl Loaded {
    /// The WebAssembly instructions one evaluation of the request executes: the policy loaded
    /// again on an engine that counts them (wasmtime's fuel), which runs a little slower.
    pub fn instructions(&self, eval: &Evaluation) -> Result<u64> {
        let host = start_host(EngineOptions {
            count_instructions: true,
            ..self.engine.clone()
        })?;
        let policy = host
            .load(self.spec.clone())
            .map_err(|e| load_failure(&e, &eval.module))?;
        match policy.instructions(&self.request) {
            Ok(Some(count)) => Ok(count),
            Ok(None) => Err(Failure::new(
                "the policy host did not count instructions",
                "report this as a bug of kubectl-supsvc",
            )),
            Err(e) => Err(evaluation_failure(&e, eval)),
        }
    }
}

/// What the request is about, for people.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestSummary {
    pub uid: String,
    pub operation: String,
    /// `pods`, `deployments.apps`, `pods/status`.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub user: String,
}

impl RequestSummary {
    fn of(request: &[u8]) -> Self {
        let value: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let group = text(&value["resource"]["group"]);
        let mut resource = text(&value["resource"]["resource"]);
        if !group.is_empty() {
            resource = format!("{resource}.{group}");
        }
        if let Some(sub) = value["subResource"].as_str().filter(|s| !s.is_empty()) {
            resource = format!("{resource}/{sub}");
        }
        let name = match text(&value["name"]) {
            name if name.is_empty() => text(&value["object"]["metadata"]["name"]),
            name => name,
        };
        Self {
            uid: text(&value["uid"]),
            operation: text(&value["operation"]),
            resource,
            namespace: text(&value["namespace"]),
            name,
            user: text(&value["userInfo"]["username"]),
        }
    }

    /// `CREATE pods svc-harbor-domain-c8/harbor-core by kubernetes-admin`.
    pub fn describe(&self) -> String {
        let object = match (self.namespace.as_str(), self.name.as_str()) {
            ("", name) => name.to_owned(),
            (ns, name) => format!("{ns}/{name}"),
        };
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!("by {}", self.user)
        };
        [self.operation.as_str(), &self.resource, &object, &user]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Reads the request, the settings and the module, and loads the policy in a host sized for one
/// evaluation at a time (the webhook's engine configuration otherwise).
pub fn load(eval: &Evaluation) -> Result<Loaded> {
    let stdin = Path::new("-");
    if eval.request == stdin && eval.settings.as_deref() == Some("-") {
        return Err(Failure::usage(
            "--request and --settings cannot both be read from stdin",
            "give one of them as a file",
        ));
    }
    let memory_limit = parse_memory_quantity(&eval.memory_limit).map_err(|e| {
        Failure::usage(
            format!("--memory-limit: {e}"),
            "give a quantity such as 16Mi, 512Ki or 1Gi",
        )
    })?;
    let request = read_request(&eval.request)?;
    let settings = read_settings(eval.settings.as_deref())?;
    let wasm = std::fs::read(&eval.module).map_err(|e| {
        Failure::usage(
            format!("cannot read the module {}: {e}", eval.module.display()),
            "give the path of a policy's .wasm, e.g. target/wasm32-unknown-unknown/wasm-release/my_policy.wasm",
        )
    })?;
    let wasm = module_binary(wasm, &eval.module)?;
    let name = eval
        .name
        .clone()
        .unwrap_or_else(|| module_name(&eval.module));

    let engine = EngineOptions {
        max_concurrent_instances: 2,
        max_memory_bytes: EngineOptions::default().max_memory_bytes.max(memory_limit),
        ..EngineOptions::default()
    };
    let host = start_host(engine.clone())?;
    let started = Instant::now();
    let spec = PolicySpec {
        name,
        wasm,
        sha256: None,
        settings,
        timeout: eval.timeout,
        memory_limit,
    };
    let policy = host
        .load(spec.clone())
        .map_err(|e| load_failure(&e, &eval.module))?;
    let load_time = started.elapsed();
    Ok(Loaded {
        policy,
        about: RequestSummary::of(&request),
        request,
        load_time,
        spec,
        engine,
    })
}

/// A policy host for one evaluation at a time, with the webhook's engine otherwise.
fn start_host(engine: EngineOptions) -> Result<PolicyHost> {
    PolicyHost::new(HostOptions {
        engine,
        cache_dir: None,
    })
    .map_err(|e| {
        Failure::new(
            format!("cannot start the policy host: {e:#}"),
            "the host reserves virtual memory for its instances: check `ulimit -v`",
        )
    })
}

/// The module's binary: a `.wasm` as it is, or WebAssembly text (`.wat`, as in
/// policies/examples/wat) compiled with the `wat` crate.
fn module_binary(bytes: Vec<u8>, module: &Path) -> Result<Vec<u8>> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 << 10)]);
    if !text.contains("(module") {
        return Err(Failure::new(
            format!(
                "{} is not a WebAssembly module (neither binary, starting with \"\\0asm\", nor text)",
                module.display()
            ),
            "give the policy's .wasm, e.g. target/wasm32-unknown-unknown/wasm-release/my_policy.wasm after \
             `cargo build --target wasm32-unknown-unknown --profile wasm-release`",
        ));
    }
    wat::parse_bytes(&bytes)
        .map(|binary| binary.into_owned())
        .map_err(|e| {
            let mut e = e;
            e.set_path(module);
            Failure::new(
                format!("{} is not valid WebAssembly text: {e}", module.display()),
                "correct the module (wat2wasm or wasm-tools parse show the same error)",
            )
        })
}

/// The module's file name without `.wasm`: what the policy is called in messages by default.
fn module_name(module: &Path) -> String {
    module
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "policy".into())
}

fn read_input(path: &Path, what: &str, hint: &str) -> Result<Vec<u8>> {
    let read = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    read.map_err(|e| Failure::usage(format!("cannot read {what} {}: {e}", path.display()), hint))
}

const REQUEST_HINT: &str = "give a JSON file holding an AdmissionReview (apiVersion admission.k8s.io/v1, kind \
    AdmissionReview, with a request) or a bare AdmissionRequest, or - for stdin; a crate made by \
    `kubectl supsvc policy new` has one in test_data/";

/// The AdmissionRequest bytes of `--request`, from a review or a bare request. A request the
/// webhook itself would refuse (answering 400 before any policy runs) is evaluated, with a warning.
fn read_request(path: &Path) -> Result<Arc<[u8]>> {
    let bytes = read_input(path, "the request", REQUEST_HINT)?;
    let request = request_from_review_or_request(&bytes)
        .map_err(|e| Failure::usage(format!("--request {}: {e}", path.display()), REQUEST_HINT))?;
    let is_review = serde_json::from_slice::<serde_json::Value>(&bytes)
        .is_ok_and(|v| v["kind"] == supsvc_policy_host::admission::KIND);
    let review = if is_review {
        bytes
    } else {
        let mut review =
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"#.to_vec();
        review.extend_from_slice(&request);
        review.push(b'}');
        review
    };
    if let Err(e) = parse_review(&review) {
        errln!(
            "warning: supsvc-webhook would refuse this request with 400 before any policy sees it: {e}"
        );
    }
    Ok(request)
}

const SETTINGS_HINT: &str = "give the settings inline as JSON (quoted for the shell: --settings \
    '{\"key\": [\"value\"]}'), or a JSON or YAML file, or - for stdin";

/// `--settings`: inline JSON, or a JSON/YAML file; none or `null` is `{}` as in the webhook's config.
fn read_settings(arg: Option<&str>) -> Result<serde_json::Value> {
    let Some(arg) = arg else {
        return Ok(serde_json::json!({}));
    };
    let inline = arg.trim_start();
    let value: serde_json::Value = if inline.starts_with('{') || inline.starts_with('[') {
        serde_json::from_str(inline).map_err(|e| {
            Failure::usage(format!("--settings is not valid JSON: {e}"), SETTINGS_HINT)
        })?
    } else {
        let path = Path::new(arg);
        let bytes = read_input(path, "the settings", SETTINGS_HINT)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Failure::usage(format!("--settings {arg}: not UTF-8 text"), SETTINGS_HINT)
        })?;
        if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_saphyr::from_str(&text).map_err(|e| {
                Failure::usage(
                    format!("--settings {arg} is neither JSON nor YAML: {e}"),
                    SETTINGS_HINT,
                )
            })?
        }
    };
    Ok(if value.is_null() {
        serde_json::json!({})
    } else {
        value
    })
}

fn load_failure(error: &LoadError, module: &Path) -> Failure {
    let hint = match error {
        LoadError::SettingsRejected { .. } => {
            "the policy's validate_settings refused --settings: correct them (the policy's README lists its \
             settings); supsvc-webhook would refuse to load it with these settings too"
                .to_owned()
        }
        LoadError::MemoryLimitTooLarge { .. } => "lower --memory-limit".to_owned(),
        LoadError::InvalidModule { .. } | LoadError::DigestMismatch { .. } => format!(
            "{} must be a waPC policy: a core WebAssembly module exporting memory and __guest_call, built \
             e.g. with `cargo build --target wasm32-unknown-unknown --profile wasm-release`; \
             policies/README.md describes the ABI",
            module.display()
        ),
    };
    // wasmtime's messages may span lines (e.g. dumps of bytes): one line, as the webhook logs it.
    let what = error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Failure::new(what, hint)
}

/// An evaluation that produced no verdict, explained; a timeout exits 3 as the plugin's other timeouts.
pub fn evaluation_failure(error: &PolicyError, eval: &Evaluation) -> Failure {
    let (hint, exit) = match error {
        PolicyError::Timeout { .. } => (
            format!(
                "the policy ran longer than --timeout {} ms; supsvc-webhook would fail it the same way \
                 (failurePolicy decides whether the request passes); raise --timeout to see its verdict",
                eval.timeout.as_millis()
            ),
            Exit::Timeout,
        ),
        PolicyError::MemoryLimit { .. } => (
            "the policy needs more linear memory than --memory-limit; raise it, or make the policy use less"
                .to_owned(),
            Exit::Failure,
        ),
        _ => (
            "supsvc-webhook would fail the policy the same way (failurePolicy decides whether the request \
             passes); its own tests (`cargo test` in the policy's crate) may tell more"
                .to_owned(),
            Exit::Failure,
        ),
    };
    Failure::new(error.to_string(), hint).with_exit(exit)
}

/// Prints the log lines policies send through the host (`kubewarden/tracing/log`, `__console_log`)
/// to stderr, as `kwctl run` does: `INFO policy NAME: message {fields}`.
pub fn show_policy_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(logs::PolicyLogs);
    // Only fails if a subscriber is already set, and then that one shows them.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

mod logs {
    use std::fmt::Write;

    use tracing::field::{Field, Visit};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};
    use tracing_subscriber::layer::{Context, Layer};

    /// The host's events about a policy: they carry a `policy` field.
    fn is_policy_event(metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("supsvc_policy_host")
            && metadata.fields().field("policy").is_some()
    }

    pub struct PolicyLogs;

    impl<S: Subscriber> Layer<S> for PolicyLogs {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            if is_policy_event(metadata) {
                Interest::always()
            } else {
                Interest::never()
            }
        }

        fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
            is_policy_event(metadata)
        }

        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut line = Line::default();
            event.record(&mut line);
            let fields = match line.fields.as_str() {
                "" | "{}" => String::new(),
                fields => format!(" {fields}"),
            };
            errln!(
                "{} policy {}: {}{fields}",
                event.metadata().level(),
                line.policy,
                line.message
            );
        }
    }

    #[derive(Default)]
    struct Line {
        policy: String,
        message: String,
        fields: String,
    }

    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let target = match field.name() {
                "policy" => &mut self.policy,
                "message" => &mut self.message,
                _ => &mut self.fields,
            };
            let _ = write!(target, "{value:?}");
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "policy" => self.policy = value.to_owned(),
                "message" => self.message = value.to_owned(),
                _ => self.fields += value,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_inline_file_yaml_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("s.yaml");
        std::fs::write(&yaml, "deniedNames:\n  - nginx\nlimit: 3\n").unwrap();
        let json = dir.path().join("s.json");
        std::fs::write(&json, r#"{"deniedNames": ["nginx"], "limit": 3}"#).unwrap();
        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "\n").unwrap();
        let want = serde_json::json!({"deniedNames": ["nginx"], "limit": 3});
        assert_eq!(read_settings(None).unwrap(), serde_json::json!({}));
        assert_eq!(
            read_settings(Some(r#" {"deniedNames":["nginx"],"limit":3}"#)).unwrap(),
            want
        );
        assert_eq!(read_settings(yaml.to_str()).unwrap(), want);
        assert_eq!(read_settings(json.to_str()).unwrap(), want);
        assert_eq!(
            read_settings(empty.to_str()).unwrap(),
            serde_json::json!({})
        );

        let bad_json = read_settings(Some("{deniedNames: [nginx]")).unwrap_err();
        assert_eq!(bad_json.exit, Exit::Usage);
        assert!(
            bad_json.what.contains("not valid JSON"),
            "{}",
            bad_json.what
        );
        let missing = read_settings(Some("/nonexistent/settings.yaml")).unwrap_err();
        assert_eq!(missing.exit, Exit::Usage);
        assert!(
            missing
                .to_string()
                .contains("hint: give the settings inline")
        );
    }

    #[test]
    fn request_summary_names_what_is_asked() {
        let request = serde_json::json!({
            "uid": "u", "operation": "UPDATE", "namespace": "ns", "name": "web",
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "subResource": "scale", "userInfo": {"username": "alice"}
        });
        let summary = RequestSummary::of(request.to_string().as_bytes());
        assert_eq!(
            summary.describe(),
            "UPDATE deployments.apps/scale ns/web by alice"
        );
        let created = serde_json::json!({
            "operation": "CREATE", "resource": {"group": "", "resource": "namespaces"},
            "object": {"metadata": {"name": "team-a"}}
        });
        assert_eq!(
            RequestSummary::of(created.to_string().as_bytes()).describe(),
            "CREATE namespaces team-a"
        );
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_name(Path::new("target/x/registry_guard.wasm")),
            "registry_guard"
        );
        assert_eq!(module_name(Path::new("/")), "policy");
    }
}
