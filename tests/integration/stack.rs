//! The stack itself: the registry takes a pushed image and notary-server answers over TLS on
//! loopback, so later tests can rely on both.

use crate::harness::*;

#[test]
fn registry_accepts_a_scratch_image_pushed_by_the_engine() {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_HOST", &stack.docker_host);
    let image = format!("{}/stack/smoke:v1", stack.registry);
    import_image(&env, &image, "hello from the stack test\n");
    let docker = |args: &[&str]| {
        let mut c = env.docker();
        c.args(args);
        c
    };
    let out = run(&mut docker(&["push", &image]));
    assert_success(&out, "docker push");
    assert!(
        stdout(&out).contains("v1: digest: sha256:"),
        "{}",
        stdout(&out)
    );
    assert_success(&run(&mut docker(&["rmi", &image])), "docker rmi");
}

#[test]
fn notary_server_answers_over_tls_with_the_test_ca() {
    let stack = stack();
    let env = TestEnv::new();
    let out = run(env
        .cmd("notary")
        .arg("-d")
        .arg(env.home.join("notary"))
        .args(["-s", &stack.notary_url, "--tlscacert"])
        .arg(&stack.notary_ca)
        .args(["list", "example.com/never/published"]));
    // A GUN nobody published is "does not have trust data", which proves TLS and routing work.
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("does not have trust data"), "{text}");
}

/// Before the stack kept notary-server's keys in notary-signer, racing GETs of new
/// repositories' timestamp keys (each creates a key until the repository has a root) ended
/// notary-server with "concurrent map writes", and every later test failed with it. The crash
/// is a race, so this load shows the stack holds up under it; it may not reproduce the crash.
#[test]
fn notary_server_survives_racing_key_requests_for_new_repositories() {
    let stack = stack();
    let get_key = |gun: &str| {
        let url = format!("{}/v2/{gun}/_trust/tuf/timestamp.key", stack.notary_url);
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(&stack.notary_ca)
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.ends_with("\n200") && text.contains("\"keytype\""),
            "GET {url} did not return a key: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Eight racers, each asking for the keys of forty repositories nobody has published.
    std::thread::scope(|scope| {
        for w in 0..8 {
            let get_key = &get_key;
            scope.spawn(move || {
                for i in 0..40 {
                    get_key(&unique_repo(&stack.registry, &format!("keyrace{w}-{i}")));
                }
            });
        }
    });
    // Still serving: the key of one more new repository comes back.
    get_key(&unique_repo(&stack.registry, "keyrace-after"));
}
