//! The ACME endpoint's configuration, built from an `EnrollmentEndpoint` resource.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ipnet::IpNet;
use pkiplane_api::SecretLookup;
use pkiplane_api::v1alpha1::{AcmeChallenge, EndpointProtocol, EnrollmentEndpoint};
use pkiplane_api::{EndpointHead, FieldError};
use pkiplane_core::ObjectRef;
use pkiplane_core::state::acme::ChallengeType;
use zeroize::Zeroizing;

/// One exposed profile: the label clients name it by (ACME profiles extension) and the
/// CertificateProfile behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposedProfile {
    pub label: String,
    pub profile: ObjectRef,
}

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
pub struct EabConfig {
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
pub struct AcmeConfig {
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
    pub eab: Option<EabConfig>,
    pub validation: ValidationSettings,
}

impl AcmeConfig {
    /// A configuration with defaults: all challenge types, ports 80/443, 24h orders.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = match profiles.as_slice() {
            [only] => Some(only.label.clone()),
            _ => None,
        };
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

    /// Builds the configuration of an ACME EnrollmentEndpoint. EAB keys come from the
    /// Secret named by `externalAccountBinding.secretRef`: each entry's key is a key ID,
    /// its value the HMAC key as base64url text (how ACME CAs hand keys out) or, when it
    /// is not valid base64url of at least 16 bytes, the raw bytes.
    pub fn from_resource(
        endpoint: &EnrollmentEndpoint,
        secrets: &impl SecretLookup,
        base_url: &str,
    ) -> Result<AcmeConfig, Vec<FieldError>> {
        let mut errors = Vec::new();
        let head = EndpointHead::read(endpoint, EndpointProtocol::Acme, base_url, &mut errors)?;
        let namespace = head.id.namespace.clone();
        let spec = &endpoint.spec;
        let profiles: Vec<ExposedProfile> =
            head.profiles.into_iter().map(|(label, profile)| ExposedProfile { label, profile }).collect();
        let mut config = AcmeConfig::new(head.id, base_url, profiles);
        config.default_profile = head.default_label;
        let acme = spec.acme.clone().unwrap_or_default();
        if !acme.challenges.is_empty() {
            config.challenges = acme
                .challenges
                .iter()
                .map(|c| match c {
                    AcmeChallenge::Http01 => ChallengeType::Http01,
                    AcmeChallenge::Dns01 => ChallengeType::Dns01,
                    AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
                })
                .collect();
        }
        let port = |v: Option<i32>, default: u16, path: &str, errors: &mut Vec<FieldError>| match v {
            None => default,
            Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
                errors.push(FieldError::new(path, format!("{p} is not a TCP port")));
                default
            }),
        };
        config.http01_port = port(acme.http01_port, 80, "spec.acme.http01Port", &mut errors);
        config.tls_alpn01_port = port(acme.tls_alpn01_port, 443, "spec.acme.tlsAlpn01Port", &mut errors);
        config.dns_resolver = acme.dns_resolver.clone();
        let duration = |v: &Option<String>, path: &str, errors: &mut Vec<FieldError>| {
            v.as_deref().and_then(|s| {
                pkiplane_core::duration::parse_duration(s).map_err(|e| errors.push(FieldError::new(path, e))).ok()
            })
        };
        config.authz_reuse = duration(&acme.authorization_reuse, "spec.acme.authorizationReuse", &mut errors);
        if let Some(d) = duration(&acme.order_lifetime, "spec.acme.orderLifetime", &mut errors) {
            config.order_lifetime = d;
        }
        config.terms_of_service = acme.terms_of_service.clone();
        if let Some(v) = &acme.validation {
            // check_endpoint (in EndpointHead::read) has reported unparsable ranges.
            config.validation.allowed_target_ranges =
                v.allowed_target_ranges.iter().filter_map(|c| pkiplane_api::parse_cidr(c).ok()).collect();
        }
        if let Some(eab) = &acme.external_account_binding {
            let mut keys = BTreeMap::new();
            if let Some(secret) = &eab.secret_ref {
                match secrets.secret_data(&namespace, &secret.name) {
                    None => errors.push(FieldError::new(
                        "spec.acme.externalAccountBinding.secretRef",
                        format!("Secret {namespace}/{} not found", secret.name),
                    )),
                    Some(data) => {
                        for (kid, value) in data {
                            let key = eab_key(&value);
                            if key.len() < 16 {
                                errors.push(FieldError::new(
                                    "spec.acme.externalAccountBinding.secretRef",
                                    format!("the HMAC key of key ID `{kid}` is shorter than 16 bytes"),
                                ));
                            }
                            keys.insert(kid, EabKey(Zeroizing::new(key)));
                        }
                    }
                }
            }
            config.eab = Some(EabConfig { required: eab.required, reusable: eab.reusable, keys });
        }
        if errors.is_empty() { Ok(config) } else { Err(errors) }
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

#[cfg(test)]
mod resource_tests {
    use k8s_openapi::api::core::v1::Secret;
    use pkiplane_api::v1alpha1::EnrollmentEndpointSpec;
    use serde_json::json;

    use super::*;

    fn endpoint(spec: serde_json::Value) -> EnrollmentEndpoint {
        let spec: EnrollmentEndpointSpec = serde_json::from_value(spec).unwrap();
        let mut e = EnrollmentEndpoint::new("acme", spec);
        e.metadata.namespace = Some("pki".into());
        e
    }

    fn secret(name: &str, entries: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("pki".into());
        s.string_data = Some(entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        s
    }

    #[test]
    fn builds_from_an_enrollment_endpoint() {
        let e = endpoint(json!({
            "protocol": "ACME",
            "profiles": [{"name": "web-47d", "label": "web", "default": true}, {"name": "device-1y"}],
            "acme": {
                "externalAccountBinding": {"required": true, "secretRef": {"name": "eab"}},
                "challenges": ["http-01", "dns-01"],
                "http01Port": 5002,
                "tlsAlpn01Port": 5001,
                "dnsResolver": "127.0.0.1:5353",
                "authorizationReuse": "1h",
                "orderLifetime": "2h",
                "termsOfService": "https://example.com/tos",
                "validation": {"allowedTargetRanges": ["10.0.0.0/8", "127.0.0.1"]}
            }
        }));
        let key = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let secrets = vec![secret("eab", &[("kid-1", key.as_str())])];
        let c = AcmeConfig::from_resource(&e, &secrets, "https://acme.example.com/").unwrap();
        assert_eq!(c.base_url, "https://acme.example.com");
        assert_eq!(c.endpoint, ObjectRef::new("pki", "acme"));
        assert_eq!(c.default_profile.as_deref(), Some("web"));
        assert_eq!(c.profile("device-1y").unwrap().profile, ObjectRef::new("pki", "device-1y"));
        assert_eq!(c.profile("web").unwrap().profile, ObjectRef::new("pki", "web-47d"));
        assert_eq!(c.challenges, vec![ChallengeType::Http01, ChallengeType::Dns01]);
        assert_eq!((c.http01_port, c.tls_alpn01_port), (5002, 5001));
        assert_eq!(c.dns_resolver.as_deref(), Some("127.0.0.1:5353"));
        assert_eq!(c.authz_reuse, Some(Duration::from_secs(3600)));
        assert_eq!(c.order_lifetime, Duration::from_secs(7200));
        let ranges: Vec<String> = c.validation.allowed_target_ranges.iter().map(|n| n.to_string()).collect();
        assert_eq!(ranges, ["10.0.0.0/8", "127.0.0.1/32"]);
        let eab = c.eab.as_ref().unwrap();
        assert!(eab.required && !eab.reusable);
        assert_eq!(eab.keys["kid-1"].0.as_slice(), &[9u8; 32]);
        assert!(!format!("{c:?}").contains(&key), "EAB keys never appear in Debug output");

        // A missing Secret and a short key are reported with their field paths.
        let errs = AcmeConfig::from_resource(&e, &Vec::<Secret>::new(), "https://a").unwrap_err();
        assert!(errs.iter().any(|f| f.path == "spec.acme.externalAccountBinding.secretRef"), "{errs:?}");
        let short = vec![secret("eab", &[("kid-1", "c2hvcnQ")])];
        let errs = AcmeConfig::from_resource(&e, &short, "https://a").unwrap_err();
        assert!(errs[0].message.contains("shorter than 16 bytes"), "{errs:?}");
        let errs = AcmeConfig::from_resource(&e, &secrets, "ftp://a").unwrap_err();
        assert!(errs.iter().any(|f| f.path == "baseUrl"));
    }

    #[test]
    fn defaults_without_acme_settings() {
        let e = endpoint(json!({"protocol": "ACME", "profiles": [{"name": "only"}]}));
        let c = AcmeConfig::from_resource(&e, &Vec::<Secret>::new(), "http://127.0.0.1:14000").unwrap();
        assert_eq!(c.default_profile.as_deref(), Some("only"));
        assert_eq!((c.http01_port, c.tls_alpn01_port), (80, 443));
        assert_eq!(c.challenges.len(), 3);
        assert!(c.eab.is_none() && c.authz_reuse.is_none());
        assert!(c.validation.allowed_target_ranges.is_empty(), "validation reaches only public addresses by default");
        let bad = endpoint(json!({"protocol": "ACME", "profiles": [{"name": "only"}],
            "acme": {"validation": {"allowedTargetRanges": ["10.0.0.1/8", "localhost"]}}}));
        let errs = AcmeConfig::from_resource(&bad, &Vec::<Secret>::new(), "http://a").unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.acme.validation.allowedTargetRanges[0]", "spec.acme.validation.allowedTargetRanges[1]"],
            "{errs:?}"
        );
        let est = endpoint(json!({"protocol": "EST", "profiles": [{"name": "only"}]}));
        assert!(AcmeConfig::from_resource(&est, &Vec::<Secret>::new(), "http://a").is_err());
    }
}
