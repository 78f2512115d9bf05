//! ES256 JWTs as docker distribution's token auth reads them (raw r||s signatures), and the
//! libtrust key ID that distribution uses for `kid`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

pub struct Signer {
    key: SigningKey,
    verifying: VerifyingKey,
    header: Value,
}

impl Signer {
    /// A signer whose header names the key by libtrust `kid`, or carries `x5c` with `cert`.
    pub fn new(key: SigningKey, cert_der: Option<&[u8]>, use_x5c: bool) -> Signer {
        let verifying = *key.verifying_key();
        let header = match cert_der {
            Some(der) if use_x5c => {
                json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(der)]})
            }
            _ => json!({"typ": "JWT", "alg": "ES256", "kid": libtrust_key_id(&verifying)}),
        };
        Signer {
            key,
            verifying,
            header,
        }
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    pub fn sign(&self, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.header).unwrap());
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let input = format!("{h}.{c}");
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// The claims of a token this signer made, if its signature is good. Expiry is the
    /// caller's business.
    pub fn verify(&self, token: &str) -> Result<Value, &'static str> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT");
        };
        let header: Value = decode_part(h)?;
        if header["alg"] != "ES256" {
            return Err("unexpected alg");
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "bad signature encoding")?;
        let sig = Signature::from_slice(&sig).map_err(|_| "bad signature")?;
        let input_len = h.len() + 1 + c.len();
        self.verifying
            .verify(&token.as_bytes()[..input_len], &sig)
            .map_err(|_| "signature does not verify")?;
        decode_part(c)
    }
}

/// The claims of a JWT, without checking anything.
pub fn unverified_claims(token: &str) -> Result<Value, &'static str> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next()) {
        (Some(_), Some(c)) => decode_part(c),
        _ => Err("not a JWT"),
    }
}

fn decode_part(p: &str) -> Result<Value, &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .map_err(|_| "bad base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "bad JSON")
}

/// libtrust's key ID: the first 240 bits of SHA-256 over the DER SubjectPublicKeyInfo, in
/// base32, as 12 groups of 4 separated by colons.
pub fn libtrust_key_id(key: &VerifyingKey) -> String {
    let spki = key.to_public_key_der().expect("encode SPKI");
    let digest = Sha256::digest(spki.as_bytes());
    let b32 = base32(&digest[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// An EC P-256 private key from PEM (PKCS#8 or SEC1).
pub fn load_key(path: &Path) -> Result<SigningKey, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    if let Ok(k) = SigningKey::from_pkcs8_pem(&text) {
        return Ok(k);
    }
    p256::SecretKey::from_sec1_pem(&text)
        .map(SigningKey::from)
        .map_err(|_| format!("{}: not an EC P-256 private key", path.display()))
}

/// The first certificate of a PEM file, DER.
pub fn load_cert_der(path: &Path) -> Result<Vec<u8>, String> {
    CertificateDer::from_pem_file(path)
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Random hex, for `jti`.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("system randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
    }

    #[test]
    fn key_id_has_twelve_groups() {
        let k = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let id = libtrust_key_id(k.verifying_key());
        assert_eq!(id.split(':').count(), 12);
        assert!(id.split(':').all(|g| g.len() == 4));
    }

    #[test]
    fn sign_then_verify() {
        let k = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let s = Signer::new(k, None, false);
        let t = s.sign(&json!({"a": 1}));
        assert_eq!(s.verify(&t).unwrap()["a"], 1);
        let mut bad = t.clone();
        bad.replace_range(t.len() - 3.., "AAA");
        assert!(s.verify(&bad).is_err());
        let other = Signer::new(SigningKey::from_slice(&[8u8; 32]).unwrap(), None, false);
        assert!(other.verify(&t).is_err());
    }
}
