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

use super::cluster::Kubernetes;
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
                self.seen_secret(target, status, secret).await;
            }
            watcher::Event::Apply(secret) => self.seen_secret(target, status, secret).await,
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
    async fn seen_secret(&self, target: &str, status: &Status, secret: Secret) {
        let Some(namespace) = secret.metadata.namespace.clone() else { return };
        let writer = other_writer(&secret);
        self.restore(target, status, &namespace, Some(secret), writer).await;
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
            let mut state = self.state();
            let (Some(desired), Some(project)) = (state.desired.clone(), state.homes.get(namespace).cloned()) else {
                // A sync in project mode builds its homes anew while it runs: a namespace not (yet) among them is
                // looked at again when the sync ends, not dismissed.
                if state.syncing {
                    state.pending.insert(namespace.to_string());
                    return Verdict::Deferred;
                }
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
                let uid = secret.as_ref().and_then(|s| s.metadata.uid.clone());
                self.contested_event(namespace, uid, writer).await;
                return verdict;
            }
            _ => return verdict,
        }
        let lookup = Lookup::Known(secret.map(Box::new));
        let result = self.ensure_secret(namespace, &desired, project.as_deref(), lookup, SyncOptions::default()).await;
        let ok = result.is_ok();
        {
            let mut state = self.state();
            if let Some(seen) = state.seen.get_mut(namespace) {
                seen.generation = generation;
                seen.ok = ok;
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::super::fake;
    use super::*;
    use serde_json::json;

    #[test]
    fn five_restorations_within_ten_minutes_are_allowed_and_the_sixth_is_not() {
        let start = Instant::now();
        let mut times = VecDeque::new();
        for n in 0..CONTEST_LIMIT {
            let now = start + Duration::from_secs(n as u64);
            assert!(may_restore(&mut times, now), "restoration {n}");
            times.push_back(now);
        }
        assert!(!may_restore(&mut times, start + Duration::from_secs(60)), "the sixth within the window");
        assert!(may_restore(&mut times, start + CONTEST_WINDOW), "the first has aged out");
        assert_eq!(times.len(), CONTEST_LIMIT - 1);
    }

    async fn synced(names: &[&str]) -> (fake::Fake, Kubernetes, Status) {
        let (fake, kube) = fake::target(fake::with_namespaces(names), fake::namespaces(&["*"], &[]));
        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        fake.take_seen();
        (fake, kube, Status::new(&["t".into()]))
    }

    fn secret(fake: &fake::Fake, namespace: &str) -> Secret {
        serde_json::from_value(fake.secret(namespace, "ecr-credentials").unwrap()).unwrap()
    }

    fn writes(fake: &fake::Fake) -> usize {
        fake.take_seen().iter().filter(|s| s.is_write()).count()
    }

    #[tokio::test]
    async fn a_deleted_secret_is_written_again_and_a_current_one_is_left_alone() {
        let (fake, kube, status) = synced(&["apps"]).await;
        let mut listing = Listing::default();
        let current = secret(&fake, "apps");

        kube.secret_event("t", &status, &mut listing, watcher::Event::Apply(current.clone())).await;
        assert_eq!(writes(&fake), 0, "our own write, seen by the watch, is not written again");

        fake.store().secrets.clear();
        kube.secret_event("t", &status, &mut listing, watcher::Event::Delete(current)).await;
        assert_eq!(writes(&fake), 1);
        assert_eq!(fake::password_in(&fake.secret("apps", "ecr-credentials").unwrap()).as_deref(), Some("pw"));
    }

    #[tokio::test]
    async fn a_secret_edited_or_unlabelled_by_someone_else_is_restored_and_one_of_another_type_is_not() {
        let (fake, kube, status) = synced(&["apps", "typed"]).await;
        let mut listing = Listing::default();
        let mut edited = secret(&fake, "apps");
        edited.data = Some([(".dockerconfigjson".to_string(), k8s_openapi::ByteString(b"{}".to_vec()))].into());
        kube.secret_event("t", &status, &mut listing, watcher::Event::Apply(edited)).await;
        assert_eq!(writes(&fake), 1);

        // Our label removed by someone else: the fields we applied still name us in managedFields.
        let mut unlabelled = secret(&fake, "apps");
        unlabelled.metadata.labels = None;
        kube.secret_event("t", &status, &mut listing, watcher::Event::Apply(unlabelled)).await;
        assert_eq!(writes(&fake), 1);

        let mut opaque = secret(&fake, "typed");
        opaque.type_ = Some("Opaque".into());
        kube.secret_event("t", &status, &mut listing, watcher::Event::Apply(opaque)).await;
        assert_eq!(writes(&fake), 0, "a type cannot be changed: reported, never deleted");
        let metrics = status.encode_metrics(std::time::SystemTime::now());
        assert!(metrics.lines().any(|l| l.contains("kind=\"wrong_type\"") && l.ends_with(" 1")), "{metrics}");
    }

    #[tokio::test]
    async fn a_namespace_missing_from_a_new_list_of_the_watch_gets_its_secret_back() {
        let (fake, kube, status) = synced(&["a", "b"]).await;
        let mut listing = Listing::default();
        let kept = secret(&fake, "a");
        fake.store().secrets.remove(&("b".to_string(), "ecr-credentials".to_string()));

        for event in [watcher::Event::Init, watcher::Event::InitApply(kept), watcher::Event::InitDone] {
            kube.secret_event("t", &status, &mut listing, event).await;
        }

        assert_eq!(writes(&fake), 1);
        assert!(fake.secret("b", "ecr-credentials").is_some());
    }

    #[tokio::test]
    async fn after_five_restorations_in_a_namespace_it_is_contested_until_the_next_sync() {
        let (fake, kube, status) = synced(&["fought"]).await;
        let mut theirs = secret(&fake, "fought");
        theirs.data = Some([(".dockerconfigjson".to_string(), k8s_openapi::ByteString(b"{}".to_vec()))].into());
        let mut fields = theirs.metadata.managed_fields.clone().unwrap_or_default();
        let other = json!({"manager": "other-writer", "operation": "Update", "time": "2026-12-07T10:00:00Z"});
        fields.push(serde_json::from_value(other).unwrap());
        theirs.metadata.managed_fields = Some(fields);

        let mut verdicts = Vec::new();
        for _ in 0..7 {
            verdicts.push(kube.restore("t", &status, "fought", Some(theirs.clone()), other_writer(&theirs)).await);
        }

        assert_eq!(verdicts[..5], vec![Verdict::Restore; 5]);
        assert_eq!(verdicts[5], Verdict::Contested { writer: Some("other-writer".into()) });
        assert_eq!(verdicts[6], Verdict::Deferred, "left alone, and said once");
        assert_eq!(writes(&fake), 5, "no hot loop");
        let events = fake.store().events.clone();
        let contested: Vec<_> = events.iter().filter(|e| e["reason"] == "Contested").collect();
        assert_eq!(contested.len(), 1, "{events:?}");
        assert!(contested[0]["note"].as_str().unwrap().contains("other-writer"), "{}", contested[0]);
        assert_eq!(contested[0]["regarding"]["uid"], "uid-secret-fought");

        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        fake.take_seen();
        assert_eq!(
            kube.restore("t", &status, "fought", Some(theirs), None).await,
            Verdict::Restore,
            "a refresh ends it"
        );
    }

    #[tokio::test]
    async fn a_change_seen_while_a_sync_runs_is_looked_at_when_it_ends() {
        let (fake, kube, status) = synced(&["apps"]).await;
        kube.state().syncing = true;
        fake.store().secrets.clear();
        assert_eq!(kube.restore("t", &status, "apps", None, None).await, Verdict::Deferred);
        assert_eq!(writes(&fake), 0);
        kube.state().syncing = false;

        kube.after_sync("t", &status).await;

        assert!(fake.secret("apps", "ecr-credentials").is_some());
    }

    #[tokio::test]
    async fn a_change_in_a_namespace_a_running_sync_has_not_reached_yet_is_looked_at_when_it_ends() {
        // Project mode rebuilds its homes while a sync runs: a change seen before the sync reached the namespace
        // must not be dismissed as not ours.
        let (fake, kube, status) = synced(&["apps"]).await;
        kube.state().syncing = true;
        let home = kube.state().homes.remove("apps");
        fake.store().secrets.clear();
        assert_eq!(kube.restore("t", &status, "apps", None, None).await, Verdict::Deferred);
        assert_eq!(writes(&fake), 0);
        kube.state().homes.extend(home.map(|project| ("apps".to_string(), project)));
        kube.state().syncing = false;

        kube.after_sync("t", &status).await;

        assert!(fake.secret("apps", "ecr-credentials").is_some());
        assert_eq!(kube.restore("t", &status, "elsewhere", None, None).await, Verdict::NotOurs, "outside a sync");
    }

    #[tokio::test]
    async fn a_namespace_made_again_under_the_same_name_is_written_by_the_watch_of_namespaces() {
        let (fake, kube, status) = synced(&["apps"]).await;
        kube.catch_up("t", &status, "apps", Some("uid-apps")).await;
        assert!(fake.take_seen().is_empty(), "the same namespace, current: nothing to do");

        // A restore: the namespace is made again (another uid), empty.
        fake.store().secrets.clear();
        kube.catch_up("t", &status, "apps", Some("uid-apps-2")).await;

        assert!(fake.secret("apps", "ecr-credentials").is_some(), "decided by what the server holds");
    }
}
