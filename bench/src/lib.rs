//! Shared set-up for pkiplane's benchmarks: a CA hierarchy of a given key type on a real
//! SQLite inventory, and CSRs made by `openssl req`.
#![forbid(unsafe_code)]

pub mod inventory;
pub mod load;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pkiplane_core::issuance::{Ca, IssuanceRequest, Issued};
use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::keys::{KeyAlgorithm, KeyFamily};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::profile::*;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::{KeyUsageBit, eku_from_name};
use pkiplane_store::SqliteStore;

/// A CA whose issuing CA uses `alg`, with one TLS profile, on SQLite in `dir`.
pub fn ca_with(alg: KeyAlgorithm, dir: &Path) -> Ca {
    ca_and_store_with(alg, dir).0
}

/// [`ca_with`], and the store it keeps its inventory (and CA material) in.
pub fn ca_and_store_with(alg: KeyAlgorithm, dir: &Path) -> (Ca, Arc<SqliteStore>) {
    let now = SystemTime::now();
    let params = |subject: &str| CaParams {
        subject: subject.into(),
        key: alg,
        validity: Duration::from_secs(5 * 365 * 86_400),
        path_len: None,
        name_constraints: NameConstraintsConfig::default(),
        renew_before: None,
    };
    let cfg = IssuerConfig {
        id: ObjectRef::new("bench", "ca"),
        source: IssuerSource::SelfSigned(params("CN=Bench CA")),
        crl_validity: Duration::from_secs(86_400),
    };
    let (issuer, _) = Issuer::create(&cfg, None, now).expect("issuer");
    let store = Arc::new(SqliteStore::open(&dir.join("inventory.db")).expect("store"));
    let ca = Ca::new(store.clone());
    ca.put_issuer(Arc::new(issuer));
    ca.put_profile(Profile {
        id: ObjectRef::new("bench", "tls"),
        description: String::new(),
        issuer: cfg.id.clone(),
        keys: KeyPolicy { families: vec![KeyFamily::Ecdsa, KeyFamily::Rsa], ..KeyPolicy::default() },
        validity: ValidityPolicy {
            duration: Duration::from_secs(47 * 86_400),
            max: Duration::from_secs(47 * 86_400),
            backdate: Duration::from_secs(300),
        },
        renewal: RenewalPolicy::RemainingFraction(1.0 / 3.0),
        subject: SubjectPolicy::default(),
        sans: SanPolicy {
            max_count: 10,
            required: true,
            dns: Some(DnsRule { suffixes: vec!["example.com".into()], allow_wildcards: false }),
            ..SanPolicy::default()
        },
        key_usage: vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment],
        extended_key_usage: vec![eku_from_name("serverAuth").expect("eku")],
        crl_distribution_points: vec!["http://pki.example.com/crl".into()],
        ca_issuers_urls: vec!["http://pki.example.com/ca.crt".into()],
        ocsp_urls: vec![],
        csr_extensions: CsrExtensionPolicy::default(),
        requesters: RequesterPolicy::default(),
        approval_required: false,
    });
    (ca, store)
}

/// A CSR (DER) from `openssl req` with a key of `alg` ("EC" or "RSA").
pub fn openssl_csr(alg: &str, dir: &Path) -> Vec<u8> {
    let key = dir.join(format!("{alg}.key"));
    let opt = if alg == "EC" { "ec_paramgen_curve:P-256" } else { "rsa_keygen_bits:2048" };
    run(&["genpkey", "-algorithm", alg, "-pkeyopt", opt, "-out", key.to_str().expect("path")]);
    run(&[
        "req",
        "-new",
        "-key",
        key.to_str().expect("path"),
        "-subj",
        "/CN=www.example.com",
        "-addext",
        "subjectAltName=DNS:www.example.com,DNS:example.com",
        "-outform",
        "DER",
    ])
}

/// Runs `openssl` with `args`; returns its stdout.
pub fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The full core path for one request: verify the CSR, decide policy, persist, sign, store.
pub async fn issue_one(ca: &Ca, csr_der: &[u8]) -> Issued {
    let csr = ParsedCsr::from_der(csr_der, CsrOptions::default()).expect("csr");
    let req = IssuanceRequest {
        csr,
        profile: ObjectRef::new("bench", "tls"),
        requester: Requester::new(Protocol::Acme, "bench"),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    };
    ca.issue(req).await.expect("issued").issued().expect("the bench profile needs no approval")
}

/// An AdmissionReview (admission.k8s.io/v1) asking to CREATE `object` of `kind`, as the
/// API server sends it to the webhook, on behalf of `username`.
pub fn admission_review(kind: &str, object: serde_json::Value, username: &str, dry_run: bool) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-4000-8000-000000000000",
            "kind": {"group": "pkiplane.dev", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "pkiplane.dev", "version": "v1alpha1", "resource": "x"},
            "name": object["metadata"]["name"].clone(),
            "namespace": object["metadata"]["namespace"].clone(),
            "operation": "CREATE",
            "userInfo": {"username": username},
            "dryRun": dry_run,
            "object": object,
        }
    })
}
