//! The Kubernetes admission vocabulary shared by `supsvc-core` (which decides) and
//! `supsvc-policy-sdk` (which decodes what the API server sends a policy): one type per word, so
//! the two can never spell an operation differently. A crate of its own because the SDK cannot
//! depend on core (core's tests use the SDK, and a guest would compile core's dependencies for
//! nothing); both re-export it (`supsvc_core::admission::Operation`, `supsvc_policy_sdk::Operation`).
#![warn(missing_docs, clippy::missing_errors_doc)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The operation an AdmissionRequest asks about, as `admission.k8s.io/v1` spells it
/// (`Operation` in <https://github.com/kubernetes/api/blob/master/admission/v1/types.go>):
/// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
///
/// ```
/// use supsvc_admission::Operation;
///
/// let op: Operation = "DELETE".parse().unwrap();
/// assert_eq!(op, Operation::Delete);
/// assert_eq!(op.as_str(), "DELETE");
/// assert_eq!(serde_json::to_string(&Operation::Connect).unwrap(), r#""CONNECT""#);
/// assert!("delete".parse::<Operation>().is_err()); // the API server's spelling only
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// `CREATE`. The default, only so that a request type can derive `Default`.
    #[default]
    Create,
    /// `UPDATE` (also a write of a subresource such as `status` or `ephemeralcontainers`).
    Update,
    /// `DELETE`.
    Delete,
    /// `CONNECT` (e.g. `pods/exec`, `pods/portforward`).
    Connect,
}

impl Operation {
    /// Every operation, in the order of the Kubernetes API.
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::Connect,
    ];

    /// The operation as the API server spells it (`CREATE`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not one of the four operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOperation(pub String);

impl fmt::Display for UnknownOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown admission operation {:?}: expected CREATE, UPDATE, DELETE or CONNECT",
            self.0
        )
    }
}

impl std::error::Error for UnknownOperation {}

impl FromStr for Operation {
    type Err = UnknownOperation;

    /// # Errors
    /// [`UnknownOperation`] for anything but the API server's four spellings (case matters, as
    /// it does for the API server's JSON).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| UnknownOperation(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_serde_and_display_agree_for_every_operation() {
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
            assert_eq!(op.to_string(), op.as_str());
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
            assert_eq!(serde_json::from_str::<Operation>(&json).unwrap(), op);
        }
    }

    #[test]
    fn other_spellings_are_refused_with_the_text_and_the_choices() {
        for text in ["create", "PATCH", "", " DELETE"] {
            let error = text.parse::<Operation>().unwrap_err();
            assert_eq!(error.0, text);
            assert!(
                error
                    .to_string()
                    .contains("CREATE, UPDATE, DELETE or CONNECT")
            );
            assert!(serde_json::from_str::<Operation>(&format!("{text:?}")).is_err());
        }
    }
}
