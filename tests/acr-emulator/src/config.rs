//! The emulator's JSON configuration (the only command-line argument is its path).

use serde::Deserialize;
use std::path::PathBuf;

/// Role names as Azure RBAC spells them.
pub const ROLES: [&str; 4] = ["AcrPull", "AcrPush", "AcrImageSigner", "AcrDelete"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `127.0.0.1:PORT` to listen on (HTTPS).
    pub listen: String,
    /// Server certificate chain (PEM) and its key (PEM).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The login server name the emulator answers as; also the token `service` and `aud`.
    pub login_server: String,
    /// The distribution registry behind it, `http://127.0.0.1:P`.
    pub registry_url: String,
    /// The notary-server behind it, `https://127.0.0.1:Q`.
    pub notary_url: String,
    /// CA (PEM) that signed the backends' TLS certificates.
    #[serde(default)]
    pub backend_ca: Option<PathBuf>,
    /// ACR token signing key (EC P-256 private key, PEM) and its certificate (PEM): the
    /// certificate is the backends' `rootcertbundle`.
    pub token_key: PathBuf,
    pub token_cert: PathBuf,
    /// How access tokens name their signing key: `"kid"` (a libtrust key ID, as real ACR does)
    /// or `"x5c"` (the certificate itself).
    #[serde(default = "default_token_header")]
    pub token_header: String,
    /// `iss` of ACR tokens, the backends' `issuer`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Key that signs (and verifies) the emulated Entra access tokens; default `token_key`.
    #[serde(default)]
    pub entra_key: Option<PathBuf>,
    #[serde(default = "default_refresh_lifetime")]
    pub refresh_token_lifetime_secs: u64,
    #[serde(default = "default_access_lifetime")]
    pub access_token_lifetime_secs: u64,
    #[serde(default = "default_entra_lifetime")]
    pub entra_token_lifetime_secs: u64,
    pub identities: Vec<Identity>,
    /// How a request for actions the roles do not allow is answered: `"subset"` (a token with
    /// only the allowed actions, the default) or `"refuse"` (401). Real ACR's choice is not
    /// documented (ASSUMPTIONS.md), so tests run under both.
    #[serde(default = "default_missing_role")]
    pub missing_role: String,
    /// The `service` the backends were configured with, when this emulator answers under
    /// another name than theirs (a second emulator on the same backends): access tokens carry
    /// it as `aud`, and token requests may name it. Default: `login_server`.
    #[serde(default)]
    pub backend_service: Option<String>,
    /// Verified domain names of tenants (`contoso.onmicrosoft.com` → tenant ID): Entra accepts
    /// either in its token URL; ACR's exchange takes only the ID.
    #[serde(default)]
    pub tenant_domains: std::collections::BTreeMap<String, String>,
    /// How access tokens spell the `access` claim's keys: `"lower"` (`type`, `name`,
    /// `actions`, the default) or `"capitalised"` (`Type`, `Name`, `Actions`), which the Go
    /// registry and notary-server read too (Go's JSON decoding ignores case).
    #[serde(default = "default_access_keys")]
    pub access_keys: String,
    /// The registry as Azure Resource Manager shows it (`arm.rs`); without it, ARM answers
    /// that the subscription does not exist.
    #[serde(default)]
    pub arm: Option<crate::arm::ArmConfig>,
}

impl Config {
    /// The `aud` of access tokens: the service the backends check.
    pub fn access_audience(&self) -> &str {
        self.backend_service
            .as_deref()
            .unwrap_or(&self.login_server)
    }

    /// Whether a token request's `service` names this registry.
    pub fn is_service(&self, service: Option<&str>) -> bool {
        service
            .is_some_and(|s| s == self.login_server || Some(s) == self.backend_service.as_deref())
    }
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub tenant_id: String,
    pub client_id: String,
    /// Client secret for `client_credentials` with `client_secret`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// `sub` a workload identity's `client_assertion` must carry.
    #[serde(default)]
    pub federated_subject: Option<String>,
    /// Display/object name; the ACR tokens' `sub`.
    pub name: String,
    /// Entra object ID (`oid`); default: derived from tenant and client ID.
    #[serde(default)]
    pub object_id: Option<String>,
    pub roles: Vec<String>,
}

impl Identity {
    pub fn oid(&self) -> String {
        self.object_id.clone().unwrap_or_else(|| {
            use sha2::{Digest, Sha256};
            let h = Sha256::digest(format!("{}/{}", self.tenant_id, self.client_id).as_bytes());
            let x: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
            format_guid(&x)
        })
    }
}

fn default_missing_role() -> String {
    "subset".into()
}
fn default_access_keys() -> String {
    "lower".into()
}
fn default_token_header() -> String {
    "kid".into()
}
fn default_issuer() -> String {
    "Azure Container Registry".into()
}
fn default_refresh_lifetime() -> u64 {
    11700
}
fn default_access_lifetime() -> u64 {
    4500
}
fn default_entra_lifetime() -> u64 {
    3599
}

impl Config {
    pub fn load(path: &str) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
        let c: Config = serde_json::from_str(&text).map_err(|e| format!("parse {path}: {e}"))?;
        if c.token_header != "kid" && c.token_header != "x5c" {
            return Err(format!(
                "token_header must be \"kid\" or \"x5c\", not {:?}",
                c.token_header
            ));
        }
        if c.missing_role != "subset" && c.missing_role != "refuse" {
            return Err(format!(
                "missing_role must be \"subset\" or \"refuse\", not {:?}",
                c.missing_role
            ));
        }
        if c.access_keys != "lower" && c.access_keys != "capitalised" {
            return Err(format!(
                "access_keys must be \"lower\" or \"capitalised\", not {:?}",
                c.access_keys
            ));
        }
        for i in &c.identities {
            for r in &i.roles {
                if !ROLES.contains(&r.as_str()) {
                    return Err(format!("identity {}: unknown role {r:?}", i.name));
                }
            }
        }
        Ok(c)
    }
}

/// Whether `s` has a GUID's shape (8-4-4-4-12 hex digits).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// 32 hex digits as a GUID: 8-4-4-4-12.
pub fn format_guid(x: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}
