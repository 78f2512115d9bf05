//! Canonical JSON (src/tuf/cjson.rs): what Notary signs, so the encoder must be a function of
//! the value alone.
//!
//! - Nothing panics, on any JSON.
//! - Encoding is idempotent: canonical bytes parsed again re-encode to the same bytes. The one
//!   exception is a raw control byte inside a string, which canonical JSON writes unescaped
//!   (as Go does) and a strict JSON parser then refuses; that case must be the only refusal.
//! - The HTML-escaped form (how Go embeds it in a file) parses back to the same value.

#![no_main]

use docker_trustacr::tuf::cjson;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(first) = cjson::to_canonical(&value) else {
        return;
    };
    match serde_json::from_slice::<Value>(&first) {
        Ok(again) => {
            let second = cjson::to_canonical(&again).expect("canonical bytes re-encode");
            assert_eq!(first, second, "canonical form is not a fixed point");
            let escaped = cjson::html_escape(&first);
            let back: Value = serde_json::from_slice(&escaped).expect("escaped form parses");
            assert_eq!(back, again, "HTML escaping changed the value");
        }
        Err(_) => assert!(
            first.iter().any(|&b| b < 0x20),
            "canonical bytes without a raw control byte do not parse"
        ),
    }
});
