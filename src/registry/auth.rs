//! The distribution token protocol, which both the registry and notary-server speak: a 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, then a token from the realm.
//!
//! Credentials come from docker's configuration ([`Credential`]): a username and password go to
//! the realm as Basic auth (GET), an identity token (an ACR refresh token) as the
//! `refresh_token` grant (POST), a registry token is sent as the bearer itself. Tokens are kept
//! in memory per scope and never logged; with a [`TokenStore`] (ACR's keyring cache) they also
//! outlive the process, so a warm command makes no token request at all. A stored token the
//! server answers with 401 is forgotten and fetched anew.
//!
//! The realm comes from the server, so it is checked before any credential goes to it: never
//! plain HTTP when the server itself was reached over HTTPS (a downgrade, loopback included),
//! and an ACR refresh token only to its login server's own `/oauth2/token`.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use super::endpoint::Endpoint;
use crate::dockercfg::credentials::Credential;
use crate::secret::Secret;

/// Token responses larger than this are refused.
pub const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;

/// Error bodies of a token endpoint are read up to this size for their message.
const MAX_ERROR_BODY: u64 = 4096;

/// The OAuth client ID docker-trustacr names in token requests.
const CLIENT_ID: &str = "docker-trustacr";

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`
    Basic,
    /// `Bearer realm=…,service=…,scope=…`
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
        /// `scope` the server asked for, if any.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value. Quoted values may contain commas.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | ',')) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            v.push(n)
                        }
                    }
                    '"' => break,
                    _ => v.push(c),
                }
            }
            v
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.remove("realm")?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        }),
        _ => None,
    }
}

/// Errors getting a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint refused the credentials.
    #[error(
        "the token service at {realm} refused the credentials ({status}{}); log in again (`docker login`) or check your access to the repository",
        if detail.is_empty() { String::new() } else { format!(": {detail}") }
    )]
    Refused {
        /// Token endpoint.
        realm: String,
        /// HTTP status.
        status: u16,
        /// The service's message, if it gave one.
        detail: String,
    },
    /// The server named a token endpoint no credential may be sent to.
    #[error(
        "refusing to send credentials to the token service {realm} named by {server}: {why}. A registry that does this is misconfigured or hostile"
    )]
    RealmRefused {
        /// The realm, without userinfo or query.
        realm: String,
        /// The origin that named it.
        server: String,
        /// Which rule refused it.
        why: &'static str,
    },
    /// Could not reach the token endpoint.
    #[error("cannot reach the token service at {realm}: {reason}")]
    Unreachable {
        /// Token endpoint.
        realm: String,
        /// Why.
        reason: String,
    },
    /// The answer has no token.
    #[error("the token service at {realm} answered without a token")]
    NoToken {
        /// Token endpoint.
        realm: String,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
        zeroize::Zeroize::zeroize(&mut self.access_token);
    }
}

/// Where access tokens outlive the process, by an opaque key that stands for the identity and
/// the scope (see [`Authenticator::persist_tokens`]). Implementations check expiry on load and
/// treat every failure as a miss: it is only a cache.
pub trait TokenStore: Send + Sync {
    /// A still-valid token stored under `key`.
    fn load(&self, key: &str) -> Option<Secret>;
    /// Stores `token` under `key` until shortly before it expires.
    fn save(&self, key: &str, token: &Secret);
    /// Drops the token under `key` (the server refused it).
    fn forget(&self, key: &str);
}

/// Adds credentials to requests for one host, answering challenges as they come.
pub struct Authenticator {
    credential: Credential,
    tokens: Mutex<HashMap<String, Secret>>,
    /// The only token endpoint an identity token may go to (an ACR login server's).
    refresh_token_to: Option<Url>,
    /// Tokens shared with later processes.
    store: Option<Box<dyn TokenStore>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("credential", &self.credential.kind())
            .finish_non_exhaustive()
    }
}

/// What to put in the `Authorization` header.
pub enum Authorization {
    /// `Bearer <token>`
    Bearer(Secret),
    /// `Basic <base64(user:pass)>`
    Basic(Secret),
}

impl Authorization {
    /// The header value, wiped when dropped and marked sensitive so that it is never logged.
    /// Never format it.
    pub fn header_value(&self) -> reqwest::header::HeaderValue {
        let text: Zeroizing<String> = Zeroizing::new(match self {
            Authorization::Bearer(t) => format!("Bearer {}", t.expose()),
            Authorization::Basic(b) => format!("Basic {}", b.expose()),
        });
        // A token with bytes a header cannot hold is sent as nothing; the server then refuses.
        let mut value = reqwest::header::HeaderValue::from_str(&text)
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }
}

fn realm_for_messages(url: &Url) -> String {
    super::redact(url)
}

/// Why an ACR token endpoint refused: its `errors[0].message`, else the start of the body.
pub async fn error_detail(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body = super::read_limited(resp, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().chars().take(300).collect());
    (status, detail)
}

/// The refresh-token grant of the docker token protocol (and ACR's `/oauth2/token`): POSTs
/// `grant_type=refresh_token` with `service` and `scope` to `realm` and returns the access
/// token. The one implementation of it: the challenge answer and ACR's role check both use it.
pub async fn refresh_grant(
    http: &reqwest::Client,
    realm: &Url,
    service: Option<&str>,
    scope: &str,
    refresh: &Secret,
) -> Result<Secret, AuthError> {
    let realm_text = realm_for_messages(realm);
    let body = {
        // Not held across an await: the serializer is not `Send`.
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token");
        if let Some(s) = service {
            form.append_pair("service", s);
        }
        form.append_pair("scope", scope);
        form.append_pair("refresh_token", refresh.expose());
        form.append_pair("client_id", CLIENT_ID);
        Zeroizing::new(form.finish())
    };
    let resp = http
        .post(realm.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.as_bytes().to_vec())
        .send()
        .await
        .map_err(|e| AuthError::Unreachable {
            realm: realm_text.clone(),
            reason: super::describe(e),
        })?;
    read_token(resp, realm_text).await
}

/// Reads a token answer: `token` or `access_token` from a 2xx JSON body.
async fn read_token(resp: reqwest::Response, realm: String) -> Result<Secret, AuthError> {
    if !resp.status().is_success() {
        let (status, detail) = error_detail(resp).await;
        return Err(AuthError::Refused {
            realm,
            status,
            detail,
        });
    }
    let body = Zeroizing::new(
        super::read_limited(resp, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|e| AuthError::Unreachable {
                realm: realm.clone(),
                reason: e.to_string(),
            })?,
    );
    let mut parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|_| AuthError::NoToken {
            realm: realm.clone(),
        })?;
    parsed
        .token
        .take()
        .or(parsed.access_token.take())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or(AuthError::NoToken { realm })
}

impl Authenticator {
    /// An authenticator using `credential`.
    pub fn new(credential: Credential) -> Self {
        Authenticator {
            credential,
            tokens: Mutex::new(HashMap::new()),
            refresh_token_to: None,
            store: None,
        }
    }

    /// Keeps the tokens this credential gets in `store` as well, for later processes. Only a
    /// refresh token or a password identifies who asks; other credentials keep tokens in memory.
    pub fn persist_tokens(mut self, store: Box<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The key of `scope`'s token in the store: a hash of the credential and the scope, so a
    /// token is never used by another identity nor for another scope, and the store holds no
    /// credential in clear. `None` when the credential does not identify anyone.
    fn store_key(&self, scope: &str) -> Option<String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        match &self.credential {
            Credential::IdentityToken { token, .. } => {
                h.update(b"identity-token\0");
                h.update(token.expose().as_bytes());
            }
            Credential::Basic { username, password } => {
                h.update(b"basic\0");
                h.update(username.as_bytes());
                h.update(b"\0");
                h.update(password.expose().as_bytes());
            }
            Credential::Anonymous | Credential::RegistryToken(_) => return None,
        }
        h.update(b"\0");
        h.update(scope.as_bytes());
        Some(hex::encode(&h.finalize()[..16]))
    }

    /// Forgets `scope`'s token here and in the store: the server refused it.
    pub fn forget(&self, scope: &str) {
        if let Ok(mut cache) = self.tokens.lock() {
            cache.remove(scope);
        }
        if let (Some(store), Some(key)) = (&self.store, self.store_key(scope)) {
            store.forget(&key);
        }
    }

    /// Allows the identity token (an ACR refresh token) to go only to `login_server`'s own
    /// token endpoint, `<origin>/oauth2/token`, whatever realm a server names.
    pub fn refresh_token_only_to(mut self, login_server: &Endpoint) -> Self {
        self.refresh_token_to = Some(login_server.url("oauth2/token"));
        self
    }

    /// Checks the realm `server` named before a credential goes to it.
    fn check_realm(&self, realm: &str, server: &Url) -> Result<Url, AuthError> {
        let refuse = |realm: String, why| AuthError::RealmRefused {
            realm,
            server: server.origin().ascii_serialization(),
            why,
        };
        let url = Url::parse(realm).map_err(|_| refuse("<not a URL>".into(), "it is not a URL"))?;
        let shown = realm_for_messages(&url);
        if !matches!(url.scheme(), "https" | "http") {
            return Err(refuse(shown, "it is neither https nor http"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(shown, "it carries a user name or password"));
        }
        let sends_secret = !matches!(self.credential, Credential::Anonymous);
        if sends_secret && server.scheme() == "https" && url.scheme() != "https" {
            return Err(refuse(
                shown,
                "it is plain HTTP while the server was reached over HTTPS",
            ));
        }
        if let (Credential::IdentityToken { .. }, Some(allowed)) =
            (&self.credential, &self.refresh_token_to)
        {
            let same = url.origin() == allowed.origin() && url.path() == allowed.path();
            if !same {
                return Err(refuse(
                    shown,
                    "an ACR refresh token goes only to its login server's /oauth2/token",
                ));
            }
        }
        Ok(url)
    }

    /// The cached authorization for `scope`, if a challenge was answered before, in this
    /// process or (with a store) an earlier one.
    pub fn cached(&self, scope: &str) -> Option<Authorization> {
        let mut cache = self.tokens.lock().ok()?;
        if let Some(t) = cache.get(scope) {
            return Some(Authorization::Bearer(t.clone()));
        }
        let token = self.store.as_ref()?.load(&self.store_key(scope)?)?;
        cache.insert(scope.to_string(), token.clone());
        Some(Authorization::Bearer(token))
    }

    /// Seeds the token for `scope`, e.g. one already fetched to check its permissions.
    pub fn preload(&self, scope: &str, token: Secret) {
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(scope.to_string(), token);
        }
    }

    /// The credential in use.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    fn basic(&self) -> Option<Secret> {
        match &self.credential {
            Credential::Basic { username, password } => {
                let raw = Zeroizing::new(format!("{username}:{}", password.expose()));
                Some(Secret::new(
                    base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
                ))
            }
            _ => None,
        }
    }

    /// Answers `challenge`, which `server` sent, for `scope` (e.g.
    /// `repository:host/app:pull,push`).
    pub async fn answer(
        &self,
        http: &reqwest::Client,
        challenge: &Challenge,
        scope: &str,
        server: &Url,
    ) -> Result<Authorization, AuthError> {
        let (realm, service) = match challenge {
            Challenge::Basic => {
                return self
                    .basic()
                    .map(Authorization::Basic)
                    .ok_or_else(|| AuthError::Refused {
                        realm: "basic".into(),
                        status: 401,
                        detail: String::new(),
                    });
            }
            Challenge::Bearer { realm, service, .. } => (realm, service.as_deref()),
        };
        if let Credential::RegistryToken(t) = &self.credential {
            return Ok(Authorization::Bearer(t.clone()));
        }
        let realm = self.check_realm(realm, server)?;
        let realm_text = realm_for_messages(&realm);
        let token = match &self.credential {
            Credential::IdentityToken { token, .. } => {
                refresh_grant(http, &realm, service, scope, token).await?
            }
            _ => {
                let mut query: Vec<(&str, &str)> = vec![("scope", scope)];
                if let Some(s) = service {
                    query.push(("service", s));
                }
                let mut req = http.get(realm.clone()).query(&query);
                if let Some(b) = self.basic() {
                    req = req.header(
                        reqwest::header::AUTHORIZATION,
                        Authorization::Basic(b).header_value(),
                    );
                }
                let resp = req.send().await.map_err(|e| AuthError::Unreachable {
                    realm: realm_text.clone(),
                    reason: super::describe(e),
                })?;
                read_token(resp, realm_text).await?
            }
        };
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(scope.to_string(), token.clone());
        }
        if let (Some(store), Some(key)) = (&self.store, self.store_key(scope)) {
            store.save(&key, &token);
        }
        Ok(Authorization::Bearer(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://r.io/oauth2/token",service="r.io",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://r.io/oauth2/token".into(),
                service: Some("r.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
