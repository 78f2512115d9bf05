//! `revoke IMAGE[:TAG]`: remove the signature of one tag, or with `--yes` of every tag.

use super::sign::publish_changes;
use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::reference::ImageRef;
use crate::tuf::editor::Change;

/// Arguments of `revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The image, with the tag whose signature to remove; without a tag, every tag.
    #[arg(value_name = "IMAGE[:TAG]")]
    image: String,
    /// Confirm removing all signatures when no tag is given.
    #[arg(short = 'y', long)]
    yes: bool,
}

impl RevokeArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let image = ImageRef::parse(&self.image)?;
        if image.tag.is_none() && !self.yes {
            return Err(Error::Usage(format!(
                "revoking every signature of {} needs --yes",
                image.gun()
            )));
        }
        let (t, changes) = cancellable(&ctx.cancel, async {
            let t = TrustRepo::open(ctx, &image).await?;
            t.check_can_sign(false).await?;
            let repo = t.update().await?;
            // The tags docker resolves: targets/releases and targets.
            let signed: Vec<String> = repo
                .resolve_all()
                .map_err(crate::notary::client::ClientError::from)?
                .into_iter()
                .map(|(tag, _)| tag)
                .collect();
            let tags: Vec<String> = match &image.tag {
                Some(tag) if signed.contains(tag) => vec![tag.clone()],
                Some(tag) => {
                    return Err(Error::NotSigned {
                        tag: tag.clone(),
                        gun: repo.gun.clone(),
                        skipped: repo.skipped.clone(),
                    });
                }
                None => signed,
            };
            let changes: Vec<Change> = tags.into_iter().map(Change::remove).collect();
            Ok((t, changes))
        })
        .await?;
        // Not wrapped in `cancellable`: the publish reports what is live when cancelled.
        if !changes.is_empty() {
            publish_changes(ctx, &t, &changes).await?;
        }
        ctx.out.status(format_args!(
            "Successfully deleted signature for {}",
            self.image
        ));
        let revoked: Vec<&str> = changes.iter().map(Change::tag).collect();
        ctx.out.emit_json(&serde_json::json!({
            "name": t.server.gun,
            "revoked": revoked,
        }))
    }
}
