//! `standins`: the loopback stand-ins of ECR and of the Rancher 1.x API as one long-running server, for the image
//! smoke test (`scripts/image-smoke-test`) and for benchmarks.
//!
//! ```text
//! cargo run -p standins --bin standins -- [--registries N] [--matching M] [--ecr-port P] [--cattle-port Q]
//!                                         [--ignore-stdin]
//! ```
//!
//! * ECR holds `M` registries, accounts `100000000000 + i` in `us-east-1`, tokens valid 12 hours;
//! * Rancher holds `N` registries: `M` of them are those ECR hosts (each with a stale `AWS` credential), the other
//!   `N - M` are unrelated hosts (`registry-<i>.example.com`, each with its own credential the daemon must leave
//!   alone). The Rancher key pair is `cattle-access` / `cattle-secret`, the environment `1a5`.
//!
//! Both listen on 127.0.0.1, on the given ports or free ones (port 0, the default). Once listening it prints
//! `ecr=http://127.0.0.1:<port>`, `cattle=http://127.0.0.1:<port>` (append `/v2-beta` or `/v1`) and `ready`, one
//! per line, then serves until SIGTERM, SIGINT or the end of its standard input (unless `--ignore-stdin`), and
//! prints a summary of the requests it received and of the credentials now current.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use standins::cattle::{CattleConfig, FakeCattle};
use standins::ecr::{EcrRegistry, FakeEcr};

const REGION: &str = "us-east-1";
const FIRST_ACCOUNT: u64 = 100_000_000_000;
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

const USAGE: &str = "\
usage: standins [--registries N] [--matching M] [--ecr-port P] [--cattle-port Q] [--ignore-stdin]

  --registries N   registries in the stand-in Rancher (default 3)
  --matching M     how many of them are ECR registries the stand-in ECR knows (default 1, at most N)
  --ecr-port P     port of the stand-in ECR on 127.0.0.1 (default 0: a free one)
  --cattle-port Q  port of the stand-in Rancher on 127.0.0.1 (default 0: a free one)
  --ignore-stdin   keep serving when standard input ends (stop only on SIGTERM or SIGINT)

Prints `ecr=<url>`, `cattle=<url>` and `ready`, then serves until SIGTERM, SIGINT or the end of standard input.";

#[derive(Debug)]
struct Args {
    registries: usize,
    matching: usize,
    ecr_port: u16,
    cattle_port: u16,
    ignore_stdin: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args { registries: 3, matching: 1, ecr_port: 0, cattle_port: 0, ignore_stdin: false };
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--registries" => parsed.registries = number(&flag, &value(&flag)?)?,
            "--matching" => parsed.matching = number(&flag, &value(&flag)?)?,
            "--ecr-port" => parsed.ecr_port = number(&flag, &value(&flag)?)?,
            "--cattle-port" => parsed.cattle_port = number(&flag, &value(&flag)?)?,
            "--ignore-stdin" if inline.is_none() => parsed.ignore_stdin = true,
            _ => return Err(format!("unknown argument '{arg}'")),
        }
    }
    if parsed.matching > parsed.registries {
        return Err(format!(
            "--matching {} is more than --registries {}: the matching registries are among them",
            parsed.matching, parsed.registries
        ));
    }
    Ok(Some(parsed))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: '{value}' is not a valid number"))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("standins: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("standins: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(args));
    // Nothing of ours is left running; don't wait for the stdin watcher thread, which may still be reading.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(args: Args) -> ExitCode {
    let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let ecr = match FakeEcr::start_on(loopback(args.ecr_port)).await {
        Ok(ecr) => ecr,
        Err(e) => {
            eprintln!("standins: cannot listen on {} for ECR: {e}", loopback(args.ecr_port));
            return ExitCode::FAILURE;
        }
    };
    let cattle = match FakeCattle::start_on(loopback(args.cattle_port), CattleConfig::default()).await {
        Ok(cattle) => cattle,
        Err(e) => {
            eprintln!("standins: cannot listen on {} for Rancher: {e}", loopback(args.cattle_port));
            return ExitCode::FAILURE;
        }
    };

    let expires_at = (SystemTime::now() + TOKEN_LIFETIME).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    // (credential id, password ECR now hands out) of every matching registry, to tell at the end which were updated.
    let mut watched = Vec::with_capacity(args.matching);
    for i in 0..args.registries {
        if i < args.matching {
            let account_id = (FIRST_ACCOUNT + i as u64).to_string();
            let password = format!("fresh-ecr-password-{account_id}");
            ecr.add_registry(EcrRegistry {
                account_id: account_id.clone(),
                region: REGION.into(),
                password: password.clone(),
                expires_at,
            });
            let registry = cattle.add_registry(&format!("{account_id}.dkr.ecr.{REGION}.amazonaws.com"));
            let credential = cattle.add_credential(&registry, "AWS", &format!("stale-password-{account_id}"));
            watched.push((credential, password));
        } else {
            let registry = cattle.add_registry(&format!("registry-{i}.example.com"));
            cattle.add_credential(&registry, "someone", &format!("unrelated-password-{i}"));
        }
    }

    println!("ecr={}", ecr.url());
    println!("cattle={}", cattle.url());
    println!("ready");

    let reason = wait_for_stop(args.ignore_stdin).await;
    eprintln!("standins: stopping ({reason})");

    let ecr_requests = ecr.requests();
    let cattle_requests = cattle.requests();
    let ecr_ok = ecr_requests.iter().filter(|r| (200..300).contains(&r.status)).count();
    println!("requests: ecr={} (2xx {ecr_ok}) cattle={}", ecr_requests.len(), cattle_requests.len());
    let mut by_route: BTreeMap<(String, String, u16), usize> = BTreeMap::new();
    for request in &cattle_requests {
        let path = request.path_and_query.split('?').next().unwrap_or_default();
        *by_route.entry((request.method.clone(), collapse_ids(path), request.status)).or_default() += 1;
    }
    for ((method, path, status), count) in by_route {
        println!("  cattle {method} {path} -> {status}: {count}");
    }
    let credentials = cattle.credentials();
    let updated = watched
        .iter()
        .filter(|(id, password)| {
            credentials.iter().any(|c| &c.id == id && c.secret_value.as_deref() == Some(password.as_str()))
        })
        .count();
    println!("credentials: {updated}/{} matching registries hold the current ECR password", watched.len());
    ExitCode::SUCCESS
}

/// `/v2-beta/registrycredentials/1c12` → `/v2-beta/registrycredentials/{id}`, so the summary groups by route.
fn collapse_ids(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let mut chars = segment.chars();
            let is_id = chars.next().is_some_and(|c| c.is_ascii_digit())
                && segment.chars().any(|c| c.is_ascii_alphabetic())
                && segment.chars().last().is_some_and(|c| c.is_ascii_digit());
            if is_id { "{id}" } else { segment }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn wait_for_stop(ignore_stdin: bool) -> &'static str {
    let stdin_closed = async {
        if ignore_stdin {
            std::future::pending::<()>().await;
        }
        // A plain thread, not tokio's stdin: a blocking read must not hold up the runtime's shutdown.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stdin_closed => "standard input closed",
        () = interrupt => "SIGINT",
        () = terminate => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags_in_both_forms() {
        let args =
            parse(&["--registries", "10", "--matching=4", "--ecr-port", "0", "--cattle-port=8081"]).unwrap().unwrap();
        assert_eq!((args.registries, args.matching, args.ecr_port, args.cattle_port), (10, 4, 0, 8081));
        assert!(!args.ignore_stdin);
        assert!(parse(&["--ignore-stdin"]).unwrap().unwrap().ignore_stdin);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&["--matching", "4", "--registries", "3"]).is_err());
        assert!(parse(&["--registries"]).is_err());
        assert!(parse(&["--ecr-port", "70000"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn collapses_ids_in_paths() {
        assert_eq!(collapse_ids("/v2-beta/registrycredentials/1c12"), "/v2-beta/registrycredentials/{id}");
        assert_eq!(collapse_ids("/v2-beta/projects/1a5/registries"), "/v2-beta/projects/{id}/registries");
        assert_eq!(collapse_ids("/v2-beta"), "/v2-beta");
    }
}
