//! The SCEP server over HTTP with hand-built messages: every operation, every failInfo,
//! replay, challenges and the containment checks. Real clients are in `real_clients.rs`.

mod common;

use pkiplane_core::approval::ApprovalFilter;
use pkiplane_core::issuance::RevocationRequest;

use std::time::{Duration, SystemTime};

use cms::cert::IssuerAndSerialNumber;
use common::http::{get, post, request};
use common::identity::{Identity, make};
use common::*;
use der::{Decode, Encode};
use pkiplane_scep::algorithms::{ContentAlg, DigestAlg};
use pkiplane_scep::client::{self, Request};
use pkiplane_scep::message::{IssuerAndSubject, MessageType};
use pkiplane_scep::state::{ScepStore, TransactionStatus};
use pkiplane_scep::{ChallengeBinding, FailInfo, PkiStatus};
use x509_cert::Certificate;

async fn ra_cert(env: &Env) -> Certificate {
    let r = get(&format!("{}?operation=GetCACert", env.url())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-x509-ca-ra-cert");
    client::ra_certificate(&r.body).unwrap()
}

async fn op(env: &Env, der: Vec<u8>) -> Vec<u8> {
    let r = post(&format!("{}?operation=PKIOperation", env.url()), der).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, "application/x-pki-message");
    r.body
}

fn ias(cert_der: &[u8]) -> Vec<u8> {
    let c = Certificate::from_der(cert_der).unwrap();
    IssuerAndSerialNumber {
        issuer: c.tbs_certificate().issuer().clone(),
        serial_number: c.tbs_certificate().serial_number().clone(),
    }
    .to_der()
    .unwrap()
}

/// Enrolls `id` with a PKCSReq and returns the issued certificate.
async fn enroll(env: &Env, id: &Identity, ra: &Certificate, tid: &str) -> Vec<u8> {
    let built = id.request(ra, MessageType::PkcsReq, tid, &id.csr_der);
    let reply = id.read(&op(env, built.der).await);
    assert_eq!(reply.status, PkiStatus::Success, "failInfo {:?}", reply.fail_info);
    assert_eq!(reply.recipient_nonce, built.sender_nonce);
    assert_eq!(reply.transaction_id, tid);
    assert_eq!(reply.signer_der, ra.to_der().unwrap(), "CertRep must be signed by the RA");
    assert_eq!(reply.certs.len(), 1);
    reply.certs[0].clone()
}

/// A PKCSReq for `csr` (someone's request) signed by `signer`, without signingTime.
fn pkcsreq_signed_by(signer: &Identity, ra: &Certificate, tid: &str, csr: &[u8]) -> Vec<u8> {
    client::build(&Request {
        signer: signer.signer(),
        message_type: MessageType::PkcsReq,
        transaction_id: tid,
        content: csr,
        recipient: ra,
        cipher: ContentAlg::Aes128Cbc,
        digest: DigestAlg::Sha256,
        signing_time: None,
    })
    .unwrap()
    .der
}

async fn expect_failure(env: &Env, id: &Identity, der: Vec<u8>, fail: FailInfo) {
    let before = env.scep_records().await.len();
    let reply = id.read(&op(env, der).await);
    assert_eq!(reply.status, PkiStatus::Failure);
    assert_eq!(reply.fail_info, Some(fail));
    assert_eq!(env.scep_records().await.len(), before, "nothing may be issued");
}

/// A `message_type` request from `id` for `content`, encrypted to `recipient`, that must
/// fail with `fail` and issue nothing.
async fn refused(
    env: &Env,
    id: &Identity,
    recipient: &Certificate,
    message_type: MessageType,
    tid: &str,
    content: &[u8],
    fail: FailInfo,
) {
    expect_failure(env, id, id.request(recipient, message_type, tid, content).der, fail).await;
}

/// A `message_type` exchange from `id` for `content`, its request and reply kept as the
/// recorded vectors `<vector>.req.der` and `<vector>.rep.der`; returns the reply.
async fn recorded(
    env: &Env,
    id: &Identity,
    ra: &Certificate,
    (message_type, tid, content): (MessageType, &str, &[u8]),
    vector: &str,
) -> Vec<u8> {
    let built = id.request(ra, message_type, tid, content);
    let body = op(env, built.der.clone()).await;
    env.save_vector(&format!("{vector}.req.der"), &built.der);
    env.save_vector(&format!("{vector}.rep.der"), &body);
    body
}

/// The CertPoll content of `id`'s pending request: the issuing CA's and `id`'s subjects.
fn poll_content(env: &Env, id: &Identity) -> Vec<u8> {
    let ca = Certificate::from_der(&env.int.cert.der).unwrap();
    IssuerAndSubject {
        issuer: ca.tbs_certificate().subject().clone(),
        subject: Certificate::from_der(&id.cert_der).unwrap().tbs_certificate().subject().clone(),
    }
    .to_der()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn caps_ca_certs_and_next_ca() {
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let caps = get(&format!("{}?operation=GetCACaps", env.url())).await;
    assert_eq!(
        String::from_utf8(caps.body).unwrap(),
        "POSTPKIOperation\nRenewal\nSHA-256\nSHA-512\nAES\nSCEPStandard\n"
    );
    for path in ["/scep/pkiclient.exe", "/cgi-bin/pkiclient.exe", "/scep/p/device"] {
        let r = get(&format!("{}{path}?operation=GetCACaps", env.base)).await;
        assert_eq!(r.status, 200, "{path}");
    }
    assert_eq!(get(&format!("{}/scep/p/nope?operation=GetCACaps", env.base)).await.status, 404);
    let ra = ra_cert(&env).await;
    let ra_der = ra.to_der().unwrap();
    let ra_path = env.path("ra.pem");
    std::fs::write(&ra_path, pkiplane_core::x509::pem::encode("CERTIFICATE", &ra_der)).unwrap();
    openssl_verify(&env.root_pem, &env.chain_pem, &ra_path);
    let text =
        String::from_utf8(openssl(&["x509", "-in", ra_path.to_str().unwrap(), "-noout", "-text"]).stdout).unwrap();
    assert!(text.contains("Digital Signature, Key Encipherment"), "{text}");
    assert!(text.contains("rsaEncryption"));
    let next = get(&format!("{}?operation=GetNextCACert", env.url())).await;
    assert_eq!(next.status, 404);
    assert_eq!(get(&format!("{}?operation=Nope", env.url())).await.status, 400);
    // The RA certificate is in the inventory, as pkiplane's own (LOCAL) certificate.
    let serial = pkiplane_core::x509::cert::CertInfo::from_der(&ra_der).unwrap().serial_hex;
    let rec =
        pkiplane_core::inventory::Inventory::get(env.store.as_ref(), &env.int.id, &serial).await.unwrap().unwrap();
    assert_eq!(rec.protocol, pkiplane_core::Protocol::Local);
}

#[tokio::test(flavor = "multi_thread")]
async fn pkcsreq_with_static_challenge_then_replay_is_refused() {
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let id = make(env.dir.path(), "a", "device-a.example.com", Some(STATIC_CHALLENGE), &["device-a.example.com"]);
    let built = id.request(&ra, MessageType::PkcsReq, "tid-a", &id.csr_der);
    let reply = id.read(&op(&env, built.der.clone()).await);
    assert_eq!(reply.status, PkiStatus::Success);
    let rec = env.check_issued(&reply.certs[0], "scep:static-challenge").await;
    assert_eq!(rec.sans, vec!["DNS:device-a.example.com".to_string()]);
    // The very same message again: transactionID + senderNonce seen before.
    expect_failure(&env, &id, built.der, FailInfo::BadRequest).await;
    // GET binding with a base64 message works too (new nonce, same transaction: a resend
    // is answered from the stored transaction, not issued twice).
    let again = id.request(&ra, MessageType::PkcsReq, "tid-a", &id.csr_der);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &again.der);
    let r = get(&format!(
        "{}?operation=PKIOperation&message={}",
        env.url(),
        b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
    ))
    .await;
    let resent = id.read(&r.body);
    assert_eq!(resent.status, PkiStatus::Success);
    assert_eq!(resent.certs, reply.certs);
    assert_eq!(env.scep_records().await.len(), 1);

    // A resend is answered only to the requester: the same transaction and request signed
    // by another key is refused (proof of possession holds for resends too).
    let stranger = make(env.dir.path(), "a2", "device-a.example.com", None, &[]);
    let foreign = pkcsreq_signed_by(&stranger, &ra, "tid-a", &id.csr_der);
    expect_failure(&env, &stranger, foreign, FailInfo::BadRequest).await;

    // Another key's request under the transactionID is refused, and nothing is issued.
    let other = make(env.dir.path(), "a3", "device-a3.example.com", Some(STATIC_CHALLENGE), &["device-a3.example.com"]);
    let taken = other.request(&ra, MessageType::PkcsReq, "tid-a", &other.csr_der);
    expect_failure(&env, &other, taken.der, FailInfo::BadRequest).await;
    assert_eq!(env.scep_records().await.len(), 1);

    // The issued PKCSReq's transaction is the inventory's record of its certificate: no
    // transaction of its own is stored, and the secret is nowhere in the database files.
    assert!(env.store.transaction(&env.endpoint, "tid-a").await.unwrap().is_none());
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("pkiplane.db") {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(STATIC_CHALLENGE.len()).any(|w| w == STATIC_CHALLENGE.as_bytes());
            assert!(!found, "{} holds the challengePassword", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_challenge_and_rotation_without_restart() {
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let wrong = make(env.dir.path(), "w", "w.example.com", Some("not-the-challenge"), &[]);
    refused(&env, &wrong, &ra, MessageType::PkcsReq, "tid-w", &wrong.csr_der, FailInfo::BadRequest).await;
    let none = make(env.dir.path(), "n", "n.example.com", None, &[]);
    refused(&env, &none, &ra, MessageType::PkcsReq, "tid-n", &none.csr_der, FailInfo::BadRequest).await;
    // Rotate the Secret: the old value stops working, the new one works, no restart.
    let rotated = vec![
        secret("scep-static", &[("challenge", "rotated-secret-987654321")]),
        secret("scep-api", &[("mdm", API_TOKEN)]),
    ];
    assert!(
        env.state.config().reload_secrets(&|ns, n| pkiplane_api::SecretLookup::secret_data(&rotated, ns, n)).is_empty()
    );
    let old = make(env.dir.path(), "o", "o.example.com", Some(STATIC_CHALLENGE), &[]);
    refused(&env, &old, &ra, MessageType::PkcsReq, "tid-o", &old.csr_der, FailInfo::BadRequest).await;
    let new = make(env.dir.path(), "r", "r.example.com", Some("rotated-secret-987654321"), &[]);
    let cert = enroll(&env, &new, &ra, "tid-r").await;
    env.check_issued(&cert, "scep:static-challenge").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_time_challenges_bound_used_and_minted_over_http() {
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let binding =
        ChallengeBinding { common_name: Some("bound.example.com".into()), sans: vec!["DNS:bound.example.com".into()] };
    let minted = env.state.mint_challenge(None, binding, "cli").await.unwrap();
    assert!(!format!("{minted:?}").contains(minted.value.as_str()), "Debug must not show the challenge");
    // Bound to another CN: refused, and the challenge stays usable for its device.
    let other = make(env.dir.path(), "x", "other.example.com", Some(&minted.value), &[]);
    refused(&env, &other, &ra, MessageType::PkcsReq, "tid-x", &other.csr_der, FailInfo::BadRequest).await;
    let extra_san = make(env.dir.path(), "y", "bound.example.com", Some(&minted.value), &["evil.example.com"]);
    refused(&env, &extra_san, &ra, MessageType::PkcsReq, "tid-y", &extra_san.csr_der, FailInfo::BadRequest).await;
    let dev = make(env.dir.path(), "b", "bound.example.com", Some(&minted.value), &["bound.example.com"]);
    let cert = enroll(&env, &dev, &ra, "tid-b").await;
    let rec = env.check_issued(&cert, "scep:challenge/").await;
    assert_eq!(rec.requester, format!("scep:challenge/{}", minted.challenge.id));
    // Used once: a second device with the same challenge is refused.
    let again = make(env.dir.path(), "c", "bound.example.com", Some(&minted.value), &[]);
    refused(&env, &again, &ra, MessageType::PkcsReq, "tid-c", &again.csr_der, FailInfo::BadRequest).await;

    // The HTTP API: bearer token required.
    let url = format!("{}/scep/challenges", env.base);
    assert_eq!(request("POST", &url, &[], b"{}".to_vec()).await.status, 401);
    assert_eq!(
        request("POST", &url, &[("authorization", "Bearer wrong-token-000000000")], b"{}".to_vec()).await.status,
        401
    );
    let auth = format!("Bearer {API_TOKEN}");
    let r =
        request("POST", &url, &[("authorization", &auth)], br#"{"commonName":"api.example.com","ttl":"10m"}"#.to_vec())
            .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let value = body["challenge"].as_str().unwrap().to_owned();
    let too_long = request("POST", &url, &[("authorization", &auth)], br#"{"ttl":"2h"}"#.to_vec()).await;
    assert_eq!(too_long.status, 400);
    let api = make(env.dir.path(), "api", "api.example.com", Some(&value), &[]);
    let cert = enroll(&env, &api, &ra, "tid-api").await;
    env.check_issued(&cert, "scep:challenge/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn message_security_failures() {
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let id = make(env.dir.path(), "s", "s.example.com", Some(STATIC_CHALLENGE), &[]);

    // Tampered signature: flip the last byte of the message (inside the signature).
    let mut der = id.request(&ra, MessageType::PkcsReq, "tid-t", &id.csr_der).der;
    let last = der.len() - 1;
    der[last] ^= 0x01;
    expect_failure(&env, &id, der, FailInfo::BadMessageCheck).await;

    // Encrypted to another certificate than the RA's.
    let stranger = make(env.dir.path(), "z", "z.example.com", None, &[]);
    refused(&env, &id, &stranger.cert, MessageType::PkcsReq, "tid-ra", &id.csr_der, FailInfo::BadMessageCheck).await;

    // Legacy algorithms while legacyAlgorithms is off.
    for (cipher, digest, tid) in [
        (ContentAlg::DesEde3Cbc, DigestAlg::Sha256, "tid-3des"),
        (ContentAlg::DesCbc, DigestAlg::Sha256, "tid-des"),
        (ContentAlg::Aes128Cbc, DigestAlg::Sha1, "tid-sha1"),
    ] {
        let der = id.request_with(&ra, MessageType::PkcsReq, tid, &id.csr_der, cipher, digest).der;
        expect_failure(&env, &id, der, FailInfo::BadAlg).await;
    }

    // signingTime two days off.
    let old = client::build(&Request {
        signer: id.signer(),
        message_type: MessageType::PkcsReq,
        transaction_id: "tid-time",
        content: &id.csr_der,
        recipient: &ra,
        cipher: ContentAlg::Aes256Cbc,
        digest: DigestAlg::Sha512,
        signing_time: Some(SystemTime::now() - Duration::from_secs(2 * 86_400)),
    })
    .unwrap();
    expect_failure(&env, &id, old.der, FailInfo::BadTime).await;

    // PKCSReq signed by a key other than the CSR's.
    let mismatched = pkcsreq_signed_by(&stranger, &ra, "tid-key", &id.csr_der);
    expect_failure(&env, &stranger, mismatched, FailInfo::BadRequest).await;

    // Not CMS at all: an HTTP error, no CertRep.
    let r = post(&format!("{}?operation=PKIOperation", env.url()), b"\x30\x03\x02\x01\x01".to_vec()).await;
    assert_eq!(r.status, 400);
    // Bounded bodies.
    let r = post(&format!("{}?operation=PKIOperation", env.url()), vec![0x30; 300 * 1024]).await;
    assert_eq!(r.status, 413);
    // AES-256 + SHA-512 works.
    let ok =
        id.request_with(&ra, MessageType::PkcsReq, "tid-ok", &id.csr_der, ContentAlg::Aes256Cbc, DigestAlg::Sha512);
    assert_eq!(id.read(&op(&env, ok.der).await).status, PkiStatus::Success);
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_get_cert_and_get_crl() {
    let env = start(Options { legacy: false, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let mut id = make(env.dir.path(), "d", "d.example.com", Some(STATIC_CHALLENGE), &["d.example.com"]);
    let first = enroll(&env, &id, &ra, "tid-d1").await;
    let first_rec = env.check_issued(&first, "scep:static-challenge").await;

    // RenewalReq: a new key, signed with the current certificate, no challenge.
    let next = make(env.dir.path(), "d2", "d.example.com", None, &["d.example.com"]);
    id.use_cert(&first);
    let renewed = {
        let renewal = (MessageType::RenewalReq, "tid-d2", next.csr_der.as_slice());
        let body = recorded(&env, &id, &ra, renewal, "pkiplane-renewal-renewalreq").await;
        let reply = id.read(&body);
        assert_eq!(reply.status, PkiStatus::Success, "{:?}", reply.fail_info);
        reply.certs[0].clone()
    };
    let rec = env.check_issued(&renewed, "scep:renewal/").await;
    assert_eq!(rec.renewed_from.as_deref(), Some(first_rec.serial.as_str()));

    // A renewal may not change the identity.
    let other = make(env.dir.path(), "d3", "someone-else.example.com", None, &[]);
    refused(&env, &id, &ra, MessageType::RenewalReq, "tid-d3", &other.csr_der, FailInfo::BadRequest).await;
    // A certificate we did not issue cannot renew.
    let stranger = make(env.dir.path(), "d4", "d.example.com", None, &[]);
    refused(&env, &stranger, &ra, MessageType::RenewalReq, "tid-d4", &stranger.csr_der, FailInfo::BadCertId).await;

    // GetCert by issuer and serial.
    let get_cert = ias(&renewed);
    let body = recorded(&env, &id, &ra, (MessageType::GetCert, "tid-gc", &get_cert), "pkiplane-renewal-getcert").await;
    let reply = id.read(&body);
    assert_eq!(reply.status, PkiStatus::Success);
    assert_eq!(reply.certs, vec![renewed.clone()]);
    let mut unknown = Certificate::from_der(&renewed).unwrap().tbs_certificate().serial_number().as_bytes().to_vec();
    unknown[3] ^= 0xff;
    let bad = IssuerAndSerialNumber {
        issuer: Certificate::from_der(&renewed).unwrap().tbs_certificate().issuer().clone(),
        serial_number: x509_cert::serial_number::SerialNumber::new(&unknown).unwrap(),
    };
    refused(&env, &id, &ra, MessageType::GetCert, "tid-gc2", &bad.to_der().unwrap(), FailInfo::BadCertId).await;

    // Revoke the first certificate; GetCRL lists it and verifies against the CA.
    let requester = pkiplane_core::Requester::new(pkiplane_core::Protocol::Local, "test");
    env.ca
        .revoke(RevocationRequest::new(
            &env.int.id,
            &first_rec.serial,
            pkiplane_core::inventory::RevocationReason::Superseded,
            &requester,
        ))
        .await
        .unwrap();
    let get_crl = ias(&renewed);
    let body = recorded(&env, &id, &ra, (MessageType::GetCrl, "tid-crl", &get_crl), "pkiplane-renewal-getcrl").await;
    env.save_keys("pkiplane-renewal", &id.key_path).await;
    let reply = id.read(&body);
    assert_eq!(reply.status, PkiStatus::Success);
    assert_eq!(reply.crls.len(), 1);
    let crl_path = env.path("crl.der");
    std::fs::write(&crl_path, &reply.crls[0]).unwrap();
    let text = String::from_utf8(
        openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl_path.to_str().unwrap(),
            "-CAfile",
            env.chain_pem.to_str().unwrap(),
            "-noout",
            "-text",
        ])
        .stdout,
    )
    .unwrap();
    assert!(text.to_lowercase().contains(&first_rec.serial.to_lowercase()), "{text}");
    // A revoked certificate cannot renew.
    let mut revoked = make(env.dir.path(), "d5", "d.example.com", None, &[]);
    revoked.use_cert(&first);
    revoked.key = id.key.clone();
    refused(&env, &revoked, &ra, MessageType::RenewalReq, "tid-d5", &next.csr_der, FailInfo::BadRequest).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_approval_then_cert_poll() {
    let env = start(Options { legacy: false, approval: true, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let id = make(env.dir.path(), "p", "p.example.com", Some(STATIC_CHALLENGE), &[]);
    let reply = id.read(&op(&env, id.request(&ra, MessageType::PkcsReq, "tid-p", &id.csr_der).der).await);
    assert_eq!(reply.status, PkiStatus::Pending);
    assert!(env.scep_records().await.is_empty());
    let pending = env.store.pending_transactions(&env.endpoint, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status, TransactionStatus::Pending);
    // The stored transaction keeps the request without its challengePassword.
    let stored = x509_cert::request::CertReq::from_der(&pending[0].csr_der).unwrap();
    assert!(stored.info.attributes.iter().all(|a| a.oid != pkiplane_core::x509::csr::CHALLENGE_PASSWORD));
    assert_eq!(
        pkiplane_core::x509::csr::stored_request_key(&pending[0].csr_der).unwrap(),
        pkiplane_core::x509::csr::stored_request_key(&id.csr_der).unwrap(),
        "the request is otherwise kept"
    );

    let poll_content = poll_content(&env, &id);
    let poll = (MessageType::CertPoll, "tid-p", poll_content.as_slice());
    let body = recorded(&env, &id, &ra, poll, "pkiplane-pending-certpoll-pending").await;
    let poll = id.read(&body);
    assert_eq!(poll.status, PkiStatus::Pending);
    // Only the requester may poll.
    let other = make(env.dir.path(), "q", "q.example.com", None, &[]);
    refused(&env, &other, &ra, MessageType::CertPoll, "tid-p", &poll_content, FailInfo::BadRequest).await;
    // An unknown transaction.
    refused(&env, &id, &ra, MessageType::CertPoll, "tid-unknown", &poll_content, FailInfo::BadCertId).await;

    // The approver approves this request by id: the CertPoll gets the certificate.
    let waiting = env.ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].exchange.as_deref(), Some(format!("scep:{}:tid-p", env.endpoint).as_str()));
    assert!(waiting[0].subject.contains("CN=p.example.com"), "{}", waiting[0].subject);
    let stored = pkiplane_core::x509::csr::ParsedCsr::from_stored_der(&pending[0].csr_der).unwrap();
    assert!(stored.challenge_password.is_none(), "the stored request keeps no challengePassword");
    env.ca.approve(&waiting[0].id, "alice", None).await.unwrap();

    let poll = (MessageType::CertPoll, "tid-p", poll_content.as_slice());
    let body = recorded(&env, &id, &ra, poll, "pkiplane-pending-certpoll-issued").await;
    env.save_keys("pkiplane-pending", &id.key_path).await;
    let done = id.read(&body);
    assert_eq!(done.status, PkiStatus::Success);
    assert_eq!(done.certs.len(), 1);
    env.check_issued(&done.certs[0], "scep:static-challenge").await;
    // Polled again: the same certificate, from the transaction.
    let again = id.read(&op(&env, id.request(&ra, MessageType::CertPoll, "tid-p", &poll_content).der).await);
    assert_eq!(again.certs, done.certs);
    assert_eq!(env.scep_records().await.len(), 1);
}

/// Issue 17's acceptance for SCEP: two requests wait, one is approved by id and gets its
/// certificate (CertPoll SUCCESS), the other stays PENDING, a third is denied and gets
/// FAILURE with failInfo badRequest.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_approved_request_gets_its_certificate_and_a_denied_one_fails() {
    let env = start(Options { legacy: false, approval: true, ..Options::default() }).await;
    let ra = ra_cert(&env).await;
    let mut devices = Vec::new();
    for name in ["a", "b", "c"] {
        let id = make(env.dir.path(), name, &format!("{name}.example.com"), Some(STATIC_CHALLENGE), &[]);
        let tid = format!("tid-{name}");
        let reply = id.read(&op(&env, id.request(&ra, MessageType::PkcsReq, &tid, &id.csr_der).der).await);
        assert_eq!(reply.status, PkiStatus::Pending);
        let content = poll_content(&env, &id);
        devices.push((id, tid, content));
    }
    let request_of = |tid: &str| {
        let exchange = format!("scep:{}:{tid}", env.endpoint);
        let ca = env.ca.clone();
        async move {
            let f = ApprovalFilter { exchange: Some(exchange), ..Default::default() };
            ca.approval_requests(&f).await.unwrap().remove(0).id
        }
    };
    env.ca.approve(&request_of("tid-a").await, "alice", Some("asset tag 7")).await.unwrap();
    env.ca.deny(&request_of("tid-c").await, "alice", "unknown device").await.unwrap();

    let poll = |i: usize| {
        let (id, tid, content) = &devices[i];
        id.request(&ra, MessageType::CertPoll, tid, content).der
    };
    let a = devices[0].0.read(&op(&env, poll(0)).await);
    assert_eq!(a.status, PkiStatus::Success);
    env.check_issued(&a.certs[0], "scep:static-challenge").await;
    let b = devices[1].0.read(&op(&env, poll(1)).await);
    assert_eq!(b.status, PkiStatus::Pending);
    let c = devices[2].0.read(&op(&env, poll(2)).await);
    assert_eq!((c.status, c.fail_info), (PkiStatus::Failure, Some(FailInfo::BadRequest)));
    // Only the approved one was signed; the waiting one is still waiting.
    assert_eq!(env.scep_records().await.len(), 1);
    let waiting = env.ca.approval_requests(&ApprovalFilter::waiting()).await.unwrap();
    assert_eq!(waiting.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![request_of("tid-b").await]);
    // The denied transaction stays failed.
    let c = devices[2].0.read(&op(&env, poll(2)).await);
    assert_eq!(c.status, PkiStatus::Failure);
}

#[tokio::test(flavor = "multi_thread")]
async fn containment_refuses_long_lived_profiles() {
    let (root, int) = new_hierarchy(pkiplane_core::keys::KeyAlgorithm::Rsa2048);
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(pkiplane_store::SqliteStore::open(&dir.path().join("db")).unwrap());
    let ca = std::sync::Arc::new(pkiplane_core::issuance::Ca::new(store.clone()));
    ca.put_issuer(root);
    ca.put_issuer(int);
    let profile: pkiplane_api::v1alpha1::CertificateProfile = serde_yaml::from_str(&profile_yaml("2y", false)).unwrap();
    ca.put_profile(pkiplane_api::profile_from_resource(&profile).unwrap());
    let secrets =
        vec![secret("scep-static", &[("challenge", STATIC_CHALLENGE)]), secret("scep-api", &[("mdm", API_TOKEN)])];
    for (allow, ok) in [(false, false), (true, true)] {
        let opts = Options { allow_long_validity: allow, ..Options::default() };
        let endpoint: pkiplane_api::v1alpha1::EnrollmentEndpoint = serde_yaml::from_str(&endpoint_yaml(&opts)).unwrap();
        let config = pkiplane_api::scep_settings(&endpoint, &secrets, "http://127.0.0.1:1").unwrap();
        let result = pkiplane_scep::ScepState::start(config, ca.clone(), store.clone()).await;
        match result {
            Ok(_) => assert!(ok),
            Err(e) => {
                assert!(!ok);
                assert!(e.to_string().contains("730 days, longer than the 365-day cap"), "{e}");
            }
        }
    }
}
