//! A stand-in for the Rancher 1.x Cattle API (`/v1`, `/v2-beta`), limited to what a registry-credential client
//! touches and faithful to `rancher-api.md` part A where it matters to a client:
//!
//! * `X-API-Schemas` on every response, 401 before 404 on versioned paths, 401 with `WWW-Authenticate`;
//! * ids `1sp<n>` (registries) and `1c<n>` (credentials), filters that need the formatted id;
//! * absolute, fully lower-cased links, explicit nulls, `baseType`, `createdTS`;
//! * `limit` capped at a maximum, `marker=m<offset>`, `pagination.next` and `partial`; unknown filters ignored;
//! * `secretValue` write-only (shown only in the answer to the create POST);
//! * `/v1` with an environment key requires `email` on create (422 `MissingRequired`); `/v2-beta` has no such field;
//! * `/projects/<id>/` paths, type names case-insensitive and singular or plural;
//! * duplicate registry address 400 `ServerAddressUsed`; DELETE of an active resource 409; state-checked actions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::fault::Fault;
use crate::server::{Call, Handler, Reply, Server};

/// How the stand-in is set up.
#[derive(Clone, Debug)]
pub struct CattleConfig {
    pub access_key: String,
    pub secret_key: String,
    /// The one environment the key can see.
    pub project_id: String,
    /// `/v1` uses the frozen `v1-project` schema, where `email` exists and is required on create (an environment
    /// API key). `false`: `/v1` behaves like an agent key's, without the field.
    pub v1_email_required: bool,
    /// The most items a page holds, whatever `limit` asks for (Cattle's code caps at 3000; its docs say 1000).
    pub max_limit: usize,
    /// An account API key: it sees the environments marked visible ([`FakeCattle::add_environment`]), picks one
    /// with `/projects/<id>`, and can list them at `/v2-beta/projects`. Otherwise an environment key: only
    /// `project_id`, whatever the path says.
    pub account_key: bool,
}

impl Default for CattleConfig {
    fn default() -> CattleConfig {
        CattleConfig {
            access_key: "cattle-access".into(),
            secret_key: "cattle-secret".into(),
            project_id: "1a5".into(),
            v1_email_required: true,
            max_limit: 3000,
            account_key: false,
        }
    }
}

/// A registry as stored.
#[derive(Clone, Debug)]
pub struct Registry {
    pub id: String,
    pub server_address: String,
    pub state: String,
}

/// A registry credential as stored, secret included.
#[derive(Clone, Debug)]
pub struct Credential {
    pub id: String,
    pub registry_id: String,
    pub public_value: Option<String>,
    pub secret_value: Option<String>,
    pub email: Option<String>,
    pub state: String,
}

/// One request as received.
pub type CattleRequest = crate::server::HttpRequest;

#[derive(Clone, Debug)]
struct RegistryRow {
    n: u64,
    /// The environment (project) it belongs to.
    env: String,
    server_address: String,
    state: String,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Clone, Debug)]
struct CredentialRow {
    n: u64,
    env: String,
    registry: u64,
    public_value: Option<String>,
    secret_value: Option<String>,
    email: Option<String>,
    name: Option<String>,
    description: Option<String>,
    state: String,
}

/// An environment (a Cattle `project`).
#[derive(Clone, Debug)]
struct EnvironmentRow {
    id: String,
    name: String,
    /// Whether the account key may use it.
    visible: bool,
}

struct Store {
    config: CattleConfig,
    /// Environments besides `config.project_id` ("Default").
    environments: Vec<EnvironmentRow>,
    registries: Vec<RegistryRow>,
    credentials: Vec<CredentialRow>,
    next_id: u64,
}

struct CattleHandler {
    store: Mutex<Store>,
}

/// The fake Cattle server. Clones share the same server and data.
#[derive(Clone)]
pub struct FakeCattle {
    server: Server,
    handler: Arc<CattleHandler>,
}

const CREATED: &str = "2017-06-01T10:00:00Z";
const CREATED_TS: u64 = 1_496_311_200_000;
/// States a collection leaves out.
const GONE: [&str; 3] = ["removed", "purging", "purged"];

impl FakeCattle {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: CattleConfig) -> FakeCattle {
        FakeCattle::start_on("127.0.0.1:0".parse().unwrap(), config).await.expect("a free loopback port")
    }

    pub async fn start_on(addr: SocketAddr, config: CattleConfig) -> std::io::Result<FakeCattle> {
        let store =
            Store { config, environments: Vec::new(), registries: Vec::new(), credentials: Vec::new(), next_id: 1 };
        let handler = Arc::new(CattleHandler { store: Mutex::new(store) });
        let server = Server::start(addr, handler.clone()).await?;
        Ok(FakeCattle { server, handler })
    }

    /// `http://127.0.0.1:<port>`, without a version: append `/v1`, `/v2-beta` or a project path.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The loopback address it listens on (for a proxy's route).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// Adds an active registry and returns its id (`1sp<n>`).
    pub fn add_registry(&self, server_address: &str) -> String {
        let env = self.store().config.project_id.clone();
        self.add_registry_in(&env, server_address)
    }

    /// Adds an environment (`1a<n>`) named `name`; `visible`: the account key may use it.
    pub fn add_environment(&self, name: &str, visible: bool) -> String {
        let mut store = self.store();
        let n = store.next();
        let id = format!("1a{n}");
        store.environments.push(EnvironmentRow { id: id.clone(), name: name.to_string(), visible });
        id
    }

    /// Adds an active registry to environment `env` and returns its id.
    pub fn add_registry_in(&self, env: &str, server_address: &str) -> String {
        let mut store = self.store();
        let n = store.next();
        store.registries.push(RegistryRow {
            n,
            env: env.to_string(),
            server_address: server_address.to_string(),
            state: "active".into(),
            name: None,
            description: None,
        });
        format!("1sp{n}")
    }

    /// Adds an active credential to a registry and returns its id (`1c<n>`).
    pub fn add_credential(&self, registry_id: &str, public_value: &str, secret_value: &str) -> String {
        let registry = parse_id(registry_id, "sp").expect("a registry id like 1sp3");
        let mut store = self.store();
        let n = store.next();
        let env = store.registries.iter().find(|r| r.n == registry).expect("a known registry").env.clone();
        store.credentials.push(CredentialRow {
            n,
            env,
            registry,
            public_value: Some(public_value.into()),
            secret_value: Some(secret_value.into()),
            email: Some("someone@example.com".into()),
            name: None,
            description: None,
            state: "active".into(),
        });
        format!("1c{n}")
    }

    pub fn set_credential_state(&self, credential_id: &str, state: &str) {
        let n = parse_id(credential_id, "c").expect("a credential id like 1c12");
        let mut store = self.store();
        let row = store.credentials.iter_mut().find(|c| c.n == n).expect("a known credential");
        row.state = state.to_string();
    }

    /// Replaces the key pair the server accepts (a key rotation).
    pub fn set_keys(&self, access_key: &str, secret_key: &str) {
        let mut store = self.store();
        store.config.access_key = access_key.to_string();
        store.config.secret_key = secret_key.to_string();
    }

    pub fn registries(&self) -> Vec<Registry> {
        self.store()
            .registries
            .iter()
            .map(|r| Registry {
                id: format!("1sp{}", r.n),
                server_address: r.server_address.clone(),
                state: r.state.clone(),
            })
            .collect()
    }

    pub fn credentials(&self) -> Vec<Credential> {
        self.store()
            .credentials
            .iter()
            .map(|c| Credential {
                id: format!("1c{}", c.n),
                registry_id: format!("1sp{}", c.registry),
                public_value: c.public_value.clone(),
                secret_value: c.secret_value.clone(),
                email: c.email.clone(),
                state: c.state.clone(),
            })
            .collect()
    }

    pub fn set_fault(&self, fault: Fault) {
        self.server.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.server.faults.clear();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<CattleRequest> {
        self.server.http_requests()
    }

    /// The method and the time of arrival of every request received so far, in the order of [`requests`].
    ///
    /// [`requests`]: FakeCattle::requests
    pub fn request_times(&self) -> Vec<(String, std::time::Instant)> {
        self.server.received().into_iter().map(|r| (r.call.method, r.at)).collect()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.handler.store.lock().unwrap()
    }
}

impl Store {
    fn next(&mut self) -> u64 {
        let n = self.next_id;
        self.next_id += 1;
        n
    }
}

/// `1sp12` → 12 for prefix `sp`. Anything else (a raw `12`, another type's id) is no id of this type.
fn parse_id(id: &str, short_type: &str) -> Option<u64> {
    id.strip_prefix('1')?.strip_prefix(short_type)?.parse().ok()
}

/// One Cattle error body (rancher-api.md A.6).
fn error(status: u16, code: &str, field: Option<&str>) -> Reply {
    let validation = status == 422;
    Reply::json(
        status,
        &json!({
            "id": "b0a8b6d4-2f3c-4d7b-9a51-1e2f3a4b5c6d", "type": "error", "links": {}, "actions": {},
            "status": status, "code": code, "message": if validation { Value::Null } else { json!(code) },
            "detail": null, "fieldName": field, "baseType": "error",
        }),
    )
}

fn generic_error(status: u16) -> Reply {
    let code = match status {
        400 => "InvalidFormat",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method not allowed",
        409 => "Conflict",
        422 => "InvalidOption",
        _ => "Internal Server Error",
    };
    let reply = error(status, code, (status == 422).then_some("secretValue"));
    if status == 401 { challenge(reply) } else { reply }
}

fn challenge(reply: Reply) -> Reply {
    reply
        .with_header("www-authenticate", "Basic realm=\"Enter API access key and secret key as username and password\"")
}

/// Where a request points, once the version and project prefix are taken off.
struct Route<'a> {
    /// `http://host:port/v1` or `http://host:port/v2-beta/projects/1a5`, lower-cased: the prefix of every link.
    prefix: String,
    version: &'a str,
    /// The canonical plural type (`registries`, `registrycredentials`, `schemas`), if any.
    kind: Option<&'static str>,
    id: Option<&'a str>,
    /// Segments after the id (a sub-collection, unsupported).
    rest: usize,
    /// The environment the request acts in.
    env: String,
}

fn canonical_type(segment: &str) -> Option<&'static str> {
    match segment.to_ascii_lowercase().as_str() {
        "registry" | "registries" => Some("registries"),
        "registrycredential" | "registrycredentials" => Some("registrycredentials"),
        "schema" | "schemas" => Some("schemas"),
        "project" | "projects" => Some("projects"),
        _ => None,
    }
}

impl Handler for CattleHandler {
    fn handle(&self, call: &Call) -> Reply {
        let mut store = self.store.lock().unwrap();
        let base = call.base_url().to_ascii_lowercase();
        let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
        let version = segments.first().map(|v| v.to_ascii_lowercase());
        let version = match version.as_deref() {
            None => {
                let reply = store.authenticate(call).unwrap_or_else(|| versions(&base));
                return reply.with_header("x-api-schemas", format!("{base}/v1/schemas"));
            }
            Some("v1") => "v1",
            Some("v2-beta") => "v2-beta",
            // Not a Cattle API version (e.g. Rancher 2's /v3): Cattle has no such path.
            Some(_) => return error(404, "Not Found", None).with_header("x-api-schemas", format!("{base}/v1/schemas")),
        };
        let mut prefix = format!("{base}/{version}");
        let mut rest = &segments[1..];
        let mut project = None;
        if rest.first().is_some_and(|s| s.eq_ignore_ascii_case("projects")) && rest.len() >= 2 {
            project = Some(rest[1].to_ascii_lowercase());
            prefix = format!("{prefix}/projects/{}", rest[1].to_ascii_lowercase());
            rest = &rest[2..];
        }
        let schemas = format!("{prefix}/schemas");
        let reply = match store.authenticate(call) {
            Some(denied) => denied,
            None if project.as_deref().is_some_and(|p| !store.may_use(p)) => generic_error(403),
            None => {
                let env = match (&project, store.config.account_key) {
                    (Some(p), true) => p.clone(),
                    _ => store.config.project_id.clone(),
                };
                let route = Route {
                    prefix,
                    version,
                    kind: rest.first().and_then(|s| canonical_type(s)),
                    id: rest.get(1).copied(),
                    rest: rest.len().saturating_sub(2),
                    env,
                };
                if rest.is_empty() {
                    api_version(&route.prefix, project.as_deref())
                } else if route.kind.is_none() || route.rest > 0 {
                    generic_error(404)
                } else {
                    store.dispatch(call, &route)
                }
            }
        };
        let reply = reply.with_header("x-api-schemas", schemas);
        if reply.status < 300 {
            let account = store.config.project_id.clone();
            reply.with_header("x-api-account-id", account.clone()).with_header("x-api-account-kind", "project")
        } else {
            reply
        }
    }

    fn error_reply(&self, _: &Call, status: u16) -> Reply {
        generic_error(status)
    }
}

fn versions(base: &str) -> Reply {
    let version =
        |v: &str| json!({"id": v, "type": "apiVersion", "links": {"self": format!("{base}/{v}")}, "actions": {}});
    Reply::json(
        200,
        &json!({
            "type": "collection", "resourceType": "apiVersion", "links": {"self": format!("{base}/")},
            "createTypes": {}, "actions": {}, "data": [version("v1"), version("v2-beta")],
            "sortLinks": {}, "pagination": null, "sort": null, "filters": {}, "createDefaults": {},
        }),
    )
}

fn api_version(prefix: &str, project: Option<&str>) -> Reply {
    let mut links = json!({
        "self": prefix, "schemas": format!("{prefix}/schemas"),
        "registries": format!("{prefix}/registries"),
        "registryCredentials": format!("{prefix}/registrycredentials"),
    });
    let (id, kind) = match project {
        Some(p) => (p.to_string(), "project"),
        None => ("v1".to_string(), "apiVersion"),
    };
    links["self"] = json!(prefix);
    Reply::json(200, &json!({"id": id, "type": kind, "links": links, "actions": {}}))
}

impl Store {
    /// `None` when the Basic credentials are the configured pair; otherwise the 401 to send.
    fn authenticate(&self, call: &Call) -> Option<Reply> {
        let accepted = call.header("authorization").and_then(|value| {
            let mut words = value.split_whitespace();
            let scheme = words.next()?;
            let encoded = words.next()?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (access, secret) = decoded.split_once(':')?;
            Some(access == self.config.access_key && secret == self.config.secret_key)
        });
        if accepted == Some(true) {
            return None;
        }
        let reply = error(401, "Unauthorized", None);
        if call.header("x-api-no-challenge").as_deref() == Some("true") { Some(reply) } else { Some(challenge(reply)) }
    }

    /// Whether the key may act in environment `env`.
    fn may_use(&self, env: &str) -> bool {
        match self.config.account_key {
            false => env == self.config.project_id,
            true => env == self.config.project_id || self.environments.iter().any(|e| e.id == env && e.visible),
        }
    }

    /// `GET /projects`: the environments the key sees.
    fn list_environments(&self, route: &Route) -> Reply {
        let mut visible = vec![(self.config.project_id.clone(), "Default".to_string())];
        if self.config.account_key {
            visible.extend(self.environments.iter().filter(|e| e.visible).map(|e| (e.id.clone(), e.name.clone())));
        }
        let data: Vec<Value> = visible
            .iter()
            .map(|(id, name)| {
                json!({"id": id, "type": "project", "name": name, "state": "active", "kind": "project",
                       "links": {"self": format!("{}/projects/{id}", route.prefix)}})
            })
            .collect();
        Reply::json(
            200,
            &json!({
                "type": "collection", "resourceType": "project", "links": {"self": format!("{}/projects", route.prefix)},
                "data": data, "pagination": {"next": null, "limit": 1000, "partial": false},
            }),
        )
    }

    /// Whether this request's registryCredential schema has the `email` field (and requires it on create).
    fn has_email(&self, route: &Route) -> bool {
        route.version == "v1" && self.config.v1_email_required
    }

    fn dispatch(&mut self, call: &Call, route: &Route) -> Reply {
        let kind = route.kind.unwrap_or_default();
        let action = call.query_value("action");
        match (kind, call.method.as_str(), route.id, action) {
            ("projects", "GET", None, _) => self.list_environments(route),
            ("projects", _, _, _) => generic_error(405),
            ("schemas", "GET", None, _) => self.schemas(route),
            ("schemas", "GET", Some(id), _) => match self.schema(route, &id.to_ascii_lowercase()) {
                Some(schema) => Reply::json(200, &schema),
                None => generic_error(404),
            },
            ("schemas", _, _, _) => generic_error(405),
            (_, "GET", None, _) => self.list(call, route),
            (_, "POST", None, _) => self.create(call, route),
            (_, "GET", Some(id), _) => match self.find(kind, id, &route.env) {
                Some(resource) => Reply::json(200, &self.render(route, &resource, false)),
                None => generic_error(404),
            },
            (_, "PUT", Some(id), _) => self.update(call, route, id),
            (_, "DELETE", Some(id), _) => self.act(route, id, "remove", 200),
            (_, "POST", Some(id), Some(action)) => self.act(route, id, &action, 202),
            _ => generic_error(405),
        }
    }

    fn find(&self, kind: &str, id: &str, env: &str) -> Option<Resource> {
        match kind {
            "registries" => {
                let n = parse_id(id, "sp")?;
                self.registries.iter().find(|r| r.n == n && r.env == env).cloned().map(Resource::Registry)
            }
            _ => {
                let n = parse_id(id, "c")?;
                self.credentials.iter().find(|c| c.n == n && c.env == env).cloned().map(Resource::Credential)
            }
        }
    }

    fn render(&self, route: &Route, resource: &Resource, show_secret: bool) -> Value {
        let p = &route.prefix;
        match resource {
            Resource::Registry(r) => {
                let self_link = format!("{p}/registries/1sp{}", r.n);
                json!({
                    "id": format!("1sp{}", r.n), "type": "registry",
                    "links": {
                        "self": self_link, "account": format!("{p}/accounts/{}", self.config.project_id),
                        "credentials": format!("{self_link}/credentials"), "hosts": format!("{self_link}/hosts"),
                        "images": format!("{self_link}/images"), "volumes": format!("{self_link}/volumes"),
                    },
                    "actions": actions(&self_link, &r.state),
                    "baseType": "storagePool", "accountId": self.config.project_id, "blockDevicePath": null,
                    "created": CREATED, "createdTS": CREATED_TS, "description": r.description, "driverName": null,
                    "externalId": null, "kind": "registry", "name": r.name, "removed": null,
                    "serverAddress": r.server_address, "state": r.state, "transitioning": transitioning(&r.state),
                    "transitioningMessage": null, "transitioningProgress": null,
                    "uuid": format!("9a1f2c3e-6c1d-4a4f-8a51-{:012x}", r.n), "volumeAccessMode": null,
                    "volumeCapabilities": null,
                })
            }
            Resource::Credential(c) => {
                let self_link = format!("{p}/registrycredentials/1c{}", c.n);
                let mut value = json!({
                    "id": format!("1c{}", c.n), "type": "registryCredential",
                    "links": {
                        "self": self_link, "account": format!("{p}/accounts/{}", self.config.project_id),
                        "images": format!("{self_link}/images"), "instances": format!("{self_link}/instances"),
                        "registry": format!("{p}/registries/1sp{}", c.registry),
                    },
                    "actions": actions(&self_link, &c.state),
                    "baseType": "credential", "accountId": self.config.project_id, "created": CREATED,
                    "createdTS": CREATED_TS, "description": c.description, "kind": "registryCredential",
                    "name": c.name, "publicValue": c.public_value, "registryId": format!("1sp{}", c.registry),
                    "removed": null,
                    "secretValue": if show_secret { json!(c.secret_value) } else { Value::Null },
                    "state": c.state, "transitioning": transitioning(&c.state), "transitioningMessage": null,
                    "transitioningProgress": null, "uuid": format!("4f0c3b7e-3f0a-4b8e-9a0c-{:012x}", c.n),
                });
                if self.has_email(route) {
                    value["email"] = json!(c.email);
                }
                value
            }
        }
    }

    fn list(&self, call: &Call, route: &Route) -> Reply {
        let kind = route.kind.unwrap_or_default();
        let resource_type = if kind == "registries" { "registry" } else { "registryCredential" };
        let filterable: &[&str] = if kind == "registries" {
            &["accountId", "created", "description", "id", "kind", "name", "removed", "state", "uuid"]
        } else {
            &[
                "accountId",
                "created",
                "description",
                "id",
                "kind",
                "name",
                "publicValue",
                "registryId",
                "removed",
                "state",
                "uuid",
            ]
        };
        let mut filters: Vec<(String, String)> = Vec::new();
        let mut filter_map = Map::new();
        for field in filterable {
            filter_map.insert(field.to_string(), Value::Null);
        }
        for (key, value) in call.query_pairs() {
            // Unknown names (serverAddress among them) are ignored, as Cattle does.
            if filterable.contains(&key.as_str()) {
                let shown = if key == "registryId" {
                    parse_id(&value, "sp").map_or("-1".to_string(), |n| n.to_string())
                } else {
                    value.clone()
                };
                filter_map.insert(key.clone(), json!([{"modifier": "eq", "value": shown}]));
                filters.push((key, value));
            }
        }
        let all: Vec<Resource> = if kind == "registries" {
            self.registries.iter().filter(|r| r.env == route.env).cloned().map(Resource::Registry).collect()
        } else {
            self.credentials.iter().filter(|c| c.env == route.env).cloned().map(Resource::Credential).collect()
        };
        let matching: Vec<Resource> = all
            .into_iter()
            .filter(|r| !GONE.contains(&r.state()))
            .filter(|r| filters.iter().all(|(k, v)| r.field(k).as_deref() == Some(v.as_str())))
            .collect();

        let limit = match call.query_value("limit").and_then(|l| l.parse::<i64>().ok()) {
            None => 100,
            Some(l) if l <= 0 => self.config.max_limit,
            Some(l) => (l as usize).min(self.config.max_limit),
        };
        let offset =
            call.query_value("marker").and_then(|m| m.strip_prefix('m').and_then(|n| n.parse().ok())).unwrap_or(0);
        let page: Vec<Value> = matching.iter().skip(offset).take(limit).map(|r| self.render(route, r, false)).collect();
        let partial = matching.len() > offset + limit;
        let self_link =
            format!("{}/{}{}", route.prefix, kind, call.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default())
                .to_ascii_lowercase();
        let next = partial.then(|| {
            let kept: Vec<String> = call
                .query
                .as_deref()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("marker="))
                .map(str::to_string)
                .collect();
            let mut query = kept.join("&");
            if !query.is_empty() {
                query.push('&');
            }
            format!("{}/{}?{}marker=m{}", route.prefix, kind, query, offset + limit).to_ascii_lowercase()
        });
        let sort_links: Map<String, Value> = filterable
            .iter()
            .map(|f| (f.to_string(), json!(format!("{}/{}?sort={}", route.prefix, kind, f.to_ascii_lowercase()))))
            .collect();
        Reply::json(
            200,
            &json!({
                "type": "collection", "resourceType": resource_type, "links": {"self": self_link},
                "createTypes": {resource_type: format!("{}/{}", route.prefix, kind)}, "actions": {},
                "data": page, "sortLinks": sort_links,
                "pagination": {"first": null, "previous": null, "next": next, "limit": limit, "total": null, "partial": partial},
                "sort": null, "filters": filter_map, "createDefaults": {},
            }),
        )
    }

    fn create(&mut self, call: &Call, route: &Route) -> Reply {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.body) else {
            return error(400, "InvalidBodyContent", None);
        };
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        if route.kind == Some("registries") {
            let Some(address) = text("serverAddress").filter(|a| !a.is_empty()) else {
                return error(422, "MissingRequired", Some("serverAddress"));
            };
            let taken = self.registries.iter().any(|r| {
                r.env == route.env
                    && !GONE.contains(&r.state.as_str())
                    && r.server_address.eq_ignore_ascii_case(&address)
            });
            if taken {
                return error(400, "ServerAddressUsed", None);
            }
            let n = self.next();
            let row = RegistryRow {
                n,
                env: route.env.clone(),
                server_address: address,
                state: "active".into(),
                name: text("name"),
                description: text("description"),
            };
            self.registries.push(row.clone());
            let mut value = self.render(route, &Resource::Registry(row), false);
            value["state"] = json!("registering");
            value["transitioning"] = json!("yes");
            return Reply::json(201, &value);
        }
        let Some(registry_id) = text("registryId") else {
            return error(422, "MissingRequired", Some("registryId"));
        };
        let registry = parse_id(&registry_id, "sp").filter(|n| {
            self.registries.iter().any(|r| r.n == *n && r.env == route.env && !GONE.contains(&r.state.as_str()))
        });
        let Some(registry) = registry else {
            return error(422, "InvalidReference", Some("registryId"));
        };
        let email = if self.has_email(route) {
            match body.get("email") {
                None | Some(Value::Null) => return error(422, "MissingRequired", Some("email")),
                Some(Value::String(e)) if e.is_empty() => return error(422, "MinLengthExceeded", Some("email")),
                Some(e) => e.as_str().map(str::to_string),
            }
        } else {
            None
        };
        let n = self.next();
        let row = CredentialRow {
            n,
            env: route.env.clone(),
            registry,
            public_value: text("publicValue"),
            secret_value: text("secretValue"),
            email,
            name: text("name"),
            description: text("description"),
            state: "active".into(),
        };
        self.credentials.push(row.clone());
        // The one answer that shows secretValue: the response to the create POST.
        let mut value = self.render(route, &Resource::Credential(row), true);
        value["state"] = json!("registering");
        value["transitioning"] = json!("yes");
        Reply::json(201, &value)
    }

    fn update(&mut self, call: &Call, route: &Route, id: &str) -> Reply {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.body) else {
            return error(400, "InvalidBodyContent", None);
        };
        let has_email = self.has_email(route);
        let updated = match route.kind {
            Some("registries") => {
                let env = &route.env;
                let found =
                    parse_id(id, "sp").and_then(|n| self.registries.iter_mut().find(|r| r.n == n && r.env == *env));
                let Some(row) = found else {
                    return generic_error(404);
                };
                // serverAddress is create-only: ignored here, as every other non-updatable key.
                if let Some(name) = body.get("name") {
                    row.name = name.as_str().map(str::to_string);
                }
                if let Some(description) = body.get("description") {
                    row.description = description.as_str().map(str::to_string);
                }
                Resource::Registry(row.clone())
            }
            _ => {
                let env = &route.env;
                let found =
                    parse_id(id, "c").and_then(|n| self.credentials.iter_mut().find(|c| c.n == n && c.env == *env));
                let Some(row) = found else {
                    return generic_error(404);
                };
                if has_email {
                    match body.get("email") {
                        Some(Value::Null) => return error(422, "NotNullable", Some("email")),
                        Some(Value::String(e)) if e.is_empty() => {
                            return error(422, "MinLengthExceeded", Some("email"));
                        }
                        Some(Value::String(e)) => row.email = Some(e.clone()),
                        _ => {}
                    }
                }
                let set = |field: &mut Option<String>, name: &str| {
                    if let Some(value) = body.get(name) {
                        *field = value.as_str().map(str::to_string);
                    }
                };
                set(&mut row.public_value, "publicValue");
                set(&mut row.secret_value, "secretValue");
                set(&mut row.name, "name");
                set(&mut row.description, "description");
                Resource::Credential(row.clone())
            }
        };
        Reply::json(200, &self.render(route, &updated, false))
    }

    /// An action (or DELETE, which is `remove`), checked against the state machine of A.5.6.
    fn act(&mut self, route: &Route, id: &str, action: &str, status: u16) -> Reply {
        let Some(resource) = self.find(route.kind.unwrap_or_default(), id, &route.env) else {
            return generic_error(404);
        };
        let state = resource.state().to_string();
        let Some(end) = transition(&state, action) else {
            return if action == "remove" && status == 200 {
                generic_error(409)
            } else if ["activate", "deactivate", "remove", "purge", "update"].contains(&action) {
                error(422, "ActionNotAvailable", Some("action"))
            } else {
                error(422, "InvalidAction", Some("action"))
            };
        };
        let updated = match resource {
            Resource::Registry(r) => {
                let row = self.registries.iter_mut().find(|x| x.n == r.n).unwrap();
                row.state = end.to_string();
                if action == "purge" {
                    // Purging a registry deactivates and removes its credentials.
                    for c in self.credentials.iter_mut().filter(|c| c.registry == r.n) {
                        c.state = "removed".into();
                    }
                }
                Resource::Registry(self.registries.iter().find(|x| x.n == r.n).unwrap().clone())
            }
            Resource::Credential(c) => {
                let row = self.credentials.iter_mut().find(|x| x.n == c.n).unwrap();
                row.state = end.to_string();
                Resource::Credential(row.clone())
            }
        };
        Reply::json(status, &self.render(route, &updated, false))
    }

    fn schemas(&self, route: &Route) -> Reply {
        let data: Vec<Value> =
            ["registry", "registrycredential"].iter().filter_map(|id| self.schema(route, id)).collect();
        Reply::json(
            200,
            &json!({"type": "collection", "resourceType": "schema", "links": {"self": format!("{}/schemas", route.prefix)},
                    "data": data, "pagination": null, "createTypes": {}, "actions": {}}),
        )
    }

    fn schema(&self, route: &Route, id: &str) -> Option<Value> {
        let p = &route.prefix;
        let (id, plural, parent, mut fields) = match id {
            "registry" => (
                "registry",
                "registries",
                "storagePool",
                json!({
                    "serverAddress": {"type": "string", "create": true, "required": true, "nullable": false, "minLength": 1},
                    "name": {"type": "string", "create": true, "update": true, "nullable": true},
                    "description": {"type": "string", "create": true, "update": true, "nullable": true},
                    "state": {"type": "enum", "nullable": true},
                }),
            ),
            "registrycredential" => (
                "registryCredential",
                "registrycredentials",
                "credential",
                json!({
                    "registryId": {"type": "reference[registry]", "create": true, "required": true, "nullable": false},
                    "publicValue": {"type": "string", "create": true, "update": true, "nullable": true, "maxLength": 4096},
                    "secretValue": {"type": "password", "create": true, "update": true, "nullable": true, "maxLength": 4096},
                    "state": {"type": "enum", "nullable": true},
                }),
            ),
            _ => return None,
        };
        if id == "registryCredential" && self.has_email(route) {
            fields["email"] = json!({"type": "string", "create": true, "update": true, "required": true, "nullable": false, "minLength": 1});
        }
        Some(json!({
            "id": id, "type": "schema",
            "links": {"self": format!("{p}/schemas/{}", id.to_ascii_lowercase()), "collection": format!("{p}/{plural}")},
            "pluralName": plural, "resourceMethods": ["GET", "PUT", "DELETE"], "collectionMethods": ["GET", "POST"],
            "parent": parent, "resourceFields": fields,
        }))
    }
}

#[derive(Clone, Debug)]
enum Resource {
    Registry(RegistryRow),
    Credential(CredentialRow),
}

impl Resource {
    fn state(&self) -> &str {
        match self {
            Resource::Registry(r) => &r.state,
            Resource::Credential(c) => &c.state,
        }
    }

    /// A field's value as a filter compares it.
    fn field(&self, name: &str) -> Option<String> {
        match (self, name) {
            (Resource::Registry(r), "id") => Some(format!("1sp{}", r.n)),
            (Resource::Registry(r), "name") => r.name.clone(),
            (Resource::Registry(_), "kind") => Some("registry".into()),
            (Resource::Credential(c), "id") => Some(format!("1c{}", c.n)),
            (Resource::Credential(c), "name") => c.name.clone(),
            (Resource::Credential(_), "kind") => Some("registryCredential".into()),
            (Resource::Credential(c), "registryId") => Some(format!("1sp{}", c.registry)),
            (Resource::Credential(c), "publicValue") => c.public_value.clone(),
            (_, "state") => Some(self.state().to_string()),
            (_, "accountId") => Some("1a5".into()),
            _ => None,
        }
    }
}

fn transitioning(state: &str) -> &'static str {
    if ["registering", "activating", "deactivating", "removing", "purging"].contains(&state) { "yes" } else { "no" }
}

/// The end state of `action` from `state`, if the action may start there (rancher-api.md A.5.6).
fn transition(state: &str, action: &str) -> Option<&'static str> {
    match (action, state) {
        ("activate", "inactive" | "registering") => Some("active"),
        (
            "deactivate",
            "requested" | "registering" | "active" | "activating" | "updating-active" | "updating-inactive",
        ) => Some("inactive"),
        ("remove", "requested" | "inactive" | "registering" | "updating-active" | "updating-inactive") => {
            Some("removed")
        }
        ("purge", "removed") => Some("purged"),
        ("update", "active") => Some("active"),
        ("update", "inactive") => Some("inactive"),
        _ => None,
    }
}

fn actions(self_link: &str, state: &str) -> Value {
    let names: &[&str] = match state {
        "active" => &["update", "deactivate"],
        "inactive" => &["activate", "remove", "update"],
        "removed" => &["purge"],
        _ => &[],
    };
    names.iter().map(|a| (a.to_string(), json!(format!("{self_link}/?action={a}")))).collect::<Map<_, _>>().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_in_their_formatted_form() {
        assert_eq!(parse_id("1sp12", "sp"), Some(12));
        assert_eq!(parse_id("1c3", "c"), Some(3));
        assert_eq!(parse_id("12", "sp"), None);
        assert_eq!(parse_id("1c3", "sp"), None);
    }

    #[test]
    fn the_state_machine_rejects_removing_an_active_resource() {
        assert_eq!(transition("active", "remove"), None);
        assert_eq!(transition("inactive", "remove"), Some("removed"));
        assert_eq!(transition("active", "deactivate"), Some("inactive"));
        assert_eq!(transition("removed", "purge"), Some("purged"));
    }
}
