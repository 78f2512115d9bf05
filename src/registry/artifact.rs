//! Registry writes for Notary Project signatures: resolving the manifest to sign (its media
//! type, digest and size as the registry serves it, the digest recomputed from the bytes),
//! pushing blobs and the signature manifest, and keeping the `sha256-<hex>` tag-schema index
//! when the registry has no referrers API (distribution 2.8).
//!
//! The index is read, extended and written back: entries it already has (other signers'
//! signatures) are kept byte for byte. An index that is too large or is not an index is
//! refused, never overwritten.

use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::http::{AuthedClient, HttpError, read_limited};
use super::manifest::{MANIFEST_ACCEPT, MAX_MANIFEST};
pub use crate::notation::is_referrers_tag;
use crate::notation::sign::Descriptor;
use crate::notation::{
    ARTIFACT_TYPE_SIGNATURE as SIGNATURE_ARTIFACT_TYPE, MEDIA_TYPE_OCI_INDEX as OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
};

/// The manifest types that can be signed.
const SIGNABLE: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Errors writing signature artifacts.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The registry answered a request with an unexpected status.
    #[error("{step} for {reference}: the registry answered {status}{}", detail_note(.detail))]
    Status {
        /// What was being done.
        step: &'static str,
        /// repo:tag or repo@digest.
        reference: String,
        /// HTTP status.
        status: u16,
        /// The registry's error text, shortened.
        detail: String,
    },
    /// The manifest served does not match what was asked for or what its headers say.
    #[error("{reference}: the registry's manifest cannot be signed: {reason}. Nothing was signed")]
    Mismatch {
        /// repo:tag or repo@digest.
        reference: String,
        /// What disagrees.
        reason: String,
    },
    /// The tag-schema index is not something that can be extended safely.
    #[error(
        "{reference}: the referrers index tag holds {reason}; it was left unchanged and the signature is pushed but not listed. Inspect or remove that tag, then sign again"
    )]
    BadIndex {
        /// repo:sha256-<hex>
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry sent an upload location on another origin.
    #[error(
        "{reference}: the registry asked to upload to {location}, which is not on the registry's own host; refused (credentials would go there)"
    )]
    ForeignLocation {
        /// repo
        reference: String,
        /// The Location header (redacted).
        location: String,
    },
}

fn detail_note(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

async fn status_error(
    step: &'static str,
    reference: String,
    resp: reqwest::Response,
) -> ArtifactError {
    let status = resp.status().as_u16();
    let body = read_limited(resp, 4096).await.unwrap_or_default();
    let detail: String = String::from_utf8_lossy(&body)
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    ArtifactError::Status {
        step,
        reference,
        status,
        detail,
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A manifest as the registry serves it: the descriptor to sign and the bytes.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// mediaType from Content-Type, digest and size of the bytes.
    pub descriptor: Descriptor,
    /// The manifest bytes.
    pub body: Vec<u8>,
}

/// GETs `repo`'s manifest `reference` (a tag or `sha256:` digest) and returns the descriptor to
/// sign. The digest is computed from the bytes; it must equal the registry's
/// `Docker-Content-Digest` and, for a digest reference, the digest asked for. The media type is
/// the `Content-Type`, which must be a manifest type and agree with the body's own `mediaType`.
pub async fn resolve(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    reference: &str,
) -> Result<Resolved, ArtifactError> {
    let shown = if reference.starts_with("sha256:") {
        format!("{repo}@{reference}")
    } else {
        format!("{repo}:{reference}")
    };
    let url = registry.url(&format!("v2/{repo}/manifests/{reference}"));
    let resp = client
        .send(&pull_scope(repo), |http| {
            http.get(url.clone())
                .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
        })
        .await?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(status_error("reading the manifest", shown, resp).await);
    }
    let mismatch = |reason: String| ArtifactError::Mismatch {
        reference: shown.clone(),
        reason,
    };
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_digest = header("Docker-Content-Digest");
    let media_type = header("Content-Type")
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    let body = read_limited(resp, MAX_MANIFEST).await?;
    if !SIGNABLE.contains(&media_type.as_str()) {
        return Err(mismatch(format!(
            "its Content-Type {media_type:?} is not a manifest type"
        )));
    }
    let digest = sha256_digest(&body);
    if let Some(h) = content_digest
        && h != digest
    {
        return Err(mismatch(format!(
            "Docker-Content-Digest {h} is not the digest of the bytes served ({digest})"
        )));
    }
    if reference.starts_with("sha256:") && reference != digest {
        return Err(mismatch(format!(
            "asked for {reference}, the bytes served hash to {digest}"
        )));
    }
    let inner: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| mismatch(format!("the manifest is not JSON ({e})")))?
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    if let Some(inner) = inner
        && inner != media_type
    {
        return Err(mismatch(format!(
            "Content-Type says {media_type} but the manifest says {inner}"
        )));
    }
    Ok(Resolved {
        descriptor: Descriptor {
            media_type,
            digest,
            size: body.len() as u64,
            annotations: None,
        },
        body,
    })
}

/// Uploads `bytes` as a blob of `repo` unless the registry already has it (monolithic upload:
/// POST, then PUT with the digest).
pub async fn push_blob(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    bytes: &[u8],
) -> Result<(), ArtifactError> {
    let digest = sha256_digest(bytes);
    let scope = push_scope(repo);
    let head = registry.url(&format!("v2/{repo}/blobs/{digest}"));
    let resp = client.send(&scope, |http| http.head(head.clone())).await?;
    if resp.status() == reqwest::StatusCode::OK {
        return Ok(());
    }
    let start = registry.url(&format!("v2/{repo}/blobs/uploads/"));
    let resp = client
        .send(&scope, |http| {
            http.post(start.clone())
                .header(reqwest::header::CONTENT_LENGTH, "0")
        })
        .await?;
    if resp.status() != reqwest::StatusCode::ACCEPTED {
        return Err(status_error("starting a blob upload", repo.to_string(), resp).await);
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut url = registry
        .base()
        .join(&location)
        .map_err(|_| ArtifactError::ForeignLocation {
            reference: repo.to_string(),
            location: location.chars().take(100).collect(),
        })?;
    // The token the client holds for this scope is sent with the PUT: only to the registry.
    if url.origin() != registry.origin() {
        return Err(ArtifactError::ForeignLocation {
            reference: repo.to_string(),
            location: super::http::redact(&url),
        });
    }
    url.query_pairs_mut().append_pair("digest", &digest);
    let body = bytes.to_vec();
    let resp = client
        .send(&scope, |http| {
            http.put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })
        .await?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return Err(status_error("uploading a blob", format!("{repo}@{digest}"), resp).await);
    }
    Ok(())
}

/// PUTs a manifest under `reference` (a digest or tag) and returns the registry's `OCI-Subject`
/// header: present when the registry indexes referrers itself.
pub async fn push_manifest(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<Option<String>, ArtifactError> {
    let url = registry.url(&format!("v2/{repo}/manifests/{reference}"));
    let body = bytes.to_vec();
    let resp = client
        .send(&push_scope(repo), |http| {
            http.put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(body.clone())
        })
        .await?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return Err(status_error("pushing a manifest", format!("{repo}:{reference}"), resp).await);
    }
    Ok(resp
        .headers()
        .get("OCI-Subject")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string))
}

/// The tag-schema tag for `digest`; only `sha256:<64 hex>` digests have one (anything else
/// would put unchecked text into a URL path).
fn referrers_tag(digest: &str) -> Result<String, ArtifactError> {
    crate::notation::referrers_tag(digest).ok_or_else(|| ArtifactError::Mismatch {
        reference: digest.chars().take(80).collect(),
        reason: "not a sha256 digest".into(),
    })
}

/// The index under the referrers tag of `subject`: its descriptors as JSON values (kept as they
/// are, so rewriting the index loses nothing), or none when the tag does not exist.
async fn read_tag_index(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    subject: &str,
) -> Result<Vec<serde_json::Value>, ArtifactError> {
    let tag = referrers_tag(subject)?;
    let reference = format!("{repo}:{tag}");
    let url = registry.url(&format!("v2/{repo}/manifests/{tag}"));
    let resp = client
        .send(&pull_scope(repo), |http| {
            http.get(url.clone())
                .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
        })
        .await?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(Vec::new()),
        _ => return Err(status_error("reading the referrers index", reference, resp).await),
    }
    let bad = |reason: String| ArtifactError::BadIndex {
        reference: reference.clone(),
        reason,
    };
    let body = match read_limited(resp, MAX_MANIFEST).await {
        Ok(b) => b,
        Err(HttpError::TooLarge { limit, .. }) => {
            return Err(bad(format!("more than {limit} bytes")));
        }
        Err(e) => return Err(e.into()),
    };
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("no JSON ({e})")))?;
    if doc.get("mediaType").and_then(|m| m.as_str()) != Some(OCI_INDEX) {
        return Err(bad("a manifest that is not an OCI image index".into()));
    }
    let entries = doc
        .get("manifests")
        .and_then(|m| m.as_array())
        .ok_or_else(|| bad("an index without a manifests list".into()))?;
    if entries
        .iter()
        .any(|e| e.get("digest").and_then(|d| d.as_str()).is_none())
    {
        return Err(bad("an index entry without a digest".into()));
    }
    Ok(entries.clone())
}

/// An index entry for a signature manifest, as the referrers API would list it.
pub fn referrer_entry(manifest: &[u8]) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(manifest).unwrap_or_default();
    let mut entry = serde_json::json!({
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "digest": sha256_digest(manifest),
        "size": manifest.len(),
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
    });
    if let Some(a) = doc.get("annotations") {
        entry["annotations"] = a.clone();
    }
    entry
}

/// Adds `entry` to the tag-schema index of `subject` (read, append unless present, write back).
/// Returns whether the index changed.
pub async fn add_to_tag_index(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    subject: &str,
    entry: serde_json::Value,
) -> Result<bool, ArtifactError> {
    let mut entries = read_tag_index(client, registry, repo, subject).await?;
    if entries
        .iter()
        .any(|e| e.get("digest") == entry.get("digest"))
    {
        return Ok(false);
    }
    entries.push(entry);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    let bytes = serde_json::to_vec(&index).unwrap_or_default();
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(ArtifactError::BadIndex {
            reference: format!("{repo}:{}", referrers_tag(subject)?),
            reason: "so many signatures that one more would pass the 4 MiB manifest limit".into(),
        });
    }
    push_manifest(
        client,
        registry,
        repo,
        &referrers_tag(subject)?,
        OCI_INDEX,
        &bytes,
    )
    .await?;
    Ok(true)
}

/// Where a pushed signature was made discoverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// The registry indexes referrers itself (it answered `OCI-Subject`).
    ReferrersApi,
    /// Added to the `sha256-<hex>` tag-schema index.
    TagSchema,
}

/// Pushes a signature: the empty config and the envelope blobs, then the manifest by digest,
/// then (when the registry did not answer `OCI-Subject` for the subject) the tag-schema index.
/// Returns the signature manifest's digest and where it is listed.
pub async fn push_signature(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    subject: &Descriptor,
    envelope: &[u8],
    manifest: &[u8],
) -> Result<(String, Listed), ArtifactError> {
    // distribution 2.8 refuses a manifest whose config blob is missing, even the empty one.
    push_blob(client, registry, repo, crate::notation::sign::EMPTY_CONFIG).await?;
    push_blob(client, registry, repo, envelope).await?;
    let digest = sha256_digest(manifest);
    let oci_subject = push_manifest(
        client,
        registry,
        repo,
        &digest,
        MEDIA_TYPE_OCI_MANIFEST,
        manifest,
    )
    .await?;
    if oci_subject.as_deref() == Some(subject.digest.as_str()) {
        return Ok((digest, Listed::ReferrersApi));
    }
    add_to_tag_index(
        client,
        registry,
        repo,
        &subject.digest,
        referrer_entry(manifest),
    )
    .await?;
    Ok((digest, Listed::TagSchema))
}
