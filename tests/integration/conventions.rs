//! Command-line conventions: shell completion scripts that load in the real shells and complete
//! subcommands and flags, and the README's exit code table checked against real runs.

use std::process::Command;

use crate::harness::*;

/// The completion script for `shell`, written to a file.
fn completion_script(shell: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let env = TestEnv::new();
    let out = run(env.plugin().args(["completion", shell]));
    assert_success(&out, &format!("completion {shell}"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("completion.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    (dir, path)
}

/// Sources the script in bash and calls the function it registered for `docker-trust-acr`
/// as bash's programmable completion does for `words` (the last one is being typed).
const BASH_DRIVER: &str = r#"
source "$1" || exit 4
shift
spec=$(complete -p docker-trust-acr) || exit 5
fn=$(sed -E 's/.*-F ([^ ]+).*/\1/' <<<"$spec")
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" docker-trust-acr "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let out = run(Command::new("bash")
        .args(["--noprofile", "--norc", "-c", BASH_DRIVER, "driver"])
        .arg(script)
        .args(words));
    assert_success(&out, "bash completion");
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_loads_and_completes_subcommands_and_their_flags() {
    let (_dir, script) = completion_script("bash");
    let subcommands = bash_completes(&script, &["docker-trust-acr", ""]);
    for s in ["push", "pull", "doctor", "registry", "completion"] {
        assert!(subcommands.iter().any(|c| c == s), "{s} in {subcommands:?}");
    }
    let flags = bash_completes(&script, &["docker-trust-acr", "doctor", "--"]);
    for f in ["--format", "--subscription"] {
        assert!(flags.iter().any(|c| c == f), "{f} in {flags:?}");
    }
    let nested = bash_completes(&script, &["docker-trust-acr", "registry", "trust", ""]);
    assert!(
        ["show", "disable", "enable"]
            .iter()
            .all(|s| nested.iter().any(|c| c == s)),
        "{nested:?}"
    );
}

/// Loads the script under zsh's compinit, checks that it registered for `docker-trust-acr`, and
/// asks its functions what they offer, with `_describe` and `_arguments` (which need a live
/// command line) replaced by printers: the subcommands, then the flags of `doctor`.
const ZSH_DRIVER: &str = r#"
autoload -U compinit && compinit -u -D || exit 3
source "$1" || exit 4
print -r -- "registered: $_comps[docker-trust-acr]"
_describe() { shift 3; print -rl -- "${(@P)1}"; }
_docker-trust-acr_commands
calls=0
_arguments() {
  (( calls++ ))
  if (( calls == 1 )); then state=docker-trust-acr; line=(doctor); return 0; fi
  print -rl -- "$@"
}
words=(docker-trust-acr doctor --) CURRENT=3 _docker-trust-acr
"#;

#[test]
fn zsh_completion_loads_registers_and_offers_subcommands_and_flags() {
    let (_dir, script) = completion_script("zsh");
    let out = run(Command::new("zsh")
        .args(["-f", "-c", ZSH_DRIVER, "driver"])
        .arg(&script));
    assert_success(&out, "zsh completion");
    let text = stdout(&out);
    assert!(text.contains("registered: _docker-trust-acr"), "{text}");
    for s in ["push:", "doctor:", "registry:"] {
        assert!(text.lines().any(|l| l.starts_with(s)), "{s} in {text}");
    }
    for f in ["--format=", "--subscription="] {
        assert!(text.lines().any(|l| l.starts_with(f)), "{f} in {text}");
    }
}

/// The exit codes the README's table lists.
fn readme_exit_codes() -> Vec<u8> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let table = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README.md has an \"## Exit codes\" section");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.trim_matches('|').split('|').next()?.trim().parse().ok())
        .collect()
}

#[test]
fn exit_codes_match_the_readme_table() {
    assert_eq!(readme_exit_codes(), [0, 1, 2, 3, 4, 5, 6, 130]);
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    env.set("DOCKER_HOST", &stack.docker_host);
    let code = |env: &TestEnv, args: &[&str]| {
        let out = run(env.plugin().args(args));
        (out.status.code(), stderr(&out))
    };
    let expect = |env: &TestEnv, args: &[&str], want: i32, why: &str| {
        let (got, err) = code(env, args);
        assert_eq!(got, Some(want), "{why}: {args:?}\n{err}");
        err
    };

    // 0
    expect(&env, &["completion", "fish"], 0, "success");

    // 2: clap's usage errors and the runtime ones.
    expect(&env, &["frobnicate"], 2, "an unknown command");
    expect(
        &env,
        &["push", "no-tag-given.example/app"],
        2,
        "a missing tag",
    );
    expect(
        &env,
        &["verify", "UPPER/Case:v1"],
        2,
        "an invalid reference",
    );
    expect(
        &env,
        &["completion", "bash", "--format", "json"],
        2,
        "json of a script",
    );

    // 3: a tag pushed without signing.
    let repo = unique_repo(&stack.registry, "exit");
    let unsigned = format!("{repo}:unsigned");
    import_image(&env, &unsigned, "exit codes: unsigned");
    assert_success(&run(env.docker().args(["push", &unsigned])), "docker push");
    let err = expect(&env, &["verify", &unsigned], 3, "not signed");
    assert!(err.contains("not signed"), "{err}");

    // 4: signed, but the trust data is refused: a root pin it does not match.
    let signed = format!("{repo}:v1");
    import_image(&env, &signed, "exit codes: signed");
    assert_success(&run(env.plugin().args(["push", &signed])), "push");
    let mut pinned = TestEnv::new();
    pinned.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    std::fs::write(
        pinned.config.join("trustacr.json"),
        serde_json::json!({"trust_pinning": {"certs": {repo.clone(): ["0".repeat(64)]}}})
            .to_string(),
    )
    .unwrap();
    expect(&pinned, &["verify", &signed], 4, "verification refused");
    // Unpinned, the same tag verifies: the 4 above was the pin, not the data.
    expect(&env, &["verify", &signed], 0, "the signed tag verifies");

    // 5: an identity without AcrImageSigner, found before anything is sent.
    let reader = crate::acr_e2e::env_on(&stack.acr_host, "reader");
    let err = expect(
        &reader,
        &["push", &format!("{}/t/exit-role:v1", stack.acr_host)],
        5,
        "permission",
    );
    assert!(err.contains("lacks AcrImageSigner"), "{err}");

    // 6: nothing listens on the registry's port.
    let port = closed_port();
    let mut offline = TestEnv::new();
    offline.set(
        "DOCKER_CONTENT_TRUST_SERVER",
        format!("https://127.0.0.1:{port}"),
    );
    expect(
        &offline,
        &["verify", &format!("127.0.0.1:{port}/app:v1")],
        6,
        "network",
    );

    // 130: TRUSTACR_TIMEOUT stops a command whose server accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut stalled = TestEnv::new();
    stalled.set(
        "DOCKER_CONTENT_TRUST_SERVER",
        format!("https://127.0.0.1:{port}"),
    );
    stalled.set("TRUSTACR_TIMEOUT", "2");
    let err = expect(
        &stalled,
        &["verify", &format!("127.0.0.1:{port}/app:v1")],
        130,
        "cancelled",
    );
    assert!(err.contains("TRUSTACR_TIMEOUT"), "{err}");
    drop(silent);

    // 1: anything else, e.g. docker's configuration is not JSON.
    std::fs::write(offline.config.join("config.json"), "{not json").unwrap();
    expect(
        &offline,
        &["verify", "r.example/app:v1"],
        1,
        "a broken configuration",
    );
}
