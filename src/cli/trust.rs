//! What every trust command needs for one repository: docker's config, the notary server with
//! TLS and credentials as docker would use them, the cache, and the root-trust policy.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{Context, Error};
use crate::acr;
use crate::dockercfg::context::resolve_endpoint;
use crate::dockercfg::credentials::Credential;
use crate::dockercfg::{ConfigDir, ConfigFile, credentials};
use crate::engine::{DEFAULT_TIMEOUT, Engine, engine_credentials};
use crate::notary::cache::Cache;
use crate::notary::client::{self, ClientError, Repo};
use crate::notary::{self, NotaryServer};
use crate::reference::ImageRef;
use crate::registry::auth::Authenticator;
use crate::registry::endpoint::Endpoint;
use crate::registry::{self, AuthedClient};
use crate::tuf::verify::{Limits, RootTrust};

/// The plugin's own settings file in the docker config dir.
pub const SETTINGS_FILE: &str = "trustacr.json";

/// `<config dir>/trustacr.json`
#[derive(Debug, Default, Deserialize)]
pub struct Settings {
    /// Root pinning instead of trust on first use.
    #[serde(default)]
    pub trust_pinning: TrustPinning,
    /// Registries to treat as ACR besides `*.azurecr.io` and the sovereign suffixes.
    #[serde(default)]
    pub acr_registries: Vec<String>,
    /// Per login server, the Azure Resource Manager endpoint and subscription of the registry
    /// (`registry trust`, `doctor`), where its cloud's are not the ones to use.
    #[serde(default)]
    pub arm: BTreeMap<String, crate::acr::arm::ArmSetting>,
    /// Which signatures `pull` and `verify` require, by repository or `prefix*`.
    #[serde(default)]
    pub pull_policy: BTreeMap<String, super::verify::SignaturePolicy>,
    /// What `push` signs with when no flag says: `dct` (default), `notation` or `both`.
    #[serde(default)]
    pub push_signatures: super::push::SignWith,
}

/// Pins, as the notary CLI's `trust_pinning`: `certs` maps a GUN, or a prefix ending in `*`, to
/// root certificate key IDs (the IDs `docker trust inspect` shows as the Root key); `ca` maps a
/// GUN prefix to a PEM file of CA certificates the root certificate must chain to.
#[derive(Debug, Default, Deserialize)]
pub struct TrustPinning {
    /// GUN or `prefix*` → allowed root certificate key IDs.
    #[serde(default)]
    pub certs: BTreeMap<String, Vec<String>>,
    /// GUN prefix → CA bundle (PEM file).
    #[serde(default)]
    pub ca: BTreeMap<String, std::path::PathBuf>,
}

impl Settings {
    /// Reads `<config dir>/trustacr.json`; a missing file means the defaults.
    pub fn load(config_dir: &ConfigDir) -> Result<Self, Error> {
        Ok(
            crate::dockercfg::read_json_file(&config_dir.path.join(SETTINGS_FILE))?
                .unwrap_or_default(),
        )
    }
}

impl TrustPinning {
    /// The trust policy for `gun`: a certificate-ID pin (exact GUN, else longest `prefix*`),
    /// else a CA pin (longest prefix), else TOFU.
    pub fn for_gun(&self, gun: &str) -> Result<RootTrust, String> {
        if let Some(ids) = self.certs.get(gun) {
            return Ok(RootTrust::PinnedCertIds(ids.clone()));
        }
        if let Some((_, ids)) = self
            .certs
            .iter()
            .filter_map(|(k, v)| Some((k.strip_suffix('*')?, v)))
            .filter(|(prefix, _)| gun.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
        {
            return Ok(RootTrust::PinnedCertIds(ids.clone()));
        }
        let Some((_, path)) = self
            .ca
            .iter()
            .filter(|(prefix, _)| gun.starts_with(prefix.trim_end_matches('*')))
            .max_by_key(|(prefix, _)| prefix.len())
        else {
            return Ok(RootTrust::Tofu);
        };
        let pem =
            std::fs::read(path).map_err(|e| format!("trust_pinning CA {}: {e}", path.display()))?;
        let cas = x509_cert::Certificate::load_pem_chain(&pem)
            .map_err(|e| format!("trust_pinning CA {}: {e}", path.display()))?;
        if cas.is_empty() {
            return Err(format!(
                "trust_pinning CA {} holds no certificate",
                path.display()
            ));
        }
        Ok(RootTrust::PinnedCa(cas))
    }
}

/// One repository's trust plumbing.
pub struct TrustRepo {
    /// The image.
    pub image: ImageRef,
    /// The notary server for it.
    pub server: NotaryServer,
    /// The local cache.
    pub cache: Cache,
    /// Root trust policy.
    pub trust: RootTrust,
    /// Download limits.
    pub limits: Limits,
    /// docker's config.json.
    pub config: ConfigFile,
    /// docker's config dir.
    pub config_dir: ConfigDir,
    /// Whether the registry is ACR (Entra sign-in, role diagnostics).
    pub acr: bool,
    /// The image's registry (on ACR, the login server with its token endpoints).
    pub registry: Endpoint,
}

impl TrustRepo {
    /// Sets up everything for `image`; does no network I/O.
    pub async fn open(ctx: &Context, image: &ImageRef) -> Result<Self, Error> {
        let config_dir = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
        let config = config_dir.load()?;
        let settings = Settings::load(&config_dir)?;
        // Decided on the parsed host; an ACR endpoint is always verified, loopback included,
        // because an Entra-derived token goes to it.
        let acr = acr::is_acr(&image.registry, &settings.acr_registries);
        let registry = Endpoint::registry(&image.registry, acr);
        let server_env = std::env::var(notary::ENV_TRUST_SERVER).ok();
        let base = Endpoint::notary(server_env.as_deref(), &image.registry, acr)
            .map_err(Error::Endpoint)?;
        let http = base.client(&config_dir.path)?;
        // Docker authenticates to the notary server with the registry's credentials; on ACR we
        // sign in with Entra ID ourselves and fall back to docker's credentials.
        let host = image.registry.as_str();
        let credential = if acr {
            let http = registry.client(&config_dir.path)?;
            match acr::refresh_token(&http, &registry, host, &ctx.entra).await {
                Ok(token) => Credential::IdentityToken {
                    username: Some(acr::NULL_GUID.to_string()),
                    token,
                },
                // A configured Entra credential that was refused stops here: docker's stored
                // credential may be another identity (review #8 item 11).
                Err(e @ acr::AcrError::Entra(crate::entra::EntraError::Refused { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    let docker = credentials::resolve(&config, host).await?.credential;
                    if docker == Credential::Anonymous {
                        return Err(e.into());
                    }
                    tracing::warn!("{e}; using the credential in docker's configuration instead");
                    docker
                }
            }
        } else {
            credentials::resolve(&config, host).await?.credential
        };
        let mut auth = Authenticator::new(credential);
        if acr {
            auth = auth
                .refresh_token_only_to(&registry)
                .persist_tokens(Box::new(acr::AccessTokenCache::new(host)));
        }
        let limits = Limits::default();
        let gun = image.gun();
        let cache = Cache::new(&config_dir.trust_dir(), &gun, limits.metadata)?;
        Ok(TrustRepo {
            image: image.clone(),
            server: NotaryServer {
                base,
                gun: gun.clone(),
                client: AuthedClient { http, auth },
            },
            cache,
            trust: settings
                .trust_pinning
                .for_gun(&gun)
                .map_err(Error::TrustPinning)?,
            limits,
            config,
            config_dir,
            acr,
            registry,
        })
    }

    /// On ACR, checks before anything is sent that the identity may push `roles` need:
    /// `push` on the repository (AcrPush) when `image` is set, and `push` on the Notary GUN
    /// (AcrImageSigner) always. The token fetched for the check is reused for the upload.
    pub async fn check_can_sign(&self, also_push_image: bool) -> Result<(), Error> {
        if !self.acr {
            return Ok(());
        }
        let Credential::IdentityToken { token, .. } = self.server.client.auth.credential() else {
            // Admin users and repository-scoped tokens cannot sign on ACR.
            return Err(Error::AcrLimitation {
                registry: self.image.registry.to_string(),
            });
        };
        let http = &self.server.client.http;
        let host = self.image.registry.as_str();
        let gun = &self.server.gun;
        let scope = format!("repository:{gun}:pull,push");
        let Some(t) = acr::push_access(http, &self.registry, host, token, gun).await? else {
            return Err(Error::MissingRole {
                role: "AcrImageSigner",
                registry: host.to_string(),
                scope,
            });
        };
        self.server.client.auth.preload(&scope, t.token);
        if also_push_image {
            let repo = &self.image.repository;
            if acr::push_access(http, &self.registry, host, token, repo)
                .await?
                .is_none()
            {
                return Err(Error::MissingRole {
                    role: "AcrPush",
                    registry: host.to_string(),
                    scope: format!("repository:{repo}:pull,push"),
                });
            }
        }
        Ok(())
    }

    /// Fetches and verifies the repository's trust data.
    pub async fn update(&self) -> Result<Repo, Error> {
        Ok(self.read().await?)
    }

    /// Fetches and verifies the repository's trust data, keeping the client's error (a
    /// repository without trust data is [`ClientError::NotFound`], which a publish initialises).
    pub async fn read(&self) -> Result<Repo, ClientError> {
        client::update(
            &self.server,
            &self.cache,
            &self.server.gun,
            OffsetDateTime::now_utc(),
            &self.trust,
            &self.limits,
        )
        .await
    }

    /// The Docker engine docker's own rules choose (flags, env, contexts).
    pub fn engine(&self, ctx: &Context) -> Result<Engine, Error> {
        let ep = resolve_endpoint(&ctx.globals, &ctx.env, &self.config_dir, &self.config)?;
        Ok(Engine::connect(&ep, DEFAULT_TIMEOUT)?)
    }

    /// The registry credential docker's configuration holds, in the engine's form.
    pub fn engine_credentials(&self) -> Option<bollard::auth::DockerCredentials> {
        engine_credentials(
            self.server.client.auth.credential(),
            self.image.registry.as_str(),
        )
    }

    /// An authenticated client for the image's registry (not the notary server), and the
    /// endpoint that answers (plain HTTP only for a loopback registry that is not ACR).
    pub async fn registry_client(&self) -> Result<(AuthedClient, Endpoint), Error> {
        let http = self.registry.client(&self.config_dir.path)?;
        let base = registry::reachable_registry(&http, &self.registry).await;
        let mut auth = Authenticator::new(self.server.client.auth.credential().clone());
        if self.acr {
            auth = auth
                .refresh_token_only_to(&self.registry)
                .persist_tokens(Box::new(acr::AccessTokenCache::new(
                    self.image.registry.as_str(),
                )));
        }
        Ok((AuthedClient { http, auth }, base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_prefers_exact_gun_then_longest_prefix() {
        let p: TrustPinning = serde_json::from_str(
            r#"{"certs":{"r.io/*":["a"],"r.io/team/*":["b"],"r.io/team/app":["c"]}}"#,
        )
        .unwrap();
        let ids = |t: Result<RootTrust, String>| match t.unwrap() {
            RootTrust::PinnedCertIds(v) => v,
            _ => vec![],
        };
        assert_eq!(ids(p.for_gun("r.io/team/app")), ["c"]);
        assert_eq!(ids(p.for_gun("r.io/team/x")), ["b"]);
        assert_eq!(ids(p.for_gun("r.io/y")), ["a"]);
        assert!(matches!(p.for_gun("other.io/y"), Ok(RootTrust::Tofu)));
    }
}
