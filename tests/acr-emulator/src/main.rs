//! A test-only emulator of Azure Container Registry's front door and Microsoft Entra ID's token
//! endpoint, in front of a real distribution registry and a real notary-server that both run
//! with token auth.
//!
//! Usage: `acr-emulator CONFIG.json` (see `config.rs`). Endpoints, all over HTTPS:
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: Entra client credentials (secret or federated assertion)
//! - `POST /oauth2/exchange`: Entra access token → ACR refresh token
//! - `POST /oauth2/token`, `GET /oauth2/token` (Basic): ACR access tokens in docker
//!   distribution's format, with the subset of the requested actions the roles allow
//! - `/v2/…`: proxied, `/v2/<GUN>/_trust/…` to notary-server, the rest to the registry,
//!   except `GET /v2/<name>/referrers/<digest>`, served here (`referrers.rs`)
//! - `GET|PATCH /subscriptions/…`: Azure Resource Manager for this registry (`arm.rs`)
//! - `GET /_emulator/stats`: call counters
//! - `POST /_emulator/throttle` `{"status": 429, "count": N, "retry_after": "2"}`: the next N
//!   requests to `/oauth2/token` and `/oauth2/exchange` are answered with that status and
//!   `Retry-After` (omitted when `retry_after` is absent); `count` 0 ends it
//!
//! Tokens and secrets are never logged.

mod arm;
mod auth;
mod config;
mod jwt;
mod proxy;
mod referrers;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub type Body = BoxBody<Bytes, hyper::Error>;

/// A locally made JSON answer.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut bytes = serde_json::to_vec(&self.body).unwrap();
        bytes.push(b'\n');
        Response::builder()
            .status(self.status)
            .header("content-type", "application/json; charset=utf-8")
            .header("cache-control", "no-store")
            .body(full(bytes))
            .unwrap()
    }
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

#[derive(Default)]
pub struct Stats {
    entra_token: AtomicU64,
    exchange: AtomicU64,
    token: AtomicU64,
    registry: AtomicU64,
    notary: AtomicU64,
}

/// Answers the token endpoints give instead of tokens, for fault tests.
#[derive(Default)]
pub struct Throttle {
    status: u16,
    left: u64,
    retry_after: Option<String>,
}

pub struct State {
    pub throttle: std::sync::Mutex<Throttle>,
    pub cfg: config::Config,
    pub token_signer: jwt::Signer,
    pub entra_signer: jwt::Signer,
    pub stats: Stats,
    pub proxy: proxy::Proxy,
    pub arm_state: std::sync::Mutex<arm::ArmState>,
    pub referrers: referrers::Index,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 || args[1].starts_with('-') {
        eprintln!("usage: acr-emulator CONFIG.json");
        std::process::exit(2);
    }
    if let Err(e) = run(&args[1]) {
        eprintln!("acr-emulator: error: {e}");
        std::process::exit(1);
    }
}

fn run(config_path: &str) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = config::Config::load(config_path)?;

    let token_key = jwt::load_key(&cfg.token_key)?;
    let token_cert = jwt::load_cert_der(&cfg.token_cert)?;
    check_cert_matches_key(&token_cert, &token_key)?;
    let token_signer = jwt::Signer::new(token_key, Some(&token_cert), cfg.token_header == "x5c");
    let entra_key = jwt::load_key(cfg.entra_key.as_deref().unwrap_or(&cfg.token_key))?;
    let entra_signer = jwt::Signer::new(entra_key, None, false);

    let tls = tls_server_config(&cfg)?;
    let proxy = proxy::Proxy::new(&cfg)?;
    let listen = cfg.listen.clone();
    let arm_state = std::sync::Mutex::new(arm::ArmState {
        trust_policy: cfg
            .arm
            .as_ref()
            .map_or_else(String::new, |a| a.trust_policy.clone()),
    });
    let state = Arc::new(State {
        throttle: std::sync::Mutex::new(Throttle::default()),
        arm_state,
        cfg,
        token_signer,
        entra_signer,
        stats: Stats::default(),
        proxy,
        referrers: referrers::Index::default(),
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        eprintln!(
            "acr-emulator: listening on https://{listen} as {} (registry {}, notary {}, {} identities)",
            state.cfg.login_server,
            state.cfg.registry_url,
            state.cfg.notary_url,
            state.cfg.identities.len()
        );
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("acr-emulator: accept: {e}");
                        continue;
                    }
                },
                _ = term.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(_) => return, // clients that do not trust the CA hang up here
                };
                let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    })
}

fn check_cert_matches_key(cert_der: &[u8], key: &p256::ecdsa::SigningKey) -> Result<(), String> {
    use p256::pkcs8::EncodePublicKey;
    let spki = key
        .verifying_key()
        .to_public_key_der()
        .map_err(|e| e.to_string())?;
    // The SPKI appears verbatim inside the certificate's DER.
    if cert_der
        .windows(spki.as_bytes().len())
        .any(|w| w == spki.as_bytes())
    {
        Ok(())
    } else {
        Err("token_cert does not hold token_key's public key".into())
    }
}

fn tls_server_config(cfg: &config::Config) -> Result<rustls::ServerConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.tls_cert)
        .and_then(|i| i.collect())
        .map_err(|e| format!("{}: {e}", cfg.tls_cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&cfg.tls_key)
        .map_err(|e| format!("{}: {e}", cfg.tls_key.display()))?;
    let mut c = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(c)
}

const MAX_FORM: usize = 1 << 20;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = route(&state, req).await;
    // Path only: queries may carry state, never credentials, but keep the log lean.
    eprintln!(
        "acr-emulator: {method} {path} -> {}",
        resp.status().as_u16()
    );
    Ok(resp)
}

async fn route(st: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let count = |c: &AtomicU64| {
        c.fetch_add(1, Ordering::Relaxed);
    };
    if path == "/v2" || path.starts_with("/v2/") {
        return st.proxy.forward(st, req).await;
    }
    if path.starts_with("/subscriptions/") {
        let authz = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = match Limited::new(req.into_body(), MAX_FORM).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return auth::acr_error(400, "BAD_REQUEST", "unreadable request body")
                    .into_response();
            }
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        return arm::route(st, &method, &parts, authz.as_deref(), &body)
            .unwrap_or_else(|| auth::acr_error(404, "NOT_FOUND", "not found"))
            .into_response();
    }
    if path == "/oauth2/token" || path == "/oauth2/exchange" {
        if path == "/oauth2/token" {
            count(&st.stats.token);
        } else {
            count(&st.stats.exchange);
        }
        if let Some(resp) = throttled(st) {
            return resp;
        }
    }
    match (&method, path.as_str()) {
        (&Method::POST, "/_emulator/throttle") => {
            let body = match Limited::new(req.into_body(), MAX_FORM).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Reply::json(400, json!({"error": "unreadable body"})).into_response();
                }
            };
            let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                return Reply::json(400, json!({"error": "not JSON"})).into_response();
            };
            let mut t = st.throttle.lock().unwrap();
            t.status = v["status"].as_u64().unwrap_or(429) as u16;
            t.left = v["count"].as_u64().unwrap_or(0);
            t.retry_after = v["retry_after"].as_str().map(String::from);
            Reply::json(200, json!({"ok": true})).into_response()
        }
        (&Method::GET, "/_emulator/stats") => {
            let s = &st.stats;
            let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
            Reply::json(
                200,
                json!({
                    "entra_token": get(&s.entra_token),
                    "exchange": get(&s.exchange),
                    "token": get(&s.token),
                    "registry": get(&s.registry),
                    "notary": get(&s.notary),
                }),
            )
            .into_response()
        }
        (&Method::POST, "/oauth2/exchange") => match read_form(req).await {
            Ok(f) => auth::exchange(st, &f).into_response(),
            Err(r) => r.into_response(),
        },
        (&Method::POST, "/oauth2/token") => match read_form(req).await {
            Ok(f) => auth::token_post(st, &f).into_response(),
            Err(r) => r.into_response(),
        },
        (&Method::GET, "/oauth2/token") => {
            let q = auth::Form::parse(req.uri().query().unwrap_or("").as_bytes());
            let authz = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            auth::token_get(st, &q, authz).into_response()
        }
        _ => {
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match (&method, parts.as_slice()) {
                (&Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
                    count(&st.stats.entra_token);
                    let tenant = tenant.to_string();
                    match read_form(req).await {
                        Ok(f) => auth::entra_token(st, &tenant, &f).into_response(),
                        Err(r) => r.into_response(),
                    }
                }
                (&Method::GET, [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
                    auth::openid_configuration(st, tenant).into_response()
                }
                (&Method::GET, [_, "discovery", "v2.0", "keys"]) => auth::jwks(st).into_response(),
                _ => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(full("404 page not found\n"))
                    .unwrap(),
            }
        }
    }
}

/// The throttled answer, while the test asked for more of them.
fn throttled(st: &State) -> Option<Response<Body>> {
    let mut t = st.throttle.lock().unwrap();
    if t.left == 0 {
        return None;
    }
    t.left -= 1;
    let mut resp =
        auth::acr_error(t.status, "TOOMANYREQUESTS", "throttled by the emulator").into_response();
    if let Some(v) = &t.retry_after
        && let Ok(h) = hyper::header::HeaderValue::from_str(v)
    {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, h);
    }
    Some(resp)
}

async fn read_form(req: Request<Incoming>) -> Result<auth::Form, Reply> {
    let body = Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| auth::acr_error(400, "BAD_REQUEST", "unreadable request body"))?;
    Ok(auth::Form::parse(&body.to_bytes()))
}
