//! A stand-in for the EKS Pod Identity agent: `GET /v1/credentials`, as the agent serves it on 169.254.170.23
//! (here on 127.0.0.1, which the SDKs also accept for `AWS_CONTAINER_CREDENTIALS_FULL_URI`), reached by the real
//! AWS SDK's container-credentials provider with the content of `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` in the
//! `Authorization` header.
//!
//! It answers as the agent does (aws/eks-pod-identity-agent, `pkg/handlers`, `internal/validation`):
//! credentials as JSON (`AccessKeyId`, `SecretAccessKey`, `Token`, `AccountId`, `Expiration`) for the one token it
//! accepts; `400` with a plain-text message for a missing or unparseable token, and for a token EKS Auth refuses
//! (the agent passes on EKS Auth's status: `InvalidTokenException`, or `ExpiredTokenException` for a token that
//! was replaced); `403` when called through an address other than its own. It records every request with the
//! header it saw, and can be told to accept a new token from now on ([`FakePodIdentityAgent::rotate`]), as when
//! the kubelet rotates the projected ServiceAccount token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::fault::Fault;
use crate::server::{Call, Handler, Reply, Server};
use crate::sts::iso8601;

/// The path the agent serves credentials on.
pub const PATH: &str = "/v1/credentials";

/// The credentials the agent hands out for the accepted token.
#[derive(Clone, Debug)]
pub struct AgentCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub account_id: String,
    /// How long each answer's credentials are valid from the moment they are handed out (`Expiration`).
    pub lifetime: Duration,
}

/// One request as received, with the `Authorization` header it carried and the status it got.
#[derive(Clone, Debug)]
pub struct AgentRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub host: Option<String>,
    pub status: u16,
    pub at: Instant,
}

struct State {
    token: String,
    credentials: AgentCredentials,
    /// Tokens accepted before the last rotation: EKS Auth calls them expired.
    retired: Vec<String>,
}

struct AgentHandler {
    state: Mutex<State>,
}

/// The fake agent. Clones share the same server and state.
#[derive(Clone)]
pub struct FakePodIdentityAgent {
    server: Server,
    handler: Arc<AgentHandler>,
}

impl FakePodIdentityAgent {
    /// Starts on a free port of 127.0.0.1, accepting only `token`.
    pub async fn start(token: &str, credentials: AgentCredentials) -> FakePodIdentityAgent {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        FakePodIdentityAgent::start_on(addr, token, credentials).await.expect("a free loopback port")
    }

    /// Starts on `addr` (another loopback address, e.g. `127.0.0.2:0`, to tell it apart from the other stand-ins
    /// in `NO_PROXY`).
    pub async fn start_on(
        addr: SocketAddr,
        token: &str,
        credentials: AgentCredentials,
    ) -> std::io::Result<FakePodIdentityAgent> {
        let state = State { token: token.to_string(), credentials, retired: Vec::new() };
        let handler = Arc::new(AgentHandler { state: Mutex::new(state) });
        let server = Server::start(addr, handler.clone()).await?;
        Ok(FakePodIdentityAgent { server, handler })
    }

    /// The value of `AWS_CONTAINER_CREDENTIALS_FULL_URI`: `http://127.0.0.1:<port>/v1/credentials`.
    pub fn full_uri(&self) -> String {
        format!("{}{PATH}", self.server.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// From now on only `token` is accepted, and it gets `credentials`; every token accepted before is answered
    /// as expired.
    pub fn rotate(&self, token: &str, credentials: AgentCredentials) {
        let mut state = self.handler.state.lock().unwrap();
        let old = std::mem::replace(&mut state.token, token.to_string());
        state.retired.push(old);
        state.credentials = credentials;
    }

    pub fn set_fault(&self, fault: Fault) {
        self.server.faults.add(fault);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<AgentRequest> {
        self.server
            .received()
            .into_iter()
            .map(|r| AgentRequest {
                method: r.call.method.clone(),
                path: r.call.path.clone(),
                authorization: r.call.header("authorization"),
                host: r.call.header("host"),
                status: r.status,
                at: r.at,
            })
            .collect()
    }
}

/// The agent's errors are Go's `http.Error`: plain text and a newline.
fn text(status: u16, message: &str) -> Reply {
    Reply::new(status, "text/plain; charset=utf-8", format!("{message}\n"))
        .with_header("x-content-type-options", "nosniff")
}

/// The shape the agent checks before calling EKS Auth: a JWT, three base64url parts.
fn looks_like_a_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)))
}

/// The addresses the agent answers on; loopback too (the agent's own tests bind it there).
fn allowed_host(host: &str) -> bool {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(host, "169.254.170.23" | "fd00:ec2::23" | "localhost") || host.starts_with("127.")
}

impl Handler for AgentHandler {
    fn handle(&self, call: &Call) -> Reply {
        if call.path != PATH {
            return text(404, "404 page not found");
        }
        if call.method != "GET" {
            return text(405, "Method Not Allowed");
        }
        let host = call.header("host").unwrap_or_default();
        if !allowed_host(&host) {
            return text(
                403,
                &format!(
                    "Access Denied. Called agent through invalid address, please use either \
                     [169.254.170.23 fd00:ec2::23] address not {host}"
                ),
            );
        }
        let token = call.header("authorization").unwrap_or_default();
        if token.is_empty() {
            return text(400, "Service account token cannot be empty");
        }
        if !looks_like_a_jwt(&token) {
            return text(400, "Service account token cannot be parsed: token is malformed");
        }
        let state = self.state.lock().unwrap();
        if token != state.token {
            let (code, message) = match state.retired.contains(&token) {
                true => ("ExpiredTokenException", "The specified Kubernetes service account token is expired."),
                false => ("InvalidTokenException", "The specified Kubernetes service account token is invalid."),
            };
            return text(400, &format!("[00000000-0000-4000-8000-00000000e0a7]: ({code}): {message}, fault: client"));
        }
        let credentials = &state.credentials;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let body = json!({
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "Token": credentials.session_token,
            "AccountId": credentials.account_id,
            "Expiration": iso8601(now + credentials.lifetime.as_secs()),
        });
        Reply::new(200, "application/json", serde_json::to_vec(&body).unwrap_or_default())
    }

    fn error_reply(&self, _: &Call, status: u16) -> Reply {
        text(status, "[00000000-0000-4000-8000-0000000000fa]: (InternalServerException): stand-in fault, fault: server")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsicG9kcy5la3MuYW1hem9uYXdzLmNvbSJdfQ.c2ln";
    const NEXT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb3RhdGVkIn0.c2lnMg";

    fn credentials(key: &str) -> AgentCredentials {
        AgentCredentials {
            access_key_id: key.into(),
            secret_access_key: format!("secret-of-{key}"),
            session_token: format!("session-of-{key}"),
            account_id: "123456789012".into(),
            lifetime: Duration::from_secs(300),
        }
    }

    async fn get(agent: &FakePodIdentityAgent, path: &str, host: &str, authorization: Option<&str>) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(agent.addr()).await.unwrap();
        let mut head = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
        if let Some(authorization) = authorization {
            head.push_str(&format!("authorization: {authorization}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head[9..12].parse().unwrap(), body.to_string())
    }

    #[tokio::test]
    async fn it_serves_credentials_only_for_the_accepted_token_and_follows_a_rotation() {
        let agent = FakePodIdentityAgent::start(TOKEN, credentials("ASIAPODIDENTITY00001")).await;
        let host = agent.addr().to_string();
        assert!(agent.full_uri().starts_with("http://127.0.0.1:") && agent.full_uri().ends_with("/v1/credentials"));

        let (status, body) = get(&agent, PATH, &host, Some(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["AccessKeyId"], "ASIAPODIDENTITY00001");
        assert_eq!(body["SecretAccessKey"], "secret-of-ASIAPODIDENTITY00001");
        assert_eq!(body["Token"], "session-of-ASIAPODIDENTITY00001");
        assert_eq!(body["AccountId"], "123456789012");
        let expiration = body["Expiration"].as_str().unwrap();
        assert!(expiration.len() == 20 && expiration.ends_with('Z'), "{expiration}");

        let (status, body) = get(&agent, PATH, &host, None).await;
        assert_eq!((status, body.as_str()), (400, "Service account token cannot be empty\n"));
        assert_eq!(get(&agent, PATH, &host, Some("not-a-jwt")).await.0, 400);
        let (status, body) = get(&agent, PATH, &host, Some(NEXT)).await;
        assert_eq!(status, 400);
        assert!(body.contains("(InvalidTokenException)"), "{body}");
        assert_eq!(get(&agent, PATH, "10.0.0.7", Some(TOKEN)).await.0, 403);
        assert_eq!(get(&agent, "/v2/credentials", &host, Some(TOKEN)).await.0, 404);

        agent.rotate(NEXT, credentials("ASIAPODIDENTITY00002"));
        let (status, body) = get(&agent, PATH, &host, Some(TOKEN)).await;
        assert_eq!(status, 400);
        assert!(body.contains("(ExpiredTokenException)"), "{body}");
        let (status, body) = get(&agent, PATH, &host, Some(NEXT)).await;
        assert_eq!(status, 200);
        assert!(body.contains("ASIAPODIDENTITY00002"), "{body}");

        let seen: Vec<(Option<String>, u16)> =
            agent.requests().into_iter().map(|r| (r.authorization, r.status)).collect();
        assert_eq!(seen.len(), 8);
        assert_eq!(seen[0], (Some(TOKEN.to_string()), 200));
        assert_eq!(seen[1], (None, 400));
        assert_eq!(seen[7], (Some(NEXT.to_string()), 200));
    }

    #[test]
    fn the_agent_addresses_and_loopback_are_its_own() {
        for host in ["169.254.170.23", "169.254.170.23:80", "[fd00:ec2::23]", "[fd00:ec2::23]:80", "127.0.0.1:4321"] {
            assert!(allowed_host(host), "{host}");
        }
        for host in ["10.0.0.7", "proxy.corp:3128", "169.254.170.2"] {
            assert!(!allowed_host(host), "{host}");
        }
    }
}
