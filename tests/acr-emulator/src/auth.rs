//! Microsoft Entra ID's token endpoint and ACR's token service (`/oauth2/exchange`,
//! `/oauth2/token`), with ACR's role to action mapping.

use crate::config::Identity;
use crate::jwt::{self, now, random_hex};
use crate::{Reply, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The null GUID: as a Basic user name it says "the password is an ACR refresh token".
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
pub const ACR_AUDIENCE: &str = "https://containerregistry.azure.net";
const ARM_AUDIENCES: [&str; 3] = [
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
];
/// The tenant of personal Microsoft accounts.
const MSA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A parsed `application/x-www-form-urlencoded` body or query string.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(form_urlencoded::parse(bytes).into_owned().collect())
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Entra ID

fn entra_error(status: u16, error: &str, code: u32, desc: &str) -> Reply {
    let trace = guid();
    let corr = guid();
    let ts = utc_timestamp(now());
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {desc} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"
            ),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub fn entra_token(st: &State, tenant: &str, form: &Form) -> Reply {
    let tenant = st
        .cfg
        .tenant_domains
        .iter()
        .find(|(domain, _)| domain.eq_ignore_ascii_case(tenant))
        .map_or(tenant, |(_, id)| id.as_str());
    let grant = form.get("grant_type").unwrap_or("");
    if grant != "client_credentials" {
        return entra_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = form.get("client_id") else {
        return entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let in_tenant: Vec<&Identity> = st
        .cfg
        .identities
        .iter()
        .filter(|i| i.tenant_id.eq_ignore_ascii_case(tenant))
        .collect();
    if in_tenant.is_empty() {
        return entra_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let Some(id) = in_tenant
        .iter()
        .find(|i| i.client_id.eq_ignore_ascii_case(client_id))
    else {
        return entra_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    };
    let Some(scope) = form.get("scope") else {
        return entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let Some(resource) = scope.strip_suffix("/.default") else {
        return entra_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    let aud = match resource.trim_end_matches('/') {
        ACR_AUDIENCE => ACR_AUDIENCE,
        "https://management.azure.com" => "https://management.azure.com/",
        "https://management.core.windows.net" => "https://management.core.windows.net/",
        _ => {
            return entra_error(
                400,
                "invalid_resource",
                500011,
                &format!(
                    "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
                ),
            );
        }
    };
    if let Some(secret) = form.get("client_secret") {
        let ok = id
            .client_secret
            .as_deref()
            .is_some_and(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()));
        if !ok {
            eprintln!("acr-emulator: entra: wrong client secret for client {client_id}");
            return entra_error(
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return entra_error(
                400,
                "invalid_request",
                700023,
                "Client assertion type is not valid; expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let Ok(claims) = jwt::unverified_claims(assertion) else {
            return entra_error(
                400,
                "invalid_client",
                50027,
                "JWT token is invalid or malformed.",
            );
        };
        let sub = claims["sub"].as_str().unwrap_or("");
        let has_aud = match &claims["aud"] {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        };
        if sub.is_empty() || !has_aud {
            return entra_error(
                400,
                "invalid_client",
                50027,
                "JWT token is invalid or malformed.",
            );
        }
        if claims["exp"].as_u64().is_some_and(|e| e < now()) {
            return entra_error(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            );
        }
        if id.federated_subject.as_deref() != Some(sub) {
            eprintln!(
                "acr-emulator: entra: no federated credential of client {client_id} matches the assertion's subject"
            );
            return entra_error(
                400,
                "invalid_client",
                70021,
                &format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
                    claims["iss"].as_str().unwrap_or(""),
                    claims["aud"]
                ),
            );
        }
    } else {
        return entra_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let t = now();
    let oid = id.oid();
    let token = st.entra_signer.sign(&json!({
        "aud": aud,
        "iss": format!("https://sts.windows.net/{}/", id.tenant_id),
        "iat": t,
        "nbf": t,
        "exp": t + st.cfg.entra_token_lifetime_secs,
        "appid": id.client_id,
        "azp": id.client_id,
        "idtyp": "app",
        "oid": oid,
        "sub": oid,
        "tid": id.tenant_id,
        "ver": "1.0",
        "uti": random_hex(8),
    }));
    let lifetime = st.cfg.entra_token_lifetime_secs;
    Reply::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub fn openid_configuration(st: &State, tenant: &str) -> Reply {
    let base = format!("https://{}/{tenant}", st.cfg.login_server);
    Reply::json(
        200,
        json!({
            "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "jwks_uri": format!("https://{}/{tenant}/discovery/v2.0/keys", st.cfg.login_server),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "tenant_region_scope": "EU",
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`: the Entra signing key as a JWK set.
pub fn jwks(st: &State) -> Reply {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let point = st.entra_signer.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    Reply::json(
        200,
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": jwt::libtrust_key_id(st.entra_signer.verifying_key()),
            "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&bytes[33..65]),
        }]}),
    )
}

// ---------------------------------------------------------------------------------------------
// ACR token service

/// ACR's error body, `{"errors":[{"code","message"}]}`.
pub fn acr_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"code": code, "message": message}]}),
    )
}

fn unauthorized(why: &str) -> Reply {
    eprintln!("acr-emulator: token service refused: {why}");
    acr_error(401, "UNAUTHORIZED", why)
}

/// The roles and identity a refresh token (or a password) stands for.
struct Grant {
    sub: String,
    tenant: String,
    oid: String,
    appid: String,
    roles: Vec<String>,
}

fn refresh_token(st: &State, g: &Grant) -> String {
    let t = now();
    st.token_signer.sign(&json!({
        "jti": random_hex(16),
        "sub": g.sub,
        "nbf": t,
        "exp": t + st.cfg.refresh_token_lifetime_secs,
        "iat": t,
        "iss": st.cfg.issuer,
        "aud": st.cfg.login_server,
        "version": "1.0",
        "rid": registry_id(st),
        "grant_type": "refresh_token",
        "appid": g.appid,
        "tenant": g.tenant,
        "oid": g.oid,
        "permissions": {"actions": ["read"], "notActions": []},
        "roles": g.roles,
    }))
}

fn registry_id(st: &State) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(st.cfg.login_server.as_bytes());
    h[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /oauth2/exchange`: an Entra access token for an ACR refresh token.
pub fn exchange(st: &State, form: &Form) -> Reply {
    let grant = form.get("grant_type").unwrap_or("");
    if grant != "access_token" && grant != "access_token_refresh_token" {
        return acr_error(
            400,
            "UNSUPPORTED",
            &format!("grant type {grant:?} is not supported"),
        );
    }
    if form.get("service") != Some(st.cfg.login_server.as_str()) {
        return unauthorized("the service does not name this registry");
    }
    let Some(token) = form.get("access_token") else {
        return acr_error(400, "BAD_REQUEST", "access_token is required");
    };
    let claims = match st.entra_signer.verify(token) {
        Ok(c) => c,
        Err(e) => return unauthorized(&format!("the access token is not valid: {e}")),
    };
    if claims["exp"].as_u64().is_none_or(|e| e <= now()) {
        return unauthorized("the access token has expired");
    }
    let aud = claims["aud"].as_str().unwrap_or("");
    if aud != ACR_AUDIENCE && !ARM_AUDIENCES.contains(&aud) {
        return unauthorized("the access token has the wrong audience");
    }
    let tid = claims["tid"].as_str().unwrap_or("");
    // Personal Microsoft accounts sign in to Entra in this tenant; ACR refuses them.
    if tid.eq_ignore_ascii_case(MSA_TENANT) {
        return unauthorized("personal Microsoft accounts are not supported");
    }
    // ACR takes the tenant's ID only; a domain name that Entra accepted is refused here.
    if let Some(t) = form.get("tenant")
        && !crate::config::is_guid(t)
    {
        return acr_error(
            400,
            "BAD_REQUEST",
            &format!("tenant {t:?} is not a valid tenant ID"),
        );
    }
    if let Some(t) = form.get("tenant")
        && !t.eq_ignore_ascii_case(tid)
    {
        return unauthorized("the tenant does not match the access token");
    }
    let oid = claims["oid"].as_str().unwrap_or("");
    let Some(id) = st
        .cfg
        .identities
        .iter()
        .find(|i| i.tenant_id.eq_ignore_ascii_case(tid) && i.oid() == oid)
    else {
        return unauthorized("the identity is unknown to this registry");
    };
    let g = grant_of(id);
    Reply::json(200, json!({"refresh_token": refresh_token(st, &g)}))
}

fn grant_of(id: &Identity) -> Grant {
    Grant {
        sub: id.name.clone(),
        tenant: id.tenant_id.clone(),
        oid: id.oid(),
        appid: id.client_id.clone(),
        roles: id.roles.clone(),
    }
}

/// The grant behind an ACR refresh token.
fn from_refresh_token(st: &State, token: &str) -> Result<Grant, Reply> {
    let c = st
        .token_signer
        .verify(token)
        .map_err(|e| unauthorized(&format!("the refresh token is not valid: {e}")))?;
    if c["grant_type"] != "refresh_token" || c["iss"] != st.cfg.issuer.as_str() {
        return Err(unauthorized("not an ACR refresh token"));
    }
    if c["aud"] != st.cfg.login_server.as_str() {
        return Err(unauthorized("the refresh token is for another registry"));
    }
    if c["exp"].as_u64().is_none_or(|e| e <= now()) {
        return Err(unauthorized("the refresh token has expired"));
    }
    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
    Ok(Grant {
        sub: s("sub"),
        tenant: s("tenant"),
        oid: s("oid"),
        appid: s("appid"),
        roles: c["roles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The grant behind a user name and password: the null GUID with a refresh token, or a
/// service principal's client ID and secret.
fn from_password(st: &State, user: &str, pass: &str) -> Result<Grant, Reply> {
    if user == NULL_GUID {
        return from_refresh_token(st, pass);
    }
    st.cfg
        .identities
        .iter()
        .find(|i| {
            i.client_id.eq_ignore_ascii_case(user)
                && i.client_secret
                    .as_deref()
                    .is_some_and(|s| constant_time_eq(s.as_bytes(), pass.as_bytes()))
        })
        .map(grant_of)
        .ok_or_else(|| unauthorized("wrong user name or password"))
}

fn access_token(st: &State, g: &Grant, scopes: &[String]) -> Result<(String, Value), Reply> {
    let access = grant_access(&g.roles, scopes, &st.cfg.login_server);
    if st.cfg.missing_role == "refuse" && !grants_all(scopes, &access) {
        return Err(unauthorized(
            "the identity's roles do not allow every requested action",
        ));
    }
    let claim = if st.cfg.access_keys == "capitalised" {
        capitalise_keys(&access)
    } else {
        access.clone()
    };
    let t = now();
    let token = st.token_signer.sign(&json!({
        "jti": random_hex(16),
        "sub": g.sub,
        "nbf": t,
        "exp": t + st.cfg.access_token_lifetime_secs,
        "iat": t,
        "iss": st.cfg.issuer,
        "aud": st.cfg.access_audience(),
        "version": "1.0",
        "rid": registry_id(st),
        "access": claim,
        "roles": [],
        "grant_type": "access_token",
        "appid": g.appid,
        "tenant": g.tenant,
        "oid": g.oid,
    }));
    Ok((token, access))
}

/// The `access` claim with `Type`, `Name` and `Actions` as keys.
fn capitalise_keys(access: &Value) -> Value {
    let entries = access.as_array().map(Vec::as_slice).unwrap_or_default();
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"Type": e["type"], "Name": e["name"], "Actions": e["actions"]}))
            .collect(),
    )
}

/// Whether `access` holds every action `scopes` asked for.
fn grants_all(scopes: &[String], access: &Value) -> bool {
    scopes.iter().all(|s| {
        let Some((typ, rest)) = s.split_once(':') else {
            return true;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            return true;
        };
        let granted = access.as_array().and_then(|a| {
            a.iter()
                .find(|e| e["type"] == typ && e["name"] == name)
                .and_then(|e| e["actions"].as_array())
        });
        actions
            .split(',')
            .filter(|a| !a.is_empty())
            .all(|act| granted.is_some_and(|g| g.iter().any(|x| x == act)))
    })
}

/// `POST /oauth2/token`.
pub fn token_post(st: &State, form: &Form) -> Reply {
    if !st.cfg.is_service(form.get("service")) {
        return unauthorized("the service does not name this registry");
    }
    let grant = match form.get("grant_type").unwrap_or("") {
        "refresh_token" => match form.get("refresh_token") {
            Some(rt) => from_refresh_token(st, rt),
            None => return acr_error(400, "BAD_REQUEST", "refresh_token is required"),
        },
        "password" => from_password(
            st,
            form.get("username").unwrap_or(""),
            form.get("password").unwrap_or(""),
        ),
        g => {
            return acr_error(
                400,
                "UNSUPPORTED",
                &format!("grant type {g:?} is not supported"),
            );
        }
    };
    let g = match grant {
        Ok(g) => g,
        Err(r) => return r,
    };
    let scopes = split_scopes(form.all("scope"));
    let (token, _) = match access_token(st, &g, &scopes) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut body = json!({"access_token": token});
    if form.get("access_type") == Some("offline") {
        body["refresh_token"] = refresh_token(st, &g).into();
    }
    Reply::json(200, body)
}

/// `GET /oauth2/token?service=…&scope=…` with Basic auth.
pub fn token_get(st: &State, query: &Form, authorization: Option<&str>) -> Reply {
    if !st.cfg.is_service(query.get("service")) {
        return unauthorized("the service does not name this registry");
    }
    let Some((user, pass)) = authorization.and_then(basic_credentials) else {
        return unauthorized("authentication required");
    };
    let g = match from_password(st, &user, &pass) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let scopes = split_scopes(query.all("scope"));
    let (token, _) = match access_token(st, &g, &scopes) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut body = json!({"access_token": token});
    if query.get("offline_token") == Some("true") {
        body["refresh_token"] = refresh_token(st, &g).into();
    }
    Reply::json(200, body)
}

fn basic_credentials(h: &str) -> Option<(String, String)> {
    let (scheme, rest) = h.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Scope strings from every `scope` field; one field may hold several, space-separated.
pub fn split_scopes<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<String> {
    fields
        .flat_map(|f| f.split_whitespace())
        .map(String::from)
        .collect()
}

/// What the roles allow on one resource. Names beginning with `<login server>/` are Notary
/// GUNs; others are registry repositories.
fn allowed_actions(
    roles: &[String],
    typ: &str,
    name: &str,
    login_server: &str,
) -> Vec<&'static str> {
    let has = |r: &str| roles.iter().any(|x| x == r);
    let reader = has("AcrPull") || has("AcrPush");
    let mut a = Vec::new();
    match typ {
        "repository" if name.starts_with(&format!("{login_server}/")) => {
            if reader {
                a.push("pull");
            }
            if has("AcrImageSigner") {
                a.push("push");
                if has("AcrDelete") {
                    a.push("*");
                }
            }
        }
        "repository" => {
            if reader {
                a.extend(["pull", "metadata_read"]);
            }
            if has("AcrPush") {
                a.extend(["push", "metadata_write"]);
            }
            if has("AcrDelete") {
                a.extend(["delete", "deleted_read"]);
            }
            if has("AcrPush") && has("AcrDelete") {
                a.push("*");
            }
        }
        "registry" if name == "catalog" && reader => a.push("*"),
        _ => {}
    }
    a
}

/// The `access` claim: for each requested resource, the requested actions the roles allow
/// (with `missing_role: "refuse"`, `access_token` refuses instead; see ASSUMPTIONS.md).
pub fn grant_access(roles: &[String], scopes: &[String], login_server: &str) -> Value {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for s in scopes {
        let Some((typ, rest)) = s.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let allowed = allowed_actions(roles, typ, name, login_server);
        let idx = match out.iter().position(|(t, n, _)| t == typ && n == name) {
            Some(i) => i,
            None => {
                out.push((typ.to_string(), name.to_string(), Vec::new()));
                out.len() - 1
            }
        };
        for act in actions.split(',').filter(|a| !a.is_empty()) {
            if allowed.contains(&act) && !out[idx].2.iter().any(|x| x == act) {
                out[idx].2.push(act.to_string());
            }
        }
    }
    Value::Array(
        out.into_iter()
            .map(|(t, n, a)| json!({"type": t, "name": n, "actions": a}))
            .collect(),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn guid() -> String {
    crate::config::format_guid(&random_hex(16))
}

/// `YYYY-MM-DD hh:mm:ssZ`, as Entra's error bodies print time.
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    const LS: &str = "127.0.0.1:5000";

    #[test]
    fn scopes_split_on_spaces_and_fields() {
        let s =
            split_scopes(["repository:a:pull registry:catalog:*", "repository:b:push"].into_iter());
        assert_eq!(
            s,
            [
                "repository:a:pull",
                "registry:catalog:*",
                "repository:b:push"
            ]
        );
    }

    #[test]
    fn pusher_gets_only_pull_on_a_gun() {
        let a = grant_access(
            &roles(&["AcrPush"]),
            &["repository:127.0.0.1:5000/team/app:pull,push".into()],
            LS,
        );
        assert_eq!(
            a,
            json!([{"type": "repository", "name": "127.0.0.1:5000/team/app", "actions": ["pull"]}])
        );
    }

    #[test]
    fn signer_gets_push_on_a_gun_and_pusher_on_the_repository() {
        let r = roles(&["AcrPush", "AcrImageSigner"]);
        let a = grant_access(
            &r,
            &[
                "repository:127.0.0.1:5000/team/app:pull,push".into(),
                "repository:team/app:push,pull".into(),
            ],
            LS,
        );
        assert_eq!(a[0]["actions"], json!(["pull", "push"]));
        assert_eq!(a[1]["actions"], json!(["push", "pull"]));
    }

    #[test]
    fn reader_gets_pull_only() {
        let a = grant_access(
            &roles(&["AcrPull"]),
            &[
                "repository:team/app:pull,push,*".into(),
                "registry:catalog:*".into(),
            ],
            LS,
        );
        assert_eq!(a[0]["actions"], json!(["pull"]));
        assert_eq!(a[1]["actions"], json!(["*"]));
    }

    #[test]
    fn repeated_scopes_merge() {
        let a = grant_access(
            &roles(&["AcrPush"]),
            &["repository:x:pull".into(), "repository:x:push".into()],
            LS,
        );
        assert_eq!(a.as_array().unwrap().len(), 1);
        assert_eq!(a[0]["actions"], json!(["pull", "push"]));
    }

    #[test]
    fn timestamp_format() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14 22:13:20Z");
    }

    #[test]
    fn basic_credentials_parse() {
        let h = format!("Basic {}", STANDARD.encode("u:p:q"));
        assert_eq!(basic_credentials(&h), Some(("u".into(), "p:q".into())));
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
