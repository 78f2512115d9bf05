//! Root certificates: Notary accepts a root only when its keys are X.509 leaf certificates
//! whose CN is the GUN (`trustpinning/certs.go`), and so does notary-server on upload. This
//! module checks those rules and makes certificates the way notary does.

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use super::keys::{KeyError, PublicKey, keytype};

/// Why a root certificate is not acceptable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    /// Not a certificate key.
    #[error("root key {keyid} is a bare {keytype} key; root keys must be X.509 certificates")]
    NotCertificate {
        /// Key ID.
        keyid: String,
        /// Its type.
        keytype: String,
    },
    /// Cannot parse.
    #[error("root key {keyid}: {source}")]
    Key {
        /// Key ID.
        keyid: String,
        /// Why.
        source: KeyError,
    },
    /// The first certificate is a CA or there is more than one leaf.
    #[error("root key {keyid}: expected exactly one leaf certificate first, then CA certificates")]
    Leaf {
        /// Key ID.
        keyid: String,
    },
    /// CN does not match the GUN.
    #[error("root key {keyid}: certificate CN {cn:?} does not match repository {gun}")]
    CommonName {
        /// Key ID.
        keyid: String,
        /// The CN.
        cn: String,
        /// The GUN.
        gun: String,
    },
    /// Outside its validity period.
    #[error("root key {keyid}: certificate is not valid now (valid {not_before} to {not_after})")]
    Validity {
        /// Key ID.
        keyid: String,
        /// Start.
        not_before: String,
        /// End.
        not_after: String,
    },
    /// SHA-1 signature algorithm.
    #[error("root key {keyid}: certificate uses a SHA-1 signature algorithm")]
    WeakAlgorithm {
        /// Key ID.
        keyid: String,
    },
}

const SHA1_SIG_OIDS: [&str; 3] = [
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10040.4.3",    // dsaWithSHA1
    "1.2.840.10045.4.1",    // ecdsaWithSHA1
];

/// `MatchCNToGun`: exact, or a CN ending in `*` matches every GUN with that prefix.
pub fn cn_matches_gun(cn: &str, gun: &str) -> bool {
    match cn.strip_suffix('*') {
        Some(prefix) => gun.starts_with(prefix),
        None => cn == gun,
    }
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

fn common_name(cert: &Certificate) -> String {
    cert.tbs_certificate()
        .subject()
        .common_name()
        .ok()
        .flatten()
        .map(|d| d.value().into_owned())
        .unwrap_or_default()
}

/// Checks one root key against notary's certificate rules for `gun`.
/// `check_expiry` is off for roots that were trusted before (rotation chain steps).
pub fn check_root_key(
    keyid: &str,
    key: &PublicKey,
    gun: &str,
    now: OffsetDateTime,
    check_expiry: bool,
) -> Result<(), CertError> {
    if key.keytype != keytype::ECDSA_X509 && key.keytype != keytype::RSA_X509 {
        return Err(CertError::NotCertificate {
            keyid: keyid.to_string(),
            keytype: key.keytype.clone(),
        });
    }
    let certs = key.certificates().map_err(|source| CertError::Key {
        keyid: keyid.to_string(),
        source,
    })?;
    let leaf = &certs[0];
    if is_ca(leaf) || certs[1..].iter().any(|c| !is_ca(c)) {
        return Err(CertError::Leaf {
            keyid: keyid.to_string(),
        });
    }
    let cn = common_name(leaf);
    if !cn_matches_gun(&cn, gun) {
        return Err(CertError::CommonName {
            keyid: keyid.to_string(),
            cn,
            gun: gun.to_string(),
        });
    }
    for cert in certs.iter() {
        let alg = cert.signature_algorithm().oid.to_string();
        if SHA1_SIG_OIDS.contains(&alg.as_str()) {
            return Err(CertError::WeakAlgorithm {
                keyid: keyid.to_string(),
            });
        }
    }
    if check_expiry {
        let validity = leaf.tbs_certificate().validity();
        let nb = unix(validity.not_before.to_unix_duration());
        let na = unix(validity.not_after.to_unix_duration());
        // Notary allows one day of clock skew on NotBefore.
        if nb > now + Duration::days(1) || na < now || nb > na {
            return Err(CertError::Validity {
                keyid: keyid.to_string(),
                not_before: nb.to_string(),
                not_after: na.to_string(),
            });
        }
    }
    Ok(())
}

/// When `cert` stops being valid.
pub fn not_after(cert: &Certificate) -> OffsetDateTime {
    unix(
        cert.tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration(),
    )
}

fn unix(d: std::time::Duration) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(d.as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Whether `cert` was issued and signed by `issuer`, and `issuer` is a CA valid at `now`.
/// The name and signature check is the Notary Project chain's (ECDSA P-256/P-384 and RSA
/// PKCS#1 v1.5 with SHA-256/384/512, no SHA-1).
pub fn issued_by(cert: &Certificate, issuer: &Certificate, now: OffsetDateTime) -> bool {
    if !is_ca(issuer) {
        return false;
    }
    let validity = issuer.tbs_certificate().validity();
    if unix(validity.not_before.to_unix_duration()) > now
        || unix(validity.not_after.to_unix_duration()) < now
    {
        return false;
    }
    crate::notation::chain::issued_by(cert, issuer)
}

/// Whether the leaf of `key` chains to one of `cas`, directly or through the intermediates that
/// follow it in the key's PEM.
pub fn chains_to(key: &PublicKey, cas: &[Certificate], now: OffsetDateTime) -> bool {
    let Ok(certs) = key.certificates() else {
        return false;
    };
    let mut current = &certs[0];
    // Each step moves one certificate up; a chain longer than the key's PEM cannot exist.
    for _ in 0..certs.len() {
        if cas.iter().any(|ca| issued_by(current, ca, now)) {
            return true;
        }
        match certs[1..].iter().find(|i| issued_by(current, i, now)) {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// Error making a certificate.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the root certificate: {0}")]
pub struct CertCreateError(String);

/// A P-256 key as rcgen's signer, for the certificates this crate makes (notary root
/// certificates here, Notary Project signing certificates in `notation::certgen`).
pub(crate) struct P256Signer {
    sk: p256::ecdsa::SigningKey,
    point: Vec<u8>,
}

impl P256Signer {
    pub(crate) fn new(sk: &p256::ecdsa::SigningKey) -> Self {
        P256Signer {
            sk: sk.clone(),
            point: sk.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
        }
    }
}

impl rcgen::PublicKeyData for P256Signer {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for P256Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::DerSignature = self.sk.sign(msg);
        Ok(sig.as_bytes().to_vec())
    }
}

/// A self-signed root certificate for `gun`, as notary makes one: CN = GUN, 10 years, key usage
/// digitalSignature + keyEncipherment, EKU codeSigning, CA:FALSE. Returns the PEM text.
pub fn make_root_certificate(
    sk: &p256::ecdsa::SigningKey,
    gun: &str,
    now: OffsetDateTime,
) -> Result<String, CertCreateError> {
    use spki::EncodePublicKey;
    let vk = sk.verifying_key();
    let spki = vk
        .to_public_key_der()
        .map_err(|e| CertCreateError(e.to_string()))?;
    let signer = P256Signer::new(sk);
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, gun);
    params.distinguished_name = dn;
    params.not_before = now;
    params.not_after = now + Duration::days(3650);
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| CertCreateError(e.to_string()))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(serial.to_vec().into());
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(Sha256::digest(spki.as_bytes())[..20].to_vec());
    let cert = params
        .self_signed(&signer)
        .map_err(|e| CertCreateError(e.to_string()))?;
    Ok(cert.pem())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_cn_matches_by_prefix() {
        assert!(cn_matches_gun(
            "localhost:5000/nv1/*",
            "localhost:5000/nv1/app"
        ));
        assert!(cn_matches_gun("a/b", "a/b"));
        assert!(!cn_matches_gun("a/b", "a/bc"));
    }

    #[test]
    fn made_certificate_passes_the_root_rules_for_its_gun_only() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let now = OffsetDateTime::now_utc();
        let pem = make_root_certificate(&sk, "example.azurecr.io/app", now).unwrap();
        let key = PublicKey::new(keytype::ECDSA_X509, pem.into_bytes());
        check_root_key("k", &key, "example.azurecr.io/app", now, true).unwrap();
        assert!(matches!(
            check_root_key("k", &key, "example.azurecr.io/other", now, true),
            Err(CertError::CommonName { .. })
        ));
        assert!(matches!(
            check_root_key(
                "k",
                &key,
                "example.azurecr.io/app",
                now + Duration::days(4000),
                true
            ),
            Err(CertError::Validity { .. })
        ));
        // The canonical ID is the ID of the bare ecdsa key.
        use spki::EncodePublicKey;
        let bare = PublicKey::new(
            keytype::ECDSA,
            sk.verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
        );
        assert_eq!(key.canonical_id().unwrap(), bare.id());
    }
}
