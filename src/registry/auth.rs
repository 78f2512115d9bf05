//! The distribution token protocol, which both the registry and notary-server speak: a 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, then a token from the realm.
//!
//! Credentials come from docker's configuration ([`Credential`]): a username and password go to
//! the realm as Basic auth (GET), an identity token (an ACR refresh token) as the
//! `refresh_token` grant (POST), a registry token is sent as the bearer itself. Tokens are kept
//! in memory per scope and never logged.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde::Deserialize;

use crate::dockercfg::credentials::Credential;
use crate::secret::Secret;

/// Token responses larger than this are refused.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

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
        "the token service at {realm} refused the credentials ({status}); log in again (`docker login`) or check your access to the repository"
    )]
    Refused {
        /// Token endpoint.
        realm: String,
        /// HTTP status.
        status: u16,
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

/// Adds credentials to requests for one host, answering challenges as they come.
pub struct Authenticator {
    credential: Credential,
    tokens: Mutex<HashMap<String, Secret>>,
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
    /// The header value. Never log it.
    pub fn header_value(&self) -> String {
        match self {
            Authorization::Bearer(t) => format!("Bearer {}", t.expose()),
            Authorization::Basic(b) => format!("Basic {}", b.expose()),
        }
    }
}

impl Authenticator {
    /// An authenticator using `credential`.
    pub fn new(credential: Credential) -> Self {
        Authenticator {
            credential,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The cached authorization for `scope`, if a challenge was answered before.
    pub fn cached(&self, scope: &str) -> Option<Authorization> {
        self.tokens
            .lock()
            .ok()?
            .get(scope)
            .cloned()
            .map(Authorization::Bearer)
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
            Credential::Basic { username, password } => Some(Secret::new(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose())),
            )),
            _ => None,
        }
    }

    /// Answers `challenge` for `scope` (e.g. `repository:host/app:pull,push`).
    pub async fn answer(
        &self,
        http: &reqwest::Client,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<Authorization, AuthError> {
        let (realm, service) = match challenge {
            Challenge::Basic => {
                return self
                    .basic()
                    .map(Authorization::Basic)
                    .ok_or_else(|| AuthError::Refused {
                        realm: "basic".into(),
                        status: 401,
                    });
            }
            Challenge::Bearer { realm, service, .. } => (realm.clone(), service.clone()),
        };
        if let Credential::RegistryToken(t) = &self.credential {
            return Ok(Authorization::Bearer(t.clone()));
        }
        let unreachable = |e: reqwest::Error| AuthError::Unreachable {
            realm: realm.clone(),
            reason: e.without_url().to_string(),
        };
        let mut query: Vec<(&str, String)> = vec![("scope", scope.to_string())];
        if let Some(s) = &service {
            query.push(("service", s.clone()));
        }
        let request = match &self.credential {
            Credential::IdentityToken { token, .. } => {
                let mut form = query.clone();
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", token.expose().to_string()));
                form.push(("client_id", "docker-trustacr".into()));
                http.post(&realm).form(&form)
            }
            _ => {
                let mut req = http.get(&realm).query(&query);
                if let Some(b) = self.basic() {
                    req = req.header(
                        reqwest::header::AUTHORIZATION,
                        format!("Basic {}", b.expose()),
                    );
                }
                req
            }
        };
        let resp = request.send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(AuthError::Refused {
                realm,
                status: status.as_u16(),
            });
        }
        let body = super::read_limited(resp, MAX_TOKEN_RESPONSE as u64)
            .await
            .map_err(|e| AuthError::Unreachable {
                realm: realm.clone(),
                reason: e.to_string(),
            })?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| AuthError::NoToken {
                realm: realm.clone(),
            })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or(AuthError::NoToken { realm })?;
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(scope.to_string(), token.clone());
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
