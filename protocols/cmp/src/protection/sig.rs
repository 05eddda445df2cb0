//! Signature verification with `ring` for message protection and proof of possession
//! (RFC 9481 section 3): ECDSA P-256/P-384 with SHA-256/384, RSA PKCS#1 v1.5 and PSS with
//! SHA-256/384/512, Ed25519.
//!
//! The mapping mirrors the core's CSR check (`pkiplane_core::x509::csr`); RSASSA-PSS
//! parameters are read by the core's `rsa_pss_verifier` for both.

use der::Encode as _;
use der08::Decode as _;
use pkiplane_core::keys::{Curve, PublicKeyInfo};
use pkiplane_core::x509::csr::{PssRefusal, rsa_pss_verifier};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use spki07::AlgorithmIdentifierOwned;

use crate::wire::oids;

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigError {
    /// The algorithm or key is not one pkiplane verifies (`badAlg`).
    #[error("{0}")]
    Unsupported(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Invalid,
    /// The key is malformed.
    #[error("malformed public key: {0}")]
    BadKey(String),
}

fn algorithm(
    alg: &AlgorithmIdentifierOwned,
    key: &PublicKeyInfo,
) -> Result<&'static dyn VerificationAlgorithm, SigError> {
    let oid = alg.oid;
    let unsupported = || SigError::Unsupported(format!("signature algorithm {oid} is not supported for a {key} key"));
    match key {
        PublicKeyInfo::Ecdsa(Curve::P256) if oid == oids::ECDSA_WITH_SHA256 => Ok(&signature::ECDSA_P256_SHA256_ASN1),
        PublicKeyInfo::Ecdsa(Curve::P256) if oid == oids::ECDSA_WITH_SHA384 => Ok(&signature::ECDSA_P256_SHA384_ASN1),
        PublicKeyInfo::Ecdsa(Curve::P384) if oid == oids::ECDSA_WITH_SHA256 => Ok(&signature::ECDSA_P384_SHA256_ASN1),
        PublicKeyInfo::Ecdsa(Curve::P384) if oid == oids::ECDSA_WITH_SHA384 => Ok(&signature::ECDSA_P384_SHA384_ASN1),
        PublicKeyInfo::Rsa { bits } if *bits < 2048 => Err(SigError::Unsupported(format!("RSA {bits} is too weak"))),
        PublicKeyInfo::Rsa { .. } if oid == oids::SHA256_WITH_RSA => Ok(&signature::RSA_PKCS1_2048_8192_SHA256),
        PublicKeyInfo::Rsa { .. } if oid == oids::SHA384_WITH_RSA => Ok(&signature::RSA_PKCS1_2048_8192_SHA384),
        PublicKeyInfo::Rsa { .. } if oid == oids::SHA512_WITH_RSA => Ok(&signature::RSA_PKCS1_2048_8192_SHA512),
        PublicKeyInfo::Rsa { .. } if oid == oids::RSASSA_PSS => {
            let params = alg.parameters.as_ref().and_then(|p| p.to_der().ok());
            rsa_pss_verifier(params.as_deref()).map_err(|refusal| {
                SigError::Unsupported(match refusal {
                    PssRefusal::Malformed => "RSASSA-PSS without valid parameters".into(),
                    PssRefusal::Unsupported => {
                        "RSASSA-PSS other than SHA-256/384/512 with the salt as long as the hash".into()
                    }
                })
            })
        }
        PublicKeyInfo::Ed25519 if oid == oids::ED25519 => Ok(&signature::ED25519),
        PublicKeyInfo::Other(what) => Err(SigError::Unsupported(format!("public key {what} is not supported"))),
        _ => Err(unsupported()),
    }
}

/// The key a SubjectPublicKeyInfo (DER) holds, as the policy sees it.
pub fn key_info(spki_der: &[u8]) -> Result<PublicKeyInfo, SigError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|e| SigError::BadKey(e.to_string()))?;
    Ok(PublicKeyInfo::from_spki(&spki))
}

/// Verifies `signature` over `message` with the key in `spki_der` (a DER
/// SubjectPublicKeyInfo) and the algorithm `alg`.
pub fn verify(
    alg: &AlgorithmIdentifierOwned,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    let key = key_info(spki_der)?;
    let verifier = algorithm(alg, &key)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(|e| SigError::BadKey(e.to_string()))?;
    let bits = spki.subject_public_key.as_bytes().ok_or_else(|| SigError::BadKey("unused bits".into()))?;
    UnparsedPublicKey::new(verifier, bits).verify(message, signature).map_err(|_| SigError::Invalid)
}

/// The digest a certificate's signature algorithm uses, for certConf's certHash
/// (RFC 9810 section 5.3.18; Ed25519 certificates hash with SHA-512 per RFC 9481
/// section 2).
pub fn cert_hash_algorithm(sig_alg: &der::asn1::ObjectIdentifier) -> &'static ring::digest::Algorithm {
    match *sig_alg {
        o if o == oids::ECDSA_WITH_SHA384 || o == oids::SHA384_WITH_RSA => &ring::digest::SHA384,
        o if o == oids::ECDSA_WITH_SHA512 || o == oids::SHA512_WITH_RSA || o == oids::ED25519 => &ring::digest::SHA512,
        _ => &ring::digest::SHA256,
    }
}

/// A digest algorithm by OID (certConf's hashAlg).
pub fn digest_by_oid(oid: &der::asn1::ObjectIdentifier) -> Option<&'static ring::digest::Algorithm> {
    match *oid {
        o if o == oids::SHA256 => Some(&ring::digest::SHA256),
        o if o == oids::SHA384 => Some(&ring::digest::SHA384),
        o if o == oids::SHA512 => Some(&ring::digest::SHA512),
        _ => None,
    }
}
