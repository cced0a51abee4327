//! `kubectl supsvc override-image` on the KB's air-gapped deadlock: `override-package-image.sh`'s
//! interface, made safe. Dry runs write nothing, a real run changes only the bundle image, `--revert`
//! restores it, `--registry-map` rewrites every public reference of the child Packages and `--then-fix`
//! brings the service to Reconcile succeeded; bad input is refused with nothing half-written.
//! Driven through the built binary and through the real `kubectl supsvc`.

use serde_json::Value;
use supsvc_sim::api::gvr;
use supsvc_tests::plugin::{Run, Via, supsvc_command};
use supsvc_tests::{SERVICES_NAMESPACE, Supervisor, TKG, TKG_CHILDREN, TKG_DOMAIN, reconciled};

const TIME_SCALE: f64 = 0.001;
const PACKAGE: &str = "tkg.vsphere.vmware.com.3.5.1-embedded+v1.34";
/// Where the scenario's history left the bundle: the `imgpkg copy` relocation.
const RELOCATED: &str = "my-registry.example.com/tkg-svs/package/tkg-service:3.5.1";
const NEW: &str = "my-registry.example.com/tkg-svs/package/tkg-service:3.5.1-r2";
const ANNOTATION: &str = "supsvc.io/previous-image";

/// `kubectl supsvc ARGS` (or the binary) against the scenario.
async fn supsvc(sup: &Supervisor, via: Via, args: &[&str]) -> Run {
    let mut cmd = supsvc_command(via, &sup.kubeconfig);
    cmd.args(args);
    Run::of(cmd).await
}

async fn package(sup: &Supervisor, namespace: &str, name: &str) -> Value {
    sup.get(gvr::PACKAGES, namespace, name).await
}

fn bundle(p: &Value) -> &str {
    p["spec"]["template"]["spec"]["fetch"][0]["imgpkgBundle"]["image"]
        .as_str()
        .unwrap()
}

fn rv(p: &Value) -> &str {
    p["metadata"]["resourceVersion"].as_str().unwrap()
}

/// The object without what the server maintains and without what override-image may change.
fn rest(p: &Value) -> Value {
    let mut p = p.clone();
    for k in ["resourceVersion", "managedFields", "generation"] {
        p["metadata"].as_object_mut().unwrap().remove(k);
    }
    let meta = p["metadata"].as_object_mut().unwrap();
    if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        a.remove(ANNOTATION);
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
    p["spec"]["template"]["spec"]["fetch"][0]["imgpkgBundle"]["image"] = Value::Null;
    p
}

async fn child_packages(sup: &Supervisor) -> Vec<Value> {
    let mut out = Vec::new();
    for child in TKG_CHILDREN {
        out.push(package(sup, TKG_DOMAIN, &format!("{child}.tanzu.vmware.com.3.5.1")).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_and_the_real_run_changes_only_the_bundle_image_until_reverted() {
    let sup = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let before = package(&sup, SERVICES_NAMESPACE, PACKAGE).await;
    assert_eq!(bundle(&before), RELOCATED);

    for (via, dry) in [
        (Via::Binary, "--dry-run"),
        (Via::Kubectl, "--dry-run=server"),
    ] {
        let run = supsvc(
            &sup,
            via,
            &["override-image", "-p", PACKAGE, "-i", NEW, dry],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(
            run.stdout
                .contains(&format!("-          image: {RELOCATED}"))
                && run.stdout.contains(&format!("+          image: {NEW}")),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("nothing was written"), "{}", run.stdout);
        assert_eq!(
            rv(&package(&sup, SERVICES_NAMESPACE, PACKAGE).await),
            rv(&before),
            "{dry}"
        );
    }

    // The KB's interface, through kubectl: -p, -i, -n.
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &[
            "override-image",
            "-p",
            PACKAGE,
            "-i",
            NEW,
            "-n",
            SERVICES_NAMESPACE,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("--revert"), "{}", run.stdout);
    let after = package(&sup, SERVICES_NAMESPACE, PACKAGE).await;
    assert_eq!(bundle(&after), NEW);
    assert_eq!(after["metadata"]["annotations"][ANNOTATION], RELOCATED);
    assert_eq!(
        rest(&after),
        rest(&before),
        "only the bundle image (and the annotation) changed"
    );

    // Overriding to the image in use changes nothing.
    let run = supsvc(
        &sup,
        Via::Binary,
        &["override-image", "-p", PACKAGE, "-i", NEW],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("nothing to change"), "{}", run.stdout);
    assert_eq!(
        rv(&package(&sup, SERVICES_NAMESPACE, PACKAGE).await),
        rv(&after)
    );

    // --revert restores it (and can itself be reverted), -o json for scripts.
    let run = supsvc(
        &sup,
        Via::Binary,
        &["override-image", "-p", PACKAGE, "--revert", "-o", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let out: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(out["written"], true);
    assert_eq!(out["packages"][0]["rewrites"][0]["from"], NEW);
    assert_eq!(out["packages"][0]["rewrites"][0]["to"], RELOCATED);
    assert_eq!(
        out["packages"][0]["rewrites"][0]["path"],
        "spec.template.spec.fetch[0].imgpkgBundle.image"
    );
    let reverted = package(&sup, SERVICES_NAMESPACE, PACKAGE).await;
    assert_eq!(bundle(&reverted), RELOCATED);
    assert_eq!(reverted["metadata"]["annotations"][ANNOTATION], NEW);
    assert_eq!(rest(&reverted), rest(&before));
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_map_rewrites_every_public_reference_and_then_fix_reconciles_the_service() {
    let sup = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let before = child_packages(&sup).await;
    assert!(
        before
            .iter()
            .all(|p| bundle(p).starts_with("projects.registry.vmware.com/"))
    );
    let map = "projects.registry.vmware.com/tkg/packages/core=my-registry.example.com/tkg-svs/package/core";

    // Dry run: every rewrite shown, nothing written.
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "override-image",
            "-n",
            TKG_DOMAIN,
            "--registry-map",
            map,
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("6 reference(s) in 6 Package(s) would be rewritten"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("warning: 6 of these Packages are deployed by kapp"),
        "{}",
        run.stderr
    );
    for (b, a) in before.iter().zip(child_packages(&sup).await) {
        assert_eq!(rv(b), rv(&a));
    }

    // The real run, through kubectl, with the fix after it.
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &[
            "override-image",
            "-n",
            TKG_DOMAIN,
            "--registry-map",
            map,
            "--then-fix",
            "--timeout",
            "60s",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("Rewrote 6 reference(s) in 6 Package(s) of svc-tkg-domain-c1234"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "Running `kubectl supsvc fix {TKG} -n {SERVICES_NAMESPACE}`"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Succeeded:"), "{}", run.stdout);
    // Every child Package fetches from the private registry: first rewritten by the map, then
    // replaced by the corrected Packages the parent's deploy applied.
    for p in child_packages(&sup).await {
        assert!(
            !bundle(&p).contains("projects.registry.vmware.com"),
            "{}",
            bundle(&p)
        );
        assert!(
            bundle(&p).starts_with("my-registry.example.com/"),
            "{}",
            bundle(&p)
        );
    }
    assert!(reconciled(
        &sup.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await
    ));
    assert!(reconciled(
        &sup.get(gvr::PACKAGE_INSTALLS, SERVICES_NAMESPACE, TKG)
            .await
    ));
    for child in TKG_CHILDREN {
        assert!(
            reconciled(&sup.get(gvr::PACKAGE_INSTALLS, TKG_DOMAIN, child).await),
            "{child}"
        );
    }
    let table = sup.kubectl_ok(&["get", "pkgi", TKG, "-n", SERVICES_NAMESPACE]);
    assert!(table.contains("Reconcile succeeded"), "{table}");
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_map_alone_then_fix_and_a_warning_for_another_registry() {
    let sup = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let map = "projects.registry.vmware.com=my-registry.example.com/vmware";
    let run = supsvc(
        &sup,
        Via::Binary,
        &[
            "override-image",
            "-n",
            TKG_DOMAIN,
            "--registry-map",
            map,
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let out: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(out["packages"].as_array().unwrap().len(), 6);
    for p in child_packages(&sup).await {
        assert!(
            bundle(&p).starts_with("my-registry.example.com/vmware/tkg/packages/core/"),
            "{}",
            bundle(&p)
        );
        assert!(
            p["metadata"]["annotations"][ANNOTATION]
                .as_str()
                .unwrap()
                .starts_with("projects.registry.vmware.com/")
        );
    }
    // A second run finds nothing left to rewrite.
    let run = supsvc(
        &sup,
        Via::Binary,
        &["override-image", "-n", TKG_DOMAIN, "--registry-map", map],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("nothing to change"), "{}", run.stdout);

    // One child pointed somewhere else than where its siblings were relocated: a warning.
    let child = "tkg-controller.tanzu.vmware.com.3.5.1";
    let run = supsvc(
        &sup,
        Via::Kubectl,
        &[
            "override-image",
            "-n",
            TKG_DOMAIN,
            "-p",
            child,
            "-i",
            "other.example.com/tkg/tkg-controller:v3.5.1",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("warning: other.example.com/tkg/tkg-controller:v3.5.1 is on other.example.com, but the other Packages of the namespace were relocated to my-registry.example.com"), "{}", run.stderr);

    // `kubectl supsvc fix` afterwards: the service reconciles.
    let run = supsvc(&sup, Via::Kubectl, &["fix", "-y", "--timeout", "60s"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(reconciled(
        &sup.get(gvr::APPS, SERVICES_NAMESPACE, TKG).await
    ));
    sup.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_clearly_and_nothing_is_half_written() {
    let sup = Supervisor::start("airgap-deadlock", TIME_SCALE).await;
    let parent = package(&sup, SERVICES_NAMESPACE, PACKAGE).await;
    let children = child_packages(&sup).await;
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "override-image",
                "-p",
                "tkg.vsphere.vmware.com.3.5.1",
                "-i",
                NEW,
            ],
            1,
            "did you mean: tkg.vsphere.vmware.com.3.5.1-embedded+v1.34?",
        ),
        (
            vec!["override-image", "-p", "nothing-like-it", "-i", NEW],
            1,
            "the Packages in vmware-system-supervisor-services are: tkg.vsphere.vmware.com.3.5.1-embedded+v1.34",
        ),
        (
            vec![
                "override-image",
                "-p",
                PACKAGE,
                "-i",
                "My-Registry.example.com/Tkg:3.5.1",
            ],
            2,
            "-i \"My-Registry.example.com/Tkg:3.5.1\"",
        ),
        (
            vec![
                "override-image",
                "-p",
                PACKAGE,
                "-i",
                "my-registry.example.com/tkg:",
            ],
            2,
            "invalid",
        ),
        (
            vec![
                "override-image",
                "-p",
                PACKAGE,
                "-i",
                "projects.registry.vmware.com/tkg/packages/tkg-service:3.5.1",
            ],
            1,
            "is on the public registry projects.registry.vmware.com",
        ),
        (
            vec!["override-image", "-p", PACKAGE, "--revert"],
            1,
            "no previous image to revert to",
        ),
        (vec!["override-image", "-p", PACKAGE], 2, "--image"),
        (vec!["override-image", "-i", NEW], 2, "--package-name"),
        (
            vec![
                "override-image",
                "-p",
                PACKAGE,
                "-i",
                NEW,
                "--registry-map",
                "a.com=b.com",
            ],
            2,
            "cannot be used with",
        ),
        (
            vec![
                "override-image",
                "-n",
                TKG_DOMAIN,
                "--registry-map",
                "projects.registry.vmware.com",
            ],
            2,
            "expected OLD=NEW",
        ),
        (
            vec![
                "override-image",
                "-n",
                TKG_DOMAIN,
                "--registry-map",
                "*.vmware.com=my-registry.example.com",
            ],
            2,
            "wildcard",
        ),
        (
            vec![
                "override-image",
                "-n",
                TKG_DOMAIN,
                "--registry-map",
                "projects.registry.vmware.com=my-registry.example.com/UPPER",
            ],
            2,
            "invalid reference",
        ),
        (
            vec![
                "override-image",
                "-n",
                TKG_DOMAIN,
                "--registry-map",
                "projects.registry.vmware.com=docker.io/vmware",
            ],
            1,
            "public registry docker.io",
        ),
        (
            vec![
                "--context",
                "supervisor-viewer",
                "override-image",
                "-p",
                PACKAGE,
                "-i",
                NEW,
            ],
            1,
            "(403)",
        ),
        (
            vec![
                "--context",
                "supervisor-viewer",
                "override-image",
                "-n",
                TKG_DOMAIN,
                "--registry-map",
                "projects.registry.vmware.com=my-registry.example.com/vmware",
            ],
            1,
            "(403)",
        ),
    ];
    for (args, code, message) in cases {
        let run = supsvc(&sup, Via::Binary, &args).await;
        assert_eq!(run.code, code, "{args:?}: {}", run.all());
        assert!(
            run.stderr.starts_with("error:") || run.stderr.contains("\nerror:"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        if code == 1 {
            assert!(run.stderr.contains("\nhint: "), "{args:?}: {}", run.stderr);
        }
        assert_eq!(
            rv(&package(&sup, SERVICES_NAMESPACE, PACKAGE).await),
            rv(&parent),
            "{args:?}"
        );
        for (b, a) in children.iter().zip(child_packages(&sup).await) {
            assert_eq!(rv(b), rv(&a), "{args:?}");
        }
    }
    sup.sim.stop().await;
}
