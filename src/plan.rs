//! The plan: where ECR tokens come from (sources) and which Rancher targets they go to.
//!
//! The environment-variable form describes one source feeding one target. A TOML configuration file
//! (`CONFIG_FILE`) describes several:
//!
//! ```toml
//! [[source]]
//! name = "prod"
//! region = "us-east-1"
//! registry_ids = ["123456789012"]
//! role_arn = "arn:aws:iam::123456789012:role/ecr-token-reader"
//! external_id_file = "/run/secrets/ecr-external-id"
//!
//! [[target]]
//! name = "rancher1-prod"
//! url = "http://rancher:8080/v2-beta/projects/1a5"
//! access_key_file = "/run/secrets/cattle-access-key"
//! secret_key_file = "/run/secrets/cattle-secret-key"
//! sources = ["prod"]
//! ```
//!
//! Every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{
    AwsSettings, ConfigError, KubeConnection, KubernetesSettings, RancherAuth, RancherSettings, RawKube, RawSource,
    RawTarget, address_override, bounded, invalid, kubernetes_settings, source_settings, target_settings,
};
use crate::kubernetes::Mode;
use crate::rancher::endpoint::Endpoint;
use crate::secret::Secret;

/// Where tokens come from and where they go.
#[derive(Debug)]
pub struct Plan {
    pub sources: Vec<SourceSpec>,
    /// Rancher targets (1.x or 2.x through Rancher's own APIs).
    pub targets: Vec<TargetSpec>,
    /// Kubernetes targets (Secrets in namespaces, or Rancher 2.12+ project-scoped secrets).
    pub kube_targets: Vec<KubeTargetSpec>,
}

/// One Kubernetes API server, what to write there, and the sources it takes tokens from.
#[derive(Debug)]
pub struct KubeTargetSpec {
    /// The file's name for it; the API server's URL names it otherwise.
    pub name: Option<String>,
    pub kubernetes: KubernetesSettings,
    /// Indexes into [`Plan::sources`].
    pub sources: Vec<usize>,
}

/// One way to obtain ECR tokens: a region, with the default credentials or a role assumed on top of them.
#[derive(Debug)]
pub struct SourceSpec {
    pub name: String,
    pub aws: AwsSettings,
    /// The ECR endpoint (a VPC endpoint, say); `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL` when `None`.
    pub endpoint: Option<String>,
    /// ECR host → the address Rancher stores for it, when the two differ (a proxy in front of ECR).
    pub addresses: Vec<(String, String)>,
    /// ECR Public (`public.ecr.aws`, token from `ecr-public` in us-east-1) instead of private registries.
    pub public: bool,
}

/// One Rancher endpoint (a 1.x environment, or 2.x projects) and the sources it takes tokens from.
#[derive(Debug)]
pub struct TargetSpec {
    /// The file's name for it; the Rancher URL names it otherwise.
    pub name: Option<String>,
    pub rancher: RancherSettings,
    pub auto_create: bool,
    /// Indexes into [`Plan::sources`].
    pub sources: Vec<usize>,
}

const MIN_SESSION: Duration = Duration::from_secs(900);
const MAX_SESSION: Duration = Duration::from_secs(43_200);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: Vec<Spanned<SourceFile>>,
    #[serde(default)]
    target: Vec<Spanned<TargetFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    name: Spanned<String>,
    region: Option<Spanned<String>>,
    registry_ids: Option<Spanned<Vec<String>>>,
    role_arn: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    external_id_file: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    session_duration: Option<Spanned<String>>,
    endpoint: Option<Spanned<String>>,
    addresses: Option<Spanned<BTreeMap<String, String>>>,
    public: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: Spanned<String>,
    url: Option<Spanned<String>>,
    api: Option<Spanned<String>>,
    access_key: Option<Spanned<String>>,
    access_key_file: Option<Spanned<String>>,
    secret_key: Option<Spanned<String>>,
    secret_key_file: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    ca_bundle: Option<Spanned<String>>,
    insecure_skip_verify: Option<Spanned<bool>>,
    timeout: Option<Spanned<String>>,
    projects: Option<Spanned<Vec<String>>>,
    cluster: Option<Spanned<String>>,
    environments: Option<Spanned<Vec<String>>>,
    auto_create: Option<Spanned<bool>>,
    sources: Option<Spanned<Vec<String>>>,
    kubeconfig: Option<Spanned<String>>,
    context: Option<Spanned<String>>,
    namespaces: Option<Spanned<Vec<String>>>,
    namespace_selector: Option<Spanned<String>>,
    exclude_namespaces: Option<Spanned<Vec<String>>>,
    secret_name: Option<Spanned<String>>,
    service_accounts: Option<Spanned<Vec<String>>>,
    adopt: Option<Spanned<bool>>,
    rancher_projects: Option<Spanned<Vec<String>>>,
}

/// The environment variables whose checks the file reuses, and the keys they are in the file.
const TARGET_KEYS: [(&str, &str); 16] = [
    ("RANCHER_ENVIRONMENTS", "environments"),
    ("CATTLE_ACCESS_KEY_FILE", "access_key_file"),
    ("CATTLE_SECRET_KEY_FILE", "secret_key_file"),
    ("RANCHER_TOKEN_FILE", "token_file"),
    ("CATTLE_INSECURE_SKIP_VERIFY", "insecure_skip_verify"),
    ("CATTLE_ACCESS_KEY", "access_key"),
    ("CATTLE_SECRET_KEY", "secret_key"),
    ("CATTLE_CA_BUNDLE", "ca_bundle"),
    ("RANCHER_PROJECTS", "projects"),
    ("RANCHER_CLUSTER", "cluster"),
    ("RANCHER_TOKEN", "token"),
    ("RANCHER_API", "api"),
    ("CATTLE_URL", "url"),
    ("AUTO_CREATE", "auto_create"),
    ("RANCHER_TIMEOUT", "timeout"),
    ("CATTLE_URL", "url"),
];
/// The environment variables of a Kubernetes target, and the keys they are in the file.
const KUBE_KEYS: [(&str, &str); 9] = [
    ("KUBERNETES_NAMESPACE_SELECTOR", "namespace_selector"),
    ("KUBERNETES_EXCLUDE_NAMESPACES", "exclude_namespaces"),
    ("KUBERNETES_SERVICE_ACCOUNTS", "service_accounts"),
    ("KUBERNETES_ADOPT_SECRETS", "adopt"),
    ("KUBERNETES_SECRET_NAME", "secret_name"),
    ("KUBERNETES_NAMESPACES", "namespaces"),
    ("RANCHER_PROJECT_SECRETS", "rancher_projects"),
    ("KUBERNETES_CONTEXT", "context"),
    ("KUBECONFIG", "kubeconfig"),
];
const SOURCE_KEYS: [(&str, &str); 6] = [
    ("AWS_ROLE_SESSION_NAME", "session_name"),
    ("AWS_ROLE_EXTERNAL_ID", "external_id"),
    ("AWS_ECR_REGISTRY_IDS", "registry_ids"),
    ("AWS_ROLE_ARN", "role_arn"),
    ("AWS_REGION", "region"),
    ("REGISTRY_ADDRESS_MAP", "addresses"),
];

/// Positions in the file, for error messages.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())].matches('\n').count() + 1
    }

    fn error(&self, span: &Range<usize>, what: &str, problem: impl Into<String>) -> ConfigError {
        invalid(format!("{} line {}: {what}", self.path.display(), self.line(span)), problem)
    }

    /// Moves an error of a shared check (which names environment variables) to the key in the file.
    fn relocate(
        &self,
        e: ConfigError,
        table: &str,
        keys: &[(&str, &str)],
        spans: &[(&str, Range<usize>)],
    ) -> ConfigError {
        let key = keys.iter().find(|(env, _)| e.setting == *env).map_or("?", |(_, key)| *key);
        let mut problem = e.problem;
        for (env, file_key) in keys {
            problem = problem.replace(env, file_key);
        }
        let span = spans.iter().find(|(k, _)| *k == key).map(|(_, s)| s.clone()).unwrap_or(0..0);
        self.error(&span, &format!("{table}.{key}"), problem)
    }
}

fn text(value: &Option<Spanned<String>>) -> Option<String> {
    value.as_ref().map(|v| v.get_ref().clone())
}

fn path(value: &Option<Spanned<String>>) -> Option<PathBuf> {
    value.as_ref().map(|v| PathBuf::from(v.get_ref()))
}

fn span_of<T>(key: &'static str, value: &Option<Spanned<T>>) -> Option<(&'static str, Range<usize>)> {
    value.as_ref().map(|v| (key, v.span()))
}

/// Reads and checks a configuration file. `timeout` is the default Rancher timeout (RANCHER_TIMEOUT).
pub fn from_file(file: &Path, web_identity: bool, timeout: Duration) -> Result<Plan, ConfigError> {
    let _ = web_identity; // A role in the file is always assumed on top of the default chain.
    let shown = file.display();
    let content =
        std::fs::read_to_string(file).map_err(|e| invalid("CONFIG_FILE", format!("cannot read '{shown}': {e}")))?;
    let at = Locator { path: file, text: &content };
    let parsed: File = toml::from_str(&content).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at.error(&span, "syntax", e.message().trim().replace('\n', " "))
    })?;
    if parsed.source.is_empty() {
        return Err(invalid(format!("{shown}"), "has no [[source]]; describe at least one source of ECR tokens"));
    }
    if parsed.target.is_empty() {
        return Err(invalid(format!("{shown}"), "has no [[target]]; describe at least one Rancher target"));
    }

    let mut sources: Vec<SourceSpec> = Vec::new();
    for (i, source) in parsed.source.iter().enumerate() {
        let table = format!("source[{i}]");
        let s = source.get_ref();
        let name = s.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            return Err(at.error(
                &s.name.span(),
                &format!("{table}.name"),
                format!("'{name}' is not a name (letters, digits, - and _)"),
            ));
        }
        if sources.iter().any(|known| known.name == name) {
            return Err(at.error(
                &s.name.span(),
                &format!("{table}.name"),
                format!("'{name}' is used by an earlier source"),
            ));
        }
        let table = format!("source '{name}'");
        if let (Some(_), Some(file)) = (&s.external_id, &s.external_id_file) {
            let key = format!("{table}.external_id_file");
            return Err(at.error(&file.span(), &key, "set together with external_id; use one of the two"));
        }
        let external_id = match &s.external_id_file {
            Some(file) => {
                let key = format!("{table}.external_id_file");
                let path = Path::new(file.get_ref());
                let value = crate::secret::read_file(path).map_err(|p| at.error(&file.span(), &key, p))?;
                Some(Secret::from_file(key, path, value))
            }
            None => text(&s.external_id).map(|value| Secret::fixed(format!("{table}.external_id"), value)),
        };
        let raw = RawSource {
            region: text(&s.region),
            registry_ids: s.registry_ids.as_ref().map(|ids| ids.get_ref().join(",")),
            role_arn: text(&s.role_arn),
            external_id,
            session_name: text(&s.session_name),
            address_map: None,
        };
        let spans: Vec<(&str, Range<usize>)> = [
            span_of("region", &s.region),
            span_of("registry_ids", &s.registry_ids),
            span_of("role_arn", &s.role_arn),
            span_of("external_id", &s.external_id).or(span_of("external_id", &s.external_id_file)),
            span_of("session_name", &s.session_name),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (mut aws, _) = source_settings(raw, false).map_err(|e| at.relocate(e, &table, &SOURCE_KEYS, &spans))?;
        if let Some(duration) = &s.session_duration {
            let key = format!("{table}.session_duration");
            let Some(role) = aws.assume_role.as_mut() else {
                return Err(at.error(&duration.span(), &key, "set, but role_arn is not"));
            };
            let value = bounded("session_duration", duration.get_ref(), MIN_SESSION, MAX_SESSION)
                .map_err(|e| at.error(&duration.span(), &key, e.problem))?;
            role.duration = Some(value);
        }
        let endpoint = match &s.endpoint {
            Some(endpoint) => Some(
                check_endpoint(endpoint.get_ref())
                    .map_err(|p| at.error(&endpoint.span(), &format!("{table}.endpoint"), p))?,
            ),
            None => None,
        };
        let mut addresses = Vec::new();
        if let Some(map) = &s.addresses {
            for (host, address) in map.get_ref() {
                let pair = address_override("addresses", host, address)
                    .map_err(|e| at.error(&map.span(), &format!("{table}.addresses"), e.problem))?;
                addresses.push(pair);
            }
        }
        let public = s.public.as_ref().is_some_and(|p| *p.get_ref());
        if public && !aws.registry_ids.is_empty() {
            let span = s.registry_ids.as_ref().map(|r| r.span()).unwrap_or_default();
            return Err(at.error(&span, &format!("{table}.registry_ids"), "ECR Public has one registry; leave it out"));
        }
        sources.push(SourceSpec { name, aws, endpoint, addresses, public });
    }

    let mut targets: Vec<TargetSpec> = Vec::new();
    let mut kube_targets: Vec<KubeTargetSpec> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, target) in parsed.target.iter().enumerate() {
        let t = target.get_ref();
        let name = t.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            return Err(at.error(
                &t.name.span(),
                &format!("target[{i}].name"),
                format!("'{name}' is not a name (letters, digits, - and _)"),
            ));
        }
        if names.contains(&name) {
            return Err(at.error(
                &t.name.span(),
                &format!("target[{i}].name"),
                format!("'{name}' is used by an earlier target"),
            ));
        }
        names.push(name.clone());
        let table = format!("target '{name}'");
        let sources_of = |names: &Option<Spanned<Vec<String>>>| chosen_sources(&at, &table, names, &sources);
        if t.api.as_ref().is_some_and(|api| api.get_ref().eq_ignore_ascii_case("kubernetes")) {
            let kubernetes = kube_target(&at, &table, t, timeout)?;
            kube_targets.push(KubeTargetSpec { name: Some(name), kubernetes, sources: sources_of(&t.sources)? });
            continue;
        }
        let kube_only = [
            span_of("kubeconfig", &t.kubeconfig),
            span_of("context", &t.context),
            span_of("namespaces", &t.namespaces),
            span_of("namespace_selector", &t.namespace_selector),
            span_of("exclude_namespaces", &t.exclude_namespaces),
            span_of("secret_name", &t.secret_name),
            span_of("service_accounts", &t.service_accounts),
            span_of("adopt", &t.adopt),
            span_of("rancher_projects", &t.rancher_projects),
        ];
        if let Some((key, span)) = kube_only.into_iter().flatten().next() {
            return Err(at.error(&span, &format!("{table}.{key}"), "only for api = \"kubernetes\" targets"));
        }
        if t.url.is_none() {
            return Err(at.error(&target.span(), &format!("{table}.url"), "not set; give the Rancher API endpoint"));
        }
        let timeout = match &t.timeout {
            Some(value) => {
                bounded("RANCHER_TIMEOUT", value.get_ref(), Duration::from_millis(100), Duration::from_secs(600))
                    .map_err(|e| at.error(&value.span(), &format!("{table}.timeout"), e.problem))?
            }
            None => timeout,
        };
        let raw = RawTarget {
            url: text(&t.url),
            api: text(&t.api),
            projects: t.projects.as_ref().map(|p| p.get_ref().join(",")),
            cluster: text(&t.cluster),
            environments: t.environments.as_ref().map(|e| e.get_ref().join(",")),
            token: text(&t.token),
            token_file: path(&t.token_file),
            access_key: text(&t.access_key),
            access_key_file: path(&t.access_key_file),
            secret_key: text(&t.secret_key),
            secret_key_file: path(&t.secret_key_file),
            ca_bundle: path(&t.ca_bundle),
            insecure_skip_verify: t.insecure_skip_verify.as_ref().map(|b| b.get_ref().to_string()),
            auto_create: t.auto_create.as_ref().map(|b| b.get_ref().to_string()),
        };
        let spans: Vec<(&str, Range<usize>)> = [
            span_of("url", &t.url),
            span_of("api", &t.api),
            span_of("projects", &t.projects),
            span_of("cluster", &t.cluster),
            span_of("environments", &t.environments),
            span_of("token", &t.token),
            span_of("token_file", &t.token_file),
            span_of("access_key", &t.access_key),
            span_of("access_key_file", &t.access_key_file),
            span_of("secret_key", &t.secret_key),
            span_of("secret_key_file", &t.secret_key_file),
            span_of("ca_bundle", &t.ca_bundle),
            span_of("insecure_skip_verify", &t.insecure_skip_verify),
            span_of("auto_create", &t.auto_create),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (rancher, auto_create) =
            target_settings(raw, timeout).map_err(|e| at.relocate(e, &table, &TARGET_KEYS, &spans))?;
        let chosen = sources_of(&t.sources)?;
        targets.push(TargetSpec { name: Some(name), rancher, auto_create, sources: chosen });
    }
    Ok(Plan { sources, targets, kube_targets })
}

/// The sources a target takes tokens from: the named ones, or all.
fn chosen_sources(
    at: &Locator<'_>,
    table: &str,
    names: &Option<Spanned<Vec<String>>>,
    sources: &[SourceSpec],
) -> Result<Vec<usize>, ConfigError> {
    let Some(names) = names else { return Ok((0..sources.len()).collect()) };
    let mut chosen = Vec::new();
    for wanted in names.get_ref() {
        match sources.iter().position(|s| &s.name == wanted) {
            Some(index) if !chosen.contains(&index) => chosen.push(index),
            Some(_) => {}
            None => {
                let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                return Err(at.error(
                    &names.span(),
                    &format!("{table}.sources"),
                    format!("no source is named '{wanted}' (sources: {})", known.join(", ")),
                ));
            }
        }
    }
    if chosen.is_empty() {
        return Err(at.error(&names.span(), &format!("{table}.sources"), "is empty; name at least one source"));
    }
    Ok(chosen)
}

/// A `[[target]]` with `api = "kubernetes"`: the Kubernetes keys, checked as their environment variables are.
fn kube_target(
    at: &Locator<'_>,
    table: &str,
    t: &TargetFile,
    timeout: Duration,
) -> Result<KubernetesSettings, ConfigError> {
    let rancher_only = [
        span_of("url", &t.url),
        span_of("access_key", &t.access_key),
        span_of("access_key_file", &t.access_key_file),
        span_of("secret_key", &t.secret_key),
        span_of("secret_key_file", &t.secret_key_file),
        span_of("token", &t.token),
        span_of("token_file", &t.token_file),
        span_of("ca_bundle", &t.ca_bundle),
        span_of("insecure_skip_verify", &t.insecure_skip_verify),
        span_of("projects", &t.projects),
        span_of("cluster", &t.cluster),
        span_of("auto_create", &t.auto_create),
    ];
    if let Some((key, span)) = rancher_only.into_iter().flatten().next() {
        let hint = if key == "projects" { "; project-scoped secrets are rancher_projects" } else { "" };
        return Err(at.error(&span, &format!("{table}.{key}"), format!("not for api = \"kubernetes\" targets{hint}")));
    }
    let timeout = match &t.timeout {
        Some(value) => {
            bounded("RANCHER_TIMEOUT", value.get_ref(), Duration::from_millis(100), Duration::from_secs(600))
                .map_err(|e| at.error(&value.span(), &format!("{table}.timeout"), e.problem))?
        }
        None => timeout,
    };
    let list = |v: &Option<Spanned<Vec<String>>>| v.as_ref().map(|v| v.get_ref().join(","));
    let raw = RawKube {
        kubeconfig: text(&t.kubeconfig),
        context: text(&t.context),
        namespaces: list(&t.namespaces),
        selector: text(&t.namespace_selector),
        exclude: list(&t.exclude_namespaces),
        secret_name: text(&t.secret_name),
        service_accounts: list(&t.service_accounts),
        adopt: t.adopt.as_ref().map(|b| b.get_ref().to_string()),
        projects: list(&t.rancher_projects),
    };
    let spans: Vec<(&str, Range<usize>)> = [
        span_of("kubeconfig", &t.kubeconfig),
        span_of("context", &t.context),
        span_of("namespaces", &t.namespaces),
        span_of("namespace_selector", &t.namespace_selector),
        span_of("exclude_namespaces", &t.exclude_namespaces),
        span_of("secret_name", &t.secret_name),
        span_of("service_accounts", &t.service_accounts),
        span_of("adopt", &t.adopt),
        span_of("rancher_projects", &t.rancher_projects),
    ]
    .into_iter()
    .flatten()
    .collect();
    kubernetes_settings(raw, timeout).map_err(|e| at.relocate(e, table, &KUBE_KEYS, &spans))
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_endpoint(value: &str) -> Result<String, String> {
    match url::Url::parse(value) {
        Ok(url) if (url.scheme() == "https" || url.scheme() == "http") && url.host_str().is_some() => {
            Ok(value.to_string())
        }
        _ => Err(format!("'{value}' is not an http(s) URL")),
    }
}

/// The registry hosts a source will get tokens for, as far as they are known without calling AWS.
pub fn expected_hosts(source: &SourceSpec, region: &str) -> Vec<String> {
    if source.public {
        return vec![format!("{} (ECR Public, token from us-east-1)", crate::ecr::PUBLIC_HOST)];
    }
    source
        .aws
        .registry_ids
        .iter()
        .map(|id| {
            let host = format!("{id}.dkr.ecr.{region}.amazonaws.com");
            match source.addresses.iter().find(|(ecr, _)| *ecr == host) {
                Some((_, alias)) => format!("{host} (in Rancher as {alias})"),
                None => host,
            }
        })
        .collect()
}

/// The plan in words, for `--check-config`: no secret, only whether and where each is set.
pub fn describe(plan: &Plan, regions: &[String], target_names: &[String]) -> String {
    let mut out = String::new();
    for (source, region) in plan.sources.iter().zip(regions) {
        let _ = writeln!(out, "source {}: region {region}", source.name);
        match &source.aws.assume_role {
            Some(role) => {
                let external = if role.external_id.is_some() { ", with an ExternalId" } else { "" };
                let _ = writeln!(
                    out,
                    "  credentials: the default AWS chain, then role {} (session {}{external})",
                    role.role_arn, role.session_name
                );
            }
            None => {
                let _ = writeln!(out, "  credentials: the default AWS chain");
            }
        }
        if let Some(endpoint) = &source.endpoint {
            let _ = writeln!(out, "  ECR endpoint: {endpoint}");
        }
        let hosts = expected_hosts(source, region);
        if hosts.is_empty() {
            let _ =
                writeln!(out, "  registries: the caller's own account in {region} (host known after the first call)");
        }
        for host in hosts {
            let _ = writeln!(out, "  registry: {host}");
        }
        for (ecr, alias) in &source.addresses {
            let _ = writeln!(out, "  address override: {ecr} -> {alias}");
        }
    }
    for (target, name) in plan.targets.iter().zip(target_names) {
        let _ = writeln!(out, "target {name}:");
        let api = match &target.rancher.endpoint {
            Endpoint::Cattle(_) => "Rancher 1.x (Cattle)",
            Endpoint::V3 { .. } => "Rancher 2 (/v3)",
            Endpoint::Unversioned { .. } => "probed at start (Rancher 1.x or 2)",
        };
        let _ = writeln!(out, "  API: {api}");
        let auth = match &target.rancher.auth {
            RancherAuth::None => "none",
            RancherAuth::Keys(_) => "access key and secret key (set)",
            RancherAuth::Token(_) => "bearer token (set)",
        };
        let _ = writeln!(out, "  authentication: {auth}");
        if !target.rancher.projects.is_empty() {
            let _ = writeln!(out, "  projects: {}", target.rancher.projects.join(", "));
        }
        if let Some(cluster) = &target.rancher.cluster {
            let _ = writeln!(out, "  cluster: {cluster}");
        }
        if target.rancher.tls.ca_bundle.is_some() {
            let _ = writeln!(out, "  TLS: extra CA bundle");
        }
        if target.rancher.tls.insecure_skip_verify {
            let _ = writeln!(out, "  TLS: certificate NOT verified (insecure)");
        }
        let names: Vec<&str> = target.sources.iter().map(|&i| plan.sources[i].name.as_str()).collect();
        let _ = writeln!(out, "  sources: {}", names.join(", "));
        let _ = writeln!(out, "  auto create: {}", if target.auto_create { "yes" } else { "no" });
    }
    for (target, name) in plan.kube_targets.iter().zip(target_names.iter().skip(plan.targets.len())) {
        let _ = writeln!(out, "target {name}:");
        let _ = writeln!(out, "  API: Kubernetes");
        match &target.kubernetes.connection {
            KubeConnection::Kubeconfig { files, context, server, .. } => {
                let _ = writeln!(out, "  kubeconfig: {files} (context {context})");
                let _ = writeln!(out, "  server: {server}");
            }
            KubeConnection::InCluster { server } => {
                let _ = writeln!(out, "  connection: the pod's ServiceAccount (in-cluster)");
                let _ = writeln!(out, "  server: {server}");
            }
        }
        let settings = &target.kubernetes.target;
        match &settings.mode {
            Mode::Namespaces(selection) => {
                let names = if selection.names.is_empty() { "all".to_string() } else { selection.names.join(", ") };
                let _ = writeln!(out, "  mode: a Secret in each selected namespace");
                let _ = writeln!(out, "  namespaces: {names}");
                if let Some(selector) = &selection.selector {
                    let _ = writeln!(out, "  namespace selector: {selector}");
                }
                if !selection.exclude.is_empty() {
                    let _ = writeln!(out, "  excluded namespaces: {}", selection.exclude.join(", "));
                }
                if !settings.service_accounts.is_empty() {
                    let _ = writeln!(out, "  service accounts: {}", settings.service_accounts.join(", "));
                }
            }
            Mode::Projects(projects) => {
                let _ = writeln!(
                    out,
                    "  mode: Rancher project-scoped secrets (Rancher copies them into the projects' namespaces)"
                );
                let _ = writeln!(out, "  projects: {}", projects.join(", "));
            }
        }
        let _ = writeln!(out, "  secret name: {}", settings.secret_name);
        let _ = writeln!(out, "  adopt foreign secrets: {}", if settings.adopt { "yes" } else { "no" });
        let names: Vec<&str> = target.sources.iter().map(|&i| plan.sources[i].name.as_str()).collect();
        let _ = writeln!(out, "  sources: {}", names.join(", "));
    }
    out
}
