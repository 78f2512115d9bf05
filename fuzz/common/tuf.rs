//! What the `tuf_verify` and `tuf_update` targets share: the two real notary repositories of
//! tests/data/notary-v1, verified once per process, a fixed clock (2026-11-23, when the test
//! vectors are valid), and an in-memory [`Source`] serving a repository with one file replaced.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use docker_trustacr::tuf::metadata::{SignedFile, Snapshot, Timestamp};
use docker_trustacr::tuf::trusted::{self, Source};
use docker_trustacr::tuf::verify::{self, Limits, RootTrust, TrustedRoot};
use time::OffsetDateTime;

const REPOS: [(&str, &str); 2] = [
    ("example.com_test_repo1", "example.com/test/repo1"),
    ("example.com_test_deleg", "example.com/test/deleg"),
];

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_392_000).expect("fixed date")
}

/// A vector repository: file name (without `.json`, `targets/x` for delegations) → bytes.
pub struct Vector {
    pub gun: &'static str,
    pub files: BTreeMap<String, Vec<u8>>,
    /// The files a client update reads, in order, so a fuzzed byte can pick one without
    /// collecting them each run. The older versions (`1.root`, `2.targets`) are left out: with
    /// one file replaced the update never asks for them, so replacing one would only rerun the
    /// genuine update at full cost.
    pub roles: Vec<String>,
    /// Each file's `signed` part in canonical form, for [`Vector::same`].
    signed: BTreeMap<String, Vec<u8>>,
    pub root: TrustedRoot,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
}

impl Vector {
    /// Whether `bytes` carry exactly what the repository signed for `role`: the same `signed`
    /// part in canonical form. The signatures beside it may differ: a signature that does not
    /// verify, or is by a key the role does not need, is ignored once the threshold is met (TUF,
    /// and notary), so such a file is the genuine one, not a bypass. This campaign's first
    /// finding was the oracle comparing whole files (tests/regression/fuzz.rs).
    pub fn same(&self, role: &str, bytes: &[u8]) -> bool {
        let Some(genuine) = self.signed.get(role) else {
            return false;
        };
        canonical_signed(bytes).is_some_and(|c| &c == genuine)
    }

    /// Every root the repository ever published is genuine (`<n>.root.json` too): trust on
    /// first use may accept any of them, as notary does. The first campaign's one finding was
    /// an oracle forgetting the older roots (tests/regression/fuzz.rs).
    pub fn genuine_root(&self, bytes: &[u8]) -> bool {
        let Some(c) = canonical_signed(bytes) else {
            return false;
        };
        self.signed
            .iter()
            .any(|(name, g)| (name == "root" || name.ends_with(".root")) && *g == c)
    }
}

/// The canonical form of a file's `signed` part: what its signatures are over.
fn canonical_signed(bytes: &[u8]) -> Option<Vec<u8>> {
    let file = SignedFile::parse("fuzzed", bytes).ok()?;
    file.canonical_signed("fuzzed").ok()
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
    let signed = files
        .iter()
        .map(|(name, bytes)| {
            let c = canonical_signed(bytes).expect("a vector file is signed metadata");
            (name.clone(), c)
        })
        .collect();
    Vector {
        gun,
        roles: files
            .keys()
            .filter(|name| {
                !name
                    .split('.')
                    .next()
                    .is_some_and(|v| v.parse::<u64>().is_ok())
            })
            .cloned()
            .collect(),
        signed,
        files,
        root,
        timestamp,
        snapshot,
    }
}

/// Loaded and checked once per process: every execution reuses them.
pub fn vectors() -> &'static [Vector; 2] {
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
            update(&src).unwrap_or_else(|e| {
                panic!("{}: the vector repository does not verify: {e}", repo.gun)
            });
        }
        v
    })
}

/// The whole client update of `src`'s repository at the fixed clock, trusting on first use.
pub fn update(src: &Served<'_>) -> Result<trusted::Verified, trusted::UpdateError<Infallible>> {
    block_on(trusted::update(
        src,
        src.repo.gun,
        now(),
        &RootTrust::Tofu,
        &Limits::default(),
    ))
}

/// Serves a vector repository, with one role's file replaced by fuzzed bytes.
pub struct Served<'a> {
    pub repo: &'a Vector,
    pub replaced: Option<(&'a str, &'a [u8])>,
    /// The replaced file is the cached copy instead of the download.
    pub cached: bool,
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
