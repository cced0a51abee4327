//! The shared admission fixtures, natively: the policy's code path through the SDK's dispatch.

use supsvc_guard_adapter::cases;
use supsvc_registry_guard::RegistryGuard;

#[test]
fn every_fixture_case_gets_its_expected_verdict() {
    cases::run_natively::<RegistryGuard>("registry-guard");
}

#[test]
fn bad_settings_are_refused_by_validate_settings() {
    cases::assert_settings_refused::<RegistryGuard>(&[
        r#"{"allowRegistries": ["x"]}"#,
        r#"{"allowedRegistries": []}"#,
        r#"{"deniedRegistries": ["bad pattern!"]}"#,
        r#"{"allowedRegistries": ["a.example.com"], "deniedRegistries": ["docker.io"]}"#,
        // Entries that can never match: refused at load, not ignored.
        r#"{"deniedRegistries": ["regsitry-1.docker.io"]}"#,
        r#"{"allowedRegistries": ["hub.docker.io"]}"#,
        r#"{"deniedRegistries": ["docker.io:443"]}"#,
        r#"{"deniedHosts": ["https://github.com"]}"#,
        r#"{"allowedHosts": []}"#,
        r#"{"exemptNamespaces": ["Kube-System"]}"#,
    ]);
}
