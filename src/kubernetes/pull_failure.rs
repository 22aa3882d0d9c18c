//! Reading kubelet's Events about a failed image pull: which ones count, and what the runtime's error says the
//! cause is. Pure functions, no API calls; [`super::diagnose`] does the rest.
//!
//! The wording of every runtime (containerd 1.6, 1.7, 2.x, CRI-O, Docker through cri-dockerd) on Kubernetes
//! 1.24–1.34 is covered by the tests at the bottom. The registry is never read from the message (mirrors rewrite
//! the URLs in it): the caller takes it from the Pod's spec ([`image_registry`]).

use crate::address::{self, EcrHost};

/// kubelet's `source.component` and, from 1.28, `reportingComponent`.
pub const KUBELET: &str = "kubelet";
/// The component of the Events this daemon writes: never read as a failed pull (a loop guard).
pub const OURS: &str = "rancher-ecr-credentials";
/// The reason of kubelet's Event that carries the runtime's error.
pub const FAILED: &str = "Failed";
/// 1.28+: a Pod names a pull Secret that does not exist.
pub const FAILED_TO_RETRIEVE: &str = "FailedToRetrieveImagePullSecret";
/// kubelet's prefix after repeats of one Event.
pub const COMBINED: &str = "(combined from similar events): ";
/// The anonymous-pull registry of ECR Public.
pub const PUBLIC_HOST: &str = "public.ecr.aws";

/// What the runtime's error says about the credentials, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The token was sent and ECR says it expired or is invalid; `suspected` for a bare 403 (old containerd
    /// hides ECR's text) or 400, where an expired token and a missing permission look the same.
    Expired { suspected: bool },
    /// ECR refuses the principal the token was issued to (IAM or repository policy).
    AccessDenied { principal: Option<String> },
    /// The repository or the tag does not exist.
    NotFound,
    /// No credentials were sent for the registry.
    NoCredentials,
}

impl Cause {
    /// A short, stable name (dedupe keys, debug lines).
    pub fn name(&self) -> &'static str {
        match self {
            Cause::Expired { suspected: false } => "expired",
            Cause::Expired { suspected: true } => "forbidden",
            Cause::AccessDenied { .. } => "denied",
            Cause::NotFound => "not_found",
            Cause::NoCredentials => "no_credentials",
        }
    }

    /// `public.ecr.aws` allows anonymous pulls: being refused there means stale credentials were sent.
    pub fn at_public_registry(self) -> Cause {
        match self {
            Cause::NoCredentials => Cause::Expired { suspected: true },
            other => other,
        }
    }
}

/// An Event, as far as the filter needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFacts<'a> {
    pub type_: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
    pub involved_kind: &'a str,
    pub source_component: &'a str,
    pub reporting_component: &'a str,
}

/// Why an Event is not a failed pull to diagnose (for counting and debug lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not a Warning about a Pod from kubelet with one of the two reasons.
    NotAPullFailure,
    /// Written by this daemon.
    Ours,
    /// `dial tcp`, `i/o timeout`, `no such host`…: not a credential problem.
    Network,
    /// A failed pull whose error names no cause this daemon knows (`Error: ErrImagePull` and the like).
    Unknown,
}

/// Reads an Event: the cause of a failed pull, or why it is skipped.
pub fn read_event(event: &EventFacts<'_>) -> Result<Cause, Skip> {
    if event.source_component == OURS || event.reporting_component == OURS {
        return Err(Skip::Ours);
    }
    let from_kubelet = event.source_component == KUBELET
        || event.reporting_component == KUBELET
        || (event.source_component.is_empty() && event.reporting_component.is_empty());
    if event.type_ != "Warning" || event.involved_kind != "Pod" || !from_kubelet {
        return Err(Skip::NotAPullFailure);
    }
    match event.reason {
        FAILED_TO_RETRIEVE => Ok(Cause::NoCredentials),
        FAILED => {
            let error = pull_error(event.message).ok_or(Skip::NotAPullFailure)?;
            classify(error)
        }
        _ => Err(Skip::NotAPullFailure),
    }
}

/// The runtime's error of `Failed to pull image "<image>": <error>`, with or without the combined prefix.
pub fn pull_error(message: &str) -> Option<&str> {
    let message = message.strip_prefix(COMBINED).unwrap_or(message);
    let rest = message.strip_prefix("Failed to pull image \"")?;
    let (_, error) = rest.split_once("\": ")?;
    Some(error)
}

/// Network trouble: the registry was not reached, so nothing is known about the credentials.
const NETWORK: [&str; 8] = [
    "dial tcp",
    "i/o timeout",
    "no such host",
    "registryunavailable",
    "connection refused",
    "connection reset by peer",
    "tls handshake timeout",
    "network is unreachable",
];

/// The cause a runtime's error names, most specific first (see the module docs).
pub fn classify(error: &str) -> Result<Cause, Skip> {
    // CRI-O 1.33+: `pull image err: …; artifact err: …`; the artifact attempt says nothing more.
    let error = match error.split_once("pull image err: ") {
        Some((_, rest)) => rest.split_once("; artifact err:").map_or(rest, |(pull, _)| pull),
        None => error,
    };
    let text = error.to_ascii_lowercase();
    let has = |needle: &str| text.contains(needle);
    if NETWORK.iter().any(|n| has(n)) {
        return Err(Skip::Network);
    }
    if has("authorization token has expired") || has("security token included in the request is invalid") {
        return Ok(Cause::Expired { suspected: false });
    }
    if has("not authorized to perform") || has("denied: user: arn:") {
        return Ok(Cause::AccessDenied { principal: principal(error) });
    }
    let trailing_not_found = text.trim_end_matches([']', ' ']).ends_with(": not found") || has(": not found,");
    if has("code = notfound")
        || trailing_not_found
        || has("name unknown")
        || has("manifest unknown")
        || has("does not exist in the registry with id")
    {
        return Ok(Cause::NotFound);
    }
    if has("no basic auth credentials")
        || has("401 unauthorized")
        || has("authentication required")
        || has("may require authorization")
        || has("may require 'docker login'")
    {
        return Ok(Cause::NoCredentials);
    }
    if has("403 forbidden") || has("400 bad request") {
        return Ok(Cause::Expired { suspected: true });
    }
    Err(Skip::Unknown)
}

/// The principal ECR names in `denied: User: arn:aws:sts::<acct>:assumed-role/<role>/<session> is not
/// authorized…`: only ARN characters, at most 256 of them.
pub fn principal(error: &str) -> Option<String> {
    let (_, after) = error.split_once("User: ")?;
    let arn: String =
        after.chars().take_while(|c| c.is_ascii_alphanumeric() || ":/_+=,.@-".contains(*c)).take(256).collect();
    let arn = arn.trim_end_matches(['.', ',']);
    arn.starts_with("arn:aws").then(|| crate::redact::outside(arn))
}

/// Which container an Event's `involvedObject.fieldPath` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerList {
    Containers,
    InitContainers,
    EphemeralContainers,
}

/// `spec.containers{web}` → (containers, `web`); also `initContainers` and `ephemeralContainers`.
pub fn container_of(field_path: &str) -> Option<(ContainerList, &str)> {
    let (list, rest) = field_path.strip_prefix("spec.")?.split_once('{')?;
    let name = rest.strip_suffix('}')?;
    let list = match list {
        "containers" => ContainerList::Containers,
        "initContainers" => ContainerList::InitContainers,
        "ephemeralContainers" => ContainerList::EphemeralContainers,
        _ => return None,
    };
    (!name.is_empty()).then_some((list, name))
}

/// The ECR registry of an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    /// The registry host as the image names it (normalized: lower case, no default port).
    pub host: String,
    /// Account, region and partition; `None` for `public.ecr.aws`.
    pub registry: Option<EcrHost>,
    /// The repository path (without tag or digest).
    pub repository: String,
}

/// The ECR registry an image (as a Pod spec names it) is pulled from, or `None` for any other registry
/// (including Docker Hub's short names).
pub fn image_registry(image: &str) -> Option<EcrImage> {
    let (first, path) = image.trim().split_once('/')?;
    if !(first.contains('.') || first.contains(':')) {
        return None;
    }
    let host = address::normalize(first)?;
    let repository = path.split('@').next().unwrap_or_default();
    // A tag follows the last ':' of the last path component.
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    // From a Pod's spec: outside text, cleaned before it reaches an Event or a log line.
    let repository = crate::redact::outside(repository);
    if host == PUBLIC_HOST {
        return Some(EcrImage { host, registry: None, repository });
    }
    let (registry, _) = EcrHost::parse(&host)?;
    Some(EcrImage { host, registry: Some(registry), repository })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.4";
    const REF: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.4";
    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn failed(error: &str) -> String {
        format!("Failed to pull image \"{IMAGE}\": {error}")
    }

    fn kubelet<'a>(reason: &'a str, message: &'a str) -> EventFacts<'a> {
        EventFacts {
            type_: "Warning",
            reason,
            message,
            involved_kind: "Pod",
            source_component: "kubelet",
            reporting_component: "kubelet",
        }
    }

    fn cause(error: &str) -> Result<Cause, Skip> {
        read_event(&kubelet(FAILED, &failed(error)))
    }

    /// containerd's "no credentials" across versions: ≥1.6.25/1.7.8/2.x, older, 2.1+ (`failed to resolve image`);
    /// with 1.24–1.27's `rpc error: code = Unknown desc = ` and without it (1.28+).
    #[test]
    fn containerd_without_credentials_is_a_no_credentials_error() {
        for error in [
            format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"
            ),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"
            ),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve image: pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"
            ),
            format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 401 Unauthorized"
            ),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 401 Unauthorized"
            ),
        ] {
            assert_eq!(cause(&error), Ok(Cause::NoCredentials), "{error}");
        }
    }

    #[test]
    fn cri_o_and_docker_without_credentials_are_no_credentials_errors() {
        for error in [
            format!("initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: authentication required"),
            format!("rpc error: code = Unknown desc = initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: authentication required"),
            format!("unable to pull image or OCI artifact: pull image err: initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: authentication required; artifact err: get manifest: build image source: reading manifest 1.4 in {HOST}/shop/web: manifest unknown"),
            "rpc error: code = Unknown desc = Error response from daemon: Head \"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/shop/web/manifests/1.4\": no basic auth credentials".to_string(),
            "Error response from daemon: pull access denied for 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web, repository does not exist or may require 'docker login': denied: requested access to the resource is denied".to_string(),
        ] {
            assert_eq!(cause(&error), Ok(Cause::NoCredentials), "{error}");
        }
    }

    #[test]
    fn an_expired_or_revoked_token_in_every_runtimes_words() {
        for error in [
            // containerd 2.3.3+: the status, a newline, ECR's body.
            format!("failed to pull and unpack image \"{REF}\": failed to resolve image: unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 403 Forbidden\ndenied: Your authorization token has expired. Reauthenticate and try again."),
            // CRI-O, 1.24–1.27 and 1.28+.
            format!("rpc error: code = Unknown desc = initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: denied: Your authorization token has expired. Reauthenticate and try again."),
            format!("initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: denied: Your authorization token has expired. Reauthenticate and try again."),
            format!("unable to pull image or OCI artifact: pull image err: initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: denied: Your authorization token has expired. Reauthenticate and try again.; artifact err: get manifest: build image source: reading manifest 1.4 in {HOST}/shop/web: denied: Your authorization token has expired. Reauthenticate and try again."),
            // Docker.
            "rpc error: code = Unknown desc = Error response from daemon: pull access denied for 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web, repository does not exist or may require 'docker login': denied: Your authorization token has expired. Reauthenticate and try again.".to_string(),
            // Revoked.
            format!("initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: denied: The security token included in the request is invalid"),
        ] {
            assert_eq!(cause(&error), Ok(Cause::Expired { suspected: false }), "{error}");
        }
    }

    #[test]
    fn a_bare_403_or_400_is_a_suspected_expired_token() {
        for error in [
            format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 403 Forbidden"
            ),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve image: unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 403 Forbidden"
            ),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 400 Bad Request"
            ),
        ] {
            assert_eq!(cause(&error), Ok(Cause::Expired { suspected: true }), "{error}");
        }
    }

    #[test]
    fn access_denied_names_the_principal() {
        let body = "denied: User: arn:aws:sts::123456789012:assumed-role/node-role/i-0abc is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/shop/web because no identity-based policy allows the ecr:BatchGetImage action";
        for error in [
            format!("initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: {body}"),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve image: unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 403 Forbidden\n{body}"
            ),
            format!(
                "Error response from daemon: pull access denied for {HOST}/shop/web, repository does not exist or may require 'docker login': {body}"
            ),
            format!(
                "failed to copy: httpReadSeeker: failed open: unexpected status code https://{HOST}/v2/shop/web/blobs/sha256:ab: 403 Forbidden\ndenied: User: arn:aws:sts::123456789012:assumed-role/node-role/i-0abc is not authorized to perform: ecr:GetDownloadUrlForLayer on resource: arn:aws:ecr:us-east-1:123456789012:repository/shop/web"
            ),
        ] {
            let principal = Some("arn:aws:sts::123456789012:assumed-role/node-role/i-0abc".to_string());
            assert_eq!(cause(&error), Ok(Cause::AccessDenied { principal }), "{error}");
        }
        assert_eq!(principal("denied: User: nobody is not"), None);
    }

    #[test]
    fn a_missing_repository_or_tag_in_every_runtimes_words() {
        for error in [
            format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": {REF}: not found"
            ),
            format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{REF}\": failed to resolve image: {REF}: not found"
            ),
            format!(
                "initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: name unknown: The repository with name 'shop/web' does not exist in the registry with id '123456789012'"
            ),
            format!(
                "initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: manifest unknown: Requested image not found"
            ),
            format!(
                "rpc error: code = Unknown desc = Error response from daemon: manifest for {REF} not found: manifest unknown: Requested image not found"
            ),
            format!(
                "unable to pull image or OCI artifact: pull image err: initializing source docker://{REF}: reading manifest 1.4 in {HOST}/shop/web: manifest unknown: Requested image not found; artifact err: get manifest: build image source: reading manifest 1.4 in {HOST}/shop/web: manifest unknown"
            ),
        ] {
            assert_eq!(cause(&error), Ok(Cause::NotFound), "{error}");
        }
    }

    #[test]
    fn several_credentials_tried_give_the_most_specific_cause() {
        let error = format!(
            "[failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 401 Unauthorized, failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": unexpected status from HEAD request to https://{HOST}/v2/shop/web/manifests/1.4: 403 Forbidden\ndenied: Your authorization token has expired. Reauthenticate and try again.]"
        );
        assert_eq!(cause(&error), Ok(Cause::Expired { suspected: false }));
        let error = format!("[{REF}: not found, {REF}: not found]");
        assert_eq!(cause(&error), Ok(Cause::NotFound));
    }

    #[test]
    fn network_errors_and_messages_without_a_cause_are_skipped() {
        for error in [
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": failed to do request: Head \"https://{HOST}/v2/shop/web/manifests/1.4\": dial tcp 10.0.0.1:443: i/o timeout"
            ),
            format!(
                "failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": failed to do request: Head \"https://{HOST}/v2/shop/web/manifests/1.4\": dial tcp: lookup {HOST}: no such host"
            ),
            "RegistryUnavailable: registry is not reachable".to_string(),
        ] {
            assert_eq!(cause(&error), Err(Skip::Network), "{error}");
        }
        assert_eq!(cause("rpc error: code = Unknown desc = something else entirely"), Err(Skip::Unknown));
        for message in ["Error: ErrImagePull", "Error: ImagePullBackOff", "Back-off pulling image \"x\""] {
            assert_eq!(read_event(&kubelet(FAILED, message)), Err(Skip::NotAPullFailure), "{message}");
        }
    }

    #[test]
    fn only_warnings_about_pods_from_kubelet_count_and_never_our_own() {
        let message = failed("authorization failed: no basic auth credentials");
        let event = kubelet(FAILED, &message);
        assert_eq!(read_event(&event), Ok(Cause::NoCredentials));
        let before_1_28 = EventFacts { reporting_component: "", ..event };
        assert_eq!(read_event(&before_1_28), Ok(Cause::NoCredentials));
        let both_empty = EventFacts { source_component: "", ..before_1_28 };
        assert_eq!(read_event(&both_empty), Ok(Cause::NoCredentials));
        let combined = format!("{COMBINED}{message}");
        assert_eq!(read_event(&kubelet(FAILED, &combined)), Ok(Cause::NoCredentials));
        for (other, skip) in [
            (EventFacts { type_: "Normal", ..event }, Skip::NotAPullFailure),
            (EventFacts { reason: "BackOff", ..event }, Skip::NotAPullFailure),
            (EventFacts { involved_kind: "Node", ..event }, Skip::NotAPullFailure),
            (EventFacts { source_component: "scheduler", reporting_component: "", ..event }, Skip::NotAPullFailure),
            (EventFacts { source_component: OURS, reporting_component: "", ..event }, Skip::Ours),
            (EventFacts { source_component: "", reporting_component: OURS, ..event }, Skip::Ours),
        ] {
            assert_eq!(read_event(&other), Err(skip), "{other:?}");
        }
        let missing = "Unable to retrieve some image pull secrets (ecr-credentials); attempting to pull the image may not succeed.";
        assert_eq!(read_event(&kubelet(FAILED_TO_RETRIEVE, missing)), Ok(Cause::NoCredentials));
    }

    #[test]
    fn public_ecr_refusing_means_stale_credentials() {
        assert_eq!(Cause::NoCredentials.at_public_registry(), Cause::Expired { suspected: true });
        assert_eq!(Cause::NotFound.at_public_registry(), Cause::NotFound);
    }

    #[test]
    fn the_container_comes_from_the_field_path() {
        assert_eq!(container_of("spec.containers{web}"), Some((ContainerList::Containers, "web")));
        assert_eq!(container_of("spec.initContainers{init}"), Some((ContainerList::InitContainers, "init")));
        assert_eq!(container_of("spec.ephemeralContainers{dbg}"), Some((ContainerList::EphemeralContainers, "dbg")));
        for bad in ["", "spec.containers", "spec.volumes{x}", "spec.containers{}", "status.containers{web}"] {
            assert_eq!(container_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_ecr_host_form_is_an_ecr_image_and_others_are_not() {
        for (image, host, account, region) in [
            (IMAGE, HOST, "123456789012", "us-east-1"),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a:1",
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "123456789012",
                "us-gov-west-1",
            ),
            (
                "123456789012.dkr-ecr.eu-west-1.on.aws/a/b@sha256:00",
                "123456789012.dkr-ecr.eu-west-1.on.aws",
                "123456789012",
                "eu-west-1",
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-2.on.aws/a",
                "123456789012.dkr-ecr-fips.us-east-2.on.aws",
                "123456789012",
                "us-east-2",
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a:latest",
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "123456789012",
                "cn-north-1",
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/a",
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "123456789012",
                "us-iso-east-1",
            ),
            ("123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM:443/a", HOST, "123456789012", "us-east-1"),
        ] {
            let ecr = image_registry(image).unwrap_or_else(|| panic!("{image}"));
            assert_eq!(ecr.host, host);
            let registry = ecr.registry.unwrap();
            assert_eq!((registry.account.as_str(), registry.region.as_str()), (account, region), "{image}");
        }
        let public = image_registry("public.ecr.aws/nginx/nginx:1.27").unwrap();
        assert_eq!(
            (public.host.as_str(), public.registry, public.repository.as_str()),
            (PUBLIC_HOST, None, "nginx/nginx")
        );
        assert_eq!(image_registry(IMAGE).unwrap().repository, "shop/web");
        assert_eq!(image_registry("registry.local:5000/shop/web:1").map(|i| i.host), None);
        for other in
            ["nginx", "library/nginx:1", "quay.io/a/b", "evil.com/123456789012.dkr.ecr.us-east-1.amazonaws.com/x"]
        {
            assert_eq!(image_registry(other), None, "{other}");
        }
    }
}
