//! From a CRMF certificate template to the core's request (RFC 4211 section 5):
//!
//! ```text
//! CertTemplate ::= SEQUENCE {
//!     version      [0] Version               OPTIONAL,
//!     serialNumber [1] INTEGER               OPTIONAL,
//!     signingAlg   [2] AlgorithmIdentifier   OPTIONAL,
//!     issuer       [3] Name                  OPTIONAL,
//!     validity     [4] OptionalValidity      OPTIONAL,
//!     subject      [5] Name                  OPTIONAL,
//!     publicKey    [6] SubjectPublicKeyInfo  OPTIONAL,
//!     issuerUID    [7] UniqueIdentifier      OPTIONAL,
//!     subjectUID   [8] UniqueIdentifier      OPTIONAL,
//!     extensions   [9] Extensions            OPTIONAL }
//! ```
//!
//! The core's [`ParsedCsr`] is what policy judges; for a CRMF request it is assembled
//! here from the template's subject, public key, SANs and other requested extensions,
//! after the proof of possession was verified ([`crate::pop`]). The policy, not CMP,
//! then decides every field of the certificate. (The core could own this constructor
//! beside `ParsedCsr::from_der`; its fields are public, so it lives here for now.)

use std::time::SystemTime;

use der08::Decode as _;
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::San;
use pkiplane_core::x509::csr::ParsedCsr;
use pkiplane_core::x509::extensions::extension_name;
use pkiplane_core::x509::names::format_dn;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::RdnSequence;

use crate::convert::to_new;
use crate::error::CmpError;
use crate::protection::sig;
use crate::wire::template::CertTemplate;
use crate::wire::{FailBit, oids};

/// Refuses template fields the CA sets itself (RFC 9483 section 4.1.1: version,
/// serialNumber, signingAlg, issuerUID and subjectUID MUST be absent) and an issuer
/// other than the one that will sign (`wrongAuthority`).
pub fn check_fields(t: &CertTemplate, issuer_subject: &RdnSequence) -> Result<(), CmpError> {
    let set: Vec<&str> = [
        (t.version.is_some(), "version"),
        (t.serial_number.is_some(), "serialNumber"),
        (t.signature.is_some(), "signingAlg"),
        (t.issuer_unique_id.is_some(), "issuerUID"),
        (t.subject_unique_id.is_some(), "subjectUID"),
    ]
    .into_iter()
    .filter_map(|(present, name)| present.then_some(name))
    .collect();
    if !set.is_empty() {
        return Err(CmpError::bad_cert_template(format!(
            "the template sets {}, which the CA decides (RFC 9483 section 4.1.1)",
            set.join(", ")
        )));
    }
    if let Some(issuer) = &t.issuer {
        let wanted: RdnSequence = to_new("template issuer", issuer)?;
        if !wanted.is_empty() && &wanted != issuer_subject {
            return Err(CmpError::new(
                FailBit::WrongAuthority,
                format!(
                    "the template asks for issuer `{}`, but this profile is signed by `{}`",
                    format_dn(&wanted),
                    format_dn(issuer_subject)
                ),
            ));
        }
    }
    Ok(())
}

/// The validity the template asks for.
pub fn requested_validity(t: &CertTemplate) -> RequestedValidity {
    let v = t.validity.as_ref();
    RequestedValidity {
        not_before: v.and_then(|v| v.not_before).map(|t| t.to_system_time()),
        not_after: v.and_then(|v| v.not_after).map(|t| t.to_system_time()),
    }
}

/// The DER SubjectPublicKeyInfo of the template (absent: central key generation, which
/// pkiplane does not offer).
pub fn public_key_der(t: &CertTemplate) -> Result<Vec<u8>, CmpError> {
    let spki = t.subject_public_key_info.as_ref().ok_or_else(|| {
        CmpError::bad_cert_template("the template has no publicKey; central key generation is not offered")
    })?;
    Ok(der::Encode::to_der(spki)?)
}

/// Builds the core's request from a template whose POP was verified.
pub fn to_request(
    t: &CertTemplate,
    cert_req_der: &[u8],
    pop_alg: const_oid::ObjectIdentifier,
) -> Result<ParsedCsr, CmpError> {
    let subject: RdnSequence = match &t.subject {
        Some(n) => to_new("template subject", n)?,
        None => RdnSequence::default(),
    };
    let spki_der = public_key_der(t)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der)
        .map_err(|e| CmpError::bad_cert_template(format!("template publicKey: {e}")))?;
    let key = sig::key_info(&spki_der).map_err(|e| CmpError::bad_cert_template(e.to_string()))?;
    let mut csr = ParsedCsr::from_parts(cert_req_der.to_vec(), subject, spki, spki_der, key, pop_alg)
        .map_err(CmpError::bad_cert_template)?;
    for ext in t.extensions.iter().flatten() {
        let ext: Extension = to_new("template extension", ext)?;
        let name = extension_name(&ext.extn_id);
        let seen = if ext.extn_id.as_bytes() == oids::SUBJECT_ALT_NAME.as_bytes() {
            !csr.sans.is_empty() || !csr.unsupported_sans.is_empty()
        } else {
            csr.extensions.iter().any(|e| e.extn_id == ext.extn_id)
        };
        if seen {
            return Err(CmpError::bad_cert_template(format!("the template requests {name} twice")));
        }
        if ext.extn_id.as_bytes() == oids::SUBJECT_ALT_NAME.as_bytes() {
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|e| CmpError::bad_cert_template(format!("subjectAltName: {e}")))?;
            for gn in &san.0 {
                match San::from_general_name(gn) {
                    Ok(s) => csr.sans.push(s),
                    Err(what) => csr.unsupported_sans.push(what),
                }
            }
        } else {
            csr.extensions.push(ext);
        }
    }
    Ok(csr)
}

/// The const-oid 0.10 form of a der 0.7 OID.
pub fn new_oid(oid: &der::asn1::ObjectIdentifier) -> const_oid::ObjectIdentifier {
    const_oid::ObjectIdentifier::from_bytes(oid.as_bytes()).unwrap_or(const_oid::db::rfc5912::ID_EC_PUBLIC_KEY)
}

/// Seconds since the epoch of a time, for messages.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
