//! Logging through the host (`kubewarden/tracing/log`): lines appear in the webhook's log,
//! tagged with the policy's name. Natively they go to stderr.

use serde::Serialize;

#[derive(Serialize)]
struct Event<'a> {
    level: &'a str,
    message: &'a str,
}

fn emit(level: &str, message: &str) {
    let Ok(payload) = serde_json::to_vec(&Event { level, message }) else {
        return;
    };
    #[cfg(target_arch = "wasm32")]
    {
        // A host that refuses the call loses one log line: nothing to do about it here.
        let _ = crate::guest::host_call("kubewarden", "tracing", "log", &payload);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        eprintln!("{}", String::from_utf8_lossy(&payload));
    }
}

/// Logs `message` at level `debug`.
pub fn debug(message: &str) {
    emit("debug", message);
}

/// Logs `message` at level `info`.
pub fn info(message: &str) {
    emit("info", message);
}

/// Logs `message` at level `warning`.
pub fn warn(message: &str) {
    emit("warning", message);
}

/// Logs `message` at level `error`.
pub fn error(message: &str) {
    emit("error", message);
}
