//! supsvc-webhook: a validating admission webhook that runs WASM policies speaking
//! Kubewarden's waPC protocol, with memory caps, millisecond timeouts and hot reload.
//!
//! - [`host`]: the wasmtime policy host ([`host::PolicyHost::load`], [`host::Policy::validate`]).
//! - [`admission`], [`rules`], [`verdict`]: parsing reviews, selecting policies, deciding.
//! - [`config`], [`policy_set`], [`reload`]: the configuration file and hot reload.
//! - [`server`]: HTTPS, routes, metrics.

pub mod admission;
pub mod config;
mod files;
pub mod host;
pub mod policy_set;
pub mod reload;
pub mod rules;
pub mod server;
pub mod verdict;
