//! The Rancher side: the HTTP client, the errors every Rancher API shares, and one module per API family.
//!
//! - [`endpoint`]: which API a configured URL points at and the URLs built from it;
//! - [`session`]: authenticated requests and paging, shared by the API families;
//! - [`cattle`]: Rancher 1.x (`/v1`, `/v2-beta`): `registry` + `registryCredential`;
//! - [`v3`]: Rancher 2.x (`/v3`): `dockerCredential` + `namespacedDockerCredential`.

pub mod cattle;
pub mod endpoint;
pub mod session;
pub mod v3;

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::config::{Environments, RancherAuth, TlsSettings};
use crate::ecr::RegistryToken;
use crate::redact;
use endpoint::Endpoint;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use session::{Auth, Session};
use url::Url;

pub use crate::target::{Action, Failure, Notice, SyncOptions, SyncReport, Written};

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
}

/// The parts of the Rancher settings that shape a target.
pub struct TargetSettings {
    pub auth: RancherAuth,
    pub projects: Vec<String>,
    pub cluster: Option<String>,
    pub environments: Option<Environments>,
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
                Rancher::V3(v3::V3::new(Session::new(http, v3_auth(&settings.auth)), base, scope))
            }
            Endpoint::Unversioned { root } => {
                Rancher::Probe(Probe { http, root, settings, resolved: tokio::sync::OnceCell::new() })
            }
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

    /// Brings every ECR host up to date in this target (with `dry_run`, only reads and reports what it would
    /// write).
    pub async fn sync(&self, tokens: &[RegistryToken], options: SyncOptions) -> Result<SyncReport, RancherError> {
        match self {
            Rancher::Cattle(cattle) => cattle.sync(tokens, options).await,
            Rancher::Environments(environments) => environments.sync(tokens, options).await,
            Rancher::V3(v3) => v3.sync(tokens, options).await,
            Rancher::Probe(probe) => {
                let target = probe.resolved.get_or_try_init(|| probe.resolve()).await?;
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
        let response = request.send().await.map_err(|e| RancherError::transport(&method, url.as_str(), e))?;
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
        let settings = TargetSettings {
            auth: self.settings.auth.clone(),
            projects: self.settings.projects.clone(),
            cluster: self.settings.cluster.clone(),
            environments: self.settings.environments.clone(),
        };
        Ok(Box::new(Rancher::new(self.http.clone(), endpoint, settings)))
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

/// Connect timeout of every Rancher call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client for Rancher: rustls with the system trust store (plus `CATTLE_CA_BUNDLE`), `HTTPS_PROXY` and
/// `NO_PROXY` honoured, and timeouts on everything. `timeout` bounds each request as a whole: a server that accepts
/// and never answers costs this, once.
pub fn http_client(tls: &TlsSettings, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = &tls.ca_bundle {
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem)?);
    }
    if tls.insecure_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .user_agent(concat!("rancher-ecr-credentials/", env!("CARGO_PKG_VERSION")))
        // Credentials must never follow a redirect to another host.
        .redirect(reqwest::redirect::Policy::none())
        // No idle connections kept between requests: a cycle is a handful of requests hours apart, and a pool's
        // idle reaper would wake the idle daemon twice after each cycle.
        .pool_max_idle_per_host(0)
        .build()
}

/// A failed Rancher call. Carries the method, the URL (which never holds a secret: the configuration refuses
/// URLs with user info) and what Rancher said; never a request body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RancherError {
    #[error("{method} {url}: {detail}")]
    Transport { method: Method, url: String, detail: String, timeout: bool },
    #[error("{method} {url}: HTTP {status}{}", describe(.code, .detail))]
    Status { method: Method, url: String, status: StatusCode, code: Option<String>, detail: Option<String> },
    #[error("{method} {url}: unexpected answer: {detail}")]
    Body { method: Method, url: String, detail: String },
    /// Writing would destroy data: this daemon refuses.
    #[error("{resource} not written: {detail}")]
    Refused { resource: String, detail: String },
}

fn describe(code: &Option<String>, detail: &Option<String>) -> String {
    match (code, detail) {
        (Some(code), Some(detail)) => format!(" {code}: {detail}"),
        (Some(code), None) => format!(" {code}"),
        (None, Some(detail)) => format!(": {detail}"),
        (None, None) => String::new(),
    }
}

impl RancherError {
    /// True when retrying soon will not help: a key, a permission or a setting has to be fixed first.
    pub fn is_permanent(&self) -> bool {
        match self {
            RancherError::Status { status, .. } => matches!(
                *status,
                StatusCode::BAD_REQUEST
                    | StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::NOT_FOUND
                    | StatusCode::METHOD_NOT_ALLOWED
                    | StatusCode::UNPROCESSABLE_ENTITY
            ),
            RancherError::Transport { .. } | RancherError::Body { .. } => false,
            RancherError::Refused { .. } => true,
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RancherError::Transport { timeout: true, .. } => "timeout",
            RancherError::Transport { .. } => "connection",
            RancherError::Status { status, .. } => match *status {
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::FORBIDDEN => "forbidden",
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::CONFLICT => "conflict",
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "rejected",
                s if s.is_server_error() => "server_error",
                _ => "status",
            },
            RancherError::Body { .. } => "bad_answer",
            RancherError::Refused { .. } => "refused",
        }
    }

    /// What a person should do about it, when that is clear from the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RancherError::Status { status: StatusCode::UNAUTHORIZED, .. } => Some(
                "Rancher rejected the API key (HTTP 401): check CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY (or RANCHER_TOKEN for Rancher 2)",
            ),
            RancherError::Status { status: StatusCode::FORBIDDEN, .. } => {
                Some("the API key may not use this environment: check the project in CATTLE_URL and the key's scope")
            }
            RancherError::Status { status: StatusCode::NOT_FOUND, .. } => {
                Some("the URL does not exist on this Rancher: check CATTLE_URL (version and project id)")
            }
            _ => None,
        }
    }

    pub(crate) fn transport(method: &Method, url: &str, err: reqwest::Error) -> RancherError {
        let timeout = err.is_timeout();
        // The URL is already part of the message; the cause chain says what actually went wrong.
        let detail = redact::error_chain(&err.without_url());
        RancherError::Transport { method: method.clone(), url: url.to_string(), detail, timeout }
    }
}

/// The error body both Rancher APIs send: `code`, `message` and, for validation errors, `fieldName`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    #[serde(rename = "fieldName")]
    field_name: Option<String>,
}

/// A successful answer, kept with its request line so that a parse error can name it.
pub(crate) struct Answer {
    method: Method,
    url: String,
    body: bytes::Bytes,
}

impl Answer {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, RancherError> {
        serde_json::from_slice(&self.body).map_err(|e| RancherError::Body {
            method: self.method.clone(),
            url: self.url.clone(),
            detail: format!("not the JSON expected ({})", redact::outside(&e.to_string())),
        })
    }
}

/// The largest answer read from Rancher. The largest honest page is a few MB (1,000 registries are about
/// 1.1 MB); anything larger is a misbehaving server or proxy, and reading it whole could exhaust memory.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// The largest error answer read for its message; the rest of a larger one is not looked at.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Sends a request and returns the body of a 2xx answer; anything else becomes a [`RancherError`]. Bodies are
/// read up to [`MAX_BODY_BYTES`]; every piece of text taken from an error answer is cleaned by
/// [`redact::outside`].
pub(crate) async fn send(client: &reqwest::Client, request: reqwest::Request) -> Result<Answer, RancherError> {
    let method = request.method().clone();
    let url = request.url().to_string();
    let response = client.execute(request).await.map_err(|e| RancherError::transport(&method, &url, e))?;
    let status = response.status();
    if status.is_success() {
        let body = match read_capped(response, MAX_BODY_BYTES).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return Err(RancherError::Body {
                    method,
                    url,
                    detail: format!(
                        "Rancher answer larger than {} MB; not read (a misbehaving server or proxy?)",
                        MAX_BODY_BYTES / (1024 * 1024)
                    ),
                });
            }
            Err(e) => return Err(RancherError::transport(&method, &url, e)),
        };
        return Ok(Answer { method, url, body });
    }
    // The status decides; the message is a courtesy, so a body that cannot be read whole is not an error.
    let body = read_capped(response, MAX_ERROR_BODY_BYTES).await.ok().flatten().unwrap_or_default();
    let (code, detail) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { code, message, field_name }) => {
            let message = message.filter(|m| Some(m) != code.as_ref());
            let detail = match (message, field_name) {
                (Some(message), Some(field)) => Some(format!("{message} (field {field})")),
                (Some(message), None) => Some(message),
                (None, Some(field)) => Some(format!("field {field}")),
                (None, None) => None,
            };
            (code.map(|c| redact::outside(&c)), detail.map(|d| redact::outside(&d)))
        }
        Err(_) => (None, None),
    };
    Err(RancherError::Status { method, url, status, code, detail })
}

/// The body of `response`, or `None` when it is (or announces itself as) longer than `limit` bytes: reading
/// stops there, whatever the server keeps sending.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> reqwest::Result<Option<bytes::Bytes>> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}
