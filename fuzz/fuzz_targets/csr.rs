//! PKCS#10 requests as every protocol hands them to the CA core: PEM or DER, with and
//! without legacy SHA-1 signatures.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};

fuzz_target!(|data: &[u8]| {
    let _ = ParsedCsr::from_pem_or_der(data, CsrOptions::default());
    let _ = ParsedCsr::from_der(data, CsrOptions { allow_sha1: true });
});
