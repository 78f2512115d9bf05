//! The trust policy of a Notary v1 client update: which files to ask for, in which order, with
//! which size limit; when the root is re-fetched and how it may change; which delegations may be
//! left out; how a tag resolves to a digest. The checks themselves are in [`super::verify`].
//!
//! Nothing here does I/O. [`update`] asks a [`Source`] for what it needs next (a file name and
//! its size limit, or a cached copy) and judges the bytes it is given; the Notary client
//! (`notary::client`) answers from the network and the cache, tests answer from memory. The
//! result is a [`Verified`] repository plus the exact files to cache; the caller writes them only
//! after `update` succeeded, so a refused update changes nothing.
//!
//! The order follows Notary's client (`client/tufclient.go`, notes/notary-v1.md §6):
//! root (cached, else trusted on first use or by pinning) → timestamp → snapshot → targets →
//! delegations. Deviations from Go are deliberate and named where they are made.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;

use time::OffsetDateTime;

use super::keys::PublicKey;
use super::metadata::{FileMeta, RawSigned, Snapshot, Targets, Timestamp};
use super::verify::{
    self, Limits, RootTrust, Signers, TrustedRoot, VerifyError, check_file_meta, restrict_paths,
};

/// Where the core's bytes come from. Implementations move bytes only; every decision about them
/// is made here.
pub trait Source {
    /// A transport failure (network, HTTP status other than 404, size limit).
    type Error;

    /// GETs `name` (`timestamp.json`, `snapshot.<sha256>.json`, `2.root.json`, …), reading at
    /// most `limit` bytes. `Ok(None)` means the server has no such file (404).
    fn fetch(
        &self,
        name: &str,
        limit: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send;

    /// The cached copy of `role` (`root`, `timestamp`, `targets/releases`, …), if any. Cached
    /// files are never trusted for what they are: they are verified like downloads, and only
    /// save a download or set a rollback floor.
    fn cached(&self, role: &str) -> Option<Vec<u8>>;

    /// Caches `bytes` as `role` now, before the update has finished: the core calls it to
    /// advance the rollback floors (timestamp, snapshot, and the root they were verified
    /// under) as soon as each verified. Best effort: a failure only loses the early floor.
    fn keep(&self, role: &str, bytes: &[u8]);
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// The source failed to deliver a file.
    #[error(transparent)]
    Source(E),
    /// The server has no trust data for the repository: `root.json`, `timestamp.json` or the
    /// snapshot the timestamp names is not there.
    #[error("the notary server has no {missing}")]
    NotFound {
        /// The file that was missing.
        missing: String,
    },
    /// Verification refused the data.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// A verified targets role.
#[derive(Debug, Clone)]
pub struct VerifiedRole {
    /// `targets` or `targets/<x>`.
    pub name: String,
    /// Its content; for a delegation, only the targets within its paths.
    pub targets: Targets,
    /// Effective path prefixes (`None` for top-level targets).
    pub paths: Option<Vec<String>>,
}

/// A repository's verified trust data.
#[derive(Debug, Clone)]
pub struct Repo {
    /// GUN.
    pub gun: String,
    /// Trusted root.
    pub root: TrustedRoot,
    /// Verified timestamp.
    pub timestamp: Timestamp,
    /// Verified snapshot.
    pub snapshot: Snapshot,
    /// Verified targets roles in walk order (`targets` first).
    pub roles: Vec<VerifiedRole>,
    /// `Some(tag)` after [`update_tag`]: every role was verified in full, but its `targets` map
    /// holds only `tag`'s entry. Listing tags needs a repository from [`update`].
    pub only: Option<String>,
    /// What was left out and why: delegations that are expired or under-signed (Go's rule), and
    /// targets a delegation signed outside its paths.
    pub skipped: Vec<(String, String)>,
}

/// One thing in a repository's trust data with an end date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// `root`, `targets`, `targets/releases`, … or `root certificate <key ID>`.
    pub what: String,
    /// When it expires.
    pub at: OffsetDateTime,
}

impl Repo {
    /// What expires before `now + window`, soonest first (already expired included): root and
    /// every verified targets role, and the root certificates. Timestamp and snapshot are left
    /// out: the server renews them.
    pub fn expiring(&self, now: OffsetDateTime, window: time::Duration) -> Vec<Expiry> {
        let limit = now + window;
        let root = &self.root.root;
        let mut all = vec![Expiry {
            what: "root".into(),
            at: root.expires.0,
        }];
        all.extend(self.roles.iter().map(|r| Expiry {
            what: r.name.clone(),
            at: r.targets.expires.0,
        }));
        for id in root
            .roles
            .get("root")
            .into_iter()
            .flat_map(|r| r.keyids.iter())
        {
            let Some(Ok(certs)) = root.keys.get(id).map(|k| k.certificates()) else {
                continue;
            };
            if let Some(leaf) = certs.first() {
                all.push(Expiry {
                    what: format!("root certificate {id}"),
                    at: super::x509::not_after(leaf),
                });
            }
        }
        all.retain(|e| e.at < limit);
        all.sort_by_key(|e| e.at);
        all
    }
}

/// The outcome of an update: the verified repository and the files to cache (role, bytes).
#[derive(Debug)]
pub struct Verified {
    /// The repository.
    pub repo: Repo,
    /// Exactly the bytes that verified, to be cached once the caller accepts the result.
    pub writes: Vec<(String, Vec<u8>)>,
}

/// A manifest digest that trust data signs. Only the trust core makes one: `verify`, `pull` and
/// the engine accept nothing else, so an unverified or empty digest cannot reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDigest {
    sha256: [u8; 32],
    size: u64,
    role: String,
}

impl VerifiedDigest {
    /// For verifiers in this crate (Notary v1 here; Notary Project signatures later).
    pub(crate) fn new(sha256: [u8; 32], size: u64, role: String) -> Self {
        VerifiedDigest { sha256, size, role }
    }

    /// Docker's rule (`convertTarget`): a target is a 32-byte sha256 and a length.
    fn of_target(role: &str, tag: &str, meta: &FileMeta) -> Result<Self, VerifyError> {
        let invalid = |reason: &str| VerifyError::InvalidTarget {
            role: role.to_string(),
            target: tag.to_string(),
            reason: reason.to_string(),
        };
        let sha256: [u8; 32] = meta
            .sha256()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| invalid("no valid hash, expecting sha256"))?;
        let size = u64::try_from(meta.length).map_err(|_| invalid("negative length"))?;
        Ok(VerifiedDigest::new(sha256, size, role.to_string()))
    }

    /// `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.sha256))
    }

    /// The raw sha256.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The manifest's length in bytes, as signed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The role that signs it (`targets/releases` or `targets`).
    pub fn role(&self) -> &str {
        &self.role
    }
}

/// The roles a tag is looked up in, in order: docker's `GetTargetByName(tag,
/// "targets/releases", "targets")`.
pub const RESOLUTION_ORDER: [&str; 2] = ["targets/releases", "targets"];

impl Repo {
    /// A verified role by name.
    pub fn role(&self, name: &str) -> Option<&VerifiedRole> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Resolves `tag` as docker does: `targets/releases` first, then `targets`. `Ok(None)`: not
    /// signed. A hit without a valid sha256 is an error, never a fall-through to the next role.
    pub fn find_target(&self, tag: &str) -> Result<Option<VerifiedDigest>, VerifyError> {
        for role in RESOLUTION_ORDER {
            if let Some(meta) = self.role(role).and_then(|r| r.targets.targets.get(tag)) {
                return VerifiedDigest::of_target(role, tag, meta).map(Some);
            }
        }
        Ok(None)
    }

    /// Every tag the resolution roles sign, sorted, each resolved by [`Repo::find_target`].
    pub fn resolve_all(&self) -> Result<Vec<(String, VerifiedDigest)>, VerifyError> {
        let mut tags: Vec<&String> = RESOLUTION_ORDER
            .iter()
            .filter_map(|r| self.role(r))
            .flat_map(|r| r.targets.targets.keys())
            .collect();
        tags.sort();
        tags.dedup();
        let mut out = Vec::new();
        for tag in tags {
            if let Some(d) = self.find_target(tag)? {
                out.push((tag.clone(), d));
            }
        }
        Ok(out)
    }
}

/// The version a file claims, unverified: a rollback floor or the target of a root chain.
/// Read without building the file (a cached 0.9 MB targets role is only scanned).
fn version_of(role: &str, bytes: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u64,
    }
    let f = RawSigned::parse(role, bytes).ok()?;
    f.typed::<Version>(role).ok().map(|v| v.version)
}

fn checksum_name(role: &str, meta: &FileMeta) -> String {
    // Callers pass meta whose sha256 was checked to exist (verify_timestamp/verify_snapshot).
    format!(
        "{role}.{}.json",
        hex::encode(meta.sha256().unwrap_or_default())
    )
}

fn limit_for(meta: &FileMeta, limits: &Limits) -> u64 {
    (meta.length.max(0) as u64).min(limits.metadata)
}

/// Files to cache, one per role, in the order they verified.
#[derive(Default)]
struct Writes(Vec<(String, Vec<u8>)>);

impl Writes {
    fn set(&mut self, role: &str, bytes: Vec<u8>) {
        self.0.retain(|(r, _)| r != role);
        self.0.push((role.to_string(), bytes));
    }
}

struct Ctx<'a, S> {
    src: &'a S,
    gun: &'a str,
    now: OffsetDateTime,
    trust: &'a RootTrust,
    limits: &'a Limits,
}

impl<S: Source + Sync> Ctx<'_, S> {
    async fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, UpdateError<S::Error>> {
        self.src
            .fetch(name, limit)
            .await
            .map_err(UpdateError::Source)
    }

    async fn require(&self, name: &str, limit: u64) -> Result<Vec<u8>, UpdateError<S::Error>> {
        self.get(name, limit)
            .await?
            .ok_or_else(|| UpdateError::NotFound {
                missing: name.to_string(),
            })
    }
}

/// Updates and verifies `gun`'s trust data from `src`.
///
/// Root policy:
/// - A cached root is the trust anchor (its signatures are re-checked; the pinning applied when
///   it was first trusted). Without one, `root.json` is trusted on first use or by `trust`.
/// - When the snapshot names a root other than the trusted one, that root (by checksum) is
///   accepted only through the chain `<v>.root.json` from the trusted version, each signed by
///   its predecessor's root keys and its own (Go's `updateRoot`), and only if it satisfies
///   `trust`'s pinning too.
/// - When the timestamp or snapshot is not signed by the keys the trusted root names (the
///   server rotated its timestamp or snapshot key, `notary key rotate … -r`), `root.json` is
///   fetched; if it is newer it is accepted through the same chain and the update is retried
///   once. A root that is not newer changes nothing and the first error stands.
pub async fn update<S: Source + Sync>(
    src: &S,
    gun: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
) -> Result<Verified, UpdateError<S::Error>> {
    update_scoped(src, gun, now, trust, limits, None).await
}

/// [`update`] for resolving one tag: the same files, checks and cache writes, but each targets
/// role's map keeps only `tag`'s entry ([`Repo::only`]), so one tag of a 10,000-tag repository
/// does not cost 10,000 map entries.
pub async fn update_tag<S: Source + Sync>(
    src: &S,
    gun: &str,
    tag: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
) -> Result<Verified, UpdateError<S::Error>> {
    update_scoped(src, gun, now, trust, limits, Some(tag)).await
}

async fn update_scoped<S: Source + Sync>(
    src: &S,
    gun: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
    only: Option<&str>,
) -> Result<Verified, UpdateError<S::Error>> {
    let cx = Ctx {
        src,
        gun,
        now,
        trust,
        limits,
    };
    let mut writes = Writes::default();
    // Whether the trusted root is in the cache: only then may floors be cached early, so the
    // cache never holds a timestamp without the root that vouches for it.
    let mut root_cached = true;
    let mut root = match src.cached("root") {
        Some(bytes) => verify::load_cached_root(gun, &bytes, now)?,
        None => {
            root_cached = false;
            let bytes = cx.require("root.json", limits.root).await?;
            let root = verify::trust_first_root(gun, &bytes, now, trust)?;
            writes.set("root", bytes);
            root
        }
    };
    let cached_snapshot = src.cached("snapshot");
    let cached_timestamp = src.cached("timestamp");
    let ts_floor = cached_timestamp
        .as_deref()
        .and_then(|b| version_of("timestamp", b));
    let snap_floor = cached_snapshot
        .as_deref()
        .and_then(|b| version_of("snapshot", b));

    let mut rotated = false;
    let (timestamp, ts_bytes, snapshot, snap_bytes) = loop {
        let floors = root_cached.then_some(src);
        let top = top_level(
            &cx,
            &root,
            cached_snapshot.as_deref(),
            (ts_floor, snap_floor),
            floors,
        )
        .await;
        let (timestamp, ts_bytes, snapshot, snap_bytes) = match top {
            Ok(t) => t,

            Err(UpdateError::Verify(e)) if !rotated && signed_by_unknown_keys(&e) => {
                // Maybe the server's keys were rotated: a newer root would name them.
                let Some(newest) = cx.get("root.json", limits.root).await? else {
                    return Err(e.into());
                };
                if version_of("root", &newest).is_none_or(|v| v <= root.root.version) {
                    return Err(e.into());
                }
                root = rotate_chain(&cx, &root, newest).await?;
                writes.set("root", root.bytes.clone());
                if root_cached {
                    src.keep("root", &root.bytes);
                }
                rotated = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        // The snapshot names the current root; a different one means the root was rotated.
        let rmeta = &snapshot.meta["root"];
        if let Err(e) = check_file_meta("root", "snapshot", rmeta, &root.bytes) {
            if rotated {
                return Err(e.into());
            }
            let newest = cx
                .get(&checksum_name("root", rmeta), limit_for(rmeta, limits))
                .await?
                .ok_or_else(|| UpdateError::NotFound {
                    missing: "the root named by the snapshot".into(),
                })?;
            check_file_meta("root", "snapshot", rmeta, &newest)?;
            root = rotate_chain(&cx, &root, newest).await?;
            writes.set("root", root.bytes.clone());
            if root_cached {
                src.keep("root", &root.bytes);
            }
            rotated = true;
            continue;
        }
        break (timestamp, ts_bytes, snapshot, snap_bytes);
    };
    if root.root.expires.0 <= now {
        return Err(VerifyError::Expired {
            role: "root".into(),
            expires: root.root.expires.to_go_string(),
        }
        .into());
    }
    // The set this update verifies, and the targets roles whose signatures already verified
    // over exactly this set: only when the fresh timestamp is byte-identical to the cached one
    // (so is the snapshot it names) and the record of the last full update names this set.
    let set = set_digest(&root.bytes, &ts_bytes, &snap_bytes);
    let unchanged = cached_timestamp.as_deref() == Some(ts_bytes.as_slice())
        && cached_snapshot.as_deref() == Some(snap_bytes.as_slice());
    let presigned = if unchanged {
        src.cached(RECORD)
            .and_then(|b| Record::parse(&b))
            .filter(|r| r.set == set)
            .map(|r| r.signed)
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    writes.set("timestamp", ts_bytes);
    writes.set("snapshot", snap_bytes);

    let (roles, skipped) =
        walk_targets(&cx, &root, &snapshot, &mut writes, only, &presigned).await?;
    // Written with the rest, after the whole update verified: a refused or partial update
    // never leaves a record that names what is cached.
    let record = Record {
        set,
        signed: roles.iter().map(|r| r.name.clone()).collect(),
    };
    writes.set(RECORD, record.to_bytes());
    Ok(Verified {
        repo: Repo {
            gun: gun.to_string(),
            root,
            timestamp,
            snapshot,
            roles,
            skipped,
            only: only.map(str::to_string),
        },
        writes: writes.0,
    })
}

/// The cache entry ([`Source::cached`]) recording the last set that verified in full: the
/// digest of its root, timestamp and snapshot, and the targets roles whose signatures passed.
///
/// It lets a warm update of an unchanged repository skip re-checking the signatures of cached
/// targets roles (an Ed25519 signature over a 0.9 MB role is a SHA-512 pass over all of it), and
/// nothing else. It vouches for nothing by itself: it is used only when the freshly fetched
/// timestamp, whose signature, expiry and version are checked as always, is byte-identical to
/// the cached one; the cached snapshot matches that timestamp's hashes, the root the snapshot's,
/// and each targets role the snapshot's, all checked as always, so every byte is pinned by the
/// fresh timestamp's signature. Any change to the set (a new timestamp, a rotated root, a
/// refused update that left newer floors behind) gives another digest, and the full checks run.
/// Even then the signers are still counted against the keys the parents authorise (a removed
/// signer or a rotated delegation key fails as before); only the cryptography is skipped. A
/// forged record therefore gains a local writer nothing: the bytes it covers are the ones the
/// server signed into the snapshot, so skipping their cryptography matters only to a
/// compromised server holding the snapshot key that also has write access to this cache, and
/// that attacker already wins by deleting the cached root (trust on first use).
pub const RECORD: &str = "trustacr-verified";

/// Record files larger than this are ignored (a real one is a few hundred bytes).
const MAX_RECORD: usize = 64 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    set: String,
    signed: BTreeSet<String>,
}

impl Record {
    fn parse(bytes: &[u8]) -> Option<Self> {
        (bytes.len() <= MAX_RECORD)
            .then(|| serde_json::from_slice(bytes).ok())
            .flatten()
    }

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// sha256 over the root, timestamp and snapshot bytes, each prefixed with its length.
fn set_digest(root: &[u8], timestamp: &[u8], snapshot: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [root, timestamp, snapshot] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// Errors that a root with other timestamp or snapshot keys could cure.
fn signed_by_unknown_keys(e: &VerifyError) -> bool {
    matches!(
        e,
        VerifyError::Threshold { role, .. } | VerifyError::KeyIdMismatch { role, .. }
            if role == "timestamp" || role == "snapshot"
    )
}

type Top = (Timestamp, Vec<u8>, Snapshot, Vec<u8>);

/// timestamp.json, then the snapshot it names (the cached copy when it is exactly that one).
/// With `floors` (the trusted root is cached), each is cached as soon as it verifies: a
/// rollback floor that a later failure in the same update cannot undo.
async fn top_level<S: Source + Sync>(
    cx: &Ctx<'_, S>,
    root: &TrustedRoot,
    cached_snapshot: Option<&[u8]>,
    (ts_floor, snap_floor): (Option<u64>, Option<u64>),
    floors: Option<&S>,
) -> Result<Top, UpdateError<S::Error>> {
    let ts_bytes = cx.require("timestamp.json", cx.limits.timestamp).await?;
    let timestamp = verify::verify_timestamp(&root.root, &ts_bytes, cx.now, ts_floor)?;
    if let Some(src) = floors {
        src.keep("timestamp", &ts_bytes);
    }
    let smeta = &timestamp.meta["snapshot"];
    let snap_bytes = match cached_snapshot
        .filter(|b| check_file_meta("snapshot", "timestamp", smeta, b).is_ok())
    {
        Some(b) => b.to_vec(),
        None => cx
            .get(
                &checksum_name("snapshot", smeta),
                limit_for(smeta, cx.limits),
            )
            .await?
            .ok_or_else(|| UpdateError::NotFound {
                missing: "snapshot".into(),
            })?,
    };
    let snapshot =
        verify::verify_snapshot(&root.root, &timestamp, &snap_bytes, cx.now, snap_floor)?;
    if let Some(src) = floors {
        src.keep("snapshot", &snap_bytes);
    }
    Ok((timestamp, ts_bytes, snapshot, snap_bytes))
}

/// Follows the root chain from `prev` to `newest`: every `<v>.root.json` in between must be
/// signed by its predecessor's root keys and its own; `newest` also unexpired and within the
/// trust pinning.
async fn rotate_chain<S: Source + Sync>(
    cx: &Ctx<'_, S>,
    prev: &TrustedRoot,
    newest: Vec<u8>,
) -> Result<TrustedRoot, UpdateError<S::Error>> {
    let newest_version = version_of("root", &newest).unwrap_or(0);
    let mut current = prev.clone();
    for v in prev.root.version + 1..newest_version {
        let name = format!("{v}.root.json");
        let bytes = cx.require(&name, cx.limits.root).await?;
        current = verify::rotate_root(&current, cx.gun, &bytes, cx.now, None)?;
        if current.root.version != v {
            return Err(VerifyError::BadRoot(format!(
                "{name} holds version {}",
                current.root.version
            ))
            .into());
        }
    }
    Ok(verify::rotate_root(
        &current,
        cx.gun,
        &newest,
        cx.now,
        Some(cx.trust),
    )?)
}

struct Pending {
    name: String,
    keys: BTreeMap<String, PublicKey>,
    keyids: Vec<String>,
    threshold: u32,
    paths: Option<Vec<String>>,
}

/// The targets tree, breadth-first from `targets` in `delegations.roles` order.
///
/// What may be left out, and nothing else (Go's `downloadTargets` and `GetTargetByName`):
/// - a delegation the snapshot does not list: it was never published (Go: "no checksum");
/// - a delegation that is expired or not signed by its threshold (`ErrExpired`,
///   `ErrRoleThreshold`): left out with a warning, its subtree with it;
/// - targets a delegation signs outside its (parent-restricted) paths: Go never resolves a name
///   through a role whose paths exclude it; here those entries are dropped and named.
///
/// Everything else is fatal, for `targets` and delegations alike: in particular a role the
/// snapshot lists but the server does not serve (a withheld delegation would make tags resolve
/// to older entries in `targets`, a downgrade), and a file that does not match the snapshot.
async fn walk_targets<S: Source + Sync>(
    cx: &Ctx<'_, S>,
    root: &TrustedRoot,
    snapshot: &Snapshot,
    writes: &mut Writes,
    only: Option<&str>,
    presigned: &BTreeSet<String>,
) -> Result<(Vec<VerifiedRole>, Vec<(String, String)>), UpdateError<S::Error>> {
    let top = &root.root.roles["targets"];
    let mut queue = VecDeque::from([Pending {
        name: "targets".into(),
        keys: root.root.keys.clone(),
        keyids: top.keyids.clone(),
        threshold: top.threshold,
        paths: None,
    }]);
    let mut roles = Vec::new();
    let mut skipped = Vec::new();
    while let Some(p) = queue.pop_front() {
        let is_top = p.name == "targets";
        let Some(meta) = snapshot.meta.get(&p.name) else {
            continue;
        };
        let signers = Signers {
            keys: &p.keys,
            keyids: &p.keyids,
            threshold: p.threshold,
        };
        // The cached copy is used when it is exactly what the snapshot lists; verifying it
        // checks that, so big roles are hashed once. Otherwise the listed file is fetched, and
        // the cached version is the rollback floor.
        // A cached role of an unchanged, fully verified set ([`RECORD`]) skips its signature
        // check only; it is still checked against the snapshot's hashes and length first.
        let cached = cx.src.cached(&p.name);
        let from_cache = cached
            .as_deref()
            .map(|b| {
                if presigned.contains(&p.name) {
                    verify::verify_targets_presigned(
                        &p.name, &signers, snapshot, b, cx.now, None, only,
                    )
                } else {
                    verify::verify_targets_for(&p.name, &signers, snapshot, b, cx.now, None, only)
                }
            })
            .filter(|r| {
                !matches!(
                    r,
                    Err(VerifyError::HashMismatch { .. }
                        | VerifyError::LengthMismatch { .. }
                        | VerifyError::MissingMeta { .. })
                )
            });
        let verified = match from_cache {
            Some(r) => r,
            None => {
                let floor = cached.as_deref().and_then(|b| version_of(&p.name, b));
                let Some(bytes) = cx
                    .get(&checksum_name(&p.name, meta), limit_for(meta, cx.limits))
                    .await?
                else {
                    return Err(VerifyError::Withheld { role: p.name }.into());
                };
                let r = verify::verify_targets_for(
                    &p.name, &signers, snapshot, &bytes, cx.now, floor, only,
                );
                if r.is_ok() {
                    writes.set(&p.name, bytes);
                }
                r
            }
        };
        let mut targets = match verified {
            Ok(t) => t,
            Err(e @ (VerifyError::Threshold { .. } | VerifyError::Expired { .. })) if !is_top => {
                tracing::warn!("ignoring delegation {}: {e}", p.name);
                skipped.push((p.name.clone(), e.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(paths) = &p.paths {
            let outside: Vec<String> = targets
                .targets
                .keys()
                .filter(|name| !paths.iter().any(|pre| name.starts_with(pre.as_str())))
                .cloned()
                .collect();
            for name in outside {
                targets.targets.remove(&name);
                let e = VerifyError::OutsidePaths {
                    role: p.name.clone(),
                    target: name,
                    paths: paths.clone(),
                };
                tracing::warn!("ignoring a target: {e}");
                skipped.push((p.name.clone(), e.to_string()));
            }
        }
        for d in &targets.delegations.roles {
            queue.push_back(Pending {
                name: d.name.clone(),
                keys: targets.delegations.keys.clone(),
                keyids: d.keyids.clone().unwrap_or_default(),
                threshold: d.threshold,
                paths: Some(restrict_paths(p.paths.as_deref(), &d.paths)),
            });
        }
        roles.push(VerifiedRole {
            name: p.name,
            targets,
            paths: p.paths,
        });
    }
    Ok((roles, skipped))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::tuf::metadata::Base64Bytes;

    fn meta(hashes: &[(&str, Vec<u8>)], length: i64) -> FileMeta {
        FileMeta {
            custom: None,
            hashes: hashes
                .iter()
                .map(|(a, h)| (a.to_string(), Base64Bytes(h.clone())))
                .collect::<BTreeMap<_, _>>(),
            length,
        }
    }

    #[test]
    fn a_target_is_a_32_byte_sha256_and_a_length() {
        let d = VerifiedDigest::of_target("targets", "v1", &meta(&[("sha256", vec![7; 32])], 523))
            .unwrap();
        assert_eq!(d.digest(), format!("sha256:{}", "07".repeat(32)));
        assert_eq!((d.size(), d.role()), (523, "targets"));
    }

    #[test]
    fn targets_without_a_usable_sha256_or_length_are_refused() {
        for (hashes, length) in [
            (vec![("sha512", vec![7; 64])], 1),
            (vec![("sha256", vec![7; 31])], 1),
            (vec![("sha256", vec![7; 33])], 1),
            (vec![("sha256", vec![7; 32])], -1),
        ] {
            let err = VerifiedDigest::of_target("targets", "v1", &meta(&hashes, length));
            assert!(
                matches!(err, Err(VerifyError::InvalidTarget { ref target, .. }) if target == "v1"),
                "{hashes:?} {length}: {err:?}"
            );
        }
    }
}
