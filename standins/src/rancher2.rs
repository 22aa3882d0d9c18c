//! A stand-in for Rancher 2's norman `/v3` API, limited to what a docker-credential client touches and faithful
//! to `rancher-api.md` part B where it matters to a client:
//!
//! * auth by `Bearer token-xxxxx:secret`, by Basic with **URL-safe** base64 of the token (standard base64 holding
//!   `+` or `/` fails, as it does in Rancher), or by the `R_SESS` cookie; a 401 whose `status` is a string;
//! * `X-API-Schemas` on every `/v3` answer, 401 included (the daemon's bare-URL probe looks for it);
//! * projects `<cluster>:<project>` under `/v3/projects` (filters `clusterId`, `name`, `id`);
//! * `dockercredentials` and `namespaceddockercredentials` under both `/v3/project/<id>/` and `/v3/projects/<id>/`,
//!   the type segment case-insensitive; ids `<backing namespace>:<name>` and `<namespace>:<name>`;
//! * absolute links, `self`/`update`/`remove` with the camelCase plural, collection links lower-cased;
//! * `limit` (default 1000, capped) and `marker` (the id the next page starts at); `pagination.next` and
//!   `partial` only while more remain;
//! * `password` and `auth` write-only: shown only in the answer to the create POST; `auth` computed server-side;
//! * a PUT of `registries` replaces the whole map: an entry sent without a password keeps no password;
//! * copies of project-scoped credentials in the project's namespaces, carrying the annotation
//!   `management.cattle.io/project-scoped-secret-copy`, listed among the namespaced credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::fault::Fault;
use crate::server::{Call, Handler, Reply, Server};

/// The annotation Rancher's controller puts on the copies of a project-scoped credential.
pub const COPY_ANNOTATION: &str = "management.cattle.io/project-scoped-secret-copy";

/// How the stand-in is set up.
#[derive(Clone, Debug)]
pub struct Rancher2Config {
    /// The whole API key as the UI's "Bearer Token" shows it: `token-abcde:<secret>`.
    pub token: String,
    /// The most items a page holds, whatever `limit` asks for (norman's code caps at 10000; the docs say 1000).
    pub max_limit: usize,
}

impl Default for Rancher2Config {
    fn default() -> Rancher2Config {
        Rancher2Config { token: "token-abcde:rancher2-secret".into(), max_limit: 1000 }
    }
}

/// One entry of a credential's `registries` map, as stored (password included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryEntry {
    pub username: Option<String>,
    pub password: Option<String>,
    /// `base64(username:password)`, computed by the server when both are set.
    pub auth: Option<String>,
    pub email: Option<String>,
}

/// A docker credential as stored, passwords included.
#[derive(Clone, Debug)]
pub struct Rancher2Credential {
    pub id: String,
    pub project_id: String,
    /// `None` for a project-scoped `dockerCredential`.
    pub namespace: Option<String>,
    pub name: String,
    pub registries: BTreeMap<String, RegistryEntry>,
    pub annotations: BTreeMap<String, String>,
}

/// One request as received.
pub type Rancher2Request = crate::server::HttpRequest;

#[derive(Clone, Debug)]
struct ProjectRow {
    n: u64,
    cluster: String,
    /// `p-xxxxx`, also the backing namespace of its project-scoped credentials.
    name: String,
    display_name: String,
}

impl ProjectRow {
    fn id(&self) -> String {
        format!("{}:{}", self.cluster, self.name)
    }
}

#[derive(Clone, Debug)]
struct CredentialRow {
    n: u64,
    project_id: String,
    namespace: Option<String>,
    name: String,
    description: String,
    registries: BTreeMap<String, RegistryEntry>,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

impl CredentialRow {
    /// The namespace the secret lives in: its own, or the project's backing namespace.
    fn home(&self) -> String {
        match &self.namespace {
            Some(namespace) => namespace.clone(),
            None => backing_namespace(&self.project_id).to_string(),
        }
    }

    fn id(&self) -> String {
        format!("{}:{}", self.home(), self.name)
    }

    fn kind(&self) -> Kind {
        if self.namespace.is_some() { Kind::Namespaced } else { Kind::Project }
    }
}

struct Store {
    config: Rancher2Config,
    projects: Vec<ProjectRow>,
    /// Namespace → the project it belongs to.
    namespaces: BTreeMap<String, String>,
    credentials: Vec<CredentialRow>,
    next_id: u64,
    /// Misbehave: list every project's credentials under any one project (a proxy that rewrites paths).
    ignore_project_scope: bool,
}

struct Rancher2Handler {
    store: Mutex<Store>,
}

/// The fake Rancher 2 server. Clones share the same server and data.
#[derive(Clone)]
pub struct FakeRancher2 {
    server: Server,
    handler: Arc<Rancher2Handler>,
}

const CREATED: &str = "2024-05-01T10:00:00Z";
const CREATED_TS: u64 = 1_714_557_600_000;
/// Norman's default page size.
const DEFAULT_LIMIT: usize = 1000;

impl FakeRancher2 {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: Rancher2Config) -> FakeRancher2 {
        FakeRancher2::start_on("127.0.0.1:0".parse().unwrap(), config).await.expect("a free loopback port")
    }

    pub async fn start_on(addr: SocketAddr, config: Rancher2Config) -> std::io::Result<FakeRancher2> {
        let store = Store {
            config,
            projects: Vec::new(),
            namespaces: BTreeMap::new(),
            credentials: Vec::new(),
            next_id: 1,
            ignore_project_scope: false,
        };
        let handler = Arc::new(Rancher2Handler { store: Mutex::new(store) });
        let server = Server::start(addr, handler.clone()).await?;
        Ok(FakeRancher2 { server, handler })
    }

    /// `http://127.0.0.1:<port>`, without a path: append `/v3` or a project path.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Adds a project to a cluster and returns its id, `<cluster>:p-xxxxx`. `display_name` is its `name`
    /// (e.g. `Default`).
    pub fn add_project(&self, cluster_id: &str, display_name: &str) -> String {
        let mut store = self.store();
        let n = store.next();
        let row =
            ProjectRow { n, cluster: cluster_id.into(), name: project_name(n), display_name: display_name.into() };
        let id = row.id();
        store.projects.push(row);
        id
    }

    /// Adds a namespace to a project (credentials added to a namespace add it too).
    pub fn add_namespace(&self, project_id: &str, namespace: &str) {
        let mut store = self.store();
        assert!(store.project(project_id).is_some(), "a known project: {project_id}");
        store.namespaces.insert(namespace.into(), project_id.into());
    }

    /// Adds a project-scoped `dockerCredential` (`registries`: host, username, password) and returns its id,
    /// `p-xxxxx:<name>`.
    pub fn add_credential(&self, project_id: &str, name: &str, registries: &[(&str, &str, &str)]) -> String {
        self.insert(project_id, None, name, registries, BTreeMap::new())
    }

    /// Adds a `namespacedDockerCredential` and returns its id, `<namespace>:<name>`.
    pub fn add_namespaced_credential(
        &self,
        project_id: &str,
        namespace: &str,
        name: &str,
        registries: &[(&str, &str, &str)],
    ) -> String {
        self.add_namespace(project_id, namespace);
        self.insert(project_id, Some(namespace), name, registries, BTreeMap::new())
    }

    /// Adds what Rancher's controller makes of a project-scoped credential in each namespace of the project: a
    /// namespaced secret with the copy annotation. Returns its id, `<namespace>:<name>`.
    pub fn add_copy(&self, project_id: &str, namespace: &str, name: &str, registries: &[(&str, &str, &str)]) -> String {
        self.add_namespace(project_id, namespace);
        let annotations = BTreeMap::from([(COPY_ANNOTATION.to_string(), "true".to_string())]);
        self.insert(project_id, Some(namespace), name, registries, annotations)
    }

    fn insert(
        &self,
        project_id: &str,
        namespace: Option<&str>,
        name: &str,
        registries: &[(&str, &str, &str)],
        annotations: BTreeMap<String, String>,
    ) -> String {
        let mut store = self.store();
        assert!(store.project(project_id).is_some(), "a known project: {project_id}");
        let n = store.next();
        let registries = registries
            .iter()
            .map(|(host, username, password)| (host.to_string(), entry(Some(username), Some(password), None)))
            .collect();
        let row = CredentialRow {
            n,
            project_id: project_id.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
            description: String::new(),
            registries,
            annotations,
            labels: BTreeMap::from([("cattle.io/creator".to_string(), "norman".to_string())]),
        };
        let id = row.id();
        assert!(store.credentials.iter().all(|c| c.id() != id), "a new credential: {id}");
        store.credentials.push(row);
        id
    }

    /// Every credential, project-scoped and namespaced (copies included), passwords included.
    pub fn credentials(&self) -> Vec<Rancher2Credential> {
        self.store()
            .credentials
            .iter()
            .map(|c| Rancher2Credential {
                id: c.id(),
                project_id: c.project_id.clone(),
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                registries: c.registries.clone(),
                annotations: c.annotations.clone(),
            })
            .collect()
    }

    /// One credential by id, if it exists.
    pub fn credential(&self, id: &str) -> Option<Rancher2Credential> {
        self.credentials().into_iter().find(|c| c.id == id)
    }

    /// Replaces the API key the server accepts (a rotation, or a revoked key).
    pub fn set_token(&self, token: &str) {
        self.store().config.token = token.to_string();
    }

    /// Misbehave (or stop): list every project's credentials under whichever project is asked for.
    pub fn set_ignore_project_scope(&self, ignore: bool) {
        self.handler.store.lock().unwrap().ignore_project_scope = ignore;
    }

    pub fn set_fault(&self, fault: Fault) {
        self.server.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.server.faults.clear();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Rancher2Request> {
        self.server.http_requests()
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

    fn project(&self, id: &str) -> Option<&ProjectRow> {
        self.projects.iter().find(|p| p.id() == id)
    }
}

fn entry(username: Option<&str>, password: Option<&str>, email: Option<&str>) -> RegistryEntry {
    let auth = match (username, password) {
        (Some(u), Some(p)) => Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))),
        _ => None,
    };
    RegistryEntry {
        username: username.map(str::to_string),
        password: password.map(str::to_string),
        auth,
        email: email.map(str::to_string),
    }
}

/// `p-` and five letters or digits, different for every `n`, as Rancher's generated names look.
fn project_name(n: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // A multiplier coprime with 36^5 spreads consecutive numbers over the whole range.
    let mut value = (n.wrapping_mul(7_368_787) + 1_000_000) % 36u64.pow(5);
    let mut name = [b'a'; 5];
    for c in name.iter_mut().rev() {
        *c = ALPHABET[(value % 36) as usize];
        value /= 36;
    }
    format!("p-{}", String::from_utf8_lossy(&name))
}

/// `c-xxxxx:p-yyyyy` → `p-yyyyy`: the backing namespace of an older project.
fn backing_namespace(project_id: &str) -> &str {
    project_id.split_once(':').map_or(project_id, |(_, p)| p)
}

/// A name as Kubernetes accepts it for a secret (DNS-1123 subdomain): what norman's `hostname` type checks.
fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The token a request carries, in whichever form Rancher accepts.
fn presented_token(call: &Call) -> Option<String> {
    if let Some(value) = call.header("authorization") {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        return if scheme.eq_ignore_ascii_case("bearer") {
            Some(rest.to_string())
        } else if scheme.eq_ignore_ascii_case("basic") {
            decode_basic(rest)
        } else {
            None
        };
    }
    call.header("cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "R_SESS")
        .map(|(_, value)| value.to_string())
}

/// Rancher decodes Basic credentials with Go's `base64.URLEncoding`: the URL-safe alphabet, padded.
fn decode_basic(encoded: &str) -> Option<String> {
    let decoded = base64::engine::general_purpose::URL_SAFE.decode(encoded).ok()?;
    String::from_utf8(decoded).ok()
}

/// `%3A` → `:` and the like, for path segments.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which items a page holds: `[start, end)` of the sorted ids, and the marker of the next page if more remain.
/// The marker is the id the next page starts at (norman's `ApplyPagination`); an unknown marker starts at the top.
fn page(ids: &[String], limit: usize, marker: Option<&str>) -> (usize, usize, Option<String>) {
    let start = marker.and_then(|m| ids.iter().position(|id| id == m)).unwrap_or(0);
    let end = (start + limit).min(ids.len());
    let next = (end < ids.len()).then(|| ids[end].clone());
    (start, end, next)
}

/// `limit` as norman reads it: missing, unparsable or not positive means the default; capped at the maximum.
fn page_limit(asked: Option<&str>, max_limit: usize) -> usize {
    let limit = asked.and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map_or(DEFAULT_LIMIT, |l| l as usize);
    limit.min(max_limit.max(1))
}

/// One norman error body (`httperror` + `ErrorHandler`): `status` an int, `fieldName` only when set.
fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Reply {
    let mut body = json!({"type": "error", "baseType": "error", "status": status, "code": code, "message": message});
    if let Some(field) = field {
        body["fieldName"] = json!(field);
    }
    Reply::json(status, &body)
}

/// The auth filter's 401, which comes from `util.ReturnHTTPError`: `status` is a string there.
fn unauthorized() -> Reply {
    Reply::json(401, &json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"}))
}

fn not_found(what: &str) -> Reply {
    error(404, "NotFound", &format!("{what} not found"), None)
}

fn generic_error(status: u16) -> Reply {
    match status {
        401 => unauthorized(),
        403 => error(403, "PermissionDenied", "unauthorized", None),
        404 => not_found("resource"),
        405 => error(405, "MethodNotAllow", "method not allowed", None),
        409 => error(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version",
            None,
        ),
        422 => error(422, "InvalidBodyContent", "invalid body", Some("registries")),
        503 => error(503, "ClusterUnavailable", "cluster not available", None),
        _ => error(status, "ServerError", "internal error", None),
    }
}

/// The two credential types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Project,
    Namespaced,
}

impl Kind {
    fn from_segment(segment: &str) -> Option<Kind> {
        match segment.to_ascii_lowercase().as_str() {
            "dockercredentials" | "dockercredential" => Some(Kind::Project),
            "namespaceddockercredentials" | "namespaceddockercredential" => Some(Kind::Namespaced),
            _ => None,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Kind::Project => "dockerCredential",
            Kind::Namespaced => "namespacedDockerCredential",
        }
    }

    fn base_type(self) -> &'static str {
        match self {
            Kind::Project => "secret",
            Kind::Namespaced => "namespacedSecret",
        }
    }

    /// The schema's plural, as `self` links spell it.
    fn plural(self) -> &'static str {
        match self {
            Kind::Project => "dockerCredentials",
            Kind::Namespaced => "namespacedDockerCredentials",
        }
    }
}

impl Handler for Rancher2Handler {
    fn handle(&self, call: &Call) -> Reply {
        let mut store = self.store.lock().unwrap();
        let base = call.base_url();
        let segments: Vec<String> = call.path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        if !segments.first().is_some_and(|s| s.eq_ignore_ascii_case("v3")) {
            // Rancher serves its UI (or a plain 404) outside the APIs; no schemas header there.
            return Reply::new(404, "text/plain; charset=utf-8", "404 page not found");
        }
        let reply = if presented_token(call).as_deref() != Some(store.config.token.as_str()) {
            unauthorized()
        } else {
            let rest: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
            store.dispatch(call, &base, &rest)
        };
        reply.with_header("x-api-schemas", format!("{base}/v3/schemas"))
    }

    fn error_reply(&self, call: &Call, status: u16) -> Reply {
        generic_error(status).with_header("x-api-schemas", format!("{}/v3/schemas", call.base_url()))
    }
}

impl Store {
    fn dispatch(&mut self, call: &Call, base: &str, rest: &[&str]) -> Reply {
        let method = call.method.as_str();
        match rest {
            [] if method == "GET" => api_root(base),
            ["projects"] if method == "GET" => self.list_projects(call, base),
            ["projects", id] | ["project", id] if method == "GET" => match self.project(id) {
                Some(project) => Reply::json(200, &render_project(base, project)),
                None => not_found(&format!("projects \"{id}\"")),
            },
            [scope, project, kind, more @ ..]
                if scope.eq_ignore_ascii_case("project") || scope.eq_ignore_ascii_case("projects") =>
            {
                let Some(kind) = Kind::from_segment(kind) else {
                    return not_found(&format!("type {kind}"));
                };
                let known = self.project(project).is_some();
                match (method, more) {
                    // A project the key cannot see: collections are forbidden, resources simply not there.
                    (_, []) if !known => error(403, "PermissionDenied", "unauthorized", None),
                    (_, [_]) if !known => not_found(&format!("project {project}")),
                    ("GET", []) => self.list_credentials(call, base, project, kind),
                    ("POST", []) => self.create(call, base, project, kind),
                    ("GET", [id]) => match self.find(project, kind, id) {
                        Some(i) => Reply::json(200, &render(base, &self.credentials[i], false)),
                        None => not_found(&format!("secrets \"{id}\"")),
                    },
                    ("PUT", [id]) => self.update(call, base, project, kind, id),
                    ("DELETE", [id]) => match self.find(project, kind, id) {
                        Some(i) => {
                            let row = self.credentials.remove(i);
                            Reply::json(200, &render(base, &row, false))
                        }
                        None => not_found(&format!("secrets \"{id}\"")),
                    },
                    (_, [] | [_]) => generic_error(405),
                    _ => not_found("path"),
                }
            }
            [] | ["projects"] | ["projects", _] | ["project", _] => generic_error(405),
            _ => not_found("path"),
        }
    }

    fn find(&self, project: &str, kind: Kind, id: &str) -> Option<usize> {
        self.credentials.iter().position(|c| c.project_id == project && c.kind() == kind && c.id() == id)
    }

    fn list_projects(&self, call: &Call, base: &str) -> Reply {
        let filters: Vec<(String, String)> =
            call.query_pairs().into_iter().filter(|(k, _)| ["clusterId", "name", "id"].contains(&k.as_str())).collect();
        let mut rows: Vec<&ProjectRow> = self
            .projects
            .iter()
            .filter(|p| {
                filters.iter().all(|(k, v)| match k.as_str() {
                    "clusterId" => &p.cluster == v,
                    "name" => &p.display_name == v,
                    _ => &p.id() == v,
                })
            })
            .collect();
        rows.sort_by_key(|p| p.id());
        let values: Vec<(String, Value)> = rows.iter().map(|p| (p.id(), render_project(base, p))).collect();
        let filter_names = ["clusterId", "name", "id", "namespaceId", "state", "uuid"];
        self.collection(call, base, &format!("{base}/v3/projects"), "project", values, &filter_names, &filters)
    }

    fn list_credentials(&self, call: &Call, base: &str, project: &str, kind: Kind) -> Reply {
        let filters: Vec<(String, String)> = call
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| ["name", "namespaceId", "id"].contains(&k.as_str()))
            .collect();
        let mut rows: Vec<&CredentialRow> = self
            .credentials
            .iter()
            .filter(|c| (self.ignore_project_scope || c.project_id == project) && c.kind() == kind)
            .filter(|c| {
                filters.iter().all(|(k, v)| match k.as_str() {
                    "name" => &c.name == v,
                    "namespaceId" => c.namespace.as_ref() == Some(v),
                    _ => &c.id() == v,
                })
            })
            .collect();
        rows.sort_by_key(|c| c.id());
        let values: Vec<(String, Value)> = rows.iter().map(|c| (c.id(), render(base, c, false))).collect();
        let link = format!("{base}/v3/project/{project}/{}", kind.plural().to_ascii_lowercase());
        let filter_names = ["name", "namespaceId", "projectId", "id", "created", "creatorId", "description", "uuid"];
        self.collection(call, base, &link, kind.type_name(), values, &filter_names, &filters)
    }

    /// A norman collection of `values` (id, rendered item), paged by `limit` and `marker`.
    #[allow(clippy::too_many_arguments)]
    fn collection(
        &self,
        call: &Call,
        base: &str,
        link: &str,
        resource_type: &str,
        values: Vec<(String, Value)>,
        filter_names: &[&str],
        filters: &[(String, String)],
    ) -> Reply {
        let limit = page_limit(call.query_value("limit").as_deref(), self.config.max_limit);
        let ids: Vec<String> = values.iter().map(|(id, _)| id.clone()).collect();
        let (start, end, next) = page(&ids, limit, call.query_value("marker").as_deref());
        let data: Vec<Value> = values.into_iter().skip(start).take(end - start).map(|(_, v)| v).collect();
        let mut pagination = json!({"limit": limit});
        if let Some(marker) = next {
            // The request's own URL with the marker replaced, as norman's URL builder makes it.
            let mut query: Vec<String> = call
                .query
                .as_deref()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("marker="))
                .map(str::to_string)
                .collect();
            query.push(format!("marker={marker}"));
            pagination["next"] = json!(format!("{base}{}?{}", call.path, query.join("&")));
            pagination["marker"] = json!(marker);
            pagination["partial"] = json!(true);
        }
        let mut filter_map = Map::new();
        for name in filter_names {
            filter_map.insert(name.to_string(), Value::Null);
        }
        for (name, value) in filters {
            filter_map.insert(name.clone(), json!([{"modifier": "eq", "value": value}]));
        }
        Reply::json(
            200,
            &json!({
                "type": "collection", "resourceType": resource_type, "links": {"self": link},
                "createTypes": {resource_type: link}, "actions": {}, "pagination": pagination,
                "sort": {"order": "asc", "reverse": format!("{link}?order=desc"), "links": {}},
                "filters": filter_map, "data": data,
            }),
        )
    }

    fn create(&mut self, call: &Call, base: &str, project: &str, kind: Kind) -> Reply {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.body) else {
            return error(422, "InvalidBodyContent", "the body is not a JSON object", None);
        };
        let name = match body.get("name") {
            None | Some(Value::Null) => return error(422, "MissingRequired", "name is required", Some("name")),
            Some(Value::String(name)) if name.is_empty() => {
                return error(422, "MissingRequired", "name is required", Some("name"));
            }
            Some(Value::String(name)) => name.clone(),
            Some(_) => return error(422, "InvalidType", "name is not a string", Some("name")),
        };
        if !is_hostname(&name) {
            return error(422, "InvalidFormat", &format!("invalid value {name}: not a valid hostname"), Some("name"));
        }
        let namespace = match kind {
            Kind::Project => None,
            Kind::Namespaced => match body.get("namespaceId").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                None => return error(422, "MissingRequired", "namespaceId is required", Some("namespaceId")),
                Some(ns) if self.namespaces.get(ns).map(String::as_str) != Some(project) => {
                    return error(422, "InvalidReference", &format!("namespace {ns} not found"), Some("namespaceId"));
                }
                Some(ns) => Some(ns.to_string()),
            },
        };
        let registries = match parse_registries(body.get("registries")) {
            Ok(registries) => registries,
            Err(reply) => return reply,
        };
        let n = self.next();
        let row = CredentialRow {
            n,
            project_id: project.into(),
            namespace,
            name,
            description: body.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
            registries,
            annotations: string_map(body.get("annotations")),
            labels: BTreeMap::from([("cattle.io/creator".to_string(), "norman".to_string())]),
        };
        // Secret names are unique per namespace (shared with every other secret there). Kubernetes refuses a
        // second one with 409 AlreadyExists, which norman's proxy store passes on as is; norman's own 422
        // NotUnique is for fields marked unique in a schema, and `name` is not one of them.
        let home = row.home();
        if self.credentials.iter().any(|c| c.home() == home && c.name == row.name) {
            return error(409, "AlreadyExists", &format!("secrets \"{}\" already exists", row.name), None);
        }
        self.credentials.push(row.clone());
        // The one answer with password and auth: write-only fields are shown to the creator.
        Reply::json(201, &render(base, &row, true))
    }

    fn update(&mut self, call: &Call, base: &str, project: &str, kind: Kind, id: &str) -> Reply {
        let Some(i) = self.find(project, kind, id) else {
            return not_found(&format!("secrets \"{id}\""));
        };
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.body) else {
            return error(422, "InvalidBodyContent", "the body is not a JSON object", None);
        };
        let registries = match body.get("registries") {
            None => None,
            some => match parse_registries(some) {
                Ok(registries) => Some(registries),
                Err(reply) => return reply,
            },
        };
        let row = &mut self.credentials[i];
        // The whole `.dockerconfigjson` is rebuilt from what was sent: entries left out are gone, entries
        // without a password keep none.
        if let Some(registries) = registries {
            row.registries = registries;
        }
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            row.description = description.to_string();
        }
        if body.get("annotations").is_some_and(Value::is_object) {
            row.annotations = string_map(body.get("annotations"));
        }
        if body.get("labels").is_some_and(Value::is_object) {
            row.labels = string_map(body.get("labels"));
        }
        Reply::json(200, &render(base, row, false))
    }
}

/// The `registries` of a create or update; a missing map is an empty one.
fn parse_registries(value: Option<&Value>) -> Result<BTreeMap<String, RegistryEntry>, Reply> {
    let invalid = || error(422, "InvalidType", "registries must map host names to credentials", Some("registries"));
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid()),
    };
    let mut registries = BTreeMap::new();
    for (host, value) in map {
        let Value::Object(fields) = value else { return Err(invalid()) };
        let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        registries.insert(host.clone(), entry(text("username"), text("password"), text("email")));
    }
    Ok(registries)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn api_root(base: &str) -> Reply {
    let v3 = format!("{base}/v3");
    Reply::json(
        200,
        &json!({
            "type": "apiRoot", "baseType": "apiRoot", "id": "v3",
            "apiVersion": {"group": "management.cattle.io", "path": "/v3", "version": "v3"},
            "links": {
                "self": v3, "root": v3, "schemas": format!("{v3}/schemas"), "projects": format!("{v3}/projects"),
                "clusters": format!("{v3}/clusters"),
            },
        }),
    )
}

fn render_project(base: &str, p: &ProjectRow) -> Value {
    let id = p.id();
    let self_link = format!("{base}/v3/projects/{id}");
    json!({
        "id": id, "type": "project", "baseType": "project",
        "links": {
            "self": self_link, "update": self_link, "remove": self_link,
            "dockerCredentials": format!("{self_link}/dockercredentials"),
            "namespacedDockerCredentials": format!("{self_link}/namespaceddockercredentials"),
        },
        "actions": {}, "annotations": {}, "labels": {}, "clusterId": p.cluster, "created": CREATED,
        "createdTS": CREATED_TS, "creatorId": "u-abc12", "description": "", "name": p.display_name,
        "namespaceId": null, "state": "active", "transitioning": "no", "transitioningMessage": "",
        "uuid": format!("7b3e9c1a-2d4f-4e6a-8b0c-{:012x}", p.n),
    })
}

/// A credential as the API shows it; `password` and `auth` only when `write_only` fields are to be shown.
fn render(base: &str, c: &CredentialRow, write_only: bool) -> Value {
    let kind = c.kind();
    let id = c.id();
    let self_link = format!("{base}/v3/project/{}/{}/{id}", c.project_id, kind.plural());
    let registries: Map<String, Value> = c
        .registries
        .iter()
        .map(|(host, e)| {
            let mut entry = Map::new();
            if let Some(username) = &e.username {
                entry.insert("username".into(), json!(username));
            }
            if let Some(email) = &e.email {
                entry.insert("email".into(), json!(email));
            }
            if write_only {
                if let Some(password) = &e.password {
                    entry.insert("password".into(), json!(password));
                }
                if let Some(auth) = &e.auth {
                    entry.insert("auth".into(), json!(auth));
                }
            }
            (host.clone(), Value::Object(entry))
        })
        .collect();
    json!({
        "id": id, "type": kind.type_name(), "baseType": kind.base_type(),
        "links": {"self": self_link, "update": self_link, "remove": self_link},
        "annotations": c.annotations, "labels": c.labels, "created": CREATED, "createdTS": CREATED_TS,
        "creatorId": "u-abc12", "description": c.description, "name": c.name, "namespaceId": c.namespace,
        "projectId": c.project_id, "registries": registries,
        "uuid": format!("0d4c2f5e-8a1b-4c3d-9e2f-{:012x}", c.n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p-abcde:cred-{i:04}")).collect()
    }

    #[test]
    fn project_names_look_generated_and_differ() {
        let names: std::collections::BTreeSet<String> = (1..2000).map(project_name).collect();
        assert_eq!(names.len(), 1999);
        for name in names.iter().take(20) {
            assert!(name.starts_with("p-") && name.len() == 7, "{name}");
            assert!(is_hostname(name), "{name}");
        }
    }

    #[test]
    fn credential_ids_are_namespace_colon_name() {
        let mut row = CredentialRow {
            n: 1,
            project_id: "c-one:p-z2qff".into(),
            namespace: None,
            name: "ecr".into(),
            description: String::new(),
            registries: BTreeMap::new(),
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
        };
        assert_eq!(row.id(), "p-z2qff:ecr");
        row.namespace = Some("web".into());
        assert_eq!(row.id(), "web:ecr");
    }

    #[test]
    fn pages_follow_markers_to_the_end() {
        let all = ids(2500);
        assert_eq!(page(&all, 1000, None), (0, 1000, Some("p-abcde:cred-1000".into())));
        assert_eq!(page(&all, 1000, Some("p-abcde:cred-1000")), (1000, 2000, Some("p-abcde:cred-2000".into())));
        assert_eq!(page(&all, 1000, Some("p-abcde:cred-2000")), (2000, 2500, None));
        assert_eq!(page(&all, 5000, None), (0, 2500, None));
        assert_eq!(page(&[], 1000, None), (0, 0, None));
    }

    #[test]
    fn limits_default_to_1000_and_are_capped() {
        assert_eq!(page_limit(None, 10_000), 1000);
        assert_eq!(page_limit(Some("5000"), 1000), 1000);
        assert_eq!(page_limit(Some("50"), 1000), 50);
        assert_eq!(page_limit(Some("-1"), 1000), 1000);
        assert_eq!(page_limit(Some("x"), 100), 100);
    }

    #[test]
    fn basic_auth_is_decoded_with_the_url_safe_alphabet_only() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let token = "token-abcde:a?b>c~d";
        let standard = STANDARD.encode(token);
        let url_safe = URL_SAFE.encode(token);
        assert!(standard.contains('/') || standard.contains('+'), "{standard}");
        assert_eq!(decode_basic(&url_safe).as_deref(), Some(token));
        assert_eq!(decode_basic(&standard), None);
        assert_eq!(decode_basic(&STANDARD.encode("token-abcde:plain")).as_deref(), Some("token-abcde:plain"));
    }

    #[test]
    fn names_must_be_hostnames() {
        assert!(is_hostname("ecr-123456789012-us-east-1"));
        assert!(is_hostname("a.b-c"));
        for bad in ["", "Upper", "-x", "x-", "a..b", "a_b", &"a".repeat(64)] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decode("p-abcde%3Aecr"), "p-abcde:ecr");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    /// One request over a fresh connection, the way any HTTP/1.1 client sends it: (status, headers, JSON body).
    async fn send(
        rancher: &FakeRancher2,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(rancher.server.addr).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n", rancher.server.addr);
        if let Some(authorization) = authorization {
            head.push_str(&format!("authorization: {authorization}\r\n"));
        }
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head.to_ascii_lowercase(), serde_json::from_str(body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn it_authenticates_validates_and_hides_passwords_like_rancher() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let token = "token-abcde:a?b>c~d";
        let rancher = FakeRancher2::start(Rancher2Config { token: token.into(), ..Rancher2Config::default() }).await;
        let project = rancher.add_project("c-one", "Default");
        let bearer = format!("Bearer {token}");
        let auth = Some(bearer.as_str());
        let collection = format!("/v3/project/{project}/dockercredentials");

        // The probe: 401 without credentials, with the schemas header and a string status.
        let (status, head, body) = send(&rancher, "GET", "/v3", None, None).await;
        assert_eq!(status, 401);
        assert!(head.contains("x-api-schemas: http://127.0.0.1:"), "{head}");
        assert_eq!(body["status"], "401");
        // Basic: URL-safe base64 only.
        let standard = format!("Basic {}", STANDARD.encode(token));
        assert_eq!(send(&rancher, "GET", "/v3", Some(&standard), None).await.0, 401);
        let url_safe = format!("Basic {}", URL_SAFE.encode(token));
        assert_eq!(send(&rancher, "GET", "/v3", Some(&url_safe), None).await.0, 200);

        // Create: name required, a hostname, unique; the answer alone shows password and auth.
        let registries = json!({"r.example.com": {"username": "AWS", "password": "pw1"}});
        let (status, _, body) =
            send(&rancher, "POST", &collection, auth, Some(json!({"registries": registries}))).await;
        assert_eq!(
            (status, body["code"].as_str(), body["fieldName"].as_str()),
            (422, Some("MissingRequired"), Some("name"))
        );
        assert_eq!(body["status"], 422);
        let bad = json!({"name": "Not_A_Host", "registries": registries});
        assert_eq!(send(&rancher, "POST", &collection, auth, Some(bad)).await.2["code"], "InvalidFormat");
        let good = json!({"type": "dockerCredential", "name": "ecr", "registries": registries});
        let (status, _, created) = send(&rancher, "POST", &collection, auth, Some(good.clone())).await;
        assert_eq!(status, 201);
        assert_eq!(created["registries"]["r.example.com"]["password"], "pw1");
        assert_eq!(created["registries"]["r.example.com"]["auth"], STANDARD.encode("AWS:pw1"));
        assert_eq!(send(&rancher, "POST", &collection, auth, Some(good)).await.0, 409);
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(id, format!("{}:ecr", backing_namespace(&project)));

        // Read back through the other prefix and a camelCase type: no password, camelCase self link.
        let resource = format!("/v3/projects/{project}/DockerCredentials/{id}");
        let (status, _, got) = send(&rancher, "GET", &resource, auth, None).await;
        assert_eq!(status, 200);
        assert_eq!(got["registries"]["r.example.com"], json!({"username": "AWS"}));
        assert!(
            got["links"]["self"].as_str().unwrap().ends_with(&format!("/v3/project/{project}/dockerCredentials/{id}"))
        );
        assert_eq!(got["namespaceId"], Value::Null);

        // PUT replaces the whole map: an entry without password keeps none.
        let put = json!({"registries": {"r.example.com": {"username": "AWS"}, "q.example.com": {"username": "u", "password": "pw2"}}});
        let (status, _, updated) = send(&rancher, "PUT", &resource, auth, Some(put)).await;
        assert_eq!(status, 200);
        assert_eq!(updated["registries"]["q.example.com"], json!({"username": "u"}));
        let stored = rancher.credential(&id).unwrap();
        assert_eq!(stored.registries["r.example.com"].password, None);
        assert_eq!(stored.registries["q.example.com"].auth.as_deref(), Some(STANDARD.encode("u:pw2").as_str()));
        assert_eq!(send(&rancher, "PUT", &format!("{collection}/p-zzzzz:nope"), auth, Some(json!({}))).await.0, 404);

        // Namespaced: namespaceId required.
        let namespaced = format!("/v3/project/{project}/namespaceddockercredentials");
        let (status, _, body) = send(&rancher, "POST", &namespaced, auth, Some(json!({"name": "n"}))).await;
        assert_eq!((status, body["fieldName"].as_str()), (422, Some("namespaceId")));

        // A project the key cannot see.
        assert_eq!(send(&rancher, "GET", "/v3/project/c-one:p-nope1/dockercredentials", auth, None).await.0, 403);
        assert_eq!(send(&rancher, "GET", "/v3/project/c-one:p-nope1/dockercredentials/x:y", auth, None).await.0, 404);
    }

    #[tokio::test]
    async fn listings_page_with_markers_and_include_copies() {
        let rancher = FakeRancher2::start(Rancher2Config { max_limit: 2, ..Rancher2Config::default() }).await;
        let project = rancher.add_project("c-one", "Default");
        for name in ["a", "b", "c"] {
            rancher.add_copy(&project, "web", name, &[("r.example.com", "u", "p")]);
        }
        let auth = format!("Bearer {}", Rancher2Config::default().token);
        let path = format!("/v3/projects/{project}/namespaceddockercredentials?limit=1000");
        let (status, _, first) = send(&rancher, "GET", &path, Some(&auth), None).await;
        assert_eq!(status, 200);
        assert_eq!(first["data"].as_array().unwrap().len(), 2);
        assert_eq!(first["pagination"]["partial"], true);
        assert_eq!(first["data"][0]["annotations"][COPY_ANNOTATION], "true");
        let next = first["pagination"]["next"].as_str().unwrap();
        assert!(next.starts_with("http://127.0.0.1:") && next.ends_with("limit=1000&marker=web:c"), "{next}");
        let (_, _, second) = send(&rancher, "GET", &format!("{path}&marker=web:c"), Some(&auth), None).await;
        assert_eq!(second["data"][0]["id"], "web:c");
        assert_eq!(second["pagination"].get("next"), None);
        assert_eq!(second["pagination"].get("partial"), None);
    }
}
