//! Attacks a hostile notary server could mount, on repositories built here with keys the test
//! holds. Each must be refused with an error naming the role and the check, and must leave the
//! cache exactly as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use docker_trustacr::keystore::keys::SigningKey;
use docker_trustacr::notary::DirFetch;
use docker_trustacr::notary::cache::Cache;
use docker_trustacr::notary::client::{ClientError, Repo, update};
use docker_trustacr::notary::publish::sign_role;
use docker_trustacr::tuf::keys::{PublicKey, keytype};
use docker_trustacr::tuf::metadata::{
    DelegatedRole, Delegations, Expires, FileMeta, RoleKeys, Root, Snapshot, Targets, Timestamp,
    role_type,
};
use docker_trustacr::tuf::verify::{Limits, RootTrust, VerifyError};
use docker_trustacr::tuf::x509::make_root_certificate;
use time::{Duration, OffsetDateTime};

const GUN: &str = "attack.example/app";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whole-second expiry, so files differing only in content have equal lengths.
fn exp(d: Duration) -> Expires {
    Expires((now() + d).replace_nanosecond(0).unwrap())
}

/// A repository whose every key the test holds.
struct World {
    server: tempfile::TempDir,
    cache: tempfile::TempDir,
    root_key: SigningKey,
    root_cert: PublicKey,
    targets_key: SigningKey,
    snapshot_key: SigningKey,
    timestamp_key: SigningKey,
    releases_key: SigningKey,
    root_bytes: Vec<u8>,
}

fn meta_of(bytes: &[u8]) -> FileMeta {
    FileMeta::of(bytes)
}

fn target(content: &[u8]) -> FileMeta {
    let mut m = FileMeta::of(content);
    m.hashes.remove("sha512");
    m
}

impl World {
    fn new(targets_threshold: u32) -> Self {
        let root_key = SigningKey::generate_p256().unwrap();
        let SigningKey::P256(sk) = &root_key else {
            unreachable!()
        };
        let cert = make_root_certificate(sk, GUN, now()).unwrap();
        Self::with_root(targets_threshold, root_key, cert)
    }

    /// A world whose root key is `root_key` with certificate `cert` (PEM).
    fn with_root(targets_threshold: u32, root_key: SigningKey, cert: String) -> Self {
        let root_cert = PublicKey::new(keytype::ECDSA_X509, cert.into_bytes());
        let mut w = World {
            server: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
            root_key,
            root_cert,
            targets_key: SigningKey::generate_ed25519().unwrap(),
            snapshot_key: SigningKey::generate_ed25519().unwrap(),
            timestamp_key: SigningKey::generate_ed25519().unwrap(),
            releases_key: SigningKey::generate_ed25519().unwrap(),
            root_bytes: Vec::new(),
        };
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for (role, key) in [
            ("root", w.root_cert.clone()),
            ("targets", w.targets_key.public()),
            ("snapshot", w.snapshot_key.public()),
            ("timestamp", w.timestamp_key.public()),
        ] {
            let threshold = if role == "targets" {
                targets_threshold
            } else {
                1
            };
            roles.insert(
                role.to_string(),
                RoleKeys {
                    keyids: vec![key.id()],
                    threshold,
                },
            );
            keys.insert(key.id(), key);
        }
        let root = Root {
            typ: role_type::ROOT.into(),
            consistent_snapshot: false,
            expires: exp(Duration::days(3650)),
            keys,
            roles,
            version: 1,
        };
        w.root_bytes = sign_role("root", &root, &[(&w.root_cert.id(), &w.root_key)]).unwrap();
        w.write("root", &w.root_bytes.clone());
        w
    }

    fn write(&self, role: &str, bytes: &[u8]) {
        let p = self.server.path().join(format!("{role}.json"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn targets(
        &self,
        version: u64,
        tags: &[(&str, &[u8])],
        releases: Option<Vec<String>>,
    ) -> Vec<u8> {
        let mut delegations = Delegations::default();
        if let Some(paths) = releases {
            let k = self.releases_key.public();
            delegations.keys.insert(k.id(), k.clone());
            delegations.roles.push(DelegatedRole {
                keyids: Some(vec![k.id()]),
                name: "targets/releases".into(),
                paths,
                threshold: 1,
            });
        }
        let t = Targets {
            typ: role_type::TARGETS.into(),
            delegations,
            expires: exp(Duration::days(30)),
            targets: tags
                .iter()
                .map(|(n, c)| (n.to_string(), target(c)))
                .collect(),
            version,
        };
        sign_role(
            "targets",
            &t,
            &[(&self.targets_key.public().id(), &self.targets_key)],
        )
        .unwrap()
    }

    fn releases(&self, tags: &[(&str, &[u8])]) -> Vec<u8> {
        let t = Targets {
            typ: role_type::TARGETS.into(),
            delegations: Delegations::default(),
            expires: exp(Duration::days(30)),
            targets: tags
                .iter()
                .map(|(n, c)| (n.to_string(), target(c)))
                .collect(),
            version: 1,
        };
        sign_role(
            "targets/releases",
            &t,
            &[(&self.releases_key.public().id(), &self.releases_key)],
        )
        .unwrap()
    }

    fn snapshot(&self, version: u64, roles: &[(&str, &[u8])]) -> Vec<u8> {
        let mut meta = BTreeMap::from([("root".to_string(), meta_of(&self.root_bytes))]);
        for (r, b) in roles {
            meta.insert(r.to_string(), meta_of(b));
        }
        let s = Snapshot {
            typ: role_type::SNAPSHOT.into(),
            expires: exp(Duration::days(30)),
            meta,
            version,
        };
        sign_role(
            "snapshot",
            &s,
            &[(&self.snapshot_key.public().id(), &self.snapshot_key)],
        )
        .unwrap()
    }

    fn timestamp(&self, version: u64, snapshot: &[u8], expires_in: Duration) -> Vec<u8> {
        let t = Timestamp {
            typ: role_type::TIMESTAMP.into(),
            expires: exp(expires_in),
            meta: BTreeMap::from([("snapshot".to_string(), meta_of(snapshot))]),
            version,
        };
        sign_role(
            "timestamp",
            &t,
            &[(&self.timestamp_key.public().id(), &self.timestamp_key)],
        )
        .unwrap()
    }

    /// Publishes a consistent repository state.
    fn publish(&self, ts_v: u64, snap_v: u64, targets: &[u8], extra: &[(&str, &[u8])]) {
        let mut roles = vec![("targets", targets)];
        roles.extend_from_slice(extra);
        let snap = self.snapshot(snap_v, &roles);
        self.write("targets", targets);
        for (r, b) in extra {
            self.write(r, b);
        }
        self.write("snapshot", &snap);
        self.write("timestamp", &self.timestamp(ts_v, &snap, Duration::days(7)));
    }

    fn update(&self) -> Result<Repo, ClientError> {
        self.update_with(&RootTrust::Tofu)
    }

    fn update_with(&self, trust: &RootTrust) -> Result<Repo, ClientError> {
        let fetch = DirFetch {
            dir: self.server.path().to_path_buf(),
        };
        let cache = Cache::new(self.cache.path(), GUN, 100 << 20).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(update(
                &fetch,
                &cache,
                GUN,
                now(),
                trust,
                &Limits::default(),
            ))
    }

    /// Every cached file and its bytes.
    fn cache_state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.cache.path(), &mut out);
        out
    }

    /// Asserts that the update fails with `check` and leaves the cache untouched.
    fn refused(&self, check: impl Fn(&VerifyError) -> bool) -> String {
        let before = self.cache_state();
        let err = self.update().expect_err("the attack must be refused");
        let msg = err.to_string();
        match &err {
            ClientError::Verify(v) => assert!(check(v), "unexpected refusal: {msg}"),
            other => panic!("expected a verification error, got {other}"),
        }
        assert_eq!(
            before,
            self.cache_state(),
            "the cache changed during a refused update"
        );
        msg
    }
}

#[test]
fn honest_repository_verifies_and_warm_update_uses_the_cache() {
    let w = World::new(1);
    let t = w.targets(1, &[("v1", b"manifest-1")], None);
    w.publish(1, 1, &t, &[]);
    let repo = w.update().unwrap();
    assert_eq!(repo.find_target("v1").unwrap().meta, target(b"manifest-1"));
    assert!(w.cache_state().len() >= 4);
    assert!(w.update().is_ok());
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
    w.write("snapshot", &[other.as_slice(), b"    "].concat());
    let err = w.update().unwrap_err();
    assert!(
        err.to_string().contains("snapshot") && err.to_string().contains("more than"),
        "{err}"
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
    assert_eq!(repo.find_target("v1").unwrap().meta, target(b"admin"));
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
    let found = repo.find_target("v1").unwrap();
    assert_eq!(
        (found.role.as_str(), found.meta),
        ("targets/releases", target(b"released"))
    );
}

#[test]
fn endless_timestamp_is_cut_off_at_the_limit() {
    let w = World::new(1);
    w.publish(1, 1, &w.targets(1, &[("v1", b"m")], None), &[]);
    w.write("timestamp", &vec![b' '; 2 * 1024 * 1024]);
    let before = w.cache_state();
    let err = w.update().unwrap_err();
    assert!(matches!(err, ClientError::Http(_)), "{err}");
    assert!(err.to_string().contains("more than 1048576 bytes"), "{err}");
    assert_eq!(before, w.cache_state());
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
