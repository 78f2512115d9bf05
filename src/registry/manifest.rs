//! The registry calls the signer needs: a manifest's digest and size, and which scheme a
//! loopback registry answers on.

use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::http::{AuthedClient, HttpError, read_limited};

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

/// Gets the manifest of `repo:tag` at `registry` and returns its sha256 and size, computed
/// from the bytes themselves.
pub async fn manifest_ref(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    tag: &str,
) -> Result<ManifestRef, ManifestError> {
    let url = registry.url(&format!("v2/{repo}/manifests/{tag}"));
    let scope = format!("repository:{repo}:pull");
    let resp = client
        .send(&scope, |http| {
            http.get(url.clone())
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

/// The registry endpoint to use: `registry` itself, or, for a loopback registry that does not
/// speak TLS (and is not ACR), the same host over plain HTTP, as docker does for insecure
/// registries.
pub async fn reachable_registry(http: &reqwest::Client, registry: &Endpoint) -> Endpoint {
    let Some(plain) = registry.plain_http_fallback() else {
        return registry.clone();
    };
    match http.get(registry.url("v2/")).send().await {
        Ok(_) => registry.clone(),
        Err(_) => plain,
    }
}
