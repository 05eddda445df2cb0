//! SCEP enrollment load against any SCEP server (pkiplane's, micromdm's scepserver, …):
//! prepared PKCSReq messages, each with its own RSA key, self-signed signer certificate,
//! CN and transactionID, sent by `--clients` concurrent senders (optionally paced to
//! `--rate` requests per second) until all are sent or `--max-seconds` pass. A request
//! counts as issued only when its CertRep is SUCCESS, its signature verifies and it
//! decrypts to a certificate. Preparing the messages (key generation, encryption,
//! signing) happens before the clock starts, so the figure is the server's.
//!
//! Spawning a client process per enrollment (scripts/tools/scep-bench.sh) measures
//! mostly the client; this tool measures the server. Plain HTTP, loopback only; a
//! benchmark tool, not a test: it asserts nothing about time.
//!
//! `scep_load --url http://127.0.0.1:18380/scep --challenge bench-challenge --count 400
//! --clients 8 [--rate 200] [--label pkiplane] [--json]`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Parser;
use der::{Decode, Encode};
use http_body_util::Full;
use pkiplane_bench::load::{HttpClient, LoadArgs, fetch, http_client, prepare_all, require_loopback};
use pkiplane_scep::algorithms::{ContentAlg, DigestAlg};
use pkiplane_scep::client::{self, Request};
use pkiplane_scep::cms::outgoing::Signer;
use pkiplane_scep::message::{MessageType, PkiStatus};
use pkiplane_scep::rsa_key::RaKey;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use x509_cert::Certificate;

#[derive(Parser)]
struct Args {
    /// The SCEP URL without query (e.g. http://127.0.0.1:18380/scep).
    #[arg(long)]
    url: String,
    /// The challengePassword put into every CSR.
    #[arg(long, default_value = "bench-challenge")]
    challenge: String,
    /// CSR subjects are CN=<prefix>-<n>; SANs <prefix>-<n>.<domain>.
    #[arg(long, default_value = "scep-load")]
    prefix: String,
    #[arg(long, default_value = "example.com")]
    domain: String,
    #[arg(long, default_value_t = 2048)]
    key_bits: usize,
    /// Keep the generated RSA keys here (PKCS#8 DER, `rsa-<bits>-<n>.der`) and reuse
    /// them in later runs: generating thousands of RSA keys takes minutes. Each message
    /// still has its own key, CN and transactionID.
    #[arg(long)]
    key_cache: Option<std::path::PathBuf>,
    #[command(flatten)]
    load: LoadArgs,
}

/// One enrollment ready to send: the request, and what reading the reply needs.
struct Prepared {
    body: Bytes,
    cert: Certificate,
    /// The requester's key in AWS-LC (the RA key's type): decrypting each reply with the
    /// `rsa` crate took the generator more CPU than the server's whole request, and on
    /// two cores shared with the server that CPU is taken from the server measured.
    key: RaKey,
}

async fn get(http: &HttpClient, url: &str) -> Result<(String, Bytes), String> {
    let req = hyper::Request::get(url).body(Full::default()).map_err(|e| e.to_string())?;
    fetch(http, req).await
}

/// The certificate requests are encrypted to: the RA certificate of a PKCS#7 GetCACert
/// answer (or its CA when it names no RA), or the one certificate a CA without an RA
/// answers with (`application/x-x509-ca-cert`).
fn recipient(ctype: &str, body: &[u8]) -> Result<Certificate, String> {
    if ctype.starts_with("application/x-x509-ca-cert") {
        return Certificate::from_der(body).map_err(|e| format!("GetCACert: {e}"));
    }
    client::ra_certificate(body).map_err(|e| format!("GetCACert: {e}"))
}

/// The strongest algorithms both sides have (RFC 8894 section 3.5.2).
fn algorithms(caps: &str) -> (ContentAlg, DigestAlg) {
    let has = |c: &str| caps.lines().any(|l| l.trim().eq_ignore_ascii_case(c));
    let cipher = if has("AES") {
        ContentAlg::Aes128Cbc
    } else if has("DES3") {
        ContentAlg::DesEde3Cbc
    } else {
        ContentAlg::DesCbc
    };
    let digest = if has("SHA-256") { DigestAlg::Sha256 } else { DigestAlg::Sha1 };
    (cipher, digest)
}

/// DER of `SET { PrintableString challenge }`: the challengePassword attribute's values.
fn challenge_values(challenge: &str) -> Result<Vec<u8>, String> {
    let value = der::asn1::PrintableStringRef::new(challenge).map_err(|e| format!("--challenge: {e}"))?;
    let set = der::asn1::SetOfVec::try_from(vec![der::Any::encode_from(&value).map_err(|e| e.to_string())?])
        .map_err(|e| e.to_string())?;
    set.to_der().map_err(|e| e.to_string())
}

const CHALLENGE_PASSWORD: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];

/// A key, a CSR with the challenge, a self-signed signer certificate and the signed,
/// encrypted PKCSReq.
fn prepare(args: &Args, n: usize, ra: &Certificate, algs: (ContentAlg, DigestAlg)) -> Result<Prepared, String> {
    let key = rsa_key(args, n)?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| format!("PKCS#8: {e}"))?;
    let der: rustls::pki_types::PrivatePkcs8KeyDer<'_> = pkcs8.as_bytes().to_vec().into();
    let signing = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("signing key: {e}"))?;
    let cn = format!("{}-{n}", args.prefix);
    let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.{}", args.domain)]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn.clone());
    let attrs = vec![rcgen::Attribute { oid: CHALLENGE_PASSWORD, values: challenge_values(&args.challenge)? }];
    let csr = params.serialize_request_with_attributes(&signing, attrs).map_err(|e| format!("CSR: {e}"))?;
    let self_signed = params.self_signed(&signing).map_err(|e| format!("signer certificate: {e}"))?;
    let cert = Certificate::from_der(self_signed.der()).map_err(|e| e.to_string())?;
    let transaction_id = format!("{}-{n}-{}", args.prefix, std::process::id());
    let built = client::build(&Request {
        signer: Signer { cert: &cert, key: &key },
        message_type: MessageType::PkcsReq,
        transaction_id: &transaction_id,
        content: csr.der(),
        recipient: ra,
        cipher: algs.0,
        digest: algs.1,
        signing_time: Some(std::time::SystemTime::now()),
    })
    .map_err(|e| format!("PKCSReq: {e}"))?;
    let key = RaKey::from_pkcs8(pkcs8.as_bytes()).map_err(|e| format!("requester key {n}: {e}"))?;
    Ok(Prepared { body: Bytes::from(built.der), cert, key })
}

/// Key `n`: from the key cache when it holds it, else new (and put there).
fn rsa_key(args: &Args, n: usize) -> Result<RsaPrivateKey, String> {
    let path = args.key_cache.as_ref().map(|d| d.join(format!("rsa-{}-{n}.der", args.key_bits)));
    if let Some(der) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        return RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| format!("cached key {n}: {e}"));
    }
    let key = RsaPrivateKey::new(&mut rand_core::OsRng, args.key_bits).map_err(|e| format!("RSA key: {e}"))?;
    if let Some(path) = path {
        let der = key.to_pkcs8_der().map_err(|e| format!("PKCS#8: {e}"))?;
        // Written aside and renamed: a concurrent run reads a whole key or none.
        let part = path.with_extension(format!("part-{}", std::process::id()));
        std::fs::create_dir_all(path.parent().unwrap_or(&path))
            .and_then(|()| std::fs::write(&part, der.as_bytes()))
            .and_then(|()| std::fs::rename(&part, &path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(key)
}

/// Sends one prepared request; Ok when it came back issued.
async fn enroll(http: &HttpClient, url: &str, p: &Prepared) -> Result<(), String> {
    let req = hyper::Request::post(format!("{url}?operation=PKIOperation"))
        .header(hyper::header::CONTENT_TYPE, "application/x-pki-message")
        .body(Full::new(p.body.clone()))
        .map_err(|e| e.to_string())?;
    let (_, body) = fetch(http, req).await?;
    let reply =
        client::read_reply(&body, &Signer { cert: &p.cert, key: &p.key }).map_err(|e| format!("CertRep: {e}"))?;
    match reply.status {
        PkiStatus::Success if !reply.certs.is_empty() => Ok(()),
        status => Err(format!("CertRep {status:?} {:?}", reply.fail_info)),
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("scep_load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    require_loopback(&args.url)?;
    let http = http_client();
    let (_, caps) = get(&http, &format!("{}?operation=GetCACaps", args.url)).await?;
    let algs = algorithms(&String::from_utf8_lossy(&caps));
    let (ctype, ca) = get(&http, &format!("{}?operation=GetCACert", args.url)).await?;
    let ra = recipient(&ctype, &ca)?;
    let prep_started = Instant::now();
    let prepared = Arc::new(prepare_all(args.load.count, |n| prepare(&args, n, &ra, algs))?);
    eprintln!(
        "scep_load: {} requests prepared in {:.1}s ({:?}, {:?}); {}",
        prepared.len(),
        prep_started.elapsed().as_secs_f64(),
        algs.0,
        algs.1,
        args.load.sending(),
    );

    let url = Arc::new(args.url.clone());
    let plan = args.load.plan("scep", prepared.len());
    let (summary, errors) = plan
        .run(move |n| {
            let (http, prepared, url) = (http.clone(), prepared.clone(), url.clone());
            async move { enroll(&http, &url, &prepared[n]).await }
        })
        .await;
    summary.report("scep_load", &errors, args.load.json);
    Ok(())
}
