//! `kubectl supsvc webhook install|status|uninstall` on the simulated Supervisor, through the real
//! `kubectl` with the freshly built plugin, the webhook running on loopback in URL mode
//! (`clientConfig.url`: the simulator runs no pods, so the in-cluster Deployment could not answer).

use std::process::Output;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use supsvc_sim::api::gvr;
use supsvc_tests::plugin::{Run, Via, supsvc_command};
use supsvc_tests::{Supervisor, eventually};
use supsvc_webhook::server;

const NS: &str = "supsvc-webhook";

/// `kubectl supsvc ARGS`: the real kubectl, the built plugin first on PATH (off the runtime's
/// threads: the simulator and the webhook serve on them).
async fn supsvc(sup: &Supervisor, args: &[&str]) -> Run {
    supsvc_env(sup, args, &[]).await
}

async fn supsvc_env(sup: &Supervisor, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = supsvc_command(Via::Kubectl, &sup.kubeconfig);
    cmd.args(args).env_remove("SUPSVC_VCENTER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(cmd).await
}

/// A loopback port nothing listens on (the URL must be known before the webhook starts).
/// `webhook uninstall`, which must succeed; the resources it deleted, in order.
async fn uninstall(sup: &Supervisor) -> Vec<String> {
    let audit = sup.sim.api().audit();
    audit.clear();
    let run = supsvc(sup, &["webhook", "uninstall"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    audit
        .writes()
        .into_iter()
        .filter(|e| e.verb == "delete")
        .map(|e| e.resource)
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn vwc(sup: &Supervisor) -> Option<Value> {
    sup.admin()
        .get(
            gvr::VALIDATING_WEBHOOK_CONFIGURATIONS,
            None,
            "supsvc-webhook",
        )
        .await
        .ok()
}

fn policies(vwc: &Value) -> Vec<String> {
    vwc["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["failurePolicy"].as_str().unwrap().to_owned())
        .collect()
}

/// Starts supsvc-webhook on `port` with the serving certificate `install` wrote to the Secret, and
/// the two shipped policies under the names the shipped configuration calls them by.
async fn start_webhook(sup: &Supervisor, port: u16) -> server::RunningWebhook {
    let dir = sup.dir.path();
    let secret = sup.get(gvr::SECRETS, NS, "supsvc-webhook-tls").await;
    let engine = base64::engine::general_purpose::STANDARD;
    for key in ["tls.crt", "tls.key"] {
        let bytes = engine
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap();
        std::fs::write(dir.join(key), bytes).unwrap();
    }
    supsvc_tests::guards::start_guards(dir, &format!("127.0.0.1:{port}"), "enforce").await
}

/// The blog's direct edit of Harbor's registry PVC, with the real kubectl.
async fn patch_pvc(sup: &Supervisor) -> Output {
    let kubeconfig = sup.kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        supsvc_tests::kubectl(&kubeconfig, &supsvc_tests::guards::BLOGS_PVC_EDIT)
    })
    .await
    .unwrap()
}

fn applied_by_supsvc(object: &Value) -> bool {
    object["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|m| {
            m.iter()
                .any(|f| f["manager"] == "kubectl-supsvc" && f["operation"] == "Apply")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_enforces_only_once_the_webhook_answers_and_uninstall_removes_the_configuration_first()
 {
    let sup = Supervisor::start("harbor", 0.001).await;
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let audit = || sup.sim.api().audit();

    // --dry-run: what would be applied, in order, and not one write.
    audit().clear();
    let run = supsvc(&sup, &["webhook", "install", "--url", &url, "--dry-run"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let kinds: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "Secret",
            "Secret",
            "ConfigMap",
            "ValidatingWebhookConfiguration"
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("failurePolicy: Ignore"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("url: {url}/validate/storage-guard"))
    );
    assert!(run.stdout.contains("tls.key: <redacted>"));
    assert!(!run.stdout.contains("PRIVATE KEY"));
    assert_eq!(audit().writes(), vec![], "--dry-run wrote");
    assert!(vwc(&sup).await.is_none());

    // Install while nothing listens at the URL: everything is applied, the configuration stays at
    // Ignore, and the command says so (exit 1, error + hint).
    let run = supsvc(&sup, &["webhook", "install", "--url", &url, "--wait", "1s"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("error: the webhook did not answer within 1s")
            && run.stderr.contains("stays at failurePolicy Ignore"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("hint: start the webhook at {url}")),
        "{}",
        run.stderr
    );
    let config = vwc(&sup).await.expect("the configuration is applied");
    assert_eq!(policies(&config), ["Ignore", "Ignore"]);
    assert!(applied_by_supsvc(&config), "{config}");
    for (resource, name) in [
        (gvr::SECRETS, "supsvc-webhook-tls"),
        (gvr::SECRETS, "supsvc-webhook-ca"),
        (gvr::CONFIG_MAPS, "supsvc-webhook-policies"),
    ] {
        let object = sup.get(resource, NS, name).await;
        assert!(applied_by_supsvc(&object), "{object}");
    }
    // URL mode installs no workload (documented: the webhook runs outside).
    assert!(
        sup.admin()
            .get(gvr::DEPLOYMENTS, Some(NS), "supsvc-webhook")
            .await
            .is_err()
    );
    // The caBundle is the CA in the Secret, and the serving certificate names the URL's host.
    let secret = sup.get(gvr::SECRETS, NS, "supsvc-webhook-tls").await;
    assert_eq!(
        config["webhooks"][0]["clientConfig"]["caBundle"],
        secret["data"]["ca.crt"]
    );

    // The webhook comes up with that certificate; install again: it answers, so Fail.
    let webhook = start_webhook(&sup, port).await;
    let run = supsvc(&sup, &["webhook", "install", "--url", &url]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("certificate: kept"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("the webhook answers: AdmissionReview answered over TLS"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ValidatingWebhookConfiguration/supsvc-webhook: failurePolicy Fail"),
        "{}",
        run.stdout
    );
    assert_eq!(policies(&vwc(&sup).await.unwrap()), ["Fail", "Fail"]);

    // --rotate: a new serving certificate from the same CA, so the caBundle does not change and the
    // configuration stays at Fail throughout (a re-run never weakens a working installation).
    let before = sup.get(gvr::SECRETS, NS, "supsvc-webhook-tls").await;
    let bundle = vwc(&sup).await.unwrap()["webhooks"][0]["clientConfig"]["caBundle"].clone();
    let run = supsvc(&sup, &["webhook", "install", "--url", &url, "--rotate"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("certificate: a new serving certificate (--rotate)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("failurePolicy Fail (kept)"),
        "{}",
        run.stdout
    );
    let after = sup.get(gvr::SECRETS, NS, "supsvc-webhook-tls").await;
    assert_ne!(after["data"]["tls.crt"], before["data"]["tls.crt"]);
    assert_eq!(after["data"]["ca.crt"], before["data"]["ca.crt"]);
    let config = vwc(&sup).await.unwrap();
    assert_eq!(config["webhooks"][0]["clientConfig"]["caBundle"], bundle);
    assert_eq!(policies(&config), ["Fail", "Fail"]);

    // The blog's direct PVC edit is refused through the real kubectl, with the policy's message.
    let output = patch_pvc(&sup).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("admission webhook \"storage-guard.supsvc.io\" denied the request")
            && stderr.contains("is managed by kapp"),
        "{stderr}"
    );

    // status: what is installed, by whom, the certificate's expiry, failurePolicy, answers.
    let run = supsvc(&sup, &["webhook", "status"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for expected in [
        "ValidatingWebhookConfiguration/supsvc-webhook",
        "installed (managed by kubectl-supsvc)",
        &format!("mode: URL ({url})"),
        "webhook storage-guard.supsvc.io: failurePolicy Fail",
        "days left), names",
        "answers: yes",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} in {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("(364 days left)") || run.stdout.contains("(365 days left)"));

    // The webhook goes down: status says so; install relaxes the configuration to Ignore instead
    // of leaving every PVC edit refused by a webhook that does not answer.
    webhook.stop();
    let run = supsvc(&sup, &["webhook", "status"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("answers: no"), "{}", run.stdout);
    assert!(
        run.stderr.contains("error: the webhook does not answer"),
        "{}",
        run.stderr
    );
    let run = supsvc(&sup, &["webhook", "install", "--url", &url, "--wait", "1s"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(policies(&vwc(&sup).await.unwrap()), ["Ignore", "Ignore"]);

    // uninstall: the configuration is deleted first, then the rest, the namespace last.
    audit().clear();
    let run = supsvc(&sup, &["webhook", "uninstall"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let deletes: Vec<(String, Option<String>)> = audit()
        .writes()
        .into_iter()
        .filter(|e| e.verb == "delete")
        .map(|e| (e.resource, e.name))
        .collect();
    let resources: Vec<&str> = deletes.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        resources,
        [
            "validatingwebhookconfigurations",
            "configmaps",
            "secrets",
            "secrets",
            "namespaces"
        ],
        "{deletes:?}"
    );
    assert!(vwc(&sup).await.is_none());
    // With no webhook configured, the edit goes through again.
    let output = patch_pvc(&sup).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = supsvc(&sup, &["webhook", "status"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("error: supsvc-webhook is not installed"),
        "{}",
        run.stderr
    );
    sup.sim.stop().await;
}

/// `webhook package`: the definition vCenter registers. On the simulated vCenter (8.0.3) joined to the
/// simulated Supervisor: values that fail the valuesSchema are refused before any write; then
/// checkContent, the new service registered from the definition (ACTIVATED, its Package built on the
/// Supervisor with the valuesSchema), and installed on the Supervisor with the operator's values
/// (PackageInstall and values Secret written by vCenter); kapp-controller fetches the bundle that
/// `webhook bundle` wrote (published in the Supervisor's registry), renders its ytt templates with
/// the operator's values over the schema's defaults and deploys the webhook with cert-manager's
/// certificates; a second version registers under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_registers_in_vcenter_as_a_supervisor_service_and_installs() {
    const ID: &str = "supsvc-webhook.supsvc.io";
    const IMAGE: &str = "my-registry.example.com/supsvc/supsvc-webhook@sha256:5f0a1c2b3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";
    const BUNDLE: &str = "my-registry.example.com/supsvc/supsvc-webhook-bundle:0.1.0";
    let sup = Supervisor::start("harbor", 0.001).await;
    // The Supervisor runs cert-manager: its kinds are served.
    let crds = supsvc_tests::fixture("cert-manager-crds.yaml");
    sup.kubectl_ok(&["apply", "-f", crds.to_str().unwrap()]);
    // The bundle, written by the plugin and pushed to the Supervisor's private registry.
    let bundle_dir = sup.dir.path().join("bundle");
    let run = supsvc(
        &sup,
        &[
            "webhook",
            "bundle",
            "--image",
            IMAGE,
            "-o",
            bundle_dir.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    sup.sim.publish_bundle(
        supsvc_sim::kapp::registry::Bundle::from_dir(BUNDLE, &bundle_dir)
            .expect("the bundle reads"),
    );
    let vc = sup
        .sim
        .start_vcenter(supsvc_sim::vcenter::VcenterOptions::default())
        .await
        .expect("vCenter starts");
    let dir = sup.dir.path();
    let ca = dir.join("vcenter-ca.pem");
    std::fs::write(&ca, &vc.ca_pem).unwrap();
    let ca = ca.to_str().unwrap().to_owned();
    let env = [
        ("SUPSVC_VCENTER_PASSWORD", "VMware1!"),
        ("SUPSVC_VCENTER_CA_FILE", ca.as_str()),
    ];

    // The definition as a file: PackageMetadata and Package.
    let file = dir.join("supsvc-webhook.yaml");
    let run = supsvc(&sup, &["webhook", "package", "-f", file.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(kinds, ["PackageMetadata", "Package"]);

    // Values the schema refuses: nothing reaches vCenter.
    let bad = dir.join("bad-values.yaml");
    std::fs::write(&bad, "failurePolicy: fail\nreplica: 3\n").unwrap();
    vc.clear_requests();
    let run = supsvc_env(
        &sup,
        &[
            "webhook",
            "package",
            "--register",
            "--install",
            bad.to_str().unwrap(),
            "--vcenter",
            &vc.url,
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("error: --install: the values do not pass the valuesSchema"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("replica"), "{}", run.stderr);
    assert!(vc.requests().is_empty(), "{:?}", vc.requests());

    let values = dir.join("values.yaml");
    std::fs::write(
        &values,
        "replicas: 3\npolicies:\n  registryGuard: {mode: monitor}\n",
    )
    .unwrap();
    let run = supsvc_env(
        &sup,
        &[
            "webhook",
            "package",
            "--register",
            "--install",
            values.to_str().unwrap(),
            "--bundle",
            BUNDLE,
            "--vcenter",
            &vc.url,
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("checkContent: VALID ({ID} 0.1.0)")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "registered Supervisor Service {ID} with version 0.1.0"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(vc.service_activated(ID), Some(true));
    assert_eq!(
        vc.catalog_versions(ID),
        Some(vec![("0.1.0".to_owned(), true)])
    );
    // The Supervisor's Package, built by vCenter from the definition, with its valuesSchema.
    let package = sup
        .get(
            gvr::PACKAGES,
            supsvc_tests::SERVICES_NAMESPACE,
            &format!("{ID}.0.1.0"),
        )
        .await;
    assert_eq!(package["spec"]["refName"], ID);
    assert_eq!(
        package["spec"]["valuesSchema"]["openAPIv3"]["properties"]["failurePolicy"]["enum"],
        serde_json::json!(["Fail", "Ignore"])
    );
    // Installed by vCenter on the Supervisor: its PackageInstall and the values it was given.
    let pkgi = sup
        .get(
            gvr::PACKAGE_INSTALLS,
            supsvc_tests::SERVICES_NAMESPACE,
            &format!("svc-{ID}"),
        )
        .await;
    assert_eq!(pkgi["spec"]["packageRef"]["refName"], ID);
    assert_eq!(
        vc.stored_config(ID).as_deref(),
        Some("replicas: 3\npolicies:\n  registryGuard: {mode: monitor}\n")
    );
    // kapp-controller reconciles it from the bundle: the operator's values over the defaults.
    let app = eventually(
        Duration::from_secs(60),
        "the service's App reconciles",
        || async {
            let app = sup
                .admin()
                .get(
                    gvr::APPS,
                    Some(supsvc_tests::SERVICES_NAMESPACE),
                    &format!("svc-{ID}"),
                )
                .await
                .ok()?;
            (supsvc_tests::reconciled(&app) || app["status"]["usefulErrorMessage"].is_string())
                .then_some(app)
        },
    )
    .await;
    assert!(supsvc_tests::reconciled(&app), "{:#}", app["status"]);
    let deployment = sup
        .get(gvr::DEPLOYMENTS, "supsvc-webhook", "supsvc-webhook")
        .await;
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], IMAGE);
    assert_eq!(
        pod["initContainers"][0]["image"], IMAGE,
        "the bundle's precompile init container runs the bundle's image"
    );
    let configmap = sup
        .get(
            gvr::CONFIG_MAPS,
            "supsvc-webhook",
            "supsvc-webhook-policies",
        )
        .await;
    let config: Value =
        serde_saphyr::from_str(configmap["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let modes: Vec<(&str, &str)> = config["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["mode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        modes,
        [("registry-guard", "monitor"), ("storage-guard", "enforce")]
    );
    assert_eq!(config["policies"][1]["timeout"], 100);
    let configuration = vwc(&sup)
        .await
        .expect("the webhook configuration is deployed");
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "supsvc-webhook/supsvc-webhook"
    );
    assert_eq!(configuration["webhooks"][0]["failurePolicy"], "Fail");
    let certificate = sup.kubectl_ok(&[
        "get",
        "certificates.cert-manager.io",
        "-n",
        "supsvc-webhook",
        "supsvc-webhook",
        "-o",
        "json",
    ]);
    let certificate: Value = serde_json::from_str(&certificate).unwrap();
    assert!(
        certificate["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("supsvc-webhook.supsvc-webhook.svc")),
        "{certificate:#}"
    );

    // A newer version registers under the existing service.
    let run = supsvc_env(
        &sup,
        &[
            "webhook",
            "package",
            "--register",
            "--package-version",
            "0.2.0",
            "--vcenter",
            &vc.url,
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("registered version 0.2.0 of {ID}")),
        "{}",
        run.stdout
    );
    assert_eq!(
        vc.catalog_versions(ID),
        Some(vec![("0.1.0".to_owned(), true), ("0.2.0".to_owned(), true)])
    );
    sup.sim.stop().await;
}

/// `webhook package --register` on a vCenter older than Carvel definitions (7.0.3): vCenter's
/// checkContent answers INVALID with its message, the plugin says so with a hint and registers
/// nothing (checkContent is the only write that reached vCenter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_vcenter_finds_invalid_is_not_registered() {
    let sup = Supervisor::start("harbor", 0.001).await;
    let vc = sup
        .sim
        .start_vcenter(supsvc_sim::vcenter::VcenterOptions {
            release: supsvc_sim::vcenter::Release::V7_0_3,
            ..Default::default()
        })
        .await
        .expect("vCenter starts");
    let ca = sup.dir.path().join("vcenter-ca.pem");
    std::fs::write(&ca, &vc.ca_pem).unwrap();
    let run = supsvc_env(
        &sup,
        &["webhook", "package", "--register", "--vcenter", &vc.url],
        &[
            ("SUPSVC_VCENTER_PASSWORD", "VMware1!"),
            ("SUPSVC_VCENTER_CA_FILE", ca.to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "error: vCenter's checkContent does not accept the definition (INVALID): \
             Carvel service definitions need vSphere 8.0 or later.; nothing was written"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: vCenter takes Carvel definitions from vSphere 8.0.0.1 on"),
        "{}",
        run.stderr
    );
    let writes: Vec<String> = vc
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && !r.path.starts_with("/api/session"))
        .map(|r| r.line())
        .collect();
    assert_eq!(
        writes,
        ["POST /api/vcenter/namespace-management/supervisor-services?action=checkContent"]
    );
    assert_eq!(vc.catalog_versions("supsvc-webhook.supsvc.io"), None);
    sup.sim.stop().await;
}

/// In-cluster mode (no `--url`): the shipped Deployment, Service and PodDisruptionBudget are applied
/// too, with the image given, and accepted by the API server; "answers" is the Deployment available
/// at its generation (the simulator marks workloads available without running pods, so this checks
/// the objects and the order, not a running webhook); uninstall deletes all nine, the configuration
/// first. `--dry-run=server` before it has the server check every apply and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_install_applies_the_workload_and_uninstall_removes_all_of_it() {
    let sup = Supervisor::start("healthy", 0.001).await;
    let image = "my-registry.example.com/supsvc/supsvc-webhook:0.1.0";
    let audit = || sup.sim.api().audit();

    audit().clear();
    let run = supsvc(
        &sup,
        &["webhook", "install", "--image", image, "--dry-run=server"],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Nothing stored; the namespace does not exist yet, so the server can check only the
    // cluster-scoped objects.
    assert_eq!(audit().writes(), vec![]);
    let checked: Vec<(String, bool)> = audit()
        .events()
        .into_iter()
        .filter(|e| e.verb == "patch")
        .map(|e| (e.resource, e.dry_run))
        .collect();
    assert_eq!(
        checked,
        [
            ("namespaces".to_owned(), true),
            ("validatingwebhookconfigurations".to_owned(), true)
        ]
    );
    assert!(
        run.stdout
            .contains("not checked, as namespace supsvc-webhook does not exist yet"),
        "{}",
        run.stdout
    );
    assert!(vwc(&sup).await.is_none());

    let run = supsvc(&sup, &["webhook", "install", "--image", image]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("the webhook answers: Deployment/supsvc-webhook has 2 available replicas"),
        "{}",
        run.stdout
    );
    let deployment = sup.get(gvr::DEPLOYMENTS, NS, "supsvc-webhook").await;
    assert!(applied_by_supsvc(&deployment));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], image);
    assert_eq!(pod["initContainers"][0]["image"], image);
    let pdb = sup
        .get(gvr::POD_DISRUPTION_BUDGETS, NS, "supsvc-webhook")
        .await;
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let service = sup.get(gvr::SERVICES, NS, "supsvc-webhook").await;
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    let config = vwc(&sup).await.unwrap();
    assert_eq!(policies(&config), ["Fail", "Fail"]);
    assert_eq!(
        config["webhooks"][0]["clientConfig"]["service"],
        serde_json::json!({"name": "supsvc-webhook", "namespace": NS, "path": "/validate/registry-guard", "port": 443})
    );

    let deleted = uninstall(&sup).await;
    assert_eq!(
        deleted,
        [
            "validatingwebhookconfigurations",
            "poddisruptionbudgets",
            "services",
            "deployments",
            "serviceaccounts",
            "configmaps",
            "secrets",
            "secrets",
            "namespaces"
        ]
    );
    sup.sim.stop().await;
}

/// cert-manager's mode, chosen by itself when the Supervisor serves cert-manager's kinds: the
/// self-signed Issuer, the CA Certificate and Issuer and the serving Certificate are applied before
/// the workload; the webhook configuration carries `cert-manager.io/inject-ca-from` and no
/// `caBundle` of supsvc's (the cainjector fills it), and no CA Secret is written by supsvc. Uninstall
/// removes cert-manager's objects too, the configuration first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cert_manager_present_install_uses_its_certificates_and_uninstall_removes_them() {
    let sup = Supervisor::start("healthy", 0.001).await;
    let crds = supsvc_tests::fixture("cert-manager-crds.yaml");
    sup.kubectl_ok(&["apply", "-f", crds.to_str().unwrap()]);
    let image = "my-registry.example.com/supsvc/supsvc-webhook:0.1.0";
    let audit = || sup.sim.api().audit();

    audit().clear();
    let run = supsvc(&sup, &["webhook", "install", "--image", image]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let applied: Vec<(String, String)> = audit()
        .writes()
        .into_iter()
        .filter(|e| e.verb == "patch" && e.subresource.is_none())
        .map(|e| (e.resource, e.name.unwrap_or_default()))
        .collect();
    let position = |resource: &str, name: &str| {
        applied
            .iter()
            .position(|(r, n)| r == resource && n == name)
            .unwrap_or_else(|| panic!("{resource}/{name} not applied: {applied:?}"))
    };
    assert!(position("certificates", "supsvc-webhook") < position("deployments", "supsvc-webhook"));
    assert!(position("issuers", "supsvc-webhook-ca") < position("certificates", "supsvc-webhook"));
    assert_eq!(
        applied.last().map(|(r, _)| r.as_str()),
        Some("validatingwebhookconfigurations"),
        "{applied:?}"
    );
    assert!(
        !applied.iter().any(|(r, _)| r == "secrets"),
        "supsvc wrote a Secret; cert-manager writes them: {applied:?}"
    );
    let certificate: Value = serde_json::from_str(&sup.kubectl_ok(&[
        "get",
        "certificates.cert-manager.io",
        "-n",
        NS,
        "supsvc-webhook",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(certificate["spec"]["secretName"], "supsvc-webhook-tls");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        "supsvc-webhook-ca"
    );
    let config = vwc(&sup).await.unwrap();
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NS}/supsvc-webhook")
    );
    for webhook in config["webhooks"].as_array().unwrap() {
        assert!(
            webhook["clientConfig"].get("caBundle").is_none(),
            "{webhook:#}"
        );
    }

    let deleted = uninstall(&sup).await;
    assert_eq!(
        deleted.first().map(String::as_str),
        Some("validatingwebhookconfigurations")
    );
    assert_eq!(
        deleted.iter().filter(|r| *r == "certificates").count(),
        2,
        "{deleted:?}"
    );
    assert_eq!(
        deleted.iter().filter(|r| *r == "issuers").count(),
        2,
        "{deleted:?}"
    );
    let left = sup.kubectl(&[
        "get",
        "certificates.cert-manager.io",
        "-n",
        NS,
        "-o",
        "name",
    ]);
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
    sup.sim.stop().await;
}
