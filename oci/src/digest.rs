//! sha256 content digests (`sha256:<64 lowercase hex>`, the OCI image spec's descriptor digest)
//! and their verification.

use sha2::{Digest as _, Sha256};

/// A sha256 digest. Only sha256: the algorithm every registry and Kubewarden use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// A digest string of the wrong form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("digest {0:?} is not sha256:<64 lowercase hex digits>")]
pub struct DigestSyntaxError(pub String);

/// Bytes whose digest is not the one expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("digest mismatch: expected {expected}, got {actual}")]
pub struct DigestMismatch {
    /// The digest the bytes should have (pinned, or the manifest's descriptor).
    pub expected: Digest,
    /// The digest they have.
    pub actual: Digest,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>` (OCI image spec, "Digests": sha256 is lowercase hex).
    ///
    /// # Errors
    /// [`DigestSyntaxError`] for another algorithm, length or alphabet.
    pub fn parse(text: &str) -> Result<Self, DigestSyntaxError> {
        let hex = text
            .strip_prefix("sha256:")
            .filter(|hex| {
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .ok_or_else(|| DigestSyntaxError(text.to_string()))?;
        Ok(Self {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Checks that `bytes` have this digest.
    ///
    /// # Errors
    /// [`DigestMismatch`] naming both digests when they differ.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), DigestMismatch> {
        let actual = Self::of(bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(DigestMismatch {
                expected: self.clone(),
                actual,
            })
        }
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_bytes() {
        // sha256("") from FIPS 180-2's test vectors.
        let empty = Digest::of(b"");
        assert_eq!(
            empty.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&empty.to_string()).unwrap(), empty);
        assert_eq!(empty.verify(b""), Ok(()));
        let mismatch = empty.verify(b"x").unwrap_err();
        assert_eq!(mismatch.expected, empty);
        assert_eq!(mismatch.actual, Digest::of(b"x"));
        assert!(mismatch.to_string().contains("expected sha256:e3b0"));
    }

    #[test]
    fn refuses_other_forms() {
        let upper = format!("sha256:{}", "A".repeat(64));
        for text in [
            "",
            "sha256:",
            "sha256:abc",
            "md5:00",
            upper.as_str(),
            &"0".repeat(64),
        ] {
            assert!(Digest::parse(text).is_err(), "{text}");
        }
    }
}
