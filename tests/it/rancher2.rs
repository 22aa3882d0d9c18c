//! Rancher 2.x: `--once` against the `/v3` stand-in, one scenario per test, the daemon configured with
//! `RANCHER_TOKEN` (no Cattle keys) and the Rancher 2 settings.

use std::time::{Duration, Instant};

use base64::Engine as _;
use standins::ecr::FakeEcr;
use standins::rancher2::{FakeRancher2, Rancher2Config, Rancher2Request};
use standins::{Fault, FaultKind};

use crate::harness::*;

/// The Rancher 2 API key; its secret part is long and unusual so that a search for it cannot match anything else.
pub const TOKEN: &str = "token-r2key:r2Secret-Kq7xZ9wLmN4pTtV8HcYb";
pub const TOKEN_SECRET: &str = "r2Secret-Kq7xZ9wLmN4pTtV8HcYb";
pub const THIRD_PASSWORD: &str = "eyJwYXlsb2FkIjoiVEhJUkQtcGFzc3dvcmQtZm9yLXJ1bjIifQ";
pub const QUAY_PASSWORD: &str = "quay-robot-password-kept-9Xw";

pub async fn rancher2() -> FakeRancher2 {
    rancher2_with(Rancher2Config::default()).await
}

async fn rancher2_with(config: Rancher2Config) -> FakeRancher2 {
    FakeRancher2::start(Rancher2Config { token: TOKEN.into(), ..config }).await
}

/// The environment of `docker run -e` for Rancher 2: the token instead of the Cattle keys.
pub fn env2(ecr: &FakeEcr, cattle_url: &str) -> Vec<(String, String)> {
    let mut env = env(ecr, cattle_url);
    unset(&mut env, "CATTLE_ACCESS_KEY");
    unset(&mut env, "CATTLE_SECRET_KEY");
    set(&mut env, "RANCHER_TOKEN", TOKEN);
    env
}

/// No secret of the harness, nor the Rancher 2 token in any form it could be sent in.
fn assert_no_secrets2(output: &str, extra: &[&str]) {
    assert_no_secrets(output);
    let mut secrets = vec![
        TOKEN_SECRET.to_string(),
        THIRD_PASSWORD.to_string(),
        QUAY_PASSWORD.to_string(),
        base64::engine::general_purpose::STANDARD.encode(TOKEN),
        base64::engine::general_purpose::URL_SAFE.encode(TOKEN),
    ];
    secrets.extend(extra.iter().map(|s| s.to_string()));
    for secret in secrets {
        assert!(!output.contains(&secret), "a secret ({}…) appears in the output:\n{output}", &secret[..6]);
    }
}

fn with_method(rancher: &FakeRancher2, method: &str) -> Vec<Rancher2Request> {
    rancher.requests().into_iter().filter(|r| r.method == method).collect()
}

fn password_of(rancher: &FakeRancher2, id: &str, host: &str) -> Option<String> {
    rancher.credential(id).and_then(|c| c.registries.get(host).and_then(|e| e.password.clone()))
}

#[tokio::test]
async fn a_project_credential_is_updated_with_a_put_of_its_one_registry() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(&project, "ecr-pull", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);

    let run = run(&env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    let stored = rancher.credential(&credential).unwrap();
    let expected_auth = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{NEW_PASSWORD}"));
    assert_eq!(stored.registries[&host(ACCOUNT)].auth.as_deref(), Some(expected_auth.as_str()));
    let puts = with_method(&rancher, "PUT");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(puts[0].path_and_query, format!("/v3/project/{project}/dockercredentials/{credential}"));
    assert_eq!(puts[0].status, 200);
    let registries = puts[0].body.as_ref().unwrap()["registries"].as_object().unwrap().clone();
    assert_eq!(registries.len(), 1, "{registries:?}");
    assert_eq!(registries[&host(ACCOUNT)]["username"], "AWS");
    assert_eq!(registries[&host(ACCOUNT)]["password"], NEW_PASSWORD);
    assert!(with_method(&rancher, "POST").is_empty(), "nothing is created when the credential exists");
    for request in rancher.requests() {
        assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()), "{request:?}");
    }
    let line = run.output.lines().find(|l| l.contains("Updated credential")).expect(&run.output);
    assert!(line.contains(&host(ACCOUNT)) && line.contains(&credential), "{line}");
    assert_no_secrets2(&run.output, &[]);
}

#[tokio::test]
async fn a_namespaced_credential_is_updated() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential =
        rancher.add_namespaced_credential(&project, "web", "ecr-pull", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);

    let run = run(&env2(&ecr, &format!("{}/v3/project/{project}", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(credential, "web:ecr-pull");
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    let puts = with_method(&rancher, "PUT");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(puts[0].path_and_query, format!("/v3/project/{project}/namespaceddockercredentials/{credential}"));
    assert_eq!(puts[0].body.as_ref().unwrap()["registries"][host(ACCOUNT)]["password"], NEW_PASSWORD);
    assert!(with_method(&rancher, "POST").is_empty());
    assert_eq!(rancher.credentials().len(), 1);
}

#[tokio::test]
async fn a_credential_that_also_holds_another_registry_is_left_untouched_with_an_error() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(
        &project,
        "mixed",
        &[(&host(ACCOUNT), "AWS", OLD_PASSWORD), ("quay.io", "robot", QUAY_PASSWORD)],
    );
    let mut env = env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url()));
    // Not even AUTO_CREATE writes around the refusal: a second credential for the host would hide the problem.
    set(&mut env, "AUTO_CREATE", "true");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "a refusal fails --once: {}", run.output);
    assert!(with_method(&rancher, "PUT").is_empty(), "{:#?}", rancher.requests());
    assert!(with_method(&rancher, "POST").is_empty(), "{:#?}", rancher.requests());
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD));
    assert_eq!(password_of(&rancher, &credential, "quay.io").as_deref(), Some(QUAY_PASSWORD));
    let line = run
        .output
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("quay.io"))
        .unwrap_or_else(|| panic!("no ERROR line naming quay.io:\n{}", run.output));
    assert!(line.contains(&credential) && line.contains("credential of its own"), "{line}");
    assert_no_secrets2(&run.output, &[]);
}

#[tokio::test]
async fn a_credential_holding_two_ecr_registries_gets_both_passwords_in_one_put() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(
        &project,
        "ecr-both",
        &[(&host(ACCOUNT), "AWS", OLD_PASSWORD), (&host(OTHER_ACCOUNT), "AWS", OLD_PASSWORD)],
    );
    let mut env = env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url()));
    set(&mut env, "AWS_ECR_REGISTRY_IDS", &format!("{ACCOUNT},{OTHER_ACCOUNT}"));

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(password_of(&rancher, &credential, &host(OTHER_ACCOUNT)).as_deref(), Some(SECOND_PASSWORD));
    assert_eq!(with_method(&rancher, "PUT").len(), 1, "{:#?}", rancher.requests());
}

#[tokio::test]
async fn auto_create_in_two_projects_creates_one_credential_each_then_updates_them() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let first = rancher.add_project("c-one", "Default");
    let second = rancher.add_project("c-one", "Apps");
    let mut env = env2(&ecr, &format!("{}/v3", rancher.url()));
    set(&mut env, "RANCHER_PROJECTS", &format!("{first},{second}"));
    set(&mut env, "AUTO_CREATE", "true");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let name = format!("ecr-{ACCOUNT}-{REGION}");
    let credentials = rancher.credentials();
    assert_eq!(credentials.len(), 2, "{credentials:#?}");
    for project in [&first, &second] {
        let created = credentials.iter().find(|c| &c.project_id == project).expect(project);
        assert_eq!(created.name, name);
        assert_eq!(created.namespace, None, "project-scoped");
        assert_eq!(created.registries.len(), 1);
        let entry = &created.registries[&host(ACCOUNT)];
        assert_eq!(entry.username.as_deref(), Some("AWS"));
        assert_eq!(entry.password.as_deref(), Some(NEW_PASSWORD));
    }
    let posts = with_method(&rancher, "POST");
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert!(posts.iter().all(|p| p.status == 201 && p.body.as_ref().unwrap()["type"] == "dockerCredential"));
    assert!(with_method(&rancher, "PUT").is_empty());

    // A second run finds what the first created: updates, no duplicates.
    ecr.set_password(ACCOUNT, THIRD_PASSWORD);
    let again = crate::harness::run(&env, &["--once"]).await;
    assert_eq!(again.code, Some(0), "{}", again.output);
    let credentials = rancher.credentials();
    assert_eq!(credentials.len(), 2, "{credentials:#?}");
    for credential in &credentials {
        assert_eq!(credential.registries[&host(ACCOUNT)].password.as_deref(), Some(THIRD_PASSWORD));
    }
    assert_eq!(with_method(&rancher, "POST").len(), 2, "no new POST");
    assert_eq!(with_method(&rancher, "PUT").len(), 2);
    assert_no_secrets2(&format!("{}{}", run.output, again.output), &[]);
}

#[tokio::test]
async fn every_project_of_the_cluster_is_updated_and_other_clusters_are_left_alone() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let ecr_host = host(ACCOUNT);
    let registries = [(ecr_host.as_str(), "AWS", OLD_PASSWORD)];
    let one = rancher.add_project("c-one", "Default");
    let two = rancher.add_project("c-one", "Apps");
    let elsewhere = rancher.add_project("c-two", "Default");
    let in_one = rancher.add_credential(&one, "ecr", &registries);
    let in_two = rancher.add_namespaced_credential(&two, "apps", "ecr", &registries);
    let in_elsewhere = rancher.add_credential(&elsewhere, "ecr", &registries);
    let mut env = env2(&ecr, &format!("{}/v3", rancher.url()));
    set(&mut env, "RANCHER_CLUSTER", "c-one");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &in_one, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(password_of(&rancher, &in_two, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(password_of(&rancher, &in_elsewhere, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD));
    let requests = rancher.requests();
    let listing = requests.iter().find(|r| r.path_and_query.starts_with("/v3/projects?")).expect("projects listed");
    assert!(listing.path_and_query.contains("clusterId=c-one"), "{listing:?}");
    assert!(requests.iter().all(|r| !r.path_and_query.contains(&elsewhere)), "{requests:#?}");
    assert!(with_method(&rancher, "POST").is_empty());
}

#[tokio::test]
async fn a_wrong_token_fails_with_401_and_a_hint_and_prints_no_secret() {
    let wrong = "token-r2key:wrong-secret-Vb83nQ0pLz";
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(&project, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    let mut env = env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url()));
    set(&mut env, "RANCHER_TOKEN", wrong);
    set(&mut env, "LOG_LEVEL", "trace");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("401"), "{}", run.output);
    assert!(run.output.contains("RANCHER_TOKEN"), "the hint names the setting: {}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD));
    assert!(rancher.requests().iter().all(|r| r.status == 401), "{:#?}", rancher.requests());
    assert_no_secrets2(&run.output, &["wrong-secret-Vb83nQ0pLz"]);
}

#[tokio::test]
async fn cattle_keys_are_sent_to_rancher_2_as_one_bearer_token() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(&project, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    let mut env = env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url()));
    unset(&mut env, "RANCHER_TOKEN");
    let (access, secret) = TOKEN.split_once(':').unwrap();
    set(&mut env, "CATTLE_ACCESS_KEY", access);
    set(&mut env, "CATTLE_SECRET_KEY", secret);

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    assert_no_secrets2(&run.output, &[]);
}

#[tokio::test]
async fn a_project_the_key_cannot_see_fails_with_403_and_a_hint() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    rancher.add_project("c-one", "Default");

    let run = run(&env2(&ecr, &format!("{}/v3/projects/c-one:p-nope1", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("403") && run.output.contains("PermissionDenied"), "{}", run.output);
    assert!(run.output.contains("CATTLE_URL"), "the hint names the setting: {}", run.output);
    assert!(rancher.credentials().is_empty());
}

#[tokio::test]
async fn the_match_is_found_on_page_three_of_2500_credentials() {
    let rancher = rancher2_with(Rancher2Config { max_limit: 1000, ..Rancher2Config::default() }).await;
    let ecr = ecr().await;
    let project = rancher.add_project("c-one", "Default");
    for i in 0..2499 {
        let host = format!("registry-{i}.example.com");
        rancher.add_credential(&project, &format!("other-{i:04}"), &[(&host, "user", "unrelated-password")]);
    }
    // Listings are sorted by id: this one comes last.
    let credential = rancher.add_credential(&project, "zz-ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);

    let run = run(&env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    let requests = rancher.requests();
    let pages: Vec<&Rancher2Request> =
        requests.iter().filter(|r| r.method == "GET" && r.path_and_query.contains("/dockercredentials")).collect();
    assert_eq!(pages.len(), 3, "three pages of credentials: {pages:#?}");
    assert!(!pages[0].path_and_query.contains("marker="));
    assert!(pages[1..].iter().all(|p| p.path_and_query.contains("marker=")), "{pages:#?}");
    // Three pages, one namespaced listing, one update: nothing else.
    assert_eq!(requests.len(), 5, "{:#?}", requests.iter().map(|r| &r.path_and_query).collect::<Vec<_>>());
    assert_eq!(with_method(&rancher, "PUT").len(), 1);
}

#[tokio::test]
async fn copies_in_namespaces_are_not_written_only_the_original() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let ecr_host = host(ACCOUNT);
    let registries = [(ecr_host.as_str(), "AWS", OLD_PASSWORD)];
    let original = rancher.add_credential(&project, "ecr", &registries);
    let copies =
        [rancher.add_copy(&project, "web", "ecr", &registries), rancher.add_copy(&project, "api", "ecr", &registries)];

    let run = run(&env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &original, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    for copy in &copies {
        assert_eq!(password_of(&rancher, copy, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD), "{copy}");
    }
    // The copies were listed (so skipping them is the daemon's doing), and only the original was written.
    let listed = rancher.requests().iter().any(|r| r.path_and_query.contains("/namespaceddockercredentials"));
    assert!(listed, "{:#?}", rancher.requests());
    let puts = with_method(&rancher, "PUT");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert!(puts[0].path_and_query.ends_with(&format!("/dockercredentials/{original}")), "{puts:#?}");
}

#[tokio::test]
async fn a_bare_url_is_probed_and_speaks_v3() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(&project, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);

    let run = run(&env2(&ecr, &rancher.url()), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(NEW_PASSWORD));
    let requests = rancher.requests();
    assert_eq!(requests[0].path_and_query, "/v3");
    assert_eq!(requests[0].authorization, None, "the probe carries no credentials");
    assert_eq!(requests[0].status, 401);
    assert!(requests[1..].iter().all(|r| r.path_and_query.starts_with("/v3/")), "{requests:#?}");
    assert!(requests[1..].iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));
    assert!(run.output.contains("Found which Rancher API"), "{}", run.output);
}

#[tokio::test]
async fn a_cluster_without_projects_fails_and_names_the_setting() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    rancher.add_project("c-one", "Default");
    let mut env = env2(&ecr, &format!("{}/v3", rancher.url()));
    // A typo: no project belongs to this cluster, so there is nothing to write to.
    set(&mut env, "RANCHER_CLUSTER", "c-onee");
    set(&mut env, "AUTO_CREATE", "true");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "nothing to write to is no success: {}", run.output);
    let line = run.output.lines().find(|l| l.contains("ERROR") && l.contains("RANCHER_CLUSTER")).expect(&run.output);
    assert!(line.contains("no project"), "{line}");
    assert!(rancher.requests().iter().all(|r| r.method == "GET"), "{:#?}", rancher.requests());
}

#[tokio::test]
async fn a_503_on_the_put_fails_the_run_and_the_old_password_stays() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(&project, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    rancher.set_fault(Fault::new(FaultKind::Status(503)).method("PUT"));

    let run = run(&env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("503") && run.output.contains("ClusterUnavailable"), "{}", run.output);
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD));
    let puts = with_method(&rancher, "PUT");
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(puts[0].status, 503);
    assert!(with_method(&rancher, "POST").is_empty(), "a failed update is not followed by a create");
    assert_no_secrets2(&run.output, &[]);
}

#[tokio::test]
async fn dry_run_against_rancher_2_reads_and_writes_nothing() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let credential = rancher.add_credential(&project, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    let mut env = env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url()));
    // The other account's registry is missing: AUTO_CREATE would create it.
    set(&mut env, "AWS_ECR_REGISTRY_IDS", &format!("{ACCOUNT},{OTHER_ACCOUNT}"));
    set(&mut env, "AUTO_CREATE", "true");

    let run = run(&env, &["--dry-run"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let requests = rancher.requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "only reads: {requests:#?}");
    assert_eq!(requests.len(), 2, "both credential listings: {requests:#?}");
    assert_eq!(password_of(&rancher, &credential, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD));
    assert_eq!(rancher.credentials().len(), 1);
    let update = run.output.lines().find(|l| l.contains("would update credential")).expect(&run.output);
    assert!(update.contains(&host(ACCOUNT)) && update.contains(&credential), "{update}");
    let create = run.output.lines().find(|l| l.contains("would create credential")).expect(&run.output);
    assert!(
        create.contains(&host(OTHER_ACCOUNT)) && create.contains(&format!("ecr-{OTHER_ACCOUNT}-{REGION}")),
        "{create}"
    );
    assert_no_secrets2(&run.output, &[]);
}

#[tokio::test]
async fn a_project_added_while_the_daemon_runs_gets_its_credential_within_one_check_with_one_request() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let registries = [(host(ACCOUNT), "AWS", OLD_PASSWORD)];
    let registries: Vec<(&str, &str, &str)> = registries.iter().map(|(h, u, p)| (h.as_str(), *u, *p)).collect();
    let first = rancher.add_project("c-one", "Default");
    let in_first = rancher.add_credential(&first, "ecr", &registries);
    let mut env = env2(&ecr, &format!("{}/v3", rancher.url()));
    set(&mut env, "RANCHER_CLUSTER", "c-one");
    set(&mut env, "AUTO_CREATE", "true");
    set(&mut env, "RANCHER_PROJECTS_CHECK_INTERVAL", "1s");
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &free_port().to_string());
    let daemon = Daemon::start(&env, &[]);
    wait_until(Duration::from_secs(15), || {
        password_of(&rancher, &in_first, &host(ACCOUNT)).as_deref() == Some(NEW_PASSWORD)
    })
    .await
    .unwrap_or_else(|_| panic!("first refresh:\n{}", daemon.output()));
    daemon.wait_for_log("Looking for new projects between refreshes", Duration::from_secs(5)).await;

    // With no new project, each check is one request: the LIST of the cluster's projects.
    let before = rancher.requests().len();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let checks: Vec<Rancher2Request> = rancher.requests().into_iter().skip(before).collect();
    assert!((2..=4).contains(&checks.len()), "about one check a second: {checks:#?}");
    for check in &checks {
        assert_eq!(check.method, "GET", "{check:?}");
        assert!(check.path_and_query.starts_with("/v3/projects?") && check.path_and_query.contains("clusterId=c-one"));
    }

    // A new project without a credential (AUTO_CREATE creates it), one with a stale credential (refreshed), and
    // one in another cluster (never touched).
    let added = Instant::now();
    let empty = rancher.add_project("c-one", "New");
    let stale = rancher.add_project("c-one", "Moved");
    let in_stale = rancher.add_credential(&stale, "ecr", &registries);
    let elsewhere = rancher.add_project("c-two", "Other");
    let in_elsewhere = rancher.add_credential(&elsewhere, "ecr", &registries);
    let created = |rancher: &FakeRancher2| {
        rancher
            .credentials()
            .into_iter()
            .find(|c| c.project_id == empty)
            .and_then(|c| c.registries.get(&host(ACCOUNT)).and_then(|e| e.password.clone()))
    };
    wait_until(Duration::from_secs(3), || {
        created(&rancher).as_deref() == Some(NEW_PASSWORD)
            && password_of(&rancher, &in_stale, &host(ACCOUNT)).as_deref() == Some(NEW_PASSWORD)
    })
    .await
    .unwrap_or_else(|_| panic!("the new projects were not brought up to date within one check:\n{}", daemon.output()));
    eprintln!("new project -> credential after {:?} (check interval 1s)", added.elapsed());
    assert_eq!(password_of(&rancher, &in_elsewhere, &host(ACCOUNT)).as_deref(), Some(OLD_PASSWORD));
    assert!(rancher.requests().iter().all(|r| !r.path_and_query.contains(&elsewhere)));
    let output = daemon.output();
    assert!(output.contains(&format!("project={empty}")) && output.contains("New project"), "{output}");
    // The project known before is not written again by the checks.
    let puts_to_first = with_method(&rancher, "PUT").iter().filter(|r| r.path_and_query.contains(&first)).count();
    assert_eq!(puts_to_first, 1, "{:#?}", with_method(&rancher, "PUT"));

    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    assert_no_secrets2(&output, &[]);
}

#[tokio::test]
async fn a_bare_url_looks_for_new_projects_once_the_probe_has_found_v3() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    rancher.add_credential(&project, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    let mut env = env2(&ecr, &rancher.url());
    set(&mut env, "RANCHER_CLUSTER", "c-one");
    set(&mut env, "RANCHER_PROJECTS_CHECK_INTERVAL", "1s");
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &free_port().to_string());
    let daemon = Daemon::start(&env, &[]);

    // The watch waits for the probe's answer (told by the first refresh), then checks at its interval.
    daemon.wait_for_log("Found which Rancher API the URL speaks", Duration::from_secs(15)).await;
    daemon.wait_for_log("Looking for new projects between refreshes", Duration::from_secs(5)).await;
    let added = rancher.add_project("c-one", "New");
    let in_added = rancher.add_credential(&added, "ecr", &[(&host(ACCOUNT), "AWS", OLD_PASSWORD)]);
    wait_until(Duration::from_secs(5), || {
        password_of(&rancher, &in_added, &host(ACCOUNT)).as_deref() == Some(NEW_PASSWORD)
    })
    .await
    .unwrap_or_else(|_| panic!("the new project's credential:\n{}", daemon.output()));
}
