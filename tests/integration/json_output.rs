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
    create_server_keys(&repo);

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
fn info_json_validates_and_quiet_with_json_is_a_usage_error() {
    let env = trust_stack_env();
    let (info, _) = json_run(&env, "info", &["-H", &stack().docker_host, "info"]);
    assert_eq!(info["mode"], "standalone");
    let out = run(env
        .plugin()
        .args(["push", "-q", "--format", "json", "r.example/app:v1"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("choose one"), "{}", stderr(&out));
}
