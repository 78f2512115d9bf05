//! The uploader: one multipart POST of a [`SignedUpdate`] to notary-server, which applies it
//! atomically or not at all, and notary-server's typed error body
//! (`{"errors":[{"code":"VERSION","message":…,"detail":…}]}`, docker distribution's errcode
//! envelope) read into [`ServerError`]s so callers branch on codes, not on text.

use serde::Deserialize;

use super::NotaryServer;
use crate::registry::{HttpError, read_limited, redact};
use crate::tuf::editor::{ServerKeys, SignedUpdate};
use crate::tuf::keys::PublicKey;

/// Error bodies are read up to this size: enough for notary's validation details, bounded
/// against a hostile server.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// A server key document (`timestamp.key`) is a few hundred bytes.
const MAX_KEY_BODY: u64 = 256 * 1024;

/// One entry of notary-server's error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerError {
    /// The errcode value: `VERSION`, `INVALID_UPDATE`, `MALFORMED_UPLOAD`, …
    pub code: String,
    /// The generic message for the code.
    #[serde(default)]
    pub message: String,
    /// Details (for `INVALID_UPDATE`, the validation error, e.g. `ErrBadRoot`).
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope {
    errors: Vec<ServerError>,
}

/// notary-server's errcodes this client acts on.
pub mod code {
    /// A newer version is already stored: someone else published in between.
    pub const OLD_VERSION: &str = "VERSION";
    /// The upload parsed but failed validation (a root that does not match the stored one is
    /// `ErrBadRoot` inside it).
    pub const INVALID_UPDATE: &str = "INVALID_UPDATE";
}

/// The server refused an upload; nothing of it was applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{url} answered {status}: {}", describe(errors, raw))]
pub struct Refusal {
    /// The URL (without credentials).
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// The typed errors, when the body was notary's envelope.
    pub errors: Vec<ServerError>,
    /// The body as text when it was not (bounded, for the message).
    pub raw: String,
}

fn describe(errors: &[ServerError], raw: &str) -> String {
    if errors.is_empty() {
        return raw.trim().to_string();
    }
    errors
        .iter()
        .map(|e| {
            let detail = match &e.detail {
                Some(serde_json::Value::String(s)) => format!(" ({s})"),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => format!(" ({other})"),
            };
            format!("{} {}{detail}", e.code, e.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Refusal {
    /// Whether the server sent error `code`.
    pub fn has(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    async fn read(resp: reqwest::Response) -> Result<Self, HttpError> {
        let status = resp.status().as_u16();
        let url = redact(resp.url());
        let body = read_limited(resp, MAX_ERROR_BODY).await?;
        Ok(Refusal::parse(url, status, &body))
    }

    /// Reads an error answer: notary's envelope into typed errors, anything else kept as
    /// (bounded) text for the message.
    pub fn parse(url: String, status: u16, body: &[u8]) -> Self {
        let errors = serde_json::from_slice::<Envelope>(body)
            .map(|e| e.errors)
            .unwrap_or_default();
        let raw = if errors.is_empty() {
            String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned()
        } else {
            String::new()
        };
        Refusal {
            url,
            status,
            errors,
            raw,
        }
    }
}

/// What the server did with an upload.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx: the server applied it and now serves it.
    Accepted,
    /// Refused; nothing was applied.
    Refused(Refusal),
}

fn multipart(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut rnd = [0u8; 16];
    let _ = getrandom::fill(&mut rnd);
    let boundary = hex::encode(rnd);
    let mut body = Vec::new();
    for (role, bytes) in files {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POSTs `update` to `server`. An `Err` is a transport failure: the upload may or may not have
/// reached the server.
pub async fn upload(server: &NotaryServer, update: &SignedUpdate) -> Result<Outcome, HttpError> {
    upload_files(server, update.files()).await
}

/// POSTs signed `(role, bytes)` files in one request (a [`SignedUpdate`]'s, or a key
/// rotation's). An `Err` is a transport failure, as for [`upload`].
pub async fn upload_files(
    server: &NotaryServer,
    files: &[(String, Vec<u8>)],
) -> Result<Outcome, HttpError> {
    let (content_type, body) = multipart(files);
    let url = server.url("");
    let resp = server
        .client
        .send(&server.push_scope(), |http| {
            http.post(&url)
                .header(reqwest::header::CONTENT_TYPE, &content_type)
                .body(body.clone())
        })
        .await?;
    if resp.status().is_success() {
        return Ok(Outcome::Accepted);
    }
    Ok(Outcome::Refused(Refusal::read(resp).await?))
}

/// Errors fetching the server's keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyFetchError {
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with an error.
    #[error("the notary server did not give its {role} key: {refusal}")]
    Refused {
        /// `timestamp` or `snapshot`.
        role: &'static str,
        /// What it answered.
        refusal: Refusal,
    },
    /// The answer is not a key.
    #[error("the notary server's {role} key is not a valid key document: {reason}")]
    Invalid {
        /// `timestamp` or `snapshot`.
        role: &'static str,
        /// The parse error (a category and position; the body is not echoed).
        reason: String,
    },
}

async fn server_key(server: &NotaryServer, role: &'static str) -> Result<PublicKey, KeyFetchError> {
    let url = server.url(&format!("{role}.key"));
    let resp = server
        .client
        .send(&server.push_scope(), |http| http.get(&url))
        .await?;
    key_answer(resp, role).await
}

/// Reads a server key document, or the server's refusal.
async fn key_answer(
    resp: reqwest::Response,
    role: &'static str,
) -> Result<PublicKey, KeyFetchError> {
    if !resp.status().is_success() {
        return Err(KeyFetchError::Refused {
            role,
            refusal: Refusal::read(resp).await?,
        });
    }
    let body = read_limited(resp, MAX_KEY_BODY).await?;
    serde_json::from_slice(&body).map_err(|e| KeyFetchError::Invalid {
        role,
        reason: format!(
            "{:?} at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}

/// Asks the server for a new `role` key (`snapshot`), which it holds as pending until a root
/// that lists it is uploaded (`notary key rotate GUN snapshot -r`).
pub async fn rotate_server_key(
    server: &NotaryServer,
    role: &'static str,
) -> Result<PublicKey, KeyFetchError> {
    let url = server.url(&format!("{role}.key"));
    // notary-server asks for the `*` action on the repository to rotate a server key.
    let scope = format!("repository:{}:*", server.gun);
    let resp = server.client.send(&scope, |http| http.post(&url)).await?;
    key_answer(resp, role).await
}

/// The timestamp and snapshot keys the server holds for the repository (it creates them on the
/// first request, as notary-server does for a new GUN).
pub async fn server_keys(server: &NotaryServer) -> Result<ServerKeys, KeyFetchError> {
    Ok(ServerKeys {
        timestamp: server_key(server, "timestamp").await?,
        snapshot: server_key(server, "snapshot").await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notary_error_envelope_is_read_into_codes() {
        // What notary-server answered a second initialisation of one repository.
        let body = br#"{"errors":[{"code":"INVALID_UPDATE","message":"Update sent by the client is invalid.","detail":{"Name":"ErrBadRoot","Error":{"Msg":"could not rotate trust to a new trusted root"}}}]}"#;
        let r = Refusal::parse("https://n/v2/g/_trust/tuf/".into(), 400, body);
        assert!(r.has(code::INVALID_UPDATE));
        assert!(!r.has(code::OLD_VERSION));
        assert!(r.to_string().contains("INVALID_UPDATE") && r.to_string().contains("ErrBadRoot"));
        let body = br#"{"errors":[{"code":"VERSION","message":"A newer version of metadata is already available."}]}"#;
        assert!(Refusal::parse(String::new(), 400, body).has(code::OLD_VERSION));
    }

    #[test]
    fn a_code_mentioned_in_text_is_not_a_code() {
        // The old check searched the body for "code":"VERSION"; a proxy's or a detail's text
        // that merely mentions it is not notary's conflict answer.
        let body = br#"<html>upstream said {"code":"VERSION"}</html>"#;
        let r = Refusal::parse("https://n/".into(), 400, body);
        assert!(!r.has(code::OLD_VERSION));
        assert!(r.errors.is_empty() && r.raw.contains("upstream said"));
        let body = br#"{"errors":[{"code":"INVALID_UPDATE","message":"m","detail":"\"code\":\"VERSION\""}]}"#;
        assert!(!Refusal::parse(String::new(), 400, body).has(code::OLD_VERSION));
    }
}
