//! WASM policies as OCI artifacts, in the format Kubewarden distributes them (kwctl push,
//! policy-fetcher): an OCI image manifest whose config has media type
//! [`WASM_CONFIG_MEDIA_TYPE`] (`{}`) and whose single layer, media type [`WASM_LAYER_MEDIA_TYPE`],
//! is the `.wasm` module itself. Any registry that speaks the OCI distribution API stores them
//! (the CNCF distribution registry, Harbor, ghcr.io, ...).
//!
//! - [`reference`]: `registry://host/repo:tag` and `registry://host/repo@sha256:...` references.
//! - [`digest`]: sha256 digests and their verification against bytes.
//! - [`auth`]: pull and push credentials from a docker `config.json` (a `dockerconfigjson` Secret).
//! - [`cache`]: pulled modules on disk by digest, verified again when read.
//! - [`registry`]: the network side (push, pull, resolve a tag), over `oci-client`.
//!
//! Decisions (reference parsing, digest checks, credential lookup, the manifest's shape, cache
//! paths) are plain functions without I/O, tested on their own.

pub mod auth;
pub mod cache;
pub mod digest;
pub mod reference;
pub mod registry;

pub use auth::{Credentials, DockerConfig};
pub use cache::ModuleCache;
pub use digest::Digest;
pub use reference::PolicyRef;
pub use registry::{Pulled, Pushed, Registry, RegistryError, RegistryOptions};

/// The config blob's media type of a WASM policy artifact (Kubewarden's, and the CNCF TAG
/// runtime's wasm OCI artifact layout).
pub const WASM_CONFIG_MEDIA_TYPE: &str = oci_client::manifest::WASM_CONFIG_MEDIA_TYPE;
/// The media type of the artifact's one layer: the `.wasm` module's bytes, uncompressed.
pub const WASM_LAYER_MEDIA_TYPE: &str = oci_client::manifest::WASM_LAYER_MEDIA_TYPE;
