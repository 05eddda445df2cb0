//! EST request bodies (RFC 7030): base64, PEM or DER PKCS#10 as simpleenroll,
//! simplereenroll and serverkeygen receive them, then the CSR and the key-protection
//! attributes serverkeygen reads from it.
#![no_main]
#![forbid(unsafe_code)]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_est::envelope::requested_protection;
use pkiplane_est::wire::decode_body;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the Content-Transfer-Encoding the client declared.
    let (binary, body) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, rest),
        None => return,
    };
    let mut headers = HeaderMap::new();
    if binary {
        headers.insert("content-transfer-encoding", HeaderValue::from_static("binary"));
    }
    if let Ok(der) = decode_body(&headers, body, "certificate request", "CERTIFICATE REQUEST") {
        let _ = ParsedCsr::from_der(&der, CsrOptions::default());
        let _ = requested_protection(&der);
    }
});
