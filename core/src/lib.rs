//! The domain of supsvc as plain functions over plain data.
//!
//! Everything that decides something — is this object kapp-managed, is this image public, has this
//! PackageInstall reconciled, what must `fix` do next — lives here, with no I/O, so that the plugin,
//! the simulator and the WASM policies share one answer and it can be tested exhaustively.

// Every public item documented, with `# Errors` where it returns a Result: kept so for the whole crate.
#![warn(missing_docs, clippy::missing_errors_doc)]

/// The admission vocabulary core shares with the policy SDK ([`supsvc_admission`]).
pub mod admission {
    pub use supsvc_admission::{Operation, UnknownOperation};
}
pub mod carvel;
pub mod diagnose;
pub mod fix;
pub mod guard;
pub mod image;
pub mod kapp;
pub mod keys;
pub mod quantity;
pub mod registries;
pub mod relocation;
pub mod upgrade;
pub mod values;
pub mod vcenter;
