//! Failed ECR pulls, diagnosed where they happen (`KUBERNETES_DIAGNOSE_PULLS`): a watch on kubelet's core/v1
//! Events in every namespace; for a failed pull from an ECR host, the cause this daemon can see (its Secret
//! missing or not referenced, the registry not among its sources, an expired token, access denied, no such image),
//! said once on the Pod as a Warning Event with the fix, counted, and logged. An expired token is the one cause it
//! owns: the refresh loop is asked for a new token at once, at most once per registry per [`REFRESH_INTERVAL`].
//!
//! What it reads: Events (watch), the Pod the Event names (one GET, never a list: a spec can carry secrets in
//! env values, and none of it is logged but the image's registry), our own Secret in its namespace, and the Pod's
//! ServiceAccount. What it writes: Events about Pods, nothing else. Forged or repeated Events cost little: a
//! cause already diagnosed for a Pod's container is not read again, the work queue is bounded, an Event must name
//! the uid of a Pod that exists, and the refresh is rate-limited. The reading of messages is
//! [`super::pull_failure`]'s.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::cluster::Kubernetes;
use super::error::{Call, KubernetesError, one_line};
use super::pull_failure::{self, Cause, ContainerList, EcrImage, EventFacts, Skip};
use super::secret::{DOCKER_CONFIG_JSON, labelled_ours};
use super::settings::{self, Mode};
use crate::address;
use crate::status::Status;

mod decide;
use decide::registry_key;
pub use decide::{Diagnosis, Facts, Reason, decide};

/// Asks the target's refresh loop for a new token of a registry (an ECR host), now.
pub type RefreshNow<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A registry's token is refreshed because of a failed pull at most once in this interval.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Events last seen before the watch started (less this margin for clock skew) are history, not news: a restart
/// does not say again what was said before it. Failures that go on bring new Events (kubelet retries).
const HISTORY_MARGIN: Duration = Duration::from_secs(5);
/// A bare 403 seen this long after a refresh of its registry was asked for is no expired token: access denied.
/// (A refresh is written within about a second; kubelet retries after 10 s at the earliest.)
pub const RECUR_AFTER: Duration = Duration::from_secs(10);
/// Failed pulls waiting for a diagnosis; more are dropped (and diagnosed at kubelet's next retry).
const QUEUE: usize = 1024;
/// Diagnoses running at the same time.
const WORKERS: usize = 16;
/// How many (Pod, container, cause) are remembered; beyond that the oldest are forgotten.
const REMEMBERED: usize = 10_000;
/// A cause this daemon found nothing to say about is looked at again after this long.
const NOTHING_TO_SAY_FOR: Duration = Duration::from_secs(5 * 60);
/// Pods' Events are kept an hour by default: a diagnosis is remembered a little longer.
const DIAGNOSED_FOR: Duration = Duration::from_secs(2 * 3600);

/// One failed pull to diagnose, as the Event gave it.
#[derive(Debug, Clone)]
struct Job {
    namespace: String,
    pod: String,
    uid: String,
    /// The container of `involvedObject.fieldPath`; none for `FailedToRetrieveImagePullSecret`.
    container: Option<(ContainerList, String)>,
    cause: Cause,
    /// When kubelet last saw the failure.
    last_seen: Option<Timestamp>,
}

type Key = (String, String, &'static str);

/// What has been claimed, said and refreshed lately: bounded, oldest forgotten first.
struct Memory {
    /// (pod uid, container, cause) → until when it is not looked at again.
    claimed: HashMap<Key, Instant>,
    order: VecDeque<Key>,
    /// (pod uid, container, reason) said on the Pod.
    said: HashMap<Key, Instant>,
    said_order: VecDeque<Key>,
    /// Registry (its standard host) → when a refresh was last asked for because of a failed pull.
    refreshed: HashMap<String, (Instant, Timestamp)>,
    /// Failed pulls dropped because the queue was full.
    dropped: u64,
    /// The kind of the last failed diagnosis, to log a run of the same failure once.
    last_error: Option<&'static str>,
}

impl Memory {
    fn new() -> Memory {
        Memory {
            claimed: HashMap::new(),
            order: VecDeque::new(),
            said: HashMap::new(),
            said_order: VecDeque::new(),
            refreshed: HashMap::new(),
            dropped: 0,
            last_error: None,
        }
    }

    /// True when this key is new (or forgotten): the caller diagnoses it.
    fn claim(&mut self, key: Key, now: Instant) -> bool {
        remember(&mut self.claimed, &mut self.order, key, now, DIAGNOSED_FOR)
    }

    fn release(&mut self, key: &Key) {
        self.claimed.remove(key);
    }

    /// Lets a key be looked at again sooner (nothing was said about it).
    fn recheck_after(&mut self, key: &Key, at: Instant) {
        if let Some(until) = self.claimed.get_mut(key) {
            *until = at;
        }
    }

    /// True when this reason has not been said about this container of this Pod.
    fn say(&mut self, key: Key, now: Instant) -> bool {
        remember(&mut self.said, &mut self.said_order, key, now, DIAGNOSED_FOR)
    }

    /// `Ok` when a refresh of `registry` may be asked for now (and records it), else when it last was.
    fn refresh(&mut self, registry: &str, now: Instant) -> Result<(), Instant> {
        match self.refreshed.get(registry) {
            Some((at, _)) if now.saturating_duration_since(*at) < REFRESH_INTERVAL => Err(*at),
            _ => {
                self.refreshed.insert(registry.to_string(), (now, Timestamp::now()));
                Ok(())
            }
        }
    }

    /// True when a refresh of `registry` was asked for at least [`RECUR_AFTER`] before `seen`: a bare 403 seen
    /// then came after a new token was written.
    fn refreshed_before(&self, registry: &str, seen: Option<Timestamp>) -> bool {
        let (Some((_, at)), Some(seen)) = (self.refreshed.get(registry), seen) else { return false };
        seen.duration_since(*at).as_secs_f64() >= RECUR_AFTER.as_secs_f64()
    }
}

/// Inserts `key` unless it is there and not yet due; forgets the oldest beyond [`REMEMBERED`].
fn remember(map: &mut HashMap<Key, Instant>, order: &mut VecDeque<Key>, key: Key, now: Instant, ttl: Duration) -> bool {
    if map.get(&key).is_some_and(|until| now < *until) {
        return false;
    }
    if map.insert(key.clone(), now + ttl).is_none() {
        order.push_back(key);
    }
    while order.len() > REMEMBERED {
        if let Some(old) = order.pop_front() {
            map.remove(&old);
        }
    }
    true
}

/// Reads a core/v1 Event into a job, or says why not. Events last seen before `since` are skipped.
fn job_of(event: &Event, since: Timestamp) -> Result<Job, Skip> {
    let source = event.source.as_ref();
    let facts = EventFacts {
        type_: event.type_.as_deref().unwrap_or_default(),
        reason: event.reason.as_deref().unwrap_or_default(),
        message: event.message.as_deref().unwrap_or_default(),
        involved_kind: event.involved_object.kind.as_deref().unwrap_or_default(),
        source_component: source.and_then(|s| s.component.as_deref()).unwrap_or_default(),
        reporting_component: event.reporting_component.as_deref().unwrap_or_default(),
    };
    let cause = pull_failure::read_event(&facts)?;
    let involved = &event.involved_object;
    let (Some(namespace), Some(pod), Some(uid)) = (&involved.namespace, &involved.name, &involved.uid) else {
        return Err(Skip::NotAPullFailure);
    };
    if event.metadata.namespace.as_deref().is_some_and(|ns| ns != namespace) || uid.is_empty() {
        return Err(Skip::NotAPullFailure);
    }
    let container = match involved.field_path.as_deref().and_then(pull_failure::container_of) {
        Some((list, name)) => Some((list, name.to_string())),
        None if facts.reason == pull_failure::FAILED => return Err(Skip::NotAPullFailure),
        None => None,
    };
    if last_seen(event).is_some_and(|last| last < since) {
        return Err(Skip::NotAPullFailure);
    }
    let last_seen = last_seen(event);
    Ok(Job { namespace: namespace.clone(), pod: pod.clone(), uid: uid.clone(), container, cause, last_seen })
}

/// When the Event last happened, by whichever field its writer set.
fn last_seen(event: &Event) -> Option<Timestamp> {
    [
        event.series.as_ref().and_then(|s| s.last_observed_time.as_ref()).map(|t| t.0),
        event.last_timestamp.as_ref().map(|t| t.0),
        event.event_time.as_ref().map(|t| t.0),
        event.first_timestamp.as_ref().map(|t| t.0),
        event.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// The image of the container the job names; for a job without a container, the first ECR image of the Pod.
fn image_of(pod: &Pod, container: &Option<(ContainerList, String)>) -> Option<(String, EcrImage)> {
    let spec = pod.spec.as_ref()?;
    let containers = spec.containers.iter().map(|c| (ContainerList::Containers, &c.name, &c.image));
    let init = spec.init_containers.iter().flatten().map(|c| (ContainerList::InitContainers, &c.name, &c.image));
    let ephemeral =
        spec.ephemeral_containers.iter().flatten().map(|c| (ContainerList::EphemeralContainers, &c.name, &c.image));
    let mut all = containers.chain(init).chain(ephemeral);
    match container {
        Some((list, name)) => {
            let (_, name, image) = all.find(|(l, n, _)| l == list && *n == name)?;
            let ecr = pull_failure::image_registry(image.as_deref()?)?;
            Some((name.clone(), ecr))
        }
        None => all.find_map(|(_, name, image)| {
            pull_failure::image_registry(image.as_deref()?).map(|ecr| (name.clone(), ecr))
        }),
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, serde::de::IgnoredAny>,
}

/// The registry hosts a pull Secret holds (its `auths` keys, normalized); never the passwords.
fn secret_hosts(secret: &Secret) -> Vec<String> {
    let Some(data) = secret.data.as_ref().and_then(|d| d.get(DOCKER_CONFIG_JSON)) else { return Vec::new() };
    let Ok(config) = serde_json::from_slice::<DockerConfig>(&data.0) else { return Vec::new() };
    config.auths.keys().filter_map(|k| address::normalize(k)).collect()
}

impl Kubernetes {
    /// With `KUBERNETES_DIAGNOSE_PULLS` on (namespace mode), watches kubelet's Events about failed pulls until
    /// `shutdown` and diagnoses those from ECR hosts; `refresh_now` asks the target's refresh loop for a new
    /// token. Returns at once when the option is off.
    pub async fn diagnose_pulls(
        &self,
        target: &str,
        status: &Status,
        refresh_now: RefreshNow<'_>,
        shutdown: &CancellationToken,
    ) {
        if !matches!(self.settings.mode, Mode::Namespaces(_)) {
            return;
        }
        // At 0 from the start (with the option off too: none diagnosed), so that dashboards and alerts see them.
        status.pull_failure_reasons(&Reason::ALL.map(Reason::as_str));
        if !self.settings.diagnose_pulls {
            return;
        }
        let memory = Mutex::new(Memory::new());
        let (queue, jobs) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        let watch = |reason: &str| {
            let fields = format!("involvedObject.kind=Pod,type=Warning,reason={reason}");
            let config = watcher::Config::default().fields(&fields);
            watcher(Api::<Event>::all(self.watch_client.clone()), config).default_backoff().boxed()
        };
        let events = futures_util::stream::select(watch(pull_failure::FAILED), watch(pull_failure::FAILED_TO_RETRIEVE));
        let since = Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::try_from(HISTORY_MARGIN).unwrap_or_default())
            .unwrap_or_else(|_| Timestamp::now());
        info!(target = %target, "Watching kubelet's Events for failed ECR pulls");
        let read = async {
            let mut events = std::pin::pin!(events);
            let mut failing = false;
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(watcher::Event::Apply(event) | watcher::Event::InitApply(event)) => event,
                    Ok(_) => continue,
                    Err(e) => {
                        if !std::mem::replace(&mut failing, true) {
                            warn!(target = %target, error = %one_line(&e.to_string()), "Watch of Events failed; reconnecting with backoff");
                        }
                        continue;
                    }
                };
                failing = false;
                let job = match job_of(&event, since) {
                    Ok(job) => job,
                    Err(Skip::Network | Skip::Unknown) => {
                        debug!(target = %target, "A failed pull with no credential cause; ignored");
                        continue;
                    }
                    Err(_) => continue,
                };
                let key = claim_key(&job);
                let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
                if !memory.claim(key.clone(), Instant::now()) {
                    continue;
                }
                if queue.try_send(job).is_err() {
                    memory.release(&key);
                    memory.dropped += 1;
                    if memory.dropped.is_power_of_two() {
                        warn!(target = %target, dropped = memory.dropped,
                            "Too many failed pulls at once; some are diagnosed at kubelet's next retry");
                    }
                }
            }
        };
        let memory = &memory;
        let work = futures_util::stream::unfold(jobs, |mut jobs| async move { jobs.recv().await.map(|j| (j, jobs)) })
            .for_each_concurrent(WORKERS, |job| async move {
                let key = claim_key(&job);
                match self.diagnose(&job, memory, refresh_now).await {
                    Ok(Some(reason)) => {
                        status.pull_failure(reason.as_str());
                        memory.lock().unwrap_or_else(|p| p.into_inner()).last_error = None;
                    }
                    Ok(None) => {
                        let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
                        memory.recheck_after(&key, Instant::now() + NOTHING_TO_SAY_FOR);
                    }
                    Err(e) => {
                        // Counted every time; logged at WARN once per kind of error in a row (a missing RBAC
                        // rule would otherwise log once per failed pull).
                        status.error("kubernetes", e.kind());
                        let new_kind = {
                            let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
                            memory.release(&key);
                            memory.last_error.replace(e.kind()) != Some(e.kind())
                        };
                        let hint = e.hint().unwrap_or("will try again at kubelet's next retry");
                        if new_kind {
                            warn!(target = %target, namespace = %job.namespace, pod = %job.pod, error = %e,
                                kind = e.kind(), "Could not diagnose a failed pull: {hint}");
                        } else {
                            debug!(target = %target, namespace = %job.namespace, pod = %job.pod, error = %e,
                                "Could not diagnose a failed pull");
                        }
                    }
                }
            });
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = read => {}
            _ = work => {}
        }
    }

    /// Reads what the diagnosis needs, decides, says it on the Pod and asks for a refresh when it is ours.
    /// `Ok(None)`: nothing to say (the Pod is gone or replaced, not an ECR image, or nothing wrong on our side).
    async fn diagnose(
        &self,
        job: &Job,
        memory: &Mutex<Memory>,
        refresh_now: RefreshNow<'_>,
    ) -> Result<Option<Reason>, KubernetesError> {
        let Mode::Namespaces(selection) = &self.settings.mode else { return Ok(None) };
        let (namespace, secret_name) = (job.namespace.as_str(), self.settings.secret_name.as_str());
        let timeout = self.settings.timeout;
        let place = format!("{namespace}/{}", job.pod);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let call = Call { verb: "get", resource: "pods", place };
        let Some(pod) = call.run(timeout, pods.get_opt(&job.pod)).await? else { return Ok(None) };
        if pod.metadata.uid.as_deref() != Some(job.uid.as_str()) {
            return Ok(None);
        }
        let Some((container, image)) = image_of(&pod, &job.container) else { return Ok(None) };
        let cause = match image.registry {
            None => job.cause.clone().at_public_registry(),
            Some(_) => job.cause.clone(),
        };
        let mut facts = Facts {
            namespace: namespace.to_string(),
            secret_name: secret_name.to_string(),
            service_account: pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            ..Facts::default()
        };
        if matches!(cause, Cause::NoCredentials | Cause::Expired { .. } | Cause::AccessDenied { .. }) {
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let call = Call { verb: "get", resource: "secrets", place: format!("{namespace}/{secret_name}") };
            let secret = call.run(timeout, secrets.get_opt(secret_name)).await?;
            facts.secret_ours = secret.as_ref().map(labelled_ours);
            facts.secret_hosts = secret.as_ref().map(secret_hosts).unwrap_or_default();
            facts.referenced = pod
                .spec
                .as_ref()
                .and_then(|s| s.image_pull_secrets.as_ref())
                .is_some_and(|refs| refs.iter().any(|r| r.name == secret_name));
            facts.covered = self.covers(&image);
            facts.not_selected = self.why_not_selected(selection, namespace);
            facts.refreshed_before =
                memory.lock().unwrap_or_else(|p| p.into_inner()).refreshed_before(&registry_key(&image), job.last_seen);
            if facts.secret_ours == Some(true) && !facts.referenced && matches!(cause, Cause::NoCredentials) {
                let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
                let place = format!("{namespace}/{}", facts.service_account);
                let call = Call { verb: "get", resource: "serviceaccounts", place };
                let account = call.run(timeout, accounts.get_opt(&facts.service_account)).await?;
                facts.account_lists_it =
                    Some(account.is_some_and(|a| a.image_pull_secrets.iter().flatten().any(|r| r.name == secret_name)));
            }
        }
        let Some(mut diagnosis) = decide(&cause, &image, &facts) else {
            debug!(namespace = %namespace, pod = %job.pod, container = %container, registry = %image.host, cause = cause.name(),
                "A failed pull with nothing wrong on this daemon's side");
            return Ok(None);
        };
        let said_key = (job.uid.clone(), container.clone(), diagnosis.reason.as_str());
        if !memory.lock().unwrap_or_else(|p| p.into_inner()).say(said_key, Instant::now()) {
            return Ok(None);
        }
        if matches!(cause, Cause::Expired { suspected: true }) && diagnosis.reason == Reason::TokenExpired {
            // If the 403 recurs after the new token is written, it is access denied: look at it again then.
            let key = claim_key(job);
            memory.lock().unwrap_or_else(|p| p.into_inner()).recheck_after(&key, Instant::now() + RECUR_AFTER);
        }
        if let Some(registry) = diagnosis.refresh.clone() {
            let asked = memory.lock().unwrap_or_else(|p| p.into_inner()).refresh(&registry, Instant::now());
            let words = match asked {
                Ok(()) => {
                    refresh_now(&registry);
                    format!(
                        "rancher-ecr-credentials asked ECR for a new token now and writes it to Secret {secret_name} in every selected namespace; kubelet's next retry uses it."
                    )
                }
                Err(at) => format!(
                    "A new token was already asked for {}s ago (at most once per registry every {} minutes); kubelet's next retry uses it.",
                    Instant::now().saturating_duration_since(at).as_secs(),
                    REFRESH_INTERVAL.as_secs() / 60
                ),
            };
            let suffix = if matches!(cause, Cause::Expired { suspected: true }) {
                " If it still fails after that, the principal lacks ecr:BatchGetImage (access denied)."
            } else {
                ""
            };
            diagnosis.message = format!("{} {words}{suffix}", diagnosis.message);
        }
        info!(namespace = %namespace, pod = %job.pod, container = %container, registry = %image.host,
            reason = %diagnosis.reason.as_str(), refresh = diagnosis.refresh.is_some(), "Diagnosed a failed pull");
        self.say_on_pod(&pod, job, &container, &diagnosis).await?;
        Ok(Some(diagnosis.reason))
    }

    /// Whether the tokens this target writes cover the image's registry (any host form); `None` before the
    /// first token.
    fn covers(&self, image: &EcrImage) -> Option<bool> {
        let state = self.state();
        let desired = state.desired.as_ref()?;
        // A REGISTRY_ADDRESS_MAP address may carry a scheme or a path: compare hosts.
        Some(
            desired
                .host_list()
                .iter()
                .any(|host| address::normalize(host).is_some_and(|host| address::same_registry(&host, &image.host))),
        )
    }

    /// Why a namespace is not selected, naming the setting, or `None` when it is.
    fn why_not_selected(&self, selection: &super::select::Selection, namespace: &str) -> Option<String> {
        let name = |s: &crate::setting::Setting| format!("{} (file key {})", s.var, s.key());
        if selection.exclude.iter().any(|g| super::select::glob_matches(g, namespace)) {
            return Some(format!("{} excludes it", name(&settings::EXCLUDE)));
        }
        if !selection.selects(namespace) {
            return Some(format!("{} does not name it; add it there", name(&settings::NAMESPACES)));
        }
        let known = self.state().counted.contains(namespace);
        match &selection.selector {
            Some(selector) if !known => {
                Some(format!("its labels do not match {} '{selector}'", name(&settings::SELECTOR)))
            }
            _ => None,
        }
    }

    /// The Warning Event on the Pod.
    async fn say_on_pod(
        &self,
        pod: &Pod,
        job: &Job,
        container: &str,
        diagnosis: &Diagnosis,
    ) -> Result<(), KubernetesError> {
        let field_path = job.container.as_ref().map(|(list, _)| {
            let list = match list {
                ContainerList::Containers => "containers",
                ContainerList::InitContainers => "initContainers",
                ContainerList::EphemeralContainers => "ephemeralContainers",
            };
            format!("spec.{list}{{{container}}}")
        });
        let now = Time(Timestamp::now());
        let instance = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).map(|h| h.chars().take(128).collect());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", job.pod)),
                namespace: Some(job.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                namespace: Some(job.namespace.clone()),
                uid: Some(job.uid.clone()),
                field_path,
                ..ObjectReference::default()
            },
            reason: Some(diagnosis.reason.as_str().into()),
            // Our words; the outside parts (repository, principal) were cleaned where they were read.
            message: Some(crate::redact::secrets(&diagnosis.message).into_owned()),
            type_: Some("Warning".into()),
            source: Some(EventSource { component: Some(pull_failure::OURS.into()), host: None }),
            reporting_component: Some(pull_failure::OURS.into()),
            reporting_instance: instance,
            action: Some("Diagnose".into()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &job.namespace);
        let call = Call { verb: "create", resource: "events", place: job.namespace.clone() };
        call.run(self.settings.timeout, events.create(&PostParams::default(), &event)).await?;
        Ok(())
    }
}

fn claim_key(job: &Job) -> Key {
    let container = job.container.as_ref().map(|(_, name)| name.clone()).unwrap_or_default();
    (job.uid.clone(), container, job.cause.name())
}

#[cfg(test)]
mod tests;
