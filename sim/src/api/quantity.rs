//! Resource quantities (`10Gi`, `500M`, `1.5Ti`), compared exactly as the API server compares them.

/// A quantity in nano-units: exact for every suffix the API accepts up to `Ei`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i128);

impl Quantity {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(split);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
            || frac_part.len() > 9
        {
            return None;
        }
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let frac: i128 = if frac_part.is_empty() {
            0
        } else {
            format!("{frac_part:0<9}").parse().ok()?
        };
        let nanos = int.checked_mul(1_000_000_000)?.checked_add(frac)?;
        let (mul, div): (i128, i128) = match suffix {
            "" => (1, 1),
            "n" => (1, 1_000_000_000),
            "u" => (1, 1_000_000),
            "m" => (1, 1_000),
            "k" => (1_000, 1),
            "M" => (1_000_000, 1),
            "G" => (1_000_000_000, 1),
            "T" => (1_000_000_000_000, 1),
            "P" => (1_000_000_000_000_000, 1),
            "E" => (1_000_000_000_000_000_000, 1),
            "Ki" => (1 << 10, 1),
            "Mi" => (1 << 20, 1),
            "Gi" => (1 << 30, 1),
            "Ti" => (1 << 40, 1),
            "Pi" => (1 << 50, 1),
            "Ei" => (1 << 60, 1),
            exp if exp.starts_with(['e', 'E']) => {
                let e: u32 = exp[1..].parse().ok()?;
                (10i128.checked_pow(e)?, 1)
            }
            _ => return None,
        };
        let value = nanos.checked_mul(mul)? / div;
        Some(Quantity(if negative { -value } else { value }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn compares_across_suffixes() {
        let q = |s| Quantity::parse(s).unwrap();
        let cases = [
            ("10Gi", "10Gi", Ordering::Equal),
            ("10Gi", "5Gi", Ordering::Greater),
            ("1Gi", "1G", Ordering::Greater),
            ("1024Mi", "1Gi", Ordering::Equal),
            ("1Ti", "1024Gi", Ordering::Equal),
            ("1.5Gi", "1536Mi", Ordering::Equal),
            ("1000M", "1G", Ordering::Equal),
            ("1k", "1000", Ordering::Equal),
            ("500m", "1", Ordering::Less),
            ("1e3", "1k", Ordering::Equal),
            ("2Ei", "1Ei", Ordering::Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(q(a).cmp(&q(b)), want, "{a} vs {b}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "Gi", "1Xi", "1.2.3", "abc", "1.0000000001"] {
            assert_eq!(Quantity::parse(s), None, "{s}");
        }
    }
}
