//! The tables are apimachinery's own (`pkg/api/resource/quantity_test.go`: `TestQuantityParse`,
//! `TestQuantityString`, `TestQuantityParseEmit`, the invalid list), restated as value in nanos, format
//! and canonical form.

use super::*;
use Format::*;

const N: i128 = 1_000_000_000;

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_value_and_format() {
    let ki = 1024 * N;
    let cases: &[(&str, i128, Format)] = &[
        ("0", 0, DecimalSI),
        ("0n", 0, DecimalSI),
        ("0Ki", 0, BinarySI),
        ("0Ti", 0, BinarySI),
        ("1", N, DecimalSI),
        ("1Ki", ki, BinarySI),
        ("7Mi", 7 * (1 << 20) * N, BinarySI),
        ("6Gi", 6 * (1 << 30) * N, BinarySI),
        ("3Ei", 3 * (1 << 60) * N, BinarySI),
        ("5n", 5, DecimalSI),
        ("4u", 4_000, DecimalSI),
        ("3m", 3_000_000, DecimalSI),
        ("8k", 8_000 * N, DecimalSI),
        ("7M", 7_000_000 * N, DecimalSI),
        ("2P", 2 * 10i128.pow(15) * N, DecimalSI),
        ("12E", 12 * 10i128.pow(18) * N, DecimalSI),
        ("1E-3", N / 1000, DecimalExponent),
        ("1e3", 1000 * N, DecimalExponent),
        ("1E18", 10i128.pow(18) * N, DecimalExponent),
        ("1.3E+6", 1_300_000 * N, DecimalExponent),
        ("0.5e-2", 5_000_000, DecimalExponent),
        ("100.035k", 100_035 * N, DecimalSI),
        ("0.0005k", N / 2, DecimalSI),
        ("6.987654321G", 6_987_654_321 * N, DecimalSI),
        ("1.01E", 101 * 10i128.pow(16) * N, DecimalSI),
        // Rounded up (away from zero) to a whole nano.
        ("3.001n", 4, DecimalSI),
        ("1.1E-9", 2, DecimalExponent),
        ("0.0000000001", 1, DecimalSI),
        ("0.00000012345", 124, DecimalSI),
        ("0.9n", 1, DecimalSI),
        ("1e-100", 1, DecimalExponent),
        // Binary values are capped at 2^63-1.
        ("9Ei", i128::from(i64::MAX) * N, BinarySI),
        ("9223372036854775807Ki", i128::from(i64::MAX) * N, BinarySI),
        // Fractional binary.
        ("100.035Ki", 102_435_840 * N / 1000, BinarySI),
        ("0.5Mi", 512 * ki, BinarySI),
        ("0.025Ti", 27_487_790_694_400_000_000, BinarySI),
        // Below one, a binary value turns decimal.
        ("0.000000000001Ki", 2, DecimalSI),
        (".001", N / 1000, DecimalSI),
        ("1.", N, DecimalSI),
        ("1.G", N * N, DecimalSI),
        ("+1.5", 3 * N / 2, DecimalSI),
        ("-1.5Gi", -(3 << 29) * N, BinarySI),
        ("-3.001n", -4, DecimalSI),
        ("007", 7 * N, DecimalSI),
        // Go's scanner reads no digits as zero.
        ("-", 0, DecimalSI),
        (".", 0, DecimalSI),
        ("-.", 0, DecimalSI),
        ("Gi", 0, BinarySI),
        (".Ti", 0, BinarySI),
        ("e3", 0, DecimalExponent),
    ];
    for (text, nanos, format) in cases {
        let got = q(text);
        assert_eq!((got.nanos(), got.format()), (*nanos, *format), "{text}");
    }
}

#[test]
fn refuses_what_the_api_server_refuses() {
    use QuantityError::*;
    let cases: &[(&str, QuantityError)] = &[
        ("", Format),
        ("1.1.M", Format),
        ("1+1.0M", Format),
        ("0.1mi", Suffix),
        ("0.1am", Format),
        ("aoeu", Format),
        (".5i", Suffix),
        ("1i", Suffix),
        ("-3.01i", Suffix),
        ("-3.01e-", Suffix),
        ("1e4294967297", Suffix),
        ("1E-2147483648", Suffix),
        (" 1", Format),
        ("1 ", Format),
        ("16MiB", Format),
        ("16K", Suffix),
        ("16KB", Format),
        ("1e", Suffix),
        (".Pi", Numeric),
        ("-Ei", Numeric),
        (".e-10", Numeric),
        // Beyond what an i128 of nanos holds.
        ("1e30", Range),
        ("200000000000000000000E", Range),
    ];
    for (text, want) in cases {
        assert_eq!(Quantity::parse(text).as_ref(), Err(want), "{text:?}");
    }
}

#[test]
fn prints_the_canonical_form() {
    let cases = [
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("2048Mi", "2Gi"),
        ("307200Ki", "300Mi"),
        ("1025024Mi", "1001Gi"),
        ("1.5Gi", "1536Mi"),
        ("1025Ki", "1025Ki"),
        ("0.5Gi", "512Mi"),
        ("6Ki", "6Ki"),
        // Binary below 1024, or not whole: decimal.
        ("1023", "1023"),
        ("0.5Ki", "512"),
        ("1.1Ki", "1126400m"),
        ("0.001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        ("9Ei", "9223372036854775807"),
        ("1000M", "1G"),
        ("0.001T", "1G"),
        ("1000u", "1m"),
        ("1.08", "1080m"),
        ("1.5", "1500m"),
        ("1080000000n", "1080m"),
        ("1234567M", "1234567M"),
        ("3k", "3k"),
        ("1000E", "1e21"),
        ("5000E", "5e21"),
        ("1000000E", "1e24"),
        ("0.5", "500m"),
        ("1e3", "1e3"),
        (".001e12", "1e9"),
        ("0.001e0", "1e-3"),
        ("1000e-12", "1e-9"),
        ("80e-3", "80e-3"),
        ("300e6", "300e6"),
        ("1.5e3", "1500"),
        ("00", "0"),
        ("0Gi", "0"),
        ("-1Ki", "-1Ki"),
        ("-1.08", "-1080m"),
        ("-1000M", "-1G"),
        ("-.000000000001Ki", "-2n"),
    ];
    for (text, want) in cases {
        let got = q(text);
        assert_eq!(got.canonical(), want, "{text}");
        assert_eq!(got.to_string(), want, "{text}");
        // The canonical form reads back as the same value.
        assert_eq!(q(want), got, "{want} from {text}");
    }
}

#[test]
fn compares_by_value_whatever_the_format() {
    use std::cmp::Ordering::*;
    let cases = [
        ("2Gi", "2048Mi", Equal),
        ("2Gi", "2147483648", Equal),
        ("1k", "1000", Equal),
        ("1e3", "1k", Equal),
        ("1.5Gi", "1536Mi", Equal),
        ("100m", "0.1", Equal),
        ("1Gi", "1G", Greater),
        ("10000T", "100Gi", Greater),
        ("50m", "100m", Less),
        ("-1", "0", Less),
        ("16M", "16Mi", Less),
    ];
    for (a, b, want) in cases {
        assert_eq!(q(a).cmp(&q(b)), want, "{a} vs {b}");
        assert_eq!(q(a) == q(b), want == Equal, "{a} == {b}");
    }
}

#[test]
fn exact_arithmetic() {
    // What floats get wrong: 0.1 + 0.2 is exactly 0.3.
    assert_eq!(q("100m").checked_add(q("200m")), Some(q("300m")));
    assert_eq!(
        q("1Gi").checked_sub(q("512Mi")).unwrap().canonical(),
        "512Mi"
    );
    assert_eq!(
        q("1Ei").checked_mul(1024).unwrap().canonical(),
        "1180591620717411303424"
    );
    assert_eq!(
        q("1Ei").checked_mul(1024).unwrap().nanos(),
        (1i128 << 70) * N
    );
    assert_eq!(
        Quantity::from_units(16, DecimalSI).checked_mul(1_000_000),
        Some(q("16M"))
    );
    assert_eq!(q("170E").checked_mul(i64::MAX), None);
    assert_eq!(q("1.5").units_ceil(), 2);
    assert_eq!(q("-1.5").units_ceil(), -1);
    assert_eq!(q("1.5").units_exact(), None);
    assert_eq!(q("16Mi").units_exact(), Some(16 << 20));
}
