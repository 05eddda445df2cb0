//! The algorithms SCEP messages use, and which of them an endpoint accepts.
//!
//! RFC 8894 section 3.5.2 lets a CA advertise AES and SHA-256/SHA-512 through GetCACaps;
//! older clients fall back to DES and SHA-1. pkiplane accepts AES-CBC and SHA-256/384/512
//! by default; DES-EDE3-CBC, single DES-CBC and SHA-1 only when the endpoint enables
//! `legacyAlgorithms`. Anything else is badAlg.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512, RSA_ENCRYPTION, SHA_1_WITH_RSA_ENCRYPTION,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use sha2::Digest as _;

use crate::error::ScepError;

/// aes128-CBC, aes192-CBC, aes256-CBC (RFC 3565 section 4.1).
pub const AES_128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
pub const AES_192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
pub const AES_256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
/// des-ede3-cbc (RFC 3370 section 5.1).
pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
/// desCBC (OIW), what the Go pkcs7 library behind micromdm's scepclient still defaults to.
pub const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");

/// Message digests for SignerInfo (RFC 5652 section 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    /// The digest named by a SignerInfo's digestAlgorithm, if the endpoint accepts it.
    pub fn from_oid(oid: &ObjectIdentifier, legacy: bool) -> Result<Self, ScepError> {
        let alg = if *oid == ID_SHA_256 {
            DigestAlg::Sha256
        } else if *oid == ID_SHA_384 {
            DigestAlg::Sha384
        } else if *oid == ID_SHA_512 {
            DigestAlg::Sha512
        } else if *oid == ID_SHA_1 {
            DigestAlg::Sha1
        } else {
            return Err(ScepError::BadAlg(format!("digest algorithm {oid} is not supported")));
        };
        if alg == DigestAlg::Sha1 && !legacy {
            return Err(ScepError::BadAlg("SHA-1 is accepted only with legacyAlgorithms enabled".into()));
        }
        Ok(alg)
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlg::Sha1 => ID_SHA_1,
            DigestAlg::Sha256 => ID_SHA_256,
            DigestAlg::Sha384 => ID_SHA_384,
            DigestAlg::Sha512 => ID_SHA_512,
        }
    }

    /// The sha*WithRSAEncryption signature algorithm of this digest.
    pub fn rsa_signature_oid(self) -> ObjectIdentifier {
        match self {
            DigestAlg::Sha1 => SHA_1_WITH_RSA_ENCRYPTION,
            DigestAlg::Sha256 => SHA_256_WITH_RSA_ENCRYPTION,
            DigestAlg::Sha384 => SHA_384_WITH_RSA_ENCRYPTION,
            DigestAlg::Sha512 => SHA_512_WITH_RSA_ENCRYPTION,
        }
    }

    /// Whether `oid` is an acceptable SignerInfo signatureAlgorithm for this digest:
    /// `rsaEncryption` (RFC 3370 section 3.2) or the matching sha*WithRSAEncryption.
    pub fn accepts_signature_oid(self, oid: &ObjectIdentifier) -> bool {
        *oid == RSA_ENCRYPTION || *oid == self.rsa_signature_oid()
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            DigestAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The PKCS#1 v1.5 signature scheme (DigestInfo prefix) of this digest.
    pub fn pkcs1v15(self) -> rsa::Pkcs1v15Sign {
        match self {
            DigestAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            DigestAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            DigestAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            DigestAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha1 => "SHA-1",
            DigestAlg::Sha256 => "SHA-256",
            DigestAlg::Sha384 => "SHA-384",
            DigestAlg::Sha512 => "SHA-512",
        }
    }
}

/// Content-encryption algorithms of EnvelopedData (RFC 5652 section 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentAlg {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    DesEde3Cbc,
    DesCbc,
}

impl ContentAlg {
    /// The algorithm named by an EncryptedContentInfo, if the endpoint accepts it.
    pub fn from_oid(oid: &ObjectIdentifier, legacy: bool) -> Result<Self, ScepError> {
        let alg = if *oid == AES_128_CBC {
            ContentAlg::Aes128Cbc
        } else if *oid == AES_192_CBC {
            ContentAlg::Aes192Cbc
        } else if *oid == AES_256_CBC {
            ContentAlg::Aes256Cbc
        } else if *oid == DES_EDE3_CBC {
            ContentAlg::DesEde3Cbc
        } else if *oid == DES_CBC {
            ContentAlg::DesCbc
        } else {
            return Err(ScepError::BadAlg(format!("content encryption algorithm {oid} is not supported")));
        };
        if alg.is_legacy() && !legacy {
            return Err(ScepError::BadAlg(format!("{} is accepted only with legacyAlgorithms enabled", alg.name())));
        }
        Ok(alg)
    }

    pub fn is_legacy(self) -> bool {
        matches!(self, ContentAlg::DesEde3Cbc | ContentAlg::DesCbc)
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            ContentAlg::Aes128Cbc => AES_128_CBC,
            ContentAlg::Aes192Cbc => AES_192_CBC,
            ContentAlg::Aes256Cbc => AES_256_CBC,
            ContentAlg::DesEde3Cbc => DES_EDE3_CBC,
            ContentAlg::DesCbc => DES_CBC,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            ContentAlg::Aes128Cbc => 16,
            ContentAlg::Aes192Cbc => 24,
            ContentAlg::Aes256Cbc => 32,
            ContentAlg::DesEde3Cbc => 24,
            ContentAlg::DesCbc => 8,
        }
    }

    pub fn iv_len(self) -> usize {
        match self {
            ContentAlg::Aes128Cbc | ContentAlg::Aes192Cbc | ContentAlg::Aes256Cbc => 16,
            ContentAlg::DesEde3Cbc | ContentAlg::DesCbc => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ContentAlg::Aes128Cbc => "AES-128-CBC",
            ContentAlg::Aes192Cbc => "AES-192-CBC",
            ContentAlg::Aes256Cbc => "AES-256-CBC",
            ContentAlg::DesEde3Cbc => "DES-EDE3-CBC",
            ContentAlg::DesCbc => "DES-CBC",
        }
    }
}
