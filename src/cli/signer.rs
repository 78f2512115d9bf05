//! `signer add` / `signer remove`: who may sign a repository, as docker 28's `trust signer`
//! commands do it (a delegation `targets/NAME`, and NAME's keys in `targets/releases`, which
//! docker pull resolves first). Each repository changes in one upload: all of it or nothing.

use std::path::PathBuf;

use super::sign::publish_quietly;
use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::keystore::signer;
use crate::reference::ImageRef;
use crate::tuf::editor::Change;
use crate::tuf::keys::PublicKey;

/// Arguments of `signer`.
#[derive(Debug, clap::Args)]
pub struct SignerArgs {
    #[command(subcommand)]
    command: SignerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SignerCommand {
    /// Let NAME sign REPO: creates the delegation targets/NAME with the keys and adds them to
    /// targets/releases, initialising the repository if it has no trust data yet.
    ///
    /// Signs with the repository's targets key (and, for a new repository, the root key) from
    /// the keyring. NAME signs afterwards with the private key of --key (`key generate` makes
    /// both halves; `key load` or `docker trust key load` brings a private key in).
    Add(AddArgs),
    /// Remove signer NAME from REPO: deletes targets/NAME and takes its keys out of
    /// targets/releases.
    ///
    /// Removing the last key of targets/releases needs --yes: the tags releases signs then stop
    /// resolving, and the repository is signed with its targets key again.
    #[command(alias = "rm")]
    Remove(RemoveArgs),
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The signer name (lowercase letters, digits, '-' and '_'; not "releases").
    #[arg(value_name = "NAME")]
    name: String,
    /// Repositories to add the signer to, e.g. myregistry.azurecr.io/app.
    #[arg(value_name = "REPO", required = true)]
    repos: Vec<String>,
    /// The signer's public key file (NAME.pub from `key generate` or `docker trust key
    /// generate`); repeat for several keys.
    #[arg(long = "key", value_name = "PUB", required = true)]
    keys: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RemoveArgs {
    /// The signer name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Repositories to remove the signer from.
    #[arg(value_name = "REPO", required = true)]
    repos: Vec<String>,
    /// Also remove the last signer of targets/releases (docker's -f/--force is accepted).
    #[arg(short = 'y', long, visible_alias = "force", short_alias = 'f')]
    yes: bool,
}

impl SignerArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        match self.command {
            SignerCommand::Add(a) => a.run(ctx).await,
            SignerCommand::Remove(a) => a.run(ctx).await,
        }
    }
}

/// A repository argument: a name without tag or digest, as docker's signer commands take.
fn parse_repo(s: &str) -> Result<ImageRef, Error> {
    let image = ImageRef::parse(s)?;
    if image.tag.is_some() {
        return Err(Error::Usage(format!(
            "{s}: give the repository without a tag; a signer signs every tag of it"
        )));
    }
    Ok(image)
}

fn parse_repos(repos: &[String]) -> Result<Vec<ImageRef>, Error> {
    repos.iter().map(|r| parse_repo(r)).collect()
}

/// The signer a change adds or removes, and its key IDs (none for a removal).
fn change_signer(change: &Change) -> serde_json::Value {
    match change {
        Change::AddSigner { name, keys } => serde_json::json!({
            "name": name,
            "keys": keys.iter().map(PublicKey::id).collect::<Vec<_>>(),
        }),
        Change::RemoveSigner { name, .. } => serde_json::json!({ "name": name }),
        _ => serde_json::Value::Null,
    }
}

/// Runs `change` on each repository in turn, as docker does: a failure is reported and the
/// others still go ahead; the command fails if any did.
async fn for_each_repo(
    ctx: &Context,
    repos: &[ImageRef],
    change: &Change,
    before: impl Fn(&ImageRef),
    after: impl Fn(&ImageRef, bool),
) -> Result<(), Error> {
    let mut failed = Vec::new();
    let mut changed = Vec::new();
    for image in repos {
        before(image);
        let one = async {
            let t = cancellable(&ctx.cancel, async {
                let t = TrustRepo::open(ctx, image).await?;
                t.check_can_sign(false).await?;
                Ok(t)
            })
            .await?;
            // Not wrapped in `cancellable`: the publish reports what is live when cancelled.
            publish_quietly(ctx, &t, std::slice::from_ref(change)).await
        };
        match one.await {
            Ok(initialized) => {
                after(image, initialized);
                changed.push(serde_json::json!({
                    "name": image.gun(),
                    "initialized": initialized,
                }));
            }
            Err(e @ Error::Cancelled(_)) => return Err(e),
            Err(e) => failed.push(e),
        }
    }
    match failed.len() {
        0 => ctx.out.emit_json(&serde_json::json!({
            "signer": change_signer(change),
            "repositories": changed,
        })),
        1 => Err(failed.remove(0)),
        _ => Err(Error::Several(failed)),
    }
}

impl AddArgs {
    async fn run(self, ctx: &Context) -> Result<(), Error> {
        signer::check_signer_name(&self.name)?;
        let repos = parse_repos(&self.repos)?;
        let keys = self
            .keys
            .iter()
            .map(|p| signer::read_public(p))
            .collect::<Result<Vec<PublicKey>, _>>()?;
        let ids: Vec<String> = keys.iter().map(PublicKey::id).collect();
        let change = Change::AddSigner {
            name: self.name.clone(),
            keys,
        };
        let name = &self.name;
        for_each_repo(
            ctx,
            &repos,
            &change,
            |image| {
                ctx.out
                    .status(format_args!("Adding signer \"{name}\" to {image}..."))
            },
            |image, initialized| {
                if initialized {
                    ctx.out
                        .status(format_args!("Initialized signed repository {image}"));
                }
                ctx.out.status(format_args!(
                    "Successfully added signer: {name} to {image} (key {})\n",
                    ids.join(", ")
                ));
            },
        )
        .await
    }
}

impl RemoveArgs {
    async fn run(self, ctx: &Context) -> Result<(), Error> {
        let repos = parse_repos(&self.repos)?;
        let change = Change::RemoveSigner {
            name: self.name.clone(),
            allow_last: self.yes,
        };
        let name = &self.name;
        for_each_repo(
            ctx,
            &repos,
            &change,
            |image| {
                ctx.out
                    .status(format_args!("Removing signer \"{name}\" from {image}..."))
            },
            |image, _| {
                ctx.out
                    .status(format_args!("Successfully removed {name} from {image}\n"))
            },
        )
        .await
    }
}
