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
