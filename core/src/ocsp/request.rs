//! OCSP requests (RFC 6960 section 4.1.1), as the responder reads them.
//!
//! ```text
//! OCSPRequest ::= SEQUENCE {
//!     tbsRequest                  TBSRequest,
//!     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
//!
//! TBSRequest ::= SEQUENCE {
//!     version             [0]     EXPLICIT Version DEFAULT v1,
//!     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
//!     requestList                 SEQUENCE OF Request,
//!     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
//!
//! Request ::= SEQUENCE {
//!     reqCert                     CertID,
//!     singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
//!
//! CertID ::= SEQUENCE {
//!     hashAlgorithm       AlgorithmIdentifier,
//!     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
//!     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
//!     serialNumber        CertificateSerialNumber }
//! ```
//!
//! The module is `DEFINITIONS EXPLICIT TAGS` (RFC 6960 appendix B.1). The optional
//! signature and the requestor name are carried, not checked: this responder answers
//! anyone (RFC 5019 section 2.1.2 requests are unsigned).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use der::asn1::{Any, Int, OctetString};
use der::{Decode, Sequence, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;

use crate::x509::cert::strip_sign;

fn v1() -> u8 {
    0
}

/// `OCSPRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OcspRequest {
    pub tbs_request: TbsRequest,
    /// `Signature ::= SEQUENCE { signatureAlgorithm, signature, certs [0] ... }`, kept
    /// undecoded: signed requests are accepted and the signature is not checked.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub optional_signature: Option<Any>,
}

/// `TBSRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TbsRequest {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", default = "v1")]
    pub version: u8,
    /// A `GeneralName`, kept undecoded (not used).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub requestor_name: Option<Any>,
    pub request_list: Vec<Request>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub request_extensions: Option<Vec<Extension>>,
}

/// `Request`: one certificate asked about.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct Request {
    pub req_cert: CertId,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub single_request_extensions: Option<Vec<Extension>>,
}

/// `CertID`: a certificate named by its issuer's name and key hashes and its serial.
/// The serial is kept as a signed INTEGER so a negative one (never pkiplane's) still
/// parses and is answered `unknown`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertId {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub issuer_name_hash: OctetString,
    pub issuer_key_hash: OctetString,
    pub serial_number: Int,
}

impl CertId {
    /// The serial as the inventory keys it (lowercase hex, no sign byte); `None` for a
    /// negative or zero serial, which pkiplane never issues.
    pub fn serial_hex(&self) -> Option<String> {
        let bytes = self.serial_number.as_bytes();
        if bytes.first().is_none_or(|b| b & 0x80 != 0) || bytes.iter().all(|b| *b == 0) {
            return None;
        }
        Some(hex::encode(strip_sign(bytes)))
    }
}

/// The hash algorithms a CertID may use here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertIdHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl CertIdHash {
    /// The algorithm of an `AlgorithmIdentifier` (parameters absent or NULL, RFC 5754
    /// section 2 and RFC 3370 section 2.1), or `None` when it is not supported.
    pub fn from_algorithm(alg: &AlgorithmIdentifierOwned) -> Option<Self> {
        let params_ok = alg.parameters.as_ref().is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty());
        if !params_ok {
            return None;
        }
        [(ID_SHA_1, Self::Sha1), (ID_SHA_256, Self::Sha256), (ID_SHA_384, Self::Sha384), (ID_SHA_512, Self::Sha512)]
            .into_iter()
            .find_map(|(oid, h)| (oid == alg.oid).then_some(h))
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => ID_SHA_1,
            Self::Sha256 => ID_SHA_256,
            Self::Sha384 => ID_SHA_384,
            Self::Sha512 => ID_SHA_512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, data).as_ref().to_vec()
    }
}

/// Longest nonce accepted (RFC 8954 section 2.1: responders accept 1 to 32 octets).
pub const MAX_NONCE_LEN: usize = 32;

/// Why a request is `malformedRequest`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("not a DER OCSPRequest: {0}")]
    Der(String),
    #[error("the request lists no certificate")]
    Empty,
    #[error("the request lists {0} certificates; at most {1} are answered at once")]
    TooMany(usize, usize),
    #[error("the nonce is {0} octets; 1 to {MAX_NONCE_LEN} are accepted (RFC 8954)")]
    BadNonce(usize),
    #[error("unsupported critical extension {0}")]
    CriticalExtension(ObjectIdentifier),
    #[error("unsupported request version {0}")]
    Version(u8),
}

/// A request the responder can answer: the certificates asked about and the nonce
/// extension to echo, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    pub cert_ids: Vec<CertId>,
    /// The nonce extension as received (RFC 6960 section 4.4.1), echoed unchanged.
    pub nonce: Option<Extension>,
}

/// Decodes and checks an OCSPRequest: at most `max_certs` certificates, a nonce of 1 to
/// 32 octets, no critical extension this responder does not know.
pub fn parse_request(der: &[u8], max_certs: usize) -> Result<ParsedRequest, RequestError> {
    let req = OcspRequest::from_der(der).map_err(|e| RequestError::Der(e.to_string()))?;
    let tbs = req.tbs_request;
    if tbs.version != 0 {
        return Err(RequestError::Version(tbs.version));
    }
    match tbs.request_list.len() {
        0 => return Err(RequestError::Empty),
        n if n > max_certs => return Err(RequestError::TooMany(n, max_certs)),
        _ => {}
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.into_iter().flatten() {
        if ext.extn_id == ID_PKIX_OCSP_NONCE {
            nonce_length(&ext).map_err(RequestError::BadNonce)?;
            nonce = Some(ext);
        } else if ext.critical {
            return Err(RequestError::CriticalExtension(ext.extn_id));
        }
    }
    let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        if let Some(ext) = r.single_request_extensions.iter().flatten().find(|e| e.critical) {
            return Err(RequestError::CriticalExtension(ext.extn_id));
        }
        cert_ids.push(r.req_cert);
    }
    Ok(ParsedRequest { cert_ids, nonce })
}

/// Checks the nonce's length: RFC 8954 puts an OCTET STRING in the extension value; some
/// older clients put the raw octets there, which are accepted too.
fn nonce_length(ext: &Extension) -> Result<usize, usize> {
    let value = ext.extn_value.as_bytes();
    let len = OctetString::from_der(value).map(|o| o.as_bytes().len()).unwrap_or(value.len());
    if (1..=MAX_NONCE_LEN).contains(&len) { Ok(len) } else { Err(len) }
}
