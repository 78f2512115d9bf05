//! What a docker user expects of push and pull: `-q` prints the digest alone, `--platform`
//! takes one image out of a signed multi-platform index (and nothing else), progress on a
//! terminal names each layer with its bytes; and a man page generated from the command line.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::*;

fn env() -> TestEnv {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    env.set("DOCKER_HOST", &stack.docker_host);
    env
}

fn inspect(env: &TestEnv, reference: &str) -> Value {
    let out = run(env.docker().args(["image", "inspect", reference]));
    assert_success(&out, "docker image inspect");
    serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
}

#[test]
fn push_and_pull_quiet_print_only_the_signed_digest() {
    let env = env();
    let repo = unique_repo(&stack().registry, "quiet");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "quiet please");
    let out = run(env.plugin().args(["push", "-q", &reference]));
    assert_success(&out, "push -q");
    let pushed = stdout(&out);
    let digest = pushed.trim();
    assert!(
        pushed.lines().count() == 1 && digest.starts_with("sha256:") && digest.len() == 71,
        "push -q printed more than the digest: {pushed:?}"
    );
    // The digest printed is the one signed: verify resolves the tag to it.
    let out = run(env.plugin().args(["verify", &reference]));
    assert_success(&out, "verify");
    assert_eq!(stdout(&out).trim(), digest);

    assert_success(&run(env.docker().args(["rmi", &reference])), "docker rmi");
    let out = run(env.plugin().args(["pull", "--quiet", &reference]));
    assert_success(&out, "pull --quiet");
    assert_eq!(stdout(&out), format!("{digest}\n"), "{}", stderr(&out));
    let image = inspect(&env, &reference);
    assert!(
        image["RepoDigests"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("{repo}@{digest}"))),
        "{image}"
    );
}

#[test]
fn pull_quiet_of_an_unsigned_tag_prints_nothing_on_stdout_and_the_error_on_stderr() {
    let env = env();
    let repo = unique_repo(&stack().registry, "quiet-unsigned");
    docker_push(&env, &format!("{repo}:v1"), "never signed");
    let out = run(env.plugin().args(["pull", "-q", &format!("{repo}:v1")]));
    assert!(!out.status.success(), "an unsigned tag was pulled");
    assert_eq!(stdout(&out), "", "stdout must stay empty on failure");
    assert!(stderr(&out).contains("Error:"), "{}", stderr(&out));
}

/// The short ids docker shows for the layers of a local image (its diff ids, 12 hex digits).
fn layer_ids(env: &TestEnv, reference: &str) -> Vec<String> {
    inspect(env, reference)["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap()["sha256:".len()..][..12].to_string())
        .collect()
}

#[test]
fn push_on_a_terminal_shows_each_layer_id_with_its_bytes_and_a_log_gets_plain_lines() {
    let env = env();
    let repo = unique_repo(&stack().registry, "progress");
    let reference = format!("{repo}:v1");
    // Enough content that the engine reports bytes in flight.
    import_image(&env, &reference, &"layer bytes ".repeat(20_000));
    let ids = layer_ids(&env, &reference);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];

    // Under a pseudo-terminal (script(1)): stdout is a TTY.
    let out =
        run(env
            .cmd("script")
            .args(["-qec", &format!("{BIN} push {reference}"), "/dev/null"]));
    assert_success(&out, "push under script(1)");
    let screen = stdout(&out);
    assert!(
        screen.contains(&format!("{id}: Pushing")) && screen.contains(&format!("{id}: Pushed")),
        "no layer id {id} in the terminal output: {screen:?}"
    );
    // The bytes of the layer in flight, with docker's units.
    assert!(
        screen.contains("kB") && screen.contains("\x1b["),
        "no in-place byte counts: {screen:?}"
    );
    assert!(screen.contains("Successfully signed"), "{screen:?}");

    // A pipe: one line per step of each layer, no bars and no escape sequences.
    let again = format!("{repo}:v2");
    assert_success(
        &run(env.docker().args(["tag", &reference, &again])),
        "docker tag",
    );
    let out = run(env.plugin().args(["push", &again]));
    assert_success(&out, "push to a pipe");
    let log = stdout(&out);
    assert!(
        log.lines()
            .any(|l| l == format!("{id}: Layer already exists") || l == format!("{id}: Pushed")),
        "{log}"
    );
    assert!(!log.contains('\x1b') && !log.contains("[="), "{log}");
}

#[test]
fn man_pages_render_and_cover_every_command_and_flag() {
    let env = TestEnv::new();
    let out = run(env.plugin().arg("man"));
    assert_success(&out, "man");
    let page = env.home.join("docker-trust-acr.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = |page: &std::path::Path| {
        let out = run(env
            .cmd("groff")
            .args(["-man", "-Tutf8", "-P", "-cbou", "-ww", "-z"])
            .arg(page));
        // -z renders without output: only the warnings matter here.
        assert_success(&out, "groff");
        assert_eq!(stderr(&out), "", "groff warned about {}", page.display());
        let out = run(env
            .cmd("groff")
            .args(["-man", "-Tutf8", "-P", "-cbou"])
            .arg(page));
        assert_success(&out, "groff");
        stdout(&out)
    };
    let main = rendered(&page);
    // Every visible subcommand of the help is in the page.
    let help = stdout(&run(env.plugin().arg("--help")));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    for c in &commands {
        assert!(
            main.contains(&format!("docker-trust-acr-{c}(1)")),
            "{c} missing from the man page:\n{main}"
        );
    }
    assert!(
        !main.contains("docker-trust-acr-man"),
        "the hidden command is listed"
    );

    // One page per command, each rendering, with its own flags.
    let dir = env.home.join("man1");
    assert_success(
        &run(env.plugin().arg("man").arg("--dir").arg(&dir)),
        "man --dir",
    );
    for c in &commands {
        let page = dir.join(format!("docker-trust-acr-{c}.1"));
        assert!(page.exists(), "no page for {c}");
        rendered(&page);
    }
    let push = rendered(&dir.join("docker-trust-acr-push.1"));
    assert!(
        push.contains("--quiet") && push.contains("--notation"),
        "{push}"
    );
    let pull = rendered(&dir.join("docker-trust-acr-pull.1"));
    assert!(pull.contains("--platform"), "{pull}");
    rendered(&dir.join("docker-trust-acr-key-import.1"));
}

/// Uploads `bytes` as a blob of `repo` on the stack's open registry; returns its descriptor.
fn put_blob(env: &TestEnv, repo: &str, media_type: &str, bytes: &[u8]) -> Value {
    let (host, name) = repo.split_once('/').unwrap();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    let file = env.home.join(format!("blob-{}", next_id()));
    std::fs::write(&file, bytes).unwrap();
    let out = run(env.cmd("curl").args([
        "-sS",
        "-f",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "-X",
        "POST",
        &format!("http://{host}/v2/{name}/blobs/uploads/"),
    ]));
    assert_success(&out, "start blob upload");
    let location = stdout(&out)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .expect("upload location");
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = if location.starts_with("http") {
        location.clone()
    } else {
        format!("http://{host}{location}")
    };
    assert_success(
        &run(env
            .cmd("curl")
            .args([
                "-sS",
                "-f",
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
            ])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("{url}{sep}digest={digest}"))),
        "finish blob upload",
    );
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Puts `manifest` as `repo:reference`; returns its descriptor.
fn put_manifest(env: &TestEnv, repo: &str, reference: &str, manifest: &Value) -> Value {
    let (host, name) = repo.split_once('/').unwrap();
    let bytes = serde_json::to_vec(manifest).unwrap();
    let media_type = manifest["mediaType"].as_str().unwrap();
    let file = env.home.join(format!("manifest-{}", next_id()));
    std::fs::write(&file, &bytes).unwrap();
    assert_success(
        &run(env
            .cmd("curl")
            .args(["-sS", "-f", "-X", "PUT", "-H"])
            .arg(format!("Content-Type: {media_type}"))
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("http://{host}/v2/{name}/manifests/{reference}"))),
        "put manifest",
    );
    json!({
        "mediaType": media_type,
        "digest": format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        "size": bytes.len(),
    })
}

/// A one-file image for `os/arch[/variant]`, pushed by hand: returns the manifest's descriptor.
fn put_image(env: &TestEnv, repo: &str, platform: &str) -> Value {
    let dir = env.home.join(format!("layer-{}", next_id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("platform.txt"), platform).unwrap();
    let tar = dir.with_extension("tar");
    assert_success(
        &run(env
            .cmd("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("platform.txt")),
        "tar",
    );
    let layer_bytes = std::fs::read(&tar).unwrap();
    let layer = put_blob(
        env,
        repo,
        "application/vnd.oci.image.layer.v1.tar",
        &layer_bytes,
    );
    let parts: Vec<&str> = platform.split('/').collect();
    let mut config = json!({
        "os": parts[0],
        "architecture": parts[1],
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        "config": {},
    });
    if let Some(v) = parts.get(2) {
        config["variant"] = json!(v);
    }
    let config = put_blob(
        env,
        repo,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut d = put_manifest(env, repo, &format!("single-{}", next_id()), &manifest);
    let mut p = json!({"os": parts[0], "architecture": parts[1]});
    if let Some(v) = parts.get(2) {
        p["variant"] = json!(v);
    }
    d["platform"] = p;
    d
}

/// A signed OCI index of `platforms` as `repo:tag`; returns the index digest.
fn signed_index(env: &TestEnv, repo: &str, tag: &str, platforms: &[&str]) -> String {
    let manifests: Vec<Value> = platforms.iter().map(|p| put_image(env, repo, p)).collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let d = put_manifest(env, repo, tag, &index);
    let out = run(env.plugin().args(["sign", &format!("{repo}:{tag}")]));
    assert_success(&out, "sign the index");
    d["digest"].as_str().unwrap().to_string()
}

#[test]
fn pull_platform_takes_that_platforms_image_out_of_a_signed_index() {
    let env = env();
    let repo = unique_repo(&stack().registry, "platform");
    let index = signed_index(&env, &repo, "multi", &["linux/amd64", "linux/arm64/v8"]);
    let reference = format!("{repo}:multi");

    let out = run(env
        .plugin()
        .args(["pull", "--platform", "linux/arm64", "-q", &reference]));
    assert_success(&out, "pull --platform linux/arm64");
    assert_eq!(stdout(&out), format!("{index}\n"));
    let image = inspect(&env, &reference);
    assert_eq!(image["Architecture"], "arm64", "{image}");
    assert_eq!(image["Variant"], "v8", "{image}");
    assert!(
        image["RepoDigests"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("{repo}@{index}"))),
        "{image}"
    );

    // The other platform of the same signed index, into the same tag. The engine keeps one
    // image per `name@digest` ("Cannot overwrite digest"), as for docker pull: remove it first.
    assert_success(&run(env.docker().args(["rmi", &reference])), "docker rmi");
    let out = run(env
        .plugin()
        .args(["pull", "--platform", "linux/amd64", &reference]));
    assert_success(&out, "pull --platform linux/amd64");
    assert_eq!(inspect(&env, &reference)["Architecture"], "amd64");
}

#[test]
fn pull_platform_that_the_signed_index_lacks_tags_nothing() {
    let env = env();
    let repo = unique_repo(&stack().registry, "platform-none");
    signed_index(&env, &repo, "multi", &["linux/amd64", "linux/arm64/v8"]);
    let reference = format!("{repo}:multi");
    let out = run(env
        .plugin()
        .args(["pull", "--platform", "linux/s390x", &reference]));
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("linux/s390x"), "{err}");
    let out = run(env.docker().args(["image", "inspect", &reference]));
    assert!(
        !out.status.success(),
        "the tag was created: {}",
        stdout(&out)
    );
}

// See: #11 item 5
#[test]
fn pull_platform_of_a_signed_single_platform_image_of_another_platform_is_not_tagged() {
    let env = env();
    let repo = unique_repo(&stack().registry, "platform-single");
    // A signed image that is only arm64, not an index: the engine has no choice to make.
    let d = put_image(&env, &repo, "linux/arm64/v8");
    let digest = d["digest"].as_str().unwrap();
    let manifest = run(env.cmd("curl").args([
        "-sSf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!(
            "http://{}/v2/{}/manifests/{digest}",
            stack().registry,
            repo.split_once('/').unwrap().1
        ),
    ]));
    assert_success(&manifest, "get manifest");
    let m: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    put_manifest(&env, &repo, "arm", &m);
    assert_success(
        &run(env.plugin().args(["sign", &format!("{repo}:arm")])),
        "sign",
    );
    let reference = format!("{repo}:arm");
    let out = run(env
        .plugin()
        .args(["pull", "--platform", "linux/amd64", &reference]));
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    // dockerd 20.10 pulls a single-platform image whatever --platform says: the plugin's own
    // check is what refuses it.
    assert!(
        err.contains("asked for linux/amd64")
            && err.contains("is linux/arm64/v8")
            && err.contains("not tagged"),
        "{err}"
    );
    let out = run(env.docker().args(["image", "inspect", &reference]));
    assert!(
        !out.status.success(),
        "the tag was created: {}",
        stdout(&out)
    );
}
