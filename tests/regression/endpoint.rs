//! Regression tests: see main.rs. Area: references, endpoints, TLS, token realms.
//!
//! Proven on the wire in tests/integration/endpoint.rs:
//! - `acr_loopback_registry_with_an_untrusted_certificate_gets_no_token` (#8 item 3)
//! - `login_refuses_a_registry_that_is_not_acr` (#8 item 3)
//! - `reference_with_a_hash_in_the_host_gets_no_sign_in` (#8 item 2)
//!
//! The reference table from docker's own tests is a unit test in src/reference.rs
//! (`accepted_references_match_dockers_tests`, `bad_references_are_refused_with_a_reason`,
//! audit P1-W4), and the parser is fuzzed by fuzz/fuzz_targets/reference.rs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use docker_trustacr::dockercfg::credentials::Credential;
use docker_trustacr::reference::{ImageRef, ReferenceProblem};
use docker_trustacr::registry::auth::{AuthError, Authenticator, Challenge};
use docker_trustacr::registry::endpoint::{Endpoint, EndpointError, RegistryHost, Tls};
use docker_trustacr::secret::Secret;
use url::Url;

/// A plain-HTTP server on 127.0.0.1 that counts connections, records what arrives and answers
/// every request with a token. Stopped and joined on drop.
struct Recorder {
    port: u16,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, received, stop) =
                (connections.clone(), received.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut tcp) = conn else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tcp.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).into_owned();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else {
                            continue;
                        };
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            received.lock().unwrap().push_str(&text);
                            let answer = r#"{"token":"recorded","access_token":"recorded"}"#;
                            let _ = write!(
                                tcp,
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                                answer.len()
                            );
                            break;
                        }
                    }
                }
            })
        };
        Recorder {
            port,
            connections,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn received(&self) -> String {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn client() -> reqwest::Client {
    docker_trustacr::registry::install_crypto_provider();
    reqwest::Client::new()
}

fn bearer(realm: String) -> Challenge {
    Challenge::Bearer {
        realm,
        service: Some("registry.example".into()),
        scope: None,
    }
}

fn basic_credential() -> Credential {
    Credential::Basic {
        username: "user".into(),
        password: Secret::new("hunter2-password"),
    }
}

fn refresh_credential() -> Credential {
    Credential::IdentityToken {
        username: None,
        token: Secret::new("acr-refresh-token-value"),
    }
}

/// A plain-HTTP loopback endpoint (docker's insecure-registry fallback), so a recorder can
/// stand in for it.
fn plain_endpoint(port: u16) -> Endpoint {
    let host = RegistryHost::parse(&format!("127.0.0.1:{port}")).unwrap();
    Endpoint::registry(&host, false)
        .plain_http_fallback()
        .unwrap()
}

// See: #8 item 2
#[test]
fn reference_with_a_hash_in_the_host_is_refused_as_invalid_format() {
    for input in [
        "localhost#.azurecr.io/app:v1",
        "evil.example?.azurecr.io/app:v1",
        "evil.example\\.azurecr.io/app:v1",
        "localhost%23.azurecr.io/app:v1",
    ] {
        let err = ImageRef::parse(input).unwrap_err();
        assert_eq!(err.problem(), ReferenceProblem::InvalidFormat, "{input}");
        assert!(
            err.to_string().contains("invalid reference format"),
            "{err}"
        );
    }
}

// See: #8 item 2
#[test]
fn is_acr_is_decided_on_the_parsed_host_not_the_text() {
    let image = ImageRef::parse("contoso.azurecr.io/team/app:v1").unwrap();
    assert!(image.registry.is_acr(&[]));
    for host in [
        "azurecr.io.evil.example",
        "contoso.azurecr.io.evil.example",
        "contosoazurecr.io",
        "localhost",
    ] {
        assert!(!RegistryHost::parse(host).unwrap().is_acr(&[]), "{host}");
    }
    // An ACR endpoint is verified even on loopback; a plain loopback registry is not.
    let lo = RegistryHost::parse("127.0.0.1:5000").unwrap();
    assert_eq!(Endpoint::registry(&lo, true).tls(), Tls::Verify);
    assert_eq!(
        Endpoint::registry(&lo, false).tls(),
        Tls::SkipVerifyLoopback
    );
}

// See: #8 item 2
#[test]
fn trust_server_url_with_userinfo_query_path_or_fragment_is_refused() {
    let host = RegistryHost::parse("r.example").unwrap();
    for value in [
        "https://user:secret@notary.example",
        "https://notary.example/?x=1",
        "https://notary.example/#f",
        "https://notary.example/base",
        "http://notary.example",
    ] {
        match Endpoint::notary(Some(value), &host, false) {
            Err(EndpointError::BadServerUrl { value: shown, .. }) => {
                assert!(!shown.contains("secret"), "{shown}")
            }
            other => panic!("{value}: {other:?}"),
        }
    }
}

// See: #8 item 13
#[tokio::test]
async fn credentials_never_go_to_a_plain_http_realm_named_over_https() {
    let realm = Recorder::start();
    let http = client();
    let https_server = Url::parse("https://registry.example/v2/").unwrap();
    for credential in [basic_credential(), refresh_credential()] {
        let auth = Authenticator::new(credential);
        let err = auth
            .answer(
                &http,
                &bearer(realm.url("/token")),
                "repository:a:pull",
                &https_server,
            )
            .await
            .err()
            .expect("a downgrade must be refused");
        assert!(
            matches!(err, AuthError::RealmRefused { why, .. } if why.contains("plain HTTP")),
            "{err}"
        );
    }
    assert_eq!(realm.connections(), 0, "{}", realm.received());

    // The recorder works: a registry itself on plain HTTP (loopback) gets Basic credentials.
    let plain_server = Url::parse(&realm.url("/v2/")).unwrap();
    Authenticator::new(basic_credential())
        .answer(
            &http,
            &bearer(realm.url("/token")),
            "repository:a:pull",
            &plain_server,
        )
        .await
        .unwrap();
    assert!(
        realm.received().contains("authorization: Basic"),
        "{}",
        realm.received()
    );
}

// See: #8 item 13
#[tokio::test]
async fn acr_refresh_token_goes_only_to_the_login_servers_token_endpoint() {
    let login_server = Recorder::start();
    let elsewhere = Recorder::start();
    let http = client();
    let ep = plain_endpoint(login_server.port);
    let server = Url::parse(&login_server.url("/v2/")).unwrap();
    for realm in [
        elsewhere.url("/oauth2/token"),
        login_server.url("/oauth2/exchange"),
        login_server.url("/token"),
    ] {
        let auth = Authenticator::new(refresh_credential()).refresh_token_only_to(&ep);
        let err = auth
            .answer(&http, &bearer(realm.clone()), "repository:a:pull", &server)
            .await
            .err()
            .unwrap_or_else(|| panic!("{realm} must be refused"));
        assert!(matches!(err, AuthError::RealmRefused { .. }), "{err}");
    }
    assert_eq!(elsewhere.connections(), 0, "{}", elsewhere.received());
    assert_eq!(login_server.connections(), 0, "{}", login_server.received());

    // Its own /oauth2/token gets the grant (so the silence above was the refusal).
    Authenticator::new(refresh_credential())
        .refresh_token_only_to(&ep)
        .answer(
            &http,
            &bearer(login_server.url("/oauth2/token")),
            "repository:a:pull",
            &server,
        )
        .await
        .unwrap();
    let seen = login_server.received();
    assert!(seen.starts_with("POST /oauth2/token "), "{seen}");
    assert!(
        seen.contains("refresh_token=acr-refresh-token-value"),
        "{seen}"
    );
}

// See: #13 item 5
#[tokio::test]
async fn acr_access_token_uses_the_one_refresh_grant() {
    let login_server = Recorder::start();
    let ep = plain_endpoint(login_server.port);
    let token = docker_trustacr::acr::access_token(
        &client(),
        &ep,
        "registry.example",
        &Secret::new("acr-refresh-token-value"),
        "repository:team/app:pull,push",
    )
    .await
    .unwrap();
    assert_eq!(token.token.expose(), "recorded");
    let seen = login_server.received();
    assert!(seen.starts_with("POST /oauth2/token "), "{seen}");
    for field in [
        "grant_type=refresh_token",
        "service=registry.example",
        "scope=repository%3Ateam%2Fapp%3Apull%2Cpush",
        "refresh_token=acr-refresh-token-value",
        "client_id=docker-trustacr",
    ] {
        assert!(seen.contains(field), "{field} in {seen}");
    }
}

// See: #8 item 16
#[test]
fn authorization_header_values_are_marked_sensitive() {
    use docker_trustacr::registry::auth::Authorization;
    let v = Authorization::Bearer(Secret::new("t")).header_value();
    assert!(v.is_sensitive());
    assert_eq!(v.to_str().unwrap(), "Bearer t");
    assert_eq!(format!("{v:?}"), "Sensitive");
}
