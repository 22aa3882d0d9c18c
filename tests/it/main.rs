//! End-to-end tests: the real binary, started with environment variables only, against loopback stand-ins of
//! ECR and Rancher that record every request.

mod cattle;
mod config_errors;
mod coverage;
mod daemon;
mod faults;
mod hardening;
mod harness;
mod kubernetes;
mod kubernetes_heal;
mod observability;
mod proxy;
mod rancher2;
mod secrets;
mod sources;
