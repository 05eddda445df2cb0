//! CRLs (RFC 5280 section 5), built from the inventory.
//!
//! ```text
//! TBSCertList  ::=  SEQUENCE  {
//!      version                 Version OPTIONAL, -- v2
//!      signature               AlgorithmIdentifier,
//!      issuer                  Name,
//!      thisUpdate              Time,
//!      nextUpdate              Time OPTIONAL,
//!      revokedCertificates     SEQUENCE OF SEQUENCE  {
//!           userCertificate         CertificateSerialNumber,
//!           revocationDate          Time,
//!           crlEntryExtensions      Extensions OPTIONAL } OPTIONAL,
//!      crlExtensions           [0]  EXPLICIT Extensions OPTIONAL }
//! ```

use std::time::SystemTime;

use const_oid::db::rfc5912::{ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS};
use der::asn1::{AnyRef, BitString, OctetString, Uint};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{CrlNumber, CrlReason};
use x509_cert::name::RdnSequence;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::inventory::{RevocationReason, RevokedEntry};
use crate::issuer::{CaKey, Issuer};
use crate::keys::CaSigner;
use crate::x509::cert::{EncodeError, Signed, x509_time};
use crate::x509::extensions::authority_key_identifier;

#[derive(Sequence)]
struct TbsCertList {
    version: u8,
    signature: AlgorithmIdentifierOwned,
    issuer: RdnSequence,
    this_update: Time,
    next_update: Time,
    #[asn1(optional = "true")]
    revoked: Option<Vec<RevokedCert>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct RevokedCert {
    serial: SerialNumber,
    revocation_date: Time,
    #[asn1(optional = "true")]
    extensions: Option<Vec<Extension>>,
}

pub(crate) fn crl_reason(r: RevocationReason) -> CrlReason {
    match r {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    }
}

/// Builds and signs a v2 CRL.
pub fn build_crl(
    issuer: &Issuer,
    entries: &[RevokedEntry],
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, EncodeError> {
    build_crl_with(issuer.signer(), issuer.subject(), &issuer.key_id, entries, number, this_update, next_update)
}

/// Builds a v2 CRL signed by one key of an Issuer, current or retired (see
/// [`crate::issuer::retired`]).
pub fn build_key_crl(
    key: &CaKey,
    entries: &[RevokedEntry],
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, EncodeError> {
    build_crl_with(key.signer(), &key.cert().subject, key.key_id(), entries, number, this_update, next_update)
}

fn build_crl_with(
    signer: &CaSigner,
    subject: &RdnSequence,
    key_id: &[u8],
    entries: &[RevokedEntry],
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, EncodeError> {
    let algorithm = signer.signature_algorithm().algorithm_identifier();
    let mut revoked = Vec::with_capacity(entries.len());
    for e in entries {
        let serial_bytes =
            hex::decode(&e.serial).map_err(|_| der::Error::from(der::ErrorKind::Value { tag: der::Tag::Integer }))?;
        // RFC 5280 section 5.3.1: omit reasonCode rather than use unspecified.
        let extensions = if e.reason == RevocationReason::Unspecified {
            None
        } else {
            Some(vec![Extension {
                extn_id: ID_CE_CRL_REASONS,
                critical: false,
                extn_value: OctetString::new(crl_reason(e.reason).to_der()?)?,
            }])
        };
        revoked.push(RevokedCert {
            serial: SerialNumber::new(&serial_bytes)?,
            revocation_date: x509_time(e.revoked_at)?,
            extensions,
        });
    }
    let extensions = vec![
        authority_key_identifier(key_id)?,
        Extension {
            extn_id: ID_CE_CRL_NUMBER,
            critical: false,
            extn_value: OctetString::new(CrlNumber(Uint::new(&number.to_be_bytes())?).to_der()?)?,
        },
    ];
    let tbs = TbsCertList {
        version: 1,
        signature: algorithm.clone(),
        issuer: subject.clone(),
        this_update: x509_time(this_update)?,
        next_update: x509_time(next_update)?,
        revoked: (!revoked.is_empty()).then_some(revoked),
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der()?;
    let signature = signer.sign(&tbs_der)?;
    let signed = Signed { tbs: AnyRef::from_der(&tbs_der)?, algorithm, signature: BitString::from_bytes(&signature)? };
    Ok(signed.to_der()?)
}
