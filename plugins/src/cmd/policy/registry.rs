//! `kubectl supsvc policy push|pull`: a `.wasm` policy to and from an OCI registry, in
//! Kubewarden's artifact format (`kwctl push|pull` interoperate), through [`supsvc_oci`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

use supsvc_oci::auth::default_docker_config_path;
use supsvc_oci::{Credentials, DockerConfig, PolicyRef, Registry, RegistryError, RegistryOptions};

use super::{PullArgs, PushArgs, RegistryAccess};
use crate::error::{Failure, Result};

fn failure(error: &RegistryError) -> Failure {
    Failure::new(error.to_string(), error.hint())
}

fn reference(text: &str) -> Result<PolicyRef> {
    PolicyRef::parse(text).map_err(|e| Failure::usage(e.to_string(), e.hint()))
}

/// The credentials and trust of `access`: `$SUPSVC_REGISTRY_USERNAME`/`_PASSWORD` for every
/// registry, else the docker config.json (`--registry-config`, `$DOCKER_CONFIG/config.json`,
/// `~/.docker/config.json`; a missing default file means anonymous).
pub(crate) fn client(access: &RegistryAccess) -> Result<Registry> {
    let docker_config = match &access.registry_config {
        Some(path) => Some(DockerConfig::load(path).map_err(|e| {
            Failure::usage(
                e.to_string(),
                "give a docker config.json ({\"auths\": {\"HOST\": {\"auth\": base64(user:password)}}}), \
                 e.g. the one `docker login` writes, or a Secret's .dockerconfigjson",
            )
        })?),
        None => default_docker_config_path(
            std::env::var("DOCKER_CONFIG").ok().as_deref(),
            std::env::var("HOME").ok().as_deref(),
        )
        .filter(|path| path.exists())
        .map(|path| DockerConfig::load(&path))
        .transpose()
        .map_err(|e| Failure::new(e.to_string(), "fix the file, or name another with --registry-config"))?,
    };
    let credentials = match (
        std::env::var("SUPSVC_REGISTRY_USERNAME"),
        std::env::var("SUPSVC_REGISTRY_PASSWORD"),
    ) {
        (Ok(username), Ok(password)) => Some(Credentials::Basic { username, password }),
        _ => None,
    };
    Registry::new(RegistryOptions {
        ca_file: access.registry_ca_file.clone(),
        insecure_registries: access.insecure_registry.clone(),
        docker_config,
        credentials,
    })
    .map_err(|e| failure(&e))
}

/// Whether `bytes` start as a WebAssembly binary module does (`\0asm`, version 1).
pub fn is_wasm_module(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm\x01\0\0\0")
}

pub fn push(args: &PushArgs) -> Result<()> {
    let reference = reference(&args.reference)?;
    let wasm = std::fs::read(&args.module).map_err(|e| {
        Failure::usage(
            format!("cannot read {}: {e}", args.module.display()),
            "give the path of a .wasm policy module",
        )
    })?;
    if !is_wasm_module(&wasm) {
        return Err(Failure::usage(
            format!(
                "{} is not a WebAssembly module (no \\0asm header)",
                args.module.display()
            ),
            "push the .wasm file the policy's build produces (target/wasm32-*/release/*.wasm)",
        ));
    }
    let registry = client(&args.access)?;
    let title = args.module.file_name().and_then(|name| name.to_str());
    let pushed = supsvc_oci::registry::block_on(registry.push(&wasm, &reference, title))
        .map_err(|e| failure(&e))?;
    outln!("pushed {}", pushed.reference);
    outln!("module {} ({} bytes)", pushed.module_digest, wasm.len());
    Ok(())
}

pub fn pull(args: &PullArgs) -> Result<()> {
    let reference = reference(&args.reference)?;
    let registry = client(&args.access)?;
    let pulled =
        supsvc_oci::registry::block_on(registry.pull(&reference)).map_err(|e| failure(&e))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(reference.file_name()));
    write_atomically(&output, &pulled.wasm).map_err(|e| {
        Failure::new(
            format!("cannot write {}: {e}", output.display()),
            "check the directory exists and is writable",
        )
    })?;
    match reference.pinned() {
        Some(_) => outln!("pulled {reference}"),
        None => outln!("pulled {reference}@{}", pulled.manifest_digest),
    }
    outln!(
        "module {} ({} bytes) -> {}",
        pulled.module_digest,
        pulled.wasm.len(),
        output.display()
    );
    Ok(())
}

/// Writes beside the target and renames: an interrupted pull leaves no half-written module.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_wasm_modules() {
        assert!(is_wasm_module(b"\0asm\x01\0\0\0"));
        assert!(!is_wasm_module(b"(module)"));
        assert!(!is_wasm_module(b"\0asm\x0d\0\x01\0"));
    }
}
