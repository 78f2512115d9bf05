//! Entra sign-in and ACR tokens end to end: the plugin against the ACR emulator, which fronts
//! the real registry and notary-server with token auth, with the real dockerd.

use std::process::Output;

use serde_json::Value;

use crate::harness::*;

/// One of the emulator's test identities, by name (`signer`, `pusher`, `reader`, `wi`).
fn identity(name: &str) -> Value {
    let text = std::fs::read_to_string(&stack().acr_identities).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["identities"].as_array().cloned())
        .unwrap_or_else(|| {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    v["name"] = k.clone().into();
                    v
                })
                .collect()
        });
    list.into_iter()
        .find(|i| i["name"] == name || i["label"] == name)
        .unwrap_or_else(|| panic!("no identity {name} in {text}"))
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
        .to_string()
}

/// An environment signed in as `who` through the emulator's Entra endpoint.
fn env_as(who: &str) -> TestEnv {
    let stack = stack();
    let id = identity(who);
    let mut env = TestEnv::new();
    env.set("DOCKER_HOST", &stack.docker_host);
    env.set(
        "AZURE_AUTHORITY_HOST",
        format!("https://{}", stack.acr_host),
    );
    // Entra connections are always verified: trust the stack's CA the way users add one.
    env.set("SSL_CERT_FILE", stack.notary_ca.to_str().unwrap());
    env.set("AZURE_TENANT_ID", s(&id, "tenant_id"));
    env.set("AZURE_CLIENT_ID", s(&id, "client_id"));
    if let Some(secret) = id["client_secret"].as_str() {
        env.set("AZURE_CLIENT_SECRET", secret);
    }
    std::fs::write(
        env.config.join("trustacr.json"),
        format!(r#"{{"acr_registries":["{}"]}}"#, stack.acr_host),
    )
    .unwrap();
    env
}

fn all_output(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// A signed image in a fresh repository, pushed by the signer identity.
fn signed_image(prefix: &str) -> String {
    let env = env_as("signer");
    let reference = format!("{}:v1", unique_repo(&stack().acr_host, prefix));
    import_image(&env, &reference, prefix);
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push as signer");
    reference
}

#[test]
fn service_principal_with_push_and_signer_roles_pushes_and_signs() {
    let env = env_as("signer");
    let reference = format!("{}:v1", unique_repo(&stack().acr_host, "signer"));
    import_image(&env, &reference, "signed through Entra");
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push");
    assert!(
        stdout(&out).contains(&format!("Successfully signed {reference}")),
        "{}",
        stdout(&out)
    );
    let out = run(env.plugin().args(["verify", &reference]));
    assert_success(&out, "verify");
    assert!(stdout(&out).starts_with("sha256:"));
}

#[test]
fn reader_pulls_the_verified_image_but_is_refused_signing_with_the_role_named() {
    let reference = signed_image("reader");
    let env = env_as("reader");
    let out = run(env.plugin().args(["pull", &reference]));
    assert_success(&out, "pull as reader");
    let out = run(env.plugin().args(["sign", &reference]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("lacks AcrImageSigner"), "{err}");
    assert!(
        err.contains("az role assignment create --role AcrImageSigner"),
        "{err}"
    );
}

#[test]
fn pusher_without_signer_role_is_refused_before_anything_is_sent() {
    let env = env_as("pusher");
    let repo = unique_repo(&stack().acr_host, "pusher");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "not signable");
    let out = run(env.plugin().args(["push", &reference]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lacks AcrImageSigner"),
        "{}",
        stderr(&out)
    );
    // No trust data for the repository exists.
    let signer = env_as("signer");
    let out = run(signer.plugin().args(["verify", &reference]));
    assert!(
        stderr(&out).contains("remote trust data does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn wrong_client_secret_gives_a_clear_entra_error() {
    let mut env = env_as("signer");
    env.set("AZURE_CLIENT_SECRET", "not-the-secret");
    let out = run(env.plugin().args([
        "verify",
        &format!("{}:v1", unique_repo(&stack().acr_host, "wrongsecret")),
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot sign in to Microsoft Entra ID"),
        "{err}"
    );
    assert!(err.contains("AADSTS7000215"), "{err}");
}

#[test]
fn second_command_uses_the_cached_refresh_token_and_an_expired_one_is_renewed() {
    let reference = signed_image("cache");
    let env = env_as("signer");
    // -D says, for this process alone, whether Entra was asked and which cache entry is used.
    let debug_verify = |what: &str| {
        let out = run(env.plugin().args(["-D", "verify", &reference]));
        assert_success(&out, what);
        stderr(&out)
    };
    let first = debug_verify("first verify");
    let entry = first
        .lines()
        .find_map(|l| l.split("ACR refresh token cache entry ").nth(1))
        .expect("the cache entry is named in debug output")
        .trim()
        .to_string();
    let second = debug_verify("second verify");
    assert!(
        second.contains("using the cached ACR refresh token"),
        "{second}"
    );
    assert!(
        !second.contains("signed in to Entra ID"),
        "no Entra call with a cached token:\n{second}"
    );

    // Replace the cached refresh token with an expired one: it must be renewed silently.
    let mut store = env.cmd("secret-tool");
    store
        .args([
            "store",
            "--label=expired",
            "service",
            "docker-trustacr",
            "username",
            &entry,
        ])
        .stdin(std::process::Stdio::piped());
    let mut child = store.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(br#"{"token":"eyJhbGciOiJub25lIn0.eyJleHAiOjF9.","exp":1}"#)
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    let third = debug_verify("verify after expiry");
    assert!(third.contains("signed in to Entra ID"), "{third}");
    let fourth = debug_verify("verify after renewal");
    assert!(
        fourth.contains("using the cached ACR refresh token"),
        "{fourth}"
    );
}

#[test]
fn debug_output_contains_no_token_or_secret() {
    let reference = signed_image("debug");
    let env = env_as("signer");
    let secret = s(&identity("signer"), "client_secret");
    for args in [
        vec!["-D", "verify", &reference],
        vec!["-D", "pull", &reference],
    ] {
        let out = run(env.plugin().args(&args));
        assert_success(&out, "debug run");
        let text = all_output(&out);
        assert!(text.contains("HTTP"), "debug logging is on:\n{text}");
        assert!(!text.contains("eyJ"), "a JWT leaked:\n{text}");
        assert!(!text.contains(&secret), "the client secret leaked");
    }
}

#[test]
fn azure_cli_credential_is_used_when_no_secret_is_configured() {
    let reference = signed_image("azcli");
    let signer = identity("signer");
    let mut env = env_as("signer");
    // A fake `az` that gets its token from the emulator's Entra endpoint, as `az` would.
    let bin = env.home.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\ntok=$(curl -sfk -d grant_type=client_credentials -d client_id={cid} -d client_secret={sec} --data-urlencode scope=https://containerregistry.azure.net/.default https://{host}/{tid}/oauth2/v2.0/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\nexp=$(( $(date +%s) + 3000 ))\nprintf '{{\"accessToken\":\"%s\",\"expires_on\":%s,\"tokenType\":\"Bearer\"}}' \"$tok\" \"$exp\"\n",
        cid = s(&signer, "client_id"),
        sec = s(&signer, "client_secret"),
        tid = s(&signer, "tenant_id"),
        host = stack().acr_host,
    );
    std::fs::write(bin.join("az"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    env.set("AZURE_CLIENT_SECRET", "");
    let out = run(env
        .plugin()
        .args(["--credential", "azure-cli", "verify", &reference]));
    assert_success(&out, "verify with the Azure CLI credential");
}

#[test]
fn login_stores_the_acr_token_in_dockers_credential_helper_for_plain_docker_pull() {
    let reference = signed_image("login");
    let env = env_as("reader");
    std::fs::write(
        env.config.join("config.json"),
        r#"{"credsStore":"secretservice"}"#,
    )
    .unwrap();
    let host = stack().acr_host.clone();
    let out = run(env.plugin().args(["login", &host]));
    assert_success(&out, "login");
    assert!(stdout(&out).contains("Login Succeeded"));
    let out = run(env.docker().args(["pull", &reference]));
    assert_success(&out, "plain docker pull with the stored token");
    let out = run(env.plugin().args(["logout", &host]));
    assert_success(&out, "logout");
    let out = run(env.cmd("docker-credential-secretservice").arg("list"));
    assert!(!stdout(&out).contains(&host), "{}", stdout(&out));
}

#[test]
fn workload_identity_signs_in_with_a_federated_token_file() {
    let wi = identity("wi");
    let mut env = env_as("wi");
    env.set("AZURE_FEDERATED_TOKEN_FILE", s(&wi, "federated_token_file"));
    let reference = format!("{}:v1", unique_repo(&stack().acr_host, "wi"));
    import_image(&env, &reference, "workload identity");
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push with workload identity");
    assert!(
        stdout(&out).contains("Successfully signed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn username_and_password_credentials_cannot_sign_and_say_why() {
    let reference = signed_image("admin");
    let signer = identity("signer");
    // No Entra configuration at all: only a username and password in docker's config, as with
    // the admin account or a repository-scoped token.
    let env = TestEnv::new();
    std::fs::write(
        env.config.join("trustacr.json"),
        format!(r#"{{"acr_registries":["{}"]}}"#, stack().acr_host),
    )
    .unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        s(&signer, "client_id"),
        s(&signer, "client_secret")
    ));
    std::fs::write(
        env.config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            stack().acr_host
        ),
    )
    .unwrap();
    let out = run(env.plugin().args(["sign", &reference]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("ACR does not allow to sign"), "{err}");
    assert!(err.contains("Microsoft Entra"), "{err}");
}
