//! Azure Resource Manager for the one emulated registry: list by subscription, GET and PATCH of
//! the registry resource (`properties.policies.trustPolicy`, `sku`, `roleAssignmentMode`,
//! `adminUserEnabled`), the list of its repository-scoped tokens, with ARM-audience Entra tokens
//! and ARM's error shapes. Identities may
//! read the registry (Reader); only those listed in `arm.writers` may change it (Contributor).

use crate::{Reply, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// The emulated registry's management-plane facts (config `arm`).
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    pub subscription: String,
    #[serde(default = "default_group")]
    pub resource_group: String,
    #[serde(default = "default_name")]
    pub name: String,
    /// `Basic`, `Standard` or `Premium`.
    #[serde(default = "default_sku")]
    pub sku: String,
    /// `enabled` or `disabled`.
    #[serde(default = "default_trust")]
    pub trust_policy: String,
    /// `AzureRoleAssignmentMode` or `AbacRepositoryPermissions`.
    #[serde(default = "default_mode")]
    pub role_assignment_mode: String,
    #[serde(default)]
    pub admin_user_enabled: bool,
    /// Client IDs that may PATCH the registry; every other identity of a configured tenant
    /// may only read it.
    #[serde(default)]
    pub writers: Vec<String>,
    /// Client IDs without any ARM role on the registry (its GET is refused).
    #[serde(default)]
    pub no_access: Vec<String>,
    /// Refuse enabling the trust policy, as ACR does since 2026-05-31 for registries that
    /// never enabled it.
    #[serde(default)]
    pub refuse_enable: bool,
    /// The registry's repository-scoped tokens (`registries/{name}/tokens`), each readable
    /// by anyone who may read the registry.
    #[serde(default)]
    pub tokens: Vec<ScopedToken>,
    /// A hostile ARM for the list call: `"huge"` (6 MiB), `"malformed"` (no list) or
    /// `"foreign_next"` (a `nextLink` to another server).
    #[serde(default)]
    pub hostile: Option<String>,
}

/// A repository-scoped token: its name is the username docker logs in with.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScopedToken {
    pub name: String,
    /// The scope map's name, e.g. `_repositories_push`.
    pub scope_map: String,
    #[serde(default = "default_token_status")]
    pub status: String,
}

fn default_token_status() -> String {
    "enabled".into()
}

fn token_json(a: &ArmConfig, t: &ScopedToken) -> Value {
    let registry = resource_id(a);
    json!({
        "id": format!("{registry}/tokens/{}", t.name),
        "name": t.name,
        "type": "Microsoft.ContainerRegistry/registries/tokens",
        "properties": {
            "creationDate": "2026-01-15T10:00:00Z",
            "provisioningState": "Succeeded",
            "scopeMapId": format!("{registry}/scopeMaps/{}", t.scope_map),
            "status": t.status,
            "credentials": {"passwords": []},
        },
    })
}

fn default_group() -> String {
    "rg-trustacr".into()
}
fn default_name() -> String {
    "trustacremu".into()
}
fn default_sku() -> String {
    "Premium".into()
}
fn default_trust() -> String {
    "enabled".into()
}
fn default_mode() -> String {
    "AzureRoleAssignmentMode".into()
}

/// The mutable part (the trust policy), behind a lock in [`State`].
pub struct ArmState {
    pub trust_policy: String,
}

const ARM_AUDIENCES: [&str; 3] = [
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
];

fn arm_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": message}}))
}

/// The caller's client ID from an ARM-audience Entra token in `authorization`.
fn caller(st: &State, authorization: Option<&str>) -> Result<String, Reply> {
    let token = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        })?;
    let claims = st.entra_signer.verify(token).map_err(|_| {
        arm_error(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )
    })?;
    if claims["exp"]
        .as_u64()
        .is_none_or(|e| e <= crate::jwt::now())
    {
        return Err(arm_error(
            401,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or("");
    if !ARM_AUDIENCES.contains(&aud) {
        return Err(arm_error(
            401,
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource.",
        ));
    }
    Ok(claims["appid"].as_str().unwrap_or("").to_string())
}

fn resource_id(a: &ArmConfig) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
        a.subscription, a.resource_group, a.name
    )
}

fn registry_json(st: &State, a: &ArmConfig) -> Value {
    let trust = st.arm_state.lock().unwrap().trust_policy.clone();
    json!({
        "id": resource_id(a),
        "name": a.name,
        "type": "Microsoft.ContainerRegistry/registries",
        "location": "westeurope",
        "sku": {"name": a.sku, "tier": a.sku},
        "properties": {
            "loginServer": st.cfg.login_server,
            "provisioningState": "Succeeded",
            "adminUserEnabled": a.admin_user_enabled,
            "roleAssignmentMode": a.role_assignment_mode,
            "policies": {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": trust},
                "retentionPolicy": {"days": 7, "status": "disabled"},
            },
        },
    })
}

/// Routes `/subscriptions/…` requests; `None` when the path is not ARM's.
pub fn route(
    st: &State,
    method: &hyper::Method,
    parts: &[&str],
    authorization: Option<&str>,
    body: &[u8],
) -> Option<Reply> {
    let ["subscriptions", sub, rest @ ..] = parts else {
        return None;
    };
    let Some(a) = st.cfg.arm.clone() else {
        return Some(arm_error(
            404,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        ));
    };
    let who = match caller(st, authorization) {
        Ok(w) => w,
        Err(r) => return Some(r),
    };
    if !sub.eq_ignore_ascii_case(&a.subscription) {
        return Some(arm_error(
            404,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        ));
    }
    let readable = !a.no_access.iter().any(|c| c.eq_ignore_ascii_case(&who));
    match (method.as_str(), rest) {
        ("GET", ["providers", "Microsoft.ContainerRegistry", "registries"])
            if a.hostile.is_some() =>
        {
            Some(match a.hostile.as_deref() {
                Some("huge") => Reply::json(200, json!({"value": [], "pad": "x".repeat(6 << 20)})),
                Some("foreign_next") => Reply::json(
                    200,
                    json!({"value": [], "nextLink": "https://attacker.invalid/steal?api-version=1"}),
                ),
                _ => Reply::json(200, json!({"value": "not a list"})),
            })
        }
        ("GET", ["providers", "Microsoft.ContainerRegistry", "registries"]) => {
            let value = if readable {
                vec![registry_json(st, &a)]
            } else {
                vec![]
            };
            Some(Reply::json(200, json!({"value": value})))
        }
        (
            m,
            [
                "resourceGroups",
                rg,
                "providers",
                "Microsoft.ContainerRegistry",
                "registries",
                name,
            ],
        ) if rg.eq_ignore_ascii_case(&a.resource_group) && name.eq_ignore_ascii_case(&a.name) => {
            let denied = |action: &str| {
                arm_error(
                    403,
                    "AuthorizationFailed",
                    &format!(
                        "The client '{who}' with object id '{who}' does not have authorization to perform action '{action}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                        resource_id(&a)
                    ),
                )
            };
            match m {
                "GET" if readable => Some(Reply::json(200, registry_json(st, &a))),
                "GET" => Some(denied("Microsoft.ContainerRegistry/registries/read")),
                "PATCH" if a.writers.iter().any(|c| c.eq_ignore_ascii_case(&who)) => {
                    Some(patch(st, &a, body))
                }
                "PATCH" => Some(denied("Microsoft.ContainerRegistry/registries/write")),
                _ => Some(arm_error(
                    405,
                    "MethodNotAllowed",
                    "The requested method is not allowed.",
                )),
            }
        }
        (
            "GET",
            [
                "resourceGroups",
                rg,
                "providers",
                "Microsoft.ContainerRegistry",
                "registries",
                name,
                "tokens",
            ],
        ) if rg.eq_ignore_ascii_case(&a.resource_group) && name.eq_ignore_ascii_case(&a.name) => {
            Some(if readable {
                let value: Vec<Value> = a.tokens.iter().map(|t| token_json(&a, t)).collect();
                Reply::json(200, json!({"value": value}))
            } else {
                arm_error(
                    403,
                    "AuthorizationFailed",
                    &format!(
                        "The client '{who}' with object id '{who}' does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/tokens/read' over scope '{}' or the scope is invalid.",
                        resource_id(&a)
                    ),
                )
            })
        }
        _ => Some(arm_error(
            404,
            "ResourceNotFound",
            "The Resource was not found.",
        )),
    }
}

fn patch(st: &State, a: &ArmConfig, body: &[u8]) -> Reply {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid.",
        );
    };
    let trust = &v["properties"]["policies"]["trustPolicy"];
    if let Some(status) = trust.get("status").and_then(Value::as_str) {
        if status != "enabled" && status != "disabled" {
            return arm_error(
                400,
                "InvalidRequestContent",
                &format!("The trust policy status '{status}' is not valid."),
            );
        }
        if a.sku != "Premium" {
            return arm_error(
                400,
                "PoliciesNotSupported",
                "Policies are only supported for managed registries in Premium SKU.",
            );
        }
        if status == "enabled" && a.refuse_enable {
            return arm_error(
                400,
                "ContentTrustDeprecated",
                "Content trust can no longer be enabled on this registry: Docker Content Trust is deprecated. See https://aka.ms/acr/dctdeprecation.",
            );
        }
        st.arm_state.lock().unwrap().trust_policy = status.to_string();
    }
    Reply::json(200, registry_json(st, a))
}
