//! Events against the real API server: the library's recorder (`rancher_ecr_credentials::kubernetes::events`), as a
//! user that may create Events exactly where the test grants it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use rancher_ecr_credentials::kubernetes::events::{Events, Published, Reason, Regarding, Settings};

use crate::apiserver::*;

const SECRET: &str = "ecr-credentials";

async fn events_in(k8s: &Server, namespace: &str) -> Vec<Event> {
    Api::<Event>::namespaced(k8s.admin().await, namespace).list(&ListParams::default()).await.unwrap().items
}

fn event_rights() -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    vec![rule("events.k8s.io", "events", &[], &["create", "patch"])]
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_write_failed_event_about_a_secret_that_does_not_exist_yet_is_sent_once_in_10_minutes() {
    let k8s = server("a_write_failed_event_about_a_secret_that_does_not_exist_yet");
    let namespace = k8s.create_namespace("events").await;
    let (user, client) = k8s.user("events", None).await;
    k8s.grant(&namespace, &user, "events", event_rights()).await;
    let (logs, _guard) = Logs::capture();
    // A secret that the API server might echo is registered, as the daemon registers its tokens.
    rancher_ecr_credentials::redact::register("s3cr3t-echoed-by-the-server");
    let events = Events::new(client.clone(), Settings::new("replica-a"));
    let secret = Regarding::secret(&namespace, SECRET);

    let sent = events
        .warn(&secret, Reason::WriteFailed, "patch secrets: 403 forbidden: token s3cr3t-echoed-by-the-server\nnext")
        .await;

    assert_eq!(sent, Published::Sent, "{}", logs.text());
    let listed = events_in(&k8s, &namespace).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let event = &listed[0];
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some("WriteFailed"));
    assert_eq!(event.reporting_controller.as_deref(), Some("rancher-ecr-credentials"));
    assert_eq!(event.reporting_instance.as_deref(), Some("replica-a"));
    let regarding = event.regarding.as_ref().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("Secret"));
    assert_eq!(regarding.name.as_deref(), Some(SECRET));
    assert_eq!(regarding.namespace.as_deref(), Some(namespace.as_str()));
    assert_eq!(regarding.uid, None, "the Secret does not exist");
    let note = event.note.as_deref().unwrap();
    assert!(note.starts_with("patch secrets: 403 forbidden"), "{note}");
    assert!(!note.contains("s3cr3t") && note.contains("<redacted>") && !note.contains('\n'), "{note}");
    // What `kubectl get events` and `kubectl describe` read: the core/v1 view.
    let core = Api::<CoreEvent>::namespaced(k8s.admin().await, &namespace).list(&ListParams::default()).await.unwrap();
    assert_eq!(core.items.len(), 1);
    assert_eq!(core.items[0].reporting_component.as_deref(), Some("rancher-ecr-credentials"));
    assert_eq!(core.items[0].involved_object.name.as_deref(), Some(SECRET));
    assert_eq!(core.items[0].involved_object.kind.as_deref(), Some("Secret"));

    // The same reason about the same object again: not sent.
    let again = events.warn(&secret, Reason::WriteFailed, "patch secrets: 403 forbidden").await;
    assert_eq!(again, Published::Repeated);
    assert_eq!(events_in(&k8s, &namespace).await.len(), 1, "no second Event within 10 minutes");
    // Another reason about it, and the same reason about a ServiceAccount, are.
    assert_eq!(events.warn(&secret, Reason::NotOurs, "not ours").await, Published::Sent);
    let account = Regarding::service_account(&namespace, "default");
    assert_eq!(events.warn(&account, Reason::LinkFailed, "patch serviceaccounts: 409").await, Published::Sent);
    let listed = events_in(&k8s, &namespace).await;
    let mut reasons: Vec<_> = listed.iter().filter_map(|e| e.reason.clone()).collect();
    reasons.sort();
    assert_eq!(reasons, ["LinkFailed", "NotOurs", "WriteFailed"]);

    // Without waiting: sent by a task of its own; a repeat is dropped before any task.
    let contested = Regarding::secret(&namespace, "contested");
    events.warn_in_background(&contested, Reason::Contested, "restored 5 times in 10 minutes");
    events.warn_in_background(&contested, Reason::Contested, "restored 5 times in 10 minutes");
    let started = std::time::Instant::now();
    while events_in(&k8s, &namespace).await.len() < 4 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = events_in(&k8s, &namespace).await;
    assert_eq!(listed.iter().filter(|e| e.reason.as_deref() == Some("Contested")).count(), 1, "{listed:#?}");
    assert_eq!(events.warn(&contested, Reason::Contested, "x").await, Published::Repeated);

    // Turned off: nothing is sent.
    let mut settings = Settings::new("replica-a");
    settings.enabled = false;
    let off = Events::new(client, settings);
    let other = Regarding::secret(&namespace, "other");
    assert_eq!(off.warn(&other, Reason::Contested, "x").await, Published::Disabled);
    off.warn_in_background(&other, Reason::Contested, "x");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events_in(&k8s, &namespace).await.len(), 4);
    assert!(logs.lines("WARN", "").is_empty(), "{}", logs.text());
    assert!(!logs.text().contains("s3cr3t"), "{}", logs.text());
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_namespace_that_forbids_events_costs_one_warn_line_and_no_error() {
    let k8s = server("a_namespace_that_forbids_events");
    let allowed = k8s.create_namespace("allowed").await;
    let denied = k8s.create_namespace("denied").await;
    let (user, client) = k8s.user("events", None).await;
    // Events only where allowed; in denied the user may do nothing at all.
    k8s.grant(&allowed, &user, "events", event_rights()).await;
    let (logs, _guard) = Logs::capture();
    let events = Events::new(client, Settings::new("replica-a"));

    let outcomes = [
        events.warn(&Regarding::secret(&denied, SECRET), Reason::WriteFailed, "create secrets: 403 forbidden").await,
        events.warn(&Regarding::secret(&denied, SECRET), Reason::NotOurs, "not ours").await,
        events.warn(&Regarding::service_account(&denied, "default"), Reason::LinkFailed, "x").await,
        events.warn(&Regarding::secret(&denied, SECRET), Reason::WriteFailed, "again").await,
    ];

    assert_eq!(outcomes, [Published::Forbidden, Published::Forbidden, Published::Forbidden, Published::Repeated]);
    let warned = logs.lines("WARN", "");
    assert_eq!(warned.len(), 1, "one WARN line for the namespace:\n{}", logs.text());
    assert!(warned[0].contains(&denied) && warned[0].contains("forbids"), "{}", warned[0]);
    assert!(events_in(&k8s, &denied).await.is_empty());
    // Other namespaces still get theirs.
    let secret = Regarding::secret(&allowed, SECRET);
    assert_eq!(events.warn(&secret, Reason::WriteFailed, "x").await, Published::Sent);
    assert_eq!(events_in(&k8s, &allowed).await.len(), 1);
    assert_eq!(logs.lines("WARN", "").len(), 1, "{}", logs.text());

    // An API server that does not answer: bounded by the timeout, and still nothing for the caller to handle.
    let proxy = Proxy::start(&k8s.api).await;
    let (user, client) = k8s.user("hung", Some(&proxy.url)).await;
    k8s.grant(&allowed, &user, "hung-events", event_rights()).await;
    proxy.freeze();
    let mut settings = Settings::new("replica-a");
    settings.timeout = Duration::from_secs(1);
    let hung = Events::new(client, settings);
    let started = std::time::Instant::now();
    let outcome = hung.warn(&Regarding::secret(&allowed, "hung"), Reason::Contested, "x").await;
    assert_eq!(outcome, Published::Failed);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}
