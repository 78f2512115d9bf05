//! `verify` under the default pull policy ("every kind the repository has must verify"), whose
//! two lookups, the notary update and the registry's Notary Project signatures, run at once
//! (#12 item 5): both kinds are asked for and named, a Notary Project signature that exists
//! but does not verify refuses the tag although Docker Content Trust verifies it, and
//! `--policy dct` asks the notary server alone.

use crate::harness::*;
use crate::notation_sign::{generate, json, notation_env};

/// Whether `-D` output names an HTTP request to anything but the notary server.
fn asked_the_registry(debug: &str) -> bool {
    debug
        .lines()
        .any(|l| l.contains("HTTP ") && !l.contains("/_trust/tuf/"))
}

// See: #12 item 5 (the default policy's lookups run at once; a failing Notary Project
// signature is not overlooked because DCT verified)
#[test]
fn default_policy_refuses_a_tag_whose_notary_project_signature_fails_although_dct_verifies() {
    let mut env = notation_env();
    env.set(
        "NOTATION_CONFIG",
        env.home.join("notation").display().to_string(),
    );
    std::fs::write(
        env.config.join("trustacr.json"),
        r#"{"push_signatures":"both"}"#,
    )
    .unwrap();
    let repo = unique_repo(&stack().registry, "vpolicy");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "default policy");
    let cert = generate(&env, "signer");
    assert_success(
        &run(env.plugin().args(["push", &reference])),
        "push with both kinds",
    );
    let trust = |cert: &std::path::Path, force: bool| {
        let mut cmd = env.plugin();
        cmd.args(["policy", "init", &repo]);
        if force {
            cmd.args(["--force", "--store", "other"]);
        }
        assert_success(&run(cmd.arg("--cert").arg(cert)), "policy init");
    };
    trust(&cert, false);

    // Both kinds verify and are named; the notary server and the registry were both asked.
    let out = run(env
        .plugin()
        .args(["-D", "--format", "json", "verify", &reference]));
    assert_success(&out, "verify under the default policy");
    let v = json(&out);
    assert_eq!(v["kinds"].as_array().map(Vec::len), Some(2), "{v}");
    let digest = v["digest"].as_str().unwrap().to_string();
    let debug = stderr(&out);
    assert!(debug.contains("/_trust/tuf/timestamp.json"), "{debug}");
    assert!(asked_the_registry(&debug), "{debug}");

    // The trust store now holds another certificate: the signature exists and fails. DCT still
    // verifies the same digest, and the tag is refused all the same.
    let other = generate(&env, "other");
    trust(&other, true);
    let out = run(env.plugin().args(["verify", &reference]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no Notary Project signature verified"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).trim().is_empty(), "{}", stdout(&out));

    // `--policy dct` asks the notary server alone, and verifies.
    let out = run(env
        .plugin()
        .args(["-D", "verify", "--policy", "dct", &reference]));
    assert_success(&out, "verify --policy dct");
    assert_eq!(stdout(&out).trim(), digest);
    assert!(!asked_the_registry(&stderr(&out)), "{}", stderr(&out));
}
