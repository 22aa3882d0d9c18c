//! A fake Kubernetes API server at the kube client boundary, for the logic tests of this module: a
//! `tower_test::mock` service behind a real `kube::Client` (as kube-rs controller-rs `src/fixtures.rs` does),
//! answered by a small in-memory store of namespaces, Secrets, ServiceAccounts and Rancher projects. The
//! requests and their bodies go through kube's own serialization; every request is recorded, so that a test can
//! assert which calls were made (and that no write was).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use super::cluster::Kubernetes;
use super::select::Selection;
use super::settings::{Mode, Settings};
use crate::token::RegistryToken;

/// One request as the fake received it: method, path with query, and the JSON body (`null` when none).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub body: Value,
}

impl Seen {
    /// A write of a Secret or a ServiceAccount (an Event is not one).
    pub fn is_write(&self) -> bool {
        self.method != Method::GET && !self.is_event()
    }

    pub fn is_event(&self) -> bool {
        self.path.starts_with("/apis/events.k8s.io/")
    }
}

/// What the fake API server holds, and what it refuses.
#[derive(Default)]
pub struct Store {
    /// Namespace → its labels, and whether it is being deleted.
    pub namespaces: BTreeMap<String, (BTreeMap<String, String>, bool)>,
    /// (namespace, name) → the Secret as JSON.
    pub secrets: BTreeMap<(String, String), Value>,
    /// (namespace, name) → the ServiceAccount as JSON.
    pub accounts: BTreeMap<(String, String), Value>,
    /// (cluster, project) → the project's backing namespace.
    pub projects: BTreeMap<(String, String), String>,
    /// Namespaces where every write is refused with 403.
    pub forbidden: BTreeSet<String>,
    /// ServiceAccounts changed by someone else just before our patch: it is refused with 409.
    pub conflicts: BTreeSet<(String, String)>,
    /// The cluster-wide LIST of Secrets is refused with 403 (RBAC bound per namespace).
    pub list_forbidden: bool,
    /// Secrets per page of a LIST (the server's own cap); 0: as the client asks.
    pub page: usize,
    /// Namespace → its uid, when not `uid-<name>` (a namespace made again).
    pub uids: BTreeMap<String, String>,
    /// The Events received (events.k8s.io/v1, as JSON).
    pub events: Vec<Value>,
    /// Namespaces where creating Events is refused with 403.
    pub events_forbidden: BTreeSet<String>,
    pub seen: Vec<Seen>,
}

/// The fake server: its store, shared with the task that answers.
#[derive(Clone)]
pub struct Fake(pub Arc<Mutex<Store>>);

impl Fake {
    /// A fake with `store`, and a client whose every request it answers.
    pub fn start(store: Store) -> (Fake, kube::Client) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = Fake(Arc::new(Mutex::new(store)));
        let serving = fake.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let (status, answer) = serving.answer(&parts.method, &path, &body);
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                    .expect("a valid response");
                respond.send_response(response);
            }
        });
        (fake, kube::Client::new(service, "default"))
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The requests received so far, emptied.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut self.store().seen)
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        self.store().secrets.get(&(namespace.into(), name.into())).cloned()
    }

    fn answer(&self, method: &Method, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut store = self.store();
        store.seen.push(Seen { method: method.clone(), path: path.to_string(), body: body.clone() });
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let parts: Vec<&str> = route.trim_matches('/').split('/').collect();
        if *method != Method::GET && parts.len() > 3 && store.forbidden.contains(parts[3]) {
            return status(StatusCode::FORBIDDEN, "Forbidden", &format!("cannot {method} in namespace {}", parts[3]));
        }
        match (method.clone(), parts.as_slice()) {
            (Method::GET, ["api", "v1", "namespaces"]) => {
                let wanted = query.split('&').find_map(|q| q.strip_prefix("labelSelector="));
                let wanted = wanted.map(|w| w.replace("%3D", "="));
                let items: Vec<Value> = store
                    .namespaces
                    .iter()
                    .filter(|(_, (labels, _))| {
                        wanted.as_deref().is_none_or(|w| {
                            w.split_once('=').is_some_and(|(k, v)| labels.get(k).is_some_and(|l| l == v))
                        })
                    })
                    .map(|(name, (labels, deleting))| {
                        let uid = store.uids.get(name).cloned().unwrap_or_else(|| format!("uid-{name}"));
                        let mut ns = json!({"metadata": {"name": name, "labels": labels, "uid": uid}});
                        if *deleting {
                            ns["status"] = json!({"phase": "Terminating"});
                        }
                        ns
                    })
                    .collect();
                (StatusCode::OK, json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": items}))
            }
            (Method::POST, ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"]) => {
                if store.events_forbidden.contains(*ns) {
                    return status(StatusCode::FORBIDDEN, "Forbidden", "cannot create events");
                }
                store.events.push(body.clone());
                (StatusCode::CREATED, body.clone())
            }
            (Method::GET, ["api", "v1", "secrets"]) => {
                if store.list_forbidden {
                    return status(StatusCode::FORBIDDEN, "Forbidden", "cannot list secrets at the cluster scope");
                }
                let param = |key: &str| {
                    let decoded = query.split('&').map(|q| q.replace("%3D", "=").replace("%2F", "/"));
                    decoded.map(|q| q.strip_prefix(key).map(str::to_string)).find(Option::is_some).flatten()
                };
                let Some(name) = param("fieldSelector=metadata.name=") else {
                    return status(StatusCode::FORBIDDEN, "Forbidden", "a LIST of secrets without a name");
                };
                let matching: Vec<Value> =
                    store.secrets.iter().filter(|((_, n), _)| *n == name).map(|(_, s)| s.clone()).collect();
                let from: usize = param("continue=").and_then(|c| c.parse().ok()).unwrap_or(0);
                let limit: usize = param("limit=").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
                let size = if store.page > 0 { store.page.min(limit) } else { limit };
                let items: Vec<Value> = matching.iter().skip(from).take(size).cloned().collect();
                let next = from + items.len();
                let meta = if next < matching.len() {
                    json!({"resourceVersion": "1", "continue": next.to_string()})
                } else {
                    json!({"resourceVersion": "1"})
                };
                (StatusCode::OK, json!({"kind": "SecretList", "apiVersion": "v1", "metadata": meta, "items": items}))
            }
            (Method::GET, ["api", "v1", "namespaces", ns, "secrets", name]) => {
                found(store.secrets.get(&(ns.to_string(), name.to_string())))
            }
            (Method::PATCH, ["api", "v1", "namespaces", ns, "secrets", name]) => {
                let mut secret = body.clone();
                secret["kind"] = json!("Secret");
                secret["apiVersion"] = json!("v1");
                let manager = query.split('&').find_map(|q| q.strip_prefix("fieldManager=")).unwrap_or("unknown");
                secret["metadata"]["managedFields"] = json!([{"manager": manager, "operation": "Apply"}]);
                secret["metadata"]["uid"] = json!(format!("uid-secret-{ns}"));
                store.secrets.insert((ns.to_string(), name.to_string()), secret.clone());
                (StatusCode::OK, secret)
            }
            (Method::GET, ["api", "v1", "namespaces", ns, "serviceaccounts"]) => {
                let items: Vec<Value> =
                    store.accounts.iter().filter(|((n, _), _)| n == ns).map(|(_, a)| a.clone()).collect();
                (
                    StatusCode::OK,
                    json!({"kind": "ServiceAccountList", "apiVersion": "v1", "metadata": {}, "items": items}),
                )
            }
            (Method::GET, ["api", "v1", "namespaces", ns, "serviceaccounts", name]) => {
                found(store.accounts.get(&(ns.to_string(), name.to_string())))
            }
            (Method::PATCH, ["api", "v1", "namespaces", ns, "serviceaccounts", name]) => {
                let key = (ns.to_string(), name.to_string());
                if store.conflicts.remove(&key) {
                    return status(StatusCode::CONFLICT, "Conflict", "the object has been modified");
                }
                let Some(account) = store.accounts.get_mut(&key) else {
                    return status(StatusCode::NOT_FOUND, "NotFound", "no such ServiceAccount");
                };
                if body["metadata"]["resourceVersion"] != account["metadata"]["resourceVersion"] {
                    return status(StatusCode::CONFLICT, "Conflict", "the object has been modified");
                }
                account["imagePullSecrets"] = body["imagePullSecrets"].clone();
                let version = account["metadata"]["resourceVersion"].as_str().unwrap_or("0").parse::<u64>();
                account["metadata"]["resourceVersion"] = json!((version.unwrap_or(0) + 1).to_string());
                (StatusCode::OK, account.clone())
            }
            (Method::GET, ["apis", "management.cattle.io", "v3", "projects"]) => projects_list(&store, None),
            (Method::GET, ["apis", "management.cattle.io", "v3", "namespaces", cluster, "projects"]) => {
                projects_list(&store, Some(cluster))
            }
            (Method::GET, ["apis", "management.cattle.io", "v3", "namespaces", cluster, "projects", project]) => {
                match store.projects.get(&(cluster.to_string(), project.to_string())) {
                    Some(backing) => (
                        StatusCode::OK,
                        json!({
                            "apiVersion": "management.cattle.io/v3", "kind": "Project",
                            "metadata": {"name": project, "namespace": cluster},
                            "status": {"backingNamespace": backing},
                        }),
                    ),
                    None => status(StatusCode::NOT_FOUND, "NotFound", "no such project"),
                }
            }
            _ => status(StatusCode::NOT_FOUND, "NotFound", &format!("the fake does not serve {method} {path}")),
        }
    }
}

/// The projects of one cluster's namespace, or of all.
fn projects_list(store: &Store, cluster: Option<&str>) -> (StatusCode, Value) {
    let items: Vec<Value> = store
        .projects
        .iter()
        .filter(|((c, _), _)| cluster.is_none_or(|wanted| wanted == c))
        .map(|((c, p), backing)| {
            json!({
                "apiVersion": "management.cattle.io/v3", "kind": "Project",
                "metadata": {"name": p, "namespace": c},
                "status": {"backingNamespace": backing},
            })
        })
        .collect();
    let list = json!({"apiVersion": "management.cattle.io/v3", "kind": "ProjectList", "metadata": {}, "items": items});
    (StatusCode::OK, list)
}

fn found(object: Option<&Value>) -> (StatusCode, Value) {
    match object {
        Some(object) => (StatusCode::OK, object.clone()),
        None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, body)
}

pub const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The token of one registry, with `password`.
pub fn tokens(password: &str) -> Vec<RegistryToken> {
    vec![RegistryToken {
        host: HOST.into(),
        addresses: vec![HOST.into()],
        username: "AWS".into(),
        password: password.to_string().into(),
        expires_at: Some(SystemTime::now() + Duration::from_secs(12 * 3600)),
    }]
}

/// Settings of a namespace-mode target selecting `names` (globs), excluding `exclude`.
pub fn namespaces(names: &[&str], exclude: &[&str]) -> Settings {
    let selection = Selection {
        names: names.iter().map(|n| n.to_string()).collect(),
        selector: None,
        exclude: exclude.iter().map(|n| n.to_string()).collect(),
    };
    Settings {
        mode: Mode::Namespaces(selection),
        secret_name: "ecr-credentials".into(),
        service_accounts: Vec::new(),
        adopt: false,
        events: true,
        timeout: Duration::from_secs(5),
        diagnose_pulls: false,
    }
}

/// A target of `settings` against a fake holding `store`.
pub fn target(store: Store, settings: Settings) -> (Fake, Kubernetes) {
    let (fake, client) = Fake::start(store);
    (fake, Kubernetes::new(client.clone(), client, "https://fake:6443".into(), settings))
}

/// A store with these namespaces, unlabelled and live.
pub fn with_namespaces(names: &[&str]) -> Store {
    let namespaces = names.iter().map(|n| (n.to_string(), (BTreeMap::new(), false))).collect();
    Store { namespaces, ..Store::default() }
}

/// A ServiceAccount as the API server holds it.
pub fn account(namespace: &str, name: &str, pull_secrets: &[&str]) -> Value {
    let secrets: Vec<Value> = pull_secrets.iter().map(|s| json!({"name": s})).collect();
    json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "imagePullSecrets": secrets,
    })
}

/// The password held for [`HOST`] in a Secret the fake holds.
pub fn password_in(secret: &Value) -> Option<String> {
    use base64::Engine as _;
    let data = secret["data"][".dockerconfigjson"].as_str()?;
    let json = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    let config: Value = serde_json::from_slice(&json).ok()?;
    config["auths"][HOST]["password"].as_str().map(str::to_string)
}
