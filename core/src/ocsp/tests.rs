//! Unit tests of the OCSP codecs and decisions: requests made by `openssl ocsp` (golden
//! vectors in `testdata/`), a response with fixed inputs and a deterministic Ed25519 key
//! compared octet for octet with `testdata/golden-response.der` and read back by
//! `openssl ocsp`, and the status rules.

use std::time::{Duration, SystemTime};

use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;

use super::build::{ResponseInput, build_response};
use super::delegate::key_hash;
use super::request::{CertId, CertIdHash, MAX_NONCE_LEN, OcspRequest, RequestError, parse_request};
use super::response::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, error_response};
use super::status::{Status, names_ca, status_of};
use crate::inventory::{CertStatus as RecordStatus, CertificateRecord, Revocation, RevocationReason};
use crate::keys::{CaSigner, KeyAlgorithm, SecretKey};
use crate::model::{ObjectRef, Protocol};
use crate::x509::cert::CertInfo;
use crate::x509::pem;

const VECTOR_CA: &[u8] = include_bytes!("testdata/ca.pem");
const REQUEST_NONCE: &[u8] = include_bytes!("testdata/openssl-request-nonce.der");
const REQUEST_SHA256: &[u8] = include_bytes!("testdata/openssl-request-sha256.der");
const GOLDEN_RESPONSE: &[u8] = include_bytes!("testdata/golden-response.der");
/// A test-only Ed25519 key (PKCS#8 v1): Ed25519 signatures are deterministic, so a
/// response signed by it is the same octets every time.
const TEST_ED25519_PKCS8: &str =
    "302e020100300506032b657004220420a33f81d5599d66718c68c8097f9c4b270bfd7b1987db495f31010c3cdfb77120";
const SERIAL: &str = "4f1a2b3c4d5e6f708192a3b4c5d6e7f8";

fn vector_ca() -> CertInfo {
    CertInfo::from_der(&pem::decode_one(VECTOR_CA, "CERTIFICATE").unwrap()).unwrap()
}

#[test]
fn openssl_request_with_a_nonce_decodes_and_names_the_vector_ca() {
    let parsed = parse_request(REQUEST_NONCE, 8).unwrap();
    assert_eq!(parsed.cert_ids.len(), 1);
    let id = &parsed.cert_ids[0];
    assert_eq!(CertIdHash::from_algorithm(&id.hash_algorithm), Some(CertIdHash::Sha1));
    assert!(names_ca(id, CertIdHash::Sha1, &vector_ca()));
    assert_eq!(id.serial_hex().as_deref(), Some(SERIAL));
    let nonce = parsed.nonce.expect("openssl asks with a nonce by default");
    assert_eq!(nonce.extn_id, ID_PKIX_OCSP_NONCE);
    let inner = OctetString::from_der(nonce.extn_value.as_bytes()).unwrap();
    assert_eq!(inner.as_bytes().len(), 16, "openssl's 16-octet nonce inside an OCTET STRING (RFC 8954)");
    // Decoding and encoding again gives the same octets: CertIDs are echoed exactly.
    assert_eq!(OcspRequest::from_der(REQUEST_NONCE).unwrap().to_der().unwrap(), REQUEST_NONCE);
}

#[test]
fn openssl_request_hashed_with_sha256_names_the_same_ca() {
    let parsed = parse_request(REQUEST_SHA256, 8).unwrap();
    let id = &parsed.cert_ids[0];
    assert_eq!(CertIdHash::from_algorithm(&id.hash_algorithm), Some(CertIdHash::Sha256));
    assert!(names_ca(id, CertIdHash::Sha256, &vector_ca()));
    assert!(!names_ca(id, CertIdHash::Sha1, &vector_ca()), "hashes are compared under the request's algorithm");
    assert!(parsed.nonce.is_none());
}

fn cert_id(serial: &[u8]) -> CertId {
    let ca = vector_ca();
    CertId {
        hash_algorithm: AlgorithmIdentifierOwned { oid: CertIdHash::Sha1.oid(), parameters: None },
        issuer_name_hash: OctetString::new(CertIdHash::Sha1.digest(&ca.subject.to_der().unwrap())).unwrap(),
        issuer_key_hash: OctetString::new(CertIdHash::Sha1.digest(ca.spki.subject_public_key.raw_bytes())).unwrap(),
        serial_number: Int::new(serial).unwrap(),
    }
}

/// An OCSPRequest (DER) for `ids` with optional request extensions.
fn request(ids: &[CertId], extensions: Option<Vec<Extension>>) -> Vec<u8> {
    use super::request::{Request, TbsRequest};
    let tbs = TbsRequest {
        version: 0,
        requestor_name: None,
        request_list: ids.iter().map(|id| Request { req_cert: id.clone(), single_request_extensions: None }).collect(),
        request_extensions: extensions,
    };
    OcspRequest { tbs_request: tbs, optional_signature: None }.to_der().unwrap()
}

fn nonce(len: usize) -> Extension {
    let value = OctetString::new(vec![7u8; len]).unwrap().to_der().unwrap();
    Extension { extn_id: ID_PKIX_OCSP_NONCE, critical: false, extn_value: OctetString::new(value).unwrap() }
}

#[test]
fn malformed_requests_are_refused_with_the_reason() {
    let id = cert_id(&hex::decode(SERIAL).unwrap());
    assert!(matches!(parse_request(b"not DER", 8), Err(RequestError::Der(_))));
    assert!(matches!(parse_request(&REQUEST_NONCE[..40], 8), Err(RequestError::Der(_))), "truncated");
    assert_eq!(parse_request(&request(&[], None), 8), Err(RequestError::Empty));
    assert_eq!(parse_request(&request(&vec![id.clone(); 9], None), 8), Err(RequestError::TooMany(9, 8)));
    assert_eq!(
        parse_request(&request(std::slice::from_ref(&id), Some(vec![nonce(MAX_NONCE_LEN + 1)])), 8),
        Err(RequestError::BadNonce(33))
    );
    assert_eq!(
        parse_request(&request(std::slice::from_ref(&id), Some(vec![nonce(0)])), 8),
        Err(RequestError::BadNonce(0))
    );
    assert!(parse_request(&request(std::slice::from_ref(&id), Some(vec![nonce(MAX_NONCE_LEN)])), 8).is_ok());
    let critical = Extension {
        extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_PREF_SIG_ALGS,
        critical: true,
        extn_value: OctetString::new(vec![0x30, 0x00]).unwrap(),
    };
    assert!(matches!(
        parse_request(&request(std::slice::from_ref(&id), Some(vec![critical.clone()])), 8),
        Err(RequestError::CriticalExtension(_))
    ));
    let not_critical = Extension { critical: false, ..critical };
    assert!(parse_request(&request(&[id], Some(vec![not_critical])), 8).is_ok(), "unknown, not critical: ignored");
}

#[test]
fn unsupported_hash_algorithms_and_parameters_are_not_matched() {
    let md5 = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ID_MD_5, parameters: None };
    assert_eq!(CertIdHash::from_algorithm(&md5), None);
    let with_params = AlgorithmIdentifierOwned {
        oid: CertIdHash::Sha256.oid(),
        parameters: Some(der::Any::new(der::Tag::Integer, vec![1]).unwrap()),
    };
    assert_eq!(CertIdHash::from_algorithm(&with_params), None);
}

#[test]
fn serials_that_pkiplane_never_issues_have_no_inventory_key() {
    assert_eq!(cert_id(&[0x00, 0x80, 0x01]).serial_hex().as_deref(), Some("8001"), "sign byte stripped");
    assert_eq!(cert_id(&[0x00]).serial_hex(), None, "zero");
    let negative = CertId { serial_number: Int::new(&[0xff, 0x01]).unwrap(), ..cert_id(&[1]) };
    assert_eq!(negative.serial_hex(), None, "negative");
}

fn record(status: RecordStatus, der: Option<Vec<u8>>, revocation: Option<Revocation>) -> CertificateRecord {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    CertificateRecord {
        serial: SERIAL.into(),
        issuer: ObjectRef::new("pki", "ca"),
        profile: ObjectRef::new("pki", "tls"),
        protocol: Protocol::Local,
        endpoint: None,
        requester: "test".into(),
        subject: "CN=x".into(),
        sans: vec![],
        key_algorithm: "ECDSA P-256".into(),
        not_before: t,
        not_after: t + Duration::from_secs(86_400),
        status,
        revocation,
        der,
        renewed_from: None,
        created_at: t,
    }
}

#[test]
fn status_follows_the_inventory_and_the_signing_key() {
    // The vector CA is self-signed: its authorityKeyIdentifier is its own key id.
    let ca = vector_ca();
    let key_id = ca.subject_key_id.clone().unwrap();
    let der = Some(ca.der.clone());
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_001_000);
    let revoked = Some(Revocation { reason: RevocationReason::KeyCompromise, at });
    assert_eq!(status_of(None, &key_id), Status::Unknown, "never recorded");
    assert_eq!(status_of(Some(&record(RecordStatus::Issued, der.clone(), None)), &key_id), Status::Good);
    assert_eq!(
        status_of(Some(&record(RecordStatus::Revoked, der.clone(), revoked)), &key_id),
        Status::Revoked { at, reason: RevocationReason::KeyCompromise }
    );
    assert_eq!(status_of(Some(&record(RecordStatus::Pending, None, None)), &key_id), Status::Unknown, "not signed");
    assert_eq!(status_of(Some(&record(RecordStatus::Abandoned, None, None)), &key_id), Status::Unknown);
    assert_eq!(
        status_of(Some(&record(RecordStatus::Issued, der, None)), &[0u8; 20]),
        Status::Unknown,
        "signed by another key of the Issuer"
    );
}

fn golden_response() -> Vec<u8> {
    let key = SecretKey::from_pkcs8(KeyAlgorithm::Ed25519, hex::decode(TEST_ED25519_PKCS8).unwrap());
    let signer = CaSigner::new(&key).unwrap();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let statuses = [
        (cert_id(&hex::decode(SERIAL).unwrap()), Status::Good),
        (
            cert_id(&[0x01, 0x02]),
            Status::Revoked { at: t - Duration::from_secs(3600), reason: RevocationReason::KeyCompromise },
        ),
        (cert_id(&[0x03]), Status::Revoked { at: t - Duration::from_secs(60), reason: RevocationReason::Unspecified }),
        (cert_id(&[0x04]), Status::Unknown),
    ];
    let nonce = nonce(16);
    build_response(&ResponseInput {
        signer: &signer,
        responder_key_hash: &key_hash(signer.public_key_bits()),
        certs: &[],
        produced_at: t + Duration::from_millis(750),
        this_update: t,
        next_update: t + Duration::from_secs(86_400),
        statuses: &statuses,
        nonce: Some(&nonce),
    })
    .unwrap()
}

#[test]
fn response_matches_the_golden_vector() {
    let der = golden_response();
    if std::env::var_os("PKIPLANE_WRITE_GOLDEN").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/ocsp/testdata/golden-response.der"), &der).unwrap();
    }
    assert_eq!(der, GOLDEN_RESPONSE, "the encoding changed; inspect with `openssl ocsp -respin ... -resp_text`");
    let response = OcspResponse::from_der(&der).unwrap();
    assert_eq!(response.response_status, OcspResponseStatus::Successful);
    let basic = BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes()).unwrap();
    let statuses: Vec<&CertStatus> = basic.tbs_response_data.responses.iter().map(|r| &r.cert_status).collect();
    assert!(matches!(
        statuses[..],
        [CertStatus::Good(_), CertStatus::Revoked(_), CertStatus::Revoked(_), CertStatus::Unknown(_)]
    ));
    let CertStatus::Revoked(unspecified) = statuses[2] else { unreachable!() };
    assert_eq!(unspecified.revocation_reason, None, "unspecified is left out (RFC 5280 section 5.3.1)");
    assert_eq!(basic.tbs_response_data.response_extensions.unwrap()[0], nonce(16), "the nonce, echoed");
}

#[test]
fn openssl_reads_the_golden_response() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resp.der");
    std::fs::write(&path, GOLDEN_RESPONSE).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ocsp", "-noverify", "-resp_text", "-respin"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "OCSP Response Status: successful (0x0)",
        "Response Type: Basic OCSP Response",
        "Produced At: Jan 15 08:00:00 2027 GMT",
        "Cert Status: good",
        "Cert Status: revoked",
        "Revocation Reason: keyCompromise (0x1)",
        "Cert Status: unknown",
        "This Update: Jan 15 08:00:00 2027 GMT",
        "Next Update: Jan 16 08:00:00 2027 GMT",
        "OCSP Nonce",
        "Signature Algorithm: ED25519",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn error_responses_are_bare_statuses() {
    assert_eq!(error_response(OcspResponseStatus::MalformedRequest), [0x30, 0x03, 0x0a, 0x01, 0x01]);
    assert_eq!(error_response(OcspResponseStatus::Unauthorized), [0x30, 0x03, 0x0a, 0x01, 0x06]);
    assert_eq!(error_response(OcspResponseStatus::TryLater), [0x30, 0x03, 0x0a, 0x01, 0x03]);
}
