//! `subjectAltNames`: which SANs a certificate may carry.

use super::{PolicyInput, Violation, glob_match};
use crate::issuer::constraints_violation;
use crate::profile::{SanKind, SanPolicy};
use crate::x509::San;

pub(super) fn decide(input: &PolicyInput<'_>, out: &mut Vec<Violation>, notes: &mut Vec<String>) -> Vec<San> {
    let policy = &input.profile.sans;
    for what in &input.csr.unsupported_sans {
        out.push(Violation::new(
            "subjectAltNames",
            format!("the CSR asks for {what}, a SAN form pkiplane does not issue"),
        ));
    }
    let mut sans: Vec<San> = Vec::new();
    for san in &input.csr.sans {
        let san = normalise(san);
        if sans.contains(&san) {
            notes.push(format!("duplicate SAN {san} listed once"));
        } else {
            sans.push(san);
        }
    }
    if sans.len() > policy.max_count {
        out.push(Violation::new(
            "subjectAltNames.maxCount",
            format!("the CSR asks for {} SANs, the profile allows at most {}", sans.len(), policy.max_count),
        ));
    }
    if policy.required && sans.is_empty() && input.csr.unsupported_sans.is_empty() {
        out.push(Violation::new("subjectAltNames.required", "the profile requires at least one SAN"));
    }
    for san in &sans {
        if let Err(v) = check_one(policy, san) {
            out.push(v);
        } else if let Some(why) = constraints_violation(input.issuer.name_constraints, san) {
            out.push(Violation::new("issuer.nameConstraints", why));
        }
    }
    sans
}

/// The count and per-name rules of `policy` for `names` alone (no CSR, no issuer).
pub(super) fn check_names(policy: &SanPolicy, names: &[San], out: &mut Vec<Violation>) {
    let names: Vec<San> = names.iter().map(normalise).collect();
    if names.len() > policy.max_count {
        out.push(Violation::new(
            "subjectAltNames.maxCount",
            format!("{} names are asked for, the profile allows at most {}", names.len(), policy.max_count),
        ));
    }
    for san in &names {
        if let Err(v) = check_one(policy, san) {
            out.push(v);
        }
    }
}

fn normalise(san: &San) -> San {
    match san {
        San::Dns(d) => San::Dns(d.trim_end_matches('.').to_ascii_lowercase()),
        San::Email(e) => match e.rsplit_once('@') {
            Some((local, domain)) => San::Email(format!("{local}@{}", domain.to_ascii_lowercase())),
            None => San::Email(e.clone()),
        },
        other => other.clone(),
    }
}

fn not_allowed(kind: SanKind, san: &San) -> Violation {
    let field = match kind {
        SanKind::Dns => "subjectAltNames.dns",
        SanKind::Ip => "subjectAltNames.ip",
        SanKind::Uri => "subjectAltNames.uri",
        SanKind::Email => "subjectAltNames.email",
    };
    Violation::new(field, format!("{san}: the profile allows no {} SANs", kind.as_str()))
}

fn check_one(policy: &SanPolicy, san: &San) -> Result<(), Violation> {
    match san {
        San::Dns(name) => {
            let rule = policy.dns.as_ref().ok_or_else(|| not_allowed(SanKind::Dns, san))?;
            let (wildcard, base) = match name.strip_prefix("*.") {
                Some(base) => (true, base),
                None => (false, name.as_str()),
            };
            if let Err(why) = valid_dns_name(base) {
                return Err(Violation::new("subjectAltNames.dns", format!("{san} is not a valid DNS name: {why}")));
            }
            if wildcard && !rule.allow_wildcards {
                return Err(Violation::new(
                    "subjectAltNames.dns.allowWildcards",
                    format!("{san}: the profile does not allow wildcard names"),
                ));
            }
            if !rule.suffixes.is_empty() && !rule.suffixes.iter().any(|s| dns_under(base, s)) {
                return Err(Violation::new(
                    "subjectAltNames.dns.suffixes",
                    format!("{san} is not under any allowed suffix ({})", rule.suffixes.join(", ")),
                ));
            }
            Ok(())
        }
        San::Ip(ip) => {
            let rule = policy.ip.as_ref().ok_or_else(|| not_allowed(SanKind::Ip, san))?;
            if !rule.cidrs.is_empty() && !rule.cidrs.iter().any(|n| n.contains(ip)) {
                let ranges: Vec<String> = rule.cidrs.iter().map(|n| n.to_string()).collect();
                return Err(Violation::new(
                    "subjectAltNames.ip.cidrs",
                    format!("{san} is outside the allowed ranges ({})", ranges.join(", ")),
                ));
            }
            Ok(())
        }
        San::Uri(uri) => {
            let rule = policy.uri.as_ref().ok_or_else(|| not_allowed(SanKind::Uri, san))?;
            if !uri.contains("://") && !uri.starts_with("urn:") {
                return Err(Violation::new("subjectAltNames.uri", format!("{san} is not an absolute URI")));
            }
            if !rule.patterns.is_empty() && !rule.patterns.iter().any(|p| glob_match(p, uri, Some('/'))) {
                return Err(Violation::new(
                    "subjectAltNames.uri.patterns",
                    format!("{san} matches none of the allowed patterns ({})", rule.patterns.join(", ")),
                ));
            }
            Ok(())
        }
        San::Email(addr) => {
            let rule = policy.email.as_ref().ok_or_else(|| not_allowed(SanKind::Email, san))?;
            let Some((local, domain)) = addr.rsplit_once('@') else {
                return Err(Violation::new("subjectAltNames.email", format!("{san} is not an e-mail address")));
            };
            if local.is_empty() || valid_dns_name(domain).is_err() {
                return Err(Violation::new("subjectAltNames.email", format!("{san} is not an e-mail address")));
            }
            if !rule.domains.is_empty() && !rule.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                return Err(Violation::new(
                    "subjectAltNames.email.domains",
                    format!("{san} is not in an allowed mail domain ({})", rule.domains.join(", ")),
                ));
            }
            Ok(())
        }
    }
}

/// `suffix` allows itself and every name below it; a leading dot allows only names below.
fn dns_under(name: &str, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches("*.").to_ascii_lowercase();
    match suffix.strip_prefix('.') {
        Some(s) => name.ends_with(&format!(".{s}")),
        None => name == suffix || name.ends_with(&format!(".{suffix}")),
    }
}

/// Preferred name syntax (RFC 1034 section 3.5, as relaxed by RFC 1123).
pub(crate) fn valid_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("length must be 1 to 253".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("label `{label}` must be 1 to 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("label `{label}` has characters other than letters, digits and hyphens"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with a hyphen"));
        }
    }
    if name.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err("the last label is all digits (an IP address belongs in an IP SAN)".into());
    }
    Ok(())
}
