//! The image registries a Supervisor can (or cannot) reach, and the imgpkg bundles stored in them.
//!
//! Relocation is modelled the way imgpkg and docker behave, because that is the root cause of the
//! air-gapped deadlock: `imgpkg copy` copies a bundle and every image of its `.imgpkg/images.yml` by
//! digest into the destination repository, and a fetch from there rewrites the bundle's nested
//! references to it; `docker pull/push` (or `imgpkg pull/push`) moves only the top image, so nested
//! references keep pointing at the public registry.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A bundle as published: the templates it carries, its default values and its nested images.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bundle {
    /// Where the bundle was published (a tag or digest reference).
    pub image: String,
    /// `.imgpkg/images.yml`: the nested image references, as they appear in the manifests.
    #[serde(default)]
    pub images: Vec<String>,
    /// Default data values, overridden by the App's values Secrets.
    #[serde(default)]
    pub values: Value,
    /// The manifests, templated with `{{ values.a.b }}` (see [`super::template`]).
    #[serde(default)]
    pub manifests: Vec<Value>,
    /// ytt templates by file name (`config/…`), as an imgpkg bundle built by a real tool carries
    /// them; rendered with the simulator's ytt subset (see [`super::ytt`]).
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

/// Why a bundle directory could not be read; holds the path and the reason.
#[derive(Debug, thiserror::Error)]
#[error("bundle directory {0}: {1}")]
pub struct BundleDirError(pub String, pub String);

impl Bundle {
    /// Reads an imgpkg bundle's directory as `imgpkg pull -b` writes it: every `*.yml`/`*.yaml`
    /// under `config/` is a ytt template, and `.imgpkg/images.yml` (an `ImagesLock`,
    /// `imgpkg.carvel.dev/v1alpha1`) lists the nested images by digest. kbld's rewrite of the
    /// locked images is not modelled: manifests keep the references they render.
    ///
    /// # Errors
    /// [`BundleDirError`] when `.imgpkg/images.yml` is missing or not an ImagesLock, or a file
    /// cannot be read.
    pub fn from_dir(image: &str, dir: &std::path::Path) -> Result<Bundle, BundleDirError> {
        let fail =
            |e: &dyn std::fmt::Display| BundleDirError(dir.display().to_string(), e.to_string());
        let lock_path = dir.join(".imgpkg/images.yml");
        let lock_text = std::fs::read_to_string(&lock_path)
            .map_err(|e| fail(&format!("{}: {e}", lock_path.display())))?;
        let lock: Value = serde_saphyr::from_str(&lock_text).map_err(|e| fail(&e))?;
        if lock["kind"] != "ImagesLock" || lock["apiVersion"] != "imgpkg.carvel.dev/v1alpha1" {
            return Err(fail(
                &"`.imgpkg/images.yml` is not an imgpkg.carvel.dev/v1alpha1 ImagesLock",
            ));
        }
        let images = lock["images"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["image"].as_str().map(str::to_owned))
            .collect();
        let mut templates = BTreeMap::new();
        let mut pending = vec![dir.join("config")];
        while let Some(at) = pending.pop() {
            for entry in
                std::fs::read_dir(&at).map_err(|e| fail(&format!("{}: {e}", at.display())))?
            {
                let path = entry.map_err(|e| fail(&e))?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yml" | "yaml")
                ) {
                    let name = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| fail(&format!("{name}: {e}")))?;
                    templates.insert(name, text);
                }
            }
        }
        Ok(Bundle {
            image: image.to_owned(),
            images,
            values: Value::Object(Default::default()),
            manifests: Vec::new(),
            templates,
        })
    }
}

/// How a bundle was moved into a private registry.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RelocationMethod {
    /// `imgpkg copy`: the bundle and every nested image, by digest; nested references are rewritten on fetch.
    ImgpkgCopy,
    /// `docker pull/push` or `imgpkg pull/push`: only the top image moves.
    DockerPush,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Relocation {
    pub method: RelocationMethod,
    pub from: String,
    pub to: String,
}

/// What the registry holds at one reference.
#[derive(Clone, Debug, PartialEq)]
struct Stored {
    bundle: Bundle,
    /// For a bundle copied with `imgpkg copy`: nested reference → its copy in the destination repository.
    rewrites: BTreeMap<String, String>,
}

/// Why a fetch failed, worded as vendir/imgpkg word it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("Get \"https://{host}/v2/\": dial tcp: lookup {host}: i/o timeout")]
    Unreachable { host: String },
    #[error(
        "GET https://{host}/v2/{repository}/manifests/{reference}: MANIFEST_UNKNOWN: manifest unknown; map[Tag:{reference}]"
    )]
    NotFound {
        host: String,
        repository: String,
        reference: String,
    },
}

/// Every registry the simulated Supervisor knows of.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    reachable: BTreeSet<String>,
    stored: BTreeMap<String, Stored>,
}

/// A bundle as fetched: manifests with nested references already resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub values: Value,
    pub manifests: Vec<Value>,
    /// The bundle's ytt templates (file name → text).
    pub templates: BTreeMap<String, String>,
    /// Nested reference → its copy, for rendered templates (what `manifests` already had applied).
    pub rewrites: BTreeMap<String, String>,
}

/// A relocation whose source bundle the scenario does not publish; holds its image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relocation from {0}: no such bundle")]
pub struct UnknownBundle(pub String);

impl Registry {
    /// Publishes `bundles`, then applies `relocations` in order.
    ///
    /// # Errors
    /// [`UnknownBundle`] when a relocation copies a bundle that is not published.
    pub fn new(
        reachable: impl IntoIterator<Item = String>,
        bundles: Vec<Bundle>,
        relocations: &[Relocation],
    ) -> Result<Self, UnknownBundle> {
        let mut registry = Registry {
            reachable: reachable.into_iter().collect(),
            stored: BTreeMap::new(),
        };
        for bundle in bundles {
            let image = bundle.image.clone();
            registry.stored.insert(
                image,
                Stored {
                    bundle,
                    rewrites: BTreeMap::new(),
                },
            );
        }
        for relocation in relocations {
            registry.relocate(relocation)?;
        }
        Ok(registry)
    }

    fn relocate(&mut self, relocation: &Relocation) -> Result<(), UnknownBundle> {
        let source = self
            .stored
            .get(&relocation.from)
            .cloned()
            .ok_or_else(|| UnknownBundle(relocation.from.clone()))?;
        match relocation.method {
            RelocationMethod::DockerPush => {
                self.stored.insert(relocation.to.clone(), source);
            }
            RelocationMethod::ImgpkgCopy => {
                let repository = repository_of(&relocation.to).to_string();
                self.copy_into(&source.bundle, &repository, relocation.to.clone(), 0);
            }
        }
        Ok(())
    }

    /// `imgpkg copy` of one bundle: every nested image by digest into `repository`, recursively (a
    /// nested bundle's own images are copied and rewritten too).
    fn copy_into(&mut self, bundle: &Bundle, repository: &str, destination: String, depth: usize) {
        let mut rewrites = BTreeMap::new();
        for nested in &bundle.images {
            let copy = format!("{repository}@{}", digest_of(nested));
            let inner = self.stored.get(nested).map(|s| s.bundle.clone());
            if let Some(inner) = inner.filter(|_| depth < 8) {
                self.copy_into(&inner, repository, copy.clone(), depth + 1);
            }
            rewrites.insert(nested.clone(), copy);
        }
        self.stored.insert(
            destination,
            Stored {
                bundle: bundle.clone(),
                rewrites,
            },
        );
    }

    /// Fetches a bundle as vendir would for an App's `imgpkgBundle` fetch.
    pub fn fetch(&self, image: &str) -> Result<Fetched, FetchError> {
        let (host, repository, reference) = split_reference(image);
        if !self.reachable.contains(host) {
            return Err(FetchError::Unreachable {
                host: host.to_string(),
            });
        }
        let stored = self.stored.get(image).ok_or_else(|| FetchError::NotFound {
            host: host.to_string(),
            repository: repository.to_string(),
            reference: reference.to_string(),
        })?;
        let manifests = stored
            .bundle
            .manifests
            .iter()
            .map(|m| rewrite_strings(m, &stored.rewrites))
            .collect();
        Ok(Fetched {
            values: stored.bundle.values.clone(),
            manifests,
            templates: stored.bundle.templates.clone(),
            rewrites: stored.rewrites.clone(),
        })
    }

    /// Publishes `bundle` at its image reference and makes its registry host reachable (a bundle
    /// pushed to the Supervisor's private registry while the simulator runs).
    pub fn publish(&mut self, bundle: Bundle) {
        let (host, _, _) = split_reference(&bundle.image);
        self.reachable.insert(host.to_owned());
        self.stored.insert(
            bundle.image.clone(),
            Stored {
                bundle,
                rewrites: BTreeMap::new(),
            },
        );
    }
}

/// The registry host, repository and tag/digest of a reference (`host/repo/path:tag` or `host/repo@sha256:…`).
fn split_reference(image: &str) -> (&str, &str, &str) {
    let (host, rest) = image.split_once('/').unwrap_or(("docker.io", image));
    if let Some((repository, digest)) = rest.split_once('@') {
        return (host, repository, digest);
    }
    match rest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (host, repository, tag),
        _ => (host, rest, "latest"),
    }
}

fn repository_of(image: &str) -> &str {
    let (host, repository, _) = split_reference(image);
    &image[..host.len() + 1 + repository.len()]
}

/// The digest a nested image keeps when it is copied: stable for one reference.
pub fn digest_of(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.to_string();
    }
    format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes())))
}

pub(crate) fn rewrite_strings(value: &Value, rewrites: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(rewrites.get(s).cloned().unwrap_or_else(|| s.clone())),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| rewrite_strings(v, rewrites)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), rewrite_strings(v, rewrites)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PUBLIC: &str = "projects.registry.vmware.com/tkg/packages/tkg-service:3.5.1";
    const CHILD: &str = "projects.registry.vmware.com/tkg/packages/core/tkg-controller:v3.5.1";
    const CONTAINER: &str = "projects.registry.vmware.com/tkg/tkg-controller:v3.5.1";

    fn registry(method: RelocationMethod) -> Registry {
        let parent = Bundle {
            image: PUBLIC.into(),
            images: vec![CHILD.into()],
            values: json!({}),
            manifests: vec![json!({"kind": "Package", "spec": {"image": CHILD}})],
            templates: BTreeMap::new(),
        };
        let child = Bundle {
            image: CHILD.into(),
            images: vec![CONTAINER.into()],
            values: json!({}),
            manifests: vec![json!({"kind": "Deployment", "image": CONTAINER})],
            templates: BTreeMap::new(),
        };
        let relocation = Relocation {
            method,
            from: PUBLIC.into(),
            to: "my-registry.example.com/tkg/tkg-service:3.5.1".into(),
        };
        Registry::new(
            ["my-registry.example.com".to_string()],
            vec![parent, child],
            &[relocation],
        )
        .unwrap()
    }

    #[test]
    fn a_relocation_of_a_bundle_nobody_published_is_refused_naming_it() {
        let relocation = Relocation {
            method: RelocationMethod::DockerPush,
            from: PUBLIC.into(),
            to: "my-registry.example.com/tkg/tkg-service:3.5.1".into(),
        };
        let error = Registry::new(
            ["my-registry.example.com".to_string()],
            vec![],
            &[relocation],
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(error, UnknownBundle(PUBLIC.into()));
    }

    #[test]
    fn imgpkg_copy_rewrites_nested_references_into_the_destination_repository() {
        let registry = registry(RelocationMethod::ImgpkgCopy);
        let fetched = registry
            .fetch("my-registry.example.com/tkg/tkg-service:3.5.1")
            .unwrap();
        let nested = fetched.manifests[0]["spec"]["image"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            nested,
            format!(
                "my-registry.example.com/tkg/tkg-service@{}",
                digest_of(CHILD)
            )
        );
        // ... and the nested bundle was copied there, its own images with it, so the child can fetch it.
        let container = format!(
            "my-registry.example.com/tkg/tkg-service@{}",
            digest_of(CONTAINER)
        );
        assert_eq!(
            registry.fetch(&nested).unwrap().manifests,
            vec![json!({"kind": "Deployment", "image": container})]
        );
    }

    #[test]
    fn docker_push_leaves_nested_references_on_the_public_registry() {
        let registry = registry(RelocationMethod::DockerPush);
        let fetched = registry
            .fetch("my-registry.example.com/tkg/tkg-service:3.5.1")
            .unwrap();
        assert_eq!(fetched.manifests[0]["spec"]["image"], CHILD);
        let error = registry.fetch(CHILD).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Get \"https://projects.registry.vmware.com/v2/\": dial tcp: lookup projects.registry.vmware.com: i/o timeout"
        );
    }

    #[test]
    fn a_missing_tag_on_a_reachable_registry_is_manifest_unknown() {
        let registry = registry(RelocationMethod::DockerPush);
        let error = registry
            .fetch("my-registry.example.com/tkg/tkg-service:9.9.9")
            .unwrap_err();
        assert!(
            matches!(error, FetchError::NotFound { ref reference, .. } if reference == "9.9.9"),
            "{error}"
        );
    }

    #[test]
    fn references_split_into_host_repository_and_reference() {
        assert_eq!(
            split_reference("r.example.com:5000/a/b:1.0"),
            ("r.example.com:5000", "a/b", "1.0")
        );
        assert_eq!(
            split_reference("r.example.com/a/b@sha256:ab"),
            ("r.example.com", "a/b", "sha256:ab")
        );
        assert_eq!(
            split_reference("r.example.com/a/b"),
            ("r.example.com", "a/b", "latest")
        );
    }
}
