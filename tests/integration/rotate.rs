//! `key rotate` on the real notary-server: after rotating the targets, root or snapshot key,
//! the notary CLI, `docker trust` and this plugin, each holding the trust data from BEFORE the
//! rotation, still verify every tag. A refused or unanswered upload keeps the old key; a
//! concurrent signer is a clear conflict; lost keys get messages that say the way out.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::tamper::{Action, Tamper};

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

/// A stack environment with a keyring namespace of its own, so the test sees exactly its keys.
fn keyed_env() -> TestEnv {
    let mut env = trust_env();
    env.set(
        "TRUSTACR_KEYRING_SERVICE",
        format!(
            "docker-trustacr-rotate-{}-{}",
            std::process::id(),
            next_id()
        ),
    );
    env
}

/// Pushes one image per tag and signs them all here; returns the repository and each tag's
/// digest (`sha256:…`).
fn signed_repo(env: &TestEnv, prefix: &str, tags: &[&str]) -> (String, Vec<(String, String)>) {
    let repo = unique_repo(&stack().registry, prefix);
    let mut signed = Vec::new();
    let mut refs = Vec::new();
    for t in tags {
        let (digest, _) = docker_push(env, &format!("{repo}:{t}"), &format!("{prefix} {t}"));
        signed.push((t.to_string(), digest));
        refs.push(format!("{repo}:{t}"));
    }
    let out = run(env.plugin().arg("sign").args(&refs));
    assert_success(&out, "trustacr sign");
    (repo, signed)
}

/// Key IDs of the keyring, with the roles of `repo` each signs (`key list REPO`).
fn keys_for(env: &TestEnv, repo: &str) -> Vec<(String, Vec<String>)> {
    let out = run(env.plugin().args(["key", "list", repo, "--format", "json"]));
    assert_success(&out, "key list REPO");
    json(&out)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let signs = k["signs"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (k["id"].as_str().unwrap().to_string(), signs)
        })
        .collect()
}

/// Every key ID in the keyring (`key list`).
fn all_key_ids(env: &TestEnv) -> Vec<String> {
    let out = run(env.plugin().args(["key", "list", "--format", "json"]));
    assert_success(&out, "key list");
    json(&out)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

/// The key of the keyring that signs `role` of `repo`.
fn key_signing(env: &TestEnv, repo: &str, role: &str) -> String {
    keys_for(env, repo)
        .into_iter()
        .find(|(_, signs)| signs.iter().any(|s| s == role))
        .unwrap_or_else(|| panic!("no key here signs {role} of {repo}"))
        .0
}

/// Three clients of one repository, each with its own trust cache: the notary CLI, the docker
/// CLI's `docker trust`, and this plugin (without keys).
struct Observers {
    notary: TestEnv,
    docker: TestEnv,
    plugin: TestEnv,
}

impl Observers {
    /// Makes each one read `repo` now, so each caches the current trust data.
    fn caching(repo: &str, tags: &[(String, String)]) -> Self {
        let o = Observers {
            notary: trust_env(),
            docker: trust_env(),
            plugin: keyed_env(),
        };
        o.all_verify(repo, tags);
        o
    }

    /// Each client verifies every tag with its cached trust data and the server's current one.
    fn all_verify(&self, repo: &str, tags: &[(String, String)]) {
        let out = notary(&self.notary, &["list", repo]);
        assert_success(&out, "notary list");
        let listing = stdout(&out);
        for (tag, digest) in tags {
            let row = listing
                .lines()
                .find(|l| l.split_whitespace().next() == Some(tag.as_str()))
                .unwrap_or_else(|| panic!("{tag} missing from notary list:\n{listing}"));
            assert!(row.contains(digest.trim_start_matches("sha256:")), "{row}");
        }
        let out = run(self.docker.docker().args(["trust", "inspect", repo]));
        assert_success(&out, "docker trust inspect");
        let inspected = json(&out);
        let signed = inspected[0]["SignedTags"].as_array().unwrap();
        for (tag, digest) in tags {
            assert!(
                signed.iter().any(|s| s["SignedTag"] == tag.as_str()
                    && s["Digest"] == digest.trim_start_matches("sha256:")),
                "{tag} not signed as {digest} for docker trust inspect: {inspected}"
            );
        }
        for (tag, digest) in tags {
            let out = run(self
                .plugin
                .plugin()
                .args(["verify", &format!("{repo}:{tag}")]));
            assert_success(&out, "trustacr verify");
            assert_eq!(stdout(&out).trim(), digest);
        }
    }

    /// The root versions each client has cached: notary, docker, plugin.
    fn cached_root_versions(&self, repo: &str) -> [u64; 3] {
        let version = |dir: PathBuf| {
            let bytes = std::fs::read(dir.join("tuf").join(repo).join("metadata/root.json"))
                .unwrap_or_else(|e| panic!("no cached root in {}: {e}", dir.display()));
            let doc: Value = serde_json::from_slice(&bytes).unwrap();
            doc["signed"]["version"].as_u64().unwrap()
        };
        [
            version(self.notary.home.join(".notary")),
            version(self.docker.config.join("trust")),
            version(self.plugin.config.join("trust")),
        ]
    }
}

/// The root served for `repo` now, read through the plugin's cache of `env` after a verify.
fn cached_root(env: &TestEnv, repo: &str) -> Value {
    let bytes = std::fs::read(
        env.config
            .join("trust/tuf")
            .join(repo)
            .join("metadata/root.json"),
    )
    .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn rotate(env: &TestEnv, repo: &str, role: &str) -> Output {
    run(env.plugin().args(["key", "rotate", repo, role]))
}

#[test]
fn targets_rotation_resigns_every_tag_and_clients_with_the_old_trust_data_follow() {
    let env = keyed_env();
    let (repo, tags) = signed_repo(&env, "rot-targets", &["v1", "v2"]);
    let observers = Observers::caching(&repo, &tags);
    assert_eq!(observers.cached_root_versions(&repo), [1, 1, 1]);
    let old = key_signing(&env, &repo, "targets");

    let out = rotate(&env, &repo, "targets");
    assert_success(&out, "key rotate targets");
    let text = stdout(&out);
    assert!(
        text.contains("Re-signed with the new key: v1, v2."),
        "{text}"
    );
    assert!(
        text.contains(&format!("The old targets key {old} was removed")),
        "{text}"
    );

    // The keyring: the old key is gone, the new one signs targets.
    let new = key_signing(&env, &repo, "targets");
    assert_ne!(new, old);
    assert!(text.contains(&new), "{text}");
    assert!(!all_key_ids(&env).contains(&old));

    // Every client, holding root version 1, follows to version 2 and verifies every tag.
    observers.all_verify(&repo, &tags);
    assert_eq!(observers.cached_root_versions(&repo), [2, 2, 2]);
    let out = run(observers.docker.docker().args(["trust", "inspect", &repo]));
    let admin = json(&out)[0]["AdministrativeKeys"].clone();
    let repo_key = admin
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["Name"] == "Repository")
        .unwrap()["Keys"][0]["ID"]
        .clone();
    assert_eq!(repo_key, new.as_str(), "{admin}");

    // Signing goes on with the new key, and the clients see the new tag too.
    let (d3, _) = docker_push(&env, &format!("{repo}:v3"), "after rotation");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v3")])),
        "sign after rotation",
    );
    let mut all = tags.clone();
    all.push(("v3".into(), d3));
    observers.all_verify(&repo, &all);
}

#[test]
fn root_rotation_is_followed_by_notary_docker_and_this_tool_holding_the_old_root() {
    let env = keyed_env();
    let (repo, tags) = signed_repo(&env, "rot-root", &["v1"]);
    let observers = Observers::caching(&repo, &tags);
    let old_root = key_signing(&env, &repo, "root");
    let old_cert = cached_root(&observers.plugin, &repo)["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();

    let out = rotate(&env, &repo, "root");
    assert_success(&out, "key rotate root");
    let text = stdout(&out);
    assert!(
        text.contains("The old root key stays in the keyring"),
        "{text}"
    );

    observers.all_verify(&repo, &tags);
    assert_eq!(observers.cached_root_versions(&repo), [2, 2, 2]);
    // The new root lists only the new certificate for the root role, and is signed by the old
    // root key as well as the new one.
    let root = cached_root(&observers.plugin, &repo);
    let new_cert = root["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_cert, old_cert);
    let signers: Vec<&str> = root["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert!(
        signers.contains(&old_cert.as_str()) && signers.contains(&new_cert.as_str()),
        "{signers:?}"
    );
    assert!(text.contains(&new_cert), "{text}");

    // The old root key is still in the keyring; the new one now signs root.
    let new_root = key_signing(&env, &repo, "root");
    assert_ne!(new_root, old_root);
    assert!(all_key_ids(&env).contains(&old_root));

    // A later rotation needs (and finds) the NEW root key: root version 3 follows from 2.
    assert_success(
        &rotate(&env, &repo, "targets"),
        "targets after root rotation",
    );
    observers.all_verify(&repo, &tags);
    assert_eq!(observers.cached_root_versions(&repo), [3, 3, 3]);
}

#[test]
fn snapshot_rotation_is_made_by_the_server_and_clients_with_the_old_trust_data_follow() {
    let env = keyed_env();
    let (repo, tags) = signed_repo(&env, "rot-snap", &["v1"]);
    let observers = Observers::caching(&repo, &tags);
    let old = cached_root(&observers.plugin, &repo)["signed"]["roles"]["snapshot"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let keys_before = all_key_ids(&env);

    let out = rotate(&env, &repo, "snapshot");
    assert_success(&out, "key rotate snapshot");
    assert!(
        stdout(&out).contains("The notary server holds the new snapshot key"),
        "{}",
        stdout(&out)
    );
    observers.all_verify(&repo, &tags);
    let new = cached_root(&observers.plugin, &repo)["signed"]["roles"]["snapshot"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(
        all_key_ids(&env),
        keys_before,
        "no key of the keyring changes"
    );
    // Signing still works: the server signs the new snapshot with its new key.
    let (d2, _) = docker_push(&env, &format!("{repo}:v2"), "after snapshot rotation");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v2")])),
        "sign after snapshot rotation",
    );
    let mut all = tags.clone();
    all.push(("v2".into(), d2));
    observers.all_verify(&repo, &all);
}

#[test]
fn rotating_timestamp_an_unknown_role_or_an_uninitialised_repository_is_refused_clearly() {
    let env = keyed_env();
    let repo = unique_repo(&stack().registry, "rot-bad");
    let out = rotate(&env, &repo, "timestamp");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("always held by the notary server"),
        "{}",
        stderr(&out)
    );
    let out = rotate(&env, &repo, "targets/releases");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("root, targets or snapshot"),
        "{}",
        stderr(&out)
    );
    let out = rotate(&env, &format!("{repo}:v1"), "targets");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("without a tag"), "{}", stderr(&out));

    let out = rotate(&env, &repo, "targets");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{repo} has no trust data yet")) && err.contains("sign"),
        "{err}"
    );
    assert!(all_key_ids(&env).is_empty(), "no key was created");
}

/// The plugin through `proxy`, with its own trust cache in `config`.
fn plugin_via(env: &TestEnv, config: &Path, proxy: &Tamper) -> std::process::Command {
    std::fs::create_dir_all(config).unwrap();
    let mut c = env.plugin();
    c.env("DOCKER_CONFIG", config)
        .env("DOCKER_CONTENT_TRUST_SERVER", proxy.url());
    c
}

/// Whether the POST of a trust upload.
fn is_upload(method: &str, path: &str) -> bool {
    method == "POST" && path.ends_with("/_trust/tuf/")
}

#[test]
fn refused_or_unanswered_rotation_upload_keeps_the_old_key_and_trust_data() {
    let env = keyed_env();
    let (repo, tags) = signed_repo(&env, "rot-refused", &["v1"]);
    let old = key_signing(&env, &repo, "targets");
    let before = all_key_ids(&env);
    let proxy = Tamper::start();

    // Refused: nothing is live, the unused new key is dropped again.
    proxy.when(is_upload, Action::Status(400));
    let out =
        run(plugin_via(&env, &env.home.join("cfg"), &proxy)
            .args(["key", "rotate", &repo, "targets"]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("refused the rotation") && err.contains("old key is still in use"),
        "{err}"
    );
    assert_eq!(all_key_ids(&env), before, "the keyring is as before");
    assert_eq!(key_signing(&env, &repo, "targets"), old);
    let (d2, _) = docker_push(&env, &format!("{repo}:v2"), "after refused rotation");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v2")])),
        "sign with the old key after a refused rotation",
    );

    // Unanswered: it may be live, so both keys are kept.
    proxy.clear();
    proxy.when(is_upload, Action::Reset);
    let out =
        run(plugin_via(&env, &env.home.join("cfg"), &proxy)
            .args(["key", "rotate", &repo, "targets"]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("may or may not have applied it") && err.contains("Both keys are kept"),
        "{err}"
    );
    let after = all_key_ids(&env);
    assert!(after.contains(&old), "the old key is kept");
    assert_eq!(
        after.len(),
        before.len() + 1,
        "the new key is kept too: {after:?}"
    );
    // The reset upload never reached the server: the old key still signs.
    let mut all = tags.clone();
    all.push(("v2".into(), d2));
    Observers::caching(&repo, &all);
    assert_eq!(key_signing(&env, &repo, "targets"), old);
}

/// Waits until `flag` is raised, failing if `child` exits first.
fn wait_for(flag: &AtomicBool, child: &mut Child, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !flag.load(Ordering::SeqCst) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the plugin exited ({status}) before {what}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signer_publishing_during_a_rotation_makes_it_a_clear_conflict_with_the_old_key_kept() {
    let env = keyed_env();
    let (repo, tags) = signed_repo(&env, "rot-race", &["v1"]);
    let old = key_signing(&env, &repo, "targets");
    let (d2, _) = docker_push(&env, &format!("{repo}:v2"), "signed during the rotation");
    // The rotation's upload is held at the proxy until the other signer has published.
    let proxy = Tamper::start();
    let held = Arc::new(AtomicBool::new(false));
    let flag = held.clone();
    proxy.when(
        move |method, path| {
            let hit = is_upload(method, path);
            if hit {
                flag.store(true, Ordering::SeqCst);
            }
            hit
        },
        Action::Delay(Duration::from_secs(8)),
    );
    let mut child = plugin_via(&env, &env.home.join("cfg"), &proxy)
        .args(["key", "rotate", &repo, "targets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&held, &mut child, "the rotation's upload");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v2")])),
        "the concurrent signer",
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("was changed on the server while its targets key was being rotated")
            && err.contains(&format!("docker trustacr key rotate {repo} targets")),
        "{err}"
    );
    assert_eq!(key_signing(&env, &repo, "targets"), old);
    let mut all = tags.clone();
    all.push(("v2".into(), d2));
    Observers::caching(&repo, &all);
}

/// `env` with a keyring namespace of its own, and nothing in it.
fn empty_keyring_like(env: &TestEnv) -> TestEnv {
    let mut other = keyed_env();
    other.config = env.config.clone();
    other
}

#[test]
fn lost_root_key_is_explained_and_a_lost_targets_key_is_recovered_with_the_root_key() {
    let env = keyed_env();
    let (repo, tags) = signed_repo(&env, "rot-lost", &["v1"]);

    // No root key here at all: what it means and the way out, and nothing changes.
    let stranger = empty_keyring_like(&env);
    let out = rotate(&stranger, &repo, "targets");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for part in [
        "its root key (ID",
        "is not in this keyring. Nothing was changed",
        "docker trustacr key import PATH",
        "support request asking to delete the repository's trust data",
        "notary delete GUN --remote",
    ] {
        assert!(err.contains(part), "{part:?} missing from:\n{err}");
    }
    assert!(all_key_ids(&stranger).is_empty());

    // Only the root key survived (restored from a backup): rotating targets recovers signing.
    let backup = env.home.join("root-backup.key");
    assert_success(
        &run(env
            .plugin()
            .args(["key", "export", "--role", "root", "-o"])
            .arg(&backup)),
        "key export --role root",
    );
    let owner = empty_keyring_like(&env);
    assert_success(
        &run(owner.plugin().args(["key", "import"]).arg(&backup)),
        "key import of the root backup",
    );
    // See: #9 item 5 (a lost targets key with the root at hand names the way out)
    docker_push(
        &owner,
        &format!("{repo}:lost"),
        "signed without a targets key",
    );
    let out = run(owner.plugin().args(["sign", &format!("{repo}:lost")]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("docker trustacr key rotate {repo} targets")),
        "sign without the targets key but with the root key must name the rotation:\n{}",
        stderr(&out)
    );
    let out = rotate(&owner, &repo, "targets");
    assert_success(&out, "key rotate targets with only the root key");
    assert!(
        stdout(&out).contains("The old targets key was not in this keyring."),
        "{}",
        stdout(&out)
    );
    let (d2, _) = docker_push(&owner, &format!("{repo}:v2"), "after recovery");
    assert_success(
        &run(owner.plugin().args(["sign", &format!("{repo}:v2")])),
        "sign with the recovered targets key",
    );
    let mut all = tags.clone();
    all.push(("v2".into(), d2));
    Observers::caching(&repo, &all);
    // The old targets key no longer signs anything the repository accepts.
    let (_, _) = docker_push(&env, &format!("{repo}:v3"), "old key");
    assert!(
        !run(env.plugin().args(["sign", &format!("{repo}:v3")]))
            .status
            .success()
    );
}

// See: #9 item 5 (expiry: `key list REPO` warns 30 days ahead; `sign` renews targets)
#[test]
fn key_list_warns_of_roles_expiring_within_30_days_and_a_sign_renews_targets() {
    let env = keyed_env();
    let (repo, _) = signed_repo(&env, "rot-expiry", &["v1"]);
    let expiring = |what: &str| {
        let out = run(env
            .plugin()
            .args(["key", "list", &repo, "--format", "json"]));
        assert_success(&out, &format!("key list REPO ({what})"));
        let listing: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let names: Vec<String> = listing["expiring"]
            .as_array()
            .unwrap_or_else(|| panic!("no expiring list ({what}): {listing}"))
            .iter()
            .map(|e| e["what"].as_str().unwrap().to_string())
            .collect();
        (names, stderr(&out))
    };
    let (names, _) = expiring("fresh repository");
    assert!(names.is_empty(), "nothing expires soon yet: {names:?}");

    // Metadata written with a 10-day lifetime (test-only variable of key rotate).
    let out = run(env
        .plugin()
        .env("TRUSTACR_TEST_ROTATE_LIFETIME_DAYS", "10")
        .args(["key", "rotate", &repo, "targets"]));
    assert_success(&out, "key rotate targets with a 10-day lifetime");
    let (names, warnings) = expiring("after the short rotation");
    assert!(
        names.iter().any(|n| n == "root") && names.iter().any(|n| n == "targets"),
        "{names:?}"
    );
    assert!(
        warnings.contains("Warning: targets expires in 9 days")
            && warnings.contains(&format!("docker trustacr key rotate {repo} root")),
        "{warnings}"
    );

    let (_, _) = docker_push(&env, &format!("{repo}:v2"), "renews targets");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v2")])),
        "sign",
    );
    let (names, _) = expiring("after a sign");
    assert!(
        !names.iter().any(|n| n == "targets"),
        "a sign renews targets: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "root"),
        "root is renewed only by a root rotation: {names:?}"
    );
}
