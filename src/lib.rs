//! docker trustacr: signed image push and pull for Azure Container Registry.
//!
//! The crate is organised by concern; each module owns one protocol or resource:
//! - [`plugin`]: the Docker CLI plugin protocol (argv, metadata, global flags, cancellation);
//! - [`cli`]: subcommands, and the edge where errors become messages and exit codes;
//! - [`dockercfg`]: docker's config dir, `config.json`, contexts and registry credentials;
//! - [`engine`]: the Docker engine through bollard;
//! - [`entra`]: Microsoft Entra ID sign-in: the credential chain and its sources;
//! - [`acr`]: Azure Container Registry: the Entra-to-ACR token exchange and its cache;
//! - [`keystore`]: the OS keyring;
//! - [`tuf`]: Notary v1 metadata and the verification core (no I/O);
//! - [`notary`]: the Notary client: update, cache, publish;
//! - [`notation`]: Notary Project signatures: envelope, trust store and policy, verification core;
//! - [`registry`]: HTTP, TLS and token auth for registries and notary servers;
//! - [`reference`]: image references and GUNs;
//! - [`secret`]: types that keep secrets out of logs;
//! - [`timeouts`]: the bounds on waiting that users can set.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acr;
pub mod cli;
pub mod dockercfg;
pub mod engine;
pub mod entra;
pub mod keystore;
pub mod notary;
pub mod notation;
pub mod plugin;
pub mod reference;
pub mod registry;
pub mod secret;
pub mod timeouts;
pub mod tuf;
