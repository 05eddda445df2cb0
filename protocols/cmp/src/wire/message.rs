//! The PKIMessage envelope (RFC 9810 section 5.1):
//!
//! ```text
//! PKIMessage ::= SEQUENCE {
//!     header           PKIHeader,
//!     body             PKIBody,
//!     protection   [0] PKIProtection OPTIONAL,
//!     extraCerts   [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL }
//! ProtectedPart ::= SEQUENCE { header PKIHeader, body PKIBody }
//! ```
//!
//! The header and body are kept as the exact bytes received: protection is checked over
//! the DER of ProtectedPart built from them, never over a re-encoding. The header is
//! read with `cmpv2`'s `PkiHeader`, whose `Pvno` knows only cmp1999 and cmp2000; a
//! cmp2021 (3) header is read by presenting its pvno as 2 (the rest of the header is the
//! same) and remembering the real version, which responses repeat.

use std::time::SystemTime;

use cmpv2::r#gen::InfoTypeAndValue;
use cmpv2::header::{PkiHeader, Pvno};
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, OctetString, Utf8StringRef};
use der::{Decode, Encode, Reader, Sequence, Tag, TagNumber, Tagged};
use spki07::AlgorithmIdentifierOwned;
use x509_cert02::ext::pkix::name::GeneralName;

/// The outer SEQUENCE with header and body left undecoded.
#[derive(Sequence)]
struct RawMessage<'a> {
    header: AnyRef<'a>,
    body: AnyRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    protection: Option<BitStringRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    extra_certs: Option<Vec<AnyRef<'a>>>,
}

#[derive(Sequence)]
struct ProtectedPart<'a> {
    header: AnyRef<'a>,
    body: AnyRef<'a>,
}

/// Body choice tags (RFC 9810 section 5.1.2).
pub mod tag {
    pub const IR: u8 = 0;
    pub const IP: u8 = 1;
    pub const CR: u8 = 2;
    pub const CP: u8 = 3;
    pub const P10CR: u8 = 4;
    pub const KUR: u8 = 7;
    pub const KUP: u8 = 8;
    pub const RR: u8 = 11;
    pub const RP: u8 = 12;
    pub const PKI_CONF: u8 = 19;
    pub const NESTED: u8 = 20;
    pub const GENM: u8 = 21;
    pub const GENP: u8 = 22;
    pub const ERROR: u8 = 23;
    pub const CERT_CONF: u8 = 24;
    pub const POLL_REQ: u8 = 25;
    pub const POLL_REP: u8 = 26;

    /// The ASN.1 name of a body type.
    pub fn name(t: u8) -> &'static str {
        const NAMES: [&str; 27] = [
            "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup", "krr", "krp", "rr", "rp", "ccr",
            "ccp", "ckuann", "cann", "rann", "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf",
            "pollReq", "pollRep",
        ];
        NAMES.get(t as usize).copied().unwrap_or("unknown")
    }
}

/// The header fields pkiplane reads, owned.
#[derive(Clone, Debug)]
pub struct Header {
    pub pvno: u8,
    pub sender: GeneralName,
    pub recipient: GeneralName,
    pub message_time: Option<SystemTime>,
    pub protection_alg: Option<AlgorithmIdentifierOwned>,
    pub sender_kid: Option<Vec<u8>>,
    pub transaction_id: Option<Vec<u8>>,
    pub sender_nonce: Option<Vec<u8>>,
    pub recip_nonce: Option<Vec<u8>>,
    pub general_info: Vec<InfoTypeAndValue>,
}

impl Header {
    /// Whether generalInfo carries the given InfoType.
    pub fn has_info(&self, oid: &der::asn1::ObjectIdentifier) -> bool {
        self.general_info.iter().any(|i| &i.oid == oid)
    }
}

/// A received PKIMessage.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub header: Header,
    /// The body's choice tag number.
    pub body_tag: u8,
    /// The body content: the TLV inside the body's [n] EXPLICIT tag.
    pub body: Vec<u8>,
    /// DER of ProtectedPart, what the protection covers.
    pub protected_part: Vec<u8>,
    pub protection: Option<Vec<u8>>,
    /// extraCerts, DER, in the order sent.
    pub extra_certs: Vec<Vec<u8>>,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a DER PKIMessage: {0}")]
    Der(String),
    #[error("unsupported protocol version pvno {0} (pkiplane speaks 2 and 3)")]
    Version(i64),
}

fn der_err(e: der::Error) -> DecodeError {
    DecodeError::Der(e.to_string())
}

/// The pvno a header TLV carries (its first INTEGER), and the offset of that INTEGER's
/// content byte within the TLV.
fn header_pvno(header: AnyRef<'_>) -> Result<(i64, usize), DecodeError> {
    let value = header.value();
    let mut reader = der::SliceReader::new(value).map_err(der_err)?;
    let pvno: i64 = reader.decode().map_err(der_err)?;
    let offset = header.to_der().map_err(der_err)?.len() - value.len() + 2;
    Ok((pvno, offset))
}

/// Decodes a PKIMessage.
pub fn decode(der: &[u8]) -> Result<Incoming, DecodeError> {
    let raw = RawMessage::from_der(der).map_err(der_err)?;
    if raw.header.tag() != Tag::Sequence {
        return Err(DecodeError::Der("PKIHeader is not a SEQUENCE".into()));
    }
    let (pvno, offset) = header_pvno(raw.header)?;
    if pvno != 2 && pvno != 3 {
        return Err(DecodeError::Version(pvno));
    }
    let mut header_der = raw.header.to_der().map_err(der_err)?;
    header_der[offset] = 2;
    let h = PkiHeader::from_der(&header_der).map_err(der_err)?;
    let header = Header {
        pvno: pvno as u8,
        sender: h.sender.clone(),
        recipient: h.recipient.clone(),
        message_time: h.message_time.map(|t| t.to_system_time()),
        protection_alg: h.protection_alg.clone(),
        sender_kid: h.sender_kid.as_ref().map(|o| o.as_bytes().to_vec()),
        transaction_id: h.trans_id.as_ref().map(|o| o.as_bytes().to_vec()),
        sender_nonce: h.sender_nonce.as_ref().map(|o| o.as_bytes().to_vec()),
        recip_nonce: h.recip_nonce.as_ref().map(|o| o.as_bytes().to_vec()),
        general_info: h.general_info.clone().unwrap_or_default(),
    };
    let body_tag = match raw.body.tag() {
        Tag::ContextSpecific { constructed: true, number } if number.value() <= 30 => number.value(),
        other => return Err(DecodeError::Der(format!("PKIBody has tag {other}, expected [0]..[26]"))),
    };
    let protected_part = ProtectedPart { header: raw.header, body: raw.body }.to_der().map_err(der_err)?;
    let protection = match raw.protection {
        Some(p) => Some(p.as_bytes().ok_or_else(|| DecodeError::Der("protection has unused bits".into()))?.to_vec()),
        None => None,
    };
    let extra_certs = raw
        .extra_certs
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()
        .map_err(der_err)?;
    Ok(Incoming { header, body_tag, body: raw.body.value().to_vec(), protected_part, protection, extra_certs })
}

/// The header of an outgoing message.
#[derive(Clone, Debug)]
pub struct OutHeader {
    pub pvno: u8,
    pub sender: GeneralName,
    pub recipient: GeneralName,
    pub message_time: SystemTime,
    pub protection_alg: Option<AlgorithmIdentifierOwned>,
    pub sender_kid: Option<Vec<u8>>,
    pub transaction_id: Option<Vec<u8>>,
    pub sender_nonce: Vec<u8>,
    pub recip_nonce: Option<Vec<u8>>,
    pub free_text: Vec<String>,
    pub general_info: Vec<InfoTypeAndValue>,
}

fn octets(v: &Option<Vec<u8>>) -> der::Result<Option<OctetString>> {
    v.as_ref().map(|b| OctetString::new(b.clone())).transpose()
}

/// Encodes a header with `cmpv2`'s `PkiHeader` (see the module text for cmp2021).
pub fn encode_header(h: &OutHeader) -> der::Result<Vec<u8>> {
    let free_text = h.free_text.iter().map(Utf8StringRef::new).collect::<der::Result<Vec<_>>>()?;
    let header = PkiHeader {
        pvno: Pvno::Cmp2000,
        sender: h.sender.clone(),
        recipient: h.recipient.clone(),
        message_time: Some(GeneralizedTime::from_system_time(h.message_time)?),
        protection_alg: h.protection_alg.clone(),
        sender_kid: octets(&h.sender_kid)?,
        recip_kid: None,
        trans_id: octets(&h.transaction_id)?,
        sender_nonce: Some(OctetString::new(h.sender_nonce.clone())?),
        recip_nonce: octets(&h.recip_nonce)?,
        free_text: (!free_text.is_empty()).then_some(free_text),
        general_info: (!h.general_info.is_empty()).then(|| h.general_info.clone()),
    };
    let mut der = header.to_der()?;
    if h.pvno != 2 {
        let any = AnyRef::from_der(&der)?;
        let offset = der.len() - any.value().len() + 2;
        der[offset] = h.pvno;
    }
    Ok(der)
}

/// Wraps body content in its `[n] EXPLICIT` choice tag.
pub fn encode_body(body_tag: u8, content: &[u8]) -> der::Result<Vec<u8>> {
    let number = TagNumber::new(body_tag);
    let any = AnyRef::new(Tag::ContextSpecific { constructed: true, number }, content)?;
    any.to_der()
}

/// DER of ProtectedPart for an encoded header and body.
pub fn protected_part(header: &[u8], body: &[u8]) -> der::Result<Vec<u8>> {
    ProtectedPart { header: AnyRef::from_der(header)?, body: AnyRef::from_der(body)? }.to_der()
}

/// Assembles a PKIMessage from its encoded parts.
pub fn encode_message(
    header: &[u8],
    body: &[u8],
    protection: Option<&[u8]>,
    extra_certs: &[Vec<u8>],
) -> der::Result<Vec<u8>> {
    let certs = extra_certs.iter().map(|c| AnyRef::from_der(c)).collect::<der::Result<Vec<_>>>()?;
    RawMessage {
        header: AnyRef::from_der(header)?,
        body: AnyRef::from_der(body)?,
        protection: protection.map(BitStringRef::from_bytes).transpose()?,
        extra_certs: (!certs.is_empty()).then_some(certs),
    }
    .to_der()
}
