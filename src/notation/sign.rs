//! Writing Notary Project signatures: the JWS envelope (flattened JSON, `notary.x509` scheme)
//! over a manifest descriptor, and the OCI manifest that attaches it to the image.
//!
//! Pure: no I/O. The descriptor signed is the one the caller resolved from the registry and
//! verified by hashing the bytes; this module cannot check that and does not try.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha384, Sha512};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::certgen::{CertRuleError, KeySpec};
pub use super::envelope::Descriptor;
use super::envelope::{Payload, ProtectedHeader, flattened_jws, signing_input};
use super::{
    ANNOTATION_THUMBPRINT, ARTIFACT_TYPE_SIGNATURE, EMPTY_CONFIG_DIGEST, MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_JWS, MEDIA_TYPE_OCI_MANIFEST,
};

/// The OCI empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// What this tool writes as `io.cncf.notary.signingAgent`.
pub const SIGNING_AGENT: &str = concat!("docker-trustacr/", env!("CARGO_PKG_VERSION"));

/// A private key that signs Notary Project signatures.
pub enum NotationKey {
    /// ECDSA P-256 (ES256): what `key generate --notation` makes.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384 (ES384).
    P384(p384::ecdsa::SigningKey),
    /// ECDSA P-521 (ES512).
    P521(p521::ecdsa::SigningKey),
    /// RSA 2048/3072/4096 (PS256/384/512, salt = hash length).
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl std::fmt::Debug for NotationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotationKey({:?}, <redacted>)", self.spec())
    }
}

impl NotationKey {
    /// The key's spec.
    pub fn spec(&self) -> KeySpec {
        use rsa::traits::PublicKeyParts;
        match self {
            NotationKey::P256(_) => KeySpec::EcP256,
            NotationKey::P384(_) => KeySpec::EcP384,
            NotationKey::P521(_) => KeySpec::EcP521,
            NotationKey::Rsa(k) => KeySpec::Rsa(k.n().bits() as usize),
        }
    }

    /// The public key as SPKI DER, to compare with a certificate's.
    pub fn public_spki(&self) -> Vec<u8> {
        use spki::EncodePublicKey;
        let der = match self {
            NotationKey::P256(k) => k.verifying_key().to_public_key_der(),
            NotationKey::P384(k) => k.verifying_key().to_public_key_der(),
            NotationKey::P521(k) => k.verifying_key().to_public_key_der(),
            NotationKey::Rsa(k) => k.to_public_key().to_public_key_der(),
        };
        der.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    /// Signs `msg` in the JWS form: raw `r‖s` for ECDSA, PSS for RSA.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            NotationKey::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            NotationKey::P384(k) => {
                use p384::ecdsa::signature::Signer;
                let sig: p384::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            NotationKey::P521(k) => {
                use p521::ecdsa::signature::Signer;
                let sig: p521::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            NotationKey::Rsa(k) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                let mut rng = getrandom::SysRng;
                let key = (**k).clone();
                let bytes = match self.spec() {
                    KeySpec::Rsa(2048) => rsa::pss::SigningKey::<Sha256>::new(key)
                        .try_sign_with_rng(&mut rng, msg)
                        .map(|s| s.to_vec()),
                    KeySpec::Rsa(3072) => rsa::pss::SigningKey::<Sha384>::new(key)
                        .try_sign_with_rng(&mut rng, msg)
                        .map(|s| s.to_vec()),
                    _ => rsa::pss::SigningKey::<Sha512>::new(key)
                        .try_sign_with_rng(&mut rng, msg)
                        .map(|s| s.to_vec()),
                };
                bytes.map_err(|e| SignError::Key(e.to_string()))
            }
        }
    }

    /// The key from PKCS#8 DER (as stored in the keyring, or read from a key file).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignError> {
        use pkcs8::DecodePrivateKey;
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(NotationKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(NotationKey::P384(k));
        }
        if let Ok(k) = p521::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(NotationKey::P521(k));
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(NotationKey::Rsa(Box::new(k)));
        }
        Err(SignError::Key(
            "not an ECDSA P-256/P-384/P-521 or RSA PKCS#8 private key (Ed25519 and other types cannot sign Notary Project signatures)".into(),
        ))
    }

    /// The key as PKCS#8 DER, wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, SignError> {
        use pkcs8::EncodePrivateKey;
        let doc = match self {
            NotationKey::P256(k) => k.to_pkcs8_der(),
            NotationKey::P384(k) => k.to_pkcs8_der(),
            NotationKey::P521(k) => k.to_pkcs8_der(),
            NotationKey::Rsa(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| SignError::Key(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }
}

/// Errors making a signature.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key cannot be used.
    #[error("notation signing key: {0}")]
    Key(String),
    /// The certificate chain is not acceptable now.
    #[error(transparent)]
    Certificate(#[from] CertRuleError),
}

/// Lower-case hex SHA-256 of each certificate, in chain order.
pub fn thumbprints(chain_der: &[Vec<u8>]) -> Vec<String> {
    chain_der
        .iter()
        .map(|c| hex::encode(Sha256::digest(c)))
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Whole seconds in UTC: the spec says fractional seconds SHOULD NOT be used.
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// Builds the flattened JWS envelope signing `target` with `key`, whose certificate chain
/// (leaf first, DER) is `chain_der`. The chain is checked against the spec's rules at
/// `signing_time` and must hold `key`'s public key, so a signature that notation would refuse
/// for its certificate is never written. `expiry`, when given, must be after the signing time.
pub fn sign_envelope(
    key: &NotationKey,
    chain_der: &[Vec<u8>],
    target: &Descriptor,
    signing_time: OffsetDateTime,
    expiry: Option<OffsetDateTime>,
) -> Result<Vec<u8>, SignError> {
    let chain = super::certgen::parse_der_chain(chain_der)?;
    let spec = super::certgen::check_chain(&chain, signing_time)?;
    let leaf_spki = {
        use der::Encode;
        chain[0]
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap_or_default()
    };
    if leaf_spki != key.public_spki() || spec != key.spec() {
        return Err(CertRuleError::KeyMismatch.into());
    }
    if expiry.is_some_and(|e| e <= signing_time) {
        return Err(SignError::Key(
            "the signature expiry must be after the signing time".into(),
        ));
    }
    let utc = |t: OffsetDateTime| t.to_offset(time::UtcOffset::UTC);
    let protected = ProtectedHeader::new_x509(spec.algorithm(), utc(signing_time), expiry.map(utc))
        .to_json()
        .map_err(|e| SignError::Key(e.to_string()))?;
    // Only the three fields notation compares; the caller's annotations are not signed here.
    let payload = serde_json::to_vec(&Payload {
        target_artifact: Descriptor {
            annotations: None,
            ..target.clone()
        },
    })
    .map_err(|e| SignError::Key(e.to_string()))?;
    let signature = key.sign(signing_input(&protected, &payload).as_bytes())?;
    Ok(flattened_jws(
        &protected,
        &payload,
        &signature,
        chain_der,
        Some(SIGNING_AGENT),
    ))
}

impl NotationKey {
    /// Whether `sig` (JWS form) is this key's signature of `msg`.
    fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        use rsa::signature::Verifier;
        match self {
            NotationKey::P256(k) => p256::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| k.verifying_key().verify(msg, &s).is_ok()),
            NotationKey::P384(k) => p384::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| k.verifying_key().verify(msg, &s).is_ok()),
            NotationKey::P521(k) => p521::ecdsa::Signature::from_slice(sig)
                .is_ok_and(|s| k.verifying_key().verify(msg, &s).is_ok()),
            NotationKey::Rsa(k) => {
                let Ok(s) = rsa::pss::Signature::try_from(sig) else {
                    return false;
                };
                let public = k.to_public_key();
                match self.spec() {
                    KeySpec::Rsa(2048) => rsa::pss::VerifyingKey::<Sha256>::new(public)
                        .verify(msg, &s)
                        .is_ok(),
                    KeySpec::Rsa(3072) => rsa::pss::VerifyingKey::<Sha384>::new(public)
                        .verify(msg, &s)
                        .is_ok(),
                    _ => rsa::pss::VerifyingKey::<Sha512>::new(public)
                        .verify(msg, &s)
                        .is_ok(),
                }
            }
        }
    }
}

/// Whether `envelope` is a signature this key made over exactly `target` that has not expired
/// at `now`: the leaf in `x5c` is `leaf_der`, the `notary.x509` scheme, the key's algorithm,
/// a signature that verifies with the key, and a payload naming the same media type, digest
/// and size. `migrate` uses it to find the tags it already co-signed; it is not a trust
/// decision (that is the verifier's, against a trust policy), only "is this one mine".
pub fn is_own_signature(
    key: &NotationKey,
    leaf_der: &[u8],
    envelope: &[u8],
    target: &Descriptor,
    now: OffsetDateTime,
) -> bool {
    own_signature(key, leaf_der, envelope, target, now).unwrap_or(false)
}

fn own_signature(
    key: &NotationKey,
    leaf_der: &[u8],
    envelope: &[u8],
    target: &Descriptor,
    now: OffsetDateTime,
) -> Option<bool> {
    let env = super::envelope::parse_jws(envelope).ok()?;
    let p = &env.protected;
    Some(
        env.certificate_chain.first().map(Vec::as_slice) == Some(leaf_der)
            && key.verifies(&env.signing_input, &env.signature)
            && p.alg == key.spec().algorithm()
            && p.signing_scheme == super::scheme::X509
            && p.cty == super::MEDIA_TYPE_PAYLOAD_V1
            && p.expiry.is_none_or(|e| e > now)
            && env.payload.target_artifact.same_content(target),
    )
}

/// The descriptor of a blob.
pub fn blob_descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        size: bytes.len() as u64,
        annotations: None,
    }
}

/// The signature manifest (the `artifactType` shape that the spec recommends): the empty
/// config, the envelope as the one layer, `subject` = the signed manifest, and the chain's
/// thumbprints. Returns its bytes.
pub fn signature_manifest(
    subject: &Descriptor,
    envelope: &[u8],
    chain_der: &[Vec<u8>],
    created: OffsetDateTime,
) -> Vec<u8> {
    let layer = blob_descriptor(MEDIA_TYPE_JWS, envelope);
    let thumbs = serde_json::to_string(&thumbprints(chain_der)).unwrap_or_default();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE_SIGNATURE,
        "config": {
            "mediaType": MEDIA_TYPE_EMPTY,
            "digest": EMPTY_CONFIG_DIGEST,
            "size": EMPTY_CONFIG.len(),
            "data": STANDARD.encode(EMPTY_CONFIG),
        },
        "layers": [layer],
        "subject": Descriptor { annotations: None, ..subject.clone() },
        "annotations": {
            ANNOTATION_THUMBPRINT: thumbs,
            "org.opencontainers.image.created": rfc3339(created),
        },
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notation::certgen::{Subject, make_signing_certificate};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn signer() -> (NotationKey, Vec<Vec<u8>>) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
        let now = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let der = make_signing_certificate(&sk, &Subject::default_for("t"), 2, now).unwrap();
        (NotationKey::P256(sk), vec![der])
    }

    fn target() -> Descriptor {
        Descriptor {
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 528,
            annotations: None,
        }
    }

    #[test]
    fn envelope_signature_verifies_with_the_leaf_key_over_protected_dot_payload() {
        let (key, chain) = signer();
        let now = OffsetDateTime::now_utc();
        let env = sign_envelope(&key, &chain, &target(), now, None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&env).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["header", "payload", "protected", "signature"]);
        let p = v["protected"].as_str().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["crit"][0], "io.cncf.notary.signingScheme");
        let input = format!("{p}.{}", v["payload"].as_str().unwrap());
        let sig = URL_SAFE_NO_PAD
            .decode(v["signature"].as_str().unwrap())
            .unwrap();
        let NotationKey::P256(sk) = &key else {
            unreachable!()
        };
        use p256::ecdsa::signature::Verifier;
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        sk.verifying_key().verify(input.as_bytes(), &sig).unwrap();
    }

    #[test]
    fn own_signature_is_recognised_only_for_the_same_target_and_key() {
        let (key, chain) = signer();
        let now = OffsetDateTime::now_utc();
        let env = sign_envelope(&key, &chain, &target(), now, None).unwrap();
        assert!(is_own_signature(&key, &chain[0], &env, &target(), now));
        let mut other = target();
        other.size += 1;
        assert!(!is_own_signature(&key, &chain[0], &env, &other, now));
        let stranger = NotationKey::P256(p256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap());
        assert!(!is_own_signature(
            &stranger,
            &chain[0],
            &env,
            &target(),
            now
        ));
        let expiring = sign_envelope(
            &key,
            &chain,
            &target(),
            now,
            Some(now + time::Duration::hours(1)),
        )
        .unwrap();
        assert!(!is_own_signature(
            &key,
            &chain[0],
            &expiring,
            &target(),
            now + time::Duration::hours(2)
        ));
    }

    #[test]
    fn key_that_is_not_the_certificates_is_refused() {
        let (_, chain) = signer();
        let other = NotationKey::P256(p256::ecdsa::SigningKey::from_slice(&[6u8; 32]).unwrap());
        let err = sign_envelope(&other, &chain, &target(), OffsetDateTime::now_utc(), None);
        assert!(matches!(
            err,
            Err(SignError::Certificate(CertRuleError::KeyMismatch))
        ));
    }

    #[test]
    fn expired_certificate_signs_nothing() {
        let (key, chain) = signer();
        let later = OffsetDateTime::now_utc() + time::Duration::days(3);
        let err = sign_envelope(&key, &chain, &target(), later, None);
        assert!(matches!(
            err,
            Err(SignError::Certificate(CertRuleError::Validity { .. }))
        ));
    }
}
