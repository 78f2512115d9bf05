//! Signer (delegation) keys as docker handles them: `docker trust key generate NAME` makes an
//! ECDSA P-256 key labelled with the bare signer name and writes `NAME.pub`; `docker trust key
//! load` stores a private key file under a signer name; `docker trust signer add --key NAME.pub`
//! reads the public half. The keyring keeps such keys as `key:<ID>` entries whose label is the
//! signer name, so signing finds them by the key IDs a delegation lists.

use std::path::{Path, PathBuf};

use super::KeystoreError;
use super::export::{self, ExportError};
use super::import::{Decoded, ImportError, Outcome};
use super::keys::{self, KeyLabel, KeyName, SigningKey};
use crate::tuf::keys::{PublicKey, keytype};

/// The largest public key file read: a PEM public key is well under 1 KiB.
const MAX_PUBLIC_FILE: u64 = 64 * 1024;

/// Roles that belong to a repository rather than to a signer.
const BASE_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Why a signer key could not be made, loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum SignerKeyError {
    /// The name breaks docker's rule, so docker could not use it either.
    #[error(
        "{what} name {name:?} is refused: it must start with a lowercase letter or digit and contain only lowercase letters, digits, '-' and '_' (docker's rule). Nothing was changed"
    )]
    BadName {
        /// "key" or "signer".
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// `releases` names the role every signer's key is added to.
    #[error(
        "\"releases\" is reserved: targets/releases is the role that holds every signer's keys, so it cannot be a signer's own name. Choose another name. Nothing was changed"
    )]
    Reserved,
    /// The directory for `NAME.pub` is missing.
    #[error(
        "the public key directory {path} does not exist or is not a directory; nothing was generated. Create it or pass another --dir"
    )]
    NoDir {
        /// The directory.
        path: String,
    },
    /// `NAME.pub` is there already; docker refuses too, so no key file is replaced.
    #[error("{path} exists; nothing was generated. Remove it, or pass another --dir or name")]
    PublicExists {
        /// The file.
        path: String,
    },
    /// Writing `NAME.pub` failed; the key made for it was removed again.
    #[error(
        "cannot write {path}: {reason}. The new key was removed from the keyring again; nothing was changed"
    )]
    Write {
        /// The file.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// A `--key` file that is not a usable public key.
    #[error("{path}: {reason}. Nothing was changed")]
    BadPublic {
        /// The file.
        path: String,
        /// What is wrong and what to give instead.
        reason: String,
    },
    /// A private key file that anyone but its owner can read, which docker refuses too.
    #[error(
        "{path} is readable or writable by other users (mode {mode:o}); a private key must not be. Nothing was loaded. Run: chmod 600 {path}"
    )]
    OpenKeyFile {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// `key load` of a repository's own key (root, targets, snapshot, timestamp).
    #[error(
        "{path} holds the {role} key{gun}, not a signer key; `key load` stores signer keys only. Nothing was loaded. Bring a repository's own keys in with `docker trustacr key import {path}`"
    )]
    NotSignerKey {
        /// The file.
        path: String,
        /// The role its header names.
        role: String,
        /// " of GUN", when it names one.
        gun: String,
    },
    /// `key load` of a file with more than one key: the name would be given to all of them.
    #[error(
        "{path} holds {count} keys; `key load` takes a file with one signer key. Nothing was loaded. Use `docker trustacr key import {path}` for a backup of several keys"
    )]
    SeveralKeys {
        /// The file.
        path: String,
        /// How many blocks it has.
        count: usize,
    },
    /// Reading or decrypting the private key file failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Import(Vec<ImportError>),
    /// The keyring failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
}

/// docker's rule for key and signer names (`^[a-z0-9][a-z0-9_-]*$`, `cli/command/trust`).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a signer name as `docker trust signer add` does.
pub fn check_signer_name(name: &str) -> Result<(), SignerKeyError> {
    if !valid_name(name) {
        return Err(SignerKeyError::BadName {
            what: "signer",
            name: name.to_string(),
        });
    }
    if name == "releases" {
        return Err(SignerKeyError::Reserved);
    }
    Ok(())
}

/// The public key file docker writes for a signer key: PEM `PUBLIC KEY` (SPKI DER) with a
/// `role: NAME` header.
pub fn public_pem(key: &SigningKey, name: &str) -> Result<String, String> {
    let public = key.public();
    if public.keytype != keytype::ECDSA {
        return Err("only ECDSA signer keys have a docker public key file".into());
    }
    export::pem_text("PUBLIC KEY", &[("role", name)], &public.public)
}

/// A generated signer key: its ID and the public key file written for it.
#[derive(Debug)]
pub struct Generated {
    /// The key ID (canonical: the key is a bare ECDSA key).
    pub id: String,
    /// `DIR/NAME.pub`.
    pub public_file: PathBuf,
}

/// `key generate NAME`: a new ECDSA P-256 key in the keyring labelled NAME, and `DIR/NAME.pub`.
/// Everything that can be checked is checked first; if the public file cannot be written the
/// key is removed again, so a failure leaves no key nobody has the public half of.
pub fn generate(name: &str, dir: &Path) -> Result<Generated, SignerKeyError> {
    if !valid_name(name) {
        return Err(SignerKeyError::BadName {
            what: "key",
            name: name.to_string(),
        });
    }
    if !dir.is_dir() {
        return Err(SignerKeyError::NoDir {
            path: dir.display().to_string(),
        });
    }
    let public_file = dir.join(format!("{name}.pub"));
    if std::fs::symlink_metadata(&public_file).is_ok() {
        return Err(SignerKeyError::PublicExists {
            path: public_file.display().to_string(),
        });
    }
    let key = SigningKey::generate_p256()?;
    let id = key.public().id();
    let text = public_pem(&key, name).map_err(|reason| SignerKeyError::Write {
        path: public_file.display().to_string(),
        reason,
    })?;
    let entry = KeyName::Id { id: id.clone() };
    let label = KeyLabel {
        role: name.to_string(),
        gun: None,
    };
    keys::put_labeled(&entry, &key, Some(&label))?;
    if let Err(e) = export::write_private_file(&public_file, &text, false) {
        let _ = keys::delete(&entry);
        return Err(match e {
            ExportError::Exists { path } => SignerKeyError::PublicExists { path },
            other => SignerKeyError::Write {
                path: public_file.display().to_string(),
                reason: other.to_string(),
            },
        });
    }
    Ok(Generated { id, public_file })
}

/// Reads a signer's public key file (`--key` of `signer add`): PEM `PUBLIC KEY` holding an
/// ECDSA P-256 or RSA key, as docker accepts. The `role` header is not trusted for anything.
pub fn read_public(path: &Path) -> Result<PublicKey, SignerKeyError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let bad = |reason: String| SignerKeyError::BadPublic {
        path: shown.clone(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PUBLIC_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read it ({e})")))?;
    if bytes.len() as u64 > MAX_PUBLIC_FILE {
        return Err(bad(format!(
            "larger than {MAX_PUBLIC_FILE} bytes, so not a public key file"
        )));
    }
    let pems = pem::parse_many(&bytes).map_err(|e| bad(format!("not PEM ({e})")))?;
    let [block] = pems.as_slice() else {
        return Err(bad(format!(
            "{} PEM blocks; a public key file has exactly one",
            pems.len()
        )));
    };
    match block.tag() {
        "PUBLIC KEY" => {}
        t if t.contains("PRIVATE KEY") => {
            return Err(bad(
                "a private key: give the signer's public key file (NAME.pub), and keep the private key to its owner"
                    .into(),
            ));
        }
        t => {
            return Err(bad(format!(
                "a {t:?} PEM block, not a PUBLIC KEY (docker trust key generate and key generate write NAME.pub)"
            )));
        }
    }
    let der_bytes = block.contents();
    let spki = spki::SubjectPublicKeyInfoRef::try_from(der_bytes)
        .map_err(|e| bad(format!("not a SubjectPublicKeyInfo ({e})")))?;
    let alg = spki.algorithm.oid.to_string();
    match alg.as_str() {
        "1.2.840.10045.2.1" => {
            use spki::DecodePublicKey;
            p256::ecdsa::VerifyingKey::from_public_key_der(der_bytes).map_err(|_| {
                bad("an ECDSA key not on the P-256 curve, which notary cannot use".into())
            })?;
            Ok(PublicKey::new(keytype::ECDSA, der_bytes.to_vec()))
        }
        "1.2.840.113549.1.1.1" => Ok(PublicKey::new(keytype::RSA, der_bytes.to_vec())),
        "1.3.101.112" => Err(bad(
            "an RFC 8410 Ed25519 key, which docker and notary do not accept for signers; generate one with `docker trustacr key generate NAME`".into(),
        )),
        other => Err(bad(format!("a key of algorithm {other}, not ECDSA P-256 or RSA"))),
    }
}

/// A private key file, decrypted and labelled for `key load`: refused unless it is one signer
/// key in a file only its owner can read.
pub fn check_loadable(
    path: &Path,
    name: Option<&str>,
    decode: impl FnOnce(&Path) -> Result<Vec<Decoded>, Vec<ImportError>>,
) -> Result<Decoded, SignerKeyError> {
    let shown = path.display().to_string();
    if let Some(n) = name
        && !valid_name(n)
    {
        return Err(SignerKeyError::BadName {
            what: "key",
            name: n.to_string(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            SignerKeyError::Import(vec![ImportError::Read {
                path: shown.clone(),
                reason: e.to_string(),
            }])
        })?;
        if !meta.is_file() {
            return Err(SignerKeyError::Import(vec![ImportError::Read {
                path: shown,
                reason: "not a regular file; `key load` takes one key file".into(),
            }]));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SignerKeyError::OpenKeyFile { path: shown, mode });
        }
    }
    let mut decoded = decode(path).map_err(SignerKeyError::Import)?;
    if decoded.len() != 1 {
        return Err(SignerKeyError::SeveralKeys {
            path: shown,
            count: decoded.len(),
        });
    }
    let mut d = decoded.remove(0);
    let header_role = d.label.role.clone();
    if BASE_ROLES.contains(&header_role.as_str()) || d.label.gun.is_some() {
        return Err(SignerKeyError::NotSignerKey {
            path: shown,
            role: header_role,
            gun: d
                .label
                .gun
                .as_ref()
                .map(|g| format!(" of {g}"))
                .unwrap_or_default(),
        });
    }
    let role = match name {
        Some(n) => n.to_string(),
        // A notary delegation key names its role `targets/NAME`; docker's signer keys the bare
        // name; a key without a role header is docker's default signer.
        None => {
            let bare = header_role
                .strip_prefix("targets/")
                .unwrap_or(&header_role)
                .to_string();
            if bare.is_empty() || bare == "unknown-role" {
                "signer".to_string()
            } else {
                bare
            }
        }
    };
    if !valid_name(&role) {
        return Err(SignerKeyError::BadName {
            what: "key",
            name: role,
        });
    }
    d.label = KeyLabel { role, gun: None };
    Ok(d)
}

/// Stores a checked signer key (see [`check_loadable`]).
pub fn store(d: &Decoded) -> Result<Outcome, SignerKeyError> {
    super::import::store_all(std::slice::from_ref(d))
        .map_err(|e| SignerKeyError::Import(vec![e]))?
        .pop()
        .ok_or_else(|| SignerKeyError::Import(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["alice", "a", "0", "bob-2", "ci_signer"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-a",
            "_a",
            "a.b",
            "a/b",
            "a b",
            "ä",
            "targets/x",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(matches!(
            check_signer_name("releases"),
            Err(SignerKeyError::Reserved)
        ));
    }

    #[test]
    fn public_file_is_dockers_pem_and_reads_back_with_the_same_id() {
        let key = SigningKey::generate_p256().unwrap();
        let text = public_pem(&key, "alice").unwrap();
        assert!(
            text.starts_with("-----BEGIN PUBLIC KEY-----\nrole: alice\n\n"),
            "{text}"
        );
        assert!(text.ends_with("-----END PUBLIC KEY-----\n"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alice.pub");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_public(&p).unwrap().id(), key.public().id());
    }
}
