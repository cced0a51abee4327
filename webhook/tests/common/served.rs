//! The webhook as a server: started on a loopback port over HTTPS with a self-signed certificate, an
//! HTTPS client that trusts it, and polling on what it reports (readiness, reload counts).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use supsvc_webhook::server::{AppState, RunningWebhook, StartOptions, start};

use super::setup::admission_fixture;
use super::tls::{HttpsClient, TestCert, call, client, self_signed, write_cert};

/// Polls `check` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `supsvc_webhook_reloads_total{outcome=…}` from the webhook's metrics, 0 before the first.
pub fn reloads(state: &AppState, outcome: &str) -> u64 {
    let prefix = format!("supsvc_webhook_reloads_total{{outcome=\"{outcome}\"}} ");
    state
        .metrics
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// Writes a fresh self-signed certificate for `localhost` to `dir/tls.crt` and `dir/tls.key`, and
/// returns it with the top of a configuration that serves it: `reloadIntervalMs: 20` and `tls` with
/// absolute paths (relative ones would be read from the working directory).
pub fn tls_in(dir: &Path) -> (TestCert, String) {
    let cert = self_signed();
    write_cert(dir, &cert);
    let header = format!(
        "reloadIntervalMs: 20\ntls: {{certFile: {}, keyFile: {}}}",
        dir.join("tls.crt").display(),
        dir.join("tls.key").display(),
    );
    (cert, header)
}

/// A webhook serving over HTTPS on a loopback port, and a client that trusts its certificate.
pub struct Served {
    pub webhook: RunningWebhook,
    pub client: HttpsClient,
    /// `https://localhost:PORT`.
    pub base: String,
}

impl Served {
    /// Starts the webhook with the configuration file `config` on `127.0.0.1:0` (any free port);
    /// `cert` is the certificate the configuration serves (see [`tls_in`]).
    pub async fn start(config: &Path, cert: &TestCert) -> Served {
        let webhook = start(
            config.to_path_buf(),
            StartOptions {
                listen: Some("127.0.0.1:0".into()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
        let base = format!("https://localhost:{}", webhook.addr.port());
        Served {
            webhook,
            client: client(&cert.der),
            base,
        }
    }

    /// `GET /readyz` answers 200.
    pub async fn ready(&self) -> bool {
        matches!(
            call(&self.client, &format!("{}/readyz", self.base), None).await,
            Ok((200, _))
        )
    }

    /// Waits (60 s at most) until [`Served::ready`].
    pub async fn wait_ready(&self) {
        wait_for("readiness", Duration::from_secs(60), async || {
            self.ready().await
        })
        .await;
    }

    /// The AdmissionReview response to the Pod creation fixture (`POST /validate`, which must answer 200).
    pub async fn review(&self) -> serde_json::Value {
        let review = Bytes::from(admission_fixture("webhook/pod-create.json"));
        let (status, body) = call(
            &self.client,
            &format!("{}/validate", self.base),
            Some(review),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}
