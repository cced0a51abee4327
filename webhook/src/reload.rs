//! Hot reload: a changed configuration or module is loaded in the background and swapped in
//! atomically; a version that fails to load is rejected and the running one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::files::{Fingerprint, fingerprint};
use crate::policy_set::PolicySet;
use crate::registry::{RegistryFingerprint, RegistryModules};
use crate::server::AppState;
use supsvc_policy_host::PolicyHost;

/// What one reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded { policies: usize },
    Rejected(String),
}

/// Watches the configuration file and the modules it names.
pub struct Reloader {
    host: PolicyHost,
    config_path: PathBuf,
    state: Arc<AppState>,
    /// The files (and registry digests) as they were at the last attempt, loaded or rejected: a
    /// rejected version is not retried until something changes again.
    last_attempt: Mutex<Option<(Fingerprint, RegistryFingerprint)>>,
    /// `registry://` modules: tags resolved, modules pulled.
    registry: RegistryModules,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

/// The configuration, the module files and the registry credentials and CA it names, and what
/// its `registry://` modules resolve to now.
fn watched(config_path: &Path, registry: &RegistryModules) -> (Fingerprint, RegistryFingerprint) {
    let mut paths = vec![config_path.to_path_buf()];
    let mut digests = Vec::new();
    if let Ok(config) = Config::load(config_path) {
        let dir = config_dir(config_path);
        paths.extend(
            config
                .policies
                .iter()
                .filter(|policy| policy.registry_ref().is_none())
                .map(|policy| policy.module_path(&dir)),
        );
        paths.extend(
            [&config.registry.config_file, &config.registry.ca_file]
                .into_iter()
                .flatten()
                .map(|path| dir.join(path)),
        );
        digests = registry.fingerprint(&config, &dir);
    }
    (fingerprint(paths), digests)
}

pub fn config_dir(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

impl Reloader {
    pub fn new(host: PolicyHost, config_path: PathBuf, state: Arc<AppState>) -> Self {
        Self {
            host,
            config_path,
            state,
            last_attempt: Mutex::new(None),
            registry: RegistryModules::new(),
        }
    }

    /// Loads the configuration if anything changed since the last attempt. Blocking: compiles.
    pub fn reload_if_changed(&self) -> ReloadOutcome {
        let files = watched(&self.config_path, &self.registry);
        {
            let Ok(mut last) = self.last_attempt.lock() else {
                return ReloadOutcome::Unchanged;
            };
            if last.as_ref() == Some(&files) {
                return ReloadOutcome::Unchanged;
            }
            *last = Some(files);
        }
        let outcome = self.load();
        match &outcome {
            ReloadOutcome::Reloaded { policies } => {
                tracing::info!(policies, config = %self.config_path.display(), "policies loaded");
                self.state.metrics.reload(true);
            }
            ReloadOutcome::Rejected(error) => {
                let running = if self.state.is_ready() {
                    "keeping the running policies"
                } else {
                    "not ready"
                };
                tracing::error!(config = %self.config_path.display(), "configuration rejected, {running}: {error}");
                self.state.metrics.reload(false);
            }
            ReloadOutcome::Unchanged => {}
        }
        outcome
    }

    fn load(&self) -> ReloadOutcome {
        let config = match Config::load(&self.config_path) {
            Ok(config) => config,
            Err(e) => return ReloadOutcome::Rejected(format!("{e:#}")),
        };
        let previous = self.state.policies.load_full();
        let dir = config_dir(&self.config_path);
        match PolicySet::load_with(
            &self.host,
            &config,
            &dir,
            previous.as_deref(),
            &self.registry,
        ) {
            Ok(set) => {
                let policies = set.policies.len();
                self.state.install(set);
                ReloadOutcome::Reloaded { policies }
            }
            Err(e) => ReloadOutcome::Rejected(e.to_string()),
        }
    }

    /// Polls for changes every `interval`, forever; compiles off the async runtime.
    pub async fn run(self: Arc<Self>, interval: std::time::Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let reloader = Arc::clone(&self);
            if let Err(e) = tokio::task::spawn_blocking(move || reloader.reload_if_changed()).await
            {
                tracing::error!("policy reload task failed: {e}");
            }
        }
    }
}

/// Loads every policy of the configuration at `config_path` as the server does at start (module
/// files read, `registry://` modules pulled, each compiled into the configuration's `cacheDir`,
/// its settings validated by the policy) and returns how many were loaded.
///
/// What `supsvc-webhook --precompile` runs as the Deployment's init container: the serving
/// container then starts from compiled modules, so its resident set never holds Cranelift's
/// working memory and code (issue 19: 30-32 MiB peak when it compiles itself, 16-18 MiB when it
/// loads compiled modules). Blocking: compiles.
///
/// # Errors
/// The configuration cannot be read or has no `cacheDir` (nothing would be kept), or a policy
/// cannot be loaded ([`crate::policy_set::PolicySetError`], every failing policy named).
pub fn precompile(config_path: &Path) -> anyhow::Result<usize> {
    let config = Config::load(config_path)?;
    let Some(cache_dir) = config.cache_dir.clone() else {
        anyhow::bail!(
            "{}: no cacheDir, so compiled modules would not be kept for the server\n\
             hint: set `cacheDir:` to a directory the server also mounts (deployment.yaml: the \
             module-cache emptyDir at /var/cache/supsvc-webhook)",
            config_path.display()
        );
    };
    let host = PolicyHost::new(supsvc_policy_host::HostOptions {
        cache_dir: Some(cache_dir),
        ..Default::default()
    })?;
    let set = PolicySet::load_with(
        &host,
        &config,
        &config_dir(config_path),
        None,
        &RegistryModules::new(),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\n\
             hint: fix each policy the error names in {} (its module, its settings) or remove it \
             from `policies:`; the Pod runs this init container again when it restarts",
            config_path.display()
        )
    })?;
    Ok(set.policies.len())
}
