//! The simulated vCenter over HTTPS with a real HTTP client (hyper + rustls trusting only its CA):
//! sessions, the version endpoint, the catalog, both install route families, vAPI error bodies, and
//! the join to the Supervisor (a PUT writes the values Secret; config_status follows the PackageInstall).

use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use supsvc_sim::api::gvr;
use supsvc_sim::vcenter::{Release, SESSION_HEADER, Vcenter, VcenterOptions};
use supsvc_sim::{SimOptions, Simulator};

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

const HARBOR: &str = "harbor.tanzu.vmware.com";
const NS: &str = "vmware-system-supervisor-services";

fn client(ca_pem: &str) -> Https {
    let tls = supsvc_sim::tls::client_config(ca_pem).unwrap();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

async fn call(
    c: &Https,
    vc: &Vcenter,
    method: &str,
    path: &str,
    token: Option<&str>,
    basic: Option<(&str, &str)>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", vc.url));
    if let Some(t) = token {
        req = req.header(SESSION_HEADER, t);
    }
    if let Some((u, p)) = basic {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("authorization", format!("Basic {b}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = c.request(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value)
}

async fn started(release: Release) -> (Simulator, Vcenter, Https) {
    let sim = Simulator::start(SimOptions::new("harbor").time_scale(0.001))
        .await
        .unwrap();
    let vc = sim
        .start_vcenter(VcenterOptions {
            release,
            ..Default::default()
        })
        .await
        .unwrap();
    let c = client(&vc.ca_pem);
    (sim, vc, c)
}

async fn login(c: &Https, vc: &Vcenter) -> String {
    let o = vc.options().clone();
    let (status, token) = call(
        c,
        vc,
        "POST",
        "/api/session",
        None,
        Some((&o.username, &o.password)),
        None,
    )
    .await;
    assert_eq!(status, 201);
    token.as_str().unwrap().to_owned()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn sessions_are_required_and_expire() {
    let (_sim, vc, c) = started(Release::V8_0_3).await;
    let unauthenticated = json!({"error_type": "UNAUTHENTICATED", "messages": [{"args": [], "default_message": "Authentication required.", "id": "com.vmware.vapi.endpoint.method.authentication.required"}]});
    // No session, a wrong password: 401 with the vAPI body.
    let (s, b) = call(
        &c,
        &vc,
        "GET",
        "/api/appliance/system/version",
        None,
        None,
        None,
    )
    .await;
    assert_eq!((s, b), (401, unauthenticated.clone()));
    let (s, b) = call(
        &c,
        &vc,
        "POST",
        "/api/session",
        None,
        Some(("administrator@vsphere.local", "wrong")),
        None,
    )
    .await;
    assert_eq!((s, b), (401, unauthenticated.clone()));
    // A session: the token is a bare JSON string.
    let token = login(&c, &vc).await;
    let (s, b) = call(
        &c,
        &vc,
        "GET",
        "/api/appliance/system/version",
        Some(&token),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["version"], "8.0.3.00400");
    assert_eq!(b["product"], "VMware vCenter Server");
    // Expired: 401 again; logging out ends it too.
    vc.expire_sessions();
    let (s, _) = call(&c, &vc, "GET", "/api/session", Some(&token), None, None).await;
    assert_eq!(s, 401);
    let token = login(&c, &vc).await;
    assert_eq!(
        call(&c, &vc, "DELETE", "/api/session", Some(&token), None, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&c, &vc, "GET", "/api/session", Some(&token), None, None)
            .await
            .0,
        401
    );
    // The audit records requests, never the password.
    let lines: Vec<String> = vc.requests().iter().map(|r| r.line()).collect();
    assert_eq!(lines[0], "GET /api/appliance/system/version");
    assert!(!format!("{:?}", vc.requests()).contains("VMware1!"));
}

#[tokio::test]
async fn the_catalog_and_the_cluster_routes_of_8x() {
    let (sim, vc, c) = started(Release::V8_0_3).await;
    let t = login(&c, &vc).await;
    let base = "/api/vcenter/namespace-management";
    let (s, list) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/supervisor-services"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        list,
        json!([{"supervisor_service": HARBOR, "display_name": "harbor", "state": "ACTIVATED"}])
    );
    let (_, info) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/supervisor-services/{HARBOR}"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(info["must_be_installed"], false);
    let (_, versions) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/supervisor-services/{HARBOR}/versions"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(versions[0]["version"], "2.9.1+vmware.1");
    let (s, err) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/supervisor-services/nope.example.com"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(err["error_type"], "NOT_FOUND");
    assert_eq!(err["messages"][0]["args"], json!(["nope.example.com"]));

    // The cluster form: list bare, the record with its stored config (platform key first).
    let cluster = vc.cluster().to_owned();
    assert_eq!(cluster, "domain-c8");
    let installs = format!("{base}/clusters/{cluster}/supervisor-services");
    let (_, list) = call(&c, &vc, "GET", &installs, Some(&t), None, None).await;
    assert_eq!(
        list,
        json!([{"supervisor_service": HARBOR, "desired_version": "2.9.1+vmware.1", "current_version": "2.9.1+vmware.1", "config_status": "CONFIGURED"}])
    );
    let (_, record) = call(
        &c,
        &vc,
        "GET",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        None,
    )
    .await;
    let config = unb64(&record["yaml_service_config"]);
    assert!(
        config.starts_with("namespace: svc-harbor-domain-c8\nhostname: "),
        "{config}"
    );
    assert_eq!(
        record["messages"][0]["details"]["default_message"],
        "Reason: ReconcileSucceeded. Message: Reconcile succeeded."
    );
    // The Supervisor's Secret holds vCenter's copy.
    let secret = sim
        .admin()
        .get(gvr::SECRETS, Some(NS), "svc-harbor.tanzu.vmware.com-values")
        .await
        .unwrap();
    assert_eq!(unb64(&secret["data"]["values.yaml"]), config);
    // No Supervisor routes before 9.0.
    let (s, _) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/supervisors/supervisor-1a2b3c/supervisor-services"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, cl) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/clusters/{cluster}"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert_eq!(cl["api_server_cluster_endpoint"], "127.0.0.1");

    // A PUT of the whole spec writes the Secret; config_status follows the PackageInstall.
    let new = config.replace("size: 55Gi", "size: 60Gi");
    let (s, b) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"version": "2.9.1+vmware.1", "yaml_service_config": b64(&new)})),
    )
    .await;
    assert_eq!((s, b), (204, Value::Null));
    let secret = sim
        .admin()
        .get(gvr::SECRETS, Some(NS), "svc-harbor.tanzu.vmware.com-values")
        .await
        .unwrap();
    assert_eq!(unb64(&secret["data"]["values.yaml"]), new);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = call(
            &c,
            &vc,
            "GET",
            &format!("{installs}/{HARBOR}"),
            Some(&t),
            None,
            None,
        )
        .await;
        if r["config_status"] == "CONFIGURED" {
            break;
        }
        assert_eq!(r["config_status"], "CONFIGURING");
        assert!(Instant::now() < deadline, "still {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pvc = sim
        .admin()
        .get(
            gvr::PERSISTENT_VOLUME_CLAIMS,
            Some("svc-harbor-domain-c8"),
            "harbor-registry",
        )
        .await
        .unwrap();
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "60Gi");

    // Errors as vCenter words them: no version, an unknown version, not YAML.
    let (s, b) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"yaml_service_config": b64("a: 1")})),
    )
    .await;
    assert_eq!(
        (s, b["error_type"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (s, b) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"version": "9.9.9"})),
    )
    .await;
    assert_eq!((s, b["error_type"].as_str()), (404, Some("NOT_FOUND")));
    let (s, b) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"version": "2.9.1+vmware.1", "yaml_service_config": b64("a: [")})),
    )
    .await;
    assert_eq!(
        (s, b["error_type"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    assert_eq!(
        vc.stored_config(HARBOR).unwrap(),
        new,
        "a refused PUT changes nothing"
    );
}

#[tokio::test]
async fn the_supervisor_routes_of_9x_and_a_failed_reconcile() {
    let (_sim, vc, c) = started(Release::V9_1_0).await;
    let t = login(&c, &vc).await;
    let base = "/api/vcenter/namespace-management";
    let (_, summaries) = call(
        &c,
        &vc,
        "GET",
        &format!("{base}/supervisors/summaries"),
        Some(&t),
        None,
        None,
    )
    .await;
    let id = summaries["items"][0]["supervisor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(summaries["items"][0]["info"]["APIEndpoint"], "127.0.0.1");
    let installs = format!("{base}/supervisors/{id}/supervisor-services");
    let (_, list) = call(&c, &vc, "GET", &installs, Some(&t), None, None).await;
    assert_eq!(list["supervisor_services"][0]["supervisor_service"], HARBOR);
    let (_, record) = call(
        &c,
        &vc,
        "GET",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        None,
    )
    .await;
    let config = unb64(&record["yaml_service_config"]);
    // service_config has no place in the Supervisor form.
    let (s, _) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"version": "2.9.1+vmware.1", "service_config": {"a": "b"}})),
    )
    .await;
    assert_eq!(s, 400);
    // Growing the database volume changes a StatefulSet field: kapp fails, vCenter reports ERROR.
    let bad = config.replace("size: 2Gi", "size: 3Gi");
    let (s, _) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"version": "2.9.1+vmware.1", "yaml_service_config": b64(&bad)})),
    )
    .await;
    assert_eq!(s, 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    let record = loop {
        let (_, r) = call(
            &c,
            &vc,
            "GET",
            &format!("{installs}/{HARBOR}"),
            Some(&t),
            None,
            None,
        )
        .await;
        if r["config_status"] != "CONFIGURING" {
            break r;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record["config_status"], "ERROR");
    let message = record["messages"][0]["details"]["default_message"]
        .as_str()
        .unwrap();
    assert!(
        message.starts_with("Reason: ReconcileFailed. Message: "),
        "{message}"
    );
    assert!(message.contains("harbor-database"), "{message}");
}

#[tokio::test]
async fn a_7_0_3_vcenter_has_no_yaml_config() {
    let (_sim, vc, c) = started(Release::V7_0_3).await;
    let t = login(&c, &vc).await;
    let installs = format!(
        "/api/vcenter/namespace-management/clusters/{}/supervisor-services",
        vc.cluster()
    );
    let (_, record) = call(
        &c,
        &vc,
        "GET",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        None,
    )
    .await;
    assert!(record.get("yaml_service_config").is_none(), "{record}");
    let (s, b) = call(
        &c,
        &vc,
        "PUT",
        &format!("{installs}/{HARBOR}"),
        Some(&t),
        None,
        Some(json!({"version": "2.9.1+vmware.1", "yaml_service_config": b64("a: 1")})),
    )
    .await;
    assert_eq!(
        (s, b["error_type"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
}

/// Registering a service or a version checks the Carvel definition first: a missing
/// `content` field is named in vAPI's words, and content that is not a PackageMetadata + Package
/// stream is refused; nothing is registered either way.
#[tokio::test]
async fn registering_refuses_what_is_not_a_carvel_definition() {
    let (sim, vc, c) = started(Release::V8_0_3).await;
    let t = login(&c, &vc).await;
    let base = "/api/vcenter/namespace-management/supervisor-services";
    let versions = format!("{base}/{HARBOR}/versions");
    let not_a_definition = b64("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    for (path, body, id, message) in [
        (
            base,
            json!({}),
            "vapi.bindings.typeconverter.missing.field",
            "carvel_spec.version_spec.content is required.",
        ),
        (
            versions.as_str(),
            json!({"carvel_spec": {}}),
            "vapi.bindings.typeconverter.missing.field",
            "carvel_spec.content is required.",
        ),
        (
            base,
            json!({"carvel_spec": {"version_spec": {"content": not_a_definition}}}),
            "vcenter.wcp.appplatform.supervisorservice.content.invalid",
            "The content is not a Carvel service definition (base64 YAML with a Package).",
        ),
        (
            versions.as_str(),
            json!({"carvel_spec": {"content": "not base64!"}}),
            "vcenter.wcp.appplatform.supervisorservice.content.invalid",
            "The content is not a Carvel service definition (base64 YAML with a Package).",
        ),
    ] {
        let (status, err) = call(&c, &vc, "POST", path, Some(&t), None, Some(body)).await;
        assert_eq!(status, 400, "{path}: {err}");
        assert_eq!(err["error_type"], "INVALID_ARGUMENT");
        assert_eq!(err["messages"][0]["id"], id, "{err}");
        assert_eq!(err["messages"][0]["default_message"], message, "{err}");
    }
    let (_, list) = call(&c, &vc, "GET", base, Some(&t), None, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, listed) = call(&c, &vc, "GET", &versions, Some(&t), None, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    sim.stop().await;
}
