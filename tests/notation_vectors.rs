//! The Notary Project verification core against signatures and policies written by notation
//! itself (tests/data/notation, from the notaryproject repositories): the valid ones verify,
//! each failure case is refused by the check notation names, every invalid policy is refused.

use std::path::{Path, PathBuf};

use docker_trustacr::notation::envelope::{Descriptor, parse_jws};
use docker_trustacr::notation::policy::{Policy, PolicyError, Statement};
use docker_trustacr::notation::truststore::{StoreCertificate, parse_certificates};
use docker_trustacr::notation::verify::{Anchors, Check, Failure, Verified, verify};
use docker_trustacr::notation::{MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use time::OffsetDateTime;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/notation")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn store(files: &[&str]) -> Vec<StoreCertificate> {
    files
        .iter()
        .flat_map(|f| parse_certificates(&read(f)).unwrap())
        .collect()
}

/// Every certificate notation's e2e tests put in the `ca:e2e` store.
fn e2e_store() -> Vec<StoreCertificate> {
    store(&[
        "localkeys/e2e.crt",
        "localkeys/new_e2e.crt",
        "localkeys/expired_e2e.crt",
    ])
}

fn statement(policy: &str) -> Statement {
    let p = Policy::parse(&read(&format!("trustpolicies/{policy}"))).unwrap();
    p.statement_for("localhost:5000/e2e").unwrap().clone()
}

fn anchors(ca: Vec<StoreCertificate>, tsa: bool) -> Anchors {
    Anchors {
        ca: vec![Ok(ca)],
        signing_authority: vec![],
        tsa_configured: tsa,
        tsa: vec![],
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

struct Layout {
    dir: PathBuf,
    subject: Descriptor,
    signatures: Vec<(String, Vec<u8>)>,
}

/// Reads an OCI layout from the vectors: the tagged image, and every signature manifest's
/// envelope (layer media type and bytes).
fn layout(name: &str) -> Layout {
    let dir = data().join("oci_layout").join(name);
    let blob = |digest: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut subject = None;
    let mut signatures = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let digest = m["digest"].as_str().unwrap();
        if m["annotations"]["org.opencontainers.image.ref.name"] == "v1" {
            subject = Some(Descriptor {
                media_type: m["mediaType"].as_str().unwrap().into(),
                digest: digest.into(),
                size: m["size"].as_u64().unwrap(),
                annotations: None,
            });
            continue;
        }
        let manifest: serde_json::Value = serde_json::from_slice(&blob(digest)).unwrap();
        if manifest.get("subject").is_none() {
            continue;
        }
        let layer = &manifest["layers"][0];
        signatures.push((
            layer["mediaType"].as_str().unwrap().to_string(),
            blob(layer["digest"].as_str().unwrap()),
        ));
    }
    Layout {
        dir,
        subject: subject.unwrap(),
        signatures,
    }
}

fn verify_layout(
    name: &str,
    policy: &str,
    ca: Vec<StoreCertificate>,
) -> Vec<Result<Verified, Failure>> {
    let l = layout(name);
    assert!(
        !l.signatures.is_empty(),
        "{}: no signature",
        l.dir.display()
    );
    l.signatures
        .iter()
        .map(|(mt, bytes)| {
            verify(
                mt,
                bytes,
                &l.subject,
                &statement(policy),
                &anchors(ca.clone(), false),
                now(),
            )
        })
        .collect()
}

fn only_failure(results: Vec<Result<Verified, Failure>>) -> Failure {
    assert_eq!(results.len(), 1);
    results.into_iter().next().unwrap().unwrap_err()
}

/// The leaf of an envelope, as a store entry: pins that exact signing certificate.
fn own_leaf(envelope: &[u8]) -> Vec<StoreCertificate> {
    let env = parse_jws(envelope).unwrap();
    parse_certificates(&env.certificate_chain[0]).unwrap()
}

#[test]
fn notations_valid_signature_verifies_with_the_e2e_certificate() {
    let results = verify_layout(
        "e2e-valid-signature",
        "trustpolicy.json",
        store(&["localkeys/e2e.crt"]),
    );
    let v = results.into_iter().next().unwrap().unwrap();
    assert_eq!(
        v.payload.target_artifact.digest,
        layout("e2e-valid-signature").subject.digest
    );
    assert!(v.signer.contains("CN=e2e"), "{}", v.signer);
    assert!(v.logged.is_empty());
}

#[test]
fn one_valid_signature_among_several_is_enough() {
    let results = verify_layout(
        "e2e-valid-multiple-signatures",
        "trustpolicy.json",
        store(&["localkeys/e2e.crt"]),
    );
    assert!(results.len() >= 2);
    assert!(results.iter().any(|r| r.is_ok()), "{results:?}");
}

#[test]
fn an_expired_signature_is_refused_by_the_expiry_check() {
    let f = only_failure(verify_layout(
        "e2e-expired-signature",
        "trustpolicy.json",
        e2e_store(),
    ));
    assert_eq!(f.check, Check::Expiry, "{f}");
}

#[test]
fn an_invalid_signature_is_refused_by_the_integrity_check() {
    let f = only_failure(verify_layout(
        "e2e-invalid-signature",
        "trustpolicy.json",
        e2e_store(),
    ));
    assert_eq!(f.check, Check::Integrity, "{f}");
}

#[test]
fn a_signature_by_an_expired_certificate_is_refused_by_the_authentic_timestamp_check() {
    let f = only_failure(verify_layout(
        "e2e-with-expired-cert",
        "trustpolicy.json",
        e2e_store(),
    ));
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    assert!(f.reason.contains("expired"), "{f}");
}

#[test]
fn expired_certificate_signatures_are_only_logged_at_level_audit() {
    let results = verify_layout(
        "e2e-with-expired-cert",
        "audit_trustpolicy.json",
        e2e_store(),
    );
    let v = results.into_iter().next().unwrap().unwrap();
    assert_eq!(v.logged[0].check, Check::AuthenticTimestamp);
}

#[test]
fn a_signature_whose_certificate_is_not_in_the_store_is_refused_by_authenticity() {
    let f = only_failure(verify_layout(
        "e2e-valid-signature",
        "trustpolicy.json",
        store(&["localkeys/new_e2e.crt"]),
    ));
    assert_eq!(f.check, Check::Authenticity, "{f}");
}

#[test]
fn trusted_identities_match_the_leaf_subject_as_notation_does() {
    let l = layout("e2e-valid-signature");
    let (mt, bytes) = &l.signatures[0];
    let a = anchors(store(&["localkeys/e2e.crt"]), false);
    let ok = statement("valid_trusted_identity_trustpolicy.json");
    verify(mt, bytes, &l.subject, &ok, &a, now()).unwrap();
    let other = statement("invalid_trusted_identity_trustpolicy.json");
    let f = verify(mt, bytes, &l.subject, &other, &a, now()).unwrap_err();
    assert_eq!(f.check, Check::TrustedIdentity, "{f}");
}

#[test]
fn a_signature_for_another_manifest_is_refused_by_the_target_artifact_check() {
    let l = layout("e2e-valid-signature");
    let (mt, bytes) = &l.signatures[0];
    let mut other = l.subject.clone();
    other.digest = format!("sha256:{}", "0".repeat(64));
    let f = verify(
        mt,
        bytes,
        &other,
        &statement("trustpolicy.json"),
        &anchors(e2e_store(), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::TargetArtifact, "{f}");
    let mut other = l.subject.clone();
    other.size += 1;
    assert!(
        verify(
            mt,
            bytes,
            &other,
            &statement("trustpolicy.json"),
            &anchors(e2e_store(), false),
            now()
        )
        .is_err()
    );
}

#[test]
fn a_tampered_payload_fails_integrity() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let l = layout("e2e-valid-signature");
    let (mt, bytes) = &l.signatures[0];
    let mut env: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let tampered = String::from_utf8(payload)
        .unwrap()
        .replace(&format!("\"size\":{}", l.subject.size), "\"size\":1");
    env["payload"] = b64.encode(tampered).into();
    let mut subject = l.subject.clone();
    subject.size = 1;
    let f = verify(
        mt,
        &serde_json::to_vec(&env).unwrap(),
        &subject,
        &statement("trustpolicy.json"),
        &anchors(e2e_store(), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Integrity, "{f}");
}

#[test]
fn an_alg_that_does_not_belong_to_the_key_fails_integrity() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let l = layout("e2e-valid-signature");
    let (mt, bytes) = &l.signatures[0];
    let mut env: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let protected =
        String::from_utf8(b64.decode(env["protected"].as_str().unwrap()).unwrap()).unwrap();
    env["protected"] = b64.encode(protected.replace("PS256", "PS384")).into();
    let f = verify(
        mt,
        &serde_json::to_vec(&env).unwrap(),
        &l.subject,
        &statement("trustpolicy.json"),
        &anchors(e2e_store(), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Integrity, "{f}");
    assert!(
        f.reason.contains("PS384") && f.reason.contains("PS256"),
        "{f}"
    );
}

#[test]
fn an_unknown_critical_header_fails_integrity() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let l = layout("e2e-valid-signature");
    let (mt, bytes) = &l.signatures[0];
    let mut env: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let protected =
        String::from_utf8(b64.decode(env["protected"].as_str().unwrap()).unwrap()).unwrap();
    let protected = protected.replace(
        "\"crit\":[\"io.cncf.notary.signingScheme\"]",
        "\"crit\":[\"io.cncf.notary.signingScheme\",\"io.example.mustUnderstand\"],\"io.example.mustUnderstand\":1",
    );
    env["protected"] = b64.encode(protected).into();
    let f = verify(
        mt,
        &serde_json::to_vec(&env).unwrap(),
        &l.subject,
        &statement("trustpolicy.json"),
        &anchors(e2e_store(), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Integrity, "{f}");
    assert!(f.reason.contains("io.example.mustUnderstand"), "{f}");
}

/// The sigEnv vectors carry their own target; verify them against it with their own leaf pinned.
fn sig_env(name: &str, tsa: bool, policy: &str) -> Result<Verified, Failure> {
    let bytes = read(&format!("sigEnv/{name}"));
    let env = parse_jws(&bytes).unwrap();
    verify(
        MEDIA_TYPE_JWS,
        &bytes,
        &env.payload.target_artifact,
        &statement(policy),
        &anchors(own_leaf(&bytes), tsa),
        now(),
    )
}

#[test]
fn notation_go_jws_signatures_with_and_without_a_timestamp_verify_while_their_certificate_is_valid()
{
    sig_env("withoutTimestamp.sig", false, "trustpolicy.json").unwrap();
    let bytes = read("sigEnv/jwsWithTimestamp.sig");
    assert!(parse_jws(&bytes).unwrap().timestamp_signature.is_some());
    sig_env("jwsWithTimestamp.sig", false, "trustpolicy.json").unwrap();
    let bytes = read("jws_signature.sig");
    let env = parse_jws(&bytes).unwrap();
    verify(
        MEDIA_TYPE_JWS,
        &bytes,
        &env.payload.target_artifact,
        &statement("trustpolicy.json"),
        &anchors(own_leaf(&bytes), false),
        now(),
    )
    .unwrap();
}

#[test]
fn an_expired_certificate_without_a_tsa_store_is_refused_by_authentic_timestamp() {
    // Without a tsa store notation does not look at the timestamp: every certificate must be
    // valid now, and this one expired.
    let f = sig_env("jwsExpiredWithTimestamp.sig", false, "trustpolicy.json").unwrap_err();
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    // A tsa store that holds none of the TSA's roots: the timestamp cannot be trusted.
    let f = sig_env(
        "jwsExpiredWithTimestamp.sig",
        true,
        "timestamp_trustpolicy.json",
    )
    .unwrap_err();
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    assert!(f.reason.contains("RFC 3161"), "{f}");
}

/// A sigEnv vector verified with its leaf pinned and `tsa_roots` as the tsa store, under
/// timestamp_trustpolicy.json (a `tsa:` store: timestamps always verified).
fn timestamped(file: &str, tsa_roots: &[&str]) -> Result<Verified, Failure> {
    let bytes = read(file);
    let mt = if bytes.first() == Some(&0xd2) {
        MEDIA_TYPE_COSE
    } else {
        MEDIA_TYPE_JWS
    };
    let env = docker_trustacr::notation::envelope::parse(mt, &bytes).unwrap();
    let leaf = parse_certificates(&env.certificate_chain[0]).unwrap();
    let mut a = anchors(leaf, true);
    a.tsa = vec![Ok(store(tsa_roots))];
    verify(
        mt,
        &bytes,
        &env.payload.target_artifact,
        &statement("timestamp_trustpolicy.json"),
        &a,
        now(),
    )
}

const GLOBALSIGN_TSA_ROOT: &str = "truststore/tsa/globalsignRoot.cer";

#[test]
fn an_expired_certificate_with_an_rfc3161_timestamp_from_the_tsa_store_verifies() {
    for file in [
        "sigEnv/jwsExpiredWithTimestamp.sig",
        "sigEnv/coseExpiredWithTimestamp.sig",
        "sigEnv/jwsWithTimestamp.sig",
        "sigEnv/coseWithTimestamp.sig",
    ] {
        let v = timestamped(file, &[GLOBALSIGN_TSA_ROOT]);
        assert!(v.is_ok(), "{file}: {v:?}");
    }
}

#[test]
fn a_timestamp_outside_the_certificates_validity_is_refused_as_notation_refuses_it() {
    let f = timestamped("sigEnv/timestampAfterNotAfter.sig", &[GLOBALSIGN_TSA_ROOT]).unwrap_err();
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    assert!(f.reason.contains("after certificate"), "{f}");
    let f = timestamped(
        "sigEnv/timestampBeforeNotBefore.sig",
        &[GLOBALSIGN_TSA_ROOT],
    )
    .unwrap_err();
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    assert!(f.reason.contains("before certificate"), "{f}");
}

#[test]
fn a_timestamp_from_another_tsa_root_or_for_another_signature_is_refused() {
    let f = timestamped(
        "sigEnv/jwsExpiredWithTimestamp.sig",
        &["truststore/tsa/DigiCertTSARootSHA384.cer"],
    )
    .unwrap_err();
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    assert!(f.reason.contains("tsa trust store"), "{f}");

    // The timestamp is in the unsigned header: moved onto another signature, its message
    // imprint no longer matches the signature bytes.
    let donor: serde_json::Value =
        serde_json::from_slice(&read("sigEnv/jwsWithTimestamp.sig")).unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&read("sigEnv/withoutTimestamp.sig")).unwrap();
    v["header"]["io.cncf.notary.timestampSignature"] =
        donor["header"]["io.cncf.notary.timestampSignature"].clone();
    let bytes = serde_json::to_vec(&v).unwrap();
    let env = parse_jws(&bytes).unwrap();
    let mut a = anchors(own_leaf(&bytes), true);
    a.tsa = vec![Ok(store(&[GLOBALSIGN_TSA_ROOT]))];
    let f = verify(
        MEDIA_TYPE_JWS,
        &bytes,
        &env.payload.target_artifact,
        &statement("timestamp_trustpolicy.json"),
        &a,
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::AuthenticTimestamp, "{f}");
    assert!(f.reason.contains("message imprint"), "{f}");

    // One changed byte inside the token's TSTInfo (its serial number): the TSA's signature
    // over the signed attributes no longer covers it.
    let token = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        donor["header"]["io.cncf.notary.timestampSignature"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let serial = [0x71, 0xb1, 0x66, 0x77];
    let at = token.windows(4).position(|w| w == serial).unwrap();
    let mut changed = token.clone();
    changed[at] ^= 1;
    let sig = parse_jws(&read("sigEnv/jwsWithTimestamp.sig"))
        .unwrap()
        .signature;
    let err = docker_trustacr::notation::timestamp::verify(
        &changed,
        &sig,
        &store(&[GLOBALSIGN_TSA_ROOT]),
    )
    .unwrap_err();
    assert!(err.contains("does not match its signed digest"), "{err}");
    docker_trustacr::notation::timestamp::verify(&token, &sig, &store(&[GLOBALSIGN_TSA_ROOT]))
        .unwrap();
}

#[test]
fn a_policy_that_asks_for_timestamps_only_after_expiry_accepts_a_valid_certificate() {
    sig_env(
        "jwsWithTimestamp.sig",
        true,
        "timestamp_after_cert_expiry_trustpolicy.json",
    )
    .unwrap();
}

#[test]
fn notation_timestamped_layouts_are_refused_by_expiry_then_by_authentic_timestamp() {
    // The first carries an expiry that has passed, so notation's order reports expiry first;
    // both have a certificate that expired since, so with expiry only logged, the certificate's
    // validity (no RFC 3161 verification here) refuses them.
    let expiry_logged = Policy::parse(
        br#"{"version":"1.0","trustPolicies":[{"name":"e2e","registryScopes":["*"],
            "signatureVerification":{"level":"strict","override":{"expiry":"log"}},
            "trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#,
    )
    .unwrap();
    for (name, first) in [
        ("e2e-with-timestamped-signature", Check::Expiry),
        (
            "e2e-with-invalid-timestamped-signature",
            Check::AuthenticTimestamp,
        ),
    ] {
        let l = layout(name);
        let (mt, bytes) = &l.signatures[0];
        let a = anchors(own_leaf(bytes), false);
        let f = verify(
            mt,
            bytes,
            &l.subject,
            &statement("trustpolicy.json"),
            &a,
            now(),
        )
        .unwrap_err();
        assert_eq!(f.check, first, "{name}: {f}");
        let st = expiry_logged.statement_for("localhost:5000/e2e").unwrap();
        let f = verify(mt, bytes, &l.subject, st, &a, now()).unwrap_err();
        assert_eq!(f.check, Check::AuthenticTimestamp, "{name}: {f}");
    }
}

/// A sigEnv vector, JWS or COSE (by its first byte: CBOR tag 18 is 0xd2), verified against
/// its own target with its own leaf pinned, like [`sig_env`].
fn any_env(file: &str, tsa: bool, policy: &str) -> Result<Verified, Failure> {
    let bytes = read(file);
    let mt = if bytes.first() == Some(&0xd2) {
        MEDIA_TYPE_COSE
    } else {
        MEDIA_TYPE_JWS
    };
    let env = docker_trustacr::notation::envelope::parse(mt, &bytes).unwrap();
    let leaf = parse_certificates(&env.certificate_chain[0]).unwrap();
    verify(
        mt,
        &bytes,
        &env.payload.target_artifact,
        &statement(policy),
        &anchors(leaf, tsa),
        now(),
    )
}

#[test]
fn notations_cose_signatures_verify_like_their_jws_twins() {
    for (cose, jws) in [
        ("cose_signature.sig", "jws_signature.sig"),
        (
            "sigEnv/coseWithTimestamp.sig",
            "sigEnv/jwsWithTimestamp.sig",
        ),
    ] {
        let c = any_env(cose, false, "trustpolicy.json");
        let j = any_env(jws, false, "trustpolicy.json");
        assert!(c.is_ok() && j.is_ok(), "{cose}: {c:?}; {jws}: {j:?}");
        assert!(c.unwrap().signer.contains("O=Notary"), "{cose}");
    }
    let env = docker_trustacr::notation::envelope::parse(
        MEDIA_TYPE_COSE,
        &read("sigEnv/coseWithTimestamp.sig"),
    )
    .unwrap();
    assert!(env.timestamp_signature.is_some());
    assert_eq!(env.signing_agent.as_deref(), Some("Notation/1.0.0"));
}

#[test]
fn notations_expired_cose_signatures_are_refused_by_the_same_check_as_their_jws_twins() {
    for (cose, jws) in [
        (
            "sigEnv/coseExpiredWithTimestamp.sig",
            "sigEnv/jwsExpiredWithTimestamp.sig",
        ),
        (
            "sigEnv/timestampAfterNotAfter.sig",
            "sigEnv/timestampBeforeNotBefore.sig",
        ),
    ] {
        for (tsa, policy) in [
            (false, "trustpolicy.json"),
            (true, "timestamp_trustpolicy.json"),
        ] {
            let c = any_env(cose, tsa, policy).unwrap_err();
            let j = any_env(jws, tsa, policy).unwrap_err();
            assert_eq!(c.check, j.check, "{cose}: {c}; {jws}: {j}");
            assert_eq!(c.check, Check::AuthenticTimestamp, "{cose}: {c}");
        }
    }
}

#[test]
fn a_cose_envelope_changed_after_signing_fails_integrity() {
    let bytes = read("cose_signature.sig");
    let env = docker_trustacr::notation::envelope::parse(MEDIA_TYPE_COSE, &bytes).unwrap();
    let leaf = parse_certificates(&env.certificate_chain[0]).unwrap();
    // One byte of the payload's digest text, so the payload still parses: only the
    // signature can tell.
    let digest = env.payload.target_artifact.digest.as_bytes();
    let at = bytes
        .windows(digest.len())
        .position(|w| w == digest)
        .unwrap()
        + digest.len()
        - 1;
    let mut tampered = bytes.clone();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let changed = docker_trustacr::notation::envelope::parse(MEDIA_TYPE_COSE, &tampered).unwrap();
    let f = verify(
        MEDIA_TYPE_COSE,
        &tampered,
        &changed.payload.target_artifact,
        &statement("trustpolicy.json"),
        &anchors(leaf.clone(), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Integrity, "{f}");
    // Read as JWS, the same bytes are refused as not being JSON: the layer type decides.
    let f = verify(
        MEDIA_TYPE_JWS,
        &bytes,
        &env.payload.target_artifact,
        &statement("trustpolicy.json"),
        &anchors(leaf, false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Integrity, "{f}");
}

const VALID_POLICIES: &[&str] = &[
    "any_registry_scope_trust_policy.json",
    "audit_trustpolicy.json",
    "generate_test_trustpolicy.json",
    "invalid_registry_scope_trustpolicy.json",
    "invalid_trust_store_trustpolicy.json",
    "invalid_trusted_identity_trustpolicy.json",
    "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
    "multiple_registry_scope_trustpolicy.json",
    "multiple_trust_store_trustpolicy.json",
    "multiple_trusted_identity_trustpolicy.json",
    "overlapped_trust_store_trustpolicy.json",
    "override_audit_trustpolicy.json",
    "override_permissive_trustpolicy.json",
    "override_strict_trustpolicy.json",
    "permissive_trustpolicy.json",
    "quickstart_trustpolicy.json",
    "registry_scope_trustpolicy.json",
    "skip_trustpolicy.json",
    "timestamp_after_cert_expiry_trustpolicy.json",
    "timestamp_trustpolicy.json",
    "trustpolicy.json",
    "valid_trusted_identity_trustpolicy.json",
];

/// Each invalid policy, and a word its refusal must contain.
const INVALID_POLICIES: &[(&str, &str)] = &[
    ("blob_trust_policy.json", "registry scopes"),
    ("empty_registry_scope_trustpolicy.json", "registry scopes"),
    (
        "empty_trusted_identity_trustpolicy.json",
        "empty trusted identity",
    ),
    ("invalid_format_trustpolicy.json", "JSON"),
    (
        "malformed_registry_scope_trustpolicy.json",
        "not a repository",
    ),
    ("malformed_trust_store_trustpolicy.json", "trust store name"),
    (
        "malformed_trusted_identity_trustpolicy.json",
        "x509.subject",
    ),
    ("missing_country_trusted_identity_trustpolicy.json", "no C"),
    (
        "missing_organization_trusted_identity_trustpolicy.json",
        "no O",
    ),
    ("missing_state_trusted_identity_trustpolicy.json", "no ST"),
    (
        "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json",
        "global",
    ),
    (
        "multi_statements_with_the_same_name_trustpolicy.json",
        "more than once",
    ),
    (
        "multi_statements_with_the_same_registry_scope_trustpolicy.json",
        "more than once",
    ),
    (
        "overlapped_registry_scope_trustpolicy.json",
        "more than once",
    ),
    ("overlapped_trusted_identity_trustpolicy.json", "overlap"),
    (
        "override_integrity_for_permissive_trustpolicy.json",
        "integrity",
    ),
    ("unset_trust_store_trustpolicy.json", "no trust stores"),
    (
        "unset_trusted_identity_trustpolicy.json",
        "no trusted identities",
    ),
    (
        "wildcard_plus_other_registry_scope_trustpolicy.json",
        "cannot be combined",
    ),
    (
        "wildcard_plus_other_trusted_identity_trustpolicy.json",
        "cannot be combined",
    ),
    ("wildcard_trust_store_trustpolicy.json", "<type>:<name>"),
];

#[test]
fn notations_valid_trust_policies_are_accepted() {
    for name in VALID_POLICIES {
        Policy::parse(&read(&format!("trustpolicies/{name}")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_invalid_trust_policy_is_refused_with_its_reason() {
    for (name, word) in INVALID_POLICIES {
        let err: PolicyError = Policy::parse(&read(&format!("trustpolicies/{name}")))
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(err.to_string().contains(word), "{name}: {err}");
    }
}

#[test]
fn every_policy_vector_is_classified() {
    let mut all: Vec<String> = std::fs::read_dir(data().join("trustpolicies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    all.sort();
    let mut known: Vec<String> = VALID_POLICIES
        .iter()
        .map(|s| s.to_string())
        .chain(INVALID_POLICIES.iter().map(|(s, _)| s.to_string()))
        .collect();
    known.sort();
    assert_eq!(all, known);
}

#[test]
fn a_repository_statement_beside_a_separate_global_one_wins_for_its_repository() {
    let f = "multi_statements_with_wildcard_registry_scope_trustpolicy.json";
    // A repository statement beside a separate global one is valid; the repository wins.
    let p = Policy::parse(&read(&format!("trustpolicies/{f}"))).unwrap();
    assert_eq!(
        p.statement_for("localhost:5000/test-repo9").unwrap().name,
        "e2e"
    );
    assert_eq!(
        p.statement_for("localhost:5000/other").unwrap().name,
        "e2e2"
    );
}

/// The P-521 fixture (tests/data/notation/p521, made with Python `cryptography`): a test
/// root and a leaf it issued, both P-521 signed with ecdsa-with-SHA512.
fn p521_signer() -> (docker_trustacr::notation::sign::NotationKey, Vec<Vec<u8>>) {
    use docker_trustacr::notation::certgen::parse_pem_chain;
    use docker_trustacr::notation::sign::NotationKey;
    let key_pem = pem::parse(read("p521/signer.key")).unwrap();
    let key = NotationKey::from_pkcs8_der(key_pem.contents()).unwrap();
    let chain = parse_pem_chain(&read("p521/chain.pem")).unwrap();
    let ders = chain
        .iter()
        .map(|c| der::Encode::to_der(c).unwrap())
        .collect();
    (key, ders)
}

fn p521_target() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: format!("sha256:{}", "5e".repeat(32)),
        size: 1234,
        annotations: None,
    }
}

#[test]
fn an_es512_signature_by_a_p521_key_verifies_through_its_p521_chain() {
    use docker_trustacr::notation::certgen::{KeySpec, check_chain, parse_pem_chain};
    use docker_trustacr::notation::sign::sign_envelope;
    let (key, chain) = p521_signer();
    assert_eq!(key.spec(), KeySpec::EcP521);
    let parsed = parse_pem_chain(&read("p521/chain.pem")).unwrap();
    assert_eq!(check_chain(&parsed, now()).unwrap(), KeySpec::EcP521);
    let env = sign_envelope(&key, &chain, &p521_target(), now(), None).unwrap();
    let parsed_env = parse_jws(&env).unwrap();
    assert_eq!(parsed_env.protected.alg.jws_name(), "ES512");
    let v = verify(
        MEDIA_TYPE_JWS,
        &env,
        &p521_target(),
        &statement("trustpolicy.json"),
        &anchors(store(&["p521/root.crt"]), false),
        now(),
    )
    .unwrap();
    assert!(v.signer.contains("CN=P-521 test signer"), "{}", v.signer);
    // Not anchored in the e2e store: the P-521 chain is really checked against the store.
    let f = verify(
        MEDIA_TYPE_JWS,
        &env,
        &p521_target(),
        &statement("trustpolicy.json"),
        &anchors(e2e_store(), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Authenticity, "{f}");
}

#[test]
fn an_es512_signature_with_one_changed_bit_fails_integrity() {
    use base64::Engine as _;
    use docker_trustacr::notation::sign::sign_envelope;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (key, chain) = p521_signer();
    let env = sign_envelope(&key, &chain, &p521_target(), now(), None).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&env).unwrap();
    let mut sig = b64.decode(v["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig.len(), 132, "ES512 is raw r‖s of 66 bytes each");
    sig[70] ^= 1;
    v["signature"] = b64.encode(&sig).into();
    let f = verify(
        MEDIA_TYPE_JWS,
        &serde_json::to_vec(&v).unwrap(),
        &p521_target(),
        &statement("trustpolicy.json"),
        &anchors(store(&["p521/root.crt"]), false),
        now(),
    )
    .unwrap_err();
    assert_eq!(f.check, Check::Integrity, "{f}");
}
