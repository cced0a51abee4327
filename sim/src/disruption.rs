//! PodDisruptionBudgets as a cluster keeps them: the disruption controller's status and the
//! `pods/eviction` subresource that reads and spends it.
//!
//! The controller follows kube-controller-manager's `pkg/controller/disruption/disruption.go`
//! (`trySync`, `getExpectedPodCount`, `getExpectedScale`, `buildDisruptedPodMap`, `countHealthyPods`,
//! `updatePdbStatus`, `failSafe`) and `pkg/apis/policy/helper` (`UpdateDisruptionAllowedCondition`).
//! The eviction follows kube-apiserver's `pkg/registry/core/pod/storage/eviction.go` (`Create`,
//! `checkAndDecrement`, `getPodDisruptionBudgets`, `canIgnorePDB`, `propagateDryRun`).
//!
//! What the simulator does not model: there is no kubelet, so a deleted pod is gone at once whatever
//! its `gracePeriodSeconds` (finalizers still hold it, as the store does), and the evicted pod gets no
//! `DisruptionTarget` condition before it goes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Map, Value, json};
use supsvc_core::upgrade::drain::{Pdb, Pod, budget_status, needs_scale};

use crate::api::{ApiServer, Client, ListOptions, Status, UserInfo, WatchEvent, WriteOptions, gvr};
use crate::kapp::queue::{Informer, key_of};

/// How long an eviction's entry in `status.disruptedPods` keeps the pod out of `currentHealthy`
/// (`DeletionTimeout` in disruption.go: 2 minutes).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// The most entries `status.disruptedPods` may hold before evictions are refused (eviction.go
/// `MaxDisruptedPodSize`).
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// The refusal's message (eviction.go).
pub const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// The answer for a pod under two budgets (eviction.go).
pub const MORE_THAN_ONE: &str = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// Starts the disruption controller: every change of a budget, a pod or a workload re-syncs the
/// budgets of its namespace; each handler first passes `gate` (read), so a hold on it stills the
/// controller with the others.
pub fn start(api: Arc<ApiServer>, gate: Arc<tokio::sync::RwLock<()>>) {
    let client = api.client(UserInfo::service_account(
        "kube-system",
        "disruption-controller",
    ));
    for resource in [
        gvr::POD_DISRUPTION_BUDGETS,
        gvr::PODS,
        gvr::REPLICA_SETS,
        gvr::DEPLOYMENTS,
        gvr::STATEFUL_SETS,
        gvr::REPLICATION_CONTROLLERS,
    ] {
        let handler_client = client.clone();
        let gate = Arc::clone(&gate);
        let _ = Informer::spawn(
            client.clone(),
            resource,
            Arc::new(move |event| {
                let client = handler_client.clone();
                let gate = Arc::clone(&gate);
                async move {
                    let _pass = gate.read().await;
                    if let WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) =
                        event
                    {
                        let (namespace, _) = key_of(&o);
                        sync_namespace(&client, &namespace).await;
                    }
                }
                .boxed()
            }),
        );
    }
    // A disrupted pod that was not deleted counts again after DELETION_TIMEOUT: look again later.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let _pass = gate.read().await;
            if let Ok(list) = client
                .list(gvr::POD_DISRUPTION_BUDGETS, None, &ListOptions::default())
                .await
            {
                let mut namespaces: Vec<String> = list.items.iter().map(|p| key_of(p).0).collect();
                namespaces.dedup();
                for namespace in namespaces {
                    sync_namespace(&client, &namespace).await;
                }
            }
        }
    });
}

/// Writes the status of every budget of `namespace`; a write that conflicts is retried by the next event.
pub async fn sync_namespace(client: &Client, namespace: &str) {
    let Ok(pdbs) = client
        .list(
            gvr::POD_DISRUPTION_BUDGETS,
            Some(namespace),
            &ListOptions::default(),
        )
        .await
    else {
        return;
    };
    if pdbs.items.is_empty() {
        return;
    }
    let Ok(pods) = client
        .list(gvr::PODS, Some(namespace), &ListOptions::default())
        .await
    else {
        return;
    };
    let now = jiff::Timestamp::now();
    for pdb in &pdbs.items {
        let status = desired_status(client, pdb, &pods.items, now).await;
        if pdb.get("status") != Some(&status) {
            let mut updated = pdb.clone();
            updated["status"] = status;
            let _ = client
                .update_status(
                    gvr::POD_DISRUPTION_BUDGETS,
                    Some(namespace),
                    updated,
                    &WriteOptions::default(),
                )
                .await;
        }
    }
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn disrupted_at(v: &Value) -> Option<jiff::Timestamp> {
    v.as_str()?.parse().ok()
}

fn being_deleted(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// The status the controller wants for `pdb` (its `trySync`, or `failSafe` when the expected count
/// cannot be found).
async fn desired_status(
    client: &Client,
    pdb: &Value,
    pods: &[Value],
    now: jiff::Timestamp,
) -> Value {
    let budget = Pdb::from_value(pdb);
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let old = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
    let matching: Vec<&Value> = pods
        .iter()
        .filter(|p| budget.covers(&Pod::from_value(p)))
        .collect();
    let scale = if needs_scale(budget.min_available, budget.max_unavailable) {
        match expected_scale(client, &matching).await {
            Ok(n) => n,
            Err(message) => return fail_safe(&old, &message),
        }
    } else {
        0
    };
    // buildDisruptedPodMap: keep an eviction's mark while its pod is there, not yet being deleted,
    // and the mark is younger than DELETION_TIMEOUT.
    let timeout = jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
    let old_disrupted = old.get("disruptedPods").and_then(Value::as_object);
    let mut disrupted = Map::new();
    for pod in &matching {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        if being_deleted(pod) {
            continue;
        }
        if let Some(at) = old_disrupted.and_then(|m| m.get(name))
            && disrupted_at(at).is_some_and(|t| t + timeout > now)
        {
            disrupted.insert(name.to_owned(), at.clone());
        }
    }
    let current_healthy = matching
        .iter()
        .filter(|p| !being_deleted(p))
        .filter(|p| !disrupted.contains_key(p["metadata"]["name"].as_str().unwrap_or_default()))
        .filter(|p| Pod::from_value(p).ready)
        .count() as i64;
    let computed = budget_status(
        budget.min_available,
        budget.max_unavailable,
        matching.len() as i64,
        scale,
        current_healthy,
    );
    let mut status = json!({
        "observedGeneration": generation,
        "expectedPods": computed.expected_pods,
        "desiredHealthy": computed.desired_healthy,
        "currentHealthy": current_healthy,
        "disruptionsAllowed": computed.disruptions_allowed,
        "conditions": old.get("conditions").cloned().unwrap_or_else(|| json!([])),
    });
    if !disrupted.is_empty() {
        status["disruptedPods"] = Value::Object(disrupted);
    }
    set_allowed_condition(&mut status, None);
    status
}

/// disruption.go `failSafe`: no disruption allowed, the condition `SyncFailed` with the error.
fn fail_safe(old: &Value, message: &str) -> Value {
    let mut status = old.clone();
    status["disruptionsAllowed"] = json!(0);
    if status.get("conditions").is_none() {
        status["conditions"] = json!([]);
    }
    set_allowed_condition(&mut status, Some(message));
    status
}

/// `UpdateDisruptionAllowedCondition` (or, with `failed`, failSafe's `SyncFailed`), as
/// `meta.SetStatusCondition` sets it: the transition time kept while the status stays.
fn set_allowed_condition(status: &mut Value, failed: Option<&str>) {
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0) > 0;
    let (state, reason, message) = match failed {
        Some(m) => ("False", "SyncFailed", m),
        None if allowed => ("True", "SufficientPods", ""),
        None => ("False", "InsufficientPods", ""),
    };
    let observed = status["observedGeneration"].clone();
    let conditions = status["conditions"].as_array_mut();
    let Some(conditions) = conditions else {
        return;
    };
    let previous = conditions
        .iter()
        .position(|c| c["type"] == "DisruptionAllowed");
    let transition = previous
        .and_then(|i| {
            (conditions[i]["status"] == state).then(|| conditions[i]["lastTransitionTime"].clone())
        })
        .unwrap_or_else(|| json!(rfc3339(jiff::Timestamp::now())));
    let condition = json!({
        "type": "DisruptionAllowed",
        "status": state,
        "reason": reason,
        "message": message,
        "observedGeneration": if observed.is_null() { json!(0) } else { observed },
        "lastTransitionTime": transition,
    });
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// disruption.go `getExpectedScale`: the sum of the scale of the matching pods' controllers, each
/// counted once. A pod without a controller is left out (the real controller warns "UnmanagedPods");
/// a controller none of the finders knows is an error. The finders: a ReplicaSet (its Deployment's
/// scale when a Deployment controls it), a StatefulSet, a ReplicationController; each must still
/// have the UID the pod's controller reference names.
async fn expected_scale(client: &Client, pods: &[&Value]) -> Result<i64, String> {
    let mut scales: BTreeMap<String, i64> = BTreeMap::new();
    for pod in pods {
        let Some(owner) = controller_of(pod) else {
            continue;
        };
        let uid = owner["uid"].as_str().unwrap_or_default();
        if scales.contains_key(uid) {
            continue;
        }
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let found = find_controller(client, namespace, owner).await?;
        let Some((uid, scale)) = found else {
            return Err(format!(
                "found no controllers for pod {:?}",
                pod["metadata"]["name"].as_str().unwrap_or_default()
            ));
        };
        scales.insert(uid, scale);
    }
    Ok(scales.values().sum())
}

fn controller_of(object: &Value) -> Option<&Value> {
    object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

fn replicas(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// One controller reference resolved to `(uid, scale)`; `None` when no finder knows it.
async fn find_controller(
    client: &Client,
    namespace: &str,
    owner: &Value,
) -> Result<Option<(String, i64)>, String> {
    let name = owner["name"].as_str().unwrap_or_default();
    let uid = owner["uid"].as_str().unwrap_or_default();
    let group = owner["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .rev()
        .nth(1)
        .unwrap_or_default();
    let resource = match (group, owner["kind"].as_str().unwrap_or_default()) {
        ("apps", "ReplicaSet") => gvr::REPLICA_SETS,
        ("apps", "StatefulSet") => gvr::STATEFUL_SETS,
        ("", "ReplicationController") => gvr::REPLICATION_CONTROLLERS,
        _ => return Ok(None),
    };
    let object = match client.get(resource, Some(namespace), name).await {
        Ok(o) => o,
        Err(s) if s.is_not_found() => return Ok(None),
        Err(s) => return Err(s.message),
    };
    if object["metadata"]["uid"].as_str() != Some(uid) {
        return Ok(None);
    }
    if resource == gvr::REPLICA_SETS
        && let Some(deployment_ref) = controller_of(&object)
        && deployment_ref["kind"] == "Deployment"
    {
        let deployment_name = deployment_ref["name"].as_str().unwrap_or_default();
        return match client
            .get(gvr::DEPLOYMENTS, Some(namespace), deployment_name)
            .await
        {
            Ok(d) if d["metadata"]["uid"] == deployment_ref["uid"] => Ok(Some((
                d["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
                replicas(&d),
            ))),
            Ok(_) => Ok(None),
            Err(s) if s.is_not_found() => Ok(None),
            Err(s) => Err(s.message),
        };
    }
    Ok(Some((uid.to_owned(), replicas(&object))))
}

/// `POST /api/v1/namespaces/{namespace}/pods/{name}/eviction` with a `policy/v1` (or `v1beta1`)
/// Eviction as the requesting `client`: the pod deleted when its budget allows, and the answer, a
/// `Status` of success (code 201). `dry_run` is the request's `dryRun=All`.
///
/// Errors as kube-apiserver gives them: 400 for a body that is no Eviction or names another pod, 404
/// for a missing pod, 429 `TooManyRequests` with a `DisruptionBudget` cause when the budget refuses
/// (or has not yet observed its latest generation), 500 for a pod under more than one budget, 409
/// when a precondition of the `deleteOptions` fails.
pub async fn evict(
    client: &Client,
    namespace: &str,
    name: &str,
    eviction: &Value,
    dry_run: bool,
) -> Result<Value, Status> {
    let pods_rt =
        crate::api::registry::lookup(gvr::PODS).ok_or_else(|| Status::internal("no pods"))?;
    crate::api::authz::authorize(
        client.user(),
        "create",
        pods_rt,
        Some("eviction"),
        Some(namespace),
        name,
    )?;
    let api_version = eviction["apiVersion"].as_str().unwrap_or_default();
    if eviction["kind"] != "Eviction" || !matches!(api_version, "policy/v1" | "policy/v1beta1") {
        return Err(Status::bad_request(format!(
            "not a Eviction object: {}/{}",
            api_version,
            eviction["kind"].as_str().unwrap_or_default()
        )));
    }
    if eviction["metadata"]["name"].as_str() != Some(name) {
        return Err(Status::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    // propagateDryRun
    let mut options = eviction
        .get("deleteOptions")
        .filter(|o| o.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let body_dry_run: Vec<&str> = options["dryRun"]
        .as_array()
        .map(|d| d.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(other) = body_dry_run.iter().find(|d| **d != "All") {
        return Err(Status::bad_request(format!(
            "Invalid dry run value: {other}"
        )));
    }
    if dry_run && !body_dry_run.is_empty() && body_dry_run != ["All"] {
        return Err(Status::internal(format!(
            "Non-matching dry-run options in request and content: [All] and {body_dry_run:?}"
        )));
    }
    let dry_run = dry_run || !body_dry_run.is_empty();
    if dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let system = client.server().client(UserInfo::admin());
    let pod = system.get(gvr::PODS, Some(namespace), name).await?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let terminal = matches!(phase, "Succeeded" | "Failed");
    // canIgnorePDB
    if terminal || phase == "Pending" || being_deleted(&pod) {
        let enforce = !terminal && !being_deleted(&pod);
        delete_pod(&system, &pod, &options, dry_run, enforce).await?;
        return Ok(success());
    }
    // getPodDisruptionBudgets
    let pdbs = system
        .list(
            gvr::POD_DISRUPTION_BUDGETS,
            Some(namespace),
            &ListOptions::default(),
        )
        .await?;
    let target = Pod::from_value(&pod);
    let matching: Vec<&Value> = pdbs
        .items
        .iter()
        .filter(|p| Pdb::from_value(p).covers(&target))
        .collect();
    if matching.len() > 1 {
        return Err(Status::new(500, "", MORE_THAN_ONE));
    }
    let Some(pdb) = matching.first() else {
        delete_pod(&system, &pod, &options, dry_run, false).await?;
        return Ok(success());
    };
    let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or_default();
    if !target.ready {
        let status_of = |k: &str| pdb["status"][k].as_i64().unwrap_or(0);
        let always = pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
        if always
            || (status_of("currentHealthy") >= status_of("desiredHealthy")
                && status_of("desiredHealthy") > 0)
        {
            return match delete_pod(&system, &pod, &options, dry_run, true).await {
                Ok(()) => Ok(success()),
                Err(s) if s.code == 409 && !has_rv_precondition(&options) => {
                    Err(still_processing(pdb_name))
                }
                Err(s) => Err(s),
            };
        }
    }
    check_and_decrement(&system, namespace, name, pdb_name, (*pdb).clone(), dry_run).await?;
    delete_pod(&system, &pod, &options, dry_run, false).await?;
    Ok(success())
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn too_many_requests(retry_after: u64, cause: String) -> Status {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    Status {
        code: 429,
        reason: "TooManyRequests".into(),
        message: REFUSED.into(),
        details: Some(details),
    }
}

/// eviction.go `createTooManyRequestsError`.
fn still_processing(pdb: &str) -> Status {
    too_many_requests(
        10,
        format!("The disruption budget {pdb} is still being processed by the server."),
    )
}

fn pdb_forbidden(pdb: &str, why: &str) -> Status {
    let rt = crate::api::registry::lookup(gvr::POD_DISRUPTION_BUDGETS);
    let message = format!("poddisruptionbudgets.policy \"{pdb}\" is forbidden: {why}");
    match rt {
        Some(rt) => Status::forbidden(message, pdb, rt),
        None => Status::new(403, "Forbidden", message),
    }
}

/// eviction.go `checkAndDecrement`, retried on a conflict with the budget re-read.
async fn check_and_decrement(
    system: &Client,
    namespace: &str,
    pod: &str,
    pdb_name: &str,
    mut pdb: Value,
    dry_run: bool,
) -> Result<(), Status> {
    for _ in 0..5 {
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
        let int = |k: &str| status[k].as_i64().unwrap_or(0);
        if int("observedGeneration") < generation {
            return Err(still_processing(pdb_name));
        }
        let allowed = int("disruptionsAllowed");
        if allowed < 0 {
            return Err(pdb_forbidden(
                pdb_name,
                "pdb disruptions allowed is negative",
            ));
        }
        if status["disruptedPods"]
            .as_object()
            .is_some_and(|m| m.len() > MAX_DISRUPTED_POD_SIZE)
        {
            return Err(pdb_forbidden(
                pdb_name,
                "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            ));
        }
        if allowed == 0 {
            return Err(too_many_requests(
                0,
                format!(
                    "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                    int("desiredHealthy"),
                    int("currentHealthy")
                ),
            ));
        }
        if dry_run {
            return Ok(());
        }
        let mut updated = pdb.clone();
        updated["status"]["disruptionsAllowed"] = json!(allowed - 1);
        if allowed - 1 == 0 {
            if updated["status"].get("conditions").is_none() {
                updated["status"]["conditions"] = json!([]);
            }
            set_allowed_condition(&mut updated["status"], None);
        }
        if !updated["status"]["disruptedPods"].is_object() {
            updated["status"]["disruptedPods"] = json!({});
        }
        updated["status"]["disruptedPods"][pod] = json!(rfc3339(jiff::Timestamp::now()));
        match system
            .update_status(
                gvr::POD_DISRUPTION_BUDGETS,
                Some(namespace),
                updated,
                &WriteOptions::default(),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(s) if s.code == 409 => {
                pdb = system
                    .get(gvr::POD_DISRUPTION_BUDGETS, Some(namespace), pdb_name)
                    .await?;
            }
            Err(s) => return Err(s),
        }
    }
    Err(Status::new(
        504,
        "Timeout",
        format!("couldn't update PodDisruptionBudget {pdb_name:?} due to conflicts"),
    ))
}

fn has_rv_precondition(options: &Value) -> bool {
    options
        .pointer("/preconditions/resourceVersion")
        .is_some_and(|v| !v.is_null())
}

/// Deletes the pod with the eviction's `deleteOptions`: its preconditions (`uid`, `resourceVersion`)
/// checked against the stored pod; with `enforce_rv` and no `resourceVersion` precondition, the
/// pod's version as read (eviction.go `setPreconditionsResourceVersion`).
async fn delete_pod(
    system: &Client,
    read: &Value,
    options: &Value,
    dry_run: bool,
    enforce_rv: bool,
) -> Result<(), Status> {
    let namespace = read["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = read["metadata"]["name"].as_str().unwrap_or_default();
    let current = system.get(gvr::PODS, Some(namespace), name).await?;
    let wanted_uid = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let wanted_rv = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            enforce_rv
                .then(|| read["metadata"]["resourceVersion"].as_str())
                .flatten()
        });
    let conflict = |what: &str, wanted: &str, stored: &str| Status {
        code: 409,
        reason: "Conflict".into(),
        message: format!(
            "Operation cannot be fulfilled on pods \"{name}\": Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {stored}"
        ),
        details: Some(json!({"name": name, "kind": "pods"})),
    };
    let stored_uid = current["metadata"]["uid"].as_str().unwrap_or_default();
    if let Some(uid) = wanted_uid
        && uid != stored_uid
    {
        return Err(conflict("UID", uid, stored_uid));
    }
    let stored_rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if let Some(rv) = wanted_rv
        && rv != stored_rv
    {
        return Err(conflict("ResourceVersion", rv, stored_rv));
    }
    let opts = WriteOptions {
        dry_run,
        ..WriteOptions::default()
    };
    system
        .delete(gvr::PODS, Some(namespace), name, &opts)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_keeps_its_transition_time_while_its_status_stays() {
        let mut status = json!({"disruptionsAllowed": 1, "observedGeneration": 2, "conditions": [
            {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
             "observedGeneration": 1, "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        set_allowed_condition(&mut status, None);
        let c = &status["conditions"][0];
        assert_eq!(c["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(c["observedGeneration"], 2);
        status["disruptionsAllowed"] = json!(0);
        set_allowed_condition(&mut status, None);
        let c = &status["conditions"][0];
        assert_eq!(
            (&c["status"], &c["reason"]),
            (&json!("False"), &json!("InsufficientPods"))
        );
        assert_ne!(c["lastTransitionTime"], "2020-01-01T00:00:00Z");
        let failed = fail_safe(&status, "found no controllers for pod \"x\"");
        assert_eq!(failed["conditions"][0]["reason"], "SyncFailed");
        assert_eq!(failed["disruptionsAllowed"], 0);
    }
}
