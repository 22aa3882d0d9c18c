//! The one HTTP client of every AWS call (ECR, ECR Public, STS, web identity, instance metadata, container
//! credentials), configured once at start-up from the environment:
//!
//! - **Proxy**: `HTTPS_PROXY`/`https_proxy` for `https://` endpoints, `HTTP_PROXY`/`http_proxy` for `http://` ones,
//!   `ALL_PROXY`/`all_proxy` for both when the specific one is unset, `NO_PROXY`/`no_proxy` for hosts to reach
//!   directly (host suffixes, IPs, CIDRs, `*`), read as reqwest reads them for the Rancher side, so that both sides
//!   take the same way. TLS goes through `CONNECT`; proxy credentials come from the URL's user info. The link-local
//!   metadata endpoints (instance metadata, ECS and EKS Pod Identity container credentials) and the host of
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI` are always reached directly.
//! - **Trust**: the system's roots, plus the certificates of `SSL_CERT_FILE` and `AWS_CA_BUNDLE` (a proxy that
//!   inspects TLS signs with its own CA). A file that cannot be read or holds no usable certificate is a
//!   configuration error naming its variable.
//!
//! The client is the SDK's own (hyper and rustls with aws-lc, as the SDK's default), with its proxy connector.

use std::fmt;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use hyper_util::client::proxy::matcher::Matcher;

use crate::redact;

/// Metadata endpoints that must never go through a proxy: EC2 instance metadata (IPv4, IPv6), ECS task
/// credentials, EKS Pod Identity (IPv4, IPv6).
const LINK_LOCAL: &[&str] = &["169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23"];

/// Where the system's trust store is usually kept, for when `SSL_CERT_FILE` makes rustls-native-certs read that
/// file *instead of* the system store: its certificates are added to the system's, not put in their place.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A setting of the AWS HTTP client that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct AwsHttpError {
    pub setting: &'static str,
    pub problem: String,
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> AwsHttpError {
    AwsHttpError { setting, problem: problem.into() }
}

/// A proxy URL as given, and the same without its user info, which is the only form ever shown.
#[derive(Clone, PartialEq, Eq)]
struct ProxyUrl {
    url: String,
    shown: String,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl ProxyUrl {
    /// Parses a proxy variable's value. A value without a scheme means `http://`, as curl and Go read it.
    fn parse(variable: &'static str, value: &str) -> Result<ProxyUrl, AwsHttpError> {
        let value = value.trim();
        let with_scheme = match value.contains("://") {
            true => value.to_string(),
            false => format!("http://{value}"),
        };
        let mut url = url::Url::parse(&with_scheme)
            .map_err(|e| invalid(variable, format!("not a proxy URL ({e}); expected http://host:port")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                variable,
                format!("proxy scheme '{}' is not supported for AWS calls; use http:// or https://", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(variable, "the proxy URL names no host"));
        }
        if let Some(password) = url.password() {
            let user = percent_decode(url.username());
            let password = percent_decode(password);
            redact::register_pair(&user, &password);
            redact::register(url.password().unwrap_or_default());
        }
        let url_text = url.as_str().trim_end_matches('/').to_string();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let shown = url.as_str().trim_end_matches('/').to_string();
        Ok(ProxyUrl { url: url_text, shown })
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The proxy settings of the environment, as AWS calls use them.
#[derive(Clone, Debug)]
pub struct Proxies {
    https: Option<ProxyUrl>,
    http: Option<ProxyUrl>,
    /// `NO_PROXY` as given, plus the metadata endpoints.
    no_proxy: String,
}

impl Proxies {
    /// Reads `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (each also lower-case; the upper-case one
    /// wins, as in Go and reqwest). `HTTP_PROXY` is ignored in a CGI environment (`REQUEST_METHOD` set), as
    /// every client does since httpoxy.
    pub fn from_env() -> Result<Proxies, AwsHttpError> {
        Proxies::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Proxies, AwsHttpError> {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| get(name).filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
        };
        let parse =
            |found: Option<(&'static str, String)>| found.map(|(name, v)| ProxyUrl::parse(name, &v)).transpose();
        let all = parse(first(["ALL_PROXY", "all_proxy"]))?;
        let https = parse(first(["HTTPS_PROXY", "https_proxy"]))?.or_else(|| all.clone());
        let cgi = get("REQUEST_METHOD").is_some();
        let http = match cgi {
            true => None,
            false => parse(first(["HTTP_PROXY", "http_proxy"]))?,
        }
        .or(all);
        let mut no_proxy: Vec<String> = first(["NO_PROXY", "no_proxy"])
            .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        no_proxy.extend(LINK_LOCAL.iter().map(|h| h.to_string()));
        let container = get("AWS_CONTAINER_CREDENTIALS_FULL_URI").and_then(|u| url::Url::parse(&u).ok());
        if let Some(host) = container.as_ref().and_then(|u| u.host_str()) {
            no_proxy.push(host.trim_start_matches('[').trim_end_matches(']').to_string());
        }
        Ok(Proxies { https, http, no_proxy: no_proxy.join(",") })
    }

    /// The SDK's proxy configuration. The SDK takes one proxy URL; when `HTTPS_PROXY` and `HTTP_PROXY` differ,
    /// `HTTPS_PROXY` is the one that counts: every AWS API is HTTPS, and the plain-HTTP endpoints (instance and
    /// container metadata) are never proxied.
    fn sdk_config(&self) -> Result<ProxyConfig, AwsHttpError> {
        let (variable, config) = match self.used() {
            (None, None) => return Ok(ProxyConfig::disabled()),
            (Some(https), Some(_)) => ("HTTPS_PROXY", ProxyConfig::all(https.url.as_str())),
            (Some(https), None) => ("HTTPS_PROXY", ProxyConfig::https(https.url.as_str())),
            (None, Some(http)) => ("HTTP_PROXY", ProxyConfig::http(http.url.as_str())),
        };
        let config = config.map_err(|e| invalid(variable, format!("not a usable proxy URL: {e}")))?;
        Ok(config.no_proxy(&self.no_proxy))
    }

    /// The proxies AWS calls really use, for `https://` and for `http://` endpoints: the SDK takes one proxy URL,
    /// so `HTTP_PROXY` counts only when it is the same as `HTTPS_PROXY` or alone.
    fn used(&self) -> (Option<&ProxyUrl>, Option<&ProxyUrl>) {
        match (&self.https, &self.http) {
            (Some(https), Some(http)) if https == http => (Some(https), Some(https)),
            (Some(https), _) => (Some(https), None),
            (None, http) => (None, http.as_ref()),
        }
    }

    /// The proxy a request to `url` goes through, without credentials; `None` when it goes directly.
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        let uri: http::Uri = url.parse().ok()?;
        let (https, http) = self.used();
        let mut builder = Matcher::builder().no(self.no_proxy.clone());
        if let Some(https) = https {
            builder = builder.https(https.shown.clone());
        }
        if let Some(http) = http {
            builder = builder.http(http.shown.clone());
        }
        builder.build().intercept(&uri).map(|intercept| redact::proxy_uri(intercept.uri()))
    }
}

/// The HTTP client of every AWS call and the proxy settings it was built with.
#[derive(Clone, Debug)]
pub struct AwsHttp {
    client: SharedHttpClient,
    proxies: Proxies,
    /// The variables whose CA certificates are trusted besides the system's.
    extra_cas: Vec<&'static str>,
}

impl AwsHttp {
    /// Reads the proxy and CA settings from the environment and builds the client. Makes no connection.
    pub fn from_env() -> Result<AwsHttp, AwsHttpError> {
        let proxies = Proxies::from_env()?;
        let mut trust = TrustStore::empty().with_native_roots(true);
        let mut extra_cas = Vec::new();
        if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
            // rustls-native-certs reads this file instead of the system store: add the system store back.
            certificates("SSL_CERT_FILE", path.as_ref())?;
            if let Some(system) = SYSTEM_BUNDLES.iter().find_map(|p| certificates("", std::path::Path::new(p)).ok()) {
                trust = trust.with_pem_certificate(system);
            }
            extra_cas.push("SSL_CERT_FILE");
        }
        if let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()) {
            trust = trust.with_pem_certificate(certificates("AWS_CA_BUNDLE", path.as_ref())?);
            extra_cas.push("AWS_CA_BUNDLE");
        }
        let context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| invalid("AWS_CA_BUNDLE", format!("cannot be used: {e}")))?;
        let proxy = proxies.sdk_config()?;
        let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
            let mut builder = aws_smithy_http_client::Connector::builder()
                // A cycle makes one or two AWS calls hours apart: pooling saves nothing, and a pool's idle
                // reaper would wake the idle daemon twice after each cycle.
                .pool_max_idle_per_host(0)
                .proxy_config(proxy.clone());
            builder.set_connector_settings(settings.cloned());
            if let Some(sleep) = components.and_then(|c| c.sleep_impl()) {
                builder.set_sleep_impl(Some(sleep));
            }
            builder.tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context.clone()).build()
        });
        Ok(AwsHttp { client, proxies, extra_cas })
    }

    pub fn client(&self) -> SharedHttpClient {
        self.client.clone()
    }

    pub fn proxies(&self) -> &Proxies {
        &self.proxies
    }

    /// The variables whose certificates are trusted besides the system's (`SSL_CERT_FILE`, `AWS_CA_BUNDLE`).
    pub fn extra_cas(&self) -> &[&'static str] {
        &self.extra_cas
    }
}

/// Reads a PEM bundle and checks that every certificate in it can be a trust anchor, so that the SDK (which
/// panics on an unusable one) is only ever given good ones. Returns the file's bytes.
fn certificates(variable: &'static str, path: &std::path::Path) -> Result<Vec<u8>, AwsHttpError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let shown = redact::outside(&path.to_string_lossy());
    let pem = std::fs::read(path).map_err(|e| invalid(variable, format!("cannot read '{shown}': {e}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(variable, format!("'{shown}' is not a PEM certificate bundle: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(variable, format!("'{shown}' holds no PEM certificate")));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (index, certificate) in certificates.into_iter().enumerate() {
        roots.add(certificate).map_err(|e| {
            invalid(variable, format!("certificate #{} in '{shown}' cannot be used as a CA: {e}", index + 1))
        })?;
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxies(vars: &[(&str, &str)]) -> Result<Proxies, AwsHttpError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Proxies::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn https_endpoints_go_through_https_proxy_and_metadata_never_does() {
        let p = proxies(&[("HTTPS_PROXY", "http://proxy:3128"), ("HTTP_PROXY", "http://proxy:3128")]).unwrap();
        assert_eq!(p.proxy_for("https://api.ecr.us-east-1.amazonaws.com").as_deref(), Some("http://proxy:3128"));
        assert_eq!(p.proxy_for("https://sts.amazonaws.com/").as_deref(), Some("http://proxy:3128"));
        for metadata in [
            "http://169.254.169.254/latest/api/token",
            "http://169.254.170.2/v2/credentials/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::254]/latest/api/token",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert_eq!(p.proxy_for(metadata), None, "{metadata}");
        }
    }

    #[test]
    fn no_proxy_takes_suffixes_ips_cidrs_and_star() {
        let p = proxies(&[
            ("https_proxy", "proxy.corp:3128"),
            ("no_proxy", ".internal, amazonaws.com.cn,10.0.0.0/8,192.168.1.7"),
        ])
        .unwrap();
        assert_eq!(p.proxy_for("https://api.ecr.us-east-1.amazonaws.com").as_deref(), Some("http://proxy.corp:3128"));
        assert_eq!(p.proxy_for("https://api.ecr.cn-north-1.amazonaws.com.cn"), None);
        assert_eq!(p.proxy_for("https://vpce.internal"), None);
        assert_eq!(p.proxy_for("https://10.1.2.3"), None);
        assert_eq!(p.proxy_for("https://192.168.1.7:8443"), None);
        assert_eq!(p.proxy_for("https://192.168.1.8"), Some("http://proxy.corp:3128".into()));
        let star = proxies(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "*")]).unwrap();
        assert_eq!(star.proxy_for("https://api.ecr.us-east-1.amazonaws.com"), None);
    }

    #[test]
    fn upper_case_wins_http_proxy_is_only_for_http_and_cgi_ignores_it() {
        let p = proxies(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2")]).unwrap();
        assert_eq!(p.proxy_for("https://x.amazonaws.com").as_deref(), Some("http://upper:1"));
        let http_only = proxies(&[("HTTP_PROXY", "http://proxy:3128")]).unwrap();
        assert_eq!(http_only.proxy_for("https://api.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(http_only.proxy_for("http://ecr.local:8080").as_deref(), Some("http://proxy:3128"));
        let cgi = proxies(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]).unwrap();
        assert_eq!(cgi.proxy_for("http://ecr.local:8080"), None);
        let all = proxies(&[("ALL_PROXY", "http://all:9")]).unwrap();
        assert_eq!(all.proxy_for("https://api.ecr.us-east-1.amazonaws.com").as_deref(), Some("http://all:9"));
    }

    #[test]
    fn with_two_different_proxies_the_one_the_sdk_uses_is_the_one_shown() {
        let p = proxies(&[("HTTPS_PROXY", "http://secure:1"), ("HTTP_PROXY", "http://plain:2")]).unwrap();
        assert_eq!(p.proxy_for("https://api.ecr.us-east-1.amazonaws.com").as_deref(), Some("http://secure:1"));
        assert_eq!(p.proxy_for("http://localstack:4566"), None, "the SDK takes HTTPS_PROXY only: http goes direct");
    }

    #[test]
    fn credentials_are_never_shown_and_are_registered_as_secrets() {
        let p = proxies(&[("HTTPS_PROXY", "http://proxyuser:Pr0xy%40pass-Zq@proxy:3128")]).unwrap();
        let shown = p.proxy_for("https://api.ecr.us-east-1.amazonaws.com").unwrap();
        assert_eq!(shown, "http://proxy:3128");
        assert!(!format!("{p:?}").contains("Pr0xy"), "{p:?}");
        assert_eq!(redact::outside("the password is Pr0xy@pass-Zq"), format!("the password is {}", redact::REDACTED));
    }

    #[test]
    fn the_container_credentials_host_is_reached_directly() {
        let p = proxies(&[
            ("HTTP_PROXY", "http://proxy:3128"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:40123/v1/credentials"),
        ])
        .unwrap();
        assert_eq!(p.proxy_for("http://127.0.0.1:40123/v1/credentials"), None);
        assert_eq!(p.proxy_for("http://127.0.0.2:40123/").as_deref(), Some("http://proxy:3128"));
    }

    #[test]
    fn bad_proxy_urls_name_their_variable() {
        let err = proxies(&[("HTTPS_PROXY", "socks5://proxy:1080")]).unwrap_err();
        assert_eq!(err.setting, "HTTPS_PROXY");
        assert!(err.problem.contains("socks5"), "{err}");
        let err = proxies(&[("http_proxy", "http://")]).unwrap_err();
        assert_eq!(err.setting, "http_proxy");
        assert!(err.problem.contains("no host") || err.problem.contains("not a proxy URL"), "{err}");
    }

    #[test]
    fn ca_bundles_are_checked_before_the_sdk_sees_them() {
        let dir = std::env::temp_dir().join(format!("aws-http-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = certificates("AWS_CA_BUNDLE", &missing).unwrap_err();
        assert!(err.to_string().starts_with("AWS_CA_BUNDLE: cannot read"), "{err}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = certificates("SSL_CERT_FILE", &empty).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let err = certificates("AWS_CA_BUNDLE", &garbage).unwrap_err();
        assert!(err.to_string().contains("cannot be used as a CA"), "{err}");
        let good = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ca.pem");
        assert!(certificates("AWS_CA_BUNDLE", std::path::Path::new(good)).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
