//! The Secret this daemon writes, and how an existing one is judged: ours, current, foreign or a Rancher copy.
//! Pure functions; the API calls are in the parent module.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::token::RegistryToken;

/// The label that marks a Secret as written (and owned) by this daemon.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_US: &str = "rancher-ecr-credentials";
/// When the token in the Secret expires (RFC 3339), for people and alerts.
pub const EXPIRES_AT: &str = "rancher-ecr-credentials/expires-at";
/// Rancher 2.12+: the label of a project-scoped Secret, naming its project.
pub const PROJECT_SCOPED: &str = "management.cattle.io/project-scoped-secret";
/// Rancher 2.12+: the annotation of the copies Rancher makes into each namespace of a project.
pub const PROJECT_SCOPED_COPY: &str = "management.cattle.io/project-scoped-secret-copy";
/// The field manager of every write (server-side apply and patches).
pub const FIELD_MANAGER: &str = "rancher-ecr-credentials";
pub const DOCKER_CONFIG_JSON: &str = ".dockerconfigjson";
pub const DOCKER_CONFIG_TYPE: &str = "kubernetes.io/dockerconfigjson";

/// What every Secret of a target should hold now: one entry per registry address.
pub struct Desired {
    /// Registry address (bare host, or the address from REGISTRY_ADDRESS_MAP) → user name and password.
    auths: BTreeMap<String, (String, SecretString)>,
    /// The tokens' hosts (one per registry, whatever its addresses).
    hosts: Vec<String>,
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired").field("hosts", &self.hosts).field("password", &"[redacted]").finish()
    }
}

impl Desired {
    /// One entry per address of each token: the host in each form of ECR_HOST_FORMS (bare: no scheme, no
    /// `:443`), or the address REGISTRY_ADDRESS_MAP gives.
    pub fn new(tokens: &[RegistryToken]) -> Desired {
        let mut auths = BTreeMap::new();
        for token in tokens {
            let addresses =
                if token.addresses.is_empty() { std::slice::from_ref(&token.host) } else { &token.addresses[..] };
            for address in addresses {
                auths.insert(address.clone(), (token.username.clone(), token.password.clone()));
            }
        }
        let hosts = tokens.iter().map(|t| t.host.clone()).collect();
        Desired { auths, hosts, expires_at: tokens.iter().filter_map(|t| t.expires_at).min() }
    }

    /// True when both hold the same registries, user names and passwords.
    pub fn same_as(&self, other: &Desired) -> bool {
        self.auths.len() == other.auths.len()
            && self.auths.iter().zip(&other.auths).all(
                |((host, (user, password)), (other_host, (other_user, other_password)))| {
                    host == other_host
                        && user == other_user
                        && password.expose_secret() == other_password.expose_secret()
                },
            )
    }

    /// The registry addresses, comma-separated, for logs.
    pub fn hosts(&self) -> String {
        self.hosts.join(",")
    }

    /// The tokens' hosts, as readiness and metrics know them.
    pub fn host_list(&self) -> Vec<String> {
        self.hosts.clone()
    }

    /// `{"auths":{"<host>":{"username":…,"password":…,"auth":base64(username:password)}}}`.
    fn docker_config(&self) -> SecretString {
        let mut auths = serde_json::Map::new();
        for (host, (username, password)) in &self.auths {
            let password = password.expose_secret();
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            auths.insert(host.clone(), serde_json::json!({ "username": username, "password": password, "auth": auth }));
        }
        SecretString::from(serde_json::json!({ "auths": auths }).to_string())
    }

    /// True when `data` (the decoded `.dockerconfigjson`) holds exactly these registries with these passwords.
    pub fn is_held_by(&self, data: &[u8]) -> bool {
        let Ok(config) = serde_json::from_slice::<DockerConfig>(data) else { return false };
        config.auths.len() == self.auths.len()
            && self.auths.iter().all(|(host, (username, password))| {
                config.auths.get(host).is_some_and(|entry| {
                    entry.username.as_deref() == Some(username.as_str())
                        && entry.password.as_deref() == Some(password.expose_secret())
                })
            })
    }

    /// The whole Secret as this daemon applies it (server-side apply: the fields it owns).
    pub fn secret(&self, namespace: &str, name: &str, project: Option<&str>) -> Secret {
        let mut labels = BTreeMap::from([(MANAGED_BY.to_string(), MANAGED_BY_US.to_string())]);
        if let Some(project) = project {
            labels.insert(PROJECT_SCOPED.to_string(), project.to_string());
        }
        let annotations = self
            .expires_at
            .map(|at| BTreeMap::from([(EXPIRES_AT.to_string(), humantime::format_rfc3339_seconds(at).to_string())]));
        let data = self.docker_config().expose_secret().as_bytes().to_vec();
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(labels),
                annotations,
                ..ObjectMeta::default()
            },
            type_: Some(DOCKER_CONFIG_TYPE.to_string()),
            data: Some(BTreeMap::from([(DOCKER_CONFIG_JSON.to_string(), ByteString(data))])),
            ..Secret::default()
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    username: Option<String>,
    password: Option<String>,
}

/// What an existing Secret of the configured name is to this daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// None there: create it.
    Missing,
    /// Ours and already holding the current token: leave it.
    Current,
    /// Ours (or adopted), holding an older token: write it.
    Stale,
    /// Someone else's (no label of ours): leave it alone unless adoption is on.
    Foreign,
    /// A copy Rancher makes of a project-scoped Secret: never written, Rancher would overwrite it.
    RancherCopy,
    /// Ours by label, but of another type (e.g. `Opaque`): a type cannot be changed in place.
    WrongType,
}

/// Judges an existing Secret (`None`: there is none) against what it should hold. `project`: the project
/// label it must carry in project mode.
pub fn judge(existing: Option<&Secret>, desired: &Desired, adopt: bool, project: Option<&str>) -> Existing {
    let Some(secret) = existing else { return Existing::Missing };
    let annotations = secret.metadata.annotations.as_ref();
    if annotations.and_then(|a| a.get(PROJECT_SCOPED_COPY)).is_some_and(|v| v == "true") {
        return Existing::RancherCopy;
    }
    let labels = secret.metadata.labels.as_ref();
    let labelled = labelled_ours(secret);
    // Someone removed or changed our label: the fields we applied still name us as their manager.
    if !labelled && !written_by_us(secret) && !adopt {
        return Existing::Foreign;
    }
    if secret.type_.as_deref() != Some(DOCKER_CONFIG_TYPE) {
        return Existing::WrongType;
    }
    let project_ok = project.is_none_or(|p| labels.and_then(|l| l.get(PROJECT_SCOPED)).is_some_and(|v| v == p));
    let held = secret.data.as_ref().and_then(|d| d.get(DOCKER_CONFIG_JSON)).is_some_and(|d| desired.is_held_by(&d.0));
    if labelled && project_ok && held { Existing::Current } else { Existing::Stale }
}

/// True when the Secret carries our managed-by label.
pub fn labelled_ours(secret: &Secret) -> bool {
    secret.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY)).is_some_and(|v| v == MANAGED_BY_US)
}

/// True when this daemon applied fields of the Secret (its field manager is in `managedFields`).
pub fn written_by_us(secret: &Secret) -> bool {
    secret.metadata.managed_fields.iter().flatten().any(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
}

/// The field manager that changed the Secret last, other than this daemon (`managedFields`), when there is one.
pub fn other_writer(secret: &Secret) -> Option<String> {
    let others =
        secret.metadata.managed_fields.iter().flatten().filter(|m| m.manager.as_deref() != Some(FIELD_MANAGER));
    others.max_by_key(|m| m.time.as_ref().map(|t| t.0)).and_then(|m| m.manager.clone()).filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn tokens(password: &str) -> Vec<RegistryToken> {
        vec![RegistryToken {
            host: HOST.into(),
            addresses: vec![HOST.into()],
            username: "AWS".into(),
            password: password.to_string().into(),
            expires_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        }]
    }

    #[test]
    fn the_secret_holds_bare_hosts_with_username_password_and_auth() {
        let secret = Desired::new(&tokens("pw")).secret("apps", "ecr-credentials", None);
        assert_eq!(secret.type_.as_deref(), Some(DOCKER_CONFIG_TYPE));
        let data = &secret.data.as_ref().unwrap()[DOCKER_CONFIG_JSON].0;
        let json: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"auths": {HOST: {"username": "AWS", "password": "pw", "auth": "QVdTOnB3"}}})
        );
        assert_eq!(secret.metadata.labels.as_ref().unwrap()[MANAGED_BY], MANAGED_BY_US);
        assert_eq!(secret.metadata.annotations.as_ref().unwrap()[EXPIRES_AT], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn an_existing_secret_is_judged_by_owner_type_and_content() {
        let desired = Desired::new(&tokens("new"));
        let current = desired.secret("apps", "ecr-credentials", None);
        assert_eq!(judge(None, &desired, false, None), Existing::Missing);
        assert_eq!(judge(Some(&current), &desired, false, None), Existing::Current);
        let older = Desired::new(&tokens("old")).secret("apps", "ecr-credentials", None);
        assert_eq!(judge(Some(&older), &desired, false, None), Existing::Stale);

        let mut foreign = current.clone();
        foreign.metadata.labels = None;
        assert_eq!(judge(Some(&foreign), &desired, false, None), Existing::Foreign);
        assert_eq!(judge(Some(&foreign), &desired, true, None), Existing::Stale, "adopted: written once");

        let mut copy = current.clone();
        copy.metadata.annotations = Some(BTreeMap::from([(PROJECT_SCOPED_COPY.into(), "true".into())]));
        assert_eq!(judge(Some(&copy), &desired, true, None), Existing::RancherCopy);

        let mut opaque = current.clone();
        opaque.type_ = Some("Opaque".into());
        assert_eq!(judge(Some(&opaque), &desired, false, None), Existing::WrongType);

        assert_eq!(judge(Some(&current), &desired, false, Some("p-abcde")), Existing::Stale, "project label missing");
        let project = desired.secret("c-x-p-abcde", "ecr-credentials", Some("p-abcde"));
        assert_eq!(judge(Some(&project), &desired, false, Some("p-abcde")), Existing::Current);
    }

    #[test]
    fn a_secret_with_another_host_more_or_less_is_stale() {
        let desired = Desired::new(&tokens("pw"));
        let extra = br#"{"auths":{"123456789012.dkr.ecr.us-east-1.amazonaws.com":{"username":"AWS","password":"pw"},"quay.io":{"username":"u","password":"p"}}}"#;
        assert!(!desired.is_held_by(extra));
        let same = br#"{"auths":{"123456789012.dkr.ecr.us-east-1.amazonaws.com":{"username":"AWS","password":"pw"}}}"#;
        assert!(desired.is_held_by(same));
        assert!(!desired.is_held_by(b"not json"));
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let desired = Desired::new(&tokens("very-secret-password"));
        assert!(!format!("{desired:?}").contains("very-secret-password"));
    }
}
