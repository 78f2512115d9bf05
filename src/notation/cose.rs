//! The COSE envelope of a Notary Project signature (`application/cose`): `COSE_Sign1_Tagged`
//! (CBOR tag 18) over `[protected bstr, unprotected map, payload bstr, signature bstr]`, read
//! into the same [`Envelope`] as a JWS one, so [`super::verify`] runs notation's checks on both
//! alike. The signature covers `Sig_structure = ["Signature1", protected, h'', payload]`, which
//! becomes [`Envelope::signing_input`]. Read side only: this tool writes JWS.
//!
//! Protected labels: `1` alg (COSE integer), `2` crit, `3` content type, and the Notary Project
//! text labels, whose times are CBOR tag 1 (epoch seconds; untagged times are refused, as
//! notation refuses them). Unprotected: `33` x5chain, the timestamp token and signing agent.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::cbor::{self, Value};
use super::envelope::{Algorithm, Envelope, EnvelopeError, Payload, ProtectedHeader};
use super::header;

/// CBOR tag of `COSE_Sign1_Tagged`.
const TAG_COSE_SIGN1: u64 = 18;
/// CBOR tag of an epoch-based date/time.
const TAG_EPOCH_TIME: u64 = 1;
/// COSE header labels (RFC 9052 §3.1, RFC 9360).
const LABEL_ALG: i64 = 1;
const LABEL_CRIT: i64 = 2;
const LABEL_CONTENT_TYPE: i64 = 3;
const LABEL_X5CHAIN: i64 = 33;

/// The COSE algorithm identifiers the Notary Project allows (IANA COSE Algorithms).
fn algorithm(id: i64) -> Option<Algorithm> {
    Some(match id {
        -37 => Algorithm::Ps256,
        -38 => Algorithm::Ps384,
        -39 => Algorithm::Ps512,
        -7 => Algorithm::Es256,
        -35 => Algorithm::Es384,
        -36 => Algorithm::Es512,
        _ => return None,
    })
}

fn bad(field: &'static str, reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Field {
        field,
        reason: reason.into(),
    }
}

/// A header label: an integer or a text string (RFC 9052 §3).
#[derive(Debug, PartialEq)]
enum Label<'a> {
    Int(i64),
    Text(&'a str),
}

fn label<'a>(v: &Value<'a>) -> Result<Label<'a>, EnvelopeError> {
    match v {
        Value::Text(t) => Ok(Label::Text(t)),
        other => other
            .as_int()
            .map(Label::Int)
            .ok_or_else(|| bad("COSE header", format!("a label is {}", other.kind()))),
    }
}

/// Parses a `COSE_Sign1_Tagged` envelope.
pub fn parse_cose(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let cbor_err = |e: cbor::CborError| EnvelopeError::Cbor(e.to_string());
    let top = cbor::decode(bytes).map_err(cbor_err)?;
    let Value::Tag(TAG_COSE_SIGN1, inner) = top else {
        return Err(EnvelopeError::Cbor(format!(
            "the envelope is {}, not a COSE_Sign1_Tagged item (CBOR tag 18)",
            top.kind()
        )));
    };
    let Value::Array(parts) = *inner else {
        return Err(EnvelopeError::Cbor(
            "COSE_Sign1 is not an array of four items".into(),
        ));
    };
    let [protected, unprotected, payload, signature] = <[Value; 4]>::try_from(parts)
        .map_err(|_| EnvelopeError::Cbor("COSE_Sign1 is not an array of four items".into()))?;
    let Value::Bytes(protected_bytes) = protected else {
        return Err(bad("protected header", "not a byte string"));
    };
    let Value::Bytes(payload_bytes) = payload else {
        // `nil` here is a detached payload, which a Notary Project signature never has.
        return Err(EnvelopeError::Missing("payload"));
    };
    let Value::Bytes(signature) = signature else {
        return Err(bad("signature", "not a byte string"));
    };
    if signature.is_empty() {
        return Err(EnvelopeError::Missing("signature"));
    }
    let protected_map = cbor::decode(protected_bytes).map_err(cbor_err)?;
    let protected = protected_header(&protected_map)?;
    let Value::Map(unprotected) = unprotected else {
        return Err(bad("unprotected header", "not a map"));
    };
    let mut certificate_chain = None;
    let mut timestamp_signature = None;
    let mut signing_agent = None;
    for (k, v) in &unprotected {
        match label(k)? {
            Label::Int(LABEL_X5CHAIN) => {
                // RFC 9360: one certificate as a bstr, several as an array of bstr.
                let chain = match v {
                    Value::Bytes(b) => vec![b.to_vec()],
                    Value::Array(items) => items
                        .iter()
                        .map(|c| match c {
                            Value::Bytes(b) => Ok(b.to_vec()),
                            other => {
                                Err(bad("x5chain", format!("a certificate is {}", other.kind())))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    other => return Err(bad("x5chain", format!("it is {}", other.kind()))),
                };
                certificate_chain = Some(chain);
            }
            Label::Text(header::TIMESTAMP_SIGNATURE) => match v {
                Value::Bytes(b) => timestamp_signature = Some(b.to_vec()),
                other => {
                    return Err(bad(
                        "timestamp signature",
                        format!("it is {}", other.kind()),
                    ));
                }
            },
            Label::Text(header::SIGNING_AGENT) => match v {
                Value::Text(t) => signing_agent = Some(t.to_string()),
                other => return Err(bad("signing agent", format!("it is {}", other.kind()))),
            },
            // Unsigned and unused, like unknown members of the JWS unprotected header.
            _ => {}
        }
    }
    let certificate_chain = certificate_chain
        .filter(|c| !c.is_empty())
        .ok_or(EnvelopeError::Missing("x5chain certificate chain"))?;
    let payload: Payload =
        serde_json::from_slice(payload_bytes).map_err(|e| EnvelopeError::Json {
            part: "payload",
            reason: e.to_string(),
        })?;
    Ok(Envelope {
        protected,
        protected_b64: URL_SAFE_NO_PAD.encode(protected_bytes),
        payload,
        payload_bytes: payload_bytes.to_vec(),
        signature: signature.to_vec(),
        certificate_chain,
        timestamp_signature,
        signing_agent,
        signing_input: sig_structure(protected_bytes, payload_bytes),
    })
}

/// `Sig_structure` for COSE_Sign1 with no external data, CBOR-encoded: what the signer signed.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 24);
    cbor::write_head(&mut out, 4, 4);
    cbor::write_text(&mut out, "Signature1");
    cbor::write_bytes(&mut out, protected);
    cbor::write_bytes(&mut out, &[]);
    cbor::write_bytes(&mut out, payload);
    out
}

fn protected_header(map: &Value<'_>) -> Result<ProtectedHeader, EnvelopeError> {
    let Value::Map(entries) = map else {
        return Err(bad("protected header", "not a map"));
    };
    let mut alg = None;
    let mut crit = None;
    let mut cty = None;
    let mut strings: BTreeMap<&str, String> = BTreeMap::new();
    let mut times: BTreeMap<&str, OffsetDateTime> = BTreeMap::new();
    let mut extended = BTreeMap::new();
    for (k, v) in entries {
        match label(k)? {
            Label::Int(LABEL_ALG) => {
                let id = v
                    .as_int()
                    .ok_or_else(|| bad("alg", format!("it is {}", v.kind())))?;
                alg = Some(algorithm(id).ok_or_else(|| {
                    bad(
                        "alg",
                        format!(
                            "COSE algorithm {id} is not one of PS256 (-37), PS384 (-38), PS512 (-39), ES256 (-7), ES384 (-35), ES512 (-36)"
                        ),
                    )
                })?);
            }
            Label::Int(LABEL_CRIT) => {
                let Value::Array(items) = v else {
                    return Err(bad("crit", "must be a non-empty array of header labels"));
                };
                if items.is_empty() {
                    return Err(bad("crit", "must be a non-empty array of header labels"));
                }
                // Integer labels are kept as their decimal text: none is a Notary Project
                // header, so verify refuses them as critical headers it does not understand.
                crit = Some(
                    items
                        .iter()
                        .map(|i| match label(i)? {
                            Label::Text(t) => Ok(t.to_string()),
                            Label::Int(n) => Ok(n.to_string()),
                        })
                        .collect::<Result<Vec<_>, EnvelopeError>>()?,
                );
            }
            Label::Int(LABEL_CONTENT_TYPE) => match v {
                Value::Text(t) => cty = Some(t.to_string()),
                other => return Err(bad("cty", format!("it is {}", other.kind()))),
            },
            Label::Text(
                name @ (header::SIGNING_TIME | header::AUTHENTIC_SIGNING_TIME | header::EXPIRY),
            ) => {
                times.insert(name, epoch_time(name, v)?);
            }
            Label::Text(
                name @ (header::SIGNING_SCHEME
                | header::VERIFICATION_PLUGIN
                | header::VERIFICATION_PLUGIN_MIN_VERSION),
            ) => match v {
                Value::Text(t) => {
                    strings.insert(name, t.to_string());
                }
                other => {
                    return Err(bad(
                        "protected header",
                        format!("{name} is {}, not a text string", other.kind()),
                    ));
                }
            },
            Label::Text(other) => {
                extended.insert(other.to_string(), serde_json::Value::Null);
            }
            Label::Int(n) => {
                extended.insert(n.to_string(), serde_json::Value::Null);
            }
        }
    }
    Ok(ProtectedHeader {
        alg: alg.ok_or(EnvelopeError::Missing("alg"))?,
        cty: cty.ok_or(EnvelopeError::Missing("cty"))?,
        crit: crit.ok_or(EnvelopeError::Missing("crit"))?,
        signing_scheme: strings
            .remove(header::SIGNING_SCHEME)
            .ok_or(EnvelopeError::Missing(header::SIGNING_SCHEME))?,
        signing_time: times.remove(header::SIGNING_TIME),
        authentic_signing_time: times.remove(header::AUTHENTIC_SIGNING_TIME),
        expiry: times.remove(header::EXPIRY),
        verification_plugin: strings.remove(header::VERIFICATION_PLUGIN),
        verification_plugin_min_version: strings.remove(header::VERIFICATION_PLUGIN_MIN_VERSION),
        extended,
    })
}

/// A time header: CBOR tag 1 over integer seconds since the epoch.
fn epoch_time(name: &str, v: &Value<'_>) -> Result<OffsetDateTime, EnvelopeError> {
    let Value::Tag(TAG_EPOCH_TIME, inner) = v else {
        return Err(bad(
            "protected header",
            format!(
                "{name} is {}, not an epoch time (CBOR tag 1 over an integer)",
                v.kind()
            ),
        ));
    };
    inner
        .as_int()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| {
            bad(
                "protected header",
                format!("{name} is not an integer number of seconds in range"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notation::scheme;

    const PAYLOAD: &[u8] = br#"{"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abc","size":1}}"#;

    /// A COSE_Sign1_Tagged envelope from parts, so each test changes one thing.
    fn envelope(protected: &[u8], unprotected: &[u8], payload: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![0xd2];
        cbor::write_head(&mut out, 4, 4);
        cbor::write_bytes(&mut out, protected);
        out.extend_from_slice(unprotected);
        match payload {
            Some(p) => cbor::write_bytes(&mut out, p),
            None => out.push(0xf6),
        }
        cbor::write_bytes(&mut out, b"sig");
        out
    }

    /// The protected map notation writes; `time` is the encoded signing time item.
    fn protected(alg: &[u8], time: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        cbor::write_head(&mut m, 5, 5);
        m.push(0x01);
        m.extend_from_slice(alg);
        m.push(0x02);
        cbor::write_head(&mut m, 4, 1);
        cbor::write_text(&mut m, header::SIGNING_SCHEME);
        m.push(0x03);
        cbor::write_text(&mut m, crate::notation::MEDIA_TYPE_PAYLOAD_V1);
        cbor::write_text(&mut m, header::SIGNING_TIME);
        m.extend_from_slice(time);
        cbor::write_text(&mut m, header::SIGNING_SCHEME);
        cbor::write_text(&mut m, scheme::X509);
        m
    }

    fn unprotected() -> Vec<u8> {
        let mut u = Vec::new();
        cbor::write_head(&mut u, 5, 1);
        u.extend_from_slice(&[0x18, 0x21]);
        cbor::write_head(&mut u, 4, 1);
        cbor::write_bytes(&mut u, b"cert");
        u
    }

    const ES256: &[u8] = &[0x26];
    const EPOCH_1800000000: &[u8] = &[0xc1, 0x1a, 0x6b, 0x49, 0xd2, 0x00];

    #[test]
    fn a_notation_shaped_envelope_reads_into_the_common_form() {
        let p = protected(ES256, EPOCH_1800000000);
        let env = parse_cose(&envelope(&p, &unprotected(), Some(PAYLOAD))).unwrap();
        assert_eq!(env.protected.alg, Algorithm::Es256);
        assert_eq!(env.protected.crit, vec![header::SIGNING_SCHEME.to_string()]);
        assert_eq!(
            env.protected.signing_time,
            Some(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap())
        );
        assert_eq!(env.certificate_chain, vec![b"cert".to_vec()]);
        assert_eq!(env.signature, b"sig");
        assert_eq!(env.payload.target_artifact.digest, "sha256:abc");
        assert_eq!(env.signing_input, sig_structure(&p, PAYLOAD));
        // ["Signature1", protected, h'', payload], byte for byte.
        let s = &env.signing_input;
        assert_eq!(&s[..12], b"\x84\x6aSignature1");
    }

    #[test]
    fn untagged_times_unknown_algorithms_and_detached_payloads_are_refused() {
        let untagged = protected(ES256, &[0x1a, 0x6b, 0x49, 0xd2, 0x00]);
        let err = parse_cose(&envelope(&untagged, &unprotected(), Some(PAYLOAD))).unwrap_err();
        assert!(err.to_string().contains("CBOR tag 1"), "{err}");
        // -8 is EdDSA; 5 is HMAC 256/256.
        for alg in [&[0x27][..], &[0x05][..]] {
            let p = protected(alg, EPOCH_1800000000);
            let err = parse_cose(&envelope(&p, &unprotected(), Some(PAYLOAD))).unwrap_err();
            assert!(
                matches!(err, EnvelopeError::Field { field: "alg", .. }),
                "{err}"
            );
        }
        let p = protected(ES256, EPOCH_1800000000);
        assert_eq!(
            parse_cose(&envelope(&p, &unprotected(), None)).unwrap_err(),
            EnvelopeError::Missing("payload")
        );
        let mut no_chain = Vec::new();
        cbor::write_head(&mut no_chain, 5, 0);
        assert_eq!(
            parse_cose(&envelope(&p, &no_chain, Some(PAYLOAD))).unwrap_err(),
            EnvelopeError::Missing("x5chain certificate chain")
        );
    }

    #[test]
    fn an_untagged_or_malformed_cose_sign1_is_refused() {
        let p = protected(ES256, EPOCH_1800000000);
        let good = envelope(&p, &unprotected(), Some(PAYLOAD));
        let err = parse_cose(&good[1..]).unwrap_err();
        assert!(err.to_string().contains("tag 18"), "{err}");
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            parse_cose(&trailing).unwrap_err(),
            EnvelopeError::Cbor(_)
        ));
        for cut in [1, good.len() / 2, good.len() - 1] {
            assert!(parse_cose(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut three = vec![0xd2];
        cbor::write_head(&mut three, 4, 3);
        three.extend_from_slice(&[0x40, 0xa0, 0x40]);
        assert!(parse_cose(&three).unwrap_err().to_string().contains("four"));
    }
}
