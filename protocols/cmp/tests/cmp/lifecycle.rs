//! Waiting for approval (pollReq/pollRep), certConf rejection and the confirmation
//! timeout, and refusals at the HTTP level.

use std::time::{Duration, SystemTime};

use pkiplane_cmp::wire::FailBit;
use pkiplane_cmp::wire::message;
use pkiplane_core::approval::{ApprovalFilter, ApprovalRequest};
use pkiplane_core::inventory::{CertStatus, RevocationReason};
use pkiplane_core::model::ObjectRef;
use std::sync::Arc;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_approval_is_polled_until_issued() {
    let pki = start(Options::default()).await;
    let k = ec_key(pki.dir.path(), "wait");
    let cert = pki.path("wait.pem");
    let ca = pki.ca.clone();
    // An approver approves the request by id once it waits.
    let approver = tokio::spawn(async move {
        let id = wait_for_requests(&ca, 1).await.remove(0).id;
        ca.approve(&id, "alice", None).await.unwrap();
    });
    let run = pki.ir_with_mac("wait", Some("approval"), &k, "wait.example.com", &cert, &[]).await;
    approver.await.unwrap();
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stderr.contains("received POLLREP"), "{}", run.stderr);
    pki.verify(&cert);
    assert_eq!(pki.record(&cert).await.profile.name, "approval");
    // The profile still requires approval: approving one request released only it.
    assert!(pki.ca.profile(&ObjectRef::new("pki", "approval")).unwrap().approval_required);
}

/// The waiting approval requests, once there are `n` (polled, bounded: a request the
/// client sent is recorded within milliseconds; the bound only ends a broken test).
pub async fn wait_for_requests(ca: &pkiplane_core::issuance::Ca, n: usize) -> Vec<ApprovalRequest> {
    for _ in 0..600 {
        let waiting = ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap();
        if waiting.len() >= n {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} requests never waited for approval");
}

/// Issue 17's acceptance for CMP with `openssl cmp`: three clients wait (pollReq /
/// pollRep); one approved by id gets its certificate (ip after polling, verified against
/// the chain), one denied gets an error message with status rejection naming the
/// approver's reason, and the third keeps polling until its own total timeout, its
/// request still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_approved_request_is_issued_and_a_denied_one_is_rejected() {
    let pki = Arc::new(start(Options::default()).await);
    let mut runs = Vec::new();
    for name in ["ok", "wait", "no"] {
        let (pki, k, cert) = (pki.clone(), ec_key(pki.dir.path(), name), pki.path(&format!("{name}.pem")));
        runs.push(tokio::spawn(async move {
            let (subject, secret) = (format!("/CN={name}.example.com"), format!("pass:{SECRET}"));
            let args = [
                "-cmd",
                "ir",
                "-ref",
                KID,
                "-secret",
                &secret,
                "-newkey",
                p(&k),
                "-subject",
                &subject,
                "-certout",
                p(&cert),
            ];
            pki.cmp(name, Some("approval"), &args).await
        }));
    }
    let waiting = wait_for_requests(&pki.ca, 3).await;
    let by_cn = |cn: &str| waiting.iter().find(|r| r.subject.contains(cn)).unwrap().id.clone();
    pki.ca.approve(&by_cn("ok.example.com"), "alice", None).await.unwrap();
    pki.ca.deny(&by_cn("no.example.com"), "alice", "not a known device").await.unwrap();
    let (no, wait) = (runs.pop().unwrap().await.unwrap(), runs.pop().unwrap().await.unwrap());
    let ok = runs.pop().unwrap().await.unwrap();

    assert!(ok.ok, "{}", ok.stderr);
    assert!(ok.stderr.contains("received POLLREP"), "{}", ok.stderr);
    pki.verify(&pki.path("ok.pem"));
    assert_eq!(pki.record(&pki.path("ok.pem")).await.profile.name, "approval");

    assert!(!no.ok, "{}", no.stderr);
    assert!(no.stderr.contains("rejection"), "{}", no.stderr);
    assert!(no.stderr.contains("not a known device"), "{}", no.stderr);
    assert!(!pki.path("no.pem").exists());

    assert!(!wait.ok, "{}", wait.stderr);
    assert!(wait.stderr.contains("received POLLREP"), "{}", wait.stderr);
    assert!(!pki.path("wait.pem").exists());
    let still = pki.ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap();
    assert_eq!(still.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![by_cn("wait.example.com")]);
    assert_eq!(pki.cmp_count().await, 1, "one certificate signed");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_purges_at_most_every_ten_minutes() {
    let pki = start(Options::default()).await;
    let store = pki.state.store();
    let endpoint = pki.state.config().endpoint.clone();
    let t0 = SystemTime::now();
    // A nonce already expired: a purge removes it, and then it is fresh again.
    let expired = t0 - Duration::from_secs(1);
    assert!(store.use_nonce(&endpoint, "n1", expired).await.unwrap());
    pki.state.maintain(t0).await;
    assert!(store.use_nonce(&endpoint, "n1", expired).await.unwrap(), "the first round purges");
    pki.state.maintain(t0 + Duration::from_secs(60)).await;
    assert!(!store.use_nonce(&endpoint, "n1", expired).await.unwrap(), "no purge a minute later");
    pki.state.maintain(t0 + Duration::from_secs(601)).await;
    assert!(store.use_nonce(&endpoint, "n1", expired).await.unwrap(), "a purge ten minutes later");
}
