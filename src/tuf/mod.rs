//! Notary v1 (TUF as Notary and Docker Content Trust speak it): metadata, canonical JSON, keys,
//! and the verification core. Nothing in this module does I/O; the client in
//! [`crate::notary`] fetches bytes and feeds them in.

pub mod cjson;
pub mod editor;
pub mod keys;
pub mod metadata;
pub mod verify;
pub mod x509;
