//! Compiled modules cached on disk, so a restart or a reload does not recompile with Cranelift.
//!
//! The key is the module's sha256 plus the engine's compatibility hash (wasmtime version, target
//! and settings); an artifact is only ever read back by an engine that could have written it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

#[derive(Debug, Clone)]
pub(crate) struct ModuleCache {
    dir: Option<PathBuf>,
}

impl ModuleCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn artifact_path(&self, engine: &Engine, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish())))
    }

    /// The module for `wasm`: from the cache when present, else compiled and stored.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> anyhow::Result<Module> {
        let Some(path) = self.artifact_path(engine, sha256) else {
            return compile(engine, wasm);
        };
        if path.is_file() {
            match deserialize_own_artifact(engine, &path) {
                Ok(module) => return Ok(module),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached module: {e:#}")
                }
            }
        }
        let module = compile(engine, wasm)?;
        if let Err(e) = store_artifact(&module, &path) {
            tracing::warn!(path = %path.display(), "cannot cache the compiled module: {e:#}");
        }
        Ok(module)
    }
}

fn compile(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Module> {
    Module::new(engine, wasm).map_err(|e| anyhow::anyhow!("not a valid WebAssembly module: {e:#}"))
}

#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, path: &Path) -> anyhow::Result<Module> {
    // SAFETY: `deserialize_file` trusts the file to be machine code wasmtime produced. This file
    // is one we wrote ourselves with `Module::serialize` (written to a temporary name, then
    // renamed, so it is never read half-written), in a cache directory only this process
    // writes, under a name keyed by the module's sha256 and this engine's compatibility hash,
    // so it holds the compilation of exactly this module by a compatible engine; wasmtime
    // still checks its header for version and configuration.
    unsafe { Module::deserialize_file(engine, path) }.map_err(|e| anyhow::anyhow!("{e:#}"))
}

fn store_artifact(module: &Module, path: &Path) -> anyhow::Result<()> {
    let bytes = module.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("cache path has no parent"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), bytes)?;
    tmp.persist(path)?;
    Ok(())
}
