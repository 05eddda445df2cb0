//! What OpenSSL 3.0's client cannot send, built here from the recorded OpenSSL ir
//! (re-protected under a fresh transactionID and the current messageTime): PBMAC1 (RFC 9481 section 6.1.2), whose
//! primitive is also checked against `openssl kdf` + `openssl mac`, and cmp2021 (pvno 3).

use std::time::SystemTime;

use pkiplane_cmp::protection::mac::{MacAlg, MacLimits, MacProtection};
use pkiplane_cmp::state::TransactionState;
use pkiplane_cmp::wire::message::{self, OutHeader, tag};

use crate::common::*;

fn pbmac1() -> MacProtection {
    MacProtection::Pbmac1 {
        salt: b"0123456789abcdef".to_vec(),
        iterations: 1000,
        key_len: 32,
        prf: MacAlg::HmacSha256,
        mac: MacAlg::HmacSha256,
    }
}

#[test]
fn pbmac1_matches_openssl_pbkdf2_and_hmac() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, b"protected part").unwrap();
    let key = openssl_ok(&[
        "kdf",
        "-keylen",
        "32",
        "-kdfopt",
        "digest:SHA256",
        "-kdfopt",
        &format!("pass:{SECRET}"),
        "-kdfopt",
        &format!("hexsalt:{}", hex::encode(b"0123456789abcdef")),
        "-kdfopt",
        "iter:1000",
        "PBKDF2",
    ]);
    let key = String::from_utf8(key.stdout).unwrap().trim().replace(':', "");
    let tag = openssl_ok(&["mac", "-digest", "SHA256", "-macopt", &format!("hexkey:{key}"), "-in", p(&data), "HMAC"]);
    let expected = String::from_utf8(tag.stdout).unwrap().trim().to_lowercase();
    assert_eq!(hex::encode(pbmac1().compute(SECRET.as_bytes(), b"protected part")), expected);
}

/// The recorded ir (its header and body).
fn recorded() -> message::Incoming {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    message::decode(&std::fs::read(dir.join("ir.req.der")).unwrap()).unwrap()
}

/// An ir with the recorded header's sender, recipient, senderKID and generalInfo, the
/// given transactionID, senderNonce and body content, protected under `mac`.
fn craft(mac: &MacProtection, pvno: u8, transaction_id: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let recorded = recorded();
    let h = &recorded.header;
    let header = OutHeader {
        pvno,
        sender: h.sender.clone(),
        recipient: h.recipient.clone(),
        message_time: SystemTime::now(),
        protection_alg: Some(mac.algorithm_identifier().unwrap()),
        sender_kid: h.sender_kid.clone(),
        transaction_id: Some(transaction_id.as_bytes().to_vec()),
        sender_nonce: nonce.as_bytes().to_vec(),
        recip_nonce: None,
        free_text: vec![],
        general_info: h.general_info.clone(),
    };
    let header = message::encode_header(&header).unwrap();
    let body = message::encode_body(tag::IR, body).unwrap();
    let protection = mac.compute(SECRET.as_bytes(), &message::protected_part(&header, &body).unwrap());
    message::encode_message(&header, &body, Some(&protection), &[]).unwrap()
}

/// The recorded ir under `mac`, with a fresh transactionID, in protocol version `pvno`.
fn reprotect(mac: &MacProtection, pvno: u8, id: &str) -> Vec<u8> {
    craft(mac, pvno, &format!("crafted-transaction-{id}"), &format!("crafted-nonce-{id}"), &recorded().body)
}

/// The start of a transaction may be committed without a sync (SQLite); what makes it
/// durable before the answer is a synced update of the transaction, also when the
/// message is refused after the transaction started: seen here as the version the
/// update leaves (the start is version 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_starts_are_stored_again_before_the_answer() {
    let pki = start(Options::default()).await;
    let (store, endpoint) = (pki.state.store(), &pki.state.config().endpoint);
    let stored = |tid: &str| {
        let tid = hex::encode(tid);
        async move { store.transaction(endpoint, &tid).await.unwrap().expect("the transaction is stored") }
    };

    // No certificate request: refused after the transaction started, which stays open
    // until its deadline like any other that issued nothing.
    let reply = pki.post(None, &craft(&pbmac1(), 2, "crafted-empty", "crafted-nonce-1", &[0x30, 0x00])).await;
    assert_eq!((reply.body_tag, status_of(&reply).fail().names()), (tag::ERROR, vec!["badRequest"]));
    let tx = stored("crafted-empty").await;
    assert_eq!((tx.state, tx.version), (TransactionState::AwaitingConfirmation, 1));

    // A fresh transactionID with a senderNonce seen before (a replay): the transaction
    // it created is closed as failed, nothing is issued.
    let replay = craft(&pbmac1(), 2, "crafted-replay", "crafted-nonce-1", &recorded().body);
    let reply = pki.post(None, &replay).await;
    assert_eq!((reply.body_tag, status_of(&reply).fail().names()), (tag::ERROR, vec!["badSenderNonce"]));
    let tx = stored("crafted-replay").await;
    assert_eq!((tx.state, tx.version, tx.deadline), (TransactionState::Failed, 1, None));
    assert_eq!(pki.cmp_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbmac1_protected_ir_is_answered_with_pbmac1() {
    let pki = start(Options::default()).await;
    let reply = pki.post(None, &reprotect(&pbmac1(), 2, "pbmac1")).await;
    assert_eq!(reply.body_tag, tag::IP);
    assert!(status_of(&reply).fail().bits().is_empty(), "{:?}", status_of(&reply).status_string);
    let alg = reply.header.protection_alg.as_ref().unwrap();
    let answer = MacProtection::from_algorithm(alg, MacLimits::default()).unwrap();
    assert!(matches!(answer, MacProtection::Pbmac1 { .. }), "answered with PBMAC1");
    assert!(answer.verify(SECRET.as_bytes(), &reply.protected_part, reply.protection.as_deref().unwrap()));
    assert_eq!(pki.cmp_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmp2021_request_is_answered_in_cmp2021() {
    let pki = start(Options::default()).await;
    let reply = pki.post(None, &reprotect(&pbmac1(), 3, "v3")).await;
    assert_eq!((reply.body_tag, reply.header.pvno), (tag::IP, 3));
    assert!(status_of(&reply).fail().bits().is_empty(), "{:?}", status_of(&reply).status_string);
    let alg = reply.header.protection_alg.as_ref().unwrap();
    let answer = MacProtection::from_algorithm(alg, MacLimits::default()).unwrap();
    assert!(answer.verify(SECRET.as_bytes(), &reply.protected_part, reply.protection.as_deref().unwrap()));
}
