//! The CMS structures EST sends (RFC 5652), built from the RustCrypto `cms` types.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY }
//! SignedData ::= SEQUENCE {
//!     version CMSVersion,
//!     digestAlgorithms DigestAlgorithmIdentifiers,
//!     encapContentInfo EncapsulatedContentInfo,
//!     certificates [0] IMPLICIT CertificateSet OPTIONAL,
//!     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//!     signerInfos SignerInfos }
//! ```
//! A certs-only response (RFC 7030 4.1.3, 4.2.3; the "degenerate" SignedData of RFC 5652
//! section 5.1 / RFC 5272 "Simple PKI Response") has no signers, no digest algorithms and
//! an absent id-data content: it only carries certificates.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use pkiplane_core::keys::CaSigner;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

/// id-data (RFC 5652 section 4).
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData (RFC 5652 section 5.1).
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-envelopedData (RFC 5652 section 6.1).
pub const ID_ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
/// id-contentType signed attribute (RFC 5652 section 11.1).
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest signed attribute (RFC 5652 section 11.2).
pub const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-sha256 (RFC 5754 section 2.2).
pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384.
pub const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");

/// Wraps `content` of type `content_type` in a ContentInfo.
pub fn content_info<T: der::EncodeValue + der::Tagged>(
    content_type: ObjectIdentifier,
    content: &T,
) -> der::Result<Vec<u8>> {
    ContentInfo { content_type, content: Any::encode_from(content)? }.to_der()
}

fn certificate_set(certs: &[Vec<u8>]) -> der::Result<CertificateSet> {
    let mut set = SetOfVec::new();
    for der in certs {
        let choice = CertificateChoices::Certificate(Certificate::from_der(der)?);
        if !set.iter().any(|c| c == &choice) {
            set.insert(choice)?;
        }
    }
    Ok(CertificateSet(set))
}

/// A certs-only SignedData in a ContentInfo (DER), carrying `certs` (DER each).
pub fn certs_only(certs: &[Vec<u8>]) -> der::Result<Vec<u8>> {
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None },
        certificates: Some(certificate_set(certs)?),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    content_info(ID_SIGNED_DATA, &sd)
}

/// The certificates of a certs-only (or any) SignedData ContentInfo, DER each.
pub fn certificates_of(content_info_der: &[u8]) -> der::Result<Vec<Vec<u8>>> {
    let ci = ContentInfo::from_der(content_info_der)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(der::Error::from(der::ErrorKind::OidUnknown { oid: ci.content_type }));
    }
    let sd: SignedData = ci.content.decode_as()?;
    let mut out = Vec::new();
    for c in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let CertificateChoices::Certificate(cert) = c {
            out.push(cert.to_der()?);
        }
    }
    Ok(out)
}

/// A SignedData (in a ContentInfo) over `econtent` of type `econtent_type`, signed by
/// `signer` whose certificate is `signer_cert` (DER), carrying `certs` (signer first),
/// with the contentType and messageDigest signed attributes (RFC 5652 section 5.3).
pub fn signed_data(
    econtent_type: ObjectIdentifier,
    econtent: &[u8],
    signer: &CaSigner,
    signer_cert: &[u8],
    certs: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let err = |e: der::Error| e.to_string();
    let cert = Certificate::from_der(signer_cert).map_err(err)?;
    let sig_alg = signer.signature_algorithm().algorithm_identifier();
    let (digest_oid, digest_alg) = match signer.signature_algorithm() {
        pkiplane_core::keys::SignatureAlgorithm::EcdsaSha384 => (ID_SHA384, &ring::digest::SHA384),
        _ => (ID_SHA256, &ring::digest::SHA256),
    };
    let digest = ring::digest::digest(digest_alg, econtent);
    let digest_alg_id = AlgorithmIdentifierOwned { oid: digest_oid, parameters: None };
    let mut attrs = SetOfVec::new();
    attrs.insert(attribute(ID_CONTENT_TYPE, Any::encode_from(&econtent_type).map_err(err)?)?).map_err(err)?;
    let md = OctetString::new(digest.as_ref()).map_err(err)?;
    attrs.insert(attribute(ID_MESSAGE_DIGEST, Any::encode_from(&md).map_err(err)?)?).map_err(err)?;
    // The signature covers the DER of the attributes as an explicit SET OF (RFC 5652 5.4).
    let to_sign = attrs.to_der().map_err(err)?;
    let signature = signer.sign(&to_sign).map_err(|e| e.to_string())?;
    let tbs = cert.tbs_certificate();
    let info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: digest_alg_id.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: sig_alg,
        signature: OctetString::new(signature).map_err(err)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_alg_id).map_err(err)?;
    let mut infos = SetOfVec::new();
    infos.insert(info).map_err(err)?;
    let sd = SignedData {
        version: CmsVersion::V3,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type,
            econtent: Some(Any::new(Tag::OctetString, econtent).map_err(err)?),
        },
        certificates: Some(certificate_set(certs).map_err(err)?),
        crls: None,
        signer_infos: SignerInfos(infos),
    };
    content_info(ID_SIGNED_DATA, &sd).map_err(err)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, String> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(|e| e.to_string())?;
    Ok(Attribute { oid, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_certs_only_round_trips() {
        let empty = certs_only(&[]).unwrap();
        assert_eq!(certificates_of(&empty).unwrap(), Vec::<Vec<u8>>::new());
        assert!(certificates_of(&[0x30, 0x00]).is_err());
    }
}
