//! The Rust targets supsvc's policies build for, and one message for when one is missing.
//!
//! A policy is a `.wasm` built with `cargo build --target wasm32-unknown-unknown` (or
//! `wasm32-wasip1`). rustup installs the targets that `rust-toolchain.toml` lists only when it installs
//! the toolchain itself: on a machine whose pinned toolchain came without them, the build fails deep
//! inside cargo with ``can't find crate for `core` ``. Every place that builds a policy (the tests, the
//! benches, `kubectl supsvc policy new`'s scaffold) asks this crate first, so they all say the same
//! thing: which target, for which toolchain, and the command that installs it.
//!
//! Whether a target is installed is read from the toolchain itself: its sysroot
//! (`rustc --print sysroot`, run where the build runs, so `rust-toolchain.toml` applies) holds
//! `lib/rustlib/<target>/lib` for every installed target. That is where rustc looks for the target's
//! standard library, with or without rustup.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The target the shipped policies and most Kubewarden policies build for.
pub const WASM32_UNKNOWN_UNKNOWN: &str = "wasm32-unknown-unknown";
/// The WASI preview 1 target (Kubewarden's Go and some Rust policies).
pub const WASM32_WASIP1: &str = "wasm32-wasip1";

/// Why a policy cannot be built for a target here.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The toolchain has no standard library for the target. The message is the one line a user
    /// needs: what is missing and the command that installs it.
    #[error("{0}")]
    Missing(Missing),
    /// `rustc` itself could not be run in the build's directory.
    #[error(
        "cannot run `rustc --print sysroot` in {dir}: {source}; install Rust with rustup (https://rustup.rs)"
    )]
    NoRustc {
        /// Where it was run.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// A target the toolchain lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// e.g. `wasm32-unknown-unknown`.
    pub target: String,
    /// The toolchain as rustup names it (`1.95.0-x86_64-unknown-linux-gnu`), when rustup manages it.
    pub toolchain: Option<String>,
    /// What rustup said when asked to add the target, if it was asked and failed.
    pub rustup_said: Option<String>,
}

impl Missing {
    /// The command that installs the target: `rustup target add <target> [--toolchain <name>]`.
    pub fn install_command(&self) -> String {
        match &self.toolchain {
            Some(toolchain) => format!("rustup target add {} --toolchain {toolchain}", self.target),
            None => format!("rustup target add {}", self.target),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let toolchain = match &self.toolchain {
            Some(t) => format!("toolchain {t}"),
            None => "this Rust toolchain".to_owned(),
        };
        write!(
            f,
            "the Rust target {} is not installed for {toolchain}, and policies build for it; install it with: {}",
            self.target,
            self.install_command()
        )?;
        if let Some(said) = &self.rustup_said {
            write!(f, " (rustup could not add it here: {said})")?;
        }
        Ok(())
    }
}

/// What [`ensure`] may do about a missing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Only report it (a user's own machine: say what to run, change nothing).
    Never,
    /// Run `rustup target add` for the toolchain in use (the project's own tests and benches, which
    /// set up what they need).
    WithRustup,
}

/// Is `target`'s standard library installed for the toolchain that builds in `dir`?
///
/// # Errors
/// [`TargetError::NoRustc`] when `rustc` cannot be run there.
pub fn installed(target: &str, dir: &Path) -> Result<bool, TargetError> {
    Ok(sysroot(dir)?
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir())
}

/// Makes sure `target` can be built for in `dir`, installing it with rustup when `install` allows.
///
/// Calls within one process are serialised, so parallel tests do not run rustup twice at once.
///
/// # Errors
/// [`TargetError::Missing`] (its message names the install command) when the target is missing and
/// was not, or could not be, installed; [`TargetError::NoRustc`] when there is no `rustc`.
pub fn ensure(target: &str, dir: &Path, install: Install) -> Result<(), TargetError> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if installed(target, dir)? {
        return Ok(());
    }
    let toolchain = active_toolchain(dir);
    let mut missing = Missing {
        target: target.to_owned(),
        toolchain,
        rustup_said: None,
    };
    if install == Install::Never {
        return Err(TargetError::Missing(missing));
    }
    eprintln!(
        "note: installing the Rust target {target}: {}",
        missing.install_command()
    );
    let mut rustup = Command::new("rustup");
    rustup.current_dir(dir).args(["target", "add", target]);
    if let Some(t) = &missing.toolchain {
        rustup.args(["--toolchain", t]);
    }
    match rustup.output() {
        Ok(out) if out.status.success() && installed(target, dir)? => Ok(()),
        Ok(out) => {
            missing.rustup_said = Some(error_line(&out));
            Err(TargetError::Missing(missing))
        }
        Err(e) => {
            missing.rustup_said = Some(format!("rustup: {e}"));
            Err(TargetError::Missing(missing))
        }
    }
}

fn sysroot(dir: &Path) -> Result<PathBuf, TargetError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let no_rustc = |source| TargetError::NoRustc {
        dir: dir.to_owned(),
        source,
    };
    let out = Command::new(rustc)
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .output()
        .map_err(no_rustc)?;
    if !out.status.success() {
        return Err(no_rustc(std::io::Error::other(last_line(&out))));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The toolchain rustup uses in `dir` (`1.95.0-x86_64-unknown-linux-gnu`), or `None` without rustup.
fn active_toolchain(dir: &Path) -> Option<String> {
    let out = Command::new("rustup")
        .current_dir(dir)
        .args(["show", "active-toolchain"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_active_toolchain(&String::from_utf8_lossy(&out.stdout))
}

/// The first word of `rustup show active-toolchain`: `1.95.0-x86_64-unknown-linux-gnu (overridden by …)`.
fn parse_active_toolchain(stdout: &str) -> Option<String> {
    stdout.split_whitespace().next().map(str::to_owned)
}

/// rustup's `error: …` line (its causes and any backtrace follow it), else its last line.
fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
    {
        Some(error) => error.to_owned(),
        None => last_line(out),
    }
}

fn last_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_target_the_toolchain_and_the_command() {
        let missing = Missing {
            target: WASM32_UNKNOWN_UNKNOWN.into(),
            toolchain: Some("1.95.0-x86_64-unknown-linux-gnu".into()),
            rustup_said: None,
        };
        assert_eq!(
            missing.to_string(),
            "the Rust target wasm32-unknown-unknown is not installed for toolchain \
             1.95.0-x86_64-unknown-linux-gnu, and policies build for it; install it with: \
             rustup target add wasm32-unknown-unknown --toolchain 1.95.0-x86_64-unknown-linux-gnu"
        );
        let without_rustup = Missing {
            toolchain: None,
            rustup_said: Some("rustup: No such file or directory".into()),
            ..missing
        };
        assert_eq!(
            without_rustup.to_string(),
            "the Rust target wasm32-unknown-unknown is not installed for this Rust toolchain, and \
             policies build for it; install it with: rustup target add wasm32-unknown-unknown \
             (rustup could not add it here: rustup: No such file or directory)"
        );
    }

    #[test]
    fn rustups_active_toolchain_line_is_read_to_its_first_word() {
        for (stdout, want) in [
            (
                "1.95.0-x86_64-unknown-linux-gnu (overridden by '/w/rust-toolchain.toml')\n",
                Some("1.95.0-x86_64-unknown-linux-gnu"),
            ),
            (
                "stable-aarch64-apple-darwin (default)\n",
                Some("stable-aarch64-apple-darwin"),
            ),
            ("", None),
        ] {
            assert_eq!(
                parse_active_toolchain(stdout).as_deref(),
                want,
                "{stdout:?}"
            );
        }
    }

    #[test]
    fn the_host_target_is_installed_and_a_made_up_one_is_not() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let host = std::env::var("TARGET").unwrap_or_else(|_| host_triple());
        assert!(installed(&host, here).unwrap(), "{host}");
        assert!(!installed("wasm64-made-up-none", here).unwrap());
        match ensure("wasm64-made-up-none", here, Install::Never) {
            Err(TargetError::Missing(m)) => assert_eq!(m.target, "wasm64-made-up-none"),
            other => panic!("{other:?}"),
        }
    }

    fn host_triple() -> String {
        let out = Command::new("rustc").arg("-vV").output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .unwrap()
            .to_owned()
    }

    #[test]
    fn no_rustc_in_a_missing_directory_is_an_error_not_a_panic() {
        let gone = tempfile::tempdir().unwrap().path().join("gone");
        assert!(matches!(
            installed(WASM32_WASIP1, &gone),
            Err(TargetError::NoRustc { .. })
        ));
    }
}
