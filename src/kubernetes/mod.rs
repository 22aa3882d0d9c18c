//! The Kubernetes side: `kubernetes.io/dockerconfigjson` Secrets written through the Kubernetes API, with kube-rs.
//!
//! Two modes per target:
//! - *namespaces*: one Secret (default `ecr-credentials`) holding every ECR host of the target's sources in each
//!   selected namespace ([`select`]), optionally listed in the `imagePullSecrets` of named ServiceAccounts;
//!   namespaces and ServiceAccounts are watched, so new ones get the Secret within seconds ([`Kubernetes::watch`]);
//! - *Rancher project-scoped* (2.12+): the Secret in each project's backing namespace on Rancher's local cluster,
//!   labelled for the project; Rancher copies it into the project's namespaces.
//!
//! It never takes a Secret that is not ours (unless adoption is on), never writes Rancher's copies, never
//! touches other entries of a ServiceAccount, and writes nothing when a Secret already holds the current token.
//! Writes are server-side apply (Secrets) and merge patches guarded by `resourceVersion` (ServiceAccounts),
//! with the field manager `rancher-ecr-credentials`. Nothing here knows Rancher's own APIs or AWS.
//!
//! Its files, by job:
//! - [`settings`]: the settings of a target, declared and checked;
//! - [`connection`]: how it reaches its API server (kubeconfig or in-cluster) and its clients' timeouts;
//! - [`cluster`]: the target ([`Kubernetes`]) and what it knows between calls;
//! - [`sync`]: a full sync, every namespace or project at once;
//! - [`namespaces`]: namespace mode: which namespaces, and one namespace brought up to date;
//! - [`secret`]: the Secret, and how an existing one is judged;
//! - [`read`]: how a sync reads the Secrets: one cluster-wide LIST by name, or a GET per namespace;
//! - [`apply`]: judging and writing the Secret of one namespace;
//! - [`accounts`]: the Secret merged into ServiceAccounts' `imagePullSecrets`;
//! - [`projects`]: Rancher 2.12+ project-scoped secrets;
//! - [`watch`]: new namespaces, ServiceAccounts and changes to our Secrets between refreshes;
//! - [`relist`]: the watches' LIST-then-WATCH loop, listing again whenever a watch ends early;
//! - [`heal`]: our Secrets restored when deleted or changed by someone else, and contested ones left alone;
//! - [`tell`]: which failures become Kubernetes Events, about which object;
//! - [`watch`]: new namespaces and ServiceAccounts between refreshes;
//! - [`diagnose`]: failed ECR pulls diagnosed on the Pod (`KUBERNETES_DIAGNOSE_PULLS`), with
//!   [`pull_failure`] reading kubelet's Events;
//! - [`error`]: [`KubernetesError`] and the calls that make it;
//! - [`events`]: Warning Events about our Secrets and ServiceAccounts, deduplicated and rate-limited;
//! - [`outcome`]: how writes and failures are logged and counted (the refresh loop and the watch share it);
//! - [`select`]: namespace names, globs, label selectors.

pub mod accounts;
pub mod apply;
pub mod cluster;
pub mod connection;
pub mod diagnose;
pub mod error;
pub mod events;
#[cfg(test)]
mod fake;
pub mod heal;
pub mod namespaces;
pub mod outcome;
pub mod projects;
pub mod pull_failure;
pub mod read;
pub mod relist;
pub mod secret;
pub mod select;
pub mod settings;
pub mod sync;
pub mod tell;
pub mod watch;

pub use cluster::Kubernetes;
pub use connection::KubeConnection;
pub use error::KubernetesError;
pub use select::Selection;
pub use settings::{KubernetesSettings, Mode, Settings};
