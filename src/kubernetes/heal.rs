//! Self-healing: what the watch of our Secrets does with what it sees. A Secret of ours deleted, or its data or
//! label changed by someone else, is written again at once with the current token; a Secret whose type was
//! changed is reported (its type cannot be changed in place). Whether a namespace holds the current token is
//! decided by the Secret the server shows (the watch's LIST and events), never by what this daemon remembers.
//!
//! **Contested**: after [`CONTEST_LIMIT`] restorations within [`CONTEST_WINDOW`] in one namespace, another writer is
//! fighting over the Secret: it is not restored there again until the next refresh, with one ERROR naming the
//! namespace and the other writer (its field manager, when `managedFields` names one).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::watcher;
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::cluster::{Kubernetes, Seen};
use super::outcome;
use super::read::Lookup;
use super::secret::{Existing, judge, other_writer};
use crate::report::{Failure, SyncOptions};
use crate::status::Status;

/// Restorations in one namespace within [`CONTEST_WINDOW`] after which it is left alone until the next refresh.
pub const CONTEST_LIMIT: usize = 5;
pub const CONTEST_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The namespaces of a LIST of the watch in progress: one missing from it at its end has no Secret.
#[derive(Default)]
pub(super) struct Listing(Option<BTreeSet<String>>);

/// Where a Secret the watch saw stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not in a namespace we write to, or nothing to write yet.
    NotOurs,
    /// Holds the current token.
    Current,
    /// Deleted or changed: write it again.
    Restore,
    /// Left alone: a sync is running (looked at when it ends), or the namespace is contested.
    Deferred,
    /// Another writer keeps changing it: from now on left alone until the next refresh.
    Contested { writer: Option<String> },
}

/// Whether one more restoration is allowed in a namespace restored at `times` (pruned to the window): `false`
/// once [`CONTEST_LIMIT`] restorations fall within [`CONTEST_WINDOW`] before `now`.
pub(super) fn may_restore(times: &mut std::collections::VecDeque<Instant>, now: Instant) -> bool {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= CONTEST_WINDOW) {
        times.pop_front();
    }
    times.len() < CONTEST_LIMIT
}

impl Kubernetes {
    /// One event of the watch of our Secrets.
    pub(super) async fn secret_event(
        &self,
        target: &str,
        status: &Status,
        listing: &mut Listing,
        event: watcher::Event<Secret>,
    ) {
        match event {
            watcher::Event::Init => listing.0 = Some(BTreeSet::new()),
            watcher::Event::InitApply(secret) => {
                if let (Some(listed), Some(namespace)) = (listing.0.as_mut(), secret.metadata.namespace.clone()) {
                    listed.insert(namespace);
                }
                self.seen_secret(target, status, Some(secret), None).await;
            }
            watcher::Event::Apply(secret) => self.seen_secret(target, status, Some(secret), None).await,
            watcher::Event::Delete(secret) => {
                let namespace = secret.metadata.namespace.clone();
                let writer = other_writer(&secret);
                if let Some(namespace) = namespace {
                    debug!(target = %target, namespace = %namespace, "Our Secret was deleted");
                    self.restore(target, status, &namespace, None, writer).await;
                }
            }
            watcher::Event::InitDone => {
                // A namespace we write to that the new LIST did not show has lost its Secret (deleted while the
                // watch was away, or a restored cluster).
                let listed = listing.0.take().unwrap_or_default();
                let homes: Vec<String> = self.state().homes.keys().filter(|h| !listed.contains(*h)).cloned().collect();
                for namespace in homes {
                    self.restore(target, status, &namespace, None, None).await;
                }
            }
        }
    }

    /// A Secret the watch shows: restored when it does not hold the current token.
    async fn seen_secret(&self, target: &str, status: &Status, secret: Option<Secret>, writer: Option<String>) {
        let Some(namespace) = secret.as_ref().and_then(|s| s.metadata.namespace.clone()) else { return };
        let writer = writer.or_else(|| secret.as_ref().and_then(other_writer));
        self.restore(target, status, &namespace, secret, writer).await;
    }

    /// Judges the Secret of `namespace` as the watch shows it (`None`: there is none) and writes it again when it
    /// needs it, within the contest limit.
    pub(super) async fn restore(
        &self,
        target: &str,
        status: &Status,
        namespace: &str,
        secret: Option<Secret>,
        writer: Option<String>,
    ) -> Verdict {
        let (desired, generation, project) = {
            let state = self.state();
            let (Some(desired), Some(project)) = (state.desired.clone(), state.homes.get(namespace).cloned()) else {
                return Verdict::NotOurs;
            };
            (desired, state.generation, project)
        };
        match judge(secret.as_ref(), &desired, self.settings.adopt, project.as_deref()) {
            Existing::Current => {
                let mut state = self.state();
                if let Some(seen) = state.seen.get_mut(namespace)
                    && seen.generation == generation
                {
                    seen.ok = true;
                }
                return Verdict::Current;
            }
            Existing::RancherCopy => return Verdict::NotOurs,
            // Someone else's Secret of that name: the sync reports it; an Event says so where people look.
            Existing::Foreign => {
                let place = format!("{namespace}/{}", self.settings.secret_name);
                self.tell(&super::error::KubernetesError::Foreign { place }).await;
                return Verdict::NotOurs;
            }
            // A type cannot be changed: the write below refuses it, as a failure (WriteFailed).
            Existing::WrongType | Existing::Missing | Existing::Stale => {}
        }
        let verdict = {
            let mut state = self.state();
            if state.syncing {
                state.pending.insert(namespace.to_string());
                Verdict::Deferred
            } else if state.contested.contains(namespace) {
                Verdict::Deferred
            } else {
                let now = Instant::now();
                let times = state.restorations.entry(namespace.to_string()).or_default();
                if may_restore(times, now) {
                    times.push_back(now);
                    Verdict::Restore
                } else {
                    state.contested.insert(namespace.to_string());
                    Verdict::Contested { writer: writer.clone() }
                }
            }
        };
        match &verdict {
            Verdict::Restore => {}
            Verdict::Contested { writer } => {
                let writer = writer.as_deref().unwrap_or("unknown (no other field manager in managedFields)");
                error!(target = %target, namespace, secret = %self.settings.secret_name, writer,
                    "Another writer keeps changing our Secret ({CONTEST_LIMIT} restorations within {}): not restored in this namespace until the next refresh",
                    humantime::format_duration(CONTEST_WINDOW));
                self.contested_event(namespace, writer).await;
                return verdict;
            }
            _ => return verdict,
        }
        let lookup = Lookup::Known(secret);
        let result = self.ensure_secret(namespace, &desired, project.as_deref(), lookup, SyncOptions::default()).await;
        let ok = result.is_ok();
        {
            let mut state = self.state();
            if let Some(seen) = state.seen.get_mut(namespace) {
                *seen = Seen { uid: seen.uid.clone(), generation, ok };
            }
        }
        match result {
            Ok(Some(written)) => {
                info!(target = %target, namespace, secret = %self.settings.secret_name,
                    writer = writer.as_deref().unwrap_or("unknown"), "Restored our Secret, deleted or changed by someone else");
                outcome::log_written(target, &written, desired.expires_at, false);
            }
            Ok(None) => {}
            // The namespace itself is gone (deleted, or not made again yet after a restore): the watch of
            // namespaces sees it come back.
            Err(error) if error.kind() == "not_found" => {
                debug!(target = %target, namespace, error = %error, "Namespace gone; nothing to restore")
            }
            Err(error) => {
                self.tell(&error).await;
                let failure = Failure { host: desired.hosts(), scope: Some(namespace.to_string()), error: &error };
                outcome::on_failure(status, target, &failure);
            }
        }
        verdict
    }

    /// After a sync: the namespaces whose Secret changed while it ran, read again.
    pub(super) async fn after_sync(&self, target: &str, status: &Status) {
        let pending = std::mem::take(&mut self.state().pending);
        for namespace in pending {
            let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), &namespace);
            let call = super::error::Call {
                verb: "get",
                resource: "secrets",
                place: format!("{namespace}/{}", self.settings.secret_name),
            };
            match call.run(self.settings.timeout, api.get_opt(&self.settings.secret_name)).await {
                Ok(secret) => {
                    let writer = secret.as_ref().and_then(other_writer);
                    self.restore(target, status, &namespace, secret, writer).await;
                }
                Err(error) => {
                    debug!(target = %target, namespace = %namespace, error = %error, "Could not read the Secret again")
                }
            }
        }
    }
}
