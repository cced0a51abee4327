//! Which requests a policy applies to: the rules of a ValidatingWebhookConfiguration.

use serde::Deserialize;

/// The parts of an AdmissionRequest that rules look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestAttributes {
    pub operation: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub sub_resource: String,
    pub namespace: String,
}

/// One rule, as in a ValidatingWebhookConfiguration: every listed dimension must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `*`.
    pub operations: Vec<String>,
    /// API groups (`""` is core); defaults to every group.
    #[serde(default = "any")]
    pub api_groups: Vec<String>,
    #[serde(default = "any")]
    pub api_versions: Vec<String>,
    /// `pods`, `pods/status`, `pods/*`, `*`, `*/status` or `*/*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// `Cluster`, `Namespaced` or `*`.
    #[serde(default)]
    pub scope: Option<String>,
}

fn any() -> Vec<String> {
    vec!["*".into()]
}

const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"];

impl Rule {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.operations.is_empty() {
            problems.push("a rule needs operations".into());
        }
        for op in &self.operations {
            if !OPERATIONS.contains(&op.as_str()) {
                problems.push(format!(
                    "unknown operation {op:?} (use {})",
                    OPERATIONS.join(", ")
                ));
            }
        }
        if self.resources.is_empty() {
            problems.push("a rule needs resources".into());
        }
        for resource in &self.resources {
            if resource.is_empty() || resource.split('/').count() > 2 {
                problems.push(format!(
                    "resource {resource:?} is not `name`, `name/sub`, `*` or `*/*`"
                ));
            }
        }
        if let Some(scope) = &self.scope
            && !["Cluster", "Namespaced", "*"].contains(&scope.as_str())
        {
            problems.push(format!("scope {scope:?} is not Cluster, Namespaced or *"));
        }
        problems
    }

    pub fn matches(&self, request: &RequestAttributes) -> bool {
        let listed =
            |list: &[String], value: &str| list.iter().any(|item| item == "*" || item == value);
        listed(&self.operations, &request.operation)
            && listed(&self.api_groups, &request.group)
            && listed(&self.api_versions, &request.version)
            && self
                .resources
                .iter()
                .any(|pattern| resource_matches(pattern, request))
            && self.scope_matches(request)
    }

    fn scope_matches(&self, request: &RequestAttributes) -> bool {
        match self.scope.as_deref() {
            Some("Cluster") => request.namespace.is_empty(),
            Some("Namespaced") => !request.namespace.is_empty(),
            _ => true,
        }
    }
}

/// `pods` matches the resource itself, never a subresource, as Kubernetes does.
fn resource_matches(pattern: &str, request: &RequestAttributes) -> bool {
    let (resource, sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    let resource_ok = resource == "*" || resource == request.resource;
    let sub_ok = sub == "*" || sub == request.sub_resource;
    resource_ok && sub_ok
}

/// A policy with no rules applies to every request.
pub fn any_rule_matches(rules: &[Rule], request: &RequestAttributes) -> bool {
    rules.is_empty() || rules.iter().any(|rule| rule.matches(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(operations: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Rule {
            operations: owned(operations),
            api_groups: owned(groups),
            api_versions: any(),
            resources: owned(resources),
            scope: None,
        }
    }

    fn request(operation: &str, group: &str, resource: &str, sub: &str) -> RequestAttributes {
        RequestAttributes {
            operation: operation.into(),
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            sub_resource: sub.into(),
            namespace: "default".into(),
        }
    }

    #[test]
    fn rule_matching_table() {
        let cases = [
            (
                rule(&["CREATE"], &[""], &["pods"]),
                request("CREATE", "", "pods", ""),
                true,
            ),
            (
                rule(&["CREATE"], &[""], &["pods"]),
                request("UPDATE", "", "pods", ""),
                false,
            ),
            (
                rule(&["*"], &[""], &["pods"]),
                request("DELETE", "", "pods", ""),
                true,
            ),
            (
                rule(&["CREATE"], &["apps"], &["pods"]),
                request("CREATE", "", "pods", ""),
                false,
            ),
            (
                rule(&["CREATE"], &["*"], &["deployments"]),
                request("CREATE", "apps", "deployments", ""),
                true,
            ),
            (
                rule(&["UPDATE"], &[""], &["pods"]),
                request("UPDATE", "", "pods", "status"),
                false,
            ),
            (
                rule(&["UPDATE"], &[""], &["pods/status"]),
                request("UPDATE", "", "pods", "status"),
                true,
            ),
            (
                rule(&["UPDATE"], &[""], &["pods/*"]),
                request("UPDATE", "", "pods", "status"),
                true,
            ),
            // As in Kubernetes, `pods/*` also matches `pods` itself.
            (
                rule(&["UPDATE"], &[""], &["pods/*"]),
                request("UPDATE", "", "pods", ""),
                true,
            ),
            (
                rule(&["UPDATE"], &[""], &["*"]),
                request("UPDATE", "", "secrets", ""),
                true,
            ),
            (
                rule(&["UPDATE"], &[""], &["*"]),
                request("UPDATE", "", "secrets", "status"),
                false,
            ),
            (
                rule(&["UPDATE"], &[""], &["*/*"]),
                request("UPDATE", "", "secrets", "status"),
                true,
            ),
            (
                rule(&["UPDATE"], &[""], &["*/status"]),
                request("UPDATE", "", "pvc", "status"),
                true,
            ),
            (
                rule(&["UPDATE"], &[""], &["*/status"]),
                request("UPDATE", "", "pvc", "scale"),
                false,
            ),
        ];
        for (rule, request, expected) in cases {
            assert_eq!(rule.matches(&request), expected, "{rule:?} vs {request:?}");
        }
    }

    #[test]
    fn scope_and_empty_rules() {
        let mut namespaced = rule(&["*"], &["*"], &["*"]);
        namespaced.scope = Some("Namespaced".into());
        let mut cluster_request = request("CREATE", "", "namespaces", "");
        cluster_request.namespace.clear();
        assert!(!namespaced.matches(&cluster_request));
        assert!(namespaced.matches(&request("CREATE", "", "pods", "")));
        assert!(any_rule_matches(&[], &cluster_request));
    }

    #[test]
    fn rule_problems() {
        assert!(rule(&["CREATE"], &[""], &["pods"]).problems().is_empty());
        assert_eq!(rule(&["PATCH"], &[""], &["pods"]).problems().len(), 1);
        assert_eq!(rule(&[], &[""], &["a/b/c"]).problems().len(), 2);
    }
}
