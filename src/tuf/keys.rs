//! Public keys as Notary writes them, their IDs, and signature verification.
//!
//! A key is `{"keytype":T,"keyval":{"private":null,"public":"<base64>"}}`; its ID is
//! hex(sha256(canonical JSON of that)). `*-x509` keys carry a PEM certificate; their
//! "canonical ID" is the ID of the plain key made from the certificate's SPKI, which is what
//! private key files and `docker trust inspect`'s signer lists use (notes/notary-v1.md §3).
//!
//! Verification follows `tuf/signed/verifiers.go`: ecdsa is SHA-256 then raw r‖s for every
//! curve; eddsa is plain Ed25519; rsapss is SHA-256 with MGF1-SHA-256 (salt 32).

use base64::Engine as _;
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use x509_cert::Certificate;

use super::cjson;

/// Key types Notary knows.
pub mod keytype {
    /// Raw 32-byte Ed25519 key.
    pub const ED25519: &str = "ed25519";
    /// ECDSA SubjectPublicKeyInfo DER.
    pub const ECDSA: &str = "ecdsa";
    /// ECDSA key inside a PEM X.509 certificate.
    pub const ECDSA_X509: &str = "ecdsa-x509";
    /// RSA SubjectPublicKeyInfo DER.
    pub const RSA: &str = "rsa";
    /// RSA key inside a PEM X.509 certificate.
    pub const RSA_X509: &str = "rsa-x509";
}

/// A public key as it appears in metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `ed25519`, `ecdsa`, `ecdsa-x509`, `rsa` or `rsa-x509`.
    pub keytype: String,
    /// The decoded `keyval.public` bytes.
    pub public: Vec<u8>,
    parsed: ChainCache,
}

/// The certificate chain of an `*-x509` key, parsed on first use and kept with the key: one
/// verification checks a root certificate's rules, its pinning, and each signature it made, and
/// a hostile root should cost one parse per key for all of them (#8 item 17).
#[derive(Debug, Clone, Default)]
struct ChainCache(OnceLock<Chain>);

#[derive(Debug, Clone)]
struct Chain {
    // The bytes it was parsed from: `public` is a pub field, and a key edited after its first
    // parse must not be checked against its old certificates.
    from: Vec<u8>,
    certs: Result<Arc<[Certificate]>, KeyError>,
}

// The cache is not part of what a key is.
impl PartialEq for ChainCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for ChainCache {}

/// Certificates one `*-x509` key may carry: its leaf and intermediates.
pub const MAX_CERTS_PER_KEY: usize = 8;

const CERT_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";

thread_local! {
    static CHAIN_PARSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many certificate chains this thread has parsed: lets tests prove a verification parses
/// each key's certificates once (#8 item 17), however many checks use them.
#[doc(hidden)]
pub fn certificate_chain_parses() -> u64 {
    CHAIN_PARSES.with(|c| c.get())
}

/// Why a signature or key was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The key type cannot make this kind of signature.
    #[error("signature method {method} does not match key type {keytype}")]
    MethodMismatch {
        /// Signature method.
        method: String,
        /// Key type.
        keytype: String,
    },
    /// The key bytes do not parse.
    #[error("invalid {keytype} public key: {reason}")]
    BadKey {
        /// Key type.
        keytype: String,
        /// Why.
        reason: String,
    },
    /// The signature is wrong.
    #[error("signature does not verify")]
    BadSignature,
    /// The key type or curve is not supported.
    #[error("unsupported key: {0}")]
    Unsupported(String),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    keytype: String,
    keyval: KeyVal,
}

#[derive(Serialize, Deserialize)]
struct KeyVal {
    #[serde(default)]
    private: Option<serde_json::Value>,
    public: String,
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            keytype: self.keytype.clone(),
            keyval: KeyVal {
                private: None,
                public: b64(&self.public),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let public = base64::engine::general_purpose::STANDARD
            .decode(w.keyval.public.as_bytes())
            .map_err(serde::de::Error::custom)?;
        Ok(PublicKey::new(&w.keytype, public))
    }
}

/// Standard base64 with padding, as Go encodes `[]byte`.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl PublicKey {
    /// A key of `keytype` with these public bytes.
    pub fn new(keytype: &str, public: Vec<u8>) -> Self {
        PublicKey {
            keytype: keytype.to_string(),
            public,
            parsed: ChainCache::default(),
        }
    }

    /// The Notary key ID: hex(sha256(canonical key JSON)).
    pub fn id(&self) -> String {
        let v = json!({"keytype": self.keytype, "keyval": {"private": null, "public": b64(&self.public)}});
        let bytes = cjson::to_canonical(&v).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// The canonical key ID: for certificate keys, the ID of the bare key in the leaf.
    pub fn canonical_id(&self) -> Result<String, KeyError> {
        match self.keytype.as_str() {
            keytype::ECDSA_X509 | keytype::RSA_X509 => {
                let plain = if self.keytype == keytype::ECDSA_X509 {
                    keytype::ECDSA
                } else {
                    keytype::RSA
                };
                Ok(PublicKey::new(plain, self.spki_der()?).id())
            }
            _ => Ok(self.id()),
        }
    }

    /// The certificates of an `*-x509` key, leaf first; parsed once per key (see [`ChainCache`]).
    pub fn certificates(&self) -> Result<Arc<[Certificate]>, KeyError> {
        let fresh = || Chain {
            from: self.public.clone(),
            certs: self.parse_certificates().map(Arc::from),
        };
        let cached = self.parsed.0.get_or_init(fresh);
        if cached.from == self.public {
            return self.with_own_keytype(cached.certs.clone());
        }
        self.with_own_keytype(fresh().certs)
    }

    // Errors name the key type; the cache is shared by clones whose type could be edited too.
    fn with_own_keytype(
        &self,
        certs: Result<Arc<[Certificate]>, KeyError>,
    ) -> Result<Arc<[Certificate]>, KeyError> {
        certs.map_err(|e| match e {
            KeyError::BadKey { reason, .. } => KeyError::BadKey {
                keytype: self.keytype.clone(),
                reason,
            },
            other => other,
        })
    }

    fn parse_certificates(&self) -> Result<Vec<Certificate>, KeyError> {
        // Counted before parsing: a hostile root could carry thousands of certificates in one
        // key, and the chain walk to a pinned CA is quadratic in their number.
        let blocks = self
            .public
            .windows(CERT_BEGIN.len())
            .filter(|w| *w == CERT_BEGIN)
            .count();
        if blocks > MAX_CERTS_PER_KEY {
            return Err(KeyError::BadKey {
                keytype: self.keytype.clone(),
                reason: format!(
                    "{blocks} certificates, more than the {MAX_CERTS_PER_KEY} a leaf and its intermediates need"
                ),
            });
        }
        CHAIN_PARSES.with(|c| c.set(c.get() + 1));
        let certs = Certificate::load_pem_chain(&self.public).map_err(|e| KeyError::BadKey {
            keytype: self.keytype.clone(),
            reason: format!("certificate PEM: {e}"),
        })?;
        if certs.is_empty() {
            return Err(KeyError::BadKey {
                keytype: self.keytype.clone(),
                reason: "no certificate".into(),
            });
        }
        Ok(certs)
    }

    /// SubjectPublicKeyInfo DER of the key (of the leaf certificate for `*-x509`).
    pub fn spki_der(&self) -> Result<Vec<u8>, KeyError> {
        match self.keytype.as_str() {
            keytype::ECDSA_X509 | keytype::RSA_X509 => {
                let certs = self.certificates()?;
                certs[0]
                    .tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .map_err(|e| KeyError::BadKey {
                        keytype: self.keytype.clone(),
                        reason: e.to_string(),
                    })
            }
            keytype::ECDSA | keytype::RSA => Ok(self.public.clone()),
            other => Err(KeyError::Unsupported(format!("{other} has no SPKI"))),
        }
    }

    /// Verifies `sig` over `msg` (the canonical bytes of `signed`) with `method`.
    pub fn verify(&self, method: &str, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        let mismatch = || KeyError::MethodMismatch {
            method: method.to_string(),
            keytype: self.keytype.clone(),
        };
        match method {
            "eddsa" => {
                if self.keytype != keytype::ED25519 {
                    return Err(mismatch());
                }
                let bytes: [u8; 32] =
                    self.public
                        .as_slice()
                        .try_into()
                        .map_err(|_| KeyError::BadKey {
                            keytype: self.keytype.clone(),
                            reason: format!("{} bytes, expected 32", self.public.len()),
                        })?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|e| {
                    KeyError::BadKey {
                        keytype: self.keytype.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| KeyError::BadSignature)?;
                use ed25519_dalek::Verifier;
                vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            "ecdsa" => {
                if self.keytype != keytype::ECDSA && self.keytype != keytype::ECDSA_X509 {
                    return Err(mismatch());
                }
                verify_ecdsa(&self.spki_der()?, msg, sig)
            }
            "rsapss" | "rsapkcs1v15" => {
                if self.keytype != keytype::RSA && self.keytype != keytype::RSA_X509 {
                    return Err(mismatch());
                }
                verify_rsa(&self.spki_der()?, method, msg, sig)
            }
            other => Err(KeyError::Unsupported(format!("signature method {other}"))),
        }
    }
}

fn verify_ecdsa(spki: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use spki::DecodePublicKey;
    let bad = |e: &dyn std::fmt::Display| KeyError::BadKey {
        keytype: "ecdsa".into(),
        reason: e.to_string(),
    };
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).map_err(|e| bad(&e))?;
    let curve = info
        .algorithm
        .parameters_oid()
        .map_err(|e| bad(&e))?
        .to_string();
    match curve.as_str() {
        // secp256r1: every role of a docker repository is signed this way, and a command checks
        // several such signatures. ring's P-256 (the one TLS already uses) is several times
        // faster than the portable p256 crate, which stays for the point encodings ring does
        // not take (compressed points); both accept the same signatures (r||s, any valid s).
        "1.2.840.10045.3.1.7" => {
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| bad(&e))?;
            let point = info.subject_public_key.raw_bytes();
            if point.first() == Some(&0x04) {
                return ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    point,
                )
                .verify(msg, sig)
                .map_err(|_| KeyError::BadSignature);
            }
            let sig =
                p256::ecdsa::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
            vk.verify_prehash(&Sha256::digest(msg), &sig)
                .map_err(|_| KeyError::BadSignature)
        }
        // secp384r1
        "1.3.132.0.34" => {
            let digest = Sha256::digest(msg);
            let vk = p384::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| bad(&e))?;
            let sig =
                p384::ecdsa::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
            vk.verify_prehash(&digest, &sig)
                .map_err(|_| KeyError::BadSignature)
        }
        other => Err(KeyError::Unsupported(format!("ECDSA curve {other}"))),
    }
}

fn verify_rsa(spki: &[u8], method: &str, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    use rsa::signature::Verifier;
    use spki::DecodePublicKey;
    let key = rsa::RsaPublicKey::from_public_key_der(spki).map_err(|e| KeyError::BadKey {
        keytype: "rsa".into(),
        reason: e.to_string(),
    })?;
    if rsa::traits::PublicKeyParts::size(&key) < 256 {
        return Err(KeyError::BadKey {
            keytype: "rsa".into(),
            reason: "RSA keys must have at least 2048 bits".into(),
        });
    }
    if method == "rsapss" {
        let vk = rsa::pss::VerifyingKey::<Sha256>::new(key);
        let sig = rsa::pss::Signature::try_from(sig).map_err(|_| KeyError::BadSignature)?;
        vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
    } else {
        let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
        let sig = rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| KeyError::BadSignature)?;
        vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_matches_the_id_notary_gave_the_edsigner_key() {
        // See: audit P1-M8. The ed25519 key of targets/edsigner in
        // tests/data/notary-v1/example.com_test_deleg/targets.json, and the ID that file
        // gives it: an anchor outside this implementation.
        use base64::Engine as _;
        let public = base64::engine::general_purpose::STANDARD
            .decode("fE4Z9CeLhqvXKNUZKmjW2qBR6gs3Uyu0XHunHXsgFPg=")
            .unwrap();
        let k = PublicKey::new(keytype::ED25519, public);
        assert_eq!(
            k.id(),
            "0f635e4800221cca82d1da91d021bf745c9fc067c7e7b8cc9f49698a4648f391"
        );
    }

    #[test]
    fn a_certificate_key_edited_after_its_first_parse_is_read_from_its_new_bytes() {
        let crate::keystore::keys::SigningKey::P256(sk) =
            crate::keystore::keys::SigningKey::generate_p256().unwrap()
        else {
            unreachable!("generate_p256 makes a P-256 key")
        };
        let now = time::OffsetDateTime::now_utc();
        let pem = crate::tuf::x509::make_root_certificate(&sk, "g", now).unwrap();
        let mut k = PublicKey::new(keytype::ECDSA_X509, pem.into_bytes());
        let before = certificate_chain_parses();
        assert_eq!(k.certificates().unwrap().len(), 1);
        assert_eq!(k.certificates().unwrap().len(), 1);
        assert_eq!(certificate_chain_parses() - before, 1);
        k.public = b"not a certificate".to_vec();
        assert!(matches!(k.certificates(), Err(KeyError::BadKey { .. })));
    }

    /// A P-256 key's SPKI with its point uncompressed (as notary and docker write it) and
    /// compressed, a message, and a signature of it.
    fn p256_fixture() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        use p256::ecdsa::signature::Signer;
        use p256::pkcs8::EncodePublicKey;
        let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let vk = sk.verifying_key();
        let uncompressed = vk.to_public_key_der().unwrap().as_bytes().to_vec();
        // The compressed SPKI: the uncompressed one's algorithm part, then the 33-byte point.
        let point = vk.to_sec1_point(true);
        let algorithm = &uncompressed[2..2 + 2 + uncompressed[3] as usize];
        let mut bits = vec![0x03, point.len() as u8 + 1, 0x00];
        bits.extend_from_slice(point.as_bytes());
        let mut compressed = vec![0x30, (algorithm.len() + bits.len()) as u8];
        compressed.extend_from_slice(algorithm);
        compressed.extend_from_slice(&bits);
        let msg = b"{\"signed\":{}}".to_vec();
        let sig: p256::ecdsa::Signature = sk.sign(&msg);
        (uncompressed, compressed, msg, sig.to_bytes().to_vec())
    }

    #[test]
    fn p256_signatures_verify_alike_for_uncompressed_and_compressed_keys() {
        let (uncompressed, compressed, msg, sig) = p256_fixture();
        assert!(spki::SubjectPublicKeyInfoRef::from_der(&compressed).is_ok());
        // The order n of the P-256 group (SEC 2 §2.4.2).
        let order = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
        // The same signature with s replaced by n - s: Go's ecdsa.Verify (notary-server's)
        // accepts both forms, so both must verify here too.
        let n = crypto_bigint::U256::from_be_hex(order);
        let s = crypto_bigint::U256::from_be_slice(&sig[32..]);
        let mut high_s = sig[..32].to_vec();
        high_s.extend_from_slice(&n.wrapping_sub(&s).to_be_bytes());
        let mut flipped = sig.clone();
        flipped[40] ^= 1;
        let mut other_msg = msg.clone();
        other_msg[2] ^= 1;
        for spki in [&uncompressed, &compressed] {
            assert!(verify_ecdsa(spki, &msg, &sig).is_ok());
            assert!(verify_ecdsa(spki, &msg, &high_s).is_ok());
            for (m, s) in [
                (&msg, &flipped),
                (&other_msg, &sig),
                (&msg, &sig[..63].to_vec()),
                (&msg, &[0u8; 64].to_vec()),
            ] {
                assert!(
                    matches!(verify_ecdsa(spki, m, s), Err(KeyError::BadSignature)),
                    "{spki:?} {s:?}"
                );
            }
        }
    }

    #[test]
    fn a_p256_key_off_the_curve_is_a_bad_key_not_a_bad_signature() {
        let (mut uncompressed, _, msg, sig) = p256_fixture();
        let last = uncompressed.len() - 1;
        uncompressed[last] ^= 1;
        assert!(matches!(
            verify_ecdsa(&uncompressed, &msg, &sig),
            Err(KeyError::BadKey { .. })
        ));
    }

    #[test]
    fn method_must_match_key_type() {
        let k = PublicKey::new(keytype::ED25519, vec![0u8; 32]);
        assert!(matches!(
            k.verify("ecdsa", b"x", &[0u8; 64]),
            Err(KeyError::MethodMismatch { .. })
        ));
    }
}
