//! `supsvc-webhook --precompile`, what deployment.yaml's init container runs: every policy of the
//! configuration compiled into `cacheDir` before the server starts, and a configuration that
//! cannot serve refused there, before the Pod takes traffic.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::setup::{policy, write_config};
use common::wat_policies::Behaviour;

fn precompile(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supsvc-webhook"))
        .args(["--config", &config.display().to_string(), "--precompile"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn cached(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| {
                    let entry = entry.unwrap();
                    let modified = entry.metadata().unwrap().modified().unwrap();
                    (entry.file_name().to_string_lossy().into_owned(), modified)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_policy_is_compiled_into_the_cache_and_a_second_run_compiles_none() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = write_config(
        dir.path(),
        &[
            policy("accept", Behaviour::Accept, &[]),
            policy("reject", Behaviour::Reject, &[]),
        ],
        &format!("cacheDir: {}", cache.display()),
    );
    let output = precompile(&config);
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(log.contains("policies compiled into the cache"), "{log}");
    let first = cached(&cache);
    assert_eq!(first.len(), 2, "one compiled module per policy: {first:?}");
    assert!(
        first.iter().all(|(name, _)| name.ends_with(".cwasm")),
        "{first:?}"
    );

    // Run again (a restarted Pod's init container, the emptyDir kept): nothing is compiled or
    // written again, the modules load from the cache.
    assert!(precompile(&config).status.success());
    assert_eq!(cached(&cache), first);
}

#[test]
fn a_configuration_that_cannot_serve_fails_the_init_step_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");

    // Without a cacheDir nothing would reach the server.
    let config = write_config(dir.path(), &[policy("accept", Behaviour::Accept, &[])], "");
    let output = precompile(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("no cacheDir"), "{stderr}");
    assert!(stderr.contains("\nhint: set `cacheDir:`"), "{stderr}");

    // A policy whose settings it refuses: named, with its own reason, and exit 1.
    let config = write_config(
        dir.path(),
        &[
            policy("fine", Behaviour::Accept, &[]),
            policy("picky", Behaviour::RefuseSettings, &[]),
        ],
        &format!("cacheDir: {}", cache.display()),
    );
    let output = precompile(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("picky"), "{stderr}");
    assert!(stderr.contains("setting 'x' is required"), "{stderr}");
    assert!(
        stderr.contains("\nhint: fix each policy the error names in "),
        "{stderr}"
    );

    // A module that is not WebAssembly.
    std::fs::write(dir.path().join("fine.wasm"), b"not wasm").unwrap();
    let output = precompile(&config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fine"), "{stderr}");
    assert!(stderr.contains("\nhint: fix each policy"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
