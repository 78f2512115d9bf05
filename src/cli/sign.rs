//! `sign IMAGE:TAG…`: sign tags already in the registry. The digest and size are computed from
//! the manifest bytes the registry serves; tags of one repository are published together.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::keystore::Keyring;
use crate::keystore::lock::LockPlace;
use crate::notary::client::{ClientError, Repo};
use crate::notary::publish::{PublishError, Publisher};
use crate::reference::ImageRef;
use crate::registry::manifest_ref;
use crate::tuf::editor::Change;
use crate::tuf::metadata::{Base64Bytes, FileMeta};

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Tags to sign, e.g. myregistry.azurecr.io/app:v1 myregistry.azurecr.io/app:latest.
    #[arg(value_name = "IMAGE:TAG", required = true)]
    images: Vec<String>,
    /// Write Notary Project signatures (the format notation verifies, attached as OCI
    /// referrers) instead of Docker Content Trust data.
    #[arg(long)]
    notation: bool,
    /// The Notary Project key to sign with (`key generate --notation NAME`); needed only when
    /// the keyring holds several.
    #[arg(long, value_name = "NAME", requires = "notation")]
    notation_key: Option<String>,
}

/// The target meta docker writes for a manifest: sha256 only, and its length.
pub fn manifest_meta(sha256: &[u8], size: u64) -> FileMeta {
    FileMeta {
        custom: None,
        hashes: BTreeMap::from([("sha256".to_string(), Base64Bytes(sha256.to_vec()))]),
        length: size as i64,
    }
}

impl SignArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let mut by_gun: BTreeMap<String, Vec<ImageRef>> = BTreeMap::new();
        for s in &self.images {
            let image = ImageRef::parse(s)?;
            if image.tag.is_none() {
                return Err(Error::Usage(format!(
                    "{s}: give the tag to sign (IMAGE:TAG)"
                )));
            }
            by_gun.entry(image.gun()).or_default().push(image);
        }
        let mut signed = Vec::new();
        if self.notation {
            let all: Vec<ImageRef> = by_gun.into_values().flatten().collect();
            signed = super::notation::sign_images(ctx, &all, self.notation_key).await?;
        } else {
            for images in by_gun.values() {
                signed.extend(sign_repo(ctx, images).await?);
            }
        }
        ctx.out.emit_json(&SignedJson { signed })
    }
}

/// `sign --format json`: each tag signed, and the digest its signature is for.
#[derive(serde::Serialize)]
struct SignedJson {
    signed: Vec<SignedTag>,
}

/// One tag `sign` signed.
#[derive(serde::Serialize)]
pub struct SignedTag {
    /// The repository (GUN).
    pub name: String,
    /// The tag.
    pub tag: String,
    /// The manifest digest the signature is for.
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// `dct` or `notation`.
    pub signature: &'static str,
    /// The Notary Project signature manifest's digest, for `notation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notation_signature: Option<String>,
}

/// Signs `images` (all of one repository) in one publish.
pub async fn sign_repo(ctx: &Context, images: &[ImageRef]) -> Result<Vec<SignedTag>, Error> {
    // Everything before the publish changes nothing and can simply be dropped on cancellation;
    // the publish itself reports what is live when it is cancelled. (The keyring's session is
    // already being set up: `cli::run` starts it for every signing command.)
    let (t, changes, signed, current) = cancellable(&ctx.cancel, async {
        let t = TrustRepo::open(ctx, &images[0]).await?;
        t.check_can_sign(false).await?;
        // The manifests and the trust data come from different servers: read them at once.
        let manifests = async {
            let (registry, base) = t.registry_client().await?;
            let mut changes = Vec::new();
            let mut signed = Vec::new();
            for image in images {
                let tag = image.tag.clone().unwrap_or_default();
                let m = manifest_ref(&registry, &base, &image.repository, &tag).await?;
                changes.push(Change::add(tag.clone(), manifest_meta(&m.sha256, m.size)));
                signed.push(SignedTag {
                    name: image.gun(),
                    tag,
                    digest: m.digest.clone(),
                    size: m.size,
                    signature: "dct",
                    notation_signature: None,
                });
            }
            Ok::<_, Error>((changes, signed))
        };
        let (manifests, current) = tokio::join!(manifests, t.read());
        let (changes, signed) = manifests?;
        Ok((t, changes, signed, current))
    })
    .await?;
    publish_from(ctx, &t, &changes, Some(current)).await?;
    for image in images {
        ctx.out.status(format_args!("Successfully signed {image}"));
    }
    Ok(signed)
}

/// Publishes `changes` with keys from the keyring, printing docker's progress lines. A
/// cancellation before the upload is [`Error::Cancelled`] (nothing changed); after it, the
/// error says what is live.
pub async fn publish_changes(
    ctx: &Context,
    t: &TrustRepo,
    changes: &[Change],
) -> Result<(), Error> {
    publish_from(ctx, t, changes, None).await
}

/// As [`publish_changes`], the first attempt built on `current` (see [`Publisher::publish_from`]).
async fn publish_from(
    ctx: &Context,
    t: &TrustRepo,
    changes: &[Change],
    current: Option<Result<Repo, ClientError>>,
) -> Result<(), Error> {
    ctx.out.status("Signing and pushing trust metadata");
    if publish_quietly_from(ctx, t, changes, current).await? {
        ctx.out
            .status(format_args!("Finished initializing \"{}\"", t.server.gun));
    }
    Ok(())
}

/// Publishes `changes` with keys from the keyring; returns whether the repository was
/// initialised. Errors as [`publish_changes`].
pub async fn publish_quietly(
    ctx: &Context,
    t: &TrustRepo,
    changes: &[Change],
) -> Result<bool, Error> {
    publish_quietly_from(ctx, t, changes, None).await
}

async fn publish_quietly_from(
    ctx: &Context,
    t: &TrustRepo,
    changes: &[Change],
    current: Option<Result<Repo, ClientError>>,
) -> Result<bool, Error> {
    let keys = Keyring::new(LockPlace::for_user(), ctx.cancel.clone());
    let publisher = Publisher {
        server: &t.server,
        cache: &t.cache,
        trust: &t.trust,
        limits: &t.limits,
        keys: &keys,
        cancel: &ctx.cancel,
    };
    let published = match publisher
        .publish_from(changes, OffsetDateTime::now_utc(), current)
        .await
    {
        Ok(p) => p,
        Err(PublishError::Interrupted {
            reason,
            stage: crate::notary::publish::Stage::NothingSent,
            ..
        }) => return Err(Error::Cancelled(reason)),
        Err(e) => return Err(e.into()),
    };
    Ok(published.initialized)
}
