//! Slow and idle clients against one listener, for the figures in the hardening note:
//! how long a 1 byte/s header drip stays connected, how many idle sockets one address
//! keeps open, and whether a real client (a shell command: `openssl cmp`, curl EST...)
//! is served while a flood of idle sockets is held. Loopback only; every loop is bounded
//! in count and time, and every socket is closed at exit.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[derive(Parser, Debug)]
#[command(about = "Slow and idle clients against one pkiplane listener (loopback only)")]
struct Args {
    /// The listener, e.g. 127.0.0.1:8080.
    #[arg(long)]
    target: SocketAddr,
    /// Give up the drip after this many seconds.
    #[arg(long, default_value_t = 90)]
    drip_max_seconds: u64,
    /// Idle sockets in the flood (at most 10,000).
    #[arg(long, default_value_t = 2_000)]
    flood: usize,
    /// Source address of the flood (a loopback address).
    #[arg(long, default_value = "127.0.0.2")]
    flood_from: std::net::IpAddr,
    /// Seconds after the flood connected at which open sockets are counted.
    #[arg(long, default_value_t = 1)]
    count_after_seconds: u64,
    /// A real client run (with `bash -c`) while the flood is held, e.g. an `openssl cmp`
    /// or `curl` command line; its exit status and duration are reported.
    #[arg(long)]
    probe: Option<String>,
}

/// Seconds a 1 byte/s request head stays connected (None: still connected at `max`).
async fn drip(target: SocketAddr, max: Duration) -> Option<f64> {
    let start = Instant::now();
    let mut s = TcpStream::connect(target).await.ok()?;
    let head = b"GET / HTTP/1.1\r\nhost: localhost\r\nx-drip: ";
    let mut buf = [0u8; 256];
    for b in head.iter().chain(std::iter::repeat(&b'a')) {
        if start.elapsed() >= max {
            return None;
        }
        if s.write_all(&[*b]).await.is_err() {
            return Some(start.elapsed().as_secs_f64());
        }
        // A closed connection shows as EOF (or a reset) within the second.
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            return Some(start.elapsed().as_secs_f64());
        }
    }
    None
}

async fn flood(target: SocketAddr, from: std::net::IpAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.min(10_000) {
        let socket = match from {
            std::net::IpAddr::V4(_) => TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => TcpSocket::new_v6(),
        };
        let Ok(socket) = socket else { break };
        if socket.bind(SocketAddr::new(from, 0)).is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await {
            Ok(Ok(s)) => out.push(s),
            _ => break,
        }
    }
    out
}

/// How many of `sockets` the server has not closed.
async fn still_open(sockets: &mut [TcpStream]) -> usize {
    let mut open = 0;
    let mut b = [0u8; 1];
    for s in sockets {
        if tokio::time::timeout(Duration::from_millis(2), s.read(&mut b)).await.is_err() {
            open += 1;
        }
    }
    open
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    assert!(args.target.ip().is_loopback() && args.flood_from.is_loopback(), "loopback only");
    println!("target {}", args.target);

    let dripped = drip(args.target, Duration::from_secs(args.drip_max_seconds)).await;
    match dripped {
        Some(s) => println!("1 byte/s header drip: disconnected after {s:.1} s"),
        None => println!("1 byte/s header drip: still connected after {} s", args.drip_max_seconds),
    }

    let mut held = flood(args.target, args.flood_from, args.flood).await;
    println!("idle flood from {}: {} of {} sockets connected", args.flood_from, held.len(), args.flood);
    tokio::time::sleep(Duration::from_secs(args.count_after_seconds)).await;
    let open = still_open(&mut held).await;
    println!("idle sockets of one address still open after {} s: {open}", args.count_after_seconds);

    if let Some(probe) = &args.probe {
        let start = Instant::now();
        let status = Command::new("bash").args(["-c", probe]).status();
        let took = start.elapsed().as_secs_f64();
        match status {
            Ok(s) => println!("real client during the flood: exit {} after {took:.2} s", s.code().unwrap_or(-1)),
            Err(e) => println!("real client during the flood: could not run ({e})"),
        }
    }
    let open = still_open(&mut held).await;
    println!("flood sockets still open at the end: {open}");
}
