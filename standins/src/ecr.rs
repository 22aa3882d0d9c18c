//! A stand-in for Amazon ECR's `GetAuthorizationToken` (awsJson1.1, `POST /`), reached by the real AWS SDK
//! through `AWS_ENDPOINT_URL`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::fault::Fault;
use crate::server::{Call, Handler, Reply, Server};

pub const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// ECR Public's operation (service `ecr-public`, only in us-east-1).
pub const PUBLIC_TARGET: &str = "SpencerFrontendService.GetAuthorizationToken";

/// A registry the fake hands tokens for.
#[derive(Clone, Debug)]
pub struct EcrRegistry {
    pub account_id: String,
    pub region: String,
    pub password: String,
    /// Epoch seconds, as ECR sends it.
    pub expires_at: f64,
}

/// What the answer looks like: normal, or one of the malformed shapes a client must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenShape {
    Normal,
    /// base64 of `AWS<password>`: no colon to split at.
    WithoutColon,
    /// A token that is not base64 at all.
    NotBase64,
    /// `"authorizationData": []`.
    EmptyAuthorizationData,
    /// Entries without `expiresAt`.
    MissingExpiresAt,
}

/// One GetAuthorizationToken call as received.
#[derive(Clone, Debug)]
pub struct EcrRequest {
    /// The `X-Amz-Target` header.
    pub target: String,
    pub registry_ids: Vec<String>,
    /// Whether the request carried a SigV4 `Authorization` header.
    pub signed: bool,
    pub authorization: Option<String>,
    /// The access key id and the region of the SigV4 signature: who asked, for which region.
    pub access_key_id: Option<String>,
    pub region: Option<String>,
    pub status: u16,
}

struct State {
    registries: Vec<EcrRegistry>,
    shape: TokenShape,
    /// Access key id → the account those credentials belong to (for "the caller's own registry").
    callers: Vec<(String, String)>,
    /// The ECR Public password and its expiry (epoch seconds), when set.
    public: Option<(String, f64)>,
}

struct EcrHandler {
    state: Mutex<State>,
}

/// The fake ECR endpoint. Clones share the same server and state.
#[derive(Clone)]
pub struct FakeEcr {
    server: Server,
    handler: Arc<EcrHandler>,
}

impl FakeEcr {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> FakeEcr {
        FakeEcr::start_on("127.0.0.1:0".parse().unwrap()).await.expect("a free loopback port")
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeEcr> {
        let handler = Arc::new(EcrHandler {
            state: Mutex::new(State {
                registries: Vec::new(),
                shape: TokenShape::Normal,
                callers: Vec::new(),
                public: None,
            }),
        });
        let server = Server::start(addr, handler.clone()).await?;
        Ok(FakeEcr { server, handler })
    }

    /// The endpoint URL, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The loopback address it listens on (for a proxy's route).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// Adds a registry. The first one added is the caller's own, answered when no registry ids are asked for.
    pub fn add_registry(&self, registry: EcrRegistry) {
        self.state().registries.push(registry);
    }

    pub fn set_password(&self, account_id: &str, password: &str) {
        self.edit(account_id, |r| r.password = password.to_string());
    }

    pub fn set_expires_at(&self, account_id: &str, expires_at: f64) {
        self.edit(account_id, |r| r.expires_at = expires_at);
    }

    /// Requests signed with `access_key_id` come from `account_id`: without registry ids they get that account's
    /// registry in the signing region. Unknown callers get the first registry of the region.
    pub fn set_caller_account(&self, access_key_id: &str, account_id: &str) {
        self.state().callers.push((access_key_id.to_string(), account_id.to_string()));
    }

    pub fn set_token_shape(&self, shape: TokenShape) {
        self.state().shape = shape;
    }

    /// Answers ECR Public's GetAuthorizationToken with this password, valid until `expires_at`.
    pub fn set_public_password(&self, password: &str, expires_at: f64) {
        self.handler.state.lock().unwrap().public = Some((password.to_string(), expires_at));
    }

    pub fn set_fault(&self, fault: Fault) {
        self.server.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.server.faults.clear();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<EcrRequest> {
        self.server
            .received()
            .into_iter()
            .map(|r| {
                let authorization = r.call.header("authorization");
                let scope = r.call.signing_scope();
                EcrRequest {
                    access_key_id: scope.as_ref().map(|(key, _)| key.clone()),
                    region: scope.map(|(_, region)| region),
                    target: r.call.header("x-amz-target").unwrap_or_default(),
                    registry_ids: registry_ids(&r.call),
                    signed: authorization.as_deref().is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ")),
                    authorization,
                    status: r.status,
                }
            })
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.handler.state.lock().unwrap()
    }

    fn edit(&self, account_id: &str, change: impl Fn(&mut EcrRegistry)) {
        let mut state = self.state();
        let registry = state.registries.iter_mut().find(|r| r.account_id == account_id);
        change(registry.unwrap_or_else(|| panic!("no fake ECR registry for account {account_id}")));
    }
}

fn registry_ids(call: &Call) -> Vec<String> {
    let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
    body["registryIds"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn aws_error(status: u16, type_name: &str, message: &str) -> Reply {
    Reply::new(
        status,
        "application/x-amz-json-1.1",
        serde_json::to_vec(&json!({"__type": type_name, "message": message})).unwrap(),
    )
    .with_header("x-amzn-requestid", "00000000-0000-4000-8000-000000000000")
}

impl Handler for EcrHandler {
    fn handle(&self, call: &Call) -> Reply {
        if call.method != "POST" || call.path != "/" {
            return aws_error(404, "UnknownOperationException", "not found");
        }
        let authorization = call.header("authorization").unwrap_or_default();
        if call.header("x-amz-target").as_deref() == Some(PUBLIC_TARGET) {
            return self.public_token(call, &authorization);
        }
        if !authorization.starts_with("AWS4-HMAC-SHA256 ") || !authorization.contains("/ecr/aws4_request") {
            return aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        }
        if call.header("x-amz-target").as_deref() != Some(TARGET) {
            return aws_error(400, "UnknownOperationException", "unknown operation");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&call.body) else {
            return aws_error(400, "SerializationException", "body is not JSON");
        };
        let state = self.state.lock().unwrap();
        let asked = registry_ids(call);
        let (caller, region) = call.signing_scope().unwrap_or_default();
        let in_region = |r: &&EcrRegistry| r.region == region;
        let chosen: Vec<&EcrRegistry> = if asked.is_empty() && body.get("registryIds").is_none() {
            let own = state.callers.iter().find(|(key, _)| *key == caller).map(|(_, account)| account);
            let mine = state.registries.iter().filter(in_region).find(|r| own.is_none_or(|a| *a == r.account_id));
            mine.or(state.registries.first()).into_iter().collect()
        } else {
            let mut chosen = Vec::new();
            for id in &asked {
                let same_region = state.registries.iter().filter(in_region).find(|r| &r.account_id == id);
                match same_region.or_else(|| state.registries.iter().find(|r| &r.account_id == id)) {
                    Some(r) => chosen.push(r),
                    None => {
                        let message =
                            format!("Invalid parameter at 'registryIds' failed to satisfy constraint: '{id}'");
                        return aws_error(400, "InvalidParameterException", &message);
                    }
                }
            }
            chosen
        };
        let data: Vec<Value> = if state.shape == TokenShape::EmptyAuthorizationData {
            Vec::new()
        } else {
            chosen.iter().map(|r| entry(r, state.shape)).collect()
        };
        Reply::new(200, "application/x-amz-json-1.1", serde_json::to_vec(&json!({"authorizationData": data})).unwrap())
            .with_header("x-amzn-requestid", "00000000-0000-4000-8000-000000000001")
    }

    fn error_reply(&self, _: &Call, status: u16) -> Reply {
        let type_name = if status >= 500 { "ServerException" } else { "InvalidParameterException" };
        aws_error(status, type_name, "stand-in fault")
    }
}

impl EcrHandler {
    /// ECR Public's GetAuthorizationToken: signed for `ecr-public` in us-east-1, one entry without an endpoint.
    fn public_token(&self, call: &Call, authorization: &str) -> Reply {
        if !authorization.starts_with("AWS4-HMAC-SHA256 ") || !authorization.contains("/ecr-public/aws4_request") {
            return aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        }
        if call.signing_scope().map(|(_, region)| region).as_deref() != Some("us-east-1") {
            return aws_error(400, "UnknownOperationException", "ECR Public tokens are only given in us-east-1");
        }
        let state = self.state.lock().unwrap();
        let Some(public) = &state.public else {
            return aws_error(400, "ServerException", "no ECR Public token set in the stand-in");
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", public.0));
        let body = json!({"authorizationData": {"authorizationToken": token, "expiresAt": public.1}});
        Reply::new(200, "application/x-amz-json-1.1", serde_json::to_vec(&body).unwrap())
            .with_header("x-amzn-requestid", "00000000-0000-4000-8000-000000000002")
    }
}

fn entry(registry: &EcrRegistry, shape: TokenShape) -> Value {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let token = match shape {
        TokenShape::WithoutColon => b64(format!("AWS{}", registry.password)),
        TokenShape::NotBase64 => "this is %% not base64 !!".to_string(),
        _ => b64(format!("AWS:{}", registry.password)),
    };
    let mut entry = json!({
        "authorizationToken": token,
        "proxyEndpoint": format!("https://{}.dkr.ecr.{}.amazonaws.com", registry.account_id, registry.region),
    });
    if shape != TokenShape::MissingExpiresAt {
        entry["expiresAt"] = json!(registry.expires_at);
    }
    entry
}
