//! The watches' LIST-then-WATCH loop, which starts again from a LIST whenever a watch did not end by its own
//! timeout. kube's `watcher` resumes from its last resourceVersion after a dropped connection: an API server
//! restored on an empty etcd accepts that watch (its revision is "in the future") and then sends nothing until its
//! own revisions pass that number, while namespaces and Secrets are made and deleted (checked on the test API
//! server: such a watch stays silent). A LIST shows what the server holds; only a watch that ran its full
//! [`WATCH_TIMEOUT`] is resumed where it ended.
//!
//! It gives kube's [`watcher::Event`]s (`Init`, `InitApply`…, `InitDone`, then `Apply` and `Delete`), so the
//! watch handles both alike. Failures back off from [`FIRST_DELAY`] up to [`MAX_DELAY`]; a watch the server
//! keeps ending early does too: never a hot loop.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::read::PAGE;

/// How long the API server holds one watch open (`timeoutSeconds`).
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(290);
/// A watch that ended this close to its timeout ended by it: resumed, not listed again.
const TIMEOUT_SLACK: Duration = Duration::from_secs(10);
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest wait before listing again: a server back (or restored) is seen within it.
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// What a watch selects: a label selector and a field selector, as the LIST takes them.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub labels: Option<String>,
    pub fields: Option<String>,
}

type Events<K> = Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<K>>> + Send>>;

enum Phase<K> {
    List,
    Watch { version: String },
    Streaming { version: String, events: Events<K>, since: Instant },
}

struct Loop<K: kube::Resource + Clone> {
    api: Api<K>,
    selector: Selector,
    phase: Phase<K>,
    ready: VecDeque<Event<K>>,
    delay: Duration,
}

/// Objects of `api` chosen by `selector`: a LIST (paged), then WATCHes from its resourceVersion, and a new LIST
/// after any error or any watch that ended early. Errors are given as one line each; the stream never ends.
pub fn relisting<K>(api: Api<K>, selector: Selector) -> impl Stream<Item = Result<Event<K>, String>> + Send
where
    K: kube::Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let start = Loop { api, selector, phase: Phase::List, ready: VecDeque::new(), delay: Duration::ZERO };
    futures_util::stream::unfold(start, |mut state| async move {
        let item = state.step().await;
        Some((item, state))
    })
}

impl<K> Loop<K>
where
    K: kube::Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    fn back_off(&mut self) {
        self.delay = (self.delay * 2).clamp(FIRST_DELAY, MAX_DELAY);
    }

    async fn step(&mut self) -> Result<Event<K>, String> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            match std::mem::replace(&mut self.phase, Phase::List) {
                Phase::List => {
                    if !self.delay.is_zero() {
                        tokio::time::sleep(self.delay).await;
                    }
                    match list(&self.api, &self.selector).await {
                        Ok((objects, version)) => {
                            self.ready.push_back(Event::Init);
                            self.ready.extend(objects.into_iter().map(Event::InitApply));
                            self.ready.push_back(Event::InitDone);
                            self.phase = Phase::Watch { version };
                        }
                        Err(e) => {
                            self.back_off();
                            return Err(e);
                        }
                    }
                }
                Phase::Watch { version } => {
                    let mut params = WatchParams::default().timeout(WATCH_TIMEOUT.as_secs() as u32);
                    if let Some(labels) = &self.selector.labels {
                        params = params.labels(labels);
                    }
                    if let Some(fields) = &self.selector.fields {
                        params = params.fields(fields);
                    }
                    match self.api.watch(&params, &version).await {
                        Ok(events) => {
                            self.phase = Phase::Streaming { version, events: events.boxed(), since: Instant::now() }
                        }
                        Err(e) => {
                            self.back_off();
                            return Err(crate::redact::error_chain(&e));
                        }
                    }
                }
                Phase::Streaming { mut version, mut events, since } => match events.next().await {
                    Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                        version = object.meta().resource_version.clone().unwrap_or(version);
                        self.delay = Duration::ZERO;
                        self.phase = Phase::Streaming { version, events, since };
                        return Ok(Event::Apply(object));
                    }
                    Some(Ok(WatchEvent::Deleted(object))) => {
                        version = object.meta().resource_version.clone().unwrap_or(version);
                        self.delay = Duration::ZERO;
                        self.phase = Phase::Streaming { version, events, since };
                        return Ok(Event::Delete(object));
                    }
                    Some(Ok(WatchEvent::Bookmark(mark))) => {
                        self.phase = Phase::Streaming { version: mark.metadata.resource_version, events, since };
                    }
                    // 410 Gone (too old) or anything else: the server's word on the watch; list again.
                    Some(Ok(WatchEvent::Error(status))) => {
                        self.back_off();
                        return Err(format!("HTTP {} {}: {}", status.code, status.reason, status.message));
                    }
                    Some(Err(e)) => {
                        self.back_off();
                        return Err(crate::redact::error_chain(&e));
                    }
                    None if since.elapsed() + TIMEOUT_SLACK >= WATCH_TIMEOUT => {
                        self.delay = Duration::ZERO;
                        self.phase = Phase::Watch { version };
                    }
                    // Ended early: the server went away or was replaced; what it holds now is what counts.
                    None => self.back_off(),
                },
            }
        }
    }
}

/// Every page of the LIST, and its resourceVersion.
async fn list<K>(api: &Api<K>, selector: &Selector) -> Result<(Vec<K>, String), String>
where
    K: kube::Resource + Clone + Debug + DeserializeOwned,
{
    let mut params = ListParams::default().limit(PAGE);
    if let Some(labels) = &selector.labels {
        params = params.labels(labels);
    }
    if let Some(fields) = &selector.fields {
        params = params.fields(fields);
    }
    let mut objects = Vec::new();
    loop {
        let page = api.list(&params).await.map_err(|e| match e {
            kube::Error::Api(status) => format!("list: HTTP {} {}: {}", status.code, status.reason, status.message),
            other => crate::redact::error_chain(&other),
        })?;
        objects.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((objects, page.metadata.resource_version.unwrap_or_default())),
        }
    }
}
