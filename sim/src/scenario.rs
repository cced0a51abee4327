//! Scenarios: a Supervisor's state as data. A scenario names the registries the Supervisor reaches,
//! the bundles published and how they were relocated, the objects present at the start, and a history
//! of operator actions replayed through the kapp-controller model — so a stuck state is reached the
//! way a real Supervisor reaches it, not painted on.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::kapp::registry::{Bundle, Registry, Relocation};

/// The scenarios shipped with the simulator.
const BUILTIN: &[(&str, &str)] = &[
    (
        "airgap-deadlock",
        include_str!("../scenarios/airgap-deadlock.yaml"),
    ),
    (
        "airgap-uncorrected",
        include_str!("../scenarios/airgap-uncorrected.yaml"),
    ),
    ("healthy", include_str!("../scenarios/healthy.yaml")),
    ("harbor", include_str!("../scenarios/harbor.yaml")),
    ("tkg-fleet", include_str!("../scenarios/tkg-fleet.yaml")),
    ("tkg-fleet-7", include_str!("../scenarios/tkg-fleet-7.yaml")),
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Another scenario this one starts from; every field given here replaces the base's.
    #[serde(default)]
    pub extends: Option<String>,
    #[serde(default)]
    pub registry: RegistrySpec,
    #[serde(default)]
    pub bundles: Vec<Bundle>,
    #[serde(default)]
    pub relocations: Vec<Relocation>,
    /// Created in order by the cluster admin; a `status` is then written through the status subresource.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Operator actions, each applied once the controllers have settled and its `after` holds.
    #[serde(default)]
    pub history: Vec<HistoryStep>,
    /// What must hold before the simulator says it is ready.
    #[serde(default)]
    pub ready: Vec<Expectation>,
    /// TKG clusters that get an API server of their own (see [`crate::workload`]), their admin
    /// kubeconfig in the Supervisor's Secret `<name>-kubeconfig` in `namespace`.
    #[serde(default)]
    pub workload_clusters: Vec<WorkloadClusterSpec>,
}

/// A workload cluster of a scenario.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadClusterSpec {
    /// The vSphere Namespace of its Cluster / TanzuKubernetesCluster on the Supervisor.
    pub namespace: String,
    /// The cluster's name (its Cluster's `metadata.name`).
    pub name: String,
    /// Created in order in the workload cluster by its admin, as the scenario's `objects` are
    /// (nodes, namespaces, workloads, pods, PodDisruptionBudgets).
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Deprecated API versions its clients requested: what its `/metrics` reports in
    /// `apiserver_requested_deprecated_apis` (the simulator itself serves no deprecated version).
    #[serde(default)]
    pub requested_deprecated_apis: Vec<crate::api::DeprecatedApi>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySpec {
    /// Registry hosts the Supervisor can reach; every other host is unreachable (air-gapped).
    #[serde(default)]
    pub reachable: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryStep {
    pub description: String,
    #[serde(default)]
    pub after: Vec<Expectation>,
    pub patch: ObjectPatch,
}

/// A merge or JSON patch of one object, as `kubectl patch` would send it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectPatch {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    /// `merge` (default) or `json`.
    #[serde(default = "default_patch_type", rename = "type")]
    pub patch_type: String,
    pub patch: Value,
}

fn default_patch_type() -> String {
    "merge".into()
}

/// A Carvel object in a final state: its condition true with its generation observed.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `ReconcileSucceeded` or `ReconcileFailed`.
    pub condition: String,
    /// A text `usefulErrorMessage` must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
}

impl Expectation {
    /// Whether `object` meets the expectation.
    pub fn holds(&self, object: &Value) -> bool {
        let generation = &object["metadata"]["generation"];
        let observed = &object["status"]["observedGeneration"];
        let condition = object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == self.condition.as_str() && c["status"] == "True");
        let message = self.message_contains.as_deref().is_none_or(|m| {
            object["status"]["usefulErrorMessage"]
                .as_str()
                .unwrap_or("")
                .contains(m)
        });
        generation == observed && condition && message
    }
}

impl Scenario {
    /// The names of the built-in scenarios.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(name, _)| *name)
    }

    /// A built-in scenario by name, or a scenario file by path.
    pub fn load(name_or_path: &str) -> anyhow::Result<Scenario> {
        if let Some((_, text)) = BUILTIN.iter().find(|(name, _)| *name == name_or_path) {
            return Scenario::parse(text);
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read scenario file {}: {e}", path.display())
            })?;
            return Scenario::parse(&text);
        }
        let known: Vec<&str> = Scenario::builtin_names().collect();
        anyhow::bail!(
            "unknown scenario {name_or_path:?}: expected one of {} or the path of a scenario file",
            known.join(", ")
        )
    }

    /// Parses a scenario document, resolving `extends` (a chain of built-in scenarios, each field
    /// given replacing its base's).
    pub fn parse(text: &str) -> anyhow::Result<Scenario> {
        let document = resolve_extends(text, 0)?;
        let scenario: Scenario = serde_json::from_value(document)
            .map_err(|e| anyhow::anyhow!("invalid scenario: {e}"))?;
        scenario.registry()?;
        Ok(scenario)
    }

    /// The registries of the scenario, with every relocation applied.
    pub fn registry(&self) -> anyhow::Result<Registry> {
        Registry::new(
            self.registry.reachable.iter().cloned(),
            self.bundles.clone(),
            &self.relocations,
        )
        .map_err(|e| anyhow::anyhow!("scenario {}: {e}", self.name))
    }

    /// The service accounts Apps deploy with, as `(namespace, name)`: each gets a kubeconfig user.
    pub fn deploy_service_accounts(&self) -> Vec<(String, String)> {
        let mut accounts: Vec<(String, String)> = self
            .objects
            .iter()
            .chain(self.bundles.iter().flat_map(|b| b.manifests.iter()))
            .filter(|o| matches!(o["kind"].as_str(), Some("PackageInstall" | "App")))
            .filter_map(|o| {
                let namespace = o["metadata"]["namespace"].as_str()?;
                let account = o["spec"]["serviceAccountName"].as_str()?;
                Some((namespace.to_string(), account.to_string()))
            })
            .collect();
        accounts.sort();
        accounts.dedup();
        accounts
    }
}

/// A scenario document with its `extends` chain merged in, base first (at most 8 deep, so a cycle is an
/// error, not a hang).
fn resolve_extends(text: &str, depth: usize) -> anyhow::Result<Value> {
    let document: Value =
        serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("invalid scenario: {e}"))?;
    let Some(base) = document["extends"].as_str() else {
        return Ok(document);
    };
    anyhow::ensure!(
        depth < 8,
        "scenario extends chain is too long (a cycle through {base:?}?)"
    );
    let base_text = BUILTIN
        .iter()
        .find(|(name, _)| *name == base)
        .map(|(_, text)| *text)
        .ok_or_else(|| anyhow::anyhow!("scenario extends unknown scenario {base:?}"))?;
    let mut merged = resolve_extends(base_text, depth + 1)?;
    for (key, value) in document.as_object().into_iter().flatten() {
        merged[key] = value.clone();
    }
    merged["extends"] = Value::Null;
    Ok(merged)
}

/// How long the simulator waits for a scenario's history to play out, at time scale 1.
pub const HISTORY_TIMEOUT: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_parses_and_its_relocations_apply() {
        for name in Scenario::builtin_names() {
            let scenario = Scenario::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(scenario.name, name);
            assert!(!scenario.ready.is_empty(), "{name} says when it is ready");
        }
    }

    #[test]
    fn extends_is_resolved_through_a_chain() {
        // tkg-fleet-7 extends tkg-fleet, which extends airgap-deadlock: the bundles and registries are
        // the grandparent's, the ready expectation the parent's, the objects its own.
        let grandparent = Scenario::load("airgap-deadlock").unwrap();
        let scenario = Scenario::load("tkg-fleet-7").unwrap();
        assert!(!grandparent.bundles.is_empty());
        assert_eq!(scenario.bundles, grandparent.bundles);
        assert_eq!(scenario.registry, grandparent.registry);
        assert_eq!(scenario.ready, Scenario::load("tkg-fleet").unwrap().ready);
        assert!(scenario.workload_clusters.is_empty());
    }

    #[test]
    fn the_deadlock_scenario_has_every_child_the_kb_names() {
        let scenario = Scenario::load("airgap-deadlock").unwrap();
        let parent = scenario
            .bundles
            .iter()
            .find(|b| b.image.ends_with("tkg-service:3.5.1"))
            .unwrap();
        let children: Vec<&str> = parent
            .manifests
            .iter()
            .filter(|m| m["kind"] == "PackageInstall")
            .map(|m| m["metadata"]["name"].as_str().unwrap())
            .collect();
        for child in [
            "tanzu-addons-manager",
            "tkg-controller",
            "tanzu-cliplugins",
            "tanzu-cluster-api",
            "runtime-extension",
            "tkr-service",
        ] {
            assert!(
                children.contains(&child),
                "{child} missing from {children:?}"
            );
        }
    }

    #[test]
    fn unknown_scenarios_and_unknown_fields_are_refused_with_the_choices() {
        let error = Scenario::load("nope").unwrap_err().to_string();
        assert!(
            error.contains("airgap-deadlock") && error.contains("harbor"),
            "{error}"
        );
        assert!(Scenario::parse("name: x\nbogus: 1\nready: []\n").is_err());
    }

    #[test]
    fn expectations_need_the_generation_observed() {
        let expectation = Expectation {
            kind: "App".into(),
            namespace: "ns".into(),
            name: "a".into(),
            condition: "ReconcileFailed".into(),
            message_contains: Some("waiting on reconcile".into()),
        };
        let mut app = serde_json::json!({
            "metadata": {"generation": 2},
            "status": {"observedGeneration": 2, "conditions": [{"type": "ReconcileFailed", "status": "True"}],
                       "usefulErrorMessage": "kapp: Error: waiting on reconcile packageinstall/x"}
        });
        assert!(expectation.holds(&app));
        app["metadata"]["generation"] = serde_json::json!(3);
        assert!(!expectation.holds(&app));
    }
}
