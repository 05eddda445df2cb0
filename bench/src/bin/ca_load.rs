//! Issuance throughput of running `pkiplane ca` replicas, through their internal API the
//! way endpoint pods call it (mutual TLS, `POST /v1/issue`): `--clients` concurrent
//! callers spread round-robin over the `--ca` URLs, each issuing for a fresh P-256 key,
//! until `--count` certificates or `--max-seconds`. Prints issuances per second and
//! latency percentiles. A benchmark tool, not a test: it asserts nothing about time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use pkiplane_caservice::tls::{Reloading, TlsMaterial, build_client};
use pkiplane_caservice::{RemoteAuthority, Transport};
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::service::Authority;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};

#[derive(Parser)]
struct Args {
    /// Internal API URLs of the replicas (repeat).
    #[arg(long = "ca", required = true)]
    cas: Vec<String>,
    /// The caller's identity directory (tls.crt, tls.key, ca.crt): an endpoint's.
    #[arg(long)]
    identity: PathBuf,
    /// The endpoint the identity is (namespace/name).
    #[arg(long, default_value = "pki/est")]
    endpoint: String,
    #[arg(long, default_value = "pki/enterprise-tls-47d")]
    profile: String,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 500)]
    count: usize,
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

fn object_ref(s: &str) -> ObjectRef {
    let (ns, name) = s.split_once('/').expect("namespace/name");
    ObjectRef::new(ns, name)
}

fn csr(name: &str) -> ParsedCsr {
    let key = rcgen::KeyPair::generate().expect("a P-256 key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("CSR parameters");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let der = params.serialize_request(&key).expect("a CSR").der().to_vec();
    ParsedCsr::from_pem_or_der(&der, CsrOptions::default()).expect("a parsable CSR")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let material = TlsMaterial::load(&args.identity).expect("--identity");
    let tls = Reloading::fixed(build_client(&material).expect("client TLS"));
    let mut authorities = Vec::new();
    for url in &args.cas {
        let transport = Transport::new(url, tls.clone()).expect("--ca URL");
        authorities.push(RemoteAuthority::connect(transport).await.expect("connecting to the CA service"));
    }
    let authorities = Arc::new(authorities);
    let (endpoint, profile) = (object_ref(&args.endpoint), object_ref(&args.profile));
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (authorities, next, endpoint, profile) =
            (authorities.clone(), next.clone(), endpoint.clone(), profile.clone());
        let count = args.count;
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut failures) = (Vec::new(), 0usize);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count || Instant::now() >= deadline {
                    return (latencies, failures);
                }
                let req = IssuanceRequest {
                    csr: csr(&format!("bench-{n}.localhost")),
                    profile: profile.clone(),
                    requester: Requester {
                        protocol: Protocol::Est,
                        endpoint: Some(endpoint.clone()),
                        identity: "ca_load".into(),
                        claims: Default::default(),
                    },
                    requested: RequestedValidity::default(),
                    renewal_of: None,
                    exchange: None,
                };
                let t = Instant::now();
                match authorities[n % authorities.len()].issue(req).await {
                    Ok(IssueOutcome::Issued(_)) => latencies.push(t.elapsed()),
                    Ok(other) => panic!("not issued: {other:?}"),
                    Err(e) => {
                        failures += 1;
                        eprintln!("issuance failed: {e}");
                    }
                }
            }
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for t in tasks {
        let (l, f) = t.await.expect("a client task");
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied().unwrap_or_default();
    println!(
        "replicas={} clients={} issued={} failed={} seconds={:.1} issuances/s={:.1} p50_ms={:.1} p99_ms={:.1}",
        args.cas.len(),
        args.clients,
        latencies.len(),
        failures,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}
