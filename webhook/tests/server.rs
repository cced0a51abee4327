//! The whole webhook over HTTPS: readiness, hot reload under load, certificate rotation.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::served::{Served, reloads, tls_in, wait_for};
use common::setup::{admission_fixture, policy, write_config};
use common::tls::{call, client, self_signed, write_cert};
use common::wat_policies::{Behaviour, wasm};

/// Replaces a file atomically, as a ConfigMap update or an image rollout would.
fn replace(path: &std::path::Path, content: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_drops_nothing_and_rejects_a_broken_module() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, header) = tls_in(dir.path());
    let config = write_config(
        dir.path(),
        &[policy("guard", Behaviour::Accept, &[])],
        &header,
    );
    let served = Served::start(&config, &cert).await;
    served.wait_ready().await;
    let Served {
        webhook,
        client,
        base,
    } = served;

    // Load: 8 keep-alive clients sending the Pod review until told to stop.
    let review = Bytes::from(admission_fixture("webhook/pod-create.json"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (allowed, denied, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut load = Vec::new();
    for _ in 0..8 {
        let (client, url, review) = (client.clone(), format!("{base}/validate"), review.clone());
        let (stop, allowed, denied, failed) = (
            stop.clone(),
            allowed.clone(),
            denied.clone(),
            failed.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match call(&client, &url, Some(review.clone())).await {
                    Ok((200, body)) => {
                        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        if body["response"]["allowed"] == true {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        } else {
                            denied.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    other => {
                        eprintln!("request failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A new version of the module: swapped in while requests flow.
    replace(&dir.path().join("guard.wasm"), &wasm(Behaviour::Reject));
    let denied_seen = denied.clone();
    wait_for(
        "the new module to serve",
        Duration::from_secs(30),
        async || denied_seen.load(Ordering::Relaxed) > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A broken module: rejected, the running version kept.
    replace(&dir.path().join("guard.wasm"), b"\0asm broken");
    let state = webhook.state.clone();
    wait_for(
        "the broken module to be rejected",
        Duration::from_secs(30),
        async || reloads(&state, "failure") >= 1,
    )
    .await;
    let denied_before = denied.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    let (allowed, denied, failed) = (
        allowed.load(Ordering::Relaxed),
        denied.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    eprintln!("allowed {allowed}, denied {denied}, failed {failed}");
    assert_eq!(failed, 0, "every request was answered");
    assert!(
        allowed > 0 && denied > denied_before,
        "allowed {allowed}, denied {denied}"
    );
    let metrics = webhook.state.metrics.encode();
    assert!(
        metrics.contains("supsvc_webhook_reloads_total{outcome=\"success\"} 2"),
        "{metrics}"
    );
    assert!(webhook.state.is_ready());

    // A broken configuration is rejected too, and the running policies kept. (Waits for the count of
    // rejected reloads to grow rather than for an exact figure: the check is that this rejection happens.)
    let failures_before = reloads(&state, "failure");
    replace(&config, b"policies: [{name: guard}]");
    wait_for(
        "the broken configuration to be rejected",
        Duration::from_secs(30),
        async || reloads(&state, "failure") > failures_before,
    )
    .await;
    let (status, body) = call(&client, &format!("{base}/validate"), Some(review.clone()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["response"]["allowed"],
        false
    );
    webhook.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_is_reloaded_when_the_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let (first, header) = tls_in(dir.path());
    let config = write_config(dir.path(), &[], &header);
    let served = Served::start(&config, &first).await;
    let url = format!("{}/healthz", served.base);
    assert_eq!(call(&client(&first.der), &url, None).await.unwrap().0, 200);

    let second = self_signed();
    assert!(
        call(&client(&second.der), &url, None).await.is_err(),
        "not trusted yet"
    );
    write_cert(dir.path(), &second);
    wait_for("the new certificate", Duration::from_secs(10), async || {
        call(&client(&second.der), &url, None).await.is_ok()
    })
    .await;
    assert!(
        call(&client(&first.der), &url, None).await.is_err(),
        "the old certificate is gone"
    );
    served.webhook.stop();
}
