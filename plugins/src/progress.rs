//! Progress while `fix` waits: a spinner on a terminal, plain timestamped lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::output::clock;

/// Prints progress lines; on a terminal also a spinner saying what is awaited.
pub struct Progress {
    spinner: Option<ProgressBar>,
}

impl Progress {
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
        Progress { spinner }
    }

    /// One line, prefixed with the time.
    pub fn line(&self, text: &str) {
        let line = format!("{} {text}", clock());
        match &self.spinner {
            Some(pb) => pb.println(line),
            None => println!("{line}"),
        }
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
