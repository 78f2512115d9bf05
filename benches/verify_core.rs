//! The verification core on a 10,000-tag targets role, step by step, without I/O:
//! `cargo bench --bench verify_core` prints the median time of each step.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use docker_trustacr::keystore::keys::SigningKey;
use docker_trustacr::notary::publish::sign_role;
use docker_trustacr::tuf::metadata::{
    Base64Bytes, Delegations, Expires, FileMeta, RawSigned, Snapshot, Targets, role_type,
};
use docker_trustacr::tuf::verify::{Signers, check_file_meta, verify_targets, verify_targets_for};
use sha2::{Digest, Sha256};

fn median(mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}

fn main() {
    let key = SigningKey::generate_ed25519().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let targets = Targets {
        typ: role_type::TARGETS.into(),
        delegations: Delegations::default(),
        expires: Expires(now + time::Duration::days(30)),
        targets: (0..10_000)
            .map(|i| {
                let tag = format!("t{i}");
                let sha = Sha256::digest(tag.as_bytes()).to_vec();
                let meta = FileMeta {
                    custom: None,
                    hashes: BTreeMap::from([("sha256".to_string(), Base64Bytes(sha))]),
                    length: 1000 + i,
                };
                (tag, meta)
            })
            .collect(),
        version: 1,
    };
    let id = key.public().id();
    let bytes = sign_role("targets", &targets, &[(&id, &key)]).unwrap();
    let snapshot = Snapshot {
        typ: role_type::SNAPSHOT.into(),
        expires: Expires(now + time::Duration::days(30)),
        meta: BTreeMap::from([("targets".to_string(), FileMeta::of(&bytes))]),
        version: 1,
    };
    let keys = BTreeMap::from([(id.clone(), key.public())]);
    let keyids = vec![id];
    let signers = Signers {
        keys: &keys,
        keyids: &keyids,
        threshold: 1,
    };
    let file = RawSigned::parse("targets", &bytes).unwrap();
    let meta = &snapshot.meta["targets"];
    println!("10,000-tag targets role, {} bytes:", bytes.len());
    let steps: [(&str, Duration); 7] = [
        (
            "sha256 + sha512 of the file",
            median(|| {
                check_file_meta("targets", "snapshot", meta, &bytes).unwrap();
            }),
        ),
        (
            "parse envelope (raw signed)",
            median(|| {
                RawSigned::parse("targets", &bytes).unwrap();
            }),
        ),
        (
            "canonical JSON (fallback only)",
            median(|| {
                file.canonical_signed("targets").unwrap();
            }),
        ),
        (
            "typed Targets, every tag",
            median(|| {
                file.targets("targets", None).unwrap();
            }),
        ),
        (
            "typed Targets, one tag",
            median(|| {
                file.targets("targets", Some("t9999")).unwrap();
            }),
        ),
        (
            "verify_targets (every tag)",
            median(|| {
                verify_targets("targets", &signers, &snapshot, &bytes, now, None).unwrap();
            }),
        ),
        (
            "verify_targets_for (one tag)",
            median(|| {
                verify_targets_for(
                    "targets",
                    &signers,
                    &snapshot,
                    &bytes,
                    now,
                    None,
                    Some("t9999"),
                )
                .unwrap();
            }),
        ),
    ];
    for (name, d) in steps {
        println!("  {name:<30} {:>8.2} ms", d.as_secs_f64() * 1e3);
    }
}
