//! Helpers shared by the integration tests (supsvc-webhook's tests include the same files).
#![allow(dead_code)]

pub mod fixtures;
pub mod wat_policies;
