//! The certificate extensions a CA writes (RFC 5280 section 4.2), encoded with the
//! `x509-cert` types.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP};
use const_oid::db::rfc5912::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE,
    ID_CE_KEY_USAGE, ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_CLIENT_AUTH,
    ID_KP_CODE_SIGNING, ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
    ID_PE_AUTHORITY_INFO_ACCESS,
};
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints,
    ExtendedKeyUsage, KeyUsage, KeyUsages, NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};

use super::San;
use crate::issuer::NameConstraintsConfig;

/// id-kp-cmcRA (RFC 6402 section 2.10): a CMC/CMP registration authority.
pub const ID_KP_CMC_RA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");

/// KeyUsage bits (RFC 5280 section 4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyUsageBit {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
}

impl KeyUsageBit {
    pub const ALL: [KeyUsageBit; 9] = [
        KeyUsageBit::DigitalSignature,
        KeyUsageBit::NonRepudiation,
        KeyUsageBit::KeyEncipherment,
        KeyUsageBit::DataEncipherment,
        KeyUsageBit::KeyAgreement,
        KeyUsageBit::KeyCertSign,
        KeyUsageBit::CrlSign,
        KeyUsageBit::EncipherOnly,
        KeyUsageBit::DecipherOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyUsageBit::DigitalSignature => "digitalSignature",
            KeyUsageBit::NonRepudiation => "nonRepudiation",
            KeyUsageBit::KeyEncipherment => "keyEncipherment",
            KeyUsageBit::DataEncipherment => "dataEncipherment",
            KeyUsageBit::KeyAgreement => "keyAgreement",
            KeyUsageBit::KeyCertSign => "keyCertSign",
            KeyUsageBit::CrlSign => "cRLSign",
            KeyUsageBit::EncipherOnly => "encipherOnly",
            KeyUsageBit::DecipherOnly => "decipherOnly",
        }
    }

    fn flag(self) -> KeyUsages {
        match self {
            KeyUsageBit::DigitalSignature => KeyUsages::DigitalSignature,
            KeyUsageBit::NonRepudiation => KeyUsages::NonRepudiation,
            KeyUsageBit::KeyEncipherment => KeyUsages::KeyEncipherment,
            KeyUsageBit::DataEncipherment => KeyUsages::DataEncipherment,
            KeyUsageBit::KeyAgreement => KeyUsages::KeyAgreement,
            KeyUsageBit::KeyCertSign => KeyUsages::KeyCertSign,
            KeyUsageBit::CrlSign => KeyUsages::CRLSign,
            KeyUsageBit::EncipherOnly => KeyUsages::EncipherOnly,
            KeyUsageBit::DecipherOnly => KeyUsages::DecipherOnly,
        }
    }
}

impl fmt::Display for KeyUsageBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyUsageBit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyUsageBit::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            format!("unknown key usage `{s}` (expected one of {})", KeyUsageBit::ALL.map(|k| k.name()).join(", "))
        })
    }
}

const EKU_NAMES: [(&str, ObjectIdentifier); 7] = [
    ("serverAuth", ID_KP_SERVER_AUTH),
    ("clientAuth", ID_KP_CLIENT_AUTH),
    ("codeSigning", ID_KP_CODE_SIGNING),
    ("emailProtection", ID_KP_EMAIL_PROTECTION),
    ("timeStamping", ID_KP_TIME_STAMPING),
    ("ocspSigning", ID_KP_OCSP_SIGNING),
    ("cmcRA", ID_KP_CMC_RA),
];

/// An extended key usage by name (`serverAuth`, ...) or dotted OID.
pub fn eku_from_name(s: &str) -> Option<ObjectIdentifier> {
    EKU_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, o)| *o).or_else(|| ObjectIdentifier::new(s).ok())
}

/// The name of an extended key usage, or its dotted OID.
pub fn eku_name(oid: &ObjectIdentifier) -> String {
    EKU_NAMES.iter().find(|(_, o)| o == oid).map(|(n, _)| n.to_string()).unwrap_or_else(|| oid.to_string())
}

/// Well-known extension names, for messages and `--help` output.
pub fn extension_name(oid: &ObjectIdentifier) -> String {
    let known = [
        (ID_CE_SUBJECT_ALT_NAME, "subjectAltName"),
        (ID_CE_KEY_USAGE, "keyUsage"),
        (ID_CE_EXT_KEY_USAGE, "extendedKeyUsage"),
        (ID_CE_BASIC_CONSTRAINTS, "basicConstraints"),
        (ID_CE_SUBJECT_KEY_IDENTIFIER, "subjectKeyIdentifier"),
        (ID_CE_AUTHORITY_KEY_IDENTIFIER, "authorityKeyIdentifier"),
        (ID_CE_CRL_DISTRIBUTION_POINTS, "cRLDistributionPoints"),
        (ID_PE_AUTHORITY_INFO_ACCESS, "authorityInfoAccess"),
        (ID_CE_NAME_CONSTRAINTS, "nameConstraints"),
    ];
    known.iter().find(|(o, _)| o == oid).map(|(_, n)| n.to_string()).unwrap_or_else(|| oid.to_string())
}

fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> der::Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// basicConstraints, critical (RFC 5280 section 4.2.1.9).
pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> der::Result<Extension> {
    ext(ID_CE_BASIC_CONSTRAINTS, true, &BasicConstraints { ca, path_len_constraint: if ca { path_len } else { None } })
}

/// keyUsage, critical.
pub fn key_usage(bits: &[KeyUsageBit]) -> der::Result<Extension> {
    let mut set = der::flagset::FlagSet::<KeyUsages>::default();
    for b in bits {
        set |= b.flag();
    }
    ext(ID_CE_KEY_USAGE, true, &KeyUsage(set))
}

pub fn extended_key_usage(oids: &[ObjectIdentifier]) -> der::Result<Extension> {
    ext(ID_CE_EXT_KEY_USAGE, false, &ExtendedKeyUsage(oids.to_vec()))
}

/// subjectAltName; critical when the subject is empty (RFC 5280 section 4.2.1.6).
pub fn subject_alt_name(sans: &[San], subject_empty: bool) -> der::Result<Extension> {
    let names = sans.iter().map(San::to_general_name).collect::<der::Result<Vec<_>>>()?;
    ext(ID_CE_SUBJECT_ALT_NAME, subject_empty, &SubjectAltName(names))
}

/// A key identifier per RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey bits.
pub fn key_identifier(public_key_bits: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, public_key_bits).as_ref()[..20].to_vec()
}

pub fn subject_key_identifier(id: &[u8]) -> der::Result<Extension> {
    ext(ID_CE_SUBJECT_KEY_IDENTIFIER, false, &SubjectKeyIdentifier(OctetString::new(id.to_vec())?))
}

pub fn authority_key_identifier(id: &[u8]) -> der::Result<Extension> {
    ext(
        ID_CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(id.to_vec())?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )
}

pub fn crl_distribution_points(urls: &[String]) -> der::Result<Extension> {
    let points = urls
        .iter()
        .map(|u| {
            Ok(DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
                ])),
                reasons: None,
                crl_issuer: None,
            })
        })
        .collect::<der::Result<Vec<_>>>()?;
    ext(ID_CE_CRL_DISTRIBUTION_POINTS, false, &CrlDistributionPoints(points))
}

pub fn authority_info_access(ca_issuers: &[String], ocsp: &[String]) -> der::Result<Extension> {
    let mut descs = Vec::new();
    for u in ocsp {
        descs.push(AccessDescription {
            access_method: ID_AD_OCSP,
            access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
        });
    }
    for u in ca_issuers {
        descs.push(AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
        });
    }
    ext(ID_PE_AUTHORITY_INFO_ACCESS, false, &AuthorityInfoAccessSyntax(descs))
}

/// nameConstraints, critical (RFC 5280 section 4.2.1.10).
pub fn name_constraints(nc: &NameConstraintsConfig) -> der::Result<Extension> {
    fn subtrees(
        dns: &[String],
        ip: &[ipnet::IpNet],
        email: &[String],
        uri: &[String],
    ) -> der::Result<Option<Vec<GeneralSubtree>>> {
        let mut out = Vec::new();
        let mut push = |base: GeneralName| out.push(GeneralSubtree { base, minimum: 0, maximum: None });
        for d in dns {
            push(GeneralName::DnsName(Ia5String::new(d)?));
        }
        for n in ip {
            let mut bytes = match n.addr() {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            match n.netmask() {
                std::net::IpAddr::V4(m) => bytes.extend_from_slice(&m.octets()),
                std::net::IpAddr::V6(m) => bytes.extend_from_slice(&m.octets()),
            }
            push(GeneralName::IpAddress(OctetString::new(bytes)?));
        }
        for e in email {
            push(GeneralName::Rfc822Name(Ia5String::new(e)?));
        }
        for u in uri {
            push(GeneralName::UniformResourceIdentifier(Ia5String::new(u)?));
        }
        Ok((!out.is_empty()).then_some(out))
    }
    let value = NameConstraints {
        permitted_subtrees: subtrees(&nc.permitted_dns, &nc.permitted_ip, &nc.permitted_email, &nc.permitted_uri)?,
        excluded_subtrees: subtrees(&nc.excluded_dns, &nc.excluded_ip, &nc.excluded_email, &nc.excluded_uri)?,
    };
    ext(ID_CE_NAME_CONSTRAINTS, true, &value)
}

pub use const_oid::db::rfc5912::ID_CE_SUBJECT_ALT_NAME as SUBJECT_ALT_NAME_OID;
