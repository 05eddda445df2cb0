//! PKIBody contents (RFC 9810 section 5.1.2): requests are decoded by their choice tag,
//! responses encoded from the types below.
//!
//! Certificate requests, revocation requests and general messages use the `crmf` and
//! `cmpv2` types. The contents that carry a PKIStatusInfo (certConf, error, and every
//! response) and the polling messages are defined here: `cmpv2` 0.2 has no usable
//! PKIFailureInfo (see [`super::status`]), decodes a pollReq body as PollRepContent, and
//! models PollRepContent as one SEQUENCE rather than a SEQUENCE OF.

use cmpv2::certified_key_pair::CertifiedKeyPair;
use cmpv2::r#gen::InfoTypeAndValue;
use crmf::pop::ProofOfPossession;
use der::asn1::{AnyRef, OctetString};
use der::{Decode, Encode, Sequence};
use spki07::AlgorithmIdentifierOwned;

use super::message::tag;
use super::status::{ErrorMsg, StatusInfo};
use super::template::{CertRequest, RevDetails};

/// ```text
/// CertReqMsg ::= SEQUENCE {
///     certReq   CertRequest,
///     popo      ProofOfPossession  OPTIONAL,
///     regInfo   SEQUENCE SIZE(1..MAX) OF AttributeTypeAndValue OPTIONAL }
/// ```
/// (RFC 4211 section 3), with certReq kept as received: the signature POP covers its DER.
#[derive(Sequence)]
struct CertReqMsgRaw<'a> {
    cert_req: AnyRef<'a>,
    popo: Option<ProofOfPossession>,
    reg_info: Option<Vec<AnyRef<'a>>>,
}

/// One certificate request of an ir, cr or kur.
#[derive(Clone, Debug)]
pub struct CertReqItem {
    pub cert_req_id: i64,
    /// DER of the CertRequest, what a signature POP without poposkInput signs
    /// (RFC 4211 section 4.1).
    pub cert_req_der: Vec<u8>,
    pub request: CertRequest,
    pub popo: Option<ProofOfPossession>,
}

/// ```text
/// CertStatus ::= SEQUENCE {
///     certHash    OCTET STRING,
///     certReqId   INTEGER,
///     statusInfo  PKIStatusInfo OPTIONAL,
///     hashAlg [0] AlgorithmIdentifier{DIGEST-ALGORITHM, {...}} OPTIONAL }
/// ```
/// (RFC 9810 section 5.3.18; hashAlg is new in cmp2021).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertStatusIn {
    pub cert_hash: OctetString,
    pub cert_req_id: i64,
    pub status_info: Option<StatusInfo>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_alg: Option<AlgorithmIdentifierOwned>,
}

/// `PollReqContent ::= SEQUENCE OF SEQUENCE { certReqId INTEGER }` (section 5.3.22).
#[derive(Sequence)]
struct PollReqItem {
    cert_req_id: i64,
}

/// ```text
/// PollRepContent ::= SEQUENCE OF SEQUENCE {
///     certReqId    INTEGER,
///     checkAfter   INTEGER,  -- time in seconds
///     reason       PKIFreeText OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PollRepItem {
    pub cert_req_id: i64,
    pub check_after: i64,
    pub reason: Option<Vec<String>>,
}

/// A request body pkiplane serves.
#[derive(Clone, Debug)]
pub enum RequestBody {
    /// ir, cr or kur (the tag says which).
    CertRequests(Vec<CertReqItem>),
    /// p10cr: the PKCS#10 request, DER.
    P10cr(Vec<u8>),
    Rr(Vec<RevDetails>),
    CertConf(Vec<CertStatusIn>),
    PollReq(Vec<i64>),
    Genm(Vec<InfoTypeAndValue>),
    Error(ErrorMsg),
}

/// Most certificate requests one message may carry.
pub const MAX_REQUESTS: usize = 16;

/// Decodes the content of a body with choice tag `body_tag`; `Ok(None)` for a body type
/// a server does not accept (responses, announcements, nested, key recovery).
pub fn decode_request(body_tag: u8, content: &[u8]) -> der::Result<Option<RequestBody>> {
    Ok(Some(match body_tag {
        tag::IR | tag::CR | tag::KUR => {
            let raw: Vec<CertReqMsgRaw<'_>> = Vec::from_der(content)?;
            let mut items = Vec::with_capacity(raw.len());
            for msg in raw {
                let cert_req_der = msg.cert_req.to_der()?;
                let request = CertRequest::from_der(&cert_req_der)?;
                let cert_req_id = i64::from_der(&request.cert_req_id.to_der()?)?;
                items.push(CertReqItem { cert_req_id, cert_req_der, request, popo: msg.popo });
            }
            RequestBody::CertRequests(items)
        }
        tag::P10CR => {
            // Checked for shape here; the core verifies it.
            AnyRef::from_der(content)?;
            RequestBody::P10cr(content.to_vec())
        }
        tag::RR => RequestBody::Rr(Vec::<RevDetails>::from_der(content)?),
        tag::CERT_CONF => RequestBody::CertConf(Vec::<CertStatusIn>::from_der(content)?),
        tag::POLL_REQ => {
            RequestBody::PollReq(Vec::<PollReqItem>::from_der(content)?.into_iter().map(|p| p.cert_req_id).collect())
        }
        tag::GENM => RequestBody::Genm(Vec::<InfoTypeAndValue>::from_der(content)?),
        tag::ERROR => RequestBody::Error(ErrorMsg::from_der(content)?),
        _ => return Ok(None),
    }))
}

/// ```text
/// CertRepMessage ::= SEQUENCE {
///     caPubs   [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL,
///     response     SEQUENCE OF CertResponse }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertRepMessage {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub ca_pubs: Option<Vec<x509_cert02::Certificate>>,
    pub response: Vec<CertResponse>,
}

/// ```text
/// CertResponse ::= SEQUENCE {
///     certReqId           INTEGER,
///     status              PKIStatusInfo,
///     certifiedKeyPair    CertifiedKeyPair    OPTIONAL,
///     rspInfo             OCTET STRING        OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertResponse {
    pub cert_req_id: i64,
    pub status: StatusInfo,
    pub certified_key_pair: Option<CertifiedKeyPair>,
    pub rsp_info: Option<OctetString>,
}

/// `RevRepContent ::= SEQUENCE { status SEQUENCE OF PKIStatusInfo, revCerts [0] ...
/// OPTIONAL, crls [1] ... OPTIONAL }` (section 5.3.10); pkiplane sends status only.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevRep {
    pub status: Vec<StatusInfo>,
}

/// An outgoing body.
#[derive(Clone, Debug)]
pub enum ResponseBody {
    /// ip, cp or kup (the tag says which).
    CertRep(u8, CertRepMessage),
    Rp(RevRep),
    PkiConf,
    Genp(Vec<InfoTypeAndValue>),
    PollRep(Vec<PollRepItem>),
    Error(ErrorMsg),
}

impl ResponseBody {
    pub fn tag(&self) -> u8 {
        match self {
            ResponseBody::CertRep(t, _) => *t,
            ResponseBody::Rp(_) => tag::RP,
            ResponseBody::PkiConf => tag::PKI_CONF,
            ResponseBody::Genp(_) => tag::GENP,
            ResponseBody::PollRep(_) => tag::POLL_REP,
            ResponseBody::Error(_) => tag::ERROR,
        }
    }

    /// The DER of the content inside the choice tag.
    pub fn content_der(&self) -> der::Result<Vec<u8>> {
        match self {
            ResponseBody::CertRep(_, m) => m.to_der(),
            ResponseBody::Rp(r) => r.to_der(),
            ResponseBody::PkiConf => der::asn1::Null.to_der(),
            ResponseBody::Genp(g) => g.to_der(),
            ResponseBody::PollRep(p) => p.to_der(),
            ResponseBody::Error(e) => e.to_der(),
        }
    }
}

/// Decodes a response body, for tests and the golden vectors.
pub fn decode_response(body_tag: u8, content: &[u8]) -> der::Result<ResponseBody> {
    Ok(match body_tag {
        tag::IP | tag::CP | tag::KUP => ResponseBody::CertRep(body_tag, CertRepMessage::from_der(content)?),
        tag::RP => ResponseBody::Rp(RevRep::from_der(content)?),
        tag::PKI_CONF => ResponseBody::PkiConf,
        tag::GENP => ResponseBody::Genp(Vec::from_der(content)?),
        tag::POLL_REP => ResponseBody::PollRep(Vec::from_der(content)?),
        tag::ERROR => ResponseBody::Error(ErrorMsg::from_der(content)?),
        other => {
            return Err(
                der::Tag::ContextSpecific { constructed: true, number: der::TagNumber::new(other) }.value_error()
            );
        }
    })
}
