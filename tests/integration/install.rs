//! install.sh: where it puts the plugin, that a second run changes nothing, and `--uninstall`.

use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

#[test]
fn install_is_idempotent_and_uninstall_removes_both_names() {
    let env = TestEnv::new();
    let plugin = env.config.join("cli-plugins/docker-trustacr");
    let link = env.home.join(".local/bin/docker-trust-acr");

    let first = env.install();
    assert!(
        stdout(&first).contains("docker trustacr --help"),
        "{}",
        stdout(&first)
    );
    let meta = std::fs::metadata(&plugin).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    assert_eq!(std::fs::read_link(&link).unwrap(), plugin);
    assert_eq!(std::fs::read(&plugin).unwrap(), std::fs::read(BIN).unwrap());

    env.install();
    let names: Vec<_> = std::fs::read_dir(env.config.join("cli-plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["docker-trustacr"],
        "a second run must leave exactly one file"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), plugin);

    let out = run(env.cmd(repo_root().join("install.sh")).arg("--uninstall"));
    assert_success(&out, "install.sh --uninstall");
    assert!(!plugin.exists());
    assert!(std::fs::symlink_metadata(&link).is_err());
    // After uninstalling, docker no longer knows the command.
    let out = run(env.docker().args(["trustacr", "info"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown command"), "{}", stderr(&out));
}

#[test]
fn install_refuses_unknown_options_and_missing_binaries() {
    let env = TestEnv::new();
    let out = run(env.cmd(repo_root().join("install.sh")).arg("--bogus"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(env
        .cmd(repo_root().join("install.sh"))
        .args(["--from", "/nonexistent/docker-trustacr"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/docker-trustacr"),
        "{}",
        stderr(&out)
    );
}
