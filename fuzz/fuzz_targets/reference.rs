//! Image references with any text (#8 item 2): the parser decides which host a token may go
//! to, so it is checked against invariants that do not reuse its code.
//!
//! - It never panics.
//! - An accepted reference re-renders to text that parses to the same value.
//! - The host is docker's `domainAndPort` by an independent check: only `[A-Za-z0-9.-]`, or
//!   a bracketed IPv6 literal, then an optional `:digits`; never `#`, `/`, `@`, `?`, `%`,
//!   `\`, whitespace or userinfo. The URL built from it has exactly that host and no path,
//!   query, fragment or userinfo.
//! - "Is ACR" holds only for a host under an ACR suffix (no settings given).

#![no_main]

use docker_trustacr::reference::ImageRef;
use docker_trustacr::registry::endpoint::Endpoint;
use libfuzzer_sys::fuzz_target;

fn host_chars_ok(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        ("v6", after.strip_prefix(':').or(if after.is_empty() { Some("") } else { None }))
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, Some("")),
        }
    };
    let Some(port) = port else { return false };
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && port.chars().all(|c| c.is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = ImageRef::parse(input) else {
        return;
    };
    let host = r.registry.as_str();
    assert!(host_chars_ok(host), "{input:?} gave host {host:?}");
    assert_eq!(
        ImageRef::parse(&r.to_string()).as_ref(),
        Ok(&r),
        "{input:?} re-rendered as {r}"
    );
    let url = Endpoint::registry(&r.registry, false).url("v2/");
    assert!(url.username().is_empty() && url.password().is_none(), "{url}");
    assert_eq!((url.query(), url.fragment(), url.path()), (None, None, "/v2/"));
    if r.registry.is_acr(&[]) {
        let name = r.registry.name();
        assert!(
            [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
                .iter()
                .any(|s| name.len() > s.len() && name.ends_with(s)),
            "{input:?}: {name} counted as ACR"
        );
    }
});
