//! Where tokens may go, proven on the wire: a recording TLS server stands in for an ACR login
//! server on loopback, and records every byte a client sends it after the handshake.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::*;

/// A CA and a leaf for `127.0.0.1` signed by it, made with openssl (a stack requirement) in
/// `dir`. Nothing trusts this CA unless a test puts it in a `tls/` directory.
fn make_ca_and_leaf(env: &TestEnv, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (leaf, leaf_key, csr) = (
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
        dir.join("leaf.csr"),
    );
    let ext = dir.join("ext.cnf");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let openssl = |args: &mut std::process::Command| assert_success(&run(args), "openssl");
    openssl(
        env.cmd("openssl")
            .args([
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=untrusted test CA",
            ])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    );
    openssl(
        env.cmd("openssl")
            .args(["req", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .arg("-keyout")
            .arg(&leaf_key)
            .arg("-out")
            .arg(&csr),
    );
    openssl(
        env.cmd("openssl")
            .args(["x509", "-req", "-days", "1", "-CAcreateserial", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&leaf),
    );
    (ca, leaf, leaf_key)
}

/// A TLS server on `127.0.0.1` that records what clients send after the handshake and answers
/// every request with 500. Stopped and joined on drop, also when the test fails.
struct RecordingTlsServer {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingTlsServer {
    fn start(cert_pem: &Path, key_pem: &Path) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let der = |p: &Path| {
            pem::parse(std::fs::read(p).unwrap())
                .unwrap()
                .into_contents()
        };
        let certs = vec![CertificateDer::from(der(cert_pem))];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der(key_pem)));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = conn else { continue };
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(tls) = rustls::ServerConnection::new(config.clone()) else {
                        continue;
                    };
                    let mut stream = rustls::StreamOwned::new(tls, tcp);
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Read one request (headers and a short body), record it, answer 500.
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                        received.lock().unwrap().extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request);
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                let _ = stream.write_all(
                                    b"HTTP/1.1 500 recorded\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                                );
                                let _ = stream.flush();
                                break;
                            }
                        }
                    }
                }
            })
        };
        RecordingTlsServer {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

impl Drop for RecordingTlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An environment signed in to Entra (the emulator's, trusted through SSL_CERT_FILE) as the
/// signer, with `host` configured as ACR.
fn entra_env(host: &str) -> TestEnv {
    let stack = stack();
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stack.acr_identities).unwrap()).unwrap();
    let signer = ids["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "signer" || i["name"] == "signer")
        .unwrap()
        .clone();
    let mut env = TestEnv::new();
    env.set("DOCKER_HOST", &stack.docker_host);
    env.set(
        "AZURE_AUTHORITY_HOST",
        format!("https://{}", stack.acr_host),
    );
    env.set("SSL_CERT_FILE", stack.notary_ca.to_str().unwrap());
    for (var, key) in [
        ("AZURE_TENANT_ID", "tenant_id"),
        ("AZURE_CLIENT_ID", "client_id"),
        ("AZURE_CLIENT_SECRET", "client_secret"),
    ] {
        env.set(var, signer[key].as_str().unwrap());
    }
    std::fs::write(
        env.config.join("trustacr.json"),
        format!(r#"{{"acr_registries":["{host}"]}}"#),
    )
    .unwrap();
    env
}

// See: #8 item 3 (and item 2's "never send the token over TLS that was not verified").
#[test]
fn acr_loopback_registry_with_an_untrusted_certificate_gets_no_token() {
    let env0 = TestEnv::new();
    let (ca, leaf, key) = make_ca_and_leaf(&env0, &env0.home.join("untrusted"));
    let server = RecordingTlsServer::start(&leaf, &key);
    let host = server.host();
    let env = entra_env(&host);
    let reference = format!("{host}/t/app:v1");

    let out = run(env.plugin().args(["verify", &reference]));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("certificate"), "the refusal names TLS:\n{err}");
    let seen = server.received();
    assert!(
        seen.is_empty(),
        "nothing may be sent over unverified TLS, got:\n{seen}"
    );

    // The same server, trusted as docker trusts a private CA: now the exchange goes to it (the
    // recorder sees it, so its silence above was the plugin's refusal, not a broken server).
    let dir = env.config.join("tls").join(&host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&ca, dir.join("ca.crt")).unwrap();
    let out = run(env.plugin().args(["verify", &reference]));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let seen = server.received();
    assert!(seen.starts_with("POST /oauth2/exchange "), "{seen}");
    assert!(seen.contains("access_token="), "{seen}");
}

// See: #8 item 3.
#[test]
fn login_refuses_a_registry_that_is_not_acr() {
    let env0 = TestEnv::new();
    let (_, leaf, key) = make_ca_and_leaf(&env0, &env0.home.join("untrusted"));
    let server = RecordingTlsServer::start(&leaf, &key);
    // Signed in to Entra, but the host is not configured as ACR.
    let env = entra_env("other.example");
    std::fs::write(
        env.config.join("config.json"),
        r#"{"credsStore":"secretservice"}"#,
    )
    .unwrap();
    for host in [server.host(), "localhost#.azurecr.io".to_string()] {
        let out = run(env.plugin().args(["login", &host]));
        assert_ne!(out.status.code(), Some(0), "{host}");
        let err = stderr(&out);
        assert!(
            err.contains("not an Azure Container Registry login server")
                || err.contains("is not a registry host"),
            "{host}: {err}"
        );
        assert!(!err.contains("signed in to Entra"), "{err}");
    }
    assert!(server.received().is_empty(), "{}", server.received());
}

// See: #8 item 2
#[test]
fn reference_with_a_hash_in_the_host_gets_no_sign_in() {
    // Signed in to Entra, so nothing but the reference check stands between the token and the
    // host the text names.
    let env = entra_env("other.example");
    let out = run(env
        .plugin()
        .args(["-D", "verify", "localhost#.azurecr.io/app:v1"]));
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("invalid reference format"), "{all}");
    assert!(!all.contains("signed in to Entra"), "{all}");
    assert!(!all.contains("HTTP POST"), "{all}");
}
