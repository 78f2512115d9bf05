//! The whole client update (`trusted::update`, src/tuf/trusted.rs) over an in-memory copy of a
//! real notary repository (tests/data/notary-v1) with one file replaced by fuzzed bytes, served
//! as the download or as the cached copy, at a fixed clock.
//!
//! The first byte picks the file: bit 0 the repository, bits 1..=6 the role (modulo the
//! repository's files), bit 7 cached instead of downloaded. The rest replaces that file.
//!
//! Nothing may panic, and a replaced download can only be accepted if it is byte-identical to
//! the real one (the fuzzer cannot sign, so any other accepted file would be a verification
//! bypass). Each run re-verifies the genuine files around the replaced one, several signature
//! checks, which is why this is a target of its own and slower than `tuf_verify`.

#![no_main]

#[path = "../common/tuf.rs"]
#[allow(dead_code)]
mod tuf;

use libfuzzer_sys::fuzz_target;
use tuf::{Served, update, vectors};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let repo = &vectors()[(pick & 1) as usize];
    let role = repo.roles[((pick & 0x7f) as usize >> 1) % repo.roles.len()].as_str();
    let src = Served {
        repo,
        replaced: Some((role, rest)),
        cached: pick & 0x80 != 0,
    };
    let accepted = match update(&src) {
        Ok(verified) => {
            let _ = verified.repo.resolve_all();
            let _ = verified.repo.find_target("v1");
            // A download that is not the real file must have been refused, unless the core
            // never needed it (an older root, an unused delegation, a cached copy).
            !src.cached
                && !repo.same(role, rest)
                && verified
                    .writes
                    .iter()
                    .any(|(r, b)| r == role && b.as_slice() == rest)
        }
        Err(_) => false,
    };
    assert!(
        !accepted,
        "{role}: a download that is not the signed file was accepted"
    );
});
