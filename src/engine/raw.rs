//! A push sent to the engine's API directly, over its unix socket or plain TCP, so that the
//! JSON stream is read whole ([`super::stream`]): bollard's push type drops each message's
//! layer `id`. Everything else goes through bollard.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::progress::Progress;
use super::stream::{Decoder, Message};
use super::{Pushed, parse_push_digest};

/// Where the engine listens.
#[derive(Debug, Clone)]
pub enum Target {
    /// A unix socket.
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

/// An error body longer than this is cut: it is only shown.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Pushes `name:tag`, showing each message on `progress`; returns the digest the engine
/// reported, or the engine's (or the connection's) error message.
pub async fn push(
    target: &Target,
    timeout: Duration,
    name: &str,
    tag: &str,
    credentials: Option<&DockerCredentials>,
    progress: &mut Progress,
) -> Result<Option<Pushed>, String> {
    let path = format!(
        "/images/{name}/push?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("tag", tag)
            .finish()
    );
    // The engine reads X-Registry-Auth as base64url JSON; `{}` is anonymous, as bollard sends.
    let auth = match credentials {
        Some(c) => serde_json::to_vec(c).map_err(|e| e.to_string())?,
        None => b"{}".to_vec(),
    };
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, "docker")
        .header(
            "X-Registry-Auth",
            base64::engine::general_purpose::URL_SAFE.encode(auth),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let connected = async {
        match target {
            Target::Unix(path) => send(tokio::net::UnixStream::connect(path).await?, request).await,
            Target::Tcp(addr) => send(tokio::net::TcpStream::connect(addr).await?, request).await,
        }
    };
    // Bounds an engine that does not answer; the stream itself may take as long as the push.
    let (response, _conn) = tokio::time::timeout(timeout, connected)
        .await
        .map_err(|_| format!("the engine did not answer within {}s", timeout.as_secs()))?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let mut text = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Some(data) = frame.data_ref() {
                text.extend_from_slice(data);
            }
            if text.len() > MAX_ERROR_BODY {
                text.truncate(MAX_ERROR_BODY);
                break;
            }
        }
        return Err(engine_error(status, &text));
    }
    let mut decoder = Decoder::default();
    let mut pushed = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the engine's stream broke off: {e}"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        for m in decoder.feed(data).map_err(|e| e.to_string())? {
            show(&m, tag, &mut pushed, progress)?;
        }
    }
    if let Some(m) = decoder.finish().map_err(|e| e.to_string())? {
        show(&m, tag, &mut pushed, progress)?;
    }
    Ok(pushed)
}

/// Shows one message, and keeps the digest when it is the one for `tag`.
fn show(
    m: &Message,
    tag: &str,
    pushed: &mut Option<Pushed>,
    progress: &mut Progress,
) -> Result<(), String> {
    if let Some(e) = m.failure() {
        return Err(e);
    }
    if let Some(status) = m.status.as_deref() {
        if let Some(p) = parse_push_digest(status, tag) {
            *pushed = Some(p);
        }
        let (current, total) = m.bytes();
        progress.update(m.id.as_deref(), status, current, total);
    }
    Ok(())
}

/// The engine's `{"message": …}`, or the status and the text.
fn engine_error(status: hyper::StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => b.message,
        Err(_) => format!("{status}: {}", String::from_utf8_lossy(body).trim()),
    }
}

/// Stops the connection task when the push is over or dropped (cancelled).
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send<S>(
    stream: S,
    request: hyper::Request<Empty<Bytes>>,
) -> std::io::Result<(hyper::Response<hyper::body::Incoming>, Connection)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    let conn = Connection(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    Ok((response, conn))
}
