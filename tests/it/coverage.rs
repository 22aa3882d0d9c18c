//! Every registry a token opens (issue 13): FIPS and dual-stack hosts of the same account and region take the
//! token the standard host gets; hosts of other accounts, regions or partitions never do.

use crate::harness::*;
use crate::rancher2::{env2, rancher2};

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

// Secrets that rotate.

#[tokio::test]
async fn a_rotated_key_file_is_used_at_the_next_refresh_and_a_broken_one_keeps_the_old_key() {
    use base64::Engine as _;
    const ROTATED: &str = "cattle-secret-ROTATED-4n7q";
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let file =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-rotating-key", std::process::id()));
    std::fs::write(&file, CATTLE_SECRET).unwrap();
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    unset(&mut env, "CATTLE_SECRET_KEY");
    set(&mut env, "CATTLE_SECRET_KEY_FILE", file.to_str().unwrap());
    set(&mut env, "RETRY_DELAY", "200ms");
    set(&mut env, "RETRY_MAX_DELAY", "1s");
    // Not the default 0.0.0.0:8080, which another test run on the same machine may hold.
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &free_port().to_string());
    // Rancher is down while the key rotates: the daemon is in its retry loop.
    cattle.set_fault(standins::Fault::new(standins::FaultKind::Status(503)));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("will retry", std::time::Duration::from_secs(10)).await;

    // A file that becomes empty keeps the key read before, with an ERROR.
    std::fs::write(&file, "").unwrap();
    daemon.wait_for_log("Cannot read the secret file again", std::time::Duration::from_secs(10)).await;
    let output = daemon.output();
    let line = output.lines().find(|l| l.contains("Cannot read the secret file again")).unwrap();
    assert!(line.contains("ERROR") && line.contains("is empty") && line.contains("CATTLE_SECRET_KEY_FILE"), "{line}");

    // The key rotates in Rancher and in the file; the next refresh uses it.
    cattle.set_keys(CATTLE_ACCESS, ROTATED);
    std::fs::write(&file, format!("{ROTATED}\n")).unwrap();
    cattle.clear_faults();
    wait_until(std::time::Duration::from_secs(5), || secret_of(&cattle, &credential).as_deref() == Some(NEW_PASSWORD))
        .await
        .unwrap_or_else(|_| panic!("not refreshed with the rotated key:\n{}", daemon.output()));

    let rotated_basic =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CATTLE_ACCESS}:{ROTATED}")));
    let put = cattle.requests().into_iter().rfind(|r| r.method == "PUT").unwrap();
    assert_eq!(put.authorization.as_deref(), Some(rotated_basic.as_str()));
    let output = daemon.output();
    let reloaded = output.lines().find(|l| l.contains("reloaded")).expect("a reload line");
    assert!(reloaded.contains("INFO") && reloaded.contains("CATTLE_SECRET_KEY_FILE"), "{reloaded}");
    assert!(!output.contains(ROTATED), "the rotated key never appears: {output}");
    std::fs::remove_file(&file).unwrap();
}

// ECR Public.

const PUBLIC_PASSWORD: &str = "eyJwYXlsb2FkIjoiUFVCTElDLUVDUi1wYXNzd29yZCJ9";

#[tokio::test]
async fn ecr_public_is_refreshed_with_a_token_from_us_east_1_beside_the_private_registry() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    ecr.set_public_password(PUBLIC_PASSWORD, now_secs() + 12.0 * 3600.0);
    let public = cattle.add_registry("https://public.ecr.aws");
    let public_credential = cattle.add_credential(&public, "AWS", OLD_PASSWORD);
    let private = cattle.add_registry(&host(ACCOUNT));
    let private_credential = cattle.add_credential(&private, "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    // The private registries are in another region; ECR Public's token comes from us-east-1 all the same.
    set(&mut env, "AWS_REGION", "eu-west-1");
    set(&mut env, "AWS_ECR_REGISTRY_IDS", ACCOUNT);
    set(&mut env, "ECR_PUBLIC", "true");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &public_credential).as_deref(), Some(PUBLIC_PASSWORD), "{}", run.output);
    assert_eq!(secret_of(&cattle, &private_credential).as_deref(), Some(NEW_PASSWORD), "{}", run.output);
    let targets: Vec<String> = ecr.requests().into_iter().map(|r| format!("{} {:?}", r.target, r.region)).collect();
    assert!(targets.contains(&format!("{} Some(\"us-east-1\")", standins::ecr::PUBLIC_TARGET)), "{targets:?}");
    assert!(!run.output.contains(PUBLIC_PASSWORD), "{}", run.output);
}

#[tokio::test]
async fn a_public_source_in_the_file_and_check_config_name_public_ecr_aws() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let file =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-public.toml", std::process::id()));
    let url = format!("{}/v2-beta", cattle.url());
    std::fs::write(
        &file,
        format!(
            "[[source]]\nname = \"pub\"\npublic = true\n\n[[source]]\nname = \"bad\"\npublic = true\nregistry_ids = [\"{ACCOUNT}\"]\n\n[[target]]\nname = \"r\"\nurl = \"{url}\"\naccess_key = \"{CATTLE_ACCESS}\"\nsecret_key = \"{CATTLE_SECRET}\"\n"
        ),
    )
    .unwrap();
    let mut env = env(&ecr, &url);
    set(&mut env, "CONFIG_FILE", file.to_str().unwrap());

    let refused = run(&env, &["--check-config"]).await;

    assert_eq!(refused.code, Some(2), "{}", refused.output);
    assert!(
        refused.output.contains("source 'bad'.registry_ids") && refused.output.contains("one registry"),
        "{}",
        refused.output
    );

    let content = std::fs::read_to_string(&file).unwrap();
    let good = content.split("[[source]]\nname = \"bad\"").next().unwrap().to_string()
        + &content[content.find("[[target]]").unwrap()..];
    std::fs::write(&file, good).unwrap();
    let plan = run(&env, &["--check-config"]).await;
    assert_eq!(plan.code, Some(0), "{}", plan.output);
    assert!(plan.output.contains("public.ecr.aws (ECR Public, token from us-east-1)"), "{}", plan.output);
    std::fs::remove_file(&file).unwrap();
}

// Every Rancher 1.x environment from one container.

#[tokio::test]
async fn every_environment_an_account_key_sees_is_refreshed_and_a_new_one_is_picked_up() {
    use standins::cattle::CattleConfig;
    let ecr = ecr().await;
    let cattle = cattle_with(CattleConfig { account_key: true, ..CattleConfig::default() }).await;
    let staging = cattle.add_environment("Staging", true);
    let hidden = cattle.add_environment("Hidden", false);
    let default_credential = cattle.add_credential(&cattle.add_registry(&host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let staging_credential =
        cattle.add_credential(&cattle.add_registry_in(&staging, &host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let hidden_credential =
        cattle.add_credential(&cattle.add_registry_in(&hidden, &host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "RANCHER_ENVIRONMENTS", "all");
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &free_port().to_string());
    set(&mut env, "RETRY_DELAY", "200ms");
    set(&mut env, "RETRY_MAX_DELAY", "1s");
    // Staging fails for now, which keeps the daemon retrying: a new environment shows at the next refresh.
    cattle.set_fault(standins::Fault::new(standins::FaultKind::Status(503)).path(&format!("/projects/{staging}/")));

    let daemon = Daemon::start(&env, &[]);
    wait_until(std::time::Duration::from_secs(10), || {
        secret_of(&cattle, &default_credential).as_deref() == Some(NEW_PASSWORD)
    })
    .await
    .unwrap_or_else(|_| panic!("Default not refreshed:\n{}", daemon.output()));
    let later = cattle.add_environment("Later", true);
    let later_credential = cattle.add_credential(&cattle.add_registry_in(&later, &host(ACCOUNT)), "AWS", OLD_PASSWORD);
    wait_until(std::time::Duration::from_secs(10), || {
        secret_of(&cattle, &later_credential).as_deref() == Some(NEW_PASSWORD)
    })
    .await
    .unwrap_or_else(|_| panic!("the environment added later was not picked up:\n{}", daemon.output()));
    cattle.clear_faults();
    wait_until(std::time::Duration::from_secs(10), || {
        secret_of(&cattle, &staging_credential).as_deref() == Some(NEW_PASSWORD)
    })
    .await
    .unwrap_or_else(|_| panic!("Staging not refreshed after it recovered:\n{}", daemon.output()));

    assert_eq!(secret_of(&cattle, &hidden_credential).as_deref(), Some(OLD_PASSWORD), "not visible to the key");
    daemon.wait_for_log(&format!("scope=\"Staging ({staging})\" resource"), std::time::Duration::from_secs(5)).await;
    let output = daemon.output();
    let staging_line = output
        .lines()
        .find(|l| l.contains("Updated credential") && l.contains(&format!("Staging ({staging})")))
        .unwrap_or_else(|| panic!("no update line scoped to Staging:\n{output}"));
    assert!(staging_line.contains(&host(ACCOUNT)), "{staging_line}");
    assert!(
        output.lines().any(|l| l.contains("WARN") && l.contains(&format!("Staging ({staging})")) && l.contains("503")),
        "the failing environment is named in its WARN:\n{output}"
    );
}

#[tokio::test]
async fn named_environments_are_refreshed_and_an_unknown_name_is_an_error_naming_it() {
    use standins::cattle::CattleConfig;
    let ecr = ecr().await;
    let cattle = cattle_with(CattleConfig { account_key: true, ..CattleConfig::default() }).await;
    let staging = cattle.add_environment("Staging", true);
    let other = cattle.add_environment("Other", true);
    let staging_credential =
        cattle.add_credential(&cattle.add_registry_in(&staging, &host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let other_credential = cattle.add_credential(&cattle.add_registry_in(&other, &host(ACCOUNT)), "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "RANCHER_ENVIRONMENTS", "staging,Nowhere");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "a missing environment fails --once:\n{}", run.output);
    assert_eq!(secret_of(&cattle, &staging_credential).as_deref(), Some(NEW_PASSWORD), "{}", run.output);
    assert_eq!(secret_of(&cattle, &other_credential).as_deref(), Some(OLD_PASSWORD), "not named");
    let line = run.output.lines().find(|l| l.contains("ERROR") && l.contains("Nowhere")).expect(&run.output);
    assert!(line.contains("RANCHER_ENVIRONMENTS"), "{line}");
}
