//! The ACME endpoint's settings (`pkiplane-api` builds them from an `EnrollmentEndpoint`
//! resource, `api/src/convert/endpoint_acme.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ipnet::IpNet;
use pkiplane_core::ObjectRef;
use pkiplane_core::settings::FieldError;

use crate::state::ChallengeType;
use zeroize::Zeroizing;

pub use pkiplane_core::settings::ExposedProfile;

/// An EAB HMAC key. Never printed.
#[derive(Clone)]
pub struct EabKey(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// External account binding (RFC 8555 section 7.3.4).
#[derive(Clone, Debug, Default)]
pub struct EabSettings {
    pub required: bool,
    /// A key ID may bind more than one account.
    pub reusable: bool,
    /// Key ID -> HMAC key.
    pub keys: BTreeMap<String, EabKey>,
}

/// How challenge validation behaves.
#[derive(Clone, Debug)]
pub struct ValidationSettings {
    /// Attempts before a challenge is marked invalid.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// Bound on one attempt, connection to response.
    pub attempt_timeout: Duration,
    /// Special-purpose address ranges (loopback, private, link-local...) validation may
    /// still connect to; empty: only globally routable addresses (see
    /// [`crate::validate::target`]).
    pub allowed_target_ranges: Vec<IpNet>,
}

impl ValidationSettings {
    /// The longest a validation can take (all attempts and waits) plus a margin; a
    /// challenge processing for longer lost its validator (a replica stopped) and is
    /// restarted.
    pub fn budget(&self) -> Duration {
        let attempts = self.attempts.max(1);
        let waits = self.backoff.saturating_mul((1u32 << attempts.min(8)).saturating_sub(1));
        self.attempt_timeout.saturating_mul(attempts) + waits + Duration::from_secs(30)
    }
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            allowed_target_ranges: Vec::new(),
        }
    }
}

/// Everything the ACME server needs to know about its endpoint.
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    pub endpoint: ObjectRef,
    /// Absolute URL the server is reached at, without a trailing slash, e.g.
    /// `https://acme.example.com` or `https://127.0.0.1:14000`; every URL the server emits
    /// starts with it and the directory is `{base_url}/directory`.
    pub base_url: String,
    pub profiles: Vec<ExposedProfile>,
    /// The label used when newOrder names no profile.
    pub default_profile: Option<String>,
    pub challenges: Vec<ChallengeType>,
    pub http01_port: u16,
    pub tls_alpn01_port: u16,
    /// DNS server for dns-01 (`host:port`); None: the system's (/etc/resolv.conf).
    pub dns_resolver: Option<String>,
    /// How long a valid authorization is reused by later orders of the same account.
    pub authz_reuse: Option<Duration>,
    pub order_lifetime: Duration,
    pub nonce_lifetime: Duration,
    pub terms_of_service: Option<String>,
    pub eab: Option<EabSettings>,
    pub validation: ValidationSettings,
}

impl AcmeSettings {
    /// A configuration with defaults: all challenge types, ports 80/443, 24h orders.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = pkiplane_core::settings::default_label(&profiles);
        Self {
            endpoint,
            base_url: base_url.trim_end_matches('/').to_owned(),
            profiles,
            default_profile,
            challenges: vec![ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01],
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolver: None,
            authz_reuse: None,
            order_lifetime: Duration::from_secs(86_400),
            nonce_lifetime: Duration::from_secs(3_600),
            terms_of_service: None,
            eab: None,
            validation: ValidationSettings::default(),
        }
    }

    pub fn profile(&self, label: &str) -> Option<&ExposedProfile> {
        self.profiles.iter().find(|p| p.label == label)
    }

    /// The rules these settings must meet whatever resource they came from: EAB HMAC
    /// keys of at least 16 bytes. Paths name the `EnrollmentEndpoint` fields.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (kid, key) in self.eab.iter().flat_map(|e| e.keys.iter()) {
            if key.0.len() < 16 {
                errors.push(FieldError::new(
                    "spec.acme.externalAccountBinding.secretRef",
                    format!("the HMAC key of key ID `{kid}` is shorter than 16 bytes"),
                ));
            }
        }
        errors
    }
}

/// An EAB key from a Secret value: base64url text, else the raw bytes.
pub fn eab_key(value: &[u8]) -> Vec<u8> {
    let decoded = std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).or_else(|_| URL_SAFE.decode(text)).ok());
    match decoded {
        Some(d) if d.len() >= 16 => d,
        _ => value.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eab_keys_decode_base64url_or_stay_raw() {
        let raw = [7u8; 32];
        let text = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(eab_key(text.as_bytes()), raw.to_vec());
        assert_eq!(eab_key(format!("{text}\n").as_bytes()), raw.to_vec());
        let binary = [0xffu8, 0x00, 0x13, 0x37, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b];
        assert_eq!(eab_key(&binary), binary.to_vec());
        assert_eq!(format!("{:?}", EabKey(Zeroizing::new(raw.to_vec()))), "<redacted>");
    }
}
