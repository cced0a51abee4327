//! `values-edit`'s decisions about a Supervisor Service's data values, as pure functions.
//!
//! - which keys are sensitive and how a diff masks them ([`mask_pair`]);
//! - what changed between two values documents ([`changes`]) and how `--set path=value` edits one ([`set_path`]);
//! - whether values satisfy a Package's `valuesSchema.openAPIv3` ([`validate`]);
//! - the pre-flight ([`preflight`]): which live kapp-managed field a changed value drives, and whether the
//!   API server will accept the change kapp is about to make.
//!
//! # The mapping rule
//! supsvc cannot run ytt, so it cannot know which manifest field a value feeds. It maps a changed value
//! to a field of a live object when both hold:
//! 1. the field's live value equals the value's **old** value (as text, or as the same quantity:
//!    `55Gi` = `59055800320`), and
//! 2. the values path **names the object**: a segment of the path other than the last one equals the
//!    object's name or one of its `-`/`.`-separated words (`persistence.persistentVolumeClaim.registry.size`
//!    names `harbor-registry`; `…database.size` names `harbor-database`).
//!
//! Only the `spec` of PersistentVolumeClaims and StatefulSets is searched: they are the objects whose
//! updates the API server restricts. A change that maps to nothing is not checked (it is reported so).

mod changes;
mod mask;
mod preflight;
mod schema;
mod set;

pub use changes::*;
pub use mask::*;
pub use preflight::*;
pub use schema::*;
pub use set::*;

#[cfg(test)]
mod tests;
