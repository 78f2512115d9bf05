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
use std::time::Duration;

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
    /// Still throttled (429) or unavailable (503) after the waits it asked for, or it asked
    /// for a wait longer than this command waits.
    #[error("the token service at {realm} answered {status} ({}) {}", status_text(*.status), throttled_advice(.retry_after.as_ref(), *.attempts, *.stop))]
    Throttled {
        /// Token endpoint.
        realm: String,
        /// 429 or 503.
        status: u16,
        /// What its last `Retry-After` asked for, if anything readable.
        retry_after: Option<Duration>,
        /// Requests sent.
        attempts: u32,
        /// Why no further request was sent.
        stop: ThrottleStop,
    },
}

/// Why a throttled token request was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleStop {
    /// [`MAX_TOKEN_ATTEMPTS`] requests were sent.
    Attempts,
    /// The service asked for more than [`MAX_RETRY_WAIT`], or for nothing readable.
    TooLong,
    /// The wait would end after the whole-command timeout.
    Deadline,
}

fn status_text(status: u16) -> &'static str {
    if status == 429 {
        "too many requests"
    } else {
        "service unavailable"
    }
}

fn throttled_advice(retry_after: Option<&Duration>, attempts: u32, stop: ThrottleStop) -> String {
    let tries = if attempts > 1 {
        format!("to each of {attempts} requests")
    } else {
        "to the request".to_string()
    };
    let Some(d) = retry_after else {
        return format!("{tries} without saying when to retry (no Retry-After); try again later");
    };
    let secs = d.as_secs();
    match stop {
        ThrottleStop::Attempts => {
            format!("{tries}, the last asking to retry in {secs} s (Retry-After); try again then")
        }
        ThrottleStop::TooLong => format!(
            "{tries} and asks to retry in {secs} s (Retry-After), longer than docker trustacr waits ({} s); try again in {secs} s",
            MAX_RETRY_WAIT.as_secs()
        ),
        ThrottleStop::Deadline => format!(
            "{tries} and asks to retry in {secs} s (Retry-After), after the command's {} ends; try again in {secs} s, or raise {}",
            crate::timeouts::COMMAND_ENV,
            crate::timeouts::COMMAND_ENV
        ),
    }
}

/// The longest `Retry-After` a token request waits for; a longer one fails at once, naming it.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Token requests sent at most, the first included, while the service answers 429 or 503.
pub const MAX_TOKEN_ATTEMPTS: u32 = 4;

/// The wait after a 429 that gives no `Retry-After`.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(1);

/// A `Retry-After` value (RFC 9110 §10.2.3): whole seconds, or an HTTP-date (IMF-fixdate, the
/// form servers must send) counted from `now`; a date in the past means now. Anything else, a
/// negative or fractional number included, is `None`. Huge values saturate; the caller caps.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: too many for u64 is still "a very long time".
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let date = time::PrimitiveDateTime::parse(v, HTTP_DATE)
        .ok()?
        .assume_utc();
    let at = std::time::SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(
        u64::try_from(date.unix_timestamp()).ok()?,
    ))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Sends a token request built by `make`, waiting out a 429 (or a 503 that says when to come
/// back) as long as the service asks for at most [`MAX_RETRY_WAIT`], the wait ends before the
/// whole-command timeout, and fewer than [`MAX_TOKEN_ATTEMPTS`] requests were sent. Other
/// answers are returned as they are.
pub async fn send_token_request(
    realm: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, AuthError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let resp = make().send().await.map_err(|e| AuthError::Unreachable {
            realm: realm.to_string(),
            reason: super::describe(e),
        })?;
        let status = resp.status().as_u16();
        if status != 429 && status != 503 {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let wait = match (status, retry_after) {
            (_, Some(d)) => Some(d),
            (429, None) => Some(DEFAULT_THROTTLE_WAIT),
            // A 503 without Retry-After is an outage, not a queue: report it as it is.
            _ => return Ok(resp),
        };
        let stop = match wait {
            _ if attempts >= MAX_TOKEN_ATTEMPTS => Some(ThrottleStop::Attempts),
            Some(d) if d > MAX_RETRY_WAIT => Some(ThrottleStop::TooLong),
            Some(d) if crate::timeouts::remaining().is_some_and(|left| d >= left) => {
                Some(ThrottleStop::Deadline)
            }
            Some(_) => None,
            None => Some(ThrottleStop::TooLong),
        };
        if let Some(stop) = stop {
            return Err(AuthError::Throttled {
                realm: realm.to_string(),
                status,
                retry_after,
                attempts,
                stop,
            });
        }
        let d = wait.unwrap_or(DEFAULT_THROTTLE_WAIT);
        tracing::info!(
            "the token service at {realm} answered {status}; retrying in {} ms as it asks",
            d.as_millis()
        );
        tokio::time::sleep(d).await;
    }
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
    let resp = send_token_request(&realm_text, || {
        http.post(realm.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.as_bytes().to_vec())
    })
    .await?;
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
                let resp = send_token_request(&realm_text, || {
                    let mut req = http.get(realm.clone()).query(&query);
                    if let Some(b) = self.basic() {
                        req = req.header(
                            reqwest::header::AUTHORIZATION,
                            Authorization::Basic(b).header_value(),
                        );
                    }
                    req
                })
                .await?;
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
    fn retry_after_reads_seconds_and_http_dates_and_refuses_the_rest() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        let secs = |v: &str| parse_retry_after(v, now).map(|d| d.as_secs());
        assert_eq!(secs("0"), Some(0));
        assert_eq!(secs(" 7 "), Some(7));
        assert_eq!(secs("Sun, 06 Nov 1994 08:49:47 GMT"), Some(10));
        assert_eq!(secs("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
        // A date in the past: retry now.
        assert_eq!(secs("Sat, 05 Nov 1994 08:49:37 GMT"), Some(0));
        // Huge: saturates, so the caller's cap refuses it rather than wrapping to a short wait.
        assert_eq!(secs("99999999999999999999999999"), Some(u64::MAX));
        assert_eq!(
            secs("Fri, 31 Dec 9999 23:59:59 GMT").map(|s| s > 10),
            Some(true)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "+3",
            "0x10",
            "soon",
            "7 s",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "\u{0}",
        ] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
    }

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
