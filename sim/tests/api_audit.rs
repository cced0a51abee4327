//! The audit of the HTTP front (what outside clients asked, with the HTTP version and connection), and
//! a dropped connection over HTTP/2 failing every request on it.

mod api_support;

use std::time::Duration;

use api_support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use supsvc_sim::api::{WriteOptions, gvr};
use supsvc_sim::faults::{FaultAction, FaultRule};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_holds_what_outside_clients_asked_and_which_of_it_wrote() {
    let sim = Sim::start().await;
    // In-process writes (controllers, test set-up) are not audited.
    sim.admin()
        .create(
            gvr::CONFIG_MAPS,
            Some("default"),
            json!({"metadata": {"name": "a"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert!(sim.api.audit().events().is_empty());

    ok(&sim
        .kubectl(&["get", "configmap", "a", "-n", "default"])
        .await);
    ok(&sim
        .kubectl(&[
            "label",
            "configmap",
            "a",
            "-n",
            "default",
            "x=1",
            "--dry-run=server",
        ])
        .await);
    let denied = sim
        .kubectl(&[
            "--user",
            "viewer",
            "label",
            "configmap",
            "a",
            "-n",
            "default",
            "x=2",
        ])
        .await;
    assert!(!denied.status.success());
    ok(&sim
        .kubectl(&["label", "configmap", "a", "-n", "default", "x=3"])
        .await);

    let events = sim.api.audit().events();
    let summary: Vec<(&str, Option<&str>, bool, u16)> = events
        .iter()
        .map(|e| (e.verb.as_str(), e.name.as_deref(), e.dry_run, e.code))
        .collect();
    assert_eq!(
        summary,
        // `kubectl label` reads the object first.
        [
            ("get", Some("a"), false, 200),
            ("get", Some("a"), false, 200),
            ("patch", Some("a"), true, 200),
            ("get", Some("a"), false, 200),
            ("patch", Some("a"), false, 403),
            ("get", Some("a"), false, 200),
            ("patch", Some("a"), false, 200),
        ],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(e.resource, "configmaps");
        assert_eq!(e.namespace.as_deref(), Some("default"));
        assert!(e.user_agent.starts_with("kubectl"), "{e:?}");
        // kubectl negotiates HTTP/2 in ALPN, as with a real kube-apiserver.
        assert_eq!(e.http_version, "HTTP/2.0", "{e:?}");
    }
    assert_eq!(events[4].username, "viewer");
    let writes = sim.api.audit().writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0], events[6]);

    // Out of process: GET /_sim/audit, for the admin only.
    let admin = kube_client(&sim, "admin").await;
    let req = http::Request::get("/_sim/audit").body(Vec::new()).unwrap();
    let audit: Value = admin.request(req).await.unwrap();
    assert_eq!(audit["events"][6]["verb"], "patch");
    assert_eq!(audit["events"][6]["httpVersion"], "HTTP/2.0");
    let viewer = kube_client(&sim, "viewer").await;
    let req = http::Request::get("/_sim/audit").body(Vec::new()).unwrap();
    assert_eq!(api_error(viewer.request::<Value>(req).await).code, 403);

    sim.api.audit().clear();
    assert!(sim.api.audit().events().is_empty());
}

/// An HTTP/2-only client trusting the simulator's CA.
fn h2_client(
    sim: &Sim,
) -> HttpClient<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
> {
    let tls = supsvc_sim::tls::client_config(&sim.handle.ca_pem).unwrap();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http2()
        .build();
    HttpClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

fn get(sim: &Sim, path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("{}{path}", sim.handle.url))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_over_http2_closes_its_connection_and_every_stream_on_it() {
    let sim = Sim::start().await;
    let client = h2_client(&sim);
    let watch = client
        .request(get(
            &sim,
            "/api/v1/namespaces/default/configmaps?watch=true",
        ))
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    let mut watch = watch.into_body();
    sim.api
        .faults()
        .add(FaultRule::nth("get", "configmaps", 1, FaultAction::Drop));
    let dropped = client
        .request(get(&sim, "/api/v1/namespaces/default/configmaps/a"))
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    // The watch shared the connection: it ends with it.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match watch.frame().await {
                Some(Ok(_)) => continue,
                other => return other.map(|r| r.map(|_| ())),
            }
        }
    })
    .await
    .expect("the watch ends when its connection is dropped");
    assert!(!matches!(ended, Some(Ok(()))), "{ended:?}");

    let events = sim.api.audit().events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!((events[0].verb.as_str(), events[0].code), ("watch", 200));
    assert_eq!((events[1].verb.as_str(), events[1].code), ("get", 0));
    assert_eq!(events[0].connection, events[1].connection);
    assert!(events.iter().all(|e| e.http_version == "HTTP/2.0"));

    // A new connection serves again.
    let again = client
        .request(get(&sim, "/api/v1/namespaces/default/configmaps"))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let events = sim.api.audit().events();
    assert_ne!(events[2].connection, events[0].connection);
}
