//! Admission policy: no Pod, pod template or Carvel fetch (Package, App, PackageRepository) may pull an
//! image, bundle or Helm chart from a public registry, or download from a public host. Decisions: [`supsvc_core::guard::registry`].

use supsvc_core::guard::Decision;
use supsvc_core::guard::registry::{
    OBJECT_FIELDS, RegistryGuardSettings, checks, decide, reads_objects,
};
use supsvc_policy_sdk::{Operation, Policy, ValidationRequest, Verdict, reject};

pub struct RegistryGuard;

impl Policy for RegistryGuard {
    type Settings = RegistryGuardSettings;
    const OBJECT_FIELDS: Option<&'static [&'static str]> = Some(OBJECT_FIELDS);

    // A DELETE or a `status` write is allowed at once: its objects are not even decoded.
    fn reads_objects(operation: Operation, sub_resource: &str) -> bool {
        reads_objects(operation, sub_resource)
    }

    fn validate(request: &ValidationRequest<RegistryGuardSettings>) -> Verdict {
        let settings = &request.settings;
        let decision = supsvc_guard_adapter::with_request(&request.request, |r| {
            // The lists are built only for a request the guard looks at (not for a DELETE).
            if !checks(r, settings) {
                return Ok(Decision::Allow);
            }
            // Settings were checked at load; a policy that cannot build its lists refuses.
            settings.policy().map(|policy| decide(r, settings, &policy))
        });
        match decision {
            Ok(decision) => supsvc_guard_adapter::verdict(decision),
            Err(error) => reject(format!("registry guard misconfigured: {error}"), 500),
        }
    }

    fn validate_settings(settings: &RegistryGuardSettings) -> Result<(), String> {
        settings.validate().map_err(|e| e.to_string())
    }
}

supsvc_policy_sdk::register_policy!(RegistryGuard);
