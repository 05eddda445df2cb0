//! Resources -> the core's domain types, with every problem reported at once.
//!
//! The conversions check what the CRD schema and its CEL rules cannot: durations and
//! their relations, regular expressions, CIDRs, URLs, subject DNs, names of extensions
//! and weak settings. Each problem becomes a [`FieldError`] naming the field path (as in
//! `spec.validity.duration`), so the admission webhook, the operator's conditions and
//! `pkiplane serve` can all report them the same way.

mod chain;
mod endpoint;
pub mod endpoint_acme;
pub mod endpoint_cmp;
pub mod endpoint_est;
mod endpoint_head;
pub mod endpoint_scep;
mod extensions;
mod issuer;
mod profile;
mod subject;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use kube::core::ObjectMeta;
use pkiplane_core::ObjectRef;

pub use chain::{ChainError, ChainLink, issuer_chain};
pub use endpoint::check_endpoint;
pub use endpoint_acme::acme_settings;
pub use endpoint_cmp::cmp_settings;
pub use endpoint_est::{est_settings, loaded_issuer_chain, published_issuer_chain};
pub use endpoint_head::EndpointHead;
pub use endpoint_scep::{scep_settings, shared_profile_warnings};
pub use issuer::{
    DEFAULT_CRL_VALIDITY, DEFAULT_INTERMEDIATE_VALIDITY, DEFAULT_ROOT_VALIDITY, check_issuer, issuer_from_resource,
};
pub use profile::{DEFAULT_RENEWAL_FRACTION, profile_from_resource};

use crate::manifests::DEFAULT_NAMESPACE;

pub use pkiplane_core::settings::FieldError;

/// Collects errors while a conversion carries on.
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    /// The value, or `None` after recording the error at `path`.
    pub(crate) fn check<T>(&mut self, path: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.push(path, e)).ok()
    }

    /// The value when no error was recorded.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            None if self.0.is_empty() => Err(vec![FieldError::new("spec", "could not be converted")]),
            _ => Err(self.0),
        }
    }
}

/// The object's identity; `metadata.name` is required, the namespace defaults.
pub(crate) fn object_ref(meta: &ObjectMeta, errors: &mut Errors) -> ObjectRef {
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        errors.push("metadata.name", "is required");
    }
    ObjectRef::new(meta.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.into()), name)
}

/// A reference to an object in `namespace` by bare name.
pub(crate) fn local_ref(namespace: &str, name: &str, path: &str, errors: &mut Errors) -> ObjectRef {
    if let Err(e) = check_object_name(name) {
        errors.push(path, e);
    }
    ObjectRef::new(namespace, name)
}

/// A Kubernetes object name (RFC 1123 subdomain).
pub(crate) fn check_object_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is required".into());
    }
    let ok = name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok { Ok(()) } else { Err(format!("`{name}` is not a valid object name (lowercase RFC 1123 subdomain)")) }
}

/// A duration such as `47d`; zero is refused.
pub(crate) fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = pkiplane_core::duration::parse_duration(s)?;
    if d.is_zero() { Err(format!("`{s}` is zero; a positive duration is needed")) } else { Ok(d) }
}

/// An `http://` or `https://` URL with a host.
pub(crate) fn http_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("`{s}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` is not a valid URL (it needs a host and no spaces)"));
    }
    Ok(())
}

/// A DNS name or suffix: labels of letters, digits and hyphens, no wildcard.
pub(crate) fn dns_name(s: &str) -> Result<String, String> {
    let lower = s.trim_end_matches('.').to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower.len() <= 253
        && lower.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok { Ok(lower) } else { Err(format!("`{s}` is not a valid DNS name")) }
}

/// A CIDR such as `10.0.0.0/8`, or a bare address meaning just itself, as the API
/// accepts them wherever it takes address ranges.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    cidr(s, true)
}

/// A CIDR such as `10.0.0.0/8`; with `bare_ok`, a bare address means just itself.
pub(crate) fn cidr(s: &str, bare_ok: bool) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!("`{s}` has host bits set; did you mean {}?", net.trunc()));
        }
        return Ok(net);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) if bare_ok => Ok(IpNet::from(ip)),
        Ok(ip) => Err(format!("`{s}` is an address, not a range; write {}", IpNet::from(ip))),
        Err(_) => Err(format!("`{s}` is not a CIDR such as 10.0.0.0/8 or fd00::/8")),
    }
}

/// The name serde gives an enum value (`ECDSA`, `P-256`, `http-01`).
pub(crate) fn api_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from("value"),
    }
}

/// Records an error for every value that appears twice in `items`.
pub(crate) fn no_duplicates<T: PartialEq>(items: &[T], path: &str, show: impl Fn(&T) -> String, errors: &mut Errors) {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            errors.push(format!("{path}[{i}]"), format!("{} is listed twice", show(item)));
        }
    }
}

#[cfg(test)]
mod tests_issuer;
#[cfg(test)]
mod tests_profile;
