//! The AWS side: credentials, ECR GetAuthorizationToken, and decoding its answer into [`RegistryToken`]s.
//!
//! Credentials come from aws-config's default chain (environment, shared files and `AWS_PROFILE`, web
//! identity, ECS container credentials, EC2 instance metadata), optionally with a role assumed on top. The
//! standard endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL_STS`) are honoured
//! by aws-config itself. Nothing here talks to Rancher.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_config::meta::region::ProvideRegion;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use base64::Engine as _;
use secrecy::SecretString;

use crate::address;
use crate::config::{AssumeRole, AwsSettings, ConfigError};

/// The password for one ECR registry, decoded from an authorization token.
#[derive(Clone)]
pub struct RegistryToken {
    /// The registry host from `proxyEndpoint`, normalized (see [`crate::address`]).
    pub host: String,
    /// Always `AWS` for ECR; kept as given.
    pub username: String,
    pub password: SecretString,
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for RegistryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryToken")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no usable token came from ECR. Never carries the token or the password.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("ECR GetAuthorizationToken was refused: {code}: {message}")]
    Service { code: String, message: String },
    #[error("ECR GetAuthorizationToken failed: {0}")]
    Request(String),
    #[error("ECR GetAuthorizationToken answered with no authorization data")]
    Empty,
    #[error("ECR authorization data #{index} is malformed: {problem}")]
    Malformed { index: usize, problem: String },
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

impl EcrError {
    /// True when the error needs a person to act (a policy, a key, a setting).
    pub fn is_permanent(&self) -> bool {
        match self {
            EcrError::Service { code, .. } => PERMANENT_CODES.contains(&code.as_str()),
            EcrError::Request(_) => false,
            EcrError::Empty | EcrError::Malformed { .. } => false,
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EcrError::Service { code, .. } if code.contains("Throttl") => "throttled",
            EcrError::Service { .. } if self.is_permanent() => "denied",
            EcrError::Service { .. } => "service",
            EcrError::Request(_) => "request",
            EcrError::Empty | EcrError::Malformed { .. } => "malformed",
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

/// The region: `AWS_REGION` (already in `settings`), then `AWS_DEFAULT_REGION`, then the AWS profile. Reads the
/// environment and files only, never the network, so a missing region is a configuration error at start-up.
pub async fn resolve_region(settings: &AwsSettings) -> Result<String, ConfigError> {
    if let Some(region) = &settings.region {
        return Ok(region.clone());
    }
    let from_env = aws_config::environment::EnvironmentVariableRegionProvider::new().region().await;
    let region = match from_env {
        Some(region) => Some(region),
        None => aws_config::profile::ProfileFileRegionProvider::new().region().await,
    };
    region.map(|r| r.to_string()).filter(|r| !r.trim().is_empty()).ok_or(ConfigError {
        setting: "AWS_REGION".into(),
        problem: "not set; set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile)".into(),
    })
}

/// An ECR client bound to one region and one set of credentials.
#[derive(Clone, Debug)]
pub struct Ecr {
    client: aws_sdk_ecr::Client,
    registry_ids: Vec<String>,
    region: String,
}

impl Ecr {
    /// Builds the client. Loads the default chain lazily: no network call happens until the first request.
    /// `endpoint` overrides the ECR endpoint (otherwise `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL` apply).
    pub async fn new(
        region: String,
        registry_ids: Vec<String>,
        assume_role: Option<&AssumeRole>,
        endpoint: Option<&str>,
    ) -> Ecr {
        let base: SdkConfig = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .timeout_config(timeouts())
            .load()
            .await;
        let mut ecr_config = aws_sdk_ecr::config::Builder::from(&base);
        if let Some(role) = assume_role {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
                .session_name(role.session_name.clone())
                .configure(&base);
            if let Some(duration) = role.duration {
                provider = provider.session_length(duration);
            }
            if let Some(external_id) = &role.external_id {
                provider = provider.external_id(secrecy::ExposeSecret::expose_secret(external_id).to_string());
            }
            ecr_config = ecr_config.credentials_provider(provider.build().await);
        }
        if let Some(endpoint) = endpoint {
            ecr_config = ecr_config.endpoint_url(endpoint);
        }
        Ecr { client: aws_sdk_ecr::Client::from_conf(ecr_config.build()), registry_ids, region }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls GetAuthorizationToken and decodes every entry. Any malformed entry fails the whole call, so that
    /// Rancher is never touched with a partial or bad answer.
    pub async fn fetch_tokens(&self) -> Result<Vec<RegistryToken>, EcrError> {
        let mut request = self.client.get_authorization_token();
        if !self.registry_ids.is_empty() {
            // Deprecated in the SDK but still honoured by the service, and the only way to get one token per
            // account (see the reference notes on GetAuthorizationToken).
            #[allow(deprecated)]
            {
                request = request.set_registry_ids(Some(self.registry_ids.clone()));
            }
        }
        let output = request.send().await.map_err(describe_sdk_error)?;
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
}

fn describe_sdk_error<E, R>(err: SdkError<E, R>) -> EcrError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    if let (SdkError::ServiceError(_), Some(code)) = (&err, err.code()) {
        return EcrError::Service {
            code: code.to_string(),
            message: err.message().unwrap_or("no message").to_string(),
        };
    }
    EcrError::Request(aws_smithy_types::error::display::DisplayErrorContext(&err).to_string())
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
