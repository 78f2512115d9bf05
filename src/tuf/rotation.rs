//! Key rotation, without I/O: the next root that lists a new key for one role, signed so that
//! every client holding the previous root follows it, and (for the targets role) the targets
//! re-signed with the new key. The driver (`notary::rotate`) fetches, stores keys and uploads.
//!
//! Notary's rules (`client.go RotateKey`, `tuf.go SignRoot`, notes/notary-v1.md §6): the new root
//! has version + 1 and must carry a threshold of signatures of the previous root's root keys as
//! well as of its own; old root certificates stay in `keys`, other replaced keys leave it.
//! Every root built here is checked with the reader's own rotation rule before it is returned,
//! so a root that a client holding the previous one would refuse is never published.

use std::collections::BTreeMap;
use std::str::FromStr;

use time::{Duration, OffsetDateTime};

use super::editor::{EditError, ROOT_LIFETIME, TARGETS, TARGETS_LIFETIME, expires, sign_role};
use super::keys::{PublicKey, keytype};
use super::metadata::{RoleKeys, Root, Targets};
use super::verify::{self, RootTrust, TrustedRoot, VerifyError};
use super::x509;
use crate::keystore::keys::SigningKey;

/// A role whose key `key rotate` can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotatable {
    /// The root key (and its certificate): signed by the old and the new root key.
    Root,
    /// The repository's targets key: a new key in the keyring, every target re-signed.
    Targets,
    /// The snapshot key, which the server holds: the server makes the new one.
    Snapshot,
}

impl Rotatable {
    /// The role's name in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Rotatable::Root => "root",
            Rotatable::Targets => TARGETS,
            Rotatable::Snapshot => "snapshot",
        }
    }
}

/// A role name `key rotate` does not rotate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The timestamp key is the server's and only the server can replace it.
    #[error(
        "the timestamp key is always held by the notary server (ACR keeps it too), so no client can rotate it here; it is re-made by the server. Rotate root, targets or snapshot"
    )]
    Timestamp,
    /// Not a role of a repository.
    #[error(
        "{0:?} is not a role whose key can be rotated: give root, targets or snapshot (a signer's key is replaced with `signer remove` and `signer add`)"
    )]
    Unknown(String),
}

impl FromStr for Rotatable {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "root" => Ok(Rotatable::Root),
            "targets" => Ok(Rotatable::Targets),
            "snapshot" => Ok(Rotatable::Snapshot),
            "timestamp" => Err(RoleError::Timestamp),
            other => Err(RoleError::Unknown(other.to_string())),
        }
    }
}

/// Why no rotation could be built; nothing was uploaded.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// Fewer root keys are at hand than the current root's threshold.
    #[error(
        "rotating a key of {gun} needs {threshold} of its root keys {keyids:?}, and the keyring holds {have}. Nothing was changed. Import the missing root key(s) with `docker trustacr key import` first"
    )]
    RootThreshold {
        /// GUN.
        gun: String,
        /// Root keys needed.
        threshold: u32,
        /// Root keys found.
        have: usize,
        /// The root role's key IDs.
        keyids: Vec<String>,
    },
    /// The root built here would not be accepted by a client holding the previous root.
    #[error(
        "refusing to publish the rotated root of {gun}: a client holding the current root would not accept it ({source}). Nothing was changed"
    )]
    NotFollowable {
        /// GUN.
        gun: String,
        /// What the reader's check said.
        source: Box<VerifyError>,
    },
    /// The current root has no role entry the rotation needs.
    #[error("the root of {gun} has no {role} role; it cannot be rotated")]
    NoRole {
        /// GUN.
        gun: String,
        /// Role.
        role: String,
    },
    /// Signing, encoding or making the root certificate failed.
    #[error(transparent)]
    Edit(#[from] EditError),
}

/// A root key of the current root that is at hand: the root's key ID for it (the certificate's)
/// and the private key.
pub struct RootSigner<'a> {
    /// The key ID as the current root lists it (`ecdsa-x509` certificate key ID).
    pub keyid: String,
    /// The private key.
    pub key: &'a SigningKey,
}

/// How long the metadata a rotation writes stays valid.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Root metadata.
    pub root: Duration,
    /// Targets metadata.
    pub targets: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            root: ROOT_LIFETIME,
            targets: TARGETS_LIFETIME,
        }
    }
}

/// Signed files of one rotation, root first. Only the functions of this module make one.
#[derive(Debug, Clone)]
pub struct Rotation {
    files: Vec<(String, Vec<u8>)>,
    root_version: u64,
    targets_version: Option<u64>,
    new_keyid: String,
}

impl Rotation {
    /// The new key's ID as the new root lists it (for root, its certificate's).
    pub fn new_keyid(&self) -> &str {
        &self.new_keyid
    }

    /// `(role, bytes)` to upload in one request.
    pub fn files(&self) -> &[(String, Vec<u8>)] {
        &self.files
    }

    /// The new root's bytes.
    pub fn root(&self) -> &[u8] {
        &self.files[0].1
    }

    /// The new root's version.
    pub fn root_version(&self) -> u64 {
        self.root_version
    }

    /// The targets version it publishes, when it re-signs targets.
    pub fn targets_version(&self) -> Option<u64> {
        self.targets_version
    }
}

/// Everything a rotation starts from: the repository's verified state and the root keys.
pub struct Current<'a> {
    /// GUN.
    pub gun: &'a str,
    /// The verified current root.
    pub root: &'a TrustedRoot,
    /// Root keys at hand (at least the root role's threshold of them).
    pub signers: &'a [RootSigner<'a>],
    /// The reader's trust pinning, which the new root must also satisfy.
    pub trust: &'a RootTrust,
    /// Now.
    pub now: OffsetDateTime,
    /// Lifetimes of what is written.
    pub lifetimes: Lifetimes,
}

impl Current<'_> {
    fn check_threshold(&self) -> Result<(), RotationError> {
        let role = self.role("root")?;
        if self.signers.len() < role.threshold as usize {
            return Err(RotationError::RootThreshold {
                gun: self.gun.to_string(),
                threshold: role.threshold,
                have: self.signers.len(),
                keyids: role.keyids.clone(),
            });
        }
        Ok(())
    }

    fn role(&self, name: &str) -> Result<&RoleKeys, RotationError> {
        self.root
            .root
            .roles
            .get(name)
            .ok_or_else(|| RotationError::NoRole {
                gun: self.gun.to_string(),
                role: name.to_string(),
            })
    }

    /// The next root: version + 1, `role` listing only `key` (threshold 1), fresh expiry.
    fn next_root(&self, role: &str, key: PublicKey) -> Result<Root, RotationError> {
        let old = self.role(role)?.keyids.clone();
        let mut root = self.root.root.clone();
        root.version += 1;
        root.expires = expires(self.now, self.lifetimes.root);
        let id = key.id();
        root.keys.insert(id.clone(), key);
        root.roles.insert(
            role.to_string(),
            RoleKeys {
                keyids: vec![id],
                threshold: 1,
            },
        );
        // Replaced keys leave `keys` unless another role still lists them; old root
        // certificates stay, as notary keeps them.
        if role != "root" {
            for gone in old {
                let used = root.roles.values().any(|r| r.keyids.contains(&gone));
                let was_root = self.root.root.roles["root"].keyids.contains(&gone);
                if !used && !was_root {
                    root.keys.remove(&gone);
                }
            }
        }
        Ok(root)
    }

    /// Signs `root` with the current root keys and `extra`, and checks that a client holding
    /// the current root follows it.
    fn sign_root(
        &self,
        root: &Root,
        extra: Option<RootSigner<'_>>,
    ) -> Result<Vec<u8>, RotationError> {
        let mut signers: Vec<(&str, &SigningKey)> = self
            .signers
            .iter()
            .map(|s| (s.keyid.as_str(), s.key))
            .collect();
        if let Some(e) = &extra {
            signers.push((e.keyid.as_str(), e.key));
        }
        let bytes = sign_role("root", root, &signers)?;
        verify::rotate_root(self.root, self.gun, &bytes, self.now, Some(self.trust)).map_err(
            |source| RotationError::NotFollowable {
                gun: self.gun.to_string(),
                source: Box::new(source),
            },
        )?;
        Ok(bytes)
    }
}

/// Replaces the targets key with `new_key`: the next root lists it, and `targets` (every target
/// and delegation kept) is re-signed with it at the next version.
pub fn rotate_targets(
    cur: &Current<'_>,
    targets: Option<&Targets>,
    new_key: &SigningKey,
) -> Result<Rotation, RotationError> {
    cur.check_threshold()?;
    let root = cur.next_root(TARGETS, new_key.public())?;
    let root_bytes = cur.sign_root(&root, None)?;
    let mut targets = targets.cloned().unwrap_or_else(|| Targets {
        typ: super::metadata::role_type::TARGETS.into(),
        delegations: Default::default(),
        expires: expires(cur.now, cur.lifetimes.targets),
        targets: BTreeMap::new(),
        version: 0,
    });
    targets.version += 1;
    targets.expires = expires(cur.now, cur.lifetimes.targets);
    let keyid = new_key.public().id();
    let targets_bytes = sign_role(TARGETS, &targets, &[(&keyid, new_key)])?;
    Ok(Rotation {
        files: vec![("root".into(), root_bytes), (TARGETS.into(), targets_bytes)],
        root_version: root.version,
        targets_version: Some(targets.version),
        new_keyid: keyid,
    })
}

/// Replaces the root key with `new_key` (ECDSA P-256) and a new certificate for the GUN. The new
/// root is signed by the current root keys and the new one.
pub fn rotate_root(cur: &Current<'_>, new_key: &SigningKey) -> Result<Rotation, RotationError> {
    cur.check_threshold()?;
    let SigningKey::P256(sk) = new_key else {
        return Err(EditError::RootKeyType.into());
    };
    let cert = x509::make_root_certificate(sk, cur.gun, cur.now).map_err(EditError::from)?;
    let cert_key = PublicKey::new(keytype::ECDSA_X509, cert.into_bytes());
    let keyid = cert_key.id();
    let root = cur.next_root("root", cert_key)?;
    let bytes = cur.sign_root(
        &root,
        Some(RootSigner {
            keyid: keyid.clone(),
            key: new_key,
        }),
    )?;
    Ok(Rotation {
        files: vec![("root".into(), bytes)],
        root_version: root.version,
        targets_version: None,
        new_keyid: keyid,
    })
}

/// Lists the server's new snapshot key in the next root; the server signs snapshots with it
/// from then on.
pub fn rotate_snapshot(cur: &Current<'_>, new_key: PublicKey) -> Result<Rotation, RotationError> {
    cur.check_threshold()?;
    let new_keyid = new_key.id();
    let root = cur.next_root("snapshot", new_key)?;
    let bytes = cur.sign_root(&root, None)?;
    Ok(Rotation {
        files: vec![("root".into(), bytes)],
        root_version: root.version,
        targets_version: None,
        new_keyid,
    })
}

/// The root role's key IDs with the canonical ID of each (the bare key's, which is how the
/// keyring knows a root key): `(root key ID, canonical ID)`.
pub fn root_key_ids(root: &Root) -> Vec<(String, String)> {
    root.roles
        .get("root")
        .map(|r| r.keyids.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|id| {
            let canonical = root
                .keys
                .get(id)
                .and_then(|k| k.canonical_id().ok())
                .unwrap_or_else(|| id.clone());
            (id.clone(), canonical)
        })
        .collect()
}

/// When the root certificates of `root` stop being valid: the earliest `notAfter` of the root
/// role's certificates (`None` when none parses).
pub fn root_certificate_expiry(root: &Root) -> Option<OffsetDateTime> {
    let ids = root.roles.get("root")?;
    ids.keyids
        .iter()
        .filter_map(|id| root.keys.get(id))
        .filter_map(|k| k.certificates().ok())
        .filter_map(|certs| certs.first().map(x509::not_after))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_parsed_and_timestamp_is_refused_with_the_reason() {
        assert_eq!("targets".parse::<Rotatable>(), Ok(Rotatable::Targets));
        assert_eq!("root".parse::<Rotatable>(), Ok(Rotatable::Root));
        assert_eq!("snapshot".parse::<Rotatable>(), Ok(Rotatable::Snapshot));
        let e = "timestamp".parse::<Rotatable>().unwrap_err();
        assert!(e.to_string().contains("held by the notary server"), "{e}");
        let e = "targets/releases".parse::<Rotatable>().unwrap_err();
        assert!(e.to_string().contains("signer remove"), "{e}");
    }
}
