//! The editor: builds the metadata of a change (a new repository's root and targets, or the next
//! targets of an existing one) and signs it. No I/O: keys come through a [`KeySource`], and the
//! caller uploads the result.
//!
//! The types only allow publishing signed data: an [`UnsignedUpdate`] collects [`Change`]s, and
//! only [`UnsignedUpdate::sign`] makes the [`SignedUpdate`] that the uploader accepts (as tough's
//! `RepositoryEditor::sign` → `SignedRepository`).

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::keys::{PublicKey, keytype};
use super::metadata::{
    Base64Bytes, Delegations, Expires, FileMeta, RoleKeys, Root, Signature, Targets,
    canonical_bytes, encode_signed, role_type,
};
use super::x509;
use crate::keystore::KeystoreError;
use crate::keystore::keys::{KeyName, SigningKey};
use crate::keystore::source::{KeyKind, KeySource};

/// Root metadata lifetime (notary: 10 years).
pub const ROOT_LIFETIME: Duration = Duration::days(3650);
/// Targets lifetime (notary: 3 years).
pub const TARGETS_LIFETIME: Duration = Duration::days(3 * 365);

/// The top-level targets role.
pub const TARGETS: &str = "targets";
/// The delegation docker signs with and resolves before `targets`.
pub const RELEASES: &str = "targets/releases";

/// One change to a repository's targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Sign `tag` in `role` as the manifest described by `meta`.
    AddTarget {
        /// The targets role to sign in (`targets` today).
        role: String,
        /// Tag.
        tag: String,
        /// sha256 and length of the manifest.
        meta: FileMeta,
    },
    /// Remove the signature of `tag` from `role`.
    RemoveTarget {
        /// The targets role to remove it from.
        role: String,
        /// Tag.
        tag: String,
    },
}

impl Change {
    /// Signs `tag` as `meta` in the top-level targets role.
    pub fn add(tag: impl Into<String>, meta: FileMeta) -> Self {
        Change::AddTarget {
            role: TARGETS.into(),
            tag: tag.into(),
            meta,
        }
    }

    /// Removes `tag` from the top-level targets role.
    pub fn remove(tag: impl Into<String>) -> Self {
        Change::RemoveTarget {
            role: TARGETS.into(),
            tag: tag.into(),
        }
    }

    /// The tag it changes.
    pub fn tag(&self) -> &str {
        match self {
            Change::AddTarget { tag, .. } | Change::RemoveTarget { tag, .. } => tag,
        }
    }

    /// The role it changes.
    pub fn role(&self) -> &str {
        match self {
            Change::AddTarget { role, .. } | Change::RemoveTarget { role, .. } => role,
        }
    }
}

/// Errors building or signing an update; nothing was uploaded.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// No key of the source may sign the role.
    #[error(
        "cannot sign {gun}: its {role} role is signed by key(s) {keyids:?}, and the keyring holds no such key (entry {entry}). Ask the repository's administrator for a signing delegation, or publish from the machine that created it"
    )]
    NoSigningKey {
        /// GUN.
        gun: String,
        /// The role.
        role: String,
        /// Key IDs the role accepts.
        keyids: Vec<String>,
        /// Where the key was looked for.
        entry: String,
    },
    /// A delegation we cannot sign would still decide what docker resolves.
    #[error(
        "cannot change {tag} in {gun}: targets/releases also signs it ({digest}), and docker resolves targets/releases first. Revoke it with the key holder's `docker trust revoke`, or use a tag that releases does not sign"
    )]
    ShadowedByReleases {
        /// GUN.
        gun: String,
        /// Tag.
        tag: String,
        /// What releases signs (`sha256:<hex>`, or why there is none).
        digest: String,
    },
    /// Only the top-level targets role can be edited so far.
    #[error("cannot sign in {role} of {gun}: this version signs only the top-level targets role")]
    UnsupportedRole {
        /// GUN.
        gun: String,
        /// The role asked for.
        role: String,
    },
    /// The key source failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The root certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] x509::CertCreateError),
    /// The root key is not the kind a root certificate can be made from.
    #[error(
        "the keyring's root key is not ECDSA P-256, which the root certificate needs (keyring entry root)"
    )]
    RootKeyType,
    /// Encoding failed.
    #[error("cannot encode {role}: {reason}")]
    Encode {
        /// Role.
        role: String,
        /// Why.
        reason: String,
    },
}

/// Signs `body` with each `(key ID, key)` and returns the file bytes notary-server expects.
pub fn sign_role<T: serde::Serialize>(
    role: &str,
    body: &T,
    signers: &[(&str, &SigningKey)],
) -> Result<Vec<u8>, EditError> {
    let canonical = canonical_bytes(body).map_err(|e| EditError::Encode {
        role: role.into(),
        reason: e.to_string(),
    })?;
    let signatures: Vec<Signature> = signers
        .iter()
        .map(|(keyid, key)| {
            let (method, sig) = key.sign(&canonical);
            Signature {
                keyid: keyid.to_string(),
                method: method.to_string(),
                sig: Base64Bytes(sig),
            }
        })
        .collect();
    Ok(encode_signed(&canonical, &signatures))
}

fn expires(now: OffsetDateTime, lifetime: Duration) -> Expires {
    // Whole seconds keep the Go spelling short; the value itself does not matter.
    Expires(
        (now + lifetime)
            .replace_nanosecond(0)
            .unwrap_or(now + lifetime),
    )
}

/// `sha256:<hex>` of a target, or a note that it has no valid sha256.
fn digest_text(meta: &FileMeta) -> String {
    match meta.sha256() {
        Some(h) if h.len() == 32 => format!("sha256:{}", hex::encode(h)),
        _ => "no valid sha256".into(),
    }
}

/// The keys the server holds for a repository (ACR and notary-server sign snapshot and
/// timestamp themselves).
#[derive(Debug, Clone)]
pub struct ServerKeys {
    /// The timestamp key.
    pub timestamp: PublicKey,
    /// The snapshot key.
    pub snapshot: PublicKey,
}

#[derive(Debug, Clone)]
enum Base {
    /// A repository with no trust data: root and targets are created.
    New(ServerKeys),
    /// An existing repository: its verified root, and the current targets (if any).
    Existing { root: Root, targets: Targets },
}

/// Changes not yet signed. Only [`UnsignedUpdate::sign`] turns it into something publishable.
#[derive(Debug, Clone)]
pub struct UnsignedUpdate {
    gun: String,
    now: OffsetDateTime,
    base: Base,
    releases: Option<Targets>,
    changes: Vec<Change>,
}

impl UnsignedUpdate {
    /// Initialises `gun`, which has no trust data, with the server's timestamp and snapshot keys.
    pub fn init(gun: &str, server_keys: ServerKeys, now: OffsetDateTime) -> Self {
        UnsignedUpdate {
            gun: gun.to_string(),
            now,
            base: Base::New(server_keys),
            releases: None,
            changes: Vec::new(),
        }
    }

    /// Changes `gun`, whose verified root is `root`, current targets `targets` (none when the
    /// role is absent) and `targets/releases` `releases` (checked so that no change is hidden
    /// by what docker resolves first).
    pub fn update(
        gun: &str,
        root: &Root,
        targets: Option<&Targets>,
        releases: Option<&Targets>,
        now: OffsetDateTime,
    ) -> Self {
        let targets = targets.cloned().unwrap_or_else(|| Targets {
            typ: role_type::TARGETS.into(),
            delegations: Delegations::default(),
            expires: expires(now, TARGETS_LIFETIME),
            targets: BTreeMap::new(),
            version: 0,
        });
        UnsignedUpdate {
            gun: gun.to_string(),
            now,
            base: Base::Existing {
                root: root.clone(),
                targets,
            },
            releases: releases.cloned(),
            changes: Vec::new(),
        }
    }

    /// Adds `change`, refusing one this update cannot make take effect.
    pub fn apply(&mut self, change: Change) -> Result<(), EditError> {
        if change.role() != TARGETS {
            return Err(EditError::UnsupportedRole {
                gun: self.gun.clone(),
                role: change.role().to_string(),
            });
        }
        if let Some(m) = self
            .releases
            .as_ref()
            .and_then(|r| r.targets.get(change.tag()))
        {
            let same = matches!(&change, Change::AddTarget { meta, .. } if meta == m);
            if !same {
                return Err(EditError::ShadowedByReleases {
                    gun: self.gun.clone(),
                    tag: change.tag().to_string(),
                    digest: digest_text(m),
                });
            }
        }
        self.changes.push(change);
        Ok(())
    }

    /// Whether this initialises the repository.
    pub fn is_init(&self) -> bool {
        matches!(self.base, Base::New(_))
    }

    /// Builds and signs every file the changes need, with keys from `keys`.
    pub fn sign(self, keys: &dyn KeySource) -> Result<SignedUpdate, EditError> {
        let UnsignedUpdate {
            gun,
            now,
            base,
            changes,
            ..
        } = self;
        let targets_name = KeyName::Targets { gun: gun.clone() };
        let (mut targets, root_file, targets_key) = match base {
            Base::Existing { root, targets } => {
                let allowed = root
                    .roles
                    .get(TARGETS)
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default();
                let key =
                    keys.find(&targets_name, &allowed)?
                        .ok_or_else(|| EditError::NoSigningKey {
                            gun: gun.clone(),
                            role: TARGETS.into(),
                            keyids: allowed,
                            entry: targets_name.entry(),
                        })?;
                (targets, None, key)
            }
            Base::New(server_keys) => {
                let (root_key, _) = keys.get_or_create(&KeyName::Root, KeyKind::P256)?;
                let (targets_key, _) = keys.get_or_create(&targets_name, KeyKind::Ed25519)?;
                let root = new_root(&gun, &root_key, &targets_key, server_keys, now)?;
                let targets = Targets {
                    typ: role_type::TARGETS.into(),
                    delegations: Delegations::default(),
                    expires: expires(now, TARGETS_LIFETIME),
                    targets: BTreeMap::new(),
                    version: 0,
                };
                (targets, Some(root), targets_key)
            }
        };
        for c in &changes {
            match c {
                Change::AddTarget { tag, meta, .. } => {
                    targets.targets.insert(tag.clone(), meta.clone());
                }
                Change::RemoveTarget { tag, .. } => {
                    targets.targets.remove(tag);
                }
            }
        }
        targets.version += 1;
        targets.expires = expires(now, TARGETS_LIFETIME);
        let keyid = targets_key.public().id();
        let targets_bytes = sign_role(TARGETS, &targets, &[(&keyid, &targets_key)])?;
        let mut files = Vec::new();
        if let Some(root) = &root_file {
            files.push(("root".to_string(), root.clone()));
        }
        files.push((TARGETS.to_string(), targets_bytes));
        Ok(SignedUpdate {
            gun,
            files,
            root: root_file,
            targets_version: targets.version,
            changes,
        })
    }
}

/// The root of a new repository: our root certificate, our targets key, the server's snapshot
/// and timestamp keys, each role threshold 1, signed by the root key.
fn new_root(
    gun: &str,
    root_key: &SigningKey,
    targets_key: &SigningKey,
    server_keys: ServerKeys,
    now: OffsetDateTime,
) -> Result<Vec<u8>, EditError> {
    let SigningKey::P256(root_sk) = root_key else {
        return Err(EditError::RootKeyType);
    };
    let cert = x509::make_root_certificate(root_sk, gun, now)?;
    let cert_key = PublicKey::new(keytype::ECDSA_X509, cert.into_bytes());
    let ids = [
        ("root", cert_key.id()),
        (TARGETS, targets_key.public().id()),
        ("snapshot", server_keys.snapshot.id()),
        ("timestamp", server_keys.timestamp.id()),
    ];
    let mut keys_map = BTreeMap::new();
    keys_map.insert(ids[0].1.clone(), cert_key);
    keys_map.insert(ids[1].1.clone(), targets_key.public());
    keys_map.insert(ids[2].1.clone(), server_keys.snapshot);
    keys_map.insert(ids[3].1.clone(), server_keys.timestamp);
    let root = Root {
        typ: role_type::ROOT.into(),
        consistent_snapshot: false,
        expires: expires(now, ROOT_LIFETIME),
        keys: keys_map,
        roles: ids
            .iter()
            .map(|(role, id)| {
                (
                    role.to_string(),
                    RoleKeys {
                        keyids: vec![id.clone()],
                        threshold: 1,
                    },
                )
            })
            .collect(),
        version: 1,
    };
    sign_role("root", &root, &[(&ids[0].1, root_key)])
}

/// Signed files ready to upload, with what they are meant to change. Only
/// [`UnsignedUpdate::sign`] creates one.
#[derive(Debug, Clone)]
pub struct SignedUpdate {
    gun: String,
    files: Vec<(String, Vec<u8>)>,
    root: Option<Vec<u8>>,
    targets_version: u64,
    changes: Vec<Change>,
}

impl SignedUpdate {
    /// The GUN.
    pub fn gun(&self) -> &str {
        &self.gun
    }

    /// `(role, file bytes)` to upload, root first when initialising.
    pub fn files(&self) -> &[(String, Vec<u8>)] {
        &self.files
    }

    /// The root this update creates, when it initialises the repository: the root to pin once
    /// the server accepted it.
    pub fn new_root(&self) -> Option<&[u8]> {
        self.root.as_deref()
    }

    /// The version of `targets` this update publishes.
    pub fn targets_version(&self) -> u64 {
        self.targets_version
    }

    /// The changes it makes.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Keys in memory, created on demand.
    #[derive(Default)]
    struct MemoryKeys(Mutex<Vec<(String, SigningKey)>>);

    impl KeySource for MemoryKeys {
        fn find(
            &self,
            name: &KeyName,
            allowed: &[String],
        ) -> Result<Option<SigningKey>, KeystoreError> {
            let keys = self.0.lock().unwrap();
            Ok(keys
                .iter()
                .find(|(n, k)| *n == name.entry() && allowed.contains(&k.public().id()))
                .map(|(_, k)| copy(k)))
        }

        fn get_or_create(
            &self,
            name: &KeyName,
            kind: KeyKind,
        ) -> Result<(SigningKey, bool), KeystoreError> {
            let mut keys = self.0.lock().unwrap();
            if let Some((_, k)) = keys.iter().find(|(n, _)| *n == name.entry()) {
                return Ok((copy(k), false));
            }
            let k = match kind {
                KeyKind::Ed25519 => SigningKey::generate_ed25519()?,
                KeyKind::P256 => SigningKey::generate_p256()?,
            };
            keys.push((name.entry(), copy(&k)));
            Ok((k, true))
        }
    }

    fn copy(k: &SigningKey) -> SigningKey {
        SigningKey::from_keyring_secret(&k.to_keyring_secret(), &KeyName::Root).unwrap()
    }

    fn meta(n: u8) -> FileMeta {
        FileMeta {
            custom: None,
            hashes: BTreeMap::from([("sha256".to_string(), Base64Bytes(vec![n; 32]))]),
            length: 100 + i64::from(n),
        }
    }

    fn server_keys() -> ServerKeys {
        ServerKeys {
            timestamp: SigningKey::generate_ed25519().unwrap().public(),
            snapshot: SigningKey::generate_ed25519().unwrap().public(),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn parse_root(bytes: &[u8]) -> Root {
        let file = super::super::metadata::SignedFile::parse("root", bytes).unwrap();
        serde_json::from_value(file.signed).unwrap()
    }

    #[test]
    fn init_signs_root_and_targets_that_the_verifier_trusts() {
        let keys = MemoryKeys::default();
        let mut u = UnsignedUpdate::init("example.com/app", server_keys(), now());
        u.apply(Change::add("v1", meta(1))).unwrap();
        let signed = u.sign(&keys).unwrap();
        let roles: Vec<&str> = signed.files().iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(roles, ["root", "targets"]);
        let root = signed.new_root().unwrap();
        let trusted = crate::tuf::verify::trust_first_root(
            "example.com/app",
            root,
            now(),
            &crate::tuf::verify::RootTrust::Tofu,
        )
        .unwrap();
        assert_eq!(trusted.root.version, 1);
        assert_eq!(signed.targets_version(), 1);
    }

    #[test]
    fn update_without_a_key_the_root_accepts_is_refused_naming_the_role() {
        let keys = MemoryKeys::default();
        let mut u = UnsignedUpdate::init("example.com/app", server_keys(), now());
        u.apply(Change::add("v1", meta(1))).unwrap();
        let root = parse_root(u.sign(&keys).unwrap().new_root().unwrap());
        // Another machine: its keyring holds a different targets key for the repository.
        let other = MemoryKeys::default();
        other
            .get_or_create(
                &KeyName::Targets {
                    gun: "example.com/app".into(),
                },
                KeyKind::Ed25519,
            )
            .unwrap();
        let mut u = UnsignedUpdate::update("example.com/app", &root, None, None, now());
        u.apply(Change::add("v2", meta(2))).unwrap();
        let err = u.sign(&other).unwrap_err();
        assert!(
            matches!(&err, EditError::NoSigningKey { role, keyids, .. } if role == "targets" && keyids == &root.roles["targets"].keyids),
            "{err}"
        );
    }

    #[test]
    fn change_shadowed_by_releases_is_refused_before_signing() {
        let keys = MemoryKeys::default();
        let mut u = UnsignedUpdate::init("example.com/app", server_keys(), now());
        u.apply(Change::add("v1", meta(1))).unwrap();
        let root = parse_root(u.sign(&keys).unwrap().new_root().unwrap());
        let mut releases = Targets {
            typ: role_type::TARGETS.into(),
            delegations: Delegations::default(),
            expires: expires(now(), TARGETS_LIFETIME),
            targets: BTreeMap::new(),
            version: 1,
        };
        releases.targets.insert("v1".into(), meta(1));
        let mut u = UnsignedUpdate::update("example.com/app", &root, None, Some(&releases), now());
        // Signing the same digest releases signs is harmless; anything else would be hidden.
        u.apply(Change::add("v1", meta(1))).unwrap();
        let err = u.apply(Change::add("v1", meta(2))).unwrap_err();
        assert!(
            matches!(&err, EditError::ShadowedByReleases { tag, digest, .. } if tag == "v1" && digest == &format!("sha256:{}", hex::encode([1u8; 32]))),
            "{err}"
        );
        let err = u.apply(Change::remove("v1")).unwrap_err();
        assert!(matches!(err, EditError::ShadowedByReleases { .. }));
    }

    #[test]
    fn delegated_roles_are_refused_until_delegation_keys_exist() {
        let mut u = UnsignedUpdate::init("example.com/app", server_keys(), now());
        let err = u
            .apply(Change::AddTarget {
                role: RELEASES.into(),
                tag: "v1".into(),
                meta: meta(1),
            })
            .unwrap_err();
        assert!(matches!(err, EditError::UnsupportedRole { .. }), "{err}");
    }
}
