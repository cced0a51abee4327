//! What the rest of a Supervisor's control plane does to the objects kapp deploys: the volume binder
//! and the external resizer for PVCs (capacity follows a granted expansion, with the events the blog
//! shows), and ready replicas for Deployments and StatefulSets (there are no kubelets to run them).

use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Value, json};

use crate::api::{ApiServer, Client, UserInfo, WatchEvent, WriteOptions, gvr};
use crate::kapp::queue::{Informer, key_of};

/// The status a PVC should have: bound, with the capacity it requests.
pub fn pvc_status(pvc: &Value) -> Value {
    let requested = pvc["spec"]["resources"]["requests"]["storage"].clone();
    json!({
        "phase": "Bound",
        "accessModes": pvc["spec"]["accessModes"],
        "capacity": {"storage": requested},
    })
}

/// The status of a Deployment or StatefulSet whose pods are all ready.
pub fn workload_status(workload: &Value) -> Value {
    let replicas = workload["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut status = json!({
        "observedGeneration": workload["metadata"]["generation"],
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    });
    if workload["kind"] == "StatefulSet" {
        status["currentReplicas"] = json!(replicas);
    }
    status
}

/// Starts the controllers.
///
/// Every handler first passes `gate` (read), so a hold on it (its write side) stills them.
pub fn start(api: Arc<ApiServer>, gate: Arc<tokio::sync::RwLock<()>>) {
    let controller = api.client(UserInfo::service_account(
        "kube-system",
        "persistent-volume-binder",
    ));
    let pvc_client = controller.clone();
    let pvc_gate = Arc::clone(&gate);
    let _ = Informer::spawn(
        controller.clone(),
        gvr::PERSISTENT_VOLUME_CLAIMS,
        Arc::new(move |event| {
            let client = pvc_client.clone();
            let gate = Arc::clone(&pvc_gate);
            async move {
                let _pass = gate.read().await;
                if let WatchEvent::Added(pvc) | WatchEvent::Modified(pvc) = event {
                    reconcile_pvc(&client, pvc).await;
                }
            }
            .boxed()
        }),
    );
    for resource in [gvr::DEPLOYMENTS, gvr::STATEFUL_SETS] {
        let client = controller.clone();
        let gate = Arc::clone(&gate);
        let _ = Informer::spawn(
            controller.clone(),
            resource,
            Arc::new(move |event| {
                let client = client.clone();
                let gate = Arc::clone(&gate);
                async move {
                    let _pass = gate.read().await;
                    if let WatchEvent::Added(o) | WatchEvent::Modified(o) = event {
                        let status = workload_status(&o);
                        if o["status"] != status {
                            let mut updated = o.clone();
                            updated["status"] = status;
                            let (namespace, _) = key_of(&o);
                            let _ = client
                                .update_status(
                                    resource,
                                    Some(&namespace),
                                    updated,
                                    &WriteOptions::default(),
                                )
                                .await;
                        }
                    }
                }
                .boxed()
            }),
        );
    }
}

async fn reconcile_pvc(client: &Client, pvc: Value) {
    let status = pvc_status(&pvc);
    if pvc["status"] == status {
        return;
    }
    let (namespace, name) = key_of(&pvc);
    let resized = pvc["status"]["phase"] == "Bound";
    let mut updated = pvc.clone();
    updated["status"] = status;
    if client
        .update_status(
            gvr::PERSISTENT_VOLUME_CLAIMS,
            Some(&namespace),
            updated,
            &WriteOptions::default(),
        )
        .await
        .is_ok()
        && resized
    {
        for (reason, message) in [
            (
                "Resizing",
                format!(
                    "External resizer is resizing volume pvc-{}",
                    pvc["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ),
            (
                "FileSystemResizeSuccessful",
                format!("MountVolume.ExpandVolume for PVC {namespace}/{name} succeeded"),
            ),
        ] {
            let event = json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": format!("{name}."), "namespace": namespace},
                "involvedObject": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": name, "namespace": namespace, "uid": pvc["metadata"]["uid"]},
                "reason": reason, "message": message, "type": "Normal", "count": 1,
                "source": {"component": "external-resizer csi.vsphere.vmware.com"},
            });
            let _ = client
                .create(
                    gvr::EVENTS,
                    Some(&namespace),
                    event,
                    &WriteOptions::default(),
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_bound_with_the_capacity_it_requests() {
        let pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "60Gi"}}}});
        assert_eq!(
            pvc_status(&pvc),
            json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "60Gi"}})
        );
    }

    #[test]
    fn workloads_report_every_replica_ready_for_their_generation() {
        let sts =
            json!({"kind": "StatefulSet", "metadata": {"generation": 3}, "spec": {"replicas": 2}});
        let status = workload_status(&sts);
        assert_eq!(status["readyReplicas"], 2);
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["currentReplicas"], 2);
    }
}
