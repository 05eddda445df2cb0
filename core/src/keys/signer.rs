//! CA signing keys backed by `aws-lc-rs` (AWS-LC, the BoringSSL-derived library): its
//! RSA signatures cost less than half of `ring`'s, ECDSA the same (measured on this
//! project's issuance bench), and it has a FIPS-validated build.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_SHA256, RsaKeyPair,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
    SHA_256_WITH_RSA_ENCRYPTION,
};
use der::asn1::{AnyRef, BitString, Null};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::algorithm::ID_ED25519;
use super::{KeyAlgorithm, SecretKey};

/// The signature algorithm a CA key signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    EcdsaSha256,
    EcdsaSha384,
    RsaPkcs1Sha256,
    Ed25519,
}

impl SignatureAlgorithm {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::EcdsaSha256 => ECDSA_WITH_SHA_256,
            SignatureAlgorithm::EcdsaSha384 => ECDSA_WITH_SHA_384,
            SignatureAlgorithm::RsaPkcs1Sha256 => SHA_256_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::Ed25519 => ID_ED25519,
        }
    }

    /// AlgorithmIdentifier as it appears in certificates and CRLs: RSA carries an explicit
    /// NULL parameter (RFC 4055), ECDSA and EdDSA none (RFC 5758, RFC 8410).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => Some(der::Any::from(AnyRef::from(Null))),
            _ => None,
        };
        AlgorithmIdentifierOwned { oid: self.oid(), parameters }
    }
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A CA private key ready to sign. `Debug` prints the algorithm and `<redacted>`.
pub struct CaSigner {
    algorithm: KeyAlgorithm,
    inner: Inner,
    rng: SystemRandom,
    spki: SubjectPublicKeyInfoOwned,
}

impl fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaSigner({}, <redacted>)", self.algorithm)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the private key is not a valid {0} PKCS#8 key")]
    BadKey(KeyAlgorithm),
    #[error("signing failed")]
    SignFailed,
}

impl CaSigner {
    /// Loads a PKCS#8 key of the given algorithm.
    pub fn new(key: &SecretKey) -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let algorithm = key.algorithm;
        let bad = || SignerError::BadKey(algorithm);
        let der = key.pkcs8_der();
        let (inner, spki) = match algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let (alg, curve) = if algorithm == KeyAlgorithm::EcdsaP256 {
                    (&ECDSA_P256_SHA256_ASN1_SIGNING, SECP_256_R_1)
                } else {
                    (&ECDSA_P384_SHA384_ASN1_SIGNING, SECP_384_R_1)
                };
                let kp = EcdsaKeyPair::from_pkcs8(alg, der).map_err(|_| bad())?;
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: ID_EC_PUBLIC_KEY,
                        parameters: Some(der::Any::encode_from(&curve).map_err(|_| bad())?),
                    },
                    subject_public_key: BitString::from_bytes(kp.public_key().as_ref()).map_err(|_| bad())?,
                };
                (Inner::Ecdsa(kp), spki)
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let kp = RsaKeyPair::from_pkcs8(der).map_err(|_| bad())?;
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: RSA_ENCRYPTION,
                        parameters: Some(der::Any::from(AnyRef::from(Null))),
                    },
                    subject_public_key: BitString::from_bytes(kp.public_key().as_ref()).map_err(|_| bad())?,
                };
                (Inner::Rsa(kp), spki)
            }
            KeyAlgorithm::Ed25519 => {
                let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| bad())?;
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned { oid: ID_ED25519, parameters: None },
                    subject_public_key: BitString::from_bytes(kp.public_key().as_ref()).map_err(|_| bad())?,
                };
                (Inner::Ed25519(kp), spki)
            }
        };
        Ok(Self { algorithm, inner, rng, spki })
    }

    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => SignatureAlgorithm::EcdsaSha256,
            KeyAlgorithm::EcdsaP384 => SignatureAlgorithm::EcdsaSha384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => SignatureAlgorithm::RsaPkcs1Sha256,
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// DER of the SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.spki.to_der().unwrap_or_default()
    }

    /// The subjectPublicKey bits (what key identifiers hash).
    pub fn public_key_bits(&self) -> &[u8] {
        self.spki.subject_public_key.raw_bytes()
    }

    /// Signs `message` (a DER-encoded TBS structure).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.inner {
            Inner::Ecdsa(kp) => {
                kp.sign(&self.rng, message).map(|s| s.as_ref().to_vec()).map_err(|_| SignerError::SignFailed)
            }
            Inner::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig).map_err(|_| SignerError::SignFailed)?;
                Ok(sig)
            }
            Inner::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }
}

/// Checks that a PKCS#8 key's public half equals `spki` (an imported key must match its
/// certificate).
pub fn key_matches_spki(key: &SecretKey, spki_der: &[u8]) -> bool {
    let Ok(signer) = CaSigner::new(key) else { return false };
    let Ok(expected) = SubjectPublicKeyInfoOwned::from_der(spki_der) else { return false };
    // Compare the key bits and algorithm OID; parameters encodings may differ (absent vs NULL).
    signer.spki.algorithm.oid == expected.algorithm.oid && signer.spki.subject_public_key == expected.subject_public_key
}
