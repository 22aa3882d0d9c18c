//! Several sources (roles, regions) and targets (Rancher environments) from one configuration file; address
//! overrides; `--check-config`; bad files. The STS stand-in records which role and ExternalId were used, and
//! hands out access keys that the ECR stand-in reports, so each registry's token is traced to its role.

use std::path::PathBuf;

use standins::cattle::{CattleConfig, FakeCattle};
use standins::ecr::{EcrRegistry, FakeEcr};
use standins::sts::FakeSts;

use crate::harness::*;

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";
const ROLE_A: &str = "arn:aws:iam::111111111111:role/ecr-reader-a";
const ROLE_B: &str = "arn:aws:iam::222222222222:role/ecr-reader-b";
pub const EXTERNAL_ID: &str = "ext-id-a-7Qp2";
pub const PASSWORD_A: &str = "eyJwYXlsb2FkIjoiUEFTU1dPUkQtQS1mb3ItdGVzdHMifQ";
pub const PASSWORD_B: &str = "eyJwYXlsb2FkIjoiUEFTU1dPUkQtQi1mb3ItdGVzdHMifQ";
pub const SECRET_ONE: &str = "cattle-secret-ONE-9d8s";
pub const SECRET_TWO: &str = "cattle-secret-TWO-1k2j";

fn host_in(account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
}

/// A file in this test binary's scratch directory.
/// Writes a file for one test. Tests run in parallel and some share names (`secret-one`): the file is written
/// under a unique name and renamed into place, so that a reader never sees it half written.
fn write_file(name: &str, content: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{}-{name}", std::process::id()));
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!("{}-{n}-{name}.partial", std::process::id()));
    std::fs::write(&partial, content).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

struct World {
    sts: FakeSts,
    ecr: FakeEcr,
    one: FakeCattle,
    two: FakeCattle,
}

async fn world() -> World {
    let sts = FakeSts::start().await;
    sts.add_role(ROLE_A, Some(EXTERNAL_ID));
    sts.add_role(ROLE_B, None);
    let ecr = FakeEcr::start().await;
    let expires_at = now_secs() + 12.0 * 3600.0;
    ecr.add_registry(EcrRegistry {
        account_id: ACCOUNT_A.into(),
        region: "us-east-1".into(),
        password: PASSWORD_A.into(),
        expires_at,
    });
    ecr.add_registry(EcrRegistry {
        account_id: ACCOUNT_B.into(),
        region: "eu-west-1".into(),
        password: PASSWORD_B.into(),
        expires_at,
    });
    ecr.set_caller_account(&sts.access_key_for(ROLE_A), ACCOUNT_A);
    ecr.set_caller_account(&sts.access_key_for(ROLE_B), ACCOUNT_B);
    let config = |access: &str, secret: &str| CattleConfig {
        access_key: access.into(),
        secret_key: secret.into(),
        ..CattleConfig::default()
    };
    let one = FakeCattle::start(config("access-one", SECRET_ONE)).await;
    let two = FakeCattle::start(config("access-two", SECRET_TWO)).await;
    World { sts, ecr, one, two }
}

fn file_env(world: &World, config_file: &std::path::Path) -> Vec<(String, String)> {
    [
        ("CONFIG_FILE", config_file.display().to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDBASEEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.to_string()),
        ("AWS_ENDPOINT_URL_ECR", world.ecr.url()),
        ("AWS_ENDPOINT_URL_STS", world.sts.url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn two_sources_two_targets(world: &World) -> String {
    let secret_file = write_file("secret-one", &format!("{SECRET_ONE}\n"));
    format!(
        r#"
[[source]]
name = "a"
region = "us-east-1"
role_arn = "{ROLE_A}"
external_id = "{EXTERNAL_ID}"
session_name = "recs-a"

[[source]]
name = "b"
region = "eu-west-1"
role_arn = "{ROLE_B}"

[[target]]
name = "env-one"
url = "{one}/v2-beta"
access_key = "access-one"
secret_key_file = "{secret_file}"
sources = ["a"]

[[target]]
name = "env-two"
url = "{two}/v1"
access_key = "access-two"
secret_key = "{SECRET_TWO}"
"#,
        one = world.one.url(),
        two = world.two.url(),
        secret_file = secret_file.display(),
    )
}

#[tokio::test]
async fn two_roles_in_two_regions_feed_two_targets_each_with_its_own_token() {
    let world = world().await;
    let one_a = world.one.add_registry(&host_in(ACCOUNT_A, "us-east-1"));
    let one_a = world.one.add_credential(&one_a, "AWS", OLD_PASSWORD);
    let two_a = world.two.add_registry(&host_in(ACCOUNT_A, "us-east-1"));
    let two_a = world.two.add_credential(&two_a, "AWS", OLD_PASSWORD);
    let two_b = world.two.add_registry(&host_in(ACCOUNT_B, "eu-west-1"));
    let two_b = world.two.add_credential(&two_b, "AWS", OLD_PASSWORD);
    let file = write_file("two-by-two.toml", &two_sources_two_targets(&world));

    let run = run(&file_env(&world, &file), &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&world.one, &one_a).as_deref(), Some(PASSWORD_A));
    assert_eq!(secret_of(&world.two, &two_a).as_deref(), Some(PASSWORD_A));
    assert_eq!(secret_of(&world.two, &two_b).as_deref(), Some(PASSWORD_B));

    // One AssumeRole per role, on top of the base credentials, with the ExternalId only where configured.
    let mut assumed = world.sts.requests();
    assumed.sort_by(|x, y| x.role_arn.cmp(&y.role_arn));
    assert_eq!(assumed.len(), 2, "{assumed:#?}");
    assert_eq!(assumed[0].role_arn.as_deref(), Some(ROLE_A));
    assert_eq!(assumed[0].external_id.as_deref(), Some(EXTERNAL_ID));
    assert_eq!(assumed[0].session_name.as_deref(), Some("recs-a"));
    assert_eq!(assumed[1].role_arn.as_deref(), Some(ROLE_B));
    assert_eq!(assumed[1].external_id, None);
    assert!(assumed.iter().all(|a| a.caller.as_deref() == Some("AKIDBASEEXAMPLE")), "{assumed:#?}");

    // One token per source, though source a feeds both targets; each signed by its role, in its region.
    let mut calls: Vec<(Option<String>, Option<String>)> =
        world.ecr.requests().into_iter().map(|r| (r.access_key_id, r.region)).collect();
    calls.sort();
    assert_eq!(
        calls,
        vec![
            (Some(world.sts.access_key_for(ROLE_A)), Some("us-east-1".to_string())),
            (Some(world.sts.access_key_for(ROLE_B)), Some("eu-west-1".to_string())),
        ]
    );
    // Each target was called with its own key only.
    assert!(
        world.one.requests().iter().all(|r| r.status != 401) && world.two.requests().iter().all(|r| r.status != 401)
    );
    for line in [EXTERNAL_ID, SECRET_ONE, SECRET_TWO, PASSWORD_A, PASSWORD_B] {
        assert!(!run.output.contains(line), "{line} leaked:\n{}", run.output);
    }
    assert!(run.output.contains("env-one") && run.output.contains("env-two"), "{}", run.output);
}

#[tokio::test]
async fn a_wrong_external_id_fails_that_source_and_leaves_rancher_untouched() {
    let world = world().await;
    let registry = world.one.add_registry(&host_in(ACCOUNT_A, "us-east-1"));
    let credential = world.one.add_credential(&registry, "AWS", OLD_PASSWORD);
    let text = two_sources_two_targets(&world).replace(EXTERNAL_ID, "not-the-external-id");
    let file = write_file("wrong-external-id.toml", &text);

    let run = run(&file_env(&world, &file), &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    assert_eq!(secret_of(&world.one, &credential).as_deref(), Some(OLD_PASSWORD));
    assert!(world.one.requests().is_empty(), "{:?}", world.one.requests());
    assert!(run.output.contains("AccessDenied"), "{}", run.output);
    assert!(!run.output.contains("not-the-external-id"), "{}", run.output);
}

#[tokio::test]
async fn check_config_prints_the_plan_without_secrets_and_calls_nothing() {
    let world = world().await;
    let text = two_sources_two_targets(&world).replace(
        "role_arn = \"arn:aws:iam::222222222222:role/ecr-reader-b\"",
        "role_arn = \"arn:aws:iam::222222222222:role/ecr-reader-b\"\nregistry_ids = [\"222222222222\"]\n\
         addresses = { \"222222222222.dkr.ecr.eu-west-1.amazonaws.com\" = \"ecr-b.example.com\" }",
    );
    let file = write_file("check.toml", &text);

    let run = run(&file_env(&world, &file), &["--check-config"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    for expected in [
        "source a: region us-east-1",
        ROLE_A,
        "with an ExternalId",
        "source b: region eu-west-1",
        "registry: 222222222222.dkr.ecr.eu-west-1.amazonaws.com (in Rancher as ecr-b.example.com)",
        "the caller's own account in us-east-1",
        "target env-one:",
        "target env-two:",
        "sources: a, b",
        "The configuration is valid.",
    ] {
        assert!(run.output.contains(expected), "{expected:?} missing:\n{}", run.output);
    }
    for secret in [EXTERNAL_ID, SECRET_ONE, SECRET_TWO] {
        assert!(!run.output.contains(secret), "{secret} leaked:\n{}", run.output);
    }
    assert!(world.sts.requests().is_empty() && world.ecr.requests().is_empty());
    assert!(world.one.requests().is_empty() && world.two.requests().is_empty());
}

#[tokio::test]
async fn each_bad_file_names_the_file_the_line_and_the_key() {
    let world = world().await;
    let good = two_sources_two_targets(&world);
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("syntax", "[[source]\nname = \"a\"\n".into(), &["line 1"]),
        (
            "unknown key",
            good.replace("session_name = \"recs-a\"", "sesion_name = \"recs-a\""),
            &["line 7", "sesion_name"],
        ),
        (
            "bad region",
            good.replace("region = \"eu-west-1\"", "region = \"EU West\""),
            &["line 11", "source 'b'.region"],
        ),
        ("bad role", good.replace(ROLE_B, "arn:aws:iam::2222:role/x"), &["line 12", "source 'b'.role_arn"]),
        (
            "unknown source",
            good.replace("sources = [\"a\"]", "sources = [\"a\", \"c\"]"),
            &["line 19", "target 'env-one'.sources", "no source is named 'c'"],
        ),
        ("duplicate target", good.replace("name = \"env-two\"", "name = \"env-one\""), &["line 22", "earlier target"]),
        ("bad url", good.replacen("url = \"http://", "url = \"ftp://", 1), &["line 16", "target 'env-one'.url"]),
        (
            "key twice",
            good.replace("secret_key = \"", "secret_key_file = \"/dev/null\"\nsecret_key = \""),
            &["target 'env-two'.secret_key_file"],
        ),
        (
            "short session",
            good.replace("session_name = \"recs-a\"", "session_duration = \"5m\""),
            &["session_duration", "out of range"],
        ),
        ("no target", good[..good.find("[[target]]").unwrap()].to_string(), &["no [[target]]"]),
    ];
    for (what, text, expected) in cases {
        let file = write_file(&format!("bad-{}.toml", what.replace(' ', "-")), &text);
        let run = run(&file_env(&world, &file), &["--check-config"]).await;
        assert_eq!(run.code, Some(2), "{what}: {}", run.output);
        let lines: Vec<&str> = run.output.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one line, got:\n{}", run.output);
        assert!(lines[0].contains(&file.display().to_string()), "{what}: {}", lines[0]);
        for fragment in expected {
            assert!(lines[0].contains(fragment), "{what}: {fragment:?} missing in {}", lines[0]);
        }
        assert!(!lines[0].contains(SECRET_TWO), "{what}: {}", lines[0]);
    }
}

#[tokio::test]
async fn an_address_override_updates_the_registry_behind_a_proxy() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let proxied = cattle.add_registry("ecr-proxy.example.com:5000");
    let credential = cattle.add_credential(&proxied, "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "REGISTRY_ADDRESS_MAP", &format!("{}=ecr-proxy.example.com:5000", host(ACCOUNT)));

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(NEW_PASSWORD));
    assert!(!run.output.contains("No registry in Rancher"), "{}", run.output);
}

#[tokio::test]
async fn the_environment_settings_a_file_replaces_are_named_in_a_warning() {
    let world = world().await;
    let registry = world.one.add_registry(&host_in(ACCOUNT_A, "us-east-1"));
    world.one.add_credential(&registry, "AWS", OLD_PASSWORD);
    let file = write_file("with-env.toml", &two_sources_two_targets(&world));
    let mut env = file_env(&world, &file);
    // What Rancher 1.x injects into a service with the agent labels.
    set(&mut env, "CATTLE_URL", "http://10.42.0.1:8080/v1");
    set(&mut env, "CATTLE_ACCESS_KEY", "injected");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let warning = run.output.lines().find(|l| l.contains("CATTLE_URL is ignored")).expect(&run.output);
    assert!(warning.contains("WARN"), "{warning}");
    assert!(run.output.contains("CATTLE_ACCESS_KEY is ignored"), "{}", run.output);
}

#[tokio::test]
async fn dry_run_reads_everything_and_writes_nothing() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    // The other account's registry is missing: AUTO_CREATE would create it.
    set(&mut env, "AWS_ECR_REGISTRY_IDS", &format!("{ACCOUNT},{OTHER_ACCOUNT}"));
    set(&mut env, "AUTO_CREATE", "true");

    let run = run(&env, &["--dry-run"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    let requests = cattle.requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "only reads: {requests:#?}");
    assert!(requests.iter().any(|r| r.path_and_query.contains("registrycredentials?registryId=")), "{requests:#?}");
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(OLD_PASSWORD));
    assert_eq!(cattle.registries().len(), 1);
    assert_eq!(ecr.requests().len(), 1, "the tokens are really fetched");
    let update = run.output.lines().find(|l| l.contains("would update credential")).expect(&run.output);
    assert!(update.contains(&host(ACCOUNT)) && update.contains(&credential), "{update}");
    let create = run.output.lines().find(|l| l.contains("would create registry")).expect(&run.output);
    assert!(create.contains(&host(OTHER_ACCOUNT)), "{create}");
    assert!(run.output.contains("nothing was changed"), "{}", run.output);
    assert_no_secrets(&run.output);
}

#[tokio::test]
async fn a_public_source_needs_no_region() {
    let world = world().await;
    let text = format!(
        "[[source]]\nname = \"eu\"\nregion = \"eu-west-1\"\n\n[[source]]\nname = \"public\"\npublic = true\n\n[[target]]\nname = \"one\"\nurl = \"{}/v2-beta\"\n",
        world.one.url()
    );
    let file = write_file("public-without-region.toml", &text);
    let env = file_env(&world, &file);
    assert!(!env.iter().any(|(k, _)| k == "AWS_REGION" || k == "AWS_DEFAULT_REGION"), "{env:?}");

    let run = run(&env, &["--check-config"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    assert!(run.output.contains("source public: region us-east-1"), "{}", run.output);
    assert!(run.output.contains("source eu: region eu-west-1"), "{}", run.output);
}
