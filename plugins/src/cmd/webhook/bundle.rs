//! `kubectl supsvc webhook bundle`: the imgpkg bundle the Supervisor Service's Package fetches
//! (`spec.template.spec.fetch[0].imgpkgBundle`), as a directory and, with `--push`, as an image.
//!
//! Layout, as `imgpkg push -b IMAGE -f DIR` takes it (carvel.dev/imgpkg/docs/latest/resources/):
//! - `config/values.yaml`: the ytt data values schema (`#@data/values-schema`), whose defaults are
//!   the Package's `valuesSchema` defaults;
//! - `config/webhook.yaml`: ytt templates of the in-cluster installation of `webhook install` with
//!   cert-manager certificates (a bundle cannot mint a CA; the Supervisor runs cert-manager), every
//!   setting an operator may give read from `data.values`;
//! - `.imgpkg/images.yml`: an `ImagesLock` (`imgpkg.carvel.dev/v1alpha1`) naming the webhook image
//!   by digest, which `imgpkg copy` relocates with the bundle and kbld substitutes (the image's
//!   `kbld.carvel.dev/id` annotation is the reference the templates render).
//!
//! The image: one gzipped tar layer of the directory (Docker's layer media type, as imgpkg writes
//! it), a config whose `config.Labels` carries `dev.carvel.imgpkg.bundle` (how imgpkg and
//! kapp-controller tell a bundle from a plain image). ytt comments are `#!`; a plain `#` comment is
//! an error in ytt, so none is written.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};

use super::plan::{self, Certificates, Endpoint, FailurePolicy, InstallSpec, MANAGED_BY, NAME};
use crate::error::{Failure, Result};

/// The label that makes an image an imgpkg bundle (carvel-dev/imgpkg, docs/dev.md).
#[cfg(feature = "registry")]
pub const BUNDLE_LABEL: &str = "dev.carvel.imgpkg.bundle";

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The webhook image by digest (REPOSITORY@sha256:…): what `.imgpkg/images.yml` locks and the
    /// templates deploy unless the values name another (`webhook/image/build.sh` prints it).
    #[arg(long, value_name = "IMAGE@sha256:DIGEST")]
    pub image: String,
    /// Write the bundle's files into this directory (created; must be empty if it exists).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        required_unless_present = "push"
    )]
    pub output: Option<PathBuf>,
    /// Push the bundle as an imgpkg bundle image to this reference (REGISTRY/REPOSITORY:TAG),
    /// e.g. the Supervisor's private registry (builds with the `registry` feature).
    #[arg(long, value_name = "REFERENCE")]
    pub push: Option<String>,
    #[command(flatten)]
    pub access: crate::cmd::policy::RegistryAccess,
}

/// A value set by the data values: a placeholder in the object, the ytt expression it becomes.
struct Expressions(Vec<String>);

impl Expressions {
    fn mark(&mut self, expr: impl Into<String>) -> Value {
        self.0.push(expr.into());
        json!(format!("__ytt_{}__", self.0.len() - 1))
    }

    /// Replaces every placeholder line end (`key: __ytt_N__` or `- __ytt_N__`) by `#@ EXPR`.
    fn annotate(&self, yaml: &str) -> String {
        let mut out = String::with_capacity(yaml.len());
        for line in yaml.lines() {
            let replaced = line
                .rsplit_once("__ytt_")
                .and_then(|(head, tail)| {
                    let n: usize = tail.strip_suffix("__")?.parse().ok()?;
                    Some(format!("{head}#@ {}", self.0.get(n)?))
                })
                .unwrap_or_else(|| line.to_owned());
            out.push_str(&replaced);
            out.push('\n');
        }
        out
    }
}

/// The namespace stand-in while the objects are built: no object name or host contains it.
const NS: &str = "ytt-namespace-value";

/// `"a" + data.values.namespace + "b"` for a string holding the namespace stand-in.
fn namespace_expression(text: &str) -> String {
    let parts: Vec<String> = text
        .split(NS)
        .map(|literal| format!("\"{literal}\""))
        .collect();
    parts
        .join(" + data.values.namespace + ")
        .replace("\"\" + ", "")
        .replace(" + \"\"", "")
}

fn replace_namespace(value: &mut Value, exprs: &mut Expressions) {
    match value {
        Value::String(s) if s.contains(NS) => *value = exprs.mark(namespace_expression(s)),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_namespace(v, exprs)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_namespace(v, exprs)),
        _ => {}
    }
}

/// The ytt key of a shipped policy in the values (`registry-guard` → `registryGuard`).
fn values_key(policy: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in policy.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `config/webhook.yaml`: the templates.
pub fn templates() -> String {
    let spec = InstallSpec {
        namespace: NS.to_owned(),
        image: String::new(),
        replicas: 2,
        endpoint: Endpoint::Service,
        certificates: Certificates::CertManager,
        failure_policy: FailurePolicy::Fail,
    };
    let mut exprs = Expressions(Vec::new());
    let mut config_fragment = String::new();
    let mut documents = Vec::new();
    for mut object in plan::objects(&spec) {
        // kapp owns these objects: `webhook uninstall` (which deletes only what carries the label)
        // must leave them alone.
        if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
            labels.remove(MANAGED_BY.0);
        }
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "Deployment" => {
                object["spec"]["replicas"] = exprs.mark("data.values.replicas");
                plan::set_images(&mut object, || exprs.mark("data.values.image"));
            }
            "PodDisruptionBudget" => {
                // One disruption at a time whatever the replicas (`webhook install` writes
                // minAvailable 1, or 0 for one replica; ytt's subset here has no conditionals).
                let spec = object["spec"].as_object_mut();
                if let Some(spec) = spec {
                    spec.remove("minAvailable");
                    spec.insert("maxUnavailable".into(), json!(1));
                }
            }
            "ValidatingWebhookConfiguration" => {
                for webhook in object["webhooks"].as_array_mut().into_iter().flatten() {
                    webhook["failurePolicy"] = exprs.mark("data.values.failurePolicy");
                }
            }
            "ConfigMap" => {
                let text = object["data"]["config.yaml"].as_str().unwrap_or_default();
                let mut config: Value = serde_saphyr::from_str(text).unwrap_or(Value::Null);
                for policy in config["policies"].as_array_mut().into_iter().flatten() {
                    let key = values_key(policy["name"].as_str().unwrap_or_default());
                    for field in ["mode", "settings", "timeout", "memoryLimit"] {
                        policy[field] = exprs.mark(format!("data.values.policies.{key}.{field}"));
                    }
                }
                config_fragment = exprs.annotate(&crate::cmd::objects::yaml(&config));
                object["data"]["config.yaml"] = exprs.mark("yaml.encode(config())");
            }
            _ => {}
        }
        replace_namespace(&mut object, &mut exprs);
        documents.push(exprs.annotate(&crate::cmd::objects::yaml(&object)));
    }
    let mut out = String::from(
        "#! supsvc-webhook as kapp deploys it from the Supervisor Service's bundle (ytt templates;\n\
         #! `kubectl supsvc webhook bundle` writes this file).\n\
         #@ load(\"@ytt:data\", \"data\")\n#@ load(\"@ytt:yaml\", \"yaml\")\n\n#@ def config():\n",
    );
    out.push_str(&config_fragment);
    out.push_str("#@ end\n");
    for document in documents {
        out.push_str("---\n");
        out.push_str(&document);
    }
    out
}

/// `config/values.yaml`: the data values schema; its defaults are the Package's `valuesSchema`
/// defaults, with `image` the bundle's image.
pub fn values_schema(image: &str) -> String {
    let schema = super::package::values_schema();
    let mut out = String::from(
        "#! The service's settings (the Package's valuesSchema says the same to vCenter).\n\
         #@data/values-schema\n---\n",
    );
    write_schema(&schema, 0, &mut out, image);
    out
}

fn write_schema(schema: &Value, indent: usize, out: &mut String, image: &str) {
    let pad = " ".repeat(indent);
    for (key, property) in schema["properties"].as_object().into_iter().flatten() {
        if property["type"] == "object" && property.get("properties").is_some() {
            out.push_str(&format!("{pad}{key}:\n"));
            write_schema(property, indent + 2, out, image);
            continue;
        }
        let default = if key == "image" {
            json!(image)
        } else {
            property["default"].clone()
        };
        if property["type"] == "object" {
            out.push_str(&format!("{pad}#@schema/type any=True\n"));
        }
        out.push_str(&format!(
            "{pad}{key}: {}\n",
            serde_json::to_string(&default).unwrap_or_default()
        ));
    }
}

/// `.imgpkg/images.yml`: the webhook image, locked by digest.
pub fn images_lock(image: &str) -> String {
    crate::cmd::objects::yaml(&json!({
        "apiVersion": "imgpkg.carvel.dev/v1alpha1",
        "kind": "ImagesLock",
        "images": [{"image": image, "annotations": {"kbld.carvel.dev/id": image}}],
    }))
}

/// The bundle's files, relative path → text.
pub fn files(image: &str) -> Vec<(&'static str, String)> {
    vec![
        ("config/values.yaml", values_schema(image)),
        ("config/webhook.yaml", templates()),
        (".imgpkg/images.yml", images_lock(image)),
    ]
}

/// # Errors
/// An image not given by digest (a usage error).
pub fn check_image(image: &str) -> Result<()> {
    let digest = image.rsplit_once("@sha256:").map(|(_, d)| d);
    if digest.is_some_and(|d| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit())) {
        return Ok(());
    }
    Err(Failure::usage(
        format!("--image {image}: not a reference by digest"),
        "give REPOSITORY@sha256:<64 hex digits>: imgpkg locks images by digest (webhook/image/build.sh prints the image's digest; `skopeo inspect docker://IMAGE` shows a pushed one)",
    ))
}

/// Writes the files under `dir`.
///
/// # Errors
/// A directory that exists and is not empty, or one that cannot be written.
pub fn write_dir(dir: &Path, image: &str) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::usage(
            format!("-o {}: the directory is not empty", dir.display()),
            "give a new or empty directory: a bundle holds exactly its own files",
        ));
    }
    for (path, text) in files(image) {
        let path = dir.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check the directory is writable",
            )
        })?;
    }
    Ok(())
}

#[cfg(feature = "registry")]
/// The bundle's one layer: a gzipped tar of its files, reproducible (fixed times, owner and modes,
/// as imgpkg writes them).
///
/// # Errors
/// Never in practice (in-memory writes); an I/O error is passed on.
pub fn layer(image: &str) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut dirs = std::collections::BTreeSet::new();
    for (path, text) in files(image) {
        let mut at = Path::new(path).parent();
        let mut parents = Vec::new();
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
            parents.push(dir.to_path_buf());
            at = dir.parent();
        }
        for dir in parents.into_iter().rev() {
            if dirs.insert(dir.clone()) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_mtime(0);
                header.set_size(0);
                tar.append_data(&mut header, &dir, std::io::empty())?;
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(text.len() as u64);
        tar.append_data(&mut header, path, text.as_bytes())?;
    }
    tar.into_inner()?.finish()
}

/// The image config: `config.Labels` marks it a bundle.
#[cfg(feature = "registry")]
pub fn image_config() -> Value {
    json!({
        "architecture": "",
        "os": "",
        "config": {"Labels": {BUNDLE_LABEL: "true"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
}

/// Runs `webhook bundle`.
///
/// # Errors
/// [`check_image`]'s and [`write_dir`]'s; with `--push`, the registry's refusal.
pub async fn run(args: &BundleArgs) -> Result<()> {
    check_image(&args.image)?;
    if args.push.is_some() && !cfg!(feature = "registry") {
        return Err(Failure::new(
            "this kubectl-supsvc was built without registry support (cargo feature `registry`): \
             `webhook bundle --push` needs an OCI client",
            "write the bundle with -o DIR and push it with `imgpkg push -b REFERENCE -f DIR`, or install a build \
             with it from a supsvc checkout: `cargo install --path plugins --features registry`",
        ));
    }
    if let Some(dir) = &args.output {
        write_dir(dir, &args.image)?;
        outln!(
            "wrote the imgpkg bundle of {NAME} ({}) to {}",
            args.image,
            dir.display()
        );
    }
    #[cfg(feature = "registry")]
    if let Some(reference) = &args.push {
        let digest = push(args, reference).await?;
        outln!("pushed the imgpkg bundle of {NAME} to {reference}@{digest}");
        // The next step on stdout as a plain line: `hint:` lines are errors' and go to stderr.
        outln!("next: kubectl supsvc webhook package --bundle {reference}@{digest}");
    }
    Ok(())
}

#[cfg(feature = "registry")]
async fn push(args: &BundleArgs, reference: &str) -> Result<String> {
    let reference = supsvc_oci::PolicyRef::parse(reference)
        .map_err(|e| Failure::usage(format!("--push: {e}"), e.hint()))?;
    let layer = layer(&args.image)
        .map_err(|e| Failure::new(format!("cannot build the bundle's layer: {e}"), "retry"))?;
    let mut config = image_config();
    // diff_ids: the digest of the uncompressed layer, as the image spec requires.
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut raw)
        .map_err(|e| Failure::new(format!("cannot read the bundle's layer: {e}"), "retry"))?;
    config["rootfs"]["diff_ids"] = json!([supsvc_oci::Digest::of(&raw).to_string()]);
    let client = crate::cmd::policy::registry::client(&args.access)?;
    let digest = client
        .push_image(
            &reference,
            (
                serde_json::to_vec(&config).unwrap_or_default(),
                CONFIG_MEDIA_TYPE,
            ),
            vec![(layer, LAYER_MEDIA_TYPE)],
            MANIFEST_MEDIA_TYPE,
        )
        .await
        .map_err(|e| Failure::new(e.to_string(), e.hint()))?;
    Ok(digest.to_string())
}

/// Docker's v2 schema 2 manifest, config and gzipped layer: the media types imgpkg writes.
#[cfg(feature = "registry")]
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// See [`MANIFEST_MEDIA_TYPE`].
#[cfg(feature = "registry")]
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
/// See [`MANIFEST_MEDIA_TYPE`].
#[cfg(feature = "registry")]
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "my-registry.example.com/supsvc/supsvc-webhook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_templates_read_every_setting_from_the_data_values() {
        let text = templates();
        for needle in [
            "  replicas: #@ data.values.replicas",
            "image: #@ data.values.image",
            "failurePolicy: #@ data.values.failurePolicy",
            "config.yaml: #@ yaml.encode(config())",
            "mode: #@ data.values.policies.registryGuard.mode",
            "memoryLimit: #@ data.values.policies.storageGuard.memoryLimit",
            "namespace: #@ data.values.namespace",
            "- #@ \"supsvc-webhook.\" + data.values.namespace + \".svc\"",
            "cert-manager.io/inject-ca-from: #@ data.values.namespace + \"/supsvc-webhook\"",
        ] {
            assert!(text.contains(needle), "{needle} not in:\n{text}");
        }
        assert!(!text.contains(NS), "{text}");
        assert!(!text.contains(MANAGED_BY.1), "{text}");
        // ytt refuses plain `#` comments: only `#@` and `#!` lines.
        for line in text.lines() {
            let t = line.trim_start();
            assert!(
                !t.starts_with('#') || t.starts_with("#@") || t.starts_with("#!"),
                "{line}"
            );
        }
    }

    #[test]
    fn the_schema_defaults_are_the_packages_with_the_bundles_image() {
        let text = values_schema(IMAGE);
        let body = text.split("---\n").nth(1).unwrap();
        let values: Value = serde_saphyr::from_str(body).unwrap();
        assert_eq!(values["image"], IMAGE);
        assert_eq!(values["replicas"], 2);
        assert_eq!(values["failurePolicy"], "Fail");
        assert_eq!(values["policies"]["registryGuard"]["mode"], "enforce");
        assert_eq!(values["policies"]["storageGuard"]["settings"], json!({}));
        assert!(
            text.contains("    #@schema/type any=True\n    settings: {}"),
            "{text}"
        );
    }

    #[test]
    fn the_lock_names_the_image_by_digest_and_others_are_refused() {
        let lock: Value = serde_saphyr::from_str(&images_lock(IMAGE)).unwrap();
        assert_eq!(lock["kind"], "ImagesLock");
        assert_eq!(lock["images"][0]["image"], IMAGE);
        assert!(check_image(IMAGE).is_ok());
        for bad in ["ghcr.io/supsvc/supsvc-webhook:0.1.0", "x@sha256:abc"] {
            let err = check_image(bad).unwrap_err();
            assert!(
                err.to_string().contains("not a reference by digest"),
                "{err}"
            );
        }
    }

    #[cfg(feature = "registry")]
    #[test]
    fn the_layer_is_reproducible_and_holds_the_three_files() {
        let a = layer(IMAGE).unwrap();
        assert_eq!(a, layer(IMAGE).unwrap());
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.header().entry_type().is_file())
            .map(|e| e.path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "config/values.yaml",
                "config/webhook.yaml",
                ".imgpkg/images.yml"
            ]
        );
    }
}
