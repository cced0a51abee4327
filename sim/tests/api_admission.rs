//! The admission chain: ValidatingWebhookConfigurations calling a real HTTPS webhook written here.

mod api_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::*;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};
use supsvc_sim::api::{Patch, UserInfo, WriteOptions, gvr};

/// The test webhook's answer to a request, with kube's admission types.
type Decide = Arc<dyn Fn(&AdmissionRequest<DynamicObject>) -> AdmissionResponse + Send + Sync>;

/// A webhook over HTTPS that records every AdmissionReview, reads it with kube's admission types
/// (`kube::core::admission`: the simulator's reviews must decode with them) and answers with
/// `decide(request)` as kube writes an AdmissionReview response.
struct TestWebhook {
    addr: SocketAddr,
    reviews: Arc<Mutex<Vec<Value>>>,
}

impl TestWebhook {
    async fn start(sim: &Sim, delay: Duration, decide: Decide) -> TestWebhook {
        let cert = sim.handle.ca.issue(&["127.0.0.1"]).unwrap();
        let acceptor =
            tokio_rustls::TlsAcceptor::from(supsvc_sim::tls::server_config(&cert).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reviews);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, seen, decide) =
                    (acceptor.clone(), Arc::clone(&seen), Arc::clone(&decide));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, decide) = (Arc::clone(&seen), Arc::clone(&decide));
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let review: Value = serde_json::from_slice(&body).unwrap();
                            seen.lock().unwrap().push(review.clone());
                            let review: AdmissionReview<DynamicObject> =
                                serde_json::from_value(review)
                                    .expect("the review decodes with kube's admission types");
                            let request: AdmissionRequest<DynamicObject> =
                                review.try_into().expect("a review with a request");
                            tokio::time::sleep(delay).await;
                            let answer = decide(&request).into_review();
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                                serde_json::to_vec(&answer).unwrap(),
                            ))))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TestWebhook { addr, reviews }
    }

    fn url(&self) -> String {
        format!("https://{}/validate", self.addr)
    }

    fn reviews(&self) -> Vec<Value> {
        self.reviews.lock().unwrap().clone()
    }
}

fn ca_bundle(sim: &Sim) -> String {
    base64::engine::general_purpose::STANDARD.encode(&sim.handle.ca_pem)
}

async fn register(sim: &Sim, name: &str, url: &str, extra: Value) {
    let mut webhook = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": ca_bundle(sim)},
        "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": ["packaging.carvel.dev"], "apiVersions": ["*"], "resources": ["packageinstalls"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"]
    });
    if let (Value::Object(w), Value::Object(e)) = (&mut webhook, extra) {
        w.extend(e);
    }
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": name}, "webhooks": [webhook]});
    sim.admin()
        .create(
            gvr::VALIDATING_WEBHOOK_CONFIGURATIONS,
            None,
            config,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
}

fn no_pausing() -> Decide {
    Arc::new(|req: &AdmissionRequest<DynamicObject>| {
        let paused = req
            .object
            .as_ref()
            .is_some_and(|o| o.data["spec"]["paused"] == json!(true));
        let response = AdmissionResponse::from(req);
        if paused {
            response.deny("pausing is not allowed here")
        } else {
            let mut response = response;
            response.warnings = Some(vec!["checked by the test webhook".into()]);
            response
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_full_reviews_and_their_denials_reach_kubectl() {
    let sim = Sim::start().await;
    let hook = TestWebhook::start(&sim, Duration::ZERO, no_pausing()).await;
    register(&sim, "no-pausing.example.com", &hook.url(), json!({})).await;

    let file = sim.dir.path().join("p.json");
    std::fs::write(&file, pkgi("p", "default").to_string()).unwrap();
    let out = sim.kubectl(&["apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(
        ok(&out).trim(),
        "packageinstall.packaging.carvel.dev/p created"
    );
    assert!(
        stderr(&out).contains("Warning: checked by the test webhook"),
        "{}",
        stderr(&out)
    );

    let out = sim
        .kubectl(&[
            "patch",
            "pkgi",
            "p",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ])
        .await;
    assert_eq!(
        stderr(&out).trim(),
        "Error from server: admission webhook \"no-pausing.example.com\" denied the request: pausing is not allowed here"
    );
    let stored = sim
        .admin()
        .get(gvr::PACKAGE_INSTALLS, Some("default"), "p")
        .await
        .unwrap();
    assert!(
        stored["spec"].get("paused").is_none(),
        "a denied write is not stored"
    );

    let sa = sim.api.client(UserInfo::service_account("default", "kapp"));
    let labels = Patch::Merge(json!({"metadata": {"labels": {"by": "sa"}}}));
    sa.patch(
        gvr::PACKAGE_INSTALLS,
        Some("default"),
        "p",
        &labels,
        &WriteOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sim.admin()
        .delete(
            gvr::PACKAGE_INSTALLS,
            Some("default"),
            "p",
            &WriteOptions::default(),
        )
        .await
        .unwrap();

    let reviews = hook.reviews();
    let ops: Vec<&str> = reviews
        .iter()
        .map(|r| r["request"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["CREATE", "UPDATE", "UPDATE", "DELETE"]);
    let create = &reviews[0]["request"];
    assert_eq!(reviews[0]["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(
        create["kind"],
        json!({"group": "packaging.carvel.dev", "version": "v1alpha1", "kind": "PackageInstall"})
    );
    assert_eq!(
        create["resource"],
        json!({"group": "packaging.carvel.dev", "version": "v1alpha1", "resource": "packageinstalls"})
    );
    assert_eq!(
        (create["name"].as_str(), create["namespace"].as_str()),
        (Some("p"), Some("default"))
    );
    assert_eq!(create["userInfo"]["username"], "kubernetes-admin");
    assert!(
        create["userInfo"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:masters"))
    );
    assert_eq!(create["oldObject"], Value::Null);
    assert_eq!(
        create["object"]["spec"]["packageRef"]["refName"],
        "tkg.vsphere.vmware.com"
    );
    assert_eq!(create["options"]["kind"], "CreateOptions");
    assert_eq!(create["dryRun"], false);
    let update = &reviews[1]["request"];
    assert!(update["oldObject"]["spec"].get("paused").is_none());
    assert_eq!(update["object"]["spec"]["paused"], true);
    let by_sa = &reviews[2]["request"];
    assert_eq!(
        by_sa["userInfo"]["username"],
        "system:serviceaccount:default:kapp"
    );
    assert_eq!(by_sa["dryRun"], true);
    let delete = &reviews[3]["request"];
    assert_eq!(
        (
            delete["object"].clone(),
            delete["oldObject"]["metadata"]["name"].clone()
        ),
        (Value::Null, json!("p"))
    );
    assert_eq!(delete["options"]["kind"], "DeleteOptions");
    let uids: std::collections::HashSet<&str> = reviews
        .iter()
        .map(|r| r["request"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 4, "every review has its own uid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_fail_and_ignore_are_honoured_when_the_webhook_is_down() {
    let sim = Sim::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("https://{closed}/validate");
    register(
        &sim,
        "down.example.com",
        &url,
        json!({"failurePolicy": "Fail"}),
    )
    .await;
    let w = WriteOptions::default();
    let e = sim
        .admin()
        .create(
            gvr::PACKAGE_INSTALLS,
            Some("default"),
            pkgi("a", "default"),
            &w,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, 500);
    assert!(
        e.message.starts_with(&format!(
            "Internal error occurred: failed calling webhook \"down.example.com\": failed to call webhook: Post \"{url}?timeout=10s\": "
        )),
        "{}",
        e.message
    );
    let file = sim.dir.path().join("a.json");
    std::fs::write(&file, pkgi("a", "default").to_string()).unwrap();
    let out = sim.kubectl(&["create", "-f", file.to_str().unwrap()]).await;
    assert!(
        stderr(&out).starts_with("Error from server (InternalError): error when creating")
            && stderr(&out)
                .contains("Internal error occurred: failed calling webhook \"down.example.com\""),
        "{}",
        stderr(&out)
    );

    sim.admin()
        .delete(
            gvr::VALIDATING_WEBHOOK_CONFIGURATIONS,
            None,
            "down.example.com",
            &w,
        )
        .await
        .unwrap();
    register(
        &sim,
        "down.example.com",
        &url,
        json!({"failurePolicy": "Ignore"}),
    )
    .await;
    sim.admin()
        .create(
            gvr::PACKAGE_INSTALLS,
            Some("default"),
            pkgi("a", "default"),
            &w,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_times_out_after_timeout_seconds() {
    let sim = Sim::start().await;
    let hook = TestWebhook::start(&sim, Duration::from_secs(3), no_pausing()).await;
    register(
        &sim,
        "slow.example.com",
        &hook.url(),
        json!({"timeoutSeconds": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    let e = sim
        .admin()
        .create(
            gvr::PACKAGE_INSTALLS,
            Some("default"),
            pkgi("a", "default"),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(
        e.message
            .contains("failed calling webhook \"slow.example.com\"")
            && e.message.ends_with("context deadline exceeded"),
        "{}",
        e.message
    );
    assert!(e.message.contains("?timeout=1s"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_and_status_rules_decide_which_requests_a_webhook_sees() {
    let sim = Sim::start().await;
    let w = WriteOptions::default();
    sim.admin()
        .create(
            gvr::NAMESPACES,
            None,
            json!({"metadata": {"name": "prod", "labels": {"env": "prod"}}}),
            &w,
        )
        .await
        .unwrap();
    let hook = TestWebhook::start(
        &sim,
        Duration::ZERO,
        Arc::new(|req: &AdmissionRequest<DynamicObject>| AdmissionResponse::from(req)),
    )
    .await;
    register(
        &sim,
        "prod-only.example.com",
        &hook.url(),
        json!({
            "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
            "objectSelector": {"matchLabels": {"watched": "yes"}},
            "rules": [{"operations": ["*"], "apiGroups": ["packaging.carvel.dev"], "apiVersions": ["*"], "resources": ["packageinstalls", "packageinstalls/status"], "scope": "Namespaced"}]
        }),
    )
    .await;
    let mut watched = pkgi("a", "prod");
    watched["metadata"]["labels"] = json!({"watched": "yes"});
    let mut elsewhere = pkgi("a", "default");
    elsewhere["metadata"]["labels"] = json!({"watched": "yes"});
    sim.admin()
        .create(gvr::PACKAGE_INSTALLS, Some("prod"), watched, &w)
        .await
        .unwrap();
    sim.admin()
        .create(
            gvr::PACKAGE_INSTALLS,
            Some("prod"),
            pkgi("unlabelled", "prod"),
            &w,
        )
        .await
        .unwrap();
    sim.admin()
        .create(gvr::PACKAGE_INSTALLS, Some("default"), elsewhere, &w)
        .await
        .unwrap();
    let status = Patch::Merge(json!({"status": {"friendlyDescription": "Reconciling"}}));
    sim.admin()
        .patch_status(gvr::PACKAGE_INSTALLS, Some("prod"), "a", &status, &w)
        .await
        .unwrap();
    let seen: Vec<(String, String, Option<String>)> = hook
        .reviews()
        .iter()
        .map(|r| {
            let q = &r["request"];
            (
                q["operation"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    q["namespace"].as_str().unwrap(),
                    q["name"].as_str().unwrap()
                ),
                q["subResource"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("CREATE".to_string(), "prod/a".to_string(), None),
            (
                "UPDATE".to_string(),
                "prod/a".to_string(),
                Some("status".to_string())
            )
        ]
    );
}
