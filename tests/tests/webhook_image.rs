//! The webhook's container image as `webhook/image/build.sh` assembles it (an OCI image layout, no
//! container daemon): skopeo reads it, umoci unpacks it, and the unpacked root filesystem runs the
//! shipped configuration as Kubernetes would run the image with `webhook/deploy/`: as the image's user,
//! the root filesystem read-only, the configuration, TLS and module cache mounted where
//! deployment.yaml mounts them. Built once, with the `release-check` profile (Cargo.toml).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use object::read::elf::ProgramHeader as _;
use object::{Architecture, Object, elf};
use serde_json::{Value, json};
use supsvc_tests::tools::ensure_tool;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const IMAGE: &str = "ghcr.io/supsvc/supsvc-webhook";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The folder the build script wrote (built once per test process).
fn out() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = target_dir().join("release-check").join("image");
        let output = Command::new("bash")
            .arg(root().join("webhook/image/build.sh"))
            .env("SUPSVC_IMAGE_OUT", &out)
            .env("SUPSVC_IMAGE_PROFILE", "release-check")
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "webhook/image/build.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

fn image_ref() -> String {
    format!("oci:{}:{VERSION}", out().join("oci").display())
}

fn skopeo_inspect(args: &[&str]) -> Value {
    let skopeo = ensure_tool("skopeo", "skopeo");
    let output = Command::new(skopeo)
        .arg("inspect")
        .args(args)
        .arg(image_ref())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo inspect {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The image's root filesystem, unpacked by umoci into a fresh folder.
fn unpacked() -> (tempfile::TempDir, PathBuf) {
    let umoci = ensure_tool("umoci", "umoci");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let output = Command::new(umoci)
        .args(["unpack", "--image"])
        .arg(format!("{}:{VERSION}", out().join("oci").display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (dir, bundle.join("rootfs"))
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

/// The webhook's Deployment in webhook/deploy/deployment.yaml.
fn deployment() -> Value {
    yaml_documents(&root().join("webhook/deploy/deployment.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap()
}

/// The configuration webhook/deploy/configmap.yaml ships.
fn shipped_config() -> Value {
    let configmap = yaml_documents(&root().join("webhook/deploy/configmap.yaml")).remove(0);
    serde_saphyr::from_str(configmap["data"]["config.yaml"].as_str().unwrap()).unwrap()
}

#[test]
fn the_layout_is_valid_with_its_digest_recorded() {
    let manifest = skopeo_inspect(&[]);
    let digest = std::fs::read_to_string(out().join("digest")).unwrap();
    assert_eq!(manifest["Digest"], digest.trim(), "the recorded digest");
    let reference = std::fs::read_to_string(out().join("reference")).unwrap();
    assert_eq!(
        reference.trim(),
        format!("{IMAGE}:{VERSION}@{}", digest.trim())
    );
    assert_eq!(manifest["Os"], "linux");
    assert_eq!(manifest["Architecture"], "amd64");
    // umoci checks every blob against its digest while unpacking.
    let (_dir, rootfs) = unpacked();
    assert!(rootfs.join("usr/local/bin/supsvc-webhook").is_file());
}

#[test]
fn the_image_runs_as_a_non_root_user_with_the_oci_labels() {
    let config = skopeo_inspect(&["--config"]);
    let user = config["config"]["User"].as_str().unwrap();
    assert_eq!(user, "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        json!(["/usr/local/bin/supsvc-webhook"])
    );
    assert!(config["config"]["ExposedPorts"]["8443/tcp"].is_object());
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "supsvc-webhook");
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/supsvc/supsvc"
    );
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap();
    let head = Command::new("git")
        .current_dir(root())
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(revision, String::from_utf8_lossy(&head.stdout).trim());

    // What deployment.yaml runs the image with is what the image is.
    let deployment = deployment();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        format!(
            "{}:{}",
            pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
        ),
        user
    );
    let container = &pod["containers"][0];
    assert_eq!(container["image"], format!("{IMAGE}:{VERSION}"));
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["ports"][0]["containerPort"], 8443);
}

#[test]
fn the_entrypoint_is_static_and_the_policies_are_where_the_config_loads_them() {
    let (_dir, rootfs) = unpacked();
    let binary = rootfs.join("usr/local/bin/supsvc-webhook");
    let data = std::fs::read(&binary).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert_eq!(file.architecture(), Architecture::X86_64);
    let object::File::Elf64(elf_file) = &file else {
        panic!("not an ELF64 executable")
    };
    let endian = elf_file.endian();
    assert!(
        !elf_file
            .elf_program_headers()
            .iter()
            .any(|h| h.p_type(endian) == elf::PT_INTERP),
        "static: no program interpreter"
    );
    // Owned by root, not writable by the image's user.
    let meta = std::fs::metadata(&binary).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o7777), (0, 0o755));

    for policy in shipped_config()["policies"].as_array().unwrap() {
        let module = policy["module"].as_str().unwrap();
        let in_image = rootfs.join(module.trim_start_matches('/'));
        let wasm = std::fs::read(&in_image)
            .unwrap_or_else(|e| panic!("{module} from configmap.yaml is not in the image: {e}"));
        let file = Path::new(module).file_name().unwrap();
        let built = target_dir()
            .join("wasm32-unknown-unknown/wasm-release")
            .join(file);
        assert_eq!(
            wasm,
            std::fs::read(built).unwrap(),
            "{module} is the wasm-release build"
        );
    }
}

/// The unpacked image run as Kubernetes runs it with webhook/deploy/: a private mount namespace, the
/// root filesystem bind-mounted read-only, deployment.yaml's volumes mounted at its paths, chroot,
/// the image's user, the image's entrypoint with deployment.yaml's args.
#[test]
fn the_image_serves_the_shipped_configuration_read_only_as_its_user() {
    let (dir, rootfs) = unpacked();
    let volumes = dir.path().join("volumes");
    // The optional pull Secret is absent: the kubelet mounts an empty volume.
    let (config_dir, tls_dir, cache_dir, registry_dir) = (
        volumes.join("config"),
        volumes.join("tls"),
        volumes.join("cache"),
        volumes.join("registry"),
    );
    for d in [&config_dir, &tls_dir, &cache_dir, &registry_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The emptyDir: writable by the pod's fsGroup.
    std::os::unix::fs::chown(&cache_dir, Some(65532), Some(65532)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = shipped_config();
    config["listen"] = json!(format!("127.0.0.1:{port}"));
    std::fs::write(
        config_dir.join("config.yaml"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(tls_dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(tls_dir.join("tls.key"), key.serialize_pem()).unwrap();
    for d in [&config_dir, &tls_dir] {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }

    let volumes = BTreeMap::from([
        ("config", config_dir.clone()),
        ("tls", tls_dir.clone()),
        ("module-cache", cache_dir.clone()),
        ("registry-credentials", registry_dir.clone()),
    ]);
    let pod = deployment()["spec"]["template"]["spec"].clone();

    // The init container first, to completion, as the kubelet runs it: it compiles the
    // policies into the cache volume.
    let init = &pod["initContainers"][0];
    assert_eq!(init["image"], pod["containers"][0]["image"]);
    let init_log = dir.path().join("precompile.log");
    let status = run_container(&rootfs, init, &volumes, &init_log, &[])
        .wait()
        .unwrap();
    let init_text = std::fs::read_to_string(&init_log).unwrap_or_default();
    assert!(status.success(), "the init container failed: {init_text}");
    assert!(
        init_text.contains("policies compiled into the cache"),
        "{init_text}"
    );
    let cached: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let when = modified(&path);
            (path, when)
        })
        .collect();
    assert_eq!(
        cached.len(),
        2,
        "one compiled module per shipped policy: {cached:?}"
    );

    let log = dir.path().join("webhook.log");
    let mut child = run_container(
        &rootfs,
        &pod["containers"][0],
        &volumes,
        &log,
        &["--drain-seconds", "0"],
    );

    let curl = ensure_tool("curl", "curl");
    let started = Instant::now();
    let ready = loop {
        let ok = Command::new(&curl)
            .args(["-sfk", &format!("https://127.0.0.1:{port}/readyz")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok || started.elapsed() > Duration::from_secs(120) {
            break ok;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the image's webhook exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ready, "no /readyz from the image's webhook: {text}");
    // The policies came from the image and compiled into the mounted cache.
    for name in ["registry-guard", "storage-guard"] {
        assert!(text.contains(name), "{name} loaded: {text}");
    }
    // ... from the modules the init container compiled: none compiled again, none rewritten.
    for (path, when) in &cached {
        assert_eq!(
            &modified(path),
            when,
            "{} rewritten by the webhook",
            path.display()
        );
    }
    assert_eq!(std::fs::read_dir(&cache_dir).unwrap().count(), cached.len());
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Runs one container of deployment.yaml's Pod from the unpacked image, as a container runtime
/// does: a private mount namespace, the root filesystem bind-mounted read-only, the container's
/// volumeMounts (sources from `volumes`, by volume name) at their paths, chroot, the image's
/// user, the image's entrypoint with the container's args (and `extra`). Output to `log`.
fn run_container(
    rootfs: &Path,
    container: &Value,
    volumes: &BTreeMap<&str, PathBuf>,
    log: &Path,
    extra: &[&str],
) -> std::process::Child {
    let mut mounts = BTreeMap::new();
    for mount in container["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        let source = volumes
            .get(name)
            .unwrap_or_else(|| panic!("a volume this test does not mount: {name}"));
        let path = mount["mountPath"].as_str().unwrap().to_string();
        std::fs::create_dir_all(rootfs.join(path.trim_start_matches('/'))).unwrap();
        mounts.insert(path, source.clone());
    }
    let mut script = String::from("set -e\nmount --bind \"$ROOTFS\" \"$ROOTFS\"\n");
    for (path, source) in &mounts {
        script += &format!("mount --bind '{}' \"$ROOTFS{path}\"\n", source.display());
    }
    script += "mount -o remount,bind,ro \"$ROOTFS\"\n";
    script += "if touch \"$ROOTFS/written\" 2>/dev/null; then echo 'root filesystem writable' >&2; exit 1; fi\n";
    script += "exec chroot --userspec=65532:65532 \"$ROOTFS\" \"$@\"\n";
    let args: Vec<String> = serde_json::from_value(container["args"].clone()).unwrap();
    let log_file = std::fs::File::create(log).unwrap();
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg("/usr/local/bin/supsvc-webhook")
        .args(&args)
        .args(extra)
        .env("ROOTFS", rootfs)
        // The webhook logs to stdout (tracing's default writer), errors of the wrapper go to stderr.
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap()
}
