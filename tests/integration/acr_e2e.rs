//! Entra sign-in and ACR tokens end to end: the plugin against the ACR emulator, which fronts
//! the real registry and notary-server with token auth, with the real dockerd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::acr_stack::{Emulator, Name, start_emulator};
use crate::harness::*;

/// One of the emulator's test identities, by label (`signer`, `pusher`, `reader`, `wi`).
pub(crate) fn identity(label: &str) -> Value {
    let text = std::fs::read_to_string(&stack().acr_identities).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["identities"]
        .as_array()
        .unwrap_or_else(|| panic!("no identities in {text}"))
        .iter()
        .find(|i| i["label"] == label)
        .cloned()
        .unwrap_or_else(|| panic!("no identity {label} in {text}"))
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
        .to_string()
}

/// An environment signed in as `who` through the stack's emulator.
fn env_as(who: &str) -> TestEnv {
    env_on(&stack().acr_host, who)
}

/// An environment signed in as `who` through the emulator answering as `host`, with a keyring
/// namespace of its own, so that no other test's cached token or key changes which path this
/// one takes (audit P1-W9).
pub(crate) fn env_on(host: &str, who: &str) -> TestEnv {
    let stack = stack();
    let id = identity(who);
    let mut env = TestEnv::new();
    env.set("DOCKER_HOST", &stack.docker_host);
    env.set(
        "TRUSTACR_KEYRING_SERVICE",
        format!("docker-trustacr-test-{}-{}", std::process::id(), next_id()),
    );
    env.set("AZURE_AUTHORITY_HOST", format!("https://{host}"));
    // Entra connections are always verified: trust the stack's CA the way users add one.
    env.set("SSL_CERT_FILE", stack.notary_ca.to_str().unwrap());
    env.set("AZURE_TENANT_ID", s(&id, "tenant_id"));
    env.set("AZURE_CLIENT_ID", s(&id, "client_id"));
    if let Some(secret) = id["client_secret"].as_str() {
        env.set("AZURE_CLIENT_SECRET", secret);
    }
    std::fs::write(
        env.config.join("trustacr.json"),
        format!(r#"{{"acr_registries":["{host}"]}}"#),
    )
    .unwrap();
    env.trust_stack_ca_for(host);
    env
}

pub(crate) fn all_output(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// A signed image in a fresh repository of `host`, pushed by the signer identity.
pub(crate) fn signed_image_on(host: &str, prefix: &str) -> String {
    let env = env_on(host, "signer");
    let reference = format!("{}:v1", unique_repo(host, prefix));
    import_image(&env, &reference, prefix);
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push as signer");
    reference
}

/// A signed image in a fresh repository of the stack's emulator.
fn signed_image(prefix: &str) -> String {
    signed_image_on(&stack().acr_host, prefix)
}

/// Runs `cmd`, killing it and failing the test after `limit` (a plugin that hangs must turn
/// the test red, not stall the suite).
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Installs `script` as the only `az` on `env`'s PATH (no azd there, unless installed on the
/// machine).
fn install_az(env: &mut TestEnv, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let bin = env.home.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("az"), script).unwrap();
    std::fs::set_permissions(bin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
}

/// A fake `az` in front of the emulator's Entra endpoint. It appends its argv to
/// `$HOME/az.args`, refuses every scope but ACR's (so a wrong audience cannot pass), and signs
/// in as the identity `$HOME/az.who` names; without that file it answers as `az` does when
/// nobody is signed in. [`az_login`] and [`az_logout`] switch the account.
fn fake_az(env: &mut TestEnv) {
    let script = format!(
        r#"#!/bin/sh
printf '%s\n' "$*" >>"$HOME/az.args"
case " $* " in
  *" --scope https://containerregistry.azure.net/.default "*) ;;
  *) echo "ERROR: fake az: unexpected arguments: $*" >&2; exit 2 ;;
esac
if [ ! -f "$HOME/az.who" ]; then
  echo "ERROR: Please run 'az login' to setup account." >&2
  exit 1
fi
. "$HOME/az.who"
tok=$(curl -sf --cacert {ca} -d grant_type=client_credentials -d "client_id=$CID" -d "client_secret=$SEC" \
  --data-urlencode scope=https://containerregistry.azure.net/.default "https://{host}/$TID/oauth2/v2.0/token" \
  | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
[ -n "$tok" ] || {{ echo "ERROR: fake az: sign-in failed" >&2; exit 1; }}
printf '{{"accessToken":"%s","expires_on":%s,"tokenType":"Bearer"}}' "$tok" "$(( $(date +%s) + 3000 ))"
"#,
        ca = stack().notary_ca.display(),
        host = stack().acr_host,
    );
    install_az(env, &script);
    // Developer tools are the source under test: no secret in the environment.
    env.set("AZURE_CLIENT_SECRET", "");
}

/// `az login` as the test identity `who` for the fake az of `env`.
fn az_login(env: &TestEnv, who: &str) {
    let id = identity(who);
    std::fs::write(
        env.home.join("az.who"),
        format!(
            "CID={}\nSEC={}\nTID={}\n",
            s(&id, "client_id"),
            s(&id, "client_secret"),
            s(&id, "tenant_id")
        ),
    )
    .unwrap();
}

/// `az logout` for the fake az of `env`.
fn az_logout(env: &TestEnv) {
    std::fs::remove_file(env.home.join("az.who")).unwrap();
}

/// The argv of every fake az run so far, one line each.
fn az_runs(env: &TestEnv) -> Vec<String> {
    std::fs::read_to_string(env.home.join("az.args"))
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
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
    // A second push finds its keys and its token in the keyring: it reads both over the
    // plugin's own Secret Service session, and opens no second one through keyring-core.
    let out = run(env.plugin().args(["-D", "push", &reference]));
    assert_success(&out, "a second push");
    let err = stderr(&out);
    assert!(err.contains("using the cached ACR refresh token"), "{err}");
    assert!(!err.contains("keyring-core"), "{err}");
}

/// How ACR answers a request for actions the identity's roles do not allow. Undocumented
/// (tests/acr-emulator/ASSUMPTIONS.md), so the role diagnostics are tested under both answers.
enum MissingRole {
    /// A token for the allowed subset (the stack's emulator).
    Subset,
    /// 401 (a private emulator set to `missing_role: refuse`).
    Refuse,
}

/// The login server to test against, and the private emulator behind it if any.
fn acr_for(mode: MissingRole) -> (String, Option<Emulator>) {
    match mode {
        MissingRole::Subset => (stack().acr_host.clone(), None),
        MissingRole::Refuse => {
            let em = start_emulator(serde_json::json!({"missing_role": "refuse"}), Name::Own);
            (em.host.clone(), Some(em))
        }
    }
}

/// The command failed before sending anything, naming AcrImageSigner and how to assign it.
fn assert_told_signer_role_is_missing(out: &Output) {
    assert_eq!(out.status.code(), Some(5), "{}", all_output(out));
    let err = stderr(out);
    assert!(err.contains("lacks AcrImageSigner"), "{err}");
    assert!(
        err.contains("az role assignment create --role AcrImageSigner"),
        "{err}"
    );
}

fn reader_pulls_the_verified_image_but_is_refused_signing(mode: MissingRole) {
    let (host, _em) = acr_for(mode);
    let reference = signed_image_on(&host, "reader");
    let env = env_on(&host, "reader");
    let out = run(env.plugin().args(["pull", &reference]));
    assert_success(&out, "pull as reader");
    let out = run(env.plugin().args(["sign", &reference]));
    assert_told_signer_role_is_missing(&out);
}

#[test]
fn reader_is_refused_signing_with_the_role_named_when_acr_grants_a_subset() {
    reader_pulls_the_verified_image_but_is_refused_signing(MissingRole::Subset);
}

#[test]
fn reader_is_refused_signing_with_the_role_named_when_acr_refuses_the_token() {
    reader_pulls_the_verified_image_but_is_refused_signing(MissingRole::Refuse);
}

/// The HTTP status of `GET /v2/<repository>/tags/list` on `host`, asked with the signer's
/// credentials (which may read every repository).
fn tags_list_status(host: &str, repository: &str) -> u16 {
    let signer = identity("signer");
    let ca = stack().notary_ca.display().to_string();
    let token = run(Command::new("curl")
        .args(["-sf", "--cacert", &ca, "-u"])
        .arg(format!(
            "{}:{}",
            s(&signer, "client_id"),
            s(&signer, "client_secret")
        ))
        .arg(format!(
            "https://{host}/oauth2/token?service={host}&scope=repository:{repository}:pull"
        )));
    assert_success(&token, "token for tags/list");
    let token: Value = serde_json::from_slice(&token.stdout).unwrap();
    let out = run(Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &ca,
            "-H",
        ])
        .arg(format!(
            "Authorization: Bearer {}",
            s(&token, "access_token")
        ))
        .arg(format!("https://{host}/v2/{repository}/tags/list")));
    stdout(&out).trim().parse().unwrap()
}

fn pusher_without_signer_role_is_refused_and_nothing_is_pushed(mode: MissingRole) {
    let (host, _em) = acr_for(mode);
    let env = env_on(&host, "pusher");
    let repo = unique_repo(&host, "pusher");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "not signable");
    let out = run(env.plugin().args(["push", &reference]));
    assert_eq!(out.status.code(), Some(5), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("lacks AcrImageSigner"),
        "{}",
        stderr(&out)
    );
    // No trust data for the repository exists, and the image never reached the registry.
    let signer = env_on(&host, "signer");
    let out = run(signer.plugin().args(["verify", &reference]));
    assert!(
        stderr(&out).contains("remote trust data does not exist"),
        "{}",
        stderr(&out)
    );
    let repository = repo.split_once('/').unwrap().1;
    assert_eq!(tags_list_status(&host, repository), 404);
}

#[test]
fn pusher_without_signer_role_is_refused_and_nothing_is_pushed_when_acr_grants_a_subset() {
    pusher_without_signer_role_is_refused_and_nothing_is_pushed(MissingRole::Subset);
}

#[test]
fn pusher_without_signer_role_is_refused_and_nothing_is_pushed_when_acr_refuses_the_token() {
    pusher_without_signer_role_is_refused_and_nothing_is_pushed(MissingRole::Refuse);
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
fn refused_client_secret_stops_the_chain_before_az_runs() {
    let reference = signed_image("chain");
    let mut env = env_as("signer");
    // A working az signed in as the signer would verify this image, if the chain fell through.
    fake_az(&mut env);
    az_login(&env, "signer");
    env.set("AZURE_CLIENT_SECRET", "not-the-secret");
    let out = run(env.plugin().args(["verify", &reference]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(err.contains("AADSTS7000215"), "{err}");
    assert!(
        err.contains("client secret (AZURE_CLIENT_SECRET) failed"),
        "{err}"
    );
    assert_eq!(az_runs(&env), Vec::<String>::new(), "az was run");
}

#[test]
fn cached_token_is_not_reused_after_az_switches_account_or_logs_out() {
    let mut env = env_as("signer");
    fake_az(&mut env);
    az_login(&env, "signer");
    let reference = format!("{}:v1", unique_repo(&stack().acr_host, "azswitch"));
    import_image(&env, &reference, "account switch");
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push as the signer through az");

    // `az login` as an AcrPull-only account: the signer's cached token must not sign.
    az_login(&env, "reader");
    let out = run(env.plugin().args(["-D", "sign", &reference]));
    assert_eq!(out.status.code(), Some(5), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(err.contains("lacks AcrImageSigner"), "{err}");
    let reader = identity("reader");
    assert!(
        err.contains(&format!(
            "signed in to Entra ID with Azure CLI (az) as tenant {}, object {}",
            s(&reader, "tenant_id"),
            s(&reader, "object_id")
        )),
        "{err}"
    );

    // `az logout`: nobody is signed in, so no cached token of anyone may be used.
    az_logout(&env);
    let out = run(env.plugin().args(["-D", "verify", &reference]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(!err.contains("using the cached ACR refresh token"), "{err}");
    assert!(err.contains("az login"), "{err}");
    assert_eq!(az_runs(&env).len(), 3, "one az run per command");
}

#[test]
fn logout_forgets_the_cached_tokens_of_every_identity() {
    let reference = signed_image("logout");
    let host = stack().acr_host.clone();
    let mut env = env_as("signer");
    let debug_verify = |env: &TestEnv, what: &str| {
        let out = run(env.plugin().args(["-D", "verify", &reference]));
        assert_success(&out, what);
        stderr(&out)
    };
    debug_verify(&env, "verify with the client secret");
    // The same keyring namespace, now through az as the reader: a second cached identity.
    fake_az(&mut env);
    az_login(&env, "reader");
    debug_verify(&env, "verify through az");
    let out = run(env.plugin().args(["logout", &host]));
    assert_success(&out, "logout");
    let first = debug_verify(&env, "verify through az after logout");
    assert!(first.contains("signed in to Entra ID"), "{first}");
    assert!(!first.contains("using the cached"), "{first}");
    let mut env = env;
    env.set(
        "AZURE_CLIENT_SECRET",
        s(&identity("signer"), "client_secret"),
    );
    let second = debug_verify(&env, "verify with the client secret after logout");
    assert!(!second.contains("using the cached"), "{second}");
    assert!(second.contains("signed in to Entra ID"), "{second}");
}

#[test]
fn second_command_uses_the_cached_refresh_token_and_an_expired_one_is_renewed() {
    let reference = signed_image("cache");
    let mut env = env_as("signer");
    let service = format!("docker-trustacr-test-cache-{}", std::process::id());
    env.set("TRUSTACR_KEYRING_SERVICE", &service);
    // -D says whether Entra was asked and which cache entry is used.
    let debug_verify = |what: &str| {
        let out = run(env.plugin().args(["-D", "verify", &reference]));
        assert_success(&out, what);
        stderr(&out)
    };
    let first = debug_verify("first verify");
    let (entry, key) = first
        .lines()
        .find_map(|l| l.split("ACR refresh token cache entry ").nth(1))
        .and_then(|rest| rest.trim().split_once(", identity key "))
        .map(|(e, k)| (e.to_string(), k.to_string()))
        .expect("the cache entry is named in debug output");
    let second = debug_verify("second verify");
    assert!(
        second.contains("using the cached ACR refresh token"),
        "{second}"
    );
    // Read over the plugin's own Secret Service session: no second key exchange.
    assert!(!second.contains("keyring-core"), "{second}");
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
            &service,
            "username",
            &entry,
        ])
        .stdin(Stdio::piped());
    let mut child = store.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                format!(
                    r#"{{"tokens":{{"{key}":{{"token":"eyJhbGciOiJub25lIn0.eyJleHAiOjF9.","exp":1}}}}}}"#
                )
                .as_bytes(),
            )
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
fn debug_output_of_a_real_sign_in_contains_no_token_or_secret() {
    let reference = signed_image("debug");
    let env = env_as("signer");
    let secret = s(&identity("signer"), "client_secret");
    for args in [
        vec!["-D", "verify", &reference],
        vec!["-D", "pull", &reference],
    ] {
        // Forget the cached token, so the secret, the Entra token and the exchange are all in
        // play in the process watched (audit P1-M5).
        let out = run(env.plugin().args(["logout", &stack().acr_host]));
        assert_success(&out, "logout");
        let out = run(env.plugin().args(&args));
        assert_success(&out, "debug run");
        let text = all_output(&out);
        assert!(text.contains("HTTP"), "debug logging is on:\n{text}");
        assert!(
            text.contains("signed in to Entra ID with client secret"),
            "the Entra sign-in ran:\n{text}"
        );
        assert!(!text.contains("eyJ"), "a JWT leaked:\n{text}");
        assert!(!text.contains(&secret), "the client secret leaked");
    }
}

#[test]
fn azure_cli_is_asked_for_the_acr_scope_and_tenant() {
    let reference = signed_image("azcli");
    let mut env = env_as("signer");
    fake_az(&mut env);
    az_login(&env, "signer");
    let out = run(env
        .plugin()
        .args(["-D", "--credential", "azure-cli", "verify", &reference]));
    assert_success(&out, "verify with the Azure CLI credential");
    assert!(
        stderr(&out).contains("signed in to Entra ID with Azure CLI (az)"),
        "{}",
        stderr(&out)
    );
    let tenant = s(&identity("signer"), "tenant_id");
    assert_eq!(
        az_runs(&env),
        vec![format!(
            "account get-access-token --scope https://containerregistry.azure.net/.default -o json --tenant {tenant}"
        )]
    );
}

#[test]
fn az_printing_endless_output_is_stopped_at_the_cap() {
    let reference = signed_image("azflood");
    let mut env = env_as("signer");
    install_az(&mut env, "#!/bin/sh\nexec yes '{\"accessToken\":\"x\"}'\n");
    env.set("AZURE_CLIENT_SECRET", "");
    // GNU time reports the plugin's peak memory (its last stderr line).
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "this test needs GNU time at /usr/bin/time");
    let out = run_within(
        env.cmd(time).args(["-f", "maxrss_kib=%M", BIN]).args([
            "--credential",
            "azure-cli",
            "verify",
            &reference,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(err.contains("printed more than 1048576 bytes"), "{err}");
    let peak: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in:\n{err}"));
    // A plugin run takes a few tens of MiB; buffering the flood would take far more.
    assert!(peak < 150 * 1024, "peak memory {peak} KiB");
}

/// Whether process `pid` is gone (or a zombie: killed, not yet reaped).
fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// A fake az that starts a child which would outlive it and waits for it; the child's pid is
/// written to `$HOME/az.child` once it runs.
const HANGING_AZ: &str = "#!/bin/sh\nsleep 300 &\necho $! >\"$HOME/az.child.tmp\"\nmv \"$HOME/az.child.tmp\" \"$HOME/az.child\"\nwait\n";

fn assert_killed(home: &Path) {
    let pid = std::fs::read_to_string(home.join("az.child")).expect("the fake az ran");
    let pid = pid.trim();
    // SIGKILL is immediate; the bounded wait only covers /proc catching up.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "az's child {pid} outlived the command"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn az_that_hangs_is_killed_with_its_children_at_the_timeout() {
    let reference = signed_image("azhang");
    let mut env = env_as("signer");
    install_az(&mut env, HANGING_AZ);
    env.set("AZURE_CLIENT_SECRET", "");
    env.set("TRUSTACR_CLI_TIMEOUT", "2");
    let out = run_within(
        env.plugin()
            .args(["--credential", "azure-cli", "verify", &reference]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(err.contains("did not finish within 2 s"), "{err}");
    assert_killed(&env.home);
}

#[test]
fn az_is_killed_with_its_children_when_the_command_is_cancelled() {
    let reference = signed_image("azcancel");
    let mut env = env_as("signer");
    install_az(&mut env, HANGING_AZ);
    env.set("AZURE_CLIENT_SECRET", "");
    let mut child = env
        .plugin()
        .args(["--credential", "azure-cli", "pull", &reference])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marker: PathBuf = env.home.join("az.child");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the fake az never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ctrl-C reaches the plugin alone: az runs in its own process group.
    let kill = run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    assert_success(&kill, "kill -INT");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the plugin did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", all_output(&out));
    assert_killed(&env.home);
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
    env.trust_acr_emulator();
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
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(err.contains("ACR does not allow to sign"), "{err}");
    assert!(err.contains("Microsoft Entra"), "{err}");
}

/// A port on loopback that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn unreachable_managed_identity_endpoint_moves_the_chain_on_to_az() {
    let reference = signed_image("miaway");
    let mut env = env_as("signer");
    fake_az(&mut env);
    az_login(&env, "signer");
    env.set(
        "IDENTITY_ENDPOINT",
        format!("http://127.0.0.1:{}/msi/token", closed_port()),
    );
    env.set("IDENTITY_HEADER", "unused");
    let out = run(env.plugin().args(["-D", "verify", &reference]));
    assert_success(
        &out,
        "verify through az after an unreachable managed identity",
    );
    let err = stderr(&out);
    assert!(err.contains("managed identity is not available"), "{err}");
    assert!(
        err.contains("signed in to Entra ID with Azure CLI (az)"),
        "{err}"
    );
}

#[test]
fn managed_identity_secret_header_does_not_follow_a_redirect() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let serve = |listener: std::net::TcpListener, response: String| {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(response.as_bytes());
            }
        });
        hits
    };
    let thief = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let thief_url = format!("http://{}/steal", thief.local_addr().unwrap());
    let endpoint = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint_url = format!("http://{}/msi/token", endpoint.local_addr().unwrap());
    let stolen = serve(
        thief,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(),
    );
    let asked = serve(
        endpoint,
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {thief_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    let mut env = env_as("signer");
    env.set("AZURE_CLIENT_SECRET", "");
    env.set("IDENTITY_ENDPOINT", endpoint_url);
    env.set("IDENTITY_HEADER", "the-managed-identity-secret");
    let out = run(env.plugin().args([
        "--credential",
        "managed-identity",
        "verify",
        &format!("{}:v1", unique_repo(&stack().acr_host, "miredirect")),
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    // The plugin has exited: any request it made has been counted.
    assert!(
        asked.load(Ordering::SeqCst) >= 1,
        "the endpoint was not asked"
    );
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "the managed identity's request followed the redirect"
    );
}

#[test]
fn client_secret_without_a_tenant_is_refused_not_skipped_for_az() {
    let reference = signed_image("notenant");
    let mut env = env_as("signer");
    fake_az(&mut env);
    az_login(&env, "signer");
    env.set(
        "AZURE_CLIENT_SECRET",
        s(&identity("signer"), "client_secret"),
    );
    env.set("AZURE_TENANT_ID", "");
    let out = run(env.plugin().args(["verify", &reference]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = stderr(&out);
    assert!(
        err.contains("client secret (AZURE_CLIENT_SECRET) failed: needs a tenant"),
        "{err}"
    );
    assert_eq!(az_runs(&env), Vec::<String>::new(), "az was run");
}

#[test]
fn az_is_killed_with_its_children_when_the_docker_cli_cancels_the_plugin() {
    let reference = signed_image("azclisock");
    let mut env = env_as("signer");
    env.install();
    install_az(&mut env, HANGING_AZ);
    env.set("AZURE_CLIENT_SECRET", "");
    // stdout is a pipe, not a terminal: the CLI forwards the interrupt by closing the plugin
    // socket, and the plugin gets no signal.
    let mut docker = env
        .docker()
        .args(["trustacr", "--credential", "azure-cli", "pull", &reference])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marker = env.home.join("az.child");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the fake az never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = run(Command::new("kill").args(["-INT", &docker.id().to_string()]));
    assert_success(&kill, "kill -INT");
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = docker.kill();
            panic!("docker did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = docker.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("cancelled by the docker CLI"),
        "{}",
        all_output(&out)
    );
    assert_killed(&env.home);
}

#[test]
fn refused_client_secret_does_not_fall_back_to_dockers_stored_credential() {
    let reference = signed_image("nofallback");
    let signer = identity("signer");
    let mut env = env_as("signer");
    env.set("AZURE_CLIENT_SECRET", "not-the-secret");
    // A working username and password in docker's configuration, as `docker login` leaves.
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
    let out = run(env.plugin().args(["verify", &reference]));
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(stderr(&out).contains("AADSTS7000215"), "{}", stderr(&out));
}

// See: #11 item 3
#[test]
fn tenant_given_as_a_domain_name_signs_in_and_the_exchange_gets_the_tenant_id() {
    let tenant = s(&identity("signer"), "tenant_id");
    let em = start_emulator(
        serde_json::json!({"tenant_domains": {"contoso.onmicrosoft.com": tenant}}),
        Name::Own,
    );
    let mut env = env_on(&em.host, "signer");
    env.set("AZURE_TENANT_ID", "contoso.onmicrosoft.com");
    let reference = format!("{}:v1", unique_repo(&em.host, "tenant-domain"));
    import_image(&env, &reference, "tenant-domain");
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push with the tenant given as a domain name");
}

// See: #11 item 3
#[test]
fn access_claim_with_capitalised_keys_is_read_as_the_registry_reads_it() {
    let em = start_emulator(serde_json::json!({"access_keys": "capitalised"}), Name::Own);
    let env = env_on(&em.host, "signer");
    let reference = format!("{}:v1", unique_repo(&em.host, "capitalised"));
    import_image(&env, &reference, "capitalised");
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push with a capitalised access claim");
}

/// The stack's emulator configuration with one more identity, that holds `roles`; returns the
/// changed `identities` and the new identity's client ID and secret.
pub(crate) fn with_identity(roles: &[&str]) -> (Value, String, String) {
    with_identity_in(&s(&identity("signer"), "tenant_id"), roles)
}

/// As [`with_identity`], in `tenant`.
pub(crate) fn with_identity_in(tenant: &str, roles: &[&str]) -> (Value, String, String) {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&stack().acr_config).unwrap()).unwrap();
    let mut identities = config["identities"].as_array().unwrap().clone();
    let client_id = format!("0000beef-0000-4000-8000-{:012}", next_id());
    let secret = format!("secret-{}", next_id());
    identities.push(serde_json::json!({
        "tenant_id": tenant,
        "client_id": client_id,
        "client_secret": secret,
        "name": format!("test-{client_id}"),
        "roles": roles,
    }));
    (Value::Array(identities), client_id, secret)
}

// See: #11 item 3
#[test]
fn identity_without_any_role_is_told_the_missing_role_when_acr_refuses_every_scope() {
    let (identities, client_id, secret) = with_identity(&[]);
    let em = start_emulator(
        serde_json::json!({"missing_role": "refuse", "identities": identities}),
        Name::Own,
    );
    let mut env = env_on(&em.host, "signer");
    env.set("AZURE_CLIENT_ID", client_id);
    env.set("AZURE_CLIENT_SECRET", secret);
    let reference = format!("{}:v1", unique_repo(&em.host, "no-role"));
    import_image(&env, &reference, "no-role");
    let out = run(env.plugin().args(["push", &reference]));
    assert_told_signer_role_is_missing(&out);
}
