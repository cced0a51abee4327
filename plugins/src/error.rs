//! What the user sees when something goes wrong: `error: <what happened>` and `hint: <what to do>`,
//! and the exit code scripts can rely on.

use std::error::Error as StdError;
use std::fmt;

/// Exit codes: 0 success, 1 failure (or problems found), 2 usage, 3 timeout, 130 interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Failure = 1,
    Usage = 2,
    Timeout = 3,
    Interrupted = 130,
}

/// A failure explained for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub what: String,
    pub hint: String,
    pub exit: Exit,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub fn new(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure {
            what: what.into(),
            hint: hint.into(),
            exit: Exit::Failure,
        }
    }

    pub fn usage(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Usage,
            ..Failure::new(what, hint)
        }
    }

    /// Ctrl-C during something that only reads (a watch): nothing went wrong, nothing to report;
    /// exit 130 as a shell reports a command ended by SIGINT. `main` prints nothing for it.
    pub fn interrupted_quietly() -> Self {
        Failure::new("", "").with_exit(Exit::Interrupted)
    }

    /// Whether there is nothing to print ([`Failure::interrupted_quietly`]).
    pub fn is_quiet(&self) -> bool {
        self.what.is_empty()
    }

    pub fn with_exit(mut self, exit: Exit) -> Self {
        self.exit = exit;
        self
    }

    /// Explains a Kubernetes API error; `doing` says what was attempted (`get pkgi/x -n y`).
    pub fn from_kube(err: &kube::Error, doing: &str, server: &str) -> Self {
        match err {
            kube::Error::Api(status) => {
                let message = if status.message.is_empty() {
                    status.reason.clone()
                } else {
                    status.message.clone()
                };
                let hint = match status.code {
                    401 => "the credentials were refused: log in again (e.g. `kubectl vsphere login`) or pass --kubeconfig".to_owned(),
                    403 => "the system namespaces of a Supervisor are writable only with the control plane's admin \
                            credentials: run on a control plane VM (it falls back to /etc/kubernetes/admin.conf) or \
                            pass --kubeconfig/--context for an admin"
                        .to_owned(),
                    404 => "check the name and the namespace (-n); `kubectl supsvc status` lists the services".to_owned(),
                    409 => "the object changed while supsvc wrote it; run the command again".to_owned(),
                    422 => "the server refused the change as invalid; `kubectl supsvc diagnose` explains the state".to_owned(),
                    429 | 500..=599 => format!("the API server at {server} is overloaded or failing; try again later"),
                    _ => "see the message above".to_owned(),
                };
                Failure::new(format!("{doing}: {message} ({})", status.code), hint)
            }
            kube::Error::Auth(_) => Failure::new(
                format!("{doing}: cannot authenticate: {}", chain(err)),
                "check the user of the kubeconfig context (token, certificate or exec plugin)",
            ),
            kube::Error::RustlsTls(_) => Failure::new(
                format!("{doing}: TLS with {server} failed: {}", chain(err)),
                "check certificate-authority-data of the cluster in the kubeconfig",
            ),
            _ if is_connection_error(err) => Failure::new(
                format!("cannot reach the API server at {server}: {}", chain(err)),
                "check the server address in the kubeconfig, the network and that the Supervisor is up \
                 (`kubectl cluster-info`); --request-timeout bounds each request",
            ),
            _ => Failure::new(
                format!("{doing}: {}", chain(err)),
                "run the command again; if it persists, report it",
            ),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.what)?;
        if !self.hint.is_empty() {
            write!(f, "\nhint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// An error and its sources as one line, without Rust debug output.
pub fn chain(err: &dyn StdError) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Errors below HTTP: refused, reset, dropped, timed out.
pub fn is_connection_error(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
    )
}

/// Errors worth retrying: throttling, server errors, dropped connections, conflicts (the caller re-reads).
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500 | 502 | 503 | 504),
        _ => is_connection_error(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "message": message, "reason": "X"
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn formats_error_and_hint() {
        let f = Failure::new("it broke", "do this");
        assert_eq!(f.to_string(), "error: it broke\nhint: do this");
        assert_eq!(Failure::new("x", "").to_string(), "error: x");
    }

    #[test]
    fn api_errors_get_hints_by_code() {
        let cases = [
            (403, "control plane's admin credentials"),
            (404, "kubectl supsvc status"),
            (401, "log in again"),
            (503, "overloaded"),
        ];
        for (code, hint) in cases {
            let f = Failure::from_kube(&api(code, "nope"), "get pkgi/x -n y", "https://h:6443");
            assert!(f.hint.contains(hint), "{code}: {}", f.hint);
            assert_eq!(f.what, format!("get pkgi/x -n y: nope ({code})"));
            assert!(!f.to_string().contains("Status {"), "no debug output");
        }
    }

    #[test]
    fn transient_errors() {
        for (code, want) in [
            (409, true),
            (429, true),
            (500, true),
            (503, true),
            (404, false),
            (403, false),
            (422, false),
        ] {
            assert_eq!(is_transient(&api(code, "")), want, "{code}");
        }
    }
}
