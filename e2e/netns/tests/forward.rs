//! `e2e-netns forward` as a process: bytes cross in both directions, each side's end of
//! stream reaches the other, a non-loopback listen address is refused, and the forwarder
//! leaves once the namespace it was given is gone. Needs the right to setns (root), as
//! the real node does; the namespaces used are this machine's own, which a forwarder may
//! enter like any other.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-netns");

/// An upstream that answers each connection with "echo: " and what it read, then closes.
fn echo_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().take(8) {
            let mut conn = conn.unwrap();
            let mut got = Vec::new();
            conn.read_to_end(&mut got).unwrap();
            conn.write_all(b"echo: ").unwrap();
            conn.write_all(&got).unwrap();
        }
    });
    port
}

/// Starts a forwarder into the network namespace at `netns` and returns it with its port.
fn forwarder(netns: &str, to_port: u16) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["forward", "--netns", netns, "--to", &format!("127.0.0.1:{to_port}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().parse().unwrap_or_else(|_| panic!("forwarder printed {line:?}"));
    (child, port)
}

fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(request).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    reply
}

#[test]
fn carries_both_directions_until_each_side_closes() {
    let upstream = echo_upstream();
    let (mut fwd, port) = forwarder("/proc/self/ns/net", upstream);
    assert_ne!(port, upstream);
    // Larger than a socket buffer, so the copy loops really run.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let reply = exchange(port, &big);
    assert_eq!(&reply[..6], b"echo: ");
    assert_eq!(&reply[6..], &big[..]);
    // Two connections at once are carried independently.
    let a = thread::spawn(move || exchange(port, b"first"));
    let b = exchange(port, b"second");
    assert_eq!(a.join().unwrap(), b"echo: first");
    assert_eq!(b, b"echo: second");
    fwd.kill().unwrap();
    fwd.wait().unwrap();
}

#[test]
fn refuses_to_listen_beyond_loopback() {
    let out = Command::new(BIN)
        .args(["forward", "--netns", "/proc/self/ns/net", "--listen", "0.0.0.0:0", "--to", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a loopback address"), "stderr: {err}");
}

#[test]
fn exits_once_the_namespace_holder_is_gone() {
    let mut holder = Command::new("sleep").arg("600").spawn().unwrap();
    let netns = format!("/proc/{}/ns/net", holder.id());
    let (mut fwd, _) = forwarder(&netns, echo_upstream());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = fwd.try_wait().unwrap() {
            assert!(status.success(), "forwarder exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the forwarder outlived its namespace's holder");
        thread::sleep(Duration::from_millis(100));
    }
}
