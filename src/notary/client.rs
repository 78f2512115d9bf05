//! The Notary client update: moves bytes between the notary server, the local cache and the
//! trust core ([`crate::tuf::trusted`]), which decides everything. The cache is written only
//! when the whole update verified.
//!
//! A warm update of an unchanged repository costs one request (timestamp.json): the core takes
//! the snapshot and targets from the cache when their hashes match what the new timestamp and
//! snapshot list. A cold one (nothing cached: every CI job) fetches the current snapshot and
//! targets together with the timestamp, saving two round trips ([`Early`]).

use std::future::Future;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::cache::Cache;
use crate::registry::HttpError;
use crate::tuf::trusted::{self, Source, UpdateError};
use crate::tuf::verify::{Limits, RootTrust, VerifyError};

pub use crate::tuf::trusted::{Repo, VerifiedDigest, VerifiedRole};

/// Where metadata comes from: the notary server (or, in tests, a directory or memory).
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

/// At most this much is read of a file fetched before its parent states its length. It is no
/// more than a hostile server could make a named fetch read: the server signs the snapshot and
/// timestamp, and with them the lengths.
const EARLY_LIMIT: u64 = 16 * 1024 * 1024;

/// Files fetched before the core asks for them, by their current names (`snapshot.json`,
/// `targets.json`), to save round trips. Each is offered to the core only under the name of its
/// own sha256 (`snapshot.<sha256>.json`), which the core derived from the verified parent and
/// checks the bytes against like any download; other bytes (a racing publisher, a hostile
/// server) are dropped and the named file is fetched as usual.
#[derive(Default)]
pub(super) struct Early(std::sync::Mutex<Vec<(&'static str, Vec<u8>)>>);

impl Early {
    /// Fetches `name` and, at once, the current files of `roles`. Their failures are ignored:
    /// the named fetch that would follow reports its own.
    pub(super) async fn fetch_with<F: Fetch + Sync>(
        &self,
        fetch: &F,
        name: &str,
        limit: u64,
        roles: &[&'static str],
    ) -> Result<Option<Vec<u8>>, HttpError> {
        let ahead = futures_util::future::join_all(roles.iter().map(|role| async move {
            (
                *role,
                fetch.fetch(&format!("{role}.json"), EARLY_LIMIT).await,
            )
        }));
        let (got, ahead) = tokio::join!(fetch.fetch(name, limit), ahead);
        if let Ok(mut early) = self.0.lock() {
            early.extend(
                ahead
                    .into_iter()
                    .filter_map(|(role, r)| Some((role, r.ok()??))),
            );
        }
        got
    }

    /// The early file that `name` (`<role>.<sha256>.json`) names, if it fits `limit`.
    pub(super) fn take(&self, name: &str, limit: u64) -> Option<Vec<u8>> {
        let (role, rest) = name.split_once('.')?;
        let want = rest.strip_suffix(".json")?;
        let mut early = self.0.lock().ok()?;
        let i = early.iter().position(|(r, _)| *r == role)?;
        let (_, bytes) = early.swap_remove(i);
        (bytes.len() as u64 <= limit && hex::encode(Sha256::digest(&bytes)) == want)
            .then_some(bytes)
    }
}

/// The server for downloads, the cache for cached copies.
struct Wire<'a, F> {
    fetch: &'a F,
    cache: &'a Cache,
    early: Early,
}

impl<'a, F: Fetch + Sync> Wire<'a, F> {
    fn new(fetch: &'a F, cache: &'a Cache) -> Self {
        Wire {
            fetch,
            cache,
            early: Early::default(),
        }
    }
}

impl<F: Fetch + Sync> Source for Wire<'_, F> {
    type Error = HttpError;

    async fn fetch(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, HttpError> {
        // Cold: the core will surely ask for the snapshot and targets the timestamp leads to.
        if name == "timestamp.json"
            && self.cache.read("snapshot").is_none()
            && self.cache.read("targets").is_none()
        {
            return (self.early)
                .fetch_with(self.fetch, name, limit, &["snapshot", "targets"])
                .await;
        }
        match self.early.take(name, limit) {
            Some(bytes) => Ok(Some(bytes)),
            None => self.fetch.fetch(name, limit).await,
        }
    }

    fn cached(&self, role: &str) -> Option<Vec<u8>> {
        self.cache.read(role)
    }

    fn keep(&self, role: &str, bytes: &[u8]) {
        if let Err(e) = self.cache.write_all(&[(role.to_string(), bytes.to_vec())]) {
            tracing::warn!(
                "cannot cache {role} in {} early: {e}",
                self.cache.dir().display()
            );
        }
    }
}

/// Updates and verifies `gun`'s trust data from `fetch`, using and then refreshing `cache`.
pub async fn update<F: Fetch + Sync>(
    fetch: &F,
    cache: &Cache,
    gun: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
) -> Result<Repo, ClientError> {
    let verified = trusted::update(&Wire::new(fetch, cache), gun, now, trust, limits).await;
    finish(verified, cache, gun)
}

/// [`update`] for resolving `tag` alone: the same checks and cache writes; the returned roles
/// hold only `tag`'s entry ([`Repo::only`]).
pub async fn update_tag<F: Fetch + Sync>(
    fetch: &F,
    cache: &Cache,
    gun: &str,
    tag: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
) -> Result<Repo, ClientError> {
    let verified =
        trusted::update_tag(&Wire::new(fetch, cache), gun, tag, now, trust, limits).await;
    finish(verified, cache, gun)
}

/// Maps the core's errors and writes the cache once the whole update verified.
pub(super) fn finish(
    verified: Result<trusted::Verified, UpdateError<HttpError>>,
    cache: &Cache,
    gun: &str,
) -> Result<Repo, ClientError> {
    let verified = verified.map_err(|e| match e {
        UpdateError::Source(e) => ClientError::Http(e),
        UpdateError::NotFound { missing } => ClientError::NotFound {
            gun: gun.to_string(),
            missing,
        },
        UpdateError::Verify(e) => ClientError::Verify(e),
    })?;
    cache
        .write_all(&verified.writes)
        .map_err(|source| ClientError::Cache {
            dir: cache.dir().display().to_string(),
            source,
        })?;
    Ok(verified.repo)
}
