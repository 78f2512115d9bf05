//! What every trust command needs for one repository: docker's config, the notary server with
//! TLS and credentials as docker would use them, the cache, and the root-trust policy.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{Context, Error};
use crate::dockercfg::context::resolve_endpoint;
use crate::dockercfg::{ConfigDir, ConfigFile, credentials};
use crate::engine::{DEFAULT_TIMEOUT, Engine, engine_credentials};
use crate::notary::cache::Cache;
use crate::notary::client::{self, Repo};
use crate::notary::{self, NotaryServer};
use crate::reference::ImageRef;
use crate::registry::auth::Authenticator;
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
}

/// Pins: `certs` maps a GUN, or a prefix ending in `*`, to root certificate key IDs (the IDs
/// `docker trust inspect` shows as the Root key).
#[derive(Debug, Default, Deserialize)]
pub struct TrustPinning {
    /// GUN or `prefix*` → allowed root certificate key IDs.
    #[serde(default)]
    pub certs: BTreeMap<String, Vec<String>>,
}

impl TrustPinning {
    /// The trust policy for `gun`: the exact GUN's pin, else the longest matching prefix, else TOFU.
    pub fn for_gun(&self, gun: &str) -> RootTrust {
        if let Some(ids) = self.certs.get(gun) {
            return RootTrust::PinnedCertIds(ids.clone());
        }
        self.certs
            .iter()
            .filter_map(|(k, v)| Some((k.strip_suffix('*')?, v)))
            .filter(|(prefix, _)| gun.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(RootTrust::Tofu, |(_, ids)| {
                RootTrust::PinnedCertIds(ids.clone())
            })
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
}

impl TrustRepo {
    /// Sets up everything for `image`; does no network I/O.
    pub async fn open(ctx: &Context, image: &ImageRef) -> Result<Self, Error> {
        let config_dir = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
        let config = config_dir.load()?;
        let settings: Settings =
            crate::dockercfg::read_json_file(&config_dir.path.join(SETTINGS_FILE))?
                .unwrap_or_default();
        let server_env = std::env::var(notary::ENV_TRUST_SERVER).ok();
        let base =
            notary::server_url(server_env.as_deref(), &image.registry).map_err(Error::Usage)?;
        let insecure = registry::is_loopback_host(&image.registry);
        let http = registry::client_for(&config_dir.path, &notary::host_port(&base), insecure)?;
        // Docker authenticates to the notary server with the registry's credentials.
        let credential = credentials::resolve(&config, &image.registry)
            .await?
            .credential;
        let limits = Limits::default();
        let gun = image.gun();
        let cache = Cache::new(&config_dir.trust_dir(), &gun, limits.metadata)
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(TrustRepo {
            image: image.clone(),
            server: NotaryServer {
                base,
                gun: gun.clone(),
                client: AuthedClient {
                    http,
                    auth: Authenticator::new(credential),
                },
            },
            cache,
            trust: settings.trust_pinning.for_gun(&gun),
            limits,
            config,
            config_dir,
        })
    }

    /// Fetches and verifies the repository's trust data.
    pub async fn update(&self) -> Result<Repo, Error> {
        Ok(client::update(
            &self.server,
            &self.cache,
            &self.server.gun,
            OffsetDateTime::now_utc(),
            &self.trust,
            &self.limits,
        )
        .await?)
    }

    /// The Docker engine docker's own rules choose (flags, env, contexts).
    pub fn engine(&self, ctx: &Context) -> Result<Engine, Error> {
        let ep = resolve_endpoint(&ctx.globals, &ctx.env, &self.config_dir, &self.config)?;
        Ok(Engine::connect(&ep, DEFAULT_TIMEOUT)?)
    }

    /// The registry credential docker's configuration holds, in the engine's form.
    pub async fn engine_credentials(
        &self,
    ) -> Result<Option<bollard::auth::DockerCredentials>, Error> {
        let c = credentials::resolve(&self.config, &self.image.registry).await?;
        Ok(engine_credentials(&c.credential, &self.image.registry))
    }

    /// An authenticated client for the image's registry (not the notary server).
    pub async fn registry_client(&self) -> Result<(AuthedClient, String), Error> {
        let insecure = registry::is_loopback_host(&self.image.registry);
        let http = registry::client_for(&self.config_dir.path, &self.image.registry, insecure)?;
        let base = registry::registry_base_url(&http, &self.image.registry).await;
        let credential = credentials::resolve(&self.config, &self.image.registry)
            .await?
            .credential;
        Ok((
            AuthedClient {
                http,
                auth: Authenticator::new(credential),
            },
            base,
        ))
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
        let ids = |t: RootTrust| match t {
            RootTrust::PinnedCertIds(v) => v,
            RootTrust::Tofu => vec![],
        };
        assert_eq!(ids(p.for_gun("r.io/team/app")), ["c"]);
        assert_eq!(ids(p.for_gun("r.io/team/x")), ["b"]);
        assert_eq!(ids(p.for_gun("r.io/y")), ["a"]);
        assert!(matches!(p.for_gun("other.io/y"), RootTrust::Tofu));
    }
}
