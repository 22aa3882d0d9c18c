//! Registry addresses: how a registry host typed into Rancher is compared with the host of an ECR endpoint.
//!
//! Users type registry addresses in many forms (`HOST`, `https://HOST/`, `HOST:443`, `https://HOST/v2/`, in
//! any case). Both sides are reduced to a canonical `host[:port]` before comparing; the default HTTPS port is
//! dropped because registries are always reached over HTTPS.

use url::Url;

/// Reduces a registry address to lower-case `host[:port]`, without scheme, path or the default port 443.
/// Returns `None` when the address does not name a host (the caller skips it with a warning).
pub fn normalize(address: &str) -> Option<String> {
    let trimmed = address.trim();
    if trimmed.is_empty() || trimmed.chars().any(char::is_whitespace) {
        return None;
    }
    let lower = trimmed.to_ascii_lowercase();
    let (scheme, rest) = match lower.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some(_) => return None,
        None => ("https", lower.as_str()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let url = Url::parse(&format!("{scheme}://{authority}")).ok()?;
    let host = url.host_str()?.trim_end_matches('.');
    if host.is_empty() {
        return None;
    }
    // `Url` already drops a port that is the scheme's default; 443 is the registry default for either scheme.
    match url.port() {
        Some(443) | None => Some(host.to_string()),
        Some(port) => Some(format!("{host}:{port}")),
    }
}

/// True when `address` (as stored in Rancher) names `host` (already normalized).
pub fn matches(address: &str, host: &str) -> bool {
    normalize(address).is_some_and(|a| a == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn every_form_of_an_ecr_address_matches() {
        for form in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM",
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
            "HTTPS://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/",
            "http://123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com:443/",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/some/repo",
            "  123456789012.dkr.ecr.us-east-1.amazonaws.com  ",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.",
        ] {
            assert!(matches(form, HOST), "{form:?} should match");
        }
    }

    #[test]
    fn other_hosts_and_ports_do_not_match() {
        for form in [
            "223456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:5000",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "evil.com/123456789012.dkr.ecr.us-east-1.amazonaws.com",
        ] {
            assert!(!matches(form, HOST), "{form:?} should not match");
        }
    }

    #[test]
    fn a_custom_port_is_kept() {
        assert_eq!(normalize("Registry.Local:5000/").as_deref(), Some("registry.local:5000"));
    }

    #[test]
    fn malformed_addresses_are_none_not_errors() {
        for bad in
            ["", "   ", "https://", "ftp://host", "user:pw@host", "host name", "http://[::1", "/just/a/path", "://x"]
        {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
