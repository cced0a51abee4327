//! supsvc-webhook: a validating admission webhook that runs WASM policies speaking
//! Kubewarden's waPC protocol, with memory caps, millisecond timeouts and hot reload.

pub mod host;
