//! The client side of SCEP, for tests, benchmarks and tools: building signed and
//! encrypted requests and reading CertReps. It uses the same CMS code as the server, so
//! interoperability is proved by the real clients in the tests, not by this module.

use std::time::SystemTime;

use der::Decode;
use x509_cert::Certificate;

use crate::algorithms::{ContentAlg, DigestAlg};
use crate::cms::incoming::parse;
use crate::cms::outgoing::{Signer, attr, octets, printable, signed_message};
use crate::cms::{attribute, envelope, outgoing, printable_text, random_bytes};
use crate::error::ScepError;
use crate::message::{
    FAIL_INFO, FailInfo, MESSAGE_TYPE, MessageType, PKI_STATUS, PkiStatus, RECIPIENT_NONCE, SENDER_NONCE,
    TRANSACTION_ID,
};

/// A request to build.
pub struct Request<'a> {
    pub signer: Signer<'a>,
    pub message_type: MessageType,
    pub transaction_id: &'a str,
    /// The content to encrypt: a CSR (PKCSReq, RenewalReq), IssuerAndSubject (CertPoll),
    /// IssuerAndSerialNumber (GetCert, GetCRL).
    pub content: &'a [u8],
    /// The RA certificate to encrypt to.
    pub recipient: &'a Certificate,
    pub cipher: ContentAlg,
    pub digest: DigestAlg,
    pub signing_time: Option<SystemTime>,
}

/// A built request and the senderNonce it carries.
pub struct Built {
    pub der: Vec<u8>,
    pub sender_nonce: Vec<u8>,
}

/// Encrypts the content to the RA and signs the pkiMessage.
pub fn build(req: &Request<'_>) -> Result<Built, ScepError> {
    let sealed = envelope::seal(req.content, req.recipient, req.cipher)?;
    let nonce = random_bytes(16)?;
    let attrs = vec![
        attr(MESSAGE_TYPE, printable(req.message_type.code())?)?,
        attr(TRANSACTION_ID, printable(req.transaction_id)?)?,
        attr(SENDER_NONCE, octets(&nonce)?)?,
    ];
    let der = signed_message(&req.signer, req.digest, Some(&sealed), attrs, req.signing_time)?;
    Ok(Built { der, sender_nonce: nonce })
}

/// A CertRep as the client reads it.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: PkiStatus,
    pub fail_info: Option<FailInfo>,
    pub transaction_id: String,
    pub recipient_nonce: Vec<u8>,
    /// The RA certificate that signed it (DER).
    pub signer_der: Vec<u8>,
    /// Certificates and CRLs of the decrypted degenerate SignedData (SUCCESS only).
    pub certs: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
}

/// Verifies a CertRep's signature (by whoever signed it: check `signer_der`), and
/// decrypts its content with the requester's certificate and key.
pub fn read_reply(der: &[u8], me: &Signer<'_>) -> Result<Reply, ScepError> {
    let msg = parse(der)?.verify(true)?;
    if msg.message_type != MessageType::CertRep {
        return Err(ScepError::BadRequest(format!("expected CertRep, got {}", msg.message_type.name())));
    }
    let text = |oid| attribute(&msg.attrs, &oid).and_then(printable_text);
    let status = text(PKI_STATUS)
        .and_then(|s| PkiStatus::from_code(&s))
        .ok_or_else(|| ScepError::BadRequest("pkiStatus missing".into()))?;
    let fail_info = text(FAIL_INFO).and_then(|s| s.trim().parse::<u8>().ok()).and_then(FailInfo::from_code);
    let recipient_nonce = attribute(&msg.attrs, &RECIPIENT_NONCE)
        .and_then(|a| a.decode_as::<der::asn1::OctetString>().ok())
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_default();
    let (mut certs, mut crls) = (Vec::new(), Vec::new());
    if status == PkiStatus::Success {
        let (plain, _) = envelope::open(&msg.content, me.cert, me.key, true)?;
        (certs, crls) = outgoing::degenerate_contents(&plain)?;
    }
    Ok(Reply {
        status,
        fail_info,
        transaction_id: msg.transaction_id,
        recipient_nonce,
        signer_der: msg.signer_der,
        certs,
        crls,
    })
}

/// The RA certificate of a GetCACert answer: the one certificate that is not a CA.
pub fn ra_certificate(get_ca_cert: &[u8]) -> Result<Certificate, ScepError> {
    let (certs, _) = outgoing::degenerate_contents(get_ca_cert)?;
    certs
        .iter()
        .filter_map(|c| pkiplane_core::x509::cert::CertInfo::from_der(c).ok())
        .find(|c| !c.is_ca())
        .map(|c| Certificate::from_der(&c.der))
        .transpose()?
        .ok_or_else(|| ScepError::BadCertId("no RA certificate in GetCACert".into()))
}
