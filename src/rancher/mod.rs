//! The Rancher side: which API a target speaks, and the dispatch to it. Everything else has its own file:
//!
//! - [`settings`]: Rancher's settings (endpoint, TLS, key, environments or projects);
//! - [`endpoint`]: which API a configured URL points at and the URLs built from it;
//! - [`http`]: the HTTP client and the capped reading of answers, shared by the API families;
//! - [`error`]: [`RancherError`], what a failed call means;
//! - [`outcome`]: how a Rancher target's writes, notices and failures are logged and counted;
//! - [`session`]: authenticated requests and paging, shared by the API families;
//! - [`cattle`]: Rancher 1.x (`/v1`, `/v2-beta`): `registry` + `registryCredential`;
//! - [`v3`]: Rancher 2.x (`/v3`): `dockerCredential` + `namespacedDockerCredential`.

pub mod cattle;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod outcome;
pub mod session;
pub mod settings;
pub mod v3;

use reqwest::{Method, StatusCode};
use url::Url;

use tokio_util::sync::CancellationToken;

use crate::report::{SyncOptions, SyncReport};
use crate::status::Status;
use crate::token::RegistryToken;
use endpoint::Endpoint;
pub use error::RancherError;
use session::{Auth, Session};
use settings::RancherAuth;
pub use settings::TargetSettings;

/// One place in Rancher that credentials are written to, through whichever API it speaks.
pub enum Rancher {
    Cattle(cattle::Cattle),
    /// Rancher 1.x environments listed with an account key (`RANCHER_ENVIRONMENTS`).
    Environments(cattle::Environments),
    V3(v3::V3),
    /// A bare URL: which API it speaks is asked of the server at the first refresh, then kept.
    Probe(Probe),
}

/// What a bare URL needs to become a [`Rancher`] once its API is known.
pub struct Probe {
    http: reqwest::Client,
    root: Url,
    settings: TargetSettings,
    resolved: tokio::sync::OnceCell<Box<Rancher>>,
    /// Told when `resolved` is set, so that the watch waits for it without polling.
    found: tokio::sync::Notify,
}

impl Rancher {
    /// Builds the target for a configured endpoint.
    pub fn new(http: reqwest::Client, endpoint: Endpoint, settings: TargetSettings) -> Rancher {
        match endpoint {
            Endpoint::Cattle(endpoint) => {
                let session = Session::new(http, cattle_auth(&settings.auth));
                match settings.environments {
                    Some(selection) => Rancher::Environments(cattle::Environments::new(session, endpoint, selection)),
                    None => Rancher::Cattle(cattle::Cattle::new(session, endpoint)),
                }
            }
            Endpoint::V3 { base, project } => {
                let scope = match project {
                    Some(project) => v3::Scope::Projects(vec![project]),
                    None if !settings.projects.is_empty() => v3::Scope::Projects(settings.projects),
                    None => v3::Scope::All { cluster: settings.cluster },
                };
                let session = Session::new(http, v3_auth(&settings.auth));
                Rancher::V3(v3::V3::new(session, base, scope, settings.projects_check_interval))
            }
            Endpoint::Unversioned { root } => Rancher::Probe(Probe {
                http,
                root,
                settings,
                resolved: tokio::sync::OnceCell::new(),
                found: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The name of the target in logs, metrics and readiness: its API URL (and scope).
    pub fn name(&self) -> String {
        match self {
            Rancher::Cattle(cattle) => cattle.endpoint().to_string(),
            Rancher::Environments(environments) => environments.name(),
            Rancher::V3(v3) => v3.name(),
            Rancher::Probe(probe) => probe.root.to_string(),
        }
    }

    /// Reads the key and token files again (rotated secrets); true when anything changed.
    pub fn reload_secrets(&self) -> bool {
        match self {
            Rancher::Cattle(cattle) => cattle.reload_secrets(),
            Rancher::Environments(environments) => environments.reload_secrets(),
            Rancher::V3(v3) => v3.reload_secrets(),
            Rancher::Probe(probe) => match probe.resolved.get() {
                Some(target) => target.reload_secrets(),
                None => match &probe.settings.auth {
                    RancherAuth::None => false,
                    RancherAuth::Keys(keys) => {
                        let access = keys.access_key.reload();
                        let secret = keys.secret_key.reload();
                        access || secret
                    }
                    RancherAuth::Token(token) => token.reload(),
                },
            },
        }
    }

    /// Between refreshes: a Rancher 2 target that covers every project (of a cluster) looks for new projects
    /// at its interval ([`v3::V3::watch`]); the others have nothing to do and return at once.
    pub async fn watch(&self, name: &str, status: &Status, shutdown: &CancellationToken) {
        match self {
            Rancher::V3(v3) => v3.watch(name, status, shutdown).await,
            Rancher::Probe(probe) => loop {
                // Which API the URL speaks is known after the first successful refresh; wait for it without
                // waking up meanwhile (registered before looking, so that no notification is missed).
                let found = probe.found.notified();
                tokio::pin!(found);
                found.as_mut().enable();
                if let Some(target) = probe.resolved.get() {
                    return Box::pin(target.watch(name, status, shutdown)).await;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = found => {}
                }
            },
            Rancher::Cattle(_) | Rancher::Environments(_) => {}
        }
    }

    /// Brings every ECR host up to date in this target (with `dry_run`, only reads and reports what it would
    /// write).
    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        options: SyncOptions,
    ) -> Result<SyncReport<RancherError>, RancherError> {
        match self {
            Rancher::Cattle(cattle) => cattle.sync(tokens, options).await,
            Rancher::Environments(environments) => environments.sync(tokens, options).await,
            Rancher::V3(v3) => v3.sync(tokens, options).await,
            Rancher::Probe(probe) => {
                let target = probe.resolved.get_or_try_init(|| probe.resolve()).await?;
                probe.found.notify_waiters();
                Box::pin(target.sync(tokens, options)).await
            }
        }
    }
}

impl Probe {
    /// Asks `<root>/v3`, without credentials: Cattle answers every request with an `X-API-Schemas` header
    /// naming its own version (or 404s), Rancher 2 names `/v3` or answers 200/401.
    async fn resolve(&self) -> Result<Box<Rancher>, RancherError> {
        let url = endpoint::under(&self.root, "v3");
        let request = self.http.get(url.clone()).header(reqwest::header::ACCEPT, "application/json");
        let method = Method::GET;
        let response = request
            .send()
            .await
            .map_err(|e| RancherError::transport(&method, url.as_str(), e, http::proxy_for(url.as_str())))?;
        let schemas =
            response.headers().get("x-api-schemas").and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
        let status = response.status();
        let is_v3 = match schemas {
            Some(schemas) => schemas.contains("/v3"),
            None if status == StatusCode::NOT_FOUND => false,
            None if status.is_success() || status == StatusCode::UNAUTHORIZED => true,
            None => {
                return Err(RancherError::Body {
                    method,
                    url: url.to_string(),
                    detail: format!("HTTP {status} does not tell Rancher 1.x from 2.x; set RANCHER_API"),
                });
            }
        };
        let endpoint = if is_v3 {
            Endpoint::V3 { base: url, project: None }
        } else {
            Endpoint::Cattle(endpoint::CattleEndpoint::v1_under(&self.root))
        };
        tracing::info!(rancher = %self.root, api = %endpoint, "Found which Rancher API the URL speaks");
        Ok(Box::new(Rancher::new(self.http.clone(), endpoint, self.settings.clone())))
    }
}

fn cattle_auth(auth: &RancherAuth) -> Auth {
    match auth {
        RancherAuth::None => Auth::None,
        RancherAuth::Keys(keys) => {
            Auth::Basic { access_key: keys.access_key.clone(), secret_key: keys.secret_key.clone() }
        }
        // A Rancher 2 style token `access:secret` is a Cattle key pair too; one without a colon is sent as Bearer.
        RancherAuth::Token(token) => Auth::Token { token: token.clone(), basic_when_paired: true },
    }
}

/// Rancher 2 takes `Bearer <access>:<secret>`; Basic would need URL-safe base64, which clients do not send.
fn v3_auth(auth: &RancherAuth) -> Auth {
    match auth {
        RancherAuth::None => Auth::None,
        RancherAuth::Keys(keys) => {
            Auth::BearerPair { access_key: keys.access_key.clone(), secret_key: keys.secret_key.clone() }
        }
        RancherAuth::Token(token) => Auth::Token { token: token.clone(), basic_when_paired: false },
    }
}
