//! `verify IMAGE:TAG`: the digest that verified signatures sign for a tag, or a non-zero exit.
//! Docker Content Trust, Notary Project signatures (`--notation`), or a policy of both
//! (`--policy`); the same policy decides what `pull` accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::notary::client::{self, ClientError, Repo, VerifiedDigest};
use crate::notation::envelope::Descriptor;
use crate::notation::policy::{Level, MAX_POLICY_BYTES, Policy, PolicyError, Statement, StoreType};
use crate::notation::truststore::{self, TrustStore, TrustStoreError};
use crate::notation::verify::{Anchors, verify as notation_verify};
use crate::reference::ImageRef;
use crate::registry::AuthedClient;
use crate::registry::endpoint::Endpoint;
use crate::registry::referrers::{self, Discovery, ReferrersError};

/// Which signatures a tag must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignaturePolicy {
    /// Docker Content Trust only.
    Dct,
    /// Notary Project signatures only.
    Notation,
    /// Either kind; Docker Content Trust is tried first.
    Either,
    /// Both kinds, for the same digest.
    Both,
}

/// The policy for a repository from the settings: the exact name, else the longest `prefix*`.
pub fn policy_for(map: &BTreeMap<String, SignaturePolicy>, gun: &str) -> Option<SignaturePolicy> {
    map.get(gun).copied().or_else(|| {
        map.iter()
            .filter_map(|(k, v)| {
                k.strip_suffix('*')
                    .filter(|p| gun.starts_with(p))
                    .map(|p| (p.len(), *v))
            })
            .max_by_key(|(n, _)| *n)
            .map(|(_, v)| v)
    })
}

/// What one kind of signature gave.
#[derive(Debug)]
pub enum KindResult<T> {
    /// It verified.
    Verified(T),
    /// The repository has none of this kind.
    Absent(String),
    /// It exists and did not verify.
    Failed(Error),
}

/// The digest to use and the kinds that verified it, or why the tag is refused. `None` is the
/// default: every kind the repository has must verify, and at least one must exist.
pub fn decide(
    policy: Option<SignaturePolicy>,
    dct: KindResult<VerifiedDigest>,
    notation: KindResult<NotationVerified>,
) -> Result<(VerifiedDigest, Vec<String>, Option<NotationVerified>), Error> {
    use KindResult::*;
    let dct_kind = "Docker Content Trust".to_string();
    let notation_kind = |n: &NotationVerified| format!("Notary Project (signed by {})", n.signer);
    let refuse = |why: String| Err(Error::Unverified(why));
    match (policy, dct, notation) {
        (Some(SignaturePolicy::Dct), Verified(d), _) => Ok((d, vec![dct_kind], None)),
        (Some(SignaturePolicy::Dct), Failed(e), _) => Err(e),
        (Some(SignaturePolicy::Dct), Absent(why), _) => Err(Error::NoSignature(why)),
        (Some(SignaturePolicy::Notation), _, Verified(n)) => {
            let k = notation_kind(&n);
            Ok((n.digest.clone(), vec![k], Some(n)))
        }
        (Some(SignaturePolicy::Notation), _, Failed(e)) => Err(e),
        (Some(SignaturePolicy::Notation), _, Absent(why)) => Err(Error::NoSignature(why)),
        (Some(SignaturePolicy::Either), Verified(d), n) => {
            let mut kinds = vec![dct_kind];
            let n = match n {
                Verified(n) if n.digest.digest() == d.digest() => {
                    kinds.push(notation_kind(&n));
                    Some(n)
                }
                _ => None,
            };
            Ok((d, kinds, n))
        }
        (Some(SignaturePolicy::Either), dct, Verified(n)) => {
            if let Failed(e) = dct {
                tracing::warn!(
                    "Docker Content Trust did not verify ({e}); a Notary Project signature did"
                );
            }
            let k = notation_kind(&n);
            Ok((n.digest.clone(), vec![k], Some(n)))
        }
        (Some(SignaturePolicy::Either), dct, notation) => refuse(format!(
            "neither kind of signature verified: Docker Content Trust: {}; Notary Project: {}",
            describe(dct),
            describe(notation)
        )),
        (Some(SignaturePolicy::Both) | None, Verified(d), Verified(n)) => {
            if d.digest() != n.digest.digest() {
                return refuse(format!(
                    "Docker Content Trust signs {} but the Notary Project signature is for {}, which the tag now points to",
                    d.digest(),
                    n.digest.digest()
                ));
            }
            let k = notation_kind(&n);
            Ok((d, vec![dct_kind, k], Some(n)))
        }
        (Some(SignaturePolicy::Both), dct, notation) => refuse(format!(
            "policy both needs both kinds: Docker Content Trust: {}; Notary Project: {}",
            describe(dct),
            describe(notation)
        )),
        (None, Failed(e), _) | (None, _, Failed(e)) => Err(e),
        (None, Verified(d), Absent(_)) => Ok((d, vec![dct_kind], None)),
        (None, Absent(_), Verified(n)) => {
            let k = notation_kind(&n);
            Ok((n.digest.clone(), vec![k], Some(n)))
        }
        (None, Absent(a), Absent(b)) => Err(Error::NoSignature(format!(
            "the image is not signed: {a}; {b}"
        ))),
    }
}

fn describe<T>(r: KindResult<T>) -> String {
    match r {
        KindResult::Verified(_) => "verified".into(),
        KindResult::Absent(why) => why,
        KindResult::Failed(e) => e.to_string(),
    }
}

/// The repository's policy from `trustacr.json` (`pull_policy`), if any.
pub fn settings_policy(t: &TrustRepo) -> Result<Option<SignaturePolicy>, Error> {
    let settings = super::trust::Settings::load(&t.config_dir)?;
    Ok(policy_for(&settings.pull_policy, &t.image.gun()))
}

/// Both kinds for one tag, as the policy needs them, then [`decide`]. The Notary Project side
/// is skipped under `dct`, and DCT under `notation`. The two are looked up at once: under the
/// default policy the registry requests that look for Notary Project signatures (manifest,
/// referrers, tag-schema index) overlap the notary update instead of following it, and
/// nothing is decided before both have answered.
pub async fn verify_tag(
    ctx: &Context,
    t: &TrustRepo,
    tag: &str,
    policy: Option<SignaturePolicy>,
) -> Result<(VerifiedDigest, Vec<String>, Option<NotationVerified>), Error> {
    let dct = async {
        if policy == Some(SignaturePolicy::Notation) {
            return Ok(KindResult::Absent("not asked for".into()));
        }
        Ok(match cancellable(&ctx.cancel, update_tag(t, tag)).await {
            Ok(repo) => match repo.find_target(tag).map_err(ClientError::from) {
                Ok(Some(d)) => KindResult::Verified(d),
                Ok(None) => KindResult::Failed(Error::NotSigned {
                    tag: tag.to_string(),
                    gun: repo.gun.clone(),
                    skipped: repo.skipped.clone(),
                }),
                Err(e) => KindResult::Failed(e.into()),
            },
            Err(Error::Notary(e @ ClientError::NotFound { .. })) => {
                KindResult::Absent(e.to_string())
            }
            Err(e @ Error::Cancelled(_)) => return Err(e),
            Err(e) => KindResult::Failed(e),
        })
    };
    let notation = async {
        if policy == Some(SignaturePolicy::Dct) {
            return Ok(None);
        }
        let run = async {
            let (client, base) = t.registry_client().await?;
            let config = truststore::config_dir().map_err(NotationError::from)?;
            Ok::<_, Error>(verify_notation(&client, &base, &t.image, tag, &config).await)
        };
        match cancellable(&ctx.cancel, run).await {
            Err(e @ Error::Cancelled(_)) => Err(e),
            other => Ok(Some(other)),
        }
    };
    let (dct, notation) = tokio::join!(dct, notation);
    let dct = dct?;
    let notation = match notation? {
        None => KindResult::Absent("not asked for".into()),
        Some(Ok(Ok(n))) => KindResult::Verified(n),
        Some(Ok(Err(e @ NotationError::NoSignature { .. })))
        | Some(Ok(Err(e @ NotationError::Referrers(ReferrersError::NoTag(_))))) => {
            KindResult::Absent(e.to_string())
        }
        // Signatures exist and the trust policy verified none: under the default policy the
        // repository has this kind, so it must verify, whatever DCT says.
        Some(Ok(Err(e @ NotationError::Refused { .. }))) => KindResult::Failed(e.into()),
        // Without an explicit policy, a registry that cannot list signatures (or no notation
        // trust policy to check them with) does not undo a verified DCT signature; it does
        // refuse where Notary Project is required.
        Some(Ok(Err(e))) if policy.is_none() && matches!(dct, KindResult::Verified(_)) => {
            tracing::warn!("Notary Project signatures not checked: {e}");
            KindResult::Absent(e.to_string())
        }
        Some(Ok(Err(e))) => KindResult::Failed(e.into()),
        Some(Err(e)) => KindResult::Failed(e),
    };
    decide(policy, dct, notation)
}

/// The repository's trust data, updated and verified in full, with only `tag`'s entries built
/// (one tag among 10,000 need not cost 10,000 map entries).
async fn update_tag(t: &TrustRepo, tag: &str) -> Result<Repo, Error> {
    Ok(client::update_tag(
        &t.server,
        &t.cache,
        &t.server.gun,
        tag,
        OffsetDateTime::now_utc(),
        &t.trust,
        &t.limits,
    )
    .await?)
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image and tag to verify, e.g. myregistry.azurecr.io/app:v1.
    #[arg(value_name = "IMAGE:TAG")]
    image: String,
    /// Verify the Notary Project signature only (same as --policy notation).
    #[arg(long, conflicts_with = "policy")]
    notation: bool,
    /// Which signatures must verify (default: the repository's setting in trustacr.json, else
    /// every kind the repository has).
    #[arg(long, value_enum)]
    policy: Option<SignaturePolicy>,
}

#[derive(Serialize)]
struct Verified<'a> {
    name: String,
    tag: &'a str,
    digest: String,
    size: u64,
    role: &'a str,
    kinds: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notation: Option<NotationJson>,
}

#[derive(Serialize)]
struct NotationJson {
    signer: String,
    signature: String,
    discovery: &'static str,
    #[serde(rename = "mediaType")]
    media_type: String,
    logged: Vec<String>,
}

impl VerifyArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let image = ImageRef::parse(&self.image)?;
        let tag = image.tag.clone().ok_or_else(|| {
            Error::Usage(format!("{}: give a tag to verify (IMAGE:TAG)", self.image))
        })?;
        let t = cancellable(&ctx.cancel, TrustRepo::open(ctx, &image)).await?;
        let policy = if self.notation {
            Some(SignaturePolicy::Notation)
        } else {
            self.policy.or(settings_policy(&t)?)
        };
        let (target, kinds, notation) = verify_tag(ctx, &t, &tag, policy).await?;
        let digest = target.digest();
        // The text output is the digest alone.
        let text = digest.clone();
        let v = Verified {
            name: image.gun(),
            tag: &tag,
            digest,
            size: target.size(),
            role: target.role(),
            kinds,
            notation: notation.map(|n| NotationJson {
                signer: n.signer,
                signature: n.signature,
                discovery: match n.discovery {
                    Discovery::ReferrersApi => "referrers API",
                    Discovery::TagSchema => "tag schema",
                },
                media_type: n.descriptor.media_type,
                logged: n.logged,
            }),
        };
        ctx.out.emit(&v, |out| writeln!(out, "{text}"))?;
        Ok(())
    }
}

/// Errors of Notary Project verification.
#[derive(Debug, thiserror::Error)]
pub enum NotationError {
    /// Discovery or fetching failed.
    #[error(transparent)]
    Referrers(#[from] ReferrersError),
    /// The trust policy is invalid or selects nothing.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// notation's config directory or trust store cannot be used.
    #[error(transparent)]
    TrustStore(#[from] TrustStoreError),
    /// No policy file.
    #[error(
        "no Notary Project trust policy at {0}: create one with `docker trustacr policy init REPO --cert FILE` (or `notation policy import`)"
    )]
    NoPolicy(PathBuf),
    /// Reading the policy file.
    #[error("cannot read the trust policy {path}: {source}")]
    PolicyFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The statement for the repository is level skip.
    #[error(
        "{reference}: trust policy statement {statement:?} is level skip, so no Notary Project signature is verified"
    )]
    Skipped {
        /// The image.
        reference: String,
        /// The statement.
        statement: String,
    },
    /// No signature refers to the digest.
    #[error("{reference} ({digest}): no Notary Project signature is associated with it")]
    NoSignature {
        /// The image.
        reference: String,
        /// The resolved digest.
        digest: String,
    },
    /// Signatures exist, and none verified.
    #[error("{reference} ({digest}): no Notary Project signature verified: {}", .failures.join("; "))]
    Refused {
        /// The image.
        reference: String,
        /// The resolved digest.
        digest: String,
        /// Each signature's failure.
        failures: Vec<String>,
    },
}

/// A verified Notary Project signature for a reference.
#[derive(Debug)]
pub struct NotationVerified {
    /// The verified manifest, for the engine.
    pub digest: VerifiedDigest,
    /// Its media type, digest and size.
    pub descriptor: Descriptor,
    /// The signing certificate's subject.
    pub signer: String,
    /// The signature manifest that verified.
    pub signature: String,
    /// How it was found.
    pub discovery: Discovery,
    /// Checks that failed and were only logged at the policy's level.
    pub logged: Vec<String>,
}

/// Reads notation's trust policy (`trustpolicy.oci.json`, else the older `trustpolicy.json`).
pub fn load_policy(config: &Path) -> Result<Policy, NotationError> {
    for name in ["trustpolicy.oci.json", "trustpolicy.json"] {
        let path = config.join(name);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_POLICY_BYTES as u64 => {
                return Err(
                    PolicyError::Invalid(format!("{} is too large", path.display())).into(),
                );
            }
            Ok(_) => {
                let bytes = std::fs::read(&path)
                    .map_err(|source| NotationError::PolicyFile { path, source })?;
                return Ok(Policy::parse(&bytes)?);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(NotationError::PolicyFile { path, source }),
        }
    }
    Err(NotationError::NoPolicy(config.join("trustpolicy.oci.json")))
}

/// Loads the stores a statement names, each as its certificates or its error.
pub fn load_anchors(store: &TrustStore, statement: &Statement) -> Anchors {
    let mut anchors = Anchors::default();
    for (kind, name) in &statement.trust_stores {
        let loaded = store.certificates(*kind, name).map_err(|e| e.to_string());
        match kind {
            StoreType::Ca => anchors.ca.push(loaded),
            StoreType::SigningAuthority => anchors.signing_authority.push(loaded),
            StoreType::Tsa => {
                anchors.tsa_configured = true;
                anchors.tsa.push(loaded);
            }
        }
    }
    anchors
}

/// Verifies the Notary Project signatures of `repo:reference` as notation would: resolve the
/// reference, list its signatures, select the policy statement (from notation's files under
/// `config`), verify each signature until one passes.
pub async fn verify_notation(
    client: &AuthedClient,
    base: &Endpoint,
    image: &ImageRef,
    reference: &str,
    config: &Path,
) -> Result<NotationVerified, NotationError> {
    let repo = &image.repository;
    let shown = format!("{}:{reference}", image.gun());
    let target = referrers::resolve(client, base, repo, reference).await?;
    let (sigs, discovery) = referrers::list_signatures(client, base, repo, &target.digest).await?;
    if sigs.is_empty() {
        return Err(NotationError::NoSignature {
            reference: shown,
            digest: target.digest,
        });
    }
    let policy = load_policy(config)?;
    let statement = policy.statement_for(&image.gun())?;
    if statement.level == Level::Skip {
        return Err(NotationError::Skipped {
            reference: shown,
            statement: statement.name.clone(),
        });
    }
    let anchors = load_anchors(&TrustStore::new(config), statement);
    let mut failures = Vec::new();
    for sig in &sigs {
        let blob = match referrers::fetch_signature(client, base, repo, sig, &target.digest).await {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{}: {e}", sig.digest));
                continue;
            }
        };
        let now = OffsetDateTime::now_utc();
        match notation_verify(
            &blob.media_type,
            &blob.envelope,
            &target,
            statement,
            &anchors,
            now,
        ) {
            Ok(v) => {
                let sha256 = hex::decode(target.digest.trim_start_matches("sha256:"))
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .unwrap_or_default();
                return Ok(NotationVerified {
                    digest: VerifiedDigest::new(sha256, target.size, "notation".into()),
                    descriptor: target,
                    signer: v.signer,
                    signature: blob.manifest_digest,
                    discovery,
                    logged: v.logged.iter().map(ToString::to_string).collect(),
                });
            }
            Err(f) => failures.push(format!("{}: {f}", sig.digest)),
        }
    }
    Err(NotationError::Refused {
        reference: shown,
        digest: target.digest,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(b: u8) -> VerifiedDigest {
        VerifiedDigest::new([b; 32], 10, "targets".into())
    }

    fn notation(b: u8) -> NotationVerified {
        NotationVerified {
            digest: VerifiedDigest::new([b; 32], 10, "notation".into()),
            descriptor: Descriptor {
                media_type: "m".into(),
                digest: format!("sha256:{}", hex::encode([b; 32])),
                size: 10,
                annotations: None,
            },
            signer: "CN=x".into(),
            signature: "sha256:s".into(),
            discovery: Discovery::TagSchema,
            logged: vec![],
        }
    }

    fn failed() -> Error {
        Error::Unverified("bad".into())
    }

    use KindResult::{Absent, Failed, Verified};
    use SignaturePolicy::*;

    #[test]
    fn the_default_needs_every_kind_the_repository_has_and_at_least_one() {
        let (d, kinds, _) = decide(None, Verified(digest(1)), Absent("none".into())).unwrap();
        assert_eq!((d.digest(), kinds.len()), (digest(1).digest(), 1));
        let (_, kinds, _) = decide(None, Verified(digest(1)), Verified(notation(1))).unwrap();
        assert_eq!(kinds.len(), 2);
        assert!(decide(None, Verified(digest(1)), Failed(failed())).is_err());
        assert!(decide(None, Failed(failed()), Verified(notation(1))).is_err());
        assert!(decide(None, Absent("a".into()), Absent("b".into())).is_err());
        // Both kinds present but for different digests: the tag moved after one was signed.
        assert!(decide(None, Verified(digest(1)), Verified(notation(2))).is_err());
    }

    #[test]
    fn each_explicit_policy_needs_its_kinds() {
        assert!(decide(Some(Dct), Absent("a".into()), Verified(notation(1))).is_err());
        assert!(decide(Some(Notation), Verified(digest(1)), Absent("b".into())).is_err());
        let (d, _, _) = decide(Some(Either), Failed(failed()), Verified(notation(2))).unwrap();
        assert_eq!(d.digest(), notation(2).digest.digest());
        assert!(decide(Some(Either), Failed(failed()), Failed(failed())).is_err());
        assert!(decide(Some(Both), Verified(digest(1)), Absent("b".into())).is_err());
        assert!(decide(Some(Both), Verified(digest(1)), Verified(notation(2))).is_err());
        let (_, kinds, _) = decide(Some(Both), Verified(digest(1)), Verified(notation(1))).unwrap();
        assert_eq!(kinds.len(), 2);
    }

    #[test]
    fn the_settings_policy_is_the_exact_repository_else_the_longest_prefix() {
        let map: BTreeMap<String, SignaturePolicy> = serde_json::from_str(
            r#"{"r.io/*":"either","r.io/team/*":"both","r.io/team/app":"notation"}"#,
        )
        .unwrap();
        assert_eq!(policy_for(&map, "r.io/team/app"), Some(Notation));
        assert_eq!(policy_for(&map, "r.io/team/x"), Some(Both));
        assert_eq!(policy_for(&map, "r.io/y"), Some(Either));
        assert_eq!(policy_for(&map, "other.io/y"), None);
    }
}
