//! The HTTP client for Microsoft Entra ID, kept apart from the registry clients because its
//! TLS rules differ: Entra connections carry client secrets and are always verified.

use std::path::Path;
use std::time::Duration;

use crate::registry::{HttpError, install_crypto_provider};

/// A client for Microsoft Entra ID: always verifies certificates (the loopback exception is for
/// registries only; a client secret must never go to an unverified server), trusting the
/// platform's roots plus the PEM bundle in `SSL_CERT_FILE` if set (private clouds, proxies).
/// Never follows redirects (review #8 item 14).
pub fn entra_client() -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        // A redirect would carry the request's secrets (a client secret in the body, the
        // managed identity's header) to wherever it points; the Azure SDKs do not follow them.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("docker-trustacr/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| {
            HttpError::Setup(format!("SSL_CERT_FILE {}: {e}", Path::new(&path).display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| HttpError::Setup(format!("SSL_CERT_FILE: {e}")))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| HttpError::Setup(e.to_string()))
}
