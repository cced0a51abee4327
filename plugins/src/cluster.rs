//! Which cluster, as whom: the kubeconfig as kubectl finds it, the flags applied, a client.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cli::Global;
use crate::error::{Failure, Result, chain};
use crate::kubeconfig::{self, ADMIN_KUBECONFIG, Fallback, LoadError, Precedence};

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

fn bad_kubeconfig(source: &str, err: &dyn std::error::Error) -> Failure {
    Failure::new(
        format!("cannot use the kubeconfig {source}: {}", chain(err)),
        "check the file (`kubectl config view`), or pass another one with --kubeconfig",
    )
}

/// The kubeconfig as read, and where from.
pub struct Loaded {
    kubeconfig: Kubeconfig,
    /// For messages: the file, the `KUBECONFIG` list, `in-cluster ...`.
    source: String,
}

/// Reads the kubeconfig as kubectl does (the rules are in [`crate::kubeconfig`]): `--kubeconfig`, else the
/// files of `KUBECONFIG` (missing ones skipped), else `~/.kube/config`; when they give nothing, the pod's
/// service account, then `/etc/kubernetes/admin.conf`.
pub fn load(global: &Global) -> Result<Loaded> {
    let home = std::env::home_dir().map(|h| h.join(".kube").join("config"));
    let env = std::env::var_os("KUBECONFIG");
    let precedence = Precedence::choose(global.kubeconfig.as_deref(), env.as_deref(), home);
    let merged = kubeconfig::load_files(&precedence).map_err(|e| match e {
        LoadError::ExplicitMissing(p) => Failure::new(
            format!("the kubeconfig {} given with --kubeconfig does not exist", p.display()),
            "check the path (kubectl refuses it too); without --kubeconfig, KUBECONFIG or ~/.kube/config is read",
        ),
        LoadError::Bad { file, why } => Failure::new(
            format!("cannot use the kubeconfig {}: {why}", file.display()),
            "fix or remove the file (`kubectl config view` shows the same error), or pass another one with --kubeconfig",
        ),
    })?;
    let explicit = matches!(precedence, Precedence::Explicit(_));
    let (mut config, source) = if explicit || !merged.is_empty() {
        (merged.kubeconfig, precedence.describe())
    } else {
        let var = |k: &str| std::env::var(k).ok();
        match kubeconfig::fallback(
            var("KUBERNETES_SERVICE_HOST").as_deref(),
            var("KUBERNETES_SERVICE_PORT").as_deref(),
            Path::exists,
        ) {
            Some(Fallback::InCluster { host, port }) => {
                let namespace = std::fs::read_to_string(kubeconfig::IN_CLUSTER_NAMESPACE).ok();
                (
                    kubeconfig::in_cluster_kubeconfig(&host, &port, namespace),
                    "in-cluster (the pod's service account)".to_owned(),
                )
            }
            Some(Fallback::Admin(path)) => {
                let source = path.display().to_string();
                let config =
                    Kubeconfig::read_from(&path).map_err(|e| bad_kubeconfig(&source, &e))?;
                (config, source)
            }
            None => {
                let looked = match &precedence {
                    Precedence::Env { list, .. } => format!("no file of KUBECONFIG={list} exists"),
                    _ => "KUBECONFIG unset, no ~/.kube/config".to_owned(),
                };
                return Err(Failure::new(
                    format!(
                        "no kubeconfig found: none given, {looked}, not in a pod and no {ADMIN_KUBECONFIG}"
                    ),
                    "pass --kubeconfig PATH, or log in first (`kubectl vsphere login --server <supervisor>`)",
                ));
            }
        }
    };
    kubeconfig::prefer_token_file(&mut config, |p| std::fs::File::open(p).is_ok());
    Ok(Loaded {
        kubeconfig: config,
        source,
    })
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
                format!("the kubeconfig {} has no current context", self.source),
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
                    source.clone()
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
            source: source.clone(),
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
