//! Which Rancher API a configured URL points at, and the URLs of the collections the daemon uses.
//!
//! Users write `CATTLE_URL` in many forms: the agent-injected `http://host:8080/v1`, an environment API
//! endpoint `http://host:8080/v2-beta/projects/1a5`, or a bare `http://host:8080`. This module turns each
//! into a base URL that collection names can be appended to. It does no I/O.

use std::fmt;

use url::Url;

/// A Rancher 1.x Cattle API base such as `http://rancher:8080/v2-beta/projects/1a5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Always ends with the version or the project segment, never with a slash.
    base: Url,
    pub version: CattleVersion,
    pub project: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CattleVersion {
    V1,
    V2Beta,
}

impl CattleVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CattleVersion::V1 => "v1",
            CattleVersion::V2Beta => "v2-beta",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("'{0}' is not a URL; give e.g. http://rancher:8080/v1")]
    NotAUrl(String),
    #[error("'{0}' must start with http:// or https://")]
    Scheme(String),
    #[error("'{0}' has no host")]
    NoHost(String),
    #[error("'{0}' carries a user name or password; give the keys in CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY")]
    UserInfo(String),
    #[error("'{0}' has a query or fragment; give only the API path (e.g. /v2-beta/projects/1a5)")]
    Query(String),
    #[error(
        "'{0}' is a Rancher 2 (/v3) URL, which this version does not support yet; use a Rancher 1.x /v1 or /v2-beta URL"
    )]
    RancherV3(String),
    #[error(
        "'{0}' has an unexpected path after the API version; give the API root (/v1, /v2-beta) or an environment (/v2-beta/projects/1a5)"
    )]
    Path(String),
}

impl Endpoint {
    /// Parses every form of `CATTLE_URL` users have. A path prefix before the version (a reverse proxy mounting
    /// Rancher under `/rancher`) is kept. A URL without a version means `/v1`, the root version of Cattle and
    /// what the predecessor used for it.
    pub fn parse(input: &str) -> Result<Endpoint, EndpointError> {
        let input = input.trim();
        let shown = input.to_string();
        let mut url = Url::parse(input).map_err(|_| EndpointError::NotAUrl(shown.clone()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(EndpointError::Scheme(shown));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError::NoHost(shown));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the password back: show the URL without it.
            let mut safe = url.clone();
            let _ = safe.set_username("");
            let _ = safe.set_password(None);
            return Err(EndpointError::UserInfo(safe.to_string()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(EndpointError::Query(shown));
        }

        let segments: Vec<String> = url
            .path_segments()
            .map(|s| s.filter(|seg| !seg.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let version_at = segments.iter().position(|s| {
            let s = s.to_ascii_lowercase();
            s == "v1" || s == "v2-beta" || s == "v3"
        });

        let (prefix, version, rest) = match version_at {
            None => (segments.as_slice(), CattleVersion::V1, &[][..]),
            Some(i) => {
                let version = match segments[i].to_ascii_lowercase().as_str() {
                    "v1" => CattleVersion::V1,
                    "v2-beta" => CattleVersion::V2Beta,
                    _ => return Err(EndpointError::RancherV3(shown)),
                };
                (&segments[..i], version, &segments[i + 1..])
            }
        };
        let project = match rest {
            [] => None,
            [projects, id] if projects.eq_ignore_ascii_case("projects") && is_cattle_id(id) => {
                Some(id.to_ascii_lowercase())
            }
            _ => return Err(EndpointError::Path(shown)),
        };

        let mut path: Vec<&str> = prefix.iter().map(String::as_str).collect();
        path.push(version.as_str());
        if let Some(project) = &project {
            path.push("projects");
            path.push(project);
        }
        url.set_path(&format!("/{}", path.join("/")));
        Ok(Endpoint { base: url, version, project })
    }

    /// The URL of a collection, e.g. `registries` or `registrycredentials`.
    pub fn collection(&self, name: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("http(s) URLs have a path").push(name);
        url
    }

    /// The URL of one resource in a collection. Built from the configured base rather than taken from the
    /// resource's `links.self`, because Rancher behind a TLS-terminating proxy generates `http://` links.
    pub fn resource(&self, collection: &str, id: &str) -> Url {
        let mut url = self.collection(collection);
        url.path_segments_mut().expect("http(s) URLs have a path").push(id);
        url
    }

    pub fn base(&self) -> &Url {
        &self.base
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str())
    }
}

/// Cattle ids are a digit followed by letters and digits, e.g. `1a5`, `1sp3`, `1c12`.
pub fn is_cattle_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(input: &str) -> String {
        Endpoint::parse(input).unwrap().base().to_string()
    }

    #[test]
    fn every_url_form_users_have_is_understood() {
        assert_eq!(base("http://10.0.0.5:8080/v1"), "http://10.0.0.5:8080/v1");
        assert_eq!(base("http://rancher:8080/v1/"), "http://rancher:8080/v1");
        assert_eq!(base("http://rancher:8080/v2-beta"), "http://rancher:8080/v2-beta");
        assert_eq!(
            base("https://rancher.example.com/v2-beta/projects/1a5"),
            "https://rancher.example.com/v2-beta/projects/1a5"
        );
        assert_eq!(base("http://rancher:8080/v2-beta/projects/1A5/"), "http://rancher:8080/v2-beta/projects/1a5");
        assert_eq!(base("http://rancher:8080"), "http://rancher:8080/v1");
        assert_eq!(base("http://rancher:8080/"), "http://rancher:8080/v1");
        assert_eq!(base("https://example.com/rancher/v2-beta"), "https://example.com/rancher/v2-beta");
        assert_eq!(base("  http://rancher:8080/V2-BETA  "), "http://rancher:8080/v2-beta");
    }

    #[test]
    fn version_and_project_are_kept() {
        let e = Endpoint::parse("http://rancher:8080/v2-beta/projects/1a5").unwrap();
        assert_eq!(e.version, CattleVersion::V2Beta);
        assert_eq!(e.project.as_deref(), Some("1a5"));
        let e = Endpoint::parse("http://rancher:8080/v1").unwrap();
        assert_eq!(e.version, CattleVersion::V1);
        assert_eq!(e.project, None);
    }

    #[test]
    fn collections_and_resources_hang_off_the_base() {
        let e = Endpoint::parse("http://rancher:8080/v2-beta/projects/1a5/").unwrap();
        assert_eq!(e.collection("registries").as_str(), "http://rancher:8080/v2-beta/projects/1a5/registries");
        assert_eq!(
            e.resource("registrycredentials", "1c12").as_str(),
            "http://rancher:8080/v2-beta/projects/1a5/registrycredentials/1c12"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(matches!(Endpoint::parse("rancher:8080/v1"), Err(EndpointError::Scheme(_))));
        assert!(matches!(Endpoint::parse("rancher"), Err(EndpointError::NotAUrl(_))));
        assert!(matches!(Endpoint::parse(""), Err(EndpointError::NotAUrl(_))));
        assert!(matches!(Endpoint::parse("ftp://rancher/v1"), Err(EndpointError::Scheme(_))));
        assert!(matches!(Endpoint::parse("http://rancher:8080/v1?x=1"), Err(EndpointError::Query(_))));
        assert!(matches!(Endpoint::parse("http://rancher/v3/project/c-x:p-y"), Err(EndpointError::RancherV3(_))));
        assert!(matches!(Endpoint::parse("http://rancher/v2-beta/projects"), Err(EndpointError::Path(_))));
        assert!(matches!(Endpoint::parse("http://rancher/v2-beta/registries/1sp3"), Err(EndpointError::Path(_))));
    }

    #[test]
    fn a_password_in_the_url_is_never_echoed() {
        let err = Endpoint::parse("http://ak:topsecret@rancher:8080/v1").unwrap_err();
        assert!(matches!(err, EndpointError::UserInfo(_)));
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}
