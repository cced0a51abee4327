//! The in-process `Client` the simulator's controllers use: the semantics they rely on.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use supsvc_sim::api::{
    ApiServer, ListOptions, Patch, UserInfo, WatchEvent, WriteOptions, authz, gvr,
};

async fn setup() -> supsvc_sim::api::Client {
    let api = ApiServer::new();
    let c = api.client(UserInfo::admin());
    c.create(
        gvr::NAMESPACES,
        None,
        json!({"metadata": {"name": "ns"}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    c
}

fn w() -> WriteOptions {
    WriteOptions::default()
}

async fn next(s: &mut futures::stream::BoxStream<'static, WatchEvent>) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an event in time")
        .expect("stream open")
}

fn name_of(e: &WatchEvent) -> (&'static str, String) {
    let (t, o) = match e {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        WatchEvent::Error(s) => panic!("error event {s:?}"),
    };
    (
        t,
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn a_selected_watch_sees_objects_enter_and_leave_the_selection() {
    let c = setup().await;
    let opts = ListOptions {
        label_selector: Some("kapp.k14s.io/app=1".into()),
        field_selector: None,
    };
    let mut s = c
        .watch(gvr::CONFIG_MAPS, Some("ns"), &opts, None)
        .await
        .unwrap();
    c.create(
        gvr::CONFIG_MAPS,
        Some("ns"),
        json!({"metadata": {"name": "a"}}),
        &w(),
    )
    .await
    .unwrap();
    let label = |v: Value| Patch::Merge(json!({"metadata": {"labels": {"kapp.k14s.io/app": v}}}));
    c.patch(gvr::CONFIG_MAPS, Some("ns"), "a", &label(json!("1")), &w())
        .await
        .unwrap();
    c.patch(
        gvr::CONFIG_MAPS,
        Some("ns"),
        "a",
        &Patch::Merge(json!({"data": {"x": "1"}})),
        &w(),
    )
    .await
    .unwrap();
    c.patch(gvr::CONFIG_MAPS, Some("ns"), "a", &label(Value::Null), &w())
        .await
        .unwrap();
    let got: Vec<_> = [next(&mut s).await, next(&mut s).await, next(&mut s).await]
        .iter()
        .map(name_of)
        .collect();
    assert_eq!(
        got,
        [
            ("ADDED", "a".into()),
            ("MODIFIED", "a".into()),
            ("DELETED", "a".into())
        ]
    );
}

#[tokio::test]
async fn a_watch_without_a_version_starts_with_the_current_objects() {
    let c = setup().await;
    for n in ["a", "b"] {
        c.create(
            gvr::CONFIG_MAPS,
            Some("ns"),
            json!({"metadata": {"name": n}}),
            &w(),
        )
        .await
        .unwrap();
    }
    let mut s = c
        .watch(gvr::CONFIG_MAPS, None, &ListOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(name_of(&next(&mut s).await), ("ADDED", "a".into()));
    assert_eq!(name_of(&next(&mut s).await), ("ADDED", "b".into()));
    c.delete(gvr::NAMESPACES, None, "ns", &w()).await.unwrap();
    assert_eq!(name_of(&next(&mut s).await), ("DELETED", "a".into()));
    assert_eq!(name_of(&next(&mut s).await), ("DELETED", "b".into()));
}

#[tokio::test]
async fn writes_that_change_nothing_are_not_persisted() {
    let c = setup().await;
    let a = c
        .create(
            gvr::CONFIG_MAPS,
            Some("ns"),
            json!({"metadata": {"name": "a"}, "data": {"x": "1"}}),
            &w(),
        )
        .await
        .unwrap();
    let same = c
        .patch(
            gvr::CONFIG_MAPS,
            Some("ns"),
            "a",
            &Patch::Merge(json!({"data": {"x": "1"}})),
            &w(),
        )
        .await
        .unwrap();
    assert_eq!(
        same["metadata"]["resourceVersion"],
        a["metadata"]["resourceVersion"]
    );
    let updated = c
        .update(gvr::CONFIG_MAPS, Some("ns"), a.clone(), &w())
        .await
        .unwrap();
    assert_eq!(
        updated["metadata"]["resourceVersion"],
        a["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn status_writes_and_their_errors() {
    let c = setup().await;
    let e = c
        .update_status(
            gvr::CONFIG_MAPS,
            Some("ns"),
            json!({"metadata": {"name": "a"}}),
            &w(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, 404, "configmaps have no status subresource");
    let e = c
        .update(
            gvr::APPS,
            Some("ns"),
            json!({"metadata": {"name": "missing"}}),
            &w(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.message, "apps.kappctrl.k14s.io \"missing\" not found");
    let app = c
        .create(
            gvr::APPS,
            Some("ns"),
            json!({"metadata": {"name": "a"}, "spec": {"paused": false}}),
            &w(),
        )
        .await
        .unwrap();
    let mut with_status = app.clone();
    with_status["status"] =
        json!({"observedGeneration": 1, "friendlyDescription": "Reconcile succeeded"});
    with_status["spec"]["paused"] = json!(true);
    let s = c
        .update_status(gvr::APPS, Some("ns"), with_status, &w())
        .await
        .unwrap();
    assert_eq!(
        (
            s["status"]["observedGeneration"].clone(),
            s["spec"]["paused"].clone()
        ),
        (json!(1), json!(false))
    );
    let e = c
        .update_status(gvr::APPS, Some("ns"), app, &w())
        .await
        .unwrap_err();
    assert!(
        e.is_conflict(),
        "the status write used a stale resourceVersion"
    );
}

#[tokio::test]
async fn readers_cannot_write_and_field_selectors_filter() {
    let c = setup().await;
    c.create(
        gvr::SECRETS,
        Some("ns"),
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls"}),
        &w(),
    )
    .await
    .unwrap();
    c.create(
        gvr::SECRETS,
        Some("ns"),
        json!({"metadata": {"name": "plain"}}),
        &w(),
    )
    .await
    .unwrap();
    let viewer = c.as_user(authz::viewer("viewer"));
    let opts = ListOptions {
        label_selector: None,
        field_selector: Some("type=Opaque".into()),
    };
    let plain = viewer.list(gvr::SECRETS, Some("ns"), &opts).await.unwrap();
    assert_eq!(
        plain
            .items
            .iter()
            .map(|s| s["metadata"]["name"].clone())
            .collect::<Vec<_>>(),
        [json!("plain")]
    );
    let e = viewer
        .delete(gvr::SECRETS, Some("ns"), "tls", &w())
        .await
        .unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "secrets \"tls\" is forbidden: User \"viewer\" cannot delete resource \"secrets\" in API group \"\" in the namespace \"ns\""
    );
}
