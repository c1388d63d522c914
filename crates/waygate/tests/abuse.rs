//! Clients that hold connections without finishing requests (slowloris): the real binary
//! cuts a trickled request head after the header-read timeout, refuses connections over
//! its cap at once, keeps serving everyone else, and counts the refusals.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{metric, raw_get, read_reply, seed, Reply, Server};

/// A client sending `GET /healthz` and then header lines, one byte every 100 ms, until the
/// server closes the connection.
async fn trickle(stream: TcpStream) {
    let (mut read, mut write) = stream.into_split();
    let head = b"GET /healthz HTTP/1.1\r\nHost: waygate\r\n".iter();
    let padding = std::iter::repeat_n(b"X-Slow: 1\r\n".iter(), 10_000).flatten();
    let writing = async {
        for byte in head.chain(padding) {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut sink = Vec::new();
    tokio::select! {
        _ = writing => {}
        _ = read.read_to_end(&mut sink) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_head_is_cut_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("WAYGATE_HEADER_READ_TIMEOUT_MS", "1500")]);
    let http = reqwest::Client::new();
    server.ready(&http).await;
    let tenant = seed(&http, &server.base).await;

    let started = Instant::now();
    let slow = tokio::spawn(trickle(TcpStream::connect(server.addr).await.unwrap()));
    // Served while the slow client holds its connection.
    let health = raw_get(server.addr, "/healthz", Duration::from_secs(5)).await;
    assert!(matches!(health, Reply::Answered(200, _)), "{health:?}");
    let send = http
        .post(format!("{}/api/user/whatsapp/send", server.base))
        .bearer_auth(&tenant.key)
        .header("Idempotency-Key", "abuse-1")
        .json(&tenant.template_send("+14155550123"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("send while a client trickles");
    assert_eq!(send.status(), 200);
    assert!(!slow.is_finished(), "cut before the header-read timeout");

    tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("the trickling client was not cut off")
        .unwrap();
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(1500) && held < Duration::from_secs(4),
        "cut after {held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_until_slow_ones_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &[
            ("WAYGATE_MAX_CONNECTIONS", "20"),
            ("WAYGATE_HEADER_READ_TIMEOUT_MS", "2000"),
            ("WAYGATE_IDLE_TIMEOUT_MS", "2000"),
        ],
    );
    // No pooled connection may take one of the 20 places.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    server.ready(&http).await;

    let mut held = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = Instant::now();
    let refused = raw_get(server.addr, "/healthz", Duration::from_secs(1)).await;
    assert_eq!(refused, Reply::Closed, "a connection over the cap");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused only after {:?}",
        start.elapsed()
    );

    // The held connections are cut at their header-read timeout; then service comes back.
    let mut recovered = None;
    while start.elapsed() < Duration::from_secs(10) {
        if let Reply::Answered(200, _) =
            raw_get(server.addr, "/healthz", Duration::from_secs(1)).await
        {
            recovered = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("/healthz did not recover after the slow clients were cut");
    assert!(
        recovered < Duration::from_secs(5),
        "recovered after {recovered:?}"
    );
    for mut stream in held {
        let cut = tokio::time::timeout(Duration::from_secs(1), read_reply(&mut stream)).await;
        assert_eq!(cut.ok(), Some(Reply::Closed), "a held connection left open");
    }

    let Reply::Answered(200, page) = raw_get(server.addr, "/metrics", Duration::from_secs(5)).await
    else {
        panic!("no metrics");
    };
    let refusals = metric(&page, "waygate_http_connections_refused_total");
    assert!(
        refusals.is_some_and(|n| n >= 1.0),
        "refusals counted: {refusals:?}"
    );
    assert!(metric(&page, "waygate_http_connections").is_some_and(|open| open >= 1.0));
    assert!(
        server.log().contains("connection limit reached"),
        "no warning about the limit in:\n{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_body_is_answered_408_with_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &[
            ("WAYGATE_REQUEST_TIMEOUT_MS", "1500"),
            ("WAYGATE_SEND_WAIT_MS", "500"),
        ],
    );
    let http = reqwest::Client::new();
    server.ready(&http).await;
    let tenant = seed(&http, &server.base).await;

    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /api/user/whatsapp/send HTTP/1.1\r\nHost: waygate\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{{\"sender_id\"",
        tenant.key
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickling = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b" ").await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let mut reply = Vec::new();
    tokio::select! {
        _ = trickling => {}
        _ = read.read_to_end(&mut reply) => {}
        _ = tokio::time::sleep(Duration::from_secs(6)) => {}
    }
    let text = String::from_utf8_lossy(&reply);
    let held = started.elapsed();
    assert!(text.starts_with("HTTP/1.1 408"), "after {held:?}: {text:?}");
    assert!(
        text.contains("\"error_code\":\"REQUEST_TIMEOUT\""),
        "{text}"
    );
    assert!(held < Duration::from_secs(5), "answered after {held:?}");
}
