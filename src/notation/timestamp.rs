//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`): a CMS SignedData
//! whose content is a TSTInfo, by a timestamping authority (TSA) whose chain must reach a root
//! in the policy's `tsa` trust store. Pure: bytes in, the authentic time range out.
//!
//! Checked as notation (tspclient-go) checks it: the token is SignedData over id-ct-TSTInfo
//! with exactly one signer; the signed attributes carry that content type, the digest of the
//! TSTInfo and a signingCertificateV2 naming the signer's certificate; the signature over them
//! verifies with that certificate; its chain (certificates in the token) reaches a `tsa` store
//! certificate, every link signed, CA rules on the issuers, the signer with the timeStamping
//! extended key usage, all valid at the timestamp; and the message imprint is the hash of the
//! envelope's signature bytes. The result is `genTime ± accuracy`.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::AlgorithmIdentifierOwned;
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;

use super::chain;
use super::truststore::StoreCertificate;

const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const ID_CT_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const ATTR_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
const EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// Longest TSA chain followed: real ones have 2–4 certificates.
const MAX_TSA_CHAIN: usize = 8;

/// When the timestamp says the signature existed: `genTime` widened by the TSA's accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// `genTime − accuracy`.
    pub earliest: OffsetDateTime,
    /// `genTime + accuracy`.
    pub latest: OffsetDateTime,
}

/// A hash the Notary Project allows in timestamps (SHA-1 is refused, as notation refuses it).
#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(alg: &AlgorithmIdentifierOwned) -> Result<Self, String> {
        match alg.oid.to_string().as_str() {
            "2.16.840.1.101.3.4.2.1" => Ok(Hash::Sha256),
            "2.16.840.1.101.3.4.2.2" => Ok(Hash::Sha384),
            "2.16.840.1.101.3.4.2.3" => Ok(Hash::Sha512),
            other => Err(format!(
                "hash algorithm {other} is not SHA-256, SHA-384 or SHA-512"
            )),
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(bytes).to_vec(),
            Hash::Sha384 => Sha384::digest(bytes).to_vec(),
            Hash::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }

    /// The `sha*WithRSAEncryption` OID for a signer that names plain `rsaEncryption`.
    fn rsa_signature_oid(self) -> &'static str {
        match self {
            Hash::Sha256 => "1.2.840.113549.1.1.11",
            Hash::Sha384 => "1.2.840.113549.1.1.12",
            Hash::Sha512 => "1.2.840.113549.1.1.13",
        }
    }
}

#[derive(der::Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(der::Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

#[derive(der::Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

/// Verifies `token` as the timestamp of `signature` (the envelope's signature bytes) against
/// the `tsa` store certificates, and returns the authentic time range. Every refusal says why.
pub fn verify(
    token: &[u8],
    signature: &[u8],
    tsa_store: &[StoreCertificate],
) -> Result<TimeRange, String> {
    let info = ContentInfo::from_der(token)
        .map_err(|e| format!("the timestamp is not a CMS ContentInfo ({e})"))?;
    if info.content_type.to_string() != ID_SIGNED_DATA {
        return Err(format!(
            "the timestamp's content type is {}, not SignedData",
            info.content_type
        ));
    }
    let sd: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("the timestamp's SignedData is malformed ({e})"))?;
    if sd.encap_content_info.econtent_type.to_string() != ID_CT_TST_INFO {
        return Err(format!(
            "the timestamp signs {}, not a TSTInfo",
            sd.encap_content_info.econtent_type
        ));
    }
    let tst_bytes = sd
        .encap_content_info
        .econtent
        .as_ref()
        .filter(|a| a.tag() == Tag::OctetString)
        .map(|a| a.value().to_vec())
        .ok_or("the timestamp carries no TSTInfo")?;
    let signers: Vec<&SignerInfo> = sd.signer_infos.0.iter().collect();
    let [signer] = signers.as_slice() else {
        return Err(format!(
            "the timestamp has {} signers; exactly one is required",
            signers.len()
        ));
    };
    let certs: Vec<&Certificate> = sd
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    cms::cert::CertificateChoices::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let tsa_cert = certs
        .iter()
        .copied()
        .find(|c| identifies(&signer.sid, c))
        .ok_or("the timestamp does not include its signer's certificate")?;
    check_signer(signer, &tst_bytes, tsa_cert)?;

    let (hash, hashed, gen_time, accuracy) = read_tst_info(&tst_bytes)?;
    if hash.digest(signature) != hashed {
        return Err(
            "the timestamp is for other signature bytes (its message imprint does not match)"
                .into(),
        );
    }
    let range = TimeRange {
        earliest: gen_time - accuracy,
        latest: gen_time + accuracy,
    };
    check_tsa_chain(tsa_cert, &certs, tsa_store, gen_time)?;
    Ok(range)
}

fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => {
            tbs.issuer() == &is.issuer && tbs.serial_number() == &is.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, own)| own.0 == ski.0),
    }
}

/// The signed attributes and the signature over them.
fn check_signer(
    signer: &SignerInfo,
    tst_bytes: &[u8],
    tsa_cert: &Certificate,
) -> Result<(), String> {
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or("the timestamp's signer has no signed attributes")?;
    let single = |oid: &str| -> Result<&Any, String> {
        let mut found = attrs.iter().filter(|a| a.oid.to_string() == oid);
        let (Some(a), None) = (found.next(), found.next()) else {
            return Err(format!(
                "the timestamp's signed attributes must hold {oid} exactly once"
            ));
        };
        let mut values = a.values.iter();
        match (values.next(), values.next()) {
            (Some(v), None) => Ok(v),
            _ => Err(format!(
                "the timestamp's attribute {oid} must have one value"
            )),
        }
    };
    let content_type = single(ATTR_CONTENT_TYPE)?
        .decode_as::<ObjectIdentifier>()
        .map_err(|e| format!("content-type attribute ({e})"))?;
    if content_type.to_string() != ID_CT_TST_INFO {
        return Err("the timestamp's content-type attribute is not TSTInfo".into());
    }
    let digest_alg = Hash::from_oid(&signer.digest_alg)?;
    let message_digest = single(ATTR_MESSAGE_DIGEST)?
        .decode_as::<OctetString>()
        .map_err(|e| format!("message-digest attribute ({e})"))?;
    if message_digest.as_bytes() != digest_alg.digest(tst_bytes) {
        return Err("the timestamp's TSTInfo does not match its signed digest".into());
    }
    let signing_cert: SigningCertificateV2 = single(ATTR_SIGNING_CERTIFICATE_V2)
        .map_err(|_| {
            "the timestamp lacks the signingCertificateV2 attribute that names the TSA certificate"
                .to_string()
        })?
        .decode_as()
        .map_err(|e| format!("signingCertificateV2 attribute ({e})"))?;
    let tsa_der = tsa_cert.to_der().map_err(|e| e.to_string())?;
    let first = signing_cert
        .certs
        .first()
        .ok_or("the signingCertificateV2 attribute names no certificate")?;
    let id_hash = match &first.hash_algorithm {
        Some(a) => Hash::from_oid(a)?,
        None => Hash::Sha256,
    };
    if first.cert_hash.as_bytes() != id_hash.digest(&tsa_der) {
        return Err(
            "the signingCertificateV2 attribute names another certificate than the signer's".into(),
        );
    }
    let signed = attrs.to_der().map_err(|e| e.to_string())?;
    let sig_oid = signer.signature_algorithm.oid.to_string();
    let sig_oid = if sig_oid == RSA_ENCRYPTION {
        digest_alg.rsa_signature_oid().to_string()
    } else {
        sig_oid
    };
    let spki = tsa_cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| e.to_string())?;
    if !chain::verify_certificate_signature(&sig_oid, &spki, &signed, signer.signature.as_bytes()) {
        return Err(format!(
            "the timestamp's signature by {} does not verify",
            chain::subject_string(tsa_cert)
        ));
    }
    Ok(())
}

/// `(imprint hash, imprint, genTime, accuracy)` from a TSTInfo. Read positionally: version,
/// policy, messageImprint, serialNumber, genTime, then the optional accuracy.
fn read_tst_info(bytes: &[u8]) -> Result<(Hash, Vec<u8>, OffsetDateTime, Duration), String> {
    let bad = |what: &str| format!("the timestamp's TSTInfo is malformed: {what}");
    let items = Vec::<Any>::from_der(bytes).map_err(|e| bad(&e.to_string()))?;
    if items.len() < 5 {
        return Err(bad("fewer than five fields"));
    }
    if items[0].tag() != Tag::Integer || items[0].value() != [1] {
        return Err(bad("version is not 1"));
    }
    let imprint: MessageImprint = items[2]
        .decode_as()
        .map_err(|e| bad(&format!("messageImprint ({e})")))?;
    let hash = Hash::from_oid(&imprint.hash_algorithm)?;
    if items[4].tag() != Tag::GeneralizedTime {
        return Err(bad("genTime is not a GeneralizedTime"));
    }
    let gen_time = generalized_time(items[4].value()).ok_or_else(|| bad("genTime"))?;
    let accuracy = match items.get(5).filter(|a| a.tag() == Tag::Sequence) {
        Some(a) => accuracy(a.value()).ok_or_else(|| bad("accuracy"))?,
        None => Duration::ZERO,
    };
    Ok((
        hash,
        imprint.hashed_message.as_bytes().to_vec(),
        gen_time,
        accuracy,
    ))
}

/// `YYYYMMDDHHMMSS[.f+]Z`, as RFC 3161 allows (fractions of a second, UTC only).
fn generalized_time(v: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            (w, f)
        }
        Some(_) => return None,
        None => (s, ""),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
    };
    let t = time::Time::from_hms_nano(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
        nanos,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc())
}

/// `Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER OPTIONAL, micros [1]
/// INTEGER OPTIONAL }`, from the SEQUENCE's contents.
fn accuracy(contents: &[u8]) -> Option<Duration> {
    let mut out = Duration::ZERO;
    let mut rest = contents;
    while !rest.is_empty() {
        let tag = *rest.first()?;
        let len = usize::from(*rest.get(1)?);
        // Small non-negative integers only: an accuracy is seconds, not years.
        if len == 0 || len > 4 {
            return None;
        }
        let value = rest.get(2..2 + len)?;
        if value[0] & 0x80 != 0 {
            return None;
        }
        let n = value.iter().fold(0i64, |a, b| (a << 8) | i64::from(*b));
        out += match tag {
            0x02 => Duration::seconds(n),
            0x80 => Duration::milliseconds(n),
            0x81 => Duration::microseconds(n),
            _ => return None,
        };
        rest = &rest[2 + len..];
    }
    Some(out)
}

/// The TSA certificate's chain through the token's certificates up to a `tsa` store
/// certificate: every link signed, the issuers CAs, the signer for timestamping, all valid at
/// `at`.
fn check_tsa_chain(
    signer: &Certificate,
    certs: &[&Certificate],
    store: &[StoreCertificate],
    at: OffsetDateTime,
) -> Result<(), String> {
    match signer.tbs_certificate().get_extension::<ExtendedKeyUsage>() {
        Ok(Some((_, eku))) if eku.0.iter().any(|o| o.to_string() == EKU_TIME_STAMPING) => {}
        _ => {
            return Err(format!(
                "the TSA certificate {} lacks the timeStamping extended key usage",
                chain::subject_string(signer)
            ));
        }
    }
    let in_store = |c: &Certificate| c.to_der().is_ok_and(|d| store.iter().any(|s| s.der == d));
    let mut path: Vec<&Certificate> = vec![signer];
    loop {
        let current = path[path.len() - 1];
        if in_store(current) {
            break;
        }
        if let Some(anchor) = store.iter().find(|s| chain::issued_by(current, &s.cert)) {
            path.push(&anchor.cert);
            break;
        }
        let next = certs
            .iter()
            .copied()
            .find(|c| !path.contains(c) && chain::issued_by(current, c));
        match next {
            Some(c) if path.len() < MAX_TSA_CHAIN => path.push(c),
            _ => {
                return Err(format!(
                    "the TSA certificate chain from {} does not reach a certificate in the tsa trust store",
                    chain::subject_string(signer)
                ));
            }
        }
    }
    for (i, c) in path.iter().enumerate().skip(1) {
        chain::validate_ca(c, i, i - 1).map_err(|e| format!("TSA chain: {e}"))?;
    }
    for c in &path {
        let (nb, na) = chain::validity(c);
        if at < nb || at > na {
            return Err(format!(
                "TSA certificate {} is not valid at the timestamp {at} (valid {nb} to {na})",
                chain::subject_string(c)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_with_and_without_fractions_read_as_utc() {
        let t = generalized_time(b"20240618062937Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_718_692_177);
        let f = generalized_time(b"20240618062937.25Z").unwrap();
        assert_eq!(f - t, Duration::milliseconds(250));
        for bad in [
            &b"20240618062937"[..],
            b"2024061806293Z",
            b"20241318062937Z",
            b"20240618062937.Z",
            b"20240618062937+0100",
        ] {
            assert!(generalized_time(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn accuracy_adds_seconds_millis_and_micros_and_refuses_the_rest() {
        assert_eq!(accuracy(&[0x02, 0x01, 0x01]), Some(Duration::seconds(1)));
        assert_eq!(
            accuracy(&[0x02, 0x01, 0x01, 0x80, 0x02, 0x01, 0xf4]),
            Some(Duration::milliseconds(1500))
        );
        assert_eq!(
            accuracy(&[0x81, 0x01, 0x0a]),
            Some(Duration::microseconds(10))
        );
        assert_eq!(accuracy(&[0x02, 0x01, 0xff]), None);
        assert_eq!(accuracy(&[0x04, 0x01, 0x01]), None);
        assert_eq!(accuracy(&[0x02, 0x05, 1, 2, 3, 4, 5]), None);
        assert_eq!(accuracy(&[0x02, 0x03, 0x01]), None);
    }

    #[test]
    fn bytes_that_are_not_a_timestamp_token_are_refused_with_a_reason() {
        for token in [&b""[..], b"\x30\x00", b"\x30\x03\x06\x01\x00"] {
            let err = verify(token, b"sig", &[]).unwrap_err();
            assert!(err.contains("timestamp"), "{err}");
        }
    }
}
