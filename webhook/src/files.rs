//! Noticing that files changed, by size and modification time (cheap enough to poll every
//! second; follows the symlinks Kubernetes ConfigMap and Secret volumes swap).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Size and mtime of each file, `None` for a file that cannot be read.
pub type Fingerprint = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

pub fn fingerprint<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Fingerprint {
    paths
        .into_iter()
        .map(|path| {
            let path = path.as_ref();
            let stamp = std::fs::metadata(path).ok().map(|meta| {
                (
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                )
            });
            (path.to_path_buf(), stamp)
        })
        .collect()
}
