//! Encrypted return of server-generated keys (RFC 7030 4.4.1.2 and 4.4.2): the
//! AsymmetricKeyPackage (RFC 5958) is signed (SignedData, [`crate::cms::signed_data`])
//! and then enveloped for the client:
//!
//! ```text
//! EnvelopedData ::= SEQUENCE {
//!     version CMSVersion,
//!     originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//!     recipientInfos RecipientInfos,
//!     encryptedContentInfo EncryptedContentInfo,
//!     unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
//! KeyTransRecipientInfo ::= SEQUENCE {
//!     version CMSVersion,  -- 0 with issuerAndSerialNumber
//!     rid RecipientIdentifier,
//!     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
//!     encryptedKey EncryptedKey }
//! ```
//! (RFC 5652 section 6). The client names its key with the AsymmetricDecryptKeyIdentifier
//! CSR attribute (the key's subjectKeyIdentifier, RFC 7030 4.4.1.2); pkiplane knows the
//! public key of exactly one key of the client: the one of its TLS client certificate.
//! The content is encrypted with a fresh AES-256 key in CBC mode (RFC 3565), which is
//! transported with RSAES-OAEP and SHA-256 (RFC 8017, RFC 4055), so the client's
//! certificate must hold an RSA key. EC keys would need KeyAgreeRecipientInfo and
//! symmetric keys (DecryptKeyIdentifier, 4.4.1.1) a pre-shared key store, neither of
//! which pkiplane has: those requests get a clear 400 before anything is issued.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use pkiplane_core::keys::PublicKeyInfo;
use pkiplane_core::x509::cert::CertInfo;
use ring::rand::{SecureRandom, SystemRandom};
use rsa::pkcs8::DecodePublicKey;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::request::CertReq;
use zeroize::Zeroizing;

use crate::cms::{ID_ENVELOPED_DATA, ID_SHA256, content_info};

/// id-aa-decryptKeyID (RFC 7030 4.4.1.1): a symmetric key shared with the server.
pub const ID_AA_DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.37");
/// id-aa-asymmDecryptKeyID (RFC 7030 4.4.1.2): the client's key to encrypt to.
pub const ID_AA_ASYMM_DECRYPT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.54");
/// id-ct-KP-aKeyPackage (RFC 5958 section 3).
pub const ID_CT_KP_A_KEY_PACKAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.2.78.5");
/// id-aes256-CBC (RFC 3565 section 4.1).
pub const ID_AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
/// id-RSAES-OAEP (RFC 8017 appendix A.2.1).
pub const ID_RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
/// id-mgf1 (RFC 8017 appendix B.2.1).
pub const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");

/// How the client asked for its server-generated key to be protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProtection {
    /// TLS only: the key is returned as `application/pkcs8`.
    None,
    /// DecryptKeyIdentifier: the identifier of a pre-shared symmetric key.
    Symmetric(Vec<u8>),
    /// AsymmetricDecryptKeyIdentifier: the subjectKeyIdentifier of the client's key.
    Asymmetric(Vec<u8>),
}

/// Reads the protection attributes of a CSR (already verified as a PKCS#10).
pub fn requested_protection(csr_der: &[u8]) -> Result<KeyProtection, String> {
    let req = CertReq::from_der(csr_der).map_err(|e| e.to_string())?;
    for attr in req.info.attributes.iter() {
        let value = || -> Result<Vec<u8>, String> {
            let v = attr.values.iter().next().ok_or("the attribute has no value")?;
            let octets: OctetString =
                v.decode_as().map_err(|e| format!("the attribute is not an OCTET STRING: {e}"))?;
            Ok(octets.as_bytes().to_vec())
        };
        if attr.oid == ID_AA_DECRYPT_KEY_ID {
            return Ok(KeyProtection::Symmetric(value().map_err(|e| format!("DecryptKeyIdentifier: {e}"))?));
        }
        if attr.oid == ID_AA_ASYMM_DECRYPT_KEY_ID {
            return Ok(KeyProtection::Asymmetric(value().map_err(|e| format!("AsymmetricDecryptKeyIdentifier: {e}"))?));
        }
    }
    Ok(KeyProtection::None)
}

/// The key identifier of a certificate: its subjectKeyIdentifier, else the SHA-1 of the
/// subjectPublicKey bits (RFC 5280 4.2.1.2 method 1).
pub fn key_identifier(cert: &CertInfo) -> Vec<u8> {
    cert.subject_key_id.clone().unwrap_or_else(|| {
        let bits = cert.spki.subject_public_key.raw_bytes();
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bits).as_ref().to_vec()
    })
}

/// Whether pkiplane can envelope to this certificate's key, and if not why.
pub fn can_envelope_to(cert: &CertInfo) -> Result<(), String> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&cert.spki_der).map_err(|e| e.to_string())?;
    match PublicKeyInfo::from_spki(&spki) {
        PublicKeyInfo::Rsa { .. } => Ok(()),
        other => Err(format!(
            "encrypted key return needs an RSA key to transport the content key to (KeyTransRecipientInfo); the identified key is {other}, which would need KeyAgreeRecipientInfo, not offered"
        )),
    }
}

/// RSAES-OAEP-params with SHA-256 and MGF1-SHA-256 (RFC 4055 section 3.1).
#[derive(Sequence)]
struct OaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
}

fn oaep_sha256() -> der::Result<AlgorithmIdentifierOwned> {
    let sha256 = AlgorithmIdentifierOwned { oid: ID_SHA256, parameters: None };
    let params = OaepParams {
        hash: sha256.clone(),
        mask_gen: AlgorithmIdentifierOwned { oid: ID_MGF1, parameters: Some(Any::encode_from(&sha256)?) },
    };
    Ok(AlgorithmIdentifierOwned { oid: ID_RSAES_OAEP, parameters: Some(Any::encode_from(&params)?) })
}

/// An EnvelopedData (in a ContentInfo, DER) of `content` (of type `content_type`) for
/// the RSA key of `recipient`.
pub fn envelope(content_type: ObjectIdentifier, content: &[u8], recipient: &CertInfo) -> Result<Vec<u8>, String> {
    can_envelope_to(recipient)?;
    let err = |e: der::Error| e.to_string();
    let rng = SystemRandom::new();
    let mut cek = Zeroizing::new([0u8; 32]);
    let mut iv = [0u8; 16];
    rng.fill(cek.as_mut()).map_err(|_| "the random generator failed")?;
    rng.fill(&mut iv).map_err(|_| "the random generator failed")?;
    let encrypted = cbc::Encryptor::<aes::Aes256>::new_from_slices(cek.as_ref(), &iv)
        .map_err(|e| e.to_string())?
        .encrypt_padded_vec_mut::<Pkcs7>(content);

    let public = rsa::RsaPublicKey::from_public_key_der(&recipient.spki_der).map_err(|e| e.to_string())?;
    let wrapped = public
        .encrypt(&mut rand_core::OsRng, rsa::Oaep::new::<rsa::sha2::Sha256>(), cek.as_ref())
        .map_err(|e| format!("RSA-OAEP: {e}"))?;
    let cert = Certificate::from_der(&recipient.der).map_err(err)?;
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        }),
        key_enc_alg: oaep_sha256().map_err(err)?,
        enc_key: OctetString::new(wrapped).map_err(err)?,
    };
    let mut infos = SetOfVec::new();
    infos.insert(RecipientInfo::Ktri(ktri)).map_err(err)?;
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(infos),
        encrypted_content: EncryptedContentInfo {
            content_type,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: ID_AES256_CBC,
                parameters: Some(Any::encode_from(&OctetString::new(iv.to_vec()).map_err(err)?).map_err(err)?),
            },
            encrypted_content: Some(OctetString::new(encrypted).map_err(err)?),
        },
        unprotected_attrs: None,
    };
    content_info(ID_ENVELOPED_DATA, &ed).map_err(err)
}

/// `AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey` (RFC 5958
/// section 3) holding one PKCS#8 key.
pub fn key_package(pkcs8: &[u8]) -> der::Result<Zeroizing<Vec<u8>>> {
    let one = der::asn1::AnyRef::try_from(pkcs8)?;
    Ok(Zeroizing::new(vec![one].to_der()?))
}
