//! Bad settings: one line naming the variable, exit code 2, and not a single request to AWS or Rancher.

use crate::harness::*;

#[tokio::test]
async fn each_configuration_error_names_its_variable_and_exits_2_before_any_network_call() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let good = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        // (variable, value or None to unset, text the line must contain)
        ("CATTLE_URL", None, "not set"),
        ("CATTLE_URL", Some("rancher:8080/v1"), "http://"),
        ("CATTLE_URL", Some("http://rancher:8080/v2-beta/registries/1sp3"), "unexpected path"),
        ("AWS_REGION", None, "AWS_DEFAULT_REGION"),
        ("AWS_REGION", Some("Mars-1"), "not an AWS region"),
        ("AUTO_CREATE", Some("maybe"), "not a boolean"),
        ("LISTEN_PORT", Some("http"), "not a port"),
        ("LOG_LEVEL", Some("loud"), "not a log level"),
        ("LOG_FORMAT", Some("xml"), "not a log format"),
        ("AWS_ECR_REGISTRY_IDS", Some("12345"), "12-digit"),
        ("AWS_ROLE_ARN", Some("arn:aws:iam::1:role/x"), "not an IAM role ARN"),
        ("REFRESH_INTERVAL", Some("often"), "not a duration"),
        ("CATTLE_SECRET_KEY", None, "CATTLE_ACCESS_KEY is"),
        ("CATTLE_SECRET_KEY_FILE", Some("/nonexistent/secret"), "cannot read"),
        ("RETRY_DELAY", Some("1ms"), "out of range"),
        ("RETRY_MAX_DELAY", Some("2s"), "shorter than RETRY_DELAY"),
        ("RANCHER_TIMEOUT", Some("forever"), "not a duration"),
        ("MAX_CONCURRENT_TARGETS", Some("0"), "from 1 to 64"),
        ("REGISTRY_ADDRESS_MAP", Some("quay.io=proxy.example.com"), "not an ECR registry host"),
        ("CONFIG_FILE", Some("/nonexistent/recs.toml"), "cannot read"),
        ("RANCHER_PROJECTS", Some("c-abc:p-xyz"), "only for Rancher 2"),
        ("CATTLE_CA_BUNDLE", Some("/dev/null"), "no PEM certificate"),
        ("ECR_HOST_FORMS", Some("standard,ipv6"), "'ipv6' is not a host form"),
        ("RANCHER_ENVIRONMENTS", Some("all,Default"), "cannot be combined"),
        ("ECR_HOST_FORMS", Some(" , "), "names no host form"),
    ];
    for (variable, value, expected) in cases {
        let mut env = good.clone();
        match value {
            Some(value) => set(&mut env, variable, value),
            None => unset(&mut env, variable),
        }
        if variable == "CATTLE_SECRET_KEY_FILE" {
            unset(&mut env, "CATTLE_SECRET_KEY");
        }
        if variable == "RETRY_MAX_DELAY" {
            set(&mut env, "RETRY_DELAY", "10s");
        }

        let run = run(&env, &["--once"]).await;

        assert_eq!(run.code, Some(2), "{variable}={value:?}: {}", run.output);
        let lines: Vec<&str> = run.output.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{variable}={value:?}: one line, got:\n{}", run.output);
        assert!(lines[0].contains(variable), "{variable}: {}", lines[0]);
        assert!(lines[0].contains(expected), "{variable}: {}", lines[0]);
        assert!(!lines[0].contains("panicked"), "{}", lines[0]);
    }
    assert!(ecr.requests().is_empty(), "no request to ECR: {:?}", ecr.requests());
    assert!(cattle.requests().is_empty(), "no request to Rancher: {:?}", cattle.requests());
}

#[tokio::test]
async fn a_port_in_use_is_a_configuration_error() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &taken.local_addr().unwrap().port().to_string());

    let run = run(&env, &[]).await;

    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.output.lines().any(|l| l.contains("LISTEN_PORT") && l.contains("cannot listen")), "{}", run.output);
}

#[tokio::test]
async fn help_explains_every_setting() {
    let run = run(&[], &["--help"]).await;
    assert_eq!(run.code, Some(0));
    for variable in [
        "CATTLE_URL",
        "CATTLE_ACCESS_KEY",
        "CATTLE_SECRET_KEY",
        "AWS_REGION",
        "AWS_ECR_REGISTRY_IDS",
        "AWS_ROLE_ARN",
        "AUTO_CREATE",
        "LISTEN_PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "REFRESH_INTERVAL",
        "RETRY_DELAY",
        "RETRY_MAX_DELAY",
        "RANCHER_TIMEOUT",
        "RANCHER_API",
        "RANCHER_PROJECTS",
        "RANCHER_CLUSTER",
        "RANCHER_TOKEN",
        "CATTLE_CA_BUNDLE",
        "CATTLE_INSECURE_SKIP_VERIFY",
        "AWS_ROLE_EXTERNAL_ID",
        "AWS_ROLE_SESSION_NAME",
        "REGISTRY_ADDRESS_MAP",
        "CONFIG_FILE",
        "MAX_CONCURRENT_TARGETS",
        "LISTEN_ADDRESS",
        "--once",
        "--check-config",
        "--dry-run",
        "healthcheck",
    ] {
        assert!(run.output.contains(variable), "--help does not mention {variable}:\n{}", run.output);
    }
}
