//! The Kubernetes target end to end: the real binary, as the user `app-user` bound to exactly the RBAC objects in
//! deploy/kubernetes/, against a real kube-apiserver (`../shared/tools/k8s all`, then `source "$(… env)"`).
//!
//! Every test makes its own namespaces (a unique prefix), so tests share the one server without seeing each
//! other's objects. Cluster-wide objects (ClusterRoles, the bindings of app-user, the Project CRD) are applied
//! idempotently. The tests are `#[ignore]`d, so that `cargo test` without a server reports them as ignored instead
//! of passing them; `cargo test --workspace -- --include-ignored` runs them, and then fails without the server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{LocalObjectReference, Namespace, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use kube::core::ApiResource;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::*;

/// KUBERNETES_DIAGNOSE_PULLS, with this file's cluster helpers.
#[path = "diagnose.rs"]
mod diagnose;

pub(crate) const SECRET: &str = "ecr-credentials";
pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// How long a new namespace may wait for its Secret.
const NEW_NAMESPACE_LIMIT: Duration = Duration::from_secs(5);

/// The API server from `k8s env`, and what the tests need to use it.
pub struct Cluster {
    pub(crate) api: String,
    pub(crate) ca: String,
    pub(crate) admin_token: String,
    pub(crate) app_token: String,
    pub(crate) kubectl: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) prefix: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The server from `k8s env`. The tests that call this are ignored unless asked for, and then need it: without
/// its environment they fail, saying how to start it.
pub(crate) async fn cluster(test: &str) -> Option<Cluster> {
    let crate::apiserver::Server { api, ca, admin_token, app_token, prefix } =
        crate::apiserver::server_with_prefix(test, 't');
    let kubectl = std::env::var("K8S_BIN")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|bin| PathBuf::from(bin).join("kubectl"))
        .unwrap_or_else(|| "kubectl".into());
    let dir = std::env::temp_dir().join(format!("recs-k8s-{prefix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = Cluster { api, ca, admin_token, app_token, kubectl, dir, prefix };
    cluster.bind_app_user().await;
    Some(cluster)
}

impl Cluster {
    /// A kubeconfig for `token`, optionally through another server URL (a proxy) and impersonating a user.
    pub(crate) fn kubeconfig(
        &self,
        name: &str,
        token: &str,
        server: Option<&str>,
        impersonate: Option<&str>,
    ) -> PathBuf {
        let server = server.unwrap_or(&self.api);
        let impersonate = impersonate.map(|user| format!("\n    as: {user}")).unwrap_or_default();
        // The Kubernetes client verifies the server's certificate against the test CA, as on a real cluster.
        let tls = format!("certificate-authority: {}", self.ca);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    {tls}\nusers:\n- name: u\n  user:\n    token: {token}{impersonate}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: u\ncurrent-context: test\n"
        );
        let path = self.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn app_kubeconfig(&self) -> PathBuf {
        self.kubeconfig("app", &self.app_token, None, None)
    }

    pub(crate) async fn admin(&self) -> kube::Client {
        let path = self.kubeconfig("admin", &self.admin_token, None, None);
        let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// `kubectl apply` as admin.
    pub(crate) async fn apply(&self, yaml: &str) {
        let admin = self.kubeconfig("admin", &self.admin_token, None, None);
        let mut child = tokio::process::Command::new(&self.kubectl)
            .args(["--kubeconfig", admin.to_str().unwrap(), "apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs (K8S_BIN)");
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(yaml.as_bytes()).await.unwrap();
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
        assert!(out.status.success(), "kubectl apply failed: {}\n{yaml}", String::from_utf8_lossy(&out.stderr));
    }

    /// The RBAC of deploy/kubernetes/rbac, bound to the user `app-user` instead of the ServiceAccount.
    pub(crate) async fn bind_app_user(&self) {
        for file in ["namespaces.yaml", "secrets.yaml", "secrets-binding.yaml", "serviceaccounts.yaml"] {
            self.apply(&for_user(&deploy_file("rbac", file), "app-user")).await;
        }
        self.apply(&deploy_file("rbac-projects", "projects.yaml")).await;
    }

    pub(crate) fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    pub(crate) async fn create_namespace(&self, suffix: &str, labels: &[(&str, &str)]) -> String {
        let name = self.name(suffix);
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let namespace = Namespace {
            metadata: ObjectMeta { name: Some(name.clone()), labels: Some(labels), ..Default::default() },
            ..Default::default()
        };
        Api::<Namespace>::all(self.admin().await).create(&PostParams::default(), &namespace).await.unwrap();
        name
    }

    async fn create_service_account(&self, namespace: &str, name: &str, pull_secrets: &[&str]) {
        let account = ServiceAccount {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            image_pull_secrets: Some(
                pull_secrets.iter().map(|s| LocalObjectReference { name: s.to_string() }).collect(),
            )
            .filter(|v: &Vec<_>| !v.is_empty()),
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(self.admin().await, namespace)
            .create(&PostParams::default(), &account)
            .await
            .unwrap();
    }

    pub(crate) async fn secret(&self, namespace: &str) -> Option<Secret> {
        Api::<Secret>::namespaced(self.admin().await, namespace).get_opt(SECRET).await.unwrap()
    }

    async fn service_account(&self, namespace: &str, name: &str) -> ServiceAccount {
        Api::<ServiceAccount>::namespaced(self.admin().await, namespace).get(name).await.unwrap()
    }

    /// Waits (bounded) until the namespace holds the Secret; returns it and how long that took.
    pub(crate) async fn wait_for_secret(&self, namespace: &str, limit: Duration) -> Option<(Secret, Duration)> {
        let started = Instant::now();
        let admin = self.admin().await;
        let api = Api::<Secret>::namespaced(admin, namespace);
        while started.elapsed() < limit {
            if let Some(secret) = api.get_opt(SECRET).await.unwrap() {
                return Some((secret, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// The daemon's environment: ECR stand-in, this server as app-user, the namespaces given.
    pub(crate) fn env(&self, ecr: &standins::ecr::FakeEcr, kubeconfig: &std::path::Path) -> Vec<(String, String)> {
        let mut env = env(ecr, "unused");
        unset(&mut env, "CATTLE_URL");
        unset(&mut env, "CATTLE_ACCESS_KEY");
        unset(&mut env, "CATTLE_SECRET_KEY");
        set(&mut env, "KUBECONFIG", kubeconfig.to_str().unwrap());
        set(&mut env, "AWS_ECR_REGISTRY_IDS", &format!("{ACCOUNT},{OTHER_ACCOUNT}"));
        set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
        set(&mut env, "LISTEN_PORT", &free_port().to_string());
        set(&mut env, "RETRY_DELAY", "500ms");
        set(&mut env, "RETRY_MAX_DELAY", "2s");
        set(&mut env, "RANCHER_TIMEOUT", "5s");
        env
    }

    pub(crate) fn assert_no_secrets(&self, output: &str) {
        assert_no_secrets(output);
        assert!(!output.contains(&self.app_token), "the bearer token appears in the output:\n{output}");
        assert!(!output.contains(&self.admin_token), "the admin token appears in the output:\n{output}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn deploy_file(dir: &str, file: &str) -> String {
    let path = format!("{}/deploy/kubernetes/{dir}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The manifests bind the daemon's ServiceAccount; the tests run the binary as a user.
pub(crate) fn for_user(yaml: &str, user: &str) -> String {
    let subject = "  - kind: ServiceAccount\n    name: rancher-ecr-credentials\n    namespace: rancher-ecr-credentials";
    assert!(!yaml.contains("kind: ClusterRoleBinding") || yaml.contains(subject), "the subject changed:\n{yaml}");
    yaml.replace(subject, &format!("  - kind: User\n    apiGroup: rbac.authorization.k8s.io\n    name: {user}"))
}

/// The decoded `.dockerconfigjson` of a Secret.
pub(crate) fn docker_config(secret: &Secret) -> serde_json::Value {
    let data = &secret.data.as_ref().expect("data")[".dockerconfigjson"].0;
    serde_json::from_slice(data).expect("JSON")
}

fn resource_version(secret: &Secret) -> String {
    secret.metadata.resource_version.clone().unwrap()
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn writes_one_secret_per_selected_namespace_by_name_glob_selector_and_exclusion() {
    let Some(k8s) = cluster("writes_one_secret_per_selected_namespace").await else { return };
    let ecr = ecr().await;
    let apps = k8s.create_namespace("apps", &[]).await;
    let team_a = k8s.create_namespace("team-a", &[("tier", "gold")]).await;
    let team_b = k8s.create_namespace("team-b", &[]).await;
    let team_secret = k8s.create_namespace("team-secret", &[("tier", "gold")]).await;
    let other = k8s.create_namespace("other", &[("tier", "gold")]).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{apps},{}-team-*", k8s.prefix));
    set(&mut env, "KUBERNETES_EXCLUDE_NAMESPACES", &format!("{}-team-s*", k8s.prefix));
    set(&mut env, "LOG_LEVEL", "trace");

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    for namespace in [&apps, &team_a, &team_b] {
        let secret = k8s.secret(namespace).await.unwrap_or_else(|| panic!("no Secret in {namespace}: {}", run.output));
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        assert_eq!(secret.metadata.labels.as_ref().unwrap()[MANAGED_BY], "rancher-ecr-credentials");
        assert!(secret.metadata.annotations.as_ref().unwrap().contains_key("rancher-ecr-credentials/expires-at"));
        let config = docker_config(&secret);
        let entry = &config["auths"][host(ACCOUNT)];
        assert_eq!(entry["username"], "AWS");
        assert_eq!(entry["password"], NEW_PASSWORD);
        assert_eq!(entry["auth"], b64(&format!("AWS:{NEW_PASSWORD}")));
        assert_eq!(config["auths"][host(OTHER_ACCOUNT)]["password"], SECOND_PASSWORD);
        assert_eq!(config["auths"].as_object().unwrap().len(), 2, "bare hosts only: {config}");
        let managers: Vec<String> =
            secret.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.clone()).collect();
        assert_eq!(managers, ["rancher-ecr-credentials"], "written by server-side apply with our field manager");
    }
    for namespace in [&team_secret, &other] {
        assert!(k8s.secret(namespace).await.is_none(), "{namespace} is not selected: {}", run.output);
    }
    k8s.assert_no_secrets(&run.output);

    // By label selector: the namespaces of this test with tier=gold, minus the exclusion.
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    set(&mut env, "KUBERNETES_NAMESPACE_SELECTOR", "tier in (gold, silver),!never");
    set(&mut env, "KUBERNETES_EXCLUDE_NAMESPACES", &team_secret);
    // HTTPS_PROXY is for AWS and Rancher: the API server is still reached directly (kube-rs would take it for a
    // kubeconfig's cluster). ECR's endpoint here is plain HTTP, which HTTPS_PROXY does not concern.
    set(&mut env, "HTTPS_PROXY", "http://127.0.0.1:9");
    let run = crate::harness::run(&env, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert!(k8s.secret(&other).await.is_some(), "{other} has tier=gold: {}", run.output);
    assert!(k8s.secret(&team_secret).await.is_none(), "{team_secret} is excluded: {}", run.output);
    k8s.assert_no_secrets(&run.output);
}

pub(crate) async fn http_status(port: u16, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let response = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

pub(crate) fn port_of(env: &[(String, String)]) -> u16 {
    env.iter().find(|(k, _)| k == "LISTEN_PORT").unwrap().1.parse().unwrap()
}

fn pull_secrets(account: &ServiceAccount) -> Vec<String> {
    account.image_pull_secrets.iter().flatten().map(|r| r.name.clone()).collect()
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_namespace_or_service_account_created_while_the_daemon_runs_gets_the_secret_within_seconds() {
    let Some(k8s) = cluster("a_namespace_created_while_the_daemon_runs").await else { return };
    let ecr = ecr().await;
    let first = k8s.create_namespace("first", &[]).await;
    k8s.create_service_account(&first, "default", &["someone-elses"]).await;
    k8s.create_service_account(&first, "unlisted", &[]).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    set(&mut env, "KUBERNETES_SERVICE_ACCOUNTS", "default,builder");
    let port = port_of(&env);
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;

    assert!(k8s.secret(&first).await.is_some(), "{}", daemon.output());
    let default = k8s.service_account(&first, "default").await;
    assert_eq!(pull_secrets(&default), ["someone-elses", SECRET], "kept what it listed: {}", daemon.output());
    assert!(pull_secrets(&k8s.service_account(&first, "unlisted").await).is_empty(), "not configured: left alone");
    let (code, body) = http_status(port, "/readyz").await;
    assert_eq!(code, 200, "{body}");

    let late = k8s.create_namespace("late", &[]).await;
    let (_, took) = k8s
        .wait_for_secret(&late, NEW_NAMESPACE_LIMIT)
        .await
        .unwrap_or_else(|| panic!("no Secret in {late} within {NEW_NAMESPACE_LIMIT:?}:\n{}", daemon.output()));
    eprintln!("new namespace -> Secret in {took:?}");

    k8s.create_service_account(&late, "builder", &[]).await;
    let started = Instant::now();
    loop {
        let builder = k8s.service_account(&late, "builder").await;
        if pull_secrets(&builder) == [SECRET] {
            break;
        }
        assert!(started.elapsed() < NEW_NAMESPACE_LIMIT, "builder never listed the Secret:\n{}", daemon.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, body) = http_status(port, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let (_, metrics) = http_status(port, "/metrics").await;
    assert!(
        metrics.contains("rancher_ecr_credentials_places{") && metrics.contains("state=\"current\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains(&first), "no label per namespace: {metrics}");

    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

async fn versions(k8s: &Cluster, a: &str, b: &str) -> (String, String, Option<String>) {
    let sa = k8s.service_account(a, "default").await.metadata.resource_version;
    (resource_version(&k8s.secret(a).await.unwrap()), resource_version(&k8s.secret(b).await.unwrap()), sa)
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_cycle_with_nothing_to_change_writes_nothing() {
    let Some(k8s) = cluster("a_cycle_with_nothing_to_change_writes_nothing").await else { return };
    let ecr = ecr().await;
    let a = k8s.create_namespace("a", &[]).await;
    let b = k8s.create_namespace("b", &[]).await;
    k8s.create_service_account(&a, "default", &[]).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    set(&mut env, "KUBERNETES_SERVICE_ACCOUNTS", "default");

    // --dry-run reads and tells, and writes nothing.
    let dry = run(&env, &["--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.output);
    assert!(dry.output.contains("Dry run: would create credential"), "{}", dry.output);
    assert!(dry.output.contains("Dry run: would add the Secret"), "{}", dry.output);
    assert!(k8s.secret(&a).await.is_none(), "{}", dry.output);
    assert!(pull_secrets(&k8s.service_account(&a, "default").await).is_empty(), "{}", dry.output);

    let first = run(&env, &["--once"]).await;
    assert_eq!(first.code, Some(0), "{}", first.output);
    let before = versions(&k8s, &a, &b).await;

    let second = run(&env, &["--once"]).await;

    assert_eq!(second.code, Some(0), "{}", second.output);
    assert_eq!(versions(&k8s, &a, &b).await, before, "nothing written:\n{}", second.output);
    for message in ["Created credential", "Updated credential", "imagePullSecrets"] {
        assert!(!second.output.contains(message), "{message}:\n{}", second.output);
    }

    // A new token is written, once, everywhere.
    ecr.set_password(ACCOUNT, "eyJwYXlsb2FkIjoiVGhpcmQtcGFzc3dvcmQifQ");
    let third = run(&env, &["--once"]).await;
    assert_eq!(third.code, Some(0), "{}", third.output);
    let after = versions(&k8s, &a, &b).await;
    assert_ne!(after.0, before.0);
    assert_ne!(after.1, before.1);
    assert_eq!(after.2, before.2, "the ServiceAccount already listed the Secret");
    assert_eq!(
        docker_config(&k8s.secret(&a).await.unwrap())["auths"][host(ACCOUNT)]["password"],
        "eyJwYXlsb2FkIjoiVGhpcmQtcGFzc3dvcmQifQ"
    );
    assert_eq!(third.output.matches("Updated credential").count(), 2, "{}", third.output);
    k8s.assert_no_secrets(&format!("{}{}{}", first.output, second.output, third.output));
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_foreign_secret_is_left_alone_unless_adopted_and_a_rancher_copy_is_never_written() {
    let Some(k8s) = cluster("a_foreign_secret_is_left_alone").await else { return };
    let ecr = ecr().await;
    let foreign = k8s.create_namespace("foreign", &[]).await;
    let copy = k8s.create_namespace("copy", &[]).await;
    let plain = k8s.create_namespace("plain", &[]).await;
    let admin = k8s.admin().await;
    let theirs = br#"{"auths":{"quay.io":{"username":"someone","password":"theirs"}}}"#.to_vec();
    let make = |labels: BTreeMap<String, String>, annotations: BTreeMap<String, String>| Secret {
        metadata: ObjectMeta {
            name: Some(SECRET.into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(".dockerconfigjson".to_string(), ByteString(theirs.clone()))])),
        ..Default::default()
    };
    let foreign_secret = make(BTreeMap::new(), BTreeMap::new());
    let copy_secret = make(
        BTreeMap::from([
            (MANAGED_BY.to_string(), "rancher-ecr-credentials".to_string()),
            ("management.cattle.io/project-scoped-secret".to_string(), "p-abcde".to_string()),
        ]),
        BTreeMap::from([("management.cattle.io/project-scoped-secret-copy".to_string(), "true".to_string())]),
    );
    let pp = PostParams::default();
    Api::<Secret>::namespaced(admin.clone(), &foreign).create(&pp, &foreign_secret).await.unwrap();
    Api::<Secret>::namespaced(admin.clone(), &copy).create(&pp, &copy_secret).await.unwrap();
    let foreign_version = resource_version(&k8s.secret(&foreign).await.unwrap());
    let copy_version = resource_version(&k8s.secret(&copy).await.unwrap());
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));

    let run1 = run(&env, &["--once"]).await;

    assert_eq!(run1.code, Some(1), "{}", run1.output);
    assert!(k8s.secret(&plain).await.is_some(), "the others are still written: {}", run1.output);
    assert_eq!(resource_version(&k8s.secret(&foreign).await.unwrap()), foreign_version, "{}", run1.output);
    assert_eq!(resource_version(&k8s.secret(&copy).await.unwrap()), copy_version, "{}", run1.output);
    let foreign_line = run1.output.lines().find(|l| l.contains(&format!("{foreign}/{SECRET}"))).unwrap_or_default();
    assert!(foreign_line.contains("ERROR") && foreign_line.contains("not ours"), "{}", run1.output);
    assert!(foreign_line.contains("KUBERNETES_ADOPT_SECRETS"), "{foreign_line}");
    let copy_line = run1.output.lines().find(|l| l.contains(&format!("{copy}/{SECRET}"))).unwrap_or_default();
    assert!(copy_line.contains("ERROR") && copy_line.contains("copy"), "{}", run1.output);

    set(&mut env, "KUBERNETES_ADOPT_SECRETS", "true");
    let run2 = run(&env, &["--once"]).await;

    assert_eq!(run2.code, Some(1), "the copy is still refused: {}", run2.output);
    let adopted = k8s.secret(&foreign).await.unwrap();
    assert_eq!(adopted.metadata.labels.as_ref().unwrap()[MANAGED_BY], "rancher-ecr-credentials");
    assert_eq!(docker_config(&adopted)["auths"][host(ACCOUNT)]["password"], NEW_PASSWORD);
    assert_eq!(resource_version(&k8s.secret(&copy).await.unwrap()), copy_version, "{}", run2.output);
    k8s.assert_no_secrets(&format!("{}{}", run1.output, run2.output));
}

const PROJECT_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: projects.management.cattle.io
spec:
  group: management.cattle.io
  scope: Namespaced
  names: {plural: projects, singular: project, kind: Project, listKind: ProjectList}
  versions:
    - name: v3
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn rancher_project_scoped_secrets_go_into_each_projects_backing_namespace() {
    let Some(k8s) = cluster("rancher_project_scoped_secrets").await else { return };
    k8s.apply(PROJECT_CRD).await;
    let ecr = ecr().await;
    // The cluster's namespace on the local cluster, and two projects: one with a backing namespace in its
    // status (Rancher 2.12+), one without (its own name is the namespace).
    let cluster_ns = k8s.create_namespace("c", &[]).await;
    let backing = k8s.create_namespace("c-p-one", &[]).await;
    let fallback = k8s.name("p2");
    k8s.create_namespace("p2", &[]).await;
    let resource = ApiResource {
        group: "management.cattle.io".into(),
        version: "v3".into(),
        api_version: "management.cattle.io/v3".into(),
        kind: "Project".into(),
        plural: "projects".into(),
    };
    let projects: Api<DynamicObject> = Api::namespaced_with(k8s.admin().await, &cluster_ns, &resource);
    let started = Instant::now();
    let mut one = DynamicObject::new("p-one", &resource).within(&cluster_ns);
    one.data = serde_json::json!({ "spec": { "displayName": "One" }, "status": { "backingNamespace": backing } });
    loop {
        // The CRD may take a moment to be served.
        match projects.create(&PostParams::default(), &one).await {
            Ok(_) => break,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("Project: {e}"),
        }
    }
    let mut two = DynamicObject::new(&fallback, &resource).within(&cluster_ns);
    two.data = serde_json::json!({ "spec": { "displayName": "Two" } });
    projects.create(&PostParams::default(), &two).await.unwrap();
    // deploy/kubernetes/rbac-projects/bindings.yaml, for this cluster namespace and app-user.
    let bindings = for_user(&deploy_file("rbac-projects", "bindings.yaml"), "app-user")
        .replace("namespace: local\n", &format!("namespace: {cluster_ns}\n"))
        .replace("namespace: local-p-xxxxx\n", &format!("namespace: {backing}\n"));
    k8s.apply(&bindings).await;
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "RANCHER_PROJECT_SECRETS", &format!("{cluster_ns}:p-one,{cluster_ns}:{fallback}"));

    let run = run(&env, &["--once"]).await;

    assert_eq!(run.code, Some(0), "{}", run.output);
    for (namespace, project) in [(&backing, "p-one"), (&fallback, fallback.as_str())] {
        let secret = k8s.secret(namespace).await.unwrap_or_else(|| panic!("no Secret in {namespace}: {}", run.output));
        let labels = secret.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["management.cattle.io/project-scoped-secret"], project);
        assert_eq!(labels[MANAGED_BY], "rancher-ecr-credentials");
        assert_eq!(docker_config(&secret)["auths"][host(ACCOUNT)]["password"], NEW_PASSWORD);
    }
    assert!(k8s.secret(&cluster_ns).await.is_none());
    k8s.assert_no_secrets(&run.output);

    // An unknown project is an error that names it, with a hint.
    set(&mut env, "RANCHER_PROJECT_SECRETS", &format!("{cluster_ns}:p-nope"));
    let run = crate::harness::run(&env, &["--once"]).await;
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("p-nope") && run.output.contains("404"), "{}", run.output);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_403_in_one_namespace_names_it_and_the_others_are_still_written() {
    let Some(k8s) = cluster("a_403_in_one_namespace").await else { return };
    let ecr = ecr().await;
    let ok1 = k8s.create_namespace("ok1", &[]).await;
    let ok2 = k8s.create_namespace("ok2", &[]).await;
    let denied = k8s.create_namespace("denied", &[]).await;
    // A user of its own (app-user impersonates it), bound to the namespaces role cluster-wide and to the
    // secrets role only in ok1 and ok2, as the comment in deploy/kubernetes/rbac/secrets-binding.yaml says.
    let user = format!("recs-limited-{}", k8s.prefix);
    let mut yaml = format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {user}-impersonate
rules:
  - apiGroups: [\"\"]
    resources: [\"users\"]
    resourceNames: [\"{user}\"]
    verbs: [\"impersonate\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {user}-impersonate
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}-impersonate}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: app-user}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {user}-namespaces
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-namespaces}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
"
    );
    for namespace in [&ok1, &ok2] {
        yaml.push_str(&format!(
            "---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rancher-ecr-credentials-secrets, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-secrets}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
"
        ));
    }
    k8s.apply(&yaml).await;
    let kubeconfig = k8s.kubeconfig("limited", &k8s.app_token, None, Some(&user));
    let mut env = k8s.env(&ecr, &kubeconfig);
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));

    let run1 = run(&env, &["--once"]).await;

    assert_eq!(run1.code, Some(1), "{}", run1.output);
    assert!(k8s.secret(&ok1).await.is_some(), "{}", run1.output);
    assert!(k8s.secret(&ok2).await.is_some(), "{}", run1.output);
    assert!(k8s.secret(&denied).await.is_none(), "{}", run1.output);
    let line =
        // "HTTP 403", not "403": the test's random namespace prefix may contain those digits.
        run1.output.lines().find(|l| l.contains("HTTP 403")).unwrap_or_else(|| panic!("no 403 line: {}", run1.output));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(&format!("get secrets {denied}/{SECRET}")), "names verb, resource and namespace: {line}");
    assert!(line.contains("RBAC"), "{line}");
    assert!(!run1.output.contains(&format!("{ok1}/{SECRET}: HTTP")), "{}", run1.output);

    // A token the server does not know: 401, with a hint.
    let bad = k8s.kubeconfig("bad", "not-a-valid-token-for-this-server", None, None);
    let mut env = k8s.env(&ecr, &bad);
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    let run2 = run(&env, &["--once"]).await;
    assert_eq!(run2.code, Some(1), "{}", run2.output);
    assert!(run2.output.contains("401") && run2.output.contains("rejected the credentials"), "{}", run2.output);
    k8s.assert_no_secrets(&format!("{}{}", run1.output, run2.output));
    assert!(!run2.output.contains("not-a-valid-token-for-this-server"), "{}", run2.output);
}

/// A loopback TCP proxy in front of the API server that can be stopped and started again on the same port:
/// what the daemon sees when the API server goes away and comes back.
struct Proxy {
    port: u16,
    upstream: String,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn new(upstream: &str) -> Proxy {
        let port = free_port();
        Proxy {
            port,
            upstream: upstream.to_string(),
            accepting: None,
            connections: Arc::default(),
            up: Arc::new(AtomicBool::new(false)),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("the proxy's port is free again");
        let (upstream, connections, up) = (self.upstream.clone(), self.connections.clone(), self.up.clone());
        up.store(true, Ordering::SeqCst);
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(task);
            }
        }));
    }

    /// Closes the port and every connection through it.
    fn stop(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
        self.up.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn keeps_working_when_the_api_server_is_down_at_start_and_goes_away_under_the_daemon() {
    let Some(k8s) = cluster("keeps_working_when_the_api_server_goes_away").await else { return };
    let ecr = ecr().await;
    let upstream = k8s.api.trim_start_matches("https://").trim_end_matches('/').to_string();
    let mut proxy = Proxy::new(&upstream).await;
    let first = k8s.create_namespace("first", &[]).await;
    let kubeconfig = k8s.kubeconfig("proxied", &k8s.app_token, Some(&proxy.url()), None);
    let mut env = k8s.env(&ecr, &kubeconfig);
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));

    // Down at start: retried like Rancher.
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("will retry", Duration::from_secs(20)).await;
    proxy.start().await;
    k8s.wait_for_secret(&first, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no Secret after the server came up:\n{}", daemon.output()));

    // Gone under the daemon, with its watch open; a namespace appears meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.stop();
    let during = k8s.create_namespace("during", &[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(k8s.secret(&during).await.is_none(), "the daemon cannot have written it");
    proxy.start().await;
    let came_back = Instant::now();
    let (_, took) = k8s
        .wait_for_secret(&during, Duration::from_secs(40))
        .await
        .unwrap_or_else(|| panic!("no Secret after the server came back:\n{}", daemon.output()));
    eprintln!("server back -> Secret in the namespace made meanwhile after {took:?}");
    assert!(came_back.elapsed() < Duration::from_secs(40));
    // And the watch is live again: a new namespace is quick.
    let after = k8s.create_namespace("after", &[]).await;
    k8s.wait_for_secret(&after, NEW_NAMESPACE_LIMIT)
        .await
        .unwrap_or_else(|| panic!("watch not back:\n{}", daemon.output()));

    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

/// Rancher's Project resource, as the tests create it.
fn project_resource() -> ApiResource {
    ApiResource {
        group: "management.cattle.io".into(),
        version: "v3".into(),
        api_version: "management.cattle.io/v3".into(),
        kind: "Project".into(),
        plural: "projects".into(),
    }
}

impl Cluster {
    /// A Project in `cluster`'s namespace, with `backing` as its backing namespace; waits (bounded) for the CRD.
    async fn create_project(&self, cluster: &str, name: &str, backing: &str) {
        let resource = project_resource();
        let projects: Api<DynamicObject> = Api::namespaced_with(self.admin().await, cluster, &resource);
        let mut project = DynamicObject::new(name, &resource).within(cluster);
        project.data =
            serde_json::json!({ "spec": { "displayName": name }, "status": { "backingNamespace": backing } });
        let started = Instant::now();
        loop {
            match projects.create(&PostParams::default(), &project).await {
                Ok(_) => return,
                // The CRD may take a moment to be served.
                Err(_) if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("Project {cluster}/{name}: {e}"),
            }
        }
    }

    async fn delete_project(&self, cluster: &str, name: &str) {
        let projects: Api<DynamicObject> = Api::namespaced_with(self.admin().await, cluster, &project_resource());
        projects.delete(name, &Default::default()).await.unwrap();
    }
}

/// `rancher_ecr_credentials_places{state="current"}` of the daemon listening on `port`, once it is `want` (or
/// what it is after a bounded wait).
async fn places_become(port: u16, want: u64) -> Option<u64> {
    let started = Instant::now();
    loop {
        let now = current_places(port).await;
        if now == Some(want) || started.elapsed() > Duration::from_secs(3) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn current_places(port: u16) -> Option<u64> {
    let (_, metrics) = http_status(port, "/metrics").await;
    metrics
        .lines()
        .find(|l| l.starts_with("rancher_ecr_credentials_places{") && l.contains("state=\"current\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn every_project_of_a_cluster_gets_the_secret_a_new_one_within_seconds_and_other_clusters_never() {
    let Some(k8s) = cluster("every_project_of_a_cluster").await else { return };
    k8s.apply(PROJECT_CRD).await;
    let ecr = ecr().await;
    // Two clusters' namespaces on the local cluster, a project with its backing namespace in each.
    let cluster_ns = k8s.create_namespace("c", &[]).await;
    let other_ns = k8s.create_namespace("o", &[]).await;
    let one = k8s.create_namespace("c-p-one", &[]).await;
    k8s.create_project(&cluster_ns, "p-one", &one).await;
    let elsewhere = k8s.create_namespace("o-p-x", &[]).await;
    k8s.create_project(&other_ns, "p-x", &elsewhere).await;
    // deploy/kubernetes/rbac-projects-cluster for this cluster namespace (namespaces and secrets are bound
    // cluster-wide by bind_app_user); the other cluster's projects readable too, so that only the daemon's own
    // choice keeps them out.
    k8s.apply(&deploy_file("rbac-projects-cluster", "projects-watch.yaml")).await;
    let bindings = deploy_file("rbac-projects-cluster", "bindings.yaml");
    for namespace in [&cluster_ns, &other_ns] {
        k8s.apply(&for_user(&bindings, "app-user").replace("namespace: local\n", &format!("namespace: {namespace}\n")))
            .await;
    }
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "RANCHER_PROJECT_SECRETS", &format!("{cluster_ns}:*"));
    let port = port_of(&env);
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;
    daemon.wait_for_log("Watching Rancher projects", Duration::from_secs(5)).await;

    let secret = k8s.secret(&one).await.unwrap_or_else(|| panic!("no Secret in {one}:\n{}", daemon.output()));
    assert_eq!(secret.metadata.labels.as_ref().unwrap()["management.cattle.io/project-scoped-secret"], "p-one");
    assert!(k8s.secret(&elsewhere).await.is_none(), "another cluster's project:\n{}", daemon.output());
    assert_eq!(places_become(port, 1).await, Some(1), "{}", daemon.output());

    // A new project, its backing namespace made after it (as Rancher does): written within seconds of both.
    let new_ns = k8s.name("c-p-new");
    k8s.create_project(&cluster_ns, "p-new", &new_ns).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    k8s.create_namespace("c-p-new", &[]).await;
    let (secret, took) = k8s
        .wait_for_secret(&new_ns, NEW_NAMESPACE_LIMIT)
        .await
        .unwrap_or_else(|| panic!("no Secret in {new_ns} within {NEW_NAMESPACE_LIMIT:?}:\n{}", daemon.output()));
    eprintln!("new project (namespace last) -> Secret in {took:?}");
    assert_eq!(secret.metadata.labels.as_ref().unwrap()["management.cattle.io/project-scoped-secret"], "p-new");
    assert_eq!(docker_config(&secret)["auths"][host(ACCOUNT)]["password"], NEW_PASSWORD);
    // A new project whose namespace is already there (the namespace first).
    let late_ns = k8s.create_namespace("c-p-late", &[]).await;
    let started = Instant::now();
    k8s.create_project(&cluster_ns, "p-late", &late_ns).await;
    k8s.wait_for_secret(&late_ns, NEW_NAMESPACE_LIMIT)
        .await
        .unwrap_or_else(|| panic!("no Secret in {late_ns}:\n{}", daemon.output()));
    eprintln!("new project (namespace first) -> Secret in {:?}", started.elapsed());
    assert_eq!(places_become(port, 3).await, Some(3), "projects count as places:\n{}", daemon.output());

    // Another cluster's new project is never written.
    let other_new = k8s.create_namespace("o-p-y", &[]).await;
    k8s.create_project(&other_ns, "p-y", &other_new).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(k8s.secret(&other_new).await.is_none(), "another cluster's new project:\n{}", daemon.output());
    assert!(k8s.secret(&elsewhere).await.is_none());

    // A removed project is forgotten; its Secret is left to Rancher.
    k8s.delete_project(&cluster_ns, "p-new").await;
    daemon.wait_for_log("Rancher project removed", Duration::from_secs(5)).await;
    assert_eq!(places_become(port, 2).await, Some(2), "{}", daemon.output());
    assert!(k8s.secret(&new_ns).await.is_some(), "its Secret is left to Rancher");
    let (code, body) = http_status(port, "/readyz").await;
    assert_eq!(code, 200, "{body}");

    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn every_project_of_every_cluster_gets_the_secret_and_a_new_one_within_seconds() {
    let Some(k8s) = cluster("every_project_of_every_cluster").await else { return };
    k8s.apply(PROJECT_CRD).await;
    let ecr = ecr().await;
    // The server is shared: `*` sees every test's projects. A user of its own (app-user impersonates it) reads
    // every project (deploy/kubernetes/rbac-projects-all) and namespaces, but may write Secrets only in this test's
    // backing namespaces, so that the others' stay untouched.
    let user = format!("recs-star-{}", k8s.prefix);
    let yaml = format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {user}-impersonate
rules:
  - apiGroups: [\"\"]
    resources: [\"users\"]
    resourceNames: [\"{user}\"]
    verbs: [\"impersonate\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {user}-impersonate
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {user}-impersonate}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: app-user}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {user}-namespaces
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-namespaces}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
"
    );
    k8s.apply(&yaml).await;
    k8s.apply(&deploy_file("rbac-projects-cluster", "projects-watch.yaml")).await;
    let projects_binding = deploy_file("rbac-projects-all", "projects-binding.yaml")
        .replace("name: rancher-ecr-credentials-projects-watch\nroleRef", &format!("name: {user}-projects\nroleRef"));
    k8s.apply(&for_user(&projects_binding, &user)).await;
    let may_write = |namespace: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rancher-ecr-credentials-secrets, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rancher-ecr-credentials-secrets}}
subjects: [{{kind: User, apiGroup: rbac.authorization.k8s.io, name: {user}}}]
"
        )
    };
    let c1 = k8s.create_namespace("c1", &[]).await;
    let c2 = k8s.create_namespace("c2", &[]).await;
    let mut backing = Vec::new();
    for (cluster, name) in [(&c1, "p-a"), (&c2, "p-b")] {
        let namespace = k8s.create_namespace(&format!("{}-{name}", cluster.rsplit('-').next().unwrap()), &[]).await;
        k8s.apply(&may_write(&namespace)).await;
        k8s.create_project(cluster, name, &namespace).await;
        backing.push(namespace);
    }
    let kubeconfig = k8s.kubeconfig("star", &k8s.app_token, None, Some(&user));
    let mut env = k8s.env(&ecr, &kubeconfig);
    set(&mut env, "RANCHER_PROJECT_SECRETS", "*");
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Watching Rancher projects", Duration::from_secs(20)).await;
    for namespace in &backing {
        k8s.wait_for_secret(namespace, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no Secret in {namespace}:\n{}", daemon.output()));
    }

    // A new project in each cluster: its namespace (with the right to write there) first, then the project.
    for (cluster, name) in [(&c1, "p-c"), (&c2, "p-d")] {
        let namespace = k8s.create_namespace(&format!("{}-{name}", cluster.rsplit('-').next().unwrap()), &[]).await;
        k8s.apply(&may_write(&namespace)).await;
        let started = Instant::now();
        k8s.create_project(cluster, name, &namespace).await;
        let (secret, _) = k8s
            .wait_for_secret(&namespace, NEW_NAMESPACE_LIMIT)
            .await
            .unwrap_or_else(|| panic!("no Secret in {namespace} within {NEW_NAMESPACE_LIMIT:?}:\n{}", daemon.output()));
        eprintln!("new project with * -> Secret in {:?}", started.elapsed());
        assert_eq!(secret.metadata.labels.as_ref().unwrap()["management.cattle.io/project-scoped-secret"], name);
    }

    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}
