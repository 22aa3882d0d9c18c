//! Rancher 1.x: `--once` against the Cattle stand-in, one scenario per test.

use standins::cattle::{CattleConfig, FakeCattle};
use standins::ecr::TokenShape;

use crate::harness::*;

fn puts(cattle: &FakeCattle) -> Vec<standins::cattle::CattleRequest> {
    cattle.requests().into_iter().filter(|r| r.method == "PUT").collect()
}

fn posts(cattle: &FakeCattle) -> Vec<standins::cattle::CattleRequest> {
    cattle.requests().into_iter().filter(|r| r.method == "POST").collect()
}

#[tokio::test]
async fn an_existing_credential_is_updated_in_place() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let puts = puts(&cattle);
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].path_and_query, format!("/v2-beta/registrycredentials/{credential}"));
    let body = puts[0].body.as_ref().unwrap();
    assert_eq!(body["publicValue"], "AWS");
    assert_eq!(body["secretValue"], NEW_PASSWORD);
    assert!(posts(&cattle).is_empty(), "nothing is created when the credential exists");
    assert!(run.output.contains("Updated credential"), "{}", run.output);
    assert!(run.output.contains(&host(ACCOUNT)), "{}", run.output);
}

#[tokio::test]
async fn every_request_carries_basic_auth_with_the_configured_key() {
    use base64::Engine as _;
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);

    let run = run(&env(&ecr, &format!("{}/v1", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CATTLE_ACCESS}:{CATTLE_SECRET}"))
    );
    let requests = cattle.requests();
    assert!(!requests.is_empty());
    for request in requests {
        assert_eq!(request.authorization.as_deref(), Some(expected.as_str()), "{request:?}");
    }
}

#[tokio::test]
async fn a_registry_without_credential_gets_one_created() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));

    let run = run(&env(&ecr, &format!("{}/v1", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let credentials = cattle.credentials();
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0].registry_id, registry);
    assert_eq!(credentials[0].secret_value.as_deref(), Some(NEW_PASSWORD));
    assert_eq!(credentials[0].public_value.as_deref(), Some("AWS"));
    // /v1 requires an email on create; the stand-in answers 422 without one.
    assert!(credentials[0].email.as_deref().is_some_and(|e| !e.is_empty()));
    assert_eq!(cattle.registries().len(), 1, "no second registry");
}

#[tokio::test]
async fn auto_create_creates_the_missing_registry_and_its_credential() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "AUTO_CREATE", "true");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let registries = cattle.registries();
    assert_eq!(registries.len(), 1, "{registries:?}");
    assert_eq!(registries[0].server_address, host(ACCOUNT));
    let credentials = cattle.credentials();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0].registry_id, registries[0].id);
    assert_eq!(credentials[0].secret_value.as_deref(), Some(NEW_PASSWORD));

    // A second run finds the registry it created: no duplicate, an update instead.
    let again = crate::harness::run(&env, &["--once"]).await;
    assert_eq!(again.code, Some(0), "{}", again.output);
    assert_eq!(cattle.registries().len(), 1);
    assert_eq!(cattle.credentials().len(), 1);
    assert_eq!(puts(&cattle).len(), 1);
}

#[tokio::test]
async fn without_auto_create_a_missing_registry_is_reported_and_nothing_is_created() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    cattle.add_registry("quay.io");

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert!(posts(&cattle).is_empty() && puts(&cattle).is_empty());
    let line = run.output.lines().find(|l| l.contains("No registry in Rancher")).expect(&run.output);
    assert!(line.contains(&host(ACCOUNT)) && line.contains("AUTO_CREATE"), "{line}");
}

#[tokio::test]
async fn the_match_is_found_on_page_three_of_250_registries() {
    // A server that caps pages at 100, as Cattle's docs describe, whatever limit the client asks for.
    let cattle = cattle_with(CattleConfig { max_limit: 100, ..CattleConfig::default() }).await;
    let ecr = ecr().await;
    for i in 0..249 {
        cattle.add_registry(&format!("registry-{i}.example.com"));
    }
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    let requests = cattle.requests();
    let listings = requests.iter().filter(|r| r.method == "GET" && r.path_and_query.contains("/registries")).count();
    assert_eq!(listings, 3, "three pages of registries: {requests:#?}");
    // Pages + one credential lookup + one update, nothing else.
    assert_eq!(requests.len(), 5, "{requests:#?}");
}

#[tokio::test]
async fn registry_ids_for_two_accounts_update_both_registries_with_their_own_tokens() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let first = cattle.add_registry(&host(ACCOUNT));
    let first_credential = cattle.add_credential(&first, "AWS", OLD_PASSWORD);
    let second = cattle.add_registry(&host(OTHER_ACCOUNT));
    let second_credential = cattle.add_credential(&second, "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "AWS_ECR_REGISTRY_IDS", &format!("{ACCOUNT},{OTHER_ACCOUNT}"));

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &first_credential).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(secret_of(&cattle, &second_credential).as_deref(), Some(SECOND_PASSWORD));
    let asked = ecr.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].registry_ids, vec![ACCOUNT.to_string(), OTHER_ACCOUNT.to_string()]);
    assert!(asked[0].signed, "the SDK signs the request");
}

#[tokio::test]
async fn every_address_form_and_project_url_is_matched() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&format!("HTTPS://{}:443/", host(ACCOUNT).to_uppercase()));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);

    let run = run(&env(&ecr, &format!("{}/v2-beta/projects/1a5", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    assert!(cattle.requests().iter().all(|r| r.path_and_query.starts_with("/v2-beta/projects/1a5/")));
}

#[tokio::test]
async fn a_bare_url_uses_the_v1_api() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);

    let run = run(&env(&ecr, &cattle.url()), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    // One unauthenticated probe of /v3 tells Rancher 1.x from 2.x; everything else goes to /v1.
    let requests = cattle.requests();
    assert_eq!(requests[0].path_and_query, "/v3");
    assert_eq!(requests[0].authorization, None, "the probe carries no credentials");
    assert!(requests[1..].iter().all(|r| r.path_and_query.starts_with("/v1/")), "{requests:#?}");
}

#[tokio::test]
async fn a_malformed_address_is_skipped_and_the_scan_goes_on() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    cattle.add_registry("not a host at all");
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    assert!(run.output.lines().any(|l| l.contains("Skipped") && l.contains("not a host at all")), "{}", run.output);
}

#[tokio::test]
async fn only_active_credentials_are_updated_and_deactivated_ones_are_left_alone() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let active = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let inactive = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    cattle.set_credential_state(&inactive, "inactive");

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &active).as_deref(), Some(NEW_PASSWORD));
    assert_eq!(secret_of(&cattle, &inactive).as_deref(), Some(OLD_PASSWORD));
    assert_eq!(cattle.credentials().len(), 2, "no duplicate credential");
}

#[tokio::test]
async fn a_malformed_token_leaves_rancher_untouched() {
    for shape in [TokenShape::WithoutColon, TokenShape::NotBase64, TokenShape::EmptyAuthorizationData] {
        let (ecr, cattle) = (ecr().await, cattle().await);
        let registry = cattle.add_registry(&host(ACCOUNT));
        let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
        ecr.set_token_shape(shape);

        let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

        assert_eq!(run.code, Some(1), "{}", run.output);
        assert!(cattle.requests().is_empty(), "Rancher is not even read: {:?}", cattle.requests());
        assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(OLD_PASSWORD));
        assert!(run.output.contains("ECR"), "{}", run.output);
        assert_no_secrets(&run.output);
    }
}

#[tokio::test]
async fn rejected_keys_fail_with_a_hint_that_names_the_settings() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    cattle.add_registry(&host(ACCOUNT));
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "CATTLE_SECRET_KEY", "wrong-secret-key-value");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("401"), "{}", run.output);
    assert!(run.output.contains("CATTLE_SECRET_KEY"), "{}", run.output);
    assert!(!run.output.contains("wrong-secret-key-value"), "{}", run.output);
}
