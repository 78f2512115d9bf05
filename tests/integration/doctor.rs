//! The registry's management plane (`registry trust show|disable|enable`) and `doctor`, against
//! an emulator of their own that also answers as Azure Resource Manager (its `arm` settings),
//! in front of the real registry and notary-server.

use serde_json::{Value, json};

use crate::acr_e2e::{all_output, env_on, identity, s, signed_image_on, with_identity_in};
use crate::acr_stack::{Emulator, Name, start_emulator};
use crate::harness::*;

const SUBSCRIPTION: &str = "5b1f0e2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b";

/// An emulator answering as its own registry and as ARM, with `arm` changes over the defaults
/// (Premium, trust enabled, RBAC mode, admin user off, only the signer may change it), and
/// `changes` to the rest of its configuration.
pub(crate) fn arm_emulator(arm: Value, changes: Value) -> Emulator {
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
pub(crate) fn arm_env(em: &Emulator, who: &str) -> TestEnv {
    let env = env_on(&em.host, who);
    write_settings(&env, &em.host, &format!("https://{}", em.host));
    env
}

fn write_settings(env: &TestEnv, host: &str, endpoint: &str) {
    write_settings_with(env, host, endpoint, json!({}));
}

/// trustacr.json for `host` with ARM at `endpoint`, plus the `extra` settings.
fn write_settings_with(env: &TestEnv, host: &str, endpoint: &str, extra: Value) {
    let mut settings = json!({
        "acr_registries": [host],
        "arm": {host: {"endpoint": endpoint, "subscription": SUBSCRIPTION}},
    });
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
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
    assert_eq!(out.status.code(), Some(5), "{}", all_output(&out));
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

/// `doctor TARGET --format json` in `env`: its exit code and report.
fn doctor(env: &TestEnv, target: &str) -> (Option<i32>, Value, String) {
    let out = run(env.plugin().args(["doctor", target, "--format", "json"]));
    let all = all_output(&out);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON report ({e}): {all}"));
    (out.status.code(), report, all)
}

/// The check `id` of a doctor report.
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

/// Asserts that doctor exits 1 and that check `id` failed with `words` in its detail, and
/// that it gives a fix.
fn assert_fails(result: &(Option<i32>, Value, String), id: &str, words: &str) {
    let (code, report, all) = result;
    assert_eq!(*code, Some(1), "{all}");
    let c = check(report, id);
    assert_eq!(c["status"], "fail", "{c}\n{all}");
    assert!(c["detail"].as_str().unwrap().contains(words), "{c}");
    assert!(c["hint"].as_str().is_some_and(|h| !h.is_empty()), "{c}");
}

#[test]
fn doctor_on_a_healthy_setup_exits_0_and_names_the_identity_from_its_claims() {
    let em = arm_emulator(json!({}), json!({}));
    let env = arm_env(&em, "signer");
    let reference = format!("{}:v1", unique_repo(&em.host, "healthy"));
    import_image(&env, &reference, "healthy");
    assert_success(&run(env.plugin().args(["push", &reference])), "push");
    let (code, report, all) = doctor(&env, &reference);
    assert_eq!(code, Some(0), "{all}");
    for c in report["checks"].as_array().unwrap() {
        assert_ne!(c["status"], "fail", "{c}");
    }
    let who = check(&report, "entra")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    let signer = identity("signer");
    assert!(
        who.contains(&s(&signer, "tenant_id")) && who.contains(&s(&signer, "client_id")),
        "{who}"
    );
    assert!(!all.contains("eyJ"), "a token was printed: {all}");
    assert_eq!(check(&report, "actions")["status"], "ok");
    assert_eq!(check(&report, "keys")["status"], "ok");
    let notation = check(&report, "notation");
    assert_eq!(notation["status"], "warn", "{notation}");
    assert!(
        notation["detail"]
            .as_str()
            .unwrap()
            .contains("1 of 1 signed tags have no Notary Project signature: v1"),
        "{notation}"
    );
    assert!(
        check(&report, "retirement")["detail"]
            .as_str()
            .unwrap()
            .contains("2028-03-31")
    );
    // The text report: one line per check with its mark.
    let out = run(env.plugin().args(["doctor", &reference]));
    assert_success(&out, "doctor (text)");
    let text = stdout(&out);
    assert!(
        text.contains("✔ actions") && text.contains("! retirement"),
        "{text}"
    );
}

fn doctor_as(who: &str, prefix: &str) -> (Option<i32>, Value, String) {
    let em = arm_emulator(json!({}), json!({}));
    let reference = signed_image_on(&em.host, prefix);
    doctor(&arm_env(&em, who), &reference)
}

#[test]
fn doctor_finds_a_missing_acr_image_signer_role() {
    assert_fails(
        &doctor_as("pusher", "dr-pusher"),
        "actions",
        "lacks AcrImageSigner",
    );
}

#[test]
fn doctor_finds_an_identity_with_acr_pull_only() {
    assert_fails(
        &doctor_as("reader", "dr-reader"),
        "actions",
        "lacks AcrPush",
    );
}

fn doctor_with_arm(arm: Value, prefix: &str) -> (Option<i32>, Value, String) {
    let em = arm_emulator(arm, json!({}));
    let env = arm_env(&em, "signer");
    let reference = format!("{}:v1", unique_repo(&em.host, prefix));
    doctor(&env, &reference)
}

#[test]
fn doctor_finds_an_abac_registry() {
    let r = doctor_with_arm(
        json!({"role_assignment_mode": "AbacRepositoryPermissions"}),
        "dr-abac",
    );
    assert_fails(&r, "role-assignment-mode", "ABAC");
}

#[test]
fn doctor_finds_a_registry_that_is_not_premium() {
    let r = doctor_with_arm(json!({"sku": "Standard"}), "dr-sku");
    assert_fails(&r, "sku", "Standard SKU");
}

#[test]
fn doctor_finds_the_trust_policy_disabled() {
    let r = doctor_with_arm(json!({"trust_policy": "disabled"}), "dr-policy");
    assert_fails(&r, "trust-policy", "content trust is disabled");
}

/// doctor with `username` and a password for the registry in config.json, against an ARM with
/// the `arm` changes; the report, after the checks every such case shares.
fn doctor_with_password_in_config(username: &str, arm: Value) -> Value {
    use base64::Engine;
    let em = arm_emulator(arm, json!({}));
    let env = arm_env(&em, "signer");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:pw-Zq81xKv"));
    std::fs::write(
        env.config.join("config.json"),
        json!({"auths": {em.host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let reference = format!("{}:v1", unique_repo(&em.host, "dr-basic"));
    let r = doctor(&env, &reference);
    assert_fails(&r, "credential", "username and password");
    assert!(
        !r.2.contains("pw-Zq81xKv"),
        "the password was printed: {}",
        r.2
    );
    r.1
}

#[test]
fn doctor_finds_admin_credentials_in_config_json() {
    let report = doctor_with_password_in_config("trustacremu", json!({}));
    let token = check(&report, "scoped-token");
    assert_eq!(token["status"], "ok", "{token}");
    assert!(
        token["detail"].as_str().unwrap().contains("admin account"),
        "{token}"
    );
}

// See: #11 item 1 (a repository-scoped token found over ARM, not guessed)
#[test]
fn doctor_finds_a_repository_scoped_token_over_arm_and_names_its_scope_map() {
    let report = doctor_with_password_in_config(
        "ci-scoped-token",
        json!({"tokens": [
            {"name": "other-token", "scope_map": "_repositories_pull"},
            {"name": "ci-scoped-token", "scope_map": "_repositories_push"},
        ]}),
    );
    let token = check(&report, "scoped-token");
    assert_eq!(token["status"], "fail", "{token}");
    let detail = token["detail"].as_str().unwrap();
    assert!(
        detail.contains("repository-scoped token ci-scoped-token")
            && detail.contains("scope map _repositories_push")
            && detail.contains("does not allow Docker Content Trust signing"),
        "{token}"
    );
    assert!(
        token["hint"]
            .as_str()
            .unwrap()
            .contains("docker trustacr login"),
        "{token}"
    );
}

#[test]
fn doctor_with_a_username_that_is_no_token_says_so() {
    let report = doctor_with_password_in_config(
        "someone-else",
        json!({"tokens": [{"name": "ci-scoped-token", "scope_map": "_repositories_push"}]}),
    );
    let token = check(&report, "scoped-token");
    assert_eq!(token["status"], "ok", "{token}");
    assert!(
        token["detail"]
            .as_str()
            .unwrap()
            .contains("none of the registry's 1 repository-scoped tokens"),
        "{token}"
    );
}

#[test]
fn doctor_without_arm_rights_says_the_token_is_not_checked_and_keeps_the_credential_hint() {
    let report = doctor_with_password_in_config(
        "ci-scoped-token",
        json!({
            "tokens": [{"name": "ci-scoped-token", "scope_map": "_repositories_push"}],
            "no_access": [s(&identity("signer"), "client_id")],
        }),
    );
    assert_eq!(check(&report, "arm")["status"], "warn");
    let token = check(&report, "scoped-token");
    assert_eq!(token["status"], "warn", "{token}");
    assert!(
        token["detail"].as_str().unwrap().starts_with("not checked"),
        "{token}"
    );
}

// See: #11 item 1 (targets expiring in 10 days)
#[test]
fn doctor_finds_targets_expiring_in_10_days_and_says_a_sign_renews_them() {
    let em = arm_emulator(json!({}), json!({}));
    let env = arm_env(&em, "signer");
    let repo = unique_repo(&em.host, "dr-expiry");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "expiring soon");
    assert_success(&run(env.plugin().args(["push", &reference])), "push");
    // Targets (and root) rewritten with a 10-day lifetime: the test-only variable of rotate.
    let out = run(env
        .plugin()
        .env("TRUSTACR_TEST_ROTATE_LIFETIME_DAYS", "10")
        .args(["key", "rotate", &repo, "targets"]));
    assert_success(&out, "key rotate targets with a 10-day lifetime");
    let (code, report, all) = doctor(&env, &reference);
    // Expiring soon is a warning, not a failure.
    assert_eq!(code, Some(0), "{all}");
    let expiry = check(&report, "expiry");
    assert_eq!(expiry["status"], "warn", "{expiry}");
    let detail = expiry["detail"].as_str().unwrap();
    assert!(
        detail.contains("targets in 9 days") || detail.contains("targets in 10 days"),
        "{expiry}"
    );
    assert!(
        expiry["hint"]
            .as_str()
            .unwrap()
            .contains("docker trustacr sign"),
        "{expiry}"
    );
}

#[test]
fn doctor_explains_the_exchange_refusing_a_personal_account() {
    let (identities, client_id, secret) = with_identity_in(
        "9188040d-6c67-4c5b-b112-36a304b66dad",
        &["AcrPush", "AcrImageSigner"],
    );
    let em = arm_emulator(json!({}), json!({"identities": identities}));
    let mut env = arm_env(&em, "signer");
    env.set("AZURE_TENANT_ID", "9188040d-6c67-4c5b-b112-36a304b66dad");
    env.set("AZURE_CLIENT_ID", client_id);
    env.set("AZURE_CLIENT_SECRET", secret);
    let reference = format!("{}:v1", unique_repo(&em.host, "dr-msa"));
    assert_fails(
        &doctor(&env, &reference),
        "exchange",
        "personal Microsoft account",
    );
}

#[test]
fn doctor_finds_no_key_here_for_the_repository() {
    assert_fails(
        &doctor_as("signer", "dr-nokey"),
        "keys",
        "no key in this keyring",
    );
}

#[test]
fn doctor_finds_trust_data_that_does_not_match_the_pin() {
    let em = arm_emulator(json!({}), json!({}));
    let reference = signed_image_on(&em.host, "dr-pin");
    let env = arm_env(&em, "signer");
    let gun = reference.rsplit_once(':').unwrap().0;
    write_settings_with(
        &env,
        &em.host,
        &format!("https://{}", em.host),
        json!({"trust_pinning": {"certs": {gun: ["0".repeat(64)]}}}),
    );
    assert_fails(&doctor(&env, &reference), "trust-data", "does not verify");
}

/// `registry trust show` against an ARM that answers the registry list with `hostile`.
fn show_against_hostile_arm(hostile: &str) -> String {
    let em = arm_emulator(json!({"hostile": hostile}), json!({}));
    let env = arm_env(&em, "signer");
    let out = run(env.plugin().args(["registry", "trust", "show", &em.host]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    stderr(&out)
}

// See: #11 item 2
#[test]
fn huge_arm_answer_is_refused_at_the_size_limit() {
    let err = show_against_hostile_arm("huge");
    assert!(err.contains("refusing the response"), "{err}");
}

// See: #11 item 2
#[test]
fn malformed_arm_answer_is_a_clear_error() {
    let err = show_against_hostile_arm("malformed");
    assert!(
        err.contains("something unexpected") && err.contains("no \"value\" list"),
        "{err}"
    );
}

// See: #11 item 2
#[test]
fn arm_next_link_to_another_server_is_not_followed_with_the_token() {
    let err = show_against_hostile_arm("foreign_next");
    assert!(err.contains("nextLink points to another server"), "{err}");
}
