//! Attacks on the wire: the real notary-server behind the tampering proxy ([`crate::tamper`]),
//! the plugin pointed at the proxy. What the verification core refuses on crafted bytes
//! (tests/attacks.rs) is proven here to be refused over real HTTP too.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::harness::*;
use crate::tamper::{Action, Tamper};

/// An environment for the stack's notary-server and engine, with the passphrases docker and the
/// notary CLI ask for.
fn wire_env() -> TestEnv {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    env.set("DOCKER_HOST", &stack.docker_host);
    env.set("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123");
    env.set(
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
        "repo-pass-123",
    );
    env.set("NOTARY_ROOT_PASSPHRASE", "root-pass-123");
    env.set("NOTARY_TARGETS_PASSPHRASE", "targets-pass-123");
    env.set("NOTARY_SNAPSHOT_PASSPHRASE", "snap-pass-123");
    env.set("NOTARY_DELEGATION_PASSPHRASE", "deleg-pass-123");
    env
}

/// The plugin with its own docker config dir (its own trust cache), talking to `proxy`.
fn plugin_via(env: &TestEnv, config: &Path, proxy: &Tamper, args: &[&str]) -> Output {
    std::fs::create_dir_all(config).unwrap();
    run(env
        .plugin()
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .args(args))
}

/// The proxy itself: passes, answers rules, records, and resets.
#[test]
fn tamper_proxy_passes_rewrites_and_records() {
    let env = wire_env();
    let gun = unique_repo(&stack().registry, "proxy");
    let payload = env.home.join("p.txt");
    std::fs::write(&payload, "proxied").unwrap();
    assert_success(&notary(&env, &["init", &gun, "-p"]), "notary init");
    assert_success(
        &notary(&env, &["add", &gun, "v1", payload.to_str().unwrap(), "-p"]),
        "notary add",
    );
    let proxy = Tamper::start();
    let cfg: PathBuf = env.home.join("cfg");

    proxy.on("GET", "timestamp.json", Action::Reset);
    let out = plugin_via(&env, &cfg, &proxy, &["verify", &format!("{gun}:v1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r.path.ends_with("/timestamp.json") && r.status.is_none()),
        "{seen:?}"
    );

    // Rules cleared: the same command now passes through.
    proxy.clear();
    let out = plugin_via(&env, &cfg, &proxy, &["verify", &format!("{gun}:v1")]);
    assert_success(&out, "verify after the rules were cleared");
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/timestamp.json") && r.status == Some(200))
    );
}

/// A repository the notary CLI signed `v1` in, for the hostile-answer cases.
fn notary_repo(env: &TestEnv, prefix: &str) -> String {
    let gun = unique_repo(&stack().registry, prefix);
    let payload = env.home.join(format!("{prefix}.txt"));
    std::fs::write(&payload, prefix).unwrap();
    assert_success(&notary(env, &["init", &gun, "-p"]), "notary init");
    assert_success(
        &notary(env, &["add", &gun, "v1", payload.to_str().unwrap(), "-p"]),
        "notary add",
    );
    gun
}

/// Each hostile answer of a notary server, over real HTTP: `verify` fails with the reason, and
/// the refused update caches nothing. (The same attacks on crafted bytes: tests/attacks.rs.)
#[test]
fn hostile_answers_over_http_are_refused_and_nothing_is_cached() {
    let env = wire_env();
    let gun = notary_repo(&env, "hostile");
    let v1 = format!("{gun}:v1");
    let proxy = Tamper::start();
    let timestamp_limit = "sent more than 1048576 bytes";
    let cases: Vec<(&str, &str, Action, &str)> = vec![
        (
            "endless timestamp",
            "/timestamp.json",
            Action::Endless,
            timestamp_limit,
        ),
        (
            "timestamp announcing 2 MiB",
            "/timestamp.json",
            Action::ClaimLength(2 * 1024 * 1024),
            timestamp_limit,
        ),
        (
            "snapshot cut short by a wrong Content-Length",
            "/snapshot.",
            Action::WrongLength(-1),
            "snapshot: sha256 hash does not match",
        ),
        (
            "root announcing more than it sends",
            "/root.json",
            Action::WrongLength(100),
            "cannot reach",
        ),
        (
            "targets replaced",
            "/targets.",
            Action::Body(b"{}".to_vec()),
            "targets: ",
        ),
        (
            "server error on the snapshot",
            "/snapshot.",
            Action::Status(500),
            "500",
        ),
    ];
    for (i, (what, path, action, reason)) in cases.into_iter().enumerate() {
        proxy.clear();
        proxy.on("GET", path, action);
        let cfg = env.home.join(format!("hostile-{i}"));
        let out = plugin_via(&env, &cfg, &proxy, &["verify", &v1]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(reason), "{what}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{what}: {}", stdout(&out));
        assert!(
            !cfg.join("trust/tuf").join(&gun).exists(),
            "{what}: a refused update cached something"
        );
    }

    // A slow answer is waited for, and a predicate rule only hits what it names.
    proxy.clear();
    proxy.once(
        "GET",
        "/timestamp.json",
        Action::Delay(Duration::from_millis(300)),
    );
    proxy.when(
        |m, p| m == "GET" && p.ends_with("/no-such-file"),
        Action::Reset,
    );
    proxy.forget_requests();
    let cfg = env.home.join("hostile-slow");
    let out = plugin_via(&env, &cfg, &proxy, &["verify", &v1]);
    assert_success(&out, "verify with a slow timestamp");
    let seen = proxy.requests();
    assert!(seen.iter().all(|r| r.status == Some(200)), "{seen:?}");
    assert!(
        seen.iter().any(|r| r.path.ends_with("/timestamp.json")),
        "{seen:?}"
    );
}
