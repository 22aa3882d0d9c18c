//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one writes.
//!
//! What it owns: the Lease (`LEADER_ELECTION_LEASE_NAME` in `LEADER_ELECTION_NAMESPACE`), the rules for taking,
//! renewing and releasing it ([`LeaseLock`]), and a task that keeps trying ([`spawn`]) and tells the rest of the
//! daemon whether it may write through a [`tokio::sync::watch::Receiver<bool>`] ([`Leadership`]). What it does not
//! own: what "writing" is. The caller looks at [`Leadership::is_leader`] (or waits on [`Leadership::subscribe`])
//! before each refresh and each write, and exposes the state as a metric and in readiness.
//!
//! # The rules
//! - A missing Lease is created, holding our identity. A Lease with no holder is free. A Lease held by someone else
//!   is respected until its `renewTime + leaseDurationSeconds` has passed (on our clock), and taken over then, within
//!   [`Settings::retry_period`] (a standby wakes up when it expires).
//! - Every write is an update guarded by the `resourceVersion` last read: of two replicas that try at once, the
//!   second gets `409 Conflict` and looks again. Taking over from another holder (or from nobody) counts one
//!   `leaseTransitions` and sets `acquireTime`; renewing our own Lease changes only `renewTime`.
//! - The holder renews every [`Settings::renew_period`]. It stops claiming leadership when it has not renewed for
//!   [`Settings::renew_deadline`], measured on its monotonic clock from the moment the last successful renewal was
//!   *sent* (the `renewTime` it wrote). The others see the Lease expire `lease_duration` after that `renewTime`, so
//!   the holder stops writing `lease_duration - renew_deadline` (5 s by default) before anyone may take over.
//!   This holds as long as the replicas' clocks agree within that margin.
//! - On shutdown the holder first stops claiming leadership, then releases the Lease (no holder,
//!   `leaseDurationSeconds: 1`), so that a standby takes over at its next look, within [`Settings::retry_period`].
//!   A holder killed without release is replaced when its Lease expires.
//! - Every API call is bounded by [`Settings::timeout`] (and, while leading, by the step-down instant); after a
//!   failure the next attempt waits [`Settings::retry_period`]: never a hot loop.
//!
//! Two replicas with the same identity would both believe they hold the Lease: identities must be unique
//! ([`default_identity`]: the pod's name, else the host name).
//!
//! # Logs
//! One INFO line on becoming the leader, one INFO line on becoming a standby (naming the holder, again only when the
//! holder changes), one WARN line on losing the Lease, one INFO line when it is released at shutdown. A standby that
//! cannot read the Lease says so once (WARN), until it can again.
//!
//! # RBAC
//! ```yaml
//! # Role in the daemon's own namespace
//! - apiGroups: ["coordination.k8s.io"]
//!   resources: ["leases"]
//!   verbs: ["create"]
//! - apiGroups: ["coordination.k8s.io"]
//!   resources: ["leases"]
//!   resourceNames: ["rancher-ecr-credentials"]
//!   verbs: ["get", "update"]
//! ```

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The Lease's name unless configured otherwise (`LEADER_ELECTION_LEASE_NAME`).
pub const DEFAULT_LEASE_NAME: &str = "rancher-ecr-credentials";
/// How long a Lease holds without renewal, as written in `leaseDurationSeconds`.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews.
pub const DEFAULT_RENEW_PERIOD: Duration = Duration::from_secs(5);
/// How long the holder goes on claiming leadership without a successful renewal.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often a standby looks at the Lease, and how soon a failed renewal is tried again.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The time limit of each attempt (one to three API calls).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// `leaseDurationSeconds` of a released Lease: anyone may take it a second later, even a client that does not
/// take an empty holder for a free Lease.
const RELEASED_LEASE_SECONDS: i32 = 1;
/// The shortest wait between two attempts of a standby, whatever the Lease's expiry says.
const MIN_WAIT: Duration = Duration::from_millis(100);

/// Where the Lease is, who we are, and the timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub lease_name: String,
    pub namespace: String,
    /// Our `holderIdentity`: unique among the replicas.
    pub identity: String,
    /// Written as `leaseDurationSeconds` (whole seconds).
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_period: Duration,
    /// The holder stops claiming leadership when it has not renewed for this long; shorter than
    /// `lease_duration`, by at least the clock difference between replicas and the longest write in flight.
    pub renew_deadline: Duration,
    /// How often a standby looks at the Lease; how soon a failed attempt is retried.
    pub retry_period: Duration,
    /// The time limit of each attempt.
    pub timeout: Duration,
}

impl Settings {
    /// The default timings (15 s lease, renewed every 5 s, given up after 10 s without renewal, a standby looking
    /// every 2 s) for the Lease `lease_name` in `namespace`.
    pub fn new(lease_name: impl Into<String>, namespace: impl Into<String>, identity: impl Into<String>) -> Settings {
        Settings {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_period: DEFAULT_RENEW_PERIOD,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same, with other timings: `renew_deadline` is `lease_duration - renew_period`, `retry_period` is
    /// `renew_period / 2` and `timeout` is `renew_period`. For tests and for users who need a faster failover.
    pub fn with_timings(mut self, lease_duration: Duration, renew_period: Duration) -> Settings {
        self.lease_duration = lease_duration;
        self.renew_period = renew_period;
        self.renew_deadline = lease_duration.saturating_sub(renew_period);
        self.retry_period = renew_period / 2;
        self.timeout = renew_period;
        self
    }

    /// Checks the settings, with a one-line message naming what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if !is_dns_subdomain(&self.lease_name) {
            return Err(format!(
                "LEADER_ELECTION_LEASE_NAME: {:?} is not a valid object name (lower-case letters, digits, '-' and '.', \
                 at most 253)",
                self.lease_name
            ));
        }
        if self.namespace.is_empty() || self.namespace.len() > 63 || !is_dns_label(&self.namespace) {
            return Err(format!(
                "LEADER_ELECTION_NAMESPACE: {:?} is not a valid namespace name (lower-case letters, digits and '-', \
                 at most 63)",
                self.namespace
            ));
        }
        if self.identity.is_empty() || self.identity.len() > 253 || self.identity.chars().any(char::is_control) {
            return Err(format!(
                "POD_NAME: {:?} cannot be a Lease holder identity (1 to 253 printable characters)",
                self.identity
            ));
        }
        let seconds = self.lease_duration.as_secs();
        if self.lease_duration.subsec_nanos() != 0 || seconds == 0 || seconds > i32::MAX as u64 {
            return Err(format!("the lease duration {:?} is not a whole number of seconds", self.lease_duration));
        }
        let ordered = !self.retry_period.is_zero()
            && self.retry_period <= self.renew_period
            && self.renew_period < self.renew_deadline
            && self.renew_deadline < self.lease_duration
            && !self.timeout.is_zero();
        if !ordered {
            return Err(format!(
                "leader election timings: need 0 < retry period ({:?}) <= renew period ({:?}) < renew deadline ({:?}) \
                 < lease duration ({:?}), and a timeout",
                self.retry_period, self.renew_period, self.renew_deadline, self.lease_duration
            ));
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX).max(1)
    }
}

/// Our `holderIdentity` by default: `POD_NAME` when set (the downward API), else the host name; `None` when
/// neither is known.
pub fn default_identity() -> Option<String> {
    let pod = std::env::var("POD_NAME").ok().map(|name| name.trim().to_string()).filter(|name| !name.is_empty());
    pod.or_else(host_name)
}

fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
}

fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// A failed attempt on the Lease. The detail is the server's words, cleaned ([`crate::redact::outside`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} lease {namespace}/{name}: {}{detail}", .status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Api { verb: &'static str, namespace: String, name: String, status: Option<u16>, detail: String },
    #[error("lease {namespace}/{name}: no answer within {limit:?}")]
    Timeout { namespace: String, name: String, limit: Duration },
    #[error("lease {namespace}/{name}: changed by someone else at every try")]
    Contended { namespace: String, name: String },
}

impl Error {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => *status,
            _ => None,
        }
    }
}

/// Where the Lease stands after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// We hold it. `sent` is when the write that says so was sent (the `renewTime` we wrote); `taken_from` is
    /// `Some(previous holder, "" for none)` when this attempt took the Lease rather than renewing it.
    Held { sent: Instant, taken_from: Option<String> },
    /// Someone else holds it, for `expires_in` more at most if they do not renew.
    HeldBy { holder: String, expires_in: Duration },
}

/// What a Lease's spec says, judged at `now` by `identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No holder: anyone may take it.
    Free,
    /// We hold it.
    Ours,
    /// Held by someone whose `renewTime + leaseDurationSeconds` has passed.
    Expired { holder: String },
    /// Held by someone, for `remaining` more.
    Held { holder: String, remaining: Duration },
}

/// Judges a Lease at `now`: free, ours, expired or held. A holder without `renewTime` has expired; one without
/// `leaseDurationSeconds` holds for `default_duration`.
pub fn judge(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp, default_duration: Duration) -> Verdict {
    let Some(holder) = spec.and_then(|s| s.holder_identity.as_deref()).filter(|h| !h.is_empty()) else {
        return Verdict::Free;
    };
    if holder == identity {
        return Verdict::Ours;
    }
    let holder = holder.to_string();
    match spec.and_then(|s| expiry(s, default_duration)) {
        Some(expires) if expires > now => {
            let remaining = now.duration_until(expires).unsigned_abs();
            Verdict::Held { holder, remaining }
        }
        _ => Verdict::Expired { holder },
    }
}

/// When a Lease expires from everyone's point of view: `renewTime + leaseDurationSeconds` (or `acquireTime` when
/// it was never renewed); `None` when it says neither.
pub fn expiry(spec: &LeaseSpec, default_duration: Duration) -> Option<Timestamp> {
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let seconds = match spec.lease_duration_seconds {
        Some(seconds) => i64::from(seconds),
        None => i64::try_from(default_duration.as_secs()).unwrap_or(i64::MAX),
    };
    renewed.checked_add(SignedDuration::from_secs(seconds)).ok()
}

/// The spec that claims a Lease for `identity` at `now`: renewing our own keeps `acquireTime` and
/// `leaseTransitions`; taking it from someone else (or from nobody) sets `acquireTime` and counts a transition;
/// creating it starts at 0 transitions.
pub fn claimed(previous: Option<&LeaseSpec>, identity: &str, now: Timestamp, lease_seconds: i32) -> LeaseSpec {
    let previous = previous.cloned();
    let creating = previous.is_none();
    let previous = previous.unwrap_or_default();
    let ours = previous.holder_identity.as_deref() == Some(identity);
    let (acquire_time, lease_transitions) = if ours {
        (previous.acquire_time.clone().or(Some(MicroTime(now))), previous.lease_transitions.or(Some(0)))
    } else if creating {
        (Some(MicroTime(now)), Some(0))
    } else {
        (Some(MicroTime(now)), Some(previous.lease_transitions.unwrap_or(0).saturating_add(1)))
    };
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(lease_seconds),
        acquire_time,
        renew_time: Some(MicroTime(now)),
        lease_transitions,
        ..previous
    }
}

/// The spec that gives a Lease up at `now`: no holder, and a one-second duration for clients that would not take
/// an empty holder for a free Lease. `acquireTime` and `leaseTransitions` stay.
pub fn released(previous: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(RELEASED_LEASE_SECONDS),
        renew_time: Some(MicroTime(now)),
        ..previous.clone()
    }
}

/// The Lease, and the calls that take, renew and release it. One attempt at a time (`&mut self`).
pub struct LeaseLock {
    api: Api<Lease>,
    settings: Settings,
    /// The Lease as we last wrote it while we hold it: a renewal updates it without reading it first.
    known: Option<Lease>,
}

impl LeaseLock {
    pub fn new(client: kube::Client, settings: Settings) -> LeaseLock {
        LeaseLock { api: Api::namespaced(client, &settings.namespace), settings, known: None }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Creates, renews or takes over the Lease, or says who holds it; within `limit` (at most
    /// [`Settings::timeout`]).
    pub async fn try_claim(&mut self, limit: Duration) -> Result<Claim, Error> {
        let limit = limit.min(self.settings.timeout);
        match tokio::time::timeout(limit, self.claim()).await {
            Ok(result) => result,
            Err(_) => {
                // The write may still land: the next attempt reads the Lease before trusting what we know.
                self.known = None;
                Err(self.timeout_error(limit))
            }
        }
    }

    /// Gives the Lease up if we hold it; `true` when it was ours and is now free. Within [`Settings::timeout`].
    pub async fn release(&mut self) -> Result<bool, Error> {
        self.known = None;
        let limit = self.settings.timeout;
        tokio::time::timeout(limit, self.release_inner()).await.map_err(|_| self.timeout_error(limit))?
    }

    /// Forgets the Lease as last written: the next attempt reads it first.
    pub fn forget(&mut self) {
        self.known = None;
    }

    async fn claim(&mut self) -> Result<Claim, Error> {
        // While we hold it, renew what we wrote last: one call. Someone else's write makes it a 409.
        if let Some(mut lease) = self.known.take() {
            let (now, sent) = (Timestamp::now(), Instant::now());
            lease.spec =
                Some(claimed(lease.spec.as_ref(), &self.settings.identity, now, self.settings.lease_seconds()));
            match self.api.replace(&self.settings.lease_name, &PostParams::default(), &lease).await {
                Ok(written) => {
                    self.known = Some(written);
                    return Ok(Claim::Held { sent, taken_from: None });
                }
                Err(e) if is_status(&e, 409) || is_status(&e, 404) => {
                    debug!(lease = %self.settings.lease_name, "The Lease changed since our last renewal; reading it");
                }
                Err(e) => return Err(self.api_error("update", e)),
            }
        }
        // Two rounds: a 409 means someone wrote in between, and what they wrote decides.
        for _ in 0..2 {
            let current = self.api.get_opt(&self.settings.lease_name).await.map_err(|e| self.api_error("get", e))?;
            let (now, sent) = (Timestamp::now(), Instant::now());
            let Some(mut lease) = current else {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.lease_name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(claimed(None, &self.settings.identity, now, self.settings.lease_seconds())),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(written) => {
                        self.known = Some(written);
                        return Ok(Claim::Held { sent, taken_from: Some(String::new()) });
                    }
                    Err(e) if is_status(&e, 409) => continue,
                    Err(e) => return Err(self.api_error("create", e)),
                }
            };
            let taken_from =
                match judge(lease.spec.as_ref(), &self.settings.identity, now, self.settings.lease_duration) {
                    Verdict::Held { holder, remaining } => return Ok(Claim::HeldBy { holder, expires_in: remaining }),
                    Verdict::Ours => None,
                    Verdict::Free => Some(String::new()),
                    Verdict::Expired { holder } => Some(holder),
                };
            lease.spec =
                Some(claimed(lease.spec.as_ref(), &self.settings.identity, now, self.settings.lease_seconds()));
            // `lease` carries the resourceVersion just read: the update fails if anyone wrote since.
            match self.api.replace(&self.settings.lease_name, &PostParams::default(), &lease).await {
                Ok(written) => {
                    self.known = Some(written);
                    return Ok(Claim::Held { sent, taken_from });
                }
                Err(e) if is_status(&e, 409) || is_status(&e, 404) => continue,
                Err(e) => return Err(self.api_error("update", e)),
            }
        }
        Err(Error::Contended { namespace: self.settings.namespace.clone(), name: self.settings.lease_name.clone() })
    }

    async fn release_inner(&mut self) -> Result<bool, Error> {
        for _ in 0..2 {
            let Some(mut lease) =
                self.api.get_opt(&self.settings.lease_name).await.map_err(|e| self.api_error("get", e))?
            else {
                return Ok(false);
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
                return Ok(false);
            }
            lease.spec = Some(released(&spec, Timestamp::now()));
            match self.api.replace(&self.settings.lease_name, &PostParams::default(), &lease).await {
                Ok(_) => return Ok(true),
                Err(e) if is_status(&e, 409) => continue,
                Err(e) if is_status(&e, 404) => return Ok(false),
                Err(e) => return Err(self.api_error("update", e)),
            }
        }
        Err(Error::Contended { namespace: self.settings.namespace.clone(), name: self.settings.lease_name.clone() })
    }

    fn api_error(&self, verb: &'static str, error: kube::Error) -> Error {
        let (status, detail) = match &error {
            kube::Error::Api(status) => (Some(status.code), crate::redact::outside(&status.message)),
            other => (None, crate::redact::error_chain(other)),
        };
        Error::Api {
            verb,
            namespace: self.settings.namespace.clone(),
            name: self.settings.lease_name.clone(),
            status,
            detail,
        }
    }

    fn timeout_error(&self, limit: Duration) -> Error {
        Error::Timeout { namespace: self.settings.namespace.clone(), name: self.settings.lease_name.clone(), limit }
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// The running elector: whether we hold the Lease, and the task that keeps it. Dropping it does not stop the
/// elector: the shutdown token does.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Leadership {
    /// `true` while we hold the Lease and may write.
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// The state, to wait on (`changed()`, `wait_for(|leader| *leader)`) or to hand to another task. Copy the
    /// value out (`*state.borrow()`) and drop the `Ref` (also the one `wait_for` returns) before any `.await`: while
    /// it is held, the elector cannot change the state, and blocks.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Waits until the elector has stopped (after the shutdown token fired, with the Lease released). Bounded: the
    /// release is one attempt within [`Settings::timeout`].
    pub async fn stopped(self) {
        let _ = self.task.await;
    }

    /// Stops the elector at once without releasing the Lease, as a crash would: others take over when it expires.
    /// The state turns `false`.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Starts the elector on `client` (a client whose calls have a read timeout). It runs until `shutdown` fires, then
/// releases the Lease if it holds it. The state starts `false`.
pub fn spawn(client: kube::Client, settings: Settings, shutdown: CancellationToken) -> Leadership {
    let (sender, state) = watch::channel(false);
    let lock = LeaseLock::new(client, settings);
    let task = tokio::spawn(run(lock, Claiming(sender), shutdown));
    Leadership { state, task }
}

/// The sending side of the state. Dropped (the task ended, panicked or was aborted), it says `false`: nothing
/// goes on believing it may write after the elector is gone.
struct Claiming(watch::Sender<bool>);

impl Claiming {
    fn set(&self, leader: bool) {
        self.0.send_if_modified(|current| std::mem::replace(current, leader) != leader);
    }
}

impl Drop for Claiming {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// The elector's loop: standby (look every retry period, or when the holder's Lease expires) and leader (renew
/// every renew period, retry after failures, step down at the deadline).
async fn run(mut lock: LeaseLock, state: Claiming, shutdown: CancellationToken) {
    let settings = lock.settings().clone();
    let lease = format!("{}/{}", settings.namespace, settings.lease_name);
    // While leading: the instant we stop claiming leadership unless a renewal succeeds first.
    let mut step_down_at: Option<Instant> = None;
    let mut next = Instant::now();
    let mut standby_for: Option<String> = None;
    let mut failing = false;
    let mut last_error: Option<String> = None;
    loop {
        let wake = step_down_at.map_or(next, |at| at.min(next));
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = sleep_until(wake) => {}
        }
        if let Some(at) = step_down_at
            && Instant::now() >= at
        {
            state.set(false);
            step_down_at = None;
            lock.forget();
            warn!(
                lease = %lease,
                identity = %settings.identity,
                error = last_error.as_deref().unwrap_or("none"),
                "Lost the Lease: not renewed for {:?}; standing by and writing nothing",
                settings.renew_deadline
            );
            next = Instant::now();
        }
        if Instant::now() < next {
            continue;
        }

        let limit = step_down_at.map_or(settings.timeout, |at| at.saturating_duration_since(Instant::now()));
        let result = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            result = lock.try_claim(limit) => result,
        };
        let now = Instant::now();
        match result {
            Ok(Claim::Held { sent, .. }) if sent + settings.renew_deadline <= now => {
                // The write took so long that the Lease is nearly over by the time we know: do not claim it on that
                // basis. The next attempt, right away, renews it in time or not at all.
                debug!(lease = %lease, took = ?now - sent, "The Lease was written too late to lead on it");
                next = now;
            }
            Ok(Claim::Held { sent, taken_from }) => {
                if step_down_at.is_none() {
                    state.set(true);
                    standby_for = None;
                    info!(
                        lease = %lease,
                        identity = %settings.identity,
                        previous = taken_from.as_deref().filter(|h| !h.is_empty()).unwrap_or("none"),
                        "Became the leader: this replica refreshes and writes"
                    );
                }
                failing = false;
                last_error = None;
                step_down_at = Some(sent + settings.renew_deadline);
                next = (sent + settings.renew_period).max(now);
            }
            Ok(Claim::HeldBy { holder, expires_in }) => {
                if step_down_at.take().is_some() {
                    state.set(false);
                    warn!(lease = %lease, identity = %settings.identity, holder = %holder,
                        "Lost the Lease to another replica; standing by and writing nothing");
                }
                if standby_for.as_deref() != Some(holder.as_str()) {
                    info!(lease = %lease, identity = %settings.identity, holder = %holder,
                        "Standby: another replica holds the Lease; this one writes nothing");
                    standby_for = Some(holder);
                }
                if failing {
                    info!(lease = %lease, "The Lease can be read again");
                }
                failing = false;
                // Look again when it expires, or at the next retry, whichever comes first.
                next = now + settings.retry_period.min(expires_in + MIN_WAIT).max(MIN_WAIT);
            }
            Err(error) => {
                let text = error.to_string();
                if step_down_at.is_some() {
                    debug!(lease = %lease, error = %text, "Could not renew the Lease; will retry");
                } else if !failing {
                    warn!(lease = %lease, error = %text, "Could not read or take the Lease; will retry");
                } else {
                    debug!(lease = %lease, error = %text, "Could not read or take the Lease; will retry");
                }
                if error.status() == Some(403) || error.status() == Some(401) {
                    lock.forget();
                }
                failing = true;
                last_error = Some(text);
                next = now + settings.retry_period;
            }
        }
    }

    // Shutdown: stop writing first, then let the Lease go.
    state.set(false);
    match lock.release().await {
        Ok(true) => info!(lease = %lease, identity = %settings.identity, "Released the Lease"),
        Ok(false) => debug!(lease = %lease, "The Lease was not ours at shutdown"),
        Err(error) => warn!(
            lease = %lease,
            error = %error,
            "Could not release the Lease; another replica takes over when it expires"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("in range")
    }

    fn held(holder: &str, renewed: i64, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(at(renewed))),
            acquire_time: Some(MicroTime(at(renewed - 100))),
            lease_duration_seconds: seconds,
            lease_transitions: Some(3),
            ..Default::default()
        }
    }

    const FIFTEEN: Duration = Duration::from_secs(15);

    #[test]
    fn a_lease_without_holder_is_free() {
        assert_eq!(judge(None, "me", at(0), FIFTEEN), Verdict::Free);
        let mut spec = held("", 0, Some(15));
        assert_eq!(judge(Some(&spec), "me", at(0), FIFTEEN), Verdict::Free);
        spec.holder_identity = None;
        assert_eq!(judge(Some(&spec), "me", at(0), FIFTEEN), Verdict::Free);
    }

    #[test]
    fn a_lease_held_by_someone_else_holds_until_renew_time_plus_its_duration() {
        let spec = held("other", 0, Some(15));
        assert_eq!(
            judge(Some(&spec), "me", at(10), FIFTEEN),
            Verdict::Held { holder: "other".into(), remaining: Duration::from_secs(5) }
        );
        assert_eq!(judge(Some(&spec), "me", at(15), FIFTEEN), Verdict::Expired { holder: "other".into() });
        // Its own duration counts, not ours.
        let short = held("other", 0, Some(3));
        assert_eq!(judge(Some(&short), "me", at(4), FIFTEEN), Verdict::Expired { holder: "other".into() });
        // A renewTime in the future (another clock, or written by hand) is respected until then plus the duration.
        let future = held("other", 60, Some(15));
        assert_eq!(
            judge(Some(&future), "me", at(0), FIFTEEN),
            Verdict::Held { holder: "other".into(), remaining: Duration::from_secs(75) }
        );
    }

    #[test]
    fn a_lease_without_duration_or_renew_time() {
        let spec = held("other", 0, None);
        assert!(matches!(judge(Some(&spec), "me", at(14), FIFTEEN), Verdict::Held { .. }), "our default");
        assert_eq!(judge(Some(&spec), "me", at(16), FIFTEEN), Verdict::Expired { holder: "other".into() });
        let mut only_acquired = held("other", 0, Some(15));
        only_acquired.renew_time = None;
        only_acquired.acquire_time = Some(MicroTime(at(0)));
        assert!(matches!(judge(Some(&only_acquired), "me", at(5), FIFTEEN), Verdict::Held { .. }));
        only_acquired.acquire_time = None;
        assert_eq!(judge(Some(&only_acquired), "me", at(0), FIFTEEN), Verdict::Expired { holder: "other".into() });
        // A duration far beyond any date does not overflow.
        let huge = held("other", 0, Some(i32::MAX));
        assert!(matches!(judge(Some(&huge), "me", at(1_000_000), FIFTEEN), Verdict::Held { .. }));
    }

    #[test]
    fn our_own_lease_is_ours_even_when_expired() {
        let spec = held("me", 0, Some(15));
        assert_eq!(judge(Some(&spec), "me", at(1000), FIFTEEN), Verdict::Ours);
    }

    #[test]
    fn creating_renewing_and_taking_over_set_acquire_time_and_transitions() {
        let created = claimed(None, "me", at(0), 15);
        assert_eq!(created.holder_identity.as_deref(), Some("me"));
        assert_eq!(created.lease_transitions, Some(0));
        assert_eq!(created.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(created.renew_time, Some(MicroTime(at(0))));
        assert_eq!(created.lease_duration_seconds, Some(15));

        let renewed = claimed(Some(&created), "me", at(5), 15);
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(0))), "renewing keeps acquireTime");
        assert_eq!(renewed.renew_time, Some(MicroTime(at(5))));
        assert_eq!(renewed.lease_transitions, Some(0));

        let taken = claimed(Some(&held("other", 0, Some(15))), "me", at(20), 15);
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(20))));
        assert_eq!(taken.lease_transitions, Some(4));

        let free = released(&held("me", 0, Some(15)), at(3));
        assert_eq!(free.holder_identity, None);
        assert_eq!(free.lease_duration_seconds, Some(1));
        assert_eq!(free.lease_transitions, Some(3), "releasing is not a transition");
        assert_eq!(judge(Some(&free), "other", at(3), FIFTEEN), Verdict::Free);
        let retaken = claimed(Some(&free), "other", at(4), 15);
        assert_eq!(retaken.lease_transitions, Some(4), "taking a released Lease is one");
    }

    #[test]
    fn the_holder_stops_writing_before_anyone_may_take_over() {
        // The holder steps down `renew_deadline` after sending its last renewal; the others may take over
        // `lease_duration` after the renewTime written in it, at the same instant.
        for settings in [
            Settings::new(DEFAULT_LEASE_NAME, "ns", "me"),
            Settings::new(DEFAULT_LEASE_NAME, "ns", "me").with_timings(Duration::from_secs(3), Duration::from_secs(1)),
        ] {
            settings.check().expect("valid");
            assert!(settings.renew_deadline < settings.lease_duration);
            let spec = claimed(None, "me", at(0), settings.lease_seconds());
            let step_down = SignedDuration::try_from(settings.renew_deadline).expect("small");
            let stepped_down_at = at(0).checked_add(step_down).expect("in range");
            assert!(
                matches!(judge(Some(&spec), "other", stepped_down_at, FIFTEEN), Verdict::Held { .. }),
                "still held when the holder stops writing"
            );
            let expires = expiry(&spec, FIFTEEN).expect("set");
            assert!(stepped_down_at < expires);
            let margin = stepped_down_at.duration_until(expires).unsigned_abs();
            assert_eq!(margin, settings.lease_duration - settings.renew_deadline);
        }
    }

    #[test]
    fn settings_are_checked() {
        let good = Settings::new(DEFAULT_LEASE_NAME, "rancher-ecr-credentials", "pod-1");
        assert_eq!(good.check(), Ok(()));
        assert_eq!((good.lease_duration, good.renew_period), (Duration::from_secs(15), Duration::from_secs(5)));
        let bad = |change: fn(&mut Settings)| {
            let mut settings = good.clone();
            change(&mut settings);
            settings.check().expect_err("refused")
        };
        assert!(bad(|s| s.namespace = String::new()).contains("LEADER_ELECTION_NAMESPACE"));
        assert!(bad(|s| s.namespace = "Upper".into()).contains("LEADER_ELECTION_NAMESPACE"));
        assert!(bad(|s| s.lease_name = "a/b".into()).contains("LEADER_ELECTION_LEASE_NAME"));
        assert!(bad(|s| s.identity = String::new()).contains("POD_NAME"));
        assert!(bad(|s| s.lease_duration = Duration::from_millis(1500)).contains("whole number"));
        assert!(bad(|s| s.renew_deadline = s.lease_duration).contains("renew deadline"));
        assert!(bad(|s| s.renew_period = s.renew_deadline).contains("renew period"));
        assert!(bad(|s| s.retry_period = Duration::ZERO).contains("retry period"));
    }

    #[test]
    fn an_elector_that_ends_in_any_way_claims_nothing() {
        let (sender, state) = watch::channel(false);
        let claiming = Claiming(sender);
        claiming.set(true);
        assert!(*state.borrow());
        // Aborted, panicked or returned: the sender is dropped, and says false first.
        drop(claiming);
        assert!(!*state.borrow());
    }

    #[test]
    fn the_identity_is_the_pod_name_or_the_host_name() {
        // POD_NAME is read from the environment; this test only checks the host name fallback exists on Linux.
        if std::env::var_os("POD_NAME").is_none() {
            let identity = default_identity().expect("a host name");
            assert!(!identity.is_empty() && !identity.contains('\n'));
        }
    }
}
