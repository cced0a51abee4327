//! Which kubeconfig files kubectl reads and how it merges them, as decisions apart from the file system.
//!
//! The rules are client-go's (`k8s.io/client-go/tools/clientcmd/loader.go`, `ClientConfigLoadingRules.Load`
//! and `NewDefaultClientConfigLoadingRules`; `merged_client_builder.go` for the in-cluster fallback):
//!
//! - `--kubeconfig FILE` is the only file read, and it must exist (kubectl: `stat FILE: no such file`);
//! - otherwise a non-empty `KUBECONFIG` is a list (`:`-separated on Unix): duplicates are read once, empty
//!   entries are ignored, **missing files are skipped**, any other read or parse error fails;
//! - otherwise `~/.kube/config`, when it exists;
//! - the first file to set a map key (a cluster, user or context name) wins, whole: a second file's entry of
//!   the same name is discarded even where it sets fields the first does not; `current-context` comes from
//!   the first file that sets a non-empty one;
//! - a file that names one cluster, user or context twice is refused (client-go's v1 conversion:
//!   `duplicate name "x" in list`);
//! - relative paths in a file are resolved against its directory (kube's `Kubeconfig::read_from` does it as
//!   client-go's `ResolveLocalPaths` does);
//! - a user with both `token` and `tokenFile` authenticates with the file when it can be read
//!   (client-go `rest.Config.BearerTokenFile`: "takes precedence over BearerToken"; kube prefers the inline
//!   token, so [`prefer_token_file`] drops it);
//! - when nothing usable was found (no cluster, user or context at all), the in-cluster service account
//!   (`KUBERNETES_SERVICE_HOST`/`_PORT` and its token file) is used, and, last, supsvc's own fallback: a
//!   Supervisor control plane VM's `/etc/kubernetes/admin.conf`.
//!
//! kube's `Kubeconfig::read`/`from_env` differ (it fails on a missing file of `KUBECONFIG` and lets an empty
//! `current-context: ""` of the first file hide the second's), hence this module; it still uses kube to
//! read each single file.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, KubeconfigError, NamedAuthInfo, NamedCluster,
    NamedContext,
};

/// The standard admin kubeconfig of a Supervisor control plane VM.
pub const ADMIN_KUBECONFIG: &str = "/etc/kubernetes/admin.conf";
/// The service account token a pod is given (client-go `rest.InClusterConfig`).
pub const IN_CLUSTER_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The cluster CA a pod is given.
pub const IN_CLUSTER_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// The namespace a pod runs in.
pub const IN_CLUSTER_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// The context name supsvc gives the in-cluster configuration.
pub const IN_CLUSTER_CONTEXT: &str = "in-cluster";

/// The files kubectl would read, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precedence {
    /// `--kubeconfig`: one file that must exist.
    Explicit(PathBuf),
    /// A non-empty `KUBECONFIG`: the list as written, and the files to read (deduplicated, no empty entries).
    Env { list: String, files: Vec<PathBuf> },
    /// `~/.kube/config` (read when it exists), or no home directory at all.
    Home(Option<PathBuf>),
}

impl Precedence {
    /// client-go's choice: the flag, else a non-empty `KUBECONFIG` (even one of only separators), else home.
    pub fn choose(flag: Option<&Path>, env: Option<&OsStr>, home: Option<PathBuf>) -> Precedence {
        if let Some(p) = flag.filter(|p| !p.as_os_str().is_empty()) {
            return Precedence::Explicit(p.to_owned());
        }
        match env.filter(|e| !e.is_empty()) {
            Some(list) => {
                let mut seen = BTreeSet::new();
                let files = std::env::split_paths(list)
                    .filter(|p| !p.as_os_str().is_empty())
                    .filter(|p| seen.insert(p.clone()))
                    .collect();
                Precedence::Env {
                    list: list.to_string_lossy().into_owned(),
                    files,
                }
            }
            None => Precedence::Home(home),
        }
    }

    /// The files to read, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Precedence::Explicit(p) => vec![p.clone()],
            Precedence::Env { files, .. } => files.clone(),
            Precedence::Home(h) => h.iter().cloned().collect(),
        }
    }

    /// For messages: `--kubeconfig /x`, `KUBECONFIG=/a:/b`, `~/.kube/config`.
    pub fn describe(&self) -> String {
        match self {
            Precedence::Explicit(p) => p.display().to_string(),
            Precedence::Env { list, .. } => format!("KUBECONFIG={list}"),
            Precedence::Home(Some(p)) => p.display().to_string(),
            Precedence::Home(None) => "~/.kube/config (no home directory)".into(),
        }
    }
}

/// What reading one file of the list gave.
#[derive(Debug, Clone)]
pub enum FileRead {
    /// It does not exist: skipped (an explicit `--kubeconfig` excepted).
    Missing,
    Read(Box<Kubeconfig>),
    /// Unreadable or not a kubeconfig: the load fails with this message.
    Failed(String),
}

/// Reads one file with kube (relative paths resolved against the file's directory).
pub fn read_file(path: &Path) -> FileRead {
    match Kubeconfig::read_from(path) {
        Ok(k) => FileRead::Read(Box::new(k)),
        Err(KubeconfigError::ReadConfig(e, _)) if e.kind() == std::io::ErrorKind::NotFound => {
            FileRead::Missing
        }
        Err(e) => FileRead::Failed(crate::error::chain(&e)),
    }
}

/// Reads the files of `precedence` and merges them ([`merge`]).
///
/// # Errors
/// As [`merge`].
pub fn load_files(precedence: &Precedence) -> Result<Merged, LoadError> {
    let files = precedence
        .files()
        .into_iter()
        .map(|f| {
            let read = read_file(&f);
            (f, read)
        })
        .collect();
    merge(files, matches!(precedence, Precedence::Explicit(_)))
}

/// Why the files could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// `--kubeconfig FILE` and FILE does not exist.
    ExplicitMissing(PathBuf),
    /// A file exists but cannot be used (kubectl: `error loading config file "FILE": ...`).
    Bad { file: PathBuf, why: String },
}

/// The merged kubeconfig and which files it came from.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub kubeconfig: Kubeconfig,
    /// The files read, in order.
    pub read: Vec<PathBuf>,
    /// The files of the list that do not exist (skipped).
    pub missing: Vec<PathBuf>,
}

impl Merged {
    /// Nothing usable: no cluster, user or context (client-go then tries the in-cluster configuration).
    pub fn is_empty(&self) -> bool {
        let k = &self.kubeconfig;
        k.clusters.is_empty() && k.auth_infos.is_empty() && k.contexts.is_empty()
    }
}

/// The first name used twice in one list, if any.
fn duplicate<'a>(names: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    let mut seen = BTreeSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

/// client-go's merge of the files read, in precedence order (see the module docs for the rules).
///
/// # Errors
/// [`LoadError::ExplicitMissing`] when `explicit` and the file is missing; [`LoadError::Bad`] for the first
/// file that failed to read or names a cluster, user or context twice.
pub fn merge(files: Vec<(PathBuf, FileRead)>, explicit: bool) -> Result<Merged, LoadError> {
    let mut merged = Merged::default();
    let mut clusters = BTreeSet::new();
    let mut users = BTreeSet::new();
    let mut contexts = BTreeSet::new();
    for (file, read) in files {
        let next = match read {
            FileRead::Missing if explicit => return Err(LoadError::ExplicitMissing(file)),
            FileRead::Missing => {
                merged.missing.push(file);
                continue;
            }
            FileRead::Failed(why) => return Err(LoadError::Bad { file, why }),
            FileRead::Read(k) => *k,
        };
        let dup = duplicate(next.clusters.iter().map(|c| &c.name))
            .map(|n| ("cluster", n))
            .or_else(|| duplicate(next.auth_infos.iter().map(|u| &u.name)).map(|n| ("user", n)))
            .or_else(|| duplicate(next.contexts.iter().map(|c| &c.name)).map(|n| ("context", n)));
        if let Some((what, name)) = dup {
            return Err(LoadError::Bad {
                why: format!("the {what} name \"{name}\" is used twice in the file"),
                file,
            });
        }
        let k = &mut merged.kubeconfig;
        for c in next.clusters {
            if clusters.insert(c.name.clone()) {
                k.clusters.push(c);
            }
        }
        for u in next.auth_infos {
            if users.insert(u.name.clone()) {
                k.auth_infos.push(u);
            }
        }
        for c in next.contexts {
            if contexts.insert(c.name.clone()) {
                k.contexts.push(c);
            }
        }
        if k.current_context.as_deref().unwrap_or_default().is_empty() {
            k.current_context = next.current_context.filter(|c| !c.is_empty());
        }
        if k.preferences.is_none() {
            k.preferences = next.preferences;
        }
        if k.extensions.is_none() {
            k.extensions = next.extensions;
        }
        merged.read.push(file);
    }
    Ok(merged)
}

/// Where the configuration comes from when the files gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The pod's service account.
    InCluster { host: String, port: String },
    /// A Supervisor control plane VM's admin kubeconfig.
    Admin(PathBuf),
}

/// client-go's `inClusterClientConfig.Possible()` (host and port set, token file present), then
/// `/etc/kubernetes/admin.conf` when it exists; `None` when neither.
pub fn fallback(
    host: Option<&str>,
    port: Option<&str>,
    exists: impl Fn(&Path) -> bool,
) -> Option<Fallback> {
    match (
        host.filter(|h| !h.is_empty()),
        port.filter(|p| !p.is_empty()),
    ) {
        (Some(host), Some(port)) if exists(Path::new(IN_CLUSTER_TOKEN)) => {
            return Some(Fallback::InCluster {
                host: host.to_owned(),
                port: port.to_owned(),
            });
        }
        _ => {}
    }
    let admin = PathBuf::from(ADMIN_KUBECONFIG);
    exists(&admin).then_some(Fallback::Admin(admin))
}

/// The in-cluster configuration written as a kubeconfig (context [`IN_CLUSTER_CONTEXT`]), so the rest of
/// the plugin treats it like any other: `https://HOST:PORT` (IPv6 in brackets), the pod's CA, its token
/// file (re-read as it rotates) and, when given, its namespace.
pub fn in_cluster_kubeconfig(host: &str, port: &str, namespace: Option<String>) -> Kubeconfig {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let name = IN_CLUSTER_CONTEXT.to_owned();
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(Cluster {
                server: Some(format!("https://{host}:{port}")),
                certificate_authority: Some(IN_CLUSTER_CA.into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.clone(),
            auth_info: Some(AuthInfo {
                token_file: Some(IN_CLUSTER_TOKEN.into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(Context {
                cluster: name.clone(),
                user: Some(name.clone()),
                namespace: namespace.filter(|n| !n.trim().is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(name),
        ..Default::default()
    }
}

/// kubectl's precedence of `tokenFile` over `token`: drops the inline token of every user whose token file
/// can be read, so kube (which prefers the inline one) authenticates as kubectl does.
pub fn prefer_token_file(kubeconfig: &mut Kubeconfig, readable: impl Fn(&Path) -> bool) {
    for user in kubeconfig.auth_infos.iter_mut() {
        if let Some(auth) = user.auth_info.as_mut()
            && auth.token.is_some()
            && auth
                .token_file
                .as_deref()
                .is_some_and(|f| readable(Path::new(f)))
        {
            auth.token = None;
        }
    }
}

/// `kubectl config view --minify`: the current context (or `context`), its cluster and user, as JSON.
///
/// # Errors
/// No current context, one that is not in the kubeconfig (kubectl: `current-context must exist in order
/// to minify`), or a context whose cluster or user is not (`cannot locate user x`).
#[cfg(test)]
pub fn minify(kubeconfig: &Kubeconfig, context: Option<&str>) -> Result<serde_json::Value, String> {
    let name = context
        .or(kubeconfig.current_context.as_deref())
        .filter(|c| !c.is_empty())
        .ok_or("current-context must exist in order to minify")?;
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("cannot locate context {name}"))?;
    let inner = ctx.context.clone().unwrap_or_default();
    // kubectl's minify fails on a context naming a cluster or user no file defines.
    let cluster: Vec<_> = kubeconfig
        .clusters
        .iter()
        .filter(|c| c.name == inner.cluster)
        .collect();
    if cluster.is_empty() && !inner.cluster.is_empty() {
        return Err(format!("cannot locate cluster {}", inner.cluster));
    }
    let user: Vec<_> = kubeconfig
        .auth_infos
        .iter()
        .filter(|u| Some(&u.name) == inner.user.as_ref())
        .collect();
    if let Some(name) = inner
        .user
        .as_ref()
        .filter(|u| !u.is_empty() && user.is_empty())
    {
        return Err(format!("cannot locate user {name}"));
    }
    Ok(serde_json::json!({
        "current-context": name,
        "contexts": [ctx],
        "clusters": cluster,
        "users": user,
    }))
}

#[cfg(test)]
mod tests;
