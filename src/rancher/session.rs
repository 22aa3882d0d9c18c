//! One authenticated conversation with a Rancher server: requests with the configured key, answers turned
//! into [`RancherError`]s, and collections read page by page.

use std::collections::HashSet;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::{Answer, RancherError, send};

/// A guard against a server whose pagination never ends: 10 million items.
const MAX_PAGES: usize = 10_000;

/// How requests authenticate.
#[derive(Clone)]
pub enum Auth {
    /// Rancher without access control.
    None,
    /// HTTP Basic with an access and a secret key (Cattle).
    Basic { access_key: String, secret_key: SecretString },
    /// `Authorization: Bearer <access>:<secret>` (Rancher 2 API keys).
    Bearer { token: SecretString },
}

#[derive(Clone)]
pub struct Session {
    http: reqwest::Client,
    auth: Auth,
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

impl Session {
    pub fn new(http: reqwest::Client, auth: Auth) -> Session {
        Session { http, auth }
    }

    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url).header(reqwest::header::ACCEPT, "application/json");
        match &self.auth {
            Auth::None => request,
            Auth::Basic { access_key, secret_key } => request.basic_auth(access_key, Some(secret_key.expose_secret())),
            Auth::Bearer { token } => request.bearer_auth(token.expose_secret()),
        }
    }

    pub(crate) async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, RancherError> {
        let request = request.build().map_err(|e| RancherError::Body {
            method: Method::GET,
            url: String::new(),
            detail: format!("could not build a request: {}", e.without_url()),
        })?;
        send(&self.http, request).await
    }

    /// Reads a collection to its end, handing every item to `visit`. Follows `pagination.next` by taking its
    /// `marker` onto our own URL, so that credentials go only where the configured URL points even when Rancher
    /// generates links with another host name. Returns the number of pages read.
    pub async fn for_each<T: DeserializeOwned>(
        &self,
        first: Url,
        mut visit: impl FnMut(T),
    ) -> Result<usize, RancherError> {
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
}

/// `base` with these query parameters set (replacing any of the same name).
pub fn with_query(base: &Url, params: &[(&str, &str)]) -> Url {
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
}
