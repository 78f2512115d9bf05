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
