//! Running `kubectl supsvc …` as an operator does: through the real `kubectl`, which finds the freshly
//! built plugin first on PATH, or the plugin binary run standalone (as on a control plane VM).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::{kubectl_path, workspace_binary};

/// How a test reaches the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `kubectl-supsvc ARGS` run directly.
    Binary,
    /// `kubectl supsvc ARGS`: the real kubectl's plugin discovery.
    Kubectl,
}

/// What one run printed and how it ended.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(o: &Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs `cmd` to its end off the async runtime's threads.
    pub async fn of(cmd: Command) -> Run {
        Run::from_output(&output(cmd).await)
    }

    /// stdout, then stderr, on separate lines.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to its end off the async runtime's threads; panics only if it cannot start.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the command starts"))
        .await
        .expect("joined")
}

/// PATH with the built plugin's directory first, so kubectl finds this build of `kubectl-supsvc`.
pub fn path_with_plugin() -> OsString {
    let binary = workspace_binary("kubectl-supsvc");
    let dir = binary.parent().expect("binary dir").to_path_buf();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH")
}

/// The command `kubectl supsvc` (or the binary) against `kubeconfig`, with no standard input and no
/// editor from the caller's environment; the caller adds arguments and environment.
pub fn supsvc_command(via: Via, kubeconfig: &Path) -> Command {
    let mut cmd = match via {
        Via::Binary => Command::new(workspace_binary("kubectl-supsvc")),
        Via::Kubectl => {
            let mut c = Command::new(kubectl_path());
            c.env("PATH", path_with_plugin()).arg("supsvc");
            c
        }
    };
    cmd.env("KUBECONFIG", kubeconfig)
        .env_remove("KUBE_EDITOR")
        .env_remove("EDITOR")
        .stdin(Stdio::null());
    cmd
}

/// `kubectl supsvc ARGS` through the real kubectl against `kubeconfig`.
pub async fn supsvc(kubeconfig: &Path, args: &[&str]) -> Run {
    let mut cmd = supsvc_command(Via::Kubectl, kubeconfig);
    cmd.args(args);
    Run::of(cmd).await
}
