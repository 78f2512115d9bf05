//! The ACR emulator on the real backends, with curl and docker only (not the plugin): Entra
//! sign-in, the refresh-token exchange, scoped access tokens that the real registry and the
//! real notary-server accept, `docker login` and `docker push` through it, and Entra's errors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::harness::*;

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

/// One HTTP exchange, as curl saw it.
pub(crate) struct Http {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: String,
}

impl Http {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The first value of a header (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// `curl` against the emulator with the stack's CA; `args` are extra curl arguments.
pub(crate) fn curl(url: &str, args: &[&str]) -> Http {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(&stack().notary_ca)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    assert_success(&out, &format!("curl {url}"));
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap();
    // With redirects or 100-continue there may be several header blocks; keep the last.
    let all = std::fs::read_to_string(&headers).unwrap_or_default();
    let last = all
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or("")
        .to_string();
    Http {
        status: code.trim().parse().unwrap(),
        headers: last,
        body: body.to_string(),
    }
}

/// curl arguments for a form POST.
fn form(fields: &[(&str, &str)]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|(k, v)| ["--data-urlencode".to_string(), format!("{k}={v}")])
        .collect()
}

fn post_form(url: &str, fields: &[(&str, &str)]) -> Http {
    let args = form(fields);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(url, &args)
}

pub(crate) fn acr_url(path: &str) -> String {
    format!("https://{}{path}", stack().acr_host)
}

/// The test identity with this label (`signer`, `pusher`, `reader`, `wi`).
fn identity(label: &str) -> Value {
    let text = std::fs::read_to_string(&stack().acr_identities).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == label)
        .unwrap_or_else(|| panic!("no identity {label}"))
        .clone()
}

fn field(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
        .to_string()
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Entra client-credentials sign-in with a secret.
fn entra_token_with_secret(base: &str, client_id: &str, secret: &str) -> Http {
    post_form(
        &format!("{base}/{}/oauth2/v2.0/token", stack().acr_tenant),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", ACR_SCOPE),
        ],
    )
}

fn exchange(base: &str, entra_access_token: &str) -> Http {
    post_form(
        &format!("{base}/oauth2/exchange"),
        &[
            ("grant_type", "access_token"),
            ("service", &stack().acr_host),
            ("tenant", &stack().acr_tenant),
            ("access_token", entra_access_token),
        ],
    )
}

/// An ACR refresh token for a test identity that has a client secret.
pub(crate) fn refresh_token(label: &str) -> String {
    let id = identity(label);
    let base = acr_url("");
    let r = entra_token_with_secret(
        &base,
        &field(&id, "client_id"),
        &field(&id, "client_secret"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exchange(&base, &field(&r.json(), "access_token"));
    assert_eq!(r.status, 200, "{}", r.body);
    field(&r.json(), "refresh_token")
}

/// An ACR access token for these scopes (the refresh grant, several scopes in one field as
/// docker sends them).
pub(crate) fn access_token(refresh: &str, scopes: &[&str]) -> (String, Value) {
    let joined = scopes.join(" ");
    let r = post_form(
        &acr_url("/oauth2/token"),
        &[
            ("grant_type", "refresh_token"),
            ("service", &stack().acr_host),
            ("scope", &joined),
            ("refresh_token", refresh),
            ("client_id", "docker"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = field(&r.json(), "access_token");
    let access = claims(&t)["access"].clone();
    (t, access)
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Uploads a blob through the emulator (POST, then PUT to the Location it hands out).
pub(crate) fn upload_blob(token: &str, repo: &str, data: &[u8], dir: &Path) -> String {
    let digest = format!("sha256:{}", sha256_hex(data));
    let start = curl(
        &acr_url(&format!("/v2/{repo}/blobs/uploads/")),
        &["-X", "POST", "-H", &bearer(token)],
    );
    assert_eq!(start.status, 202, "{}", start.body);
    let location = start.header("location").expect("a Location");
    assert!(
        location.starts_with(&acr_url("/v2/")),
        "the upload URL points at the emulator, not the backend: {location}"
    );
    let file = dir.join(digest.replace(':', "_"));
    std::fs::write(&file, data).unwrap();
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = curl(
        &format!("{location}{sep}digest={digest}"),
        &[
            "-X",
            "PUT",
            "-H",
            &bearer(token),
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    assert_eq!(put.status, 201, "{}", put.body);
    digest
}

#[test]
fn client_secret_sign_in_gives_tokens_the_real_registry_accepts() {
    let stack = stack();
    let realm = format!(r#"realm="https://{}/oauth2/token""#, stack.acr_host);

    // Without a token: the registry's 401, its challenge pointing at the emulator.
    let r = curl(&acr_url("/v2/"), &[]);
    assert_eq!(r.status, 401, "{}", r.body);
    let challenge = r.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(&realm), "{challenge}");
    assert!(
        challenge.contains(&format!(r#"service="{}""#, stack.acr_host)),
        "{challenge}"
    );
    let r = curl(&acr_url("/v2/acrstack/app/manifests/v1"), &[]);
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"scope="repository:acrstack/app:pull""#),
        "{challenge}"
    );

    // Entra: client credentials with a secret.
    let id = identity("signer");
    let r = entra_token_with_secret(
        &acr_url(""),
        &field(&id, "client_id"),
        &field(&id, "client_secret"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let entra = claims(&field(&body, "access_token"));
    assert_eq!(entra["aud"], "https://containerregistry.azure.net");
    assert_eq!(entra["tid"], stack.acr_tenant.as_str());
    assert_eq!(entra["oid"], id["object_id"]);
    assert_eq!(entra["appid"], id["client_id"]);

    // The exchange: an ACR refresh token bound to this registry.
    let r = exchange(&acr_url(""), &field(&body, "access_token"));
    assert_eq!(r.status, 200, "{}", r.body);
    let refresh = field(&r.json(), "refresh_token");
    let rc = claims(&refresh);
    assert_eq!(rc["iss"], "Azure Container Registry");
    assert_eq!(rc["aud"], stack.acr_host.as_str());
    assert_eq!(rc["grant_type"], "refresh_token");
    assert_eq!(rc["tenant"], stack.acr_tenant.as_str());
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&stack.acr_config).unwrap()).unwrap();
    let lifetime = config["refresh_token_lifetime_secs"]
        .as_u64()
        .expect("stack.sh writes refresh_token_lifetime_secs");
    assert_eq!(
        rc["exp"].as_u64().unwrap() - rc["iat"].as_u64().unwrap(),
        lifetime
    );

    // An access token for pull and push, and the catalog.
    let (token, access) = access_token(
        &refresh,
        &["repository:acrstack/app:pull,push", "registry:catalog:*"],
    );
    assert_eq!(
        access,
        json!([
            {"type": "repository", "name": "acrstack/app", "actions": ["pull", "push"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );
    let tc = claims(&token);
    assert_eq!(tc["aud"], stack.acr_host.as_str());
    assert_eq!(tc["iss"], "Azure Container Registry");
    assert!(tc["exp"].as_u64().unwrap() > tc["iat"].as_u64().unwrap());

    let r = curl(&acr_url("/v2/"), &["-H", &bearer(&token)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );

    // A manifest pushed blob by blob through the emulator (upload Locations rewritten), then
    // read back by tag, and listed in the catalog.
    let dir = tempfile::tempdir().unwrap();
    let config_blob =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a tar, the registry does not look".repeat(100);
    let config_digest = upload_blob(&token, "acrstack/app", config_blob, dir.path());
    let layer_digest = upload_blob(&token, "acrstack/app", &layer, dir.path());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_blob.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": layer_digest}],
    })
    .to_string();
    let mt = "Content-Type: application/vnd.docker.distribution.manifest.v2+json";
    let r = curl(
        &acr_url("/v2/acrstack/app/manifests/v1"),
        &[
            "-X",
            "PUT",
            "-H",
            &bearer(&token),
            "-H",
            mt,
            "--data-binary",
            &manifest,
        ],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    assert_eq!(r.header("docker-content-digest"), Some(digest.clone()));

    let accept = "Accept: application/vnd.docker.distribution.manifest.v2+json";
    let r = curl(
        &acr_url("/v2/acrstack/app/manifests/v1"),
        &["-H", &bearer(&token), "-H", accept],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, manifest);
    // HEAD keeps the length and digest headers.
    let r = curl(
        &acr_url("/v2/acrstack/app/manifests/v1"),
        &["-I", "-H", &bearer(&token), "-H", accept],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(manifest.len().to_string()));
    assert_eq!(r.header("docker-content-digest"), Some(digest));
    let r = curl(
        &acr_url(&format!("/v2/acrstack/app/blobs/{layer_digest}")),
        &["-H", &bearer(&token)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_bytes(), &layer[..]);

    let r = curl(&acr_url("/v2/_catalog"), &["-H", &bearer(&token)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["repositories"]
            .as_array()
            .unwrap()
            .contains(&json!("acrstack/app")),
        "{}",
        r.body
    );

    // A token for another repository does not open this one.
    let (other, _) = access_token(&refresh, &["repository:acrstack/other:pull"]);
    let r = curl(
        &acr_url("/v2/acrstack/app/manifests/v1"),
        &["-H", &bearer(&other), "-H", accept],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").unwrap().contains(&realm));
}

#[test]
fn roles_limit_the_granted_actions_and_the_registry_enforces_them() {
    let stack = stack();
    let gun = format!("{}/acrstack/roles", stack.acr_host);
    let gun_scope = format!("repository:{gun}:pull,push");
    let want = ["repository:acrstack/roles:pull,push", gun_scope.as_str()];

    let (_, signer) = access_token(&refresh_token("signer"), &want);
    assert_eq!(signer[0]["actions"], json!(["pull", "push"]));
    assert_eq!(signer[1]["actions"], json!(["pull", "push"]), "{signer}");

    // AcrPush alone: push to the registry, but only pull on the Notary repository.
    let (_, pusher) = access_token(&refresh_token("pusher"), &want);
    assert_eq!(pusher[0]["actions"], json!(["pull", "push"]));
    assert_eq!(pusher[1]["actions"], json!(["pull"]), "{pusher}");

    // AcrPull: pull only, and the registry refuses an upload with that token.
    let (reader_token, reader) = access_token(&refresh_token("reader"), &want);
    assert_eq!(reader[0]["actions"], json!(["pull"]));
    assert_eq!(reader[1]["actions"], json!(["pull"]));
    let r = curl(
        &acr_url("/v2/acrstack/roles/blobs/uploads/"),
        &["-X", "POST", "-H", &bearer(&reader_token)],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[test]
fn docker_login_and_push_through_the_emulator() {
    let stack = stack();
    let env = TestEnv::new();
    // Credentials in config.json, not in the stack's shared keyring (where other tests keep
    // theirs for the same host): an auths entry stops the CLI picking a default helper.
    std::fs::write(
        env.config.join("config.json"),
        r#"{"auths": {"example.invalid": {}}}"#,
    )
    .unwrap();
    let refresh = refresh_token("pusher");
    let docker = |args: &[&str]| {
        let mut c = env.docker();
        c.args(["-H", &stack.docker_host]).args(args);
        c
    };

    // dockerd treats 127.0.0.0/8 as insecure: HTTPS without verification, so the stack CA it
    // does not know is no obstacle. Login is the Basic GET with offline_token=true.
    let mut login = docker(&[
        "login",
        &stack.acr_host,
        "-u",
        NULL_GUID,
        "--password-stdin",
    ]);
    login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(refresh.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "docker login");
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    // What docker keeps is the identity token, not the password.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(env.config.join("config.json")).unwrap())
            .unwrap();
    let entry = &saved["auths"][stack.acr_host.as_str()];
    assert!(entry["identitytoken"].is_string(), "{saved}");
    assert_eq!(
        claims(entry["identitytoken"].as_str().unwrap())["grant_type"],
        "refresh_token"
    );

    let src = env.home.join("rootfs");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "hello through the ACR emulator\n").unwrap();
    let tar = env.home.join("rootfs.tar");
    assert_success(
        &run(env
            .cmd("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&tar)
            .arg("hello.txt")),
        "tar",
    );
    let image = format!("{}/acrstack/pushed:v1", stack.acr_host);
    assert_success(
        &run(&mut docker(&["import", tar.to_str().unwrap(), &image])),
        "docker import",
    );
    let out = run(&mut docker(&["push", &image]));
    assert_success(&out, "docker push");
    assert!(
        stdout(&out).contains("v1: digest: sha256:"),
        "{}",
        stdout(&out)
    );
    assert_success(&run(&mut docker(&["rmi", &image])), "docker rmi");

    // The image is in the token-auth registry behind the emulator.
    let (token, _) = access_token(&refresh, &["repository:acrstack/pushed:pull"]);
    let r = curl(
        &acr_url("/v2/acrstack/pushed/tags/list"),
        &["-H", &bearer(&token)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tags"], json!(["v1"]));
}

#[test]
fn notary_server_behind_the_emulator_takes_gun_scoped_tokens() {
    let stack = stack();
    let gun = format!("{}/acrstack/signed", stack.acr_host);
    let key_url = acr_url(&format!("/v2/{gun}/_trust/tuf/timestamp.key"));
    let scope = format!("repository:{gun}:pull,push");

    // Without a token: notary-server's challenge, realm rewritten to the emulator.
    let r = curl(&acr_url(&format!("/v2/{gun}/_trust/tuf/root.json")), &[]);
    assert_eq!(r.status, 401, "{}", r.body);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(&format!(
            r#"realm="https://{}/oauth2/token""#,
            stack.acr_host
        )),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(r#"scope="repository:{gun}:pull""#)),
        "{challenge}"
    );

    // AcrImageSigner: the server-held timestamp key, and no trust data yet.
    let (signer, access) = access_token(&refresh_token("signer"), &[&scope]);
    assert_eq!(access[0]["actions"], json!(["pull", "push"]));
    let r = curl(&key_url, &["-H", &bearer(&signer)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["keytype"].is_string(), "{}", r.body);
    let r = curl(
        &acr_url(&format!("/v2/{gun}/_trust/tuf/root.json")),
        &["-H", &bearer(&signer)],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["errors"][0]["code"], "METADATA_NOT_FOUND");

    // AcrPull and AcrPush alone get pull only, which notary-server refuses for the key.
    for who in ["reader", "pusher"] {
        let (token, access) = access_token(&refresh_token(who), &[&scope]);
        assert_eq!(access[0]["actions"], json!(["pull"]), "{who}");
        let r = curl(&key_url, &["-H", &bearer(&token)]);
        assert!(
            r.status == 401 || r.status == 403,
            "{who}: {} {}",
            r.status,
            r.body
        );
    }
}

#[test]
fn entra_and_acr_errors_have_the_real_shapes() {
    let stack = stack();
    let base = acr_url("");
    let signer = identity("signer");

    let r = entra_token_with_secret(&base, &field(&signer, "client_id"), "not-the-secret");
    assert_eq!(r.status, 401, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"], "invalid_client");
    assert!(
        field(&e, "error_description")
            .starts_with("AADSTS7000215: Invalid client secret provided."),
        "{e}"
    );
    assert_eq!(e["error_codes"], json!([7000215]));
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(e[k].is_string(), "{k} in {e}");
    }

    let r = entra_token_with_secret(&base, "11111111-2222-3333-4444-555555555555", "x");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error_codes"], json!([700016]));

    let r = post_form(
        &format!("{base}/{}/oauth2/v2.0/token", stack.acr_tenant),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &field(&signer, "client_id")),
            ("client_secret", &field(&signer, "client_secret")),
            ("scope", "https://containerregistry.azure.net/"),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_scope");

    // The exchange refuses a forged token, and a good one for another service.
    let good = field(
        &entra_token_with_secret(
            &base,
            &field(&signer, "client_id"),
            &field(&signer, "client_secret"),
        )
        .json(),
        "access_token",
    );
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let mut c = claims(&good);
    c["oid"] = json!(identity("reader")["object_id"]);
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    let forged = parts.join(".");
    let r = exchange(&base, &forged);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["errors"][0]["code"], "UNAUTHORIZED");
    let r = post_form(
        &format!("{base}/oauth2/exchange"),
        &[
            ("grant_type", "access_token"),
            ("service", "other.azurecr.io"),
            ("access_token", &good),
        ],
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["errors"][0]["code"], "UNAUTHORIZED");

    // The token endpoint: a Basic GET with the null GUID works, a wrong password does not.
    let refresh = refresh_token("reader");
    let url = acr_url(&format!(
        "/oauth2/token?service={}&scope=repository:acrstack/app:pull",
        stack.acr_host
    ));
    let r = curl(&url, &["-u", &format!("{NULL_GUID}:{refresh}")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["access_token"].is_string());
    let r = curl(&url, &["-u", &format!("{NULL_GUID}:{forged}")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["errors"][0]["code"], "UNAUTHORIZED");
    let r = curl(&url, &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn workload_identity_signs_in_with_a_federated_assertion() {
    let id = identity("wi");
    let assertion = std::fs::read_to_string(field(&id, "federated_token_file")).unwrap();
    let url = acr_url(&format!("/{}/oauth2/v2.0/token", stack().acr_tenant));
    let fields = |a: &str| {
        post_form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &field(&id, "client_id")),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", a),
                ("scope", ACR_SCOPE),
            ],
        )
    };
    let r = fields(assertion.trim());
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exchange(&acr_url(""), &field(&r.json(), "access_token"));
    assert_eq!(r.status, 200, "{}", r.body);
    let gun = format!("{}/acrstack/wi", stack().acr_host);
    let (_, access) = access_token(
        &field(&r.json(), "refresh_token"),
        &[&format!("repository:{gun}:pull,push")],
    );
    assert_eq!(access[0]["actions"], json!(["pull", "push"]));

    // Another subject matches no federated credential.
    let mut c = claims(assertion.trim());
    c["sub"] = json!("system:serviceaccount:other:ci");
    let other = format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(c.to_string()));
    let r = fields(&other);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error_codes"], json!([70021]));
}

#[test]
fn stats_count_each_entra_exchange_and_token_call_exactly() {
    // A private emulator: no other test's calls are counted (audit P1-W10).
    let em = start_emulator(json!({}), Name::Stack);
    let stats = || curl(&format!("{}/_emulator/stats", em.base), &[]).json();
    let before = stats();
    let id = identity("signer");
    let r = entra_token_with_secret(
        &em.base,
        &field(&id, "client_id"),
        &field(&id, "client_secret"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exchange(&em.base, &field(&r.json(), "access_token"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_form(
        &format!("{}/oauth2/token", em.base),
        &[
            ("grant_type", "refresh_token"),
            ("service", &stack().acr_host),
            ("scope", "repository:acrstack/stats:pull"),
            ("refresh_token", &field(&r.json(), "refresh_token")),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let after = stats();
    for k in ["entra_token", "exchange", "token"] {
        assert_eq!(
            after[k].as_u64().unwrap(),
            before[k].as_u64().unwrap() + 1,
            "{k}: {before} -> {after}"
        );
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A second emulator on the same backends, with its own settings; killed on drop.
pub struct Emulator {
    child: Child,
    /// `https://127.0.0.1:PORT`
    pub base: String,
    /// `127.0.0.1:PORT`
    pub host: String,
}

impl Emulator {
    /// The emulator's call counters (`/_emulator/stats`).
    pub fn stats(&self) -> Value {
        curl(&format!("{}/_emulator/stats", self.base), &[]).json()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator binary the stack runs, as stack.sh wrote it into stack.env. A stack without it
/// fails the test rather than skipping it silently (audit P1-M7).
fn emulator_binary() -> PathBuf {
    let bin = stack().acr_emulator_bin.clone().unwrap_or_else(|| {
        panic!("stack.env names no TRUSTACR_ACR_EMULATOR_BIN: restart the stack with this scripts/stack.sh")
    });
    assert!(
        bin.exists(),
        "the ACR emulator {} does not exist",
        bin.display()
    );
    bin
}

/// Under which name a second emulator answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// The stack's login server, which the backends trust: for curl-level tests.
    Stack,
    /// Its own address, as a registry of its own: the plugin and dockerd can use it. Its access
    /// tokens still carry the backends' service.
    Own,
}

/// Starts a second emulator on the stack's backends with `changes` to its configuration.
pub fn start_emulator(changes: Value, name: Name) -> Emulator {
    let bin = emulator_binary();
    let stack = stack();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&stack.acr_config).unwrap()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    config["listen"] = json!(host);
    if name == Name::Own {
        config["login_server"] = json!(host);
        config["backend_service"] = json!(stack.acr_host);
    }
    for (k, v) in changes.as_object().unwrap() {
        config[k] = v.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let child = Command::new(bin)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let em = Emulator {
        child,
        base: format!("https://{host}"),
        host,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(&stack.notary_ca)
            .arg(format!("{}/_emulator/stats", em.base))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if ok {
            return em;
        }
        assert!(
            Instant::now() < deadline,
            "the second emulator did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn short_lifetimes_make_refresh_tokens_expire() {
    let em = start_emulator(
        json!({
            "refresh_token_lifetime_secs": 5,
            "access_token_lifetime_secs": 1,
            "token_header": "x5c",
        }),
        Name::Stack,
    );
    let stack = stack();
    let id = identity("signer");
    let r = entra_token_with_secret(
        &em.base,
        &field(&id, "client_id"),
        &field(&id, "client_secret"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exchange(&em.base, &field(&r.json(), "access_token"));
    assert_eq!(r.status, 200, "{}", r.body);
    let refresh = field(&r.json(), "refresh_token");
    let token_form = |rt: &str| {
        post_form(
            &format!("{}/oauth2/token", em.base),
            &[
                ("grant_type", "refresh_token"),
                ("service", &stack.acr_host),
                ("scope", "repository:acrstack/short:pull"),
                ("refresh_token", rt),
            ],
        )
    };
    let r = token_form(&refresh);
    assert_eq!(r.status, 200, "{}", r.body);
    let token = field(&r.json(), "access_token");
    // This emulator names its key by x5c: the registry takes that as well as kid.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(header["x5c"].is_array(), "{header}");
    let c = claims(&token);
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 1);
    let r = curl(&format!("{}/v2/", em.base), &["-H", &bearer(&token)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // distribution allows 60 s of clock skew, so the registry would still take the expired
    // access token; the emulator's own refresh grant is strict.
    let left = (c["iat"].as_u64().unwrap() + 5 + 1).saturating_sub(now_secs());
    std::thread::sleep(Duration::from_secs(left));
    let r = token_form(&refresh);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["errors"][0]["code"], "UNAUTHORIZED");
}
