//! One module per subcommand.

pub mod completion;
// The embedded simulated Supervisor: only in a build with the `demo` feature (the default).
#[cfg(feature = "demo")]
pub mod demo;
pub mod diagnose;
pub mod fix;
pub mod objects;
pub mod override_image;
pub mod policy;
pub mod status;
pub mod uninstall;
pub mod upgrade;
pub mod upgrade_check;
pub mod values_edit;
pub mod webhook;

/// What `kubectl supsvc demo` says in a build without the `demo` feature (krew's lean binary):
/// the simulator is not linked in, and how to get a build that has it.
#[cfg(not(feature = "demo"))]
pub fn demo_left_out() -> crate::error::Failure {
    crate::error::Failure::new(
        "this kubectl-supsvc was built without the demo (cargo feature `demo`): the simulated \
         Supervisor is not linked into the binary krew ships",
        "in a supsvc checkout, run `cargo run -p kubectl-supsvc -- demo`, or install a build with it: \
         `cargo install --path plugins --features demo`",
    )
}

use crate::api::SupervisorApi;
use crate::cli::Global;
use crate::cluster;
use crate::error::Result;
use crate::observe;

/// One Supervisor as a command works on it, connected once before dispatch: its Kubernetes API
/// and the namespace of its Supervisor Services (`-n`, default `vmware-system-supervisor-services`).
/// Each command takes a `&Session` and its own options (cargo's `ops::fix(&ws, &opts)` shape).
#[derive(Clone)]
pub struct Session {
    /// The Supervisor's Kubernetes API, with retries.
    pub supervisor: SupervisorApi,
    /// Where the services' PackageInstalls are.
    pub namespace: String,
}

impl Session {
    /// Connects to the kubeconfig's chosen context (kubectl's loading rules and flags).
    ///
    /// # Errors
    /// A kubeconfig that cannot be read or names no usable context, or a server that cannot be
    /// reached, explained for an operator.
    pub async fn connect(global: &Global) -> Result<Session> {
        Ok(Session {
            supervisor: SupervisorApi {
                cluster: cluster::connect(global).await?,
            },
            namespace: global.namespace.clone(),
        })
    }

    /// The full name of a service given by its unique short form (`svc-harbor`).
    ///
    /// # Errors
    /// No service, or several, answer to the name; the list cannot be read.
    pub async fn canonical_service(&self, name: &str) -> Result<String> {
        observe::canonical_service(&self.supervisor, &self.namespace, name).await
    }
}
