//! Helpers shared by the integration tests.
#![allow(dead_code)]

#[path = "../../../policy-host/tests/common/fixtures.rs"]
pub mod fixtures;
pub mod served;
pub mod setup;
pub mod tls;
#[path = "../../../policy-host/tests/common/wat_policies.rs"]
pub mod wat_policies;
