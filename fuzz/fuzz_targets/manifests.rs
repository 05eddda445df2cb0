//! The manifest loader (`pkiplane serve -f`, the CA's config source, the webhook's
//! objects): YAML into Issuers, CertificateProfiles, EnrollmentEndpoints and Secrets,
//! then each compiled as the CA would.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use pkiplane_api::{Manifests, issuer_from_resource, profile_from_resource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifests) = Manifests::from_yaml(text, "fuzz.yaml") else { return };
    for issuer in &manifests.issuers {
        let _ = issuer_from_resource(issuer, &manifests);
    }
    for profile in &manifests.profiles {
        let _ = profile_from_resource(profile);
    }
});
