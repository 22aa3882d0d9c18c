//! What every target shares: the places credentials are written to ([`Target`]: Rancher through its own APIs,
//! or Kubernetes Secrets), and the one report a sync of any of them gives ([`SyncReport`]).
//!
//! The refresh loop ([`crate::refresh`]) sees only this module; [`crate::rancher`] and [`crate::kubernetes`] each
//! know one API and nothing of the other.

use crate::ecr::RegistryToken;
use crate::kubernetes::{Kubernetes, KubernetesError};
use crate::rancher::{Rancher, RancherError};

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
    pub async fn sync(&self, tokens: &[RegistryToken], options: SyncOptions) -> Result<SyncReport, TargetError> {
        match self {
            Target::Rancher(rancher) => {
                let mut report = rancher.sync(tokens, options).await?;
                report.held = report.written.iter().map(Written::key).collect();
                Ok(report)
            }
            Target::Kubernetes(kubernetes) => Ok(kubernetes.sync(tokens, options).await?),
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
}

/// How a sync may change the target.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Create what is missing (a registry, a credential) instead of reporting it.
    pub auto_create: bool,
    /// Read only: report what would be written, send no PUT, POST or PATCH.
    pub dry_run: bool,
}

/// What one sync of one target did: every credential written, every notice, every failure.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub written: Vec<Written>,
    pub notices: Vec<Notice>,
    pub failures: Vec<Failure>,
    /// The keys (ECR hosts, or `scope/host`) of the credentials that now hold the current token, written in this
    /// sync or found current: what readiness and the expiry metric track.
    pub held: Vec<String>,
    /// For targets that span many places (Kubernetes namespaces or projects): how many there are, and which
    /// of them do not hold the current token.
    pub places: Option<Places>,
}

/// The places of a target and those that lack the current token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    pub total: usize,
    pub missing: Vec<String>,
}

/// A credential that now holds the new password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The ECR host (a Kubernetes Secret holds several: comma-separated).
    pub host: String,
    /// Where in the target, when a target spans several places (a Rancher 2 project).
    pub scope: Option<String>,
    /// The resource written, for logs: e.g. `registry 1sp3 credential 1c12`, `Secret apps/ecr-credentials`.
    pub resource: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Updated,
    Created,
    /// The registry did not exist; AUTO_CREATE created it with its credential.
    CreatedWithRegistry,
    /// A ServiceAccount now lists the Secret in its `imagePullSecrets`.
    Linked,
}

/// Something a person may want to know that did not fail the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// No registry or credential names this host, and AUTO_CREATE is off.
    NoRegistry { host: String, scope: Option<String> },
    /// Every credential of this registry is deactivated: someone switched them off on purpose.
    OnlyInactive { host: String, resource: String },
    /// A registry address that is not a host name; skipped.
    MalformedAddress { resource: String, address: String },
    /// Rancher's answer held an item that was not asked for (another registry's credential, another project's
    /// credential); it is never written.
    NotAskedFor { resource: String, reason: String },
}

/// A host (or, for Kubernetes, a place) that could not be brought up to date.
#[derive(Debug)]
pub struct Failure {
    pub host: String,
    pub scope: Option<String>,
    pub error: TargetError,
}

impl Written {
    /// The key under which readiness and metrics track this credential.
    pub fn key(&self) -> String {
        match &self.scope {
            Some(scope) => format!("{scope}/{}", self.host),
            None => self.host.clone(),
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
}
