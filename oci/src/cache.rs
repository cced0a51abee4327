//! Pulled modules on disk, by digest: `<dir>/manifests/sha256/<hex>` (the manifest as served) and
//! `<dir>/blobs/sha256/<hex>` (the module), the OCI image layout's content-addressed naming.
//! Everything read back is verified again ([`Pulled::verify`]): a corrupt or tampered entry is a
//! miss, never loaded.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::registry::Pulled;

/// A directory of verified pulls.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

/// Where a manifest with this digest is kept, relative to the cache directory.
pub fn manifest_key(digest: &Digest) -> PathBuf {
    Path::new("manifests/sha256").join(digest.hex())
}

/// Where a module (a layer) with this digest is kept, relative to the cache directory.
pub fn blob_key(digest: &Digest) -> PathBuf {
    Path::new("blobs/sha256").join(digest.hex())
}

impl ModuleCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pull of the manifest with digest `manifest_digest`, verified; `None` when absent or
    /// when what is on disk does not verify (then it is removed, to be pulled again).
    pub fn get(&self, reference: &str, manifest_digest: &Digest) -> Option<Pulled> {
        let manifest_path = self.dir.join(manifest_key(manifest_digest));
        let manifest = std::fs::read(&manifest_path).ok()?;
        let Ok((_, layer)) = crate::registry::wasm_layer(&manifest) else {
            let _ = std::fs::remove_file(&manifest_path);
            return None;
        };
        let module_digest = Digest::parse(&layer.digest).ok()?;
        let blob_path = self.dir.join(blob_key(&module_digest));
        let wasm = std::fs::read(&blob_path).ok()?;
        match Pulled::verify(reference, Some(manifest_digest), manifest, wasm) {
            Ok(pulled) => Some(pulled),
            Err(_) => {
                let _ = std::fs::remove_file(&manifest_path);
                let _ = std::fs::remove_file(&blob_path);
                None
            }
        }
    }

    /// Stores a verified pull: the module first, then its manifest, each written to a temporary
    /// file and renamed, so an interrupted write leaves no entry that [`ModuleCache::get`] takes.
    ///
    /// # Errors
    /// The I/O error of creating the directories or writing.
    pub fn put(&self, pulled: &Pulled) -> std::io::Result<()> {
        write_atomically(
            &self.dir.join(blob_key(&pulled.module_digest)),
            &pulled.wasm,
        )?;
        write_atomically(
            &self.dir.join(manifest_key(&pulled.manifest_digest)),
            &pulled.manifest,
        )
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};

    fn pulled(wasm: &[u8]) -> Pulled {
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": WASM_CONFIG_MEDIA_TYPE, "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": Digest::of(wasm).to_string(), "size": wasm.len()}],
        }))
        .unwrap();
        Pulled::verify("r", None, manifest, wasm.to_vec()).unwrap()
    }

    #[test]
    fn keys_are_content_addressed() {
        let digest = Digest::of(b"");
        assert_eq!(
            manifest_key(&digest),
            PathBuf::from(format!("manifests/sha256/{}", digest.hex()))
        );
        assert_eq!(
            blob_key(&digest),
            PathBuf::from(format!("blobs/sha256/{}", digest.hex()))
        );
    }

    #[test]
    fn round_trips_and_refuses_tampered_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::new(dir.path());
        let entry = pulled(b"\0asm\x01\0\0\0");
        assert_eq!(cache.get("r", &entry.manifest_digest), None);
        cache.put(&entry).unwrap();
        assert_eq!(cache.get("r", &entry.manifest_digest), Some(entry.clone()));

        // Another module under the same name: not loaded, and dropped from the cache.
        let blob = dir.path().join(blob_key(&entry.module_digest));
        std::fs::write(&blob, b"\0asm\x01\0\0\x01").unwrap();
        assert_eq!(cache.get("r", &entry.manifest_digest), None);
        assert!(!blob.exists());
    }
}
