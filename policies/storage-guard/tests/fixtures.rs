//! The shared admission fixtures, natively: the policy's code path through the SDK's dispatch.

use supsvc_guard_adapter::cases;
use supsvc_storage_guard::StorageGuard;

#[test]
fn every_fixture_case_gets_its_expected_verdict() {
    cases::run_natively::<StorageGuard>("storage-guard");
}

#[test]
fn bad_settings_are_refused_by_validate_settings() {
    cases::assert_settings_refused::<StorageGuard>(&[
        r#"{"deployerz": []}"#,
        r#"{"allowedUsers": ["a*b"]}"#,
        r#"{"breakGlassGroups": ["sre*"]}"#,
    ]);
}
