//! A tampering TLS proxy in front of the stack's notary-server, for attacks on the wire.
//!
//! ```ignore
//! let proxy = Tamper::start();                       // https://127.0.0.1:PORT → notary-server
//! env.set("DOCKER_CONTENT_TRUST_SERVER", proxy.url()); // a loopback registry: TLS not verified
//! proxy.on("GET", "/targets/releases.", Action::Status(404));
//! proxy.once("GET", "timestamp.json", Action::Delay(Duration::from_secs(5)));
//! proxy.when(|method, path| method == "POST" && path.ends_with("/_trust/tuf/"), Action::Reset);
//! … run the plugin …
//! assert!(proxy.requests().iter().any(|r| r.path.contains("releases") && r.status == Some(404)));
//! proxy.clear();                                    // back to passing everything
//! ```
//!
//! - Rules are matched on the method (`"*"` for any) and a substring of the path (with its
//!   query), or on a predicate over both. The first matching rule, in the order they were added,
//!   decides; a request no rule matches is passed through. [`Tamper::once`] rules apply to one
//!   request and are then spent. Rules can be added or cleared while the proxy runs.
//! - [`Action`]s: pass, answer a status, replace the body, an endless chunked body, a
//!   Content-Length above any limit, a Content-Length that disagrees with the body, a delay
//!   before forwarding, a connection reset.
//! - Every request is recorded (method, path, the status answered or `None` when no status line
//!   was sent) in [`Tamper::requests`].
//! - One request per connection (`Connection: close`), so a rule never hits a reused
//!   connection by surprise. The certificate is a fresh self-signed one from rcgen: the plugin
//!   does not verify the notary server of a loopback registry, as docker does not.
//! - Dropping the proxy stops it: its thread and every connection it holds end.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::harness::stack;

/// What the proxy does with a matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward to notary-server and return its answer unchanged.
    Pass,
    /// Answer this status with a small JSON error body, without asking notary-server.
    Status(u16),
    /// Answer 200 with these bytes, without asking notary-server.
    Body(Vec<u8>),
    /// Answer 200 with a chunked body that never ends.
    Endless,
    /// Answer 200 with `Content-Length: n`, then stream filler bytes until the client stops
    /// reading (or `n` bytes were sent).
    ClaimLength(u64),
    /// Forward, but state a Content-Length `delta` bytes off the real body, then close.
    WrongLength(i64),
    /// Wait, then forward.
    Delay(Duration),
    /// Reset the connection (TCP RST) after reading the request.
    Reset,
    /// Forward, then reset the connection instead of answering: the server acted on the
    /// request, the client never learns it.
    ResetAfterForward,
}

/// A request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path with query, as sent.
    pub path: String,
    /// The status answered, `None` for a reset (or a connection that ended before the answer).
    pub status: Option<u16>,
}

type Predicate = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

struct Rule {
    matches: Predicate,
    action: Action,
    once: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// A running proxy; see the module documentation.
pub struct Tamper {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tamper {
    /// Starts a proxy to the stack's notary-server.
    pub fn start() -> Tamper {
        let s = stack();
        let ca = std::fs::read(&s.notary_ca).expect("read the stack's notary CA");
        Tamper::start_to(&s.notary_url, &ca)
    }

    /// Starts a proxy to `upstream` (`https://host:port`), whose certificate `ca_pem` issued.
    pub fn start_to(upstream: &str, ca_pem: &[u8]) -> Tamper {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca_pem).expect("CA PEM"))
            .build()
            .expect("upstream client");
        let acceptor = TlsAcceptor::from(Arc::new(server_config()));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        std_listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = std_listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ctx = Arc::new(Ctx {
            client,
            upstream: upstream.trim_end_matches('/').to_string(),
            state: state.clone(),
        });
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let (acceptor, ctx) = (acceptor.clone(), ctx.clone());
                        tokio::spawn(async move { serve(acceptor, tcp, ctx).await });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here cancels every connection task (endless bodies included).
        });
        Tamper {
            url: format!("https://{addr}"),
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`, for `DOCKER_CONTENT_TRUST_SERVER`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies `action` to every `method` (`"*"` for any) request whose path contains `path_part`.
    pub fn on(&self, method: &str, path_part: &str, action: Action) {
        self.add(matcher(method, path_part), action, false);
    }

    /// As [`Tamper::on`], for the next matching request only.
    pub fn once(&self, method: &str, path_part: &str, action: Action) {
        self.add(matcher(method, path_part), action, true);
    }

    /// Applies `action` to every request for which `pred(method, path)` holds.
    pub fn when(&self, pred: impl Fn(&str, &str) -> bool + Send + Sync + 'static, action: Action) {
        self.add(Arc::new(pred), action, false);
    }

    /// Removes every rule: from now on everything passes.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// The requests seen so far, in order of their answers.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Forgets the requests seen so far.
    pub fn forget_requests(&self) {
        self.state.lock().unwrap().seen.clear();
    }

    fn add(&self, matches: Predicate, action: Action, once: bool) {
        self.state.lock().unwrap().rules.push(Rule {
            matches,
            action,
            once,
        });
    }
}

impl Drop for Tamper {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn matcher(method: &str, path_part: &str) -> Predicate {
    let (method, part) = (method.to_string(), path_part.to_string());
    Arc::new(move |m: &str, p: &str| (method == "*" || method == m) && p.contains(&part))
}

/// A self-signed certificate for 127.0.0.1 and localhost, from rcgen over a fresh P-256 key.
fn server_config() -> rustls::ServerConfig {
    use p256::pkcs8::EncodePrivateKey;

    struct Signer(p256::ecdsa::SigningKey, Vec<u8>);
    impl rcgen::PublicKeyData for Signer {
        fn der_bytes(&self) -> &[u8] {
            &self.1
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_ECDSA_P256_SHA256
        }
    }
    impl rcgen::SigningKey for Signer {
        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
            use p256::ecdsa::signature::Signer as _;
            let sig: p256::ecdsa::DerSignature = self.0.sign(msg);
            Ok(sig.as_bytes().to_vec())
        }
    }

    let sk = loop {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        if let Ok(sk) = p256::ecdsa::SigningKey::from_slice(&seed) {
            break sk;
        }
    };
    let point = sk.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let key_der = sk.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let signer = Signer(sk, point);
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    // Without the ring feature rcgen cannot make up a serial itself.
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).unwrap();
    serial[0] &= 0x7f;
    params.serial_number = Some(serial.to_vec().into());
    let cert = params.self_signed(&signer).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
        )
        .unwrap()
}

struct Ctx {
    client: reqwest::Client,
    upstream: String,
    state: Arc<Mutex<State>>,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

async fn serve(acceptor: TlsAcceptor, tcp: TcpStream, ctx: Arc<Ctx>) {
    let Ok(Ok(mut tls)) = tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await
    else {
        return;
    };
    let Some(req) = read_request(&mut tls).await else {
        return;
    };
    let action = {
        let mut st = ctx.state.lock().unwrap();
        let hit = st
            .rules
            .iter()
            .position(|r| (r.matches)(&req.method, &req.path));
        match hit {
            Some(i) if st.rules[i].once => st.rules.remove(i).action,
            Some(i) => st.rules[i].action.clone(),
            None => Action::Pass,
        }
    };
    let record = |status: Option<u16>| {
        ctx.state.lock().unwrap().seen.push(Seen {
            method: req.method.clone(),
            path: req.path.clone(),
            status,
        });
    };
    match action {
        Action::Pass => {
            let (status, headers, body) = forward(&ctx, &req).await;
            record(Some(status));
            let _ = respond(&mut tls, status, &headers, &body, body.len() as u64).await;
        }
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            let (status, headers, body) = forward(&ctx, &req).await;
            record(Some(status));
            let _ = respond(&mut tls, status, &headers, &body, body.len() as u64).await;
        }
        Action::WrongLength(delta) => {
            let (status, headers, body) = forward(&ctx, &req).await;
            record(Some(status));
            let claimed = (body.len() as i64 + delta).max(0) as u64;
            let shown = &body[..body.len().min(claimed as usize)];
            let _ = respond(&mut tls, status, &headers, shown, claimed).await;
        }
        Action::Status(code) => {
            record(Some(code));
            let body = format!(
                r#"{{"errors":[{{"code":"TAMPERED","message":"status {code} from the tampering proxy"}}]}}"#
            );
            let json = [("Content-Type".to_string(), "application/json".to_string())];
            let _ = respond(&mut tls, code, &json, body.as_bytes(), body.len() as u64).await;
        }
        Action::Body(bytes) => {
            record(Some(200));
            let _ = respond(&mut tls, 200, &[], &bytes, bytes.len() as u64).await;
        }
        Action::Endless => {
            record(Some(200));
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if tls.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = [b' '; 64 * 1024];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            while tls.write_all(&framed).await.is_ok() {}
        }
        Action::ClaimLength(n) => {
            record(Some(200));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\
                 Connection: close\r\n\r\n"
            );
            if tls.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = [b' '; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len() as u64) as usize;
                if tls.write_all(&chunk[..k]).await.is_err() {
                    return;
                }
                left -= k as u64;
            }
            let _ = tls.shutdown().await;
        }
        Action::ResetAfterForward => {
            let _ = forward(&ctx, &req).await;
            record(None);
            let (tcp, _) = tls.into_inner();
            let _ = socket_linger_zero(&tcp);
            drop(tcp);
        }
        Action::Reset => {
            record(None);
            let (tcp, _) = tls.into_inner();
            // Linger 0: closing sends RST instead of FIN.
            let _ = socket_linger_zero(&tcp);
            drop(tcp);
        }
    }
}

#[allow(deprecated)]
fn socket_linger_zero(tcp: &TcpStream) -> std::io::Result<()> {
    tcp.set_linger(Some(Duration::ZERO))
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Request> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_string();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(s, rest).await?
    } else {
        let len: usize = header("content-length").map_or(Some(0), |v| v.parse().ok())?;
        if len > MAX_BODY {
            return None;
        }
        while rest.len() < len {
            let n = s.read(&mut tmp).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    };
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn read_chunked<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    mut buf: Vec<u8>,
) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut tmp = [0u8; 8192];
    let mut fill = async |buf: &mut Vec<u8>| -> Option<()> {
        let n = s.read(&mut tmp).await.ok()?;
        (n > 0).then(|| buf.extend_from_slice(&tmp[..n]))
    };
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf, b"\r\n") {
                break i;
            }
            fill(&mut buf).await?;
        };
        let size_text = std::str::from_utf8(&buf[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            while find(&buf, b"\r\n").is_none() {
                fill(&mut buf).await?;
            }
            return Some(body);
        }
        if body.len() + size > MAX_BODY {
            return None;
        }
        while buf.len() < size + 2 {
            fill(&mut buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const HOP_BY_HOP: [&str; 6] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
];

/// Asks notary-server; a failure to reach it is answered as 502.
async fn forward(ctx: &Ctx, req: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
        return (400, Vec::new(), Vec::new());
    };
    let mut out = ctx
        .client
        .request(method, format!("{}{}", ctx.upstream, req.path));
    for (k, v) in &req.headers {
        if !HOP_BY_HOP.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            out = out.header(k, v);
        }
    }
    let resp = match out.body(req.body.clone()).send().await {
        Ok(r) => r,
        Err(e) => return (502, Vec::new(), e.to_string().into_bytes()),
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| {
            !HOP_BY_HOP
                .iter()
                .any(|h| k.as_str().eq_ignore_ascii_case(h))
        })
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, headers, body)
}

async fn respond<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    content_length: u64,
) -> std::io::Result<()> {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    ));
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await?;
    s.shutdown().await
}
