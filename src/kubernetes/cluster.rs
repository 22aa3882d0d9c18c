//! The Kubernetes target itself: one API server (a cluster, or Rancher's proxy to one), its clients, and what it
//! knows between calls (the token to write, and which namespaces hold it). The jobs are in their own files:
//! [`super::sync`], [`super::namespaces`], [`super::accounts`], [`super::projects`], [`super::watch`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

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
}

/// What the target knows between calls: the token to write, and which namespaces hold it.
#[derive(Default)]
pub(super) struct State {
    pub(super) desired: Option<Arc<Desired>>,
    /// Bumped whenever the token to write changes.
    pub(super) generation: u64,
    /// Namespace → the generation it was last brought up to date at (or failed at).
    pub(super) seen: HashMap<String, (u64, bool)>,
    /// The namespaces (or projects) selected, as far as the last sync and the watch know.
    pub(super) counted: BTreeSet<String>,
    /// A full sync is running: the watch leaves namespaces to it, and catches up when it ends.
    pub(super) syncing: bool,
}

impl State {
    /// The places and those that do not hold the current token.
    pub(super) fn places(&self) -> Places {
        let current = |place: &String| self.seen.get(place).is_some_and(|(g, ok)| *g == self.generation && *ok);
        Places { total: self.counted.len(), missing: self.counted.iter().filter(|p| !current(p)).cloned().collect() }
    }
}

impl Kubernetes {
    /// `client` for ordinary calls (with a read timeout), `watch_client` for watches; `server` names the API
    /// server in logs.
    pub fn new(client: kube::Client, watch_client: kube::Client, server: String, settings: Settings) -> Kubernetes {
        Kubernetes {
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
