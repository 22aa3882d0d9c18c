//! Kubernetes Events about the daemon's own Secrets and ServiceAccounts, where operators look first
//! (`kubectl describe secret …`, `kubectl get events`).
//!
//! What it owns: sending Warning Events (events.k8s.io/v1, through kube-runtime's [`Recorder`]) with reporting
//! controller `rancher-ecr-credentials`, in the namespace of the object they are about, and keeping their number
//! down: the same reason about the same object at most once per [`REPEAT_INTERVAL`]. What it does not own: deciding
//! when something is worth an Event (the caller does), or failing anything: an Event that cannot be sent is logged
//! (a namespace that forbids Events: one WARN line per namespace per [`FORBIDDEN_LOG_INTERVAL`]) and forgotten.
//!
//! The object may not exist yet (a Secret that could not be created): the Event names it by kind, namespace and
//! name. When the object exists, pass its uid ([`Regarding::with_uid`]): `kubectl describe` shows only the Events
//! whose uid matches the object's.
//!
//! Notes are cleaned before they leave ([`crate::redact::outside`]: known secrets redacted, control characters
//! escaped, length capped), since they carry text from the API server.
//!
//! # RBAC
//! ```yaml
//! # in every namespace written to (a ClusterRole bound cluster-wide, or per namespace)
//! - apiGroups: ["events.k8s.io"]
//!   resources: ["events"]
//!   verbs: ["create", "patch"]
//! ```

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::time::Instant;
use tracing::{debug, warn};

/// The reporting controller of every Event (`kubectl get events` shows it as the source).
pub const REPORTING_CONTROLLER: &str = "rancher-ecr-credentials";
/// The same reason about the same object is sent at most once in this interval.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// A namespace that forbids Events is logged at most once in this interval.
pub const FORBIDDEN_LOG_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// The time limit of sending one Event, unless the settings say otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many (reason, object) pairs and namespaces are remembered; beyond that the oldest are forgotten.
const MAX_REMEMBERED: usize = 4096;
/// The API server refuses longer notes.
const MAX_NOTE_BYTES: usize = 1024;
/// The API server refuses longer `reportingInstance` values.
const MAX_INSTANCE_CHARS: usize = 128;

/// Why an Event is sent. All are Warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A write failed; the note names the verb, resource and status (`patch secrets: 403 forbidden`).
    WriteFailed,
    /// A Secret of that name exists without our label, and adoption is off.
    NotOurs,
    /// Someone else keeps changing our Secret; we stopped restoring it until the next scheduled refresh.
    Contested,
    /// A ServiceAccount could not be patched to list the Secret.
    LinkFailed,
}

impl Reason {
    /// The `reason` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WriteFailed => "WriteFailed",
            Reason::NotOurs => "NotOurs",
            Reason::Contested => "Contested",
            Reason::LinkFailed => "LinkFailed",
        }
    }

    /// The `action` field: what the daemon was doing.
    fn action(self) -> &'static str {
        match self {
            Reason::WriteFailed => "Write",
            Reason::NotOurs => "Adopt",
            Reason::Contested => "Restore",
            Reason::LinkFailed => "Link",
        }
    }
}

/// The kinds of object the daemon sends Events about (both core/v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Secret,
    ServiceAccount,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::ServiceAccount => "ServiceAccount",
        }
    }
}

/// The object an Event is about: it need not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regarding {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// The object's uid, when it exists: `kubectl describe` matches Events by it.
    pub uid: Option<String>,
}

impl Regarding {
    pub fn secret(namespace: impl Into<String>, name: impl Into<String>) -> Regarding {
        Regarding { kind: Kind::Secret, namespace: namespace.into(), name: name.into(), uid: None }
    }

    pub fn service_account(namespace: impl Into<String>, name: impl Into<String>) -> Regarding {
        Regarding { kind: Kind::ServiceAccount, namespace: namespace.into(), name: name.into(), uid: None }
    }

    pub fn with_uid(mut self, uid: Option<String>) -> Regarding {
        self.uid = uid.filter(|uid| !uid.is_empty());
        self
    }

    fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some(self.kind.as_str().into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }
}

/// Whether Events are sent, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `KUBERNETES_EVENTS` (file: `events`); on by default.
    pub enabled: bool,
    /// The `reportingInstance`: the pod's name or the host name (see [`crate::leader::default_identity`]).
    pub instance: String,
    /// The time limit of sending one Event.
    pub timeout: Duration,
}

impl Settings {
    pub fn new(instance: impl Into<String>) -> Settings {
        Settings { enabled: true, instance: instance.into(), timeout: DEFAULT_TIMEOUT }
    }
}

/// What became of one Event. Nothing for the caller to handle: for tests, metrics and debugging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Created.
    Sent,
    /// The same reason about the same object was sent (or tried) less than [`REPEAT_INTERVAL`] ago.
    Repeated,
    /// Events are turned off.
    Disabled,
    /// The namespace forbids creating Events (403).
    Forbidden,
    /// Any other failure (logged at most once per [`FORBIDDEN_LOG_INTERVAL`], then at DEBUG).
    Failed,
}

/// Sends Events. Cheap to clone; one per API server, shared by everything that writes there.
#[derive(Clone)]
pub struct Events {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    recorder: Recorder,
    timeout: Duration,
    memory: Mutex<Memory>,
}

/// What was sent and logged lately, to keep Events and log lines down.
struct Memory {
    sent: OncePer<(Reason, Kind, String, String)>,
    forbidden_logged: OncePer<String>,
    failure_logged: OncePer<()>,
}

impl Events {
    /// Events through `client` (a client whose calls have a read timeout); none at all when `settings.enabled` is
    /// off.
    pub fn new(client: kube::Client, settings: Settings) -> Events {
        if !settings.enabled {
            return Events::disabled();
        }
        let instance: String = settings.instance.chars().take(MAX_INSTANCE_CHARS).collect();
        let reporter =
            Reporter { controller: REPORTING_CONTROLLER.into(), instance: Some(instance).filter(|i| !i.is_empty()) };
        let memory = Memory {
            sent: OncePer::new(REPEAT_INTERVAL, MAX_REMEMBERED),
            forbidden_logged: OncePer::new(FORBIDDEN_LOG_INTERVAL, MAX_REMEMBERED),
            failure_logged: OncePer::new(FORBIDDEN_LOG_INTERVAL, 1),
        };
        Events {
            inner: Some(Arc::new(Inner {
                recorder: Recorder::new(client, reporter),
                timeout: settings.timeout,
                memory: Mutex::new(memory),
            })),
        }
    }

    /// No Events (`KUBERNETES_EVENTS=false`).
    pub fn disabled() -> Events {
        Events { inner: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Sends a Warning Event with `reason` about `regarding`, in its namespace, unless the same was sent less than
    /// [`REPEAT_INTERVAL`] ago. `note` is cleaned ([`crate::redact::outside`]) and cut to what the API server
    /// takes. Never fails: the result says what happened, and may be ignored. Takes at most the settings' timeout;
    /// a caller that must not wait at all spawns it.
    pub async fn warn(&self, regarding: &Regarding, reason: Reason, note: &str) -> Published {
        let Some(inner) = &self.inner else {
            return Published::Disabled;
        };
        if !inner.admit(regarding, reason) {
            return Published::Repeated;
        }
        inner.send(regarding, reason, note).await
    }

    /// The same as [`Events::warn`] without waiting: a repeat is dropped here, anything else is sent by a task of
    /// its own. For callers that must not wait on an Event (a write path). Outside a Tokio runtime, nothing is sent.
    pub fn warn_in_background(&self, regarding: &Regarding, reason: Reason, note: &str) {
        let Some(inner) = &self.inner else { return };
        if !inner.admit(regarding, reason) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            debug!(namespace = %regarding.namespace, "No runtime to send an Event from");
            return;
        };
        let (inner, regarding, note) = (inner.clone(), regarding.clone(), note.to_string());
        runtime.spawn(async move { inner.send(&regarding, reason, &note).await });
    }
}

impl Inner {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this reason about this object may be sent now; counted when tried, whatever the outcome: a namespace
    /// that refuses costs one call per object and reason per interval, not one per failure.
    fn admit(&self, regarding: &Regarding, reason: Reason) -> bool {
        let key = (reason, regarding.kind, regarding.namespace.clone(), regarding.name.clone());
        self.memory().sent.admit(key, Instant::now())
    }

    async fn send(&self, regarding: &Regarding, reason: Reason, note: &str) -> Published {
        let inner = self;
        let event = Event {
            type_: EventType::Warning,
            reason: reason.as_str().into(),
            note: Some(clean_note(note)),
            action: reason.action().into(),
            secondary: None,
        };
        let result = tokio::time::timeout(inner.timeout, inner.recorder.publish(&event, &regarding.reference())).await;
        let error = match result {
            Ok(Ok(())) => {
                debug!(namespace = %regarding.namespace, name = %regarding.name, reason = reason.as_str(), "Sent an Event");
                return Published::Sent;
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 403 => {
                if inner.memory().forbidden_logged.admit(regarding.namespace.clone(), Instant::now()) {
                    warn!(
                        namespace = %regarding.namespace,
                        detail = %crate::redact::outside(&status.message),
                        "Kubernetes forbids this daemon's Events in this namespace; they are left out there \
                         (RBAC: events create/patch in events.k8s.io); said at most once an hour"
                    );
                }
                return Published::Forbidden;
            }
            Ok(Err(kube::Error::Api(status))) => {
                format!("HTTP {}: {}", status.code, crate::redact::outside(&status.message))
            }
            Ok(Err(other)) => crate::redact::error_chain(&other),
            Err(_) => format!("no answer within {:?}", inner.timeout),
        };
        if inner.memory().failure_logged.admit((), Instant::now()) {
            warn!(
                namespace = %regarding.namespace,
                name = %regarding.name,
                reason = reason.as_str(),
                error = %error,
                "Could not send an Event; Events that fail are dropped (said at most once an hour)"
            );
        } else {
            debug!(namespace = %regarding.namespace, name = %regarding.name, error = %error, "Could not send an Event");
        }
        Published::Failed
    }
}

/// A note fit to send: cleaned of secrets and control characters, at most [`MAX_NOTE_BYTES`].
fn clean_note(note: &str) -> String {
    let mut note = crate::redact::outside(note);
    if note.len() > MAX_NOTE_BYTES {
        let mut end = MAX_NOTE_BYTES - '…'.len_utf8();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
}

/// Lets each key through at most once per `interval`, remembering at most `capacity` keys (when full, the expired
/// ones go first, then the oldest).
#[derive(Debug)]
pub(crate) struct OncePer<K> {
    interval: Duration,
    capacity: usize,
    last: HashMap<K, Instant>,
}

impl<K: Eq + Hash + Clone> OncePer<K> {
    pub(crate) fn new(interval: Duration, capacity: usize) -> OncePer<K> {
        OncePer { interval, capacity: capacity.max(1), last: HashMap::new() }
    }

    /// `true` (and remembered from `now`) when `key` was not let through in the last interval.
    pub(crate) fn admit(&mut self, key: K, now: Instant) -> bool {
        if let Some(last) = self.last.get(&key)
            && now.saturating_duration_since(*last) < self.interval
        {
            return false;
        }
        if !self.last.contains_key(&key) && self.last.len() >= self.capacity {
            let interval = self.interval;
            self.last.retain(|_, last| now.saturating_duration_since(*last) < interval);
            if self.last.len() >= self.capacity
                && let Some(oldest) = self.last.iter().min_by_key(|(_, last)| **last).map(|(k, _)| k.clone())
            {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(key, now);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_same_key_passes_once_per_interval() {
        let start = Instant::now();
        let mut once = OncePer::new(10 * MINUTE, 100);
        assert!(once.admit("a", start));
        assert!(!once.admit("a", start + MINUTE));
        assert!(!once.admit("a", start + 10 * MINUTE - Duration::from_millis(1)));
        assert!(once.admit("b", start + MINUTE), "another key is independent");
        assert!(once.admit("a", start + 10 * MINUTE), "again after the interval");
        assert!(!once.admit("a", start + 15 * MINUTE), "counted from the last time it passed");
        assert!(once.admit("a", start + 20 * MINUTE));
    }

    #[test]
    fn memory_is_bounded_and_forgets_expired_keys_first_then_the_oldest() {
        let start = Instant::now();
        let mut once = OncePer::new(10 * MINUTE, 3);
        assert!(once.admit(1, start));
        assert!(once.admit(2, start + MINUTE));
        assert!(once.admit(3, start + 2 * MINUTE));
        // Full, none expired: the oldest (1) goes.
        assert!(once.admit(4, start + 3 * MINUTE));
        assert_eq!(once.len(), 3);
        assert!(!once.admit(2, start + 4 * MINUTE), "2 is still remembered");
        assert!(once.admit(1, start + 4 * MINUTE), "1 was forgotten");
        // Later, 3 and 4 have expired (and 2 was forgotten for 1): they go, 1 (at 4 min) stays.
        assert!(once.admit(5, start + 13 * MINUTE));
        assert_eq!(once.len(), 2, "1 and 5");
        for n in 0..10_000 {
            once.admit(100 + n, start + 15 * MINUTE);
        }
        assert_eq!(once.len(), 3);
    }

    #[test]
    fn the_forbidden_log_is_once_an_hour_per_namespace() {
        let start = Instant::now();
        let mut logged = OncePer::new(FORBIDDEN_LOG_INTERVAL, MAX_REMEMBERED);
        let lines = (0..120).filter(|m| logged.admit("denied".to_string(), start + *m * MINUTE)).count();
        assert_eq!(lines, 2, "two hours, two lines");
        assert!(logged.admit("other".to_string(), start + MINUTE));
    }

    #[test]
    fn notes_are_cleaned_and_fit_the_api_servers_limit() {
        assert_eq!(clean_note("patch secrets: 403 forbidden\nfake line"), "patch secrets: 403 forbidden\\nfake line");
        let long = "é".repeat(2000);
        let cleaned = clean_note(&long);
        assert!(cleaned.len() <= MAX_NOTE_BYTES, "{}", cleaned.len());
        let wide = "😀".repeat(400);
        assert!(clean_note(&wide).len() <= MAX_NOTE_BYTES);
    }

    #[test]
    fn references_name_the_object_even_without_uid() {
        let reference = Regarding::secret("apps", "ecr-credentials").reference();
        assert_eq!(reference.kind.as_deref(), Some("Secret"));
        assert_eq!(reference.api_version.as_deref(), Some("v1"));
        assert_eq!(reference.namespace.as_deref(), Some("apps"));
        assert_eq!(reference.name.as_deref(), Some("ecr-credentials"));
        assert_eq!(reference.uid, None);
        let account = Regarding::service_account("apps", "default").with_uid(Some("1234".into())).reference();
        assert_eq!((account.kind.as_deref(), account.uid.as_deref()), (Some("ServiceAccount"), Some("1234")));
        assert_eq!(Regarding::secret("a", "b").with_uid(Some(String::new())).uid, None);
    }

    #[tokio::test]
    async fn disabled_events_send_nothing() {
        let events = Events::disabled();
        assert!(!events.is_enabled());
        assert_eq!(events.warn(&Regarding::secret("a", "b"), Reason::WriteFailed, "x").await, Published::Disabled);
    }
}
