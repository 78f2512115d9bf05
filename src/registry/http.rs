//! HTTP plumbing shared by every server the plugin talks to: clients with docker's TLS setup,
//! bounded bodies, redaction for messages, and requests that answer one auth challenge.

use std::path::Path;

use super::auth::{self, Authenticator, Challenge, parse_challenge};
use super::endpoint::{Endpoint, Tls};

/// Errors talking HTTP.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Could not connect or the transfer failed.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// URL (never with credentials).
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with a status the request cannot use (a 5xx, a 403 after sign-in).
    #[error("{reason}")]
    Status {
        /// HTTP status.
        status: u16,
        /// What the server said, with the URL (never with credentials).
        reason: String,
    },
    /// The body is larger than allowed.
    #[error("{url} sent more than {limit} bytes; refusing the response")]
    TooLarge {
        /// URL.
        url: String,
        /// Limit.
        limit: u64,
    },
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// Building the client failed.
    #[error("cannot set up HTTPS: {0}")]
    Setup(String),
}

/// Reads a response body, refusing more than `limit` bytes (endless-data attacks).
pub async fn read_limited(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, HttpError> {
    let url = resp.url().clone();
    let url_text = redact(&url);
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(HttpError::TooLarge {
            url: url_text,
            limit,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError::Unreachable {
        url: url_text.clone(),
        reason: describe(e),
    })? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(HttpError::TooLarge {
                url: url_text,
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why a request failed, with the causes reqwest wraps (a certificate refusal is three levels
/// down) but never the URL, which may carry a query. A certificate problem says how docker
/// users trust a private CA.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    if text.contains("certificate") {
        text.push_str(
            " (to trust a private CA, put it in <docker config dir>/tls/<host:port>/ca.crt)",
        );
    }
    text
}

/// A URL without userinfo or query, for messages.
pub fn redact(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// Makes ring rustls' process-wide crypto provider (once); every TLS client here uses it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Redirects are followed only within one origin, at most 5 times. A registry or notary server
/// has no reason to send a request elsewhere, and a 307/308 would carry a token request's body
/// (with a refresh token in it) to wherever it points; an HTTPS to HTTP downgrade would put it
/// on the wire in clear. The 3xx answer itself is returned instead.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 5 || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Builds an HTTP client for `endpoint` as docker would: CA certificates from
/// `<config>/tls/<host:port>/*.crt` are added, a client certificate `*.cert` + `*.key` from
/// there is presented, and certificate checks are skipped only where the endpoint's TLS
/// policy says so (a loopback registry that is not ACR, docker's `isInsecure`).
pub fn client_for(config_dir: &Path, endpoint: &Endpoint) -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    let bad = |e: crate::timeouts::InvalidTimeout| HttpError::Setup(e.to_string());
    let mut builder = reqwest::Client::builder()
        .connect_timeout(crate::timeouts::connect().map_err(bad)?)
        .timeout(crate::timeouts::request().map_err(bad)?)
        .redirect(same_origin_redirects())
        .user_agent(concat!("docker-trustacr/", env!("CARGO_PKG_VERSION")));
    let dir = config_dir.join("tls").join(endpoint.tls_dir_key());
    let mut extra = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                let pem = std::fs::read(&p)
                    .map_err(|e| HttpError::Setup(format!("{}: {e}", p.display())))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| HttpError::Setup(format!("{}: {e}", p.display())))?;
                extra.extend(certs);
            }
        }
    }
    if !extra.is_empty() {
        builder = builder.tls_certs_merge(extra);
    }
    // A client certificate, as docker reads it: `<name>.cert` with `<name>.key` beside it.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let cert = e.path();
            if cert.extension().is_none_or(|x| x != "cert") {
                continue;
            }
            let key = cert.with_extension("key");
            let (Ok(c), Ok(k)) = (std::fs::read(&cert), std::fs::read(&key)) else {
                return Err(HttpError::Setup(format!(
                    "{} needs its private key {} beside it",
                    cert.display(),
                    key.display()
                )));
            };
            let identity = reqwest::Identity::from_pem(&[c, k].concat())
                .map_err(|e| HttpError::Setup(format!("{}: {e}", cert.display())))?;
            builder = builder.identity(identity);
            break;
        }
    }
    if endpoint.tls() == Tls::SkipVerifyLoopback {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| HttpError::Setup(e.to_string()))
}

/// An HTTP client for one server with token auth.
pub struct AuthedClient {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Answers challenges.
    pub auth: Authenticator,
}

impl AuthedClient {
    /// Sends a request built by `make`, answering one auth challenge for `scope`.
    pub async fn send(
        &self,
        scope: &str,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, HttpError> {
        let mut sent_cached = false;
        let first = {
            let mut req = make(&self.http);
            if let Some(a) = self.auth.cached(scope) {
                req = req.header(reqwest::header::AUTHORIZATION, a.header_value());
                sent_cached = true;
            }
            self.execute(req).await?
        };
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        if sent_cached {
            // Expired early, revoked, or from another server: never offer it again.
            self.auth.forget(scope);
        }
        let Some(challenge) = first
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
        else {
            return Ok(first);
        };
        let scope = match &challenge {
            Challenge::Bearer { scope: Some(s), .. } if scope.is_empty() => s.clone(),
            _ => scope.to_string(),
        };
        let server = first.url().clone();
        let authz = self
            .auth
            .answer(&self.http, &challenge, &scope, &server)
            .await?;
        let req = make(&self.http).header(reqwest::header::AUTHORIZATION, authz.header_value());
        self.execute(req).await
    }

    async fn execute(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, HttpError> {
        let unreachable = |e: reqwest::Error| HttpError::Unreachable {
            url: e.url().map(redact).unwrap_or_default(),
            reason: describe(e),
        };
        let request = req.build().map_err(unreachable)?;
        // One line per request (never headers or query), so `-D` shows what was fetched.
        tracing::debug!("HTTP {} {}", request.method(), redact(request.url()));
        self.http.execute(request).await.map_err(unreachable)
    }
}
