//! Which requests a policy applies to: the rules of a ValidatingWebhookConfiguration.

use serde::Deserialize;
/// What rules match on, read from a review by the policy host's [`supsvc_policy_host::admission`].
pub use supsvc_policy_host::admission::RequestAttributes;

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
        // A Carvel resource listed beside Carvel groups that do not serve it matches nothing: the
        // shipped configuration once paired `packages` with packaging.carvel.dev, so no Package
        // ever reached the guard.
        let any_group = self.api_groups.iter().any(|g| g == "*");
        let carvel_rule = self
            .api_groups
            .iter()
            .any(|g| CARVEL_RESOURCES.iter().any(|(_, group)| g == group));
        if carvel_rule && !any_group {
            for resource in &self.resources {
                let name = resource.split('/').next().unwrap_or_default();
                if let Some((_, group)) = CARVEL_RESOURCES.iter().find(|(r, _)| *r == name)
                    && !self.api_groups.iter().any(|g| g == group)
                {
                    problems.push(format!(
                        "resource {resource:?} is served by API group {group}, which the rule's apiGroups do not list: add it, or the rule never matches {name}"
                    ));
                }
            }
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

    /// As kube-apiserver: a Namespace is cluster-scoped although its requests carry its own name as
    /// namespace (`staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/rules/rules.go`).
    fn scope_matches(&self, request: &RequestAttributes) -> bool {
        let namespace_object =
            request.group.is_empty() && request.version == "v1" && request.resource == "namespaces";
        match self.scope.as_deref() {
            Some("Cluster") => namespace_object || request.namespace.is_empty(),
            Some("Namespaced") => !namespace_object && !request.namespace.is_empty(),
            _ => true,
        }
    }
}

/// The Carvel resources and the API group that serves each (carvel-dev/kapp-controller
/// `pkg/apis/{kappctrl,packaging}/v1alpha1` and `pkg/apiserver/apis/datapackaging/v1alpha1`).
const CARVEL_RESOURCES: &[(&str, &str)] = &[
    ("apps", "kappctrl.k14s.io"),
    ("packageinstalls", "packaging.carvel.dev"),
    ("packagerepositories", "packaging.carvel.dev"),
    ("packages", "data.packaging.carvel.dev"),
    ("packagemetadatas", "data.packaging.carvel.dev"),
];

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
            // What kubectl debug sends: `pods` alone does not match it.
            (
                rule(&["UPDATE"], &[""], &["pods"]),
                request("UPDATE", "", "pods", "ephemeralcontainers"),
                false,
            ),
            (
                rule(&["UPDATE"], &[""], &["pods", "pods/ephemeralcontainers"]),
                request("UPDATE", "", "pods", "ephemeralcontainers"),
                true,
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
    fn a_namespace_is_cluster_scoped_as_in_kubernetes() {
        let mut cluster = rule(&["*"], &["*"], &["*"]);
        cluster.scope = Some("Cluster".into());
        let mut namespaced = cluster.clone();
        namespaced.scope = Some("Namespaced".into());
        // A Namespace's own requests carry its name as namespace.
        let ns = request("CREATE", "", "namespaces", "");
        assert!(cluster.matches(&ns));
        assert!(!namespaced.matches(&ns));
    }

    #[test]
    fn a_carvel_resource_beside_the_wrong_carvel_group_is_a_problem() {
        // The shipped rule of old: Packages are data.packaging.carvel.dev.
        let wrong = rule(
            &["CREATE"],
            &["", "apps", "packaging.carvel.dev", "kappctrl.k14s.io"],
            &["pods", "packages", "apps", "packagerepositories"],
        );
        let problems = wrong.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("\"packages\" is served by API group data.packaging.carvel.dev"),
            "{problems:?}"
        );
        for fine in [
            rule(&["CREATE"], &["data.packaging.carvel.dev"], &["packages"]),
            rule(&["CREATE"], &["*"], &["packages"]),
            // Not a Carvel rule: a CRD of another group may be called `apps`.
            rule(&["CREATE"], &["example.com"], &["apps"]),
        ] {
            assert!(fine.problems().is_empty(), "{fine:?}");
        }
    }

    #[test]
    fn rule_problems() {
        assert!(rule(&["CREATE"], &[""], &["pods"]).problems().is_empty());
        assert_eq!(rule(&["PATCH"], &[""], &["pods"]).problems().len(), 1);
        assert_eq!(rule(&[], &[""], &["a/b/c"]).problems().len(), 2);
    }
}
