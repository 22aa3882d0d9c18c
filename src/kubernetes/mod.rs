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
//! - [`secret`]: the Secret, and how an existing one is judged;
//! - [`select`]: namespace names, globs, label selectors.

pub mod events;
pub mod secret;
pub mod select;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::ecr::RegistryToken;
use crate::status::Status;
use crate::target::{Action, Failure, Places, SyncOptions, SyncReport, Written};
use secret::{Desired, Existing, FIELD_MANAGER};
pub use select::Selection;

/// How many namespaces are written to at the same time.
const CONCURRENCY: usize = 16;

/// What a Kubernetes target writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One Secret in each selected namespace.
    Namespaces(Selection),
    /// Rancher 2.12+ project-scoped secrets: project ids `c-xxxxx:p-xxxxx` (cluster namespace : project name).
    Projects(Vec<String>),
}

/// The settings that shape a Kubernetes target (the connection is made by the caller).
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub secret_name: String,
    /// ServiceAccounts whose `imagePullSecrets` get the Secret; `*` for all.
    pub service_accounts: Vec<String>,
    /// Take over an existing Secret of that name that is not ours.
    pub adopt: bool,
    /// Time limit of each call (watches excepted).
    pub timeout: Duration,
}

/// A Kubernetes target: one API server (a cluster, or Rancher's proxy to one) and what to write there.
pub struct Kubernetes {
    client: kube::Client,
    /// Watches hold a request open for minutes: a client without the per-call read timeout.
    watch_client: kube::Client,
    server: String,
    settings: Settings,
    state: Mutex<State>,
    /// Signalled after each full sync, so that the watch catches namespaces the sync did not see.
    synced: tokio::sync::Notify,
}

/// What the target knows between calls: the token to write, and which namespaces hold it.
#[derive(Default)]
struct State {
    desired: Option<Arc<Desired>>,
    /// Bumped whenever the token to write changes.
    generation: u64,
    /// Namespace → the generation it was last brought up to date at (or failed at).
    seen: HashMap<String, (u64, bool)>,
    /// The namespaces (or projects) selected, as far as the last sync and the watch know.
    counted: BTreeSet<String>,
    /// A full sync is running: the watch leaves namespaces to it, and catches up when it ends.
    syncing: bool,
}

impl State {
    /// The places and those that do not hold the current token.
    fn places(&self) -> Places {
        let current = |place: &String| self.seen.get(place).is_some_and(|(g, ok)| *g == self.generation && *ok);
        Places { total: self.counted.len(), missing: self.counted.iter().filter(|p| !current(p)).cloned().collect() }
    }
}

/// The outcome of one namespace or project.
struct PlaceOutcome {
    place: String,
    written: Vec<Written>,
    error: Option<KubernetesError>,
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the tokens as the ones to write from now on; returns them with their generation.
    fn set_desired(&self, tokens: &[RegistryToken]) -> (Arc<Desired>, u64) {
        let desired = Desired::new(tokens);
        let mut state = self.state();
        let same = state.desired.as_ref().is_some_and(|known| known.same_as(&desired));
        if !same {
            state.desired = Some(Arc::new(desired));
            state.generation += 1;
        }
        (state.desired.clone().expect("set just above"), state.generation)
    }

    /// Brings every selected namespace (or project) up to date. A place that fails does not stop the others;
    /// only a failed listing of namespaces fails the whole sync.
    pub async fn sync(&self, tokens: &[RegistryToken], options: SyncOptions) -> Result<SyncReport, KubernetesError> {
        let (desired, generation) = self.set_desired(tokens);
        if !options.dry_run {
            self.state().syncing = true;
        }
        let outcomes = self.sync_places(&desired, options).await;
        if !options.dry_run {
            self.state().syncing = false;
        }
        let outcomes = outcomes?;

        let mut report = SyncReport::default();
        let mut places = Places { total: outcomes.len(), missing: Vec::new() };
        if !options.dry_run {
            let mut state = self.state();
            state.counted = outcomes.iter().map(|o| o.place.clone()).collect();
            for outcome in &outcomes {
                state.seen.insert(outcome.place.clone(), (generation, outcome.error.is_none()));
            }
        }
        for outcome in outcomes {
            report.written.extend(outcome.written);
            if let Some(error) = outcome.error {
                places.missing.push(outcome.place.clone());
                report.failures.push(Failure {
                    host: desired.hosts(),
                    scope: Some(outcome.place),
                    error: error.into(),
                });
            }
        }
        places.missing.sort();
        if places.missing.len() < places.total || places.total == 0 {
            report.held = desired.host_list();
        }
        report.places = Some(places);
        if !options.dry_run {
            self.synced.notify_one();
        }
        Ok(report)
    }

    /// Every selected namespace (or project), each with what was written or what failed.
    async fn sync_places(
        &self,
        desired: &Arc<Desired>,
        options: SyncOptions,
    ) -> Result<Vec<PlaceOutcome>, KubernetesError> {
        Ok(match &self.settings.mode {
            Mode::Namespaces(selection) => {
                let namespaces = self.list_namespaces(selection).await?;
                stream::iter(namespaces)
                    .map(|namespace| {
                        let desired = desired.clone();
                        async move {
                            let outcome = self.ensure_namespace(&namespace, &desired, options).await;
                            PlaceOutcome { place: namespace, written: outcome.0, error: outcome.1 }
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await
            }
            Mode::Projects(projects) => {
                let mut outcomes = Vec::new();
                for project in projects {
                    let (written, error) = match self.ensure_project(project, desired, options).await {
                        Ok(written) => (written, None),
                        Err(error) => (Vec::new(), Some(error)),
                    };
                    outcomes.push(PlaceOutcome { place: project.clone(), written, error });
                }
                outcomes
            }
        })
    }

    async fn list_namespaces(&self, selection: &Selection) -> Result<Vec<String>, KubernetesError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut params = ListParams::default().limit(500);
        if let Some(selector) = selection.label_selector() {
            params = params.labels(selector);
        }
        let mut names = Vec::new();
        loop {
            let call = Call { verb: "list", resource: "namespaces", place: String::new() };
            let page = call.run(self.settings.timeout, api.list(&params)).await?;
            for namespace in page.items {
                let Some(name) = namespace.metadata.name.clone() else { continue };
                if selection.selects(&name) && !terminating(&namespace) {
                    names.push(name);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(names)
    }

    /// The Secret, then the ServiceAccounts, of one namespace.
    async fn ensure_namespace(
        &self,
        namespace: &str,
        desired: &Desired,
        options: SyncOptions,
    ) -> (Vec<Written>, Option<KubernetesError>) {
        let mut written = Vec::new();
        match self.ensure_secret(namespace, desired, None, options).await {
            Ok(Some(w)) => written.push(w),
            Ok(None) => {}
            Err(error) => return (written, Some(error)),
        }
        match self.ensure_service_accounts(namespace, options).await {
            Ok(linked) => written.extend(linked),
            Err(error) => return (written, Some(error)),
        }
        (written, None)
    }

    /// Reads the Secret and writes it when it is missing or holds another token. `project`: the project label
    /// of a project-scoped Secret.
    async fn ensure_secret(
        &self,
        namespace: &str,
        desired: &Desired,
        project: Option<&str>,
        options: SyncOptions,
    ) -> Result<Option<Written>, KubernetesError> {
        let name = &self.settings.secret_name;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let place = format!("{namespace}/{name}");
        let get = Call { verb: "get", resource: "secrets", place: place.clone() };
        let existing = get.run(self.settings.timeout, api.get_opt(name)).await?;
        let action = match secret::judge(existing.as_ref(), desired, self.settings.adopt, project) {
            Existing::Current => return Ok(None),
            Existing::Missing => Action::Created,
            Existing::Stale => Action::Updated,
            Existing::Foreign => return Err(KubernetesError::Foreign { place }),
            Existing::RancherCopy => return Err(KubernetesError::RancherCopy { place }),
            Existing::WrongType => {
                let type_ = existing.and_then(|s| s.type_).unwrap_or_default();
                return Err(KubernetesError::WrongType { place, type_ });
            }
        };
        let adopted = existing.as_ref().is_some_and(|s| {
            s.metadata.labels.as_ref().and_then(|l| l.get(secret::MANAGED_BY)).map(String::as_str)
                != Some(secret::MANAGED_BY_US)
        });
        if !options.dry_run {
            if adopted {
                warn!(secret = %place, "Adopting a Secret that was not ours (KUBERNETES_ADOPT_SECRETS is on)");
            }
            let body = desired.secret(namespace, name, project);
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let apply = Call { verb: "patch", resource: "secrets", place: place.clone() };
            apply.run(self.settings.timeout, api.patch(name, &params, &Patch::Apply(&body))).await?;
        }
        let resource = match project {
            Some(project) => format!("Secret {place} (project {project})"),
            None => format!("Secret {place}"),
        };
        Ok(Some(Written { host: desired.hosts(), scope: None, resource, action }))
    }

    /// Adds the Secret to the `imagePullSecrets` of the configured ServiceAccounts of one namespace, keeping
    /// what they list. A ServiceAccount that does not exist yet is left to the watch.
    async fn ensure_service_accounts(
        &self,
        namespace: &str,
        options: SyncOptions,
    ) -> Result<Vec<Written>, KubernetesError> {
        let wanted = &self.settings.service_accounts;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let accounts: Vec<ServiceAccount> = if wanted.iter().any(|w| w == "*") {
            let call = Call { verb: "list", resource: "serviceaccounts", place: namespace.to_string() };
            call.run(self.settings.timeout, api.list(&ListParams::default())).await?.items
        } else {
            let mut found = Vec::new();
            for name in wanted {
                let call = Call { verb: "get", resource: "serviceaccounts", place: format!("{namespace}/{name}") };
                if let Some(account) = call.run(self.settings.timeout, api.get_opt(name)).await? {
                    found.push(account);
                }
            }
            found
        };
        let mut written = Vec::new();
        for account in accounts {
            if let Some(w) = self.link(&api, namespace, &account, options).await? {
                written.push(w);
            }
        }
        Ok(written)
    }

    /// Lists the Secret in one ServiceAccount's `imagePullSecrets` when it is not there yet.
    async fn link(
        &self,
        api: &Api<ServiceAccount>,
        namespace: &str,
        account: &ServiceAccount,
        options: SyncOptions,
    ) -> Result<Option<Written>, KubernetesError> {
        let secret_name = &self.settings.secret_name;
        let Some(name) = account.metadata.name.as_deref() else { return Ok(None) };
        let mut pull_secrets: Vec<serde_json::Value> = Vec::new();
        for reference in account.image_pull_secrets.iter().flatten() {
            if reference.name == *secret_name {
                return Ok(None);
            }
            pull_secrets.push(serde_json::to_value(reference).unwrap_or_default());
        }
        pull_secrets.push(serde_json::json!({ "name": secret_name }));
        let place = format!("{namespace}/{name}");
        if !options.dry_run {
            // The list is replaced as a whole (it has no merge key): the resourceVersion makes the API server
            // refuse the patch (409) if someone changed the ServiceAccount since it was read.
            let patch = serde_json::json!({
                "metadata": { "resourceVersion": account.metadata.resource_version },
                "imagePullSecrets": pull_secrets,
            });
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
            let call = Call { verb: "patch", resource: "serviceaccounts", place: place.clone() };
            call.run(self.settings.timeout, api.patch(name, &params, &Patch::Merge(&patch))).await?;
        }
        Ok(Some(Written {
            host: secret_name.clone(),
            scope: None,
            resource: format!("ServiceAccount {place}"),
            action: Action::Linked,
        }))
    }

    /// Mode 2: the project's backing namespace on the local cluster, and the project-scoped Secret there.
    async fn ensure_project(
        &self,
        project_id: &str,
        desired: &Desired,
        options: SyncOptions,
    ) -> Result<Vec<Written>, KubernetesError> {
        let (cluster, project) = project_id.split_once(':').expect("project ids are checked by the configuration");
        let resource = ApiResource {
            group: "management.cattle.io".into(),
            version: "v3".into(),
            api_version: "management.cattle.io/v3".into(),
            kind: "Project".into(),
            plural: "projects".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), cluster, &resource);
        let call =
            Call { verb: "get", resource: "projects.management.cattle.io", place: format!("{cluster}/{project}") };
        let object = call.run(self.settings.timeout, api.get(project)).await?;
        let backing =
            object.data.pointer("/status/backingNamespace").and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        let namespace = backing.unwrap_or(project);
        debug!(project = project_id, namespace, "Project's backing namespace");
        Ok(self.ensure_secret(namespace, desired, Some(project), options).await?.into_iter().collect())
    }

    /// Watches namespaces (and ServiceAccounts, when configured) until `shutdown`, so that a namespace or
    /// ServiceAccount created between two refreshes gets the Secret within seconds. Reconnects with backoff;
    /// a watch that expired (410 Gone) starts again from a new list. Project mode has nothing to watch.
    pub async fn watch(&self, target: &str, status: &Status, shutdown: &CancellationToken) {
        let Mode::Namespaces(selection) = &self.settings.mode else { return };
        let mut config = watcher::Config::default();
        if let Some(selector) = selection.label_selector() {
            config = config.labels(selector);
        }
        let namespaces = watcher(Api::<Namespace>::all(self.watch_client.clone()), config).default_backoff();
        let mut namespaces = std::pin::pin!(namespaces);
        let accounts = if self.settings.service_accounts.is_empty() {
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
        let mut known: BTreeSet<String> = BTreeSet::new();
        let mut failing = [false, false];
        info!(target = %target, "Watching namespaces for new ones");
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = self.synced.notified() => {
                    for namespace in known.clone() {
                        self.catch_up(target, status, &namespace).await;
                    }
                }
                event = namespaces.next() => match event {
                    None => return,
                    Some(Err(e)) => {
                        if !std::mem::replace(&mut failing[0], true) {
                            warn!(target = %target, error = %one_line(&e.to_string()), "Watch of namespaces failed; reconnecting with backoff");
                        }
                    }
                    Some(Ok(event)) => {
                        // `Init` comes before the list that may still fail: only a listed object or the end of
                        // the list shows the watch is back.
                        if !matches!(event, watcher::Event::Init) && std::mem::replace(&mut failing[0], false) {
                            info!(target = %target, "Watch of namespaces is back");
                        }
                        match event {
                            watcher::Event::Apply(ns) | watcher::Event::InitApply(ns) => {
                                let Some(name) = ns.metadata.name.clone() else { continue };
                                if selection.selects(&name) && !terminating(&ns) {
                                    known.insert(name.clone());
                                    self.catch_up(target, status, &name).await;
                                } else if known.remove(&name) {
                                    self.forget(target, status, &name);
                                }
                            }
                            watcher::Event::Delete(ns) => {
                                if let Some(name) = ns.metadata.name.as_deref() && known.remove(name) {
                                    self.forget(target, status, name);
                                }
                            }
                            watcher::Event::Init | watcher::Event::InitDone => {}
                        }
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

    /// A selected namespace seen by the watch: writes it unless it already holds the current token.
    async fn catch_up(&self, target: &str, status: &Status, namespace: &str) {
        let (desired, generation, new) = {
            let state = self.state();
            let Some(desired) = state.desired.clone() else { return };
            if state.syncing || state.seen.get(namespace).is_some_and(|(g, _)| *g == state.generation) {
                return;
            }
            (desired, state.generation, !state.counted.contains(namespace))
        };
        let (written, error) = self.ensure_namespace(namespace, &desired, SyncOptions::default()).await;
        let places = {
            let mut state = self.state();
            state.seen.insert(namespace.to_string(), (generation, error.is_none()));
            state.counted.insert(namespace.to_string());
            state.places()
        };
        status.places(target, &places);
        if new {
            debug!(target = %target, namespace, "New namespace");
        }
        for w in &written {
            log_written(target, w, &desired);
        }
        if let Some(error) = error {
            status.error("kubernetes", error.kind());
            log_error(target, namespace, &error);
        }
    }

    fn forget(&self, target: &str, status: &Status, namespace: &str) {
        let places = {
            let mut state = self.state();
            state.seen.remove(namespace);
            if !state.counted.remove(namespace) {
                return;
            }
            state.places()
        };
        status.places(target, &places);
    }

    /// A ServiceAccount seen by the watch: links the Secret when its namespace holds it and it is one of ours.
    async fn account_seen(&self, target: &str, status: &Status, known: &BTreeSet<String>, account: &ServiceAccount) {
        let (Some(namespace), Some(name)) = (account.metadata.namespace.as_deref(), account.metadata.name.as_deref())
        else {
            return;
        };
        let wanted = self.settings.service_accounts.iter().any(|w| w == "*" || w == name);
        let ready = {
            let state = self.state();
            state.desired.is_some() && state.seen.get(namespace).is_some_and(|(_, ok)| *ok)
        };
        if !wanted || !ready || !known.contains(namespace) {
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
                status.error("kubernetes", error.kind());
                log_error(target, namespace, &error);
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

fn terminating(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

fn log_written(target: &str, written: &Written, desired: &Desired) {
    let expires_at = desired.expires_at.map(|t| humantime::format_rfc3339_seconds(t).to_string()).unwrap_or_default();
    let message = match written.action {
        Action::Created => "Created credential (new namespace)",
        Action::Linked => "Added the Secret to the ServiceAccount's imagePullSecrets",
        _ => "Updated credential",
    };
    info!(registry = %written.host, target = %target, resource = %written.resource, expires_at = %expires_at, "{message}");
}

fn log_error(target: &str, namespace: &str, error: &KubernetesError) {
    match (error.is_permanent(), error.hint()) {
        (true, Some(hint)) => error!(target = %target, namespace, error = %error, kind = error.kind(), "{hint}"),
        (true, None) => {
            error!(target = %target, namespace, error = %error, kind = error.kind(), "Could not write the Secret")
        }
        (false, _) => {
            warn!(target = %target, namespace, error = %error, kind = error.kind(), "Could not write the Secret; will retry")
        }
    }
}

/// One API call, named for errors: verb, resource and where (namespace/name).
struct Call {
    verb: &'static str,
    resource: &'static str,
    place: String,
}

impl Call {
    async fn run<T>(
        self,
        limit: Duration,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, KubernetesError> {
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(KubernetesError::Transport {
                verb: self.verb,
                resource: self.resource,
                place: self.place,
                detail: format!("no answer within {}", humantime::format_duration(limit)),
                timeout: true,
            }),
        }
    }

    fn error(self, e: kube::Error) -> KubernetesError {
        let Call { verb, resource, place } = self;
        match e {
            kube::Error::Api(status) => KubernetesError::Api {
                verb,
                resource,
                place,
                code: status.code,
                reason: one_line(&status.reason),
                message: one_line(&status.message),
            },
            other => {
                let detail = crate::redact::error_chain(&other);
                let timeout = detail.contains("timed out") || detail.contains("deadline");
                KubernetesError::Transport { verb, resource, place, detail, timeout }
            }
        }
    }
}

/// Outside text (an API server's message) on one line, capped, with every known secret redacted.
fn one_line(text: &str) -> String {
    crate::redact::outside(text)
}

/// A failed Kubernetes call, or a Secret this daemon will not write. Names the verb, the resource and the
/// namespace (the RBAC rule a 403 lacks); never carries a Secret's content or the bearer token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubernetesError {
    #[error("{verb} {resource} {place}: HTTP {code} {reason}: {message}")]
    Api { verb: &'static str, resource: &'static str, place: String, code: u16, reason: String, message: String },
    #[error("{verb} {resource} {place}: {detail}")]
    Transport { verb: &'static str, resource: &'static str, place: String, detail: String, timeout: bool },
    #[error(
        "Secret {place} exists and is not ours (no label app.kubernetes.io/managed-by=rancher-ecr-credentials); left alone"
    )]
    Foreign { place: String },
    #[error("Secret {place} is a copy Rancher makes of a project-scoped secret; never written (Rancher overwrites it)")]
    RancherCopy { place: String },
    #[error("Secret {place} is of type {type_}, not kubernetes.io/dockerconfigjson; its type cannot be changed")]
    WrongType { place: String, type_: String },
}

impl KubernetesError {
    fn code(&self) -> Option<u16> {
        match self {
            KubernetesError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when retrying soon will not help: a permission, a token or a Secret in the way.
    pub fn is_permanent(&self) -> bool {
        match self {
            KubernetesError::Api { code, .. } => matches!(code, 400 | 401 | 403 | 404 | 405 | 422),
            KubernetesError::Transport { .. } => false,
            KubernetesError::Foreign { .. }
            | KubernetesError::RancherCopy { .. }
            | KubernetesError::WrongType { .. } => true,
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            KubernetesError::Transport { timeout: true, .. } => "timeout",
            KubernetesError::Transport { .. } => "connection",
            KubernetesError::Api { code, .. } => match code {
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                409 => "conflict",
                400 | 422 => "rejected",
                500..=599 => "server_error",
                _ => "status",
            },
            KubernetesError::Foreign { .. } => "foreign_secret",
            KubernetesError::RancherCopy { .. } => "rancher_copy",
            KubernetesError::WrongType { .. } => "wrong_type",
        }
    }

    /// What a person should do about it, when that is clear from the error.
    pub fn hint(&self) -> Option<&'static str> {
        match (self, self.code()) {
            (_, Some(401)) => Some(
                "The Kubernetes API rejected the credentials (HTTP 401): check the token of the KUBECONFIG user (a Rancher token may have expired) or the pod's ServiceAccount token",
            ),
            (_, Some(403)) => Some(
                "RBAC does not allow this call (HTTP 403; the error names the verb, resource and namespace): bind the roles in deploy/kubernetes/rbac to the daemon's user or ServiceAccount",
            ),
            (KubernetesError::Api { resource: "projects.management.cattle.io", .. }, Some(404)) => Some(
                "No such Rancher project on this cluster: RANCHER_PROJECT_SECRETS needs Rancher's local cluster (https://<rancher>/k8s/clusters/local) and ids c-xxxxx:p-xxxxx",
            ),
            (KubernetesError::Foreign { .. }, _) => Some(
                "A Secret of that name exists and is not ours: delete it, choose another KUBERNETES_SECRET_NAME, or set KUBERNETES_ADOPT_SECRETS=true to take it over",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_names_verb_resource_and_namespace_and_is_permanent() {
        let error = Call { verb: "patch", resource: "secrets", place: "team-b/ecr-credentials".into() }.error(
            kube::Error::Api(Box::new(kube::core::Status {
                code: 403,
                reason: "Forbidden".into(),
                message: "secrets \"ecr-credentials\" is forbidden:\nUser \"app-user\" cannot patch".into(),
                ..kube::core::Status::default()
            })),
        );
        let text = error.to_string();
        assert!(text.starts_with("patch secrets team-b/ecr-credentials: HTTP 403 Forbidden"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(error.is_permanent());
        assert_eq!(error.kind(), "forbidden");
        assert!(error.hint().unwrap().contains("RBAC"));
    }

    #[test]
    fn outside_text_is_kept_to_one_short_line() {
        let long = "x\n".repeat(400);
        let line = one_line(&long);
        assert!(!line.contains('\n'));
        assert!(line.ends_with('…') && line.len() < long.len(), "{line}");
    }
}
