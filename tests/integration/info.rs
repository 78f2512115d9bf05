//! `info` on the real stack: endpoints resolved as docker resolves them, the engine's version,
//! the keyring's state, registry credentials through a real credential helper, and clear
//! reports when a part is missing.

use std::process::Output;

use serde_json::Value;

use crate::harness::*;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

/// A field of `docker version --format`, asked of the engine at `host`.
fn engine_field(env: &TestEnv, host: &str, template: &str) -> String {
    let out = run(env
        .docker()
        .args(["-H", host, "version", "--format", template]));
    assert_success(&out, "docker version");
    stdout(&out).trim().to_string()
}

fn engine_version(env: &TestEnv, host: &str) -> String {
    engine_field(env, host, "{{.Server.Version}}")
}

#[test]
fn docker_host_flag_reports_the_engine_at_that_socket() {
    let stack = stack();
    let env = TestEnv::new();
    env.install();
    let out = run(env.docker().args([
        "-H",
        &stack.docker_host,
        "trustacr",
        "info",
        "--format",
        "json",
    ]));
    assert_success(&out, "docker -H SOCK trustacr info");
    let v = json(&out);
    assert_eq!(v["mode"], "plugin");
    assert_eq!(v["engine"]["endpoint"], stack.docker_host.as_str());
    assert_eq!(v["engine"]["source"]["kind"], "host-flag");
    assert_eq!(
        v["engine"]["server"]["version"],
        engine_version(&env, &stack.docker_host).as_str()
    );
    // The engine's own answer, not a constant of one dockerd release (audit P1-W10).
    assert_eq!(
        v["engine"]["server"]["api_version"],
        engine_field(&env, &stack.docker_host, "{{.Server.APIVersion}}").as_str()
    );
    assert_eq!(v["keyring"]["state"], "unlocked");
    assert_eq!(v["config"]["dir"], env.config.to_str().unwrap());
    assert_eq!(v["config"]["source"], "env");
    assert_eq!(
        v["config"]["trust_dir"],
        env.config.join("trust").to_str().unwrap()
    );
}

#[test]
fn docker_context_flag_and_current_context_resolve_through_context_metadata() {
    let stack = stack();
    let env = TestEnv::new();
    env.install();
    let host_arg = format!("host={}", stack.docker_host);
    let out = run(env
        .docker()
        .args(["context", "create", "stackctx", "--docker", &host_arg]));
    assert_success(&out, "docker context create");

    let out = run(env.docker().args([
        "--context",
        "stackctx",
        "trustacr",
        "info",
        "--format",
        "json",
    ]));
    assert_success(&out, "docker --context stackctx trustacr info");
    let v = json(&out);
    assert_eq!(v["engine"]["endpoint"], stack.docker_host.as_str());
    assert_eq!(v["engine"]["context"], "stackctx");
    assert_eq!(v["engine"]["source"]["name"], "stackctx");
    assert_eq!(v["engine"]["source"]["chosen_by"], "flag");
    assert!(v["engine"]["server"]["version"].is_string(), "{v}");

    // `docker context use` writes currentContext into config.json; the plugin must follow it.
    assert_success(
        &run(env.docker().args(["context", "use", "stackctx"])),
        "context use",
    );
    let out = run(env.docker().args(["trustacr", "info", "--format", "json"]));
    assert_success(&out, "docker trustacr info with currentContext");
    let v = json(&out);
    assert_eq!(v["engine"]["source"]["chosen_by"], "config-file");
    assert_eq!(v["engine"]["endpoint"], stack.docker_host.as_str());

    // -H together with --context is refused as docker refuses it.
    let out = run(env
        .plugin()
        .args(["-H", &stack.docker_host, "--context", "stackctx", "info"]));
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("conflicting options: cannot specify both --host and --context"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn standalone_info_uses_docker_host_and_prints_text() {
    let stack = stack();
    let mut env = TestEnv::new();
    env.install();
    env.set("DOCKER_HOST", &stack.docker_host);
    let out = run(env
        .cmd(env.home.join(".local/bin/docker-trust-acr"))
        .arg("info"));
    assert_success(&out, "docker-trust-acr info");
    let text = stdout(&out);
    assert!(text.contains("Mode:         standalone"), "{text}");
    assert!(
        text.contains(&format!(
            "Endpoint:     {} (DOCKER_HOST)",
            stack.docker_host
        )),
        "{text}"
    );
    let version = engine_version(&env, &stack.docker_host);
    assert!(text.contains(&format!("Version:      {version}")), "{text}");
    assert!(text.contains("Status:       reachable, unlocked"), "{text}");
}

#[test]
fn unreachable_engine_is_reported_with_the_endpoint_and_the_fix() {
    let _ = stack();
    let env = TestEnv::new();
    let missing = format!("unix://{}/no.sock", env.home.display());
    let out = run(env.plugin().args(["-H", &missing, "info"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&missing) && err.contains("Start dockerd"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The rest of the report is still there.
    assert!(
        stdout(&out).contains("reachable, unlocked"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unreachable_keyring_is_reported_with_the_fix() {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let out = run(env
        .plugin()
        .args(["-H", &stack.docker_host, "info", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["keyring"]["state"], "unreachable");
    let msg = v["keyring"]["message"].as_str().unwrap();
    assert!(
        msg.contains("/nonexistent/bus") && msg.contains("gnome-keyring-daemon --unlock"),
        "{msg}"
    );
    // The engine part still worked.
    assert!(v["engine"]["server"]["version"].is_string(), "{v}");
}

#[test]
fn registry_credentials_come_from_a_real_credential_helper() {
    let stack = stack();
    let env = TestEnv::new();
    let registry = "trustacr-test.example:5000";
    // Store a credential with the real secretservice helper into the stack's keyring.
    let mut store = env.cmd("docker-credential-secretservice");
    store.arg("store").stdin(std::process::Stdio::piped());
    let mut child = store.spawn().unwrap();
    {
        use std::io::Write;
        let payload = format!(
            r#"{{"ServerURL":"{registry}","Username":"ci-bot","Secret":"helper-secret-value"}}"#
        );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success(), "helper store failed");
    std::fs::write(
        env.config.join("config.json"),
        r#"{"credsStore":"secretservice"}"#,
    )
    .unwrap();

    let out = run(env.plugin().args([
        "-H",
        &stack.docker_host,
        "info",
        "--format",
        "json",
        "--registry",
        registry,
    ]));
    assert_success(&out, "info --registry");
    let v = json(&out);
    assert_eq!(v["registry"]["credential_source"]["kind"], "creds-store");
    assert_eq!(
        v["registry"]["credential_source"]["helper"],
        "secretservice"
    );
    assert_eq!(v["registry"]["credential_kind"], "username and password");
    assert_eq!(v["registry"]["username"], "ci-bot");
    assert!(!stdout(&out).contains("helper-secret-value"));
    assert!(!stderr(&out).contains("helper-secret-value"));

    // A registry the helper does not know is anonymous, not an error.
    let out = run(env.plugin().args([
        "-H",
        &stack.docker_host,
        "info",
        "--format",
        "json",
        "--registry",
        "unknown.example",
    ]));
    assert_success(&out, "info --registry unknown");
    assert_eq!(json(&out)["registry"]["credential_kind"], "anonymous");
}
