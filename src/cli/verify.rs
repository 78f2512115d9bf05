//! `verify IMAGE:TAG`: the digest trust data signs for a tag, or a non-zero exit.

use serde::Serialize;

use super::trust::TrustRepo;
use super::{Context, Error, Format, cancellable};
use crate::notary::client::ClientError;
use crate::reference::ImageRef;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image and tag to verify, e.g. myregistry.azurecr.io/app:v1.
    #[arg(value_name = "IMAGE:TAG")]
    image: String,
    /// Output format: the digest alone, or a JSON document.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Serialize)]
struct Verified<'a> {
    name: String,
    tag: &'a str,
    digest: String,
    size: u64,
    role: &'a str,
}

impl VerifyArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let image = ImageRef::parse(&self.image)?;
        let tag = image.tag.clone().ok_or_else(|| {
            Error::Usage(format!("{}: give a tag to verify (IMAGE:TAG)", self.image))
        })?;
        let repo = cancellable(&ctx.cancel, async {
            let t = TrustRepo::open(ctx, &image).await?;
            t.update().await
        })
        .await?;
        let target = repo
            .find_target(&tag)
            .map_err(ClientError::from)?
            .ok_or_else(|| Error::NotSigned {
                tag: tag.clone(),
                gun: repo.gun.clone(),
                skipped: repo.skipped.clone(),
            })?;
        let digest = target.digest();
        match self.format {
            Format::Text => println!("{digest}"),
            Format::Json => {
                let v = Verified {
                    name: image.gun(),
                    tag: &tag,
                    digest,
                    size: target.size(),
                    role: target.role(),
                };
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
        }
        Ok(())
    }
}
