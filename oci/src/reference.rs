//! Policy references: `registry://host[:port]/repository[:tag][@sha256:<64 hex>]`, the form
//! Kubewarden's policy sources use (`registry://ghcr.io/kubewarden/policies/pod-privileged:v0.2.1`).

use crate::digest::Digest;
use oci_client::Reference;

/// The scheme that marks a policy module as living in a registry rather than on disk.
pub const SCHEME: &str = "registry://";

/// A policy artifact in a registry: where it is, and the manifest digest it is pinned to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    reference: Reference,
    pinned: Option<Digest>,
}

/// Why a reference is refused; `Display` says what was wrong, [`RefError::hint`] what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy reference {text:?}: {reason}")]
pub struct RefError {
    /// The reference as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RefError {
    /// What to write instead.
    pub fn hint(&self) -> &'static str {
        "write registry://HOST[:PORT]/REPOSITORY:TAG or registry://HOST[:PORT]/REPOSITORY@sha256:<64 hex digits>, \
         e.g. registry://registry.example.com:5000/policies/registry-guard:v1"
    }
}

impl PolicyRef {
    /// Parses a reference with or without the `registry://` scheme (the CLI takes both; a webhook
    /// configuration tells modules apart by the scheme, see [`PolicyRef::parse_module`]).
    ///
    /// A reference without a tag or digest means `:latest`, as for images. The registry host must
    /// be explicit (a first path component with a `.` or `:`, or `localhost`): a policy source
    /// never silently means Docker Hub.
    ///
    /// # Errors
    /// [`RefError`] for a reference the OCI grammar refuses, an implicit registry, or a digest
    /// that is not `sha256:` with 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, RefError> {
        let refuse = |reason: &str| RefError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let bare = text.strip_prefix(SCHEME).unwrap_or(text);
        if bare.contains("://") {
            return Err(refuse("only the registry:// scheme is supported"));
        }
        let first = bare.split('/').next().unwrap_or_default();
        if !bare.contains('/')
            || !(first.contains('.') || first.contains(':') || first == "localhost")
        {
            return Err(refuse(
                "name the registry host first (HOST[:PORT]/REPOSITORY), Docker Hub is never implied",
            ));
        }
        let reference: Reference = bare.parse().map_err(|e| refuse(&format!("{e}")))?;
        let pinned = match reference.digest() {
            Some(digest) => Some(Digest::parse(digest).map_err(|e| refuse(&e.to_string()))?),
            None => None,
        };
        Ok(Self { reference, pinned })
    }

    /// `Some` for a module source written with the `registry://` scheme, `None` for a file path.
    pub fn parse_module(module: &str) -> Option<Result<Self, RefError>> {
        module.starts_with(SCHEME).then(|| Self::parse(module))
    }

    /// The registry host, with its port if given (`127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The repository path inside the registry (`policies/registry-guard`).
    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// The tag, if written (`latest` is implied when neither tag nor digest is).
    pub fn tag(&self) -> Option<&str> {
        self.reference.tag()
    }

    /// The manifest digest the reference is pinned to (`@sha256:...`).
    pub fn pinned(&self) -> Option<&Digest> {
        self.pinned.as_ref()
    }

    /// The same repository at exactly this manifest digest (what a resolved tag is pulled as).
    pub fn at_digest(&self, digest: &Digest) -> Self {
        Self {
            reference: Reference::with_digest(
                self.registry().to_string(),
                self.repository().to_string(),
                digest.to_string(),
            ),
            pinned: Some(digest.clone()),
        }
    }

    /// The reference `oci-client` speaks.
    pub fn oci(&self) -> &Reference {
        &self.reference
    }

    /// A file name for a pulled module: the repository's last component with `.wasm`.
    pub fn file_name(&self) -> String {
        let last = self.repository().rsplit('/').next().unwrap_or("policy");
        format!("{last}.wasm")
    }
}

impl std::fmt::Display for PolicyRef {
    /// `registry://host/repo:tag`, `registry://host/repo@sha256:...` or both.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry(), self.repository())?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.pinned {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_tags_digests_and_ports() {
        let tagged = PolicyRef::parse("registry://127.0.0.1:5000/policies/guard:v1").unwrap();
        assert_eq!(tagged.registry(), "127.0.0.1:5000");
        assert_eq!(tagged.repository(), "policies/guard");
        assert_eq!(tagged.tag(), Some("v1"));
        assert_eq!(tagged.pinned(), None);
        assert_eq!(
            tagged.to_string(),
            "registry://127.0.0.1:5000/policies/guard:v1"
        );
        assert_eq!(tagged.file_name(), "guard.wasm");

        let pinned = PolicyRef::parse(&format!("reg.example.com/guard@sha256:{HEX}")).unwrap();
        assert_eq!(pinned.pinned().unwrap().hex(), HEX);
        assert_eq!(
            pinned.to_string(),
            format!("registry://reg.example.com/guard@sha256:{HEX}")
        );

        let both = PolicyRef::parse(&format!("registry://localhost/a/b:v2@sha256:{HEX}")).unwrap();
        assert_eq!(both.tag(), Some("v2"));
        assert!(both.pinned().is_some());

        let latest = PolicyRef::parse("registry://reg.example.com/guard").unwrap();
        assert_eq!(latest.tag(), Some("latest"));
    }

    #[test]
    fn at_digest_pins_the_same_repository() {
        let tagged = PolicyRef::parse("registry://reg.example.com:443/p/guard:v1").unwrap();
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let pinned = tagged.at_digest(&digest);
        assert_eq!(pinned.pinned(), Some(&digest));
        assert_eq!(pinned.repository(), "p/guard");
        assert_eq!(pinned.registry(), "reg.example.com:443");
    }

    #[test]
    fn module_sources_are_told_apart_by_the_scheme() {
        assert!(PolicyRef::parse_module("guard.wasm").is_none());
        assert!(PolicyRef::parse_module("/abs/guard.wasm").is_none());
        assert!(
            PolicyRef::parse_module("registry://reg.example.com/guard:v1")
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn refuses_bad_references_saying_why() {
        let cases = [
            ("registry://guard:v1", "registry host"),
            ("registry://library/guard:v1", "registry host"),
            ("https://reg.example.com/guard:v1", "registry://"),
            (
                "registry://reg.example.com/Guard:v1",
                "invalid policy reference",
            ),
            (
                "registry://reg.example.com/guard@sha256:abc",
                "invalid policy reference",
            ),
        ];
        for (text, expected) in cases {
            let error = PolicyRef::parse(text).unwrap_err();
            assert!(error.to_string().contains(expected), "{text}: {error}");
            assert!(error.hint().contains("registry://"));
        }
        // A digest of another algorithm is valid OCI, but not one supsvc verifies.
        let sha512 = format!(
            "registry://reg.example.com/guard@sha512:{}",
            "0".repeat(128)
        );
        let error = PolicyRef::parse(&sha512).unwrap_err();
        assert!(error.to_string().contains("sha256:<64"), "{error}");
    }
}
