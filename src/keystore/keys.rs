//! Signing keys kept in the OS keyring, found by role and GUN.
//!
//! Entry names (keyring `service` = [`super::SERVICE`]): `root` for the root key every repository
//! shares (as docker reuses one root key), `targets:<GUN>` for each repository's targets key,
//! and `key:<key ID>` for keys imported from docker or notary (any role: a root that is not
//! ours, an ECDSA targets key, delegation keys), found by the key IDs a role accepts. The secret is a small JSON document with the key type and the private scalar/seed; it
//! goes from the keyring to memory and back, never to a file, and is zeroed when dropped.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeystoreError;
use crate::tuf::keys::{PublicKey, keytype};

/// A private signing key.
pub enum SigningKey {
    /// Ed25519 (repository keys).
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA P-256 (root keys; the root certificate is made from it).
    P256(p256::ecdsa::SigningKey),
    /// RSA, only as imported from docker or notary (notary 0.3 and `docker trust key load`
    /// accepted RSA signer keys); signs with RSASSA-PSS, SHA-256, salt 32 (`rsapss`).
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.public().id())
    }
}

/// Which key, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyName {
    /// The root key shared by all repositories.
    Root,
    /// The targets key of one repository.
    Targets {
        /// GUN.
        gun: String,
    },
    /// An imported key, by its (canonical) key ID.
    Id {
        /// Lower-case hex key ID of the public key.
        id: String,
    },
}

impl KeyName {
    /// The keyring entry's user name.
    pub fn entry(&self) -> String {
        match self {
            KeyName::Root => "root".to_string(),
            KeyName::Targets { gun } => format!("targets:{gun}"),
            KeyName::Id { id } => format!("key:{id}"),
        }
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyName::Root => f.write_str("root key"),
            KeyName::Targets { gun } => write!(f, "targets key of {gun}"),
            KeyName::Id { id } => write!(f, "key {id}"),
        }
    }
}

/// The keyring secret's form. Fields borrow from the secret text, so parsing makes no copy of
/// the private key that would outlive the zeroized text.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    keytype: &'a str,
    private: &'a str,
    /// For imported keys: the role (or docker signer name) the key file named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    /// For imported keys: the GUN the key file named (targets and snapshot keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gun: Option<&'a str>,
}

/// What an imported key was for, as its file said (docker's `role` and `gun` PEM headers).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct KeyLabel {
    /// `root`, `targets`, `snapshot`, `targets/<name>` or a docker signer name.
    pub role: String,
    /// The repository, for targets and snapshot keys.
    pub gun: Option<String>,
}

fn random32() -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::fill(b.as_mut()).map_err(|e| KeystoreError::Unreachable {
        detail: format!("no randomness for key generation: {e}"),
        hint: "check the operating system's random source",
    })?;
    Ok(b)
}

impl SigningKey {
    /// A new Ed25519 key.
    pub fn generate_ed25519() -> Result<Self, KeystoreError> {
        let seed = random32()?;
        Ok(SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    /// A new P-256 key.
    pub fn generate_p256() -> Result<Self, KeystoreError> {
        loop {
            // A random 32-byte string is a valid scalar except with negligible probability.
            if let Ok(sk) = p256::ecdsa::SigningKey::from_slice(random32()?.as_ref()) {
                return Ok(SigningKey::P256(sk));
            }
        }
    }

    /// The public key as it appears in metadata (`ed25519` raw, `ecdsa` SPKI DER).
    pub fn public(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k) => {
                PublicKey::new(keytype::ED25519, k.verifying_key().to_bytes().to_vec())
            }
            SigningKey::P256(k) => {
                use spki::EncodePublicKey;
                let der = k
                    .verifying_key()
                    .to_public_key_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default();
                PublicKey::new(keytype::ECDSA, der)
            }
            SigningKey::Rsa(k) => {
                use spki::EncodePublicKey;
                let der = k
                    .to_public_key()
                    .to_public_key_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default();
                PublicKey::new(keytype::RSA, der)
            }
        }
    }

    /// The algorithm, as notary names key types (`ecdsa`, `ed25519`).
    pub fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::Ed25519(_) => keytype::ED25519,
            SigningKey::P256(_) => keytype::ECDSA,
            SigningKey::Rsa(_) => keytype::RSA,
        }
    }

    /// Signs `msg` (canonical bytes); returns the Notary method and signature bytes.
    pub fn sign(&self, msg: &[u8]) -> (&'static str, Vec<u8>) {
        match self {
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                ("eddsa", k.sign(msg).to_bytes().to_vec())
            }
            SigningKey::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                ("ecdsa", sig.to_bytes().to_vec())
            }
            SigningKey::Rsa(k) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                let signer =
                    rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len((**k).clone(), 32);
                match signer.try_sign_with_rng(&mut getrandom::SysRng, msg) {
                    Ok(sig) => ("rsapss", sig.to_vec()),
                    // Only a failing random source gets here. An empty signature is refused by
                    // notary-server (it checks every signature of what it is sent), so nothing
                    // unsigned is published.
                    Err(e) => {
                        tracing::error!("RSA-PSS signing failed: {e}");
                        ("rsapss", Vec::new())
                    }
                }
            }
        }
    }

    /// The keyring secret for this key: `{"keytype":…,"private":"<base64>"}`. Every buffer that
    /// holds the private key (raw, base64, JSON) is wiped when dropped.
    pub fn to_keyring_secret(&self) -> Zeroizing<String> {
        self.to_labeled_secret(None)
    }

    /// [`SigningKey::to_keyring_secret`] with the role and GUN of an imported key.
    pub fn to_labeled_secret(&self, label: Option<&KeyLabel>) -> Zeroizing<String> {
        let (keytype, private) = match self {
            SigningKey::Ed25519(k) => ("ed25519", Zeroizing::new(k.as_bytes().to_vec())),
            SigningKey::P256(k) => {
                // The scalar's fixed-size copy is wiped too, not only the Vec made from it.
                let scalar = Zeroizing::new(k.to_bytes());
                ("ecdsa-p256", Zeroizing::new(scalar.to_vec()))
            }
            SigningKey::Rsa(k) => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let der = k
                    .to_pkcs1_der()
                    .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
                    .unwrap_or_default();
                ("rsa-pkcs1", der)
            }
        };
        // Sized up front: a growing buffer would free (unwiped) copies as it reallocates.
        let mut b64 = Zeroizing::new(String::with_capacity(private.len().div_ceil(3) * 4 + 4));
        base64::engine::general_purpose::STANDARD.encode_string(private.as_slice(), &mut b64);
        let stored = Stored {
            keytype,
            private: &b64,
            role: label.map(|l| l.role.as_str()),
            gun: label.and_then(|l| l.gun.as_deref()),
        };
        let label_len = label.map_or(0, |l| l.role.len() + l.gun.as_ref().map_or(0, String::len));
        let mut json = Zeroizing::new(Vec::with_capacity(
            b64.len() + keytype.len() + label_len * 2 + 96,
        ));
        if serde_json::to_writer(&mut *json, &stored).is_err() {
            return Zeroizing::new(String::new());
        }
        // Moves the buffer without copying it; only ASCII was written.
        Zeroizing::new(String::from_utf8(std::mem::take(&mut *json)).unwrap_or_default())
    }

    /// Parses a keyring secret written by [`SigningKey::to_keyring_secret`]; `name` is for the
    /// error. Decoded key bytes are wiped when dropped.
    pub fn from_keyring_secret(text: &str, name: &KeyName) -> Result<Self, KeystoreError> {
        Self::from_labeled_secret(text, name).map(|(k, _)| k)
    }

    /// Parses a keyring secret and the label of an imported key (none for keys made here).
    pub fn from_labeled_secret(
        text: &str,
        name: &KeyName,
    ) -> Result<(Self, Option<KeyLabel>), KeystoreError> {
        let bad = || KeystoreError::Corrupt {
            entry: name.entry(),
        };
        let stored: Stored<'_> = serde_json::from_str(text).map_err(|_| bad())?;
        let label = stored.role.map(|role| KeyLabel {
            role: role.to_string(),
            gun: stored.gun.map(str::to_string),
        });
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(stored.private.as_bytes())
                .map_err(|_| bad())?,
        );
        match stored.keytype {
            "ed25519" => {
                let mut seed = Zeroizing::new([0u8; 32]);
                if bytes.len() != seed.len() {
                    return Err(bad());
                }
                seed.copy_from_slice(&bytes);
                Ok((
                    SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
                    label,
                ))
            }
            "ecdsa-p256" => p256::ecdsa::SigningKey::from_slice(&bytes)
                .map(|k| (SigningKey::P256(k), label))
                .map_err(|_| bad()),
            "rsa-pkcs1" => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                rsa::RsaPrivateKey::from_pkcs1_der(&bytes)
                    .map(|k| (SigningKey::Rsa(Box::new(k)), label))
                    .map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }
}

fn entry(name: &KeyName) -> Result<keyring_core::Entry, KeystoreError> {
    super::ensure_store()?;
    keyring_core::Entry::new(super::service(), &name.entry()).map_err(|e| super::map_error(&e))
}

/// Reads a key; `Ok(None)` when the keyring has no such entry.
pub fn get(name: &KeyName) -> Result<Option<SigningKey>, KeystoreError> {
    Ok(get_labeled(name)?.map(|(k, _)| k))
}

/// Reads a key and, for an imported one, its label; `Ok(None)` when there is no such entry.
pub fn get_labeled(
    name: &KeyName,
) -> Result<Option<(SigningKey, Option<KeyLabel>)>, KeystoreError> {
    let parse = |text: &str| {
        SigningKey::from_labeled_secret(text, name)
            .map(Some)
            .map_err(|e| match e {
                KeystoreError::Corrupt { .. } => KeystoreError::Corrupt {
                    entry: name.entry(),
                },
                e => e,
            })
    };
    match super::read_text(&name.entry())? {
        Some(text) => parse(&text),
        None => Ok(None),
    }
}

/// Stores a key and reads it back, so a keyring that silently drops writes is caught before the
/// key is used to sign anything.
pub fn put(name: &KeyName, key: &SigningKey) -> Result<(), KeystoreError> {
    put_labeled(name, key, None)
}

/// [`put`] for an imported key, keeping the role and GUN its file named.
pub fn put_labeled(
    name: &KeyName,
    key: &SigningKey,
    label: Option<&KeyLabel>,
) -> Result<(), KeystoreError> {
    let e = entry(name)?;
    e.set_password(&key.to_labeled_secret(label))
        .map_err(|e| super::map_error(&e))?;
    match get(name)? {
        Some(back) if back.public() == key.public() => Ok(()),
        _ => Err(KeystoreError::Corrupt {
            entry: name.entry(),
        }),
    }
}

/// Deletes an entry; `Ok(false)` when there was none.
pub fn delete(name: &KeyName) -> Result<bool, KeystoreError> {
    match entry(name)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(super::map_error(&e)),
    }
}

/// A key held in the keyring, as `key list` shows it.
#[derive(Debug)]
pub struct Held {
    /// The entry name (`root`, `targets:<GUN>`, `key:<ID>`).
    pub entry: String,
    /// The key.
    pub key: SigningKey,
    /// Role and GUN: from the import for `key:` entries, from the entry name otherwise.
    pub label: KeyLabel,
    /// Whether it was imported (rather than created here).
    pub imported: bool,
}

/// Every signing key of this keyring service, sorted by entry name. Entries that are not keys
/// (cached tokens) are left out.
pub fn list() -> Result<Vec<Held>, KeystoreError> {
    let names = super::entry_names()?;
    let mut out = Vec::new();
    for user in names {
        let (name, label) = if user == "root" {
            (
                KeyName::Root,
                KeyLabel {
                    role: "root".into(),
                    gun: None,
                },
            )
        } else if let Some(gun) = user.strip_prefix("targets:") {
            (
                KeyName::Targets { gun: gun.into() },
                KeyLabel {
                    role: "targets".into(),
                    gun: Some(gun.into()),
                },
            )
        } else if let Some(id) = user.strip_prefix("key:") {
            (KeyName::Id { id: id.into() }, KeyLabel::default())
        } else {
            continue;
        };
        if let Some((key, stored)) = get_labeled(&name)? {
            let imported = matches!(name, KeyName::Id { .. });
            out.push(Held {
                entry: user,
                key,
                label: stored.unwrap_or(label),
                imported,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_both_key_types_without_showing_secrets() {
        for key in [
            SigningKey::generate_ed25519().unwrap(),
            SigningKey::generate_p256().unwrap(),
        ] {
            let stored = key.to_keyring_secret();
            let back = SigningKey::from_keyring_secret(&stored, &KeyName::Root).unwrap();
            assert_eq!(back.public(), key.public());
            let (method, sig) = key.sign(b"msg");
            key.public().verify(method, b"msg", &sig).unwrap();
            assert!(format!("{key:?}").contains("<redacted>"));
        }
    }

    #[test]
    fn corrupt_entry_is_an_error_naming_the_entry() {
        let err = SigningKey::from_keyring_secret("{}", &KeyName::Targets { gun: "r/a".into() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("targets:r/a"), "{err}");
    }
}
