//! Azure Container Registry authentication: an Entra token is exchanged for an ACR refresh token
//! (`POST /oauth2/exchange`), which buys access tokens for exact scopes (`POST /oauth2/token`).
//!
//! The refresh token is what the engine gets as `identitytoken` and what the Notary client uses
//! with the refresh grant. It is cached in the OS keyring until shortly before its JWT `exp`, so
//! a second command makes no Entra call. Access tokens are read for their `access` claim to
//! diagnose missing roles before anything is sent.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::entra::{self, EntraError, EntraOptions, jwt_claims};
use crate::keystore::{self, KeystoreError};
use crate::registry::read_limited;
use crate::secret::Secret;

/// Suffixes of ACR login servers in the public and sovereign clouds.
pub const ACR_SUFFIXES: [&str; 3] = [".azurecr.io", ".azurecr.cn", ".azurecr.us"];

/// The username docker and ACR use with a refresh token as password.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Refresh tokens are renewed this long before they expire.
const REFRESH_MARGIN_SECS: i64 = 300;

/// Token responses larger than this are refused.
const MAX_RESPONSE: u64 = 1024 * 1024;

/// Whether `host` is an ACR login server: by name, or listed in the plugin settings
/// (`acr_registries` in `<config dir>/trustacr.json`, for private endpoints and tests).
pub fn is_acr(host: &str, configured: &[String]) -> bool {
    let name = host.split(':').next().unwrap_or(host);
    configured.iter().any(|c| c == host) || ACR_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Errors talking to ACR's token service.
#[derive(Debug, thiserror::Error)]
pub enum AcrError {
    /// Entra sign-in failed.
    #[error(transparent)]
    Entra(#[from] EntraError),
    /// The exchange refused the Entra token.
    #[error(
        "{registry} refused the Entra token from {source_name} ({status}: {detail}). Likely causes: a personal Microsoft account (not supported by ACR), a token for another tenant (set --tenant), or a registry that only accepts ACR-audience tokens while the token has the ARM audience"
    )]
    ExchangeRefused {
        /// Login server.
        registry: String,
        /// Which credential produced the token.
        source_name: &'static str,
        /// HTTP status.
        status: u16,
        /// ACR's message.
        detail: String,
    },
    /// The token endpoint refused.
    #[error("{registry} refused a token for {scope} ({status}: {detail})")]
    TokenRefused {
        /// Login server.
        registry: String,
        /// Scope asked for.
        scope: String,
        /// HTTP status.
        status: u16,
        /// ACR's message.
        detail: String,
    },
    /// Network failure.
    #[error("cannot reach {registry}'s token service: {reason}")]
    Unreachable {
        /// Login server.
        registry: String,
        /// Why.
        reason: String,
    },
    /// The keyring cache failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
}

/// An ACR refresh token and when it expires.
#[derive(Clone, Serialize, Deserialize)]
struct CachedRefresh {
    token: String,
    exp: i64,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn exp_of(jwt: &str) -> Option<i64> {
    jwt_claims(jwt)?.get("exp")?.as_i64()
}

/// The keyring entry for `registry`'s refresh token under the sign-in configuration `opts`.
///
/// The key includes everything that selects an identity (tenant, client ID, credential
/// source, authority, a hash of the client secret and the federated token file's path), so a
/// changed identity or secret never reuses another identity's token.
fn cache_entry(registry: &str, opts: &EntraOptions) -> Result<keyring_core::Entry, KeystoreError> {
    use sha2::{Digest, Sha256};
    keystore::ensure_store()?;
    let var = |n: &str| std::env::var(n).unwrap_or_default();
    let secret_hash = hex::encode(Sha256::digest(var("AZURE_CLIENT_SECRET").as_bytes()));
    let selector = [
        opts.tenant
            .clone()
            .unwrap_or_else(|| var("AZURE_TENANT_ID")),
        opts.client_id
            .clone()
            .unwrap_or_else(|| var("AZURE_CLIENT_ID")),
        format!("{:?}", opts.credential),
        var("AZURE_AUTHORITY_HOST"),
        var("AZURE_FEDERATED_TOKEN_FILE"),
        secret_hash,
    ]
    .join("\n");
    let id = hex::encode(&Sha256::digest(selector.as_bytes())[..8]);
    let name = format!("acr-refresh:{registry}:{id}");
    // The name is a hash of the selection, not a secret; it tells which entry `logout` clears.
    tracing::debug!("ACR refresh token cache entry {name}");
    keyring_core::Entry::new(keystore::SERVICE, &name).map_err(|e| keystore::map_error(&e))
}

fn cached_refresh(registry: &str, opts: &EntraOptions) -> Option<Secret> {
    let text = cache_entry(registry, opts).ok()?.get_password().ok()?;
    let c: CachedRefresh = serde_json::from_str(&text).ok()?;
    (c.exp - REFRESH_MARGIN_SECS > now_secs()).then(|| Secret::new(c.token))
}

fn store_refresh(registry: &str, opts: &EntraOptions, token: &Secret) {
    let exp = exp_of(token.expose()).unwrap_or(now_secs() + 3600);
    let text = serde_json::to_string(&CachedRefresh {
        token: token.expose().to_string(),
        exp,
    })
    .unwrap_or_default();
    // A cache that cannot be written only costs an Entra call next time.
    if let Err(e) = cache_entry(registry, opts)
        .and_then(|e| e.set_password(&text).map_err(|e| keystore::map_error(&e)))
    {
        tracing::debug!("not caching the ACR refresh token: {e}");
    }
}

/// Forgets the cached refresh token of `registry` for this sign-in configuration (logout).
pub fn forget_refresh(registry: &str, opts: &EntraOptions) -> Result<bool, KeystoreError> {
    match cache_entry(registry, opts)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(keystore::map_error(&e)),
    }
}

#[derive(Deserialize)]
struct RefreshResponse {
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct AccessResponse {
    access_token: Option<String>,
}

async fn error_detail(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body = read_limited(resp, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().chars().take(300).collect());
    (status, detail)
}

/// How a token endpoint answered a form POST.
enum Answer {
    /// 2xx with this body.
    Ok(Vec<u8>),
    /// Refused with this status and ACR's message.
    Refused(u16, String),
}

async fn post_form(
    http: &reqwest::Client,
    url: &str,
    registry: &str,
    form: &[(&str, &str)],
) -> Result<Answer, AcrError> {
    let unreachable = |reason: String| AcrError::Unreachable {
        registry: registry.to_string(),
        reason,
    };
    let resp = http
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        let (status, detail) = error_detail(resp).await;
        return Ok(Answer::Refused(status, detail));
    }
    read_limited(resp, MAX_RESPONSE)
        .await
        .map(Answer::Ok)
        .map_err(|e| unreachable(e.to_string()))
}

/// The ACR refresh token for `registry`: from the keyring cache while it is valid, otherwise
/// by signing in to Entra and exchanging the token. `base_url` is `https://<login server>`.
pub async fn refresh_token(
    http: &reqwest::Client,
    base_url: &str,
    registry: &str,
    opts: &EntraOptions,
) -> Result<Secret, AcrError> {
    if let Some(t) = cached_refresh(registry, opts) {
        tracing::debug!("using the cached ACR refresh token for {registry}");
        return Ok(t);
    }
    let entra_http = entra::entra_client().map_err(|e| AcrError::Unreachable {
        registry: registry.to_string(),
        reason: e.to_string(),
    })?;
    let entra = entra::acr_token(opts, entra_http).await?;
    let tenant = entra.tenant.clone().unwrap_or_default();
    let mut form = vec![
        ("grant_type", "access_token"),
        ("service", registry),
        ("access_token", entra.token.expose()),
    ];
    if !tenant.is_empty() {
        form.push(("tenant", &tenant));
    }
    let url = format!("{base_url}/oauth2/exchange");
    let body = match post_form(http, &url, registry, &form).await? {
        Answer::Ok(body) => body,
        Answer::Refused(status, detail) => {
            return Err(AcrError::ExchangeRefused {
                registry: registry.to_string(),
                source_name: entra.source,
                status,
                detail,
            });
        }
    };
    let token = serde_json::from_slice::<RefreshResponse>(&body)
        .ok()
        .and_then(|r| r.refresh_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| AcrError::Unreachable {
            registry: registry.to_string(),
            reason: "the exchange answered without a refresh token".into(),
        })?;
    store_refresh(registry, opts, &token);
    Ok(token)
}

/// An ACR access token and the actions it grants.
pub struct AccessToken {
    /// The token.
    pub token: Secret,
    /// `(type, name, actions)` from the `access` claim.
    pub access: Vec<(String, String, Vec<String>)>,
}

impl AccessToken {
    /// Whether the token grants `action` on repository `name`.
    pub fn grants(&self, name: &str, action: &str) -> bool {
        self.access.iter().any(|(t, n, actions)| {
            t == "repository" && n == name && actions.iter().any(|a| a == action || a == "*")
        })
    }
}

/// Gets an access token for `scope` with the refresh grant.
pub async fn access_token(
    http: &reqwest::Client,
    base_url: &str,
    registry: &str,
    refresh: &Secret,
    scope: &str,
) -> Result<AccessToken, AcrError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("service", registry),
        ("scope", scope),
        ("refresh_token", refresh.expose()),
        ("client_id", "docker-trustacr"),
    ];
    let url = format!("{base_url}/oauth2/token");
    let body = match post_form(http, &url, registry, &form).await? {
        Answer::Ok(body) => body,
        Answer::Refused(status, detail) => {
            return Err(AcrError::TokenRefused {
                registry: registry.to_string(),
                scope: scope.to_string(),
                status,
                detail,
            });
        }
    };
    let token = serde_json::from_slice::<AccessResponse>(&body)
        .ok()
        .and_then(|r| r.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AcrError::Unreachable {
            registry: registry.to_string(),
            reason: "the token service answered without an access token".into(),
        })?;
    let access = jwt_claims(&token)
        .and_then(|c| c.get("access").cloned())
        .and_then(|a| serde_json::from_value::<Vec<AccessEntry>>(a).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.typ, e.name, e.actions))
        .collect();
    Ok(AccessToken {
        token: Secret::new(token),
        access,
    })
}

#[derive(Deserialize)]
struct AccessEntry {
    #[serde(rename = "type")]
    typ: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_registries_are_recognised_by_suffix_or_setting() {
        assert!(is_acr("contoso.azurecr.io", &[]));
        assert!(is_acr("contoso.azurecr.cn", &[]));
        assert!(!is_acr("azurecr.io.evil.com", &[]));
        assert!(!is_acr("127.0.0.1:5000", &[]));
        assert!(is_acr("127.0.0.1:5000", &["127.0.0.1:5000".into()]));
    }

    #[test]
    fn grants_read_the_access_claim() {
        let t = AccessToken {
            token: Secret::new("x"),
            access: vec![("repository".into(), "r/app".into(), vec!["pull".into()])],
        };
        assert!(t.grants("r/app", "pull"));
        assert!(!t.grants("r/app", "push"));
        assert!(!t.grants("r/other", "pull"));
    }
}
