//! rancher-ecr-credentials keeps Amazon ECR pull credentials fresh inside Rancher and Kubernetes.
//!
//! ECR registry passwords expire after 12 hours; Rancher stores a registry credential as a plain user name and
//! password. This daemon gets new passwords from ECR and writes them into the matching Rancher registry
//! credentials well before the old ones expire, retrying quickly when something fails.
//!
//! # Layout
//! - [`config`]: flags and environment variables into a checked [`config::Config`]; all input checking.
//! - [`plan`]: sources of ECR tokens and Rancher targets, and the TOML file that describes several.
//! - [`ecr`]: AWS credentials, GetAuthorizationToken, decoding tokens.
//! - [`aws_http`]: the one HTTP client of every AWS call: proxy variables and extra CA certificates.
//! - [`address`]: comparing registry addresses with ECR hosts.
//! - [`target`]: what every target shares: the places credentials go to, and the report of a sync.
//! - [`rancher`]: the Rancher APIs ([`rancher::cattle`] for 1.x, [`rancher::v3`] for 2.x).
//! - [`kubernetes`]: Secrets through the Kubernetes API (namespaces, or Rancher 2.12+ project-scoped secrets).
//! - [`secret`]: secrets from the configuration, re-read from their files when they rotate.
//! - [`schedule`]: when the next refresh is due, after success and after failure.
//! - [`refresh`]: the loop that ties ECR and the targets together.
//! - [`redact`]: secrets and hostile outside text kept out of logs and answers.
//! - [`status`]: liveness, readiness and metrics, shared by the loop and the server.
//! - [`server`]: health and metrics over HTTP, and the `healthcheck` command.
//! - [`app`]: start-up and shutdown, as `main` runs them.

pub mod address;
pub mod app;
pub mod aws_http;
pub mod config;
pub mod ecr;
pub mod kubernetes;
pub mod leader;
pub mod logging;
pub mod plan;
pub mod rancher;
pub mod redact;
pub mod refresh;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod status;
pub mod target;
