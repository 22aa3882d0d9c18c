//! One authenticated conversation with a Rancher server: requests with the configured key, answers turned
//! into [`RancherError`]s, and collections read page by page.

use std::collections::HashSet;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::{Answer, RancherError, send};
use crate::redact;

/// A guard against a server whose pagination never ends. We ask for 1,000 items a page, so this is half a
/// million registries or credentials; when Rancher gives `pagination.total`, the bound is derived from it.
pub const MAX_PAGES: usize = 500;

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
    total: Option<u64>,
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
        let mut max_pages = MAX_PAGES;
        let mut page_number = 0;
        loop {
            page_number += 1;
            let answer = self.call(self.request(Method::GET, url.clone())).await?;
            let page: Page<T> = answer.json()?;
            let items = page.data.len();
            page.data.into_iter().for_each(&mut visit);
            let pagination = page.pagination.unwrap_or(Pagination { next: None, total: None });
            let Some(next) = pagination.next.filter(|n| !n.is_empty()) else {
                return Ok(page_number);
            };
            if page_number == 1
                && let Some(total) = pagination.total
                && items > 0
            {
                // An honest server needs ceil(total / page size) pages; one more forgives an item added meanwhile.
                max_pages = max_pages.min((total as usize).div_ceil(items) + 1);
            }
            if page_number >= max_pages {
                return Err(RancherError::Body {
                    method: Method::GET,
                    url: first.to_string(),
                    detail: format!(
                        "Rancher still hands out a next page after {page_number} pages, more than an honest \
                         server needs{}; stopped reading",
                        pagination.total.map(|t| format!(" for {t} items")).unwrap_or_default()
                    ),
                });
            }
            let marker = Url::parse(&next)
                .ok()
                .and_then(|next| next.query_pairs().find(|(k, _)| k == "marker").map(|(_, v)| v.into_owned()))
                .ok_or_else(|| RancherError::Body {
                    method: Method::GET,
                    url: url.to_string(),
                    detail: format!("pagination.next '{}' has no marker", redact::outside(&next)),
                })?;
            if !seen_markers.insert(marker.clone()) {
                return Err(RancherError::Body {
                    method: Method::GET,
                    url: url.to_string(),
                    detail: format!("pagination repeats marker '{}'", redact::outside(&marker)),
                });
            }
            url = with_query(&first, &[("marker", &marker)]);
        }
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
