//! `admission_load`: AdmissionReviews at a steady rate against a running `pkiplane
//! webhook`, reporting latency percentiles (open loop: requests are sent on schedule
//! whether or not earlier ones have answered, so a slow server shows up as latency).
//!
//! ```sh
//! admission_load --url https://127.0.0.1:9444/validate --ca-file webhook-ca.pem \
//!     --rate 200 --seconds 20 --kind profile
//! ```
//!
//! The objects are the quickstart's (`--manifests`); the webhook should be watching a
//! cluster with the quickstart applied, so the reviews are admitted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pkiplane_api::Manifests;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "Steady-rate AdmissionReview load against pkiplane's webhook, with p50/p99 latency.")]
struct Args {
    /// The webhook URL, e.g. https://127.0.0.1:9444/validate (or /mutate).
    #[arg(long)]
    url: String,
    /// PEM bundle to trust the webhook's serving certificate with.
    #[arg(long)]
    ca_file: PathBuf,
    /// Requests per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Which object to review: issuer, profile, endpoint.
    #[arg(long, default_value = "profile")]
    kind: String,
    /// Manifests the objects come from.
    #[arg(long, default_value = "examples/quickstart.yaml")]
    manifests: PathBuf,
}

fn body(kind: &str, manifests: &Manifests) -> Result<Vec<u8>, String> {
    let (kind_name, object): (&str, Value) = match kind {
        "issuer" => ("Issuer", serde_json::to_value(manifests.issuers.get(1)).map_err(|e| e.to_string())?),
        "profile" => {
            ("CertificateProfile", serde_json::to_value(manifests.profiles.first()).map_err(|e| e.to_string())?)
        }
        "endpoint" => {
            ("EnrollmentEndpoint", serde_json::to_value(manifests.endpoints.get(1)).map_err(|e| e.to_string())?)
        }
        other => return Err(format!("unknown kind `{other}` (issuer, profile, endpoint)")),
    };
    if object.is_null() {
        return Err(format!("the manifests have no {kind_name} to send"));
    }
    let review = pkiplane_bench::admission_review(kind_name, object, "admission-load", true);
    serde_json::to_vec(&review).map_err(|e| e.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let manifests = Manifests::load(&args.manifests).map_err(|e| e.to_string())?;
    let payload = Bytes::from(body(&args.kind, &manifests)?);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.ca_file).map_err(|e| e.to_string())? {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri: http::Uri = args.url.parse().map_err(|e| format!("--url: {e}"))?;

    let total = u64::from(args.rate) * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    let started = Instant::now();
    for _ in 0..total {
        ticker.tick().await;
        let (client, uri, payload) = (client.clone(), uri.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let req = http::Request::post(uri)
                .header("content-type", "application/json")
                .body(Full::new(payload))
                .map_err(|e| e.to_string())?;
            let resp = client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            let elapsed = t0.elapsed();
            let answer: Value = serde_json::from_slice(&body).map_err(|e| format!("{status}: {e}"))?;
            let allowed = answer["response"]["allowed"].as_bool().unwrap_or(false);
            Ok::<_, String>((elapsed, allowed))
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let (mut errors, mut denied) = (0u64, 0u64);
    for t in tasks {
        match t.await {
            Ok(Ok((elapsed, allowed))) => {
                latencies.push(elapsed);
                if !allowed {
                    denied += 1;
                }
            }
            Ok(Err(e)) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("request failed: {e}");
                }
            }
            Err(e) => {
                errors += 1;
                eprintln!("task failed: {e}");
            }
        }
    }
    let wall = started.elapsed();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} requests in {:.1}s ({:.0}/s), {errors} errors, {denied} denied: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    if errors > 0 { Err(format!("{errors} requests failed")) } else { Ok(()) }
}
