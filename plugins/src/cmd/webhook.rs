//! `kubectl supsvc webhook install|status|uninstall|package`: `supsvc-webhook` on a Supervisor.
//!
//! `install` server-side applies (field manager `kubectl-supsvc`) the shipped manifests of
//! `webhook/deploy/`: the namespace, a CA and serving certificate (its own, made with rcgen and rotated
//! when fewer than 30 days are left, or cert-manager's when its CRDs are installed), the TLS Secret, the
//! policies' ConfigMap, the Deployment, Service and PodDisruptionBudget, and last the
//! ValidatingWebhookConfiguration with its `caBundle`. The configuration is first written with
//! `failurePolicy: Ignore`; it is switched to `Fail` only once the webhook answers (the Deployment is
//! available, or in URL mode the URL answers an AdmissionReview over TLS with that CA), so admission is
//! never refused because of a webhook that is not there yet. `uninstall` deletes the
//! ValidatingWebhookConfiguration first, then the rest. The decisions are [`plan`]'s (pure, tested);
//! this module reads, writes and waits.
//!
//! URL mode (`--url https://host:port`): the webhook runs outside the cluster (a VM, or the operator's
//! machine while trying it); the configuration names the URL (`clientConfig.url`) and no Deployment,
//! Service or PodDisruptionBudget is installed. The serving certificate names the URL's host too; the
//! webhook outside reads it from the Secret `supsvc-webhook-tls`.

pub mod bundle;
pub mod cert;
pub mod package;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::api::retrying;
use crate::cli::{DryRun, parse_duration};
use crate::cluster::Cluster;
use crate::error::{Failure, Result};
use plan::{
    CA_SECRET, CertAction, Certificates, Endpoint, FIELD_MANAGER, FailurePolicy, InstallSpec,
    Installed, MANAGED_BY, NAME, TLS_SECRET,
};

/// `kubectl supsvc webhook ...`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Install or update supsvc-webhook: certificates, workload, then the webhook configuration, enforcing once it answers.
    Install(InstallArgs),
    /// What of supsvc-webhook is installed, its certificate's expiry, failurePolicy, and whether it answers.
    Status(StatusArgs),
    /// Remove supsvc-webhook: the webhook configuration first, then everything else.
    Uninstall(UninstallArgs),
    /// Write the Carvel Package and PackageMetadata that register supsvc-webhook as a Supervisor Service in vCenter.
    Package(package::PackageArgs),
    /// Write (and with --push, push) the imgpkg bundle the Supervisor Service's Package fetches: ytt templates and an ImagesLock.
    Bundle(bundle::BundleArgs),
}

/// Whether to use cert-manager for the certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CertManager {
    /// When its CRDs (certificates.cert-manager.io) are installed.
    #[default]
    Auto,
    Always,
    Never,
}

/// The final `failurePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Enforce {
    /// Refuse what matches when the webhook cannot be called (once it has answered).
    #[default]
    Fail,
    /// Let requests through when the webhook cannot be called.
    Ignore,
}

#[derive(Debug, Args)]
pub struct Placement {
    /// The namespace the webhook runs in.
    #[arg(long, default_value = plan::DEFAULT_NAMESPACE, value_name = "NS")]
    pub webhook_namespace: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
  kubectl supsvc webhook install --dry-run\n  \
  kubectl supsvc webhook install --image my-registry.example.com/supsvc/supsvc-webhook:0.1.0\n  \
  kubectl supsvc webhook install --url https://10.0.0.5:8443     # the webhook runs outside the cluster")]
pub struct InstallArgs {
    #[command(flatten)]
    pub placement: Placement,
    /// The webhook's image (a private registry's in an air-gapped Supervisor).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas: u32,
    /// URL mode: the webhook runs outside the cluster at this https:// base URL (no Deployment, Service or PodDisruptionBudget).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Use cert-manager (Issuer + Certificate, `cert-manager.io/inject-ca-from`) for the certificates.
    #[arg(long, value_enum, default_value_t)]
    pub cert_manager: CertManager,
    /// The failurePolicy once the webhook answers.
    #[arg(long, value_enum, default_value_t)]
    pub failure_policy: Enforce,
    /// How long to wait for the webhook to answer before enforcing, e.g. 2m, 30s.
    #[arg(long, default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,
    /// Issue a new serving certificate even if the current one is not due.
    #[arg(long)]
    pub rotate: bool,
    /// Take over fields another field manager owns (server-side apply's force).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Change nothing: print what would be applied (client) or have the server check every apply (server).
    #[arg(long, value_enum, default_value_t, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub placement: Placement,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub placement: Placement,
    /// Change nothing: print what would be deleted, in order.
    #[arg(long, value_enum, default_value_t, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
}

/// What `install` does, as decided from its flags.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub namespace: String,
    pub image: String,
    pub replicas: u32,
    pub endpoint: Endpoint,
    pub cert_manager: CertManager,
    pub failure_policy: FailurePolicy,
    pub wait: Duration,
    pub rotate: bool,
    pub force_conflicts: bool,
    pub dry_run: DryRun,
}

impl InstallOptions {
    /// # Errors
    /// A `--url` that is not `https://host[:port]` (usage, exit 2).
    pub fn from_args(args: &InstallArgs) -> Result<Self> {
        let endpoint = match &args.url {
            None => Endpoint::Service,
            Some(url) => {
                plan::url_host(url).map_err(|e| {
                    Failure::usage(
                        format!("--url {e}"),
                        "give the base URL the API server reaches the webhook at, e.g. https://10.0.0.5:8443",
                    )
                })?;
                Endpoint::Url(url.trim_end_matches('/').to_owned())
            }
        };
        Ok(InstallOptions {
            namespace: args.placement.webhook_namespace.clone(),
            image: args.image.clone().unwrap_or_else(plan::default_image),
            replicas: args.replicas,
            endpoint,
            cert_manager: args.cert_manager,
            failure_policy: match args.failure_policy {
                Enforce::Fail => FailurePolicy::Fail,
                Enforce::Ignore => FailurePolicy::Ignore,
            },
            wait: args.wait,
            rotate: args.rotate,
            force_conflicts: args.force_conflicts,
            dry_run: args.dry_run,
        })
    }
}

/// Runs `kubectl supsvc webhook ...`; `connect` is called for the subcommands that need a cluster.
///
/// # Errors
/// Every failure explained as `error:` and `hint:`.
pub async fn run<F, Fut>(args: &WebhookArgs, connect: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Cluster>>,
{
    match &args.command {
        WebhookCommand::Package(args) => package::run(args, connect).await,
        WebhookCommand::Bundle(args) => bundle::run(args).await,
        WebhookCommand::Install(args) => {
            let options = InstallOptions::from_args(args)?;
            install(&connect().await?, &options).await
        }
        WebhookCommand::Status(args) => {
            status(&connect().await?, &args.placement.webhook_namespace).await
        }
        WebhookCommand::Uninstall(args) => {
            uninstall(
                &connect().await?,
                &args.placement.webhook_namespace,
                args.dry_run,
            )
            .await
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The API resource of a kind the installation uses, and whether it is namespaced.
fn resource(api_version: &str, kind: &str) -> (ApiResource, bool) {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "Secret" => ("secrets", true),
        "ConfigMap" => ("configmaps", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "Deployment" => ("deployments", true),
        "Service" => ("services", true),
        "PodDisruptionBudget" => ("poddisruptionbudgets", true),
        "ValidatingWebhookConfiguration" => ("validatingwebhookconfigurations", false),
        "Issuer" => ("issuers", true),
        "Certificate" => ("certificates", true),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        _ => ("", true),
    };
    (
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
    )
}

fn api_for(cluster: &Cluster, installed: &Installed) -> Api<DynamicObject> {
    let (resource, namespaced) = resource(&installed.api_version, &installed.kind);
    match (&installed.namespace, namespaced) {
        (Some(ns), true) => Api::namespaced_with(cluster.client.clone(), ns, &resource),
        _ => Api::all_with(cluster.client.clone(), &resource),
    }
}

async fn get(cluster: &Cluster, installed: &Installed) -> Result<Option<Value>> {
    let api = api_for(cluster, installed);
    match retrying(None, || api.get_opt(&installed.name)).await {
        Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
        // A kind the server does not serve (cert-manager's without cert-manager): nothing installed.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Failure::from_kube(
            &e,
            &format!("get {}", installed.describe()),
            &cluster.server,
        )),
    }
}

fn installed(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Installed {
    Installed {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(str::to_owned),
        name: name.into(),
    }
}

fn vwc_ref() -> Installed {
    installed(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        None,
        NAME,
    )
}

/// A Secret's `tls.crt` and `tls.key` as PEM.
fn pair_of(secret: Option<&Value>) -> Option<cert::Pair> {
    use base64::Engine;
    let secret = secret?;
    let field = |k: &str| {
        let b64 = secret["data"][k].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        String::from_utf8(bytes).ok()
    };
    Some(cert::Pair {
        cert: field("tls.crt")?,
        key: field("tls.key")?,
    })
}

async fn cert_manager_present(cluster: &Cluster) -> Result<bool> {
    let crd = installed(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "certificates.cert-manager.io",
    );
    Ok(get(cluster, &crd).await?.is_some())
}

/// The live configuration's `failurePolicy` (the weakest of its webhooks), if installed.
fn live_policy(vwc: Option<&Value>) -> Option<FailurePolicy> {
    let webhooks = vwc?["webhooks"].as_array()?;
    webhooks
        .iter()
        .map(|w| FailurePolicy::parse(w["failurePolicy"].as_str()).unwrap_or(FailurePolicy::Ignore))
        .min()
}

async fn install(cluster: &Cluster, options: &InstallOptions) -> Result<()> {
    let ns = options.namespace.as_str();
    let now = now();
    let use_cert_manager = match options.cert_manager {
        CertManager::Never => false,
        CertManager::Always => true,
        CertManager::Auto => cert_manager_present(cluster).await?,
    };
    let certificates = if use_cert_manager {
        outln!(
            "certificates: cert-manager's (Issuer + Certificate; its cainjector fills caBundle)"
        );
        Certificates::CertManager
    } else {
        own_certificates(cluster, options, now).await?
    };
    let live_vwc = get(cluster, &vwc_ref()).await?;
    let live = live_policy(live_vwc.as_ref());
    let answers_now = match (&certificates, live_vwc.as_ref()) {
        (Certificates::Own { ca_bundle, .. }, Some(_)) => {
            answers(cluster, ns, &options.endpoint, ca_bundle)
                .await
                .is_ok()
        }
        _ => false,
    };
    let first = plan::first_failure_policy(options.failure_policy, live, answers_now);
    let mut spec = InstallSpec {
        namespace: ns.to_owned(),
        image: options.image.clone(),
        replicas: options.replicas,
        endpoint: options.endpoint.clone(),
        certificates: certificates.clone(),
        failure_policy: first,
    };
    let objects = plan::objects(&spec);
    if options.dry_run == DryRun::Client {
        outln!(
            "# dry run: nothing is changed. These objects would be server-side applied (field manager {FIELD_MANAGER}), in this order;"
        );
        outln!(
            "# the ValidatingWebhookConfiguration with failurePolicy {}, then {} once the webhook answers.",
            first.as_str(),
            options.failure_policy.as_str()
        );
        for object in &objects {
            outln!(
                "---\n{}",
                crate::cmd::objects::yaml(&redacted(object)).trim_end()
            );
        }
        return Ok(());
    }
    let dry = options.dry_run == DryRun::Server;
    // A server dry run stores nothing, so objects in a namespace that does not exist yet cannot be
    // checked (the API server answers 404 for the namespace, as to `kubectl apply --dry-run=server`).
    let namespace_missing = dry
        && get(cluster, &installed("v1", "Namespace", None, ns))
            .await?
            .is_none();
    let mut unchecked = Vec::new();
    for object in &objects {
        let target = Installed::of(object);
        if namespace_missing && target.namespace.is_some() {
            unchecked.push(target.describe());
            continue;
        }
        apply(cluster, object, options, dry).await?;
    }
    if dry {
        outln!(
            "dry run (server): {} applies accepted by the server; nothing was changed",
            objects.len() - unchecked.len()
        );
        if !unchecked.is_empty() {
            outln!(
                "not checked, as namespace {ns} does not exist yet (a dry run does not create it): {}",
                unchecked.join(", ")
            );
        }
        return Ok(());
    }
    let Certificates::Own { ca_bundle, .. } = &certificates else {
        // cert-manager fills caBundle; the webhook answers once its Deployment is available.
        return enforce_when_answering(cluster, &mut spec, options, "").await;
    };
    let bundle = ca_bundle.clone();
    enforce_when_answering(cluster, &mut spec, options, &bundle).await
}

async fn enforce_when_answering(
    cluster: &Cluster,
    spec: &mut InstallSpec,
    options: &InstallOptions,
    ca_bundle: &str,
) -> Result<()> {
    let ns = spec.namespace.clone();
    if spec.failure_policy == options.failure_policy {
        outln!(
            "ValidatingWebhookConfiguration/{NAME}: failurePolicy {} (kept)",
            spec.failure_policy.as_str()
        );
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + options.wait;
    let mut last = String::new();
    let answered = loop {
        match answers(cluster, &ns, &spec.endpoint, ca_bundle).await {
            Ok(how) => {
                outln!("the webhook answers: {how}");
                break true;
            }
            Err(why) => last = why,
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let policy = plan::final_failure_policy(options.failure_policy, answered);
    if policy != spec.failure_policy {
        spec.failure_policy = policy;
        let objects = plan::objects(spec);
        if let Some(vwc) = objects.last() {
            apply(cluster, vwc, options, false).await?;
        }
    }
    if answered || options.failure_policy == FailurePolicy::Ignore {
        outln!(
            "ValidatingWebhookConfiguration/{NAME}: failurePolicy {}",
            policy.as_str()
        );
        return Ok(());
    }
    Err(Failure::new(
        format!(
            "the webhook did not answer within {}s ({last}): the ValidatingWebhookConfiguration stays at \
             failurePolicy Ignore, so the policies do not enforce while the webhook is down",
            options.wait.as_secs()
        ),
        match &spec.endpoint {
            Endpoint::Url(url) => format!(
                "start the webhook at {url} with the certificate of Secret {TLS_SECRET} -n {ns}, then run \
                 `kubectl supsvc webhook install --url {url}` again to enforce (--wait to wait longer)"
            ),
            Endpoint::Service => format!(
                "check the pods: `kubectl -n {ns} describe deployment {NAME}` (image pull, probes), then run \
                 `kubectl supsvc webhook install` again to enforce (--wait to wait longer)"
            ),
        },
    ))
}

/// The object with Secret contents replaced, for printing.
fn redacted(object: &Value) -> Value {
    let mut o = object.clone();
    if o["kind"] == "Secret"
        && let Some(data) = o["data"].as_object_mut()
    {
        for (k, v) in data.iter_mut() {
            if k.ends_with(".key") {
                *v = json!("<redacted>");
            }
        }
    }
    o
}

async fn apply(
    cluster: &Cluster,
    object: &Value,
    options: &InstallOptions,
    dry: bool,
) -> Result<()> {
    let target = Installed::of(object);
    let api = api_for(cluster, &target);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = options.force_conflicts;
    params.dry_run = dry;
    let patch = Patch::Apply(object);
    match retrying(None, || api.patch(&target.name, &params, &patch)).await {
        Ok(_) => {
            if !dry {
                outln!("{} applied", target.describe());
            }
            Ok(())
        }
        Err(e) => {
            let mut failure =
                Failure::from_kube(&e, &format!("apply {}", target.describe()), &cluster.server);
            if matches!(&e, kube::Error::Api(s) if s.code == 409) {
                failure.hint = "another field manager owns fields supsvc sets (the message names them); leave \
                                them to it, or take them over with `kubectl supsvc webhook install --force-conflicts`"
                    .into();
            }
            if matches!(&e, kube::Error::Api(s) if s.code == 404)
                && (target.kind == "Issuer" || target.kind == "Certificate")
            {
                failure.hint = "cert-manager's kinds are not served: install cert-manager, or use \
                                --cert-manager never"
                    .into();
            }
            Err(failure)
        }
    }
}

/// supsvc's own certificates: kept, the serving one reissued, or a new CA, as [`plan::cert_action`]
/// decides from the live Secrets.
async fn own_certificates(
    cluster: &Cluster,
    options: &InstallOptions,
    now: i64,
) -> Result<Certificates> {
    let ns = options.namespace.as_str();
    let secret = |name: &str| installed("v1", "Secret", Some(ns), name);
    let ca_secret = get(cluster, &secret(CA_SECRET)).await?;
    let tls_secret = get(cluster, &secret(TLS_SECRET)).await?;
    let ca = pair_of(ca_secret.as_ref());
    let serving = pair_of(tls_secret.as_ref());
    let facts = cert::facts(ca.as_ref(), serving.as_ref());
    let hosts = plan::certificate_hosts(ns, &options.endpoint);
    let action = plan::cert_action(&facts, &hosts, now, options.rotate);
    let failed = |e: String| {
        Failure::new(
            format!("cannot make the webhook's certificate: {e}"),
            "report this as a bug",
        )
    };
    let (ca, serving, bundle) = match action {
        CertAction::Keep => {
            let (Some(ca), Some(serving)) = (ca, serving) else {
                return Err(failed("the certificates vanished while read".into()));
            };
            outln!(
                "certificate: kept, {} days left (rotated under {})",
                facts
                    .serving_not_after
                    .map_or(0, |t| plan::days_left(t, now)),
                plan::ROTATE_BEFORE_DAYS
            );
            let bundle = bundle_with_previous(&ca.cert, tls_secret.as_ref());
            (ca, serving, bundle)
        }
        CertAction::IssueServing(why) => {
            let Some(ca) = ca else {
                return Err(failed("the CA vanished while read".into()));
            };
            outln!("certificate: a new serving certificate ({why})");
            let serving = cert::issue_serving(&ca, &hosts, now).map_err(failed)?;
            let bundle = bundle_with_previous(&ca.cert, tls_secret.as_ref());
            (ca, serving, bundle)
        }
        CertAction::NewCa(why) => {
            outln!("certificate: a new CA and serving certificate ({why})");
            let new_ca = cert::new_ca(now).map_err(failed)?;
            let serving = cert::issue_serving(&new_ca, &hosts, now).map_err(failed)?;
            // The previous CA stays trusted while valid: pods still serving its certificate answer.
            let mut bundle = new_ca.cert.clone();
            if let Some(old) = ca
                && cert::read(&old.cert).is_some_and(|(t, _)| t > now)
            {
                bundle.push_str(&old.cert);
            }
            (new_ca, serving, bundle)
        }
    };
    Ok(Certificates::Own {
        ca_bundle: bundle,
        ca_cert: ca.cert,
        ca_key: ca.key,
        serving_cert: serving.cert,
        serving_key: serving.key,
    })
}

/// The CA, and a previous CA the live configuration still trusts (during a CA rotation, until it
/// expires): read from the live TLS Secret's `ca.crt` when it differs.
fn bundle_with_previous(ca: &str, tls_secret: Option<&Value>) -> String {
    use base64::Engine;
    let mut bundle = ca.to_owned();
    let previous = tls_secret
        .and_then(|s| s["data"]["ca.crt"].as_str())
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some(previous) = previous
        && previous.trim() != ca.trim()
        && cert::read(&previous).is_some_and(|(t, _)| t > now())
    {
        bundle.push_str(&previous);
    }
    bundle
}

/// Whether the webhook answers: in URL mode an AdmissionReview POSTed to each webhook's URL over TLS
/// verified with the `caBundle`; in the cluster, the Deployment available at its generation.
/// `Ok` says how it answered; `Err` why not.
async fn answers(
    cluster: &Cluster,
    namespace: &str,
    endpoint: &Endpoint,
    ca_bundle: &str,
) -> std::result::Result<String, String> {
    match endpoint {
        Endpoint::Url(_) => {
            let vwc = get(cluster, &vwc_ref())
                .await
                .map_err(|f| f.what)?
                .ok_or("no ValidatingWebhookConfiguration")?;
            let urls: Vec<String> = vwc["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w["clientConfig"]["url"].as_str().map(str::to_owned))
                .collect();
            if urls.is_empty() {
                return Err("the configuration names no URL".into());
            }
            for url in &urls {
                review(url, ca_bundle)
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
            }
            Ok(format!(
                "AdmissionReview answered over TLS at {}",
                urls.join(", ")
            ))
        }
        Endpoint::Service => {
            let deployment = installed("apps/v1", "Deployment", Some(namespace), NAME);
            let d = get(cluster, &deployment)
                .await
                .map_err(|f| f.what)?
                .ok_or("no Deployment")?;
            let available = d["status"]["availableReplicas"].as_i64().unwrap_or(0);
            let current = d["status"]["observedGeneration"] == d["metadata"]["generation"];
            if available >= 1 && current {
                Ok(format!(
                    "Deployment/{NAME} has {available} available replicas"
                ))
            } else {
                Err(format!(
                    "Deployment/{NAME} has {available} available replicas{}",
                    if current {
                        ""
                    } else {
                        " (rollout in progress)"
                    }
                ))
            }
        }
    }
}

/// POSTs an AdmissionReview (v1) for a harmless request to `url` and checks the answer is an
/// AdmissionReview for it (allowed or not: it answered).
async fn review(url: &str, ca_bundle: &str) -> std::result::Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_bundle.as_bytes()) {
        let cert = cert.map_err(|e| format!("caBundle: {e}"))?;
        roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build(https);
    let uid = format!("supsvc-probe-{}", now());
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "supsvc-webhook-probe",
            "namespace": "supsvc-webhook",
            "operation": "CREATE",
            "userInfo": {"username": "kubectl-supsvc"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "supsvc-webhook-probe", "namespace": "supsvc-webhook"}},
            "dryRun": true,
        },
    });
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .map_err(|_| "no answer within 5s".to_owned())?
        .map_err(|e| crate::error::chain(&e))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|_| format!("HTTP {status}, not an AdmissionReview"))?;
    if answer["kind"] == "AdmissionReview" && answer["response"]["uid"] == uid.as_str() {
        Ok(())
    } else {
        Err(format!(
            "HTTP {status}, not an AdmissionReview for the request sent"
        ))
    }
}

async fn status(cluster: &Cluster, ns: &str) -> Result<()> {
    let now = now();
    let mut problems = Vec::new();
    let vwc = get(cluster, &vwc_ref()).await?;
    outln!("supsvc-webhook (namespace {ns})");
    let mut present = 0;
    for object in plan::deletion_order(ns).iter().rev() {
        if let Some(live) = get(cluster, object).await? {
            present += 1;
            let manager = managers(&live);
            outln!(
                "  {:<55} installed (managed by {manager})",
                object.describe()
            );
        }
    }
    let Some(vwc) = vwc else {
        outln!("  ValidatingWebhookConfiguration/{NAME}: not installed");
        return Err(Failure::new(
            format!("supsvc-webhook is not installed ({present} of its objects found)"),
            "install it with `kubectl supsvc webhook install` (--dry-run shows what it applies)",
        ));
    };
    let webhooks = vwc["webhooks"].as_array().cloned().unwrap_or_default();
    let url = webhooks
        .first()
        .and_then(|w| w["clientConfig"]["url"].as_str())
        .map(|u| {
            let base = u.rsplit_once("/validate/").map_or(u, |(b, _)| b);
            base.to_owned()
        });
    let endpoint = match &url {
        Some(u) => {
            outln!("mode: URL ({u})");
            Endpoint::Url(u.clone())
        }
        None => {
            outln!("mode: in-cluster (Service {NAME}.{ns}.svc:443)");
            Endpoint::Service
        }
    };
    for w in &webhooks {
        outln!(
            "webhook {}: failurePolicy {}",
            w["name"].as_str().unwrap_or("?"),
            w["failurePolicy"].as_str().unwrap_or("Fail")
        );
    }
    if live_policy(Some(&vwc)) != Some(FailurePolicy::Fail) {
        problems
            .push("a webhook is at failurePolicy Ignore: not enforced while it is down".to_owned());
    }
    // The certificate: the TLS Secret's (written by supsvc or cert-manager).
    let tls = get(cluster, &installed("v1", "Secret", Some(ns), TLS_SECRET)).await?;
    let ca_bundle = match pair_of(tls.as_ref()).and_then(|p| cert::read(&p.cert)) {
        Some((not_after, hosts)) => {
            let days = plan::days_left(not_after, now);
            let when = jiff::Timestamp::from_second(not_after)
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            outln!(
                "certificate: expires {when} ({days} days left), names {}",
                hosts.join(", ")
            );
            if days < plan::ROTATE_BEFORE_DAYS {
                problems.push(format!(
                    "the serving certificate expires in {days} days: rotate it with `kubectl supsvc webhook install`"
                ));
            }
            webhooks
                .first()
                .and_then(|w| w["clientConfig"]["caBundle"].as_str())
                .and_then(|b| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(b).ok()
                })
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        }
        None => {
            problems.push(format!(
                "no serving certificate in Secret {TLS_SECRET} -n {ns}"
            ));
            String::new()
        }
    };
    match answers(cluster, ns, &endpoint, &ca_bundle).await {
        Ok(how) => outln!("answers: yes ({how})"),
        Err(why) => {
            outln!("answers: no ({why})");
            problems.push("the webhook does not answer".to_owned());
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        problems.join("; "),
        "run `kubectl supsvc webhook install` (with the same --url in URL mode): it rotates what is due and \
         enforces once the webhook answers",
    ))
}

/// The field managers of an object (`metadata.managedFields`), comma-separated.
fn managers(object: &Value) -> String {
    let mut names: Vec<&str> = object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    names.dedup();
    if names.is_empty() {
        "unknown".into()
    } else {
        names.join(", ")
    }
}

async fn uninstall(cluster: &Cluster, ns: &str, dry_run: DryRun) -> Result<()> {
    let mut found = Vec::new();
    for object in plan::deletion_order(ns) {
        if let Some(live) = get(cluster, &object).await? {
            found.push((object, live));
        }
    }
    if found.is_empty() {
        outln!("supsvc-webhook is not installed in {ns}: nothing to delete");
        return Ok(());
    }
    let mut left = Vec::new();
    for (object, live) in &found {
        let ours = live["metadata"]["labels"][MANAGED_BY.0] == MANAGED_BY.1;
        // Secrets cert-manager wrote carry its labels, not ours: they go with the rest.
        let cert_manager_secret = object.kind == "Secret"
            && live["metadata"]["annotations"]
                .get("cert-manager.io/certificate-name")
                .is_some();
        if !ours && !cert_manager_secret {
            left.push(object.describe());
            continue;
        }
        if dry_run == DryRun::Client {
            outln!("would delete {}", object.describe());
            continue;
        }
        let api = api_for(cluster, object);
        let params = DeleteParams {
            dry_run: dry_run == DryRun::Server,
            ..DeleteParams::default()
        };
        match retrying(None, || api.delete(&object.name, &params)).await {
            Ok(_) => outln!("{} deleted", object.describe()),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(Failure::from_kube(
                    &e,
                    &format!("delete {}", object.describe()),
                    &cluster.server,
                ));
            }
        }
    }
    for object in &left {
        outln!(
            "{object} left: it was not installed by kubectl supsvc (no {}={} label)",
            MANAGED_BY.0,
            MANAGED_BY.1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own checks of the whole command line (unique names, e.g. no `version` argument beside
    /// the propagated `--version`), which it otherwise runs only when a subcommand is parsed.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn the_weakest_webhook_is_the_configurations_policy() {
        let vwc = json!({"webhooks": [{"failurePolicy": "Fail"}, {"failurePolicy": "Ignore"}]});
        assert_eq!(live_policy(Some(&vwc)), Some(FailurePolicy::Ignore));
        let vwc = json!({"webhooks": [{"failurePolicy": "Fail"}, {}]});
        assert_eq!(live_policy(Some(&vwc)), Some(FailurePolicy::Fail));
        assert_eq!(live_policy(None), None);
    }

    #[test]
    fn printed_secrets_hide_their_keys() {
        let secret =
            json!({"kind": "Secret", "data": {"tls.crt": "C", "tls.key": "K", "ca.crt": "A"}});
        let shown = redacted(&secret);
        assert_eq!(shown["data"]["tls.key"], "<redacted>");
        assert_eq!(shown["data"]["tls.crt"], "C");
    }

    #[test]
    fn a_url_that_is_not_https_is_a_usage_error() {
        let args = InstallArgs {
            placement: Placement {
                webhook_namespace: "supsvc-webhook".into(),
            },
            image: None,
            replicas: 2,
            url: Some("http://10.0.0.5:8443".into()),
            cert_manager: CertManager::Auto,
            failure_policy: Enforce::Fail,
            wait: Duration::from_secs(1),
            rotate: false,
            force_conflicts: false,
            dry_run: DryRun::None,
        };
        let failure = InstallOptions::from_args(&args).unwrap_err();
        assert_eq!(failure.exit, crate::error::Exit::Usage);
        assert!(
            failure
                .to_string()
                .contains("error: --url http://10.0.0.5:8443 is not an https:// URL")
        );
        assert!(failure.to_string().contains("hint: give the base URL"));
    }
}
