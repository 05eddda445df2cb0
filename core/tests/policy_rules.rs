#![allow(clippy::field_reassign_with_default)]
//! Every policy rule, allowed and denied, judged on CSRs made by the real `openssl req`.

mod common;

use std::time::Duration;

use common::*;
use pkiplane_core::issuer::NameConstraintsConfig;
use pkiplane_core::keys::{Curve, KeyFamily, PublicKeyInfo};
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::profile::*;
use pkiplane_core::x509::names::{SubjectAttribute, format_dn};
use pkiplane_core::x509::{KeyUsageBit, San};

// ---- keys -----------------------------------------------------------------------------

#[test]
fn every_key_type_is_read_and_allowed_by_default() {
    for (kind, expect) in [
        (Kind::P256, PublicKeyInfo::Ecdsa(Curve::P256)),
        (Kind::P384, PublicKeyInfo::Ecdsa(Curve::P384)),
        (Kind::Rsa2048, PublicKeyInfo::Rsa { bits: 2048 }),
        (Kind::Rsa3072, PublicKeyInfo::Rsa { bits: 3072 }),
        (Kind::Rsa4096, PublicKeyInfo::Rsa { bits: 4096 }),
        (Kind::Ed25519, PublicKeyInfo::Ed25519),
    ] {
        let c = csr(kind, "/CN=host.example.com", &["DNS:host.example.com"]);
        assert_eq!(c.key, expect);
        allow(&profile(), &c);
    }
}

#[test]
fn key_family_allowlist() {
    let mut p = profile();
    p.keys = only_ecdsa(&[Curve::P256, Curve::P384]);
    allow(&p, &csr(Kind::P256, "/CN=a", &[]));
    let v = deny(&p, &csr(Kind::Ed25519, "/CN=a", &[]), "keys.algorithms");
    assert!(v[0].message.contains("Ed25519 keys are not allowed"), "{v:?}");
    deny(&p, &csr(Kind::Rsa2048, "/CN=a", &[]), "keys.algorithms");
}

#[test]
fn ecdsa_curve_allowlist() {
    let mut p = profile();
    p.keys = only_ecdsa(&[Curve::P256]);
    allow(&p, &csr(Kind::P256, "/CN=a", &[]));
    let v = deny(&p, &csr(Kind::P384, "/CN=a", &[]), "keys.ecdsaCurves");
    assert!(v[0].message.contains("P-384"));
}

#[test]
fn rsa_minimum_and_maximum_size() {
    let v = deny(&profile(), &csr(Kind::Rsa1024, "/CN=a", &[]), "keys.rsaMinBits");
    assert!(v[0].message.contains("1024 bits is below the minimum of 2048"), "{v:?}");
    let mut p = profile();
    p.keys.rsa_max_bits = 3072;
    allow(&p, &csr(Kind::Rsa3072, "/CN=a", &[]));
    deny(&p, &csr(Kind::Rsa4096, "/CN=a", &[]), "keys.rsaMaxBits");
}

#[test]
fn key_usage_fits_the_key() {
    let mut p = profile();
    p.key_usage = vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment];
    let t = allow(&p, &csr(Kind::P256, "/CN=a", &[]));
    assert_eq!(t.key_usage, vec![KeyUsageBit::DigitalSignature]);
    assert!(t.notes.iter().any(|n| n.contains("keyEncipherment left out")));
    let t = allow(&p, &csr(Kind::Rsa2048, "/CN=a", &[]));
    assert_eq!(t.key_usage, vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment]);
}

// ---- validity -------------------------------------------------------------------------

#[test]
fn default_validity_is_the_profile_duration_with_backdate() {
    let e = Eval::default();
    let t = match e.run(&profile(), &csr(Kind::P256, "/CN=a", &[])) {
        pkiplane_core::policy::Decision::Allow(t) => t,
        d => panic!("{d:?}"),
    };
    assert_eq!(t.not_before, e.now - Duration::from_secs(300));
    assert_eq!(t.not_after.duration_since(t.not_before).unwrap(), Duration::from_secs(47 * 86_400));
}

#[test]
fn requested_validity_up_to_the_maximum() {
    let c = csr(Kind::P256, "/CN=a", &[]);
    let mut e = Eval::default();
    e.requested =
        RequestedValidity { not_before: Some(e.now), not_after: Some(e.now + Duration::from_secs(90 * 86_400)) };
    assert!(matches!(e.run(&profile(), &c), pkiplane_core::policy::Decision::Allow(_)));
    e.requested.not_after = Some(e.now + Duration::from_secs(91 * 86_400));
    let v = deny_with(&e, &profile(), &c, "validity.max");
    assert!(v[0].message.contains("exceeds the profile's maximum of 90d"), "{v:?}");
}

#[test]
fn backdating_is_bounded() {
    let c = csr(Kind::P256, "/CN=a", &[]);
    let mut e = Eval::default();
    e.requested.not_before = Some(e.now - Duration::from_secs(3600));
    deny_with(&e, &profile(), &c, "validity.backdate");
    e.requested.not_before = Some(e.now - Duration::from_secs(60));
    assert!(matches!(e.run(&profile(), &c), pkiplane_core::policy::Decision::Allow(_)));
}

#[test]
fn never_beyond_the_issuer() {
    let c = csr(Kind::P256, "/CN=a", &[]);
    let mut e = Eval::default();
    e.issuer_not_after = e.now + Duration::from_secs(10 * 86_400);
    // The default lifetime is shortened, with a note.
    match e.run(&profile(), &c) {
        pkiplane_core::policy::Decision::Allow(t) => {
            assert_eq!(t.not_after, e.issuer_not_after);
            assert!(t.notes.iter().any(|n| n.contains("shortened")));
        }
        d => panic!("{d:?}"),
    }
    // An explicit request past the issuer is refused.
    e.requested.not_after = Some(e.now + Duration::from_secs(20 * 86_400));
    deny_with(&e, &profile(), &c, "validity.issuerNotAfter");
}

// ---- subject --------------------------------------------------------------------------

fn rule(attr: SubjectAttribute, presence: Presence) -> SubjectRule {
    SubjectRule {
        attribute: attr,
        presence,
        value: None,
        source: ValueSource::Csr,
        must_match_san: false,
        pattern: None,
    }
}

#[test]
fn required_and_forbidden_attributes() {
    let mut p = profile();
    p.subject.rules = vec![
        rule(SubjectAttribute::CommonName, Presence::Required),
        rule(SubjectAttribute::Organization, Presence::Forbidden),
    ];
    let t = allow(&p, &csr(Kind::P256, "/CN=dev1", &[]));
    assert_eq!(format_dn(&t.subject), "CN=dev1");
    deny(&p, &csr(Kind::P256, "/O=Acme", &["DNS:a.example.com"]), "subject.attributes[CN].presence");
    let v = deny(&p, &csr(Kind::P256, "/CN=dev1/O=Acme", &[]), "subject.attributes[O].presence");
    assert!(v[0].message.contains("forbids"));
}

#[test]
fn fixed_values_win_over_the_csr() {
    let mut p = profile();
    let mut o = rule(SubjectAttribute::Organization, Presence::Required);
    o.value = Some("Example Devices".into());
    p.subject.rules = vec![o, rule(SubjectAttribute::CommonName, Presence::Required)];
    let t = allow(&p, &csr(Kind::P256, "/O=Evil Corp/CN=dev1", &[]));
    assert_eq!(format_dn(&t.subject), "CN=dev1,O=Example Devices");
}

#[test]
fn common_name_derived_from_first_dns_name_and_must_match_san() {
    let mut p = profile();
    let mut cn = rule(SubjectAttribute::CommonName, Presence::Required);
    cn.source = ValueSource::FirstSan(SanKind::Dns);
    cn.must_match_san = true;
    p.subject.rules = vec![cn];
    let t = allow(&p, &csr(Kind::P256, "", &["DNS:www.example.com", "DNS:api.example.com"]));
    assert_eq!(format_dn(&t.subject), "CN=www.example.com");
    allow(&p, &csr(Kind::P256, "/CN=api.example.com", &["DNS:www.example.com", "DNS:api.example.com"]));
    deny(
        &p,
        &csr(Kind::P256, "/CN=other.example.com", &["DNS:www.example.com"]),
        "subject.attributes[CN].mustMatchSAN",
    );
}

#[test]
fn attribute_bound_to_a_proved_claim() {
    let mut p = profile();
    let mut sn = rule(SubjectAttribute::SerialNumber, Presence::Required);
    sn.source = ValueSource::Claim("serialNumber".into());
    p.subject.rules = vec![rule(SubjectAttribute::CommonName, Presence::Optional), sn];
    let mut e = Eval::default();
    e.requester = requester().with_claim("serialNumber", "SN-0042");
    // Filled from the claim when the CSR omits it, accepted when equal, refused when not.
    for subj in ["/CN=dev", "/CN=dev/serialNumber=SN-0042"] {
        match e.run(&p, &csr(Kind::P256, subj, &[])) {
            pkiplane_core::policy::Decision::Allow(t) => {
                assert_eq!(format_dn(&t.subject), "serialNumber=SN-0042,CN=dev")
            }
            d => panic!("{d:?}"),
        }
    }
    deny_with(&e, &p, &csr(Kind::P256, "/CN=dev/serialNumber=SN-9999", &[]), "subject.attributes[serialNumber].claim");
    // Without the claim at all, a required attribute cannot be satisfied.
    deny(&p, &csr(Kind::P256, "/CN=dev", &[]), "subject.attributes[serialNumber].presence");
}

#[test]
fn attribute_pattern() {
    let mut p = profile();
    let mut cn = rule(SubjectAttribute::CommonName, Presence::Required);
    cn.pattern = Some(regex_lite::Regex::new("dev-[0-9]+").unwrap());
    p.subject.rules = vec![cn];
    allow(&p, &csr(Kind::P256, "/CN=dev-17", &[]));
    deny(&p, &csr(Kind::P256, "/CN=dev-17x", &[]), "subject.attributes[CN].pattern");
}

#[test]
fn unlisted_attributes_dropped_or_refused() {
    let mut p = profile();
    p.subject.rules = vec![rule(SubjectAttribute::CommonName, Presence::Optional)];
    let t = allow(&p, &csr(Kind::P256, "/CN=a/OU=Ops/L=Berlin", &[]));
    assert_eq!(format_dn(&t.subject), "CN=a");
    assert!(t.notes.iter().any(|n| n.contains("OU=Ops")));
    p.subject.unlisted = UnlistedAttributes::Refuse;
    let v = deny(&p, &csr(Kind::P256, "/CN=a/OU=Ops", &[]), "subject.otherAttributes");
    assert!(v[0].message.contains("OU=Ops"));
}

#[test]
fn a_certificate_must_name_someone() {
    deny(&profile(), &csr(Kind::P256, "/O=Acme", &[]), "subject");
}

// ---- SANs -----------------------------------------------------------------------------

#[test]
fn dns_suffixes_and_wildcards() {
    let mut p = profile();
    p.sans.dns = Some(DnsRule { suffixes: vec!["example.com".into(), ".internal".into()], allow_wildcards: false });
    let t = allow(&p, &csr(Kind::P256, "", &["DNS:Example.COM", "DNS:a.b.example.com", "DNS:svc.internal"]));
    assert_eq!(t.sans[0], San::Dns("example.com".into()));
    deny(&p, &csr(Kind::P256, "", &["DNS:internal"]), "subjectAltNames.dns.suffixes");
    deny(&p, &csr(Kind::P256, "", &["DNS:example.com.evil.org"]), "subjectAltNames.dns.suffixes");
    deny(&p, &csr(Kind::P256, "", &["DNS:*.example.com"]), "subjectAltNames.dns.allowWildcards");
    p.sans.dns.as_mut().unwrap().allow_wildcards = true;
    allow(&p, &csr(Kind::P256, "", &["DNS:*.example.com"]));
    deny(&p, &csr(Kind::P256, "", &["DNS:a_b.example.com"]), "subjectAltNames.dns");
    p.sans.dns = None;
    deny(&p, &csr(Kind::P256, "", &["DNS:example.com"]), "subjectAltNames.dns");
}

#[test]
fn ip_ranges() {
    let mut p = profile();
    p.sans.ip = Some(IpRule { cidrs: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()] });
    allow(&p, &csr(Kind::P256, "/CN=a", &["IP:10.1.2.3", "IP:::1"]));
    let v = deny(&p, &csr(Kind::P256, "/CN=a", &["IP:192.168.1.1"]), "subjectAltNames.ip.cidrs");
    assert!(v[0].message.contains("192.168.1.1"));
    p.sans.ip = None;
    deny(&p, &csr(Kind::P256, "/CN=a", &["IP:10.1.2.3"]), "subjectAltNames.ip");
}

#[test]
fn uri_patterns_such_as_spiffe() {
    let mut p = profile();
    p.sans.uri = Some(UriRule { patterns: vec!["spiffe://example.org/ns/*/sa/*".into()] });
    allow(&p, &csr(Kind::P256, "", &["URI:spiffe://example.org/ns/prod/sa/web"]));
    deny(&p, &csr(Kind::P256, "", &["URI:spiffe://example.org/ns/prod/extra/sa/web"]), "subjectAltNames.uri.patterns");
    deny(&p, &csr(Kind::P256, "", &["URI:spiffe://evil.org/ns/prod/sa/web"]), "subjectAltNames.uri.patterns");
}

#[test]
fn email_domains() {
    let mut p = profile();
    p.sans.email = Some(EmailRule { domains: vec!["example.com".into()] });
    allow(&p, &csr(Kind::P256, "/CN=a", &["email:alice@Example.com"]));
    deny(&p, &csr(Kind::P256, "/CN=a", &["email:alice@example.org"]), "subjectAltNames.email.domains");
}

#[test]
fn san_count_and_presence() {
    let mut p = profile();
    p.sans.max_count = 2;
    allow(&p, &csr(Kind::P256, "", &["DNS:a.com", "DNS:b.com"]));
    deny(&p, &csr(Kind::P256, "", &["DNS:a.com", "DNS:b.com", "DNS:c.com"]), "subjectAltNames.maxCount");
    p.sans.required = true;
    deny(&p, &csr(Kind::P256, "/CN=a", &[]), "subjectAltNames.required");
}

#[test]
fn unsupported_san_forms_are_refused() {
    let c = csr(Kind::P256, "/CN=a", &["otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com"]);
    let v = deny(&profile(), &c, "subjectAltNames");
    assert!(v[0].message.contains("otherName"), "{v:?}");
}

#[test]
fn issuer_name_constraints_apply_to_leaves() {
    let mut e = Eval::default();
    e.constraints = vec![NameConstraintsConfig { permitted_dns: vec!["example.com".into()], ..Default::default() }];
    let c = csr(Kind::P256, "", &["DNS:a.example.com"]);
    assert!(matches!(e.run(&profile(), &c), pkiplane_core::policy::Decision::Allow(_)));
    deny_with(&e, &profile(), &csr(Kind::P256, "", &["DNS:a.example.org"]), "issuer.nameConstraints");
}

// ---- extensions -----------------------------------------------------------------------

#[test]
fn unknown_critical_extension_is_refused_and_listed_ones_copied() {
    let ext = "1.3.6.1.4.1.55555.1=critical,ASN1:UTF8String:hello";
    let pem = csr_pem(Kind::P256, "/CN=a", &[], &[ext], &[]);
    let c = parse(&pem);
    let v = deny(&profile(), &c, "csrExtensions");
    assert!(v[0].message.contains("1.3.6.1.4.1.55555.1"), "{v:?}");
    let mut p = profile();
    p.csr_extensions.copy = vec!["1.3.6.1.4.1.55555.1".parse().unwrap()];
    let t = allow(&p, &c);
    assert_eq!(t.copied_extensions.len(), 1);
    p.csr_extensions = CsrExtensionPolicy { copy: vec![], refuse: vec!["1.3.6.1.4.1.55555.1".parse().unwrap()] };
    deny(&p, &c, "csrExtensions.refuse");
}

#[test]
fn requested_ca_certificate_is_refused_and_requested_usages_ignored() {
    let c = parse(&csr_pem(Kind::P256, "/CN=a", &[], &["basicConstraints=critical,CA:TRUE"], &[]));
    deny(&profile(), &c, "basicConstraints");
    let c = parse(&csr_pem(
        Kind::P256,
        "/CN=a",
        &[],
        &["keyUsage=critical,keyCertSign", "extendedKeyUsage=codeSigning"],
        &[],
    ));
    let t = allow(&profile(), &c);
    assert_eq!(t.key_usage, vec![KeyUsageBit::DigitalSignature]);
    assert!(t.extended_key_usage.is_empty());
}

// ---- requesters -----------------------------------------------------------------------

#[test]
fn requester_rules() {
    let c = csr(Kind::P256, "/CN=a", &[]);
    let mut p = profile();
    p.requesters.protocols = vec![Protocol::Acme];
    deny(&p, &c, "requesters.protocols");
    p.requesters.protocols = vec![Protocol::Est];
    allow(&p, &c);

    p.requesters.endpoints = vec![ObjectRef::new("pki", "other")];
    deny(&p, &c, "requesters.endpoints");
    p.requesters.endpoints = vec![ObjectRef::new("pki", "est")];
    allow(&p, &c);

    p.requesters.identities = vec!["device-*".into()];
    allow(&p, &c);
    p.requesters.identities = vec!["gateway-*".into()];
    deny(&p, &c, "requesters.identities");
    p.requesters.identities.clear();

    p.requesters.required_claims.insert("tier".into(), "gold".into());
    deny(&p, &c, "requesters.requiredClaims");
    let mut e = Eval::default();
    e.requester = requester().with_claim("tier", "gold");
    assert!(matches!(e.run(&p, &c), pkiplane_core::policy::Decision::Allow(_)));
    e.requester = requester().with_claim("tier", "silver");
    deny_with(&e, &p, &c, "requesters.requiredClaims");
}

#[test]
fn a_denial_lists_every_violated_rule() {
    let mut p = profile();
    p.keys.families = vec![KeyFamily::Ecdsa];
    p.sans.ip = None;
    p.requesters.protocols = vec![Protocol::Acme];
    let v = deny(&p, &csr(Kind::Rsa2048, "/CN=a", &["IP:10.0.0.1"]), "keys.algorithms");
    let rules: Vec<&str> = v.iter().map(|x| x.rule.as_str()).collect();
    assert!(rules.contains(&"subjectAltNames.ip") && rules.contains(&"requesters.protocols"), "{rules:?}");
}

// ---- names alone (ACME newOrder) ------------------------------------------------------

#[test]
fn requested_names_are_judged_by_the_same_san_and_requester_rules() {
    use pkiplane_core::policy::check_requested_names;
    let mut p = profile();
    p.sans.dns = Some(DnsRule { suffixes: vec!["example.com".into()], allow_wildcards: false });
    p.sans.ip = Some(IpRule { cidrs: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()] });
    let ok = [San::Dns("www.example.com".into()), San::Ip("127.0.0.1".parse().unwrap())];
    assert!(check_requested_names(&p, &requester(), &ok).is_empty());
    let rules_of = |p: &Profile, names: &[San]| -> Vec<String> {
        check_requested_names(p, &requester(), names).into_iter().map(|v| v.rule).collect()
    };
    let rules = |names: &[San]| rules_of(&p, names);
    assert_eq!(rules(&[San::Ip("10.1.2.3".parse().unwrap())]), ["subjectAltNames.ip.cidrs"]);
    assert_eq!(rules(&[San::Ip("169.254.169.254".parse().unwrap())]), ["subjectAltNames.ip.cidrs"]);
    assert_eq!(rules(&[San::Dns("www.evil.test".into())]), ["subjectAltNames.dns.suffixes"]);
    assert_eq!(rules(&[San::Dns("*.example.com".into())]), ["subjectAltNames.dns.allowWildcards"]);
    assert_eq!(rules(&[San::Dns("WWW.Example.COM".into())]), Vec::<String>::new());
    p.sans.max_count = 1;
    assert_eq!(rules_of(&p, &ok), ["subjectAltNames.maxCount"]);
    p.sans.max_count = 10;
    p.requesters.protocols = vec![Protocol::Acme];
    assert_eq!(rules_of(&p, &ok), ["requesters.protocols"]);
}
