//! The certificate rules of a Notary Project signature (spec "Certificate Requirements",
//! notation-core-go `x509/codesigning_cert_validations.go`): the `x5c` chain runs leaf first to a
//! self-signed root, each certificate issued and signed by the next; the leaf is a code-signing
//! certificate (key usage critical with digitalSignature and no encipherment/CA bits, no TLS or
//! e-mail EKU, not a CA); the CAs are CAs. Also the leaf key's algorithm, the signature check of
//! the envelope, the leaf subject as notation reads it, and thumbprints.

use std::collections::BTreeMap;

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::envelope::Algorithm;

/// A chain longer than this is refused before any signature check: real chains have 1–4.
pub const MAX_CHAIN_LEN: usize = 10;

/// Why a certificate chain is not a valid Notary Project signing chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Not DER X.509.
    #[error("certificate {index} of the chain does not parse: {reason}")]
    Parse {
        /// Position in `x5c`.
        index: usize,
        /// Parser message.
        reason: String,
    },
    /// Empty or too long.
    #[error("the certificate chain has {0} certificates (expected 1 to {MAX_CHAIN_LEN})")]
    Length(usize),
    /// A link of the chain is broken.
    #[error("certificate {index} ({subject}) is not issued and signed by the next certificate")]
    NotIssuedByNext {
        /// Position.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// The last certificate is not self-signed, or an earlier one is.
    #[error("{0}")]
    SelfSigned(String),
    /// The leaf breaks a code-signing rule.
    #[error("the signing certificate ({subject}) {rule}")]
    Leaf {
        /// Its subject.
        subject: String,
        /// Which rule, stated.
        rule: String,
    },
    /// A CA certificate breaks a CA rule.
    #[error("CA certificate {index} ({subject}) {rule}")]
    Ca {
        /// Position.
        index: usize,
        /// Its subject.
        subject: String,
        /// Which rule.
        rule: String,
    },
    /// A key type or size outside the Notary Project's list.
    #[error(
        "the signing key is {0}; Notary Project signatures use RSA 2048/3072/4096 or ECDSA P-256/P-384/P-521"
    )]
    UnsupportedKey(String),
    /// `alg` does not belong to the leaf key.
    #[error("the envelope says {alg} but the signing certificate's key needs {expected}")]
    AlgorithmMismatch {
        /// From the header.
        alg: Algorithm,
        /// From the key.
        expected: Algorithm,
    },
    /// The envelope signature does not verify.
    #[error("the signature does not verify with the signing certificate's key")]
    BadSignature,
}

/// Parses `x5c` (DER, leaf first). Bounded in length.
pub fn parse_chain(ders: &[Vec<u8>]) -> Result<Vec<Certificate>, ChainError> {
    if ders.is_empty() || ders.len() > MAX_CHAIN_LEN {
        return Err(ChainError::Length(ders.len()));
    }
    ders.iter()
        .enumerate()
        .map(|(index, d)| {
            Certificate::from_der(d).map_err(|e| ChainError::Parse {
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The subject as Go's `pkix.Name.String()` would show it, for messages.
pub fn subject_string(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

/// SHA-256 of a certificate's DER, lower-case hex (the thumbprint annotation's entries).
pub fn thumbprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// `notBefore` and `notAfter`.
pub fn validity(cert: &Certificate) -> (OffsetDateTime, OffsetDateTime) {
    let v = cert.tbs_certificate().validity();
    let t = |d: std::time::Duration| {
        OffsetDateTime::from_unix_timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    (
        t(v.not_before.to_unix_duration()),
        t(v.not_after.to_unix_duration()),
    )
}

/// Checks the chain rules in notation's order: the links (issuer name and signature), the
/// self-signed root, then the leaf and CA rules. Validity in time is not checked here: notation
/// checks it against the signing time or now, in the "authentic timestamp" step.
pub fn validate_code_signing_chain(certs: &[Certificate]) -> Result<(), ChainError> {
    if certs.is_empty() || certs.len() > MAX_CHAIN_LEN {
        return Err(ChainError::Length(certs.len()));
    }
    let last = certs.len() - 1;
    if certs.len() == 1 {
        if !is_self_signed(&certs[0]) {
            return Err(ChainError::SelfSigned(format!(
                "the single certificate of the chain ({}) is not self-signed; include the CA certificates up to the root",
                subject_string(&certs[0])
            )));
        }
    } else {
        for i in 0..last {
            if !issued_by(&certs[i], &certs[i + 1]) {
                return Err(ChainError::NotIssuedByNext {
                    index: i,
                    subject: subject_string(&certs[i]),
                });
            }
            if is_self_signed(&certs[i]) {
                return Err(ChainError::SelfSigned(format!(
                    "certificate {i} ({}) is self-signed but is not the last of the chain",
                    subject_string(&certs[i])
                )));
            }
        }
        if !is_self_signed(&certs[last]) {
            return Err(ChainError::SelfSigned(format!(
                "the root of the chain ({}) is not self-signed",
                subject_string(&certs[last])
            )));
        }
    }
    validate_leaf(&certs[0])?;
    for (i, ca) in certs.iter().enumerate().skip(1) {
        validate_ca(ca, i, i - 1)?;
    }
    Ok(())
}

fn validate_leaf(cert: &Certificate) -> Result<(), ChainError> {
    let leaf = |rule: &str| ChainError::Leaf {
        subject: subject_string(cert),
        rule: rule.to_string(),
    };
    let tbs = cert.tbs_certificate();
    match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => {
            return Err(leaf("is a CA certificate (basicConstraints cA=true)"));
        }
        Err(_) => return Err(leaf("has an unreadable basicConstraints extension")),
        _ => {}
    }
    let Ok(Some((critical, ku))) = tbs.get_extension::<KeyUsage>() else {
        return Err(leaf(
            "has no keyUsage extension (it must be present, critical, with digitalSignature)",
        ));
    };
    if !critical {
        return Err(leaf("has a keyUsage extension that is not marked critical"));
    }
    if !ku.digital_signature() {
        return Err(leaf("lacks the digitalSignature key usage"));
    }
    let forbidden = [
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    let bad: Vec<&str> = forbidden
        .iter()
        .filter(|(f, _)| ku.0.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if !bad.is_empty() {
        return Err(leaf(&format!(
            "has key usages a signing certificate must not have: {}",
            bad.join(", ")
        )));
    }
    match tbs.get_extension::<ExtendedKeyUsage>() {
        Ok(None) => {}
        Ok(Some((_, eku))) => {
            // anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection, timeStamping,
            // OCSPSigning: notation-core-go's list of EKUs a code-signing leaf must not carry.
            let refused = [
                ("2.5.29.37.0", "anyExtendedKeyUsage"),
                ("1.3.6.1.5.5.7.3.1", "serverAuth"),
                ("1.3.6.1.5.5.7.3.2", "clientAuth"),
                ("1.3.6.1.5.5.7.3.4", "emailProtection"),
                ("1.3.6.1.5.5.7.3.8", "timeStamping"),
                ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
            ];
            let have: Vec<String> = eku.0.iter().map(|o| o.to_string()).collect();
            if let Some((_, name)) = refused.iter().find(|(o, _)| have.iter().any(|h| h == o)) {
                return Err(leaf(&format!(
                    "has the extended key usage {name}; use codeSigning or none"
                )));
            }
        }
        Err(_) => return Err(leaf("has an unreadable extendedKeyUsage extension")),
    }
    key_algorithm(cert)?;
    Ok(())
}

pub(crate) fn validate_ca(
    cert: &Certificate,
    index: usize,
    expected_path_len: usize,
) -> Result<(), ChainError> {
    let ca = |rule: String| ChainError::Ca {
        index,
        subject: subject_string(cert),
        rule,
    };
    let tbs = cert.tbs_certificate();
    match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && usize::from(max) < expected_path_len
            {
                return Err(ca(format!(
                    "allows a path length of {max} below it, but {expected_path_len} CA certificates follow the leaf before it"
                )));
            }
        }
        _ => {
            return Err(ca(
                "is not a CA (basicConstraints cA=true is required)".into()
            ));
        }
    }
    match tbs.get_extension::<KeyUsage>() {
        Ok(Some((true, ku))) if ku.key_cert_sign() => Ok(()),
        Ok(Some((false, _))) => Err(ca("has a keyUsage extension that is not critical".into())),
        Ok(Some(_)) => Err(ca("lacks the keyCertSign key usage".into())),
        _ => Err(ca("has no keyUsage extension".into())),
    }
}

/// Whether `cert` names `issuer` as issuer and carries a valid signature by its key.
pub fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let (Ok(name), Ok(subject)) = (
        cert.tbs_certificate().issuer().to_der(),
        issuer.tbs_certificate().subject().to_der(),
    ) else {
        return false;
    };
    if name != subject {
        return false;
    }
    let (Ok(tbs), Ok(spki)) = (
        cert.tbs_certificate().to_der(),
        issuer.tbs_certificate().subject_public_key_info().to_der(),
    ) else {
        return false;
    };
    verify_certificate_signature(
        &cert.signature_algorithm().oid.to_string(),
        &spki,
        &tbs,
        cert.signature().raw_bytes(),
    )
}

/// Self-issued (subject = issuer) and self-signed.
pub fn is_self_signed(cert: &Certificate) -> bool {
    issued_by(cert, cert)
}

pub(crate) fn verify_certificate_signature(alg: &str, spki: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use rsa::signature::Verifier;
    use spki::DecodePublicKey;
    let rsa_pkcs1 = |verify: &dyn Fn(rsa::RsaPublicKey, &rsa::pkcs1v15::Signature) -> bool| {
        let key = rsa::RsaPublicKey::from_public_key_der(spki).ok();
        let s = rsa::pkcs1v15::Signature::try_from(sig).ok();
        key.zip(s).is_some_and(|(k, s)| verify(k, &s))
    };
    match alg {
        // ecdsa-with-SHA256/384: DER signatures, any of the allowed curves.
        "1.2.840.10045.4.3.2" | "1.2.840.10045.4.3.3" | "1.2.840.10045.4.3.4" => {
            let hash: Vec<u8> = match alg {
                "1.2.840.10045.4.3.2" => Sha256::digest(msg).to_vec(),
                "1.2.840.10045.4.3.3" => sha2::Sha384::digest(msg).to_vec(),
                _ => sha2::Sha512::digest(msg).to_vec(),
            };
            verify_ecdsa_prehash(spki, &hash, sig, true)
        }
        // sha{256,384,512}WithRSAEncryption
        "1.2.840.113549.1.1.11" => rsa_pkcs1(&|k, s| {
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k)
                .verify(msg, s)
                .is_ok()
        }),
        "1.2.840.113549.1.1.12" => rsa_pkcs1(&|k, s| {
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(k)
                .verify(msg, s)
                .is_ok()
        }),
        "1.2.840.113549.1.1.13" => rsa_pkcs1(&|k, s| {
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(k)
                .verify(msg, s)
                .is_ok()
        }),
        // SHA-1 and everything else: the spec forbids SHA-1, and a chain we cannot check is
        // not a chain.
        _ => false,
    }
}

/// ECDSA over a prehash with the curve named by the SPKI; `der` picks DER or raw `r‖s`.
fn verify_ecdsa_prehash(spki: &[u8], hash: &[u8], sig: &[u8], der: bool) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use spki::DecodePublicKey;
    match curve_of(spki).as_deref() {
        Some(P256) => {
            let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) else {
                return false;
            };
            let s = if der {
                p256::ecdsa::Signature::from_der(sig)
            } else {
                p256::ecdsa::Signature::from_slice(sig)
            };
            s.is_ok_and(|s| k.verify_prehash(hash, &s).is_ok())
        }
        Some(P384) => {
            let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) else {
                return false;
            };
            let s = if der {
                p384::ecdsa::Signature::from_der(sig)
            } else {
                p384::ecdsa::Signature::from_slice(sig)
            };
            s.is_ok_and(|s| k.verify_prehash(hash, &s).is_ok())
        }
        Some(P521) => {
            let Ok(k) = p521::ecdsa::VerifyingKey::from_public_key_der(spki) else {
                return false;
            };
            let s = if der {
                p521::ecdsa::Signature::from_der(sig)
            } else {
                p521::ecdsa::Signature::from_slice(sig)
            };
            s.is_ok_and(|s| k.verify_prehash(hash, &s).is_ok())
        }
        _ => false,
    }
}

const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const P521: &str = "1.3.132.0.35";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

fn curve_of(spki: &[u8]) -> Option<String> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    (info.algorithm.oid.to_string() == EC_PUBLIC_KEY)
        .then(|| info.algorithm.parameters_oid().ok().map(|o| o.to_string()))
        .flatten()
}

/// The JWS algorithm the leaf key requires (spec "Algorithm Selection"); any other key type or
/// size is refused, as notation-core-go refuses it.
pub fn key_algorithm(cert: &Certificate) -> Result<Algorithm, ChainError> {
    use spki::DecodePublicKey;
    let spki_info = cert.tbs_certificate().subject_public_key_info();
    let oid = spki_info.algorithm.oid.to_string();
    let spki = spki_info
        .to_der()
        .map_err(|e| ChainError::UnsupportedKey(format!("unreadable ({e})")))?;
    match oid.as_str() {
        EC_PUBLIC_KEY => match curve_of(&spki).as_deref() {
            Some(P256) => Ok(Algorithm::Es256),
            Some(P384) => Ok(Algorithm::Es384),
            Some(P521) => Ok(Algorithm::Es512),
            Some(other) => Err(ChainError::UnsupportedKey(format!(
                "ECDSA on curve {other}"
            ))),
            None => Err(ChainError::UnsupportedKey(
                "ECDSA without a named curve".into(),
            )),
        },
        RSA_ENCRYPTION => {
            let key = rsa::RsaPublicKey::from_public_key_der(&spki)
                .map_err(|e| ChainError::UnsupportedKey(format!("an unreadable RSA key ({e})")))?;
            match rsa::traits::PublicKeyParts::size(&key) * 8 {
                2048 => Ok(Algorithm::Ps256),
                3072 => Ok(Algorithm::Ps384),
                4096 => Ok(Algorithm::Ps512),
                bits => Err(ChainError::UnsupportedKey(format!("RSA-{bits}"))),
            }
        }
        "1.3.101.112" => Err(ChainError::UnsupportedKey("Ed25519".into())),
        other => Err(ChainError::UnsupportedKey(format!("of type {other}"))),
    }
}

/// Checks `alg` against the leaf key, then the signature over `input` (the JWS signing input).
/// RSA-PSS is checked with salt length = hash length, the spec's parameter.
pub fn verify_envelope_signature(
    leaf: &Certificate,
    alg: Algorithm,
    input: &[u8],
    signature: &[u8],
) -> Result<(), ChainError> {
    use rsa::signature::Verifier;
    use spki::DecodePublicKey;
    let expected = key_algorithm(leaf)?;
    if expected != alg {
        return Err(ChainError::AlgorithmMismatch { alg, expected });
    }
    let spki = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|_| ChainError::BadSignature)?;
    let ok = match alg {
        Algorithm::Es256 => verify_ecdsa_prehash(&spki, &Sha256::digest(input), signature, false),
        Algorithm::Es384 => {
            verify_ecdsa_prehash(&spki, &sha2::Sha384::digest(input), signature, false)
        }
        Algorithm::Es512 => {
            verify_ecdsa_prehash(&spki, &sha2::Sha512::digest(input), signature, false)
        }
        Algorithm::Ps256 | Algorithm::Ps384 | Algorithm::Ps512 => {
            let key = rsa::RsaPublicKey::from_public_key_der(&spki)
                .map_err(|_| ChainError::BadSignature)?;
            let sig =
                rsa::pss::Signature::try_from(signature).map_err(|_| ChainError::BadSignature)?;
            match alg {
                Algorithm::Ps256 => rsa::pss::VerifyingKey::<Sha256>::new(key)
                    .verify(input, &sig)
                    .is_ok(),
                Algorithm::Ps384 => rsa::pss::VerifyingKey::<sha2::Sha384>::new(key)
                    .verify(input, &sig)
                    .is_ok(),
                _ => rsa::pss::VerifyingKey::<sha2::Sha512>::new(key)
                    .verify(input, &sig)
                    .is_ok(),
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ChainError::BadSignature)
    }
}

/// Why a subject cannot be read as notation reads a trusted identity's subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signing certificate's subject {subject:?} {reason}")]
pub struct SubjectError {
    /// The subject.
    pub subject: String,
    /// What is wrong.
    pub reason: String,
}

/// The leaf subject as attribute → value, with the short names Go's `pkix.Name` prints (C, O,
/// OU, CN, L, ST, STREET, POSTALCODE, SERIALNUMBER; others as dotted OIDs). Like notation, a
/// multi-valued RDN or a repeated attribute is refused, and C, ST and O are required.
pub fn subject_attributes(cert: &Certificate) -> Result<BTreeMap<String, String>, SubjectError> {
    let subject = subject_string(cert);
    let err = |reason: String| SubjectError {
        subject: subject.clone(),
        reason,
    };
    let mut map = BTreeMap::new();
    for rdn in cert.tbs_certificate().subject().iter_rdn() {
        if rdn.len() > 1 {
            return Err(err(
                "has a multi-valued RDN, which notation does not support".into(),
            ));
        }
        for atv in rdn.iter() {
            let oid = atv.oid.to_string();
            let name = match oid.as_str() {
                "2.5.4.6" => "C",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.3" => "CN",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.9" => "STREET",
                "2.5.4.17" => "POSTALCODE",
                "2.5.4.5" => "SERIALNUMBER",
                other => other,
            }
            .to_string();
            let value = std::str::from_utf8(atv.value.value())
                .map_err(|_| err(format!("has a non-UTF-8 {name} value")))?
                .to_string();
            if map.insert(name.clone(), value).is_some() {
                return Err(err(format!("repeats the {name} attribute")));
            }
        }
    }
    for required in ["C", "ST", "O"] {
        if !map.contains_key(required) {
            return Err(err(format!(
                "has no {required}; notation requires C, ST and O to match trusted identities"
            )));
        }
    }
    Ok(map)
}

/// Whether a certificate names an OCSP responder or a CRL: notation checks revocation for such
/// certificates; certificates with neither are "non-revokable" and pass.
pub fn has_revocation_endpoints(cert: &Certificate) -> bool {
    // authorityInfoAccess, cRLDistributionPoints
    cert.tbs_certificate().extensions().is_some_and(|exts| {
        exts.iter().any(|e| {
            let id = e.extn_id.to_string();
            id == "1.3.6.1.5.5.7.1.1" || id == "2.5.29.31"
        })
    })
}
