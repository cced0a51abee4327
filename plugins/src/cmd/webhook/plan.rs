//! What `kubectl supsvc webhook install|status|uninstall` decide, without I/O: which objects make up
//! an installation of `supsvc-webhook`, in which order they are applied and deleted, whether the
//! serving certificate is due for rotation, and which `failurePolicy` is safe to write.
//!
//! The objects are the shipped manifests of `webhook/deploy/` (compiled in, so the plugin installs
//! exactly what the repository ships) with the install's choices written into them.

use serde_json::{Value, json};

/// The namespace the webhook is installed in unless `--webhook-namespace` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "supsvc-webhook";
/// Name of the Deployment, Service, PodDisruptionBudget, ServiceAccount and
/// ValidatingWebhookConfiguration (as in `webhook/deploy/`).
pub const NAME: &str = "supsvc-webhook";
/// The serving certificate's Secret (`kubernetes.io/tls`: `tls.crt`, `tls.key`, `ca.crt`), mounted at
/// `/tls` by the Deployment.
pub const TLS_SECRET: &str = "supsvc-webhook-tls";
/// The CA's Secret (`kubernetes.io/tls`): its key signs the serving certificate; never mounted.
pub const CA_SECRET: &str = "supsvc-webhook-ca";
/// The field manager of every server-side apply (visible in `metadata.managedFields`).
pub const FIELD_MANAGER: &str = "kubectl-supsvc";
/// The label every installed object carries; uninstall deletes only objects that carry it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-supsvc");
/// A certificate with fewer days than this left is replaced (cert-manager's default `renewBefore` is
/// a third of the duration; 30 days is what kubeadm warns at, `kubeadm certs check-expiration`).
pub const ROTATE_BEFORE_DAYS: i64 = 30;
/// Validity of a serving certificate supsvc issues, in days.
pub const SERVING_DAYS: i64 = 365;
/// Validity of the CA supsvc creates, in days (10 years, as kubeadm's CA).
pub const CA_DAYS: i64 = 3650;
/// The annotation cert-manager's cainjector reads to fill `caBundle` from a Certificate
/// (<https://cert-manager.io/docs/concepts/ca-injector/>).
pub const INJECT_CA_FROM: &str = "cert-manager.io/inject-ca-from";

const NAMESPACE_YAML: &str = include_str!("../../../../webhook/deploy/namespace.yaml");
const CONFIGMAP_YAML: &str = include_str!("../../../../webhook/deploy/configmap.yaml");
const DEPLOYMENT_YAML: &str = include_str!("../../../../webhook/deploy/deployment.yaml");
const VWC_YAML: &str =
    include_str!("../../../../webhook/deploy/validatingwebhookconfiguration.yaml");

/// The image of the shipped Deployment (`webhook/deploy/deployment.yaml`).
pub fn default_image() -> String {
    shipped()
        .deployment
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or("ghcr.io/supsvc/supsvc-webhook:0.1.0")
        .to_owned()
}

/// The shipped manifests, parsed.
#[derive(Debug, Clone)]
pub struct Shipped {
    pub namespace: Value,
    pub configmap: Value,
    pub service_account: Value,
    pub deployment: Value,
    pub pdb: Value,
    pub service: Value,
    pub vwc: Value,
}

fn documents(yaml: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in yaml.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if !current.trim().is_empty() {
                // The shipped manifests are tested to parse (tests below).
                if let Ok(doc) = serde_saphyr::from_str::<Value>(&current) {
                    docs.push(doc);
                }
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// The shipped manifests of `webhook/deploy/`.
pub fn shipped() -> Shipped {
    let one = |yaml: &str| documents(yaml).into_iter().next().unwrap_or(Value::Null);
    let deploy = documents(DEPLOYMENT_YAML);
    let kind = |k: &str| {
        deploy
            .iter()
            .find(|d| d["kind"] == k)
            .cloned()
            .unwrap_or(Value::Null)
    };
    Shipped {
        namespace: one(NAMESPACE_YAML),
        configmap: one(CONFIGMAP_YAML),
        service_account: kind("ServiceAccount"),
        deployment: kind("Deployment"),
        pdb: kind("PodDisruptionBudget"),
        service: kind("Service"),
        vwc: one(VWC_YAML),
    }
}

/// Where the API server reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// In the cluster: the Service `supsvc-webhook` in the webhook's namespace, port 443 (the
    /// Deployment, Service and PodDisruptionBudget are installed).
    Service,
    /// Outside the cluster, at this base URL (`https://host:port`, the policy paths appended):
    /// `clientConfig.url`. The webhook runs elsewhere, so no Deployment, Service or
    /// PodDisruptionBudget is installed.
    Url(String),
}

/// How the serving certificate is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificates {
    /// supsvc's own CA; the PEM blocks of the `caBundle` (the current CA first, then a previous CA
    /// still valid during a CA rotation) and the Secrets' contents.
    Own {
        ca_bundle: String,
        ca_cert: String,
        ca_key: String,
        serving_cert: String,
        serving_key: String,
    },
    /// cert-manager's: a self-signed Issuer, a CA Certificate, a CA Issuer and the serving
    /// Certificate; its cainjector fills `caBundle`.
    CertManager,
}

/// Everything an installation is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    pub namespace: String,
    pub image: String,
    pub replicas: u32,
    pub endpoint: Endpoint,
    pub certificates: Certificates,
    /// The `failurePolicy` of every webhook of the configuration in this write.
    pub failure_policy: FailurePolicy,
}

/// A webhook's `failurePolicy` (admissionregistration.k8s.io/v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailurePolicy {
    /// The request goes through when the webhook cannot be called: nothing is enforced while the
    /// webhook is down (its denials, when it answers, still deny).
    Ignore,
    /// The request is refused when the webhook cannot be called.
    Fail,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        }
    }

    /// As the API writes it; a missing field is `Fail` (the v1 default).
    pub fn parse(text: Option<&str>) -> Option<FailurePolicy> {
        match text {
            Some("Ignore") => Some(FailurePolicy::Ignore),
            Some("Fail") | None => Some(FailurePolicy::Fail),
            Some(_) => None,
        }
    }
}

/// The DNS names the in-cluster Service answers to (what the API server dials:
/// `<service>.<namespace>.svc`).
pub fn service_hosts(namespace: &str) -> Vec<String> {
    vec![
        NAME.to_owned(),
        format!("{NAME}.{namespace}"),
        format!("{NAME}.{namespace}.svc"),
        format!("{NAME}.{namespace}.svc.cluster.local"),
    ]
}

/// The host of an `https://host[:port][/path]` URL (brackets of an IPv6 literal removed).
///
/// # Errors
/// Not an `https://` URL with a host (the API server calls webhooks over HTTPS only).
pub fn url_host(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url} is not an https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{url}: a webhook URL may not hold user info"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(format!("{url} has no host"));
    }
    Ok(host.to_owned())
}

/// The hosts the serving certificate must name: the Service's names, and the URL's host in URL mode.
pub fn certificate_hosts(namespace: &str, endpoint: &Endpoint) -> Vec<String> {
    let mut hosts = service_hosts(namespace);
    if let Endpoint::Url(url) = endpoint
        && let Ok(host) = url_host(url)
        && !hosts.contains(&host)
    {
        hosts.push(host);
    }
    hosts
}

fn labelled(mut object: Value, namespace: Option<&str>) -> Value {
    let meta = &mut object["metadata"];
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta["labels"]["app.kubernetes.io/name"] = json!(NAME);
    meta["labels"][MANAGED_BY.0] = json!(MANAGED_BY.1);
    object
}

/// The objects of an installation, in the order they are applied: what a thing depends on comes
/// before it (the namespace, the certificates, the configuration, the workload) and the
/// ValidatingWebhookConfiguration last, so admission points at the webhook only once everything it
/// needs exists.
pub fn objects(spec: &InstallSpec) -> Vec<Value> {
    let shipped = shipped();
    let ns = spec.namespace.as_str();
    let mut out = Vec::new();

    let mut namespace = labelled(shipped.namespace, None);
    namespace["metadata"]["name"] = json!(ns);
    out.push(namespace);

    match &spec.certificates {
        Certificates::Own {
            ca_cert,
            ca_key,
            serving_cert,
            serving_key,
            ..
        } => {
            out.push(tls_secret(ns, CA_SECRET, ca_cert, ca_key, ca_cert));
            out.push(tls_secret(
                ns,
                TLS_SECRET,
                serving_cert,
                serving_key,
                ca_cert,
            ));
        }
        Certificates::CertManager => out.extend(cert_manager_objects(ns, &spec.endpoint)),
    }

    let configmap = labelled(shipped.configmap, Some(ns));
    out.push(configmap);

    if spec.endpoint == Endpoint::Service {
        out.push(labelled(shipped.service_account, Some(ns)));
        let mut deployment = labelled(shipped.deployment, Some(ns));
        deployment["spec"]["replicas"] = json!(spec.replicas);
        set_images(&mut deployment, || json!(spec.image));
        out.push(deployment);
        out.push(labelled(shipped.service, Some(ns)));
        let mut pdb = labelled(shipped.pdb, Some(ns));
        // One replica with minAvailable 1 would block every drain of its node.
        if spec.replicas < 2 {
            pdb["spec"]["minAvailable"] = json!(0);
        }
        out.push(pdb);
    }

    out.push(webhook_configuration(spec, &shipped.vwc));
    out
}

/// Sets the image of every container of `deployment`'s Pod template, init containers included
/// (the webhook and the `precompile` init container run the same image: its compiled modules are
/// only valid for the binary that compiled them).
pub fn set_images(deployment: &mut Value, mut image: impl FnMut() -> Value) {
    for list in ["initContainers", "containers"] {
        if let Some(containers) = deployment["spec"]["template"]["spec"][list].as_array_mut() {
            for container in containers {
                container["image"] = image();
            }
        }
    }
}

fn tls_secret(namespace: &str, name: &str, cert: &str, key: &str, ca: &str) -> Value {
    labelled(
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": "kubernetes.io/tls",
            // `data`, not `stringData`: server-side apply tracks the fields as they are stored.
            "data": {
                "tls.crt": base64_encode(cert.as_bytes()),
                "tls.key": base64_encode(key.as_bytes()),
                "ca.crt": base64_encode(ca.as_bytes()),
            },
        }),
        Some(namespace),
    )
}

/// cert-manager's objects: a self-signed Issuer makes the CA Certificate, a CA Issuer signs the
/// serving Certificate into the Secret the Deployment mounts. cert-manager renews each before expiry
/// (`renewBefore`), and the cainjector keeps `caBundle` current.
pub fn cert_manager_objects(namespace: &str, endpoint: &Endpoint) -> Vec<Value> {
    let hosts = certificate_hosts(namespace, endpoint);
    let (ips, dns): (Vec<String>, Vec<String>) = hosts
        .into_iter()
        .partition(|h| h.parse::<std::net::IpAddr>().is_ok());
    let mut serving = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": NAME},
        "spec": {
            "secretName": TLS_SECRET,
            "dnsNames": dns,
            "duration": format!("{}h", SERVING_DAYS * 24),
            "renewBefore": format!("{}h", ROTATE_BEFORE_DAYS * 24),
            "issuerRef": {"name": CA_SECRET, "kind": "Issuer"},
        },
    });
    if !ips.is_empty() {
        serving["spec"]["ipAddresses"] = json!(ips);
    }
    vec![
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": format!("{NAME}-selfsigned")},
            "spec": {"selfSigned": {}},
        }),
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": {"name": CA_SECRET},
            "spec": {
                "isCA": true,
                "commonName": format!("{NAME}-ca"),
                "secretName": CA_SECRET,
                "duration": format!("{}h", CA_DAYS * 24),
                "renewBefore": format!("{}h", ROTATE_BEFORE_DAYS * 24),
                "issuerRef": {"name": format!("{NAME}-selfsigned"), "kind": "Issuer"},
            },
        }),
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": CA_SECRET},
            "spec": {"ca": {"secretName": CA_SECRET}},
        }),
        serving,
    ]
    .into_iter()
    .map(|o| labelled(o, Some(namespace)))
    .collect()
}

fn webhook_configuration(spec: &InstallSpec, shipped: &Value) -> Value {
    let mut vwc = labelled(shipped.clone(), None);
    let ns = spec.namespace.as_str();
    if let Some(webhooks) = vwc["webhooks"].as_array_mut() {
        for webhook in webhooks {
            let path = webhook["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or("/validate")
                .to_owned();
            let mut client = json!({});
            match &spec.endpoint {
                Endpoint::Service => {
                    client["service"] =
                        json!({"name": NAME, "namespace": ns, "path": path, "port": 443});
                }
                Endpoint::Url(base) => {
                    client["url"] = json!(format!("{}{path}", base.trim_end_matches('/')));
                }
            }
            if let Certificates::Own { ca_bundle, .. } = &spec.certificates {
                client["caBundle"] = json!(base64_encode(ca_bundle.as_bytes()));
            }
            webhook["clientConfig"] = client;
            webhook["failurePolicy"] = json!(spec.failure_policy.as_str());
            // The webhook never judges its own namespace: it must be able to restart itself.
            if let Some(values) =
                webhook.pointer_mut("/namespaceSelector/matchExpressions/0/values")
            {
                *values = json!([ns, "kube-system"]);
            }
        }
    }
    if spec.certificates == Certificates::CertManager {
        vwc["metadata"]["annotations"][INJECT_CA_FROM] = json!(format!("{ns}/{NAME}"));
    }
    vwc
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An installed object by kind and name, as uninstall deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Installed {
    pub fn of(object: &Value) -> Installed {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Installed {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").unwrap_or_default(),
        }
    }

    /// `kind/name` (with ` -n ns`), as kubectl names objects.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{} -n {ns}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// Every object an installation in `namespace` may have, in the order uninstall deletes them: the
/// ValidatingWebhookConfiguration FIRST, so admission never points at a webhook that is gone, then
/// the rest in the reverse of the apply order, the namespace last.
pub fn deletion_order(namespace: &str) -> Vec<Installed> {
    let spec = |endpoint, certificates| InstallSpec {
        namespace: namespace.to_owned(),
        image: String::new(),
        replicas: 2,
        endpoint,
        certificates,
        failure_policy: FailurePolicy::Ignore,
    };
    let own = Certificates::Own {
        ca_bundle: String::new(),
        ca_cert: String::new(),
        ca_key: String::new(),
        serving_cert: String::new(),
        serving_key: String::new(),
    };
    let mut all: Vec<Installed> = Vec::new();
    for object in objects(&spec(Endpoint::Service, own))
        .iter()
        .chain(objects(&spec(Endpoint::Service, Certificates::CertManager)).iter())
    {
        let installed = Installed::of(object);
        if !all.contains(&installed) {
            all.push(installed);
        }
    }
    // The reverse of the apply order, with the configuration moved to the front (the cert-manager
    // objects come after it in `all`).
    all.reverse();
    all.sort_by_key(|o| o.kind != "ValidatingWebhookConfiguration");
    all
}

/// What to do with the serving certificate and its CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertAction {
    /// Both are valid for more than [`ROTATE_BEFORE_DAYS`] and name every host.
    Keep,
    /// Issue a new serving certificate with the same CA (the `caBundle` does not change); why.
    IssueServing(String),
    /// Make a new CA and serving certificate; the previous CA stays in the `caBundle` while it is
    /// valid, so the running webhook's certificate is trusted until the new one is mounted; why.
    NewCa(String),
}

/// What is known of the live certificates (from the Secrets).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertFacts {
    /// The CA's expiry (Unix seconds), when the CA Secret holds a certificate and its key.
    pub ca_not_after: Option<i64>,
    /// The serving certificate's expiry (Unix seconds), when the TLS Secret holds one and its key
    /// and it was signed by that CA.
    pub serving_not_after: Option<i64>,
    /// The DNS names and IP addresses the serving certificate names.
    pub serving_hosts: Vec<String>,
}

/// Whole days from `now` to `not_after` (negative when expired), both Unix seconds.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// Whether the certificates are kept, the serving certificate reissued, or a new CA made.
/// `force` (`--rotate`) replaces the serving certificate even when it is not due.
pub fn cert_action(facts: &CertFacts, hosts: &[String], now: i64, force: bool) -> CertAction {
    let Some(ca_not_after) = facts.ca_not_after else {
        return CertAction::NewCa("no CA yet".into());
    };
    let ca_days = days_left(ca_not_after, now);
    if ca_days < ROTATE_BEFORE_DAYS {
        return CertAction::NewCa(format!(
            "the CA expires in {ca_days} days (rotated under {ROTATE_BEFORE_DAYS})"
        ));
    }
    let Some(serving_not_after) = facts.serving_not_after else {
        return CertAction::IssueServing("no serving certificate signed by the CA yet".into());
    };
    let days = days_left(serving_not_after, now);
    if days < ROTATE_BEFORE_DAYS {
        return CertAction::IssueServing(format!(
            "the serving certificate expires in {days} days (rotated under {ROTATE_BEFORE_DAYS})"
        ));
    }
    let missing: Vec<&str> = hosts
        .iter()
        .filter(|h| !facts.serving_hosts.contains(h))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return CertAction::IssueServing(format!(
            "the serving certificate does not name {}",
            missing.join(", ")
        ));
    }
    if force {
        return CertAction::IssueServing("--rotate".into());
    }
    CertAction::Keep
}

/// The `failurePolicy` of the first write of an install: `Fail` only when the configuration already
/// enforces (`live` is `Fail`) and the webhook answers now, so a re-run never weakens a working
/// installation; otherwise `Ignore` until the webhook has answered.
pub fn first_failure_policy(
    wanted: FailurePolicy,
    live: Option<FailurePolicy>,
    answers_now: bool,
) -> FailurePolicy {
    if wanted == FailurePolicy::Fail && live == Some(FailurePolicy::Fail) && answers_now {
        FailurePolicy::Fail
    } else {
        FailurePolicy::Ignore
    }
}

/// The `failurePolicy` after waiting for the webhook: `Fail` (when wanted) only if it answered;
/// never `Fail` for a webhook that does not answer, or every matching request would be refused.
pub fn final_failure_policy(wanted: FailurePolicy, answered: bool) -> FailurePolicy {
    if wanted == FailurePolicy::Fail && answered {
        FailurePolicy::Fail
    } else {
        FailurePolicy::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoint: Endpoint, certificates: Certificates) -> InstallSpec {
        InstallSpec {
            namespace: "guard".into(),
            image: "registry.example.com/supsvc-webhook:1".into(),
            replicas: 2,
            endpoint,
            certificates,
            failure_policy: FailurePolicy::Ignore,
        }
    }

    fn own() -> Certificates {
        Certificates::Own {
            ca_bundle: "CA2\nCA1\n".into(),
            ca_cert: "CA2".into(),
            ca_key: "CAKEY".into(),
            serving_cert: "CERT".into(),
            serving_key: "KEY".into(),
        }
    }

    fn kinds(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn the_shipped_manifests_parse() {
        let s = shipped();
        for (what, object) in [
            ("Namespace", &s.namespace),
            ("ConfigMap", &s.configmap),
            ("ServiceAccount", &s.service_account),
            ("Deployment", &s.deployment),
            ("PodDisruptionBudget", &s.pdb),
            ("Service", &s.service),
            ("ValidatingWebhookConfiguration", &s.vwc),
        ] {
            assert_eq!(object["kind"], what);
        }
        assert_eq!(default_image(), "ghcr.io/supsvc/supsvc-webhook:0.1.0");
    }

    /// registry:// modules from a registry with credentials: the Deployment mounts the pull Secret
    /// where the ConfigMap's `registry.configFile` line points, and optionally (no Secret, no
    /// failure to start: anonymous pulls).
    #[test]
    fn the_pull_secret_is_mounted_optionally_where_the_configuration_reads_it() {
        let s = shipped();
        let pod = &s.deployment["spec"]["template"]["spec"];
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "registry-credentials")
            .expect("a registry-credentials volume");
        assert_eq!(volume["secret"]["secretName"], "supsvc-webhook-registry");
        assert_eq!(volume["secret"]["optional"], true);
        let mount = pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "registry-credentials")
            .expect("mounted");
        let path = mount["mountPath"].as_str().unwrap();
        let config = s.configmap["data"]["config.yaml"].as_str().unwrap();
        assert!(
            config.contains(&format!("#   configFile: {path}/.dockerconfigjson")),
            "{config}"
        );
    }

    #[test]
    fn in_cluster_objects_come_in_dependency_order_with_the_configuration_last() {
        let objects = objects(&spec(Endpoint::Service, own()));
        assert_eq!(
            kinds(&objects),
            [
                "Namespace/guard",
                "Secret/supsvc-webhook-ca",
                "Secret/supsvc-webhook-tls",
                "ConfigMap/supsvc-webhook-policies",
                "ServiceAccount/supsvc-webhook",
                "Deployment/supsvc-webhook",
                "Service/supsvc-webhook",
                "PodDisruptionBudget/supsvc-webhook",
                "ValidatingWebhookConfiguration/supsvc-webhook",
            ]
        );
        for o in &objects[1..objects.len() - 1] {
            assert_eq!(o["metadata"]["namespace"], "guard", "{o}");
        }
        for o in &objects {
            assert_eq!(o["metadata"]["labels"][MANAGED_BY.0], MANAGED_BY.1);
        }
        let deployment = &objects[5];
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"],
            "registry.example.com/supsvc-webhook:1"
        );
        assert_eq!(
            pod["initContainers"][0]["image"], "registry.example.com/supsvc-webhook:1",
            "the precompile init container runs the webhook's own image"
        );
        let vwc = objects.last().unwrap();
        for webhook in vwc["webhooks"].as_array().unwrap() {
            assert_eq!(webhook["failurePolicy"], "Ignore");
            assert_eq!(webhook["clientConfig"]["service"]["namespace"], "guard");
            assert_eq!(webhook["clientConfig"]["service"]["port"], 443);
            assert_eq!(
                webhook["clientConfig"]["caBundle"],
                base64_encode(b"CA2\nCA1\n")
            );
            assert!(webhook["clientConfig"].get("url").is_none());
            assert_eq!(
                webhook["namespaceSelector"]["matchExpressions"][0]["values"],
                json!(["guard", "kube-system"])
            );
        }
        assert_eq!(
            vwc["webhooks"][1]["clientConfig"]["service"]["path"],
            "/validate/storage-guard"
        );
        // The TLS Secret carries the CA beside the serving pair, as cert-manager writes it.
        assert_eq!(objects[2]["data"]["ca.crt"], base64_encode(b"CA2"));
        assert_eq!(objects[2]["type"], "kubernetes.io/tls");
    }

    #[test]
    fn url_mode_installs_no_workload_and_points_at_the_url() {
        let objects = objects(&spec(
            Endpoint::Url("https://127.0.0.1:9443/".into()),
            own(),
        ));
        assert_eq!(
            kinds(&objects),
            [
                "Namespace/guard",
                "Secret/supsvc-webhook-ca",
                "Secret/supsvc-webhook-tls",
                "ConfigMap/supsvc-webhook-policies",
                "ValidatingWebhookConfiguration/supsvc-webhook",
            ]
        );
        let vwc = objects.last().unwrap();
        assert_eq!(
            vwc["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate/registry-guard"
        );
        assert!(vwc["webhooks"][0]["clientConfig"].get("service").is_none());
    }

    #[test]
    fn cert_manager_replaces_the_secrets_and_injects_the_ca() {
        let objects = objects(&spec(Endpoint::Service, Certificates::CertManager));
        let names = kinds(&objects);
        assert_eq!(
            names[1..5],
            [
                "Issuer/supsvc-webhook-selfsigned",
                "Certificate/supsvc-webhook-ca",
                "Issuer/supsvc-webhook-ca",
                "Certificate/supsvc-webhook",
            ]
        );
        assert!(!names.iter().any(|n| n.starts_with("Secret/")));
        let vwc = objects.last().unwrap();
        assert_eq!(
            vwc["metadata"]["annotations"][INJECT_CA_FROM],
            "guard/supsvc-webhook"
        );
        assert!(vwc["webhooks"][0]["clientConfig"].get("caBundle").is_none());
        let serving = &objects[4];
        assert_eq!(serving["spec"]["secretName"], TLS_SECRET);
        assert_eq!(serving["spec"]["dnsNames"][2], "supsvc-webhook.guard.svc");
        assert_eq!(serving["spec"]["renewBefore"], "720h");
    }

    #[test]
    fn uninstall_deletes_the_configuration_first_and_the_namespace_last() {
        let order = deletion_order("guard");
        assert_eq!(order[0].kind, "ValidatingWebhookConfiguration");
        assert_eq!(order.last().unwrap().kind, "Namespace");
        let position = |kind: &str, name: &str| {
            order
                .iter()
                .position(|o| o.kind == kind && o.name == name)
                .unwrap_or_else(|| panic!("{kind}/{name} missing"))
        };
        // The workload goes before the Secrets it mounts; every kind of both modes is there.
        assert!(position("Deployment", NAME) < position("Secret", TLS_SECRET));
        assert!(position("Certificate", NAME) < position("Issuer", CA_SECRET));
        assert!(position("Issuer", CA_SECRET) < position("Namespace", "guard"));
        assert_eq!(
            order
                .iter()
                .filter(|o| o.kind == "ValidatingWebhookConfiguration")
                .count(),
            1
        );
    }

    const DAY: i64 = 86_400;

    #[test]
    fn certificates_are_rotated_before_they_expire() {
        let now = 1_800_000_000;
        let hosts = vec!["supsvc-webhook.guard.svc".to_owned()];
        let fresh = CertFacts {
            ca_not_after: Some(now + 3000 * DAY),
            serving_not_after: Some(now + 200 * DAY),
            serving_hosts: hosts.clone(),
        };
        assert_eq!(cert_action(&fresh, &hosts, now, false), CertAction::Keep);
        assert!(
            matches!(cert_action(&fresh, &hosts, now, true), CertAction::IssueServing(r) if r == "--rotate")
        );
        assert!(matches!(
            cert_action(&CertFacts::default(), &hosts, now, false),
            CertAction::NewCa(_)
        ));
        // 30 days left is kept; 29 days and 23 hours is rotated.
        let at = |serving: i64| CertFacts {
            serving_not_after: Some(serving),
            ..fresh.clone()
        };
        assert_eq!(
            cert_action(&at(now + 30 * DAY), &hosts, now, false),
            CertAction::Keep
        );
        assert_eq!(
            cert_action(&at(now + 30 * DAY - 3600), &hosts, now, false),
            CertAction::IssueServing(
                "the serving certificate expires in 29 days (rotated under 30)".into()
            )
        );
        assert!(
            matches!(cert_action(&at(now - DAY), &hosts, now, false), CertAction::IssueServing(r) if r.contains("-1 days"))
        );
        let old_ca = CertFacts {
            ca_not_after: Some(now + 10 * DAY),
            ..fresh.clone()
        };
        assert!(
            matches!(cert_action(&old_ca, &hosts, now, false), CertAction::NewCa(r) if r.contains("10 days"))
        );
        let moved = vec!["127.0.0.1".to_owned()];
        assert_eq!(
            cert_action(&fresh, &moved, now, false),
            CertAction::IssueServing("the serving certificate does not name 127.0.0.1".into())
        );
        let no_serving = CertFacts {
            serving_not_after: None,
            ..fresh
        };
        assert!(matches!(
            cert_action(&no_serving, &hosts, now, false),
            CertAction::IssueServing(_)
        ));
    }

    #[test]
    fn enforcement_only_once_the_webhook_answers() {
        use FailurePolicy::{Fail, Ignore};
        // A first install, or one that does not enforce yet: Ignore first, whatever answers.
        assert_eq!(first_failure_policy(Fail, None, true), Ignore);
        assert_eq!(first_failure_policy(Fail, Some(Ignore), true), Ignore);
        // A re-run of a working installation does not weaken it for the moment of the write.
        assert_eq!(first_failure_policy(Fail, Some(Fail), true), Fail);
        // An enforcing configuration whose webhook stopped answering is relaxed, not kept at Fail.
        assert_eq!(first_failure_policy(Fail, Some(Fail), false), Ignore);
        assert_eq!(first_failure_policy(Ignore, Some(Fail), true), Ignore);
        assert_eq!(final_failure_policy(Fail, true), Fail);
        assert_eq!(final_failure_policy(Fail, false), Ignore);
        assert_eq!(final_failure_policy(Ignore, true), Ignore);
    }

    #[test]
    fn urls_and_hosts() {
        assert_eq!(url_host("https://127.0.0.1:9443").unwrap(), "127.0.0.1");
        assert_eq!(url_host("https://[::1]:9443/x").unwrap(), "::1");
        assert_eq!(
            url_host("https://webhook.example.com/").unwrap(),
            "webhook.example.com"
        );
        assert!(url_host("http://127.0.0.1:9443").is_err());
        assert!(url_host("https://u:p@host").is_err());
        assert!(url_host("https://").is_err());
        let hosts = certificate_hosts("guard", &Endpoint::Url("https://10.0.0.5:8443".into()));
        assert_eq!(hosts.last().unwrap(), "10.0.0.5");
        assert!(hosts.contains(&"supsvc-webhook.guard.svc".to_owned()));
        assert_eq!(days_left(100 * DAY + 5, 0), 100);
        assert_eq!(days_left(-5, 0), -1);
    }
}
