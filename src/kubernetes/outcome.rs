//! How the outcome of a Kubernetes write is logged and counted: the failure policy of a Kubernetes target.
//! The refresh loop (through [`crate::target`]) and the watch ([`super::watch`]) both go through it.

use std::time::SystemTime;

use tracing::{error, info, warn};

use super::error::KubernetesError;
use crate::report::{Failure, Written, rfc3339};
use crate::status::Status;

/// One line per Secret or ServiceAccount written (or, with `dry_run`, that would be).
pub fn log_written(target: &str, written: &Written, expires_at: Option<SystemTime>, dry_run: bool) {
    info!(registry = %written.host, target = %target, resource = %written.resource,
        expires_at = %rfc3339(expires_at), "{}", written.action.message(dry_run));
}

/// Counts a failed namespace (or project) in the metrics and logs it: ERROR with what to do when retrying will
/// not help, WARN otherwise. The error names the namespace, the verb and the resource; the failure's scope is
/// the namespace.
pub fn on_failure(status: &Status, target: &str, failure: &Failure<&KubernetesError>) {
    let (namespace, e) = (failure.scope.as_deref().unwrap_or_default(), failure.error);
    status.error("kubernetes", e.kind());
    match (e.is_permanent(), e.hint()) {
        (true, Some(hint)) => error!(target = %target, namespace, error = %e, kind = e.kind(), "{hint}"),
        (true, None) => {
            error!(target = %target, namespace, error = %e, kind = e.kind(), "Could not write the Secret")
        }
        (false, _) => {
            warn!(target = %target, namespace, error = %e, kind = e.kind(), "Could not write the Secret; will retry")
        }
    }
}
