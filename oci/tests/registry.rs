//! Push and pull against a real registry (Debian's docker-registry on loopback, see
//! common/registry.rs): round trips, media types, credentials, a private CA, tampered blobs.

#[path = "common/registry.rs"]
mod test_registry;

use supsvc_oci::{
    Credentials, Digest, DockerConfig, PolicyRef, Registry, RegistryError, RegistryOptions,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};
use test_registry::{RegistrySetup, TestRegistry};

/// The smallest valid module, with a custom section so that each test's bytes differ.
fn module(tag: &str) -> Vec<u8> {
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    let name = b"supsvc";
    let payload_len = 1 + name.len() + tag.len();
    wasm.push(0);
    wasm.push(payload_len as u8);
    wasm.push(name.len() as u8);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(tag.as_bytes());
    wasm
}

fn secured() -> TestRegistry {
    TestRegistry::start(RegistrySetup {
        tls: true,
        user: Some(("alice".into(), "wonderland".into())),
    })
}

fn options(registry: &TestRegistry, username: &str, password: &str) -> RegistryOptions {
    RegistryOptions {
        ca_file: registry.ca_file.clone(),
        credentials: Some(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }),
        ..RegistryOptions::default()
    }
}

#[tokio::test]
async fn push_then_pull_round_trips_bytes_and_media_types_over_tls_with_credentials() {
    let registry = secured();
    let client = Registry::new(options(&registry, "alice", "wonderland")).unwrap();
    let wasm = module("round-trip");
    let reference = PolicyRef::parse(&registry.reference("policies/guard:v1")).unwrap();
    let pushed = client
        .push(&wasm, &reference, Some("guard.wasm"))
        .await
        .unwrap();
    assert_eq!(pushed.module_digest, Digest::of(&wasm));
    assert_eq!(pushed.reference.pinned(), Some(&pushed.manifest_digest));

    let pulled = client.pull(&reference).await.unwrap();
    assert_eq!(pulled.wasm, wasm);
    assert_eq!(pulled.config_media_type, WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(pulled.layer_media_type, WASM_LAYER_MEDIA_TYPE);
    assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
    // Kubewarden's shape: an OCI image manifest, config `{}`, one layer with the title.
    let manifest: serde_json::Value = serde_json::from_slice(&pulled.manifest).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["config"]["digest"], Digest::of(b"{}").to_string());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "guard.wasm"
    );

    // Pinned to the pushed digest; the tag resolves to it.
    let pinned = client.pull(&pushed.reference).await.unwrap();
    assert_eq!(pinned.wasm, wasm);
    assert_eq!(
        client.resolve(&reference).await.unwrap(),
        pushed.manifest_digest
    );

    // Credentials from a docker config.json, as `docker login` or a Secret gives them.
    let config_path = registry.dir.path().join("config.json");
    registry.write_docker_config(&config_path, "alice", "wonderland");
    let from_file = Registry::new(RegistryOptions {
        ca_file: registry.ca_file.clone(),
        docker_config: Some(DockerConfig::load(&config_path).unwrap()),
        ..RegistryOptions::default()
    })
    .unwrap();
    assert_eq!(from_file.pull(&reference).await.unwrap().wasm, wasm);
}

#[tokio::test]
async fn wrong_or_missing_credentials_and_an_untrusted_ca_are_clear_errors() {
    let registry = secured();
    let good = Registry::new(options(&registry, "alice", "wonderland")).unwrap();
    let reference = PolicyRef::parse(&registry.reference("policies/guard:v1")).unwrap();
    good.push(&module("creds"), &reference, None).await.unwrap();

    let wrong = Registry::new(options(&registry, "alice", "not-the-password")).unwrap();
    let error = wrong.pull(&reference).await.unwrap_err();
    assert!(
        matches!(
            &error,
            RegistryError::Unauthorized {
                anonymous: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("refused the credentials"),
        "{error}"
    );
    assert!(
        error.hint().contains("username and password"),
        "{}",
        error.hint()
    );
    let error = wrong
        .push(&module("x"), &reference, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::Unauthorized { .. }),
        "{error:?}"
    );

    let anonymous = Registry::new(RegistryOptions {
        ca_file: registry.ca_file.clone(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let error = anonymous.pull(&reference).await.unwrap_err();
    assert!(
        matches!(
            &error,
            RegistryError::Unauthorized {
                anonymous: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.hint().contains("no credentials"), "{}", error.hint());

    // Without the private CA the registry's certificate is not trusted.
    let untrusted = Registry::new(RegistryOptions {
        ca_file: None,
        ..options(&registry, "alice", "wonderland")
    })
    .unwrap();
    let error = untrusted.pull(&reference).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    assert!(error.hint().contains("private CA"), "{}", error.hint());

    let missing = PolicyRef::parse(&registry.reference("policies/guard:v9")).unwrap();
    let error = good.pull(&missing).await.unwrap_err();
    assert!(
        matches!(&error, RegistryError::NotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn plain_http_only_for_registries_named_insecure() {
    let registry = TestRegistry::start(RegistrySetup::default());
    let reference = PolicyRef::parse(&registry.reference("policies/guard:v1")).unwrap();
    let https_only = Registry::new(RegistryOptions::default()).unwrap();
    let error = https_only
        .push(&module("http"), &reference, None)
        .await
        .unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    assert!(
        error.hint().contains("--insecure-registry"),
        "{}",
        error.hint()
    );

    let insecure = Registry::new(RegistryOptions {
        insecure_registries: vec![registry.host.clone()],
        ..RegistryOptions::default()
    })
    .unwrap();
    insecure
        .push(&module("http"), &reference, None)
        .await
        .unwrap();
    assert_eq!(
        insecure.pull(&reference).await.unwrap().wasm,
        module("http")
    );
}

#[tokio::test]
async fn a_digest_mismatch_is_refused() {
    let registry = TestRegistry::start(RegistrySetup::default());
    let client = Registry::new(RegistryOptions {
        insecure_registries: vec![registry.host.clone()],
        ..RegistryOptions::default()
    })
    .unwrap();
    let reference = PolicyRef::parse(&registry.reference("policies/guard:v1")).unwrap();
    let wasm = module("tamper");
    let pushed = client.push(&wasm, &reference, None).await.unwrap();

    // The stored manifest replaced by another policy's: pulled by the pinned digest, the bytes
    // served are not the pinned ones.
    let v2 = PolicyRef::parse(&registry.reference("policies/guard:v2")).unwrap();
    let other = client.push(&module("other"), &v2, None).await.unwrap();
    let manifest_blob = registry.blob_data(&pushed.manifest_digest.to_string());
    let original = std::fs::read(&manifest_blob).unwrap();
    std::fs::copy(
        registry.blob_data(&other.manifest_digest.to_string()),
        &manifest_blob,
    )
    .unwrap();
    let error = client.pull(&pushed.reference).await.unwrap_err();
    assert!(
        matches!(
            &error,
            RegistryError::DigestMismatch {
                what: "manifest",
                ..
            }
        ),
        "{error:?}"
    );
    std::fs::write(&manifest_blob, original).unwrap();
    assert_eq!(client.pull(&pushed.reference).await.unwrap().wasm, wasm);

    // The registry's stored module replaced by other bytes of the same length: the layer's
    // digest no longer matches what is served, and the pull is refused.
    let blob = registry.blob_data(&pushed.module_digest.to_string());
    let mut tampered = std::fs::read(&blob).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x20;
    std::fs::write(&blob, &tampered).unwrap();
    let error = client.pull(&reference).await.unwrap_err();
    assert!(
        matches!(&error, RegistryError::DigestMismatch { what: "module", .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("refused"), "{error}");
}
