//! Building PKCS#10 requests for keys pkiplane generates itself (endpoint TLS
//! certificates, EST server-side key generation), so that those certificates go through
//! the same policy and inventory as every other.
//!
//! ```text
//! CertificationRequest ::= SEQUENCE {
//!      certificationRequestInfo CertificationRequestInfo,
//!      signatureAlgorithm AlgorithmIdentifier,
//!      signature          BIT STRING }
//! ```
//! (RFC 2986 section 4.2).

use der::asn1::{AnyRef, BitString, SetOfVec};
use der::{Decode, Encode};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::{Name, RdnSequence};
use x509_cert::request::{CertReqInfo, Version};

use super::San;
use super::cert::{EncodeError, Signed};
use super::csr::EXTENSION_REQUEST;
use super::extensions::SUBJECT_ALT_NAME_OID;
use crate::keys::{CaSigner, SecretKey};

/// A DER CSR for `key` with `subject` and `sans`, signed by `key` itself.
pub fn build_csr(key: &SecretKey, subject: &RdnSequence, sans: &[San]) -> Result<Vec<u8>, EncodeError> {
    let signer = CaSigner::new(key)?;
    let mut attributes = SetOfVec::new();
    if !sans.is_empty() {
        let names = sans.iter().map(San::to_general_name).collect::<der::Result<Vec<_>>>()?;
        let ext = Extension {
            extn_id: SUBJECT_ALT_NAME_OID,
            critical: subject.is_empty(),
            extn_value: der::asn1::OctetString::new(SubjectAltName(names).to_der()?)?,
        };
        let mut values = SetOfVec::new();
        values.insert(der::Any::encode_from(&vec![ext])?)?;
        attributes.insert(Attribute { oid: EXTENSION_REQUEST, values })?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_der(&subject.to_der()?)?,
        public_key: signer.public_key_info().clone(),
        attributes,
    };
    let info_der = info.to_der()?;
    let signature = signer.sign(&info_der)?;
    let signed = Signed {
        tbs: AnyRef::from_der(&info_der)?,
        algorithm: signer.signature_algorithm().algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(signed.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, generate_key};
    use crate::x509::csr::{CsrOptions, ParsedCsr};
    use crate::x509::names::{SubjectAttribute, build_name};

    #[test]
    fn built_csrs_verify_for_every_key_type() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Ed25519, KeyAlgorithm::Rsa2048] {
            let key = generate_key(alg).unwrap();
            let subject = build_name(&[(SubjectAttribute::CommonName, "svc.localhost".into())]).unwrap();
            let sans = [San::Dns("svc.localhost".into()), San::Ip("127.0.0.1".parse().unwrap())];
            let der = build_csr(&key, &subject, &sans).unwrap();
            let csr = ParsedCsr::from_der(&der, CsrOptions::default()).unwrap();
            assert_eq!(csr.sans, sans);
            assert_eq!(csr.key, alg.public_info());
        }
    }
}
