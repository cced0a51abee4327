//! `kubectl supsvc webhook package`: supsvc-webhook as a Supervisor Service definition, the one YAML
//! stream vCenter registers (Workload Management → Services → Add, or
//! `POST /api/vcenter/namespace-management/supervisor-services` with `carvel_spec.version_spec.content`):
//! a Carvel `PackageMetadata` (the service: its ID is the metadata name) and a `Package` (one version:
//! `spec.refName` is the service ID, `spec.version` the version, `spec.valuesSchema.openAPIv3` the
//! settings an operator may give in vCenter's YAML Service Config, `spec.template` the kapp-controller
//! App that fetches the imgpkg bundle and deploys it). Formats: data.packaging.carvel.dev/v1alpha1
//! (<https://carvel.dev/kapp-controller/docs/latest/packaging/>) and the VCF Supervisor Services
//! developer guide (one document stream with PackageMetadata and Package).

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

use super::plan::{self, DEFAULT_NAMESPACE};
use crate::error::{Failure, Result};

/// The Supervisor Service ID (PackageMetadata name, Package refName).
pub const SERVICE_ID: &str = "supsvc-webhook.supsvc.io";

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The version to define (semver, as kapp-controller orders versions).
    #[arg(long = "package-version", default_value = env!("CARGO_PKG_VERSION"), value_name = "VERSION")]
    pub package_version: String,
    /// The imgpkg bundle with the webhook's manifests (default ghcr.io/supsvc/supsvc-webhook-bundle:VERSION).
    #[arg(long, value_name = "IMAGE")]
    pub bundle: Option<String>,
    /// Write the definition to this file instead of standard output.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Register the definition in vCenter (--vcenter): checkContent, then the new service, or a new
    /// version of it when the service exists.
    #[arg(long, requires = "vcenter")]
    pub register: bool,
    /// After registering, install the service on the kubeconfig's Supervisor with these values (YAML
    /// file, checked against the valuesSchema first; `-` for none).
    #[arg(long, requires = "register", value_name = "VALUES")]
    pub install: Option<PathBuf>,
    #[command(flatten)]
    pub vcenter: crate::cli::VcenterArgs,
}

/// The openAPIv3 schema of the service's values (kapp-controller's `valuesSchema.openAPIv3`, which
/// vCenter shows and checks in the YAML Service Config): the install's settings (namespace, image,
/// replicas, failurePolicy) and each shipped policy's mode and settings (`webhook/src/config.rs`).
pub fn values_schema() -> Value {
    let policy = |title: &str| {
        json!({
            "type": "object",
            "description": format!("The {title} policy."),
            "additionalProperties": false,
            "properties": {
                "mode": {
                    "type": "string", "enum": ["enforce", "monitor"], "default": "enforce",
                    "description": "enforce denies what the policy refuses; monitor only logs and counts it."
                },
                "settings": {
                    "type": "object", "default": {}, "additionalProperties": true,
                    "description": "The policy's settings, as in the webhook's configuration file (e.g. exemptNamespaces)."
                },
                "timeout": {"type": "integer", "minimum": 1, "default": 100, "description": "Milliseconds one evaluation may run."},
                "memoryLimit": {"type": "string", "default": "32Mi", "description": "Linear memory of one evaluation, a Kubernetes quantity."},
            },
        })
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "namespace": {
                "type": "string", "default": DEFAULT_NAMESPACE,
                "description": "The namespace the webhook runs in (the platform sets it to the service's namespace)."
            },
            "image": {
                "type": "string", "default": plan::default_image(),
                "description": "The webhook's image; in an air-gapped Supervisor, the private registry's copy."
            },
            "replicas": {"type": "integer", "minimum": 1, "default": 2, "description": "Replicas of the Deployment."},
            "failurePolicy": {
                "type": "string", "enum": ["Fail", "Ignore"], "default": "Fail",
                "description": "What the API server does when the webhook cannot be called."
            },
            "policies": {
                "type": "object",
                "additionalProperties": false,
                "default": {},
                "properties": {
                    "registryGuard": policy("registry-guard (images from public registries)"),
                    "storageGuard": policy("storage-guard (direct edits of kapp-managed PVCs and StatefulSets)"),
                },
            },
        },
    })
}

/// The two documents: PackageMetadata, then Package.
pub fn definition(version: &str, bundle: &str) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "data.packaging.carvel.dev/v1alpha1",
            "kind": "PackageMetadata",
            "metadata": {"name": SERVICE_ID},
            "spec": {
                "displayName": "supsvc webhook",
                "shortDescription": "Admission policies (WASM) that keep Supervisor Services from being broken by hand.",
                "longDescription": "A validating admission webhook running WASM policies (Kubewarden's waPC protocol): \
                    storage-guard refuses direct edits of kapp-managed PVCs and StatefulSets (use the service's values), \
                    registry-guard refuses images from public registries in an air-gapped Supervisor.",
                "providerName": "supsvc",
                "maintainers": [{"name": "supsvc"}],
                "categories": ["security", "admission"],
            },
        }),
        json!({
            "apiVersion": "data.packaging.carvel.dev/v1alpha1",
            "kind": "Package",
            "metadata": {"name": format!("{SERVICE_ID}.{version}")},
            "spec": {
                "refName": SERVICE_ID,
                "version": version,
                "releaseNotes": format!("supsvc-webhook {version}"),
                "licenses": ["Apache-2.0"],
                "valuesSchema": {"openAPIv3": values_schema()},
                "template": {
                    "spec": {
                        "fetch": [{"imgpkgBundle": {"image": bundle}}],
                        "template": [
                            {"ytt": {"paths": ["config/"]}},
                            {"kbld": {"paths": ["-", ".imgpkg/images.yml"]}},
                        ],
                        "deploy": [{"kapp": {}}],
                    },
                },
            },
        }),
    ]
}

/// The definition as one YAML stream (`---` between the documents), as vCenter takes it.
pub fn render(version: &str, bundle: &str) -> String {
    definition(version, bundle)
        .iter()
        .map(|d| crate::cmd::objects::yaml(d).trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n---\n")
        + "\n"
}

fn semver_like(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// # Errors
/// A version that is not semver, or a file that cannot be written.
pub fn write(args: &PackageArgs) -> Result<()> {
    if !semver_like(&args.package_version) {
        return Err(Failure::usage(
            format!(
                "--package-version {}: not a semantic version",
                args.package_version
            ),
            "give MAJOR.MINOR.PATCH (e.g. 0.1.0), as kapp-controller orders a service's versions",
        ));
    }
    let bundle = bundle_of(args);
    let text = render(&args.package_version, &bundle);
    match &args.file {
        None if args.register => Ok(()),
        None => {
            out!("{text}");
            Ok(())
        }
        Some(path) => std::fs::write(path, text).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check the directory exists and is writable",
            )
        }),
    }
}

fn bundle_of(args: &PackageArgs) -> String {
    args.bundle.clone().unwrap_or_else(|| {
        format!(
            "ghcr.io/supsvc/supsvc-webhook-bundle:{}",
            args.package_version
        )
    })
}

/// `webhook package`: writes the definition; with `--register` registers it in vCenter, and with
/// `--install` installs it on the kubeconfig's Supervisor (`connect` gives its API server's URL).
///
/// # Errors
/// [`write`]'s; vCenter refusing the definition (checkContent not VALID, nothing written) or a call;
/// values that do not pass the valuesSchema (nothing written).
pub async fn run<F, Fut>(args: &PackageArgs, connect: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<crate::cluster::Cluster>>,
{
    write(args)?;
    if !args.register {
        return Ok(());
    }
    use base64::Engine;
    use http::Method;
    use supsvc_core::vcenter as core_vc;
    let engine = base64::engine::general_purpose::STANDARD;
    let values = match &args.install {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(String::new()),
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(
                format!("cannot read --install {}: {e}", path.display()),
                "give a YAML file of the service's values (or - for none)",
            )
        })?),
    };
    if let Some(text) = &values {
        let parsed: Value = if text.trim().is_empty() {
            json!({})
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                Failure::usage(
                    format!("--install: the values are not YAML: {e}"),
                    "give a YAML mapping of the service's values",
                )
            })?
        };
        let problems = supsvc_core::values::validate(&values_schema(), &parsed);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(Failure::usage(
                format!(
                    "--install: the values do not pass the valuesSchema: {}",
                    list.join("; ")
                ),
                "`kubectl supsvc webhook package` prints the schema (spec.valuesSchema.openAPIv3); nothing was written",
            ));
        }
    }
    let options = crate::vcenter::VcenterOptions::from(&args.vcenter);
    let url = options.vcenter.clone().unwrap_or_default();
    let password = crate::vcenter::read_password(&options, false)?;
    let vc = crate::vcenter::Vcenter::connect(&options, &url, password).await?;
    let content = engine.encode(render(&args.package_version, &bundle_of(args)));
    let answer = vc
        .request(
            Method::POST,
            &format!(
                "{}/supervisor-services?action=checkContent",
                core_vc::NAMESPACE_MANAGEMENT
            ),
            Some(&json!({"spec": {"content": content}})),
        )
        .await?;
    let status = core_vc::read_check_result(&answer, SERVICE_ID, &args.package_version)
        .map_err(|refused| {
            let why = match refused {
                core_vc::ContentCheckError::NotValid { status, messages } => format!(
                    "({}): {}",
                    status.as_deref().unwrap_or("unreadable"),
                    messages.join("; ")
                ),
                read_as @ core_vc::ContentCheckError::OtherDefinition { .. } => format!(
                    "({read_as}, not {SERVICE_ID} {})",
                    args.package_version
                ),
            };
            Failure::new(
                format!("vCenter's checkContent does not accept the definition {why}; nothing was written"),
                "vCenter takes Carvel definitions from vSphere 8.0.0.1 on; check the version with `kubectl supsvc status --vcenter`",
            )
        })?;
    outln!(
        "checkContent: {status} ({SERVICE_ID} {})",
        args.package_version
    );
    let exists = vc
        .try_request(Method::GET, &core_vc::catalog_path(SERVICE_ID, None), None)
        .await?
        .is_ok();
    if exists {
        vc.request(
            Method::POST,
            &format!("{}/versions", core_vc::catalog_path(SERVICE_ID, None)),
            Some(&json!({"carvel_spec": {"content": content}})),
        )
        .await?;
        outln!(
            "registered version {} of {SERVICE_ID}",
            args.package_version
        );
    } else {
        vc.request(
            Method::POST,
            &format!("{}/supervisor-services", core_vc::NAMESPACE_MANAGEMENT),
            Some(&json!({"carvel_spec": {"version_spec": {"content": content}}})),
        )
        .await?;
        outln!(
            "registered Supervisor Service {SERVICE_ID} with version {}",
            args.package_version
        );
    }
    if let Some(values) = values {
        let cluster = connect().await?;
        let target = vc.target(&options, &cluster.server).await?;
        let mut body = json!({"supervisor_service": SERVICE_ID, "version": args.package_version});
        if !values.trim().is_empty() {
            body["yaml_service_config"] = json!(engine.encode(values));
        }
        vc.request(
            Method::POST,
            &core_vc::install_path(target.flavour, &target.id, None),
            Some(&body),
        )
        .await?;
        outln!(
            "installing {SERVICE_ID} {} on {}: `kubectl supsvc status --vcenter {url}` follows it",
            args.package_version,
            target.describe()
        );
    }
    vc.logout().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_a_package_and_its_metadata_as_vcenter_takes_them() {
        let text = render("0.1.0", "registry.example.com/supsvc-webhook-bundle:0.1.0");
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        let (meta, package) = (&docs[0], &docs[1]);
        assert_eq!(meta["kind"], "PackageMetadata");
        assert_eq!(package["kind"], "Package");
        for d in &docs {
            assert_eq!(d["apiVersion"], "data.packaging.carvel.dev/v1alpha1");
        }
        // vCenter's rules: the service ID is the metadata name and every Package's refName; a
        // Package is named refName.version (kapp-controller's convention).
        assert_eq!(meta["metadata"]["name"], SERVICE_ID);
        assert_eq!(package["spec"]["refName"], SERVICE_ID);
        assert_eq!(package["spec"]["version"], "0.1.0");
        assert_eq!(
            package["metadata"]["name"],
            "supsvc-webhook.supsvc.io.0.1.0"
        );
        assert_eq!(
            package["spec"]["template"]["spec"]["fetch"][0]["imgpkgBundle"]["image"],
            "registry.example.com/supsvc-webhook-bundle:0.1.0"
        );
        let schema = &package["spec"]["valuesSchema"]["openAPIv3"];
        assert_eq!(
            schema["properties"]["failurePolicy"]["enum"],
            json!(["Fail", "Ignore"])
        );
        assert_eq!(
            schema["properties"]["namespace"]["default"],
            "supsvc-webhook"
        );
        assert_eq!(
            schema["properties"]["policies"]["properties"]["storageGuard"]["properties"]["mode"]["enum"],
            json!(["enforce", "monitor"])
        );
    }

    /// Every `default` of the schema is valid against the schema itself, and a values document with
    /// an unknown key or a wrong type is refused: what vCenter and kapp-controller would do with it.
    #[test]
    fn the_values_schema_takes_its_defaults_and_refuses_typos() {
        let schema = values_schema();
        let problems = |values: &Value| supsvc_core::values::validate(&schema, values);
        assert!(problems(&json!({})).is_empty());
        assert!(problems(&json!({"replicas": 3, "failurePolicy": "Ignore", "policies": {"registryGuard": {"mode": "monitor", "settings": {"exemptNamespaces": ["kube-system"]}}}})).is_empty());
        assert!(!problems(&json!({"replica": 3})).is_empty());
        assert!(!problems(&json!({"failurePolicy": "fail"})).is_empty());
        assert!(!problems(&json!({"replicas": "two"})).is_empty());
    }

    #[test]
    fn versions_are_semver() {
        assert!(semver_like("0.1.0"));
        assert!(semver_like("1.2.3+vmware.1"));
        assert!(!semver_like("v0.1.0"));
        assert!(!semver_like("0.1"));
    }
}
