//! The long-running daemon: health endpoint, the first refresh, and a clean stop on SIGTERM.

use std::time::Duration;

use crate::harness::*;

async fn get(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let response = client.get(url).send().await.expect("the health endpoint answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_daemon_refreshes_answers_ping_and_stops_on_sigterm() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let port = free_port();
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &port.to_string());

    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", RUN_LIMIT).await;

    let (status, body) = get(&format!("http://127.0.0.1:{port}/ping")).await;
    assert_eq!((status, body.as_str()), (200, "pong!"));
    assert_eq!(cattle.credentials()[0].secret_value.as_deref(), Some(NEW_PASSWORD));
    // A 12-hour token is refreshed after about 6 hours (REFRESH_INTERVAL caps it at 6 h).
    let output = daemon.output();
    let line = output.lines().find(|l| l.contains("Refresh complete")).unwrap();
    assert!(line.contains("next_refresh_in=5h") || line.contains("next_refresh_in=6h"), "{line}");

    let (code, took, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
    assert!(output.contains("Stopped"), "{output}");
}
