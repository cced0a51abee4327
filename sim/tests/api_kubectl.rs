//! Real kubectl (the Cloud SDK dispatcher and its versioned binaries) against the simulated API server.

mod api_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use api_support::*;
use serde_json::{Value, json};
use supsvc_sim::api::{Patch, WriteOptions, gvr};

const STS: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: db
        image: postgres:15
        env:
        - name: A
          value: '1'
      - name: exporter
        image: exporter:1
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
";

fn write(sim: &Sim, name: &str, content: &str) -> String {
    let path = sim.dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

async fn get_json(sim: &Sim, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(&sim.kubectl(&all).await)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_edit_label_annotate_patch_and_delete_a_statefulset() {
    let sim = Sim::start().await;
    let file = write(&sim, "sts.yaml", STS);
    assert_eq!(
        ok(&sim.kubectl(&["apply", "-f", &file]).await).trim(),
        "statefulset.apps/db created"
    );
    assert_eq!(
        ok(&sim.kubectl(&["apply", "-f", &file]).await).trim(),
        "statefulset.apps/db unchanged"
    );

    let editor = "sed -i s/postgres:15/postgres:16/";
    let out = sim
        .kubectl_env(&["edit", "sts", "db"], &[("KUBE_EDITOR", editor)])
        .await;
    assert_eq!(ok(&out).trim(), "statefulset.apps/db edited");
    let sts = get_json(&sim, &["get", "sts", "db"]).await;
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "postgres:16"
    );
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][1]["image"], "exporter:1",
        "strategic merge kept the other container"
    );
    assert_eq!(sts["metadata"]["generation"], 2);
    let out = sim
        .kubectl_env(&["edit", "sts", "db"], &[("KUBE_EDITOR", "true")])
        .await;
    assert!(
        stderr(&out).contains("Edit cancelled, no changes made."),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        ok(&sim.kubectl(&["label", "sts", "db", "tier=data"]).await).trim(),
        "statefulset.apps/db labeled"
    );
    assert_eq!(
        ok(&sim.kubectl(&["annotate", "sts", "db", "note=hi"]).await).trim(),
        "statefulset.apps/db annotated"
    );
    let sts = get_json(&sim, &["get", "sts", "db"]).await;
    assert_eq!(sts["metadata"]["labels"]["tier"], "data");
    assert_eq!(sts["metadata"]["annotations"]["note"], "hi");
    assert_eq!(
        sts["metadata"]["generation"], 2,
        "labels and annotations do not bump generation"
    );

    let strategic = r#"{"spec":{"template":{"spec":{"containers":[{"name":"db","env":[{"name":"B","value":"2"}]}]}}}}"#;
    ok(&sim.kubectl(&["patch", "sts", "db", "-p", strategic]).await);
    ok(&sim
        .kubectl(&[
            "patch",
            "sts",
            "db",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ])
        .await);
    let json_patch = r#"[{"op":"replace","path":"/spec/minReadySeconds","value":5}]"#;
    let out = sim
        .kubectl(&["patch", "sts", "db", "--type", "json", "-p", json_patch])
        .await;
    assert!(!out.status.success(), "replace of a missing path must fail");
    assert_eq!(
        stderr(&out).trim(),
        "The request is invalid: the server rejected our request due to an error in our request"
    );
    let json_patch = r#"[{"op":"add","path":"/spec/minReadySeconds","value":5}]"#;
    ok(&sim
        .kubectl(&["patch", "sts", "db", "--type", "json", "-p", json_patch])
        .await);
    let sts = get_json(&sim, &["get", "sts", "db"]).await;
    let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(
        (
            sts["spec"]["replicas"].clone(),
            sts["spec"]["minReadySeconds"].clone()
        ),
        (json!(3), json!(5))
    );

    let out = sim
        .kubectl(&[
            "patch",
            "sts",
            "db",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"serviceName":"other"}}"#,
        ])
        .await;
    assert_eq!(
        stderr(&out).trim(),
        "The StatefulSet \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );

    assert_eq!(
        ok(&sim.kubectl(&["delete", "sts", "db"]).await).trim(),
        "statefulset.apps \"db\" deleted"
    );
    let out = sim.kubectl(&["get", "sts", "db"]).await;
    assert_eq!(
        stderr(&out).trim(),
        "Error from server (NotFound): statefulsets.apps \"db\" not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_the_server_side_columns() {
    let sim = Sim::start().await;
    let a = sim.admin();
    let w = WriteOptions::default();
    a.create(
        gvr::PACKAGE_INSTALLS,
        Some("default"),
        pkgi("tkg", "default"),
        &w,
    )
    .await
    .unwrap();
    let status = json!({"status": {"friendlyDescription": "Reconcile succeeded", "version": "3.5.1", "deploy": {"startedAt": jiff::Timestamp::now().to_string()}}});
    a.patch_status(
        gvr::PACKAGE_INSTALLS,
        Some("default"),
        "tkg",
        &Patch::Merge(status.clone()),
        &w,
    )
    .await
    .unwrap();
    a.create(
        gvr::APPS,
        Some("default"),
        json!({"metadata": {"name": "tkg"}, "spec": {}}),
        &w,
    )
    .await
    .unwrap();
    a.patch_status(gvr::APPS, Some("default"), "tkg", &Patch::Merge(status), &w)
        .await
        .unwrap();

    let out = ok(&sim.kubectl(&["get", "app", "tkg"]).await);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(lines[0], ["NAME", "DESCRIPTION", "SINCE-DEPLOY", "AGE"]);
    assert_eq!(&lines[1][..2], ["tkg", "Reconcile succeeded"]);
    assert!(lines[1][2].ends_with('s'), "SINCE-DEPLOY is an age: {out}");

    let out = ok(&sim.kubectl(&["get", "pkgi"]).await);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "PACKAGE NAME",
            "PACKAGE VERSION",
            "DESCRIPTION",
            "AGE"
        ]
    );
    assert_eq!(
        &lines[1][..4],
        [
            "tkg",
            "tkg.vsphere.vmware.com",
            "3.5.1",
            "Reconcile succeeded"
        ]
    );

    a.create(
        gvr::PERSISTENT_VOLUME_CLAIMS,
        Some("default"),
        json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}}),
        &w,
    )
    .await
    .unwrap();
    let out = ok(&sim.kubectl(&["get", "pvc"]).await);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS MODES",
            "STORAGECLASS",
            "AGE"
        ]
    );
    assert!(
        out.lines().nth(1).unwrap().starts_with("data   Pending"),
        "{out}"
    );
    let out = ok(&sim
        .kubectl(&["get", "pkgi,app", "-A", "--show-labels"])
        .await);
    assert!(
        out.contains("packageinstall.packaging.carvel.dev/tkg")
            && out.contains("app.kappctrl.k14s.io/tkg"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_take_merge_and_json_patches_but_not_strategic() {
    let sim = Sim::start().await;
    sim.admin()
        .create(
            gvr::PACKAGE_INSTALLS,
            Some("default"),
            pkgi("p", "default"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let out = sim
        .kubectl(&["patch", "pkgi", "p", "-p", r#"{"spec":{"paused":true}}"#])
        .await;
    assert!(stderr(&out).contains("application/strategic-merge-patch+json is not supported by packaging.carvel.dev/v1alpha1, Kind=PackageInstall"), "{}", stderr(&out));
    ok(&sim
        .kubectl(&[
            "patch",
            "pkgi",
            "p",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ])
        .await);
    ok(&sim
        .kubectl(&[
            "patch",
            "pkgi",
            "p",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/spec/paused"}]"#,
        ])
        .await);
    let out = sim
        .kubectl(&[
            "patch",
            "pkgi",
            "p",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/spec/paused"}]"#,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "The request is invalid: the server rejected our request due to an error in our request"
    );
    // kubectl label and edit send merge patches for custom resources.
    ok(&sim.kubectl(&["label", "pkgi", "p", "kick=1"]).await);
    let out = sim
        .kubectl_env(
            &["edit", "pkgi", "p"],
            &[("KUBE_EDITOR", "sed -i s/3.5.1/3.5.2/")],
        )
        .await;
    assert_eq!(
        ok(&out).trim(),
        "packageinstall.packaging.carvel.dev/p edited"
    );
    let p = sim
        .admin()
        .get(gvr::PACKAGE_INSTALLS, Some("default"), "p")
        .await
        .unwrap();
    assert_eq!(
        p["spec"]["packageRef"]["versionSelection"]["constraints"],
        "3.5.2"
    );
    assert_eq!(p["metadata"]["labels"]["kick"], "1");
    assert_eq!(
        p["metadata"]["generation"], 4,
        "paused, unpaused, edited; the label did not count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_growth_works_and_shrinking_is_refused() {
    let sim = Sim::start().await;
    let w = WriteOptions::default();
    sim.admin()
        .create(
            gvr::PERSISTENT_VOLUME_CLAIMS,
            Some("default"),
            json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}),
            &w,
        )
        .await
        .unwrap();
    sim.admin()
        .patch_status(
            gvr::PERSISTENT_VOLUME_CLAIMS,
            Some("default"),
            "data",
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
            &w,
        )
        .await
        .unwrap();
    let grow = r#"{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}"#;
    assert_eq!(
        ok(&sim.kubectl(&["patch", "pvc", "data", "-p", grow]).await).trim(),
        "persistentvolumeclaim/data patched"
    );
    let shrink = r#"{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}"#;
    let out = sim.kubectl(&["patch", "pvc", "data", "-p", shrink]).await;
    assert_eq!(
        stderr(&out).trim(),
        "The PersistentVolumeClaim \"data\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
    );
    let out = sim
        .kubectl(&["--context", "viewer", "patch", "pvc", "data", "-p", grow])
        .await;
    assert_eq!(
        stderr(&out).trim(),
        "Error from server (Forbidden): persistentvolumeclaims \"data\" is forbidden: User \"viewer\" cannot patch resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"default\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_each_change_and_wait_sees_a_condition() {
    let sim = Sim::start().await;
    let w = WriteOptions::default();
    sim.admin()
        .create(
            gvr::APPS,
            Some("default"),
            json!({"metadata": {"name": "a"}, "spec": {}}),
            &w,
        )
        .await
        .unwrap();
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .args(["get", "apps.kappctrl.k14s.io", "-w"])
        .env("HOME", sim.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a line in time")
            .expect("kubectl still running")
    };
    assert!(next(&mut rx).await.starts_with("NAME"));
    assert!(next(&mut rx).await.starts_with("a "));
    let wait = {
        let kubeconfig = sim.kubeconfig.clone();
        let home = sim.dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args([
                    "wait",
                    "--for=condition=ReconcileSucceeded",
                    "app/a",
                    "--timeout=20s",
                ])
                .env("HOME", home)
                .output()
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    for description in ["Reconciling", "Reconcile succeeded"] {
        let done = description == "Reconcile succeeded";
        let status = json!({"status": {"friendlyDescription": description, "conditions": [{"type": if done { "ReconcileSucceeded" } else { "Reconciling" }, "status": "True"}]}});
        sim.admin()
            .patch_status(gvr::APPS, Some("default"), "a", &Patch::Merge(status), &w)
            .await
            .unwrap();
        let line = next(&mut rx).await;
        assert!(
            line.starts_with("a ") && line.contains(description),
            "{line}"
        );
    }
    let waited = wait.await.unwrap();
    assert_eq!(ok(&waited).trim(), "app.kappctrl.k14s.io/a condition met");
    sim.admin()
        .delete(gvr::APPS, Some("default"), "a", &w)
        .await
        .unwrap();
    assert!(
        next(&mut rx).await.starts_with("a "),
        "the deletion is printed too"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kubectl_from_1_27_to_1_33_works() {
    let sim = Sim::start().await;
    let file = write(&sim, "sts.yaml", STS);
    for minor in 27..=33 {
        let bin = format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}");
        if !std::path::Path::new(&bin).exists() {
            continue;
        }
        let out = sim.kubectl_bin(&bin, &["apply", "-f", &file]).await;
        assert!(
            out.status.success(),
            "kubectl 1.{minor} apply: {}",
            stderr(&out)
        );
        let out = sim
            .kubectl_bin(&bin, &["label", "sts", "db", &format!("v{minor}=yes")])
            .await;
        assert!(
            out.status.success(),
            "kubectl 1.{minor} label: {}",
            stderr(&out)
        );
        let out = sim
            .kubectl_bin(&bin, &["get", "sts", "db", "--show-labels"])
            .await;
        assert!(
            stdout(&out).contains(&format!("v{minor}=yes")),
            "kubectl 1.{minor} get: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let out = sim.kubectl_bin(&bin, &["get", "pkgi", "-A"]).await;
        assert!(
            out.status.success(),
            "kubectl 1.{minor} get pkgi: {}",
            stderr(&out)
        );
        let out = sim.kubectl_bin(&bin, &["delete", "sts", "db"]).await;
        assert!(
            out.status.success(),
            "kubectl 1.{minor} delete: {}",
            stderr(&out)
        );
    }
    let version = ok(&sim.kubectl(&["version", "-o", "json"]).await);
    let v: Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.32.4+vmware.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_generators_send_protobuf_and_it_is_understood() {
    let sim = Sim::start().await;
    assert_eq!(
        ok(&sim.kubectl(&["create", "namespace", "team"]).await).trim(),
        "namespace/team created"
    );
    let out = sim
        .kubectl(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "team",
            "--from-literal=a=1",
            "--from-literal=b=2",
        ])
        .await;
    assert_eq!(ok(&out).trim(), "configmap/cfg created");
    let out = sim
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "values",
            "-n",
            "team",
            "--from-literal=values.yaml=x: 1",
        ])
        .await;
    assert_eq!(ok(&out).trim(), "secret/values created");
    assert_eq!(
        ok(&sim
            .kubectl(&["create", "serviceaccount", "kapp", "-n", "team"])
            .await)
        .trim(),
        "serviceaccount/kapp created"
    );
    let a = sim.admin();
    let cm = a.get(gvr::CONFIG_MAPS, Some("team"), "cfg").await.unwrap();
    assert_eq!(cm["data"], json!({"a": "1", "b": "2"}));
    let secret = a.get(gvr::SECRETS, Some("team"), "values").await.unwrap();
    assert_eq!(secret["data"]["values.yaml"], "eDogMQ==");
    assert_eq!(secret["type"], "Opaque");
    a.get(gvr::SERVICE_ACCOUNTS, Some("team"), "kapp")
        .await
        .unwrap();
    let ns = a.get(gvr::NAMESPACES, None, "team").await.unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    let out = sim
        .kubectl(&["create", "deployment", "web", "--image=nginx"])
        .await;
    assert!(
        stderr(&out).contains("not supported by the simulator"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_goes_through_the_scale_subresource() {
    let sim = Sim::start().await;
    let file = write(&sim, "sts.yaml", STS);
    ok(&sim.kubectl(&["apply", "-f", &file]).await);
    assert_eq!(
        ok(&sim.kubectl(&["scale", "sts", "db", "--replicas=3"]).await).trim(),
        "statefulset.apps/db scaled"
    );
    let sts = sim
        .admin()
        .get(gvr::STATEFUL_SETS, Some("default"), "db")
        .await
        .unwrap();
    assert_eq!(
        (
            sts["spec"]["replicas"].clone(),
            sts["metadata"]["generation"].clone()
        ),
        (json!(3), json!(2))
    );
    let out = sim
        .kubectl(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/statefulsets/db/scale",
        ])
        .await;
    let scale: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        (
            scale["kind"].clone(),
            scale["spec"]["replicas"].clone(),
            scale["status"]["selector"].clone()
        ),
        (json!("Scale"), json!(3), json!("app=db"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_can_i_and_whoami_answer_from_the_simulators_authorizer() {
    let sim = Sim::start().await;
    assert_eq!(
        ok(&sim.kubectl(&["auth", "can-i", "patch", "pvc"]).await).trim(),
        "yes"
    );
    let out = sim
        .kubectl(&["--context", "viewer", "auth", "can-i", "patch", "pvc"])
        .await;
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(1), "no"));
    assert_eq!(
        ok(&sim
            .kubectl(&["--context", "viewer", "auth", "can-i", "list", "pkgi"])
            .await)
        .trim(),
        "yes"
    );
    let out = ok(&sim
        .kubectl(&["--context", "viewer", "auth", "whoami", "-o", "json"])
        .await);
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "viewer");
}

/// kube-controller-manager's ServiceAccount controller, as kubectl sees it: `kubectl create namespace`
/// is followed by a `default` ServiceAccount there, and `kubectl delete sa default` by a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_namespace_has_a_default_service_account() {
    let sim = Sim::start().await;
    supsvc_sim::serviceaccounts::start(std::sync::Arc::clone(&sim.api), std::sync::Arc::default());
    ok(&sim.kubectl(&["create", "namespace", "team-b"]).await);
    let uid = |out: &str| {
        serde_json::from_str::<Value>(out).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut first = None;
    for _ in 0..200 {
        let out = sim
            .kubectl(&["get", "sa", "default", "-n", "team-b", "-o", "json"])
            .await;
        if out.status.success() {
            first = Some(uid(&stdout(&out)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = first.expect("the default ServiceAccount appears in team-b");
    let names = ok(&sim
        .kubectl(&["get", "sa", "-n", "team-b", "-o", "name"])
        .await);
    assert_eq!(names.trim(), "serviceaccount/default");
    ok(&sim
        .kubectl(&["delete", "sa", "default", "-n", "team-b"])
        .await);
    let mut again = None;
    for _ in 0..200 {
        let out = sim
            .kubectl(&["get", "sa", "default", "-n", "team-b", "-o", "json"])
            .await;
        if out.status.success() {
            again = Some(uid(&stdout(&out)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(again.expect("created again"), first);
}
