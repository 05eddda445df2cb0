//! The serving loop against slow and idle clients on real loopback sockets: a header
//! drip is cut off, a stalled body times out, idle sockets are closed, and a flood of
//! idle sockets over the cap does not keep a real client out. The limits are short so the
//! tests are quick; each wait has a generous guard that only fails a test that hangs.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use pkiplane_listen::{Limits, Plain, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const GUARD: Duration = Duration::from_secs(20);

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(1500),
        body_read_timeout: Duration::from_millis(1500),
        idle_timeout: Duration::from_millis(700),
        max_connections: 32,
        max_connections_per_address: 16,
        ..Limits::default()
    }
}

async fn start(limits: Limits) -> SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/echo", post(|body: bytes::Bytes| async move { format!("{} bytes", body.len()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, limits, Plain(app), std::future::pending()));
    addr
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(GUARD, s.read(&mut buf)).await.expect("the server closes the connection") {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// A plain GET / on a fresh connection from `from`; the response text.
async fn get_root(addr: SocketAddr, from: [u8; 4]) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    String::from_utf8_lossy(&until_closed(&mut s).await).into_owned()
}

/// Sends a request head one byte every 100 ms (its header value never ends) until the
/// server stops taking it; fails if that takes longer than [`GUARD`].
async fn drip_until_cut_off(s: &mut TcpStream) {
    let drip = async {
        for b in b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ".iter().chain(std::iter::repeat(&b'a')) {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(GUARD, drip).await.expect("the drip is cut off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_drip_is_cut_off() {
    let addr = start(limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    drip_until_cut_off(&mut s).await;
    assert!(!until_closed(&mut s).await.starts_with(b"HTTP/1.1 200"), "the dripped request was never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_and_idle_keep_alive_are_closed() {
    let addr = start(limits()).await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    for s in &mut idle {
        assert!(until_closed(s).await.is_empty(), "closed without a byte");
    }
    // Keep-alive: answered, then closed once idle.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let text = String::from_utf8_lossy(&until_closed(&mut s).await).into_owned();
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ok"), "{text}");
}

/// Reads one response to a GET / (its body is "ok") off a kept-alive connection.
async fn one_response(s: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    while !all.ends_with(b"ok") {
        let n = tokio::time::timeout(GUARD, s.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&all));
        all.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// Silence between requests is the idle timeout's, however short the header timeout: a
/// kept-alive connection left longer than the header timeout still serves the next
/// request. A head dripped on that connection is still cut off by the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_outlasts_the_header_timeout_and_a_later_drip_is_cut_off() {
    let header = Duration::from_millis(500);
    let addr = start(Limits { header_read_timeout: header, idle_timeout: Duration::from_secs(30), ..limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert!(one_response(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(header * 4).await;
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert!(one_response(&mut s).await.starts_with("HTTP/1.1 200"), "the idle kept-alive connection was closed");
    drip_until_cut_off(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out() {
    let addr = start(limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789").await.unwrap();
    // Keep sending nothing more, but stay "active" enough not to be an idle socket.
    let text = String::from_utf8_lossy(&until_closed(&mut s).await).into_owned();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // A complete body is answered.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc").await.unwrap();
    let text = String::from_utf8_lossy(&until_closed(&mut s).await).into_owned();
    assert!(text.ends_with("3 bytes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_flood_over_the_cap_does_not_keep_a_real_client_out() {
    // Idle timeout long enough that the flood is still open when the client comes.
    let addr = start(Limits { idle_timeout: Duration::from_secs(30), ..limits() }).await;
    let mut flood = Vec::new();
    for _ in 0..200 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
        flood.push(socket.connect(addr).await.unwrap());
    }
    // From another address, and from the flood's own address: both served.
    let text = get_root(addr, [127, 0, 0, 1]).await;
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ok"), "{text}");
    let text = get_root(addr, [127, 0, 0, 2]).await;
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ok"), "{text}");
    // The flood holds no more than its address's cap: the rest were closed.
    let mut open = 0;
    for s in &mut flood {
        let mut b = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await.is_err() {
            open += 1;
        }
    }
    assert!(open <= 16, "{open} idle sockets of one address are still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_are_refused_with_431() {
    let addr = start(Limits { max_header_bytes: 8192, ..limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = format!("GET / HTTP/1.1\r\nhost: x\r\nauthorization: Basic {}\r\n\r\n", "A".repeat(20_000));
    let _ = s.write_all(big.as_bytes()).await;
    let text = String::from_utf8_lossy(&until_closed(&mut s).await).into_owned();
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
}
