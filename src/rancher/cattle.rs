//! Rancher 1.x through the Cattle API (`/v1`, `/v2-beta`): find the `registry` whose `serverAddress` names an
//! ECR host and write the new password into its `registryCredential`s.
//!
//! Facts this relies on (see the reference notes on the Cattle API): `serverAddress` is not a server-side
//! filter, so the whole registry collection is read, page by page; credentials are found with the
//! `registryId` filter; `secretValue` is write-only; `/v1` requires an `email` on create, and sending it where
//! the field does not exist is harmless.

use std::collections::HashSet;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use super::endpoint::{Endpoint, is_cattle_id};
use super::{Answer, RancherError, send};
use crate::address;
use crate::ecr::RegistryToken;

/// The email the predecessor sent; `/v1` requires one on create and nothing checks it.
pub const EMAIL: &str = "not-really@required.anymore";
/// Items per page. Cattle caps `limit` at 3000 (the docs say 1000); larger pages mean fewer requests.
pub const PAGE_LIMIT: u32 = 1000;
/// A guard against a server whose pagination never ends: 10 million registries.
const MAX_PAGES: usize = 10_000;

const REGISTRIES: &str = "registries";
const CREDENTIALS: &str = "registrycredentials";

/// A Cattle environment reached through one endpoint and one API key.
#[derive(Clone)]
pub struct Cattle {
    http: reqwest::Client,
    endpoint: Endpoint,
    credentials: Option<(String, SecretString)>,
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
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    next: Option<String>,
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
    pub fn new(http: reqwest::Client, endpoint: Endpoint, credentials: Option<(String, SecretString)>) -> Cattle {
        Cattle { http, endpoint, credentials }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url).header(reqwest::header::ACCEPT, "application/json");
        match &self.credentials {
            Some((access, secret)) => request.basic_auth(access, Some(secret.expose_secret())),
            None => request,
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, RancherError> {
        let request = request.build().map_err(|e| RancherError::Body {
            method: Method::GET,
            url: self.endpoint.to_string(),
            detail: format!("could not build a request: {}", e.without_url()),
        })?;
        send(&self.http, request).await
    }

    /// Reads a collection to its end, handing every item to `visit`. Follows `pagination.next` by taking its
    /// `marker` onto our own URL, so that credentials go only where `CATTLE_URL` points even when Rancher
    /// generates links with another host name. Returns the number of pages read.
    async fn for_each<T: DeserializeOwned>(&self, first: Url, mut visit: impl FnMut(T)) -> Result<usize, RancherError> {
        let mut url = first.clone();
        let mut seen_markers = HashSet::new();
        for page_number in 1..=MAX_PAGES {
            let answer = self.call(self.request(Method::GET, url.clone())).await?;
            let page: Page<T> = answer.json()?;
            page.data.into_iter().for_each(&mut visit);
            let Some(next) = page.pagination.and_then(|p| p.next).filter(|n| !n.is_empty()) else {
                return Ok(page_number);
            };
            let marker = Url::parse(&next)
                .ok()
                .and_then(|next| next.query_pairs().find(|(k, _)| k == "marker").map(|(_, v)| v.into_owned()))
                .ok_or_else(|| RancherError::Body {
                    method: Method::GET,
                    url: url.to_string(),
                    detail: format!("pagination.next '{next}' has no marker"),
                })?;
            if !seen_markers.insert(marker.clone()) {
                return Err(RancherError::Body {
                    method: Method::GET,
                    url: url.to_string(),
                    detail: format!("pagination repeats marker '{marker}'"),
                });
            }
            url = with_query(&first, &[("marker", &marker)]);
        }
        Err(RancherError::Body {
            method: Method::GET,
            url: first.to_string(),
            detail: format!("more than {MAX_PAGES} pages"),
        })
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
        self.for_each(url, |item: RegistryItem| {
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
        self.for_each(url, |item: CredentialItem| {
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
        self.call(self.request(Method::PUT, url).json(&body)).await?;
        Ok(())
    }

    pub async fn create_registry(&self, host: &str) -> Result<String, RancherError> {
        let body = json!({ "type": "registry", "serverAddress": host });
        let answer = self.call(self.request(Method::POST, self.endpoint.collection(REGISTRIES)).json(&body)).await?;
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
        let answer = self.call(self.request(Method::POST, self.endpoint.collection(CREDENTIALS)).json(&body)).await?;
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

/// `base` with these query parameters set (replacing any of the same name).
fn with_query(base: &Url, params: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    let kept: Vec<(String, String)> = base
        .query_pairs()
        .filter(|(k, _)| !params.iter().any(|(name, _)| k == name))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_replaced_not_repeated() {
        let base = Url::parse("http://r/v1/registries?limit=1000").unwrap();
        let next = with_query(&base, &[("marker", "m1000")]);
        assert_eq!(next.as_str(), "http://r/v1/registries?limit=1000&marker=m1000");
        let again = with_query(&next, &[("marker", "m2000")]);
        assert_eq!(again.as_str(), "http://r/v1/registries?limit=1000&marker=m2000");
    }

    #[test]
    fn states_are_classified() {
        assert!(is_gone("removed") && is_gone("purged") && !is_gone("active"));
        assert!(is_switched_off("inactive") && !is_switched_off("registering") && !is_switched_off("active"));
    }
}
