//! The JWS JSON envelope of a Notary Project signature: flattened JWS with a protected header
//! (`alg`, `cty`, `crit`, signing scheme and times), an unprotected `header` (`x5c`, timestamp,
//! signing agent), the payload `{targetArtifact: descriptor}` and one signature. Parsing here is
//! structural (types, encodings, required fields); whether the envelope is *valid* is
//! [`super::verify`]'s job, in notation's order. The writer half ([`ProtectedHeader::to_json`],
//! [`signing_input`], [`flattened_jws`]) is what a signer needs to produce the same shape.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, MEDIA_TYPE_PAYLOAD_V1, header, scheme};

/// The largest envelope read: far above a real one (2–3 KiB with a three-certificate chain), far
/// below what would let a hostile registry make us parse megabytes of base64.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

/// An OCI descriptor as the payload carries it: the signed manifest's media type, digest and
/// size, plus optional user metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the signed manifest, as the registry serves it.
    pub media_type: String,
    /// `sha256:<hex>` of the manifest bytes.
    pub digest: String,
    /// Size of the manifest in bytes.
    pub size: u64,
    /// User metadata (`notation sign -m k=v`); keys under `io.cncf.notary` are reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// Whether `self` names the same content as `other`: media type, digest and size, which is
    /// what notation compares with the resolved reference (annotations are user metadata).
    pub fn same_content(&self, other: &Descriptor) -> bool {
        self.media_type == other.media_type
            && self.digest == other.digest
            && self.size == other.size
    }
}

/// The signed payload (`application/vnd.cncf.notary.payload.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// The manifest the signature is about.
    pub target_artifact: Descriptor,
}

/// The JWS algorithms the Notary Project allows; each is tied to one key type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PSS with SHA-256, salt 32: RSA-2048.
    Ps256,
    /// RSASSA-PSS with SHA-384, salt 48: RSA-3072.
    Ps384,
    /// RSASSA-PSS with SHA-512, salt 64: RSA-4096.
    Ps512,
    /// ECDSA P-256 with SHA-256, raw `r‖s`.
    Es256,
    /// ECDSA P-384 with SHA-384, raw `r‖s`.
    Es384,
    /// ECDSA P-521 with SHA-512, raw `r‖s`.
    Es512,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
        }
    }

    /// From a JWS `alg` name; `none`, HMAC and everything else are `None`.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        Some(match name {
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "ES512" => Self::Es512,
            _ => return None,
        })
    }

    /// Length of a raw `r‖s` ECDSA signature, or `None` for RSA (the modulus size).
    pub fn ecdsa_signature_len(self) -> Option<usize> {
        match self {
            Self::Es256 => Some(64),
            Self::Es384 => Some(96),
            Self::Es512 => Some(132),
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.jws_name())
    }
}

/// The protected header, decoded. The exact signed bytes are kept in [`Envelope::protected_b64`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedHeader {
    /// Signature algorithm.
    pub alg: Algorithm,
    /// Content type of the payload; must be [`MEDIA_TYPE_PAYLOAD_V1`] (checked in verify).
    pub cty: String,
    /// Critical header names.
    pub crit: Vec<String>,
    /// `io.cncf.notary.signingScheme` as written.
    pub signing_scheme: String,
    /// `io.cncf.notary.signingTime` (scheme `notary.x509`).
    pub signing_time: Option<OffsetDateTime>,
    /// `io.cncf.notary.authenticSigningTime` (scheme `notary.x509.signingAuthority`).
    pub authentic_signing_time: Option<OffsetDateTime>,
    /// `io.cncf.notary.expiry`.
    pub expiry: Option<OffsetDateTime>,
    /// `io.cncf.notary.verificationPlugin`.
    pub verification_plugin: Option<String>,
    /// `io.cncf.notary.verificationPluginMinVersion`.
    pub verification_plugin_min_version: Option<String>,
    /// Every other (extended) protected header, by name.
    pub extended: BTreeMap<String, serde_json::Value>,
}

/// The Notary Project's own protected header names; anything else but `alg`, `cty` and `crit`
/// is "extended".
pub const NOTARY_PROTECTED: &[&str] = &[
    header::SIGNING_SCHEME,
    header::SIGNING_TIME,
    header::AUTHENTIC_SIGNING_TIME,
    header::EXPIRY,
    header::VERIFICATION_PLUGIN,
    header::VERIFICATION_PLUGIN_MIN_VERSION,
];

impl ProtectedHeader {
    /// The header a `notary.x509` signer writes: `crit` lists the signing scheme, and the
    /// expiry when there is one.
    pub fn new_x509(
        alg: Algorithm,
        signing_time: OffsetDateTime,
        expiry: Option<OffsetDateTime>,
    ) -> Self {
        let mut crit = vec![header::SIGNING_SCHEME.to_string()];
        if expiry.is_some() {
            crit.push(header::EXPIRY.to_string());
        }
        Self {
            alg,
            cty: MEDIA_TYPE_PAYLOAD_V1.to_string(),
            crit,
            signing_scheme: scheme::X509.to_string(),
            signing_time: Some(signing_time),
            authentic_signing_time: None,
            expiry,
            verification_plugin: None,
            verification_plugin_min_version: None,
            extended: BTreeMap::new(),
        }
    }

    /// The JSON bytes to sign: times in RFC 3339 truncated to whole seconds, as notation writes
    /// them (fractional seconds are discouraged by the spec).
    pub fn to_json(&self) -> Result<Vec<u8>, EnvelopeError> {
        let time = |t: &OffsetDateTime| -> Result<serde_json::Value, EnvelopeError> {
            let t = t.replace_nanosecond(0).unwrap_or(*t);
            t.format(&Rfc3339)
                .map(serde_json::Value::String)
                .map_err(|e| EnvelopeError::Field {
                    field: "time",
                    reason: e.to_string(),
                })
        };
        let mut m = serde_json::Map::new();
        for (k, v) in &self.extended {
            m.insert(k.clone(), v.clone());
        }
        m.insert("alg".into(), self.alg.jws_name().into());
        m.insert("cty".into(), self.cty.clone().into());
        m.insert("crit".into(), self.crit.clone().into());
        m.insert(
            header::SIGNING_SCHEME.into(),
            self.signing_scheme.clone().into(),
        );
        if let Some(t) = &self.signing_time {
            m.insert(header::SIGNING_TIME.into(), time(t)?);
        }
        if let Some(t) = &self.authentic_signing_time {
            m.insert(header::AUTHENTIC_SIGNING_TIME.into(), time(t)?);
        }
        if let Some(t) = &self.expiry {
            m.insert(header::EXPIRY.into(), time(t)?);
        }
        if let Some(p) = &self.verification_plugin {
            m.insert(header::VERIFICATION_PLUGIN.into(), p.clone().into());
        }
        if let Some(v) = &self.verification_plugin_min_version {
            m.insert(
                header::VERIFICATION_PLUGIN_MIN_VERSION.into(),
                v.clone().into(),
            );
        }
        serde_json::to_vec(&m).map_err(|e| EnvelopeError::Field {
            field: "protected",
            reason: e.to_string(),
        })
    }

    fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|e| EnvelopeError::Json {
                part: "protected header",
                reason: e.to_string(),
            })?;
        let string = |name: &'static str| -> Result<Option<String>, EnvelopeError> {
            match map.get(name) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(EnvelopeError::Field {
                    field: name,
                    reason: "must be a string".into(),
                }),
            }
        };
        let time = |name: &'static str| -> Result<Option<OffsetDateTime>, EnvelopeError> {
            string(name)?
                .map(|s| {
                    OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| EnvelopeError::Field {
                        field: name,
                        reason: format!("{s:?} is not an RFC 3339 time: {e}"),
                    })
                })
                .transpose()
        };
        let alg_name = string("alg")?.ok_or(EnvelopeError::Missing("alg"))?;
        let alg = Algorithm::from_jws_name(&alg_name).ok_or_else(|| EnvelopeError::Field {
            field: "alg",
            reason: format!("{alg_name:?} is not one of PS256, PS384, PS512, ES256, ES384, ES512"),
        })?;
        let crit = match map.get("crit") {
            None => return Err(EnvelopeError::Missing("crit")),
            Some(serde_json::Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or(EnvelopeError::Field {
                        field: "crit",
                        reason: "entries must be strings".into(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(EnvelopeError::Field {
                    field: "crit",
                    reason: "must be a non-empty array of header names".into(),
                });
            }
        };
        let extended = map
            .iter()
            .filter(|(k, _)| {
                !["alg", "cty", "crit"].contains(&k.as_str())
                    && !NOTARY_PROTECTED.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            alg,
            cty: string("cty")?.ok_or(EnvelopeError::Missing("cty"))?,
            crit,
            signing_scheme: string(header::SIGNING_SCHEME)?
                .ok_or(EnvelopeError::Missing(header::SIGNING_SCHEME))?,
            signing_time: time(header::SIGNING_TIME)?,
            authentic_signing_time: time(header::AUTHENTIC_SIGNING_TIME)?,
            expiry: time(header::EXPIRY)?,
            verification_plugin: string(header::VERIFICATION_PLUGIN)?,
            verification_plugin_min_version: string(header::VERIFICATION_PLUGIN_MIN_VERSION)?,
            extended,
        })
    }
}

/// A parsed envelope. `signing_input` is exactly what the signature covers.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Decoded protected header.
    pub protected: ProtectedHeader,
    /// The base64url text of the protected header, as received (COSE: of its byte string).
    pub protected_b64: String,
    /// Decoded payload.
    pub payload: Payload,
    /// The payload's bytes (decoded), as signed.
    pub payload_bytes: Vec<u8>,
    /// The signature bytes.
    pub signature: Vec<u8>,
    /// `x5c`: DER certificates, leaf first. Unsigned: trust comes from the store, not from here.
    pub certificate_chain: Vec<Vec<u8>>,
    /// An RFC 3161 timestamp token, when present (parsed, not verified: see `verify`).
    pub timestamp_signature: Option<Vec<u8>>,
    /// The signing tool's name, diagnostic only.
    pub signing_agent: Option<String>,
    /// `BASE64URL(protected) "." BASE64URL(payload)`.
    pub signing_input: Vec<u8>,
}

/// Why bytes are not a Notary Project envelope. Each of these is an integrity failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// More than [`MAX_ENVELOPE_BYTES`].
    #[error("the signature envelope is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A media type other than JWS and COSE.
    #[error(
        "signature envelope type {0:?} is not a Notary Project envelope (application/jose+json or application/cose)"
    )]
    UnsupportedMediaType(String),
    /// Not the CBOR of a COSE_Sign1_Tagged item.
    #[error("the COSE signature envelope is malformed: {0}")]
    Cbor(String),
    /// Not JSON, or a part is not the JSON it should be.
    #[error("the signature envelope's {part} is not valid JSON: {reason}")]
    Json {
        /// Which part.
        part: &'static str,
        /// Parser message.
        reason: String,
    },
    /// Bad base64 in a part.
    #[error("the signature envelope's {part} is not valid {encoding}")]
    Base64 {
        /// Which part.
        part: &'static str,
        /// `base64url (unpadded)` or `base64`.
        encoding: &'static str,
    },
    /// A required field is absent.
    #[error("the signature envelope has no {0}")]
    Missing(&'static str),
    /// A field has the wrong type or value.
    #[error("the signature envelope's {field} is invalid: {reason}")]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The flattened JWS JSON members. Unknown top-level members are refused: the spec fixes the
/// four, and anything else would be unsigned data a reader might trust by mistake.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    payload: String,
    protected: String,
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize)]
struct Unprotected {
    #[serde(default)]
    x5c: Option<Vec<String>>,
    #[serde(rename = "io.cncf.notary.timestampSignature", default)]
    timestamp_signature: Option<String>,
    #[serde(rename = "io.cncf.notary.signingAgent", default)]
    signing_agent: Option<String>,
}

/// Parses an envelope of the given layer media type. The reader picks the parser from the
/// signature manifest's layer, as the spec requires.
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(EnvelopeError::TooLarge {
            size: bytes.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    match media_type {
        MEDIA_TYPE_JWS => parse_jws(bytes),
        MEDIA_TYPE_COSE => super::cose::parse_cose(bytes),
        other => Err(EnvelopeError::UnsupportedMediaType(other.into())),
    }
}

/// Parses a flattened JWS JSON envelope.
pub fn parse_jws(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(EnvelopeError::TooLarge {
            size: bytes.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    let jws: Flattened = serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json {
        part: "JWS JSON",
        reason: e.to_string(),
    })?;
    let b64u = |part: &'static str, s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| EnvelopeError::Base64 {
                part,
                encoding: "base64url (unpadded)",
            })
    };
    let protected_bytes = b64u("protected header", &jws.protected)?;
    let payload_bytes = b64u("payload", &jws.payload)?;
    let signature = b64u("signature", &jws.signature)?;
    if signature.is_empty() {
        return Err(EnvelopeError::Missing("signature"));
    }
    let protected = ProtectedHeader::from_json(&protected_bytes)?;
    let payload: Payload =
        serde_json::from_slice(&payload_bytes).map_err(|e| EnvelopeError::Json {
            part: "payload",
            reason: e.to_string(),
        })?;
    let x5c = jws
        .header
        .x5c
        .filter(|c| !c.is_empty())
        .ok_or(EnvelopeError::Missing("x5c certificate chain"))?;
    let certificate_chain = x5c
        .iter()
        .map(|c| {
            STANDARD.decode(c).map_err(|_| EnvelopeError::Base64 {
                part: "x5c certificate",
                encoding: "base64",
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timestamp_signature = jws
        .header
        .timestamp_signature
        .map(|t| {
            STANDARD.decode(t).map_err(|_| EnvelopeError::Base64 {
                part: "timestamp signature",
                encoding: "base64",
            })
        })
        .transpose()?;
    let signing_input = format!("{}.{}", jws.protected, jws.payload).into_bytes();
    Ok(Envelope {
        protected,
        protected_b64: jws.protected,
        payload,
        payload_bytes,
        signature,
        certificate_chain,
        timestamp_signature,
        signing_agent: jws.header.signing_agent,
        signing_input,
    })
}

/// `BASE64URL(protected_json) "." BASE64URL(payload_json)`: the bytes a signer signs.
pub fn signing_input(protected_json: &[u8], payload_json: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(protected_json),
        URL_SAFE_NO_PAD.encode(payload_json)
    )
}

/// The flattened JWS JSON envelope notation writes: exactly `payload`, `protected`, `header`
/// (`x5c` as standard base64 DER, leaf first; optional signing agent) and `signature`.
/// `signature` is the raw signature (`r‖s` for ECDSA) over [`signing_input`] of the same bytes.
pub fn flattened_jws(
    protected_json: &[u8],
    payload_json: &[u8],
    signature: &[u8],
    certificate_chain: &[Vec<u8>],
    signing_agent: Option<&str>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert(
        "x5c".into(),
        certificate_chain
            .iter()
            .map(|c| serde_json::Value::String(STANDARD.encode(c)))
            .collect::<Vec<_>>()
            .into(),
    );
    if let Some(agent) = signing_agent {
        header.insert(header::SIGNING_AGENT.into(), agent.into());
    }
    let envelope = serde_json::json!({
        "payload": URL_SAFE_NO_PAD.encode(payload_json),
        "protected": URL_SAFE_NO_PAD.encode(protected_json),
        "header": header,
        "signature": URL_SAFE_NO_PAD.encode(signature),
    });
    // A map of strings always serialises.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope_with(protected: &str, payload: &str) -> Vec<u8> {
        flattened_jws(
            protected.as_bytes(),
            payload.as_bytes(),
            b"sig",
            &[b"cert".to_vec()],
            Some("test"),
        )
    }

    const PAYLOAD: &str = r#"{"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abc","size":1}}"#;

    #[test]
    fn written_envelopes_read_back_field_by_field() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let h = ProtectedHeader::new_x509(Algorithm::Es256, t, Some(t + time::Duration::days(1)));
        let json = h.to_json().unwrap();
        let env = parse_jws(&envelope_with(std::str::from_utf8(&json).unwrap(), PAYLOAD)).unwrap();
        assert_eq!(env.protected, h);
        assert_eq!(env.payload.target_artifact.size, 1);
        assert_eq!(env.certificate_chain, vec![b"cert".to_vec()]);
        assert_eq!(env.signature, b"sig");
        assert_eq!(env.signing_agent.as_deref(), Some("test"));
        assert_eq!(
            env.signing_input,
            signing_input(&json, PAYLOAD.as_bytes()).into_bytes()
        );
    }

    #[test]
    fn alg_none_and_hmac_are_refused_when_parsing() {
        for alg in ["none", "HS256", "RS256", "EdDSA"] {
            let p = format!(
                r#"{{"alg":"{alg}","cty":"x","crit":["io.cncf.notary.signingScheme"],"io.cncf.notary.signingScheme":"notary.x509"}}"#
            );
            let err = parse_jws(&envelope_with(&p, PAYLOAD)).unwrap_err();
            assert!(
                matches!(err, EnvelopeError::Field { field: "alg", .. }),
                "{alg}: {err}"
            );
        }
    }

    #[test]
    fn an_envelope_without_crit_or_x5c_or_with_extra_members_is_refused() {
        let no_crit = r#"{"alg":"ES256","cty":"x","io.cncf.notary.signingScheme":"notary.x509"}"#;
        assert_eq!(
            parse_jws(&envelope_with(no_crit, PAYLOAD)).unwrap_err(),
            EnvelopeError::Missing("crit")
        );
        let ok = r#"{"alg":"ES256","cty":"x","crit":["a"],"io.cncf.notary.signingScheme":"notary.x509"}"#;
        let mut v: serde_json::Value = serde_json::from_slice(&envelope_with(ok, PAYLOAD)).unwrap();
        v["header"]["x5c"] = serde_json::json!([]);
        assert_eq!(
            parse_jws(&serde_json::to_vec(&v).unwrap()).unwrap_err(),
            EnvelopeError::Missing("x5c certificate chain")
        );
        v["header"]["x5c"] = serde_json::json!(["Y2VydA=="]);
        v["signatures"] = serde_json::json!([]);
        assert!(matches!(
            parse_jws(&serde_json::to_vec(&v).unwrap()).unwrap_err(),
            EnvelopeError::Json { .. }
        ));
    }

    #[test]
    fn padded_base64url_and_oversized_envelopes_are_refused() {
        let ok = r#"{"alg":"ES256","cty":"x","crit":["a"],"io.cncf.notary.signingScheme":"notary.x509"}"#;
        let mut v: serde_json::Value = serde_json::from_slice(&envelope_with(ok, PAYLOAD)).unwrap();
        v["signature"] = "c2lnAA==".into();
        assert!(matches!(
            parse_jws(&serde_json::to_vec(&v).unwrap()).unwrap_err(),
            EnvelopeError::Base64 {
                part: "signature",
                ..
            }
        ));
        let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            parse_jws(&big),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_parser_follows_the_layer_media_type() {
        assert!(matches!(
            parse(MEDIA_TYPE_COSE, b"\xd2"),
            Err(EnvelopeError::Cbor(_))
        ));
        assert!(matches!(
            parse("application/json", b"{}"),
            Err(EnvelopeError::UnsupportedMediaType(_))
        ));
        let big = vec![0u8; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            parse(MEDIA_TYPE_COSE, &big),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }
}
