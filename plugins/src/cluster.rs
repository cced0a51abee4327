//! Which cluster, as whom: the kubeconfig as kubectl finds it, the flags applied, a client.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use crate::cli::Global;
use crate::error::{Failure, Result, chain};

/// The standard admin kubeconfig of a Supervisor control plane VM.
pub const ADMIN_KUBECONFIG: &str = "/etc/kubernetes/admin.conf";

/// A connected cluster and how it was named, for plans and messages.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub context: String,
    pub cluster: String,
    pub server: String,
    /// Where the kubeconfig came from.
    pub source: String,
}

impl Cluster {
    /// `cluster "x" (context "y", https://..., kubeconfig <source>)`.
    pub fn describe(&self) -> String {
        format!(
            "cluster \"{}\" (context \"{}\", {}, kubeconfig {})",
            self.cluster, self.context, self.server, self.source
        )
    }
}

/// Where the kubeconfig is read from, in kubectl's order, plus a Supervisor's admin kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(PathBuf),
    /// `KUBECONFIG`, possibly several files (merged).
    Env(String),
    Home(PathBuf),
    Admin(PathBuf),
}

impl Source {
    /// Picks the source from the flag, the environment and which files exist.
    pub fn choose(
        flag: Option<&Path>,
        env: Option<&str>,
        home: Option<PathBuf>,
        exists: impl Fn(&Path) -> bool,
    ) -> Option<Source> {
        if let Some(p) = flag {
            return Some(Source::Flag(p.to_owned()));
        }
        if let Some(e) = env.filter(|e| !e.trim().is_empty()) {
            return Some(Source::Env(e.to_owned()));
        }
        if let Some(h) = home.filter(|h| exists(h)) {
            return Some(Source::Home(h));
        }
        let admin = PathBuf::from(ADMIN_KUBECONFIG);
        exists(&admin).then_some(Source::Admin(admin))
    }

    fn describe(&self) -> String {
        match self {
            Source::Flag(p) | Source::Home(p) | Source::Admin(p) => p.display().to_string(),
            Source::Env(e) => format!("KUBECONFIG={e}"),
        }
    }

    fn read(&self) -> std::result::Result<Kubeconfig, KubeconfigError> {
        match self {
            Source::Flag(p) | Source::Home(p) | Source::Admin(p) => Kubeconfig::read_from(p),
            // kube merges the files of KUBECONFIG as kubectl does.
            Source::Env(_) => Kubeconfig::read(),
        }
    }
}

fn bad_kubeconfig(source: &Source, err: &dyn std::error::Error) -> Failure {
    Failure::new(
        format!(
            "cannot use the kubeconfig {}: {}",
            source.describe(),
            chain(err)
        ),
        "check the file (`kubectl config view`), or pass another one with --kubeconfig",
    )
}

/// The kubeconfig as read, and where from.
pub struct Loaded {
    kubeconfig: Kubeconfig,
    source: Source,
}

/// Reads the kubeconfig from the flag, `KUBECONFIG`, `~/.kube/config` or `/etc/kubernetes/admin.conf`.
pub fn load(global: &Global) -> Result<Loaded> {
    let home = std::env::home_dir().map(|h| h.join(".kube").join("config"));
    let env = std::env::var("KUBECONFIG").ok();
    let source = Source::choose(global.kubeconfig.as_deref(), env.as_deref(), home, Path::exists).ok_or_else(|| {
        Failure::new(
            "no kubeconfig found: none given, KUBECONFIG unset, no ~/.kube/config and no /etc/kubernetes/admin.conf",
            "pass --kubeconfig PATH, or log in first (`kubectl vsphere login --server <supervisor>`)",
        )
    })?;
    let kubeconfig = source.read().map_err(|e| bad_kubeconfig(&source, &e))?;
    Ok(Loaded { kubeconfig, source })
}

impl Loaded {
    /// Every context of the kubeconfig, in its order.
    pub fn contexts(&self) -> Vec<String> {
        self.kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// The contexts the flags name: `--all-contexts`, every `--context`, else the current one.
    pub fn chosen_contexts(&self, global: &Global, all: bool) -> Result<Vec<String>> {
        if all {
            return Ok(self.contexts());
        }
        if !global.context.is_empty() {
            return Ok(global.context.clone());
        }
        let current = self.kubeconfig.current_context.clone().ok_or_else(|| {
            Failure::usage(
                format!(
                    "the kubeconfig {} has no current context",
                    self.source.describe()
                ),
                "pass --context NAME (`kubectl config get-contexts` lists them)",
            )
        })?;
        Ok(vec![current])
    }

    /// A client for `context`, with the flags applied.
    pub async fn connect(&self, context: &str, global: &Global) -> Result<Cluster> {
        let source = &self.source;
        let kubeconfig = &self.kubeconfig;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let names = self.contexts();
            return Err(Failure::usage(
                format!(
                    "context \"{context}\" is not in the kubeconfig {}",
                    source.describe()
                ),
                format!(
                    "use one of: {}",
                    if names.is_empty() {
                        "(none)".into()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        let cluster_name = global.cluster.clone().unwrap_or_else(|| {
            kubeconfig
                .contexts
                .iter()
                .find(|c| c.name == context)
                .and_then(|c| c.context.as_ref())
                .map(|c| c.cluster.clone())
                .unwrap_or_default()
        });
        let options = KubeConfigOptions {
            context: Some(context.to_owned()),
            cluster: global.cluster.clone(),
            user: global.user.clone(),
        };
        let mut config = Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
            .await
            .map_err(|e| bad_kubeconfig(source, &e))?;
        if let Some(user) = &global.as_user {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !global.as_group.is_empty() {
            config.auth_info.impersonate_groups = Some(global.as_group.clone());
        }
        if let Some(timeout) = global.request_timeout.filter(|t| !t.is_zero()) {
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
        }
        // supsvc retries itself, bounded by its own deadlines (kube's default retries for up to 1000s).
        config.default_retry = false;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        let client = crate::transport::client(config).map_err(|e| bad_kubeconfig(source, &e))?;
        Ok(Cluster {
            client,
            context: context.to_owned(),
            cluster: cluster_name,
            server,
            source: source.describe(),
        })
    }
}

/// Reads the kubeconfig and connects to the one context the flags name.
pub async fn connect(global: &Global) -> Result<Cluster> {
    let loaded = load(global)?;
    let contexts = loaded.chosen_contexts(global, false)?;
    match contexts.as_slice() {
        [one] => loaded.connect(one, global).await,
        _ => Err(Failure::usage(
            "only `fix` works on several contexts at once",
            "pass a single --context for this command",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_source_order() {
        let home = Some(PathBuf::from("/home/u/.kube/config"));
        let all = |_: &Path| true;
        let none = |_: &Path| false;
        let only_admin = |p: &Path| p == Path::new(ADMIN_KUBECONFIG);
        let flag = Path::new("/tmp/k");
        assert_eq!(
            Source::choose(Some(flag), Some("/a:/b"), home.clone(), all),
            Some(Source::Flag(flag.into()))
        );
        assert_eq!(
            Source::choose(None, Some("/a:/b"), home.clone(), all),
            Some(Source::Env("/a:/b".into()))
        );
        assert_eq!(
            Source::choose(None, Some(""), home.clone(), all),
            Some(Source::Home(home.clone().unwrap()))
        );
        assert_eq!(
            Source::choose(None, None, home.clone(), only_admin),
            Some(Source::Admin(ADMIN_KUBECONFIG.into()))
        );
        assert_eq!(Source::choose(None, None, home, none), None);
        assert_eq!(
            Source::choose(None, None, None, only_admin),
            Some(Source::Admin(ADMIN_KUBECONFIG.into()))
        );
    }
}
