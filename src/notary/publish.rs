//! Publishing: read the repository, let the editor ([`crate::tuf::editor`]) build and sign the
//! change, upload it ([`super::upload`]) in one multipart POST, as docker does on ACR (the server
//! holds the snapshot and timestamp keys), and read back what clients will now see.
//!
//! The server applies an upload atomically or not at all. Before the upload is sent, a failure
//! or cancellation changes nothing there; once it is sent, every report says exactly what is
//! live. When someone else published in between (`VERSION`), or initialised the repository first
//! (our root refused as `INVALID_UPDATE`), the repository is read again, the changes re-applied
//! and the upload retried.

use std::future::Future;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::NotaryServer;
use super::cache::Cache;
use super::client::{self, ClientError, Repo};
use super::upload::{self, KeyFetchError, Outcome, Refusal, code};
use crate::keystore::{KeySource, KeystoreError};
use crate::plugin::cancel::{CancelReason, Cancellation};
use crate::registry::HttpError;
use crate::tuf::editor::{EditError, RELEASES, SignedUpdate, TARGETS, UnsignedUpdate};
use crate::tuf::metadata::{RawSigned, Snapshot};
use crate::tuf::trusted::{self, Source};
use crate::tuf::verify::{self, Limits, RootTrust, VerifyError};

pub use crate::tuf::editor::{Change, sign_role};

/// Attempts when the server reports a concurrent publish. Each retry waits a random
/// 20–220 ms times the attempt number, so racing signers spread out instead of colliding again.
const ATTEMPTS: usize = 8;
/// After a cancellation arrives while the upload is in flight, how long to keep waiting for the
/// server's answer, so the report can say what is live instead of "unknown".
const ANSWER_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// Whether the repository was initialised by this publish.
    pub initialized: bool,
    /// The verified repository after the publish.
    pub repo: Repo,
}

/// Where a cancellation stopped a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the upload was sent: nothing changed on the server.
    NothingSent,
    /// The upload was sent and the server did not answer in time: it may or may not be live.
    Unanswered,
    /// The server accepted the upload (it is live); reading it back was interrupted.
    Accepted,
}

/// Errors publishing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Reading or verifying current trust data failed; nothing was uploaded.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Building or signing the change failed; nothing was uploaded.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The server's snapshot and timestamp keys could not be had; nothing was uploaded.
    #[error(transparent)]
    ServerKeys(#[from] KeyFetchError),
    /// HTTP failed before the upload was sent.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The root this publish would create is refused by the trust policy (pinning).
    #[error(
        "the root docker trustacr would create for {gun} is refused by your trust pinning (trustacr.json): {source}. Nothing was published; pin this repository's root key or CA, or remove the pin for it"
    )]
    OwnRootUntrusted {
        /// GUN.
        gun: String,
        /// Why.
        source: Box<VerifyError>,
    },
    /// The server refused the upload.
    #[error("the notary server refused the update for {gun}: {refusal}. Nothing was published")]
    Rejected {
        /// GUN.
        gun: String,
        /// What it answered.
        refusal: Box<Refusal>,
    },
    /// Others kept publishing.
    #[error("{gun} changed on the server during {ATTEMPTS} attempts to publish; try again")]
    Contention {
        /// GUN.
        gun: String,
    },
    /// The upload was sent but no answer came back.
    #[error(
        "the upload to {gun} got no answer ({source}): the server may or may not have applied it ({change}). Run `docker trustacr verify {gun}:{tag}` to see what is signed"
    )]
    Unanswered {
        /// GUN.
        gun: String,
        /// What the upload changes.
        change: String,
        /// A tag to verify.
        tag: String,
        /// The transport failure.
        source: Box<HttpError>,
    },
    /// The upload was accepted, but reading it back failed.
    #[error(
        "the upload was accepted: {change}. Reading it back failed: {source}. Run `docker trustacr verify {gun}:{tag}` to check"
    )]
    ReadBack {
        /// GUN.
        gun: String,
        /// What is now live.
        change: String,
        /// A tag to verify.
        tag: String,
        /// Why the read-back failed.
        source: Box<ClientError>,
    },
    /// Accepted, but the local cache could not be written.
    #[error(
        "the upload was accepted: {change}. The trust cache in {dir} could not be written: {source}"
    )]
    Cache {
        /// What is now live.
        change: String,
        /// Cache dir.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The published data does not show the change.
    #[error(
        "published {gun}, but the verified trust data does not show the change to {tag} ({what})"
    )]
    NotVisible {
        /// GUN.
        gun: String,
        /// Tag.
        tag: String,
        /// What differs.
        what: String,
    },
    /// Cancelled (Ctrl-C, SIGTERM, the docker CLI); `stage` says what is live.
    #[error("{}", interrupted(reason, stage, gun, change, tag))]
    Interrupted {
        /// Why.
        reason: CancelReason,
        /// How far the publish got.
        stage: Stage,
        /// GUN.
        gun: String,
        /// What the upload changes.
        change: String,
        /// A tag to verify.
        tag: String,
    },
}

fn interrupted(reason: &CancelReason, stage: &Stage, gun: &str, change: &str, tag: &str) -> String {
    match stage {
        Stage::NothingSent => {
            format!("{reason}; stopped before anything was uploaded, nothing was changed")
        }
        Stage::Unanswered => format!(
            "{reason} while the notary server was answering the upload: it may or may not have applied it ({change}). Run `docker trustacr verify {gun}:{tag}` to see what is signed"
        ),
        Stage::Accepted => format!(
            "{reason} after the upload was accepted: {change}; verification of the read-back was interrupted. Run `docker trustacr verify {gun}:{tag}` to check"
        ),
    }
}

impl PublishError {
    /// Whether the server may already serve the change (so "not signed" would be wrong).
    pub fn may_be_live(&self) -> bool {
        matches!(
            self,
            PublishError::Unanswered { .. }
                | PublishError::ReadBack { .. }
                | PublishError::Cache { .. }
                | PublishError::Interrupted {
                    stage: Stage::Unanswered | Stage::Accepted,
                    ..
                }
        )
    }

    /// The cancellation that stopped the publish, if any.
    pub fn cancelled(&self) -> Option<CancelReason> {
        match self {
            PublishError::Interrupted { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// Describes the changes as live facts: "v1, v2 signed in GUN".
fn describe_change(gun: &str, changes: &[Change]) -> String {
    let added: Vec<&str> = changes
        .iter()
        .filter(|c| matches!(c, Change::AddTarget { .. }))
        .map(|c| c.tag())
        .collect();
    let removed: Vec<&str> = changes
        .iter()
        .filter(|c| matches!(c, Change::RemoveTarget { .. }))
        .map(|c| c.tag())
        .collect();
    let mut parts = Vec::new();
    for c in changes {
        match c {
            Change::AddSigner { name, .. } => parts.push(format!("signer {name} added to {gun}")),
            Change::RemoveSigner { name, .. } => {
                parts.push(format!("signer {name} removed from {gun}"))
            }
            _ => {}
        }
    }
    if !added.is_empty() {
        parts.push(format!("{} signed in {gun}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!(
            "the signature of {} removed from {gun}",
            removed.join(", ")
        ));
    }
    parts.join("; ")
}

/// Everything a publish needs besides the changes.
pub struct Publisher<'a> {
    /// The repository on the notary server.
    pub server: &'a NotaryServer,
    /// The local trust cache.
    pub cache: &'a Cache,
    /// Root trust policy.
    pub trust: &'a RootTrust,
    /// Download limits.
    pub limits: &'a Limits,
    /// Where signing keys come from.
    pub keys: &'a dyn KeySource,
    /// Stops the publish; what it reports depends on how far it got.
    pub cancel: &'a Cancellation,
}

impl Publisher<'_> {
    /// Publishes `changes`, initialising the repository if it has no trust data.
    pub async fn publish(
        &self,
        changes: &[Change],
        now: OffsetDateTime,
    ) -> Result<Published, PublishError> {
        self.publish_from(changes, now, None).await
    }

    /// As [`Publisher::publish`], with the first attempt built on `current`: the repository as
    /// [`client::update`] read it, fetched by the caller while it waited on something else
    /// (a sign reads the manifests at the same time). Retries read the repository again.
    pub async fn publish_from(
        &self,
        changes: &[Change],
        now: OffsetDateTime,
        mut current: Option<Result<Repo, ClientError>>,
    ) -> Result<Published, PublishError> {
        let gun = self.server.gun.clone();
        let change = describe_change(&gun, changes);
        let tag = changes
            .first()
            .map(|c| c.tag().to_string())
            .unwrap_or_default();
        let interrupted = |reason, stage| PublishError::Interrupted {
            reason,
            stage,
            gun: gun.clone(),
            change: change.clone(),
            tag: tag.clone(),
        };
        let mut refused_init: Option<Refusal> = None;
        let mut attempt = 0;
        let signed = loop {
            attempt += 1;
            if attempt > ATTEMPTS {
                return Err(PublishError::Contention { gun });
            }
            let signed = self
                .before_upload(self.prepare(changes, now, refused_init.take(), current.take()))
                .await
                .map_err(|e| match e {
                    Ok(reason)
                    | Err(PublishError::Edit(EditError::Keystore(KeystoreError::Interrupted(
                        reason,
                    )))) => interrupted(reason, Stage::NothingSent),
                    Err(e) => e,
                })?;
            let refusal = match self.send(&signed).await {
                Sent::Accepted => break signed,
                Sent::Refused(r) => r,
                Sent::Unapplied(e) => return Err(e.into()),
                Sent::Unanswered(source) => {
                    return Err(PublishError::Unanswered {
                        gun,
                        change,
                        tag,
                        source: Box::new(source),
                    });
                }
                Sent::Interrupted(reason, stage) => return Err(interrupted(reason, stage)),
            };
            let initialising = signed.new_root().is_some();
            // Someone else published first (VERSION), or initialised the repository first and
            // the server refused our root: read it again and re-apply as a targets change.
            let retry = refusal.has(code::OLD_VERSION)
                || (initialising && refusal.has(code::INVALID_UPDATE));
            if !retry {
                return Err(PublishError::Rejected {
                    gun,
                    refusal: Box::new(refusal),
                });
            }
            tracing::info!("{gun} changed on the server ({refusal}); reading it again");
            if initialising {
                refused_init = Some(refusal);
            }
            let mut r = [0u8; 1];
            let _ = getrandom::fill(&mut r);
            let wait = (20 + u64::from(r[0]) * 200 / 255) * attempt as u64;
            if let Err(Ok(reason)) = self
                .before_upload(async {
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    Ok(())
                })
                .await
            {
                return Err(interrupted(reason, Stage::NothingSent));
            }
        };
        // From here on the change is live.
        if let Some(root) = signed.new_root() {
            // Pin the root we generated and the server accepted, not whatever the server
            // returns on the read-back: a server that swaps it now would otherwise be trusted
            // on first use.
            self.cache
                .write_all(&[("root".to_string(), root.to_vec())])
                .map_err(|source| PublishError::Cache {
                    change: change.clone(),
                    dir: self.cache.dir().display().to_string(),
                    source,
                })?;
        }
        let read_back = read_back(self, &signed, now);
        let repo = tokio::select! {
            biased;
            reason = self.cancel.cancelled() => return Err(interrupted(reason, Stage::Accepted)),
            r = read_back => r.map_err(|source| PublishError::ReadBack {
                gun: gun.clone(),
                change: change.clone(),
                tag: tag.clone(),
                source: Box::new(source),
            })?,
        };
        check_visible(&repo, &signed)?;
        Ok(Published {
            initialized: signed.new_root().is_some(),
            repo,
        })
    }

    /// Runs `fut` unless cancelled first: `Err(Ok(reason))` on cancellation.
    async fn before_upload<T>(
        &self,
        fut: impl Future<Output = Result<T, PublishError>>,
    ) -> Result<T, Result<CancelReason, PublishError>> {
        tokio::select! {
            biased;
            reason = self.cancel.cancelled() => Err(Ok(reason)),
            r = fut => r.map_err(Err),
        }
    }

    /// Reads the repository (unless `current` already holds what [`client::update`] returned)
    /// and builds the signed update. `refused_init` is the server's answer to our previous
    /// attempt to initialise it.
    async fn prepare(
        &self,
        changes: &[Change],
        now: OffsetDateTime,
        refused_init: Option<Refusal>,
        current: Option<Result<Repo, ClientError>>,
    ) -> Result<SignedUpdate, PublishError> {
        let gun = &self.server.gun;
        let current = match current {
            Some(read) => read,
            None => {
                client::update(self.server, self.cache, gun, now, self.trust, self.limits).await
            }
        };
        let unsigned = match current {
            Ok(repo) => UnsignedUpdate::of_repo(&repo, now),
            Err(ClientError::NotFound { missing, .. }) if missing == "root.json" => {
                if let Some(refusal) = refused_init {
                    // Refused, yet still not initialised by anyone: the refusal was real.
                    return Err(PublishError::Rejected {
                        gun: gun.clone(),
                        refusal: Box::new(refusal),
                    });
                }
                UnsignedUpdate::init(gun, upload::server_keys(self.server).await?, now)
            }
            Err(e) => return Err(e.into()),
        };
        let mut unsigned = unsigned;
        for c in changes {
            unsigned.apply(c.clone())?;
        }
        let signed = sign(unsigned, self.keys)?;
        if let Some(root) = signed.new_root() {
            // Our own root must pass the same policy a reader applies, before it is uploaded.
            verify::trust_first_root(gun, root, now, self.trust).map_err(|source| {
                PublishError::OwnRootUntrusted {
                    gun: gun.clone(),
                    source: Box::new(source),
                }
            })?;
        }
        Ok(signed)
    }

    /// Sends the upload. A cancellation while it is in flight waits briefly for the answer, so
    /// the report can say whether the change is live.
    async fn send(&self, signed: &SignedUpdate) -> Sent {
        let post = upload::upload(self.server, signed);
        tokio::pin!(post);
        let answer = tokio::select! {
            biased;
            r = &mut post => r,
            reason = self.cancel.cancelled() => {
                match tokio::time::timeout(ANSWER_GRACE, &mut post).await {
                    Ok(Ok(Outcome::Accepted)) => {
                        return Sent::Interrupted(reason, Stage::Accepted);
                    }
                    Ok(Ok(Outcome::Refused(_))) => {
                        return Sent::Interrupted(reason, Stage::NothingSent);
                    }
                    Ok(Err(_)) | Err(_) => return Sent::Interrupted(reason, Stage::Unanswered),
                }
            }
        };
        match answer {
            Ok(Outcome::Accepted) => Sent::Accepted,
            Ok(Outcome::Refused(r)) => Sent::Refused(r),
            // Sign-in fails only after the server refused the unauthenticated upload (401), and
            // a client that cannot be set up sends nothing: nothing was applied either way.
            Err(e @ (HttpError::Auth(_) | HttpError::Setup(_))) => Sent::Unapplied(e),
            Err(e) => Sent::Unanswered(e),
        }
    }
}

/// What became of an upload.
enum Sent {
    Accepted,
    Refused(Refusal),
    Unapplied(HttpError),
    Unanswered(HttpError),
    Interrupted(CancelReason, Stage),
}

/// The read-back's source: the server for downloads, the cache for cached roles, except that a
/// targets role this publish uploaded is taken from memory when the snapshot the server now
/// serves lists exactly those bytes: the server just accepted them, and fetching them again
/// would only show it can echo them (the core still verifies them like any cached file).
/// Otherwise the cached copy stays the rollback floor, as in any update. Nothing is cached
/// early: the read-back is written in one go once it verified, timestamp and snapshot synced
/// together rather than one after the other.
struct ReadBack<'a> {
    server: &'a NotaryServer,
    cache: &'a Cache,
    uploaded: &'a [(String, Vec<u8>)],
    /// The snapshot as downloaded during the read-back, read once (not yet verified: it only
    /// decides which bytes are offered to the core, which verifies them).
    snapshot: std::sync::Mutex<Option<Snapshot>>,
}

impl ReadBack<'_> {
    /// The uploaded bytes of targets role `role`, if the downloaded snapshot lists them.
    fn uploaded_as_listed(&self, role: &str) -> Option<&[u8]> {
        if role != TARGETS && !role.starts_with("targets/") {
            return None;
        }
        let (_, bytes) = self.uploaded.iter().find(|(r, _)| r == role)?;
        let snapshot = self.snapshot.lock().ok()?;
        let meta = snapshot.as_ref()?.meta.get(role)?;
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        (meta.sha256() == Some(sha256.as_slice()) && meta.length == bytes.len() as i64)
            .then_some(bytes.as_slice())
    }
}

impl Source for ReadBack<'_> {
    type Error = HttpError;

    async fn fetch(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, HttpError> {
        let got = client::Fetch::fetch(self.server, name, limit).await?;
        if name.starts_with("snapshot.")
            && let Some(bytes) = &got
            && let Ok(mut kept) = self.snapshot.lock()
        {
            *kept = RawSigned::parse("snapshot", bytes)
                .and_then(|f| f.typed::<Snapshot>("snapshot"))
                .ok();
        }
        Ok(got)
    }

    fn cached(&self, role: &str) -> Option<Vec<u8>> {
        match self.uploaded_as_listed(role) {
            Some(bytes) => Some(bytes.to_vec()),
            None => self.cache.read(role),
        }
    }

    fn keep(&self, _role: &str, _bytes: &[u8]) {}
}

/// Reads back what the server serves after `signed` was accepted, verified in full, and caches
/// it. An uploaded role the verification used from memory is cached with the rest, so the
/// cache holds the whole new state, not new snapshot beside old targets.
async fn read_back(
    p: &Publisher<'_>,
    signed: &SignedUpdate,
    now: OffsetDateTime,
) -> Result<Repo, ClientError> {
    let src = ReadBack {
        server: p.server,
        cache: p.cache,
        uploaded: signed.files(),
        snapshot: std::sync::Mutex::new(None),
    };
    let gun = &p.server.gun;
    let verified = trusted::update(&src, gun, now, p.trust, p.limits)
        .await
        .map(|mut v| {
            for (role, bytes) in signed.files() {
                // In the verified repository but not downloaded: verified from memory.
                let used = src.uploaded_as_listed(role).is_some()
                    && v.repo.role(role).is_some()
                    && !v.writes.iter().any(|(r, _)| r == role);
                if used {
                    v.writes.push((role.clone(), bytes.clone()));
                }
            }
            v
        });
    client::finish(verified, p.cache, gun)
}

/// Signs on a thread that may block (the keyring, the key-creation lock), without stalling the
/// runtime's other tasks (the signal listeners among them).
fn sign(unsigned: UnsignedUpdate, keys: &dyn KeySource) -> Result<SignedUpdate, PublishError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let result = match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| unsigned.sign(keys))
        }
        _ => unsigned.sign(keys),
    };
    Ok(result?)
}

/// Checks that verified data shows everything the upload changed: the root it created, the
/// targets version, and each tag as docker resolves it.
fn check_visible(repo: &Repo, signed: &SignedUpdate) -> Result<(), PublishError> {
    let not_visible = |tag: &str, what: String| PublishError::NotVisible {
        gun: repo.gun.clone(),
        tag: tag.to_string(),
        what,
    };
    let first = signed
        .changes()
        .first()
        .map(|c| c.tag())
        .unwrap_or_default();
    if let Some(root) = signed.new_root()
        && repo.root.bytes != root
    {
        return Err(not_visible(
            first,
            "the trusted root is not the one this publish created".into(),
        ));
    }
    let version = repo.role(TARGETS).map_or(0, |r| r.targets.version);
    if version < signed.targets_version() {
        return Err(not_visible(
            first,
            format!(
                "targets is at version {version}, this publish wrote {}",
                signed.targets_version()
            ),
        ));
    }
    for c in signed.changes() {
        let in_role = repo
            .role(c.role())
            .and_then(|r| r.targets.targets.get(c.tag()));
        let ok = match c {
            Change::AddTarget { meta, .. } => {
                in_role == Some(meta)
                    && repo.find_target(c.tag()).ok().flatten().is_some_and(|t| {
                        meta.sha256() == Some(t.sha256().as_slice())
                            && i64::try_from(t.size()) == Ok(meta.length)
                    })
            }
            Change::RemoveTarget { .. } => in_role.is_none(),
            Change::AddSigner { name, keys } => {
                let dels = repo.role(TARGETS).map(|r| &r.targets.delegations);
                let lists = |role: &str| {
                    dels.and_then(|d| d.roles.iter().find(|r| r.name == role))
                        .and_then(|r| r.keyids.as_ref())
                        .is_some_and(|ids| keys.iter().all(|k| ids.contains(&k.id())))
                };
                lists(&format!("targets/{name}")) && lists(RELEASES)
            }
            Change::RemoveSigner { name, .. } => {
                let role = format!("targets/{name}");
                repo.role(TARGETS)
                    .is_some_and(|r| !r.targets.delegations.roles.iter().any(|d| d.name == role))
            }
        };
        if !ok {
            return Err(not_visible(
                c.tag(),
                format!("{} does not show it as published", c.role()),
            ));
        }
    }
    Ok(())
}
