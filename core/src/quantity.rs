//! Kubernetes resource quantities (`10Gi`, `500M`, `1.5`, `100m`, `1e3`): parsed, compared and printed as
//! the API server does, with exact integer arithmetic (never a float).
//!
//! The rules are `k8s.io/apimachinery/pkg/api/resource/quantity.go` (`ParseQuantity`,
//! `parseQuantityString`, `CanonicalizeBytes`) and `suffix.go`:
//!
//! - grammar: `[+-]? (digits | digits.digits | digits. | .digits) suffix`, where the suffix is a binary SI
//!   one (`Ki Mi Gi Ti Pi Ei`, powers of 1024), a decimal SI one (`n u m "" k M G T P E`, powers of 1000) or
//!   a decimal exponent (`e`/`E` and an integer: `1e3`, `5E-2`, `2e+6`). Nothing else: no spaces, no `K`,
//!   no `KB`/`MiB`. A text with a suffix or sign but no digit (`-`, `.`, `Gi`) reads as zero, as Go's
//!   scanner reads it;
//! - a non-zero value is rounded **away from zero** to a whole nano-unit (`0.1n` is `1n`), and a binary-SI
//!   value is capped at 2^63-1;
//! - the value keeps the kind of suffix it was written with ([`Format`]), which only matters for printing:
//!   the canonical form ([`Quantity::canonical`], also `Display`) has no fractional digits, loses no
//!   precision, and uses the largest suffix of that kind (`1.5` is `1500m`, `1.5Gi` is `1536Mi`,
//!   `2048Mi` is `2Gi`); a binary value below 1024 in magnitude or not a whole number prints in decimal SI;
//! - two quantities are equal when their values are (`apiequality.Semantic.DeepEqual` compares them with
//!   `Cmp`), whatever their formats: `2Gi == 2048Mi == 2147483648`, `1k == 1000 == 1e3`.
//!
//! Values are held as an `i128` count of nano-units, so every value up to about 1.7·10^29 in magnitude is
//! exact; larger ones (which Kubernetes keeps in arbitrary precision) are refused as out of range.

use std::cmp::Ordering;
use std::fmt;

/// How a quantity was written, and so how it prints (`resource.Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12Mi`: powers of 1024.
    BinarySI,
    /// `12M`, `12`, `12m`: powers of 1000.
    DecimalSI,
    /// `12e6`.
    DecimalExponent,
}

/// Why a text is not a quantity; the messages are the API server's (`ErrFormatWrong`, `ErrNumeric`,
/// `ErrSuffix`), plus the range this type can hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not have a quantity's shape (`ErrFormatWrong`): empty, spaces, an unknown
    /// character.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// The number before the suffix cannot be read (`ErrNumeric`).
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is made of suffix characters but is none of the binary SI, decimal SI or
    /// decimal-exponent ones (`ErrSuffix`), e.g. `1K`; other characters (`1MiB`) are [`Self::Format`].
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The value is beyond what this type holds exactly: more than about 1.7e29 in magnitude.
    #[error("quantity is out of range (more than about 1.7e29 in magnitude)")]
    Range,
}

/// A Kubernetes quantity: an exact value in nano-units and the format it prints in.
///
/// Equality, ordering and hashing are by value only (`2Gi == 2048Mi`).
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

const NANO: i128 = 1_000_000_000;

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}
impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

/// The suffix's base, exponent and format (`suffix.go` `interpret`).
fn interpret(suffix: &str) -> Option<(i128, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            // strconv.ParseInt: an optional sign, then digits.
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // The exponent must fit the int32 scale, negatable: [-MaxInt32, MaxInt32].
            let e: i32 = rest.parse().ok().filter(|e| *e != i32::MIN)?;
            Some((10, e, Format::DecimalExponent))
        }
    }
}

/// Go's `parseQuantityString`: (positive, integer digits, fraction digits, suffix).
fn scan(s: &str) -> Result<(bool, &str, &str, &str), QuantityError> {
    let b = s.as_bytes();
    let mut pos = 0;
    let positive = match b.first() {
        Some(b'-') => {
            pos = 1;
            false
        }
        Some(b'+') => {
            pos = 1;
            true
        }
        _ => true,
    };
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits_from(pos);
    let int = &s[pos..int_end];
    let mut pos = int_end;
    let mut frac = "";
    if pos < b.len() && b[pos] == b'.' {
        let end = digits_from(pos + 1);
        frac = &s[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && matches!(b[pos], b'+' | b'-') {
        pos += 1;
    }
    if digits_from(pos) != b.len() {
        return Err(QuantityError::Format);
    }
    Ok((positive, int, frac, &s[suffix_start..]))
}

/// `digits` as a non-negative integer; `None` past `i128`.
fn digits_value(digits: &str) -> Option<i128> {
    digits.bytes().try_fold(0i128, |acc, d| {
        acc.checked_mul(10)?.checked_add(i128::from(d - b'0'))
    })
}

/// 10^e as `i128`, for 0 <= e <= 38.
fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

impl Quantity {
    /// Parses `text` exactly as the API server's `resource.ParseQuantity` (no surrounding spaces).
    ///
    /// # Errors
    /// [`QuantityError`] with the API server's message, or [`QuantityError::Range`] for a value beyond
    /// about 1.7·10^29.
    ///
    /// ```rust
    /// use supsvc_core::quantity::{Quantity, QuantityError};
    ///
    /// let q = Quantity::parse("10Gi").unwrap();
    /// assert_eq!(q.units_exact(), Some(10 * 1024 * 1024 * 1024)); // bytes, for a storage request
    /// assert_eq!(q, Quantity::parse("10240Mi").unwrap()); // compared by value
    /// assert_eq!(Quantity::parse("100m").unwrap().nanos(), 100_000_000); // 0.1 of a unit (CPU: 0.1 core)
    /// assert_eq!(Quantity::parse("1.5").unwrap().canonical(), "1500m");
    /// assert_eq!(Quantity::parse("1K"), Err(QuantityError::Suffix));
    /// assert_eq!(Quantity::parse("1MiB"), Err(QuantityError::Format));
    /// assert_eq!(Quantity::parse(" 1"), Err(QuantityError::Format));
    /// ```
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Format);
        }
        let (positive, int, frac, suffix) = scan(text)?;
        let (base, exponent, mut format) = interpret(suffix).ok_or(QuantityError::Suffix)?;
        if int.is_empty() && frac.is_empty() {
            // No digit at all (`-`, `.`, `Gi`): Go's fast path reads zero; its slow path (a binary suffix of
            // Pi or more, a decimal scale below nano) hands the text to inf.Dec, which cannot read it.
            let slow = match format {
                Format::BinarySI => 15 - 1 - (exponent * 3 / 10) - 1 < 0,
                _ => exponent < -9,
            };
            if slow {
                return Err(QuantityError::Numeric);
            }
        }
        // The written number as mantissa / 10^frac.len(), in nanos after the suffix, rounded away from zero.
        let int = int.trim_start_matches('0');
        let frac_trimmed = frac.trim_end_matches('0');
        let mantissa = digits_value(&format!("{int}{frac_trimmed}")).ok_or(QuantityError::Range)?;
        let frac_digits = i32::try_from(frac_trimmed.len()).map_err(|_| QuantityError::Range)?;
        // value = mantissa * 10^(-frac_digits) * (base^exponent); nanos = value * 10^9.
        let (num, den): (i128, i128) = if mantissa == 0 {
            (0, 1)
        } else if base == 10 {
            let e = i64::from(exponent) + 9 - i64::from(frac_digits);
            if e >= 0 {
                let p = u32::try_from(e)
                    .ok()
                    .and_then(pow10)
                    .ok_or(QuantityError::Range)?;
                (mantissa.checked_mul(p).ok_or(QuantityError::Range)?, 1)
            } else {
                // Below a nano: any non-zero remainder rounds up to 1n.
                match u32::try_from(e.unsigned_abs()).ok().and_then(pow10) {
                    Some(p) => (mantissa, p),
                    None => (1, 1),
                }
            }
        } else {
            let p = pow10(9).expect("10^9") << exponent;
            let m = mantissa.checked_mul(p).ok_or(QuantityError::Range)?;
            match pow10(frac_digits as u32) {
                Some(d) => (m, d),
                None => return Err(QuantityError::Range),
            }
        };
        let mut nanos = num / den + i128::from(num % den != 0);
        if format == Format::BinarySI {
            // A binary-SI value is capped at the int64 maximum (maxAllowed).
            nanos = nanos.min(i128::from(i64::MAX) * NANO);
            if nanos > 0 && nanos < NANO {
                format = Format::DecimalSI;
            }
        }
        Ok(Quantity {
            nanos: if positive { nanos } else { -nanos },
            format,
        })
    }

    /// A whole number of units (bytes, cores ...) in `format`.
    pub fn from_units(units: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(units) * NANO,
            format,
        }
    }

    /// The value in nano-units (`1` is 10^9, `1m` is 10^6): exact.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// How it was written, so how it prints.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The value in whole units (bytes for memory and storage), rounded up as `Quantity.Value()` does.
    pub fn units_ceil(&self) -> i128 {
        let q = self.nanos / NANO;
        if self.nanos % NANO > 0 { q + 1 } else { q }
    }

    /// The value in whole units when it is one (`1.5` is not).
    pub fn units_exact(&self) -> Option<i128> {
        (self.nanos % NANO == 0).then_some(self.nanos / NANO)
    }

    /// The sum, in the format of `self`; `None` when out of range.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nanos: self.nanos.checked_add(other.nanos)?,
            format: self.format,
        })
    }

    /// The difference, in the format of `self`; `None` when out of range.
    pub fn checked_sub(self, other: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nanos: self.nanos.checked_sub(other.nanos)?,
            format: self.format,
        })
    }

    /// `factor` times the value; `None` when out of range.
    pub fn checked_mul(self, factor: i64) -> Option<Quantity> {
        Some(Quantity {
            nanos: self.nanos.checked_mul(i128::from(factor))?,
            format: self.format,
        })
    }

    /// The canonical form the API server prints and stores (`CanonicalizeBytes`): see the module docs.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".into();
        }
        if self.format == Format::BinarySI
            && self.nanos.unsigned_abs() >= 1024 * NANO.unsigned_abs()
            && self.nanos % NANO == 0
        {
            let mut units = self.nanos / NANO;
            let mut exp = 0;
            while units % 1024 == 0 {
                units /= 1024;
                exp += 1;
            }
            // Past Ei there is no binary suffix: the exact decimal form below.
            if let Some(suffix) = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].get(exp) {
                return format!("{units}{suffix}");
            }
        }
        // Decimal: mantissa * 10^exp with exp a multiple of 3, as large as possible.
        let mut mantissa = self.nanos;
        let mut exp: i32 = -9;
        while mantissa % 1000 == 0 {
            mantissa /= 1000;
            exp += 3;
        }
        let suffix = match (self.format, exp) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{mantissa}{suffix}")
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

/// The fields of the Kubernetes API that hold a resource list (`ResourceList`: resource name to
/// quantity): `requests`, `limits` (containers, claims), `capacity`, `allocatable` (Nodes, PVs,
/// claims' status), `hard`, `used` (ResourceQuotas), `overhead` (RuntimeClass, Pods). With
/// `sizeLimit`, they are where the API server reads quantities and compares them by value.
pub const RESOURCE_LISTS: [&str; 7] = [
    "requests",
    "limits",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "overhead",
];

#[cfg(test)]
mod tests;
