//! Health, readiness and metrics of the running daemon, over real HTTP.

use std::time::Duration;

use standins::{Fault, FaultKind};

use crate::harness::*;

fn daemon_env(ecr: &standins::ecr::FakeEcr, cattle_url: &str, port: u16) -> Vec<(String, String)> {
    let mut env = env(ecr, cattle_url);
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &port.to_string());
    set(&mut env, "RETRY_DELAY", "200ms");
    set(&mut env, "RETRY_MAX_DELAY", "1s");
    env
}

/// Parses the exposition with a Prometheus text parser and returns the samples.
fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text").samples
}

fn value(samples: &[prometheus_parse::Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(|s| {
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        }
    })
}

#[tokio::test]
async fn readiness_follows_the_first_refresh_and_the_credential_expiry() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    // ECR is unreachable at first: the daemon is alive but not ready.
    ecr.set_fault(Fault::new(FaultKind::EcrError { type_name: "ServerException".into(), status: 500 }));
    let port = free_port();
    let daemon = Daemon::start(&daemon_env(&ecr, &format!("{}/v2-beta", cattle.url()), port), &[]);
    daemon.wait_for_log("will retry", RUN_LIMIT).await;

    let healthz = get(port, "/healthz").await;
    assert_eq!(healthz.status, 200, "{}", healthz.body);
    let readyz = get(port, "/readyz").await;
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert!(readyz.content_type.starts_with("application/json"), "{}", readyz.content_type);
    let reason: serde_json::Value = serde_json::from_str(&readyz.body).unwrap();
    assert_eq!(reason["ready"], false);
    assert!(reason["reason"].as_str().unwrap().contains("no successful refresh"), "{reason}");
    assert!(reason["last_error"].as_str().unwrap().contains("ServerException"), "{reason}");

    // A token that enters the one-hour readiness margin a few seconds after it is written (set only now, so that a
    // slow machine does not eat the margin while ECR fails).
    ecr.set_expires_at(ACCOUNT, now_secs() + 3600.0 + 8.0);
    ecr.clear_faults();
    daemon.wait_for_log("Refresh complete", RUN_LIMIT).await;
    let readyz = get(port, "/readyz").await;
    assert_eq!((readyz.status, readyz.body.as_str()), (200, r#"{"ready":true}"#));

    // Rancher now fails, and the credential written nears its expiry: not ready, with the reason.
    cattle.set_fault(Fault::new(FaultKind::Status(503)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut readyz = get(port, "/readyz").await;
    while readyz.status == 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        readyz = get(port, "/readyz").await;
    }
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    let reason: serde_json::Value = serde_json::from_str(&readyz.body).unwrap();
    assert!(reason["reason"].as_str().unwrap().contains(&host(ACCOUNT)), "{reason}");
    // Still alive: liveness is about the loop, not about Rancher.
    assert_eq!(get(port, "/healthz").await.status, 200);
    daemon.terminate(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn metrics_report_refreshes_expiry_errors_and_build_info() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    // The first update is refused once, so the error counters have something to show.
    cattle.set_fault(Fault::new(FaultKind::Status(500)).method("PUT").times(1));
    let port = free_port();
    let daemon = Daemon::start(&daemon_env(&ecr, &format!("{}/v2-beta", cattle.url()), port), &[]);
    daemon.wait_for_log("Refresh complete", RUN_LIMIT).await;

    let metrics = get(port, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("application/openmetrics-text"), "{}", metrics.content_type);
    assert_no_secrets(&metrics.body);
    let samples = samples(&metrics.body);
    let target = format!("{}/v2-beta", cattle.url());
    let ok = value(&samples, "rancher_ecr_credentials_refreshes_total", &[("target", &target), ("result", "success")]);
    assert_eq!(ok, Some(1.0), "{}", metrics.body);
    let failed =
        value(&samples, "rancher_ecr_credentials_refreshes_total", &[("target", &target), ("result", "failure")]);
    assert_eq!(failed, Some(1.0), "{}", metrics.body);
    let expiry =
        value(&samples, "rancher_ecr_credentials_token_expiry_timestamp_seconds", &[("registry", &host(ACCOUNT))])
            .expect("an expiry per registry");
    assert!((expiry - (now_secs() + 12.0 * 3600.0)).abs() < 120.0, "{expiry}");
    let last =
        value(&samples, "rancher_ecr_credentials_last_success_timestamp_seconds", &[("target", &target)]).unwrap();
    assert!((now_secs() - last).abs() < 60.0, "{last}");
    let errors =
        value(&samples, "rancher_ecr_credentials_errors_total", &[("source", "rancher"), ("kind", "server_error")]);
    assert_eq!(errors, Some(1.0), "{}", metrics.body);
    assert_eq!(value(&samples, "rancher_ecr_credentials_ready", &[]), Some(1.0), "{}", metrics.body);
    let build = samples.iter().find(|s| s.metric == "rancher_ecr_credentials_build_info").expect("build info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(
        samples.iter().any(|s| s.metric.starts_with("rancher_ecr_credentials_refresh_duration_seconds")),
        "{}",
        metrics.body
    );
    daemon.terminate(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn healthcheck_command_reports_readiness_with_its_exit_code() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    cattle.set_fault(Fault::new(FaultKind::Status(503)));
    let port = free_port();
    let env = daemon_env(&ecr, &format!("{}/v2-beta", cattle.url()), port);
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("will retry", RUN_LIMIT).await;

    let probe = [("LISTEN_PORT".to_string(), port.to_string())];
    let not_ready = run(&probe, &["healthcheck"]).await;
    assert_eq!(not_ready.code, Some(1), "{}", not_ready.output);
    assert!(not_ready.output.contains("503"), "{}", not_ready.output);

    cattle.clear_faults();
    daemon.wait_for_log("Refresh complete", RUN_LIMIT).await;
    let ready = run(&probe, &["healthcheck"]).await;
    assert_eq!(ready.code, Some(0), "{}", ready.output);

    daemon.terminate(Duration::from_secs(5)).await;
    let gone = run(&probe, &["healthcheck"]).await;
    assert_eq!(gone.code, Some(1), "{}", gone.output);
}
