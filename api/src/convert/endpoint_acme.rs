//! `EnrollmentEndpoint` (protocol ACME) -> [`AcmeSettings`].

use std::collections::BTreeMap;

use pkiplane_acme::settings::{AcmeSettings, EabKey, EabSettings, eab_key};
use pkiplane_acme::state::ChallengeType;
use zeroize::Zeroizing;

use super::{EndpointHead, FieldError};
use crate::SecretLookup;
use crate::v1alpha1::{AcmeChallenge, EndpointProtocol, EnrollmentEndpoint};

/// The settings of an ACME EnrollmentEndpoint served at `base_url`. EAB keys come from the
/// Secret named by `externalAccountBinding.secretRef`: each entry's key is a key ID,
/// its value the HMAC key as base64url text (how ACME CAs hand keys out) or, when it
/// is not valid base64url of at least 16 bytes, the raw bytes.
pub fn acme_settings(
    endpoint: &EnrollmentEndpoint,
    secrets: &impl SecretLookup,
    base_url: &str,
) -> Result<AcmeSettings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let head = EndpointHead::read(endpoint, EndpointProtocol::Acme, base_url, &mut errors)?;
    let namespace = head.id.namespace.clone();
    let spec = &endpoint.spec;
    let mut config = AcmeSettings::new(head.id, base_url, head.profiles);
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
            v.allowed_target_ranges.iter().filter_map(|c| super::parse_cidr(c).ok()).collect();
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
                        keys.insert(kid, EabKey(Zeroizing::new(eab_key(&value))));
                    }
                }
            }
        }
        config.eab = Some(EabSettings { required: eab.required, reusable: eab.reusable, keys });
    }
    errors.extend(config.check());
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use crate::v1alpha1::EnrollmentEndpointSpec;
    use k8s_openapi::api::core::v1::Secret;
    use serde_json::json;

    use std::time::Duration;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use pkiplane_core::ObjectRef;

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
        let c = acme_settings(&e, &secrets, "https://acme.example.com/").unwrap();
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
        let errs = acme_settings(&e, &Vec::<Secret>::new(), "https://a").unwrap_err();
        assert!(errs.iter().any(|f| f.path == "spec.acme.externalAccountBinding.secretRef"), "{errs:?}");
        let short = vec![secret("eab", &[("kid-1", "c2hvcnQ")])];
        let errs = acme_settings(&e, &short, "https://a").unwrap_err();
        assert!(errs[0].message.contains("shorter than 16 bytes"), "{errs:?}");
        let errs = acme_settings(&e, &secrets, "ftp://a").unwrap_err();
        assert!(errs.iter().any(|f| f.path == "baseUrl"));
    }

    #[test]
    fn defaults_without_acme_settings() {
        let e = endpoint(json!({"protocol": "ACME", "profiles": [{"name": "only"}]}));
        let c = acme_settings(&e, &Vec::<Secret>::new(), "http://127.0.0.1:14000").unwrap();
        assert_eq!(c.default_profile.as_deref(), Some("only"));
        assert_eq!((c.http01_port, c.tls_alpn01_port), (80, 443));
        assert_eq!(c.challenges.len(), 3);
        assert!(c.eab.is_none() && c.authz_reuse.is_none());
        assert!(c.validation.allowed_target_ranges.is_empty(), "validation reaches only public addresses by default");
        let bad = endpoint(json!({"protocol": "ACME", "profiles": [{"name": "only"}],
            "acme": {"validation": {"allowedTargetRanges": ["10.0.0.1/8", "localhost"]}}}));
        let errs = acme_settings(&bad, &Vec::<Secret>::new(), "http://a").unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.acme.validation.allowedTargetRanges[0]", "spec.acme.validation.allowedTargetRanges[1]"],
            "{errs:?}"
        );
        let est = endpoint(json!({"protocol": "EST", "profiles": [{"name": "only"}]}));
        assert!(acme_settings(&est, &Vec::<Secret>::new(), "http://a").is_err());
    }
}
