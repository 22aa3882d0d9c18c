//! A stand-in for AWS STS `AssumeRole` and `AssumeRoleWithWebIdentity` (the awsQuery protocol: a form-encoded
//! POST, an XML answer), reached by the real AWS SDK through `AWS_ENDPOINT_URL_STS` (or a proxy's route). It records which role, session name and ExternalId each call
//! asked for, and hands out access key ids that tell the roles apart, so that the ECR stand-in can say which
//! credentials signed each of its requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fault::Fault;
use crate::server::{Call, Handler, Reply, Server};

/// A role the stand-in lets callers assume.
#[derive(Clone, Debug)]
struct Role {
    arn: String,
    external_id: Option<String>,
}

/// One AssumeRole call as received.
#[derive(Clone, Debug)]
pub struct StsRequest {
    pub action: Option<String>,
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u64>,
    /// The token of an `AssumeRoleWithWebIdentity` call.
    pub web_identity_token: Option<String>,
    /// The access key id of the credentials that signed the call.
    pub caller: Option<String>,
    pub status: u16,
}

struct StsHandler {
    roles: Mutex<Vec<Role>>,
}

/// The fake STS endpoint. Clones share the same server and state.
#[derive(Clone)]
pub struct FakeSts {
    server: Server,
    handler: Arc<StsHandler>,
}

impl FakeSts {
    pub async fn start() -> FakeSts {
        let handler = Arc::new(StsHandler { roles: Mutex::new(Vec::new()) });
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = Server::start(addr, handler.clone()).await.expect("a free loopback port");
        FakeSts { server, handler }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The loopback address it listens on (for a proxy's route).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// Allows assuming `arn`; with `external_id`, only when the caller gives exactly that ExternalId.
    pub fn add_role(&self, arn: &str, external_id: Option<&str>) {
        let role = Role { arn: arn.to_string(), external_id: external_id.map(str::to_string) };
        self.handler.roles.lock().unwrap().push(role);
    }

    /// The access key id handed out for a role: `ASIA` and the role's account id, then its position.
    pub fn access_key_for(&self, arn: &str) -> String {
        let roles = self.handler.roles.lock().unwrap();
        let index = roles.iter().position(|r| r.arn == arn).expect("a role added with add_role");
        access_key(&roles[index].arn, index)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.server.faults.add(fault);
    }

    pub fn requests(&self) -> Vec<StsRequest> {
        self.server
            .received()
            .into_iter()
            .map(|r| {
                let form = r.call.form();
                let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                StsRequest {
                    action: get("Action"),
                    role_arn: get("RoleArn"),
                    session_name: get("RoleSessionName"),
                    external_id: get("ExternalId"),
                    duration_seconds: get("DurationSeconds").and_then(|d| d.parse().ok()),
                    web_identity_token: get("WebIdentityToken"),
                    caller: r.call.signing_access_key(),
                    status: r.status,
                }
            })
            .collect()
    }
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("000000000000")
}

fn access_key(arn: &str, index: usize) -> String {
    format!("ASIA{}{index:04}", account_of(arn))
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\
         </ErrorResponse>"
    );
    Reply::new(status, "text/xml", body)
}

impl Handler for StsHandler {
    fn handle(&self, call: &Call) -> Reply {
        if call.method != "POST" {
            return error(400, "InvalidAction", "POST only");
        }
        let form = call.form();
        let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        // AssumeRoleWithWebIdentity is not signed: the token is the proof.
        let web_identity = get("Action").as_deref() == Some("AssumeRoleWithWebIdentity");
        let authorization = call.header("authorization").unwrap_or_default();
        let signed = authorization.starts_with("AWS4-HMAC-SHA256 ") && authorization.contains("/sts/aws4_request");
        if !web_identity && !signed {
            return error(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
        }
        if !web_identity && get("Action").as_deref() != Some("AssumeRole") {
            return error(400, "InvalidAction", "only AssumeRole and AssumeRoleWithWebIdentity are served here");
        }
        if web_identity && get("WebIdentityToken").is_none_or(|t| t.is_empty()) {
            return error(400, "MissingParameter", "WebIdentityToken");
        }
        let Some(arn) = get("RoleArn") else { return error(400, "MissingParameter", "RoleArn") };
        let Some(session) = get("RoleSessionName") else { return error(400, "MissingParameter", "RoleSessionName") };
        let roles = self.roles.lock().unwrap();
        let Some(index) = roles.iter().position(|r| r.arn == arn) else {
            return error(
                403,
                "AccessDenied",
                &format!("User is not authorized to perform: sts:AssumeRole on resource: {arn}"),
            );
        };
        if roles[index].external_id.is_some() && roles[index].external_id != get("ExternalId") {
            return error(
                403,
                "AccessDenied",
                &format!("User is not authorized to perform: sts:AssumeRole on resource: {arn}"),
            );
        }
        let duration: u64 = get("DurationSeconds").and_then(|d| d.parse().ok()).unwrap_or(3600);
        if !(900..=43_200).contains(&duration) {
            return error(400, "ValidationError", "DurationSeconds must be between 900 and 43200");
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let expiration = iso8601(now + duration);
        let key = access_key(&arn, index);
        let account = account_of(&arn);
        let role_name = arn.rsplit('/').next().unwrap_or("role");
        let action = if web_identity { "AssumeRoleWithWebIdentity" } else { "AssumeRole" };
        let body = format!(
            "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
             <Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>fake-secret-{index}</SecretAccessKey>\
             <SessionToken>fake-session-token-{index}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROA{account}:{session}</AssumedRoleId>\
             <Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn></AssumedRoleUser>\
             </{action}Result><ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\
             </ResponseMetadata></{action}Response>"
        );
        Reply::new(200, "text/xml", body)
    }

    fn error_reply(&self, _: &Call, status: u16) -> Reply {
        error(status, if status >= 500 { "InternalFailure" } else { "Throttling" }, "stand-in fault")
    }
}

/// `2026-11-25T12:00:00Z` for Unix seconds (the civil-from-days algorithm).
pub(crate) fn iso8601(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_764_072_000), "2025-11-25T12:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn access_keys_carry_the_role_account() {
        assert_eq!(access_key("arn:aws:iam::111122223333:role/x", 2), "ASIA1111222233330002");
    }
}
