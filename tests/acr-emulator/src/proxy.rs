//! `/v2/…` as ACR serves it on one host: Notary paths (`/v2/<GUN>/_trust/…`) go to
//! notary-server, everything else to the registry. Method, headers, bodies (streamed) and
//! statuses pass through; `WWW-Authenticate` realms and `Location`s are rewritten to this host.
//! The referrers API is ACR's, not the registry's: see `referrers.rs`.

use crate::config::Config;
use crate::{Body, State, auth, full, referrers};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::Ordering;

pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    registry: String,
    notary: String,
    login_server: String,
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    pub fn new(cfg: &Config) -> Result<Proxy, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &cfg.backend_ca {
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?
            {
                let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        for (what, u) in [
            ("registry_url", &cfg.registry_url),
            ("notary_url", &cfg.notary_url),
        ] {
            u.parse::<Uri>()
                .ok()
                .filter(|u| u.scheme().is_some() && u.authority().is_some())
                .ok_or_else(|| format!("{what} {u:?} is not an absolute URL"))?;
        }
        Ok(Proxy {
            client,
            registry: cfg.registry_url.trim_end_matches('/').to_string(),
            notary: cfg.notary_url.trim_end_matches('/').to_string(),
            login_server: cfg.login_server.clone(),
        })
    }

    pub async fn forward(&self, st: &State, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        if req.method() == hyper::Method::GET
            && let Some((name, digest)) = referrers::referrers_path(&path)
        {
            let query = req.uri().query().unwrap_or("").to_string();
            return self.referrers(st, &req, name, digest, &query).await;
        }
        // Manifests pushed with a subject are indexed for the referrers API: buffer them.
        let indexed_repo = (req.method() == hyper::Method::PUT)
            .then(|| referrers::manifest_path(&path))
            .flatten()
            .map(str::to_string);
        let to_notary = path.contains("/_trust/") || path.ends_with("/_trust");
        let (base, counter) = if to_notary {
            (&self.notary, &st.stats.notary)
        } else {
            (&self.registry, &st.stats.registry)
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let Ok(uri) = format!("{base}{pq}").parse::<Uri>() else {
            return auth::acr_error(400, "BAD_REQUEST", "bad request path").into_response();
        };
        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(hyper::header::HOST);
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (body, manifest): (Body, Option<bytes::Bytes>) = if indexed_repo.is_some() {
            match http_body_util::Limited::new(body, referrers::MAX_MANIFEST)
                .collect()
                .await
            {
                Ok(b) => {
                    let b = b.to_bytes();
                    (full(b.clone()), Some(b))
                }
                Err(_) => {
                    return auth::acr_error(400, "MANIFEST_INVALID", "manifest too large")
                        .into_response();
                }
            }
        } else {
            (body.boxed(), None)
        };
        let resp = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("acr-emulator: backend {base}: {e}");
                return auth::acr_error(502, "UNAVAILABLE", "the backend is unavailable")
                    .into_response();
            }
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        self.rewrite_challenges(&mut parts.headers);
        self.rewrite_location(&mut parts.headers);
        if parts.status == hyper::StatusCode::CREATED
            && let (Some(repo), Some(bytes)) = (&indexed_repo, &manifest)
            && let Some(subject) = st.referrers.record(repo, bytes, content_type.as_deref())
            && let Ok(v) = HeaderValue::from_str(&subject)
        {
            parts.headers.insert("oci-subject", v);
        }
        Response::from_parts(parts, body.boxed())
    }

    /// Serves a referrers page, after the registry has accepted the request's credentials for
    /// reading the repository (its tag list), so the API is no more open than the registry.
    async fn referrers(
        &self,
        st: &State,
        req: &Request<Incoming>,
        name: &str,
        digest: &str,
        query: &str,
    ) -> Response<Body> {
        st.stats.registry.fetch_add(1, Ordering::Relaxed);
        let Ok(uri) = format!("{}/v2/{name}/tags/list", self.registry).parse::<Uri>() else {
            return auth::acr_error(400, "BAD_REQUEST", "bad request path").into_response();
        };
        let mut check = Request::get(uri);
        if let Some(a) = req.headers().get(hyper::header::AUTHORIZATION) {
            check = check.header(hyper::header::AUTHORIZATION, a.clone());
        }
        let Ok(check) = check.body(full(bytes::Bytes::new())) else {
            return auth::acr_error(400, "BAD_REQUEST", "bad request").into_response();
        };
        match self.client.request(check).await {
            Ok(r)
                if r.status() == hyper::StatusCode::UNAUTHORIZED
                    || r.status() == hyper::StatusCode::FORBIDDEN =>
            {
                let (mut parts, body) = r.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                self.rewrite_challenges(&mut parts.headers);
                return Response::from_parts(parts, body.boxed());
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("acr-emulator: backend {}: {e}", self.registry);
                return auth::acr_error(502, "UNAVAILABLE", "the backend is unavailable")
                    .into_response();
            }
        }
        let (body, next, filtered) = st.referrers.page(name, digest, query);
        let mut resp = Response::builder()
            .status(200)
            .header("content-type", "application/vnd.oci.image.index.v1+json");
        if filtered {
            resp = resp.header("oci-filters-applied", "artifactType");
        }
        if let Some(q) = next {
            resp = resp.header(
                "link",
                format!("</v2/{name}/referrers/{digest}?{q}>; rel=\"next\""),
            );
        }
        resp.body(full(serde_json::to_vec(&body).unwrap_or_default()))
            .unwrap_or_else(|_| auth::acr_error(500, "INTERNAL", "response").into_response())
    }

    fn rewrite_challenges(&self, h: &mut HeaderMap) {
        let realm = format!("https://{}/oauth2/token", self.login_server);
        let values: Vec<HeaderValue> = h
            .get_all(hyper::header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| match v.to_str() {
                Ok(s) => HeaderValue::from_str(&rewrite_realm(s, &realm)).unwrap_or(v.clone()),
                Err(_) => v.clone(),
            })
            .collect();
        if values.is_empty() {
            return;
        }
        h.remove(hyper::header::WWW_AUTHENTICATE);
        for v in values {
            h.append(hyper::header::WWW_AUTHENTICATE, v);
        }
    }

    fn rewrite_location(&self, h: &mut HeaderMap) {
        let Some(loc) = h.get(hyper::header::LOCATION).and_then(|v| v.to_str().ok()) else {
            return;
        };
        for base in [&self.registry, &self.notary] {
            if let Some(rest) = loc.strip_prefix(base.as_str())
                && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            {
                let new = format!("https://{}{rest}", self.login_server);
                if let Ok(v) = HeaderValue::from_str(&new) {
                    h.insert(hyper::header::LOCATION, v);
                }
                return;
            }
        }
    }
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named by Connection are hop-by-hop too.
    let named: Vec<String> = h
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        h.remove(n);
    }
}

/// `Bearer realm="X",service="Y"` with X replaced.
fn rewrite_realm(challenge: &str, realm: &str) -> String {
    let lower = challenge.to_ascii_lowercase();
    let Some(start) = lower.find("realm=\"") else {
        return challenge.to_string();
    };
    let vstart = start + "realm=\"".len();
    let Some(len) = challenge[vstart..].find('"') else {
        return challenge.to_string();
    };
    format!(
        "{}{}{}",
        &challenge[..vstart],
        realm,
        &challenge[vstart + len..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_is_replaced_and_the_rest_kept() {
        assert_eq!(
            rewrite_realm(
                r#"Bearer realm="https://backend/auth",service="s",scope="repository:a:pull""#,
                "https://h/oauth2/token"
            ),
            r#"Bearer realm="https://h/oauth2/token",service="s",scope="repository:a:pull""#
        );
        assert_eq!(rewrite_realm("Basic", "x"), "Basic");
    }
}
