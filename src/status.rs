//! What the daemon knows about its own health, shared by the refresh loop (which writes) and the HTTP server
//! (which reads): liveness, readiness, and the Prometheus metrics.
//!
//! - Alive: the loop is either sleeping with a wake-up that is not long overdue, or in a refresh that has not
//!   run far past every timeout.
//! - Ready: every target has completed a refresh, and every credential this daemon wrote is still far from
//!   expiry. A Rancher that fails for hours turns the daemon not-ready before the credential expires.
//!
//! Metric labels are the configured targets and the ECR hosts, so their number is bounded by the configuration.
//! No label or value ever holds a secret.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::time::Instant;

/// A credential closer to its expiry than this makes the daemon not ready.
pub const READY_MARGIN: Duration = Duration::from_secs(3600);
/// ECR tokens live 12 hours; used when a token came without an expiry.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A refresh running longer than this is stuck (every call in it has a timeout far below this).
pub const STUCK_REFRESH: Duration = Duration::from_secs(15 * 60);
/// A sleep overdue by more than this means the loop is no longer running.
pub const OVERDUE_WAKE_UP: Duration = Duration::from_secs(60);

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = match option_env!("RANCHER_ECR_CREDENTIALS_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    target: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    target: String,
    registry: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaceLabels {
    target: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    source: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PullFailureLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

struct Metrics {
    refreshes: Family<ResultLabels, Counter>,
    last_success: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    token_expiry: Family<RegistryLabels, Gauge<f64, AtomicU64>>,
    duration: Histogram,
    errors: Family<ErrorLabels, Counter>,
    ready: Gauge,
    places: Family<PlaceLabels, Gauge>,
    pull_failures: Family<PullFailureLabels, Counter>,
}

/// Where a target's loop is.
#[derive(Debug, Clone, Copy, Default)]
enum Phase {
    #[default]
    Starting,
    Refreshing {
        since: Instant,
    },
    Sleeping {
        until: Instant,
    },
}

#[derive(Debug, Default)]
struct TargetState {
    phase: Phase,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
    /// Expiry of the newest credential written per ECR host.
    credentials: BTreeMap<String, SystemTime>,
    /// Kubernetes targets: the namespaces (or projects) that do not hold the current token.
    missing: Vec<String>,
    /// Kubernetes targets: how many namespaces (or projects) are selected.
    places: usize,
}

struct Inner {
    targets: BTreeMap<String, TargetState>,
}

/// Shared health and metrics.
pub struct Status {
    inner: Mutex<Inner>,
    metrics: Metrics,
    registry: Registry,
}

/// Why the daemon is not ready, as `/readyz` tells it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotReady {
    pub ready: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

impl Status {
    /// A status for these targets (their display names, e.g. Rancher URLs), none refreshed yet.
    pub fn new(targets: &[String]) -> Status {
        let metrics = Metrics {
            refreshes: Family::default(),
            last_success: Family::default(),
            token_expiry: Family::default(),
            duration: Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
            errors: Family::default(),
            ready: Gauge::default(),
            places: Family::default(),
            pull_failures: Family::default(),
        };
        let mut registry = Registry::with_prefix("rancher_ecr_credentials");
        registry.register("refreshes", "Refreshes by target and result (success, failure)", metrics.refreshes.clone());
        registry.register(
            "last_success_timestamp_seconds",
            "When the last refresh of a target succeeded (Unix time)",
            metrics.last_success.clone(),
        );
        registry.register(
            "token_expiry_timestamp_seconds",
            "When the newest credential written for an ECR registry expires (Unix time)",
            metrics.token_expiry.clone(),
        );
        registry.register("refresh_duration_seconds", "Duration of a refresh of one target", metrics.duration.clone());
        registry.register("errors", "Errors by source (aws, rancher) and kind", metrics.errors.clone());
        registry.register("ready", "1 when every credential is far from expiry, else 0", metrics.ready.clone());
        registry.register(
            "places",
            "Kubernetes targets: namespaces (or Rancher projects) by state (current: holds the current token, missing)",
            metrics.places.clone(),
        );
        registry.register(
            "pull_failures",
            "Kubernetes targets: failed ECR pulls diagnosed on a Pod, by the reason of the Event written (ECRTokenExpired, ...)",
            metrics.pull_failures.clone(),
        );
        let build_info: Family<BuildLabels, Gauge> = Family::default();
        build_info.get_or_create(&BuildLabels { version: VERSION, commit: COMMIT }).set(1);
        registry.register("build_info", "Version and git commit of this build", build_info);
        for target in targets {
            for result in ["success", "failure"] {
                let _ = metrics.refreshes.get_or_create(&ResultLabels { target: target.clone(), result });
            }
        }
        let targets = targets.iter().map(|t| (t.clone(), TargetState::default())).collect();
        Status { inner: Mutex::new(Inner { targets }), metrics, registry }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-written in a way that matters here.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn refresh_started(&self, target: &str) {
        self.lock().targets.entry(target.to_string()).or_default().phase = Phase::Refreshing { since: Instant::now() };
    }

    pub fn sleeping_until(&self, target: &str, until: Instant) {
        self.lock().targets.entry(target.to_string()).or_default().phase = Phase::Sleeping { until };
    }

    /// Records that a credential for `registry` was written in `target`, valid until `expires_at`.
    pub fn credential_written(&self, target: &str, registry: &str, expires_at: Option<SystemTime>, now: SystemTime) {
        let expires_at = expires_at.unwrap_or(now + ASSUMED_LIFETIME);
        let mut inner = self.lock();
        inner.targets.entry(target.to_string()).or_default().credentials.insert(registry.to_string(), expires_at);
        self.metrics
            .token_expiry
            .get_or_create(&RegistryLabels { target: target.to_string(), registry: registry.to_string() })
            .set(seconds(expires_at));
    }

    /// Records which places of a Kubernetes target lack the current token (all of them: from a full sync).
    pub fn places(&self, target: &str, places: &crate::report::Places) {
        let mut inner = self.lock();
        let state = inner.targets.entry(target.to_string()).or_default();
        state.missing = places.missing.clone();
        state.places = places.total;
        self.set_place_gauges(target, state);
    }

    fn set_place_gauges(&self, target: &str, state: &TargetState) {
        let gauge = |state| self.metrics.places.get_or_create(&PlaceLabels { target: target.to_string(), state });
        gauge("current").set(state.places.saturating_sub(state.missing.len()) as i64);
        gauge("missing").set(state.missing.len() as i64);
    }

    pub fn refresh_succeeded(&self, target: &str, took: Duration, now: SystemTime) {
        let mut inner = self.lock();
        let state = inner.targets.entry(target.to_string()).or_default();
        state.last_success = Some(now);
        state.last_error = None;
        self.metrics.refreshes.get_or_create(&ResultLabels { target: target.to_string(), result: "success" }).inc();
        self.metrics.last_success.get_or_create(&TargetLabels { target: target.to_string() }).set(seconds(now));
        self.metrics.duration.observe(took.as_secs_f64());
    }

    /// `error` is shown by `/readyz`; it must not hold a secret (our error types never do).
    pub fn refresh_failed(&self, target: &str, took: Duration, error: &str) {
        let mut inner = self.lock();
        inner.targets.entry(target.to_string()).or_default().last_error = Some(error.to_string());
        self.metrics.refreshes.get_or_create(&ResultLabels { target: target.to_string(), result: "failure" }).inc();
        self.metrics.duration.observe(took.as_secs_f64());
    }

    /// Makes the pull-failure counters of these reasons visible at 0 (the diagnosis is on).
    pub fn pull_failure_reasons(&self, reasons: &[&'static str]) {
        for reason in reasons {
            let _ = self.metrics.pull_failures.get_or_create(&PullFailureLabels { reason });
        }
    }

    /// Counts one failed pull diagnosed on a Pod, by the reason of the Event written.
    pub fn pull_failure(&self, reason: &'static str) {
        self.metrics.pull_failures.get_or_create(&PullFailureLabels { reason }).inc();
    }

    pub fn error(&self, source: &'static str, kind: &'static str) {
        self.metrics.errors.get_or_create(&ErrorLabels { source, kind }).inc();
    }

    /// Alive unless a refresh is stuck or a wake-up is long overdue.
    pub fn liveness(&self, now: Instant) -> Result<(), String> {
        for (target, state) in &self.lock().targets {
            match state.phase {
                Phase::Refreshing { since } if now.saturating_duration_since(since) > STUCK_REFRESH => {
                    let took = now.saturating_duration_since(since).as_secs();
                    return Err(format!("{target}: a refresh has been running for {took}s"));
                }
                Phase::Sleeping { until } if now.saturating_duration_since(until) > OVERDUE_WAKE_UP => {
                    let late = now.saturating_duration_since(until).as_secs();
                    return Err(format!("{target}: the refresh loop is {late}s late"));
                }
                Phase::Starting | Phase::Refreshing { .. } | Phase::Sleeping { .. } => {}
            }
        }
        Ok(())
    }

    /// Ready when every target has succeeded once and no credential written is within [`READY_MARGIN`] of
    /// its expiry. Also sets the `ready` gauge.
    pub fn readiness(&self, now: SystemTime) -> Result<(), NotReady> {
        let result = self.check_readiness(now);
        self.metrics.ready.set(i64::from(result.is_ok()));
        result
    }

    fn check_readiness(&self, now: SystemTime) -> Result<(), NotReady> {
        let inner = self.lock();
        for (target, state) in &inner.targets {
            let not_ready = |reason: String| NotReady { ready: false, reason, last_error: state.last_error.clone() };
            if state.last_success.is_none() {
                return Err(not_ready(format!("{target}: no successful refresh yet")));
            }
            if let Some(first) = state.missing.first() {
                let count = state.missing.len();
                let more = if count > 1 { format!(" and {} more", count - 1) } else { String::new() };
                return Err(not_ready(format!("{target}: {first}{more} lack a Secret with the current token")));
            }
            for (registry, expires_at) in &state.credentials {
                let left = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
                if left < READY_MARGIN {
                    let when = rfc3339(*expires_at);
                    return Err(not_ready(format!(
                        "{target}: the credential for {registry} expires at {when}, in {}m",
                        left.as_secs() / 60
                    )));
                }
            }
        }
        Ok(())
    }

    /// The metrics in the OpenMetrics text format (which Prometheus reads).
    pub fn encode_metrics(&self, now: SystemTime) -> String {
        // Keep the gauge current for scrapers that do not call /readyz.
        let _ = self.readiness(now);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const TARGET: &str = "http://rancher:8080/v2-beta";
    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn at(hours: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + HOUR * hours as u32
    }

    #[test]
    fn not_ready_before_the_first_success_then_ready() {
        let status = Status::new(&[TARGET.to_string()]);
        let err = status.readiness(at(0)).unwrap_err();
        assert!(err.reason.contains("no successful refresh yet"), "{err:?}");
        status.credential_written(TARGET, HOST, Some(at(12)), at(0));
        status.refresh_succeeded(TARGET, Duration::from_millis(30), at(0));
        assert_eq!(status.readiness(at(0)), Ok(()));
    }

    #[test]
    fn a_credential_nearing_expiry_makes_it_not_ready_with_the_last_error() {
        let status = Status::new(&[TARGET.to_string()]);
        status.credential_written(TARGET, HOST, Some(at(12)), at(0));
        status.refresh_succeeded(TARGET, Duration::ZERO, at(0));
        status.refresh_failed(TARGET, Duration::ZERO, "GET http://rancher/v2-beta/registries: HTTP 503");
        assert_eq!(status.readiness(at(10)), Ok(()), "two hours left is still ready");
        let err = status.readiness(at(11) + Duration::from_secs(60)).unwrap_err();
        assert!(err.reason.contains(HOST) && err.reason.contains("in 59m"), "{err:?}");
        assert_eq!(err.last_error.as_deref(), Some("GET http://rancher/v2-beta/registries: HTTP 503"));
        status.credential_written(TARGET, HOST, Some(at(23)), at(11));
        status.refresh_succeeded(TARGET, Duration::ZERO, at(11));
        assert_eq!(status.readiness(at(11)), Ok(()));
    }

    #[test]
    fn a_stuck_refresh_or_an_overdue_wake_up_is_not_alive() {
        let status = Status::new(&[TARGET.to_string()]);
        let now = Instant::now();
        assert!(status.liveness(now).is_ok());
        status.refresh_started(TARGET);
        assert!(status.liveness(now + Duration::from_secs(60)).is_ok());
        assert!(status.liveness(now + STUCK_REFRESH + Duration::from_secs(1)).is_err());
        status.sleeping_until(TARGET, now + HOUR);
        assert!(status.liveness(now + HOUR).is_ok());
        assert!(status.liveness(now + HOUR + OVERDUE_WAKE_UP + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn metrics_carry_the_expected_families() {
        let status = Status::new(&[TARGET.to_string()]);
        status.credential_written(TARGET, HOST, Some(at(12)), at(0));
        status.refresh_succeeded(TARGET, Duration::from_millis(120), at(0));
        status.error("rancher", "timeout");
        let text = status.encode_metrics(at(0));
        for needle in [
            "rancher_ecr_credentials_refreshes_total{target=\"http://rancher:8080/v2-beta\",result=\"success\"} 1",
            "rancher_ecr_credentials_refreshes_total{target=\"http://rancher:8080/v2-beta\",result=\"failure\"} 0",
            "rancher_ecr_credentials_errors_total{source=\"rancher\",kind=\"timeout\"} 1",
            "rancher_ecr_credentials_ready 1",
            "rancher_ecr_credentials_build_info{version=",
            "rancher_ecr_credentials_refresh_duration_seconds_count 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in:\n{text}");
        }
    }
}
