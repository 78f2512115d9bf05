//! The Notary client: where trust data lives (server URL, TLS, auth), updating and verifying it
//! ([`client`]), the local cache ([`cache`]), and publishing changes ([`publish`]).

pub mod cache;
pub mod client;
pub mod publish;
pub mod rotate;
pub mod upload;

use crate::registry::endpoint::Endpoint;
use crate::registry::{AuthedClient, HttpError, read_limited, redact};

/// `DOCKER_CONTENT_TRUST_SERVER`, as docker reads it.
pub const ENV_TRUST_SERVER: &str = "DOCKER_CONTENT_TRUST_SERVER";

/// Error bodies from the server are read up to this size, as Notary does.
const MAX_ERROR_BODY: u64 = 1024;

/// One repository on a notary server, fetched over HTTPS with token auth.
pub struct NotaryServer {
    /// Where it is (`Endpoint::notary`: `DOCKER_CONTENT_TRUST_SERVER` or the registry).
    pub base: Endpoint,
    /// GUN.
    pub gun: String,
    /// HTTP with auth.
    pub client: AuthedClient,
}

impl NotaryServer {
    /// `<base>/v2/<gun>/_trust/tuf/<name>`
    pub fn url(&self, name: &str) -> String {
        self.base
            .url(&format!("v2/{}/_trust/tuf/{}", self.gun, name))
            .to_string()
    }

    /// `repository:<gun>:pull`
    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.gun)
    }

    /// `repository:<gun>:pull,push`
    pub fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.gun)
    }

    /// Describes a non-success response, with the server's error body (bounded).
    pub async fn describe_failure(resp: reqwest::Response) -> String {
        let status = resp.status();
        let url = redact(resp.url());
        let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )
    }
}

impl client::Fetch for NotaryServer {
    async fn fetch(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, HttpError> {
        let url = self.url(name);
        let resp = self
            .client
            .send(&self.pull_scope(), |http| http.get(&url))
            .await?;
        match resp.status().as_u16() {
            200 => Ok(Some(read_limited(resp, limit).await?)),
            404 => Ok(None),
            status => Err(HttpError::Status {
                status,
                reason: Self::describe_failure(resp).await,
            }),
        }
    }
}
