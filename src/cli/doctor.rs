//! `doctor [IMAGE | REGISTRY]`: everything a signed push on ACR depends on, checked in order
//! and reported at once, each line ✔ (works), ! (works, but look) or ✘ (broken) with one line
//! of fix, instead of one failure at a time.
//!
//! It builds on `info`'s [`Check`] list (same ids for the shared parts, same JSON shape per
//! check) and adds the ACR chain: Entra, the exchange, the actions granted on the repository,
//! the registry over Azure Resource Manager, the trust data, the keys here, expiry and the DCT
//! retirement. A step that cannot run says why and the others go on. Exit 0 only when no line
//! is ✘. Tokens are never shown: who signed in is read from the token's claims.

use std::io::Write;

use serde::Serialize;
use time::OffsetDateTime;

use super::info::{Check, Status, outcome};
use super::trust::{Settings, TrustRepo};
use super::{Context, Error, cancellable};
use crate::acr::{self, AcrError};
use crate::dockercfg::ConfigDir;
use crate::dockercfg::context::resolve_endpoint;
use crate::dockercfg::credentials::{self, Credential};
use crate::engine::{DEFAULT_TIMEOUT, Engine};
use crate::entra;
use crate::keystore::{self, KeyringState};
use crate::notary::client::ClientError;
use crate::reference::ImageRef;
use crate::registry::endpoint::{Endpoint, RegistryHost};
use crate::secret::Secret;

/// When ACR removes Docker Content Trust.
pub const DCT_RETIREMENT: &str = "2028-03-31";

/// Metadata that expires sooner than this is flagged.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// An image (myregistry.azurecr.io/app[:tag]) for the repository checks, or a registry
    /// (myregistry.azurecr.io) for the registry checks only.
    #[arg(value_name = "IMAGE | REGISTRY")]
    target: Option<String>,
    /// The Azure subscription that holds the registry (default: the setting in trustacr.json,
    /// AZURE_SUBSCRIPTION_ID, or the Azure CLI's default subscription).
    #[arg(long, value_name = "ID")]
    subscription: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    checks: Vec<Check>,
}

fn check(
    id: &'static str,
    status: Status,
    detail: impl Into<String>,
    hint: Option<String>,
) -> Check {
    Check {
        id,
        status,
        detail: detail.into(),
        hint,
    }
}

fn ok(id: &'static str, detail: impl Into<String>) -> Check {
    check(id, Status::Ok, detail, None)
}

fn warn(id: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
    check(id, Status::Warn, detail, Some(hint.into()))
}

fn fail(id: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
    check(id, Status::Fail, detail, Some(hint.into()))
}

fn not_checked(id: &'static str, why: impl Into<String>) -> Check {
    check(
        id,
        Status::Warn,
        format!("not checked: {}", why.into()),
        None,
    )
}

fn role_fix(role: &str) -> String {
    format!(
        "ask an owner of the registry: az role assignment create --role {role} --assignee <your app or principal id> --scope $(az acr show --name <registry name> --query id --output tsv); then docker trustacr logout <registry> to drop tokens with the old roles"
    )
}

impl DoctorArgs {
    /// Runs every check, prints the report, and fails when a line is ✘.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let target = match &self.target {
            None => None,
            Some(t) if t.contains('/') => Some(Target::Image(ImageRef::parse(t)?)),
            Some(t) => Some(Target::Registry(
                RegistryHost::parse(t).map_err(|e| Error::Usage(e.to_string()))?,
            )),
        };
        let checks = cancellable(&ctx.cancel, async {
            Ok(self.collect(ctx, target.as_ref()).await)
        })
        .await?;
        let report = Report {
            target: self.target.clone(),
            checks,
        };
        let written = ctx.out.emit(&report, |out| write_text(out, &report));
        // The report already shows each failure's fix.
        let failures = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| Error::Check {
                id: c.id,
                detail: c.detail.clone(),
                hint: None,
            })
            .collect();
        outcome(failures, written)
    }

    async fn collect(&self, ctx: &Context, target: Option<&Target>) -> Vec<Check> {
        let mut checks = Vec::new();
        let keyring = tokio::task::spawn_blocking(keystore::probe);
        let host = target.map(Target::host);

        // docker's configuration and the credential it holds for the registry.
        let config_dir = match ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env) {
            Ok(d) => d,
            Err(e) => {
                checks.push(fail(
                    "config",
                    e.to_string(),
                    "fix DOCKER_CONFIG or --config",
                ));
                return checks;
            }
        };
        let file = match config_dir.load() {
            Ok(f) => {
                checks.push(ok(
                    "config",
                    format!("using {}", config_dir.config_file().display()),
                ));
                f
            }
            Err(e) => {
                checks.push(fail(
                    "config",
                    e.to_string(),
                    "repair or move the file; docker recreates it",
                ));
                return checks;
            }
        };
        let settings = Settings::load(&config_dir).unwrap_or_default();
        let acr = host.is_some_and(|h| acr::is_acr(h, &settings.acr_registries));
        // The username of a username and password: the admin account or a scoped token.
        let mut basic_user = None;
        if let Some(h) = host {
            let found = credentials::resolve(&file, h.as_str()).await;
            if let Ok(f) = &found
                && let Credential::Basic { username, .. } = &f.credential
            {
                basic_user = Some(username.clone());
            }
            checks.push(credential_check(h, acr, found));
        }

        // The engine.
        checks.push(
            match resolve_endpoint(&ctx.globals, &ctx.env, &config_dir, &file) {
                Err(e) => fail(
                    "engine",
                    e.to_string(),
                    "check DOCKER_HOST, --host or the docker context",
                ),
                Ok(ep) => match Engine::connect(&ep, DEFAULT_TIMEOUT) {
                    Err(e) => fail(
                        "engine",
                        e.to_string(),
                        "start the Docker engine, or point DOCKER_HOST at it",
                    ),
                    Ok(engine) => match engine.version().await {
                        Ok(v) => ok(
                            "engine",
                            format!(
                                "Docker {} (API {}) at {}",
                                v.version, v.api_version, ep.host
                            ),
                        ),
                        Err(e) => fail(
                            "engine",
                            e.to_string(),
                            "start the Docker engine, or point DOCKER_HOST at it",
                        ),
                    },
                },
            },
        );

        // The keyring.
        let state = keyring.await.unwrap_or_else(|e| KeyringState::Unreachable {
            message: format!("keyring probe failed: {e}"),
        });
        checks.push(match &state {
            KeyringState::Unlocked => ok("keyring", state.to_string()),
            _ => fail(
                "keyring",
                state.to_string(),
                "unlock the login keyring (or start a Secret Service)",
            ),
        });

        let Some(host) = host else {
            checks.push(not_checked(
                "entra",
                "give an IMAGE or REGISTRY to check the registry",
            ));
            checks.push(retirement());
            return checks;
        };
        if !acr {
            checks.push(not_checked(
                "entra",
                format!("{host} is not an Azure Container Registry (list it in \"acr_registries\" in trustacr.json if it is one)"),
            ));
        } else {
            self.acr_checks(
                ctx,
                &config_dir.path,
                host,
                target,
                basic_user.as_deref(),
                &mut checks,
            )
            .await;
        }

        if let Some(Target::Image(image)) = target {
            trust_checks(ctx, image, &mut checks).await;
        } else {
            checks.push(not_checked(
                "trust-data",
                "give an IMAGE to check its repository's trust data and keys",
            ));
        }
        checks.push(retirement());
        checks
    }

    async fn acr_checks(
        &self,
        ctx: &Context,
        config_path: &std::path::Path,
        host: &RegistryHost,
        target: Option<&Target>,
        basic_user: Option<&str>,
        checks: &mut Vec<Check>,
    ) {
        let registry = host.as_str();
        // Entra: which source works, and who it is (claims only, never the token).
        match entra::entra_client() {
            Err(e) => checks.push(fail("entra", e.to_string(), "check SSL_CERT_FILE")),
            Ok(http) => match entra::acr_token(&ctx.entra, http).await {
                Ok(t) => {
                    let claim = |c: &str| {
                        entra::jwt_claim(t.token.expose(), c).unwrap_or_else(|| "-".into())
                    };
                    checks.push(ok(
                        "entra",
                        format!(
                            "signed in with {}: tenant {}, object {}, app {}",
                            t.source,
                            claim("tid"),
                            claim("oid"),
                            claim("appid")
                        ),
                    ));
                }
                Err(e) => {
                    checks.push(fail("entra", e.to_string(), "sign in: az login, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"));
                }
            },
        }

        // The exchange and the actions granted on the repository.
        let login_server = Endpoint::registry(host, true);
        let refresh = match login_server.client(config_path) {
            Err(e) => Err(AcrError::Unreachable {
                registry: registry.to_string(),
                reason: e.to_string(),
            }),
            Ok(http) => acr::refresh_token(&http, &login_server, registry, &ctx.entra)
                .await
                .map(|t| (http, t)),
        };
        match refresh {
            Err(e) => checks.push(fail(
                "exchange",
                e.to_string(),
                "use a work or school account or a service principal of the registry's tenant (--tenant); personal Microsoft accounts cannot sign in to ACR",
            )),
            Ok((http, token)) => {
                checks.push(ok("exchange", format!("{registry} gave an ACR refresh token")));
                match target {
                    Some(Target::Image(image)) => {
                        checks.push(actions_check(&http, &login_server, registry, &token, image).await);
                    }
                    _ => checks.push(not_checked("actions", "give an IMAGE to check pull, push and sign on its repository")),
                }
            }
        }

        // The registry over Azure Resource Manager.
        let arm = async {
            let arm = super::registry::connect(ctx, host, self.subscription.as_deref()).await?;
            let r = arm.find(registry).await?;
            Ok::<_, Error>((arm, r))
        };
        match arm.await {
            Err(e) => {
                checks.push(not_checked("arm", format!("{e}")));
                if basic_user.is_some() {
                    checks.push(not_checked(
                        "scoped-token",
                        "without Azure Resource Manager, whether the username and password are a repository-scoped token or the admin account is unknown (see credential)",
                    ));
                }
            }
            Ok((arm, r)) => {
                checks.push(ok(
                    "arm",
                    format!("{} ({}) in subscription of {}", r.name, r.id, registry),
                ));
                checks.push(if r.sku.eq_ignore_ascii_case("Premium") {
                    ok("sku", "Premium")
                } else {
                    fail(
                        "sku",
                        format!("{} SKU: content trust needs Premium", r.sku),
                        "az acr update --name <registry> --sku Premium",
                    )
                });
                checks.push(if r.trust_policy == "enabled" {
                    ok("trust-policy", "content trust is enabled")
                } else {
                    fail(
                        "trust-policy",
                        format!("content trust is {} on the registry: signed pushes are refused", r.trust_policy),
                        "ACR refuses new enablement since 2026-05-31: sign with Notary Project (notation) instead",
                    )
                });
                checks.push(if r.is_abac() {
                    fail(
                        "role-assignment-mode",
                        "ABAC repository permissions: ACR does not support content trust on it",
                        "use a registry in RBAC mode (AzureRoleAssignmentMode), or Notary Project signatures",
                    )
                } else {
                    ok(
                        "role-assignment-mode",
                        r.role_assignment_mode.clone().unwrap_or_else(|| "RBAC (not reported)".into()),
                    )
                });
                checks.push(match r.admin_user_enabled {
                    Some(true) => warn(
                        "admin-user",
                        "the admin account is enabled; it cannot sign",
                        "az acr update --name <registry> --admin-enabled false, and sign in with Entra",
                    ),
                    _ => ok("admin-user", "disabled"),
                });
                if let Some(user) = basic_user {
                    checks.push(scoped_token_check(&arm, &r, host, user).await);
                }
            }
        }
    }
}

/// Whether the username docker's configuration holds for the registry is one of its
/// repository-scoped tokens (ARM `registries/{name}/tokens`; a token's username is its name).
async fn scoped_token_check(
    arm: &acr::arm::Arm,
    r: &acr::arm::Registry,
    host: &RegistryHost,
    user: &str,
) -> Check {
    let tokens = match arm.tokens(r).await {
        Ok(t) => t,
        Err(e) => return not_checked("scoped-token", e.to_string()),
    };
    match tokens.iter().find(|t| t.name.eq_ignore_ascii_case(user)) {
        Some(t) => fail(
            "scoped-token",
            format!(
                "the username in docker's configuration is {}'s repository-scoped token {} (scope map {}, {}): ACR does not allow Docker Content Trust signing with a token",
                r.name, t.name, t.scope_map, t.status
            ),
            format!(
                "sign with an Entra identity that has AcrImageSigner: docker logout {host}, then docker trustacr login {host}"
            ),
        ),
        None if user.eq_ignore_ascii_case(&r.name) => ok(
            "scoped-token",
            format!(
                "{user} is the admin account's username, not one of the registry's {} tokens",
                tokens.len()
            ),
        ),
        None => ok(
            "scoped-token",
            format!(
                "{user} is none of the registry's {} repository-scoped tokens",
                tokens.len()
            ),
        ),
    }
}

enum Target {
    Image(ImageRef),
    Registry(RegistryHost),
}

impl Target {
    fn host(&self) -> &RegistryHost {
        match self {
            Target::Image(i) => &i.registry,
            Target::Registry(h) => h,
        }
    }
}

fn credential_check(
    host: &RegistryHost,
    acr: bool,
    found: Result<credentials::ResolvedCredential, credentials::CredentialError>,
) -> Check {
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            return fail(
                "credential",
                e.to_string(),
                "fix the credential helper named in config.json",
            );
        }
    };
    match (&found.credential, acr) {
        (Credential::Basic { .. }, true) => fail(
            "credential",
            format!(
                "docker's configuration ({}) holds a username and password for {host}: the admin account or a repository-scoped token, which ACR does not allow to sign",
                found.source
            ),
            format!("docker logout {host}, then docker trustacr login {host} (Entra)"),
        ),
        (Credential::Anonymous, true) => ok(
            "credential",
            "none stored; the plugin signs in with Entra ID each time (docker trustacr login stores a token for plain docker)",
        ),
        (Credential::Anonymous, false) => warn(
            "credential",
            format!("docker's configuration holds no credential for {host}"),
            format!("docker login {host}"),
        ),
        (c, _) => ok("credential", format!("{} ({})", c.kind(), found.source)),
    }
}

/// pull, push and sign on the image's repository and its Notary GUN, from the `access` claim
/// of tokens asked for those scopes.
async fn actions_check(
    http: &reqwest::Client,
    login_server: &Endpoint,
    registry: &str,
    refresh: &Secret,
    image: &ImageRef,
) -> Check {
    let repo = granted(http, login_server, registry, refresh, &image.repository).await;
    let gun = granted(http, login_server, registry, refresh, &image.gun()).await;
    let ((pull, push), (_, sign)) = match (repo, gun) {
        (Ok(r), Ok(g)) => (r, g),
        (Err(e), _) | (_, Err(e)) => {
            return fail(
                "actions",
                e.to_string(),
                "check the network and sign in again",
            );
        }
    };
    let mark = |b: bool| if b { "yes" } else { "NO" };
    let detail = format!(
        "on {}: pull {}, push {}, sign {}",
        image.repository,
        mark(pull),
        mark(push),
        mark(sign)
    );
    if !pull {
        fail(
            "actions",
            format!("{detail}: the identity lacks AcrPull"),
            role_fix("AcrPull"),
        )
    } else if !push {
        fail(
            "actions",
            format!("{detail}: the identity lacks AcrPush"),
            role_fix("AcrPush"),
        )
    } else if !sign {
        fail(
            "actions",
            format!("{detail}: the identity lacks AcrImageSigner"),
            role_fix("AcrImageSigner"),
        )
    } else {
        ok("actions", detail)
    }
}

/// Whether tokens for `name` grant pull and push. A refusal (401/403) of `pull,push` is asked
/// again for `pull` alone: ACR may refuse rather than grant a subset.
async fn granted(
    http: &reqwest::Client,
    login_server: &Endpoint,
    registry: &str,
    refresh: &Secret,
    name: &str,
) -> Result<(bool, bool), AcrError> {
    let both = format!("repository:{name}:pull,push");
    match acr::access_token(http, login_server, registry, refresh, &both).await {
        Ok(t) => Ok((t.grants(name, "pull"), t.grants(name, "push"))),
        Err(AcrError::TokenRefused {
            status: 401 | 403, ..
        }) => {
            let pull = format!("repository:{name}:pull");
            match acr::access_token(http, login_server, registry, refresh, &pull).await {
                Ok(t) => Ok((t.grants(name, "pull"), false)),
                Err(AcrError::TokenRefused {
                    status: 401 | 403, ..
                }) => Ok((false, false)),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Trust data (reachable, initialised, verified against the pin), keys here, and expiry.
async fn trust_checks(ctx: &Context, image: &ImageRef, checks: &mut Vec<Check>) {
    let gun = image.gun();
    let t = match TrustRepo::open(ctx, image).await {
        Ok(t) => t,
        Err(e) => {
            checks.push(fail(
                "trust-data",
                e.to_string(),
                "see the error; docker trustacr info shows the setup",
            ));
            return;
        }
    };
    let repo = match t.update().await {
        Ok(r) => r,
        Err(Error::Notary(ClientError::NotFound { .. })) => {
            checks.push(warn(
                "trust-data",
                format!("the notary server has no trust data for {gun} yet"),
                "the first docker trustacr push creates it",
            ));
            return;
        }
        Err(Error::Notary(ClientError::Verify(e))) => {
            checks.push(fail(
                "trust-data",
                format!("the trust data of {gun} does not verify: {e}"),
                "if the root was rotated on purpose, update the pin (trust_pinning in trustacr.json) or remove the cached root under the trust directory; otherwise do not use this repository",
            ));
            return;
        }
        Err(e) => {
            checks.push(fail(
                "trust-data",
                e.to_string(),
                "check the notary server's address and the network",
            ));
            return;
        }
    };
    let tags: usize = repo.roles.iter().map(|r| r.targets.targets.len()).sum();
    checks.push(ok(
        "trust-data",
        format!(
            "{gun}: reachable, initialised, verified against the pinned root ({tags} signed tags)"
        ),
    ));

    // Which roles keys in this keyring can sign.
    let held = tokio::task::spawn_blocking(crate::keystore::keys::list).await;
    checks.push(match held {
        Ok(Ok(keys)) => {
            let mut roles: Vec<String> = keys
                .iter()
                .filter(|k| k.label.gun.as_deref() == Some(gun.as_str()) || k.label.role == "root")
                .map(|k| k.label.role.clone())
                .collect();
            roles.sort();
            roles.dedup();
            let signs = roles.iter().any(|r| r == "targets" || r.starts_with("targets/"));
            if signs {
                ok("keys", format!("keys here can sign {gun} as: {}", roles.join(", ")))
            } else {
                fail(
                    "keys",
                    format!("no key in this keyring can sign {gun} (found: {})", if roles.is_empty() { "none".to_string() } else { roles.join(", ") }),
                    "import the repository's targets or delegation key: docker trustacr key import FILE",
                )
            }
        }
        Ok(Err(e)) => fail("keys", e.to_string(), "unlock the keyring"),
        Err(e) => fail("keys", e.to_string(), "run again"),
    });

    // Expiry of root, its certificates, targets and delegations (timestamp and snapshot are
    // renewed by the server).
    let now = OffsetDateTime::now_utc();
    let (expired, soon): (Vec<_>, Vec<_>) = repo
        .expiring(now, time::Duration::days(EXPIRY_WARNING_DAYS))
        .into_iter()
        .partition(|e| e.at <= now);
    let describe = |list: &[crate::tuf::trusted::Expiry], with_days: bool| {
        list.iter()
            .map(|e| match with_days {
                true => format!(
                    "{} in {} days ({})",
                    e.what,
                    (e.at - now).whole_days(),
                    e.at.date()
                ),
                false => format!("{} ({})", e.what, e.at.date()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fix = format!(
        "sign again with docker trustacr sign to renew targets and delegations; for root, docker trustacr key rotate {} root",
        repo.gun
    );
    checks.push(if !expired.is_empty() {
        fail("expiry", format!("expired: {}", describe(&expired, false)), fix)
    } else if !soon.is_empty() {
        warn("expiry", format!("expiring: {}", describe(&soon, true)), fix)
    } else {
        ok(
            "expiry",
            format!(
                "root, its certificates, targets and delegations valid for more than {EXPIRY_WARNING_DAYS} days"
            ),
        )
    });
    checks.push(notation_check(&t, &repo).await);
}

/// Signed tags checked for Notary Project signatures at most.
const MAX_NOTATION_TAGS: usize = 50;

/// Whether the DCT-signed tags also have Notary Project signature manifests (found, not
/// verified: `verify --notation` verifies), which must exist before DCT is disabled.
async fn notation_check(t: &TrustRepo, repo: &crate::tuf::trusted::Repo) -> Check {
    let tags = match repo.resolve_all() {
        Ok(tags) => tags,
        Err(e) => return not_checked("notation", e.to_string()),
    };
    let (client, base) = match t.registry_client().await {
        Ok(c) => c,
        Err(e) => return not_checked("notation", e.to_string()),
    };
    let mut missing = Vec::new();
    for (tag, digest) in tags.iter().take(MAX_NOTATION_TAGS) {
        match crate::registry::referrers::list_signatures(
            &client,
            &base,
            &t.image.repository,
            &digest.digest(),
        )
        .await
        {
            Ok((found, _)) if found.is_empty() => missing.push(tag.clone()),
            Ok(_) => {}
            Err(e) => return not_checked("notation", e.to_string()),
        }
    }
    let checked = tags.len().min(MAX_NOTATION_TAGS);
    if missing.is_empty() {
        ok(
            "notation",
            format!("all {checked} signed tags checked have Notary Project signatures"),
        )
    } else {
        warn(
            "notation",
            format!(
                "{} of {checked} signed tags have no Notary Project signature: {}",
                missing.len(),
                missing.join(", ")
            ),
            format!(
                "co-sign them before DCT goes away: docker trustacr migrate {}/{}",
                t.image.registry, t.image.repository
            ),
        )
    }
}

fn retirement() -> Check {
    warn(
        "retirement",
        format!(
            "ACR removes Docker Content Trust on {DCT_RETIREMENT} (no new enablement since 2026-05-31)"
        ),
        "plan the move to Notary Project signatures (notation)",
    )
}

fn write_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "✔",
            Status::Warn => "!",
            Status::Fail => "✘",
        };
        writeln!(out, "{mark} {:<21} {}", c.id, c.detail)?;
        if let Some(h) = &c.hint {
            writeln!(out, "  {:<21} fix: {h}", "")?;
        }
    }
    Ok(())
}
