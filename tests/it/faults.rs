//! Faults on both sides, against the long-running daemon: it stays up, does not spin, recovers within the backoff
//! bound once the fault clears, never writes a bad credential, and keeps secrets out of its logs.
//!
//! Retries are shortened with RETRY_DELAY=200ms and RETRY_MAX_DELAY=1s, Rancher calls with RANCHER_TIMEOUT=1s, so
//! every scenario runs in seconds; the shapes of the waits are the production ones.

use std::time::Duration;

use standins::cattle::FakeCattle;
use standins::ecr::{FakeEcr, TokenShape};
use standins::{Fault, FaultKind};

use crate::harness::*;

/// How long a recovery may take once a fault clears: the longest retry delay plus a margin for the cycle itself.
const RECOVERY: Duration = Duration::from_secs(5);

/// A registry with an old credential, and the daemon's environment with short retries.
async fn setup() -> (FakeEcr, FakeCattle, String, Vec<(String, String)>) {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let env = fast(env(&ecr, &format!("{}/v2-beta", cattle.url())));
    (ecr, cattle, credential, env)
}

fn fast(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    set(&mut env, "RETRY_DELAY", "200ms");
    set(&mut env, "RETRY_MAX_DELAY", "1s");
    set(&mut env, "RANCHER_TIMEOUT", "1s");
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &free_port().to_string());
    env
}

/// Every PUT the daemon sent carried the fresh password, never anything else.
fn assert_only_good_puts(cattle: &FakeCattle) {
    for put in cattle.requests().iter().filter(|r| r.method == "PUT") {
        let body = put.body.as_ref().expect("a JSON body");
        assert_eq!(body["secretValue"], NEW_PASSWORD, "{put:?}");
        assert_eq!(body["publicValue"], "AWS", "{put:?}");
    }
}

/// The daemon is still running: it answers its health endpoint.
async fn assert_alive(env: &[(String, String)]) {
    let port = env.iter().find(|(k, _)| k == "LISTEN_PORT").map(|(_, v)| v.clone()).unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let response = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.expect("the daemon answers");
    assert_eq!(response.status().as_u16(), 200);
}

/// Starts the daemon with Rancher failing with `kind`, checks it keeps retrying without spinning, clears the fault
/// and checks it recovers. Returns the daemon's output.
async fn survives_rancher_fault(kind: FaultKind) -> String {
    let (_ecr, cattle, credential, env) = setup().await;
    cattle.set_fault(Fault::new(kind.clone()));

    let daemon = Daemon::start(&env, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_alive(&env).await;
    let attempts = cattle.requests().len();
    // Retries after 0.2 s, 0.4 s, 0.8 s, then every second: at most about 6 attempts in 3 s, never a busy loop.
    assert!((2..=8).contains(&attempts), "{kind:?}: {attempts} requests in 3 s:\n{}", daemon.output());
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(OLD_PASSWORD));

    cattle.clear_faults();
    wait_for_password(&daemon, &cattle, &credential, RECOVERY).await;
    daemon.wait_for_log("Refresh complete", RECOVERY).await;
    assert_only_good_puts(&cattle);
    let (code, _, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "{output}");
    assert_no_secrets(&output);
    output
}

#[tokio::test]
async fn rancher_server_errors_are_retried_until_they_stop() {
    for status in [500, 502, 503] {
        let output = survives_rancher_fault(FaultKind::Status(status)).await;
        assert!(output.contains(&format!("HTTP {status}")), "{output}");
        assert!(output.contains("will retry"), "{output}");
    }
}

#[tokio::test]
async fn a_rancher_that_never_answers_costs_one_timeout_per_attempt() {
    let output = survives_rancher_fault(FaultKind::Hang).await;
    assert!(output.contains("timeout"), "{output}");
}

#[tokio::test]
async fn dropped_connections_truncated_and_non_json_answers_are_retried() {
    for kind in [FaultKind::DropConnection, FaultKind::Truncated, FaultKind::NotJson] {
        survives_rancher_fault(kind).await;
    }
}

#[tokio::test]
async fn rejected_keys_are_retried_slowly_until_the_keys_are_fixed() {
    let (_ecr, cattle, credential, env) = setup().await;
    cattle.set_keys(CATTLE_ACCESS, "rotated-secret-not-yet-deployed");

    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("CATTLE_SECRET_KEY", RUN_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_alive(&env).await;
    // A permanent error waits the longest delay (1 s here) at once: 3 or 4 attempts in 3 s.
    let attempts = cattle.requests().len();
    assert!((2..=5).contains(&attempts), "{attempts} requests in 3 s:\n{}", daemon.output());
    assert!(daemon.output().contains("ERROR"), "{}", daemon.output());

    cattle.set_keys(CATTLE_ACCESS, CATTLE_SECRET);
    wait_for_password(&daemon, &cattle, &credential, RECOVERY).await;
    let (code, _, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains("rotated-secret-not-yet-deployed"), "{output}");
    assert_no_secrets(&output);
}

#[tokio::test]
async fn a_rancher_that_is_down_at_start_is_waited_for() {
    let ecr = ecr().await;
    let port = free_port();
    let env = fast(env(&ecr, &format!("http://127.0.0.1:{port}/v2-beta")));

    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("will retry", RUN_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_alive(&env).await;

    let cattle = FakeCattle::start_on(
        format!("127.0.0.1:{port}").parse().unwrap(),
        standins::cattle::CattleConfig {
            access_key: CATTLE_ACCESS.into(),
            secret_key: CATTLE_SECRET.into(),
            ..Default::default()
        },
    )
    .await
    .expect("the port is still free");
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    wait_for_password(&daemon, &cattle, &credential, RECOVERY).await;
    let (code, _, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("connect"), "the log says why: {output}");
}

#[tokio::test]
async fn a_conflict_or_rejection_on_put_is_retried_for_that_registry() {
    for status in [409, 422] {
        let (_ecr, cattle, credential, env) = setup().await;
        cattle.set_fault(Fault::new(FaultKind::Status(status)).method("PUT").times(2));

        let daemon = Daemon::start(&env, &[]);
        wait_for_password(&daemon, &cattle, &credential, RUN_LIMIT).await;

        let puts = cattle.requests().into_iter().filter(|r| r.method == "PUT").count();
        assert_eq!(puts, 3, "two refused, then one accepted:\n{}", daemon.output());
        assert_only_good_puts(&cattle);
        let (_, _, output) = daemon.terminate(Duration::from_secs(5)).await;
        assert!(output.contains(&host(ACCOUNT)) && output.contains(&format!("HTTP {status}")), "{output}");
        assert_no_secrets(&output);
    }
}

#[tokio::test]
async fn ecr_throttling_is_absorbed_by_the_sdk_retries() {
    let (ecr, cattle, credential, env) = setup().await;
    let throttled = FaultKind::EcrError { type_name: "ThrottlingException".into(), status: 400 };
    ecr.set_fault(Fault::new(throttled).times(2));

    let daemon = Daemon::start(&env, &[]);
    wait_for_password(&daemon, &cattle, &credential, RUN_LIMIT).await;

    // The SDK's standard retry mode: three attempts within one refresh.
    let statuses: Vec<u16> = ecr.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 400, 200], "{}", daemon.output());
    let (_, _, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert_no_secrets(&output);
}

#[tokio::test]
async fn ecr_access_denied_leaves_rancher_untouched_and_says_what_to_fix() {
    let (ecr, cattle, credential, env) = setup().await;
    let denied = FaultKind::EcrError { type_name: "AccessDeniedException".into(), status: 400 };
    ecr.set_fault(Fault::new(denied));

    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("ecr:GetAuthorizationToken", RUN_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_alive(&env).await;
    assert!(cattle.requests().is_empty(), "Rancher is not touched: {:?}", cattle.requests());
    // AccessDenied is not retried by the SDK, and the daemon waits the longest delay: at most 3 calls in 2 s.
    let calls = ecr.requests().len();
    assert!((1..=3).contains(&calls), "{calls} ECR calls:\n{}", daemon.output());

    ecr.clear_faults();
    wait_for_password(&daemon, &cattle, &credential, RECOVERY).await;
    let (_, _, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert!(output.contains("ERROR") && output.contains("AccessDeniedException"), "{output}");
    assert_no_secrets(&output);
}

#[tokio::test]
async fn malformed_tokens_never_reach_rancher_and_are_retried() {
    for shape in [TokenShape::EmptyAuthorizationData, TokenShape::WithoutColon, TokenShape::NotBase64] {
        let (ecr, cattle, credential, env) = setup().await;
        ecr.set_token_shape(shape);

        let daemon = Daemon::start(&env, &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_alive(&env).await;
        assert!(cattle.requests().is_empty(), "{shape:?}: Rancher is not touched: {:?}", cattle.requests());
        let calls = ecr.requests().len();
        assert!((2..=8).contains(&calls), "{shape:?}: {calls} ECR calls in 2 s:\n{}", daemon.output());

        ecr.set_token_shape(TokenShape::Normal);
        wait_for_password(&daemon, &cattle, &credential, RECOVERY).await;
        assert_only_good_puts(&cattle);
        let (_, _, output) = daemon.terminate(Duration::from_secs(5)).await;
        assert!(output.contains("ECR"), "{output}");
        assert_no_secrets(&output);
    }
}

#[tokio::test]
async fn an_expiry_in_the_past_falls_back_to_a_sane_delay_without_looping() {
    let (ecr, cattle, credential, env) = setup().await;
    ecr.set_expires_at(ACCOUNT, now_secs() - 600.0);

    let daemon = Daemon::start(&env, &[]);
    wait_for_password(&daemon, &cattle, &credential, RUN_LIMIT).await;
    daemon.wait_for_log("Refresh complete", RUN_LIMIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(ecr.requests().len(), 1, "one refresh, then a long sleep:\n{}", daemon.output());
    let output = daemon.output();
    let warning = output.lines().find(|l| l.contains("WARN") && l.contains("expir")).expect(&output);
    assert!(warning.contains("clock"), "{warning}");
    let done = output.lines().find(|l| l.contains("Refresh complete")).unwrap();
    assert!(done.contains("next_refresh_in=5") || done.contains("next_refresh_in=1h"), "{done}");
    daemon.terminate(Duration::from_secs(5)).await;
}
