//! Every registry a token opens (issue 13): FIPS and dual-stack hosts of the same account and region take the
//! token the standard host gets; hosts of other accounts, regions or partitions never do.

use standins::cattle::FakeCattle;

use crate::harness::*;
use crate::rancher2::{env2, rancher2};

fn secret_of(cattle: &FakeCattle, credential: &str) -> Option<String> {
    cattle.credentials().into_iter().find(|c| c.id == credential).and_then(|c| c.secret_value)
}

/// The forms of this account's registry in us-east-1 that Rancher users type, and hosts that must not match.
fn forms(account: &str) -> [String; 3] {
    [
        format!("{account}.dkr.ecr-fips.{REGION}.amazonaws.com"),
        format!("https://{account}.dkr-ecr.{REGION}.on.aws/"),
        format!("{account}.DKR-ECR-FIPS.{REGION}.ON.AWS:443"),
    ]
}

const STRANGERS: [&str; 3] = [
    "999999999999.dkr-ecr.us-east-1.on.aws",
    "123456789012.dkr.ecr-fips.us-west-2.amazonaws.com",
    "123456789012.dkr-ecr.us-east-1.on.amazonwebservices.com.cn",
];

#[tokio::test]
async fn fips_and_dual_stack_registries_get_the_token_and_strangers_do_not() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let ours: Vec<String> = forms(ACCOUNT)
        .iter()
        .map(|address| {
            let registry = cattle.add_registry(address);
            cattle.add_credential(&registry, "AWS", OLD_PASSWORD)
        })
        .collect();
    let strangers: Vec<String> = STRANGERS
        .iter()
        .map(|address| {
            let registry = cattle.add_registry(address);
            cattle.add_credential(&registry, "AWS", OLD_PASSWORD)
        })
        .collect();

    let run = run(&env(&ecr, &format!("{}/v2-beta", cattle.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    for credential in &ours {
        assert_eq!(secret_of(&cattle, credential).as_deref(), Some(NEW_PASSWORD), "{credential}:\n{}", run.output);
    }
    for credential in &strangers {
        assert_eq!(secret_of(&cattle, credential).as_deref(), Some(OLD_PASSWORD), "{credential}");
    }
    assert_eq!(run.output.matches("Updated credential").count(), 3, "{}", run.output);
}

#[tokio::test]
async fn auto_create_writes_each_configured_host_form_once() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "AUTO_CREATE", "true");
    set(&mut env, "ECR_HOST_FORMS", "standard,dualstack-fips");

    let first = run(&env, &["--once"]).await;
    let second = run(&env, &["--once"]).await;

    assert_eq!((first.code, second.code), (Some(0), Some(0)), "{}\n{}", first.output, second.output);
    let mut addresses: Vec<String> = cattle.registries().into_iter().map(|r| r.server_address).collect();
    addresses.sort();
    assert_eq!(addresses, [format!("{ACCOUNT}.dkr-ecr-fips.{REGION}.on.aws"), host(ACCOUNT)], "sorted");
    let credentials = cattle.credentials();
    assert_eq!(credentials.len(), 2, "{credentials:?}");
    assert!(credentials.iter().all(|c| c.secret_value.as_deref() == Some(NEW_PASSWORD)), "{credentials:?}");
    assert_eq!(
        second.output.matches("Updated credential").count(),
        2,
        "the second run updates both:\n{}",
        second.output
    );
}

#[tokio::test]
async fn a_rancher2_credential_under_the_dual_stack_host_is_updated_under_that_key() {
    let (ecr, rancher) = (ecr().await, rancher2().await);
    let project = rancher.add_project("c-one", "Default");
    let dual = format!("{ACCOUNT}.dkr-ecr.{REGION}.on.aws");
    let credential = rancher.add_credential(&project, "ecr-ipv6", &[(&dual, "AWS", OLD_PASSWORD)]);
    let stranger = rancher.add_credential(&project, "other", &[(STRANGERS[0], "AWS", OLD_PASSWORD)]);

    let run = run(&env2(&ecr, &format!("{}/v3/projects/{project}", rancher.url())), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let stored = rancher.credential(&credential).unwrap();
    assert_eq!(stored.registries.keys().collect::<Vec<_>>(), [&dual], "the key stays as the user wrote it");
    assert_eq!(stored.registries[&dual].password.as_deref(), Some(NEW_PASSWORD));
    let other = rancher.credential(&stranger).unwrap();
    assert_eq!(other.registries[STRANGERS[0]].password.as_deref(), Some(OLD_PASSWORD));
}
