//! EST `simpleenroll` load over HTTPS the way a fleet enrolls through one gateway:
//! `--clients` concurrent senders, each keeping its TLS connection open (HTTP/1.1
//! keep-alive), HTTP Basic authentication, one prepared PKCS#10 request per enrollment
//! (a fresh P-256 key and DNS name each, made before the clock starts). A request counts
//! only when it is answered 200 with a PKCS#7 certs-only body (RFC 7030 section 4.2.3).
//! TLS handshakes, HTTP and the server's policy, signing and durable record are all in
//! the figure: compare it with the core issuance rate of the same key type.
//!
//! `est_load --url https://127.0.0.1:8443/.well-known/est/tls --ca-bundle trust.pem
//! --user device-enroller --password est-demo-password --count 2000 --clients 8`
//!
//! Loopback only; bounded in count and time; asserts nothing about time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pkiplane_bench::load::{LoadArgs, require_loopback, tls_client_config};

#[derive(Parser)]
struct Args {
    /// The EST base URL, up to and including the label if any
    /// (https://host:port/.well-known/est[/label]).
    #[arg(long)]
    url: String,
    /// PEM certificates the server's TLS certificate chains to.
    #[arg(long)]
    ca_bundle: PathBuf,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// DNS names are est-load-<n>.<domain>.
    #[arg(long, default_value = "localhost")]
    domain: String,
    #[command(flatten)]
    load: LoadArgs,
}

/// Base64 of a DER PKCS#10 for a fresh P-256 key (the simpleenroll body).
fn csr_body(name: &str) -> Result<Bytes, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    Ok(Bytes::from(STANDARD.encode(csr.der())))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("est_load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    require_loopback(&args.url)?;
    let tls = tls_client_config(Some(&args.ca_bundle))?;
    let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
    // One idle connection kept per sender: each reuses its TLS session for every request.
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.load.clients)
        .pool_idle_timeout(Duration::from_secs(90))
        .build::<_, Full<Bytes>>(connector);
    let auth = format!("Basic {}", STANDARD.encode(format!("{}:{}", args.user, args.password)));
    let bodies: Vec<Bytes> =
        (0..args.load.count).map(|n| csr_body(&format!("est-load-{n}.{}", args.domain))).collect::<Result<_, _>>()?;
    let (bodies, url, auth) =
        (Arc::new(bodies), Arc::new(format!("{}/simpleenroll", args.url.trim_end_matches('/'))), Arc::new(auth));
    let plan = args.load.plan("est", bodies.len());
    let (summary, errors) = plan
        .run(move |n| {
            let (http, bodies, url, auth) = (http.clone(), bodies.clone(), url.clone(), auth.clone());
            async move { enroll(&http, &url, &auth, bodies[n].clone()).await }
        })
        .await;
    summary.report("est_load", &errors, args.load.json);
    Ok(())
}

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

async fn enroll(http: &HttpsClient, url: &str, auth: &str, body: Bytes) -> Result<(), String> {
    let req = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/pkcs10")
        .header("content-transfer-encoding", "base64")
        .header(hyper::header::AUTHORIZATION, auth)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let (ctype, body) = pkiplane_bench::load::fetch(http, req).await?;
    if !ctype.starts_with("application/pkcs7-mime") || body.is_empty() {
        return Err(format!("200 without a certs-only PKCS#7 ({ctype}, {} bytes)", body.len()));
    }
    Ok(())
}
