//! {{name}}: an admission policy for supsvc-webhook, written with supsvc-policy-sdk.
//!
//! It denies objects whose name is in the `deniedNames` setting, and admits objects without
//! labels with a warning. Replace that with your own rules: the tests below, the requests in
//! `test_data/` and `kubectl supsvc policy run` tell whether it decides as you mean.

use serde::Deserialize;
use supsvc_policy_sdk::{Operation, Policy, ValidationRequest, Verdict, accept, reject};

/// The policy's settings: `settings:` of its entry in the webhook's configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// Object names that are refused.
    pub denied_names: Vec<String>,
}

pub struct {{Type}};

impl Policy for {{Type}} {
    type Settings = Settings;

    fn validate(request: &ValidationRequest<Settings>) -> Verdict {
        let admission = &request.request;
        if admission.operation == Operation::Delete {
            return accept();
        }
        let metadata = &admission.object["metadata"];
        let name = metadata["name"].as_str().unwrap_or(&admission.name);
        let kind = &admission.kind.kind;
        if request.settings.denied_names.iter().any(|denied| denied == name) {
            return reject(
                format!("{kind} {name}: the name is in deniedNames; choose another name"),
                403,
            );
        }
        if metadata["labels"].as_object().is_none_or(|labels| labels.is_empty()) {
            return accept().with_warning(format!("{kind} {name} has no labels"));
        }
        accept()
    }

    /// Run once when the webhook loads the policy: an error refuses the policy.
    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.denied_names.iter().any(|name| name.is_empty()) {
            return Err("deniedNames must not contain an empty name".into());
        }
        Ok(())
    }
}

supsvc_policy_sdk::register_policy!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use supsvc_policy_sdk::dispatch;

    const POD: &[u8] = include_bytes!("../test_data/pod-create.json");
    const UNLABELLED_POD: &[u8] = include_bytes!("../test_data/pod-without-labels.json");

    fn validate(fixture: &[u8], denied_names: &[&str]) -> Verdict {
        let settings = Settings {
            denied_names: denied_names.iter().map(|name| name.to_string()).collect(),
        };
        let request = ValidationRequest::from_admission_json(fixture, settings).unwrap();
        {{Type}}::validate(&request)
    }

    #[test]
    fn denies_a_denied_name() {
        let verdict = validate(POD, &["nginx"]);
        assert!(!verdict.accepted);
        assert_eq!(verdict.code, Some(403));
        assert_eq!(
            verdict.message.as_deref(),
            Some("Pod nginx: the name is in deniedNames; choose another name")
        );
    }

    #[test]
    fn admits_other_names_without_warnings() {
        let verdict = validate(POD, &["apache"]);
        assert!(verdict.accepted);
        assert!(verdict.warnings.is_empty());
    }

    #[test]
    fn admits_an_object_without_labels_with_a_warning() {
        let verdict = validate(UNLABELLED_POD, &[]);
        assert!(verdict.accepted);
        assert_eq!(verdict.warnings, ["Pod debug has no labels"]);
    }

    /// The exact waPC exchange the webhook has with the policy when it loads it.
    #[test]
    fn settings_are_checked() {
        let answer = |settings: &str| {
            String::from_utf8(dispatch::<{{Type}}>("validate_settings", settings.as_bytes()).unwrap())
                .unwrap()
        };
        assert_eq!(answer(r#"{"deniedNames": ["nginx"]}"#), r#"{"valid":true}"#);
        assert_eq!(
            answer(r#"{"deniedNames": [""]}"#),
            r#"{"valid":false,"message":"deniedNames must not contain an empty name"}"#
        );
        assert!(answer(r#"{"deniedName": []}"#).contains("unknown field"));
    }
}
