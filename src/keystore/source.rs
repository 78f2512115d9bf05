//! Where signing keys come from. The editor signs through [`KeySource`], so protocol code never
//! calls the keyring and signing is not tied to one role's key: the keyring today; files, the
//! environment and remote signers can implement the same trait.

use super::KeystoreError;
use super::keys::{self, KeyName, SigningKey};
use super::lock::{KeyLock, LockPlace};
use crate::plugin::cancel::Cancellation;

/// The algorithm of a key to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Ed25519, for repository (targets) keys, as docker creates them.
    Ed25519,
    /// ECDSA P-256, for root keys: the root certificate is made from it.
    P256,
}

impl KeyKind {
    fn generate(self) -> Result<SigningKey, KeystoreError> {
        match self {
            KeyKind::Ed25519 => SigningKey::generate_ed25519(),
            KeyKind::P256 => SigningKey::generate_p256(),
        }
    }
}

/// A place that holds private keys and can sign with them.
pub trait KeySource: Send + Sync {
    /// A key whose public key ID is one of `allowed` (the IDs the role accepts): the key `name`
    /// if it qualifies, else any other key this source holds under one of those IDs (imported
    /// from docker or notary); `Ok(None)` when there is none.
    fn find(&self, name: &KeyName, allowed: &[String])
    -> Result<Option<SigningKey>, KeystoreError>;

    /// The key `name`, created as `kind` and stored first when the source has none. Returns
    /// whether it was created.
    fn get_or_create(
        &self,
        name: &KeyName,
        kind: KeyKind,
    ) -> Result<(SigningKey, bool), KeystoreError>;
}

/// The OS keyring, with key creation serialised by a per-user lock.
#[derive(Debug, Clone)]
pub struct Keyring {
    lock: Option<LockPlace>,
    cancel: Cancellation,
}

impl Keyring {
    /// The keyring, locking key creation in `lock` (see [`LockPlace::for_user`]); `cancel`
    /// stops a wait for the lock.
    pub fn new(lock: Option<LockPlace>, cancel: Cancellation) -> Self {
        Keyring { lock, cancel }
    }
}

impl KeySource for Keyring {
    fn find(
        &self,
        name: &KeyName,
        allowed: &[String],
    ) -> Result<Option<SigningKey>, KeystoreError> {
        if let Some(k) = keys::get(name)?.filter(|k| allowed.contains(&k.public().id())) {
            return Ok(Some(k));
        }
        // Then any imported key the role accepts: docker's ECDSA targets key, a root or
        // delegation key made elsewhere. The entry name is only an index, so the key's own ID
        // is checked again.
        for id in allowed {
            let by_id = KeyName::Id { id: id.clone() };
            if let Some(k) = keys::get(&by_id)?.filter(|k| k.public().id() == *id) {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    fn get_or_create(
        &self,
        name: &KeyName,
        kind: KeyKind,
    ) -> Result<(SigningKey, bool), KeystoreError> {
        // Reading needs no lock; only a missing key is created under it, and looked up again
        // once the lock is held in case another process created it meanwhile.
        if let Some(k) = keys::get(name)? {
            return Ok((k, false));
        }
        let place = self.lock.as_ref().ok_or_else(|| KeystoreError::LockDir {
            path: "(none)".into(),
            reason: "neither XDG_RUNTIME_DIR nor HOME is set, so there is no per-user place for the key-creation lock".into(),
        })?;
        let _guard = KeyLock::acquire(place, &self.cancel)?;
        if let Some(k) = keys::get(name)? {
            return Ok((k, false));
        }
        let key = kind.generate()?;
        keys::put(name, &key)?;
        Ok((key, true))
    }
}
