//! `WWW-Authenticate` parsing (src/registry/auth.rs `parse_challenge`): the header comes from
//! whatever server a reference names, before any trust is established, and its realm decides
//! where credentials are sent.
//!
//! - Nothing panics on any text.
//! - A Bearer challenge written with quoted, backslash-escaped values (RFC 7235) parses back to
//!   exactly those values, whatever they hold (commas, quotes, `=`, Unicode): the input is split
//!   on NUL into realm, service and scope.
//! - `Retry-After` parsing (`parse_retry_after`), which reads the same servers' answers, never
//!   panics either, huge and hostile dates included.

#![no_main]

use docker_trustacr::registry::auth::{Challenge, parse_challenge, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fn quoted(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_challenge(text);
    let _ = parse_retry_after(text, std::time::SystemTime::now());
    let mut parts = text.splitn(3, '\0');
    let (realm, service, scope) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let header = format!(
        "Bearer realm={},service={},scope={}",
        quoted(realm),
        quoted(service),
        quoted(scope)
    );
    assert_eq!(
        parse_challenge(&header),
        Some(Challenge::Bearer {
            realm: realm.to_string(),
            service: Some(service.to_string()),
            scope: Some(scope.to_string()),
        }),
        "{header:?}"
    );
});
