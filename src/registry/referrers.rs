//! Discovery of Notary Project signatures for a manifest: the referrers API
//! (`GET /v2/<name>/referrers/<digest>?artifactType=…`, `Link` paging) where the registry has
//! it, else the `sha256-<hex>` tag-schema index (distribution 2.8). Then each signature
//! manifest (both shapes: `artifactType`, and the legacy `config.mediaType`) and its envelope
//! blob, each size-bounded and checked against its digest. What a hostile registry can do here
//! is bounded: pages, signatures examined and bytes read are capped; a `Link` to another origin
//! is refused before any request (our token must not leave the registry); a signature manifest
//! must name the subject we asked about.

use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::http::{AuthedClient, HttpError, read_limited};
use super::manifest::{MANIFEST_ACCEPT, MAX_MANIFEST};
use crate::notation::envelope::{Descriptor, MAX_ENVELOPE_BYTES};
use crate::notation::{
    ARTIFACT_TYPE_SIGNATURE, MEDIA_TYPE_COSE, MEDIA_TYPE_EMPTY, MEDIA_TYPE_JWS,
    MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, referrers_tag,
};

/// Most referrers pages followed.
pub const MAX_PAGES: usize = 20;
/// Most signature manifests examined for one digest (notation's default is 100).
pub const MAX_SIGNATURES: usize = 50;
/// Largest referrers page or tag-schema index.
pub const MAX_INDEX: u64 = 4 * 1024 * 1024;

/// Errors of discovery.
#[derive(Debug, thiserror::Error)]
pub enum ReferrersError {
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A status we do not expect.
    #[error("{what}: the registry answered {status}")]
    Status {
        /// What was fetched.
        what: String,
        /// HTTP status.
        status: u16,
    },
    /// The tag does not exist.
    #[error("{0}: the registry has no such tag")]
    NoTag(String),
    /// A `Link` header that leaves the registry, or is malformed.
    #[error(
        "the registry's referrers Link header points to {0}, outside the registry; refused (the registry token must not be sent elsewhere)"
    )]
    ForeignLink(String),
    /// More pages than [`MAX_PAGES`].
    #[error("the registry's referrers list has more than {MAX_PAGES} pages; refused")]
    TooManyPages,
    /// Bytes that are not what their descriptor says.
    #[error("{what}: {reason}")]
    Bad {
        /// What was fetched.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

/// How signatures were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// The OCI 1.1 referrers API.
    ReferrersApi,
    /// The `sha256-<hex>` tag-schema index.
    TagSchema,
}

/// A manifest as the registry resolved a reference: what a signature must name.
pub async fn resolve(
    client: &AuthedClient,
    base: &Endpoint,
    repo: &str,
    reference: &str,
) -> Result<Descriptor, ReferrersError> {
    let what = format!("{repo}:{reference}");
    let (media_type, body) = get_manifest(
        client,
        base,
        repo,
        reference,
        MANIFEST_ACCEPT,
        MAX_MANIFEST,
        &what,
    )
    .await?
    .ok_or_else(|| ReferrersError::NoTag(what.clone()))?;
    Ok(Descriptor {
        media_type,
        digest: sha256_digest(&body),
        size: body.len() as u64,
        annotations: None,
    })
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// GET a manifest: `None` on 404; content type and bytes otherwise.
async fn get_manifest(
    client: &AuthedClient,
    base: &Endpoint,
    repo: &str,
    reference: &str,
    accept: &str,
    limit: u64,
    what: &str,
) -> Result<Option<(String, Vec<u8>)>, ReferrersError> {
    let url = base.url(&format!("v2/{repo}/manifests/{reference}"));
    let scope = format!("repository:{repo}:pull");
    let resp = client
        .send(&scope, |http| {
            http.get(url.clone())
                .header(reqwest::header::ACCEPT, accept)
        })
        .await?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        s => {
            return Err(ReferrersError::Status {
                what: what.to_string(),
                status: s,
            });
        }
    }
    let media_type = content_type(&resp);
    let body = read_limited(resp, limit).await?;
    Ok(Some((media_type, body)))
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(serde::Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    artifact_type: Option<String>,
}

/// A candidate signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRef {
    /// The signature manifest's digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
}

/// Lists the signature manifests that refer to `subject`: referrers API first, tag schema on
/// 404. Descriptors with another artifact type are dropped; ones without (registries that omit
/// it) are kept for the manifest check. At most [`MAX_SIGNATURES`].
pub async fn list_signatures(
    client: &AuthedClient,
    base: &Endpoint,
    repo: &str,
    subject: &str,
) -> Result<(Vec<SignatureRef>, Discovery), ReferrersError> {
    let scope = format!("repository:{repo}:pull");
    let mut url = base.url(&format!("v2/{repo}/referrers/{subject}"));
    url.query_pairs_mut()
        .append_pair("artifactType", ARTIFACT_TYPE_SIGNATURE);
    let mut entries = Vec::new();
    let mut pages = 0;
    let mut discovery = Discovery::ReferrersApi;
    loop {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ReferrersError::TooManyPages);
        }
        let resp = client
            .send(&scope, |http| {
                http.get(url.clone())
                    .header(reqwest::header::ACCEPT, MEDIA_TYPE_OCI_INDEX)
            })
            .await?;
        let status = resp.status().as_u16();
        if status == 404 && pages == 1 {
            discovery = Discovery::TagSchema;
            break;
        }
        if status != 200 {
            return Err(ReferrersError::Status {
                what: format!("referrers of {repo}@{subject}"),
                status,
            });
        }
        let next = next_link(&resp, &url, base)?;
        let body = read_limited(resp, MAX_INDEX).await?;
        let index: Index = serde_json::from_slice(&body).map_err(|e| ReferrersError::Bad {
            what: format!("referrers of {repo}@{subject}"),
            reason: format!("not an OCI index: {e}"),
        })?;
        entries.extend(index.manifests);
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    if discovery == Discovery::TagSchema {
        let Some(tag) = referrers_tag(subject) else {
            return Ok((Vec::new(), discovery));
        };
        let what = format!("{repo}:{tag} (referrers index)");
        if let Some((mt, body)) = get_manifest(
            client,
            base,
            repo,
            &tag,
            MEDIA_TYPE_OCI_INDEX,
            MAX_INDEX,
            &what,
        )
        .await?
        {
            // Not an index there means no referrers (spec), not an error.
            if mt == MEDIA_TYPE_OCI_INDEX
                && let Ok(index) = serde_json::from_slice::<Index>(&body)
            {
                entries = index.manifests;
            }
        }
    }
    let refs = entries
        .into_iter()
        .filter(|e| {
            e.media_type == MEDIA_TYPE_OCI_MANIFEST
                && e.artifact_type
                    .as_deref()
                    .is_none_or(|t| t == ARTIFACT_TYPE_SIGNATURE || t.is_empty())
        })
        .map(|e| SignatureRef {
            digest: e.digest,
            size: e.size,
        })
        .take(MAX_SIGNATURES)
        .collect();
    Ok((refs, discovery))
}

/// The `rel="next"` target of a `Link` header, resolved against the current URL; refused when
/// it leaves the registry's origin.
fn next_link(
    resp: &reqwest::Response,
    current: &url::Url,
    base: &Endpoint,
) -> Result<Option<url::Url>, ReferrersError> {
    let Some(link) = resp
        .headers()
        .get(reqwest::header::LINK)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    for part in link.split(',') {
        let part = part.trim();
        let Some((target, params)) = part.split_once(';') else {
            continue;
        };
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        if !is_next {
            continue;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let next = current
            .join(target)
            .map_err(|_| ReferrersError::ForeignLink(target.to_string()))?;
        if next.origin() != base.origin() {
            return Err(ReferrersError::ForeignLink(super::http::redact(&next)));
        }
        return Ok(Some(next));
    }
    Ok(None)
}

/// A fetched signature: the envelope's media type and bytes (digest-checked).
#[derive(Debug, Clone)]
pub struct SignatureBlob {
    /// The signature manifest's digest.
    pub manifest_digest: String,
    /// `application/jose+json` or `application/cose`.
    pub media_type: String,
    /// The envelope.
    pub envelope: Vec<u8>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Blob,
    #[serde(default)]
    layers: Vec<Blob>,
    #[serde(default)]
    subject: Option<Blob>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Blob {
    media_type: String,
    digest: String,
    size: u64,
}

/// Checks a signature manifest's bytes: a Notary Project signature in either shape, about
/// `subject`, with one envelope layer within bounds. Returns the layer (media type, digest, size).
pub fn check_signature_manifest(
    bytes: &[u8],
    subject: &str,
) -> Result<(String, String, u64), String> {
    let m: SignatureManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI image manifest: {e}"))?;
    if m.media_type
        .as_deref()
        .is_some_and(|t| t != MEDIA_TYPE_OCI_MANIFEST)
    {
        return Err(format!(
            "media type {:?} is not an OCI image manifest",
            m.media_type.unwrap_or_default()
        ));
    }
    let shape_a = m.artifact_type.as_deref() == Some(ARTIFACT_TYPE_SIGNATURE)
        && m.config.media_type == MEDIA_TYPE_EMPTY;
    let shape_b = m.artifact_type.is_none() && m.config.media_type == ARTIFACT_TYPE_SIGNATURE;
    if !shape_a && !shape_b {
        return Err("not a Notary Project signature manifest".into());
    }
    match &m.subject {
        Some(s) if s.digest == subject => {}
        Some(s) => {
            return Err(format!(
                "it is a signature of {}, not of {subject}",
                s.digest
            ));
        }
        None => return Err("it has no subject".into()),
    }
    let [layer] = m.layers.as_slice() else {
        return Err(format!(
            "it has {} layers; a signature has exactly one",
            m.layers.len()
        ));
    };
    if layer.media_type != MEDIA_TYPE_JWS && layer.media_type != MEDIA_TYPE_COSE {
        return Err(format!(
            "envelope media type {:?} is unknown",
            layer.media_type
        ));
    }
    if layer.size > MAX_ENVELOPE_BYTES as u64 {
        return Err(format!(
            "its envelope is {} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit",
            layer.size
        ));
    }
    Ok((layer.media_type.clone(), layer.digest.clone(), layer.size))
}

/// Fetches one signature manifest and its envelope, checking digests and sizes against their
/// descriptors.
pub async fn fetch_signature(
    client: &AuthedClient,
    base: &Endpoint,
    repo: &str,
    sig: &SignatureRef,
    subject: &str,
) -> Result<SignatureBlob, ReferrersError> {
    let what = format!("signature manifest {repo}@{}", sig.digest);
    let bad = |reason: String| ReferrersError::Bad {
        what: what.clone(),
        reason,
    };
    if sig.size > MAX_MANIFEST {
        return Err(bad(format!(
            "{} bytes is over the manifest limit",
            sig.size
        )));
    }
    let (_, body) = get_manifest(
        client,
        base,
        repo,
        &sig.digest,
        MEDIA_TYPE_OCI_MANIFEST,
        sig.size.max(1),
        &what,
    )
    .await?
    .ok_or_else(|| bad("listed, but the registry does not have it".into()))?;
    if sha256_digest(&body) != sig.digest || body.len() as u64 != sig.size {
        return Err(bad("the bytes do not match their digest and size".into()));
    }
    let (media_type, digest, size) = check_signature_manifest(&body, subject).map_err(bad)?;
    let url = base.url(&format!("v2/{repo}/blobs/{digest}"));
    let scope = format!("repository:{repo}:pull");
    let resp = client.send(&scope, |http| http.get(url.clone())).await?;
    if resp.status().as_u16() != 200 {
        return Err(ReferrersError::Status {
            what: format!("signature envelope {repo}@{digest}"),
            status: resp.status().as_u16(),
        });
    }
    let envelope = read_limited(resp, size.max(1)).await?;
    if sha256_digest(&envelope) != digest || envelope.len() as u64 != size {
        return Err(ReferrersError::Bad {
            what: format!("signature envelope {repo}@{digest}"),
            reason: "the bytes do not match their digest and size".into(),
        });
    }
    Ok(SignatureBlob {
        manifest_digest: sig.digest.clone(),
        media_type,
        envelope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(
        artifact_type: Option<&str>,
        config: &str,
        subject: &str,
        layers: usize,
    ) -> Vec<u8> {
        let layer =
            serde_json::json!({"mediaType": MEDIA_TYPE_JWS, "digest": "sha256:aa", "size": 10});
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "config": {"mediaType": config, "digest": crate::notation::EMPTY_CONFIG_DIGEST, "size": 2},
            "layers": vec![layer; layers],
            "subject": {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": subject, "size": 1},
        });
        if let Some(t) = artifact_type {
            m["artifactType"] = t.into();
        }
        serde_json::to_vec(&m).unwrap()
    }

    #[test]
    fn both_signature_manifest_shapes_are_read() {
        let a = manifest(
            Some(ARTIFACT_TYPE_SIGNATURE),
            MEDIA_TYPE_EMPTY,
            "sha256:s",
            1,
        );
        let b = manifest(None, ARTIFACT_TYPE_SIGNATURE, "sha256:s", 1);
        assert_eq!(
            check_signature_manifest(&a, "sha256:s").unwrap().1,
            "sha256:aa"
        );
        assert_eq!(
            check_signature_manifest(&b, "sha256:s").unwrap().1,
            "sha256:aa"
        );
        // artifactType with a non-empty config, or neither marker: not a signature.
        let c = manifest(
            Some(ARTIFACT_TYPE_SIGNATURE),
            ARTIFACT_TYPE_SIGNATURE,
            "sha256:s",
            1,
        );
        assert!(check_signature_manifest(&c, "sha256:s").is_err());
        let d = manifest(None, MEDIA_TYPE_EMPTY, "sha256:s", 1);
        assert!(check_signature_manifest(&d, "sha256:s").is_err());
    }

    #[test]
    fn a_signature_manifest_for_another_subject_or_with_two_layers_is_refused() {
        let other = manifest(
            Some(ARTIFACT_TYPE_SIGNATURE),
            MEDIA_TYPE_EMPTY,
            "sha256:other",
            1,
        );
        let e = check_signature_manifest(&other, "sha256:s").unwrap_err();
        assert!(e.contains("sha256:other"), "{e}");
        let two = manifest(
            Some(ARTIFACT_TYPE_SIGNATURE),
            MEDIA_TYPE_EMPTY,
            "sha256:s",
            2,
        );
        assert!(check_signature_manifest(&two, "sha256:s").is_err());
    }
}
