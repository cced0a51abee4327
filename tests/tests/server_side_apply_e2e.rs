//! Server-side apply through the REAL kubectl on the simulated API server: `kubectl apply --server-side`
//! creates and updates, a field another manager changed is a conflict kubectl prints with the manager
//! and the field, `--force-conflicts` takes it, a field left out of the file goes, `--dry-run=server`
//! writes nothing.

use supsvc_tests::Supervisor;

const TIME_SCALE: f64 = 0.001;

fn config_map(dir: &std::path::Path, data: &str) -> String {
    let path = dir.join("cm.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: default\ndata:\n{data}"),
    )
    .expect("file written");
    path.to_string_lossy().into_owned()
}

/// The ConfigMap's value at a JSONPath, as `kubectl get -o jsonpath` prints it.
fn data_at(s: &Supervisor, path: &str) -> String {
    s.kubectl_ok(&[
        "get",
        "cm",
        "ssa",
        "-n",
        "default",
        "-o",
        &format!("jsonpath={{{path}}}"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_owns_conflicts_forces_and_prunes() {
    let s = Supervisor::start("harbor", TIME_SCALE).await;
    let file = config_map(s.dir.path(), "  a: \"1\"\n  b: \"2\"\n");
    let out = s.kubectl_ok(&["apply", "--server-side", "-f", &file]);
    assert!(out.contains("configmap/ssa serverside-applied"), "{out}");
    let yaml = s.kubectl_ok(&[
        "get",
        "cm",
        "ssa",
        "-n",
        "default",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        yaml.contains("operation: Apply") && yaml.contains("manager: kubectl"),
        "{yaml}"
    );

    // Another manager changes a field the file sets: the next apply conflicts, as kubectl prints it.
    s.kubectl_ok(&[
        "patch",
        "cm",
        "ssa",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"9"}}"#,
    ]);
    let file = config_map(s.dir.path(), "  a: \"3\"\n  b: \"2\"\n");
    let failed = s.kubectl(&["apply", "--server-side", "-f", &file]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.a"
        ),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");

    // Server dry run changes nothing; force wins.
    s.kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-f",
        &file,
    ]);
    let a = data_at(&s, ".data.a");
    assert_eq!(a, "9");
    s.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", &file]);
    let a = data_at(&s, ".data.a");
    assert_eq!(a, "3");

    // A field removed from the file is removed from the object.
    let file = config_map(s.dir.path(), "  a: \"3\"\n");
    s.kubectl_ok(&["apply", "--server-side", "-f", &file]);
    let data = data_at(&s, ".data");
    assert_eq!(data, r#"{"a":"3"}"#);
}
