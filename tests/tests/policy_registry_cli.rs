//! `kubectl supsvc policy push|pull` through the built binary against a real registry (Debian's
//! docker-registry on loopback, oci/tests/common/registry.rs) with TLS from a private CA and
//! htpasswd credentials: the bytes round-trip, errors say what was wrong and what to do.

#[path = "../../oci/tests/common/registry.rs"]
mod test_registry;

use std::path::Path;
use std::process::{Command, Output};

use supsvc_tests::workspace_binary;
use test_registry::{RegistrySetup, TestRegistry};

/// The smallest module, with a custom section naming it.
fn module(name: &str) -> Vec<u8> {
    let mut wasm = b"\0asm\x01\0\0\0\0".to_vec();
    wasm.push((1 + 6 + name.len()) as u8);
    wasm.push(6);
    wasm.extend_from_slice(b"supsvc");
    wasm.extend_from_slice(name.as_bytes());
    wasm
}

fn supsvc(dir: &Path, args: &[&str]) -> Output {
    Command::new(workspace_binary("kubectl-supsvc"))
        .args(args)
        .current_dir(dir)
        // No docker config of the machine's: only what the test gives.
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .env_remove("SUPSVC_REGISTRY_USERNAME")
        .env_remove("SUPSVC_REGISTRY_PASSWORD")
        .env_remove("SUPSVC_REGISTRY_CONFIG")
        .output()
        .expect("kubectl-supsvc runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn push_then_pull_round_trips_and_errors_explain_themselves() {
    let registry = TestRegistry::start(RegistrySetup {
        tls: true,
        user: Some(("ci".into(), "pushpull".into())),
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    registry.write_docker_config(&d.join("docker.json"), "ci", "pushpull");
    registry.write_docker_config(&d.join("wrong.json"), "ci", "wrong");
    let ca = registry
        .ca_file
        .as_ref()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let wasm = module("cli");
    std::fs::write(d.join("guard.wasm"), &wasm).unwrap();
    let tag = registry.reference("policies/guard:v1");
    let access = [
        "--registry-config",
        "docker.json",
        "--registry-ca-file",
        ca.as_str(),
    ];

    let pushed = supsvc(
        d,
        &[&["policy", "push", "guard.wasm", tag.as_str()], &access[..]].concat(),
    );
    assert!(pushed.status.success(), "{}", text(&pushed));
    let stdout = String::from_utf8_lossy(&pushed.stdout).into_owned();
    let pinned = stdout
        .lines()
        .find_map(|line| line.strip_prefix("pushed "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    assert!(pinned.starts_with(&format!("{tag}@sha256:")), "{pinned}");

    // By tag to the default file name, and by the pinned digest to a named file.
    let pulled = supsvc(
        d,
        &[&["policy", "pull", tag.as_str()], &access[..]].concat(),
    );
    assert!(pulled.status.success(), "{}", text(&pulled));
    assert_eq!(std::fs::read(d.join("guard.wasm")).unwrap(), wasm);
    let pulled = supsvc(
        d,
        &[
            &["policy", "pull", pinned.as_str(), "-o", "pinned.wasm"],
            &access[..],
        ]
        .concat(),
    );
    assert!(pulled.status.success(), "{}", text(&pulled));
    assert_eq!(std::fs::read(d.join("pinned.wasm")).unwrap(), wasm);

    // Wrong credentials: exit 1, what and what to do, no file written.
    let refused = supsvc(
        d,
        &[
            "policy",
            "pull",
            tag.as_str(),
            "-o",
            "refused.wasm",
            "--registry-config",
            "wrong.json",
            "--registry-ca-file",
            ca.as_str(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("error: registry ") && stderr.contains("refused the credentials"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check the username and password"),
        "{stderr}"
    );
    assert!(!d.join("refused.wasm").exists());

    // Without the private CA: the certificate is not trusted, and the hint names the flag.
    let untrusted = supsvc(
        d,
        &[
            "policy",
            "pull",
            tag.as_str(),
            "--registry-config",
            "docker.json",
        ],
    );
    assert_eq!(untrusted.status.code(), Some(1), "{}", text(&untrusted));
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("--registry-ca-file"),
        "{}",
        text(&untrusted)
    );

    // Not a module, a bad reference: usage errors (exit 2).
    std::fs::write(d.join("notes.txt"), "not wasm").unwrap();
    let not_wasm = supsvc(
        d,
        &[&["policy", "push", "notes.txt", tag.as_str()], &access[..]].concat(),
    );
    assert_eq!(not_wasm.status.code(), Some(2), "{}", text(&not_wasm));
    assert!(
        String::from_utf8_lossy(&not_wasm.stderr).contains("not a WebAssembly module"),
        "{}",
        text(&not_wasm)
    );
    let bad_ref = supsvc(d, &["policy", "pull", "guard:v1"]);
    assert_eq!(bad_ref.status.code(), Some(2), "{}", text(&bad_ref));
    assert!(
        String::from_utf8_lossy(&bad_ref.stderr).contains("hint: write registry://"),
        "{}",
        text(&bad_ref)
    );

    // The stored module tampered with: the pull is refused and writes nothing.
    let digest = pinned.rsplit('@').next().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry.blob_data(digest)).unwrap()).unwrap();
    let layer = registry.blob_data(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&layer, bytes).unwrap();
    let tampered = supsvc(
        d,
        &[
            &["policy", "pull", pinned.as_str(), "-o", "tampered.wasm"],
            &access[..],
        ]
        .concat(),
    );
    assert_eq!(tampered.status.code(), Some(1), "{}", text(&tampered));
    assert!(
        String::from_utf8_lossy(&tampered.stderr).contains("does not match its digest"),
        "{}",
        text(&tampered)
    );
    assert!(!d.join("tampered.wasm").exists());
}

/// `webhook bundle --push`: the imgpkg bundle as an image in a real registry, read back with
/// skopeo (an independent client): Docker's v2 manifest with one gzipped layer, the config labelled
/// `dev.carvel.imgpkg.bundle` (what imgpkg and kapp-controller check), the layer holding exactly
/// the files `webhook bundle -o` writes, and the digest printed the one the registry serves.
#[test]
fn the_webhook_bundle_pushes_as_an_imgpkg_bundle_skopeo_reads() {
    let registry = TestRegistry::start(RegistrySetup {
        tls: false,
        user: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = "my-registry.example.com/supsvc/supsvc-webhook@sha256:5f0a1c2b3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";
    let reference = format!("{}/supsvc/supsvc-webhook-bundle:0.1.0", registry.host);
    let out = d.join("written");
    let push = supsvc(
        d,
        &[
            "webhook",
            "bundle",
            "--image",
            image,
            "-o",
            out.to_str().unwrap(),
            "--push",
            &reference,
            "--insecure-registry",
            &registry.host,
        ],
    );
    assert!(push.status.success(), "{}", text(&push));
    let stdout = String::from_utf8_lossy(&push.stdout).into_owned();
    let digest = stdout
        .split(&format!("{reference}@"))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_owned();
    // The next step names the pushed bundle by digest, as `webhook package --bundle` requires; a
    // success prints no `hint:` (those are errors', on stderr).
    assert!(
        stdout.contains(&format!(
            "\nnext: kubectl supsvc webhook package --bundle {reference}@{digest}\n"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("hint:"), "{stdout}");

    let skopeo = supsvc_tests::tools::ensure_tool("skopeo", "skopeo");
    let inspect = |extra: &[&str]| -> serde_json::Value {
        let output = Command::new(&skopeo)
            .args(["inspect", "--tls-verify=false"])
            .args(extra)
            .arg(format!("docker://{reference}"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let manifest = inspect(&["--raw"]);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let config = inspect(&["--config"]);
    assert!(
        config["config"]["Labels"]
            .get("dev.carvel.imgpkg.bundle")
            .is_some(),
        "{config:#}"
    );
    assert_eq!(inspect(&[])["Digest"], digest.as_str());

    // The layer, copied out by skopeo, holds the files `-o` wrote, byte for byte.
    let copied = d.join("copied");
    let output = Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", copied.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = std::fs::read(copied.join(layer_digest.trim_start_matches("sha256:"))).unwrap();
    let unpacked = d.join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg("-")
        .arg("-C")
        .arg(&unpacked)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&layer)?;
            child.wait()
        })
        .unwrap();
    assert!(tar.success());
    for file in [
        "config/values.yaml",
        "config/webhook.yaml",
        ".imgpkg/images.yml",
    ] {
        assert_eq!(
            std::fs::read_to_string(unpacked.join(file)).unwrap(),
            std::fs::read_to_string(out.join(file)).unwrap(),
            "{file}"
        );
    }

    // A tag-only image cannot be locked: refused before anything is pushed.
    let refused = supsvc(
        d,
        &[
            "webhook",
            "bundle",
            "--image",
            "ghcr.io/supsvc/supsvc-webhook:0.1.0",
            "--push",
            &format!("{}/supsvc/other:0.1.0", registry.host),
            "--insecure-registry",
            &registry.host,
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a reference by digest"),
        "{}",
        text(&refused)
    );
}
