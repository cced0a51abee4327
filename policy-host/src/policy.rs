//! One loaded policy: a compiled module kept as `InstancePre`, evaluated in a fresh store each time.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Extern, ExternType, FuncType, InstancePre, Module, ModuleExport, Store, Trap};

use super::HostInner;
use super::engine::deadline_ticks;
use super::protocol::{SettingsValidationResponse, ValidationResponse, operation};
use super::wapc::{GuestPayload, GuestState};

/// What to load: the module's bytes and how to run it.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    pub name: String,
    pub wasm: Vec<u8>,
    /// When set, the module's sha256 (hex) must equal it or the policy is refused.
    pub sha256: Option<String>,
    pub settings: serde_json::Value,
    pub timeout: Duration,
    pub memory_limit: usize,
}

impl PolicySpec {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
    pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

    /// A spec with empty settings and the default limits.
    pub fn new(name: impl Into<String>, wasm: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            wasm,
            sha256: None,
            settings: serde_json::json!({}),
            timeout: Self::DEFAULT_TIMEOUT,
            memory_limit: Self::DEFAULT_MEMORY_LIMIT,
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("policy {policy}: module sha256 is {actual}, but the configuration pins {expected}")]
    DigestMismatch {
        policy: String,
        expected: String,
        actual: String,
    },
    #[error("policy {policy}: {message}")]
    InvalidModule { policy: String, message: String },
    #[error("policy {policy}: settings rejected: {message}")]
    SettingsRejected { policy: String, message: String },
    #[error(
        "policy {policy}: memory limit {requested} bytes is above the host's maximum of {maximum}"
    )]
    MemoryLimitTooLarge {
        policy: String,
        requested: usize,
        maximum: usize,
    },
}

/// Why an evaluation produced no verdict. The message names the policy and the failure mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {policy} timed out after {} ms", timeout.as_millis())]
    Timeout { policy: String, timeout: Duration },
    #[error("policy {policy} exceeded its memory limit of {}", human_bytes(*limit))]
    MemoryLimit { policy: String, limit: usize },
    #[error("policy {policy} trapped: {message}")]
    Trap { policy: String, message: String },
    #[error("policy {policy} returned invalid output: {message}")]
    InvalidOutput { policy: String, message: String },
    #[error("policy {policy} failed: {message}")]
    GuestError { policy: String, message: String },
    #[error("policy {policy} could not be instantiated: {message}")]
    Instantiation { policy: String, message: String },
}

impl PolicyError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Trap { .. } => "trap",
            Self::InvalidOutput { .. } => "invalid_output",
            Self::GuestError { .. } => "guest_error",
            Self::Instantiation { .. } => "instantiation",
        }
    }
}

/// `16 MiB`, `1.5 KiB`, `17 bytes`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// A policy ready to evaluate requests. Cheap to share: evaluations never mutate it.
pub struct Policy {
    name: Arc<str>,
    sha256: String,
    settings: Arc<[u8]>,
    timeout: Duration,
    memory_limit: usize,
    pre: InstancePre<GuestState>,
    exports: Exports,
    host: Arc<HostInner>,
}

/// The exports an evaluation calls, found once when the module loads: each call then takes them
/// by index instead of looking names up (and building an error for each absent initialiser).
#[derive(Clone)]
struct Exports {
    /// The initialisers the module exports, `() -> ()`, in the order they run: `_initialize`
    /// (a WASI reactor), `_start` (a WASI command, e.g. TinyGo), `wapc_init` (waPC).
    init: Vec<ModuleExport>,
    /// waPC's entry point, `__guest_call(operation_len: i32, payload_len: i32) -> i32`.
    guest_call: ModuleExport,
}

impl Exports {
    /// # Errors
    /// The module exports no `__guest_call`, or one of these exports with another type.
    fn of(module: &Module) -> Result<Self, String> {
        let func_type = |name: &str| match module.get_export(name) {
            Some(ExternType::Func(ty)) => Some(ty),
            _ => None,
        };
        let shape = |ty: &FuncType| {
            (
                ty.params().map(|p| p.to_string()).collect::<Vec<_>>(),
                ty.results().map(|r| r.to_string()).collect::<Vec<_>>(),
            )
        };
        let mut init = Vec::new();
        for name in ["_initialize", "_start", "wapc_init"] {
            if let Some(ty) = func_type(name) {
                if ty.params().len() + ty.results().len() != 0 {
                    return Err(format!(
                        "`{name}` must take and return nothing, but its type is {:?}",
                        shape(&ty)
                    ));
                }
                init.extend(module.get_export_index(name));
            }
        }
        let Some(ty) = func_type("__guest_call") else {
            return Err("not a waPC policy: the module exports no `__guest_call`".into());
        };
        let (params, results) = shape(&ty);
        if params != ["i32", "i32"] || results != ["i32"] {
            return Err(format!(
                "not a waPC policy: `__guest_call` must be (i32, i32) -> i32, but is \
                 ({}) -> ({})",
                params.join(", "),
                results.join(", ")
            ));
        }
        let guest_call = module
            .get_export_index("__guest_call")
            .ok_or("not a waPC policy: the module exports no `__guest_call`")?;
        Ok(Self { init, guest_call })
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("timeout", &self.timeout)
            .field("memory_limit", &self.memory_limit)
            .finish_non_exhaustive()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Policy {
    pub(crate) fn load(host: Arc<HostInner>, spec: PolicySpec) -> Result<Self, LoadError> {
        let policy = spec.name.clone();
        let invalid = |message: String| LoadError::InvalidModule {
            policy: policy.clone(),
            message,
        };
        let sha256 = sha256_hex(&spec.wasm);
        if let Some(expected) = &spec.sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(LoadError::DigestMismatch {
                policy,
                expected: expected.clone(),
                actual: sha256,
            });
        }
        if spec.memory_limit > host.options.max_memory_bytes {
            return Err(LoadError::MemoryLimitTooLarge {
                policy,
                requested: spec.memory_limit,
                maximum: host.options.max_memory_bytes,
            });
        }
        let module = host
            .cache
            .load_or_compile(&host.engine, &spec.wasm, &sha256)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let exports = Exports::of(&module).map_err(invalid)?;
        let pre = host
            .linker
            .instantiate_pre(&module)
            .map_err(|e| invalid(format!("cannot link the module: {e:#}")))?;
        let settings =
            serde_json::to_vec(&spec.settings).map_err(|e| invalid(format!("settings: {e}")))?;
        let loaded = Self {
            name: Arc::from(spec.name.as_str()),
            sha256,
            settings: Arc::from(settings),
            timeout: spec.timeout,
            memory_limit: spec.memory_limit,
            pre,
            exports,
            host,
        };
        loaded.check_settings()?;
        Ok(loaded)
    }

    fn check_settings(&self) -> Result<(), LoadError> {
        let rejected = |message: String| LoadError::SettingsRejected {
            policy: self.name.to_string(),
            message,
        };
        let output = self
            .call(
                operation::VALIDATE_SETTINGS,
                GuestPayload::Raw(self.settings.clone()),
            )
            .map_err(|e| rejected(e.to_string()))?;
        let answer: SettingsValidationResponse = serde_json::from_slice(&output)
            .map_err(|e| rejected(format!("validate_settings returned invalid output: {e}")))?;
        if answer.valid {
            Ok(())
        } else {
            Err(rejected(
                answer.message.unwrap_or_else(|| "no reason given".into()),
            ))
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The module's sha256 (hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Evaluates `validate` on an AdmissionRequest already serialised as JSON (the `request`
    /// field of an AdmissionReview), with this policy's settings.
    pub fn validate(&self, request: &Arc<[u8]>) -> Result<ValidationResponse, PolicyError> {
        let payload = GuestPayload::Validate {
            request: Arc::clone(request),
            settings: Arc::clone(&self.settings),
        };
        let output = self.call(operation::VALIDATE, payload)?;
        serde_json::from_slice(&output).map_err(|e| PolicyError::InvalidOutput {
            policy: self.name.to_string(),
            message: format!("{e} (in {})", preview(&output)),
        })
    }

    /// The WebAssembly instructions one `validate` of `request` executes (instantiation and
    /// initialisation included), or `None` if the host was not built with
    /// [`EngineOptions::count_instructions`](super::EngineOptions::count_instructions).
    pub fn instructions(&self, request: &Arc<[u8]>) -> Result<Option<u64>, PolicyError> {
        let payload = GuestPayload::Validate {
            request: Arc::clone(request),
            settings: Arc::clone(&self.settings),
        };
        let mut used = None;
        self.call_metered(operation::VALIDATE, payload, &mut used)?;
        Ok(used)
    }

    /// Runs one waPC operation in a fresh store and returns the guest's response bytes.
    pub fn call(
        &self,
        operation: &'static str,
        payload: GuestPayload,
    ) -> Result<Vec<u8>, PolicyError> {
        self.call_metered(operation, payload, &mut None)
    }

    /// [`Policy::call`], setting `used` to the fuel spent where the engine counts it.
    fn call_metered(
        &self,
        operation: &'static str,
        payload: GuestPayload,
        used: &mut Option<u64>,
    ) -> Result<Vec<u8>, PolicyError> {
        let payload_len = i32::try_from(payload.len()).map_err(|_| PolicyError::Instantiation {
            policy: self.name.to_string(),
            message: "payload larger than 2 GiB".into(),
        })?;
        let state = GuestState::new(self.name.clone(), operation, payload, self.memory_limit);
        let mut store = Store::new(&self.host.engine, state);
        store.limiter(|state| &mut state.memory_cap);
        // The epoch ticker runs while any evaluation is in flight (it parks when idle): wake it
        // before the deadline counts on it.
        let _evaluating = self.host.ticker.enter();
        store.set_epoch_deadline(deadline_ticks(self.timeout));
        let metered = self.host.options.count_instructions;
        if metered {
            store
                .set_fuel(u64::MAX)
                .map_err(|e| self.classify(&store, e, Stage::Instantiate))?;
        }

        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.classify(&store, e, Stage::Instantiate))?;
        let func = |store: &mut Store<GuestState>, export: &ModuleExport| {
            instance
                .get_module_export(&mut *store, export)
                .and_then(Extern::into_func)
                .ok_or_else(|| wasmtime::format_err!("the module's export is not a function"))
        };
        for init in &self.exports.init {
            let init = func(&mut store, init)
                .and_then(|f| f.typed::<(), ()>(&store))
                .map_err(|e| self.classify(&store, e, Stage::Instantiate))?;
            if let Err(e) = init.call(&mut store, ())
                && !exited_successfully(&e)
            {
                return Err(self.classify(&store, e, Stage::Run));
            }
        }
        let guest_call = func(&mut store, &self.exports.guest_call)
            .and_then(|f| f.typed::<(i32, i32), i32>(&store))
            .map_err(|e| self.classify(&store, e, Stage::Instantiate))?;
        let status = guest_call
            .call(&mut store, (operation.len() as i32, payload_len))
            .map_err(|e| self.classify(&store, e, Stage::Run))?;
        if metered {
            *used = store.get_fuel().ok().map(|left| u64::MAX - left);
        }
        let state = store.into_data();
        if state.memory_cap.exceeded && status != 1 {
            return Err(PolicyError::MemoryLimit {
                policy: self.name.to_string(),
                limit: self.memory_limit,
            });
        }
        match (status, state.response) {
            (1, Some(response)) => Ok(response),
            (1, None) => Err(PolicyError::InvalidOutput {
                policy: self.name.to_string(),
                message: "the guest reported success but sent no response".into(),
            }),
            _ => Err(PolicyError::GuestError {
                policy: self.name.to_string(),
                message: state.guest_error.unwrap_or_else(|| {
                    format!("`{operation}` returned {status} with no error message")
                }),
            }),
        }
    }

    fn classify(
        &self,
        store: &Store<GuestState>,
        error: wasmtime::Error,
        stage: Stage,
    ) -> PolicyError {
        let policy = self.name.to_string();
        if store.data().memory_cap.exceeded {
            return PolicyError::MemoryLimit {
                policy,
                limit: self.memory_limit,
            };
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            return match trap {
                Trap::Interrupt => PolicyError::Timeout {
                    policy,
                    timeout: self.timeout,
                },
                trap => PolicyError::Trap {
                    policy,
                    message: trap.to_string(),
                },
            };
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return PolicyError::Trap {
                policy,
                message: format!("the guest exited with code {}", exit.0),
            };
        }
        let message = first_line(&format!("{error:#}"));
        match stage {
            Stage::Instantiate => PolicyError::Instantiation { policy, message },
            Stage::Run => PolicyError::Trap { policy, message },
        }
    }
}

#[derive(Clone, Copy)]
enum Stage {
    Instantiate,
    Run,
}

/// TinyGo's `_start` ends with `proc_exit(0)`: success, not a trap.
fn exited_successfully(error: &wasmtime::Error) -> bool {
    error
        .downcast_ref::<wasmtime_wasi::I32Exit>()
        .is_some_and(|exit| exit.0 == 0)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// The start of a guest's output, for error messages.
fn preview(output: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(&output[..output.len().min(MAX)]);
    if output.len() > MAX {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_examples() {
        for (bytes, text) in [
            (17, "17 bytes"),
            (1536, "1.5 KiB"),
            (16 << 20, "16 MiB"),
            (1 << 30, "1 GiB"),
        ] {
            assert_eq!(human_bytes(bytes), text);
        }
    }

    #[test]
    fn error_messages_name_policy_and_failure_mode() {
        let timeout = PolicyError::Timeout {
            policy: "loop".into(),
            timeout: Duration::from_millis(50),
        };
        assert_eq!(timeout.to_string(), "policy loop timed out after 50 ms");
        let memory = PolicyError::MemoryLimit {
            policy: "hog".into(),
            limit: 16 << 20,
        };
        assert_eq!(
            memory.to_string(),
            "policy hog exceeded its memory limit of 16 MiB"
        );
    }
}
