//! PKIStatusInfo and PKIFailureInfo (RFC 9810 section 5.2.3), and the error message body
//! (section 5.3.21).
//!
//! ```text
//! PKIStatusInfo ::= SEQUENCE {
//!     status        PKIStatus,
//!     statusString  PKIFreeText     OPTIONAL,
//!     failInfo      PKIFailureInfo  OPTIONAL }
//! PKIFailureInfo ::= BIT STRING { badAlg (0), badMessageCheck (1), ... }
//! ErrorMsgContent ::= SEQUENCE {
//!     pKIStatusInfo          PKIStatusInfo,
//!     errorCode              INTEGER           OPTIONAL,
//!     errorDetails           PKIFreeText       OPTIONAL }
//! ```
//!
//! These are pkiplane's own: the `cmpv2` 0.2 crate's `PkiFailureInfoValues` gives
//! `badRequest` and `badTime` the same value, stores flag masks where bit numbers belong
//! (in a u16, though the bits go to 26), and keeps `ErrorMsgContent`'s fields private.
//! Its `PkiStatus` enumeration is correct and used here.

use cmpv2::status::PkiStatus;
use der::Sequence;
use der::asn1::BitString;

/// The PKIFailureInfo bits (RFC 9810 section 5.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FailBit {
    BadAlg = 0,
    BadMessageCheck = 1,
    BadRequest = 2,
    BadTime = 3,
    BadCertId = 4,
    BadDataFormat = 5,
    WrongAuthority = 6,
    IncorrectData = 7,
    MissingTimeStamp = 8,
    BadPop = 9,
    CertRevoked = 10,
    CertConfirmed = 11,
    WrongIntegrity = 12,
    BadRecipientNonce = 13,
    TimeNotAvailable = 14,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    AddInfoNotAvailable = 17,
    BadSenderNonce = 18,
    BadCertTemplate = 19,
    SignerNotTrusted = 20,
    TransactionIdInUse = 21,
    UnsupportedVersion = 22,
    NotAuthorized = 23,
    SystemUnavail = 24,
    SystemFailure = 25,
    DuplicateCertReq = 26,
}

impl FailBit {
    pub const ALL: [FailBit; 27] = [
        FailBit::BadAlg,
        FailBit::BadMessageCheck,
        FailBit::BadRequest,
        FailBit::BadTime,
        FailBit::BadCertId,
        FailBit::BadDataFormat,
        FailBit::WrongAuthority,
        FailBit::IncorrectData,
        FailBit::MissingTimeStamp,
        FailBit::BadPop,
        FailBit::CertRevoked,
        FailBit::CertConfirmed,
        FailBit::WrongIntegrity,
        FailBit::BadRecipientNonce,
        FailBit::TimeNotAvailable,
        FailBit::UnacceptedPolicy,
        FailBit::UnacceptedExtension,
        FailBit::AddInfoNotAvailable,
        FailBit::BadSenderNonce,
        FailBit::BadCertTemplate,
        FailBit::SignerNotTrusted,
        FailBit::TransactionIdInUse,
        FailBit::UnsupportedVersion,
        FailBit::NotAuthorized,
        FailBit::SystemUnavail,
        FailBit::SystemFailure,
        FailBit::DuplicateCertReq,
    ];

    /// The ASN.1 name, as RFC 9810 and `openssl cmp` print it.
    pub fn name(self) -> &'static str {
        [
            "badAlg",
            "badMessageCheck",
            "badRequest",
            "badTime",
            "badCertId",
            "badDataFormat",
            "wrongAuthority",
            "incorrectData",
            "missingTimeStamp",
            "badPOP",
            "certRevoked",
            "certConfirmed",
            "wrongIntegrity",
            "badRecipientNonce",
            "timeNotAvailable",
            "unacceptedPolicy",
            "unacceptedExtension",
            "addInfoNotAvailable",
            "badSenderNonce",
            "badCertTemplate",
            "signerNotTrusted",
            "transactionIdInUse",
            "unsupportedVersion",
            "notAuthorized",
            "systemUnavail",
            "systemFailure",
            "duplicateCertReq",
        ][self as usize]
    }
}

/// A set of failure bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FailInfo(pub u32);

impl FailInfo {
    pub fn of(bit: FailBit) -> Self {
        Self(1 << bit as u32)
    }

    pub fn with(self, bit: FailBit) -> Self {
        Self(self.0 | 1 << bit as u32)
    }

    pub fn contains(self, bit: FailBit) -> bool {
        self.0 & (1 << bit as u32) != 0
    }

    pub fn bits(self) -> Vec<FailBit> {
        FailBit::ALL.into_iter().filter(|b| self.contains(*b)).collect()
    }

    pub fn names(self) -> Vec<&'static str> {
        self.bits().into_iter().map(FailBit::name).collect()
    }

    /// The DER named-bit BIT STRING: bit n is the (n mod 8)-th most significant bit of
    /// byte n / 8, trailing zero bits removed (X.690 section 11.2.2).
    pub fn to_bit_string(self) -> der::Result<BitString> {
        if self.0 == 0 {
            return BitString::new(0, Vec::new());
        }
        let highest = 31 - self.0.leading_zeros() as usize;
        let mut bytes = vec![0u8; highest / 8 + 1];
        for bit in self.bits() {
            let n = bit as usize;
            bytes[n / 8] |= 0x80 >> (n % 8);
        }
        BitString::new((7 - highest % 8) as u8, bytes)
    }

    /// Reads a PKIFailureInfo; bits beyond 26 are ignored.
    pub fn from_bit_string(bits: &BitString) -> Self {
        let mut v = 0u32;
        for (n, set) in bits.bits().enumerate().take(27) {
            if set {
                v |= 1 << n;
            }
        }
        Self(v)
    }
}

/// `PKIStatusInfo`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct StatusInfo {
    pub status: PkiStatus,
    pub status_string: Option<Vec<String>>,
    pub fail_info: Option<BitString>,
}

impl StatusInfo {
    pub fn accepted() -> Self {
        Self { status: PkiStatus::Accepted, status_string: None, fail_info: None }
    }

    pub fn with_text(status: PkiStatus, text: Vec<String>) -> Self {
        Self { status, status_string: (!text.is_empty()).then_some(text), fail_info: None }
    }

    pub fn rejection(fail: FailInfo, text: Vec<String>) -> der::Result<Self> {
        Ok(Self {
            status: PkiStatus::Rejection,
            status_string: (!text.is_empty()).then_some(text),
            fail_info: Some(fail.to_bit_string()?),
        })
    }

    pub fn fail(&self) -> FailInfo {
        self.fail_info.as_ref().map(FailInfo::from_bit_string).unwrap_or_default()
    }
}

/// `ErrorMsgContent`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ErrorMsg {
    pub status_info: StatusInfo,
    pub error_code: Option<i64>,
    pub error_details: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn failure_bits_encode_as_named_bits() {
        // badPOP (9): second byte, second most significant bit, 6 unused bits.
        let bs = FailInfo::of(FailBit::BadPop).to_bit_string().unwrap();
        assert_eq!(bs.to_der().unwrap(), [0x03, 0x03, 0x06, 0x00, 0x40]);
        // badAlg (0) alone: one byte 0x80, 7 unused bits.
        assert_eq!(FailInfo::of(FailBit::BadAlg).to_bit_string().unwrap().to_der().unwrap(), [3, 2, 7, 0x80]);
        let all = FailBit::ALL.iter().fold(FailInfo::default(), |f, b| f.with(*b));
        let back =
            FailInfo::from_bit_string(&BitString::from_der(&all.to_bit_string().unwrap().to_der().unwrap()).unwrap());
        assert_eq!(back, all);
        assert_eq!(FailInfo::of(FailBit::TransactionIdInUse).names(), ["transactionIdInUse"]);
    }
}
