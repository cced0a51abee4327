//! Admission policy: no direct change to the spec of a PersistentVolumeClaim or StatefulSet that kapp
//! manages, nor its deletion, except by the service accounts kapp deploys with. Decisions:
//! [`supsvc_core::guard::storage`].

use supsvc_core::guard::storage::{OBJECT_FIELDS, StorageGuardSettings, decide, reads_objects};
use supsvc_policy_sdk::{Operation, Policy, ValidationRequest, Verdict};

pub struct StorageGuard;

impl Policy for StorageGuard {
    type Settings = StorageGuardSettings;
    const OBJECT_FIELDS: Option<&'static [&'static str]> = Some(OBJECT_FIELDS);

    // A CREATE or a `status` write is allowed at once: its objects are not even decoded.
    fn reads_objects(operation: Operation, sub_resource: &str) -> bool {
        reads_objects(operation, sub_resource)
    }

    fn validate(request: &ValidationRequest<StorageGuardSettings>) -> Verdict {
        let decision =
            supsvc_guard_adapter::with_request(&request.request, |r| decide(r, &request.settings));
        supsvc_guard_adapter::verdict(decision)
    }

    fn validate_settings(settings: &StorageGuardSettings) -> Result<(), String> {
        settings.validate().map_err(|e| e.to_string())
    }
}

supsvc_policy_sdk::register_policy!(StorageGuard);
