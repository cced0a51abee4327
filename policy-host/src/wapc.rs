//! The host side of waPC: the `wapc` imports a guest calls while it handles one operation.

use std::sync::Arc;

use wasmtime::{Caller, Extern, Linker, Memory, ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::protocol::GuestLogEvent;

/// The payload handed to the guest by `__guest_request`.
///
/// `validate` payloads are written in parts: the request was serialised once for every policy,
/// the settings once when the policy loaded.
#[derive(Debug, Clone)]
pub enum GuestPayload {
    Raw(Arc<[u8]>),
    Validate {
        request: Arc<[u8]>,
        settings: Arc<[u8]>,
    },
}

const REQUEST_PREFIX: &[u8] = br#"{"request":"#;
const SETTINGS_PREFIX: &[u8] = br#","settings":"#;
const SUFFIX: &[u8] = b"}";

impl GuestPayload {
    pub fn len(&self) -> usize {
        match self {
            Self::Raw(bytes) => bytes.len(),
            Self::Validate { request, settings } => {
                REQUEST_PREFIX.len()
                    + request.len()
                    + SETTINGS_PREFIX.len()
                    + settings.len()
                    + SUFFIX.len()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn parts(&self) -> Vec<&[u8]> {
        match self {
            Self::Raw(bytes) => vec![bytes],
            Self::Validate { request, settings } => {
                vec![REQUEST_PREFIX, request, SETTINGS_PREFIX, settings, SUFFIX]
            }
        }
    }

    /// The whole payload in one buffer (for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// Caps a store's linear memory and remembers whether the cap was hit, so a guest that aborts
/// after a failed allocation is reported as out of memory rather than as a bare trap.
pub(crate) struct MemoryCap {
    limits: StoreLimits,
    pub(crate) exceeded: bool,
}

impl MemoryCap {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(1)
                .memories(1)
                .tables(4)
                .build(),
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.exceeded |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }
    fn tables(&self) -> usize {
        self.limits.tables()
    }
    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Everything one evaluation's store holds.
pub(crate) struct GuestState {
    pub(crate) policy: Arc<str>,
    pub(crate) operation: &'static str,
    pub(crate) payload: GuestPayload,
    pub(crate) response: Option<Vec<u8>>,
    pub(crate) guest_error: Option<String>,
    host_response: Vec<u8>,
    host_error: Vec<u8>,
    pub(crate) memory_cap: MemoryCap,
    /// Created on first use: only `wasm32-wasip1` guests call WASI.
    wasi: Option<WasiP1Ctx>,
}

impl GuestState {
    pub(crate) fn new(
        policy: Arc<str>,
        operation: &'static str,
        payload: GuestPayload,
        memory_bytes: usize,
    ) -> Self {
        Self {
            policy,
            operation,
            payload,
            response: None,
            guest_error: None,
            host_response: Vec::new(),
            host_error: Vec::new(),
            memory_cap: MemoryCap::new(memory_bytes),
            wasi: None,
        }
    }

    /// A WASI context with no preopened directories, no environment, no arguments, no network
    /// and closed stdio: a guest sees a clock and random numbers, nothing of the host.
    fn wasi(&mut self) -> &mut WasiP1Ctx {
        self.wasi
            .get_or_insert_with(|| wasmtime_wasi::WasiCtxBuilder::new().build_p1())
    }
}

fn guest_memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => wasmtime::bail!("the guest exports no memory"),
    }
}

fn read_guest(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let memory = guest_memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = memory.data(&caller);
    let end = ptr
        .checked_add(len)
        .filter(|end| *end <= data.len())
        .ok_or_else(|| wasmtime::format_err!("guest passed an out-of-bounds buffer"))?;
    Ok(data[ptr..end].to_vec())
}

fn write_guest(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    parts: &[&[u8]],
) -> wasmtime::Result<()> {
    let memory = guest_memory(caller)?;
    let mut offset = ptr as u32 as usize;
    for part in parts {
        memory
            .write(&mut *caller, offset, part)
            .map_err(|_| wasmtime::format_err!("guest passed an out-of-bounds buffer"))?;
        offset += part.len();
    }
    Ok(())
}

fn as_i32_len(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Registers the `wapc` imports and, for WASI guests, `wasi_snapshot_preview1`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "wapc",
        "__guest_request",
        |mut caller: Caller<'_, GuestState>, op_ptr: i32, ptr: i32| -> wasmtime::Result<()> {
            let operation = caller.data().operation.as_bytes();
            write_guest(&mut caller, op_ptr, &[operation])?;
            let payload = caller.data().payload.clone();
            write_guest(&mut caller, ptr, &payload.parts())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_response",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_guest(&mut caller, ptr, len)?;
            caller.data_mut().response = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_error",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_guest(&mut caller, ptr, len)?;
            caller.data_mut().guest_error = Some(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_call",
        |mut caller: Caller<'_, GuestState>,
         bd_ptr: i32,
         bd_len: i32,
         ns_ptr: i32,
         ns_len: i32,
         op_ptr: i32,
         op_len: i32,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<i32> {
            let binding = read_guest(&mut caller, bd_ptr, bd_len)?;
            let namespace = read_guest(&mut caller, ns_ptr, ns_len)?;
            let operation = read_guest(&mut caller, op_ptr, op_len)?;
            let payload = read_guest(&mut caller, ptr, len)?;
            let state = caller.data_mut();
            state.host_response.clear();
            state.host_error.clear();
            match host_call(&state.policy, &binding, &namespace, &operation, &payload) {
                Ok(response) => {
                    state.host_response = response;
                    Ok(1)
                }
                Err(message) => {
                    state.host_error = message.into_bytes();
                    Ok(0)
                }
            }
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response",
        |mut caller: Caller<'_, GuestState>, ptr: i32| -> wasmtime::Result<()> {
            let response = std::mem::take(&mut caller.data_mut().host_response);
            write_guest(&mut caller, ptr, &[&response])?;
            caller.data_mut().host_response = response;
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response_len",
        |caller: Caller<'_, GuestState>| -> i32 { as_i32_len(caller.data().host_response.len()) },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error",
        |mut caller: Caller<'_, GuestState>, ptr: i32| -> wasmtime::Result<()> {
            let error = std::mem::take(&mut caller.data_mut().host_error);
            write_guest(&mut caller, ptr, &[&error])?;
            caller.data_mut().host_error = error;
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error_len",
        |caller: Caller<'_, GuestState>| -> i32 { as_i32_len(caller.data().host_error.len()) },
    )?;
    linker.func_wrap(
        "wapc",
        "__console_log",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_guest(&mut caller, ptr, len)?;
            let policy = caller.data().policy.clone();
            tracing::info!(policy = %policy, "{}", String::from_utf8_lossy(&bytes));
            Ok(())
        },
    )?;
    wasmtime_wasi::p1::add_to_linker_sync(linker, GuestState::wasi)?;
    Ok(())
}

/// Answers a guest's `__host_call`. Only logging is offered: a policy decides from the request
/// alone, so verdicts stay fast and reproducible.
fn host_call(
    policy: &str,
    binding: &[u8],
    namespace: &[u8],
    operation: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    match (binding, namespace, operation) {
        (b"kubewarden", b"tracing", b"log") => {
            log_guest_event(policy, payload);
            Ok(Vec::new())
        }
        _ => Err(format!(
            "host capability {}/{}/{} is not offered by supsvc-webhook",
            String::from_utf8_lossy(binding),
            String::from_utf8_lossy(namespace),
            String::from_utf8_lossy(operation)
        )),
    }
}

fn log_guest_event(policy: &str, payload: &[u8]) {
    let Ok(event) = serde_json::from_slice::<GuestLogEvent>(payload) else {
        tracing::info!(policy, "{}", String::from_utf8_lossy(payload));
        return;
    };
    let fields = serde_json::Value::Object(event.fields);
    let message = event.message;
    match event.level.as_str() {
        "trace" => tracing::trace!(policy, %fields, "{message}"),
        "debug" => tracing::debug!(policy, %fields, "{message}"),
        "warning" | "warn" => tracing::warn!(policy, %fields, "{message}"),
        "error" => tracing::error!(policy, %fields, "{message}"),
        _ => tracing::info!(policy, %fields, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_payload_is_request_and_settings() {
        let payload = GuestPayload::Validate {
            request: Arc::from(&br#"{"uid":"1"}"#[..]),
            settings: Arc::from(&b"{}"[..]),
        };
        let bytes = payload.to_vec();
        assert_eq!(bytes.len(), payload.len());
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["request"]["uid"], "1");
        assert_eq!(value["settings"], serde_json::json!({}));
    }

    #[test]
    fn host_call_offers_logging_only() {
        let log = br#"{"level":"info","message":"hi"}"#;
        assert_eq!(
            host_call("p", b"kubewarden", b"tracing", b"log", log),
            Ok(vec![])
        );
        let err =
            host_call("p", b"kubewarden", b"kubernetes", b"list_resources", b"{}").unwrap_err();
        assert!(
            err.contains("kubewarden/kubernetes/list_resources"),
            "{err}"
        );
    }
}
