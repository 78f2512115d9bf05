//! Findings of the fuzz campaign (issue #12 item 1): each crash or broken invariant a target in
//! `fuzz/` found, as a library-level test that failed before its fix. `scripts/fuzz.sh` runs
//! the targets; README.md "Fuzzing" records the executions per target.

use docker_trustacr::tuf::verify::{self, RootTrust};

// See: #12 item 1. The tuf_verify target's first campaign stopped on `1.root.json` of
// example.com/test/repo1 offered as a first root. That is not a bypass: it is a root the
// repository genuinely published (an older version), and trust on first use accepts it, as
// notary does. The target's oracle now counts every `<n>.root.json` as genuine. This test pins
// the product side: the older genuine root is trusted on first use, a byte changed in it is not.
#[test]
fn an_older_genuine_root_is_trusted_on_first_use_and_a_changed_byte_is_not() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/notary-v1/example.com_test_repo1");
    let old = std::fs::read(dir.join("1.root.json")).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(1_795_392_000).unwrap();
    let trusted = verify::trust_first_root("example.com/test/repo1", &old, now, &RootTrust::Tofu)
        .expect("an older genuine root is trusted on first use");
    assert_eq!(trusted.root.version, 1);
    let at = old.windows(9).position(|w| w == b"\"expires\"").unwrap() + 13;
    let mut changed = old.clone();
    changed[at] = if changed[at] == b'1' { b'2' } else { b'1' };
    assert!(
        verify::trust_first_root("example.com/test/repo1", &changed, now, &RootTrust::Tofu)
            .is_err()
    );
}
