//! Golden vectors: real pkiMessages captured from the real clients (by
//! `real_clients.rs` with PKIPLANE_SCEP_WRITE_VECTORS=1), decoded and verified offline.
//! They were encrypted to an RA key that no longer exists, so these tests check the
//! signed layer (what the server verifies before opening the envelope) and the
//! envelope's algorithms.

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
fn debian_scepclient_2_1_0_signature_verifies_but_its_envelope_is_ber() {
    // Contrary to the note, this message's signature verifies (as it does with
    // `openssl cms -verify` 3.0.19); what the server cannot read is its EnvelopedData,
    // whose encryptedContent is a BER constructed [0]: badMessageCheck at the envelope.
    let msg = parse(&vector("debian-scepclient-2.1.0-0.der")).unwrap().verify(true).unwrap();
    assert_eq!(msg.message_type, MessageType::PkcsReq);
    use der::Decode;
    let ci = cms::content_info::ContentInfo::from_der(&msg.content);
    let decoded = ci.map(|ci| ci.content.decode_as::<cms::enveloped_data::EnvelopedData>().is_ok());
    assert!(!matches!(decoded, Ok(true)), "the BER envelope unexpectedly decodes");
}

#[test]
fn certmonger_request_has_an_oversized_signer_serial() {
    // The known gap behind the ignored certmonger test: a 33-octet serial number.
    let err = parse(&vector("certmonger-0.79.17-0.der")).err().expect("does not decode yet");
    assert!(err.to_string().contains("INTEGER"), "{err}");
}
