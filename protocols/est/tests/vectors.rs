//! Golden vectors: requests captured from the real clients (`estclient csr` of
//! github.com/globalsign/est v1.0.6, and `openssl req | openssl base64` as the device
//! scripts send them) decode through the same path the server uses, and the csrattrs
//! answer of the quickstart's `device-ldevid-1y` profile is byte-for-byte stable.

use std::path::Path;

use axum::http::HeaderMap;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::names::format_dn;
use pkiplane_est::wire::decode_body;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name)).unwrap()
}

#[test]
fn real_client_requests_decode() {
    let h = HeaderMap::new();
    let der = decode_body(&h, &vector("estclient-csr.pem"), "CSR", "CERTIFICATE REQUEST").unwrap();
    let csr = ParsedCsr::from_der(&der, CsrOptions::default()).unwrap();
    assert_eq!(format_dn(&csr.subject), "CN=gw.example.internal");
    assert_eq!(csr.sans.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["DNS:gw.example.internal"]);

    // openssl base64 breaks lines every 64 characters with LF.
    let body = vector("device-simpleenroll-body.b64");
    assert!(body.contains(&b'\n'));
    let der = decode_body(&h, &body, "CSR", "CERTIFICATE REQUEST").unwrap();
    let csr = ParsedCsr::from_der(&der, CsrOptions::default()).unwrap();
    assert_eq!(format_dn(&csr.subject), "serialNumber=SN-0001,CN=dev-0001");
    // The same bytes with CRLF and without any line break decode the same.
    let crlf = String::from_utf8(body.clone()).unwrap().replace('\n', "\r\n");
    assert_eq!(decode_body(&h, crlf.as_bytes(), "CSR", "CERTIFICATE REQUEST").unwrap(), der);
    let flat: Vec<u8> = body.iter().copied().filter(|b| *b != b'\n').collect();
    assert_eq!(decode_body(&h, &flat, "CSR", "CERTIFICATE REQUEST").unwrap(), der);
}

#[test]
fn csrattrs_of_the_ldevid_profile_is_stable() {
    let manifests =
        pkiplane_api::Manifests::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.yaml"))
            .unwrap();
    let profile = manifests.profile("pki", "device-ldevid-1y").unwrap();
    let profile = pkiplane_api::profile_from_resource(profile).unwrap();
    let der = pkiplane_est::csrattrs::csr_attrs(&profile, false).unwrap();
    let golden = vector("csrattrs-device-ldevid-1y.der");
    assert_eq!(der, golden, "csrattrs changed; if intended, regenerate tests/vectors/csrattrs-device-ldevid-1y.der");
    let with_binding = pkiplane_est::csrattrs::csr_attrs(&profile, true).unwrap();
    assert!(with_binding.len() > der.len());
}
