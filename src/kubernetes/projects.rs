//! Project mode (Rancher 2.12+ project-scoped secrets): the Secret in each project's backing namespace on
//! Rancher's local cluster, labelled for the project; Rancher copies it into the project's namespaces.
//!
//! RANCHER_PROJECT_SECRETS names projects by id (`c-xxxxx:p-xxxxx`: one GET of the project), every project of a
//! cluster (`c-xxxxx:*`: one LIST in the cluster's namespace) or every project (`*`: one LIST across namespaces).
//! The projects of a pattern are listed at each refresh and watched between refreshes ([`Kubernetes::watch_projects`]):
//! a new project is written as soon as it and its backing namespace both exist; a removed one is forgotten (its
//! Secret is left to Rancher, which removes the project's namespaces). A project becomes a place (readiness,
//! metrics) once its backing namespace exists. Only a pattern's own cluster is listed and watched, so projects
//! of other clusters are never written for `c-xxxxx:*`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::cluster::{Kubernetes, Seen};
use super::error::{Call, KubernetesError, one_line};
use super::outcome;
use super::read::{Listed, Lookup};
use super::secret::Desired;
use super::settings::Mode;
use crate::report::{Failure, SyncOptions, Written};
use crate::status::Status;

/// How many backing namespaces a sync writes to at the same time.
const CONCURRENCY: usize = 16;
/// The page size of the LISTs of projects and namespaces.
const PAGE: u32 = 500;
/// How often the watch looks again at projects it had to leave to a running sync (or to the first token).
const DEFERRED_RETRY: Duration = Duration::from_millis(500);

/// One entry of RANCHER_PROJECT_SECRETS (checked by the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry<'a> {
    One { cluster: &'a str, project: &'a str },
    Cluster(&'a str),
    All,
}

fn entry(spec: &str) -> Entry<'_> {
    if spec == "*" {
        return Entry::All;
    }
    if let Some(cluster) = spec.strip_suffix(":*") {
        return Entry::Cluster(cluster);
    }
    let (cluster, project) = spec.split_once(':').unwrap_or((spec, spec));
    Entry::One { cluster, project }
}

/// Where the projects of the patterns are listed and watched: every namespace, or these clusters' namespaces.
/// `None` when only ids are given.
fn scopes(specs: &[String]) -> Option<Vec<Option<String>>> {
    let entries: Vec<Entry> = specs.iter().map(|s| entry(s)).collect();
    if entries.contains(&Entry::All) {
        return Some(vec![None]);
    }
    let clusters: BTreeSet<&str> =
        entries.iter().filter_map(|e| if let Entry::Cluster(c) = e { Some(*c) } else { None }).collect();
    (!clusters.is_empty()).then(|| clusters.into_iter().map(|c| Some(c.to_string())).collect())
}

/// How a pattern's scope is named in logs and as a place that failed.
fn scope_name(scope: Option<&str>) -> String {
    match scope {
        Some(cluster) => format!("{cluster}:*"),
        None => "*".to_string(),
    }
}

fn resource() -> ApiResource {
    ApiResource {
        group: "management.cattle.io".into(),
        version: "v3".into(),
        api_version: "management.cattle.io/v3".into(),
        kind: "Project".into(),
        plural: "projects".into(),
    }
}

/// A project as a LIST or the watch shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Project {
    /// `<cluster>:<project>`.
    id: String,
    name: String,
    /// `status.backingNamespace`, or the project's own name without it.
    namespace: String,
}

/// The project an object is, unless it is being deleted (or is not a project at all).
fn project_of(object: &DynamicObject) -> Option<Project> {
    let (name, cluster) = (object.metadata.name.as_deref()?, object.metadata.namespace.as_deref()?);
    if object.metadata.deletion_timestamp.is_some() {
        return None;
    }
    Some(Project {
        id: format!("{cluster}:{name}"),
        name: name.to_string(),
        namespace: backing_namespace(object, name),
    })
}

/// A project's backing namespace: `status.backingNamespace` (Rancher 2.12+), else its own name.
fn backing_namespace(object: &DynamicObject, name: &str) -> String {
    let backing = object.data.pointer("/status/backingNamespace").and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    backing.unwrap_or(name).to_string()
}

/// What one project (or pattern) gave in a sync: the place, what was written, what failed.
pub(super) type ProjectOutcome = (String, Vec<Written>, Option<KubernetesError>);

impl Kubernetes {
    /// Mode 2: the project's backing namespace on the local cluster, and the project-scoped Secret there.
    pub(super) async fn ensure_project(
        &self,
        project_id: &str,
        desired: &Desired,
        listed: &Listed,
        options: SyncOptions,
    ) -> Result<Vec<Written>, KubernetesError> {
        let (cluster, project) = project_id.split_once(':').expect("project ids are checked by the configuration");
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), cluster, &resource());
        let call =
            Call { verb: "get", resource: "projects.management.cattle.io", place: format!("{cluster}/{project}") };
        let object = call.run(self.settings.timeout, api.get(project)).await?;
        let namespace = backing_namespace(&object, project);
        debug!(project = project_id, namespace, "Project's backing namespace");
        if !options.dry_run {
            self.state().homes.insert(namespace.to_string(), Some(project.to_string()));
        }
        let lookup = listed.lookup(&namespace);
        Ok(self.ensure_secret(&namespace, desired, Some(project), lookup, options).await?.into_iter().collect())
    }

    /// Every project of RANCHER_PROJECT_SECRETS brought up to date: the patterns' projects listed (one LIST per
    /// cluster, or one for `*`) with their backing namespaces (one LIST), the ids read one by one. A pattern whose
    /// LIST fails is a failed place of its own; the other places are still written.
    pub(super) async fn sync_projects(
        &self,
        specs: &[String],
        desired: &Arc<Desired>,
        secrets: &Listed,
        options: SyncOptions,
    ) -> Vec<ProjectOutcome> {
        let mut outcomes: Vec<ProjectOutcome> = Vec::new();
        let mut listed: BTreeMap<String, Project> = BTreeMap::new();
        if let Some(scopes) = scopes(specs) {
            // Without the right to list namespaces every listed project is tried (and one still without its
            // namespace fails until Rancher makes it).
            let namespaces = match self.live_namespaces().await {
                Ok(namespaces) => Some(namespaces),
                Err(error) => {
                    debug!(target = %self.name(), error = %error, "Cannot list namespaces; writing every listed project");
                    None
                }
            };
            for scope in scopes {
                match self.list_projects(scope.as_deref()).await {
                    Ok(projects) => {
                        for project in projects {
                            if namespaces.as_ref().is_some_and(|n| !n.contains(&project.namespace)) {
                                debug!(project = %project.id, namespace = %project.namespace,
                                    "Project without its backing namespace yet; written when it appears");
                                continue;
                            }
                            listed.insert(project.id.clone(), project);
                        }
                    }
                    Err(error) => outcomes.push((scope_name(scope.as_deref()), Vec::new(), Some(error))),
                }
            }
        }
        for spec in specs {
            if let Entry::One { .. } = entry(spec)
                && !listed.contains_key(spec)
            {
                let (written, error) = match self.ensure_project(spec, desired, secrets, options).await {
                    Ok(written) => (written, None),
                    Err(error) => (Vec::new(), Some(error)),
                };
                outcomes.push((spec.clone(), written, error));
            }
        }
        let written: Vec<ProjectOutcome> = stream::iter(listed.into_values())
            .map(|project| {
                let desired = desired.clone();
                async move {
                    if !options.dry_run {
                        self.state().homes.insert(project.namespace.clone(), Some(project.name.clone()));
                    }
                    let lookup = secrets.lookup(&project.namespace);
                    match self.ensure_secret(&project.namespace, &desired, Some(&project.name), lookup, options).await {
                        Ok(written) => (project.id, written.into_iter().collect(), None),
                        Err(error) => (project.id, Vec::new(), Some(error)),
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        outcomes.extend(written);
        outcomes
    }

    /// The projects in one cluster's namespace, or in every namespace (`None`), with one LIST (paged).
    async fn list_projects(&self, cluster: Option<&str>) -> Result<Vec<Project>, KubernetesError> {
        let api: Api<DynamicObject> = match cluster {
            Some(cluster) => Api::namespaced_with(self.client.clone(), cluster, &resource()),
            None => Api::all_with(self.client.clone(), &resource()),
        };
        let mut params = ListParams::default().limit(PAGE);
        let mut projects = Vec::new();
        loop {
            let place = cluster.unwrap_or("(all namespaces)").to_string();
            let call = Call { verb: "list", resource: "projects.management.cattle.io", place };
            let page = call.run(self.settings.timeout, api.list(&params)).await?;
            for object in &page.items {
                // The namespace is the server's to choose; a project outside the one asked for is never written.
                if let Some(project) = project_of(object)
                    && cluster.is_none_or(|c| object.metadata.namespace.as_deref() == Some(c))
                {
                    projects.push(project);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(projects)
    }

    /// The names of the namespaces that exist and are not being deleted, with one LIST of their metadata (paged).
    async fn live_namespaces(&self) -> Result<HashSet<String>, KubernetesError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut params = ListParams::default().limit(PAGE);
        let mut names = HashSet::new();
        loop {
            let call = Call { verb: "list", resource: "namespaces", place: String::new() };
            let page = call.run(self.settings.timeout, api.list_metadata(&params)).await?;
            for namespace in page.items {
                if namespace.metadata.deletion_timestamp.is_none()
                    && let Some(name) = namespace.metadata.name
                {
                    names.insert(name);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(names)
    }

    /// Watches the projects of the patterns in RANCHER_PROJECT_SECRETS (and the namespaces, for their backing
    /// namespaces) until `shutdown`: a project is written within moments of it and its backing namespace both
    /// existing, and a removed project is forgotten. Returns at once without a pattern (ids only) or in
    /// namespace mode. Reconnects with backoff; a watch that comes back lists again, and a project missing from
    /// that list is forgotten.
    pub async fn watch_projects(&self, target: &str, status: &Status, shutdown: &CancellationToken) {
        let Mode::Projects(specs) = &self.settings.mode else { return };
        let Some(scopes) = scopes(specs) else { return };
        let streams: Vec<BoxStream<'static, (usize, watcher::Result<watcher::Event<DynamicObject>>)>> = scopes
            .iter()
            .enumerate()
            .map(|(i, scope)| {
                let api: Api<DynamicObject> = match scope {
                    Some(cluster) => Api::namespaced_with(self.watch_client.clone(), cluster, &resource()),
                    None => Api::all_with(self.watch_client.clone(), &resource()),
                };
                watcher(api, watcher::Config::default()).default_backoff().map(move |event| (i, event)).boxed()
            })
            .collect();
        let mut projects = stream::select_all(streams);
        // Metadata only: the names are all the watch needs.
        let namespaces = Api::<PartialObjectMeta<Namespace>>::all(self.watch_client.clone());
        let namespaces = watcher(namespaces, watcher::Config::default()).default_backoff();
        let mut namespaces = std::pin::pin!(namespaces);
        let mut watch = ProjectWatch::default();
        let mut failing = [false, false];
        info!(target = %target, projects = %specs.join(","), "Watching Rancher projects for new ones");
        loop {
            let retry = !watch.deferred.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                event = projects.next() => match event {
                    None => return,
                    Some((_, Err(e))) => {
                        if !std::mem::replace(&mut failing[0], true) {
                            warn!(target = %target, error = %one_line(&e.to_string()), "Watch of Rancher projects failed; reconnecting with backoff");
                        }
                    }
                    Some((stream, Ok(event))) => {
                        if !matches!(event, watcher::Event::Init) && std::mem::replace(&mut failing[0], false) {
                            info!(target = %target, "Watch of Rancher projects is back");
                        }
                        for id in watch.project_event(stream, event) {
                            if watch.moved.remove(&id) {
                                // Written in its old backing namespace: the new one is looked at afresh.
                                self.state().seen.remove(&id);
                            }
                            match watch.known.get(&id) {
                                Some((project, _)) => {
                                    let project = project.clone();
                                    self.project_seen(target, status, &mut watch, project).await;
                                }
                                None => self.forget_project(target, status, &id),
                            }
                        }
                    }
                },
                event = namespaces.next() => match event {
                    None => return,
                    Some(Err(e)) => {
                        if !std::mem::replace(&mut failing[1], true) {
                            warn!(target = %target, error = %one_line(&e.to_string()),
                                "Watch of namespaces failed (it shows when a project's backing namespace appears); reconnecting with backoff");
                        }
                    }
                    Some(Ok(event)) => {
                        if !matches!(event, watcher::Event::Init) && std::mem::replace(&mut failing[1], false) {
                            info!(target = %target, "Watch of namespaces is back");
                        }
                        for project in watch.namespace_event(event) {
                            self.project_seen(target, status, &mut watch, project).await;
                        }
                    }
                },
                _ = tokio::time::sleep(DEFERRED_RETRY), if retry => {
                    let deferred = std::mem::take(&mut watch.deferred);
                    for id in deferred {
                        if let Some((project, _)) = watch.known.get(&id) {
                            let project = project.clone();
                            self.project_seen(target, status, &mut watch, project).await;
                        }
                    }
                }
            }
        }
    }

    /// A project seen by the watch: written when its backing namespace exists (as far as the watch of
    /// namespaces knows), unless it already holds the current token; left for later while a sync runs.
    async fn project_seen(&self, target: &str, status: &Status, watch: &mut ProjectWatch, project: Project) {
        if !watch.namespace_exists(&project.namespace) {
            return;
        }
        let (desired, generation, new) = {
            let state = self.state();
            let Some(desired) = state.desired.clone() else {
                watch.deferred.insert(project.id.clone());
                return;
            };
            if state.syncing {
                watch.deferred.insert(project.id.clone());
                return;
            }
            if state.seen.get(&project.id).is_some_and(|s| s.generation == state.generation && s.ok) {
                return;
            }
            (desired, state.generation, !state.counted.contains(&project.id))
        };
        if new {
            info!(target = %target, project = %project.id, namespace = %project.namespace, "New Rancher project");
        }
        self.state().homes.insert(project.namespace.clone(), Some(project.name.clone()));
        let options = SyncOptions::default();
        let result = self.ensure_secret(&project.namespace, &desired, Some(&project.name), Lookup::Read, options).await;
        let places = {
            let mut state = self.state();
            state.seen.insert(project.id.clone(), Seen { uid: None, generation, ok: result.is_ok() });
            state.counted.insert(project.id.clone());
            state.places()
        };
        status.places(target, &places);
        match result {
            Ok(written) => {
                if let Some(w) = &written {
                    outcome::log_written(target, w, desired.expires_at, false);
                }
            }
            Err(error) => {
                let failure = Failure { host: desired.hosts(), scope: Some(project.id.clone()), error: &error };
                outcome::on_failure(status, target, &failure);
            }
        }
    }

    /// A project removed (or no longer listed): no longer a place; its Secret is left to Rancher.
    fn forget_project(&self, target: &str, status: &Status, id: &str) {
        let places = {
            let mut state = self.state();
            state.seen.remove(id);
            if !state.counted.remove(id) {
                return;
            }
            state.places()
        };
        info!(target = %target, project = id, "Rancher project removed; forgotten (its Secret is left to Rancher)");
        status.places(target, &places);
    }
}

/// What the watch of projects knows: the projects of the patterns, which namespaces exist, and the projects
/// left for later. Pure bookkeeping, so that it is tested without a server.
#[derive(Default)]
struct ProjectWatch {
    /// Project id → the project, and which of the watch's streams (scopes) showed it.
    known: BTreeMap<String, (Project, usize)>,
    /// Namespaces that exist; `None` until the watch of namespaces has listed them once (then every project's
    /// namespace is taken to exist, and a write to a missing one fails and is retried by the refresh).
    namespaces: Option<HashSet<String>>,
    /// A LIST of namespaces in progress (the watch's first, or after it reconnected).
    relisted_namespaces: Option<HashSet<String>>,
    /// Stream → the projects of a LIST in progress.
    relisted: BTreeMap<usize, BTreeSet<String>>,
    /// Projects left to a running sync or waiting for the first token.
    deferred: BTreeSet<String>,
    /// Projects whose backing namespace changed since they were last seen.
    moved: BTreeSet<String>,
}

impl ProjectWatch {
    fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|n| n.contains(namespace))
    }

    /// Takes one event of a stream of projects; returns the ids to look at: those still known are to be written,
    /// the others to be forgotten.
    fn project_event(&mut self, stream: usize, event: watcher::Event<DynamicObject>) -> Vec<String> {
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let (Some(name), Some(cluster)) =
                    (object.metadata.name.as_deref(), object.metadata.namespace.as_deref())
                else {
                    return Vec::new();
                };
                let id = format!("{cluster}:{name}");
                if let Some(listed) = self.relisted.get_mut(&stream) {
                    listed.insert(id.clone());
                }
                match project_of(&object) {
                    Some(project) => {
                        let changed = self.known.get(&id).is_none_or(|(known, _)| *known != project);
                        if self.known.get(&id).is_some_and(|(known, _)| known.namespace != project.namespace) {
                            self.moved.insert(id.clone());
                        }
                        self.known.insert(id.clone(), (project, stream));
                        if changed { vec![id] } else { Vec::new() }
                    }
                    None => self.remove(&id),
                }
            }
            watcher::Event::Delete(object) => {
                let (Some(name), Some(cluster)) =
                    (object.metadata.name.as_deref(), object.metadata.namespace.as_deref())
                else {
                    return Vec::new();
                };
                self.remove(&format!("{cluster}:{name}"))
            }
            watcher::Event::Init => {
                self.relisted.insert(stream, BTreeSet::new());
                Vec::new()
            }
            watcher::Event::InitDone => {
                // A project missing from a new LIST was removed while the watch was away.
                let listed = self.relisted.remove(&stream).unwrap_or_default();
                let gone: Vec<String> = self
                    .known
                    .iter()
                    .filter(|(id, (_, s))| *s == stream && !listed.contains(*id))
                    .map(|(id, _)| id.clone())
                    .collect();
                gone.iter().flat_map(|id| self.remove(id)).collect()
            }
        }
    }

    fn remove(&mut self, id: &str) -> Vec<String> {
        self.deferred.remove(id);
        self.moved.remove(id);
        match self.known.remove(id) {
            Some(_) => vec![id.to_string()],
            None => Vec::new(),
        }
    }

    /// Takes one event of the watch of namespaces; returns the projects whose backing namespace just appeared.
    fn namespace_event(&mut self, event: watcher::Event<PartialObjectMeta<Namespace>>) -> Vec<Project> {
        let appeared: HashSet<String> = match event {
            watcher::Event::Apply(ns) | watcher::Event::InitApply(ns) => {
                let Some(name) = ns.metadata.name else { return Vec::new() };
                let live = ns.metadata.deletion_timestamp.is_none();
                if live && let Some(relisted) = self.relisted_namespaces.as_mut() {
                    relisted.insert(name.clone());
                }
                // Before the first LIST is complete, its end decides.
                let Some(known) = self.namespaces.as_mut() else { return Vec::new() };
                if !live {
                    known.remove(&name);
                    return Vec::new();
                }
                if !known.insert(name.clone()) {
                    return Vec::new();
                }
                HashSet::from([name])
            }
            watcher::Event::Delete(ns) => {
                if let (Some(known), Some(name)) = (self.namespaces.as_mut(), ns.metadata.name.as_deref()) {
                    known.remove(name);
                }
                return Vec::new();
            }
            watcher::Event::Init => {
                self.relisted_namespaces = Some(HashSet::new());
                return Vec::new();
            }
            watcher::Event::InitDone => {
                let listed = self.relisted_namespaces.take().unwrap_or_default();
                let before = self.namespaces.replace(listed.clone()).unwrap_or_default();
                listed.into_iter().filter(|n| !before.contains(n)).collect()
            }
        };
        self.known.values().filter(|(p, _)| appeared.contains(&p.namespace)).map(|(p, _)| p.clone()).collect()
    }
}

#[cfg(test)]
mod tests;
