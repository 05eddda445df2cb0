//! Encoding and signing certificates, and reading the facts a CA needs back out of them.
//!
//! ```text
//! Certificate  ::=  SEQUENCE  {
//!     tbsCertificate       TBSCertificate,
//!     signatureAlgorithm   AlgorithmIdentifier,
//!     signatureValue       BIT STRING  }
//! ```
//! (RFC 5280 section 4.1). `x509-cert` keeps its TBSCertificate fields private, so the CA
//! encodes its own TBSCertificate from the same component types.

use std::time::SystemTime;

use der::asn1::{AnyRef, BitString};
use der::{DateTime, Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, SubjectKeyIdentifier};
use x509_cert::name::RdnSequence;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::keys::{CaSigner, SignerError};

/// ```text
/// TBSCertificate  ::=  SEQUENCE  {
///     version         [0]  EXPLICIT Version DEFAULT v1,
///     serialNumber         CertificateSerialNumber,
///     signature            AlgorithmIdentifier,
///     issuer               Name,
///     validity             Validity,
///     subject              Name,
///     subjectPublicKeyInfo SubjectPublicKeyInfo,
///     extensions      [3]  EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: RdnSequence,
    validity: Validity,
    subject: RdnSequence,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// `Validity ::= SEQUENCE { notBefore Time, notAfter Time }`
#[derive(Sequence)]
struct Validity {
    not_before: Time,
    not_after: Time,
}

/// A signed structure: `SEQUENCE { tbs, signatureAlgorithm, signatureValue }`, with the
/// TBS carried as already-encoded DER so it is never re-encoded after signing.
#[derive(Sequence)]
pub struct Signed<'a> {
    pub tbs: AnyRef<'a>,
    pub algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
}

/// Everything that goes into a certificate.
pub struct CertificateFields<'a> {
    /// Positive serial, big-endian magnitude without sign padding.
    pub serial: &'a [u8],
    pub issuer: &'a RdnSequence,
    pub subject: &'a RdnSequence,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub spki: &'a SubjectPublicKeyInfoOwned,
    pub extensions: Vec<Extension>,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Sign(#[from] SignerError),
}

/// RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn x509_time(t: SystemTime) -> der::Result<Time> {
    // Certificates carry whole seconds.
    let secs = crate::inventory::unix_seconds::to_secs(t);
    let t = crate::inventory::unix_seconds::from_secs(secs);
    let dt = DateTime::from_system_time(t)?;
    Ok(if dt.year() >= 2050 {
        Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt))
    } else {
        Time::UtcTime(der::asn1::UtcTime::from_date_time(dt)?)
    })
}

/// Encodes a serial as a positive INTEGER.
pub fn serial_number(serial: &[u8]) -> der::Result<SerialNumber> {
    SerialNumber::new(serial)
}

/// Encodes the TBSCertificate, signs it and returns the certificate DER.
pub fn sign_certificate(fields: &CertificateFields<'_>, signer: &CaSigner) -> Result<Vec<u8>, EncodeError> {
    let algorithm = signer.signature_algorithm().algorithm_identifier();
    let tbs = TbsCertificate {
        version: 2,
        serial_number: serial_number(fields.serial)?,
        signature: algorithm.clone(),
        issuer: fields.issuer.clone(),
        validity: Validity { not_before: x509_time(fields.not_before)?, not_after: x509_time(fields.not_after)? },
        subject: fields.subject.clone(),
        subject_public_key_info: fields.spki.clone(),
        extensions: (!fields.extensions.is_empty()).then(|| fields.extensions.clone()),
    };
    let tbs_der = tbs.to_der()?;
    let signature = signer.sign(&tbs_der)?;
    let signed = Signed { tbs: AnyRef::from_der(&tbs_der)?, algorithm, signature: BitString::from_bytes(&signature)? };
    Ok(signed.to_der()?)
}

/// The facts of a certificate the CA relies on.
#[derive(Clone, Debug)]
pub struct CertInfo {
    pub der: Vec<u8>,
    pub serial_hex: String,
    pub subject: RdnSequence,
    pub issuer: RdnSequence,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub spki: SubjectPublicKeyInfoOwned,
    pub spki_der: Vec<u8>,
    pub basic_constraints: Option<BasicConstraints>,
    pub subject_key_id: Option<Vec<u8>>,
    pub extensions: Vec<Extension>,
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> Result<Self, der::Error> {
        Self::from_der_as::<x509_cert::certificate::Rfc5280>(der)
    }

    /// [`CertInfo::from_der`] with the certificate checked against profile `P` (e.g. one
    /// that accepts the over-long serial numbers some clients' self-signed certificates have).
    pub fn from_der_as<P: x509_cert::certificate::Profile>(der: &[u8]) -> Result<Self, der::Error> {
        let cert = x509_cert::certificate::CertificateInner::<P>::from_der(der)?;
        let tbs = cert.tbs_certificate();
        let extensions = tbs.extensions().cloned().unwrap_or_default();
        let basic_constraints = tbs.get_extension::<BasicConstraints>()?.map(|(_, bc)| bc);
        let subject_key_id = tbs.get_extension::<SubjectKeyIdentifier>()?.map(|(_, k)| k.0.as_bytes().to_vec());
        Ok(CertInfo {
            der: der.to_vec(),
            serial_hex: hex::encode(strip_sign(tbs.serial_number().as_bytes())),
            subject: tbs.subject().clone().into(),
            issuer: tbs.issuer().clone().into(),
            not_before: tbs.validity().not_before.to_system_time(),
            not_after: tbs.validity().not_after.to_system_time(),
            spki: tbs.subject_public_key_info().clone(),
            spki_der: tbs.subject_public_key_info().to_der()?,
            basic_constraints,
            subject_key_id,
            extensions,
        })
    }

    pub fn is_ca(&self) -> bool {
        self.basic_constraints.as_ref().is_some_and(|b| b.ca)
    }

    /// The keyIdentifier of the authorityKeyIdentifier extension: which key signed it.
    pub fn authority_key_id(&self) -> Option<Vec<u8>> {
        let ext =
            self.extensions.iter().find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)?;
        let aki = AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes()).ok()?;
        aki.key_identifier.map(|k| k.as_bytes().to_vec())
    }

    /// SHA-256 fingerprint of the DER, lowercase hex.
    pub fn fingerprint_sha256(&self) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &self.der))
    }
}

/// Serial numbers are shown without the leading zero byte DER adds for positivity.
pub fn strip_sign(bytes: &[u8]) -> &[u8] {
    match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        b => b,
    }
}
