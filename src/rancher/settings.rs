//! Rancher's settings: where it is ([`Endpoint`]), how its certificate is checked, which key to present, and
//! which environments or projects a target covers. Checked by [`crate::config`]; used here.

use std::time::Duration;

use super::endpoint::Endpoint;
use crate::secret::Secret;

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
pub struct TargetSettings {
    pub auth: RancherAuth,
    pub projects: Vec<String>,
    pub cluster: Option<String>,
    pub environments: Option<Environments>,
}
