//! Attacks a hostile notary server could mount, on repositories built here with keys the test
//! holds. Each must be refused with an error naming the role and the check, and must leave the
//! cache exactly as it was.

mod common;

use std::path::Path;

use common::*;
use docker_trustacr::keystore::keys::SigningKey;
use docker_trustacr::notary::client::ClientError;
use docker_trustacr::registry::HttpError;
use docker_trustacr::tuf::verify::{RootTrust, VerifyError};
use time::Duration;

#[test]
fn honest_repository_verifies_and_warm_update_uses_the_cache() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"manifest-1")], None);
    w.publish(1, 1, &t, &[]);
    let repo = w.update().unwrap();
    let found = repo.find_target("v1").unwrap().unwrap();
    assert_eq!(
        found.sha256().as_slice(),
        target(b"manifest-1").sha256().unwrap()
    );
    assert_eq!(found.size(), b"manifest-1".len() as u64);
    assert!(w.cache_state().len() >= 4);

    // Warm: only the timestamp is fetched, and the rest really comes from the cache (the server
    // no longer has it).
    std::fs::remove_file(w.server.path().join("snapshot.json")).unwrap();
    std::fs::remove_file(w.server.path().join("targets.json")).unwrap();
    let counting = Counting::new(w.fetcher());
    let repo = w.update_through(&counting).unwrap();
    assert_eq!(counting.asked(), ["timestamp.json"]);
    assert_eq!(
        repo.find_target("v1").unwrap().unwrap().sha256().as_slice(),
        target(b"manifest-1").sha256().unwrap()
    );
}

#[test]
fn timestamp_rollback_is_refused() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    let snap = w.snapshot(1, &[("targets", &t)]);
    w.write("targets", &t);
    w.write("snapshot", &snap);
    let old_ts = w.timestamp(1, &snap, Duration::days(7));
    w.write("timestamp", &w.timestamp(2, &snap, Duration::days(7)));
    w.update().unwrap();
    w.write("timestamp", &old_ts);
    let msg = w.refused(
        |e| matches!(e, VerifyError::Rollback { role, trusted: 2, new: 1 } if role == "timestamp"),
    );
    assert!(
        msg.contains("timestamp") && msg.contains("rollback"),
        "{msg}"
    );
}

#[test]
fn snapshot_rollback_is_refused() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    w.publish(1, 2, &t, &[]);
    w.update().unwrap();
    // A fresh, validly signed timestamp pointing at an older snapshot version.
    w.publish(2, 1, &t, &[]);
    w.refused(|e| matches!(e, VerifyError::Rollback { role, .. } if role == "snapshot"));
}

#[test]
fn targets_rollback_is_refused() {
    let w = World::new(1);
    w.publish(1, 1, &w.targets(2, &[("v1", b"new")], None), &[]);
    w.update().unwrap();
    w.publish(2, 2, &w.targets(1, &[("v1", b"old")], None), &[]);
    w.refused(
        |e| matches!(e, VerifyError::Rollback { role, trusted: 2, new: 1 } if role == "targets"),
    );
}

#[test]
fn mix_and_match_targets_is_refused_by_the_snapshot_hash() {
    let w = World::new(1);
    let t1 = w.targets(1, &[("v1", b"one")], None);
    let t2 = w.targets(2, &[("v1", b"two")], None);
    w.publish(1, 1, &t1, &[]);
    // The server serves targets v2 while the snapshot vouches for v1.
    w.write("targets", &t2);
    w.refused(|e| matches!(e, VerifyError::HashMismatch { role, parent: "snapshot", .. } if role == "targets"));
}

#[test]
fn snapshot_not_matching_the_timestamp_is_refused() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    w.publish(1, 1, &t, &[]);
    // Same length as the listed snapshot (only the version digit differs), other hash.
    let other = w.snapshot(7, &[("targets", &t)]);
    w.write("snapshot", &other);
    w.refused(|e| matches!(e, VerifyError::HashMismatch { role, parent: "timestamp", .. } if role == "snapshot"));
    // Longer than listed: cut off at the listed length before it is even parsed.
    let listed = other.len() as u64;
    w.write("snapshot", &[other.as_slice(), b"    "].concat());
    let before = w.cache_state();
    let err = w.update().unwrap_err();
    assert!(
        matches!(err, ClientError::Http(HttpError::TooLarge { limit, .. }) if limit == listed),
        "{err}"
    );
    assert!(
        without_floors(before) == without_floors(w.cache_state()),
        "a refused update changed the cache"
    );
}

#[test]
fn expired_timestamp_is_refused_as_a_freeze() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"m")], None);
    let snap = w.snapshot(1, &[("targets", &t)]);
    w.write("targets", &t);
    w.write("snapshot", &snap);
    w.write("timestamp", &w.timestamp(1, &snap, Duration::seconds(-60)));
    w.refused(|e| matches!(e, VerifyError::Expired { role, .. } if role == "timestamp"));
}

#[test]
fn targets_threshold_not_met_is_refused() {
    let w = World::new(2);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    let msg = w.refused(|e| matches!(e, VerifyError::Threshold { role, valid: 1, threshold: 2 } if role == "targets"));
    assert!(msg.contains("threshold"), "{msg}");
}

#[test]
fn delegation_signing_outside_its_paths_is_ignored_and_named() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"admin")], Some(vec!["release-".into()]));
    let rel = w.releases(&[("v1", b"evil")]);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    let repo = w.update().unwrap();
    // The evil entry is not used: v1 resolves to what targets signs.
    let found = repo.find_target("v1").unwrap().unwrap();
    assert_eq!(found.role(), "targets");
    assert_eq!(
        found.sha256().as_slice(),
        target(b"admin").sha256().unwrap()
    );
    assert_eq!(repo.skipped.len(), 1);
    let (role, why) = &repo.skipped[0];
    assert_eq!(role, "targets/releases");
    assert!(why.contains("outside its delegated paths"), "{why}");
}

#[test]
fn delegation_within_its_paths_wins_lookups_as_in_docker() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"admin")], Some(vec!["".into()]));
    let rel = w.releases(&[("v1", b"released")]);
    w.publish(1, 1, &t, &[("targets/releases", &rel)]);
    let repo = w.update().unwrap();
    let found = repo.find_target("v1").unwrap().unwrap();
    assert_eq!(found.role(), "targets/releases");
    assert_eq!(
        found.sha256().as_slice(),
        target(b"released").sha256().unwrap()
    );
}

#[test]
fn endless_timestamp_is_cut_off_at_the_limit() {
    let w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.write("timestamp", &vec![b' '; 2 * 1024 * 1024]);
    let before = w.cache_state();
    let err = w.update().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Http(HttpError::TooLarge { limit: 1048576, .. })
        ),
        "{err}"
    );
    assert!(
        before == w.cache_state(),
        "a refused update changed the cache"
    );
}

#[test]
fn root_pinned_to_another_certificate_is_refused() {
    let w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    let err = w
        .update_with(&RootTrust::PinnedCertIds(vec!["0".repeat(64)]))
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::Pinning(_))),
        "{err}"
    );
    assert!(w.cache_state().is_empty());
    // Pinning the right certificate ID works.
    w.update_with(&RootTrust::PinnedCertIds(vec![w.root_cert.id()]))
        .unwrap();
}

/// A CA and a root certificate for GUN issued by it, made with openssl as an enterprise PKI
/// would; returns (CA PEM, root key, root certificate PEM).
fn ca_issued_root(dir: &Path) -> (Vec<u8>, SigningKey, String) {
    let sh = |cmd: &str| {
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{cmd}");
    };
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=pinning-ca -keyout ca.key -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null",
    );
    // openssl reads `/` in -subj as a separator; the GUN's slashes are escaped.
    let subject = format!("/CN={}", GUN.replace('/', "\\/"));
    sh(&format!(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '{subject}' \
        -keyout leaf.key -out leaf.csr 2>/dev/null"
    ));
    sh(
        "printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=codeSigning\\n' > ext.cnf && \
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile ext.cnf -out leaf.pem 2>/dev/null",
    );
    use p256::pkcs8::DecodePrivateKey;
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(
        &std::fs::read_to_string(dir.join("leaf.key")).unwrap(),
    )
    .unwrap();
    (
        std::fs::read(dir.join("ca.pem")).unwrap(),
        SigningKey::P256(key),
        std::fs::read_to_string(dir.join("leaf.pem")).unwrap(),
    )
}

#[test]
fn root_pinned_to_a_ca_accepts_only_roots_that_ca_issued() {
    let pki = tempfile::tempdir().unwrap();
    let (ca_pem, key, cert) = ca_issued_root(pki.path());
    let cas = x509_cert::Certificate::load_pem_chain(&ca_pem).unwrap();
    let run = |w: &World| w.update_with(&RootTrust::PinnedCa(cas.clone()));
    let issued = World::with_root(1, key, cert);
    issued.publish(1, 1, &issued.targets(1, &[("v1", b"m")], None), &[]);
    run(&issued).expect("a root certificate issued by the pinned CA is trusted");

    let self_signed = World::new(1);
    self_signed.publish(1, 1, &self_signed.targets(1, &[("v1", b"m")], None), &[]);
    let err = run(&self_signed).unwrap_err();
    assert!(
        matches!(err, ClientError::Verify(VerifyError::Pinning(_))),
        "{err}"
    );
    assert!(self_signed.cache_state().is_empty());
}

/// A one-shot plain-HTTP server on loopback that answers `head` and then `body` (forever if
/// `endless`); returns its URL.
async fn serve_once(head: String, body: Vec<u8>, endless: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/file", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&body).await.is_err() {
            return;
        }
        if endless {
            let chunk = format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096));
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
        } else {
            // Keep the connection open: a reader that waits for more would hang.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    url
}

fn read_limited_from(
    head: &str,
    body: &[u8],
    endless: bool,
    limit: u64,
) -> Result<Vec<u8>, HttpError> {
    docker_trustacr::registry::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let url = serve_once(head.to_string(), body.to_vec(), endless).await;
            let resp = reqwest::Client::new().get(&url).send().await.unwrap();
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                docker_trustacr::registry::read_limited(resp, limit),
            )
            .await
            .expect("read_limited must not wait for a body it refuses")
        })
}

// See: audit P1-M3 (read_limited's Content-Length pre-check: refused before any body byte)
#[test]
fn read_limited_refuses_a_content_length_above_the_limit_before_reading() {
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n";
    let err = read_limited_from(head, b"", false, 1000).unwrap_err();
    assert!(
        matches!(err, HttpError::TooLarge { limit: 1000, .. }),
        "{err}"
    );
}

// See: audit P1-M3 (no Content-Length, an endless body: cut off at the limit)
#[test]
fn read_limited_cuts_off_an_endless_chunked_body() {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let err = read_limited_from(head, b"", true, 100_000).unwrap_err();
    assert!(
        matches!(err, HttpError::TooLarge { limit: 100_000, .. }),
        "{err}"
    );
}

// See: audit P1-M3 (exactly `limit` bytes pass, with and without a Content-Length)
#[test]
fn read_limited_accepts_exactly_the_limit() {
    let body = vec![b'x'; 1000];
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
    assert_eq!(read_limited_from(head, &body, false, 1000).unwrap(), body);
    let chunked = [
        format!("{:x}\r\n", 1000).into_bytes(),
        body.clone(),
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    assert_eq!(
        read_limited_from(head, &chunked, false, 1000).unwrap(),
        body
    );
}
