//! supsvc-policy-host: runs Kubewarden-compatible waPC policies with wasmtime, the one host both
//! the admission webhook (`supsvc-webhook`) and the policy author's tooling (`kubectl supsvc policy
//! run|bench`) evaluate policies with, so a verdict tried on a laptop is the verdict the webhook gives.
//! Kubewarden splits its own the same way: `policy-server` and `kwctl` both depend on the
//! `policy-evaluator` library, and neither on the other.
//!
//! One [`PolicyHost`] owns the engine (pooling allocator, epoch ticker, compiled-module cache);
//! [`PolicyHost::load`] turns a module into a [`Policy`]; [`Policy::validate`] evaluates one
//! request in a fresh store with the policy's memory cap and deadline.
//!
//! - [`admission`]: AdmissionReview `admission.k8s.io/v1` in and out, the request kept as raw JSON.
//! - [`verdict`]: every matching policy's answer combined into one admission decision.
//! - [`memory`]: a policy's memory limit, read as a Kubernetes quantity.
//! - [`protocol`]: what a guest returns (Kubewarden's `ValidationResponse`).

pub mod admission;
mod cache;
mod engine;
pub mod memory;
mod policy;
pub mod protocol;
pub mod verdict;
mod wapc;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::{Engine, Linker};

pub use engine::{EPOCH_TICK, EngineOptions, IDLE_TICKS_BEFORE_PARKING};
pub use policy::{LoadError, Policy, PolicyError, PolicySpec, human_bytes, sha256_hex};
pub use protocol::{SettingsValidationResponse, ValidationResponse};
pub use wapc::GuestPayload;

use cache::ModuleCache;
use engine::EpochTicker;
use wapc::GuestState;

/// How to build a [`PolicyHost`].
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    pub engine: EngineOptions,
    /// Where compiled modules are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

pub(crate) struct HostInner {
    engine: Engine,
    linker: Linker<GuestState>,
    cache: ModuleCache,
    options: EngineOptions,
    // Declared last: stopped after everything that uses the engine is gone.
    ticker: EpochTicker,
}

/// Loads policies into one shared engine. Clones share the engine.
#[derive(Clone)]
pub struct PolicyHost {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for PolicyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHost")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl PolicyHost {
    pub fn new(options: HostOptions) -> anyhow::Result<Self> {
        let engine = engine::build_engine(&options.engine)?;
        let mut linker = Linker::new(&engine);
        wapc::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("cannot register the waPC imports: {e:#}"))?;
        let ticker = EpochTicker::start(&engine)?;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                cache: ModuleCache::new(options.cache_dir),
                options: options.engine,
                ticker,
            }),
        })
    }

    /// Compiles (or fetches from the cache) and links the module, then runs its
    /// `validate_settings` on the spec's settings: a policy that refuses them is not loaded.
    pub fn load(&self, spec: PolicySpec) -> Result<Policy, LoadError> {
        Policy::load(Arc::clone(&self.inner), spec)
    }
}
