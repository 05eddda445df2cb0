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
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo};
use der::Encode;
use der::asn1::{Any, ObjectIdentifier, OctetString};
use pkiplane_core::x509::cert::CertInfo;
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
use crate::rsa_public::RequesterKey;

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
    encap: EncapsulatedContentInfo,
    digest_alg: ObjectIdentifier,
    signature_alg: ObjectIdentifier,
    signature: Vec<u8>,
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
    let signed: Result<SignedData, ScepError> = ci
        .content
        .decode_as()
        .or_else(|_| decode_ber_or_der(&ci.content.to_der()?))
        .map_err(|e: ScepError| ScepError::Malformed(format!("SignedData: {e}")));
    let mut unverified = match signed {
        Ok(signed) => strict(signed)?,
        // The `cms` types decode certificates and signer identifiers under the RFC 5280
        // profile, which refuses serial numbers over 20 octets; certmonger signs with a
        // self-signed certificate whose serial has 33. Read such a message leniently.
        Err(e) => lenient::parse(&ci.content).map_err(|_| e)?,
    };
    unverified.reply =
        match (attribute(&unverified.attrs, &TRANSACTION_ID), attribute(&unverified.attrs, &SENDER_NONCE)) {
            (Some(tid), Some(nonce)) => nonce.decode_as::<OctetString>().ok().map(|n| ReplyTo {
                transaction_id: tid.clone(),
                sender_nonce: n.as_bytes().to_vec(),
                digest: DigestAlg::from_oid(&unverified.digest_alg, true).unwrap_or(DigestAlg::Sha256),
            }),
            _ => None,
        };
    Ok(unverified)
}

fn strict(signed: SignedData) -> Result<Unverified, ScepError> {
    let mut infos = signed.signer_infos.0.iter();
    let (Some(signer_info), None) = (infos.next(), infos.next()) else {
        return Err(ScepError::Malformed("a pkiMessage has exactly one SignerInfo".into()));
    };
    let signer_info: SignerInfo = signer_info.clone();
    let attrs = signer_info
        .signed_attrs
        .clone()
        .ok_or_else(|| ScepError::Malformed("the SignerInfo has no signed attributes".into()))?;
    let signer_der = signer_certificate(&signed, &signer_info.sid);
    Ok(Unverified {
        encap: signed.encap_content_info,
        digest_alg: signer_info.digest_alg.oid,
        signature_alg: signer_info.signature_algorithm.oid,
        signature: signer_info.signature.as_bytes().to_vec(),
        attrs,
        signer_der,
        reply: None,
    })
}

/// Reading a SignedData whose certificates or signer identifier carry serial numbers
/// the RFC 5280 profile refuses: the structure element by element, the certificates
/// under a profile without the serial-number length check.
pub(crate) mod lenient {
    use der::asn1::{Any, ObjectIdentifier, OctetString};
    use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
    use x509_cert::attr::Attributes;
    use x509_cert::certificate::{CertificateInner, Profile};
    use x509_cert::ext::pkix::SubjectKeyIdentifier;

    use super::Unverified;
    use crate::error::ScepError;

    /// RFC 5280 without the 20-octet limit on serial numbers.
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Copy, Clone, Default)]
    pub struct LongSerials;

    impl Profile for LongSerials {
        fn check_serial_number(_serial: &x509_cert::serial_number::SerialNumber<Self>) -> der::Result<()> {
            Ok(())
        }
    }

    pub type LenientCertificate = CertificateInner<LongSerials>;

    fn malformed(what: &str) -> impl Fn(der::Error) -> ScepError + '_ {
        move |e| ScepError::Malformed(format!("{what}: {e}"))
    }

    /// The elements of a constructed value.
    fn elements(value: &[u8]) -> Result<Vec<Any>, der::Error> {
        let mut reader = SliceReader::new(value)?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            out.push(Any::decode(&mut reader)?);
        }
        Ok(out)
    }

    fn context(any: &Any, n: u8) -> bool {
        matches!(any.tag(), Tag::ContextSpecific { number, .. } if number == TagNumber(n as u32))
    }

    pub fn parse(content: &Any) -> Result<Unverified, ScepError> {
        let fields = elements(content.value()).map_err(malformed("SignedData"))?;
        let encap = fields
            .get(2)
            .ok_or_else(|| ScepError::Malformed("SignedData: no encapContentInfo".into()))?
            .decode_as()
            .map_err(malformed("encapContentInfo"))?;
        let certificates = match fields.iter().find(|f| context(f, 0)) {
            Some(set) => elements(set.value()).map_err(malformed("certificates"))?,
            None => Vec::new(),
        };
        let infos = fields
            .last()
            .filter(|f| f.tag() == Tag::Set)
            .ok_or_else(|| ScepError::Malformed("SignedData: no signerInfos".into()))?;
        let infos = elements(infos.value()).map_err(malformed("signerInfos"))?;
        let [info] = infos.as_slice() else {
            return Err(ScepError::Malformed("a pkiMessage has exactly one SignerInfo".into()));
        };
        let info = elements(info.value()).map_err(malformed("SignerInfo"))?;
        let (Some(sid), Some(digest), Some(attrs), Some(sig_alg), Some(signature)) =
            (info.get(1), info.get(2), info.get(3), info.get(4), info.get(5))
        else {
            return Err(ScepError::Malformed("SignerInfo: missing fields".into()));
        };
        if !context(attrs, 0) {
            return Err(ScepError::Malformed("the SignerInfo has no signed attributes".into()));
        }
        // [0] IMPLICIT SET OF Attribute: read as the SET it stands for.
        let attrs_der = Any::new(Tag::Set, attrs.value()).and_then(|a| a.to_der()).map_err(malformed("signedAttrs"))?;
        let attrs = Attributes::from_der(&attrs_der).map_err(malformed("signedAttrs"))?;
        let alg_oid = |a: &Any| -> Result<ObjectIdentifier, ScepError> {
            elements(a.value())
                .ok()
                .and_then(|e| e.first().and_then(|o| o.decode_as::<ObjectIdentifier>().ok()))
                .ok_or_else(|| ScepError::Malformed("SignerInfo: bad AlgorithmIdentifier".into()))
        };
        let signature: OctetString = signature.decode_as().map_err(malformed("signature"))?;
        let signer_der = certificates.iter().find_map(|c| {
            let der = c.to_der().ok()?;
            let cert = LenientCertificate::from_der(&der).ok()?;
            matches_sid(&cert, sid).then_some(der)
        });
        Ok(Unverified {
            encap,
            digest_alg: alg_oid(digest)?,
            signature_alg: alg_oid(sig_alg)?,
            signature: signature.as_bytes().to_vec(),
            attrs,
            signer_der,
            reply: None,
        })
    }

    /// Whether `cert` is the one the SignerIdentifier `sid` (as received) names.
    fn matches_sid(cert: &LenientCertificate, sid: &Any) -> bool {
        let tbs = cert.tbs_certificate();
        if sid.tag() == Tag::Sequence {
            let Ok(parts) = elements(sid.value()) else { return false };
            let (Some(issuer), Some(serial)) = (parts.first(), parts.get(1)) else { return false };
            tbs.issuer().to_der().ok().as_deref() == issuer.to_der().ok().as_deref()
                && tbs.serial_number().to_der().ok().as_deref() == serial.to_der().ok().as_deref()
        } else if context(sid, 0) {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, k))) if k.0.as_bytes() == sid.value())
        } else {
            false
        }
    }
}

/// The facts of a signer certificate; one with an over-long serial number (certmonger's
/// self-signed certificate) is read without the RFC 5280 serial-number check.
fn signer_info_of(der: &[u8]) -> Result<CertInfo, der::Error> {
    CertInfo::from_der(der).or_else(|_| CertInfo::from_der_as::<lenient::LongSerials>(der))
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
        let digest = DigestAlg::from_oid(&self.digest_alg, legacy)?;
        let reply = ReplyTo { digest, ..reply };
        if !digest.accepts_signature_oid(&self.signature_alg) {
            return Err(ScepError::BadAlg(format!(
                "signature algorithm {} with digest {}",
                self.signature_alg,
                digest.name()
            )));
        }
        let signer_der = self
            .signer_der
            .ok_or_else(|| ScepError::BadMessageCheck("the signer's certificate is not in the message".into()))?;
        let signer =
            signer_info_of(&signer_der).map_err(|e| ScepError::BadMessageCheck(format!("signer certificate: {e}")))?;
        let key = RequesterKey::from_spki(&signer.spki_der, "the signer's key")?;

        let econtent = &self.encap;
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
        if !key.verify_pkcs1v15(digest, &signed_attrs_der, &self.signature) {
            return Err(ScepError::BadMessageCheck("the signature does not verify".into()));
        }

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
