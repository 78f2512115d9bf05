//! Integration tests on the real stack: the docker CLI, dockerd, the registry, notary-server and
//! the Secret Service keyring. One test binary, so one stack serves every test.
//!
//! Run everything: `scripts/test.sh`. Run one test against a running stack in seconds:
//! `eval "$(scripts/stack.sh up)"; cargo test --test integration NAME`.

mod harness;

mod acr_e2e;
mod acr_stack;
mod attacks_wire;
mod cancel;
mod cli_conventions;
mod concurrency;
mod conventions;
mod doctor;
mod endpoint;
mod faults;
mod info;
mod install;
mod json_output;
mod keys;
mod notation_migrate;
mod notation_sign;
mod notation_verify;
mod plugin_protocol;
mod publish;
mod push_pull;
mod rotate;
mod signers;
mod stack;
mod tamper;
mod trust;
mod verify_policy;
