//! Microsoft Entra ID sign-in: the credential chain that gets a token for ACR
//! (`https://containerregistry.azure.net/.default`) or any other scope, built from
//! azure_identity's credentials (azure_identity 1.0 has no DefaultAzureCredential) and from the
//! developer tools, which we run ourselves so that each run is bounded (`tool.rs`).
//!
//! Order: a client secret (AZURE_CLIENT_SECRET, with --tenant/--client-id or their variables),
//! workload identity (AZURE_FEDERATED_TOKEN_FILE), managed identity (when its environment is
//! present or it is asked for), then the Azure CLI and azd. `--credential NAME` picks one. A
//! source that is not configured, not installed, not signed in or unreachable is skipped; a
//! source that is there and fails stops the chain with its error, so a refused credential never
//! becomes another identity. When no source is available, the error lists each and why.
//! Tokens are [`Secret`]s and never logged; the identity used (tenant, object ID from the
//! token's claims) is logged at info level.

mod http;
mod tool;

pub use http::entra_client;
pub use tool::{MAX_STDOUT, TIMEOUT_ENV};

use std::sync::Arc;

use zeroize::Zeroizing;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions, Transport};

use crate::secret::Secret;

/// The scope of Entra tokens ACR accepts in both of its audience modes.
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

/// A credential source, as `--credential` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (or --tenant/--client-id).
    ClientSecret,
    /// `AZURE_FEDERATED_TOKEN_FILE` (Kubernetes workload identity, GitHub OIDC).
    WorkloadIdentity,
    /// The managed identity of the Azure host.
    ManagedIdentity,
    /// `az account get-access-token`.
    AzureCli,
    /// `azd auth token`.
    Azd,
}

impl SourceKind {
    fn name(self) -> &'static str {
        match self {
            SourceKind::ClientSecret => "client secret (AZURE_CLIENT_SECRET)",
            SourceKind::WorkloadIdentity => "workload identity (AZURE_FEDERATED_TOKEN_FILE)",
            SourceKind::ManagedIdentity => "managed identity",
            SourceKind::AzureCli => "Azure CLI (az)",
            SourceKind::Azd => "Azure Developer CLI (azd)",
        }
    }
}

/// Sign-in options from the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EntraOptions {
    /// Entra tenant ID (overrides AZURE_TENANT_ID).
    #[arg(long, global = true, value_name = "ID")]
    pub tenant: Option<String>,
    /// Application (client) ID of a service principal or user-assigned identity (overrides
    /// AZURE_CLIENT_ID).
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// Use only this credential source.
    #[arg(long, global = true, value_enum, value_name = "NAME")]
    pub credential: Option<SourceKind>,
}

/// Who a token was issued to: its tenant (`tid`) and object ID (`oid`; an application's `appid`
/// when a token has no `oid`). Read from the token's claims, never the token itself, so it can be
/// logged and used as a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Tenant ID.
    pub tenant: String,
    /// Object ID of the user, service principal or managed identity.
    pub object: String,
}

impl Identity {
    /// The identity an Entra access token names, if its claims say.
    pub fn of_token(jwt: &str) -> Option<Identity> {
        let claims = jwt_claims(jwt)?;
        let s = |k: &str| {
            claims
                .get(k)?
                .as_str()
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        Some(Identity {
            tenant: s("tid")?,
            object: s("oid").or_else(|| s("appid")).or_else(|| s("azp"))?,
        })
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tenant {}, object {}", self.tenant, self.object)
    }
}

/// An Entra access token and where it came from.
#[derive(Debug, Clone)]
pub struct EntraToken {
    /// The token.
    pub token: Secret,
    /// The source that produced it.
    pub source: &'static str,
    /// The tenant, when known (ACR's exchange takes it).
    pub tenant: Option<String>,
    /// Who the token was issued to, from its claims.
    pub identity: Option<Identity>,
    /// What selects this identity, for caches keyed by identity: the configuration for a client
    /// secret or workload identity (see [`configured_selector`]), else the token's identity;
    /// `None` when the token does not say who it is (then nothing may be cached for it).
    pub selector: Option<String>,
}

/// Sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    /// A configured source failed; the chain stopped there rather than sign in as someone else.
    #[error(
        "cannot sign in to Microsoft Entra ID: {source_name} failed: {reason}{}",
        if *.chosen { "" } else { "\nThe other credential sources were not tried, so that a failing credential never silently becomes another identity. Fix it, unset it, or choose a source with --credential" }
    )]
    Refused {
        /// The source that failed.
        source_name: &'static str,
        /// Why.
        reason: String,
        /// Whether `--credential` chose this source (then there was no chain to stop).
        chosen: bool,
    },
    /// No source is available.
    #[error("cannot sign in to Microsoft Entra ID; tried:\n{}\nSet AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, use workload or managed identity, or run `az login`", attempts_text(.attempts))]
    Unavailable {
        /// Each source tried and why it was not available.
        attempts: Vec<(&'static str, String)>,
    },
}

/// Why one source gave no token.
#[derive(Debug)]
pub enum Failure {
    /// Not configured, not installed, not signed in, or its endpoint unreachable: the chain
    /// moves on to the next source.
    Unavailable(String),
    /// Configured and present, but it failed (a wrong secret, a refused assertion, a tool
    /// error): the chain stops with this error.
    Refused(String),
}

fn attempts_text(attempts: &[(&'static str, String)]) -> String {
    attempts
        .iter()
        .map(|(s, why)| format!("  - {s}: {why}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// First line of an azure_core error, without the SDK's troubleshooting link, which repeats
/// for every source.
fn short(e: &azure_core::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.contains("To troubleshoot, visit"))
        .unwrap_or(&text);
    line.trim().to_string()
}

/// One source of the chain, ready to ask for a token.
enum Source {
    /// An azure_identity credential.
    Sdk(Arc<dyn TokenCredential>),
    /// A developer tool we run ourselves, bounded.
    Tool(tool::Tool),
}

/// Tenant and client ID from the options or the environment.
fn tenant_and_client(opts: &EntraOptions) -> (Option<String>, Option<String>) {
    (
        opts.tenant.clone().or_else(|| var("AZURE_TENANT_ID")),
        opts.client_id.clone().or_else(|| var("AZURE_CLIENT_ID")),
    )
}

/// Whether `kind` is configured in this environment, and so joins the chain. A client secret
/// without its tenant or client ID is configured and then fails, stopping the chain: the SDKs'
/// EnvironmentCredential would skip it, but a secret in the environment says which identity the
/// user meant, and another one must not sign in its place.
fn configured(opts: &EntraOptions, kind: SourceKind) -> bool {
    if !opts.credential.is_none_or(|c| c == kind) {
        return false;
    }
    let forced = opts.credential == Some(kind);
    match kind {
        SourceKind::ClientSecret => forced || var("AZURE_CLIENT_SECRET").is_some(),
        SourceKind::WorkloadIdentity => forced || var("AZURE_FEDERATED_TOKEN_FILE").is_some(),
        // Probing IMDS off Azure costs seconds, so managed identity joins the chain only where
        // its environment says it exists, or when asked for.
        SourceKind::ManagedIdentity => {
            forced || var("IDENTITY_ENDPOINT").is_some() || var("MSI_ENDPOINT").is_some()
        }
        SourceKind::AzureCli | SourceKind::Azd => true,
    }
}

/// The chain's order.
const ORDER: [SourceKind; 5] = [
    SourceKind::ClientSecret,
    SourceKind::WorkloadIdentity,
    SourceKind::ManagedIdentity,
    SourceKind::AzureCli,
    SourceKind::Azd,
];

/// For a source whose identity the configuration alone fixes (a client secret or a federated
/// token file, when it is the chain's first configured source), a string that selects it: the
/// same configuration means the same identity, so a cache may be consulted before signing in.
/// For the other sources (managed identity, az, azd), who is signed in is learned from the
/// token, so there is none.
pub fn configured_selector(opts: &EntraOptions) -> Option<String> {
    use sha2::{Digest, Sha256};
    let first = ORDER.into_iter().find(|&k| configured(opts, k))?;
    let (tenant, client_id) = tenant_and_client(opts);
    let authority = var("AZURE_AUTHORITY_HOST").unwrap_or_default();
    match first {
        SourceKind::ClientSecret => {
            // A changed secret must prove itself to Entra before any cached token is reused.
            let secret = Zeroizing::new(var("AZURE_CLIENT_SECRET").unwrap_or_default());
            Some(format!(
                "client-secret\n{authority}\n{}\n{}\n{}",
                tenant?,
                client_id?,
                hex::encode(Sha256::digest(secret.as_bytes()))
            ))
        }
        SourceKind::WorkloadIdentity => Some(format!(
            "workload-identity\n{authority}\n{}\n{}\n{}",
            tenant.unwrap_or_default(),
            client_id.unwrap_or_default(),
            var("AZURE_FEDERATED_TOKEN_FILE").unwrap_or_default()
        )),
        _ => None,
    }
}

/// The selector of a token from a source whose identity only the token tells.
fn identity_selector(identity: &Identity) -> String {
    let authority = var("AZURE_AUTHORITY_HOST").unwrap_or_default();
    format!(
        "identity\n{authority}\n{}\n{}",
        identity.tenant, identity.object
    )
}

/// Builds `kind`'s source.
fn source(
    kind: SourceKind,
    opts: &EntraOptions,
    client: &ClientOptions,
) -> Result<Source, Failure> {
    let (tenant, client_id) = tenant_and_client(opts);
    let sdk = |r: azure_core::Result<Arc<dyn TokenCredential>>| {
        r.map(Source::Sdk).map_err(|e| Failure::Refused(short(&e)))
    };
    match kind {
        SourceKind::ClientSecret => match (&tenant, &client_id, var("AZURE_CLIENT_SECRET")) {
            (Some(t), Some(c), Some(s)) => sdk(azure_identity::ClientSecretCredential::new(
                t,
                c.clone(),
                s.into(),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: client.clone(),
                }),
            )
            .map(|c| c as Arc<dyn TokenCredential>)),
            _ => Err(Failure::Refused(
                "needs a tenant (--tenant or AZURE_TENANT_ID), a client ID (--client-id or AZURE_CLIENT_ID) and AZURE_CLIENT_SECRET".into(),
            )),
        },
        SourceKind::WorkloadIdentity => sdk(azure_identity::WorkloadIdentityCredential::new(
            Some(azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions {
                    client_options: client.clone(),
                },
                client_id,
                tenant_id: tenant,
                token_file_path: None,
            }),
        )
        .map(|c| c as Arc<dyn TokenCredential>)),
        SourceKind::ManagedIdentity => {
            let mut mi = azure_identity::ManagedIdentityCredentialOptions {
                client_options: client.clone(),
                ..Default::default()
            };
            if let Some(c) = client_id {
                mi.user_assigned_id = Some(azure_identity::UserAssignedId::ClientId(c));
            }
            sdk(azure_identity::ManagedIdentityCredential::new(Some(mi))
                .map(|c| c as Arc<dyn TokenCredential>))
        }
        SourceKind::AzureCli => Ok(Source::Tool(tool::Tool::Az)),
        SourceKind::Azd => Ok(Source::Tool(tool::Tool::Azd)),
    }
}

/// Whether an SDK credential's failure means its endpoint is not there (managed identity off
/// Azure: no connection, or IMDS's 400 "identity not found"), rather than a refusal.
fn endpoint_unavailable(e: &azure_core::Error) -> bool {
    use azure_core::error::ErrorKind;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(az) = err.downcast_ref::<azure_core::Error>() {
            match az.kind() {
                ErrorKind::Connection => return true,
                ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 400 => {
                    return true;
                }
                _ => {}
            }
        }
        if let Some(r) = err.downcast_ref::<reqwest::Error>()
            && r.is_connect()
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Client options for azure_identity: our HTTP client (rustls with ring, docker-style extra
/// CAs, no redirects) and no retries, so a refused secret is reported at once instead of after
/// a minute.
pub fn client_options(http: reqwest::Client) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

/// Gets an ACR-audience Entra token from the first available source (see [`token`]).
pub async fn acr_token(
    opts: &EntraOptions,
    http: reqwest::Client,
) -> Result<EntraToken, EntraError> {
    token(opts, http, ACR_SCOPE).await
}

/// Gets an Entra token for `scope` (e.g. [`ACR_SCOPE`], or ARM's
/// `https://management.azure.com/.default`) from the first available source.
///
/// As the Azure SDKs' DefaultAzureCredential: a source that is not configured, not installed,
/// not signed in, or whose endpoint is unreachable is skipped; a source that is there and fails
/// stops the chain with its error (review #8 item 11), so a wrong secret never turns into
/// whoever `az` is signed in as. The identity used is logged at info level, from the token's
/// claims, never the token.
pub async fn token(
    opts: &EntraOptions,
    http: reqwest::Client,
    scope: &str,
) -> Result<EntraToken, EntraError> {
    let client = client_options(http);
    let (tenant, _) = tenant_and_client(opts);
    let mut attempts = Vec::new();
    for kind in ORDER.into_iter().filter(|&k| configured(opts, k)) {
        let got = match source(kind, opts, &client) {
            Err(f) => Err(f),
            Ok(Source::Sdk(cred)) => match cred.get_token(&[scope], None).await {
                Ok(t) => Ok(Secret::new(t.token.secret())),
                Err(e) if kind == SourceKind::ManagedIdentity && endpoint_unavailable(&e) => {
                    Err(Failure::Unavailable(short(&e)))
                }
                Err(e) => Err(Failure::Refused(short(&e))),
            },
            // A bad TRUSTACR_CLI_TIMEOUT is this source's failure, and stops the chain.
            Ok(Source::Tool(t)) => match tool::timeout() {
                Ok(limit) => tool::token(t, scope, tenant.as_deref(), limit).await,
                Err(why) => Err(Failure::Refused(why)),
            },
        };
        let token = match got {
            Ok(t) => t,
            Err(Failure::Unavailable(why)) => {
                tracing::debug!("{} is not available: {why}", kind.name());
                attempts.push((kind.name(), why));
                continue;
            }
            Err(Failure::Refused(reason)) => {
                return Err(EntraError::Refused {
                    source_name: kind.name(),
                    reason,
                    chosen: opts.credential.is_some(),
                });
            }
        };
        let identity = Identity::of_token(token.expose());
        match &identity {
            Some(id) => tracing::info!("signed in to Entra ID with {} as {id}", kind.name()),
            None => tracing::info!(
                "signed in to Entra ID with {} (the token does not name its identity)",
                kind.name()
            ),
        }
        let selector = match kind {
            SourceKind::ClientSecret | SourceKind::WorkloadIdentity => configured_selector(opts),
            _ => None,
        }
        .or_else(|| identity.as_ref().map(identity_selector));
        return Ok(EntraToken {
            // The token's `tid` first: the configured tenant may be a domain name, which Entra
            // accepts and ACR's exchange refuses.
            tenant: identity
                .as_ref()
                .map(|i| i.tenant.clone())
                .or_else(|| tenant.clone()),
            token,
            source: kind.name(),
            identity,
            selector,
        });
    }
    if attempts.is_empty() {
        attempts.push(("(none)", "no credential source is configured".into()));
    }
    Err(EntraError::Unavailable { attempts })
}

/// A string claim of a JWT, read without verifying it (the issuer verifies its own tokens; we
/// only read routing hints such as the tenant or expiry).
pub fn jwt_claim(jwt: &str, claim: &str) -> Option<String> {
    let claims = jwt_claims(jwt)?;
    match claims.get(claim)? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The claims of a JWT, unverified.
pub fn jwt_claims(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_claims_are_read_from_the_payload() {
        // {"alg":"none"}.{"tid":"t1","exp":5}.
        let jwt = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0MSIsImV4cCI6NX0.";
        assert_eq!(jwt_claim(jwt, "tid").as_deref(), Some("t1"));
        assert_eq!(jwt_claim(jwt, "exp").as_deref(), Some("5"));
        assert_eq!(jwt_claim("garbage", "tid"), None);
    }

    #[test]
    fn a_refusal_in_the_chain_says_the_others_were_not_tried() {
        let refused = |chosen| EntraError::Refused {
            source_name: "client secret (AZURE_CLIENT_SECRET)",
            reason: "AADSTS7000215: Invalid client secret provided.".into(),
            chosen,
        };
        let text = refused(false).to_string();
        assert!(
            text.starts_with("cannot sign in to Microsoft Entra ID: client secret (AZURE_CLIENT_SECRET) failed: AADSTS7000215")
                && text.contains("other credential sources were not tried"),
            "{text}"
        );
        let text = refused(true).to_string();
        assert!(!text.contains("not tried"), "{text}");
    }

    #[test]
    fn all_failures_are_listed_with_the_fix() {
        let e = EntraError::Unavailable {
            attempts: vec![("a", "no".into()), ("b", "also no".into())],
        };
        let text = e.to_string();
        assert!(
            text.contains("  - a: no\n  - b: also no") && text.contains("az login"),
            "{text}"
        );
    }
}
