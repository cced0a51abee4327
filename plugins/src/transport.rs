//! The HTTP client under kube: HTTP/2 when the server offers it in ALPN, as kube-apiserver does.
//!
//! kube's own stack (`Client::try_from`) speaks HTTP/1.1 only, so every request in flight needs a TLS
//! connection of its own: labelling 100 children at once costs 100 handshakes. Over HTTP/2 they are
//! streams of one connection (what `kubectl` and client-go do). The stack below is kube's, built from
//! kube's own layers (base URI, authentication, impersonation headers) and timeouts; only the
//! connector offers `h2` besides `http/1.1`, and the hyper client takes whichever the server picks.
//! Upgrades (exec, attach, port-forward) need HTTP/1.1; supsvc makes none.

use http::header::{HeaderValue, USER_AGENT};
use hyper_rustls::{FixedServerNameResolver, HttpsConnectorBuilder};
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::{Body, ClientBuilder, ConfigExt, RustlsTlsError};
use kube::{Client, Config};
use tower::{BoxError, ServiceBuilder};

/// Set (to anything but `0` or empty) to speak HTTP/1.1 only, through kube's own client: for a proxy
/// or load balancer in front of the Supervisor that mishandles HTTP/2 (as `GODEBUG=http2client=0`
/// does for kubectl), and to compare the two in BENCHMARKS.md.
pub const DISABLE_HTTP2: &str = "SUPSVC_DISABLE_HTTP2";

/// `kubectl-supsvc/<version>`.
pub const USER_AGENT_VALUE: &str = concat!("kubectl-supsvc/", env!("CARGO_PKG_VERSION"));

/// A client for `config` that negotiates HTTP/2 or HTTP/1.1. Behind a proxy (`proxy-url` in the
/// kubeconfig) it is kube's own client, which knows how to tunnel. kube's retry layer is left out:
/// supsvc retries itself, bounded by its own deadlines (`config.default_retry` is off).
pub fn client(mut config: Config) -> Result<Client, kube::Error> {
    // As kubectl does, say who is asking: API server audit logs record it.
    config
        .headers
        .push((USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)));
    if config.proxy_url.is_some() || http2_disabled(std::env::var_os(DISABLE_HTTP2)) {
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let mut https = HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = name
            .clone()
            .try_into()
            .map_err(|e| kube::Error::RustlsTls(RustlsTlsError::InvalidServerName(e)))?;
        https = https.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    let https = https.enable_all_versions().wrap_connector(http);
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    // One HTTP/2 connection carries every request: a read timeout must count from the last request
    // sent, not from when the connection last had something to read.
    connector
        .set_reset_reader_on_write(config.reset_reader_on_write || config.read_timeout.is_some());
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, Body>(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
}

fn http2_disabled(setting: Option<std::ffi::OsString>) -> bool {
    setting.is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use supsvc_sim::api::{ApiServer, UserInfo};
    use supsvc_sim::http::{ServeOptions, ServerHandle, serve};
    use supsvc_sim::kubeconfig::{KubeconfigUser, render};

    use super::*;

    /// A simulated API server (serving while the handle lives) and a kube config for it.
    async fn simulated() -> (Arc<ApiServer>, ServerHandle, Config) {
        let api = ApiServer::new();
        api.add_token("t", UserInfo::admin());
        let server = serve(Arc::clone(&api), ServeOptions::default())
            .await
            .unwrap();
        let users = [KubeconfigUser {
            name: "admin".into(),
            token: "t".into(),
        }];
        let yaml = render(&server.url, &server.ca_pem, &users, None).unwrap();
        let kubeconfig = Kubeconfig::from_yaml(&yaml).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        (api, server, config)
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_http2_connection() {
        let (api, _server, config) = simulated().await;
        let client = client(config).unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        // The first request opens the connection; 100 at once then ride on it as HTTP/2 streams.
        assert!(cms.get_opt("warm-up").await.unwrap().is_none());
        let names: Vec<String> = (0..100).map(|i| format!("cm-{i}")).collect();
        let answers =
            futures::future::join_all(names.iter().map(|n| cms.get_opt(n.as_str()))).await;
        assert!(answers.iter().all(|a| matches!(a, Ok(None))));

        let events = api.audit().events();
        assert_eq!(events.len(), 101);
        let connections: BTreeSet<u64> = events.iter().map(|e| e.connection).collect();
        assert_eq!(connections.len(), 1, "{connections:?}");
        assert!(events.iter().all(|e| e.http_version == "HTTP/2.0"));
        assert!(events.iter().all(|e| e.user_agent == USER_AGENT_VALUE));
    }

    #[tokio::test]
    async fn kubes_own_client_needs_a_connection_per_concurrent_request() {
        // The reason for this module: with kube's HTTP/1.1 stack the same burst opens many connections.
        let (api, _server, config) = simulated().await;
        let client = Client::try_from(config).unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        assert!(cms.get_opt("warm-up").await.unwrap().is_none());
        let names: Vec<String> = (0..20).map(|i| format!("cm-{i}")).collect();
        futures::future::join_all(names.iter().map(|n| cms.get_opt(n.as_str()))).await;
        let events = api.audit().events();
        let connections: BTreeSet<u64> = events.iter().map(|e| e.connection).collect();
        assert!(connections.len() > 5, "{connections:?}");
        assert!(events.iter().all(|e| e.http_version == "HTTP/1.1"));
    }

    #[test]
    fn http2_is_disabled_by_any_setting_but_0() {
        assert!(!http2_disabled(None));
        assert!(!http2_disabled(Some("".into())));
        assert!(!http2_disabled(Some("0".into())));
        assert!(http2_disabled(Some("1".into())));
        assert!(http2_disabled(Some("true".into())));
    }

    #[test]
    fn a_bad_tls_server_name_is_a_kube_error() {
        let mut config = Config::new("https://127.0.0.1:1".parse().unwrap());
        config.tls_server_name = Some("not a name".into());
        assert!(matches!(client(config), Err(kube::Error::RustlsTls(_))));
    }
}
