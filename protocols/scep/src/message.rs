//! The SCEP vocabulary (RFC 8894 section 3.2.1): the authenticated attributes of a
//! pkiMessage and their values.
//!
//! ```text
//! id-VeriSign  OBJECT_IDENTIFIER ::= {2 16 US(840) 1 VeriSign(113733)}
//! id-pki       OBJECT_IDENTIFIER ::= {id-VeriSign pki(1)}
//! id-attributes OBJECT_IDENTIFIER ::= {id-pki attributes(9)}
//! id-messageType    OBJECT_IDENTIFIER ::= {id-attributes messageType(2)}    PrintableString
//! id-pkiStatus      OBJECT_IDENTIFIER ::= {id-attributes pkiStatus(3)}      PrintableString
//! id-failInfo       OBJECT_IDENTIFIER ::= {id-attributes failInfo(4)}       PrintableString
//! id-senderNonce    OBJECT_IDENTIFIER ::= {id-attributes senderNonce(5)}    OCTET STRING
//! id-recipientNonce OBJECT_IDENTIFIER ::= {id-attributes recipientNonce(6)} OCTET STRING
//! id-transactionID  OBJECT_IDENTIFIER ::= {id-attributes transId(7)}        PrintableString
//! ```

use const_oid::ObjectIdentifier;
use der::Sequence;
use x509_cert::name::Name;

pub const MESSAGE_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
pub const PKI_STATUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
pub const FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
pub const SENDER_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
pub const RECIPIENT_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
pub const TRANSACTION_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");

/// CMS content types and attributes (RFC 5652 sections 4, 5, 6, 11).
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
pub const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

/// `messageType` values (RFC 8894 section 3.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    CertRep,
    RenewalReq,
    /// Obsolete in RFC 8894; refused with badRequest.
    UpdateReq,
    PkcsReq,
    /// CertPoll, called GetCertInitial before RFC 8894.
    CertPoll,
    GetCert,
    GetCrl,
}

impl MessageType {
    pub fn code(self) -> &'static str {
        match self {
            MessageType::CertRep => "3",
            MessageType::RenewalReq => "17",
            MessageType::UpdateReq => "18",
            MessageType::PkcsReq => "19",
            MessageType::CertPoll => "20",
            MessageType::GetCert => "21",
            MessageType::GetCrl => "22",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code.trim() {
            "3" => MessageType::CertRep,
            "17" => MessageType::RenewalReq,
            "18" => MessageType::UpdateReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MessageType::CertRep => "CertRep",
            MessageType::RenewalReq => "RenewalReq",
            MessageType::UpdateReq => "UpdateReq",
            MessageType::PkcsReq => "PKCSReq",
            MessageType::CertPoll => "CertPoll",
            MessageType::GetCert => "GetCert",
            MessageType::GetCrl => "GetCRL",
        }
    }
}

/// `pkiStatus` values (RFC 8894 section 3.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiStatus {
    Success,
    Failure,
    Pending,
}

impl PkiStatus {
    pub fn code(self) -> &'static str {
        match self {
            PkiStatus::Success => "0",
            PkiStatus::Failure => "2",
            PkiStatus::Pending => "3",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [PkiStatus::Success, PkiStatus::Failure, PkiStatus::Pending].into_iter().find(|s| s.code() == code.trim())
    }
}

/// `failInfo` values (RFC 8894 section 3.2.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm.
    BadAlg = 0,
    /// Integrity check (the signature) failed, or the message cannot be opened.
    BadMessageCheck = 1,
    /// Transaction not permitted or supported.
    BadRequest = 2,
    /// The signingTime attribute was not sufficiently close to the system time.
    BadTime = 3,
    /// No certificate could be identified matching the provided criteria.
    BadCertId = 4,
}

impl FailInfo {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => FailInfo::BadAlg,
            1 => FailInfo::BadMessageCheck,
            2 => FailInfo::BadRequest,
            3 => FailInfo::BadTime,
            4 => FailInfo::BadCertId,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "badAlg",
            FailInfo::BadMessageCheck => "badMessageCheck",
            FailInfo::BadRequest => "badRequest",
            FailInfo::BadTime => "badTime",
            FailInfo::BadCertId => "badCertId",
        }
    }
}

/// The content of a CertPoll (RFC 8894 section 3.3.3):
///
/// ```text
/// IssuerAndSubject ::= SEQUENCE {
///     issuer     Name,
///     subject    Name }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    pub issuer: Name,
    pub subject: Name,
}
