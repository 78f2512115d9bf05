//! Metadata parsing and the single-role verification entry points (src/tuf/metadata.rs,
//! verify.rs) fed crafted trust data, under the roots of two real notary repositories
//! (tests/data/notary-v1) at a fixed clock. The whole client update is `tuf_update`: it costs
//! several signature checks per run, these modes at most one or two, so they have their own
//! target and are not drowned by it.
//!
//! The first byte (modulo 6) chooses the entry point, the second's low bit the repository:
//! - 0: `trust_first_root`, 1: `load_cached_root`, 2: `rotate_root` from the vector's root;
//! - 3: `verify_timestamp`, 4: `verify_snapshot`, 5: `verify_targets` under the vector's root.
//!
//! Every run also parses the bytes as each role's envelope and typed body. Nothing may panic,
//! and only the repository's own signed file may be accepted (the fuzzer cannot sign, so any
//! other accepted file would be a verification bypass).

#![no_main]

#[path = "../common/tuf.rs"]
#[allow(dead_code)]
mod tuf;

use docker_trustacr::tuf::metadata::{Root, SignedFile, Snapshot, Targets, Timestamp};
use docker_trustacr::tuf::verify::{self, RootTrust, Signers};
use libfuzzer_sys::fuzz_target;
use tuf::{now, vectors};

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
    let repo = &vectors()[(*pick & 1) as usize];
    let root = &repo.root.root;
    let accepted = match *mode % 6 {
        0 => {
            verify::trust_first_root(repo.gun, rest, now(), &RootTrust::Tofu).is_ok()
                && !repo.genuine_root(rest)
        }
        1 => verify::load_cached_root(repo.gun, rest, now()).is_ok() && !repo.genuine_root(rest),
        2 => verify::rotate_root(&repo.root, repo.gun, rest, now(), Some(&RootTrust::Tofu)).is_ok(),
        3 => {
            verify::verify_timestamp(root, rest, now(), None).is_ok()
                && !repo.same("timestamp", rest)
        }
        4 => {
            verify::verify_snapshot(root, &repo.timestamp, rest, now(), None).is_ok()
                && !repo.same("snapshot", rest)
        }
        _ => {
            let role = &root.roles["targets"];
            let signers = Signers {
                keys: &root.keys,
                keyids: &role.keyids,
                threshold: role.threshold,
            };
            verify::verify_targets("targets", &signers, &repo.snapshot, rest, now(), None).is_ok()
                && !repo.same("targets", rest)
        }
    };
    assert!(
        !accepted,
        "mode {}: bytes that are not the signed file were accepted",
        mode % 6
    );
});
