//! `registry://` modules: pulled with the configuration's credentials and trust, verified (the
//! manifest against a pinned digest, the module against the manifest's layer digest), kept on disk
//! by digest under `<cacheDir>/oci`, and tags re-resolved every `registry.refreshIntervalMs`.
//!
//! Blocking: called from the reloader's blocking task (and [`crate::policy_set::PolicySet::load`]),
//! each network operation on a runtime of its own ([`supsvc_oci::registry::block_on`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use supsvc_oci::{
    Digest, DockerConfig, ModuleCache, PolicyRef, Registry, RegistryError, RegistryOptions,
};

use crate::config::Config;

/// What a tag was last resolved to.
#[derive(Debug, Clone)]
struct TagState {
    digest: Option<Digest>,
    checked: Instant,
    /// Failed resolutions in a row: a changing part of the fingerprint, so that a tag never
    /// resolved is tried again (once per refresh interval) rather than given up on.
    failures: u64,
}

/// The registry side of the webhook's policies: tag resolutions and the modules pulled.
#[derive(Debug, Default)]
pub struct RegistryModules {
    tags: Mutex<HashMap<String, TagState>>,
    /// The module last pulled per reference, by manifest digest: a reload with nothing new pulls
    /// nothing, with or without a cache directory.
    pulled: Mutex<HashMap<String, PulledModule>>,
}

/// A module pulled for a reference: its manifest digest and bytes.
type PulledModule = (Digest, Arc<Vec<u8>>);

/// What each `registry://` module resolves to, for the reloader's change detection: the
/// reference and its digest (or `unresolved #N`).
pub type RegistryFingerprint = Vec<(String, String)>;

/// The client for a configuration's `registry:` settings; paths relative to `config_dir`.
///
/// # Errors
/// [`RegistryError`] for an unreadable credentials or CA file.
pub fn client(config: &Config, config_dir: &Path) -> Result<Registry, RegistryError> {
    let settings = &config.registry;
    let docker_config = match &settings.config_file {
        Some(path) => Some(DockerConfig::load(&config_dir.join(path))?),
        None => None,
    };
    Registry::new(RegistryOptions {
        ca_file: settings.ca_file.as_ref().map(|path| config_dir.join(path)),
        insecure_registries: settings.insecure_registries.clone(),
        docker_config,
        credentials: None,
    })
}

/// The cache of pulled modules: `<cacheDir>/oci`, when a cache directory is configured.
pub fn cache(config: &Config) -> Option<ModuleCache> {
    config
        .cache_dir
        .as_ref()
        .map(|dir| ModuleCache::new(dir.join("oci")))
}

impl RegistryModules {
    pub fn new() -> Self {
        Self::default()
    }

    /// What each `registry://` module resolves to now, for noticing a change: a pinned digest as
    /// is, a tag's digest as last resolved, resolved again (a HEAD request) when older than the
    /// refresh interval. A tag that cannot be resolved keeps its last digest (the running module
    /// stays) and is logged.
    pub fn fingerprint(&self, config: &Config, config_dir: &Path) -> RegistryFingerprint {
        let refresh = Duration::from_millis(config.registry.refresh_interval_ms);
        let mut client = None;
        let mut entries = Vec::new();
        for policy in &config.policies {
            let Some(Ok(reference)) = policy.registry_ref() else {
                continue;
            };
            let key = reference.to_string();
            if let Some(pinned) = reference.pinned() {
                entries.push((key, pinned.to_string()));
                continue;
            }
            let known = self
                .tags
                .lock()
                .ok()
                .and_then(|tags| tags.get(&key).cloned());
            let state = match known {
                Some(state) if state.checked.elapsed() < refresh => state,
                known => {
                    let client = client.get_or_insert_with(|| client_for(config, config_dir));
                    let resolved = match client {
                        Ok(client) => supsvc_oci::registry::block_on(client.resolve(&reference)),
                        Err(e) => Err(RegistryError::Other {
                            doing: "cannot set up the registry client for",
                            reference: key.clone(),
                            message: e.clone(),
                        }),
                    };
                    let state = match (resolved, known) {
                        (Ok(digest), _) => TagState {
                            digest: Some(digest),
                            checked: Instant::now(),
                            failures: 0,
                        },
                        (Err(e), known) => {
                            tracing::warn!(reference = %key, "cannot resolve the tag, keeping what runs: {e} (hint: {})", e.hint());
                            let known = known.unwrap_or(TagState {
                                digest: None,
                                checked: Instant::now(),
                                failures: 0,
                            });
                            TagState {
                                checked: Instant::now(),
                                failures: known.failures + 1,
                                ..known
                            }
                        }
                    };
                    if let Ok(mut tags) = self.tags.lock() {
                        tags.insert(key.clone(), state.clone());
                    }
                    state
                }
            };
            let value = match (&state.digest, state.failures) {
                (Some(digest), _) => digest.to_string(),
                (None, failures) => format!("unresolved #{failures}"),
            };
            entries.push((key, value));
        }
        entries
    }

    /// The module of `reference`: its pinned digest, or the tag's digest as last resolved (resolved
    /// now if never), read from the cache when there and verified, else pulled by that digest,
    /// verified and cached.
    ///
    /// # Errors
    /// [`RegistryError`]: unreachable, credentials refused, not found, not a policy, a digest
    /// mismatch.
    pub fn module(
        &self,
        config: &Config,
        config_dir: &Path,
        reference: &PolicyRef,
    ) -> Result<Arc<Vec<u8>>, RegistryError> {
        let key = reference.to_string();
        let mut built: Option<Registry> = None;
        let mut registry_client = || -> Result<Registry, RegistryError> {
            if let Some(registry) = &built {
                return Ok(registry.clone());
            }
            let registry = client(config, config_dir)?;
            built = Some(registry.clone());
            Ok(registry)
        };
        let digest = match reference.pinned() {
            Some(pinned) => pinned.clone(),
            None => {
                let known = self
                    .tags
                    .lock()
                    .ok()
                    .and_then(|tags| tags.get(&key).and_then(|state| state.digest.clone()));
                match known {
                    Some(digest) => digest,
                    None => {
                        let digest =
                            supsvc_oci::registry::block_on(registry_client()?.resolve(reference))?;
                        if let Ok(mut tags) = self.tags.lock() {
                            tags.insert(
                                key.clone(),
                                TagState {
                                    digest: Some(digest.clone()),
                                    checked: Instant::now(),
                                    failures: 0,
                                },
                            );
                        }
                        digest
                    }
                }
            }
        };
        if let Some((pulled_digest, wasm)) =
            self.pulled.lock().ok().and_then(|p| p.get(&key).cloned())
            && pulled_digest == digest
        {
            return Ok(wasm);
        }
        let cache = cache(config);
        let pulled = match cache.as_ref().and_then(|cache| cache.get(&key, &digest)) {
            Some(pulled) => {
                tracing::info!(reference = %key, digest = %digest, "module read from the cache");
                pulled
            }
            None => {
                let pinned = reference.at_digest(&digest);
                let pulled = supsvc_oci::registry::block_on(registry_client()?.pull(&pinned))?;
                tracing::info!(reference = %key, digest = %digest, module = %pulled.module_digest, "module pulled");
                if let Some(cache) = &cache
                    && let Err(e) = cache.put(&pulled)
                {
                    tracing::warn!(dir = %cache.dir().display(), "cannot cache the pulled module: {e}");
                }
                pulled
            }
        };
        let wasm = Arc::new(pulled.wasm);
        if let Ok(mut all) = self.pulled.lock() {
            all.insert(key, (digest, Arc::clone(&wasm)));
        }
        Ok(wasm)
    }
}

fn client_for(config: &Config, config_dir: &Path) -> Result<Registry, String> {
    client(config, config_dir).map_err(|e| format!("{e} (hint: {})", e.hint()))
}
