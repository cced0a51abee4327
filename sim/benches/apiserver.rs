//! The simulated API server's throughput over HTTPS on loopback: GETs/s and PATCHes/s on one object with
//! keep-alive, watch fan-out to 100 watchers, start-up time, and memory with 10,000 objects.
//!
//! Run: `cargo bench -p supsvc-sim --bench apiserver` (client and server share the machine's cores).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use supsvc_sim::api::{ApiServer, UserInfo, WriteOptions, gvr};
use supsvc_sim::http::{ServeOptions, serve};

const TOKEN: &str = "bench-token";
const RUN: Duration = Duration::from_secs(3);
const CONCURRENCY: usize = 16;

type Https = HttpClient<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client(ca_pem: &str) -> Https {
    let tls = supsvc_sim::tls::client_config(ca_pem).expect("client tls");
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    HttpClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY)
        .build(connector)
}

fn request(method: &str, url: &str, content_type: &str, body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("request")
}

/// Runs `make` from CONCURRENCY tasks for RUN; requests per second.
async fn rate(
    http: &Https,
    make: impl Fn(u64) -> http::Request<Full<Bytes>> + Send + Sync + 'static,
) -> f64 {
    let make = Arc::new(make);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, make, done, failed) = (
            http.clone(),
            Arc::clone(&make),
            Arc::clone(&done),
            Arc::clone(&failed),
        );
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < RUN {
                let n = done.fetch_add(1, Ordering::Relaxed);
                match http.request(make(n)).await {
                    Ok(resp) => {
                        if !resp.status().is_success() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = resp.into_body().collect().await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let failures = failed.load(Ordering::Relaxed);
    assert_eq!(failures, 0, "requests failed");
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Start-up: the API server, a fresh CA and serving certificate, listening.
    let started = Instant::now();
    let api = ApiServer::new();
    api.add_token(TOKEN, UserInfo::admin());
    let server = serve(Arc::clone(&api), ServeOptions::default())
        .await
        .expect("serve");
    let startup = started.elapsed();
    println!(
        "start-up (API server + CA + serving cert + listen): {:.1} ms",
        startup.as_secs_f64() * 1e3
    );

    let admin = api.client(UserInfo::admin());
    let w = WriteOptions::default();
    admin
        .create(
            gvr::NAMESPACES,
            None,
            json!({"metadata": {"name": "bench"}}),
            &w,
        )
        .await
        .expect("ns");
    admin
        .create(
            gvr::CONFIG_MAPS,
            Some("bench"),
            json!({"metadata": {"name": "one", "labels": {"app": "bench"}}, "data": {"k": "v"}}),
            &w,
        )
        .await
        .expect("cm");
    let http = client(&server.ca_pem);
    let url = format!("{}/api/v1/namespaces/bench/configmaps/one", server.url);

    let u = url.clone();
    let gets = rate(&http, move |_| {
        request("GET", &u, "application/json", Bytes::new())
    })
    .await;
    println!("GET one object over HTTPS, keep-alive, {CONCURRENCY} connections: {gets:.0} req/s");

    let u = url.clone();
    let patches = rate(&http, move |n| {
        let body = json!({"metadata": {"labels": {"n": n.to_string()}}}).to_string();
        request(
            "PATCH",
            &u,
            "application/merge-patch+json",
            Bytes::from(body),
        )
    })
    .await;
    println!(
        "PATCH (merge) one object over HTTPS, keep-alive, {CONCURRENCY} connections: {patches:.0} req/s"
    );

    // Watch fan-out: 100 HTTPS watches, then 200 writes; time until every watcher saw every write.
    const WATCHERS: usize = 100;
    const WRITES: usize = 200;
    let rv = api.resource_version();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let watch_url = format!(
            "{}/api/v1/namespaces/bench/configmaps?watch=1&resourceVersion={rv}",
            server.url
        );
        let resp = http
            .request(request("GET", &watch_url, "application/json", Bytes::new()))
            .await
            .expect("watch");
        watchers.push(tokio::spawn(async move {
            let mut body = resp.into_body().into_data_stream();
            let mut lines = 0usize;
            while lines < WRITES {
                match body.next().await {
                    Some(Ok(chunk)) => lines += chunk.iter().filter(|b| **b == b'\n').count(),
                    _ => break,
                }
            }
            lines
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fanout_start = Instant::now();
    for i in 0..WRITES {
        let patch = supsvc_sim::api::Patch::Merge(json!({"data": {"i": i.to_string()}}));
        admin
            .patch(gvr::CONFIG_MAPS, Some("bench"), "one", &patch, &w)
            .await
            .expect("patch");
    }
    let mut delivered = 0;
    for w in watchers {
        delivered += w.await.unwrap_or(0);
    }
    let fanout = fanout_start.elapsed();
    assert_eq!(
        delivered,
        WATCHERS * WRITES,
        "every watcher saw every write"
    );
    println!(
        "watch fan-out: {WRITES} writes to {WATCHERS} HTTPS watchers, {delivered} events in {:.0} ms ({:.0} events/s)",
        fanout.as_secs_f64() * 1e3,
        delivered as f64 / fanout.as_secs_f64()
    );

    // Memory with 10,000 objects (ConfigMaps of ~300 bytes).
    let before = rss_kib();
    let fill = Instant::now();
    for i in 0..10_000 {
        let obj = json!({"metadata": {"name": format!("cm-{i:05}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}}, "data": {"key": "x".repeat(200)}});
        admin
            .create(gvr::CONFIG_MAPS, Some("bench"), obj, &w)
            .await
            .expect("fill");
    }
    let fill_time = fill.elapsed();
    let after = rss_kib();
    println!(
        "10,000 objects created in-process in {:.0} ms; RSS {:.1} MiB -> {:.1} MiB (+{:.1} MiB, includes the 10,000-change watch history)",
        fill_time.as_secs_f64() * 1e3,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    let list_url = format!(
        "{}/api/v1/namespaces/bench/configmaps?labelSelector=shard%3D3",
        server.url
    );
    let t = Instant::now();
    let resp = http
        .request(request("GET", &list_url, "application/json", Bytes::new()))
        .await
        .expect("list");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    println!(
        "LIST with a label selector over 10,001 objects (1,000 match, {} KiB): {:.1} ms",
        body.len() / 1024,
        t.elapsed().as_secs_f64() * 1e3
    );
    server.shutdown();
}
