//! Publishing on the wire: the plugin signs through the tampering proxy ([`crate::tamper`]) in
//! front of the real notary-server, which delays, refuses or rewrites chosen requests; what is
//! live is then read with the notary CLI, straight from notary-server.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::tamper::{Action, Tamper};

/// The plugin through `proxy`, with its own docker config dir `config` (its own trust cache).
fn plugin_via(env: &TestEnv, config: &Path, proxy: &Tamper) -> std::process::Command {
    std::fs::create_dir_all(config).unwrap();
    let mut c = env.plugin();
    c.env("DOCKER_CONFIG", config)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url());
    c
}

/// Starts the plugin through `proxy` with `args`, its output captured, to be signalled midway.
fn spawn_via(env: &TestEnv, proxy: &Tamper, args: &[&str]) -> Child {
    plugin_via(env, &env.home.join("cfg"), proxy)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The tags `notary list` shows, read straight from notary-server (not through the proxy).
fn notary_tags(env: &TestEnv, gun: &str) -> Vec<String> {
    let out = notary(env, &["list", gun]);
    let text = stdout(&out);
    text.lines()
        .skip(2) // header and separator
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits for `flag`; the deadline turns a plugin that never gets there into a failure.
fn wait_for(flag: &AtomicBool, child: &mut Child, what: &str) {
    let start = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the plugin exited ({status}) before {what}");
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the plugin never reached {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Holds every GET that follows the trust upload (the read-back) for a minute, and raises the
/// returned flag when the first one arrives.
fn hold_the_read_back(proxy: &Tamper) -> Arc<AtomicBool> {
    let posted = AtomicBool::new(false);
    let held = Arc::new(AtomicBool::new(false));
    let flag = held.clone();
    proxy.when(
        move |method, path| {
            if method == "POST" && path.ends_with("/_trust/tuf/") {
                posted.store(true, Ordering::SeqCst);
                return false;
            }
            let hit = posted.load(Ordering::SeqCst) && method == "GET";
            if hit {
                flag.store(true, Ordering::SeqCst);
            }
            hit
        },
        Action::Delay(Duration::from_secs(60)),
    );
    held
}

// See: #8 item 5
#[test]
fn ctrl_c_during_the_read_back_reports_the_accepted_upload_and_the_tag_is_signed() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "intr-sign");
    docker_push(&env, &format!("{repo}:v1"), "interrupted sign");
    let proxy = Tamper::start();
    let held = hold_the_read_back(&proxy);
    let mut child = spawn_via(&env, &proxy, &["sign", &format!("{repo}:v1")]);
    wait_for(&held, &mut child, "the read-back after the upload");
    signal(child.id(), "-INT");
    let out = wait_output(child, Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("after the upload was accepted: v1 signed in")
            && err.contains("verification of the read-back was interrupted")
            && err.contains(&format!("docker trustacr verify {repo}:v1")),
        "{err}"
    );
    assert!(!err.contains("nothing was changed"), "{err}");
    assert_eq!(notary_tags(&env, &repo), ["v1"]);
}

// See: #8 item 5
#[test]
fn ctrl_c_during_the_read_back_of_push_does_not_claim_the_image_is_unsigned() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "intr-push");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "interrupted push");
    let proxy = Tamper::start();
    let held = hold_the_read_back(&proxy);
    let mut child = spawn_via(&env, &proxy, &["push", &reference]);
    wait_for(&held, &mut child, "the read-back after the upload");
    signal(child.id(), "-INT");
    let out = wait_output(child, Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("after the upload was accepted: v1 signed in"),
        "{err}"
    );
    assert!(!err.contains("NOT signed"), "{err}");
    assert_eq!(notary_tags(&env, &repo), ["v1"]);
}

// See: #8 item 8
#[test]
fn first_signers_racing_to_initialise_one_repository_all_land() {
    const N: usize = 3;
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "first");
    let tags: Vec<String> = (0..N).map(|i| format!("t{i}")).collect();
    for t in &tags {
        docker_push(&env, &format!("{repo}:{t}"), t);
    }
    // The race, made certain: every signer is told the repository has no trust data (as each
    // would be if all read before any wrote), so all of them upload a new root; notary-server
    // accepts the first and refuses the others' roots.
    let proxy = Tamper::start();
    let told = Arc::new(AtomicUsize::new(0));
    let count = told.clone();
    proxy.when(
        move |method, path| {
            method == "GET"
                && path.ends_with("/_trust/tuf/root.json")
                && count.fetch_add(1, Ordering::SeqCst) < N
        },
        Action::Status(404),
    );
    let children: Vec<Child> = tags
        .iter()
        .map(|t| {
            plugin_via(&env, &env.home.join(format!("cfg-{t}")), &proxy)
                .args(["sign", &format!("{repo}:{t}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = wait_output(c, Duration::from_secs(120));
        assert_success(&out, "a racing first signer");
    }
    assert!(told.load(Ordering::SeqCst) >= N, "the race did not happen");
    let posts = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(
        posts > N,
        "no signer retried after a refused root: {posts} uploads"
    );
    let mut listed = notary_tags(&env, &repo);
    listed.sort();
    assert_eq!(listed, tags);
    for t in &tags {
        let out = run(env.plugin().args(["verify", &format!("{repo}:{t}")]));
        assert_success(&out, "verify each racing signer's tag");
    }
}

// See: #8 item 17 (write part)
#[test]
fn the_root_a_publish_created_is_pinned_not_the_root_served_on_the_read_back() {
    use docker_trustacr::keystore::keys::SigningKey;
    use docker_trustacr::tuf::editor::{ServerKeys, UnsignedUpdate};
    use docker_trustacr::tuf::metadata::FileMeta;

    let env = trust_env();
    let repo = unique_repo(&stack().registry, "pin");
    docker_push(&env, &format!("{repo}:v1"), "pinned root");
    // A root for the same repository that an attacker made, with keys of its own.
    let attacker = {
        struct Own(SigningKey, SigningKey);
        impl docker_trustacr::keystore::KeySource for Own {
            fn find(
                &self,
                _: &docker_trustacr::keystore::keys::KeyName,
                _: &[String],
            ) -> Result<Option<SigningKey>, docker_trustacr::keystore::KeystoreError> {
                Ok(None)
            }
            fn get_or_create(
                &self,
                name: &docker_trustacr::keystore::keys::KeyName,
                _: docker_trustacr::keystore::KeyKind,
            ) -> Result<(SigningKey, bool), docker_trustacr::keystore::KeystoreError> {
                let k = match name {
                    docker_trustacr::keystore::keys::KeyName::Root => &self.0,
                    _ => &self.1,
                };
                let copy = SigningKey::from_keyring_secret(&k.to_keyring_secret(), name)?;
                Ok((copy, true))
            }
        }
        let keys = Own(
            SigningKey::generate_p256().unwrap(),
            SigningKey::generate_ed25519().unwrap(),
        );
        let server = ServerKeys {
            timestamp: SigningKey::generate_ed25519().unwrap().public(),
            snapshot: SigningKey::generate_ed25519().unwrap().public(),
        };
        let mut u = UnsignedUpdate::init(&repo, server, time::OffsetDateTime::now_utc());
        u.apply(docker_trustacr::tuf::editor::Change::add(
            "v1",
            FileMeta::of(b"x"),
        ))
        .unwrap();
        u.sign(&keys).unwrap().new_root().unwrap().to_vec()
    };
    let proxy = Tamper::start();
    let posted = AtomicBool::new(false);
    proxy.when(
        move |method, path| {
            if method == "POST" {
                posted.store(true, Ordering::SeqCst);
            }
            posted.load(Ordering::SeqCst) && method == "GET" && path.ends_with("/root.json")
        },
        Action::Body(attacker.clone()),
    );
    let cfg = env.home.join("cfg");
    let out = run(plugin_via(&env, &cfg, &proxy).args(["sign", &format!("{repo}:v1")]));
    assert_success(&out, "sign with the root swapped on the read-back");
    let cached = std::fs::read(cfg.join("trust/tuf").join(&repo).join("metadata/root.json"))
        .expect("the published root is cached");
    // The notary CLI, straight from notary-server, sees the root that was really uploaded.
    assert_eq!(notary_tags(&env, &repo), ["v1"]);
    let theirs = std::fs::read(
        env.home
            .join(".notary/tuf")
            .join(&repo)
            .join("metadata/root.json"),
    )
    .unwrap();
    assert_eq!(cached, theirs, "the cache pins the uploaded root");
}

/// An environment whose per-user runtime dir (the key-creation lock's place) is in its HOME;
/// returns it with the lock file's path.
fn lock_env() -> (TestEnv, std::path::PathBuf) {
    use std::os::unix::fs::DirBuilderExt;
    let mut env = trust_env();
    let run_dir = env.home.join("run");
    let dir = run_dir.join("docker-trustacr");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .unwrap();
    env.set("XDG_RUNTIME_DIR", run_dir.to_str().unwrap());
    (env, dir.join("keyring.lock"))
}

/// Holds the key-creation lock as another process of this user would.
fn hold_lock(file: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file)
        .unwrap();
    f.lock().unwrap();
    f
}

fn has_no_trust_data(env: &TestEnv, gun: &str) -> bool {
    let out = notary(env, &["list", gun]);
    format!("{}{}", stdout(&out), stderr(&out)).contains("does not have trust data")
}

// See: #8 item 9
#[test]
fn sign_gives_up_on_a_held_key_lock_after_the_timeout_and_publishes_nothing() {
    let (env, lock) = lock_env();
    let repo = unique_repo(&stack().registry, "lock-held");
    docker_push(&env, &format!("{repo}:v1"), "lock held");
    let _held = hold_lock(&lock);
    let start = Instant::now();
    let child = env
        .plugin()
        .args(["sign", &format!("{repo}:v1")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        start.elapsed() >= Duration::from_secs(20),
        "gave up early: {err}"
    );
    assert!(
        err.contains("another docker trustacr process has held the key-creation lock")
            && err.contains(lock.to_str().unwrap()),
        "{err}"
    );
    assert!(has_no_trust_data(&env, &repo));
}

// See: #8 item 9
#[test]
fn ctrl_c_while_waiting_for_the_key_lock_exits_130_promptly() {
    let (env, lock) = lock_env();
    let repo = unique_repo(&stack().registry, "lock-intr");
    docker_push(&env, &format!("{repo}:v1"), "lock interrupted");
    let _held = hold_lock(&lock);
    let mut child = env
        .plugin()
        .args(["sign", &format!("{repo}:v1")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Waiting means: the plugin has the lock file open (and cannot take it).
    let fd_dir = std::path::PathBuf::from(format!("/proc/{}/fd", child.id()));
    let opened = AtomicBool::new(false);
    let start = Instant::now();
    while !opened.load(Ordering::SeqCst) {
        if let Ok(fds) = std::fs::read_dir(&fd_dir) {
            let hit = fds
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == lock));
            opened.store(hit, Ordering::SeqCst);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the plugin exited before waiting for the lock"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the plugin never opened the lock file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id(), "-INT");
    let stopped = Instant::now();
    let out = wait_output(child, Duration::from_secs(10));
    assert!(stopped.elapsed() < Duration::from_secs(3), "not prompt");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted (SIGINT)"), "{err}");
    assert!(has_no_trust_data(&env, &repo));
}

// See: #8 item 9
#[test]
fn sign_refuses_a_key_lock_dir_open_to_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let (env, lock) = lock_env();
    let dir = lock.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let repo = unique_repo(&stack().registry, "lock-open");
    docker_push(&env, &format!("{repo}:v1"), "lock dir open");
    let out = run(env.plugin().args(["sign", &format!("{repo}:v1")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing the key-creation lock directory") && err.contains("mode is 777"),
        "{err}"
    );
    assert!(!lock.exists(), "no lock file made in an unsafe directory");
    assert!(has_no_trust_data(&env, &repo));
}

// See: audit P1-W4
#[test]
fn revoking_an_unsigned_tag_exits_1_and_changes_nothing() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "revoke-unsigned");
    docker_push(&env, &format!("{repo}:keep"), "keep");
    docker_push(&env, &format!("{repo}:drop"), "drop");
    let out = run(env
        .plugin()
        .args(["sign", &format!("{repo}:keep"), &format!("{repo}:drop")]));
    assert_success(&out, "sign");
    assert_success(
        &run(env.plugin().args(["revoke", &format!("{repo}:drop")])),
        "first revoke",
    );
    let before = stdout(&notary(&env, &["list", &repo]));
    let out = run(env.plugin().args(["revoke", &format!("{repo}:drop")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("No valid trust data for drop in {repo}")),
        "{err}"
    );
    assert_eq!(stdout(&notary(&env, &["list", &repo])), before);
    assert_eq!(notary_tags(&env, &repo), ["keep"]);
}

// See: audit P1-W8
#[test]
fn refused_trust_upload_after_a_good_push_reports_pushed_but_unsigned_with_the_sign_hint() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "push-refused");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "refused trust upload");
    let proxy = Tamper::start();
    proxy.on("POST", "/_trust/tuf/", Action::Status(500));
    let cfg = env.home.join("cfg");
    let out = run(plugin_via(&env, &cfg, &proxy).args(["push", &reference]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let pushed = stdout(&out)
        .lines()
        .find_map(|l| l.split(": digest: ").nth(1))
        .map(|r| r.split(' ').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no digest line:\n{}", stdout(&out)));
    assert!(
        err.contains(&format!(
            "{reference} was pushed ({pushed}) but is NOT signed"
        )) && err.contains("answered 500")
            && err.contains(&format!("Sign it with: docker trustacr sign {reference}")),
        "{err}"
    );
    assert!(has_no_trust_data(&env, &repo));
    // The hint works: sign finishes the job, for the digest that was pushed.
    proxy.clear();
    let out = run(plugin_via(&env, &cfg, &proxy).args(["sign", &reference]));
    assert_success(&out, "sign after the refused upload");
    let out = run(env.plugin().args(["verify", &reference]));
    assert_success(&out, "verify");
    assert!(stdout(&out).contains(&pushed), "{}", stdout(&out));
}

// See: audit P1-W8
#[test]
fn each_publish_refusal_is_provoked_and_named() {
    let env = trust_env();

    // NoSignableRole and ShadowedByReleases: a repository docker trust created and signs through
    // targets/releases; its targets key is in docker's key store, not in our keyring.
    let repo = unique_repo(&stack().registry, "refusals");
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
    let (released, _) = docker_push(&env, &format!("{repo}:v1"), "released");
    assert_success(
        &run(env.docker().args(["trust", "sign", &format!("{repo}:v1")])),
        "docker trust sign",
    );
    // v1 now points elsewhere in the registry; releases still signs the old digest.
    docker_push(&env, &format!("{repo}:v1"), "moved");
    docker_push(&env, &format!("{repo}:v2"), "unreleased");
    let out = run(env.plugin().args(["sign", &format!("{repo}:v2")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot sign v2 in {repo}: no key in this keyring can sign a role that accepts it"
        )) && err.contains("targets/alice accepts key")
            && err.contains("; targets accepts key"),
        "NoSignableRole: {err}"
    );
    // With the repository's targets key (not alice's) here, v1 would be signed in targets,
    // where releases hides it.
    let private = env.config.join("trust/private");
    let targets_key = std::fs::read_dir(&private)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("role: targets\n")
        })
        .unwrap();
    assert_success(
        &run(env.plugin().args(["key", "import"]).arg(&targets_key)),
        "key import of the targets key",
    );
    let out = run(env.plugin().args(["sign", &format!("{repo}:v1")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot change v1 in {repo}: targets/releases also signs it ({released})"
        )),
        "ShadowedByReleases: {err}"
    );

    // Contention: before each of our uploads, another signer publishes (straight to
    // notary-server), so every upload of ours is refused with VERSION.
    let repo = unique_repo(&stack().registry, "contention");
    docker_push(&env, &format!("{repo}:base"), "base");
    docker_push(&env, &format!("{repo}:v1"), "contended");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:base")])),
        "sign base",
    );
    let proxy = Tamper::start();
    let rival = {
        let mut c = env.plugin();
        c.env("DOCKER_CONFIG", env.home.join("rival"))
            .args(["sign", &format!("{repo}:base")]);
        Mutex::new(c)
    };
    let rivals = Arc::new(AtomicUsize::new(0));
    let counted = rivals.clone();
    proxy.when(
        move |method, _| {
            if method == "POST" {
                let out = rival.lock().unwrap().output().unwrap();
                assert!(out.status.success(), "rival: {}", stderr(&out));
                counted.fetch_add(1, Ordering::SeqCst);
            }
            false
        },
        Action::Pass,
    );
    let out =
        run(plugin_via(&env, &env.home.join("cfg"), &proxy).args(["sign", &format!("{repo}:v1")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{repo} changed on the server during 8 attempts")),
        "Contention: {err}"
    );
    assert_eq!(rivals.load(Ordering::SeqCst), 8);
    assert_eq!(notary_tags(&env, &repo), ["base"]);

    // NotVisible: the server says it took the upload, but serves the old data.
    proxy.clear();
    proxy.on("POST", "/_trust/tuf/", Action::Body(b"{}".to_vec()));
    let out =
        run(plugin_via(&env, &env.home.join("cfg"), &proxy).args(["sign", &format!("{repo}:v1")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "published {repo}, but the verified trust data does not show the change to v1"
        )),
        "NotVisible: {err}"
    );
}

// See: #8 item 5
#[test]
fn an_upload_without_an_answer_is_reported_as_possibly_live_not_as_unchanged() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "unanswered");
    docker_push(&env, &format!("{repo}:v1"), "unanswered");
    docker_push(&env, &format!("{repo}:v2"), "reset");
    let proxy = Tamper::start();

    // Ctrl-C while the server holds the upload: after a short grace the plugin stops and says
    // the change may be live (the proxy forwards it later, so it may indeed become live).
    let seen_post = Arc::new(AtomicBool::new(false));
    let flag = seen_post.clone();
    proxy.when(
        move |method, _| {
            let hit = method == "POST";
            if hit {
                flag.store(true, Ordering::SeqCst);
            }
            hit
        },
        Action::Delay(Duration::from_secs(30)),
    );
    let mut child = spawn_via(&env, &proxy, &["sign", &format!("{repo}:v1")]);
    wait_for(&seen_post, &mut child, "the upload");
    signal(child.id(), "-INT");
    let out = wait_output(child, Duration::from_secs(15));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("while the notary server was answering the upload: it may or may not have applied it (v1 signed in")
            && err.contains(&format!("docker trustacr verify {repo}:v1")),
        "{err}"
    );
    assert!(!err.contains("nothing was changed"), "{err}");

    // The connection reset after the upload was sent: the same uncertainty, as a network
    // failure (exit 6).
    proxy.clear();
    proxy.on("POST", "/_trust/tuf/", Action::Reset);
    let out =
        run(plugin_via(&env, &env.home.join("cfg2"), &proxy).args(["sign", &format!("{repo}:v2")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains(&format!("the upload to {repo} got no answer"))
            && err.contains("may or may not have applied it (v2 signed in"),
        "{err}"
    );
}

// See: #8 item 17 (write part)
#[test]
fn a_new_root_that_the_trust_pin_refuses_is_never_uploaded() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "pinned-new");
    docker_push(&env, &format!("{repo}:v1"), "pinned new repository");
    let pin = serde_json::json!({
        "trust_pinning": { "certs": { repo.clone(): ["0".repeat(64)] } }
    });
    std::fs::write(env.config.join("trustacr.json"), pin.to_string()).unwrap();
    let out = run(env.plugin().args(["sign", &format!("{repo}:v1")]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "the root docker trustacr would create for {repo} is refused by your trust pinning"
        )) && err.contains("Nothing was published"),
        "{err}"
    );
    assert!(has_no_trust_data(&env, &repo));
}

/// The paths of the requests `proxy` saw with `method`, without the repository prefix.
fn seen(proxy: &Tamper, method: &str) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == method)
        .map(|r| match r.path.rsplit_once("/_trust/tuf/") {
            Some((_, file)) => file.to_string(),
            None => r.path,
        })
        .collect()
}

// See: #12 item 5
#[test]
fn a_sign_reads_back_timestamp_and_snapshot_not_its_own_targets_and_caches_the_whole_new_state() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "readback-light");
    docker_push(&env, &format!("{repo}:v1"), "first");
    let (digest, _) = docker_push(&env, &format!("{repo}:v2"), "second");
    let cfg = env.home.join("cfg");
    let proxy = Tamper::start();
    let out = run(plugin_via(&env, &cfg, &proxy).args(["sign", &format!("{repo}:v1")]));
    assert_success(&out, "sign v1 (initialises)");
    proxy.forget_requests();

    let out = run(plugin_via(&env, &cfg, &proxy).args(["sign", &format!("{repo}:v2")]));
    assert_success(&out, "sign v2");
    assert_eq!(seen(&proxy, "POST"), [""], "one upload");
    let gets = seen(&proxy, "GET");
    // Before the upload: the timestamp (unchanged, the rest from the cache). After it: the new
    // timestamp and the snapshot the server made; the targets just uploaded are not fetched.
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert_eq!(gets[0], "timestamp.json", "{gets:?}");
    assert_eq!(gets[1], "timestamp.json", "{gets:?}");
    assert!(gets[2].starts_with("snapshot."), "{gets:?}");
    assert!(!gets.iter().any(|g| g.starts_with("targets")), "{gets:?}");

    // The cache holds the whole new state, verified: a verify needs only the timestamp, and
    // finds the digest just signed.
    proxy.forget_requests();
    let out = run(plugin_via(&env, &cfg, &proxy).args(["verify", &format!("{repo}:v2")]));
    assert_success(&out, "verify v2 from the cache");
    assert_eq!(stdout(&out).trim(), digest);
    assert_eq!(seen(&proxy, "GET"), ["timestamp.json"]);
    assert_eq!(notary_tags(&env, &repo), ["v1", "v2"]);
}
