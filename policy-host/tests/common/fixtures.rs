//! Builds the test-fixture policy crates (`tests/fixtures/policies/*`, outside the workspace)
//! to `.wasm`, once per test process, into `target/fixture-policies`. Cargo's own lock on
//! that directory keeps concurrent test processes from clashing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub const UNKNOWN_UNKNOWN: &str = supsvc_wasm_target::WASM32_UNKNOWN_UNKNOWN;
pub const WASIP1: &str = supsvc_wasm_target::WASM32_WASIP1;

/// Installs `target` where it is missing (the tests set up what they need); where it cannot, fails
/// with the one line that says what is missing and the command that installs it.
pub fn ensure_target(target: &str) {
    if let Err(e) = supsvc_wasm_target::ensure(
        target,
        &workspace_root(),
        supsvc_wasm_target::Install::WithRustup,
    ) {
        panic!("error: {e}");
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the workspace")
        .to_path_buf()
}

pub fn fixture_dir(crate_name: &str) -> PathBuf {
    workspace_root()
        .join("tests/fixtures/policies")
        .join(crate_name)
}

/// The `.wasm` of fixture crate `crate_name` for `target`, built if needed.
pub fn fixture_policy(crate_name: &str, target: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_build_at_a_time = BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    ensure_target(target);
    let dir = fixture_dir(crate_name);
    let target_dir = workspace_root().join("target/fixture-policies");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .args([
            "build",
            "--lib",
            "--target",
            target,
            "--profile",
            "wasm-release",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building fixture policy {crate_name} for {target} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir
        .join(target)
        .join("wasm-release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
}
