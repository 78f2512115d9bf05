//! One test per finding of the outside reviews (issue #8, the security issue, and the audit in
//! shared/notes/audit.md), ripgrep-style: each test names the behaviour it proves and carries a
//! `// See: #8 item N` (or audit id) line. A finding that needs the real stack (an attack on the
//! wire, a real peer) is tested in `tests/integration/` and listed here by name in a comment of
//! its area's module, so this file stays the index of every finding.
//!
//! One module per area, so that work on one area does not touch the others:

mod edge; // CLI edge: argv, error rendering, docker config secrets
mod endpoint; // references, endpoints, TLS, token realms
mod entra; // Entra credential chain, ACR token cache
mod fuzz; // findings of the fuzz campaign (fuzz/, scripts/fuzz.sh)
mod trust_core; // trust core: delegation walk, root rotation, targets, rollback floors
mod write; // publishing: interrupted uploads, first signers, key-creation lock
