//! The Kubernetes target's reads and self-healing end to end (issue 16), against the real kube-apiserver of
//! `../shared/tools/k8s`, as `app-user` with the RBAC of deploy/kubernetes/: one LIST of the Secrets per cycle
//! (requests counted by an HTTP proxy in front of the API server), a Secret deleted or edited by hand restored
//! within 2 s, a Secret another writer keeps changing left alone (Contested), and a restored cluster (a PRIVATE
//! second API server, stopped and started on an empty etcd) getting its Secrets back within 5 s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};

use crate::harness::*;
use crate::kubernetes::{Cluster, MANAGED_BY, SECRET, cluster, docker_config};

/// How soon a Secret deleted or changed by someone else must be back.
const RESTORE_LIMIT: Duration = Duration::from_secs(2);

/// An HTTP proxy in front of the API server that records every request (method and path with query): the daemon
/// talks plain HTTP to it on loopback, and it forwards over TLS, streaming answers (watches) through.
struct Counting {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Upstream {
    api: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

async fn forward(State(up): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    up.seen.lock().unwrap().push((parts.method.to_string(), path.clone()));
    let body = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    let mut outgoing = up.client.request(parts.method.clone(), format!("{}{path}", up.api)).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => return Response::builder().status(502).body(Body::from(e.to_string())).unwrap(),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    if let Some(kind) = answer.headers().get("content-type") {
        response = response.header("content-type", kind);
    }
    let chunks = futures_util::stream::unfold(answer, |mut answer| async move {
        match answer.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), answer)),
            _ => None,
        }
    });
    response.body(Body::from_stream(chunks)).unwrap()
}

impl Counting {
    async fn start(k8s: &Cluster) -> Counting {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&k8s.ca).unwrap()).unwrap();
        let client = reqwest::Client::builder().add_root_certificate(ca).no_proxy().build().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let upstream = Upstream { api: k8s.api.trim_end_matches('/').to_string(), client, seen: seen.clone() };
        let app = axum::Router::new().fallback(forward).with_state(upstream);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Counting { port, seen, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The requests of one cycle by kind: pages of namespaces, pages of the Secrets' LIST, GETs of one Secret,
/// writes, and anything else.
#[derive(Debug, Default, PartialEq, Eq)]
struct Cycle {
    namespace_pages: usize,
    secret_pages: usize,
    secret_gets: usize,
    writes: usize,
    other: Vec<String>,
}

fn cycle(requests: &[(String, String)]) -> Cycle {
    let mut cycle = Cycle::default();
    for (method, path) in requests {
        let route = path.split('?').next().unwrap_or_default();
        match (method.as_str(), route.trim_matches('/').split('/').collect::<Vec<_>>().as_slice()) {
            ("GET", ["api", "v1", "namespaces"]) if !path.contains("watch=") => cycle.namespace_pages += 1,
            ("GET", ["api", "v1", "secrets"]) if !path.contains("watch=") => {
                assert!(path.contains(&format!("fieldSelector=metadata.name%3D{SECRET}")), "{path}");
                cycle.secret_pages += 1
            }
            ("GET", ["api", "v1", "namespaces", _, "secrets", _]) => cycle.secret_gets += 1,
            ("GET", _) => cycle.other.push(format!("{method} {path}")),
            _ => cycle.writes += 1,
        }
    }
    cycle
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn one_list_of_the_secrets_per_cycle_and_a_cycle_with_nothing_to_change_reads_and_writes_nothing_more() {
    let Some(k8s) = cluster("one_list_of_the_secrets_per_cycle").await else { return };
    let ecr = ecr().await;
    let mut names = Vec::new();
    for suffix in ["a", "b", "c"] {
        names.push(k8s.create_namespace(suffix, &[]).await);
    }
    let proxy = Counting::start(&k8s).await;
    let kubeconfig = k8s.kubeconfig("counted", &k8s.app_token, Some(&proxy.url()), None);
    let mut env = k8s.env(&ecr, &kubeconfig);
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));

    let first = run(&env, &["--once"]).await;

    assert_eq!(first.code, Some(0), "{}", first.output);
    let first_cycle = cycle(&proxy.take());
    assert!(first_cycle.namespace_pages >= 1 && first_cycle.secret_pages >= 1, "{first_cycle:?}");
    assert_eq!(first_cycle.secret_gets, 0, "no GET per namespace: {first_cycle:?}");
    assert_eq!(first_cycle.writes, 3, "{first_cycle:?}");
    assert!(first_cycle.other.is_empty(), "{first_cycle:?}");
    assert!(first.output.contains("one cluster-wide LIST"), "the INFO line says how it reads: {}", first.output);
    for namespace in &names {
        assert!(k8s.secret(namespace).await.is_some(), "{namespace}: {}", first.output);
    }

    let second = run(&env, &["--once"]).await;

    assert_eq!(second.code, Some(0), "{}", second.output);
    let again = cycle(&proxy.take());
    eprintln!("no-change cycle: {again:?}");
    assert_eq!(again.writes, 0, "{again:?}");
    assert_eq!(again.secret_gets, 0, "{again:?}");
    assert!(again.other.is_empty(), "{again:?}");
    // The pages of the two LISTs (namespaces, Secrets) and nothing else: at most (list pages + 2). The page counts
    // depend on what else the shared server holds.
    assert!(again.namespace_pages >= 1 && again.secret_pages >= 1, "{again:?}");
    k8s.assert_no_secrets(&format!("{}{}", first.output, second.output));
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn where_the_cluster_wide_list_is_forbidden_each_namespace_is_read_with_a_get() {
    let Some(k8s) = cluster("where_the_cluster_wide_list_is_forbidden").await else { return };
    let ecr = ecr().await;
    let ok = k8s.create_namespace("ok", &[]).await;
    // A user of its own (app-user impersonates it): namespaces cluster-wide, the secrets role only in `ok`.
    let user = format!("recs-ns-{}", k8s.prefix);
    k8s.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {user}-impersonate}}
rules: [{{apiGroups: [\"\"], resources: [users], resourceNames: [\"{user}\"], verbs: [impersonate]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {user}-impersonate}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}-impersonate}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: app-user}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {user}-namespaces}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-namespaces}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rancher-ecr-credentials-secrets, namespace: {ok}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-secrets}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
"
    ))
    .await;
    let proxy = Counting::start(&k8s).await;
    let kubeconfig = k8s.kubeconfig("limited", &k8s.app_token, Some(&proxy.url()), Some(&user));
    let mut env = k8s.env(&ecr, &kubeconfig);
    set(&mut env, "KUBERNETES_NAMESPACES", &ok);

    let once = run(&env, &["--once"]).await;

    assert_eq!(once.code, Some(0), "{}", once.output);
    assert!(k8s.secret(&ok).await.is_some(), "{}", once.output);
    let reads = cycle(&proxy.take());
    assert_eq!((reads.secret_pages, reads.secret_gets, reads.writes), (1, 1, 1), "{reads:?}");
    let info = once.output.lines().filter(|l| l.contains("one GET per namespace")).collect::<Vec<_>>();
    assert_eq!(info.len(), 1, "one INFO line says so: {}", once.output);
    assert!(info[0].contains("INFO"), "{}", info[0]);
}

/// Waits (bounded) until `check` holds for the namespace's Secret; returns how long that took.
async fn wait_for(
    k8s: &Cluster,
    namespace: &str,
    limit: Duration,
    check: impl Fn(&Secret) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    let api = Api::<Secret>::namespaced(k8s.admin().await, namespace);
    while started.elapsed() < limit {
        if let Ok(Some(secret)) = api.get_opt(SECRET).await
            && check(&secret)
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn holds_ours(secret: &Secret) -> bool {
    docker_config(secret)["auths"][host(ACCOUNT)]["password"] == NEW_PASSWORD
        && secret
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get(MANAGED_BY).map(String::as_str) == Some("rancher-ecr-credentials"))
}

/// Someone else's change to the Secret's data, as `kubectl edit` or another controller would make it.
async fn overwrite(k8s: &Cluster, namespace: &str, manager: &str, password: &str) {
    let theirs = format!(r#"{{"auths":{{"quay.io":{{"username":"someone","password":"{password}"}}}}}}"#);
    let patch = serde_json::json!({ "data": { ".dockerconfigjson": b64(&theirs) } });
    let params = PatchParams { field_manager: Some(manager.into()), ..PatchParams::default() };
    Api::<Secret>::namespaced(k8s.admin().await, namespace)
        .patch(SECRET, &params, &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_secret_deleted_or_edited_by_hand_is_restored_within_two_seconds() {
    let Some(k8s) = cluster("a_secret_deleted_or_edited_by_hand_is_restored").await else { return };
    let ecr = ecr().await;
    let deleted = k8s.create_namespace("deleted", &[]).await;
    let edited = k8s.create_namespace("edited", &[]).await;
    let unlabelled = k8s.create_namespace("unlabelled", &[]).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;
    daemon.wait_for_log("Watching our Secrets", Duration::from_secs(5)).await;
    // The watch's own LIST comes right after: let it settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admin = k8s.admin().await;

    Api::<Secret>::namespaced(admin.clone(), &deleted).delete(SECRET, &DeleteParams::default()).await.unwrap();
    let took = wait_for(&k8s, &deleted, RESTORE_LIMIT, holds_ours).await;
    let took = took.unwrap_or_else(|| panic!("deleted Secret not back within {RESTORE_LIMIT:?}:\n{}", daemon.output()));
    eprintln!("deleted by hand -> restored in {took:?}");

    overwrite(&k8s, &edited, "kubectl-edit", "theirs").await;
    let took = wait_for(&k8s, &edited, RESTORE_LIMIT, holds_ours).await;
    let took =
        took.unwrap_or_else(|| panic!("edited Secret not restored within {RESTORE_LIMIT:?}:\n{}", daemon.output()));
    eprintln!("edited by hand -> restored in {took:?}");

    let patch = serde_json::json!({ "metadata": { "labels": { MANAGED_BY: null } } });
    let params = PatchParams { field_manager: Some("kubectl-label".into()), ..PatchParams::default() };
    Api::<Secret>::namespaced(admin.clone(), &unlabelled).patch(SECRET, &params, &Patch::Merge(&patch)).await.unwrap();
    let took = wait_for(&k8s, &unlabelled, RESTORE_LIMIT, holds_ours).await;
    let took = took.unwrap_or_else(|| panic!("label not restored within {RESTORE_LIMIT:?}:\n{}", daemon.output()));
    eprintln!("label removed by hand -> restored in {took:?}");

    let output = daemon.output();
    assert_eq!(output.matches("Restored our Secret").count(), 3, "{output}");
    let restored_edit = output.lines().find(|l| l.contains("Restored our Secret") && l.contains(&edited)).unwrap();
    assert!(restored_edit.contains("kubectl-edit"), "names the other writer: {restored_edit}");
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_secret_another_writer_keeps_changing_is_contested_and_left_alone_until_the_next_refresh() {
    let Some(k8s) = cluster("a_secret_another_writer_keeps_changing").await else { return };
    let ecr = ecr().await;
    let fought = k8s.create_namespace("fought", &[]).await;
    let calm = k8s.create_namespace("calm", &[]).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;
    daemon.wait_for_log("Watching our Secrets", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The other writer changes the Secret every 300 ms, each time the daemon has put it back.
    let started = Instant::now();
    let mut changes = 0;
    while !daemon.output().contains("Another writer keeps changing") {
        assert!(started.elapsed() < Duration::from_secs(20), "never contested:\n{}", daemon.output());
        overwrite(&k8s, &fought, "other-writer", &format!("theirs-{changes}")).await;
        changes += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let output = daemon.output();
    let line = output.lines().find(|l| l.contains("Another writer keeps changing")).unwrap();
    assert!(line.contains("ERROR") && line.contains(&fought) && line.contains("other-writer"), "{line}");
    assert_eq!(output.matches("Restored our Secret").count(), 5, "{output}");

    // Left alone from now on: more changes, no more restorations, one ERROR.
    for n in 0..5 {
        overwrite(&k8s, &fought, "other-writer", &format!("later-{n}")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let output = daemon.output();
    assert_eq!(output.matches("Restored our Secret").count(), 5, "no hot loop:\n{output}");
    assert_eq!(output.matches("Another writer keeps changing").count(), 1, "{output}");
    let theirs = docker_config(&k8s.secret(&fought).await.unwrap());
    assert_eq!(theirs["auths"]["quay.io"]["password"], "later-4", "left alone");
    let contested = events_in(&k8s, &fought).await;
    assert_eq!(contested.len(), 1, "{contested:?}");
    let (reason, kind, name, note) = &contested[0];
    assert_eq!((reason.as_str(), kind.as_str(), name.as_str()), ("Contested", "Secret", SECRET));
    assert!(note.contains("other-writer"), "{note}");
    // Another namespace is still restored.
    Api::<Secret>::namespaced(k8s.admin().await, &calm).delete(SECRET, &DeleteParams::default()).await.unwrap();
    wait_for(&k8s, &calm, RESTORE_LIMIT, holds_ours).await.unwrap_or_else(|| panic!("{}", daemon.output()));
    eprintln!("contested after {changes} changes");
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

/// A PRIVATE API server from the same tool, on its own ports and run directory: stopped and started again on an
/// empty etcd by the test, never the shared one. Stopped when dropped.
struct PrivateServer {
    tool: PathBuf,
    run: PathBuf,
    api_port: u16,
    etcd_port: u16,
}

impl PrivateServer {
    fn new() -> PrivateServer {
        let tool = std::env::var("K8S_TOOL")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/k8s"));
        let run = std::env::temp_dir().join(format!("recs-private-k8s-{}", std::process::id()));
        std::fs::create_dir_all(&run).unwrap();
        // etcd takes this port and the one 10 above (peers).
        let etcd_port = loop {
            let port = free_port();
            if port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 10)).is_ok() {
                break port;
            }
        };
        PrivateServer { tool, run, api_port: free_port(), etcd_port }
    }

    async fn tool(&self, verb: &str) {
        let mut command = tokio::process::Command::new(&self.tool);
        command
            .arg(verb)
            .env("K8S_RUN", &self.run)
            .env("K8S_API_PORT", self.api_port.to_string())
            .env("K8S_ETCD_PORT", self.etcd_port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .unwrap_or_else(|_| panic!("k8s {verb} took over 120 s"))
            .unwrap();
        assert!(out.status.success(), "k8s {verb}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `k8s stop` sends SIGTERM and returns; kube-apiserver then drains its open watches for up to a minute,
    /// still answering on them from a cache whose etcd is gone. A stopped server is one that is gone: wait for it
    /// (bounded), then SIGKILL that one process of ours.
    async fn stop(&self) {
        let pid = std::fs::read_to_string(self.run.join("kube-apiserver.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        self.tool("stop").await;
        let Some(pid) = pid else { return };
        let started = Instant::now();
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && started.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // SAFETY: kill(2) of the private kube-apiserver this test started; no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        while unsafe { libc::kill(pid, 0) } == 0 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn api(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    fn ca(&self) -> PathBuf {
        self.run.join("pki/ca.crt")
    }

    /// A kubeconfig of the admin user (the server starts empty: no RBAC objects to bind app-user with).
    fn kubeconfig(&self) -> PathBuf {
        let token = std::env::var("K8S_ADMIN_TOKEN").unwrap();
        let path = self.run.join("daemon.kubeconfig");
        std::fs::write(&path, format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: p\n  context:\n    cluster: p\n    user: u\ncurrent-context: p\n",
            self.api(), self.ca().display()
        )).unwrap();
        path
    }

    async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }

    async fn create_namespaces(&self, names: &[&str]) {
        let api = Api::<Namespace>::all(self.client().await);
        for name in names {
            let namespace = Namespace {
                metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
                ..Default::default()
            };
            api.create(&PostParams::default(), &namespace).await.unwrap();
        }
    }

    async fn secrets(&self, names: &[&str]) -> BTreeMap<String, bool> {
        let client = self.client().await;
        let mut found = BTreeMap::new();
        for name in names {
            let held = Api::<Secret>::namespaced(client.clone(), name).get_opt(SECRET).await.ok().flatten();
            found.insert(name.to_string(), held.is_some_and(|s| holds_ours(&s)));
        }
        found
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.tool)
            .arg("stop")
            .env("K8S_RUN", &self.run)
            .env("K8S_API_PORT", self.api_port.to_string())
            .env("K8S_ETCD_PORT", self.etcd_port.to_string())
            .output();
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_cluster_restored_on_an_empty_etcd_gets_its_secrets_back_within_five_seconds() {
    // The shared server only for the test's environment (tokens, kubectl); the one stopped is private.
    let Some(k8s) = cluster("a_cluster_restored_on_an_empty_etcd").await else { return };
    let ecr = ecr().await;
    let server = PrivateServer::new();
    server.tool("start").await;
    let names = ["restore-a", "restore-b", "restore-c"];
    server.create_namespaces(&names).await;
    let mut env = k8s.env(&ecr, &server.kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", "restore-*");
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(30)).await;
    assert!(server.secrets(&names).await.values().all(|held| *held), "{}", daemon.output());

    // Disaster recovery: the server stopped, started again on an empty etcd, the namespaces made again.
    server.stop().await;
    server.tool("start").await;
    assert!(server.secrets(&names).await.values().all(|held| !*held), "the new server starts empty");
    server.create_namespaces(&names).await;
    let made = Instant::now();
    let limit = Duration::from_secs(5);
    while made.elapsed() < limit && !server.secrets(&names).await.values().all(|held| *held) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = server.secrets(&names).await;
    assert!(found.values().all(|held| *held), "not back within {limit:?}: {found:?}\n{}", daemon.output());
    eprintln!("namespaces made again -> every Secret back in {:?}", made.elapsed());
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

/// The Events of a namespace from this daemon: reason, kind and name of the object, note.
async fn events_in(k8s: &Cluster, namespace: &str) -> Vec<(String, String, String, String)> {
    let events = Api::<Event>::namespaced(k8s.admin().await, namespace).list(&Default::default()).await.unwrap();
    events
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("rancher-ecr-credentials"))
        .map(|e| {
            let regarding = e.regarding.unwrap_or_default();
            (
                e.reason.unwrap_or_default(),
                regarding.kind.unwrap_or_default(),
                regarding.name.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_namespace_that_refuses_writes_gets_a_write_failed_event_and_one_that_refuses_events_costs_one_warn() {
    let Some(k8s) = cluster("a_namespace_that_refuses_writes_gets_a_write_failed_event").await else { return };
    let ecr = ecr().await;
    let ok = k8s.create_namespace("ok", &[]).await;
    let denied = k8s.create_namespace("denied", &[]).await;
    let quiet = k8s.create_namespace("quiet", &[]).await;
    // In `quiet` a Secret of that name that is not ours: a failure, whose Event is refused there.
    let foreign = Secret {
        metadata: ObjectMeta { name: Some(SECRET.into()), ..Default::default() },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(".dockerconfigjson".to_string(), k8s_openapi::ByteString(b"{}".to_vec()))])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(k8s.admin().await, &quiet).create(&PostParams::default(), &foreign).await.unwrap();
    // A user of its own (app-user impersonates it): the secrets role in `ok`; only Events in `denied` (writes
    // refused); Secrets but no Events in `quiet`.
    let user = format!("recs-ev-{}", k8s.prefix);
    let mut yaml = format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {user}-impersonate}}
rules: [{{apiGroups: [\"\"], resources: [users], resourceNames: [\"{user}\"], verbs: [impersonate]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {user}-impersonate}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}-impersonate}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: app-user}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {user}-namespaces}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-namespaces}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: events-only, namespace: {denied}}}
rules: [{{apiGroups: [events.k8s.io], resources: [events], verbs: [create, patch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: events-only, namespace: {denied}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: events-only}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: secrets-only, namespace: {quiet}}}
rules: [{{apiGroups: [\"\"], resources: [secrets], verbs: [get, create, patch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: secrets-only, namespace: {quiet}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: secrets-only}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rancher-ecr-credentials-secrets, namespace: {ok}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-secrets}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
"
    );
    yaml.push('\n');
    k8s.apply(&yaml).await;
    let kubeconfig = k8s.kubeconfig("events", &k8s.app_token, None, Some(&user));
    let mut env = k8s.env(&ecr, &kubeconfig);
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    let daemon = Daemon::start(&env, &[]);
    // The failing namespaces are retried (RETRY_DELAY 500 ms, up to 2 s): several syncs.
    let started = Instant::now();
    while daemon.output().matches("not ours").count() < 3 {
        assert!(started.elapsed() < Duration::from_secs(20), "not retried:\n{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(k8s.secret(&ok).await.is_some(), "{}", daemon.output());
    let failed = events_in(&k8s, &denied).await;
    assert_eq!(failed.len(), 1, "one Event however many retries: {failed:?}\n{}", daemon.output());
    let (reason, kind, name, note) = &failed[0];
    assert_eq!((reason.as_str(), kind.as_str(), name.as_str()), ("WriteFailed", "Secret", SECRET));
    assert!(note.starts_with("get secrets: 403 forbidden"), "names verb, resource and status: {note}");
    let output = daemon.output();
    let warns: Vec<&str> = output.lines().filter(|l| l.contains("forbids this daemon's Events")).collect();
    assert_eq!(warns.len(), 1, "one WARN for the namespace that refuses Events:\n{output}");
    assert!(warns[0].contains("WARN") && warns[0].contains(&quiet), "{}", warns[0]);
    assert!(events_in(&k8s, &quiet).await.is_empty());
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}
