//! A CMP endpoint for load tests (`scripts/tools/cmp-bench.sh`): a root and an issuing
//! CA, one permissive TLS profile, the shared secret `bench` = `bench-secret-1`, the
//! inventory and CMP state in SQLite in a temporary directory.
//!
//! * `cmp_bench_server 127.0.0.1:18080` serves until killed;
//! * `cmp_bench_server load N C` serves on a free port and sends it N ir transactions,
//!   C at a time, from this process: the OpenSSL ir recorded in `tests/vectors`,
//!   re-protected (PasswordBasedMac) under a fresh transactionID and senderNonce each
//!   time and with implicitConfirm, so the figures are the server's alone, without the
//!   `openssl` process start-up that dominates the shell workload.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_api::Manifests;
use pkiplane_cmp::CmpState;
use pkiplane_core::issuance::Ca;
use pkiplane_store::SqliteStore;

const MANIFESTS: &str = r#"
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: root, namespace: bench}
spec: {selfSigned: {}, subject: "CN=Bench Root", keyAlgorithm: ECDSA-P256, validity: 10y}
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: issuing, namespace: bench}
spec: {parentRef: {name: root}, subject: "CN=Bench Issuing CA", keyAlgorithm: ECDSA-P256, validity: 5y}
---
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: tls, namespace: bench}
spec:
  issuerRef: {name: issuing}
  validity: {duration: 47d}
  subjectAltNames: {dns: {suffixes: [example.com]}}
  extendedKeyUsage: [serverAuth, clientAuth]
---
apiVersion: v1
kind: Secret
metadata: {name: secrets, namespace: bench}
stringData: {bench: bench-secret-1}
---
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {name: cmp, namespace: bench}
spec:
  protocol: CMP
  profiles: [{name: tls}]
  cmp: {sharedSecrets: {secretRef: {name: secrets}}}
"#;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("load") {
        let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(500);
        let c: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(8);
        let (url, _dir) = serve("127.0.0.1:0").await;
        load(&url, n, c).await;
        return;
    }
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:18080".into());
    let (_url, _dir) = serve(&addr).await;
    std::future::pending::<()>().await;
}

/// Starts the endpoint on `addr`; returns its CMP URL and the directory to keep alive.
async fn serve(addr: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = Manifests::from_yaml(MANIFESTS, "bench.yaml").expect("manifests");
    let store = Arc::new(SqliteStore::open(&dir.path().join("pkiplane.db")).expect("store"));
    let ca = Ca::new(store.clone());
    pkiplane_api::put_fresh(&ca, &manifests, SystemTime::now()).expect("CA");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let config = pkiplane_api::cmp_settings(&manifests.endpoints[0], &manifests, &url).expect("config");
    let state = CmpState::start(config, Arc::new(ca), store).await.expect("CMP state");
    let maintained = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            maintained.maintain(maintained.now()).await;
        }
    });
    println!("{url}/.well-known/cmp");
    tokio::spawn(async move { axum::serve(listener, pkiplane_cmp::router(state)).await.expect("serve") });
    (format!("{url}/.well-known/cmp"), dir)
}

/// One recorded ir, re-protected for transaction `i`.
fn request(recorded: &pkiplane_cmp::wire::Incoming, i: usize) -> Vec<u8> {
    use pkiplane_cmp::protection::mac::{MacAlg, MacProtection, Owf};
    use pkiplane_cmp::wire::message::{self, OutHeader, tag};
    let mac = MacProtection::Pbm {
        salt: b"bench-salt-00001".to_vec(),
        owf: Owf::Sha256,
        iterations: 500,
        mac: MacAlg::HmacSha1,
    };
    let h = &recorded.header;
    let header = OutHeader {
        pvno: 2,
        sender: h.sender.clone(),
        recipient: h.recipient.clone(),
        message_time: SystemTime::now(),
        protection_alg: Some(mac.algorithm_identifier().expect("alg")),
        sender_kid: Some(b"bench".to_vec()),
        transaction_id: Some(format!("bench-transaction-{i:08}").into_bytes()),
        sender_nonce: format!("bench-nonce-{i:08}").into_bytes(),
        recip_nonce: None,
        free_text: vec![],
        general_info: vec![cmpv2::r#gen::InfoTypeAndValue {
            oid: pkiplane_cmp::wire::oids::IT_IMPLICIT_CONFIRM,
            value: Some(der::asn1::Any::null()),
        }],
    };
    let header = message::encode_header(&header).expect("header");
    let body = message::encode_body(tag::IR, &recorded.body).expect("body");
    let protection = mac.compute(b"bench-secret-1", &message::protected_part(&header, &body).expect("protected part"));
    message::encode_message(&header, &body, Some(&protection), &[]).expect("message")
}

/// POSTs one message over a fresh connection; returns whether an ip with a
/// certificate came back.
async fn post(url: &str, der: &[u8]) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return false };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/pkixcmp\r\nContent-Length: {}\r\n\r\n",
        der.len()
    );
    if s.write_all(head.as_bytes()).await.is_err() || s.write_all(der).await.is_err() {
        return false;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    match pkiplane_cmp::wire::message::decode(&raw[split + 4..]) {
        Ok(m) => matches!(
            pkiplane_cmp::wire::body::decode_response(m.body_tag, &m.body),
            Ok(pkiplane_cmp::wire::ResponseBody::CertRep(_, rep)) if rep.response[0].certified_key_pair.is_some()
        ),
        Err(_) => false,
    }
}

async fn load(url: &str, n: usize, c: usize) {
    let vector = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ir.req.der");
    let recorded = pkiplane_cmp::wire::message::decode(&std::fs::read(vector).expect("ir vector")).expect("decode");
    let requests: Vec<Vec<u8>> = (0..n).map(|i| request(&recorded, i)).collect();
    let queue = Arc::new(std::sync::Mutex::new(requests.into_iter().collect::<Vec<_>>()));
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (queue, url) = (queue.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let Some(req) = queue.lock().expect("queue").pop() else { break };
                let t = std::time::Instant::now();
                if !post(&url, &req).await {
                    failures += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.expect("task");
        latencies.extend(l);
        failures += f;
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "in-process load: {n} ir in {secs:.2}s, concurrency {c}: {:.1} ir/s, p50 {:.1} ms, p99 {:.1} ms, failures {failures}",
        n as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
}
