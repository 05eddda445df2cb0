//! `pkiplane serve` against hostile clients. Every listener (the four quickstart
//! endpoints and publication) against slow and idle clients: a header drip is cut off,
//! idle sockets are closed, and a flood of 2,000 idle sockets (from 127.0.0.2, on a
//! server limited to 512 open files) does not stop real clients (`openssl cmp`, curl
//! EST) from being served. And attacker-chosen strings: a newline in an EST username
//! cannot forge a log line, and a password typed as a username is not logged. Each wait
//! has a generous guard that only fails a test that hangs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod common;

use common::{Server, quickstart_free_ports};

const GUARD: Duration = Duration::from_secs(30);
const SHORT: &[&str] = &["--listener-header-timeout", "2s", "--listener-idle-timeout", "1s"];

/// A listener: its name, address, and the PEM bundle to trust when it speaks TLS.
struct Port {
    name: String,
    addr: SocketAddr,
    trust: Option<String>,
}

fn ports(server: &Server) -> Vec<Port> {
    let addr_of = |url: &str| -> SocketAddr {
        let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
        let port = authority.rsplit(':').next().unwrap().parse().unwrap();
        SocketAddr::from(([127, 0, 0, 1], port))
    };
    let mut out = vec![Port { name: "publication".into(), addr: addr_of(&server.publish_url), trust: None }];
    for e in server.ready["endpoints"].as_array().unwrap() {
        out.push(Port {
            name: e["name"].as_str().unwrap().into(),
            addr: addr_of(e["urls"][0].as_str().unwrap()),
            trust: e["tlsTrustBundle"].as_str().map(str::to_owned),
        });
    }
    assert_eq!(out.len(), 5, "publication, ACME, EST, SCEP, CMP");
    out
}

fn tls_client(trust: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(trust).unwrap();
    for der in pkiplane_core::x509::pem::decode_chain(&pem, "CERTIFICATE").unwrap() {
        roots.add(der.into()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Whether the server closes `s` before the guard (reads until EOF or an error).
async fn closed_by_server<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(GUARD, s.read(&mut buf)).await.expect("the server closes the connection") {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends a request head one byte every 250 ms until the server hangs up; returns what
/// the server answered (nothing, for a dripped head).
async fn drip<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> Vec<u8> {
    let head = b"GET / HTTP/1.1\r\nhost: localhost\r\nx-slow: ";
    let sending = async {
        for b in head.iter().chain(std::iter::repeat(&b'a')) {
            if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(GUARD, sending).await.expect("the drip is cut off");
    closed_by_server(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_cuts_header_drips_and_closes_idle_sockets() {
    let d = tempfile::tempdir().unwrap();
    let manifests = quickstart_free_ports(d.path());
    let server = Server::start_with(&manifests, &d.path().join("data"), &d.path().join("ready.json"), SHORT, None);
    for port in ports(&server) {
        // A header drip, inside TLS where the listener speaks it.
        let tcp = TcpStream::connect(port.addr).await.unwrap();
        let answered = match &port.trust {
            Some(trust) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                drip(tls_client(trust).connect(name, tcp).await.expect("TLS handshake")).await
            }
            None => drip(tcp).await,
        };
        assert!(answered.is_empty(), "{}: the dripped request was answered", port.name);

        // Idle sockets (no byte, no TLS handshake) are closed.
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(TcpStream::connect(port.addr).await.unwrap());
        }
        for s in &mut idle {
            closed_by_server(s).await;
        }
    }
}

fn run(cmd: &str, args: &[&str], dir: &Path) {
    let out = Command::new(cmd).args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl cmp -cmd ir` against the quickstart CMP endpoint, as the README shows.
fn cmp_enroll(cmp: &Port, dir: &Path, name: &str) {
    let key = format!("{name}.key");
    run("openssl", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key], dir);
    let server = format!("127.0.0.1:{}", cmp.addr.port());
    let subject = format!("/CN={name}.example.com");
    let cert = format!("{name}.pem");
    run(
        "openssl",
        &[
            "cmp",
            "-cmd",
            "ir",
            "-server",
            &server,
            "-path",
            "/.well-known/cmp/p/tls",
            "-ref",
            "device-1",
            "-secret",
            "pass:quickstart-cmp-secret",
            "-recipient",
            "/CN=pkiplane CMP pki\\/cmp",
            "-newkey",
            &key,
            "-subject",
            &subject,
            "-sans",
            &format!("{name}.example.com"),
            "-certout",
            &cert,
            "-msg_timeout",
            "20",
            "-total_timeout",
            "30",
        ],
        dir,
    );
    assert!(dir.join(&cert).exists());
}

/// curl EST /cacerts over TLS, as a device script would.
fn est_cacerts(est: &Port, dir: &Path) {
    let url = format!("https://localhost:{}/.well-known/est/cacerts", est.addr.port());
    let trust = est.trust.as_deref().unwrap();
    run("curl", &["-sSf", "--max-time", "30", "--cacert", trust, "-o", "cacerts.p7", &url], dir);
    assert!(std::fs::metadata(dir.join("cacerts.p7")).unwrap().len() > 0);
}

/// 2,000 connections from 127.0.0.2 to `addr` that never send a byte.
async fn flood(addr: SocketAddr) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
        match tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await {
            Ok(Ok(s)) => sockets.push(s),
            _ => break,
        }
    }
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_are_served_during_a_flood_of_idle_sockets() {
    pkiplane_listen::raise_descriptor_limit();
    let d = tempfile::tempdir().unwrap();
    let manifests = quickstart_free_ports(d.path());
    // Idle timeout long enough that the flood is still open while the clients run.
    let args = ["--listener-idle-timeout", "60s"];
    let server = Server::start_with(&manifests, &d.path().join("data"), &d.path().join("ready.json"), &args, Some(512));
    let ports = ports(&server);
    let port = |name: &str| ports.iter().find(|p| p.name == name).unwrap();
    let work = d.path();

    // The publication port flooded: EST and CMP clients are served.
    let held = flood(port("publication").addr).await;
    assert_eq!(held.len(), 2_000, "the flood connected");
    est_cacerts(port("est"), work);
    cmp_enroll(port("cmp"), work, "during-publication-flood");

    // The CMP port itself flooded: its next client is served all the same.
    let held_cmp = flood(port("cmp").addr).await;
    cmp_enroll(port("cmp"), work, "during-cmp-flood");
    est_cacerts(port("est"), work);
    drop((held, held_cmp));
}

#[test]
fn hostile_usernames_cannot_forge_log_lines_and_are_not_logged() {
    use base64::Engine;
    let d = tempfile::tempdir().unwrap();
    let manifests = quickstart_free_ports(d.path());
    let data = d.path().join("data");
    let server = Server::start(&manifests, &data, &d.path().join("ready.json"));
    let est = server.endpoint("pki", "est");
    let url = format!("{}/ldevid/simpleenroll", est["urls"][0].as_str().unwrap());
    let trust = est["tlsTrustBundle"].as_str().unwrap();
    for user in ["dev\nFORGED 2026-01-01T00:00:00Z  INFO pkiplane: all good", "Tr0ub4dor&3-typed-as-a-name"] {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:wrong"));
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", trust, "--data-binary", "x"])
            .args(["-H", &format!("Authorization: Basic {auth}"), &url])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    }
    drop(server);
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("EST Basic authentication failed"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "a forged line: {log}");
    assert!(!log.contains("Tr0ub4dor"), "a password typed as a username was logged: {log}");
    assert!(log.contains("<unknown name of 27 bytes, #"), "{log}");
}
