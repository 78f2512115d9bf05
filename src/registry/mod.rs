//! HTTP to registries and notary servers: where requests may go ([`endpoint`]), TLS as docker
//! sets it up and bounded bodies ([`http`]), token auth ([`auth`]), and the one registry call
//! the signer needs ([`manifest`]: a manifest's digest and size).

pub mod artifact;
pub mod auth;
pub mod endpoint;
pub mod http;
pub mod manifest;
pub mod referrers;

pub use http::{
    AuthedClient, HttpError, client_for, describe, install_crypto_provider, read_limited, redact,
};
pub use manifest::{
    MANIFEST_ACCEPT, MAX_MANIFEST, ManifestError, ManifestRef, manifest_ref, reachable_registry,
};
