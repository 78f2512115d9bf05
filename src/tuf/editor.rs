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
    Base64Bytes, DelegatedRole, Delegations, Expires, FileMeta, RoleKeys, Root, Signature, Targets,
    canonical_bytes, encode_signed, role_type,
};
use super::trusted::Repo;
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

/// One change to a repository's targets or signers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Sign `tag` in `role` as the manifest described by `meta`.
    AddTarget {
        /// The targets role to sign in. `targets` means where docker signs: every direct
        /// delegation (`targets/releases`, `targets/<signer>`) whose paths allow the tag and
        /// whose key is here; with none of those, the top-level targets role.
        role: String,
        /// Tag.
        tag: String,
        /// sha256 and length of the manifest.
        meta: FileMeta,
    },
    /// Remove the signature of `tag` from `role` (`targets`: from the roles chosen as for
    /// [`Change::AddTarget`]).
    RemoveTarget {
        /// The targets role to remove it from.
        role: String,
        /// Tag.
        tag: String,
    },
    /// Give signer `name` the delegation `targets/<name>` with `keys`, and add the keys to
    /// `targets/releases`, creating either role (docker 28's `trust signer add`).
    AddSigner {
        /// The signer name, without `targets/`.
        name: String,
        /// Its public keys.
        keys: Vec<PublicKey>,
    },
    /// Delete `targets/<name>` and take its keys out of `targets/releases` (those no other
    /// signer uses). Leaving releases with no key is refused unless `allow_last`; then releases
    /// is deleted too, and the repository is signed in `targets` again.
    RemoveSigner {
        /// The signer name, without `targets/`.
        name: String,
        /// Whether removing the last key of releases is intended.
        allow_last: bool,
    },
}

impl Change {
    /// Signs `tag` as `meta` where docker would (see [`Change::AddTarget`]).
    pub fn add(tag: impl Into<String>, meta: FileMeta) -> Self {
        Change::AddTarget {
            role: TARGETS.into(),
            tag: tag.into(),
            meta,
        }
    }

    /// Removes `tag` from the roles docker would remove it from.
    pub fn remove(tag: impl Into<String>) -> Self {
        Change::RemoveTarget {
            role: TARGETS.into(),
            tag: tag.into(),
        }
    }

    /// The tag it changes (for a signer change, the signer name).
    pub fn tag(&self) -> &str {
        match self {
            Change::AddTarget { tag, .. } | Change::RemoveTarget { tag, .. } => tag,
            Change::AddSigner { name, .. } | Change::RemoveSigner { name, .. } => name,
        }
    }

    /// The role it changes (a signer change changes `targets`).
    pub fn role(&self) -> &str {
        match self {
            Change::AddTarget { role, .. } | Change::RemoveTarget { role, .. } => role,
            Change::AddSigner { .. } | Change::RemoveSigner { .. } => TARGETS,
        }
    }

    fn is_signer_change(&self) -> bool {
        matches!(self, Change::AddSigner { .. } | Change::RemoveSigner { .. })
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
    /// The targets key is missing but the repository's root key is here: the owner lost the
    /// targets key, which a rotation replaces.
    #[error(
        "cannot sign {gun}: its targets key ({keyids:?}) is not in this keyring, but the repository's root key is. If the targets key is lost, `docker trustacr key rotate {gun} targets` makes a new one and re-signs every tag (restore it with `docker trustacr key import` instead if you have a backup). Nothing was published"
    )]
    TargetsKeyLost {
        /// GUN.
        gun: String,
        /// Key IDs the targets role accepts.
        keyids: Vec<String>,
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
    /// No role the repository accepts for the tag can be signed with a key here.
    #[error(
        "cannot sign {tag} in {gun}: no key in this keyring can sign a role that accepts it ({roles}). Get a key: `docker trustacr key import` the key file from the machine that holds it, or run `docker trustacr key generate NAME` and ask the repository owner to run `docker trustacr signer add NAME {gun} --key NAME.pub` (or `docker trust signer add`). Nothing was published"
    )]
    NoSignableRole {
        /// GUN.
        gun: String,
        /// Tag.
        tag: String,
        /// Each role with the key IDs it accepts.
        roles: String,
    },
    /// The only roles a key here can sign are ones docker does not resolve tags from.
    #[error(
        "cannot sign {tag} in {gun}: the keys here sign only {roles}, which docker pull and docker trust inspect do not read (they resolve targets/releases, then targets). Ask the repository owner to add your key to targets/releases (`docker trustacr signer add` does both). Nothing was published"
    )]
    NotResolvable {
        /// GUN.
        gun: String,
        /// Tag.
        tag: String,
        /// The roles that could be signed.
        roles: String,
    },
    /// `signer remove` of a signer the repository does not have.
    #[error(
        "{gun} has no signer {name} (no targets/{name} delegation); `docker trustacr inspect {gun}` lists its signers. Nothing was published"
    )]
    NoSuchSigner {
        /// GUN.
        gun: String,
        /// Signer name.
        name: String,
    },
    /// `signer remove` would leave targets/releases with no key.
    #[error(
        "{name} holds the last key of targets/releases in {gun}: removing it leaves no one able to sign releases, and the tags releases signs ({tags}) stop resolving for docker pull. To do it anyway, pass --yes: releases is then deleted and the repository is signed with its targets key again (re-sign the tags you still want with `docker trustacr sign`). Nothing was published"
    )]
    LastReleasesSigner {
        /// GUN.
        gun: String,
        /// Signer name.
        name: String,
        /// The tags releases signs, or "none".
        tags: String,
    },
    /// A signer name or key set the editor cannot use.
    #[error("cannot add signer {name:?} to {gun}: {reason}. Nothing was published")]
    BadSigner {
        /// GUN.
        gun: String,
        /// Signer name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A role that is not a direct delegation of targets.
    #[error(
        "cannot sign in {role} of {gun}: only targets and its direct delegations (targets/<name>) can be signed, as docker does"
    )]
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

/// `now + lifetime`, as metadata expiry.
pub(crate) fn expires(now: OffsetDateTime, lifetime: Duration) -> Expires {
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
    /// Verified delegation roles by name (`targets/releases`, `targets/<signer>`): what a
    /// signature into them starts from.
    delegated: BTreeMap<String, Targets>,
    /// Published delegations whose data did not verify (expired, under-signed), with why:
    /// never signed into, since their current content is unknown.
    unreadable: Vec<(String, String)>,
    changes: Vec<Change>,
}

impl UnsignedUpdate {
    /// Initialises `gun`, which has no trust data, with the server's timestamp and snapshot keys.
    pub fn init(gun: &str, server_keys: ServerKeys, now: OffsetDateTime) -> Self {
        UnsignedUpdate {
            gun: gun.to_string(),
            now,
            base: Base::New(server_keys),
            delegated: BTreeMap::new(),
            unreadable: Vec::new(),
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
        let targets = targets.cloned().unwrap_or_else(|| empty_targets(now));
        UnsignedUpdate {
            gun: gun.to_string(),
            now,
            base: Base::Existing {
                root: root.clone(),
                targets,
            },
            delegated: releases
                .map(|r| BTreeMap::from([(RELEASES.to_string(), r.clone())]))
                .unwrap_or_default(),
            unreadable: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Changes the verified repository `repo`, with every delegation it has, so tags can be
    /// signed where docker signs them.
    pub fn of_repo(repo: &Repo, now: OffsetDateTime) -> Self {
        let mut u = Self::update(
            &repo.gun,
            &repo.root.root,
            repo.role(TARGETS).map(|r| &r.targets),
            None,
            now,
        );
        u.delegated = repo
            .roles
            .iter()
            .filter(|r| r.name != TARGETS)
            .map(|r| (r.name.clone(), r.targets.clone()))
            .collect();
        u.unreadable = repo
            .skipped
            .iter()
            .filter(|(name, _)| repo.role(name).is_none())
            .cloned()
            .collect();
        u
    }

    /// Adds `change`; where it lands and whether it can is decided when signing, with the keys.
    pub fn apply(&mut self, change: Change) -> Result<(), EditError> {
        let role = change.role();
        if role != TARGETS && !is_direct_delegation(role) {
            return Err(EditError::UnsupportedRole {
                gun: self.gun.clone(),
                role: role.to_string(),
            });
        }
        self.changes.push(change);
        Ok(())
    }

    /// Whether this initialises the repository.
    pub fn is_init(&self) -> bool {
        matches!(self.base, Base::New(_))
    }

    /// Builds and signs every file the changes need, with keys from `keys`: signer changes
    /// edit targets' delegations; each tag goes where docker would sign it (see
    /// [`Change::AddTarget`]); every role that changed is signed with a key it accepts.
    pub fn sign(self, keys: &dyn KeySource) -> Result<SignedUpdate, EditError> {
        let UnsignedUpdate {
            gun,
            now,
            base,
            mut delegated,
            unreadable,
            changes,
        } = self;
        let targets_name = KeyName::Targets { gun: gun.clone() };
        // The root key IDs (as the keyring names keys), to tell a lost targets key apart.
        let mut root_ids: Vec<String> = Vec::new();
        let (mut targets, server_keys, targets_allowed) = match base {
            Base::Existing { root, targets } => {
                let allowed = root
                    .roles
                    .get(TARGETS)
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default();
                root_ids = root
                    .roles
                    .get("root")
                    .into_iter()
                    .flat_map(|r| r.keyids.iter())
                    .filter_map(|id| root.keys.get(id)?.canonical_id().ok())
                    .collect();
                (targets, None, allowed)
            }
            Base::New(server_keys) => (empty_targets(now), Some(server_keys), Vec::new()),
        };
        let mut targets_changed = server_keys.is_some();
        for c in changes.iter().filter(|c| c.is_signer_change()) {
            edit_signers(&gun, &mut targets.delegations, &delegated, c)?;
            targets_changed = true;
        }
        // The targets key: looked up once, created only for a new repository.
        let targets_key = match &server_keys {
            Some(_) => Some(keys.get_or_create(&targets_name, KeyKind::Ed25519)?.0),
            None => keys.find(&targets_name, &targets_allowed)?,
        };
        let mut chooser = RoleChooser {
            gun: &gun,
            keys,
            delegations: &targets.delegations,
            unreadable: &unreadable,
            targets_key: targets_key.is_some(),
            targets_allowed: &targets_allowed,
            found: BTreeMap::new(),
            missing: Vec::new(),
        };
        let lost = |keys: &dyn KeySource| -> Result<Option<EditError>, EditError> {
            if targets_key.is_some() || root_ids.is_empty() {
                return Ok(None);
            }
            Ok(keys
                .find(&KeyName::Root, &root_ids)?
                .map(|_| EditError::TargetsKeyLost {
                    gun: gun.clone(),
                    keyids: targets_allowed.clone(),
                }))
        };
        let mut resolved: Vec<Change> = Vec::new();
        for c in changes.iter().filter(|c| !c.is_signer_change()) {
            let roles = if c.role() == TARGETS {
                match chooser.roles_for(c) {
                    Ok(roles) => roles,
                    Err(e @ EditError::NoSignableRole { .. }) => {
                        return Err(lost(keys)?.unwrap_or(e));
                    }
                    Err(e) => return Err(e),
                }
            } else {
                chooser.explicit(c.role())?;
                vec![c.role().to_string()]
            };
            check_not_shadowed(&gun, c, &roles, delegated.get(RELEASES))?;
            for role in roles {
                resolved.push(with_role(c, role));
            }
        }
        let mut delegation_keys = std::mem::take(&mut chooser.found);
        for c in &resolved {
            let content = if c.role() == TARGETS {
                targets_changed = true;
                &mut targets
            } else {
                delegated
                    .entry(c.role().to_string())
                    .or_insert_with(|| empty_targets(now))
            };
            match c {
                Change::AddTarget { tag, meta, .. } => {
                    content.targets.insert(tag.clone(), meta.clone());
                }
                Change::RemoveTarget { tag, .. } => {
                    content.targets.remove(tag);
                }
                Change::AddSigner { .. } | Change::RemoveSigner { .. } => {}
            }
        }
        let mut files = Vec::new();
        let mut root_file = None;
        if targets_changed {
            let Some(targets_key) = targets_key else {
                if let Some(e) = lost(keys)? {
                    return Err(e);
                }
                return Err(EditError::NoSigningKey {
                    gun: gun.clone(),
                    role: TARGETS.into(),
                    keyids: targets_allowed,
                    entry: targets_name.entry(),
                });
            };
            if let Some(server_keys) = server_keys {
                let (root_key, _) = keys.get_or_create(&KeyName::Root, KeyKind::P256)?;
                let root = new_root(&gun, &root_key, &targets_key, server_keys, now)?;
                files.push(("root".to_string(), root.clone()));
                root_file = Some(root);
            }
            targets.version += 1;
            targets.expires = expires(now, TARGETS_LIFETIME);
            let keyid = targets_key.public().id();
            files.push((
                TARGETS.to_string(),
                sign_role(TARGETS, &targets, &[(&keyid, &targets_key)])?,
            ));
        }
        let mut signed_roles: Vec<&str> = resolved
            .iter()
            .map(Change::role)
            .filter(|r| *r != TARGETS)
            .collect();
        signed_roles.sort_unstable();
        signed_roles.dedup();
        for role in signed_roles {
            let (Some(content), Some((keyid, key))) =
                (delegated.get_mut(role), delegation_keys.remove(role))
            else {
                continue;
            };
            content.version += 1;
            content.expires = expires(now, TARGETS_LIFETIME);
            files.push((
                role.to_string(),
                sign_role(role, content, &[(&keyid, &key)])?,
            ));
        }
        let mut all_changes: Vec<Change> = changes
            .into_iter()
            .filter(Change::is_signer_change)
            .collect();
        all_changes.extend(resolved);
        Ok(SignedUpdate {
            gun,
            files,
            root: root_file,
            targets_version: targets.version,
            changes: all_changes,
        })
    }
}

/// A targets role with nothing in it yet (version 0: the first signature makes it 1).
fn empty_targets(now: OffsetDateTime) -> Targets {
    Targets {
        typ: role_type::TARGETS.into(),
        delegations: Delegations::default(),
        expires: expires(now, TARGETS_LIFETIME),
        targets: BTreeMap::new(),
        version: 0,
    }
}

/// `targets/<name>` with no further `/`: the only delegations docker signs into.
fn is_direct_delegation(role: &str) -> bool {
    role.strip_prefix("targets/")
        .is_some_and(|n| !n.is_empty() && !n.contains('/'))
}

/// `change` aimed at `role`.
fn with_role(change: &Change, role: String) -> Change {
    match change {
        Change::AddTarget { tag, meta, .. } => Change::AddTarget {
            role,
            tag: tag.clone(),
            meta: meta.clone(),
        },
        Change::RemoveTarget { tag, .. } => Change::RemoveTarget {
            role,
            tag: tag.clone(),
        },
        other => other.clone(),
    }
}

/// A change that leaves targets/releases alone must not be hidden by what releases signs:
/// docker resolves releases first.
fn check_not_shadowed(
    gun: &str,
    change: &Change,
    roles: &[String],
    releases: Option<&Targets>,
) -> Result<(), EditError> {
    if roles.iter().any(|r| r == RELEASES) {
        return Ok(());
    }
    let Some(m) = releases.and_then(|r| r.targets.get(change.tag())) else {
        return Ok(());
    };
    let same = matches!(change, Change::AddTarget { meta, .. } if meta == m);
    if same {
        return Ok(());
    }
    Err(EditError::ShadowedByReleases {
        gun: gun.to_string(),
        tag: change.tag().to_string(),
        digest: digest_text(m),
    })
}

/// Applies a signer change to the delegations of `targets`, as docker's `signer add` and a
/// working `signer remove` do.
fn edit_signers(
    gun: &str,
    dels: &mut Delegations,
    delegated: &BTreeMap<String, Targets>,
    change: &Change,
) -> Result<(), EditError> {
    match change {
        Change::AddSigner { name, keys } => {
            let bad = |reason: &str| EditError::BadSigner {
                gun: gun.to_string(),
                name: name.clone(),
                reason: reason.to_string(),
            };
            let role = format!("targets/{name}");
            if role == RELEASES || !is_direct_delegation(&role) {
                return Err(bad("it is reserved or not a plain name"));
            }
            if keys.is_empty() {
                return Err(bad("no public key was given"));
            }
            let ids: Vec<String> = keys.iter().map(PublicKey::id).collect();
            for (id, key) in ids.iter().zip(keys) {
                dels.keys.insert(id.clone(), key.clone());
            }
            for r in [role.as_str(), RELEASES] {
                match dels.roles.iter_mut().find(|d| d.name == r) {
                    Some(d) => {
                        let listed = d.keyids.get_or_insert_with(Vec::new);
                        for id in &ids {
                            if !listed.contains(id) {
                                listed.push(id.clone());
                            }
                        }
                    }
                    None => dels.roles.push(DelegatedRole {
                        keyids: Some(ids.clone()),
                        name: r.to_string(),
                        paths: vec![String::new()],
                        threshold: 1,
                    }),
                }
            }
        }
        Change::RemoveSigner { name, allow_last } => {
            let role = format!("targets/{name}");
            if role == RELEASES || !is_direct_delegation(&role) {
                return Err(EditError::BadSigner {
                    gun: gun.to_string(),
                    name: name.clone(),
                    reason: "it is reserved or not a plain name, so it names no signer".into(),
                });
            }
            let Some(pos) = dels.roles.iter().position(|d| d.name == role) else {
                return Err(EditError::NoSuchSigner {
                    gun: gun.to_string(),
                    name: name.clone(),
                });
            };
            let removed = dels.roles.remove(pos).keyids.unwrap_or_default();
            // A key another signer still has stays in releases: that signer still signs there.
            let kept: Vec<String> = dels
                .roles
                .iter()
                .filter(|d| d.name != RELEASES)
                .flat_map(|d| d.keyids.clone().unwrap_or_default())
                .collect();
            if let Some(rel) = dels.roles.iter_mut().find(|d| d.name == RELEASES) {
                let listed = rel.keyids.get_or_insert_with(Vec::new);
                listed.retain(|id| !removed.contains(id) || kept.contains(id));
                if listed.is_empty() {
                    if !allow_last {
                        let tags: Vec<&str> = delegated
                            .get(RELEASES)
                            .map(|t| t.targets.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        return Err(EditError::LastReleasesSigner {
                            gun: gun.to_string(),
                            name: name.clone(),
                            tags: if tags.is_empty() {
                                "none".into()
                            } else {
                                tags.join(", ")
                            },
                        });
                    }
                    dels.roles.retain(|d| d.name != RELEASES);
                }
            }
            let used: Vec<String> = dels
                .roles
                .iter()
                .flat_map(|d| d.keyids.clone().unwrap_or_default())
                .collect();
            dels.keys.retain(|id, _| used.contains(id));
        }
        Change::AddTarget { .. } | Change::RemoveTarget { .. } => {}
    }
    Ok(())
}

/// Chooses the roles a tag is signed into, as docker's `GetSignableRoles`, and remembers the
/// delegation keys it found so each is read from the key source once.
struct RoleChooser<'a> {
    gun: &'a str,
    keys: &'a dyn KeySource,
    delegations: &'a Delegations,
    unreadable: &'a [(String, String)],
    targets_key: bool,
    targets_allowed: &'a [String],
    /// Delegation → (the key ID as the role lists it, the key).
    found: BTreeMap<String, (String, SigningKey)>,
    /// Delegations with no key here.
    missing: Vec<String>,
}

impl RoleChooser<'_> {
    /// The key here that `role` accepts, if any (cached).
    fn key_for(&mut self, role: &str) -> Result<bool, EditError> {
        if self.found.contains_key(role) {
            return Ok(true);
        }
        if self.missing.iter().any(|n| n == role) || self.unreadable.iter().any(|(n, _)| n == role)
        {
            return Ok(false);
        }
        self.missing.push(role.to_string());
        let Some(d) = self.delegations.roles.iter().find(|d| d.name == role) else {
            return Ok(false);
        };
        // Keys are found by canonical ID; the signature names the ID the role lists.
        let pairs: Vec<(String, String)> = d
            .keyids
            .iter()
            .flatten()
            .filter_map(|id| {
                let canonical = self.delegations.keys.get(id)?.canonical_id().ok()?;
                Some((canonical, id.clone()))
            })
            .collect();
        let Some((first, _)) = pairs.first() else {
            return Ok(false);
        };
        let allowed: Vec<String> = pairs.iter().map(|(c, _)| c.clone()).collect();
        let Some(key) = self
            .keys
            .find(&KeyName::Id { id: first.clone() }, &allowed)?
        else {
            return Ok(false);
        };
        let id = key.public().id();
        let Some((_, listed)) = pairs.iter().find(|(c, _)| *c == id) else {
            return Ok(false);
        };
        self.missing.retain(|n| n != role);
        self.found.insert(role.to_string(), (listed.clone(), key));
        Ok(true)
    }

    /// An explicitly named delegation must be one this keyring can sign.
    fn explicit(&mut self, role: &str) -> Result<(), EditError> {
        if self.key_for(role)? {
            return Ok(());
        }
        Err(EditError::NoSignableRole {
            gun: self.gun.to_string(),
            tag: role.to_string(),
            roles: self.describe(&[role]),
        })
    }

    /// Where docker signs `change`'s tag: every direct delegation whose paths allow it and
    /// whose key is here; with no delegations, or none of them signable here, `targets`
    /// (when its key is here).
    fn roles_for(&mut self, change: &Change) -> Result<Vec<String>, EditError> {
        let tag = change.tag();
        if self.delegations.roles.is_empty() {
            return Ok(vec![TARGETS.to_string()]);
        }
        let candidates: Vec<String> = self
            .delegations
            .roles
            .iter()
            .filter(|d| is_direct_delegation(&d.name))
            .filter(|d| d.paths.iter().any(|p| tag.starts_with(p.as_str())))
            .map(|d| d.name.clone())
            .collect();
        let mut signable = Vec::new();
        for c in candidates {
            if self.key_for(&c)? {
                signable.push(c);
            }
        }
        if signable.is_empty() {
            if self.targets_key {
                return Ok(vec![TARGETS.to_string()]);
            }
            let mut names: Vec<&str> = self
                .delegations
                .roles
                .iter()
                .filter(|d| is_direct_delegation(&d.name))
                .map(|d| d.name.as_str())
                .collect();
            names.push(TARGETS);
            return Err(EditError::NoSignableRole {
                gun: self.gun.to_string(),
                tag: tag.to_string(),
                roles: self.describe(&names),
            });
        }
        let adds = matches!(change, Change::AddTarget { .. });
        if adds && !signable.iter().any(|r| r == RELEASES) {
            if self.targets_key {
                // The owner's key makes the tag resolvable; docker would not use it here, but
                // a signature docker pull cannot see helps no one.
                signable.push(TARGETS.to_string());
            } else {
                return Err(EditError::NotResolvable {
                    gun: self.gun.to_string(),
                    tag: tag.to_string(),
                    roles: signable.join(", "),
                });
            }
        }
        Ok(signable)
    }

    /// "ROLE accepts key(s) A, B" for each role, with why an unreadable one is left out.
    fn describe(&self, roles: &[&str]) -> String {
        roles
            .iter()
            .map(|role| {
                let ids: Vec<String> = if *role == TARGETS {
                    self.targets_allowed.to_vec()
                } else {
                    self.delegations
                        .roles
                        .iter()
                        .find(|d| d.name == *role)
                        .map(|d| {
                            d.keyids
                                .iter()
                                .flatten()
                                .map(|id| {
                                    self.delegations
                                        .keys
                                        .get(id)
                                        .and_then(|k| k.canonical_id().ok())
                                        .unwrap_or_else(|| id.clone())
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let why = self
                    .unreadable
                    .iter()
                    .find(|(n, _)| n == role)
                    .map(|(_, w)| format!(", but its published data did not verify: {w}"))
                    .unwrap_or_default();
                if ids.is_empty() {
                    format!("{role} accepts no key{why}")
                } else {
                    format!("{role} accepts key {}{why}", ids.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
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
            let ok = |k: &SigningKey| allowed.contains(&k.public().id());
            Ok(keys
                .iter()
                .find(|(n, k)| *n == name.entry() && ok(k))
                .or_else(|| keys.iter().find(|(n, k)| n.starts_with("key:") && ok(k)))
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

    impl MemoryKeys {
        /// Holds `k` as an imported key.
        fn put(&self, k: &SigningKey) {
            let entry = KeyName::Id {
                id: k.public().id(),
            }
            .entry();
            self.0.lock().unwrap().push((entry, copy(k)));
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
    fn change_shadowed_by_releases_is_refused_before_anything_is_signed() {
        let keys = MemoryKeys::default();
        let mut u = UnsignedUpdate::init("example.com/app", server_keys(), now());
        u.apply(Change::add("v1", meta(1))).unwrap();
        let root = parse_root(u.sign(&keys).unwrap().new_root().unwrap());
        let mut releases = empty_targets(now());
        releases.version = 1;
        releases.targets.insert("v1".into(), meta(1));
        let update =
            || UnsignedUpdate::update("example.com/app", &root, None, Some(&releases), now());
        // Signing the same digest releases signs is harmless; anything else would be hidden.
        let mut u = update();
        u.apply(Change::add("v1", meta(1))).unwrap();
        u.sign(&keys).unwrap();
        for change in [Change::add("v1", meta(2)), Change::remove("v1")] {
            let mut u = update();
            u.apply(change).unwrap();
            let err = u.sign(&keys).unwrap_err();
            assert!(
                matches!(&err, EditError::ShadowedByReleases { tag, digest, .. } if tag == "v1" && digest == &format!("sha256:{}", hex::encode([1u8; 32]))),
                "{err}"
            );
        }
    }

    #[test]
    fn only_targets_and_its_direct_delegations_can_be_named() {
        let mut u = UnsignedUpdate::init("example.com/app", server_keys(), now());
        for role in ["targets/a/b", "root", "targets/"] {
            let err = u
                .apply(Change::AddTarget {
                    role: role.into(),
                    tag: "v1".into(),
                    meta: meta(1),
                })
                .unwrap_err();
            assert!(matches!(err, EditError::UnsupportedRole { .. }), "{err}");
        }
    }

    /// A repository made here (root and targets keys in `owner`) with signer `alice` whose
    /// key is returned: its root, and targets as the server would now serve it.
    fn repo_with_signer(owner: &MemoryKeys) -> (Root, Targets, SigningKey) {
        let gun = "example.com/app";
        let mut u = UnsignedUpdate::init(gun, server_keys(), now());
        u.apply(Change::add("v1", meta(1))).unwrap();
        let signed = u.sign(owner).unwrap();
        let root = parse_root(signed.new_root().unwrap());
        let targets = parse_targets(&signed.files()[1].1);
        let alice = SigningKey::generate_p256().unwrap();
        let mut u = UnsignedUpdate::update(gun, &root, Some(&targets), None, now());
        u.apply(Change::AddSigner {
            name: "alice".into(),
            keys: vec![alice.public()],
        })
        .unwrap();
        let signed = u.sign(owner).unwrap();
        let files: Vec<&str> = signed.files().iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(files, ["targets"], "a signer change re-signs targets only");
        (root, parse_targets(&signed.files()[0].1), alice)
    }

    fn parse_targets(bytes: &[u8]) -> Targets {
        let file = super::super::metadata::SignedFile::parse("targets", bytes).unwrap();
        serde_json::from_value(file.signed).unwrap()
    }

    #[test]
    fn signer_add_delegates_to_the_signer_and_releases_with_its_key() {
        let owner = MemoryKeys::default();
        let (_, targets, alice) = repo_with_signer(&owner);
        let id = alice.public().id();
        let d = &targets.delegations;
        assert_eq!(d.keys[&id], alice.public());
        for name in ["targets/alice", RELEASES] {
            let role = d.roles.iter().find(|r| r.name == name).unwrap();
            assert_eq!(role.keyids.as_deref(), Some(&[id.clone()][..]), "{name}");
            assert_eq!(
                (role.threshold, role.paths.as_slice()),
                (1, &[String::new()][..])
            );
        }
    }

    #[test]
    fn tags_go_into_every_delegation_with_a_key_here_as_docker_signs() {
        let owner = MemoryKeys::default();
        let (root, targets, alice) = repo_with_signer(&owner);
        let signer = MemoryKeys::default();
        signer.put(&alice);
        let mut u = UnsignedUpdate::update("example.com/app", &root, Some(&targets), None, now());
        u.apply(Change::add("v2", meta(2))).unwrap();
        let signed = u.sign(&signer).unwrap();
        let files: Vec<&str> = signed.files().iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(files, ["targets/alice", RELEASES]);
        for (role, bytes) in signed.files() {
            let file = super::super::metadata::SignedFile::parse(role, bytes).unwrap();
            assert_eq!(file.signatures[0].keyid, alice.public().id());
            let t: Targets = serde_json::from_value(file.signed).unwrap();
            assert_eq!((t.version, t.targets.get("v2")), (1, Some(&meta(2))));
        }
        // The owner, with no signer key, signs into targets as before.
        let mut u = UnsignedUpdate::update("example.com/app", &root, Some(&targets), None, now());
        u.apply(Change::add("v3", meta(3))).unwrap();
        let signed = u.sign(&owner).unwrap();
        assert_eq!(signed.files()[0].0, TARGETS);
    }

    #[test]
    fn no_key_for_any_accepted_role_names_each_role_and_its_keys() {
        let owner = MemoryKeys::default();
        let (root, targets, alice) = repo_with_signer(&owner);
        let stranger = MemoryKeys::default();
        stranger.put(&SigningKey::generate_p256().unwrap());
        let mut u = UnsignedUpdate::update("example.com/app", &root, Some(&targets), None, now());
        u.apply(Change::add("v2", meta(2))).unwrap();
        let err = u.sign(&stranger).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, EditError::NoSignableRole { .. }), "{text}");
        for part in [
            format!("targets/alice accepts key {}", alice.public().id()),
            format!("targets accepts key {}", root.roles[TARGETS].keyids[0]),
            "key import".to_string(),
            "signer add NAME example.com/app --key NAME.pub".to_string(),
        ] {
            assert!(text.contains(&part), "{part} missing: {text}");
        }
    }

    #[test]
    fn removing_the_last_releases_signer_needs_consent_and_then_drops_releases() {
        let owner = MemoryKeys::default();
        let (root, targets, _) = repo_with_signer(&owner);
        let remove = |allow_last| {
            let mut u =
                UnsignedUpdate::update("example.com/app", &root, Some(&targets), None, now());
            u.apply(Change::RemoveSigner {
                name: "alice".into(),
                allow_last,
            })
            .unwrap();
            u.sign(&owner)
        };
        let err = remove(false).unwrap_err();
        assert!(matches!(err, EditError::LastReleasesSigner { .. }), "{err}");
        assert!(err.to_string().contains("--yes"), "{err}");
        let signed = remove(true).unwrap();
        let after = parse_targets(&signed.files()[0].1);
        assert!(
            after.delegations.roles.is_empty(),
            "{:?}",
            after.delegations
        );
        assert!(after.delegations.keys.is_empty());
    }

    #[test]
    fn removing_one_signer_keeps_the_releases_keys_others_still_use() {
        let owner = MemoryKeys::default();
        let (root, targets, alice) = repo_with_signer(&owner);
        let bob = SigningKey::generate_p256().unwrap();
        let mut u = UnsignedUpdate::update("example.com/app", &root, Some(&targets), None, now());
        // bob shares alice's key and has one of his own.
        u.apply(Change::AddSigner {
            name: "bob".into(),
            keys: vec![alice.public(), bob.public()],
        })
        .unwrap();
        u.apply(Change::RemoveSigner {
            name: "alice".into(),
            allow_last: false,
        })
        .unwrap();
        let after = parse_targets(&u.sign(&owner).unwrap().files()[0].1);
        let names: Vec<&str> = after
            .delegations
            .roles
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, [RELEASES, "targets/bob"]);
        let releases = after
            .delegations
            .roles
            .iter()
            .find(|r| r.name == RELEASES)
            .unwrap();
        assert_eq!(
            releases.keyids.clone().unwrap(),
            [alice.public().id(), bob.public().id()]
        );
        let mut u = UnsignedUpdate::update("example.com/app", &root, Some(&targets), None, now());
        let err = {
            u.apply(Change::RemoveSigner {
                name: "carol".into(),
                allow_last: true,
            })
            .unwrap();
            u.sign(&owner).unwrap_err()
        };
        assert!(matches!(err, EditError::NoSuchSigner { .. }), "{err}");
    }
}
