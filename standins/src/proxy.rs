//! A forward proxy on loopback, as corporate networks have, and a test CA for what it needs to sign.
//!
//! [`FakeProxy`] answers `CONNECT host:port` (a tunnel) and absolute-form plain HTTP requests
//! (`GET http://host/path`), optionally only with Basic proxy credentials (`407` otherwise). Host names are routed
//! to loopback addresses it is given, so that a client can use AWS's real host names although nothing resolves
//! them here. Two kinds of proxy:
//! - **plain**: a tunnel is relayed byte for byte; TLS runs between the client and the origin, which for a test
//!   is a [`TlsOrigin`] (TLS with a certificate for the host name, signed by the [`TestCa`]) in front of a
//!   plain-HTTP stand-in;
//! - **inspecting**: the proxy itself ends the client's TLS with a certificate for the host signed by its CA, as
//!   TLS-inspecting corporate proxies do, and relays the plain requests to the stand-in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority made for one test run, which signs server certificates for any host name.
pub struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("a key pair can be generated");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("empty names are valid");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "stand-in proxy CA");
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).expect("the CA certificate can be signed");
        TestCa { pem: certificate.pem(), issuer: rcgen::Issuer::new(params, key) }
    }

    /// The CA's certificate in PEM, for a client to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A TLS server configuration with a certificate for `host`, signed by this CA.
    pub fn server_config(&self, host: &str) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().expect("a key pair can be generated");
        let params = rcgen::CertificateParams::new(vec![host.to_string()]).expect("the host name is valid");
        let certificate = params.signed_by(&key, &self.issuer).expect("the CA signs");
        let chain = vec![certificate.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate and key match");
        Arc::new(config)
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

/// A TLS server for one host name in front of a plain-HTTP stand-in: what a real AWS endpoint is to a client
/// whose plain proxy only relays bytes.
pub struct TlsOrigin {
    addr: SocketAddr,
}

impl TlsOrigin {
    pub async fn start(ca: &TestCa, host: &str, upstream: SocketAddr) -> TlsOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config(host));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let Ok(upstream) = TcpStream::connect(upstream).await else { return };
                    relay(tls, upstream).await;
                });
            }
        });
        TlsOrigin { addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// How the proxy behaves.
#[derive(Clone, Debug, Default)]
pub struct ProxyConfig {
    /// The user name and password a client must give (`Proxy-Authorization: Basic …`); none: anyone may.
    pub credentials: Option<(String, String)>,
    /// End the client's TLS in the proxy (a TLS-inspecting proxy) instead of relaying the tunnel's bytes.
    pub inspect_tls: bool,
}

/// One request the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `CONNECT`, `GET`, `PUT`, …
    pub method: String,
    /// `host:port` for a tunnel, the absolute URL for a plain request.
    pub target: String,
    /// Whether the request carried a `Proxy-Authorization` header.
    pub with_credentials: bool,
    /// The status the proxy answered (200 for an opened tunnel).
    pub status: u16,
}

struct Shared {
    config: ProxyConfig,
    ca: TestCa,
    /// Host name (without port) → where its connections go.
    routes: Mutex<HashMap<String, SocketAddr>>,
    log: Mutex<Vec<ProxyRequest>>,
}

/// A forward proxy on 127.0.0.1; see the module docs.
#[derive(Clone)]
pub struct FakeProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeProxy {
    pub async fn start(config: ProxyConfig) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let shared = Arc::new(Shared {
            config,
            ca: TestCa::new(),
            routes: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = accepting.clone();
                tokio::spawn(async move { shared.serve(stream).await });
            }
        });
        FakeProxy { addr, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's CA: an inspecting proxy signs with it, and so does a [`TlsOrigin`] made from it.
    pub fn ca(&self) -> &TestCa {
        &self.shared.ca
    }

    /// Sends connections for `host` (any port) to `to`.
    pub fn route(&self, host: &str, to: SocketAddr) {
        self.shared.routes.lock().unwrap().insert(host.to_ascii_lowercase(), to);
    }

    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Shared {
    async fn serve(&self, mut client: TcpStream) {
        let Ok(Ok((head, rest))) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await else { return };
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let (method, target) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
        let authorization = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, value)| value.trim().to_string());
        let host = match method {
            "CONNECT" => target.rsplit_once(':').map_or(target, |(host, _)| host).to_string(),
            _ => url_host(target),
        };
        let route = self.routes.lock().unwrap().get(&host.to_ascii_lowercase()).copied();
        let status = match (self.authorized(authorization.as_deref()), route) {
            (false, _) => 407,
            (true, None) => 502,
            (true, Some(_)) => 200,
        };
        self.log.lock().unwrap().push(ProxyRequest {
            method: method.to_string(),
            target: target.to_string(),
            with_credentials: authorization.is_some(),
            status,
        });
        let answer = match status {
            407 => {
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"stand-in\"\r\n\
                    Content-Length: 0\r\nConnection: close\r\n\r\n"
            }
            502 => "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            _ if method == "CONNECT" => "HTTP/1.1 200 Connection established\r\n\r\n",
            _ => "",
        };
        if !answer.is_empty() && client.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        let Some(to) = route.filter(|_| status == 200) else { return };
        let Ok(mut upstream) = TcpStream::connect(to).await else { return };
        match method {
            "CONNECT" if self.config.inspect_tls => {
                let acceptor = tokio_rustls::TlsAcceptor::from(self.ca.server_config(&host));
                let Ok(tls) = acceptor.accept(client).await else { return };
                relay(tls, upstream).await;
            }
            "CONNECT" => relay(client, upstream).await,
            _ => {
                // A plain request: the head as received (absolute form, which HTTP/1.1 servers accept), then
                // both ways.
                if upstream.write_all(&head).await.is_err() || upstream.write_all(&rest).await.is_err() {
                    return;
                }
                relay(client, upstream).await;
            }
        }
    }

    fn authorized(&self, header: Option<&str>) -> bool {
        let Some((user, password)) = &self.config.credentials else { return true };
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        header.and_then(|h| h.strip_prefix("Basic ")).is_some_and(|given| given.trim() == expected)
    }
}

/// The host of an absolute URL (`http://host:port/path`), lower-cased.
fn url_host(target: &str) -> String {
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    authority.rsplit_once(':').map_or(authority, |(host, _)| host).to_ascii_lowercase()
}

/// Reads up to the end of a request head; returns the head and whatever followed it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

/// Copies both ways until either side closes.
async fn relay(a: impl AsyncRead + AsyncWrite + Unpin, b: impl AsyncRead + AsyncWrite + Unpin) {
    let (mut a, mut b) = (a, b);
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}
