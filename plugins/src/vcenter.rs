//! The vCenter edge: a vSphere Automation API (REST, `/api`) client for Supervisor Services.
//!
//! - Session login `POST /api/session` with HTTP Basic; the token goes in `vmware-api-session-id`;
//!   a 401 on a call logs in again once and repeats the call; `DELETE /api/session` at the end.
//! - TLS over the project's rustls stack (hyper + hyper-rustls, as `transport.rs`): the system's trust
//!   store, or only `--vcenter-ca-file`, or — explicitly — `--vcenter-insecure`.
//! - The password never comes from a flag (it would show in `ps`): `SUPSVC_VCENTER_PASSWORD`,
//!   `--vcenter-password-stdin`, or a prompt on the terminal.
//! - Version detection (`GET /api/appliance/system/version`) chooses the 7.0.3/8.x cluster routes or
//!   the 9.x Supervisor routes ([`supsvc_core::vcenter::capabilities`]); the kubeconfig's Supervisor is
//!   found by its API endpoint ([`supsvc_core::vcenter::choose_target`]).

use std::io::{IsTerminal, Read as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use serde::de::DeserializeOwned;
use serde_json::Value;
use supsvc_core::vcenter::{
    self as core_vc, Capabilities, Flavour, InstallRecord, SESSION_HEADER, VapiError,
};

use crate::cli::VcenterArgs;
use crate::error::{Exit, Failure, Result, chain};
use crate::transport::USER_AGENT_VALUE;

/// The environment variable holding the vCenter password.
pub const PASSWORD_ENV: &str = "SUPSVC_VCENTER_PASSWORD";
/// How long one request to vCenter may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A logged-in vCenter.
pub struct Vcenter {
    http: Https,
    /// `https://vc.example.com` (no trailing slash).
    pub url: String,
    user: String,
    password: String,
    token: Mutex<Option<String>>,
    /// What the version endpoint said.
    pub version: String,
    pub caps: Capabilities,
}

/// The install routes of the kubeconfig's Supervisor on this vCenter.
#[derive(Debug, Clone)]
pub struct Target {
    pub flavour: Flavour,
    /// The cluster MoID (7.0.3/8.x) or the Supervisor ID (9.x).
    pub id: String,
}

impl Target {
    /// `…/supervisor-services/{service}` on this target.
    pub fn service_path(&self, service: &str) -> String {
        core_vc::install_path(self.flavour, &self.id, Some(service))
    }

    pub fn describe(&self) -> String {
        match self.flavour {
            Flavour::Cluster => format!("cluster {}", self.id),
            Flavour::Supervisor => format!("Supervisor {}", self.id),
        }
    }
}

/// An answer other than 2xx, with vCenter's vAPI error.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: u16,
    pub error: VapiError,
}
/// What vCenter's connection is asked to do: built from clap's [`crate::cli::VcenterArgs`] by one `From`, so the
/// command never sees clap (cargo keeps its options apart from its command line the same way).
#[derive(Debug, Clone)]
pub struct VcenterOptions {
    /// Edit the values where they persist: vCenter's stored config of the service (https://HOST).
    pub vcenter: Option<String>,
    /// The vCenter user.
    pub vcenter_user: String,
    /// Read the vCenter password from stdin (else SUPSVC_VCENTER_PASSWORD, else a prompt).
    pub vcenter_password_stdin: bool,
    /// Trust only this CA (PEM) for vCenter's certificate (default: the system's trust store).
    pub vcenter_ca_file: Option<PathBuf>,
    /// Do not verify vCenter's certificate (only where you accept the risk).
    pub vcenter_insecure: bool,
    /// The Supervisor's vSphere cluster (domain-cN), for 7.0.3/8.x (default: the one serving the kubeconfig's API server).
    pub vcenter_cluster: Option<String>,
    /// The Supervisor ID, for 9.x (default: the one serving the kubeconfig's API server).
    pub vcenter_supervisor: Option<String>,
}

impl From<&VcenterArgs> for VcenterOptions {
    fn from(args: &VcenterArgs) -> Self {
        VcenterOptions {
            vcenter: args.vcenter.clone(),
            vcenter_user: args.vcenter_user.clone(),
            vcenter_password_stdin: args.vcenter_password_stdin,
            vcenter_ca_file: args.vcenter_ca_file.clone(),
            vcenter_insecure: args.vcenter_insecure,
            vcenter_cluster: args.vcenter_cluster.clone(),
            vcenter_supervisor: args.vcenter_supervisor.clone(),
        }
    }
}

/// Reads the password: the environment, stdin (`--vcenter-password-stdin`), or a prompt.
pub fn read_password(args: &VcenterOptions, stdin_taken: bool) -> Result<String> {
    if args.vcenter_password_stdin {
        if stdin_taken {
            return Err(Failure::usage(
                "--vcenter-password-stdin and -f - both read stdin",
                "give the values in a file, or the password in SUPSVC_VCENTER_PASSWORD",
            ));
        }
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::usage(
                format!("cannot read the vCenter password from stdin: {e}"),
                "pipe the password in, e.g. `cat pwfile | kubectl supsvc values-edit ... --vcenter-password-stdin`",
            )
        })?;
        let password = text.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err(Failure::usage(
                "--vcenter-password-stdin: stdin was empty",
                "pipe the password in, or set SUPSVC_VCENTER_PASSWORD",
            ));
        }
        return Ok(password);
    }
    if let Ok(p) = std::env::var(PASSWORD_ENV)
        && !p.is_empty()
    {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no vCenter password: SUPSVC_VCENTER_PASSWORD is not set and there is no terminal to ask on",
            "set SUPSVC_VCENTER_PASSWORD or pass --vcenter-password-stdin (never a flag: it would show in ps)",
        ));
    }
    rpassword::prompt_password(format!("Password for {} at vCenter: ", args.vcenter_user)).map_err(
        |e| {
            Failure::usage(
                format!("cannot read the vCenter password: {e}"),
                "set SUPSVC_VCENTER_PASSWORD or pass --vcenter-password-stdin",
            )
        },
    )
}

/// Accepts any certificate: `--vcenter-insecure` only.
#[derive(Debug)]
struct Insecure(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Insecure {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(args: &VcenterOptions) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::new(format!("TLS setup: {e}"), ""))?;
    if args.vcenter_insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Insecure(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match &args.vcenter_ca_file {
        Some(path) => {
            let certs = read_ca_file(path)?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    Failure::usage(
                        format!("--vcenter-ca-file {}: {e}", path.display()),
                        "give the PEM of vCenter's CA (from https://<vcenter>/certs/download.zip)",
                    )
                })?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::usage(
            format!("cannot read --vcenter-ca-file {}: {e}", path.display()),
            "give the path of vCenter's CA certificate (PEM)",
        )
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Failure::usage(
                format!("--vcenter-ca-file {} is not PEM: {e}", path.display()),
                "give the PEM of vCenter's CA (from https://<vcenter>/certs/download.zip)",
            )
        })?;
    if certs.is_empty() {
        return Err(Failure::usage(
            format!("--vcenter-ca-file {} holds no certificate", path.display()),
            "give the PEM of vCenter's CA (from https://<vcenter>/certs/download.zip)",
        ));
    }
    Ok(certs)
}

impl Vcenter {
    /// Connects and logs in; reads the version and what it allows.
    pub async fn connect(args: &VcenterOptions, url: &str, password: String) -> Result<Vcenter> {
        let url = url.trim_end_matches('/').to_owned();
        let url = if url.contains("://") {
            url
        } else {
            format!("https://{url}")
        };
        if !url.starts_with("https://") {
            return Err(Failure::usage(
                format!("--vcenter {url}: vCenter is reached over HTTPS"),
                "give https://<vcenter host>",
            ));
        }
        let tls = tls_config(args)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        let mut vc = Vcenter {
            http,
            url,
            user: args.vcenter_user.clone(),
            password,
            token: Mutex::new(None),
            version: String::new(),
            caps: core_vc::capabilities("8.0.0").map_err(|e| Failure::new(e.to_string(), ""))?,
        };
        vc.login().await?;
        let version: Value = vc.get("/api/appliance/system/version").await?;
        vc.version = version["version"].as_str().unwrap_or_default().to_owned();
        vc.caps = core_vc::capabilities(&vc.version).map_err(|e| {
            Failure::new(
                format!("vCenter at {}: {e}", vc.url),
                "values-edit --vcenter needs vCenter 8.0 or later (yaml_service_config)",
            )
        })?;
        Ok(vc)
    }

    async fn login(&self) -> Result<()> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/api/session", self.url))
            .header("authorization", format!("Basic {basic}"))
            .header("user-agent", USER_AGENT_VALUE)
            .body(Full::new(Bytes::new()))
            .map_err(|e| {
                Failure::usage(
                    format!("--vcenter {}: {e}", self.url),
                    "give https://<vcenter host>",
                )
            })?;
        let (status, body) = self.send(req, "POST /api/session").await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(Failure::new(
                format!("vCenter at {} refused the login of {}", self.url, self.user),
                "check --vcenter-user and the password (SUPSVC_VCENTER_PASSWORD, --vcenter-password-stdin or the prompt); nothing was changed",
            ));
        }
        if !status.is_success() {
            return Err(http_failure(
                "POST /api/session",
                &self.url,
                status.as_u16(),
                &body,
            ));
        }
        let token: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let token = token
            .as_str()
            .or_else(|| token["value"].as_str())
            .ok_or_else(|| {
                Failure::new(
                    format!(
                        "vCenter at {} answered the login without a session id",
                        self.url
                    ),
                    "check that --vcenter names a vCenter Server",
                )
            })?;
        *self.token.lock().expect("token lock") = Some(token.to_owned());
        Ok(())
    }

    /// Ends the session (best effort).
    pub async fn logout(&self) {
        let _ = self.call(Method::DELETE, "/api/session", None).await;
    }

    async fn send(&self, req: Request<Full<Bytes>>, doing: &str) -> Result<(StatusCode, Bytes)> {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| {
                Failure::new(
                    format!(
                        "{doing}: vCenter at {} did not answer within {REQUEST_TIMEOUT:?}",
                        self.url
                    ),
                    "check the vCenter address and the network; nothing was changed",
                )
                .with_exit(Exit::Timeout)
            })?
            .map_err(|e| connection_failure(&e, &self.url))?;
        let status = answer.status();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                Failure::new(
                    format!("{doing}: reading vCenter's answer: {e}"),
                    "run again",
                )
            })?
            .to_bytes();
        Ok((status, body))
    }

    /// One call with the session; a 401 logs in again once and repeats it. Returns the status and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let doing = format!("{method} {path}");
        for attempt in 0..2 {
            let token = self.token.lock().expect("token lock").clone();
            let mut req = Request::builder()
                .method(method.clone())
                .uri(format!("{}{path}", self.url))
                .header("user-agent", USER_AGENT_VALUE);
            if let Some(t) = token {
                req = req.header(SESSION_HEADER, t);
            }
            let payload = match body {
                Some(b) => {
                    req = req.header("content-type", "application/json");
                    Full::new(Bytes::from(b.to_string()))
                }
                None => Full::new(Bytes::new()),
            };
            let req = req
                .body(payload)
                .map_err(|e| Failure::new(format!("{doing}: {e}"), ""))?;
            let (status, bytes) = self.send(req, &doing).await?;
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.login().await?;
                continue;
            }
            return Ok((status, bytes));
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// A call that must succeed; its error explained.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Bytes> {
        self.try_request(method.clone(), path, body)
            .await?
            .map_err(|e| http_failure_parsed(&format!("{method} {path}"), &self.url, &e))
    }

    /// A call whose HTTP error the caller handles.
    pub async fn try_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<std::result::Result<Bytes, HttpError>> {
        let (status, bytes) = self.call(method, path, body).await?;
        if status.is_success() {
            return Ok(Ok(bytes));
        }
        let error: VapiError = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(Err(HttpError {
            status: status.as_u16(),
            error,
        }))
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let bytes = self.request(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::new(
                format!("GET {path}: vCenter's answer is not what the API documents: {e}"),
                "report it with the vCenter version",
            )
        })
    }

    /// The install routes of the Supervisor the kubeconfig points at (`server`), or the ones named.
    pub async fn target(&self, args: &VcenterOptions, server: &str) -> Result<Target> {
        let flavour = self.caps.flavour;
        let host = core_vc::url_host(server);
        let id = match flavour {
            Flavour::Cluster => match &args.vcenter_cluster {
                Some(c) => c.clone(),
                None => {
                    let clusters: Vec<Value> = self
                        .get(&format!("{}/clusters", core_vc::NAMESPACE_MANAGEMENT))
                        .await?;
                    let mut candidates = Vec::new();
                    for c in clusters {
                        let Some(id) = c["cluster"].as_str() else {
                            continue;
                        };
                        let info: Value = self
                            .get(&format!(
                                "{}/clusters/{}",
                                core_vc::NAMESPACE_MANAGEMENT,
                                core_vc::segment(id)
                            ))
                            .await?;
                        let mut endpoints: Vec<String> = info["api_servers"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e.as_str().map(String::from))
                            .collect();
                        endpoints.extend(
                            info["api_server_cluster_endpoint"]
                                .as_str()
                                .map(String::from),
                        );
                        candidates.push((id.to_owned(), endpoints));
                    }
                    core_vc::choose_target(host, &candidates).map_err(|why| {
                        Failure::new(
                            format!("{why} (vCenter {})", self.url),
                            "name the Supervisor's vSphere cluster with --vcenter-cluster domain-cN",
                        )
                    })?
                }
            },
            Flavour::Supervisor => match &args.vcenter_supervisor {
                Some(s) => s.clone(),
                None => {
                    let summaries: Value = self
                        .get(&format!(
                            "{}/supervisors/summaries",
                            core_vc::NAMESPACE_MANAGEMENT
                        ))
                        .await?;
                    let candidates: Vec<(String, Vec<String>)> = summaries["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| {
                            Some((
                                i["supervisor"].as_str()?.to_owned(),
                                i["info"]["APIEndpoint"]
                                    .as_str()
                                    .map(|e| vec![e.to_owned()])
                                    .unwrap_or_default(),
                            ))
                        })
                        .collect();
                    core_vc::choose_target(host, &candidates).map_err(|why| {
                        Failure::new(
                            format!("{why} (vCenter {})", self.url),
                            "name the Supervisor with --vcenter-supervisor ID",
                        )
                    })?
                }
            },
        };
        Ok(Target { flavour, id })
    }

    /// The install record of `service` on `target`; `None` when vCenter says it is not installed there.
    pub async fn record(&self, target: &Target, service: &str) -> Result<Option<InstallRecord>> {
        let path = target.service_path(service);
        match self.try_request(Method::GET, &path, None).await? {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Failure::new(
                    format!(
                        "GET {path}: vCenter's install record is not what the API documents: {e}"
                    ),
                    "report it with the vCenter version",
                )
            }),
            Err(e) if e.status == 404 => Ok(None),
            Err(e) => Err(http_failure_parsed(&format!("GET {path}"), &self.url, &e)),
        }
    }
}

/// A non-2xx answer explained.
pub fn http_failure_parsed(doing: &str, url: &str, e: &HttpError) -> Failure {
    Failure::new(
        format!(
            "{doing}: vCenter at {url} answered {} {}: {}",
            e.status,
            e.error.error_type,
            e.error.text()
        ),
        core_vc::explain(e.status, &e.error),
    )
}

fn http_failure(doing: &str, url: &str, status: u16, body: &[u8]) -> Failure {
    let error: VapiError = serde_json::from_slice(body).unwrap_or_default();
    http_failure_parsed(doing, url, &HttpError { status, error })
}

fn connection_failure(e: &hyper_util::client::legacy::Error, url: &str) -> Failure {
    let text = chain(e);
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate")
        || lower.contains("invalid peer")
        || lower.contains("unknownissuer")
    {
        Failure::new(
            format!("the certificate of vCenter at {url} does not verify: {text}"),
            "give vCenter's CA with --vcenter-ca-file (PEM, from https://<vcenter>/certs/download.zip); only if you accept the risk, --vcenter-insecure; nothing was changed",
        )
    } else {
        Failure::new(
            format!("cannot reach vCenter at {url}: {text}"),
            "check --vcenter (https://<vcenter host>), the network and that vCenter is up; nothing was changed",
        )
    }
}
