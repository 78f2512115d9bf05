//! `pull IMAGE[:TAG]`: resolve the tag through verified signatures (Docker Content Trust,
//! Notary Project, as the signature policy asks), pull exactly that digest through the engine,
//! check what arrived, and only then tag it.

use super::trust::TrustRepo;
use super::verify::{SignaturePolicy, settings_policy, verify_tag};
use super::{Context, Error, cancellable};
use crate::engine::EngineError;
use crate::engine::platform::Platform;
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
    /// Pull the image for this platform (os/arch[/variant], e.g. linux/arm64) from a signed
    /// multi-platform index; the image the engine pulls must be that platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// Print only the verified digest of each tag pulled (no progress); errors still go to
    /// stderr.
    #[arg(short, long)]
    quiet: bool,
}

impl PullArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        if self.quiet && ctx.out.json() {
            return Err(super::push::quiet_and_json());
        }
        let mut image = ImageRef::parse(&self.image)?;
        if self.all_tags && image.tag.is_some() {
            return Err(Error::Usage(
                "give either a tag or --all-tags, not both".into(),
            ));
        }
        if image.tag.is_none() && !self.all_tags {
            self.say(&ctx.out, "Using default tag: latest");
            image.tag = Some("latest".into());
        }
        let t = cancellable(&ctx.cancel, TrustRepo::open(ctx, &image)).await?;
        let policy = match self.policy {
            Some(p) => Some(p),
            None => settings_policy(&t)?,
        };
        // Nothing reaches the engine before the signatures have verified.
        let (targets, kinds): (Vec<(String, VerifiedDigest)>, Vec<String>) = match &image.tag {
            Some(tag) => {
                let (found, kinds, _) = verify_tag(ctx, &t, tag, policy).await?;
                self.say(
                    &ctx.out,
                    &format!("Verified {}:{tag}: {}", image.gun(), kinds.join(", ")),
                );
                (vec![(tag.clone(), found)], kinds)
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
                (all, vec![DCT_KIND.to_string()])
            }
        };
        let engine = t.engine(ctx)?;
        let creds = t.engine_credentials();
        let name = image.gun();
        // For the moved-tag note; set up once for all tags, and optional like the note.
        let registry = t.registry_client().await.ok();
        let n = targets.len();
        let mut pulled = Vec::with_capacity(n);
        for (i, (tag, target)) in targets.iter().enumerate() {
            let digest = target.digest();
            let reference = format!("{name}:{tag}");
            let by_digest = format!("{name}@{digest}");
            self.say(
                &ctx.out,
                &format!("Pull ({} of {n}): {reference}@{digest}", i + 1),
            );
            let mut progress = if self.quiet {
                Progress::silent()
            } else {
                ctx.out.progress()
            };
            let reported = cancellable(&ctx.cancel, async {
                Ok(engine
                    .pull_by_digest(
                        &name,
                        target,
                        self.platform.as_ref(),
                        creds.clone(),
                        &mut progress,
                    )
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
            let local = engine.inspect(&by_digest).await?;
            if !local.repo_digests.iter().any(|d| d == &by_digest) {
                return Err(Error::DigestMismatch {
                    reference,
                    verified: digest,
                    reported: local.repo_digests.join(", "),
                });
            }
            // For a signed index the engine picks the platform's manifest; the index pins it by
            // digest, but whether it is the platform asked for is only in the image's config.
            // An index without that platform, or an engine that falls back to another one,
            // must not end up tagged.
            if let Some(p) = &self.platform
                && !p.matches(&local.os, &local.architecture, local.variant.as_deref())
            {
                return Err(EngineError::PlatformMismatch {
                    reference: by_digest,
                    wanted: p.to_string(),
                    got: local.platform(),
                }
                .into());
            }
            if !self.quiet {
                eprintln!("Tagging {by_digest} as {reference}");
            }
            // By id: the image checked above, whatever `name@digest` names by now.
            engine.tag(&local.id, &name, tag).await?;
            if self.quiet {
                println!("{digest}");
            }
            if let Some((client, base)) = &registry {
                note_moved_tag(ctx, client, base, &image, tag, &digest, self.quiet).await;
            }
            pulled.push(PulledTag {
                tag,
                digest,
                kinds: &kinds,
            });
        }
        ctx.out.emit_json(&PulledJson {
            name: &name,
            pulled,
        })
    }
}

impl PullArgs {
    /// A progress line, left out with `--quiet`; on stderr with `--format json`.
    fn say(&self, out: &super::Output, line: &str) {
        if !self.quiet {
            out.status(line);
        }
    }
}

/// The kind `--all-tags` verifies: Docker Content Trust alone lists every signed tag.
const DCT_KIND: &str = "Docker Content Trust";

/// `pull --format json`: each tag pulled, the verified digest it now names, and the kinds of
/// signature that verified it.
#[derive(serde::Serialize)]
struct PulledJson<'a> {
    name: &'a str,
    pulled: Vec<PulledTag<'a>>,
}

#[derive(serde::Serialize)]
struct PulledTag<'a> {
    tag: &'a str,
    digest: String,
    kinds: &'a [String],
}

/// Says so when the registry's tag now points elsewhere than the signed digest (someone pushed
/// without signing). Best effort: failing to ask changes nothing.
async fn note_moved_tag(
    ctx: &Context,
    client: &AuthedClient,
    base: &crate::registry::endpoint::Endpoint,
    image: &ImageRef,
    tag: &str,
    signed: &str,
    quiet: bool,
) {
    if let Ok(current) = manifest_ref(client, base, &image.repository, tag).await
        && current.digest != signed
    {
        let note = format!(
            "Note: {}:{tag} in the registry now points to {}, which is not signed; pulled the signed {signed}",
            image.gun(),
            current.digest
        );
        // `--quiet`'s stdout is the digests alone.
        if quiet {
            eprintln!("{note}");
        } else {
            ctx.out.status(note);
        }
    }
}
