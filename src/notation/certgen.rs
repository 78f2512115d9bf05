//! Signing certificates for Notary Project signatures: the self-signed one `key generate
//! --notation` makes, and the rules a certificate chain must meet before this tool signs with
//! it (the spec's "Certificate Requirements", as notation-core-go enforces them).
//!
//! The DCT root certificate template cannot be reused: it carries keyEncipherment, which
//! notation refuses on a signing leaf. Checking the rules at generate and import time means a
//! key that notation would refuse never reaches the keyring.

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use super::envelope::Algorithm;

/// Why a certificate (chain) or key cannot sign Notary Project signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRuleError {
    /// The subject text could not be parsed.
    #[error(
        "subject {subject:?}: {reason}. Write it as \"C=US,ST=WA,O=Example,CN=example.azurecr.io/app\" (C, ST and O are required by notation's trust policies)"
    )]
    Subject {
        /// The text given.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// The key type or size is not one the Notary Project allows.
    #[error(
        "{what}: {key} keys cannot sign Notary Project signatures; the specification allows only RSA 2048/3072/4096 and ECDSA P-256/P-384/P-521. {fix}"
    )]
    KeyType {
        /// Which certificate or key.
        what: String,
        /// The key found.
        key: String,
        /// What to do.
        fix: &'static str,
    },
    /// The leaf's key usage does not follow the rules.
    #[error(
        "{what}: key usage {reason}; a Notary Project signing certificate needs a critical key usage with digitalSignature and none of keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly"
    )]
    KeyUsage {
        /// Which certificate.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The leaf's extended key usage names a forbidden purpose.
    #[error(
        "{what}: extended key usage {oid} is not allowed on a signing certificate (only codeSigning, or none)"
    )]
    ExtendedKeyUsage {
        /// Which certificate.
        what: String,
        /// The offending OID.
        oid: String,
    },
    /// The leaf says it is a CA, or a CA above it does not.
    #[error("{what}: {reason}")]
    BasicConstraints {
        /// Which certificate.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The leaf's subject lacks C, ST or O.
    #[error(
        "{what}: the subject lacks {missing}; notation's trusted identities need C, ST and O in the signing certificate's subject"
    )]
    SubjectFields {
        /// Which certificate.
        what: String,
        /// The missing attribute names.
        missing: String,
    },
    /// A certificate is not valid now.
    #[error("{what}: not valid now (valid from {not_before} to {not_after})")]
    Validity {
        /// Which certificate.
        what: String,
        /// Start.
        not_before: String,
        /// End.
        not_after: String,
    },
    /// The chain is not leaf first, each issued by the next, ending in a self-signed root.
    #[error("certificate chain: {0}; give the leaf first, then each issuer up to the root")]
    Chain(String),
    /// The private key is not the leaf certificate's key.
    #[error(
        "the private key does not match the leaf certificate's public key; give the key the certificate was issued for"
    )]
    KeyMismatch,
    /// The certificate could not be made or encoded.
    #[error("cannot create the signing certificate: {0}")]
    Create(String),
}

/// The algorithm family and size of a signing key, as the spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with this many bits (2048, 3072 or 4096).
    Rsa(usize),
    /// ECDSA P-256.
    EcP256,
    /// ECDSA P-384.
    EcP384,
    /// ECDSA P-521.
    EcP521,
}

impl KeySpec {
    /// The signature algorithm for this key (the spec ties each key to one).
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeySpec::Rsa(2048) => Algorithm::Ps256,
            KeySpec::Rsa(3072) => Algorithm::Ps384,
            KeySpec::Rsa(_) => Algorithm::Ps512,
            KeySpec::EcP256 => Algorithm::Es256,
            KeySpec::EcP384 => Algorithm::Es384,
            KeySpec::EcP521 => Algorithm::Es512,
        }
    }
}

const OID_C: &str = "2.5.4.6";
const OID_ST: &str = "2.5.4.8";
const OID_O: &str = "2.5.4.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
/// anyExtendedKeyUsage, serverAuth, clientAuth, emailProtection, timeStamping, OCSPSigning.
const FORBIDDEN_EKU: [&str; 6] = [
    "2.5.29.37.0",
    "1.3.6.1.5.5.7.3.1",
    "1.3.6.1.5.5.7.3.2",
    "1.3.6.1.5.5.7.3.4",
    "1.3.6.1.5.5.7.3.8",
    "1.3.6.1.5.5.7.3.9",
];

/// A subject given as `C=..,ST=..,O=..,CN=..` (any order; L and OU allowed too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(Vec<(rcgen::DnType, String)>);

impl Subject {
    /// Parses and checks the subject text: C, ST and O must be present (notation's DN rule).
    pub fn parse(text: &str) -> Result<Self, CertRuleError> {
        let bad = |reason: String| CertRuleError::Subject {
            subject: text.to_string(),
            reason,
        };
        let mut out = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
            let v = v.trim();
            if v.is_empty() {
                return Err(bad(format!("{k} is empty")));
            }
            let kind = match k.trim().to_ascii_uppercase().as_str() {
                "C" => {
                    if v.len() != 2 || !v.chars().all(|c| c.is_ascii_alphabetic()) {
                        return Err(bad(format!("C={v} is not a two-letter country code")));
                    }
                    rcgen::DnType::CountryName
                }
                "ST" | "S" => rcgen::DnType::StateOrProvinceName,
                "L" => rcgen::DnType::LocalityName,
                "O" => rcgen::DnType::OrganizationName,
                "OU" => rcgen::DnType::OrganizationalUnitName,
                "CN" => rcgen::DnType::CommonName,
                other => return Err(bad(format!("unknown attribute {other}"))),
            };
            if out.iter().any(|(t, _)| *t == kind) {
                return Err(bad(format!("{k} appears twice")));
            }
            out.push((kind, v.to_string()));
        }
        let missing: Vec<&str> = [
            (rcgen::DnType::CountryName, "C"),
            (rcgen::DnType::StateOrProvinceName, "ST"),
            (rcgen::DnType::OrganizationName, "O"),
            (rcgen::DnType::CommonName, "CN"),
        ]
        .iter()
        .filter(|(t, _)| !out.iter().any(|(k, _)| k == t))
        .map(|(_, n)| *n)
        .collect();
        if !missing.is_empty() {
            return Err(bad(format!("{} missing", missing.join(", "))));
        }
        Ok(Subject(out))
    }

    /// The default subject for a key named `name`.
    pub fn default_for(name: &str) -> Self {
        Subject(vec![
            (rcgen::DnType::CountryName, "US".into()),
            (rcgen::DnType::StateOrProvinceName, "WA".into()),
            (rcgen::DnType::OrganizationName, "docker-trustacr".into()),
            (rcgen::DnType::CommonName, name.into()),
        ])
    }
}

/// A self-signed signing certificate for `sk`, by notation's rules: key usage critical with
/// digitalSignature only, EKU codeSigning, no basic constraints, `subject`, valid from `now`
/// for `days` days. Returns the DER.
pub fn make_signing_certificate(
    sk: &p256::ecdsa::SigningKey,
    subject: &Subject,
    days: u32,
    now: OffsetDateTime,
) -> Result<Vec<u8>, CertRuleError> {
    use spki::EncodePublicKey;
    let create = |e: &dyn std::fmt::Display| CertRuleError::Create(e.to_string());
    if days == 0 {
        return Err(CertRuleError::Create("--days must be at least 1".into()));
    }
    let vk = sk.verifying_key();
    let spki = vk.to_public_key_der().map_err(|e| create(&e))?;
    let signer = crate::tuf::x509::P256Signer::new(sk);
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    for (t, v) in &subject.0 {
        dn.push(t.clone(), v.as_str());
    }
    params.distinguished_name = dn;
    // Whole seconds: notation compares validity against second-precision signing times.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    params.not_before = now;
    params.not_after = now + Duration::days(i64::from(days));
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| create(&e))?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(serial.to_vec().into());
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.is_ca = rcgen::IsCa::NoCa;
    params.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(Sha256::digest(spki.as_bytes())[..20].to_vec());
    let cert = params.self_signed(&signer).map_err(|e| create(&e))?;
    Ok(cert.der().to_vec())
}

/// The key spec of a certificate's public key, or why it cannot sign.
pub fn key_spec(cert: &Certificate, what: &str) -> Result<KeySpec, CertRuleError> {
    let spki = cert.tbs_certificate().subject_public_key_info();
    let bad = |key: String, fix: &'static str| CertRuleError::KeyType {
        what: what.to_string(),
        key,
        fix,
    };
    match spki.algorithm.oid.to_string().as_str() {
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map(|o| o.to_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => Ok(KeySpec::EcP256),
                OID_P384 => Ok(KeySpec::EcP384),
                OID_P521 => Ok(KeySpec::EcP521),
                other => Err(bad(
                    format!("ECDSA on curve {other}"),
                    "Use P-256, P-384 or P-521",
                )),
            }
        }
        OID_RSA => {
            use rsa::traits::PublicKeyParts;
            use spki::DecodePublicKey;
            let der = spki
                .to_der()
                .map_err(|e| CertRuleError::Chain(e.to_string()))?;
            let key = rsa::RsaPublicKey::from_public_key_der(&der)
                .map_err(|e| bad(format!("RSA ({e})"), "Use a valid RSA key"))?;
            let bits = key.n().bits() as usize;
            match bits {
                2048 | 3072 | 4096 => Ok(KeySpec::Rsa(bits)),
                _ => Err(bad(
                    format!("RSA-{bits}"),
                    "Use RSA 2048, 3072 or 4096 (or ECDSA P-256: docker trustacr key generate --notation NAME)",
                )),
            }
        }
        OID_ED25519 => Err(bad(
            "Ed25519".into(),
            "Ed25519 (the DCT repository key type) is not in the Notary Project's algorithm list; make a P-256 key with: docker trustacr key generate --notation NAME",
        )),
        other => Err(bad(format!("algorithm {other}"), "Use ECDSA P-256")),
    }
}

fn unix(d: std::time::Duration) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(d.as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn check_validity(
    cert: &Certificate,
    what: &str,
    now: OffsetDateTime,
) -> Result<(), CertRuleError> {
    let v = cert.tbs_certificate().validity();
    let nb = unix(v.not_before.to_unix_duration());
    let na = unix(v.not_after.to_unix_duration());
    if now < nb || now > na {
        return Err(CertRuleError::Validity {
            what: what.to_string(),
            not_before: nb.to_string(),
            not_after: na.to_string(),
        });
    }
    Ok(())
}

fn check_leaf(cert: &Certificate, now: OffsetDateTime) -> Result<KeySpec, CertRuleError> {
    let what = "leaf certificate";
    let tbs = cert.tbs_certificate();
    let spec = key_spec(cert, what)?;
    let ku = |reason: &str| CertRuleError::KeyUsage {
        what: what.to_string(),
        reason: reason.to_string(),
    };
    match tbs.get_extension::<KeyUsage>() {
        Ok(Some((critical, k))) => {
            if !critical {
                return Err(ku("is not marked critical"));
            }
            if !k.digital_signature() {
                return Err(ku("lacks digitalSignature"));
            }
            let forbidden = [
                (k.key_encipherment(), "keyEncipherment"),
                (k.data_encipherment(), "dataEncipherment"),
                (k.key_agreement(), "keyAgreement"),
                (k.key_cert_sign(), "keyCertSign"),
                (k.crl_sign(), "cRLSign"),
                (k.encipher_only(), "encipherOnly"),
                (k.decipher_only(), "decipherOnly"),
            ];
            if let Some((_, name)) = forbidden.iter().find(|(set, _)| *set) {
                return Err(ku(&format!("has {name}")));
            }
        }
        Ok(None) => return Err(ku("is missing")),
        Err(e) => return Err(ku(&format!("cannot be read ({e})"))),
    }
    if let Ok(Some((_, eku))) = tbs.get_extension::<ExtendedKeyUsage>()
        && let Some(oid) = eku
            .0
            .iter()
            .map(ToString::to_string)
            .find(|o| FORBIDDEN_EKU.contains(&o.as_str()))
    {
        return Err(CertRuleError::ExtendedKeyUsage {
            what: what.to_string(),
            oid,
        });
    }
    if let Ok(Some((_, bc))) = tbs.get_extension::<BasicConstraints>()
        && bc.ca
    {
        return Err(CertRuleError::BasicConstraints {
            what: what.to_string(),
            reason: "basic constraints say CA:TRUE; a signing certificate must not be a CA".into(),
        });
    }
    let present: Vec<String> = tbs.subject().iter().map(|a| a.oid.to_string()).collect();
    let missing: Vec<&str> = [(OID_C, "C"), (OID_ST, "ST"), (OID_O, "O")]
        .iter()
        .filter(|(oid, _)| !present.iter().any(|p| p == oid))
        .map(|(_, n)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(CertRuleError::SubjectFields {
            what: what.to_string(),
            missing: missing.join(", "),
        });
    }
    check_validity(cert, what, now)?;
    Ok(spec)
}

/// Checks a signing chain (leaf first, root last; one self-signed leaf is allowed) at `now`,
/// and returns the leaf key's spec.
pub fn check_chain(chain: &[Certificate], now: OffsetDateTime) -> Result<KeySpec, CertRuleError> {
    let Some(leaf) = chain.first() else {
        return Err(CertRuleError::Chain("no certificate given".into()));
    };
    let spec = check_leaf(leaf, now)?;
    let name = |c: &Certificate,
                which: fn(&x509_cert::TbsCertificate) -> &x509_cert::name::Name| {
        which(c.tbs_certificate()).to_der().unwrap_or_default()
    };
    if chain.len() == 1 {
        if name(leaf, |t| t.issuer()) != name(leaf, |t| t.subject()) {
            return Err(CertRuleError::Chain(
                "a single certificate must be self-signed; its issuer's certificates are missing"
                    .into(),
            ));
        }
        return Ok(spec);
    }
    for (i, pair) in chain.windows(2).enumerate() {
        let what = format!("certificate {} of the chain", i + 2);
        let ca = &pair[1];
        match ca.tbs_certificate().get_extension::<BasicConstraints>() {
            Ok(Some((_, bc))) if bc.ca => {}
            _ => {
                return Err(CertRuleError::BasicConstraints {
                    what,
                    reason: "is not a CA (basic constraints CA:TRUE missing)".into(),
                });
            }
        }
        if !crate::tuf::x509::issued_by(&pair[0], ca, now) {
            return Err(CertRuleError::Chain(format!(
                "certificate {} is not issued and signed by certificate {} (or the issuer is not valid now)",
                i + 1,
                i + 2
            )));
        }
    }
    for (i, c) in chain.iter().enumerate().skip(1) {
        check_validity(c, &format!("certificate {} of the chain", i + 1), now)?;
    }
    let root = &chain[chain.len() - 1];
    if name(root, |t| t.issuer()) != name(root, |t| t.subject()) {
        return Err(CertRuleError::Chain(
            "the last certificate is not a self-signed root".into(),
        ));
    }
    Ok(spec)
}

/// Parses PEM text holding one or more certificates.
pub fn parse_pem_chain(pem: &[u8]) -> Result<Vec<Certificate>, CertRuleError> {
    let certs = Certificate::load_pem_chain(pem)
        .map_err(|e| CertRuleError::Chain(format!("not PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(CertRuleError::Chain("no certificate given".into()));
    }
    Ok(certs)
}

/// Parses DER certificates.
pub fn parse_der_chain(ders: &[Vec<u8>]) -> Result<Vec<Certificate>, CertRuleError> {
    ders.iter()
        .map(|d| Certificate::from_der(d).map_err(|e| CertRuleError::Chain(e.to_string())))
        .collect()
}

/// PEM text of DER certificates, leaf first.
pub fn to_pem(ders: &[Vec<u8>]) -> String {
    ders.iter()
        .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.clone())))
        .collect()
}

/// The leaf's subject as RFC 4514 text (for `x509.subject:` trusted identities).
pub fn subject_text(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap()
    }

    #[test]
    fn generated_certificate_meets_notations_leaf_rules_and_expires_after_its_days() {
        let now = OffsetDateTime::now_utc();
        let subject = Subject::parse("C=US,ST=WA,O=Example,CN=example.azurecr.io/app").unwrap();
        let der = make_signing_certificate(&key(), &subject, 30, now).unwrap();
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(
            check_chain(std::slice::from_ref(&cert), now),
            Ok(KeySpec::EcP256)
        );
        let (critical, ku) = cert
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .unwrap()
            .unwrap();
        assert!(critical && ku.digital_signature() && !ku.key_encipherment());
        let (_, eku) = cert
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
            .unwrap()
            .unwrap();
        assert_eq!(eku.0[0].to_string(), "1.3.6.1.5.5.7.3.3");
        assert!(matches!(
            check_chain(&[cert], now + Duration::days(31)),
            Err(CertRuleError::Validity { .. })
        ));
    }

    #[test]
    fn subject_without_state_or_organisation_is_refused_naming_what_is_missing() {
        let err = Subject::parse("C=US,CN=x").unwrap_err().to_string();
        assert!(err.contains("ST, O missing"), "{err}");
        assert!(Subject::parse("C=USA,ST=WA,O=o,CN=x").is_err());
        assert!(Subject::parse("C=US,ST=WA,O=o,CN=x,C=DE").is_err());
    }

    #[test]
    fn dct_root_certificate_template_is_refused_for_its_key_encipherment() {
        let now = OffsetDateTime::now_utc();
        let pem = crate::tuf::x509::make_root_certificate(&key(), "r/app", now).unwrap();
        let chain = parse_pem_chain(pem.as_bytes()).unwrap();
        let err = check_chain(&chain, now).unwrap_err();
        assert!(matches!(err, CertRuleError::KeyUsage { .. }), "{err}");
        assert!(err.to_string().contains("keyEncipherment"), "{err}");
    }
}
