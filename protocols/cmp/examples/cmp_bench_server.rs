//! A CMP endpoint for load tests (`scripts/tools/cmp-bench.sh`): a root and an issuing
//! CA, one permissive TLS profile, the shared secret `bench` = `bench-secret-1`, the
//! inventory and CMP state in SQLite in a temporary directory.
//!
//! `cmp_bench_server 127.0.0.1:18080` prints its URL and serves until killed; the load
//! comes from `openssl cmp` processes or from cmp_load (bench/src/bin/cmp_load.rs).

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
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18080".into());
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
