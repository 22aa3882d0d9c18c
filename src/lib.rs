//! rancher-ecr-credentials keeps Amazon ECR pull credentials fresh inside Rancher and Kubernetes.
//!
//! ECR registry passwords expire after 12 hours; Rancher stores a registry credential as a plain user name and
//! password. This daemon gets new passwords from ECR and writes them into the matching Rancher registry
//! credentials, or into `kubernetes.io/dockerconfigjson` Secrets through the Kubernetes API, well before the
//! old ones expire, retrying quickly when something fails.
//!
//! # Layout
//! Each module imports only modules below it in this list (a parent `mod.rs` declares its children).
//! - [`app`]: start-up and shutdown, as `main` runs them.
//! - [`config`]: the command line and the environment, or a TOML file, into a checked [`config::Config`]:
//!   [`config::cli`], [`config::env`], [`config::file`], [`config::checks`], [`config::plan`]. See
//!   "Adding a setting" there.
//! - [`logging`]: log output (text or JSON), with secrets redacted.
//! - [`refresh`]: the loop that ties ECR and a target together; target-neutral.
//! - [`target`]: the dispatcher above the targets ([`target::Target`], [`target::TargetError`]) and each kind's
//!   policy for logging and counting what happened.
//! - [`rancher`]: the Rancher APIs ([`rancher::cattle`] for 1.x, [`rancher::v3`] for 2.x), their settings, HTTP,
//!   errors and outcome policy.
//! - [`kubernetes`]: Secrets through the Kubernetes API (namespaces, or Rancher 2.12+ project-scoped secrets),
//!   split by job; its settings and connection.
//! - [`ecr`]: AWS credentials, GetAuthorizationToken, decoding tokens; AWS's settings and region
//!   ([`ecr::settings`]); the one HTTP client of every AWS call, with proxies and extra CAs
//!   ([`ecr::aws_http`]).
//! - [`leader`]: leader election on a `coordination.k8s.io` Lease, so that of several replicas one writes.
//! - [`setting`]: what a setting is ([`setting::Setting`]: variable, flag, file key, help), how either form
//!   gives it ([`setting::Given`]), and the parsers every module's checks share.
//! - [`server`]: health and metrics over HTTP, and the `healthcheck` command.
//! - [`secret`]: secrets from the configuration, re-read from their files when they rotate.
//! - [`status`]: liveness, readiness and metrics, shared by the loop, the watch and the server.
//! - [`report`]: the report every target's sync gives, generic over the error of its API.
//! - [`token`]: [`token::RegistryToken`], the password of one registry, as every target receives it.
//! - [`schedule`]: when the next refresh is due, after success and after failure.
//! - [`address`]: comparing registry addresses with ECR hosts.
//! - [`redact`]: secrets and hostile outside text kept out of logs and answers.

pub mod address;
pub mod app;
pub mod config;
pub mod ecr;
pub mod kubernetes;
pub mod leader;
pub mod logging;
pub mod rancher;
pub mod redact;
pub mod refresh;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod setting;
pub mod status;
pub mod target;
pub mod token;
