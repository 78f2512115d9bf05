//! Interop on the real notary-server, both directions: what this plugin publishes, `notary` and
//! `docker trust` read; what they publish (delegations, root rotation), this plugin verifies.

use std::process::Output;

use serde_json::Value;

use crate::harness::*;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

#[test]
fn signed_tags_are_read_identically_by_notary_and_docker_trust() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "sign");
    let (digest, size) = docker_push(&env, &format!("{repo}:v1"), "first image");
    let (digest2, size2) = docker_push(&env, &format!("{repo}:v2"), "second image");

    let out = run(env
        .plugin()
        .args(["sign", &format!("{repo}:v1"), &format!("{repo}:v2")]));
    assert_success(&out, "trustacr sign");
    let text = stdout(&out);
    assert!(
        text.contains("Signing and pushing trust metadata"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Finished initializing \"{repo}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Successfully signed {repo}:v1")),
        "{text}"
    );

    // The notary CLI, a fresh client trusting on first use, lists both tags with our digests.
    let out = notary(&env, &["list", &repo]);
    assert_success(&out, "notary list");
    let listing = stdout(&out);
    for (tag, d, s) in [("v1", &digest, size), ("v2", &digest2, size2)] {
        let hex = d.trim_start_matches("sha256:");
        let row = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tag))
            .unwrap_or_else(|| panic!("{tag} missing from notary list:\n{listing}"));
        assert!(row.contains(hex) && row.contains(&s.to_string()), "{row}");
    }
    let out = notary(&env, &["lookup", &repo, "v2"]);
    assert_success(&out, "notary lookup");
    assert!(stdout(&out).contains(digest2.trim_start_matches("sha256:")));

    // docker trust inspect agrees, and our inspect prints the same document.
    let out = run(env.docker().args(["trust", "inspect", &repo]));
    assert_success(&out, "docker trust inspect");
    let theirs = json(&out);
    assert_eq!(theirs[0]["SignedTags"][0]["SignedTag"], "v1");
    assert_eq!(
        theirs[0]["SignedTags"][0]["Digest"],
        digest.trim_start_matches("sha256:")
    );
    assert_eq!(
        theirs[0]["SignedTags"][1]["Digest"],
        digest2.trim_start_matches("sha256:")
    );
    let out = run(env.plugin().args(["inspect", &repo]));
    assert_success(&out, "trustacr inspect");
    assert_eq!(json(&out), theirs);

    // And verify resolves the tag to the pushed digest.
    let out = run(env.plugin().args(["verify", &format!("{repo}:v2")]));
    assert_success(&out, "trustacr verify");
    assert_eq!(stdout(&out).trim(), digest2);
}

#[test]
fn signing_again_updates_the_repository_and_keeps_earlier_tags() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "resign");
    let (d1, _) = docker_push(&env, &format!("{repo}:v1"), "one");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "sign v1",
    );
    let (d2, _) = docker_push(&env, &format!("{repo}:v1"), "one, rebuilt");
    let (d3, _) = docker_push(&env, &format!("{repo}:v3"), "three");
    let out = run(env
        .plugin()
        .args(["sign", &format!("{repo}:v1"), &format!("{repo}:v3")]));
    assert_success(&out, "sign again");
    assert!(
        !stdout(&out).contains("Finished initializing"),
        "{}",
        stdout(&out)
    );
    assert_ne!(d1, d2);
    let out = run(env
        .plugin()
        .args(["verify", "--format", "json", &format!("{repo}:v1")]));
    assert_success(&out, "verify v1");
    let v = json(&out);
    assert_eq!(v["digest"], d2.as_str());
    assert_eq!(v["role"], "targets");
    let out = run(env
        .docker()
        .args(["trust", "inspect", &format!("{repo}:v3")]));
    assert_success(&out, "docker trust inspect v3");
    assert_eq!(
        json(&out)[0]["SignedTags"][0]["Digest"],
        d3.trim_start_matches("sha256:")
    );
}

#[test]
fn revoke_removes_the_tag_for_every_client() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "revoke");
    docker_push(&env, &format!("{repo}:keep"), "keep");
    docker_push(&env, &format!("{repo}:drop"), "drop");
    assert_success(
        &run(env
            .plugin()
            .args(["sign", &format!("{repo}:keep"), &format!("{repo}:drop")])),
        "sign",
    );
    let out = run(env.plugin().args(["revoke", &format!("{repo}:drop")]));
    assert_success(&out, "revoke");
    assert!(stdout(&out).contains(&format!("Successfully deleted signature for {repo}:drop")));

    let out = notary(&env, &["list", &repo]);
    assert_success(&out, "notary list");
    assert!(
        stdout(&out).contains("keep") && !stdout(&out).contains("drop"),
        "{}",
        stdout(&out)
    );
    let out = run(env.plugin().args(["verify", &format!("{repo}:drop")]));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("No valid trust data for drop"),
        "{}",
        stderr(&out)
    );
    // Revoking what is not signed is an error, and changes nothing.
    let out = run(env.plugin().args(["revoke", &format!("{repo}:drop")]));
    assert!(!out.status.success());
    // Without a tag, --yes is required.
    let out = run(env.plugin().args(["revoke", &repo]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn repository_without_trust_data_is_reported_and_nothing_is_cached() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "none");
    let out = run(env.plugin().args(["verify", &format!("{repo}:v1")]));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("remote trust data does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!env.config.join("trust/tuf").join(&repo).exists());
}

#[test]
fn notary_cli_delegation_signs_and_the_role_and_hash_verify_across_a_root_rotation() {
    let env = trust_env();
    let gun = unique_repo(&stack().registry, "notarycli");
    let payload = env.home.join("payload.txt");
    std::fs::write(&payload, "signed by the notary CLI\n").unwrap();
    let payload_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&payload).unwrap()))
    };
    let p = payload.to_str().unwrap();
    assert_success(&notary(&env, &["init", &gun, "-p"]), "notary init");
    assert_success(&notary(&env, &["add", &gun, "v1", p, "-p"]), "notary add");

    // A targets/releases delegation, as docker's signer model has it.
    let rel = env.home.join("rel");
    assert_success(
        &notary(
            &env,
            &[
                "key",
                "generate",
                "ecdsa",
                "--role",
                "targets/releases",
                "-o",
                rel.to_str().unwrap(),
            ],
        ),
        "notary key generate",
    );
    assert_success(
        &notary(
            &env,
            &[
                "delegation",
                "add",
                &gun,
                "targets/releases",
                &format!("{}.pem", rel.display()),
                "--all-paths",
                "-p",
            ],
        ),
        "notary delegation add",
    );
    // `notary key generate -o` wrote the private key beside the public key, outside notary's
    // key store; notary finds a private key by its key ID (of the public key).
    let public_pem = std::fs::read_to_string(format!("{}.pem", rel.display())).unwrap();
    let b64: String = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && !l.is_empty())
        .collect();
    let der = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let canonical =
        docker_trustacr::tuf::keys::PublicKey::new(docker_trustacr::tuf::keys::keytype::ECDSA, der)
            .id();
    std::fs::copy(
        format!("{}-key.pem", rel.display()),
        env.home
            .join(".notary/private")
            .join(format!("{canonical}.key")),
    )
    .unwrap();
    let out = run(env.plugin().args(["verify", &format!("{gun}:v1")]));
    assert_success(&out, "verify before the delegation signs");
    assert_eq!(stdout(&out).trim(), format!("sha256:{payload_sha}"));

    // v2 signed by the delegation's key alone.
    let released = env.home.join("released.txt");
    std::fs::write(&released, "signed by targets/releases\n").unwrap();
    let released_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&released).unwrap()))
    };
    assert_success(
        &notary(
            &env,
            &[
                "add",
                &gun,
                "v2",
                released.to_str().unwrap(),
                "--roles",
                "targets/releases",
                "-p",
            ],
        ),
        "notary add --roles targets/releases",
    );
    let out = run(env
        .plugin()
        .args(["verify", "--format", "json", &format!("{gun}:v2")]));
    assert_success(&out, "verify the delegation's tag");
    let v = json(&out);
    assert_eq!(v["role"], "targets/releases");
    assert_eq!(v["digest"], format!("sha256:{released_sha}").as_str());

    // Rotate the root: our cached (pinned) root must lead to the new one by the chain.
    let mut rotate = env.cmd("notary");
    rotate
        .arg("-d")
        .arg(env.home.join(".notary"))
        .args(["-s", &stack().notary_url, "--tlscacert"])
        .arg(&stack().notary_ca)
        .args(["key", "rotate", &gun, "root"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = rotate.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "notary key rotate root");

    let out = run(env.plugin().args(["inspect", &gun]));
    assert_success(&out, "inspect after rotation");
    let v = json(&out);
    assert_eq!(v[0]["SignedTags"][0]["Digest"], payload_sha.as_str());
    let root = std::fs::read(
        env.config
            .join("trust/tuf")
            .join(&gun)
            .join("metadata/root.json"),
    )
    .unwrap();
    let root: Value = serde_json::from_slice(&root).unwrap();
    assert_eq!(
        root["signed"]["version"], 2,
        "the cache follows the rotated root"
    );
}

#[test]
fn docker_trust_signed_delegation_verifies_and_inspects_identically() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "dockersign");
    let keys = env.home.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = run(env
        .docker()
        .args(["trust", "key", "generate", "alice", "--dir"])
        .arg(&keys));
    assert_success(&out, "docker trust key generate");
    let out = run(env
        .docker()
        .args(["trust", "signer", "add", "--key"])
        .arg(keys.join("alice.pub"))
        .args(["alice", &repo]));
    assert_success(&out, "docker trust signer add");
    let (digest, _) = docker_push(&env, &format!("{repo}:v1"), "signed by docker trust");
    let out = run(env.docker().args(["trust", "sign", &format!("{repo}:v1")]));
    assert_success(&out, "docker trust sign");

    let out = run(env
        .plugin()
        .args(["verify", "--format", "json", &format!("{repo}:v1")]));
    assert_success(&out, "verify");
    let v = json(&out);
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(v["role"], "targets/releases");

    let theirs = json(&run(env.docker().args(["trust", "inspect", &repo])));
    let out = run(env.plugin().args(["inspect", &repo]));
    assert_success(&out, "inspect");
    assert_eq!(json(&out), theirs);
    assert_eq!(theirs[0]["SignedTags"][0]["Signers"][0], "alice");
}

#[test]
fn notary_server_certificate_is_checked_against_the_ca_in_the_docker_tls_dir() {
    // A registry name that is not loopback, so docker's insecure rule does not apply.
    let env = trust_env();
    let n = next_id();
    let gun = format!("trust.test/tls-{}-{n}", std::process::id());
    let payload = env.home.join("p.txt");
    std::fs::write(&payload, "tls").unwrap();
    assert_success(&notary(&env, &["init", &gun, "-p"]), "notary init");
    assert_success(
        &notary(&env, &["add", &gun, "v1", payload.to_str().unwrap(), "-p"]),
        "notary add",
    );

    let out = run(env.plugin().args(["verify", &format!("{gun}:v1")]));
    assert_eq!(out.status.code(), Some(6), "an unknown CA must be refused");
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    assert!(!env.config.join("trust/tuf").join(&gun).exists());

    let host_port = stack()
        .notary_url
        .trim_start_matches("https://")
        .to_string();
    let dir = env.config.join("tls").join(host_port);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&stack().notary_ca, dir.join("ca.crt")).unwrap();
    let out = run(env.plugin().args(["verify", &format!("{gun}:v1")]));
    assert_success(&out, "verify with the CA in tls/<host:port>/");
}

#[test]
fn unreachable_keyring_stops_signing_before_anything_is_published() {
    let mut env = trust_env();
    let repo = unique_repo(&stack().registry, "nokeyring");
    docker_push(&env, &format!("{repo}:v1"), "k");
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let out = run(env.plugin().args(["sign", &format!("{repo}:v1")]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the OS keyring") && err.contains("dbus-run-session"),
        "{err}"
    );
    assert_eq!(
        err.matches("cannot reach the OS keyring").count(),
        1,
        "the failure is said once, not wrapped in itself: {err}"
    );
    let out = notary(&env, &["list", &repo]);
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("does not have trust data"),
        "nothing may be published without keys"
    );
}
