//! Workload clusters: the TKG clusters of a scenario that have an API server of their own, in the same
//! process as the simulated Supervisor.
//!
//! Each gets its own [`ApiServer`] on its own port and CA, with the controllers a cluster needs for
//! draining (the workloads controller's status, the disruption controller, `pods/eviction`), and its
//! admin kubeconfig written on the Supervisor where Cluster API writes it: the Secret
//! `<cluster>-kubeconfig` in the cluster's vSphere Namespace, type `cluster.x-k8s.io/secret`, label
//! `cluster.x-k8s.io/cluster-name`, the kubeconfig under the key `value` (cluster-api
//! `util/kubeconfig/kubeconfig.go`, `GenerateSecretWithOwner`). The kubeconfig's names follow the same
//! file: cluster `<cluster>`, user `<cluster>-admin`, context `<cluster>-admin@<cluster>`.

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::api::{ApiServer, Client, UserInfo};
use crate::http::ServerHandle;
use crate::scenario::WorkloadClusterSpec;

/// The Secret's key that holds the kubeconfig (cluster-api `secret.KubeconfigDataName`).
pub const KUBECONFIG_KEY: &str = "value";
/// The Secret's type (cluster-api `clusterv1.ClusterSecretType`).
pub const SECRET_TYPE: &str = "cluster.x-k8s.io/secret";
/// The label naming the Secret's cluster (cluster-api `clusterv1.ClusterNameLabel`).
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";

/// A running workload cluster.
pub struct WorkloadCluster {
    /// The vSphere Namespace of its Cluster / TanzuKubernetesCluster on the Supervisor.
    pub namespace: String,
    /// The cluster's name.
    pub name: String,
    api: Arc<ApiServer>,
    server: ServerHandle,
    kubeconfig: String,
}

impl WorkloadCluster {
    /// Starts the cluster's API server, creates its objects (in order, as the scenario's are) and
    /// starts its controllers behind `gate`, so holding the Supervisor's controllers holds these too.
    ///
    /// # Errors
    /// The server cannot listen, or an object is of an unknown kind or is refused.
    pub async fn start(
        spec: &WorkloadClusterSpec,
        gate: Arc<tokio::sync::RwLock<()>>,
    ) -> anyhow::Result<WorkloadCluster> {
        let api = ApiServer::new();
        for requested in &spec.requested_deprecated_apis {
            api.record_deprecated_request(requested.clone());
        }
        let token = crate::simulator::random_token();
        api.add_token(&token, UserInfo::admin());
        let server = crate::http::serve(Arc::clone(&api), crate::http::ServeOptions::default())
            .await
            .with_context(|| format!("starting workload cluster {}'s API server", spec.name))?;
        let kubeconfig = render_kubeconfig(&spec.name, &server.url, &server.ca_pem, &token)?;
        let admin = api.client(UserInfo::admin());
        for object in &spec.objects {
            crate::simulator::create_object(&admin, object)
                .await
                .with_context(|| format!("in workload cluster {}/{}", spec.namespace, spec.name))?;
        }
        crate::workloads::start(Arc::clone(&api), Arc::clone(&gate));
        crate::disruption::start(Arc::clone(&api), gate);
        Ok(WorkloadCluster {
            namespace: spec.namespace.clone(),
            name: spec.name.clone(),
            api,
            server,
            kubeconfig,
        })
    }

    /// The cluster's API server, in process.
    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    /// An in-process client acting as the cluster's administrator.
    pub fn admin(&self) -> Client {
        self.api.client(UserInfo::admin())
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The admin kubeconfig (YAML), as the Secret holds it.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// The Secret Cluster API keeps on the Supervisor for this cluster.
    pub fn kubeconfig_secret(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": format!("{}-kubeconfig", self.name),
                "namespace": self.namespace,
                "labels": {CLUSTER_NAME_LABEL: self.name},
            },
            "type": SECRET_TYPE,
            "data": {
                KUBECONFIG_KEY: base64::engine::general_purpose::STANDARD.encode(&self.kubeconfig),
            },
        })
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.server.shutdown();
    }
}

/// Cluster API's admin kubeconfig for a cluster (`util/kubeconfig.New`): one cluster, one user with
/// (here) a bearer token instead of a client certificate, one context, current.
fn render_kubeconfig(
    cluster: &str,
    url: &str,
    ca_pem: &str,
    token: &str,
) -> anyhow::Result<String> {
    let user = format!("{cluster}-admin");
    let context = format!("{user}@{cluster}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": {
            "server": url,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    });
    Ok(serde_saphyr::to_string(&config)?)
}
