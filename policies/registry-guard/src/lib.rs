//! Admission policy: no Pod, pod template or Carvel fetch (Package, App, PackageRepository) may pull an
//! image, bundle or Helm chart from a public registry, or download from a public host. Decisions: [`supsvc_core::guard::registry`].

use supsvc_core::guard::registry::{OBJECT_FIELDS, RegistryGuardSettings, decide};
use supsvc_policy_sdk::{Policy, ValidationRequest, Verdict, reject};

pub struct RegistryGuard;

impl Policy for RegistryGuard {
    type Settings = RegistryGuardSettings;
    const OBJECT_FIELDS: Option<&'static [&'static str]> = Some(OBJECT_FIELDS);

    fn validate(request: &ValidationRequest<RegistryGuardSettings>) -> Verdict {
        // Settings were checked at load; a policy that cannot build its registry policy refuses.
        let policy = match request.settings.policy() {
            Ok(policy) => policy,
            Err(error) => return reject(format!("registry guard misconfigured: {error}"), 500),
        };
        let decision = supsvc_guard_adapter::with_request(&request.request, |r| {
            decide(r, &request.settings, &policy)
        });
        supsvc_guard_adapter::verdict(decision)
    }

    fn validate_settings(settings: &RegistryGuardSettings) -> Result<(), String> {
        settings.validate()
    }
}

supsvc_policy_sdk::register_policy!(RegistryGuard);
