//! Registry addresses: how a registry host typed into Rancher is compared with the host of an ECR endpoint.
//!
//! Users type registry addresses in many forms (`HOST`, `https://HOST/`, `HOST:443`, `https://HOST/v2/`, in
//! any case). Both sides are reduced to a canonical `host[:port]` before comparing; the default HTTPS port is
//! dropped because registries are always reached over HTTPS.
//!
//! One ECR registry (an account in a region) has several host names, and one token opens them all: the standard
//! host, the FIPS host, the dual-stack (IPv6) host and the dual-stack FIPS host, in each partition's domains
//! ([`EcrHost`]). Two addresses name the same registry when they are equal, or when both are ECR hosts of the
//! same account, region and partition. This is the pattern AWS's own credential helper uses.

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

/// The host forms of one ECR registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostForm {
    /// `<account>.dkr.ecr.<region>.amazonaws.com`
    Standard,
    /// `<account>.dkr-ecr.<region>.on.aws` (IPv6 and IPv4)
    DualStack,
    /// `<account>.dkr.ecr-fips.<region>.amazonaws.com`
    Fips,
    /// `<account>.dkr-ecr-fips.<region>.on.aws`
    DualStackFips,
}

impl HostForm {
    pub const ALL: [HostForm; 4] = [HostForm::Standard, HostForm::DualStack, HostForm::Fips, HostForm::DualStackFips];

    /// The name of the form in `ECR_HOST_FORMS`.
    pub fn name(self) -> &'static str {
        match self {
            HostForm::Standard => "standard",
            HostForm::DualStack => "dualstack",
            HostForm::Fips => "fips",
            HostForm::DualStackFips => "dualstack-fips",
        }
    }

    pub fn parse(name: &str) -> Option<HostForm> {
        HostForm::ALL.into_iter().find(|f| f.name() == name.trim().to_ascii_lowercase())
    }
}

/// The domains of an AWS partition: the standard one, and the dual-stack one where the partition has it.
struct Partition {
    name: &'static str,
    standard: &'static str,
    dual_stack: Option<&'static str>,
}

const PARTITIONS: [Partition; 7] = [
    Partition { name: "aws", standard: "amazonaws.com", dual_stack: Some("on.aws") },
    Partition { name: "aws-cn", standard: "amazonaws.com.cn", dual_stack: Some("on.amazonwebservices.com.cn") },
    Partition { name: "aws-eusc", standard: "amazonaws.eu", dual_stack: None },
    Partition { name: "aws-iso", standard: "c2s.ic.gov", dual_stack: None },
    Partition { name: "aws-iso-b", standard: "sc2s.sgov.gov", dual_stack: None },
    Partition { name: "aws-iso-e", standard: "cloud.adc-e.uk", dual_stack: None },
    Partition { name: "aws-iso-f", standard: "csp.hci.ic.gov", dual_stack: None },
];

/// An ECR registry as one of its host names gives it: account, region, partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
    partition: &'static str,
}

impl EcrHost {
    /// Reads an ECR registry host in any of its forms (normalized: lower case, no scheme or port), or `None`
    /// for any other host.
    pub fn parse(host: &str) -> Option<(EcrHost, HostForm)> {
        let (account, rest) = host.split_once('.')?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (form, rest) = [
            ("dkr.ecr-fips.", HostForm::Fips),
            ("dkr.ecr.", HostForm::Standard),
            ("dkr-ecr-fips.", HostForm::DualStackFips),
            ("dkr-ecr.", HostForm::DualStack),
        ]
        .into_iter()
        .find_map(|(prefix, form)| rest.strip_prefix(prefix).map(|rest| (form, rest)))?;
        let (region, domain) = rest.split_once('.')?;
        let region_ok = region.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !region_ok {
            return None;
        }
        let dual = matches!(form, HostForm::DualStack | HostForm::DualStackFips);
        let partition = PARTITIONS.iter().find(|p| match dual {
            false => p.standard == domain,
            true => p.dual_stack == Some(domain),
        })?;
        Some((EcrHost { account: account.into(), region: region.into(), partition: partition.name }, form))
    }

    /// This registry's host in `form`, or `None` where the partition has no such host (no dual-stack domain).
    pub fn host(&self, form: HostForm) -> Option<String> {
        let partition = PARTITIONS.iter().find(|p| p.name == self.partition)?;
        let (account, region) = (&self.account, &self.region);
        match form {
            HostForm::Standard => Some(format!("{account}.dkr.ecr.{region}.{}", partition.standard)),
            HostForm::Fips => Some(format!("{account}.dkr.ecr-fips.{region}.{}", partition.standard)),
            HostForm::DualStack => partition.dual_stack.map(|d| format!("{account}.dkr-ecr.{region}.{d}")),
            HostForm::DualStackFips => partition.dual_stack.map(|d| format!("{account}.dkr-ecr-fips.{region}.{d}")),
        }
    }
}

/// True when two normalized addresses name the same registry: equal, or ECR hosts of the same account, region
/// and partition in any form.
pub fn same_registry(a: &str, b: &str) -> bool {
    a == b
        || match (EcrHost::parse(a), EcrHost::parse(b)) {
            (Some((a, _)), Some((b, _))) => a == b,
            _ => false,
        }
}

/// The addresses to create for a registry `host` (normalized): the host in each of `forms` the partition has,
/// in that order; `host` itself when it is not an ECR host.
pub fn forms_of(host: &str, forms: &[HostForm]) -> Vec<String> {
    let Some((ecr, _)) = EcrHost::parse(host) else {
        return vec![host.to_string()];
    };
    let mut hosts: Vec<String> = forms.iter().filter_map(|form| ecr.host(*form)).collect();
    hosts.dedup();
    if hosts.is_empty() {
        hosts.push(host.to_string());
    }
    hosts
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
    fn every_host_form_of_a_registry_is_the_same_registry() {
        let forms = [
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            "123456789012.dkr-ecr.us-east-1.on.aws",
            "123456789012.dkr-ecr-fips.us-east-1.on.aws",
        ];
        for form in forms {
            assert!(same_registry(form, HOST), "{form}");
            assert!(same_registry(HOST, form), "{form}");
        }
        let china = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn";
        assert!(same_registry("123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", china));
        let eu = "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu";
        assert!(same_registry("123456789012.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu", eu));
    }

    #[test]
    fn other_accounts_regions_and_partitions_are_other_registries() {
        for other in [
            "223456789012.dkr-ecr.us-east-1.on.aws",
            "123456789012.dkr.ecr-fips.us-west-2.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn",
            "123456789012.dkr-ecr.us-east-1.on.amazonwebservices.com.cn",
            "123456789012.dkr.ecr.us-east-1.amazonaws.eu",
            "123456789012.dkr.ecr.us-east-1.on.aws",
            "123456789012.dkr-ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.com",
            "x23456789012.dkr.ecr.us-east-1.amazonaws.com",
            "public.ecr.aws",
        ] {
            assert!(!same_registry(other, HOST), "{other}");
        }
    }

    #[test]
    fn forms_are_built_per_partition() {
        let all = HostForm::ALL;
        assert_eq!(
            forms_of(HOST, &all),
            [
                HOST,
                "123456789012.dkr-ecr.us-east-1.on.aws",
                "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
                "123456789012.dkr-ecr-fips.us-east-1.on.aws",
            ]
        );
        let eu = "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu";
        assert_eq!(forms_of(eu, &all), [eu, "123456789012.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu"]);
        assert_eq!(forms_of("registry.example.com", &all), ["registry.example.com"]);
        assert_eq!(forms_of(eu, &[HostForm::DualStack]), [eu], "no dual-stack domain: the host itself");
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
