//! Writing keys in docker's and notary's own file format, so a backup made here loads with
//! `notary key import` and `docker trust key load`, and with `key import` here.
//!
//! Each key is one `ENCRYPTED PRIVATE KEY` PEM block with the headers notary reads (`path`: the
//! key ID, `role`, and `gun` for repository keys), PBES2 with PBKDF2-HMAC-SHA1 (2048 rounds,
//! 8-byte salt) and AES-256-CBC, around notary's PKCS#8 layout. That KDF is weak by today's
//! standard, but it is the only one notary and docker read; the passphrase carries the strength.

use std::io::Write;
use std::path::Path;

use der::Encode;
use pkcs5::pbes2::{EncryptionScheme, Parameters, Pbkdf2Params, Pbkdf2Prf};
use zeroize::Zeroizing;

use super::KeystoreError;
use super::keys::{KeyLabel, SigningKey};

/// notary's PBKDF2 round count (`tuf/utils/pkcs8.go`).
const ROUNDS: u32 = 2048;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file exists and `--force` was not given.
    #[error(
        "{path} exists; nothing was written. Choose another file or pass --force to replace it"
    )]
    Exists {
        /// The file.
        path: String,
    },
    /// Writing failed; the destination is unchanged.
    #[error("cannot write {path}: {reason}. The file was not changed")]
    Write {
        /// The file.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// Encryption failed.
    #[error("cannot encrypt the {role} key {id}: {reason}")]
    Encrypt {
        /// Role.
        role: String,
        /// Key ID.
        id: String,
        /// Why.
        reason: String,
    },
    /// No passphrase in the environment and no terminal to ask on.
    #[error(
        "no passphrase to encrypt the {role} key {id}: set {vars}, or run on a terminal to be asked. Nothing was written"
    )]
    NoPassphrase {
        /// Role.
        role: String,
        /// Key ID.
        id: String,
        /// Variables read.
        vars: String,
    },
    /// A passphrase typed on the terminal was refused.
    #[error("{0}. Nothing was written")]
    BadPassphrase(String),
    /// Nothing matched the selection.
    #[error(
        "no key in the keyring matches {0}; `docker trustacr key list` shows what it holds. Nothing was written"
    )]
    NoKeys(String),
    /// No randomness, or another keyring-level failure.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
}

/// DER TLV with a definite length.
fn tlv(tag: u8, value: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// A zeroizing buffer big enough that pushing never reallocates (and leaves no copy behind).
fn buf() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(Vec::with_capacity(512))
}

/// The unencrypted PKCS#8 notary writes (`convertTUFKeyToPKCS8`).
fn notary_pkcs8(key: &SigningKey) -> Zeroizing<Vec<u8>> {
    let oid = |o: &str| {
        let mut v = Vec::new();
        tlv(
            0x06,
            der::asn1::ObjectIdentifier::new_unwrap(o).as_bytes(),
            &mut v,
        );
        v
    };
    let mut body = buf();
    match key {
        SigningKey::P256(k) => {
            let scalar = Zeroizing::new(k.to_bytes());
            let point = k.verifying_key().to_sec1_point(false);
            let mut sec1 = buf();
            let mut inner = buf();
            tlv(0x02, &[1], &mut inner);
            tlv(0x04, scalar.as_slice(), &mut inner);
            tlv(0xa0, &oid("1.2.840.10045.3.1.7"), &mut inner);
            let mut bits = vec![0u8];
            bits.extend_from_slice(point.as_bytes());
            let mut bitstring = Vec::new();
            tlv(0x03, &bits, &mut bitstring);
            tlv(0xa1, &bitstring, &mut inner);
            tlv(0x30, &inner, &mut sec1);
            // Version 1, as notary writes ECDSA keys.
            tlv(0x02, &[1], &mut body);
            let mut alg = oid("1.2.840.10045.2.1");
            alg.extend_from_slice(&oid("1.2.840.10045.3.1.7"));
            tlv(0x30, &alg, &mut body);
            tlv(0x04, &sec1, &mut body);
        }
        SigningKey::Ed25519(k) => {
            let public = k.verifying_key().to_bytes();
            let mut raw = Zeroizing::new([0u8; 96]);
            raw[..32].copy_from_slice(&public);
            raw[32..64].copy_from_slice(k.as_bytes());
            raw[64..].copy_from_slice(&public);
            tlv(0x02, &[0], &mut body);
            let mut alg = Vec::new();
            tlv(0x30, &oid("1.3.6.1.4.1.11591.15.1"), &mut alg);
            body.extend_from_slice(&alg);
            tlv(0x04, raw.as_slice(), &mut body);
        }
        SigningKey::Rsa(k) => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            // Notary writes the AlgorithmIdentifier without the NULL parameter.
            let pkcs1 = k
                .to_pkcs1_der()
                .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
                .unwrap_or_default();
            tlv(0x02, &[0], &mut body);
            let mut alg = Vec::new();
            tlv(0x30, &oid("1.2.840.113549.1.1.1"), &mut alg);
            body.extend_from_slice(&alg);
            tlv(0x04, pkcs1.as_slice(), &mut body);
        }
    }
    let mut out = buf();
    tlv(0x30, &body, &mut out);
    out
}

fn random<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeystoreError::Unreachable {
        detail: format!("no randomness for key encryption: {e}"),
        hint: "check the operating system's random source",
    })?;
    Ok(b)
}

/// One key as notary's encrypted PEM block, with `path`, `role` and (for repository keys)
/// `gun` headers, in Go's sorted order.
pub fn encrypted_pem(
    key: &SigningKey,
    label: &KeyLabel,
    passphrase: &str,
) -> Result<String, ExportError> {
    let id = key.public().id();
    let fail = |reason: String| ExportError::Encrypt {
        role: label.role.clone(),
        id: id.clone(),
        reason,
    };
    let salt: [u8; 8] = random()?;
    let iv: [u8; 16] = random()?;
    let kdf = Pbkdf2Params {
        salt: salt
            .as_slice()
            .try_into()
            .map_err(|e| fail(format!("{e}")))?,
        iteration_count: ROUNDS,
        key_length: None,
        prf: Pbkdf2Prf::HmacWithSha1,
    };
    let params = Parameters {
        kdf: kdf.into(),
        encryption: EncryptionScheme::Aes256Cbc { iv },
    };
    let plain = notary_pkcs8(key);
    let ct = params
        .encrypt(passphrase.as_bytes(), &plain)
        .map_err(|e| fail(e.to_string()))?;
    let alg = pkcs5::EncryptionScheme::from(params)
        .to_der()
        .map_err(|e| fail(e.to_string()))?;
    let mut body = alg;
    tlv(0x04, &ct, &mut body);
    let mut der_bytes = Vec::new();
    tlv(0x30, &body, &mut der_bytes);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    // notary sets gun only for a repository's own roles; Go writes headers sorted.
    if let Some(gun) = label
        .gun
        .as_deref()
        .filter(|_| matches!(label.role.as_str(), "targets" | "snapshot"))
    {
        headers.push(("gun", gun));
    }
    headers.push(("path", &id));
    headers.push(("role", &label.role));
    pem_text("ENCRYPTED PRIVATE KEY", &headers, &der_bytes).map_err(fail)
}

/// One PEM block with headers, as Go's `pem.Encode` writes it (headers in the order given,
/// a blank line, base64 in 64-column lines). Written by hand: the pem crate refuses ':' in
/// header values, and GUNs have ports. Refuses an empty header value or one with a line break.
pub fn pem_text(tag: &str, headers: &[(&str, &str)], der_bytes: &[u8]) -> Result<String, String> {
    let mut out = format!("-----BEGIN {tag}-----\n");
    for (k, v) in headers {
        if v.is_empty() || v.contains(['\n', '\r']) {
            return Err(format!("its {k} {v:?} cannot be a PEM header"));
        }
        out.push_str(&format!("{k}: {v}\n"));
    }
    if !headers.is_empty() {
        out.push('\n');
    }
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der_bytes);
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    Ok(out)
}

/// Writes `text` to `path` with mode 0600, atomically: a temporary file in the same directory
/// is filled and synced, then linked in (refusing an existing file) or, with `force`, renamed
/// over it. A failure leaves `path` as it was.
pub fn write_private_file(path: &Path, text: &str, force: bool) -> Result<(), ExportError> {
    let shown = path.display().to_string();
    let werr = |e: std::io::Error| ExportError::Write {
        path: shown.clone(),
        reason: e.to_string(),
    };
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(ExportError::Exists { path: shown });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: [u8; 8] = random()?;
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if force {
            std::fs::rename(&tmp, path)
        } else {
            // A hard link fails if the name appeared meanwhile, so nothing is overwritten.
            std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
        }
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(ExportError::Exists { path: shown });
        }
        return Err(werr(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::import::{self, Block, Passphrases};

    struct One(&'static str);
    impl Passphrases for One {
        fn known(&mut self, _: &Block) -> Vec<(String, Zeroizing<String>)> {
            vec![("P".into(), Zeroizing::new(self.0.into()))]
        }
        fn ask(&mut self, _: &Block, _: u32) -> std::io::Result<Option<Zeroizing<String>>> {
            Ok(None)
        }
    }

    #[test]
    fn exported_keys_import_back_with_their_id_role_and_gun() {
        for key in [
            SigningKey::generate_p256().unwrap(),
            SigningKey::generate_ed25519().unwrap(),
        ] {
            let label = KeyLabel {
                role: "targets".into(),
                gun: Some("r.example/app".into()),
            };
            let text = encrypted_pem(&key, &label, "passphrase-1").unwrap();
            assert!(
                text.starts_with(
                    "-----BEGIN ENCRYPTED PRIVATE KEY-----\ngun: r.example/app\npath: "
                )
            );
            let blocks =
                import::parse_file("backup", None, KeyLabel::default(), text.as_bytes()).unwrap();
            assert_eq!(
                blocks[0].file_id.as_deref(),
                Some(key.public().id().as_str())
            );
            let back = import::decode_all(&blocks, &mut One("passphrase-1")).unwrap();
            assert_eq!(back[0].key.public(), key.public());
            assert_eq!(back[0].label, label);
            assert!(import::decode_all(&blocks, &mut One("other")).is_err());
        }
    }

    #[test]
    fn export_file_is_private_and_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("backup.pem");
        write_private_file(&p, "one", false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let e = write_private_file(&p, "two", false).unwrap_err();
        assert!(matches!(e, ExportError::Exists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        write_private_file(&p, "two", true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }
}
