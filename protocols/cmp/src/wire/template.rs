//! CRMF CertRequest and CertTemplate (RFC 4211 sections 5 and 6), and RevDetails
//! (RFC 9810 section 5.3.9), which contains a template.
//!
//! ```text
//! CertRequest ::= SEQUENCE {
//!     certReqId     INTEGER,
//!     certTemplate  CertTemplate,
//!     controls      Controls OPTIONAL }
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
//! `crmf` 0.2's CertTemplate types `validity` as an X.509 `Validity` (two bare times)
//! instead of `OptionalValidity` (two optional, tagged times), so a template with a
//! validity (what `openssl cmp -days` sends) does not decode. These definitions differ
//! only there and use `crmf`'s correct `OptionalValidity`.

use crmf::request::OptionalValidity;
use der::Sequence;
use der::asn1::{BitString, Int};
use spki07::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert02::Version;
use x509_cert02::attr::AttributeTypeAndValue;
use x509_cert02::ext::Extensions;
use x509_cert02::name::Name;
use x509_cert02::serial_number::SerialNumber;

/// `CertTemplate`.
#[derive(Clone, Debug, Default, Eq, PartialEq, Sequence)]
pub struct CertTemplate {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub version: Option<Version>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub serial_number: Option<SerialNumber>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub signature: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub issuer: Option<Name>,
    #[asn1(context_specific = "4", tag_mode = "IMPLICIT", optional = "true")]
    pub validity: Option<OptionalValidity>,
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    pub subject: Option<Name>,
    #[asn1(context_specific = "6", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_public_key_info: Option<SubjectPublicKeyInfoOwned>,
    #[asn1(context_specific = "7", tag_mode = "IMPLICIT", optional = "true")]
    pub issuer_unique_id: Option<BitString>,
    #[asn1(context_specific = "8", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_unique_id: Option<BitString>,
    #[asn1(context_specific = "9", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// `CertRequest`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertRequest {
    pub cert_req_id: Int,
    pub cert_template: CertTemplate,
    pub controls: Option<Vec<AttributeTypeAndValue>>,
}

/// `RevDetails ::= SEQUENCE { certDetails CertTemplate, crlEntryDetails Extensions OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevDetails {
    pub cert_details: CertTemplate,
    pub crl_entry_details: Option<Extensions>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn validity_is_optional_validity() {
        // [4] { [1] { GeneralizedTime } }: a template that only bounds notAfter.
        let t = CertTemplate {
            validity: Some(OptionalValidity {
                not_before: None,
                not_after: Some(x509_cert02::time::Time::GeneralTime(
                    der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(4_000_000_000))
                        .unwrap(),
                )),
            }),
            ..CertTemplate::default()
        };
        let der = t.to_der().unwrap();
        assert_eq!(&der[2..6], &[0xa4, 0x13, 0xa1, 0x11]);
        assert_eq!(CertTemplate::from_der(&der).unwrap(), t);
    }
}
