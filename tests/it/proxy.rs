//! Behind a corporate proxy: AWS (ECR, STS) and Rancher reached only through `HTTPS_PROXY`/`HTTP_PROXY`, under
//! AWS's real host names (which nothing resolves here: the proxy routes them to the stand-ins), with the proxy's
//! CA given by `SSL_CERT_FILE` or `AWS_CA_BUNDLE`.

use std::path::PathBuf;

use standins::proxy::{FakeProxy, ProxyConfig, ProxyRequest, TlsOrigin};
use standins::sts::FakeSts;

use crate::harness::*;

pub const PROXY_USER: &str = "proxy-user";
/// With characters that must be percent-encoded in a URL.
pub const PROXY_PASSWORD: &str = "Pr0xy@pass:word-7Hq";
const ECR_HOST: &str = "api.ecr.us-east-1.amazonaws.com";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecr-reader";

fn write_ca(proxy: &FakeProxy, name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}-ca.pem", std::process::id()));
    std::fs::write(&path, proxy.ca().pem()).unwrap();
    path
}

/// The environment of a daemon whose only way to AWS is the proxy: no `AWS_ENDPOINT_URL`, the proxy in
/// `HTTPS_PROXY`, Rancher on loopback reached directly (`NO_PROXY`).
fn proxied_env(ecr: &standins::ecr::FakeEcr, cattle_url: &str, proxy_url: &str) -> Vec<(String, String)> {
    let mut env = env(ecr, cattle_url);
    unset(&mut env, "AWS_ENDPOINT_URL");
    set(&mut env, "HTTPS_PROXY", proxy_url);
    set(&mut env, "NO_PROXY", "127.0.0.1,localhost");
    env
}

fn connects(proxy: &FakeProxy) -> Vec<ProxyRequest> {
    proxy.requests().into_iter().filter(|r| r.method == "CONNECT").collect()
}

#[tokio::test]
async fn a_tls_inspecting_proxy_trusted_through_ssl_cert_file_carries_the_ecr_call() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let proxy = FakeProxy::start(ProxyConfig { inspect_tls: true, ..ProxyConfig::default() }).await;
    proxy.route(ECR_HOST, ecr.addr());
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let mut env = proxied_env(&ecr, &format!("{}/v2-beta", cattle.url()), &proxy.url());
    set(&mut env, "SSL_CERT_FILE", &write_ca(&proxy, "inspecting").display().to_string());

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let connects = connects(&proxy);
    assert_eq!(connects.len(), 1, "{connects:?}");
    assert_eq!(connects[0].target, format!("{ECR_HOST}:443"));
    assert_eq!(ecr.requests().len(), 1, "the stand-in got the call through the proxy");
    // The start-up lines say which way each side goes; Rancher is in NO_PROXY.
    let source = run.output.lines().find(|l| l.contains("Token source")).expect("a source line");
    assert!(source.contains(&format!("proxy={}", proxy.url())), "{source}");
    assert!(source.contains("SSL_CERT_FILE"), "{source}");
    let rancher = run.output.lines().find(|l| l.contains("Rancher calls go")).expect("a Rancher line");
    assert!(rancher.contains("directly") && rancher.contains("proxy=none"), "{rancher}");
}

#[tokio::test]
async fn a_plain_proxy_tunnels_tls_to_an_origin_trusted_through_aws_ca_bundle() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let proxy = FakeProxy::start(ProxyConfig::default()).await;
    let origin = TlsOrigin::start(proxy.ca(), ECR_HOST, ecr.addr()).await;
    proxy.route(ECR_HOST, origin.addr());
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let mut env = proxied_env(&ecr, &format!("{}/v2-beta", cattle.url()), &proxy.url());
    let ca = write_ca(&proxy, "plain").display().to_string();
    set(&mut env, "AWS_CA_BUNDLE", &ca);

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(connects(&proxy).iter().map(|r| r.target.as_str()).collect::<Vec<_>>(), [format!("{ECR_HOST}:443")]);

    // The same without the CA: the origin's certificate is not trusted, and the error says so and names the
    // proxy. Nothing is written.
    let credential_before = secret_of(&cattle, &credential);
    unset(&mut env, "AWS_CA_BUNDLE");
    let run = super::harness::run(&env, &["--once"]).await;
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(
        run.output.contains(&format!("cannot reach ECR at {ECR_HOST} through proxy {}", proxy.url())),
        "{}",
        run.output
    );
    assert!(run.output.contains("TLS") || run.output.contains("certificate"), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential), credential_before);
}

/// ECR and STS reachable only through a TLS-inspecting proxy, under their real host names; ECR knows the role's
/// access key as ACCOUNT's caller.
struct StsBehindProxy {
    ecr: standins::ecr::FakeEcr,
    cattle: standins::cattle::FakeCattle,
    sts: FakeSts,
    proxy: FakeProxy,
}

async fn sts_behind_proxy() -> StsBehindProxy {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let sts = FakeSts::start().await;
    sts.add_role(ROLE, None);
    ecr.set_caller_account(&sts.access_key_for(ROLE), ACCOUNT);
    let proxy = FakeProxy::start(ProxyConfig { inspect_tls: true, ..ProxyConfig::default() }).await;
    proxy.route(ECR_HOST, ecr.addr());
    proxy.route("sts.us-east-1.amazonaws.com", sts.addr());
    proxy.route("sts.amazonaws.com", sts.addr());
    StsBehindProxy { ecr, cattle, sts, proxy }
}

#[tokio::test]
async fn assume_role_goes_to_sts_through_the_proxy_too() {
    let StsBehindProxy { ecr, cattle, sts, proxy } = sts_behind_proxy().await;
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let mut env = proxied_env(&ecr, &format!("{}/v2-beta", cattle.url()), &proxy.url());
    set(&mut env, "SSL_CERT_FILE", &write_ca(&proxy, "sts").display().to_string());
    set(&mut env, "AWS_ROLE_ARN", ROLE);

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let targets: Vec<String> = connects(&proxy).into_iter().map(|r| r.target).collect();
    assert!(targets.iter().any(|t| t.starts_with("sts.") && t.ends_with(".amazonaws.com:443")), "{targets:?}");
    assert!(targets.contains(&format!("{ECR_HOST}:443")), "{targets:?}");
    assert_eq!(sts.requests().len(), 1);
    let signed_by: Vec<Option<String>> = ecr.requests().into_iter().map(|r| r.access_key_id).collect();
    assert_eq!(signed_by, [Some(sts.access_key_for(ROLE))], "ECR is called with the role's credentials");
}

#[tokio::test]
async fn no_proxy_sends_a_host_around_the_proxy() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let proxy = FakeProxy::start(ProxyConfig::default()).await;
    proxy.route("127.0.0.1", ecr.addr());
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    // ECR at a plain-HTTP loopback endpoint, Rancher too; both proxy variables set.
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "HTTPS_PROXY", &proxy.url());
    set(&mut env, "HTTP_PROXY", &proxy.url());

    set(&mut env, "NO_PROXY", "localhost,127.0.0.0/8");
    let run = run(&env, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // Without NO_PROXY the same calls go through the proxy: ECR's (and Rancher's, which the proxy does not route).
    unset(&mut env, "NO_PROXY");
    let _ = super::harness::run(&env, &["--once"]).await;
    let seen = proxy.requests();
    assert!(seen.iter().any(|r| r.method == "POST" && r.target.starts_with(&ecr.url())), "{seen:?}");
}

#[tokio::test]
async fn proxy_credentials_in_the_url_are_used_and_never_shown() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let config = ProxyConfig { credentials: Some((PROXY_USER.into(), PROXY_PASSWORD.into())), inspect_tls: true };
    let proxy = FakeProxy::start(config).await;
    proxy.route(ECR_HOST, ecr.addr());
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let address = proxy.url().trim_start_matches("http://").to_string();
    let with_password =
        format!("http://{PROXY_USER}:{}@{address}", PROXY_PASSWORD.replace('@', "%40").replace(':', "%3A"));
    let mut env = proxied_env(&ecr, &format!("{}/v2-beta", cattle.url()), &with_password);
    set(&mut env, "SSL_CERT_FILE", &write_ca(&proxy, "auth").display().to_string());
    set(&mut env, "LOG_LEVEL", "trace");

    let run = run(&env, &["--once"]).await; // `run` also checks that no secret is in the output

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let connects = connects(&proxy);
    assert!(!connects.is_empty() && connects.iter().all(|r| r.with_credentials && r.status == 200), "{connects:?}");
    assert!(run.output.contains(&format!("proxy={}", proxy.url())), "{}", run.output);
    assert!(!run.output.contains("%40pass"), "the encoded password is not shown either:\n{}", run.output);
    assert!(!run.output.contains(PROXY_USER), "the proxy's user name is not shown:\n{}", run.output);
}

#[tokio::test]
async fn a_proxy_that_refuses_with_407_is_one_readable_error_line() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let config = ProxyConfig { credentials: Some((PROXY_USER.into(), PROXY_PASSWORD.into())), inspect_tls: true };
    let proxy = FakeProxy::start(config).await;
    proxy.route(ECR_HOST, ecr.addr());
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let mut env = proxied_env(&ecr, &format!("{}/v2-beta", cattle.url()), &proxy.url());
    set(&mut env, "SSL_CERT_FILE", &write_ca(&proxy, "refusing").display().to_string());

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    let errors: Vec<&str> = run.output.lines().filter(|l| l.contains("407")).collect();
    assert!(!errors.is_empty(), "{}", run.output);
    let line = errors[0];
    assert!(line.contains(&format!("cannot reach ECR at {ECR_HOST} through proxy {}", proxy.url())), "{line}");
    assert!(line.contains("407 Proxy Authentication Required"), "{line}");
    assert!(line.contains("http://user:password@host:port"), "{line}");
    assert!(!line.contains("tunnel error"), "said in words, not hyper's: {line}");
    assert!(ecr.requests().is_empty());
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(OLD_PASSWORD), "nothing written");
    assert!(proxy.requests().iter().all(|r| r.status == 407), "{:?}", proxy.requests());
}

#[tokio::test]
async fn rancher_is_reached_through_the_same_proxy() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let proxy = FakeProxy::start(ProxyConfig { inspect_tls: true, ..ProxyConfig::default() }).await;
    proxy.route(ECR_HOST, ecr.addr());
    proxy.route("rancher.corp.example", cattle.addr());
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    // Rancher under a name only the proxy knows, over plain HTTP (HTTP_PROXY); AWS over HTTPS (HTTPS_PROXY).
    let mut env = proxied_env(&ecr, "http://rancher.corp.example:8080/v2-beta", &proxy.url());
    set(&mut env, "HTTP_PROXY", &proxy.url());
    set(&mut env, "SSL_CERT_FILE", &write_ca(&proxy, "rancher").display().to_string());

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let seen = proxy.requests();
    assert!(
        seen.iter().any(|r| r.method == "PUT" && r.target.starts_with("http://rancher.corp.example:8080/v2-beta/")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|r| r.method == "CONNECT" && r.target == format!("{ECR_HOST}:443")), "{seen:?}");
    let rancher = run.output.lines().find(|l| l.contains("Rancher calls go")).expect("a Rancher line");
    assert!(rancher.contains("through a proxy") && rancher.contains(&proxy.url()), "{rancher}");
}

#[tokio::test]
async fn web_identity_goes_to_sts_through_the_proxy_too() {
    let StsBehindProxy { ecr, cattle, sts, proxy } = sts_behind_proxy().await;
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let token_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-irsa-token", std::process::id()));
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig").unwrap();
    // IRSA: no keys, a projected token and the role.
    let mut env = proxied_env(&ecr, &format!("{}/v2-beta", cattle.url()), &proxy.url());
    unset(&mut env, "AWS_ACCESS_KEY_ID");
    unset(&mut env, "AWS_SECRET_ACCESS_KEY");
    set(&mut env, "AWS_WEB_IDENTITY_TOKEN_FILE", &token_file.display().to_string());
    set(&mut env, "AWS_ROLE_ARN", ROLE);
    set(&mut env, "SSL_CERT_FILE", &write_ca(&proxy, "irsa").display().to_string());

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let calls = sts.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action.as_deref(), Some("AssumeRoleWithWebIdentity"));
    assert!(calls[0].web_identity_token.as_deref().is_some_and(|t| t.contains("projected-service-account-token")));
    let targets: Vec<String> = connects(&proxy).into_iter().map(|r| r.target).collect();
    assert!(targets.iter().any(|t| t.starts_with("sts.") && t.ends_with(".amazonaws.com:443")), "{targets:?}");
    let signed_by: Vec<Option<String>> = ecr.requests().into_iter().map(|r| r.access_key_id).collect();
    assert_eq!(signed_by, [Some(sts.access_key_for(ROLE))]);
}

#[tokio::test]
async fn a_rancher_call_the_proxy_cannot_carry_names_the_proxy() {
    let ecr = ecr().await;
    let proxy = FakeProxy::start(ProxyConfig::default()).await;
    // No route for this host: the proxy answers the CONNECT with 502.
    let mut env = env(&ecr, "https://rancher.unrouted.example/v3");
    set(&mut env, "RANCHER_TOKEN", "token-abcde:rancher-token-secret-value");
    unset(&mut env, "CATTLE_ACCESS_KEY");
    unset(&mut env, "CATTLE_SECRET_KEY");
    set(&mut env, "HTTPS_PROXY", &proxy.url());
    set(&mut env, "NO_PROXY", "127.0.0.1");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    let line = run
        .output
        .lines()
        .find(|l| l.contains("rancher.unrouted.example") && l.contains("through proxy"))
        .unwrap_or_else(|| panic!("no line names the proxy:\n{}", run.output));
    assert!(line.contains(&format!("through proxy {}", proxy.url())), "{line}");
    assert!(!line.contains("rancher-token-secret-value"), "{line}");
    let seen = proxy.requests();
    assert!(
        seen.iter().any(|r| r.method == "CONNECT" && r.target == "rancher.unrouted.example:443" && r.status == 502),
        "{seen:?}"
    );
}
