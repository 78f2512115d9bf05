//! Signers as docker has them: keys from `key generate` / `docker trust key generate`, loaded
//! with `key load` / `docker trust key load`, delegated with `signer add` / `docker trust signer
//! add`, and tags signed into `targets/releases` and `targets/<signer>`. The docker CLI and the
//! notary CLI read what this plugin writes, and the other way round.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::harness::*;

const REPO_PASS: &str = "repo-pass-123";

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

/// A trust environment with a keyring namespace of its own, so `key list` shows only what this
/// test stored.
fn own_keyring_env(label: &str) -> TestEnv {
    let mut env = trust_env();
    env.set(
        "TRUSTACR_KEYRING_SERVICE",
        format!("trustacr-test-{label}-{}-{}", std::process::id(), next_id()),
    );
    env
}

/// The key file in `dir` whose PEM header names `role`.
fn key_file_with_role(dir: &Path, role: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .any(|l| l == format!("role: {role}"))
        })
        .unwrap_or_else(|| panic!("no {role} key in {}", dir.display()))
}

/// docker's private key file of `role`.
fn docker_key_file(env: &TestEnv, role: &str) -> PathBuf {
    key_file_with_role(&env.config.join("trust/private"), role)
}

/// A DCT `docker push` of a new one-file image as `reference`: docker signs it, creating the
/// repository's trust data (and root and targets keys) on first use.
fn dct_push(env: &TestEnv, reference: &str, content: &str) {
    import_image(env, reference, content);
    let mut push = env.docker();
    push.env("DOCKER_CONTENT_TRUST", "1");
    assert_success(&run(push.args(["push", reference])), "DCT push");
}

fn key_id_of(file: &Path) -> String {
    file.file_stem().unwrap().to_string_lossy().into_owned()
}

/// docker's own `trust key generate NAME` and `trust signer add` (which initialises REPO).
fn docker_signer(env: &TestEnv, name: &str, repo: &str) -> PathBuf {
    let keys = env.home.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = run(env
        .docker()
        .args(["trust", "key", "generate", name, "--dir"])
        .arg(&keys));
    assert_success(&out, "docker trust key generate");
    let public = keys.join(format!("{name}.pub"));
    let out = run(env
        .docker()
        .args(["trust", "signer", "add", "--key"])
        .arg(&public)
        .args([name, repo]));
    assert_success(&out, "docker trust signer add");
    public
}

fn inspect(env: &TestEnv, what: &str) -> Value {
    let out = run(env.docker().args(["trust", "inspect", what]));
    assert_success(&out, "docker trust inspect");
    json(&out)
}

/// `notary list REPO --roles ROLE` has `tag` with `digest` (`sha256:…`).
fn notary_lists(env: &TestEnv, repo: &str, role: &str, tag: &str, digest: &str) -> bool {
    let out = notary(env, &["list", repo, "--roles", role]);
    assert_success(&out, "notary list --roles");
    stdout(&out).lines().any(|l| {
        l.split_whitespace().next() == Some(tag) && l.contains(digest.trim_start_matches("sha256:"))
    })
}

fn dct_pull_resolves(env: &TestEnv, reference: &str, digest: &str) {
    let mut pull = env.docker();
    pull.env("DOCKER_CONTENT_TRUST", "1");
    let out = run(pull.args(["pull", reference]));
    assert_success(&out, "DCT docker pull");
    assert!(stdout(&out).contains(digest), "{}", stdout(&out));
}

#[test]
fn docker_signer_key_loaded_here_signs_into_its_delegation_and_releases() {
    let env = own_keyring_env("load");
    let repo = unique_repo(&stack().registry, "signload");
    docker_signer(&env, "alice", &repo);
    let (digest, _) = docker_push(&env, &format!("{repo}:v1"), "signed by a loaded key");
    let alice = docker_key_file(&env, "alice");
    // Only the signer's key is here: no root, no targets key of the repository.
    let out = run(env.plugin().args(["key", "load"]).arg(&alice));
    assert_success(&out, "key load");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("key {} from", key_id_of(&alice))) && text.contains("signer alice"),
        "{text}"
    );

    let out = run(env.plugin().args(["sign", &format!("{repo}:v1")]));
    assert_success(&out, "sign with the signer key");

    let v = inspect(&env, &repo);
    let row = &v[0]["SignedTags"][0];
    assert_eq!(row["SignedTag"], "v1");
    assert_eq!(row["Digest"], digest.trim_start_matches("sha256:"));
    assert_eq!(row["Signers"], serde_json::json!(["alice"]), "{v}");
    assert!(notary_lists(&env, &repo, "targets/releases", "v1", &digest));
    assert!(notary_lists(&env, &repo, "targets/alice", "v1", &digest));
    dct_pull_resolves(&env, &format!("{repo}:v1"), &digest);

    // revoke takes it out of the same roles, as docker trust revoke does.
    let out = run(env.plugin().args(["revoke", &format!("{repo}:v1")]));
    assert_success(&out, "revoke with the signer key");
    let v = inspect(&env, &repo);
    assert_eq!(v[0]["SignedTags"], serde_json::json!([]), "{v}");
    assert!(!notary_lists(&env, &repo, "targets/alice", "v1", &digest));
}

#[test]
fn docker_made_repository_with_a_signer_is_pushed_into_the_delegation_after_key_import() {
    let env = own_keyring_env("import");
    let repo = unique_repo(&stack().registry, "signimport");
    // The ACR guide's way: a DCT push makes the repository, then a signer is added.
    dct_push(&env, &format!("{repo}:v1"), "pushed with DCT");
    docker_signer(&env, "alice", &repo);
    let out = run(env.plugin().args(["key", "import"]));
    assert_success(&out, "key import");
    assert!(
        stdout(&out).contains("Imported: alice key"),
        "{}",
        stdout(&out)
    );

    import_image(&env, &format!("{repo}:v2"), "pushed by trustacr");
    let out = run(env.plugin().args(["push", &format!("{repo}:v2")]));
    assert_success(&out, "trustacr push");
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains(": digest: sha256:"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no digest line: {}", stdout(&out)));
    let digest = line.split(": digest: ").nth(1).unwrap();
    let digest = digest.split_whitespace().next().unwrap().to_string();

    let v = inspect(&env, &format!("{repo}:v2"));
    assert_eq!(
        v[0]["SignedTags"][0]["Signers"],
        serde_json::json!(["alice"]),
        "{v}"
    );
    // Docker never signs into targets once there are delegations; neither did this push.
    assert!(notary_lists(&env, &repo, "targets/alice", "v2", &digest));
    let cached = env
        .config
        .join("trust/tuf")
        .join(&repo)
        .join("metadata/targets.json");
    let targets: Value = serde_json::from_slice(&std::fs::read(cached).unwrap()).unwrap();
    assert!(
        targets["signed"]["targets"].get("v2").is_none(),
        "{targets}"
    );
    assert!(
        targets["signed"]["targets"].get("v1").is_some(),
        "{targets}"
    );
    dct_pull_resolves(&env, &format!("{repo}:v2"), &digest);
}

#[test]
fn key_generated_here_signs_with_docker_and_a_removed_signer_is_gone_everywhere() {
    let env = own_keyring_env("generate");
    let repo = unique_repo(&stack().registry, "signgen");
    dct_push(&env, &format!("{repo}:v1"), "owner's tag");
    assert_success(&run(env.plugin().args(["key", "import"])), "key import");

    let keys = env.home.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = run(env
        .plugin()
        .args(["key", "generate", "bob", "--dir"])
        .arg(&keys));
    assert_success(&out, "key generate");
    let public = keys.join("bob.pub");
    let pem = std::fs::read_to_string(&public).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\nrole: bob\n\n"),
        "{pem}"
    );
    let listed = json(&run(env.plugin().args(["key", "list", "--format", "json"])));
    let bob_id = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "bob")
        .unwrap_or_else(|| panic!("bob not listed: {listed}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stdout(&out).contains(&bob_id), "{}", stdout(&out));
    // docker refuses to overwrite NAME.pub; so does this, and makes no key.
    let out = run(env
        .plugin()
        .args(["key", "generate", "bob", "--dir"])
        .arg(&keys));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&public).unwrap(), pem);

    let out = run(env
        .plugin()
        .args(["signer", "add", "bob", &repo, "--key"])
        .arg(&public));
    assert_success(&out, "signer add");
    let v = inspect(&env, &repo);
    assert_eq!(
        v[0]["Signers"],
        serde_json::json!([{"Name": "bob", "Keys": [{"ID": bob_id}]}]),
        "{v}"
    );

    // The key goes to docker as a private key file, and docker signs with it.
    let exported = env.home.join("bob.key");
    let out = run(env
        .plugin()
        .args(["key", "export", "--role", "bob", "-o"])
        .arg(&exported));
    assert_success(&out, "key export --role bob");
    let out = run(env
        .docker()
        .args(["trust", "key", "load", "--name", "bob"])
        .arg(&exported));
    assert_success(&out, "docker trust key load");
    import_image(
        &env,
        &format!("{repo}:v2"),
        "signed by docker with bob's key",
    );
    let out = run(env.docker().args(["trust", "sign", &format!("{repo}:v2")]));
    assert_success(&out, "docker trust sign");
    let v = inspect(&env, &format!("{repo}:v2"));
    assert_eq!(
        v[0]["SignedTags"][0]["Signers"],
        serde_json::json!(["bob"]),
        "{v}"
    );

    // bob is the last signer of releases: removing him needs --yes, and nothing changes first.
    let out = run(env.plugin().args(["signer", "remove", "bob", &repo]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("last key of targets/releases") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(inspect(&env, &repo)[0]["Signers"][0]["Name"], "bob");

    let out = run(env
        .plugin()
        .args(["signer", "remove", "bob", &repo, "--yes"]));
    assert_success(&out, "signer remove --yes");
    let v = inspect(&env, &repo);
    assert_eq!(v[0]["Signers"], serde_json::json!([]), "{v}");
    let out = notary(&env, &["delegation", "list", &repo]);
    assert_success(&out, "notary delegation list");
    assert!(!stdout(&out).contains("targets/bob"), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("targets/releases"),
        "{}",
        stdout(&out)
    );
    // The repository is signed with its targets key again, here and by docker.
    import_image(&env, &format!("{repo}:v3"), "after the signer left");
    assert_success(
        &run(env.plugin().args(["push", &format!("{repo}:v3")])),
        "push",
    );
    let v = inspect(&env, &format!("{repo}:v3"));
    assert_eq!(
        v[0]["SignedTags"][0]["Signers"],
        serde_json::json!(["Repo Admin"]),
        "{v}"
    );
}

/// `key list --format json` of the environment's own keyring namespace.
fn keyring(env: &TestEnv) -> Value {
    let out = run(env.plugin().args(["key", "list", "--format", "json"]));
    assert_success(&out, "key list");
    json(&out)
}

/// Runs the plugin with `args`; asserts exit 1 and that stderr has every part of `expect`.
fn refused(env: &TestEnv, args: &[&str], expect: &[&str]) {
    let out = run(env.plugin().args(args));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} must fail:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    for part in expect {
        assert!(err.contains(part), "{args:?}: {part:?} missing from: {err}");
    }
}

fn private_copy(env: &TestEnv, from: &Path, name: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let to = env.home.join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
    to
}

/// The fixture key file of docker's `trust` directory whose header names `role`.
fn fixture_key(role: &str) -> PathBuf {
    key_file_with_role(
        &repo_root().join("tests/data/notary-v1/keys/docker-trust"),
        role,
    )
}

#[test]
fn bad_signer_input_is_refused_with_the_keyring_unchanged() {
    let mut env = own_keyring_env("bad");
    // The fixtures' repository passphrase.
    env.set("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repopw");
    let before = keyring(&env);
    let repo = format!("{}/t/never-touched", stack().registry);

    let ed = env.home.join("ed.pem");
    assert_success(
        &run(env
            .cmd("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&ed)),
        "openssl genpkey",
    );
    let ed_pub = env.home.join("ed.pub");
    assert_success(
        &run(env
            .cmd("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&ed)
            .arg("-out")
            .arg(&ed_pub)),
        "openssl pkey -pubout",
    );
    let ed = private_copy(&env, &ed, "ed.key", 0o600);
    let alice_pub = repo_root().join("tests/data/notary-v1/keys/docker-alice.pub");
    let public_as_key = private_copy(&env, &alice_pub, "alice-pub.key", 0o600);
    let other_gun = private_copy(&env, &fixture_key("targets"), "targets.key", 0o600);
    let open = private_copy(&env, &fixture_key("alice"), "open.key", 0o640);

    let [
        public_as_key,
        ed,
        other_gun,
        open,
        alice_pub,
        ed_pub,
        alice_fixture,
    ] = [
        &public_as_key,
        &ed,
        &other_gun,
        &open,
        &alice_pub,
        &ed_pub,
        &fixture_key("alice"),
    ]
    .map(|p| p.to_str().unwrap().to_string());
    let add = |name: &str, key: &str| format!("signer add {name} {repo} --key {key}");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("key load {public_as_key}"),
            vec!["holds a PUBLIC KEY, not a private key"],
        ),
        (format!("key load {ed}"), vec!["Ed25519"]),
        (
            format!("key load {other_gun}"),
            vec!["holds the targets key of", "not a signer key", "key import"],
        ),
        (
            format!("key load {open}"),
            vec!["readable or writable by other users", "chmod 600"],
        ),
        (
            format!("key load {alice_fixture} --name Not/Ok"),
            vec!["name \"Not/Ok\" is refused"],
        ),
        (
            format!("key generate Alice --dir {}", env.home.display()),
            vec!["name \"Alice\" is refused", "docker's rule"],
        ),
        (
            add("releases", &alice_pub),
            vec!["\"releases\" is reserved"],
        ),
        (
            add("al.ice", &alice_pub),
            vec!["name \"al.ice\" is refused"],
        ),
        (
            add("bob", &open),
            vec!["a private key: give the signer's public key file"],
        ),
        (add("bob", &ed_pub), vec!["RFC 8410 Ed25519"]),
        (
            format!("signer remove releases {repo} --yes"),
            vec!["names no signer"],
        ),
    ];
    // The test's paths have no spaces, so each command line splits on them.
    for (line, expect) in &cases {
        let args: Vec<&str> = line.split(' ').collect();
        refused(&env, &args, expect);
        assert_eq!(keyring(&env), before, "{args:?} changed the keyring");
    }
    assert!(!env.home.join("Alice.pub").exists());
    // The repository was never touched: no trust data was made for it.
    let out = notary(&env, &["list", &repo]);
    assert!(!out.status.success(), "{}", stdout(&out));

    // The good signer key file loads, under its header's name or the one given.
    let good = private_copy(&env, &fixture_key("alice"), "alice.key", 0o600);
    let out = run(env.plugin().args(["key", "load"]).arg(&good));
    assert_success(&out, "key load of a signer key");
    assert!(stdout(&out).contains("as signer alice"), "{}", stdout(&out));
    let keys = keyring(&env)["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys[0]["role"], "alice");
    assert_eq!(keys[0]["id"], key_id_of(&fixture_key("alice")).as_str());
}

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else if p.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn signer_keys_and_passphrases_never_reach_debug_output_or_plain_files() {
    let env = own_keyring_env("secrets");
    let keys = env.home.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut outputs = Vec::new();
    let mut step = |args: &[&std::ffi::OsStr], what: &str| {
        let out = run(env.plugin().arg("-D").args(args));
        assert_success(&out, what);
        outputs.push(out.stdout);
        outputs.push(out.stderr);
    };
    let os = std::ffi::OsStr::new;
    step(
        &[
            os("key"),
            os("generate"),
            os("carol"),
            os("--dir"),
            keys.as_os_str(),
        ],
        "key generate",
    );
    let exported = env.home.join("carol.key");
    step(
        &[
            os("key"),
            os("export"),
            os("--role"),
            os("carol"),
            os("-o"),
            exported.as_os_str(),
        ],
        "key export",
    );
    step(
        &[
            os("key"),
            os("load"),
            exported.as_os_str(),
            os("--name"),
            os("carol"),
        ],
        "key load",
    );
    // The private scalar, as the keyring holds it (base64) and in hex.
    let listed = keyring(&env);
    let id = listed["keys"][0]["id"].as_str().unwrap().to_string();
    let service = env_value(&env, "TRUSTACR_KEYRING_SERVICE");
    let out = run(env.cmd("secret-tool").args([
        "lookup",
        "service",
        &service,
        "username",
        &format!("key:{id}"),
    ]));
    assert_success(&out, "secret-tool lookup");
    let secret: Value = serde_json::from_slice(&out.stdout).unwrap();
    let b64 = secret["private"].as_str().unwrap().to_string();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    let hex_scalar = hex::encode(&raw);
    let mut files = Vec::new();
    all_files(&env.home, &mut files);
    let needles: [&[u8]; 4] = [
        b64.as_bytes(),
        hex_scalar.as_bytes(),
        &raw,
        REPO_PASS.as_bytes(),
    ];
    for (i, text) in outputs.iter().enumerate() {
        for n in &needles {
            assert!(
                !text.windows(n.len()).any(|w| w == *n),
                "output {i} shows a secret:\n{}",
                String::from_utf8_lossy(text)
            );
        }
    }
    for (path, bytes) in &files {
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == *n),
                "{} holds a secret",
                path.display()
            );
        }
        let text = String::from_utf8_lossy(bytes);
        if text.contains("PRIVATE KEY") {
            assert_eq!(
                path, &exported,
                "only the encrypted export holds a private key"
            );
            assert!(!text.contains("BEGIN PRIVATE KEY") && !text.contains("EC PRIVATE KEY"));
        }
    }
}

/// A variable [`TestEnv::set`] gave the environment, read back through a shell.
fn env_value(env: &TestEnv, name: &str) -> String {
    let out = run(env
        .cmd("sh")
        .args(["-c", &format!("printf %s \"${name}\"")]));
    stdout(&out)
}

// See: #9 item 1 (RSA signer keys, as `docker trust key load` and notary 0.3 accepted them)
#[test]
fn an_rsa_signer_key_signs_into_its_delegation_and_the_server_docker_and_notary_accept_it() {
    let mut env = own_keyring_env("rsa");
    // The fixtures' repository passphrase.
    env.set("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repopw");
    let repo = unique_repo(&stack().registry, "signrsa");
    docker_push(&env, &format!("{repo}:base"), "rsa base");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:base")])),
        "sign base as the owner",
    );
    let key = private_copy(&env, &fixture_key("rsakey"), "rsakey.key", 0o600);
    let public = env.home.join("rsakey.pub");
    // openssl reads the PEM without notary's `role:`/`gun:` headers.
    let bare = env.home.join("rsakey-bare.pem");
    let text = std::fs::read_to_string(&key).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(": ") && !l.is_empty())
        .collect();
    std::fs::write(&bare, lines.join("\n") + "\n").unwrap();
    assert_success(
        &run(env
            .cmd("openssl")
            .args(["pkey", "-pubout", "-passin", "pass:repopw", "-in"])
            .arg(&bare)
            .arg("-out")
            .arg(&public)),
        "openssl pkey -pubout",
    );
    assert_success(
        &run(env
            .plugin()
            .args(["signer", "add", "rsakey", &repo, "--key"])
            .arg(&public)),
        "signer add rsakey",
    );
    assert_success(
        &run(env
            .plugin()
            .args(["key", "load"])
            .arg(&key)
            .args(["--name", "rsakey"])),
        "key load of the RSA key",
    );
    let (digest, _) = docker_push(&env, &format!("{repo}:v1"), "signed with RSA-PSS");
    // notary-server checks every signature of what it is sent: accepting the upload is the
    // Go implementation accepting our rsapss signature.
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "sign with the RSA signer key",
    );
    assert!(notary_lists(&env, &repo, "targets/rsakey", "v1", &digest));
    let v = inspect(&env, &repo);
    let row = v[0]["SignedTags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["SignedTag"] == "v1")
        .unwrap_or_else(|| panic!("v1 not in docker trust inspect: {v}"))
        .clone();
    assert_eq!(row["Digest"], digest.trim_start_matches("sha256:"));
    assert!(
        row["Signers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "rsakey"),
        "{v}"
    );
}
