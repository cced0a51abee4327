//! The loading rules as tables: the pure decisions, and the whole load compared with the real kubectl's
//! `kubectl config view --minify --raw -o json` on the same files.

use super::*;
use serde_json::{Value, json};
use std::process::Command;

fn kc(yaml: &str) -> Kubeconfig {
    Kubeconfig::from_yaml(yaml).unwrap()
}

#[test]
fn precedence_follows_client_go() {
    let home = Some(PathBuf::from("/home/u/.kube/config"));
    let os = |s: &'static str| Some(OsStr::new(s));
    let env = |list: &str, files: &[&str]| Precedence::Env {
        list: list.into(),
        files: files.iter().map(PathBuf::from).collect(),
    };
    let cases = [
        // The flag wins over everything.
        (
            Some(Path::new("/tmp/k")),
            os("/a:/b"),
            Precedence::Explicit("/tmp/k".into()),
        ),
        (None, os("/a:/b"), env("/a:/b", &["/a", "/b"])),
        // Empty entries ignored, duplicates read once (first place kept).
        (None, os(":/a::/b:/a:"), env(":/a::/b:/a:", &["/a", "/b"])),
        // Only separators: still the list (so ~/.kube/config is not read), of no files.
        (None, os(":"), env(":", &[])),
        // Unset or empty: home.
        (None, os(""), Precedence::Home(home.clone())),
        (None, None, Precedence::Home(home.clone())),
        (Some(Path::new("")), None, Precedence::Home(home.clone())),
    ];
    for (flag, env, want) in cases {
        assert_eq!(
            Precedence::choose(flag, env, home.clone()),
            want,
            "{flag:?} {env:?}"
        );
    }
}

#[test]
fn merge_decisions() {
    let a = kc(
        "current-context: ''\nclusters:\n- name: c\n  cluster: {server: https://a}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n",
    );
    let b = kc(
        "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://b, insecure-skip-tls-verify: true}\n- name: d\n  cluster: {server: https://d}\ncontexts:\n- name: x\n  context: {cluster: c, user: u, namespace: nb}\nusers:\n- name: u\n  user: {token: t}\n",
    );
    let dup = kc(
        "clusters:\n- name: c\n  cluster: {server: https://1}\n- name: c\n  cluster: {server: https://2}\n",
    );
    let read = |k: &Kubeconfig| FileRead::Read(Box::new(k.clone()));
    let p = PathBuf::from;

    let m = merge(
        vec![
            (p("/missing"), FileRead::Missing),
            (p("/a"), read(&a)),
            (p("/b"), read(&b)),
        ],
        false,
    )
    .unwrap();
    assert_eq!(m.missing, vec![p("/missing")]);
    assert_eq!(m.read, vec![p("/a"), p("/b")]);
    // An empty current-context does not count: the second file's is used.
    assert_eq!(m.kubeconfig.current_context.as_deref(), Some("x"));
    // Same names: the first file's entry, whole (not even b's insecure-skip-tls-verify is merged in).
    let c = m.kubeconfig.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(
        (c.server.as_deref(), c.insecure_skip_tls_verify),
        (Some("https://a"), None)
    );
    assert_eq!(m.kubeconfig.clusters.len(), 2);
    let ctx = m.kubeconfig.contexts[0].context.as_ref().unwrap();
    assert_eq!(ctx.namespace, None);
    // A user only the second file has.
    assert_eq!(m.kubeconfig.auth_infos[0].name, "u");

    // Two files setting current-context: the first.
    let first = kc("current-context: one\n");
    let m = merge(vec![(p("/1"), read(&first)), (p("/b"), read(&b))], false).unwrap();
    assert_eq!(m.kubeconfig.current_context.as_deref(), Some("one"));

    // Errors.
    assert_eq!(
        merge(vec![(p("/k"), FileRead::Missing)], true).unwrap_err(),
        LoadError::ExplicitMissing(p("/k"))
    );
    assert!(matches!(
        merge(vec![(p("/a"), read(&a)), (p("/bad"), FileRead::Failed("x".into()))], false),
        Err(LoadError::Bad { file, .. }) if file == p("/bad")
    ));
    assert!(matches!(
        merge(vec![(p("/dup"), read(&dup))], false),
        Err(LoadError::Bad { file, why }) if file == p("/dup") && why.contains("\"c\"")
    ));
    // All missing: empty, which sends the caller to the fallbacks.
    let m = merge(vec![(p("/m"), FileRead::Missing)], false).unwrap();
    assert!(m.is_empty());
}

#[test]
fn fallbacks_in_order() {
    let token = |p: &Path| p == Path::new(IN_CLUSTER_TOKEN);
    let admin = |p: &Path| p == Path::new(ADMIN_KUBECONFIG);
    let both = |p: &Path| token(p) || admin(p);
    let none = |_: &Path| false;
    let in_cluster = Some(Fallback::InCluster {
        host: "10.0.0.1".into(),
        port: "443".into(),
    });
    let admin_conf = Some(Fallback::Admin(ADMIN_KUBECONFIG.into()));
    assert_eq!(fallback(Some("10.0.0.1"), Some("443"), both), in_cluster);
    assert_eq!(fallback(Some("10.0.0.1"), Some("443"), token), in_cluster);
    // No token file, or no host/port: not in a pod.
    assert_eq!(fallback(Some("10.0.0.1"), Some("443"), admin), admin_conf);
    assert_eq!(fallback(None, Some("443"), both), admin_conf);
    assert_eq!(fallback(Some(""), Some("443"), both), admin_conf);
    assert_eq!(fallback(None, None, none), None);

    let k = in_cluster_kubeconfig("fd00::1", "6443", Some("ns1".into()));
    let view = minify(&k, None).unwrap();
    assert_eq!(
        view["clusters"][0]["cluster"]["server"],
        "https://[fd00::1]:6443"
    );
    assert_eq!(view["users"][0]["user"]["tokenFile"], IN_CLUSTER_TOKEN);
    assert_eq!(view["contexts"][0]["context"]["namespace"], "ns1");
}

#[test]
fn token_file_wins_when_readable() {
    let mut k = kc(
        "users:\n- name: both\n  user: {token: inline, tokenFile: /ok}\n- name: unreadable\n  user: {token: inline, tokenFile: /gone}\n- name: inline\n  user: {token: inline}\n",
    );
    prefer_token_file(&mut k, |p| p == Path::new("/ok"));
    let token = |i: usize| k.auth_infos[i].auth_info.as_ref().unwrap().token.is_some();
    assert_eq!((token(0), token(1), token(2)), (false, true, true));
}

/// The fields both sides print that decide where and as whom kubectl connects.
fn project(view: &Value) -> Value {
    let pick = |v: &Value, keys: &[&str]| {
        let mut out = serde_json::Map::new();
        for k in keys {
            if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
                out.insert((*k).to_owned(), x.clone());
            }
        }
        Value::Object(out)
    };
    let first = |list: &str, inner: &str, keys: &[&str]| {
        view[list]
            .get(0)
            .map(|e| json!({"name": e["name"], inner: pick(&e[inner], keys)}))
    };
    let user = view["users"].get(0).map(|u| {
        let mut p = pick(
            &u["user"],
            &["token", "tokenFile", "client-certificate", "client-key"],
        );
        if let Some(exec) = u["user"].get("exec") {
            p["exec"] = pick(exec, &["command", "args"]);
        }
        json!({"name": u["name"], "user": p})
    });
    json!({
        "current-context": view["current-context"],
        "context": first("contexts", "context", &["cluster", "user", "namespace"]),
        "cluster": first("clusters", "cluster", &["server", "certificate-authority", "insecure-skip-tls-verify"]),
        "user": user,
    })
}

/// `kubectl config view` prints a file's relative paths as written, while both kubectl's client and ours
/// resolve them against the file's directory. Ours, where absolute and ending in kubectl's relative path,
/// is taken as kubectl's for the comparison.
fn as_kubectl_prints_paths(kubectl: &Value, ours: &Value) -> Value {
    let mut out = ours.clone();
    for pointer in [
        "/cluster/cluster/certificate-authority",
        "/user/user/tokenFile",
        "/user/user/client-certificate",
        "/user/user/client-key",
        "/user/user/exec/command",
    ] {
        if let (Some(Value::String(k)), Some(Value::String(o))) =
            (kubectl.pointer(pointer), ours.pointer(pointer))
            && Path::new(o).is_absolute()
            && Path::new(k).is_relative()
            && o.ends_with(&format!("/{}", k.trim_start_matches("./")))
        {
            *out.pointer_mut(pointer).unwrap() = Value::String(k.clone());
        }
    }
    out
}

fn kubectl_view(dir: &Path, kubeconfig_env: &str) -> Result<Value, String> {
    let out = Command::new("kubectl")
        .args(["config", "view", "--minify", "--raw", "-o", "json"])
        .env("KUBECONFIG", kubeconfig_env)
        .env("HOME", dir)
        .current_dir(dir)
        .output()
        .expect("kubectl runs (the project's tests need the real kubectl on PATH)");
    if out.status.success() {
        Ok(project(&serde_json::from_slice(&out.stdout).unwrap()))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn our_view(dir: &Path, kubeconfig_env: &str) -> Result<Value, String> {
    let precedence = Precedence::choose(
        None,
        Some(OsStr::new(kubeconfig_env)),
        Some(dir.join(".kube/config")),
    );
    let merged = load_files(&precedence).map_err(|e| format!("{e:?}"))?;
    minify(&merged.kubeconfig, None).map(|v| project(&serde_json::to_value(v).unwrap()))
}

const A: &str = "apiVersion: v1\nkind: Config\ncurrent-context: ctx-a\nclusters:\n- name: shared\n  cluster: {server: 'https://a.example:6443', certificate-authority: ca/a.crt}\n- name: only-a\n  cluster: {server: 'https://only-a.example:6443'}\ncontexts:\n- name: ctx-a\n  context: {cluster: shared, user: user-a, namespace: ns-a}\n- name: ctx-b\n  context: {cluster: shared, user: user-b}\nusers:\n- name: user-a\n  user: {token: token-a}\n";
const B: &str = "apiVersion: v1\nkind: Config\ncurrent-context: ctx-b\nclusters:\n- name: shared\n  cluster: {server: 'https://b.example:6443', insecure-skip-tls-verify: true}\ncontexts:\n- name: ctx-b\n  context: {cluster: only-b, user: user-b, namespace: ns-b}\n- name: ctx-exec\n  context: {cluster: only-b, user: exec-user}\nusers:\n- name: user-b\n  user: {tokenFile: tokens/b}\n- name: exec-user\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/cred, args: [get]}\n";
const NO_CURRENT: &str = "apiVersion: v1\nkind: Config\ncurrent-context: ''\nclusters:\n- name: only-b\n  cluster: {server: 'https://first-only-b.example'}\n";
const EXEC_CURRENT: &str = "apiVersion: v1\nkind: Config\ncurrent-context: ctx-exec\n";
const DUPLICATE: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://1'}\n- name: c\n  cluster: {server: 'https://2'}\n";
const EMPTY: &str = "";
const CURRENT_B: &str = "apiVersion: v1\nkind: Config\ncurrent-context: ctx-b\n";
const ORPHAN: &str = "apiVersion: v1\nkind: Config\ncurrent-context: ctx-o\ncontexts:\n- name: ctx-o\n  context: {cluster: shared, user: nobody}\n";

/// Each case: the KUBECONFIG list (`{d}` is the directory of the files), and what both must resolve:
/// the current context and its cluster's server, or failure.
#[test]
fn loads_as_kubectl_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, text) in [
        ("a", A),
        ("b", B),
        ("no-current", NO_CURRENT),
        ("exec-current", EXEC_CURRENT),
        ("dup", DUPLICATE),
        ("empty", EMPTY),
        ("current-b", CURRENT_B),
        ("orphan", ORPHAN),
    ] {
        std::fs::write(d.join(name), text).unwrap();
    }
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/b"), B).unwrap();
    let ok = |ctx: &str, server: &str| Some((ctx.to_owned(), server.to_owned()));
    /// (what, KUBECONFIG, the context and server kubectl resolves, or None when it refuses)
    type Case<'a> = (&'a str, &'a str, Option<(String, String)>);
    let cases: &[Case] = &[
        (
            "missing first file",
            "{d}/nope:{d}/a",
            ok("ctx-a", "https://a.example:6443"),
        ),
        (
            "two files set current-context: the first",
            "{d}/a:{d}/b",
            ok("ctx-a", "https://a.example:6443"),
        ),
        (
            "a context of the first file wins whole; its user is only in the second",
            "{d}/current-b:{d}/a:{d}/sub/b",
            ok("ctx-b", "https://a.example:6443"),
        ),
        (
            "a context's cluster from a later file",
            "{d}/b:{d}/a:{d}/no-current",
            ok("ctx-b", "https://first-only-b.example"),
        ),
        (
            "an empty current-context does not hide the next",
            "{d}/no-current:{d}/a",
            ok("ctx-a", "https://a.example:6443"),
        ),
        (
            "relative paths resolved against their own file",
            "{d}/a:{d}/sub/b",
            ok("ctx-a", "https://a.example:6443"),
        ),
        (
            "empty entries and duplicates",
            "::{d}/nope::{d}/a:{d}/a::{d}/b:",
            ok("ctx-a", "https://a.example:6443"),
        ),
        (
            "exec user, relative command resolved",
            "{d}/exec-current:{d}/sub/b:{d}/no-current",
            ok("ctx-exec", "https://first-only-b.example"),
        ),
        (
            "an empty file is an empty config",
            "{d}/empty:{d}/a",
            ok("ctx-a", "https://a.example:6443"),
        ),
        ("all missing: no current context", "{d}/nope:{d}/gone", None),
        ("a file naming a cluster twice fails", "{d}/a:{d}/dup", None),
        ("a directory is not a kubeconfig", "{d}/sub:{d}/a", None),
        (
            "a context whose user no file defines",
            "{d}/orphan:{d}/a",
            None,
        ),
    ];
    for (what, list, want) in cases {
        let list = list.replace("{d}", &d.display().to_string());
        let kubectl = kubectl_view(d, &list);
        let ours = our_view(d, &list);
        match (want, &kubectl, &ours) {
            (Some((ctx, server)), Ok(k), Ok(o)) => {
                assert_eq!(k, &as_kubectl_prints_paths(k, o), "{what}: kubectl vs ours");
                assert_eq!(
                    (
                        k["current-context"].as_str(),
                        k["cluster"]["cluster"]["server"].as_str()
                    ),
                    (Some(ctx.as_str()), Some(server.as_str())),
                    "{what}"
                );
            }
            (None, Err(_), Err(_)) => {}
            _ => panic!("{what}: want {want:?}\nkubectl: {kubectl:?}\nours:    {ours:?}"),
        }
    }
    // Relative paths are resolved against the directory of the file that holds them.
    let view = |list: &str| our_view(d, &list.replace("{d}", &d.display().to_string())).unwrap();
    let user = view("{d}/current-b:{d}/a:{d}/sub/b");
    assert_eq!(
        user["user"]["user"]["tokenFile"],
        d.join("sub/tokens/b").display().to_string()
    );
    assert_eq!(
        user["cluster"]["cluster"]["certificate-authority"],
        d.join("ca/a.crt").display().to_string()
    );
    let exec = view("{d}/exec-current:{d}/sub/b:{d}/no-current");
    assert_eq!(
        Path::new(exec["user"]["user"]["exec"]["command"].as_str().unwrap()),
        d.join("sub/bin/cred")
    );
}

#[test]
fn explicit_kubeconfig_must_exist_as_for_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a"), A).unwrap();
    let missing = d.join("nope");
    // kubectl checks the file before it talks to any server.
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&missing)
        .args(["get", "namespaces"])
        .env("KUBECONFIG", d.join("a"))
        .env("HOME", d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such file or directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let precedence = Precedence::choose(Some(&missing), Some(OsStr::new("/x")), None);
    assert_eq!(
        load_files(&precedence).unwrap_err(),
        LoadError::ExplicitMissing(missing)
    );
    // An existing one is read alone, KUBECONFIG notwithstanding.
    let merged = load_files(&Precedence::choose(
        Some(&d.join("a")),
        Some(OsStr::new("/x")),
        None,
    ))
    .unwrap();
    assert_eq!(merged.kubeconfig.current_context.as_deref(), Some("ctx-a"));
}
