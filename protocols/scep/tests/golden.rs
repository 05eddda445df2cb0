//! Golden vectors: real pkiMessages captured from the real clients (by
//! `real_clients.rs` with PKIPLANE_SCEP_WRITE_VECTORS=1), decoded and verified offline.
//! They were encrypted to an RA key that no longer exists, so these tests check the
//! signed layer (what the server verifies before opening the envelope) and the
//! envelope's algorithms. pkiplane's own RenewalReq, GetCert, GetCRL and CertPoll
//! exchanges (module `own`, recorded by `protocol.rs` the same way) are kept with the keys
//! that open them, so they are checked end to end offline and replayed against a fresh server.

mod common;

use std::path::Path;

use pkiplane_scep::algorithms::{ContentAlg, DigestAlg};
use pkiplane_scep::cms::incoming::parse;
use pkiplane_scep::message::MessageType;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name)).unwrap()
}

/// The content-encryption algorithm named in an EnvelopedData.
fn cipher(envelope: &[u8]) -> der::asn1::ObjectIdentifier {
    use der::Decode;
    let ci = cms::content_info::ContentInfo::from_der(envelope).unwrap();
    let env: cms::enveloped_data::EnvelopedData = ci.content.decode_as().unwrap();
    env.encrypted_content.content_enc_alg.oid
}

#[test]
fn micromdm_scepclient_2_3_0_requests_verify_with_legacy_algorithms() {
    for name in ["micromdm-scepclient-2.3.0-0.der", "micromdm-scepclient-2.3.0-1.der"] {
        let der = vector(name);
        // SHA-1 signatures: badAlg unless legacy algorithms are enabled.
        assert!(matches!(parse(&der).unwrap().verify(false), Err(pkiplane_scep::ScepError::BadAlg(_))));
        let msg = parse(&der).unwrap().verify(true).unwrap();
        assert_eq!(msg.message_type, MessageType::PkcsReq, "{name}");
        assert_eq!(msg.reply.digest, DigestAlg::Sha1);
        assert_eq!(msg.reply.sender_nonce.len(), 16);
        assert!(msg.signing_time.is_some());
        // Single DES, the Go pkcs7 library's default.
        assert_eq!(cipher(&msg.content), ContentAlg::DesCbc.oid());
        assert!(pkiplane_scep::cms::envelope::recipients(&msg.content).unwrap().len() == 1, "encrypted to the RA only");
    }
}

#[test]
fn micromdm_tampered_vector_fails_the_message_check() {
    let mut der = vector("micromdm-scepclient-2.3.0-0.der");
    let n = der.len() - 1;
    der[n] ^= 0x80;
    assert!(matches!(parse(&der).unwrap().verify(true), Err(pkiplane_scep::ScepError::BadMessageCheck(_))));
}

#[test]
fn debian_scepclient_2_1_0_envelope_is_ber_and_is_rewritten_to_der() {
    // Its signature verifies (as with `openssl cms -verify` 3.0.19); its EnvelopedData's
    // encryptedContent is a BER constructed [0], which `der` does not read; the one-field
    // rewrite makes it decodable, with the ciphertext unchanged.
    let msg = parse(&vector("debian-scepclient-2.1.0-0.der")).unwrap().verify(true).unwrap();
    assert_eq!(msg.message_type, MessageType::PkcsReq);
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(&msg.content).unwrap();
    assert!(ci.content.decode_as::<cms::enveloped_data::EnvelopedData>().is_err(), "strict decoding refuses it");
    let enveloped = ci.content.to_der().unwrap();
    let rewritten = pkiplane_scep::cms::ber::primitive_encrypted_content(&enveloped).unwrap().expect("a rewrite");
    let env = cms::enveloped_data::EnvelopedData::from_der(&rewritten).unwrap();
    let ciphertext = env.encrypted_content.encrypted_content.expect("encryptedContent").into_bytes();
    // AES or DES-CBC ciphertext: whole blocks, and every byte of it is in the original.
    assert!(!ciphertext.is_empty() && ciphertext.len() % 8 == 0, "{}", ciphertext.len());
    assert!(enveloped.len() > ciphertext.len());
    assert!(!env.recip_infos.0.is_empty(), "Go's pkcs7 encrypts to every certificate of GetCACert");
}

#[test]
fn certmonger_request_with_an_oversized_signer_serial_verifies() {
    // certmonger signs with a self-signed certificate whose serial number is 33 octets,
    // which the RFC 5280 profile refuses: the message is read leniently and verifies.
    let der = vector("certmonger-0.79.17-0.der");
    use der::Decode;
    let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
    assert!(ci.content.decode_as::<cms::signed_data::SignedData>().is_err(), "strict decoding refuses it");
    let msg = parse(&der).unwrap().verify(true).unwrap();
    assert_eq!(msg.message_type, MessageType::PkcsReq);
    // 33 octets encoded: a leading zero and 32 significant octets.
    assert_eq!(msg.signer.serial_hex.len(), 2 * 32, "{}", msg.signer.serial_hex);
    assert_eq!(msg.signer.subject, msg.signer.issuer, "self-signed");
    assert!(msg.reply.sender_nonce.len() >= 8);
    // The reply is encrypted to that certificate, its serial echoed as received.
    let sealed = pkiplane_scep::cms::envelope::seal_to_der(b"reply", &msg.signer_der, ContentAlg::Aes128Cbc).unwrap();
    let serial = hex::decode(&msg.signer.serial_hex).unwrap();
    assert!(sealed.windows(serial.len()).any(|w| w == serial.as_slice()), "recipient serial");
    // A flipped bit in the signature still fails the message check.
    let mut bad = der.clone();
    let n = bad.len() - 1;
    bad[n] ^= 0x01;
    assert!(matches!(parse(&bad).unwrap().verify(true), Err(pkiplane_scep::ScepError::BadMessageCheck(_))));
}

// pkiplane's own request/response pairs for RenewalReq, GetCert, GetCRL and CertPoll,
// captured from `protocol.rs` (renewal_get_cert_and_get_crl, pending_approval_then_cert_poll)
// with PKIPLANE_SCEP_WRITE_VECTORS=1, with the RA key (opens the requests), the
// requester's key (opens the responses) and the CA chain beside them: throwaway test keys.
// Every check here is offline: signatures, message types, transaction ids, nonces, the
// decrypted contents, and the certificates and CRL the responses carry.

mod own {
    use der::{Decode, Encode};
    use pkiplane_scep::PkiStatus;
    use pkiplane_scep::client::{Reply, read_reply};
    use pkiplane_scep::cms::envelope;
    use pkiplane_scep::cms::incoming::{Incoming, parse};
    use pkiplane_scep::cms::outgoing::Signer;
    use pkiplane_scep::message::{IssuerAndSubject, MessageType};
    use rsa::RsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use x509_cert::Certificate;

    use super::vector;

    struct Keys {
        ra_cert: Certificate,
        ra_key: RsaPrivateKey,
        requester_key: RsaPrivateKey,
        /// Root then intermediate.
        chain: Vec<Certificate>,
    }

    fn keys(prefix: &str) -> Keys {
        let pem = String::from_utf8(vector(&format!("{prefix}-requester.key.pem"))).unwrap();
        Keys {
            ra_cert: Certificate::from_der(&vector(&format!("{prefix}-ra.cert.der"))).unwrap(),
            ra_key: RsaPrivateKey::from_pkcs8_der(&vector(&format!("{prefix}-ra.key.der"))).unwrap(),
            requester_key: RsaPrivateKey::from_pkcs8_pem(&pem).unwrap(),
            chain: Certificate::load_pem_chain(&vector(&format!("{prefix}-ca.pem"))).unwrap(),
        }
    }

    /// A golden exchange: the request verified and opened with the RA key, the response
    /// verified and opened with the requester's key.
    struct Exchange {
        request: Incoming,
        /// The request's decrypted content.
        content: Vec<u8>,
        reply: Reply,
    }

    fn exchange(keys: &Keys, name: &str, kind: MessageType, tid: &str) -> Exchange {
        // Strict mode: pkiplane's own messages use SHA-256 and AES only.
        let request = parse(&vector(&format!("{name}.req.der"))).unwrap().verify(false).unwrap();
        assert_eq!(request.message_type, kind, "{name}");
        assert_eq!(request.transaction_id, tid, "{name}");
        assert_eq!(request.reply.sender_nonce.len(), 16, "{name}");
        assert!(request.signing_time.is_some(), "{name}");
        let (content, _) = envelope::open(&request.content, &keys.ra_cert, &keys.ra_key, false).unwrap();

        let signer_cert = Certificate::from_der(&request.signer_der).unwrap();
        let me = Signer { cert: &signer_cert, key: &keys.requester_key };
        let reply = read_reply(&vector(&format!("{name}.rep.der")), &me).unwrap();
        assert_eq!(reply.transaction_id, tid, "{name}");
        assert_eq!(reply.recipient_nonce, request.reply.sender_nonce, "{name}: recipientNonce");
        assert_eq!(reply.signer_der, keys.ra_cert.to_der().unwrap(), "{name}: signed by the RA");
        Exchange { request, content: content.to_vec(), reply }
    }

    /// `cert` is signed by the intermediate (signature only: the vectors outlive validity).
    fn issued_by_intermediate(keys: &Keys, cert_der: &[u8]) {
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier;
        let cert = Certificate::from_der(cert_der).unwrap();
        let int = &keys.chain[1];
        assert_eq!(cert.tbs_certificate().issuer(), int.tbs_certificate().subject());
        let spki = int.tbs_certificate().subject_public_key_info().to_der().unwrap();
        let key: rsa::RsaPublicKey = rsa::pkcs8::DecodePublicKey::from_public_key_der(&spki).unwrap();
        let sig = Signature::try_from(cert.signature().raw_bytes()).unwrap();
        VerifyingKey::<sha2::Sha256>::new(key).verify(&cert.tbs_certificate().to_der().unwrap(), &sig).unwrap();
    }

    fn spki_of_csr(csr_der: &[u8]) -> Vec<u8> {
        x509_cert::request::CertReq::from_der(csr_der).unwrap().info.public_key.to_der().unwrap()
    }

    fn spki_of_cert(der: &[u8]) -> Vec<u8> {
        Certificate::from_der(der).unwrap().tbs_certificate().subject_public_key_info().to_der().unwrap()
    }

    fn issuer_and_serial(der: &[u8]) -> cms::cert::IssuerAndSerialNumber {
        cms::cert::IssuerAndSerialNumber::from_der(der).unwrap()
    }

    #[test]
    fn renewal_req_signed_with_the_current_certificate() {
        let keys = keys("pkiplane-renewal");
        let x = exchange(&keys, "pkiplane-renewal-renewalreq", MessageType::RenewalReq, "tid-d2");
        // Signed with the certificate issued by the CA (not a self-signed one).
        issued_by_intermediate(&keys, &x.request.signer_der);
        // The content is the new CSR, for a new key; it carries no challenge.
        let csr = x509_cert::request::CertReq::from_der(&x.content).unwrap();
        assert!(
            csr.info
                .attributes
                .iter()
                .all(|a| a.oid != const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7"))
        );
        assert_ne!(spki_of_csr(&x.content), spki_of_cert(&x.request.signer_der), "a new key");
        assert_eq!(x.reply.status, PkiStatus::Success);
        assert_eq!(x.reply.certs.len(), 1);
        let renewed = &x.reply.certs[0];
        issued_by_intermediate(&keys, renewed);
        assert_eq!(spki_of_cert(renewed), spki_of_csr(&x.content), "the renewed certificate has the new key");
        let subject = |d: &[u8]| Certificate::from_der(d).unwrap().tbs_certificate().subject().to_string();
        assert_eq!(subject(renewed), subject(&x.request.signer_der), "same identity");
    }

    #[test]
    fn get_cert_returns_the_named_certificate() {
        let keys = keys("pkiplane-renewal");
        let renewed =
            exchange(&keys, "pkiplane-renewal-renewalreq", MessageType::RenewalReq, "tid-d2").reply.certs[0].clone();
        let x = exchange(&keys, "pkiplane-renewal-getcert", MessageType::GetCert, "tid-gc");
        let ias = issuer_and_serial(&x.content);
        let cert = Certificate::from_der(&renewed).unwrap();
        assert_eq!(&ias.issuer, cert.tbs_certificate().issuer());
        assert_eq!(&ias.serial_number, cert.tbs_certificate().serial_number());
        assert_eq!(x.reply.status, PkiStatus::Success);
        assert_eq!(x.reply.certs, vec![renewed]);
        assert!(x.reply.crls.is_empty());
    }

    #[test]
    fn get_crl_returns_the_issuers_crl() {
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier;
        let keys = keys("pkiplane-renewal");
        let x = exchange(&keys, "pkiplane-renewal-getcrl", MessageType::GetCrl, "tid-crl");
        let ias = issuer_and_serial(&x.content);
        let int = &keys.chain[1];
        assert_eq!(&ias.issuer, int.tbs_certificate().subject());
        assert_eq!(x.reply.status, PkiStatus::Success);
        assert!(x.reply.certs.is_empty());
        assert_eq!(x.reply.crls.len(), 1);
        let crl = x509_cert::crl::CertificateList::from_der(&x.reply.crls[0]).unwrap();
        assert_eq!(&crl.tbs_cert_list.issuer, int.tbs_certificate().subject());
        let spki = int.tbs_certificate().subject_public_key_info().to_der().unwrap();
        let key: rsa::RsaPublicKey = rsa::pkcs8::DecodePublicKey::from_public_key_der(&spki).unwrap();
        let sig = Signature::try_from(crl.signature.raw_bytes()).unwrap();
        VerifyingKey::<sha2::Sha256>::new(key).verify(&crl.tbs_cert_list.to_der().unwrap(), &sig).unwrap();
        // The first certificate (the one renewed, then revoked) is listed.
        let revoked = crl.tbs_cert_list.revoked_certificates.unwrap_or_default();
        assert_eq!(revoked.len(), 1);
        let renewal = exchange(&keys, "pkiplane-renewal-renewalreq", MessageType::RenewalReq, "tid-d2");
        let first = Certificate::from_der(&renewal.request.signer_der).unwrap();
        assert_eq!(&revoked[0].serial_number, first.tbs_certificate().serial_number());
    }

    #[test]
    fn cert_poll_pending_then_issued() {
        let keys = keys("pkiplane-pending");
        let pending = exchange(&keys, "pkiplane-pending-certpoll-pending", MessageType::CertPoll, "tid-p");
        let issued = exchange(&keys, "pkiplane-pending-certpoll-issued", MessageType::CertPoll, "tid-p");
        for x in [&pending, &issued] {
            let ias = IssuerAndSubject::from_der(&x.content).unwrap();
            assert_eq!(&ias.issuer, keys.chain[1].tbs_certificate().subject());
            let signer = Certificate::from_der(&x.request.signer_der).unwrap();
            assert_eq!(&ias.subject, signer.tbs_certificate().subject(), "polls for its own subject");
        }
        assert_ne!(pending.request.reply.sender_nonce, issued.request.reply.sender_nonce, "fresh nonces");
        assert_eq!(pending.reply.status, PkiStatus::Pending);
        assert!(pending.reply.certs.is_empty());
        assert_eq!(issued.reply.status, PkiStatus::Success);
        assert_eq!(issued.reply.certs.len(), 1);
        issued_by_intermediate(&keys, &issued.reply.certs[0]);
        let signer = Certificate::from_der(&issued.request.signer_der).unwrap();
        let cert = Certificate::from_der(&issued.reply.certs[0]).unwrap();
        // The CSR's subject (CN and O, RFC 4514 order); the self-signed signing certificate has the CN.
        assert_eq!(cert.tbs_certificate().subject().to_string(), "O=pkiplane-test,CN=p.example.com");
        assert_eq!(signer.tbs_certificate().subject().to_string(), "CN=p.example.com");
        assert_eq!(
            cert.tbs_certificate().subject_public_key_info(),
            signer.tbs_certificate().subject_public_key_info(),
            "the certificate is for the polling key"
        );
    }

    #[test]
    fn tampered_golden_requests_and_replies_fail_the_message_check() {
        let keys = keys("pkiplane-renewal");
        for name in ["pkiplane-renewal-getcert.req.der", "pkiplane-renewal-getcrl.rep.der"] {
            let mut der = vector(name);
            let n = der.len() - 1;
            der[n] ^= 0x01;
            let err = parse(&der).unwrap().verify(false).err();
            assert!(matches!(err, Some(pkiplane_scep::ScepError::BadMessageCheck(_))), "{name}: {err:?}");
        }
        // A request cannot be opened with another key than the RA's.
        let req = parse(&vector("pkiplane-renewal-getcert.req.der")).unwrap().verify(false).unwrap();
        let err = envelope::open(&req.content, &keys.ra_cert, &keys.requester_key, false).err();
        assert!(err.is_some());
    }

    /// Replayed against a fresh server (another RA key, another CA) whose clock reads the
    /// time each request was made, every golden request is refused with a signed CertRep
    /// naming the failure (encrypted to another RA: the envelope cannot be opened), and
    /// nothing is issued.
    #[tokio::test(flavor = "multi_thread")]
    async fn replayed_against_a_fresh_server_they_are_refused() {
        replay_all(std::time::Duration::ZERO, pkiplane_scep::FailInfo::BadMessageCheck).await;
    }

    /// The same requests a year after they were made: the signingTime check comes before
    /// the envelope is opened, so each is refused with badTime.
    #[tokio::test(flavor = "multi_thread")]
    async fn replayed_a_year_later_they_are_refused_for_their_time() {
        replay_all(std::time::Duration::from_secs(365 * 86_400), pkiplane_scep::FailInfo::BadTime).await;
    }

    /// Every golden request against a fresh server whose clock reads `late` after the
    /// request's signingTime: each gets a signed FAILURE with `fail`, nothing is issued.
    async fn replay_all(late: std::time::Duration, fail: pkiplane_scep::FailInfo) {
        let clock = pkiplane_core::clock::ManualClock::new(std::time::SystemTime::UNIX_EPOCH);
        let env = crate::common::start(crate::common::Options {
            legacy: false,
            clock: Some(clock.shared()),
            ..Default::default()
        })
        .await;
        for (prefix, name) in GOLDEN_REQUESTS {
            let keys = keys(prefix);
            let der = vector(&format!("{name}.req.der"));
            let request = parse(&der).unwrap().verify(false).unwrap();
            clock.set(request.signing_time.unwrap() + late);
            let reply = post(&env, &keys, &request, der).await;
            assert_eq!(reply.status, PkiStatus::Failure, "{name}");
            assert_eq!(reply.recipient_nonce, request.reply.sender_nonce, "{name}");
            assert_eq!(reply.fail_info, Some(fail), "{name}");
        }
        assert!(env.scep_records().await.is_empty(), "nothing may be issued");
    }

    const GOLDEN_REQUESTS: [(&str, &str); 4] = [
        ("pkiplane-renewal", "pkiplane-renewal-renewalreq"),
        ("pkiplane-renewal", "pkiplane-renewal-getcert"),
        ("pkiplane-renewal", "pkiplane-renewal-getcrl"),
        ("pkiplane-pending", "pkiplane-pending-certpoll-issued"),
    ];

    /// Posts a golden request and reads the signed reply with the requester's key.
    async fn post(env: &crate::common::Env, keys: &Keys, request: &Incoming, der: Vec<u8>) -> Reply {
        let r = crate::common::http::post(&format!("{}?operation=PKIOperation", env.url()), der).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let signer_cert = Certificate::from_der(&request.signer_der).unwrap();
        read_reply(&r.body, &Signer { cert: &signer_cert, key: &keys.requester_key }).unwrap()
    }
}
