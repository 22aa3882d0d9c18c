//! The refresh loop: get tokens from ECR, write them into a target, sleep until the next refresh is due.
//!
//! One cycle never touches the target unless every ECR entry decoded cleanly. After a success the next cycle is
//! due at a share of the token's remaining lifetime ([`Schedule`]); after a failure, sooner ([`Backoff`]).
//! Cancellation ends the loop at once, during a sleep or in the middle of a cycle. A [`Trigger`] ends a sleep
//! early: a refresh now, with new tokens from ECR for the registries it names (a failed pull diagnosed an
//! expired token).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::address::{self, HostForm};
use crate::ecr::{Ecr, EcrError};
use crate::report::{SyncOptions, rfc3339};
use crate::schedule::{Backoff, ExpiryProblem, Schedule};
use crate::status::Status;
use crate::target::{self, Target, TargetError};
use crate::token::RegistryToken;

/// How long tokens fetched for one target are reused for another target fed by the same source.
const REUSE_TOKENS_FOR: Duration = Duration::from_secs(300);

/// One source of ECR tokens (credentials × region), shared by the targets it feeds: one GetAuthorizationToken
/// serves them all while its tokens are fresh.
pub struct Source {
    pub name: String,
    ecr: Ecr,
    /// ECR host → the address the targets store for it.
    addresses: Vec<(String, String)>,
    /// The forms of each ECR host that are written where entries are created.
    host_forms: Vec<HostForm>,
    fetched: tokio::sync::Mutex<Option<(tokio::time::Instant, Vec<RegistryToken>)>>,
    /// The ECR hosts of the last tokens fetched (before REGISTRY_ADDRESS_MAP), to know which registries this
    /// source covers.
    registries: std::sync::Mutex<Vec<String>>,
}

impl Source {
    pub fn new(name: String, ecr: Ecr, addresses: Vec<(String, String)>, host_forms: Vec<HostForm>) -> Source {
        Source {
            name,
            ecr,
            addresses,
            host_forms,
            fetched: tokio::sync::Mutex::new(None),
            registries: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The tokens of this source, each under the address the targets know its registry by. Errors are not kept:
    /// the next call asks ECR again.
    pub async fn tokens(&self) -> Result<Vec<RegistryToken>, EcrError> {
        let mut fetched = self.fetched.lock().await;
        if let Some((at, tokens)) = fetched.as_ref()
            && at.elapsed() < REUSE_TOKENS_FOR
        {
            return Ok(tokens.clone());
        }
        let mut tokens = self.ecr.fetch_tokens().await?;
        *self.registries.lock().unwrap_or_else(|p| p.into_inner()) = tokens.iter().map(|t| t.host.clone()).collect();
        debug!(source = %self.name, region = self.ecr.region(), registries = tokens.len(), "Got ECR authorization tokens");
        for token in &mut tokens {
            match self.addresses.iter().find(|(host, _)| *host == token.host) {
                Some((_, address)) => {
                    token.host = address.clone();
                    token.addresses = vec![address.clone()];
                }
                None => token.addresses = address::forms_of(&token.host, &self.host_forms),
            }
        }
        *fetched = Some((tokio::time::Instant::now(), tokens.clone()));
        Ok(tokens)
    }

    /// True when the last tokens of this source included `registry` (an ECR host, in any of its forms), or
    /// when it has not fetched any yet.
    pub fn covers(&self, registry: &str) -> bool {
        let registries = self.registries.lock().unwrap_or_else(|p| p.into_inner());
        registries.is_empty() || registries.iter().any(|host| address::same_registry(host, registry))
    }

    /// Drops the tokens kept for reuse: the next [`Source::tokens`] asks ECR.
    pub async fn forget_tokens(&self) {
        *self.fetched.lock().await = None;
    }
}

/// Asks a target's loop to refresh now, with new tokens from ECR for the registries named. Requests made
/// while a refresh runs are served by the next one, right after it.
#[derive(Default)]
pub struct Trigger {
    registries: std::sync::Mutex<Vec<String>>,
    wake: tokio::sync::Notify,
}

impl Trigger {
    /// Asks for a refresh now with a new token of `registry` (an ECR host). Rate-limiting is the caller's.
    pub fn request(&self, registry: &str) {
        let mut registries = self.registries.lock().unwrap_or_else(|p| p.into_inner());
        if !registries.iter().any(|r| r == registry) {
            registries.push(registry.to_string());
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.registries.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Everything the refresh of one target needs.
pub struct Refresher {
    /// The target's name in logs, metrics and readiness.
    pub name: String,
    pub sources: Vec<Arc<Source>>,
    pub target: Target,
    pub auto_create: bool,
    /// Read only: report what would be written.
    pub dry_run: bool,
    pub schedule: Schedule,
    pub backoff: Backoff,
    pub status: Arc<Status>,
    /// Ends a sleep early, for a refresh with new tokens now.
    pub trigger: Arc<Trigger>,
}

/// A cycle that brought every ECR host up to date in the target.
#[derive(Debug)]
pub struct CycleSuccess {
    /// The earliest expiry among the tokens written; drives the next refresh.
    pub earliest_expiry: Option<SystemTime>,
    pub credentials_updated: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Ecr(#[from] EcrError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{failed} of {total} credentials could not be brought up to date in the target")]
    Partial { failed: usize, total: usize, permanent: bool },
    #[error("{failed} of {total} token sources failed (the others were written): {first}")]
    Sources { failed: usize, total: usize, first: EcrError },
}

impl CycleError {
    pub fn is_permanent(&self) -> bool {
        match self {
            CycleError::Ecr(e) => e.is_permanent(),
            CycleError::Target(e) => e.is_permanent(),
            CycleError::Partial { permanent, .. } => *permanent,
            CycleError::Sources { first, .. } => first.is_permanent(),
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CycleError::Ecr(e) => e.kind(),
            CycleError::Target(e) => e.kind(),
            CycleError::Partial { .. } | CycleError::Sources { .. } => "partial",
        }
    }

    /// What happened, in words, without the details.
    pub fn summary(&self) -> &'static str {
        match self {
            CycleError::Ecr(_) => "Could not get ECR tokens; nothing written",
            CycleError::Target(e) => e.summary(),
            CycleError::Partial { .. } => "Refresh incomplete (each failure is logged above)",
            CycleError::Sources { .. } => "Refresh incomplete: some ECR token sources failed",
        }
    }

    /// What a person should do about a permanent error, when that is clear.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CycleError::Ecr(e) | CycleError::Sources { first: e, .. } if e.is_permanent() => Some(
                "Could not get ECR tokens; nothing written. Check the IAM permission ecr:GetAuthorizationToken, the AWS credentials and AWS_ECR_REGISTRY_IDS",
            ),
            CycleError::Target(e) => e.hint(),
            _ => None,
        }
    }
}

impl Refresher {
    /// One refresh: ECR first, then the target. Logs one line per credential written and per problem, and
    /// reports to [`Status`].
    pub async fn refresh_once(&self) -> Result<CycleSuccess, CycleError> {
        let started = tokio::time::Instant::now();
        self.status.refresh_started(&self.name);
        // Rotated key and token files take effect at the next refresh (and at once after a 401 or 403).
        self.target.reload_secrets();
        let result = self.cycle().await;
        let took = started.elapsed();
        let target = self.name.clone();
        match &result {
            Ok(_) => self.status.refresh_succeeded(&target, took, SystemTime::now()),
            Err(e) => {
                match e {
                    CycleError::Target(inner) => self.status.error(self.target.api(), inner.kind()),
                    // Counted source by source, or host by host, as they happened.
                    CycleError::Ecr(_) | CycleError::Partial { .. } | CycleError::Sources { .. } => {}
                }
                self.status.refresh_failed(&target, took, &e.to_string());
            }
        }
        result
    }

    /// One refresh for `--once`: logs a failure with what to do about it, and tells whether it succeeded.
    pub async fn refresh_once_logged(&self) -> bool {
        match self.refresh_once().await {
            Ok(_) => true,
            Err(e) => {
                let target = self.name.clone();
                match e.hint() {
                    Some(hint) => error!(target = %target, error = %e, kind = e.kind(), "Refresh failed: {hint}"),
                    None => error!(target = %target, error = %e, kind = e.kind(), "Refresh failed: {}", e.summary()),
                }
                false
            }
        }
    }

    async fn cycle(&self) -> Result<CycleSuccess, CycleError> {
        let mut tokens: Vec<RegistryToken> = Vec::new();
        let mut failed: Vec<EcrError> = Vec::new();
        for source in &self.sources {
            match source.tokens().await {
                Ok(more) => tokens.extend(more),
                Err(e) => {
                    self.status.error("aws", e.kind());
                    if self.sources.len() > 1 {
                        warn!(source = %source.name, error = %e, kind = e.kind(), "Could not get ECR tokens from this source");
                    }
                    failed.push(e);
                }
            }
        }
        if tokens.is_empty() && !failed.is_empty() {
            return Err(CycleError::Ecr(failed.swap_remove(0)));
        }
        let tokens = newest_per_host(tokens);
        let success = self.write(&tokens).await?;
        let count = failed.len();
        match failed.into_iter().next() {
            None => Ok(success),
            Some(first) => Err(CycleError::Sources { failed: count, total: self.sources.len(), first }),
        }
    }

    /// Writes the tokens into the target; logs and counts what it did through the target's own policy.
    async fn write(&self, tokens: &[RegistryToken]) -> Result<CycleSuccess, CycleError> {
        let target = self.name.clone();
        let options = SyncOptions { auto_create: self.auto_create, dry_run: self.dry_run };
        let report = self.target.sync(tokens, options).await?;
        let now = SystemTime::now();
        if !self.dry_run {
            for key in &report.held {
                let host = key.rsplit('/').next().unwrap_or(key);
                let expires_at = tokens.iter().find(|t| t.host == host).and_then(|t| t.expires_at);
                self.status.credential_written(&target, key, expires_at, now);
            }
            if let Some(places) = &report.places {
                self.status.places(&target, places);
            }
        }
        for written in &report.written {
            let expires_at = tokens
                .iter()
                .filter(|t| written.host.split(',').any(|h| h == t.host))
                .filter_map(|t| t.expires_at)
                .min();
            self.target.log_written(&target, written, expires_at, self.dry_run);
        }
        for notice in &report.notices {
            self.target.log_notice(&target, notice);
        }
        let mut permanent = false;
        for failure in &report.failures {
            permanent |= failure.error.is_permanent();
            target::on_failure(&self.status, &target, failure);
        }
        if !report.failures.is_empty() {
            let total = report.failures.len() + report.written.len();
            return Err(CycleError::Partial { failed: report.failures.len(), total, permanent });
        }
        let earliest_expiry = tokens.iter().filter_map(|t| t.expires_at).min();
        Ok(CycleSuccess { earliest_expiry, credentials_updated: report.written.len() })
    }

    /// Refreshes at once, then whenever the next refresh is due, until `shutdown` is cancelled. Holds a permit of
    /// `permits` during each refresh, which bounds how many targets refresh at the same time.
    pub async fn run(&self, shutdown: &CancellationToken, permits: &tokio::sync::Semaphore) {
        let pacing = Pacing {
            target: &self.name,
            schedule: &self.schedule,
            backoff: &self.backoff,
            status: &self.status,
            wake: Some(&self.trigger.wake),
        };
        drive(&pacing, shutdown, || async {
            let _permit = permits.acquire().await;
            let forced = self.trigger.take();
            if !forced.is_empty() {
                for source in &self.sources {
                    if forced.iter().any(|registry| source.covers(registry)) {
                        source.forget_tokens().await;
                    }
                }
                info!(target = %self.name, registries = %forced.join(","), "Refreshing now: a failed pull showed an expired token");
            }
            self.refresh_once().await
        })
        .await;
    }
}

/// What decides the pauses of the loop.
pub struct Pacing<'a> {
    pub target: &'a str,
    pub schedule: &'a Schedule,
    pub backoff: &'a Backoff,
    pub status: &'a Status,
    /// Ends a sleep early (a [`Trigger`]).
    pub wake: Option<&'a tokio::sync::Notify>,
}

impl Pacing<'_> {
    pub fn delay_after_success(&self, success: &CycleSuccess) -> Duration {
        let (delay, problem) = self.schedule.after_success(SystemTime::now(), success.earliest_expiry, fastrand::f64());
        let expires = rfc3339(success.earliest_expiry);
        match problem {
            None => {}
            Some(ExpiryProblem::Missing) => {
                warn!("ECR gave no token expiry; refreshing again after the fallback delay")
            }
            Some(ExpiryProblem::InThePast) => warn!(expires_at = %expires,
                "ECR token expiry is not in the future by this machine's clock (clock skew?); refreshing again after the fallback delay"),
            Some(ExpiryProblem::TooFar) => warn!(expires_at = %expires,
                "ECR token expiry is implausibly far away (clock skew?); refreshing again after the fallback delay"),
        }
        info!(target = %self.target, credentials = success.credentials_updated, expires_at = %expires,
            next_refresh_in = %humantime::format_duration(round(delay)), "Refresh complete");
        delay
    }
}

/// The loop: calls `refresh` at once, then again whenever the next refresh is due, until `shutdown` is
/// cancelled. Cancellation ends it at once, in a sleep or in the middle of a refresh (whose future is then
/// dropped: a request not yet sent is never sent).
pub async fn drive<F, Fut>(pacing: &Pacing<'_>, shutdown: &CancellationToken, mut refresh: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<CycleSuccess, CycleError>>,
{
    let mut failures: u32 = 0;
    loop {
        let outcome = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            outcome = refresh() => outcome,
        };
        let delay = match outcome {
            Ok(success) => {
                failures = 0;
                pacing.delay_after_success(&success)
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = pacing.backoff.delay(failures, e.is_permanent(), fastrand::f64());
                log_cycle_error(&e, failures, delay);
                delay
            }
        };
        pacing.status.sleeping_until(pacing.target, tokio::time::Instant::now() + delay);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
            _ = woken(pacing.wake) => debug!(target = %pacing.target, "Woken for a refresh now"),
        }
    }
}

async fn woken(wake: Option<&tokio::sync::Notify>) {
    match wake {
        Some(wake) => wake.notified().await,
        None => std::future::pending().await,
    }
}

/// One token per registry address: when two sources give one, the one that lasts longer.
fn newest_per_host(tokens: Vec<RegistryToken>) -> Vec<RegistryToken> {
    let mut kept: Vec<RegistryToken> = Vec::with_capacity(tokens.len());
    for token in tokens {
        match kept.iter_mut().find(|k| k.host == token.host) {
            Some(known) if token.expires_at > known.expires_at => *known = token,
            Some(_) => {}
            None => kept.push(token),
        }
    }
    kept
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

fn log_cycle_error(e: &CycleError, failures: u32, delay: Duration) {
    let retry_in = humantime::format_duration(round(delay)).to_string();
    let kind = e.kind();
    match (e.is_permanent(), e.hint()) {
        (true, Some(hint)) => error!(error = %e, kind, failures, retry_in = %retry_in, "{hint}"),
        (true, None) => error!(error = %e, kind, failures, retry_in = %retry_in, "Refresh failed; will retry"),
        (false, _) => warn!(error = %e, kind, failures, retry_in = %retry_in, "{}; will retry", e.summary()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use tokio::time::Instant;

    fn transient() -> CycleError {
        CycleError::Ecr(EcrError::Service { code: "ThrottlingException".into(), message: "slow down".into() })
    }

    fn permanent() -> CycleError {
        CycleError::Ecr(EcrError::Service { code: "AccessDeniedException".into(), message: "no".into() })
    }

    fn success(lifetime: Duration) -> CycleSuccess {
        CycleSuccess { earliest_expiry: Some(SystemTime::now() + lifetime), credentials_updated: 1 }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Runs the loop on scripted outcomes and returns the time of each refresh, relative to the first.
    async fn refresh_times(script: Vec<Result<CycleSuccess, CycleError>>) -> Vec<Duration> {
        let (schedule, backoff, status) = (Schedule::default(), Backoff::default(), Status::new(&["t".into()]));
        let pacing = Pacing { target: "t", schedule: &schedule, backoff: &backoff, status: &status, wake: None };
        let shutdown = CancellationToken::new();
        let script = Mutex::new(VecDeque::from(script));
        let calls = Mutex::new(Vec::new());
        let start = Instant::now();
        drive(&pacing, &shutdown, || {
            calls.lock().unwrap().push(start.elapsed());
            let next = script.lock().unwrap().pop_front();
            if next.is_none() {
                shutdown.cancel();
            }
            async move { next.unwrap_or_else(|| Err(transient())) }
        })
        .await;
        let mut calls = calls.into_inner().unwrap();
        calls.pop(); // the call that found the script empty
        calls
    }

    fn gaps(times: &[Duration]) -> Vec<Duration> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn within(gap: Duration, low: Duration, high: Duration) -> bool {
        gap >= low && gap <= high
    }

    #[test]
    fn when_two_sources_give_one_host_the_longer_lived_token_is_kept() {
        use secrecy::ExposeSecret;
        let now = SystemTime::now();
        let token = |host: &str, password: &str, hours: u64| RegistryToken {
            host: host.into(),
            addresses: vec![host.into()],
            username: "AWS".into(),
            password: password.to_string().into(),
            expires_at: Some(now + Duration::from_secs(hours * 3600)),
        };
        let kept = newest_per_host(vec![
            token("a.example.com", "a-short", 2),
            token("b.example.com", "b", 12),
            token("a.example.com", "a-long", 12),
            token("a.example.com", "a-middle", 6),
        ]);
        let summary: Vec<(&str, &str)> = kept.iter().map(|t| (t.host.as_str(), t.password.expose_secret())).collect();
        assert_eq!(summary, [("a.example.com", "a-long"), ("b.example.com", "b")]);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_quickly_then_success_waits_about_half_the_lifetime() {
        let times = refresh_times(vec![
            Err(transient()),
            Err(transient()),
            Err(transient()),
            Ok(success(12 * HOUR)),
            Err(transient()),
            Ok(success(12 * HOUR)),
        ])
        .await;
        let gaps = gaps(&times);
        assert_eq!(gaps.len(), 5, "{gaps:?}");
        let s = Duration::from_secs;
        assert!(within(gaps[0], s(4), s(5)), "first retry after ~5s: {gaps:?}");
        assert!(within(gaps[1], s(8), s(10)), "then ~10s: {gaps:?}");
        assert!(within(gaps[2], s(16), s(20)), "then ~20s: {gaps:?}");
        assert!(within(gaps[3], HOUR * 54 / 10, 6 * HOUR), "after success ~6h: {gaps:?}");
        assert!(within(gaps[4], s(4), s(5)), "a new failure starts the backoff again: {gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_retry_every_five_minutes_and_never_faster() {
        let times = refresh_times((0..6).map(|_| Err(permanent())).collect()).await;
        for gap in gaps(&times) {
            assert!(within(gap, Duration::from_secs(240), Duration::from_secs(300)), "{gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_expiry_in_the_past_does_not_cause_a_busy_loop() {
        let stale = || Ok(CycleSuccess { earliest_expiry: Some(SystemTime::now() - HOUR), credentials_updated: 1 });
        let times = refresh_times(vec![stale(), stale(), stale()]).await;
        for gap in gaps(&times) {
            assert!(gap >= HOUR * 9 / 10, "falls back to about an hour: {gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_a_long_sleep_at_once() {
        let (schedule, backoff, status) = (Schedule::default(), Backoff::default(), Status::new(&["t".into()]));
        let pacing = Pacing { target: "t", schedule: &schedule, backoff: &backoff, status: &status, wake: None };
        let shutdown = CancellationToken::new();
        let canceller = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            canceller.cancel();
        });
        let start = Instant::now();
        let calls = Mutex::new(0);
        drive(&pacing, &shutdown, || {
            *calls.lock().unwrap() += 1;
            async { Ok(success(12 * HOUR)) }
        })
        .await;
        assert_eq!(*calls.lock().unwrap(), 1);
        assert!(start.elapsed() < Duration::from_secs(61), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_abandons_a_refresh_in_flight() {
        let (schedule, backoff, status) = (Schedule::default(), Backoff::default(), Status::new(&["t".into()]));
        let pacing = Pacing { target: "t", schedule: &schedule, backoff: &backoff, status: &status, wake: None };
        let shutdown = CancellationToken::new();
        let canceller = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            canceller.cancel();
        });
        let start = Instant::now();
        drive(&pacing, &shutdown, || async {
            tokio::time::sleep(HOUR).await;
            Ok(success(12 * HOUR))
        })
        .await;
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    }
}
