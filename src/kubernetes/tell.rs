//! Which failures become Kubernetes Events, about which object, with which reason and note: a Secret that could
//! not be written (`WriteFailed`, naming the verb, resource and status: `patch secrets: 403 forbidden`), one that
//! is not ours (`NotOurs`), one another writer keeps changing (`Contested`), a ServiceAccount that could not list
//! it (`LinkFailed`). Each goes to the namespace concerned (in project mode, the backing namespace), about our
//! Secret whether or not it exists yet. Sending them, once per reason and object per 10 minutes, and a namespace
//! that forbids them, are [`super::events`]'s; none of it ever fails a refresh.

use super::cluster::Kubernetes;
use super::error::KubernetesError;
use super::events::{Reason, Regarding};

/// The Event a failure deserves, if any: about what, why, and the note.
pub(super) fn event_for(error: &KubernetesError) -> Option<(Regarding, Reason, String)> {
    let object = |place: &str| place.split_once('/').map(|(ns, name)| (ns.to_string(), name.to_string()));
    match error {
        KubernetesError::Foreign { place } => {
            let (namespace, name) = object(place)?;
            let note = format!(
                "Secret {place} exists without the label app.kubernetes.io/managed-by=rancher-ecr-credentials: left alone (delete it, or set KUBERNETES_ADOPT_SECRETS=true to take it over)"
            );
            Some((Regarding::secret(namespace, name), Reason::NotOurs, note))
        }
        KubernetesError::WrongType { place, type_ } => {
            let (namespace, name) = object(place)?;
            let note = format!(
                "Secret {place} is of type {type_}, not kubernetes.io/dockerconfigjson, and a type cannot be changed: delete it and it is written again"
            );
            Some((Regarding::secret(namespace, name), Reason::WriteFailed, note))
        }
        KubernetesError::RancherCopy { .. } => None,
        KubernetesError::Api { verb, resource, place, code, reason, message } => {
            let status = format!("{code} {}", reason.to_lowercase());
            failed_call(verb, resource, place, &format!("{verb} {resource}: {status}: {message}"))
        }
        KubernetesError::Transport { verb, resource, place, detail, .. } => {
            failed_call(verb, resource, place, &format!("{verb} {resource}: {detail}"))
        }
    }
}

/// A refused or failed call about one object: our Secret (read or written) or a ServiceAccount patched.
fn failed_call(verb: &str, resource: &str, place: &str, note: &str) -> Option<(Regarding, Reason, String)> {
    let (namespace, name) = place.split_once('/')?;
    match (resource, verb) {
        // The cluster-wide LIST has no namespace to tell; the sync fails and says so in the log.
        ("secrets", "list") => None,
        ("secrets", _) => Some((Regarding::secret(namespace, name), Reason::WriteFailed, note.to_string())),
        ("serviceaccounts", "patch") => {
            Some((Regarding::service_account(namespace, name), Reason::LinkFailed, note.to_string()))
        }
        _ => None,
    }
}

impl Kubernetes {
    /// Sends the Event a failure deserves, if any. Never fails; takes at most the Events' time limit.
    pub(super) async fn tell(&self, error: &KubernetesError) {
        if let Some((regarding, reason, note)) = event_for(error) {
            self.events.warn(&regarding, reason, &note).await;
        }
    }

    /// The `Contested` Event about our Secret in `namespace`.
    pub(super) async fn contested_event(&self, namespace: &str, uid: Option<String>, writer: &str) {
        let regarding = Regarding::secret(namespace, &self.settings.secret_name).with_uid(uid);
        let note = format!(
            "Restored {} times within {}; another writer ({writer}) keeps changing it: not restored again until the next refresh",
            super::heal::CONTEST_LIMIT,
            humantime::format_duration(super::heal::CONTEST_WINDOW)
        );
        self.events.warn(&regarding, Reason::Contested, &note).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_is_write_failed_about_the_secret_naming_verb_resource_and_status() {
        let error = KubernetesError::Api {
            verb: "patch",
            resource: "secrets",
            place: "team-b/ecr-credentials".into(),
            code: 403,
            reason: "Forbidden".into(),
            message: "no".into(),
        };
        let (regarding, reason, note) = event_for(&error).unwrap();
        assert_eq!(regarding, Regarding::secret("team-b", "ecr-credentials"));
        assert_eq!(reason, Reason::WriteFailed);
        assert!(note.starts_with("patch secrets: 403 forbidden"), "{note}");

        let link = KubernetesError::Api {
            verb: "patch",
            resource: "serviceaccounts",
            place: "team-b/default".into(),
            code: 403,
            reason: "Forbidden".into(),
            message: "no".into(),
        };
        let (regarding, reason, _) = event_for(&link).unwrap();
        assert_eq!((regarding, reason), (Regarding::service_account("team-b", "default"), Reason::LinkFailed));

        let foreign = KubernetesError::Foreign { place: "apps/ecr-credentials".into() };
        assert_eq!(event_for(&foreign).unwrap().1, Reason::NotOurs);
        assert!(event_for(&KubernetesError::RancherCopy { place: "apps/ecr-credentials".into() }).is_none());
    }

    use super::super::fake;
    use super::super::settings::Settings;
    use crate::report::SyncOptions;

    #[tokio::test]
    async fn a_namespace_that_refuses_writes_gets_one_write_failed_event_about_our_secret() {
        let mut store = fake::with_namespaces(&["apps", "locked"]);
        store.forbidden.insert("locked".into());
        let (fake, kube) = fake::target(store, fake::namespaces(&["*"], &[]));

        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();

        let events = fake.store().events.clone();
        assert_eq!(events.len(), 1, "once per reason and object in 10 minutes: {events:?}");
        let event = &events[0];
        assert_eq!(event["reason"], "WriteFailed");
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["metadata"]["namespace"], "locked");
        assert_eq!(event["regarding"]["kind"], "Secret");
        assert_eq!(event["regarding"]["name"], "ecr-credentials");
        assert_eq!(event["reportingController"], "rancher-ecr-credentials");
        assert!(event["note"].as_str().unwrap().starts_with("patch secrets: 403 forbidden"), "{event}");
    }

    #[tokio::test]
    async fn events_turned_off_or_forbidden_never_fail_a_refresh() {
        let mut store = fake::with_namespaces(&["locked"]);
        store.forbidden.insert("locked".into());
        let off = Settings { events: false, ..fake::namespaces(&["*"], &[]) };
        let (fake, kube) = fake::target(store, off);
        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        assert!(fake.take_seen().iter().all(|s| !s.is_event()), "KUBERNETES_EVENTS=false sends none");

        let mut store = fake::with_namespaces(&["apps", "quiet"]);
        store.events_forbidden.insert("quiet".into());
        store.secrets.insert(
            ("quiet".into(), "ecr-credentials".into()),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": "ecr-credentials", "namespace": "quiet"}, "data": {}}),
        );
        let (fake, kube) = fake::target(store, fake::namespaces(&["*"], &[]));
        let report = kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        assert_eq!(report.failures.len(), 1, "only the foreign Secret: {:?}", report.failures);
        assert!(fake.secret("apps", "ecr-credentials").is_some());
        assert!(fake.take_seen().iter().any(|s| s.is_event()), "tried, refused");
    }
}
