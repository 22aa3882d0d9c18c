//! The HTTP every Rancher API shares: the client (TLS, proxies, timeouts), sending a request, and reading its
//! answer with a cap on its size (`Answer`).

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::RancherError;
use super::settings::TlsSettings;
use crate::redact;

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

/// The proxy that the Rancher client (reqwest) uses for `url`, read from the environment as reqwest reads it;
/// without credentials. `None` when it goes directly.
pub fn proxy_for(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    hyper_util::client::proxy::matcher::Matcher::from_env()
        .intercept(&uri)
        .map(|intercept| redact::proxy_uri(intercept.uri()))
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
    let response =
        client.execute(request).await.map_err(|e| RancherError::transport(&method, &url, e, proxy_for(&url)))?;
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
            Err(e) => return Err(RancherError::transport(&method, &url, e, proxy_for(&url))),
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
