//! CustomResourceDefinitions with the real kubectl: a CRD applied serves its kind at once (discovery,
//! short names, printer columns, subresources, every served version), and deleting it takes the kind
//! and its objects away.

mod api_support;

use std::time::Duration;

use api_support::*;
use serde_json::Value;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    kind: Widget
    shortNames: [wd]
    categories: [gadgets]
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.size
        statusReplicasPath: .status.size
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    - name: Color
      type: string
      priority: 1
      jsonPath: .spec.color
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  size: 3
  color: blue
";

fn write(sim: &Sim, name: &str, content: &str) -> String {
    let path = sim.dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap()
}

/// The lines of a `kubectl get` table, columns split on runs of spaces.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_crd_serves_its_kind_and_deleting_it_takes_the_kind_away() {
    let sim = Sim::start().await;
    let crd = write(&sim, "crd.yaml", CRD);
    assert_eq!(
        ok(&sim.kubectl(&["apply", "-f", &crd]).await).trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    // The conditions the naming and establishing controllers write.
    let got = json(&ok(&sim
        .kubectl(&["get", "crd", "widgets.example.com", "-o", "json"])
        .await));
    let conditions = got["status"]["conditions"].as_array().unwrap();
    let reason = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| (c["status"].clone(), c["reason"].clone()))
    };
    assert_eq!(
        reason("NamesAccepted"),
        Some(("True".into(), "NoConflicts".into()))
    );
    assert_eq!(
        reason("Established"),
        Some(("True".into(), "InitialNamesAccepted".into()))
    );
    assert_eq!(got["status"]["acceptedNames"]["singular"], "widget");
    assert_eq!(got["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(got["status"]["storedVersions"][0], "v1");

    // Discovery: api-resources lists it, the short name and the category resolve.
    let resources = ok(&sim
        .kubectl(&["api-resources", "--api-group=example.com"])
        .await);
    let widget_row = rows(&resources)
        .into_iter()
        .find(|r| r.first().is_some_and(|n| n == "widgets"))
        .unwrap_or_else(|| panic!("{resources}"));
    assert_eq!(
        widget_row,
        ["widgets", "wd", "example.com/v1", "true", "Widget"]
    );
    let file = write(&sim, "w.yaml", WIDGET);
    assert_eq!(
        ok(&sim.kubectl(&["apply", "-f", &file]).await).trim(),
        "widget.example.com/w1 created"
    );

    // Printer columns, with the JSON path evaluated, the priority-1 column only with -o wide.
    let table = ok(&sim.kubectl(&["get", "wd"]).await);
    let t = rows(&table);
    assert_eq!(t[0], ["NAME", "SIZE", "READY"], "{table}");
    assert_eq!(t[1][..2], ["w1".to_string(), "3".to_string()], "{table}");
    let status = r#"{"status":{"size":3,"conditions":[{"type":"Ready","status":"True"}]}}"#;
    ok(&sim
        .kubectl(&[
            "patch",
            "widget",
            "w1",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ])
        .await);
    let wide = ok(&sim.kubectl(&["get", "gadgets", "-o", "wide"]).await);
    let t = rows(&wide);
    assert_eq!(t[0], ["NAME", "SIZE", "READY", "COLOR"], "{wide}");
    assert_eq!(t[1], ["w1", "3", "True", "blue"], "{wide}");

    // Every served version reads the same object.
    let old = json(&ok(&sim
        .kubectl(&["get", "widgets.v1beta1.example.com", "w1", "-o", "json"])
        .await));
    assert_eq!(old["apiVersion"], "example.com/v1beta1");
    assert_eq!(old["spec"]["size"], 3);

    // The scale subresource at the CRD's paths.
    assert_eq!(
        ok(&sim
            .kubectl(&["scale", "widget", "w1", "--replicas=5"])
            .await)
        .trim(),
        "widget.example.com/w1 scaled"
    );
    let scaled = json(&ok(&sim
        .kubectl(&["get", "widget", "w1", "-o", "json"])
        .await));
    assert_eq!(scaled["spec"]["size"], 5);
    assert_eq!(scaled["metadata"]["generation"], 2);

    // A second CRD of the group that takes a used short name is not established.
    let clash = CRD
        .replace("widgets.example.com", "gizmos.example.com")
        .replace("plural: widgets", "plural: gizmos")
        .replace("kind: Widget", "kind: Gizmo");
    let clash_file = write(&sim, "clash.yaml", &clash);
    ok(&sim.kubectl(&["apply", "-f", &clash_file]).await);
    let gizmos = json(&ok(&sim
        .kubectl(&["get", "crd", "gizmos.example.com", "-o", "json"])
        .await));
    let names = &gizmos["status"]["conditions"][0];
    assert_eq!(names["reason"], "ShortNamesConflict");
    assert_eq!(names["message"], "\"wd\" is already in use");
    let out = sim.kubectl(&["get", "gizmos.example.com"]).await;
    assert!(!out.status.success(), "{}", stdout(&out));

    // Deleting the CRD: the kind is no longer served, and its objects are gone with it.
    ok(&sim
        .kubectl(&["delete", "crd", "widgets.example.com", "--timeout=20s"])
        .await);
    let out = sim.kubectl(&["get", "widgets.example.com"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the server doesn't have a resource type"),
        "{}",
        stderr(&out)
    );
    assert!(
        sim.admin()
            .server()
            .registry()
            .lookup_path("example.com", "v1", "widgets")
            .is_none()
    );
    // Re-created, the kind starts empty.
    ok(&sim.kubectl(&["apply", "-f", &crd]).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = sim.kubectl(&["get", "widgets", "-o", "json"]).await;
    assert_eq!(json(&ok(&out))["items"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_crd_is_refused_with_the_servers_reasons() {
    let sim = Sim::start().await;
    let bad = CRD.replace("name: widgets.example.com", "name: widgets.other.com");
    let file = write(&sim, "bad.yaml", &bad);
    let out = sim.kubectl(&["apply", "-f", &file]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "metadata.name: Invalid value: \"widgets.other.com\": must be spec.names.plural+\".\"+spec.group"
        ),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_kinds_are_crds_with_their_columns() {
    let sim = Sim::start().await;
    let crds = ok(&sim.kubectl(&["get", "crd", "-o", "name"]).await);
    for name in [
        "apps.kappctrl.k14s.io",
        "packageinstalls.packaging.carvel.dev",
        "packagerepositories.packaging.carvel.dev",
        "clusterclasses.cluster.x-k8s.io",
        "clusters.cluster.x-k8s.io",
        "machinedeployments.cluster.x-k8s.io",
        "machines.cluster.x-k8s.io",
        "osimages.run.tanzu.vmware.com",
        "virtualmachineclasses.vmoperator.vmware.com",
        "tanzukubernetesclusters.run.tanzu.vmware.com",
        "tanzukubernetesreleases.run.tanzu.vmware.com",
    ] {
        assert!(
            crds.lines()
                .any(|l| l == format!("customresourcedefinition.apiextensions.k8s.io/{name}")),
            "{name} in {crds}"
        );
    }
    let table = ok(&sim.kubectl(&["get", "pkgi", "-A"]).await);
    assert!(
        table.is_empty() || table.contains("PACKAGE NAME"),
        "{table}"
    );
    let cluster_api = ok(&sim
        .kubectl(&["api-resources", "--categories=cluster-api", "-o", "name"])
        .await);
    let mut kinds: Vec<&str> = cluster_api.lines().collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "clusterclasses.cluster.x-k8s.io",
            "clusters.cluster.x-k8s.io",
            "machinedeployments.cluster.x-k8s.io",
            "machines.cluster.x-k8s.io"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_kinds_from_k8s_openapi_are_served_with_their_short_names() {
    let sim = Sim::start().await;
    let resources = ok(&sim.kubectl(&["api-resources", "--api-group="]).await);
    let nodes = rows(&resources)
        .into_iter()
        .find(|r| r.first().is_some_and(|n| n == "nodes"))
        .unwrap_or_else(|| panic!("{resources}"));
    assert_eq!(nodes, ["nodes", "no", "v1", "false", "Node"]);
    // Each answers an empty list, under its short name where it has one.
    for kind in [
        "no",
        "pv",
        "sc",
        "csr",
        "apiservices",
        "roles",
        "ing",
        "hpa",
    ] {
        let out = sim.kubectl(&["get", kind, "-A", "-o", "json"]).await;
        assert_eq!(json(&ok(&out))["items"], serde_json::json!([]), "{kind}");
    }
    let node = write(
        &sim,
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: esx-01\n",
    );
    assert_eq!(
        ok(&sim.kubectl(&["apply", "-f", &node]).await).trim(),
        "node/esx-01 created"
    );
    let t = rows(&ok(&sim.kubectl(&["get", "no"]).await));
    assert_eq!(t[0], ["NAME", "AGE"]);
    assert_eq!(t[1][0], "esx-01");
}
