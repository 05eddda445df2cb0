//! CMP `ir` load against any CMP server (pkiplane's, OpenSSL's mock `openssl cmp -port`,
//! …): prepared ir messages, each with its own P-256 key, subject, SAN, transactionID
//! and senderNonce, a signature proof of possession, implicitConfirm asked for, and
//! PasswordBasedMac protection with a shared secret (what `openssl cmp -secret` sends),
//! sent by `--clients` concurrent senders (optionally paced to `--rate` per second)
//! until all are sent or `--max-seconds` pass. An answer counts only when its MAC
//! verifies with the secret and it is an ip whose response is accepted (or granted with
//! modifications) with a certificate; with `--own-key` the certificate must also certify
//! the request's key (a real CA; OpenSSL's mock hands out one fixed certificate).
//! Preparing the messages happens before the clock starts, so the figure is the
//! server's.
//!
//! Plain HTTP, kept-alive connections unless `--close` (a new connection per request:
//! OpenSSL's mock server is single-threaded and serves a kept-alive connection until it
//! closes, so concurrent senders would wait on it); loopback only. A benchmark tool,
//! not a test: it asserts nothing about time.
//!
//! `cmp_load --url http://127.0.0.1:18080/.well-known/cmp --count 400 --clients 8
//! [--own-key] [--close] [--label pkiplane] [--json]`

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use clap::Parser;
use cmpv2::certified_key_pair::CertOrEncCert;
use cmpv2::status::PkiStatus;
use crmf::pop::{PopoSigningKey, ProofOfPossession};
use crmf::request::{CertReqMsg, CertRequest, CertTemplate};
use der07::Encode as _;
use der07::asn1::{BitString, Ia5String, Int, OctetString};
use http_body_util::Full;
use pkiplane_bench::load::{HttpClient, LoadArgs, fetch, http_client, prepare_all, require_loopback};
use pkiplane_cmp::protection::mac::{MacAlg, MacLimits, MacProtection, Owf};
use pkiplane_cmp::wire::body::{ResponseBody, decode_response};
use pkiplane_cmp::wire::message::{self, OutHeader, tag};
use pkiplane_cmp::wire::oids;
use rand_core::{OsRng, RngCore};
use rcgen::{PublicKeyData, SigningKey};
use spki07::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert02::ext::Extension;
use x509_cert02::ext::pkix::SubjectAltName;
use x509_cert02::ext::pkix::name::GeneralName;
use x509_cert02::name::Name;

#[derive(Parser)]
struct Args {
    /// The CMP URL (e.g. http://127.0.0.1:18080/.well-known/cmp).
    #[arg(long)]
    url: String,
    /// The shared secret the messages are protected with (PasswordBasedMac).
    #[arg(long, default_value = "bench-secret-1")]
    secret: String,
    /// The senderKID: the name of the shared secret at the server.
    #[arg(long, default_value = "bench")]
    kid: String,
    /// The recipient name of the messages.
    #[arg(long, default_value = "CN=bench")]
    recipient: String,
    /// Subjects are CN=<prefix>-<n>.<domain>, with that DNS name as SAN.
    #[arg(long, default_value = "cmp-load")]
    prefix: String,
    #[arg(long, default_value = "example.com")]
    domain: String,
    /// The returned certificate must certify the request's public key.
    #[arg(long)]
    own_key: bool,
    /// A new connection per request (`Connection: close`).
    #[arg(long)]
    close: bool,
    #[command(flatten)]
    load: LoadArgs,
}

/// One ir ready to send, and the public key (SPKI DER) it asks a certificate for.
struct Prepared {
    body: Bytes,
    spki_der: Vec<u8>,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

fn name(dn: &str) -> Result<Name, String> {
    Name::from_str(dn).map_err(|e| format!("name `{dn}`: {e}"))
}

/// The certificate request of `cn` for `key`, with its signature proof of possession
/// (over the CertRequest's DER, RFC 4211 section 4.1): the DER of CertReqMessages.
fn cert_req_messages(cn: &str, key: &rcgen::KeyPair) -> Result<Vec<u8>, String> {
    let e = |what: &'static str| move |err: der07::Error| format!("{what}: {err}");
    let spki = der07::Decode::from_der(&key.subject_public_key_info()).map_err(e("public key"))?;
    let dns = Ia5String::new(cn).map_err(e("DNS name"))?;
    let san = SubjectAltName(vec![GeneralName::DnsName(dns)]).to_der().map_err(e("SAN"))?;
    let template = CertTemplate {
        version: None,
        serial_number: None,
        signature: None,
        issuer: None,
        validity: None,
        subject: Some(name(&format!("CN={cn}"))?),
        subject_public_key_info: Some::<SubjectPublicKeyInfoOwned>(spki),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![Extension {
            extn_id: oids::SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(san).map_err(e("SAN"))?,
        }]),
    };
    let cert_req =
        CertRequest { cert_req_id: Int::new(&[0]).map_err(e("certReqId"))?, cert_template: template, controls: None };
    let signature = key.sign(&cert_req.to_der().map_err(e("CertRequest"))?).map_err(|err| format!("POP: {err}"))?;
    let popo = ProofOfPossession::Signature(Box::new(PopoSigningKey {
        poposk_input: None,
        alg_id: AlgorithmIdentifierOwned { oid: oids::ECDSA_WITH_SHA256, parameters: None },
        signature: BitString::from_bytes(&signature).map_err(e("POP"))?,
    }));
    vec![CertReqMsg { cert_req, popo: Some(popo), reg_info: None }].to_der().map_err(e("CertReqMessages"))
}

/// A fresh key and the MAC-protected ir asking a certificate for it.
fn prepare(args: &Args, n: usize) -> Result<Prepared, String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| format!("key: {e}"))?;
    let cn = format!("{}-{n}.{}", args.prefix, args.domain);
    let content = cert_req_messages(&cn, &key)?;
    let mac =
        MacProtection::Pbm { salt: random::<16>().to_vec(), owf: Owf::Sha256, iterations: 500, mac: MacAlg::HmacSha1 };
    let e = |what: &'static str| move |err: der07::Error| format!("{what}: {err}");
    let header = OutHeader {
        pvno: 2,
        sender: GeneralName::DirectoryName(name(&format!("CN={cn}"))?),
        recipient: GeneralName::DirectoryName(name(&args.recipient)?),
        message_time: SystemTime::now(),
        protection_alg: Some(mac.algorithm_identifier().map_err(e("protectionAlg"))?),
        sender_kid: Some(args.kid.as_bytes().to_vec()),
        transaction_id: Some(random::<16>().to_vec()),
        sender_nonce: random::<16>().to_vec(),
        recip_nonce: None,
        free_text: vec![],
        general_info: vec![cmpv2::r#gen::InfoTypeAndValue {
            oid: oids::IT_IMPLICIT_CONFIRM,
            value: Some(der07::asn1::Any::null()),
        }],
    };
    let header = message::encode_header(&header).map_err(e("header"))?;
    let body = message::encode_body(tag::IR, &content).map_err(e("body"))?;
    let protection =
        mac.compute(args.secret.as_bytes(), &message::protected_part(&header, &body).map_err(e("protected part"))?);
    let der = message::encode_message(&header, &body, Some(&protection), &[]).map_err(e("message"))?;
    Ok(Prepared { body: Bytes::from(der), spki_der: key.subject_public_key_info() })
}

/// Checks an answer: MAC-protected with the secret, an ip whose one response is
/// accepted with a certificate (certifying `spki_der` when `own_key`).
fn check_answer(der: &[u8], secret: &[u8], spki_der: &[u8], own_key: bool) -> Result<(), String> {
    let msg = message::decode(der).map_err(|e| format!("answer: {e}"))?;
    let alg = msg.header.protection_alg.as_ref().ok_or("the answer is not protected")?;
    let mac =
        MacProtection::from_algorithm(alg, MacLimits::default()).map_err(|e| format!("answer protection: {e}"))?;
    let protection = msg.protection.as_deref().unwrap_or_default();
    if !mac.verify(secret, &msg.protected_part, protection) {
        return Err("the answer's MAC does not verify with the secret".into());
    }
    let rep = match decode_response(msg.body_tag, &msg.body).map_err(|e| format!("answer body: {e}"))? {
        ResponseBody::CertRep(tag::IP, rep) => rep,
        ResponseBody::Error(e) => {
            return Err(format!("error message: {:?} {:?}", e.status_info.status, e.status_info.status_string));
        }
        other => return Err(format!("a {} answer, not ip", tag::name(other.tag()))),
    };
    let response = rep.response.first().ok_or("an ip without response")?;
    if !matches!(response.status.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
        return Err(format!("status {:?} {:?}", response.status.status, response.status.status_string));
    }
    let cert = match response.certified_key_pair.as_ref().map(|p| &p.cert_or_enc_cert) {
        Some(CertOrEncCert::Certificate(cert)) => cert,
        _ => return Err("accepted without a certificate".into()),
    };
    if own_key {
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| e.to_string())?;
        if spki != spki_der {
            return Err("the certificate does not certify the requested key".into());
        }
    }
    Ok(())
}

/// Sends one prepared ir; Ok when the answer passed [`check_answer`].
async fn enroll(http: &HttpClient, args: &Args, p: &Prepared) -> Result<(), String> {
    let mut req = hyper::Request::post(&args.url).header(hyper::header::CONTENT_TYPE, "application/pkixcmp");
    if args.close {
        req = req.header(hyper::header::CONNECTION, "close");
    }
    let req = req.body(Full::new(p.body.clone())).map_err(|e| e.to_string())?;
    let (_, body) = fetch(http, req).await?;
    check_answer(&body, args.secret.as_bytes(), &p.spki_der, args.own_key)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("cmp_load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    require_loopback(&args.url)?;
    let prep_started = Instant::now();
    let prepared = Arc::new(prepare_all(args.load.count, |n| prepare(&args, n))?);
    eprintln!(
        "cmp_load: {} ir prepared in {:.1}s; {}{}",
        prepared.len(),
        prep_started.elapsed().as_secs_f64(),
        args.load.sending(),
        if args.close { ", a connection per request" } else { ", connections kept alive" },
    );
    let plan = args.load.plan("cmp", prepared.len());
    let (json, http, args) = (args.load.json, http_client(), Arc::new(args));
    let (summary, errors) = plan
        .run(move |n| {
            let (http, prepared, args) = (http.clone(), prepared.clone(), args.clone());
            async move { enroll(&http, &args, &prepared[n]).await }
        })
        .await;
    summary.report("cmp_load", &errors, json);
    Ok(())
}
