//! `registry://` modules against a real registry (Debian's docker-registry on loopback, see
//! oci/tests/common/registry.rs), with the webhook over real HTTPS: the same verdict as from the
//! file, credentials from a dockerconfigjson file, a bad new version kept out, and a start from
//! the cache with the registry down.

mod common;
#[path = "../../oci/tests/common/registry.rs"]
mod test_registry;

use std::path::Path;
use std::time::Duration;

use common::served::{Served, reloads, tls_in, wait_for};
use common::wat_policies::{Behaviour, wasm};
use supsvc_oci::{Credentials, PolicyRef, Registry, RegistryOptions};
use supsvc_policy_host::{HostOptions, PolicyHost};
use supsvc_webhook::config::Config;
use supsvc_webhook::policy_set::PolicySet;
use test_registry::{RegistrySetup, TestRegistry};

/// A webhook over HTTPS serving one policy whose module is `module`, with `extra` top-level YAML.
async fn serve(dir: &Path, module: &str, extra: &str) -> Served {
    let (cert, header) = tls_in(dir);
    let yaml = format!(
        "{header}\n{extra}\npolicies:\n  \
         - name: guard\n    module: {module}\n    timeout: 500\n    memoryLimit: 16Mi\n",
    );
    let config = dir.join("config.yaml");
    std::fs::write(&config, yaml).unwrap();
    Served::start(&config, &cert).await
}

async fn push(registry: &Registry, reference: &str, wasm: &[u8]) -> PolicyRef {
    let reference = PolicyRef::parse(reference).unwrap();
    registry
        .push(wasm, &reference, None)
        .await
        .unwrap()
        .reference
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_module_gives_the_file_verdict_with_credentials_from_a_secret_file() {
    let registry = TestRegistry::start(RegistrySetup {
        tls: true,
        user: Some(("puller".into(), "s3cret".into())),
    });
    let pusher = Registry::new(RegistryOptions {
        ca_file: registry.ca_file.clone(),
        credentials: Some(Credentials::Basic {
            username: "puller".into(),
            password: "s3cret".into(),
        }),
        ..RegistryOptions::default()
    })
    .unwrap();
    let module = wasm(Behaviour::Reject);
    let pinned = push(&pusher, &registry.reference("policies/guard:v1"), &module).await;

    // From the file.
    let file_dir = tempfile::tempdir().unwrap();
    std::fs::write(file_dir.path().join("guard.wasm"), &module).unwrap();
    let from_file = serve(file_dir.path(), "guard.wasm", "").await;
    from_file.wait_ready().await;
    let expected = from_file.review().await;
    assert_eq!(expected["response"]["allowed"], false, "{expected}");

    // From the registry: by tag and by digest, credentials from a mounted .dockerconfigjson.
    for reference in [registry.reference("policies/guard:v1"), pinned.to_string()] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pull-secret")).unwrap();
        registry.write_docker_config(
            &dir.path().join("pull-secret/.dockerconfigjson"),
            "puller",
            "s3cret",
        );
        std::fs::copy(
            registry.ca_file.as_ref().unwrap(),
            dir.path().join("ca.crt"),
        )
        .unwrap();
        let extra = "registry: {configFile: pull-secret/.dockerconfigjson, caFile: ca.crt}";
        let served = serve(dir.path(), &reference, extra).await;
        served.wait_ready().await;
        assert_eq!(served.review().await, expected, "{reference}");
        served.webhook.stop();
    }

    // Wrong credentials: not loaded, and the error says why and what to do.
    let dir = tempfile::tempdir().unwrap();
    registry.write_docker_config(&dir.path().join("docker.json"), "puller", "wrong");
    std::fs::copy(
        registry.ca_file.as_ref().unwrap(),
        dir.path().join("ca.crt"),
    )
    .unwrap();
    let config = Config::parse(&format!(
        "registry: {{configFile: docker.json, caFile: ca.crt}}\npolicies: [{{name: guard, module: '{}'}}]",
        registry.reference("policies/guard:v1")
    ))
    .unwrap();
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let error = PolicySet::load(&host, &config, dir.path(), None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("policy guard"), "{error}");
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(
        error.contains("hint: check the username and password"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_new_version_keeps_the_running_one_and_a_good_one_replaces_it() {
    let mut registry = TestRegistry::start(RegistrySetup::default());
    let pusher = Registry::new(RegistryOptions {
        insecure_registries: vec![registry.host.clone()],
        ..RegistryOptions::default()
    })
    .unwrap();
    let tag = registry.reference("policies/guard:stable");
    push(&pusher, &tag, &wasm(Behaviour::Accept)).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "registry: {{insecureRegistries: ['{}'], refreshIntervalMs: 50}}",
        registry.host
    );
    let served = serve(dir.path(), &tag, &extra).await;
    served.wait_ready().await;
    assert_eq!(served.review().await["response"]["allowed"], true);

    // The tag moved to a module that does not compile: refused, the running one serves on.
    let failures = reloads(&served.webhook.state, "failure");
    push(&pusher, &tag, b"\0asm\x01\0\0\0 not a module").await;
    wait_for(
        "the broken version to be refused",
        Duration::from_secs(60),
        async || reloads(&served.webhook.state, "failure") > failures,
    )
    .await;
    assert!(served.ready().await);
    assert_eq!(served.review().await["response"]["allowed"], true);

    // The registry down: the tag cannot be resolved, the running module serves on.
    registry.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(served.ready().await);
    assert_eq!(served.review().await["response"]["allowed"], true);

    // Back, with a good new version on the tag: resolved again, pulled, swapped in.
    registry.restart();
    push(&pusher, &tag, &wasm(Behaviour::Reject)).await;
    wait_for(
        "the new version to serve",
        Duration::from_secs(60),
        async || served.review().await["response"]["allowed"] == false,
    )
    .await;
    served.webhook.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_pinned_module_starts_from_the_cache_with_the_registry_down() {
    let mut registry = TestRegistry::start(RegistrySetup::default());
    let pusher = Registry::new(RegistryOptions {
        insecure_registries: vec![registry.host.clone()],
        ..RegistryOptions::default()
    })
    .unwrap();
    let pinned = push(
        &pusher,
        &registry.reference("policies/guard:v1"),
        &wasm(Behaviour::Reject),
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let extra = format!(
        "cacheDir: {}\nregistry: {{insecureRegistries: ['{}']}}",
        cache.path().display(),
        registry.host
    );
    let first_dir = tempfile::tempdir().unwrap();
    let first = serve(first_dir.path(), &pinned.to_string(), &extra).await;
    first.wait_ready().await;
    let expected = first.review().await;
    first.webhook.stop();

    registry.stop();
    let second_dir = tempfile::tempdir().unwrap();
    let second = serve(second_dir.path(), &pinned.to_string(), &extra).await;
    second.wait_ready().await;
    assert_eq!(second.review().await, expected);
    second.webhook.stop();

    // Without the cache there is nothing to start from: not ready, and the error says why.
    let config = Config::parse(&format!(
        "registry: {{insecureRegistries: ['{}']}}\npolicies: [{{name: guard, module: '{pinned}'}}]",
        registry.host
    ))
    .unwrap();
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let error = PolicySet::load(&host, &config, cache.path(), None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot reach registry"), "{error}");

    // A cached module that was tampered with is not loaded: it is pulled again, or refused.
    let blobs = cache.path().join("oci/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        std::fs::write(entry.unwrap().path(), b"\0asm\x01\0\0\0").unwrap();
    }
    let config = Config::parse(&format!(
        "cacheDir: {}\nregistry: {{insecureRegistries: ['{}']}}\npolicies: [{{name: guard, module: '{pinned}'}}]",
        cache.path().display(),
        registry.host
    ))
    .unwrap();
    let error = PolicySet::load(&host, &config, cache.path(), None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot reach registry"), "{error}");
}
