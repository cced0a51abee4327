//! ProgressPrinter while `fix` waits: a spinner on a terminal, plain timestamped lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::output::clock;

/// Prints progress lines; on a terminal also a spinner saying what is awaited.
pub struct ProgressPrinter {
    spinner: Option<ProgressBar>,
    /// Put before every line, e.g. `[context] ` when several clusters run at once.
    prefix: String,
    /// Lines go to stderr (stdout carries `-o json|yaml`).
    to_stderr: bool,
}

impl ProgressPrinter {
    pub fn new() -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        ProgressPrinter {
            spinner,
            prefix: String::new(),
            to_stderr: false,
        }
    }

    /// Plain timestamped lines only, each with `prefix` (for concurrent runs).
    pub fn plain_lines(prefix: &str) -> Self {
        ProgressPrinter {
            spinner: None,
            prefix: prefix.to_owned(),
            to_stderr: false,
        }
    }

    /// Plain timestamped lines, on stderr when `to_stderr` (stdout carries `-o json|yaml`).
    pub fn lines(to_stderr: bool) -> Self {
        ProgressPrinter {
            spinner: None,
            prefix: String::new(),
            to_stderr,
        }
    }

    fn emit(&self, line: String) {
        match &self.spinner {
            Some(pb) => pb.println(line),
            None if self.to_stderr => errln!("{line}"),
            None => outln!("{line}"),
        }
    }

    /// One line without the time (results, not progress).
    pub fn plain(&self, text: &str) {
        self.emit(format!("{}{text}", self.prefix));
    }

    /// One line, prefixed with the time.
    pub fn line(&self, text: &str) {
        self.emit(format!("{}{} {text}", self.prefix, clock()));
    }

    /// What is being waited for (spinner only).
    pub fn waiting(&self, what: &str) {
        if let Some(pb) = &self.spinner {
            pb.set_message(what.to_owned());
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.spinner {
            pb.finish_and_clear();
        }
    }
}
