//! What kind of key a certificate or CSR carries.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1, SECP_521_R_1};
use der::{Decode, Sequence, asn1::UintRef};
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoRef;

/// id-Ed25519 (RFC 8410 section 3).
pub const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-Ed448 (RFC 8410 section 3).
pub const ID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// Key families a CSR's public key may belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum KeyFamily {
    #[serde(rename = "ECDSA")]
    Ecdsa,
    #[serde(rename = "RSA")]
    Rsa,
    Ed25519,
}

impl fmt::Display for KeyFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFamily::Ecdsa => "ECDSA",
            KeyFamily::Rsa => "RSA",
            KeyFamily::Ed25519 => "Ed25519",
        })
    }
}

/// Named elliptic curves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Curve {
    #[serde(rename = "P-256")]
    P256,
    #[serde(rename = "P-384")]
    P384,
    #[serde(rename = "P-521")]
    P521,
}

impl Curve {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => SECP_256_R_1,
            Curve::P384 => SECP_384_R_1,
            Curve::P521 => SECP_521_R_1,
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        })
    }
}

impl FromStr for Curve {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace(['_', ' '], "-").as_str() {
            "P-256" | "P256" | "PRIME256V1" | "SECP256R1" => Ok(Curve::P256),
            "P-384" | "P384" | "SECP384R1" => Ok(Curve::P384),
            "P-521" | "P521" | "SECP521R1" => Ok(Curve::P521),
            _ => Err(format!("unknown curve `{s}` (expected P-256, P-384 or P-521)")),
        }
    }
}

/// Key algorithms for keys pkiplane generates and signs with (CA keys, server-generated
/// keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum KeyAlgorithm {
    #[default]
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
    #[serde(rename = "ECDSA-P384")]
    EcdsaP384,
    #[serde(rename = "RSA-2048")]
    Rsa2048,
    #[serde(rename = "RSA-3072")]
    Rsa3072,
    #[serde(rename = "RSA-4096")]
    Rsa4096,
    Ed25519,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// The public-key description a key of this algorithm has.
    pub fn public_info(self) -> PublicKeyInfo {
        match self {
            KeyAlgorithm::EcdsaP256 => PublicKeyInfo::Ecdsa(Curve::P256),
            KeyAlgorithm::EcdsaP384 => PublicKeyInfo::Ecdsa(Curve::P384),
            KeyAlgorithm::Rsa2048 => PublicKeyInfo::Rsa { bits: 2048 },
            KeyAlgorithm::Rsa3072 => PublicKeyInfo::Rsa { bits: 3072 },
            KeyAlgorithm::Rsa4096 => PublicKeyInfo::Rsa { bits: 4096 },
            KeyAlgorithm::Ed25519 => PublicKeyInfo::Ed25519,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.to_ascii_uppercase().replace(['_', ' '], "-");
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str().to_ascii_uppercase() == norm || a.as_str().replace('-', "").to_ascii_uppercase() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown key algorithm `{s}` (expected one of ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072, RSA-4096, Ed25519)"
                )
            })
    }
}

/// The key a CSR or certificate carries, as far as policy cares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PublicKeyInfo {
    Ecdsa(Curve),
    Rsa {
        bits: u32,
    },
    Ed25519,
    /// Anything else: the algorithm OID (and curve OID for an unknown EC curve).
    Other(String),
}

impl PublicKeyInfo {
    /// Classifies a SubjectPublicKeyInfo.
    pub fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Self {
        let alg = spki.algorithm.oid;
        if alg == ID_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            return match curve {
                Some(c) if c == SECP_256_R_1 => PublicKeyInfo::Ecdsa(Curve::P256),
                Some(c) if c == SECP_384_R_1 => PublicKeyInfo::Ecdsa(Curve::P384),
                Some(c) if c == SECP_521_R_1 => PublicKeyInfo::Ecdsa(Curve::P521),
                Some(c) => PublicKeyInfo::Other(format!("EC curve {c}")),
                None => PublicKeyInfo::Other("EC key without a named curve".into()),
            };
        }
        if alg == RSA_ENCRYPTION {
            let bits = spki
                .subject_public_key
                .as_bytes()
                .and_then(|b| RsaPublicKey::from_der(b).ok())
                .map(|k| modulus_bits(k.modulus.as_bytes()));
            return match bits {
                Some(bits) => PublicKeyInfo::Rsa { bits },
                None => PublicKeyInfo::Other("malformed RSA public key".into()),
            };
        }
        if alg == ID_ED25519 {
            return PublicKeyInfo::Ed25519;
        }
        if alg == ID_ED448 {
            return PublicKeyInfo::Other("Ed448".into());
        }
        PublicKeyInfo::Other(alg.to_string())
    }

    pub fn family(&self) -> Option<KeyFamily> {
        match self {
            PublicKeyInfo::Ecdsa(_) => Some(KeyFamily::Ecdsa),
            PublicKeyInfo::Rsa { .. } => Some(KeyFamily::Rsa),
            PublicKeyInfo::Ed25519 => Some(KeyFamily::Ed25519),
            PublicKeyInfo::Other(_) => None,
        }
    }
}

impl fmt::Display for PublicKeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKeyInfo::Ecdsa(c) => write!(f, "ECDSA {c}"),
            PublicKeyInfo::Rsa { bits } => write!(f, "RSA {bits}"),
            PublicKeyInfo::Ed25519 => f.write_str("Ed25519"),
            PublicKeyInfo::Other(s) => write!(f, "unsupported ({s})"),
        }
    }
}

/// RSAPublicKey (RFC 8017 appendix A.1.1):
/// ```text
/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
/// ```
#[derive(Sequence)]
pub(crate) struct RsaPublicKey<'a> {
    pub modulus: UintRef<'a>,
    pub public_exponent: UintRef<'a>,
}

fn modulus_bits(bytes: &[u8]) -> u32 {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let rest = &bytes[first..];
    match rest.first() {
        None => 0,
        Some(b) => (rest.len() as u32 - 1) * 8 + (8 - b.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse() {
        assert_eq!("ecdsa-p256".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::EcdsaP256);
        assert_eq!("RSA2048".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::Rsa2048);
        assert_eq!("ed25519".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::Ed25519);
        assert!("dsa".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn counts_modulus_bits() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
