//! Faults on the real stack (issue #12 item 2): notary-server failing, stalling or resetting at
//! each step through the tampering proxy, the configurable timeouts, a read-only trust cache.
//! Each case checks the same invariants: a non-zero exit with a message naming the step,
//! nothing claimed that did not happen, no half-written local state, and a rerun completes.
//!
//! "No half-written local state" is per file: every cached file is either the one from before
//! or the one a successful rerun writes. Byte-identity of the whole directory is not the rule,
//! on purpose: the timestamp and snapshot floors advance as soon as each verifies (issue #8 item
//! 17), so an attacker who cuts the connection after them cannot roll the client back later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::tamper::{Action, Tamper};

/// `<config>/trust/tuf/<gun>/metadata/*`, by file name.
fn cache_files(config: &Path, gun: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = config.join("trust/tuf").join(gun).join("metadata");
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            files.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn verify_via(env: &TestEnv, config: &Path, proxy: &Tamper, image: &str) -> Output {
    run(env
        .plugin()
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .args(["verify", image]))
}

/// A repository whose tag `v1` was signed at digest `old`, a reader config whose trust cache
/// is warm at that state, and then `v1` re-signed at `new` behind the reader's back.
struct Moved {
    env: TestEnv,
    repo: String,
    warm: PathBuf,
    old: String,
    new: String,
}

fn moved_repository(prefix: &str, proxy: &Tamper) -> Moved {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, prefix);
    let (old, _) = docker_push(&env, &format!("{repo}:v1"), &format!("{prefix} old"));
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "sign the old image",
    );
    let warm = env.home.join("cfg-warm");
    let out = verify_via(&env, &warm, proxy, &format!("{repo}:v1"));
    assert_success(&out, "warm the reader's cache");
    assert_eq!(stdout(&out).trim(), old);
    let (new, _) = docker_push(&env, &format!("{repo}:v1"), &format!("{prefix} new"));
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "sign the new image",
    );
    Moved {
        env,
        repo,
        warm,
        old,
        new,
    }
}

#[test]
fn a_verify_cut_at_any_step_names_it_keeps_old_or_new_files_and_a_rerun_completes() {
    let proxy = Tamper::start();
    let m = moved_repository("cut", &proxy);
    let image = format!("{}:v1", m.repo);
    let before = cache_files(&m.warm, &m.repo);
    // Exit codes: a server error 1, a connection that breaks 6, bytes that do not match 4.
    let cases: &[(&str, Action, &str, i32)] = &[
        (
            "/_trust/tuf/timestamp.",
            Action::Status(503),
            "timestamp",
            1,
        ),
        ("/_trust/tuf/snapshot.", Action::Status(503), "snapshot", 1),
        ("/_trust/tuf/targets.", Action::Status(500), "targets", 1),
        ("/_trust/tuf/timestamp.", Action::Reset, "timestamp", 6),
        ("/_trust/tuf/snapshot.", Action::Reset, "snapshot", 6),
        ("/_trust/tuf/targets.", Action::Reset, "targets", 6),
        (
            "/_trust/tuf/targets.",
            Action::WrongLength(-10),
            "targets",
            4,
        ),
    ];
    for (i, (file, action, step, code)) in cases.iter().enumerate() {
        let what = format!("{action:?} on {file}");
        let cfg = m.env.home.join(format!("cfg-cut-{i}"));
        copy_dir(&m.warm, &cfg);
        proxy.clear();
        proxy.on("GET", file, action.clone());
        let out = verify_via(&m.env, &cfg, &proxy, &image);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{what}: {err}");
        assert!(
            stdout(&out).trim().is_empty(),
            "{what}: a digest was claimed"
        );
        assert!(
            err.contains(step),
            "{what}: the error does not name {step}: {err}"
        );
        let during = cache_files(&cfg, &m.repo);

        proxy.clear();
        let out = verify_via(&m.env, &cfg, &proxy, &image);
        assert_success(&out, &format!("the rerun after {what}"));
        assert_eq!(stdout(&out).trim(), m.new, "{what}");
        let after = cache_files(&cfg, &m.repo);
        for (name, bytes) in &during {
            assert!(
                before.get(name) == Some(bytes) || after.get(name) == Some(bytes),
                "{what}: {name} in the cache is neither the old nor the new file"
            );
        }
    }
    assert_ne!(m.old, m.new);
}

#[test]
fn a_stalled_notary_server_ends_at_the_request_timeout_naming_the_step() {
    let proxy = Tamper::start();
    let m = moved_repository("stall", &proxy);
    let cfg = m.env.home.join("cfg-stall");
    copy_dir(&m.warm, &cfg);
    let before = cache_files(&cfg, &m.repo);
    proxy.on(
        "GET",
        "/_trust/tuf/snapshot.",
        Action::Delay(Duration::from_secs(60)),
    );
    let started = Instant::now();
    let out = run(m
        .env
        .plugin()
        .env("DOCKER_CONFIG", &cfg)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .env("TRUSTACR_REQUEST_TIMEOUT", "2")
        .args(["verify", &format!("{}:v1", m.repo)]));
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        took < Duration::from_secs(30),
        "took {took:?}: the request timeout was ignored"
    );
    assert!(
        err.contains("snapshot") && err.contains("timed out"),
        "{err}"
    );
    // Only the floors may have advanced (the timestamp verified before the stall).
    let during = cache_files(&cfg, &m.repo);
    for name in ["root.json", "targets.json"] {
        assert_eq!(during.get(name), before.get(name), "{name} changed");
    }
    proxy.clear();
    let out = verify_via(&m.env, &cfg, &proxy, &format!("{}:v1", m.repo));
    assert_success(&out, "the rerun after the stall");
    assert_eq!(stdout(&out).trim(), m.new);
}

#[test]
fn the_whole_command_timeout_stops_a_stalled_sign_before_anything_is_sent() {
    let env = trust_env();
    let proxy = Tamper::start();
    let repo = unique_repo(&stack().registry, "deadline");
    docker_push(&env, &format!("{repo}:base"), "deadline base");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:base")])),
        "sign base",
    );
    docker_push(&env, &format!("{repo}:v2"), "deadline v2");
    proxy.on(
        "GET",
        "/_trust/tuf/timestamp.",
        Action::Delay(Duration::from_secs(60)),
    );
    let cfg = env.home.join("cfg-deadline");
    std::fs::create_dir_all(&cfg).unwrap();
    let started = Instant::now();
    let out = run(env
        .plugin()
        .env("DOCKER_CONFIG", &cfg)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .env("TRUSTACR_TIMEOUT", "3")
        .args(["sign", &format!("{repo}:v2")]));
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        err.contains("TRUSTACR_TIMEOUT") && err.contains("3 s"),
        "{err}"
    );
    assert!(
        !proxy.requests().iter().any(|r| r.method == "POST"),
        "an upload was sent after the deadline"
    );
    let out = notary(&env, &["list", &repo]);
    assert_success(&out, "notary list");
    assert!(!stdout(&out).contains("v2"), "v2 was published");

    proxy.clear();
    let out = run(env
        .plugin()
        .env("DOCKER_CONFIG", &cfg)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .args(["sign", &format!("{repo}:v2")]));
    assert_success(&out, "the rerun of the sign");
    assert!(stdout(&notary(&env, &["list", &repo])).contains("v2"));
}

#[test]
fn a_notary_server_failing_before_the_upload_publishes_nothing_and_a_rerun_completes() {
    let env = trust_env();
    let proxy = Tamper::start();
    let repo = unique_repo(&stack().registry, "prefail");
    docker_push(&env, &format!("{repo}:base"), "prefail base");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:base")])),
        "sign base",
    );
    let (digest, _) = docker_push(&env, &format!("{repo}:v2"), "prefail v2");
    let cfg = env.home.join("cfg-prefail");
    std::fs::create_dir_all(&cfg).unwrap();
    let sign = || {
        run(env
            .plugin()
            .env("DOCKER_CONFIG", &cfg)
            .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
            .args(["sign", &format!("{repo}:v2")]))
    };
    // Exit codes: a server error 1, a connection that breaks 6.
    for (method, file, action, code) in [
        ("GET", "/_trust/tuf/timestamp.", Action::Status(503), 1),
        ("GET", "/_trust/tuf/targets.", Action::Reset, 6),
        ("POST", "/_trust/tuf/", Action::Status(503), 1),
    ] {
        let what = format!("{action:?} on {method} {file}");
        proxy.clear();
        proxy.on(method, file, action);
        let out = sign();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{what}: {err}");
        assert!(!err.contains("signed and published"), "{what}: {err}");
        let listed = stdout(&notary(&env, &["list", &repo]));
        assert!(
            !listed.contains("v2"),
            "{what}: v2 was published:\n{listed}"
        );
    }
    proxy.clear();
    assert_success(&sign(), "the rerun of the sign");
    let out = run(env
        .plugin()
        .env("DOCKER_CONFIG", &cfg)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .args(["verify", &format!("{repo}:v2")]));
    assert_success(&out, "verify after the rerun");
    assert_eq!(stdout(&out).trim(), digest);
}

#[test]
fn a_trust_cache_that_cannot_be_written_is_an_error_naming_the_directory() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "rocache");
    docker_push(&env, &format!("{repo}:v1"), "unwritable cache");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "sign",
    );
    // A file where the cache directory should be: unwritable even for root (tests run as root
    // in CI, and root ignores a read-only mode).
    let cfg = env.home.join("cfg-ro");
    std::fs::create_dir_all(cfg.join("trust")).unwrap();
    let blocked = cfg.join("trust/tuf");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let out = run(env
        .plugin()
        .env("DOCKER_CONFIG", &cfg)
        .args(["verify", &format!("{repo}:v1")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&blocked.display().to_string()), "{err}");
    assert!(
        stdout(&out).trim().is_empty(),
        "a digest was claimed: {}",
        stdout(&out)
    );
    assert_eq!(std::fs::read(&blocked).unwrap(), b"not a directory");
}

/// A repository with `base` signed and `v2` pushed but not yet signed, and a fresh reader
/// config for signing through a proxy.
struct Unsigned {
    env: TestEnv,
    repo: String,
    digest: String,
    cfg: PathBuf,
}

fn unsigned_v2(prefix: &str) -> Unsigned {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, prefix);
    docker_push(&env, &format!("{repo}:base"), &format!("{prefix} base"));
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:base")])),
        "sign base",
    );
    let (digest, _) = docker_push(&env, &format!("{repo}:v2"), &format!("{prefix} v2"));
    let cfg = env.home.join(format!("cfg-{prefix}"));
    std::fs::create_dir_all(&cfg).unwrap();
    Unsigned {
        env,
        repo,
        digest,
        cfg,
    }
}

impl Unsigned {
    fn sign_via(&self, proxy: &Tamper) -> Output {
        run(self
            .env
            .plugin()
            .env("DOCKER_CONFIG", &self.cfg)
            .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
            .args(["sign", &format!("{}:v2", self.repo)]))
    }

    /// What `notary lookup` says v2 is signed at, `None` when it is not signed.
    fn live_v2(&self) -> Option<String> {
        let out = notary(&self.env, &["list", &self.repo]);
        assert_success(&out, "notary list");
        let hex = self.digest.trim_start_matches("sha256:");
        let line = stdout(&out)
            .lines()
            .find(|l| l.starts_with("v2 "))?
            .to_string();
        Some(if line.contains(hex) {
            self.digest.clone()
        } else {
            line
        })
    }

    /// The rerun signs, and a verify through the proxy sees v2 at its digest.
    fn rerun_completes(&self, proxy: &Tamper, what: &str) {
        proxy.clear();
        assert_success(&self.sign_via(proxy), &format!("the rerun after {what}"));
        let out = run(self
            .env
            .plugin()
            .env("DOCKER_CONFIG", &self.cfg)
            .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
            .args(["verify", &format!("{}:v2", self.repo)]));
        assert_success(&out, &format!("verify after the rerun after {what}"));
        assert_eq!(stdout(&out).trim(), self.digest, "{what}");
        assert_eq!(self.live_v2().as_deref(), Some(self.digest.as_str()));
    }
}

#[test]
fn a_notary_server_dying_during_the_upload_says_it_may_not_be_applied_and_a_rerun_completes() {
    let proxy = Tamper::start();
    let u = unsigned_v2("during");
    // The connection dies while the upload is in flight: the server never saw it.
    proxy.on("POST", "/_trust/tuf/", Action::Reset);
    let out = u.sign_via(&proxy);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("got no answer") && err.contains("may or may not have applied it"),
        "the error does not say the upload's fate is unknown: {err}"
    );
    assert!(err.contains(&format!("verify {}:v2", u.repo)), "{err}");
    assert!(!err.contains("Nothing was published"), "{err}");
    assert!(
        !stdout(&out).contains("Successfully signed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        u.live_v2(),
        None,
        "v2 was published by an upload that never arrived"
    );
    u.rerun_completes(&proxy, "a reset during the upload");
}

#[test]
fn a_notary_server_dying_after_accepting_the_upload_never_says_not_published_and_a_rerun_reconciles()
 {
    let proxy = Tamper::start();
    let u = unsigned_v2("after");
    // The server applies the upload, then the answer is lost.
    proxy.on("POST", "/_trust/tuf/", Action::ResetAfterForward);
    let out = u.sign_via(&proxy);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("may or may not have applied it"),
        "the error does not say the upload's fate is unknown: {err}"
    );
    assert!(!err.contains("Nothing was published"), "{err}");
    assert!(!err.contains("not signed"), "{err}");
    assert!(
        !stdout(&out).contains("Successfully signed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        u.live_v2().as_deref(),
        Some(u.digest.as_str()),
        "the server should have applied the upload"
    );
    u.rerun_completes(&proxy, "a lost answer to the upload");
}

#[test]
fn a_notary_server_dying_after_the_upload_during_the_read_back_says_it_is_live() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let proxy = Tamper::start();
    let u = unsigned_v2("readback");
    // Everything after the (successful) upload is reset: the server is gone once it accepted.
    let posted = Arc::new(AtomicBool::new(false));
    let seen = posted.clone();
    proxy.when(
        move |method, _| {
            if method == "POST" {
                seen.store(true, Ordering::SeqCst);
                return false;
            }
            seen.load(Ordering::SeqCst)
        },
        Action::Reset,
    );
    // A warm cache, so "before" is the verified state the publish started from.
    let out = run(u
        .env
        .plugin()
        .env("DOCKER_CONFIG", &u.cfg)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url())
        .args(["verify", &format!("{}:base", u.repo)]));
    assert_success(&out, "warm the cache");
    let before = cache_files(&u.cfg, &u.repo);
    let out = u.sign_via(&proxy);
    let err = stderr(&out);
    assert!(posted.load(Ordering::SeqCst), "no upload was sent: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the upload was accepted") && err.contains("v2"),
        "the error does not say the change is live: {err}"
    );
    assert!(!err.contains("Nothing was published"), "{err}");
    assert_eq!(u.live_v2().as_deref(), Some(u.digest.as_str()));
    // The cache holds either what it held before or only verified data.
    let during = cache_files(&u.cfg, &u.repo);
    proxy.clear();
    u.rerun_completes(&proxy, "a reset during the read-back");
    let after = cache_files(&u.cfg, &u.repo);
    for (name, bytes) in &during {
        assert!(
            before.get(name) == Some(bytes) || after.get(name) == Some(bytes),
            "{name} in the cache is neither the old nor the new file"
        );
    }
}

/// An emulator of the test's own (its throttle and counters are not shared), a signed image
/// on it and a reader with a cold token cache.
fn throttled_acr(prefix: &str) -> (crate::acr_stack::Emulator, String, TestEnv) {
    use crate::acr_stack::{Name, start_emulator};
    let em = start_emulator(serde_json::json!({}), Name::Own);
    let reference = crate::acr_e2e::signed_image_on(&em.host, prefix);
    let env = crate::acr_e2e::env_on(&em.host, "reader");
    (em, reference, env)
}

/// The next `count` token and exchange requests get `status` with `Retry-After: retry_after`.
fn throttle(em: &crate::acr_stack::Emulator, status: u16, count: u64, retry_after: &str) {
    let out = std::process::Command::new("curl")
        .args(["-sf", "-X", "POST", "--cacert"])
        .arg(&stack().notary_ca)
        .args(["-d"])
        .arg(format!(
            r#"{{"status":{status},"count":{count},"retry_after":"{retry_after}"}}"#
        ))
        .arg(format!("{}/_emulator/throttle", em.base))
        .output()
        .unwrap();
    assert!(out.status.success(), "set the emulator's throttle");
}

fn token_requests(em: &crate::acr_stack::Emulator) -> u64 {
    let s = em.stats();
    s["token"].as_u64().unwrap() + s["exchange"].as_u64().unwrap()
}

#[test]
fn a_token_endpoint_answering_429_or_503_with_a_short_retry_after_is_waited_out() {
    let (em, reference, env) = throttled_acr("throttle-short");
    for (status, throttled) in [(429, 3), (503, 1)] {
        let cfg = env.home.join(format!("cfg-{status}"));
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::copy(env.config.join("trustacr.json"), cfg.join("trustacr.json")).unwrap();
        copy_dir(&env.config.join("tls"), &cfg.join("tls"));
        // Its own keyring namespace: a cold token cache each time.
        let service = format!("trustacr-throttle-{}-{}", std::process::id(), next_id());
        let before = token_requests(&em);
        throttle(&em, status, throttled, "1");
        let started = Instant::now();
        let out = run(env
            .plugin()
            .env("DOCKER_CONFIG", &cfg)
            .env("TRUSTACR_KEYRING_SERVICE", &service)
            .args(["verify", &reference]));
        let took = started.elapsed();
        assert_success(&out, &format!("verify through {throttled} × {status}"));
        assert!(
            stdout(&out).trim().starts_with("sha256:"),
            "{}",
            stdout(&out)
        );
        assert!(
            took >= Duration::from_secs(throttled),
            "{status}: took {took:?}, so the Retry-After of 1 s was not waited"
        );
        // Exchange and two access tokens, plus one request per throttled answer.
        assert_eq!(token_requests(&em) - before, 3 + throttled, "{status}");
    }
}

#[test]
fn a_token_endpoint_asking_for_a_long_wait_fails_at_once_naming_it_and_a_rerun_completes() {
    let (em, reference, env) = throttled_acr("throttle-long");
    throttle(&em, 429, 1000, "3600");
    let started = Instant::now();
    let out = run(env.plugin().args(["verify", &reference]));
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(took < Duration::from_secs(8), "took {took:?}: it waited");
    assert!(stdout(&out).trim().is_empty(), "a digest was claimed");
    for part in [
        &em.host as &str,
        "/oauth2/",
        "429",
        "too many requests",
        "3600 s",
    ] {
        assert!(
            err.contains(part),
            "the error does not name {part:?}: {err}"
        );
    }

    // A wait within the cap but past the whole-command timeout is not started either.
    throttle(&em, 429, 1000, "8");
    let started = Instant::now();
    let out = run(env
        .plugin()
        .env("TRUSTACR_TIMEOUT", "5")
        .args(["verify", &reference]));
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        err.contains("429") && err.contains("8 s") && err.contains("TRUSTACR_TIMEOUT"),
        "{err}"
    );

    // Throttled on every request with a short wait: a bounded number of requests.
    throttle(&em, 429, 1000, "1");
    let before = token_requests(&em);
    let out = run(env.plugin().args(["verify", &reference]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("each of 4 requests"), "{err}");
    assert_eq!(token_requests(&em) - before, 4);

    throttle(&em, 429, 0, "");
    let out = run(env.plugin().args(["verify", &reference]));
    assert_success(&out, "the rerun once the service stops throttling");
}

/// Tags and digests `notary list` shows for `gun`; empty when it has no trust data at all.
fn notary_listing(env: &TestEnv, gun: &str) -> String {
    let out = notary(env, &["list", gun]);
    if out.status.success() {
        stdout(&out)
    } else {
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            text.contains("does not have trust data"),
            "notary list {gun}: {text}"
        );
        String::new()
    }
}

/// Issue #12 item 2, the registry failing mid-push: a proxy in front of the stack's registry
/// fails the manifest upload (the last step of the image push). The push names it, nothing is
/// signed for a manifest the registry does not hold, and the rerun pushes and signs.
#[test]
fn a_registry_failing_mid_push_names_the_push_signs_nothing_and_a_rerun_completes() {
    let env = trust_env();
    let s = stack();
    let ca = std::fs::read(&s.notary_ca).unwrap();
    let registry = Tamper::start_to(&format!("http://{}", s.registry), &ca);
    let host = registry.url().trim_start_matches("https://").to_string();
    let repo = format!("{host}/t/midpush-{}-{}", std::process::id(), next_id());
    let image = format!("{repo}:v1");
    import_image(&env, &image, "mid-push");
    for action in [Action::Status(500), Action::Reset] {
        let what = format!("{action:?} on the manifest PUT");
        registry.clear();
        registry.forget_requests();
        registry.on("PUT", "/manifests/", action);
        let out = run(env.plugin().args(["push", &image]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains(&format!("pushing {image} failed")),
            "{what}: the error does not name the push: {err}"
        );
        assert!(!stdout(&out).contains("Successfully signed"), "{what}");
        assert!(
            registry
                .requests()
                .iter()
                .any(|r| r.method == "PUT" && r.path.contains("/manifests/")),
            "{what}: the push never reached the manifest upload"
        );
        let listed = notary_listing(&env, &repo);
        assert!(
            !listed.contains("v1"),
            "{what}: v1 was signed although the registry has no manifest for it:\n{listed}"
        );
        let out = run(env
            .docker()
            .args(["manifest", "inspect", "--insecure", &image]));
        assert!(!out.status.success(), "{what}: the registry serves v1");
    }
    registry.clear();
    let out = run(env.plugin().args(["push", &image]));
    assert_success(&out, "the rerun of the push");
    let out = run(env.plugin().args(["verify", &image]));
    assert_success(&out, "verify after the rerun");
    let digest = stdout(&out).trim().to_string();
    assert!(
        notary_listing(&env, &repo).contains(digest.trim_start_matches("sha256:")),
        "notary does not list v1 at the verified digest"
    );
}

/// A proxy on a unix socket in front of the stack's engine that, while `cut` is set, passes
/// the head and the first part of an image-pull stream (`POST /…/images/create`) and then
/// closes the connection: the engine going away mid-pull, as the plugin sees it. The shared
/// engine itself is left alone. Dropping the proxy stops it.
struct EngineCut {
    socket: PathBuf,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EngineCut {
    fn start(dir: &Path) -> EngineCut {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let upstream = PathBuf::from(
            stack()
                .docker_host
                .strip_prefix("unix://")
                .expect("a unix socket engine"),
        );
        let socket = dir.join("engine-cut.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (cut, cuts, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, n, s) = (cut.clone(), cuts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(engine) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let is_pull = Arc::new(AtomicBool::new(false));
                let (mut from_client, mut to_engine) =
                    (client.try_clone().unwrap(), engine.try_clone().unwrap());
                let seen_pull = is_pull.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buf = [0u8; 64 * 1024];
                    while let Ok(k) = from_client.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        if String::from_utf8_lossy(&buf[..k]).contains("/images/create") {
                            seen_pull.store(true, Ordering::SeqCst);
                        }
                        if to_engine.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                    let _ = to_engine.shutdown(std::net::Shutdown::Write);
                });
                let (cut, cuts) = (c.clone(), n.clone());
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let (mut from_engine, mut to_client) = (engine, client);
                    let mut buf = [0u8; 64 * 1024];
                    while let Ok(k) = from_engine.read(&mut buf) {
                        if k == 0 || to_client.write_all(&buf[..k]).is_err() {
                            break;
                        }
                        if is_pull.load(Ordering::SeqCst) && cut.load(Ordering::SeqCst) {
                            cuts.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                    let _ = from_engine.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        EngineCut {
            socket,
            cut,
            cuts,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn set_cut(&self, on: bool) {
        self.cut.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn cuts(&self) -> usize {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for EngineCut {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn local_id(env: &TestEnv, image: &str) -> Option<String> {
    let out = run(env
        .docker()
        .args(["image", "inspect", "--format", "{{.Id}}", image]));
    out.status
        .success()
        .then(|| stdout(&out).trim().to_string())
}

/// Issue #12 item 2, the engine going away mid-pull: the pull stream is cut after its first
/// part. The pull says so, the local tag still names the image it named before (never an
/// unverified one), and the rerun pulls and tags the verified digest.
#[test]
fn an_engine_gone_mid_pull_is_named_moves_no_tag_and_a_rerun_completes() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "midpull");
    let image = format!("{repo}:v1");
    let (digest, _) = docker_push(&env, &image, "mid-pull signed");
    assert_success(&run(env.plugin().args(["sign", &image])), "sign");
    // The engine must really pull: forget the pushed image, and let v1 name another one.
    assert_success(&run(env.docker().args(["rmi", &image])), "docker rmi");
    import_image(&env, &image, "mid-pull local, never signed");
    let before = local_id(&env, &image).expect("the local v1");

    let proxy = EngineCut::start(&env.home);
    proxy.set_cut(true);
    let out = run(env
        .plugin()
        .env("DOCKER_HOST", proxy.host())
        .args(["pull", &image]));
    let err = stderr(&out);
    assert!(proxy.cuts() > 0, "the pull stream was never cut: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("pulling {repo}@{digest} failed"))
            && err.contains("connection to the Docker engine was lost"),
        "the error does not name the pull and the lost engine: {err}"
    );
    assert!(
        !stdout(&out).contains("Status: Downloaded"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        local_id(&env, &image).as_deref(),
        Some(before.as_str()),
        "the tag moved although the pull failed"
    );

    proxy.set_cut(false);
    let out = run(env
        .plugin()
        .env("DOCKER_HOST", proxy.host())
        .args(["pull", &image]));
    assert_success(&out, "the rerun of the pull");
    let out = run(env.docker().args([
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]));
    assert!(
        stdout(&out).contains(&format!("{repo}@{digest}")),
        "v1 does not name the verified digest: {}",
        stdout(&out)
    );
}

/// A Secret Service of the test's own: a D-Bus session bus and gnome-keyring on it, so locking
/// its collection affects no other test. Both are killed on drop.
struct OwnKeyring {
    dir: PathBuf,
    address: String,
    bus: std::process::Child,
    daemon: Option<std::process::Child>,
}

const OWN_KEYRING_PASSWORD: &str = "fault-test-keyring";

impl OwnKeyring {
    fn start(dir: &Path) -> OwnKeyring {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let dir = dir.join("own-keyring");
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::set_permissions(
            dir.join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dbus-daemon");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut k = OwnKeyring {
            dir,
            address: line.trim().to_string(),
            bus,
            daemon: None,
        };
        assert!(k.address.starts_with("unix:"), "dbus-daemon said {line:?}");
        k.start_daemon();
        k
    }

    /// Starts gnome-keyring unlocked with the password, as a desktop login does; the login
    /// collection on disk is kept between starts.
    fn start_daemon(&mut self) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("gnome-keyring.log")).unwrap())
            .spawn()
            .expect("run gnome-keyring-daemon");
        {
            let mut stdin = daemon.stdin.take().unwrap();
            stdin.write_all(OWN_KEYRING_PASSWORD.as_bytes()).unwrap();
        }
        self.daemon = Some(daemon);
        // Up once the login collection (created from the password on first start) is listed.
        // Nothing is sent to the secrets name before the daemon owns it: D-Bus would start
        // another, locked, keyring for it (service activation).
        let up = || {
            let out = self.dbus_send(&[
                "/org/freedesktop/secrets",
                "org.freedesktop.DBus.Properties.Get",
                "string:org.freedesktop.Secret.Service",
                "string:Collections",
            ]);
            out.status.success() && stdout(&out).contains("/collection/login")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.owned() || !up() || self.locked() == Some(true) {
            assert!(
                Instant::now() < deadline,
                "the keyring did not come up unlocked; it said:\n{}\ncollections: {:?}",
                std::fs::read_to_string(self.dir.join("gnome-keyring.log")).unwrap_or_default(),
                self.dbus_send(&[
                    "/org/freedesktop/secrets",
                    "org.freedesktop.DBus.Properties.Get",
                    "string:org.freedesktop.Secret.Service",
                    "string:Collections",
                ])
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a daemon holds the secrets name; asks the bus, not the name, so that no
    /// keyring is activated by the question.
    fn owned(&self) -> bool {
        let out = run(std::process::Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--dest=org.freedesktop.DBus",
                "--print-reply",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]));
        stdout(&out).contains("boolean true")
    }

    fn dbus_send(&self, args: &[&str]) -> Output {
        run(std::process::Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--dest=org.freedesktop.secrets",
                "--print-reply",
            ])
            .args(args))
    }

    /// Whether the login collection is locked; `None` while the service is not up.
    fn locked(&self) -> Option<bool> {
        let out = self.dbus_send(&[
            "/org/freedesktop/secrets/collection/login",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Locked",
        ]);
        let text = stdout(&out);
        out.status.success().then(|| text.contains("boolean true"))
    }

    /// Locks the login collection, as a screen lock or `secret-tool lock` does.
    fn lock(&self) {
        let out = self.dbus_send(&[
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ]);
        assert_success(&out, "lock the keyring");
        assert_eq!(self.locked(), Some(true));
    }

    /// Unlocks by logging in again: the daemon restarts with the password.
    fn unlock(&mut self) {
        self.stop_daemon();
        self.start_daemon();
    }

    fn stop_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
            // The bus frees the name once it sees the connection close.
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.owned() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The entry names (`username`) stored under `service`.
    fn entries(&self, service: &str) -> Vec<String> {
        let out = run(std::process::Command::new("secret-tool")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args(["search", "--all", "service", service]));
        let mut names: Vec<String> = format!("{}{}", stdout(&out), stderr(&out))
            .lines()
            .filter_map(|l| l.strip_prefix("attribute.username = "))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }
}

impl Drop for OwnKeyring {
    fn drop(&mut self) {
        self.stop_daemon();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// Issue #12 item 2, the keyring locking between key creation and signing: the first sign
/// creates the keys, then the collection is locked. The next sign fails naming the keyring and
/// how to unlock it, before anything is uploaded; once unlocked, the same keys sign.
#[test]
fn a_keyring_locked_after_key_creation_is_named_loses_no_key_publishes_nothing() {
    let mut env = trust_env();
    let mut keyring = OwnKeyring::start(&env.home);
    let service = format!("trustacr-locked-{}-{}", std::process::id(), next_id());
    env.set("DBUS_SESSION_BUS_ADDRESS", &keyring.address);
    env.set("TRUSTACR_KEYRING_SERVICE", &service);
    let repo = unique_repo(&stack().registry, "locked");
    docker_push(&env, &format!("{repo}:v1"), "locked v1");
    let (digest, _) = docker_push(&env, &format!("{repo}:v2"), "locked v2");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "the first sign, which creates the keys",
    );
    let keys = keyring.entries(&service);
    assert!(keys.len() >= 2, "root and targets keys expected: {keys:?}");

    keyring.lock();
    let out = run(env.plugin().args(["sign", &format!("{repo}:v2")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("keyring") && err.contains("is locked") && err.contains("Unlock"),
        "the error does not name the locked keyring and how to unlock it: {err}"
    );
    assert!(
        !stdout(&out).contains("Successfully signed"),
        "{}",
        stdout(&out)
    );
    let listed = notary_listing(&env, &repo);
    assert!(listed.contains("v1"), "{listed}");
    assert!(!listed.contains("v2"), "v2 was published:\n{listed}");

    keyring.unlock();
    assert_eq!(keyring.locked(), Some(false));
    assert_eq!(keyring.entries(&service), keys, "a key was lost or added");
    let out = run(env.plugin().args(["sign", &format!("{repo}:v2")]));
    assert_success(&out, "the sign once the keyring is unlocked");
    assert_eq!(keyring.entries(&service), keys, "the rerun made new keys");
    let out = run(env.plugin().args(["verify", &format!("{repo}:v2")]));
    assert_success(&out, "verify v2");
    assert_eq!(stdout(&out).trim(), digest);
}
