//! Data output (`-o json|yaml`), tables, times, and the one way this program writes to stdout and
//! stderr and asks a question.
//!
//! `println!`/`print!` panic when stdout is a closed pipe (`kubectl supsvc completion bash | head -1`).
//! [`out!`]/[`outln!`] (and [`errln!`] for stderr) write through [`write_stdout`] instead: once the
//! reader has gone, output stops quietly and the command goes on to its normal end, so a `fix` whose
//! pipe closes still unpauses what it paused; a watch ([`stdout_closed`]) ends. This is ripgrep's rule
//! (a closed pipe is a quiet end), without exiting from the middle of a change. Clippy refuses
//! `println!`/`print!`/`eprintln!`/`eprint!` in this crate (`plugins/clippy.toml`).

use std::fmt;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::cli::Output;
use crate::error::{Failure, Result};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout like `print!`, flushed; once a write has failed (the reader closed the pipe, the
/// disk is full), nothing more is written and [`stdout_closed`] is true. Never panics.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    write_to(&mut std::io::stdout().lock(), &STDOUT_CLOSED, args);
}

/// Writes to stderr like `eprint!`, with the same rule as [`write_stdout`].
pub fn write_stderr(args: fmt::Arguments<'_>) {
    write_to(&mut std::io::stderr().lock(), &STDERR_CLOSED, args);
}

fn write_to(out: &mut dyn Write, closed: &AtomicBool, args: fmt::Arguments<'_>) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        closed.store(true, Ordering::Relaxed);
    }
}

/// Whether stdout's reader has gone (a write failed): a command that would print forever
/// (`status -w`) ends.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Asks `question [yN]: ` on stdout and reads one line of stdin; `y` or `yes` (any case) is yes,
/// anything else, an empty line, end of input or a read error is no.
pub fn confirm(question: &str) -> bool {
    is_yes(&prompt(&format!("{question} [yN]: ")))
}

/// Prints `prompt` on stdout and reads one line of stdin, without its line ending; empty at end of
/// input or on a read error.
pub fn prompt(prompt: &str) -> String {
    write_stdout(format_args!("{prompt}"));
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(_) => answer.trim_end_matches(['\r', '\n']).to_owned(),
        Err(_) => String::new(),
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `print!` that never panics: see [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics: see [`write_stdout`].
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics: see [`write_stderr`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

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

    /// A writer whose reader has gone, as stdout is under `| head -1` once head has exited.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stops_output_quietly() {
        let closed = AtomicBool::new(false);
        write_to(&mut ClosedPipe, &closed, format_args!("first line\n"));
        assert!(
            closed.load(Ordering::Relaxed),
            "the failed write is remembered"
        );
        let mut after = Vec::new();
        write_to(&mut after, &closed, format_args!("second line\n"));
        assert!(
            after.is_empty(),
            "nothing is written once the reader has gone"
        );

        let open = AtomicBool::new(false);
        let mut out = Vec::new();
        write_to(&mut out, &open, format_args!("{} {}\n", "a", 1));
        assert_eq!(out, b"a 1\n");
        assert!(!open.load(Ordering::Relaxed));
    }

    #[test]
    fn only_y_or_yes_is_yes() {
        for (answer, yes) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \r\n", true),
            ("\n", false),
            ("", false),
            ("n\n", false),
            ("yep\n", false),
        ] {
            assert_eq!(is_yes(answer), yes, "{answer:?}");
        }
    }

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
