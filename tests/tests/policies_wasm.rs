//! The shipped policies as the webhook runs them: the built `.wasm` in the real policy host, on the
//! same admission fixtures the policies' native tests use.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use supsvc_guard_adapter::cases;
use supsvc_policy_host::{HostOptions, LoadError, Policy, PolicyError, PolicyHost, PolicySpec};
use supsvc_tests::policy_wasm;

fn load(host: &PolicyHost, package: &str, settings: Value) -> Result<Policy, LoadError> {
    let wasm = std::fs::read(policy_wasm(package)).expect("policy built");
    host.load(PolicySpec {
        settings,
        ..PolicySpec::new(package, wasm)
    })
}

/// Runs `each` on every admission fixture of `policy_name` (the guard's own test cases), in order,
/// with its request and the built `package` loaded with the fixture's settings (loaded once per
/// distinct settings); returns how many fixtures there were.
fn for_each_case(
    policy_name: &str,
    package: &str,
    mut each: impl FnMut(&cases::Case, Value, &Policy),
) -> usize {
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let mut loaded: HashMap<String, Policy> = HashMap::new();
    let mut count = 0;
    for (case, request) in cases::load(policy_name) {
        let settings = cases::settings_of(&case);
        let policy = loaded.entry(settings.to_string()).or_insert_with(|| {
            load(&host, package, settings.clone())
                .unwrap_or_else(|e| panic!("{package} loads: {e}"))
        });
        each(&case, request, policy);
        count += 1;
    }
    count
}

/// `policy`'s answer to `request` is `case`'s verdict (accepted, message, warnings); a failure names
/// the fixture's request file followed by `what`.
fn assert_verdict(policy: &Policy, case: &cases::Case, request: &Value, what: &str) {
    let bytes: Arc<[u8]> = serde_json::to_vec(request).unwrap().into();
    let response = policy
        .validate(&bytes)
        .unwrap_or_else(|e| panic!("{}{what}: {e}", case.request));
    let warnings = response.warnings.clone().unwrap_or_default();
    cases::check(
        case,
        response.accepted,
        response.message.as_deref(),
        &warnings,
    )
    .unwrap_or_else(|e| panic!("{}{what}: {e}", case.request));
}

fn run_cases(policy_name: &str, package: &str) {
    let checked = for_each_case(policy_name, package, |case, request, policy| {
        assert_verdict(policy, case, &request, "")
    });
    assert!(checked > 0, "no {policy_name} fixture");
}

#[test]
fn the_storage_guard_wasm_gives_every_fixture_its_verdict() {
    run_cases("storage-guard", "supsvc-storage-guard");
}

#[test]
fn the_registry_guard_wasm_gives_every_fixture_its_verdict() {
    run_cases("registry-guard", "supsvc-registry-guard");
}

#[test]
fn bad_settings_refuse_the_policy_at_load_with_a_clear_message() {
    let host = PolicyHost::new(HostOptions::default()).unwrap();
    let cases = [
        (
            "supsvc-storage-guard",
            serde_json::json!({"deployerz": []}),
            "unknown field `deployerz`",
        ),
        (
            "supsvc-storage-guard",
            serde_json::json!({"allowedUsers": ["a*b"]}),
            "allowedUsers: invalid pattern",
        ),
        (
            "supsvc-registry-guard",
            serde_json::json!({"deniedRegistries": ["bad pattern!"]}),
            "deniedRegistries: invalid registry pattern",
        ),
        (
            "supsvc-registry-guard",
            serde_json::json!({"allowedRegistries": ["a.example.com"], "deniedRegistries": []}),
            "not both",
        ),
    ];
    for (package, settings, expected) in cases {
        let error = load(&host, package, settings.clone())
            .err()
            .unwrap_or_else(|| panic!("{package} {settings} must be refused"));
        assert!(
            error.to_string().contains(expected),
            "{package} {settings}: {error}"
        );
    }
}

/// `{"d":{"d":…}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut value = serde_json::json!("bottom");
    for _ in 0..levels {
        value = serde_json::json!({ "d": value });
    }
    value
}

/// The guards' guest stack is 64 KiB (their build.rs), not Rust's 1 MiB: it must still hold the
/// deepest request their JSON decoder accepts. serde_json stops at 128 levels; the payload's
/// `{"request":{"object":{…` takes 3, so an unknown field 120 levels deep is the deepest the
/// guards read through, and every fixture must keep its verdict with one. Deeper still, the
/// guest refuses the payload; it never overflows its stack (a trap).
fn deep_requests_keep_their_verdicts(policy_name: &str, package: &str) {
    let deepen = |request: &mut Value, levels: usize| {
        for field in ["object", "oldObject"] {
            if let Some(object) = request.get_mut(field).and_then(|o| o.as_object_mut()) {
                object.insert("x-deep".into(), nested(levels));
            }
        }
    };
    let checked = for_each_case(policy_name, package, |case, mut request, policy| {
        deepen(&mut request, 120);
        assert_verdict(policy, case, &request, " with a 120-deep field");

        deepen(&mut request, 1_000);
        let bytes: Arc<[u8]> = serde_json::to_vec(&request).unwrap().into();
        if let Err(e @ PolicyError::Trap { .. }) = policy.validate(&bytes) {
            panic!("{} with a 1,000-deep field: {e}", case.request);
        }
    });
    assert!(checked > 0, "no {policy_name} fixture");
}

#[test]
fn the_storage_guard_wasm_reads_the_deepest_requests_on_its_small_stack() {
    deep_requests_keep_their_verdicts("storage-guard", "supsvc-storage-guard");
}

#[test]
fn the_registry_guard_wasm_reads_the_deepest_requests_on_its_small_stack() {
    deep_requests_keep_their_verdicts("registry-guard", "supsvc-registry-guard");
}
