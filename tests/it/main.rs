//! End-to-end tests: the real binary, started with environment variables only, against loopback stand-ins of
//! ECR and Rancher that record every request.

mod apiserver;
mod cattle;
mod config_errors;
mod coverage;
mod daemon;
mod events;
mod faults;
mod ha;
mod hardening;
mod harness;
mod kubernetes;
mod kubernetes_heal;
mod leader;
mod observability;
mod pod_identity;
mod prometheus;
mod proxy;
mod rancher2;
mod secrets;
mod sources;
