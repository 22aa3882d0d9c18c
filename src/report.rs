//! The one report a sync of any target gives ([`SyncReport`]): what was written, what a person may want to know,
//! and what failed. Generic over the error of the API that made it, so that [`crate::rancher`] and
//! [`crate::kubernetes`] fill it in without knowing each other or the dispatcher above them ([`crate::target`]).

/// How a sync may change the target.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Create what is missing (a registry, a credential) instead of reporting it.
    pub auto_create: bool,
    /// Read only: report what would be written, send no PUT, POST or PATCH.
    pub dry_run: bool,
}

/// What one sync of one target did: every credential written, every notice, every failure.
#[derive(Debug)]
pub struct SyncReport<E> {
    pub written: Vec<Written>,
    pub notices: Vec<Notice>,
    pub failures: Vec<Failure<E>>,
    /// The keys (ECR hosts, or `scope/host`) of the credentials that now hold the current token, written in this
    /// sync or found current: what readiness and the expiry metric track.
    pub held: Vec<String>,
    /// For targets that span many places (Kubernetes namespaces or projects): how many there are, and which
    /// of them do not hold the current token.
    pub places: Option<Places>,
}

impl<E> Default for SyncReport<E> {
    fn default() -> Self {
        SyncReport { written: Vec::new(), notices: Vec::new(), failures: Vec::new(), held: Vec::new(), places: None }
    }
}

impl<E> SyncReport<E> {
    /// The same report, its failures' errors mapped (into the dispatcher's error type).
    pub fn map_err<F>(self, f: impl Fn(E) -> F) -> SyncReport<F> {
        let SyncReport { written, notices, failures, held, places } = self;
        let failures = failures.into_iter().map(|x| Failure { host: x.host, scope: x.scope, error: f(x.error) });
        SyncReport { written, notices, failures: failures.collect(), held, places }
    }
}

/// The places of a target and those that lack the current token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    pub total: usize,
    pub missing: Vec<String>,
}

/// A credential that now holds the new password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The ECR host (a Kubernetes Secret holds several: comma-separated).
    pub host: String,
    /// Where in the target, when a target spans several places (a Rancher 2 project).
    pub scope: Option<String>,
    /// The resource written, for logs: e.g. `registry 1sp3 credential 1c12`, `Secret apps/ecr-credentials`.
    pub resource: String,
    pub action: Action,
}

impl Written {
    /// The key under which readiness and metrics track this credential.
    pub fn key(&self) -> String {
        match &self.scope {
            Some(scope) => format!("{scope}/{}", self.host),
            None => self.host.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Updated,
    Created,
    /// The registry did not exist; AUTO_CREATE created it with its credential.
    CreatedWithRegistry,
    /// A ServiceAccount now lists the Secret in its `imagePullSecrets`.
    Linked,
}

impl Action {
    /// The log message of a credential written with this action (or, with `dry_run`, that would be).
    pub fn message(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Action::Updated, false) => "Updated credential",
            (Action::Created, false) => "Created credential",
            (Action::CreatedWithRegistry, false) => "Created registry and credential (AUTO_CREATE)",
            (Action::Updated, true) => "Dry run: would update credential",
            (Action::Created, true) => "Dry run: would create credential",
            (Action::CreatedWithRegistry, true) => "Dry run: would create registry and credential (AUTO_CREATE)",
            (Action::Linked, false) => "Added the Secret to the ServiceAccount's imagePullSecrets",
            (Action::Linked, true) => "Dry run: would add the Secret to the ServiceAccount's imagePullSecrets",
        }
    }
}

/// Something a person may want to know that did not fail the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// No registry or credential names this host, and AUTO_CREATE is off.
    NoRegistry { host: String, scope: Option<String> },
    /// Every credential of this registry is deactivated: someone switched them off on purpose.
    OnlyInactive { host: String, resource: String },
    /// A registry address that is not a host name; skipped.
    MalformedAddress { resource: String, address: String },
    /// Rancher's answer held an item that was not asked for (another registry's credential, another project's
    /// credential); it is never written.
    NotAskedFor { resource: String, reason: String },
}

/// A host (or, for Kubernetes, a place) that could not be brought up to date.
#[derive(Debug)]
pub struct Failure<E> {
    pub host: String,
    pub scope: Option<String>,
    pub error: E,
}

/// Formats an expiry for a log line (`unknown` when there is none).
pub fn rfc3339(at: Option<std::time::SystemTime>) -> String {
    at.map(|t| humantime::format_rfc3339_seconds(t).to_string()).unwrap_or_else(|| "unknown".into())
}
