use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("in range")
}

fn held(holder: &str, renewed: i64, seconds: Option<i32>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.into()),
        renew_time: Some(MicroTime(at(renewed))),
        acquire_time: Some(MicroTime(at(renewed - 100))),
        lease_duration_seconds: seconds,
        lease_transitions: Some(3),
        ..Default::default()
    }
}

const FIFTEEN: Duration = Duration::from_secs(15);

#[test]
fn a_lease_without_holder_is_free() {
    assert_eq!(judge(None, "me", at(0), FIFTEEN), Verdict::Free);
    let mut spec = held("", 0, Some(15));
    assert_eq!(judge(Some(&spec), "me", at(0), FIFTEEN), Verdict::Free);
    spec.holder_identity = None;
    assert_eq!(judge(Some(&spec), "me", at(0), FIFTEEN), Verdict::Free);
}

#[test]
fn a_lease_held_by_someone_else_holds_until_renew_time_plus_its_duration() {
    let spec = held("other", 0, Some(15));
    assert_eq!(
        judge(Some(&spec), "me", at(10), FIFTEEN),
        Verdict::Held { holder: "other".into(), remaining: Duration::from_secs(5) }
    );
    assert_eq!(judge(Some(&spec), "me", at(15), FIFTEEN), Verdict::Expired { holder: "other".into() });
    // Its own duration counts, not ours.
    let short = held("other", 0, Some(3));
    assert_eq!(judge(Some(&short), "me", at(4), FIFTEEN), Verdict::Expired { holder: "other".into() });
    // A renewTime in the future (another clock, or written by hand) is respected until then plus the duration.
    let future = held("other", 60, Some(15));
    assert_eq!(
        judge(Some(&future), "me", at(0), FIFTEEN),
        Verdict::Held { holder: "other".into(), remaining: Duration::from_secs(75) }
    );
}

#[test]
fn a_lease_without_duration_or_renew_time() {
    let spec = held("other", 0, None);
    assert!(matches!(judge(Some(&spec), "me", at(14), FIFTEEN), Verdict::Held { .. }), "our default");
    assert_eq!(judge(Some(&spec), "me", at(16), FIFTEEN), Verdict::Expired { holder: "other".into() });
    let mut only_acquired = held("other", 0, Some(15));
    only_acquired.renew_time = None;
    only_acquired.acquire_time = Some(MicroTime(at(0)));
    assert!(matches!(judge(Some(&only_acquired), "me", at(5), FIFTEEN), Verdict::Held { .. }));
    only_acquired.acquire_time = None;
    assert_eq!(judge(Some(&only_acquired), "me", at(0), FIFTEEN), Verdict::Expired { holder: "other".into() });
    // A duration far beyond any date does not overflow.
    let huge = held("other", 0, Some(i32::MAX));
    assert!(matches!(judge(Some(&huge), "me", at(1_000_000), FIFTEEN), Verdict::Held { .. }));
}

#[test]
fn our_own_lease_is_ours_even_when_expired() {
    let spec = held("me", 0, Some(15));
    assert_eq!(judge(Some(&spec), "me", at(1000), FIFTEEN), Verdict::Ours);
}

#[test]
fn creating_renewing_and_taking_over_set_acquire_time_and_transitions() {
    let created = claimed(None, "me", at(0), 15);
    assert_eq!(created.holder_identity.as_deref(), Some("me"));
    assert_eq!(created.lease_transitions, Some(0));
    assert_eq!(created.acquire_time, Some(MicroTime(at(0))));
    assert_eq!(created.renew_time, Some(MicroTime(at(0))));
    assert_eq!(created.lease_duration_seconds, Some(15));

    let renewed = claimed(Some(&created), "me", at(5), 15);
    assert_eq!(renewed.acquire_time, Some(MicroTime(at(0))), "renewing keeps acquireTime");
    assert_eq!(renewed.renew_time, Some(MicroTime(at(5))));
    assert_eq!(renewed.lease_transitions, Some(0));

    let taken = claimed(Some(&held("other", 0, Some(15))), "me", at(20), 15);
    assert_eq!(taken.holder_identity.as_deref(), Some("me"));
    assert_eq!(taken.acquire_time, Some(MicroTime(at(20))));
    assert_eq!(taken.lease_transitions, Some(4));

    let free = released(&held("me", 0, Some(15)), at(3));
    assert_eq!(free.holder_identity, None);
    assert_eq!(free.lease_duration_seconds, Some(1));
    assert_eq!(free.lease_transitions, Some(3), "releasing is not a transition");
    assert_eq!(judge(Some(&free), "other", at(3), FIFTEEN), Verdict::Free);
    let retaken = claimed(Some(&free), "other", at(4), 15);
    assert_eq!(retaken.lease_transitions, Some(4), "taking a released Lease is one");
}

#[test]
fn the_holder_stops_writing_before_anyone_may_take_over() {
    // The holder steps down `renew_deadline` after sending its last renewal; the others may take over
    // `lease_duration` after the renewTime written in it, at the same instant.
    for settings in [
        Settings::new(DEFAULT_LEASE_NAME, "ns", "me"),
        Settings::new(DEFAULT_LEASE_NAME, "ns", "me").with_timings(Duration::from_secs(3), Duration::from_secs(1)),
    ] {
        settings.check().expect("valid");
        assert!(settings.renew_deadline < settings.lease_duration);
        let spec = claimed(None, "me", at(0), settings.lease_seconds());
        let step_down = SignedDuration::try_from(settings.renew_deadline).expect("small");
        let stepped_down_at = at(0).checked_add(step_down).expect("in range");
        assert!(
            matches!(judge(Some(&spec), "other", stepped_down_at, FIFTEEN), Verdict::Held { .. }),
            "still held when the holder stops writing"
        );
        let expires = expiry(&spec, FIFTEEN).expect("set");
        assert!(stepped_down_at < expires);
        let margin = stepped_down_at.duration_until(expires).unsigned_abs();
        assert_eq!(margin, settings.lease_duration - settings.renew_deadline);
    }
}

#[test]
fn settings_are_checked() {
    let good = Settings::new(DEFAULT_LEASE_NAME, "rancher-ecr-credentials", "pod-1");
    assert_eq!(good.check(), Ok(()));
    assert_eq!((good.lease_duration, good.renew_period), (Duration::from_secs(15), Duration::from_secs(5)));
    let bad = |change: fn(&mut Settings)| {
        let mut settings = good.clone();
        change(&mut settings);
        settings.check().expect_err("refused")
    };
    assert!(bad(|s| s.namespace = String::new()).contains("LEADER_ELECTION_NAMESPACE"));
    assert!(bad(|s| s.namespace = "Upper".into()).contains("LEADER_ELECTION_NAMESPACE"));
    assert!(bad(|s| s.lease_name = "a/b".into()).contains("LEADER_ELECTION_LEASE_NAME"));
    assert!(bad(|s| s.identity = String::new()).contains("POD_NAME"));
    assert!(bad(|s| s.lease_duration = Duration::from_millis(1500)).contains("whole number"));
    assert!(bad(|s| s.renew_deadline = s.lease_duration).contains("renew deadline"));
    assert!(bad(|s| s.renew_period = s.renew_deadline).contains("renew period"));
    assert!(bad(|s| s.retry_period = Duration::ZERO).contains("retry period"));
}

#[test]
fn an_elector_that_ends_in_any_way_claims_nothing() {
    let (sender, state) = watch::channel(false);
    let claiming = Claiming(sender);
    claiming.set(true);
    assert!(*state.borrow());
    // Aborted, panicked or returned: the sender is dropped, and says false first.
    drop(claiming);
    assert!(!*state.borrow());
}

#[tokio::test(start_paused = true)]
async fn work_runs_once_per_term_and_stops_when_the_lease_is_lost() {
    use std::sync::Mutex;
    let (sender, state) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let events: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let driver = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sender.send_replace(true);
        tokio::time::sleep(Duration::from_secs(1)).await;
        sender.send_replace(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
        sender.send_replace(true);
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
    };
    let leading = lead(
        state,
        &shutdown,
        |leading| events.lock().expect("lock").push(format!("leading={leading}")),
        |term: CancellationToken| {
            let events = &events;
            async move {
                events.lock().expect("lock").push("start".into());
                term.cancelled().await;
                events.lock().expect("lock").push("stop".into());
            }
        },
    );
    tokio::join!(driver, leading);
    assert_eq!(
        events.into_inner().expect("lock"),
        ["leading=true", "start", "stop", "leading=false", "leading=true", "start", "stop", "leading=false"]
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_runs_while_standing_by_and_shutdown_ends_the_wait() {
    let (_sender, state) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let canceller = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        canceller.cancel();
    });
    let ran = std::cell::Cell::new(false);
    lead(
        state,
        &shutdown,
        |_| {},
        |_term| {
            ran.set(true);
            async {}
        },
    )
    .await;
    assert!(!ran.get());
}

#[test]
fn the_identity_is_the_pod_name_or_the_host_name() {
    // POD_NAME is read from the environment; this test only checks the host name fallback exists on Linux.
    if std::env::var_os("POD_NAME").is_none() {
        let identity = default_identity().expect("a host name");
        assert!(!identity.is_empty() && !identity.contains('\n'));
    }
}
