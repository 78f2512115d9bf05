//! Metadata parsing and the verification core (src/tuf/metadata.rs, verify.rs, trusted.rs) fed
//! crafted trust data, at a fixed clock (2026-11-23, when the test vectors are valid).
//!
//! The first byte chooses the entry point, the second (for the update) which file of a real
//! notary repository (tests/data/notary-v1) the rest replaces:
//! - 0: `trust_first_root`, 1: `load_cached_root`, 2: `rotate_root` from the vector's root;
//! - 3: `verify_timestamp`, 4: `verify_snapshot`, 5: `verify_targets` under the vector's root;
//! - other: the whole client update (`trusted::update`) over an in-memory source serving the
//!   vector repository with one file replaced (or served as the cached copy).
//!
//! Every mode also parses the bytes as each role's envelope and typed body. Nothing may panic,
//! and a replaced file can only be accepted if it is byte-identical to the real one (the
//! fuzzer cannot sign, so any other accepted file would be a verification bypass).

#![no_main]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use docker_trustacr::tuf::metadata::{Root, SignedFile, Snapshot, Targets, Timestamp};
use docker_trustacr::tuf::trusted::{self, Source};
use docker_trustacr::tuf::verify::{self, Limits, RootTrust, Signers, TrustedRoot};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

const REPOS: [(&str, &str); 2] = [
    ("example.com_test_repo1", "example.com/test/repo1"),
    ("example.com_test_deleg", "example.com/test/deleg"),
];

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_392_000).expect("fixed date")
}

/// A vector repository: file name (without `.json`, `targets/x` for delegations) → bytes.
struct Vector {
    gun: &'static str,
    files: BTreeMap<String, Vec<u8>>,
    root: TrustedRoot,
    timestamp: Timestamp,
    snapshot: Snapshot,
}

fn load(dir: &str, gun: &'static str) -> Vector {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/notary-v1")
        .join(dir);
    let mut files = BTreeMap::new();
    for sub in ["", "targets"] {
        let Ok(entries) = std::fs::read_dir(base.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json") {
                let key = if sub.is_empty() {
                    stem.to_string()
                } else {
                    format!("{sub}/{stem}")
                };
                files.insert(key, std::fs::read(e.path()).expect("vector file"));
            }
        }
    }
    let root = verify::trust_first_root(gun, &files["root"], now(), &RootTrust::Tofu)
        .expect("the vector root verifies");
    let timestamp = verify::verify_timestamp(&root.root, &files["timestamp"], now(), None)
        .expect("the vector timestamp verifies");
    let snapshot = verify::verify_snapshot(&root.root, &timestamp, &files["snapshot"], now(), None)
        .expect("the vector snapshot verifies");
    Vector {
        gun,
        files,
        root,
        timestamp,
        snapshot,
    }
}

fn vectors() -> &'static [Vector; 2] {
    static V: OnceLock<[Vector; 2]> = OnceLock::new();
    V.get_or_init(|| {
        let v = REPOS.map(|(dir, gun)| load(dir, gun));
        // The harness is only meaningful if the untouched repositories verify through it.
        for repo in &v {
            let src = Served {
                repo,
                replaced: None,
                cached: false,
            };
            block_on(trusted::update(
                &src,
                repo.gun,
                now(),
                &RootTrust::Tofu,
                &Limits::default(),
            ))
            .unwrap_or_else(|e| panic!("{}: the vector repository does not verify: {e}", repo.gun));
        }
        v
    })
}

/// Serves a vector repository, with one role's file replaced by fuzzed bytes.
struct Served<'a> {
    repo: &'a Vector,
    replaced: Option<(&'a str, &'a [u8])>,
    /// The replaced file is the cached copy instead of the download.
    cached: bool,
}

impl Served<'_> {
    fn file(&self, role: &str, cached: bool) -> Option<Vec<u8>> {
        match self.replaced {
            Some((r, bytes)) if r == role && cached == self.cached => Some(bytes.to_vec()),
            _ if cached => None,
            _ => self.repo.files.get(role).cloned(),
        }
    }
}

impl Source for Served<'_> {
    type Error = Infallible;

    fn fetch(
        &self,
        name: &str,
        limit: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Infallible>> + Send {
        // `snapshot.<sha256>.json`, `targets/x.<sha256>.json`, `2.root.json`, `root.json`.
        let stem = name.strip_suffix(".json").unwrap_or(name);
        let role = match stem.rsplit_once('.') {
            Some((r, sum)) if sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()) => r,
            _ => stem,
        };
        let bytes = self.file(role, false).filter(|b| b.len() as u64 <= limit);
        std::future::ready(Ok(bytes))
    }

    fn cached(&self, role: &str) -> Option<Vec<u8>> {
        self.file(role, true)
    }

    fn keep(&self, _: &str, _: &[u8]) {}
}

/// The core does no I/O of its own, so its future completes without ever waiting.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn parse_every_way(bytes: &[u8]) {
    for role in ["root", "timestamp", "snapshot", "targets"] {
        let Ok(file) = SignedFile::parse(role, bytes) else {
            return;
        };
        let _ = file.canonical_signed(role);
        let _ = file.typed::<Root>(role);
        let _ = file.typed::<Timestamp>(role);
        let _ = file.typed::<Snapshot>(role);
        let _ = file.typed::<Targets>(role);
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, pick, rest @ ..] = data else {
        return;
    };
    parse_every_way(rest);
    let v = vectors();
    let repo = &v[(*pick & 1) as usize];
    let same = |role: &str| repo.files.get(role).is_some_and(|b| b.as_slice() == rest);
    // Every root the repository ever published is genuine (`<n>.root.json` too): trust on
    // first use may accept any of them, as notary does. The campaign's one finding was this
    // oracle forgetting the older roots (tests/regression/fuzz.rs).
    let genuine_root = || {
        repo.files
            .iter()
            .any(|(name, b)| (name == "root" || name.ends_with(".root")) && b.as_slice() == rest)
    };
    let root = &repo.root.root;
    let accepted = match *mode {
        0 => {
            verify::trust_first_root(repo.gun, rest, now(), &RootTrust::Tofu).is_ok()
                && !genuine_root()
        }
        1 => verify::load_cached_root(repo.gun, rest, now()).is_ok() && !genuine_root(),
        2 => verify::rotate_root(&repo.root, repo.gun, rest, now(), Some(&RootTrust::Tofu)).is_ok(),
        3 => verify::verify_timestamp(root, rest, now(), None).is_ok() && !same("timestamp"),
        4 => {
            verify::verify_snapshot(root, &repo.timestamp, rest, now(), None).is_ok()
                && !same("snapshot")
        }
        5 => {
            let role = &root.roles["targets"];
            let signers = Signers {
                keys: &root.keys,
                keyids: &role.keyids,
                threshold: role.threshold,
            };
            verify::verify_targets("targets", &signers, &repo.snapshot, rest, now(), None).is_ok()
                && !same("targets")
        }
        _ => {
            let roles: Vec<&String> = repo.files.keys().collect();
            let role = roles[(*pick as usize >> 1) % roles.len()].as_str();
            let src = Served {
                repo,
                replaced: Some((role, rest)),
                cached: *pick & 0x80 != 0,
            };
            match block_on(trusted::update(
                &src,
                repo.gun,
                now(),
                &RootTrust::Tofu,
                &Limits::default(),
            )) {
                Ok(verified) => {
                    let _ = verified.repo.resolve_all();
                    let _ = verified.repo.find_target("v1");
                    // A download that is not the real file must have been refused, unless the
                    // core never needed it (an older root, an unused delegation, a cached copy).
                    !src.cached
                        && !same(role)
                        && verified
                            .writes
                            .iter()
                            .any(|(r, b)| r == role && b.as_slice() == rest)
                }
                Err(_) => false,
            }
        }
    };
    assert!(
        !accepted,
        "mode {mode}: bytes that are not the signed file were accepted"
    );
});
