//! A simulated vSphere Supervisor: a Kubernetes API server in-process over HTTPS, with a model of
//! kapp-controller that reproduces what goes wrong on real Supervisors.

pub mod api;
pub mod audit;
pub mod demo;
pub mod disruption;
pub mod faults;
pub mod http;
pub mod kapp;
pub mod kubeconfig;
pub mod roll;
pub mod scenario;
pub mod serviceaccounts;
pub mod simulator;
pub mod tls;
pub mod vcenter;
pub mod workload;
pub mod workloads;

pub use simulator::{SimOptions, Simulator};
