//! A profile's extensions: key usage, extended key usage, CRL and AIA URLs, and the
//! handling of extensions requested in CSRs.

use std::str::FromStr;

use const_oid::ObjectIdentifier;
use pkiplane_core::profile::CsrExtensionPolicy;
use pkiplane_core::x509::{KeyUsageBit, eku_from_name};

use super::{Errors, http_url, no_duplicates};
use crate::v1alpha1::{AuthorityInfoAccess, CsrExtensions, KeyUsageName};

const fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

/// Extensions a CSR may ask to have copied.
const COPYABLE: [(&str, ObjectIdentifier); 5] = [
    ("tlsFeature", oid("1.3.6.1.5.5.7.1.24")),
    ("certificatePolicies", oid("2.5.29.32")),
    ("subjectDirectoryAttributes", oid("2.5.29.9")),
    ("smimeCapabilities", oid("1.2.840.113549.1.9.15")),
    ("ocspNoCheck", oid("1.3.6.1.5.5.7.48.1.5")),
];

/// Extensions the profile (or the CA) decides; a CSR never supplies them.
const CONTROLLED: [(&str, ObjectIdentifier); 13] = [
    ("basicConstraints", oid("2.5.29.19")),
    ("keyUsage", oid("2.5.29.15")),
    ("extendedKeyUsage", oid("2.5.29.37")),
    ("subjectAltName", oid("2.5.29.17")),
    ("issuerAltName", oid("2.5.29.18")),
    ("nameConstraints", oid("2.5.29.30")),
    ("subjectKeyIdentifier", oid("2.5.29.14")),
    ("authorityKeyIdentifier", oid("2.5.29.35")),
    ("cRLDistributionPoints", oid("2.5.29.31")),
    ("freshestCRL", oid("2.5.29.46")),
    ("authorityInfoAccess", oid("1.3.6.1.5.5.7.1.1")),
    ("policyConstraints", oid("2.5.29.36")),
    ("inhibitAnyPolicy", oid("2.5.29.54")),
];

pub(super) fn key_usage(list: Option<&[KeyUsageName]>, e: &mut Errors) -> Vec<KeyUsageBit> {
    let Some(list) = list else { return vec![KeyUsageBit::DigitalSignature] };
    let path = "spec.keyUsage";
    no_duplicates(list, path, |k| k.as_str().to_string(), e);
    let bits: Vec<KeyUsageBit> = list
        .iter()
        .enumerate()
        .filter_map(|(i, k)| e.check(&format!("{path}[{i}]"), KeyUsageBit::from_str(k.as_str())))
        .collect();
    for (i, k) in list.iter().enumerate() {
        if matches!(k, KeyUsageName::EncipherOnly | KeyUsageName::DecipherOnly)
            && !list.contains(&KeyUsageName::KeyAgreement)
        {
            e.push(format!("{path}[{i}]"), format!("{} is meaningful only with keyAgreement", k.as_str()));
        }
    }
    let mut unique = Vec::new();
    for b in bits {
        if !unique.contains(&b) {
            unique.push(b);
        }
    }
    unique
}

pub(super) fn extended_key_usage(list: &[String], e: &mut Errors) -> Vec<ObjectIdentifier> {
    let path = "spec.extendedKeyUsage";
    let oids: Vec<ObjectIdentifier> = list
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let found = eku_from_name(name.trim()).ok_or_else(|| {
                format!(
                    "unknown extended key usage `{name}` (use serverAuth, clientAuth, codeSigning, emailProtection, \
                     timeStamping, ocspSigning, cmcRA or a dotted OID)"
                )
            });
            e.check(&format!("{path}[{i}]"), found)
        })
        .collect();
    no_duplicates(&oids, path, |o| format!("extended key usage {o}"), e);
    oids
}

pub(super) fn crl_distribution_points(urls: &[String], e: &mut Errors) -> Vec<String> {
    urls_at("spec.crlDistributionPoints", urls, e)
}

/// (caIssuers, ocsp) URLs.
pub(super) fn authority_info_access(aia: Option<&AuthorityInfoAccess>, e: &mut Errors) -> (Vec<String>, Vec<String>) {
    let Some(aia) = aia else { return (Vec::new(), Vec::new()) };
    (
        urls_at("spec.authorityInfoAccess.caIssuers", &aia.ca_issuers, e),
        urls_at("spec.authorityInfoAccess.ocsp", &aia.ocsp, e),
    )
}

fn urls_at(path: &str, urls: &[String], e: &mut Errors) -> Vec<String> {
    no_duplicates(urls, path, |u| format!("`{u}`"), e);
    urls.iter()
        .enumerate()
        .filter_map(|(i, u)| e.check(&format!("{path}[{i}]"), http_url(u)).map(|()| u.clone()))
        .collect()
}

pub(super) fn csr_extensions(c: Option<&CsrExtensions>, e: &mut Errors) -> CsrExtensionPolicy {
    let Some(c) = c else { return CsrExtensionPolicy::default() };
    let path = "spec.csrExtensions";
    let mut copy = Vec::new();
    for (i, name) in c.copy.iter().enumerate() {
        let at = format!("{path}.copy[{i}]");
        let Some(oid) = e.check(&at, extension_oid(name)) else { continue };
        if oid == CONTROLLED[0].1 {
            e.push(
                at,
                "copying basicConstraints would let a CSR ask for CA:TRUE; profiles issue end-entity \
                 certificates only (CA certificates come from Issuers)",
            );
        } else if let Some((controlled, _)) = CONTROLLED.iter().find(|(_, o)| *o == oid) {
            e.push(at, format!("{controlled} is decided by the profile and cannot be copied from a CSR"));
        } else if copy.contains(&oid) {
            e.push(at, format!("{name} is listed twice"));
        } else {
            copy.push(oid);
        }
    }
    let mut refuse = Vec::new();
    for (i, name) in c.refuse.iter().enumerate() {
        let at = format!("{path}.refuse[{i}]");
        let Some(oid) = e.check(&at, extension_oid(name)) else { continue };
        if copy.contains(&oid) {
            e.push(at, format!("{name} is also listed under copy"));
        } else if refuse.contains(&oid) {
            e.push(at, format!("{name} is listed twice"));
        } else {
            refuse.push(oid);
        }
    }
    CsrExtensionPolicy { copy, refuse }
}

/// An extension by name (case-insensitive) or dotted OID.
fn extension_oid(s: &str) -> Result<ObjectIdentifier, String> {
    let s = s.trim();
    if let Some((_, o)) = COPYABLE.iter().chain(CONTROLLED.iter()).find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Ok(*o);
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return ObjectIdentifier::new(s).map_err(|err| format!("`{s}` is not a valid OID: {err}"));
    }
    let names: Vec<&str> = COPYABLE.iter().chain(CONTROLLED.iter()).map(|(n, _)| *n).collect();
    Err(format!("unknown extension `{s}` (use a dotted OID or one of {})", names.join(", ")))
}
