//! Rancher 1.x through the Cattle API (`/v1`, `/v2-beta`): find the `registry` whose `serverAddress` names an
//! ECR host and write the new password into its `registryCredential`s.
//!
//! Facts this relies on (see the reference notes on the Cattle API): `serverAddress` is not a server-side
//! filter, so the whole registry collection is read, page by page; credentials are found with the
//! `registryId` filter; `secretValue` is write-only; `/v1` requires an `email` on create, and sending it where
//! the field does not exist is harmless.

use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::endpoint::{CattleEndpoint, is_cattle_id};
use super::error::RancherError;
use super::session::{Session, with_query};
use super::settings;
use crate::address;
use crate::redact;
use crate::report::{Action, Failure, Notice, SyncOptions, SyncReport, Written};
use crate::token::RegistryToken;

/// The email the predecessor sent; `/v1` requires one on create and nothing checks it.
pub const EMAIL: &str = "not-really@required.anymore";
/// Items per page. Cattle caps `limit` at 3000 (the docs say 1000); larger pages mean fewer requests.
pub const PAGE_LIMIT: u32 = 1000;

const REGISTRIES: &str = "registries";
const CREDENTIALS: &str = "registrycredentials";

/// A Cattle environment reached through one endpoint and one API key.
#[derive(Clone)]
pub struct Cattle {
    session: Session,
    endpoint: CattleEndpoint,
}

/// A registry whose server address names one of the ECR hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub id: String,
    pub server_address: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: String,
    pub state: String,
}

#[derive(Deserialize)]
struct RegistryItem {
    id: String,
    #[serde(rename = "serverAddress")]
    server_address: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize)]
struct CredentialItem {
    id: String,
    #[serde(rename = "registryId")]
    registry_id: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// States in which a resource is on its way out or gone.
fn is_gone(state: &str) -> bool {
    matches!(state, "removed" | "removing" | "purged" | "purging")
}

/// States of a credential someone switched off; Cattle pulls only with active credentials.
fn is_switched_off(state: &str) -> bool {
    matches!(state, "inactive" | "deactivating")
}

impl Cattle {
    pub fn new(session: Session, endpoint: CattleEndpoint) -> Cattle {
        Cattle { session, endpoint }
    }

    /// Reads the key and token files again (rotated secrets); true when anything changed.
    pub fn reload_secrets(&self) -> bool {
        self.session.reload_secrets()
    }

    pub fn endpoint(&self) -> &CattleEndpoint {
        &self.endpoint
    }

    /// Scans every registry of the environment and returns those whose address names one of `hosts`, paired
    /// with the host, plus the registries whose address could not be read.
    pub async fn find_registries(
        &self,
        hosts: &[&str],
    ) -> Result<(Vec<(String, Registry)>, Vec<Notice>), RancherError> {
        let url = with_query(&self.endpoint.collection(REGISTRIES), &[("limit", &PAGE_LIMIT.to_string())]);
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        self.session
            .for_each(url, |item: RegistryItem| {
                let state = item.state.unwrap_or_default();
                if is_gone(&state) {
                    return;
                }
                let address = item.server_address.unwrap_or_default();
                match address::normalize(&address) {
                    Some(normalized) => {
                        // Every form of an ECR registry's host (FIPS, dual-stack) takes the same token.
                        if let Some(host) = hosts.iter().find(|h| address::same_registry(h, &normalized)) {
                            found.push((host.to_string(), Registry { id: item.id, server_address: address, state }));
                        }
                    }
                    None => skipped.push(Notice::MalformedAddress {
                        resource: format!("registry {}", redact::outside(&item.id)),
                        address: redact::outside(&address),
                    }),
                }
            })
            .await?;
        Ok((found, skipped))
    }

    /// The credentials of a registry that are not removed, lowest id first. The answer is checked, not trusted:
    /// a credential whose own `registryId` is not this registry (a server or proxy that ignored the filter) is
    /// left out with a notice, so that this registry's password is never written into another's credential.
    pub async fn credentials_of(&self, registry_id: &str) -> Result<(Vec<Credential>, Vec<Notice>), RancherError> {
        let url = with_query(
            &self.endpoint.collection(CREDENTIALS),
            &[("registryId", registry_id), ("limit", &PAGE_LIMIT.to_string())],
        );
        let mut credentials = Vec::new();
        let mut foreign = Vec::new();
        self.session
            .for_each(url, |item: CredentialItem| {
                let belongs = item.registry_id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(registry_id));
                if !belongs {
                    foreign.push(Notice::NotAskedFor {
                        resource: format!("credential {}", redact::outside(&item.id)),
                        reason: format!(
                            "it belongs to registry {}, not {registry_id}: Rancher ignored the registryId filter",
                            item.registry_id.as_deref().map(redact::outside).unwrap_or_else(|| "(none)".into())
                        ),
                    });
                    return;
                }
                let state = item.state.unwrap_or_default();
                if !is_gone(&state) {
                    credentials.push(Credential { id: item.id, state });
                }
            })
            .await?;
        Ok((credentials, foreign))
    }

    pub async fn update_credential(&self, credential_id: &str, token: &RegistryToken) -> Result<(), RancherError> {
        let url = self.resource_url(CREDENTIALS, credential_id)?;
        let body = json!({
            "publicValue": token.username,
            "secretValue": token.password.expose_secret(),
            "email": EMAIL,
        });
        self.session.call(self.session.request(Method::PUT, url).json(&body)).await?;
        Ok(())
    }

    pub async fn create_registry(&self, host: &str) -> Result<String, RancherError> {
        let body = json!({ "type": "registry", "serverAddress": host });
        let answer = self
            .session
            .call(self.session.request(Method::POST, self.endpoint.collection(REGISTRIES)).json(&body))
            .await?;
        Ok(answer.json::<Created>()?.id)
    }

    pub async fn create_credential(&self, registry_id: &str, token: &RegistryToken) -> Result<String, RancherError> {
        let body = json!({
            "type": "registryCredential",
            "registryId": registry_id,
            "publicValue": token.username,
            "secretValue": token.password.expose_secret(),
            "email": EMAIL,
        });
        let answer = self
            .session
            .call(self.session.request(Method::POST, self.endpoint.collection(CREDENTIALS)).json(&body))
            .await?;
        Ok(answer.json::<Created>()?.id)
    }

    fn resource_url(&self, collection: &str, id: &str) -> Result<Url, RancherError> {
        if !is_cattle_id(id) {
            return Err(RancherError::Body {
                method: Method::GET,
                url: self.endpoint.collection(collection).to_string(),
                detail: format!("'{id}' is not a Cattle id"),
            });
        }
        Ok(self.endpoint.resource(collection, id))
    }

    /// Brings every ECR host up to date in this environment: one registry scan, then per matching registry one
    /// credential lookup and one PUT per credential. A failure for one host does not stop the others; only a
    /// failed registry scan fails the whole sync.
    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        options: SyncOptions,
    ) -> Result<SyncReport<RancherError>, RancherError> {
        let hosts: Vec<&str> = tokens.iter().map(|t| t.host.as_str()).collect();
        let (found, skipped) = self.find_registries(&hosts).await?;
        let mut report = SyncReport { notices: skipped, ..SyncReport::default() };
        for token in tokens {
            let registries: Vec<&Registry> = found.iter().filter(|(h, _)| *h == token.host).map(|(_, r)| r).collect();
            if registries.is_empty() {
                if !options.auto_create {
                    report.notices.push(Notice::NoRegistry { host: token.host.clone(), scope: None });
                    continue;
                }
                // No form of this registry exists: create it in each configured form (ECR_HOST_FORMS).
                for address in &token.addresses {
                    if options.dry_run {
                        report.written.push(Written {
                            host: token.host.clone(),
                            scope: None,
                            resource: format!("a new registry {address} and credential"),
                            action: Action::CreatedWithRegistry,
                        });
                        continue;
                    }
                    match self.create_all(address, token).await {
                        Ok(written) => report.written.push(written),
                        Err(error) => report.failures.push(Failure { host: token.host.clone(), scope: None, error }),
                    }
                }
                continue;
            }
            for registry in registries {
                if let Err(error) = self.refresh_registry(registry, token, options.dry_run, &mut report).await {
                    report.failures.push(Failure { host: token.host.clone(), scope: None, error });
                }
            }
        }
        Ok(report)
    }

    async fn refresh_registry(
        &self,
        registry: &Registry,
        token: &RegistryToken,
        dry_run: bool,
        report: &mut SyncReport<RancherError>,
    ) -> Result<(), RancherError> {
        let written = |credential: &str, action| Written {
            host: token.host.clone(),
            scope: None,
            resource: format!("registry {} credential {credential}", registry.id),
            action,
        };
        let (credentials, foreign) = self.credentials_of(&registry.id).await?;
        report.notices.extend(foreign);
        if credentials.is_empty() {
            let credential = match dry_run {
                true => "(new)".to_string(),
                false => self.create_credential(&registry.id, token).await?,
            };
            report.written.push(written(&credential, Action::Created));
            return Ok(());
        }
        let live: Vec<&Credential> = credentials.iter().filter(|c| !is_switched_off(&c.state)).collect();
        if live.is_empty() {
            report
                .notices
                .push(Notice::OnlyInactive { host: token.host.clone(), resource: format!("registry {}", registry.id) });
            return Ok(());
        }
        for credential in live {
            if !dry_run {
                self.update_credential(&credential.id, token).await?;
            }
            report.written.push(written(&credential.id, Action::Updated));
        }
        Ok(())
    }

    async fn create_all(&self, address: &str, token: &RegistryToken) -> Result<Written, RancherError> {
        let registry = self.create_registry(address).await?;
        let credential = self.create_credential(&registry, token).await?;
        Ok(Written {
            host: token.host.clone(),
            scope: None,
            resource: format!("registry {registry} ({address}) credential {credential}"),
            action: Action::CreatedWithRegistry,
        })
    }
}

/// Several environments of one Rancher 1.x, reached with an account API key. The environments are listed again
/// at each refresh, so one added later is picked up then; each is synced like a single environment, and what is
/// written, noticed or failed carries the environment as its scope.
pub struct Environments {
    session: Session,
    root: CattleEndpoint,
    selection: settings::Environments,
}

#[derive(Deserialize)]
struct EnvironmentItem {
    id: String,
    name: Option<String>,
    state: Option<String>,
}

impl Environments {
    pub fn new(session: Session, root: CattleEndpoint, selection: settings::Environments) -> Environments {
        Environments { session, root, selection }
    }

    pub fn name(&self) -> String {
        match &self.selection {
            settings::Environments::All => format!("{} all environments", self.root),
            settings::Environments::Named(names) => format!("{} environments {}", self.root, names.join(",")),
        }
    }

    pub fn reload_secrets(&self) -> bool {
        self.session.reload_secrets()
    }

    /// The environments the key sees: (id, name), not removed.
    async fn list(&self) -> Result<Vec<(String, String)>, RancherError> {
        let url = with_query(&self.root.collection("projects"), &[("limit", &PAGE_LIMIT.to_string())]);
        let mut environments = Vec::new();
        self.session
            .for_each(url, |item: EnvironmentItem| {
                let state = item.state.unwrap_or_default();
                if is_gone(&state) {
                    return;
                }
                if !is_cattle_id(&item.id) {
                    tracing::warn!(rancher = %self.root, environment = %redact::outside(&item.id),
                        "Skipped an environment whose id is not a Cattle id");
                    return;
                }
                let name = item.name.filter(|n| !n.is_empty()).unwrap_or_else(|| item.id.clone());
                environments.push((item.id, redact::outside(&name)));
            })
            .await?;
        Ok(environments)
    }

    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        options: SyncOptions,
    ) -> Result<SyncReport<RancherError>, RancherError> {
        let listed = self.list().await?;
        let mut report = SyncReport::default();
        let chosen: Vec<(String, String)> = match &self.selection {
            settings::Environments::All => {
                if listed.is_empty() {
                    return Err(RancherError::Refused {
                        resource: format!("the environment list {}", self.root.collection("projects")),
                        detail: "the API key sees no environment; RANCHER_ENVIRONMENTS needs an account API key".into(),
                    });
                }
                listed
            }
            settings::Environments::Named(names) => {
                let mut chosen = Vec::new();
                for wanted in names {
                    let found = listed.iter().find(|(id, name)| id == wanted || name.eq_ignore_ascii_case(wanted));
                    match found {
                        Some(environment) => chosen.push(environment.clone()),
                        None => {
                            let error = RancherError::Refused {
                                resource: format!("environment '{wanted}'"),
                                detail: "the API key sees no environment of that name or id; check \
                                         RANCHER_ENVIRONMENTS and the key's access"
                                    .into(),
                            };
                            for token in tokens {
                                let scope = Some(wanted.clone());
                                report.failures.push(Failure { host: token.host.clone(), scope, error: error.clone() });
                            }
                        }
                    }
                }
                chosen
            }
        };
        for (id, name) in chosen {
            let scope = format!("{name} ({id})");
            let one = Cattle::new(self.session.clone(), self.root.environment(&id));
            match one.sync(tokens, options).await {
                Ok(found) => {
                    report
                        .written
                        .extend(found.written.into_iter().map(|w| Written { scope: Some(scope.clone()), ..w }));
                    report
                        .failures
                        .extend(found.failures.into_iter().map(|f| Failure { scope: Some(scope.clone()), ..f }));
                    report.notices.extend(found.notices.into_iter().map(|n| match n {
                        Notice::NoRegistry { host, .. } => Notice::NoRegistry { host, scope: Some(scope.clone()) },
                        other => other,
                    }));
                }
                Err(error) => {
                    for token in tokens {
                        let scope = Some(scope.clone());
                        report.failures.push(Failure { host: token.host.clone(), scope, error: error.clone() });
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_classified() {
        assert!(is_gone("removed") && is_gone("purged") && !is_gone("active"));
        assert!(is_switched_off("inactive") && !is_switched_off("registering") && !is_switched_off("active"));
    }
}
