//! A profile's name rules: subject attributes and subjectAltNames.

use pkiplane_core::profile::{
    DnsRule, EmailRule, IpRule, Presence as CorePresence, SanKind, SanPolicy, SubjectPolicy, SubjectRule,
    UnlistedAttributes, UriRule, ValueSource,
};
use pkiplane_core::x509::names;

use super::{Errors, cidr, dns_name, no_duplicates};
use crate::v1alpha1::{OtherAttributes, Presence, SubjectAltNames, SubjectAttributeRule, SubjectRules, ValueFrom};

/// SAN count limit when the profile sets none.
pub const DEFAULT_MAX_SANS: usize = 100;

pub(super) fn san_policy(s: Option<&SubjectAltNames>, e: &mut Errors) -> SanPolicy {
    let Some(s) = s else {
        return SanPolicy { max_count: DEFAULT_MAX_SANS, ..SanPolicy::default() };
    };
    let path = "spec.subjectAltNames";
    if s.max_count < 1 {
        e.push(format!("{path}.maxCount"), "must be at least 1");
    }
    if s.required && s.dns.is_none() && s.ip.is_none() && s.uri.is_none() && s.email.is_none() {
        e.push(format!("{path}.required"), "SANs are required but no SAN type (dns, ip, uri, email) is allowed");
    }
    let dns = s.dns.as_ref().map(|d| {
        let at = format!("{path}.dns.suffixes");
        let suffixes: Vec<String> = d
            .suffixes
            .iter()
            .enumerate()
            .filter_map(|(i, suffix)| e.check(&format!("{at}[{i}]"), dns_suffix(suffix)))
            .collect();
        no_duplicates(&suffixes, &at, |s| format!("`{s}`"), e);
        DnsRule { suffixes, allow_wildcards: d.allow_wildcards }
    });
    let ip = s.ip.as_ref().map(|r| {
        let at = format!("{path}.ip.cidrs");
        let cidrs: Vec<_> =
            r.cidrs.iter().enumerate().filter_map(|(i, c)| e.check(&format!("{at}[{i}]"), cidr(c, true))).collect();
        no_duplicates(&cidrs, &at, |c| c.to_string(), e);
        IpRule { cidrs }
    });
    let uri = s.uri.as_ref().map(|r| {
        let at = format!("{path}.uri.patterns");
        for (i, p) in r.patterns.iter().enumerate() {
            e.check(&format!("{at}[{i}]"), uri_pattern(p));
        }
        no_duplicates(&r.patterns, &at, |p| format!("`{p}`"), e);
        UriRule { patterns: r.patterns.clone() }
    });
    let email = s.email.as_ref().map(|r| {
        let at = format!("{path}.email.domains");
        let domains: Vec<String> = r
            .domains
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let checked =
                    if d.contains('@') { Err(format!("`{d}` is an address; list its domain")) } else { dns_name(d) };
                e.check(&format!("{at}[{i}]"), checked)
            })
            .collect();
        no_duplicates(&domains, &at, |d| format!("`{d}`"), e);
        EmailRule { domains }
    });
    SanPolicy { max_count: usize::try_from(s.max_count).unwrap_or(0), required: s.required, dns, ip, uri, email }
}

/// `example.com` (itself and every name below) or `.example.com` (only names below);
/// wildcards are not suffixes.
fn dns_suffix(s: &str) -> Result<String, String> {
    if s.contains('*') {
        return Err(format!("`{s}`: list the suffix without `*` (allowWildcards governs wildcard names)"));
    }
    match s.strip_prefix('.') {
        Some(rest) => dns_name(rest).map(|d| format!(".{d}")),
        None => dns_name(s),
    }
}

/// `scheme:rest` (e.g. `spiffe://example.org/*`, `urn:uuid:*`) with `*` / `**`
/// wildcards and no whitespace.
fn uri_pattern(p: &str) -> Result<(), String> {
    let (scheme, rest) =
        p.split_once(':').ok_or_else(|| format!("`{p}` needs a scheme, e.g. spiffe://example.org/*"))?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{p}` is not a URI pattern such as spiffe://example.org/ns/*/sa/*"));
    }
    Ok(())
}

pub(super) fn subject_policy(s: Option<&SubjectRules>, sans: &SanPolicy, e: &mut Errors) -> SubjectPolicy {
    let Some(s) = s else { return SubjectPolicy::default() };
    let names: Vec<_> = s.attributes.iter().map(|a| a.name).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            e.push(format!("spec.subject.attributes[{i}].name"), format!("{n} has a rule already"));
        }
    }
    SubjectPolicy {
        rules: s
            .attributes
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| subject_rule(rule, &format!("spec.subject.attributes[{i}]"), sans, e))
            .collect(),
        unlisted: match s.other_attributes {
            OtherAttributes::Drop => UnlistedAttributes::Drop,
            OtherAttributes::Refuse => UnlistedAttributes::Refuse,
        },
    }
}

fn subject_rule(r: &SubjectAttributeRule, path: &str, sans: &SanPolicy, e: &mut Errors) -> Option<SubjectRule> {
    let attribute = r.name;
    let presence = match r.presence {
        Presence::Required => CorePresence::Required,
        Presence::Optional => CorePresence::Optional,
        Presence::Forbidden => CorePresence::Forbidden,
    };
    if r.value.is_some() && presence == CorePresence::Forbidden {
        e.push(format!("{path}.value"), "a Forbidden attribute cannot have a value");
    }
    if r.value.is_some() && r.from != ValueFrom::Csr {
        e.push(format!("{path}.from"), "value fixes the attribute; from applies only when there is no value");
    }
    match (r.from, &r.claim) {
        (ValueFrom::Claim, None) => e.push(format!("{path}.claim"), "from is Claim, so claim must name the claim"),
        (ValueFrom::Claim, Some(c)) if c.trim().is_empty() => e.push(format!("{path}.claim"), "is empty"),
        (from, Some(_)) if from != ValueFrom::Claim => {
            e.push(format!("{path}.claim"), "is only used when from is Claim")
        }
        _ => {}
    }
    let mut first_san = |kind: SanKind| -> SanKind {
        let allowed = match kind {
            SanKind::Dns => sans.dns.is_some(),
            SanKind::Ip => sans.ip.is_some(),
            SanKind::Uri => sans.uri.is_some(),
            SanKind::Email => sans.email.is_some(),
        };
        if !allowed {
            e.push(
                format!("{path}.from"),
                format!("needs {} SANs, which spec.subjectAltNames does not allow", kind.as_str()),
            );
        }
        kind
    };
    let source = match r.from {
        ValueFrom::Csr => ValueSource::Csr,
        ValueFrom::FirstDnsName => ValueSource::FirstSan(first_san(SanKind::Dns)),
        ValueFrom::FirstIpAddress => ValueSource::FirstSan(first_san(SanKind::Ip)),
        ValueFrom::FirstUri => ValueSource::FirstSan(first_san(SanKind::Uri)),
        ValueFrom::FirstEmail => ValueSource::FirstSan(first_san(SanKind::Email)),
        ValueFrom::Claim => ValueSource::Claim(r.claim.clone().unwrap_or_default().trim().to_string()),
    };
    let no_sans = sans.dns.is_none() && sans.ip.is_none() && sans.uri.is_none() && sans.email.is_none();
    if r.must_match_san && no_sans {
        e.push(format!("{path}.mustMatchSAN"), "no SAN type is allowed (spec.subjectAltNames), so nothing can match");
    }
    let pattern = r.pattern.as_deref().and_then(|p| {
        e.check(
            &format!("{path}.pattern"),
            // Anchored here, so alternations match the whole value too ("a|ab" on "ab").
            regex_lite::Regex::new(&format!("^(?:{p})$")).map_err(|err| format!("invalid regular expression: {err}")),
        )
    });
    if let Some(value) = &r.value {
        if let Some(re) = &pattern
            && !re.is_match(value)
        {
            e.push(format!("{path}.value"), format!("`{value}` does not match the rule's own pattern"));
        }
        if let Err(err) = names::build_name(&[(attribute, value.clone())]) {
            e.push(format!("{path}.value"), err);
        }
    }
    Some(SubjectRule { attribute, presence, value: r.value.clone(), source, must_match_san: r.must_match_san, pattern })
}
