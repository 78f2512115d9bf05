//! Regression tests: see main.rs. Area: the Entra credential chain, the ACR token cache and the
//! ACR emulator.
//!
//! Findings whose proof needs the real stack (the emulator, a fake `az` on PATH, the keyring)
//! are tested in tests/integration/acr_e2e.rs and listed here:
//!
//! - #8 item 10 (a cached ACR token outlives an account switch):
//!   `acr_e2e::cached_token_is_not_reused_after_az_switches_account_or_logs_out`
//! - #8 item 11 (a refused credential becomes another identity):
//!   `acr_e2e::refused_client_secret_stops_the_chain_before_az_runs`
//! - #8 item 12 (az/azd unbounded): `acr_e2e::az_printing_endless_output_is_stopped_at_the_cap`,
//!   `acr_e2e::az_that_hangs_is_killed_with_its_children_at_the_timeout`,
//!   `acr_e2e::az_is_killed_with_its_children_when_the_command_is_cancelled`,
//!   `acr_e2e::az_is_killed_with_its_children_when_the_docker_cli_cancels_the_plugin`
//! - #8 item 11, no fall-back to docker's stored credential:
//!   `acr_e2e::refused_client_secret_does_not_fall_back_to_dockers_stored_credential`
//! - #8 item 11, an incomplete secret: `acr_e2e::client_secret_without_a_tenant_is_refused_not_skipped_for_az`
//! - #8 item 11, the other half (an unavailable source still moves the chain on):
//!   `acr_e2e::unreachable_managed_identity_endpoint_moves_the_chain_on_to_az`
//! - #8 item 14 through the real managed identity credential:
//!   `acr_e2e::managed_identity_secret_header_does_not_follow_a_redirect`
//! - #8 item 10, logout: `acr_e2e::logout_forgets_the_cached_tokens_of_every_identity`
//! - audit P1-M5: `acr_e2e::debug_output_of_a_real_sign_in_contains_no_token_or_secret`
//! - audit P1-M6: `acr_e2e::azure_cli_is_asked_for_the_acr_scope_and_tenant`
//! - audit P1-W1: `acr_e2e::reader_is_refused_signing_with_the_role_named_when_acr_*`,
//!   `acr_e2e::pusher_without_signer_role_is_refused_and_nothing_is_pushed_when_acr_*`
//! - audit P1-W9: every `acr_e2e` environment has its own keyring namespace
//!   (`TRUSTACR_KEYRING_SERVICE`)
//! - audit P1-M7: `acr_stack::short_lifetimes_make_refresh_tokens_expire` panics without the
//!   emulator binary that `stack.sh` names in stack.env
//! - #11 item 3 (a tenant domain name forwarded to the exchange):
//!   `acr_e2e::tenant_given_as_a_domain_name_signs_in_and_the_exchange_gets_the_tenant_id`
//! - #11 item 3 (capitalised `access` claim keys):
//!   `acr_e2e::access_claim_with_capitalised_keys_is_read_as_the_registry_reads_it`
//! - #11 item 3 (every scope refused, no role hint):
//!   `acr_e2e::identity_without_any_role_is_told_the_missing_role_when_acr_refuses_every_scope`
//! - audit P1-W10: `acr_stack::stats_count_each_entra_exchange_and_token_call_exactly`

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use docker_trustacr::entra::{EntraToken, Identity};
use docker_trustacr::secret::Secret;

/// Answers one HTTP request on `listener` with `response`, counting connections.
fn serve(listener: TcpListener, response: String, hits: Arc<AtomicUsize>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            hits.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response.as_bytes());
        }
    });
}

// See: #8 item 14
#[test]
fn entra_client_does_not_follow_a_redirect_to_another_host() {
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    let second_url = format!("http://{}/steal", second.local_addr().unwrap());
    let first_url = format!("http://{}/token", first.local_addr().unwrap());
    let first_hits = Arc::new(AtomicUsize::new(0));
    let second_hits = Arc::new(AtomicUsize::new(0));
    serve(
        first,
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {second_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        first_hits.clone(),
    );
    serve(
        second,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(),
        second_hits.clone(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let http = docker_trustacr::entra::entra_client().unwrap();
        // The managed identity's secret header, as azure_identity sends it.
        http.get(&first_url)
            .header("X-IDENTITY-HEADER", "the-secret")
            .send()
            .await
            .unwrap()
            .status()
    });
    // A followed redirect completes (the second server answers) before `send` returns, so the
    // count is final here.
    assert_eq!(status.as_u16(), 302);
    assert_eq!(first_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        second_hits.load(Ordering::SeqCst),
        0,
        "the request followed the redirect to another host"
    );
}

// See: #8 item 10
#[test]
fn identity_is_read_from_the_token_claims_not_the_configuration() {
    use base64::Engine as _;
    let claims = |json: &str| {
        format!(
            "eyJhbGciOiJub25lIn0.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    };
    let user = claims(r#"{"tid":"t1","oid":"o1","appid":"a1"}"#);
    assert_eq!(
        Identity::of_token(&user),
        Some(Identity {
            tenant: "t1".into(),
            object: "o1".into()
        })
    );
    // An application token without oid is keyed by its application ID.
    let app = claims(r#"{"tid":"t1","appid":"a1"}"#);
    assert_eq!(Identity::of_token(&app).unwrap().object, "a1");
    // Without a tenant there is no identity to key a cache by.
    assert_eq!(Identity::of_token(&claims(r#"{"oid":"o1"}"#)), None);
    assert_eq!(Identity::of_token("not a jwt"), None);
}

// See: #8 item 16
#[test]
fn entra_token_debug_output_shows_no_token() {
    let t = EntraToken {
        token: Secret::new("eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0MSJ9."),
        source: "Azure CLI (az)",
        tenant: Some("t1".into()),
        identity: None,
        selector: None,
    };
    let text = format!("{t:?}");
    assert!(!text.contains("eyJ"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}
