//! `cargo demo`: the whole job on this machine, with no AWS account and no Rancher server.
//!
//! Starts loopback stand-ins of ECR and of the Rancher 1.x API holding a registry with an expired credential,
//! builds and runs the real daemon with `--once` against them using only environment variables (as
//! `docker run -e` would), then shows the credential before and after and every request the daemon made.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use standins::cattle::{CattleConfig, FakeCattle};
use standins::ecr::{EcrRegistry, FakeEcr};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const BINARY: &str = "rancher-ecr-credentials";

fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(6).collect();
    format!("{shown}… ({} characters)", secret.chars().count())
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("standins/ sits in the workspace").to_path_buf()
}

/// Builds the daemon next to this binary (a no-op when it is up to date) and returns its path.
fn build_daemon() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bin", BINARY])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo to build the daemon: {e}"))?;
    if !status.success() {
        return Err("building the daemon failed".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
    let path = exe.with_file_name(BINARY);
    if path.exists() { Ok(path) } else { Err(format!("the daemon was not found at {}", path.display())) }
}

// Two worker threads: the stand-ins keep answering while this thread waits for the daemon.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let daemon = match build_daemon() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64();
    let fresh_password = format!("demo-fresh-ecr-password-{}", fastish_random());
    let ecr = FakeEcr::start().await;
    ecr.add_registry(EcrRegistry {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        password: fresh_password.clone(),
        expires_at: now + 12.0 * 3600.0,
    });
    let cattle = FakeCattle::start(CattleConfig::default()).await;
    let host = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com");
    let registry = cattle.add_registry(&host);
    let credential = cattle.add_credential(&registry, "AWS", "expired-password-from-yesterday");
    let defaults = CattleConfig::default();

    println!("Stand-in ECR:     {}", ecr.url());
    println!("Stand-in Rancher: {}/v2-beta", cattle.url());
    println!();
    println!("Before: Rancher registry {registry} ({host}), credential {credential}");
    print_credential(&cattle, &credential);
    println!();
    println!("Running: {BINARY} --once   (environment only, as `docker run -e` would)");
    println!("------------------------------------------------------------------------");

    let status = Command::new(&daemon)
        .arg("--once")
        .env_clear()
        .env("CATTLE_URL", format!("{}/v2-beta", cattle.url()))
        .env("CATTLE_ACCESS_KEY", &defaults.access_key)
        .env("CATTLE_SECRET_KEY", &defaults.secret_key)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "AKIDDEMO")
        .env("AWS_SECRET_ACCESS_KEY", "demo-secret-key")
        .env("AWS_ENDPOINT_URL", ecr.url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::null())
        .status();
    println!("------------------------------------------------------------------------");
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            eprintln!("demo: cannot run {}: {e}", daemon.display());
            return ExitCode::FAILURE;
        }
    };

    println!();
    println!("After:");
    print_credential(&cattle, &credential);
    let now_set = cattle.credentials().into_iter().find(|c| c.id == credential).and_then(|c| c.secret_value);
    let refreshed = now_set.as_deref() == Some(fresh_password.as_str());
    println!("  matches the password ECR just handed out: {}", if refreshed { "yes" } else { "NO" });
    println!();
    println!("What the daemon sent:");
    for request in ecr.requests() {
        println!("  ECR      POST /  {}", request.target);
    }
    for request in cattle.requests() {
        println!("  Rancher  {} {} -> {}", request.method, request.path_and_query, request.status);
    }

    if status.success() && refreshed {
        println!();
        println!("The credential was refreshed (daemon exit code 0).");
        ExitCode::SUCCESS
    } else {
        println!();
        println!("The credential was NOT refreshed (daemon exit code {:?}).", status.code());
        ExitCode::FAILURE
    }
}

fn print_credential(cattle: &FakeCattle, id: &str) {
    match cattle.credentials().into_iter().find(|c| c.id == id) {
        Some(c) => println!(
            "  user {}, password {}, state {}",
            c.public_value.as_deref().unwrap_or("-"),
            c.secret_value.as_deref().map(mask).unwrap_or_else(|| "-".into()),
            c.state
        ),
        None => println!("  (credential {id} is gone)"),
    }
}

/// A few random characters for the demo password; not for anything secret.
fn fastish_random() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:08x}{:04x}", nanos, std::process::id() & 0xffff)
}
