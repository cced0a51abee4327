//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fixtures;
pub mod setup;
pub mod tls;
pub mod wat_policies;
