//! `kubectl_complete-supsvc`: what kubectl (1.26 and newer) runs from PATH to complete
//! `kubectl supsvc ...`. It hands the words over to the plugin, as `kubectl-supsvc __complete WORDS...`:
//! the plugin beside this executable (`cargo install` puts both in the same directory, and so does the
//! release archive), else the first `kubectl-supsvc` on PATH. The plugin answers in cobra's
//! `__complete` format.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const PLUGIN: &str = "kubectl-supsvc";

/// The plugin beside this executable (symlinks resolved), else the first on PATH.
fn plugin() -> Option<PathBuf> {
    let name = format!("{PLUGIN}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .ok()
        .and_then(|p| p.parent().map(|dir| dir.join(&name)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(&name))
            .find(|p| p.is_file())
    })
}

fn main() -> ExitCode {
    let Some(plugin) = plugin() else {
        // A failed write to stderr has nowhere to be reported: ignored, never a panic.
        let _ = writeln!(
            std::io::stderr(),
            "error: {PLUGIN} is neither beside kubectl_complete-supsvc nor on PATH\n\
             hint: install the plugin (cargo install --path plugins, or kubectl krew install supsvc)"
        );
        return ExitCode::FAILURE;
    };
    let mut cmd = Command::new(&plugin);
    cmd.arg("__complete").args(std::env::args_os().skip(1));
    #[cfg(unix)]
    let failure = {
        use std::os::unix::process::CommandExt;
        cmd.exec()
    };
    #[cfg(not(unix))]
    let failure = match cmd.status() {
        Ok(status) => return ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => e,
    };
    let _ = writeln!(
        std::io::stderr(),
        "error: cannot run {}: {failure}\nhint: check that it is executable",
        plugin.display()
    );
    ExitCode::FAILURE
}
