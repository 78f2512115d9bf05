//! `login REGISTRY` / `logout REGISTRY`: sign in to ACR with Entra ID and store the ACR refresh
//! token through docker's credential helper, as `az acr login` does, so plain `docker pull`
//! works too. Tokens are never written to config.json: without a credential helper, `login`
//! says how to configure one.

use super::trust::{SETTINGS_FILE, Settings};
use super::{Context, Error, cancellable};
use crate::acr;
use crate::dockercfg::ConfigDir;
use crate::dockercfg::credentials::{self, configured_helper};
use crate::registry::endpoint::{Endpoint, RegistryHost};

/// Arguments of `login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry's login server, e.g. myregistry.azurecr.io.
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

/// Arguments of `logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry's login server.
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

impl LoginArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let config_dir = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
        let config = config_dir.load()?;
        let host = RegistryHost::parse(&self.registry).map_err(|e| Error::Usage(e.to_string()))?;
        // The Entra token is good for every registry of the tenant: it goes to ACR only.
        if !acr::is_acr(&host, &Settings::load(&config_dir)?.acr_registries) {
            return Err(Error::Usage(format!(
                "{host} is not an Azure Container Registry login server (*.azurecr.io, *.azurecr.cn or *.azurecr.us), and docker trustacr login sends a Microsoft Entra token to ACR only. Use `docker login {host}` for other registries; for an ACR behind another name, list it in \"acr_registries\" in {}",
                config_dir.path.join(SETTINGS_FILE).display()
            )));
        }
        let Some(helper) = configured_helper(&config, &self.registry) else {
            return Err(Error::Usage(format!(
                "docker's config ({}) names no credential helper, and docker trustacr does not write tokens into config.json. Add one, e.g. \"credsStore\": \"secretservice\" (Linux), \"osxkeychain\" (macOS) or \"wincred\" (Windows), then log in again",
                config_dir.config_file().display()
            )));
        };
        let registry = self.registry.clone();
        let helper_name = helper.clone();
        cancellable(&ctx.cancel, async {
            // Always verified, loopback included: an Entra token goes to it.
            let login_server = Endpoint::registry(&host, true);
            let http = login_server.client(&config_dir.path)?;
            let token = acr::refresh_token(&http, &login_server, &registry, &ctx.entra).await?;
            credentials::helper_store_identity_token(&helper, &registry, &token).await?;
            Ok(())
        })
        .await?;
        ctx.out.status("Login Succeeded");
        ctx.out.emit_json(&serde_json::json!({
            "registry": self.registry,
            "credential_helper": helper_name,
        }))
    }
}

impl LogoutArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let config_dir = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
        let config = config_dir.load()?;
        ctx.out.status(format_args!(
            "Removing login credentials for {}",
            self.registry
        ));
        let helper = configured_helper(&config, &self.registry);
        if let Some(helper) = &helper {
            credentials::helper_erase(helper, &self.registry).await?;
        }
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || acr::forget_refresh(&registry))
            .await
            .map_err(|source| Error::Task {
                what: "keyring task",
                source,
            })??;
        ctx.out.emit_json(&serde_json::json!({
            "registry": self.registry,
            "credential_helper": helper,
        }))
    }
}
