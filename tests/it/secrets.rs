//! No secret in any log line, at the most verbose level, in either format, whether things go well or not.

use standins::Fault;
use standins::FaultKind;

use crate::harness::*;

#[tokio::test]
async fn never_logs_a_secret_at_trace_level_in_text_or_json() {
    for format in ["text", "json"] {
        let (ecr, cattle) = (ecr().await, cattle().await);
        let registry = cattle.add_registry(&host(ACCOUNT));
        cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
        let mut env = env(&ecr, &format!("{}/v1", cattle.url()));
        set(&mut env, "LOG_LEVEL", "trace");
        set(&mut env, "LOG_FORMAT", format);
        set(&mut env, "AWS_SESSION_TOKEN", AWS_SESSION_TOKEN);
        set(&mut env, "AWS_ECR_REGISTRY_IDS", &format!("{ACCOUNT},{OTHER_ACCOUNT}"));
        set(&mut env, "AUTO_CREATE", "true");

        let run = run(&env, &["--once"]).await;

        assert_eq!(run.code, Some(0), "{}", run.output);
        assert!(run.output.lines().count() > 3, "trace level logs something: {}", run.output);
        assert_no_secrets(&run.output);
        if format == "json" {
            for line in run.output.lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            }
        }
    }
}

#[tokio::test]
async fn never_logs_a_secret_when_rancher_fails() {
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    cattle.set_fault(Fault::new(FaultKind::Status(422)).method("PUT"));
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "LOG_LEVEL", "trace");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("422"), "{}", run.output);
    assert_no_secrets(&run.output);
}
