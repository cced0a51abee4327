//! Real kubectl against the simulated API server.

mod api_support;

use api_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let sim = Sim::start().await;
    std::fs::write(
        sim.dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: '1'\n",
    )
    .unwrap();
    let f = sim.dir.path().join("cm.yaml");
    let f = f.to_str().unwrap();
    for args in [
        vec!["apply", "-f", f, "-v=6"],
        vec!["apply", "-f", f, "-v=6"],
        vec!["label", "cm", "a", "x=y", "-v=6"],
        vec!["edit", "cm", "a", "-v=6"],
        vec!["get", "cm", "a", "-o", "yaml"],
    ] {
        let out = sim
            .kubectl_env(&args, &[("KUBE_EDITOR", "sed -i s/x:.*1.*/x:\\ \\'2\\'/")])
            .await;
        println!("== {args:?}\n{}\n{}", stdout(&out), stderr(&out));
    }
}
