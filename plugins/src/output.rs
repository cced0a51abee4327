//! Data output (`-o json|yaml`), tables, times.

use serde::Serialize;

use crate::cli::Output;
use crate::error::{Failure, Result};

/// Renders data as JSON (pretty) or YAML (serde-saphyr).
pub fn render<T: Serialize>(format: Output, data: &T) -> Result<String> {
    let text = match format {
        Output::Json => serde_json::to_string_pretty(data)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        Output::Yaml => serde_saphyr::to_string(data).map_err(|e| e.to_string()),
    };
    text.map_err(|e| {
        Failure::new(
            format!("cannot render the output: {e}"),
            "report this as a bug",
        )
    })
}

/// Left-aligned columns separated by three spaces, as `kubectl get` prints them.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count() + 3));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Cuts a one-line text to `max` characters with `...`.
pub fn truncate(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        one_line
            .chars()
            .take(max.saturating_sub(3))
            .collect::<String>()
            + "..."
    }
}

/// An age as kubectl prints it: `45s`, `12m`, `3h20m`, `5d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 if s % 3600 >= 60 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Seconds since an RFC 3339 time, or `None` when it does not parse.
pub fn seconds_since(rfc3339: &str, now: jiff::Timestamp) -> Option<i64> {
    let then: jiff::Timestamp = rfc3339.parse().ok()?;
    Some(now.as_second() - then.as_second())
}

/// The wall clock for progress lines.
pub fn clock() -> String {
    jiff::Timestamp::now().strftime("%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "STATE"],
            &[
                vec!["a".into(), "Reconcile succeeded".into()],
                vec!["longer-name".into(), "Paused".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME          STATE\na             Reconcile succeeded\nlonger-name   Paused\n"
        );
    }

    #[test]
    fn ages() {
        for (s, want) in [
            (-5, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (3700, "1h1m"),
            (86400, "1d"),
            (200000, "2d"),
        ] {
            assert_eq!(age(s), want, "{s}");
        }
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("a\n  b", 10), "a b");
        assert_eq!(truncate("abcdefghij", 8), "abcde...");
        assert_eq!(truncate("ünïcödé", 5), "ün...");
    }

    #[test]
    fn since() {
        let now: jiff::Timestamp = "2026-11-22T05:00:00Z".parse().unwrap();
        assert_eq!(seconds_since("2026-11-22T04:59:00Z", now), Some(60));
        assert_eq!(seconds_since("yesterday", now), None);
    }

    #[test]
    fn json_and_yaml() {
        let data = serde_json::json!({"name": "svc", "items": [1, 2]});
        assert!(
            render(Output::Json, &data)
                .unwrap()
                .contains("\"name\": \"svc\"")
        );
        let y = render(Output::Yaml, &data).unwrap();
        assert!(y.contains("name: svc"), "{y}");
    }
}
