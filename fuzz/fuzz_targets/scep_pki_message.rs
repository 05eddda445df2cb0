//! SCEP pkiMessage (RFC 8894): the CMS SignedData and its signed attributes, the
//! signature check against the embedded signer certificate, and the pkcsPKIEnvelope
//! (CMS EnvelopedData): its recipients, and opening it with a fixed RA key.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pkiplane_core::model::ObjectRef;
use pkiplane_scep::state::RaMaterial;
use pkiplane_scep::cms::{envelope, incoming};
use pkiplane_scep::ra::RaIdentity;

/// The RA of the recorded SCEP vectors (a test key, in the repository).
fn ra() -> &'static RaIdentity {
    static RA: OnceLock<RaIdentity> = OnceLock::new();
    RA.get_or_init(|| {
        let material = RaMaterial {
            certificate_der: include_bytes!("../../protocols/scep/tests/vectors/pkiplane-pending-ra.cert.der").to_vec(),
            private_key_pkcs8: include_bytes!("../../protocols/scep/tests/vectors/pkiplane-pending-ra.key.der")
                .to_vec()
                .into(),
            issuer: ObjectRef::new("pki", "fuzz"),
        };
        RaIdentity::from_material(&material).expect("the vectors' RA identity loads")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(unverified) = incoming::parse(data) {
        let _ = unverified.verify(true);
    }
    let _ = envelope::recipients(data);
    let ra = ra();
    let _ = envelope::open(data, &ra.cert, ra.key(), true);
});
