//! Key rotation against the notary server: reads and verifies the repository, builds the
//! rotation ([`crate::tuf::rotation`]), keeps the new key safe in the keyring before anything is
//! sent, uploads root (and targets) in one request, and only once the server accepted it retires
//! the old key. A refused upload removes the new key again; an unanswered one keeps both.

use time::OffsetDateTime;

use super::NotaryServer;
use super::cache::Cache;
use super::client::{self, ClientError, Repo};
use super::upload::{self, KeyFetchError, Outcome, Refusal, code};
use crate::keystore::KeystoreError;
use crate::keystore::keys::{self, KeyLabel, KeyName, SigningKey};
use crate::keystore::source::KeySource;
use crate::plugin::cancel::{CancelReason, Cancellation};
use crate::registry::HttpError;
use crate::tuf::editor::TARGETS;
use crate::tuf::rotation::{
    self, Current, Lifetimes, RootSigner, Rotatable, Rotation, RotationError,
};
use crate::tuf::verify::{Limits, RootTrust};

/// What the user must know when the root key of a repository is gone.
pub const LOST_ROOT: &str = "The root key decides who may sign the repository; without it nobody can rotate a key, replace a lost targets key or change the signers, and no valid new root can be made, because clients only accept a root signed by the previous one. If you have a backup (a `docker trustacr key export` file, docker's ~/.docker/trust/private or its docker_private_keys_backup.tar.gz, notary's ~/.notary/private), restore it with `docker trustacr key import PATH`. If the key is lost for good, the trust data has to be deleted and created anew: on Azure Container Registry open a support request asking to delete the repository's trust data (the ACR content trust guide, \"Lost root key\"); on your own notary server delete it with `notary delete GUN --remote`. Then sign again to create new keys, and tell your users to remove their cached trust data (~/.docker/trust/tuf/<registry>/<repository>), since their clients will refuse the new root until they do";

/// Errors rotating a key. Unless said otherwise, nothing was changed on the server and the
/// keyring holds the old keys.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The repository has no trust data.
    #[error(
        "{gun} has no trust data yet, so it has no keys to rotate. Sign a tag first (`docker trustacr sign {gun}:TAG`) to create them"
    )]
    NotInitialised {
        /// GUN.
        gun: String,
    },
    /// None of the root keys is in the keyring.
    #[error(
        "cannot rotate the {role} key of {gun}: its root key (ID {keyids}) is not in this keyring. Nothing was changed. {LOST_ROOT}"
    )]
    RootKeyLost {
        /// GUN.
        gun: String,
        /// The role asked for.
        role: &'static str,
        /// The root role's key IDs (canonical).
        keyids: String,
    },
    /// Reading or verifying the current trust data failed.
    #[error("cannot rotate a key of {gun}: reading its trust data failed: {source}")]
    Fetch {
        /// GUN.
        gun: String,
        /// Why.
        source: Box<ClientError>,
    },
    /// The server did not make a new key for a role it holds.
    #[error("cannot rotate the snapshot key of {gun}: {source}. Nothing was changed")]
    ServerKey {
        /// GUN.
        gun: String,
        /// Why.
        source: KeyFetchError,
    },
    /// The rotation could not be built.
    #[error(transparent)]
    Build(#[from] RotationError),
    /// The keyring failed before anything was uploaded.
    #[error("cannot rotate a key of {gun}: {source}. Nothing was uploaded")]
    Keystore {
        /// GUN.
        gun: String,
        /// Why.
        source: KeystoreError,
    },
    /// Someone changed the repository between reading it and the upload.
    #[error(
        "{gun} was changed on the server while its {role} key was being rotated (someone signed, revoked or rotated at the same time: {refusal}). Nothing was changed and the old key is still in use; run `docker trustacr key rotate {gun} {role}` again"
    )]
    Conflict {
        /// GUN.
        gun: String,
        /// Role.
        role: &'static str,
        /// What the server said.
        refusal: Box<Refusal>,
    },
    /// The server refused the rotation.
    #[error(
        "the notary server refused the rotation of the {role} key of {gun}: {refusal}. Nothing was changed and the old key is still in use"
    )]
    Rejected {
        /// GUN.
        gun: String,
        /// Role.
        role: &'static str,
        /// What the server said.
        refusal: Box<Refusal>,
    },
    /// No answer to the upload: it may or may not be live.
    #[error(
        "the notary server did not answer the rotation of the {role} key of {gun} ({source}); it may or may not have applied it. Both keys are kept: the new one in keyring entry {entry}. Run `docker trustacr key list {gun}` to see which one the repository uses now"
    )]
    Unanswered {
        /// GUN.
        gun: String,
        /// Role.
        role: &'static str,
        /// Where the new key is.
        entry: String,
        /// Why.
        source: Box<HttpError>,
    },
    /// Accepted, but the new key could not be moved to its entry.
    #[error(
        "the rotation of the {role} key of {gun} is live, but the keyring could not be tidied: {source}. The new key stays in keyring entry {entry}, where signing finds it; the old key may still be in the keyring"
    )]
    Tidy {
        /// GUN.
        gun: String,
        /// Role.
        role: &'static str,
        /// Where the new key is.
        entry: String,
        /// Why.
        source: KeystoreError,
    },
    /// Accepted, but reading it back failed or showed something else.
    #[error(
        "the server accepted the rotation of the {role} key of {gun}, but reading it back failed: {what}. Run `docker trustacr key list {gun}` to check"
    )]
    ReadBack {
        /// GUN.
        gun: String,
        /// Role.
        role: &'static str,
        /// What failed.
        what: String,
    },
    /// Cancelled before anything was uploaded.
    #[error("{0}; stopped before anything was uploaded, nothing was changed")]
    Interrupted(CancelReason),
}

/// What happened to the key the rotation replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldKey {
    /// Removed from the keyring (these key IDs).
    Removed(Vec<String>),
    /// Not in this keyring (it was lost, or held elsewhere).
    NotHere,
    /// Kept in the keyring, with why.
    Kept(&'static str),
    /// The server holds it.
    Server,
}

/// A rotation the server accepted and that read back.
#[derive(Debug)]
pub struct Rotated {
    /// The role.
    pub role: Rotatable,
    /// The new key's ID as the root lists it.
    pub new_key: String,
    /// The new root's version.
    pub root_version: u64,
    /// What became of the old key.
    pub old_key: OldKey,
    /// The verified repository after the rotation.
    pub repo: Repo,
}

/// Everything a rotation needs.
pub struct Rotator<'a> {
    /// The repository on the notary server.
    pub server: &'a NotaryServer,
    /// The local trust cache.
    pub cache: &'a Cache,
    /// Root trust policy.
    pub trust: &'a RootTrust,
    /// Download limits.
    pub limits: &'a Limits,
    /// Where the current root keys are found.
    pub keys: &'a dyn KeySource,
    /// Stops the rotation before the upload.
    pub cancel: &'a Cancellation,
    /// Lifetimes of the metadata written.
    pub lifetimes: Lifetimes,
}

/// Where the replaced targets key is kept, to remove it after success.
enum OldAt {
    /// `targets:<gun>`, which the new key overwrites.
    TargetsEntry(String),
    /// An imported `key:<id>` labelled for this repository.
    Imported(String),
}

impl Rotator<'_> {
    fn gun(&self) -> String {
        self.server.gun.clone()
    }

    /// Rotates `role`'s key.
    pub async fn rotate(
        &self,
        role: Rotatable,
        now: OffsetDateTime,
    ) -> Result<Rotated, RotateError> {
        let gun = self.gun();
        let repo = tokio::select! {
            biased;
            reason = self.cancel.cancelled() => return Err(RotateError::Interrupted(reason)),
            r = self.read(now) => r?,
        };
        let held = self.root_keys(&repo, role)?;
        let signers: Vec<RootSigner<'_>> = held
            .iter()
            .map(|(keyid, key)| RootSigner {
                keyid: keyid.clone(),
                key,
            })
            .collect();
        let cur = Current {
            gun: &gun,
            root: &repo.root,
            signers: &signers,
            trust: self.trust,
            now,
            lifetimes: self.lifetimes,
        };
        let keystore = |source| RotateError::Keystore {
            gun: gun.clone(),
            source,
        };
        match role {
            Rotatable::Targets => {
                let old_ids = repo.root.root.roles[TARGETS].keyids.clone();
                let old_at = self.old_targets_key(&old_ids).map_err(keystore)?;
                let new = SigningKey::generate_ed25519().map_err(keystore)?;
                let rotation =
                    rotation::rotate_targets(&cur, repo.role(TARGETS).map(|r| &r.targets), &new)?;
                let label = KeyLabel {
                    role: TARGETS.into(),
                    gun: Some(gun.clone()),
                };
                let staged = self.stage(&new, &label).map_err(keystore)?;
                self.send(role, &rotation, Some(&staged)).await?;
                // Live: the new key becomes the repository's targets key, the old one goes.
                let tidy = |source| RotateError::Tidy {
                    gun: gun.clone(),
                    role: role.name(),
                    entry: staged.entry(),
                    source,
                };
                keys::put(&KeyName::Targets { gun: gun.clone() }, &new).map_err(tidy)?;
                keys::delete(&staged).map_err(tidy)?;
                let old_key = match old_at {
                    Some(OldAt::TargetsEntry(id)) => OldKey::Removed(vec![id]),
                    Some(OldAt::Imported(id)) => {
                        keys::delete(&KeyName::Id { id: id.clone() }).map_err(tidy)?;
                        OldKey::Removed(vec![id])
                    }
                    None => OldKey::NotHere,
                };
                self.finish(role, rotation, old_key, now).await
            }
            Rotatable::Root => {
                let new = SigningKey::generate_p256().map_err(keystore)?;
                let rotation = rotation::rotate_root(&cur, &new)?;
                let label = KeyLabel {
                    role: "root".into(),
                    gun: Some(gun.clone()),
                };
                let staged = self.stage(&new, &label).map_err(keystore)?;
                self.send(role, &rotation, Some(&staged)).await?;
                // The old root key may be the one shared by every repository created here (as
                // docker shares one), so it is not deleted; see `key rotate`'s help.
                let old_key = OldKey::Kept(
                    "it may sign other repositories; remove it once none of them uses it",
                );
                self.finish(role, rotation, old_key, now).await
            }
            Rotatable::Snapshot => {
                let new = upload::rotate_server_key(self.server, "snapshot")
                    .await
                    .map_err(|source| RotateError::ServerKey {
                        gun: gun.clone(),
                        source,
                    })?;
                let rotation = rotation::rotate_snapshot(&cur, new)?;
                self.send(role, &rotation, None).await?;
                self.finish(role, rotation, OldKey::Server, now).await
            }
        }
    }

    async fn read(&self, now: OffsetDateTime) -> Result<Repo, RotateError> {
        let gun = self.gun();
        client::update(self.server, self.cache, &gun, now, self.trust, self.limits)
            .await
            .map_err(|e| match e {
                ClientError::NotFound { .. } => RotateError::NotInitialised { gun: gun.clone() },
                e => RotateError::Fetch {
                    gun: gun.clone(),
                    source: Box::new(e),
                },
            })
    }

    /// The root keys of the current root that the keyring holds, by the root's key ID.
    fn root_keys(
        &self,
        repo: &Repo,
        role: Rotatable,
    ) -> Result<Vec<(String, SigningKey)>, RotateError> {
        let gun = self.gun();
        let ids = rotation::root_key_ids(&repo.root.root);
        let mut held = Vec::new();
        for (keyid, canonical) in &ids {
            let found = self
                .keys
                .find(&KeyName::Root, std::slice::from_ref(canonical))
                .map_err(|source| RotateError::Keystore {
                    gun: gun.clone(),
                    source,
                })?;
            if let Some(k) = found {
                held.push((keyid.clone(), k));
            }
        }
        if held.is_empty() {
            return Err(RotateError::RootKeyLost {
                gun,
                role: role.name(),
                keyids: ids
                    .iter()
                    .map(|(_, c)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(held)
    }

    /// Where the current targets key is kept, if here.
    fn old_targets_key(&self, ids: &[String]) -> Result<Option<OldAt>, KeystoreError> {
        let gun = self.gun();
        if let Some(k) = keys::get(&KeyName::Targets { gun: gun.clone() })?
            && ids.contains(&k.public().id())
        {
            return Ok(Some(OldAt::TargetsEntry(k.public().id())));
        }
        for id in ids {
            if let Some((k, label)) = keys::get_labeled(&KeyName::Id { id: id.clone() })?
                && k.public().id() == *id
                && label.is_some_and(|l| l.gun.as_deref() == Some(gun.as_str()))
            {
                return Ok(Some(OldAt::Imported(id.clone())));
            }
        }
        Ok(None)
    }

    /// Stores the new key under its own ID before anything is sent: once the server accepts,
    /// the repository can only be signed with it.
    fn stage(&self, key: &SigningKey, label: &KeyLabel) -> Result<KeyName, KeystoreError> {
        let name = KeyName::Id {
            id: key.public().id(),
        };
        keys::put_labeled(&name, key, Some(label))?;
        Ok(name)
    }

    /// Uploads the rotation. On a refusal the staged key is removed again (nothing was
    /// applied); without an answer it is kept.
    async fn send(
        &self,
        role: Rotatable,
        rotation: &Rotation,
        staged: Option<&KeyName>,
    ) -> Result<(), RotateError> {
        let gun = self.gun();
        let discard = || {
            if let Some(name) = staged
                && let Err(e) = keys::delete(name)
            {
                tracing::warn!("could not remove the unused new key {}: {e}", name.entry());
            }
        };
        let sent = tokio::select! {
            biased;
            reason = self.cancel.cancelled() => {
                discard();
                return Err(RotateError::Interrupted(reason));
            }
            // Not cancelled once sent: the answer decides which key stays.
            r = upload::upload_files(self.server, rotation.files()) => r,
        };
        match sent {
            Ok(Outcome::Accepted) => Ok(()),
            Ok(Outcome::Refused(refusal)) => {
                discard();
                let conflict = refusal.has(code::OLD_VERSION)
                    || (refusal.has(code::INVALID_UPDATE)
                        && refusal.to_string().contains("must increment the version"));
                let refusal = Box::new(refusal);
                Err(if conflict {
                    RotateError::Conflict {
                        gun,
                        role: role.name(),
                        refusal,
                    }
                } else {
                    RotateError::Rejected {
                        gun,
                        role: role.name(),
                        refusal,
                    }
                })
            }
            Err(e @ (HttpError::Auth(_) | HttpError::Setup(_))) => {
                // Nothing was applied: sign-in fails only after a refused request.
                discard();
                Err(RotateError::Fetch {
                    gun,
                    source: Box::new(ClientError::Http(e)),
                })
            }
            Err(e) => Err(RotateError::Unanswered {
                gun,
                role: role.name(),
                entry: staged.map(KeyName::entry).unwrap_or_default(),
                source: Box::new(e),
            }),
        }
    }

    /// Reads the repository back and checks that it shows the rotation.
    async fn finish(
        &self,
        role: Rotatable,
        rotation: Rotation,
        old_key: OldKey,
        now: OffsetDateTime,
    ) -> Result<Rotated, RotateError> {
        let read_back = |what: String| RotateError::ReadBack {
            gun: self.gun(),
            role: role.name(),
            what,
        };
        let repo = self.read(now).await.map_err(|e| read_back(e.to_string()))?;
        if repo.root.bytes != rotation.root() {
            return Err(read_back(format!(
                "the server serves root version {}, not the rotated version {}",
                repo.root.root.version,
                rotation.root_version()
            )));
        }
        if let Some(v) = rotation.targets_version() {
            let served = repo.role(TARGETS).map_or(0, |r| r.targets.version);
            if served < v {
                return Err(read_back(format!(
                    "targets is at version {served}, the rotation wrote {v}"
                )));
            }
        }
        Ok(Rotated {
            role,
            new_key: rotation.new_keyid().to_string(),
            root_version: rotation.root_version(),
            old_key,
            repo,
        })
    }
}
