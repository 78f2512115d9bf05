//! Reading a secret from the Secret Service over one encrypted session per process, set up
//! early and cheaply; the hot path of every signing command (one key read).
//!
//! The `secret-service` crate under keyring-core computes its 1024-bit Diffie-Hellman with a
//! naive square-and-multiply over heap big integers (milliseconds of CPU, twice per session);
//! here the same exchange (`dh-ietf1024-sha256-aes128-cbc-pkcs7`, the Secret Service spec's
//! only encrypted algorithm) uses crypto-bigint's constant-time Montgomery exponentiation, and
//! [`warm`] does it on a background thread while the command's network requests run.
//!
//! Our private exponent has 256 bits, not 1024. On a two-core laptop or CI runner, a signing
//! command is bound by the CPU that it, the Secret Service and the notary server share. A
//! 1024-bit group gives about 80 bits of security however long the exponent is, and a
//! 256-bit exponent leaves the short-exponent attacks (Pollard's kangaroo, about 2^128 steps)
//! far above that. This is the rule of RFC 7919 §5.2 and NIST SP 800-56A (at least twice the
//! security strength), and what OpenSSL does for named groups. Both exponentiations cost a
//! quarter as much.
//!
//! Only unambiguous, unlocked reads are answered here. Anything else (no bus, no Secret
//! Service, a locked or ambiguous item, an answer of the wrong shape) is [`Fallback`]: the
//! caller reads through keyring-core instead, which unlocks, prompts or names the problem as
//! before. The session stays encrypted: a secret never crosses the bus in clear.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U256, U1024};
use sha2::Sha256;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zeroize::{Zeroize, Zeroizing};

const DEST: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_IFACE: &str = "org.freedesktop.Secret.Service";
const ITEM_IFACE: &str = "org.freedesktop.Secret.Item";
const ALGORITHM: &str = "dh-ietf1024-sha256-aes128-cbc-pkcs7";
/// Bytes of a group element.
const BYTES: usize = 128;

/// The Second Oakley Group (RFC 2409 §6.2), which the Secret Service spec prescribes.
const PRIME: Odd<U1024> = Odd::<U1024>::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
));

/// The Secret Service cannot answer this read here; read through keyring-core.
#[derive(Debug)]
pub struct Fallback(pub String);

impl<E: std::fmt::Display> From<E> for Fallback {
    fn from(e: E) -> Self {
        Fallback(e.to_string())
    }
}

/// An open encrypted session on the session bus.
struct Session {
    conn: zbus::blocking::Connection,
    path: OwnedObjectPath,
    aes_key: Zeroizing<[u8; 16]>,
}

static SESSION: OnceLock<Result<Mutex<Session>, String>> = OnceLock::new();

/// Opens the session now, so the first read does not wait for it. Errors are kept for
/// [`read`], which then falls back.
pub fn warm() {
    session();
}

/// Whether the session is open (opening it now if it was not tried yet).
pub fn is_open() -> bool {
    session().is_ok()
}

fn session() -> &'static Result<Mutex<Session>, String> {
    SESSION.get_or_init(|| open().map(Mutex::new).map_err(|Fallback(e)| e))
}

/// Bits of our private exponent (see the module comment).
const PRIVATE_BITS: u32 = U256::BITS;

/// A Diffie-Hellman key pair in the Second Oakley Group.
struct Keypair {
    private: U256,
    public: [u8; BYTES],
}

impl Drop for Keypair {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

fn params() -> FixedMontyParams<{ U1024::LIMBS }> {
    // The modulus is public: setting up its parameters in variable time leaks nothing.
    FixedMontyParams::new_vartime(PRIME)
}

impl Keypair {
    fn generate() -> Result<Self, Fallback> {
        let mut bytes = Zeroizing::new([0u8; PRIVATE_BITS as usize / 8]);
        getrandom::fill(bytes.as_mut_slice())?;
        // The top bit set: the exponent is never short by chance.
        bytes[0] |= 0x80;
        let private = U256::from_be_slice(bytes.as_slice());
        let g = FixedMontyForm::new(&U1024::from_u8(2), &params());
        let public = g
            .pow_bounded_exp(&private, PRIVATE_BITS)
            .retrieve()
            .to_be_bytes();
        let mut out = [0u8; BYTES];
        out.copy_from_slice(public.as_ref());
        Ok(Keypair {
            private,
            public: out,
        })
    }

    /// The AES key both sides derive: HKDF-SHA256 over the shared secret (big-endian, padded
    /// to 128 bytes), no salt, no info, 16 bytes.
    fn derive(&self, server_public: &[u8]) -> Result<Zeroizing<[u8; 16]>, Fallback> {
        let y = element(server_public)?;
        let shared = Zeroizing::new(
            FixedMontyForm::new(&y, &params())
                .pow_bounded_exp(&self.private, PRIVATE_BITS)
                .retrieve()
                .to_be_bytes(),
        );
        let mut key = Zeroizing::new([0u8; 16]);
        hkdf::Hkdf::<Sha256>::new(None, shared.as_ref())
            .expand(&[], key.as_mut_slice())
            .map_err(|_| Fallback("HKDF output length".into()))?;
        Ok(key)
    }
}

/// The peer's public value as a group element, refusing the trivial ones (0, 1, p − 1 and
/// anything not below p), which would make the shared secret predictable.
fn element(bytes: &[u8]) -> Result<U1024, Fallback> {
    if bytes.len() > BYTES {
        return Err(Fallback(
            "the Secret Service's public key is too long".into(),
        ));
    }
    let mut padded = [0u8; BYTES];
    padded[BYTES - bytes.len()..].copy_from_slice(bytes);
    let y = U1024::from_be_slice(&padded);
    let p_minus_1 = PRIME.get().wrapping_sub(&U1024::ONE);
    if y <= U1024::ONE || y >= p_minus_1 {
        return Err(Fallback(
            "the Secret Service's public key is not a valid group element".into(),
        ));
    }
    Ok(y)
}

/// Public values go on the bus without leading zero bytes, as other clients send them.
fn trimmed(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros.min(bytes.len() - 1)..]
}

fn open() -> Result<Session, Fallback> {
    // The key pair first: it needs no bus, and is the larger part of the work.
    let keypair = Keypair::generate()?;
    let conn = zbus::blocking::Connection::session()?;
    let reply = conn.call_method(
        Some(DEST),
        SERVICE_PATH,
        Some(SERVICE_IFACE),
        "OpenSession",
        &(ALGORITHM, Value::new(trimmed(&keypair.public).to_vec())),
    )?;
    let (output, path): (OwnedValue, OwnedObjectPath) = reply.body().deserialize()?;
    let server_public: Vec<u8> = output.try_into()?;
    let aes_key = keypair.derive(&server_public)?;
    Ok(Session {
        conn,
        path,
        aes_key,
    })
}

/// The secret stored under `attributes`, `Ok(None)` when no item has them.
pub fn read(attributes: &HashMap<&str, &str>) -> Result<Option<Zeroizing<Vec<u8>>>, Fallback> {
    let session = session()
        .as_ref()
        .map_err(|e| Fallback(e.clone()))?
        .lock()
        .map_err(|_| Fallback("the session lock is poisoned".into()))?;
    let reply = session.conn.call_method(
        Some(DEST),
        SERVICE_PATH,
        Some(SERVICE_IFACE),
        "SearchItems",
        &(attributes,),
    )?;
    let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
        reply.body().deserialize()?;
    let item = match (unlocked.as_slice(), locked.as_slice()) {
        ([], []) => return Ok(None),
        ([item], []) => item,
        _ => return Err(Fallback("a locked or ambiguous item".into())),
    };
    let reply = session.conn.call_method(
        Some(DEST),
        item.as_str(),
        Some(ITEM_IFACE),
        "GetSecret",
        &(ObjectPath::from(&session.path),),
    )?;
    let (secret_session, iv, value, _content_type): (OwnedObjectPath, Vec<u8>, Vec<u8>, String) =
        reply.body().deserialize()?;
    if secret_session != session.path {
        return Err(Fallback("a secret for another session".into()));
    }
    let value = Zeroizing::new(value);
    let plain = cbc::Decryptor::<aes::Aes128>::new_from_slices(session.aes_key.as_slice(), &iv)
        .map_err(|_| Fallback("an AES key or IV of the wrong length".into()))?
        .decrypt_padded_vec::<Pkcs7>(&value)
        .map_err(|_| Fallback("a secret that does not decrypt".into()))?;
    Ok(Some(Zeroizing::new(plain)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_the_exchange_derive_one_key() {
        let a = Keypair::generate().unwrap();
        let b = Keypair::generate().unwrap();
        assert_eq!(
            *a.derive(trimmed(&b.public)).unwrap(),
            *b.derive(&a.public).unwrap()
        );
        assert_ne!(a.public, b.public);
    }

    #[test]
    fn the_private_exponent_has_exactly_256_bits_and_the_public_value_is_the_generator_to_it() {
        let k = Keypair::generate().unwrap();
        assert_eq!(k.private.bits_vartime(), 256);
        // The bounded exponentiation against the unbounded one over a 1024-bit copy.
        let full = U1024::from_be_slice(&{
            let mut b = [0u8; BYTES];
            b[BYTES - 32..].copy_from_slice(&k.private.to_be_bytes());
            b
        });
        let expected = FixedMontyForm::new(&U1024::from_u8(2), &params())
            .pow(&full)
            .retrieve()
            .to_be_bytes();
        assert_eq!(k.public.as_slice(), expected.as_ref());
    }

    #[test]
    fn trivial_public_values_are_refused() {
        let k = Keypair::generate().unwrap();
        let p = PRIME.get().to_be_bytes();
        let p_minus_1 = PRIME.get().wrapping_sub(&U1024::ONE).to_be_bytes();
        for bad in [
            &[][..],
            &[0],
            &[1],
            p_minus_1.as_ref(),
            p.as_ref(),
            &[0xff; BYTES],
            &[1; BYTES + 1],
        ] {
            assert!(k.derive(bad).is_err(), "{bad:?}");
        }
        assert!(k.derive(&[2]).is_ok());
    }

    #[test]
    fn the_generator_to_a_known_exponent_matches_plain_arithmetic() {
        // 2^200 mod p is 2^200 itself (p > 2^1000): a check of the Montgomery setup.
        let x = U1024::from_u16(200);
        let y = FixedMontyForm::new(&U1024::from_u8(2), &params())
            .pow(&x)
            .retrieve();
        assert_eq!(y, U1024::ONE.shl_vartime(200));
    }
}
