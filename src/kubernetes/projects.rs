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
mod tests {
    use super::super::fake;
    use super::super::settings::{Mode, Settings};
    use super::*;
    use crate::report::Places;

    /// A store with these projects (cluster, project, backing namespace) and these namespaces.
    fn rancher(projects: &[(&str, &str, &str)], namespaces: &[&str]) -> fake::Store {
        let mut store = fake::with_namespaces(namespaces);
        for (cluster, project, backing) in projects {
            store.projects.insert((cluster.to_string(), project.to_string()), backing.to_string());
        }
        store
    }

    fn written_namespaces(fake: &fake::Fake) -> Vec<String> {
        let mut names: Vec<String> = fake.store().secrets.keys().map(|(ns, _)| ns.clone()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_cluster_pattern_writes_every_project_of_its_cluster_and_none_of_another() {
        let store = rancher(
            &[
                ("c-abc12", "p-one", "c-abc12-p-one"),
                ("c-abc12", "p-two", "c-abc12-p-two"),
                ("c-abc12", "p-new", "c-abc12-p-new"),
                ("c-other", "p-three", "c-other-p-three"),
                ("local", "p-xyz34", "local-p-xyz34"),
            ],
            &["c-abc12-p-one", "c-abc12-p-two", "c-other-p-three", "local-p-xyz34"],
        );
        let (fake, kube) = fake::target(store, projects(&["c-abc12:*", "local:p-xyz34"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(written_namespaces(&fake), ["c-abc12-p-one", "c-abc12-p-two", "local-p-xyz34"]);
        let secret = fake.secret("c-abc12-p-two", "ecr-credentials").unwrap();
        assert_eq!(secret["metadata"]["labels"]["management.cattle.io/project-scoped-secret"], "p-two");
        // p-new has no backing namespace yet: not a place until it has one.
        assert_eq!(report.places, Some(Places { total: 3, missing: Vec::new() }));
        let reads: Vec<String> = fake.take_seen().into_iter().filter(|s| !s.is_write()).map(|s| s.path).collect();
        let lists: Vec<&String> = reads.iter().filter(|p| !p.contains("/secrets/")).collect();
        assert_eq!(
            lists.len(),
            4,
            "one LIST of our Secrets, of namespaces, of the cluster's projects, one GET: {reads:?}"
        );
        assert!(lists.iter().any(|p| p.starts_with("/api/v1/secrets?")), "{reads:?}");
        assert!(lists.iter().any(|p| p.starts_with("/apis/management.cattle.io/v3/namespaces/c-abc12/projects?")));
        assert!(lists.iter().any(|p| p.as_str() == "/apis/management.cattle.io/v3/namespaces/local/projects/p-xyz34"));
        assert!(!reads.iter().any(|p| p.contains("c-other")), "another cluster is never read: {reads:?}");
    }

    #[tokio::test]
    async fn a_star_lists_the_projects_of_every_cluster_at_once() {
        let store =
            rancher(&[("c-abc12", "p-one", "c-abc12-p-one"), ("local", "p-two", "p-two")], &["c-abc12-p-one", "p-two"]);
        let (fake, kube) = fake::target(store, projects(&["*", "local:p-two"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(written_namespaces(&fake), ["c-abc12-p-one", "p-two"]);
        assert_eq!(report.places, Some(Places { total: 2, missing: Vec::new() }));
        let seen = fake.take_seen();
        let projects: Vec<&str> =
            seen.iter().map(|s| s.path.as_str()).filter(|p| p.starts_with("/apis/management.cattle.io")).collect();
        assert_eq!(projects.len(), 1, "one LIST for every cluster, the id among them: {projects:?}");
        assert!(projects[0].starts_with("/apis/management.cattle.io/v3/projects?"), "{projects:?}");
    }

    fn project(cluster: &str, name: &str, backing: &str) -> DynamicObject {
        let mut object = DynamicObject::new(name, &resource()).within(cluster);
        object.data = serde_json::json!({ "status": { "backingNamespace": backing } });
        object
    }

    fn namespace(name: &str) -> PartialObjectMeta<Namespace> {
        let mut meta = PartialObjectMeta::<Namespace>::default();
        meta.metadata.name = Some(name.to_string());
        meta
    }

    fn ids(projects: Vec<Project>) -> Vec<String> {
        projects.into_iter().map(|p| p.id).collect()
    }

    #[test]
    fn the_watch_writes_a_project_once_it_and_its_backing_namespace_both_exist() {
        let mut watch = ProjectWatch::default();
        watch.namespace_event(watcher::Event::Init);
        watch.namespace_event(watcher::Event::InitApply(namespace("c-a-p-old")));
        assert!(watch.namespace_exists("c-a-p-new"), "before the first LIST of namespaces, every one is tried");
        watch.namespace_event(watcher::Event::InitDone);
        assert!(!watch.namespace_exists("c-a-p-new"));

        // The project first, then its namespace.
        assert_eq!(watch.project_event(0, watcher::Event::Apply(project("c-a", "p-new", "c-a-p-new"))), ["c-a:p-new"]);
        assert!(!watch.namespace_exists("c-a-p-new"), "not written yet");
        assert_eq!(ids(watch.namespace_event(watcher::Event::Apply(namespace("c-a-p-new")))), ["c-a:p-new"]);
        assert!(watch.namespace_exists("c-a-p-new"));
        // The namespace first, then the project (or the project's status naming it later).
        watch.namespace_event(watcher::Event::Apply(namespace("c-a-p-later")));
        assert_eq!(watch.project_event(0, watcher::Event::Apply(project("c-a", "p-later", ""))), ["c-a:p-later"]);
        assert_eq!(watch.known["c-a:p-later"].0.namespace, "p-later", "no backing namespace yet: its own name");
        assert_eq!(
            watch.project_event(0, watcher::Event::Apply(project("c-a", "p-later", "c-a-p-later"))),
            ["c-a:p-later"]
        );
        assert!(watch.moved.contains("c-a:p-later"), "its new namespace is looked at afresh");
        assert!(
            watch.project_event(0, watcher::Event::Apply(project("c-a", "p-later", "c-a-p-later"))).is_empty(),
            "an unchanged project is not looked at again"
        );
    }

    #[test]
    fn the_watch_forgets_a_removed_project_and_one_missing_from_a_new_list() {
        let mut watch = ProjectWatch::default();
        watch.project_event(0, watcher::Event::Apply(project("c-a", "p-one", "c-a-p-one")));
        watch.project_event(0, watcher::Event::Apply(project("c-a", "p-two", "c-a-p-two")));
        watch.project_event(1, watcher::Event::Apply(project("c-b", "p-three", "c-b-p-three")));

        assert_eq!(watch.project_event(0, watcher::Event::Delete(project("c-a", "p-one", "c-a-p-one"))), ["c-a:p-one"]);
        assert!(!watch.known.contains_key("c-a:p-one"));

        // Stream 0 lists again (it reconnected) without p-two: gone; stream 1's project is not touched.
        watch.project_event(0, watcher::Event::Init);
        watch.project_event(0, watcher::Event::InitDone);
        assert!(!watch.known.contains_key("c-a:p-two"));
        assert!(watch.known.contains_key("c-b:p-three"));

        // A project being deleted is forgotten at once.
        let deleting: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "management.cattle.io/v3", "kind": "Project",
            "metadata": {"name": "p-three", "namespace": "c-b", "deletionTimestamp": "2026-12-07T12:00:00Z"},
        }))
        .unwrap();
        assert_eq!(watch.project_event(1, watcher::Event::Apply(deleting)), ["c-b:p-three"]);
        assert!(watch.known.is_empty());
    }

    #[tokio::test]
    async fn a_project_seen_by_the_watch_is_written_and_counted_and_waits_for_a_running_sync() {
        let store = rancher(&[("c-a", "p-one", "c-a-p-one")], &["c-a-p-one", "c-a-p-new"]);
        let (fake, kube) = fake::target(store, projects(&["c-a:*"]));
        let status = Status::new(&["t".into()]);
        let mut watch = ProjectWatch::default();
        let new = Project { id: "c-a:p-new".into(), name: "p-new".into(), namespace: "c-a-p-new".into() };

        kube.project_seen("t", &status, &mut watch, new.clone()).await;
        assert!(fake.take_seen().is_empty(), "nothing to write before the first sync");
        assert!(watch.deferred.contains("c-a:p-new"));

        kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();
        fake.take_seen();
        kube.state().syncing = true;
        watch.deferred.clear();
        kube.project_seen("t", &status, &mut watch, new.clone()).await;
        assert!(fake.take_seen().is_empty(), "left to the running sync");
        kube.state().syncing = false;

        kube.project_seen("t", &status, &mut watch, new.clone()).await;
        let secret = fake.secret("c-a-p-new", "ecr-credentials").expect("written by the watch");
        assert_eq!(secret["metadata"]["labels"]["management.cattle.io/project-scoped-secret"], "p-new");
        assert_eq!(kube.state().places(), Places { total: 2, missing: Vec::new() });
        fake.take_seen();
        kube.project_seen("t", &status, &mut watch, new).await;
        assert!(fake.take_seen().is_empty(), "a project that holds the current token is not read again");

        kube.forget_project("t", &status, "c-a:p-new");
        assert_eq!(kube.state().places(), Places { total: 1, missing: Vec::new() });
        assert!(fake.secret("c-a-p-new", "ecr-credentials").is_some(), "its Secret is left to Rancher");
    }

    fn projects(ids: &[&str]) -> Settings {
        Settings { mode: Mode::Projects(ids.iter().map(|i| i.to_string()).collect()), ..fake::namespaces(&[], &[]) }
    }

    #[tokio::test]
    async fn a_project_secret_goes_into_the_backing_namespace_with_the_project_label() {
        let mut store = fake::Store::default();
        store.projects.insert(("c-abc12".into(), "p-xyz34".into()), "c-abc12-p-xyz34".into());
        let (fake, kube) = fake::target(store, projects(&["c-abc12:p-xyz34"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.written[0].resource, "Secret c-abc12-p-xyz34/ecr-credentials (project p-xyz34)");
        let secret = fake.secret("c-abc12-p-xyz34", "ecr-credentials").expect("written in the backing namespace");
        assert_eq!(secret["metadata"]["labels"]["management.cattle.io/project-scoped-secret"], "p-xyz34");
        assert_eq!(fake::password_in(&secret).as_deref(), Some("pw"));
        let seen = fake.take_seen();
        assert!(seen[0].path.starts_with("/api/v1/secrets?"), "one LIST of the Secrets first: {}", seen[0].path);
        assert_eq!(seen[1].path, "/apis/management.cattle.io/v3/namespaces/c-abc12/projects/p-xyz34");
    }

    #[tokio::test]
    async fn an_unknown_project_fails_alone_with_what_to_do() {
        let mut store = fake::Store::default();
        store.projects.insert(("c-abc12".into(), "p-xyz34".into()), "c-abc12-p-xyz34".into());
        let (fake, kube) = fake::target(store, projects(&["c-abc12:p-gone", "c-abc12:p-xyz34"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].scope.as_deref(), Some("c-abc12:p-gone"));
        assert!(report.failures[0].error.hint().unwrap().contains("RANCHER_PROJECT_SECRETS"));
        assert_eq!(report.places, Some(Places { total: 2, missing: vec!["c-abc12:p-gone".into()] }));
        assert!(fake.secret("c-abc12-p-xyz34", "ecr-credentials").is_some());
    }
}
