//! kube-rs, configured from the simulator's kubeconfig, against the HTTPS API server.

mod api_support;

use api_support::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::{Value, json};
use supsvc_sim::api::{ApiOptions, WriteOptions, gvr};

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "demo"}}, "data": {"v": value}}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_list_patch_and_delete_through_kube_rs() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", "2"))
        .await
        .unwrap();
    let got = cms.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["v"], "1");
    assert!(got.metadata.uid.is_some() && got.metadata.creation_timestamp.is_some());

    let selected = cms
        .list(
            &ListParams::default()
                .labels("app=demo")
                .fields("metadata.name=b"),
        )
        .await
        .unwrap();
    assert_eq!(
        selected
            .items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert!(
        cms.list(&ListParams::default().labels("app notin (demo)"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["v"], "3");
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["x"], "y");
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header("content-type", "application/json-patch+json")
        .body(br#"[{"op": "replace", "path": "/data/v", "value": "4"}]"#.to_vec())
        .unwrap();
    let patched: ConfigMap = client.request(req).await.unwrap();
    assert_eq!(patched.data.unwrap()["v"], "4");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let e = api_error(cms.get("a").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "configmaps \"a\" not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_every_change_in_order() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let writer = sim.admin();
    let writes = tokio::spawn(async move {
        for i in 0..50 {
            let name = format!("c{}", i % 5);
            let obj = json!({"metadata": {"name": name}, "data": {"i": i.to_string()}});
            if i < 5 {
                writer
                    .create(
                        gvr::CONFIG_MAPS,
                        Some("default"),
                        obj,
                        &WriteOptions::default(),
                    )
                    .await
                    .unwrap();
            } else {
                let patch = supsvc_sim::api::Patch::Merge(json!({"data": {"i": i.to_string()}}));
                writer
                    .patch(
                        gvr::CONFIG_MAPS,
                        Some("default"),
                        &name,
                        &patch,
                        &WriteOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        }
        writer
            .delete(
                gvr::CONFIG_MAPS,
                Some("default"),
                "c0",
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    });
    let mut seen = Vec::new();
    let mut last_rv = 0u64;
    while seen.len() < 51 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let (kind, obj) = match event {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            other => panic!("unexpected {other:?}"),
        };
        let rv: u64 = obj
            .metadata
            .resource_version
            .clone()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv > last_rv, "resourceVersions increase");
        last_rv = rv;
        let i = obj
            .data
            .as_ref()
            .map(|d| d["i"].clone())
            .unwrap_or_default();
        seen.push((kind, i));
    }
    writes.await.unwrap();
    let expected: Vec<(&str, String)> = (0..50)
        .map(|i| (if i < 5 { "ADDED" } else { "MODIFIED" }, i.to_string()))
        .chain([("DELETED", "45".to_string())])
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_version_older_than_the_history_is_410_expired() {
    let sim = Sim::start_with(ApiOptions { watch_history: 5 }).await;
    for i in 0..10 {
        let obj = json!({"metadata": {"name": format!("c{i}")}});
        sim.admin()
            .create(
                gvr::CONFIG_MAPS,
                Some("default"),
                obj,
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    let cms: Api<ConfigMap> = Api::namespaced(kube_client(&sim, "admin").await, "default");
    let mut stream = cms
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version: 2"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_resource_version_is_a_conflict_with_the_real_message() {
    let sim = Sim::start().await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        kube_client(&sim, "admin").await,
        "default",
        &pkgi_resource(),
    );
    let obj: DynamicObject = serde_json::from_value(pkgi("x", "default")).unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    let mut first = created.clone();
    first.data["spec"]["paused"] = json!(true);
    api.replace("x", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created;
    stale.data["spec"]["paused"] = json!(false);
    let e = api_error(api.replace("x", &PostParams::default(), &stale).await);
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on packageinstalls.packaging.carvel.dev \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_moves_with_spec_only_and_status_goes_through_the_subresource() {
    let sim = Sim::start().await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        kube_client(&sim, "admin").await,
        "default",
        &pkgi_resource(),
    );
    let mut obj = pkgi("p", "default");
    obj["status"] = json!({"friendlyDescription": "painted"});
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "create ignores status on a status-subresource kind"
    );
    let gen_of = |o: &DynamicObject| o.metadata.generation.unwrap();
    let labelled = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"l": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        gen_of(&labelled),
        1,
        "a label-only change does not bump generation"
    );
    let paused = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(gen_of(&paused), 2);
    let status_via_main = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"x": 1}})),
        )
        .await
        .unwrap();
    assert!(
        status_via_main.data.get("status").is_none(),
        "the main resource ignores status"
    );
    let status = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"x": 1}, "spec": {"paused": false}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["x"], 1);
    assert_eq!(
        status.data["spec"]["paused"], true,
        "the status subresource ignores spec"
    );
    assert_eq!(gen_of(&status), 2);
    let e = api_error(
        api.patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"paused": false}})),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (415, "UnsupportedMediaType"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_persists_nothing() {
    let sim = Sim::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(kube_client(&sim, "admin").await, "default");
    let rv_before = sim.api.resource_version();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would_be = cms.create(&dry, &cm("d", "1")).await.unwrap();
    assert_eq!(would_be.metadata.name.as_deref(), Some("d"));
    assert!(would_be.metadata.uid.is_some());
    assert_eq!(api_error(cms.get("d").await).code, 404);
    cms.create(&PostParams::default(), &cm("d", "1"))
        .await
        .unwrap();
    let pp = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let would_be = cms
        .patch("d", &pp, &Patch::Merge(json!({"data": {"v": "2"}})))
        .await
        .unwrap();
    assert_eq!(would_be.data.unwrap()["v"], "2");
    cms.delete(
        "d",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let still = cms.get("d").await.unwrap();
    assert_eq!(still.data.unwrap()["v"], "1");
    assert_eq!(
        sim.api.resource_version(),
        rv_before + 1,
        "only the real create wrote"
    );
}

fn sts(image: &str, service: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": service, "replicas": 1,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": image}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_and_pvc_validation_speak_like_the_real_server() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &sts("postgres:15", "db"))
        .await
        .unwrap();
    sets.patch("db", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}})))
        .await
        .unwrap();
    let e = api_error(sets.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "5Gi"}}}}]}}))).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "10Gi"}}}})).unwrap();
    pvcs.create(&PostParams::default(), &claim).await.unwrap();
    pvcs.patch_status(
        "data",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}})),
    )
    .await
    .unwrap();
    let grown = pvcs
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "20Gi"}}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        grown.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "20Gi"
    );
    let e = api_error(
        pvcs.patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "15360Mi"}}}})),
        )
        .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "PersistentVolumeClaim \"data\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
        )
    );
    let e = api_error(
        pvcs.patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"storageClassName": "slow"}})),
        )
        .await,
    );
    assert_eq!(
        e.message,
        "PersistentVolumeClaim \"data\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_namespaces_and_conflicts_on_create() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let e = api_error(
        cms.create(&PostParams::default(), &cm("Bad_Name", "1"))
            .await,
    );
    assert_eq!(e.code, 422);
    assert!(e.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);
    cms.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    let e = api_error(cms.create(&PostParams::default(), &cm("a", "1")).await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (409, "AlreadyExists", "configmaps \"a\" already exists")
    );
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let e = api_error(missing.create(&PostParams::default(), &cm("a", "1")).await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let made = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(made.metadata.name.unwrap().starts_with("gen-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_its_objects_and_finalizers_hold_deletion() {
    let sim = Sim::start().await;
    sim.namespace("team").await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    let mut held = cm("held", "1");
    held.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    let held_api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    held_api
        .create(&PostParams::default(), &held)
        .await
        .unwrap();
    held_api
        .delete("held", &DeleteParams::default())
        .await
        .unwrap();
    let marked = held_api.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    held_api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(api_error(held_api.get("held").await).code, 404);

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        sim.admin()
            .list(gvr::CONFIG_MAPS, Some("team"), &Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn raw(
    client: &kube::Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Box<kube::core::Status> {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    api_error(client.request_text(req).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_with_a_status() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let e = raw(
        &client,
        "POST",
        cms,
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    let e = raw(
        &client,
        "GET",
        "/apis/apps/v1/namespaces/default/widgets",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "the server could not find the requested resource")
    );
    let big = serde_json::to_vec(&json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "big"}, "data": {"x": "a".repeat(3 * 1024 * 1024 + 1)}})).unwrap();
    let e = raw(&client, "POST", cms, "application/json", big).await;
    assert_eq!((e.code, e.reason.as_str()), (413, "RequestEntityTooLarge"));
    let no_kind = serde_json::to_vec(&json!({"metadata": {"name": "k"}})).unwrap();
    let e = raw(&client, "POST", cms, "application/json", no_kind).await;
    assert_eq!(e.code, 400);
    assert!(
        e.message.starts_with("Object 'Kind' is missing"),
        "{}",
        e.message
    );
    let wrong_kind = serde_json::to_vec(
        &json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "k"}}),
    )
    .unwrap();
    let e = raw(&client, "POST", cms, "application/json", wrong_kind).await;
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("(Secret) does not match"),
        "{}",
        e.message
    );
    let wrong_version = serde_json::to_vec(
        &json!({"kind": "ConfigMap", "apiVersion": "v2", "metadata": {"name": "k"}}),
    )
    .unwrap();
    let e = raw(&client, "POST", cms, "application/json", wrong_version).await;
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("the API version in the data (v2)"),
        "{}",
        e.message
    );

    sim.admin()
        .create(
            gvr::PACKAGE_INSTALLS,
            Some("default"),
            pkgi("p", "default"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let uri = "/apis/packaging.carvel.dev/v1alpha1/namespaces/default/packageinstalls/p";
    let e = raw(
        &client,
        "PATCH",
        uri,
        "application/json-patch+json",
        br#"[{"op":"remove","path":"/spec/paused"}]"#.to_vec(),
    )
    .await;
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "the server rejected our request due to an error in our request"
    );
    let e = raw(
        &client,
        "PATCH",
        uri,
        "application/strategic-merge-patch+json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(e.code, 415);
    let e = raw(
        &client,
        "POST",
        &format!("{uri}/status"),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(e.code, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_401_and_viewers_get_the_real_403() {
    let sim = Sim::start().await;
    sim.admin()
        .create(gvr::PERSISTENT_VOLUME_CLAIMS, Some("default"), json!({"metadata": {"name": "x"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}), &WriteOptions::default())
        .await
        .unwrap();
    let viewer = kube_client(&sim, "viewer").await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(viewer, "default");
    pvcs.get("x").await.unwrap();
    let e = api_error(
        pvcs.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "persistentvolumeclaims \"x\" is forbidden: User \"viewer\" cannot patch resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"default\""
    );

    let mut kc = kube::config::Kubeconfig::read_from(&sim.kubeconfig).unwrap();
    for u in &mut kc.auth_infos {
        if let Some(a) = u.auth_info.as_mut() {
            a.token = Some("wrong".to_string().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let stranger = kube::Client::try_from(config).unwrap();
    let e = api_error(
        Api::<PersistentVolumeClaim>::namespaced(stranger, "default")
            .get("x")
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
    let _: Value = json!(null);
}

/// Polls `get` until it finds the object (or fails after a few seconds).
async fn appears<K>(api: &Api<K>, name: &str) -> K
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..200 {
        if let Ok(Some(found)) = api.get_opt(name).await {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{name} did not appear");
}

/// The ServiceAccount controller, as a client sees it: every namespace, existing or new, has a `default`
/// ServiceAccount, and a deleted one comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_a_default_service_account() {
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    let sim = Sim::start().await;
    supsvc_sim::serviceaccounts::start(std::sync::Arc::clone(&sim.api), std::sync::Arc::default());
    let client = kube_client(&sim, "admin").await;

    // The namespace that existed before the controller started.
    let existing: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let sa = appears(&existing, "default").await;
    assert_eq!(sa.metadata.namespace.as_deref(), Some("default"));

    // A namespace created through kube-rs.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap(),
        )
        .await
        .unwrap();
    let team: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let first = appears(&team, "default").await;
    assert_eq!(
        team.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    // Deleted: created again, a new object.
    team.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let again = appears(&team, "default").await;
    assert_ne!(again.metadata.uid, first.metadata.uid);

    // Accounts of other names are left alone.
    team.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "builder"}})).unwrap(),
    )
    .await
    .unwrap();
    team.delete("builder", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(team.get_opt("builder").await.unwrap().is_none());
}

/// Server-side apply as kube-rs controllers use it (`Patch::Apply` with a field manager): the first
/// apply creates, a second manager setting the same field without force is the API server's 409 with
/// the manager and the field in its message, `force()` takes the field over, managedFields name each
/// manager with what it owns, and a manager that leaves its own field out of its next apply removes it
/// (but never a field another manager owns). The rule is the API server's (structured-merge-diff).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_server_side_apply_owns_conflicts_forces_and_prunes() {
    let sim = Sim::start().await;
    let client = kube_client(&sim, "admin").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let apply = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data});

    let created = cms
        .patch(
            "ssa",
            &PatchParams::apply("controller-a"),
            &Patch::Apply(apply(json!({"a": "1", "b": "2"}))),
        )
        .await
        .expect("the first apply creates");
    assert_eq!(created.data.as_ref().unwrap()["a"], "1");

    // Another manager sets `a` without force: 409 Conflict naming controller-a and .data.a.
    let status = api_error(
        cms.patch(
            "ssa",
            &PatchParams::apply("controller-b"),
            &Patch::Apply(apply(json!({"a": "9"}))),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status
            .message
            .contains("Apply failed with 1 conflict: conflict with \"controller-a\""),
        "{}",
        status.message
    );
    assert!(status.message.contains(".data.a"), "{}", status.message);
    assert_eq!(cms.get("ssa").await.unwrap().data.unwrap()["a"], "1");

    // force() takes `a` over; each manager owns what it set last.
    let forced = cms
        .patch(
            "ssa",
            &PatchParams::apply("controller-b").force(),
            &Patch::Apply(apply(json!({"a": "9"}))),
        )
        .await
        .expect("a forced apply takes the field");
    assert_eq!(forced.data.as_ref().unwrap()["a"], "9");
    let owners = |cm: &ConfigMap| -> Vec<(String, String, Vec<String>)> {
        let mut owned: Vec<_> = cm
            .metadata
            .managed_fields
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let fields = m
                    .fields_v1
                    .and_then(|f| f.0.get("f:data").cloned())
                    .and_then(|d| d.as_object().map(|o| o.keys().cloned().collect()))
                    .unwrap_or_default();
                (
                    m.manager.unwrap_or_default(),
                    m.operation.unwrap_or_default(),
                    fields,
                )
            })
            .collect();
        owned.sort();
        owned
    };
    assert_eq!(
        owners(&forced),
        [
            (
                "controller-a".into(),
                "Apply".into(),
                vec!["f:b".to_string()]
            ),
            (
                "controller-b".into(),
                "Apply".into(),
                vec!["f:a".to_string()]
            ),
        ]
    );

    // controller-a applies without `b` and without `a`: its `b` goes, controller-b's `a` stays.
    let pruned = cms
        .patch(
            "ssa",
            &PatchParams::apply("controller-a"),
            &Patch::Apply(apply(json!({"c": "3"}))),
        )
        .await
        .expect("the apply succeeds");
    let data = pruned.data.unwrap();
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["a", "c"],
        "{data:?}"
    );
    assert_eq!(data["a"], "9");
}
