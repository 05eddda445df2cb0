//! Key generation. ECDSA and Ed25519 keys come from `ring`; RSA keys from the RustCrypto
//! `rsa` crate (ring cannot generate RSA keys). Everything leaves as PKCS#8 DER.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use zeroize::Zeroizing;

use super::KeyAlgorithm;

/// A private key as PKCS#8 DER. Wiped when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey {
    pub algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl SecretKey {
    pub fn from_pkcs8(algorithm: KeyAlgorithm, pkcs8: Vec<u8>) -> Self {
        Self { algorithm, pkcs8: Zeroizing::new(pkcs8) }
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// PEM (`PRIVATE KEY`), for handing a server-generated key to its owner.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::x509::pem::encode("PRIVATE KEY", &self.pkcs8))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, <redacted>)", self.algorithm)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("key generation failed: {0}")]
pub struct KeyGenError(String);

/// Generates a fresh key pair.
pub fn generate_key(algorithm: KeyAlgorithm) -> Result<SecretKey, KeyGenError> {
    let rng = SystemRandom::new();
    let pkcs8 = match algorithm {
        KeyAlgorithm::EcdsaP256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| KeyGenError("ECDSA P-256".into()))?
            .as_ref()
            .to_vec(),
        KeyAlgorithm::EcdsaP384 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
            .map_err(|_| KeyGenError("ECDSA P-384".into()))?
            .as_ref()
            .to_vec(),
        KeyAlgorithm::Ed25519 => {
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyGenError("Ed25519".into()))?.as_ref().to_vec()
        }
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            use rsa::pkcs8::EncodePrivateKey;
            let bits = match algorithm {
                KeyAlgorithm::Rsa2048 => 2048,
                KeyAlgorithm::Rsa3072 => 3072,
                _ => 4096,
            };
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits)
                .map_err(|e| KeyGenError(format!("RSA {bits}: {e}")))?;
            key.to_pkcs8_der().map_err(|e| KeyGenError(format!("RSA {bits}: {e}")))?.as_bytes().to_vec()
        }
    };
    Ok(SecretKey::from_pkcs8(algorithm, pkcs8))
}
