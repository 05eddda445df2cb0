//! RSA private-key operations SCEP needs: PKCS#1 v1.5 signatures (SignerInfo) and
//! PKCS#1 v1.5 decryption of a content-encryption key (KeyTransRecipientInfo).
//!
//! The RA's key ([`RaKey`]) faces the network: anyone can send it ciphertexts and time
//! the answers. Its operations run in AWS-LC (`aws-lc-rs`), whose RSA is constant time
//! with blinding and whose PKCS#1 v1.5 padding check is constant time, rather than in
//! the `rsa` crate, whose big-integer arithmetic is not (RUSTSEC-2023-0071, the Marvin
//! attack). How the outcome of a decryption is used without a branch an attacker can
//! time is [`crate::cms::envelope::open`]'s concern.
//!
//! One operation stays on `rsa`: a SHA-1 signature, which AWS-LC's API does not offer
//! and which only happens for a request signed with SHA-1 on an endpoint with
//! `legacyAlgorithms`. The leak of RUSTSEC-2023-0071 needs many private-key operations
//! on inputs the attacker chooses (ciphertexts, for Marvin); the value the RA signs is a
//! digest over attributes that include a fresh random senderNonce and the RA's own
//! signingTime, so a requester can neither choose nor predict it, and `rsa` blinds the
//! operation besides. Clients (tests, tools) keep using `rsa` keys through
//! [`RsaPrivate`], where no remote party times the key.

use aws_lc_rs::rsa::{Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use zeroize::Zeroizing;

use crate::algorithms::DigestAlg;
use crate::error::ScepError;

/// The RSA private-key operations a SCEP party performs.
pub trait RsaPrivate: Send + Sync {
    /// A PKCS#1 v1.5 signature over `message` hashed with `digest`.
    fn sign_pkcs1v15(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>, ScepError>;
    /// PKCS#1 v1.5 decryption; `None` when the ciphertext does not decrypt. Callers must
    /// not let the two outcomes take visibly different paths.
    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>>;
}

/// A client's key (tests and tools build and read messages with it).
impl RsaPrivate for RsaPrivateKey {
    fn sign_pkcs1v15(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>, ScepError> {
        self.sign_with_rng(&mut rand_core::OsRng, digest.pkcs1v15(), &digest.digest(message))
            .map_err(|e| ScepError::internal(format!("RSA signature: {e}")))
    }

    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.decrypt_blinded(&mut rand_core::OsRng, rsa::Pkcs1v15Encrypt, ciphertext).ok().map(Zeroizing::new)
    }
}

/// The RA's RSA key, held by AWS-LC for every operation but SHA-1 signatures. Load
/// tools hold their requesters' keys in it too, so that the generator's own RSA work
/// takes little of the CPU it shares with the server it measures.
pub struct RaKey {
    signing: RsaKeyPair,
    decrypting: Pkcs1PrivateDecryptingKey,
    /// Only for SHA-1 signatures (see the module documentation).
    legacy: RsaPrivateKey,
}

impl std::fmt::Debug for RaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaKey(<redacted>)")
    }
}

impl RaKey {
    /// Loads a PKCS#8 RSA private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, ScepError> {
        let bad = |what: &str| ScepError::internal(format!("the RA key is not an RSA PKCS#8 key ({what})"));
        let signing = RsaKeyPair::from_pkcs8(der).map_err(|_| bad("signing"))?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| bad("decryption"))?;
        let decrypting = Pkcs1PrivateDecryptingKey::new(decrypting).map_err(|_| bad("decryption"))?;
        let legacy = RsaPrivateKey::from_pkcs8_der(der).map_err(|_| bad("legacy"))?;
        Ok(Self { signing, decrypting, legacy })
    }

    /// The public key as an RSAPublicKey (PKCS#1) DER, the bits of a certificate's
    /// subjectPublicKey.
    pub fn public_key_pkcs1(&self) -> &[u8] {
        self.signing.public_key().as_ref()
    }
}

impl RsaPrivate for RaKey {
    fn sign_pkcs1v15(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>, ScepError> {
        let encoding = match digest {
            DigestAlg::Sha1 => return self.legacy.sign_pkcs1v15(digest, message),
            DigestAlg::Sha256 => &signature::RSA_PKCS1_SHA256,
            DigestAlg::Sha384 => &signature::RSA_PKCS1_SHA384,
            DigestAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
        };
        let mut out = vec![0u8; self.signing.public_modulus_len()];
        self.signing
            .sign(encoding, &aws_lc_rs::rand::SystemRandom::new(), message, &mut out)
            .map_err(|_| ScepError::internal("RSA signature failed"))?;
        Ok(out)
    }

    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.decrypting.min_output_size()]);
        let len = self.decrypting.decrypt(ciphertext, &mut out).ok()?.len();
        out.truncate(len);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::traits::PublicKeyParts;

    use super::*;

    #[test]
    fn the_ra_key_agrees_with_rsa_for_every_operation() {
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let ra = RaKey::from_pkcs8(der.as_bytes()).unwrap();
        assert!(format!("{ra:?}").contains("redacted"));
        let public = key.to_public_key();
        for digest in [DigestAlg::Sha1, DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512] {
            let sig = ra.sign_pkcs1v15(digest, b"signed attributes").unwrap();
            assert_eq!(sig.len(), public.size());
            public.verify(digest.pkcs1v15(), &digest.digest(b"signed attributes"), &sig).unwrap();
        }
        let cek = [7u8; 16];
        let ct = public.encrypt(&mut rand_core::OsRng, rsa::Pkcs1v15Encrypt, &cek).unwrap();
        assert_eq!(ra.decrypt_pkcs1v15(&ct).unwrap().as_slice(), &cek);
        let mut tampered = ct.clone();
        tampered[10] ^= 0x40;
        assert!(ra.decrypt_pkcs1v15(&tampered).is_none_or(|k| k.as_slice() != cek));
        assert!(ra.decrypt_pkcs1v15(&[1u8; 100]).is_none(), "a ciphertext of the wrong length");
    }
}
