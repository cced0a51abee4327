//! Write admission policies in Rust for supsvc-webhook (or Kubewarden): the waPC guest side.
//!
//! A policy is a type implementing [`Policy`], registered with [`register_policy!`]:
//!
//! ```
//! use supsvc_policy_sdk::{Policy, ValidationRequest, Verdict, accept, reject};
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default, deny_unknown_fields)]
//! struct Settings { forbidden_namespace: String }
//!
//! struct NoForbiddenNamespace;
//!
//! impl Policy for NoForbiddenNamespace {
//!     type Settings = Settings;
//!     fn validate(request: &ValidationRequest<Settings>) -> Verdict {
//!         if request.request.namespace == request.settings.forbidden_namespace {
//!             reject("this namespace is closed", 403)
//!         } else {
//!             accept()
//!         }
//!     }
//!     fn validate_settings(settings: &Settings) -> Result<(), String> {
//!         if settings.forbidden_namespace.is_empty() { Err("forbidden_namespace is required".into()) } else { Ok(()) }
//!     }
//! }
//!
//! supsvc_policy_sdk::register_policy!(NoForbiddenNamespace);
//! ```
//!
//! Built for `wasm32-unknown-unknown` the crate (a `cdylib`) exports `__guest_call` and
//! `wapc_init` and imports the `wapc` host functions; built natively the same code compiles
//! without them, so a policy's logic is unit-tested with plain `cargo test` (see [`dispatch`]).
#![warn(missing_docs, clippy::missing_errors_doc)]

#[cfg(feature = "arena")]
pub mod arena;
mod decode;
mod dispatch;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;
pub mod log;
mod projection;
mod request;
mod verdict;

pub use dispatch::{Policy, dispatch, operation};
pub use projection::Projection;
pub use request::{
    AdmissionRequest, GroupVersionKind, GroupVersionResource, Operation, UserInfo,
    ValidationRequest,
};
pub use verdict::{SettingsVerdict, Verdict, accept, accept_with_warnings, reject};

/// The guest's allocator: see [`arena`].
#[cfg(all(target_arch = "wasm32", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// Exports the waPC entry points for `$policy` (a type implementing [`Policy`]).
///
/// Does nothing on native targets, so the policy crate still builds and tests natively.
#[macro_export]
macro_rules! register_policy {
    ($policy:ty) => {
        /// waPC entry point: the host calls it once per operation.
        #[cfg(target_arch = "wasm32")]
        // SAFETY: `no_mangle` exports this symbol under its plain name, which the waPC ABI
        // requires. It is the only `__guest_call` in the module: a policy crate registers
        // exactly one policy, and the SDK itself defines none.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn __guest_call(operation_len: i32, payload_len: i32) -> i32 {
            $crate::guest::handle_call(operation_len, payload_len, $crate::dispatch::<$policy>)
        }

        /// waPC initialisation: nothing to do, operations are dispatched statically.
        #[cfg(target_arch = "wasm32")]
        // SAFETY: as for `__guest_call`: the one symbol of this name the ABI asks for.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn wapc_init() {}
    };
}
