//! The registry's management plane (`registry trust show|disable|enable`) and `doctor`, against
//! an emulator of their own that also answers as Azure Resource Manager (its `arm` settings),
//! in front of the real registry and notary-server.

use serde_json::{Value, json};

use crate::acr_e2e::{all_output, env_on, identity, s};
use crate::acr_stack::{Emulator, Name, start_emulator};
use crate::harness::*;

const SUBSCRIPTION: &str = "5b1f0e2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b";

/// An emulator answering as its own registry and as ARM, with `arm` changes over the defaults
/// (Premium, trust enabled, RBAC mode, admin user off, only the signer may change it), and
/// `changes` to the rest of its configuration.
fn arm_emulator(arm: Value, changes: Value) -> Emulator {
    let mut settings = json!({
        "subscription": SUBSCRIPTION,
        "writers": [s(&identity("signer"), "client_id")],
    });
    for (k, v) in arm.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let mut config = changes;
    config["arm"] = settings;
    start_emulator(config, Name::Own)
}

/// `who`'s environment on `em`, with ARM's endpoint and subscription for it in trustacr.json.
fn arm_env(em: &Emulator, who: &str) -> TestEnv {
    let env = env_on(&em.host, who);
    write_settings(&env, &em.host, &format!("https://{}", em.host));
    env
}

fn write_settings(env: &TestEnv, host: &str, endpoint: &str) {
    let settings = json!({
        "acr_registries": [host],
        "arm": {host: {"endpoint": endpoint, "subscription": SUBSCRIPTION}},
    });
    std::fs::write(env.config.join("trustacr.json"), settings.to_string()).unwrap();
}

/// `registry trust show --format json`, as the signer.
fn shown(em: &Emulator) -> Value {
    let env = arm_env(em, "signer");
    let out = run(env
        .plugin()
        .args(["registry", "trust", "show", &em.host, "--format", "json"]));
    assert_success(&out, "registry trust show");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn registry_trust_show_reports_sku_trust_policy_role_mode_and_admin_user() {
    let em = arm_emulator(
        json!({"role_assignment_mode": "AbacRepositoryPermissions", "admin_user_enabled": true}),
        json!({}),
    );
    let v = shown(&em);
    assert_eq!(v["login_server"], em.host.as_str(), "{v}");
    assert_eq!(v["sku"], "Premium", "{v}");
    assert_eq!(v["trust_policy"], "enabled", "{v}");
    assert_eq!(
        v["role_assignment_mode"], "AbacRepositoryPermissions",
        "{v}"
    );
    assert_eq!(v["admin_user_enabled"], true, "{v}");
}

#[test]
fn registry_trust_disable_without_yes_warns_and_changes_nothing_and_with_yes_disables() {
    let em = arm_emulator(json!({}), json!({}));
    let env = arm_env(&em, "signer");
    let out = run(env
        .plugin()
        .args(["registry", "trust", "disable", &em.host]));
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(
        err.contains("deletes ALL trust data") && err.contains("Notary Project first"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(shown(&em)["trust_policy"], "enabled");

    let out = run(env
        .plugin()
        .args(["registry", "trust", "disable", &em.host, "--yes"]));
    assert_success(&out, "registry trust disable --yes");
    assert!(stdout(&out).contains("is now disabled"), "{}", stdout(&out));
    assert_eq!(shown(&em)["trust_policy"], "disabled");
}

#[test]
fn reader_may_show_the_trust_policy_but_disabling_is_refused_with_the_roles_named() {
    let em = arm_emulator(json!({}), json!({}));
    let env = arm_env(&em, "pusher");
    let out = run(env.plugin().args(["registry", "trust", "show", &em.host]));
    assert_success(&out, "registry trust show as a reader");
    assert!(
        stdout(&out).contains("Trust policy:     enabled"),
        "{}",
        stdout(&out)
    );
    let out = run(env
        .plugin()
        .args(["registry", "trust", "disable", &em.host, "--yes"]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(
        err.contains("403 AuthorizationFailed") && err.contains("Reader may only read"),
        "{err}"
    );
    assert_eq!(shown(&em)["trust_policy"], "enabled");
}

#[test]
fn registry_trust_enable_reports_arms_refusal_plainly() {
    let em = arm_emulator(
        json!({"trust_policy": "disabled", "refuse_enable": true}),
        json!({}),
    );
    let env = arm_env(&em, "signer");
    let out = run(env.plugin().args(["registry", "trust", "enable", &em.host]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ContentTrustDeprecated") && err.contains("can no longer be enabled"),
        "{err}"
    );
    assert_eq!(shown(&em)["trust_policy"], "disabled");
}

// See: #11 item 2
#[test]
fn arm_endpoint_that_is_not_https_is_refused_before_any_token_is_asked_for() {
    let em = arm_emulator(json!({}), json!({}));
    let env = env_on(&em.host, "signer");
    write_settings(&env, &em.host, &format!("http://{}", em.host));
    let out = run(env.plugin().args(["registry", "trust", "show", &em.host]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("https URL required"),
        "{}",
        stderr(&out)
    );
    let stats = em.stats();
    assert_eq!(stats["entra_token"], 0, "{stats}");
}
