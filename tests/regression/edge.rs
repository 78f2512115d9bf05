//! Regression tests: see main.rs. This module: the CLI edge (argv, error rendering, docker
//! config secrets).

use std::ffi::OsString;
use std::process::Command;

use docker_trustacr::plugin::{self, GlobalFlags};

const BIN: &str = env!("CARGO_BIN_EXE_docker-trustacr");

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// Runs the binary standalone with a scrubbed environment, so nothing on this machine (a docker
/// config, an engine) is read before argv is judged.
fn run_standalone(args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().expect("temp home");
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run docker-trustacr")
}

// See: #8 item 15
#[test]
fn a_multibyte_short_flag_is_left_for_clap_instead_of_panicking() {
    let (flags, consumed) = GlobalFlags::parse_leading(&os(&["-é", "info"])).unwrap();
    assert_eq!((flags, consumed), (GlobalFlags::default(), 0));
    let inv = plugin::parse_invocation(&os(&["docker-trustacr", "-é", "info"]), false).unwrap();
    assert_eq!(inv.args, os(&["docker-trust-acr", "-é", "info"]));
}

// See: #8 item 15
#[test]
fn a_multibyte_short_flag_is_a_usage_error_with_exit_code_2_not_a_panic() {
    for args in [&["-é", "info"][..], &["-Dé", "info"], &["-Hé"], &["-€"]] {
        let out = run_standalone(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    }
}

// See: #8 item 15 (the short-flag rewrite: pflag reads `-Dc ctx` as `-D -c ctx`)
#[test]
fn combined_short_bool_flags_are_read_as_pflag_reads_them() {
    let (flags, consumed) = GlobalFlags::parse_leading(&os(&["-Dc", "ctx", "info"])).unwrap();
    assert!(flags.debug);
    assert_eq!(flags.context.as_deref(), Some("ctx"));
    assert_eq!(consumed, 2);
}

