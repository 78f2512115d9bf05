//! Azure Resource Manager, the management plane of a registry: finding it by login server,
//! reading its SKU, trust policy, role assignment mode and admin user, and changing its trust
//! policy (`PATCH properties.policies.trustPolicy`).
//!
//! The endpoint and the Entra token's audience follow the registry's cloud (`azurecr.io`,
//! `azurecr.cn`, `azurecr.us`), unless the plugin settings name an endpoint for the registry
//! (`"arm": {"<login server>": {"endpoint": "https://…", "subscription": "…"}}`). An ARM token
//! goes to that endpoint only: never to a URL taken from a response (no `nextLink` to another
//! origin, no async-operation polling), and the endpoint is `https` and always verified,
//! loopback included, as ACR login servers are. Responses are size-bounded.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::entra::{self, EntraError, EntraOptions};
use crate::registry::endpoint::{Endpoint, RegistryHost};
use crate::registry::{describe, read_limited};
use crate::secret::Secret;

/// Stable API version that carries `trustPolicy` and `roleAssignmentMode`.
pub const API_VERSION: &str = "2025-11-01";

/// Largest ARM answer read: a subscription's registry list is a few KiB per registry.
const MAX_ARM_RESPONSE: u64 = 4 * 1024 * 1024;

/// Pages of a registry list followed at most.
const MAX_PAGES: usize = 20;

/// Where the settings file names the endpoint of a registry's management plane.
const SETTING: &str = "\"arm\" in trustacr.json";

/// A registry's management-plane settings (`arm.<login server>` in trustacr.json).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSetting {
    /// `https://host[:port]` of ARM for this registry.
    pub endpoint: String,
    /// The subscription that holds the registry.
    #[serde(default)]
    pub subscription: Option<String>,
}

/// Errors of the management plane.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// Entra sign-in for the ARM audience failed.
    #[error(transparent)]
    Entra(#[from] EntraError),
    /// No ARM endpoint is known for the registry.
    #[error(
        "no Azure Resource Manager endpoint is known for {registry} (not *.azurecr.io, *.azurecr.cn or *.azurecr.us): add {{\"arm\": {{\"{registry}\": {{\"endpoint\": \"https://…\", \"subscription\": \"…\"}}}}}} to {settings}"
    )]
    NoEndpoint {
        /// Login server.
        registry: String,
        /// The settings file.
        settings: String,
    },
    /// The configured endpoint is refused.
    #[error("the Azure Resource Manager endpoint for {registry} in {SETTING} is refused: {why}")]
    BadEndpoint {
        /// Login server.
        registry: String,
        /// Why.
        why: String,
    },
    /// No subscription was given or found.
    #[error(
        "no Azure subscription to find {registry} in: pass --subscription ID, set AZURE_SUBSCRIPTION_ID, add \"subscription\" to the registry's entry in {SETTING}, or sign in with `az login` (its default subscription is used)"
    )]
    NoSubscription {
        /// Login server.
        registry: String,
    },
    /// A subscription ID that cannot be one.
    #[error("{0:?} is not an Azure subscription ID")]
    BadSubscription(String),
    /// Network failure or an unreadable answer.
    #[error("cannot reach Azure Resource Manager at {endpoint}: {reason}")]
    Unreachable {
        /// ARM endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// ARM refused a request.
    #[error("Azure Resource Manager refused {what} ({status} {code}: {message}){}", refusal_hint(*.status, .what))]
    Refused {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// ARM's error code.
        code: String,
        /// ARM's message.
        message: String,
    },
    /// The registry is not among the subscription's registries.
    #[error(
        "{registry} is not among the container registries that this identity can read in subscription {subscription}: check the subscription, and that the identity has at least Reader on the registry"
    )]
    NotFound {
        /// Login server.
        registry: String,
        /// Subscription searched.
        subscription: String,
    },
    /// ARM answered something that is not a registry resource.
    #[error("Azure Resource Manager answered {what} with something unexpected: {why}")]
    Malformed {
        /// What was asked.
        what: String,
        /// Why it is not understood.
        why: String,
    },
}

fn refusal_hint(status: u16, what: &str) -> &'static str {
    match status {
        403 if what.starts_with("changing") => {
            ". Changing the trust policy needs Owner, Contributor or Container Registry Contributor and Data Access Configuration Administrator on the registry; Reader may only read it"
        }
        403 => ". The identity needs at least Reader on the registry",
        401 => ". Sign in again; the token may be for another cloud or tenant (--tenant)",
        _ => "",
    }
}

/// The management plane of one cloud (or of a configured endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// ARM's base URL.
    pub endpoint: String,
    /// The Entra scope of ARM tokens there.
    pub scope: &'static str,
}

const PUBLIC: (&str, &str) = (
    "https://management.azure.com",
    "https://management.azure.com/.default",
);

/// The cloud of a login server by its suffix, or `None` for another name.
pub fn cloud_of(host: &str) -> Option<Cloud> {
    let host = host.to_ascii_lowercase();
    let (endpoint, scope) = if host.ends_with(".azurecr.io") {
        PUBLIC
    } else if host.ends_with(".azurecr.cn") {
        (
            "https://management.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/.default",
        )
    } else if host.ends_with(".azurecr.us") {
        (
            "https://management.usgovcloudapi.net",
            "https://management.usgovcloudapi.net/.default",
        )
    } else {
        return None;
    };
    Some(Cloud {
        endpoint: endpoint.to_string(),
        scope,
    })
}

/// A registry as ARM shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registry {
    /// Resource ID.
    pub id: String,
    /// Resource name.
    pub name: String,
    /// Login server.
    pub login_server: String,
    /// `Basic`, `Standard` or `Premium`.
    pub sku: String,
    /// `enabled` or `disabled` (absent: never set, which means disabled).
    pub trust_policy: String,
    /// `AzureRoleAssignmentMode` (RBAC) or `AbacRepositoryPermissions` (ABAC).
    pub role_assignment_mode: Option<String>,
    /// Whether the admin account is on.
    pub admin_user_enabled: Option<bool>,
}

impl Registry {
    /// Whether repository permissions are ABAC, where DCT signing is unsupported.
    pub fn is_abac(&self) -> bool {
        self.role_assignment_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("AbacRepositoryPermissions"))
    }

    fn from_json(v: &Value, what: &str) -> Result<Self, ArmError> {
        let malformed = |why: &str| ArmError::Malformed {
            what: what.to_string(),
            why: why.to_string(),
        };
        let s = |v: &Value| v.as_str().map(str::to_string);
        let id = s(&v["id"]).ok_or_else(|| malformed("no resource id"))?;
        check_resource_id(&id).map_err(|why| malformed(&why))?;
        let p = &v["properties"];
        Ok(Registry {
            name: s(&v["name"]).unwrap_or_default(),
            login_server: s(&p["loginServer"]).unwrap_or_default(),
            sku: s(&v["sku"]["name"]).unwrap_or_default(),
            trust_policy: s(&p["policies"]["trustPolicy"]["status"])
                .unwrap_or_else(|| "disabled".into()),
            role_assignment_mode: s(&p["roleAssignmentMode"]),
            admin_user_enabled: p["adminUserEnabled"].as_bool(),
            id,
        })
    }
}

/// A repository-scoped token of a registry: docker logs in with its name as the username.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScopedToken {
    /// The token's name.
    pub name: String,
    /// The name of its scope map (the repositories and actions it may use).
    pub scope_map: String,
    /// `enabled` or `disabled`.
    pub status: String,
}

impl ScopedToken {
    /// Read leniently (these only inform), but shown on a terminal: control characters from
    /// the server are dropped and lengths bounded.
    fn from_json(v: &Value) -> Self {
        let p = &v["properties"];
        let text = |s: Option<&str>| -> String {
            s.unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(256)
                .collect()
        };
        let scope_map = text(
            p["scopeMapId"]
                .as_str()
                .and_then(|id| id.rsplit('/').next()),
        );
        ScopedToken {
            name: text(v["name"].as_str()),
            scope_map: if scope_map.is_empty() {
                "unknown".into()
            } else {
                scope_map
            },
            status: text(p["status"].as_str()),
        }
    }
}

/// A registry resource ID that may become a URL path: `/subscriptions/…/providers/
/// Microsoft.ContainerRegistry/registries/<name>`, with no empty, `.` or `..` segment.
fn check_resource_id(id: &str) -> Result<(), String> {
    let lower = id.to_ascii_lowercase();
    let ok = lower.starts_with("/subscriptions/")
        && lower.contains("/providers/microsoft.containerregistry/registries/")
        && id.len() < 1024
        && id
            .split('/')
            .skip(1)
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.()".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("the resource id is not a container registry's".into())
    }
}

fn check_subscription(s: &str) -> Result<String, ArmError> {
    let ok =
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(ArmError::BadSubscription(s.to_string()))
    }
}

/// The Azure CLI's default subscription (`isDefault` in `azureProfile.json`, under
/// `AZURE_CONFIG_DIR` or `~/.azure`).
fn azure_cli_subscription() -> Option<String> {
    let dir = std::env::var_os("AZURE_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".azure")))?;
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join("azureProfile.json"))
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut bytes))
        .ok()?;
    // az writes the file with a byte order mark.
    let text = String::from_utf8_lossy(&bytes);
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()?;
    v["subscriptions"]
        .as_array()?
        .iter()
        .find(|s| s["isDefault"].as_bool() == Some(true))
        .and_then(|s| s["id"].as_str().map(str::to_string))
}

/// A signed-in connection to the management plane of one registry's cloud.
pub struct Arm {
    http: reqwest::Client,
    endpoint: Endpoint,
    token: Secret,
    /// The subscription searched for the registry.
    pub subscription: String,
}

impl Arm {
    /// Signs in to ARM for `login_server`: endpoint and audience from `settings` or the
    /// registry's cloud, subscription from `subscription` (the flag), the setting,
    /// `AZURE_SUBSCRIPTION_ID` or the Azure CLI's default. `settings_file` is for messages.
    pub async fn connect(
        config_dir: &Path,
        login_server: &RegistryHost,
        settings: &BTreeMap<String, ArmSetting>,
        settings_file: &Path,
        subscription: Option<&str>,
        opts: &EntraOptions,
    ) -> Result<Arm, ArmError> {
        let registry = login_server.as_str().to_string();
        let setting = settings
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&registry))
            .map(|(_, v)| v);
        let cloud = match setting {
            Some(s) => Cloud {
                endpoint: s.endpoint.clone(),
                scope: PUBLIC.1,
            },
            None => cloud_of(login_server.name()).ok_or_else(|| ArmError::NoEndpoint {
                registry: registry.clone(),
                settings: settings_file.display().to_string(),
            })?,
        };
        let host = Endpoint::server_host(&cloud.endpoint, "the ARM endpoint").map_err(|e| {
            ArmError::BadEndpoint {
                registry: registry.clone(),
                why: e.to_string(),
            }
        })?;
        // Treated as ACR: always verified, loopback included, since a token goes there.
        let endpoint = Endpoint::registry(&host, true);
        let subscription = subscription
            .map(str::to_string)
            .or_else(|| setting.and_then(|s| s.subscription.clone()))
            .or_else(|| std::env::var("AZURE_SUBSCRIPTION_ID").ok())
            .filter(|s| !s.is_empty())
            .or_else(azure_cli_subscription)
            .ok_or_else(|| ArmError::NoSubscription {
                registry: registry.clone(),
            })?;
        let subscription = check_subscription(&subscription)?;
        let unreachable = |reason: String| ArmError::Unreachable {
            endpoint: endpoint.to_string(),
            reason,
        };
        let http = endpoint
            .client(config_dir)
            .map_err(|e| unreachable(e.to_string()))?;
        let entra_http = entra::entra_client().map_err(|e| unreachable(e.to_string()))?;
        let token = entra::token(opts, entra_http, cloud.scope).await?.token;
        Ok(Arm {
            http,
            endpoint,
            token,
            subscription,
        })
    }

    fn url(&self, path: &str) -> url::Url {
        let mut url = self.endpoint.url(path.trim_start_matches('/'));
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    /// Sends `req`, reads a bounded JSON answer, and turns ARM's refusals into errors.
    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, ArmError> {
        let unreachable = |reason: String| ArmError::Unreachable {
            endpoint: self.endpoint.to_string(),
            reason,
        };
        let resp = req
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(describe(e)))?;
        let status = resp.status();
        // An oversized answer is the server breaking the rules, not the network failing.
        let body = read_limited(resp, MAX_ARM_RESPONSE)
            .await
            .map_err(|e| match e {
                crate::registry::HttpError::TooLarge { .. } => ArmError::Malformed {
                    what: what.to_string(),
                    why: e.to_string(),
                },
                e => unreachable(e.to_string()),
            })?;
        let json = serde_json::from_slice::<Value>(&body);
        if !status.is_success() {
            let v = json.unwrap_or_default();
            let text = |v: &Value| v.as_str().map(|s| s.chars().take(500).collect::<String>());
            return Err(ArmError::Refused {
                what: what.to_string(),
                status: status.as_u16(),
                code: text(&v["error"]["code"]).unwrap_or_else(|| "no error code".into()),
                message: text(&v["error"]["message"])
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect()),
            });
        }
        json.map_err(|e| ArmError::Malformed {
            what: what.to_string(),
            why: format!("not JSON ({e})"),
        })
    }

    /// Finds the registry whose login server is `login_server` among the subscription's.
    pub async fn find(&self, login_server: &str) -> Result<Registry, ArmError> {
        let what = format!(
            "listing the container registries of subscription {}",
            self.subscription
        );
        let url = self.url(&format!(
            "subscriptions/{}/providers/Microsoft.ContainerRegistry/registries",
            self.subscription
        ));
        let found = self
            .list(url, &what, |item| {
                item["properties"]["loginServer"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(login_server))
            })
            .await?;
        match found.first() {
            Some(item) => Registry::from_json(item, &what),
            None => Err(ArmError::NotFound {
                registry: login_server.to_string(),
                subscription: self.subscription.clone(),
            }),
        }
    }

    /// The registry's repository-scoped tokens (`…/registries/{name}/tokens`).
    pub async fn tokens(&self, registry: &Registry) -> Result<Vec<ScopedToken>, ArmError> {
        let what = format!("listing the repository-scoped tokens of {}", registry.name);
        let url = self.url(&format!("{}/tokens", registry.id));
        let items = self.list(url, &what, |_| true).await?;
        Ok(items.iter().map(ScopedToken::from_json).collect())
    }

    /// The items of a paged list (at most [`MAX_PAGES`] pages) that `keep` selects. Follows
    /// `nextLink` only on the same server: the token goes nowhere else.
    async fn list(
        &self,
        mut url: url::Url,
        what: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, ArmError> {
        let mut kept = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut page = self.call(self.http.get(url.clone()), what).await?;
            let items = page["value"]
                .as_array_mut()
                .ok_or_else(|| ArmError::Malformed {
                    what: what.to_string(),
                    why: "no \"value\" list".into(),
                })?;
            kept.extend(items.drain(..).filter(|i| keep(i)));
            match page["nextLink"].as_str().map(url::Url::parse) {
                Some(Ok(next)) if next.origin() == self.endpoint.origin() => url = next,
                Some(_) => {
                    return Err(ArmError::Malformed {
                        what: what.to_string(),
                        why: "its nextLink points to another server".into(),
                    });
                }
                None => break,
            }
        }
        Ok(kept)
    }

    /// Reads the registry resource again.
    pub async fn get(&self, registry: &Registry) -> Result<Registry, ArmError> {
        let what = format!("reading {}", registry.id);
        let v = self
            .call(self.http.get(self.url(&registry.id)), &what)
            .await?;
        Registry::from_json(&v, &what)
    }

    /// Sets the trust policy to `enabled` or `disabled` and returns the registry as ARM
    /// answered. A change still in progress (201/202) is read back once.
    pub async fn set_trust_policy(
        &self,
        registry: &Registry,
        enabled: bool,
    ) -> Result<Registry, ArmError> {
        let status = if enabled { "enabled" } else { "disabled" };
        let what = format!("changing the trust policy of {} to {status}", registry.name);
        let body = serde_json::json!({
            "properties": {"policies": {"trustPolicy": {"type": "Notary", "status": status}}}
        });
        let v = self
            .call(self.http.patch(self.url(&registry.id)).json(&body), &what)
            .await?;
        match Registry::from_json(&v, &what) {
            Ok(r) => Ok(r),
            Err(_) => self.get(registry).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_follows_the_login_server_suffix() {
        let c = |h: &str| cloud_of(h).map(|c| c.endpoint);
        assert_eq!(c("r.azurecr.io").as_deref(), Some(PUBLIC.0));
        assert_eq!(
            c("R.AZURECR.CN").as_deref(),
            Some("https://management.chinacloudapi.cn")
        );
        assert_eq!(
            cloud_of("r.azurecr.us").map(|c| c.scope),
            Some("https://management.usgovcloudapi.net/.default")
        );
        assert_eq!(c("azurecr.io.evil.com"), None);
        assert_eq!(c("127.0.0.1:8443"), None);
    }

    #[test]
    fn resource_ids_from_arm_are_checked_before_they_become_paths() {
        let good =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r";
        assert!(check_resource_id(good).is_ok());
        for bad in [
            "/subscriptions/s/../../x/providers/Microsoft.ContainerRegistry/registries/r",
            "https://evil/subscriptions/s/providers/Microsoft.ContainerRegistry/registries/r",
            "/subscriptions/s/providers/Microsoft.Storage/storageAccounts/r",
            "/subscriptions/s//providers/Microsoft.ContainerRegistry/registries/r?x=1",
        ] {
            assert!(check_resource_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scoped_tokens_from_arm_lose_control_characters() {
        let t = ScopedToken::from_json(&serde_json::json!({
            "name": "ci\u{1b}[2Jtoken",
            "properties": {"scopeMapId": "/x/scopeMaps/_repositories_push", "status": "enabled"}
        }));
        assert_eq!(t.name, "ci[2Jtoken");
        assert_eq!(t.scope_map, "_repositories_push");
        let t = ScopedToken::from_json(&serde_json::json!({"name": "t"}));
        assert_eq!(t.scope_map, "unknown");
    }

    #[test]
    fn subscription_ids_cannot_carry_a_path() {
        assert!(check_subscription("0000-ab").is_ok());
        assert!(check_subscription("a/b").is_err());
        assert!(check_subscription("").is_err());
    }
}
