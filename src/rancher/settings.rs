//! Rancher's settings: where it is ([`Endpoint`]), how its certificate is checked, which key to present, and
//! which environments or projects a target covers; each declared once ([`SETTINGS`]) and checked here
//! ([`check`]), whichever form gave them.

use std::time::Duration;

use super::endpoint::{ApiChoice, Endpoint};
use crate::secret::Secret;
use crate::setting::{Given, Kind, Setting, SettingError, bounded, invalid, project_ids};

pub const URL: Setting = Setting::new(
    "CATTLE_URL",
    "cattle-url",
    "url",
    "URL",
    Kind::Text,
    "Rancher API endpoint: Rancher 1.x http://rancher:8080/v1, …/v2-beta or …/v2-beta/projects/1a5; Rancher 2 https://rancher/v3 or …/v3/projects/c-xxxxx:p-xxxxx; or a bare URL, probed to tell the two apart. Injected by Rancher 1.x for services with the agent labels.",
);
pub const API: Setting = Setting::new(
    "RANCHER_API",
    "rancher-api",
    "api",
    "API",
    Kind::Text,
    "Which Rancher API CATTLE_URL speaks: auto (from the URL's path; a bare URL is probed), cattle (1.x) or v3 (2.x).",
);
pub const PROJECTS: Setting = Setting::new(
    "RANCHER_PROJECTS",
    "rancher-projects",
    "projects",
    "IDS",
    Kind::List,
    "Rancher 2: comma-separated project ids (c-xxxxx:p-xxxxx) to keep credentials fresh in, when CATTLE_URL is the /v3 root. Empty: every project the API key can see.",
);
pub const CLUSTER: Setting = Setting::new(
    "RANCHER_CLUSTER",
    "rancher-cluster",
    "cluster",
    "ID",
    Kind::Text,
    "Rancher 2: only the projects of this cluster (e.g. c-xxxxx or local), when CATTLE_URL is the /v3 root.",
);
pub const PROJECTS_CHECK_INTERVAL: Setting = Setting::new(
    "RANCHER_PROJECTS_CHECK_INTERVAL",
    "rancher-projects-check-interval",
    "projects_check_interval",
    "DURATION",
    Kind::Text,
    "Rancher 2, when CATTLE_URL is the /v3 root without RANCHER_PROJECTS (every project, or RANCHER_CLUSTER's): how often the projects are listed between refreshes (one request), so that a new project gets its credentials at once (AUTO_CREATE creates them; existing ones are refreshed). Default 5m; 1s to 24h.",
);
pub const ENVIRONMENTS: Setting = Setting::new(
    "RANCHER_ENVIRONMENTS",
    "rancher-environments",
    "environments",
    "ENVS",
    Kind::List,
    "Rancher 1.x with an account API key and CATTLE_URL the API root (…/v2-beta): the environments to keep credentials fresh in: all (every environment the key sees, new ones included) or a comma list of names or ids (1a5).",
);
pub const TOKEN: Setting = Setting::new(
    "RANCHER_TOKEN",
    "rancher-token",
    "token",
    "TOKEN",
    Kind::Secret,
    "Rancher 2 bearer token (token-xxxxx:secret), instead of CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY. As a flag it is visible to every local user (/proc/PID/cmdline): prefer the variable or RANCHER_TOKEN_FILE.",
);
pub const TOKEN_FILE: Setting = Setting::new(
    "RANCHER_TOKEN_FILE",
    "rancher-token-file",
    "token_file",
    "PATH",
    Kind::Path,
    "File holding the Rancher 2 bearer token (for mounted secrets); instead of RANCHER_TOKEN.",
);
pub const ACCESS_KEY: Setting = Setting::new(
    "CATTLE_ACCESS_KEY",
    "cattle-access-key",
    "access_key",
    "KEY",
    Kind::Hidden,
    "Rancher API access key (Cattle: the user name of HTTP Basic auth; Rancher 2: the token-xxxxx part).",
);
pub const ACCESS_KEY_FILE: Setting = Setting::new(
    "CATTLE_ACCESS_KEY_FILE",
    "cattle-access-key-file",
    "access_key_file",
    "PATH",
    Kind::Path,
    "File holding the Rancher API access key (for mounted secrets); instead of CATTLE_ACCESS_KEY.",
);
pub const SECRET_KEY: Setting = Setting::new(
    "CATTLE_SECRET_KEY",
    "cattle-secret-key",
    "secret_key",
    "KEY",
    Kind::Secret,
    "Rancher API secret key (the password of HTTP Basic auth). Never logged. As a flag it is visible to every local user (/proc/PID/cmdline): prefer the variable or CATTLE_SECRET_KEY_FILE.",
);
pub const SECRET_KEY_FILE: Setting = Setting::new(
    "CATTLE_SECRET_KEY_FILE",
    "cattle-secret-key-file",
    "secret_key_file",
    "PATH",
    Kind::Path,
    "File holding the Rancher API secret key (for mounted secrets); instead of CATTLE_SECRET_KEY.",
);
pub const CA_BUNDLE: Setting = Setting::new(
    "CATTLE_CA_BUNDLE",
    "cattle-ca-bundle",
    "ca_bundle",
    "PATH",
    Kind::Path,
    "PEM file with the CA certificate(s) that signed Rancher's TLS certificate (self-signed or private CA), trusted in addition to the system trust store (which SSL_CERT_FILE can replace).",
);
pub const INSECURE_SKIP_VERIFY: Setting = Setting::new(
    "CATTLE_INSECURE_SKIP_VERIFY",
    "cattle-insecure-skip-verify",
    "insecure_skip_verify",
    "BOOL",
    Kind::Bool,
    "Do not verify Rancher's TLS certificate at all: true or false. Anyone on the network path can then read the Rancher key and the ECR passwords; prefer CATTLE_CA_BUNDLE. Logged as a warning at every start.",
);
pub const AUTO_CREATE: Setting = Setting::new(
    "AUTO_CREATE",
    "auto-create",
    "auto_create",
    "BOOL",
    Kind::Bool,
    "Create the registry (and its credential) in Rancher when no registry matches an ECR host: true or false.",
);

/// The settings of a Rancher target, in the order `--help` shows them.
pub const SETTINGS: [&Setting; 15] = [
    &URL,
    &API,
    &PROJECTS,
    &CLUSTER,
    &PROJECTS_CHECK_INTERVAL,
    &ENVIRONMENTS,
    &TOKEN,
    &TOKEN_FILE,
    &ACCESS_KEY,
    &ACCESS_KEY_FILE,
    &SECRET_KEY,
    &SECRET_KEY_FILE,
    &CA_BUNDLE,
    &INSECURE_SKIP_VERIFY,
    &AUTO_CREATE,
];

#[derive(Debug)]
pub struct RancherSettings {
    pub endpoint: Endpoint,
    pub tls: TlsSettings,
    /// Time limit of each request to Rancher.
    pub timeout: Duration,
    pub auth: RancherAuth,
    /// Rancher 2 with a /v3 root URL: these projects (empty: all the key can see).
    pub projects: Vec<String>,
    /// Rancher 2 with a /v3 root URL and no projects given: only this cluster's projects.
    pub cluster: Option<String>,
    /// Rancher 2 with a /v3 root URL and no projects given: how often new projects are looked for.
    pub projects_check_interval: Duration,
    /// Rancher 1.x with an account key and the API root URL: the environments to refresh.
    pub environments: Option<Environments>,
}

/// Which Rancher 1.x environments a target with an account API key covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environments {
    /// Every environment the key sees, listed again at each refresh (new ones are picked up).
    All,
    /// These, by name or id.
    Named(Vec<String>),
}

/// The Rancher API key, in whichever form it was given.
#[derive(Debug, Clone)]
pub enum RancherAuth {
    /// Rancher without access control.
    None,
    /// An access and a secret key: Basic auth for Cattle, `Bearer access:secret` for Rancher 2.
    Keys(BasicCredentials),
    /// A Rancher 2 bearer token `token-xxxxx:secret`.
    Token(Secret),
}

/// How Rancher's certificate is checked.
#[derive(Debug, Default)]
pub struct TlsSettings {
    /// Extra trusted CA certificates (PEM), already checked to hold at least one certificate.
    pub ca_bundle: Option<Vec<u8>>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone)]
pub struct BasicCredentials {
    pub access_key: Secret,
    pub secret_key: Secret,
}

/// The parts of the Rancher settings that shape a target.
#[derive(Clone)]
pub struct TargetSettings {
    pub auth: RancherAuth,
    pub projects: Vec<String>,
    pub cluster: Option<String>,
    pub projects_check_interval: Duration,
    pub environments: Option<Environments>,
}

/// RANCHER_PROJECTS_CHECK_INTERVAL when not set.
pub const DEFAULT_PROJECTS_CHECK_INTERVAL: Duration = Duration::from_secs(300);
const MIN_PROJECTS_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const MAX_PROJECTS_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Checks one Rancher target's settings; `timeout` bounds each request. Returns them with AUTO_CREATE.
pub fn check(given: &dyn Given, timeout: Duration) -> Result<(RancherSettings, bool), SettingError> {
    let name = |setting: &Setting| given.name(setting);
    let url = given
        .value(&URL)
        .ok_or_else(|| invalid(&URL, "not set; give the Rancher API endpoint, e.g. http://rancher:8080/v2-beta"))?;
    let choice = match given.value(&API).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("auto") => ApiChoice::Auto,
        Some("cattle") | Some("v1") | Some("v2-beta") | Some("1") => ApiChoice::Cattle,
        Some("v3") | Some("2") => ApiChoice::V3,
        Some(other) => {
            return Err(invalid(&API, format!("'{other}' is not a Rancher API; use auto, cattle or v3")));
        }
    };
    let endpoint = Endpoint::parse(&url, choice).map_err(|e| invalid(&URL, e.to_string()))?;
    let projects = project_ids(given, &PROJECTS)?;
    let cluster = given.value(&CLUSTER);
    if let Some(cluster) = &cluster
        && !cluster.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(&CLUSTER, format!("'{cluster}' is not a cluster id (e.g. c-xxxxx or local)")));
    }
    let environments = parse_environments(&given.list(&ENVIRONMENTS))?;
    let url_name = name(&URL);
    match (&endpoint, &environments) {
        (_, None) => {}
        (Endpoint::Cattle(cattle), Some(_)) if cattle.project.is_none() => {}
        (Endpoint::Cattle(_), Some(_)) => {
            return Err(invalid(
                &ENVIRONMENTS,
                format!(
                    "{url_name} already names one environment; give the API root (e.g. http://rancher:8080/v2-beta)"
                ),
            ));
        }
        (Endpoint::V3 { .. }, Some(_)) => {
            return Err(invalid(&ENVIRONMENTS, format!("only for Rancher 1.x; {url_name} is a Rancher 2 URL")));
        }
        (Endpoint::Unversioned { .. }, Some(_)) => {
            return Err(invalid(
                &ENVIRONMENTS,
                "needs a Rancher 1.x API URL to list environments (e.g. http://rancher:8080/v2-beta)",
            ));
        }
    }
    match &endpoint {
        Endpoint::Cattle(_) if !projects.is_empty() => {
            return Err(invalid(&PROJECTS, format!("only for Rancher 2; {url_name} is a Rancher 1.x URL")));
        }
        Endpoint::Cattle(_) if cluster.is_some() => {
            return Err(invalid(&CLUSTER, format!("only for Rancher 2; {url_name} is a Rancher 1.x URL")));
        }
        Endpoint::V3 { project: Some(_), .. } if !projects.is_empty() || cluster.is_some() => {
            return Err(invalid(
                if projects.is_empty() { &CLUSTER } else { &PROJECTS },
                format!("{url_name} already names one project; give the /v3 root URL to cover several"),
            ));
        }
        _ if !projects.is_empty() && cluster.is_some() => {
            return Err(invalid(&CLUSTER, format!("set together with {}; use one or the other", name(&PROJECTS))));
        }
        _ => {}
    }
    let projects_check_interval = match given.value(&PROJECTS_CHECK_INTERVAL) {
        None => DEFAULT_PROJECTS_CHECK_INTERVAL,
        Some(value) => {
            let fixed = match &endpoint {
                Endpoint::Cattle(_) => Some(format!("only for Rancher 2; {url_name} is a Rancher 1.x URL")),
                Endpoint::V3 { project: Some(_), .. } => {
                    Some(format!("{url_name} names one project; there are no new projects to look for"))
                }
                _ if !projects.is_empty() => {
                    Some(format!("{} names the projects; there are no new projects to look for", name(&PROJECTS)))
                }
                _ => None,
            };
            if let Some(problem) = fixed {
                return Err(invalid(&PROJECTS_CHECK_INTERVAL, problem));
            }
            bounded(&value, MIN_PROJECTS_CHECK_INTERVAL, MAX_PROJECTS_CHECK_INTERVAL)
                .map_err(|problem| invalid(&PROJECTS_CHECK_INTERVAL, problem))?
        }
    };
    let auth = auth(given)?;
    let ca_bundle = match given.path(&CA_BUNDLE) {
        Some(path) => Some(read_ca_bundle(&path)?),
        None => None,
    };
    let tls = TlsSettings { ca_bundle, insecure_skip_verify: given.flag(&INSECURE_SKIP_VERIFY)? };
    let auto_create = given.flag(&AUTO_CREATE)?;
    let settings =
        RancherSettings { endpoint, tls, timeout, auth, projects, cluster, projects_check_interval, environments };
    Ok((settings, auto_create))
}

/// The key, in whichever form it was given: a pair, a token, or none.
fn auth(given: &dyn Given) -> Result<RancherAuth, SettingError> {
    let (access, secret) = (given.name(&ACCESS_KEY), given.name(&SECRET_KEY));
    let access_key = given.secret(&ACCESS_KEY, &ACCESS_KEY_FILE)?;
    let secret_key = given.secret(&SECRET_KEY, &SECRET_KEY_FILE)?;
    let token = given.secret(&TOKEN, &TOKEN_FILE)?;
    Ok(match (access_key, secret_key, token) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(invalid(&TOKEN, format!("set together with {access}/{secret}; use one or the other")));
        }
        (None, None, Some(token)) => RancherAuth::Token(token),
        (Some(access_key), Some(secret_key), None) => RancherAuth::Keys(BasicCredentials { access_key, secret_key }),
        (None, None, None) => RancherAuth::None,
        (Some(_), None, None) => {
            return Err(invalid(&SECRET_KEY, format!("not set, but {access} is; set both or neither")));
        }
        (None, Some(_), None) => {
            return Err(invalid(&ACCESS_KEY, format!("not set, but {secret} is; set both or neither")));
        }
    })
}

fn parse_environments(names: &[String]) -> Result<Option<Environments>, SettingError> {
    if names.is_empty() {
        return Ok(None);
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        if names.len() > 1 {
            return Err(invalid(&ENVIRONMENTS, "'all' cannot be combined with names"));
        }
        return Ok(Some(Environments::All));
    }
    Ok(Some(Environments::Named(names.to_vec())))
}

fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<u8>, SettingError> {
    let pem = crate::setting::read(&CA_BUNDLE, path)?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(pem),
        _ => Err(invalid(&CA_BUNDLE, format!("'{}' holds no PEM certificate", path.display()))),
    }
}
