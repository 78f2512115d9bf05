//! The Notary client update: moves bytes between the notary server, the local cache and the
//! trust core ([`crate::tuf::trusted`]), which decides everything. The cache is written only
//! when the whole update verified.
//!
//! A warm update of an unchanged repository costs one request (timestamp.json): the core takes
//! the snapshot and targets from the cache when their hashes match what the new timestamp and
//! snapshot list.

use std::future::Future;

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

/// The server for downloads, the cache for cached copies.
struct Wire<'a, F> {
    fetch: &'a F,
    cache: &'a Cache,
}

impl<F: Fetch + Sync> Source for Wire<'_, F> {
    type Error = HttpError;

    fn fetch(
        &self,
        name: &str,
        limit: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, HttpError>> + Send {
        self.fetch.fetch(name, limit)
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
    let verified = trusted::update(&Wire { fetch, cache }, gun, now, trust, limits).await;
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
    let verified = trusted::update_tag(&Wire { fetch, cache }, gun, tag, now, trust, limits).await;
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
