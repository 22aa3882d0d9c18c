//! The command line: the daemon's own flags (this [`Cli`]), and the flags of every target and source setting,
//! which the module that owns each setting declares ([`settings`]) and [`command`] adds. Every flag can also be
//! given as its environment variable.

use std::path::PathBuf;

use clap::{Arg, CommandFactory, Parser};

use crate::setting::{Kind, Setting};

/// The settings of targets and sources, by the API that owns them, in the order `--help` shows them.
const GROUPS: [(&str, &[&Setting]); 3] = [
    ("Rancher target", &crate::rancher::settings::SETTINGS),
    ("Token source (AWS)", &crate::ecr::settings::SETTINGS),
    ("Kubernetes target", &crate::kubernetes::settings::SETTINGS),
];

/// Every setting of targets and sources.
pub fn settings() -> impl Iterator<Item = &'static Setting> {
    GROUPS.into_iter().flat_map(|(_, settings)| settings.iter().copied())
}

/// The whole command line: [`Cli`] and a flag for each of [`settings`], under the heading of its API.
pub fn command() -> clap::Command {
    let args =
        GROUPS.into_iter().flat_map(|(heading, settings)| settings.iter().map(move |s| arg(s).help_heading(heading)));
    Cli::command().args(args)
}

fn arg(setting: &'static Setting) -> Arg {
    Arg::new(setting.var)
        .long(setting.flag)
        .env(setting.var)
        .value_name(setting.value_name)
        .help(setting.help)
        .hide_env_values(matches!(setting.kind, Kind::Secret | Kind::Hidden))
}

/// The secret-carrying flags that were given on the command line (not through their environment variables).
pub fn secret_flags_given(matches: &clap::ArgMatches) -> Vec<String> {
    settings()
        .filter(|s| s.kind == Kind::Secret)
        .filter(|s| matches.value_source(s.var) == Some(clap::parser::ValueSource::CommandLine))
        .map(|s| format!("--{}", s.flag))
        .collect()
}

/// Keeps Amazon ECR pull credentials fresh inside Rancher and Kubernetes.
///
/// Every flag can also be given as the environment variable shown with it; the variables are the ones the Go
/// rancher-ecr-credentials used, so existing deployments keep working.
#[derive(Debug, Parser)]
#[command(name = "rancher-ecr-credentials", version, about, long_about = None, max_term_width = 110)]
pub struct Cli {
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

    /// Time limit of each request to Rancher or Kubernetes, from connecting to the last byte of the answer
    /// (default 30s).
    #[arg(long, env = "RANCHER_TIMEOUT", value_name = "DURATION")]
    pub rancher_timeout: Option<String>,

    /// Which host forms of each ECR registry to write where entries are created (AUTO_CREATE, Kubernetes
    /// Secrets): a comma list of standard, dualstack, fips, dualstack-fips. Existing entries in any form are
    /// always refreshed.
    #[arg(long, env = "ECR_HOST_FORMS", value_name = "FORMS")]
    pub ecr_host_forms: Option<String>,

    /// A TOML file describing several sources (AWS accounts, roles, regions) and targets (Rancher environments
    /// or projects, Kubernetes clusters); replaces the CATTLE_*, RANCHER_*, KUBERNETES_* and AWS_ECR/AWS_ROLE
    /// settings. See the README.
    #[arg(long = "config", env = "CONFIG_FILE", value_name = "PATH")]
    pub config_file: Option<PathBuf>,

    /// How many targets are refreshed at the same time (default 4).
    #[arg(long, env = "MAX_CONCURRENT_TARGETS", value_name = "N")]
    pub max_concurrent_targets: Option<String>,

    /// Leader election among replicas: true or false (default false). Only the replica that holds a
    /// coordination.k8s.io Lease refreshes and writes, for every target; the others stand by, live and ready.
    #[arg(long, env = "LEADER_ELECTION", value_name = "BOOL")]
    pub leader_election: Option<String>,

    /// Name of the Lease of leader election (default rancher-ecr-credentials).
    #[arg(long, env = "LEADER_ELECTION_LEASE_NAME", value_name = "NAME")]
    pub leader_election_lease_name: Option<String>,

    /// Namespace of the Lease of leader election. In a pod: its own namespace by default (POD_NAMESPACE, else the
    /// ServiceAccount's namespace file); required outside one.
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE", value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Refresh once and exit: 0 when every ECR registry was brought up to date in every target, 1 otherwise.
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
