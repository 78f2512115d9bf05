//! The Notary client update: fetch what changed, feed it to the verification core, and write the
//! cache only when everything verified.
//!
//! A warm update of an unchanged repository costs one request (timestamp.json): the snapshot
//! and targets are taken from the cache when their hashes match what the new timestamp and
//! snapshot list.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

use time::OffsetDateTime;

use super::cache::Cache;
use crate::registry::HttpError;
use crate::tuf::keys::PublicKey;
use crate::tuf::metadata::{FileMeta, SignedFile, Snapshot, Targets, Timestamp};
use crate::tuf::verify::{
    self, Limits, RootTrust, Signers, TrustedRoot, VerifyError, check_file_meta, restrict_paths,
};

/// Where metadata comes from: the notary server, or a directory in tests.
pub trait Fetch {
    /// GETs `name` (`timestamp.json`, `snapshot.<sha256>.json`, `2.root.json`, …) reading at most
    /// `limit` bytes. `Ok(None)` means 404.
    fn fetch(
        &self,
        name: &str,
        limit: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, HttpError>> + Send;
}

/// Errors updating trust data.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server has no trust data for the repository.
    #[error(
        "remote trust data does not exist for {gun}: the notary server has no {missing} for it"
    )]
    NotFound {
        /// GUN.
        gun: String,
        /// The file that was missing.
        missing: String,
    },
    /// Network or HTTP failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Verification failed; nothing was cached.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Writing the cache failed.
    #[error("cannot write the trust cache in {dir}: {source}")]
    Cache {
        /// Cache dir.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A verified targets role.
#[derive(Debug, Clone)]
pub struct VerifiedRole {
    /// `targets` or `targets/<x>`.
    pub name: String,
    /// Its content.
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
    /// Delegations left out because they were expired or under-signed, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// A tag found in trust data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    /// The role it was found in.
    pub role: String,
    /// Its meta: sha256 of the manifest and its length.
    pub meta: FileMeta,
}

impl Repo {
    /// A verified role by name.
    pub fn role(&self, name: &str) -> Option<&VerifiedRole> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Resolves `tag` as docker does: `targets/releases` first, then `targets`.
    pub fn find_target(&self, tag: &str) -> Option<SignedTarget> {
        ["targets/releases", "targets"].iter().find_map(|role| {
            let r = self.role(role)?;
            let meta = r.targets.targets.get(tag)?;
            Some(SignedTarget {
                role: role.to_string(),
                meta: meta.clone(),
            })
        })
    }
}

fn version_of(role: &str, bytes: &[u8]) -> Option<u64> {
    let f = SignedFile::parse(role, bytes).ok()?;
    f.signed.get("version")?.as_u64()
}

fn checksum_name(role: &str, meta: &FileMeta) -> String {
    format!(
        "{role}.{}.json",
        hex::encode(meta.sha256().unwrap_or_default())
    )
}

fn limit_for(meta: &FileMeta, limits: &Limits) -> u64 {
    (meta.length.max(0) as u64).min(limits.metadata)
}

/// Updates and verifies `gun`'s trust data from `fetch`, using and then refreshing `cache`.
pub async fn update<F: Fetch>(
    fetch: &F,
    cache: &Cache,
    gun: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
) -> Result<Repo, ClientError> {
    let not_found = |missing: &str| ClientError::NotFound {
        gun: gun.to_string(),
        missing: missing.to_string(),
    };
    let mut writes: Vec<(String, Vec<u8>)> = Vec::new();

    let mut root = match cache.read("root") {
        Some(bytes) => verify::load_cached_root(gun, &bytes, now)?,
        None => {
            let bytes = fetch
                .fetch("root.json", limits.root)
                .await?
                .ok_or_else(|| not_found("root.json"))?;
            let root = verify::trust_first_root(gun, &bytes, now, trust)?;
            writes.push(("root".into(), bytes));
            root
        }
    };
    let cached_ts = cache.read("timestamp");
    let cached_snapshot = cache.read("snapshot");
    let ts_floor = cached_ts
        .as_deref()
        .and_then(|b| version_of("timestamp", b));
    let snap_floor = cached_snapshot
        .as_deref()
        .and_then(|b| version_of("snapshot", b));

    let mut rotated = false;
    let (timestamp, ts_bytes, snapshot, snap_bytes) = loop {
        let ts_bytes = fetch
            .fetch("timestamp.json", limits.timestamp)
            .await?
            .ok_or_else(|| not_found("timestamp.json"))?;
        let timestamp = verify::verify_timestamp(&root.root, &ts_bytes, now, ts_floor)?;
        let smeta = &timestamp.meta["snapshot"];
        let snap_bytes = match cached_snapshot
            .as_ref()
            .filter(|b| check_file_meta("snapshot", "timestamp", smeta, b).is_ok())
        {
            Some(b) => b.clone(),
            None => fetch
                .fetch(&checksum_name("snapshot", smeta), limit_for(smeta, limits))
                .await?
                .ok_or_else(|| not_found("snapshot"))?,
        };
        let snapshot =
            verify::verify_snapshot(&root.root, &timestamp, &snap_bytes, now, snap_floor)?;

        // The snapshot names the current root; a different one means the root was rotated.
        let rmeta = &snapshot.meta["root"];
        if check_file_meta("root", "snapshot", rmeta, &root.bytes).is_err() {
            if rotated {
                check_file_meta("root", "snapshot", rmeta, &root.bytes)?;
            }
            root = rotate(fetch, &root, gun, rmeta, now, limits).await?;
            writes.retain(|(r, _)| r != "root");
            writes.push(("root".into(), root.bytes.clone()));
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
    writes.push(("timestamp".into(), ts_bytes));
    writes.push(("snapshot".into(), snap_bytes));

    let (roles, skipped) = walk_targets(
        fetch,
        cache,
        gun,
        &root,
        &snapshot,
        now,
        limits,
        &mut writes,
    )
    .await?;

    cache
        .write_all(&writes)
        .map_err(|source| ClientError::Cache {
            dir: cache.dir().display().to_string(),
            source,
        })?;
    Ok(Repo {
        gun: gun.to_string(),
        root,
        timestamp,
        snapshot,
        roles,
        skipped,
    })
}

/// Follows the root chain from `prev` to the root the snapshot names: each `<v>.root.json` must
/// be signed by its predecessor's root keys.
async fn rotate<F: Fetch>(
    fetch: &F,
    prev: &TrustedRoot,
    gun: &str,
    rmeta: &FileMeta,
    now: OffsetDateTime,
    limits: &Limits,
) -> Result<TrustedRoot, ClientError> {
    let newest = fetch
        .fetch(&checksum_name("root", rmeta), limit_for(rmeta, limits))
        .await?
        .ok_or_else(|| ClientError::NotFound {
            gun: gun.to_string(),
            missing: "the root named by the snapshot".into(),
        })?;
    check_file_meta("root", "snapshot", rmeta, &newest)?;
    let newest_version = version_of("root", &newest).unwrap_or(0);
    let mut current = prev.clone();
    for v in prev.root.version + 1..newest_version {
        let name = format!("{v}.root.json");
        let bytes =
            fetch
                .fetch(&name, limits.root)
                .await?
                .ok_or_else(|| ClientError::NotFound {
                    gun: gun.to_string(),
                    missing: name.clone(),
                })?;
        current = verify::rotate_root(&current, gun, &bytes, now, false)?;
        if current.root.version != v {
            return Err(VerifyError::BadRoot(format!(
                "{name} holds version {}",
                current.root.version
            ))
            .into());
        }
    }
    Ok(verify::rotate_root(&current, gun, &newest, now, true)?)
}

struct Pending {
    name: String,
    keys: BTreeMap<String, PublicKey>,
    keyids: Vec<String>,
    threshold: u32,
    paths: Option<Vec<String>>,
}

#[allow(clippy::too_many_arguments)]
async fn walk_targets<F: Fetch>(
    fetch: &F,
    cache: &Cache,
    gun: &str,
    root: &TrustedRoot,
    snapshot: &Snapshot,
    now: OffsetDateTime,
    limits: &Limits,
    writes: &mut Vec<(String, Vec<u8>)>,
) -> Result<(Vec<VerifiedRole>, Vec<(String, String)>), ClientError> {
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
            // Notary skips delegations the snapshot does not list (never published).
            continue;
        };
        let signers = Signers {
            keys: &p.keys,
            keyids: &p.keyids,
            threshold: p.threshold,
            paths: p.paths.as_deref(),
        };
        // The cached copy is used when it is exactly what the snapshot lists; verifying it
        // checks that, so big roles are hashed once. Otherwise the listed file is fetched, and
        // the cached version is the rollback floor.
        let cached = cache.read(&p.name);
        let from_cache = cached
            .as_deref()
            .map(|b| verify::verify_targets(&p.name, &signers, snapshot, b, now, None))
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
                let fetched = fetch
                    .fetch(&checksum_name(&p.name, meta), limit_for(meta, limits))
                    .await?;
                match fetched {
                    Some(b) => {
                        let r = verify::verify_targets(&p.name, &signers, snapshot, &b, now, floor);
                        if r.is_ok() {
                            writes.push((p.name.clone(), b));
                        }
                        r
                    }
                    None if is_top => {
                        return Err(ClientError::NotFound {
                            gun: gun.to_string(),
                            missing: "targets".into(),
                        });
                    }
                    None => {
                        skipped.push((
                            p.name.clone(),
                            "listed in snapshot but not on the server".into(),
                        ));
                        continue;
                    }
                }
            }
        };
        let targets = match verified {
            Ok(t) => t,
            // As Notary: an expired or under-signed delegation is left out with a warning; the
            // top-level targets role and every other failure are fatal.
            Err(
                e @ (VerifyError::Threshold { .. }
                | VerifyError::Expired { .. }
                | VerifyError::OutsidePaths { .. }),
            ) if !is_top => {
                tracing::warn!("ignoring delegation {}: {e}", p.name);
                skipped.push((p.name.clone(), e.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
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
