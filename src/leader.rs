//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one writes.
//!
//! What it owns: the Lease (`LEADER_ELECTION_LEASE_NAME` in `LEADER_ELECTION_NAMESPACE`), the rules for taking,
//! renewing and releasing it ([`LeaseLock`]), and a task that keeps trying ([`spawn`]) and tells the rest of the
//! daemon whether it may write through a [`tokio::sync::watch::Receiver<bool>`] ([`Leadership`]), and [`lead`],
//! which runs the caller's work for each term of leadership and cancels it when the term ends. What it does not
//! own: what "writing" is. The daemon ([`crate::app`]) hands [`lead`] its refresh loops and watches, and exposes
//! the state as a metric and in readiness ([`crate::status`]).
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

mod settings;
pub use settings::{Settings, default_identity};

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

/// Runs `work` for each term of leadership, until `shutdown`: waits until `state` says we lead, calls
/// `on_change(true)` and `work(term)`, and when the state turns `false` (the Lease lost, or the elector gone)
/// cancels `term` and waits for `work` to end, then calls `on_change(false)`. `term` is a child of `shutdown`.
/// `work` should end soon after `term` is cancelled (and only then): what it writes stops with it.
pub async fn lead<W, Fut>(
    mut state: watch::Receiver<bool>,
    shutdown: &CancellationToken,
    on_change: impl Fn(bool),
    mut work: W,
) where
    W: FnMut(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        // `wait_for`'s `Ref` is dropped within each arm: never held across an await.
        let leading = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            result = state.wait_for(|leader| *leader) => result.is_ok(),
        };
        if !leading {
            // The elector has ended (only at shutdown, normally): nothing may be written any more.
            shutdown.cancelled().await;
            return;
        }
        on_change(true);
        let term = shutdown.child_token();
        let run = work(term.clone());
        tokio::pin!(run);
        let lost = tokio::select! {
            _ = &mut run => false,
            _ = state.wait_for(|leader| !*leader) => true,
        };
        term.cancel();
        if lost {
            run.await;
        }
        on_change(false);
        if shutdown.is_cancelled() {
            return;
        }
        if !lost {
            // The work ended by itself while we still lead: start it again only after a new election.
            let _ = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = state.wait_for(|leader| !*leader) => result.is_ok(),
            };
        }
    }
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
mod tests;
