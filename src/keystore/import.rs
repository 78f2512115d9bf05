//! Reading the private key files docker and notary write (`~/.docker/trust/private`,
//! `~/.notary/private`, their old `root_keys/` and `tuf_keys/<gun>/` layouts, and files made by
//! `key export`), so existing DCT repositories can be signed from the keyring.
//!
//! Every file is read and every key decrypted before anything is stored: bad input (a wrong
//! passphrase, a damaged or public-key file, an unreadable directory) leaves the keyring as it
//! was. Decrypted key bytes live in zeroizing buffers only.

use std::path::{Path, PathBuf};

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Reader, SliceReader};
use zeroize::Zeroizing;

use super::KeystoreError;
use super::keys::{self, KeyLabel, KeyName, SigningKey};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// Notary's own Ed25519 OID (`convertTUFKeyToPKCS8`), not RFC 8410's.
const OID_ED25519_NOTARY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11591.15.1");
const OID_ED25519_RFC8410: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Why key files could not be imported. Each names the file and, where known, the key.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error(
        "cannot read {path}: {reason}. Nothing was imported. Run as the user who owns the keys, or fix the permissions (docker makes them 0700/0600)"
    )]
    Read {
        /// The path.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// The file is not PEM, or a block is damaged.
    #[error(
        "{path} is not a readable PEM key file ({reason}); it may be truncated or damaged. Nothing was imported; restore it from a backup or leave it out"
    )]
    BadPem {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A public key or certificate, which cannot sign.
    #[error(
        "{path} holds a {kind}, not a private key: it cannot sign. Nothing was imported. Import the private key file instead (docker keeps it in ~/.docker/trust/private/<key ID>.key)"
    )]
    NotPrivate {
        /// The file.
        path: String,
        /// The PEM type found.
        kind: String,
    },
    /// No passphrase decrypted the key.
    #[error(
        "wrong passphrase for {key}: {tried} did not decrypt it. Nothing was imported. Set the key's passphrase in {vars} (or run on a terminal to be asked)"
    )]
    WrongPassphrase {
        /// Which key.
        key: Box<KeyRef>,
        /// Which passphrases were tried (variable names or "the passphrase typed").
        tried: String,
        /// The variables to set.
        vars: String,
    },
    /// The key is encrypted and no passphrase was available.
    #[error(
        "{key} is encrypted and no passphrase is set. Nothing was imported. Set {vars}, or run on a terminal to be asked"
    )]
    NoPassphrase {
        /// Which key.
        key: Box<KeyRef>,
        /// The variables to set.
        vars: String,
    },
    /// A key type or encoding this tool cannot sign with.
    #[error("{path}: {what}. Nothing was imported")]
    Unsupported {
        /// The file.
        path: String,
        /// What and why.
        what: String,
    },
    /// Storing in the keyring failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
}

/// A key named in an error: role, ID, GUN and file.
#[derive(Debug)]
pub struct KeyRef {
    /// The file.
    pub path: String,
    /// Key ID (from the file name) or `(ID unknown until decrypted)`.
    pub id: String,
    /// Role or signer name.
    pub role: String,
    /// The GUN, for repository keys.
    pub gun: Option<String>,
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} key {}", self.role, self.id)?;
        if let Some(g) = &self.gun {
            write!(f, " of {g}")?;
        }
        write!(f, " in {}", self.path)
    }
}

/// One PEM key block found in a file.
pub struct Block {
    /// The file (or `archive!member`) it came from.
    pub path: String,
    /// Key ID from the file name (`<id>.key`), if it has that form.
    pub file_id: Option<String>,
    /// Role and GUN from its headers (or the old directory layout).
    pub label: KeyLabel,
    tag: String,
    encrypted_legacy: bool,
    dek_info: Option<String>,
    contents: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({}, {}, {:?})", self.path, self.tag, self.label)
    }
}

impl Block {
    /// Whether a passphrase is needed.
    pub fn is_encrypted(&self) -> bool {
        self.tag == "ENCRYPTED PRIVATE KEY" || self.encrypted_legacy
    }

    /// The key ID to name in messages before the key is decrypted.
    pub fn shown_id(&self) -> String {
        self.file_id
            .clone()
            .unwrap_or_else(|| "(ID unknown until decrypted)".into())
    }

    fn key_ref(&self) -> Box<KeyRef> {
        Box::new(KeyRef {
            path: self.path.clone(),
            id: self.shown_id(),
            role: self.label.role.clone(),
            gun: self.label.gun.clone(),
        })
    }
}

/// A decrypted key, ready to store.
#[derive(Debug)]
pub struct Decoded {
    /// Where it came from.
    pub path: String,
    /// Its public key ID.
    pub id: String,
    /// Role and GUN.
    pub label: KeyLabel,
    /// The key.
    pub key: SigningKey,
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now.
    Imported,
    /// The keyring already had it.
    AlreadyPresent,
}

/// The passphrase variables docker and notary read for a key of `role`, in the order tried.
pub fn passphrase_vars(role: &str) -> &'static [&'static str] {
    match role {
        "root" => &[
            "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
            "NOTARY_ROOT_PASSPHRASE",
        ],
        "targets" => &[
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            "NOTARY_TARGETS_PASSPHRASE",
        ],
        "snapshot" => &[
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            "NOTARY_SNAPSHOT_PASSPHRASE",
        ],
        _ => &[
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            "NOTARY_DELEGATION_PASSPHRASE",
        ],
    }
}

/// Where passphrases come from: the environment, then (if any) a terminal.
pub trait Passphrases {
    /// Passphrases to try for `block` without asking: `(where from, passphrase)`.
    fn known(&mut self, block: &Block) -> Vec<(String, Zeroizing<String>)>;
    /// Asks for one, attempt `attempt` (0-based); `Ok(None)` when no one can be asked.
    fn ask(&mut self, block: &Block, attempt: u32) -> std::io::Result<Option<Zeroizing<String>>>;
}

/// Every key block under `paths`: directories are walked (their `*.key` files, including the
/// old `root_keys/` and `tuf_keys/<gun>/` layouts); a file is read whatever its name.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<Block>, Vec<ImportError>> {
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        walk(p, p, &mut blocks, &mut errors);
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

fn walk(top: &Path, p: &Path, blocks: &mut Vec<Block>, errors: &mut Vec<ImportError>) {
    let read_err = |e: std::io::Error| ImportError::Read {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) => return errors.push(read_err(e)),
    };
    if meta.is_dir() {
        let entries = match std::fs::read_dir(p) {
            Ok(d) => d,
            Err(e) => return errors.push(read_err(e)),
        };
        let mut children: Vec<PathBuf> = Vec::new();
        for e in entries {
            match e {
                Ok(e) => children.push(e.path()),
                Err(e) => return errors.push(read_err(e)),
            }
        }
        children.sort();
        for c in children {
            let is_dir = c.is_dir();
            if is_dir || c.extension().is_some_and(|x| x == "key") {
                walk(top, &c, blocks, errors);
            }
        }
        return;
    }
    let name = p.file_name().map(|n| n.to_string_lossy().to_string());
    if name.is_some_and(|n| n.ends_with(".tar.gz") || n.ends_with(".tgz")) {
        return match read_tarball(p) {
            Ok(mut b) => blocks.append(&mut b),
            Err(mut e) => errors.append(&mut e),
        };
    }
    let bytes = match std::fs::read(p) {
        Ok(b) => Zeroizing::new(b),
        Err(e) => return errors.push(read_err(e)),
    };
    match parse_file(
        &p.display().to_string(),
        file_id(p),
        layout_label(top, p),
        &bytes,
    ) {
        Ok(mut b) => blocks.append(&mut b),
        Err(e) => errors.push(e),
    }
}

/// Limits for archives, so a hostile one cannot exhaust memory: key files are a few hundred
/// bytes, a key directory holds at most some thousands.
const MAX_MEMBER: u64 = 64 * 1024;
const MAX_MEMBERS: usize = 10_000;

/// The `*.key` members of a gzip'd tar (the ACR guide's `tar -zcvf` of
/// `~/.docker/trust/private`), read in memory: nothing is extracted to disk.
fn read_tarball(p: &Path) -> Result<Vec<Block>, Vec<ImportError>> {
    use std::io::Read;
    let shown = p.display().to_string();
    let err = |reason: String| {
        vec![ImportError::Read {
            path: shown.clone(),
            reason,
        }]
    };
    let f = std::fs::File::open(p).map_err(|e| err(e.to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = archive.entries().map_err(|e| err(e.to_string()))?;
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    for (n, entry) in entries.enumerate() {
        if n >= MAX_MEMBERS {
            return Err(err(format!("more than {MAX_MEMBERS} members")));
        }
        let mut entry = entry.map_err(|e| err(format!("damaged archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let member = match entry.path() {
            Ok(m) => m.into_owned(),
            Err(e) => return Err(err(format!("damaged archive: {e}"))),
        };
        if member.extension().is_none_or(|x| x != "key") {
            continue;
        }
        let where_ = format!("{shown}!{}", member.display());
        if entry.size() > MAX_MEMBER {
            errors.push(ImportError::BadPem {
                path: where_,
                reason: format!("larger than {MAX_MEMBER} bytes, not a key file"),
            });
            continue;
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_MEMBER as usize));
        if let Err(e) = (&mut entry).take(MAX_MEMBER).read_to_end(&mut bytes) {
            return Err(err(format!("damaged archive: {e}")));
        }
        let label = layout_label(Path::new(""), &member);
        match parse_file(&where_, file_id(&member), label, &bytes) {
            Ok(mut b) => blocks.append(&mut b),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

/// The key ID in a `<64 hex>.key` (or notary's older `<id>_<role>.key`) file name.
fn file_id(p: &Path) -> Option<String> {
    let stem = p.file_stem()?.to_str()?;
    let id = stem.split('_').next()?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

/// Role and GUN implied by notary's pre-0.4 layout: `root_keys/` holds root keys,
/// `tuf_keys/<gun>/` a repository's keys.
fn layout_label(top: &Path, p: &Path) -> KeyLabel {
    // The folders above the file, relative to `top` when the file lies below it.
    let dirs = |path: &Path| -> Vec<String> {
        path.parent()
            .map(|d| {
                d.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let parts = dirs(p.strip_prefix(top).unwrap_or(p));
    let parts = if parts.is_empty() { dirs(p) } else { parts };
    if parts.iter().any(|c| c == "root_keys") {
        return KeyLabel {
            role: "root".into(),
            gun: None,
        };
    }
    if let Some(i) = parts.iter().position(|c| c == "tuf_keys") {
        let gun = parts[i + 1..].join("/");
        return KeyLabel {
            role: String::new(),
            gun: (!gun.is_empty()).then_some(gun),
        };
    }
    KeyLabel::default()
}

/// The key blocks of one file's bytes. `label` is what the path says; headers win over it.
pub fn parse_file(
    path: &str,
    file_id: Option<String>,
    label: KeyLabel,
    bytes: &[u8],
) -> Result<Vec<Block>, ImportError> {
    let bad = |reason: String| ImportError::BadPem {
        path: path.to_string(),
        reason,
    };
    let pems = pem::parse_many(bytes).map_err(|e| bad(e.to_string()))?;
    if pems.is_empty() {
        return Err(bad("no PEM block found".into()));
    }
    let several = pems.len() > 1;
    let mut out = Vec::new();
    for p in pems {
        let tag = p.tag().to_string();
        match tag.as_str() {
            "ENCRYPTED PRIVATE KEY"
            | "PRIVATE KEY"
            | "EC PRIVATE KEY"
            | "ED25519 PRIVATE KEY"
            | "RSA PRIVATE KEY" => {}
            "PUBLIC KEY" | "CERTIFICATE" | "EC PUBLIC KEY" | "RSA PUBLIC KEY" => {
                return Err(ImportError::NotPrivate {
                    path: path.to_string(),
                    kind: tag,
                });
            }
            other => return Err(bad(format!("unexpected PEM type {other:?}"))),
        }
        let h = p.headers();
        let role = h
            .get("role")
            .map(str::to_string)
            .filter(|r| !r.is_empty())
            .or_else(|| (!label.role.is_empty()).then(|| label.role.clone()))
            .unwrap_or_else(|| "unknown-role".into());
        let gun = h
            .get("gun")
            .map(str::to_string)
            .or_else(|| label.gun.clone());
        let encrypted_legacy = h.get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"));
        // A multi-key export names each key in its `path` header; a single file by its name.
        let id = h
            .get("path")
            .map(|s| s.rsplit('/').next().unwrap_or(s).trim_end_matches(".key"))
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
            .or_else(|| if several { None } else { file_id.clone() });
        out.push(Block {
            path: path.to_string(),
            file_id: id,
            label: KeyLabel { role, gun },
            tag,
            encrypted_legacy,
            dek_info: h.get("DEK-Info").map(str::to_string),
            contents: Zeroizing::new(p.into_contents()),
        });
    }
    Ok(out)
}

/// Why one block did not decode.
enum Problem {
    /// Decryption or the decrypted structure failed: almost always a wrong passphrase.
    WrongPassphrase,
    /// Not something this tool can sign with.
    Unsupported(String),
}

/// Decrypts (with `pass` when encrypted) and parses a block.
fn decode(block: &Block, pass: Option<&str>) -> Result<SigningKey, Problem> {
    match block.tag.as_str() {
        "ENCRYPTED PRIVATE KEY" => {
            let pass = pass.ok_or(Problem::WrongPassphrase)?;
            let epki = pkcs8::EncryptedPrivateKeyInfoRef::try_from(block.contents.as_slice())
                .map_err(|e| Problem::Unsupported(format!("not PKCS#8 encrypted data ({e})")))?;
            // Roughly one wrong passphrase in 256 passes the padding check; the parse of the
            // decrypted bytes then fails, so both mean "wrong passphrase".
            let doc = epki.decrypt(pass.as_bytes()).map_err(|e| match e {
                pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
                    ..
                })
                | pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm {
                    ..
                }) => Problem::Unsupported(format!(
                    "the key is encrypted with a scheme docker and notary do not use ({e})"
                )),
                _ => Problem::WrongPassphrase,
            })?;
            match parse_pkcs8(doc.as_bytes()) {
                Err(Problem::Unsupported(w)) if w.starts_with("malformed") => {
                    Err(Problem::WrongPassphrase)
                }
                r => r,
            }
        }
        "PRIVATE KEY" => parse_pkcs8(&block.contents),
        "EC PRIVATE KEY" if !block.encrypted_legacy => parse_sec1(&block.contents),
        "EC PRIVATE KEY" if block.encrypted_legacy => {
            let pass = pass.ok_or(Problem::WrongPassphrase)?;
            let plain = legacy_decrypt(block, pass)?;
            // A wrong passphrase that passes the padding check fails the parse.
            parse_sec1(&plain).map_err(|_| Problem::WrongPassphrase)
        }
        "RSA PRIVATE KEY" if !block.encrypted_legacy => parse_rsa(&block.contents),
        "RSA PRIVATE KEY" => {
            let pass = pass.ok_or(Problem::WrongPassphrase)?;
            let plain = legacy_decrypt(block, pass)?;
            parse_rsa(&plain).map_err(|_| Problem::WrongPassphrase)
        }
        _ => Err(Problem::Unsupported(format!(
            "{} blocks are not supported",
            block.tag
        ))),
    }
}

/// RFC 1421 encryption as Go's `x509.DecryptPEMBlock` reads it: the key is OpenSSL's
/// `EVP_BytesToKey` (MD5, one round, salt = the first 8 IV bytes), the cipher AES-CBC.
fn legacy_decrypt(block: &Block, pass: &str) -> Result<Zeroizing<Vec<u8>>, Problem> {
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
    use md5::{Digest, Md5};
    let dek = block.dek_info.as_deref().unwrap_or_default();
    let (cipher, iv_hex) = dek.split_once(',').unwrap_or((dek, ""));
    let key_len = match cipher.trim() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        other => {
            return Err(Problem::Unsupported(format!(
                "legacy PEM encryption {other:?} is not supported (only AES-CBC); re-encrypt the key with a current notary or openssl first"
            )));
        }
    };
    let iv = hex::decode(iv_hex.trim())
        .ok()
        .filter(|iv| iv.len() == 16)
        .ok_or_else(|| Problem::Unsupported("malformed DEK-Info header".into()))?;
    let mut key = Zeroizing::new(Vec::with_capacity(48));
    let mut prev: Option<Zeroizing<[u8; 16]>> = None;
    while key.len() < key_len {
        let mut h = Md5::new();
        if let Some(p) = &prev {
            h.update(p.as_slice());
        }
        h.update(pass.as_bytes());
        h.update(&iv[..8]);
        let d = Zeroizing::new(<[u8; 16]>::from(h.finalize()));
        key.extend_from_slice(d.as_slice());
        prev = Some(d);
    }
    let key = &key[..key_len];
    let mut buf = Zeroizing::new(block.contents.to_vec());
    let n = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .map_err(|_| Problem::WrongPassphrase)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, &iv)
            .map_err(|_| Problem::WrongPassphrase)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .map_err(|_| Problem::WrongPassphrase)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
    }
    .map_err(|_| Problem::WrongPassphrase)?;
    buf.truncate(n);
    Ok(buf)
}

/// PKCS#1 `RSAPrivateKey`, as in `RSA PRIVATE KEY` blocks and inside PKCS#8. Below 2048 bits
/// is refused: notary-server refuses such keys, so they could never sign anything it accepts.
fn parse_rsa(der_bytes: &[u8]) -> Result<SigningKey, Problem> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::from_pkcs1_der(der_bytes)
        .map_err(|e| malformed(&format!("RSA key: {e}")))?;
    let bits = key.size() * 8;
    if bits < 2048 {
        return Err(Problem::Unsupported(format!(
            "a {bits}-bit RSA key: notary-server refuses RSA keys under 2048 bits"
        )));
    }
    Ok(SigningKey::Rsa(Box::new(key)))
}

fn malformed(what: &str) -> Problem {
    Problem::Unsupported(format!("malformed private key: {what}"))
}

/// Parses PKCS#8 leniently: notary writes ECDSA with version 1 and no public key, and Ed25519
/// under its own OID with 96 bytes (public, seed, public).
fn parse_pkcs8(der_bytes: &[u8]) -> Result<SigningKey, Problem> {
    let mut r = SliceReader::new(der_bytes).map_err(|_| malformed("not DER"))?;
    let (alg, param, key): (ObjectIdentifier, Option<ObjectIdentifier>, &[u8]) = r
        .sequence(|r| {
            let _version = u8::decode(r)?;
            let (alg, param) = r.sequence(|r| {
                let alg = ObjectIdentifier::decode(r)?;
                let param = Option::<AnyRef<'_>>::decode(r)?;
                Ok::<_, der::Error>((alg, param))
            })?;
            let key = <&OctetStringRef>::decode(r)?.as_bytes();
            while !r.is_finished() {
                AnyRef::decode(r)?;
            }
            let param = param.and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            Ok::<_, der::Error>((alg, param, key))
        })
        .map_err(|e| malformed(&e.to_string()))?;
    if alg == OID_EC_PUBLIC_KEY {
        if param.is_some_and(|c| c != OID_P256) {
            return Err(Problem::Unsupported(
                "ECDSA keys on curves other than P-256 are not supported for signing here".into(),
            ));
        }
        parse_sec1(key)
    } else if alg == OID_ED25519_NOTARY {
        if key.len() != 96 {
            return Err(malformed("notary Ed25519 key is not 96 bytes"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&key[32..64]);
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        if sk.verifying_key().as_bytes() != &key[..32] {
            return Err(malformed("Ed25519 public key does not match the seed"));
        }
        Ok(SigningKey::Ed25519(sk))
    } else if alg == OID_ED25519_RFC8410 {
        Err(Problem::Unsupported(
            "an RFC 8410 Ed25519 key (OpenSSL's format): docker and notary cannot use it either, so it cannot sign a DCT repository they read. Use the key file docker or notary wrote".into(),
        ))
    } else if alg == OID_RSA {
        parse_rsa(key)
    } else {
        Err(Problem::Unsupported(format!("unknown key algorithm {alg}")))
    }
}

/// SEC1 `ECPrivateKey`: the scalar is the OCTET STRING after the version.
fn parse_sec1(der_bytes: &[u8]) -> Result<SigningKey, Problem> {
    let mut r = SliceReader::new(der_bytes).map_err(|_| malformed("not DER"))?;
    let scalar: &[u8] = r
        .sequence(|r| {
            let _version = u8::decode(r)?;
            let d = <&OctetStringRef>::decode(r)?.as_bytes();
            while !r.is_finished() {
                AnyRef::decode(r)?;
            }
            Ok::<_, der::Error>(d)
        })
        .map_err(|e| malformed(&e.to_string()))?;
    if scalar.len() != 32 {
        return Err(Problem::Unsupported(
            "ECDSA keys on curves other than P-256 are not supported for signing here".into(),
        ));
    }
    p256::ecdsa::SigningKey::from_slice(scalar)
        .map(SigningKey::P256)
        .map_err(|_| malformed("invalid P-256 scalar"))
}

/// Decrypts every block, with passphrases from `pass`. All or nothing: any error is returned
/// (all of them, so one run shows every problem) and no key.
pub fn decode_all(
    blocks: &[Block],
    pass: &mut dyn Passphrases,
) -> Result<Vec<Decoded>, Vec<ImportError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for b in blocks {
        match decode_one(b, pass) {
            Ok(key) => {
                let id = key.public().id();
                out.push(Decoded {
                    path: b.path.clone(),
                    id,
                    label: b.label.clone(),
                    key,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn decode_one(b: &Block, pass: &mut dyn Passphrases) -> Result<SigningKey, ImportError> {
    let unsupported = |what: String| ImportError::Unsupported {
        path: b.path.clone(),
        what,
    };
    if !b.is_encrypted() {
        return decode(b, None).map_err(|p| match p {
            Problem::Unsupported(w) => unsupported(w),
            Problem::WrongPassphrase => unsupported("malformed private key".into()),
        });
    }
    let vars = passphrase_vars(&b.label.role).join(" or ");
    let mut tried = Vec::new();
    for (from, p) in pass.known(b) {
        match decode(b, Some(&p)) {
            Ok(k) => return Ok(k),
            Err(Problem::Unsupported(w)) => return Err(unsupported(w)),
            Err(Problem::WrongPassphrase) => tried.push(from),
        }
    }
    for attempt in 0..3 {
        let p = pass.ask(b, attempt).map_err(|e| ImportError::Read {
            path: "the terminal".into(),
            reason: e.to_string(),
        })?;
        let Some(p) = p else { break };
        match decode(b, Some(&p)) {
            Ok(k) => return Ok(k),
            Err(Problem::Unsupported(w)) => return Err(unsupported(w)),
            Err(Problem::WrongPassphrase) => {
                if !tried.iter().any(|t| t == "the passphrase typed") {
                    tried.push("the passphrase typed".into());
                }
            }
        }
    }
    if tried.is_empty() {
        Err(ImportError::NoPassphrase {
            key: b.key_ref(),
            vars,
        })
    } else {
        Err(ImportError::WrongPassphrase {
            key: b.key_ref(),
            tried: tried.join(", "),
            vars,
        })
    }
}

/// Stores each decoded key as `key:<id>` with its label; a key already there is left as is.
/// The same key found twice (a file and its backup) is stored once.
pub fn store_all(decoded: &[Decoded]) -> Result<Vec<Outcome>, ImportError> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for d in decoded {
        if seen.contains(&d.id.as_str()) {
            out.push(Outcome::AlreadyPresent);
            continue;
        }
        seen.push(&d.id);
        let name = KeyName::Id { id: d.id.clone() };
        match keys::get(&name)? {
            Some(k) if k.public() == d.key.public() => out.push(Outcome::AlreadyPresent),
            _ => {
                keys::put_labeled(&name, &d.key, Some(&d.label))?;
                out.push(Outcome::Imported);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed passphrases by role, as the environment would give them.
    struct Fixed(&'static str, &'static str);

    impl Passphrases for Fixed {
        fn known(&mut self, b: &Block) -> Vec<(String, Zeroizing<String>)> {
            let p = if b.label.role == "root" {
                self.0
            } else {
                self.1
            };
            vec![("TEST_PASSPHRASE".into(), Zeroizing::new(p.into()))]
        }
        fn ask(&mut self, _: &Block, _: u32) -> std::io::Result<Option<Zeroizing<String>>> {
            Ok(None)
        }
    }

    fn data(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(p)
    }

    #[test]
    fn docker_key_directory_decrypts_to_the_ids_in_the_file_names() {
        let blocks = collect(&[data("notary-v1/keys/docker-trust")]).unwrap();
        let keys = decode_all(&blocks, &mut Fixed("rootpw", "repopw")).unwrap();
        assert_eq!(keys.len(), 9);
        for k in &keys {
            assert!(
                k.path.ends_with(&format!("{}.key", k.id)),
                "{} {}",
                k.path,
                k.id
            );
            let rsa = k.label.role == "rsakey";
            assert_eq!(matches!(k.key, SigningKey::Rsa(_)), rsa, "{}", k.path);
            assert_eq!(matches!(k.key, SigningKey::P256(_)), !rsa, "{}", k.path);
        }
        assert!(keys.iter().any(|k| k.label.role == "targets"
            && k.label.gun.as_deref() == Some("localhost:5000/nv1/signed")));
    }

    // See: #9 item 1 (RSA signer keys, as docker trust key load and notary 0.3 accepted them)
    #[test]
    fn imported_rsa_keys_sign_rsapss_that_the_verifier_accepts_and_survive_the_keyring_form() {
        let mut blocks = collect(&[data("notary-v1/keys/docker-trust")]).unwrap();
        blocks.extend(collect(&[data("notary-compat/notary0.3/private")]).unwrap());
        let rsa: Vec<_> = blocks
            .into_iter()
            .filter(|b| b.label.role == "rsakey" || b.tag.starts_with("RSA"))
            .collect();
        assert_eq!(rsa.len(), 2);
        for b in rsa {
            let pass = if b.tag.starts_with("RSA") {
                "password"
            } else {
                "repopw"
            };
            let k = decode_all(&[b], &mut Fixed(pass, pass)).unwrap().remove(0);
            let (method, sig) = k.key.sign(b"canonical bytes");
            assert_eq!(method, "rsapss");
            let public = k.key.public();
            public.verify(method, b"canonical bytes", &sig).unwrap();
            assert!(public.verify(method, b"other bytes", &sig).is_err());
            let stored = k.key.to_keyring_secret();
            let back = SigningKey::from_keyring_secret(&stored, &KeyName::Root).unwrap();
            assert_eq!(back.public().id(), k.id);
        }
    }

    #[test]
    fn notary_ed25519_and_delegation_keys_decode() {
        let blocks = collect(&[data("notary-v1/keys/notary-ntrust2")]).unwrap();
        let mut pass = |b: &Block| match b.label.role.as_str() {
            "root" => "rootpass",
            "targets" => "targetspass",
            "snapshot" => "snappass",
            _ => "delegpass",
        };
        struct ByRole<'a>(&'a mut dyn FnMut(&Block) -> &'static str);
        impl Passphrases for ByRole<'_> {
            fn known(&mut self, b: &Block) -> Vec<(String, Zeroizing<String>)> {
                vec![("X".into(), Zeroizing::new((self.0)(b).into()))]
            }
            fn ask(&mut self, _: &Block, _: u32) -> std::io::Result<Option<Zeroizing<String>>> {
                Ok(None)
            }
        }
        let keys = decode_all(&blocks, &mut ByRole(&mut pass)).unwrap();
        for k in &keys {
            assert!(
                k.path.ends_with(&format!("{}.key", k.id)),
                "{} {}",
                k.path,
                k.id
            );
        }
        assert!(keys.iter().any(|k| k.label.role == "targets/releases"));
    }

    #[test]
    fn wrong_passphrase_names_the_key_role_and_gun() {
        let f = data(
            "notary-v1/keys/docker-trust/1381eabf023b54b2f4260a770ea1300d7d154ceeb096896293715e3998539e03.key",
        );
        let blocks = collect(&[f]).unwrap();
        let err = decode_all(&blocks, &mut Fixed("rootpw", "not-it")).unwrap_err();
        let text = err[0].to_string();
        for part in [
            "wrong passphrase",
            "targets key",
            "1381eabf023b54b2f4260a770ea1300d7d154ceeb096896293715e3998539e03",
            "localhost:5000/nv1/signed",
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
        ] {
            assert!(text.contains(part), "{part} missing: {text}");
        }
        assert!(!text.contains("not-it"), "{text}");
    }

    #[test]
    fn public_keys_damaged_pem_and_rfc8410_ed25519_are_refused() {
        let pub_err = parse_file(
            "alice.pub",
            None,
            KeyLabel::default(),
            &std::fs::read(data("notary-v1/keys/docker-alice.pub")).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(pub_err, ImportError::NotPrivate { .. }),
            "{pub_err}"
        );
        let good = std::fs::read_to_string(data(
            "notary-v1/keys/docker-trust/45c24ed2f4216589b85c64396b6c3be2a54cb07813afdfb9d3802bcd2fbe5f70.key",
        ))
        .unwrap();
        let cut = &good[..good.len() / 2];
        let e = parse_file("cut.key", None, KeyLabel::default(), cut.as_bytes()).unwrap_err();
        assert!(matches!(e, ImportError::BadPem { .. }), "{e}");
        // RFC 8410 Ed25519 (OpenSSL `genpkey -algorithm ed25519`).
        let rfc8410 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAmnHfMdq1Dq7TAfsFOsVVtUjmCjBt6l8Cpb1EY6FvAD\n-----END PRIVATE KEY-----\n";
        let blocks = parse_file("ed.key", None, KeyLabel::default(), rfc8410.as_bytes()).unwrap();
        let e = decode_all(&blocks, &mut Fixed("", "")).unwrap_err();
        assert!(e[0].to_string().contains("RFC 8410"), "{}", e[0]);
    }

    #[test]
    fn guide_backup_tarball_imports_like_the_directory() {
        // As the ACR guide makes it: tar -zcvf backup.tar.gz of the private key directory.
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("docker_private_keys_backup.tar.gz");
        let src = data("notary-v1/keys");
        let ok = std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-zcf")
            .arg(&tarball)
            .arg("docker-trust")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar failed");
        let blocks = collect(&[tarball]).unwrap();
        let ec: Vec<Block> = blocks
            .into_iter()
            .filter(|b| b.label.role != "rsakey")
            .collect();
        let keys = decode_all(&ec, &mut Fixed("rootpw", "repopw")).unwrap();
        assert_eq!(keys.len(), 8);
        for k in &keys {
            assert!(k.path.contains("!docker-trust/"), "{}", k.path);
            assert!(
                k.path.ends_with(&format!("{}.key", k.id)),
                "{} {}",
                k.path,
                k.id
            );
        }
    }

    #[test]
    fn notary_0_3_legacy_encrypted_ec_keys_decrypt_to_the_ids_in_their_names() {
        let blocks = collect(&[data("notary-compat/notary0.3/private")]).unwrap();
        let (rsa, ec): (Vec<_>, Vec<_>) =
            blocks.into_iter().partition(|b| b.tag.starts_with("RSA"));
        // These three files decrypt with "password" (checked with `openssl pkey` too), not the
        // "randompass" the fixture README names.
        let keys = decode_all(&ec, &mut Fixed("password", "password")).unwrap();
        assert_eq!(keys.len(), 3);
        for k in &keys {
            assert!(
                k.path.ends_with(&format!("{}.key", k.id)),
                "{} {}",
                k.path,
                k.id
            );
        }
        let e = decode_all(&ec, &mut Fixed("wrong", "wrong")).unwrap_err();
        assert!(e[0].to_string().contains("wrong passphrase"), "{}", e[0]);
        assert_eq!(rsa.len(), 1);
        let k = decode_all(&rsa, &mut Fixed("password", "password")).unwrap();
        assert!(
            k[0].path.ends_with(&format!("{}.key", k[0].id)),
            "{}",
            k[0].id
        );
    }

    #[test]
    fn old_layout_gives_root_and_the_gun_from_the_directories() {
        let blocks = collect(&[data("notary-compat/notary0.3/private")]).unwrap();
        let root = blocks
            .iter()
            .find(|b| b.path.contains("root_keys"))
            .unwrap();
        assert_eq!(root.label.role, "root");
        let t = blocks.iter().find(|b| b.label.role == "targets").unwrap();
        assert_eq!(t.label.gun.as_deref(), Some("docker.com/notary0.3/tst"));
    }
}
