//! Registry credentials from a docker `config.json`: the file `docker login` writes, and the
//! `.dockerconfigjson` key of a `kubernetes.io/dockerconfigjson` Secret (the same document), or
//! the older `.dockercfg` form (the `auths` map alone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// How to authenticate to one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: anonymous pulls (and pushes, where the registry allows them).
    Anonymous,
    /// HTTP basic credentials, exchanged for a bearer token where the registry asks for one.
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// A parsed docker configuration: credentials per registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    auths: BTreeMap<String, AuthEntry>,
    /// `credsStore`/`credHelpers` were set: credentials may live in a helper this crate does not run.
    pub uses_helpers: bool,
}

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: Option<BTreeMap<String, String>>,
}

/// A docker configuration that cannot be used; `Display` names the file or the registry.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read registry credentials {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a docker config.json / dockerconfigjson document.
    #[error("registry credentials {origin} are not a docker config.json: {reason}")]
    Syntax { origin: String, reason: String },
    /// An `auth` entry that is not base64 of `username:password`.
    #[error("registry credentials for {registry}: `auth` is not base64 of username:password")]
    BadAuth { registry: String },
}

/// The registry a docker config key names: `https://index.docker.io/v1/` is `docker.io`,
/// `https://reg.example.com:5000` is `reg.example.com:5000` (the scheme and path are dropped).
pub fn registry_of_key(key: &str) -> String {
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = bare.split('/').next().unwrap_or(bare);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        other => other.to_string(),
    }
}

impl DockerConfig {
    /// Parses a docker `config.json` (`{"auths": {...}}`) or a legacy `.dockercfg` (the map alone).
    /// `origin` names the document in errors.
    ///
    /// # Errors
    /// [`AuthError::Syntax`] for JSON of another shape.
    pub fn parse(json: &[u8], origin: &str) -> Result<Self, AuthError> {
        let syntax = |reason: String| AuthError::Syntax {
            origin: origin.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| syntax(e.to_string()))?;
        let file: ConfigFile =
            serde_json::from_value(value.clone()).map_err(|e| syntax(e.to_string()))?;
        let uses_helpers = file.creds_store.is_some() || file.cred_helpers.is_some();
        let auths = match file.auths {
            Some(auths) => auths,
            None if !uses_helpers && value.is_object() => {
                serde_json::from_value(value).map_err(|e| syntax(e.to_string()))?
            }
            None => BTreeMap::new(),
        };
        let auths = auths
            .into_iter()
            .map(|(key, entry)| (registry_of_key(&key), entry))
            .collect();
        Ok(Self {
            auths,
            uses_helpers,
        })
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    /// [`AuthError::Read`] or [`AuthError::Syntax`].
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let bytes = std::fs::read(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// The credentials for `registry` (`host[:port]`, as in a reference): its entry's
    /// `username`/`password`, or its `auth` (base64 of `username:password`); anonymous without one.
    ///
    /// # Errors
    /// [`AuthError::BadAuth`] for an `auth` that does not decode.
    pub fn credentials(&self, registry: &str) -> Result<Credentials, AuthError> {
        let Some(entry) = self.auths.get(&registry_of_key(registry)) else {
            return Ok(Credentials::Anonymous);
        };
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            });
        }
        let Some(auth) = &entry.auth else {
            return Ok(Credentials::Anonymous);
        };
        let bad = || AuthError::BadAuth {
            registry: registry.to_string(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
        Ok(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    /// Whether the configuration has an entry for `registry`.
    pub fn has(&self, registry: &str) -> bool {
        self.auths.contains_key(&registry_of_key(registry))
    }
}

/// Where the docker CLI keeps its configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json` (docker's `cli/config` package). `None` without a home directory.
pub fn default_docker_config_path(
    docker_config: Option<&str>,
    home: Option<&str>,
) -> Option<PathBuf> {
    match (docker_config, home) {
        (Some(dir), _) if !dir.is_empty() => Some(Path::new(dir).join("config.json")),
        (_, Some(home)) if !home.is_empty() => Some(Path::new(home).join(".docker/config.json")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auth_and_username_password_entries() {
        // `auth` is base64("alice:s3cr:et"): the password may contain ':'.
        let json = br#"{"auths": {
            "https://reg.example.com:5000": {"auth": "YWxpY2U6czNjcjpldA=="},
            "other.example.com": {"username": "bob", "password": "pw"},
            "https://index.docker.io/v1/": {"auth": "ZDpo"}
        }}"#;
        let config = DockerConfig::parse(json, "test").unwrap();
        assert_eq!(
            config.credentials("reg.example.com:5000").unwrap(),
            Credentials::Basic {
                username: "alice".into(),
                password: "s3cr:et".into()
            }
        );
        assert_eq!(
            config.credentials("other.example.com").unwrap(),
            Credentials::Basic {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert!(matches!(
            config.credentials("docker.io").unwrap(),
            Credentials::Basic { .. }
        ));
        // A port is part of the registry's name: another port is another registry.
        assert_eq!(
            config.credentials("reg.example.com").unwrap(),
            Credentials::Anonymous
        );
        assert!(!format!("{:?}", config.credentials("other.example.com").unwrap()).contains("pw"));
    }

    #[test]
    fn legacy_dockercfg_and_helpers() {
        let legacy = DockerConfig::parse(br#"{"reg.example.com": {"auth": "YTpi"}}"#, "t").unwrap();
        assert!(legacy.has("reg.example.com"));
        let helpers = DockerConfig::parse(br#"{"credsStore": "desktop"}"#, "t").unwrap();
        assert!(helpers.uses_helpers);
        assert!(!helpers.has("reg.example.com"));
    }

    #[test]
    fn refuses_what_is_not_a_docker_config() {
        let error = DockerConfig::parse(b"auths: {}", "secret.yaml").unwrap_err();
        assert!(error.to_string().contains("secret.yaml"), "{error}");
        let bad = DockerConfig::parse(br#"{"auths": {"r.io": {"auth": "!!"}}}"#, "t").unwrap();
        assert!(
            bad.credentials("r.io")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
    }

    #[test]
    fn docker_config_location() {
        assert_eq!(
            default_docker_config_path(Some("/cfg"), Some("/home/u")),
            Some(PathBuf::from("/cfg/config.json"))
        );
        assert_eq!(
            default_docker_config_path(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(default_docker_config_path(None, None), None);
    }

    #[test]
    fn registry_keys_are_normalised() {
        assert_eq!(registry_of_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(
            registry_of_key("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_of_key("reg.example.com"), "reg.example.com");
    }
}
