//! Distinguished names: the attributes profiles talk about, and RFC 4514 rendering.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519;
use der::asn1::{Any, Ia5StringRef, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Encode, Tag, Tagged};
use serde::{Deserialize, Serialize};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};

/// PKCS#9 emailAddress (1.2.840.113549.1.9.1), still common in device subjects.
pub const EMAIL_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

/// Subject attributes a profile can have rules for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SubjectAttribute {
    #[serde(rename = "CN")]
    CommonName,
    #[serde(rename = "O")]
    Organization,
    #[serde(rename = "OU")]
    OrganizationalUnit,
    #[serde(rename = "C")]
    Country,
    #[serde(rename = "ST")]
    StateOrProvince,
    #[serde(rename = "L")]
    Locality,
    #[serde(rename = "serialNumber")]
    SerialNumber,
    #[serde(rename = "emailAddress")]
    EmailAddress,
    #[serde(rename = "UID")]
    UserId,
    #[serde(rename = "DC")]
    DomainComponent,
}

impl SubjectAttribute {
    pub const ALL: [SubjectAttribute; 10] = [
        SubjectAttribute::CommonName,
        SubjectAttribute::Organization,
        SubjectAttribute::OrganizationalUnit,
        SubjectAttribute::Country,
        SubjectAttribute::StateOrProvince,
        SubjectAttribute::Locality,
        SubjectAttribute::SerialNumber,
        SubjectAttribute::EmailAddress,
        SubjectAttribute::UserId,
        SubjectAttribute::DomainComponent,
    ];

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SubjectAttribute::CommonName => rfc4519::CN,
            SubjectAttribute::Organization => rfc4519::O,
            SubjectAttribute::OrganizationalUnit => rfc4519::OU,
            SubjectAttribute::Country => rfc4519::C,
            SubjectAttribute::StateOrProvince => rfc4519::ST,
            SubjectAttribute::Locality => rfc4519::L,
            SubjectAttribute::SerialNumber => rfc4519::SERIAL_NUMBER,
            SubjectAttribute::EmailAddress => EMAIL_ADDRESS,
            SubjectAttribute::UserId => rfc4519::UID,
            SubjectAttribute::DomainComponent => rfc4519::DC,
        }
    }

    pub fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.oid() == oid)
    }

    /// The short name used in RFC 4514 strings and in manifests.
    pub fn short_name(self) -> &'static str {
        match self {
            SubjectAttribute::CommonName => "CN",
            SubjectAttribute::Organization => "O",
            SubjectAttribute::OrganizationalUnit => "OU",
            SubjectAttribute::Country => "C",
            SubjectAttribute::StateOrProvince => "ST",
            SubjectAttribute::Locality => "L",
            SubjectAttribute::SerialNumber => "serialNumber",
            SubjectAttribute::EmailAddress => "emailAddress",
            SubjectAttribute::UserId => "UID",
            SubjectAttribute::DomainComponent => "DC",
        }
    }

    /// The ASN.1 string type the attribute is encoded with (RFC 5280 appendix A).
    fn encode_value(self, value: &str) -> der::Result<Any> {
        match self {
            SubjectAttribute::Country | SubjectAttribute::SerialNumber => {
                Any::encode_from(&PrintableStringRef::new(value)?)
            }
            SubjectAttribute::EmailAddress | SubjectAttribute::DomainComponent => {
                Any::encode_from(&Ia5StringRef::new(value)?)
            }
            _ => Any::encode_from(&Utf8StringRef::new(value)?),
        }
    }
}

impl fmt::Display for SubjectAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

impl FromStr for SubjectAttribute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let long = |a: SubjectAttribute| match a {
            SubjectAttribute::CommonName => "commonName",
            SubjectAttribute::Organization => "organizationName",
            SubjectAttribute::OrganizationalUnit => "organizationalUnitName",
            SubjectAttribute::Country => "countryName",
            SubjectAttribute::StateOrProvince => "stateOrProvinceName",
            SubjectAttribute::Locality => "localityName",
            SubjectAttribute::SerialNumber => "serialNumber",
            SubjectAttribute::EmailAddress => "emailAddress",
            SubjectAttribute::UserId => "userId",
            SubjectAttribute::DomainComponent => "domainComponent",
        };
        Self::ALL
            .into_iter()
            .find(|a| a.short_name().eq_ignore_ascii_case(s) || long(*a).eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown subject attribute `{s}` (expected CN, O, OU, C, ST, L, serialNumber, emailAddress, UID or DC)")
            })
    }
}

/// One attribute of a subject, decoded to text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttribute {
    pub oid: ObjectIdentifier,
    /// `Some` for attributes pkiplane knows.
    pub attribute: Option<SubjectAttribute>,
    pub value: String,
}

/// Decodes a name into its attributes, in order (multi-valued RDNs are flattened).
pub fn name_attributes(name: &RdnSequence) -> Result<Vec<NameAttribute>, String> {
    let mut out = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            out.push(NameAttribute {
                oid: atv.oid,
                attribute: SubjectAttribute::from_oid(atv.oid),
                value: attribute_value_text(&atv.value)
                    .ok_or_else(|| format!("subject attribute {} has a value that is not a string", atv.oid))?,
            });
        }
    }
    Ok(out)
}

/// The text of a DirectoryString-like attribute value.
pub fn attribute_value_text(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Builds a name with one attribute per RDN, in the given order.
pub fn build_name(attrs: &[(SubjectAttribute, String)]) -> Result<RdnSequence, String> {
    let mut rdns = Vec::with_capacity(attrs.len());
    for (attr, value) in attrs {
        let value =
            attr.encode_value(value).map_err(|e| format!("subject {attr} value `{value}` cannot be encoded: {e}"))?;
        let mut set = SetOfVec::new();
        set.insert(AttributeTypeAndValue { oid: attr.oid(), value }).map_err(|e| e.to_string())?;
        rdns.push(RelativeDistinguishedName::from(set));
    }
    Ok(RdnSequence::from(rdns))
}

/// Parses an RFC 4514 string such as `CN=Example Root CA,O=Example`.
pub fn parse_dn(s: &str) -> Result<RdnSequence, String> {
    if s.trim().is_empty() {
        return Ok(RdnSequence::default());
    }
    // Go through our attribute table so values get the right string types.
    let mut attrs = Vec::new();
    for part in split_unescaped(s, ',') {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("`{part}` in `{s}` is not ATTR=value"))?;
        let attr: SubjectAttribute = k.trim().parse()?;
        attrs.push((attr, unescape(v.trim())));
    }
    // RFC 4514 strings list the most specific RDN first; DER order is the reverse.
    attrs.reverse();
    build_name(&attrs)
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Renders a name in RFC 4514 form (most specific RDN first), with pkiplane's short names.
pub fn format_dn(name: &RdnSequence) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter() {
        let mut atvs = Vec::new();
        for atv in rdn.iter() {
            let key = SubjectAttribute::from_oid(atv.oid)
                .map(|a| a.short_name().to_string())
                .unwrap_or_else(|| atv.oid.to_string());
            let value = attribute_value_text(&atv.value)
                .unwrap_or_else(|| format!("#{}", hex::encode(atv.value.to_der().unwrap_or_default())));
            atvs.push(format!("{key}={}", escape(&value)));
        }
        parts.push(atvs.join("+"));
    }
    parts.reverse();
    parts.join(",")
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.chars().count() && c == ' ');
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || edge {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn dn_round_trips_through_der() {
        let name = parse_dn("CN=Device 42,OU=Line\\, 3,O=Example,C=DE").unwrap();
        let der = name.to_der().unwrap();
        let back = RdnSequence::from_der(&der).unwrap();
        assert_eq!(format_dn(&back), "CN=Device 42,OU=Line\\, 3,O=Example,C=DE");
        let attrs = name_attributes(&back).unwrap();
        assert_eq!(attrs[0].attribute, Some(SubjectAttribute::Country));
        assert_eq!(attrs[3].value, "Device 42");
    }

    #[test]
    fn country_must_be_printable() {
        assert!(parse_dn("C=D\u{e9}").is_err());
        assert!(parse_dn("CN=x,Foo=bar").is_err());
    }
}
