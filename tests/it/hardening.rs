//! Trust no answer: Rancher, proxies and AWS answering wrongly or hostilely. One scenario per defect of issue 10,
//! each against the real binary; each would fail on a daemon that trusted what came back.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use standins::{Fault, FaultKind};

use crate::harness::*;
use crate::rancher2::{env2, rancher2};

const DOCKER_HUB_PASSWORD: &str = "docker-hub-password-Vb72";

fn long_running(mut env: Vec<(String, String)>) -> (Vec<(String, String)>, u16) {
    let port = free_port();
    set(&mut env, "RETRY_DELAY", "200ms");
    set(&mut env, "RETRY_MAX_DELAY", "1s");
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &port.to_string());
    (env, port)
}

// 1. Answers that ignore the filter.

#[tokio::test]
async fn a_credential_list_that_ignores_the_registry_filter_never_overwrites_another_registry() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let hub = cattle.add_registry("index.docker.io");
    let hub_credential = cattle.add_credential(&hub, "dockeruser", DOCKER_HUB_PASSWORD);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    // A gateway in front of Rancher drops `registryId`: every credential comes back.
    cattle.set_fault(Fault::new(FaultKind::DropQuery("registryId".into())).path("/registrycredentials"));

    let run = run(&env(&ecr, &format!("{}/v1", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let hub_now = cattle.credentials().into_iter().find(|c| c.id == hub_credential).unwrap();
    assert_eq!(hub_now.public_value.as_deref(), Some("dockeruser"), "{hub_now:?}");
    assert_eq!(hub_now.secret_value.as_deref(), Some(DOCKER_HUB_PASSWORD), "{hub_now:?}");
    let puts: Vec<_> = cattle.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert!(puts[0].path_and_query.ends_with(&format!("/registrycredentials/{credential}")), "{puts:#?}");
    let warning = run
        .output
        .lines()
        .find(|l| l.contains("WARN") && l.contains("not asked for"))
        .unwrap_or_else(|| panic!("no WARN about the foreign credential:\n{}", run.output));
    assert!(warning.contains(&hub_credential) && warning.contains(&hub), "{warning}");
}

#[tokio::test]
async fn rancher2_answers_from_other_projects_and_clusters_are_never_written() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let ours = rancher.add_project("c-one", "Default");
    let other = rancher.add_project("c-two", "Elsewhere");
    let mine = rancher.add_credential(&ours, "ecr-pull", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    let theirs = rancher.add_credential(&other, "ecr-pull", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    // The project list ignores clusterId, and every project's credentials come back under ours.
    rancher.set_fault(Fault::new(FaultKind::DropQuery("clusterId".into())).path("/v3/projects"));
    rancher.set_ignore_project_scope(true);
    let mut env = env2(&ecr, &format!("{}/v3", rancher.url()));
    set(&mut env, "RANCHER_CLUSTER", "c-one");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let password = |id: &str| rancher.credential(id).and_then(|c| c.registries[&host(ACCOUNT)].password.clone());
    assert_eq!(password(&mine).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(password(&theirs).as_deref(), Some(OLD_PASSWORD), "{:#?}", rancher.requests());
    let puts: Vec<_> = rancher.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert!(puts[0].path_and_query.starts_with(&format!("/v3/project/{ours}/")), "{puts:#?}");
    assert!(run.output.lines().any(|l| l.contains("WARN") && l.contains(&other)), "{}", run.output);
    assert!(run.output.lines().any(|l| l.contains("WARN") && l.contains(&theirs)), "{}", run.output);
}

// 2. Bodies without end.

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The peak resident memory of a process beyond its resident file pages (the binary's own code and data:
/// about 30 MiB for the debug build, and growing with every dependency linked in, used or not).
fn peak_rss_kib(pid: i32) -> u64 {
    status_kib(pid, "VmHWM:").saturating_sub(status_kib(pid, "RssFile:"))
}

#[tokio::test]
async fn huge_and_endless_answers_are_cut_at_32_mb_and_the_daemon_recovers() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    cattle.set_fault(Fault::new(FaultKind::HugeBody).times(1).path("/registries"));
    cattle.set_fault(Fault::new(FaultKind::EndlessBody).times(1).path("/registries"));
    let (mut env, _) = long_running(env(&ecr, &format!("{}/v2-beta", cattle.url())));
    // Long enough that the cap, not the timeout, ends the reading.
    set(&mut env, "RANCHER_TIMEOUT", "20s");

    let daemon = Daemon::start(&env, &[]);
    wait_for_password(&daemon, &cattle, &credential, Duration::from_secs(15)).await;

    let output = daemon.output();
    let cut = output.lines().filter(|l| l.contains("WARN") && l.contains("Rancher answer larger than 32 MB")).count();
    assert_eq!(cut, 2, "both floods end as a failed refresh each:\n{output}");
    let peak = peak_rss_kib(daemon.pid());
    eprintln!("peak RSS after a 2 GiB and an endless answer: {peak} KiB");
    assert!(peak < 48 * 1024, "peak RSS beyond the binary's file pages {peak} KiB");
}

// 3. The health port cannot starve the refresh.

/// Raises this test process's own open-file limit, so that it can hold the flood.
fn raise_own_file_limit() {
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(limit.rlim_max >= 4096, "the test needs a hard open-file limit of 4096: {}", limit.rlim_max);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

#[tokio::test]
async fn a_connection_flood_on_the_health_port_never_starves_the_refresh() {
    raise_own_file_limit();
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    // Rancher drops every connection, so that each retry needs a new one (a pooled connection needs no descriptor).
    cattle.set_fault(Fault::new(FaultKind::DropConnection));
    let (env, port) = long_running(env(&ecr, &format!("{}/v2-beta", cattle.url())));

    // The common limits, hard and soft: 1,024 open files, so raising the soft limit does not help.
    let daemon = Daemon::start_with_file_limit(&env, &[], 1024);
    daemon.wait_for_log("Health endpoint listening", Duration::from_secs(10)).await;
    let flood: Vec<std::net::TcpStream> = (0..1100)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("the kernel accepts the connection"))
        .collect();
    // A client that sends its request a byte a second.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let slow_started = std::time::Instant::now();

    tokio::time::sleep(Duration::from_secs(1)).await;
    cattle.clear_faults();
    wait_for_password(&daemon, &cattle, &credential, Duration::from_secs(5)).await;

    let mut dropped = None;
    for byte in b"GET /ping HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(30) {
        let _ = slow.write_all(&[*byte]);
        let mut buffer = [0u8; 64];
        match slow.read(&mut buffer) {
            Ok(0) => {
                dropped = Some(slow_started.elapsed());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                dropped = Some(slow_started.elapsed());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(900)).await,
        }
    }
    let dropped = dropped.expect("the slow client is dropped");
    assert!(dropped < Duration::from_secs(12), "slow client dropped after {dropped:?}");

    // The idle flood times out; the health endpoint answers again while the flood is still held open.
    let mut healthy = false;
    for _ in 0..40 {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).no_proxy().build().unwrap();
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await {
            healthy = response.status().as_u16() == 200;
            if healthy {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(healthy, "/healthz answers again within 20 s:\n{}", daemon.output());
    drop(flood);
    assert!(!daemon.output().contains("Too many open files"), "{}", daemon.output());
}

// 4. AWS failures in words, never with a body.

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The one line of a `--once` run that reports the refresh failure.
fn failure_line(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.contains("Refresh failed"))
        .unwrap_or_else(|| panic!("no failure line:\n{output}"))
        .to_string();
    for dump in ["DispatchFailure", "ConnectorError", "ResponseError", "SdkError", "{ "] {
        assert!(!line.contains(dump), "a Debug dump ({dump}) in: {line}");
    }
    line
}

#[tokio::test]
async fn an_unparseable_ecr_answer_names_the_field_and_never_shows_the_token() {
    let token = b64(&format!("AWS:{NEW_PASSWORD}"));
    let endpoint = format!("https://{}", host(ACCOUNT));
    let bodies = [
        (
            format!(
                r#"{{"authorizationData":[{{"authorizationToken":"{token}","expiresAt":"soon","proxyEndpoint":"{endpoint}"}}]}}"#
            ),
            "authorizationData[0].expiresAt is not a number",
        ),
        (
            format!(
                r#"{{"authorizationData":[{{"authorizationToken":{{"value":"{token}"}},"expiresAt":1.9E9,"proxyEndpoint":"{endpoint}"}}]}}"#
            ),
            "authorizationData[0].authorizationToken is not a string",
        ),
    ];
    for (body, expected) in bodies {
        let (ecr, cattle) = (ecr().await, cattle().await);
        let registry = cattle.add_registry(&host(ACCOUNT));
        cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
        ecr.set_fault(Fault::new(FaultKind::Raw {
            status: 200,
            content_type: "application/x-amz-json-1.1".into(),
            body: body.clone(),
        }));
        let (env, port) = long_running(env(&ecr, &format!("{}/v2-beta", cattle.url())));

        let daemon = Daemon::start(&env, &[]);
        daemon.wait_for_log(expected, Duration::from_secs(10)).await;
        let readyz = get(port, "/readyz").await;

        assert_eq!(readyz.status, 503, "{}", readyz.body);
        assert!(readyz.body.contains(expected), "{}", readyz.body);
        let output = daemon.output();
        assert!(!output.contains(&token) && !output.contains(NEW_PASSWORD), "{output}");
        assert!(cattle.requests().is_empty(), "Rancher is not touched");
    }
}

/// Changes the environment or the ECR stand-in so that one kind of AWS failure happens.
type Prepare = Box<dyn Fn(&mut Vec<(String, String)>, &standins::ecr::FakeEcr)>;

#[tokio::test]
async fn every_aws_failure_is_one_line_in_words() {
    let closed_port = free_port();
    let closed = format!("127.0.0.1:{closed_port}");
    let cases: Vec<(&str, Prepare, Vec<&str>)> = vec![
        (
            "no credentials",
            Box::new(|env, _| {
                unset(env, "AWS_ACCESS_KEY_ID");
                unset(env, "AWS_SECRET_ACCESS_KEY");
            }),
            vec![
                "no AWS credentials found",
                "environment (AWS_ACCESS_KEY_ID not set)",
                "web identity (AWS_WEB_IDENTITY_TOKEN_FILE not set)",
                "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)",
            ],
        ),
        (
            "unreachable",
            Box::new(move |env, _| set(env, "AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{closed_port}"))),
            vec!["cannot reach ECR at", &closed, "connection refused"],
        ),
        (
            "access denied",
            Box::new(|_, ecr| {
                ecr.set_fault(Fault::new(FaultKind::EcrError {
                    type_name: "AccessDeniedException".into(),
                    status: 400,
                }))
            }),
            vec!["access denied (AccessDeniedException", "ecr:GetAuthorizationToken"],
        ),
        (
            "invalid keys",
            Box::new(|_, ecr| {
                ecr.set_fault(Fault::new(FaultKind::EcrError {
                    type_name: "UnrecognizedClientException".into(),
                    status: 400,
                }))
            }),
            vec!["AWS rejected the credentials as invalid or expired", "AWS_SECRET_ACCESS_KEY"],
        ),
        (
            "throttled",
            Box::new(|_, ecr| {
                ecr.set_fault(Fault::new(FaultKind::EcrError { type_name: "ThrottlingException".into(), status: 400 }))
            }),
            vec!["ECR throttled GetAuthorizationToken"],
        ),
    ];
    for (name, prepare, expected) in cases {
        let (ecr, cattle) = (ecr().await, cattle().await);
        let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
        prepare(&mut env, &ecr);

        let run = run(&env, &["--once"]).await;

        assert_eq!(run.code, Some(1), "{name}: {}", run.output);
        let line = failure_line(&run.output);
        for words in expected {
            assert!(line.contains(words), "{name}: {words:?} not in: {line}");
        }
        assert!(run.output.lines().all(|l| !l.contains("WARN aws_config")), "{name}: {}", run.output);
    }
}

// 5. Echoed secrets in Rancher's error text.

#[tokio::test]
async fn rancher_error_text_that_echoes_the_request_is_scrubbed_in_logs_and_readiness() {
    for format in ["text", "json"] {
        let (ecr, cattle) = (ecr().await, cattle().await);
        let registry = cattle.add_registry(&host(ACCOUNT));
        cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
        // A debug page that echoes the request, with newlines: first the registry scan's Basic header...
        cattle.set_fault(Fault::new(FaultKind::EchoRequest(500)).method("GET").path("/registries"));
        let (mut env, port) = long_running(env(&ecr, &format!("{}/v2-beta", cattle.url())));
        set(&mut env, "LOG_FORMAT", format);

        let daemon = Daemon::start(&env, &[]);
        daemon.wait_for_log("<redacted>", Duration::from_secs(10)).await;
        let readyz = get(port, "/readyz").await;
        let metrics = get(port, "/metrics").await;
        assert_eq!(readyz.status, 503);
        assert!(readyz.body.contains("<redacted>") && readyz.body.contains("ServerError"), "{}", readyz.body);
        assert_eq!(metrics.status, 200);

        // ...then the PUT's body with the new password.
        cattle.clear_faults();
        cattle.set_fault(Fault::new(FaultKind::EchoRequest(500)).method("PUT"));
        daemon.wait_for_log("secretValue", Duration::from_secs(10)).await;
        let echoed =
            daemon.output().lines().filter(|l| l.contains("secretValue")).map(str::to_string).collect::<Vec<_>>();
        assert!(echoed.iter().all(|l| l.contains("<redacted>") && l.contains("PUT")), "{echoed:#?}");

        let output = daemon.output();
        for line in output.lines() {
            match format {
                "json" => {
                    serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                }
                _ => assert!(line.starts_with("20") || line.starts_with("  "), "an echoed line of its own: {line}"),
            }
        }
        assert!(!output.contains("\nauthorization:"), "{output}");
    }
}

// 6. Secrets on the command line.

#[tokio::test]
async fn a_secret_given_as_a_flag_is_warned_about_and_the_help_says_why() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    unset(&mut env, "CATTLE_SECRET_KEY");
    let flag = format!("--cattle-secret-key={CATTLE_SECRET}");

    let from_flag = run(&env, &["--once", &flag]).await;
    let from_env = run(&self::env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;
    let help = run(&[], &["--help"]).await;

    assert_eq!(from_flag.code, Some(0), "{}", from_flag.output);
    let warning = from_flag
        .output
        .lines()
        .find(|l| l.contains("WARN") && l.contains("--cattle-secret-key"))
        .unwrap_or_else(|| panic!("no warning:\n{}", from_flag.output));
    assert!(warning.contains("/proc/PID/cmdline") && warning.contains("_FILE"), "{warning}");
    assert!(!from_env.output.contains("command-line flag"), "{}", from_env.output);
    let proc_mentions = help.output.matches("/proc/PID/cmdline").count();
    assert_eq!(proc_mentions, 3, "--rancher-token, --cattle-secret-key, --aws-role-external-id:\n{}", help.output);
}

// 7. Pagination without end.

#[tokio::test]
async fn endless_pagination_stops_with_a_clear_error() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    cattle.set_fault(Fault::new(FaultKind::EndlessPages).path("/registries"));

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    let pages = cattle.requests().iter().filter(|r| r.path_and_query.contains("/registries")).count();
    assert!((2..=500).contains(&pages), "{pages} pages read");
    let line = failure_line(&run.output);
    assert!(line.contains("still hands out a next page after 500 pages"), "{line}");
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(OLD_PASSWORD));
}
