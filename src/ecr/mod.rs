//! The AWS side: credentials, ECR GetAuthorizationToken, and decoding its answer into [`RegistryToken`]s.
//!
//! Credentials come from aws-config's default chain (environment, shared files and `AWS_PROFILE`, web
//! identity, ECS container credentials, EC2 instance metadata), optionally with a role assumed on top. The
//! standard endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL_STS`) are honoured
//! by aws-config itself. Nothing here talks to Rancher.

use std::time::{Duration, SystemTime};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials};
use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use base64::Engine as _;
use secrecy::SecretString;

use crate::address;
use crate::redact;
pub use crate::token::RegistryToken;
use aws_http::AwsHttp;
use settings::AssumeRole;

pub mod aws_http;
pub mod settings;
pub use settings::{AwsSettings, PUBLIC_HOST, PUBLIC_REGION, resolve_region};

/// Why no usable token came from ECR, in words, with what to do about it. Never carries the token, the password
/// or any answer body; text that came from AWS is cleaned by [`redact::outside`].
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// AWS answered GetAuthorizationToken with an error.
    #[error("{}", describe_service_error(.code, .message))]
    Service { code: String, message: String },
    /// The default credential chain found nothing.
    #[error(
        "no AWS credentials found; tried {tried}. Give the daemon credentials: AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, a web identity (IRSA), EKS Pod Identity, an instance or task role, or AWS_PROFILE"
    )]
    NoCredentials { tried: String },
    /// A credential provider (a role to assume, web identity, a profile) failed.
    #[error("could not get AWS credentials: {0}")]
    Credentials(String),
    /// The ECR endpoint could not be reached, directly or through `proxy` (shown without credentials).
    #[error("cannot reach ECR at {host}{}: {reason}; {}", through(.proxy), unreachable_hint(.proxy))]
    Unreachable { host: String, proxy: Option<String>, reason: String },
    /// Any other failure of the call.
    #[error("ECR GetAuthorizationToken at {host} failed: {reason}")]
    Request { host: String, reason: String },
    /// ECR answered, but not with the JSON it sends (a proxy's page, a changed API, a hostile endpoint).
    #[error(
        "ECR's answer at {host} is malformed: {problem}; is something other than ECR answering (AWS_ENDPOINT_URL, a proxy)?"
    )]
    BadAnswer { host: String, problem: String },
    #[error("ECR GetAuthorizationToken answered with no authorization data")]
    Empty,
    #[error("ECR authorization data #{index} is malformed: {problem}")]
    Malformed { index: usize, problem: String },
}

fn through(proxy: &Option<String>) -> String {
    proxy.as_ref().map(|p| format!(" through proxy {p}")).unwrap_or_default()
}

fn unreachable_hint(proxy: &Option<String>) -> &'static str {
    match proxy {
        Some(_) => {
            "check the proxy (HTTPS_PROXY, its credentials, NO_PROXY) and, for a proxy that inspects TLS, AWS_CA_BUNDLE"
        }
        None => "check the network path, HTTPS_PROXY/NO_PROXY and AWS_ENDPOINT_URL",
    }
}

/// Service error codes that retrying will not cure: a person has to fix a policy, a key or a setting.
const PERMANENT_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "IncompleteSignature",
    "InvalidParameterException",
    "MissingAuthenticationTokenException",
];

/// Codes with which AWS says the keys themselves are wrong or expired.
const BAD_KEY_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationTokenException",
    "ExpiredToken",
    "ExpiredTokenException",
];

fn describe_service_error(code: &str, message: &str) -> String {
    if code.starts_with("AccessDenied") {
        format!(
            "ECR refused GetAuthorizationToken: access denied ({code}: {message}); allow ecr:GetAuthorizationToken \
             in the IAM policy of these credentials"
        )
    } else if BAD_KEY_CODES.contains(&code) {
        format!(
            "AWS rejected the credentials as invalid or expired ({code}: {message}); check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
        )
    } else if code.contains("Throttl") || code == "TooManyRequestsException" {
        format!("ECR throttled GetAuthorizationToken ({code}: {message}); retrying later")
    } else {
        format!("ECR GetAuthorizationToken was refused: {code}: {message}")
    }
}

impl EcrError {
    /// True when the error needs a person to act (a policy, a key, a setting).
    pub fn is_permanent(&self) -> bool {
        match self {
            EcrError::Service { code, .. } => PERMANENT_CODES.contains(&code.as_str()),
            // Credentials may appear (an instance profile attached, a projected token mounted), a network
            // may heal: these are retried at the quick pace.
            EcrError::NoCredentials { .. } | EcrError::Credentials(_) => false,
            EcrError::Unreachable { .. } | EcrError::Request { .. } => false,
            EcrError::BadAnswer { .. } | EcrError::Empty | EcrError::Malformed { .. } => false,
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EcrError::Service { code, .. } if code.contains("Throttl") => "throttled",
            EcrError::Service { .. } if self.is_permanent() => "denied",
            EcrError::Service { .. } => "service",
            EcrError::NoCredentials { .. } | EcrError::Credentials(_) => "credentials",
            EcrError::Unreachable { .. } => "unreachable",
            EcrError::Request { .. } => "request",
            EcrError::BadAnswer { .. } | EcrError::Empty | EcrError::Malformed { .. } => "malformed",
        }
    }
}

/// Timeouts on every AWS call. The SDK's own retries (standard mode, 3 attempts) stay on for throttling and
/// 5xx answers; these bound each attempt and the whole operation.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(20))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// Which API the tokens come from.
#[derive(Clone, Debug)]
enum Client {
    /// Private registries: `ecr` GetAuthorizationToken, one token per account.
    Private(aws_sdk_ecr::Client),
    /// ECR Public: `ecr-public` GetAuthorizationToken, one token for `public.ecr.aws`.
    Public(aws_sdk_ecrpublic::Client),
}

/// An ECR client bound to one region and one set of credentials.
#[derive(Clone, Debug)]
pub struct Ecr {
    client: Client,
    registry_ids: Vec<String>,
    region: String,
    /// The host ECR calls go to, for messages.
    endpoint_host: String,
    /// The proxy ECR calls go through (without credentials), for messages; `None` when they go directly.
    proxy: Option<String>,
}

impl Ecr {
    /// Builds the client. Loads the default chain lazily: no network call happens until the first request.
    /// `endpoint` overrides the ECR endpoint (otherwise `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL` apply).
    /// Every call of the client, of its credential providers and of STS goes through `http`. `region` is the one
    /// [`resolve_region`] gave (us-east-1 for ECR Public).
    pub async fn new(
        http: &AwsHttp,
        region: String,
        registry_ids: Vec<String>,
        assume_role: Option<&AssumeRole>,
        endpoint: Option<&str>,
        public: bool,
    ) -> Ecr {
        let base: SdkConfig = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .http_client(http.client())
            .timeout_config(timeouts())
            .load()
            .await;
        let provider = assume_role.map(|role| RoleProvider { role: role.clone(), base: base.clone() });
        let client = match public {
            false => {
                let mut config = aws_sdk_ecr::config::Builder::from(&base);
                if let Some(provider) = provider {
                    config = config.credentials_provider(provider);
                }
                if let Some(endpoint) = endpoint {
                    config = config.endpoint_url(endpoint);
                }
                Client::Private(aws_sdk_ecr::Client::from_conf(config.build()))
            }
            true => {
                let mut config = aws_sdk_ecrpublic::config::Builder::from(&base);
                if let Some(provider) = provider {
                    config = config.credentials_provider(provider);
                }
                if let Some(endpoint) = endpoint {
                    config = config.endpoint_url(endpoint);
                }
                Client::Public(aws_sdk_ecrpublic::Client::from_conf(config.build()))
            }
        };
        let endpoint_url = endpoint_url(endpoint, &region, public);
        let proxy = http.proxies().proxy_for(&endpoint_url);
        let endpoint_host = host_of(&endpoint_url);
        Ecr { client, registry_ids, region, endpoint_host, proxy }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The host ECR calls go to.
    pub fn endpoint_host(&self) -> &str {
        &self.endpoint_host
    }

    /// The proxy ECR calls go through, without credentials; `None` when they go directly.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// Calls GetAuthorizationToken and decodes every entry. Any malformed entry fails the whole call, so that
    /// Rancher is never touched with a partial or bad answer.
    pub async fn fetch_tokens(&self) -> Result<Vec<RegistryToken>, EcrError> {
        let tokens = match &self.client {
            Client::Private(client) => self.fetch_private(client).await?,
            Client::Public(client) => self.fetch_public(client).await?,
        };
        for token in &tokens {
            redact::register_password(&token.username, secrecy::ExposeSecret::expose_secret(&token.password));
        }
        Ok(tokens)
    }

    async fn fetch_private(&self, client: &aws_sdk_ecr::Client) -> Result<Vec<RegistryToken>, EcrError> {
        let mut request = client.get_authorization_token();
        if !self.registry_ids.is_empty() {
            // Deprecated in the SDK but still honoured by the service, and the only way to get one token per
            // account (see the reference notes on GetAuthorizationToken).
            #[allow(deprecated)]
            {
                request = request.set_registry_ids(Some(self.registry_ids.clone()));
            }
        }
        let output = request.send().await.map_err(|e| describe_sdk_error(e, &self.endpoint_host, &self.proxy))?;
        let data = output.authorization_data();
        if data.is_empty() {
            return Err(EcrError::Empty);
        }
        data.iter()
            .enumerate()
            .map(|(index, entry)| {
                let expires_at = entry.expires_at().and_then(|at| SystemTime::try_from(*at).ok());
                decode(index, entry.authorization_token(), entry.proxy_endpoint(), expires_at)
            })
            .collect()
    }

    /// ECR Public's answer has one entry and no endpoint: the token is for `public.ecr.aws`.
    async fn fetch_public(&self, client: &aws_sdk_ecrpublic::Client) -> Result<Vec<RegistryToken>, EcrError> {
        let output = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| describe_sdk_error(e, &self.endpoint_host, &self.proxy))?;
        let entry = output.authorization_data().ok_or(EcrError::Empty)?;
        let expires_at = entry.expires_at().and_then(|at| SystemTime::try_from(*at).ok());
        let endpoint = format!("https://{PUBLIC_HOST}");
        Ok(vec![decode(0, entry.authorization_token(), Some(&endpoint), expires_at)?])
    }
}

/// The URL of the ECR endpoint: the source's override, else the standard variables aws-config honours, else the
/// regional default.
fn endpoint_url(endpoint: Option<&str>, region: &str, public: bool) -> String {
    let specific = if public { "AWS_ENDPOINT_URL_ECR_PUBLIC" } else { "AWS_ENDPOINT_URL_ECR" };
    let from_env =
        || [specific, "AWS_ENDPOINT_URL"].iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    match endpoint.map(str::to_string).or_else(from_env) {
        Some(url) => url,
        None if public => format!("https://api.ecr-public.{region}.amazonaws.com"),
        None => format!("https://api.ecr.{region}.amazonaws.com"),
    }
}

/// `host` or `host:port` of a URL, for messages; the text itself when it is not a URL.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string())
}

/// Assumes the role on top of the default chain. The ExternalId file (if any) is read again before each
/// AssumeRole, so that a rotated ExternalId is used from the next assumption on without a restart. The ECR
/// client caches the role's credentials until they near expiry; this is asked only then.
#[derive(Debug)]
struct RoleProvider {
    role: AssumeRole,
    base: SdkConfig,
}

impl ProvideCredentials for RoleProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(self.role.role_arn.clone())
                .session_name(self.role.session_name.clone())
                .configure(&self.base);
            if let Some(duration) = self.role.duration {
                builder = builder.session_length(duration);
            }
            if let Some(external_id) = &self.role.external_id {
                external_id.reload();
                builder = builder.external_id(external_id.expose());
            }
            builder.build().await.provide_credentials().await
        })
    }
}

/// One failure of an AWS call, in words: never a Debug dump of the SDK's structures, never an answer body.
fn describe_sdk_error<E>(err: SdkError<E, HttpResponse>, host: &str, proxy: &Option<String>) -> EcrError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    if let (SdkError::ServiceError(_), Some(code)) = (&err, err.code()) {
        return EcrError::Service {
            code: redact::outside(code),
            message: redact::outside(err.message().unwrap_or("no message")),
        };
    }
    // An answer the SDK could not read: a success whose body is not what ECR sends, or an error status whose
    // body is not an AWS error. The SDK's own message may quote the body; only the field is named here.
    if let Some(raw) = err.raw_response() {
        let status = raw.status();
        let problem = match (status.is_success(), raw.body().bytes()) {
            (true, Some(body)) => malformed_field(body),
            (true, None) => "the body could not be read".into(),
            (false, _) => format!("HTTP {} without an AWS error in the body", status.as_u16()),
        };
        return EcrError::BadAnswer { host: host.to_string(), problem };
    }
    let causes = causes(&err);
    if let Some(credentials) = causes.iter().find_map(|e| e.downcast_ref::<CredentialsError>()) {
        return match credentials {
            CredentialsError::CredentialsNotLoaded(_) => EcrError::NoCredentials { tried: credential_sources_tried() },
            CredentialsError::ProviderTimedOut(_) => EcrError::Credentials(
                "the credential provider timed out (instance metadata, STS or a container \
                                       endpoint did not answer in time)"
                    .into(),
            ),
            _ => EcrError::Credentials(with_container_hint(in_words(&causes_of(credentials)))),
        };
    }
    let timeout =
        matches!(&err, SdkError::TimeoutError(_)) || matches!(&err, SdkError::DispatchFailure(d) if d.is_timeout());
    let unreachable = |reason| EcrError::Unreachable { host: host.to_string(), proxy: proxy.clone(), reason };
    if timeout {
        return unreachable("timed out".into());
    }
    // Through a proxy, every failure to connect is one of the way there (the proxy refused, could not reach
    // AWS, or its TLS is not trusted).
    if matches!(&err, SdkError::DispatchFailure(d) if d.is_io() || (proxy.is_some() && !d.is_user())) {
        return unreachable(in_words(&causes));
    }
    EcrError::Request { host: host.to_string(), reason: in_words(&causes) }
}

/// A refusal from the container credentials endpoint (EKS Pod Identity agent, ECS) says only its status: name
/// what the endpoint checks.
fn with_container_hint(words: String) -> String {
    let from_container = words.contains("HTTP credential provider")
        && std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some_and(|v| !v.is_empty());
    match from_container {
        true => format!(
            "{words}; the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI: the EKS Pod Identity \
             agent) refused: check the pod identity association of this ServiceAccount and the token in \
             AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
        ),
        false => words,
    }
}

/// An error and its causes, outermost first.
fn causes<'a>(err: &'a (dyn std::error::Error + 'static)) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut chain = vec![err];
    let mut current = err.source();
    while let Some(cause) = current {
        chain.push(cause);
        current = cause.source();
    }
    chain
}

fn causes_of<'a>(err: &'a CredentialsError) -> Vec<&'a (dyn std::error::Error + 'static)> {
    causes(err)
}

/// What went wrong, from the innermost causes that say something: a DNS failure, a refused connection, a TLS
/// problem, an STS refusal. Cleaned and capped like all outside text.
fn in_words(chain: &[&(dyn std::error::Error + 'static)]) -> String {
    let texts: Vec<String> = chain
        .iter()
        .map(|e| e.to_string())
        .filter(|t| !t.is_empty() && !matches!(t.as_str(), "dispatch failure" | "io error" | "other" | "service error"))
        .collect();
    let mut words = texts.join(": ");
    if words.is_empty() {
        words = "no reason given".into();
    }
    let lower = words.to_ascii_lowercase();
    // hyper-util's CONNECT tunnel says only "tunnel error: …"; say what the proxy did.
    if lower.contains("proxy authorization required") {
        return "the proxy refused the CONNECT tunnel with 407 Proxy Authentication Required; give the proxy's user \
                and password in the proxy URL (http://user:password@host:port)"
            .into();
    }
    if lower.contains("tunnel error: unsuccessful") {
        return "the proxy refused the CONNECT tunnel (it answered other than 200)".into();
    }
    for cause in chain.iter().rev() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            let reason = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                std::io::ErrorKind::TimedOut => "timed out".to_string(),
                _ => io.to_string(),
            };
            return redact::outside(&reason);
        }
    }
    let class = if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        "name lookup failed: "
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        "TLS failed: "
    } else {
        ""
    };
    redact::outside(&format!("{class}{words}"))
}

/// The default credential chain's sources and, from the environment, why each had nothing.
fn credential_sources_tried() -> String {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let environment = match (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY")) {
        (false, false) => "environment (AWS_ACCESS_KEY_ID not set)",
        (true, false) => "environment (AWS_SECRET_ACCESS_KEY not set)",
        (false, true) => "environment (AWS_ACCESS_KEY_ID not set)",
        (true, true) => "environment (keys set but not accepted)",
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let files = [
        std::env::var_os("AWS_CONFIG_FILE").map(Into::into).unwrap_or_else(|| home.join(".aws/config")),
        std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(Into::into)
            .unwrap_or_else(|| home.join(".aws/credentials")),
    ];
    let profile = match files.iter().any(|f: &std::path::PathBuf| f.exists()) {
        true => format!("profile '{profile}' (no credentials in it)"),
        false => format!("profile '{profile}' (no ~/.aws/config or ~/.aws/credentials)"),
    };
    let web_identity = match set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        true => "web identity (token file set but not usable)",
        false => "web identity (AWS_WEB_IDENTITY_TOKEN_FILE not set)",
    };
    let container = match set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        true => "container credentials (endpoint set but gave nothing)",
        false => "container credentials (AWS_CONTAINER_CREDENTIALS_*_URI not set)",
    };
    let imds = match std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        true => "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)",
        false => "instance metadata (not reachable, or no instance role)",
    };
    format!("{environment}, {profile}, {web_identity}, {container}, {imds}")
}

/// Names what in an unparseable GetAuthorizationToken answer is not as ECR sends it: the field, never its value.
fn malformed_field(body: &[u8]) -> String {
    use serde_json::Value;
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return format!("not JSON ({} bytes)", body.len());
    };
    let Some(entries) = value.get("authorizationData") else {
        return "no field authorizationData".into();
    };
    let Some(entries) = entries.as_array() else {
        return "field authorizationData is not a list".into();
    };
    for (index, entry) in entries.iter().enumerate() {
        let Some(entry) = entry.as_object() else {
            return format!("authorizationData[{index}] is not an object");
        };
        for (field, expected) in
            [("authorizationToken", "a string"), ("proxyEndpoint", "a string"), ("expiresAt", "a number")]
        {
            let fits = match entry.get(field) {
                None | Some(Value::Null) => true,
                Some(Value::String(_)) => expected == "a string",
                Some(Value::Number(_)) => expected == "a number",
                Some(_) => false,
            };
            if !fits {
                return format!("field authorizationData[{index}].{field} is not {expected}");
            }
        }
    }
    "the SDK could not read it (no field could be named)".into()
}

/// Decodes one authorization entry: base64 of `user:password`, split at the first colon.
pub fn decode(
    index: usize,
    token: Option<&str>,
    proxy_endpoint: Option<&str>,
    expires_at: Option<SystemTime>,
) -> Result<RegistryToken, EcrError> {
    let malformed = |problem: &str| EcrError::Malformed { index, problem: problem.to_string() };
    let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| malformed("no authorizationToken"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| malformed("authorizationToken is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| malformed("authorizationToken does not decode to text"))?;
    let (username, password) = text
        .split_once(':')
        .ok_or_else(|| malformed("the decoded authorizationToken has no ':' between user name and password"))?;
    if username.is_empty() {
        return Err(malformed("the decoded authorizationToken has an empty user name"));
    }
    if password.is_empty() {
        return Err(malformed("the decoded authorizationToken has an empty password"));
    }
    let endpoint = proxy_endpoint.ok_or_else(|| malformed("no proxyEndpoint"))?;
    let host = address::normalize(endpoint).ok_or_else(|| EcrError::Malformed {
        index,
        problem: format!("proxyEndpoint '{endpoint}' does not name a host"),
    })?;
    Ok(RegistryToken {
        addresses: vec![host.clone()],
        host,
        username: username.to_string(),
        password: SecretString::from(password.to_string()),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    const ENDPOINT: &str = "https://123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn decodes_user_password_and_host() {
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_072_000);
        let token = decode(0, Some(&b64("AWS:eyJwYXlsb2FkIjoi:with:colons==")), Some(ENDPOINT), Some(expires)).unwrap();
        assert_eq!(token.host, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(token.username, "AWS");
        assert_eq!(token.password.expose_secret(), "eyJwYXlsb2FkIjoi:with:colons==");
        assert_eq!(token.expires_at, Some(expires));
    }

    #[test]
    fn malformed_tokens_are_errors_that_never_show_the_secret() {
        let secret = "s3cr3t-password-value";
        let cases = [
            (Some(b64(&format!("AWS{secret}"))), "no ':'"),
            (Some(format!("%%{secret}%%")), "not base64"),
            (Some(b64(&format!(":{secret}"))), "empty user name"),
            (Some(b64("AWS:")), "empty password"),
            (Some(String::new()), "no authorizationToken"),
            (None, "no authorizationToken"),
        ];
        for (token, expected) in cases {
            let err = decode(3, token.as_deref(), Some(ENDPOINT), None).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expected), "{text}");
            assert!(text.contains("#3"), "{text}");
            assert!(!text.contains(secret) && !format!("{err:?}").contains(secret), "{text}");
        }
    }

    #[test]
    fn a_missing_or_bad_proxy_endpoint_is_an_error() {
        assert!(decode(0, Some(&b64("AWS:pw")), None, None).is_err());
        assert!(decode(0, Some(&b64("AWS:pw")), Some("not a host"), None).is_err());
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let token = decode(0, Some(&b64("AWS:hunter2hunter2")), Some(ENDPOINT), None).unwrap();
        assert!(!format!("{token:?}").contains("hunter2"));
    }

    #[test]
    fn access_denied_is_permanent_and_throttling_is_not() {
        let denied = EcrError::Service { code: "AccessDeniedException".into(), message: "no".into() };
        let throttled = EcrError::Service { code: "ThrottlingException".into(), message: "slow".into() };
        assert!(denied.is_permanent());
        assert_eq!(denied.kind(), "denied");
        assert!(!throttled.is_permanent());
        assert_eq!(throttled.kind(), "throttled");
        assert!(!EcrError::Empty.is_permanent());
    }
}
