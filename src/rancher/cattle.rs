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

use super::RancherError;
use super::endpoint::{Endpoint, is_cattle_id};
use super::session::{Session, with_query};
use crate::address;
use crate::ecr::RegistryToken;

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
    endpoint: Endpoint,
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

/// What happened to one ECR host in one Rancher environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOutcome {
    /// The password of these credentials was replaced.
    Updated { registry: String, credentials: Vec<String> },
    /// The registry existed without a credential; one was created.
    CreatedCredential { registry: String, credential: String },
    /// No registry matched; AUTO_CREATE created it and its credential.
    CreatedRegistry { registry: String, credential: String },
    /// No registry matched and AUTO_CREATE is off.
    NoRegistry,
    /// The registry has credentials, but all are deactivated: someone switched them off on purpose.
    OnlyInactive { registry: String },
}

impl HostOutcome {
    /// True when a credential now holds the new password.
    pub fn wrote_credential(&self) -> bool {
        match self {
            HostOutcome::Updated { credentials, .. } => !credentials.is_empty(),
            HostOutcome::CreatedCredential { .. } | HostOutcome::CreatedRegistry { .. } => true,
            HostOutcome::NoRegistry | HostOutcome::OnlyInactive { .. } => false,
        }
    }
}

/// One line of a sync: the host and what happened to it.
#[derive(Debug)]
pub struct HostReport {
    pub host: String,
    pub result: Result<HostOutcome, RancherError>,
}

/// Malformed registry addresses seen while scanning; reported, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAddress {
    pub registry: String,
    pub server_address: String,
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
    pub fn new(session: Session, endpoint: Endpoint) -> Cattle {
        Cattle { session, endpoint }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Scans every registry of the environment and returns those whose address names one of `hosts`, paired
    /// with the host, plus the registries whose address could not be read.
    pub async fn find_registries(
        &self,
        hosts: &[&str],
    ) -> Result<(Vec<(String, Registry)>, Vec<SkippedAddress>), RancherError> {
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
                        if let Some(host) = hosts.iter().find(|h| **h == normalized) {
                            found.push((host.to_string(), Registry { id: item.id, server_address: address, state }));
                        }
                    }
                    None => skipped.push(SkippedAddress { registry: item.id, server_address: address }),
                }
            })
            .await?;
        Ok((found, skipped))
    }

    /// The credentials of a registry that are not removed, lowest id first.
    pub async fn credentials_of(&self, registry_id: &str) -> Result<Vec<Credential>, RancherError> {
        let url = with_query(
            &self.endpoint.collection(CREDENTIALS),
            &[("registryId", registry_id), ("limit", &PAGE_LIMIT.to_string())],
        );
        let mut credentials = Vec::new();
        self.session
            .for_each(url, |item: CredentialItem| {
                let state = item.state.unwrap_or_default();
                if !is_gone(&state) {
                    credentials.push(Credential { id: item.id, state });
                }
            })
            .await?;
        Ok(credentials)
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
    /// credential lookup and one PUT per credential. A failure for one host does not stop the others.
    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        auto_create: bool,
    ) -> Result<(Vec<HostReport>, Vec<SkippedAddress>), RancherError> {
        let hosts: Vec<&str> = tokens.iter().map(|t| t.host.as_str()).collect();
        let (found, skipped) = self.find_registries(&hosts).await?;
        let mut reports = Vec::new();
        for token in tokens {
            let registries: Vec<&Registry> = found.iter().filter(|(h, _)| *h == token.host).map(|(_, r)| r).collect();
            if registries.is_empty() {
                let result = if auto_create { self.create_all(token).await } else { Ok(HostOutcome::NoRegistry) };
                reports.push(HostReport { host: token.host.clone(), result });
                continue;
            }
            for registry in registries {
                let result = self.refresh_registry(registry, token).await;
                reports.push(HostReport { host: token.host.clone(), result });
            }
        }
        Ok((reports, skipped))
    }

    async fn refresh_registry(&self, registry: &Registry, token: &RegistryToken) -> Result<HostOutcome, RancherError> {
        let credentials = self.credentials_of(&registry.id).await?;
        if credentials.is_empty() {
            let credential = self.create_credential(&registry.id, token).await?;
            return Ok(HostOutcome::CreatedCredential { registry: registry.id.clone(), credential });
        }
        let live: Vec<&Credential> = credentials.iter().filter(|c| !is_switched_off(&c.state)).collect();
        if live.is_empty() {
            return Ok(HostOutcome::OnlyInactive { registry: registry.id.clone() });
        }
        let mut updated = Vec::new();
        for credential in live {
            self.update_credential(&credential.id, token).await?;
            updated.push(credential.id.clone());
        }
        Ok(HostOutcome::Updated { registry: registry.id.clone(), credentials: updated })
    }

    async fn create_all(&self, token: &RegistryToken) -> Result<HostOutcome, RancherError> {
        let registry = self.create_registry(&token.host).await?;
        let credential = self.create_credential(&registry, token).await?;
        Ok(HostOutcome::CreatedRegistry { registry, credential })
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
