//! MAC-based protection with a shared secret (RFC 9810 section 5.1.3.1, RFC 9481
//! section 6.1): PasswordBasedMac and PBMAC1, built from `ring`'s digests, HMAC and
//! PBKDF2. Nothing here implements a primitive.
//!
//! PasswordBasedMac (RFC 4211 section 4.4):
//! ```text
//! PBMParameter ::= SEQUENCE {
//!     salt                OCTET STRING,
//!     owf                 AlgorithmIdentifier,   -- one-way function, e.g. SHA-256
//!     iterationCount      INTEGER,
//!     mac                 AlgorithmIdentifier }  -- e.g. HMAC-SHA256
//! ```
//! key = owf applied iterationCount times to (secret || salt); tag = mac(key, data).
//!
//! PBMAC1 (RFC 8018 appendix A.5, RFC 9481 section 6.1.2):
//! ```text
//! PBMAC1-params ::= SEQUENCE {
//!     keyDerivationFunc   AlgorithmIdentifier {{PBMAC1-KDFs}},   -- id-PBKDF2
//!     messageAuthScheme   AlgorithmIdentifier {{PBMAC1-MACs}} }
//! PBKDF2-params ::= SEQUENCE {
//!     salt            CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
//!     iterationCount  INTEGER (1..MAX),
//!     keyLength       INTEGER (1..MAX) OPTIONAL,
//!     prf             AlgorithmIdentifier DEFAULT algid-hmacWithSHA1 }
//! ```
//! key = PBKDF2(prf, secret, salt, iterationCount, keyLength); tag = mac(key, data).

use std::num::NonZeroU32;

use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hmac, pbkdf2};
use spki07::AlgorithmIdentifierOwned;

use crate::error::CmpError;
pub use crate::settings::MacLimits;
use crate::wire::oids;

/// An HMAC algorithm (RFC 9481 section 6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacAlg {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl MacAlg {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            o if o == oids::HMAC_SHA1 || o == oids::HMAC_WITH_SHA1 => MacAlg::HmacSha1,
            o if o == oids::HMAC_WITH_SHA256 => MacAlg::HmacSha256,
            o if o == oids::HMAC_WITH_SHA384 => MacAlg::HmacSha384,
            o if o == oids::HMAC_WITH_SHA512 => MacAlg::HmacSha512,
            _ => return None,
        })
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            MacAlg::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            MacAlg::HmacSha256 => hmac::HMAC_SHA256,
            MacAlg::HmacSha384 => hmac::HMAC_SHA384,
            MacAlg::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            MacAlg::HmacSha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            MacAlg::HmacSha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            MacAlg::HmacSha384 => pbkdf2::PBKDF2_HMAC_SHA384,
            MacAlg::HmacSha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn output_len(self) -> usize {
        self.hmac().digest_algorithm().output_len()
    }
}

/// A one-way function for PasswordBasedMac.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owf {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Owf {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            o if o == oids::SHA1 => Owf::Sha1,
            o if o == oids::SHA256 => Owf::Sha256,
            o if o == oids::SHA384 => Owf::Sha384,
            o if o == oids::SHA512 => Owf::Sha512,
            _ => return None,
        })
    }
}

/// `PBKDF2-params`, with the salt as the `specified` choice (the only one RFC 9481
/// allows).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iteration_count: u32,
    key_length: Option<u32>,
    prf: Option<AlgorithmIdentifierOwned>,
}

/// `PBMAC1-params`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Pbmac1Params {
    key_derivation_func: AlgorithmIdentifierOwned,
    message_auth_scheme: AlgorithmIdentifierOwned,
}

/// A MAC-based protection algorithm with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacProtection {
    Pbm { salt: Vec<u8>, owf: Owf, iterations: u32, mac: MacAlg },
    Pbmac1 { salt: Vec<u8>, iterations: u32, key_len: usize, prf: MacAlg, mac: MacAlg },
}

fn params<T: for<'b> Decode<'b>>(alg: &AlgorithmIdentifierOwned, what: &str) -> Result<T, CmpError> {
    let any = alg.parameters.as_ref().ok_or_else(|| CmpError::bad_alg(format!("{what} without parameters")))?;
    any.to_der().and_then(|d| T::from_der(&d)).map_err(|e| CmpError::bad_alg(format!("{what} parameters: {e}")))
}

fn check_iterations(n: u64, limits: MacLimits) -> Result<u32, CmpError> {
    if n < u64::from(limits.min_iterations) || n > u64::from(limits.max_iterations) {
        return Err(CmpError::bad_alg(format!(
            "iteration count {n} is outside the accepted range {}..={}",
            limits.min_iterations, limits.max_iterations
        )));
    }
    Ok(n as u32)
}

impl MacProtection {
    /// Whether `alg` names a MAC-based protection (PasswordBasedMac or PBMAC1).
    pub fn is_mac(alg: &AlgorithmIdentifierOwned) -> bool {
        alg.oid == oids::PASSWORD_BASED_MAC || alg.oid == oids::PBMAC1
    }

    /// Reads a protectionAlg; unsupported functions or parameters are `badAlg`.
    pub fn from_algorithm(alg: &AlgorithmIdentifierOwned, limits: MacLimits) -> Result<Self, CmpError> {
        if alg.oid == oids::PASSWORD_BASED_MAC {
            let p: crmf::pop::PbmParameter = params(alg, "PasswordBasedMac")?;
            let owf = Owf::from_oid(&p.owf.oid).ok_or_else(|| {
                CmpError::bad_alg(format!("PasswordBasedMac one-way function {} is not supported", p.owf.oid))
            })?;
            let mac = MacAlg::from_oid(&p.mac.oid)
                .ok_or_else(|| CmpError::bad_alg(format!("PasswordBasedMac MAC {} is not supported", p.mac.oid)))?;
            let iterations = check_iterations(p.iteration_count, limits)?;
            return Ok(MacProtection::Pbm { salt: p.salt.as_bytes().to_vec(), owf, iterations, mac });
        }
        if alg.oid == oids::PBMAC1 {
            let p: Pbmac1Params = params(alg, "PBMAC1")?;
            if p.key_derivation_func.oid != oids::PBKDF2 {
                return Err(CmpError::bad_alg(format!(
                    "PBMAC1 key derivation {} is not PBKDF2",
                    p.key_derivation_func.oid
                )));
            }
            let kdf: Pbkdf2Params = params(&p.key_derivation_func, "PBKDF2")?;
            let prf = match &kdf.prf {
                None => MacAlg::HmacSha1,
                Some(a) => MacAlg::from_oid(&a.oid)
                    .ok_or_else(|| CmpError::bad_alg(format!("PBKDF2 PRF {} is not supported", a.oid)))?,
            };
            let mac = MacAlg::from_oid(&p.message_auth_scheme.oid).ok_or_else(|| {
                CmpError::bad_alg(format!("PBMAC1 MAC {} is not supported", p.message_auth_scheme.oid))
            })?;
            let key_len = match kdf.key_length {
                Some(n) if (16..=64).contains(&n) => n as usize,
                Some(n) => return Err(CmpError::bad_alg(format!("PBKDF2 key length {n} is outside 16..=64"))),
                None => mac.output_len(),
            };
            let iterations = check_iterations(u64::from(kdf.iteration_count), limits)?;
            return Ok(MacProtection::Pbmac1 { salt: kdf.salt.as_bytes().to_vec(), iterations, key_len, prf, mac });
        }
        Err(CmpError::bad_alg(format!("{} is not a MAC-based protection algorithm", alg.oid)))
    }

    /// The same algorithms with a fresh random salt, for the response.
    pub fn fresh(&self) -> Self {
        let mut salt = vec![0u8; 16];
        if SystemRandom::new().fill(&mut salt).is_err() {
            std::process::abort();
        }
        match self.clone() {
            MacProtection::Pbm { owf, iterations, mac, .. } => MacProtection::Pbm { salt, owf, iterations, mac },
            MacProtection::Pbmac1 { iterations, key_len, prf, mac, .. } => {
                MacProtection::Pbmac1 { salt, iterations, key_len, prf, mac }
            }
        }
    }

    /// The protectionAlg AlgorithmIdentifier with these parameters.
    pub fn algorithm_identifier(&self) -> der::Result<AlgorithmIdentifierOwned> {
        let hmac_oid = |m: MacAlg| match m {
            MacAlg::HmacSha1 => oids::HMAC_SHA1,
            MacAlg::HmacSha256 => oids::HMAC_WITH_SHA256,
            MacAlg::HmacSha384 => oids::HMAC_WITH_SHA384,
            MacAlg::HmacSha512 => oids::HMAC_WITH_SHA512,
        };
        let alg = |oid, parameters| AlgorithmIdentifierOwned { oid, parameters };
        match self {
            MacProtection::Pbm { salt, owf, iterations, mac } => {
                let owf_oid = match owf {
                    Owf::Sha1 => oids::SHA1,
                    Owf::Sha256 => oids::SHA256,
                    Owf::Sha384 => oids::SHA384,
                    Owf::Sha512 => oids::SHA512,
                };
                let p = crmf::pop::PbmParameter {
                    salt: OctetString::new(salt.clone())?,
                    owf: alg(owf_oid, None),
                    iteration_count: u64::from(*iterations),
                    mac: alg(hmac_oid(*mac), None),
                };
                Ok(alg(oids::PASSWORD_BASED_MAC, Some(Any::encode_from(&p)?)))
            }
            MacProtection::Pbmac1 { salt, iterations, key_len, prf, mac } => {
                let kdf = Pbkdf2Params {
                    salt: OctetString::new(salt.clone())?,
                    iteration_count: *iterations,
                    key_length: Some(*key_len as u32),
                    prf: Some(alg(hmac_oid(*prf), Some(Any::null()))),
                };
                let p = Pbmac1Params {
                    key_derivation_func: alg(oids::PBKDF2, Some(Any::encode_from(&kdf)?)),
                    message_auth_scheme: alg(hmac_oid(*mac), Some(Any::null())),
                };
                Ok(alg(oids::PBMAC1, Some(Any::from_der(&p.to_der()?)?)))
            }
        }
    }

    fn key(&self, secret: &[u8]) -> hmac::Key {
        match self {
            MacProtection::Pbm { salt, owf, iterations, mac } => {
                // RustCrypto's hashes, not ring's: ring's per-call set-up costs more than
                // hashing one short block, and PBM hashes hundreds of them per message.
                let k = match owf {
                    Owf::Sha1 => owf_chain::<sha1::Sha1>(secret, salt, *iterations),
                    Owf::Sha256 => owf_chain::<sha2::Sha256>(secret, salt, *iterations),
                    Owf::Sha384 => owf_chain::<sha2::Sha384>(secret, salt, *iterations),
                    Owf::Sha512 => owf_chain::<sha2::Sha512>(secret, salt, *iterations),
                };
                hmac::Key::new(mac.hmac(), &k)
            }
            MacProtection::Pbmac1 { salt, iterations, key_len, prf, mac } => {
                let mut k = zeroize::Zeroizing::new(vec![0u8; *key_len]);
                let n = NonZeroU32::new(*iterations).unwrap_or(NonZeroU32::MIN);
                pbkdf2::derive(prf.pbkdf2(), n, salt, secret, &mut k);
                hmac::Key::new(mac.hmac(), &k)
            }
        }
    }

    /// The MAC of `data` under `secret`.
    pub fn compute(&self, secret: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key(secret), data).as_ref().to_vec()
    }

    /// Checks a MAC in constant time (`ring::hmac::verify`).
    pub fn verify(&self, secret: &[u8], data: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key(secret), data, tag).is_ok()
    }
}

/// RFC 4211 section 4.4: the owf applied `iterations` times, first to secret || salt.
fn owf_chain<D: sha2::Digest>(secret: &[u8], salt: &[u8], iterations: u32) -> zeroize::Zeroizing<Vec<u8>> {
    let mut k = D::new().chain_update(secret).chain_update(salt).finalize();
    for _ in 1..iterations {
        k = D::digest(&k);
    }
    zeroize::Zeroizing::new(k.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::digest;

    fn pbm(salt: &[u8], iterations: u32, mac: MacAlg) -> MacProtection {
        MacProtection::Pbm { salt: salt.to_vec(), owf: Owf::Sha256, iterations, mac }
    }

    #[test]
    fn pbm_matches_the_rfc_4211_construction() {
        // key = SHA-256 applied 3 times to secret || salt, computed step by step.
        let k1 = digest::digest(&digest::SHA256, b"secretsalt");
        let k2 = digest::digest(&digest::SHA256, k1.as_ref());
        let k3 = digest::digest(&digest::SHA256, k2.as_ref());
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k3.as_ref()), b"data");
        let p = pbm(b"salt", 3, MacAlg::HmacSha256);
        assert_eq!(p.compute(b"secret", b"data"), expected.as_ref());
        assert!(p.verify(b"secret", b"data", expected.as_ref()));
        assert!(!p.verify(b"secreT", b"data", expected.as_ref()));
    }

    #[test]
    fn every_owf_chains_as_ring_computes_it() {
        for (owf, alg) in [
            (Owf::Sha1, &digest::SHA1_FOR_LEGACY_USE_ONLY),
            (Owf::Sha256, &digest::SHA256),
            (Owf::Sha384, &digest::SHA384),
            (Owf::Sha512, &digest::SHA512),
        ] {
            let mut k = digest::digest(alg, b"secret-0123salt-4567").as_ref().to_vec();
            for _ in 1..500 {
                k = digest::digest(alg, &k).as_ref().to_vec();
            }
            let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, &k), b"data");
            let p = MacProtection::Pbm { salt: b"salt-4567".to_vec(), owf, iterations: 500, mac: MacAlg::HmacSha512 };
            assert_eq!(p.compute(b"secret-0123", b"data"), expected.as_ref(), "{owf:?}");
        }
    }

    #[test]
    fn parameters_round_trip_and_limits_hold() {
        let limits = MacLimits::default();
        for p in [
            pbm(b"0123456789abcdef", 500, MacAlg::HmacSha1),
            MacProtection::Pbmac1 {
                salt: b"0123456789abcdef".to_vec(),
                iterations: 10_000,
                key_len: 32,
                prf: MacAlg::HmacSha256,
                mac: MacAlg::HmacSha256,
            },
        ] {
            let alg = p.algorithm_identifier().unwrap();
            let alg = AlgorithmIdentifierOwned::from_der(&alg.to_der().unwrap()).unwrap();
            assert_eq!(MacProtection::from_algorithm(&alg, limits).unwrap(), p);
        }
        let alg = pbm(b"s", 1_000_000, MacAlg::HmacSha256).algorithm_identifier().unwrap();
        let err = MacProtection::from_algorithm(&alg, limits).unwrap_err();
        assert_eq!(err.fail.names(), ["badAlg"]);
    }
}
