use super::*;

fn image(reference: &str) -> EcrImage {
    pull_failure::image_registry(reference).unwrap()
}

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1";
const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn ours() -> Facts {
    Facts {
        namespace: "apps".into(),
        secret_name: "ecr-credentials".into(),
        secret_ours: Some(true),
        secret_hosts: vec![HOST.into()],
        referenced: true,
        service_account: "default".into(),
        account_lists_it: None,
        covered: Some(true),
        not_selected: None,
        refreshed_before: false,
    }
}

fn reason(cause: Cause, facts: &Facts) -> Option<Reason> {
    decide(&cause, &image(IMAGE), facts).map(|d| d.reason)
}

#[test]
fn each_reason_for_its_case_and_only_then() {
    let no = Cause::NoCredentials;
    assert_eq!(reason(no.clone(), &ours()), None, "all is well on our side");
    let missing = Facts { secret_ours: None, secret_hosts: vec![], ..ours() };
    assert_eq!(reason(no.clone(), &missing), Some(Reason::SecretMissing));
    let unreferenced = Facts { referenced: false, ..ours() };
    assert_eq!(reason(no.clone(), &unreferenced), Some(Reason::NotReferenced));
    let uncovered = Facts { covered: Some(false), secret_hosts: vec![], ..ours() };
    assert_eq!(reason(no.clone(), &uncovered), Some(Reason::RegistryNotCovered));
    let other_form = Facts { secret_hosts: vec!["123456789012.dkr.ecr-fips.us-east-1.amazonaws.com".into()], ..ours() };
    assert_eq!(reason(no, &other_form), Some(Reason::RegistryNotCovered));
    let expired = decide(&Cause::Expired { suspected: false }, &image(IMAGE), &ours()).unwrap();
    assert_eq!((expired.reason, expired.refresh.as_deref()), (Reason::TokenExpired, Some(HOST)));
    assert_eq!(reason(Cause::AccessDenied { principal: None }, &ours()), Some(Reason::AccessDenied));
    assert_eq!(reason(Cause::NotFound, &missing), Some(Reason::ImageNotFound));
}

#[test]
fn every_host_form_of_a_registry_refreshes_the_one_registry() {
    for form in [
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/shop/web:1",
        "123456789012.dkr-ecr.us-east-1.on.aws/shop/web:1",
        "123456789012.dkr-ecr-fips.us-east-1.on.aws/shop/web:1",
    ] {
        let d = decide(&Cause::Expired { suspected: true }, &image(form), &ours()).unwrap();
        assert_eq!(d.refresh.as_deref(), Some(HOST), "{form}");
        assert!(d.message.contains("suspected"), "{}", d.message);
    }
}

#[test]
fn the_option_is_for_namespace_mode_only_and_off_by_default() {
    let given = crate::setting::Values(vec![
        ("RANCHER_PROJECT_SECRETS", "c-abcde:p-fghij"),
        ("KUBERNETES_DIAGNOSE_PULLS", "true"),
    ]);
    let err = settings::check(&given, Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.to_string(), "KUBERNETES_DIAGNOSE_PULLS: only for namespaces, not with RANCHER_PROJECT_SECRETS");
    let given = crate::setting::Values(vec![("KUBERNETES_DIAGNOSE_PULLS", "maybe")]);
    assert!(settings::check(&given, Duration::from_secs(5)).unwrap_err().to_string().contains("not a boolean"));
    assert!(!super::super::fake::namespaces(&["*"], &[]).diagnose_pulls);
}

#[test]
fn a_bare_403_after_a_refresh_is_access_denied() {
    let again = Facts { refreshed_before: true, ..ours() };
    let d = decide(&Cause::Expired { suspected: true }, &image(IMAGE), &again).unwrap();
    assert_eq!((d.reason, d.refresh), (Reason::AccessDenied, None));
    assert!(d.message.contains("again after"), "{}", d.message);
    let d = decide(&Cause::Expired { suspected: false }, &image(IMAGE), &again).unwrap();
    assert_eq!(d.reason, Reason::TokenExpired, "ECR's own words: expired, whatever happened before");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_counts_as_before_a_failure_seen_long_enough_after_it() {
    let mut memory = Memory::new();
    assert!(!memory.refreshed_before(HOST, Some(Timestamp::now())));
    memory.refresh(HOST, Instant::now()).unwrap();
    let later = |secs: i64| Timestamp::now().checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs)).ok();
    assert!(!memory.refreshed_before(HOST, later(2)));
    assert!(memory.refreshed_before(HOST, later(11)));
    assert!(!memory.refreshed_before(HOST, None));
}

#[test]
fn an_expired_token_not_from_our_secret_refreshes_nothing() {
    for facts in [Facts { referenced: false, ..ours() }, Facts { secret_ours: None, ..ours() }] {
        let d = decide(&Cause::Expired { suspected: false }, &image(IMAGE), &facts).unwrap();
        assert_eq!((d.reason, d.refresh), (Reason::TokenExpired, None));
        assert!(d.message.contains("not one this daemon keeps fresh"), "{}", d.message);
    }
}

#[test]
fn messages_name_the_fix() {
    let missing = Facts {
        secret_ours: None,
        not_selected: Some("KUBERNETES_NAMESPACES (file key namespaces) does not name it; add it there".into()),
        ..ours()
    };
    let d = decide(&Cause::NoCredentials, &image(IMAGE), &missing).unwrap();
    assert!(d.message.contains("no Secret ecr-credentials in namespace apps"), "{}", d.message);
    assert!(d.message.contains("KUBERNETES_NAMESPACES"), "{}", d.message);
    let predates = Facts { referenced: false, account_lists_it: Some(true), ..ours() };
    let d = decide(&Cause::NoCredentials, &image(IMAGE), &predates).unwrap();
    assert!(d.message.contains("predates") && d.message.contains("Recreate"), "{}", d.message);
    let plain = Facts { referenced: false, account_lists_it: Some(false), ..ours() };
    let d = decide(&Cause::NoCredentials, &image(IMAGE), &plain).unwrap();
    assert!(d.message.contains("KUBERNETES_SERVICE_ACCOUNTS") && !d.message.contains("predates"), "{}", d.message);
    let uncovered = Facts { covered: Some(false), ..ours() };
    let d = decide(&Cause::NoCredentials, &image(IMAGE), &uncovered).unwrap();
    assert!(d.message.contains("account 123456789012 in us-east-1") && d.message.contains("AWS_ECR_REGISTRY_IDS"));
    let principal = "arn:aws:sts::123456789012:assumed-role/node/i-1".to_string();
    let d = decide(&Cause::AccessDenied { principal: Some(principal.clone()) }, &image(IMAGE), &ours()).unwrap();
    assert!(d.message.contains(&principal) && d.message.contains("repository policy"), "{}", d.message);
    for reason in Reason::ALL {
        assert!(reason.as_str().starts_with("ECR"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_registry_is_refreshed_at_most_once_per_five_minutes_and_memory_is_bounded() {
    let mut memory = Memory::new();
    let start = Instant::now();
    assert!(memory.refresh(HOST, start).is_ok());
    assert_eq!(memory.refresh(HOST, start + Duration::from_secs(299)), Err(start));
    assert!(memory.refresh("other", start).is_ok());
    assert!(memory.refresh(HOST, start + REFRESH_INTERVAL).is_ok());

    let key = |i: usize| (format!("uid-{i}"), "web".to_string(), "expired");
    assert!(memory.claim(key(0), start));
    assert!(!memory.claim(key(0), start + Duration::from_secs(60)), "repeated: costs nothing");
    for i in 1..=REMEMBERED + 10 {
        memory.claim(key(i), start);
    }
    assert_eq!(memory.claimed.len(), REMEMBERED);
    assert!(memory.claim(key(0), start), "the oldest was forgotten");
}
