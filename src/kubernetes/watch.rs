//! The watch of a Kubernetes target between refreshes: namespaces (and ServiceAccounts) created or changed
//! get the Secret within seconds, and after each full sync the watch catches up on the namespaces it saw.
//! Its failures go through the same policy as the refresh loop's ([`super::outcome`]).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::cluster::{Kubernetes, Reads, Seen};
use super::error::one_line;
use super::heal::Listing;
use super::namespaces::terminating;
use super::outcome;
use super::read::Lookup;
use super::relist::{Selector, relisting};
use super::settings::Mode;
use crate::report::{Failure, SyncOptions};
use crate::status::Status;

impl Kubernetes {
    /// Watches namespaces (and ServiceAccounts, when configured) until `shutdown`, so that a namespace or
    /// ServiceAccount created between two refreshes gets the Secret within seconds, and our Secrets (when the
    /// cluster-wide LIST of them is allowed), so that one deleted or changed by someone else is restored at once
    /// ([`super::heal`]). Project mode watches only the Secrets. After an error each watch starts again from a
    /// new LIST ([`super::relist`]).
    pub async fn watch(&self, target: &str, status: &Status, shutdown: &CancellationToken) {
        let selection = match &self.settings.mode {
            Mode::Namespaces(selection) => Some(selection),
            Mode::Projects(_) => None,
        };
        let namespaces = selection.map(|selection| {
            let selector = Selector { labels: selection.label_selector().map(str::to_string), fields: None };
            Box::pin(relisting(Api::<Namespace>::all(self.watch_client.clone()), selector))
        });
        let mut namespaces = namespaces;
        let accounts = if self.settings.service_accounts.is_empty() || selection.is_none() {
            None
        } else {
            let mut config = watcher::Config::default();
            if let [only] = self.settings.service_accounts.as_slice()
                && only != "*"
            {
                config = config.fields(&format!("metadata.name={only}"));
            }
            Some(watcher(Api::<ServiceAccount>::all(self.watch_client.clone()), config).default_backoff())
        };
        let mut accounts = accounts.map(Box::pin);
        // Started after the first sync, once it is known that the cluster-wide LIST of Secrets is allowed.
        let mut secrets = None;
        let mut listing = Listing::default();
        // Namespace → uid, as the watch of namespaces shows them; `relisted`: those of a LIST in progress.
        let mut known: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut relisted: Option<BTreeSet<String>> = None;
        let mut failing = [false, false, false];
        if namespaces.is_some() {
            info!(target = %target, "Watching namespaces for new ones");
        }
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = self.synced.notified() => {
                    if secrets.is_none() && self.state().reads == Some(Reads::List) {
                        info!(target = %target, secret = %self.settings.secret_name, "Watching our Secrets, to restore one deleted or changed by someone else");
                        secrets = Some(Box::pin(relisting(Api::<Secret>::all(self.watch_client.clone()), self.secrets_selector())));
                    }
                    for (namespace, uid) in known.clone() {
                        self.catch_up(target, status, &namespace, uid.as_deref()).await;
                    }
                    self.after_sync(target, status).await;
                }
                event = next_or_pending(&mut namespaces) => match event {
                    Err(e) => {
                        if !std::mem::replace(&mut failing[0], true) {
                            warn!(target = %target, error = %one_line(&e), "Watch of namespaces failed; listing them again with backoff");
                        }
                    }
                    Ok(event) => {
                        // `Init` comes before the list that may still fail: only a listed object or the end of
                        // the list shows the watch is back.
                        if !matches!(event, watcher::Event::Init) && std::mem::replace(&mut failing[0], false) {
                            info!(target = %target, "Watch of namespaces is back");
                        }
                        let Some(selection) = selection else { continue };
                        match event {
                            watcher::Event::Apply(ns) | watcher::Event::InitApply(ns) => {
                                let Some(name) = ns.metadata.name.clone() else { continue };
                                if let Some(relisted) = relisted.as_mut() {
                                    relisted.insert(name.clone());
                                }
                                if selection.selects(&name) && !terminating(&ns) {
                                    known.insert(name.clone(), ns.metadata.uid.clone());
                                    self.catch_up(target, status, &name, ns.metadata.uid.as_deref()).await;
                                } else if known.remove(&name).is_some() {
                                    self.forget(target, status, &name);
                                }
                            }
                            watcher::Event::Delete(ns) => {
                                if let Some(name) = ns.metadata.name.as_deref() && known.remove(name).is_some() {
                                    self.forget(target, status, name);
                                }
                            }
                            watcher::Event::Init => relisted = Some(BTreeSet::new()),
                            watcher::Event::InitDone => {
                                // A namespace missing from a new LIST is gone (deleted while the watch was away,
                                // or a restored cluster).
                                let listed = relisted.take().unwrap_or_default();
                                for name in known.keys().filter(|n| !listed.contains(*n)).cloned().collect::<Vec<_>>() {
                                    known.remove(&name);
                                    self.forget(target, status, &name);
                                }
                            }
                        }
                    }
                },
                event = next_or_pending(&mut secrets) => match event {
                    Err(e) => {
                        if !std::mem::replace(&mut failing[2], true) {
                            warn!(target = %target, error = %one_line(&e), "Watch of our Secrets failed; listing them again with backoff");
                        }
                    }
                    Ok(event) => {
                        if !matches!(event, watcher::Event::Init) && std::mem::replace(&mut failing[2], false) {
                            info!(target = %target, "Watch of our Secrets is back");
                        }
                        self.secret_event(target, status, &mut listing, event).await;
                    }
                },
                event = next_or_pending(&mut accounts) => match event {
                    Err(e) => {
                        if !std::mem::replace(&mut failing[1], true) {
                            warn!(target = %target, error = %one_line(&e.to_string()), "Watch of ServiceAccounts failed; reconnecting with backoff");
                        }
                    }
                    Ok(watcher::Event::Apply(account) | watcher::Event::InitApply(account)) => {
                        failing[1] = false;
                        self.account_seen(target, status, &known, &account).await;
                    }
                    Ok(watcher::Event::Init) => {}
                    Ok(_) => failing[1] = false,
                },
            }
        }
    }

    /// The watch of our Secrets: by name in every namespace, as the sync's LIST reads them.
    pub(super) fn secrets_selector(&self) -> Selector {
        Selector { labels: None, fields: Some(format!("metadata.name={}", self.settings.secret_name)) }
    }

    /// A selected namespace seen by the watch: writes it unless the last sync or write found it holding the
    /// current token, in this very namespace (same uid: a namespace deleted and made again is another one).
    pub(super) async fn catch_up(&self, target: &str, status: &Status, namespace: &str, uid: Option<&str>) {
        let (desired, generation, new) = {
            let state = self.state();
            let Some(desired) = state.desired.clone() else { return };
            let same = |seen: &Seen| seen.generation == state.generation && uid.is_some() && seen.uid.as_deref() == uid;
            if state.syncing || state.seen.get(namespace).is_some_and(same) {
                return;
            }
            (desired, state.generation, !state.counted.contains(namespace))
        };
        let (written, error) = self.ensure_namespace(namespace, &desired, Lookup::Read, SyncOptions::default()).await;
        let places = {
            let mut state = self.state();
            let seen = Seen { uid: uid.map(str::to_string), generation, ok: error.is_none() };
            state.seen.insert(namespace.to_string(), seen);
            state.counted.insert(namespace.to_string());
            state.homes.insert(namespace.to_string(), None);
            state.places()
        };
        status.places(target, &places);
        if new {
            debug!(target = %target, namespace, "New namespace");
        }
        for w in &written {
            outcome::log_written(target, w, desired.expires_at, false);
        }
        if let Some(error) = error {
            self.tell(&error).await;
            let failure = Failure { host: desired.hosts(), scope: Some(namespace.to_string()), error: &error };
            outcome::on_failure(status, target, &failure);
        }
    }

    fn forget(&self, target: &str, status: &Status, namespace: &str) {
        let places = {
            let mut state = self.state();
            state.seen.remove(namespace);
            state.homes.remove(namespace);
            if !state.counted.remove(namespace) {
                return;
            }
            state.places()
        };
        status.places(target, &places);
    }

    /// A ServiceAccount seen by the watch: links the Secret when its namespace holds it and it is one of ours.
    async fn account_seen(
        &self,
        target: &str,
        status: &Status,
        known: &BTreeMap<String, Option<String>>,
        account: &ServiceAccount,
    ) {
        let (Some(namespace), Some(name)) = (account.metadata.namespace.as_deref(), account.metadata.name.as_deref())
        else {
            return;
        };
        let wanted = self.settings.service_accounts.iter().any(|w| w == "*" || w == name);
        let ready = {
            let state = self.state();
            state.desired.is_some() && state.seen.get(namespace).is_some_and(|s| s.ok)
        };
        if !wanted || !ready || !known.contains_key(namespace) {
            return;
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        match self.link(&api, namespace, account, SyncOptions::default()).await {
            Ok(Some(w)) => info!(target = %target, resource = %w.resource, secret = %self.settings.secret_name,
                "Added the Secret to the ServiceAccount's imagePullSecrets"),
            Ok(None) => {}
            // Someone changed it since the watch saw it: the watch shows the change, and it is tried again.
            Err(error) if error.kind() == "conflict" => {
                debug!(target = %target, error = %error, "ServiceAccount changed while linking")
            }
            Err(error) => {
                self.tell(&error).await;
                let failure = Failure {
                    host: self.settings.secret_name.clone(),
                    scope: Some(namespace.to_string()),
                    error: &error,
                };
                outcome::on_failure(status, target, &failure);
            }
        }
    }
}

async fn next_or_pending<S, T>(stream: &mut Option<S>) -> T
where
    S: futures_util::Stream<Item = T> + Unpin,
{
    match stream {
        Some(stream) => match stream.next().await {
            Some(item) => item,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::*;

    #[tokio::test]
    async fn the_watch_writes_a_new_namespace_at_once_and_leaves_a_current_one_alone() {
        let (fake, kube) = fake::target(fake::with_namespaces(&["apps"]), fake::namespaces(&["*"], &[]));
        let status = Status::new(&["t".into()]);
        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        fake.store().namespaces.insert("team-new".into(), Default::default());
        fake.take_seen();

        kube.catch_up("t", &status, "team-new", Some("uid-team-new")).await;

        assert_eq!(fake::password_in(&fake.secret("team-new", "ecr-credentials").unwrap()).as_deref(), Some("pw"));
        assert_eq!(kube.state().places(), crate::report::Places { total: 2, missing: Vec::new() });
        fake.take_seen();
        kube.catch_up("t", &status, "team-new", Some("uid-team-new")).await;
        kube.catch_up("t", &status, "apps", Some("uid-apps")).await;
        assert!(fake.take_seen().is_empty(), "a namespace that holds the current token is not read again");
    }

    #[tokio::test]
    async fn the_watch_leaves_namespaces_to_a_running_sync_and_waits_for_a_first_token() {
        let (fake, kube) = fake::target(fake::with_namespaces(&["apps"]), fake::namespaces(&["*"], &[]));
        let status = Status::new(&["t".into()]);
        kube.catch_up("t", &status, "apps", Some("uid-apps")).await;
        assert!(fake.take_seen().is_empty(), "nothing to write before the first sync");

        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        fake.store().namespaces.insert("team-new".into(), Default::default());
        kube.state().syncing = true;
        fake.take_seen();
        kube.catch_up("t", &status, "team-new", Some("uid-team-new")).await;
        assert!(fake.take_seen().is_empty(), "a running sync covers it");
    }

    #[tokio::test]
    async fn a_failure_of_the_watch_is_counted_like_one_of_the_refresh() {
        let mut store = fake::with_namespaces(&["apps"]);
        store.forbidden.insert("locked".into());
        let (fake, kube) = fake::target(store, fake::namespaces(&["*"], &[]));
        let status = Status::new(&["t".into()]);
        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        fake.store().namespaces.insert("locked".into(), Default::default());

        kube.catch_up("t", &status, "locked", Some("uid-locked")).await;

        let metrics = status.encode_metrics(std::time::SystemTime::now());
        let counted = metrics.lines().any(|l| {
            l.starts_with("rancher_ecr_credentials_errors_total")
                && l.contains("source=\"kubernetes\"")
                && l.contains("kind=\"forbidden\"")
                && l.ends_with(" 1")
        });
        assert!(counted, "{metrics}");
        assert_eq!(kube.state().places().missing, ["locked"]);
    }
}
