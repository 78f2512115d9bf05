//! Azure Container Registry authentication: an Entra token is exchanged for an ACR refresh token
//! (`POST /oauth2/exchange`), which buys access tokens for exact scopes (`POST /oauth2/token`).
//!
//! The refresh token is what the engine gets as `identitytoken` and what the Notary client uses
//! with the refresh grant. It is cached in the OS keyring until shortly before its JWT `exp`,
//! keyed by the identity that obtained it (one entry per registry, holding every identity's
//! token): a second command with a client secret or federated token makes no Entra call; with
//! managed identity, az or azd it asks the source who is signed in (one local call) and skips
//! only the exchange. Access tokens are read for their `access` claim to diagnose missing roles
//! before anything is sent.

pub mod arm;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::entra::{self, EntraError, EntraOptions, jwt_claims};
use crate::keystore::{self, KeystoreError};
use crate::registry::auth::{self, AuthError, MAX_TOKEN_RESPONSE, error_detail};
use crate::registry::endpoint::{Endpoint, RegistryHost};
use crate::registry::read_limited;
use crate::secret::Secret;

pub use crate::registry::endpoint::ACR_SUFFIXES;

/// The username docker and ACR use with a refresh token as password.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Refresh tokens are renewed this long before they expire.
const REFRESH_MARGIN_SECS: i64 = 300;

/// Whether `host` is an ACR login server: by name, or listed in the plugin settings
/// (`acr_registries` in `<config dir>/trustacr.json`, for private endpoints and tests).
/// Decided on the parsed host ([`RegistryHost::is_acr`]), never on raw text.
pub fn is_acr(host: &RegistryHost, configured: &[String]) -> bool {
    host.is_acr(configured)
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
    /// The token service kept throttling (429/503) beyond what this command waits.
    #[error(transparent)]
    Throttled(AuthError),
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn exp_of(jwt: &str) -> Option<i64> {
    jwt_claims(jwt)?.get("exp")?.as_i64()
}

/// Identities whose tokens one registry's cache entry keeps; the oldest go first.
const MAX_CACHED_IDENTITIES: usize = 16;

/// One registry's cache: refresh tokens by the identity that obtained them (review #8 item 10).
/// One keyring entry per registry, so `logout` forgets every identity's token at once.
#[derive(Default, Serialize, Deserialize)]
struct RegistryCache {
    #[serde(default)]
    tokens: BTreeMap<String, CachedRefresh>,
}

/// An ACR refresh token, when it expires, and who obtained it (for messages).
#[derive(Serialize, Deserialize)]
struct CachedRefresh {
    token: String,
    exp: i64,
    #[serde(default)]
    identity: String,
}

impl Drop for CachedRefresh {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

/// The keyring entry (user name) that holds `registry`'s cache.
fn entry_name(registry: &str) -> String {
    format!("acr-refresh:{registry}")
}

fn cache_entry(registry: &str) -> Result<keyring_core::Entry, KeystoreError> {
    keyring_entry(&entry_name(registry))
}

fn keyring_entry(name: &str) -> Result<keyring_core::Entry, KeystoreError> {
    keystore::ensure_store()?;
    keyring_core::Entry::new(keystore::service(), name).map_err(|e| keystore::map_error(&e))
}

/// The text of keyring entry `name`, if there is one and it can be read.
fn read_entry(name: &str) -> Option<Zeroizing<String>> {
    keystore::read_text(name).ok().flatten()
}

/// Deletes keyring entry `name`; whether there was one.
fn delete_entry(name: &str) -> Result<bool, KeystoreError> {
    match keyring_entry(name)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(keystore::map_error(&e)),
    }
}

/// The cache key of an identity selector (see [`entra::configured_selector`]): a hash, so the
/// keyring holds no secret hash or configuration in clear.
fn cache_key(selector: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(selector.as_bytes())[..16])
}

fn load(registry: &str) -> RegistryCache {
    let Some(text) = read_entry(&entry_name(registry)) else {
        return RegistryCache::default();
    };
    // A damaged entry is only a cache: start over (its content is never echoed).
    serde_json::from_str(&text).unwrap_or_default()
}

fn cached_refresh(registry: &str, key: &str) -> Option<(Secret, String)> {
    tracing::debug!(
        "ACR refresh token cache entry {}, identity key {key}",
        entry_name(registry)
    );
    let cache = load(registry);
    let c = cache.tokens.get(key)?;
    (c.exp - REFRESH_MARGIN_SECS > now_secs())
        .then(|| (Secret::new(c.token.clone()), c.identity.clone()))
}

fn store_refresh(registry: &str, key: &str, identity: &str, token: &Secret) {
    let now = now_secs();
    let mut cache = load(registry);
    cache
        .tokens
        .retain(|_, c| c.exp - REFRESH_MARGIN_SECS > now);
    cache.tokens.insert(
        key.to_string(),
        CachedRefresh {
            token: token.expose().to_string(),
            exp: exp_of(token.expose()).unwrap_or(now + 3600),
            identity: identity.to_string(),
        },
    );
    while cache.tokens.len() > MAX_CACHED_IDENTITIES {
        let Some(oldest) = cache
            .tokens
            .iter()
            .min_by_key(|(_, c)| c.exp)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        cache.tokens.remove(&oldest);
    }
    let text = Zeroizing::new(serde_json::to_string(&cache).unwrap_or_default());
    // A cache that cannot be written only costs an Entra call next time.
    if let Err(e) = cache_entry(registry)
        .and_then(|e| e.set_password(&text).map_err(|e| keystore::map_error(&e)))
    {
        tracing::debug!("not caching the ACR refresh token: {e}");
    }
}

/// Forgets every cached refresh and access token of `registry`, whoever obtained it (logout).
pub fn forget_refresh(registry: &str) -> Result<bool, KeystoreError> {
    let refresh = delete_entry(&entry_name(registry))?;
    let access = delete_entry(&access_entry_name(registry))?;
    Ok(refresh || access)
}

/// Access tokens are used until this long before their `exp`: room for clock skew between
/// this machine and the token service, and for the request the token goes on.
const ACCESS_MARGIN_SECS: i64 = 60;

/// Access tokens one registry's entry keeps; those expiring first go first.
const MAX_CACHED_ACCESS: usize = 64;

fn access_entry_name(registry: &str) -> String {
    format!("acr-access:{registry}")
}

/// One registry's access tokens by [`auth::TokenStore`] key (a hash of identity and scope).
#[derive(Default, Serialize, Deserialize)]
struct AccessCache {
    #[serde(default)]
    tokens: BTreeMap<String, CachedAccess>,
}

#[derive(Serialize, Deserialize)]
struct CachedAccess {
    token: String,
    exp: i64,
}

impl Drop for CachedAccess {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

/// ACR access tokens shared between processes (issue #12 item 4): one keyring entry per login
/// server, read once per process, so warm commands (50 verifies at once in CI) make no
/// token-endpoint call. Keyed by identity and scope ([`auth::Authenticator::persist_tokens`]),
/// used until [`ACCESS_MARGIN_SECS`] before the token's `exp`; a token without `exp` is not kept.
/// Concurrent writers may lose each other's newest entry: that costs one token request later.
pub struct AccessTokenCache {
    registry: String,
    loaded: std::sync::Mutex<Option<AccessCache>>,
}

impl AccessTokenCache {
    /// The cache of `registry`'s access tokens.
    pub fn new(registry: &str) -> Self {
        AccessTokenCache {
            registry: registry.to_string(),
            loaded: std::sync::Mutex::new(None),
        }
    }

    fn read(&self) -> AccessCache {
        // A damaged entry is only a cache: start over (its content is never echoed).
        read_entry(&access_entry_name(&self.registry))
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Runs `f` on the entry as this process first read it.
    fn with<T>(&self, f: impl FnOnce(&AccessCache) -> T) -> Option<T> {
        let mut guard = self.loaded.lock().ok()?;
        Some(f(guard.get_or_insert_with(|| self.read())))
    }

    /// Re-reads the entry (other processes may have added tokens since), lets `f` change it,
    /// and writes it back when `f` says it changed.
    fn update(&self, f: impl FnOnce(&mut AccessCache) -> bool) {
        let Ok(mut guard) = self.loaded.lock() else {
            return;
        };
        let cache = guard.insert(self.read());
        if !f(cache) {
            return;
        }
        let text = Zeroizing::new(serde_json::to_string(cache).unwrap_or_default());
        let name = access_entry_name(&self.registry);
        // A cache that cannot be written only costs a token request next time.
        if let Err(e) = keyring_entry(&name)
            .and_then(|e| e.set_password(&text).map_err(|e| keystore::map_error(&e)))
        {
            tracing::debug!("not caching ACR access tokens in {name}: {e}");
        }
    }
}

impl auth::TokenStore for AccessTokenCache {
    fn load(&self, key: &str) -> Option<Secret> {
        let now = now_secs();
        let token = self.with(|c| {
            c.tokens
                .get(key)
                .filter(|t| t.exp - ACCESS_MARGIN_SECS > now)
                .map(|t| Secret::new(t.token.clone()))
        })??;
        tracing::debug!(
            "using a cached ACR access token ({}, key {key})",
            access_entry_name(&self.registry)
        );
        Some(token)
    }

    fn save(&self, key: &str, token: &Secret) {
        let Some(exp) = exp_of(token.expose()) else {
            return;
        };
        let now = now_secs();
        if exp - ACCESS_MARGIN_SECS <= now {
            return;
        }
        self.update(|c| {
            c.tokens.retain(|_, t| t.exp - ACCESS_MARGIN_SECS > now);
            c.tokens.insert(
                key.to_string(),
                CachedAccess {
                    token: token.expose().to_string(),
                    exp,
                },
            );
            while c.tokens.len() > MAX_CACHED_ACCESS {
                let Some(first) = c
                    .tokens
                    .iter()
                    .min_by_key(|(_, t)| t.exp)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                c.tokens.remove(&first);
            }
            true
        });
    }

    fn forget(&self, key: &str) {
        self.update(|c| c.tokens.remove(key).is_some());
    }
}

#[derive(Deserialize)]
struct RefreshResponse {
    refresh_token: Option<String>,
}

impl Drop for RefreshResponse {
    fn drop(&mut self) {
        self.refresh_token.zeroize();
    }
}

/// How a token endpoint answered a form POST.
enum Answer {
    /// 2xx with this body (it holds a token).
    Ok(Zeroizing<Vec<u8>>),
    /// Refused with this status and ACR's message.
    Refused(u16, String),
}

async fn post_form(
    http: &reqwest::Client,
    url: url::Url,
    registry: &str,
    form: &[(&str, &str)],
) -> Result<Answer, AcrError> {
    let unreachable = |reason: String| AcrError::Unreachable {
        registry: registry.to_string(),
        reason,
    };
    let shown = crate::registry::redact(&url);
    let resp = auth::send_token_request(&shown, || http.post(url.clone()).form(form))
        .await
        .map_err(|e| match e {
            AuthError::Unreachable { reason, .. } => unreachable(reason),
            other => AcrError::Throttled(other),
        })?;
    if !resp.status().is_success() {
        let (status, detail) = error_detail(resp).await;
        return Ok(Answer::Refused(status, detail));
    }
    read_limited(resp, MAX_TOKEN_RESPONSE)
        .await
        .map(|body| Answer::Ok(Zeroizing::new(body)))
        .map_err(|e| unreachable(e.to_string()))
}

/// The ACR refresh token for `registry`: from the keyring cache while it is valid, otherwise
/// by signing in to Entra and exchanging the token at `login_server`.
///
/// The cache is keyed by the identity that obtained the token. For a client secret or a
/// federated token file the configuration fixes the identity, so a cached token is used before
/// signing in. For managed identity, az and azd only the token says who is signed in, so the
/// Entra token is fetched first (one local call) and only the exchange is saved: after `az
/// login` as someone else, or `az logout`, the previous identity's token is never used.
pub async fn refresh_token(
    http: &reqwest::Client,
    login_server: &Endpoint,
    registry: &str,
    opts: &EntraOptions,
) -> Result<Secret, AcrError> {
    if let Some(selector) = entra::configured_selector(opts)
        && let Some(t) = use_cached(registry, &selector)
    {
        return Ok(t);
    }
    let entra_http = entra::entra_client().map_err(|e| AcrError::Unreachable {
        registry: registry.to_string(),
        reason: e.to_string(),
    })?;
    let entra = entra::acr_token(opts, entra_http).await?;
    if let Some(selector) = &entra.selector
        && let Some(t) = use_cached(registry, selector)
    {
        return Ok(t);
    }
    let tenant = entra.tenant.clone().unwrap_or_default();
    let mut form = vec![
        ("grant_type", "access_token"),
        ("service", registry),
        ("access_token", entra.token.expose()),
    ];
    if !tenant.is_empty() {
        form.push(("tenant", &tenant));
    }
    let url = login_server.url("oauth2/exchange");
    let body = match post_form(http, url, registry, &form).await? {
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
        .and_then(|mut r| r.refresh_token.take())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| AcrError::Unreachable {
            registry: registry.to_string(),
            reason: "the exchange answered without a refresh token".into(),
        })?;
    if let Some(selector) = &entra.selector {
        let who = entra
            .identity
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_default();
        store_refresh(registry, &cache_key(selector), &who, &token);
    }
    Ok(token)
}

/// The cached refresh token of the identity `selector` names, if still valid.
fn use_cached(registry: &str, selector: &str) -> Option<Secret> {
    let (t, who) = cached_refresh(registry, &cache_key(selector))?;
    tracing::debug!("using the cached ACR refresh token for {registry}");
    tracing::info!("using the cached ACR refresh token of {who} for {registry}");
    Some(t)
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

/// Gets an access token for `scope` with the refresh grant at `login_server`'s
/// `/oauth2/token` (the one grant implementation, [`auth::refresh_grant`]).
pub async fn access_token(
    http: &reqwest::Client,
    login_server: &Endpoint,
    registry: &str,
    refresh: &Secret,
    scope: &str,
) -> Result<AccessToken, AcrError> {
    let url = login_server.url("oauth2/token");
    let token = auth::refresh_grant(http, &url, Some(registry), scope, refresh)
        .await
        .map_err(|e| match e {
            AuthError::Refused { status, detail, .. } => AcrError::TokenRefused {
                registry: registry.to_string(),
                scope: scope.to_string(),
                status,
                detail,
            },
            AuthError::NoToken { .. } => AcrError::Unreachable {
                registry: registry.to_string(),
                reason: "the token service answered without an access token".into(),
            },
            throttled @ AuthError::Throttled { .. } => AcrError::Throttled(throttled),
            other => AcrError::Unreachable {
                registry: registry.to_string(),
                reason: other.to_string(),
            },
        })?;
    let access = jwt_claims(token.expose())
        .and_then(|c| c.get("access").cloned())
        .map(|a| access_entries(&a))
        .unwrap_or_default();
    Ok(AccessToken { token, access })
}

/// An access token with `push` on repository `name` (a registry repository or a Notary GUN),
/// or `None` when the identity lacks the role for it.
///
/// Whether ACR answers a missing role with a token for the allowed subset of the actions or by
/// refusing the token is not documented (tests/acr-emulator/ASSUMPTIONS.md): a token without
/// `push` and a 401/403 for `pull,push` both mean the role is missing, once a `pull` token for
/// the same repository shows that the refresh token itself is still accepted.
pub async fn push_access(
    http: &reqwest::Client,
    login_server: &Endpoint,
    registry: &str,
    refresh: &Secret,
    name: &str,
) -> Result<Option<AccessToken>, AcrError> {
    let scope = format!("repository:{name}:pull,push");
    match access_token(http, login_server, registry, refresh, &scope).await {
        Ok(t) if t.grants(name, "push") => Ok(Some(t)),
        Ok(_) => Ok(None),
        Err(
            refused @ AcrError::TokenRefused {
                status: 401 | 403, ..
            },
        ) => {
            // A refused `pull` too may mean no role at all on the repository (a token
            // service that refuses rather than grants a subset refuses both): still the
            // missing role, whose message also says to sign in again in case the refresh token
            // itself is what was refused. Anything but a refusal is reported as it is.
            let pull = format!("repository:{name}:pull");
            match access_token(http, login_server, registry, refresh, &pull).await {
                Ok(_)
                | Err(AcrError::TokenRefused {
                    status: 401 | 403, ..
                }) => Ok(None),
                Err(_) => Err(refused),
            }
        }
        Err(e) => Err(e),
    }
}

/// The `(type, name, actions)` entries of an `access` claim. Keys are matched ignoring case
/// (`Type`, `NAME`), as the Go registry and notary-server read them (Go's JSON decoding ignores
/// case), so a token service that capitalises them is understood the way the servers
/// understand it. Malformed entries are skipped: they grant nothing.
pub fn access_entries(claim: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let field = |entry: &serde_json::Map<String, serde_json::Value>, key: &str| {
        entry
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let entries = claim.as_array().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let e = e.as_object()?;
            let typ = field(e, "type")?.as_str()?.to_string();
            let name = field(e, "name")?.as_str()?.to_string();
            let actions = match field(e, "actions") {
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            Some((typ, name, actions))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_registries_are_recognised_by_suffix_or_setting() {
        let h = |s: &str| RegistryHost::parse(s).unwrap();
        assert!(is_acr(&h("contoso.azurecr.io"), &[]));
        assert!(is_acr(&h("contoso.azurecr.cn"), &[]));
        assert!(!is_acr(&h("azurecr.io.evil.com"), &[]));
        assert!(!is_acr(&h("127.0.0.1:5000"), &[]));
        assert!(is_acr(&h("127.0.0.1:5000"), &["127.0.0.1:5000".into()]));
    }

    #[test]
    fn access_claim_keys_are_read_ignoring_case_and_bad_entries_grant_nothing() {
        let claim = serde_json::json!([
            {"Type": "repository", "NAME": "r/app", "Actions": ["pull", "push"]},
            {"type": "repository", "name": 5, "actions": ["push"]},
            "junk",
        ]);
        let e = access_entries(&claim);
        assert_eq!(
            e,
            vec![(
                "repository".to_string(),
                "r/app".to_string(),
                vec!["pull".to_string(), "push".to_string()]
            )]
        );
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
