//! A real Prometheus scraping the real daemon: what the operator's tools read is what the daemon serves.
//!
//! The daemon runs against the stand-ins (a Rancher 1.x target, with one refused update so that failures and
//! errors have series), and a second one with a Kubernetes target against the test API server (for the places).
//! A `prometheus` server on 127.0.0.1 scrapes both every second, as a ServiceMonitor would (with the
//! `namespace` and `pod` labels the Prometheus Operator adds), and evaluates the alert rules of
//! deploy/kubernetes/monitoring. Through Prometheus' HTTP API the test checks that the rules load and stay quiet,
//! that every metric the rules and the Grafana dashboard (deploy/monitoring/grafana) use exists with exactly its
//! labels, that every label they name is there, and that each dashboard query and variable returns data.
//!
//! The test needs a `prometheus` binary (Debian's package; PATH, or PROMETHEUS) and the test API server
//! (`../shared/tools/k8s`), so it is `#[ignore]`d like the Kubernetes tests: `cargo test` reports it as ignored,
//! `cargo test -- --include-ignored` (.ci/run) runs it and fails without either. Every wait has a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use standins::{Fault, FaultKind};
use tokio::process::{Child, Command};

use crate::harness::*;

/// The whole test, Prometheus' start and every wait included.
const TEST_LIMIT: Duration = Duration::from_secs(150);
/// How long Prometheus may take to start, and a condition over its data to become true.
const WAIT_LIMIT: Duration = Duration::from_secs(45);
const JOB: &str = "rancher-ecr-credentials";
/// The namespace the Prometheus Operator's relabelling gives every series of the pods it scrapes.
const NAMESPACE: &str = "rancher-ecr-credentials";
/// Labels of every scraped series that come from the scrape, not from the daemon.
const SCRAPE_LABELS: [&str; 5] = ["__name__", "job", "instance", "namespace", "pod"];
/// Every metric the rules and the dashboard may use, with exactly the labels the daemon gives it (README, Metrics).
const METRICS: [(&str, &[&str]); 9] = [
    ("rancher_ecr_credentials_refreshes_total", &["target", "result"]),
    ("rancher_ecr_credentials_last_success_timestamp_seconds", &["target"]),
    ("rancher_ecr_credentials_token_expiry_timestamp_seconds", &["target", "registry"]),
    ("rancher_ecr_credentials_refresh_duration_seconds_bucket", &["le"]),
    ("rancher_ecr_credentials_errors_total", &["source", "kind"]),
    ("rancher_ecr_credentials_ready", &[]),
    ("rancher_ecr_credentials_build_info", &["version", "commit"]),
    ("rancher_ecr_credentials_places", &["target", "state"]),
    ("rancher_ecr_credentials_pull_failures_total", &["reason"]),
];
/// Shown on the dashboard before the daemon has it: leader election comes later.
const ANNOUNCED: &str = "rancher_ecr_credentials_leader";

fn repo_file(path: &str) -> String {
    let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `prometheus` binary (PROMETHEUS, else PATH); panics, saying how to install it, when there is none.
fn prometheus_binary(test: &str) -> PathBuf {
    std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join("prometheus"))
                .find(|path| path.is_file())
        })
        .unwrap_or_else(|| panic!("{test}: needs a prometheus binary: apt-get install prometheus (or set PROMETHEUS)"))
}

/// The rules of deploy/kubernetes/monitoring/prometheusrule.yaml as a Prometheus rule file: its `spec`, which is
/// `groups:`, one level up.
fn rule_file() -> String {
    let text = repo_file("deploy/kubernetes/monitoring/prometheusrule.yaml");
    let (_, spec) = text.split_once("\nspec:\n").expect("the PrometheusRule has a spec");
    assert!(spec.lines().all(|l| l.is_empty() || l.starts_with("  ")), "spec is the last key:\n{spec}");
    let groups: Vec<&str> = spec.lines().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect();
    assert!(groups[0].starts_with("groups:"), "{spec}");
    groups.join("\n") + "\n"
}

/// A Prometheus server on 127.0.0.1 with its own storage; killed and removed when dropped.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    port: u16,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping each `(port, pod)` every second and evaluating `rules`; waits (bounded) until it
    /// is ready.
    async fn start(binary: &PathBuf, targets: &[(u16, &str)], rules: &str) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("recs-prometheus-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("rules.yaml"), rules).unwrap();
        let static_configs: String = targets
            .iter()
            .map(|(port, pod)| {
                format!(
                    "      - targets: [\"127.0.0.1:{port}\"]\n        labels: {{namespace: {NAMESPACE}, pod: {pod}}}\n"
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yaml]\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n{static_configs}"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).no_proxy().build().unwrap();
        let prometheus = Prometheus { child, dir, port, client };
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        let started = Instant::now();
        loop {
            if let Ok(answer) = prometheus.client.get(&ready).send().await
                && answer.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "Prometheus not ready within {WAIT_LIMIT:?}:\n{}",
                prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// GETs an API path; returns `data` of a successful answer.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = url::Url::parse_with_params(&format!("http://127.0.0.1:{}{path}", self.port), params).unwrap();
        let answer = self.client.get(url.clone()).send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let body: Value = answer.json().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(body["status"], "success", "{url}: {body}");
        body["data"].clone()
    }

    /// An instant query's result (a vector, or a scalar as one element).
    async fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api("/api/v1/query", &[("query", expr)]).await;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => data["result"].as_array().unwrap().clone(),
            _ => vec![data["result"].clone()],
        }
    }

    /// Waits (bounded) until `expr` returns data; returns it, or panics saying `what`.
    async fn query_until_data(&self, expr: &str, what: &str) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let result = self.query(expr).await;
            if !result.is_empty() {
                return result;
            }
            assert!(started.elapsed() < WAIT_LIMIT, "{what}: no data within {WAIT_LIMIT:?} from {expr}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The label sets of a metric's series.
    async fn series(&self, metric: &str) -> Vec<BTreeMap<String, String>> {
        let data = self.api("/api/v1/series", &[("match[]", metric)]).await;
        serde_json::from_value(data).unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!("prometheus log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Our metric names in a PromQL expression.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("rancher_ecr_credentials_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The words inside each `open … close` of `text` (label names of `by (…)`, `{{…}}`, matchers).
fn words_between(text: &str, open: &str, close: char) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for part in text.split(open).skip(1) {
        let inside = part.split(close).next().unwrap_or("");
        for item in inside.split(',') {
            let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                words.insert(name);
            }
        }
    }
    words
}

/// The label names an expression and its legend or annotations refer to: grouping, matchers, `{{label}}`,
/// `$labels.label`.
fn labels_named(expr: &str, text: &str) -> BTreeSet<String> {
    let mut labels = words_between(expr, "by (", ')');
    labels.extend(words_between(expr, "{", '}'));
    labels.extend(words_between(text, "{{", '}'));
    labels.extend(words_between(text, "$labels.", ' '));
    labels
}

/// Grafana's substitutions for "All" in every variable, and a rate interval a few scrapes long.
fn grafana_substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s").replace("$job", ".*").replace("$target", ".*")
}

/// A PromQL expression of the dashboard or the rules, with what it belongs to (a panel's title, an alert's name)
/// and the text that names labels beside it (the legend; the rule's annotations).
struct Query {
    what: String,
    expr: String,
    text: String,
}

/// Every query of the dashboard, and its variables' `label_values(selector, label)` as (selector, label).
fn dashboard() -> (Vec<Query>, Vec<(String, String)>) {
    let board: Value =
        serde_json::from_str(&repo_file("deploy/monitoring/grafana/rancher-ecr-credentials.json")).unwrap();
    let mut queries = Vec::new();
    let panels = board["panels"].as_array().unwrap();
    let nested = panels.iter().filter_map(|p| p["panels"].as_array()).flatten();
    for panel in panels.iter().chain(nested).filter(|p| p["type"] != "row") {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(Query {
                what: panel["title"].as_str().unwrap().to_string(),
                expr: target["expr"].as_str().unwrap().to_string(),
                text: target["legendFormat"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    let mut variables = Vec::new();
    for variable in board["templating"]["list"].as_array().unwrap().iter().filter(|v| v["type"] == "query") {
        let query = variable["query"].as_str().expect("a variable's query is a string");
        let inner = query.strip_prefix("label_values(").and_then(|d| d.strip_suffix(')')).unwrap();
        let (selector, label) = inner.rsplit_once(',').unwrap();
        variables.push((grafana_substitute(selector.trim()), label.trim().to_string()));
    }
    (queries, variables)
}

/// Every alert of the rule file: its name, expression and whole text.
fn alerts(rules: &str) -> Vec<Query> {
    rules
        .split("- alert: ")
        .skip(1)
        .map(|chunk| {
            let what = chunk.lines().next().unwrap().trim().to_string();
            let expr = chunk.lines().find_map(|l| l.trim().strip_prefix("expr: ")).unwrap().to_string();
            Query { what, expr, text: chunk.to_string() }
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs prometheus (apt-get install prometheus) and a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_real_prometheus_scrapes_the_daemon_and_finds_what_the_rules_and_the_dashboard_use() {
    let test = "a_real_prometheus_scrapes_the_daemon";
    let binary = prometheus_binary(test);
    tokio::time::timeout(TEST_LIMIT, scrape_and_check(test, binary))
        .await
        .unwrap_or_else(|_| panic!("{test}: did not finish within {TEST_LIMIT:?}"));
}

async fn scrape_and_check(test: &str, binary: PathBuf) {
    let started = Instant::now();
    // The Rancher 1.x target; its first update is refused once, so failures and errors have series.
    let (ecr, cattle) = (ecr().await, cattle().await);
    let registry = cattle.add_registry(&host(ACCOUNT));
    cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    cattle.set_fault(Fault::new(FaultKind::Status(500)).method("PUT").times(1));
    let rancher_port = free_port();
    let mut env = env(&ecr, &format!("{}/v2-beta", cattle.url()));
    set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
    set(&mut env, "LISTEN_PORT", &rancher_port.to_string());
    set(&mut env, "RETRY_DELAY", "200ms");
    set(&mut env, "RETRY_MAX_DELAY", "1s");
    let rancher = Daemon::start(&env, &[]);

    // The Kubernetes target against the test API server: one namespace, so its places have series.
    let Some(k8s) = crate::kubernetes::cluster(test).await else { return };
    let namespace = k8s.create_namespace("prometheus", &[]).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &namespace);
    let kubernetes_port: u16 = env.iter().find(|(k, _)| k == "LISTEN_PORT").unwrap().1.parse().unwrap();
    let kubernetes = Daemon::start(&env, &[]);
    let targets =
        [(rancher_port, "rancher-ecr-credentials-rancher"), (kubernetes_port, "rancher-ecr-credentials-kubernetes")];

    rancher.wait_for_log("Refresh complete", RUN_LIMIT).await;
    kubernetes.wait_for_log("Refresh complete", RUN_LIMIT).await;

    let rules = rule_file();
    let prometheus = Prometheus::start(&binary, &targets, &rules).await;
    let up = format!("up{{job=\"{JOB}\"}} == 1");
    let started_scraping = Instant::now();
    while prometheus.query(&up).await.len() < targets.len() {
        assert!(
            started_scraping.elapsed() < WAIT_LIMIT,
            "not every daemon is up in Prometheus: {:?}",
            prometheus.query("up").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The rules load and are evaluated without error.
    let alerts = alerts(&rules);
    let rule_started = Instant::now();
    loop {
        let groups = prometheus.api("/api/v1/rules", &[]).await;
        let rules: Vec<&Value> =
            groups["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
        assert_eq!(rules.len(), alerts.len(), "{groups}");
        if rules.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(rule_started.elapsed() < WAIT_LIMIT, "rules not all evaluated without error: {groups}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every metric the rules and the dashboard use exists, with exactly its labels.
    let (queries, variables) = dashboard();
    let used: BTreeSet<String> = queries.iter().chain(&alerts).flat_map(|q| metrics_in(&q.expr)).collect();
    let expected: BTreeMap<&str, &[&str]> = METRICS.into_iter().collect();
    let mut checked = 0;
    for metric in &used {
        if metric == ANNOUNCED {
            continue;
        }
        let Some(labels) = expected.get(metric.as_str()) else {
            panic!("{metric} is used by the rules or the dashboard but not in this test's METRICS (README's table)")
        };
        let mut want: BTreeSet<&str> = SCRAPE_LABELS.into_iter().collect();
        want.extend(labels.iter().copied());
        let series = prometheus.series(metric).await;
        assert!(!series.is_empty(), "no series {metric} in Prometheus");
        for s in &series {
            let got: BTreeSet<&str> = s.keys().map(String::as_str).collect();
            assert_eq!(got, want, "labels of {metric}: {s:?}");
        }
        checked += 1;
    }

    // Every label the rules and the dashboard name is on a metric of that expression (or comes from the scrape).
    for Query { what, expr, text } in queries.iter().chain(&alerts) {
        let mut have: BTreeSet<&str> = SCRAPE_LABELS.into_iter().collect();
        for metric in metrics_in(expr) {
            have.extend(expected.get(metric.as_str()).copied().unwrap_or_default());
        }
        for label in labels_named(expr, text) {
            assert!(have.contains(label.as_str()), "{what}: label {label} is on no metric of {expr}");
        }
    }

    // Each dashboard query returns data, the announced leader metric's aside.
    for Query { what, expr, .. } in &queries {
        if expr.contains(ANNOUNCED) {
            eprintln!("{test}: not checked: {what:?} waits for leader election ({ANNOUNCED})");
            continue;
        }
        prometheus.query_until_data(&grafana_substitute(expr), what).await;
    }
    for (selector, label) in &variables {
        let values = prometheus.api(&format!("/api/v1/label/{label}/values"), &[("match[]", selector)]).await;
        assert!(!values.as_array().unwrap().is_empty(), "the variable label_values({selector}, {label}) is empty");
    }

    // What the alerts compare holds the right values: seconds until expiry (a 12-hour token), one failure and
    // one error from the refused update, ready once the retry succeeded.
    let left = prometheus.query("rancher_ecr_credentials_token_expiry_timestamp_seconds - time()").await;
    assert!(!left.is_empty(), "no credential expiry in Prometheus");
    for sample in &left {
        let seconds: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
        assert!((11.0 * 3600.0..=12.0 * 3600.0 + 60.0).contains(&seconds), "time left {sample}");
    }
    let failures = prometheus.query("rancher_ecr_credentials_refreshes_total{result=\"failure\"} > 0").await;
    assert_eq!(failures.len(), 1, "one target failed once: {failures:?}");
    let errors =
        prometheus.query("rancher_ecr_credentials_errors_total{source=\"rancher\", kind=\"server_error\"}").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    prometheus.query_until_data("min(rancher_ecr_credentials_ready) == 1", "every daemon ready").await;

    // And so no alert is pending or firing (an early not-ready scrape may have made one pending: it clears).
    let quiet_started = Instant::now();
    loop {
        let active = prometheus.api("/api/v1/alerts", &[]).await;
        if active["alerts"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(quiet_started.elapsed() < WAIT_LIMIT, "alerts with fresh credentials: {active}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    k8s.assert_no_secrets(&kubernetes.output());
    eprintln!(
        "{test}: {checked} metrics, {} dashboard queries, {} alerts checked against a real Prometheus in {:.1} s",
        queries.len(),
        alerts.len(),
        started.elapsed().as_secs_f64()
    );
    drop(prometheus);
    rancher.terminate(Duration::from_secs(5)).await;
    kubernetes.terminate(Duration::from_secs(5)).await;
}
