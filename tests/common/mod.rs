//! Shared pieces of the library tests (attacks, vectors, regression): a directory served as a
//! notary server would serve it, a fetcher that counts what it was asked for, and a repository
//! world whose every key the test holds.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use docker_trustacr::keystore::keys::SigningKey;
use docker_trustacr::notary::cache::Cache;
use docker_trustacr::notary::client::{ClientError, Fetch, Repo, update};
use docker_trustacr::notary::publish::sign_role;
use docker_trustacr::registry::HttpError;
use docker_trustacr::tuf::keys::{PublicKey, keytype};
use docker_trustacr::tuf::metadata::{
    DelegatedRole, Delegations, Expires, FileMeta, RoleKeys, Root, Snapshot, Targets, Timestamp,
    role_type,
};
use docker_trustacr::tuf::verify::{Limits, RootTrust, VerifyError};
use docker_trustacr::tuf::x509::make_root_certificate;
use time::{Duration, OffsetDateTime};

/// Metadata in a directory (`root.json`, `snapshot.json`, `targets/releases.json`, …), served
/// as a notary server would: checksum names map to the plain file. Only a missing file is a 404;
/// any other read error fails the fetch, as a broken server would.
pub struct DirFetch {
    /// The directory.
    pub dir: PathBuf,
}

impl DirFetch {
    pub fn file_for(&self, name: &str) -> PathBuf {
        let stem = name.strip_suffix(".json").unwrap_or(name);
        // `<role>.<hex>.json` → `<role>.json`; `<v>.root.json` stays as is.
        let plain = match stem.rsplit_once('.') {
            Some((role, hash))
                if hash.len() >= 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                role.to_string()
            }
            _ => stem.to_string(),
        };
        self.dir.join(format!("{plain}.json"))
    }
}

impl Fetch for DirFetch {
    async fn fetch(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, HttpError> {
        let path = self.file_for(name);
        let url = path.display().to_string();
        match std::fs::read(&path) {
            Ok(b) if b.len() as u64 > limit => Err(HttpError::TooLarge { url, limit }),
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HttpError::Unreachable {
                url,
                reason: e.to_string(),
            }),
        }
    }
}

/// A fetcher that records every name it is asked for, then asks `inner`.
pub struct Counting<F> {
    /// The real fetcher.
    pub inner: F,
    /// Names asked for, in order.
    pub asked: Mutex<Vec<String>>,
}

impl<F> Counting<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Counting {
            inner,
            asked: Mutex::new(Vec::new()),
        }
    }

    /// The names asked for so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl<F: Fetch + Sync> Fetch for Counting<F> {
    async fn fetch(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, HttpError> {
        self.asked.lock().unwrap().push(name.to_string());
        self.inner.fetch(name, limit).await
    }
}

/// Runs `update` of `gun` from `fetch` into the cache under `cache_dir`.
pub fn run_update<F: Fetch + Sync>(
    fetch: &F,
    cache_dir: &Path,
    gun: &str,
    now: OffsetDateTime,
    trust: &RootTrust,
) -> Result<Repo, ClientError> {
    let cache = Cache::new(cache_dir, gun, 100 << 20).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(update(fetch, &cache, gun, now, trust, &Limits::default()))
}

pub const GUN: &str = "attack.example/app";

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whole-second expiry, so files differing only in content have equal lengths.
pub fn exp(d: Duration) -> Expires {
    Expires((now() + d).replace_nanosecond(0).unwrap())
}

/// A repository whose every key the test holds.
pub struct World {
    pub server: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    pub root_key: SigningKey,
    pub root_cert: PublicKey,
    pub targets_key: SigningKey,
    pub snapshot_key: SigningKey,
    pub timestamp_key: SigningKey,
    pub releases_key: SigningKey,
    pub root_bytes: Vec<u8>,
}

pub fn target(content: &[u8]) -> FileMeta {
    let mut m = FileMeta::of(content);
    m.hashes.remove("sha512");
    m
}

impl World {
    pub fn new(targets_threshold: u32) -> Self {
        let root_key = SigningKey::generate_p256().unwrap();
        let SigningKey::P256(sk) = &root_key else {
            unreachable!()
        };
        let cert = make_root_certificate(sk, GUN, now()).unwrap();
        Self::with_root(targets_threshold, root_key, cert)
    }

    /// A world whose root key is `root_key` with certificate `cert` (PEM).
    pub fn with_root(targets_threshold: u32, root_key: SigningKey, cert: String) -> Self {
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

    pub fn write(&self, role: &str, bytes: &[u8]) {
        let p = self.server.path().join(format!("{role}.json"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    pub fn targets(
        &self,
        version: u64,
        tags: &[(&str, &[u8])],
        releases: Option<Vec<String>>,
    ) -> Vec<u8> {
        let mut delegations = Delegations::default();
        if let Some(paths) = releases {
            let id = self.releases_key.public().id();
            self.delegate_to_releases_key(
                &mut delegations,
                "targets/releases",
                Some(vec![id]),
                paths,
            );
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

    pub fn releases(&self, tags: &[(&str, &[u8])]) -> Vec<u8> {
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

    pub fn snapshot(&self, version: u64, roles: &[(&str, &[u8])]) -> Vec<u8> {
        let mut meta = BTreeMap::from([("root".to_string(), FileMeta::of(&self.root_bytes))]);
        for (r, b) in roles {
            meta.insert(r.to_string(), FileMeta::of(b));
        }
        self.snapshot_of(version, meta)
    }

    /// A snapshot signed by the snapshot key, listing exactly `meta`.
    pub fn snapshot_of(&self, version: u64, meta: BTreeMap<String, FileMeta>) -> Vec<u8> {
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

    pub fn timestamp(&self, version: u64, snapshot: &[u8], expires_in: Duration) -> Vec<u8> {
        let t = Timestamp {
            typ: role_type::TIMESTAMP.into(),
            expires: exp(expires_in),
            meta: BTreeMap::from([("snapshot".to_string(), FileMeta::of(snapshot))]),
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
    pub fn publish(&self, ts_v: u64, snap_v: u64, targets: &[u8], extra: &[(&str, &[u8])]) {
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

    pub fn update(&self) -> Result<Repo, ClientError> {
        self.update_with(&RootTrust::Tofu)
    }

    pub fn update_with(&self, trust: &RootTrust) -> Result<Repo, ClientError> {
        run_update(&self.fetcher(), self.cache.path(), GUN, now(), trust)
    }

    /// The server directory as a fetcher.
    pub fn fetcher(&self) -> DirFetch {
        DirFetch {
            dir: self.server.path().to_path_buf(),
        }
    }

    /// An update through `fetch` (e.g. a [`Counting`] around [`World::fetcher`]).
    pub fn update_through<F: Fetch + Sync>(&self, fetch: &F) -> Result<Repo, ClientError> {
        run_update(fetch, self.cache.path(), GUN, now(), &RootTrust::Tofu)
    }

    /// Every cached file and its bytes.
    pub fn cache_state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
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
    pub fn refused(&self, check: impl Fn(&VerifyError) -> bool) -> String {
        let before = self.cache_state();
        let err = self.update().expect_err("the attack must be refused");
        let msg = err.to_string();
        match &err {
            ClientError::Verify(v) => assert!(check(v), "unexpected refusal: {msg}"),
            other => panic!("expected a verification error, got {other}"),
        }
        assert!(
            without_floors(before) == without_floors(self.cache_state()),
            "the cache changed during a refused update"
        );
        msg
    }

    /// The cached version of `role`, if cached.
    pub fn cached_version(&self, role: &str) -> Option<u64> {
        let p = self
            .cache
            .path()
            .join(format!("tuf/{GUN}/metadata/{role}.json"));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        v["signed"]["version"].as_u64()
    }
}

/// A fresh P-256 root key and its certificate for [`GUN`], as notary makes them.
pub fn new_root_key() -> (SigningKey, PublicKey) {
    let key = SigningKey::generate_p256().unwrap();
    let SigningKey::P256(sk) = &key else {
        unreachable!()
    };
    let cert = make_root_certificate(sk, GUN, now()).unwrap();
    (key, PublicKey::new(keytype::ECDSA_X509, cert.into_bytes()))
}

impl World {
    /// A root of `version` naming `root_cert`, this world's targets key, `snapshot` and
    /// `timestamp` keys, signed by `signers` (key ID, key).
    pub fn root_doc(
        &self,
        version: u64,
        root_cert: &PublicKey,
        snapshot: &PublicKey,
        timestamp: &PublicKey,
        signers: &[(&str, &SigningKey)],
    ) -> Vec<u8> {
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for (role, key) in [
            ("root", root_cert.clone()),
            ("targets", self.targets_key.public()),
            ("snapshot", snapshot.clone()),
            ("timestamp", timestamp.clone()),
        ] {
            roles.insert(
                role.to_string(),
                RoleKeys {
                    keyids: vec![key.id()],
                    threshold: 1,
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
            version,
        };
        sign_role("root", &root, signers).unwrap()
    }

    /// Serves `root` as the current root (`root.json` and `<v>.root.json`); the snapshots
    /// published from now on name it.
    pub fn serve_root(&mut self, version: u64, root: Vec<u8>) {
        self.write(&format!("{version}.root"), &root);
        self.write("root", &root);
        self.root_bytes = root;
    }

    /// Signs a targets-type role with `key`.
    pub fn sign_targets(&self, role: &str, t: &Targets, key: &SigningKey) -> Vec<u8> {
        sign_role(role, t, &[(&key.public().id(), key)]).unwrap()
    }

    /// Adds the releases key to `delegations` and a role `name` (threshold 1) listing `keyids`.
    pub fn delegate_to_releases_key(
        &self,
        delegations: &mut Delegations,
        name: &str,
        keyids: Option<Vec<String>>,
        paths: Vec<String>,
    ) {
        let k = self.releases_key.public();
        delegations.keys.insert(k.id(), k);
        delegations.roles.push(DelegatedRole {
            keyids,
            name: name.into(),
            paths,
            threshold: 1,
        });
    }

    /// A targets-type body with `tags` and no delegations.
    pub fn targets_body(
        &self,
        version: u64,
        tags: &[(&str, &[u8])],
        expires_in: Duration,
    ) -> Targets {
        Targets {
            typ: role_type::TARGETS.into(),
            delegations: Delegations::default(),
            expires: exp(expires_in),
            targets: tags
                .iter()
                .map(|(n, c)| (n.to_string(), target(c)))
                .collect(),
            version,
        }
    }

    /// Expects the update to fail with a verification error `check` accepts, leaving the cache
    /// as it was; returns the error.
    pub fn refused_with(&self, check: impl Fn(&VerifyError) -> bool) -> VerifyError {
        let before = self.cache_state();
        let err = self.update().expect_err("the attack must be refused");
        assert!(
            without_floors(before) == without_floors(self.cache_state()),
            "a refused update changed the cache"
        );
        match err {
            ClientError::Verify(v) if check(&v) => v,
            other => panic!("unexpected refusal: {other}"),
        }
    }
}

/// A cache state without timestamp.json and snapshot.json: the rollback floors, which an
/// update advances as soon as each verifies, even when a later step is refused.
pub fn without_floors(mut state: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
    state.retain(|p, _| {
        !matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("timestamp.json" | "snapshot.json")
        )
    });
    state
}

/// The trust core's [`Source`] in memory: files by the names a notary server serves them
/// under (checksum names map to the plain role, as [`DirFetch`] does), a cache, and a log of
/// what the core asked, cached early and read. No client, no files.
pub struct MemSource {
    /// Server files by plain name (`root.json`, `targets/releases.json`, `2.root.json`).
    pub server: BTreeMap<String, Vec<u8>>,
    /// Cached files by role.
    pub cache: Mutex<BTreeMap<String, Vec<u8>>>,
    /// `fetch NAME`, `cached ROLE` and `keep ROLE`, in order.
    pub log: Mutex<Vec<String>>,
}

impl MemSource {
    /// The files of a server directory.
    pub fn from_dir(dir: &Path) -> Self {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        let mut server = BTreeMap::new();
        walk(dir, dir, &mut server);
        MemSource {
            server,
            cache: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl docker_trustacr::tuf::trusted::Source for MemSource {
    type Error = std::convert::Infallible;

    fn fetch(
        &self,
        name: &str,
        _limit: u64,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send {
        self.log.lock().unwrap().push(format!("fetch {name}"));
        let plain = DirFetch {
            dir: PathBuf::new(),
        }
        .file_for(name);
        let found = self.server.get(plain.to_str().unwrap_or_default()).cloned();
        std::future::ready(Ok(found))
    }

    fn cached(&self, role: &str) -> Option<Vec<u8>> {
        self.log.lock().unwrap().push(format!("cached {role}"));
        self.cache.lock().unwrap().get(role).cloned()
    }

    fn keep(&self, role: &str, bytes: &[u8]) {
        self.log.lock().unwrap().push(format!("keep {role}"));
        self.cache
            .lock()
            .unwrap()
            .insert(role.to_string(), bytes.to_vec());
    }
}
