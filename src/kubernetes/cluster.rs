//! The Kubernetes target itself: one API server (a cluster, or Rancher's proxy to one), its clients, and what it
//! knows between calls (the token to write, and which namespaces hold it). The jobs are in their own files:
//! [`super::sync`], [`super::namespaces`], [`super::accounts`], [`super::projects`], [`super::watch`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::events::{self, Events, REPORTING_CONTROLLER};
use super::secret::Desired;
use super::settings::Settings;
use crate::report::Places;
use crate::token::RegistryToken;

/// A Kubernetes target: one API server (a cluster, or Rancher's proxy to one) and what to write there.
pub struct Kubernetes {
    pub(super) client: kube::Client,
    /// Watches hold a request open for minutes: a client without the per-call read timeout.
    pub(super) watch_client: kube::Client,
    server: String,
    pub(super) settings: Settings,
    state: Mutex<State>,
    /// Signalled after each full sync, so that the watch catches namespaces the sync did not see.
    pub(super) synced: tokio::sync::Notify,
    /// Warning Events about our Secrets and ServiceAccounts ([`super::tell`] decides which).
    pub(super) events: Events,
}

/// What the target knows between calls: the token to write, and which namespaces hold it.
#[derive(Default)]
pub(super) struct State {
    pub(super) desired: Option<Arc<Desired>>,
    /// Bumped whenever the token to write changes.
    pub(super) generation: u64,
    /// Place (namespace or project) → what the last write or check there found. Only a hint for the watch of
    /// namespaces: whether a namespace holds the Secret is decided by what the server holds (the sync's LIST,
    /// the watch of Secrets, a GET), and a namespace re-created under the same name has another uid.
    pub(super) seen: HashMap<String, Seen>,
    /// The namespaces (or projects) selected, as far as the last sync and the watch know.
    pub(super) counted: BTreeSet<String>,
    /// The namespaces the Secret is written in → the project label it carries there (project mode).
    pub(super) homes: BTreeMap<String, Option<String>>,
    /// A full sync is running: the watch leaves namespaces to it, and catches up when it ends.
    pub(super) syncing: bool,
    /// How the last sync read the Secrets; `None` before the first.
    pub(super) reads: Option<Reads>,
    /// Namespaces whose Secret changed while a sync was running: looked at again when it ends.
    pub(super) pending: BTreeSet<String>,
    /// Namespace → when the watch restored its Secret lately (the last [`super::heal::CONTEST_WINDOW`]).
    pub(super) restorations: HashMap<String, VecDeque<Instant>>,
    /// Namespaces where another writer keeps changing the Secret: not restored until the next sync.
    pub(super) contested: BTreeSet<String>,
}

/// What the last write or check of one place found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seen {
    /// The namespace's uid, when known: another uid is another namespace.
    pub(super) uid: Option<String>,
    /// The token generation it was checked at.
    pub(super) generation: u64,
    /// It held the current token (or was written with it).
    pub(super) ok: bool,
}

/// How a sync reads the Secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reads {
    /// One cluster-wide LIST by field selector (paged); the watch of Secrets restores them.
    List,
    /// That LIST is forbidden (namespaced RBAC): one GET per namespace.
    Get,
}

impl State {
    /// The places and those that do not hold the current token.
    pub(super) fn places(&self) -> Places {
        let current = |place: &String| self.seen.get(place).is_some_and(|s| s.generation == self.generation && s.ok);
        Places { total: self.counted.len(), missing: self.counted.iter().filter(|p| !current(p)).cloned().collect() }
    }
}

impl Kubernetes {
    /// `client` for ordinary calls (with a read timeout), `watch_client` for watches; `server` names the API
    /// server in logs.
    pub fn new(client: kube::Client, watch_client: kube::Client, server: String, settings: Settings) -> Kubernetes {
        let instance = crate::leader::default_identity().unwrap_or_else(|| REPORTING_CONTROLLER.to_string());
        let events = Events::new(
            client.clone(),
            events::Settings {
                enabled: settings.events,
                instance,
                timeout: settings.timeout.min(events::DEFAULT_TIMEOUT),
            },
        );
        Kubernetes {
            events,
            client,
            watch_client,
            server,
            settings,
            state: Mutex::new(State::default()),
            synced: tokio::sync::Notify::new(),
        }
    }

    /// The name of the target in logs, metrics and readiness: the API server's URL.
    pub fn name(&self) -> String {
        self.server.clone()
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the tokens as the ones to write from now on; returns them with their generation.
    pub(super) fn set_desired(&self, tokens: &[RegistryToken]) -> (Arc<Desired>, u64) {
        let desired = Desired::new(tokens);
        let mut state = self.state();
        let same = state.desired.as_ref().is_some_and(|known| known.same_as(&desired));
        if !same {
            state.desired = Some(Arc::new(desired));
            state.generation += 1;
        }
        (state.desired.clone().expect("set just above"), state.generation)
    }
}
