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

// See: #12 item 1. The second campaign's tuf_verify stopped within seconds on
// example.com/test/repo1's `2.root.json` offered as a first root with one byte changed in the
// signature by 242eae…, the old root key that co-signed the rotation but is not one of this
// root's own root keys. Not a bypass: the signed part is genuine and carries its threshold of
// valid signatures; a signature that does not verify, or is by a key the role does not need,
// is ignored (TUF, and notary does the same). The oracle compared whole files; it now compares
// the canonical `signed` part. This pins the product side: the file with the spoiled extra
// signature is trusted, the same change in the one signature that counts is not.
#[test]
fn a_spoiled_signature_beyond_the_threshold_is_ignored_and_a_spoiled_needed_one_is_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/notary-v1/example.com_test_repo1");
    let genuine = std::fs::read(dir.join("2.root.json")).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(1_795_392_000).unwrap();
    let gun = "example.com/test/repo1";
    verify::trust_first_root(gun, &genuine, now, &RootTrust::Tofu).expect("the genuine root");

    // The first character of the `sig` value of the signature by the key whose id starts so.
    let sig_of = |keyid: &[u8]| {
        let key = genuine
            .windows(keyid.len())
            .rposition(|w| w == keyid)
            .unwrap();
        let sig = key
            + genuine[key..]
                .windows(7)
                .position(|w| w == b"\"sig\":\"")
                .unwrap()
            + 7;
        let mut spoiled = genuine.clone();
        spoiled[sig] = if spoiled[sig] == b'A' { b'B' } else { b'A' };
        spoiled
    };
    let extra = sig_of(b"\"keyid\":\"242eae");
    let trusted = verify::trust_first_root(gun, &extra, now, &RootTrust::Tofu)
        .expect("a spoiled signature by a key the root role does not need is ignored");
    assert_eq!(trusted.root.version, 2);
    let needed = sig_of(b"\"keyid\":\"9315ee");
    assert!(verify::trust_first_root(gun, &needed, now, &RootTrust::Tofu).is_err());
}
