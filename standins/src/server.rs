//! The HTTP plumbing every stand-in shares: accept connections on loopback, read each request whole, apply a
//! fault or ask the stand-in for its answer, and record what was received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::fault::{FaultKind, Faults};

/// A request as the stand-in sees it.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub method: String,
    /// The path exactly as sent, without the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Call {
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// `http://<host>` from the Host header, as servers build their links.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.header("host").unwrap_or_else(|| "127.0.0.1".into()))
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query.as_deref().map(decode_pairs).unwrap_or_default()
    }

    /// The pairs of a form-encoded body.
    pub fn form(&self) -> Vec<(String, String)> {
        decode_pairs(&String::from_utf8_lossy(&self.body))
    }

    /// The access key id and region of a SigV4 `Authorization` header
    /// (`… Credential=AKID/20261125/us-east-1/ecr/aws4_request, …`).
    pub fn signing_scope(&self) -> Option<(String, String)> {
        let authorization = self.header("authorization")?;
        let credential = authorization.split("Credential=").nth(1)?.split(',').next()?;
        let mut parts = credential.split('/');
        let key = parts.next()?.to_string();
        let region = parts.nth(1)?.to_string();
        Some((key, region))
    }

    pub fn signing_access_key(&self) -> Option<String> {
        self.signing_scope().map(|(key, _)| key)
    }

    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// `a=1&b=x%2Fy` → `[("a", "1"), ("b", "x/y")]`.
fn decode_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The stand-in's answer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json; charset=utf-8", serde_json::to_vec(body).unwrap_or_default())
    }

    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply { status, headers: vec![("content-type".into(), content_type.into())], body: body.into() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What one service does with the requests that reach it.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, call: &Call) -> Reply;

    /// The answer for [`FaultKind::Status`], shaped like the service's own errors.
    fn error_reply(&self, call: &Call, status: u16) -> Reply;
}

/// A request as recorded, with the status it got (0 when it got none).
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub call: Call,
    pub status: u16,
    /// When the request reached the stand-in (its head was read).
    pub at: std::time::Instant,
}

/// One request to a JSON API stand-in as received, with the status it was answered with (0: none, for a hang or a
/// dropped connection).
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub body: Option<serde_json::Value>,
    pub status: u16,
}

/// The parts of a running stand-in that its owner keeps.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub faults: Arc<Faults>,
    pub log: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// Binds `addr` (port 0 for any free port) and serves `handler` on the current tokio runtime.
    pub async fn start(addr: SocketAddr, handler: Arc<dyn Handler>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let server =
            Server { addr: listener.local_addr()?, faults: Arc::default(), log: Arc::new(Mutex::new(Vec::new())) };
        let shared = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (handler, shared) = (handler.clone(), shared.clone());
                tokio::spawn(async move { shared.connection(stream, handler).await });
            }
        });
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Every request received so far, oldest first, with its JSON body.
    pub fn http_requests(&self) -> Vec<HttpRequest> {
        self.received()
            .into_iter()
            .map(|r| HttpRequest {
                method: r.call.method.clone(),
                path_and_query: r.call.path_and_query(),
                authorization: r.call.header("authorization"),
                body: serde_json::from_slice(&r.call.body).ok(),
                status: r.status,
            })
            .collect()
    }

    async fn connection(&self, stream: tokio::net::TcpStream, handler: Arc<dyn Handler>) {
        // A handler that wants the connection gone without an answer notifies this.
        let drop_it = Arc::new(Notify::new());
        let service = {
            let (drop_it, shared) = (drop_it.clone(), self.clone());
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (drop_it, shared, handler) = (drop_it.clone(), shared.clone(), handler.clone());
                async move { Ok::<_, Infallible>(shared.answer(request, handler.as_ref(), &drop_it).await) }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = connection => {}
            _ = drop_it.notified() => {}
        }
    }

    async fn answer(
        &self,
        request: http::Request<hyper::body::Incoming>,
        handler: &dyn Handler,
        drop_it: &Notify,
    ) -> Response<Body> {
        let at = std::time::Instant::now();
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let call = Call {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
        };
        let fault = self.faults.take(&call.method, &call.path_and_query());
        let (reply, status) = match fault.clone() {
            None => {
                let reply = handler.handle(&call);
                let status = reply.status;
                (Some(reply), status)
            }
            Some(FaultKind::Raw { status, content_type, body }) => {
                (Some(Reply::new(status, &content_type, body)), status)
            }
            Some(FaultKind::DropQuery(name)) => {
                let mut dropped = call.clone();
                let kept: Vec<String> = call
                    .query
                    .as_deref()
                    .unwrap_or("")
                    .split('&')
                    .filter(|p| !p.is_empty() && p.split('=').next() != Some(name.as_str()))
                    .map(str::to_string)
                    .collect();
                dropped.query = (!kept.is_empty()).then(|| kept.join("&"));
                let reply = handler.handle(&dropped);
                let status = reply.status;
                (Some(reply), status)
            }
            Some(FaultKind::EchoRequest(status)) => {
                let mut echo = format!("{} {}\n", call.method, call.path_and_query());
                for (name, value) in &call.headers {
                    echo.push_str(&format!("{}: {}\n", name, String::from_utf8_lossy(value.as_bytes())));
                }
                echo.push('\n');
                echo.push_str(&String::from_utf8_lossy(&call.body));
                let body = serde_json::json!({
                    "type": "error", "status": status, "code": "ServerError", "message": echo,
                });
                (Some(Reply::json(status, &body)), status)
            }
            Some(FaultKind::EndlessPages) => {
                let mut reply = handler.handle(&call);
                if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&reply.body) {
                    let n = self.log.lock().unwrap().len();
                    let next = format!("{}{}?limit=1000&marker=m{}", call.base_url(), call.path, 1_000_000 + n);
                    value["pagination"] = serde_json::json!({"next": next, "limit": 1000, "partial": true});
                    reply.body = serde_json::to_vec(&value).unwrap_or_default().into();
                }
                let status = reply.status;
                (Some(reply), status)
            }
            Some(FaultKind::HugeBody | FaultKind::EndlessBody) => {
                self.log.lock().unwrap().push(Received { call, status: 200, at });
                let declared = matches!(fault, Some(FaultKind::HugeBody)).then_some(2u64 << 30);
                let mut response = response(Reply::new(200, "application/json", Bytes::new()));
                *response.body_mut() = Body::Flood { declared, sent: 0 };
                return response;
            }
            Some(FaultKind::Status(status)) => (Some(handler.error_reply(&call, status)), status),
            Some(FaultKind::EcrError { type_name, status }) => {
                let body = serde_json::json!({"__type": type_name, "message": format!("{type_name} (stand-in fault)")});
                let reply = Reply::new(status, "application/x-amz-json-1.1", serde_json::to_vec(&body).unwrap());
                (Some(reply), status)
            }
            Some(FaultKind::NotJson) => {
                let page = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>";
                (Some(Reply::new(200, "text/html", page)), 200)
            }
            Some(FaultKind::Truncated) => {
                let reply = handler.handle(&call);
                let status = reply.status;
                self.log.lock().unwrap().push(Received { call, status, at });
                return truncated(reply);
            }
            Some(FaultKind::Hang | FaultKind::DropConnection) => (None, 0),
        };
        self.log.lock().unwrap().push(Received { call, status, at });
        match (reply, fault) {
            (Some(reply), _) => response(reply),
            (None, Some(FaultKind::DropConnection)) => {
                drop_it.notify_one();
                std::future::pending().await
            }
            // Hang: long enough for any client timeout, short enough not to outlive a test run by much.
            (None, _) => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                std::future::pending().await
            }
        }
    }
}

fn response(reply: Reply) -> Response<Body> {
    let mut builder = Response::builder().status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK));
    for (name, value) in &reply.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(name.as_str(), value);
        }
    }
    builder.body(Body::Full(Some(reply.body))).unwrap()
}

/// Headers that promise the whole body, then half of it, then a closed connection.
fn truncated(reply: Reply) -> Response<Body> {
    let declared = reply.body.len() as u64 + 64;
    let half = reply.body.slice(..reply.body.len() / 2);
    let mut response = response(reply);
    *response.body_mut() = Body::Truncated { part: Some(half), declared };
    response
}

/// A response body: whole, cut short with an error that makes hyper close the connection, or a flood of JSON
/// whitespace inside an open list (`declared` bytes, or without end).
pub(crate) enum Body {
    Full(Option<Bytes>),
    Truncated { part: Option<Bytes>, declared: u64 },
    Flood { declared: Option<u64>, sent: u64 },
}

/// One chunk of a flood: the opening of a JSON document, then spaces.
const FLOOD_CHUNK: usize = 64 * 1024;

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        Poll::Ready(match this {
            Body::Full(data) => data.take().map(|d| Ok(Frame::data(d))),
            Body::Truncated { part, .. } => match part.take() {
                Some(d) => Some(Ok(Frame::data(d))),
                None => Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "truncated"))),
            },
            Body::Flood { declared, sent } => {
                let left = declared.map_or(FLOOD_CHUNK as u64, |d| d - *sent);
                if left == 0 {
                    return Poll::Ready(None);
                }
                let size = left.min(FLOOD_CHUNK as u64) as usize;
                let mut chunk = vec![b' '; size];
                if *sent == 0 {
                    let opening = b"{\"data\":[";
                    let n = opening.len().min(size);
                    chunk[..n].copy_from_slice(&opening[..n]);
                }
                *sent += size as u64;
                Some(Ok(Frame::data(Bytes::from(chunk))))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(None) => true,
            Body::Flood { declared: Some(d), sent } => sent == d,
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Truncated { declared, .. } => SizeHint::with_exact(*declared),
            Body::Flood { declared: Some(d), .. } => SizeHint::with_exact(*d),
            Body::Flood { declared: None, .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
