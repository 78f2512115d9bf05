//! Notary Project envelopes from any registry (src/notation/envelope.rs, cose.rs, cbor.rs and
//! the verify core behind them): a signature manifest's layer is attacker-chosen bytes.
//!
//! The first byte chooses the layer media type: even = JWS (`application/jose+json`), odd =
//! COSE (`application/cose`); the rest is the envelope.
//!
//! Nothing may panic, and nothing may verify: the trust store is empty, so every envelope,
//! however well formed, must be refused.

#![no_main]

use docker_trustacr::notation::envelope::{self, Descriptor};
use docker_trustacr::notation::policy::Policy;
use docker_trustacr::notation::verify::{Anchors, verify};
use docker_trustacr::notation::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const POLICY: &[u8] = br#"{"version":"1.0","trustPolicies":[{"name":"fuzz","registryScopes":["*"],
    "signatureVerification":{"level":"strict"},"trustStores":["ca:fuzz"],"trustedIdentities":["*"]}]}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let media_type = if mode % 2 == 0 {
        MEDIA_TYPE_JWS
    } else {
        MEDIA_TYPE_COSE
    };
    let parsed = envelope::parse(media_type, bytes);
    let target = match &parsed {
        Ok(env) => env.payload.target_artifact.clone(),
        Err(_) => Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            annotations: None,
        },
    };
    let policy = Policy::parse(POLICY).expect("the fixed policy is valid");
    let statement = policy.statement_for("r/x").expect("global statement");
    let anchors = Anchors {
        ca: vec![Ok(Vec::new())],
        signing_authority: vec![],
        tsa_configured: mode & 2 != 0,
        tsa: vec![Ok(Vec::new())],
    };
    let result = verify(
        media_type,
        bytes,
        &target,
        statement,
        &anchors,
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    );
    assert!(result.is_err(), "an envelope verified against an empty trust store");
});
