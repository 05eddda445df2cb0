//! Golden CMP messages: requests made by `openssl cmp` (OpenSSL 3.0) and pkiplane's
//! responses, which that client accepted, kept in `tests/vectors/` and checked here:
//! every message decodes, every MAC verifies with the test secret, the bodies are what
//! the exchange had, and the recorded ir, replayed into a fresh server, is issued again.
//!
//! `PKIPLANE_CMP_WRITE_VECTORS=1 cargo test -p pkiplane-cmp --test cmp vectors -- --ignored`
//! records them anew.

use std::path::PathBuf;
use std::time::Duration;

use pkiplane_cmp::protection::mac::{MacLimits, MacProtection};
use pkiplane_cmp::wire::body::{RequestBody, ResponseBody, decode_request, decode_response};
use pkiplane_cmp::wire::message::{self, Incoming, tag};
use pkiplane_cmp::wire::{FailBit, oids};

use pkiplane_core::clock::ManualClock;

use crate::common::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("vectors")
}

fn load(name: &str) -> Incoming {
    let der = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    message::decode(&der).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Verifies the MAC of a message with the test secret.
fn mac_ok(msg: &Incoming, secret: &str) -> bool {
    let alg = msg.header.protection_alg.as_ref().expect("protected");
    let mac = MacProtection::from_algorithm(alg, MacLimits::default()).expect("a MAC algorithm");
    mac.verify(secret.as_bytes(), &msg.protected_part, msg.protection.as_deref().unwrap())
}

/// (file, body tag) of every vector.
const VECTORS: [(&str, u8); 12] = [
    ("ir.req.der", tag::IR),
    ("ir.rsp.der", tag::IP),
    ("certconf.req.der", tag::CERT_CONF),
    ("pkiconf.rsp.der", tag::PKI_CONF),
    ("p10cr.req.der", tag::P10CR),
    ("cp.rsp.der", tag::CP),
    ("genm-cacerts.req.der", tag::GENM),
    ("genp-cacerts.rsp.der", tag::GENP),
    ("rr.req.der", tag::RR),
    ("rp.rsp.der", tag::RP),
    ("ir-wrong-secret.req.der", tag::IR),
    ("error-bad-mac.rsp.der", tag::ERROR),
];

#[test]
fn recorded_messages_decode_and_their_macs_verify() {
    for (name, body_tag) in VECTORS {
        let msg = load(name);
        assert_eq!(msg.body_tag, body_tag, "{name}");
        assert_eq!(msg.header.pvno, 2, "{name}");
        if name.contains(".req.") {
            let body = decode_request(msg.body_tag, &msg.body).unwrap().unwrap_or_else(|| panic!("{name}"));
            if name == "ir.req.der" {
                let RequestBody::CertRequests(items) = body else { panic!("ir") };
                assert_eq!(items[0].cert_req_id, 0);
                assert!(items[0].popo.is_some(), "openssl signs a POP");
            }
        } else {
            let body = decode_response(msg.body_tag, &msg.body).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let ResponseBody::CertRep(_, rep) = &body {
                assert!(rep.response[0].certified_key_pair.is_some(), "{name}");
                assert!(rep.ca_pubs.is_some(), "{name}: caPubs for a MAC-protected enrollment");
            }
        }
        let wrong = name.contains("wrong-secret") || name.starts_with("error");
        if name.starts_with("error") {
            // Answering an unauthenticated request: signed, not MACed.
            assert!(!MacProtection::is_mac(msg.header.protection_alg.as_ref().unwrap()));
            let ResponseBody::Error(e) = decode_response(msg.body_tag, &msg.body).unwrap() else { panic!() };
            assert_eq!(e.status_info.fail().names(), [FailBit::BadMessageCheck.name()]);
        } else {
            assert_eq!(mac_ok(&msg, SECRET), !wrong, "{name}");
        }
    }
    // Responses answer their requests.
    let (ir, ip) = (load("ir.req.der"), load("ir.rsp.der"));
    assert_eq!(ip.header.transaction_id, ir.header.transaction_id);
    assert_eq!(ip.header.recip_nonce, ir.header.sender_nonce);
    let conf = load("certconf.req.der");
    assert_eq!(conf.header.recip_nonce, ip.header.sender_nonce);
    assert!(ip.header.has_info(&oids::IT_CONFIRM_WAIT_TIME));
}

/// A server whose clock stands at the recorded ir's messageTime, as when it was made.
async fn server_at_recording_time(offset: Duration) -> Pki {
    let at = load("ir.req.der").header.message_time.expect("openssl sets messageTime");
    let clock = ManualClock::new(at + offset);
    start(Options { clock: Some(clock.shared()), ..Options::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_ir_is_issued_again_by_a_fresh_server() {
    // The server's clock is set to the time the message was made, so the replay does not
    // depend on the day the suite runs; the default clock-skew window applies.
    let pki = server_at_recording_time(Duration::from_secs(5)).await;
    let der = std::fs::read(dir().join("ir.req.der")).unwrap();
    let reply = pki.post(None, &der).await;
    assert_eq!(reply.body_tag, tag::IP);
    assert!(mac_ok(&reply, SECRET));
    let status = status_of(&reply);
    assert!(status.fail().bits().is_empty(), "{:?}", status.status_string);
    assert_eq!(pki.cmp_count().await, 1);
    // And once only.
    let again = pki.post(None, &der).await;
    assert_eq!(status_of(&again).fail().names(), [FailBit::TransactionIdInUse.name()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_ir_a_year_later_is_refused_with_bad_time() {
    let pki = server_at_recording_time(Duration::from_secs(365 * 86_400)).await;
    let der = std::fs::read(dir().join("ir.req.der")).unwrap();
    let reply = pki.post(None, &der).await;
    assert_eq!(reply.body_tag, tag::ERROR);
    let ResponseBody::Error(e) = decode_response(reply.body_tag, &reply.body).unwrap() else { panic!("error body") };
    assert_eq!(e.status_info.fail().names(), [FailBit::BadTime.name()]);
    assert_eq!(pki.cmp_count().await, 0, "nothing issued for a stale message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records the golden vectors; run with PKIPLANE_CMP_WRITE_VECTORS=1"]
async fn record_vectors() {
    if std::env::var("PKIPLANE_CMP_WRITE_VECTORS").is_err() {
        return;
    }
    let pki = start(Options::default()).await;
    let secret = format!("pass:{SECRET}");
    let out = dir();
    std::fs::create_dir_all(&out).unwrap();
    let copy = |from: &str, to: &str| std::fs::copy(pki.path(from), out.join(to)).unwrap();
    let k = ec_key(pki.dir.path(), "v1");
    let cert = pki.path("v1.pem");
    let san = ["-subject", "/CN=vector.example.com", "-sans", "vector.example.com"];
    let run = pki.ir_with_mac("ir", None, &k, "vector.example.com", &cert, &[]).await;
    assert!(run.ok, "{}", run.stderr);
    copy("ir.req0.der", "ir.req.der");
    copy("ir.rsp0.der", "ir.rsp.der");
    copy("ir.req1.der", "certconf.req.der");
    copy("ir.rsp1.der", "pkiconf.rsp.der");
    let csr = pki.path("v.csr");
    pkcs10_request(&k, "vector.example.com", &csr);
    let run = pki.p10cr_with_mac("p10", &csr, &pki.path("p10.pem"), &["-implicit_confirm"]).await;
    assert!(run.ok, "{}", run.stderr);
    copy("p10.req0.der", "p10cr.req.der");
    copy("p10.rsp0.der", "cp.rsp.der");
    let run = pki.cmp("genm", None, &["-cmd", "genm", "-ref", KID, "-secret", &secret, "-infotype", "caCerts"]).await;
    assert!(run.ok, "{}", run.stderr);
    copy("genm.req0.der", "genm-cacerts.req.der");
    copy("genm.rsp0.der", "genp-cacerts.rsp.der");
    let run = pki.cmp("rr", None, &["-cmd", "rr", "-ref", KID, "-secret", &secret, "-oldcert", p(&cert)]).await;
    assert!(run.ok, "{}", run.stderr);
    copy("rr.req0.der", "rr.req.der");
    copy("rr.rsp0.der", "rp.rsp.der");
    let run = pki
        .cmp(
            "bad",
            None,
            &[
                &[
                    "-cmd",
                    "ir",
                    "-ref",
                    KID,
                    "-secret",
                    "pass:wrong-secret",
                    "-newkey",
                    p(&k),
                    "-certout",
                    p(&pki.path("bad.pem")),
                    "-unprotected_errors",
                ][..],
                &san,
            ]
            .concat(),
        )
        .await;
    assert!(!run.ok);
    copy("bad.req0.der", "ir-wrong-secret.req.der");
    copy("bad.rsp0.der", "error-bad-mac.rsp.der");
}
