//! Reading and verifying a client's pkiMessage (RFC 8894 section 3.2):
//!
//! ```text
//! ContentInfo { contentType id-signedData,
//!   SignedData {
//!     encapContentInfo { id-data, eContent OCTET STRING (EnvelopedData or empty) },
//!     certificates { the signer's certificate: self-signed for PKCSReq, the current
//!                    certificate for RenewalReq },
//!     signerInfos { one SignerInfo whose signedAttrs carry contentType, messageDigest,
//!                   [signingTime], messageType, transactionID, senderNonce } } }
//! ```
//!
//! [`parse`] decodes the structure and the SCEP attributes without trusting them, so a
//! message whose signature fails can still be answered with a CertRep FAILURE
//! (badMessageCheck) carrying its transactionID and senderNonce. [`Unverified::verify`]
//! then checks the algorithms, the messageDigest and the RSA signature over the DER of
//! the signed attributes (RFC 5652 section 5.4), as OpenSSL's `cms -verify` does.

use std::time::SystemTime;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::Encode;
use der::asn1::{Any, OctetString};
use pkiplane_core::x509::cert::CertInfo;
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use x509_cert::Certificate;
use x509_cert::attr::Attributes;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use super::{attribute, decode_ber_or_der, printable_text};
use crate::algorithms::DigestAlg;
use crate::error::ScepError;
use crate::message::{
    ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME, MESSAGE_TYPE, MessageType,
    SENDER_NONCE, TRANSACTION_ID,
};

/// What a reply needs from the request, trusted or not.
#[derive(Clone, Debug)]
pub struct ReplyTo {
    /// The transactionID attribute as received (echoed byte for byte).
    pub transaction_id: Any,
    pub sender_nonce: Vec<u8>,
    /// The digest to sign the reply with: the request's when acceptable, else SHA-256.
    pub digest: DigestAlg,
}

/// A decoded, not yet verified pkiMessage.
pub struct Unverified {
    signed: SignedData,
    signer_info: SignerInfo,
    attrs: Attributes,
    signer_der: Option<Vec<u8>>,
    reply: Option<ReplyTo>,
}

/// A pkiMessage whose signature verified.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub reply: ReplyTo,
    pub message_type: MessageType,
    pub transaction_id: String,
    pub signing_time: Option<SystemTime>,
    /// The signer's certificate (DER) and its facts.
    pub signer_der: Vec<u8>,
    pub signer: CertInfo,
    /// eContent: the EnvelopedData (DER), empty for messages without content.
    pub content: Vec<u8>,
    /// Every signed attribute (verified).
    pub attrs: Attributes,
}

/// Decodes a pkiMessage without verifying it.
pub fn parse(der: &[u8]) -> Result<Unverified, ScepError> {
    let ci: ContentInfo =
        decode_ber_or_der(der).map_err(|e| ScepError::Malformed(format!("not a CMS ContentInfo: {e}")))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(ScepError::Malformed(format!("pkiMessage content type is {}, not signedData", ci.content_type)));
    }
    let signed: SignedData = ci
        .content
        .decode_as()
        .or_else(|_| decode_ber_or_der(&ci.content.to_der()?))
        .map_err(|e: ScepError| ScepError::Malformed(format!("SignedData: {e}")))?;
    let mut infos = signed.signer_infos.0.iter();
    let (Some(signer_info), None) = (infos.next(), infos.next()) else {
        return Err(ScepError::Malformed("a pkiMessage has exactly one SignerInfo".into()));
    };
    let signer_info = signer_info.clone();
    let attrs = signer_info
        .signed_attrs
        .clone()
        .ok_or_else(|| ScepError::Malformed("the SignerInfo has no signed attributes".into()))?;
    let signer_der = signer_certificate(&signed, &signer_info.sid);
    let reply = match (attribute(&attrs, &TRANSACTION_ID), attribute(&attrs, &SENDER_NONCE)) {
        (Some(tid), Some(nonce)) => nonce.decode_as::<OctetString>().ok().map(|n| ReplyTo {
            transaction_id: tid.clone(),
            sender_nonce: n.as_bytes().to_vec(),
            digest: DigestAlg::from_oid(&signer_info.digest_alg.oid, true).unwrap_or(DigestAlg::Sha256),
        }),
        _ => None,
    };
    Ok(Unverified { signed, signer_info, attrs, signer_der, reply })
}

impl Unverified {
    /// Enough to answer with a CertRep, if the message carries a transactionID and a
    /// senderNonce.
    pub fn reply_to(&self) -> Option<&ReplyTo> {
        self.reply.as_ref()
    }

    /// Checks the algorithms (badAlg), the messageDigest and signature (badMessageCheck)
    /// and the presence of the SCEP attributes (badRequest).
    pub fn verify(self, legacy: bool) -> Result<Incoming, ScepError> {
        let Some(reply) = self.reply.clone() else {
            return Err(ScepError::Malformed("the pkiMessage lacks transactionID or senderNonce".into()));
        };
        let digest = DigestAlg::from_oid(&self.signer_info.digest_alg.oid, legacy)?;
        let reply = ReplyTo { digest, ..reply };
        if !digest.accepts_signature_oid(&self.signer_info.signature_algorithm.oid) {
            return Err(ScepError::BadAlg(format!(
                "signature algorithm {} with digest {}",
                self.signer_info.signature_algorithm.oid,
                digest.name()
            )));
        }
        let signer_der = self
            .signer_der
            .ok_or_else(|| ScepError::BadMessageCheck("the signer's certificate is not in the message".into()))?;
        let signer = CertInfo::from_der(&signer_der)
            .map_err(|e| ScepError::BadMessageCheck(format!("signer certificate: {e}")))?;
        let key = RsaPublicKey::from_public_key_der(&signer.spki_der)
            .map_err(|_| ScepError::BadAlg("the signer's key is not an RSA key (SCEP requires RSA)".into()))?;

        let econtent = &self.signed.encap_content_info;
        if econtent.econtent_type != ID_DATA {
            return Err(ScepError::BadRequest(format!("eContentType {} is not id-data", econtent.econtent_type)));
        }
        let content = match &econtent.econtent {
            None => Vec::new(),
            Some(any) => octets(any)?,
        };
        let content_type = attribute(&self.attrs, &ID_CONTENT_TYPE)
            .and_then(|a| a.decode_as::<const_oid::ObjectIdentifier>().ok())
            .ok_or_else(|| ScepError::BadMessageCheck("contentType attribute missing".into()))?;
        if content_type != econtent.econtent_type {
            return Err(ScepError::BadMessageCheck("contentType attribute differs from eContentType".into()));
        }
        let message_digest = attribute(&self.attrs, &ID_MESSAGE_DIGEST)
            .and_then(|a| a.decode_as::<OctetString>().ok())
            .ok_or_else(|| ScepError::BadMessageCheck("messageDigest attribute missing".into()))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(message_digest.as_bytes(), digest.digest(&content).as_slice())) {
            return Err(ScepError::BadMessageCheck("messageDigest does not match the content".into()));
        }
        // RFC 5652 section 5.4: the signature covers the DER of the attributes, tagged as
        // a SET OF (re-encoding sorts them, as DER and OpenSSL require).
        let signed_attrs_der = self.attrs.to_der()?;
        key.verify(digest.pkcs1v15(), &digest.digest(&signed_attrs_der), self.signer_info.signature.as_bytes())
            .map_err(|_| ScepError::BadMessageCheck("the signature does not verify".into()))?;

        let message_type = attribute(&self.attrs, &MESSAGE_TYPE)
            .and_then(printable_text)
            .and_then(|t| MessageType::from_code(&t))
            .ok_or_else(|| ScepError::BadRequest("messageType missing or unknown".into()))?;
        let transaction_id = printable_text(&reply.transaction_id)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| ScepError::BadRequest("transactionID is not a string of 1 to 256 characters".into()))?;
        if reply.sender_nonce.len() < 8 || reply.sender_nonce.len() > 64 {
            return Err(ScepError::BadRequest("senderNonce must be 8 to 64 bytes (RFC 8894: 16)".into()));
        }
        let signing_time = attribute(&self.attrs, &ID_SIGNING_TIME)
            .and_then(|a| a.decode_as::<x509_cert::time::Time>().ok())
            .map(|t| t.to_system_time());
        Ok(Incoming {
            reply,
            message_type,
            transaction_id,
            signing_time,
            signer_der,
            signer,
            content,
            attrs: self.attrs,
        })
    }
}

/// The octets of an eContent `[0] EXPLICIT OCTET STRING`, primitive or (BER) constructed.
fn octets(any: &Any) -> Result<Vec<u8>, ScepError> {
    if let Ok(o) = any.decode_as::<OctetString>() {
        return Ok(o.as_bytes().to_vec());
    }
    let o: OctetString = decode_ber_or_der(&any.to_der()?)
        .map_err(|e| ScepError::Malformed(format!("eContent is not an OCTET STRING: {e}")))?;
    Ok(o.as_bytes().to_vec())
}

/// The certificate in `signed` that `sid` names, as DER.
fn signer_certificate(signed: &SignedData, sid: &SignerIdentifier) -> Option<Vec<u8>> {
    let certs = signed.certificates.as_ref()?;
    certs.0.iter().find_map(|choice| {
        let CertificateChoices::Certificate(cert) = choice else { return None };
        matches_sid(cert, sid).then(|| cert.to_der().ok()).flatten()
    })
}

/// Whether `cert` is the one a SignerIdentifier (or RecipientIdentifier) names.
pub fn matches_sid(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, k))) if k == *ski)
        }
    }
}
