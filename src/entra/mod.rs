//! Microsoft Entra ID sign-in: the credential chain that gets a token for ACR
//! (`https://containerregistry.azure.net/.default`), built from azure_identity's credentials
//! because azure_identity 1.0 has no DefaultAzureCredential.
//!
//! Order: explicit options, then a client secret from the environment, then workload identity,
//! then managed identity (when its environment is present or it is asked for), then developer
//! tools (Azure CLI, azd). `--credential NAME` picks one. When every source fails, the error
//! lists each source and why. Tokens are [`Secret`]s and never logged.

mod http;

pub use http::entra_client;

use std::sync::Arc;

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

/// An Entra access token and where it came from.
#[derive(Debug, Clone)]
pub struct EntraToken {
    /// The token.
    pub token: Secret,
    /// The source that produced it.
    pub source: &'static str,
    /// The tenant, when known (ACR's exchange takes it).
    pub tenant: Option<String>,
}

/// Every source failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign in to Microsoft Entra ID; tried:\n{}\nSet AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, use workload or managed identity, or run `az login`", attempts_text(.attempts))]
pub struct EntraError {
    /// Each source tried and why it failed.
    pub attempts: Vec<(&'static str, String)>,
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

/// A source of the chain, or why it could not even be set up.
type Source = (SourceKind, Result<Arc<dyn TokenCredential>, String>);

/// Builds the chain's sources that apply in this environment, in order.
fn sources(opts: &EntraOptions, client: &ClientOptions) -> Vec<Source> {
    let tenant = opts.tenant.clone().or_else(|| var("AZURE_TENANT_ID"));
    let client_id = opts.client_id.clone().or_else(|| var("AZURE_CLIENT_ID"));
    let wanted = |k: SourceKind| opts.credential.is_none_or(|c| c == k);
    let mut out: Vec<Source> = Vec::new();

    if wanted(SourceKind::ClientSecret)
        && (var("AZURE_CLIENT_SECRET").is_some()
            || opts.credential == Some(SourceKind::ClientSecret))
    {
        let made = match (&tenant, &client_id, var("AZURE_CLIENT_SECRET")) {
            (Some(t), Some(c), Some(s)) => azure_identity::ClientSecretCredential::new(
                t,
                c.clone(),
                s.into(),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: client.clone(),
                }),
            )
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| short(&e)),
            _ => Err("needs a tenant (--tenant or AZURE_TENANT_ID), a client ID (--client-id or AZURE_CLIENT_ID) and AZURE_CLIENT_SECRET".into()),
        };
        out.push((SourceKind::ClientSecret, made));
    }
    if wanted(SourceKind::WorkloadIdentity)
        && (var("AZURE_FEDERATED_TOKEN_FILE").is_some()
            || opts.credential == Some(SourceKind::WorkloadIdentity))
    {
        let made = azure_identity::WorkloadIdentityCredential::new(Some(
            azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions {
                    client_options: client.clone(),
                },
                client_id: client_id.clone(),
                tenant_id: tenant.clone(),
                token_file_path: None,
            },
        ))
        .map(|c| c as Arc<dyn TokenCredential>)
        .map_err(|e| short(&e));
        out.push((SourceKind::WorkloadIdentity, made));
    }
    // Probing IMDS off Azure costs seconds, so managed identity joins the chain only where its
    // environment says it exists, or when asked for.
    let on_azure = var("IDENTITY_ENDPOINT").is_some() || var("MSI_ENDPOINT").is_some();
    if wanted(SourceKind::ManagedIdentity)
        && (on_azure || opts.credential == Some(SourceKind::ManagedIdentity))
    {
        let mut mi = azure_identity::ManagedIdentityCredentialOptions {
            client_options: client.clone(),
            ..Default::default()
        };
        if let Some(c) = &client_id {
            mi.user_assigned_id = Some(azure_identity::UserAssignedId::ClientId(c.clone()));
        }
        let made = azure_identity::ManagedIdentityCredential::new(Some(mi))
            .map(|c| c as Arc<dyn TokenCredential>)
            .map_err(|e| short(&e));
        out.push((SourceKind::ManagedIdentity, made));
    }
    if wanted(SourceKind::AzureCli) {
        let made = azure_identity::AzureCliCredential::new(Some(
            azure_identity::AzureCliCredentialOptions {
                tenant_id: opts.tenant.clone(),
                ..Default::default()
            },
        ))
        .map(|c| c as Arc<dyn TokenCredential>)
        .map_err(|e| short(&e));
        out.push((SourceKind::AzureCli, made));
    }
    if wanted(SourceKind::Azd) {
        let made = azure_identity::AzureDeveloperCliCredential::new(Some(
            azure_identity::AzureDeveloperCliCredentialOptions {
                tenant_id: opts.tenant.clone(),
                ..Default::default()
            },
        ))
        .map(|c| c as Arc<dyn TokenCredential>)
        .map_err(|e| short(&e));
        out.push((SourceKind::Azd, made));
    }
    out
}

/// Client options for azure_identity: our HTTP client (rustls with ring, docker-style extra
/// CAs) and no retries, so a refused secret is reported at once instead of after a minute.
pub fn client_options(http: reqwest::Client) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

/// Gets an ACR-audience Entra token from the first source that works.
pub async fn acr_token(
    opts: &EntraOptions,
    http: reqwest::Client,
) -> Result<EntraToken, EntraError> {
    let client = client_options(http);
    let tenant = opts.tenant.clone().or_else(|| var("AZURE_TENANT_ID"));
    let mut attempts = Vec::new();
    for (kind, made) in sources(opts, &client) {
        let cred = match made {
            Ok(c) => c,
            Err(why) => {
                attempts.push((kind.name(), why));
                continue;
            }
        };
        match cred.get_token(&[ACR_SCOPE], None).await {
            Ok(t) => {
                tracing::debug!("signed in to Entra ID with {}", kind.name());
                return Ok(EntraToken {
                    token: Secret::new(t.token.secret()),
                    source: kind.name(),
                    tenant: tenant
                        .clone()
                        .or_else(|| jwt_claim(t.token.secret(), "tid")),
                });
            }
            Err(e) => attempts.push((kind.name(), short(&e))),
        }
    }
    if attempts.is_empty() {
        attempts.push(("(none)", "no credential source is configured".into()));
    }
    Err(EntraError { attempts })
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
    fn all_failures_are_listed_with_the_fix() {
        let e = EntraError {
            attempts: vec![("a", "no".into()), ("b", "also no".into())],
        };
        let text = e.to_string();
        assert!(
            text.contains("  - a: no\n  - b: also no") && text.contains("az login"),
            "{text}"
        );
    }
}
