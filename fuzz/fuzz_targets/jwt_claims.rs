//! Unverified JWT claim reading (src/entra `jwt_claims`, `jwt_claim`): tokens come from Entra,
//! `az`, `azd` or a file the user names, and are read for routing hints only.
//!
//! - Nothing panics on any text.
//! - A claim `jwt_claim` returns is one `jwt_claims` has.

#![no_main]

use docker_trustacr::entra::{jwt_claim, jwt_claims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(jwt) = std::str::from_utf8(data) else {
        return;
    };
    let claims = jwt_claims(jwt);
    for name in ["tid", "exp", "oid", "iss"] {
        if jwt_claim(jwt, name).is_some() {
            assert!(
                claims.as_ref().is_some_and(|c| c.contains_key(name)),
                "{name} read but not among the claims"
            );
        }
    }
});
