//! Tools from the distribution's packages that some tests run (qemu-user, wine, skopeo, umoci): the
//! tests install what they need, as CI starts from a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `command` (a name looked up on PATH, or an absolute path), installed from Debian's `package` with
/// apt-get when missing (the tests run as root; `apt-get update` first, once per process). Panics
/// with an `error:` and a `hint:` when it cannot be installed.
pub fn ensure_tool(command: &str, package: &str) -> PathBuf {
    static APT: Mutex<bool> = Mutex::new(false);
    if let Some(found) = find(command) {
        return found;
    }
    let mut updated = APT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find(command) {
        return found;
    }
    if !*updated {
        let status = Command::new("apt-get").args(["update", "-qq"]).status();
        *updated = matches!(status, Ok(s) if s.success());
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match (status, find(command)) {
        (Ok(s), Some(found)) if s.success() => found,
        (status, _) => panic!(
            "error: {command} is missing and installing Debian's {package} failed ({status:?})\n\
             hint: run `apt-get update && apt-get install -y {package}` as root"
        ),
    }
}

fn find(command: &str) -> Option<PathBuf> {
    let path = Path::new(command);
    if path.is_absolute() {
        return path.is_file().then(|| path.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
}
