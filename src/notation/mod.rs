//! Notary Project signatures (the format `notation` writes): the envelope ([`envelope`], JWS;
//! [`cose`] over the bounded CBOR reader [`cbor`], read only), the
//! certificate chain rules ([`chain`]), the trust store ([`truststore`]) and trust policy
//! ([`policy`]) in notation's own files, and the verification core ([`verify`]). The write side:
//! signing certificates ([`certgen`]) and envelopes with their signature manifests ([`sign`]). The format
//! and the order of checks follow notation-go; the steering notes' notary-project.md §1–§3 has
//! the reference. Nothing here fetches from a registry: discovery lives in
//! [`crate::registry::referrers`], which feeds bytes in, as the DCT client does for [`crate::tuf`].

pub mod cbor;
pub mod certgen;
pub mod chain;
pub mod cose;
pub mod envelope;
pub mod policy;
pub mod sign;
pub mod timestamp;
pub mod truststore;
pub mod verify;

/// `artifactType` of a signature manifest (shape A), or its `config.mediaType` (legacy shape B).
pub const ARTIFACT_TYPE_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// Media type of a JWS JSON envelope (the signature manifest's one layer).
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// Media type of a COSE_Sign1 envelope (read and verified; [`cose`]).
pub const MEDIA_TYPE_COSE: &str = "application/cose";
/// The payload's content type (`cty`).
pub const MEDIA_TYPE_PAYLOAD_V1: &str = "application/vnd.cncf.notary.payload.v1+json";
/// OCI image manifest.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (referrers API answers and the tag-schema index).
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The empty config of a shape-A signature manifest.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Digest of the two bytes `{}`: the empty config blob.
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The signature manifest annotation listing the SHA-256 of each chain certificate, as a JSON
/// array string. Unsigned: an optimisation hint, never a trust input.
pub const ANNOTATION_THUMBPRINT: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// Annotation keys with this prefix are reserved by the Notary Project.
pub const RESERVED_ANNOTATION_PREFIX: &str = "io.cncf.notary";

/// Protected and unprotected header names of the envelope.
pub mod header {
    /// Signing scheme (`notary.x509` or `notary.x509.signingAuthority`).
    pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
    /// Claimed (unauthenticated) signing time, `notary.x509` only.
    pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
    /// Authentic signing time, `notary.x509.signingAuthority` only.
    pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
    /// Optional "best by" time.
    pub const EXPIRY: &str = "io.cncf.notary.expiry";
    /// A verification plugin the signer requires.
    pub const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
    /// Its minimum version.
    pub const VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
    /// Unprotected: the signing tool, diagnostic only.
    pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
    /// Unprotected: an RFC 3161 timestamp token over the signature.
    pub const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";
}

/// Signing schemes.
pub mod scheme {
    /// Self-managed keys and certificates; signing time is not authenticated.
    pub const X509: &str = "notary.x509";
    /// A signing authority vouches for the signing time.
    pub const X509_SIGNING_AUTHORITY: &str = "notary.x509.signingAuthority";
}

/// The `sha256-<hex>` tag under which a registry without the referrers API keeps the index of a
/// digest's referrers, or `None` for a digest that is not `sha256:<64 lower-case hex>`.
pub fn referrers_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| format!("sha256-{hex}"))
}

/// Whether a tag is a tag-schema referrers index (`sha256-<64 hex>`): inventories skip these.
pub fn is_referrers_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .is_some_and(|h| referrers_tag(&format!("sha256:{h}")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tag_is_the_digest_with_a_dash_and_only_for_sha256_hex() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            referrers_tag(&d).unwrap(),
            format!("sha256-{}", "ab".repeat(32))
        );
        assert!(referrers_tag("sha512:abcd").is_none());
        assert!(referrers_tag(&format!("sha256:{}", "AB".repeat(32))).is_none());
        assert!(referrers_tag("sha256:../../x").is_none());
        assert!(is_referrers_tag(&format!("sha256-{}", "0".repeat(64))));
        assert!(!is_referrers_tag("sha256-latest"));
        assert!(!is_referrers_tag("v1"));
    }
}
