//! Attacks on the wire: the real notary-server behind the tampering proxy ([`crate::tamper`]),
//! the plugin pointed at the proxy. What the verification core refuses on crafted bytes
//! (tests/attacks.rs) is proven here to be refused over real HTTP too.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::tamper::{Action, Tamper};

/// The plugin with its own docker config dir (its own trust cache), talking to `proxy`.
fn plugin_via(env: &TestEnv, config: &Path, proxy: &Tamper, args: &[&str]) -> Output {
    std::fs::create_dir_all(config).unwrap();
    run(env
        .plugin()
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .args(args))
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

/// Whether the engine has any image of `repo` (by tag or digest).
fn engine_has_images_of(env: &TestEnv, repo: &str) -> Vec<String> {
    let out = run(env.docker().args([
        "images",
        "--digests",
        "--format",
        "{{.Tag}} {{.Digest}}",
        repo,
    ]));
    assert_success(&out, "docker images");
    stdout(&out).lines().map(str::to_string).collect()
}

fn remove_local_images(env: &TestEnv, repo: &str) {
    let out = run(env
        .docker()
        .args(["images", "-q", "--no-trunc", repo])
        .stderr(std::process::Stdio::null()));
    let mut ids: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let _ = run(env.docker().args(["rmi", "-f", &id]));
    }
    assert!(engine_has_images_of(env, repo).is_empty());
}

/// The notary CLI on docker's own trust dir, so both use the same keys.
fn notary_docker(env: &TestEnv, args: &[&str]) -> Output {
    let s = stack();
    run(env
        .cmd("notary")
        .arg("-d")
        .arg(env.config.join("trust"))
        .args(["-s", &s.notary_url, "--tlscacert"])
        .arg(&s.notary_ca)
        .args(args))
}

/// Signs `tag` = `digest` (`sha256:…`) of `size` bytes into `role` with the notary CLI.
fn sign_hash(env: &TestEnv, repo: &str, tag: &str, (digest, size): (&str, u64), role: &str) {
    let size = size.to_string();
    let mut args = vec![
        "addhash",
        repo,
        tag,
        &size,
        "--sha256",
        digest.trim_start_matches("sha256:"),
        "-p",
    ];
    if role != "targets" {
        args.extend(["--roles", role]);
    }
    assert_success(
        &notary_docker(env, &args),
        &format!("notary addhash {tag} ({role})"),
    );
}

/// A repository where `targets` signs `v1` = an old image and docker's `targets/releases`
/// delegation (alice) signs `v1` = the current one: the shape a delegation downgrade needs.
struct Downgrade {
    env: TestEnv,
    repo: String,
    old: String,
    current: String,
}

fn downgrade_world() -> Downgrade {
    let mut env = trust_env();
    // notary and docker share docker's trust dir, so the keys notary makes are the ones docker
    // then uses, and docker asks the repository passphrase for all of them but root.
    env.set("NOTARY_TARGETS_PASSPHRASE", "repo-pass-123");
    env.set("NOTARY_SNAPSHOT_PASSPHRASE", "repo-pass-123");
    env.set("NOTARY_DELEGATION_PASSPHRASE", "repo-pass-123");
    let repo = unique_repo(&stack().registry, "downgrade");
    // No delegation yet: v1 goes into `targets`.
    let (old, old_size) = docker_push(
        &env,
        &format!("{repo}:v1"),
        "old, signed by the repository key",
    );
    assert_success(&notary_docker(&env, &["init", &repo, "-p"]), "notary init");
    sign_hash(&env, &repo, "v1", (&old, old_size), "targets");
    let keys = env.home.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    assert_success(
        &run(env
            .docker()
            .args(["trust", "key", "generate", "alice", "--dir"])
            .arg(&keys)),
        "docker trust key generate",
    );
    assert_success(
        &run(env
            .docker()
            .args(["trust", "signer", "add", "--key"])
            .arg(keys.join("alice.pub"))
            .args(["alice", &repo])),
        "docker trust signer add",
    );
    // `docker trust sign` would co-sign the digest `targets` already has; the notary CLI signs
    // the new one with alice's key into targets/releases.
    let (current, size) = docker_push(&env, &format!("{repo}:v1"), "current, signed by alice");
    sign_hash(&env, &repo, "v1", (&current, size), "targets/releases");
    assert_ne!(old, current);
    Downgrade {
        env,
        repo,
        old,
        current,
    }
}

fn assert_refused_naming_releases(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(4),
        "{what} must fail\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert!(err.contains("targets/releases"), "{what}: {err}");
}

#[test]
fn delegation_listed_in_snapshot_but_not_served_fails_cold_and_warm() {
    let w = downgrade_world();
    let v1 = format!("{}:v1", w.repo);
    let proxy = Tamper::start();

    // Through the proxy with no rule, the delegation's current digest verifies.
    let warm = w.env.home.join("warm-config");
    let out = plugin_via(&w.env, &warm, &proxy, &["verify", "--format", "json", &v1]);
    assert_success(&out, "verify through the proxy");
    let v = json(&out);
    assert_eq!(v["digest"], w.current.as_str());
    assert_eq!(v["role"], "targets/releases");
    assert!(
        proxy.requests().iter().any(|r| r.method == "GET"
            && r.path.contains("/targets/releases.")
            && r.status == Some(200)),
        "{:?}",
        proxy.requests()
    );

    // The server withholds targets/releases, which the snapshot lists.
    proxy.on("GET", "/targets/releases.", Action::Status(404));

    // Cold: a new trust cache.
    let cold = w.env.home.join("cold-config");
    let out = plugin_via(&w.env, &cold, &proxy, &["verify", &v1]);
    assert_refused_naming_releases(&out, "cold verify");
    assert!(!stdout(&out).contains(&w.old), "{}", stdout(&out));
    assert!(
        !cold.join("trust/tuf").join(&w.repo).exists(),
        "nothing may be cached from a refused update"
    );

    // Warm: a new releases version (v2 signed by alice), so the cached copy no longer matches.
    let (v2, v2_size) = docker_push(&w.env, &format!("{}:v2", w.repo), "v2, signed by alice");
    sign_hash(&w.env, &w.repo, "v2", (&v2, v2_size), "targets/releases");
    let out = plugin_via(&w.env, &warm, &proxy, &["verify", &v1]);
    assert_refused_naming_releases(&out, "warm verify");
    assert!(!stdout(&out).contains(&w.old), "{}", stdout(&out));

    // pull pulls nothing: neither image reaches the engine, no tag is made.
    remove_local_images(&w.env, &w.repo);
    let out = plugin_via(&w.env, &warm, &proxy, &["pull", &v1]);
    assert_refused_naming_releases(&out, "warm pull");
    let out = plugin_via(&w.env, &cold, &proxy, &["pull", &v1]);
    assert_refused_naming_releases(&out, "cold pull");
    assert_eq!(engine_has_images_of(&w.env, &w.repo), Vec::<String>::new());
}

/// The proxy itself: passes, answers rules, records, and resets.
#[test]
fn tamper_proxy_passes_rewrites_and_records() {
    let env = trust_env();
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
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
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
    let env = trust_env();
    let gun = notary_repo(&env, "hostile");
    let v1 = format!("{gun}:v1");
    let proxy = Tamper::start();
    let timestamp_limit = "sent more than 1048576 bytes";
    // Exit codes: refused data 4, a connection that breaks 6, a server error 1.
    let cases: Vec<(&str, &str, Action, &str, i32)> = vec![
        (
            "endless timestamp",
            "/timestamp.json",
            Action::Endless,
            timestamp_limit,
            4,
        ),
        (
            "timestamp announcing 2 MiB",
            "/timestamp.json",
            Action::ClaimLength(2 * 1024 * 1024),
            timestamp_limit,
            4,
        ),
        (
            "snapshot cut short by a wrong Content-Length",
            "/snapshot.",
            Action::WrongLength(-1),
            "snapshot: sha256 hash does not match",
            4,
        ),
        (
            "root announcing more than it sends",
            "/root.json",
            Action::WrongLength(100),
            "cannot reach",
            6,
        ),
        (
            "targets replaced",
            "/targets.",
            Action::Body(b"{}".to_vec()),
            "targets: ",
            4,
        ),
        (
            "server error on the snapshot",
            "/snapshot.",
            Action::Status(500),
            "500",
            1,
        ),
    ];
    for (i, (what, path, action, reason, code)) in cases.into_iter().enumerate() {
        proxy.clear();
        proxy.on("GET", path, action);
        let cfg = env.home.join(format!("hostile-{i}"));
        let out = plugin_via(&env, &cfg, &proxy, &["verify", &v1]);
        assert_eq!(out.status.code(), Some(code), "{what}: {}", stderr(&out));
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

/// Rotates a server-managed key with the notary CLI (`notary key rotate GUN ROLE -r`).
fn rotate_server_key(env: &TestEnv, gun: &str, role: &str) {
    assert_success(
        &notary(env, &["key", "rotate", gun, role, "-r"]),
        &format!("notary key rotate {role} -r"),
    );
}

fn cached_root_version(config: &Path, gun: &str) -> u64 {
    let root = std::fs::read(
        config
            .join("trust/tuf")
            .join(gun)
            .join("metadata/root.json"),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&root).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}

#[test]
fn server_key_rotation_by_notary_is_followed_by_a_warm_client() {
    let env = trust_env();
    let gun = notary_repo(&env, "rotate");
    let v1 = format!("{gun}:v1");
    let cfg = env.home.join("warm");
    std::fs::create_dir_all(&cfg).unwrap();
    let verify = || {
        run(env
            .plugin()
            .env("DOCKER_CONFIG", &cfg)
            .args(["verify", &v1]))
    };
    assert_success(&verify(), "verify before rotation");
    let before = cached_root_version(&cfg, &gun);

    rotate_server_key(&env, &gun, "timestamp");
    assert_success(&verify(), "warm verify after the timestamp key rotation");
    let after_ts = cached_root_version(&cfg, &gun);
    assert!(after_ts > before, "root {before} -> {after_ts}");

    rotate_server_key(&env, &gun, "snapshot");
    assert_success(&verify(), "warm verify after the snapshot key rotation");
    assert!(cached_root_version(&cfg, &gun) > after_ts);
}

#[test]
fn tag_signed_with_only_a_sha512_is_refused_by_verify_and_pull() {
    let env = trust_env();
    let gun = unique_repo(&stack().registry, "sha512");
    assert_success(&notary(&env, &["init", &gun, "-p"]), "notary init");
    let sha512 = "ab".repeat(64);
    assert_success(
        &notary(
            &env,
            &["addhash", &gun, "v1", "523", "--sha512", &sha512, "-p"],
        ),
        "notary addhash --sha512",
    );
    for cmd in ["verify", "pull"] {
        let out = run(env.plugin().args([cmd, &format!("{gun}:v1")]));
        assert_eq!(out.status.code(), Some(4), "{cmd}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("no valid hash, expecting sha256"),
            "{cmd}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("sha256:"), "{cmd}: {}", stdout(&out));
    }
}

#[test]
fn replayed_older_timestamp_is_refused_as_a_rollback() {
    let env = trust_env();
    let gun = notary_repo(&env, "replay");
    let proxy = Tamper::start();
    let cfg = env.home.join("replay-cfg");
    let v1 = format!("{gun}:v1");
    assert_success(&plugin_via(&env, &cfg, &proxy, &["verify", &v1]), "verify");
    let cached_ts = cfg
        .join("trust/tuf")
        .join(&gun)
        .join("metadata/timestamp.json");
    let old = std::fs::read(&cached_ts).unwrap();

    // The repository moves on; the client sees the newer timestamp.
    let payload = env.home.join("v2.txt");
    std::fs::write(&payload, "v2").unwrap();
    assert_success(
        &notary(&env, &["add", &gun, "v2", payload.to_str().unwrap(), "-p"]),
        "notary add v2",
    );
    assert_success(&plugin_via(&env, &cfg, &proxy, &["verify", &v1]), "verify");
    let newer = std::fs::read(&cached_ts).unwrap();
    assert_ne!(old, newer);

    // A network attacker replays the older, validly signed, unexpired timestamp.
    proxy.on("GET", "/timestamp.json", Action::Body(old));
    let out = plugin_via(&env, &cfg, &proxy, &["verify", &v1]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("timestamp") && err.contains("rollback"),
        "{err}"
    );
    assert!(
        std::fs::read(&cached_ts).unwrap() == newer,
        "the floor stays"
    );
}
