//! Keys made by docker and notary, brought into the keyring with `key import`: a repository
//! created by `DOCKER_CONTENT_TRUST=1 docker push` is then signed by this plugin, and the docker
//! CLI and the notary CLI read the result. Bad key files store nothing.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::harness::*;

const ROOT_PASS: &str = "root-pass-123";
const REPO_PASS: &str = "repo-pass-123";

/// A test environment pointed at the stack's notary server and engine, with docker's
/// passphrase variables set as a DCT user would.
fn dct_env() -> TestEnv {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    env.set("DOCKER_HOST", &stack.docker_host);
    env.set("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS);
    env.set("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS);
    env
}

/// Imports an image and pushes it, with content trust when `dct`; returns the digest.
fn push(env: &TestEnv, reference: &str, content: &str, dct: bool) -> String {
    import_image(env, reference, content);
    let mut cmd = env.docker();
    if dct {
        cmd.env("DOCKER_CONTENT_TRUST", "1");
    }
    let out = run(cmd.args(["push", reference]));
    assert_success(&out, "docker push");
    let text = stdout(&out);
    if dct {
        assert!(text.contains("Successfully signed"), "{text}");
    }
    let line = text
        .lines()
        .find(|l| l.contains(": digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in:\n{text}"));
    let rest = line.split(": digest: ").nth(1).unwrap();
    rest.split_once(" size: ").unwrap().0.to_string()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

/// `sign` of `reference` fails because no key the repository accepts is in the keyring.
fn assert_cannot_sign(env: &TestEnv, reference: &str) {
    let out = run(env.plugin().args(["sign", reference]));
    assert!(
        !out.status.success(),
        "signing must fail without the imported key:\n{}",
        stdout(&out)
    );
}

fn private_dir(env: &TestEnv) -> std::path::PathBuf {
    env.config.join("trust").join("private")
}

/// The key IDs (file names) of docker's root and targets keys: `[("root", id), ("targets", id)]`.
fn key_ids_by_role(env: &TestEnv) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(private_dir(env))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let role = if text.contains("role: root") {
                "root"
            } else {
                "targets"
            };
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            (role.to_string(), id)
        })
        .collect();
    out.sort();
    out
}

/// Whether `key list` shows a key with this ID.
fn keyring_has(env: &TestEnv, id: &str) -> bool {
    let out = run(env.plugin().args(["key", "list", "--format", "json"]));
    assert_success(&out, "key list");
    json(&out)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == id)
}

/// Copies docker's key files to `to`, so a test can add bad files next to them.
fn copy_keys(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn docker_pushed_repository_is_signed_here_after_key_import() {
    let env = dct_env();
    let repo = unique_repo(&stack().registry, "dctimport");
    let d1 = push(
        &env,
        &format!("{repo}:v1"),
        "pushed by docker with DCT",
        true,
    );
    let d2 = push(&env, &format!("{repo}:v2"), "pushed without trust", false);
    assert_cannot_sign(&env, &format!("{repo}:v2"));

    let out = run(env.plugin().args(["key", "import"]));
    assert_success(&out, "key import");
    let text = stdout(&out);
    assert!(text.contains("Imported: targets key"), "{text}");
    assert!(text.contains(&format!(" for {repo} ")), "{text}");
    assert!(text.contains("Imported: root key"), "{text}");
    assert!(text.contains("left in place"), "{text}");
    // See: #9 item 1 (import names the repositories whose trust data use each key)
    assert_eq!(
        text.matches(&format!("signs in the trust data of: {repo}"))
            .count(),
        2,
        "both the root and the targets key sign {repo}:\n{text}"
    );
    // The files stay where docker keeps them.
    assert_eq!(std::fs::read_dir(private_dir(&env)).unwrap().count(), 2);

    // Idempotent: a second import skips both keys.
    let out = run(env.plugin().args(["key", "import"]));
    assert_success(&out, "key import again");
    let again = stdout(&out);
    assert_eq!(
        again.matches("Skipped (already in the keyring)").count(),
        2,
        "{again}"
    );
    assert!(!again.contains("Imported:"), "{again}");

    // key list REPO matches the imported keys against the verified trust data.
    let out = run(env
        .plugin()
        .args(["key", "list", &repo, "--format", "json"]));
    assert_success(&out, "key list REPO");
    let listing = json(&out);
    let ids = key_ids_by_role(&env);
    assert_eq!(listing["repository"], repo.as_str());
    let keys = listing["keys"].as_array().unwrap();
    for (role, id) in &ids {
        let k = keys
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{role} key {id} not listed: {listing}"));
        assert_eq!(k["signs"], serde_json::json!([role]), "{listing}");
        assert_eq!(k["algorithm"], "ecdsa");
    }
    assert_eq!(
        listing["roles_without_key"],
        serde_json::json!(["snapshot", "timestamp"]),
        "{listing}"
    );
    let out = run(env.plugin().args(["key", "list", &repo]));
    assert_success(&out, "key list REPO (text)");
    assert!(
        stdout(&out).contains("with no key here: snapshot, timestamp"),
        "{}",
        stdout(&out)
    );

    let out = run(env.plugin().args(["sign", &format!("{repo}:v2")]));
    assert_success(&out, "trustacr sign with docker's targets key");
    assert!(
        !stdout(&out).contains("Finished initializing"),
        "{}",
        stdout(&out)
    );

    // docker trust inspect shows both tags, with docker's own repository key.
    let out = run(env.docker().args(["trust", "inspect", &repo]));
    assert_success(&out, "docker trust inspect");
    let v = json(&out);
    let tags = &v[0]["SignedTags"];
    assert_eq!(tags[0]["SignedTag"], "v1");
    assert_eq!(tags[0]["Digest"], d1.trim_start_matches("sha256:"));
    assert_eq!(tags[1]["SignedTag"], "v2");
    assert_eq!(tags[1]["Digest"], d2.trim_start_matches("sha256:"));
    // The notary CLI, trusting on first use, lists v2 with the pushed digest.
    let out = notary(&env, &["list", &repo]);
    assert_success(&out, "notary list");
    let listing = stdout(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.split_whitespace().next() == Some("v2")
                && l.contains(d2.trim_start_matches("sha256:"))),
        "{listing}"
    );
    // And docker's own DCT pull resolves the tag this plugin signed.
    let mut pull = env.docker();
    pull.env("DOCKER_CONTENT_TRUST", "1");
    let out = run(pull.args(["pull", &format!("{repo}:v2")]));
    assert_success(&out, "DCT docker pull");
    assert!(stdout(&out).contains(&d2), "{}", stdout(&out));
}

/// Adds a bad file to a copy of docker's key directory.
type Spoil<'a> = dyn Fn(&Path) + 'a;

#[test]
fn bad_key_files_are_refused_and_nothing_is_imported() {
    let env = dct_env();
    let repo = unique_repo(&stack().registry, "badimport");
    push(
        &env,
        &format!("{repo}:v1"),
        "pushed by docker with DCT",
        true,
    );
    push(&env, &format!("{repo}:v2"), "to sign", false);
    let target = format!("{repo}:v2");
    let docker_keys = private_dir(&env);
    let ids = key_ids_by_role(&env);
    let (root_id, targets_id) = (ids[0].1.clone(), ids[1].1.clone());
    let nothing_stored = || {
        assert_cannot_sign(&env, &target);
        assert!(!keyring_has(&env, &root_id), "root key was stored");
        assert!(!keyring_has(&env, &targets_id), "targets key was stored");
    };
    nothing_stored();

    // Wrong repository passphrase: the error names the key ID, role and GUN; the root key,
    // which did decrypt, is not stored either.
    let out = run(env
        .plugin()
        .env(
            "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            "not-the-passphrase",
        )
        .args(["key", "import"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for part in ["wrong passphrase", "targets key", &targets_id, &repo] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    assert!(!err.contains("not-the-passphrase"), "{err}");
    assert!(!stdout(&out).contains("Imported"), "{}", stdout(&out));
    nothing_stored();

    // Next to the good keys: a damaged PEM, a public key, an unreadable entry. Each refuses
    // the whole import and says which file.
    let cases: [(&str, &Spoil<'_>, &str); 3] = [
        (
            "corrupt",
            &|d: &Path| {
                let good = std::fs::read_to_string(d.join(format!("{targets_id}.key"))).unwrap();
                std::fs::write(d.join("cut.key"), &good[..good.len() / 2]).unwrap();
            },
            "cut.key is not a readable PEM key file",
        ),
        (
            "public",
            &|d: &Path| {
                std::fs::copy(
                    repo_root().join("tests/data/notary-v1/keys/docker-alice.pub"),
                    d.join("alice.key"),
                )
                .unwrap();
            },
            "alice.key holds a PUBLIC KEY, not a private key",
        ),
        (
            "unreadable",
            // Tests may run as root, for whom file modes do not stop reading: a dangling link
            // is unreadable for everyone.
            &|d: &Path| {
                std::os::unix::fs::symlink("/nonexistent/trustacr/key", d.join("gone.key"))
                    .unwrap();
            },
            "cannot read",
        ),
    ];
    for (name, spoil, expect) in cases {
        let dir = env.home.join(format!("keys-{name}"));
        copy_keys(&docker_keys, &dir);
        spoil(&dir);
        let out = run(env.plugin().args(["key", "import"]).arg(&dir));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(expect), "{name}: {err}");
        assert!(err.contains("Nothing was imported"), "{name}: {err}");
        nothing_stored();
    }

    // The good files alone still import, and then signing works.
    assert_success(&run(env.plugin().args(["key", "import"])), "key import");
    assert_success(&run(env.plugin().args(["sign", &target])), "sign");
}

#[test]
fn exported_keys_sign_with_notary_and_restore_the_keyring() {
    let mut env = dct_env();
    // notary reads the exported blocks with its own variables: the same passphrases.
    env.set("NOTARY_ROOT_PASSPHRASE", ROOT_PASS);
    env.set("NOTARY_TARGETS_PASSPHRASE", REPO_PASS);
    let repo = unique_repo(&stack().registry, "export");
    push(
        &env,
        &format!("{repo}:v1"),
        "pushed by docker with DCT",
        true,
    );
    let d2 = push(&env, &format!("{repo}:v2"), "to sign after restore", false);
    assert_success(&run(env.plugin().args(["key", "import"])), "key import");
    let ids = key_ids_by_role(&env);

    let backup = env.home.join("backup.pem");
    let out = run(env
        .plugin()
        .args(["key", "export", &repo, "-o"])
        .arg(&backup));
    assert_success(&out, "key export");
    let text = std::fs::read_to_string(&backup).unwrap();
    assert_eq!(
        text.matches("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            .count(),
        2,
        "{text}"
    );
    for (role, id) in &ids {
        assert!(
            text.contains(&format!("path: {id}\nrole: {role}\n")),
            "{text}"
        );
    }
    assert!(text.contains(&format!("gun: {repo}\n")), "{text}");
    assert!(!text.contains(ROOT_PASS) && !text.contains(REPO_PASS));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No overwrite without --force; the file is unchanged.
    let out = run(env
        .plugin()
        .args(["key", "export", &repo, "-o"])
        .arg(&backup));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), text);

    // The notary CLI loads the backup and signs a new target with docker's targets key.
    let out = notary(&env, &["key", "import", backup.to_str().unwrap()]);
    assert_success(&out, "notary key import");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let out = notary(
        &env,
        &["addhash", &repo, "from-notary", "3", "--sha256", abc, "-p"],
    );
    assert_success(&out, "notary addhash -p with the exported key");
    let out = notary(&env, &["list", &repo]);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("from-notary") && l.contains(abc)),
        "{}",
        stdout(&out)
    );

    // Wipe the keyring entries: signing fails. Import the backup: signing works again.
    for (_, id) in &ids {
        assert_success(
            &run(env.cmd("secret-tool").args([
                "clear",
                "service",
                "docker-trustacr",
                "username",
                &format!("key:{id}"),
            ])),
            "secret-tool clear",
        );
        assert!(!keyring_has(&env, id), "{id} still in the keyring");
    }
    assert_cannot_sign(&env, &format!("{repo}:v2"));
    let out = run(env.plugin().args(["key", "import"]).arg(&backup));
    assert_success(&out, "key import of the backup");
    assert_eq!(
        stdout(&out).matches("Imported:").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v2")])),
        "sign after restore",
    );
    let out = run(env
        .docker()
        .args(["trust", "inspect", &format!("{repo}:v2")]));
    assert_success(&out, "docker trust inspect");
    assert_eq!(
        json(&out)[0]["SignedTags"][0]["Digest"],
        d2.trim_start_matches("sha256:")
    );
}

// See: #12 item 5
#[test]
fn signing_reads_its_keys_over_its_own_encrypted_secret_service_session() {
    // The keys are written through keyring-core (the secret-service crate's session) and read
    // over src/keystore/session.rs's: both Diffie-Hellman exchanges must agree with the real
    // gnome-keyring, or the read falls back to keyring-core and says so under -D.
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "dh-session");
    let (digest, _) = docker_push(&env, &format!("{repo}:v1"), "read over the session");
    let out = run(env.plugin().args(["-D", "sign", &format!("{repo}:v1")]));
    assert_success(&out, "a first sign, which creates and reads back the keys");
    let err = stderr(&out);
    assert!(!err.contains("through keyring-core"), "{err}");
    let out = run(env.plugin().args(["-D", "sign", &format!("{repo}:v1")]));
    assert_success(&out, "a second sign, which only reads the targets key");
    let err = stderr(&out);
    assert!(!err.contains("through keyring-core"), "{err}");
    let out = run(env.plugin().args(["verify", &format!("{repo}:v1")]));
    assert_success(&out, "verify");
    assert_eq!(stdout(&out).trim(), digest);
}
