//! TLS with a certificate and key reloaded from disk when the files change (cert-manager and
//! Kubernetes secret volumes rotate them in place).

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;
use crate::files::{Fingerprint, fingerprint};

/// Serves the current certificate; [`ReloadingCertificate::reload_if_changed`] swaps it.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
    seen: Mutex<Fingerprint>,
}

impl ReloadingCertificate {
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let seen = fingerprint([&files.cert_file, &files.key_file]);
        let key = load_certified_key(&files)?;
        Ok(Self {
            files,
            current: ArcSwap::from_pointee(key),
            seen: Mutex::new(seen),
        })
    }

    /// Reloads when either file changed. A pair that does not load keeps the current one.
    pub fn reload_if_changed(&self) {
        let now = fingerprint([&self.files.cert_file, &self.files.key_file]);
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if *seen == now {
            return;
        }
        *seen = now;
        match load_certified_key(&self.files) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                tracing::info!(cert = %self.files.cert_file.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::error!("keeping the current TLS certificate: {e:#}"),
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

pub fn load_certified_key(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let cert_pem = std::fs::read(&files.cert_file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", files.cert_file.display()))?;
    let key_pem = std::fs::read(&files.key_file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", files.key_file.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.cert_file.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate", files.cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.key_file.display()))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", files.key_file.display()))?;
    Ok(CertifiedKey::new(chain, signing_key))
}

/// rustls with the ring provider, HTTP/2 and HTTP/1.1.
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
