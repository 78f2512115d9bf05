//! The verification core for one Notary Project signature: bytes in, a verdict out, no I/O.
//! The checks run in notation-go's order (`verifier.processSignature`, spec "Signature
//! Verification"): integrity, verification plugin, authenticity and trusted identity, expiry,
//! authentic timestamp, revocation, then the target artifact against what the registry
//! resolved. Each failure names its check, and the statement's level decides whether it is
//! enforced (verification fails) or logged (returned with the success).
//!
//! Deliberate differences from notation, each safe-side:
//! - an unknown critical header fails integrity (the spec's rule; notation-go only forwards it
//!   to a plugin);
//! - a `verificationPlugin` header fails: no plugins run here;
//! - RFC 3161 timestamp tokens are parsed from the envelope but not verified. When the policy
//!   asks for timestamp verification (a `tsa:` store, and the chain expired or `always`), the
//!   authentic-timestamp check fails with that reason; without a `tsa:` store every certificate
//!   must be valid now, exactly as notation does then;
//! - revocation is not checked online. A certificate that names an OCSP responder or CRL fails
//!   the revocation check (enforced or logged per level); certificates with neither (self-signed
//!   signing certificates) are "non-revokable" and pass, as in notation.

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::chain::{self, ChainError};
use super::envelope::{self, Descriptor, Envelope, Payload};
use super::policy::{Action, Identities, Level, Statement, StoreType, is_subset_dn};
use super::truststore::StoreCertificate;
use super::{MEDIA_TYPE_PAYLOAD_V1, header, scheme};

/// The checks, named as notation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Envelope, chain rules and signature.
    Integrity,
    /// A verification plugin the signer requires.
    VerificationPlugin,
    /// The chain meets the trust store.
    Authenticity,
    /// The leaf subject matches a trusted identity.
    TrustedIdentity,
    /// The signature's own expiry.
    Expiry,
    /// Certificate validity at an authentic time (or now).
    AuthenticTimestamp,
    /// Certificate revocation.
    Revocation,
    /// The payload names the manifest the registry resolved.
    TargetArtifact,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Integrity => "integrity",
            Check::VerificationPlugin => "verification plugin",
            Check::Authenticity => "authenticity",
            Check::TrustedIdentity => "trusted identity",
            Check::Expiry => "expiry",
            Check::AuthenticTimestamp => "authentic timestamp",
            Check::Revocation => "revocation",
            Check::TargetArtifact => "integrity (target artifact)",
        })
    }
}

/// A failed check and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check} check failed: {reason}")]
pub struct Failure {
    /// Which check.
    pub check: Check,
    /// Why, for the user.
    pub reason: String,
}

fn fail(check: Check, reason: impl Into<String>) -> Failure {
    Failure {
        check,
        reason: reason.into(),
    }
}

/// The trust anchors of a statement, loaded by the caller from the stores it names. A store that
/// could not be loaded is kept as its error: it fails authenticity only if it is the store type
/// the signature needs.
#[derive(Debug, Default)]
pub struct Anchors {
    /// `ca` stores: certificates, or the first load error.
    pub ca: Vec<Result<Vec<StoreCertificate>, String>>,
    /// `signingAuthority` stores.
    pub signing_authority: Vec<Result<Vec<StoreCertificate>, String>>,
    /// Whether the statement names a `tsa` store.
    pub tsa_configured: bool,
    /// `tsa` stores: the roots RFC 3161 timestamps must chain to.
    pub tsa: Vec<Result<Vec<StoreCertificate>, String>>,
}

/// What a verified signature says.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The payload (its target equals the resolved descriptor).
    pub payload: Payload,
    /// The signing certificate's subject.
    pub signer: String,
    /// Checks that failed but were only logged at this level.
    pub logged: Vec<Failure>,
}

/// Verifies one envelope against a policy statement, its anchors, the descriptor the registry
/// resolved for the reference, and `now`. `Ok` means notation would accept it at this level.
/// A statement at level `skip` must be handled by the caller (nothing is verified then).
pub fn verify(
    envelope_media_type: &str,
    envelope_bytes: &[u8],
    target: &Descriptor,
    statement: &Statement,
    anchors: &Anchors,
    now: OffsetDateTime,
) -> Result<Verified, Failure> {
    if statement.level == Level::Skip {
        return Err(fail(
            Check::Integrity,
            format!(
                "trust policy statement {:?} is level skip: nothing is verified",
                statement.name
            ),
        ));
    }
    let actions = statement.actions;
    let mut logged = Vec::new();
    let mut apply = |action: Action, f: Failure| -> Result<(), Failure> {
        match action {
            Action::Enforce => Err(f),
            Action::Log => {
                tracing::warn!("notation verification, logged only: {f}");
                logged.push(f);
                Ok(())
            }
            Action::Skip => Ok(()),
        }
    };

    // 1. Integrity: always enforced.
    let env = envelope::parse(envelope_media_type, envelope_bytes)
        .map_err(|e| fail(Check::Integrity, e.to_string()))?;
    check_headers(&env).map_err(|r| fail(Check::Integrity, r))?;
    let certs = chain::parse_chain(&env.certificate_chain)
        .map_err(|e| fail(Check::Integrity, e.to_string()))?;
    chain::validate_code_signing_chain(&certs)
        .map_err(|e| fail(Check::Integrity, e.to_string()))?;
    chain::verify_envelope_signature(
        &certs[0],
        env.protected.alg,
        &env.signing_input,
        &env.signature,
    )
    .map_err(|e: ChainError| fail(Check::Integrity, e.to_string()))?;
    let signer = chain::subject_string(&certs[0]);

    // 2. A required verification plugin: none can run here.
    if let Some(plugin) = &env.protected.verification_plugin {
        return Err(fail(
            Check::VerificationPlugin,
            format!(
                "the signature requires the verification plugin {plugin:?}; docker-trustacr runs no notation plugins (verify it with notation and that plugin)"
            ),
        ));
    }

    // 3. Authenticity, then trusted identity (same action).
    let is_sa = env.protected.signing_scheme == scheme::X509_SIGNING_AUTHORITY;
    let (stores, kind) = if is_sa {
        (&anchors.signing_authority, StoreType::SigningAuthority)
    } else {
        (&anchors.ca, StoreType::Ca)
    };
    if actions.authenticity != Action::Skip {
        if let Err(f) = authenticity(&env, stores, kind, &statement.name) {
            apply(actions.authenticity, f)?;
        }
        if let Err(f) = trusted_identity(&certs[0], &statement.identities) {
            apply(actions.authenticity, f)?;
        }
    }

    // 4. Expiry.
    if let Some(expiry) = env.protected.expiry
        && now >= expiry
    {
        apply(
            actions.expiry,
            fail(Check::Expiry, format!("the signature expired at {expiry}")),
        )?;
    }

    // 5. Authentic timestamp.
    if actions.authentic_timestamp != Action::Skip
        && let Err(f) = authentic_timestamp(&env, &certs, statement, anchors, now, is_sa)
    {
        apply(actions.authentic_timestamp, f)?;
    }

    // 6. Revocation: not checked online; revocable certificates cannot pass an enforced check.
    if actions.revocation != Action::Skip
        && let Some(c) = certs.iter().find(|c| chain::has_revocation_endpoints(c))
    {
        apply(
            actions.revocation,
            fail(
                Check::Revocation,
                format!(
                    "certificate {} names an OCSP responder or CRL, and docker-trustacr does not check revocation online; set \"override\": {{\"revocation\": \"log\"}} in the trust policy to accept it unchecked",
                    chain::subject_string(c)
                ),
            ),
        )?;
    }

    // 7. The payload must name exactly the manifest the registry resolved.
    let signed = &env.payload.target_artifact;
    if !signed.same_content(target) {
        return Err(fail(
            Check::TargetArtifact,
            format!(
                "the signature is for {} ({}, {} bytes), not for {} ({}, {} bytes)",
                signed.digest,
                signed.media_type,
                signed.size,
                target.digest,
                target.media_type,
                target.size
            ),
        ));
    }
    Ok(Verified {
        payload: env.payload,
        signer,
        logged,
    })
}

/// Header rules of integrity: content type, scheme, the scheme's time headers, `crit`.
fn check_headers(env: &Envelope) -> Result<(), String> {
    let h = &env.protected;
    if h.cty != MEDIA_TYPE_PAYLOAD_V1 {
        return Err(format!(
            "content type (cty) is {:?}, not {MEDIA_TYPE_PAYLOAD_V1}",
            h.cty
        ));
    }
    let sa = match h.signing_scheme.as_str() {
        scheme::X509 => false,
        scheme::X509_SIGNING_AUTHORITY => true,
        other => return Err(format!("signing scheme {other:?} is not notary.x509")),
    };
    if sa {
        if h.authentic_signing_time.is_none() {
            return Err(format!(
                "scheme {} requires {}",
                scheme::X509_SIGNING_AUTHORITY,
                header::AUTHENTIC_SIGNING_TIME
            ));
        }
        if h.signing_time.is_some() {
            return Err(format!(
                "{} is not allowed with scheme {}",
                header::SIGNING_TIME,
                scheme::X509_SIGNING_AUTHORITY
            ));
        }
    } else {
        if h.signing_time.is_none() {
            return Err(format!(
                "scheme notary.x509 requires {}",
                header::SIGNING_TIME
            ));
        }
        if h.authentic_signing_time.is_some() {
            return Err(format!(
                "{} is not allowed with scheme notary.x509",
                header::AUTHENTIC_SIGNING_TIME
            ));
        }
    }
    let signing = h.signing_time.or(h.authentic_signing_time);
    if let (Some(exp), Some(s)) = (h.expiry, signing)
        && exp <= s
    {
        return Err(format!("expiry {exp} is not after the signing time {s}"));
    }
    // Headers that must be marked critical when present.
    let mut must_be_critical = vec![header::SIGNING_SCHEME];
    if h.expiry.is_some() {
        must_be_critical.push(header::EXPIRY);
    }
    if sa {
        must_be_critical.push(header::AUTHENTIC_SIGNING_TIME);
    }
    if h.verification_plugin.is_some() {
        must_be_critical.push(header::VERIFICATION_PLUGIN);
    }
    if h.verification_plugin_min_version.is_some() {
        must_be_critical.push(header::VERIFICATION_PLUGIN_MIN_VERSION);
    }
    for name in must_be_critical {
        if !h.crit.iter().any(|c| c == name) {
            return Err(format!("header {name} is present but not listed in crit"));
        }
    }
    // Every critical header must be present and understood.
    for c in &h.crit {
        if [
            "alg", "cty", "crit", "x5c", "kid", "typ", "jku", "jwk", "x5u", "x5t",
        ]
        .contains(&c.as_str())
        {
            return Err(format!("crit lists the registered JWS header {c:?}"));
        }
        if !envelope::NOTARY_PROTECTED.contains(&c.as_str()) {
            return Err(format!(
                "critical header {c:?} is not understood, so the signature cannot be accepted"
            ));
        }
        let present = match c.as_str() {
            header::SIGNING_SCHEME => true,
            header::SIGNING_TIME => h.signing_time.is_some(),
            header::AUTHENTIC_SIGNING_TIME => h.authentic_signing_time.is_some(),
            header::EXPIRY => h.expiry.is_some(),
            header::VERIFICATION_PLUGIN => h.verification_plugin.is_some(),
            _ => h.verification_plugin_min_version.is_some(),
        };
        if !present {
            return Err(format!("crit lists {c} but the header is absent"));
        }
    }
    Ok(())
}

fn authenticity(
    env: &Envelope,
    stores: &[Result<Vec<StoreCertificate>, String>],
    kind: StoreType,
    statement: &str,
) -> Result<(), Failure> {
    let mut loaded = Vec::new();
    for s in stores {
        match s {
            Ok(certs) => loaded.extend(certs.iter()),
            Err(e) => return Err(fail(Check::Authenticity, e.clone())),
        }
    }
    if stores.is_empty() {
        return Err(fail(
            Check::Authenticity,
            format!(
                "trust policy statement {statement:?} names no {} trust store, which this signature's scheme needs",
                kind.dir_name()
            ),
        ));
    }
    // Byte equality of any chain certificate with any anchor, as notation matches: pinning a
    // self-signed leaf or an intermediate both work.
    let hit = env
        .certificate_chain
        .iter()
        .any(|c| loaded.iter().any(|a| &a.der == c));
    if hit {
        Ok(())
    } else {
        Err(fail(
            Check::Authenticity,
            format!(
                "no certificate of the signature's chain is in the {} trust store(s) of trust policy statement {statement:?}",
                kind.dir_name()
            ),
        ))
    }
}

fn trusted_identity(leaf: &Certificate, identities: &Identities) -> Result<(), Failure> {
    let Identities::Subjects(list) = identities else {
        return Ok(());
    };
    let subject =
        chain::subject_attributes(leaf).map_err(|e| fail(Check::TrustedIdentity, e.to_string()))?;
    if list.iter().any(|(_, dn)| is_subset_dn(dn, &subject)) {
        Ok(())
    } else {
        Err(fail(
            Check::TrustedIdentity,
            format!(
                "signing certificate subject {:?} matches none of the trusted identities {:?}",
                chain::subject_string(leaf),
                list.iter().map(|(raw, _)| raw.as_str()).collect::<Vec<_>>()
            ),
        ))
    }
}

fn authentic_timestamp(
    env: &Envelope,
    certs: &[Certificate],
    statement: &Statement,
    anchors: &Anchors,
    now: OffsetDateTime,
    is_sa: bool,
) -> Result<(), Failure> {
    let within = |at: OffsetDateTime, what: &str| -> Result<(), Failure> {
        for c in certs {
            let (nb, na) = chain::validity(c);
            if at < nb {
                return Err(fail(
                    Check::AuthenticTimestamp,
                    format!(
                        "certificate {} is not valid yet at {what} {at} (valid from {nb})",
                        chain::subject_string(c)
                    ),
                ));
            }
            if at > na {
                return Err(fail(
                    Check::AuthenticTimestamp,
                    format!(
                        "certificate {} expired at {na}, before {what} {at}",
                        chain::subject_string(c)
                    ),
                ));
            }
        }
        Ok(())
    };
    if is_sa {
        // Present by check_headers.
        let at = env.protected.authentic_signing_time.unwrap_or(now);
        return within(at, "the authentic signing time");
    }
    let mut timestamp = anchors.tsa_configured;
    if timestamp && statement.verify_timestamp_after_cert_expiry {
        timestamp = certs.iter().any(|c| now > chain::validity(c).1);
    }
    if !timestamp {
        return within(now, "verification time");
    }
    let Some(token) = &env.timestamp_signature else {
        return Err(fail(
            Check::AuthenticTimestamp,
            "the trust policy asks for a timestamp (a tsa store) and the signature has none",
        ));
    };
    let mut roots = Vec::new();
    for s in &anchors.tsa {
        match s {
            Ok(certs) => roots.extend(certs.iter().cloned()),
            Err(e) => return Err(fail(Check::AuthenticTimestamp, e.clone())),
        }
    }
    let range = super::timestamp::verify(token, &env.signature, &roots).map_err(|r| {
        fail(
            Check::AuthenticTimestamp,
            format!("RFC 3161 timestamp refused: {r}"),
        )
    })?;
    // The signing chain must be valid over the whole range the timestamp allows.
    for c in certs {
        let (nb, na) = chain::validity(c);
        if range.earliest < nb {
            return Err(fail(
                Check::AuthenticTimestamp,
                format!(
                    "the timestamp ({} to {}) can be before certificate {} is valid (from {nb})",
                    range.earliest,
                    range.latest,
                    chain::subject_string(c)
                ),
            ));
        }
        if range.latest > na {
            return Err(fail(
                Check::AuthenticTimestamp,
                format!(
                    "the timestamp ({} to {}) can be after certificate {} expired (at {na})",
                    range.earliest,
                    range.latest,
                    chain::subject_string(c)
                ),
            ));
        }
    }
    Ok(())
}
