//! The policies serving at one time, loaded together from one configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, MemoryLimitError, PolicyConfig};
use crate::registry::RegistryModules;
use crate::rules::{RequestAttributes, any_rule_matches};
use supsvc_policy_host::{LoadError, Policy, PolicyHost, PolicySpec};

/// A loaded policy with the configuration it was loaded from.
#[derive(Debug)]
pub struct ActivePolicy {
    pub config: PolicyConfig,
    pub policy: Arc<Policy>,
    /// Identifies what was loaded (module digest, settings, limits): equal keys need no reload.
    load_key: String,
}

/// Why one configured policy could not be loaded; `Display` names the policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyProblem {
    /// The module file could not be read.
    #[error("policy {policy}: cannot read module {}: {source}", path.display())]
    ReadModule {
        /// The policy's configured name.
        policy: String,
        /// The module's path, resolved against the configuration's directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `registry://` module could not be pulled, verified or read from the cache.
    #[error("policy {policy}: {source} (hint: {})", source.hint())]
    Registry {
        /// The policy's configured name.
        policy: String,
        /// What went wrong, with a hint.
        source: supsvc_oci::RegistryError,
    },
    /// The module is neither a path nor a valid `registry://` reference.
    #[error("policy {policy}: {source}")]
    Reference {
        /// The policy's configured name.
        policy: String,
        /// What is wrong with the reference.
        source: supsvc_oci::reference::RefError,
    },
    /// `memoryLimit` is not a quantity the host can use.
    #[error("policy {policy}: {source}")]
    MemoryLimit {
        /// The policy's configured name.
        policy: String,
        /// What is wrong with the quantity.
        source: MemoryLimitError,
    },
    /// The host refused the module or its settings.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Every problem of a configuration that could not be loaded as a whole; `Display` joins them
/// with `; `, one per policy.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicySetError(pub Vec<PolicyProblem>);

/// Every configured policy, all loaded. Swapped in whole: requests see one version or the other.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub policies: Vec<ActivePolicy>,
}

impl PolicySet {
    /// Loads every policy of `config` (module paths relative to `config_dir`; `registry://`
    /// modules pulled, see [`PolicySet::load_with`]). Policies whose module and settings are
    /// unchanged from `previous` are reused, not reloaded.
    ///
    /// # Errors
    /// [`PolicySetError`], listing every policy that cannot be loaded, if any cannot.
    pub fn load(
        host: &PolicyHost,
        config: &Config,
        config_dir: &Path,
        previous: Option<&PolicySet>,
    ) -> Result<Self, PolicySetError> {
        Self::load_with(host, config, config_dir, previous, &RegistryModules::new())
    }

    /// [`PolicySet::load`], with `registry://` modules from `registry` (the reloader's, which
    /// remembers the digests its tags resolved to and the modules it pulled).
    ///
    /// # Errors
    /// [`PolicySetError`], listing every policy that cannot be loaded, if any cannot: a module
    /// that cannot be pulled or verified is one.
    pub fn load_with(
        host: &PolicyHost,
        config: &Config,
        config_dir: &Path,
        previous: Option<&PolicySet>,
        registry: &RegistryModules,
    ) -> Result<Self, PolicySetError> {
        let mut policies = Vec::new();
        let mut problems = Vec::new();
        for policy_config in &config.policies {
            let wasm = match read_module(config, policy_config, config_dir, registry) {
                Ok(wasm) => wasm,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            match load_one(host, policy_config, wasm, previous) {
                Ok(active) => policies.push(active),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(Self { policies })
        } else {
            Err(PolicySetError(problems))
        }
    }

    /// The policies whose rules match the request, in configuration order.
    pub fn matching(&self, request: &RequestAttributes) -> Vec<&ActivePolicy> {
        self.policies
            .iter()
            .filter(|active| any_rule_matches(&active.config.rules, request))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&ActivePolicy> {
        self.policies
            .iter()
            .find(|active| active.config.name == name)
    }
}

/// The module's bytes: the file, or the `registry://` artifact (pulled or cached, verified).
fn read_module(
    config: &Config,
    policy: &PolicyConfig,
    config_dir: &Path,
    registry: &RegistryModules,
) -> Result<Vec<u8>, PolicyProblem> {
    match policy.registry_ref() {
        Some(Ok(reference)) => registry
            .module(config, config_dir, &reference)
            .map(|wasm| wasm.as_ref().clone())
            .map_err(|source| PolicyProblem::Registry {
                policy: policy.name.clone(),
                source,
            }),
        Some(Err(source)) => Err(PolicyProblem::Reference {
            policy: policy.name.clone(),
            source,
        }),
        None => {
            let path = policy.module_path(config_dir);
            std::fs::read(&path).map_err(|source| PolicyProblem::ReadModule {
                policy: policy.name.clone(),
                path,
                source,
            })
        }
    }
}

fn load_one(
    host: &PolicyHost,
    config: &PolicyConfig,
    wasm: Vec<u8>,
    previous: Option<&PolicySet>,
) -> Result<ActivePolicy, PolicyProblem> {
    let name = &config.name;
    let memory_limit =
        config
            .memory_limit_bytes()
            .map_err(|source| PolicyProblem::MemoryLimit {
                policy: name.clone(),
                source,
            })?;
    let load_key = format!(
        "{}|{}|{}|{}|{:?}",
        supsvc_policy_host::sha256_hex(&wasm),
        config.settings,
        config.timeout,
        memory_limit,
        config.sha256
    );
    if let Some(reused) = previous
        .and_then(|set| set.get(name))
        .filter(|active| active.load_key == load_key)
    {
        return Ok(ActivePolicy {
            config: config.clone(),
            policy: Arc::clone(&reused.policy),
            load_key,
        });
    }
    let spec = PolicySpec {
        name: name.clone(),
        wasm,
        sha256: config.sha256.clone(),
        settings: config.settings.clone(),
        timeout: config.timeout(),
        memory_limit,
    };
    let policy = host.load(spec)?;
    tracing::info!(policy = %name, sha256 = policy.sha256(), "policy loaded");
    Ok(ActivePolicy {
        config: config.clone(),
        policy: Arc::new(policy),
        load_key,
    })
}
