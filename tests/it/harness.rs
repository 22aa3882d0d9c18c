//! Starting the real binary the way `docker run -e` would: only environment variables, no inherited
//! environment, against stand-ins on 127.0.0.1. Every wait is bounded.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use standins::cattle::{CattleConfig, FakeCattle};
use standins::ecr::{EcrRegistry, FakeEcr};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_rancher-ecr-credentials");
pub const ACCOUNT: &str = "123456789012";
pub const OTHER_ACCOUNT: &str = "210987654321";
pub const REGION: &str = "us-east-1";
pub const AWS_SECRET: &str = "wJalrXUtnFEMI-aws-secret-key-EXAMPLE";
pub const AWS_SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLE-session-token";
pub const CATTLE_ACCESS: &str = "cattle-access";
pub const CATTLE_SECRET: &str = "cattle-secret-Zq9xW";
/// Long and unusual, so that a search for it in logs cannot match anything else.
pub const NEW_PASSWORD: &str = "eyJwYXlsb2FkIjoiTkVXLVBBU1NXT1JELWZvci10ZXN0cyJ9";
pub const SECOND_PASSWORD: &str = "eyJwYXlsb2FkIjoiU0VDT05ELUFDQ09VTlQtcGFzc3dvcmQifQ";
pub const OLD_PASSWORD: &str = "old-password-that-has-expired";
/// A run of the binary never takes longer than this in tests.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

pub fn host(account: &str) -> String {
    format!("{account}.dkr.ecr.{REGION}.amazonaws.com")
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A fake ECR with the caller's own registry (ACCOUNT) and another account's, both valid for 12 hours.
pub async fn ecr() -> FakeEcr {
    let ecr = FakeEcr::start().await;
    ecr.add_registry(EcrRegistry {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        password: NEW_PASSWORD.into(),
        expires_at: now_secs() + 12.0 * 3600.0,
    });
    ecr.add_registry(EcrRegistry {
        account_id: OTHER_ACCOUNT.into(),
        region: REGION.into(),
        password: SECOND_PASSWORD.into(),
        expires_at: now_secs() + 12.0 * 3600.0,
    });
    ecr
}

pub async fn cattle() -> FakeCattle {
    cattle_with(CattleConfig::default()).await
}

pub async fn cattle_with(config: CattleConfig) -> FakeCattle {
    FakeCattle::start(CattleConfig { access_key: CATTLE_ACCESS.into(), secret_key: CATTLE_SECRET.into(), ..config })
        .await
}

/// The environment of a typical `docker run -e ...` against the stand-ins.
pub fn env(ecr: &FakeEcr, cattle_url: &str) -> Vec<(String, String)> {
    [
        ("CATTLE_URL", cattle_url.to_string()),
        ("CATTLE_ACCESS_KEY", CATTLE_ACCESS.into()),
        ("CATTLE_SECRET_KEY", CATTLE_SECRET.into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".into()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
        ("AWS_ENDPOINT_URL", ecr.url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
}

pub fn unset(env: &mut Vec<(String, String)>, key: &str) {
    env.retain(|(k, _)| k != key);
}

fn command(env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        // Keep the SDK away from this machine's files and from instance metadata.
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// What a finished run printed and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub output: String,
}

/// Runs the binary to its end (e.g. with `--once`), bounded by [`RUN_LIMIT`].
pub async fn run(env: &[(String, String)], args: &[&str]) -> Finished {
    let child = command(env, args).spawn().expect("the binary starts");
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("the binary finishes within the limit")
        .expect("the binary's output can be read");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    assert_no_secrets(&text);
    Finished { code: output.status.code(), output: text }
}

/// A daemon started in the background; killed when dropped.
pub struct Daemon {
    child: Child,
    output: Arc<Mutex<String>>,
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, output: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut out = output.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
}

impl Daemon {
    pub fn start(env: &[(String, String)], args: &[&str]) -> Daemon {
        let mut child = command(env, args).spawn().expect("the binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        Daemon { child, output }
    }

    /// Starts the daemon with its open-file limit, soft and hard, set to `limit`.
    pub fn start_with_file_limit(env: &[(String, String)], args: &[&str], limit: u64) -> Daemon {
        let mut command = command(env, args);
        // SAFETY: between fork and exec only setrlimit(2) runs, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let value = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &value) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let mut child = command.spawn().expect("the binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        Daemon { child, output }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; panics with the output after `limit`.
    pub async fn wait_for_log(&self, needle: &str, limit: Duration) {
        wait_until(limit, || self.output().contains(needle))
            .await
            .unwrap_or_else(|_| panic!("no log line with {needle:?} within {limit:?}; output:\n{}", self.output()));
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("the daemon is running") as i32
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub async fn terminate(mut self, limit: Duration) -> (Option<i32>, Duration, String) {
        let started = std::time::Instant::now();
        // SAFETY: kill(2) with the pid of our own child and a valid signal has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM delivered");
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the daemon did not stop within {limit:?}; output:\n{}", self.output()))
            .expect("wait for the daemon");
        // Let the readers drain the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status.code(), started.elapsed(), self.output())
    }
}

impl Drop for Daemon {
    /// Whatever the test checked, the daemon's output holds no secret.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_no_secrets(&self.output());
        }
    }
}

/// The password a Cattle credential holds now.
pub fn secret_of(cattle: &FakeCattle, credential: &str) -> Option<String> {
    cattle.credentials().into_iter().find(|c| c.id == credential).and_then(|c| c.secret_value)
}

/// Waits until the credential holds [`NEW_PASSWORD`]; panics with the daemon's output after `limit`.
pub async fn wait_for_password(daemon: &Daemon, cattle: &FakeCattle, credential: &str, limit: Duration) {
    wait_until(limit, || secret_of(cattle, credential).as_deref() == Some(NEW_PASSWORD))
        .await
        .unwrap_or_else(|_| panic!("the credential was not refreshed within {limit:?}; output:\n{}", daemon.output()));
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if condition() { Ok(()) } else { Err(()) }
}

/// A free port on 127.0.0.1 (bound and released; good enough for tests that start one daemon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every secret the tests hand the daemon, in every form it could leak in: as is, base64 (standard and URL-safe),
/// and the `user:secret` pairs of HTTP Basic and ECR authorization tokens.
pub fn secrets() -> Vec<String> {
    use crate::pod_identity::{AGENT_SECRET, AGENT_SESSION_TOKEN, POD_TOKEN, ROTATED_POD_TOKEN};
    use crate::proxy::{PROXY_PASSWORD, PROXY_USER};
    use crate::rancher2::{QUAY_PASSWORD, THIRD_PASSWORD, TOKEN, TOKEN_SECRET};
    use crate::sources::{EXTERNAL_ID, PASSWORD_A, PASSWORD_B, SECRET_ONE, SECRET_TWO};
    use base64::Engine as _;
    let plain = [
        NEW_PASSWORD,
        SECOND_PASSWORD,
        THIRD_PASSWORD,
        PASSWORD_A,
        PASSWORD_B,
        QUAY_PASSWORD,
        AWS_SECRET,
        AWS_SESSION_TOKEN,
        CATTLE_SECRET,
        SECRET_ONE,
        SECRET_TWO,
        TOKEN,
        TOKEN_SECRET,
        EXTERNAL_ID,
        PROXY_PASSWORD,
        POD_TOKEN,
        ROTATED_POD_TOKEN,
        AGENT_SECRET,
        AGENT_SESSION_TOKEN,
    ];
    let pairs = [
        format!("AWS:{NEW_PASSWORD}"),
        format!("AWS:{SECOND_PASSWORD}"),
        format!("AWS:{THIRD_PASSWORD}"),
        format!("AWS:{PASSWORD_A}"),
        format!("AWS:{PASSWORD_B}"),
        format!("{CATTLE_ACCESS}:{CATTLE_SECRET}"),
        format!("{PROXY_USER}:{PROXY_PASSWORD}"),
    ];
    let mut all: Vec<String> = plain.iter().map(|s| s.to_string()).collect();
    for text in plain.iter().map(|s| s.to_string()).chain(pairs.iter().cloned()) {
        all.push(base64::engine::general_purpose::STANDARD.encode(&text));
        all.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&text));
    }
    all.extend(pairs);
    all
}

/// The one check that no secret appears in something the daemon said: a log, a `/readyz` or `/metrics` answer.
/// [`run`], [`Daemon`] and [`get`] apply it to everything they see.
pub fn assert_no_secrets(output: &str) {
    for secret in secrets() {
        assert!(!output.contains(&secret), "a secret ({}…) appears in the output:\n{output}", &secret[..6]);
    }
}

/// An answer of the daemon's health server.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// GETs `path` from the daemon's health server on 127.0.0.1:`port` (bounded), and checks that the answer holds
/// no secret.
pub async fn get(port: u16, path: &str) -> Answer {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).no_proxy().build().unwrap();
    let response = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.expect("the daemon answers");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = response.text().await.unwrap();
    assert_no_secrets(&body);
    Answer { status, content_type, body }
}
