//! The places credentials are written to ([`Target`]: Rancher through its own APIs, or Kubernetes Secrets), and
//! the dispatch to each: its sync, its errors ([`TargetError`]) and its policy for logging and counting what
//! happened.
//!
//! The refresh loop ([`crate::refresh`]) sees only this module; [`crate::rancher`] and [`crate::kubernetes`] each
//! know one API and nothing of the other, and neither imports this dispatcher: they report in the shared,
//! generic [`crate::report`] types.

use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::kubernetes::{self, Kubernetes, KubernetesError};
use crate::rancher::{self, Rancher, RancherError};
use crate::report::{Failure, Notice, SyncOptions, SyncReport, Written};
use crate::status::Status;
use crate::token::RegistryToken;

/// One place credentials are written to.
// A handful per process, built once at start: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Target {
    /// Rancher 1.x (Cattle) or Rancher 2 (`/v3`).
    Rancher(Rancher),
    /// `kubernetes.io/dockerconfigjson` Secrets through the Kubernetes API (namespaces or Rancher
    /// project-scoped secrets).
    Kubernetes(Kubernetes),
}

impl Target {
    /// Brings every ECR host up to date in this target (with `dry_run`, only reads and reports what it would
    /// write).
    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        options: SyncOptions,
    ) -> Result<SyncReport<TargetError>, TargetError> {
        match self {
            Target::Rancher(rancher) => {
                let mut report = rancher.sync(tokens, options).await?;
                report.held = report.written.iter().map(Written::key).collect();
                Ok(report.map_err(TargetError::Rancher))
            }
            Target::Kubernetes(kubernetes) => {
                Ok(kubernetes.sync(tokens, options).await?.map_err(TargetError::Kubernetes))
            }
        }
    }

    /// Between refreshes: a Kubernetes target watches namespaces and ServiceAccounts (namespace mode) or the
    /// Rancher projects of its patterns (project mode), to write to new ones at once, and its Secrets, to restore
    /// one deleted or changed by someone else; a Rancher 2 target that covers every project (of a cluster) checks
    /// for new projects at its interval.
    pub async fn watch(&self, name: &str, status: &Status, shutdown: &CancellationToken) {
        match self {
            Target::Rancher(rancher) => rancher.watch(name, status, shutdown).await,
            Target::Kubernetes(kubernetes) => {
                tokio::join!(
                    kubernetes.watch(name, status, shutdown),
                    kubernetes.watch_projects(name, status, shutdown)
                );
            }
        }
    }

    /// A Kubernetes target with `KUBERNETES_DIAGNOSE_PULLS` watches kubelet's Events for failed ECR pulls and
    /// says their cause on the Pod; `refresh_now` asks this target's loop for a new token of a registry. Returns
    /// at once otherwise.
    pub async fn diagnose_pulls(
        &self,
        name: &str,
        status: &Status,
        refresh_now: &(dyn Fn(&str) + Send + Sync),
        shutdown: &CancellationToken,
    ) {
        match self {
            Target::Rancher(_) => {}
            Target::Kubernetes(kubernetes) => kubernetes.diagnose_pulls(name, status, refresh_now, shutdown).await,
        }
    }

    /// Reads the key and token files of the target again (rotated secrets); true when anything changed. A
    /// Kubernetes target's token file (a pod's ServiceAccount) is re-read by kube itself.
    pub fn reload_secrets(&self) -> bool {
        match self {
            Target::Rancher(rancher) => rancher.reload_secrets(),
            Target::Kubernetes(_) => false,
        }
    }

    /// The source label of this target's errors in metrics.
    pub fn api(&self) -> &'static str {
        match self {
            Target::Rancher(_) => "rancher",
            Target::Kubernetes(_) => "kubernetes",
        }
    }

    /// Logs a credential written (or, with `dry_run`, that would be), as this kind of target logs it.
    pub fn log_written(&self, name: &str, written: &Written, expires_at: Option<SystemTime>, dry_run: bool) {
        match self {
            Target::Rancher(_) => rancher::outcome::log_written(name, written, expires_at, dry_run),
            Target::Kubernetes(_) => kubernetes::outcome::log_written(name, written, expires_at, dry_run),
        }
    }

    /// Logs a notice (only Rancher targets give them).
    pub fn log_notice(&self, name: &str, notice: &Notice) {
        rancher::outcome::log_notice(name, notice);
    }
}

/// Logs and counts one failure: the failure policy of the kind of target that failed, the one the watch of a
/// Kubernetes target goes through too.
pub fn on_failure(status: &Status, name: &str, failure: &Failure<TargetError>) {
    let Failure { host, scope, error } = failure;
    match error {
        TargetError::Rancher(error) => {
            rancher::outcome::on_failure(status, name, &Failure { host: host.clone(), scope: scope.clone(), error })
        }
        TargetError::Kubernetes(error) => {
            kubernetes::outcome::on_failure(status, name, &Failure { host: host.clone(), scope: scope.clone(), error })
        }
    }
}

/// A failed call to a target, from whichever API it speaks. Never carries a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Rancher(#[from] RancherError),
    #[error(transparent)]
    Kubernetes(#[from] KubernetesError),
}

impl TargetError {
    /// True when retrying soon will not help: a key, a permission or a setting has to be fixed first.
    pub fn is_permanent(&self) -> bool {
        match self {
            TargetError::Rancher(e) => e.is_permanent(),
            TargetError::Kubernetes(e) => e.is_permanent(),
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetError::Rancher(e) => e.kind(),
            TargetError::Kubernetes(e) => e.kind(),
        }
    }

    /// What a person should do about it, when that is clear from the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            TargetError::Rancher(e) => e.hint(),
            TargetError::Kubernetes(e) => e.hint(),
        }
    }

    /// What failed, in words, when a whole sync failed before writing anything.
    pub fn summary(&self) -> &'static str {
        match self {
            TargetError::Rancher(_) => "Could not read Rancher's registries",
            TargetError::Kubernetes(_) => "Could not read the Kubernetes API",
        }
    }
}
