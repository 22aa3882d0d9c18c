//! Rancher 2.x through the norman `/v3` API: `dockerCredential` (project-scoped) and
//! `namespacedDockerCredential` resources whose `registries` map has a key naming an ECR host.
//!
//! Facts this relies on (see the reference notes on the /v3 API): passwords are write-only, and a PUT of
//! `registries` replaces the whole map. A credential that also holds a registry this daemon does not refresh
//! is therefore never written: its other passwords would be lost. IDs are `<namespace>:<name>`.
//!
//! A target that covers every project (or every project of RANCHER_CLUSTER) also looks for new projects
//! between refreshes ([`V3::watch`]): one LIST of the projects every RANCHER_PROJECTS_CHECK_INTERVAL, and a new
//! project is brought up to date at once with the tokens of the last refresh. Nothing else is read in that check.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::endpoint::is_project_id;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::error::RancherError;
use super::outcome;
use super::session::{Session, with_query};
use crate::address;
use crate::redact;
use crate::report::{Action, Failure, Notice, SyncOptions, SyncReport, Written};
use crate::status::Status;
use crate::token::RegistryToken;

/// Norman's default page is 1000 and its maximum 10000.
const PAGE_LIMIT: &str = "1000";
/// Rancher copies a project-scoped credential into every namespace of the project; the copies are
/// overwritten from the original, so only the original is written.
const COPY_ANNOTATION: &str = "management.cattle.io/project-scoped-secret-copy";

/// Which projects a Rancher 2 target covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These projects (`<cluster>:<project>` ids).
    Projects(Vec<String>),
    /// Every project the key can see, optionally only those of one cluster.
    All { cluster: Option<String> },
}

/// The two kinds of credential resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Project,
    Namespaced,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Project => "dockercredentials",
            Kind::Namespaced => "namespaceddockercredentials",
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Kind::Project => "dockerCredential",
            Kind::Namespaced => "namespacedDockerCredential",
        }
    }
}

#[derive(Deserialize)]
struct ProjectItem {
    id: String,
    state: Option<String>,
}

impl ProjectItem {
    /// The cluster of a project is the part of its id before the colon.
    fn is_in(&self, cluster: &str) -> bool {
        self.id.split_once(':').is_some_and(|(c, _)| c == cluster)
    }
}

#[derive(Deserialize)]
struct CredentialItem {
    id: String,
    #[serde(default)]
    registries: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    annotations: Option<HashMap<String, Value>>,
    #[serde(rename = "projectId")]
    project_id: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// A Rancher 2 server reached through one API key.
#[derive(Clone)]
pub struct V3 {
    session: Session,
    /// `…/v3`, without a trailing slash.
    base: Url,
    scope: Scope,
    /// How often [`V3::watch`] looks for new projects ([`Scope::All`] only).
    check_interval: Duration,
    /// What the last refresh wrote with, and the projects it covered: what the check for new projects needs.
    last: Arc<Mutex<Option<Last>>>,
    /// Held by a refresh and by a check, so that the two never write the same new project at once (AUTO_CREATE
    /// would create its credential twice).
    busy: Arc<tokio::sync::Mutex<()>>,
}

/// The last refresh, as the check for new projects uses it.
struct Last {
    tokens: Vec<RegistryToken>,
    options: SyncOptions,
    /// The projects known so far: listed by the last refresh or check.
    projects: BTreeSet<String>,
}

impl V3 {
    pub fn new(session: Session, base: Url, scope: Scope, check_interval: Duration) -> V3 {
        V3 { session, base, scope, check_interval, last: Arc::default(), busy: Arc::default() }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Last>> {
        self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the key and token files again (rotated secrets); true when anything changed.
    pub fn reload_secrets(&self) -> bool {
        self.session.reload_secrets()
    }

    /// The name of this target: the project URL for one project, else the API URL with the scope.
    pub fn name(&self) -> String {
        match &self.scope {
            Scope::Projects(projects) if projects.len() == 1 => format!("{}/project/{}", self.base, projects[0]),
            Scope::Projects(projects) => format!("{} projects {}", self.base, projects.join(",")),
            Scope::All { cluster: Some(cluster) } => format!("{} cluster {cluster}", self.base),
            Scope::All { cluster: None } => format!("{} all projects", self.base),
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("http(s) URLs have a path").extend(segments);
        url
    }

    async fn projects(&self) -> Result<Vec<String>, RancherError> {
        let cluster = match &self.scope {
            Scope::Projects(projects) => return Ok(projects.clone()),
            Scope::All { cluster } => cluster,
        };
        let mut params = vec![("limit", PAGE_LIMIT)];
        if let Some(cluster) = cluster {
            params.push(("clusterId", cluster.as_str()));
        }
        let url = with_query(&self.url(&["projects"]), &params);
        let mut projects = Vec::new();
        self.session
            .for_each(url.clone(), |item: ProjectItem| {
                // A server that ignored the clusterId filter must not lead to writes in other clusters.
                if let Some(cluster) = cluster
                    && !item.is_in(cluster)
                {
                    tracing::warn!(rancher = %self.base, project = %redact::outside(&item.id), cluster = %cluster,
                        "Skipped a project Rancher listed outside the cluster asked for (RANCHER_CLUSTER); not written");
                    return;
                }
                if !is_project_id(&item.id) {
                    tracing::warn!(rancher = %self.base, project = %redact::outside(&item.id),
                        "Skipped a project whose id is not <cluster>:<project>");
                    return;
                }
                if item.state.as_deref() != Some("removing") {
                    projects.push(item.id);
                }
            })
            .await?;
        if projects.is_empty() {
            // Nothing to write to is a setting to fix (a mistyped cluster, a key scoped elsewhere), not a success.
            let detail = match cluster {
                Some(cluster) => {
                    format!(
                        "the API key sees no project in cluster {cluster}; check RANCHER_CLUSTER and the key's scope"
                    )
                }
                None => "the API key sees no project at all; check the key's scope, or name the projects in \
                         RANCHER_PROJECTS or CATTLE_URL"
                    .to_string(),
            };
            // Refused: permanent, so it is an ERROR and retried at the slow end until a person fixes it.
            return Err(RancherError::Refused { resource: format!("the project list {url}"), detail });
        }
        Ok(projects)
    }

    /// The credentials of one kind in a project, copies left out. The answer is checked, not trusted: an item
    /// whose own `projectId` is not this project is left out with a notice, never written.
    async fn credentials(
        &self,
        project: &str,
        kind: Kind,
        notices: &mut Vec<Notice>,
    ) -> Result<Vec<CredentialItem>, RancherError> {
        let url = with_query(&self.url(&["project", project, kind.collection()]), &[("limit", PAGE_LIMIT)]);
        let mut items = Vec::new();
        self.session
            .for_each(url, |item: CredentialItem| {
                if item.annotations.as_ref().is_some_and(|a| a.contains_key(COPY_ANNOTATION)) {
                    return;
                }
                if item.project_id.as_deref() != Some(project) {
                    notices.push(Notice::NotAskedFor {
                        resource: format!("{} {}", kind.type_name(), redact::outside(&item.id)),
                        reason: format!(
                            "it belongs to project {}, not {project}",
                            item.project_id.as_deref().map(redact::outside).unwrap_or_else(|| "(none given)".into())
                        ),
                    });
                    return;
                }
                items.push(item);
            })
            .await?;
        Ok(items)
    }

    /// Brings every ECR host up to date in every project of the scope. A project that fails does not stop the
    /// others; only a failed project listing fails the whole sync.
    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        options: SyncOptions,
    ) -> Result<SyncReport<RancherError>, RancherError> {
        let _busy = self.busy.lock().await;
        let mut report = SyncReport::default();
        let projects = self.projects().await?;
        for project in &projects {
            self.sync_project_or_fail(project, tokens, options, &mut report).await;
        }
        if !options.dry_run && matches!(self.scope, Scope::All { .. }) {
            *self.last() = Some(Last { tokens: tokens.to_vec(), options, projects: projects.into_iter().collect() });
        }
        Ok(report)
    }

    /// One project brought up to date; a failure to read its credentials is a failure of each host there.
    async fn sync_project_or_fail(
        &self,
        project: &str,
        tokens: &[RegistryToken],
        options: SyncOptions,
        report: &mut SyncReport<RancherError>,
    ) {
        if let Err(error) = self.sync_project(project, tokens, options, report).await {
            for token in tokens {
                report.failures.push(Failure {
                    host: token.host.clone(),
                    scope: Some(project.to_string()),
                    error: error.clone(),
                });
            }
        }
    }

    /// Between refreshes, for a target that covers every project (of a cluster): every `check_interval`, lists
    /// the projects (one request) and brings each new one up to date with the last refresh's tokens, until
    /// `shutdown`. Returns at once for named projects.
    pub async fn watch(&self, target: &str, status: &Status, shutdown: &CancellationToken) {
        let Scope::All { .. } = &self.scope else { return };
        info!(rancher = %self.base, target = %target,
            every = %humantime::format_duration(self.check_interval), "Looking for new projects between refreshes");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.check_interval) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.check_new_projects(target, status) => {}
            }
        }
    }

    /// One check: the projects listed, and the new ones written. Logged and counted as a refresh's writes are.
    async fn check_new_projects(&self, target: &str, status: &Status) {
        let _busy = self.busy.lock().await;
        let Some((tokens, options, known)) =
            self.last().as_ref().map(|l| (l.tokens.clone(), l.options, l.projects.clone()))
        else {
            // Before the first refresh there is nothing to write with; that refresh covers every project.
            return;
        };
        let listed = match self.projects().await {
            Ok(listed) => listed,
            Err(error) => {
                status.error("rancher", error.kind());
                warn!(rancher = %self.base, target = %target, error = %error, kind = error.kind(),
                    "Could not list the projects to look for new ones; will look again");
                return;
            }
        };
        let new: Vec<String> = listed.iter().filter(|p| !known.contains(*p)).cloned().collect();
        if let Some(last) = self.last().as_mut() {
            last.projects = listed.into_iter().collect();
        }
        if new.is_empty() {
            debug!(rancher = %self.base, "No new project");
            return;
        }
        let now = SystemTime::now();
        // A token past its expiry is of no use to a new project; the next refresh brings new ones.
        let tokens: Vec<RegistryToken> =
            tokens.into_iter().filter(|t| t.expires_at.is_none_or(|at| at > now)).collect();
        let mut report = SyncReport::default();
        for project in &new {
            info!(rancher = %self.base, target = %target, project = %project, "New project; bringing its credentials up to date");
            self.sync_project_or_fail(project, &tokens, options, &mut report).await;
        }
        for written in &report.written {
            let expires_at = tokens.iter().find(|t| t.host == written.host).and_then(|t| t.expires_at);
            outcome::log_written(target, written, expires_at, false);
            status.credential_written(target, &written.key(), expires_at, now);
        }
        for notice in &report.notices {
            outcome::log_notice(target, notice);
        }
        for failure in &report.failures {
            let failure = Failure { host: failure.host.clone(), scope: failure.scope.clone(), error: &failure.error };
            outcome::on_failure(status, target, &failure);
        }
    }

    async fn sync_project(
        &self,
        project: &str,
        tokens: &[RegistryToken],
        options: SyncOptions,
        report: &mut SyncReport<RancherError>,
    ) -> Result<(), RancherError> {
        // Every form of an ECR registry's host (FIPS, dual-stack) takes the same token.
        let token_for = |key: &str| {
            address::normalize(key).and_then(|h| tokens.iter().find(|t| address::same_registry(&t.host, &h)))
        };
        let mut covered: Vec<&str> = Vec::new();
        for kind in [Kind::Project, Kind::Namespaced] {
            for item in self.credentials(project, kind, &mut report.notices).await? {
                let registries = item.registries.unwrap_or_default();
                let matched: Vec<(&String, &RegistryToken)> =
                    registries.keys().filter_map(|key| token_for(key).map(|t| (key, t))).collect();
                let Some((_, first)) = matched.first() else { continue };
                let resource = format!("{} {}", kind.type_name(), redact::outside(&item.id));
                if matched.len() < registries.len() {
                    let others: Vec<String> = registries
                        .keys()
                        .filter(|k| !matched.iter().any(|(m, _)| m == k))
                        .map(|k| redact::outside(k))
                        .collect();
                    report.failures.push(Failure {
                        host: first.host.clone(),
                        scope: Some(project.to_string()),
                        error: RancherError::Refused {
                            resource: resource.clone(),
                            detail: format!(
                                "it also holds {}, whose password Rancher never returns: a PUT would wipe it. \
                                 Keep each ECR registry in a credential of its own",
                                others.join(", ")
                            ),
                        },
                    });
                    continue;
                }
                let body = json!({ "registries": registries_body(&matched) });
                let url = self.url(&["project", project, kind.collection(), &item.id]);
                let outcome = match options.dry_run {
                    true => Ok(()),
                    false => self.session.call(self.session.request(Method::PUT, url).json(&body)).await.map(|_| ()),
                };
                match outcome {
                    Ok(()) => {
                        for (_, token) in &matched {
                            covered.push(token.host.as_str());
                            report.written.push(Written {
                                host: token.host.clone(),
                                scope: Some(project.to_string()),
                                resource: resource.clone(),
                                action: Action::Updated,
                            });
                        }
                    }
                    Err(error) => report.failures.push(Failure {
                        host: first.host.clone(),
                        scope: Some(project.to_string()),
                        error,
                    }),
                }
            }
        }
        for token in tokens {
            let already = covered.contains(&token.host.as_str())
                || report.failures.iter().any(|f| f.host == token.host && f.scope.as_deref() == Some(project));
            if already {
                continue;
            }
            if !options.auto_create {
                report.notices.push(Notice::NoRegistry { host: token.host.clone(), scope: Some(project.to_string()) });
                continue;
            }
            let created = match options.dry_run {
                true => Ok(format!("{project} (new) {}", credential_name(&token.host))),
                false => self.create(project, token).await,
            };
            match created {
                Ok(id) => report.written.push(Written {
                    host: token.host.clone(),
                    scope: Some(project.to_string()),
                    resource: format!("dockerCredential {id}"),
                    action: Action::Created,
                }),
                Err(error) => {
                    report.failures.push(Failure { host: token.host.clone(), scope: Some(project.to_string()), error })
                }
            }
        }
        Ok(())
    }

    async fn create(&self, project: &str, token: &RegistryToken) -> Result<String, RancherError> {
        // One credential holding the registry in each configured form (ECR_HOST_FORMS).
        let entries: Vec<(&String, &RegistryToken)> = token.addresses.iter().map(|a| (a, token)).collect();
        let body = json!({
            "type": "dockerCredential",
            "name": credential_name(&token.host),
            "registries": registries_body(&entries),
        });
        let url = self.url(&["project", project, Kind::Project.collection()]);
        let answer = self.session.call(self.session.request(Method::POST, url).json(&body)).await?;
        Ok(answer.json::<Created>()?.id)
    }
}

/// The `registries` map of a PUT or POST: every key as stored, with user name and new password.
fn registries_body(entries: &[(&String, &RegistryToken)]) -> Value {
    let map: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(key, token)| {
            let entry = json!({ "username": token.username, "password": token.password.expose_secret() });
            ((*key).clone(), entry)
        })
        .collect();
    Value::Object(map)
}

/// A predictable, valid Kubernetes name for a credential created by this daemon: `ecr-<account>-<region>` for
/// an ECR host, else `ecr-` and the host with every other character as `-`.
pub fn credential_name(host: &str) -> String {
    let parts: Vec<&str> = host.split('.').collect();
    let raw = match parts[..] {
        [account, "dkr", "ecr", region, ..] => format!("ecr-{account}-{region}"),
        _ => format!("ecr-{host}"),
    };
    let mut name: String =
        raw.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_credentials_get_predictable_valid_names() {
        assert_eq!(credential_name("123456789012.dkr.ecr.us-east-1.amazonaws.com"), "ecr-123456789012-us-east-1");
        assert_eq!(credential_name("registry.example.com:5000"), "ecr-registry-example-com-5000");
        let long = format!("{}.example.com", "a".repeat(80));
        assert!(credential_name(&long).len() <= 63);
    }

    #[test]
    fn project_ids_are_cluster_colon_project() {
        assert!(is_project_id("c-lgmzw:p-z2qff"));
        assert!(is_project_id("local:p-abcde"));
        for bad in ["p-z2qff", "c-x:", ":p-y", "C-X:P-Y", "c-x:p-y:z", "c x:p-y"] {
            assert!(!is_project_id(bad), "{bad}");
        }
    }
}
