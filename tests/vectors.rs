//! Real trust data written by notary-server, the notary CLI and docker trust (tests/data, copied
//! from shared/vectors) verifies through the client walk with a fixed clock, and broken
//! variants of it are refused with the failing role and check named.

mod common;

use std::path::{Path, PathBuf};

use common::{DirFetch, run_update};
use docker_trustacr::notary::client::{ClientError, Repo};
use docker_trustacr::tuf::keys::{PublicKey, keytype};
use docker_trustacr::tuf::metadata::{
    Root, SignedFile, Snapshot, Targets, Timestamp, canonical_bytes, encode_signed,
};
use docker_trustacr::tuf::verify::{RootTrust, VerifyError};
use docker_trustacr::tuf::x509::CertError;
use time::OffsetDateTime;
use time::macros::datetime;

/// The vectors' timestamps expire 2026-12-06; their README fixes "now" before that.
const NOW: OffsetDateTime = datetime!(2026-11-23 00:00:00 UTC);

fn vectors(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(dir: &Path, gun: &str, now: OffsetDateTime, cache_dir: &Path) -> Result<Repo, ClientError> {
    let fetch = DirFetch {
        dir: dir.to_path_buf(),
    };
    run_update(&fetch, cache_dir, gun, now, &RootTrust::Tofu)
}

fn fresh(dir: &Path, gun: &str) -> Result<Repo, ClientError> {
    let cache = tempfile::tempdir().unwrap();
    run(dir, gun, NOW, cache.path())
}

/// A copy of a vector directory, to break.
fn copy(name: &str) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", vectors(name).display()))
        .arg(dst.path())
        .status()
        .unwrap();
    assert!(status.success());
    dst
}

#[test]
fn notary_cli_repository_verifies_and_resolves_its_tag() {
    let repo = fresh(
        &vectors("notary-v1/example.com_test_repo1"),
        "example.com/test/repo1",
    )
    .unwrap();
    let t = repo.find_target("v1").unwrap().expect("v1 is signed");
    assert_eq!(t.role(), "targets");
    assert_eq!(t.size(), 6);
    assert_eq!(repo.root.root.version, 3);
}

#[test]
fn root_rotation_chain_is_followed_from_a_pinned_first_root() {
    let dir = vectors("notary-v1/example.com_test_repo1");
    let cache = tempfile::tempdir().unwrap();
    let meta = cache.path().join("tuf/example.com/test/repo1/metadata");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::copy(dir.join("1.root.json"), meta.join("root.json")).unwrap();
    let repo = run(&dir, "example.com/test/repo1", NOW, cache.path()).unwrap();
    assert_eq!(repo.root.root.version, 3);
    // The cache now pins v3, byte for byte as served.
    assert_eq!(
        std::fs::read(meta.join("root.json")).unwrap(),
        std::fs::read(dir.join("root.json")).unwrap()
    );
}

#[test]
fn data_of_another_repository_fails_the_pinned_timestamp_keys() {
    // Pin repo1's root, then serve the deleg repository's data under repo1's name.
    let cache = tempfile::tempdir().unwrap();
    let meta = cache.path().join("tuf/example.com/test/repo1/metadata");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::copy(
        vectors("notary-v1/example.com_test_repo1/1.root.json"),
        meta.join("root.json"),
    )
    .unwrap();
    let err = run(
        &vectors("notary-v1/example.com_test_deleg"),
        "example.com/test/repo1",
        NOW,
        cache.path(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::Threshold { ref role, .. }) if role == "timestamp"),
        "{err}"
    );
    // Nothing was written: the cache still pins the original root and holds nothing else.
    let names: Vec<_> = std::fs::read_dir(&meta)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["root.json"]);
}

#[test]
fn notary_delegations_verify_including_an_ed25519_delegation() {
    let repo = fresh(
        &vectors("notary-v1/example.com_test_deleg"),
        "example.com/test/deleg",
    )
    .unwrap();
    let names: Vec<&str> = repo.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["targets", "targets/releases", "targets/edsigner"]);
    assert!(repo.skipped.is_empty(), "{:?}", repo.skipped);
}

#[test]
fn docker_trust_sign_repository_resolves_the_manifest_digest() {
    let repo = fresh(
        &vectors("notary-v1/localhost_5000_nv1_signnew2"),
        "localhost:5000/nv1/signnew2",
    )
    .unwrap();
    let t = repo.find_target("v1").unwrap().unwrap();
    assert_eq!(t.role(), "targets/releases");
    assert_eq!(
        hex::encode(t.sha256()),
        "607f4e9df84045774c852a9617e3bb91d4b3cfb47e0556128787b6805a52f4f1"
    );
    assert_eq!(t.size(), 523);
}

#[test]
fn independently_written_repository_verifies() {
    let repo = fresh(
        &vectors("notary-v1/localhost_5000_nv1_py-ok"),
        "localhost:5000/nv1/py-ok",
    )
    .unwrap();
    assert_eq!(repo.find_target("latest").unwrap().unwrap().size(), 8);
}

#[test]
fn notary_0_3_repository_with_rsa_pss_delegation_verifies() {
    let dir = vectors("notary-compat/notary0.3/tuf/docker.com/notary0.3/tst/metadata");
    let cache = tempfile::tempdir().unwrap();
    // Its root certificate ran out on 2026-07-25; verify it as of a day it was valid.
    let when = datetime!(2026-01-01 00:00:00 UTC);
    let repo = run(&dir, "docker.com/notary0.3/tst", when, cache.path()).unwrap();
    let releases = repo
        .role("targets/releases")
        .expect("rsa-x509 delegation verified");
    assert!(releases.targets.targets.contains_key("hello"));
    assert_eq!(repo.find_target("LICENSE").unwrap().unwrap().size(), 11309);
}

#[test]
fn wrong_gun_is_refused_by_the_root_certificate_rule() {
    let err = fresh(
        &vectors("notary-v1/example.com_test_repo1"),
        "example.com/test/other",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Verify(VerifyError::RootCertificate(CertError::CommonName { ref cn, ref gun, .. }))
                if cn == "example.com/test/repo1" && gun == "example.com/test/other"
        ),
        "{err}"
    );
}

#[test]
fn expired_timestamp_is_refused_as_a_freeze() {
    let later = datetime!(2027-01-01 00:00:00 UTC);
    let cache = tempfile::tempdir().unwrap();
    let err = run(
        &vectors("notary-v1/example.com_test_repo1"),
        "example.com/test/repo1",
        later,
        cache.path(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::Expired { ref role, .. }) if role == "timestamp"),
        "{err}"
    );
    assert!(!cache.path().join("tuf").exists(), "nothing may be cached");
}

#[test]
fn tampered_targets_bytes_are_refused_by_the_snapshot_hash() {
    let d = copy("notary-v1/example.com_test_repo1");
    let p = d.path().join("targets.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("\"length\":6", "\"length\":7");
    std::fs::write(&p, text).unwrap();
    let err = fresh(d.path(), "example.com/test/repo1").unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::HashMismatch { ref role, .. }) if role == "targets"),
        "{err}"
    );
}

#[test]
fn tampered_timestamp_signature_is_refused_by_the_threshold() {
    let d = copy("notary-v1/example.com_test_repo1");
    let p = d.path().join("timestamp.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('A') {
        sig.replacen('A', "B", 1)
    } else {
        format!("A{}", &sig[1..])
    };
    v["signatures"][0]["sig"] = flipped.into();
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = fresh(d.path(), "example.com/test/repo1").unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::Threshold { ref role, valid: 0, .. }) if role == "timestamp"),
        "{err}"
    );
}

#[test]
fn oversized_snapshot_is_refused_by_the_timestamp_length() {
    let d = copy("notary-v1/example.com_test_repo1");
    let p = d.path().join("snapshot.json");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend(std::iter::repeat_n(b' ', 100_000));
    std::fs::write(&p, bytes).unwrap();
    let err = fresh(d.path(), "example.com/test/repo1").unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Http(docker_trustacr::registry::HttpError::TooLarge { .. })
        ),
        "{err}"
    );
}

/// Every metadata file in tests/data that Go wrote (notary-server, the notary CLI, docker,
/// notary 0.3), with its role name. The `py-ok` repository and `targets/edsigner` were written
/// by Python and are left out.
fn go_written_files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let dirs = [
        vectors("notary-v1/example.com_test_repo1"),
        vectors("notary-v1/example.com_test_deleg"),
        vectors("notary-v1/localhost_5000_nv1_signnew2"),
        vectors("notary-compat/notary0.3/tuf/docker.com/notary0.3/tst/metadata"),
    ];
    for dir in dirs {
        for sub in ["", "targets"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(stem) = name.strip_suffix(".json") else {
                    continue;
                };
                if stem == "edsigner" {
                    continue;
                }
                // `2.root.json` → root; `targets/releases.json` → targets/releases.
                let base = stem.rsplit('.').next().unwrap_or(stem);
                let role = if sub.is_empty() {
                    base.to_string()
                } else {
                    format!("targets/{base}")
                };
                out.push((role, p));
            }
        }
    }
    out.sort();
    out
}

fn canonical_of_typed(role: &str, file: &SignedFile) -> Vec<u8> {
    let typ = file.signed["_type"].as_str().unwrap_or_default();
    match typ {
        "Root" => canonical_bytes(&file.typed::<Root>(role).unwrap()),
        "Targets" => canonical_bytes(&file.typed::<Targets>(role).unwrap()),
        "Snapshot" => canonical_bytes(&file.typed::<Snapshot>(role).unwrap()),
        "Timestamp" => canonical_bytes(&file.typed::<Timestamp>(role).unwrap()),
        other => panic!("{role}: unknown _type {other:?}"),
    }
    .unwrap()
}

// See: audit P1-W6 (byte-exact Go encoding, proven on files Go wrote)
#[test]
fn go_written_vectors_round_trip_byte_exactly() {
    let files = go_written_files();
    assert!(files.len() >= 20, "{} files", files.len());
    for (role, path) in files {
        let bytes = std::fs::read(&path).unwrap();
        let file = SignedFile::parse(&role, &bytes).unwrap();
        let canonical = file.canonical_signed(&role).unwrap();
        assert!(
            canonical_of_typed(&role, &file) == canonical,
            "{}: the typed structs lose or change members",
            path.display()
        );
        assert!(
            encode_signed(&canonical, &file.signatures) == bytes,
            "{}: not the bytes Go wrote",
            path.display()
        );
    }
}

/// Runs `cmd` in `dir` with sh; panics with the command when it fails.
fn sh(dir: &Path, cmd: &str) {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{cmd}");
}

// See: audit P1-W6 (the P-384 branch, anchored on a signature openssl made)
#[test]
fn p384_ecdsa_signature_made_by_openssl_verifies_and_a_changed_message_does_not() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("msg"), b"{\"signed\":\"by openssl\"}").unwrap();
    sh(
        d.path(),
        "openssl ecparam -name secp384r1 -genkey -noout -out k.pem 2>/dev/null && \
         openssl pkey -in k.pem -pubout -outform DER -out pub.der && \
         openssl dgst -sha256 -sign k.pem -out sig.der msg",
    );
    let spki = std::fs::read(d.path().join("pub.der")).unwrap();
    let der = std::fs::read(d.path().join("sig.der")).unwrap();
    // TUF's ecdsa signatures are r‖s, not DER.
    let sig = p384::ecdsa::Signature::from_der(&der).unwrap().to_bytes();
    let key = PublicKey::new(keytype::ECDSA, spki);
    let msg = std::fs::read(d.path().join("msg")).unwrap();
    key.verify("ecdsa", &msg, &sig).unwrap();
    assert!(
        key.verify("ecdsa", b"{\"signed\":\"changed\"}", &sig)
            .is_err()
    );
}

// See: audit P1-W6 (the rsapkcs1v15 branch, anchored on a signature openssl made)
#[test]
fn rsa_pkcs1v15_signature_made_by_openssl_verifies_and_a_changed_message_does_not() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("msg"), b"{\"signed\":\"by openssl\"}").unwrap();
    sh(
        d.path(),
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out k.pem 2>/dev/null && \
         openssl pkey -in k.pem -pubout -outform DER -out pub.der && \
         openssl dgst -sha256 -sign k.pem -out sig.bin msg",
    );
    let key = PublicKey::new(
        keytype::RSA,
        std::fs::read(d.path().join("pub.der")).unwrap(),
    );
    let sig = std::fs::read(d.path().join("sig.bin")).unwrap();
    let msg = std::fs::read(d.path().join("msg")).unwrap();
    key.verify("rsapkcs1v15", &msg, &sig).unwrap();
    assert!(key.verify("rsapkcs1v15", b"changed", &sig).is_err());
    // The same signature is not a PSS one.
    assert!(key.verify("rsapss", &msg, &sig).is_err());
}
