//! `--format json` on every command: stdout is exactly one JSON document that validates against
//! the command's schema in docs/schema/, status lines and progress go to stderr, and the values
//! are the real ones (the digest a pull reports is the one push signed).

use serde_json::{Value, json};

use crate::harness::*;

/// The validator of docs/schema/`name`.json; the schema itself must be valid draft 2020-12.
fn validator(name: &str) -> jsonschema::Validator {
    let path = repo_root().join("docs/schema").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}.json declares draft 2020-12"
    );
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}.json is not a valid schema: {e}"))
}

/// Asserts `doc` validates against `name`'s schema, listing every violation otherwise.
fn assert_valid(name: &str, doc: &Value) {
    let errors: Vec<String> = validator(name)
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} output does not match docs/schema/{name}.json:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

/// Runs the plugin with `--format json`, asserts success and that stdout is exactly one JSON
/// document (serde_json refuses trailing text), validates it against `schema`, and returns it
/// with stderr.
fn json_run(env: &TestEnv, schema: &str, args: &[&str]) -> (Value, String) {
    let out = run(env.plugin().args(args).args(["--format", "json"]));
    assert_success(&out, &args.join(" "));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}):\n{}",
            stdout(&out)
        )
    });
    assert_valid(schema, &doc);
    (doc, stderr(&out))
}

/// The `id` of each entry of a document's `keys`.
fn key_ids(doc: &Value) -> Vec<&Value> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["id"])
        .collect()
}

fn trust_stack_env() -> TestEnv {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    env.set("DOCKER_HOST", &stack.docker_host);
    env
}

#[test]
fn schemas_reject_documents_that_break_them() {
    let good = json!({
        "name": "r.example/app", "tag": "v1",
        "digest": format!("sha256:{}", "a".repeat(64)), "size": 527, "signatures": ["dct"]
    });
    assert_valid("push", &good);
    let v = validator("push");
    let mut bad_digest = good.clone();
    bad_digest["digest"] = json!("sha256:not-hex");
    assert!(!v.is_valid(&bad_digest), "a malformed digest is refused");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("signatures");
    assert!(!v.is_valid(&missing), "a missing required field is refused");
    let mut extra = good;
    extra["surprise"] = json!(true);
    assert!(!v.is_valid(&extra), "an undocumented field is refused");
}

#[test]
fn push_pull_and_verify_json_validate_and_agree_on_the_signed_digest() {
    let env = trust_stack_env();
    let repo = unique_repo(&stack().registry, "json");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "json output");

    let (pushed, push_err) = json_run(&env, "push", &["push", &reference]);
    assert_eq!(pushed["name"], repo.as_str());
    assert_eq!(pushed["tag"], "v1");
    assert_eq!(pushed["signatures"], json!(["dct"]));
    assert!(
        push_err.contains(&format!("Successfully signed {reference}")),
        "status lines go to stderr with json: {push_err}"
    );
    let digest = pushed["digest"].as_str().unwrap().to_string();

    let (verified, _) = json_run(&env, "verify", &["verify", &reference]);
    assert_eq!(
        verified["digest"],
        digest.as_str(),
        "verify names the pushed digest"
    );
    assert_eq!(verified["size"], pushed["size"]);
    assert_eq!(verified["role"], "targets");

    let (pulled, pull_err) = json_run(&env, "pull", &["pull", &reference]);
    assert_eq!(pulled["name"], repo.as_str());
    assert_eq!(pulled["pulled"][0]["tag"], "v1");
    assert_eq!(pulled["pulled"][0]["digest"], digest.as_str());
    assert_eq!(
        pulled["pulled"][0]["kinds"],
        json!(["Docker Content Trust"])
    );
    assert!(pull_err.contains("Pull (1 of 1)"), "{pull_err}");
}

#[test]
fn sign_inspect_revoke_and_key_commands_json_validate_and_name_the_real_keys_and_tags() {
    let env = trust_stack_env();
    let repo = unique_repo(&stack().registry, "json-sign");
    let (digest, size) = docker_push(&env, &format!("{repo}:v1"), "json sign");

    let (signed, _) = json_run(&env, "sign", &["sign", &format!("{repo}:v1")]);
    assert_eq!(signed["signed"][0]["digest"], digest.as_str());
    assert_eq!(signed["signed"][0]["size"], size);
    assert_eq!(signed["signed"][0]["signature"], "dct");

    let (inspected, _) = json_run(&env, "inspect", &["inspect", &repo]);
    assert_eq!(
        inspected[0]["SignedTags"][0]["Digest"],
        digest.trim_start_matches("sha256:")
    );

    let (listed, _) = json_run(&env, "key-list", &["key", "list", &repo]);
    let targets = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "targets")
        .unwrap_or_else(|| panic!("no targets key in {listed}"));
    let repo_key = &inspected[0]["AdministrativeKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Name"] == "Repository")
        .unwrap()["Keys"][0]["ID"];
    assert_eq!(
        &targets["id"], repo_key,
        "key list names the repository key"
    );

    let (revoked, _) = json_run(&env, "revoke", &["revoke", &format!("{repo}:v1")]);
    assert_eq!(revoked, json!({"name": repo, "revoked": ["v1"]}));

    let dir = env.home.join("signer-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("jsonsigner{}", next_id());
    let (generated, _) = json_run(
        &env,
        "key-generate",
        &["key", "generate", &name, "--dir", dir.to_str().unwrap()],
    );
    let public = generated["public_key_file"].as_str().unwrap();
    assert!(std::path::Path::new(public).exists(), "{generated}");

    let (added, _) = json_run(
        &env,
        "signer",
        &["signer", "add", &name, &repo, "--key", public],
    );
    assert_eq!(added["signer"]["keys"][0], generated["id"]);
    assert_eq!(added["repositories"][0]["name"], repo.as_str());

    let (removed, _) = json_run(&env, "signer", &["signer", "remove", &name, &repo, "--yes"]);
    assert_eq!(removed["signer"], json!({ "name": name }));
}

#[test]
fn info_json_validates_quiet_with_json_is_a_usage_error_and_failures_print_no_document() {
    let env = trust_stack_env();
    let (info, _) = json_run(&env, "info", &["-H", &stack().docker_host, "info"]);
    assert_eq!(info["mode"], "standalone");
    let out = run(env
        .plugin()
        .args(["push", "-q", "--format", "json", "r.example/app:v1"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("choose one"), "{}", stderr(&out));

    // A failure prints no document: the error stays text on stderr, the code says its kind.
    let port = closed_port();
    let mut offline = TestEnv::new();
    offline.set(
        "DOCKER_CONTENT_TRUST_SERVER",
        format!("https://127.0.0.1:{port}"),
    );
    let out = run(offline.plugin().args([
        "verify",
        "--format",
        "json",
        &format!("127.0.0.1:{port}/app:v1"),
    ]));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).starts_with("Error: "), "{}", stderr(&out));
}

#[test]
fn acr_push_doctor_registry_trust_login_and_logout_json_validate_with_arms_answers() {
    let em = crate::doctor::arm_emulator(json!({}), json!({}));
    let env = crate::doctor::arm_env(&em, "signer");
    let reference = format!("{}:v1", unique_repo(&em.host, "json-acr"));
    import_image(&env, &reference, "json on ACR");
    let (pushed, _) = json_run(&env, "push", &["push", &reference]);

    let (report, _) = json_run(&env, "doctor", &["doctor", &reference]);
    assert_eq!(report["target"], reference.as_str());
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "fail"),
        "{report}"
    );
    let (verified, _) = json_run(&env, "verify", &["verify", &reference]);
    assert_eq!(verified["digest"], pushed["digest"]);

    let (shown, _) = json_run(
        &env,
        "registry-trust",
        &["registry", "trust", "show", &em.host],
    );
    assert_eq!(shown["trust_policy"], "enabled");
    assert_eq!(shown["sku"], "Premium");
    let (after, err) = json_run(
        &env,
        "registry-trust",
        &["registry", "trust", "disable", &em.host, "--yes"],
    );
    assert_eq!(after["trust_policy"], "disabled", "ARM's answer");
    assert!(err.contains("deletes ALL trust data"), "{err}");

    std::fs::write(
        env.config.join("config.json"),
        r#"{"credsStore":"secretservice"}"#,
    )
    .unwrap();
    let (login, _) = json_run(&env, "login", &["login", &em.host]);
    assert_eq!(
        login,
        json!({"registry": em.host, "credential_helper": "secretservice"})
    );
    let (logout, _) = json_run(&env, "logout", &["logout", &em.host]);
    assert_eq!(logout, login, "logout erased it from the same helper");
}

#[test]
fn notation_key_sign_policy_init_and_migrate_json_validate_and_agree_on_the_digest() {
    let env = crate::notation_sign::notation_env();
    let name = format!("jsonkey{}", next_id());
    let (key, _) = json_run(
        &env,
        "key-generate",
        &[
            "key",
            "generate",
            "--notation",
            &name,
            "--dir",
            env.home.to_str().unwrap(),
            "--subject",
            "C=US,ST=WA,O=Test Org,CN=trustacr json",
        ],
    );
    assert_eq!(key["notation_key"], name.as_str());
    let cert = key["certificate"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&cert).is_file(), "{key}");

    let repo = unique_repo(&stack().registry, "json-notation");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "json notation");
    let (pushed, _) = json_run(&env, "push", &["push", &reference]);

    let (policy, _) = json_run(
        &env,
        "policy-init",
        &["policy", "init", &repo, "--cert", &cert],
    );
    assert_eq!(policy["scope"], repo.as_str());
    assert!(std::path::Path::new(policy["policy_file"].as_str().unwrap()).is_file());

    let (signed, _) = json_run(&env, "sign", &["sign", "--notation", &reference]);
    assert_eq!(signed["signed"][0]["digest"], pushed["digest"]);
    assert_eq!(signed["signed"][0]["signature"], "notation");

    let (migrated, _) = json_run(&env, "migrate", &["migrate", &repo]);
    assert_eq!(migrated["parity"], true, "{migrated}");
    assert_eq!(migrated["rows"][0]["digest"], pushed["digest"]);
    assert_eq!(migrated["rows"][0]["notation"], "present");

    let (both, _) = json_run(&env, "verify", &["verify", "--policy", "both", &reference]);
    assert_eq!(
        both["notation"]["signature"],
        signed["signed"][0]["notation_signature"]
    );
}

#[test]
fn key_export_import_and_rotate_json_validate_and_name_the_same_keys() {
    let mut env = trust_env();
    env.set(
        "TRUSTACR_KEYRING_SERVICE",
        format!("docker-trustacr-json-{}-{}", std::process::id(), next_id()),
    );
    let repo = unique_repo(&stack().registry, "json-keys");
    import_image(&env, &format!("{repo}:v1"), "json keys");
    json_run(&env, "push", &["push", &format!("{repo}:v1")]);

    let backup = env.home.join("backup.key");
    let (exported, _) = json_run(
        &env,
        "key-export",
        &["key", "export", &repo, "-o", backup.to_str().unwrap()],
    );
    assert_eq!(exported["file"], backup.to_str().unwrap());
    let ids = key_ids(&exported);

    let (imported, _) = json_run(
        &env,
        "key-import",
        &["key", "import", backup.to_str().unwrap()],
    );
    let again = key_ids(&imported);
    assert_eq!(again, ids, "import names the exported keys");

    let (rotated, _) = json_run(&env, "key-rotate", &["key", "rotate", &repo, "targets"]);
    assert_eq!(rotated["role"], "targets");
    assert_eq!(rotated["resigned_tags"], json!(["v1"]));
    assert!(!ids.contains(&&rotated["new_key"]), "a new key: {rotated}");
}
