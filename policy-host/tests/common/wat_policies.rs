//! Tiny waPC policies in WAT: well-behaved ones and hostile ones, for host and server tests.

/// What a test policy does on `validate`.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
pub enum Behaviour {
    Accept,
    Reject,
    AcceptWithWarning,
    InfiniteLoop,
    UnboundedAllocation,
    Trap,
    InvalidOutput,
    GuestError,
    /// Accepts, but `validate_settings` says the settings are invalid.
    RefuseSettings,
}

const ACCEPT: &str = r#"{"accepted":true}"#;
const REJECT: &str = r#"{"accepted":false,"message":"rejected by the wat policy","code":403}"#;
const WARN: &str =
    r#"{"accepted":true,"warnings":["careful"],"audit_annotations":{"wat/seen":"yes"}}"#;
const SETTINGS_OK: &str = r#"{"valid":true}"#;
const SETTINGS_BAD: &str = r#"{"valid":false,"message":"setting 'x' is required"}"#;
const GARBAGE: &str = "this is not json";

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn respond(at: u32, text: &str) -> String {
    format!(
        "(call $guest_response (i32.const {at}) (i32.const {})) (return (i32.const 1))",
        text.len()
    )
}

/// The WAT source of a waPC policy with the given behaviour.
pub fn wat(behaviour: Behaviour) -> String {
    let (validate_text, settings_text) = match behaviour {
        Behaviour::Reject => (REJECT, SETTINGS_OK),
        Behaviour::AcceptWithWarning => (WARN, SETTINGS_OK),
        Behaviour::InvalidOutput => (GARBAGE, SETTINGS_OK),
        Behaviour::RefuseSettings => (ACCEPT, SETTINGS_BAD),
        _ => (ACCEPT, SETTINGS_OK),
    };
    let validate = match behaviour {
        Behaviour::InfiniteLoop => "(loop $forever (br $forever)) (i32.const 1)".to_string(),
        Behaviour::UnboundedAllocation => {
            "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable"
                .to_string()
        }
        Behaviour::Trap => "unreachable".to_string(),
        Behaviour::GuestError => {
            "(call $guest_error (i32.const 512) (i32.const 12)) (return (i32.const 0))".to_string()
        }
        _ => respond(256, validate_text),
    };
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{settings}")
  (data (i32.const 256) "{validate}")
  (data (i32.const 512) "guest failed")
  (func (export "wapc_init"))
  (func (export "__guest_call") (param $op_len i32) (param $req_len i32) (result i32)
    (local $pages i32)
    ;; room for the operation at 1024 and the payload at 2048
    (local.set $pages (i32.add (i32.shr_u (i32.add (local.get $req_len) (i32.const 2048)) (i32.const 16)) (i32.const 1)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    (call $guest_request (i32.const 1024) (i32.const 2048))
    ;; "validate_settings" is 17 bytes, "validate" 8
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then {settings_respond}))
    {validate_body})
)"#,
        settings = escape(settings_text),
        validate = escape(validate_text),
        settings_respond = respond(0, settings_text),
        validate_body = validate,
    )
}

/// The binary module of a waPC policy with the given behaviour.
pub fn wasm(behaviour: Behaviour) -> Vec<u8> {
    wat::parse_str(wat(behaviour)).expect("test WAT is valid")
}
