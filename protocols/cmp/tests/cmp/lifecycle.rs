//! Waiting for approval (pollReq/pollRep), certConf rejection and the confirmation
//! timeout, and refusals at the HTTP level.

use std::time::{Duration, SystemTime};

use pkiplane_cmp::wire::FailBit;
use pkiplane_cmp::wire::message;
use pkiplane_core::inventory::{CertStatus, RevocationReason};
use pkiplane_core::model::ObjectRef;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_approval_is_polled_until_issued() {
    let pki = start(Options::default()).await;
    let k = ec_key(pki.dir.path(), "wait");
    let cert = pki.path("wait.pem");
    let ca = pki.ca.clone();
    // An operator approves after a while: the profile no longer requires approval.
    let approver = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let mut p = (*ca.profile(&ObjectRef::new("pki", "approval")).unwrap()).clone();
        p.approval_required = false;
        ca.put_profile(p);
    });
    let run = pki.ir_with_mac("wait", Some("approval"), &k, "wait.example.com", &cert, &[]).await;
    approver.await.unwrap();
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stderr.contains("received POLLREP"), "{}", run.stderr);
    pki.verify(&cert);
    assert_eq!(pki.record(&cert).await.profile.name, "approval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_client_rejects_is_revoked() {
    let pki = start(Options::default()).await;
    let k = ec_key(pki.dir.path(), "rej");
    let cert = pki.path("rej.pem");
    let before = pki.cmp_count().await;
    // The client checks the new certificate against a CA that did not issue it, and
    // rejects it in certConf.
    let other_key = ec_key(pki.dir.path(), "other-ca");
    let other = pki.path("other-ca.crt");
    openssl_ok(&["req", "-x509", "-new", "-key", p(&other_key), "-subj", "/CN=Other", "-days", "1", "-out", p(&other)]);
    let run = pki.ir_with_mac("rej", None, &k, "rej.example.com", &cert, &["-out_trusted", p(&other)]).await;
    assert!(!run.ok, "the client rejects");
    assert!(run.stderr.contains("PKICONF") || run.responses.len() == 2, "{}", run.stderr);
    assert_eq!(pki.cmp_count().await, before + 1);
    let ip = message::decode(&std::fs::read(pki.path("rej.rsp0.der")).unwrap()).unwrap();
    let der = match pkiplane_cmp::wire::body::decode_response(ip.body_tag, &ip.body).unwrap() {
        pkiplane_cmp::wire::ResponseBody::CertRep(_, rep) => {
            match &rep.response[0].certified_key_pair.as_ref().unwrap().cert_or_enc_cert {
                cmpv2::certified_key_pair::CertOrEncCert::Certificate(c) => der::Encode::to_der(c.as_ref()).unwrap(),
                _ => panic!("a certificate"),
            }
        }
        _ => panic!("ip"),
    };
    let serial = pkiplane_core::x509::cert::CertInfo::from_der(&der).unwrap().serial_hex;
    let record = pki.ca.inventory().find_serial(&serial).await.unwrap().remove(0);
    assert_eq!(record.status, CertStatus::Revoked);
    assert_eq!(record.revocation.unwrap().reason, RevocationReason::CessationOfOperation);
    assert!(pki.crl_serials().await.contains(&serial));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_certificate_is_revoked_after_confirm_wait_time() {
    let pki = start(Options { confirm_wait: Some(Duration::from_secs(1)), ..Options::default() }).await;
    let k = ec_key(pki.dir.path(), "unconf");
    let cert = pki.path("unconf.pem");
    let run = pki.ir_with_mac("unconf", None, &k, "unconf.example.com", &cert, &["-disable_confirm"]).await;
    assert!(run.ok, "{}", run.stderr);
    let record = pki.record(&cert).await;
    assert_eq!(record.status, CertStatus::Issued);
    pki.state.maintain(SystemTime::now()).await;
    assert_eq!(pki.record(&cert).await.status, CertStatus::Issued, "still within confirmWaitTime");
    // Deadlines are kept in whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    pki.state.maintain(SystemTime::now()).await;
    let record = pki.record(&cert).await;
    assert_eq!(record.status, CertStatus::Revoked);
    assert_eq!(record.revocation.unwrap().reason, RevocationReason::CessationOfOperation);
    assert!(pki.crl_serials().await.contains(&record.serial));
    // A late certConf is told the certificate was revoked.
    let tid = run.responses[0].header.transaction_id.clone().unwrap();
    let tx = pki.state.store().transaction(&pki.state.config().endpoint, &hex::encode(tid)).await.unwrap().unwrap();
    assert_eq!(tx.state, pkiplane_cmp::state::TransactionState::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals_carry_cmp_error_messages() {
    let pki = start(Options::default()).await;
    let check = |r: &HttpReply, status: u16, bit: FailBit| {
        assert_eq!(r.status, status, "{}", r.headers);
        assert!(r.headers.to_lowercase().contains("content-type: application/pkixcmp"), "{}", r.headers);
        let msg = message::decode(&r.body).expect("a CMP error message");
        assert_eq!(status_of(&msg).fail().names(), vec![bit.name()]);
    };
    let r = pki.http("GET", "/.well-known/cmp", None, b"").await;
    check(&r, 405, FailBit::BadRequest);
    assert!(r.headers.to_lowercase().contains("allow: post"));
    check(&pki.http("POST", "/.well-known/cmp", Some("text/plain"), b"hello").await, 415, FailBit::BadDataFormat);
    let big = vec![0x30u8; 300 * 1024];
    check(&pki.http("POST", "/.well-known/cmp", Some("application/pkixcmp"), &big).await, 413, FailBit::BadDataFormat);
    check(
        &pki.http("POST", "/.well-known/cmp/p/nope", Some("application/pkixcmp"), b"").await,
        404,
        FailBit::BadRequest,
    );
    // Not DER at all: a CMP-level answer with status 200.
    check(
        &pki.http("POST", "/.well-known/cmp", Some("application/pkixcmp"), b"\x30\x03abc").await,
        200,
        FailBit::BadDataFormat,
    );
}
