//! argv → docker global flags → plugin arguments → clap, with any bytes (#8 item 15).
//!
//! The input is split on NUL into arguments (argv can hold any other byte on Unix); the first
//! byte chooses plugin or standalone mode. Nothing may panic, and the split must account for
//! every argument.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use docker_trustacr::cli;
use docker_trustacr::plugin::{self, GlobalFlags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let started_by_docker = mode & 1 == 1;
    let mut argv = vec![OsString::from("docker-trustacr")];
    argv.extend(rest.split(|&b| b == 0).map(|a| OsString::from_vec(a.to_vec())));

    if let Ok((_, consumed)) = GlobalFlags::parse_leading(&argv[1..]) {
        assert!(consumed <= argv.len() - 1, "consumed more arguments than given");
    }
    let Ok(inv) = plugin::parse_invocation(&argv, started_by_docker) else {
        return;
    };
    // Program name first, then at most the arguments given plus the `--help` that
    // `docker help trustacr` turns into.
    assert_eq!(inv.args[0], inv.mode.command_name());
    assert!(inv.args.len() <= argv.len() + 1);
    let _ = cli::check_args(inv.mode, &inv.args);
});
