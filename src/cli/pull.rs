//! `pull IMAGE[:TAG]`: resolve the tag through verified signatures (Docker Content Trust,
//! Notary Project, as the signature policy asks), pull exactly that digest through the engine,
//! check what arrived, and only then tag it.

use super::trust::TrustRepo;
use super::verify::{SignaturePolicy, settings_policy, verify_tag};
use super::{Context, Error, cancellable};
use crate::engine::progress::Progress;
use crate::notary::client::{ClientError, VerifiedDigest};
use crate::reference::ImageRef;
use crate::registry::{AuthedClient, manifest_ref};

/// Arguments of `pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image to pull; the tag defaults to latest.
    #[arg(value_name = "IMAGE[:TAG]")]
    image: String,
    /// Pull every signed tag of the repository.
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Which signatures must verify: dct, notation, either or both (default: the repository's
    /// setting in trustacr.json, else every kind the repository has).
    #[arg(long, value_enum)]
    policy: Option<SignaturePolicy>,
}

impl PullArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let mut image = ImageRef::parse(&self.image)?;
        if self.all_tags && image.tag.is_some() {
            return Err(Error::Usage(
                "give either a tag or --all-tags, not both".into(),
            ));
        }
        if image.tag.is_none() && !self.all_tags {
            println!("Using default tag: latest");
            image.tag = Some("latest".into());
        }
        let t = cancellable(&ctx.cancel, TrustRepo::open(ctx, &image)).await?;
        let policy = match self.policy {
            Some(p) => Some(p),
            None => settings_policy(&t)?,
        };
        // Nothing reaches the engine before the signatures have verified.
        let targets: Vec<(String, VerifiedDigest)> = match &image.tag {
            Some(tag) => {
                let (found, kinds, _) = verify_tag(ctx, &t, tag, policy).await?;
                println!("Verified {}:{tag}: {}", image.gun(), kinds.join(", "));
                vec![(tag.clone(), found)]
            }
            None => {
                if policy.is_some_and(|p| p != SignaturePolicy::Dct) {
                    return Err(Error::Usage(
                        "--all-tags pulls the tags Docker Content Trust signs; give a tag to pull under a Notary Project policy".into(),
                    ));
                }
                let repo = cancellable(&ctx.cancel, t.update()).await?;
                let all = repo.resolve_all().map_err(ClientError::from)?;
                if all.is_empty() {
                    return Err(Error::NotSigned {
                        tag: "any tag".into(),
                        gun: repo.gun.clone(),
                        skipped: repo.skipped.clone(),
                    });
                }
                all
            }
        };
        let engine = t.engine(ctx)?;
        let creds = t.engine_credentials();
        let name = image.gun();
        // For the moved-tag note; set up once for all tags, and optional like the note.
        let registry = t.registry_client().await.ok();
        let n = targets.len();
        for (i, (tag, target)) in targets.iter().enumerate() {
            let digest = target.digest();
            let reference = format!("{name}:{tag}");
            let by_digest = format!("{name}@{digest}");
            println!("Pull ({} of {n}): {reference}@{digest}", i + 1);
            let mut progress = Progress::stdout();
            let reported = cancellable(&ctx.cancel, async {
                Ok(engine
                    .pull_by_digest(&name, target, creds.clone(), &mut progress)
                    .await?)
            })
            .await?;
            // The engine pulls by digest and checks content against it; still, never tag
            // anything whose digest is not the verified one.
            if let Some(r) = reported.filter(|r| r != &digest) {
                return Err(Error::DigestMismatch {
                    reference,
                    verified: digest,
                    reported: r,
                });
            }
            let digests = engine.repo_digests(&by_digest).await?;
            if !digests.iter().any(|d| d == &by_digest) {
                return Err(Error::DigestMismatch {
                    reference,
                    verified: digest,
                    reported: digests.join(", "),
                });
            }
            eprintln!("Tagging {by_digest} as {reference}");
            engine.tag(&by_digest, &name, tag).await?;
            if let Some((client, base)) = &registry {
                note_moved_tag(client, base, &image, tag, &digest).await;
            }
        }
        Ok(())
    }
}

/// Says so when the registry's tag now points elsewhere than the signed digest (someone pushed
/// without signing). Best effort: failing to ask changes nothing.
async fn note_moved_tag(
    client: &AuthedClient,
    base: &crate::registry::endpoint::Endpoint,
    image: &ImageRef,
    tag: &str,
    signed: &str,
) {
    if let Ok(current) = manifest_ref(client, base, &image.repository, tag).await
        && current.digest != signed
    {
        println!(
            "Note: {}:{tag} in the registry now points to {}, which is not signed; pulled the signed {signed}",
            image.gun(),
            current.digest
        );
    }
}
