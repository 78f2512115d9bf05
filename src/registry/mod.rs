//! HTTP to registries and notary servers: TLS as docker sets it up, token auth, bounded bodies,
//! and the one registry call the signer needs (a manifest's digest and size).

pub mod auth;

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use auth::{Authenticator, Challenge, parse_challenge};

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
        reason: e.without_url().to_string(),
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

/// A URL without userinfo or query, for messages.
pub fn redact(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// Whether docker treats this registry host as insecure: loopback addresses and `localhost`.
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = host_port
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host_port, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Makes ring rustls' process-wide crypto provider (once); every TLS client here uses it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds an HTTP client for `server_host` (host:port of the URL) as docker would: CA
/// certificates from `<config>/tls/<host:port>/*.crt` are added, a client certificate
/// `*.cert` + `*.key` from there is presented, and when the *registry* is on a
/// loopback address, certificate checks are skipped as docker's `isInsecure` does.
pub fn client_for(
    config_dir: &Path,
    server_host: &str,
    insecure: bool,
) -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("docker-trustacr/", env!("CARGO_PKG_VERSION")));
    let dir = config_dir.join("tls").join(server_host);
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
    if insecure {
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
        let first = {
            let mut req = make(&self.http);
            if let Some(a) = self.auth.cached(scope) {
                req = req.header(reqwest::header::AUTHORIZATION, a.header_value());
            }
            self.execute(req).await?
        };
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first);
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
        let authz = self.auth.answer(&self.http, &challenge, &scope).await?;
        let req = make(&self.http).header(reqwest::header::AUTHORIZATION, authz.header_value());
        self.execute(req).await
    }

    async fn execute(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, HttpError> {
        let unreachable = |e: reqwest::Error| HttpError::Unreachable {
            url: e.url().map(redact).unwrap_or_default(),
            reason: e.without_url().to_string(),
        };
        let request = req.build().map_err(unreachable)?;
        // One line per request (never headers or query), so `-D` shows what was fetched.
        tracing::debug!("HTTP {} {}", request.method(), redact(request.url()));
        self.http.execute(request).await.map_err(unreachable)
    }
}

/// Manifest media types a tag may point to; docker signs whatever the tag resolves to.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused (the registry's own limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// Digest and size of what a tag points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// `sha256:<hex>`
    pub digest: String,
    /// Raw sha256 bytes.
    pub sha256: [u8; 32],
    /// Manifest length in bytes.
    pub size: u64,
}

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The tag does not exist.
    #[error(
        "{reference}: the registry has no such tag; push the image first (docker trustacr push {reference})"
    )]
    NotFound {
        /// image:tag
        reference: String,
    },
    /// Any other status.
    #[error("{reference}: the registry answered {status} for the manifest")]
    Status {
        /// image:tag
        reference: String,
        /// HTTP status.
        status: u16,
    },
    /// The registry's digest header disagrees with the bytes.
    #[error(
        "{reference}: the registry's Docker-Content-Digest {header} does not match the manifest bytes ({computed})"
    )]
    DigestMismatch {
        /// image:tag
        reference: String,
        /// Header value.
        header: String,
        /// Computed.
        computed: String,
    },
}

/// Gets the manifest of `repo:tag` at `registry_url` (e.g. `https://myreg.azurecr.io`) and
/// returns its sha256 and size, computed from the bytes themselves.
pub async fn manifest_ref(
    client: &AuthedClient,
    registry_url: &str,
    repo: &str,
    tag: &str,
) -> Result<ManifestRef, ManifestError> {
    let url = format!("{registry_url}/v2/{repo}/manifests/{tag}");
    let scope = format!("repository:{repo}:pull");
    let resp = client
        .send(&scope, |http| {
            http.get(&url)
                .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
        })
        .await?;
    let reference = format!("{repo}:{tag}");
    match resp.status().as_u16() {
        200 => {}
        404 => return Err(ManifestError::NotFound { reference }),
        s => {
            return Err(ManifestError::Status {
                reference,
                status: s,
            });
        }
    }
    let header = resp
        .headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(resp, MAX_MANIFEST).await?;
    let sha256: [u8; 32] = Sha256::digest(&body).into();
    let digest = format!("sha256:{}", hex::encode(sha256));
    if let Some(h) = header
        && h.starts_with("sha256:")
        && h != digest
    {
        return Err(ManifestError::DigestMismatch {
            reference,
            header: h,
            computed: digest,
        });
    }
    Ok(ManifestRef {
        digest,
        sha256,
        size: body.len() as u64,
    })
}

/// Picks `https://host` or, for loopback registries that do not speak TLS, `http://host`, as
/// docker does for insecure registries.
pub async fn registry_base_url(http: &reqwest::Client, host: &str) -> String {
    let https = format!("https://{host}");
    if !is_loopback_host(host) {
        return https;
    }
    match http.get(format!("{https}/v2/")).send().await {
        Ok(_) => https,
        Err(_) => format!("http://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_insecure_like_docker() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("127.8.9.1"));
        assert!(is_loopback_host("localhost:5000"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("myreg.azurecr.io"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
    }
}
