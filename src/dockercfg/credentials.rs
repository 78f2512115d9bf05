//! Registry credentials from docker's configuration, found as the docker CLI finds them
//! (`cli/config/configfile/file.go`, `credentials/native_store.go`):
//! `credHelpers[host]`, else `credsStore`, else the inline `auths` entry.
//!
//! A credential helper is the program `docker-credential-<name>`; `get` takes the server on stdin
//! and answers `{"ServerURL","Username","Secret"}` on stdout. Username `<token>` marks the secret
//! as an identity (refresh) token. Secrets are wrapped in [`Secret`] at once and never logged.

use std::fmt;
use std::process::Stdio;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ConfigFile, JsonProblem};
use crate::secret::Secret;

/// The `auths` key docker uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A helper's answer larger than this is not a credential.
const MAX_HELPER_OUTPUT: u64 = 1024 * 1024;

/// The username docker's native stores use to mark an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// What to authenticate to a registry with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing configured.
    Anonymous,
    /// Username and password (or an ACR token name and password).
    Basic {
        /// Username.
        username: String,
        /// Password.
        password: Secret,
    },
    /// A refresh token for the registry's token service (ACR refresh tokens are these).
    IdentityToken {
        /// Username stored with it, if any.
        username: Option<String>,
        /// The token.
        token: Secret,
    },
    /// A bearer token sent to the registry unchanged.
    RegistryToken(Secret),
}

impl Credential {
    /// A short description without the secret, for `info` and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Anonymous => "anonymous",
            Credential::Basic { .. } => "username and password",
            Credential::IdentityToken { .. } => "identity token",
            Credential::RegistryToken(_) => "registry token",
        }
    }

    /// The username, when there is one to show.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Basic { username, .. } => Some(username),
            Credential::IdentityToken { username, .. } => username.as_deref(),
            _ => None,
        }
    }
}

/// Where a credential came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CredentialSource {
    /// `auths[key]` in config.json.
    ConfigFile {
        /// The `auths` key that matched.
        key: String,
    },
    /// `credHelpers[host]` in config.json.
    CredHelper {
        /// The helper suffix.
        helper: String,
    },
    /// `credsStore` in config.json.
    CredsStore {
        /// The helper suffix.
        helper: String,
    },
    /// No credential configured for this registry.
    None,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::ConfigFile { key } => write!(f, "config.json auths[{key:?}]"),
            CredentialSource::CredHelper { helper } => {
                write!(f, "credHelpers: docker-credential-{helper}")
            }
            CredentialSource::CredsStore { helper } => {
                write!(f, "credsStore: docker-credential-{helper}")
            }
            CredentialSource::None => f.write_str("none configured"),
        }
    }
}

/// A credential and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCredential {
    /// The credential.
    pub credential: Credential,
    /// Its source.
    pub source: CredentialSource,
}

/// Errors getting a registry credential.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The helper program could not be started.
    #[error(
        "cannot run credential helper docker-credential-{helper}: {source}; install it or remove it from config.json"
    )]
    HelperMissing {
        /// Helper suffix.
        helper: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The helper failed.
    #[error("credential helper docker-credential-{helper} failed for {server}: {message}")]
    HelperFailed {
        /// Helper suffix.
        helper: String,
        /// The registry asked for.
        server: String,
        /// What it printed (helpers print errors on stdout).
        message: String,
    },
    /// The helper's answer could not be read.
    #[error("cannot read the answer of credential helper docker-credential-{helper}: {source}")]
    HelperRead {
        /// Helper suffix.
        helper: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The helper's answer is not the protocol's JSON.
    #[error("credential helper docker-credential-{helper} answered with invalid JSON: {at}")]
    HelperOutput {
        /// Helper suffix.
        helper: String,
        /// What kind of problem, and where; never the answer's text, which holds the secret.
        at: JsonProblem,
    },
    /// An `auths` entry is malformed.
    #[error(
        "config.json auths[{key:?}] has an invalid \"auth\" value: {reason}; log in again with `docker login`"
    )]
    BadAuthEntry {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The config key docker uses for a registry host (`docker.io` becomes Docker Hub's key).
pub fn config_key(registry_host: &str) -> String {
    match registry_host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// docker's `ConvertToHostname`: strips a scheme and any path from an `auths` key.
fn convert_to_hostname(key: &str) -> &str {
    let stripped = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    stripped.split('/').next().unwrap_or(stripped)
}

/// Finds the credential for `registry_host` (`myreg.azurecr.io`, `127.0.0.1:5000`).
pub async fn resolve(
    config: &ConfigFile,
    registry_host: &str,
) -> Result<ResolvedCredential, CredentialError> {
    let key = config_key(registry_host);
    if let Some(helper) = config.cred_helpers.get(&key).or_else(|| {
        config
            .cred_helpers
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == registry_host)
            .map(|(_, v)| v)
    }) {
        let credential = helper_get(helper, &key).await?;
        return Ok(ResolvedCredential {
            credential,
            source: CredentialSource::CredHelper {
                helper: helper.clone(),
            },
        });
    }
    if let Some(helper) = config.creds_store.as_ref().filter(|h| !h.is_empty()) {
        let credential = helper_get(helper, &key).await?;
        return Ok(ResolvedCredential {
            credential,
            source: CredentialSource::CredsStore {
                helper: helper.clone(),
            },
        });
    }
    from_auths(config, &key, registry_host)
}

fn from_auths(
    config: &ConfigFile,
    key: &str,
    registry_host: &str,
) -> Result<ResolvedCredential, CredentialError> {
    let found = config.auths.get_key_value(key).or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == registry_host)
    });
    let Some((found_key, entry)) = found else {
        return Ok(ResolvedCredential {
            credential: Credential::Anonymous,
            source: CredentialSource::None,
        });
    };
    let (mut username, mut password) = (
        entry.username.clone(),
        entry.password.clone().map(Secret::new),
    );
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = |reason: String| CredentialError::BadAuthEntry {
            key: found_key.clone(),
            reason,
        };
        // Not the decoder's message: it names a byte of the secret and where it is.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("not base64".into()))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("not UTF-8".into()))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad("expected user:password".into()))?;
        username = Some(u.to_string());
        password = Some(Secret::new(p));
    }
    let credential = if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        Credential::IdentityToken {
            username: username.filter(|u| !u.is_empty()),
            token: Secret::new(t),
        }
    } else if let Some(t) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
        Credential::RegistryToken(Secret::new(t))
    } else {
        match (username, password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Credential::Basic { username, password }
            }
            _ => Credential::Anonymous,
        }
    };
    Ok(ResolvedCredential {
        credential,
        source: CredentialSource::ConfigFile {
            key: found_key.clone(),
        },
    })
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The credential helper docker would use for `registry_host`: `credHelpers[host]`, else
/// `credsStore`.
pub fn configured_helper(config: &ConfigFile, registry_host: &str) -> Option<String> {
    let key = config_key(registry_host);
    config
        .cred_helpers
        .get(&key)
        .cloned()
        .or_else(|| config.creds_store.clone().filter(|h| !h.is_empty()))
}

/// Runs `docker-credential-<helper> <action>` for `server` with `input` on stdin; returns
/// stdout. Helpers print their errors on stdout, so a failure carries that text.
async fn helper_call(
    helper: &str,
    action: &str,
    server: &str,
    input: &[u8],
) -> Result<Vec<u8>, CredentialError> {
    let missing = |source| CredentialError::HelperMissing {
        helper: helper.to_string(),
        source,
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Helpers talk to the user on stderr (e.g. `pass` asking for a GPG passphrase).
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is judged by its exit status below.
        let _ = stdin.write_all(input).await;
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_HELPER_OUTPUT)
            .read_to_end(&mut out)
            .await
            .map_err(|source| CredentialError::HelperRead {
                helper: helper.to_string(),
                source,
            })?;
    }
    let status = child.wait().await.map_err(missing)?;
    if !status.success() {
        return Err(CredentialError::HelperFailed {
            helper: helper.to_string(),
            server: server.to_string(),
            message: failure_message(&out, status),
        });
    }
    Ok(out)
}

/// Longest helper error line shown; the protocol's errors are one short sentence.
const MAX_SHOWN_HELPER_ERROR: usize = 200;

/// What to show of a failed helper's stdout. Helpers print their errors there as one line of
/// text (`credentials not found in native keychain`), but a broken or hostile one may print the
/// credential itself: anything that looks like JSON or names a secret is withheld (#8 item 7).
fn failure_message(out: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(out);
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return format!("{status}");
    }
    let looks_like_credentials = text.contains('{') || text.to_lowercase().contains("secret");
    if looks_like_credentials {
        return format!("{status}; its output is not shown because it may hold a credential");
    }
    match line.char_indices().nth(MAX_SHOWN_HELPER_ERROR) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// Stores an identity (refresh) token through a credential helper, as `docker login` and
/// `az acr login` do: username `<token>` marks the secret as an identity token.
pub async fn helper_store_identity_token(
    helper: &str,
    server: &str,
    token: &Secret,
) -> Result<(), CredentialError> {
    let payload = serde_json::json!({
        "ServerURL": server,
        "Username": TOKEN_USERNAME,
        "Secret": token.expose(),
    });
    let bytes = zeroize::Zeroizing::new(payload.to_string().into_bytes());
    helper_call(helper, "store", server, &bytes)
        .await
        .map(|_| ())
}

/// Erases `server`'s credential from a helper; a missing one is not an error.
pub async fn helper_erase(helper: &str, server: &str) -> Result<(), CredentialError> {
    match helper_call(helper, "erase", server, server.as_bytes()).await {
        Err(CredentialError::HelperFailed { message, .. }) if message.contains("not found") => {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// Runs `docker-credential-<helper> get` for `server`.
async fn helper_get(helper: &str, server: &str) -> Result<Credential, CredentialError> {
    let out = match helper_call(helper, "get", server, server.as_bytes()).await {
        Ok(out) => out,
        // docker-credential-helpers' ErrCredentialsNotFound: not an error, just no credential.
        Err(CredentialError::HelperFailed { message, .. })
            if message.contains("credentials not found") =>
        {
            return Ok(Credential::Anonymous);
        }
        Err(e) => return Err(e),
    };
    let answer: HelperAnswer =
        serde_json::from_slice(&out).map_err(|e| CredentialError::HelperOutput {
            helper: helper.to_string(),
            at: JsonProblem::from(&e),
        })?;
    Ok(if answer.secret.is_empty() {
        Credential::Anonymous
    } else if answer.username == TOKEN_USERNAME {
        Credential::IdentityToken {
            username: None,
            token: Secret::new(answer.secret),
        }
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn auth_field_decodes_to_basic_credentials() {
        // base64("alice:s3cret")
        let cfg = config(r#"{"auths":{"r.example:5000":{"auth":"YWxpY2U6czNjcmV0"}}}"#);
        let r = resolve(&cfg, "r.example:5000").await.unwrap();
        assert_eq!(
            r.credential,
            Credential::Basic {
                username: "alice".into(),
                password: Secret::new("s3cret")
            }
        );
        assert_eq!(
            r.source,
            CredentialSource::ConfigFile {
                key: "r.example:5000".into()
            }
        );
    }

    #[tokio::test]
    async fn identity_token_wins_over_password_as_in_docker() {
        let cfg = config(
            r#"{"auths":{"https://x.azurecr.io":{"auth":"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==","identitytoken":"rt"}}}"#,
        );
        let r = resolve(&cfg, "x.azurecr.io").await.unwrap();
        assert_eq!(
            r.credential,
            Credential::IdentityToken {
                username: Some("00000000-0000-0000-0000-000000000000".into()),
                token: Secret::new("rt")
            }
        );
    }

    #[tokio::test]
    async fn registry_token_and_anonymous() {
        let cfg = config(r#"{"auths":{"a.io":{"registrytoken":"bt"},"b.io":{}}}"#);
        assert_eq!(
            resolve(&cfg, "a.io").await.unwrap().credential,
            Credential::RegistryToken(Secret::new("bt"))
        );
        let r = resolve(&cfg, "b.io").await.unwrap();
        assert_eq!(r.credential, Credential::Anonymous);
        let r = resolve(&cfg, "c.io").await.unwrap();
        assert_eq!(r.source, CredentialSource::None);
    }

    #[tokio::test]
    async fn malformed_auth_names_the_entry_and_the_fix() {
        let cfg = config(r#"{"auths":{"a.io":{"auth":"%%%"}}}"#);
        let err = resolve(&cfg, "a.io").await.unwrap_err().to_string();
        assert!(
            err.contains("a.io") && err.contains("docker login"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_helper_is_an_error_naming_the_program() {
        let cfg = config(r#"{"credsStore":"does-not-exist-xyz"}"#);
        let err = resolve(&cfg, "a.io").await.unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-does-not-exist-xyz"),
            "{err}"
        );
    }

    #[test]
    fn docker_hub_aliases_share_one_key() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("x.azurecr.io"), "x.azurecr.io");
        assert_eq!(convert_to_hostname("https://x.io/v2/"), "x.io");
    }
}
