//! EKS Pod Identity: no AWS keys anywhere, only `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, as the EKS Pod Identity webhook sets them, against a stand-in of the
//! Pod Identity agent that serves credentials only for the token it accepts. The SDK's default chain does the
//! work; these tests prove that the daemon's way of building its AWS clients (one HTTP client, proxies, timeouts)
//! keeps it working: ECR is signed with the agent's credentials, a rotated token file is read at the next fetch,
//! a refused token is one readable error, and no proxy setting ever reaches the agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use standins::pod_identity::{AgentCredentials, FakePodIdentityAgent};
use standins::{Fault, FaultKind};

use crate::harness::*;

/// Projected ServiceAccount tokens (audience `pods.eks.amazonaws.com`) as the kubelet writes them: JWTs.
pub const POD_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InBvZC1pZCJ9.eyJhdWQiOlsicG9kcy5la3MuYW1hem9uYXdzLmNvbSJdLCJzdWIiOiJmaXJzdCJ9.Rk1SU1QtcG9kLWlkZW50aXR5LXNpZw";
pub const ROTATED_POD_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InBvZC1pZCJ9.eyJhdWQiOlsicG9kcy5la3MuYW1hem9uYXdzLmNvbSJdLCJzdWIiOiJyb3RhdGVkIn0.Uk9UQVRFRC1wb2QtaWRlbnRpdHktc2ln";
pub const AGENT_SECRET: &str = "Pod1dent1ty-agent-secret-key-Xq7";
pub const AGENT_SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEPodIdentitySessionToken-Zr4";
const AGENT_KEY: &str = "ASIAPODIDENTITY00001";
const ROTATED_AGENT_KEY: &str = "ASIAPODIDENTITY00002";

/// The agent's credentials for its access key id; the role lives in [`OTHER_ACCOUNT`], so that ECR answers with
/// that account's registry only when the call is signed with them.
fn agent_credentials(access_key_id: &str, lifetime: Duration) -> AgentCredentials {
    AgentCredentials {
        access_key_id: access_key_id.into(),
        secret_access_key: format!("{AGENT_SECRET}-{}", &access_key_id[access_key_id.len() - 1..]),
        session_token: format!("{AGENT_SESSION_TOKEN}-{}", &access_key_id[access_key_id.len() - 1..]),
        account_id: OTHER_ACCOUNT.into(),
        lifetime,
    }
}

fn token_file(name: &str, token: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}-{name}-eks-pod-identity-token", std::process::id()));
    std::fs::write(&path, token).unwrap();
    path
}

/// Replaces the token file's content at once, as the kubelet's atomic writer does (write beside, rename over).
fn rotate_file(path: &Path, token: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, token).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// The environment the EKS Pod Identity webhook gives a pod: no keys, the agent's URI and the token file.
fn pod_identity_env(
    ecr: &standins::ecr::FakeEcr,
    cattle_url: &str,
    agent: &FakePodIdentityAgent,
    token: &Path,
) -> Vec<(String, String)> {
    let mut env = env(ecr, cattle_url);
    unset(&mut env, "AWS_ACCESS_KEY_ID");
    unset(&mut env, "AWS_SECRET_ACCESS_KEY");
    set(&mut env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", &agent.full_uri());
    set(&mut env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token.display().to_string());
    env
}

/// The daemon keeps ECR's tokens for minutes and the SDK keeps the agent's credentials until shortly before they
/// expire, so in a healthy daemon the agent is asked again only hours apart. What must hold whenever that happens:
/// the token is read from the file at that moment, not at start-up. Here ECR is down across a token rotation,
/// the daemon keeps retrying, and the agent's credentials (valid 20 s) go stale in between.
#[tokio::test]
async fn after_the_token_file_rotates_the_next_credential_fetch_sends_the_new_token() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let agent = FakePodIdentityAgent::start(POD_TOKEN, agent_credentials(AGENT_KEY, Duration::from_secs(20))).await;
    ecr.set_caller_account(AGENT_KEY, OTHER_ACCOUNT);
    ecr.set_caller_account(ROTATED_AGENT_KEY, OTHER_ACCOUNT);
    ecr.set_fault(Fault::new(FaultKind::Status(503)));
    let credential = cattle.add_credential(&cattle.add_registry(&host(OTHER_ACCOUNT)), "AWS", OLD_PASSWORD);
    let token = token_file("rotation", POD_TOKEN);
    let mut env = pod_identity_env(&ecr, &format!("{}/v2-beta", cattle.url()), &agent, &token);
    set(&mut env, "RETRY_DELAY", "1s");
    set(&mut env, "RETRY_MAX_DELAY", "2s");
    set(&mut env, "LOG_LEVEL", "trace");

    let daemon = Daemon::start(&env, &[]);
    // The first attempt: the agent is asked with the token file's content, ECR is signed with its key (and fails).
    wait_until(RUN_LIMIT, || !ecr.requests().is_empty())
        .await
        .unwrap_or_else(|_| panic!("ECR was not called; output:\n{}", daemon.output()));
    let asked = agent.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!((asked[0].authorization.as_deref(), asked[0].status), (Some(POD_TOKEN), 200));
    assert_eq!(asked[0].path, "/v1/credentials");
    assert_eq!(ecr.requests()[0].access_key_id.as_deref(), Some(AGENT_KEY));

    // The kubelet rotates the projected token; the agent accepts only the new one from now on (EKS Auth calls the
    // old one expired) and hands out new credentials.
    rotate_file(&token, ROTATED_POD_TOKEN);
    agent.rotate(ROTATED_POD_TOKEN, agent_credentials(ROTATED_AGENT_KEY, Duration::from_secs(20)));

    // Within the credentials' lifetime the SDK asks the agent again, with the new token.
    let limit = Duration::from_secs(40);
    wait_until(limit, || agent.requests().len() > 1)
        .await
        .unwrap_or_else(|_| panic!("the agent was not asked again within {limit:?}; output:\n{}", daemon.output()));
    ecr.clear_faults();
    wait_until(RUN_LIMIT, || secret_of(&cattle, &credential).as_deref() == Some(SECOND_PASSWORD))
        .await
        .unwrap_or_else(|_| panic!("the credential was not written once ECR was back; output:\n{}", daemon.output()));

    let again = &agent.requests()[1..];
    for request in again {
        assert_eq!(request.authorization.as_deref(), Some(ROTATED_POD_TOKEN), "the old token was sent: {again:?}");
        assert_eq!(request.status, 200, "{again:?}");
    }
    // ECR's answer that counted was signed with the credentials the new token got.
    let answered: Vec<_> = ecr.requests().into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].access_key_id.as_deref(), Some(ROTATED_AGENT_KEY));

    let (code, _, output) = daemon.terminate(Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains(" ERROR "), "ECR's outage is retried, not given up:\n{output}");
    for secret in [POD_TOKEN, ROTATED_POD_TOKEN, AGENT_SECRET, AGENT_SESSION_TOKEN] {
        assert!(!output.contains(secret), "{output}");
    }
}

#[tokio::test]
async fn a_token_the_agent_refuses_is_one_readable_error_line_and_nothing_is_written() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let agent = FakePodIdentityAgent::start(POD_TOKEN, agent_credentials(AGENT_KEY, Duration::from_secs(300))).await;
    let credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    // A well-formed token that is not the pod's (another ServiceAccount's, or one the agent never accepted).
    let token = token_file("refused", ROTATED_POD_TOKEN);
    let env = pod_identity_env(&ecr, &format!("{}/v2-beta", cattle.url()), &agent, &token);

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    let errors: Vec<&str> = run.output.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect();
    assert_eq!(errors.len(), 1, "one line says what failed:\n{}", run.output);
    let line = errors[0];
    assert!(line.contains("could not get AWS credentials"), "{line}");
    assert!(line.contains("400"), "{line}");
    assert!(
        line.contains("pod identity association") && line.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        "{line}"
    );
    assert!(!line.contains("Credentials {") && !line.contains("ProviderError {"), "said in words: {line}");
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(OLD_PASSWORD), "nothing written");
    assert!(ecr.requests().is_empty(), "ECR is not called without credentials: {:?}", ecr.requests());
    let asked = agent.requests();
    assert!(!asked.is_empty() && asked.iter().all(|r| r.status == 400), "{asked:?}");
    assert!(asked.iter().all(|r| r.authorization.as_deref() == Some(ROTATED_POD_TOKEN)), "{asked:?}");
}

#[tokio::test]
async fn the_agent_is_reached_directly_whatever_the_proxy_variables_say() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    // The agent on its own loopback address, so that NO_PROXY can name the other stand-ins and not it.
    let agent = FakePodIdentityAgent::start_on(
        "127.0.0.2:0".parse().unwrap(),
        POD_TOKEN,
        agent_credentials(AGENT_KEY, Duration::from_secs(300)),
    )
    .await
    .expect("127.0.0.2 is a loopback address");
    ecr.set_caller_account(AGENT_KEY, OTHER_ACCOUNT);
    let credential = cattle.add_credential(&cattle.add_registry(&host(OTHER_ACCOUNT)), "AWS", OLD_PASSWORD);
    let token = token_file("proxied", POD_TOKEN);
    let mut env = pod_identity_env(&ecr, &format!("{}/v2-beta", cattle.url()), &agent, &token);
    // Every proxy variable points at a port where nothing listens; ECR and Rancher are exempt by NO_PROXY.
    let dead = format!("http://127.0.0.1:{}", free_port());
    for variable in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
        set(&mut env, variable, &dead);
    }
    set(&mut env, "NO_PROXY", "127.0.0.1,localhost");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(SECOND_PASSWORD));
    let asked = agent.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].host.as_deref(), Some(agent.addr().to_string().as_str()), "called directly");
    let signed_by: Vec<Option<String>> = ecr.requests().into_iter().map(|r| r.access_key_id).collect();
    assert_eq!(signed_by, [Some(AGENT_KEY.to_string())]);
}
