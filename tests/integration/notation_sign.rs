//! Notary Project signatures written by this plugin on the real registry (distribution 2.8, no
//! referrers API, so the `sha256-<hex>` tag-schema index): keys, `sign --notation`, `push
//! --notation`, `migrate`. Every signature is checked by tests/notation_independent/verify.py,
//! a second verifier written from the specification that shares no code with the signer and
//! that, in the first test, verifies notation's own vector and refuses its expired one.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::harness::*;

fn verifier() -> PathBuf {
    repo_root().join("tests/notation_independent/verify.py")
}

/// Notation-written vectors (see the README there).
fn vector_dir() -> PathBuf {
    repo_root().join("tests/notation_independent/vectors")
}

pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

/// Runs the independent verifier on `repo:tag` (a `host:port/path` reference) with `certs` as
/// the trust store.
pub(crate) fn independent_verify(env: &TestEnv, reference: &str, certs: &[&Path]) -> (bool, Value) {
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let (host, path) = repo.split_once('/').unwrap();
    let mut cmd = env.cmd("python3");
    cmd.arg(verifier())
        .args(["--registry", host, "--repo", path, "--reference", tag]);
    for c in certs {
        cmd.arg("--trust-cert").arg(c);
    }
    let out = run(&mut cmd);
    let v = json(&out);
    (out.status.success(), v)
}

/// A test environment with the stack's engine and notary-server and a keyring namespace of its
/// own, so keys of other tests are not "the only key".
pub(crate) fn notation_env() -> TestEnv {
    let mut env = trust_env();
    env.set(
        "TRUSTACR_KEYRING_SERVICE",
        format!("docker-trustacr-nsign-{}-{}", std::process::id(), next_id()),
    );
    env
}

/// `key generate --notation NAME` in the env's home; returns the certificate path.
pub(crate) fn generate(env: &TestEnv, name: &str) -> PathBuf {
    let out = run(env
        .plugin()
        .current_dir(&env.home)
        .args(["key", "generate", "--notation", name])
        .args(["--subject", "C=US,ST=WA,O=Test Org,CN=trustacr test"]));
    assert_success(&out, "key generate --notation");
    let cert = env.home.join(format!("{name}.crt"));
    assert!(cert.is_file(), "{}", stdout(&out));
    cert
}

pub(crate) fn tags(env: &TestEnv, repo: &str) -> Vec<String> {
    let (host, path) = repo.split_once('/').unwrap();
    let out = run(env
        .cmd("curl")
        .args(["-sf", &format!("http://{host}/v2/{path}/tags/list")]));
    assert_success(&out, "tags/list");
    let v = json(&out);
    v["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn independent_verifier_accepts_notations_own_signature_and_refuses_the_expired_one() {
    let env = TestEnv::new();
    let v = vector_dir();
    let check = |case: &str| {
        let out = run(env
            .cmd("python3")
            .arg(verifier())
            .arg("--oci-layout")
            .arg(v.join("oci_layout").join(case))
            .args(["--reference", "v1", "--trust-cert"])
            .arg(v.join("localkeys/e2e.crt")));
        (out.status.success(), json(&out))
    };
    let (ok, good) = check("e2e-valid-signature");
    assert!(ok, "{good}");
    let (ok, expired) = check("e2e-expired-signature");
    assert!(!ok, "{expired}");
    assert!(
        expired["signatures"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("expiry"),
        "{expired}"
    );
}

#[test]
fn notation_signature_on_the_tag_schema_registry_verifies_independently_and_has_notations_shape() {
    let env = notation_env();
    let repo = unique_repo(&stack().registry, "nsign");
    let reference = format!("{repo}:v1");
    let (digest, size) = docker_push(&env, &reference, "notation signed");
    let cert = generate(&env, "release");
    let out = run(env.plugin().args(["sign", "--notation", &reference]));
    assert_success(&out, "sign --notation");
    assert!(
        stdout(&out).contains("tag-schema index"),
        "{}",
        stdout(&out)
    );
    assert!(tags(&env, &repo).contains(&format!("sha256-{}", &digest[7..])));

    let (ok, v) = independent_verify(&env, &reference, &[&cert]);
    assert!(ok, "{v}");
    assert_eq!(v["target"]["digest"], digest.as_str());
    assert_eq!(v["target"]["size"], size);
    let sig = &v["signatures"][0];
    assert_eq!(sig["shape"], "artifactType");
    assert_eq!(sig["alg"], "ES256");
    assert_eq!(sig["subject"], "CN=trustacr test,O=Test Org,ST=WA,C=US");

    // Field by field against the manifest and envelope notation wrote in its e2e vector.
    let (_, theirs) = {
        let out = run(env
            .cmd("python3")
            .arg(verifier())
            .arg("--oci-layout")
            .arg(vector_dir().join("oci_layout/e2e-valid-signature"))
            .args(["--reference", "v1", "--trust-cert"])
            .arg(vector_dir().join("localkeys/e2e.crt")));
        (out.status.success(), json(&out))
    };
    let theirs = &theirs["signatures"][0];
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let (ours_m, theirs_m) = (&sig["manifest"], &theirs["manifest"]);
    // notation v1.3 writes the legacy shape; the spec (and notation main) add artifactType with
    // the empty config, which is what we write.
    let mut expected = keys(theirs_m);
    expected.push("artifactType".into());
    expected.sort();
    assert_eq!(keys(ours_m), expected);
    assert_eq!(
        ours_m["artifactType"],
        "application/vnd.cncf.notary.signature"
    );
    assert_eq!(
        ours_m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(ours_m["config"]["digest"], theirs_m["config"]["digest"]);
    assert_eq!(ours_m["mediaType"], theirs_m["mediaType"]);
    assert_eq!(keys(&ours_m["layers"][0]), keys(&theirs_m["layers"][0]));
    assert_eq!(
        ours_m["layers"][0]["mediaType"],
        theirs_m["layers"][0]["mediaType"]
    );
    assert_eq!(keys(&ours_m["subject"]), keys(&theirs_m["subject"]));
    assert_eq!(keys(&ours_m["annotations"]), keys(&theirs_m["annotations"]));
    let (ours_e, theirs_e) = (&sig["envelope"], &theirs["envelope"]);
    assert_eq!(keys(ours_e), keys(theirs_e));
    assert_eq!(keys(&ours_e["header"]), keys(&theirs_e["header"]));
    let protected = |e: &Value| -> Value {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(e["protected"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&b).unwrap()
    };
    assert_eq!(keys(&protected(ours_e)), keys(&protected(theirs_e)));
    assert_eq!(protected(ours_e)["crit"], protected(theirs_e)["crit"]);
    assert_eq!(protected(ours_e)["cty"], protected(theirs_e)["cty"]);

    // A trust store without our certificate: the same signature is refused.
    let (ok, v) = independent_verify(&env, &reference, &[&vector_dir().join("localkeys/e2e.crt")]);
    assert!(!ok, "{v}");
}

#[test]
fn second_signer_is_added_to_the_tag_schema_index_without_losing_the_first() {
    let env = notation_env();
    let repo = unique_repo(&stack().registry, "ntwo");
    let reference = format!("{repo}:v1");
    docker_push(&env, &reference, "two signers");
    let first = generate(&env, "first");
    let second = generate(&env, "second");
    for key in ["first", "second"] {
        let out = run(env
            .plugin()
            .args(["sign", "--notation", "--notation-key", key, &reference]));
        assert_success(&out, "sign --notation");
    }
    for cert in [&first, &second] {
        let (ok, v) = independent_verify(&env, &reference, &[cert]);
        assert!(ok, "{v}");
        assert_eq!(v["signatures"].as_array().unwrap().len(), 2, "{v}");
    }
    // With two keys and none chosen, nothing is signed.
    let out = run(env.plugin().args(["sign", "--notation", &reference]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--notation-key"), "{}", stderr(&out));
}

#[test]
fn referrers_tag_holding_something_other_than_an_index_is_refused_and_left_unchanged() {
    let env = notation_env();
    let repo = unique_repo(&stack().registry, "nbadidx");
    let reference = format!("{repo}:v1");
    let (digest, _) = docker_push(&env, &reference, "hostile index");
    // The image manifest itself under the referrers tag: not an index.
    let squat = format!("{repo}:sha256-{}", &digest[7..]);
    assert_success(&run(env.docker().args(["tag", &reference, &squat])), "tag");
    assert_success(&run(env.docker().args(["push", &squat])), "push squat");
    generate(&env, "k");
    let out = run(env.plugin().args(["sign", "--notation", &reference]));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not an OCI image index") && stderr(&out).contains("left unchanged"),
        "{}",
        stderr(&out)
    );
    let (host, path) = repo.split_once('/').unwrap();
    let out = run(env.cmd("curl").args([
        "-sfI",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{host}/v2/{path}/manifests/sha256-{}", &digest[7..]),
    ]));
    assert!(
        stdout(&out).to_ascii_lowercase().contains(&digest),
        "the squatting tag moved:\n{}",
        stdout(&out)
    );
}

#[test]
fn push_notation_signs_exactly_the_pushed_digest() {
    let env = notation_env();
    let repo = unique_repo(&stack().registry, "npush");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "pushed with --notation");
    let cert = generate(&env, "pusher");
    let out = run(env.plugin().args(["push", "--notation", &reference]));
    assert_success(&out, "push --notation");
    let pushed = stdout(&out)
        .lines()
        .find_map(|l| l.split(": digest: ").nth(1))
        .and_then(|r| r.split(' ').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no digest line:\n{}", stdout(&out)));
    let (ok, v) = independent_verify(&env, &reference, &[&cert]);
    assert!(ok, "{v}");
    assert_eq!(v["target"]["digest"], pushed.as_str());
}

/// Writes the refusal fixtures with Python `cryptography`: each `<name>.key` + `<name>.crt`.
fn write_import_fixtures(dir: &Path) {
    let script = r#"
import datetime, sys, os
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, ed25519
d = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(full=True):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org")] if full else []
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
def cert(key, subject, issuer, signer, ku, start, end, ca=False):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
         .add_extension(ku, critical=True))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return b.sign(signer, None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256())
def ku(sign=True, encipher=False, certsign=False):
    return x509.KeyUsage(sign, False, encipher, False, False, certsign, certsign, False, False)
def write(n, key, certs):
    open(os.path.join(d, n + ".key"), "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(os.path.join(d, n + ".crt"), "wb").write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
y = datetime.timedelta(days=365)
ok = ec.generate_private_key(ec.SECP256R1())
k = ed25519.Ed25519PrivateKey.generate(); write("ed25519", k, [cert(k, name(), name(), k, ku(), now, now + y)])
k = rsa.generate_private_key(65537, 1024); write("rsa1024", k, [cert(k, name(), name(), k, ku(), now, now + y)])
write("keyencipherment", ok, [cert(ok, name(), name(), ok, ku(encipher=True), now, now + y)])
write("nosubject", ok, [cert(ok, name(False), name(False), ok, ku(), now, now + y)])
write("expired", ok, [cert(ok, name(), name(), ok, ku(), now - 2 * y, now - y)])
other = ec.generate_private_key(ec.SECP256R1())
write("mismatch", other, [cert(ok, name(), name(), ok, ku(), now, now + y)])
# A CA-issued RSA-2048 leaf: the accepted case.
ca = rsa.generate_private_key(65537, 2048)
caname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root CA")])
root = cert(ca, caname, caname, ca, ku(False, certsign=True), now, now + y, ca=True)
leaf = rsa.generate_private_key(65537, 2048)
write("caissued", leaf, [cert(leaf, name(), caname, ca, ku(), now, now + y), root])
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert_success(&out, "fixture generation");
}

#[test]
fn key_import_notation_refuses_each_bad_key_or_certificate_with_its_reason_and_stores_nothing() {
    let env = notation_env();
    let dir = env.home.join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    write_import_fixtures(&dir);
    let import = |name: &str| {
        run(env.plugin().args(["key", "import", "--notation"]).args([
            dir.join(format!("{name}.key")),
            dir.join(format!("{name}.crt")),
        ]))
    };
    for (case, reason) in [
        ("ed25519", "Ed25519"),
        ("rsa1024", "RSA-1024"),
        ("keyencipherment", "keyEncipherment"),
        ("nosubject", "lacks C, ST, O"),
        ("expired", "not valid now"),
        ("mismatch", "does not match the leaf"),
    ] {
        let out = import(case);
        assert!(!out.status.success(), "{case} was accepted");
        assert!(
            stderr(&out).contains(reason) && stderr(&out).contains("Nothing was stored"),
            "{case}: {}",
            stderr(&out)
        );
    }
    // Nothing was stored: signing still finds no key at all.
    let repo = unique_repo(&stack().registry, "nimport");
    let reference = format!("{repo}:v1");
    docker_push(&env, &reference, "ca issued");
    let out = run(env.plugin().args(["sign", "--notation", &reference]));
    assert!(
        stderr(&out).contains("no Notary Project signing key"),
        "{}",
        stderr(&out)
    );

    // A CA-issued RSA-2048 key and chain is accepted and signs PS256 that verifies against the
    // root in the trust store.
    assert_success(&import("caissued"), "import caissued");
    assert_success(
        &run(env.plugin().args(["sign", "--notation", &reference])),
        "sign with the imported key",
    );
    let chain = std::fs::read_to_string(dir.join("caissued.crt")).unwrap();
    let root_pem = &chain[chain.rfind("-----BEGIN CERTIFICATE-----").unwrap()..];
    let root = dir.join("root.crt");
    std::fs::write(&root, root_pem).unwrap();
    let (ok, v) = independent_verify(&env, &reference, &[&root]);
    assert!(ok, "{v}");
    assert_eq!(v["signatures"][0]["alg"], "PS256");
    // The name is taken: a second import never replaces the key.
    let out = import("caissued");
    assert!(
        stderr(&out).contains("already in the keyring"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrate_co_signs_twenty_dct_tags_to_parity_and_a_second_run_signs_nothing() {
    let env = notation_env();
    let repo = unique_repo(&stack().registry, "nmigrate");
    let refs: Vec<String> = (0..20).map(|i| format!("{repo}:t{i}")).collect();
    for (i, r) in refs.iter().enumerate() {
        // Ten digests, two tags each: tags that share a digest share one signature.
        if i % 2 == 0 {
            docker_push(&env, r, &format!("image {i}"));
        } else {
            assert_success(&run(env.docker().args(["tag", &refs[i - 1], r])), "tag");
            assert_success(&run(env.docker().args(["push", r])), "push");
        }
    }
    let mut sign = env.plugin();
    sign.arg("sign").args(&refs);
    assert_success(&run(&mut sign), "DCT sign of 20 tags");
    let cert = generate(&env, "migrator");

    let out = run(env
        .plugin()
        .args(["migrate", &repo, "--dry-run", "--format", "json"]));
    assert_success(&out, "migrate --dry-run");
    let v = json(&out);
    assert_eq!(v["tags"], 20, "{v}");
    assert_eq!(v["notation_signed"], 0);
    assert!(!tags(&env, &repo).iter().any(|t| t.starts_with("sha256-")));

    let out = run(env.plugin().args(["migrate", &repo, "--format", "json"]));
    assert_success(&out, "migrate");
    let v = json(&out);
    assert_eq!(v["tags"], 20, "{v}");
    assert_eq!(v["notation_signed"], 20);
    assert_eq!(v["new_signatures"], 10);
    assert_eq!(v["parity"], true);
    for r in ["t0", "t7", "t19"] {
        let (ok, out) = independent_verify(&env, &format!("{repo}:{r}"), &[&cert]);
        assert!(ok, "{out}");
    }
    // The referrers tags it created are not tags to migrate.
    let out = run(env.plugin().args(["migrate", &repo]));
    assert_success(&out, "second migrate");
    let text = stdout(&out);
    assert!(text.contains("20/20 tags; 0 new signature(s)"), "{text}");
    assert!(text.contains("Parity complete"), "{text}");
    assert!(text.contains("disabling DCT deletes"), "{text}");
    assert!(!text.contains("signed (new)"), "{text}");
}

#[test]
fn on_acr_migrate_signs_through_the_referrers_api_and_verify_notation_accepts_the_signature() {
    let host = stack().acr_host.clone();
    // A DCT-signed image pushed by the signer identity through the emulator.
    let reference = crate::acr_e2e::signed_image_on(&host, "nacr");
    let (repo, _) = reference.rsplit_once(':').unwrap();
    let mut env = crate::acr_e2e::env_on(&host, "signer");
    let cert = generate(&env, "acr");
    let out = run(env.plugin().args(["migrate", repo, "--format", "json"]));
    assert_success(&out, "migrate on ACR");
    let v = json(&out);
    assert_eq!(v["tags"], 1, "{v}");
    assert_eq!(v["new_signatures"], 1, "{v}");
    assert_eq!(v["parity"], true, "{v}");
    let out = run(env.plugin().args(["sign", "--notation", &reference]));
    assert_success(&out, "sign --notation on ACR");
    assert!(stdout(&out).contains("referrers API"), "{}", stdout(&out));
    let again = run(env.plugin().args(["migrate", repo, "--format", "json"]));
    assert_success(&again, "second migrate on ACR");
    assert_eq!(json(&again)["new_signatures"], 0);

    // The verify side (its own discovery and verification core) accepts what was written here.
    env.set(
        "NOTATION_CONFIG",
        env.home.join("notation").display().to_string(),
    );
    let init = run(env
        .plugin()
        .args(["policy", "init", repo, "--cert"])
        .arg(&cert));
    assert_success(&init, "policy init");
    let out = run(env
        .plugin()
        .args(["verify", "--notation", "--format", "json", &reference]));
    assert_success(&out, "verify --notation");
    let v = json(&out);
    assert_eq!(v["notation"]["discovery"], "referrers API", "{v}");
}

/// A plain-HTTP registry that serves one manifest for every tag and answers a blob upload with
/// a `Location` on `upload_to`; counts requests, stops on drop.
struct UploadElsewhere {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl UploadElsewhere {
    fn start(upload_to: Option<String>) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let hits = std::sync::Arc::new(AtomicUsize::new(0));
        let (s, h) = (stop.clone(), hits.clone());
        let handle = std::thread::spawn(move || {
            let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut peek = [0u8; 1];
                if conn.peek(&mut peek).is_err() || peek[0] == 0x16 {
                    continue; // TLS: close, the client falls back to plain HTTP on loopback
                }
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let mut parts = first.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, ct, body, extra): (&str, &str, &[u8], String) =
                    match (method, upload_to.as_deref()) {
                        ("GET", _) if path.contains("/manifests/") => (
                            "200 OK",
                            "application/vnd.oci.image.manifest.v1+json",
                            manifest,
                            String::new(),
                        ),
                        ("POST", Some(to)) => (
                            "202 Accepted",
                            "text/plain",
                            b"",
                            format!("Location: {to}\r\n"),
                        ),
                        ("GET", _) if path == "/v2/" => {
                            ("200 OK", "application/json", b"{}", String::new())
                        }
                        _ => ("404 Not Found", "text/plain", b"404", String::new()),
                    };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(body);
                let mut rest = [0u8; 1024];
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(100)));
                let _ = reader.read(&mut rest);
            }
        });
        UploadElsewhere {
            addr,
            stop,
            hits,
            handle: Some(handle),
        }
    }
}

impl Drop for UploadElsewhere {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn a_blob_upload_location_on_another_host_is_refused_and_that_host_gets_nothing() {
    let elsewhere = UploadElsewhere::start(None);
    let registry =
        UploadElsewhere::start(Some(format!("http://{}/upload?state=x", elsewhere.addr)));
    let env = notation_env();
    generate(&env, "k");
    let reference = format!("{}/app:v1", registry.addr);
    let out = run(env.plugin().args(["sign", "--notation", &reference]));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not on the registry's own host"),
        "{}",
        stderr(&out)
    );
    assert_eq!(elsewhere.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn push_signatures_both_in_the_settings_makes_push_write_dct_and_notary_project_signatures() {
    let env = notation_env();
    std::fs::write(
        env.config.join("trustacr.json"),
        r#"{"push_signatures":"both"}"#,
    )
    .unwrap();
    let repo = unique_repo(&stack().registry, "nboth");
    let reference = format!("{repo}:v1");
    import_image(&env, &reference, "both kinds");
    let cert = generate(&env, "both");
    let out = run(env.plugin().args(["push", &reference]));
    assert_success(&out, "push with push_signatures both");
    let (ok, v) = independent_verify(&env, &reference, &[&cert]);
    assert!(ok, "{v}");
    let dct = run(env.plugin().args(["verify", &reference]));
    assert_success(&dct, "DCT verify");
    assert_eq!(stdout(&dct).trim(), v["target"]["digest"].as_str().unwrap());
}

/// The P-521 fixture: a test root and a P-521 leaf it issued (tests/data/notation/p521).
fn p521_fixture(file: &str) -> PathBuf {
    repo_root().join("tests/data/notation/p521").join(file)
}

#[test]
fn a_p521_key_and_chain_import_sign_es512_that_both_verifiers_accept() {
    let mut env = notation_env();
    env.set(
        "NOTATION_CONFIG",
        env.home.join("notation").display().to_string(),
    );
    let repo = unique_repo(&stack().registry, "np521");
    let reference = format!("{repo}:v1");
    let (pushed, _) = docker_push(&env, &reference, "p521 signed");
    let out = run(env
        .plugin()
        .args(["key", "import", "--notation"])
        .arg(p521_fixture("signer.key"))
        .arg(p521_fixture("chain.pem"))
        .args(["--name", "p521"]));
    assert_success(&out, "key import --notation of a P-521 key");
    assert_success(
        &run(env.plugin().args(["sign", "--notation", &reference])),
        "sign --notation with the P-521 key",
    );
    let root = p521_fixture("root.crt");
    let (ok, v) = independent_verify(&env, &reference, &[&root]);
    assert!(ok, "{v}");
    assert_eq!(v["signatures"][0]["alg"], "ES512", "{v}");
    assert_eq!(v["target"]["digest"], pushed.as_str());

    // Our own verifier, through notation's trust store and policy, anchored at the P-521 root.
    let out = run(env
        .plugin()
        .args(["policy", "init", &repo, "--cert"])
        .arg(&root));
    assert_success(&out, "policy init with the P-521 root");
    let out = run(env
        .plugin()
        .args(["verify", "--notation", "--format", "json", &reference]));
    assert_success(&out, "verify --notation of the ES512 signature");
    let v = json(&out);
    assert_eq!(v["digest"], pushed.as_str());
    assert!(
        v["notation"]["signer"]
            .as_str()
            .unwrap()
            .contains("CN=P-521 test signer"),
        "{v}"
    );
}
