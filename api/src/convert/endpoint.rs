//! Checks of an `EnrollmentEndpoint` beyond its schema. The core has no endpoint type
//! yet: protocol crates read the resource directly, after this check.

use std::net::IpAddr;

use super::{
    Errors, FieldError, api_name, check_object_name, dns_name, http_url, no_duplicates, object_ref, positive_duration,
};
use crate::v1alpha1::{EndpointProtocol, EnrollmentEndpoint, TlsSettings, TrustAnchors};

/// Checks an EnrollmentEndpoint, returning every problem found with its field path.
pub fn check_endpoint(endpoint: &EnrollmentEndpoint) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    object_ref(&endpoint.metadata, &mut e);
    let spec = &endpoint.spec;
    if spec.profiles.is_empty() {
        e.push("spec.profiles", "must expose at least one CertificateProfile");
    }
    let labels: Vec<&str> = spec.profiles.iter().map(|p| p.label()).collect();
    for (i, p) in spec.profiles.iter().enumerate() {
        let at = format!("spec.profiles[{i}]");
        if let Err(m) = check_object_name(&p.name) {
            e.push(format!("{at}.name"), m);
        }
        let label = p.label();
        let label_ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && label.starts_with(|c: char| c.is_ascii_alphanumeric())
            && label.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !label_ok {
            e.push(format!("{at}.label"), format!("`{label}` is not a valid label (letters, digits, . _ -)"));
        }
        if labels[..i].contains(&label) {
            e.push(format!("{at}.label"), format!("label `{label}` is used twice"));
        }
    }
    if spec.profiles.iter().filter(|p| p.default).count() > 1 {
        e.push("spec.profiles", "at most one profile can be the default");
    }
    for (set, name, protocol) in [
        (spec.acme.is_some(), "acme", EndpointProtocol::Acme),
        (spec.est.is_some(), "est", EndpointProtocol::Est),
        (spec.scep.is_some(), "scep", EndpointProtocol::Scep),
        (spec.cmp.is_some(), "cmp", EndpointProtocol::Cmp),
    ] {
        if set && spec.protocol != protocol {
            e.push(format!("spec.{name}"), format!("{name} settings need protocol {}", protocol.core()));
        }
    }
    if spec.replicas < 0 {
        e.push("spec.replicas", "must not be negative");
    }
    if let Some(url) = &spec.external_url {
        let pattern = regex_lite::Regex::new(crate::v1alpha1::EXTERNAL_URL_PATTERN).expect("a valid pattern");
        if !pattern.is_match(url) {
            e.push("spec.externalURL", format!("`{url}` is not scheme://host[:port] (http or https, no path)"));
        }
    }
    if let Some(l) = &spec.listen {
        if l.address.parse::<IpAddr>().is_err() {
            e.push("spec.listen.address", format!("`{}` is not an IP address", l.address));
        }
        if let Some(p) = l.port
            && !(0..=65535).contains(&p)
        {
            e.push("spec.listen.port", "must be within 0..=65535");
        }
    }
    if let Some(p) = spec.service.as_ref().and_then(|s| s.port)
        && !(1..=65535).contains(&p)
    {
        e.push("spec.service.port", "must be within 1..=65535");
    }
    if let Some(tls) = &spec.tls {
        check_tls(tls, &mut e);
    }
    if let Some(a) = &spec.acme {
        let at = "spec.acme";
        no_duplicates(&a.challenges, &format!("{at}.challenges"), api_name, &mut e);
        if let Some(eab) = &a.external_account_binding
            && eab.required
            && eab.secret_ref.is_none()
        {
            e.push(
                format!("{at}.externalAccountBinding.secretRef"),
                "required external account binding needs secretRef",
            );
        }
        for (v, field) in [(&a.authorization_reuse, "authorizationReuse"), (&a.order_lifetime, "orderLifetime")] {
            if let Some(v) = v {
                e.check(&format!("{at}.{field}"), positive_duration(v));
            }
        }
        if let Some(r) = &a.dns_resolver {
            e.check(&format!("{at}.dnsResolver"), host_port(r));
        }
        if let Some(t) = &a.terms_of_service {
            e.check(&format!("{at}.termsOfService"), http_url(t));
        }
        if let Some(v) = &a.validation {
            let path = format!("{at}.validation.allowedTargetRanges");
            for (i, c) in v.allowed_target_ranges.iter().enumerate() {
                e.check(&format!("{path}[{i}]"), super::cidr(c, true));
            }
        }
    }
    if let Some(t) = spec.est.as_ref().and_then(|s| s.client_certificates.as_ref()) {
        trust_anchors(&t.trust_anchors, "spec.est.clientCertificates.trustAnchors", &mut e);
    }
    if let Some(d) = spec.scep.as_ref().and_then(|s| s.dynamic_challenges.as_ref()) {
        let at = "spec.scep.dynamicChallenges";
        if d.enabled && d.api_secret_ref.is_none() {
            e.push(format!("{at}.apiSecretRef"), "dynamic challenges need apiSecretRef");
        }
        if let Some(ttl) = &d.ttl {
            e.check(&format!("{at}.ttl"), positive_duration(ttl));
        }
    }
    if let Some(c) = &spec.cmp {
        if let Some(t) = &c.trust_anchors {
            trust_anchors(t, "spec.cmp.trustAnchors", &mut e);
        }
        if let Some(w) = &c.confirm_wait_time {
            e.check("spec.cmp.confirmWaitTime", positive_duration(w));
        }
    }
    e.finish(Some(()))
}

fn check_tls(tls: &TlsSettings, e: &mut Errors) {
    let at = "spec.tls";
    match (&tls.secret_ref, &tls.issuer_ref) {
        (Some(_), Some(_)) | (None, None) => e.push(at, "set exactly one of secretRef or issuerRef"),
        (Some(_), None) if !tls.dns_names.is_empty() || !tls.ip_addresses.is_empty() => {
            e.push(at, "dnsNames and ipAddresses apply only with issuerRef")
        }
        (None, Some(_)) if tls.dns_names.is_empty() && tls.ip_addresses.is_empty() => {
            e.push(at, "a certificate from issuerRef needs dnsNames or ipAddresses")
        }
        _ => {}
    }
    for (i, d) in tls.dns_names.iter().enumerate() {
        e.check(&format!("{at}.dnsNames[{i}]"), dns_name(d.strip_prefix("*.").unwrap_or(d)));
    }
    for (i, ip) in tls.ip_addresses.iter().enumerate() {
        if ip.parse::<IpAddr>().is_err() {
            e.push(format!("{at}.ipAddresses[{i}]"), format!("`{ip}` is not an IP address"));
        }
    }
}

fn trust_anchors(t: &TrustAnchors, at: &str, e: &mut Errors) {
    if t.secret_ref.is_some() == t.issuer_ref.is_some() {
        e.push(at, "set exactly one of secretRef or issuerRef");
    }
}

/// `host:port` or `[v6]:port`.
fn host_port(s: &str) -> Result<(), String> {
    let bad = || format!("`{s}` is not host:port, e.g. 10.96.0.10:53 or [fd00::a]:53");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.parse::<IpAddr>().is_ok() || dns_name(host).is_ok() { Ok(()) } else { Err(bad()) }
}
