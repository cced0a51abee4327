//! {{name}}: an admission policy for supsvc-webhook and Kubewarden, written with
//! kubewarden-policy-sdk as Kubewarden's rust-policy-template writes policies.
//!
//! It denies objects whose name is in the `deniedNames` setting, and admits objects without
//! labels with a warning. Replace that with your own rules: the tests below, the requests in
//! `test_data/` and `kubectl supsvc policy run` tell whether it decides as you mean.

use std::collections::HashSet;

use guest::prelude::*;
use kubewarden_policy_sdk::wapc_guest as guest;
use serde::{Deserialize, Serialize};

extern crate kubewarden_policy_sdk as kubewarden;
use kubewarden::response::ValidationResponse;
use kubewarden::{protocol_version_guest, request::ValidationRequest, validate_settings};

/// The policy's settings: `settings:` of its entry in the webhook's configuration.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Object names that are refused.
    pub denied_names: HashSet<String>,
}

/// Run once when the webhook loads the policy: an error refuses the policy.
impl kubewarden::settings::Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.denied_names.iter().any(|name| name.is_empty()) {
            return Err("deniedNames must not contain an empty name".to_string());
        }
        Ok(())
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings::<Settings>);
    register_function("protocol_version", protocol_version_guest);
}

pub fn validate(payload: &[u8]) -> CallResult {
    let validation_request: ValidationRequest<Settings> = ValidationRequest::new(payload)?;
    let request = &validation_request.request;
    if request.operation == "DELETE" {
        return kubewarden::accept_request();
    }
    let metadata = &request.object["metadata"];
    let name = metadata["name"].as_str().unwrap_or(&request.name);
    let kind = &request.kind.kind;
    if validation_request.settings.denied_names.contains(name) {
        return kubewarden::reject_request(
            Some(format!("{kind} {name}: the name is in deniedNames; choose another name")),
            Some(403),
            None,
            None,
        );
    }
    if metadata["labels"].as_object().is_none_or(|labels| labels.is_empty()) {
        return Ok(serde_json::to_vec(&ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: Some(vec![format!("{kind} {name} has no labels")]),
        })?);
    }
    kubewarden::accept_request()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewarden::settings::Validatable;
    use kubewarden::test::Testcase;

    fn settings(denied_names: &[&str]) -> Settings {
        Settings {
            denied_names: denied_names.iter().map(|name| name.to_string()).collect(),
        }
    }

    #[test]
    fn denies_a_denied_name() {
        let testcase = Testcase {
            name: "a denied name".to_string(),
            fixture_file: "test_data/pod-create.json".to_string(),
            expected_validation_result: false,
            settings: settings(&["nginx"]),
        };
        let response = testcase.eval(validate).unwrap();
        assert_eq!(response.code, Some(403));
        assert_eq!(
            response.message.as_deref(),
            Some("Pod nginx: the name is in deniedNames; choose another name")
        );
    }

    #[test]
    fn admits_other_names_without_warnings() {
        let testcase = Testcase {
            name: "another name".to_string(),
            fixture_file: "test_data/pod-create.json".to_string(),
            expected_validation_result: true,
            settings: settings(&["apache"]),
        };
        assert_eq!(testcase.eval(validate).unwrap().warnings, None);
    }

    #[test]
    fn admits_an_object_without_labels_with_a_warning() {
        let testcase = Testcase {
            name: "no labels".to_string(),
            fixture_file: "test_data/pod-without-labels.json".to_string(),
            expected_validation_result: true,
            settings: settings(&[]),
        };
        let response = testcase.eval(validate).unwrap();
        assert_eq!(response.warnings, Some(vec!["Pod debug has no labels".to_string()]));
    }

    #[test]
    fn settings_are_checked() {
        assert!(settings(&["nginx"]).validate().is_ok());
        assert!(settings(&[""]).validate().is_err());
    }
}
