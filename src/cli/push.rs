//! `push IMAGE:TAG`: push through the engine, then sign exactly the digest the engine pushed.
//!
//! A failed push signs nothing. A signature that fails after a good push is reported as such,
//! with the command that finishes the job, and a non-zero exit.

use super::notation::NotationError;
use super::sign::{manifest_meta, publish_changes, publish_quietly};
use super::trust::{Settings, TrustRepo};
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
    /// Sign with a Notary Project signature only (no Docker Content Trust data). Without this
    /// flag, `push_signatures` in trustacr.json decides: `dct` (the default), `notation` or
    /// `both`.
    #[arg(long)]
    notation: bool,
    /// The Notary Project key to sign with; needed only when the keyring holds several.
    #[arg(long, value_name = "NAME")]
    notation_key: Option<String>,
    /// Print only the pushed and signed digest (no progress); errors still go to stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// Which signatures `push` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignWith {
    /// Docker Content Trust only.
    #[default]
    Dct,
    /// A Notary Project signature only.
    Notation,
    /// Both: for repositories moving from DCT to the Notary Project.
    Both,
}

impl PushArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        if self.quiet && ctx.out.json() {
            return Err(quiet_and_json());
        }
        let image = ImageRef::parse(&self.image)?;
        let Some(tag) = image.tag.clone() else {
            return Err(Error::Usage(format!(
                "{}: give the tag to push and sign (IMAGE:TAG)",
                self.image
            )));
        };
        let t = cancellable(&ctx.cancel, TrustRepo::open(ctx, &image)).await?;
        let with = if self.notation {
            SignWith::Notation
        } else {
            Settings::load(&t.config_dir)?.push_signatures
        };
        // Check what signing needs before anything is pushed: an unreachable keyring found
        // after the push would leave an unsigned image behind.
        tokio::task::spawn_blocking(keystore::ensure_reachable)
            .await
            .map_err(|source| Error::Task {
                what: "keyring check",
                source,
            })??;
        let signer = match with {
            SignWith::Dct => None,
            SignWith::Notation | SignWith::Both => {
                Some(super::notation::select_key(self.notation_key.clone()).await?)
            }
        };
        if with != SignWith::Notation {
            t.check_can_sign(true).await?;
        }
        let engine = t.engine(ctx)?;
        let creds = t.engine_credentials();
        let mut progress = if self.quiet {
            Progress::silent()
        } else {
            ctx.out.progress()
        };
        let pushed = cancellable(&ctx.cancel, async {
            Ok(engine
                .push(&image.gun(), &tag, creds, &mut progress)
                .await?)
        })
        .await?;
        if with != SignWith::Dct {
            let signer = signer.as_ref().ok_or(NotationError::NoKey)?;
            if let Err(e) = notation_sign_pushed(&t, &image, &tag, &pushed, signer).await {
                return Err(Error::PushedButUnsigned {
                    reference: image.to_string(),
                    digest: pushed.digest,
                    cause: Box::new(e),
                });
            }
            if !self.quiet {
                ctx.out.status(format_args!(
                    "Successfully signed {image} with a Notary Project signature by key {}",
                    signer.name
                ));
            }
            if with == SignWith::Notation {
                if self.quiet {
                    self.print_quiet(&pushed);
                    return Ok(());
                }
                return emit_pushed(ctx, &image, &tag, &pushed, with, Some(&signer.name));
            }
        }
        let change = Change::add(tag.clone(), manifest_meta(&pushed.sha256, pushed.size));
        // Not wrapped in `cancellable`: the publish reports what is live when cancelled.
        let published = if self.quiet {
            publish_quietly(ctx, &t, &[change]).await.map(drop)
        } else {
            publish_changes(ctx, &t, &[change]).await
        };
        match published {
            Ok(()) if self.quiet => {
                self.print_quiet(&pushed);
                Ok(())
            }
            Ok(()) => {
                ctx.out.status(format_args!("Successfully signed {image}"));
                let key = signer.as_ref().map(|s| s.name.as_str());
                emit_pushed(ctx, &image, &tag, &pushed, with, key)
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

impl PushArgs {
    /// `--quiet`'s one line, printed only once everything is signed: a script reading it may
    /// rely on the digest being signed.
    fn print_quiet(&self, pushed: &crate::engine::Pushed) {
        if self.quiet {
            println!("{}", pushed.digest);
        }
    }
}

/// `-q` asks for the digest alone and `--format json` for a document: both at once is a
/// mistake, not something to guess at.
pub fn quiet_and_json() -> Error {
    Error::Usage(
        "--quiet prints the digest alone and --format json a JSON document: choose one".into(),
    )
}

/// `push --format json`: what was pushed and which signatures were written.
#[derive(serde::Serialize)]
struct PushedJson<'a> {
    name: String,
    tag: &'a str,
    digest: &'a str,
    size: u64,
    signatures: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notation_key: Option<&'a str>,
}

fn emit_pushed(
    ctx: &Context,
    image: &ImageRef,
    tag: &str,
    pushed: &crate::engine::Pushed,
    with: SignWith,
    notation_key: Option<&str>,
) -> Result<(), Error> {
    let signatures = match with {
        SignWith::Dct => vec!["dct"],
        SignWith::Notation => vec!["notation"],
        SignWith::Both => vec!["dct", "notation"],
    };
    ctx.out.emit_json(&PushedJson {
        name: image.gun(),
        tag,
        digest: &pushed.digest,
        size: pushed.size,
        signatures,
        notation_key,
    })
}

/// Signs what the tag now points to, provided it is exactly what the engine pushed (same
/// digest and size, recomputed from the bytes the registry serves).
async fn notation_sign_pushed(
    t: &TrustRepo,
    image: &ImageRef,
    tag: &str,
    pushed: &crate::engine::Pushed,
    signer: &crate::keystore::notation::NotationSigner,
) -> Result<(), Error> {
    let (client, base) = t.registry_client().await?;
    let resolved = crate::registry::artifact::resolve(&client, &base, &image.repository, tag)
        .await
        .map_err(NotationError::from)?;
    if resolved.descriptor.digest != pushed.digest || resolved.descriptor.size != pushed.size {
        return Err(
            NotationError::from(crate::registry::artifact::ArtifactError::Mismatch {
                reference: image.to_string(),
                reason: format!(
                    "the tag now points to {} ({} bytes), not the pushed {} ({} bytes)",
                    resolved.descriptor.digest,
                    resolved.descriptor.size,
                    pushed.digest,
                    pushed.size
                ),
            })
            .into(),
        );
    }
    super::notation::sign_descriptor(
        &client,
        &base,
        &image.repository,
        signer,
        &resolved.descriptor,
    )
    .await?;
    Ok(())
}
