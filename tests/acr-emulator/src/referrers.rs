//! The OCI 1.1 referrers API that ACR has and distribution 2.8 lacks: the emulator indexes every
//! manifest pushed through it that has a `subject` (answering the push with `OCI-Subject`), and
//! serves `GET /v2/<name>/referrers/<digest>` itself: an OCI index of the referrers, filtered by
//! `artifactType` (with `OCI-Filters-Applied`), in pages of [`PAGE_SIZE`] linked by `Link`, so
//! clients must page. Access is the registry's: the request's credentials must let it read the
//! repository's tag list, or the registry's 401 goes back to the client.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Referrers per page: small, so paging is always exercised.
pub const PAGE_SIZE: usize = 2;
/// Largest manifest the emulator buffers to index it (the registry's own limit).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// `(repository, subject digest)` → referrer descriptors, in push order.
#[derive(Default)]
pub struct Index(Mutex<HashMap<(String, String), Vec<Value>>>);

/// `/v2/<name>/referrers/<digest>` → `(name, digest)`.
pub fn referrers_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v2/")?;
    let (name, digest) = rest.rsplit_once("/referrers/")?;
    (!name.is_empty() && digest.starts_with("sha256:") && !digest.contains('/'))
        .then_some((name, digest))
}

/// `/v2/<name>/manifests/<reference>` → `name`.
pub fn manifest_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    let (name, reference) = rest.rsplit_once("/manifests/")?;
    (!name.is_empty() && !reference.is_empty() && !reference.contains('/')).then_some(name)
}

impl Index {
    /// Records a pushed manifest that has a subject; returns the subject's digest.
    pub fn record(&self, repo: &str, bytes: &[u8], content_type: Option<&str>) -> Option<String> {
        let m: Value = serde_json::from_slice(bytes).ok()?;
        let subject = m["subject"]["digest"].as_str()?.to_string();
        let artifact_type = m["artifactType"]
            .as_str()
            .or_else(|| m["config"]["mediaType"].as_str())
            .unwrap_or_default();
        let media_type = m["mediaType"].as_str().or(content_type).unwrap_or_default();
        let mut desc = json!({
            "mediaType": media_type,
            "digest": format!("sha256:{}", hex(&Sha256::digest(bytes))),
            "size": bytes.len(),
            "artifactType": artifact_type,
        });
        if let Some(a) = m.get("annotations").filter(|a| a.is_object()) {
            desc["annotations"] = a.clone();
        }
        let mut map = self.0.lock().ok()?;
        let list = map.entry((repo.to_string(), subject.clone())).or_default();
        if !list.iter().any(|d| d["digest"] == desc["digest"]) {
            list.push(desc);
        }
        Some(subject)
    }

    /// One page of the referrers of `digest`: `(index body, next page's query, filtered)`.
    /// `query` is the request's query string (`artifactType`, and `last` from our own links).
    pub fn page(&self, repo: &str, digest: &str, query: &str) -> (Value, Option<String>, bool) {
        let mut artifact_type = None;
        let mut start = 0usize;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "artifactType" => artifact_type = Some(v.into_owned()),
                "last" => start = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        let all: Vec<Value> = self
            .0
            .lock()
            .map(|m| m.get(&(repo.to_string(), digest.to_string())).cloned())
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                artifact_type
                    .as_ref()
                    .is_none_or(|t| d["artifactType"] == t.as_str())
            })
            .collect();
        let page: Vec<Value> = all.iter().skip(start).take(PAGE_SIZE).cloned().collect();
        let end = start + page.len();
        let next = (end < all.len()).then(|| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(t) = &artifact_type {
                q.append_pair("artifactType", t);
            }
            q.append_pair("last", &end.to_string());
            q.finish()
        });
        let body = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": page,
        });
        (body, next, artifact_type.is_some())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(subject: &str, n: u8) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": if n.is_multiple_of(2) { "application/vnd.cncf.notary.signature" } else { "other" },
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:e", "size": 2},
            "layers": [],
            "subject": {"mediaType": "x", "digest": subject, "size": n},
        }))
        .unwrap()
    }

    #[test]
    fn referrers_are_filtered_and_paged() {
        let idx = Index::default();
        for n in 0..6 {
            assert_eq!(
                idx.record("r", &manifest("sha256:s", n), None).as_deref(),
                Some("sha256:s")
            );
        }
        let (body, next, filtered) = idx.page(
            "r",
            "sha256:s",
            "artifactType=application%2Fvnd.cncf.notary.signature",
        );
        assert!(filtered);
        assert_eq!(body["manifests"].as_array().unwrap().len(), 2);
        let (body, next, _) = idx.page("r", "sha256:s", &next.unwrap());
        assert_eq!(body["manifests"].as_array().unwrap().len(), 1);
        assert!(next.is_none());
        assert_eq!(idx.page("r", "sha256:none", "").0["manifests"], json!([]));
        assert_eq!(
            referrers_path("/v2/a/b/referrers/sha256:x"),
            Some(("a/b", "sha256:x"))
        );
        assert_eq!(manifest_path("/v2/a/b/manifests/v1"), Some("a/b"));
    }
}
