//! Key material from outside (src/tuf/keys.rs, src/tuf/x509.rs, src/keystore/import.rs): public
//! keys and certificates in metadata from any server, and PEM/PKCS#8 private key files the user
//! imports.
//!
//! The first byte chooses what the rest is:
//! - 0: a metadata key as JSON (`{"keytype":…,"keyval":{"public":…}}`);
//! - 1..=5: the public bytes of a key of one Notary key type (`*-x509` takes PEM);
//! - other: a key file for `key import` (PEM blocks, encrypted or not).
//!
//! Nothing may panic; a key's canonical ID is its own ID unless it is a certificate key; an
//! import that decodes gives exactly one key per block.

#![no_main]

use docker_trustacr::keystore::import::{self, Block, Passphrases};
use docker_trustacr::keystore::keys::KeyLabel;
use docker_trustacr::tuf::keys::{PublicKey, keytype};
use docker_trustacr::tuf::x509;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use zeroize::Zeroizing;

const KEYTYPES: [&str; 5] = [
    keytype::ED25519,
    keytype::ECDSA,
    keytype::ECDSA_X509,
    keytype::RSA,
    keytype::RSA_X509,
];

/// One known passphrase, no prompt: a fuzzed file can be decrypted only if it was encrypted
/// with this one, and a wrong one must fail cleanly.
struct Fixed;

impl Passphrases for Fixed {
    fn known(&mut self, _: &Block) -> Vec<(String, Zeroizing<String>)> {
        vec![("fuzz".into(), Zeroizing::new("passphrase".into()))]
    }
    fn ask(&mut self, _: &Block, _: u32) -> std::io::Result<Option<Zeroizing<String>>> {
        Ok(None)
    }
}

fn exercise(key: &PublicKey, msg: &[u8]) {
    // 2026-11-23T00:00:00Z, the date the test vectors verify at.
    let now = OffsetDateTime::from_unix_timestamp(1_795_392_000).expect("fixed date");
    let id = key.id();
    assert_eq!(id.len(), 64);
    match key.canonical_id() {
        Ok(cid) if !key.keytype.ends_with("-x509") => assert_eq!(cid, id),
        _ => {}
    }
    let _ = key.spki_der();
    for method in ["eddsa", "ecdsa", "rsapss", "rsapkcs1v15", "bogus"] {
        // Split the message into signed bytes and signature.
        let (m, s) = msg.split_at(msg.len() / 2);
        assert!(key.verify(method, m, s).is_err() || !s.is_empty());
    }
    let _ = x509::check_root_key(&id, key, "example.com/test", now, true);
    if let Ok(certs) = key.certificates() {
        assert!(!certs.is_empty());
        let _ = x509::chains_to(key, &certs, now);
        for c in certs.iter() {
            for i in certs.iter() {
                let _ = x509::issued_by(c, i, now);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            if let Ok(key) = serde_json::from_slice::<PublicKey>(rest) {
                exercise(&key, rest);
            }
        }
        1..=5 => {
            let key = PublicKey::new(KEYTYPES[mode as usize - 1], rest.to_vec());
            exercise(&key, rest);
        }
        _ => {
            let Ok(blocks) = import::parse_file("fuzz.key", None, KeyLabel::default(), rest) else {
                return;
            };
            if let Ok(decoded) = import::decode_all(&blocks, &mut Fixed) {
                assert_eq!(decoded.len(), blocks.len(), "one key per block");
            }
        }
    }
});
