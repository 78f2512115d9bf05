//! Regression tests: see main.rs. The trust core: delegation walk, root rotation, targets,
//! rollback floors, on repositories built here with keys the test holds.
//!
//! Proven on the real stack instead (tests/integration/attacks_wire.rs):
//! - #8 item 1 on the wire: `delegation_listed_in_snapshot_but_not_served_fails_cold_and_warm`
//! - #8 item 4 on the wire: `server_key_rotation_by_notary_is_followed_by_a_warm_client`
//! - audit P1-M3: `hostile_answers_over_http_are_refused_and_nothing_is_cached`
//! - #8 item 6 on the wire: `tag_signed_with_only_a_sha512_is_refused_by_verify_and_pull`
//! - audit P1-M4:
//!   `notary_cli_delegation_signs_and_the_role_and_hash_verify_across_a_root_rotation`
//!   (trust.rs)
//! - #9 item 5 on the wire (rotate.rs): `refused_or_unanswered_rotation_upload_keeps_the_old_key_and_trust_data`,
//!   `signer_publishing_during_a_rotation_makes_it_a_clear_conflict_with_the_old_key_kept`,
//!   `root_rotation_is_followed_by_notary_docker_and_this_tool_holding_the_old_root`
//!
//! Elsewhere in the library tests: audit P1-M2 warm cache
//! (`honest_repository_verifies_and_warm_update_uses_the_cache`, attacks.rs), P1-M3
//! `read_limited_*` (attacks.rs), P1-W6 `go_written_vectors_round_trip_byte_exactly` and the
//! openssl-made P-384 and RSA PKCS#1 v1.5 signatures (vectors.rs), P1-M8 in src/tuf/keys.rs.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use common::*;
use docker_trustacr::keystore::keys::SigningKey;
use docker_trustacr::notary::client::ClientError;
use docker_trustacr::tuf::metadata::{DelegatedRole, FileMeta, Snapshot, role_type};
use docker_trustacr::tuf::verify::{self, MAX_SIGNATURES, RootTrust, Signers, VerifyError};
use time::Duration;

/// targets signs v1 = "old"; targets/releases (all paths) signs v1 = "new".
fn world_with_releases() -> World {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"old")], Some(vec!["".into()]));
    let rel = w.releases(&[("v1", b"new")]);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    w
}

fn resolves_to(w: &World, tag: &str) -> (String, Vec<u8>) {
    let d = w.update().unwrap().find_target(tag).unwrap().unwrap();
    (d.role().to_string(), d.sha256().to_vec())
}

// See: #8 item 1
#[test]
fn withheld_delegation_is_refused_cold_not_resolved_to_the_older_targets_entry() {
    let w = world_with_releases();
    std::fs::remove_file(w.server.path().join("targets/releases.json")).unwrap();
    let e = w.refused_with(
        |e| matches!(e, VerifyError::Withheld { role } if role == "targets/releases"),
    );
    assert!(e.to_string().contains("targets/releases"), "{e}");
    assert!(w.cache_state().is_empty());
}

// See: #8 item 1
#[test]
fn withheld_delegation_is_refused_warm() {
    let w = world_with_releases();
    assert_eq!(
        resolves_to(&w, "v1"),
        (
            "targets/releases".into(),
            target(b"new").sha256().unwrap().to_vec()
        )
    );
    // A new releases version the cache does not have, which the server then withholds.
    let t = w.targets(1, &[("v1", b"old")], Some(vec!["".into()]));
    let rel = w.releases(&[("v1", b"newer")]);
    w.publish(2, 2, &t, &[("targets/releases", &rel)]);
    std::fs::remove_file(w.server.path().join("targets/releases.json")).unwrap();
    w.refused_with(|e| matches!(e, VerifyError::Withheld { role } if role == "targets/releases"));
}

// See: #8 item 1 (the top-level targets role follows the same rule)
#[test]
fn withheld_targets_is_refused() {
    let w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    std::fs::remove_file(w.server.path().join("targets.json")).unwrap();
    w.refused_with(|e| matches!(e, VerifyError::Withheld { role } if role == "targets"));
}

// See: audit P1-W7 (the skips Go allows: expired and under-signed delegations)
#[test]
fn expired_delegation_is_skipped_and_named() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"old")], Some(vec!["".into()]));
    let body = w.targets_body(1, &[("v1", b"new")], Duration::seconds(-60));
    let rel = w.sign_targets("targets/releases", &body, &w.releases_key);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    let repo = w.update().unwrap();
    assert_eq!(repo.find_target("v1").unwrap().unwrap().role(), "targets");
    assert_eq!(repo.skipped.len(), 1, "{:?}", repo.skipped);
    assert_eq!(repo.skipped[0].0, "targets/releases");
    assert!(repo.skipped[0].1.contains("expired"), "{:?}", repo.skipped);
}

// See: audit P1-W7
#[test]
fn under_signed_delegation_is_skipped_and_named() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"old")], Some(vec!["".into()]));
    let body = w.targets_body(1, &[("v1", b"new")], Duration::days(30));
    let stranger = SigningKey::generate_ed25519().unwrap();
    let rel = w.sign_targets("targets/releases", &body, &stranger);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    let repo = w.update().unwrap();
    assert_eq!(repo.find_target("v1").unwrap().unwrap().role(), "targets");
    assert!(
        repo.skipped[0].1.contains("threshold"),
        "{:?}",
        repo.skipped
    );
}

// See: audit P1-W7 (an expired top-level targets is fatal, not skipped)
#[test]
fn expired_targets_is_refused() {
    let w = World::new(1);
    let body = w.targets_body(1, &[("v1", b"m")], Duration::seconds(-60));
    let t = w.sign_targets("targets", &body, &w.targets_key);
    w.publish(1, 1, &t, &[]);
    w.refused_with(|e| matches!(e, VerifyError::Expired { role, .. } if role == "targets"));
}

// See: audit P1-W7
#[test]
fn delegation_with_an_invalid_name_is_refused() {
    let w = World::new(1);
    let mut body = w.targets_body(1, &[("v1", b"m")], Duration::days(30));
    let id = w.releases_key.public().id();
    w.delegate_to_releases_key(
        &mut body.delegations,
        "targets/../root",
        Some(vec![id]),
        vec!["".into()],
    );
    let t = w.sign_targets("targets", &body, &w.targets_key);
    w.publish(1, 1, &t, &[]);
    w.refused_with(
        |e| matches!(e, VerifyError::BadDelegation { role, .. } if role == "targets/../root"),
    );
}

// See: audit P1-W7
#[test]
fn targets_of_the_wrong_type_is_refused() {
    let w = World::new(1);
    let mut body = w.targets_body(1, &[("v1", b"m")], Duration::days(30));
    body.typ = role_type::SNAPSHOT.into();
    let t = w.sign_targets("targets", &body, &w.targets_key);
    w.publish(1, 1, &t, &[]);
    w.refused_with(|e| matches!(e, VerifyError::WrongType { role, .. } if role == "targets"));
}

// See: audit P1-W7
#[test]
fn snapshot_without_targets_meta_is_refused() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    w.write("targets", &t);
    let snap = w.snapshot(1, &[]);
    w.write("snapshot", &snap);
    w.write("timestamp", &w.timestamp(1, &snap, Duration::days(7)));
    w.refused_with(
        |e| matches!(e, VerifyError::MissingMeta { role, parent: "snapshot" } if role == "targets"),
    );
}

// See: audit P1-W7
#[test]
fn delegation_key_whose_content_has_another_id_is_refused() {
    let w = World::new(1);
    let mut body = w.targets_body(1, &[("v1", b"old")], Duration::days(30));
    let real = w.releases_key.public();
    // The delegation names the releases key's ID but maps it to other key content.
    let other = SigningKey::generate_ed25519().unwrap().public();
    body.delegations.keys.insert(real.id(), other);
    body.delegations.roles.push(DelegatedRole {
        keyids: Some(vec![real.id()]),
        name: "targets/releases".into(),
        paths: vec!["".into()],
        threshold: 1,
    });
    let t = w.sign_targets("targets", &body, &w.targets_key);
    let rel = w.releases(&[("v1", b"new")]);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    w.refused_with(
        |e| matches!(e, VerifyError::KeyIdMismatch { role, keyid } if role == "targets/releases" && *keyid == real.id()),
    );
}

// See: #8 item 17 (rollback floors advance as soon as each file verifies)
#[test]
fn timestamp_floor_advances_even_when_the_snapshot_is_refused() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    w.publish(1, 2, &t, &[]);
    w.update().unwrap();
    // Timestamp v2 is valid, the snapshot it names rolls back: refused, but timestamp v2 is
    // now the floor.
    w.publish(2, 1, &t, &[]);
    w.refused_with(|e| matches!(e, VerifyError::Rollback { role, .. } if role == "snapshot"));
    assert_eq!(w.cached_version("timestamp"), Some(2));
    // So a replay of timestamp v1 (validly signed, unexpired) is now a rollback.
    let snap = w.snapshot(2, &[("targets", &t)]);
    w.write("snapshot", &snap);
    w.write("timestamp", &w.timestamp(1, &snap, Duration::days(7)));
    w.refused_with(
        |e| matches!(e, VerifyError::Rollback { role, trusted: 2, new: 1 } if role == "timestamp"),
    );
}

// See: #8 item 17 (no floor is cached without the root that vouches for it)
#[test]
fn refused_cold_update_caches_no_floor() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    w.publish(1, 1, &t, &[]);
    std::fs::remove_file(w.server.path().join("targets.json")).unwrap();
    w.update().unwrap_err();
    assert!(w.cache_state().is_empty(), "{:?}", w.cache_state().keys());
}

// See: audit P1-W7
#[test]
fn targets_longer_than_the_snapshot_states_is_refused() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    let snapshot = Snapshot {
        typ: role_type::SNAPSHOT.into(),
        expires: exp(Duration::days(1)),
        meta: BTreeMap::from([("targets".to_string(), FileMeta::of(&t))]),
        version: 1,
    };
    let keys = BTreeMap::from([(w.targets_key.public().id(), w.targets_key.public())]);
    let keyids = vec![w.targets_key.public().id()];
    let signers = Signers {
        keys: &keys,
        keyids: &keyids,
        threshold: 1,
    };
    let longer = [t.as_slice(), b" "].concat();
    let err =
        verify::verify_targets("targets", &signers, &snapshot, &longer, now(), None).unwrap_err();
    assert!(
        matches!(err, VerifyError::LengthMismatch { ref role, parent: "snapshot", expected, found }
            if role == "targets" && found == expected + 1),
        "{err}"
    );
}

// See: #8 item 6
#[test]
fn target_with_only_a_sha512_does_not_verify() {
    let w = World::new(1);
    let mut body = w.targets_body(1, &[("v1", b"m")], Duration::days(30));
    let mut meta = FileMeta::of(b"m");
    meta.hashes.remove("sha256");
    body.targets.insert("v1".into(), meta);
    let t = w.sign_targets("targets", &body, &w.targets_key);
    w.publish(1, 1, &t, &[]);
    let repo = w.update().unwrap();
    let err = repo.find_target("v1").unwrap_err();
    assert!(
        matches!(&err, VerifyError::InvalidTarget { role, target, reason }
            if role == "targets" && target == "v1" && reason.contains("expecting sha256")),
        "{err}"
    );
    assert!(repo.resolve_all().is_err());
}

// See: #8 item 6 (a sha256 of the wrong length is no digest either)
#[test]
fn target_with_a_short_sha256_does_not_verify() {
    let w = World::new(1);
    let mut body = w.targets_body(1, &[("v1", b"m")], Duration::days(30));
    body.targets.get_mut("v1").unwrap().hashes.insert(
        "sha256".into(),
        docker_trustacr::tuf::metadata::Base64Bytes(vec![1; 20]),
    );
    let t = w.sign_targets("targets", &body, &w.targets_key);
    w.publish(1, 1, &t, &[]);
    let err = w.update().unwrap().find_target("v1").unwrap_err();
    assert!(matches!(err, VerifyError::InvalidTarget { .. }), "{err}");
}

// See: #8 item 4
#[test]
fn server_timestamp_key_rotation_is_followed_through_the_new_root() {
    let mut w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.update().unwrap();
    // The server rotates its timestamp key: root v2, signed by the (unchanged) root key.
    let new_ts = SigningKey::generate_ed25519().unwrap();
    let root_cert = w.root_cert.clone();
    let v2 = w.root_doc(
        2,
        &root_cert,
        &w.snapshot_key.public(),
        &new_ts.public(),
        &[(&root_cert.id(), &w.root_key)],
    );
    w.serve_root(2, v2);
    w.timestamp_key = new_ts;
    w.publish(2, 2, &w.targets(1, &[("v1", b"m")], None), &[]);
    let counting = Counting::new(w.fetcher());
    let repo = w
        .update_through(&counting)
        .expect("a warm client follows the rotated timestamp key");
    assert_eq!(repo.root.root.version, 2);
    // The timestamp fails against the cached root, root.json is fetched, the update retried.
    let asked = counting.asked();
    assert_eq!(
        asked[..3],
        ["timestamp.json", "root.json", "timestamp.json"]
    );
    assert!(asked[3].starts_with("snapshot."), "{asked:?}");
    let cached =
        std::fs::read(w.cache.path().join(format!("tuf/{GUN}/metadata/root.json"))).unwrap();
    assert!(cached == w.root_bytes, "the new root is cached");
}

// See: #8 item 4 (the same for the snapshot key)
#[test]
fn server_snapshot_key_rotation_is_followed_through_the_new_root() {
    let mut w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.update().unwrap();
    let new_snap = SigningKey::generate_ed25519().unwrap();
    let root_cert = w.root_cert.clone();
    let v2 = w.root_doc(
        2,
        &root_cert,
        &new_snap.public(),
        &w.timestamp_key.public(),
        &[(&root_cert.id(), &w.root_key)],
    );
    w.serve_root(2, v2);
    w.snapshot_key = new_snap;
    w.publish(2, 2, &w.targets(1, &[("v1", b"m")], None), &[]);
    assert_eq!(w.update().unwrap().root.root.version, 2);
}

// See: #8 item 4 (a timestamp signed by an unknown key, with no newer root, stays refused)
#[test]
fn timestamp_by_an_unknown_key_without_a_newer_root_is_refused() {
    let mut w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.update().unwrap();
    w.timestamp_key = SigningKey::generate_ed25519().unwrap();
    w.publish(2, 2, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.refused_with(|e| matches!(e, VerifyError::Threshold { role, .. } if role == "timestamp"));
}

// See: #8 item 4 (trust pinning applies to a rotated root too)
#[test]
fn rotation_to_a_root_key_outside_the_pinning_is_refused() {
    let mut w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    let pin = RootTrust::PinnedCertIds(vec![w.root_cert.id()]);
    w.update_with(&pin).unwrap();
    let (new_key, new_cert) = new_root_key();
    let old_cert = w.root_cert.clone();
    let v2 = w.root_doc(
        2,
        &new_cert,
        &w.snapshot_key.public(),
        &w.timestamp_key.public(),
        &[(&old_cert.id(), &w.root_key), (&new_cert.id(), &new_key)],
    );
    w.serve_root(2, v2);
    w.publish(2, 2, &w.targets(1, &[("v1", b"m")], None), &[]);
    let before = w.cache_state();
    let err = w.update_with(&pin).unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::Pinning(_))),
        "{err}"
    );
    assert!(
        without_floors(before) == without_floors(w.cache_state()),
        "the refused rotation changed the cached root or targets"
    );
    // Without the pin the same, validly chained rotation is followed.
    assert_eq!(w.update().unwrap().root.root.version, 2);
}

// See: audit P1-M1 (ACR-like: the server holds timestamp and snapshot keys and names a root v2
// that only a fresh root key signs)
#[test]
fn root_v2_signed_only_by_a_fresh_key_is_refused_as_untrusted() {
    let mut w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.update().unwrap();
    let (new_key, new_cert) = new_root_key();
    let v2 = w.root_doc(
        2,
        &new_cert,
        &w.snapshot_key.public(),
        &w.timestamp_key.public(),
        &[(&new_cert.id(), &new_key)],
    );
    w.serve_root(2, v2);
    w.publish(2, 2, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.refused_with(|e| {
        matches!(
            e,
            VerifyError::UntrustedRoot {
                version: 2,
                valid: 0,
                threshold: 1
            }
        )
    });
}

// See: audit P1-M1 (second case: signed by the old key but not by its own new key)
#[test]
fn root_v2_not_signed_by_its_own_new_key_is_refused() {
    let mut w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.update().unwrap();
    let (_new_key, new_cert) = new_root_key();
    let old_cert = w.root_cert.clone();
    let v2 = w.root_doc(
        2,
        &new_cert,
        &w.snapshot_key.public(),
        &w.timestamp_key.public(),
        &[(&old_cert.id(), &w.root_key)],
    );
    w.serve_root(2, v2);
    w.publish(2, 2, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.refused_with(
        |e| matches!(e, VerifyError::Threshold { role, valid: 0, threshold: 1 } if role == "root"),
    );
}

// See: #8 item 17 (a hostile first root's CPU cost is bounded)
#[test]
fn first_root_with_thousands_of_signatures_is_refused_before_checking_them() {
    let w = World::new(1);
    let mut v: serde_json::Value = serde_json::from_slice(&w.root_bytes).unwrap();
    let sig = v["signatures"][0].clone();
    v["signatures"] = serde_json::Value::Array(vec![sig; 5000]);
    let bytes = serde_json::to_vec(&v).unwrap();
    let started = std::time::Instant::now();
    let err = verify::trust_first_root(GUN, &bytes, now(), &RootTrust::Tofu).unwrap_err();
    assert!(
        matches!(err, VerifyError::TooMany { ref role, what: "signatures", found: 5000, limit }
            if role == "root" && limit == MAX_SIGNATURES),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

// See: #8 item 17 (a root key carrying thousands of certificates is refused before parsing)
#[test]
fn root_key_with_thousands_of_certificates_is_refused() {
    let w = World::new(1);
    let mut v: serde_json::Value = serde_json::from_slice(&w.root_bytes).unwrap();
    let id = w.root_cert.id();
    let pem = String::from_utf8(w.root_cert.public.clone()).unwrap();
    let bloated = pem.repeat(3000);
    use base64::Engine as _;
    v["signed"]["keys"][&id]["keyval"]["public"] = base64::engine::general_purpose::STANDARD
        .encode(bloated)
        .into();
    let bytes = serde_json::to_vec(&v).unwrap();
    let started = std::time::Instant::now();
    let err = verify::trust_first_root(GUN, &bytes, now(), &RootTrust::Tofu).unwrap_err();
    assert!(
        err.to_string()
            .contains("3000 certificates, more than the 8"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

// See: #8 item 17 (parse each certificate once: the checks of one verification share the parse)
#[test]
fn a_first_root_and_a_cold_update_parse_the_root_certificate_once() {
    use docker_trustacr::tuf::keys::certificate_chain_parses;
    let w = World::new(1);
    let pinned = RootTrust::PinnedCertIds(vec![w.root_cert.id()]);
    for trust in [RootTrust::Tofu, pinned] {
        let before = certificate_chain_parses();
        verify::trust_first_root(GUN, &w.root_bytes, now(), &trust).unwrap();
        assert_eq!(certificate_chain_parses() - before, 1, "{trust:?}");
    }
    // The whole update: the root's certificate rules, its self-signature, the signer list.
    let before = certificate_chain_parses();
    w.publish(1, 1, &w.targets(1, &[("v1", b"one")], None), &[]);
    w.update().unwrap();
    assert_eq!(certificate_chain_parses() - before, 1);
}

/// Runs the trust core alone on `src`.
fn core_update(
    src: &MemSource,
) -> Result<
    docker_trustacr::tuf::trusted::Verified,
    docker_trustacr::tuf::trusted::UpdateError<std::convert::Infallible>,
> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(docker_trustacr::tuf::trusted::update(
            src,
            GUN,
            now(),
            &RootTrust::Tofu,
            &docker_trustacr::tuf::verify::Limits::default(),
        ))
}

// See: #13 item 1 (the core runs without the client: it asks its source for every byte, and
// keeps floors early only under a cached root)
#[test]
fn trust_core_alone_asks_for_each_file_and_keeps_floors_only_under_a_cached_root() {
    let w = world_with_releases();
    let src = MemSource::from_dir(w.server.path());
    let cold = core_update(&src).unwrap();
    let fetched: Vec<String> = src
        .log()
        .into_iter()
        .filter(|l| l.starts_with("fetch ") || l.starts_with("keep "))
        .collect();
    assert_eq!(fetched[..2], ["fetch root.json", "fetch timestamp.json"]);
    assert!(fetched[2].starts_with("fetch snapshot."), "{fetched:?}");
    assert!(fetched[3].starts_with("fetch targets."), "{fetched:?}");
    assert!(
        fetched[4].starts_with("fetch targets/releases."),
        "{fetched:?}"
    );
    assert_eq!(
        fetched.len(),
        5,
        "a cold update keeps nothing early: {fetched:?}"
    );
    let roles: Vec<&str> = cold.writes.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        [
            "root",
            "timestamp",
            "snapshot",
            "targets",
            "targets/releases",
            docker_trustacr::tuf::trusted::RECORD
        ]
    );

    // Warm: the caller cached the writes; the core fetches the timestamp only and keeps the
    // floors as they verify.
    *src.cache.lock().unwrap() = cold.writes.into_iter().collect();
    src.log.lock().unwrap().clear();
    let warm = core_update(&src).unwrap();
    let io: Vec<String> = src
        .log()
        .into_iter()
        .filter(|l| l.starts_with("fetch ") || l.starts_with("keep "))
        .collect();
    assert_eq!(
        io,
        ["fetch timestamp.json", "keep timestamp", "keep snapshot"]
    );
    assert_eq!(
        warm.repo.find_target("v1").unwrap().unwrap().role(),
        "targets/releases"
    );
}

// See: #8 item 17 (the snapshot floor too)
#[test]
fn snapshot_floor_advances_even_when_targets_is_refused() {
    let w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.update().unwrap();
    w.publish(2, 2, &w.targets(2, &[("v1", b"n")], None), &[]);
    std::fs::remove_file(w.server.path().join("targets.json")).unwrap();
    w.refused_with(|e| matches!(e, VerifyError::Withheld { role } if role == "targets"));
    assert_eq!(w.cached_version("timestamp"), Some(2));
    assert_eq!(w.cached_version("snapshot"), Some(2));
    assert_eq!(
        w.cached_version("targets"),
        Some(1),
        "targets did not verify"
    );
}

/// The current root of `w`, as a reader trusts it.
fn trusted_root_of(w: &World) -> verify::TrustedRoot {
    verify::trust_first_root(GUN, &w.root_bytes, now(), &RootTrust::Tofu).unwrap()
}

// See: #9 item 5 (a rotation never publishes a root that the old root's threshold did not sign)
#[test]
fn rotation_refuses_to_build_a_root_without_the_old_root_threshold() {
    use docker_trustacr::tuf::rotation::{self, Current, Lifetimes, RootSigner, RotationError};
    let w = World::new(1);
    // A root whose root role needs two of two certificates.
    let (second, second_cert) = new_root_key();
    let mut root: docker_trustacr::tuf::metadata::Root = serde_json::from_value(
        serde_json::from_slice::<serde_json::Value>(&w.root_bytes).unwrap()["signed"].clone(),
    )
    .unwrap();
    root.keys.insert(second_cert.id(), second_cert.clone());
    let role = root.roles.get_mut("root").unwrap();
    role.keyids.push(second_cert.id());
    role.threshold = 2;
    let bytes = docker_trustacr::notary::publish::sign_role(
        "root",
        &root,
        &[
            (&w.root_cert.id(), &w.root_key),
            (&second_cert.id(), &second),
        ],
    )
    .unwrap();
    let trusted = verify::trust_first_root(GUN, &bytes, now(), &RootTrust::Tofu).unwrap();
    let new_key = SigningKey::generate_ed25519().unwrap();
    let current = |signers| Current {
        gun: GUN,
        root: &trusted,
        signers,
        trust: &RootTrust::Tofu,
        now: now(),
        lifetimes: Lifetimes::default(),
    };

    // One root key of two: refused before anything is signed.
    let one = [RootSigner {
        keyid: w.root_cert.id(),
        key: &w.root_key,
    }];
    let err = rotation::rotate_targets(&current(&one), None, &new_key).unwrap_err();
    assert!(
        matches!(
            err,
            RotationError::RootThreshold {
                threshold: 2,
                have: 1,
                ..
            }
        ),
        "{err}"
    );

    // Two "root keys", one of them not the key its ID names: the reader's own check refuses
    // the result, so it is never returned for upload.
    let impostor = SigningKey::generate_p256().unwrap();
    let forged = [
        RootSigner {
            keyid: w.root_cert.id(),
            key: &w.root_key,
        },
        RootSigner {
            keyid: second_cert.id(),
            key: &impostor,
        },
    ];
    for err in [
        rotation::rotate_targets(&current(&forged), None, &new_key).unwrap_err(),
        rotation::rotate_root(&current(&forged), &SigningKey::generate_p256().unwrap())
            .unwrap_err(),
    ] {
        assert!(matches!(err, RotationError::NotFollowable { .. }), "{err}");
    }
}

// See: #9 item 5 (the rotated root is signed by the old and the new root key)
#[test]
fn rotated_root_and_targets_are_followed_by_a_reader_of_the_old_root() {
    use docker_trustacr::tuf::rotation::{self, Current, Lifetimes, RootSigner};
    let w = World::new(1);
    let trusted = trusted_root_of(&w);
    let signers = [RootSigner {
        keyid: w.root_cert.id(),
        key: &w.root_key,
    }];
    let cur = Current {
        gun: GUN,
        root: &trusted,
        signers: &signers,
        trust: &RootTrust::Tofu,
        now: now(),
        lifetimes: Lifetimes::default(),
    };

    let new_root_key = SigningKey::generate_p256().unwrap();
    let r = rotation::rotate_root(&cur, &new_root_key).unwrap();
    let next = verify::rotate_root(&trusted, GUN, r.root(), now(), Some(&RootTrust::Tofu)).unwrap();
    assert_eq!(next.root.version, 2);
    assert_eq!(
        next.root.roles["root"].keyids,
        vec![r.new_keyid().to_string()]
    );
    // The old certificate stays in keys, as notary keeps it.
    assert!(next.root.keys.contains_key(&w.root_cert.id()));
    // A root signed by the new key alone would not be followed: the old key's signature is
    // what carries a reader of version 1 over.
    let file = docker_trustacr::tuf::metadata::SignedFile::parse("root", r.root()).unwrap();
    let ids: Vec<&str> = file.signatures.iter().map(|s| s.keyid.as_str()).collect();
    assert!(ids.contains(&w.root_cert.id().as_str()) && ids.contains(&r.new_keyid()));

    // Targets: every target kept, version + 1, signed by the new key the new root lists.
    let targets = docker_trustacr::tuf::metadata::Targets {
        typ: role_type::TARGETS.into(),
        delegations: Default::default(),
        expires: exp(Duration::days(30)),
        targets: BTreeMap::from([
            ("v1".to_string(), target(b"one")),
            ("v2".into(), target(b"two")),
        ]),
        version: 7,
    };
    let new_targets_key = SigningKey::generate_ed25519().unwrap();
    let r = rotation::rotate_targets(&cur, Some(&targets), &new_targets_key).unwrap();
    let next = verify::rotate_root(&trusted, GUN, r.root(), now(), Some(&RootTrust::Tofu)).unwrap();
    assert_eq!(
        next.root.roles["targets"].keyids,
        vec![new_targets_key.public().id()]
    );
    assert!(
        !next.root.keys.contains_key(&w.targets_key.public().id()),
        "the old targets key leaves keys"
    );
    let (_, bytes) = &r.files()[1];
    let file = docker_trustacr::tuf::metadata::SignedFile::parse("targets", bytes).unwrap();
    let authorised = next.root.roles["targets"]
        .keyids
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        verify::count_valid_signatures("targets", &file, &next.root.keys, &authorised).unwrap(),
        1
    );
    let signed: docker_trustacr::tuf::metadata::Targets = file.into_typed("targets").unwrap();
    assert_eq!(signed.version, 8);
    assert_eq!(signed.targets, targets.targets);
    assert!(
        signed.expires.0 > now() + Duration::days(365),
        "the expiry is renewed"
    );
}

/// `verify`'s update: every role verified in full, only `tag`'s entries built, at time `at`.
fn update_tag_at<F: docker_trustacr::notary::client::Fetch + Sync>(
    w: &World,
    fetch: &F,
    tag: &str,
    at: time::OffsetDateTime,
) -> Result<docker_trustacr::notary::client::Repo, ClientError> {
    let cache = docker_trustacr::notary::cache::Cache::new(w.cache.path(), GUN, 100 << 20).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(docker_trustacr::notary::client::update_tag(
            fetch,
            &cache,
            GUN,
            tag,
            at,
            &RootTrust::Tofu,
            &verify::Limits::default(),
        ))
}

fn cached_file(w: &World, role: &str) -> std::path::PathBuf {
    w.cache
        .path()
        .join(format!("tuf/{GUN}/metadata/{role}.json"))
}

// See: #12 item 5 (the warm path reads the cached targets only when its hashes are the ones the
// freshly verified snapshot lists; a local edit, even to an older genuinely signed version, is
// not trusted but re-fetched, and the cache repaired)
#[test]
fn tampered_cached_targets_under_an_unchanged_timestamp_is_refetched_not_trusted() {
    let w = World::new(1);
    let old = w.targets(1, &[("v1", b"old")], None);
    w.publish(1, 1, &old, &[]);
    w.update().unwrap();
    let genuine = w.targets(2, &[("v1", b"new")], None);
    w.publish(2, 2, &genuine, &[]);
    w.update().unwrap();
    let want = target(b"new").sha256().unwrap().to_vec();
    let mut edited = genuine.clone();
    let at = edited.windows(2).position(|p| p == b"v1").unwrap();
    edited[at + 1] = b'9';
    // An older, validly signed targets; a byte-edited copy of the current one.
    for tampered in [old, edited] {
        std::fs::write(cached_file(&w, "targets"), &tampered).unwrap();
        let counting = Counting::new(w.fetcher());
        let repo = update_tag_at(&w, &counting, "v1", now()).unwrap();
        let asked = counting.asked();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert_eq!(asked[0], "timestamp.json");
        assert!(asked[1].starts_with("targets."), "{asked:?}");
        let d = repo.find_target("v1").unwrap().unwrap();
        assert_eq!(d.sha256().to_vec(), want);
        assert_eq!(std::fs::read(cached_file(&w, "targets")).unwrap(), genuine);
    }
    // And when the server does not serve it, the edited copy is refused, not used.
    std::fs::write(cached_file(&w, "targets"), b"{\"signed\":{}}").unwrap();
    std::fs::remove_file(w.server.path().join("targets.json")).unwrap();
    let e = update_tag_at(&w, &w.fetcher(), "v1", now()).unwrap_err();
    assert!(
        matches!(&e, ClientError::Verify(VerifyError::Withheld { role }) if role == "targets"),
        "{e}"
    );
}

/// A world whose targets role (tags t0…t3999) is big enough to be hashed on a second thread.
fn world_with_big_targets() -> (World, Vec<u8>) {
    let w = World::new(1);
    let names: Vec<String> = (0..4000).map(|i| format!("t{i}")).collect();
    let tags: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    let genuine = w.targets(1, &tags, None);
    assert!(genuine.len() >= 256 * 1024, "{} bytes", genuine.len());
    (w, genuine)
}

// See: #12 item 5 (a role of 256 KiB or more is hashed on a second thread while it is parsed:
// an edited cached copy is still caught by its hash and re-fetched, a served edit is refused,
// an over-long cached copy is caught before it is parsed, and nothing unverified is cached)
#[test]
fn big_targets_hashed_on_a_second_thread_still_refetches_edits_and_refuses_served_ones() {
    let (w, genuine) = world_with_big_targets();
    w.publish(1, 1, &genuine, &[]);
    w.update().unwrap();
    let want = target(b"t3999").sha256().unwrap().to_vec();
    let resolve = |fetch: &Counting<DirFetch>| {
        update_tag_at(&w, fetch, "t3999", now()).map(|r| {
            let d = r.find_target("t3999").unwrap().unwrap();
            d.sha256().to_vec()
        })
    };
    // Warm and unchanged: the cached copy is used.
    let counting = Counting::new(w.fetcher());
    assert_eq!(resolve(&counting).unwrap(), want);
    assert_eq!(counting.asked(), ["timestamp.json"]);

    // A byte edit that keeps the JSON valid (and unsigned): re-fetched, the cache repaired.
    let mut edited = genuine.clone();
    let at = edited.windows(6).position(|p| p == b"\"t3999").unwrap();
    edited[at + 2] = b'4';
    std::fs::write(cached_file(&w, "targets"), &edited).unwrap();
    let counting = Counting::new(w.fetcher());
    assert_eq!(resolve(&counting).unwrap(), want);
    let asked = counting.asked();
    assert!(
        asked.len() == 2 && asked[1].starts_with("targets."),
        "{asked:?}"
    );
    assert_eq!(std::fs::read(cached_file(&w, "targets")).unwrap(), genuine);

    // The server serves the edit (and the cache has none): a hash mismatch, nothing cached.
    std::fs::remove_file(cached_file(&w, "targets")).unwrap();
    std::fs::write(w.server.path().join("targets.json"), &edited).unwrap();
    let e = update_tag_at(&w, &w.fetcher(), "t3999", now()).unwrap_err();
    assert!(
        matches!(&e, ClientError::Verify(VerifyError::HashMismatch { role, .. }) if role == "targets"),
        "{e}"
    );
    assert!(!cached_file(&w, "targets").exists());

    // A cached copy one byte longer than the snapshot states: caught on its length before it
    // is parsed, re-fetched.
    std::fs::write(w.server.path().join("targets.json"), &genuine).unwrap();
    let mut longer = genuine.clone();
    longer.push(b' ');
    std::fs::write(cached_file(&w, "targets"), &longer).unwrap();
    let counting = Counting::new(w.fetcher());
    assert_eq!(resolve(&counting).unwrap(), want);
    assert_eq!(counting.asked().len(), 2, "{:?}", counting.asked());
    assert_eq!(std::fs::read(cached_file(&w, "targets")).unwrap(), genuine);
}

#[test]
fn big_targets_are_refused_on_either_hash_alone_and_without_a_sha256() {
    // A big role is hashed on two threads (sha256 here, sha512 beside): each hash must still
    // refuse on its own, sha256's error first, and a snapshot that lists no sha256 must still
    // be refused when its sha512 matches.
    let (w, genuine) = world_with_big_targets();
    let serve = |version: u64, targets_meta: FileMeta| {
        let meta = BTreeMap::from([
            ("root".to_string(), FileMeta::of(&w.root_bytes)),
            ("targets".to_string(), targets_meta),
        ]);
        let snap = w.snapshot_of(version, meta);
        w.write("targets", &genuine);
        w.write("snapshot", &snap);
        w.write("timestamp", &w.timestamp(version, &snap, Duration::days(7)));
    };
    let wrong = |meta: &mut FileMeta, alg: &str| meta.hashes.get_mut(alg).unwrap().0[5] ^= 1;
    let mismatch = |alg: &'static str| {
        move |e: &VerifyError| {
            matches!(e, VerifyError::HashMismatch { role, algorithm, .. }
                if role == "targets" && algorithm == alg)
        }
    };

    let mut meta = FileMeta::of(&genuine);
    wrong(&mut meta, "sha512");
    serve(1, meta);
    w.refused(mismatch("sha512"));

    let mut meta = FileMeta::of(&genuine);
    wrong(&mut meta, "sha256");
    serve(2, meta);
    w.refused(mismatch("sha256"));

    let mut meta = FileMeta::of(&genuine);
    wrong(&mut meta, "sha256");
    wrong(&mut meta, "sha512");
    serve(3, meta);
    w.refused(mismatch("sha256"));

    let mut meta = FileMeta::of(&genuine);
    meta.hashes.remove("sha256");
    serve(4, meta);
    w.refused(|e| matches!(e, VerifyError::MissingMeta { role, .. } if role == "targets"));

    serve(5, FileMeta::of(&genuine));
    let repo = w.update().unwrap();
    assert!(repo.find_target("t3999").unwrap().is_some());
}

/// Signatures checked by one `update_tag_at` of `v1` on this thread, and its result.
fn checked_update(
    w: &World,
) -> (
    u64,
    Result<docker_trustacr::notary::client::Repo, ClientError>,
) {
    let before = verify::signature_checks();
    let r = update_tag_at(w, &w.fetcher(), "v1", now());
    (verify::signature_checks() - before, r)
}

fn resolves_v1(r: Result<docker_trustacr::notary::client::Repo, ClientError>) -> Vec<u8> {
    r.unwrap()
        .find_target("v1")
        .unwrap()
        .unwrap()
        .sha256()
        .to_vec()
}

// See: #12 item 5 (the unchanged-timestamp fast path: with the fresh timestamp byte-identical
// to the cached one and the record of the last full update naming exactly this root, timestamp
// and snapshot, the cached targets roles' signatures are not checked again; everything else
// is, and any other set, or a cached file that does not match, takes the full path)
#[test]
fn an_unchanged_verified_set_skips_only_the_targets_signatures_and_any_other_set_checks_them() {
    let w = world_with_releases();
    let want = target(b"new").sha256().unwrap().to_vec();
    // Cold: root, timestamp, snapshot, targets, targets/releases.
    let (cold, r) = checked_update(&w);
    assert_eq!((cold, resolves_v1(r)), (5, want.clone()));
    // Warm, unchanged: root, timestamp and snapshot only.
    let (fast, r) = checked_update(&w);
    assert_eq!((fast, resolves_v1(r)), (3, want.clone()));
    let record = std::fs::read(cached_file(&w, docker_trustacr::tuf::trusted::RECORD)).unwrap();

    // A new timestamp: the full path, then the fast one again.
    let t = w.targets(1, &[("v1", b"old")], Some(vec!["".into()]));
    w.publish(
        2,
        2,
        &t,
        &[("targets/releases", &w.releases(&[("v1", b"new")]))],
    );
    assert_eq!(checked_update(&w).0, 5);
    assert_eq!(checked_update(&w).0, 3);
    // The record of another set: the full path.
    std::fs::write(
        cached_file(&w, docker_trustacr::tuf::trusted::RECORD),
        &record,
    )
    .unwrap();
    let (n, r) = checked_update(&w);
    assert_eq!((n, resolves_v1(r)), (5, want.clone()));
    // A record that is not one: the full path.
    std::fs::write(
        cached_file(&w, docker_trustacr::tuf::trusted::RECORD),
        b"{\"set\":",
    )
    .unwrap();
    assert_eq!(checked_update(&w).0, 5);

    // A cached snapshot edited under the unchanged timestamp: fetched again, the full path.
    assert_eq!(checked_update(&w).0, 3);
    let snap = cached_file(&w, "snapshot");
    let genuine = std::fs::read(&snap).unwrap();
    let mut edited = genuine.clone();
    let at = edited.windows(7).position(|p| p == b"version").unwrap();
    edited[at] = b'V';
    std::fs::write(&snap, &edited).unwrap();
    let (n, r) = checked_update(&w);
    assert_eq!((n, resolves_v1(r)), (5, want.clone()));
    assert_eq!(std::fs::read(&snap).unwrap(), genuine);

    // Cached targets/releases replaced by a differently signed copy under the same record:
    // its hash is not the snapshot's, so it is fetched again and its signature checked.
    assert_eq!(checked_update(&w).0, 3);
    let rel = cached_file(&w, "targets/releases");
    let genuine = std::fs::read(&rel).unwrap();
    std::fs::write(&rel, w.releases(&[("v1", b"evil")])).unwrap();
    let (n, r) = checked_update(&w);
    assert_eq!((n, resolves_v1(r)), (4, want));
    assert_eq!(std::fs::read(&rel).unwrap(), genuine);
}

// See: #12 item 5 (a forged record gains nothing: a removed signer's delegation, whose bytes
// are unchanged, is still left out on the fast path, because signers are still counted against
// the keys the parent authorises now)
#[test]
fn a_forged_record_does_not_bring_back_a_removed_signers_delegation() {
    let w = World::new(1);
    // targets signs v1 = "old" and delegates to targets/releases with no keys (the signer was
    // removed, as `docker trust signer remove` leaves it); releases still signs v1 = "new".
    let mut body = w.targets_body(1, &[("v1", b"old")], Duration::days(30));
    w.delegate_to_releases_key(
        &mut body.delegations,
        "targets/releases",
        None,
        vec!["".into()],
    );
    let t = w.sign_targets("targets", &body, &w.targets_key);
    let rel = w.releases(&[("v1", b"new")]);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    let old = target(b"old").sha256().unwrap().to_vec();
    let (_, r) = checked_update(&w);
    assert_eq!(resolves_v1(r), old);
    // A local writer puts the delegation into the record of this very set.
    let path = cached_file(&w, docker_trustacr::tuf::trusted::RECORD);
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(record["signed"], serde_json::json!(["targets"]));
    record["signed"] = serde_json::json!(["targets", "targets/releases"]);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let (n, r) = checked_update(&w);
    assert_eq!(n, 3, "the fast path (root, timestamp, snapshot)");
    let repo = r.unwrap();
    assert_eq!(
        repo.find_target("v1").unwrap().unwrap().sha256().to_vec(),
        old
    );
    assert!(
        repo.skipped
            .iter()
            .any(|(role, why)| role == "targets/releases" && why.contains("threshold")),
        "{:?}",
        repo.skipped
    );
}

// See: #12 item 5 (expiry is checked on the warm path, the unchanged-timestamp fast path
// included: a cached role that matches the snapshot but has expired since is refused, and an
// expired cached delegation is left out)
#[test]
fn expired_cached_roles_are_refused_on_the_warm_single_tag_path() {
    let w = World::new(1);
    let mut body = w.targets_body(1, &[("v1", b"old")], Duration::days(10));
    let id = w.releases_key.public().id();
    w.delegate_to_releases_key(
        &mut body.delegations,
        "targets/releases",
        Some(vec![id]),
        vec!["".into()],
    );
    let t = w.sign_targets("targets", &body, &w.targets_key);
    let rel_body = w.targets_body(1, &[("v1", b"new")], Duration::days(5));
    let rel = w.sign_targets("targets/releases", &rel_body, &w.releases_key);
    // A timestamp that outlives everything, so the roles under it are what expires.
    let snap = w.snapshot(1, &[("targets", &t), ("targets/releases", &rel)]);
    w.write("targets", &t);
    w.write("targets/releases", &rel);
    w.write("snapshot", &snap);
    w.write("timestamp", &w.timestamp(1, &snap, Duration::days(90)));
    assert_eq!(
        update_tag_at(&w, &w.fetcher(), "v1", now())
            .unwrap()
            .find_target("v1")
            .unwrap()
            .unwrap()
            .role(),
        "targets/releases"
    );

    // Day 7: releases (5 days) expired; it is left out and named, targets still resolves.
    let counting = Counting::new(w.fetcher());
    let repo = update_tag_at(&w, &counting, "v1", now() + Duration::days(7)).unwrap();
    assert_eq!(counting.asked(), ["timestamp.json"], "the warm path");
    assert_eq!(repo.find_target("v1").unwrap().unwrap().role(), "targets");
    assert!(
        repo.skipped[0].0 == "targets/releases" && repo.skipped[0].1.contains("expired"),
        "{:?}",
        repo.skipped
    );

    // Day 12: targets (10 days) expired: refused, although its bytes match the snapshot, and
    // on the unchanged-timestamp fast path (root, timestamp and snapshot signatures only).
    let counting = Counting::new(w.fetcher());
    let before = verify::signature_checks();
    let e = update_tag_at(&w, &counting, "v1", now() + Duration::days(12)).unwrap_err();
    assert_eq!(verify::signature_checks() - before, 3, "the fast path");
    assert_eq!(counting.asked(), ["timestamp.json"], "the warm path");
    assert!(
        matches!(&e, ClientError::Verify(VerifyError::Expired { role, .. }) if role == "targets"),
        "{e}"
    );
}

// See: #12 item 5 (one tag's update resolves every tag as the full update does: delegation
// order, paths, and tags nobody signs)
#[test]
fn single_tag_update_resolves_each_tag_as_the_full_update_does() {
    let w = World::new(1);
    let t = w.targets(
        1,
        &[("v1", b"old"), ("v2", b"two"), ("rel-x", b"t")],
        Some(vec!["rel-".into()]),
    );
    // releases may sign rel-* only: its v1 is outside its paths and must not win.
    let rel = w.releases(&[("v1", b"new"), ("rel-x", b"r"), ("rel-y", b"y")]);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    let full = w.update().unwrap();
    assert_eq!(full.only, None);
    for tag in ["v1", "v2", "rel-x", "rel-y", "absent"] {
        let one = update_tag_at(&w, &w.fetcher(), tag, now()).unwrap();
        assert_eq!(one.only.as_deref(), Some(tag));
        assert_eq!(
            one.find_target(tag).unwrap(),
            full.find_target(tag).unwrap(),
            "{tag}"
        );
    }
    assert_eq!(
        full.find_target("v1").unwrap().unwrap().sha256().to_vec(),
        target(b"old").sha256().unwrap().to_vec()
    );
}

// See: #12 item 5 (signatures are checked over the served `signed` bytes when they are
// canonical, else over the canonical form, as Notary does: Go's files escape `<`, `>` and `&`)
#[test]
fn targets_whose_served_bytes_are_not_canonical_verify_through_the_canonical_form() {
    let w = World::new(1);
    // encode_signed escapes `<` as Go does, so the served bytes differ from the signed ones.
    let t = w.targets(1, &[("a<b&c>", b"html"), ("v1", b"one")], None);
    assert!(String::from_utf8_lossy(&t).contains("\\u003c"));
    w.publish(1, 1, &t, &[]);
    let repo = w.update().unwrap();
    assert!(repo.find_target("a<b&c>").unwrap().is_some());
    let one = update_tag_at(&w, &w.fetcher(), "a<b&c>", now()).unwrap();
    assert_eq!(
        one.find_target("a<b&c>").unwrap(),
        repo.find_target("a<b&c>").unwrap()
    );
    // A changed digest is refused on either path (served bytes canonical or not).
    let canonical = w.targets(3, &[("v1", b"one")], None);
    for (tag, content, file) in [("a<b&c>", &b"html"[..], t), ("v1", b"one", canonical)] {
        let meta = serde_json::to_string(&target(content)).unwrap();
        let b64 = meta.split('"').find(|s| s.len() == 44).unwrap().to_string();
        let mut edited = file.clone();
        let pos = edited
            .windows(44)
            .position(|p| p == b64.as_bytes())
            .unwrap();
        edited[pos] = if edited[pos] == b'A' { b'B' } else { b'A' };
        w.publish(2, 2, &edited, &[]);
        let e = update_tag_at(&w, &w.fetcher(), tag, now()).unwrap_err();
        assert!(
            matches!(&e, ClientError::Verify(VerifyError::Threshold { role, .. }) if role == "targets"),
            "{tag}: {e}"
        );
    }
}
