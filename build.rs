//! Bakes `plugin-metadata/metadata.json` into the binary with the crate version filled in,
//! so that answering `docker-cli-plugin-metadata` is a single write of static bytes: the docker
//! CLI waits for that answer on every `docker --help` and before every `docker trustacr` call.

use std::{env, fs, path::PathBuf};

const PLACEHOLDER: &str = "@CARGO_PKG_VERSION@";

fn main() {
    let src = "plugin-metadata/metadata.json";
    println!("cargo:rerun-if-changed={src}");
    let text =
        fs::read_to_string(src).expect("plugin-metadata/metadata.json is part of the source tree");
    assert!(
        text.contains(PLACEHOLDER),
        "{src} must carry the {PLACEHOLDER} placeholder so the Version follows Cargo.toml"
    );
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("metadata.json");
    fs::write(out, text.replace(PLACEHOLDER, &version)).expect("OUT_DIR is writable");
}
