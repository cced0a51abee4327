//! Memory limits for a policy's linear memory, written as Kubernetes quantities.

use supsvc_core::quantity::Quantity;

/// A memory size read as Kubernetes reads a quantity (supsvc-core's [`Quantity`], the rules of
/// k8s.io/apimachinery `resource.ParseQuantity`), in bytes: `16Mi` is 16·2^20, `16M` is 16·10^6 (not
/// 16 MiB), `512Ki`, `1Gi`, `1048576`, `1e6`.
///
/// # Errors
/// Text that is not a quantity (with a suggestion for the usual non-Kubernetes spellings: `16MiB`,
/// `16MB`, `16K`), a fraction of a byte, a negative size, or one larger than the address space.
pub fn parse_memory_quantity(text: &str) -> Result<usize, MemoryLimitError> {
    let text = text.trim();
    let owned = || text.to_owned();
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return Err(MemoryLimitError::NotANumber { text: owned() });
    }
    let quantity = Quantity::parse(text).map_err(|e| {
        let digits = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let instead = match unit {
            "KiB" | "K" => Some(format!("{number}Ki")),
            "MiB" => Some(format!("{number}Mi")),
            "GiB" => Some(format!("{number}Gi")),
            "KB" | "kB" => Some(format!("{number}k (10^3 bytes) or {number}Ki (2^10)")),
            "MB" => Some(format!("{number}M (10^6 bytes) or {number}Mi (2^20)")),
            "GB" => Some(format!("{number}G (10^9 bytes) or {number}Gi (2^30)")),
            _ => None,
        };
        match instead {
            Some(instead) => MemoryLimitError::NotKubernetes {
                text: owned(),
                instead,
            },
            None => MemoryLimitError::UnknownUnit {
                text: owned(),
                unit: unit.to_owned(),
                reason: e.to_string(),
            },
        }
    })?;
    let bytes = quantity
        .units_exact()
        .ok_or_else(|| MemoryLimitError::Fractional {
            text: owned(),
            quantity: quantity.to_string(),
        })?;
    if bytes < 0 {
        return Err(MemoryLimitError::Negative { text: owned() });
    }
    usize::try_from(bytes).map_err(|_| MemoryLimitError::TooLarge { text: owned() })
}

/// Why a memory limit is refused ([`parse_memory_quantity`]); `text` is the limit as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryLimitError {
    #[error(
        "memory limit {text:?} is not a number with an optional unit (a Kubernetes quantity: 64Mi, 512Ki, 1Gi)"
    )]
    NotANumber { text: String },
    /// A usual non-Kubernetes spelling (`16MiB`, `16MB`, `16K`); `instead` is the quantity meant.
    #[error("memory limit {text:?} is not a Kubernetes quantity: write {instead}")]
    NotKubernetes { text: String, instead: String },
    #[error(
        "memory limit {text:?} has an unknown unit {unit:?} ({reason}; use Ki, Mi, Gi for powers of 1024, k, M, G for powers of 1000)"
    )]
    UnknownUnit {
        text: String,
        unit: String,
        reason: String,
    },
    #[error("memory limit {text:?} is not a whole number of bytes ({quantity})")]
    Fractional { text: String, quantity: String },
    #[error("memory limit {text:?} is negative")]
    Negative { text: String },
    #[error("memory limit {text:?} is too large")]
    TooLarge { text: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities() {
        let cases = [
            ("1048576", Ok(1 << 20)),
            ("16Mi", Ok(16 << 20)),
            // As Kubernetes reads it: M is 10^6, not 2^20.
            ("16M", Ok(16_000_000)),
            ("512Ki", Ok(512 << 10)),
            ("1Gi", Ok(1 << 30)),
            ("0.5Gi", Ok(512 << 20)),
            ("1e6", Ok(1_000_000)),
            ("64k", Ok(64_000)),
            (" 16Mi ", Ok(16 << 20)),
            ("16MiB", Err("write 16Mi")),
            ("16K", Err("write 16Ki")),
            ("16MB", Err("write 16M (10^6 bytes) or 16Mi")),
            ("16Qi", Err("unknown unit")),
            ("1.5", Err("whole number of bytes")),
            ("-1Mi", Err("negative")),
            ("Mi", Err("not a number")),
            ("", Err("not a number")),
        ];
        for (text, expected) in cases {
            match (parse_memory_quantity(text), expected) {
                (Ok(bytes), Ok(want)) => assert_eq!(bytes, want, "{text}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
