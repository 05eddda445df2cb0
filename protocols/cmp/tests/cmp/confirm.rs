//! certConf checks, with messages built here around an `openssl cmp` enrollment that
//! left its certificate unconfirmed: recipNonce, certHash, the starting credential,
//! replayed nonces.

use std::time::SystemTime;

use der::Encode;
use der::asn1::OctetString;
use pkiplane_cmp::protection::mac::{MacAlg, MacProtection, Owf};
use pkiplane_cmp::state::TransactionState;
use pkiplane_cmp::wire::FailBit;
use pkiplane_cmp::wire::body::{CertStatusIn, ResponseBody, decode_response};
use pkiplane_cmp::wire::message::{self, Incoming, OutHeader, tag};
use pkiplane_core::inventory::CertStatus;

use crate::common::*;

/// A certConf for `ip`, MAC-protected with (`kid`, `secret`).
fn cert_conf(ip: &Incoming, recip_nonce: &[u8], nonce: &[u8], hash: Vec<u8>, kid: &str, secret: &str) -> Vec<u8> {
    let mac = MacProtection::Pbm {
        salt: b"salt-salt-salt-1".to_vec(),
        owf: Owf::Sha256,
        iterations: 500,
        mac: MacAlg::HmacSha256,
    };
    let header = OutHeader {
        pvno: 2,
        sender: ip.header.recipient.clone(),
        recipient: ip.header.sender.clone(),
        message_time: SystemTime::now(),
        protection_alg: Some(mac.algorithm_identifier().unwrap()),
        sender_kid: Some(kid.as_bytes().to_vec()),
        transaction_id: ip.header.transaction_id.clone(),
        sender_nonce: nonce.to_vec(),
        recip_nonce: Some(recip_nonce.to_vec()),
        free_text: vec![],
        general_info: vec![],
    };
    let status = vec![CertStatusIn {
        cert_hash: OctetString::new(hash).unwrap(),
        cert_req_id: 0,
        status_info: None,
        hash_alg: None,
    }];
    let header = message::encode_header(&header).unwrap();
    let body = message::encode_body(tag::CERT_CONF, &status.to_der().unwrap()).unwrap();
    let protection = mac.compute(secret.as_bytes(), &message::protected_part(&header, &body).unwrap());
    message::encode_message(&header, &body, Some(&protection), &[]).unwrap()
}

fn fail(msg: &Incoming) -> Vec<&'static str> {
    status_of(msg).fail().names()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_conf_is_checked_field_by_field() {
    let pki = start(Options::default()).await;
    let k = ec_key(pki.dir.path(), "cc");
    let cert = pki.path("cc.pem");
    let run = pki.ir_with_mac("cc", None, &k, "cc.example.com", &cert, &["-disable_confirm"]).await;
    assert!(run.ok, "{}", run.stderr);
    let ip = &run.responses[0];
    let server_nonce = ip.header.sender_nonce.clone().unwrap();
    let der = pkiplane_core::x509::pem::decode_one(&std::fs::read(&cert).unwrap(), "CERTIFICATE").unwrap();
    let good_hash = ring::digest::digest(&ring::digest::SHA256, &der).as_ref().to_vec();

    let reply = pki
        .post(None, &cert_conf(ip, b"not-the-server-nonce", b"client-nonce-0001", good_hash.clone(), KID, SECRET))
        .await;
    assert_eq!(fail(&reply), [FailBit::BadRecipientNonce.name()]);
    let reply = pki.post(None, &cert_conf(ip, &server_nonce, b"client-nonce-0002", vec![0; 32], KID, SECRET)).await;
    assert_eq!(fail(&reply), [FailBit::BadCertId.name()]);
    let reply = pki
        .post(
            None,
            &cert_conf(ip, &server_nonce, b"client-nonce-0003", good_hash.clone(), "device-2", "another-secret-2"),
        )
        .await;
    assert_eq!(fail(&reply), [FailBit::NotAuthorized.name()]);

    let good = cert_conf(ip, &server_nonce, b"client-nonce-0004", good_hash.clone(), KID, SECRET);
    let reply = pki.post(None, &good).await;
    assert!(matches!(decode_response(reply.body_tag, &reply.body).unwrap(), ResponseBody::PkiConf));
    let tid = hex::encode(ip.header.transaction_id.clone().unwrap());
    let tx = pki.state.store().transaction(&pki.state.config().endpoint, &tid).await.unwrap().unwrap();
    assert_eq!(tx.state, TransactionState::Complete);
    assert!(tx.certificates.iter().all(|c| c.confirmed));
    assert_eq!(pki.record(&cert).await.status, CertStatus::Issued);

    // The same message again: its senderNonce was used.
    assert_eq!(fail(&pki.post(None, &good).await), [FailBit::BadSenderNonce.name()]);
    // A fresh certConf for a finished transaction.
    let again = cert_conf(ip, &server_nonce, b"client-nonce-0005", good_hash, KID, SECRET);
    assert_eq!(fail(&pki.post(None, &again).await), [FailBit::BadRecipientNonce.name()]);
}
