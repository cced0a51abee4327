//! `kubectl create token` (TokenRequest) and `kubectl certificate approve` (a CSR's `approval`
//! subresource) against the simulator.

mod api_support;

use api_support::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_token_authenticates_as_its_service_account() {
    let sim = Sim::start().await;
    ok(&sim.kubectl(&["create", "serviceaccount", "robot"]).await);
    let token = ok(&sim
        .kubectl(&["create", "token", "robot", "--duration=1h"])
        .await)
    .trim()
    .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let who = ok(&sim
        .kubectl(&["auth", "whoami", "--token", &token, "-o", "json"])
        .await);
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );
    let missing = sim.kubectl(&["create", "token", "nobody"]).await;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("serviceaccounts \"nobody\" not found"),
        "{}",
        stderr(&missing)
    );
    let short = sim
        .kubectl(&["create", "token", "robot", "--duration=1m"])
        .await;
    assert!(
        stderr(&short).contains("may not specify a duration less than 10 minutes"),
        "{}",
        stderr(&short)
    );
}

const CSR: &str = "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: alice
spec:
  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_approve_goes_through_the_approval_subresource() {
    let sim = Sim::start().await;
    let path = sim.dir.path().join("csr.yaml");
    std::fs::write(&path, CSR).unwrap();
    ok(&sim.kubectl(&["apply", "-f", path.to_str().unwrap()]).await);
    assert_eq!(
        ok(&sim.kubectl(&["certificate", "approve", "alice"]).await).trim(),
        "certificatesigningrequest.certificates.k8s.io/alice approved"
    );
    let csr: Value = serde_json::from_str(&ok(&sim
        .kubectl(&["get", "csr", "alice", "-o", "json"])
        .await))
    .unwrap();
    let condition = &csr["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved");
    assert_eq!(condition["status"], "True");
    assert_eq!(
        csr["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client"
    );
    let audit = sim.api.audit().events();
    assert!(
        audit
            .iter()
            .any(|e| e.subresource.as_deref() == Some("approval") && e.verb == "update"),
        "{audit:?}"
    );
}
