//! Notary v1 (TUF as Notary and Docker Content Trust speak it): metadata, canonical JSON, keys,
//! the checks ([`verify`]) and the trust policy of an update ([`trusted`]). Every trust decision
//! is made here, and nothing here does I/O: the client in [`crate::notary`] fetches the bytes
//! the core asks for and feeds them in.

pub mod cjson;
pub mod editor;
pub mod keys;
pub mod metadata;
pub mod rotation;
pub mod trusted;
pub mod verify;
pub mod x509;
