//! The verification core: bytes and `now` in, verified metadata or a typed refusal out. No I/O.
//!
//! Order and rules follow Notary's client (`client/tufclient.go`, `tuf/builder.go`,
//! notes/notary-v1.md §6): timestamp → snapshot → targets → delegations, each role signed by a
//! threshold of distinct keys, not expired, never older than the version cached before, and
//! byte-for-byte what the parent's hashes and lengths describe. Roots are trusted on first use
//! (or pinned) and may only change through a chain of roots each signed by its predecessor.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256, Sha512};
use time::OffsetDateTime;

use super::keys::PublicKey;
use super::metadata::{
    DelegatedRole, FileMeta, MetadataError, RawSigned, Root, Signature, SignedFile, Snapshot,
    Targets, Timestamp, role_type,
};
use super::x509::{self, CertError};

/// Size limits for every download. Notary's own: timestamp 1 MiB, others 100 MiB or the length
/// the parent metadata states, whichever is smaller.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// timestamp.json
    pub timestamp: u64,
    /// root.json when no snapshot states its length
    pub root: u64,
    /// Any metadata whose length is known from its parent is capped at that length and this.
    pub metadata: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timestamp: 1024 * 1024,
            root: 10 * 1024 * 1024,
            metadata: 100 * 1024 * 1024,
        }
    }
}

/// Why metadata was refused. Each variant names the role and the failed check.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not parseable.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// `_type` is not what the role requires.
    #[error("{role}: wrong metadata type {found:?}, expected {expected:?}")]
    WrongType {
        /// Role.
        role: String,
        /// Found `_type`.
        found: String,
        /// Expected `_type`.
        expected: &'static str,
    },
    /// Not enough valid signatures.
    #[error(
        "{role}: signature threshold not met: {valid} valid signature(s) from authorised keys, {threshold} required"
    )]
    Threshold {
        /// Role.
        role: String,
        /// Valid distinct signatures.
        valid: usize,
        /// Required.
        threshold: u32,
    },
    /// A signature names a key whose content has a different ID.
    #[error("{role}: key ID {keyid} does not match its key content")]
    KeyIdMismatch {
        /// Role.
        role: String,
        /// The claimed key ID.
        keyid: String,
    },
    /// Expired (freeze attack or stale repository).
    #[error(
        "{role}: metadata expired at {expires}; the repository must be re-signed (or this is a freeze attack)"
    )]
    Expired {
        /// Role.
        role: String,
        /// When.
        expires: String,
    },
    /// Version lower than the one seen before (rollback attack).
    #[error("{role}: version {new} is lower than the trusted version {trusted} (rollback)")]
    Rollback {
        /// Role.
        role: String,
        /// Version already trusted.
        trusted: u64,
        /// Version offered.
        new: u64,
    },
    /// Hash does not match the parent's meta (mix-and-match or tampering).
    #[error(
        "{role}: {algorithm} hash does not match the one in {parent} (expected {expected}, got {found})"
    )]
    HashMismatch {
        /// Role.
        role: String,
        /// The role whose meta lists it.
        parent: &'static str,
        /// `sha256` or `sha512`.
        algorithm: String,
        /// Expected hex.
        expected: String,
        /// Found hex.
        found: String,
    },
    /// Longer than the parent's meta allows.
    #[error("{role}: {found} bytes, more than the {expected} bytes {parent} allows")]
    LengthMismatch {
        /// Role.
        role: String,
        /// Parent role.
        parent: &'static str,
        /// Allowed length.
        expected: u64,
        /// Found length.
        found: u64,
    },
    /// The parent's meta lacks an entry or a usable hash.
    #[error("{role}: {parent} lists no usable sha256 for it")]
    MissingMeta {
        /// Role.
        role: String,
        /// Parent role.
        parent: &'static str,
    },
    /// Structurally invalid root.
    #[error("root: {0}")]
    BadRoot(String),
    /// Root certificate rules failed for every root key.
    #[error("root: no root key has an acceptable certificate: {0}")]
    RootCertificate(#[from] CertError),
    /// Root not signed by the trusted (pinned or previous) root keys.
    #[error(
        "root: version {version} is not signed by the trusted root keys ({valid} of {threshold} signatures); the repository's root key changed without a valid rotation"
    )]
    UntrustedRoot {
        /// The new root version.
        version: u64,
        /// Valid signatures from trusted keys.
        valid: usize,
        /// Required.
        threshold: u32,
    },
    /// Trust pinning refused the root.
    #[error("root: does not match the trust pinning configuration: {0}")]
    Pinning(String),
    /// A delegation signed a target outside its paths (the target is ignored, not the role).
    #[error("{role}: signs target {target:?} outside its delegated paths {paths:?}")]
    OutsidePaths {
        /// Role.
        role: String,
        /// Target.
        target: String,
        /// Allowed prefixes.
        paths: Vec<String>,
    },
    /// A role the snapshot lists is not served (404). Leaving it out would let tags resolve to
    /// older entries of other roles: a downgrade.
    #[error(
        "{role}: the snapshot lists it but the notary server does not serve it; refusing to resolve tags without it (a withheld role can downgrade what a tag resolves to)"
    )]
    Withheld {
        /// Role.
        role: String,
    },
    /// A signed target is not usable as an image digest.
    #[error("{role}: target {target:?} is invalid: {reason}")]
    InvalidTarget {
        /// Role.
        role: String,
        /// Target (tag) name.
        target: String,
        /// Why, e.g. `no valid hash, expecting sha256` (docker's words).
        reason: String,
    },
    /// More signatures or keys than any honest repository has: refused before any expensive
    /// check, so a hostile file cannot cost unbounded CPU.
    #[error("{role}: {found} {what}, more than the {limit} allowed")]
    TooMany {
        /// Role.
        role: String,
        /// `signatures` or `key IDs`.
        what: &'static str,
        /// Found.
        found: usize,
        /// Limit.
        limit: usize,
    },
    /// Invalid delegation structure.
    #[error("{role}: invalid delegation: {reason}")]
    BadDelegation {
        /// Role.
        role: String,
        /// Why.
        reason: String,
    },
}

/// A root we trust, with its exact bytes.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// The parsed root.
    pub root: Root,
    /// The exact file bytes.
    pub bytes: Vec<u8>,
}

/// How the first root of a repository is trusted.
#[derive(Debug, Clone, Default)]
pub enum RootTrust {
    /// Trust on first use (docker's behaviour).
    #[default]
    Tofu,
    /// Only roots whose root certificate key ID is one of these.
    PinnedCertIds(Vec<String>),
    /// Only roots whose leaf certificate chains to one of these CA certificates.
    PinnedCa(Vec<x509_cert::Certificate>),
}

fn check_type(role: &str, found: &str, expected: &'static str) -> Result<(), VerifyError> {
    if found != expected {
        return Err(VerifyError::WrongType {
            role: role.to_string(),
            found: found.to_string(),
            expected,
        });
    }
    Ok(())
}

fn check_expiry(
    role: &str,
    expires: &super::metadata::Expires,
    now: OffsetDateTime,
) -> Result<(), VerifyError> {
    if expires.0 <= now {
        return Err(VerifyError::Expired {
            role: role.to_string(),
            expires: expires.to_go_string(),
        });
    }
    Ok(())
}

fn check_version(role: &str, version: u64, trusted: Option<u64>) -> Result<(), VerifyError> {
    if version < 1 {
        return Err(VerifyError::BadRoot(format!(
            "{role} version must be at least 1"
        )));
    }
    if let Some(t) = trusted
        && version < t
    {
        return Err(VerifyError::Rollback {
            role: role.to_string(),
            trusted: t,
            new: version,
        });
    }
    Ok(())
}

/// Signatures one file may carry. Notary writes one per signing key; a root rotation with
/// `--legacy` adds a few. More is hostile.
pub const MAX_SIGNATURES: usize = 64;

/// Key IDs one role may list (root's roles and delegations alike).
pub const MAX_ROLE_KEYS: usize = 64;

fn check_counts(role: &str, signatures: usize, keyids: usize) -> Result<(), VerifyError> {
    let too_many = |what, found, limit| VerifyError::TooMany {
        role: role.to_string(),
        what,
        found,
        limit,
    };
    if signatures > MAX_SIGNATURES {
        return Err(too_many("signatures", signatures, MAX_SIGNATURES));
    }
    if keyids > MAX_ROLE_KEYS {
        return Err(too_many("key IDs", keyids, MAX_ROLE_KEYS));
    }
    Ok(())
}

/// Counts distinct authorised key IDs with a valid signature over `file`'s canonical bytes.
/// The work is bounded by [`MAX_SIGNATURES`] and [`MAX_ROLE_KEYS`], checked first.
pub fn count_valid_signatures(
    role: &str,
    file: &SignedFile,
    keys: &BTreeMap<String, PublicKey>,
    authorised: &BTreeSet<&str>,
) -> Result<usize, VerifyError> {
    check_counts(role, file.signatures.len(), authorised.len())?;
    let msg = file.canonical_signed(role)?;
    count_valid_over(role, &file.signatures, Some(&msg), keys, authorised)
}

thread_local! {
    static SIGNATURE_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many signatures this thread has checked: lets tests tell the warm path that skips the
/// targets signatures of an unchanged, fully verified set from the one that checks them.
#[doc(hidden)]
pub fn signature_checks() -> u64 {
    SIGNATURE_CHECKS.with(|c| c.get())
}

/// Counts distinct authorised key IDs whose signature in `signatures` is valid over `msg`.
/// With no `msg` (bytes whose signatures already verified, [`verify_targets_presigned`]) the
/// signatures are counted by who made them, without the cryptography: the authorisation
/// (key ID listed, key present, key ID matching its content) is checked all the same.
fn count_valid_over(
    role: &str,
    signatures: &[Signature],
    msg: Option<&[u8]>,
    keys: &BTreeMap<String, PublicKey>,
    authorised: &BTreeSet<&str>,
) -> Result<usize, VerifyError> {
    let mut valid = BTreeSet::new();
    for sig in signatures {
        if !authorised.contains(sig.keyid.as_str()) || valid.contains(sig.keyid.as_str()) {
            continue;
        }
        let Some(key) = keys.get(&sig.keyid) else {
            continue;
        };
        if key.id() != sig.keyid {
            return Err(VerifyError::KeyIdMismatch {
                role: role.to_string(),
                keyid: sig.keyid.clone(),
            });
        }
        let Some(msg) = msg else {
            valid.insert(sig.keyid.as_str());
            continue;
        };
        SIGNATURE_CHECKS.with(|c| c.set(c.get() + 1));
        if key.verify(&sig.method, msg, &sig.sig.0).is_ok() {
            valid.insert(sig.keyid.as_str());
        }
    }
    Ok(valid.len())
}

/// `valid` signatures meet `threshold` (a threshold of 0 is never met).
fn meets_threshold(role: &str, valid: usize, threshold: u32) -> Result<(), VerifyError> {
    if threshold == 0 || valid < threshold as usize {
        return Err(VerifyError::Threshold {
            role: role.to_string(),
            valid,
            threshold,
        });
    }
    Ok(())
}

fn check_threshold(
    role: &str,
    file: &SignedFile,
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
) -> Result<(), VerifyError> {
    let authorised: BTreeSet<&str> = keyids.iter().map(String::as_str).collect();
    let valid = count_valid_signatures(role, file, keys, &authorised)?;
    meets_threshold(role, valid, threshold)
}

/// [`check_threshold`] for a file read by [`RawSigned`]: the signatures are checked over the
/// served `signed` bytes, which is all the work when the signer wrote them canonically (the
/// bytes then are the canonical form, and no re-encoding can differ from what was signed).
/// Otherwise (Go HTML-escapes `<`, `>` and `&` inside the file) they are checked over the
/// canonical form, as Notary does. Either way the bytes a signature covers are the bytes the
/// typed role is read from, and the threshold is met by one message alone.
///
/// Without `crypto` (a presigned role) the threshold is counted from the authorised signers
/// alone.
fn check_threshold_raw(
    role: &str,
    file: &RawSigned<'_>,
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
    crypto: bool,
) -> Result<(), VerifyError> {
    let authorised: BTreeSet<&str> = keyids.iter().map(String::as_str).collect();
    check_counts(role, file.signatures.len(), authorised.len())?;
    let served = file.signed.as_bytes();
    let mut valid = count_valid_over(
        role,
        &file.signatures,
        crypto.then_some(served),
        keys,
        &authorised,
    )?;
    if crypto && (threshold == 0 || valid < threshold as usize) {
        let canonical = file.canonical_signed(role)?;
        if canonical != served {
            valid = valid.max(count_valid_over(
                role,
                &file.signatures,
                Some(&canonical),
                keys,
                &authorised,
            )?);
        }
    }
    meets_threshold(role, valid, threshold)
}

/// Checks hashes and length of `bytes` against `meta` from `parent`.
pub fn check_file_meta(
    role: &str,
    parent: &'static str,
    meta: &FileMeta,
    bytes: &[u8],
) -> Result<(), VerifyError> {
    if meta.length >= 0 && bytes.len() as u64 > meta.length as u64 {
        return Err(VerifyError::LengthMismatch {
            role: role.to_string(),
            parent,
            expected: meta.length as u64,
            found: bytes.len() as u64,
        });
    }
    let checked = check_hashes(role, parent, meta, bytes, |_| true)?;
    require_hashes(role, parent, meta, checked)
}

/// Checks the hashes of `meta` whose algorithm `which` picks and this code knows (sha256, in
/// map order before sha512); returns how many it checked.
fn check_hashes(
    role: &str,
    parent: &'static str,
    meta: &FileMeta,
    bytes: &[u8],
    which: impl Fn(&str) -> bool,
) -> Result<usize, VerifyError> {
    let mut checked = 0;
    for (alg, expected) in meta.hashes.iter().filter(|(alg, _)| which(alg)) {
        let found = match alg.as_str() {
            "sha256" => Sha256::digest(bytes).to_vec(),
            "sha512" => Sha512::digest(bytes).to_vec(),
            _ => continue,
        };
        if found != expected.0 {
            return Err(VerifyError::HashMismatch {
                role: role.to_string(),
                parent,
                algorithm: alg.clone(),
                expected: hex::encode(&expected.0),
                found: hex::encode(found),
            });
        }
        checked += 1;
    }
    Ok(checked)
}

/// A file is accepted only under a sha256 of it, and only after at least one hash was checked.
fn require_hashes(
    role: &str,
    parent: &'static str,
    meta: &FileMeta,
    checked: usize,
) -> Result<(), VerifyError> {
    if checked == 0 || meta.sha256().is_none() {
        return Err(VerifyError::MissingMeta {
            role: role.to_string(),
            parent,
        });
    }
    Ok(())
}

fn root_structure(root: &Root) -> Result<(), VerifyError> {
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let r = root
            .roles
            .get(role)
            .ok_or_else(|| VerifyError::BadRoot(format!("role {role} is missing")))?;
        if r.threshold < 1 {
            return Err(VerifyError::BadRoot(format!("role {role} has threshold 0")));
        }
        if r.keyids.len() > MAX_ROLE_KEYS {
            // Before any certificate is parsed: a hostile first root costs at most this many.
            return Err(VerifyError::TooMany {
                role: role.to_string(),
                what: "key IDs",
                found: r.keyids.len(),
                limit: MAX_ROLE_KEYS,
            });
        }
        for id in &r.keyids {
            if !root.keys.contains_key(id) {
                return Err(VerifyError::BadRoot(format!(
                    "role {role} lists key {id}, which is not in keys"
                )));
            }
        }
    }
    Ok(())
}

/// The root keys of `root` whose certificates pass the rules for `gun`.
fn valid_root_keyids(
    root: &Root,
    gun: &str,
    now: OffsetDateTime,
    check_expiry: bool,
) -> Result<Vec<String>, VerifyError> {
    let mut valid = Vec::new();
    let mut last_err = None;
    for id in &root.roles["root"].keyids {
        match x509::check_root_key(id, &root.keys[id], gun, now, check_expiry) {
            Ok(()) => valid.push(id.clone()),
            Err(e) => last_err = Some(e),
        }
    }
    match (valid.is_empty(), last_err) {
        (true, Some(e)) => Err(VerifyError::RootCertificate(e)),
        (true, None) => Err(VerifyError::BadRoot("no root keys".into())),
        _ => Ok(valid),
    }
}

/// Checks that `root` is signed by a threshold of its own root keys among `valid`.
fn check_self_signed(file: &SignedFile, root: &Root, valid: &[String]) -> Result<(), VerifyError> {
    check_threshold(
        "root",
        file,
        &root.keys,
        valid,
        root.roles["root"].threshold,
    )
}

fn parse_root(bytes: &[u8]) -> Result<(SignedFile, Root), VerifyError> {
    let file = SignedFile::parse("root", bytes)?;
    let root: Root = file.typed("root")?;
    check_type("root", &root.typ, role_type::ROOT)?;
    root_structure(&root)?;
    Ok((file, root))
}

/// The root keys among `valid` that `trust`'s pinning accepts (all of them on first use).
fn pinned_keyids(
    root: &Root,
    valid: Vec<String>,
    trust: &RootTrust,
    now: OffsetDateTime,
) -> Result<Vec<String>, VerifyError> {
    match trust {
        RootTrust::Tofu => Ok(valid),
        RootTrust::PinnedCertIds(ids) => {
            let pinned: Vec<String> = valid.iter().filter(|v| ids.contains(v)).cloned().collect();
            if pinned.is_empty() {
                return Err(VerifyError::Pinning(format!(
                    "root certificate key IDs {valid:?} are not among the pinned {ids:?}"
                )));
            }
            Ok(pinned)
        }
        RootTrust::PinnedCa(cas) => {
            let pinned: Vec<String> = valid
                .iter()
                .filter(|id| x509::chains_to(&root.keys[*id], cas, now))
                .cloned()
                .collect();
            if pinned.is_empty() {
                return Err(VerifyError::Pinning(
                    "no root certificate is issued by the pinned CA".into(),
                ));
            }
            Ok(pinned)
        }
    }
}

/// Trusts a repository's first root (no root cached): self-signed by a threshold of its root
/// certificates for `gun`, not expired, and matching the pinning if any.
pub fn trust_first_root(
    gun: &str,
    bytes: &[u8],
    now: OffsetDateTime,
    trust: &RootTrust,
) -> Result<TrustedRoot, VerifyError> {
    let (file, root) = parse_root(bytes)?;
    let valid = valid_root_keyids(&root, gun, now, true)?;
    let valid = pinned_keyids(&root, valid, trust, now)?;
    check_self_signed(&file, &root, &valid)?;
    check_version("root", root.version, None)?;
    check_expiry("root", &root.expires, now)?;
    Ok(TrustedRoot {
        root,
        bytes: bytes.to_vec(),
    })
}

/// Loads a root from our own cache: it was verified when written, but the file could have been
/// edited, so its self-signatures are checked again; expiry is not (a newer root may follow).
pub fn load_cached_root(
    gun: &str,
    bytes: &[u8],
    now: OffsetDateTime,
) -> Result<TrustedRoot, VerifyError> {
    let (file, root) = parse_root(bytes)?;
    let valid = valid_root_keyids(&root, gun, now, false)?;
    check_self_signed(&file, &root, &valid)?;
    Ok(TrustedRoot {
        root,
        bytes: bytes.to_vec(),
    })
}

/// Accepts `bytes` as the successor of `prev`: signed by a threshold of `prev`'s root keys and
/// of its own, a higher version, valid certificates. The final root of a chain (`Some(trust)`)
/// must also be unexpired and, as a first root would, satisfy the trust pinning: a pin holds
/// across rotations. Intermediate roots (`None`) may have expired since.
pub fn rotate_root(
    prev: &TrustedRoot,
    gun: &str,
    bytes: &[u8],
    now: OffsetDateTime,
    final_root: Option<&RootTrust>,
) -> Result<TrustedRoot, VerifyError> {
    let (file, root) = parse_root(bytes)?;
    if root.version <= prev.root.version {
        return Err(VerifyError::Rollback {
            role: "root".into(),
            trusted: prev.root.version,
            new: root.version,
        });
    }
    let prev_role = &prev.root.roles["root"];
    let authorised: BTreeSet<&str> = prev_role.keyids.iter().map(String::as_str).collect();
    let valid_old = count_valid_signatures("root", &file, &prev.root.keys, &authorised)?;
    if valid_old < prev_role.threshold as usize {
        return Err(VerifyError::UntrustedRoot {
            version: root.version,
            valid: valid_old,
            threshold: prev_role.threshold,
        });
    }
    let valid = valid_root_keyids(&root, gun, now, final_root.is_some())?;
    let valid = match final_root {
        Some(trust) => pinned_keyids(&root, valid, trust, now)?,
        None => valid,
    };
    check_self_signed(&file, &root, &valid)?;
    if final_root.is_some() {
        check_expiry("root", &root.expires, now)?;
    }
    Ok(TrustedRoot {
        root,
        bytes: bytes.to_vec(),
    })
}

/// Verifies timestamp.json against the trusted root.
pub fn verify_timestamp(
    root: &Root,
    bytes: &[u8],
    now: OffsetDateTime,
    trusted_version: Option<u64>,
) -> Result<Timestamp, VerifyError> {
    let file = RawSigned::parse("timestamp", bytes)?;
    let ts: Timestamp = file.typed("timestamp")?;
    let role = &root.roles["timestamp"];
    check_threshold_raw(
        "timestamp",
        &file,
        &root.keys,
        &role.keyids,
        role.threshold,
        true,
    )?;
    check_type("timestamp", &ts.typ, role_type::TIMESTAMP)?;
    if ts.meta.get("snapshot").and_then(FileMeta::sha256).is_none() {
        return Err(VerifyError::MissingMeta {
            role: "snapshot".into(),
            parent: "timestamp",
        });
    }
    check_version("timestamp", ts.version, trusted_version)?;
    check_expiry("timestamp", &ts.expires, now)?;
    Ok(ts)
}

/// Verifies snapshot.json: bytes as the timestamp describes, signed by root's snapshot keys.
pub fn verify_snapshot(
    root: &Root,
    timestamp: &Timestamp,
    bytes: &[u8],
    now: OffsetDateTime,
    trusted_version: Option<u64>,
) -> Result<Snapshot, VerifyError> {
    check_file_meta("snapshot", "timestamp", &timestamp.meta["snapshot"], bytes)?;
    let file = RawSigned::parse("snapshot", bytes)?;
    let snap: Snapshot = file.typed("snapshot")?;
    let role = &root.roles["snapshot"];
    check_threshold_raw(
        "snapshot",
        &file,
        &root.keys,
        &role.keyids,
        role.threshold,
        true,
    )?;
    check_type("snapshot", &snap.typ, role_type::SNAPSHOT)?;
    for required in ["root", "targets"] {
        if snap.meta.get(required).and_then(FileMeta::sha256).is_none() {
            return Err(VerifyError::MissingMeta {
                role: required.into(),
                parent: "snapshot",
            });
        }
    }
    check_version("snapshot", snap.version, trusted_version)?;
    check_expiry("snapshot", &snap.expires, now)?;
    Ok(snap)
}

/// Who may sign a targets role: root's targets keys, or a parent's delegation entry.
#[derive(Debug, Clone)]
pub struct Signers<'a> {
    /// Key material.
    pub keys: &'a BTreeMap<String, PublicKey>,
    /// Authorised key IDs.
    pub keyids: &'a [String],
    /// Threshold.
    pub threshold: u32,
}

/// Verifies a targets role (`targets` or `targets/<x>`): bytes as the snapshot describes, signed
/// by its signers. Which of its targets a delegation may sign is policy ([`super::trusted`]).
pub fn verify_targets(
    role: &str,
    signers: &Signers<'_>,
    snapshot: &Snapshot,
    bytes: &[u8],
    now: OffsetDateTime,
    trusted_version: Option<u64>,
) -> Result<Targets, VerifyError> {
    verify_targets_for(role, signers, snapshot, bytes, now, trusted_version, None)
}

/// [`verify_targets`], keeping in the result only `only`'s entry when given. Every check is the
/// same (hashes, length, signatures over the whole `signed`, type, version, expiry,
/// delegations); only the other tags' entries are not built.
pub fn verify_targets_for(
    role: &str,
    signers: &Signers<'_>,
    snapshot: &Snapshot,
    bytes: &[u8],
    now: OffsetDateTime,
    trusted_version: Option<u64>,
    only: Option<&str>,
) -> Result<Targets, VerifyError> {
    verify_targets_checked(
        role,
        signers,
        true,
        snapshot,
        bytes,
        now,
        trusted_version,
        only,
    )
}

/// [`verify_targets_for`] for a cached role whose signatures already verified over these very
/// bytes under these very parents (the trust core decides when, [`super::trusted`]): every
/// other check is made (hashes and length against the snapshot, type, version, expiry,
/// delegations, and a threshold of signatures by the keys `signers` authorises now), only the
/// cryptography of those signatures is not done again.
pub(crate) fn verify_targets_presigned(
    role: &str,
    signers: &Signers<'_>,
    snapshot: &Snapshot,
    bytes: &[u8],
    now: OffsetDateTime,
    trusted_version: Option<u64>,
    only: Option<&str>,
) -> Result<Targets, VerifyError> {
    verify_targets_checked(
        role,
        signers,
        false,
        snapshot,
        bytes,
        now,
        trusted_version,
        only,
    )
}

#[allow(clippy::too_many_arguments)]
fn verify_targets_checked(
    role: &str,
    signers: &Signers<'_>,
    crypto: bool,
    snapshot: &Snapshot,
    bytes: &[u8],
    now: OffsetDateTime,
    trusted_version: Option<u64>,
    only: Option<&str>,
) -> Result<Targets, VerifyError> {
    let meta = snapshot
        .meta
        .get(role)
        .ok_or_else(|| VerifyError::MissingMeta {
            role: role.to_string(),
            parent: "snapshot",
        })?;
    // Longer than the snapshot allows is refused before anything is parsed.
    let length_ok = meta.length < 0 || bytes.len() as u64 <= meta.length as u64;
    let targets = if bytes.len() < PARALLEL_HASH_MIN || !length_ok {
        check_file_meta(role, "snapshot", meta, bytes)?;
        signed_targets(role, signers, crypto, bytes, only)?
    } else {
        // A big role (10,000 tags are 0.9 MB) is checked on two threads: the same checks, in
        // less wall time on two cores. sha512 (about three times sha256's time) runs on the
        // second; sha256, the parse and the signatures on this one. Errors come in the order
        // check_file_meta gives them: sha256, sha512, a missing hash, and only then anything
        // the parse found (a hash mismatch makes the caller re-fetch). The role is used only
        // when everything passed.
        std::thread::scope(|s| {
            let others = |alg: &str| alg != "sha256";
            let hashing = std::thread::Builder::new().spawn_scoped(s, move || {
                check_hashes(role, "snapshot", meta, bytes, others)
            });
            let Ok(hashing) = hashing else {
                check_file_meta(role, "snapshot", meta, bytes)?;
                return signed_targets(role, signers, crypto, bytes, only);
            };
            let sha256 = check_hashes(role, "snapshot", meta, bytes, |alg| alg == "sha256");
            let parsed = signed_targets(role, signers, crypto, bytes, only);
            let others = match hashing.join() {
                Ok(others) => others,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            require_hashes(role, "snapshot", meta, sha256? + others?)?;
            parsed
        })?
    };
    check_type(role, &targets.typ, role_type::TARGETS)?;
    check_version(role, targets.version, trusted_version)?;
    check_expiry(role, &targets.expires, now)?;
    for d in &targets.delegations.roles {
        check_delegation(role, d, &targets)?;
    }
    Ok(targets)
}

/// Roles at least this big are hashed on a second thread ([`verify_targets_for`]).
const PARALLEL_HASH_MIN: usize = 256 * 1024;

/// The envelope of a targets role, its signatures by `signers` (counted by signer alone
/// without `crypto`), and the role read from the bytes they cover.
fn signed_targets(
    role: &str,
    signers: &Signers<'_>,
    crypto: bool,
    bytes: &[u8],
    only: Option<&str>,
) -> Result<Targets, VerifyError> {
    let file = RawSigned::parse(role, bytes)?;
    check_threshold_raw(
        role,
        &file,
        signers.keys,
        signers.keyids,
        signers.threshold,
        crypto,
    )?;
    Ok(file.targets(role, only)?)
}

fn check_delegation(parent: &str, d: &DelegatedRole, targets: &Targets) -> Result<(), VerifyError> {
    let bad = |reason: String| VerifyError::BadDelegation {
        role: d.name.clone(),
        reason,
    };
    let valid_name = d.name.len() < 256
        && d.name.starts_with("targets/")
        && d.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_/".contains(&b))
        && !d.name.ends_with('/')
        && !d.name.contains("//")
        && !d.name.split('/').any(|c| c == "." || c == "..");
    if !valid_name {
        return Err(bad("invalid role name".into()));
    }
    let direct_parent = d.name.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    if direct_parent != parent {
        return Err(bad(format!(
            "declared in {parent}, which is not its parent"
        )));
    }
    for id in d.keyids.iter().flatten() {
        if !targets.delegations.keys.contains_key(id) {
            return Err(bad(format!("key {id} is not in the delegation keys")));
        }
    }
    Ok(())
}

/// Paths a delegation may sign, cut down to what its parent may sign
/// (`RestrictDelegationPathPrefixes`).
pub fn restrict_paths(parent: Option<&[String]>, child: &[String]) -> Vec<String> {
    match parent {
        None => child.to_vec(),
        Some(parent) => child
            .iter()
            .filter(|c| parent.iter().any(|p| c.starts_with(p.as_str())))
            .cloned()
            .collect(),
    }
}
