//! Many processes at once on one repository (issue #12 item 3). Each test names the invariant it
//! checks: every signer's tag lands, readers see the old or the new digest and never anything
//! else, and racing key creation leaves one root key.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::harness::*;

const SIGNERS: usize = 8;

/// `sign REPO:TAG` in the background with its own docker config dir (its own trust cache, as
/// on separate machines sharing one keyring).
fn spawn_sign(env: &TestEnv, repo: &str, tag: &str) -> Child {
    let cfg = env.home.join(format!("cfg-{tag}"));
    std::fs::create_dir_all(&cfg).unwrap();
    env.plugin()
        .env("DOCKER_CONFIG", &cfg)
        .args(["sign", &format!("{repo}:{tag}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Tags `notary list` shows for `gun`, sorted.
fn notary_tags(env: &TestEnv, gun: &str) -> Vec<String> {
    let out = notary(env, &["list", gun]);
    assert_success(&out, "notary list");
    let mut tags: Vec<String> = stdout(&out)
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    tags.sort();
    tags
}

/// Pushes `n` unsigned tags `t0…` and returns them with their digests.
fn push_tags(env: &TestEnv, repo: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let tag = format!("t{i}");
            let (digest, _) = docker_push(env, &format!("{repo}:{tag}"), &format!("{repo} {tag}"));
            (tag, digest)
        })
        .collect()
}

/// Every signer's tag is in the published data and each verifies to the digest that was pushed
/// for it, in this tool (fresh cache) and in the notary CLI.
fn assert_all_signed(env: &TestEnv, repo: &str, tags: &[(String, String)], base: &[&str]) {
    let mut expected: Vec<String> = tags
        .iter()
        .map(|(t, _)| t.clone())
        .chain(base.iter().map(|t| t.to_string()))
        .collect();
    expected.sort();
    assert_eq!(notary_tags(env, repo), expected);
    let fresh = env.home.join("cfg-fresh-reader");
    std::fs::create_dir_all(&fresh).unwrap();
    for (tag, digest) in tags {
        let out = run(env
            .plugin()
            .env("DOCKER_CONFIG", &fresh)
            .args(["verify", &format!("{repo}:{tag}")]));
        assert_success(&out, "verify a concurrently signed tag");
        assert_eq!(stdout(&out).trim(), digest, "{tag}");
    }
}

#[test]
fn eight_signers_of_an_existing_repository_all_land() {
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "eight");
    docker_push(&env, &format!("{repo}:base"), "base");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:base")])),
        "sign base",
    );
    let tags = push_tags(&env, &repo, SIGNERS);
    let children: Vec<Child> = tags
        .iter()
        .map(|(t, _)| spawn_sign(&env, &repo, t))
        .collect();
    for c in children {
        assert_success(
            &wait_output(c, Duration::from_secs(180)),
            "a concurrent signer",
        );
    }
    assert_all_signed(&env, &repo, &tags, &["base"]);
}

#[test]
fn eight_first_signers_of_a_new_repository_all_land_with_one_root_key() {
    let mut env = trust_env();
    // A keyring namespace of its own, so "one root key" is about this race alone.
    env.set(
        "TRUSTACR_KEYRING_SERVICE",
        format!("trustacr-test-race-{}-{}", std::process::id(), next_id()),
    );
    let repo = unique_repo(&stack().registry, "eightnew");
    let tags = push_tags(&env, &repo, SIGNERS);
    let children: Vec<Child> = tags
        .iter()
        .map(|(t, _)| spawn_sign(&env, &repo, t))
        .collect();
    for c in children {
        assert_success(&wait_output(c, Duration::from_secs(180)), "a first signer");
    }
    assert_all_signed(&env, &repo, &tags, &[]);

    let out = run(env.plugin().args(["key", "list", "--format", "json"]));
    assert_success(&out, "key list");
    let listing: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let roles: Vec<&str> = listing["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "root").count(),
        1,
        "eight racing signers must share one root key: {roles:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "targets").count(),
        1,
        "and one targets key for the repository: {roles:?}"
    );
}

#[test]
fn readers_during_a_publish_see_the_old_or_the_new_digest_and_the_cache_stays_valid() {
    const READERS: usize = 8;
    let env = trust_env();
    let repo = unique_repo(&stack().registry, "readers");
    let (old, _) = docker_push(&env, &format!("{repo}:v1"), "old");
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:v1")])),
        "sign the old image",
    );
    // One docker config dir (one trust cache) shared by every reader: concurrent cache writes
    // are part of what is tested.
    let shared = env.home.join("cfg-readers");
    std::fs::create_dir_all(&shared).unwrap();
    let verify = |cfg: &std::path::Path| {
        env.plugin()
            .env("DOCKER_CONFIG", cfg)
            .args(["verify", &format!("{repo}:v1")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert_eq!(
        stdout(&wait_output(verify(&shared), Duration::from_secs(60))).trim(),
        old,
        "the shared cache starts warm at the old digest"
    );
    let (new, _) = docker_push(&env, &format!("{repo}:v1"), "new");
    assert_ne!(old, new);

    let mut publisher = spawn_sign(&env, &repo, "v1");
    let mut seen = Vec::new();
    let mut rounds = 0;
    // Rounds of READERS verifiers while the publisher runs, then one round that starts after
    // it has exited (which must see the new digest).
    loop {
        let finished = publisher.try_wait().unwrap().is_some();
        let readers: Vec<Child> = (0..READERS).map(|_| verify(&shared)).collect();
        let round: Vec<String> = readers
            .into_iter()
            .map(|r| {
                let out = wait_output(r, Duration::from_secs(120));
                assert_success(&out, "a reader during the publish");
                stdout(&out).trim().to_string()
            })
            .collect();
        rounds += 1;
        if finished {
            assert!(
                round.iter().all(|d| *d == new),
                "readers that started after the publish returned {round:?}, not {new}"
            );
            seen.extend(round);
            break;
        }
        seen.extend(round);
        assert!(rounds < 60, "the publisher did not finish");
    }
    let out = wait_output(publisher, Duration::from_secs(10));
    assert_success(&out, "the publisher");
    assert!(rounds >= 2, "no reader ran while the publish was in flight");
    for d in &seen {
        assert!(
            *d == old || *d == new,
            "a reader returned a digest that was never signed: {d} (old {old}, new {new})"
        );
    }
    // The shared cache is still valid: it verifies on its own, and the notary CLI agrees.
    let out = wait_output(verify(&shared), Duration::from_secs(60));
    assert_success(&out, "verify with the shared cache after the race");
    assert_eq!(stdout(&out).trim(), new);
    let out = notary(&env, &["lookup", &repo, "v1"]);
    assert_success(&out, "notary lookup");
    assert!(stdout(&out).contains(new.trim_start_matches("sha256:")));
}

/// `(entra_token, exchange, token)` calls an emulator counted so far.
fn token_calls(em: &crate::acr_stack::Emulator) -> [u64; 3] {
    let s = em.stats();
    ["entra_token", "exchange", "token"].map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{s}")))
}

fn delta(before: [u64; 3], after: [u64; 3]) -> [u64; 3] {
    [0, 1, 2].map(|i| after[i] - before[i])
}

/// Issue #12 item 4: with a warm token cache, verifies in separate processes make no
/// token-endpoint call at all: the access tokens the first verify got (notary GUN and registry
/// repository scopes) are reused from the keyring until shortly before they expire.
#[test]
fn warm_verifies_in_parallel_processes_make_no_token_endpoint_call() {
    use crate::acr_e2e::{env_on, signed_image_on};
    use crate::acr_stack::{Name, start_emulator};
    // An emulator of this test's own, so no other test's requests are counted.
    let em = start_emulator(serde_json::json!({}), Name::Own);
    let reference = signed_image_on(&em.host, "tokcache");
    let env = env_on(&em.host, "reader");
    let verify = || run(env.plugin().args(["verify", &reference]));

    let start = token_calls(&em);
    let out = verify();
    assert_success(&out, "the cold verify");
    let digest = stdout(&out).trim().to_string();
    let cold = delta(start, token_calls(&em));
    assert_eq!(cold[0], 1, "one Entra sign-in: {cold:?}");
    assert!(
        cold[2] <= 2,
        "the cold verify asks one token per scope (GUN, repository): {cold:?}"
    );

    const TOTAL: usize = 24;
    const AT_ONCE: usize = 8;
    let warm_start = token_calls(&em);
    for batch in 0..TOTAL / AT_ONCE {
        let children: Vec<Child> = (0..AT_ONCE)
            .map(|_| {
                env.plugin()
                    .args(["verify", &reference])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = wait_output(c, Duration::from_secs(120));
            assert_success(&out, &format!("a warm verify of batch {batch}"));
            assert_eq!(stdout(&out).trim(), digest);
        }
    }
    let warm = delta(warm_start, token_calls(&em));
    assert_eq!(
        warm,
        [0, 0, 0],
        "{TOTAL} warm verifies made (Entra, exchange, token) calls {warm:?}; expected none"
    );
}

/// A stored access token the server refuses (revoked, or expired early) is dropped and fetched
/// anew: the verify succeeds, and the next one uses the new token.
#[test]
fn a_stored_access_token_the_server_refuses_is_replaced_and_the_verify_succeeds() {
    use crate::acr_e2e::{env_on, signed_image_on};
    use crate::acr_stack::{Name, start_emulator};
    let em = start_emulator(serde_json::json!({}), Name::Own);
    let reference = signed_image_on(&em.host, "tokbad");
    let env = env_on(&em.host, "reader");
    let out = run(env.plugin().args(["-D", "verify", &reference]));
    assert_success(&out, "the cold verify");
    let digest = stdout(&out).trim().to_string();
    let warm = run(env.plugin().args(["-D", "verify", &reference]));
    assert_success(&warm, "the warm verify");
    let keys: Vec<String> = stderr(&warm)
        .lines()
        .filter_map(|l| l.split("using a cached ACR access token (").nth(1))
        .filter_map(|rest| rest.split(", key ").nth(1))
        .map(|k| k.trim_end_matches(')').to_string())
        .collect();
    assert_eq!(keys.len(), 2, "{}", stderr(&warm));

    // Replace both with tokens that look valid for an hour but that no server accepts.
    let service = env_service(&env);
    let entry = format!("acr-access:{}", em.host);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let forged = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        base64_url(&format!(r#"{{"exp":{exp}}}"#))
    );
    let tokens: Vec<String> = keys
        .iter()
        .map(|k| format!(r#""{k}":{{"token":"{forged}","exp":{exp}}}"#))
        .collect();
    secret_tool_store(
        &env,
        &service,
        &entry,
        &format!(r#"{{"tokens":{{{}}}}}"#, tokens.join(",")),
    );

    let before = token_calls(&em);
    let out = run(env.plugin().args(["verify", &reference]));
    assert_success(&out, "the verify with refused stored tokens");
    assert_eq!(stdout(&out).trim(), digest);
    let refetched = delta(before, token_calls(&em));
    assert_eq!(
        refetched[2], 2,
        "one new token per refused scope: {refetched:?}"
    );
    let before = token_calls(&em);
    let out = run(env.plugin().args(["verify", &reference]));
    assert_success(&out, "the verify after the replacement");
    assert_eq!(delta(before, token_calls(&em)), [0, 0, 0]);
}

/// The keyring service name the environment's commands use.
fn env_service(env: &TestEnv) -> String {
    let out = run(env
        .cmd("sh")
        .args(["-c", "printf %s \"$TRUSTACR_KEYRING_SERVICE\""]));
    let s = stdout(&out);
    assert!(!s.is_empty(), "the environment sets no keyring service");
    s
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Writes `value` into keyring entry (`service`, `username`) with secret-tool.
fn secret_tool_store(env: &TestEnv, service: &str, username: &str, value: &str) {
    use std::io::Write;
    let mut child = env
        .cmd("secret-tool")
        .args([
            "store",
            "--label=test",
            "service",
            service,
            "username",
            username,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "secret-tool store");
}
