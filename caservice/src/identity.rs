//! Who is calling: the single URI SAN of the client certificate, a SPIFFE-style id.
//!
//! The CA service authorizes every call by this identity (see `server`): an endpoint may
//! only act as itself, the operator may ask for any endpoint's internal certificates.

use std::fmt;

use pkiplane_core::model::ObjectRef;

/// The trust domain of pkiplane's internal identities.
pub const TRUST_DOMAIN: &str = "pkiplane.dev";

/// A caller of the CA service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// `spiffe://pkiplane.dev/ns/<ns>/endpoint/<name>`: one EnrollmentEndpoint's pods.
    Endpoint(ObjectRef),
    /// `spiffe://pkiplane.dev/operator`.
    Operator,
    /// `spiffe://pkiplane.dev/webhook`.
    Webhook,
    /// `spiffe://pkiplane.dev/ca`: the CA service itself (its serving certificate).
    Ca,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{uri}` is not a pkiplane identity: {why}")]
pub struct IdentityError {
    pub uri: String,
    pub why: &'static str,
}

/// A DNS label as Kubernetes names and namespaces use them (RFC 1123, at most 253 for
/// names): lowercase alphanumerics, `-` and `.`, starting and ending alphanumeric.
fn valid_k8s_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

impl Identity {
    /// Parses a URI SAN. Anything but the exact forms above is refused (no query,
    /// fragment, port, userinfo, percent-encoding or trailing slash).
    pub fn parse(uri: &str) -> Result<Self, IdentityError> {
        let err = |why| IdentityError { uri: uri.to_owned(), why };
        let rest = uri.strip_prefix("spiffe://").ok_or_else(|| err("the scheme must be spiffe"))?;
        let (domain, path) = rest.split_once('/').ok_or_else(|| err("there is no path"))?;
        if domain != TRUST_DOMAIN {
            return Err(err("the trust domain must be pkiplane.dev"));
        }
        if path.contains(['?', '#', '%']) {
            return Err(err("query, fragment and percent-encoding are not allowed"));
        }
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["operator"] => Ok(Identity::Operator),
            ["webhook"] => Ok(Identity::Webhook),
            ["ca"] => Ok(Identity::Ca),
            ["ns", ns, "endpoint", name] => {
                if valid_k8s_name(ns) && valid_k8s_name(name) {
                    Ok(Identity::Endpoint(ObjectRef::new(*ns, *name)))
                } else {
                    Err(err("namespace and name must be Kubernetes object names"))
                }
            }
            _ => Err(err("expected /operator, /webhook, /ca or /ns/<ns>/endpoint/<name>")),
        }
    }

    /// The URI form.
    pub fn uri(&self) -> String {
        match self {
            Identity::Endpoint(e) => format!("spiffe://{TRUST_DOMAIN}/ns/{}/endpoint/{}", e.namespace, e.name),
            Identity::Operator => format!("spiffe://{TRUST_DOMAIN}/operator"),
            Identity::Webhook => format!("spiffe://{TRUST_DOMAIN}/webhook"),
            Identity::Ca => format!("spiffe://{TRUST_DOMAIN}/ca"),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// The identity of a certificate (DER): its only URI SAN, parsed.
pub fn from_certificate(der: &[u8]) -> Result<Identity, IdentityError> {
    use der::Decode;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let none = |why| IdentityError { uri: String::new(), why };
    let cert = x509_cert::Certificate::from_der(der).map_err(|_| none("the client certificate does not parse"))?;
    let (_, san) = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|_| none("the subjectAltName does not parse"))?
        .ok_or_else(|| none("the client certificate has no subjectAltName"))?;
    let uris: Vec<String> = san
        .0
        .iter()
        .filter_map(|g| match g {
            GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [one] => Identity::parse(one),
        [] => Err(none("the client certificate has no URI SAN")),
        _ => Err(none("the client certificate has more than one URI SAN")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_forms() {
        assert_eq!(
            Identity::parse("spiffe://pkiplane.dev/ns/pki/endpoint/acme").unwrap(),
            Identity::Endpoint(ObjectRef::new("pki", "acme"))
        );
        assert_eq!(Identity::parse("spiffe://pkiplane.dev/operator").unwrap(), Identity::Operator);
        assert_eq!(Identity::parse("spiffe://pkiplane.dev/webhook").unwrap(), Identity::Webhook);
        assert_eq!(Identity::parse("spiffe://pkiplane.dev/ca").unwrap(), Identity::Ca);
        for id in [Identity::Operator, Identity::Endpoint(ObjectRef::new("a-1", "b.c"))] {
            assert_eq!(Identity::parse(&id.uri()).unwrap(), id);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "https://pkiplane.dev/operator",
            "spiffe://example.org/operator",
            "spiffe://pkiplane.dev/operator/",
            "spiffe://pkiplane.dev/ns/pki/endpoint/acme/x",
            "spiffe://pkiplane.dev/ns/pki/endpoint/",
            "spiffe://pkiplane.dev/ns/PKI/endpoint/acme",
            "spiffe://pkiplane.dev/ns/pki/endpoint/ac%6de",
            "spiffe://pkiplane.dev/ns/pki/endpoint/acme?x=1",
            "spiffe://pkiplane.dev/ns/../endpoint/acme",
            "spiffe://pkiplane.dev",
            "",
        ] {
            assert!(Identity::parse(bad).is_err(), "{bad}");
        }
    }
}
