//! Notary Project signing keys in the OS keyring: one entry `notation:<NAME>` per key, holding
//! the private key (PKCS#8) and its certificate chain together, so a key is never used with a
//! certificate that is not its own. Like the DCT keys, the private key goes from the keyring to
//! memory and back, never to a file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeystoreError;
use crate::notation::sign::NotationKey;

const PREFIX: &str = "notation:";

/// A signing key with its chain (leaf first, DER).
#[derive(Debug)]
pub struct NotationSigner {
    /// The name it is stored under.
    pub name: String,
    /// The private key.
    pub key: NotationKey,
    /// The certificate chain, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    keytype: &'a str,
    pkcs8: &'a str,
    chain: Vec<String>,
}

const KEYTYPE: &str = "notation-pkcs8";

/// Whether `name` is usable as a key name (and a file name for its certificate).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn entry(name: &str) -> Result<keyring_core::Entry, KeystoreError> {
    super::ensure_store()?;
    keyring_core::Entry::new(super::service(), &format!("{PREFIX}{name}"))
        .map_err(|e| super::map_error(&e))
}

fn corrupt(name: &str) -> KeystoreError {
    KeystoreError::Corrupt {
        entry: format!("{PREFIX}{name}"),
    }
}

/// Reads the key `name`; `Ok(None)` when there is none.
pub fn get(name: &str) -> Result<Option<NotationSigner>, KeystoreError> {
    let Some(text) = super::read_text(&format!("{PREFIX}{name}"))? else {
        return Ok(None);
    };
    let stored: Stored<'_> = serde_json::from_str(&text).map_err(|_| corrupt(name))?;
    if stored.keytype != KEYTYPE {
        return Err(corrupt(name));
    }
    let der = Zeroizing::new(
        STANDARD
            .decode(stored.pkcs8.as_bytes())
            .map_err(|_| corrupt(name))?,
    );
    let key = NotationKey::from_pkcs8_der(&der).map_err(|_| corrupt(name))?;
    let chain = stored
        .chain
        .iter()
        .map(|c| STANDARD.decode(c.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt(name))?;
    if chain.is_empty() {
        return Err(corrupt(name));
    }
    Ok(Some(NotationSigner {
        name: name.to_string(),
        key,
        chain,
    }))
}

/// Stores a new key. An existing key of that name is never replaced (that would lose a key
/// whose certificate others trust): `Ok(false)` then, and nothing changes. The entry is read
/// back, so a keyring that drops writes is caught before the certificate is handed out.
pub fn put_new(name: &str, key: &NotationKey, chain: &[Vec<u8>]) -> Result<bool, KeystoreError> {
    if get(name)?.is_some() {
        return Ok(false);
    }
    let der = key.to_pkcs8_der().map_err(|_| corrupt(name))?;
    let mut b64 = Zeroizing::new(String::with_capacity(der.len().div_ceil(3) * 4 + 4));
    STANDARD.encode_string(der.as_slice(), &mut b64);
    let stored = Stored {
        keytype: KEYTYPE,
        pkcs8: &b64,
        chain: chain.iter().map(|c| STANDARD.encode(c)).collect(),
    };
    let json = Zeroizing::new(serde_json::to_string(&stored).map_err(|_| corrupt(name))?);
    entry(name)?
        .set_password(&json)
        .map_err(|e| super::map_error(&e))?;
    match get(name)? {
        Some(back) if back.key.public_spki() == key.public_spki() && back.chain == chain => {
            Ok(true)
        }
        _ => Err(corrupt(name)),
    }
}

/// The names of every Notary Project key of this keyring service, sorted.
pub fn list() -> Result<Vec<String>, KeystoreError> {
    Ok(super::entry_names()?
        .into_iter()
        .filter_map(|user| user.strip_prefix(PREFIX).map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_that_could_escape_a_directory_are_invalid() {
        for bad in ["", "../x", "a/b", ".hidden", "x y", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name("release-2026.v1_a"));
    }
}
