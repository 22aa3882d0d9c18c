//! `KUBERNETES_DIAGNOSE_PULLS` end to end: the real binary as `app-user` (with deploy/kubernetes/rbac plus
//! diagnose-pulls.yaml) against the real API server. There is no kubelet: the tests create Pods that never
//! schedule and POST the Events kubelet would, in the wording of containerd 1.6, 1.7, 2.x and CRI-O
//! (../shared/reference/pull-failures.md), then read the Warning Events the daemon wrote on the Pods.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, Event, EventSource, LocalObjectReference, ObjectReference, Pod, PodSpec, Secret,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

use super::*;

const OURS: &str = "rancher-ecr-credentials";
/// The password ECR hands out after the test changes it: long and unusual, searched for in every output.
const FRESH_PASSWORD: &str = "eyJwYXlsb2FkIjoiRlJFU0gtYWZ0ZXItYW4tZXhwaXJlZC1wdWxsIn0";
/// Every daemon with the option diagnoses every namespace: these tests run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// When the last of these tests ended: a daemon also diagnoses Events from up to 5 s before it started.
static LAST_ENDED: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// Holds the turn of one test; the next waits until the Events of this one are history to its daemon.
struct Turn(#[allow(dead_code)] tokio::sync::MutexGuard<'static, ()>);

async fn my_turn() -> Turn {
    let guard = ONE_AT_A_TIME.lock().await;
    let ended = *LAST_ENDED.lock().unwrap();
    if let Some(ended) = ended {
        tokio::time::sleep(Duration::from_secs(6).saturating_sub(ended.elapsed())).await;
    }
    Turn(guard)
}

impl Drop for Turn {
    fn drop(&mut self) {
        *LAST_ENDED.lock().unwrap() = Some(Instant::now());
    }
}

/// How long a diagnosis may take to appear on the Pod.
const DIAGNOSIS_LIMIT: Duration = Duration::from_secs(20);

fn ecr_image(account: &str) -> String {
    format!("{account}.dkr.ecr.{REGION}.amazonaws.com/shop/web:1.4")
}

/// One container: its name, image, and the runtime error kubelet reports for it (`None`: no Event).
struct Case {
    container: &'static str,
    image: String,
    error: String,
}

fn case(container: &'static str, image: &str, error: String) -> Case {
    Case { container, image: image.to_string(), error }
}

/// The no-credentials error of containerd 1.6 (< 1.6.25, 1.24–1.27 prefix), 1.7 (1.28+), 2.x and CRI-O.
fn no_credentials(image: &str) -> Vec<Case> {
    let host = image.split('/').next().unwrap();
    vec![
        case(
            "c16",
            image,
            format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request to https://{host}/v2/shop/web/manifests/1.4: 401 Unauthorized"
            ),
        ),
        case(
            "c17",
            image,
            format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"
            ),
        ),
        case(
            "c2x",
            image,
            format!(
                "failed to pull and unpack image \"{image}\": failed to resolve image: pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"
            ),
        ),
        case(
            "crio",
            image,
            format!(
                "initializing source docker://{image}: reading manifest 1.4 in {host}/shop/web: authentication required"
            ),
        ),
    ]
}

fn expired(image: &str) -> Vec<Case> {
    let host = image.split('/').next().unwrap();
    vec![
        case(
            "c16",
            image,
            format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request to https://{host}/v2/shop/web/manifests/1.4: 403 Forbidden"
            ),
        ),
        case(
            "c17",
            image,
            format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request to https://{host}/v2/shop/web/manifests/1.4: 403 Forbidden"
            ),
        ),
        case(
            "c2x",
            image,
            format!(
                "failed to pull and unpack image \"{image}\": failed to resolve image: unexpected status from HEAD request to https://{host}/v2/shop/web/manifests/1.4: 403 Forbidden\ndenied: Your authorization token has expired. Reauthenticate and try again."
            ),
        ),
        case(
            "crio",
            image,
            format!(
                "initializing source docker://{image}: reading manifest 1.4 in {host}/shop/web: denied: Your authorization token has expired. Reauthenticate and try again."
            ),
        ),
    ]
}

const PRINCIPAL: &str = "arn:aws:sts::123456789012:assumed-role/eks-node/i-0abc";

fn denied(image: &str) -> Vec<Case> {
    let host = image.split('/').next().unwrap();
    let body = format!(
        "denied: User: {PRINCIPAL} is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/shop/web because no identity-based policy allows the ecr:BatchGetImage action"
    );
    vec![
        case(
            "c2x",
            image,
            format!(
                "failed to pull and unpack image \"{image}\": failed to resolve image: unexpected status from HEAD request to https://{host}/v2/shop/web/manifests/1.4: 403 Forbidden\n{body}"
            ),
        ),
        case(
            "crio",
            image,
            format!("initializing source docker://{image}: reading manifest 1.4 in {host}/shop/web: {body}"),
        ),
    ]
}

fn not_found(image: &str) -> Vec<Case> {
    let host = image.split('/').next().unwrap();
    vec![
        case(
            "c16",
            image,
            format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
            ),
        ),
        case(
            "c2x",
            image,
            format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve image: {image}: not found"
            ),
        ),
        case(
            "crio",
            image,
            format!(
                "initializing source docker://{image}: reading manifest 1.4 in {host}/shop/web: name unknown: The repository with name 'shop/web' does not exist in the registry with id '123456789012'"
            ),
        ),
        case(
            "crio-tag",
            image,
            format!(
                "initializing source docker://{image}: reading manifest 1.4 in {host}/shop/web: manifest unknown: Requested image not found"
            ),
        ),
    ]
}

impl Cluster {
    /// The RBAC of the option, for app-user.
    async fn bind_diagnose_pulls(&self) {
        self.apply(&for_user(&deploy_file("rbac", "diagnose-pulls.yaml"), "app-user")).await;
    }

    async fn create_pod(
        &self,
        namespace: &str,
        name: &str,
        cases: &[Case],
        pull_secrets: &[&str],
        account: &str,
    ) -> String {
        let pod = Pod {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(PodSpec {
                automount_service_account_token: Some(false),
                service_account_name: Some(account.into()),
                containers: cases
                    .iter()
                    .map(|c| Container { name: c.container.into(), image: Some(c.image.clone()), ..Default::default() })
                    .collect(),
                image_pull_secrets: Some(
                    pull_secrets.iter().map(|s| LocalObjectReference { name: s.to_string() }).collect(),
                )
                .filter(|v: &Vec<_>| !v.is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod =
            Api::<Pod>::namespaced(self.admin().await, namespace).create(&PostParams::default(), &pod).await.unwrap();
        pod.metadata.uid.unwrap()
    }

    /// POSTs the Event kubelet writes for a failed pull: `Failed to pull image "<image>": <error>`.
    async fn kubelet_event(&self, namespace: &str, pod: &str, uid: &str, case: &Case, old_kubelet: bool) {
        let message = format!("Failed to pull image \"{}\": {}", case.image, case.error);
        self.post_event(
            namespace,
            pod,
            uid,
            Some(case.container),
            "Warning",
            "Failed",
            &message,
            "kubelet",
            old_kubelet,
        )
        .await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn post_event(
        &self,
        namespace: &str,
        pod: &str,
        uid: &str,
        container: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
        component: &str,
        old_kubelet: bool,
    ) {
        let now = Time(Timestamp::now());
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let event = Event {
            metadata: ObjectMeta { name: Some(format!("{pod}.{n:x}{}", self.prefix.len())), ..Default::default() },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                namespace: Some(namespace.into()),
                uid: Some(uid.into()),
                field_path: container.map(|c| format!("spec.containers{{{c}}}")),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            source: Some(EventSource { component: Some(component.into()), host: Some("node-1".into()) }),
            reporting_component: (!old_kubelet).then(|| component.to_string()),
            reporting_instance: (!old_kubelet).then(|| "node-1".to_string()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        Api::<Event>::namespaced(self.admin().await, namespace).create(&PostParams::default(), &event).await.unwrap();
    }

    /// The Events the daemon wrote about a Pod: (reason, container's field path, message).
    async fn diagnoses(&self, namespace: &str, uid: &str) -> Vec<(String, String, String)> {
        let api = Api::<Event>::namespaced(self.admin().await, namespace);
        let list = api.list(&ListParams::default().fields(&format!("involvedObject.uid={uid}"))).await.unwrap();
        list.items
            .into_iter()
            .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some(OURS))
            // The test's own forged Event (source ours, reason Failed) is not a diagnosis.
            .filter(|e| e.reason.as_deref().is_some_and(|r| r.starts_with("ECR")))
            .map(|e| {
                assert_eq!(e.type_.as_deref(), Some("Warning"));
                assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
                (
                    e.reason.unwrap_or_default(),
                    e.involved_object.field_path.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits (bounded) until the Pod has `count` diagnoses; returns them.
    async fn wait_for_diagnoses(
        &self,
        namespace: &str,
        uid: &str,
        count: usize,
        daemon: &Daemon,
    ) -> Vec<(String, String, String)> {
        let started = Instant::now();
        loop {
            let found = self.diagnoses(namespace, uid).await;
            if found.len() >= count {
                return found;
            }
            assert!(
                started.elapsed() < DIAGNOSIS_LIMIT,
                "{count} diagnoses expected in {namespace}, found {found:?}:\n{}",
                daemon.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn reasons(found: &[(String, String, String)]) -> Vec<&str> {
    let mut reasons: Vec<&str> = found.iter().map(|(r, ..)| r.as_str()).collect();
    reasons.sort();
    reasons
}

fn password_of(secret: &Secret) -> String {
    docker_config(secret)["auths"][host(ACCOUNT)]["password"].as_str().unwrap_or_default().to_string()
}

/// The GetAuthorizationToken calls the stand-in received.
fn token_calls(ecr: &standins::ecr::FakeEcr) -> usize {
    ecr.requests().iter().filter(|r| r.target == standins::ecr::TARGET).count()
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn every_cause_is_said_once_on_the_pod_in_every_runtimes_words() {
    let _turn = my_turn().await;
    let Some(k8s) = cluster("every_cause_is_said_once_on_the_pod").await else { return };
    k8s.bind_diagnose_pulls().await;
    let ecr = ecr().await;
    let sel = k8s.create_namespace("sel", &[]).await;
    let sa_ns = k8s.create_namespace("sa", &[]).await;
    let out = k8s.create_namespace("out", &[]).await;
    for namespace in [&sel, &sa_ns, &out] {
        k8s.create_service_account(namespace, "default", &[]).await;
    }
    k8s.create_service_account(&sa_ns, "builder", &[]).await;
    let image = ecr_image(ACCOUNT);
    // A Pod made before the daemon adds the Secret to its ServiceAccount.
    let predates_cases = vec![no_credentials(&image).swap_remove(1)];
    let predates = k8s.create_pod(&sa_ns, "predates", &predates_cases, &[], "builder").await;

    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    set(&mut env, "KUBERNETES_EXCLUDE_NAMESPACES", &out);
    set(&mut env, "KUBERNETES_SERVICE_ACCOUNTS", "builder");
    set(&mut env, "KUBERNETES_DIAGNOSE_PULLS", "true");
    let port = port_of(&env);
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;
    assert!(daemon.output().contains("Watching kubelet's Events for failed ECR pulls"), "{}", daemon.output());

    // Each cause in each runtime's words, one container per wording.
    let missing = k8s.create_pod(&out, "missing", &no_credentials(&image), &[SECRET], "default").await;
    let unreferenced = k8s.create_pod(&sel, "unreferenced", &no_credentials(&image), &[], "default").await;
    // 1.28+: kubelet cannot find a pull Secret the Pod names (no fieldPath; the Pod's first ECR image counts).
    let retrieve = k8s.create_pod(&out, "retrieve", &no_credentials(&image)[..1], &[SECRET], "default").await;
    let uncovered_image = ecr_image("999999999999");
    let uncovered = k8s.create_pod(&sel, "uncovered", &no_credentials(&uncovered_image), &[SECRET], "default").await;
    let denied_uid = k8s.create_pod(&sel, "denied", &denied(&image), &[SECRET], "default").await;
    let not_found_uid = k8s.create_pod(&sel, "not-found", &not_found(&image), &[SECRET], "default").await;
    // Every host form, and ECR Public.
    let forms: Vec<Case> = [
        ("fips", "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/shop/web:1.4"),
        ("dualstack", "123456789012.dkr-ecr.us-east-1.on.aws/shop/web:1.4"),
        ("dualstack-fips", "123456789012.dkr-ecr-fips.us-east-1.on.aws/shop/web:1.4"),
        ("china", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/shop/web:1.4"),
        ("iso", "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/shop/web:1.4"),
        ("public", "public.ecr.aws/shop/web:1.4"),
    ]
    .into_iter()
    .map(|(name, image)| case(name, image, not_found(image).swap_remove(0).error))
    .collect();
    let forms_uid = k8s.create_pod(&sel, "forms", &forms, &[SECRET], "default").await;
    // What must be ignored: a registry that is not ECR, a network error, Normal BackOff, our own Event, an Event
    // without a cause, a forged uid.
    let ignored_cases = vec![
        case("quay", "quay.io/shop/web:1.4", no_credentials("quay.io/shop/web:1.4").swap_remove(1).error),
        case(
            "network",
            &image,
            format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": failed to do request: Head \"https://{}/v2/shop/web/manifests/1.4\": dial tcp 10.0.0.1:443: i/o timeout",
                host(ACCOUNT)
            ),
        ),
        case("own", &image, no_credentials(&image).swap_remove(1).error),
        case("backoff", &image, String::new()),
    ];
    let ignored = k8s.create_pod(&sel, "ignored", &ignored_cases, &[], "default").await;

    let sets = [
        (&out, "missing", &missing, no_credentials(&image)),
        (&sel, "unreferenced", &unreferenced, no_credentials(&image)),
        (&sa_ns, "predates", &predates, predates_cases),
        (&sel, "uncovered", &uncovered, no_credentials(&uncovered_image)),
        (&sel, "denied", &denied_uid, denied(&image)),
        (&sel, "not-found", &not_found_uid, not_found(&image)),
        (&sel, "forms", &forms_uid, forms),
    ];
    for (namespace, pod, uid, cases) in &sets {
        for (i, case) in cases.iter().enumerate() {
            // Kubernetes before 1.28 sets no reportingComponent: every other Event is written that way.
            k8s.kubelet_event(namespace, pod, uid, case, i % 2 == 1).await;
        }
    }
    // The same failure again (kubelet's repeats, combined), and a forged uid: nothing more to say.
    for case in no_credentials(&image) {
        let message =
            format!("(combined from similar events): Failed to pull image \"{}\": {}", case.image, case.error);
        k8s.post_event(
            &sel,
            "unreferenced",
            &unreferenced,
            Some(case.container),
            "Warning",
            "Failed",
            &message,
            "kubelet",
            false,
        )
        .await;
    }
    let unable =
        format!("Unable to retrieve some image pull secrets ({SECRET}); attempting to pull the image may not succeed.");
    k8s.post_event(
        &out,
        "retrieve",
        &retrieve,
        None,
        "Warning",
        "FailedToRetrieveImagePullSecret",
        &unable,
        "kubelet",
        false,
    )
    .await;
    let forged = "00000000-0000-4000-8000-000000000000";
    k8s.kubelet_event(&sel, "unreferenced", forged, &no_credentials(&image).swap_remove(1), false).await;
    let [quay, network, own, _] = &ignored_cases[..] else { unreachable!() };
    k8s.kubelet_event(&sel, "ignored", &ignored, quay, false).await;
    k8s.kubelet_event(&sel, "ignored", &ignored, network, false).await;
    let own_message = format!("Failed to pull image \"{image}\": {}", own.error);
    k8s.post_event(&sel, "ignored", &ignored, Some("own"), "Warning", "Failed", &own_message, OURS, false).await;
    let backoff = format!("Back-off pulling image \"{image}\"");
    k8s.post_event(&sel, "ignored", &ignored, Some("backoff"), "Normal", "BackOff", &backoff, "kubelet", false).await;
    k8s.post_event(
        &sel,
        "ignored",
        &ignored,
        Some("backoff"),
        "Warning",
        "Failed",
        "Error: ErrImagePull",
        "kubelet",
        false,
    )
    .await;

    let found = k8s.wait_for_diagnoses(&out, &missing, 4, &daemon).await;
    assert_eq!(reasons(&found), ["ECRPullSecretMissing"; 4], "{found:?}");
    let message = &found[0].2;
    assert!(message.contains(&format!("no Secret {SECRET} in namespace {out}")), "{message}");
    assert!(message.contains("KUBERNETES_EXCLUDE_NAMESPACES"), "names the setting: {message}");
    let mut paths: Vec<&str> = found.iter().map(|(_, p, _)| p.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["spec.containers{c16}", "spec.containers{c17}", "spec.containers{c2x}", "spec.containers{crio}"]
    );

    let found = k8s.wait_for_diagnoses(&out, &retrieve, 1, &daemon).await;
    assert_eq!(reasons(&found), ["ECRPullSecretMissing"], "{found:?}");
    assert_eq!(found[0].1, "", "no container named: {found:?}");

    let found = k8s.wait_for_diagnoses(&sel, &unreferenced, 4, &daemon).await;
    assert_eq!(reasons(&found), ["ECRPullSecretNotReferenced"; 4], "{found:?}");
    assert!(found[0].2.contains("KUBERNETES_SERVICE_ACCOUNTS") && !found[0].2.contains("predates"), "{found:?}");

    let found = k8s.wait_for_diagnoses(&sa_ns, &predates, 1, &daemon).await;
    assert_eq!(reasons(&found), ["ECRPullSecretNotReferenced"], "{found:?}");
    assert!(found[0].2.contains("predates") && found[0].2.contains("builder"), "{found:?}");

    let found = k8s.wait_for_diagnoses(&sel, &uncovered, 4, &daemon).await;
    assert_eq!(reasons(&found), ["ECRRegistryNotCovered"; 4], "{found:?}");
    assert!(found[0].2.contains("account 999999999999 in us-east-1"), "{found:?}");
    assert!(found[0].2.contains("AWS_ECR_REGISTRY_IDS"), "{found:?}");

    let found = k8s.wait_for_diagnoses(&sel, &denied_uid, 2, &daemon).await;
    assert_eq!(reasons(&found), ["ECRAccessDenied"; 2], "{found:?}");
    assert!(found.iter().all(|(_, _, m)| m.contains(PRINCIPAL) && m.contains("repository policy")), "{found:?}");

    let found = k8s.wait_for_diagnoses(&sel, &not_found_uid, 4, &daemon).await;
    assert_eq!(reasons(&found), ["ECRImageNotFound"; 4], "{found:?}");

    let found = k8s.wait_for_diagnoses(&sel, &forms_uid, 6, &daemon).await;
    assert_eq!(reasons(&found), ["ECRImageNotFound"; 6], "{found:?}");

    // Nothing more, nothing twice, nothing about the ignored cases.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (namespace, _, uid, cases) in &sets {
        let found = k8s.diagnoses(namespace, uid).await;
        assert_eq!(found.len(), cases.len(), "once per container and reason: {found:?}");
    }
    assert_eq!(k8s.diagnoses(&sel, &ignored).await, [], "{}", daemon.output());
    assert_eq!(k8s.diagnoses(&sel, forged).await, [], "{}", daemon.output());

    let output = daemon.output();
    // Only this test's namespaces: a daemon also diagnoses Events posted just before it started (clock skew).
    let ours = format!("namespace={}-", k8s.prefix);
    let lines = output.lines().filter(|l| l.contains("Diagnosed a failed pull") && l.contains(&ours)).count();
    assert_eq!(lines, 26, "one INFO line per diagnosis:\n{output}");
    let line = output.lines().find(|l| l.contains("Diagnosed a failed pull") && l.contains("ECRAccessDenied")).unwrap();
    for field in
        ["INFO", &format!("namespace={sel}"), "pod=denied", "container=", &format!("registry={}", host(ACCOUNT))]
    {
        assert!(line.contains(field), "{field} in {line}");
    }
    let metrics = get(port, "/metrics").await.body;
    for (reason, count) in [
        ("ECRPullSecretMissing", 5),
        ("ECRPullSecretNotReferenced", 5),
        ("ECRRegistryNotCovered", 4),
        ("ECRTokenExpired", 0),
        ("ECRAccessDenied", 2),
        ("ECRImageNotFound", 10),
    ] {
        let needle = format!("rancher_ecr_credentials_pull_failures_total{{reason=\"{reason}\"}} {count}");
        assert!(metrics.contains(&needle), "{needle}:\n{metrics}");
    }
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    k8s.assert_no_secrets(&output);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn an_expired_token_is_refreshed_everywhere_within_seconds_and_at_most_once_in_five_minutes() {
    let _turn = my_turn().await;
    let Some(k8s) = cluster("an_expired_token_is_refreshed").await else { return };
    k8s.bind_diagnose_pulls().await;
    let ecr = ecr().await;
    let a = k8s.create_namespace("a", &[]).await;
    let b = k8s.create_namespace("b", &[]).await;
    for namespace in [&a, &b] {
        k8s.create_service_account(namespace, "default", &[]).await;
    }
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    set(&mut env, "KUBERNETES_DIAGNOSE_PULLS", "true");
    let port = port_of(&env);
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;
    assert_eq!(password_of(&k8s.secret(&b).await.unwrap()), NEW_PASSWORD);
    let calls_before = token_calls(&ecr);

    // ECR now hands out another token: only a refresh that asks ECR again can bring it.
    ecr.set_password(ACCOUNT, FRESH_PASSWORD);
    let image = ecr_image(ACCOUNT);
    let first = k8s.create_pod(&a, "first", &expired(&image), &[SECRET], "default").await;
    let posted = Instant::now();
    for (i, case) in expired(&image).iter().enumerate() {
        k8s.kubelet_event(&a, "first", &first, case, i == 0).await;
    }
    let mut took = None;
    while posted.elapsed() < Duration::from_secs(10) {
        let (sa, sb) = (k8s.secret(&a).await.unwrap(), k8s.secret(&b).await.unwrap());
        if password_of(&sa) == FRESH_PASSWORD && password_of(&sb) == FRESH_PASSWORD {
            took = Some(posted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = took.unwrap_or_else(|| panic!("no new token in the Secrets within 10 s:\n{}", daemon.output()));
    eprintln!("expired-token Event -> new token in every Secret after {took:?}");
    let found = k8s.wait_for_diagnoses(&a, &first, 4, &daemon).await;
    assert_eq!(reasons(&found), ["ECRTokenExpired"; 4], "{found:?}");
    let asked: Vec<&str> =
        found.iter().map(|(_, _, m)| m.as_str()).filter(|m| m.contains("asked ECR for a new token now")).collect();
    assert_eq!(asked.len(), 1, "one refresh for the four containers: {found:?}");
    assert_eq!(found.iter().filter(|(_, _, m)| m.contains("already asked")).count(), 3, "{found:?}");
    let bare_403 = found.iter().find(|(_, p, _)| p == "spec.containers{c16}").unwrap();
    assert!(bare_403.2.contains("suspected"), "a bare 403 is a suspected expiry: {bare_403:?}");
    assert_eq!(token_calls(&ecr), calls_before + 1, "one GetAuthorizationToken:\n{}", daemon.output());

    // A second expired-token pull within 5 minutes, from another Pod: said, but no second refresh.
    let second = k8s.create_pod(&b, "second", &expired(&image)[3..], &[SECRET], "default").await;
    k8s.kubelet_event(&b, "second", &second, &expired(&image)[3], false).await;
    let found = k8s.wait_for_diagnoses(&b, &second, 1, &daemon).await;
    assert!(found[0].2.contains("already asked"), "{found:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(token_calls(&ecr), calls_before + 1, "rate-limited:\n{}", daemon.output());

    // The bare 403 again, well after the new token was written (kubelet's retry): access denied, not expiry.
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(posted.elapsed())).await;
    k8s.kubelet_event(&a, "first", &first, &expired(&image)[0], false).await;
    let found = k8s.wait_for_diagnoses(&a, &first, 5, &daemon).await;
    let denied: Vec<_> = found.iter().filter(|(r, _, _)| r == "ECRAccessDenied").collect();
    assert_eq!(denied.len(), 1, "{found:?}");
    assert!(denied[0].1 == "spec.containers{c16}" && denied[0].2.contains("again after"), "{denied:?}");
    assert_eq!(token_calls(&ecr), calls_before + 1, "no refresh for access denied:\n{}", daemon.output());

    let metrics = get(port, "/metrics").await.body;
    assert!(metrics.contains("rancher_ecr_credentials_pull_failures_total{reason=\"ECRTokenExpired\"} 5"), "{metrics}");
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains(FRESH_PASSWORD), "the new password in the output:\n{output}");
    k8s.assert_no_secrets(&output);
}

#[tokio::test]
#[ignore = "needs a Kubernetes API server (../shared/tools/k8s); run with --include-ignored"]
async fn with_the_option_off_no_event_is_read_or_written() {
    let _turn = my_turn().await;
    let Some(k8s) = cluster("with_the_option_off").await else { return };
    let ecr = ecr().await;
    let a = k8s.create_namespace("a", &[]).await;
    k8s.create_service_account(&a, "default", &[]).await;
    // No events, pods or serviceaccounts rights at all (the RBAC of the option is for another user here).
    let mut env = k8s.env(&ecr, &k8s.app_kubeconfig());
    set(&mut env, "KUBERNETES_NAMESPACES", &format!("{}-*", k8s.prefix));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_for_log("Refresh complete", Duration::from_secs(20)).await;
    let image = ecr_image(ACCOUNT);
    let cases = no_credentials(&image);
    let uid = k8s.create_pod(&a, "p", &cases, &[], "default").await;
    k8s.kubelet_event(&a, "p", &uid, &cases[1], false).await;
    k8s.kubelet_event(&a, "p", &uid, &cases[3], false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(k8s.diagnoses(&a, &uid).await, [], "{}", daemon.output());
    let (code, _, output) = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains("Watching kubelet's Events"), "{output}");
    assert!(!output.contains("Diagnosed"), "{output}");
}
