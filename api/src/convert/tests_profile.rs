use std::time::Duration;

use pkiplane_core::ObjectRef;
use pkiplane_core::Protocol;
use pkiplane_core::keys::{Curve, KeyFamily};
use pkiplane_core::profile::{Presence, RenewalPolicy, SanKind, UnlistedAttributes, ValueSource};
use pkiplane_core::x509::KeyUsageBit;
use pkiplane_core::x509::names::SubjectAttribute;

use super::profile::fraction;
use super::*;
use crate::v1alpha1::{CertificateProfile, EnrollmentEndpoint};

const DAY: u64 = 86_400;

fn profile(yaml: &str) -> CertificateProfile {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("test profile does not parse: {e}"))
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

fn assert_error(errors: &[FieldError], path: &str, fragment: &str) {
    assert!(
        errors.iter().any(|e| e.path == path && e.message.contains(fragment)),
        "expected an error at {path} containing `{fragment}`, got:\n{}",
        FieldError::join(errors)
    );
}

const FULL: &str = r#"
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: web, namespace: pki}
spec:
  issuerRef: {name: example-intermediate}
  description: TLS servers
  keys: {algorithms: [ECDSA, RSA], ecdsaCurves: [P-256], rsaMinBits: 3072}
  validity: {duration: 47d, max: 90d, backdate: 2m}
  renewal: {remainingFraction: "1/4"}
  subject:
    otherAttributes: Refuse
    attributes:
      - {name: CN, presence: Required, from: FirstDNSName, mustMatchSAN: true}
      - {name: O, value: Example}
      - {name: serialNumber, from: Claim, claim: serialNumber, pattern: "[A-Z]+|[A-Z]+-[0-9]+"}
  subjectAltNames:
    maxCount: 10
    required: true
    dns: {suffixes: [example.com, .Example.Internal], allowWildcards: true}
    ip: {cidrs: [127.0.0.0/8, "::1"]}
    uri: {patterns: ["spiffe://example.org/ns/*/sa/*"]}
  keyUsage: [digitalSignature, keyEncipherment]
  extendedKeyUsage: [serverAuth, clientAuth, 1.3.6.1.5.5.7.3.17]
  crlDistributionPoints: [http://127.0.0.1:8080/issuers/pki/example-intermediate/crl]
  authorityInfoAccess:
    caIssuers: [http://127.0.0.1:8080/issuers/pki/example-intermediate/ca.crt]
    ocsp: [https://ocsp.example.com]
  csrExtensions: {copy: [tlsFeature, 1.2.3.4], refuse: [2.5.29.32]}
  requesters:
    protocols: [ACME, EST]
    endpoints: [acme, other/est]
    identities: ["CN=device-*"]
    requiredClaims: {serialNumber: "*"}
  approval: {required: true}
"#;

#[test]
fn full_profile_converts() {
    let p = profile_from_resource(&profile(FULL)).unwrap_or_else(|e| panic!("{}", FieldError::join(&e)));
    assert_eq!(p.id, ObjectRef::new("pki", "web"));
    assert_eq!(p.issuer, ObjectRef::new("pki", "example-intermediate"));
    assert_eq!(p.description, "TLS servers");
    assert_eq!(p.keys.families, [KeyFamily::Ecdsa, KeyFamily::Rsa]);
    assert_eq!(p.keys.ecdsa_curves, [Curve::P256]);
    assert_eq!((p.keys.rsa_min_bits, p.keys.rsa_max_bits), (3072, 8192));
    assert_eq!(p.validity.duration, Duration::from_secs(47 * DAY));
    assert_eq!(p.validity.max, Duration::from_secs(90 * DAY));
    assert_eq!(p.validity.backdate, Duration::from_secs(120));
    assert_eq!(p.renewal, RenewalPolicy::RemainingFraction(0.25));
    assert_eq!(p.subject.unlisted, UnlistedAttributes::Refuse);
    let cn = &p.subject.rules[0];
    assert_eq!((cn.attribute, cn.presence), (SubjectAttribute::CommonName, Presence::Required));
    assert_eq!(cn.source, ValueSource::FirstSan(SanKind::Dns));
    assert!(cn.must_match_san);
    assert_eq!(p.subject.rules[1].value.as_deref(), Some("Example"));
    let serial = &p.subject.rules[2];
    assert_eq!(serial.source, ValueSource::Claim("serialNumber".into()));
    let re = serial.pattern.as_ref().unwrap();
    assert!(re.is_match("AB-12") && !re.is_match("xAB"), "patterns match the whole value, every alternative");
    assert_eq!((p.sans.max_count, p.sans.required), (10, true));
    let dns = p.sans.dns.as_ref().unwrap();
    assert_eq!(dns.suffixes, ["example.com", ".example.internal"], "a leading dot means only names below");
    assert!(dns.allow_wildcards);
    let ips: Vec<String> = p.sans.ip.as_ref().unwrap().cidrs.iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["127.0.0.0/8", "::1/128"]);
    assert!(p.sans.email.is_none(), "e-mail SANs are not allowed without a section");
    assert_eq!(p.key_usage, [KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment]);
    let ekus: Vec<String> = p.extended_key_usage.iter().map(ToString::to_string).collect();
    assert_eq!(ekus, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.17"]);
    assert_eq!(p.crl_distribution_points.len(), 1);
    assert_eq!((p.ca_issuers_urls.len(), p.ocsp_urls.len()), (1, 1));
    let copy: Vec<String> = p.csr_extensions.copy.iter().map(ToString::to_string).collect();
    assert_eq!(copy, ["1.3.6.1.5.5.7.1.24", "1.2.3.4"]);
    assert_eq!(p.requesters.protocols, [Protocol::Acme, Protocol::Est]);
    assert_eq!(p.requesters.endpoints, [ObjectRef::new("pki", "acme"), ObjectRef::new("other", "est")]);
    assert_eq!(p.requesters.required_claims["serialNumber"], "*");
    assert!(p.approval_required);
}

#[test]
fn minimal_profile_gets_defaults() {
    let p = profile_from_resource(&profile(
        "metadata: {name: min}\nspec: {issuerRef: {name: ca}, validity: {duration: 1y}}",
    ))
    .unwrap();
    assert_eq!(p.id.namespace, "default");
    assert_eq!(p.keys.families, [KeyFamily::Ecdsa, KeyFamily::Rsa, KeyFamily::Ed25519]);
    assert_eq!(p.keys.ecdsa_curves, [Curve::P256, Curve::P384]);
    assert_eq!((p.keys.rsa_min_bits, p.keys.rsa_max_bits), (2048, 8192));
    assert_eq!(p.validity.max, p.validity.duration);
    assert_eq!(p.validity.backdate, Duration::from_secs(300));
    assert_eq!(p.renewal, RenewalPolicy::RemainingFraction(1.0 / 3.0));
    assert_eq!(p.key_usage, [KeyUsageBit::DigitalSignature]);
    assert!(p.extended_key_usage.is_empty());
    assert_eq!(p.sans.max_count, 100);
    assert!(p.sans.dns.is_none() && p.sans.ip.is_none() && p.sans.uri.is_none() && p.sans.email.is_none());
    assert_eq!(p.subject.unlisted, UnlistedAttributes::Drop);
    assert!(!p.approval_required);
}

#[test]
fn every_error_is_reported_with_its_path() {
    let bad = profile(
        r#"
metadata: {name: bad}
spec:
  issuerRef: {name: Not_A_Name}
  keys: {algorithms: [ECDSA, ECDSA], ecdsaCurves: [], rsaMinBits: 1024, rsaMaxBits: 1000}
  validity: {duration: 47d, max: 30d, backdate: 2h}
  renewal: {remainingFraction: "1.5"}
  subject:
    attributes:
      - {name: CN, from: FirstDNSName, pattern: "([a-z"}
      - {name: serialNumber, from: Claim}
      - {name: O, value: Example, presence: Forbidden}
      - {name: CN}
      - {name: C, value: "Ä", pattern: "[A-Z]{2}"}
  subjectAltNames: {maxCount: 0, ip: {cidrs: [10.0.0.1/8, not-an-ip]}, uri: {patterns: [example.org/x]}, email: {domains: [a@b.c]}}
  keyUsage: [encipherOnly, digitalSignature, digitalSignature]
  extendedKeyUsage: [serverAuth, webAuth]
  crlDistributionPoints: [ftp://example.com/crl, http:///nohost]
  authorityInfoAccess: {ocsp: [ldap://x]}
  csrExtensions: {copy: [basicConstraints, fooBar, tlsFeature], refuse: [tlsFeature]}
  requesters: {endpoints: [a/b/c], requiredClaims: {"": x}}
"#,
    );
    let errors = profile_from_resource(&bad).unwrap_err();
    for (path, fragment) in [
        ("spec.issuerRef.name", "not a valid object name"),
        ("spec.keys.algorithms[1]", "ECDSA is listed twice"),
        ("spec.keys.ecdsaCurves", "at least one curve"),
        ("spec.keys.rsaMinBits", "weak"),
        ("spec.keys.rsaMaxBits", "smaller than rsaMinBits"),
        ("spec.validity.max", "shorter than validity.duration"),
        ("spec.validity.backdate", "at most 1h"),
        ("spec.renewal.remainingFraction", "strictly between 0 and 1"),
        ("spec.subject.attributes[0].from", "needs DNS SANs"),
        ("spec.subject.attributes[0].pattern", "invalid regular expression"),
        ("spec.subject.attributes[1].claim", "must name the claim"),
        ("spec.subject.attributes[2].value", "Forbidden"),
        ("spec.subject.attributes[3].name", "has a rule already"),
        ("spec.subject.attributes[4].value", "does not match"),
        ("spec.subject.attributes[4].value", "cannot be encoded"),
        ("spec.subjectAltNames.maxCount", "at least 1"),
        ("spec.subjectAltNames.ip.cidrs[0]", "host bits"),
        ("spec.subjectAltNames.ip.cidrs[1]", "not a CIDR"),
        ("spec.subjectAltNames.uri.patterns[0]", "needs a scheme"),
        ("spec.subjectAltNames.email.domains[0]", "is an address"),
        ("spec.keyUsage[0]", "only with keyAgreement"),
        ("spec.keyUsage[2]", "listed twice"),
        ("spec.extendedKeyUsage[1]", "unknown extended key usage `webAuth`"),
        ("spec.crlDistributionPoints[0]", "not an http:// or https:// URL"),
        ("spec.crlDistributionPoints[1]", "needs a host"),
        ("spec.authorityInfoAccess.ocsp[0]", "not an http"),
        ("spec.csrExtensions.copy[0]", "CA:TRUE"),
        ("spec.csrExtensions.copy[1]", "unknown extension `fooBar`"),
        ("spec.csrExtensions.refuse[0]", "also listed under copy"),
        ("spec.requesters.endpoints[0]", "namespace/name"),
        ("spec.requesters.requiredClaims", "must not be empty"),
    ] {
        assert_error(&errors, path, fragment);
    }
    assert_eq!(errors.len(), 31, "unexpected extra errors:\n{}", FieldError::join(&errors));
}

#[test]
fn renewal_and_validity_relations() {
    let with = |extra: &str| {
        profile(&format!(
            "metadata: {{name: p}}\nspec: {{issuerRef: {{name: ca}}, validity: {{duration: 30d}}, {extra}}}"
        ))
    };
    let errors = profile_from_resource(&with("renewal: {before: 30d}")).unwrap_err();
    assert_eq!(paths(&errors), ["spec.renewal.before"]);
    let errors = profile_from_resource(&with("renewal: {before: 10d, remainingFraction: '1/3'}")).unwrap_err();
    assert_eq!(paths(&errors), ["spec.renewal"]);
    let p = profile_from_resource(&with("renewal: {before: 10d}")).unwrap();
    assert_eq!(p.renewal, RenewalPolicy::Before(Duration::from_secs(10 * DAY)));
    let errors = profile_from_resource(&with("subjectAltNames: {required: true}")).unwrap_err();
    assert_eq!(paths(&errors), ["spec.subjectAltNames.required"]);
    let errors = profile_from_resource(&profile(
        "metadata: {name: p}\nspec: {issuerRef: {name: ca}, validity: {duration: 0d, max: forever}}",
    ))
    .unwrap_err();
    assert_eq!(paths(&errors), ["spec.validity.duration", "spec.validity.max"]);
}

#[test]
fn fractions() {
    assert_eq!(fraction("1/3").unwrap(), 1.0 / 3.0);
    assert_eq!(fraction(" 0.25 ").unwrap(), 0.25);
    for bad in ["0", "1", "1/1", "3/2", "1/0", "-0.5", "NaN", "inf", "a/b", ""] {
        assert!(fraction(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn schema_level_mistakes_fail_to_parse() {
    // Unknown fields and enum values are refused when reading, as the API server would.
    let typo = "metadata: {name: p}\nspec: {issuerRef: {name: ca}, validity: {duration: 1d}, subjectAltName: {}}";
    assert!(serde_yaml::from_str::<CertificateProfile>(typo).unwrap_err().to_string().contains("subjectAltName"));
    let bad_ku =
        "metadata: {name: p}\nspec: {issuerRef: {name: ca}, validity: {duration: 1d}, keyUsage: [keyCertSign]}";
    assert!(serde_yaml::from_str::<CertificateProfile>(bad_ku).is_err());
}

fn endpoint(yaml: &str) -> EnrollmentEndpoint {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("test endpoint does not parse: {e}"))
}

#[test]
fn endpoint_checks() {
    let good = endpoint(
        r#"
metadata: {name: acme, namespace: pki}
spec:
  protocol: ACME
  profiles: [{name: web, default: true}, {name: web, label: web-short}]
  listen: {address: 127.0.0.1, port: 0}
  tls: {issuerRef: {name: example-intermediate}, dnsNames: [localhost], ipAddresses: [127.0.0.1]}
  acme: {challenges: [http-01], http01Port: 5002, dnsResolver: "127.0.0.1:5053", orderLifetime: 1h}
  externalURL: https://acme.example.com:8443
"#,
    );
    check_endpoint(&good).unwrap_or_else(|e| panic!("{}", FieldError::join(&e)));
    assert_eq!(good.spec.replicas, 1);
    assert_eq!(good.spec.default_profile().unwrap().label(), "web");

    let bad = endpoint(
        r#"
metadata: {name: est}
spec:
  protocol: EST
  profiles: [{name: a, default: true}, {name: b, label: a, default: true}]
  listen: {address: localhost}
  tls: {secretRef: {name: tls}, issuerRef: {name: ca}}
  acme: {dnsResolver: "nope", termsOfService: "file:///tos"}
  est: {clientCertificates: {trustAnchors: {}}}
  externalURL: https://est.example.com/est
"#,
    );
    let errors = check_endpoint(&bad).unwrap_err();
    for (path, fragment) in [
        ("spec.profiles[1].label", "used twice"),
        ("spec.profiles", "at most one profile"),
        ("spec.acme", "need protocol ACME"),
        ("spec.listen.address", "not an IP address"),
        ("spec.tls", "exactly one of secretRef or issuerRef"),
        ("spec.acme.dnsResolver", "host:port"),
        ("spec.acme.termsOfService", "http"),
        ("spec.est.clientCertificates.trustAnchors", "exactly one"),
        ("spec.externalURL", "no path"),
    ] {
        assert_error(&errors, path, fragment);
    }
}
