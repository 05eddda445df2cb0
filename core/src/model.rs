//! Small shared vocabulary: object references, protocols and requesters.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A namespaced reference to a pkiplane object (`namespace/name`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl FromStr for ObjectRef {
    type Err = String;
    /// Parses `namespace/name`, or a bare `name` in the `default` namespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok(Self::new(ns, name)),
            None if !s.is_empty() => Ok(Self::new("default", s)),
            _ => Err(format!("`{s}` is not a reference of the form namespace/name")),
        }
    }
}

/// The enrollment protocol (or tool) that carried a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Acme,
    Est,
    Scep,
    Cmp,
    /// An operator's own tooling (`pkiplane issue`), outside any enrollment endpoint.
    Local,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [Protocol::Acme, Protocol::Est, Protocol::Scep, Protocol::Cmp, Protocol::Local];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Acme => "ACME",
            Protocol::Est => "EST",
            Protocol::Scep => "SCEP",
            Protocol::Cmp => "CMP",
            Protocol::Local => "LOCAL",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown protocol `{s}` (expected ACME, EST, SCEP, CMP or LOCAL)"))
    }
}

/// Who asks for a certificate, as established by the protocol that carried the request.
///
/// `claims` are facts the protocol's authentication proved (for example the serial number
/// of an EST client's IDevID, or the identifiers an ACME account validated); profiles can
/// require certificate contents to match them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub protocol: Protocol,
    pub endpoint: Option<ObjectRef>,
    /// The authenticated identity, e.g. an ACME account URL, an EST client certificate's
    /// subject, a SCEP challenge id or a CMP senderKID.
    pub identity: String,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

impl Requester {
    pub fn new(protocol: Protocol, identity: impl Into<String>) -> Self {
        Self { protocol, endpoint: None, identity: identity.into(), claims: BTreeMap::new() }
    }

    pub fn at_endpoint(mut self, endpoint: ObjectRef) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    pub fn with_claim(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.claims.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ref_parses_and_defaults_namespace() {
        assert_eq!("pki/root".parse::<ObjectRef>().unwrap(), ObjectRef::new("pki", "root"));
        assert_eq!("root".parse::<ObjectRef>().unwrap(), ObjectRef::new("default", "root"));
        assert!("a/b/c".parse::<ObjectRef>().is_err());
        assert!("/x".parse::<ObjectRef>().is_err());
    }

    #[test]
    fn protocol_round_trips() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().to_lowercase().parse::<Protocol>().unwrap(), p);
        }
        assert!("smtp".parse::<Protocol>().is_err());
    }
}

/// What the TLS layer learned about the client, handed to protocol handlers as a request
/// extension: the certificate chain the client presented (leaf first, DER; not yet
/// validated: each protocol validates against its own trust anchors) and the RFC 9266
/// `tls-exporter` channel binding of the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPeer {
    pub chain_der: Vec<Vec<u8>>,
    pub channel_binding: Option<Vec<u8>>,
}
