//! Bad settings: one line naming the variable, exit code 2, and not a single request to AWS or Rancher.

use std::time::Duration;

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
        ("AWS_CA_BUNDLE", Some("/dev/null"), "no PEM certificate"),
        ("SSL_CERT_FILE", Some("/nonexistent/proxy-ca.pem"), "cannot read"),
        ("HTTPS_PROXY", Some("socks5://proxy:1080"), "not supported"),
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
        "KUBERNETES_NAMESPACES",
        "KUBERNETES_NAMESPACE_SELECTOR",
        "KUBERNETES_EXCLUDE_NAMESPACES",
        "KUBERNETES_SECRET_NAME",
        "KUBERNETES_SERVICE_ACCOUNTS",
        "KUBERNETES_CONTEXT",
        "KUBERNETES_ADOPT_SECRETS",
        "RANCHER_PROJECT_SECRETS",
        "KUBECONFIG",
        "--once",
        "--check-config",
        "--dry-run",
        "healthcheck",
    ] {
        assert!(run.output.contains(variable), "--help does not mention {variable}:\n{}", run.output);
    }
}

/// A kubeconfig whose server is a listener of ours that counts connections: no call may reach it.
fn kubeconfig_file(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: kube-token-must-never-show\ncontexts:\n- name: main\n  context:\n    cluster: c\n    user: u\ncurrent-context: main\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn each_kubernetes_configuration_error_names_its_setting_and_calls_nothing() {
    let ecr = ecr().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let dir = std::env::temp_dir().join(format!("recs-kube-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = kubeconfig_file(&dir, &server);
    let broken = dir.join("broken");
    std::fs::write(&broken, "clusters: [this is: not: yaml\n  token: kube-token-must-never-show\n").unwrap();
    let mut good = env(&ecr, "unused");
    unset(&mut good, "CATTLE_URL");
    set(&mut good, "KUBECONFIG", kubeconfig.to_str().unwrap());
    set(&mut good, "KUBERNETES_NAMESPACES", "apps,team-*");
    let cases: Vec<(&str, &str, &str)> = vec![
        ("KUBECONFIG", "/nonexistent/kubeconfig", "cannot read"),
        ("KUBECONFIG", broken.to_str().unwrap(), "not a kubeconfig"),
        ("KUBERNETES_CONTEXT", "elsewhere", "not a context"),
        ("KUBERNETES_NAMESPACES", "Team_A", "not a namespace name or glob"),
        ("KUBERNETES_EXCLUDE_NAMESPACES", "kube/system", "not a namespace name or glob"),
        ("KUBERNETES_NAMESPACE_SELECTOR", "tier in gold", "not a label selector"),
        ("KUBERNETES_SECRET_NAME", "Ecr_Pull", "not a Secret name"),
        ("KUBERNETES_SERVICE_ACCOUNTS", "default,Build Bot", "not a ServiceAccount name"),
        ("KUBERNETES_ADOPT_SECRETS", "perhaps", "not a boolean"),
        ("RANCHER_PROJECT_SECRETS", "c-abc:p-xyz", "either to namespaces or to Rancher projects"),
    ];
    for (variable, value, expected) in cases {
        let mut case = good.clone();
        set(&mut case, variable, value);
        let out = run(&case, &["--once"]).await;
        assert_eq!(out.code, Some(2), "{variable}={value}: {}", out.output);
        let lines: Vec<&str> = out.output.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{variable}={value}: one line, got:\n{}", out.output);
        assert!(lines[0].contains(variable) && lines[0].contains(expected), "{variable}: {}", lines[0]);
        assert!(!out.output.contains("kube-token-must-never-show"), "{}", out.output);
    }
    let mut projects = good.clone();
    unset(&mut projects, "KUBERNETES_NAMESPACES");
    set(&mut projects, "RANCHER_PROJECT_SECRETS", "p-xyz");
    let bad_id = run(&projects, &["--once"]).await;
    assert_eq!(bad_id.code, Some(2), "{}", bad_id.output);
    assert!(
        bad_id.output.contains("RANCHER_PROJECT_SECRETS") && bad_id.output.contains("not a project id"),
        "{}",
        bad_id.output
    );

    // The file: both modes in one target, and a Rancher key in a Kubernetes target.
    let file = dir.join("recs.toml");
    let kube = kubeconfig.display();
    for (table, expected) in [
        (
            format!("namespaces = [\"apps\"]\nrancher_projects = [\"c-a:p-b\"]\nkubeconfig = \"{kube}\""),
            "target 'k8s'.rancher_projects",
        ),
        (format!("namespaces = [\"apps\"]\nurl = \"https://rancher/v3\"\nkubeconfig = \"{kube}\""), "target 'k8s'.url"),
        (format!("namespaces = [\"apps\"]\ncontext = \"nope\"\nkubeconfig = \"{kube}\""), "target 'k8s'.context"),
    ] {
        std::fs::write(&file, format!("[[source]]\nname = \"s\"\nregion = \"us-east-1\"\n\n[[target]]\nname = \"k8s\"\napi = \"kubernetes\"\n{table}\n"))
            .unwrap();
        let mut file_env = env(&ecr, "unused");
        unset(&mut file_env, "CATTLE_URL");
        set(&mut file_env, "CONFIG_FILE", file.to_str().unwrap());
        let bad = run(&file_env, &["--once"]).await;
        assert_eq!(bad.code, Some(2), "{table}: {}", bad.output);
        assert!(bad.output.contains(expected), "{expected}: {}", bad.output);
    }

    // --check-config shows the plan, without the token, and calls nothing.
    let plan = run(&good, &["--check-config"]).await;
    assert_eq!(plan.code, Some(0), "{}", plan.output);
    for needle in
        ["API: Kubernetes", "context main", &server, "namespaces: apps, team-*", "secret name: ecr-credentials"]
    {
        assert!(plan.output.contains(needle), "{needle}: {}", plan.output);
    }
    assert!(!plan.output.contains("kube-token-must-never-show"), "{}", plan.output);

    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "no connection to the API server");
    assert!(ecr.requests().is_empty(), "no request to ECR: {:?}", ecr.requests());
    std::fs::remove_dir_all(dir).unwrap();
}
