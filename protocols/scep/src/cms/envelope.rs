//! pkcsPKIEnvelope (RFC 8894 section 3.2.2): CMS EnvelopedData with one key-transport
//! recipient per RA/CA certificate.
//!
//! ```text
//! EnvelopedData ::= SEQUENCE {
//!   version CMSVersion,                    -- 0
//!   recipientInfos RecipientInfos,         -- KeyTransRecipientInfo, rsaEncryption
//!   encryptedContentInfo EncryptedContentInfo {
//!     contentType id-data,
//!     contentEncryptionAlgorithm { aes128-CBC | aes256-CBC | des-ede3-cbc | desCBC, IV },
//!     encryptedContent [0] IMPLICIT OCTET STRING } }
//! ```
//! (RFC 5652 section 6.1, RFC 3370 section 4.2.1 for RSA PKCS#1 v1.5 key transport).
//!
//! The RA's RSA decryption runs in AWS-LC ([`crate::rsa_key::RaKey`]: constant-time
//! arithmetic and padding check). Its outcome takes no path an attacker could time: a
//! random fallback key is drawn before decrypting, whatever comes out; the content is
//! decrypted once in either case with the key chosen between the two by a constant-time
//! selection; a key-transport failure is reported exactly as a content-decryption
//! failure (badMessageCheck). So neither the reply nor its timing is a padding oracle.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use const_oid::db::rfc5912::RSA_ENCRYPTION;
use der::asn1::{Any, Null, OctetString};
use der::{Decode, Encode};
use des::{Des, TdesEde3};
use spki::AlgorithmIdentifierOwned;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::Zeroizing;

use super::{decode_ber_or_der, random_bytes};
use crate::algorithms::ContentAlg;
use crate::error::ScepError;
use crate::message::{ID_DATA, ID_ENVELOPED_DATA};
use crate::rsa_key::RsaPrivate;
use crate::rsa_public::RequesterKey;

/// Opens a pkcsPKIEnvelope addressed to `ra_cert`, returning the content and the
/// algorithm it was encrypted with.
pub fn open(
    der: &[u8],
    ra_cert: &Certificate,
    ra_key: &dyn RsaPrivate,
    legacy: bool,
) -> Result<(Zeroizing<Vec<u8>>, ContentAlg), ScepError> {
    // An envelope that cannot be decoded cannot be opened: badMessageCheck, like one
    // addressed to another RA. A constructed encryptedContent (Go's pkcs7: Debian's
    // scep 2.1.0 client, micromdm's scepserver) is rewritten to DER first (`ber.rs`).
    let ci: ContentInfo =
        decode_ber_or_der(der).map_err(|e| ScepError::BadMessageCheck(format!("pkcsPKIEnvelope: {e}")))?;
    if ci.content_type != ID_ENVELOPED_DATA {
        return Err(ScepError::BadRequest(format!(
            "pkcsPKIEnvelope content type {} is not envelopedData",
            ci.content_type
        )));
    }
    let env: EnvelopedData = ci
        .content
        .decode_as()
        .or_else(|_| decode_ber_or_der(&ci.content.to_der()?))
        .or_else(|e| match super::ber::primitive_encrypted_content(&ci.content.to_der()?) {
            Ok(Some(der)) => EnvelopedData::from_der(&der).map_err(ScepError::from),
            _ => Err(e),
        })
        .map_err(|e: ScepError| ScepError::BadMessageCheck(format!("EnvelopedData cannot be decoded: {e}")))?;
    let eci = &env.encrypted_content;
    let alg = ContentAlg::from_oid(&eci.content_enc_alg.oid, legacy)?;
    let iv = eci
        .content_enc_alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetString>().ok())
        .filter(|iv| iv.as_bytes().len() == alg.iv_len())
        .ok_or_else(|| ScepError::BadRequest(format!("{} without a valid IV parameter", alg.name())))?;
    let ciphertext = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| ScepError::BadRequest("EnvelopedData without encryptedContent".into()))?;

    let ktri = env
        .recip_infos
        .0
        .iter()
        .find_map(|ri| match ri {
            RecipientInfo::Ktri(k) if recipient_matches(ra_cert, &k.rid) => Some(k),
            _ => None,
        })
        .ok_or_else(|| {
            ScepError::BadMessageCheck("the message is not encrypted to this endpoint's RA certificate".into())
        })?;
    if ktri.key_enc_alg.oid != RSA_ENCRYPTION {
        return Err(ScepError::BadAlg(format!(
            "key transport algorithm {} (expected rsaEncryption)",
            ktri.key_enc_alg.oid
        )));
    }
    let (cek, key_ok) = transported_key(ra_key, ktri.enc_key.as_bytes(), alg.key_len())?;
    let plain = decrypt(alg, &cek, iv.as_bytes(), ciphertext.as_bytes());
    match plain {
        Some(p) if bool::from(key_ok) => Ok((p, alg)),
        _ => Err(ScepError::BadMessageCheck("the envelope cannot be decrypted".into())),
    }
}

/// The content-encryption key from `enc_key`, or a random key of the same length when
/// it does not decrypt to one of `len` bytes; chosen without branching on which.
fn transported_key(
    ra_key: &dyn RsaPrivate,
    enc_key: &[u8],
    len: usize,
) -> Result<(Zeroizing<Vec<u8>>, Choice), ScepError> {
    let mut cek = Zeroizing::new(random_bytes(len)?);
    let (decrypted, decrypted_ok) = match ra_key.decrypt_pkcs1v15(enc_key) {
        Some(d) => (d, Choice::from(1)),
        None => (Zeroizing::new(Vec::new()), Choice::from(0)),
    };
    let fits = decrypted_ok & (decrypted.len() as u64).ct_eq(&(len as u64));
    let mut padded = Zeroizing::new(vec![0u8; len]);
    let n = decrypted.len().min(len);
    padded[..n].copy_from_slice(&decrypted[..n]);
    for (c, d) in cek.iter_mut().zip(padded.iter()) {
        c.conditional_assign(d, fits);
    }
    Ok((cek, fits))
}

/// `content` encrypted under a fresh content-encryption key, and that key encrypted to
/// the RSA key `spki_der` (PKCS #1 v1.5 key transport, as SCEP clients expect).
struct Encrypted {
    enc_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn encrypt_to(spki_der: &[u8], alg: ContentAlg, content: &[u8]) -> Result<Encrypted, ScepError> {
    let key = RequesterKey::from_spki(spki_der, "the key of the requester's certificate")?;
    let cek = Zeroizing::new(random_bytes(alg.key_len())?);
    let iv = random_bytes(alg.iv_len())?;
    let ciphertext = encrypt(alg, &cek, &iv, content);
    let enc_key = key.encrypt_pkcs1v15(&cek)?;
    Ok(Encrypted { enc_key, iv, ciphertext })
}

/// Encrypts `content` to `recipient` (its RSA key) with `alg`, as a ContentInfo DER.
pub fn seal(content: &[u8], recipient: &Certificate, alg: ContentAlg) -> Result<Vec<u8>, ScepError> {
    let tbs = recipient.tbs_certificate();
    let Encrypted { enc_key, iv, ciphertext } = encrypt_to(&tbs.subject_public_key_info().to_der()?, alg, content)?;
    let rid = RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    });
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid,
        key_enc_alg: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(Any::from(Null)) },
        enc_key: OctetString::new(enc_key)?,
    };
    let env = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos::try_from(vec![RecipientInfo::Ktri(ktri)])?,
        encrypted_content: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: alg.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(OctetString::new(ciphertext)?),
        },
        unprotected_attrs: None,
    };
    let ci = ContentInfo { content_type: ID_ENVELOPED_DATA, content: Any::encode_from(&env)? };
    Ok(ci.to_der()?)
}

/// [`seal`] for a requester certificate that only decodes without the RFC 5280
/// serial-number check (certmonger's self-signed certificate, 33-octet serial): the same
/// EnvelopedData, its KeyTransRecipientInfo assembled element by element so the serial
/// number is echoed as the certificate carries it.
pub fn seal_to_der(content: &[u8], recipient_der: &[u8], alg: ContentAlg) -> Result<Vec<u8>, ScepError> {
    use der::{Tag, Tagged};
    if let Ok(cert) = Certificate::from_der(recipient_der) {
        return seal(content, &cert, alg);
    }
    let cert = super::incoming::lenient::LenientCertificate::from_der(recipient_der)
        .map_err(|e| ScepError::BadMessageCheck(format!("requester certificate: {e}")))?;
    let tbs = cert.tbs_certificate();
    let Encrypted { enc_key, iv, ciphertext } = encrypt_to(&tbs.subject_public_key_info().to_der()?, alg, content)?;
    let constructed =
        |tag: Tag, parts: &[Vec<u8>]| -> Result<Vec<u8>, ScepError> { Ok(Any::new(tag, parts.concat())?.to_der()?) };
    let version = CmsVersion::V0.to_der()?;
    let rid = constructed(Tag::Sequence, &[tbs.issuer().to_der()?, tbs.serial_number().to_der()?])?;
    let key_enc_alg = AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(Any::from(Null)) }.to_der()?;
    let ktri = constructed(Tag::Sequence, &[version.clone(), rid, key_enc_alg, OctetString::new(enc_key)?.to_der()?])?;
    let eci = EncryptedContentInfo {
        content_type: ID_DATA,
        content_enc_alg: AlgorithmIdentifierOwned {
            oid: alg.oid(),
            parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
        },
        encrypted_content: Some(OctetString::new(ciphertext)?),
    };
    let env = constructed(Tag::Sequence, &[version, constructed(Tag::Set, &[ktri])?, eci.to_der()?])?;
    let env = Any::from_der(&env)?;
    debug_assert_eq!(env.tag(), Tag::Sequence);
    let ci = ContentInfo { content_type: ID_ENVELOPED_DATA, content: env };
    Ok(ci.to_der()?)
}

fn recipient_matches(cert: &Certificate, rid: &RecipientIdentifier) -> bool {
    let tbs = cert.tbs_certificate();
    match rid {
        RecipientIdentifier::IssuerAndSerialNumber(ias) => {
            tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
        }
        RecipientIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, k))) if k == *ski)
        }
    }
}

fn decrypt(alg: ContentAlg, key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    fn run<C: BlockDecryptMut + KeyIvInit>(key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        C::new_from_slices(key, iv).ok()?.decrypt_padded_vec_mut::<Pkcs7>(ct).ok().map(Zeroizing::new)
    }
    match alg {
        ContentAlg::Aes128Cbc => run::<cbc::Decryptor<Aes128>>(key, iv, ct),
        ContentAlg::Aes192Cbc => run::<cbc::Decryptor<Aes192>>(key, iv, ct),
        ContentAlg::Aes256Cbc => run::<cbc::Decryptor<Aes256>>(key, iv, ct),
        ContentAlg::DesEde3Cbc => run::<cbc::Decryptor<TdesEde3>>(key, iv, ct),
        ContentAlg::DesCbc => run::<cbc::Decryptor<Des>>(key, iv, ct),
    }
}

fn encrypt(alg: ContentAlg, key: &[u8], iv: &[u8], pt: &[u8]) -> Vec<u8> {
    fn run<C: BlockEncryptMut + KeyIvInit>(key: &[u8], iv: &[u8], pt: &[u8]) -> Vec<u8> {
        // Key and IV lengths come from `alg`, so construction cannot fail.
        C::new_from_slices(key, iv).map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(pt)).unwrap_or_default()
    }
    match alg {
        ContentAlg::Aes128Cbc => run::<cbc::Encryptor<Aes128>>(key, iv, pt),
        ContentAlg::Aes192Cbc => run::<cbc::Encryptor<Aes192>>(key, iv, pt),
        ContentAlg::Aes256Cbc => run::<cbc::Encryptor<Aes256>>(key, iv, pt),
        ContentAlg::DesEde3Cbc => run::<cbc::Encryptor<TdesEde3>>(key, iv, pt),
        ContentAlg::DesCbc => run::<cbc::Encryptor<Des>>(key, iv, pt),
    }
}

/// Decodes an EnvelopedData recipient list's identifiers (for diagnostics and tests).
pub fn recipients(der: &[u8]) -> Result<Vec<RecipientIdentifier>, ScepError> {
    let ci = ContentInfo::from_der(der).map_err(|e| ScepError::BadRequest(e.to_string()))?;
    let env: EnvelopedData = ci.content.decode_as().map_err(|e: der::Error| ScepError::BadRequest(e.to_string()))?;
    Ok(env
        .recip_infos
        .0
        .iter()
        .filter_map(|r| match r {
            RecipientInfo::Ktri(k) => Some(k.rid.clone()),
            _ => None,
        })
        .collect())
}
