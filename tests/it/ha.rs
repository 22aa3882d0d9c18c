//! High availability end to end: two real daemons (the binary, environment variables only) sharing one Lease on
//! the real API server, as two replicas of the chart would. Each daemon gets its own ECR stand-in with its own
//! password, so what a target holds says which daemon wrote it, and a standby's stand-in shows it asked nothing.
//!
//! The default timings (15 s lease, renewed every 5 s, a standby looking every 2 s): the points are "a standby
//! takes over within lease duration + 5 s after `kill -9`" and "within 5 s after SIGTERM".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use standins::ecr::{EcrRegistry, FakeEcr};

use crate::apiserver::{Server, rule, server};
use crate::harness::*;
use crate::sources::{PASSWORD_A, PASSWORD_B};

const LEASE: &str = "rancher-ecr-credentials";
const SECRET: &str = "ecr-credentials";
/// The daemon's default lease duration.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// A test's namespaces, and a user (app-user impersonating one of the test's own) with the rights of the chart:
/// namespaces list/watch, secrets and events cluster-wide, and the Lease rights in the Lease's namespace.
struct Setup {
    k8s: Server,
    lease_namespace: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn setup(test: &str) -> Setup {
    let k8s = server(test);
    let lease_namespace = k8s.create_namespace("lease").await;
    let (user, _) = k8s.user("daemon", None).await;
    let admin = k8s.admin().await;
    let name = format!("{user}-target");
    let role = ClusterRole {
        metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() },
        rules: Some(vec![
            rule("", "namespaces", &[], &["get", "list", "watch"]),
            rule("", "secrets", &[], &["get", "list", "watch", "create", "patch"]),
            rule("", "events", &[], &["create", "patch"]),
            rule("events.k8s.io", "events", &[], &["create", "patch"]),
        ]),
        ..Default::default()
    };
    Api::<ClusterRole>::all(admin.clone()).create(&PostParams::default(), &role).await.unwrap();
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() },
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.clone(),
            namespace: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(admin).create(&PostParams::default(), &binding).await.unwrap();
    // What the chart grants in its own namespace: create, and get/update of the one Lease by name.
    let rules = vec![
        rule("coordination.k8s.io", "leases", &[], &["create"]),
        rule("coordination.k8s.io", "leases", &[LEASE], &["get", "update"]),
    ];
    k8s.grant(&lease_namespace, &user, &format!("{user}-leases"), rules).await;

    let var = |name: &str| std::env::var(name).unwrap();
    let dir = std::env::temp_dir().join(format!("recs-ha-{}", k8s.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("daemon.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {}\n    as: {user}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: u\ncurrent-context: test\n",
            var("K8S_API"),
            var("K8S_CA"),
            var("K8S_APP_TOKEN")
        ),
    )
    .unwrap();
    Setup { k8s, lease_namespace, kubeconfig, dir }
}

/// An ECR stand-in whose one registry (ACCOUNT) hands out `password`.
async fn ecr_with(password: &str) -> FakeEcr {
    let ecr = FakeEcr::start().await;
    ecr.add_registry(EcrRegistry {
        account_id: ACCOUNT.into(),
        region: REGION.into(),
        password: password.into(),
        expires_at: now_secs() + 12.0 * 3600.0,
    });
    ecr
}

impl Setup {
    /// The environment of replica `identity`: its own ECR stand-in and health port, leader election on.
    fn env(&self, ecr: &FakeEcr, identity: &str) -> Vec<(String, String)> {
        let mut env = env(ecr, "unused");
        set(&mut env, "KUBECONFIG", self.kubeconfig.to_str().unwrap());
        set(&mut env, "AWS_ECR_REGISTRY_IDS", ACCOUNT);
        set(&mut env, "LISTEN_ADDRESS", "127.0.0.1");
        set(&mut env, "LISTEN_PORT", &free_port().to_string());
        set(&mut env, "RETRY_DELAY", "500ms");
        set(&mut env, "RETRY_MAX_DELAY", "2s");
        set(&mut env, "RANCHER_TIMEOUT", "5s");
        set(&mut env, "LEADER_ELECTION", "true");
        set(&mut env, "LEADER_ELECTION_NAMESPACE", &self.lease_namespace);
        set(&mut env, "POD_NAME", identity);
        env
    }

    /// The same, writing into the Kubernetes namespace `namespace` (and no Rancher).
    fn kube_env(&self, ecr: &FakeEcr, identity: &str, namespace: &str) -> Vec<(String, String)> {
        let mut env = self.env(ecr, identity);
        for name in ["CATTLE_URL", "CATTLE_ACCESS_KEY", "CATTLE_SECRET_KEY"] {
            unset(&mut env, name);
        }
        set(&mut env, "KUBERNETES_NAMESPACES", namespace);
        env
    }

    async fn holder(&self) -> Option<String> {
        let api = Api::<Lease>::namespaced(self.k8s.admin().await, &self.lease_namespace);
        api.get_opt(LEASE).await.unwrap().and_then(|l| l.spec).and_then(|s| s.holder_identity)
    }

    /// The password our Secret in `namespace` holds for ACCOUNT's registry, and its resourceVersion.
    async fn secret(&self, namespace: &str) -> Option<(String, String)> {
        let api = Api::<Secret>::namespaced(self.k8s.admin().await, namespace);
        let secret = api.get_opt(SECRET).await.unwrap()?;
        let data = &secret.data.as_ref()?[".dockerconfigjson"].0;
        let config: serde_json::Value = serde_json::from_slice(data).ok()?;
        let password = config["auths"][host(ACCOUNT)]["password"].as_str()?.to_string();
        Some((password, secret.metadata.resource_version.unwrap_or_default()))
    }

    /// Waits (bounded) until the Secret in `namespace` holds `password`; how long that took.
    async fn wait_for_password(&self, namespace: &str, password: &str, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.secret(namespace).await.is_some_and(|(p, _)| p == password) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

fn port_of(env: &[(String, String)]) -> u16 {
    env.iter().find(|(k, _)| k == "LISTEN_PORT").unwrap().1.parse().unwrap()
}

/// The value of `rancher_ecr_credentials_leader` in the daemon's metrics, if it has the metric.
async fn leader_metric(port: u16) -> Option<String> {
    let metrics = get(port, "/metrics").await.body;
    metrics.lines().find_map(|l| l.strip_prefix("rancher_ecr_credentials_leader ").map(str::to_string))
}

fn kill_9(daemon: &Daemon) {
    // SAFETY: kill(2) with the pid of our own child and a valid signal has no memory-safety preconditions.
    let rc = unsafe { libc::kill(daemon.pid(), libc::SIGKILL) };
    assert_eq!(rc, 0, "SIGKILL delivered");
}

/// A leads and writes; B starts and stands by: live, ready ("standby"), writing nothing and asking ECR nothing,
/// while A renews. Returns both, with their stand-ins and ports.
async fn leader_and_standby(setup: &Setup, namespace: &str) -> (Daemon, Daemon, FakeEcr, FakeEcr, u16, u16) {
    let (ecr_a, ecr_b) = (ecr_with(PASSWORD_A).await, ecr_with(PASSWORD_B).await);
    let (env_a, env_b) =
        (setup.kube_env(&ecr_a, "replica-a", namespace), setup.kube_env(&ecr_b, "replica-b", namespace));
    let (port_a, port_b) = (port_of(&env_a), port_of(&env_b));
    let a = Daemon::start(&env_a, &[]);
    setup
        .wait_for_password(namespace, PASSWORD_A, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("a never wrote:\n{}", a.output()));
    assert_eq!(setup.holder().await.as_deref(), Some("replica-a"));
    let (_, written) = setup.secret(namespace).await.unwrap();

    let b = Daemon::start(&env_b, &[]);
    b.wait_for_log("Standby", Duration::from_secs(15)).await;
    // Two renewals of A: B goes on standing by and writes nothing.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(11) {
        assert_eq!(
            setup.secret(namespace).await.map(|(_, v)| v),
            Some(written.clone()),
            "the Secret was written again:\nA:\n{}\nB:\n{}",
            a.output(),
            b.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ecr_b.requests().is_empty(), "the standby asked ECR for tokens:\n{}", b.output());
    assert_eq!(ecr_a.requests().len(), 1, "the leader refreshed once:\n{}", a.output());
    assert_eq!(setup.holder().await.as_deref(), Some("replica-a"));

    let ready = get(port_b, "/readyz").await;
    assert_eq!(ready.status, 200, "a standby is ready: {}", ready.body);
    assert!(ready.body.contains("\"role\":\"standby\""), "{}", ready.body);
    assert_eq!(get(port_b, "/healthz").await.status, 200, "a standby is live");
    let ready = get(port_a, "/readyz").await;
    assert!(ready.status == 200 && ready.body.contains("\"role\":\"leader\""), "{}", ready.body);
    assert_eq!(leader_metric(port_a).await.as_deref(), Some("1"));
    assert_eq!(leader_metric(port_b).await.as_deref(), Some("0"));
    (a, b, ecr_a, ecr_b, port_a, port_b)
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn of_two_daemons_sharing_a_lease_only_the_leader_writes_and_after_kill_9_the_standby_writes_within_the_lease_duration_plus_5_s()
 {
    let setup = setup("kill_9_of_the_leader").await;
    let apps = setup.k8s.create_namespace("apps").await;
    let (a, b, _ecr_a, ecr_b, _, port_b) = leader_and_standby(&setup, &apps).await;

    kill_9(&a);
    let killed = Instant::now();
    let took = setup
        .wait_for_password(&apps, PASSWORD_B, LEASE_DURATION + Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("the standby did not write within lease duration + 5 s:\n{}", b.output()));
    eprintln!("kill -9 of the leader -> the standby wrote after {:?}", killed.elapsed());
    assert!(took <= LEASE_DURATION + Duration::from_secs(5));
    assert_eq!(setup.holder().await.as_deref(), Some("replica-b"));
    assert_eq!(ecr_b.requests().len(), 1, "the new leader refreshed at once, once");
    assert!(b.output().contains("Leading: refreshing every target now"), "{}", b.output());
    assert_eq!(leader_metric(port_b).await.as_deref(), Some("1"));
    let ready = get(port_b, "/readyz").await;
    assert!(ready.status == 200 && ready.body.contains("\"role\":\"leader\""), "{}", ready.body);

    let (code, _, output) = b.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("Released the Lease"), "{output}");
    assert_eq!(setup.holder().await, None, "released at shutdown");
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn after_sigterm_of_the_leader_the_standby_takes_over_and_writes_within_5_s() {
    let setup = setup("sigterm_of_the_leader").await;
    let apps = setup.k8s.create_namespace("apps").await;
    let (a, b, _ecr_a, ecr_b, _, _) = leader_and_standby(&setup, &apps).await;

    let stopping = Instant::now();
    let (code, _, output) = a.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("Released the Lease"), "{output}");
    setup
        .wait_for_password(&apps, PASSWORD_B, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("the standby did not write within 5 s of SIGTERM:\n{}", b.output()));
    let took = stopping.elapsed();
    eprintln!("SIGTERM of the leader -> the standby wrote after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(setup.holder().await.as_deref(), Some("replica-b"));
    assert_eq!(ecr_b.requests().len(), 1);

    let (code, _, output) = b.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn of_two_rancher_daemons_started_together_only_the_leader_puts_and_the_standby_asks_nothing() {
    let setup = setup("rancher_pair").await;
    let cattle = cattle().await;
    let registry = cattle.add_registry(&host(ACCOUNT));
    let credential = cattle.add_credential(&registry, "AWS", OLD_PASSWORD);
    let (ecr_a, ecr_b) = (ecr_with(PASSWORD_A).await, ecr_with(PASSWORD_B).await);
    let url = format!("{}/v2-beta", cattle.url());
    let mut env_a = setup.env(&ecr_a, "replica-a");
    let mut env_b = setup.env(&ecr_b, "replica-b");
    set(&mut env_a, "CATTLE_URL", &url);
    set(&mut env_b, "CATTLE_URL", &url);
    // Started together: they race for the Lease, and exactly one wins.
    let (a, b) = (Daemon::start(&env_a, &[]), Daemon::start(&env_b, &[]));
    let written = wait_until(Duration::from_secs(20), || {
        matches!(secret_of(&cattle, &credential).as_deref(), Some(PASSWORD_A | PASSWORD_B))
    })
    .await;
    assert!(written.is_ok(), "nobody wrote:\nA:\n{}\nB:\n{}", a.output(), b.output());
    // Two renewals later, still one PUT, by the holder.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let holder = setup.holder().await.expect("a holder");
    let (leader, standby, leader_ecr, standby_ecr, password) = match holder.as_str() {
        "replica-a" => (&a, &b, &ecr_a, &ecr_b, PASSWORD_A),
        "replica-b" => (&b, &a, &ecr_b, &ecr_a, PASSWORD_B),
        other => panic!("holder {other}"),
    };
    let puts: Vec<_> = cattle.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "{puts:?}\nA:\n{}\nB:\n{}", a.output(), b.output());
    assert_eq!(puts[0].body.as_ref().unwrap()["secretValue"], password, "the PUT came from the holder");
    assert_eq!(secret_of(&cattle, &credential).as_deref(), Some(password));
    assert!(standby_ecr.requests().is_empty(), "the standby asked ECR:\n{}", standby.output());
    assert_eq!(leader_ecr.requests().len(), 1);
    assert!(standby.output().contains("Standby"), "{}", standby.output());
    assert!(!standby.output().contains("Updated credential"), "{}", standby.output());
    assert!(leader.output().contains("Updated credential"), "{}", leader.output());
    drop((a, b));
}

#[tokio::test]
async fn leader_election_outside_a_pod_without_its_namespace_is_a_configuration_error_naming_it() {
    let ecr = ecr_with(PASSWORD_A).await;
    let mut base = env(&ecr, "http://127.0.0.1:9/v2-beta");
    set(&mut base, "LEADER_ELECTION", "true");
    set(&mut base, "POD_NAME", "replica-a");

    let run1 = run(&base, &[]).await;
    assert_eq!(run1.code, Some(2), "{}", run1.output);
    let line = run1.output.lines().find(|l| l.contains("configuration error")).unwrap_or_default();
    assert!(line.contains("LEADER_ELECTION_NAMESPACE") && line.contains("not in a pod"), "{}", run1.output);

    let mut with_namespace = base.clone();
    set(&mut with_namespace, "LEADER_ELECTION_NAMESPACE", "Not_A_Namespace");
    let run2 = run(&with_namespace, &[]).await;
    assert_eq!(run2.code, Some(2), "{}", run2.output);
    assert!(run2.output.contains("LEADER_ELECTION_NAMESPACE: \"Not_A_Namespace\""), "{}", run2.output);

    // --once takes no Lease: refused with the election on, rather than writing beside a leader.
    set(&mut with_namespace, "LEADER_ELECTION_NAMESPACE", "apps");
    let run3 = run(&with_namespace, &["--once"]).await;
    assert_eq!(run3.code, Some(2), "{}", run3.output);
    assert!(run3.output.contains("LEADER_ELECTION: cannot be combined with --once"), "{}", run3.output);
    assert!(ecr.requests().is_empty(), "nothing was called");
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn a_leader_whose_lease_is_taken_stops_writing_and_refreshes_at_once_when_it_leads_again() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let setup = setup("lease_taken_from_the_leader").await;
    let apps = setup.k8s.create_namespace("apps").await;
    let ecr = ecr_with(PASSWORD_A).await;
    let env = setup.kube_env(&ecr, "replica-a", &apps);
    let port = port_of(&env);
    let a = Daemon::start(&env, &[]);
    setup
        .wait_for_password(&apps, PASSWORD_A, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("a never wrote:\n{}", a.output()));

    // Someone else takes the Lease (written by hand, for 8 s): a's next renewal finds it taken.
    let leases = Api::<Lease>::namespaced(setup.k8s.admin().await, &setup.lease_namespace);
    let mut lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("someone-else".into());
    spec.lease_duration_seconds = Some(8);
    spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
    leases.replace(LEASE, &PostParams::default(), &lease).await.unwrap();
    let taken = Instant::now();
    a.wait_for_log("Standby: no longer the leader", Duration::from_secs(10)).await;
    let ready = get(port, "/readyz").await;
    assert!(ready.status == 200 && ready.body.contains("\"role\":\"standby\""), "{}", ready.body);
    assert_eq!(leader_metric(port).await.as_deref(), Some("0"));

    // Standing by, it writes nothing: a Secret deleted now stays deleted while the other holds the Lease.
    Api::<Secret>::namespaced(setup.k8s.admin().await, &apps).delete(SECRET, &Default::default()).await.unwrap();
    while taken.elapsed() < Duration::from_secs(7) {
        assert!(setup.secret(&apps).await.is_none(), "a standby wrote:\n{}", a.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ecr.requests().len(), 1, "a standby asks ECR nothing");

    // The hand-written Lease expires: a takes it back and refreshes at once.
    setup
        .wait_for_password(&apps, PASSWORD_A, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("a did not write again after taking the Lease back:\n{}", a.output()));
    eprintln!("Lease taken from the leader -> written again after it expired, {:?} later", taken.elapsed());
    assert_eq!(setup.holder().await.as_deref(), Some("replica-a"));
    // (Tokens fetched less than 5 minutes ago are reused: ECR is not asked again.)
    assert_eq!(a.output().matches("Refresh complete").count(), 2, "one refresh at once on leading again");
    assert_eq!(leader_metric(port).await.as_deref(), Some("1"));
    let (code, _, output) = a.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
}
