//! Which Rancher API a configured URL points at, and the URLs of the collections the daemon uses.
//!
//! Users write `CATTLE_URL` in many forms: the agent-injected `http://host:8080/v1`, an environment API
//! endpoint `http://host:8080/v2-beta/projects/1a5`, a Rancher 2 project `https://host/v3/projects/c-x:p-y`,
//! or a bare `http://host:8080`. This module turns each into a base URL that collection names can be appended
//! to. It does no I/O: a bare URL stays [`Endpoint::Unversioned`] until it is probed.

use std::fmt;

use url::Url;

pub use crate::setting::is_project_id;

/// Which API family to use, when the URL does not say (`RANCHER_API`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiChoice {
    /// From the URL's path; a bare URL is probed.
    Auto,
    /// Rancher 1.x; a bare URL means `/v1`.
    Cattle,
    /// Rancher 2.x; a bare URL means `/v3`.
    V3,
}

/// A parsed Rancher URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Cattle(CattleEndpoint),
    /// A Rancher 2 API base `…/v3`, with the project the URL named, if any.
    V3 {
        base: Url,
        project: Option<String>,
    },
    /// No version in the path: Rancher 1.x or 2.x, to be found out by asking the server.
    Unversioned {
        root: Url,
    },
}

/// A Rancher 1.x Cattle API base such as `http://rancher:8080/v2-beta/projects/1a5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CattleEndpoint {
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
        "'{0}' has an unexpected path after the API version; give the API root (/v1, /v2-beta, /v3), an environment (/v2-beta/projects/1a5) or a project (/v3/projects/c-xxxxx:p-xxxxx)"
    )]
    Path(String),
    #[error("'{0}' is a Rancher 2 (/v3) URL, but RANCHER_API says cattle")]
    NotCattle(String),
    #[error("'{0}' is a Rancher 1.x URL, but RANCHER_API says v3")]
    NotV3(String),
}

impl Endpoint {
    /// The URL calls start from: the API base, or the root to probe.
    pub fn url(&self) -> &Url {
        match self {
            Endpoint::Cattle(cattle) => cattle.base(),
            Endpoint::V3 { base, .. } => base,
            Endpoint::Unversioned { root } => root,
        }
    }

    /// Parses every form of `CATTLE_URL` users have. A path prefix before the version (a reverse proxy mounting
    /// Rancher under `/rancher`) is kept.
    pub fn parse(input: &str, choice: ApiChoice) -> Result<Endpoint, EndpointError> {
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
        let Some(i) = version_at else {
            url.set_path(&format!("/{}", segments.join("/")));
            let root = url;
            return Ok(match choice {
                ApiChoice::Auto => Endpoint::Unversioned { root },
                ApiChoice::Cattle => Endpoint::Cattle(CattleEndpoint::v1_under(&root)),
                ApiChoice::V3 => Endpoint::V3 { base: under(&root, "v3"), project: None },
            });
        };
        let (prefix, rest) = (&segments[..i], &segments[i + 1..]);
        match segments[i].to_ascii_lowercase().as_str() {
            "v3" => {
                if choice == ApiChoice::Cattle {
                    return Err(EndpointError::NotCattle(shown));
                }
                let project = match rest {
                    [] => None,
                    [projects, id]
                        if matches!(projects.to_ascii_lowercase().as_str(), "project" | "projects")
                            && is_project_id(&id.to_ascii_lowercase()) =>
                    {
                        Some(id.to_ascii_lowercase())
                    }
                    _ => return Err(EndpointError::Path(shown)),
                };
                Ok(Endpoint::V3 { base: join(&url, prefix, &["v3"]), project })
            }
            version => {
                if choice == ApiChoice::V3 {
                    return Err(EndpointError::NotV3(shown));
                }
                let version = if version == "v1" { CattleVersion::V1 } else { CattleVersion::V2Beta };
                let project = match rest {
                    [] => None,
                    [projects, id] if projects.eq_ignore_ascii_case("projects") && is_cattle_id(id) => {
                        Some(id.to_ascii_lowercase())
                    }
                    _ => return Err(EndpointError::Path(shown)),
                };
                Ok(Endpoint::Cattle(CattleEndpoint::new(&url, prefix, version, project)))
            }
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Cattle(cattle) => cattle.fmt(f),
            Endpoint::V3 { base, project: Some(project) } => write!(f, "{base}/project/{project}"),
            Endpoint::V3 { base, project: None } => f.write_str(base.as_str()),
            Endpoint::Unversioned { root } => f.write_str(root.as_str()),
        }
    }
}

/// `root` with one more path segment.
pub fn under(root: &Url, segment: &str) -> Url {
    let mut url = root.clone();
    url.path_segments_mut().expect("http(s) URLs have a path").pop_if_empty().push(segment);
    url
}

/// `url` with its path replaced by `prefix` followed by `more`.
fn join(url: &Url, prefix: &[String], more: &[&str]) -> Url {
    let mut path: Vec<&str> = prefix.iter().map(String::as_str).collect();
    path.extend_from_slice(more);
    let mut url = url.clone();
    url.set_path(&format!("/{}", path.join("/")));
    url
}

impl CattleEndpoint {
    fn new(url: &Url, prefix: &[String], version: CattleVersion, project: Option<String>) -> CattleEndpoint {
        let mut more = vec![version.as_str()];
        if let Some(project) = &project {
            more.push("projects");
            more.push(project);
        }
        CattleEndpoint { base: join(url, prefix, &more), version, project }
    }

    /// The `/v1` API under a bare URL: the root version of Cattle, and what the predecessor used.
    pub fn v1_under(root: &Url) -> CattleEndpoint {
        CattleEndpoint { base: under(root, "v1"), version: CattleVersion::V1, project: None }
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

    /// The endpoint of one environment under this API root (`…/v2-beta/projects/1a7`), for an account key.
    pub fn environment(&self, id: &str) -> CattleEndpoint {
        let mut base = self.base.clone();
        base.path_segments_mut().expect("http(s) URLs have a path").push("projects").push(id);
        CattleEndpoint { base, version: self.version, project: Some(id.to_string()) }
    }
}

impl fmt::Display for CattleEndpoint {
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

    fn parse(input: &str) -> Endpoint {
        Endpoint::parse(input, ApiChoice::Auto).unwrap()
    }

    fn cattle(input: &str) -> CattleEndpoint {
        match parse(input) {
            Endpoint::Cattle(cattle) => cattle,
            other => panic!("{input} is not Cattle: {other:?}"),
        }
    }

    fn base(input: &str) -> String {
        cattle(input).base().to_string()
    }

    #[test]
    fn every_cattle_url_form_users_have_is_understood() {
        assert_eq!(base("http://10.0.0.5:8080/v1"), "http://10.0.0.5:8080/v1");
        assert_eq!(base("http://rancher:8080/v1/"), "http://rancher:8080/v1");
        assert_eq!(base("http://rancher:8080/v2-beta"), "http://rancher:8080/v2-beta");
        assert_eq!(
            base("https://rancher.example.com/v2-beta/projects/1a5"),
            "https://rancher.example.com/v2-beta/projects/1a5"
        );
        assert_eq!(base("http://rancher:8080/v2-beta/projects/1A5/"), "http://rancher:8080/v2-beta/projects/1a5");
        assert_eq!(base("https://example.com/rancher/v2-beta"), "https://example.com/rancher/v2-beta");
        assert_eq!(base("  http://rancher:8080/V2-BETA  "), "http://rancher:8080/v2-beta");
    }

    #[test]
    fn a_bare_url_is_probed_unless_the_api_is_chosen() {
        assert!(matches!(parse("http://rancher:8080"), Endpoint::Unversioned { .. }));
        assert!(matches!(parse("https://example.com/rancher/"), Endpoint::Unversioned { .. }));
        let cattle = Endpoint::parse("http://rancher:8080/", ApiChoice::Cattle).unwrap();
        assert_eq!(cattle.to_string(), "http://rancher:8080/v1");
        let v3 = Endpoint::parse("https://example.com/rancher", ApiChoice::V3).unwrap();
        assert_eq!(v3.to_string(), "https://example.com/rancher/v3");
        let Endpoint::Unversioned { root } = parse("https://example.com/rancher/") else { unreachable!() };
        assert_eq!(CattleEndpoint::v1_under(&root).to_string(), "https://example.com/rancher/v1");
    }

    #[test]
    fn rancher_2_urls_name_the_api_and_the_project() {
        let cases = [
            ("https://rancher.example.com/v3", None),
            ("https://rancher.example.com/v3/", None),
            ("https://rancher.example.com/v3/project/c-lgmzw:p-z2qff", Some("c-lgmzw:p-z2qff")),
            ("https://rancher.example.com/v3/projects/local:p-abcde/", Some("local:p-abcde")),
        ];
        for (input, project) in cases {
            match parse(input) {
                Endpoint::V3 { base, project: got } => {
                    assert_eq!(base.as_str(), "https://rancher.example.com/v3", "{input}");
                    assert_eq!(got.as_deref(), project, "{input}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(matches!(
            Endpoint::parse("https://r/v3/project/c-x:p-y/dockercredentials", ApiChoice::Auto),
            Err(EndpointError::Path(_))
        ));
        assert!(matches!(Endpoint::parse("https://r/v3", ApiChoice::Cattle), Err(EndpointError::NotCattle(_))));
        assert!(matches!(Endpoint::parse("https://r/v1", ApiChoice::V3), Err(EndpointError::NotV3(_))));
    }

    #[test]
    fn version_and_project_are_kept() {
        let e = cattle("http://rancher:8080/v2-beta/projects/1a5");
        assert_eq!(e.version, CattleVersion::V2Beta);
        assert_eq!(e.project.as_deref(), Some("1a5"));
        let e = cattle("http://rancher:8080/v1");
        assert_eq!(e.version, CattleVersion::V1);
        assert_eq!(e.project, None);
    }

    #[test]
    fn collections_and_resources_hang_off_the_base() {
        let e = cattle("http://rancher:8080/v2-beta/projects/1a5/");
        assert_eq!(e.collection("registries").as_str(), "http://rancher:8080/v2-beta/projects/1a5/registries");
        assert_eq!(
            e.resource("registrycredentials", "1c12").as_str(),
            "http://rancher:8080/v2-beta/projects/1a5/registrycredentials/1c12"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let parse = |input| Endpoint::parse(input, ApiChoice::Auto);
        assert!(matches!(parse("rancher:8080/v1"), Err(EndpointError::Scheme(_))));
        assert!(matches!(parse("rancher"), Err(EndpointError::NotAUrl(_))));
        assert!(matches!(parse(""), Err(EndpointError::NotAUrl(_))));
        assert!(matches!(parse("ftp://rancher/v1"), Err(EndpointError::Scheme(_))));
        assert!(matches!(parse("http://rancher:8080/v1?x=1"), Err(EndpointError::Query(_))));
        assert!(matches!(parse("http://rancher/v2-beta/projects"), Err(EndpointError::Path(_))));
        assert!(matches!(parse("http://rancher/v2-beta/registries/1sp3"), Err(EndpointError::Path(_))));
        assert!(matches!(parse("http://rancher/v3/projects/p-only"), Err(EndpointError::Path(_))));
    }

    #[test]
    fn a_password_in_the_url_is_never_echoed() {
        let err = Endpoint::parse("http://ak:topsecret@rancher:8080/v1", ApiChoice::Auto).unwrap_err();
        assert!(matches!(err, EndpointError::UserInfo(_)));
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}
