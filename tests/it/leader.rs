//! Leader election against the real API server: the library's elector (`rancher_ecr_credentials::leader`), as a
//! user that has exactly the Lease rights the daemon needs, in a namespace of each test's own.
//!
//! Short timings (3 s lease, renewed every second) where the point is not the default; the default timings where
//! it is ("a standby takes over within 5 s after a release").

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use rancher_ecr_credentials::leader::{self, Leadership, Settings};
use tokio_util::sync::CancellationToken;

use crate::apiserver::*;

const LEASE: &str = "rancher-ecr-credentials";
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RENEW_PERIOD: Duration = Duration::from_secs(1);

/// A namespace, and a user with the Lease rights of the daemon there: create, and get/update of the one Lease.
async fn setup(k8s: &Server, users: &[&str]) -> (String, Vec<kube::Client>) {
    let namespace = k8s.create_namespace("lease").await;
    let mut clients = Vec::new();
    for name in users {
        let (user, client) = k8s.user(name, None).await;
        grant_lease_rights(k8s, &namespace, &user).await;
        clients.push(client);
    }
    (namespace, clients)
}

async fn grant_lease_rights(k8s: &Server, namespace: &str, user: &str) {
    let rules = vec![
        rule("coordination.k8s.io", "leases", &[], &["create"]),
        rule("coordination.k8s.io", "leases", &[LEASE], &["get", "update"]),
    ];
    k8s.grant(namespace, user, &format!("{user}-leases"), rules).await;
}

fn short(namespace: &str, identity: &str) -> Settings {
    Settings::new(LEASE, namespace, identity).with_timings(LEASE_DURATION, RENEW_PERIOD)
}

async fn lease(k8s: &Server, namespace: &str) -> LeaseSpec {
    Api::<Lease>::namespaced(k8s.admin().await, namespace).get(LEASE).await.unwrap().spec.unwrap()
}

/// Waits (bounded) until the elector's state is `want`; how long that took.
async fn wait_for(leadership: &Leadership, want: bool, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut state = leadership.subscribe();
    tokio::time::timeout(limit, state.wait_for(|leader| *leader == want)).await.ok()?.ok()?;
    Some(started.elapsed())
}

fn seconds(spec: &LeaseSpec) -> i64 {
    i64::from(spec.lease_duration_seconds.unwrap())
}

fn expiry(spec: &LeaseSpec) -> Timestamp {
    spec.renew_time.as_ref().unwrap().0.checked_add(SignedDuration::from_secs(seconds(spec))).unwrap()
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn one_elector_takes_a_free_lease_and_a_second_stays_standby_while_the_first_renews() {
    let k8s = server("one_elector_takes_a_free_lease");
    let (namespace, clients) = setup(&k8s, &["a", "b"]).await;
    let (logs, _guard) = Logs::capture();
    let shutdown = CancellationToken::new();

    let a = leader::spawn(clients[0].clone(), short(&namespace, "replica-a"), shutdown.clone());
    wait_for(&a, true, Duration::from_secs(10)).await.unwrap_or_else(|| panic!("a never led:\n{}", logs.text()));
    let first = lease(&k8s, &namespace).await;
    assert_eq!(first.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(first.lease_duration_seconds, Some(3));
    assert_eq!(first.lease_transitions, Some(0));
    assert!(first.acquire_time.is_some());

    let b = leader::spawn(clients[1].clone(), short(&namespace, "replica-b"), shutdown.clone());
    // For three lease durations, a leads throughout and b never does.
    let started = Instant::now();
    while started.elapsed() < 3 * LEASE_DURATION {
        assert!(a.is_leader(), "a lost the lease:\n{}", logs.text());
        assert!(!b.is_leader(), "b took a lease a renews:\n{}", logs.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let later = lease(&k8s, &namespace).await;
    assert_eq!(later.holder_identity.as_deref(), Some("replica-a"));
    assert!(later.renew_time.as_ref().unwrap().0 > first.renew_time.as_ref().unwrap().0, "a renews");
    assert_eq!(later.acquire_time, first.acquire_time, "renewing is not acquiring");
    assert_eq!(later.lease_transitions, Some(0));
    // One INFO line each: a became the leader, b is a standby naming a.
    assert_eq!(logs.lines("INFO", "Became the leader").len(), 1, "{}", logs.text());
    let standby = logs.lines("INFO", "Standby");
    assert_eq!(standby.len(), 1, "{}", logs.text());
    assert!(standby[0].contains("holder=replica-a") && standby[0].contains("identity=replica-b"), "{}", standby[0]);
    assert!(logs.lines("WARN", "").is_empty(), "{}", logs.text());

    shutdown.cancel();
    a.stopped().await;
    b.stopped().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_holder_killed_without_release_is_replaced_after_its_lease_expires() {
    let k8s = server("a_holder_killed_without_release");
    let (namespace, clients) = setup(&k8s, &["a", "b"]).await;
    let (logs, _guard) = Logs::capture();
    let shutdown = CancellationToken::new();
    let a = leader::spawn(clients[0].clone(), short(&namespace, "replica-a"), shutdown.clone());
    wait_for(&a, true, Duration::from_secs(10)).await.unwrap_or_else(|| panic!("a never led:\n{}", logs.text()));
    let b = leader::spawn(clients[1].clone(), short(&namespace, "replica-b"), shutdown.clone());
    tokio::time::sleep(2 * RENEW_PERIOD).await;
    assert!(!b.is_leader());

    // kill -9: the task is gone, nothing is released.
    a.abort();
    let killed = Instant::now();
    assert!(wait_for(&a, false, Duration::from_secs(1)).await.is_some(), "an aborted elector claims nothing");
    let left = lease(&k8s, &namespace).await;
    assert_eq!(left.holder_identity.as_deref(), Some("replica-a"), "not released");

    let took = wait_for(&b, true, LEASE_DURATION + Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("b did not take over within lease duration + 5 s:\n{}", logs.text()));
    let now = Timestamp::now();
    eprintln!("kill -9 of the holder -> standby leads after {:?}", killed.elapsed());
    assert!(now >= expiry(&left), "b took over at {now}, before a's Lease expired at {}", expiry(&left));
    assert!(took <= LEASE_DURATION + Duration::from_secs(5));
    let taken = lease(&k8s, &namespace).await;
    assert_eq!(taken.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(taken.lease_transitions, Some(1));
    assert!(taken.acquire_time.as_ref().unwrap().0 >= expiry(&left), "acquireTime is the takeover");

    shutdown.cancel();
    b.stopped().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn shutdown_of_the_holder_releases_the_lease_and_a_standby_takes_over_within_5_s() {
    let k8s = server("shutdown_of_the_holder_releases_the_lease");
    let (namespace, clients) = setup(&k8s, &["a", "b"]).await;
    let (logs, _guard) = Logs::capture();
    // The default timings: a 15 s lease, and still a takeover within 5 s.
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = leader::spawn(clients[0].clone(), Settings::new(LEASE, &namespace, "replica-a"), stop_a.clone());
    wait_for(&a, true, Duration::from_secs(10)).await.unwrap_or_else(|| panic!("a never led:\n{}", logs.text()));
    let b = leader::spawn(clients[1].clone(), Settings::new(LEASE, &namespace, "replica-b"), stop_b.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!b.is_leader() && a.is_leader(), "{}", logs.text());

    // SIGTERM: the daemon cancels its token.
    let mut a_state = a.subscribe();
    stop_a.cancel();
    let stopping = Instant::now();
    a.stopped().await;
    assert!(!*a_state.borrow_and_update(), "a claims nothing once stopped");
    let released = lease(&k8s, &namespace).await;
    let took = wait_for(&b, true, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("b did not take over within 5 s of the release:\n{}", logs.text()));
    eprintln!("release by the holder -> standby leads after {:?}", stopping.elapsed());
    assert!(stopping.elapsed() < Duration::from_secs(5), "{:?}", stopping.elapsed());
    assert!(took < Duration::from_secs(5));
    assert_eq!(logs.lines("INFO", "Released the Lease").len(), 1, "{}", logs.text());
    // Released, unless b was quicker than our read.
    let holder = released.holder_identity.as_deref();
    assert!(holder.is_none() || holder == Some("replica-b"), "{released:?}");
    let taken = lease(&k8s, &namespace).await;
    assert_eq!(taken.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(taken.lease_duration_seconds, Some(15));
    assert_eq!(taken.lease_transitions, Some(1));

    stop_b.cancel();
    b.stopped().await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_holder_whose_api_server_stops_answering_stops_claiming_leadership_before_its_lease_expires() {
    let k8s = server("a_holder_whose_api_server_stops_answering");
    let namespace = k8s.create_namespace("lease").await;
    let proxy = Proxy::start(&k8s.api).await;
    // a reaches the API server through a proxy that will hang; b directly.
    let (user_a, client_a) = k8s.user("a", Some(&proxy.url)).await;
    let (user_b, client_b) = k8s.user("b", None).await;
    grant_lease_rights(&k8s, &namespace, &user_a).await;
    grant_lease_rights(&k8s, &namespace, &user_b).await;
    let (logs, _guard) = Logs::capture();
    let shutdown = CancellationToken::new();
    let a = leader::spawn(client_a, short(&namespace, "replica-a"), shutdown.clone());
    wait_for(&a, true, Duration::from_secs(10)).await.unwrap_or_else(|| panic!("a never led:\n{}", logs.text()));
    let b = leader::spawn(client_b, short(&namespace, "replica-b"), shutdown.clone());
    tokio::time::sleep(2 * RENEW_PERIOD).await;
    assert!(a.is_leader() && !b.is_leader(), "{}", logs.text());

    // Every call of a now hangs: its renewals neither succeed nor fail until their timeout.
    proxy.freeze();
    let frozen = Instant::now();
    let (mut a_state, mut b_state) = (a.subscribe(), b.subscribe());
    // (`is_ok()` at once: a `Ref` kept from `wait_for` would hold the state's lock, and the elector with it.)
    let a_stopped = tokio::time::timeout(LEASE_DURATION, a_state.wait_for(|leader| !*leader)).await.is_ok();
    let a_stopped_at = (Instant::now(), Timestamp::now());
    assert!(a_stopped, "a still claims leadership a lease duration after its API server hung:\n{}", logs.text());
    assert!(!b.is_leader(), "b led while a still claimed leadership:\n{}", logs.text());
    eprintln!("API server hung -> holder stands down after {:?}", a_stopped_at.0 - frozen);
    // a stopped before its Lease expired from b's (and everyone's) point of view.
    let held = lease(&k8s, &namespace).await;
    assert_eq!(held.holder_identity.as_deref(), Some("replica-a"));
    assert!(
        a_stopped_at.1 < expiry(&held),
        "a stood down at {}, after its Lease expired at {}",
        a_stopped_at.1,
        expiry(&held)
    );

    // b takes over once it has expired, and a never claims again meanwhile.
    tokio::time::timeout(LEASE_DURATION + Duration::from_secs(5), b_state.wait_for(|leader| *leader))
        .await
        .unwrap_or_else(|_| panic!("b did not take over:\n{}", logs.text()))
        .unwrap();
    assert!(Timestamp::now() >= expiry(&held));
    assert!(!a.is_leader());
    let lost = logs.lines("WARN", "Lost the Lease");
    assert_eq!(lost.len(), 1, "one WARN on losing the lease:\n{}", logs.text());
    assert!(lost[0].contains("identity=replica-a"), "{}", lost[0]);

    shutdown.cancel();
    // a's release hangs too: bounded by its timeout.
    let stopping = Instant::now();
    a.stopped().await;
    b.stopped().await;
    assert!(stopping.elapsed() < Duration::from_secs(5), "shutdown took {:?}", stopping.elapsed());
    assert_eq!(lease(&k8s, &namespace).await.holder_identity, None, "b released it");
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_lease_held_by_someone_else_is_respected_until_it_expires_and_taken_over_within_5_s_after() {
    let k8s = server("a_lease_held_by_someone_else_is_respected");
    let (namespace, clients) = setup(&k8s, &["a"]).await;
    let (logs, _guard) = Logs::capture();
    // Written by hand: renewed "2 s from now", for 3 s: it expires 5 s from now.
    let renewed = Timestamp::now().checked_add(SignedDuration::from_secs(2)).unwrap();
    let by_hand = Lease {
        metadata: ObjectMeta { name: Some(LEASE.into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("someone-else".into()),
            lease_duration_seconds: Some(3),
            renew_time: Some(MicroTime(renewed)),
            acquire_time: Some(MicroTime(renewed)),
            lease_transitions: Some(7),
            ..Default::default()
        }),
    };
    Api::<Lease>::namespaced(k8s.admin().await, &namespace).create(&PostParams::default(), &by_hand).await.unwrap();
    let expires = expiry(by_hand.spec.as_ref().unwrap());

    let shutdown = CancellationToken::new();
    let a = leader::spawn(clients[0].clone(), short(&namespace, "replica-a"), shutdown.clone());
    let took = wait_for(&a, true, Duration::from_secs(15)).await;
    let now = Timestamp::now();
    assert!(took.is_some(), "never took the expired Lease:\n{}", logs.text());
    assert!(now >= expires, "took it at {now}, before it expired at {expires}");
    let late = expires.duration_until(now);
    eprintln!("someone else's Lease expired -> taken over {late} later");
    assert!(late < SignedDuration::from_secs(5), "taken over {late} after it expired");
    let taken = lease(&k8s, &namespace).await;
    assert_eq!(taken.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(taken.lease_transitions, Some(8));
    assert_eq!(taken.lease_duration_seconds, Some(3));
    let standby = logs.lines("INFO", "Standby");
    assert_eq!(standby.len(), 1, "{}", logs.text());
    assert!(standby[0].contains("holder=someone-else"), "{}", standby[0]);

    shutdown.cancel();
    a.stopped().await;
}

#[tokio::test]
async fn an_elector_that_cannot_reach_the_api_server_retries_at_its_retry_period_and_warns_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // An "API server" that takes each connection and closes it: every call fails at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
    config.proxy_url = None;
    config.connect_timeout = Some(Duration::from_secs(1));
    config.read_timeout = Some(Duration::from_secs(1));
    let client = kube::Client::try_from(config).unwrap();
    let (logs, _guard) = Logs::capture();
    let shutdown = CancellationToken::new();
    // Retries every 0.5 s.
    let elector = leader::spawn(client, short("default", "replica-a"), shutdown.clone());

    tokio::time::sleep(Duration::from_secs(3)).await;

    assert!(!elector.is_leader());
    let attempts = connections.load(Ordering::SeqCst);
    // About 6 attempts in 3 s (a connection closed early may be tried twice by the HTTP client): never a hot loop.
    assert!((3..=16).contains(&attempts), "{attempts} connections in 3 s:\n{}", logs.text());
    let warned = logs.lines("WARN", "");
    assert_eq!(warned.len(), 1, "one WARN while it keeps failing:\n{}", logs.text());
    assert!(warned[0].contains("Could not read or take the Lease"), "{}", warned[0]);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), elector.stopped()).await.expect("stops, bounded");
    server.abort();
}
