//! supsvc-webhook: a validating admission webhook that runs WASM policies speaking
//! Kubewarden's waPC protocol, with memory caps, millisecond timeouts and hot reload.
//!
//! - The wasmtime policy host is the `supsvc-policy-host` crate ([`supsvc_policy_host::PolicyHost`]),
//!   shared with `kubectl supsvc policy run|bench`; its [`admission`] and [`verdict`] modules are
//!   re-exported here, as the webhook's wire format and decision.
//! - [`rules`]: selecting the policies a request goes to.
//! - [`config`], [`policy_set`], [`reload`]: the configuration file and hot reload.
//! - [`registry`]: `registry://` modules (Kubewarden's OCI artifacts), pulled, verified, cached.
//! - [`server`]: HTTPS, routes, metrics.

pub mod config;
mod files;
pub mod policy_set;
pub mod registry;
pub mod reload;
pub mod rules;
pub mod server;

pub use supsvc_policy_host::{admission, verdict};
