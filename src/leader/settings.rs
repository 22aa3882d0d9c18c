//! Where the Lease is, who we are, and the timings: the settings of [`super`], checked.

use std::time::Duration;

use super::{
    DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RENEW_PERIOD, DEFAULT_RETRY_PERIOD, DEFAULT_TIMEOUT,
};

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

    pub(super) fn lease_seconds(&self) -> i32 {
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
