//! [`RancherError`]: a failed call to either Rancher API, and what it means (retry or not, what to do).

use reqwest::{Method, StatusCode};

use crate::redact;

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

    /// A request that got no answer; `proxy` is the proxy it went through (shown without credentials), if any.
    pub(crate) fn transport(method: &Method, url: &str, err: reqwest::Error, proxy: Option<String>) -> RancherError {
        let timeout = err.is_timeout();
        // The URL is already part of the message; the cause chain says what actually went wrong.
        let detail = redact::error_chain(&err.without_url());
        // Through a proxy, say so: the failure may be the proxy's (refused, unreachable, its TLS not trusted).
        let detail = match proxy {
            Some(proxy) => format!("through proxy {proxy}: {detail}"),
            None => detail,
        };
        RancherError::Transport { method: method.clone(), url: url.to_string(), detail, timeout }
    }
}
