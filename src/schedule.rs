//! When the next refresh is due: after a success (from the token's expiry) and after a failure (backoff).
//!
//! Pure functions of the current time, the token's expiry and a random sample, so they can be tested with
//! plain values. The refresh loop owns the clock and the randomness.

use std::time::{Duration, SystemTime};

/// How long to wait after a successful refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Never wait longer than this (`REFRESH_INTERVAL`, default 6 h).
    pub max_interval: Duration,
    /// Never wait less than this after a success, whatever the token says, so a short-lived token cannot make
    /// the daemon spin.
    pub min_interval: Duration,
    /// Share of the token's remaining lifetime to wait: 0.5 refreshes a 12 h token after 6 h, leaving 6 h in
    /// which failures can be retried before it expires.
    pub lifetime_fraction: f64,
    /// Up to this share of the delay is taken off at random, so that replicas do not act in step.
    pub jitter: f64,
    /// The delay used when the token's expiry is missing, already past or implausibly far (clock skew).
    pub fallback: Duration,
}

/// Why the token's expiry could not be used for scheduling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryProblem {
    Missing,
    /// The expiry is not after the local clock: the clock is ahead of AWS's, or the token is stale.
    InThePast,
    /// More than [`PLAUSIBLE_LIFETIME`] away: the clock is behind, or the endpoint is not ECR.
    TooFar,
}

/// ECR tokens live 12 hours; anything beyond a day means the clocks disagree.
pub const PLAUSIBLE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            max_interval: Duration::from_secs(6 * 3600),
            min_interval: MIN_INTERVAL,
            lifetime_fraction: 0.5,
            jitter: 0.1,
            fallback: Duration::from_secs(3600),
        }
    }
}

impl Schedule {
    /// The default schedule with another longest interval; refuses intervals that would hammer AWS and Rancher.
    pub fn with_max_interval(max_interval: Duration) -> Result<Schedule, String> {
        if max_interval < MIN_INTERVAL {
            return Err(format!("{} is too short; use at least 1m", humantime::format_duration(max_interval)));
        }
        let defaults = Schedule::default();
        Ok(Schedule { max_interval, fallback: defaults.fallback.min(max_interval), ..defaults })
    }

    /// The delay until the next refresh after a success. `sample` is uniform in `[0, 1)`.
    pub fn after_success(
        &self,
        now: SystemTime,
        expires_at: Option<SystemTime>,
        sample: f64,
    ) -> (Duration, Option<ExpiryProblem>) {
        let (base, problem) = match expires_at.map(|at| at.duration_since(now)) {
            None => (self.fallback, Some(ExpiryProblem::Missing)),
            Some(Err(_)) | Some(Ok(Duration::ZERO)) => (self.fallback, Some(ExpiryProblem::InThePast)),
            Some(Ok(remaining)) if remaining > PLAUSIBLE_LIFETIME => (self.fallback, Some(ExpiryProblem::TooFar)),
            Some(Ok(remaining)) => (remaining.mul_f64(self.lifetime_fraction), None),
        };
        let clamped = base.clamp(self.min_interval, self.max_interval);
        let jittered = clamped.mul_f64(1.0 - self.jitter * sample.clamp(0.0, 1.0));
        (jittered.max(self.min_interval.min(clamped)), problem)
    }
}

/// How long to wait after a failed refresh: capped exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Up to this share of the delay is taken off at random.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(5), max: Duration::from_secs(300), jitter: 0.2 }
    }
}

impl Backoff {
    /// The delay after the `failures`-th failure in a row (1 for the first). Errors that need a person to act
    /// (`permanent`) are retried at the slow end at once: keys get rotated and permissions get fixed.
    pub fn delay(&self, failures: u32, permanent: bool, sample: f64) -> Duration {
        let base = if permanent {
            self.max
        } else {
            let exponent = failures.saturating_sub(1).min(20);
            self.initial.saturating_mul(1u32 << exponent).min(self.max)
        };
        base.mul_f64(1.0 - self.jitter * sample.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn success_waits_half_the_remaining_lifetime_clamped() {
        let s = Schedule::default();
        let now = at(1_000_000);
        let table = [
            // remaining lifetime, expected delay without jitter
            (12 * HOUR, 6 * HOUR),
            (8 * HOUR, 4 * HOUR),
            (HOUR, HOUR / 2),
            (Duration::from_secs(90), MIN_INTERVAL),
            (Duration::from_secs(1), MIN_INTERVAL),
        ];
        for (remaining, expected) in table {
            let (delay, problem) = s.after_success(now, Some(now + remaining), 0.0);
            assert_eq!((delay, problem), (expected, None), "remaining {remaining:?}");
        }
    }

    #[test]
    fn refresh_interval_caps_the_wait() {
        let s = Schedule::with_max_interval(2 * HOUR).unwrap();
        let now = at(1_000_000);
        assert_eq!(s.after_success(now, Some(now + 12 * HOUR), 0.0).0, 2 * HOUR);
    }

    #[test]
    fn the_next_refresh_always_comes_well_before_expiry() {
        let s = Schedule::with_max_interval(48 * HOUR).unwrap();
        let now = at(1_000_000);
        for hours in 1..=24 {
            let remaining = Duration::from_secs(hours * 3600);
            for sample in [0.0, 0.5, 0.999] {
                let (delay, _) = s.after_success(now, Some(now + remaining), sample);
                assert!(delay <= remaining / 2, "{hours}h, sample {sample}: {delay:?}");
            }
        }
    }

    #[test]
    fn bad_expiry_falls_back_without_spinning() {
        let s = Schedule::default();
        let now = at(1_000_000);
        let cases = [
            (None, ExpiryProblem::Missing),
            (Some(now - HOUR), ExpiryProblem::InThePast),
            (Some(now), ExpiryProblem::InThePast),
            (Some(now + 400 * 24 * HOUR), ExpiryProblem::TooFar),
        ];
        for (expiry, problem) in cases {
            let (delay, got) = s.after_success(now, expiry, 0.0);
            assert_eq!(got, Some(problem));
            assert_eq!(delay, HOUR, "{problem:?}");
        }
    }

    #[test]
    fn jitter_only_shortens_and_stays_within_its_share() {
        let s = Schedule::default();
        let now = at(1_000_000);
        let (no_jitter, _) = s.after_success(now, Some(now + 12 * HOUR), 0.0);
        let (most_jitter, _) = s.after_success(now, Some(now + 12 * HOUR), 0.999_999);
        assert!(most_jitter < no_jitter);
        assert!(most_jitter >= no_jitter.mul_f64(0.9) - Duration::from_millis(1));
    }

    #[test]
    fn too_short_an_interval_is_refused() {
        assert!(Schedule::with_max_interval(Duration::from_secs(30)).is_err());
        assert_eq!(Schedule::with_max_interval(Duration::from_secs(120)).unwrap().fallback, Duration::from_secs(120));
    }

    #[test]
    fn backoff_doubles_from_five_seconds_to_five_minutes() {
        let b = Backoff::default();
        let delays: Vec<u64> = (1..=9).map(|n| b.delay(n, false, 0.0).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(b.delay(u32::MAX, false, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn permanent_errors_retry_at_the_slow_end() {
        assert_eq!(Backoff::default().delay(1, true, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn backoff_jitter_never_exceeds_the_cap() {
        let b = Backoff::default();
        for sample in [0.0, 0.3, 0.999] {
            let d = b.delay(12, false, sample);
            assert!(d <= b.max && d >= b.max.mul_f64(0.8) - Duration::from_millis(1), "{d:?}");
        }
    }
}
