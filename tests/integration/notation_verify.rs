//! `verify --notation` and `policy init` against real registries: a signature that notation
//! wrote (the e2e vectors: image, signature manifest and `sha256-<hex>` index) is pushed with
//! plain HTTP PUTs into the stack's registry (distribution 2.8: tag schema only), then
//! verified; a tag moved to an unsigned manifest, a certificate outside the trust store, a
//! signature manifest for another subject and an oversized envelope are refused; a hostile
//! registry whose referrers `Link` points elsewhere gets no request through to that host.
//! Through the ACR emulator, the same signatures are found with the referrers API, paged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::*;

fn vectors() -> PathBuf {
    repo_root().join("tests/data/notation")
}

fn layout_blob(layout: &str, digest: &str) -> Vec<u8> {
    std::fs::read(
        vectors()
            .join("oci_layout")
            .join(layout)
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// curl against the plain-HTTP registry; returns the HTTP status.
fn curl(env: &TestEnv, args: &[&str], body: Option<&Path>) -> u16 {
    let mut c = env.cmd("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args);
    if let Some(b) = body {
        c.arg("--data-binary").arg(format!("@{}", b.display()));
    }
    let out = run(&mut c);
    stdout(&out).trim().parse().unwrap_or(0)
}

fn put_blob(env: &TestEnv, repo: &str, bytes: &[u8]) -> String {
    let registry = &stack().registry;
    let digest = sha(bytes);
    let file = env.home.join(format!("blob-{}", next_id()));
    std::fs::write(&file, bytes).unwrap();
    // distribution 2.8: POST opens an upload session, PUT to its Location closes it.
    let url = format!("http://{registry}/v2/{repo}/blobs/uploads/");
    let out = run(env
        .cmd("curl")
        .args(["-s", "-X", "POST", "-D", "-", "-o", "/dev/null", &url]));
    let headers = stdout(&out);
    let location = headers
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in:\n{headers}"));
    let location = if location.starts_with('/') {
        format!("http://{registry}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{sep}digest={digest}");
    let status = curl(
        env,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            &put,
        ],
        Some(&file),
    );
    assert_eq!(status, 201, "blob upload of {digest}");
    digest
}

fn put_manifest(env: &TestEnv, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let registry = &stack().registry;
    let file = env.home.join(format!("manifest-{}", next_id()));
    std::fs::write(&file, bytes).unwrap();
    let url = format!("http://{registry}/v2/{repo}/manifests/{reference}");
    let ct = format!("Content-Type: {media_type}");
    let status = curl(env, &["-X", "PUT", "-H", &ct, &url], Some(&file));
    assert_eq!(status, 201, "manifest PUT {repo}:{reference}");
}

/// Writes a tag-schema referrers index for `subject` that lists one signature manifest.
fn put_referrers_index(env: &TestEnv, repo: &str, subject: &str, signature: &str, size: usize) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": signature, "size": size,
                       "artifactType": "application/vnd.cncf.notary.signature"}],
    });
    let tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
    put_manifest(
        env,
        repo,
        &tag,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
}

struct Pushed {
    /// `host/repo`
    name: String,
    subject: String,
    signature_manifest: String,
}

/// Pushes a notation e2e layout (every blob, the image as `v1`, signature manifests by digest,
/// the referrers index under its `sha256-<hex>` tag) into a fresh repository.
fn push_layout(env: &TestEnv, layout: &str) -> Pushed {
    let name = unique_repo(&stack().registry, "notation");
    let repo = name.split_once('/').unwrap().1.to_string();
    let dir = vectors().join("oci_layout").join(layout);
    for e in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        put_blob(env, &repo, &std::fs::read(e.unwrap().path()).unwrap());
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut subject = String::new();
    let mut signature_manifest = String::new();
    let mut indexes = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let digest = m["digest"].as_str().unwrap();
        let mt = m["mediaType"].as_str().unwrap();
        let bytes = layout_blob(layout, digest);
        match m["annotations"]["org.opencontainers.image.ref.name"].as_str() {
            Some("v1") => {
                put_manifest(env, &repo, "v1", mt, &bytes);
                subject = digest.to_string();
            }
            Some(tag) => indexes.push((tag.to_string(), mt.to_string(), bytes)),
            None => {
                put_manifest(env, &repo, digest, mt, &bytes);
                signature_manifest = digest.to_string();
            }
        }
    }
    // distribution 2.8 refuses an index naming manifests it does not have: indexes last.
    for (tag, mt, bytes) in indexes {
        put_manifest(env, &repo, &tag, &mt, &bytes);
    }
    Pushed {
        name,
        subject,
        signature_manifest,
    }
}

/// An environment whose notation config trusts `cert` for `name` (through `policy init`).
fn notation_env(name: &str, cert: &str) -> TestEnv {
    let mut env = trust_env();
    let config = env.home.join("notation");
    env.set("NOTATION_CONFIG", config.display().to_string());
    let out = run(env
        .plugin()
        .args(["policy", "init", name, "--cert"])
        .arg(vectors().join(cert)));
    assert_success(&out, "policy init");
    env
}

fn verify_notation(env: &TestEnv, reference: &str) -> std::process::Output {
    run(env
        .plugin()
        .args(["verify", "--notation", "--format", "json", reference]))
}

#[test]
fn a_notation_signature_verifies_on_the_registry_through_the_tag_schema() {
    let setup = trust_env();
    let p = push_layout(&setup, "e2e-valid-signature");
    let env = notation_env(&p.name, "localkeys/e2e.crt");
    let out = verify_notation(&env, &format!("{}:v1", p.name));
    assert_success(&out, "verify --notation");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["digest"], p.subject.as_str());
    assert_eq!(v["notation"]["discovery"], "tag schema");
    assert_eq!(v["notation"]["signature"], p.signature_manifest.as_str());
    assert!(v["notation"]["signer"].as_str().unwrap().contains("CN=e2e"));
    // The written policy is notation's format, for this repository, trusting exactly e2e.crt.
    let policy: Value = serde_json::from_slice(
        &std::fs::read(env.home.join("notation/trustpolicy.oci.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(policy["version"], "1.0");
    assert_eq!(
        policy["trustPolicies"][0]["registryScopes"][0],
        p.name.as_str()
    );
    assert!(
        policy["trustPolicies"][0]["trustedIdentities"][0]
            .as_str()
            .unwrap()
            .starts_with("x509.subject: ")
    );
}

#[test]
fn a_signature_by_a_certificate_outside_the_trust_store_is_refused() {
    let setup = trust_env();
    let p = push_layout(&setup, "e2e-valid-signature");
    let env = notation_env(&p.name, "localkeys/new_e2e.crt");
    let out = verify_notation(&env, &format!("{}:v1", p.name));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("authenticity"), "{}", stderr(&out));
}

#[test]
fn an_expired_notation_signature_is_refused_by_its_expiry() {
    let setup = trust_env();
    let p = push_layout(&setup, "e2e-expired-signature");
    let env = notation_env(&p.name, "localkeys/e2e.crt");
    let out = verify_notation(&env, &format!("{}:v1", p.name));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("expiry check failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_tag_moved_to_an_unsigned_manifest_is_refused() {
    let setup = trust_env();
    let p = push_layout(&setup, "e2e-valid-signature");
    let repo = p.name.split_once('/').unwrap().1;
    // The same image manifest with one more space: another digest, which nobody signed.
    let mut moved = layout_blob("e2e-valid-signature", &p.subject);
    moved.push(b' ');
    put_manifest(
        &setup,
        repo,
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        &moved,
    );
    let env = notation_env(&p.name, "localkeys/e2e.crt");
    let out = verify_notation(&env, &format!("{}:v1", p.name));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no Notary Project signature") && err.contains(&sha(&moved)),
        "{err}"
    );
}

#[test]
fn an_index_listing_the_signature_of_another_subject_is_refused() {
    let setup = trust_env();
    let p = push_layout(&setup, "e2e-valid-signature");
    let repo = p.name.split_once('/').unwrap().1;
    let mut moved = layout_blob("e2e-valid-signature", &p.subject);
    moved.push(b' ');
    put_manifest(
        &setup,
        repo,
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        &moved,
    );
    // A hostile index for the new digest, listing the genuine signature of the old one.
    let sig = layout_blob("e2e-valid-signature", &p.signature_manifest);
    put_referrers_index(&setup, repo, &sha(&moved), &p.signature_manifest, sig.len());
    let env = notation_env(&p.name, "localkeys/e2e.crt");
    let out = verify_notation(&env, &format!("{}:v1", p.name));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("not of {}", sha(&moved))), "{err}");
}

#[test]
fn an_oversized_envelope_is_refused_before_it_is_downloaded() {
    let setup = trust_env();
    let p = push_layout(&setup, "e2e-valid-signature");
    let repo = p.name.split_once('/').unwrap().1;
    let big = vec![b'{'; 2 * 1024 * 1024];
    let big_digest = put_blob(&setup, repo, &big);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": big_digest, "size": big.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": p.subject,
                    "size": layout_blob("e2e-valid-signature", &p.subject).len()},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha(&bytes);
    put_manifest(
        &setup,
        repo,
        &digest,
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    );
    put_referrers_index(&setup, repo, &p.subject, &digest, bytes.len());
    let env = notation_env(&p.name, "localkeys/e2e.crt");
    let out = verify_notation(&env, &format!("{}:v1", p.name));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("over the 1048576-byte limit"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn policy_init_refuses_to_replace_a_statement_without_force_and_refuses_a_bad_certificate() {
    let setup = trust_env();
    let name = unique_repo(&stack().registry, "policy");
    let env = notation_env(&name, "localkeys/e2e.crt");
    let again = run(env
        .plugin()
        .args(["policy", "init", &name, "--cert"])
        .arg(vectors().join("localkeys/new_e2e.crt")));
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = run(env
        .plugin()
        .args([
            "policy", "init", &name, "--force", "--store", "other", "--cert",
        ])
        .arg(vectors().join("localkeys/new_e2e.crt")));
    assert_success(&forced, "policy init --force");
    // A certificate notation would refuse as a signing certificate (not self-signed here: the
    // stack's notary TLS CA is a CA, so use a leaf without the required key usage instead).
    let bad = setup.home.join("bad.crt");
    let out = run(setup
        .cmd("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "/dev/null",
            "-subj",
            "/C=US/ST=WA/O=x/CN=bad",
            "-days",
            "30",
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-out",
        ])
        .arg(&bad));
    assert_success(&out, "openssl req");
    let refused = run(env
        .plugin()
        .args(["policy", "init", &name, "--force", "--cert"])
        .arg(&bad));
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("keyEncipherment"),
        "{}",
        stderr(&refused)
    );
}

/// A plain-HTTP registry that serves one tag and a referrers page whose `Link` points to
/// `next`; stops on drop.
struct Hostile {
    addr: String,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    fn start(manifest: Vec<u8>, link: Option<String>) -> (Self, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (stop.clone(), hits.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                serve(&mut conn, &manifest, link.as_deref());
            }
        });
        (
            Hostile {
                addr,
                stop,
                handle: Some(handle),
            },
            hits,
        )
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(conn: &mut TcpStream, manifest: &[u8], link: Option<&str>) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut peek = [0u8; 1];
    if conn.peek(&mut peek).is_err() || peek[0] == 0x16 {
        return; // a TLS ClientHello: close, the client falls back to plain HTTP
    }
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() || !first.starts_with("GET ") {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = first.split(' ').nth(1).unwrap_or("");
    let (status, ct, body, extra): (&str, &str, Vec<u8>, String) = if path == "/v2/" {
        ("200 OK", "application/json", b"{}".to_vec(), String::new())
    } else if path.contains("/manifests/") {
        (
            "200 OK",
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_vec(),
            String::new(),
        )
    } else if path.contains("/referrers/") {
        let extra = link
            .map(|l| format!("Link: <{l}>; rel=\"next\"\r\n"))
            .unwrap_or_default();
        (
            "200 OK",
            "application/vnd.oci.image.index.v1+json",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec(),
            extra,
        )
    } else {
        (
            "404 Not Found",
            "text/plain",
            b"404".to_vec(),
            String::new(),
        )
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

#[test]
fn a_referrers_link_to_another_host_is_refused_and_that_host_gets_no_request() {
    let manifest = layout_blob(
        "e2e-valid-signature",
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
    );
    let (elsewhere, elsewhere_hits) = Hostile::start(manifest.clone(), None);
    let link = format!(
        "http://{}/v2/app/referrers/sha256:{}?n=1",
        elsewhere.addr,
        "0".repeat(64)
    );
    let (registry, _) = Hostile::start(manifest, Some(link));
    let name = format!("{}/app", registry.addr);
    let env = notation_env(&name, "localkeys/e2e.crt");
    let out = verify_notation(&env, &format!("{name}:v1"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("outside the registry"),
        "{}",
        stderr(&out)
    );
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0);
}

/// Pushes the image of the e2e layouts and, for the same subject, the signature manifests of
/// `layouts` in that order, through the ACR emulator (no tag-schema index: the referrers API
/// must find them). Returns `host/repo` and the last signature manifest's push answer.
fn push_to_acr(layouts: &[&str]) -> (String, crate::acr_stack::Http) {
    use crate::acr_stack::{access_token, acr_url, bearer, curl, refresh_token, upload_blob};
    let repo = format!("t/notation-acr-{}-{}", std::process::id(), next_id());
    let (token, _) = access_token(
        &refresh_token("signer"),
        &[&format!("repository:{repo}:pull,push")],
    );
    let dir = tempfile::tempdir().unwrap();
    let put = |reference: &str, mt: &str, bytes: &[u8]| {
        let file = dir.path().join(format!("m-{}", next_id()));
        std::fs::write(&file, bytes).unwrap();
        let r = curl(
            &acr_url(&format!("/v2/{repo}/manifests/{reference}")),
            &[
                "-X",
                "PUT",
                "-H",
                &bearer(&token),
                "-H",
                &format!("Content-Type: {mt}"),
                "--data-binary",
                &format!("@{}", file.display()),
            ],
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r
    };
    let mut last = None;
    for (i, layout) in layouts.iter().enumerate() {
        let ldir = vectors().join("oci_layout").join(layout);
        for e in std::fs::read_dir(ldir.join("blobs/sha256")).unwrap() {
            upload_blob(
                &token,
                &repo,
                &std::fs::read(e.unwrap().path()).unwrap(),
                dir.path(),
            );
        }
        let index: Value =
            serde_json::from_slice(&std::fs::read(ldir.join("index.json")).unwrap()).unwrap();
        for m in index["manifests"].as_array().unwrap() {
            let digest = m["digest"].as_str().unwrap();
            let mt = m["mediaType"].as_str().unwrap();
            let bytes = layout_blob(layout, digest);
            match m["annotations"]["org.opencontainers.image.ref.name"].as_str() {
                Some("v1") if i == 0 => {
                    put("v1", mt, &bytes);
                }
                None => last = Some(put(digest, mt, &bytes)),
                _ => {}
            }
        }
    }
    (format!("{}/{repo}", stack().acr_host), last.unwrap())
}

#[test]
fn signatures_on_acr_are_found_through_the_referrers_api_across_pages() {
    // Two refused signatures fill the emulator's first page; the valid one is on the second.
    let (name, pushed) = push_to_acr(&[
        "e2e-expired-signature",
        "e2e-invalid-signature",
        "e2e-valid-signature",
    ]);
    assert_eq!(
        pushed.header("oci-subject").as_deref(),
        Some("sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9")
    );
    let mut env = crate::acr_e2e::env_on(&stack().acr_host, "reader");
    let config = env.home.join("notation");
    env.set("NOTATION_CONFIG", config.display().to_string());
    let init = run(env
        .plugin()
        .args(["policy", "init", &name, "--cert"])
        .arg(vectors().join("localkeys/e2e.crt")));
    assert_success(&init, "policy init");
    let out = verify_notation(&env, &format!("{name}:v1"));
    assert_success(&out, "verify --notation on ACR");
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["notation"]["discovery"], "referrers API");
    assert_eq!(
        v["notation"]["signature"],
        "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"
    );
}

#[test]
fn the_emulators_referrers_api_filters_pages_and_needs_the_registrys_credentials() {
    use crate::acr_stack::{access_token, acr_url, bearer, curl, refresh_token};
    let (name, _) = push_to_acr(&[
        "e2e-expired-signature",
        "e2e-invalid-signature",
        "e2e-valid-signature",
    ]);
    let repo = name.split_once('/').unwrap().1;
    let path = format!(
        "/v2/{repo}/referrers/sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9?artifactType=application%2Fvnd.cncf.notary.signature"
    );
    let anonymous = curl(&acr_url(&path), &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let (token, _) = access_token(
        &refresh_token("reader"),
        &[&format!("repository:{repo}:pull")],
    );
    let first = curl(&acr_url(&path), &["-H", &bearer(&token)]);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.header("oci-filters-applied").as_deref(),
        Some("artifactType")
    );
    assert_eq!(first.json()["manifests"].as_array().unwrap().len(), 2);
    let link = first.header("link").expect("a Link to the second page");
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(u, _)| u.to_string())
        .unwrap_or_else(|| panic!("{link}"));
    assert!(
        next.starts_with(&format!("/v2/{repo}/referrers/")),
        "{next}"
    );
    let second = curl(&acr_url(&next), &["-H", &bearer(&token)]);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.json()["manifests"].as_array().unwrap().len(), 1);
    assert!(second.header("link").is_none());
}

#[test]
fn pull_prints_the_kinds_that_verified_and_refuses_what_the_policy_lacks() {
    let mut env = trust_env();
    let config = env.home.join("notation");
    env.set("NOTATION_CONFIG", config.display().to_string());
    let repo = unique_repo(&stack().registry, "policy-pull");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "signed with DCT only");
    assert_success(
        &run(env.plugin().args(["push", &reference])),
        "trustacr push",
    );
    assert_success(&run(env.docker().args(["rmi", &reference])), "docker rmi");

    // DCT only: notation is required, so nothing is pulled.
    let out = run(env
        .plugin()
        .args(["pull", "--policy", "notation", &reference]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no Notary Project signature"),
        "{}",
        stderr(&out)
    );
    let inspect = run(env.docker().args(["image", "inspect", &reference]));
    assert!(!inspect.status.success(), "the unverified image was pulled");

    // Either kind: DCT verifies, and pull says which kind did.
    let out = run(env
        .plugin()
        .args(["pull", "--policy", "either", &reference]));
    assert_success(&out, "pull --policy either");
    assert!(
        stdout(&out).contains(&format!("Verified {reference}: Docker Content Trust")),
        "{}",
        stdout(&out)
    );
    // Both kinds: the Notary Project signature is missing.
    let out = run(env.plugin().args(["pull", "--policy", "both", &reference]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("policy both needs both kinds"),
        "{}",
        stderr(&out)
    );
}
