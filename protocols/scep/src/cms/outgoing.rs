//! Building signed pkiMessages (the RA's CertRep, RFC 8894 section 3.3.2; and, for tests
//! and tools, client requests) and degenerate certs-only SignedData (RFC 8894 section
//! 3.4, RFC 5652 section 5: no signers, certificates and/or CRLs only).
//!
//! ```text
//! SignerInfo ::= SEQUENCE {
//!   version 1, sid IssuerAndSerialNumber, digestAlgorithm,
//!   signedAttrs [0] IMPLICIT { contentType, messageDigest, signingTime,
//!                              messageType, pkiStatus, [failInfo], transactionID,
//!                              senderNonce, recipientNonce },
//!   signatureAlgorithm rsaEncryption, signature }
//! ```

use std::time::SystemTime;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::RSA_ENCRYPTION;
use der::asn1::{Any, Null, OctetString, PrintableStringRef, SetOfVec};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::crl::CertificateList;

use super::incoming::ReplyTo;
use super::random_bytes;
use crate::algorithms::DigestAlg;
use crate::error::ScepError;
use crate::message::{
    FAIL_INFO, FailInfo, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME, MESSAGE_TYPE,
    MessageType, PKI_STATUS, PkiStatus, RECIPIENT_NONCE, SENDER_NONCE, TRANSACTION_ID,
};
use crate::rsa_key::RsaPrivate;

/// A certificate and its RSA key that sign a message.
pub struct Signer<'a> {
    pub cert: &'a Certificate,
    pub key: &'a dyn RsaPrivate,
}

/// One attribute with one value.
pub fn attr(oid: ObjectIdentifier, value: Any) -> Result<Attribute, ScepError> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

/// A PrintableString value.
pub fn printable(s: &str) -> Result<Any, ScepError> {
    let p = PrintableStringRef::new(s).map_err(|_| ScepError::internal(format!("`{s}` is not printable")))?;
    Ok(Any::encode_from(&p)?)
}

/// An OCTET STRING value.
pub fn octets(b: &[u8]) -> Result<Any, ScepError> {
    Ok(Any::encode_from(&OctetString::new(b)?)?)
}

/// A SignedData over `content` (absent: no eContent), signed by `signer` with `digest`,
/// carrying `scep_attrs` next to contentType, messageDigest and signingTime, and the
/// signer's certificate.
pub fn signed_message(
    signer: &Signer<'_>,
    digest: DigestAlg,
    content: Option<&[u8]>,
    scep_attrs: Vec<Attribute>,
    signing_time: Option<SystemTime>,
) -> Result<Vec<u8>, ScepError> {
    signed_data(signer, digest, content, scep_attrs, signing_time, &[])
}

/// A certs-only SignedData carrying `certs` (DER) and signed by `signer` over absent
/// content: the GetNextCACert response of RFC 8894 section 4.7.1 ("signed by the
/// current CA or RA signing key"), so a client can tell the announced CA came from the
/// server it already trusts.
pub fn signed_certs_only(signer: &Signer<'_>, certs: &[Vec<u8>]) -> Result<Vec<u8>, ScepError> {
    let certs = certs.iter().map(|c| Certificate::from_der(c)).collect::<Result<Vec<_>, _>>()?;
    signed_data(signer, DigestAlg::Sha256, None, Vec::new(), Some(SystemTime::now()), &certs)
}

fn signed_data(
    signer: &Signer<'_>,
    digest: DigestAlg,
    content: Option<&[u8]>,
    scep_attrs: Vec<Attribute>,
    signing_time: Option<SystemTime>,
    extra_certs: &[Certificate],
) -> Result<Vec<u8>, ScepError> {
    let mut attrs = Attributes::new();
    attrs.insert(attr(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA)?)?)?;
    attrs.insert(attr(ID_MESSAGE_DIGEST, octets(&digest.digest(content.unwrap_or_default()))?)?)?;
    if let Some(t) = signing_time {
        let time = x509_cert::time::Time::UtcTime(der::asn1::UtcTime::from_system_time(t)?);
        attrs.insert(attr(ID_SIGNING_TIME, Any::encode_from(&time)?)?)?;
    }
    for a in scep_attrs {
        attrs.insert(a)?;
    }
    let signature = signer.key.sign_pkcs1v15(digest, &attrs.to_der()?)?;
    let tbs = signer.cert.tbs_certificate();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: AlgorithmIdentifierOwned { oid: digest.oid(), parameters: None },
        signed_attrs: Some(attrs),
        signature_algorithm: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(Any::from(Null)) },
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(AlgorithmIdentifierOwned { oid: digest.oid(), parameters: None })?;
    let econtent = content.map(|c| Any::encode_from(&OctetString::new(c)?)).transpose()?;
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo { econtent_type: ID_DATA, econtent },
        certificates: Some(CertificateSet::try_from(
            std::iter::once(signer.cert)
                .chain(extra_certs)
                .map(|c| CertificateChoices::Certificate(c.clone()))
                .collect::<Vec<_>>(),
        )?),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    Ok(ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&sd)? }.to_der()?)
}

/// A CertRep (RFC 8894 section 3.3.2) answering `reply`: transactionID echoed,
/// recipientNonce = the request's senderNonce, a fresh senderNonce; `envelope` (the
/// encrypted degenerate SignedData) only for SUCCESS.
pub fn cert_rep(
    ra: &Signer<'_>,
    reply: &ReplyTo,
    status: PkiStatus,
    fail: Option<FailInfo>,
    envelope: Option<&[u8]>,
) -> Result<Vec<u8>, ScepError> {
    let mut attrs = vec![
        attr(MESSAGE_TYPE, printable(MessageType::CertRep.code())?)?,
        attr(PKI_STATUS, printable(status.code())?)?,
        attr(TRANSACTION_ID, reply.transaction_id.clone())?,
        attr(SENDER_NONCE, octets(&random_bytes(16)?)?)?,
        attr(RECIPIENT_NONCE, octets(&reply.sender_nonce)?)?,
    ];
    if let Some(f) = fail {
        attrs.push(attr(FAIL_INFO, printable(&f.code().to_string())?)?);
    }
    signed_message(ra, reply.digest, envelope, attrs, Some(SystemTime::now()))
}

/// A degenerate certs-only SignedData holding `certs` (DER, order kept as given where
/// DER's SET OF ordering allows) and `crls`.
pub fn degenerate(certs: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Vec<u8>, ScepError> {
    let certificates = if certs.is_empty() {
        None
    } else {
        let mut set = SetOfVec::new();
        for c in certs {
            set.insert(CertificateChoices::Certificate(Certificate::from_der(c)?))?;
        }
        Some(CertificateSet(set))
    };
    let crls = if crls.is_empty() {
        None
    } else {
        let mut set = SetOfVec::new();
        for c in crls {
            set.insert(RevocationInfoChoice::Crl(CertificateList::from_der(c)?))?;
        }
        Some(RevocationInfoChoices(set))
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None },
        certificates,
        crls,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    Ok(ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&sd)? }.to_der()?)
}

/// Certificates and CRLs (DER each) of a degenerate SignedData.
pub type DegenerateContents = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The certificates and CRLs of a degenerate SignedData (what a client extracts).
pub fn degenerate_contents(der: &[u8]) -> Result<DegenerateContents, ScepError> {
    let ci: ContentInfo = super::decode_ber_or_der(der)?;
    let sd: SignedData = ci.content.decode_as().map_err(|e: der::Error| ScepError::Malformed(e.to_string()))?;
    let certs = sd
        .certificates
        .map(|s| {
            s.0.iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => c.to_der().ok(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let crls = sd
        .crls
        .map(|s| {
            s.0.iter()
                .filter_map(|c| match c {
                    RevocationInfoChoice::Crl(c) => c.to_der().ok(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((certs, crls))
}
