//! `migrate REPO` (or `migrate REGISTRY --all`): co-sign every tag that verified Docker Content
//! Trust data signs with a Notary Project signature on the same digest, and report parity.
//!
//! Only DCT-verified digests are signed, and only after the registry serves exactly those bytes
//! (digest recomputed, size compared with the signed length). A digest already carrying a valid
//! signature by the chosen key is left alone, so a second run signs nothing and an interrupted
//! run picks up where it stopped. Tag-schema `sha256-<hex>` tags are never treated as tags.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use super::notation::{self, NotationError};
use super::trust::TrustRepo;
use super::{Context, Error, Output, cancellable};
use crate::keystore::notation::NotationSigner;
use crate::notary::client::ClientError;
use crate::notation::sign::{self as sig, Descriptor};
use crate::reference::ImageRef;
use crate::registry::artifact::{self, ArtifactError};
use crate::registry::endpoint::Endpoint;
use crate::registry::referrers;
use crate::registry::{AuthedClient, MAX_MANIFEST, read_limited};

/// Arguments of `migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The repository (e.g. myregistry.azurecr.io/app), or with --all the registry.
    #[arg(value_name = "REPO")]
    target: String,
    /// Every repository of the registry (its /v2/_catalog).
    #[arg(long)]
    all: bool,
    /// Report what would be signed; sign nothing.
    #[arg(long)]
    dry_run: bool,
    /// The Notary Project key to sign with; needed only when the keyring holds several.
    #[arg(long, value_name = "NAME")]
    notation_key: Option<String>,
    /// How many digests to sign at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

/// The Notary Project state of one tag.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum NotationState {
    /// A valid signature by the key was already there.
    Present,
    /// Signed by this run.
    Signed,
    /// Missing (a dry run, which signs nothing).
    Missing,
    /// Signing failed; the reason is in `error`.
    Failed,
}

#[derive(Debug, Serialize)]
struct Row {
    repository: String,
    tag: String,
    digest: String,
    dct: &'static str,
    notation: NotationState,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    key: String,
    dry_run: bool,
    tags: usize,
    notation_signed: usize,
    new_signatures: usize,
    parity: bool,
    rows: Vec<Row>,
    /// With `--all`: catalog repositories that have no DCT data, so nothing to co-sign.
    without_dct: Vec<String>,
}

const DCT_WARNING: &str = "Do not disable content trust on the registry until every repository reports parity: disabling DCT deletes all of its trust data, irreversibly.";

impl MigrateArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let signer = notation::select_key(self.notation_key.clone()).await?;
        let repos = if self.all {
            cancellable(&ctx.cancel, catalog(ctx, &self.target)).await?
        } else {
            vec![self.target.clone()]
        };
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        let mut without_dct = Vec::new();
        for repo in &repos {
            match self.migrate_repo(ctx, repo, &signer).await {
                Ok(mut r) => rows.append(&mut r),
                Err(e @ Error::Cancelled(_)) => return Err(e),
                // A catalog also lists repositories never signed with DCT: nothing to move
                // there, which is not a failure of the migration. Named, never hidden.
                Err(Error::Notary(ClientError::NotFound { .. })) if self.all => {
                    without_dct.push(repo.clone());
                }
                Err(e) if self.all => failures.push(Error::Inaccessible {
                    name: repo.clone(),
                    cause: Box::new(e),
                }),
                Err(e) => return Err(e),
            }
        }
        let signed = rows
            .iter()
            .filter(|r| matches!(r.notation, NotationState::Present | NotationState::Signed))
            .count();
        let report = Report {
            key: signer.name.clone(),
            dry_run: self.dry_run,
            tags: rows.len(),
            notation_signed: signed,
            new_signatures: rows
                .iter()
                .filter(|r| r.notation == NotationState::Signed)
                .map(|r| &r.digest)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            parity: signed == rows.len() && failures.is_empty(),
            rows,
            without_dct,
        };
        print_report(&report, ctx.out)?;
        if !failures.is_empty() {
            return Err(Error::Several(failures));
        }
        let failed: Vec<String> = report
            .rows
            .iter()
            .filter(|r| r.notation == NotationState::Failed)
            .map(|r| {
                format!(
                    "{}:{}: {}",
                    r.repository,
                    r.tag,
                    r.error.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !failed.is_empty() {
            return Err(NotationError::Artifact(ArtifactError::Mismatch {
                reference: format!("{} tag(s)", failed.len()),
                reason: failed.join("; "),
            })
            .into());
        }
        Ok(())
    }

    async fn migrate_repo(
        &self,
        ctx: &Context,
        repo: &str,
        signer: &NotationSigner,
    ) -> Result<Vec<Row>, Error> {
        let image = ImageRef::parse(repo)?;
        if image.tag.is_some() {
            return Err(Error::Usage(format!(
                "{repo}: give a repository without a tag"
            )));
        }
        let (t, targets) = cancellable(&ctx.cancel, async {
            let t = TrustRepo::open(ctx, &image).await?;
            let verified = t.update().await?;
            let targets = verified
                .resolve_all()
                .map_err(crate::notary::client::ClientError::from)?;
            Ok((t, targets))
        })
        .await?;
        let (client, base) = cancellable(&ctx.cancel, t.registry_client()).await?;
        // One signature per digest: tags that share a digest share its signature.
        let mut by_digest: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for (tag, target) in &targets {
            if artifact::is_referrers_tag(tag) {
                continue;
            }
            by_digest
                .entry(target.digest())
                .or_insert_with(|| (target.size(), Vec::new()))
                .1
                .push(tag.clone());
        }
        let path = image.repository.clone();
        let results: Vec<(String, Result<NotationState, String>)> = {
            let client = &client;
            let base = &base;
            let path = path.as_str();
            let work = futures_util::stream::iter(by_digest.iter().map(|(digest, (size, _))| {
                let dry = self.dry_run;
                async move {
                    let state = co_sign(client, base, path, signer, digest, *size, dry)
                        .await
                        .map_err(|e| e.to_string());
                    (digest.clone(), state)
                }
            }))
            .buffer_unordered(usize::from(self.jobs))
            .collect::<Vec<_>>();
            cancellable(&ctx.cancel, async { Ok(work.await) }).await?
        };
        let results: BTreeMap<String, Result<NotationState, String>> =
            results.into_iter().collect();
        let mut rows = Vec::new();
        for (digest, (_, tags)) in &by_digest {
            for tag in tags {
                let (notation, error) = match results.get(digest) {
                    Some(Ok(s)) => (s.clone(), None),
                    Some(Err(e)) => (NotationState::Failed, Some(e.clone())),
                    None => (NotationState::Failed, Some("not attempted".into())),
                };
                rows.push(Row {
                    repository: image.gun(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                    dct: "signed",
                    notation,
                    error,
                });
            }
        }
        rows.sort_by(|a, b| a.tag.cmp(&b.tag));
        Ok(rows)
    }
}

/// Ensures `digest` of `repo` carries a signature by `signer`: finds one, or (unless `dry`)
/// makes one after checking the registry serves exactly the DCT-signed bytes.
async fn co_sign(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    signer: &NotationSigner,
    digest: &str,
    dct_size: u64,
    dry: bool,
) -> Result<NotationState, NotationError> {
    let resolved = artifact::resolve(client, registry, repo, digest).await?;
    if resolved.descriptor.size != dct_size {
        return Err(ArtifactError::Mismatch {
            reference: format!("{repo}@{digest}"),
            reason: format!(
                "the registry serves {} bytes, the trust data signs {dct_size}",
                resolved.descriptor.size
            ),
        }
        .into());
    }
    if has_own_signature(client, registry, repo, signer, &resolved.descriptor).await? {
        return Ok(NotationState::Present);
    }
    if dry {
        return Ok(NotationState::Missing);
    }
    notation::sign_descriptor(client, registry, repo, signer, &resolved.descriptor).await?;
    Ok(NotationState::Signed)
}

/// Whether a referrer of `target` is a valid signature by `signer`, found with the verify
/// side's discovery (referrers API, else tag schema; manifests checked) and checked by
/// verifying the envelope with the key. Candidates that cannot be read are not ours.
async fn has_own_signature(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    signer: &NotationSigner,
    target: &Descriptor,
) -> Result<bool, NotationError> {
    let (candidates, _) =
        referrers::list_signatures(client, registry, repo, &target.digest).await?;
    let now = OffsetDateTime::now_utc();
    for candidate in &candidates {
        let Ok(blob) =
            referrers::fetch_signature(client, registry, repo, candidate, &target.digest).await
        else {
            continue;
        };
        if blob.media_type == crate::notation::MEDIA_TYPE_JWS
            && sig::is_own_signature(&signer.key, &signer.chain[0], &blob.envelope, target, now)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The repositories of `registry` from its catalog, as `registry/repo`.
async fn catalog(ctx: &Context, registry: &str) -> Result<Vec<String>, Error> {
    // Any repository name gives the plumbing for the registry; only the host is used.
    let image = ImageRef::parse(&format!("{registry}/catalog"))?;
    let t = TrustRepo::open(ctx, &image).await?;
    let (client, base) = t.registry_client().await?;
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    // Bounded: 100 pages of 1000 names.
    for _ in 0..100 {
        let mut url = base.url("v2/_catalog");
        url.query_pairs_mut().append_pair("n", "1000");
        if let Some(l) = &last {
            url.query_pairs_mut().append_pair("last", l);
        }
        let resp = client
            .send("registry:catalog:*", |http| http.get(url.clone()))
            .await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(NotationError::Artifact(ArtifactError::Status {
                step: "listing the catalog",
                reference: registry.to_string(),
                status: resp.status().as_u16(),
                detail: String::new(),
            })
            .into());
        }
        let more = resp.headers().contains_key(reqwest::header::LINK);
        let body = read_limited(resp, MAX_MANIFEST).await?;
        let names: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("repositories").cloned())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        last = names.last().cloned();
        out.extend(names.into_iter().map(|n| format!("{}/{n}", image.registry)));
        if !more || last.is_none() {
            break;
        }
    }
    Ok(out)
}

fn print_report(report: &Report, output: Output) -> Result<(), Error> {
    output.emit(report, |out| {
        writeln!(
            out,
            "{:<40} {:<20} {:<71} {:<7} NOTARY PROJECT",
            "REPOSITORY", "TAG", "DIGEST", "DCT"
        )?;
        for r in &report.rows {
            let state = match r.notation {
                NotationState::Present => "signed".to_string(),
                NotationState::Signed => "signed (new)".to_string(),
                NotationState::Missing => "missing".to_string(),
                NotationState::Failed => {
                    format!("FAILED: {}", r.error.as_deref().unwrap_or(""))
                }
            };
            writeln!(
                out,
                "{:<40} {:<20} {:<71} {:<7} {state}",
                r.repository, r.tag, r.digest, r.dct
            )?;
        }
        writeln!(
            out,
            "Notary Project signatures by key {}: {}/{} tags; {} new signature(s){}",
            report.key,
            report.notation_signed,
            report.tags,
            report.new_signatures,
            if report.dry_run {
                " (dry run: nothing signed)"
            } else {
                ""
            }
        )?;
        for repo in &report.without_dct {
            writeln!(
                out,
                "{repo}: no Docker Content Trust data; nothing to co-sign"
            )?;
        }
        if report.parity {
            writeln!(
                out,
                "Parity complete: every DCT-signed tag also has a Notary Project signature."
            )?;
        }
        writeln!(out, "{DCT_WARNING}")
    })
}
