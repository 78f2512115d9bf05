//! Notary v1 metadata: root, targets (and delegations), snapshot, timestamp, and the signed
//! envelope around them.
//!
//! The structs carry exactly the members Go's structs have (`tuf/data/*.go`), because
//! notary-server hashes its own re-serialisation of what we upload (notes/notary-v1.md §5.3):
//! a member Go does not know, or a different spelling of a time, breaks the repository for
//! every client although the upload answers 200. [`encode_signed`] produces those bytes.

use std::collections::BTreeMap;

use std::borrow::Cow;

use base64::Engine as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256, Sha512};
use time::OffsetDateTime;

use super::cjson::{self, CanonicalError};
use super::keys::{PublicKey, b64};

/// `_type` values.
pub mod role_type {
    /// root.json
    pub const ROOT: &str = "Root";
    /// targets.json and every delegation
    pub const TARGETS: &str = "Targets";
    /// snapshot.json
    pub const SNAPSHOT: &str = "Snapshot";
    /// timestamp.json
    pub const TIMESTAMP: &str = "Timestamp";
}

/// A time as Go's `time.Time` marshals it (RFC 3339 with trimmed nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expires(pub OffsetDateTime);

impl Expires {
    /// Go's RFC3339Nano with trailing zeros trimmed, in the time's own offset (`Z` for UTC), as
    /// Go marshals a parsed time back: notary 0.3 wrote local offsets such as `-05:00`.
    pub fn to_go_string(&self) -> String {
        let t = self.0;
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let nanos = t.nanosecond();
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        let offset = t.offset();
        if offset.is_utc() {
            s.push('Z');
        } else {
            let (h, m, _) = offset.as_hms();
            let sign = if offset.is_negative() { '-' } else { '+' };
            s.push_str(&format!(
                "{sign}{:02}:{:02}",
                h.unsigned_abs(),
                m.unsigned_abs()
            ));
        }
        s
    }
}

impl Serialize for Expires {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_go_string())
    }
}

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map(Expires)
            .map_err(|e| serde::de::Error::custom(format!("invalid expires {s:?}: {e}")))
    }
}

/// Bytes that travel as standard base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base64Bytes(pub Vec<u8>);

impl Serialize for Base64Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Base64Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// Keys and threshold of a base role in root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key IDs allowed to sign.
    pub keyids: Vec<String>,
    /// Distinct valid signatures needed.
    pub threshold: u32,
}

/// root.json
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// `Root`
    #[serde(rename = "_type")]
    pub typ: String,
    /// Always false in Notary; clients ignore it.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// Expiry.
    pub expires: Expires,
    /// Every key the roles refer to.
    pub keys: BTreeMap<String, PublicKey>,
    /// `root`, `targets`, `snapshot`, `timestamp`.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Version, from 1.
    pub version: u64,
}

/// Hashes and length of a file (or of a target image manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Opaque data; Notary copies it verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// `sha256` and/or `sha512`, raw digest bytes.
    pub hashes: BTreeMap<String, Base64Bytes>,
    /// Length in bytes.
    pub length: i64,
}

impl FileMeta {
    /// sha256 and sha512 of `bytes`, as Notary writes snapshot and timestamp meta.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert(
            "sha256".to_string(),
            Base64Bytes(Sha256::digest(bytes).to_vec()),
        );
        hashes.insert(
            "sha512".to_string(),
            Base64Bytes(Sha512::digest(bytes).to_vec()),
        );
        FileMeta {
            custom: None,
            hashes,
            length: bytes.len() as i64,
        }
    }

    /// The sha256, if listed.
    pub fn sha256(&self) -> Option<&[u8]> {
        self.hashes.get("sha256").map(|h| h.0.as_slice())
    }
}

/// A delegation entry in a targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// Key IDs; `null` after `docker trust signer remove`.
    pub keyids: Option<Vec<String>>,
    /// `targets/<name>`
    pub name: String,
    /// Target name prefixes this role may sign; `""` means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Distinct valid signatures needed.
    pub threshold: u32,
}

/// The `delegations` member of a targets role; Go always writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of the delegated roles.
    #[serde(default)]
    pub keys: BTreeMap<String, PublicKey>,
    /// Delegated roles, in priority order.
    #[serde(default)]
    pub roles: Vec<DelegatedRole>,
}

/// targets.json or a delegation such as targets/releases.json
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// `Targets`
    #[serde(rename = "_type")]
    pub typ: String,
    /// Delegations from this role.
    #[serde(default)]
    pub delegations: Delegations,
    /// Expiry.
    pub expires: Expires,
    /// Signed targets: tag → manifest digest and size.
    #[serde(default)]
    pub targets: BTreeMap<String, FileMeta>,
    /// Version, from 1.
    pub version: u64,
}

/// snapshot.json
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `Snapshot`
    #[serde(rename = "_type")]
    pub typ: String,
    /// Expiry.
    pub expires: Expires,
    /// File meta of root, targets and every delegation.
    pub meta: BTreeMap<String, FileMeta>,
    /// Version, from 1.
    pub version: u64,
}

/// timestamp.json
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// `Timestamp`
    #[serde(rename = "_type")]
    pub typ: String,
    /// Expiry.
    pub expires: Expires,
    /// File meta of the snapshot.
    pub meta: BTreeMap<String, FileMeta>,
    /// Version, from 1.
    pub version: u64,
}

/// One signature of a metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Key ID that signed.
    pub keyid: String,
    /// `ecdsa`, `eddsa`, `rsapss`, …; Go lower-cases it when reading.
    pub method: String,
    /// Signature bytes.
    pub sig: Base64Bytes,
}

/// A parsed metadata file: the `signed` value, its signatures and the exact bytes.
#[derive(Debug, Clone)]
pub struct SignedFile {
    /// The `signed` member as generic JSON, which is what signatures are checked over.
    pub signed: Value,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

/// Malformed metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not JSON or not the envelope shape.
    #[error("{role} metadata is malformed: {reason}")]
    Malformed {
        /// Role name.
        role: String,
        /// Why.
        reason: String,
    },
    /// No canonical form.
    #[error("{role} metadata cannot be canonicalised: {source}")]
    Canonical {
        /// Role name.
        role: String,
        /// Why.
        source: CanonicalError,
    },
}

#[derive(Deserialize)]
struct Envelope {
    signed: Value,
    #[serde(default)]
    signatures: Option<Vec<Signature>>,
}

impl SignedFile {
    /// Parses the bytes of `role`'s file.
    pub fn parse(role: &str, bytes: &[u8]) -> Result<Self, MetadataError> {
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| malformed(role, e))?;
        let signatures = lowercase_methods(env.signatures);
        Ok(SignedFile {
            signed: env.signed,
            signatures,
        })
    }

    /// The bytes signatures are checked over: canonical JSON of `signed`.
    pub fn canonical_signed(&self, role: &str) -> Result<Vec<u8>, MetadataError> {
        cjson::to_canonical(&self.signed).map_err(|source| MetadataError::Canonical {
            role: role.to_string(),
            source,
        })
    }

    /// `signed` as a typed role, consuming the generic form (no copies of big maps).
    pub fn into_typed<T: serde::de::DeserializeOwned>(
        self,
        role: &str,
    ) -> Result<T, MetadataError> {
        T::deserialize(self.signed).map_err(|e| MetadataError::Malformed {
            role: role.to_string(),
            reason: e.to_string(),
        })
    }

    /// `signed` as a typed role.
    pub fn typed<T: serde::de::DeserializeOwned>(&self, role: &str) -> Result<T, MetadataError> {
        T::deserialize(&self.signed).map_err(|e| MetadataError::Malformed {
            role: role.to_string(),
            reason: e.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    #[serde(default)]
    signatures: Option<Vec<Signature>>,
}

/// A metadata file parsed only as far as its envelope: the exact served bytes of `signed` and
/// the signatures. Signatures are checked over those bytes when the signer wrote them
/// canonically (Go and this crate do, unless `<`, `>` or `&` had to be HTML-escaped), else
/// over their canonical form; the typed role is then read from the same bytes, so what was
/// signed is exactly what is read, and the 0.9 MB `signed` of a big targets role is neither
/// built as a generic JSON tree nor re-encoded.
#[derive(Debug, Clone)]
pub struct RawSigned<'a> {
    /// The `signed` member exactly as it appears in the file.
    pub signed: &'a str,
    /// The signatures, methods lower-cased as Go reads them.
    pub signatures: Vec<Signature>,
}

impl<'a> RawSigned<'a> {
    /// Parses the envelope of `role`'s file (the whole file is checked to be JSON).
    pub fn parse(role: &str, bytes: &'a [u8]) -> Result<Self, MetadataError> {
        let env: RawEnvelope<'a> = serde_json::from_slice(bytes).map_err(|e| malformed(role, e))?;
        let signatures = lowercase_methods(env.signatures);
        Ok(RawSigned {
            signed: env.signed.get(),
            signatures,
        })
    }

    /// The canonical JSON of `signed`, for signers whose bytes are not canonical as served.
    pub fn canonical_signed(&self, role: &str) -> Result<Vec<u8>, MetadataError> {
        let value: Value = serde_json::from_str(self.signed).map_err(|e| malformed(role, e))?;
        cjson::to_canonical(&value).map_err(|source| MetadataError::Canonical {
            role: role.to_string(),
            source,
        })
    }

    /// `signed` as a typed role, read from the exact bytes the signatures were checked over.
    pub fn typed<T: Deserialize<'a>>(&self, role: &str) -> Result<T, MetadataError> {
        serde_json::from_str(self.signed).map_err(|e| malformed(role, e))
    }

    /// `signed` as a targets role whose `targets` map holds only `only`'s entry when given:
    /// the other entries are still read by the same parser (the JSON must be valid) but not
    /// built, so one tag among 10,000 costs one scan instead of 10,000 map entries.
    pub fn targets(&self, role: &str, only: Option<&str>) -> Result<Targets, MetadataError> {
        let mut de = serde_json::Deserializer::from_str(self.signed);
        let targets = TargetsSeed(only)
            .deserialize(&mut de)
            .and_then(|t| de.end().map(|()| t))
            .map_err(|e| malformed(role, e))?;
        Ok(targets)
    }
}

/// The signatures of an envelope, methods lower-cased as Go reads them.
fn lowercase_methods(signatures: Option<Vec<Signature>>) -> Vec<Signature> {
    signatures
        .unwrap_or_default()
        .into_iter()
        .map(|mut s| {
            s.method = s.method.to_ascii_lowercase();
            s
        })
        .collect()
}

fn malformed(role: &str, e: serde_json::Error) -> MetadataError {
    MetadataError::Malformed {
        role: role.to_string(),
        reason: e.to_string(),
    }
}

/// Reads a targets role in one pass, its `targets` map through [`TargetFilter`]: the members
/// and rules of [`Targets`]' derived `Deserialize` (required `_type`, `expires` and `version`;
/// a duplicate member is an error; unknown members are ignored).
struct TargetsSeed<'w>(Option<&'w str>);

impl<'de> DeserializeSeed<'de> for TargetsSeed<'_> {
    type Value = Targets;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TargetsSeed<'_> {
    type Value = Targets;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a targets role")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut typ = None;
        let mut delegations = None;
        let mut expires = None;
        let mut targets = None;
        let mut version = None;
        fn once<T, E: serde::de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
            match slot {
                Some(_) => Err(E::duplicate_field(name)),
                None => Ok(()),
            }
        }
        while let Some(Name(key)) = map.next_key::<Name<'de>>()? {
            match key.as_ref() {
                "_type" => {
                    once(&typ, "_type")?;
                    typ = Some(map.next_value::<String>()?);
                }
                "delegations" => {
                    once(&delegations, "delegations")?;
                    delegations = Some(map.next_value::<Delegations>()?);
                }
                "expires" => {
                    once(&expires, "expires")?;
                    expires = Some(map.next_value::<Expires>()?);
                }
                "targets" => {
                    once(&targets, "targets")?;
                    targets = Some(map.next_value_seed(TargetFilter(self.0))?);
                }
                "version" => {
                    once(&version, "version")?;
                    version = Some(map.next_value::<u64>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Targets {
            typ: typ.ok_or_else(|| A::Error::missing_field("_type"))?,
            delegations: delegations.unwrap_or_default(),
            expires: expires.ok_or_else(|| A::Error::missing_field("expires"))?,
            targets: targets.unwrap_or_default(),
            version: version.ok_or_else(|| A::Error::missing_field("version"))?,
        })
    }
}

/// Reads a `targets` map, keeping every entry (`None`) or only one tag's. Duplicate names keep
/// the last entry, as a map read by serde or Go does.
struct TargetFilter<'w>(Option<&'w str>);

impl<'de> DeserializeSeed<'de> for TargetFilter<'_> {
    type Value = BTreeMap<String, FileMeta>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // `null` reads as no targets, as Go reads a nil map.
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TargetFilter<'_> {
    type Value = BTreeMap<String, FileMeta>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of target names to file meta")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            match self.0 {
                Some(want) if want != name => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let meta: FileMeta = map.next_value()?;
                    out.insert(name.into_owned(), meta);
                }
            }
        }
        Ok(out)
    }
}

/// A map key, borrowed from the input unless it holds escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a target name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Canonical bytes of a typed role (what gets signed).
pub fn canonical_bytes<T: Serialize>(role: &T) -> Result<Vec<u8>, CanonicalError> {
    let v = serde_json::to_value(role).map_err(|e| CanonicalError::new(e.to_string()))?;
    cjson::to_canonical(&v)
}

/// The file bytes Go's `json.Marshal(Signed{…})` writes: compact, `signed` first, HTML-escaped,
/// signature members in the order keyid, method, sig, no trailing newline.
pub fn encode_signed(canonical_signed: &[u8], signatures: &[Signature]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical_signed.len() + 200 * signatures.len() + 32);
    out.extend_from_slice(b"{\"signed\":");
    out.extend_from_slice(&cjson::html_escape(canonical_signed));
    out.extend_from_slice(b",\"signatures\":[");
    for (i, s) in signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // keyid and method are hex / lower-case ASCII; sig is base64: no escaping needed.
        out.extend_from_slice(
            format!(
                "{{\"keyid\":\"{}\",\"method\":\"{}\",\"sig\":\"{}\"}}",
                s.keyid,
                s.method,
                b64(&s.sig.0)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_prints_like_go_rfc3339nano() {
        let t = OffsetDateTime::parse(
            "2036-11-19T17:21:17.247729000+05:30",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        // Go keeps a parsed time's offset when it marshals it again (notary 0.3's files).
        assert_eq!(
            Expires(t).to_go_string(),
            "2036-11-19T17:21:17.247729+05:30"
        );
        let t = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        assert_eq!(Expires(t).to_go_string(), "2030-03-17T17:46:40Z");
    }

    #[test]
    fn empty_delegations_are_written_and_empty_paths_are_not() {
        let t = Targets {
            typ: role_type::TARGETS.into(),
            delegations: Delegations::default(),
            expires: Expires(OffsetDateTime::from_unix_timestamp(0).unwrap()),
            targets: BTreeMap::new(),
            version: 1,
        };
        let c = String::from_utf8(canonical_bytes(&t).unwrap()).unwrap();
        assert_eq!(
            c,
            r#"{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"1970-01-01T00:00:00Z","targets":{},"version":1}"#
        );
        let r = DelegatedRole {
            keyids: Some(vec![]),
            name: "targets/x".into(),
            paths: vec![],
            threshold: 1,
        };
        assert_eq!(
            String::from_utf8(canonical_bytes(&r).unwrap()).unwrap(),
            r#"{"keyids":[],"name":"targets/x","threshold":1}"#
        );
    }

    #[test]
    fn one_pass_targets_reader_matches_the_derived_one_and_its_rules() {
        let signed = r#"{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{"a":{"hashes":{"sha256":"AQID"},"length":3},"b\u0031":{"hashes":{"sha256":"BAUG"},"length":4}},"unknown":[1,{"x":2}],"version":7}"#;
        let file = format!(r#"{{"signed":{signed},"signatures":[]}}"#);
        let raw = RawSigned::parse("targets", file.as_bytes()).unwrap();
        let derived: Targets = serde_json::from_str(signed).unwrap();
        assert_eq!(raw.targets("targets", None).unwrap(), derived);
        let one = raw.targets("targets", Some("b1")).unwrap();
        assert_eq!(one.targets.keys().collect::<Vec<_>>(), ["b1"]);
        assert_eq!((one.version, one.expires), (7, derived.expires));
        assert!(
            raw.targets("targets", Some("c"))
                .unwrap()
                .targets
                .is_empty()
        );

        let read = |signed: &str| {
            let file = format!(r#"{{"signed":{signed},"signatures":[]}}"#);
            RawSigned::parse("targets", file.as_bytes())
                .and_then(|r| r.targets("targets", Some("a")))
        };
        // `null` targets is an empty map, as Go reads a nil map.
        let t = read(
            r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":null,"version":1}"#,
        );
        assert!(t.unwrap().targets.is_empty());
        for bad in [
            r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,"version":2}"#,
            r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{},"targets":{},"version":1}"#,
            r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z"}"#,
            r#"{"expires":"2030-01-01T00:00:00Z","version":1}"#,
            r#"{"_type":"Targets","version":1}"#,
            r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{"a":{"length":1}},"version":1}"#,
            r#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":[],"version":1}"#,
            r#"[]"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn envelope_encoding_is_go_json_marshal() {
        let sig = Signature {
            keyid: "ab".into(),
            method: "eddsa".into(),
            sig: Base64Bytes(vec![1, 2, 3]),
        };
        let out = encode_signed(br#"{"a":"<x>"}"#, &[sig]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"signed":{"a":"\u003cx\u003e"},"signatures":[{"keyid":"ab","method":"eddsa","sig":"AQID"}]}"#
        );
    }
}
