//! Identifiers: `dns` (RFC 8555 section 7.1.3, wildcards per section 7.1.3 and 8) and
//! `ip` (RFC 8738). Syntax is checked here; which names a profile allows is the policy
//! engine's decision at finalization.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::state::{Identifier, IdentifierType};
use pkiplane_core::x509::San;
use pkiplane_core::x509::csr::ParsedCsr;
use pkiplane_core::x509::names::SubjectAttribute;
use serde_json::Value;

use crate::problem::{AcmeError, ProblemType};

/// Most identifiers one order may name.
pub const MAX_IDENTIFIERS: usize = 100;

/// Checks a DNS name (lowercase letters, digits, hyphens, underscores; labels of 1-63,
/// at most 253 in all; not an IP address). Returns the name lowercased.
pub fn dns_name(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() || lower.len() > 253 {
        return Err(format!("`{name}` is not a DNS name of 1 to 253 characters"));
    }
    if lower.ends_with('.') {
        return Err(format!("`{name}` has a trailing dot"));
    }
    if lower.parse::<IpAddr>().is_ok() {
        return Err(format!("`{name}` is an IP address; use an identifier of type ip"));
    }
    for label in lower.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("`{name}` has an invalid label `{label}`"));
        }
    }
    if lower.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("`{name}` ends in a numeric label"));
    }
    Ok(lower)
}

/// Validates and normalises one identifier from a request.
pub fn parse_one(v: &Value) -> Result<Identifier, AcmeError> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    let value = v.get("value").and_then(Value::as_str).unwrap_or("");
    match kind {
        "dns" => {
            let (wild, base) = match value.strip_prefix("*.") {
                Some(base) => (true, base),
                None => (false, value),
            };
            let name = dns_name(base).map_err(|why| reject(kind, value, why))?;
            if name.contains('*') {
                return Err(reject(kind, value, "only a single leading `*.` wildcard label is allowed".into()));
            }
            Ok(Identifier::dns(if wild { format!("*.{name}") } else { name }))
        }
        "ip" => {
            let ip: IpAddr =
                value.parse().map_err(|_| reject(kind, value, format!("`{value}` is not an IPv4 or IPv6 address")))?;
            Ok(Identifier::ip(ip.to_string()))
        }
        other => Err(AcmeError::new(
            ProblemType::UnsupportedIdentifier,
            format!("identifier type `{other}` is not supported (dns, ip)"),
        )),
    }
}

fn reject(kind: &str, value: &str, why: String) -> AcmeError {
    let id =
        Identifier { kind: if kind == "ip" { IdentifierType::Ip } else { IdentifierType::Dns }, value: value.into() };
    AcmeError::new(ProblemType::RejectedIdentifier, format!("invalid identifier: {why}")).with_subproblem(
        ProblemType::Malformed,
        why,
        id,
    )
}

/// Parses a newOrder `identifiers` array: every identifier valid, duplicates merged,
/// result sorted. Every invalid identifier is reported as a subproblem.
pub fn parse_list(v: Option<&[Value]>) -> Result<Vec<Identifier>, AcmeError> {
    let list =
        v.filter(|l| !l.is_empty()).ok_or_else(|| AcmeError::malformed("`identifiers` must be a non-empty array"))?;
    if list.len() > MAX_IDENTIFIERS {
        return Err(AcmeError::new(
            ProblemType::RejectedIdentifier,
            format!("an order may name at most {MAX_IDENTIFIERS} identifiers"),
        ));
    }
    let mut out = BTreeSet::new();
    let mut bad: Option<AcmeError> = None;
    for item in list {
        match parse_one(item) {
            Ok(id) => {
                out.insert(id);
            }
            Err(e) if e.kind == ProblemType::RejectedIdentifier => {
                bad = Some(match bad {
                    None => e,
                    Some(mut acc) => {
                        acc.subproblems.extend(e.subproblems);
                        acc.detail = format!("{} invalid identifiers", acc.subproblems.len());
                        acc
                    }
                })
            }
            Err(e) => return Err(e),
        }
    }
    match bad {
        Some(e) => Err(e),
        None => Ok(out.into_iter().collect()),
    }
}

/// The authorization identifier of an order identifier: a wildcard is authorized on its
/// base domain (RFC 8555 section 7.1.3).
pub fn authz_identifier(id: &Identifier) -> (Identifier, bool) {
    match id.value.strip_prefix("*.") {
        Some(base) if id.kind == IdentifierType::Dns => (Identifier::dns(base), true),
        _ => (id.clone(), false),
    }
}

/// The identifiers a CSR asks for (RFC 8555 section 7.4): DNS and IP SANs, plus the
/// common name, which must be one of them. Any other SAN is an error.
pub fn from_csr(csr: &ParsedCsr) -> Result<BTreeSet<Identifier>, AcmeError> {
    let bad = |d: String| AcmeError::new(ProblemType::BadCsr, d);
    if let Some(what) = csr.unsupported_sans.first() {
        return Err(bad(format!("the CSR asks for {what}, which an ACME order cannot authorize")));
    }
    let mut ids = BTreeSet::new();
    for san in &csr.sans {
        match san {
            San::Dns(name) => ids.insert(Identifier::dns(name.to_ascii_lowercase())),
            San::Ip(ip) => ids.insert(Identifier::ip(ip.to_string())),
            other => return Err(bad(format!("the CSR asks for {other}, which an ACME order cannot authorize"))),
        };
    }
    for attr in csr.subject_attributes.iter().filter(|a| a.attribute == Some(SubjectAttribute::CommonName)) {
        let cn = attr.value.to_ascii_lowercase();
        let as_id = match cn.parse::<IpAddr>() {
            Ok(ip) => Identifier::ip(ip.to_string()),
            Err(_) => Identifier::dns(cn.clone()),
        };
        if !ids.contains(&as_id) {
            return Err(bad(format!("the CSR's common name `{}` is not among its subjectAltNames", attr.value)));
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list(v: Value) -> Result<Vec<Identifier>, AcmeError> {
        parse_list(v.as_array().map(Vec::as_slice))
    }

    #[test]
    fn validates_dns_and_ip_identifiers() {
        let ids = list(json!([
            {"type": "dns", "value": "WWW.Example.com"},
            {"type": "dns", "value": "*.example.com"},
            {"type": "ip", "value": "2001:db8:0:0::1"},
            {"type": "dns", "value": "www.example.com"},
            {"type": "dns", "value": "app.localhost"}
        ]))
        .unwrap();
        assert_eq!(
            ids,
            vec![
                Identifier::dns("*.example.com"),
                Identifier::dns("app.localhost"),
                Identifier::dns("www.example.com"),
                Identifier::ip("2001:db8::1"),
            ]
        );
        assert_eq!(authz_identifier(&ids[0]), (Identifier::dns("example.com"), true));
    }

    #[test]
    fn refuses_bad_identifiers_with_subproblems() {
        let e = list(json!([
            {"type": "dns", "value": "a..example"},
            {"type": "ip", "value": "300.1.1.1"},
            {"type": "dns", "value": "*.*.example.com"},
            {"type": "dns", "value": "ok.example"}
        ]))
        .unwrap_err();
        assert_eq!(e.kind, ProblemType::RejectedIdentifier);
        assert_eq!(e.subproblems.len(), 3);
        assert_eq!(e.subproblems[1].2, Identifier::ip("300.1.1.1"));
        for bad in ["-a.example", "a.example.", "192.0.2.1", "foo.123", "a b.example"] {
            assert!(parse_one(&json!({"type": "dns", "value": bad})).is_err(), "{bad}");
        }
        // Wildcards are for DNS names only.
        assert!(parse_one(&json!({"type": "ip", "value": "*.1.2.3"})).is_err());
        let e = parse_one(&json!({"type": "email", "value": "a@b"})).unwrap_err();
        assert_eq!(e.kind, ProblemType::UnsupportedIdentifier);
        assert_eq!(parse_list(Some(&[])).unwrap_err().kind, ProblemType::Malformed);
    }
}
