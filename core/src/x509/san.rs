//! subjectAltName values (RFC 5280 section 4.2.1.6).

use std::fmt;
use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use x509_cert::ext::pkix::name::GeneralName;

use crate::profile::SanKind;

/// A SAN value of a kind pkiplane issues.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
    Uri(String),
    Email(String),
}

impl San {
    pub fn kind(&self) -> SanKind {
        match self {
            San::Dns(_) => SanKind::Dns,
            San::Ip(_) => SanKind::Ip,
            San::Uri(_) => SanKind::Uri,
            San::Email(_) => SanKind::Email,
        }
    }

    /// The value without its kind prefix.
    pub fn value(&self) -> String {
        match self {
            San::Dns(v) | San::Uri(v) | San::Email(v) => v.clone(),
            San::Ip(ip) => ip.to_string(),
        }
    }

    /// Reads a GeneralName; other name forms (otherName, directoryName, ...) are
    /// reported by their form so policy can refuse them by name.
    pub fn from_general_name(gn: &GeneralName) -> Result<San, String> {
        match gn {
            GeneralName::DnsName(s) => Ok(San::Dns(s.to_string())),
            GeneralName::UniformResourceIdentifier(s) => Ok(San::Uri(s.to_string())),
            GeneralName::Rfc822Name(s) => Ok(San::Email(s.to_string())),
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => {
                    let b: [u8; 4] = o.as_bytes().try_into().map_err(|_| "bad IPv4")?;
                    Ok(San::Ip(IpAddr::from(b)))
                }
                16 => {
                    let b: [u8; 16] = o.as_bytes().try_into().map_err(|_| "bad IPv6")?;
                    Ok(San::Ip(IpAddr::from(b)))
                }
                n => Err(format!("an IP address SAN of {n} bytes")),
            },
            GeneralName::OtherName(o) => Err(format!("an otherName SAN ({})", o.type_id)),
            GeneralName::DirectoryName(_) => Err("a directoryName SAN".into()),
            GeneralName::EdiPartyName(_) => Err("an ediPartyName SAN".into()),
            GeneralName::RegisteredId(oid) => Err(format!("a registeredID SAN ({oid})")),
        }
    }

    pub fn to_general_name(&self) -> der::Result<GeneralName> {
        Ok(match self {
            San::Dns(v) => GeneralName::DnsName(Ia5String::new(v)?),
            San::Uri(v) => GeneralName::UniformResourceIdentifier(Ia5String::new(v)?),
            San::Email(v) => GeneralName::Rfc822Name(Ia5String::new(v)?),
            San::Ip(IpAddr::V4(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets().to_vec())?),
            San::Ip(IpAddr::V6(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets().to_vec())?),
        })
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind().as_str(), self.value())
    }
}
