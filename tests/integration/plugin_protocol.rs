//! The plugin as the real docker CLI runs it: discovery, help, global flags, usage errors, and
//! the metadata call that must do no I/O.

use crate::harness::*;

#[test]
fn docker_help_lists_trustacr_with_its_description() {
    let env = TestEnv::new();
    env.install();
    let out = run(env.docker().arg("--help"));
    assert_success(&out, "docker --help");
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("trustacr*"))
        .unwrap_or_else(|| panic!("trustacr not listed:\n{text}"));
    assert!(
        line.contains("Signed push and pull for Azure Container Registry"),
        "{line}"
    );
    assert!(!text.contains("Invalid Plugins"), "{text}");
}

#[test]
fn docker_trustacr_help_and_docker_help_trustacr_print_the_help() {
    let env = TestEnv::new();
    env.install();
    for args in [&["trustacr", "--help"][..], &["help", "trustacr"][..]] {
        let out = run(env.docker().args(args));
        assert_success(&out, &format!("docker {args:?}"));
        let text = stdout(&out);
        assert!(text.contains("Usage: docker trustacr"), "{args:?}:\n{text}");
        assert!(text.contains("info"), "{args:?}:\n{text}");
    }
}

#[test]
fn plugin_without_arguments_prints_usage_and_fails() {
    let env = TestEnv::new();
    env.install();
    let out = run(env.docker().arg("trustacr"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Usage: docker trustacr"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_subcommand_and_unknown_flag_are_usage_errors() {
    let env = TestEnv::new();
    env.install();
    let out = run(env.docker().args(["trustacr", "frobnicate"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&out)
    );
    let out = run(env.docker().args(["trustacr", "info", "--bogus"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unexpected argument '--bogus'"),
        "{}",
        stderr(&out)
    );
    let out = run(env.plugin().args(["info", "--format", "yaml"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn metadata_answer_matches_the_file_in_plugin_metadata() {
    let env = TestEnv::new();
    let out = run(env.plugin().arg("docker-cli-plugin-metadata"));
    assert_success(&out, "metadata");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = std::fs::read_to_string(repo_root().join("plugin-metadata/metadata.json")).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(&file).unwrap();
    want["Version"] = env!("CARGO_PKG_VERSION").into();
    assert_eq!(got, want);
}

/// The docker CLI waits for the metadata answer on every `docker --help`, without a timeout. Under
/// strace, the call must open no file beyond the dynamic loader's libraries and make no socket.
#[test]
fn metadata_call_opens_no_file_and_no_socket() {
    let env = TestEnv::new();
    let trace = env.home.join("trace");
    let mut cmd = env.cmd("strace");
    cmd.args(["-f", "-qq", "-e", "trace=%file,%network", "-o"])
        .arg(&trace)
        .arg(BIN)
        .arg("docker-cli-plugin-metadata")
        // An unreadable HOME and no DOCKER_HOST: any config lookup would show up or fail.
        .env("HOME", "/nonexistent/home")
        .env_remove("DOCKER_CONFIG")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = run(&mut cmd);
    assert_success(&out, "strace metadata");
    let text = std::fs::read_to_string(&trace).unwrap();
    // Allowed: the dynamic loader opening libraries, fstat on already open descriptors, and the
    // runtime reading its own /proc and /sys entries.
    let allowed = |l: &str| {
        let path = l.split('"').nth(1);
        match path {
            _ if l.contains("execve(") => true,
            Some("") => true,
            Some(p) => [
                "/etc/ld.so",
                "/lib/",
                "/lib64/",
                "/usr/lib/",
                "/proc/self/",
                "/sys/",
            ]
            .iter()
            .any(|prefix| p.starts_with(prefix)),
            None => l.starts_with("+++") || l.contains("exited with"),
        }
    };
    let unexpected: Vec<&str> = text.lines().filter(|l| !allowed(l)).collect();
    assert!(
        unexpected.is_empty(),
        "metadata did file or network I/O:\n{}",
        unexpected.join("\n")
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());
}

#[test]
fn standalone_name_runs_subcommand_at_argv1() {
    let env = TestEnv::new();
    env.install();
    let link = env.home.join(".local/bin/docker-trust-acr");
    let out = run(env.cmd(&link).arg("--help"));
    assert_success(&out, "docker-trust-acr --help");
    assert!(
        stdout(&out).contains("Usage: docker-trust-acr"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn run_kills_a_command_past_its_deadline_and_panics_with_its_output() {
    // A shell that prints, then hangs: what a stuck plugin looks like to the harness.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "echo started; echo on-stderr >&2; exec sleep 600"]);
    let started = std::time::Instant::now();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_within(&mut cmd, std::time::Duration::from_secs(1))
    }))
    .expect_err("a command past its deadline must fail the test");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("killed it"), "{message}");
    assert!(
        message.contains("started") && message.contains("on-stderr"),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
