//! The checks of the daemon's own settings (listening, logging, pacing, host forms): raw values from the
//! command line into typed ones. The settings of targets and sources are checked by the modules that own them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::cli::Cli;
use super::error::{ConfigError, invalid};
use crate::address::HostForm;
use crate::schedule::Backoff;
use crate::setting;

pub const DEFAULT_LISTEN_PORT: u16 = 8080;
const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

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

/// The address of the health endpoint, from LISTEN_ADDRESS and LISTEN_PORT.
pub fn listen_address(cli: &Cli) -> Result<SocketAddr, ConfigError> {
    let port = match setting::non_empty(cli.listen_port.clone()) {
        Some(value) => parse_port(&value)?,
        None => DEFAULT_LISTEN_PORT,
    };
    let ip: IpAddr = match setting::non_empty(cli.listen_address.clone()) {
        Some(value) => value.parse().map_err(|_| {
            invalid("LISTEN_ADDRESS", format!("'{value}' is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"))
        })?,
        None => IpAddr::from([0, 0, 0, 0]),
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_port(value: &str) -> Result<u16, ConfigError> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(invalid("LISTEN_PORT", format!("'{value}' is not a port number (1-65535)"))),
    }
}

pub fn parse_log_level(value: &str) -> Result<tracing::Level, ConfigError> {
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

pub fn backoff(delay: Option<String>, max_delay: Option<String>) -> Result<Backoff, ConfigError> {
    let defaults = Backoff::default();
    let initial = match setting::non_empty(delay) {
        Some(value) => bounded("RETRY_DELAY", &value, MIN_RETRY_DELAY, MAX_RETRY_DELAY)?,
        None => defaults.initial,
    };
    let max = match setting::non_empty(max_delay) {
        Some(value) => bounded("RETRY_MAX_DELAY", &value, MIN_RETRY_DELAY, MAX_RETRY_DELAY)?,
        None => defaults.max.max(initial),
    };
    if max < initial {
        return Err(invalid("RETRY_MAX_DELAY", "is shorter than RETRY_DELAY".to_string()));
    }
    Ok(Backoff { initial, max, ..defaults })
}

pub fn parse_duration(setting: &'static str, value: &str) -> Result<Duration, ConfigError> {
    setting::parse_duration(value).map_err(|p| invalid(setting, p))
}

/// A duration setting that must lie between `min` and `max`.
pub fn bounded(setting: &'static str, value: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
    setting::bounded(value, min, max).map_err(|p| invalid(setting, p))
}

/// Where a pod's ServiceAccount says which namespace the pod runs in.
pub const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Leader election, as checked from its settings: the Lease, who we are, and how to reach the API server.
#[derive(Debug)]
pub struct LeaderElection {
    pub settings: crate::leader::Settings,
    /// The API server of the Lease when no Kubernetes target gives one (in-cluster, or KUBECONFIG);
    /// `None`: the first Kubernetes target's.
    pub connection: Option<crate::kubernetes::KubeConnection>,
}

/// LEADER_ELECTION and its companions. `pod_namespace` is the pod's own namespace when running in one
/// (POD_NAMESPACE, else [`POD_NAMESPACE_FILE`]); `identity` is POD_NAME or the host name
/// ([`crate::leader::default_identity`]). The connection is decided by the caller.
pub fn leader_election(
    cli: &Cli,
    pod_namespace: Option<String>,
    identity: Option<String>,
) -> Result<Option<crate::leader::Settings>, ConfigError> {
    let on = match setting::non_empty(cli.leader_election.clone()) {
        Some(value) => setting::parse_bool_text(&value).map_err(|p| invalid("LEADER_ELECTION", p))?,
        None => false,
    };
    let lease_name = setting::non_empty(cli.leader_election_lease_name.clone());
    let namespace = setting::non_empty(cli.leader_election_namespace.clone());
    if !on {
        if lease_name.is_some() {
            return Err(invalid("LEADER_ELECTION_LEASE_NAME", "set, but LEADER_ELECTION is not true"));
        }
        if namespace.is_some() {
            return Err(invalid("LEADER_ELECTION_NAMESPACE", "set, but LEADER_ELECTION is not true"));
        }
        return Ok(None);
    }
    let namespace = namespace.or(pod_namespace).ok_or_else(|| {
        invalid(
            "LEADER_ELECTION_NAMESPACE",
            format!(
                "not set, and not in a pod (no POD_NAMESPACE, no {POD_NAMESPACE_FILE}); set the namespace of the Lease"
            ),
        )
    })?;
    let identity = identity.ok_or_else(|| {
        invalid("POD_NAME", "not set, and the host name is unknown: leader election needs an identity per replica")
    })?;
    let lease_name = lease_name.unwrap_or_else(|| crate::leader::DEFAULT_LEASE_NAME.to_string());
    let settings = crate::leader::Settings::new(lease_name, namespace, identity);
    settings.check().map_err(|message| match message.split_once(": ") {
        Some((setting, problem)) if !setting.contains(' ') => invalid(setting, problem),
        _ => invalid("LEADER_ELECTION", message),
    })?;
    Ok(Some(settings))
}

/// The pod's own namespace: POD_NAMESPACE (the downward API), else the ServiceAccount's namespace file; `None`
/// outside a pod.
pub fn pod_namespace() -> Option<String> {
    setting::non_empty(std::env::var("POD_NAMESPACE").ok().map(|v| v.trim().to_string())).or_else(|| {
        std::fs::read_to_string(POD_NAMESPACE_FILE).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    })
}
