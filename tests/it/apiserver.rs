//! The real API server (`../shared/tools/k8s all`, then `source "$(… env)"`) for tests that call the library
//! directly (leader election, Events) instead of running the binary.
//!
//! Each test gets a unique prefix for its namespaces, and a user of its own: `app-user` (K8S_APP_TOKEN)
//! impersonating `recs-<prefix>-<name>`, which has no rights but the ones the test grants. So what other tests bind
//! to `app-user` cluster-wide cannot give these tests rights they mean to withhold. Clients verify the server's
//! certificate against the test CA and bound every call (connect and read timeouts), as the daemon's do.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The read timeout of the clients made here.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Server {
    pub api: String,
    pub(crate) ca: String,
    pub(crate) admin_token: String,
    pub(crate) app_token: String,
    pub prefix: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The server from `k8s env`; panics, saying how to start it, without its environment (the tests that call this
/// are `#[ignore]`d unless asked for).
pub fn server(test: &str) -> Server {
    server_with_prefix(test, 'l')
}

/// [`server`], with the test's unique name prefix (for its namespaces) starting with `letter`.
pub(crate) fn server_with_prefix(test: &str, letter: char) -> Server {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(api), Some(ca), Some(admin_token), Some(app_token)) =
        (var("K8S_API"), var("K8S_CA"), var("K8S_ADMIN_TOKEN"), var("K8S_APP_TOKEN"))
    else {
        panic!(
            "{test}: needs a Kubernetes API server: run ../shared/tools/k8s all and source \"$(../shared/tools/k8s env)\" \
             (K8S_API, K8S_CA, K8S_ADMIN_TOKEN and K8S_APP_TOKEN are not set)"
        );
    };
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 100_000_000;
    let prefix = format!("{letter}{stamp}-{}{n}", std::process::id() % 1000);
    Server { api: api.trim_end_matches('/').to_string(), ca, admin_token, app_token, prefix }
}

impl Server {
    /// A client for `token` on `server` (default: the API server), optionally impersonating `user`.
    async fn client(&self, token: &str, server: Option<&str>, user: Option<&str>) -> kube::Client {
        let server = server.unwrap_or(&self.api);
        let impersonate = user.map(|user| format!("\n    as: {user}")).unwrap_or_default();
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}{impersonate}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: u\ncurrent-context: test\n",
            self.ca
        );
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        // The API server is on loopback: never through a proxy from the environment.
        config.proxy_url = None;
        config.connect_timeout = Some(CALL_TIMEOUT);
        config.read_timeout = Some(CALL_TIMEOUT);
        kube::Client::try_from(config).unwrap()
    }

    pub async fn admin(&self) -> kube::Client {
        self.client(&self.admin_token, None, None).await
    }

    /// A user of this test's own, with no rights yet, and a client that acts as that user (app-user's token,
    /// impersonating it), on `server` when given (a proxy in front of the API server).
    pub async fn user(&self, name: &str, server: Option<&str>) -> (String, kube::Client) {
        let user = format!("recs-{}-{name}", self.prefix);
        let admin = self.admin().await;
        let role = ClusterRole {
            metadata: meta(&format!("{user}-impersonate"), None),
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["users".into()]),
                resource_names: Some(vec![user.clone()]),
                verbs: vec!["impersonate".into()],
                ..Default::default()
            }]),
            ..Default::default()
        };
        Api::<ClusterRole>::all(admin.clone()).create(&PostParams::default(), &role).await.unwrap();
        let binding = ClusterRoleBinding {
            metadata: meta(&format!("{user}-impersonate"), None),
            role_ref: role_ref("ClusterRole", &format!("{user}-impersonate")),
            subjects: Some(vec![subject("app-user")]),
        };
        Api::<ClusterRoleBinding>::all(admin).create(&PostParams::default(), &binding).await.unwrap();
        let client = self.client(&self.app_token, server, Some(&user)).await;
        (user, client)
    }

    /// Grants `user` the `rules` in `namespace` (a Role and its RoleBinding named `name`).
    pub async fn grant(&self, namespace: &str, user: &str, name: &str, rules: Vec<PolicyRule>) {
        let admin = self.admin().await;
        let role = Role { metadata: meta(name, Some(namespace)), rules: Some(rules) };
        Api::<Role>::namespaced(admin.clone(), namespace).create(&PostParams::default(), &role).await.unwrap();
        let binding = RoleBinding {
            metadata: meta(name, Some(namespace)),
            role_ref: role_ref("Role", name),
            subjects: Some(vec![subject(user)]),
        };
        Api::<RoleBinding>::namespaced(admin, namespace).create(&PostParams::default(), &binding).await.unwrap();
        // RBAC takes effect at once on a single API server; wait until it does, bounded.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    pub async fn create_namespace(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        let namespace = Namespace { metadata: meta(&name, None), ..Default::default() };
        Api::<Namespace>::all(self.admin().await).create(&PostParams::default(), &namespace).await.unwrap();
        name
    }
}

pub fn rule(group: &str, resource: &str, names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(vec![resource.to_string()]),
        resource_names: Some(names.iter().map(|n| n.to_string()).collect()).filter(|n: &Vec<_>| !n.is_empty()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        labels: Some(BTreeMap::from([("test".to_string(), "rancher-ecr-credentials".to_string())])),
        ..Default::default()
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: kind.into(), name: name.into() }
}

fn subject(user: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "User".into(),
        name: user.into(),
        namespace: None,
    }
}

/// A loopback TCP proxy in front of the API server that can be frozen: connections stay open (and new ones are
/// accepted) but nothing goes through, so every call hangs until its timeout. The worst an API server can do.
pub struct Proxy {
    pub url: String,
    frozen: Arc<AtomicBool>,
    accepting: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("https://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let frozen = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (flag, tasks) = (frozen.clone(), connections.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (upstream, frozen) = (upstream.clone(), flag.clone());
                let task = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else { return };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::join!(pipe(from_client, to_server, frozen.clone()), pipe(from_server, to_client, frozen));
                });
                tasks.lock().unwrap().push(task);
            }
        });
        Proxy { url, frozen, accepting, connections }
    }

    /// From now on, bytes in either direction are swallowed.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Log lines of the library, captured for the current thread (a `#[tokio::test]` runs its tasks on it).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures everything at DEBUG and above until the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines at `level` (`WARN`, `INFO`) that contain `text`.
    pub fn lines(&self, level: &str, text: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(&format!(" {level} ")) && l.contains(text))
            .map(String::from)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
