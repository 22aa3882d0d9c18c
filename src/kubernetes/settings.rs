//! The settings of a Kubernetes target: each declared once ([`SETTINGS`]: variable, flag, file key, help), and
//! checked here ([`check`]) whichever form gave them; the result shapes the target ([`Settings`], [`Mode`]).
//!
//! Adding a setting: declare it below and list it in [`SETTINGS`]; read and check it in [`check`]; add its field
//! to [`Settings`] and use it. The flag, the help, the file key and the errors in both forms follow.

use std::time::Duration;

use super::connection::{self, KubeConnection};
pub use super::connection::{CONTEXT, KUBECONFIG};
use super::select::{self, Selection};
use crate::setting::{Given, Kind, Setting, SettingError, invalid, is_project_id};

pub const NAMESPACES: Setting = Setting::new(
    "KUBERNETES_NAMESPACES",
    "kubernetes-namespaces",
    "namespaces",
    "GLOBS",
    Kind::List,
    "Kubernetes target: comma-separated namespaces to write the pull Secret into, as names or globs (apps, team-*, * for all). Setting it (or KUBERNETES_NAMESPACE_SELECTOR) selects the Kubernetes target; with CATTLE_URL also set, both targets run.",
);
pub const SELECTOR: Setting = Setting::new(
    "KUBERNETES_NAMESPACE_SELECTOR",
    "kubernetes-namespace-selector",
    "namespace_selector",
    "SELECTOR",
    Kind::Text,
    "Kubernetes target: only namespaces with these labels (a label selector, as kubectl get -l takes it).",
);
pub const EXCLUDE: Setting = Setting::new(
    "KUBERNETES_EXCLUDE_NAMESPACES",
    "kubernetes-exclude-namespaces",
    "exclude_namespaces",
    "GLOBS",
    Kind::List,
    "Kubernetes target: comma-separated namespaces (names or globs) never written to, e.g. kube-*.",
);
pub const SECRET_NAME: Setting = Setting::new(
    "KUBERNETES_SECRET_NAME",
    "kubernetes-secret-name",
    "secret_name",
    "NAME",
    Kind::Text,
    "Kubernetes target: name of the Secret written in each namespace (default ecr-credentials).",
);
pub const SERVICE_ACCOUNTS: Setting = Setting::new(
    "KUBERNETES_SERVICE_ACCOUNTS",
    "kubernetes-service-accounts",
    "service_accounts",
    "NAMES",
    Kind::List,
    "Kubernetes target: comma-separated ServiceAccounts (e.g. default, or * for all) whose imagePullSecrets get the Secret, keeping what they already list.",
);
pub const ADOPT: Setting = Setting::new(
    "KUBERNETES_ADOPT_SECRETS",
    "kubernetes-adopt-secrets",
    "adopt",
    "BOOL",
    Kind::Bool,
    "Kubernetes target: take over an existing Secret of that name that this daemon did not write: true or false (default false: such a Secret is left alone, with an error naming it).",
);
pub const EVENTS: Setting = Setting::new(
    "KUBERNETES_EVENTS",
    "kubernetes-events",
    "events",
    "BOOL",
    Kind::Bool,
    "Kubernetes target: Warning Events (WriteFailed, NotOurs, Contested, LinkFailed) about the Secret and ServiceAccounts, in the namespace concerned, at most once per reason and object in 10 minutes: true or false (default true). Needs RBAC events create/patch (events.k8s.io).",
);
pub const PROJECT_SECRETS: Setting = Setting::new(
    "RANCHER_PROJECT_SECRETS",
    "rancher-project-secrets",
    "rancher_projects",
    "IDS",
    Kind::List,
    "Rancher 2.12+ project-scoped secrets: comma-separated project ids (c-xxxxx:p-xxxxx), every project of a cluster (c-xxxxx:*), or every project of every cluster (*); the Secret goes into each project's backing namespace on Rancher's local cluster (KUBECONFIG pointing at https://<rancher>/k8s/clusters/local) and Rancher copies it into the project's namespaces. Projects of a pattern are listed at each refresh and watched between refreshes.",
);

pub const DIAGNOSE_PULLS: Setting = Setting::new(
    "KUBERNETES_DIAGNOSE_PULLS",
    "kubernetes-diagnose-pulls",
    "diagnose_pulls",
    "BOOL",
    Kind::Bool,
    "Kubernetes target (namespaces): watch kubelet's Events for failed pulls from ECR hosts, say the cause on the Pod as a Warning Event (ECRPullSecretMissing, ECRPullSecretNotReferenced, ECRRegistryNotCovered, ECRTokenExpired, ECRAccessDenied, ECRImageNotFound), and refresh at once when the token expired (at most once per registry per 5 minutes): true or false (default false). Needs events get/list/watch/create, pods get and serviceaccounts get.",
);

/// The settings of a Kubernetes target, in the order `--help` shows them.
pub const SETTINGS: [&Setting; 11] = [
    &NAMESPACES,
    &SELECTOR,
    &EXCLUDE,
    &SECRET_NAME,
    &SERVICE_ACCOUNTS,
    &CONTEXT,
    &ADOPT,
    &EVENTS,
    &PROJECT_SECRETS,
    &DIAGNOSE_PULLS,
    &KUBECONFIG,
];
/// Any of these selects a Kubernetes target in the environment form.
pub const SELECTING: [&Setting; 3] = [&NAMESPACES, &SELECTOR, &PROJECT_SECRETS];

pub const DEFAULT_SECRET_NAME: &str = "ecr-credentials";

/// What a Kubernetes target writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One Secret in each selected namespace.
    Namespaces(Selection),
    /// Rancher 2.12+ project-scoped secrets: project ids `c-xxxxx:p-xxxxx` (cluster namespace : project name),
    /// `c-xxxxx:*` (every project of that cluster) or `*` (every project of every cluster), as given.
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
    /// Send Warning Events about failures (KUBERNETES_EVENTS; on by default).
    pub events: bool,
    /// Time limit of each call (watches excepted).
    pub timeout: Duration,
    /// Watch kubelet's Events for failed ECR pulls and diagnose them ([`super::diagnose`]).
    pub diagnose_pulls: bool,
}

/// A checked Kubernetes target: how to reach the API server, and what to write there.
#[derive(Debug)]
pub struct KubernetesSettings {
    pub connection: KubeConnection,
    pub target: Settings,
}

/// Checks one Kubernetes target's settings and reads its kubeconfig (no call is made). `timeout` bounds each
/// call.
pub fn check(given: &dyn Given, timeout: Duration) -> Result<KubernetesSettings, SettingError> {
    let globs = |setting: &'static Setting| {
        select::parse_globs(&given.value(setting).unwrap_or_default()).map_err(|p| invalid(setting, p))
    };
    let names = globs(&NAMESPACES)?;
    let selector = given.value(&SELECTOR);
    if let Some(selector) = &selector {
        select::check_selector(selector).map_err(|p| invalid(&SELECTOR, p))?;
    }
    let exclude = globs(&EXCLUDE)?;
    let projects = project_patterns(given)?;
    let secret_name = given.value(&SECRET_NAME).unwrap_or_else(|| DEFAULT_SECRET_NAME.to_string());
    if !select::is_dns_subdomain(&secret_name) {
        return Err(invalid(
            &SECRET_NAME,
            format!("'{secret_name}' is not a Secret name (lower-case letters, digits, - and .)"),
        ));
    }
    let mut service_accounts: Vec<String> = Vec::new();
    for name in given.list(&SERVICE_ACCOUNTS) {
        if name != "*" && !select::is_dns_subdomain(&name) {
            return Err(invalid(&SERVICE_ACCOUNTS, format!("'{name}' is not a ServiceAccount name (or * for all)")));
        }
        if !service_accounts.contains(&name) {
            service_accounts.push(name);
        }
    }
    let adopt = given.flag(&ADOPT)?;
    // On unless turned off.
    let events = given.value(&EVENTS).is_none() || given.flag(&EVENTS)?;
    let diagnose_pulls = given.flag(&DIAGNOSE_PULLS)?;
    let [namespaces_name, selector_name, projects_name] = SELECTING.map(|s| given.name(s));
    let mode = match (names.is_empty() && selector.is_none(), projects.is_empty()) {
        (false, false) => {
            return Err(invalid(
                &PROJECT_SECRETS,
                format!(
                    "set together with {namespaces_name} or {selector_name}; a target writes either to namespaces or to Rancher projects"
                ),
            ));
        }
        (true, true) => {
            return Err(invalid(
                &NAMESPACES,
                format!("not set; give namespaces (names or globs, * for all), {selector_name} or {projects_name}"),
            ));
        }
        (false, true) => Mode::Namespaces(Selection { names, selector, exclude }),
        (true, false) => {
            if !exclude.is_empty() {
                return Err(invalid(&EXCLUDE, format!("only for namespaces, not with {projects_name}")));
            }
            if diagnose_pulls {
                return Err(invalid(&DIAGNOSE_PULLS, format!("only for namespaces, not with {projects_name}")));
            }
            if !service_accounts.is_empty() {
                return Err(invalid(
                    &SERVICE_ACCOUNTS,
                    format!("only for namespaces, not with {projects_name} (Rancher copies project-scoped secrets)"),
                ));
            }
            Mode::Projects(projects)
        }
    };
    let connection = connection::read(given)?;
    Ok(KubernetesSettings {
        connection,
        target: Settings { mode, secret_name, service_accounts, adopt, events, timeout, diagnose_pulls },
    })
}

/// RANCHER_PROJECT_SECRETS: project ids, `<cluster>:*` or `*`, checked and without duplicates.
fn project_patterns(given: &dyn Given) -> Result<Vec<String>, SettingError> {
    let mut projects: Vec<String> = Vec::new();
    for id in given.list(&PROJECT_SECRETS) {
        let cluster_pattern = id.strip_suffix(":*").is_some_and(|cluster| is_project_id(&format!("{cluster}:p")));
        if id != "*" && !cluster_pattern && !is_project_id(&id) {
            return Err(invalid(
                &PROJECT_SECRETS,
                format!(
                    "'{id}' is not a project id (c-xxxxx:p-xxxxx), every project of a cluster (c-xxxxx:*) or every project (*)"
                ),
            ));
        }
        if !projects.contains(&id) {
            projects.push(id);
        }
    }
    Ok(projects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setting::Values;

    #[test]
    fn project_secrets_take_ids_a_cluster_pattern_and_a_star() {
        let given = Values(vec![("RANCHER_PROJECT_SECRETS", "c-abc12:*, local:p-xyz34,*,c-abc12:*")]);
        assert_eq!(project_patterns(&given).unwrap(), ["c-abc12:*", "local:p-xyz34", "*"]);
        for bad in ["c-abc12:p*", "*:p-xyz34", "C-ABC:*", ":*", "c-abc12", "**"] {
            let given = Values(vec![("RANCHER_PROJECT_SECRETS", bad)]);
            let err = project_patterns(&given).unwrap_err();
            assert!(err.problem.contains("every project of a cluster"), "{bad}: {err}");
        }
    }
}
