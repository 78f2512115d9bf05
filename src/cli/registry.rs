//! `registry trust show|disable|enable REGISTRY`: the registry's content trust policy over
//! Azure Resource Manager, as `az acr config content-trust` does.
//!
//! Disabling deletes every repository's trust data for good, so `disable` says so first and
//! changes nothing without `--yes`. Enabling has been refused for registries that never enabled
//! it since 2026-05-31; `enable` sends the request and reports ARM's answer as it is.

use super::trust::{SETTINGS_FILE, Settings};
use super::{Context, Error, Output, cancellable};
use crate::acr::arm::{Arm, Registry};
use crate::dockercfg::ConfigDir;
use crate::registry::endpoint::RegistryHost;

/// Arguments of `registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RegistryCommand {
    /// The registry's content trust policy (Azure Resource Manager).
    #[command(subcommand)]
    Trust(TrustCommand),
}

/// Which registry, and where ARM finds it.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The registry's login server, e.g. myregistry.azurecr.io.
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// The Azure subscription that holds the registry (default: the setting in trustacr.json,
    /// AZURE_SUBSCRIPTION_ID, or the Azure CLI's default subscription).
    #[arg(long, value_name = "ID")]
    subscription: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum TrustCommand {
    /// Show the SKU, trust policy, role assignment mode and admin user of a registry.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Turn content trust off. This deletes ALL trust data of every repository for good.
    Disable {
        #[command(flatten)]
        target: Target,
        /// Confirm that all trust data of the registry is to be deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Ask ARM to turn content trust on (refused since 2026-05-31 for registries that never
    /// enabled it).
    Enable {
        #[command(flatten)]
        target: Target,
    },
}

/// What `disable` says before it does anything.
const DISABLE_WARNING: &str = "Disabling content trust deletes ALL trust data (signatures, \
delegations, root and repository keys' metadata) of EVERY repository in the registry, for good: \
enabling it again starts from nothing, and images pulled with content trust fail until they are \
signed again. Images themselves are kept. Move the signatures to Notary Project first (notation; \
`docker trustacr migrate` where available), then disable.";

impl RegistryArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let RegistryCommand::Trust(command) = self.command;
        match command {
            TrustCommand::Show { target } => {
                let (_, registry) = find(ctx, &target).await?;
                print_registry(&registry, ctx.out)
            }
            TrustCommand::Disable { target, yes } => {
                eprintln!("{DISABLE_WARNING}");
                if !yes {
                    return Err(Error::Usage(format!(
                        "nothing was changed: to delete all trust data of {} and disable content trust, run again with --yes",
                        target.registry
                    )));
                }
                let (arm, registry) = find(ctx, &target).await?;
                let after = cancellable(&ctx.cancel, async {
                    Ok(arm.set_trust_policy(&registry, false).await?)
                })
                .await?;
                report_change(ctx, &target, &after)
            }
            TrustCommand::Enable { target } => {
                let (arm, registry) = find(ctx, &target).await?;
                let after = cancellable(&ctx.cancel, async {
                    Ok(arm.set_trust_policy(&registry, true).await?)
                })
                .await?;
                report_change(ctx, &target, &after)
            }
        }
    }
}

/// Signs in to ARM for `target` and finds the registry by its login server.
pub async fn connect(
    ctx: &Context,
    host: &RegistryHost,
    subscription: Option<&str>,
) -> Result<Arm, Error> {
    let config_dir = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
    let settings = Settings::load(&config_dir)?;
    Ok(Arm::connect(
        &config_dir.path,
        host,
        &settings.arm,
        &config_dir.path.join(SETTINGS_FILE),
        subscription,
        &ctx.entra,
    )
    .await?)
}

async fn find(ctx: &Context, target: &Target) -> Result<(Arm, Registry), Error> {
    let host = RegistryHost::parse(&target.registry).map_err(|e| Error::Usage(e.to_string()))?;
    cancellable(&ctx.cancel, async {
        let arm = connect(ctx, &host, target.subscription.as_deref()).await?;
        let registry = arm.find(host.as_str()).await?;
        Ok((arm, registry))
    })
    .await
}

/// What ARM answered to a change of the trust policy: a line, or the registry as `show`
/// prints it.
fn report_change(ctx: &Context, target: &Target, after: &Registry) -> Result<(), Error> {
    ctx.out.status(format_args!(
        "Content trust of {} ({}) is now {} (Azure Resource Manager's answer)",
        target.registry, after.name, after.trust_policy
    ));
    ctx.out.emit_json(after)
}

fn print_registry(r: &Registry, output: Output) -> Result<(), Error> {
    output.emit(r, |out| {
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "not reported".into());
        writeln!(out, "Registry:         {} ({})", r.name, r.login_server)
            .and_then(|()| writeln!(out, "Resource ID:      {}", r.id))
            .and_then(|()| writeln!(out, "SKU:              {}", r.sku))
            .and_then(|()| writeln!(out, "Trust policy:     {}", r.trust_policy))
            .and_then(|()| {
                writeln!(
                    out,
                    "Role assignment:  {}",
                    or_unknown(r.role_assignment_mode.clone())
                )
            })
            .and_then(|()| {
                writeln!(
                    out,
                    "Admin user:       {}",
                    or_unknown(
                        r.admin_user_enabled
                            .map(|a| { if a { "enabled" } else { "disabled" }.to_string() })
                    )
                )
            })
    })
}
