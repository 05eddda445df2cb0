//! RSA public-key operations on a requester's key: checking the PKCS#1 v1.5 signature of
//! a pkiMessage, and PKCS#1 v1.5 key transport of a reply's content-encryption key.
//!
//! They run in AWS-LC (`aws-lc-rs`, already the RA key's home, several times faster than
//! the `rsa` crate's arithmetic) whenever AWS-LC takes the key: 2048 bits and up for
//! both; 1024 to 2047 bits for signatures through its `*_FOR_LEGACY_USE_ONLY`
//! parameters (SHA-1, SHA-256, SHA-512). Every other key the server accepted before (a
//! 1024-bit key signing with SHA-384, keys under 1024 bits, key transport to keys under
//! 2048 bits) stays on the `rsa` crate, so no client that enrolled before is refused
//! now. The `rsa` crate's parser stays the gate (an rsaEncryption key of at most 4096
//! bits, else badAlg), so the set of keys accepted is unchanged. Public-key operations
//! handle no secret, so the `rsa` crate's timing is no concern here.

use aws_lc_rs::rsa::{Pkcs1PublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::{self, RsaParameters, UnparsedPublicKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

use crate::algorithms::DigestAlg;
use crate::error::ScepError;

/// A requester's RSA public key (from a certificate's SubjectPublicKeyInfo).
pub struct RequesterKey<'a> {
    spki_der: &'a [u8],
    key: RsaPublicKey,
    bits: usize,
}

impl<'a> RequesterKey<'a> {
    /// Reads `spki_der`; badAlg when it is not an RSA key the server takes.
    pub fn from_spki(spki_der: &'a [u8], what: &str) -> Result<Self, ScepError> {
        let key = RsaPublicKey::from_public_key_der(spki_der)
            .map_err(|_| ScepError::BadAlg(format!("{what} is not an RSA key (SCEP requires RSA)")))?;
        let bits = key.n().bits();
        Ok(Self { spki_der, key, bits })
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Whether `signature` is a PKCS#1 v1.5 signature with `digest` over `message`.
    pub fn verify_pkcs1v15(&self, digest: DigestAlg, message: &[u8], signature: &[u8]) -> bool {
        match self.verification_parameters(digest) {
            Some(params) => UnparsedPublicKey::new(params, self.spki_der).verify(message, signature).is_ok(),
            None => self.key.verify(digest.pkcs1v15(), &digest.digest(message), signature).is_ok(),
        }
    }

    /// `plaintext` (a content-encryption key) encrypted with PKCS#1 v1.5 padding.
    pub fn encrypt_pkcs1v15(&self, plaintext: &[u8]) -> Result<Vec<u8>, ScepError> {
        let failed = |e: &dyn std::fmt::Display| ScepError::internal(format!("RSA key transport: {e}"));
        if self.bits >= 2048 {
            let key = PublicEncryptingKey::from_der(self.spki_der)
                .map_err(|e| failed(&e))
                .and_then(|k| Pkcs1PublicEncryptingKey::new(k).map_err(|e| failed(&e)))?;
            let mut out = vec![0u8; key.ciphertext_size()];
            let len = key.encrypt(plaintext, &mut out).map_err(|e| failed(&e))?.len();
            out.truncate(len);
            return Ok(out);
        }
        self.key.encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, plaintext).map_err(|e| failed(&e))
    }

    /// AWS-LC's verification parameters for this key size and `digest`, if it has some.
    fn verification_parameters(&self, digest: DigestAlg) -> Option<&'static RsaParameters> {
        Some(match (self.bits >= 2048, self.bits >= 1024, digest) {
            (true, _, DigestAlg::Sha1) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            (true, _, DigestAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (true, _, DigestAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (true, _, DigestAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (false, true, DigestAlg::Sha1) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            (false, true, DigestAlg::Sha256) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            (false, true, DigestAlg::Sha512) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use rsa::RsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;

    use super::*;
    use crate::rsa_key::RsaPrivate;

    const DIGESTS: [DigestAlg; 4] = [DigestAlg::Sha1, DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512];

    /// For each size: AWS-LC's path (2048), its legacy path and the `rsa` crate's (1024
    /// with SHA-384), and the `rsa` crate's alone (768): good signatures verify, altered
    /// ones and other messages do not, and key transport decrypts to the plaintext.
    #[test]
    fn signatures_and_key_transport_for_every_key_size_the_server_takes() {
        for bits in [2048, 1024, 768] {
            let private = RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap();
            let spki = private.to_public_key().to_public_key_der().unwrap();
            let key = RequesterKey::from_spki(spki.as_bytes(), "the key").unwrap();
            assert_eq!(key.bits(), bits);
            for digest in DIGESTS {
                let sig = private.sign_pkcs1v15(digest, b"signed attributes").unwrap();
                assert!(key.verify_pkcs1v15(digest, b"signed attributes", &sig), "{bits} bits, {digest:?}");
                assert!(!key.verify_pkcs1v15(digest, b"other attributes", &sig), "{bits} bits, {digest:?}");
                let mut altered = sig.clone();
                altered[5] ^= 1;
                assert!(!key.verify_pkcs1v15(digest, b"signed attributes", &altered), "{bits} bits, {digest:?}");
                let other = if digest == DigestAlg::Sha256 { DigestAlg::Sha512 } else { DigestAlg::Sha256 };
                assert!(!key.verify_pkcs1v15(other, b"signed attributes", &sig), "{bits} bits, {digest:?}");
            }
            let ciphertext = key.encrypt_pkcs1v15(&[9u8; 16]).unwrap();
            assert_eq!(ciphertext.len(), bits / 8);
            assert_eq!(private.decrypt_pkcs1v15(&ciphertext).unwrap().as_slice(), &[9u8; 16]);
        }
    }

    #[test]
    fn a_key_that_is_not_rsa_is_bad_alg() {
        use pkiplane_core::keys::{CaSigner, KeyAlgorithm, generate_key};
        let ec = CaSigner::new(&generate_key(KeyAlgorithm::EcdsaP256).unwrap()).unwrap();
        let err = RequesterKey::from_spki(&ec.public_key_der(), "the signer's key").err().unwrap();
        assert!(matches!(err, ScepError::BadAlg(_)), "{err:?}");
    }
}
