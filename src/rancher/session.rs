//! One authenticated conversation with a Rancher server: requests with the configured key, answers turned
//! into [`RancherError`]s, and collections read page by page.

use std::collections::HashSet;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::error::RancherError;
use super::http::{Answer, send};
use crate::redact;
use crate::secret::Secret;

/// A guard against a server whose pagination never ends. We ask for 1,000 items a page, so this is half a
/// million registries or credentials; when Rancher gives `pagination.total`, the bound is derived from it.
pub const MAX_PAGES: usize = 500;

/// How requests authenticate. Keys and tokens are [`Secret`]s, read anew from their files when they rotate.
#[derive(Clone)]
pub enum Auth {
    /// Rancher without access control.
    None,
    /// HTTP Basic with an access and a secret key (Cattle).
    Basic { access_key: Secret, secret_key: Secret },
    /// `Authorization: Bearer <access>:<secret>` (Rancher 2 API keys).
    BearerPair { access_key: Secret, secret_key: Secret },
    /// A token: `Bearer <token>`, or, with `basic_when_paired`, HTTP Basic with its two halves when it is
    /// `access:secret` (Cattle).
    Token { token: Secret, basic_when_paired: bool },
}

impl Auth {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Basic { access_key, secret_key } => {
                request.basic_auth(access_key.expose(), Some(secret_key.expose()))
            }
            Auth::BearerPair { access_key, secret_key } => {
                request.bearer_auth(format!("{}:{}", access_key.expose(), secret_key.expose()))
            }
            Auth::Token { token, basic_when_paired } => {
                let token = token.expose();
                match token.split_once(':') {
                    Some((access, secret)) if *basic_when_paired => request.basic_auth(access, Some(secret)),
                    _ => request.bearer_auth(token),
                }
            }
        }
    }

    /// Reads the key and token files again; true when anything changed.
    pub fn reload(&self) -> bool {
        match self {
            Auth::None => false,
            Auth::Basic { access_key, secret_key } | Auth::BearerPair { access_key, secret_key } => {
                // Both, always: `|` would skip the second once the first changed.
                let access = access_key.reload();
                let secret = secret_key.reload();
                access || secret
            }
            Auth::Token { token, .. } => token.reload(),
        }
    }
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

    /// A request to Rancher; [`Session::call`] adds the credentials when it sends it.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http.request(method, url).header(reqwest::header::ACCEPT, "application/json")
    }

    /// Reads the key and token files again (see [`Auth::reload`]); true when anything changed.
    pub fn reload_secrets(&self) -> bool {
        self.auth.reload()
    }

    /// Sends a request with the credentials. After a 401 or 403 the key and token files are read again, and
    /// when they changed (a rotated Secret) the request is sent once more with the new ones.
    pub(crate) async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, RancherError> {
        let again = request.try_clone();
        let result = self.send_with_auth(request).await;
        let rejected = matches!(&result, Err(RancherError::Status { status, .. })
            if *status == reqwest::StatusCode::UNAUTHORIZED || *status == reqwest::StatusCode::FORBIDDEN);
        match again {
            Some(again) if rejected && self.auth.reload() => self.send_with_auth(again).await,
            _ => result,
        }
    }

    async fn send_with_auth(&self, request: reqwest::RequestBuilder) -> Result<Answer, RancherError> {
        let request = self.auth.apply(request).build().map_err(|e| RancherError::Body {
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

    #[tokio::test]
    async fn after_a_401_a_rotated_key_file_is_read_and_the_request_sent_again() {
        let cattle = standins::cattle::FakeCattle::start(standins::cattle::CattleConfig {
            access_key: "access".into(),
            secret_key: "rotated-secret".into(),
            ..Default::default()
        })
        .await;
        let file = std::env::temp_dir().join(format!("session-test-{}", std::process::id()));
        std::fs::write(&file, "old-secret").unwrap();
        let secret_key = Secret::from_file("CATTLE_SECRET_KEY_FILE", &file, "old-secret");
        let auth = Auth::Basic { access_key: Secret::fixed("CATTLE_ACCESS_KEY", "access"), secret_key };
        let session = Session::new(reqwest::Client::new(), auth);
        let url = Url::parse(&format!("{}/v2-beta/registries", cattle.url())).unwrap();

        let refused = session.call(session.request(Method::GET, url.clone())).await;
        assert!(matches!(refused, Err(RancherError::Status { status, .. }) if status == 401), "unchanged file");
        std::fs::write(&file, "rotated-secret\n").unwrap();
        let answer = session.call(session.request(Method::GET, url)).await;
        std::fs::remove_file(&file).unwrap();

        assert!(answer.is_ok(), "{:?}", answer.err());
        let statuses: Vec<u16> = cattle.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [401, 401, 200], "no retry while the file is unchanged, one with the new key after");
    }

    #[test]
    fn query_parameters_are_replaced_not_repeated() {
        let base = Url::parse("http://r/v1/registries?limit=1000").unwrap();
        let next = with_query(&base, &[("marker", "m1000")]);
        assert_eq!(next.as_str(), "http://r/v1/registries?limit=1000&marker=m1000");
        let again = with_query(&next, &[("marker", "m2000")]);
        assert_eq!(again.as_str(), "http://r/v1/registries?limit=1000&marker=m2000");
    }
}
