//! ACME request bodies: the flattened JWS, its protected header, an embedded JWK (and
//! its thumbprint and signature check), and the payload as JSON.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use pkiplane_acme::jwk::Jwk;
use pkiplane_acme::jws::Jws;

fuzz_target!(|data: &[u8]| {
    if let Ok(jws) = Jws::parse(data) {
        let _ = jws.json();
        if let Some(jwk) = &jws.header.jwk
            && let Ok(key) = Jwk::from_value(jwk)
        {
            let _ = key.thumbprint();
            let _ = key.matches_alg(&jws.header.alg);
            let _ = jws.verify(&key);
        }
        // An EAB binding or a key-change payload is a JWS inside the payload.
        if let Ok(inner) = serde_json::from_slice::<serde_json::Value>(&jws.payload) {
            let _ = Jws::parse_value(&inner);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Jwk::from_json(text);
    }
});
