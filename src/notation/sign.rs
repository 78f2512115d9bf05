//! Writing Notary Project signatures: the JWS envelope (flattened JSON, `notary.x509` scheme)
//! over a manifest descriptor, and the OCI manifest that attaches it to the image.
//!
//! Pure: no I/O. The descriptor signed is the one the caller resolved from the registry and
//! verified by hashing the bytes; this module cannot check that and does not try.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384, Sha512};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::certgen::{CertRuleError, KeySpec};

/// Media type of the signature envelope layer.
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
/// `artifactType` of a signature manifest.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The payload's content type (`cty`).
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// The OCI empty config's media type.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The OCI empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The manifest annotation listing the chain's SHA-256 thumbprints.
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// What this tool writes as `io.cncf.notary.signingAgent`.
pub const SIGNING_AGENT: &str = concat!("docker-trustacr/", env!("CARGO_PKG_VERSION"));

/// A private key that signs Notary Project signatures.
pub enum NotationKey {
    /// ECDSA P-256 (ES256): what `key generate --notation` makes.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384 (ES384).
    P384(p384::ecdsa::SigningKey),
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
            NotationKey::Rsa(k) => KeySpec::Rsa(k.n().bits() as usize),
        }
    }

    /// The public key as SPKI DER, to compare with a certificate's.
    pub fn public_spki(&self) -> Vec<u8> {
        use spki::EncodePublicKey;
        let der = match self {
            NotationKey::P256(k) => k.verifying_key().to_public_key_der(),
            NotationKey::P384(k) => k.verifying_key().to_public_key_der(),
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
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(NotationKey::Rsa(Box::new(k)));
        }
        Err(SignError::Key(
            "not an ECDSA P-256/P-384 or RSA PKCS#8 private key (Ed25519 and other types cannot sign Notary Project signatures)".into(),
        ))
    }

    /// The key as PKCS#8 DER, wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, SignError> {
        use pkcs8::EncodePrivateKey;
        let doc = match self {
            NotationKey::P256(k) => k.to_pkcs8_der(),
            NotationKey::P384(k) => k.to_pkcs8_der(),
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

/// What is signed: the manifest as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Descriptor {
    /// The manifest's media type (the registry's Content-Type).
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// Length of the bytes.
    pub size: u64,
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "targetArtifact")]
    target_artifact: &'a Descriptor,
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
    let mut protected = serde_json::Map::new();
    let mut crit = vec![serde_json::Value::from("io.cncf.notary.signingScheme")];
    protected.insert("alg".into(), spec.jws_alg().into());
    protected.insert("cty".into(), PAYLOAD_MEDIA_TYPE.into());
    protected.insert("io.cncf.notary.signingScheme".into(), "notary.x509".into());
    protected.insert(
        "io.cncf.notary.signingTime".into(),
        rfc3339(signing_time).into(),
    );
    if let Some(e) = expiry {
        if e <= signing_time {
            return Err(SignError::Key(
                "the signature expiry must be after the signing time".into(),
            ));
        }
        protected.insert("io.cncf.notary.expiry".into(), rfc3339(e).into());
        crit.push("io.cncf.notary.expiry".into());
    }
    protected.insert("crit".into(), crit.into());
    let protected = serde_json::to_vec(&protected).map_err(|e| SignError::Key(e.to_string()))?;
    let payload = serde_json::to_vec(&Payload {
        target_artifact: target,
    })
    .map_err(|e| SignError::Key(e.to_string()))?;
    let protected_b64 = URL_SAFE_NO_PAD.encode(&protected);
    let payload_b64 = URL_SAFE_NO_PAD.encode(&payload);
    let signing_input = format!("{protected_b64}.{payload_b64}");
    let signature = key.sign(signing_input.as_bytes())?;
    let envelope = serde_json::json!({
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {
            "x5c": chain_der.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
            "io.cncf.notary.signingAgent": SIGNING_AGENT,
        },
        "signature": URL_SAFE_NO_PAD.encode(signature),
    });
    serde_json::to_vec(&envelope).map_err(|e| SignError::Key(e.to_string()))
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
    let v: serde_json::Value = serde_json::from_slice(envelope).ok()?;
    let leaf = STANDARD
        .decode(v.get("header")?.get("x5c")?.get(0)?.as_str()?)
        .ok()?;
    if leaf != leaf_der {
        return Some(false);
    }
    let protected_b64 = v.get("protected")?.as_str()?;
    let payload_b64 = v.get("payload")?.as_str()?;
    let signature = URL_SAFE_NO_PAD.decode(v.get("signature")?.as_str()?).ok()?;
    let input = format!("{protected_b64}.{payload_b64}");
    if !key.verifies(input.as_bytes(), &signature) {
        return Some(false);
    }
    let protected: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected_b64).ok()?).ok()?;
    if protected.get("alg")?.as_str()? != key.spec().jws_alg()
        || protected.get("io.cncf.notary.signingScheme")?.as_str()? != "notary.x509"
        || protected.get("cty")?.as_str()? != PAYLOAD_MEDIA_TYPE
    {
        return Some(false);
    }
    if let Some(expiry) = protected.get("io.cncf.notary.expiry") {
        let e = OffsetDateTime::parse(expiry.as_str()?, &Rfc3339).ok()?;
        if e <= now {
            return Some(false);
        }
    }
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload_b64).ok()?).ok()?;
    let signed: Descriptor = serde_json::from_value(payload.get("targetArtifact")?.clone()).ok()?;
    Some(signed == *target)
}

/// The descriptor of a blob.
pub fn blob_descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        size: bytes.len() as u64,
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
    let layer = blob_descriptor(JWS_MEDIA_TYPE, envelope);
    let thumbs = serde_json::to_string(&thumbprints(chain_der)).unwrap_or_default();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": blob_descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG).digest,
            "size": EMPTY_CONFIG.len(),
            "data": STANDARD.encode(EMPTY_CONFIG),
        },
        "layers": [layer],
        "subject": subject,
        "annotations": {
            THUMBPRINT_ANNOTATION: thumbs,
            "org.opencontainers.image.created": rfc3339(created),
        },
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notation::certgen::{Subject, make_signing_certificate};

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
