//! Regression tests: see main.rs. Area: the Entra credential chain, the ACR token cache and the
//! ACR emulator.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
        format!("HTTP/1.1 302 Found\r\nLocation: {second_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
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
