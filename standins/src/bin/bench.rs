//! `cargo bench-daemon [--quick] [--idle-seconds N] [--runs N] [--idle-runs N] [--sizes 1,100,1000,10000|none]
//! [--idle-registries N] [--binary PATH]`: the release daemon measured against the loopback stand-ins, printed as a markdown report on
//! stdout (progress on stderr; see BENCHMARKS.md). `--binary` measures that build (e.g. the musl one) instead of
//! building `target/release`.
//!
//! For each size N it starts a fake ECR with 10 registries and a fake Rancher 1.x holding N registries, of which
//! min(N, 10) name those ECR hosts (spread evenly over the collection, each with one credential), and runs the
//! daemon with `--once` R times, each against fresh stand-ins. Per run: wall time from spawn to exit, peak RSS
//! and CPU time of the daemon (`wait4`), the requests Rancher received by kind, and the time from spawn to the
//! first PUT. Then it starts the daemon without `--once`, waits for its first "Refresh complete" and watches it
//! sleep for the idle window: CPU time, context switches and scheduler time slices of every thread, and RSS.
//!
//! Peak RSS goes through a small helper (this binary, `__measure`): `ru_maxrss` of a child includes the memory of
//! the process that spawned it (Linux folds the old address space's high-water mark into it at exec, and with
//! `posix_spawn` that is the parent's), so the daemon must be spawned by a process that is itself small.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use standins::cattle::{CattleConfig, FakeCattle};
use standins::ecr::{EcrRegistry, FakeEcr};

const BINARY: &str = "rancher-ecr-credentials";
const REGION: &str = "us-east-1";
const ECR_REGISTRIES: usize = 10;
/// Items per page the daemon asks for (`limit=1000`).
const DAEMON_PAGE: usize = 1000;
/// The predecessor read `GET /registries` without a limit: Cattle's default page of 100.
const PREDECESSOR_PAGE: usize = 100;

struct Options {
    runs: usize,
    idle_seconds: u64,
    idle_runs: usize,
    sizes: Vec<usize>,
    idle_registries: usize,
    binary: Option<PathBuf>,
}

fn usage() -> &'static str {
    "usage: cargo bench-daemon [--quick] [--idle-seconds N] [--runs N] [--idle-runs N] \
     [--sizes 1,100,1000,10000|none] [--idle-registries N] [--binary PATH]\n\
     --quick: 3 runs per size and 3 daemon-mode runs with a 10 s idle window (defaults: 5 runs; 3 × 60 s)"
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        runs: 5,
        idle_seconds: 60,
        idle_runs: 3,
        sizes: vec![1, 100, 1000, 10_000],
        idle_registries: 10_000,
        binary: None,
    };
    let (mut runs, mut idle) = (None, None);
    let mut it = args.iter();
    let number = |flag: &str, value: Option<&String>| -> Result<u64, String> {
        value.and_then(|v| v.parse().ok()).ok_or_else(|| format!("{flag} needs a number\n{}", usage()))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                options.runs = 3;
                options.idle_seconds = 10;
            }
            "--runs" => runs = Some(number("--runs", it.next())?.max(1) as usize),
            "--idle-seconds" => idle = Some(number("--idle-seconds", it.next())?),
            "--idle-runs" => options.idle_runs = number("--idle-runs", it.next())? as usize,
            "--idle-registries" => options.idle_registries = number("--idle-registries", it.next())? as usize,
            "--sizes" => {
                let list = it.next().ok_or_else(|| format!("--sizes needs a list\n{}", usage()))?;
                options.sizes = list
                    .split(',')
                    .filter(|s| *s != "none")
                    .map(|s| s.trim().parse::<usize>().map_err(|_| format!("--sizes: '{s}' is not a number")))
                    .collect::<Result<_, _>>()?;
            }
            "--binary" => {
                let path = it.next().ok_or_else(|| format!("--binary needs a path\n{}", usage()))?;
                options.binary = Some(PathBuf::from(path));
            }
            "-h" | "--help" => return Err(usage().to_string()),
            other => return Err(format!("unknown argument '{other}'\n{}", usage())),
        }
    }
    options.runs = runs.unwrap_or(options.runs);
    options.idle_seconds = idle.unwrap_or(options.idle_seconds);
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__measure") {
        return measure(&args[1..]);
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let built = match options.binary.clone() {
        Some(path) if path.exists() => Ok(path),
        Some(path) => Err(format!("--binary: {} does not exist", path.display())),
        None => build_daemon(),
    };
    let daemon = match built {
        Ok(path) => path,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Two workers: the stand-ins answer while blocking threads wait for the daemon.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(options, daemon)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The helper: spawn the daemon from a small process and report what wait4 says about it.

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn wait4(pid: i32) -> std::io::Result<(i32, libc::rusage)> {
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: plain system call on our own child, with pointers to locals.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn exit_code(status: i32) -> i64 {
    if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) as i64 } else { -(libc::WTERMSIG(status) as i64) }
}

fn micros(tv: libc::timeval) -> i64 {
    tv.tv_sec * 1_000_000 + tv.tv_usec
}

/// `__measure <program> [args...]`: runs the program with this process's environment, its stdout sent to our
/// stderr, and prints one JSON line about it on stdout.
fn measure(args: &[String]) -> ExitCode {
    let Some(program) = args.first() else {
        eprintln!("bench __measure: no program");
        return ExitCode::from(2);
    };
    let helper_hwm_kb = status_fields(Path::new("/proc/self/status")).get("VmHWM").copied().unwrap_or(0);
    let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    };
    let spawn_ns = monotonic_ns();
    let child = Command::new(program).args(&args[1..]).stdin(Stdio::null()).stdout(stdout).spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("bench __measure: cannot run {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid = child.id() as i32;
    let (status, usage) = match wait4(pid) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("bench __measure: wait4: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exit_ns = monotonic_ns();
    let report = json!({
        "spawn_ns": spawn_ns, "exit_ns": exit_ns, "exit_code": exit_code(status),
        "maxrss_kb": usage.ru_maxrss, "utime_us": micros(usage.ru_utime), "stime_us": micros(usage.ru_stime),
        "nvcsw": usage.ru_nvcsw, "nivcsw": usage.ru_nivcsw, "helper_hwm_kb": helper_hwm_kb,
    });
    println!("{report}");
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------------------------
// Set-up.

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("standins/ sits in the workspace").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// `cargo build --release --bin rancher-ecr-credentials` from the workspace root; returns the binary's path.
fn build_daemon() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: building the daemon (cargo build --release --bin {BINARY})");
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", BINARY])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo to build the daemon: {e}"))?;
    if !status.success() {
        return Err("building the daemon failed".into());
    }
    let path = target_dir().join("release").join(BINARY);
    if path.exists() { Ok(path) } else { Err(format!("the daemon was not found at {}", path.display())) }
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

fn account(i: usize) -> String {
    format!("{}", 100_000_000_000u64 + i as u64)
}

fn ecr_host(i: usize) -> String {
    format!("{}.dkr.ecr.{REGION}.amazonaws.com", account(i))
}

fn password(i: usize) -> String {
    format!("bench-fresh-ecr-password-for-{}", account(i))
}

/// Where the matching registries sit among `n`: spread evenly, so the scan has to reach the last page.
fn matching_positions(n: usize) -> Vec<usize> {
    let m = n.min(ECR_REGISTRIES);
    (0..m).map(|k| k * n / m).collect()
}

struct StandIns {
    ecr: FakeEcr,
    cattle: FakeCattle,
    /// Credential id → the password it must end up with.
    expected: Vec<(String, String)>,
}

async fn stand_ins(n: usize) -> StandIns {
    let ecr = FakeEcr::start().await;
    for i in 0..ECR_REGISTRIES {
        ecr.add_registry(EcrRegistry {
            account_id: account(i),
            region: REGION.into(),
            password: password(i),
            expires_at: now_secs() + 12.0 * 3600.0,
        });
    }
    let cattle = FakeCattle::start(CattleConfig::default()).await;
    let positions = matching_positions(n);
    let mut expected = Vec::new();
    for index in 0..n {
        match positions.iter().position(|&p| p == index) {
            Some(k) => {
                let registry = cattle.add_registry(&ecr_host(k));
                let credential = cattle.add_credential(&registry, "AWS", "expired-password-from-yesterday");
                expected.push((credential, password(k)));
            }
            None => {
                cattle.add_registry(&format!("registry-{index}.apps.example.com"));
            }
        }
    }
    StandIns { ecr, cattle, expected }
}

/// The environment of `docker run -e ...`, as the demo uses it.
fn daemon_env(s: &StandIns, log_level: &str) -> Vec<(String, String)> {
    let defaults = CattleConfig::default();
    let ids: Vec<String> = (0..ECR_REGISTRIES).map(account).collect();
    [
        ("CATTLE_URL", format!("{}/v2-beta", s.cattle.url())),
        ("CATTLE_ACCESS_KEY", defaults.access_key),
        ("CATTLE_SECRET_KEY", defaults.secret_key),
        ("AWS_REGION", REGION.into()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCH".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret-key".into()),
        ("AWS_ENDPOINT_URL", s.ecr.url()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_ECR_REGISTRY_IDS", ids.join(",")),
        ("LOG_LEVEL", log_level.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Maps the stand-ins' `Instant`s onto CLOCK_MONOTONIC nanoseconds, which the helper reports.
#[derive(Clone, Copy)]
struct Clock {
    instant: Instant,
    ns: u64,
}

impl Clock {
    fn now() -> Clock {
        Clock { instant: Instant::now(), ns: monotonic_ns() }
    }

    fn ns(&self, at: Instant) -> i128 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.ns as i128 + after.as_nanos() as i128,
            None => self.ns as i128 - self.instant.duration_since(at).as_nanos() as i128,
        }
    }
}

fn ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------------------------
// What Rancher received.

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Requests {
    pages: usize,
    lookups: usize,
    puts: usize,
    other: usize,
    ecr: usize,
}

fn count_requests(s: &StandIns) -> Requests {
    let mut counts = Requests { ecr: s.ecr.requests().len(), ..Requests::default() };
    for request in s.cattle.requests() {
        let path = request.path_and_query.split('?').next().unwrap_or_default().to_ascii_lowercase();
        match request.method.as_str() {
            "GET" if path.ends_with("/registries") => counts.pages += 1,
            "GET" if path.ends_with("/registrycredentials") => counts.lookups += 1,
            "PUT" => counts.puts += 1,
            _ => counts.other += 1,
        }
    }
    counts
}

/// Pages + one lookup per matching registry + one PUT per credential.
fn expected_requests(n: usize) -> usize {
    let m = n.min(ECR_REGISTRIES);
    n.div_ceil(DAEMON_PAGE).max(1) + m + m
}

fn credentials_refreshed(s: &StandIns) -> usize {
    let now = s.cattle.credentials();
    s.expected
        .iter()
        .filter(|(id, password)| now.iter().any(|c| &c.id == id && c.secret_value.as_deref() == Some(password)))
        .count()
}

// ---------------------------------------------------------------------------------------------------------------
// `--once` runs.

struct OnceRun {
    wall_ms: f64,
    maxrss_kb: i64,
    cpu_ms: f64,
    first_put_ms: f64,
    first_request_ms: f64,
    /// First Rancher request to last: the Rancher part of the cycle.
    rancher_ms: f64,
    requests: Requests,
    refreshed: usize,
    helper_hwm_kb: i64,
    ctx_switches: i64,
}

async fn once_run(daemon: &Path, n: usize) -> Result<OnceRun, String> {
    let s = stand_ins(n).await;
    let env = daemon_env(&s, "warn");
    let helper = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let daemon = daemon.to_path_buf();
    let clock = Clock::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(helper)
            .arg("__measure")
            .arg(&daemon)
            .arg("--once")
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
    })
    .await
    .map_err(|e| format!("the waiting thread failed: {e}"))?
    .map_err(|e| format!("cannot run the helper: {e}"))?;
    let logs = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the helper's report is unreadable ({e}); its output:\n{logs}"))?;
    let int = |name: &str| report[name].as_i64().unwrap_or(0);
    if int("exit_code") != 0 {
        return Err(format!("the daemon exited with {} (N = {n}); its output:\n{logs}", int("exit_code")));
    }
    let spawn_ns = int("spawn_ns") as i128;
    let times = s.cattle.request_times();
    let first_put = times.iter().filter(|(m, _)| m == "PUT").map(|(_, at)| clock.ns(*at)).min();
    let first = times.iter().map(|(_, at)| clock.ns(*at)).min();
    let last = times.iter().map(|(_, at)| clock.ns(*at)).max();
    let requests = count_requests(&s);
    let refreshed = credentials_refreshed(&s);
    if refreshed != s.expected.len() {
        return Err(format!("only {refreshed} of {} credentials were refreshed (N = {n}):\n{logs}", s.expected.len()));
    }
    Ok(OnceRun {
        wall_ms: ms(int("exit_ns") as i128 - spawn_ns),
        maxrss_kb: int("maxrss_kb"),
        cpu_ms: (int("utime_us") + int("stime_us")) as f64 / 1000.0,
        first_put_ms: first_put.map(|t| ms(t - spawn_ns)).unwrap_or(f64::NAN),
        first_request_ms: first.map(|t| ms(t - spawn_ns)).unwrap_or(f64::NAN),
        rancher_ms: match (first, last) {
            (Some(a), Some(b)) => ms(b - a),
            _ => f64::NAN,
        },
        requests,
        refreshed,
        helper_hwm_kb: int("helper_hwm_kb"),
        ctx_switches: int("nvcsw") + int("nivcsw"),
    })
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min_max(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values.into_iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

struct SizeResult {
    n: usize,
    runs: Vec<OnceRun>,
}

// ---------------------------------------------------------------------------------------------------------------
// The sleeping daemon.

/// `Key: value kB` lines of a /proc status file.
fn status_fields(path: &Path) -> BTreeMap<String, i64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let number = value.split_whitespace().next()?.parse().ok()?;
            Some((key.to_string(), number))
        })
        .collect()
}

#[derive(Clone, Debug, Default)]
struct ThreadSample {
    name: String,
    switches: i64,
    /// Times on a CPU and nanoseconds run, from schedstat (when the kernel has it).
    slices: i64,
    run_ns: i64,
}

#[derive(Clone, Debug, Default)]
struct Sample {
    /// utime + stime of the whole process (threads that ended included), in clock ticks.
    ticks: i64,
    threads: BTreeMap<String, ThreadSample>,
    status: BTreeMap<String, i64>,
}

fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as i64 }
}

fn sample(pid: u32) -> Sample {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<i64> = after_name.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // Fields 14 and 15 of stat (utime, stime); the list starts at field 3.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    let mut threads = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(proc_dir.join("task")) {
        for task in tasks.flatten() {
            let tid = task.file_name().to_string_lossy().into_owned();
            let status_text = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let name = status_text
                .lines()
                .find_map(|l| l.strip_prefix("Name:"))
                .map(|n| n.trim().to_string())
                .unwrap_or_default();
            let fields = status_fields(&task.path().join("status"));
            let switches = fields.get("voluntary_ctxt_switches").copied().unwrap_or(0)
                + fields.get("nonvoluntary_ctxt_switches").copied().unwrap_or(0);
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            let sched: Vec<i64> = schedstat.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
            threads.insert(
                tid,
                ThreadSample {
                    name,
                    switches,
                    run_ns: sched.first().copied().unwrap_or(0),
                    slices: sched.get(2).copied().unwrap_or(0),
                },
            );
        }
    }
    Sample { ticks, threads, status: status_fields(&proc_dir.join("status")) }
}

/// Context switches and time slices between two samples; threads that came or went count as activity.
fn activity(before: &Sample, after: &Sample) -> (i64, i64, i64, Vec<String>) {
    let (mut switches, mut slices, mut run_ns) = (0, 0, 0);
    let mut changes = Vec::new();
    for (tid, now) in &after.threads {
        match before.threads.get(tid) {
            Some(then) => {
                switches += now.switches - then.switches;
                slices += now.slices - then.slices;
                run_ns += now.run_ns - then.run_ns;
            }
            None => {
                switches += now.switches;
                slices += now.slices;
                run_ns += now.run_ns;
                changes.push(format!("thread {tid} ({}) started", now.name));
            }
        }
    }
    for (tid, then) in &before.threads {
        if !after.threads.contains_key(tid) {
            changes.push(format!("thread {tid} ({}) ended", then.name));
        }
    }
    (switches, slices, run_ns, changes)
}

struct IdleResult {
    n: usize,
    window: Duration,
    ready_ms: f64,
    first_put_ms: f64,
    start: Sample,
    end: Sample,
    cpu_ticks: i64,
    switches: i64,
    slices: i64,
    run_ns: i64,
    /// Seconds into the window at which something ran, with what.
    wakeups: Vec<String>,
    requests_during_window: usize,
    shutdown_ms: f64,
    exit_code: i64,
    lifetime_maxrss_kb: i64,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn idle_run(daemon: &Path, n: usize, window: Duration) -> Result<IdleResult, String> {
    let s = stand_ins(n).await;
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let mut env = daemon_env(&s, "info");
    env.push(("LISTEN_PORT".into(), port.to_string()));
    env.push(("LISTEN_ADDRESS".into(), "127.0.0.1".into()));
    let clock = Clock::now();
    let spawn_ns = monotonic_ns() as i128;
    let mut child = Command::new(daemon)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the daemon: {e}"))?;
    let pid = child.id();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut logs = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => {
                logs.push_str(&line);
                logs.push('\n');
                if line.contains("Refresh complete") {
                    break;
                }
            }
            Ok(None) | Err(_) => {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                let _ = child.wait();
                return Err(format!("no 'Refresh complete' from the daemon (N = {n}); its output:\n{logs}"));
            }
        }
    }
    let ready_ns = monotonic_ns() as i128;
    let first_put = s.cattle.request_times().iter().filter(|(m, _)| m == "PUT").map(|(_, at)| clock.ns(*at)).min();
    let requests_before = s.cattle.requests().len() + s.ecr.requests().len();
    let start = sample(pid);
    let started = tokio::time::Instant::now();
    let mut previous = start.clone();
    let mut wakeups = Vec::new();
    let mut tick = tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    while started.elapsed() < window {
        tick.tick().await;
        let now = sample(pid);
        let (switches, slices, _, changes) = activity(&previous, &now);
        if switches != 0 || slices != 0 || now.ticks != previous.ticks || !changes.is_empty() {
            let mut what = format!(
                "{:.0} s: {switches} context switches, {slices} time slices, {} CPU ticks",
                started.elapsed().as_secs_f64(),
                now.ticks - previous.ticks
            );
            for change in changes {
                what.push_str("; ");
                what.push_str(&change);
            }
            wakeups.push(what);
        }
        previous = now;
    }
    let end = sample(pid);
    let window = started.elapsed();
    let requests_during_window = s.cattle.requests().len() + s.ecr.requests().len() - requests_before;
    let (switches, slices, run_ns, _) = activity(&start, &end);
    let term_ns = monotonic_ns() as i128;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let (status, usage) = tokio::task::spawn_blocking(move || wait4(pid as i32))
        .await
        .map_err(|e| format!("the waiting thread failed: {e}"))?
        .map_err(|e| format!("wait4: {e}"))?;
    let exited_ns = monotonic_ns() as i128;
    Ok(IdleResult {
        n,
        window,
        ready_ms: ms(ready_ns - spawn_ns),
        first_put_ms: first_put.map(|t| ms(t - spawn_ns)).unwrap_or(f64::NAN),
        cpu_ticks: end.ticks - start.ticks,
        start,
        end,
        switches,
        slices,
        run_ns,
        wakeups,
        requests_during_window,
        shutdown_ms: ms(exited_ns - term_ns),
        exit_code: exit_code(status),
        // Includes the bench's own high-water mark (spawned directly, see the module docs): for reference only.
        lifetime_maxrss_kb: usage.ru_maxrss,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Sizes of what ships.

fn file_size(path: &Path) -> Option<(u64, String)> {
    let meta = std::fs::metadata(path).ok()?;
    let described = Command::new("file")
        .arg("-b")
        .arg(path)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Some((meta.len(), described))
}

/// Images whose name mentions the daemon, with their size in bytes, from `../shared/tools/oci` when it exists.
fn images() -> Vec<(String, u64)> {
    let oci = workspace_root().join("../shared/tools/oci");
    if !oci.exists() {
        return Vec::new();
    }
    let listed = Command::new(&oci).args(["images", "--format", "{{.Repository}}:{{.Tag}}"]).output();
    let Ok(listed) = listed else { return Vec::new() };
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|name| name.contains(BINARY))
        .filter_map(|name| {
            let size = Command::new(&oci).args(["size", name]).output().ok()?;
            let bytes = String::from_utf8_lossy(&size.stdout).trim().parse().ok()?;
            Some((name.to_string(), bytes))
        })
        .collect()
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------------------------------
// The report.

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = status_fields(Path::new("/proc/meminfo")).get("MemTotal").copied().unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "- CPU: {model}, {cpus} CPUs available\n- memory: {:.1} GiB\n- kernel: Linux {}\n- toolchain: {rustc}\n",
        memory as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn predecessor(n: usize) -> (usize, usize) {
    let found = matching_positions(n).iter().filter(|&&p| p < PREDECESSOR_PAGE).count();
    (1 + 2 * found, found)
}

async fn bench(options: Options, daemon: PathBuf) -> Result<(), String> {
    let mut results = Vec::new();
    for &n in &options.sizes {
        let mut runs = Vec::new();
        for r in 0..options.runs {
            let run = once_run(&daemon, n).await?;
            eprintln!(
                "bench: N = {n:>5} run {}/{}: {:.1} ms, peak RSS {:.2} MiB, first PUT at {:.1} ms, {:?}",
                r + 1,
                options.runs,
                run.wall_ms,
                run.maxrss_kb as f64 / 1024.0,
                run.first_put_ms,
                run.requests
            );
            runs.push(run);
        }
        results.push(SizeResult { n, runs });
    }
    let mut idles = Vec::new();
    for r in 0..options.idle_runs {
        eprintln!(
            "bench: daemon mode with {} registries, idle window {} s, run {}/{}",
            options.idle_registries,
            options.idle_seconds,
            r + 1,
            options.idle_runs
        );
        idles.push(idle_run(&daemon, options.idle_registries, Duration::from_secs(options.idle_seconds)).await?);
    }

    println!("## Machine\n\n{}", machine());
    println!("Daemon measured: `{}`\n", daemon.strip_prefix(workspace_root()).unwrap_or(&daemon).display());
    println!("## `--once` cycles ({} runs per size, fresh stand-ins per run; medians)\n", options.runs);
    println!(
        "| registries in Rancher | matching | GET pages | GET credential lookups | PUT | other Rancher | ECR calls | pages+lookups+PUTs expected | wall ms, spawn→exit (min–max) | peak RSS MiB (min–max) | ms to first PUT | ms first→last Rancher request | daemon CPU ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in &results {
        let first = &size.runs[0].requests;
        let same = size.runs.iter().all(|r| r.requests == *first);
        let (wall_lo, wall_hi) = min_max(size.runs.iter().map(|r| r.wall_ms));
        let (rss_lo, rss_hi) = min_max(size.runs.iter().map(|r| r.maxrss_kb as f64 / 1024.0));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {}{} | {:.1} ({:.1}–{:.1}) | {:.2} ({:.2}–{:.2}) | {:.1} | {:.1} | {:.1} |",
            size.n,
            size.runs[0].refreshed,
            first.pages,
            first.lookups,
            first.puts,
            first.other,
            first.ecr,
            expected_requests(size.n),
            if same { "" } else { " (counts varied between runs)" },
            median(size.runs.iter().map(|r| r.wall_ms)),
            wall_lo,
            wall_hi,
            median(size.runs.iter().map(|r| r.maxrss_kb as f64 / 1024.0)),
            rss_lo,
            rss_hi,
            median(size.runs.iter().map(|r| r.first_put_ms)),
            median(size.runs.iter().map(|r| r.rancher_ms)),
            median(size.runs.iter().map(|r| r.cpu_ms)),
        );
    }
    let helper_hwm = results.iter().flat_map(|s| s.runs.iter().map(|r| r.helper_hwm_kb)).max().unwrap_or(0);
    let ctx = median(results.iter().flat_map(|s| s.runs.iter().map(|r| r.ctx_switches as f64)));
    let first_request = median(results.iter().flat_map(|s| s.runs.iter().map(|r| r.first_request_ms)));
    println!(
        "\nPeak RSS is `ru_maxrss` of the daemon spawned by a helper whose own high-water mark was at most {:.2} MiB \
         (a floor on the figure, far below it). Median time from spawn to the first Rancher request: {first_request:.1} ms; \
         median context switches per run: {ctx:.0}.\n",
        helper_hwm as f64 / 1024.0
    );

    println!("## The predecessor on the same data (its wire behaviour, not run)\n");
    println!("| registries in Rancher | its requests per cycle | credentials it refreshes | ours |");
    println!("|---:|---:|---:|---:|");
    for size in &results {
        let (requests, found) = predecessor(size.n);
        let ours = size.runs[0].requests;
        println!(
            "| {} | {requests} (1 page of {PREDECESSOR_PAGE} + {found} lookups + {found} PUTs) | {found} of {} | {} requests, {} of {} |",
            size.n,
            size.n.min(ECR_REGISTRIES),
            ours.pages + ours.lookups + ours.puts,
            size.runs[0].refreshed,
            size.n.min(ECR_REGISTRIES)
        );
    }

    let kb = |s: &Sample, key: &str| s.status.get(key).copied().unwrap_or(0) as f64 / 1024.0;
    let ticks_per_second = clock_ticks_per_second();
    if let Some(first) = idles.first() {
        println!(
            "\n## Sleeping between refreshes ({} registries, daemon mode, {} runs, window {:.0} s from the first \"Refresh complete\")\n",
            first.n,
            idles.len(),
            first.window.as_secs_f64()
        );
        println!(
            "| run | \"Refresh complete\" ms after spawn | first PUT ms | CPU ticks in window | scheduler run time ms | context switches | times on a CPU | threads | requests to stand-ins | VmRSS MiB start → end | RssAnon MiB | RssFile MiB | VmHWM MiB | SIGTERM → exit ms (code) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (i, idle) in idles.iter().enumerate() {
            println!(
                "| {} | {:.1} | {:.1} | {} | {:.3} | {} | {} | {} → {} | {} | {:.2} → {:.2} | {:.2} | {:.2} | {:.2} | {:.1} ({}) |",
                i + 1,
                idle.ready_ms,
                idle.first_put_ms,
                idle.cpu_ticks,
                idle.run_ns as f64 / 1e6,
                idle.switches,
                idle.slices,
                idle.start.threads.len(),
                idle.end.threads.len(),
                idle.requests_during_window,
                kb(&idle.start, "VmRSS"),
                kb(&idle.end, "VmRSS"),
                kb(&idle.end, "RssAnon"),
                kb(&idle.end, "RssFile"),
                kb(&idle.end, "VmHWM"),
                idle.shutdown_ms,
                idle.exit_code,
            );
        }
        println!(
            "\nMedians: VmRSS while sleeping {:.2} MiB (RssAnon {:.2}, RssFile {:.2}), CPU ticks {} ({} ticks/s), context switches {}.",
            median(idles.iter().map(|i| kb(&i.end, "VmRSS"))),
            median(idles.iter().map(|i| kb(&i.end, "RssAnon"))),
            median(idles.iter().map(|i| kb(&i.end, "RssFile"))),
            median(idles.iter().map(|i| i.cpu_ticks as f64)),
            ticks_per_second,
            median(idles.iter().map(|i| i.switches as f64)),
        );
        println!(
            "Threads while sleeping: {}.",
            first.start.threads.values().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        );
        let wakeups: Vec<String> = idles
            .iter()
            .enumerate()
            .flat_map(|(i, idle)| idle.wakeups.iter().map(move |w| format!("run {}, {w}", i + 1)))
            .collect();
        if wakeups.is_empty() {
            println!("Wake-ups, sampled every second in every window: none.");
        } else {
            println!("Wake-ups, sampled every second:");
            for w in wakeups {
                println!("- {w}");
            }
        }
        println!(
            "(`ru_maxrss` of these runs, {:.1} MiB at most, is not reported: they are spawned by the bench itself, whose own memory it includes.)",
            idles.iter().map(|i| i.lifetime_maxrss_kb).max().unwrap_or(0) as f64 / 1024.0
        );
    }

    println!("\n## Sizes\n");
    let target = target_dir();
    for (label, path) in [
        ("release (host target, what this bench ran)", target.join("release").join(BINARY)),
        ("musl static (what ships)", target.join("x86_64-unknown-linux-musl").join("release").join(BINARY)),
    ] {
        match file_size(&path) {
            Some((bytes, described)) => println!(
                "- {label}: {} bytes = {:.2} MiB ({:.2} MB) — `{}`: {described}",
                bytes,
                mib(bytes as f64),
                bytes as f64 / 1e6,
                path.strip_prefix(workspace_root()).unwrap_or(&path).display()
            ),
            None => println!("- {label}: not built (`{}`)", path.display()),
        }
    }
    let images = images();
    if images.is_empty() {
        println!("- container image: none found; its size comes from scripts/build-image");
    }
    for (name, bytes) in images {
        println!(
            "- container image {name}: {bytes} bytes = {:.2} MiB ({:.2} MB)",
            mib(bytes as f64),
            bytes as f64 / 1e6
        );
    }
    Ok(())
}
