//! A SCEP endpoint for load tests (`scripts/tools/scep-bench.sh`): an RSA root and
//! issuing CA, one SCEP device profile, the static challenge `bench-challenge`, legacy
//! algorithms on (micromdm's scepclient signs with SHA-1 and encrypts with DES), the
//! inventory and SCEP state in SQLite in a temporary directory. The router is the one
//! `pkiplane serve` mounts for a SCEP EnrollmentEndpoint.
//!
//! `scep_bench_server 127.0.0.1:18380` prints its URL (`http://…/scep`) and serves until
//! killed.

use std::sync::Arc;
use std::time::SystemTime;

use pkiplane_api::Manifests;
use pkiplane_core::issuance::Ca;
use pkiplane_scep::ScepState;
use pkiplane_store::SqliteStore;

const MANIFESTS: &str = r#"
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: root, namespace: bench}
spec: {selfSigned: {}, subject: "CN=Bench Root", keyAlgorithm: RSA-2048, validity: 10y, pathLen: 1}
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: issuing, namespace: bench}
spec: {parentRef: {name: root}, subject: "CN=Bench Issuing CA", keyAlgorithm: RSA-2048, validity: 5y}
---
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: device, namespace: bench}
spec:
  issuerRef: {name: issuing}
  keys: {algorithms: [RSA], rsaMinBits: 2048}
  validity: {duration: 90d}
  subject:
    attributes: [{name: CN, presence: Required}]
    otherAttributes: Drop
  subjectAltNames: {dns: {suffixes: [example.com]}}
  keyUsage: [digitalSignature, keyEncipherment]
  extendedKeyUsage: [clientAuth]
---
apiVersion: v1
kind: Secret
metadata: {name: scep-static, namespace: bench}
stringData: {challenge: bench-challenge}
---
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {name: scep, namespace: bench}
spec:
  protocol: SCEP
  profiles: [{name: device, default: true}]
  scep:
    staticChallenge: {secretRef: {name: scep-static}}
    legacyAlgorithms: true
"#;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18380".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = Manifests::from_yaml(MANIFESTS, "bench.yaml").expect("manifests");
    let store = Arc::new(SqliteStore::open(&dir.path().join("pkiplane.db")).expect("store"));
    let ca = Arc::new(Ca::new(store.clone()));
    pkiplane_api::put_fresh(&ca, &manifests, SystemTime::now()).expect("CA");
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let config = pkiplane_api::scep_settings(&manifests.endpoints[0], &manifests, &base)
        .unwrap_or_else(|e| panic!("{}", pkiplane_api::FieldError::join(&e)));
    let state = ScepState::start(config, ca, store).await.expect("SCEP state");
    println!("{base}/scep");
    axum::serve(listener, pkiplane_scep::router(state)).await.expect("serve");
}
