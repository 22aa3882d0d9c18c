//! How the outcome of a Rancher sync is logged and counted: the failure policy of a Rancher target, used by
//! the refresh loop through [`crate::target`].

use std::time::SystemTime;

use tracing::{error, info, warn};

use super::error::RancherError;
use crate::report::{Failure, Notice, Written, rfc3339};
use crate::status::Status;

/// One line per credential written (or, with `dry_run`, that would be).
pub fn log_written(target: &str, written: &Written, expires_at: Option<SystemTime>, dry_run: bool) {
    info!(registry = %written.host, rancher = %target, scope = written.scope.as_deref(),
        resource = %written.resource, expires_at = %rfc3339(expires_at),
        "{}", written.action.message(dry_run));
}

/// One line per notice: something a person may want to know that did not fail the sync.
pub fn log_notice(target: &str, notice: &Notice) {
    match notice {
        Notice::NoRegistry { host, scope } => warn!(registry = %host, rancher = %target,
            scope = scope.as_deref(),
            "No registry in Rancher for this ECR host; add it in Rancher or set AUTO_CREATE=true"),
        Notice::OnlyInactive { host, resource } => warn!(registry = %host, rancher = %target,
            resource = %resource, "Every credential of this registry is deactivated; leaving them alone"),
        Notice::MalformedAddress { resource, address } => warn!(rancher = %target, resource = %resource,
            server_address = %address, "Skipped a Rancher registry whose address is not a host name"),
        Notice::NotAskedFor { resource, reason } => warn!(rancher = %target, resource = %resource,
            reason = %reason, "Skipped an item Rancher returned that was not asked for; not written"),
    }
}

/// Counts a failed credential in the metrics and logs it: ERROR with what to do when retrying will not help,
/// WARN otherwise.
pub fn on_failure(status: &Status, target: &str, failure: &Failure<&RancherError>) {
    let (host, scope, e) = (&failure.host, failure.scope.as_deref(), failure.error);
    status.error("rancher", e.kind());
    match (e.is_permanent(), e.hint()) {
        (true, Some(hint)) => {
            error!(registry = %host, rancher = %target, scope, error = %e, kind = e.kind(), "{hint}")
        }
        (true, None) => {
            error!(registry = %host, rancher = %target, scope, error = %e, kind = e.kind(), "Rancher refused the update")
        }
        (false, _) => warn!(registry = %host, rancher = %target, scope, error = %e, kind = e.kind(),
            "Could not update Rancher; will retry"),
    }
}
