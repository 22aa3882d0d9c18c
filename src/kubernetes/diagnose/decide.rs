//! The decision: from the cause kubelet reported, the image and what the daemon knows of the namespace, which
//! reason to say on the Pod and with which words. Pure: no API call, no clock.

use super::super::pull_failure::{Cause, EcrImage};
use crate::address::HostForm;

/// The reason of the Warning Event this daemon writes on the Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    SecretMissing,
    NotReferenced,
    RegistryNotCovered,
    TokenExpired,
    AccessDenied,
    ImageNotFound,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::SecretMissing,
        Reason::NotReferenced,
        Reason::RegistryNotCovered,
        Reason::TokenExpired,
        Reason::AccessDenied,
        Reason::ImageNotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SecretMissing => "ECRPullSecretMissing",
            Reason::NotReferenced => "ECRPullSecretNotReferenced",
            Reason::RegistryNotCovered => "ECRRegistryNotCovered",
            Reason::TokenExpired => "ECRTokenExpired",
            Reason::AccessDenied => "ECRAccessDenied",
            Reason::ImageNotFound => "ECRImageNotFound",
        }
    }
}

/// What was found out about a failed pull, ready to be said on the Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub reason: Reason,
    pub message: String,
    /// The registry to refresh now (its standard host), for an expired token of ours.
    pub refresh: Option<String>,
}

/// What the namespace and the Pod show about our Secret, for [`decide`].
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub namespace: String,
    pub secret_name: String,
    /// `None`: no Secret of our name; `Some(false)`: one that is not ours.
    pub secret_ours: Option<bool>,
    /// The registry hosts our Secret holds (`auths` keys), normalized.
    pub secret_hosts: Vec<String>,
    /// The Pod's `spec.imagePullSecrets` names our Secret.
    pub referenced: bool,
    /// The Pod's ServiceAccount and whether it lists our Secret (`None`: not read).
    pub service_account: String,
    pub account_lists_it: Option<bool>,
    /// Whether the target's sources give a token for the image's registry (`None`: no token yet).
    pub covered: Option<bool>,
    /// Why the namespace is not selected, naming the setting; `None` when it is.
    pub not_selected: Option<String>,
    /// A refresh of the image's registry was asked for well before this failure (see [`RECUR_AFTER`]).
    pub refreshed_before: bool,
}

/// The diagnosis of a failed pull of `image` with `cause`, from what was read: pure, tested below.
pub fn decide(cause: &Cause, image: &EcrImage, facts: &Facts) -> Option<Diagnosis> {
    let Facts { namespace, secret_name, .. } = facts;
    let what = registry_words(image);
    let say = |reason: Reason, message: String| Some(Diagnosis { reason, message, refresh: None });
    match cause {
        Cause::NotFound => say(
            Reason::ImageNotFound,
            format!(
                "{} not found in {what}: check the repository and tag in the pod template (containerd cannot tell a missing repository from a missing tag). No credential problem; nothing refreshed.",
                image.repository
            ),
        ),
        Cause::AccessDenied { principal } => {
            let who = principal.as_deref().unwrap_or("the principal the token was issued to");
            let whose = if facts.referenced && facts.secret_ours == Some(true) {
                format!(" (the token in Secret {secret_name} is this daemon's AWS identity)")
            } else {
                String::new()
            };
            say(
                Reason::AccessDenied,
                format!(
                    "ECR denies {who}{whose} ecr:BatchGetImage or ecr:GetDownloadUrlForLayer on {} in {what}: allow it in the repository policy, or in the IAM policy of the node or pod role. A new token would not help; nothing refreshed.",
                    image.repository
                ),
            )
        }
        Cause::NoCredentials | Cause::Expired { .. } => {
            let ours = facts.secret_ours == Some(true);
            let expired = matches!(cause, Cause::Expired { .. });
            if facts.secret_ours.is_none() || (!ours && !expired) {
                if expired {
                    return expired_elsewhere(cause, image, facts);
                }
                let problem = match facts.secret_ours {
                    None => format!("there is no Secret {secret_name} in namespace {namespace}"),
                    Some(_) => format!(
                        "Secret {namespace}/{secret_name} exists but was not written by rancher-ecr-credentials (set KUBERNETES_ADOPT_SECRETS=true to take it over)"
                    ),
                };
                let why = match &facts.not_selected {
                    Some(why) => format!("namespace {namespace} is not selected: {why}"),
                    None => format!(
                        "namespace {namespace} is selected, but the daemon has not written it yet or could not (see its log and the metric rancher_ecr_credentials_places)"
                    ),
                };
                return say(Reason::SecretMissing, format!("No credentials for {what}: {problem}; {why}."));
            }
            if !facts.referenced {
                if expired {
                    return expired_elsewhere(cause, image, facts);
                }
                let account = &facts.service_account;
                let message = match facts.account_lists_it {
                    Some(true) => format!(
                        "No credentials for {what}: the Pod's imagePullSecrets do not name {secret_name}, although its ServiceAccount {account} lists it: the Pod predates that change (a ServiceAccount's imagePullSecrets are copied into a Pod only when it is created). Recreate the Pod (kubectl rollout restart)."
                    ),
                    _ => format!(
                        "No credentials for {what}: Secret {secret_name} is in namespace {namespace} but the Pod's imagePullSecrets do not name it. Add it to the pod template's imagePullSecrets, or to the ServiceAccount {account} (KUBERNETES_SERVICE_ACCOUNTS, file key service_accounts) and recreate the Pod."
                    ),
                };
                return say(Reason::NotReferenced, message);
            }
            if facts.covered == Some(false) {
                return say(Reason::RegistryNotCovered, not_covered(image, secret_name));
            }
            let host_written = facts.secret_hosts.contains(&image.host);
            if !expired && !host_written && facts.covered == Some(true) {
                let forms: Vec<&str> = HostForm::ALL.iter().map(|f| f.name()).collect();
                return say(
                    Reason::RegistryNotCovered,
                    format!(
                        "No credentials for {}: Secret {secret_name} holds this registry under other host names only. Add the image's host form to ECR_HOST_FORMS (one of {}).",
                        image.host,
                        forms.join(", ")
                    ),
                );
            }
            if !expired {
                // Our Secret is referenced and holds the host: kubelet's next retry reads it.
                return None;
            }
            let refresh = registry_key(image);
            let suspected = matches!(cause, Cause::Expired { suspected: true });
            if suspected && facts.refreshed_before {
                return say(
                    Reason::AccessDenied,
                    format!(
                        "ECR refused the pull from {what} with 403 Forbidden again after this daemon wrote a new token to Secret {secret_name}: not an expired token but access denied (suspected: containerd before 2.3.3 does not say why). Allow the principal of this daemon's AWS identity ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on {} in the repository policy or its IAM policy. Nothing refreshed.",
                        image.repository
                    ),
                );
            }
            let lead = if suspected {
                format!(
                    "ECR refused the pull from {what} (403 Forbidden without a reason, which on containerd before 2.3.3 is most often an expired token: suspected)"
                )
            } else {
                format!("The ECR token for {what} in Secret {secret_name} has expired or was revoked")
            };
            Some(Diagnosis {
                reason: Reason::TokenExpired,
                // The caller adds whether the refresh was asked for now or earlier (the rate limit).
                message: format!("{lead}."),
                refresh: Some(refresh),
            })
        }
    }
}

/// An expired token that is not from our Secret: it came from another pull Secret or a node's provider.
fn expired_elsewhere(cause: &Cause, image: &EcrImage, facts: &Facts) -> Option<Diagnosis> {
    let what = registry_words(image);
    let secret_name = &facts.secret_name;
    let suspected = if matches!(cause, Cause::Expired { suspected: true }) { " (suspected: a bare 403)" } else { "" };
    Some(Diagnosis {
        reason: Reason::TokenExpired,
        message: format!(
            "The ECR token for {what} has expired{suspected}, and it is not one this daemon keeps fresh: the Pod does not use Secret {secret_name} of namespace {}. List {secret_name} in the pod template's imagePullSecrets (or the ServiceAccount's, KUBERNETES_SERVICE_ACCOUNTS) and recreate the Pod. Nothing refreshed.",
            facts.namespace
        ),
        refresh: None,
    })
}

fn not_covered(image: &EcrImage, secret_name: &str) -> String {
    match &image.registry {
        Some(registry) => format!(
            "No credentials for {}: Secret {secret_name} holds no token for account {} in {}. Add {} to AWS_ECR_REGISTRY_IDS (file key registry_ids) of a source in region {} (AWS_REGION).",
            image.host, registry.account, registry.region, registry.account, registry.region
        ),
        None => format!(
            "Refused by {}: Secret {secret_name} holds no ECR Public token. Set ECR_PUBLIC=true (file: a source with public = true), or remove it from the pull Secrets: public.ecr.aws allows anonymous pulls.",
            image.host
        ),
    }
}

/// `account 123456789012 in us-east-1 (<host>)`, or `public.ecr.aws`.
fn registry_words(image: &EcrImage) -> String {
    match &image.registry {
        Some(r) => format!("account {} in {} ({})", r.account, r.region, image.host),
        None => image.host.clone(),
    }
}

/// One name per registry, whatever host form the image uses: its standard host.
pub(super) fn registry_key(image: &EcrImage) -> String {
    image.registry.as_ref().and_then(|r| r.host(HostForm::Standard)).unwrap_or_else(|| image.host.clone())
}
