//! Settings: command-line flags with environment fallbacks, checked into a [`Config`].
//!
//! All input checking happens here, before any network call. The names of the environment variables are the
//! ones the Go `rancher-ecr-credentials` used, so swapping the image keeps a deployment working. Every problem is
//! reported as one [`ConfigError`] line that names the setting and what is wrong with its value.
//!
//! Values are taken as plain strings from clap and parsed here, so that an error names the environment variable
//! a user actually set rather than clap's flag syntax.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::address::HostForm;
use crate::plan::{KubeTargetSpec, Plan, SourceSpec, TargetSpec};
use crate::rancher::endpoint::is_project_id;
use crate::rancher::endpoint::{ApiChoice, Endpoint, EndpointError};
pub use crate::rancher::settings::{BasicCredentials, Environments, RancherAuth, RancherSettings, TlsSettings};
use crate::schedule::{Backoff, Schedule};
use crate::secret::Secret;

/// Keeps Amazon ECR pull credentials fresh inside Rancher.
///
/// Every flag can also be given as the environment variable shown with it; the variables are the ones the Go
/// rancher-ecr-credentials used, so existing deployments keep working.
#[derive(Debug, Parser)]
#[command(name = "rancher-ecr-credentials", version, about, long_about = None, max_term_width = 110)]
pub struct Cli {
    /// Rancher API endpoint: Rancher 1.x http://rancher:8080/v1, …/v2-beta or …/v2-beta/projects/1a5; Rancher 2
    /// https://rancher/v3 or …/v3/projects/c-xxxxx:p-xxxxx; or a bare URL, probed to tell the two apart.
    /// Injected by Rancher 1.x for services with the agent labels.
    #[arg(long, env = "CATTLE_URL", value_name = "URL")]
    pub cattle_url: Option<String>,

    /// Which Rancher API CATTLE_URL speaks: auto (from the URL's path; a bare URL is probed), cattle (1.x) or
    /// v3 (2.x).
    #[arg(long, env = "RANCHER_API", value_name = "API")]
    pub rancher_api: Option<String>,

    /// Rancher 2: comma-separated project ids (c-xxxxx:p-xxxxx) to keep credentials fresh in, when CATTLE_URL
    /// is the /v3 root. Empty: every project the API key can see.
    #[arg(long, env = "RANCHER_PROJECTS", value_name = "IDS")]
    pub rancher_projects: Option<String>,

    /// Rancher 2: only the projects of this cluster (e.g. c-xxxxx or local), when CATTLE_URL is the /v3 root.
    #[arg(long, env = "RANCHER_CLUSTER", value_name = "ID")]
    pub rancher_cluster: Option<String>,

    /// Rancher 1.x with an account API key and CATTLE_URL the API root (…/v2-beta): the environments to keep
    /// credentials fresh in: all (every environment the key sees, new ones included) or a comma list of names
    /// or ids (1a5).
    #[arg(long, env = "RANCHER_ENVIRONMENTS", value_name = "ENVS")]
    pub rancher_environments: Option<String>,

    /// Rancher 2 bearer token (token-xxxxx:secret), instead of CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY. As a
    /// flag it is visible to every local user (/proc/PID/cmdline): prefer the variable or RANCHER_TOKEN_FILE.
    #[arg(long, env = "RANCHER_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub rancher_token: Option<String>,

    /// File holding the Rancher 2 bearer token (for mounted secrets); instead of RANCHER_TOKEN.
    #[arg(long, env = "RANCHER_TOKEN_FILE", value_name = "PATH")]
    pub rancher_token_file: Option<PathBuf>,

    /// Rancher API access key (Cattle: the user name of HTTP Basic auth; Rancher 2: the token-xxxxx part).
    #[arg(long, env = "CATTLE_ACCESS_KEY", value_name = "KEY", hide_env_values = true)]
    pub cattle_access_key: Option<String>,

    /// File holding the Rancher API access key (for mounted secrets); instead of CATTLE_ACCESS_KEY.
    #[arg(long, env = "CATTLE_ACCESS_KEY_FILE", value_name = "PATH")]
    pub cattle_access_key_file: Option<PathBuf>,

    /// Rancher API secret key (the password of HTTP Basic auth). Never logged. As a flag it is visible to every
    /// local user (/proc/PID/cmdline): prefer the variable or CATTLE_SECRET_KEY_FILE.
    #[arg(long, env = "CATTLE_SECRET_KEY", value_name = "KEY", hide_env_values = true)]
    pub cattle_secret_key: Option<String>,

    /// File holding the Rancher API secret key (for mounted secrets); instead of CATTLE_SECRET_KEY.
    #[arg(long, env = "CATTLE_SECRET_KEY_FILE", value_name = "PATH")]
    pub cattle_secret_key_file: Option<PathBuf>,

    /// PEM file with the CA certificate(s) that signed Rancher's TLS certificate (self-signed or private CA),
    /// trusted in addition to the system trust store (which SSL_CERT_FILE can replace).
    #[arg(long, env = "CATTLE_CA_BUNDLE", value_name = "PATH")]
    pub cattle_ca_bundle: Option<PathBuf>,

    /// Do not verify Rancher's TLS certificate at all: true or false. Anyone on the network path can then read
    /// the Rancher key and the ECR passwords; prefer CATTLE_CA_BUNDLE. Logged as a warning at every start.
    #[arg(long, env = "CATTLE_INSECURE_SKIP_VERIFY", value_name = "BOOL")]
    pub cattle_insecure_skip_verify: Option<String>,

    /// AWS region of the ECR registries. Falls back to AWS_DEFAULT_REGION, then to the region of the AWS profile.
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub aws_region: Option<String>,

    /// Comma-separated 12-digit AWS account ids whose registries to refresh (one token each). Empty: the
    /// registry of the account the credentials belong to.
    #[arg(long, env = "AWS_ECR_REGISTRY_IDS", value_name = "IDS")]
    pub aws_ecr_registry_ids: Option<String>,

    /// IAM role to assume (STS AssumeRole) on top of the default credential chain before calling ECR. When
    /// AWS_WEB_IDENTITY_TOKEN_FILE is set, this is the web identity role instead and is not assumed twice.
    #[arg(long, env = "AWS_ROLE_ARN", value_name = "ARN")]
    pub aws_role_arn: Option<String>,

    /// ExternalId to present when assuming AWS_ROLE_ARN (required by most third-party trust policies). As a flag
    /// it is visible to every local user (/proc/PID/cmdline): prefer the variable or AWS_ROLE_EXTERNAL_ID_FILE.
    #[arg(long, env = "AWS_ROLE_EXTERNAL_ID", value_name = "ID", hide_env_values = true)]
    pub aws_role_external_id: Option<String>,

    /// File holding the ExternalId (instead of AWS_ROLE_EXTERNAL_ID).
    #[arg(long, env = "AWS_ROLE_EXTERNAL_ID_FILE", value_name = "PATH")]
    pub aws_role_external_id_file: Option<PathBuf>,

    /// Session name used when assuming AWS_ROLE_ARN (shows up in CloudTrail).
    #[arg(long, env = "AWS_ROLE_SESSION_NAME", value_name = "NAME")]
    pub aws_role_session_name: Option<String>,

    /// Create the registry (and its credential) in Rancher when no registry matches an ECR host: true or false.
    #[arg(long, env = "AUTO_CREATE", value_name = "BOOL")]
    pub auto_create: Option<String>,

    /// Port of the health endpoint (GET /ping answers "pong!").
    #[arg(long, env = "LISTEN_PORT", value_name = "PORT")]
    pub listen_port: Option<String>,

    /// Address the health endpoint binds to.
    #[arg(long, env = "LISTEN_ADDRESS", value_name = "IP")]
    pub listen_address: Option<String>,

    /// Log level: error, warn, info, debug or trace (case-insensitive; "warning" is accepted too).
    #[arg(long, env = "LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log format: "text" for people, "json" for log collectors (one JSON object per line).
    #[arg(long, env = "LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Longest time between two refreshes, e.g. 6h, 90m, 3600s. The next refresh comes sooner when the token
    /// would otherwise get close to its expiry.
    #[arg(long, env = "REFRESH_INTERVAL", value_name = "DURATION")]
    pub refresh_interval: Option<String>,

    /// First wait before retrying after a failed refresh (default 5s). The wait doubles after each failure in a
    /// row, up to RETRY_MAX_DELAY.
    #[arg(long, env = "RETRY_DELAY", value_name = "DURATION")]
    pub retry_delay: Option<String>,

    /// Longest wait between retries after failures (default 5m); also the wait after an error that needs a
    /// person to act (rejected keys, denied permissions).
    #[arg(long, env = "RETRY_MAX_DELAY", value_name = "DURATION")]
    pub retry_max_delay: Option<String>,

    /// Time limit of each request to Rancher, from connecting to the last byte of the answer (default 30s).
    #[arg(long, env = "RANCHER_TIMEOUT", value_name = "DURATION")]
    pub rancher_timeout: Option<String>,

    /// Addresses under which Rancher knows ECR registries, when they differ from the ECR host (a reverse proxy or
    /// a custom domain in front of ECR): comma-separated ECR_HOST=ADDRESS pairs.
    #[arg(long, env = "REGISTRY_ADDRESS_MAP", value_name = "MAP")]
    pub registry_address_map: Option<String>,

    /// Which host forms of each ECR registry to write where entries are created (AUTO_CREATE, Kubernetes
    /// Secrets): a comma list of standard, dualstack, fips, dualstack-fips. Existing entries in any form are
    /// always refreshed.
    #[arg(long, env = "ECR_HOST_FORMS", value_name = "FORMS")]
    pub ecr_host_forms: Option<String>,

    /// Also keep an ECR Public (public.ecr.aws) credential fresh: true or false. Its token comes from the
    /// ecr-public API in us-east-1, whatever AWS_REGION says; authenticated pulls have higher rate limits.
    #[arg(long, env = "ECR_PUBLIC", value_name = "BOOL")]
    pub ecr_public: Option<String>,

    /// A TOML file describing several sources (AWS accounts, roles, regions) and targets (Rancher environments
    /// or projects); replaces the CATTLE_*, RANCHER_* and AWS_ECR/AWS_ROLE settings. See the README.
    #[arg(long = "config", env = "CONFIG_FILE", value_name = "PATH")]
    pub config_file: Option<PathBuf>,

    /// How many Rancher targets are refreshed at the same time (default 4).
    #[arg(long, env = "MAX_CONCURRENT_TARGETS", value_name = "N")]
    pub max_concurrent_targets: Option<String>,

    /// Kubernetes target: comma-separated namespaces to write the pull Secret into, as names or globs (apps,
    /// team-*, * for all). Setting it (or KUBERNETES_NAMESPACE_SELECTOR) selects the Kubernetes target; with
    /// CATTLE_URL also set, both targets run.
    #[arg(long, env = "KUBERNETES_NAMESPACES", value_name = "GLOBS")]
    pub kubernetes_namespaces: Option<String>,

    /// Kubernetes target: only namespaces with these labels (a label selector, as kubectl get -l takes it).
    #[arg(long, env = "KUBERNETES_NAMESPACE_SELECTOR", value_name = "SELECTOR")]
    pub kubernetes_namespace_selector: Option<String>,

    /// Kubernetes target: comma-separated namespaces (names or globs) never written to, e.g. kube-*.
    #[arg(long, env = "KUBERNETES_EXCLUDE_NAMESPACES", value_name = "GLOBS")]
    pub kubernetes_exclude_namespaces: Option<String>,

    /// Kubernetes target: name of the Secret written in each namespace (default ecr-credentials).
    #[arg(long, env = "KUBERNETES_SECRET_NAME", value_name = "NAME")]
    pub kubernetes_secret_name: Option<String>,

    /// Kubernetes target: comma-separated ServiceAccounts (e.g. default, or * for all) whose imagePullSecrets
    /// get the Secret, keeping what they already list.
    #[arg(long, env = "KUBERNETES_SERVICE_ACCOUNTS", value_name = "NAMES")]
    pub kubernetes_service_accounts: Option<String>,

    /// Kubernetes target: the kubeconfig context to use (default: its current context).
    #[arg(long, env = "KUBERNETES_CONTEXT", value_name = "NAME")]
    pub kubernetes_context: Option<String>,

    /// Kubernetes target: take over an existing Secret of that name that this daemon did not write: true or
    /// false (default false: such a Secret is left alone, with an error naming it).
    #[arg(long, env = "KUBERNETES_ADOPT_SECRETS", value_name = "BOOL")]
    pub kubernetes_adopt_secrets: Option<String>,

    /// Rancher 2.12+ project-scoped secrets: comma-separated project ids (c-xxxxx:p-xxxxx); the Secret goes into
    /// each project's backing namespace on Rancher's local cluster (KUBECONFIG pointing at
    /// https://<rancher>/k8s/clusters/local) and Rancher copies it into the project's namespaces.
    #[arg(long, env = "RANCHER_PROJECT_SECRETS", value_name = "IDS")]
    pub rancher_project_secrets: Option<String>,

    /// Kubernetes target: kubeconfig file(s), colon-separated. Unset: the pod's ServiceAccount inside a
    /// cluster, else ~/.kube/config.
    #[arg(long, env = "KUBECONFIG", value_name = "PATHS")]
    pub kubeconfig: Option<String>,

    /// Refresh once and exit: 0 when every ECR registry was brought up to date in Rancher, 1 otherwise.
    #[arg(long)]
    pub once: bool,

    /// Print the resolved plan (sources, registry hosts, targets) without secrets and exit, calling nothing:
    /// 0 when the configuration is valid, 2 when not.
    #[arg(long)]
    pub check_config: bool,

    /// Get tokens from ECR and read Rancher, but change nothing: print what a refresh would write, then exit
    /// (0 when everything could be checked, 1 otherwise).
    #[arg(long)]
    pub dry_run: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Ask the running daemon's /readyz (at LISTEN_ADDRESS:LISTEN_PORT, localhost when it listens on all
    /// interfaces) and exit 0 when it is ready, 1 when not. For Docker HEALTHCHECK in images without curl.
    Healthcheck,
}

/// A checked configuration. Built only by [`Config::from_cli`].
#[derive(Debug)]
pub struct Config {
    /// Where tokens come from and which Rancher targets they go to.
    pub plan: Plan,
    /// Target and source settings of the environment that the configuration file replaced.
    pub ignored: Vec<&'static str>,
    pub listen: SocketAddr,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
    pub schedule: Schedule,
    pub backoff: Backoff,
    /// How many targets are refreshed at the same time.
    pub concurrency: usize,
    /// One refresh, then exit (also set by `dry_run`).
    pub once: bool,
    /// Read from AWS and Rancher, write nothing, print what would change.
    pub dry_run: bool,
    /// Print the plan and exit without calling anything.
    pub check_config: bool,
    /// Secrets given as command-line flags (visible to every local user); warned about at start.
    pub secret_flags: Vec<&'static str>,
    /// The host forms of each ECR registry written where entries are created.
    pub host_forms: Vec<HostForm>,
}

/// `standard,fips` → the forms, in order, each once.
pub fn parse_host_forms(value: &str) -> Result<Vec<HostForm>, ConfigError> {
    let mut forms = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let form = HostForm::parse(name).ok_or_else(|| {
            invalid(
                "ECR_HOST_FORMS",
                format!("'{name}' is not a host form; use standard, dualstack, fips or dualstack-fips"),
            )
        })?;
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    if forms.is_empty() {
        return Err(invalid("ECR_HOST_FORMS", "names no host form; use standard, dualstack, fips or dualstack-fips"));
    }
    Ok(forms)
}

/// The flags that carry a secret, with their long names.
const SECRET_FLAGS: [(&str, &str); 3] = [
    ("rancher_token", "--rancher-token"),
    ("cattle_secret_key", "--cattle-secret-key"),
    ("aws_role_external_id", "--aws-role-external-id"),
];

/// The secret-carrying flags that were given on the command line (not through their environment variables).
pub fn secret_flags_given(matches: &clap::ArgMatches) -> Vec<&'static str> {
    SECRET_FLAGS
        .iter()
        .filter(|(id, _)| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .map(|(_, flag)| *flag)
        .collect()
}

fn parse_environments(value: &str) -> Result<Option<Environments>, ConfigError> {
    let names: Vec<String> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect();
    if names.is_empty() {
        return Ok(None);
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        if names.len() > 1 {
            return Err(invalid("RANCHER_ENVIRONMENTS", "'all' cannot be combined with names"));
        }
        return Ok(Some(Environments::All));
    }
    Ok(Some(Environments::Named(names)))
}

#[derive(Debug)]
pub struct AwsSettings {
    /// From AWS_REGION; `None` leaves the region to AWS_DEFAULT_REGION or the profile (see `ecr::resolve_region`).
    pub region: Option<String>,
    pub registry_ids: Vec<String>,
    pub assume_role: Option<AssumeRole>,
}

#[derive(Debug, Clone)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<Secret>,
    pub session_name: String,
    /// How long the role's temporary credentials last (STS DurationSeconds); the SDK's default when `None`.
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One configuration problem: the setting (environment variable) and what is wrong with its value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

pub(crate) fn invalid(setting: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.into(), problem: problem.into() }
}

pub const DEFAULT_LISTEN_PORT: u16 = 8080;
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(6 * 3600);
pub(crate) const DEFAULT_SESSION_NAME: &str = "rancher-ecr-credentials";
pub const DEFAULT_CONCURRENCY: usize = 4;

impl Config {
    /// Checks every setting. `web_identity` tells whether AWS_WEB_IDENTITY_TOKEN_FILE is set, in which case
    /// AWS_ROLE_ARN belongs to the web identity provider of the default chain and is not assumed again.
    pub fn from_cli(cli: Cli, web_identity: bool) -> Result<Config, ConfigError> {
        let listen = listen_address(&cli)?;
        let log_level = match non_empty(cli.log_level.clone()) {
            Some(value) => parse_log_level(&value)?,
            None => tracing::Level::INFO,
        };
        let log_format = match non_empty(cli.log_format.clone()).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid("LOG_FORMAT", format!("'{other}' is not a log format; use text or json")));
            }
        };
        let refresh_interval = match non_empty(cli.refresh_interval.clone()) {
            Some(value) => parse_duration("REFRESH_INTERVAL", &value)?,
            None => DEFAULT_REFRESH_INTERVAL,
        };
        let schedule =
            Schedule::with_max_interval(refresh_interval).map_err(|problem| invalid("REFRESH_INTERVAL", problem))?;
        let backoff = backoff(cli.retry_delay.clone(), cli.retry_max_delay.clone())?;
        let timeout = match non_empty(cli.rancher_timeout.clone()) {
            Some(value) => bounded("RANCHER_TIMEOUT", &value, MIN_TIMEOUT, MAX_TIMEOUT)?,
            None => DEFAULT_RANCHER_TIMEOUT,
        };
        let concurrency = match non_empty(cli.max_concurrent_targets.clone()) {
            Some(value) => match value.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return Err(invalid("MAX_CONCURRENT_TARGETS", format!("'{value}' is not a number from 1 to 64")));
                }
            },
            None => DEFAULT_CONCURRENCY,
        };
        if cli.check_config && cli.once {
            return Err(invalid("--check-config", "cannot be combined with --once; it calls nothing"));
        }
        let host_forms = match non_empty(cli.ecr_host_forms.clone()) {
            Some(value) => parse_host_forms(&value)?,
            None => vec![HostForm::Standard],
        };
        let (once, dry_run, check_config) = (cli.once || cli.dry_run, cli.dry_run, cli.check_config);

        let (plan, ignored) = match cli.config_file.clone().filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => {
                let ignored = cli.target_and_source_settings();
                (crate::plan::from_file(&path, web_identity, timeout)?, ignored)
            }
            None => (env_plan(cli, web_identity, timeout)?, Vec::new()),
        };
        Ok(Config {
            plan,
            ignored,
            listen,
            log_level,
            log_format,
            schedule,
            backoff,
            concurrency,
            once,
            dry_run,
            check_config,
            secret_flags: Vec::new(),
            host_forms,
        })
    }
}

impl Cli {
    /// The target and source settings given in the environment or as flags, which a configuration file replaces.
    fn target_and_source_settings(&self) -> Vec<&'static str> {
        let given = [
            ("CATTLE_URL", self.cattle_url.is_some()),
            ("RANCHER_API", self.rancher_api.is_some()),
            ("RANCHER_PROJECTS", self.rancher_projects.is_some()),
            ("RANCHER_CLUSTER", self.rancher_cluster.is_some()),
            ("RANCHER_ENVIRONMENTS", self.rancher_environments.is_some()),
            ("RANCHER_TOKEN", self.rancher_token.is_some() || self.rancher_token_file.is_some()),
            ("CATTLE_ACCESS_KEY", self.cattle_access_key.is_some() || self.cattle_access_key_file.is_some()),
            ("CATTLE_SECRET_KEY", self.cattle_secret_key.is_some() || self.cattle_secret_key_file.is_some()),
            ("CATTLE_CA_BUNDLE", self.cattle_ca_bundle.is_some()),
            ("CATTLE_INSECURE_SKIP_VERIFY", self.cattle_insecure_skip_verify.is_some()),
            ("AWS_ECR_REGISTRY_IDS", self.aws_ecr_registry_ids.is_some()),
            ("AWS_ROLE_EXTERNAL_ID", self.aws_role_external_id.is_some() || self.aws_role_external_id_file.is_some()),
            ("AWS_ROLE_SESSION_NAME", self.aws_role_session_name.is_some()),
            ("AUTO_CREATE", self.auto_create.is_some()),
            ("REGISTRY_ADDRESS_MAP", self.registry_address_map.is_some()),
            ("ECR_PUBLIC", self.ecr_public.is_some()),
            ("KUBERNETES_NAMESPACES", self.kubernetes_namespaces.is_some()),
            ("KUBERNETES_NAMESPACE_SELECTOR", self.kubernetes_namespace_selector.is_some()),
            ("KUBERNETES_EXCLUDE_NAMESPACES", self.kubernetes_exclude_namespaces.is_some()),
            ("KUBERNETES_SECRET_NAME", self.kubernetes_secret_name.is_some()),
            ("KUBERNETES_SERVICE_ACCOUNTS", self.kubernetes_service_accounts.is_some()),
            ("KUBERNETES_CONTEXT", self.kubernetes_context.is_some()),
            ("KUBERNETES_ADOPT_SECRETS", self.kubernetes_adopt_secrets.is_some()),
            ("RANCHER_PROJECT_SECRETS", self.rancher_project_secrets.is_some()),
        ];
        given.into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect()
    }
}

/// The plan of the environment-variable form: one source (the AWS settings) feeding one Rancher target
/// (CATTLE_URL), one Kubernetes target (KUBERNETES_NAMESPACES, KUBERNETES_NAMESPACE_SELECTOR or
/// RANCHER_PROJECT_SECRETS), or both.
fn env_plan(cli: Cli, web_identity: bool, timeout: Duration) -> Result<Plan, ConfigError> {
    let kube = RawKube {
        kubeconfig: cli.kubeconfig,
        context: cli.kubernetes_context,
        namespaces: cli.kubernetes_namespaces,
        selector: cli.kubernetes_namespace_selector,
        exclude: cli.kubernetes_exclude_namespaces,
        secret_name: cli.kubernetes_secret_name,
        service_accounts: cli.kubernetes_service_accounts,
        adopt: cli.kubernetes_adopt_secrets,
        projects: cli.rancher_project_secrets,
    };
    let kube_selected =
        [&kube.namespaces, &kube.selector, &kube.projects].iter().any(|v| non_empty((*v).clone()).is_some());
    let rancher_selected = non_empty(cli.cattle_url.clone()).is_some() || !kube_selected;
    if !kube_selected {
        let given = [
            ("KUBERNETES_EXCLUDE_NAMESPACES", &kube.exclude),
            ("KUBERNETES_SECRET_NAME", &kube.secret_name),
            ("KUBERNETES_SERVICE_ACCOUNTS", &kube.service_accounts),
            ("KUBERNETES_CONTEXT", &kube.context),
            ("KUBERNETES_ADOPT_SECRETS", &kube.adopt),
        ];
        if let Some((name, _)) = given.iter().find(|(_, v)| non_empty((*v).clone()).is_some()) {
            return Err(invalid(
                "KUBERNETES_NAMESPACES",
                format!(
                    "not set, but {name} is; set KUBERNETES_NAMESPACES, KUBERNETES_NAMESPACE_SELECTOR or RANCHER_PROJECT_SECRETS to select the Kubernetes target"
                ),
            ));
        }
    }
    let target = RawTarget {
        url: cli.cattle_url,
        api: cli.rancher_api,
        projects: cli.rancher_projects,
        cluster: cli.rancher_cluster,
        environments: cli.rancher_environments,
        token: cli.rancher_token,
        token_file: cli.rancher_token_file,
        access_key: cli.cattle_access_key,
        access_key_file: cli.cattle_access_key_file,
        secret_key: cli.cattle_secret_key,
        secret_key_file: cli.cattle_secret_key_file,
        ca_bundle: cli.cattle_ca_bundle,
        insecure_skip_verify: cli.cattle_insecure_skip_verify,
        auto_create: cli.auto_create,
    };
    let source = RawSource {
        region: cli.aws_region,
        registry_ids: cli.aws_ecr_registry_ids,
        role_arn: cli.aws_role_arn,
        external_id: secret_setting(
            "AWS_ROLE_EXTERNAL_ID",
            cli.aws_role_external_id,
            "AWS_ROLE_EXTERNAL_ID_FILE",
            cli.aws_role_external_id_file,
        )?,
        session_name: cli.aws_role_session_name,
        address_map: cli.registry_address_map,
    };
    let public = match non_empty(cli.ecr_public) {
        Some(value) => parse_bool("ECR_PUBLIC", &value)?,
        None => false,
    };
    let (aws, addresses) = source_settings(source, web_identity)?;
    let mut sources = vec![SourceSpec { name: "default".into(), aws, endpoint: None, addresses, public: false }];
    if public {
        // The same credentials, asking ecr-public: its one registry, public.ecr.aws.
        let first = &sources[0].aws;
        let aws = AwsSettings {
            region: first.region.clone(),
            registry_ids: Vec::new(),
            assume_role: first.assume_role.clone(),
        };
        sources.push(SourceSpec { name: "public".into(), aws, endpoint: None, addresses: Vec::new(), public: true });
    }
    let all: Vec<usize> = (0..sources.len()).collect();
    let mut targets = Vec::new();
    if rancher_selected {
        let (rancher, auto_create) = target_settings(target, timeout)?;
        targets.push(TargetSpec { name: None, rancher, auto_create, sources: all.clone() });
    }
    let mut kube_targets = Vec::new();
    if kube_selected {
        let kubernetes = kubernetes_settings(kube, timeout)?;
        kube_targets.push(KubeTargetSpec { name: None, kubernetes, sources: all });
    }
    Ok(Plan { sources, targets, kube_targets })
}

/// The settings of one Kubernetes target as given, not yet checked. Errors name the environment variables.
#[derive(Debug, Default)]
pub(crate) struct RawKube {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespaces: Option<String>,
    pub selector: Option<String>,
    pub exclude: Option<String>,
    pub secret_name: Option<String>,
    pub service_accounts: Option<String>,
    pub adopt: Option<String>,
    pub projects: Option<String>,
}

/// A checked Kubernetes target: how to reach the API server, and what to write there.
#[derive(Debug)]
pub struct KubernetesSettings {
    pub connection: KubeConnection,
    pub target: crate::kubernetes::Settings,
}

/// How the daemon reaches a Kubernetes API server.
#[derive(Debug)]
pub enum KubeConnection {
    /// A kubeconfig (read and checked), with the context to use.
    Kubeconfig { kubeconfig: KubeconfigFile, files: String, context: String, server: String },
    /// Inside a pod: its ServiceAccount token and CA, and KUBERNETES_SERVICE_HOST.
    InCluster { server: String },
}

impl KubeConnection {
    /// The API server's URL, as the kubeconfig or the pod's environment gives it.
    pub fn server(&self) -> &str {
        match self {
            KubeConnection::Kubeconfig { server, .. } | KubeConnection::InCluster { server } => server,
        }
    }
}

/// A parsed kubeconfig. Its `Debug` hides the content: it holds tokens and keys.
pub struct KubeconfigFile(pub Box<kube::config::Kubeconfig>);

impl std::fmt::Debug for KubeconfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kubeconfig([redacted])")
    }
}

pub const DEFAULT_SECRET_NAME: &str = "ecr-credentials";

/// Checks one Kubernetes target's settings and reads its kubeconfig (no call is made).
pub(crate) fn kubernetes_settings(raw: RawKube, timeout: Duration) -> Result<KubernetesSettings, ConfigError> {
    use crate::kubernetes::{Mode, Selection, select};
    let names =
        select::parse_globs(&raw.namespaces.unwrap_or_default()).map_err(|p| invalid("KUBERNETES_NAMESPACES", p))?;
    let selector = non_empty(raw.selector);
    if let Some(selector) = &selector {
        select::check_selector(selector).map_err(|p| invalid("KUBERNETES_NAMESPACE_SELECTOR", p))?;
    }
    let exclude = select::parse_globs(&raw.exclude.unwrap_or_default())
        .map_err(|p| invalid("KUBERNETES_EXCLUDE_NAMESPACES", p))?;
    let projects = parse_project_list("RANCHER_PROJECT_SECRETS", raw.projects.as_deref().unwrap_or(""))?;
    let secret_name = non_empty(raw.secret_name).unwrap_or_else(|| DEFAULT_SECRET_NAME.to_string());
    if !select::is_dns_subdomain(&secret_name) {
        return Err(invalid(
            "KUBERNETES_SECRET_NAME",
            format!("'{secret_name}' is not a Secret name (lower-case letters, digits, - and .)"),
        ));
    }
    let mut service_accounts: Vec<String> = Vec::new();
    for name in raw.service_accounts.as_deref().unwrap_or("").split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name != "*" && !select::is_dns_subdomain(name) {
            return Err(invalid(
                "KUBERNETES_SERVICE_ACCOUNTS",
                format!("'{name}' is not a ServiceAccount name (or * for all)"),
            ));
        }
        if !service_accounts.iter().any(|known| known == name) {
            service_accounts.push(name.to_string());
        }
    }
    let adopt = match non_empty(raw.adopt) {
        Some(value) => parse_bool("KUBERNETES_ADOPT_SECRETS", &value)?,
        None => false,
    };
    let mode = match (names.is_empty() && selector.is_none(), projects.is_empty()) {
        (false, false) => {
            return Err(invalid(
                "RANCHER_PROJECT_SECRETS",
                "set together with KUBERNETES_NAMESPACES or KUBERNETES_NAMESPACE_SELECTOR; a target writes either to namespaces or to Rancher projects",
            ));
        }
        (true, true) => {
            return Err(invalid(
                "KUBERNETES_NAMESPACES",
                "not set; give namespaces (names or globs, * for all), KUBERNETES_NAMESPACE_SELECTOR or RANCHER_PROJECT_SECRETS",
            ));
        }
        (false, true) => Mode::Namespaces(Selection { names, selector, exclude }),
        (true, false) => {
            if !exclude.is_empty() {
                return Err(invalid(
                    "KUBERNETES_EXCLUDE_NAMESPACES",
                    "only for namespaces, not with RANCHER_PROJECT_SECRETS",
                ));
            }
            if !service_accounts.is_empty() {
                return Err(invalid(
                    "KUBERNETES_SERVICE_ACCOUNTS",
                    "only for namespaces, not with RANCHER_PROJECT_SECRETS (Rancher copies project-scoped secrets)",
                ));
            }
            Mode::Projects(projects)
        }
    };
    let connection = kube_connection(non_empty(raw.kubeconfig), non_empty(raw.context))?;
    let target = crate::kubernetes::Settings { mode, secret_name, service_accounts, adopt, timeout };
    Ok(KubernetesSettings { connection, target })
}

/// Project ids `c-xxxxx:p-xxxxx`, checked and without duplicates.
fn parse_project_list(setting: &'static str, value: &str) -> Result<Vec<String>, ConfigError> {
    parse_projects(value).map_err(|e| invalid(setting, e.problem))
}

/// Reads the kubeconfig (KUBECONFIG, else the pod's ServiceAccount, else ~/.kube/config) and checks the context.
fn kube_connection(files: Option<String>, context: Option<String>) -> Result<KubeConnection, ConfigError> {
    let files = match files {
        Some(files) => files,
        None => {
            if let (Some(host), Some(port)) =
                (env_value("KUBERNETES_SERVICE_HOST"), env_value("KUBERNETES_SERVICE_PORT"))
            {
                if context.is_some() {
                    return Err(invalid(
                        "KUBERNETES_CONTEXT",
                        "set, but KUBECONFIG is not: in a pod the daemon uses its ServiceAccount, which has no contexts",
                    ));
                }
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                return Ok(KubeConnection::InCluster { server: format!("https://{host}:{port}") });
            }
            let home = env_value("HOME").map(PathBuf::from);
            match home.map(|h| h.join(".kube").join("config")).filter(|p| p.exists()) {
                Some(path) => path.display().to_string(),
                None => {
                    return Err(invalid(
                        "KUBECONFIG",
                        "not set, not in a pod (no KUBERNETES_SERVICE_HOST), and there is no ~/.kube/config",
                    ));
                }
            }
        }
    };
    let mut merged: Option<kube::config::Kubeconfig> = None;
    for file in files.split(':').filter(|f| !f.is_empty()) {
        let config = kube::config::Kubeconfig::read_from(file).map_err(|e| match e {
            kube::config::KubeconfigError::ReadConfig(io, _) => {
                invalid("KUBECONFIG", format!("cannot read '{file}': {io}"))
            }
            // The parser's message may quote the file, which holds tokens: only say where.
            _ => {
                invalid("KUBECONFIG", format!("'{file}' is not a kubeconfig (YAML with clusters, contexts and users)"))
            }
        })?;
        merged = Some(match merged {
            None => config,
            Some(known) => known
                .merge(config)
                .map_err(|_| invalid("KUBECONFIG", format!("'{file}' cannot be merged with the files before it")))?,
        });
    }
    let kubeconfig = merged.ok_or_else(|| invalid("KUBECONFIG", "names no file"))?;
    let names: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
    let listed = if names.is_empty() { "none".to_string() } else { names.join(", ") };
    let chosen = match (&context, &kubeconfig.current_context) {
        (Some(context), _) => {
            if !names.contains(&context.as_str()) {
                return Err(invalid(
                    "KUBERNETES_CONTEXT",
                    format!("'{context}' is not a context of KUBECONFIG (contexts: {listed})"),
                ));
            }
            context.clone()
        }
        (None, Some(current)) if names.contains(&current.as_str()) => current.clone(),
        (None, Some(current)) => {
            return Err(invalid(
                "KUBECONFIG",
                format!(
                    "its current-context '{current}' is not one of its contexts ({listed}); set KUBERNETES_CONTEXT"
                ),
            ));
        }
        (None, None) => {
            return Err(invalid(
                "KUBECONFIG",
                format!("names no current-context; set KUBERNETES_CONTEXT (contexts: {listed})"),
            ));
        }
    };
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == chosen)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .filter(|s| url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http"))
        .ok_or_else(|| {
            invalid(
                "KUBECONFIG",
                format!("context '{chosen}' names cluster '{cluster_name}', which has no http(s) server URL"),
            )
        })?;
    Ok(KubeConnection::Kubeconfig { kubeconfig: KubeconfigFile(Box::new(kubeconfig)), files, context: chosen, server })
}

fn env_value(name: &str) -> Option<String> {
    non_empty(std::env::var(name).ok())
}

/// The settings of one Rancher target as given (environment, flags or a configuration file), not yet checked.
/// Errors name the environment variables; the configuration file translates them to its keys.
#[derive(Debug, Default)]
pub(crate) struct RawTarget {
    pub url: Option<String>,
    pub api: Option<String>,
    pub projects: Option<String>,
    pub cluster: Option<String>,
    pub environments: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub access_key: Option<String>,
    pub access_key_file: Option<PathBuf>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub ca_bundle: Option<PathBuf>,
    pub insecure_skip_verify: Option<String>,
    pub auto_create: Option<String>,
}

/// The settings of one source of ECR tokens as given, not yet checked.
#[derive(Debug, Default)]
pub(crate) struct RawSource {
    pub region: Option<String>,
    pub registry_ids: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<Secret>,
    pub session_name: Option<String>,
    pub address_map: Option<String>,
}

/// Checks one target's settings: the Rancher connection and AUTO_CREATE.
pub(crate) fn target_settings(raw: RawTarget, timeout: Duration) -> Result<(RancherSettings, bool), ConfigError> {
    let url = non_empty(raw.url).ok_or_else(|| {
        invalid("CATTLE_URL", "not set; give the Rancher API endpoint, e.g. http://rancher:8080/v2-beta")
    })?;
    let choice = match non_empty(raw.api).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("auto") => ApiChoice::Auto,
        Some("cattle") | Some("v1") | Some("v2-beta") | Some("1") => ApiChoice::Cattle,
        Some("v3") | Some("2") => ApiChoice::V3,
        Some(other) => {
            return Err(invalid("RANCHER_API", format!("'{other}' is not a Rancher API; use auto, cattle or v3")));
        }
    };
    let endpoint = Endpoint::parse(&url, choice).map_err(|e: EndpointError| invalid("CATTLE_URL", e.to_string()))?;
    let projects = parse_projects(raw.projects.as_deref().unwrap_or(""))?;
    let cluster = non_empty(raw.cluster);
    if let Some(cluster) = &cluster
        && !cluster.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid("RANCHER_CLUSTER", format!("'{cluster}' is not a cluster id (e.g. c-xxxxx or local)")));
    }
    let environments = parse_environments(raw.environments.as_deref().unwrap_or(""))?;
    match (&endpoint, &environments) {
        (_, None) => {}
        (Endpoint::Cattle(cattle), Some(_)) if cattle.project.is_none() => {}
        (Endpoint::Cattle(_), Some(_)) => {
            return Err(invalid(
                "RANCHER_ENVIRONMENTS",
                "CATTLE_URL already names one environment; give the API root (e.g. http://rancher:8080/v2-beta)",
            ));
        }
        (Endpoint::V3 { .. }, Some(_)) => {
            return Err(invalid("RANCHER_ENVIRONMENTS", "only for Rancher 1.x; CATTLE_URL is a Rancher 2 URL"));
        }
        (Endpoint::Unversioned { .. }, Some(_)) => {
            return Err(invalid(
                "RANCHER_ENVIRONMENTS",
                "needs a Rancher 1.x API URL to list environments (e.g. http://rancher:8080/v2-beta)",
            ));
        }
    }
    match &endpoint {
        Endpoint::Cattle(_) if !projects.is_empty() => {
            return Err(invalid("RANCHER_PROJECTS", "only for Rancher 2; CATTLE_URL is a Rancher 1.x URL"));
        }
        Endpoint::Cattle(_) if cluster.is_some() => {
            return Err(invalid("RANCHER_CLUSTER", "only for Rancher 2; CATTLE_URL is a Rancher 1.x URL"));
        }
        Endpoint::V3 { project: Some(_), .. } if !projects.is_empty() || cluster.is_some() => {
            return Err(invalid(
                if projects.is_empty() { "RANCHER_CLUSTER" } else { "RANCHER_PROJECTS" },
                "CATTLE_URL already names one project; give the /v3 root URL to cover several",
            ));
        }
        _ if !projects.is_empty() && cluster.is_some() => {
            return Err(invalid("RANCHER_CLUSTER", "set together with RANCHER_PROJECTS; use one or the other"));
        }
        _ => {}
    }

    let access_key =
        secret_setting("CATTLE_ACCESS_KEY", raw.access_key, "CATTLE_ACCESS_KEY_FILE", raw.access_key_file)?;
    let secret_key =
        secret_setting("CATTLE_SECRET_KEY", raw.secret_key, "CATTLE_SECRET_KEY_FILE", raw.secret_key_file)?;
    let token = secret_setting("RANCHER_TOKEN", raw.token, "RANCHER_TOKEN_FILE", raw.token_file)?;
    let auth = match (access_key, secret_key, token) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(invalid(
                "RANCHER_TOKEN",
                "set together with CATTLE_ACCESS_KEY/CATTLE_SECRET_KEY; use one or the other",
            ));
        }
        (None, None, Some(token)) => RancherAuth::Token(token),
        (Some(access_key), Some(secret_key), None) => RancherAuth::Keys(BasicCredentials { access_key, secret_key }),
        (None, None, None) => RancherAuth::None,
        (Some(_), None, None) => {
            return Err(invalid("CATTLE_SECRET_KEY", "not set, but CATTLE_ACCESS_KEY is; set both or neither"));
        }
        (None, Some(_), None) => {
            return Err(invalid("CATTLE_ACCESS_KEY", "not set, but CATTLE_SECRET_KEY is; set both or neither"));
        }
    };

    let ca_bundle = match raw.ca_bundle.filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => Some(read_ca_bundle(&path)?),
        None => None,
    };
    let insecure_skip_verify = match non_empty(raw.insecure_skip_verify) {
        Some(value) => parse_bool("CATTLE_INSECURE_SKIP_VERIFY", &value)?,
        None => false,
    };
    let tls = TlsSettings { ca_bundle, insecure_skip_verify };

    let auto_create = match non_empty(raw.auto_create) {
        Some(value) => parse_bool("AUTO_CREATE", &value)?,
        None => false,
    };

    Ok((RancherSettings { endpoint, tls, timeout, auth, projects, cluster, environments }, auto_create))
}

/// Checks one source's settings. `web_identity`: AWS_ROLE_ARN belongs to the web identity provider.
pub(crate) fn source_settings(
    raw: RawSource,
    web_identity: bool,
) -> Result<(AwsSettings, Vec<(String, String)>), ConfigError> {
    let region = non_empty(raw.region).map(|r| parse_region("AWS_REGION", &r)).transpose()?;
    let registry_ids = parse_registry_ids(raw.registry_ids.as_deref().unwrap_or(""))?;

    let session_name = match non_empty(raw.session_name) {
        Some(name) => parse_session_name(&name)?,
        None => DEFAULT_SESSION_NAME.to_string(),
    };
    let external_id = raw.external_id;
    let assume_role = match non_empty(raw.role_arn) {
        Some(arn) => {
            parse_role_arn(&arn)?;
            if web_identity {
                if external_id.is_some() {
                    return Err(invalid(
                        "AWS_ROLE_EXTERNAL_ID",
                        "cannot be used with AWS_WEB_IDENTITY_TOKEN_FILE: AWS_ROLE_ARN is then the web identity role",
                    ));
                }
                None
            } else {
                Some(AssumeRole { role_arn: arn, external_id, session_name, duration: None })
            }
        }
        None if external_id.is_some() => {
            return Err(invalid(
                "AWS_ROLE_EXTERNAL_ID",
                "set, but AWS_ROLE_ARN is not; the ExternalId belongs to a role",
            ));
        }
        None => None,
    };

    let addresses = parse_address_map("REGISTRY_ADDRESS_MAP", raw.address_map.as_deref().unwrap_or(""))?;
    Ok((AwsSettings { region, registry_ids, assume_role }, addresses))
}

/// The address of the health endpoint, from LISTEN_ADDRESS and LISTEN_PORT.
pub fn listen_address(cli: &Cli) -> Result<SocketAddr, ConfigError> {
    let port = match non_empty(cli.listen_port.clone()) {
        Some(value) => parse_port(&value)?,
        None => DEFAULT_LISTEN_PORT,
    };
    let ip: IpAddr = match non_empty(cli.listen_address.clone()) {
        Some(value) => value.parse().map_err(|_| {
            invalid("LISTEN_ADDRESS", format!("'{value}' is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"))
        })?,
        None => IpAddr::from([0, 0, 0, 0]),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Treats an empty or all-blank value as unset: templates often render unanswered questions as "".
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A secret given either directly or as a file to read (`*_FILE`), never both.
pub(crate) fn secret_setting(
    name: &'static str,
    value: Option<String>,
    file_name: &'static str,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    let value = non_empty(value);
    let file = file.filter(|path| !path.as_os_str().is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(invalid(file_name, format!("set together with {name}; use one of the two"))),
        (Some(value), None) => Ok(Some(Secret::fixed(name, value))),
        (None, Some(path)) => {
            let text = crate::secret::read_file(&path).map_err(|problem| invalid(file_name, problem))?;
            Ok(Some(Secret::from_file(file_name, &path, text)))
        }
        (None, None) => Ok(None),
    }
}

pub(crate) fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| invalid("CATTLE_CA_BUNDLE", format!("cannot read '{shown}': {e}")))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(pem),
        _ => Err(invalid("CATTLE_CA_BUNDLE", format!("'{shown}' holds no PEM certificate"))),
    }
}

/// Accepts what Go's strconv.ParseBool accepted, which the predecessor used, plus yes/no and on/off.
pub fn parse_bool(setting: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(invalid(setting, format!("'{value}' is not a boolean; use true or false"))),
    }
}

fn parse_port(value: &str) -> Result<u16, ConfigError> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(invalid("LISTEN_PORT", format!("'{value}' is not a port number (1-65535)"))),
    }
}

fn parse_log_level(value: &str) -> Result<tracing::Level, ConfigError> {
    use tracing::Level;
    match value.to_ascii_lowercase().as_str() {
        "trace" => Ok(Level::TRACE),
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" | "warning" => Ok(Level::WARN),
        // The predecessor used logrus, whose two most severe levels have no counterpart here.
        "error" | "fatal" | "panic" => Ok(Level::ERROR),
        _ => Err(invalid("LOG_LEVEL", format!("'{value}' is not a log level; use error, warn, info, debug or trace"))),
    }
}

/// A duration such as `6h`, `90m`, `1h30m` or `3600s`; a bare number is seconds.
pub const DEFAULT_RANCHER_TIMEOUT: Duration = Duration::from_secs(30);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// A duration setting that must lie between `min` and `max`.
pub(crate) fn bounded(
    setting: &'static str,
    value: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let duration = parse_duration(setting, value)?;
    if duration < min || duration > max {
        let (min, max) = (humantime::format_duration(min), humantime::format_duration(max));
        return Err(invalid(setting, format!("'{value}' is out of range; use between {min} and {max}")));
    }
    Ok(duration)
}

fn backoff(delay: Option<String>, max_delay: Option<String>) -> Result<Backoff, ConfigError> {
    let defaults = Backoff::default();
    let initial = match non_empty(delay) {
        Some(value) => bounded("RETRY_DELAY", &value, MIN_RETRY_DELAY, MAX_RETRY_DELAY)?,
        None => defaults.initial,
    };
    let max = match non_empty(max_delay) {
        Some(value) => bounded("RETRY_MAX_DELAY", &value, MIN_RETRY_DELAY, MAX_RETRY_DELAY)?,
        None => defaults.max.max(initial),
    };
    if max < initial {
        return Err(invalid("RETRY_MAX_DELAY", "is shorter than RETRY_DELAY".to_string()));
    }
    Ok(Backoff { initial, max, ..defaults })
}

pub fn parse_duration(setting: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let problem = || invalid(setting, format!("'{value}' is not a duration; use e.g. 6h, 90m or 3600s"));
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(value).map_err(|_| problem())
}

pub(crate) fn parse_region(setting: &'static str, value: &str) -> Result<String, ConfigError> {
    let valid = value.len() <= 32
        && value.contains('-')
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(value.to_string())
    } else {
        Err(invalid(setting, format!("'{value}' is not an AWS region name (e.g. us-east-1)")))
    }
}

pub(crate) fn parse_projects(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut projects: Vec<String> = Vec::new();
    for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if !is_project_id(id) {
            return Err(invalid("RANCHER_PROJECTS", format!("'{id}' is not a project id (c-xxxxx:p-xxxxx)")));
        }
        if !projects.iter().any(|known| known == id) {
            projects.push(id.to_string());
        }
    }
    Ok(projects)
}

/// `ECR_HOST=ADDRESS,…`: the address Rancher stores for an ECR registry, when it is not the ECR host itself.
pub(crate) fn parse_address_map(setting: &'static str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut map: Vec<(String, String)> = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((ecr_host, address)) = pair.split_once('=') else {
            return Err(invalid(setting, format!("'{pair}' is not ECR_HOST=ADDRESS")));
        };
        map.push(address_override(setting, ecr_host, address)?);
    }
    Ok(map)
}

/// One checked override: both sides normalised as registry addresses are compared.
pub(crate) fn address_override(
    setting: &'static str,
    ecr_host: &str,
    address: &str,
) -> Result<(String, String), ConfigError> {
    let host = crate::address::normalize(ecr_host.trim()).filter(|h| h.contains(".dkr.ecr.")).ok_or_else(|| {
        invalid(setting, format!("'{ecr_host}' is not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)"))
    })?;
    let alias = crate::address::normalize(address.trim())
        .ok_or_else(|| invalid(setting, format!("'{address}' is not a registry address (host[:port])")))?;
    Ok((host, alias))
}

pub(crate) fn parse_registry_ids(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut ids: Vec<String> = Vec::new();
    for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("AWS_ECR_REGISTRY_IDS", format!("'{id}' is not a 12-digit AWS account id")));
        }
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// `arn:<partition>:iam::<12-digit account>:role/<path and name>`.
pub(crate) fn parse_role_arn(value: &str) -> Result<(), ConfigError> {
    let problem =
        || invalid("AWS_ROLE_ARN", format!("'{value}' is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"));
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err(problem());
    };
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let role_ok = resource.strip_prefix("role/").is_some_and(|name| !name.is_empty());
    if arn == "arn" && partition.starts_with("aws") && service == "iam" && region.is_empty() && account_ok && role_ok {
        Ok(())
    } else {
        Err(problem())
    }
}

/// STS allows 2-64 characters of `[\w+=,.@-]`.
pub(crate) fn parse_session_name(value: &str) -> Result<String, ConfigError> {
    let valid =
        (2..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if valid {
        Ok(value.to_string())
    } else {
        Err(invalid(
            "AWS_ROLE_SESSION_NAME",
            format!("'{value}' is not a valid session name (2-64 of letters, digits and _+=,.@-)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["rancher-ecr-credentials"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("test arguments parse")
    }

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_cli(cli(args), false)
    }

    const URL: &str = "--cattle-url=http://rancher:8080/v1";

    #[test]
    fn kubernetes_settings_select_a_second_target_beside_rancher() {
        let file = std::env::temp_dir().join(format!("recs-kubeconfig-{}", std::process::id()));
        std::fs::write(
            &file,
            "clusters: [{name: c, cluster: {server: 'https://k8s:6443'}}]\nusers: [{name: u, user: {token: t0k3n}}]\ncontexts: [{name: main, context: {cluster: c, user: u}}, {name: other, context: {cluster: c, user: u}}]\ncurrent-context: main\n",
        )
        .unwrap();
        let kubeconfig = format!("--kubeconfig={}", file.display());
        let both = config(&[URL, "--kubernetes-namespaces=apps,team-*", &kubeconfig]).unwrap();
        assert_eq!((both.plan.targets.len(), both.plan.kube_targets.len()), (1, 1));
        let kube = &both.plan.kube_targets[0].kubernetes;
        assert_eq!(kube.connection.server(), "https://k8s:6443");
        assert_eq!(kube.target.secret_name, "ecr-credentials");
        assert!(!format!("{both:?}").contains("t0k3n"), "the kubeconfig's token stays out of Debug output");

        let only = config(&["--rancher-project-secrets=c-a:p-b", &kubeconfig, "--kubernetes-context=other"]).unwrap();
        assert_eq!((only.plan.targets.len(), only.plan.kube_targets.len()), (0, 1));
        let crate::kubernetes::Mode::Projects(projects) = &only.plan.kube_targets[0].kubernetes.target.mode else {
            panic!("project mode expected")
        };
        assert_eq!(projects, &["c-a:p-b"]);

        let stray = config(&[URL, "--kubernetes-secret-name=x", &kubeconfig]).unwrap_err();
        assert_eq!(stray.setting, "KUBERNETES_NAMESPACES");
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn minimal_settings_give_the_predecessors_defaults() {
        let config = config(&[URL]).unwrap();
        assert!(!config.plan.targets[0].auto_create);
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.log_level, tracing::Level::INFO);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.schedule.max_interval, Duration::from_secs(6 * 3600));
        assert!(matches!(config.plan.targets[0].rancher.auth, RancherAuth::None));
        assert!(config.plan.sources[0].aws.registry_ids.is_empty());
        assert!(config.plan.sources[0].aws.assume_role.is_none());
    }

    #[test]
    fn missing_cattle_url_names_the_variable() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_URL");
        assert!(err.problem.contains("not set"), "{err}");
    }

    #[test]
    fn malformed_cattle_url_names_the_variable() {
        for bad in ["rancher:8080", "ftp://rancher/v1", "http://", "not a url", "http://user:pw@rancher/v1"] {
            let err = config(&[&format!("--cattle-url={bad}")]).unwrap_err();
            assert_eq!(err.setting, "CATTLE_URL", "{bad}: {err}");
        }
    }

    #[test]
    fn booleans_accept_what_go_accepted_and_reject_the_rest() {
        for (text, value) in
            [("true", true), ("TRUE", true), ("1", true), ("t", true), ("false", false), ("0", false), ("F", false)]
        {
            assert_eq!(parse_bool("AUTO_CREATE", text), Ok(value), "{text}");
        }
        let err = config(&[URL, "--auto-create=maybe"]).unwrap_err();
        assert_eq!(err.to_string(), "AUTO_CREATE: 'maybe' is not a boolean; use true or false");
    }

    #[test]
    fn an_empty_auto_create_from_a_template_means_false() {
        assert!(!config(&[URL, "--auto-create="]).unwrap().plan.targets[0].auto_create);
    }

    #[test]
    fn listen_port_must_be_a_port() {
        for bad in ["0", "65536", "http", "-1"] {
            let err = config(&[URL, &format!("--listen-port={bad}")]).unwrap_err();
            assert_eq!(err.setting, "LISTEN_PORT", "{bad}");
        }
        assert_eq!(config(&[URL, "--listen-port=9090"]).unwrap().listen.port(), 9090);
    }

    #[test]
    fn log_levels_include_the_logrus_names() {
        assert_eq!(config(&[URL, "--log-level=WARNING"]).unwrap().log_level, tracing::Level::WARN);
        assert_eq!(config(&[URL, "--log-level=Debug"]).unwrap().log_level, tracing::Level::DEBUG);
        assert_eq!(config(&[URL, "--log-level=verbose"]).unwrap_err().setting, "LOG_LEVEL");
        assert_eq!(config(&[URL, "--log-format=xml"]).unwrap_err().setting, "LOG_FORMAT");
        assert_eq!(config(&[URL, "--log-format=JSON"]).unwrap().log_format, LogFormat::Json);
    }

    #[test]
    fn registry_ids_are_twelve_digit_accounts() {
        let config = config(&[URL, "--aws-ecr-registry-ids= 111122223333, 444455556666,111122223333,"]).unwrap();
        assert_eq!(config.plan.sources[0].aws.registry_ids, vec!["111122223333", "444455556666"]);
        for bad in ["12345", "11112222333a", "111122223333;444455556666"] {
            let err = super::parse_registry_ids(bad).unwrap_err();
            assert_eq!(err.setting, "AWS_ECR_REGISTRY_IDS", "{bad}");
        }
    }

    #[test]
    fn region_must_look_like_a_region() {
        assert_eq!(
            config(&[URL, "--aws-region=eu-west-1"]).unwrap().plan.sources[0].aws.region.as_deref(),
            Some("eu-west-1")
        );
        for bad in ["EU-WEST-1", "eu west 1", "useast1", "-x"] {
            assert_eq!(config(&[URL, &format!("--aws-region={bad}")]).unwrap_err().setting, "AWS_REGION", "{bad}");
        }
    }

    #[test]
    fn role_arn_is_checked_and_assumed_unless_web_identity_owns_it() {
        let arn = "--aws-role-arn=arn:aws:iam::111122223333:role/ecr-reader";
        let assume = config(&[URL, arn]).unwrap().plan.sources.remove(0).aws.assume_role.unwrap();
        assert_eq!(assume.role_arn, "arn:aws:iam::111122223333:role/ecr-reader");
        assert_eq!(assume.session_name, "rancher-ecr-credentials");

        let web = Config::from_cli(cli(&[URL, arn]), true).unwrap();
        assert!(web.plan.sources[0].aws.assume_role.is_none());

        for bad in ["arn:aws:iam::1111:role/x", "arn:aws:s3:::bucket", "role/x", "arn:aws:iam::111122223333:user/x"] {
            let err = config(&[URL, &format!("--aws-role-arn={bad}")]).unwrap_err();
            assert_eq!(err.setting, "AWS_ROLE_ARN", "{bad}");
        }
        assert_eq!(config(&[URL, "--aws-role-external-id=x"]).unwrap_err().setting, "AWS_ROLE_EXTERNAL_ID");
        assert_eq!(config(&[URL, arn, "--aws-role-session-name=a b"]).unwrap_err().setting, "AWS_ROLE_SESSION_NAME");
    }

    #[test]
    fn keys_come_in_pairs_and_from_files() {
        let err = config(&[URL, "--cattle-access-key=ak"]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_SECRET_KEY");

        let dir = std::env::temp_dir().join(format!("recr-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let file_arg = format!("--cattle-secret-key-file={}", file.display());
        let config_ok = config(&[URL, "--cattle-access-key=ak", &file_arg]).unwrap();
        let RancherAuth::Keys(creds) = &config_ok.plan.targets[0].rancher.auth else { panic!("keys expected") };
        assert_eq!(creds.access_key.expose(), "ak");
        assert_eq!(creds.secret_key.expose(), "s3cr3t");

        let both = config(&[URL, "--cattle-access-key=ak", "--cattle-secret-key=x", &file_arg]).unwrap_err();
        assert_eq!(both.setting, "CATTLE_SECRET_KEY_FILE");
        let missing = config(&[URL, "--cattle-access-key=ak", "--cattle-secret-key-file=/nonexistent/x"]).unwrap_err();
        assert_eq!(missing.setting, "CATTLE_SECRET_KEY_FILE");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_ca_bundle_must_hold_a_certificate() {
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ca.pem");
        let config_ok = config(&[URL, &format!("--cattle-ca-bundle={pem}")]).unwrap();
        assert!(config_ok.plan.targets[0].rancher.tls.ca_bundle.is_some());
        let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let err = config(&[URL, &format!("--cattle-ca-bundle={not_pem}")]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_CA_BUNDLE");
        assert!(err.problem.contains("no PEM certificate"), "{err}");
        let err = config(&[URL, "--cattle-ca-bundle=/nonexistent/ca.pem"]).unwrap_err();
        assert_eq!(err.setting, "CATTLE_CA_BUNDLE");
        assert_eq!(
            config(&[URL, "--cattle-insecure-skip-verify=perhaps"]).unwrap_err().setting,
            "CATTLE_INSECURE_SKIP_VERIFY"
        );
    }

    #[test]
    fn rancher_2_settings_are_checked_against_the_url() {
        let v3 = "--cattle-url=https://rancher.example.com/v3";
        let config_ok = config(&[v3, "--rancher-projects=c-a:p-b, local:p-c"]).unwrap();
        assert_eq!(config_ok.plan.targets[0].rancher.projects, vec!["c-a:p-b", "local:p-c"]);
        assert_eq!(config(&[v3, "--rancher-projects=p-b"]).unwrap_err().setting, "RANCHER_PROJECTS");
        assert_eq!(config(&[URL, "--rancher-projects=c-a:p-b"]).unwrap_err().setting, "RANCHER_PROJECTS");
        assert_eq!(config(&[URL, "--rancher-cluster=c-a"]).unwrap_err().setting, "RANCHER_CLUSTER");
        let project_url = "--cattle-url=https://r/v3/projects/c-a:p-b";
        assert_eq!(config(&[project_url, "--rancher-cluster=c-a"]).unwrap_err().setting, "RANCHER_CLUSTER");
        assert_eq!(config(&[v3, "--rancher-cluster=C A"]).unwrap_err().setting, "RANCHER_CLUSTER");
        assert_eq!(config(&[v3, "--rancher-api=v4"]).unwrap_err().setting, "RANCHER_API");
        assert_eq!(config(&[v3, "--rancher-api=cattle"]).unwrap_err().setting, "CATTLE_URL");
        let token = config(&[v3, "--rancher-token=token-abcde:s3cr3t"]).unwrap();
        assert!(matches!(token.plan.targets[0].rancher.auth, RancherAuth::Token(_)));
        let both = config(&[v3, "--rancher-token=t:s", "--cattle-access-key=a", "--cattle-secret-key=b"]);
        assert_eq!(both.unwrap_err().setting, "RANCHER_TOKEN");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let config = config(&[URL, "--cattle-access-key=ak", "--cattle-secret-key=very-secret-value"]).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret-value"), "{debug}");
    }

    #[test]
    fn the_external_id_can_come_from_a_file() {
        let dir = std::env::temp_dir().join(format!("recs-external-id-{}", std::process::id()));
        std::fs::write(&dir, "from-a-file\n").unwrap();
        let file = format!("--aws-role-external-id-file={}", dir.display());
        let arn = "--aws-role-arn=arn:aws:iam::123456789012:role/reader";
        let config_ok = config(&[URL, arn, &file]).unwrap();
        let role = config_ok.plan.sources[0].aws.assume_role.as_ref().unwrap();
        assert_eq!(role.external_id.as_ref().unwrap().expose(), "from-a-file");
        let both = config(&[URL, arn, &file, "--aws-role-external-id=x"]).unwrap_err();
        assert_eq!(both.setting, "AWS_ROLE_EXTERNAL_ID_FILE");
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn retry_delays_and_the_rancher_timeout_are_checked() {
        let config_ok = config(&[URL, "--retry-delay=200ms", "--retry-max-delay=2s", "--rancher-timeout=1s"]).unwrap();
        assert_eq!(config_ok.backoff.initial, Duration::from_millis(200));
        assert_eq!(config_ok.backoff.max, Duration::from_secs(2));
        assert_eq!(config_ok.plan.targets[0].rancher.timeout, Duration::from_secs(1));
        let defaults = config(&[URL]).unwrap();
        assert_eq!(
            (defaults.backoff.initial, defaults.backoff.max),
            (Duration::from_secs(5), Duration::from_secs(300))
        );
        assert_eq!(defaults.plan.targets[0].rancher.timeout, Duration::from_secs(30));
        // A first delay above the default maximum raises the maximum with it.
        assert_eq!(config(&[URL, "--retry-delay=10m"]).unwrap().backoff.max, Duration::from_secs(600));
        assert_eq!(config(&[URL, "--retry-delay=10s", "--retry-max-delay=5s"]).unwrap_err().setting, "RETRY_MAX_DELAY");
        assert_eq!(config(&[URL, "--retry-delay=1ms"]).unwrap_err().setting, "RETRY_DELAY");
        assert_eq!(config(&[URL, "--rancher-timeout=2h"]).unwrap_err().setting, "RANCHER_TIMEOUT");
        assert_eq!(config(&[URL, "--rancher-timeout=fast"]).unwrap_err().setting, "RANCHER_TIMEOUT");
    }

    #[test]
    fn refresh_interval_accepts_human_durations() {
        assert_eq!(config(&[URL, "--refresh-interval=90m"]).unwrap().schedule.max_interval, Duration::from_secs(5400));
        assert_eq!(config(&[URL, "--refresh-interval=3600"]).unwrap().schedule.max_interval, Duration::from_secs(3600));
        assert_eq!(config(&[URL, "--refresh-interval=soon"]).unwrap_err().setting, "REFRESH_INTERVAL");
        assert_eq!(config(&[URL, "--refresh-interval=1s"]).unwrap_err().setting, "REFRESH_INTERVAL");
    }
}
