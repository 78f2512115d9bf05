//! `push IMAGE:TAG`: push through the engine, then sign exactly the digest the engine pushed.
//!
//! A failed push signs nothing. A signature that fails after a good push is reported as such,
//! with the command that finishes the job, and a non-zero exit.

use super::sign::{manifest_meta, publish_changes};
use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::engine::progress::Progress;
use crate::keystore;
use crate::reference::ImageRef;
use crate::tuf::editor::Change;

/// Arguments of `push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image and tag to push and sign, e.g. myregistry.azurecr.io/app:v1.
    #[arg(value_name = "IMAGE:TAG")]
    image: String,
}

impl PushArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let image = ImageRef::parse(&self.image)?;
        let Some(tag) = image.tag.clone() else {
            return Err(Error::Usage(format!(
                "{}: give the tag to push and sign (IMAGE:TAG)",
                self.image
            )));
        };
        let t = cancellable(&ctx.cancel, TrustRepo::open(ctx, &image)).await?;
        // Check what signing needs before anything is pushed: an unreachable keyring found
        // after the push would leave an unsigned image behind.
        tokio::task::spawn_blocking(keystore::ensure_store)
            .await
            .map_err(|source| Error::Task {
                what: "keyring check",
                source,
            })??;
        t.check_can_sign(true).await?;
        let engine = t.engine(ctx)?;
        let creds = t.engine_credentials();
        let mut progress = Progress::stdout();
        let pushed = cancellable(&ctx.cancel, async {
            Ok(engine
                .push(&image.gun(), &tag, creds, &mut progress)
                .await?)
        })
        .await?;
        let change = Change::add(tag.clone(), manifest_meta(&pushed.sha256, pushed.size));
        // Not wrapped in `cancellable`: the publish reports what is live when cancelled.
        match publish_changes(ctx, &t, &[change]).await {
            Ok(()) => {
                println!("Successfully signed {image}");
                Ok(())
            }
            // The signature may already be live: "NOT signed" would be false.
            Err(Error::Publish(e)) if e.may_be_live() => Err(Error::Publish(e)),
            Err(e) => Err(Error::PushedButUnsigned {
                reference: image.to_string(),
                digest: pushed.digest,
                cause: Box::new(e),
            }),
        }
    }
}
