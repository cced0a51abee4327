//! Shared by the `api_*` tests: a simulated API server on 127.0.0.1:0 with a kubeconfig, and kubectl.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::{Value, json};
use supsvc_sim::api::{ApiOptions, ApiServer, Client, UserInfo, WriteOptions, authz, gvr};
use supsvc_sim::http::{ServeOptions, ServerHandle, serve};
use supsvc_sim::kubeconfig::{self, KubeconfigUser};

pub const ADMIN_TOKEN: &str = "admin-token";
pub const VIEWER_TOKEN: &str = "viewer-token";

pub struct Sim {
    pub api: Arc<ApiServer>,
    pub handle: ServerHandle,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Sim {
    pub async fn start() -> Sim {
        Self::start_with(ApiOptions::default()).await
    }

    pub async fn start_with(options: ApiOptions) -> Sim {
        let api = ApiServer::with_options(options);
        api.add_token(ADMIN_TOKEN, UserInfo::admin());
        api.add_token(VIEWER_TOKEN, authz::viewer("viewer"));
        let handle = serve(Arc::clone(&api), ServeOptions::default())
            .await
            .expect("serve");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        let users = [
            KubeconfigUser {
                name: "admin".into(),
                token: ADMIN_TOKEN.into(),
            },
            KubeconfigUser {
                name: "viewer".into(),
                token: VIEWER_TOKEN.into(),
            },
        ];
        kubeconfig::write(&path, &handle.url, &handle.ca_pem, &users, None).expect("kubeconfig");
        let sim = Sim {
            api,
            handle,
            dir,
            kubeconfig: path,
        };
        sim.admin()
            .create(
                gvr::NAMESPACES,
                None,
                json!({"metadata": {"name": "default"}}),
                &WriteOptions::default(),
            )
            .await
            .expect("default ns");
        sim
    }

    pub fn admin(&self) -> Client {
        self.api.client(UserInfo::admin())
    }

    pub async fn namespace(&self, name: &str) {
        self.admin()
            .create(
                gvr::NAMESPACES,
                None,
                json!({"metadata": {"name": name}}),
                &WriteOptions::default(),
            )
            .await
            .expect("namespace");
    }

    /// Runs `kubectl` (the dispatcher, or `KUBECTL` if set) against the simulator, off the async runtime.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_env(args, &[]).await
    }

    pub async fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.env("HOME", self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
            .await
            .expect("join")
    }

    pub async fn kubectl_bin(&self, bin: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.env("HOME", self.dir.path());
        tokio::task::spawn_blocking(move || cmd.output().expect("kubectl runs"))
            .await
            .expect("join")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "kubectl failed: {}\n{}",
        stderr(o),
        stdout(o)
    );
    stdout(o)
}

pub fn pkgi(name: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "packaging.carvel.dev/v1alpha1",
        "kind": "PackageInstall",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"serviceAccountName": "sa", "packageRef": {"refName": "tkg.vsphere.vmware.com", "versionSelection": {"constraints": "3.5.1"}}}
    })
}

/// A kube-rs client from the written kubeconfig, as `context`.
pub async fn kube_client(sim: &Sim, context: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&sim.kubeconfig).expect("read kubeconfig");
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// The API error of a kube-rs call.
pub fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn pkgi_resource() -> kube::api::ApiResource {
    let gvk =
        kube::api::GroupVersionKind::gvk("packaging.carvel.dev", "v1alpha1", "PackageInstall");
    kube::api::ApiResource::from_gvk_with_plural(&gvk, "packageinstalls")
}
