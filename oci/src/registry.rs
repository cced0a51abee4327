//! The network side: push a module as a WASM artifact, pull and verify one, resolve a tag to its
//! manifest digest. Over `oci-client`, the OCI distribution client Kubewarden's policy-fetcher uses.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;

use crate::auth::{AuthError, Credentials, DockerConfig};
use crate::digest::Digest;
use crate::reference::PolicyRef;
use crate::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};

/// The manifest media types accepted on pull: OCI's, and Docker's v2 schema 2 (some registries
/// convert).
const MANIFEST_MEDIA_TYPES: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How to reach registries: trust, plain HTTP, credentials.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// PEM certificates (a private CA) trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Registries (`host[:port]`) reached over plain HTTP, as Kubewarden's `insecure_sources`.
    /// Every other registry is HTTPS only.
    pub insecure_registries: Vec<String>,
    /// Credentials per registry (a docker config.json or a mounted dockerconfigjson Secret).
    pub docker_config: Option<DockerConfig>,
    /// Credentials for every registry, before the docker config's (e.g. from the environment).
    pub credentials: Option<Credentials>,
}

/// A module pulled (or read from the cache) and verified: the manifest's digest is that of its
/// bytes (and the pinned one, when pinned), the module's that of the manifest's layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The manifest, byte for byte as the registry served it.
    pub manifest: Vec<u8>,
    /// sha256 of [`Pulled::manifest`]: what `@sha256:` pins.
    pub manifest_digest: Digest,
    /// The module's digest, the manifest's layer descriptor's.
    pub module_digest: Digest,
    /// The config blob's media type.
    pub config_media_type: String,
    /// The layer's media type.
    pub layer_media_type: String,
    /// The `.wasm` module.
    pub wasm: Vec<u8>,
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The reference pinned to the manifest the registry stored (`registry://...:tag@sha256:...`).
    pub reference: PolicyRef,
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The module's (the layer's) digest.
    pub module_digest: Digest,
}

/// Why an operation on a registry failed; `Display` says what, [`RegistryError::hint`] what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The CA file could not be read.
    #[error("cannot read the registry CA file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The credentials could not be read.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The registry refused the credentials (or their absence).
    #[error("registry {registry} refused the credentials for {reference}: {message}")]
    Unauthorized {
        registry: String,
        reference: String,
        message: String,
        /// Whether any credentials were sent.
        anonymous: bool,
    },
    /// No such repository, tag or digest.
    #[error("{reference} not found in registry {registry}: {message}")]
    NotFound {
        registry: String,
        reference: String,
        message: String,
    },
    /// The registry could not be reached, or TLS failed.
    #[error("cannot reach registry {registry} for {reference}: {message}")]
    Unreachable {
        registry: String,
        reference: String,
        message: String,
    },
    /// The artifact is not a WASM policy (another manifest shape or media type).
    #[error("{reference} is not a WASM policy artifact: {reason}")]
    NotAPolicy { reference: String, reason: String },
    /// Bytes that are not what their digest says: refused.
    #[error("{reference}: the {what} does not match its digest ({detail}); refused")]
    DigestMismatch {
        reference: String,
        /// `manifest` or `module`.
        what: &'static str,
        /// The expected and the actual digest.
        detail: String,
    },
    /// Anything else the registry or the client reported.
    #[error("{doing} {reference}: {message}")]
    Other {
        doing: &'static str,
        reference: String,
        message: String,
    },
}

impl RegistryError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Self::CaFile { .. } => "give a readable PEM file with the registry's CA certificate".into(),
            Self::Auth(_) => "give a docker config.json (`docker login` writes one; a Secret's .dockerconfigjson is one)".into(),
            Self::Unauthorized { registry, anonymous: true, .. } => format!(
                "no credentials were found for {registry}: log in (`docker login {registry}`), or give a docker \
                 config.json with --registry-config (the webhook: registry.configFile, a mounted dockerconfigjson Secret)"
            ),
            Self::Unauthorized { registry, .. } => format!(
                "check the username and password for {registry} in the docker config.json used (--registry-config, \
                 $DOCKER_CONFIG, ~/.docker/config.json; the webhook: registry.configFile) and that the account may \
                 read (pull) or write (push) this repository"
            ),
            Self::NotFound { .. } => "check the repository and tag (or digest), e.g. with `kubectl supsvc policy pull`".into(),
            Self::Unreachable { registry, .. } => format!(
                "check that {registry} is reachable from here; a registry with a private CA needs its certificate \
                 (--registry-ca-file, the webhook: registry.caFile); one serving plain HTTP must be named \
                 insecure (--insecure-registry {registry}, the webhook: registry.insecureRegistries)"
            ),
            Self::NotAPolicy { .. } => format!(
                "push the module with `kubectl supsvc policy push` or `kwctl push` (config {WASM_CONFIG_MEDIA_TYPE}, \
                 one layer {WASM_LAYER_MEDIA_TYPE})"
            ),
            Self::DigestMismatch { .. } => "the registry (or something between) served other bytes than the digest \
                names: check the pinned digest and the registry's storage; nothing was loaded"
                .into(),
            Self::Other { .. } => "check the registry's logs and the reference".into(),
        }
    }

    /// Whether the failure is the network's (worth retrying later), not the artifact's.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// The error and its sources, joined: reqwest hides the cause (connection refused, the TLS
/// alert) in `source()`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Checks a manifest is a WASM policy artifact and returns its module's descriptor: an OCI image
/// manifest, config [`WASM_CONFIG_MEDIA_TYPE`], exactly one layer of [`WASM_LAYER_MEDIA_TYPE`].
///
/// # Errors
/// The reason, as a sentence, for any other shape.
pub fn wasm_layer(manifest: &[u8]) -> Result<(OciImageManifest, OciDescriptor), String> {
    let parsed: OciImageManifest =
        serde_json::from_slice(manifest).map_err(|e| format!("not an OCI image manifest: {e}"))?;
    if parsed.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(format!(
            "config media type is {}, not {WASM_CONFIG_MEDIA_TYPE}",
            parsed.config.media_type
        ));
    }
    match parsed.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER_MEDIA_TYPE => {
            let layer = layer.clone();
            Ok((parsed, layer))
        }
        [layer] => Err(format!(
            "its layer's media type is {}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        )),
        layers => Err(format!("it has {} layers, not one", layers.len())),
    }
}

impl Pulled {
    /// Verifies a manifest and a module against each other and, when given, the pinned digest:
    /// the manifest's sha256 must be `pinned`, the module's the layer descriptor's (and its size).
    ///
    /// # Errors
    /// [`RegistryError::DigestMismatch`] or [`RegistryError::NotAPolicy`].
    pub fn verify(
        reference: &str,
        pinned: Option<&Digest>,
        manifest: Vec<u8>,
        wasm: Vec<u8>,
    ) -> Result<Self, RegistryError> {
        let manifest_digest = Digest::of(&manifest);
        if let Some(pinned) = pinned {
            pinned
                .verify(&manifest)
                .map_err(|mismatch| RegistryError::DigestMismatch {
                    reference: reference.to_string(),
                    what: "manifest",
                    detail: mismatch.to_string(),
                })?;
        }
        let (parsed, layer) =
            wasm_layer(&manifest).map_err(|reason| RegistryError::NotAPolicy {
                reference: reference.to_string(),
                reason,
            })?;
        let module_digest =
            Digest::parse(&layer.digest).map_err(|e| RegistryError::NotAPolicy {
                reference: reference.to_string(),
                reason: format!("its layer's {e}"),
            })?;
        module_digest
            .verify(&wasm)
            .map_err(|mismatch| RegistryError::DigestMismatch {
                reference: reference.to_string(),
                what: "module",
                detail: mismatch.to_string(),
            })?;
        if usize::try_from(layer.size).ok() != Some(wasm.len()) {
            return Err(RegistryError::NotAPolicy {
                reference: reference.to_string(),
                reason: format!(
                    "its layer says {} bytes, the module has {}",
                    layer.size,
                    wasm.len()
                ),
            });
        }
        Ok(Self {
            manifest,
            manifest_digest,
            module_digest,
            config_media_type: parsed.config.media_type,
            layer_media_type: layer.media_type,
            wasm,
        })
    }
}

/// A client for the registries of one set of [`RegistryOptions`].
#[derive(Clone)]
pub struct Registry {
    client: Arc<oci_client::Client>,
    options: RegistryOptions,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A client trusting the system's roots and `options.ca_file`, HTTPS except for
    /// `options.insecure_registries`.
    ///
    /// # Errors
    /// [`RegistryError::CaFile`] for an unreadable CA file, [`RegistryError::Other`] for a client
    /// that cannot be built (e.g. a CA file without a PEM certificate).
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        // reqwest is built without a provider of its own: rustls with ring, as the rest of supsvc.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut extra_root_certificates = Vec::new();
        if let Some(path) = &options.ca_file {
            let data = std::fs::read(path).map_err(|source| RegistryError::CaFile {
                path: path.clone(),
                source,
            })?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let protocol = if options.insecure_registries.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(options.insecure_registries.clone())
        };
        let config = ClientConfig {
            protocol,
            extra_root_certificates,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| RegistryError::Other {
            doing: "cannot set up the registry client for",
            reference: options
                .ca_file
                .as_deref()
                .map_or_else(String::new, |p: &Path| p.display().to_string()),
            message: chain(&e),
        })?;
        Ok(Self {
            client: Arc::new(client),
            options,
        })
    }

    /// The credentials sent to `registry`: the explicit ones, else the docker config's entry.
    ///
    /// # Errors
    /// [`RegistryError::Auth`] for an entry that does not decode.
    pub fn credentials(&self, registry: &str) -> Result<Credentials, RegistryError> {
        if let Some(credentials) = &self.options.credentials {
            return Ok(credentials.clone());
        }
        match &self.options.docker_config {
            Some(config) => Ok(config.credentials(registry)?),
            None => Ok(Credentials::Anonymous),
        }
    }

    fn auth(&self, reference: &PolicyRef) -> Result<(RegistryAuth, bool), RegistryError> {
        Ok(match self.credentials(reference.registry())? {
            Credentials::Anonymous => (RegistryAuth::Anonymous, true),
            Credentials::Basic { username, password } => {
                (RegistryAuth::Basic(username, password), false)
            }
        })
    }

    fn error(
        doing: &'static str,
        what: &'static str,
        reference: &PolicyRef,
        anonymous: bool,
        error: OciDistributionError,
    ) -> RegistryError {
        let registry = reference.registry().to_string();
        let reference_text = reference.to_string();
        let message = chain(&error);
        let any_code = |envelope: &oci_client::errors::OciEnvelope,
                        wanted: fn(&OciErrorCode) -> bool| {
            envelope.errors.iter().any(|e| wanted(&e.code))
        };
        match &error {
            // oci-client's own check of a digest it was given (a pinned manifest, a layer).
            OciDistributionError::DigestError(e) => RegistryError::DigestMismatch {
                reference: reference_text,
                what,
                detail: e.to_string(),
            },
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => RegistryError::Unauthorized {
                registry,
                reference: reference_text,
                message,
                anonymous,
            },
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => RegistryError::Unauthorized {
                registry,
                reference: reference_text,
                message,
                anonymous,
            },
            OciDistributionError::RegistryError { envelope, .. }
                if any_code(envelope, |c| {
                    matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                RegistryError::Unauthorized {
                    registry,
                    reference: reference_text,
                    message,
                    anonymous,
                }
            }
            OciDistributionError::ImageManifestNotFoundError(_)
            | OciDistributionError::ServerError { code: 404, .. } => RegistryError::NotFound {
                registry,
                reference: reference_text,
                message,
            },
            OciDistributionError::RegistryError { envelope, .. }
                if any_code(envelope, |c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) =>
            {
                RegistryError::NotFound {
                    registry,
                    reference: reference_text,
                    message,
                }
            }
            OciDistributionError::RequestError(e)
                if e.is_connect() || e.is_timeout() || e.is_request() =>
            {
                RegistryError::Unreachable {
                    registry,
                    reference: reference_text,
                    message,
                }
            }
            _ => RegistryError::Other {
                doing,
                reference: reference_text,
                message,
            },
        }
    }

    /// Pushes `wasm` as a WASM policy artifact at `reference` (Kubewarden's format: config
    /// `{}` of [`WASM_CONFIG_MEDIA_TYPE`], one layer of [`WASM_LAYER_MEDIA_TYPE`]), with the OCI
    /// `org.opencontainers.image.title` annotation on the layer when `title` is given.
    ///
    /// # Errors
    /// [`RegistryError`]: credentials refused, registry unreachable, a reference pinned to a
    /// digest (a push names a tag).
    pub async fn push(
        &self,
        wasm: &[u8],
        reference: &PolicyRef,
        title: Option<&str>,
    ) -> Result<Pushed, RegistryError> {
        let annotations = title.map(|title| {
            BTreeMap::from([(
                "org.opencontainers.image.title".to_string(),
                title.to_string(),
            )])
        });
        let layers = vec![ImageLayer::new(
            wasm.to_vec(),
            WASM_LAYER_MEDIA_TYPE.to_string(),
            annotations,
        )];
        let config = Config::new(b"{}".to_vec(), WASM_CONFIG_MEDIA_TYPE.to_string(), None);
        self.push_manifest(reference, layers, config, OCI_IMAGE_MEDIA_TYPE)
            .await?;
        // The digest of the manifest as stored: read back, not assumed from our serialisation.
        let pulled = self.pull(reference).await?;
        Ok(Pushed {
            reference: PolicyRef::parse(&format!("{reference}@{}", pulled.manifest_digest))
                .unwrap_or_else(|_| reference.at_digest(&pulled.manifest_digest)),
            manifest_digest: pulled.manifest_digest,
            module_digest: pulled.module_digest,
        })
    }

    /// Pushes an image of `config` (its media type `config_media_type`) and `layers` (bytes,
    /// media type) at `reference`, with a manifest of `manifest_media_type` (OCI's or Docker's v2
    /// schema 2: imgpkg bundles use Docker's), and returns the manifest's digest as the registry
    /// serves it.
    ///
    /// # Errors
    /// [`RegistryError`]: credentials refused, registry unreachable, a reference pinned to a digest.
    pub async fn push_image(
        &self,
        reference: &PolicyRef,
        config: (Vec<u8>, &str),
        layers: Vec<(Vec<u8>, &str)>,
        manifest_media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let layers: Vec<ImageLayer> = layers
            .into_iter()
            .map(|(data, media_type)| ImageLayer::new(data, media_type.to_string(), None))
            .collect();
        let config = Config::new(config.0, config.1.to_string(), None);
        self.push_manifest(reference, layers, config, manifest_media_type)
            .await?;
        self.resolve(reference).await
    }

    /// The blobs, then a manifest of `media_type` naming them, at `reference` (a tag).
    async fn push_manifest(
        &self,
        reference: &PolicyRef,
        layers: Vec<ImageLayer>,
        config: Config,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        if reference.pinned().is_some() {
            return Err(RegistryError::Other {
                doing: "cannot push to",
                reference: reference.to_string(),
                message: "a push names a tag, not a digest (the registry computes the digest)"
                    .into(),
            });
        }
        let (auth, anonymous) = self.auth(reference)?;
        let mut manifest = OciImageManifest::build(&layers, &config, None);
        manifest.media_type = Some(media_type.to_string());
        self.client
            .push(reference.oci(), &layers, config, &auth, Some(manifest))
            .await
            .map_err(|e| Self::error("cannot push", "manifest", reference, anonymous, e))?;
        Ok(())
    }

    /// Pulls the artifact at `reference` and verifies it ([`Pulled::verify`]): a pinned digest must
    /// be the manifest's, the module's digest the layer's.
    ///
    /// # Errors
    /// [`RegistryError`]: not found, credentials refused, unreachable, not a WASM policy, a digest
    /// mismatch.
    pub async fn pull(&self, reference: &PolicyRef) -> Result<Pulled, RegistryError> {
        let (auth, anonymous) = self.auth(reference)?;
        let fail = |what, e| Self::error("cannot pull", what, reference, anonymous, e);
        let (manifest, _) = self
            .client
            .pull_manifest_raw(reference.oci(), &auth, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(|e| fail("manifest", e))?;
        let manifest = manifest.to_vec();
        // The shape first: a blob is only fetched for a manifest that is a policy's.
        let (_, layer) = wasm_layer(&manifest).map_err(|reason| RegistryError::NotAPolicy {
            reference: reference.to_string(),
            reason,
        })?;
        let mut wasm = Vec::new();
        // oci-client checks the blob's digest as it streams (a mismatch is refused there), and
        // Pulled::verify checks it again with the manifest.
        self.client
            .pull_blob(reference.oci(), &layer, &mut wasm)
            .await
            .map_err(|e| fail("module", e))?;
        Pulled::verify(&reference.to_string(), reference.pinned(), manifest, wasm)
    }

    /// The manifest digest `reference`'s tag points at now (a HEAD request), for noticing a
    /// re-tagged policy without downloading it.
    ///
    /// # Errors
    /// [`RegistryError`]: not found, credentials refused, unreachable.
    pub async fn resolve(&self, reference: &PolicyRef) -> Result<Digest, RegistryError> {
        if let Some(pinned) = reference.pinned() {
            return Ok(pinned.clone());
        }
        let (auth, anonymous) = self.auth(reference)?;
        let digest = self
            .client
            .fetch_manifest_digest(reference.oci(), &auth)
            .await
            .map_err(|e| Self::error("cannot resolve", "manifest", reference, anonymous, e))?;
        Digest::parse(&digest).map_err(|e| RegistryError::Other {
            doing: "cannot resolve",
            reference: reference.to_string(),
            message: format!("the registry's {e}"),
        })
    }
}

/// Runs `future` to completion from synchronous code, on a runtime of its own in a scoped thread:
/// safe from any context, inside a tokio runtime (e.g. a `spawn_blocking` task) or outside one.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread tokio runtime builds")
                    .block_on(future)
            })
            .join()
            .expect("the registry thread does not panic")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config_type: &str, layers: &[(&str, &[u8])]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(media_type, bytes)| {
                serde_json::json!({
                    "mediaType": media_type,
                    "digest": Digest::of(bytes).to_string(),
                    "size": bytes.len(),
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "config": {"mediaType": config_type, "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn verifies_a_policy_artifact() {
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        let manifest = manifest(WASM_CONFIG_MEDIA_TYPE, &[(WASM_LAYER_MEDIA_TYPE, &wasm)]);
        let pinned = Digest::of(&manifest);
        let pulled = Pulled::verify("r", Some(&pinned), manifest.clone(), wasm.clone()).unwrap();
        assert_eq!(pulled.manifest_digest, pinned);
        assert_eq!(pulled.module_digest, Digest::of(&wasm));
        assert_eq!(pulled.layer_media_type, WASM_LAYER_MEDIA_TYPE);
        assert_eq!(pulled.config_media_type, WASM_CONFIG_MEDIA_TYPE);
        // Unpinned (a tag): the manifest's own digest is recorded.
        assert_eq!(
            Pulled::verify("r", None, manifest, wasm)
                .unwrap()
                .manifest_digest,
            pinned
        );
    }

    #[test]
    fn refuses_mismatched_digests() {
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        let manifest = manifest(WASM_CONFIG_MEDIA_TYPE, &[(WASM_LAYER_MEDIA_TYPE, &wasm)]);
        let other = Digest::of(b"another manifest");
        let error = Pulled::verify("r", Some(&other), manifest.clone(), wasm).unwrap_err();
        assert!(
            matches!(
                &error,
                RegistryError::DigestMismatch {
                    what: "manifest",
                    ..
                }
            ),
            "{error}"
        );
        let error = Pulled::verify("r", None, manifest, b"\0asm\x01\0\0\x01".to_vec()).unwrap_err();
        assert!(
            matches!(&error, RegistryError::DigestMismatch { what: "module", .. }),
            "{error}"
        );
        assert!(error.to_string().contains("refused"), "{error}");
    }

    #[test]
    fn refuses_what_is_not_a_policy() {
        let wasm: &[u8] = b"\0asm";
        let cases = [
            (
                manifest(
                    "application/vnd.oci.image.config.v1+json",
                    &[(WASM_LAYER_MEDIA_TYPE, wasm)],
                ),
                "config media type",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[("application/vnd.oci.image.layer.v1.tar+gzip", wasm)],
                ),
                "layer's media type",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[(WASM_LAYER_MEDIA_TYPE, wasm), (WASM_LAYER_MEDIA_TYPE, wasm)],
                ),
                "2 layers",
            ),
            (b"{}".to_vec(), "not an OCI image manifest"),
        ];
        for (manifest, expected) in cases {
            let error = wasm_layer(&manifest).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn block_on_works_inside_and_outside_a_runtime() {
        assert_eq!(block_on(async { 1 }), 1);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let inside = runtime.block_on(async { block_on(async { 2 }) });
        assert_eq!(inside, 2);
    }
}
