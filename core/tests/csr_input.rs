//! CSR decoding and proof of possession: good requests from `openssl req`, and garbage
//! that must yield a clear error, never a panic.

mod common;

use common::*;
use pkiplane_core::x509::csr::{CsrError, CsrOptions, ParsedCsr};
use pkiplane_core::x509::pem::PemError;

fn parse_err(input: &[u8]) -> CsrError {
    ParsedCsr::from_pem_or_der(input, CsrOptions::default()).expect_err("must be refused")
}

fn der_of(pem: &[u8]) -> Vec<u8> {
    pkiplane_core::x509::pem::decode_one(pem, "CERTIFICATE REQUEST").unwrap()
}

#[test]
fn pem_and_der_both_parse() {
    let pem = csr_pem(Kind::P256, "/CN=a", &["DNS:a.example.com"], &[], &[]);
    let a = parse(&pem);
    let b = ParsedCsr::from_der(&der_of(&pem), CsrOptions::default()).unwrap();
    assert_eq!(a.spki_der, b.spki_der);
    assert_eq!(a.sans.len(), 1);
}

#[test]
fn tampered_signature_is_refused() {
    for kind in [Kind::P256, Kind::Rsa2048, Kind::Ed25519] {
        let mut der = der_of(&csr_pem(kind, "/CN=a", &[], &[], &[]));
        let last = der.len() - 1;
        der[last] ^= 0x01;
        assert_eq!(ParsedCsr::from_der(&der, CsrOptions::default()).unwrap_err(), CsrError::BadSignature, "{kind:?}");
    }
}

#[test]
fn tampered_subject_breaks_the_signature() {
    let pem = csr_pem(Kind::P256, "/CN=aaaa", &[], &[], &[]);
    let mut der = der_of(&pem);
    let pos = der.windows(4).position(|w| w == b"aaaa").unwrap();
    der[pos] = b'b';
    assert_eq!(ParsedCsr::from_der(&der, CsrOptions::default()).unwrap_err(), CsrError::BadSignature);
}

#[test]
fn sha1_signatures_are_refused_unless_allowed() {
    let pem = csr_pem(Kind::Rsa2048, "/CN=legacy", &[], &[], &["-sha1"]);
    assert!(matches!(parse_err(&pem), CsrError::WeakSignatureAlgorithm(_)));
    assert!(ParsedCsr::from_pem_or_der(&pem, CsrOptions { allow_sha1: true }).is_ok());
}

#[test]
fn rsa_pss_and_other_hashes_verify() {
    let pss = csr_pem(
        Kind::Rsa2048,
        "/CN=pss",
        &[],
        &[],
        &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
    );
    parse(&pss);
    parse(&csr_pem(Kind::P384, "/CN=a", &[], &[], &["-sha384"]));
    parse(&csr_pem(Kind::Rsa2048, "/CN=a", &[], &[], &["-sha512"]));
}

#[test]
fn challenge_password_is_read_and_redacted() {
    let pem = csr_pem(Kind::P256, "/CN=a", &[], &[], &["-config", &write_config("challengePassword = s3cret-pw")]);
    let c = parse(&pem);
    assert_eq!(c.challenge_password.as_deref().map(|s| s.as_str()), Some("s3cret-pw"));
    assert!(!format!("{c:?}").contains("s3cret-pw"));
}

fn write_config(attr_line: &str) -> String {
    let path = dir().join(format!("req-{}.cnf", attr_line.len()));
    std::fs::write(
        &path,
        format!("[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=a\n[attrs]\n{attr_line}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn garbage_gets_a_clear_error() {
    let pem = csr_pem(Kind::P256, "/CN=a", &[], &[], &[]);
    let der = der_of(&pem);
    // Truncated DER.
    assert!(matches!(parse_err(&der[..der.len() / 2]), CsrError::Der(_)));
    // Random bytes that look like a SEQUENCE, and ones that do not.
    let mut random = vec![0x30u8, 0x82, 0x01, 0x00];
    random.extend((0..256u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    assert!(matches!(parse_err(&random), CsrError::Der(_)));
    assert!(matches!(parse_err(b"\x01\x02\x03not a csr"), CsrError::Pem(PemError::Missing(_))));
    // A PEM with the wrong label.
    let cert_label = String::from_utf8(pem.clone()).unwrap().replace("CERTIFICATE REQUEST", "CERTIFICATE");
    assert!(matches!(
        parse_err(cert_label.as_bytes()),
        CsrError::Pem(PemError::WrongLabel { ref found, .. }) if found == "CERTIFICATE"
    ));
    // A 10 MB blob.
    let blob = vec![0x30u8; 10 * 1024 * 1024];
    assert!(matches!(parse_err(&blob), CsrError::TooLarge(_)));
    // Empty input.
    assert!(matches!(parse_err(b""), CsrError::Pem(PemError::Missing(_))));
    // Broken base64 inside a correct label.
    assert!(matches!(
        parse_err(b"-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n"),
        CsrError::Pem(PemError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_a_real_csr_errors_without_panicking() {
    let der = der_of(&csr_pem(Kind::Rsa2048, "/CN=a/O=b", &["DNS:x.example.com", "IP:10.0.0.1"], &[], &[]));
    for n in 0..der.len() {
        assert!(ParsedCsr::from_der(&der[..n], CsrOptions::default()).is_err(), "prefix of {n} bytes parsed");
    }
    // Flip each byte in turn: the result is an error or (for bytes outside the signed
    // part that still decode) a CSR whose key and subject are unchanged.
    let good = ParsedCsr::from_der(&der, CsrOptions::default()).unwrap();
    for i in 0..der.len() {
        let mut d = der.clone();
        d[i] ^= 0xff;
        if let Ok(c) = ParsedCsr::from_der(&d, CsrOptions::default()) {
            assert_eq!(c.spki_der, good.spki_der, "byte {i}");
        }
    }
}

#[test]
fn signature_is_checked_over_the_bytes_as_received() {
    // Captured from micromdm's scepclient (Go): its certificationRequestInfo lists the
    // extensionRequest before challengePassword, which is not DER's sorted SET OF order.
    // `openssl req -verify` accepts it; so must we.
    let pem = include_bytes!("vectors/go-unsorted-attributes.csr.pem");
    let c = parse(pem);
    assert_eq!(c.sans, vec![pkiplane_core::x509::San::Dns("dev1.example.com".into())]);
    assert_eq!(c.challenge_password.as_deref().map(|s| s.as_str()), Some("scep-demo-challenge"));
}
