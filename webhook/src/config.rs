//! The webhook's configuration file (YAML): where to listen, TLS files, and the policies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
/// A policy's `memoryLimit`, read by the policy host's parser (`kubectl supsvc policy run` reads its
/// `--memory-limit` with the same one).
pub use supsvc_policy_host::memory::{MemoryLimitError, parse_memory_quantity};
/// A policy's `mode` and `failurePolicy`: the policy host's verdict decides with them.
pub use supsvc_policy_host::verdict::{FailurePolicy, Mode};

use crate::rules::Rule;
use supsvc_oci::PolicyRef;
use supsvc_oci::reference::RefError;
use supsvc_policy_host::PolicySpec;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `0.0.0.0:8443`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve HTTPS with these files (reloaded when they change); plain HTTP without.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Where compiled modules are cached between runs, and modules pulled from registries (under
    /// `oci/`, by digest: a restart with the registry down starts from it for digest-pinned refs).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// How `registry://` modules are pulled.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// How often configuration, modules and certificates are checked for changes, in ms.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// `policies:` with nothing after it is an empty list, not an error.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub policies: Vec<PolicyConfig>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<PolicyConfig>, D::Error> {
    Ok(Option::<Vec<PolicyConfig>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Pulling `registry://` modules: credentials, trust, plain HTTP, how often tags are re-resolved.
/// Relative paths are relative to the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryConfig {
    /// A docker config.json with pull credentials: the `.dockerconfigjson` key of a mounted
    /// `kubernetes.io/dockerconfigjson` Secret. Read again at every pull (a rotated Secret is used).
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    /// PEM certificates of a private CA trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Registries (`host[:port]`) reached over plain HTTP (Kubewarden's `insecure_sources`).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// How often tag references are resolved again (a HEAD request), in ms; a tag moved to a new
    /// digest is pulled, verified and compiled, and swapped in only if all of that succeeds.
    #[serde(default = "default_refresh_interval_ms")]
    pub refresh_interval_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            config_file: None,
            ca_file: None,
            insecure_registries: Vec::new(),
            refresh_interval_ms: default_refresh_interval_ms(),
        }
    }
}

fn default_refresh_interval_ms() -> u64 {
    60_000
}

/// One policy: which module, with which settings, for which requests, and how strictly.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    /// Path of the `.wasm` file (relative paths are relative to the configuration file), or a
    /// policy artifact in a registry: `registry://host[:port]/repository:tag` or
    /// `registry://host[:port]/repository@sha256:<64 hex>` (Kubewarden's policy references).
    pub module: PathBuf,
    /// Hex sha256 the module must have; a module that differs is refused.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default = "empty_settings")]
    pub settings: serde_json::Value,
    /// Requests the policy applies to; none means every request.
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub mode: Mode,
    /// Milliseconds one evaluation may run.
    #[serde(default = "default_timeout_ms")]
    pub timeout: u64,
    /// Bytes of linear memory, as a number or a Kubernetes quantity (`16Mi`, `512Ki`; `16M` is 16·10^6).
    #[serde(default)]
    pub memory_limit: Option<MemoryQuantity>,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum MemoryQuantity {
    Bytes(u64),
    Text(String),
}

fn default_listen() -> String {
    "0.0.0.0:8443".into()
}
fn default_reload_interval_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    PolicySpec::DEFAULT_TIMEOUT.as_millis() as u64
}
fn empty_settings() -> serde_json::Value {
    serde_json::json!({})
}

/// Why a configuration document is refused ([`Config::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML of the configuration's shape (unknown field, wrong type); the parser's message.
    #[error("invalid configuration: {0}")]
    Syntax(String),
    /// Well-formed, but wrong: every problem found, each a sentence.
    #[error("invalid configuration: {}", .0.join("; "))]
    Problems(Vec<String>),
}

impl PolicyConfig {
    /// The policy's memory limit in bytes (the default when unset).
    ///
    /// # Errors
    /// A limit [`parse_memory_quantity`] refuses, or a byte count larger than the address space.
    pub fn memory_limit_bytes(&self) -> Result<usize, MemoryLimitError> {
        match &self.memory_limit {
            None => Ok(PolicySpec::DEFAULT_MEMORY_LIMIT),
            Some(MemoryQuantity::Bytes(bytes)) => {
                usize::try_from(*bytes).map_err(|_| MemoryLimitError::TooLarge {
                    text: bytes.to_string(),
                })
            }
            Some(MemoryQuantity::Text(text)) => parse_memory_quantity(text),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }

    /// The module path, resolved against the configuration file's directory.
    pub fn module_path(&self, config_dir: &Path) -> PathBuf {
        config_dir.join(&self.module)
    }

    /// The registry reference when the module is `registry://...`; `None` for a file.
    pub fn registry_ref(&self) -> Option<Result<PolicyRef, RefError>> {
        PolicyRef::parse_module(self.module.to_str()?)
    }
}

impl Config {
    /// Parses and validates a configuration document (YAML).
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for a document of the wrong shape, [`ConfigError::Problems`] with every
    /// problem [`Config::problems`] finds.
    pub fn parse(yaml: &str) -> Result<Self, ConfigError> {
        let config: Self =
            serde_saphyr::from_str(yaml).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Problems(problems))
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Everything wrong with an otherwise well-formed configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        for policy in &self.policies {
            let name = &policy.name;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                problems.push(format!(
                    "policy name {name:?} must be non-empty letters, digits, '-', '_' or '.'"
                ));
            }
            if !names.insert(name.as_str()) {
                problems.push(format!("policy {name} is defined twice"));
            }
            if policy.timeout == 0 {
                problems.push(format!("policy {name}: timeout must be at least 1 ms"));
            }
            match policy.memory_limit_bytes() {
                Ok(bytes) if bytes < 64 << 10 => problems.push(format!(
                    "policy {name}: memory limit must be at least 64Ki (one WASM page)"
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("policy {name}: {e}")),
            }
            if let Some(sha) = &policy.sha256
                && (sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()))
            {
                problems.push(format!("policy {name}: sha256 must be 64 hex digits"));
            }
            if let Some(Err(e)) = policy.registry_ref() {
                problems.push(format!("policy {name}: {e} ({})", e.hint()));
            }
            if !policy.settings.is_object() {
                problems.push(format!("policy {name}: settings must be a mapping"));
            }
            for rule in &policy.rules {
                problems.extend(
                    rule.problems()
                        .into_iter()
                        .map(|p| format!("policy {name}: {p}")),
                );
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
listen: 127.0.0.1:9443
tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key}
cacheDir: /cache
policies:
  - name: registry-guard
    module: registry-guard.wasm
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
    settings: {denied: [docker.io]}
    rules:
      - operations: [CREATE, UPDATE]
        apiGroups: ["", apps]
        resources: [pods, deployments]
    mode: monitor
    timeout: 50
    memoryLimit: 16Mi
    failurePolicy: ignore
  - name: minimal
    module: /abs/minimal.wasm
  - name: pulled
    module: registry://registry.example.com:5000/policies/guard:v1
"#;

    #[test]
    fn parses_a_full_configuration() {
        let config = Config::parse(FULL).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9443");
        let guard = &config.policies[0];
        assert_eq!(guard.mode, Mode::Monitor);
        assert_eq!(guard.failure_policy, FailurePolicy::Ignore);
        assert_eq!(guard.memory_limit_bytes(), Ok(16 << 20));
        assert_eq!(guard.timeout(), Duration::from_millis(50));
        assert_eq!(guard.settings["denied"][0], "docker.io");
        assert_eq!(
            guard.module_path(Path::new("/etc/webhook")),
            PathBuf::from("/etc/webhook/registry-guard.wasm")
        );
        let minimal = &config.policies[1];
        assert_eq!(minimal.mode, Mode::Enforce);
        assert_eq!(minimal.failure_policy, FailurePolicy::Fail);
        assert_eq!(
            minimal.module_path(Path::new("/etc")),
            PathBuf::from("/abs/minimal.wasm")
        );
        assert!(minimal.rules.is_empty());
        assert!(minimal.registry_ref().is_none());
        let pulled = config.policies[2].registry_ref().unwrap().unwrap();
        assert_eq!(pulled.registry(), "registry.example.com:5000");
        assert_eq!(config.registry, RegistryConfig::default());
        assert_eq!(config.registry.refresh_interval_ms, 60_000);
    }

    #[test]
    fn parses_registry_settings() {
        let config = Config::parse(
            "registry: {configFile: pull-secret/.dockerconfigjson, caFile: /ca/ca.crt, \
             insecureRegistries: ['10.0.0.5:5000'], refreshIntervalMs: 500}",
        )
        .unwrap();
        assert_eq!(
            config.registry.config_file,
            Some(PathBuf::from("pull-secret/.dockerconfigjson"))
        );
        assert_eq!(config.registry.insecure_registries, ["10.0.0.5:5000"]);
        assert_eq!(config.registry.refresh_interval_ms, 500);
    }

    #[test]
    fn empty_policy_lists() {
        for yaml in ["", "policies:", "policies: []", "listen: 0.0.0.0:9443"] {
            assert!(Config::parse(yaml).unwrap().policies.is_empty(), "{yaml:?}");
        }
    }

    #[test]
    fn refuses_bad_configurations_with_clear_errors() {
        let cases = [
            (
                "policies: [{name: a, module: a.wasm, colour: red}]",
                "colour",
            ),
            (
                "policies: [{name: a, module: a.wasm, mode: audit}]",
                "audit",
            ),
            (
                "policies: [{name: a, module: a.wasm}, {name: a, module: b.wasm}]",
                "defined twice",
            ),
            (
                "policies: [{name: a, module: a.wasm, timeout: 0}]",
                "at least 1 ms",
            ),
            (
                "policies: [{name: a, module: a.wasm, memoryLimit: 12Qi}]",
                "unknown unit",
            ),
            (
                "policies: [{name: a, module: a.wasm, sha256: abc}]",
                "64 hex digits",
            ),
            (
                "policies: [{name: a, module: a.wasm, settings: [1]}]",
                "must be a mapping",
            ),
            ("policies: [{name: 'a b', module: a.wasm}]", "policy name"),
            (
                "policies: [{name: a, module: 'registry://guard:v1'}]",
                "registry host",
            ),
            (
                "policies: [{name: a, module: 'registry://r.example.com/guard@sha256:abc'}]",
                "invalid policy reference",
            ),
            ("registry: {caFile: a, password: b}", "password"),
            (
                "policies: [{name: a, module: a.wasm, rules: [{operations: [PATCH], resources: [pods]}]}]",
                "PATCH",
            ),
            (
                "policies: [{name: a, module: a.wasm, rules: [{operations: [CREATE]}]}]",
                "resources",
            ),
        ];
        for (yaml, expected) in cases {
            let error = Config::parse(yaml).unwrap_err().to_string();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }
}
