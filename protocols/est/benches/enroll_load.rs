//! Load measurement of the EST server (not a test: it asserts nothing about time).
//!
//! Starts the router on 127.0.0.1 (plain HTTP: TLS cost is the listener's, not EST's)
//! over the quickstart CA with a SQLite inventory, then sends a bounded number of
//! `simpleenroll` (HTTP Basic) and `cacerts` requests from a few concurrent clients and
//! prints requests per second and latency percentiles.
//!
//! `cargo bench -p pkiplane-est --bench enroll_load` (env `EST_LOAD_REQUESTS`, default
//! 400, and `EST_LOAD_CONCURRENCY`, default 8).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pkiplane_api::Manifests;
use pkiplane_core::inventory::Inventory;
use pkiplane_core::issuance::Ca;
use pkiplane_core::keys::{KeyAlgorithm, generate_key};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::parse_dn;
use pkiplane_est::state::memory::MemoryAuthFailures;
use pkiplane_est::{EstState, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn request(addr: std::net::SocketAddr, raw: &[u8]) -> (u16, Duration) {
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let status = String::from_utf8_lossy(&out).split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
    (status, start.elapsed())
}

async fn run(name: &str, addr: std::net::SocketAddr, raw: Vec<u8>, n: usize, concurrency: usize) {
    let raw = Arc::new(raw);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (raw, next) = (raw.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let (status, d) = request(addr, &raw).await;
                assert_eq!(status, 200, "unexpected status");
                lat.push(d);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let total = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name}: {n} requests, concurrency {concurrency}: {:.0} req/s; latency p50 {:?} p90 {:?} p99 {:?}",
        n as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("EST_LOAD_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let concurrency: usize = std::env::var("EST_LOAD_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests = Manifests::load(root.join("../../examples/quickstart.yaml")).unwrap();
    manifests.add_file(&root.join("tests/est/endpoint.yaml")).unwrap();
    let store = Arc::new(pkiplane_store::SqliteStore::open(&dir.path().join("pkiplane.db")).unwrap());
    let ca = Arc::new(Ca::new(store as Arc<dyn Inventory>));
    pkiplane_api::put_fresh(&ca, &manifests, SystemTime::now()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = manifests.endpoint("pki", "est").unwrap();
    let config = pkiplane_api::est_settings(
        endpoint,
        &manifests,
        &|id| pkiplane_api::convert::loaded_issuer_chain(ca.as_ref(), id),
        &format!("http://{addr}"),
    )
    .unwrap();
    let state = EstState::new(config, ca, Arc::new(MemoryAuthFailures::new()));
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });

    let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
    let csr = build_csr(&key, &parse_dn("CN=load-device").unwrap(), &[]).unwrap();
    let body = STANDARD.encode(csr);
    let auth = STANDARD.encode("device-enroller:est-demo-password");
    let enroll = format!(
        "POST /.well-known/est/ldevid/simpleenroll HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/pkcs10\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let cacerts = "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    run("cacerts", addr, cacerts.as_bytes().to_vec(), n, concurrency).await;
    run("simpleenroll (Basic, P-256, SQLite inventory)", addr, enroll.into_bytes(), n, concurrency).await;
}
