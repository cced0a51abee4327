//! The guardrail exactly as shipped: the files of `webhook/deploy/` applied to the simulated Supervisor
//! with the real `kubectl apply -k` (only each webhook's address and CA replaced: the simulator cannot
//! reach a Service), the real `supsvc-webhook` binary started with the policies of the shipped
//! ConfigMap (only the listen address, TLS files, cache and module directory replaced), and every kind
//! the README says the guards stop driven with the real `kubectl`: a public image denied, a private one
//! admitted. So the shipped rules can never drift from what the guards need again (field cases r06, r14).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use supsvc_sim::api::gvr;
use supsvc_tests::{Supervisor, eventually, policy_wasm, workspace_binary};

/// The scenario's private registry (reachable from the Supervisor, not public).
const PRIVATE: &str = "my-registry.example.com";
/// The namespace the registry-guard cases run in.
const NS: &str = "default";
/// Harbor's domain namespace: its kapp-managed claim and StatefulSet.
const DOMAIN: &str = "svc-harbor-domain-c8";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("webhook/deploy")
}

fn read_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The real webhook process; killed when dropped.
struct Webhook {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The shipped ConfigMap's `config.yaml` with only where it listens, its TLS files, its cache and the
/// directory of its modules localised; the policies (rules, settings, modes, limits) as shipped.
fn shipped_config(dir: &Path, port: u16) -> Value {
    let configmap = read_yaml(&deploy_dir().join("configmap.yaml"));
    let text = configmap["data"]["config.yaml"]
        .as_str()
        .expect("the shipped ConfigMap has data.config.yaml");
    let mut config: Value = serde_saphyr::from_str(text).expect("the shipped config.yaml parses");
    config["listen"] = json!(format!("127.0.0.1:{port}"));
    config["tls"] = json!({"certFile": dir.join("tls.crt"), "keyFile": dir.join("tls.key")});
    config["cacheDir"] = json!(dir.join("cache"));
    let policies = config["policies"]
        .as_array_mut()
        .expect("the shipped config has policies");
    assert_eq!(policies.len(), 2, "registry-guard and storage-guard");
    for policy in policies {
        let shipped = policy["module"]
            .as_str()
            .expect("a module path")
            .to_string();
        let file = Path::new(&shipped)
            .file_name()
            .and_then(|f| f.to_str())
            .expect("a module file name")
            .to_string();
        // supsvc_registry_guard.wasm is what the crate supsvc-registry-guard builds.
        let package = file.trim_end_matches(".wasm").replace('_', "-");
        let built = policy_wasm(&package);
        assert_eq!(
            built.file_name().and_then(|f| f.to_str()),
            Some(file.as_str())
        );
        policy["module"] = json!(built);
    }
    config
}

/// The shipped `webhook/deploy/` in `dir/deploy`, as it is but for each webhook's `clientConfig`:
/// the Service it names becomes the URL of the local process (same path), and the CA is filled in.
fn shipped_manifests(dir: &Path, port: u16, ca_pem: &str) -> PathBuf {
    let out = dir.join("deploy");
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, out.join(path.file_name().unwrap())).unwrap();
    }
    let file = out.join("validatingwebhookconfiguration.yaml");
    let mut vwc = read_yaml(&file);
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    for webhook in vwc["webhooks"].as_array_mut().expect("webhooks") {
        let service = &webhook["clientConfig"]["service"];
        let path = service["path"]
            .as_str()
            .expect("each shipped webhook names its path")
            .to_string();
        webhook["clientConfig"] =
            json!({"url": format!("https://127.0.0.1:{port}{path}"), "caBundle": ca_bundle});
    }
    std::fs::write(&file, serde_json::to_string_pretty(&vwc).unwrap()).unwrap();
    out
}

/// Applies the shipped files, starts the real webhook with the shipped policies, waits until it is
/// ready, and returns it.
async fn install_shipped(supervisor: &Supervisor) -> Webhook {
    let dir = supervisor.dir.path();
    let cert = supervisor
        .sim
        .ca()
        .issue(&["127.0.0.1", "localhost"])
        .unwrap();
    std::fs::write(dir.join("tls.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &cert.key_pem).unwrap();
    let ca_pem = supervisor.sim.ca().pem().to_string();
    std::fs::write(dir.join("ca.crt"), &ca_pem).unwrap();

    let port = free_port();
    let config = dir.join("webhook-config.json");
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&shipped_config(dir, port)).unwrap(),
    )
    .unwrap();
    let log = dir.join("webhook.log");
    let child = Command::new(workspace_binary("supsvc-webhook"))
        .args(["--config", config.to_str().unwrap(), "--drain-seconds", "0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("supsvc-webhook starts");
    let webhook = Webhook { child, port, log };
    let readyz = format!("https://127.0.0.1:{port}/readyz");
    let ca_file = dir.join("ca.crt");
    eventually(
        Duration::from_secs(120),
        "supsvc-webhook to answer /readyz with its policies loaded",
        || async {
            let ok = Command::new("curl")
                .args(["-sf", "--cacert", ca_file.to_str().unwrap(), &readyz])
                .output()
                .expect("curl is installed")
                .status
                .success();
            ok.then_some(())
        },
    )
    .await;

    let manifests = shipped_manifests(dir, webhook.port, &ca_pem);
    let applied = supervisor.kubectl_ok(&["apply", "-k", manifests.to_str().unwrap()]);
    assert!(
        applied.contains(
            "validatingwebhookconfiguration.admissionregistration.k8s.io/supsvc-webhook created"
        ),
        "{applied}"
    );
    webhook
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn webhook_log(webhook: &Webhook) -> String {
    std::fs::read_to_string(&webhook.log).unwrap_or_default()
}

/// `kubectl create -f` of one manifest.
fn create(supervisor: &Supervisor, manifest: &Value) -> Output {
    let name = manifest["metadata"]["name"].as_str().unwrap();
    let kind = manifest["kind"].as_str().unwrap();
    let file = supervisor.dir.path().join(format!("{kind}-{name}.json"));
    std::fs::write(&file, manifest.to_string()).unwrap();
    supervisor.kubectl(&["create", "-f", file.to_str().unwrap()])
}

fn pod_spec(image: &str) -> Value {
    json!({"containers": [{"name": "main", "image": image}]})
}

fn template(name: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": name}}, "spec": pod_spec(image)})
}

fn job_template(name: &str, image: &str) -> Value {
    let mut t = template(name, image);
    t["spec"]["restartPolicy"] = json!("Never");
    t
}

/// A manifest of `kind` named `name` that pulls `image` (or fetches the bundle `image`).
fn manifest(kind: &str, name: &str, image: &str) -> Value {
    let meta = json!({"name": name, "namespace": NS});
    let selector = json!({"matchLabels": {"app": name}});
    let fetch = json!([{"imgpkgBundle": {"image": image}}]);
    match kind {
        "StatefulSet" => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"serviceName": name, "selector": selector, "template": template(name, image)}}),
        "Deployment" | "DaemonSet" | "ReplicaSet" => {
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"selector": selector, "template": template(name, image)}})
        }
        "Job" => json!({"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
            "spec": {"template": job_template(name, image)}}),
        "CronJob" => json!({"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template(name, image)}}}}),
        "ReplicationController" => json!({"apiVersion": "v1", "kind": kind, "metadata": meta,
            "spec": {"replicas": 1, "selector": {"app": name}, "template": template(name, image)}}),
        "Package" => {
            let version = "1.0.0";
            let ref_name = format!("{name}.example.com");
            json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": kind,
                "metadata": {"name": format!("{ref_name}.{version}"), "namespace": NS},
                "spec": {"refName": ref_name, "version": version, "template": {"spec": {
                    "fetch": fetch, "template": [{"ytt": {"paths": ["config/"]}}], "deploy": [{"kapp": {}}]}}}})
        }
        "App" => json!({"apiVersion": "kappctrl.k14s.io/v1alpha1", "kind": kind, "metadata": meta,
            "spec": {"serviceAccountName": "default", "fetch": fetch,
                "template": [{"ytt": {"paths": ["config/"]}}], "deploy": [{"kapp": {}}]}}),
        "PackageRepository" => json!({"apiVersion": "packaging.carvel.dev/v1alpha1", "kind": kind,
            "metadata": meta, "spec": {"fetch": {"imgpkgBundle": {"image": image}}}}),
        other => panic!("no manifest for {other}"),
    }
}

/// How each kind is created with kubectl: `kubectl run` for a Pod, else `kubectl create -f` (the
/// generators `create deployment|job|cronjob` send protobuf bodies, which the simulator does not decode).
fn create_kind(supervisor: &Supervisor, kind: &str, name: &str, image: &str) -> Output {
    match kind {
        "Pod" => supervisor.kubectl(&["run", name, "-n", NS, &format!("--image={image}")]),
        _ => create(supervisor, &manifest(kind, name, image)),
    }
}

/// The name the object of `kind` gets (a Package's name is `refName.version`).
fn object_name(kind: &str, name: &str) -> String {
    if kind == "Package" {
        format!("{name}.example.com.1.0.0")
    } else {
        name.to_string()
    }
}

fn assert_denied_by(output: &Output, webhook: &str, kind: &str, name: &str, registry: &str) {
    let err = stderr(output);
    assert!(!output.status.success(), "{kind} {name} must be denied");
    // The webhook `registry-guard.supsvc.io` is served by the policy `registry-guard`.
    let policy = webhook.split('.').next().unwrap_or_default();
    assert!(
        err.contains(&format!(
            "admission webhook \"{webhook}\" denied the request: policy {policy}: {kind} {NS}/{name} uses"
        )) && err.contains(&format!("registry {registry} (public")),
        "{kind} {name}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_registry_guard_stops_every_kind_it_claims_and_admits_the_private_registry() {
    let supervisor = Supervisor::start("harbor", 0.001).await;
    let webhook = install_shipped(&supervisor).await;

    // (kind, public image or bundle, its registry as the guard names it)
    let cases = [
        ("Pod", "nginx:1.27", "docker.io"),
        (
            "Deployment",
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io",
        ),
        (
            "StatefulSet",
            "quay.io/prometheus/prometheus:v3.0.0",
            "quay.io",
        ),
        (
            "DaemonSet",
            "ghcr.io/fluxcd/source-controller:v1.4.1",
            "ghcr.io",
        ),
        ("ReplicaSet", "index.docker.io/library/redis:7", "docker.io"),
        (
            "ReplicationController",
            "gcr.io/distroless/static:nonroot",
            "gcr.io",
        ),
        (
            "Job",
            "mcr.microsoft.com/azure-cli:2.67.0",
            "mcr.microsoft.com",
        ),
        (
            "CronJob",
            "registry.hub.docker.com/library/busybox:1.36",
            "docker.io",
        ),
        (
            "Package",
            "projects.registry.vmware.com/tkg/packages/tkg-service:3.5.1",
            "projects.registry.vmware.com",
        ),
        (
            "App",
            "ghcr.io/carvel-dev/simple-app-bundle:v1.0.0",
            "ghcr.io",
        ),
        (
            "PackageRepository",
            "projects.registry.vmware.com/tkg/packages/standard/repo:v2024.8.21",
            "projects.registry.vmware.com",
        ),
    ];
    for (kind, public, registry) in cases {
        let lower = kind.to_lowercase();
        let denied_name = format!("{lower}-public");
        let output = create_kind(&supervisor, kind, &denied_name, public);
        assert_denied_by(
            &output,
            "registry-guard.supsvc.io",
            kind,
            &object_name(kind, &denied_name),
            registry,
        );

        let admitted_name = format!("{lower}-private");
        let private = format!("{PRIVATE}/team/{lower}:1.0.0");
        let output = create_kind(&supervisor, kind, &admitted_name, &private);
        assert!(
            output.status.success(),
            "{kind} from the private registry must be admitted: {}\n{}",
            stderr(&output),
            webhook_log(&webhook)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(" created"),
            "{kind}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    // An UPDATE counts as a CREATE does: the admitted Deployment moved to a public image.
    let output = supervisor.kubectl(&[
        "set",
        "image",
        "-n",
        NS,
        "deployment/deployment-private",
        "main=nginx:1.27",
    ]);
    assert_denied_by(
        &output,
        "registry-guard.supsvc.io",
        "Deployment",
        "deployment-private",
        "docker.io",
    );

    // `kubectl debug`: an ephemeral container is an UPDATE of pods/ephemeralcontainers (field case r06).
    let output = supervisor.kubectl(&["debug", "pod-private", "-n", NS, "--image=busybox:1.36"]);
    assert_denied_by(
        &output,
        "registry-guard.supsvc.io",
        "Pod",
        "pod-private",
        "docker.io",
    );
    let pod = supervisor.get(gvr::PODS, NS, "pod-private").await;
    assert!(
        pod["spec"]["ephemeralContainers"].is_null(),
        "nothing written: {pod}"
    );
    let private_debug = format!("--image={PRIVATE}/tools/busybox:1.36");
    let output = supervisor.kubectl(&["debug", "pod-private", "-n", NS, &private_debug]);
    assert!(output.status.success(), "{}", stderr(&output));
    let pod = supervisor.get(gvr::PODS, NS, "pod-private").await;
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["image"],
        format!("{PRIVATE}/tools/busybox:1.36"),
        "{pod}"
    );

    // The shipped namespaceSelector: the webhook's own namespace is never judged (it must be able
    // to restart itself from its public image).
    let output = supervisor.kubectl(&[
        "run",
        "exempt",
        "-n",
        "supsvc-webhook",
        "--image=ghcr.io/supsvc/supsvc-webhook:0.1.0",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    supervisor.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_storage_guard_stops_edits_of_kapp_managed_storage_and_admits_the_rest() {
    let supervisor = Supervisor::start("harbor", 0.001).await;
    let _webhook = install_shipped(&supervisor).await;

    // A claim kapp applies: grown by hand, denied, nothing written.
    let grow = r#"{"spec":{"resources":{"requests":{"storage":"60Gi"}}}}"#;
    let output = supervisor.kubectl(&["-n", DOMAIN, "patch", "pvc", "harbor-registry", "-p", grow]);
    let err = stderr(&output);
    assert!(!output.status.success(), "the direct edit must be denied");
    assert!(
        err.contains("admission webhook \"storage-guard.supsvc.io\" denied the request:")
            && err.contains(&format!(
                "PersistentVolumeClaim {DOMAIN}/harbor-registry is managed by kapp"
            )),
        "{err}"
    );
    let pvc = supervisor
        .get(gvr::PERSISTENT_VOLUME_CLAIMS, DOMAIN, "harbor-registry")
        .await;
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "55Gi");

    // A StatefulSet kapp applies: a direct spec change denied.
    let output = supervisor.kubectl(&[
        "-n",
        DOMAIN,
        "patch",
        "statefulset",
        "harbor-database",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ]);
    let err = stderr(&output);
    assert!(!output.status.success(), "the direct edit must be denied");
    assert!(
        err.contains("admission webhook \"storage-guard.supsvc.io\" denied the request:")
            && err.contains(&format!(
                "StatefulSet {DOMAIN}/harbor-database is managed by kapp"
            )),
        "{err}"
    );

    // Storage kapp does not manage: the same edits admitted.
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "scratch", "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let output = create(&supervisor, &claim);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = supervisor.kubectl(&[
        "-n",
        NS,
        "patch",
        "pvc",
        "scratch",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let sts = manifest("StatefulSet", "own-db", &format!("{PRIVATE}/team/db:1.0.0"));
    let output = create(&supervisor, &sts);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = supervisor.kubectl(&[
        "-n",
        NS,
        "patch",
        "statefulset",
        "own-db",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    supervisor.sim.stop().await;
}

/// Every `*-guard.supsvc.<domain>` webhook name written in `text`.
fn guard_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("-guard.supsvc.") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .map_or(0, |i| i + 1);
        let end = at
            + rest[at..]
                .find(|c: char| !(c.is_ascii_lowercase() || c == '-' || c == '.'))
                .unwrap_or(rest.len() - at);
        // A name has a policy before `-guard` (this file's own search string has none).
        if start < at {
            out.push(rest[start..end].trim_end_matches('.').to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// Names one: each shipped webhook is `<policy>.supsvc.io`, calls `/validate/<policy>` of a policy
/// the shipped ConfigMap configures, with the same rules; the README and every test name the webhooks
/// only so.
#[test]
fn the_webhook_names_agree_across_the_shipped_files_the_readme_and_the_tests() {
    let vwc = read_yaml(&deploy_dir().join("validatingwebhookconfiguration.yaml"));
    let configmap = read_yaml(&deploy_dir().join("configmap.yaml"));
    let config: Value =
        serde_saphyr::from_str(configmap["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let policies = config["policies"].as_array().unwrap();
    let mut names = Vec::new();
    for webhook in vwc["webhooks"].as_array().unwrap() {
        let name = webhook["name"].as_str().unwrap();
        let policy = name
            .strip_suffix(".supsvc.io")
            .unwrap_or_else(|| panic!("{name}: a shipped webhook is <policy>.supsvc.io"));
        assert_eq!(
            webhook["clientConfig"]["service"]["path"],
            format!("/validate/{policy}")
        );
        let configured = policies
            .iter()
            .find(|p| p["name"] == policy)
            .unwrap_or_else(|| panic!("{name}: no policy {policy} in the shipped ConfigMap"));
        // The same rules in both files (apiVersions and scope are the registration's own).
        let registered: Vec<Value> = webhook["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!({"operations": r["operations"], "apiGroups": r["apiGroups"], "resources": r["resources"]}))
            .collect();
        assert_eq!(
            &Value::from(registered),
            &configured["rules"],
            "{name}: rules differ"
        );
        names.push(name.to_string());
    }
    assert_eq!(names.len(), policies.len());

    let root = deploy_dir().join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for name in &names {
        assert!(
            readme.contains(name.as_str()),
            "README does not name {name}"
        );
    }
    let mut texts = vec![("README.md".to_string(), readme)];
    for entry in std::fs::read_dir(root.join("tests/tests")).unwrap() {
        let path = entry.unwrap().path();
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    for (file, text) in texts {
        for found in guard_names(&text) {
            assert!(
                names.contains(&found),
                "{file} names the webhook {found}; the shipped ones are {names:?}"
            );
        }
    }
}
